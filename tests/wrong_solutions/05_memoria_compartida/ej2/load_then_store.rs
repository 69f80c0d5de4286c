// load() and store() each take the lock, but not the two together: updates are lost.
fn record(stats: &Value<Stats>, x: f64) -> Result<()> {
    let mut s = stats.load()?;
    s.count += 1;
    s.sum += x;
    s.min = s.min.min(x);
    s.max = s.max.max(x);
    stats.store(s)
}
