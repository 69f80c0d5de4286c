// Wrong: skips the words that are not numbers instead of returning the error.
fn parse_all(words: &[&str]) -> Result<Vec<u32>, std::num::ParseIntError> {
    Ok(words.iter().filter_map(|w| w.parse::<u32>().ok()).collect())
}
