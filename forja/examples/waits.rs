//! Five philosophers, five forks: each takes the fork on its left, then the
//! one on its right. They all hold one fork and wait for the next: a
//! deadlock. forja names it (`Error::Deadlock`) in one of them instead of
//! hanging; that philosopher puts its fork down and the others eat. Then the
//! same with detection off, looking at the graph from outside, and writes
//! its SVG to a file.
//!
//! Run with `cargo run -p forja --example waits`.

use forja::prelude::*;
use std::time::Duration;

const N: usize = 5;

fn dinner(forks: &[Lock], barrier: &Barrier) -> forja::Result<Vec<Process>> {
    (0..N)
        .map(|i| {
            let left = forks[i].clone();
            let right = forks[(i + 1) % N].clone();
            let barrier = barrier.clone();
            let p = Process::new(move || {
                let _left = left.acquire().unwrap();
                barrier.wait().unwrap();
                match right.acquire() {
                    Ok(_right) => println!("filósofo {i} come"),
                    Err(e) => println!("filósofo {i}: {e}"),
                }
            })
            .with_name(format!("filósofo {i}"));
            p.start()?;
            Ok(p)
        })
        .collect()
}

fn main() -> forja::Result<()> {
    let forks: Vec<Lock> = (0..N)
        .map(|i| Ok(Lock::new()?.with_name(&format!("tenedor {i}"))))
        .collect::<forja::Result<_>>()?;
    let barrier = Barrier::new(N as u32)?;

    // Detection on (the default): one philosopher gets Error::Deadlock.
    for p in dinner(&forks, &barrier)? {
        p.join()?;
    }

    // Detection off: they hang, as in Python; the graph shows why.
    forja::deadlock::detect(false)?;
    let philosophers = dinner(&forks, &barrier)?;
    let mut graph = forja::waits();
    for _ in 0..100 {
        if graph.has_deadlock() {
            break;
        }
        forja::sleep(Duration::from_millis(20))?;
        graph = forja::waits();
    }
    println!("{graph}");
    let path = std::env::temp_dir().join("forja-waits.svg");
    std::fs::write(&path, graph.svg()).map_err(|e| Error::os("writing the SVG", e))?;
    println!("SVG: {}", path.display());
    // Detection back on: the hung philosophers find the deadlock.
    forja::deadlock::detect(true)?;
    for p in philosophers {
        p.join()?;
    }
    Ok(())
}
