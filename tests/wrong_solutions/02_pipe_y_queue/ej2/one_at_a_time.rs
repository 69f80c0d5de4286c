// Each worker gets its share, and is waited for before the next one starts.
fn sum_with_workers(nums: Vec<u64>, workers: usize) -> Result<u64> {
    let tasks: Queue<Option<u64>> = Queue::new()?;
    let partials: Queue<u64> = Queue::new()?;
    let workers = workers.max(1);
    let mut total = 0;
    for w in 0..workers {
        let (t, r) = (tasks.clone(), partials.clone());
        let p = Process::new(move || {
            let mut sum = 0;
            while let Some(n) = t.get().unwrap() {
                sum += n;
            }
            r.put(&sum).unwrap();
        });
        p.start()?;
        for n in nums.iter().skip(w).step_by(workers) {
            tasks.put(&Some(*n))?;
        }
        tasks.put(&None)?;
        total += partials.get()?;
        p.join()?;
    }
    Ok(total)
}
