// Locked, but lets the balance go below zero.
fn transfer(accounts: &RawArray<i64>, lock: &Lock, from: usize, to: usize, amount: i64) -> Result<bool> {
    let _guard = lock.acquire()?;
    accounts.store(from, accounts.load(from)? - amount)?;
    accounts.store(to, accounts.load(to)? + amount)?;
    Ok(true)
}
