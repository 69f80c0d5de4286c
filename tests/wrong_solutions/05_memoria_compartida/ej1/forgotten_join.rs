// Reads the Array without waiting for the children.
fn histogram(data: &[u8], nprocs: usize) -> Result<Vec<u64>> {
    let bins = Array::<u64>::zeroed(256)?;
    let nprocs = nprocs.max(1);
    let procs: Vec<Process> = (0..nprocs)
        .map(|k| {
            let chunk = data[k * data.len() / nprocs..(k + 1) * data.len() / nprocs].to_vec();
            let bins = bins.clone();
            Process::new(move || {
                let mut local = [0u64; 256];
                for &b in &chunk {
                    local[b as usize] += 1;
                }
                let mut shared = bins.get_lock().unwrap();
                for (s, l) in shared.iter_mut().zip(local) {
                    *s += l;
                }
            })
        })
        .collect();
    for p in &procs {
        p.start()?;
    }
    bins.to_vec()
}
