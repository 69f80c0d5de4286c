//! Processes meet at a Barrier after each phase: nobody starts phase 2 until
//! everyone finished phase 1.
//!
//! `cargo run -p forja --example barrier`
use forja::prelude::*;
use std::time::Duration;

fn main() -> forja::Result<()> {
    const N: u32 = 3;
    let barrier = Barrier::new(N)?;
    let children: Vec<Process> = (0..N)
        .map(|i| {
            let barrier = barrier.clone();
            Process::new(move || {
                for phase in 1..=2 {
                    std::thread::sleep(Duration::from_millis(50 * (i as u64 + 1)));
                    println!("process {i}: finished phase {phase}");
                    let arrival = barrier.wait().expect("barrier");
                    if arrival == N - 1 {
                        println!("-- everyone finished phase {phase} --");
                    }
                }
            })
        })
        .collect();
    for p in &children {
        p.start()?;
    }
    for p in &children {
        p.join()?;
    }
    Ok(())
}
