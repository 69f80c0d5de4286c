//! The timeline: what ran and when, as a Gantt chart. Three processes one
//! after another, then three at once, then a pool of workers; writes the SVG
//! to a file and prints its path and a text version.
//!
//! Run with `cargo run -p forja --example timeline`.

use forja::prelude::*;
use std::time::Duration;

fn work(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn main() -> forja::Result<()> {
    forja::timeline::reset()?;

    // One after another: the bars follow each other.
    for i in 0..3 {
        let p = Process::new(move || {
            work(40 + 10 * i);
        })
        .with_name(format!("sequential-{i}"));
        p.start()?;
        p.join()?;
    }

    // All at once: the bars overlap. Their ends show how each one ended:
    // exit 0, exit 2, killed by a signal.
    let ok = Process::new(|| {
        work(60);
    })
    .with_name("parallel-ok");
    let fails = Process::new(|| {
        work(60);
        forja::exit(2)
    })
    .with_name("parallel-exit-2");
    let killed = Process::new(|| {
        loop {
            work(10);
        }
    })
    .with_name("parallel-killed");
    for p in [&ok, &fails, &killed] {
        p.start()?;
    }
    std::thread::sleep(Duration::from_millis(40));
    killed.kill()?;
    for p in [&ok, &fails, &killed] {
        p.join()?;
    }

    // A pool: each worker's lane shows the tasks it ran.
    let pool = Pool::new(2)?;
    let total: u64 = pool.chunksize(1).map(work, vec![15; 12])?.iter().sum();
    println!("the pool slept {total} ms in all, in two workers");
    pool.close()?;
    pool.join()?;

    let t = forja::timeline();
    let path = std::env::temp_dir().join(format!("forja-timeline-{}.svg", std::process::id()));
    std::fs::write(&path, t.svg()).map_err(|e| forja::Error::os("writing the SVG", e))?;
    println!("{t}");
    println!("SVG written to {}", path.display());
    Ok(())
}
