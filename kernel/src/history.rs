//! Execution history kept on disk per user, so it survives restarts.
//!
//! One JSON object per line in `$XDG_DATA_HOME/forja/history.jsonl`
//! (`~/.local/share/forja/history.jsonl`), override with `FORJA_HISTORY_FILE`.
//! Each kernel start is a new session number, as in IPython.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Entry {
    session: u64,
    line: u64,
    input: String,
}

/// The history store of one kernel.
pub struct History {
    path: Option<PathBuf>,
    entries: Vec<Entry>,
    session: u64,
}

/// The default history file.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(forja::link::env::HISTORY_FILE) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("forja").join("history.jsonl"))
}

impl History {
    /// Opens (or starts) the history at `path`; `None` keeps it in memory.
    pub fn open(path: Option<PathBuf>) -> Self {
        let entries: Vec<Entry> = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| {
                s.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default();
        let session = entries.iter().map(|e| e.session).max().unwrap_or(0) + 1;
        Self {
            path,
            entries,
            session,
        }
    }

    /// This kernel's session number.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Records cell `line` of this session.
    pub fn record(&mut self, line: u64, input: &str) {
        let e = Entry {
            session: self.session,
            line,
            input: input.to_owned(),
        };
        if let Some(path) = &self.path {
            let write = || -> std::io::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                let mut l = serde_json::to_vec(&e)?;
                l.push(b'\n');
                f.write_all(&l)
            };
            if let Err(err) = write() {
                eprintln!(
                    "forja-kernel: could not write history {}: {err}",
                    path.display()
                );
            }
        }
        self.entries.push(e);
    }

    /// Answers a `history_request` content with the `history` list.
    pub fn query(&self, req: &Value) -> Vec<Value> {
        let kind = req["hist_access_type"].as_str().unwrap_or("tail");
        let output = req["output"].as_bool().unwrap_or(false);
        // n: 0 or missing means "no limit" (the default for search).
        let n = req["n"].as_u64().filter(|&n| n > 0).map(|n| n as usize);
        let row = |e: &Entry| {
            if output {
                json!([e.session, e.line, [e.input, null]])
            } else {
                json!([e.session, e.line, e.input])
            }
        };
        let picked: Vec<&Entry> = match kind {
            "range" => {
                let session = match req["session"].as_i64().unwrap_or(0) {
                    s if s <= 0 => self.session as i64 + s,
                    s => s,
                } as u64;
                let start = req["start"].as_u64().unwrap_or(0);
                let stop = req["stop"].as_u64().filter(|&s| s > 0);
                self.entries
                    .iter()
                    .filter(|e| {
                        e.session == session && e.line >= start && stop.is_none_or(|s| e.line < s)
                    })
                    .collect()
            }
            "search" => {
                let pattern = req["pattern"].as_str().unwrap_or("*");
                let unique = req["unique"].as_bool().unwrap_or(false);
                let mut v: Vec<&Entry> = self
                    .entries
                    .iter()
                    .filter(|e| glob_match(pattern, &e.input))
                    .collect();
                if unique {
                    let mut seen = std::collections::HashSet::new();
                    let mut kept: Vec<&Entry> = v
                        .into_iter()
                        .rev()
                        .filter(|e| seen.insert(e.input.as_str()))
                        .collect();
                    kept.reverse();
                    v = kept;
                }
                tail(v, n)
            }
            _ => tail(self.entries.iter().collect(), n.or(Some(10))),
        };
        picked.into_iter().map(row).collect()
    }
}

fn tail(v: Vec<&Entry>, n: Option<usize>) -> Vec<&Entry> {
    match n {
        Some(n) if n < v.len() => v[v.len() - n..].to_vec(),
        _ => v,
    }
}

/// Whether `text` matches `pattern` as SQLite's `GLOB` decides, which is
/// what IPython's history search runs (`WHERE source_raw GLOB ?`): `*` any
/// run of characters, `?` exactly one, `[...]` one of a set (`[^...]` none
/// of it, `a-z` ranges, a `]` first in the set is literal); case matters; an
/// unclosed `[` matches nothing at its place. A port of SQLite's
/// `patternCompare` (`func.c`), kept in its shape so the two can be compared.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_compare(&p, &t) == Glob::Match
}

/// SQLite's three answers: `NoWildcardMatch` tells an enclosing `*` that
/// trying further along the text cannot help.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Glob {
    Match,
    NoMatch,
    NoWildcardMatch,
}

