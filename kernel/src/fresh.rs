//! `:fresh` (`:refrescar`): a new runner at a cell boundary, keeping the
//! functions, types, `use`s and `:dep`s, and the note that suggests it once
//! when the runner has loaded many cell libraries.
//!
//! evcxr loads each cell as a library into the runner and never unloads one:
//! lessons 00–05 run twice in one kernel took the runner from 19 to 156 MiB
//! and 190 mapped cell libraries (README, "Soak"). Every cell's library holds
//! all the items defined so far, so a fresh runner needs none of the old
//! ones: only the variables (values in the old runner's memory) are lost,
//! and `:fresh` names them first.

use crate::outcome::{CellError, Outcome};
use crate::state::SessionState;
use evcxr::CommandContext;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

/// The commands, English and Spanish.
pub const COMMANDS: [&str; 2] = [":fresh", ":refrescar"];

/// Cell libraries in one runner after which the kernel suggests `:fresh`
/// (about 0.7 MiB of runner memory and 0.65 MB of disk each, measured in the
/// soak); `FORJA_FRESH_SUGGEST_AT` overrides it (tests).
pub const SUGGEST_AT_LIBRARIES: usize = 150;

/// The runner for which the suggestion was already made (once per runner).
static SUGGESTED_FOR: AtomicI32 = AtomicI32::new(0);

/// Whether `cell` (trimmed) is the command.
pub fn is_command(cell: &str) -> bool {
    COMMANDS.contains(&cell)
}

/// The cell libraries (`libcode_N.so`, evcxr's copy of each cell's build)
/// the process `pid` has mapped.
pub fn cell_libraries(pid: i32) -> BTreeSet<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(PathBuf::from)
        .filter(|p| is_cell_library(p))
        .collect()
}

fn is_cell_library(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libcode_"))
        .and_then(|n| n.strip_suffix(".so"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Runs `:fresh`: names the variables that will be lost (sorted), stops the
/// runner and every process its cells started (as an interrupt's restart
/// does), starts a new runner through evcxr's `:restart` (which keeps the
/// items), deletes the old runner's cell libraries and, with forja, starts
/// the new runner's stdout flusher. Returns the cell's text.
pub fn run(ctx: &mut CommandContext, shared: &SessionState, forja: bool) -> Result<String, String> {
    let mut lost: Vec<String> = ctx
        .variables_and_types()
        .map(|(n, _)| n.to_owned())
        .collect();
    lost.sort();
    lost.dedup();
    let old = shared.runner_pid.load(Ordering::SeqCst);
    let libraries = cell_libraries(old);
    let dirs: BTreeSet<PathBuf> = libraries
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    shared.kill_runner();
    ctx.execute(":restart").map_err(|e| e.to_string())?;
    let new = ctx
        .process_handle()
        .lock()
        .map(|c| c.id() as i32)
        .unwrap_or(0);
    shared.runner_pid.store(new, Ordering::SeqCst);
    // Every cell library in evcxr's build directories is the old runner's:
    // the new one has loaded none yet.
    let (mut removed, mut bytes) = (0usize, 0u64);
    for dir in &dirs {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if is_cell_library(&path) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(&path).is_ok() {
                    removed += 1;
                    bytes += size;
                }
            }
        }
    }
    if forja {
        let _ = ctx.execute(crate::build_cache::session_start::FLUSHER_START);
    }
    let lost = if lost.is_empty() {
        crate::messages::Msg::NoVariablesLost.get().to_owned()
    } else {
        crate::messages::Msg::VariablesLost.fill(&[("vars", &lost.join(", "))])
    };
    Ok(crate::messages::Msg::FreshDone.fill(&[
        ("old", &old),
        ("new", &new),
        ("libs", &libraries.len()),
        ("files", &removed),
        ("mb", &format!("{:.1}", bytes as f64 / 1e6)),
        ("lost", &lost),
    ]))
}

/// `:fresh` could not start a new runner.
pub fn failed(why: String) -> Outcome {
    Outcome {
        error: Some(CellError {
            ename: "FreshError".into(),
            evalue: why.clone(),
            traceback: vec![why],
        }),
        ..Default::default()
    }
}

/// `:fresh`'s answer as a MIME bundle.
pub fn text_bundle(text: String) -> Map<String, Value> {
    Map::from_iter([("text/plain".to_owned(), Value::String(text))])
}

/// The note suggesting `:fresh`, once per runner, when the runner has at
/// least the threshold's cell libraries mapped.
pub fn suggestion(shared: &SessionState) -> Option<String> {
    let pid = shared.runner_pid.load(Ordering::SeqCst);
    if pid <= 0 || SUGGESTED_FOR.load(Ordering::SeqCst) == pid {
        return None;
    }
    let at = std::env::var("FORJA_FRESH_SUGGEST_AT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SUGGEST_AT_LIBRARIES);
    let n = cell_libraries(pid).len();
    if n < at {
        return None;
    }
    SUGGESTED_FOR.store(pid, Ordering::SeqCst);
    Some(crate::messages::Msg::FreshSuggested.fill(&[("libs", &n)]) + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_evcxr_cell_copies_are_cell_libraries() {
        assert!(is_cell_library(Path::new(
            "/t/target/debug/deps/libcode_12.so"
        )));
        assert!(!is_cell_library(Path::new("/t/libcode_.so")));
        assert!(!is_cell_library(Path::new("/t/libcode_1a.so")));
        assert!(!is_cell_library(Path::new("/t/libctx.so")));
        assert!(!is_cell_library(Path::new("/t/libcode_3.so.tmp")));
    }

    #[test]
    fn the_commands() {
        assert!(is_command(":fresh") && is_command(":refrescar"));
        assert!(!is_command(":freshen"));
    }
}
