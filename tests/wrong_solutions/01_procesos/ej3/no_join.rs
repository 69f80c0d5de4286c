// Names the child but never waits for it.
fn run_named(name: &str, job: fn()) -> Result<Option<i32>> {
    let p = Process::new(job).with_name(name);
    p.start()?;
    Ok(p.exitcode())
}
