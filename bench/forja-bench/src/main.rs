//! `forja-bench [REPS] [SCALE]`: runs bench/forja_cell.rs (the same code the
//! kernel runs as a cell) and prints its JSON. Driven by bench/forja.py.

include!("../../forja_cell.rs");

fn main() {
    let mut args = std::env::args().skip(1);
    let reps: usize = args
        .next()
        .map_or(5, |s| s.parse().expect("REPS: a number"));
    let scale: f64 = args
        .next()
        .map_or(1.0, |s| s.parse().expect("SCALE: a number"));
    println!("{}", forja_bench(reps, scale));
}
