// `let _ =` drops the guard at once: the lock is released before the update.
fn add_many(counter: &RawValue<u64>, lock: &Lock, n: u64) -> Result<()> {
    for _ in 0..n {
        let _ = lock.acquire()?;
        let x = counter.load();
        sleep(Duration::from_millis(1))?;
        counter.store(x + 1);
    }
    Ok(())
}
