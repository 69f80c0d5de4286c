// Like a Python list: each child writes into its own copy, the parent sees zeros.
fn fill_squares(n: usize) -> Result<Vec<i64>> {
    let arr = vec![0i64; n];
    let procs: Vec<Process> = (0..n)
        .map(|i| {
            let mut mine = arr.clone();
            Process::new(move || mine[i] = (i * i) as i64)
        })
        .collect();
    for p in &procs { p.start()?; }
    for p in &procs { p.join()?; }
    Ok(arr)
}
