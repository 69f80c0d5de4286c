//! A Semaphore lets at most 2 of 5 processes into a section at once; a
//! BoundedSemaphore refuses an extra release.
//!
//! `cargo run -p forja --example semaphore`
use forja::prelude::*;
use std::time::Duration;

fn main() -> forja::Result<()> {
    let slots = Semaphore::new(2)?;
    let inside = Value::new(0u32)?;
    let most = Value::new(0u32)?;
    let children: Vec<Process> = (0..5)
        .map(|i| {
            let (slots, inside, most) = (slots.clone(), inside.clone(), most.clone());
            Process::new(move || {
                let _slot = slots.acquire().expect("acquire");
                let now = {
                    let mut n = inside.get_lock().expect("lock");
                    *n += 1;
                    *n
                };
                let mut m = most.get_lock().expect("lock");
                *m = (*m).max(now);
                drop(m);
                println!("process {i} inside ({now} inside now)");
                std::thread::sleep(Duration::from_millis(50));
                *inside.get_lock().expect("lock") -= 1;
            })
        })
        .collect();
    for p in &children {
        p.start()?;
    }
    for p in &children {
        p.join()?;
    }
    println!("most processes inside at once: {}", most.load()?);
    let bounded = BoundedSemaphore::new(1)?;
    match bounded.release() {
        Err(e) => println!("BoundedSemaphore extra release: {e}"),
        Ok(()) => unreachable!("a bounded semaphore refuses to go above its start"),
    }
    Ok(())
}
