//! A shared Value: with its lock every update counts; a RawValue without one
//! loses updates when processes race.
//!
//! `cargo run -p forja --example value`
use forja::prelude::*;

fn race(use_lock: bool) -> forja::Result<u64> {
    const N: u64 = 4;
    const M: u64 = 200_000;
    let locked = Value::new(0u64)?;
    let raw = RawValue::new(0u64)?;
    let start = Barrier::new(N as u32)?;
    let children: Vec<Process> = (0..N)
        .map(|_| {
            let (locked, raw, start) = (locked.clone(), raw.clone(), start.clone());
            Process::new(move || {
                start.wait().expect("barrier");
                for _ in 0..M {
                    if use_lock {
                        *locked.get_lock().expect("lock") += 1;
                    } else {
                        raw.store(raw.load() + 1); // read, then write: racy
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
    Ok(if use_lock { locked.load()? } else { raw.load() })
}

fn main() -> forja::Result<()> {
    println!("expected:              {}", 4 * 200_000);
    println!("Value (get_lock):      {}", race(true)?);
    println!("RawValue (no lock):    {}  <- lost updates", race(false)?);
    Ok(())
}
