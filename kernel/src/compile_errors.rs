//! Compile errors (and other evcxr errors) as Jupyter tracebacks a student can
//! read: rustc's own report, complete (every `help:`, `note:` and
//! suggestion), with the cell's execution count and line numbers in place of
//! `src/lib.rs` and evcxr's generated lines left out, then forja's hints.

use crate::hints::{self, Diagnostic, Lang};
use crate::outcome::CellError;
use evcxr::{CompilationError, LineOrigin};
use unicode_width::UnicodeWidthStr;

/// Turns an evcxr error for `code`, run as cell `cell` (its execution count),
/// into a cell error.
pub fn cell_error(error: &evcxr::Error, code: &str, cell: u64) -> CellError {
    cell_error_in(error, code, cell, crate::messages::lang())
}

fn cell_error_in(error: &evcxr::Error, code: &str, cell: u64, lang: Lang) -> CellError {
    match error {
        evcxr::Error::CompilationErrors(errors) => {
            // Warnings (from the cell or from a path dependency such as
            // forja) never stand in for the error; a warning with a hint
            // (an unused `Result`) is shown after the errors.
            let is_error = |e: &&CompilationError| e.level() == "error";
            let mut shown: Vec<&CompilationError> = errors.iter().filter(is_error).collect();
            if shown.is_empty() {
                shown = errors.iter().collect();
            } else {
                shown.extend(
                    errors.iter().filter(|e| {
                        !is_error(e) && e.is_from_user_code() && !hints_of(e).is_empty()
                    }),
                );
            }
            let mut traceback = Vec::new();
            for e in &shown {
                if !traceback.is_empty() {
                    traceback.push(String::new());
                }
                traceback.extend(report(e, code, cell, lang));
            }
            let evalue = match shown.first() {
                Some(e) => match first_cell_line(e) {
                    Some(line) => format!("{} ({})", e.message(), place(lang, cell, line)),
                    None => e.message(),
                },
                None => crate::messages::Msg::DidNotCompile.get().into(),
            };
            CellError {
                ename: "CompileError".into(),
                evalue,
                traceback,
            }
        }
        other => {
            let text = other.to_string();
            CellError {
                ename: "Error".into(),
                evalue: text.lines().next().unwrap_or_default().to_owned(),
                traceback: text.lines().map(str::to_owned).collect(),
            }
        }
    }
}

/// `celda [N], línea L`.
fn place(lang: Lang, cell: u64, line: usize) -> String {
    hints::fill(
        hints::Msg::CellLine.text(lang),
        &[("cell", &cell.to_string()), ("line", &line.to_string())],
    )
}

/// The diagnostic's code: `E0382`, or a lint's name.
fn code_of(e: &CompilationError) -> Option<&str> {
    e.code()
}

fn hints_of(e: &CompilationError) -> Vec<&'static hints::Hint> {
    let report = strip_ansi(&e.rendered());
    let message = e.message();
    hints::hints_for(&Diagnostic {
        code: code_of(e),
        message: &message,
        report: &report,
    })
}

/// The first line of the cell that any span of the diagnostic (its children's
/// and macro expansions' too) points at: where the student should look.
fn first_cell_line(e: &CompilationError) -> Option<usize> {
    fn walk(e: &CompilationError, v: &serde_json::Value, primary_only: bool) -> Option<usize> {
        for span in v["spans"].as_array().into_iter().flatten() {
            if primary_only && span["is_primary"].as_bool() != Some(true) {
                continue;
            }
            let mut s = span;
            loop {
                if s["file_name"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("lib.rs"))
                    && let Some(line) = s["line_start"].as_u64()
                    && let LineOrigin::Cell { line, .. } = e.line_origin(line as usize)
                {
                    return Some(line);
                }
                if s["expansion"]["span"].is_object() {
                    s = &s["expansion"]["span"];
                } else {
                    break;
                }
            }
        }
        None
    }
    let json = &e.json;
    walk(e, json, true)
        .or_else(|| walk(e, json, false))
        .or_else(|| {
            json["children"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|child| walk(e, child, false))
        })
        .or_else(|| {
            e.spanned_messages()
                .iter()
                .chain(e.help_spanned())
                .find_map(|m| m.span.map(|s| s.start_line))
        })
}

