//! The `:waits` command: the wait-for graph of the runner's tree of
//! processes (who waits for what, held by whom, and the deadlock if there
//! is one), as an SVG and as text; and the watcher that shows it by itself
//! as a display of a cell whose tree stays stuck (`:waits auto 3s|off`), and
//! can stop that cell (`:waits stop-after 5s|off`).

use crate::messages::Msg;
use crate::outcome::{CellError, Outcome};
use crate::side_channel::SideMessage;
use crate::state::SessionState;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How long a cell's tree must stay stuck before its graph is shown by
/// itself, in ms (0: never).
static AUTO_AFTER_MS: AtomicU64 = AtomicU64::new(3000);
/// How long a cell's tree may stay stuck before the cell is interrupted, in
/// ms (0: never, the default).
static STOP_AFTER_MS: AtomicU64 = AtomicU64::new(0);
/// The last graph the watcher found stuck, for `:waits` between cells.
static LAST: Mutex<Option<forja::WaitGraph>> = Mutex::new(None);
/// How often the watcher looks.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// `off`, `3s` or `3` (seconds) as ms.
fn parse_secs(arg: &str) -> Option<u64> {
    if arg == "off" {
        return Some(0);
    }
    let secs: f64 = arg.strip_suffix('s').unwrap_or(arg).trim().parse().ok()?;
    (0.0..=3600.0)
        .contains(&secs)
        .then_some((secs * 1000.0) as u64)
}

/// `:waits auto off|5s` or `:waits stop-after off|5s`: the text to answer
/// with.
pub fn configure(what: &str, arg: &str) -> Result<String, String> {
    let arg = arg.trim();
    let usage = || Msg::WaitsUsage.fill(&[("arg", &format!("{what} {arg}").trim())]);
    let ms = parse_secs(arg).ok_or_else(usage)?;
    let secs = format!("{:.1}", ms as f64 / 1000.0);
    match what {
        "auto" => {
            AUTO_AFTER_MS.store(ms, Ordering::Relaxed);
            Ok(if ms == 0 {
                Msg::WaitsAutoOff.get().to_owned()
            } else {
                Msg::WaitsAutoOn.fill(&[("secs", &secs)])
            })
        }
        "stop-after" => {
            STOP_AFTER_MS.store(ms, Ordering::Relaxed);
            Ok(if ms == 0 {
                Msg::WaitsStopOff.get().to_owned()
            } else {
                Msg::WaitsStopOn.fill(&[("secs", &secs)])
            })
        }
        _ => Err(usage()),
    }
}

/// The stuck waits (process, thread, primitive) of `g` and how long the
/// most recent of them has waited; `None` if nothing in it is stuck.
type StuckKey = Vec<(i32, i32, String)>;

fn stuck(g: &forja::WaitGraph) -> Option<(StuckKey, Duration)> {
    let c = g.cycle.as_ref()?;
    let mut k: Vec<_> = c.iter().map(|s| (s.pid, s.tid, s.what.clone())).collect();
    k.sort();
    let least = c.iter().map(|s| s.waited).min()?;
    Some((k, least))
}

/// Called as cell `cell` starts: a thread watches the runner's tree while
/// the cell runs. Once the same waits have been stuck (every process of the
/// tree in a forja wait nobody can end, or a ring of holders) for
/// [`AUTO_AFTER_MS`], it shows the wait graph as a display of the cell; after
/// [`STOP_AFTER_MS`] (if set) it interrupts the cell, with a note saying why.
/// A tree with a process computing, sleeping or waiting outside forja is
/// never stuck, so a slow `Pool::map` shows nothing.
pub fn watch_cell(shared: &Arc<SessionState>, cell: u64, out: &UnboundedSender<SideMessage>) {
    let (shared, out) = (shared.clone(), out.clone());
    let _ = std::thread::Builder::new()
        .name("waits-watch".into())
        .spawn(move || {
            let (mut prev, mut shown) = (None, false);
            loop {
                std::thread::sleep(LOOK_EVERY);
                if shared.cell_seq.load(Ordering::SeqCst) != cell
                    || !shared.executing.load(Ordering::SeqCst)
                    || shared.interrupted.load(Ordering::SeqCst)
                {
                    return;
                }
                let auto = Duration::from_millis(AUTO_AFTER_MS.load(Ordering::Relaxed));
                let stop = Duration::from_millis(STOP_AFTER_MS.load(Ordering::Relaxed));
                if auto.is_zero() && stop.is_zero() {
                    continue;
                }
                let pid = shared.runner_pid.load(Ordering::SeqCst);
                let Some(g) = forja::waits::of_process(pid) else {
                    continue;
                };
                let Some((key, least)) = stuck(&g) else {
                    prev = None;
                    continue;
                };
                // Stuck on two looks in a row, the same waits.
                if prev.replace(key.clone()) != Some(key) {
                    continue;
                }
                let stopping = !stop.is_zero() && least >= stop;
                if !shown && ((!auto.is_zero() && least >= auto) || stopping) {
                    shown = true;
                    let secs = format!("{:.0}", least.as_secs_f64());
                    let _ = out.send(display(&g, Some(&Msg::WaitsStuck.fill(&[("secs", &secs)]))));
                    if let Ok(mut last) = LAST.lock() {
                        *last = Some(g.clone());
                    }
                }
                if stopping {
                    let secs = format!("{:.1}", stop.as_secs_f64());
                    let _ = out.send(SideMessage::Stream {
                        name: "stderr".into(),
                        text: Msg::WaitsStopped.fill(&[("secs", &secs)]),
                        origin: None,
                    });
                    crate::interrupt::interrupt(&shared);
                    return;
                }
            }
        });
}

