// One at a time, whatever the limit.
fn run_at_most(limit: usize, jobs: Vec<Box<dyn FnOnce() + Send>>) -> Result<Vec<Option<i32>>> {
    let _ = limit;
    let mut codes = Vec::new();
    for job in jobs {
        let p = Process::new(job);
        p.start()?;
        p.join()?;
        codes.push(p.exitcode());
    }
    Ok(codes)
}
