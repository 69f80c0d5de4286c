// Runs the job in the cell's own process: no child.
fn run_once(job: fn()) -> Result<Option<i32>> {
    job();
    Ok(Some(0))
}
