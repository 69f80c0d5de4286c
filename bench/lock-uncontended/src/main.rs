//! `lock-uncontended [ROUNDS]`: ns per uncontended acquire + release of a
//! `Lock`, a `Value`'s lock and an `RLock`, in one process and one thread.
//! Prints the best and the median of ROUNDS rounds (default 15) of
//! 1,000,000 operations each.

use std::hint::black_box;
use std::time::Instant;

const OPS: u32 = 1_000_000;

/// Best and median ns/op of `rounds` rounds of `OPS` calls of `op`.
fn measure(rounds: usize, mut op: impl FnMut()) -> (f64, f64) {
    for _ in 0..OPS / 10 {
        op(); // warm up
    }
    let mut per_op: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..OPS {
                op();
            }
            start.elapsed().as_nanos() as f64 / f64::from(OPS)
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    (per_op[0], per_op[rounds / 2])
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(15, |s| s.parse().expect("ROUNDS: a number"));
    let lock = forja::Lock::new().unwrap();
    let value = forja::Value::new(0u64).unwrap();
    let rlock = forja::RLock::new().unwrap();
    let cases: [(&str, &mut dyn FnMut()); 3] = [
        ("Lock acquire+drop", &mut || drop(black_box(lock.acquire().unwrap()))),
        ("Value get_lock += 1", &mut || *black_box(value.get_lock().unwrap()) += 1),
        ("RLock acquire+drop", &mut || drop(black_box(rlock.acquire().unwrap()))),
    ];
    for (name, op) in cases {
        let (best, median) = measure(rounds, op);
        println!("{name:<22} best {best:6.2} ns/op   median {median:6.2} ns/op");
    }
}
