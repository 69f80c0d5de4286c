//! The interpreter: one evcxr session on a thread of its own, with one
//! method per request that needs it (execute, complete, inspect, restart).

use crate::build_cache::seed::start_seed;
use crate::build_cache::session_start;
use crate::output::{self, CellReport};
use crate::side_channel::SideMessage;
use crate::state::SessionState;
use evcxr::CommandContext;
use jupyter_protocol::JupyterMessage;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use crate::config::Config;
pub use crate::outcome::{CellError, Outcome};

/// The state the session shares with the other threads.
#[deprecated(note = "renamed `forja_kernel::state::SessionState`")]
pub type Shared = SessionState;

pub use crate::input::InputAsk;

/// Requests to the session thread.
pub enum Request {
    /// Run a cell.
    Execute {
        /// The code.
        code: String,
        /// The request (parent of the cell's output).
        parent: Box<JupyterMessage>,
        /// Whether the frontend can answer input requests.
        allow_stdin: bool,
        /// Expressions to evaluate after the cell.
        user_expressions: Map<String, Value>,
        /// The cell's execution count (recorded with the processes it starts).
        cell: u64,
        /// Told (and waited for) as the session begins the cell, before any
        /// of its output: the server then clears its "still starting" note.
        started: Option<oneshot::Sender<oneshot::Sender<()>>>,
        /// The answer.
        reply: oneshot::Sender<Outcome>,
    },
    /// Completions at a cursor.
    Complete {
        /// The code.
        code: String,
        /// Cursor position in unicode code points.
        cursor_pos: usize,
        /// The `complete_reply` content.
        reply: oneshot::Sender<Value>,
    },
    /// Documentation at a cursor.
    Inspect {
        /// The code.
        code: String,
        /// Cursor position in unicode code points.
        cursor_pos: usize,
        /// The `inspect_reply` content.
        reply: oneshot::Sender<Value>,
    },
}

/// Starts the session thread.
pub fn spawn(
    config: Config,
    shared: Arc<SessionState>,
    router: mpsc::UnboundedSender<output::Command>,
    messages: mpsc::UnboundedSender<SideMessage>,
    input: mpsc::UnboundedSender<InputAsk>,
) -> mpsc::UnboundedSender<Request> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("forja-session".into())
        .spawn(move || {
            let mut s = match Session::start(&config, shared.clone(), messages) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("forja-kernel: could not start evcxr: {e}");
                    fail_forever(rx, &format!("{e}"));
                    return;
                }
            };
            // The first completion's one-off cost is paid now, not at the
            // student's first Tab — unless a request is waiting.
            if rx.is_empty() {
                session_start::warm_up(&mut s.ctx);
                crate::memory::release();
            }
            shared.ready.store(true, Ordering::SeqCst);
            s.serve(rx, router, input);
        })
        .expect("spawning the session thread");
    tx
}

fn fail_forever(mut rx: mpsc::UnboundedReceiver<Request>, why: &str) {
    while let Some(r) = rx.blocking_recv() {
        let err = CellError {
            ename: "KernelError".into(),
            evalue: crate::messages::Msg::SessionCouldNotStart.fill(&[("why", &why)]),
            traceback: vec![crate::messages::Msg::SessionCouldNotStart.fill(&[("why", &why)])],
        };
        match r {
            Request::Execute { reply, .. } => {
                let _ = reply.send(Outcome {
                    error: Some(err),
                    ..Default::default()
                });
            }
            Request::Complete { reply, .. } | Request::Inspect { reply, .. } => {
                let _ = reply.send(json!({"status": "error", "ename": err.ename, "evalue": err.evalue, "traceback": []}));
            }
        }
    }
}

struct Session {
    ctx: CommandContext,
    shared: Arc<SessionState>,
    /// A start-up problem to show in the next cell's stderr.
    warning: Option<String>,
    /// Output that does not come from the runner.
    messages: mpsc::UnboundedSender<SideMessage>,
    /// forja was added to the session.
    forja: bool,
    /// The child-output readers.
    child_outputs: crate::side_channel::ChildOutputs,
}

