//! The recent builds and cells, to place a `src/lib.rs:LINE` of any of them
//! in the student's cells: every build evcxr compiles is a library of its own
//! (`libcode_N.so`) with the same file name `src/lib.rs`, and a forja child
//! may run an older build's code (a `Process` made in cell 5, started or
//! panicking while cell 8 runs). The session writes (each build before it
//! runs, each cell that ran); the output router reads, to turn a child's
//! panic report or the running cell's stderr into "celda [12], línea 3".

use crate::cell_lines::{CellLines, enclosing_fn, find_lib_location};
use evcxr::{BuiltLibrary, LineOrigin};
use std::collections::VecDeque;
use std::sync::Arc;

/// How many builds are remembered (a child still running code of an older
/// build gets today's `src/lib.rs:L:C`).
const KEPT_BUILDS: usize = 64;

/// One build: its library's file name, the cell it was made for, where its
/// lines came from and its source.
#[derive(Debug)]
struct Build {
    library: String,
    cell: u64,
    line_map: Arc<[LineOrigin]>,
    source: Arc<str>,
}

/// The recent builds (newest last) and the cells that ran.
#[derive(Debug, Default)]
pub struct Builds {
    builds: VecDeque<Build>,
    cells: CellLines,
}

/// Where a line of a build is: the cell and line, and the function around it
/// (for a `todo!()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Execution count and line, when known.
    pub at: Option<(u64, usize)>,
    /// The `fn` the line is in.
    pub function: Option<String>,
}

impl Builds {
    /// Records a build made for cell `cell`, before its code runs.
    pub fn record_build(&mut self, built: &BuiltLibrary, cell: u64) {
        let Some(library) = built.path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        if self.builds.len() == KEPT_BUILDS {
            self.builds.pop_front();
        }
        self.builds.push_back(Build {
            library: library.to_owned(),
            cell,
            line_map: built.line_map.clone(),
            source: built.source.clone(),
        });
    }

    /// Records cell `count`'s code (it compiled and ran).
    pub fn record_cell(&mut self, count: u64, code: &str) {
        self.cells.record(count, code);
    }

    /// The cells, to place lines of the current build.
    pub fn cells(&self) -> &CellLines {
        &self.cells
    }

    /// Where line `line` of library `library` (a file name, `libcode_7.so`;
    /// `None`: the newest build) is in the cells; `None` for a library not
    /// (or no longer) known.
    pub fn place(&self, library: Option<&str>, line: usize) -> Option<Place> {
        let build = match library {
            Some(name) => self.builds.iter().rev().find(|b| b.library == name)?,
            None => self.builds.back()?,
        };
        let origin = line
            .checked_sub(1)
            .and_then(|i| build.line_map.get(i).copied())
            .unwrap_or(LineOrigin::Generated);
        let at = self.cells.place(origin, &build.source, line, build.cell);
        let lines: Vec<&str> = build.source.lines().collect();
        let function = enclosing_fn(&lines, line).map(|(_, name)| name);
        Some(Place { at, function })
    }

    /// `text` with each `src/lib.rs:L:C` of library `library` (`None`: the
    /// newest build) replaced by where it is in the cells; `None` when there
    /// is none to replace or its build is unknown.
    pub fn relocate(
        &self,
        library: Option<&str>,
        text: &str,
        lang: crate::hints::Lang,
    ) -> Option<String> {
        let mut out = String::new();
        let mut rest = text;
        let mut changed = false;
        while let Some((range, line)) = find_lib_location(rest) {
            let place = self.place(library, line).and_then(|p| p.at);
            out.push_str(&rest[..range.start]);
            match place {
                Some((cell, line)) => {
                    changed = true;
                    out.push_str(&crate::cell_lines::describe(Some((cell, line)), cell, lang));
                }
                None => out.push_str(&rest[range.clone()]),
            }
            rest = &rest[range.end..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hints::Lang;
    use std::path::PathBuf;

    fn built(n: u32, source: &str, map: Vec<LineOrigin>) -> BuiltLibrary {
        BuiltLibrary {
            path: PathBuf::from(format!("/tmp/x/target/debug/deps/libcode_{n}.so")),
            line_map: map.into(),
            source: source.into(),
        }
    }

    #[test]
    fn each_build_has_its_own_lines() {
        let mut b = Builds::default();
        let cell = |line| LineOrigin::Cell {
            line,
            column_offset: 0,
        };
        // Build 1 (cell 5): its line 2 is the cell's line 3.
        b.record_build(
            &built(
                1,
                "use x;\nfn f() {\n  panic!()\n}",
                vec![LineOrigin::Generated, cell(2), cell(3)],
            ),
            5,
        );
        b.record_cell(5, "// f\nfn f() {\n  panic!()\n}");
        // Build 2 (cell 8): the same file name, other lines.
        b.record_build(
            &built(2, "use x;\nuse y;\nfn f() {\n  panic!()\n}\nfn g() {}", {
                let mut m = vec![LineOrigin::Generated; 4];
                m[2] = LineOrigin::EarlierCell;
                m[3] = LineOrigin::EarlierCell;
                m.push(LineOrigin::Generated);
                m.push(cell(1));
                m
            }),
            8,
        );
        let p = b.place(Some("libcode_1.so"), 3).unwrap();
        assert_eq!(p.at, Some((5, 3)));
        assert_eq!(p.function.as_deref(), Some("f"));
        // An earlier cell's function re-emitted in build 2.
        assert_eq!(b.place(Some("libcode_2.so"), 4).unwrap().at, Some((5, 3)));
        assert_eq!(b.place(None, 6).unwrap().at, Some((8, 1)));
        assert_eq!(b.place(Some("libcode_9.so"), 3), None);
        assert_eq!(
            b.relocate(Some("libcode_1.so"), "boom (at src/lib.rs:3:3)", Lang::En)
                .as_deref(),
            Some("boom (at cell [5], line 3)")
        );
        assert_eq!(b.relocate(None, "nothing here", Lang::En), None);
    }
}
