//! Named shared memory: the parent makes a block of 1000 `f64`s, four
//! children attach to it *by name* and each fills a quarter; the parent
//! sums it. Then the clean-up story: the creator's handle unlinks the name.
//!
//! Run with `cargo run -p forja --example shared_memory`.

use forja::prelude::*;
use forja::shared_memory::SharedMemory;

const N: usize = 1000;

fn main() -> forja::Result<()> {
    let block = SharedMemory::new(N * size_of::<f64>())?;
    println!("made {:?}", block);
    let workers: Vec<Process> = (0..4)
        .map(|w| {
            let name = block.name().to_string();
            Process::new(move || {
                // Python: SharedMemory(name) in another process.
                let mine = SharedMemory::attach_with_size(&name, N * 8).unwrap();
                let mut g = mine.lock().unwrap();
                let xs: &mut [f64] = forja::bytemuck::cast_slice_mut(&mut g[..]);
                let quarter = (w * N / 4)..((w + 1) * N / 4);
                for (x, i) in xs[quarter.clone()].iter_mut().zip(quarter) {
                    *x = i as f64;
                }
            })
        })
        .collect();
    for p in &workers {
        p.start()?;
    }
    for p in &workers {
        p.join()?;
    }
    let total: f64 = forja::bytemuck::cast_slice::<u8, f64>(&block.lock()?[..])
        .iter()
        .sum();
    println!("sum of 0..{N} written by 4 processes: {total}");

    let name = block.name().to_string();
    drop(block); // the creator's handle: unlinks the name (Python: close() + unlink())
    match SharedMemory::attach(&name) {
        Err(e) => println!("after the creator dropped it: {e}"),
        Ok(_) => unreachable!("the creator's drop unlinks"),
    }
    Ok(())
}
