//! Each child process fills its own slice of a shared Array.
//!
//! `cargo run -p forja --example array`
use forja::prelude::*;

fn main() -> forja::Result<()> {
    const WORKERS: usize = 4;
    const PER: usize = 5;
    let squares = Array::<u64>::zeroed(WORKERS * PER)?;
    let children: Vec<Process> = (0..WORKERS)
        .map(|w| {
            let squares = squares.clone();
            Process::new(move || {
                let mut slots = squares.get_lock().expect("lock");
                for i in w * PER..(w + 1) * PER {
                    slots[i] = (i * i) as u64;
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
    let all = squares.to_vec()?;
    println!("squares computed by {WORKERS} processes: {all:?}");
    assert!(all.iter().enumerate().all(|(i, &s)| s == (i * i) as u64));
    Ok(())
}
