// Returns every error, EOF included: the normal end becomes a failure.
fn collect_until_eof(rx: Receiver<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    loop {
        out.push(rx.recv()?);
    }
}
