// `let _ =` drops the guard at once: the lock protects nothing.
fn transfer(accounts: &RawArray<i64>, lock: &Lock, from: usize, to: usize, amount: i64) -> Result<bool> {
    let _ = lock.acquire()?;
    let balance = accounts.load(from)?;
    if balance < amount {
        return Ok(false);
    }
    accounts.store(from, balance - amount)?;
    accounts.store(to, accounts.load(to)? + amount)?;
    Ok(true)
}
