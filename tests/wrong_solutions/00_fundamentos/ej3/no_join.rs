// Starts the child but never waits for it.
fn run_once(job: fn()) -> Result<Option<i32>> {
    let p = Process::new(job);
    p.start()?;
    Ok(p.exitcode())
}
