// Takes only one of its two forks.
fn dine(forks: &[Lock], seat: usize, meals: u32, eaten: &RawArray<u32>) -> Result<()> {
    for _ in 0..meals {
        let _left = forks[seat].acquire()?;
        eaten.store(seat, eaten.load(seat)? + 1)?;
    }
    Ok(())
}