impl Session {
    fn start(
        config: &Config,
        shared: Arc<SessionState>,
        messages: mpsc::UnboundedSender<SideMessage>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.crate_dir)?;
        // (With forja, start_with_forja puts the right lock file in place.)
        if config.forja_dir.is_none()
            && let Some(lock) = &config.lockfile
            && lock.exists()
        {
            std::fs::copy(lock, config.crate_dir.join("Cargo.lock"))?;
        }
        // Start from the prebuilt forja build (see build_cache): its layout
        // must be complete before the session's first compile, which
        // already has forja.
        let mut warning = start_seed(config).finish();
        let started = match &config.forja_dir {
            Some(dir) => session_start::start_with_forja(config, dir).map_err(|e| {
                // Rust still works without forja; say why in the first cell.
                warning = Some(format!(
                    "{}{}",
                    warning.take().unwrap_or_default(),
                    crate::messages::Msg::ForjaUnavailable.fill(&[("error", &e)])
                ));
            }),
            None => Err(()),
        };
        let forja = started.is_ok();
        let (mut ctx, outputs) = match started {
            Ok(started) => started,
            Err(()) => CommandContext::new().map_err(|e| anyhow::anyhow!("{e}"))?,
        };
        if forja {
            // A `?` that ends a cell with an error a forja call returned
            // names the call and its line (the router places the line).
            ctx.set_error_hook("::forja::located::question_mark(&error);".into());
        }
        // Each build, before it runs, for the router to place its lines.
        let builds = shared.clone();
        ctx.set_build_hook(Box::new(move |built| {
            let cell = builds.cell_seq.load(Ordering::SeqCst);
            if let Ok(mut b) = builds.builds.lock() {
                b.record_build(built, cell);
            }
        }));
        // Anything evcxr reports outside our output pump still reaches the cell.
        for (name, rx) in [("stdout", outputs.stdout), ("stderr", outputs.stderr)] {
            let messages = messages.clone();
            #[allow(clippy::redundant_clone)]
            std::thread::spawn(move || {
                while let Ok(line) = rx.recv() {
                    let _ = messages.send(SideMessage::Stream {
                        name: name.into(),
                        text: format!("{line}\n"),
                        origin: None,
                    });
                }
            });
        }
        let s = Session {
            ctx,
            shared,
            forja,
            child_outputs: config.child_outputs.clone(),
            warning,
            messages,
        };
        s.note_runner_pid();
        Ok(s)
    }

    fn note_runner_pid(&self) {
        let handle = self.ctx.process_handle();
        if let Ok(child) = handle.lock() {
            self.shared
                .runner_pid
                .store(child.id() as i32, Ordering::SeqCst);
        }
    }

    fn serve(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Request>,
        router: mpsc::UnboundedSender<output::Command>,
        input: mpsc::UnboundedSender<InputAsk>,
    ) {
        // While the student is idle, rust-analyzer's memory goes back (memory.rs).
        let mut idle = crate::memory::IdleUnload::from_env();
        while let Some(req) = idle.recv(&mut rx, || self.ctx.unload_analysis()) {
            match req {
                Request::Execute {
                    code,
                    parent,
                    allow_stdin,
                    user_expressions,
                    cell,
                    started,
                    reply,
                } => {
                    if let Some(started) = started {
                        let (ack, acked) = oneshot::channel();
                        if started.send(ack).is_ok() {
                            let _ = acked.blocking_recv();
                        }
                    }
                    let out = self.execute(
                        &code,
                        *parent,
                        allow_stdin,
                        user_expressions,
                        cell,
                        (&router, &input),
                    );
                    let _ = reply.send(out);
                    // Between cells, with nothing waiting (see memory.rs).
                    if rx.is_empty() {
                        crate::memory::release();
                    }
                }
                Request::Complete {
                    code,
                    cursor_pos,
                    reply,
                } => {
                    let _ = reply.send(self.complete(&code, cursor_pos));
                }
                Request::Inspect {
                    code,
                    cursor_pos,
                    reply,
                } => {
                    let _ = reply.send(self.inspect(&code, cursor_pos));
                }
            }
        }
    }

    fn execute(
        &mut self,
        code: &str,
        parent: JupyterMessage,
        allow_stdin: bool,
        user_expressions: Map<String, Value>,
        cell: u64,
        (router, input): (
            &mpsc::UnboundedSender<output::Command>,
            &mpsc::UnboundedSender<InputAsk>,
        ),
    ) -> Outcome {
        let trimmed = code.trim();
        if let Some(arg) = trimmed.strip_prefix(":waits") {
            return crate::waits::command(&self.shared, arg);
        }
        if trimmed == ":help" {
            return Outcome {
                data: Some(crate::help::table()),
                ..Default::default()
            };
        }
        if trimmed == ":procs" {
            return Outcome {
                data: Some(crate::procs::list(&self.shared)),
                ..Default::default()
            };
        }
        if let Some(arg) = trimmed.strip_prefix(":kill") {
            return match crate::procs::kill(&self.shared, arg) {
                Ok(text) => Outcome {
                    data: Some(Map::from_iter([(
                        "text/plain".to_owned(),
                        Value::String(text),
                    )])),
                    ..Default::default()
                },
                Err(e) => Outcome {
                    error: Some(CellError {
                        ename: "KillError".into(),
                        evalue: e.clone(),
                        traceback: vec![e],
                    }),
                    ..Default::default()
                },
            };
        }
        if crate::fresh::is_command(trimmed) {
            return match crate::fresh::run(&mut self.ctx, &self.shared, self.forja) {
                Ok(text) => Outcome {
                    data: Some(crate::fresh::text_bundle(text)),
                    ..Default::default()
                },
                Err(e) => crate::fresh::failed(e),
            };
        }
        let before: Vec<String> = self
            .ctx
            .variables_and_types()
            .map(|(n, _)| n.to_owned())
            .collect();
        let _ = router.send(output::Command::Begin(Box::new(parent.clone())));
        if let Some(w) = self
            .warning
            .take()
            .or_else(|| crate::fresh::suggestion(&self.shared))
        {
            let _ = self.messages.send(SideMessage::Stream {
                name: "stderr".into(),
                text: w,
                origin: None,
            });
        }
        self.shared.interrupted.store(false, Ordering::SeqCst);
        self.shared.restarted.store(false, Ordering::SeqCst);
        self.shared.cell_seq.store(cell, Ordering::SeqCst);
        crate::interrupt::cell_started(&self.shared, cell);
        self.shared.executing.store(true, Ordering::SeqCst);
        crate::waits::watch_cell(&self.shared, cell, &self.messages);
        let (children, flush_router) = (self.child_outputs.clone(), router.clone());
        crate::input::open(crate::input::Desk {
            parent: parent.clone(),
            allow_stdin,
            input: input.clone(),
            before_asking: Arc::new(move || {
                // What the cell's processes printed first, then the router.
                std::thread::sleep(Duration::from_millis(20));
                children.drain(Duration::from_millis(100));
                let (ftx, frx) = oneshot::channel();
                let _ = flush_router.send(output::Command::Flush(ftx));
                let _ = frx.blocking_recv();
            }),
            shared: self.shared.clone(),
        });

        let shared = self.shared.clone();
        let ask = |prompt: String, is_password: bool| -> String {
            if !allow_stdin {
                eprintln!("(this frontend does not accept input: the read gets an empty line)");
                return String::new();
            }
            let (ftx, frx) = oneshot::channel();
            let _ = router.send(output::Command::Flush(ftx));
            let _ = frx.blocking_recv();
            let (atx, arx) = std::sync::mpsc::channel();
            let _ = input.send(InputAsk {
                parent: parent.clone(),
                prompt: prompt.replace(crate::runner::PROMPT_COLON, ":"),
                password: is_password,
                reply: atx,
            });
            loop {
                match arx.recv_timeout(Duration::from_millis(100)) {
                    Ok(v) => return v.unwrap_or_default(),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if shared.interrupted.load(Ordering::SeqCst) {
                            return String::new();
                        }
                    }
                    Err(_) => return String::new(),
                }
            }
        };
        let result = self.ctx.execute_with_callbacks(
            code,
            &mut evcxr::EvalCallbacks {
                input_reader: &|req| ask(req.prompt, req.is_password),
            },
        );
        self.shared.executing.store(false, Ordering::SeqCst);
        crate::input::close();
        let interrupted = self.shared.interrupted.swap(false, Ordering::SeqCst);
        let old_runner = self.shared.runner_pid.load(Ordering::SeqCst);
        self.note_runner_pid();
        if old_runner != self.shared.runner_pid.load(Ordering::SeqCst) && self.forja {
            // A fresh runner: start its stdout flusher (nothing is re-run).
            let _ = self.ctx.execute(session_start::FLUSHER_START);
        }
        if interrupted {
            // Whatever the cell started is stopped; make sure of it.
            if let Some(r) = crate::interrupt::remote(&self.shared) {
                let _ = r.clear_interrupt();
            }
        }

        let ran = match &result {
            Ok(_) => true,
            Err(evcxr::Error::CompilationErrors(_))
            | Err(evcxr::Error::SubprocessTerminated(_)) => false,
            Err(_) => false,
        };
        // What the cell's children wrote before the cell ended belongs to it.
        self.child_outputs.drain(Duration::from_millis(300));
        let (tx, rx) = oneshot::channel();
        let _ = router.send(output::Command::End {
            wait_for_mark: ran,
            timeout: Duration::from_millis(500),
            reply: tx,
        });
        let report = rx.blocking_recv().unwrap_or_default();
        if ran && let Ok(mut b) = self.shared.builds.lock() {
            b.record_cell(cell, code);
        }

        let mut out = Outcome::default();
        match result {
            Ok(_) if interrupted => {
                let evalue = if report.panicked {
                    crate::messages::Msg::InterruptedKeptEarlier.get()
                } else {
                    crate::messages::Msg::InterruptedKept.get()
                };
                out.error = Some(CellError {
                    ename: "Interrupted".into(),
                    evalue: evalue.into(),
                    traceback: vec![format!(
                        "\x1b[31m{}\x1b[0m: {evalue}",
                        crate::messages::Msg::InterruptedLabel.get()
                    )],
                });
            }
            Ok(outputs) if report.panicked => {
                out.error = Some(self.panic_error(&report, cell));
                let _ = outputs;
            }
            Ok(outputs) if outputs.user_error => {
                out.error = Some(question_mark_error(cell));
            }
            Ok(outputs) => {
                if !outputs.content_by_mime_type.is_empty() {
                    out.data = Some(
                        outputs
                            .content_by_mime_type
                            .into_iter()
                            .map(|(k, v)| {
                                let v = if k.contains("json") {
                                    serde_json::from_str(&v).unwrap_or(Value::String(v))
                                } else {
                                    Value::String(v)
                                };
                                (k, v)
                            })
                            .collect(),
                    );
                }
            }
            Err(evcxr::Error::SubprocessTerminated(msg)) => {
                let after: Vec<String> = self
                    .ctx
                    .variables_and_types()
                    .map(|(n, _)| n.to_owned())
                    .collect();
                let lost_text = lost_variables_text(before, &after);
                let (ename, head) = if interrupted {
                    (
                        "Interrupted",
                        crate::messages::Msg::CellInterrupted.get().to_owned(),
                    )
                } else {
                    (
                        "RunnerDied",
                        crate::messages::Msg::RunnerDied.fill(&[("why", &msg)]),
                    )
                };
                let evalue = crate::messages::Msg::RunnerRestarted
                    .fill(&[("head", &head), ("lost", &lost_text)]);
                out.error = Some(CellError {
                    ename: ename.into(),
                    evalue: evalue.clone(),
                    traceback: vec![format!("\x1b[31m{ename}\x1b[0m: {evalue}")],
                });
            }
            Err(e) => out.error = Some(crate::compile_errors::cell_error(&e, code, cell)),
        }
        if out.error.is_none() {
            for (name, expr) in user_expressions {
                let expr = expr.as_str().unwrap_or_default().to_owned();
                let v = match self.ctx.execute(&expr) {
                    Ok(o) => {
                        let data: Map<String, Value> = o
                            .content_by_mime_type
                            .into_iter()
                            .map(|(k, v)| (k, Value::String(v)))
                            .collect();
                        json!({"status": "ok", "data": data, "metadata": {}})
                    }
                    Err(e) => {
                        let ce = crate::compile_errors::cell_error(&e, &expr, cell);
                        json!({"status": "error", "ename": ce.ename, "evalue": ce.evalue, "traceback": ce.traceback})
                    }
                };
                out.user_expressions.insert(name, v);
            }
        }
        out
    }

    /// A panic in the cell: its message, where in the cells it happened
    /// (`celda [12], línea 3`, not `src/lib.rs:113:5`), or, for a `todo!()`,
    /// the exercise left to solve, in one line.
    fn panic_error(&self, report: &CellReport, cell: u64) -> CellError {
        use crate::cell_lines::{describe, enclosing_fn, find_lib_location};
        let lang = crate::messages::lang();
        let message = report
            .panic
            .as_ref()
            .map(|p| p.message.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| crate::messages::Msg::CellPanicked.text(lang).into());
        // The first line of Rust's own panic message, from the typed report.
        let header = report
            .panic
            .as_ref()
            .map(|p| {
                let thread = p.thread.as_deref().unwrap_or("<unnamed>");
                match &p.location {
                    Some(at) => format!("thread '{thread}' panicked at {at}:"),
                    None => format!("thread '{thread}' panicked:"),
                }
            })
            .unwrap_or_default();
        // A pool task's panic names its line in the message.
        let message = self
            .shared
            .builds
            .lock()
            .ok()
            .and_then(|b| b.relocate(None, &message, lang))
            .unwrap_or(message);
        let lib = self.ctx.last_source().unwrap_or_default();
        let lib_lines: Vec<&str> = lib.lines().collect();
        let located = find_lib_location(&header).map(|(range, line)| {
            let place = self.shared.builds.lock().ok().and_then(|b| {
                b.cells()
                    .place(self.ctx.line_origin(line), &lib, line, cell)
            });
            (range, line, describe(place, cell, lang))
        });
        if message.starts_with("not yet implemented")
            && let Some((_, line, _)) = &located
            && let Some((_, function)) = enclosing_fn(&lib_lines, *line)
        {
            let evalue = crate::messages::fill(
                crate::messages::Msg::TodoReached.text(lang),
                &[("function", &function)],
            );
            return CellError {
                ename: "Todo".into(),
                evalue: evalue.clone(),
                traceback: vec![format!("\x1b[1;33m{evalue}\x1b[0m")],
            };
        }
        let header = match &located {
            Some((range, _, place)) => {
                format!("{}{place}{}", &header[..range.start], &header[range.end..])
            }
            None => header,
        };
        let evalue = match &located {
            Some((_, _, place)) => format!("{message} ({place})"),
            None => message.clone(),
        };
        let mut traceback = vec![format!("\x1b[31mPanic\x1b[0m: {message}")];
        if !header.is_empty() {
            traceback.push(header);
        }
        traceback.push(crate::messages::Msg::PanicNotKept.text(lang).into());
        CellError {
            ename: "Panic".into(),
            evalue,
            traceback,
        }
    }

    fn complete(&mut self, code: &str, cursor_pos: usize) -> Value {
        let byte = crate::text::char_to_byte(code, cursor_pos);
        match self.ctx.completions(code, byte) {
            Ok(c) => {
                let start = crate::text::byte_to_char(code, c.start_offset);
                let end = crate::text::byte_to_char(code, c.end_offset);
                let mut matches = Vec::new();
                let mut types = Vec::new();
                for item in &c.completions {
                    matches.push(Value::String(item.code.clone()));
                    types.push(json!({"text": item.code, "type": item.kind,
                                      "start": start, "end": end, "signature": item.label}));
                }
                json!({"status": "ok", "matches": matches, "cursor_start": start, "cursor_end": end,
                       "metadata": {"_jupyter_types_experimental": types}})
            }
            Err(e) => json!({"status": "ok", "matches": [], "cursor_start": cursor_pos,
                             "cursor_end": cursor_pos, "metadata": {"error": e.to_string()}}),
        }
    }

    fn inspect(&mut self, code: &str, cursor_pos: usize) -> Value {
        // rust-analyzer's hover wants the end of the name under the cursor.
        let byte = crate::text::end_of_word(code, crate::text::char_to_byte(code, cursor_pos));
        match self.ctx.hover_at(code, byte) {
            Ok((plain, _)) if plain == "No documentation found" || plain.is_empty() => {
                json!({"status": "ok", "found": false, "data": {}, "metadata": {}})
            }
            Ok((plain, html)) => {
                json!({"status": "ok", "found": true,
                       "data": {"text/plain": plain, "text/markdown": plain, "text/html": html},
                       "metadata": {}})
            }
            Err(_) => json!({"status": "ok", "found": false, "data": {}, "metadata": {}}),
        }
    }
}

/// What a runner restart cost: the variables of `before` missing from
/// `after`, sorted (evcxr keeps them in a hash map, whose order changes from
/// run to run), and that the functions and types were kept (evcxr compiles
/// them again into the fresh runner).
fn lost_variables_text(mut before: Vec<String>, after: &[String]) -> String {
    before.retain(|v| !after.contains(v));
    before.sort();
    before.dedup();
    if before.is_empty() {
        crate::messages::Msg::NoVariablesLost.get().to_owned()
    } else {
        crate::messages::Msg::VariablesLost.fill(&[("vars", &before.join(", "))])
    }
}

/// A cell whose `?` returned an `Err`: an error reply naming the cell (the
/// error's own text is already on stderr, as the cell printed it).
fn question_mark_error(cell: u64) -> CellError {
    let place = crate::cell_lines::describe(None, cell, crate::messages::lang());
    let evalue = crate::messages::Msg::QuestionMarkError.fill(&[("cell", &place)]);
    CellError {
        ename: "Error".into(),
        evalue: evalue.clone(),
        traceback: vec![format!("\x1b[31mError\x1b[0m: {evalue}")],
    }
}
