//! Finds evcxr content blocks (`EVCXR_BEGIN_CONTENT mime` … lines …
//! `EVCXR_END_CONTENT`) in output printed while a cell runs, so that each
//! becomes a display at once, in its place among the text.
//!
//! The evcxr ecosystem's crates (plotters' `evcxr_figure`, `evcxr_image`,
//! anything with an `evcxr_display` method) print such blocks; evcxr itself
//! folds every block into the cell's value at its end, so two figures in one
//! cell showed as one, late. Only the cell's value (what evcxr prints after
//! the runner's `EVCXR_FORJA_VALUE` line, see `vendor/evcxr`) is left to
//! evcxr. A pure state machine, fed text and giving back [`Out`]s; a block
//! split across writes is put back together, and one that never ends comes
//! back as text from [`ContentBlocks::finish`].

/// Printed by the cell's generated code (a `forja patch` in `vendor/evcxr`)
/// just before the cell's value: blocks after it, up to the end of the
/// cell, are the value and go to evcxr.
pub const VALUE_MARKER: &str = forja::link::evcxr::FORJA_VALUE;

/// Starts a block: `EVCXR_BEGIN_CONTENT text/html`.
pub const BEGIN: &str = forja::link::evcxr::BEGIN_CONTENT;
/// Ends a block (a line of its own).
pub const END: &str = forja::link::evcxr::END_CONTENT;

/// What a piece of output turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Plain output.
    Text(String),
    /// A whole block: one display.
    Display {
        /// Its MIME type.
        mime: String,
        /// Its lines, joined with `\n` (as evcxr joins them).
        body: String,
    },
}

/// The block being read.
#[derive(Debug)]
struct Block {
    /// The lines as printed (given back as text if the block never ends).
    raw: String,
    mime: String,
    lines: Vec<String>,
}

/// Finds content blocks in one stream of output (one process's stdout).
#[derive(Debug, Default)]
pub struct ContentBlocks {
    /// Text after the last newline, held while it may start a block.
    partial: String,
    /// Whether `partial` starts at the start of a line.
    line_start: bool,
    block: Option<Block>,
}

/// The MIME type of a `BEGIN` line (up to the first space, as evcxr reads it).
fn mime_of(line: &str) -> Option<String> {
    let rest = line.strip_prefix(BEGIN)?.strip_prefix(' ')?;
    let mime = rest.split([' ', '\r']).next()?.trim();
    (!mime.is_empty()).then(|| mime.to_owned())
}

impl ContentBlocks {
    /// A machine at the start of a line, outside any block.
    pub fn new() -> Self {
        Self {
            partial: String::new(),
            line_start: true,
            block: None,
        }
    }

    /// Whether a block has begun and not ended.
    pub fn in_block(&self) -> bool {
        self.block.is_some()
    }

    /// Feeds output; returns what it completes, in order.
    pub fn feed(&mut self, text: &str) -> Vec<Out> {
        let mut out = Vec::new();
        let mut plain = String::new();
        self.partial.push_str(text);
        while let Some(nl) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=nl).collect();
            let at_start = std::mem::replace(&mut self.line_start, true);
            let body = line.strip_suffix('\n').unwrap_or(&line);
            let body = body.strip_suffix('\r').unwrap_or(body);
            if let Some(block) = &mut self.block {
                if body == END {
                    let block = self.block.take().expect("in a block");
                    out.push(Out::Display {
                        mime: block.mime,
                        body: block.lines.join("\n"),
                    });
                } else {
                    block.raw.push_str(&line);
                    block.lines.push(body.to_owned());
                }
                continue;
            }
            match mime_of(body).filter(|_| at_start) {
                Some(mime) => {
                    if !plain.is_empty() {
                        out.push(Out::Text(std::mem::take(&mut plain)));
                    }
                    self.block = Some(Block {
                        raw: line.clone(),
                        mime,
                        lines: Vec::new(),
                    });
                }
                None => plain.push_str(&line),
            }
        }
        // A partial line: held only while it may be (the start of) a marker.
        if self.block.is_none() && !self.partial.is_empty() {
            let may_begin = self.line_start
                && (BEGIN.starts_with(self.partial.as_str()) || self.partial.starts_with(BEGIN));
            if !may_begin {
                plain.push_str(&std::mem::take(&mut self.partial));
                self.line_start = false;
            }
        }
        if !plain.is_empty() {
            out.push(Out::Text(plain));
        }
        out
    }

    /// The end of the output (the cell ended): an unfinished block and a
    /// held partial line come back as text, so nothing is lost.
    pub fn finish(&mut self) -> Vec<Out> {
        let mut text = String::new();
        if let Some(block) = self.block.take() {
            text.push_str(&block.raw);
        }
        text.push_str(&std::mem::take(&mut self.partial));
        self.line_start = text.is_empty() || text.ends_with('\n');
        if text.is_empty() {
            Vec::new()
        } else {
            vec![Out::Text(text)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(mime: &str, body: &str) -> Out {
        Out::Display {
            mime: mime.into(),
            body: body.into(),
        }
    }

    #[test]
    fn blocks_become_displays_in_order_with_the_text() {
        let mut m = ContentBlocks::new();
        let out = m.feed(
            "before\nEVCXR_BEGIN_CONTENT text/html\n<b>hi</b>\nEVCXR_END_CONTENT\nmiddle\n\
             EVCXR_BEGIN_CONTENT image/svg+xml\n<svg/>\nEVCXR_END_CONTENT\nafter\n",
        );
        assert_eq!(
            out,
            vec![
                Out::Text("before\n".into()),
                display("text/html", "<b>hi</b>"),
                Out::Text("middle\n".into()),
                display("image/svg+xml", "<svg/>"),
                Out::Text("after\n".into()),
            ]
        );
        assert!(m.finish().is_empty());
    }

    #[test]
    fn a_block_split_across_writes_is_put_back_together() {
        let mut m = ContentBlocks::new();
        let mut out = Vec::new();
        for piece in [
            "EVCXR_BEG",
            "IN_CONTENT text/plain\nli",
            "ne 1\nline 2\nEVCXR_END",
            "_CONTENT\n",
        ] {
            out.extend(m.feed(piece));
        }
        assert_eq!(out, vec![display("text/plain", "line 1\nline 2")]);
    }

    #[test]
    fn text_is_not_held_unless_it_may_start_a_block() {
        let mut m = ContentBlocks::new();
        assert_eq!(m.feed("progress 1%"), vec![Out::Text("progress 1%".into())]);
        // Mid-line: never a block.
        assert_eq!(
            m.feed("EVCXR_BEGIN_CONTENT text/html\n"),
            vec![Out::Text("EVCXR_BEGIN_CONTENT text/html\n".into())]
        );
        assert_eq!(m.feed("EVC"), vec![]);
        assert_eq!(m.feed("X\n"), vec![Out::Text("EVCX\n".into())]);
    }

    #[test]
    fn a_block_that_never_ends_comes_back_as_text() {
        let mut m = ContentBlocks::new();
        assert_eq!(m.feed("EVCXR_BEGIN_CONTENT text/html\n<b>half"), vec![]);
        assert!(m.in_block());
        assert_eq!(
            m.finish(),
            vec![Out::Text("EVCXR_BEGIN_CONTENT text/html\n<b>half".into())]
        );
        assert!(!m.in_block());
    }
}
