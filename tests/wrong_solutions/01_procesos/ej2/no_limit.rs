// Ignores the limit: starts every job at once.
fn run_at_most(limit: usize, jobs: Vec<Box<dyn FnOnce() + Send>>) -> Result<Vec<Option<i32>>> {
    let _ = limit;
    let procs: Vec<Process> = jobs.into_iter().map(Process::new).collect();
    for p in &procs {
        p.start()?;
    }
    for p in &procs {
        p.join()?;
    }
    Ok(procs.iter().map(|p| p.exitcode()).collect())
}
