//! Callbacks, `maxtasksperchild` and Python's `concurrent.futures` style:
//! a `ProcessPoolExecutor`, `submit`, `Future`s and `as_completed`.
//!
//! Run with `cargo run -p forja --example futures`.

use forja::prelude::*;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Pretends to work for `ms` milliseconds.
fn work(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn main() -> forja::Result<()> {
    let start = Instant::now();

    // Python: pool.apply_async(work, (ms,), callback=..., error_callback=...)
    let pool = Pool::new(3)?;
    let (tx, rx) = mpsc::channel();
    let mut pending = Vec::new();
    for ms in [300, 100, 200] {
        let tx = tx.clone();
        let r = pool
            .apply_async(work, ms)?
            .callback(move |v| tx.send(v).unwrap())
            .error_callback(|e| eprintln!("failed: {e}"));
        pending.push(r);
    }
    drop(tx);
    // The callbacks run in this process, as each task finishes.
    let order: Vec<u64> = rx.iter().collect();
    println!("callbacks in the order tasks finished: {order:?}");

    // Results move on while we do something else: no pool call here.
    let r = pool.apply_async(work, 50)?;
    std::thread::sleep(Duration::from_millis(200));
    println!("ready without waiting for it: {}", r.ready());

    // maxtasksperchild: each worker runs 2 tasks, then a fresh one replaces it.
    let recycled = Pool::builder().processes(2).maxtasksperchild(2).build()?;
    let pids = recycled
        .chunksize(1)
        .map(|_: u8| std::process::id(), vec![0; 8])?;
    let mut distinct = pids.clone();
    distinct.sort();
    distinct.dedup();
    println!("8 tasks ran in {} different workers", distinct.len());

    // concurrent.futures
    let ex = ProcessPoolExecutor::new(3)?;
    let futures: Vec<_> = [250, 50, 150]
        .into_iter()
        .map(|ms| ex.submit(work, ms))
        .collect::<forja::Result<_>>()?;
    for f in as_completed(&futures) {
        println!("finished: {} ms", f?.result()?);
    }
    let late = ex.submit(work, 10)?;
    late.add_done_callback(|r| println!("done callback: {r:?}"));
    println!("late: {}", late.result()?);
    ex.shutdown(true)?;

    println!("all in {:?}", start.elapsed());
    Ok(())
}