/// One diagnostic's lines: rustc's report with the cell's lines, or (for the
/// errors evcxr makes up itself) a report in rustc's style; then the hints.
fn report(e: &CompilationError, code: &str, cell: u64, lang: Lang) -> Vec<String> {
    let rendered = e.rendered();
    let mut lines = if rendered.trim().is_empty() {
        fallback(e, code, cell, lang)
    } else {
        remap(&rendered, e, cell, lang)
    };
    // The report points at no line of this cell (an error inside forja,
    // reached from the student's call): say where the call is.
    let names_cell = lines
        .iter()
        .any(|l| strip_ansi(l).trim_start().starts_with("--> ") && l.contains(&cell_tag(cell)));
    if !names_cell && let Some(line) = first_cell_line(e) {
        lines.insert(
            1.min(lines.len()),
            format!(
                "  \x1b[1;34m-->\x1b[0m {} {}",
                hints::Msg::CalledFrom.text(lang),
                place(lang, cell, line)
            ),
        );
    }
    for hint in hints_of(e) {
        lines.push(format!(
            "\x1b[1;32m{}\x1b[0m: {}",
            hints::Msg::HintWord.text(lang),
            hint.text.text(lang)
        ));
    }
    lines
}

fn cell_tag(cell: u64) -> String {
    format!("[{cell}]")
}

/// rustc's report with `src/lib.rs` lines turned into the cell's: the
/// `--> src/lib.rs:L:C` line names the cell and its line, the gutter shows the
/// cell's line numbers (right-aligned in rustc's width, so nothing moves), and
/// lines of evcxr's generated code, with the annotations under them, are left
/// out. Colours are kept, except rustc's bright white, unreadable on a light
/// background.
fn remap(rendered: &str, e: &CompilationError, cell: u64, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    // Inside the annotations under a dropped (generated) source line.
    let mut skipping = false;
    for raw in rendered.trim_end().lines() {
        let raw = readable_colours(raw);
        let plain = strip_ansi(&raw);
        if let Some(rest) = location(&plain) {
            skipping = false;
            if let Some((file, line, col)) = split_location(rest)
                && file.ends_with("src/lib.rs")
            {
                let arrow = &plain[..plain.len() - rest.len()];
                let text = match e.line_origin(line) {
                    LineOrigin::Cell {
                        line,
                        column_offset,
                    } => format!("{}, {}", place(lang, cell, line), col + column_offset),
                    LineOrigin::EarlierCell => hints::Msg::EarlierCell.text(lang).to_owned(),
                    _ => continue,
                };
                out.push(format!("\x1b[1;34m{arrow}\x1b[0m{text}"));
                continue;
            }
            out.push(raw);
            continue;
        }
        if let Some((number, width)) = gutter_number(&plain) {
            skipping = false;
            match e.line_origin(number) {
                LineOrigin::Cell { line, .. } => {
                    out.push(replace_number(&raw, number, &format!("{line:<width$}")));
                }
                LineOrigin::EarlierCell => {
                    out.push(replace_number(&raw, number, &" ".repeat(width)));
                }
                _ => skipping = true,
            }
            continue;
        }
        if skipping && is_annotation(&plain) {
            continue;
        }
        skipping = false;
        out.push(raw);
    }
    out
}

/// What follows `-->` or `:::` on a location line.
fn location(plain: &str) -> Option<&str> {
    let t = plain.trim_start();
    t.strip_prefix("--> ").or_else(|| t.strip_prefix("::: "))
}

/// `file:line:col`.
fn split_location(s: &str) -> Option<(&str, usize, usize)> {
    let mut parts = s.rsplitn(3, ':');
    let col = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?, line, col))
}

/// A source line of the report: `12 | code`, or a suggestion's `12 ~ code`,
/// `12 + code`, `12 - code` (rustc left-aligns the numbers). Returns the
/// number and how many digits it has.
fn gutter_number(plain: &str) -> Option<(usize, usize)> {
    let rest = plain.trim_start_matches(' ');
    let n = rest.find(|c: char| !c.is_ascii_digit())?;
    if n == 0 {
        return None;
    }
    let after = &rest[n..];
    let separator = after.trim_start_matches(' ');
    if separator.len() == after.len() || !separator.starts_with(['|', '~', '+', '-']) {
        return None;
    }
    Some((rest[..n].parse().ok()?, n))
}

/// An annotation line under a source line: the gutter bar and something
/// after it (`   |     ^^^ label`, `   |     |`).
fn is_annotation(plain: &str) -> bool {
    plain
        .trim_start()
        .strip_prefix('|')
        .is_some_and(|rest| !rest.trim().is_empty())
}

/// `raw` with its first `number` (the gutter's) replaced by `by`, which is
/// as wide, so the gutter keeps its width.
fn replace_number(raw: &str, number: usize, by: &str) -> String {
    let digits = number.to_string();
    match raw.find(&digits) {
        Some(at) => format!("{}{by}{}", &raw[..at], &raw[at + digits.len()..]),
        None => raw.to_owned(),
    }
}

