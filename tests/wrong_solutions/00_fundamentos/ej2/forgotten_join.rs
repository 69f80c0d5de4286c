// Starts them all and never waits: no exit codes, children left running.
fn run_concurrently(n: usize, job: fn()) -> Result<Vec<(i32, Option<i32>)>> {
    let procs: Vec<Process> = (0..n).map(|_| Process::new(job)).collect();
    for p in &procs {
        p.start()?;
    }
    Ok(procs.iter().map(|p| (p.pid().unwrap(), p.exitcode())).collect())
}
