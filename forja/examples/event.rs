//! Workers wait on an Event until the main process says "go".
//!
//! `cargo run -p forja --example event`
use forja::prelude::*;
use std::time::Duration;

fn main() -> forja::Result<()> {
    let go = Event::new()?;
    let children: Vec<Process> = (0..3)
        .map(|i| {
            let go = go.clone();
            Process::new(move || {
                println!("worker {i}: waiting for the signal");
                go.wait().expect("wait");
                println!("worker {i}: go!");
            })
        })
        .collect();
    for p in &children {
        p.start()?;
    }
    std::thread::sleep(Duration::from_millis(200));
    println!("main: setting the event");
    go.set();
    for p in &children {
        p.join()?;
    }
    println!("is_set = {}", go.is_set());
    Ok(())
}
