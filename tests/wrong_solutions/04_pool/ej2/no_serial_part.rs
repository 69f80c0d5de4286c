// Forgets the serial part: as if everything ran in parallel.
fn amdahl(p: f64, n: u32) -> f64 {
    1.0 / (p / n as f64)
}

fn parallel_fraction(speedup: f64, n: u32) -> f64 {
    (1.0 - 1.0 / speedup) / (1.0 - 1.0 / n as f64)
}
