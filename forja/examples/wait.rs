//! Waiting on several things at once: workers report on pipes of their
//! own and the parent handles whatever arrives first; a pipe, a queue and a
//! process in one wait; then the processes themselves.
//!
//! Run with `cargo run -p forja --example wait`.

use forja::prelude::*;
use std::time::Duration;

fn main() -> forja::Result<()> {
    // One pipe per worker; the slowest starts first.
    let mut receivers = Vec::new();
    let mut workers = Vec::new();
    for i in 0..3u64 {
        let (rx, tx) = Pipe::one_way::<String>()?;
        let p = Process::new(move || {
            std::thread::sleep(Duration::from_millis(100 * (3 - i)));
            tx.send(&format!("worker {i} done")).unwrap();
        });
        p.start()?;
        receivers.push(rx);
        workers.push(p);
    }
    // Python: while readers: for r in wait(readers): ... readers.remove(r)
    while !receivers.is_empty() {
        // From the last index down, so removing one keeps the others valid.
        for i in forja::wait_slice(&receivers, Duration::MAX)?
            .into_iter()
            .rev()
        {
            match receivers[i].recv() {
                Ok(msg) => println!("{msg}"),
                Err(Error::Eof { .. }) => drop(receivers.remove(i)), // its worker ended
                Err(e) => return Err(e),
            }
        }
    }

    // Different kinds in one wait: the indices say which is ready.
    let (rx, tx) = Pipe::one_way::<String>()?;
    let q: Queue<String> = Queue::new()?;
    let p = {
        let q = q.clone();
        Process::new(move || {
            std::thread::sleep(Duration::from_millis(100));
            q.put(&"an item on the queue".to_string()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            tx.send(&"a message on the pipe".to_string()).unwrap();
        })
    };
    p.start()?;
    let ready = forja::wait(&[&rx, &q, &p], Duration::MAX)?;
    println!("ready first: {ready:?} (0: the pipe, 1: the queue, 2: the process)");
    println!("the queue had: {}", q.get()?);
    let ready = forja::wait(&[&rx, &q, &p], Duration::MAX)?;
    println!("then: {ready:?}; the pipe had: {}", rx.recv()?);
    workers.push(p);

    // Processes are waitable too (through their pidfd, `Process::sentinel`).
    let ended = forja::wait_slice(&workers, Duration::MAX)?;
    println!("{} processes have ended", ended.len());
    for p in &workers {
        p.join()?;
    }

    // `for msg in &rx` receives until every sender is gone.
    let (rx, tx) = Pipe::one_way::<u32>()?;
    let counter = Process::new(move || (1..=3).for_each(|n| tx.send(&n).unwrap()));
    counter.start()?;
    let mut total = 0;
    for n in &rx {
        total += n?;
    }
    println!("sum of what arrived before end of file: {total}");
    counter.join()
}
