//! The `:waits` command: the wait-for graph of the runner's tree of
//! processes (who waits for what, held by whom, and the deadlock if there
//! is one), as an SVG and as text; and the watcher that shows it by itself
//! while a cell's tree stays stuck (`:waits auto 3s`, `:waits auto off`).

use crate::outcome::{CellError, Outcome};
use crate::state::SessionState;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a cell's tree must stay stuck before its graph is shown by
/// itself, in ms (0: never).
static AUTO_AFTER_MS: AtomicU64 = AtomicU64::new(3000);
/// How often the watcher looks.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// `:waits auto off` or `:waits auto 5s`: the text to answer with.
pub fn configure(arg: &str) -> Result<String, String> {
    let arg = arg.trim();
    let ms = if arg == "off" {
        0
    } else {
        let secs: f64 = arg
            .strip_suffix('s')
            .unwrap_or(arg)
            .trim()
            .parse()
            .map_err(|_| {
                format!("`:waits auto {arg}`: write `:waits auto off` or `:waits auto 3s`")
            })?;
        if !(0.0..=3600.0).contains(&secs) {
            return Err(format!("`:waits auto {arg}`: between 0 and 3600 seconds"));
        }
        (secs * 1000.0) as u64
    };
    AUTO_AFTER_MS.store(ms, Ordering::Relaxed);
    Ok(if ms == 0 {
        "the wait graph is no longer shown by itself".to_owned()
    } else {
        format!("the wait graph is shown once a cell's processes stay stuck for {arg}")
    })
}

/// The stuck waits (process, thread, primitive), which must stay the same
/// for a tree to count as stuck.
type StuckKey = Vec<(i32, i32, String)>;

fn stuck_key(g: &forja::WaitGraph) -> Option<StuckKey> {
    let c = g.cycle.as_ref()?;
    let mut k: Vec<_> = c.iter().map(|s| (s.pid, s.tid, s.what.clone())).collect();
    k.sort();
    Some(k)
}

/// Called as cell `cell` starts: a thread watches the runner's tree while
/// the cell runs and shows the wait graph once (as a display of the cell)
/// when the same waits have been stuck for [`AUTO_AFTER_MS`]. A tree with a
/// process computing, sleeping or waiting outside forja is never stuck, so
/// a slow `Pool::map` shows nothing.
pub fn watch_cell(shared: &Arc<SessionState>, cell: u64) {
    if AUTO_AFTER_MS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let shared = shared.clone();
    let _ = std::thread::Builder::new()
        .name("waits-watch".into())
        .spawn(move || {
            let mut since: Option<(StuckKey, Instant)> = None;
            loop {
                std::thread::sleep(LOOK_EVERY);
                if shared.cell_seq.load(Ordering::SeqCst) != cell
                    || !shared.executing.load(Ordering::SeqCst)
                {
                    return;
                }
                let after = Duration::from_millis(AUTO_AFTER_MS.load(Ordering::Relaxed));
                if after.is_zero() {
                    return;
                }
                let pid = shared.runner_pid.load(Ordering::SeqCst);
                let Some(g) = forja::waits::of_process(pid) else {
                    continue;
                };
                match (stuck_key(&g), &since) {
                    (None, _) => since = None,
                    (Some(k), Some((old, t))) if *old == k => {
                        if t.elapsed() >= after {
                            let _ = g.show();
                            return;
                        }
                    }
                    (Some(k), _) => since = Some((k, Instant::now())),
                }
            }
        });
}

/// `:waits` (the graph now), `:waits auto off|3s` (the watcher).
pub fn command(shared: &SessionState, arg: &str) -> Outcome {
    let arg = arg.trim();
    let text = |t: String| Map::from_iter([("text/plain".to_owned(), Value::String(t))]);
    if arg.is_empty() {
        return Outcome {
            data: Some(show(shared)),
            ..Default::default()
        };
    }
    let result = match arg.strip_prefix("auto") {
        Some(rest) => configure(rest),
        None => Err(format!(
            "`:waits {arg}`: write `:waits`, `:waits auto 3s` or `:waits auto off`"
        )),
    };
    match result {
        Ok(t) => Outcome {
            data: Some(text(t)),
            ..Default::default()
        },
        Err(e) => Outcome {
            error: Some(CellError {
                ename: "WaitsError".into(),
                evalue: e.clone(),
                traceback: vec![e],
            }),
            ..Default::default()
        },
    }
}

/// `:waits` output as a MIME bundle.
pub fn show(shared: &SessionState) -> Map<String, Value> {
    let pid = shared.runner_pid.load(Ordering::SeqCst);
    let graph = forja::waits::of_process(pid).unwrap_or_default();
    bundle(&graph)
}

/// A graph as a MIME bundle: the picture and the text.
pub fn bundle(graph: &forja::WaitGraph) -> Map<String, Value> {
    Map::from_iter([
        ("text/plain".to_owned(), Value::String(graph.to_string())),
        ("image/svg+xml".to_owned(), Value::String(graph.svg())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_seconds_or_off() {
        assert!(configure(" 5s").is_ok());
        assert_eq!(AUTO_AFTER_MS.load(Ordering::Relaxed), 5000);
        assert!(configure("off").is_ok());
        assert_eq!(AUTO_AFTER_MS.load(Ordering::Relaxed), 0);
        assert!(configure("soon").is_err());
        assert!(configure("3s").is_ok());
    }

    #[test]
    fn an_empty_graph_is_a_picture_and_a_line() {
        let b = bundle(&forja::WaitGraph::default());
        assert!(b["image/svg+xml"].as_str().unwrap().starts_with("<svg"));
        assert!(!b["text/plain"].as_str().unwrap().is_empty());
    }
}
