// Wrong: no processes at all: the caller sends its own PID n times.
fn gather_pids(n: usize) -> Result<Vec<i32>> {
    let (rx, tx) = Pipe::one_way::<i32>()?;
    for _ in 0..n {
        tx.send(&(std::process::id() as i32))?;
    }
    drop(tx);
    let mut pids = Vec::new();
    while let Ok(pid) = rx.recv() {
        pids.push(pid);
    }
    Ok(pids)
}
