// Wrong: keeps going after an error and returns the last one, not the first.
fn parse_all(words: &[&str]) -> Result<Vec<u32>, std::num::ParseIntError> {
    let mut out = Vec::new();
    let mut error = None;
    for w in words {
        match w.parse::<u32>() {
            Ok(n) => out.push(n),
            Err(e) => error = Some(e),
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
