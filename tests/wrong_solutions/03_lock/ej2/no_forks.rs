// Eats without taking any fork.
fn dine(forks: &[Lock], seat: usize, meals: u32, eaten: &RawArray<u32>) -> Result<()> {
    let _ = forks;
    for _ in 0..meals {
        eaten.store(seat, eaten.load(seat)? + 1)?;
    }
    Ok(())
}
