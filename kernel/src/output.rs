//! The output router: turns side-channel messages into iopub messages under the
//! running cell, batching stream text.
//!
//! Stream text is held at most [`FLUSH_AFTER`] (or until [`MAX_BATCH`] bytes)
//! and sent as one `stream` message, so a cell printing 100,000 lines sends a
//! few hundred messages, while a `print!` without newline still shows within
//! tens of milliseconds. Output that arrives between cells is kept and shown
//! in the next cell's output.

use crate::side_channel::SideMessage;
use crate::wire;
use jupyter_protocol::JupyterMessage;
use serde_json::json;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Longest time stream text waits before it is sent.
pub const FLUSH_AFTER: Duration = Duration::from_millis(20);
/// Largest stream message.
pub const MAX_BATCH: usize = 256 * 1024;
/// How much output printed between cells is kept for the next cell.
const BETWEEN_CELLS_KEEP: usize = 4 * 1024 * 1024;
/// Commands to the router, the one path from the kernel to iopub: the
/// session's (a cell's start and end) and every message the server publishes
/// (status, `execute_input`, `execute_result`, `error`, …), so they keep
/// their order with the cell's output.
pub enum Command {
    /// A cell starts: publish its output under `parent`. Does not answer:
    /// the router remembers how many end-of-cell marks it had seen.
    Begin(Box<JupyterMessage>),
    /// A cell ended: wait (at most `timeout`) for the runner's end-of-cell
    /// mark, publish everything pending and answer with what was learnt about
    /// the cell. The session's one wait on the router per cell, needed: the
    /// reply must follow the cell's output, and say whether it panicked.
    End {
        /// Whether to wait for the runner's end-of-cell mark.
        wait_for_mark: bool,
        /// Longest wait.
        timeout: Duration,
        /// The answer.
        reply: oneshot::Sender<CellReport>,
    },
    /// Publish pending stream text now (before an input request).
    Flush(oneshot::Sender<()>),
    /// Publish this message, after everything the router was given before.
    Publish(Box<JupyterMessage>),
}

/// The sender of [`Command`]s: the kernel's one way to iopub.
pub type Iopub = mpsc::UnboundedSender<Command>;

/// Publishes `msg` on iopub through the router.
pub fn publish(iopub: &Iopub, msg: JupyterMessage) {
    let _ = iopub.send(Command::Publish(Box::new(msg)));
}

/// What the router learnt about a cell.
#[derive(Debug, Default, Clone)]
pub struct CellReport {
    /// The cell's code panicked.
    pub panicked: bool,
    /// The runner's last panic report during the cell (a `PanicReport`
    /// without origin): thread, location and message.
    pub panic: Option<PanicInfo>,
}

/// What a panic hook reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PanicInfo {
    /// The thread's name.
    pub thread: Option<String>,
    /// `file:line:column`.
    pub location: Option<String>,
    /// The message.
    pub message: String,
}

struct Router {
    iopub: mpsc::UnboundedSender<JupyterMessage>,
    shared: std::sync::Arc<crate::state::SessionState>,
    between_bytes: usize,
    between_dropped: bool,
    parent: Option<JupyterMessage>,
    buf_name: String,
    buf: String,
    deadline: Option<Instant>,
    between_cells: Vec<SideMessage>,
    cell_ends: u64,
    /// End-of-cell marks seen when the running cell began.
    begin_ends: u64,
    panicked: bool,
    panic: Option<PanicInfo>,
    pending_end: Option<(u64, Instant, oneshot::Sender<CellReport>)>,
}

/// Starts the router task.
pub fn spawn(
    iopub: mpsc::UnboundedSender<JupyterMessage>,
    shared: std::sync::Arc<crate::state::SessionState>,
    mut messages: mpsc::UnboundedReceiver<SideMessage>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut r = Router {
        iopub,
        shared,
        between_bytes: 0,
        between_dropped: false,
        parent: None,
        buf_name: String::new(),
        buf: String::new(),
        deadline: None,
        between_cells: Vec::new(),
        cell_ends: 0,
        begin_ends: 0,
        panicked: false,
        panic: None,
        pending_end: None,
    };
    tokio::spawn(async move {
        loop {
            let wake = match (&r.deadline, &r.pending_end) {
                (Some(d), Some((_, e, _))) => Some((*d).min(*e)),
                (Some(d), None) => Some(*d),
                (None, Some((_, e, _))) => Some(*e),
                (None, None) => None,
            };
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                f = messages.recv() => match f {
                    Some(f) => r.message(f),
                    None => return,
                },
                c = commands.recv() => match c {
                    Some(c) => r.command(c),
                    None => return,
                },
                _ = sleep => {
                    let now = Instant::now();
                    if r.deadline.is_some_and(|d| d <= now) {
                        r.flush();
                    }
                    if r.pending_end.as_ref().is_some_and(|(_, e, _)| *e <= now) {
                        r.finish_end();
                    }
                }
            }
        }
    });
}

