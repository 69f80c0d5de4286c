//! Pipes: a two-way conversation, a one-way stream ending in end-of-file,
//! and a message much larger than the pipe buffer.
//!
//! Run with `cargo run -p forja --example pipe`.

use forja::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    Square(u64),
    Result(u64),
    Bye,
}

fn main() -> forja::Result<()> {
    // Two-way: the parent asks, the child answers.
    let (parent_end, child_end) = Pipe::new::<Msg>()?;
    let child = Process::new(move || {
        while let Ok(Msg::Square(x)) = child_end.recv() {
            child_end.send(&Msg::Result(x * x)).unwrap();
        }
    });
    child.start()?;
    for x in 1..=3 {
        parent_end.send(&Msg::Square(x))?;
        println!("parent: {x}² = {:?}", parent_end.recv()?);
    }
    parent_end.send(&Msg::Bye)?;
    child.join()?;

    // One-way: (receiver, sender), reading end first as in Python.
    // The sender moves into the child; once the child ends, recv() reports
    // end of file — no manual close needed in the parent.
    let (rx, tx) = Pipe::one_way::<String>()?;
    let producer = Process::new(move || {
        for i in 0..3 {
            tx.send(&format!("line {i}")).unwrap();
        }
    });
    producer.start()?;
    loop {
        match rx.recv() {
            Ok(line) => println!("got {line:?}"),
            Err(forja::Error::Eof { .. }) => {
                println!("end of file: the producer is done");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    producer.join()?;

    // Big messages are streamed: 10 MB through a 64 KB pipe.
    let (rx, tx) = Pipe::one_way::<Vec<u8>>()?;
    let big = Process::new(move || tx.send(&vec![7u8; 10_000_000]).unwrap());
    big.start()?;
    let data = rx.recv()?;
    big.join()?;
    println!(
        "received {} bytes, sum {}",
        data.len(),
        data.iter().map(|&b| b as u64).sum::<u64>()
    );
    Ok(())
}
