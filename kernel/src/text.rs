//! Offsets: Jupyter counts unicode code points, evcxr counts bytes.

/// Byte offset of code point `n` (end of text if past it).
pub fn char_to_byte(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map(|(b, _)| b).unwrap_or(s.len())
}

/// Code-point offset of byte `b` (rounded down to a char boundary).
pub fn byte_to_char(s: &str, b: usize) -> usize {
    s.char_indices().take_while(|(i, _)| *i < b).count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_round_trip() {
        let s = "ñandú = 1";
        for n in 0..=s.chars().count() {
            assert_eq!(super::byte_to_char(s, super::char_to_byte(s, n)), n);
        }
        assert_eq!(super::char_to_byte(s, 1), 2);
    }
}
