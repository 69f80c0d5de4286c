// Stops at the first error of any kind, and calls it EOF.
fn collect_until_eof(rx: Receiver<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    while let Ok(m) = rx.recv() {
        out.push(m);
    }
    Ok(out)
}
