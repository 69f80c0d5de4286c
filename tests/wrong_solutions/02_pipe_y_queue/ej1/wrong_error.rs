// Turns the real error into an Eof, so the caller cannot tell them apart.
fn collect_until_eof(rx: Receiver<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    loop {
        match rx.recv() {
            Ok(msg) => out.push(msg),
            Err(Error::Eof { .. }) => return Ok(out),
            Err(_) => return Err(Error::Eof { what: "a pipe", pid: std::process::id() as i32 }),
        }
    }
}
