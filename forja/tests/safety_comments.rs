//! Every `unsafe` block and `unsafe impl` in forja/src has a `// SAFETY:`
//! comment right above it (in the comment block that precedes the line, or
//! that line's statement), so the reason it holds is written down and stays.
//! A simple line-based check: it reads code, not strings or macros.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code part of a line (before a `//` comment).
fn code(line: &str) -> &str {
    line.split_once("//").map_or(line, |(c, _)| c)
}

/// Whether `code` opens an `unsafe` block or an `unsafe impl`.
fn opens_unsafe(code: &str) -> bool {
    let mut rest = code;
    while let Some(i) = rest.find("unsafe") {
        let before = rest[..i].chars().next_back();
        let after = rest[i + "unsafe".len()..].trim_start();
        let word_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if word_start && (after.starts_with('{') || after.starts_with("impl")) {
            return true;
        }
        rest = &rest[i + "unsafe".len()..];
    }
    false
}

/// Whether the comment block above line `i` (skipping up over the lines of
/// the same statement, which do not end with `;`, `{` or `}`) says `SAFETY:`.
fn has_safety_comment(lines: &[&str], i: usize) -> bool {
    if lines[i].contains("// SAFETY:") {
        return true;
    }
    let mut j = i;
    // Up to the start of the statement.
    while j > 0 {
        let prev = lines[j - 1].trim();
        if prev.starts_with("//") || prev.is_empty() {
            break;
        }
        let prev_code = code(prev).trim_end();
        if prev_code.ends_with(';') || prev_code.ends_with('}') {
            break;
        }
        if prev.contains("// SAFETY:") {
            return true;
        }
        j -= 1;
        if i - j > 6 {
            break;
        }
    }
    // Then the comment block right above it.
    while j > 0 {
        let prev = lines[j - 1].trim();
        if !prev.starts_with("//") {
            return false;
        }
        if prev.starts_with("// SAFETY:") {
            return true;
        }
        j -= 1;
    }
    false
}

fn missing_in(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files.sort();
    let mut missing = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            if opens_unsafe(code(line)) && !has_safety_comment(&lines, i) {
                missing.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    missing
}

#[test]
fn every_unsafe_block_in_forja_src_has_a_safety_comment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let missing = missing_in(&src);
    assert!(
        missing.is_empty(),
        "`unsafe` without a `// SAFETY:` comment right above it (say why it holds):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_should() {
    assert!(opens_unsafe("let x = unsafe { f() };"));
    assert!(opens_unsafe("unsafe impl Send for X {}"));
    assert!(!opens_unsafe("pub unsafe fn f() {"));
    assert!(!opens_unsafe("let not_unsafe = 1;"));
    let ok = ["    // SAFETY: fine.", "    let x = unsafe { f() };"];
    assert!(has_safety_comment(&ok, 1));
    let ok_statement = [
        "// SAFETY: fine.",
        "let x = g(",
        "    unsafe { f() },",
        ");",
    ];
    assert!(has_safety_comment(&ok_statement, 2));
    let bad = ["// Safety: another spelling.", "unsafe { f() };"];
    assert!(!has_safety_comment(&bad, 1));
    let bad_gap = ["// SAFETY: for the line above.", "a();", "unsafe { f() };"];
    assert!(!has_safety_comment(&bad_gap, 2));
}
