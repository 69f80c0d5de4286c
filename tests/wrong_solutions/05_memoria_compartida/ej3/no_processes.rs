// Fills the shared Array from the cell itself: no children.
fn fill_squares(n: usize) -> Result<Vec<i64>> {
    let arr = Array::<i64>::zeroed(n)?;
    for i in 0..n {
        arr.store(i, (i * i) as i64)?;
    }
    arr.to_vec()
}
