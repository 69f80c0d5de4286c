//! Where a line of the compiled `src/lib.rs` is in the student's cells, so a
//! panic's `src/lib.rs:LINE:COL` reads "celda [12], línea 3", also inside a
//! function defined in an earlier cell (evcxr re-emits its text verbatim and
//! keeps no line for it: the kernel finds it in the cell that defined it).

use crate::hints::{self, Lang};
use evcxr::LineOrigin;

/// How many cells are remembered to place lines of earlier cells.
const KEPT_CELLS: usize = 500;

/// The cells that compiled, by execution count.
#[derive(Debug, Default)]
pub struct CellLines {
    cells: Vec<(u64, String)>,
}

impl CellLines {
    /// Remembers cell `count`'s code (call it for each cell that compiled).
    pub fn record(&mut self, count: u64, code: &str) {
        if self.cells.len() == KEPT_CELLS {
            self.cells.remove(0);
        }
        self.cells.push((count, code.to_owned()));
    }

    /// The cell and line (1-based) of line `lib_line` of `lib_source`,
    /// which evcxr says came from `origin`; `current` is the running cell.
    pub fn place(
        &self,
        origin: LineOrigin,
        lib_source: &str,
        lib_line: usize,
        current: u64,
    ) -> Option<(u64, usize)> {
        match origin {
            LineOrigin::Cell { line, .. } => Some((current, line)),
            LineOrigin::EarlierCell => {
                let lib: Vec<&str> = lib_source.lines().collect();
                let (item_line, _) = enclosing_fn(&lib, lib_line)?;
                let head = lib[item_line - 1].trim();
                let offset = lib_line - item_line;
                self.cells.iter().rev().find_map(|(count, code)| {
                    let at = code.lines().position(|l| l.trim() == head)?;
                    Some((*count, at + 1 + offset))
                })
            }
            _ => None,
        }
    }
}

/// The line (1-based) where the `fn` around line `line` of `lib` starts,
/// and the function's name.
pub fn enclosing_fn(lib: &[&str], line: usize) -> Option<(usize, String)> {
    (1..=line.min(lib.len())).rev().find_map(|n| {
        let text = lib[n - 1];
        let at = text.find("fn ")?;
        // `fn` as a word: at the start or after a space (`pub fn`, `async fn`).
        if at > 0 && !text[..at].ends_with(' ') {
            return None;
        }
        let name: String = text[at + 3..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then_some((n, name))
    })
}

/// `celda [N], línea L`, or `celda [N]` when the line is not known.
pub fn describe(place: Option<(u64, usize)>, current: u64, lang: Lang) -> String {
    match place {
        Some((cell, line)) => hints::fill(
            hints::Msg::CellLine.text(lang),
            &[("cell", &cell.to_string()), ("line", &line.to_string())],
        ),
        None => hints::fill(
            hints::Msg::Cell.text(lang),
            &[("cell", &current.to_string())],
        ),
    }
}

/// Finds `src/lib.rs:LINE:COL` in `text`: its byte range and line. Only the
/// whole path counts: `forja/src/lib.rs:3` (a crate's own source) does not.
pub fn find_lib_location(text: &str) -> Option<(std::ops::Range<usize>, usize)> {
    let start = text
        .match_indices("src/lib.rs:")
        .map(|(i, _)| i)
        .find(|&i| {
            !text[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || "/\\_-.~".contains(c))
        })?;
    let rest = &text[start + "src/lib.rs:".len()..];
    let line_len = rest.find(|c: char| !c.is_ascii_digit())?;
    let line = rest[..line_len].parse().ok()?;
    let mut end = start + "src/lib.rs:".len() + line_len;
    let after = &text[end..];
    if let Some(col) = after.strip_prefix(':') {
        let n = col.find(|c: char| !c.is_ascii_digit()).unwrap_or(col.len());
        if n > 0 {
            end += 1 + n;
        }
    }
    Some((start..end, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_this_cell_and_of_earlier_functions() {
        let mut cells = CellLines::default();
        cells.record(4, "// suma\nfn suma(v: &[u32]) -> u32 {\n    todo!()\n}");
        let lib =
            "use x;\nfn suma(v: &[u32]) -> u32 {\n    todo!()\n}\npub fn run() {\n  suma(&[]);\n}";
        assert_eq!(
            cells.place(LineOrigin::EarlierCell, lib, 3, 9),
            Some((4, 3))
        );
        let here = LineOrigin::Cell {
            line: 2,
            column_offset: 0,
        };
        assert_eq!(cells.place(here, lib, 6, 9), Some((9, 2)));
        assert_eq!(cells.place(LineOrigin::Generated, lib, 1, 9), None);
    }

    #[test]
    fn the_enclosing_function_is_found() {
        let lib = [
            "fn a() {",
            "  let f = 1;",
            "}",
            "pub fn sum_with_workers(x: u8) {",
            "  todo!()",
        ];
        assert_eq!(enclosing_fn(&lib, 5), Some((4, "sum_with_workers".into())));
        assert_eq!(enclosing_fn(&lib, 2), Some((1, "a".into())));
    }

    #[test]
    fn lib_locations_are_found() {
        let t = "thread 'main' panicked at src/lib.rs:113:5:";
        let (range, line) = find_lib_location(t).unwrap();
        assert_eq!((&t[range], line), ("src/lib.rs:113:5", 113));
        assert_eq!(find_lib_location("nothing"), None);
        assert_eq!(find_lib_location("at /x/forja/src/lib.rs:3:1"), None);
        let t = "a/src/lib.rs:1 and (src/lib.rs:7:2)";
        assert_eq!(&t[find_lib_location(t).unwrap().0], "src/lib.rs:7:2");
    }

    #[test]
    fn places_are_described() {
        assert_eq!(describe(Some((12, 3)), 14, Lang::Es), "celda [12], línea 3");
        assert_eq!(describe(None, 14, Lang::En), "cell [14]");
    }
}
