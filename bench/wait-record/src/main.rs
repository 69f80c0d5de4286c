//! `wait-record [ROUNDS]`: ns per recorded wait (claim a slot of the wait
//! table, fill it, give it back: what a blocking forja call adds before it
//! sleeps) and ns per uncontended `Lock` acquire + release (which records
//! nothing). Prints the best and the median of ROUNDS rounds (default 15).

use std::time::Instant;

const OPS: u32 = 200_000;

fn measure(rounds: usize, mut op: impl FnMut()) -> (f64, f64) {
    for _ in 0..OPS / 10 {
        op();
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
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let lock = forja::Lock::new().unwrap();
    let (best, median) = measure(rounds, || drop(lock.acquire().unwrap()));
    println!("uncontended Lock acquire+release: best {best:.1} ns, median {median:.1} ns");
    let (best, median) = measure(rounds, forja::waits::bench_record_one_wait);
    println!("one recorded wait (begin + end): best {best:.1} ns, median {median:.1} ns");
}
