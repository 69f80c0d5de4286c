// Forgets the name: the child keeps forja's default one.
fn run_named(name: &str, job: fn()) -> Result<Option<i32>> {
    let _ = name;
    let p = Process::new(job);
    p.start()?;
    p.join()?;
    Ok(p.exitcode())
}