impl Router {
    fn publish(&self, msg_type: &str, content: serde_json::Value) {
        if let Some(p) = &self.parent {
            let _ = self.iopub.send(wire::child_json(p, msg_type, content));
        }
    }

    /// The line a child's panic shows as: where it happened in the cells
    /// (`celda [12], línea 3`) when its build is known, and a `todo!()` said
    /// as an exercise left to solve; otherwise the child's own line.
    fn child_panic_text(
        &self,
        who: &forja::ProcessInfo,
        location: Option<&str>,
        library: Option<&str>,
        message: &str,
    ) -> String {
        use crate::messages::Msg;
        let place = library.zip(location).and_then(|(library, location)| {
            let (range, line) = crate::cell_lines::find_lib_location(location)?;
            // Only the cell's own file, whole: not a line of forja's source.
            if range.start != 0 {
                return None;
            }
            self.shared.builds.lock().ok()?.place(Some(library), line)
        });
        let Some((at, function)) = place.and_then(|p| Some((p.at?, p.function))) else {
            return forja::link::child_panic_line(who, location, message);
        };
        let lang = crate::messages::lang();
        let place = crate::cell_lines::describe(Some(at), at.0, lang);
        let message = match function {
            Some(function) if message.starts_with("not yet implemented") => {
                Msg::TodoReached.fill(&[("function", &function)])
            }
            // An `unwrap()` of a forja error names the call's line too.
            _ => library
                .and_then(|l| {
                    let builds = self.shared.builds.lock().ok()?;
                    builds.relocate(Some(l), message, lang)
                })
                .unwrap_or_else(|| message.to_owned()),
        };
        Msg::ChildPanicAt.fill(&[
            ("process", &who.name()),
            ("pid", &who.pid()),
            ("place", &place),
            ("message", &message),
        ])
    }

