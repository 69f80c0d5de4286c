//! A pool of workers: map, imap, imap_unordered, starmap, apply_async, the
//! two contexts a task can have (a value sent with it, the pool's own), and
//! what happens when a task panics.
//!
//! Run with `cargo run -p forja --example pool`.

use forja::prelude::*;
use std::time::{Duration, Instant};

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50));
    x * x
}

/// A task with a context: the value given to `map_with`.
fn scale(factor: &u64, x: u64) -> u64 {
    factor * x
}

/// A task with the pool's context: a shared counter every worker has.
fn count_prime(found: &Value<u64>, n: u64) -> bool {
    let prime = is_prime(n);
    if prime {
        *found.get_lock().unwrap() += 1;
    }
    prime
}

fn main() -> forja::Result<()> {
    let pool = Pool::new(process_cpu_count())?;
    println!(
        "a pool of {} workers: {:?}",
        pool.size(),
        pool.worker_pids()
    );

    let primes = pool.map(is_prime, 0..50)?;
    let found: Vec<usize> = (0..50).filter(|&i| primes[i]).collect();
    println!("primes below 50: {found:?}");

    let t = Instant::now();
    let squares = pool.map(slow_square, 0..8)?;
    println!(
        "8 tasks of 50 ms in {:?} with {} workers: {squares:?}",
        t.elapsed(),
        pool.size()
    );

    print!("imap (in order):");
    for r in pool.imap(slow_square, 0..5)? {
        print!(" {}", r?);
    }
    println!();
    print!("imap_unordered (as they finish):");
    for r in pool.imap_unordered(|x: u64| x + 100, 0..5)? {
        print!(" {}", r?);
    }
    println!();

    let powers = pool.starmap(|b: u64, e: u32| b.pow(e), vec![(2, 10), (3, 3)])?;
    println!("starmap: {powers:?}");

    let pending = pool.apply_async(slow_square, 12)?;
    println!("apply_async ready right away? {}", pending.ready());
    println!("apply_async result: {}", pending.get()?);

    // A panicking task is an Err carrying the message; the worker survives.
    let results = pool.map(
        |x: i32| {
            if x == 3 {
                panic!("I don't like {x}")
            } else {
                x
            }
        },
        0..5,
    );
    println!("a map with a panicking task: {}", results.unwrap_err());
    println!(
        "the pool still works: {:?}",
        pool.map(|x: i32| x * 2, 0..3)?
    );

    // Tasks capture nothing: what they need is a context. A value, sent
    // with the tasks (like Python's functools.partial)...
    println!("map_with: {:?}", pool.map_with(10, scale, 1..=5)?);

    pool.close()?;
    pool.join()?;
    println!("worker processes forked in total: {}", pool.worker_starts());

    // ...or the pool's own, made before its workers are forked, so every
    // worker has it: here a shared Value (Python: initializer + initargs).
    let counter = Pool::builder()
        .processes(cpu_count())
        .context(Value::new(0u64)?)
        .build()?;
    counter.with_context().map(count_prime, 0..1000)?;
    println!(
        "primes below 1000, counted by the workers: {}",
        counter.context().load()?
    );
    Ok(())
}
