// amdahl is right; the inverse is not.
fn amdahl(p: f64, n: u32) -> f64 {
    1.0 / ((1.0 - p) + p / n as f64)
}

fn parallel_fraction(speedup: f64, n: u32) -> f64 {
    speedup / n as f64
}
