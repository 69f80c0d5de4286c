//! Four processes add to one counter; a Lock makes every increment count.
//!
//! `cargo run -p forja --example lock`
use forja::prelude::*;

fn main() -> forja::Result<()> {
    const N: u64 = 4;
    const M: u64 = 100_000;
    let lock = Lock::new()?;
    let counter = RawValue::new(0u64)?; // no lock of its own: `lock` guards it
    let children: Vec<Process> = (0..N)
        .map(|_| {
            let (lock, counter) = (lock.clone(), counter.clone());
            Process::new(move || {
                for _ in 0..M {
                    let _guard = lock.acquire().expect("acquire the lock");
                    counter.store(counter.load() + 1);
                } // released here, when the guard is dropped
            })
        })
        .collect();
    for p in &children {
        p.start()?;
    }
    for p in &children {
        p.join()?;
    }
    println!("{N} processes x {M} locked increments = {}", counter.load());
    assert_eq!(counter.load(), N * M);
    Ok(())
}