    fn flush(&mut self) {
        self.deadline = None;
        if self.buf.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.buf);
        self.publish("stream", json!({"name": self.buf_name, "text": text}));
    }

    fn message(&mut self, f: SideMessage) {
        // A child's panic is shown as the line its hook would have written
        // on its stderr, made here from the typed report.
        let f = match f {
            SideMessage::PanicReport {
                location,
                message,
                origin: Some(who),
                library,
                ..
            } => SideMessage::Stream {
                name: "stderr".into(),
                text: self.child_panic_text(
                    &who,
                    location.as_deref(),
                    library.as_deref(),
                    &message,
                ),
                origin: Some(who),
            },
            f => f,
        };
        if self.parent.is_none() {
            match f {
                SideMessage::CellEnd => self.cell_ends += 1,
                SideMessage::Panic | SideMessage::PanicReport { .. } => {}
                SideMessage::RunnerHello { .. } => self.message_now(f),
                SideMessage::Stream { .. } if self.between_bytes > BETWEEN_CELLS_KEEP => {
                    self.between_dropped = true;
                }
                f => {
                    if let SideMessage::Stream { text, .. } = &f {
                        self.between_bytes += text.len();
                    }
                    self.between_cells.push(f);
                }
            }
            return;
        }
        self.message_now(f);
    }

    fn message_now(&mut self, f: SideMessage) {
        match f {
            SideMessage::AttachOutput { .. }
            | SideMessage::Flusher { .. }
            | SideMessage::InputRequest { .. } => {}
            SideMessage::RunnerHello { pid, registry_fd } => {
                if let Ok(mut r) = self.shared.registry.lock() {
                    *r = Some((pid, registry_fd));
                }
            }
            SideMessage::Stream { name, text, origin } => {
                // The runner's `src/lib.rs:L:C` (a `?`'s error naming the
                // forja call that failed, a pool task's panic) is a line of
                // the running cell's build.
                let text = match origin {
                    None if name == "stderr" && text.contains("src/lib.rs:") => self
                        .shared
                        .builds
                        .lock()
                        .ok()
                        .and_then(|b| b.relocate(None, &text, crate::messages::lang()))
                        .unwrap_or(text),
                    _ => text,
                };
                if name != self.buf_name {
                    self.flush();
                    self.buf_name = name;
                }
                self.buf.push_str(&text);
                if self.buf.len() >= MAX_BATCH {
                    self.flush();
                } else if self.deadline.is_none() {
                    self.deadline = Some(Instant::now() + FLUSH_AFTER);
                }
            }
            SideMessage::CellEnd => {
                self.cell_ends += 1;
                if self
                    .pending_end
                    .as_ref()
                    .is_some_and(|(seen, _, _)| self.cell_ends > *seen)
                {
                    self.finish_end();
                }
            }
            SideMessage::Panic => self.panicked = true,
            SideMessage::PanicReport {
                thread,
                location,
                message,
                origin: None,
                ..
            } => {
                self.panic = Some(PanicInfo {
                    thread,
                    location,
                    message,
                })
            }
            // A child's panic became a stderr line in `message`; the cell
            // goes on.
            SideMessage::PanicReport {
                origin: Some(_), ..
            } => {}
            SideMessage::DisplayData {
                data,
                metadata,
                display_id,
            } => {
                self.flush();
                let transient = match display_id {
                    Some(id) => json!({"display_id": id}),
                    None => json!({}),
                };
                self.publish(
                    "display_data",
                    json!({"data": data, "metadata": metadata_or_empty(metadata), "transient": transient}),
                );
            }
            SideMessage::UpdateDisplayData {
                data,
                metadata,
                display_id,
            } => {
                self.flush();
                self.publish(
                    "update_display_data",
                    json!({"data": data, "metadata": metadata_or_empty(metadata),
                           "transient": {"display_id": display_id}}),
                );
            }
            SideMessage::ClearOutput { wait } => {
                self.flush();
                self.publish("clear_output", json!({"wait": wait}));
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Begin(parent) => {
                self.flush();
                self.parent = Some(*parent);
                self.begin_ends = self.cell_ends;
                self.panicked = false;
                self.panic = None;
                self.between_bytes = 0;
                for f in mark_between_cells(std::mem::take(&mut self.between_cells)) {
                    self.message(f);
                }
                if std::mem::take(&mut self.between_dropped) {
                    self.message(SideMessage::Stream {
                        name: "stderr".into(),
                        text: crate::messages::Msg::BetweenCellsDropped
                            .fill(&[("kib", &(BETWEEN_CELLS_KEEP / 1024))]),
                        origin: None,
                    });
                }
            }
            Command::End {
                wait_for_mark,
                timeout,
                reply,
            } => {
                let seen = self.begin_ends;
                self.pending_end = Some((seen, Instant::now() + timeout, reply));
                if !wait_for_mark || self.cell_ends > seen {
                    self.finish_end();
                }
            }
            Command::Flush(reply) => {
                self.flush();
                let _ = reply.send(());
            }
            Command::Publish(msg) => {
                let _ = self.iopub.send(*msg);
            }
        }
    }

    fn finish_end(&mut self) {
        let Some((_, _, reply)) = self.pending_end.take() else {
            return;
        };
        self.flush();
        let report = CellReport {
            panicked: self.panicked,
            panic: self.panic.take(),
        };
        self.parent = None;
        let _ = reply.send(report);
    }
}

/// Output written between cells, each line marked with the process that
/// wrote it (`[Process-1 pid 123]`, or `[runner]` for the cell's own process).
pub fn mark_between_cells(messages: Vec<SideMessage>) -> Vec<SideMessage> {
    messages
        .into_iter()
        .map(|f| match f {
            SideMessage::Stream { name, text, origin } => {
                let label = match &origin {
                    Some(o) => crate::messages::Msg::BetweenCellsOf
                        .fill(&[("process", &o.name()), ("pid", &o.pid())]),
                    None => crate::messages::Msg::BetweenCells.get().to_owned(),
                };
                let mut marked = String::with_capacity(text.len() + label.len());
                for line in text.split_inclusive('\n') {
                    marked.push_str(&label);
                    marked.push_str(line);
                }
                SideMessage::Stream {
                    name,
                    text: marked,
                    origin,
                }
            }
            other => other,
        })
        .collect()
}

fn metadata_or_empty(m: serde_json::Value) -> serde_json::Value {
    if m.is_object() { m } else { json!({}) }
}

#[cfg(test)]
mod tests {
    use crate::side_channel::{ProcessInfo, SideMessage};

    #[test]
    fn between_cells_output_is_marked_per_line() {
        let f = vec![SideMessage::Stream {
            name: "stdout".into(),
            text: "a\nb\n".into(),
            origin: Some(ProcessInfo::new(7, "Process-1")),
        }];
        match &super::mark_between_cells(f)[0] {
            SideMessage::Stream { text, .. } => assert_eq!(
                text,
                "[Process-1 pid 7, between cells] a\n[Process-1 pid 7, between cells] b\n"
            ),
            other => panic!("{other:?}"),
        }
    }
}
