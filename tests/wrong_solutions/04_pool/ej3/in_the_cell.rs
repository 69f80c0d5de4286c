// Calls the function in the cell's own process: no executor.
fn squares(xs: Vec<u64>) -> Result<Vec<(u64, u32)>> {
    Ok(xs.into_iter().map(square_where).collect())
}
