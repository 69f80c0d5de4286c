// One child does the whole job, whatever nprocs says.
fn histogram(data: &[u8], nprocs: usize) -> Result<Vec<u64>> {
    let _ = nprocs;
    let bins = Array::<u64>::zeroed(256)?;
    let chunk = data.to_vec();
    let shared = bins.clone();
    let p = Process::new(move || {
        let mut g = shared.get_lock().unwrap();
        for &b in &chunk {
            g[b as usize] += 1;
        }
    });
    p.start()?;
    p.join()?;
    bins.to_vec()
}
