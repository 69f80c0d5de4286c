// start(); join(); in the same loop: one after the other.
fn run_concurrently(n: usize, job: fn()) -> Result<Vec<(i32, Option<i32>)>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let p = Process::new(job);
        p.start()?;
        p.join()?;
        out.push((p.pid().unwrap(), p.exitcode()));
    }
    Ok(out)
}