fn glob_compare(p: &[char], t: &[char]) -> Glob {
    let (mut pi, mut ti) = (0, 0);
    while let Some(&c) = p.get(pi) {
        pi += 1;
        if c == '*' {
            // Runs of `*` and `?` after it: each `?` takes one character.
            let mut next = p.get(pi).copied();
            while let Some(n @ ('*' | '?')) = next {
                pi += 1;
                if n == '?' {
                    if ti >= t.len() {
                        return Glob::NoWildcardMatch;
                    }
                    ti += 1;
                }
                next = p.get(pi).copied();
            }
            let Some(c) = next else {
                return Glob::Match; // a `*` at the end matches the rest
            };
            if c == '[' {
                // A set right after the `*`: try it at every place left.
                while ti < t.len() {
                    let r = glob_compare(&p[pi..], &t[ti..]);
                    if r != Glob::NoMatch {
                        return r;
                    }
                    ti += 1;
                }
                return Glob::NoWildcardMatch;
            }
            // A plain character: find it, and go on matching after it.
            pi += 1;
            while ti < t.len() {
                let here = t[ti];
                ti += 1;
                if here != c {
                    continue;
                }
                let r = glob_compare(&p[pi..], &t[ti..]);
                if r != Glob::NoMatch {
                    return r;
                }
            }
            return Glob::NoWildcardMatch;
        }
        if c == '[' {
            let Some(&ch) = t.get(ti) else {
                return Glob::NoMatch;
            };
            ti += 1;
            let (mut seen, mut invert, mut prior) = (false, false, None::<char>);
            let mut c2 = p.get(pi).copied();
            pi += 1;
            if c2 == Some('^') {
                invert = true;
                c2 = p.get(pi).copied();
                pi += 1;
            }
            if c2 == Some(']') {
                seen = ch == ']';
                c2 = p.get(pi).copied();
                pi += 1;
            }
            while let Some(x) = c2.filter(|&x| x != ']') {
                let after = p.get(pi).copied();
                if x == '-' && after.is_some_and(|a| a != ']') && prior.is_some() {
                    let hi = after.unwrap_or_default();
                    pi += 1;
                    if prior.is_some_and(|lo| ch >= lo && ch <= hi) {
                        seen = true;
                    }
                    prior = None;
                } else {
                    if ch == x {
                        seen = true;
                    }
                    prior = Some(x);
                }
                c2 = p.get(pi).copied();
                pi += 1;
            }
            if c2.is_none() || seen == invert {
                return Glob::NoMatch;
            }
            continue;
        }
        match t.get(ti) {
            Some(&c2) if c2 == c || c == '?' => ti += 1,
            _ => return Glob::NoMatch,
        }
    }
    if ti == t.len() {
        Glob::Match
    } else {
        Glob::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_with_new_session() {
        let dir = std::env::temp_dir().join(format!("forja-hist-{}", std::process::id()));
        let path = dir.join("h.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
        let mut h = History::open(Some(path.clone()));
        assert_eq!(h.session(), 1);
        h.record(1, "let a = 1;");
        h.record(2, "a + 1");
        let h2 = History::open(Some(path));
        assert_eq!(h2.session(), 2);
        let rows = h2.query(&json!({"hist_access_type": "tail", "n": 1}));
        assert_eq!(rows, vec![json!([1, 2, "a + 1"])]);
        let rows =
            h2.query(&json!({"hist_access_type": "range", "session": 1, "start": 1, "stop": 2}));
        assert_eq!(rows, vec![json!([1, 1, "let a = 1;"])]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn search_unique_keeps_latest() {
        let mut h = History::open(None);
        h.record(1, "a + 1");
        h.record(2, "b");
        h.record(3, "a + 1");
        let rows = h.query(&json!({"hist_access_type": "search", "pattern": "a*", "unique": true}));
        assert_eq!(rows, vec![json!([1, 3, "a + 1"])]);
        assert!(glob_match("*+*", "a + 1"));
        assert!(!glob_match("b?", "b"));
    }

    #[test]
    fn glob_is_sqlite_glob() {
        // A literal `*` in the text does not stop the wildcard.
        assert!(glob_match("6 *", "6 * 7"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b?d", "axxbcd"));
        assert!(!glob_match("a*b?d", "axxbd"));
        assert!(glob_match("[abc]x", "bx"));
        assert!(!glob_match("[^abc]x", "bx"));
        assert!(glob_match("[a-c]*", "c + 1"));
        assert!(glob_match("[]]", "]"));
        assert!(glob_match("[a-]", "-"));
        assert!(glob_match("*[0-9]", "x = 7"));
        assert!(!glob_match("Let*", "let a"));
        // An unclosed `[` matches nothing at its place.
        assert!(!glob_match("v[1", "v[1"));
        assert!(!glob_match("*[", "a["));
        assert!(glob_match("ñ?o", "ñuo"));
    }
}
