// Wrong: unwrap instead of `?`: a word that is not a number panics.
fn parse_all(words: &[&str]) -> Result<Vec<u32>, std::num::ParseIntError> {
    Ok(words.iter().map(|w| w.parse::<u32>().unwrap()).collect())
}
