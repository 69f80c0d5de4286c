// Forgets `with lock:`: read, sleep, write with no lock at all.
fn add_many(counter: &RawValue<u64>, lock: &Lock, n: u64) -> Result<()> {
    let _ = lock;
    for _ in 0..n {
        let x = counter.load();
        sleep(Duration::from_millis(1))?;
        counter.store(x + 1);
    }
    Ok(())
}