/// rustc writes headers in bright white (`97`, `38;5;15`), invisible on a
/// light notebook: plain bold instead.
fn readable_colours(line: &str) -> String {
    line.replace("\x1b[38;5;15m", "").replace("\x1b[97m", "")
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A report in rustc's style for an error evcxr made up (it has no rustc
/// rendering): the message, where, the cell's line and a caret under the
/// span (display width, so wide characters line up), the labels and helps.
fn fallback(e: &CompilationError, code: &str, cell: u64, lang: Lang) -> Vec<String> {
    let level = if e.level().is_empty() {
        "error"
    } else {
        e.level()
    };
    let head = match e.code() {
        Some(c) if c.starts_with('E') => format!("{level}[{c}]"),
        _ => level.to_owned(),
    };
    let mut out = vec![format!(
        "\x1b[1;31m{head}\x1b[0m\x1b[1m: {}\x1b[0m",
        e.message()
    )];
    let lines: Vec<&str> = code.lines().collect();
    let mut unplaced = Vec::new();
    for m in e.spanned_messages().iter().chain(e.help_spanned()) {
        let Some(span) = m.span else {
            if !m.label.is_empty() {
                unplaced.push(m.label.clone());
            }
            continue;
        };
        let Some(text) = lines.get(span.start_line.wrapping_sub(1)) else {
            continue;
        };
        let width = span.start_line.to_string().len();
        let pad = " ".repeat(width);
        out.push(format!(
            "{pad}\x1b[1;34m-->\x1b[0m {}, {}",
            place(lang, cell, span.start_line),
            span.start_column
        ));
        out.push(format!("{pad} \x1b[1;34m|\x1b[0m"));
        out.push(format!("\x1b[1;34m{} |\x1b[0m {text}", span.start_line));
        let start = span.start_column.saturating_sub(1);
        let end = if span.end_line == span.start_line {
            span.end_column.saturating_sub(1).max(start + 1)
        } else {
            text.chars().count().max(start + 1)
        };
        let before: String = text.chars().take(start).collect();
        let under: String = text.chars().skip(start).take(end - start).collect();
        let carets = "^".repeat(under.width().max(1));
        out.push(format!(
            "{pad} \x1b[1;34m|\x1b[0m {}\x1b[1;31m{carets} {}\x1b[0m",
            " ".repeat(before.width()),
            m.label
        ));
    }
    for label in unplaced {
        out.push(format!("  = {label}"));
    }
    for help in e.help() {
        out.push(format!("\x1b[1;36mhelp\x1b[0m: {help}"));
    }
    if e.spanned_messages().is_empty() && code.is_empty() {
        out.push(format!(
            "  = {}",
            hints::fill(hints::Msg::Cell.text(lang), &[("cell", &cell.to_string())])
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gutter_numbers_are_found_in_source_and_suggestion_lines() {
        assert_eq!(gutter_number("12 |     let x = 1;"), Some((12, 2)));
        assert_eq!(gutter_number("7   ~     let y = x.clone();"), Some((7, 1)));
        assert_eq!(gutter_number("104 + foo"), Some((104, 3)));
        assert_eq!(gutter_number("   |     ^^^ label"), None);
        assert_eq!(gutter_number("= note: 12 things"), None);
        assert_eq!(gutter_number("error[E0382]: x"), None);
    }

    #[test]
    fn numbers_are_replaced_in_place_keeping_colours_and_width() {
        let raw = "\x1b[0m\x1b[1m\x1b[38;5;12m112\x1b[0m \x1b[1m|\x1b[0m code";
        let out = replace_number(raw, 112, "3  ");
        assert_eq!(strip_ansi(&out), "3   | code");
        assert!(out.contains("\x1b[38;5;12m3  "));
    }

    #[test]
    fn locations_split_from_the_right() {
        assert_eq!(location("  --> src/lib.rs:14:20"), Some("src/lib.rs:14:20"));
        assert_eq!(
            split_location("src/lib.rs:14:20"),
            Some(("src/lib.rs", 14, 20))
        );
        assert_eq!(
            split_location("/home/a b/forja/src/x.rs:1:2"),
            Some(("/home/a b/forja/src/x.rs", 1, 2))
        );
    }

    #[test]
    fn annotations_are_lines_with_something_after_the_bar() {
        assert!(is_annotation("   |     ^^^ moved"));
        assert!(!is_annotation("   |"));
        assert!(!is_annotation("help: x"));
    }

    #[test]
    fn ansi_is_stripped_and_bright_white_dropped() {
        assert_eq!(strip_ansi("\x1b[1;31merror\x1b[0m: x"), "error: x");
        assert_eq!(readable_colours("\x1b[1m\x1b[97mhi"), "\x1b[1mhi");
    }
}
