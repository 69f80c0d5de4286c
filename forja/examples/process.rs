//! Processes: start, join, exit codes, names, a zombie, terminate.
//!
//! Run with `cargo run -p forja --example process`.

use forja::prelude::*;
use std::time::Duration;

fn main() -> forja::Result<()> {
    println!(
        "I am {} (pid {})",
        current_process().name(),
        current_process().pid()
    );

    // A child runs the closure: it gets a copy of everything captured.
    let greeting = String::from("hola");
    let p = Process::new(move || {
        let me = current_process();
        let parent = parent_process().expect("started by forja");
        println!(
            "{greeting} from {} (pid {}), child of {}",
            me.name(),
            me.pid(),
            parent.pid()
        );
    });
    p.start()?;
    p.join()?;
    println!("{p} finished with exit code {:?}", p.exitcode());

    // Exit codes, as in Python: 0, 1 after a panic, forja::exit(n), -signal.
    let ok = Process::new(|| {}).with_name("ok");
    let panics = Process::new(|| panic!("something went wrong")).with_name("panics");
    let exits = Process::new(|| forja::exit(3)).with_name("exits");
    let sleeper = Process::new(|| std::thread::sleep(Duration::from_secs(60))).with_name("sleeper");
    let all = [&ok, &panics, &exits, &sleeper];
    for p in all {
        p.start()?;
    }
    sleeper.kill()?;
    for p in all {
        p.join()?;
        println!("  {:8} exit code {:?}", p.name(), p.exitcode());
    }

    // A finished child stays a zombie until someone reaps it (join).
    let z = Process::new(|| {}).with_name("zombie");
    z.start()?;
    std::thread::sleep(Duration::from_millis(200));
    let pid = z.pid().expect("started");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    println!(
        "before join, /proc/{pid}/stat says state {:?} (Z = zombie)",
        state.unwrap_or("?")
    );
    z.join()?;
    println!(
        "after join, /proc/{pid} exists: {}",
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    );

    // terminate() sends SIGTERM.
    let looper = Process::new(|| {
        loop {
            std::thread::sleep(Duration::from_millis(10))
        }
    });
    looper.start()?;
    println!(
        "alive: {}, active children: {}",
        looper.is_alive(),
        active_children().len()
    );
    looper.terminate()?;
    looper.join()?;
    println!("after terminate: exit code {:?}", looper.exitcode());
    println!(
        "this machine has {} CPUs; this process may use {}",
        cpu_count(),
        process_cpu_count()
    );
    Ok(())
}
