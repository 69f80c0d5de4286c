// A new executor for every task: many more than two workers.
fn squares(xs: Vec<u64>) -> Result<Vec<(u64, u32)>> {
    let mut out = Vec::new();
    for x in xs {
        let ex = ProcessPoolExecutor::new(2)?;
        out.push(ex.submit(square_where, x)?.result()?);
        ex.shutdown(true)?;
    }
    Ok(out)
}
