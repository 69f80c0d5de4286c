//! How a cell's final value reaches the notebook: evcxr's content blocks
//! on stdout ([`emit`]), and the escaping of the HTML and SVG put in them.

use crate::link::evcxr;
use std::fmt::Write as _;
use std::io::Write as _;

/// Prints content blocks the way evcxr reads a cell's final value.
pub(crate) fn emit(parts: &[(&str, String)]) {
    let mut out = String::new();
    for (mime, body) in parts {
        // A line that is exactly the end marker would end the block early.
        let (begin, end) = (evcxr::BEGIN_CONTENT, evcxr::END_CONTENT);
        let body = body.replace(end, &format!("{end}\u{200b}"));
        let _ = write!(out, "{begin} {mime}\n{body}\n{end}\n");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// A cell's final value as a picture and its text (`evcxr_display` of
/// `Timeline` and `WaitGraph`).
pub(crate) fn emit_picture(text: String, svg: String) {
    emit(&[("text/plain", text), ("image/svg+xml", svg)]);
}

/// Escapes text for XML content and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }
}
