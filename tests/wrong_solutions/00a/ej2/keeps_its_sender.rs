// Wrong: the parent keeps its own sender, so EOF never arrives and the read loop waits forever.
fn gather_pids(n: usize) -> Result<Vec<i32>> {
    let (rx, tx) = Pipe::one_way::<i32>()?;
    let mut kids = Vec::new();
    for _ in 0..n {
        let my_tx = tx.try_clone()?;
        kids.push(Process::new(move || {
            my_tx.send(&(std::process::id() as i32)).unwrap();
        }));
    }
    for k in &kids {
        k.start()?;
    }
    let mut pids = Vec::new();
    while let Ok(pid) = rx.recv() {
        pids.push(pid);
    }
    for k in &kids {
        k.join()?;
    }
    pids.sort();
    Ok(pids)
}
