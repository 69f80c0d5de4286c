// The child squares, but the pid returned is the parent's (os.getpid() called in the wrong process).
fn square_in_child(x: u64) -> Result<(u64, u32)> {
    let (parent_end, child_end) = Pipe::new::<u64>()?;
    let p = Process::new(move || {
        let x = child_end.recv().unwrap();
        child_end.send(&(x * x)).unwrap();
    });
    p.start()?;
    parent_end.send(&x)?;
    let square = parent_end.recv()?;
    p.join()?;
    Ok((square, std::process::id()))
}
