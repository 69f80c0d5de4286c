//! Offsets: Jupyter counts unicode code points, evcxr counts bytes.

/// Byte offset of code point `n` (end of text if past it).
pub fn char_to_byte(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map(|(b, _)| b).unwrap_or(s.len())
}

/// Code-point offset of byte `b` (rounded down to a char boundary).
pub fn byte_to_char(s: &str, b: usize) -> usize {
    s.char_indices().take_while(|(i, _)| *i < b).count()
}

/// The byte offset of the end of the identifier that contains (or ends at) `b`.
pub fn end_of_word(s: &str, b: usize) -> usize {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut end = b.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    for c in s[end..].chars() {
        if !is_word(c) {
            break;
        }
        end += c.len_utf8();
    }
    end
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

    #[test]
    fn end_of_word_moves_to_the_name_end() {
        let s = "let v = my_vec.len();";
        assert_eq!(super::end_of_word(s, 10), 14);
        assert_eq!(super::end_of_word(s, 14), 14);
        assert_eq!(super::end_of_word(s, s.len()), s.len());
    }
}
