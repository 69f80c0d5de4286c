//! `is_complete`: is a cell's code finished, waiting for more, or invalid?
//!
//! A lexer finds unbalanced delimiters, unterminated strings and comments
//! (incomplete); otherwise rust-analyzer's parser (the one evcxr uses) parses
//! the code as a function body: errors only at the very end mean more input
//! is needed, errors earlier mean the code is invalid.

use ra_ap_syntax::{Edition, SourceFile, TextSize};

/// The answer to an `is_complete_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    /// The code can run as it is.
    Complete,
    /// More input is needed; the suggested indent for the next line.
    Incomplete(String),
    /// The code cannot be valid whatever follows.
    Invalid,
}

impl Completeness {
    /// The `status` field of the reply.
    pub fn status(&self) -> &'static str {
        match self {
            Completeness::Complete => "complete",
            Completeness::Incomplete(_) => "incomplete",
            Completeness::Invalid => "invalid",
        }
    }
}

enum Lex {
    /// Open delimiters still unclosed.
    Open(usize),
    /// A string, char or block comment runs to the end.
    Unterminated,
    /// A closing delimiter with no matching opener.
    Mismatched,
}

fn lex(code: &str) -> Lex {
    let b = code.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while depth > 0 {
                    if i + 1 >= b.len() {
                        return Lex::Unterminated;
                    }
                    if b[i] == b'/' && b[i + 1] == b'*' {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b[i + 1] == b'/' {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'r' | b'b' | b'c' if is_raw_string_start(b, i) => {
                let (hashes, start) = raw_string_hashes(b, i);
                let mut j = start;
                loop {
                    if j >= b.len() {
                        return Lex::Unterminated;
                    }
                    if b[j] == b'"'
                        && b[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == b'#')
                            .count()
                            == hashes
                    {
                        i = j + 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Lex::Unterminated,
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
            }
            b'\'' => {
                // A char literal ('a', '\n', '\'') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    let mut j = i + 2;
                    while j < b.len() && b[j] != b'\'' {
                        j += 1;
                    }
                    if j >= b.len() {
                        return Lex::Unterminated;
                    }
                    i = j;
                } else if let Some(ch) = code[i + 1..].chars().next()
                    && code[i + 1 + ch.len_utf8()..].starts_with('\'')
                {
                    i += ch.len_utf8() + 1;
                }
            }
            b'(' | b'[' | b'{' => stack.push(c),
            b')' | b']' | b'}' => {
                let want = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if stack.pop() != Some(want) {
                    return Lex::Mismatched;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Lex::Open(stack.len())
}

fn is_raw_string_start(b: &[u8], i: usize) -> bool {
    // r"..", r#".."#, br"..", cr".." — and not the tail of an identifier.
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return false;
    }
    let mut j = i;
    if b[j] == b'b' || b[j] == b'c' {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return false;
    }
    j += 1;
    while b.get(j) == Some(&b'#') {
        j += 1;
    }
    b.get(j) == Some(&b'"')
}

fn raw_string_hashes(b: &[u8], i: usize) -> (usize, usize) {
    let mut j = i;
    while b[j] != b'r' {
        j += 1;
    }
    j += 1;
    let mut hashes = 0;
    while b[j] == b'#' {
        hashes += 1;
        j += 1;
    }
    (hashes, j + 1)
}

/// Judges whether `code` is complete.
pub fn is_complete(code: &str) -> Completeness {
    let indent = |depth: usize| "    ".repeat(depth.max(1));
    match lex(code) {
        Lex::Unterminated => return Completeness::Incomplete(String::new()),
        Lex::Mismatched => return Completeness::Invalid,
        Lex::Open(n) if n > 0 => return Completeness::Incomplete(indent(n)),
        Lex::Open(_) => {}
    }
    let trimmed = code.trim_end();
    if trimmed.is_empty() {
        return Completeness::Complete;
    }
    // Parse as a function body; `:command` lines are evcxr's, not Rust.
    let body: String = trimmed
        .lines()
        .map(|l| {
            if l.trim_start().starts_with(':') {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let prefix = "fn __forja_cell() {\n";
    let src = format!("{prefix}{body}\n}}");
    let parse = SourceFile::parse(&src, Edition::Edition2024);
    let errors = parse.errors();
    if errors.is_empty() {
        return Completeness::Complete;
    }
    let end = TextSize::from((prefix.len() + body.len()) as u32);
    if errors.iter().all(|e| e.range().start() >= end) {
        Completeness::Incomplete(String::new())
    } else {
        Completeness::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_from_the_issue() {
        assert!(matches!(is_complete("fn foo("), Completeness::Incomplete(ref i) if !i.is_empty()));
        assert_eq!(is_complete("let x = 1;"), Completeness::Complete);
        assert_eq!(is_complete("fn fn"), Completeness::Invalid);
    }

    #[test]
    fn delimiters_strings_and_comments() {
        assert!(matches!(
            is_complete("let v = vec![1, 2,"),
            Completeness::Incomplete(_)
        ));
        assert!(matches!(
            is_complete("let s = \"abc"),
            Completeness::Incomplete(_)
        ));
        assert!(matches!(
            is_complete("let s = r#\"abc\"  "),
            Completeness::Incomplete(_)
        ));
        assert!(matches!(
            is_complete("/* open"),
            Completeness::Incomplete(_)
        ));
        assert_eq!(is_complete("let s = \"(\"; // {"), Completeness::Complete);
        assert_eq!(is_complete("let c = '{';"), Completeness::Complete);
        assert_eq!(
            is_complete("fn f<'a>(x: &'a str) -> &'a str { x }"),
            Completeness::Complete
        );
        assert_eq!(is_complete("let x = (1));"), Completeness::Invalid);
    }

    #[test]
    fn expressions_items_and_commands() {
        assert_eq!(is_complete("a + 1"), Completeness::Complete);
        assert_eq!(
            is_complete("struct P { x: i32 }\nimpl P {}"),
            Completeness::Complete
        );
        assert_eq!(is_complete(":dep rand\nlet x = 1;"), Completeness::Complete);
        assert_eq!(is_complete(""), Completeness::Complete);
        assert!(matches!(
            is_complete("let x ="),
            Completeness::Incomplete(_)
        ));
    }
}
