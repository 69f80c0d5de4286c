// A pool, but the whole range as one task: one worker does everything.
fn parallel_count_primes(limit: u64, workers: usize, pieces: u64) -> Result<u64> {
    let _ = pieces;
    let pool = Pool::new(workers)?;
    let total = pool.starmap(|lo, hi| count_primes(lo, hi), vec![(0, limit)])?.iter().sum();
    pool.close()?;
    pool.join()?;
    Ok(total)
}