/// The graph as a display of the running cell, with a note above its text.
fn display(g: &forja::WaitGraph, note: Option<&str>) -> SideMessage {
    let mut data = bundle(g);
    if let Some(note) = note {
        let text = format!("{note}\n{}", data["text/plain"].as_str().unwrap_or(""));
        data.insert("text/plain".into(), Value::String(text));
    }
    SideMessage::DisplayData {
        data: Value::Object(data),
        metadata: json!({}),
        display_id: None,
    }
}

/// `:waits` (the graph now), `:waits auto off|3s` (the watcher),
/// `:waits stop-after off|5s` (the automatic stop).
pub fn command(shared: &SessionState, arg: &str) -> Outcome {
    let arg = arg.trim();
    let text = |t: String| Map::from_iter([("text/plain".to_owned(), Value::String(t))]);
    if arg.is_empty() {
        return Outcome {
            data: Some(show(shared)),
            ..Default::default()
        };
    }
    let (what, rest) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
    match configure(what, rest) {
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

/// `:waits` output as a MIME bundle: the runner's tree now; if nothing in
/// it waits, the last graph the watcher found stuck; else a line saying
/// nothing waits.
pub fn show(shared: &SessionState) -> Map<String, Value> {
    let pid = shared.runner_pid.load(Ordering::SeqCst);
    let now = forja::waits::of_process(pid).unwrap_or_default();
    if !now.is_empty() {
        return bundle(&now);
    }
    let last = LAST.lock().ok().and_then(|l| l.clone());
    match last {
        Some(g) => match display(&g, Some(Msg::WaitsLast.get())) {
            SideMessage::DisplayData {
                data: Value::Object(m),
                ..
            } => m,
            _ => bundle(&g),
        },
        None => Map::from_iter([(
            "text/plain".to_owned(),
            Value::String(Msg::WaitsNothing.get().to_owned()),
        )]),
    }
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
    fn auto_and_stop_after_take_seconds_or_off() {
        assert!(configure("auto", " 5s").is_ok());
        assert_eq!(AUTO_AFTER_MS.load(Ordering::Relaxed), 5000);
        assert!(configure("auto", "off").is_ok());
        assert_eq!(AUTO_AFTER_MS.load(Ordering::Relaxed), 0);
        assert!(configure("auto", "soon").is_err());
        assert!(configure("auto", "-1s").is_err());
        assert!(configure("auto", "3s").is_ok());
        assert!(configure("stop-after", "2.5s").is_ok());
        assert_eq!(STOP_AFTER_MS.load(Ordering::Relaxed), 2500);
        assert!(configure("stop-after", "off").is_ok());
        assert_eq!(STOP_AFTER_MS.load(Ordering::Relaxed), 0);
        assert!(configure("later", "3s").is_err());
    }

    #[test]
    fn an_empty_graph_is_a_picture_and_a_line() {
        let b = bundle(&forja::WaitGraph::default());
        assert!(b["image/svg+xml"].as_str().unwrap().starts_with("<svg"));
        assert!(!b["text/plain"].as_str().unwrap().is_empty());
    }

    #[test]
    fn an_empty_graph_is_not_stuck() {
        assert!(stuck(&forja::WaitGraph::default()).is_none());
    }
}
