//! Two producers and two consumers share one Queue; every item arrives once.
//!
//! `cargo run -p forja --example queue`
use forja::prelude::*;

fn main() -> forja::Result<()> {
    let tasks: Queue<Option<u64>> = Queue::new()?;
    let results: Queue<(u64, u64)> = Queue::new()?;
    let producers: Vec<Process> = (0..2u64)
        .map(|p| {
            let tasks = tasks.clone();
            Process::new(move || {
                for i in 0..50 {
                    tasks.put(&Some(p * 50 + i)).expect("put");
                }
            })
        })
        .collect();
    let consumers: Vec<Process> = (0..2)
        .map(|_| {
            let (tasks, results) = (tasks.clone(), results.clone());
            Process::new(move || {
                while let Some(n) = tasks.get().expect("get") {
                    results.put(&(n, n * n)).expect("put result");
                }
            })
        })
        .collect();
    for p in producers.iter().chain(&consumers) {
        p.start()?;
    }
    for p in &producers {
        p.join()?;
    }
    for _ in &consumers {
        tasks.put(&None)?; // one "stop" per consumer
    }
    let mut got: Vec<(u64, u64)> = (0..100).map(|_| results.get()).collect::<Result<_>>()?;
    for p in &consumers {
        p.join()?;
    }
    got.sort();
    println!("first results: {:?}", &got[..5]);
    println!(
        "received {} results, sum of squares {}",
        got.len(),
        got.iter().map(|r| r.1).sum::<u64>()
    );
    assert_eq!(got.len(), 100);
    Ok(())
}
