// Sums in the cell: no workers at all.
fn sum_with_workers(nums: Vec<u64>, workers: usize) -> Result<u64> {
    let _ = workers;
    Ok(nums.iter().sum())
}
