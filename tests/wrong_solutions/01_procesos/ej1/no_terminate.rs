// Waits up to the limit but never stops the late child: it is left running.
fn run_with_deadline(job: fn(), limit: Duration) -> Result<Option<i32>> {
    let p = Process::new(job);
    p.start()?;
    p.join_timeout(limit)?;
    Ok(p.exitcode())
}
