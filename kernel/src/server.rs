//! The server: owns the sockets, signing and threads.
//!
//! Shell and control are served by separate tasks, so an interrupt or a
//! shutdown is answered while a cell runs. iopub is an XPUB socket owned by
//! one publisher task (which greets each subscriber with `iopub_welcome`);
//! stdin and heartbeat have tasks of their own. Requests that need evcxr go
//! to the session thread ([`crate::session`]).

use crate::comms::Comms;
use crate::history::History;
use crate::is_complete::is_complete;
use crate::outcome::{CellError, Outcome};
use crate::session::{self, InputAsk, Request};
use crate::side_channel;
use crate::state::SessionState;
use crate::wire::{self, DecodeError};
use anyhow::{Context, Result};
use jupyter_protocol::{ConnectionInfo, JupyterMessage, JupyterMessageContent};
use jupyter_zmq_client::{Connection, SubscriptionEvent};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use zeromq::{Socket, SocketRecv, SocketSend};

use crate::output::Iopub;

/// Runs the kernel until shutdown.
pub fn run(connection_file: PathBuf) -> Result<()> {
    let text = std::fs::read_to_string(&connection_file)
        .with_context(|| format!("reading connection file {}", connection_file.display()))?;
    let info: ConnectionInfo = serde_json::from_str(&text)
        .with_context(|| format!("parsing connection file {}", connection_file.display()))?;
    if !info.key.is_empty() && info.signature_scheme != "hmac-sha256" {
        anyhow::bail!("unsupported signature scheme {}", info.signature_scheme);
    }
    let workdir = crate::paths::kernel_workdir()?;
    let socket_path = workdir.join("side.sock");
    // Set before any thread starts: the runner (and its children) inherit them.
    // SAFETY: still single-threaded here.
    unsafe {
        // Call the toolchain directly rather than through rustup's proxies.
        if let Some(path) = crate::toolchain::path_with_toolchain_first() {
            std::env::set_var("PATH", path);
        }
        std::env::set_var(forja::link::env::KERNEL_PID, std::process::id().to_string());
        std::env::set_var(side_channel::SOCKET_ENV, &socket_path);
        std::env::set_var(forja::link::env::EVCXR_TMPDIR, workdir.join("evcxr"));
        // What rust-analyzer leaves out of the standard library (memory.rs).
        if std::env::var_os("EVCXR_ANALYSIS_SKIP").is_none() {
            std::env::set_var("EVCXR_ANALYSIS_SKIP", crate::memory::ANALYSIS_SKIP);
        }
    }
    crate::reaper::become_subreaper();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(info, socket_path, workdir.clone()));
    let _ = std::fs::remove_dir_all(&workdir);
    result
}

async fn serve(info: ConnectionInfo, socket_path: PathBuf, workdir: PathBuf) -> Result<()> {
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut shell = jupyter_zmq_client::create_kernel_shell_connection(&info, &session_id).await?;
    let mut control =
        jupyter_zmq_client::create_kernel_control_connection(&info, &session_id).await?;
    let stdin = jupyter_zmq_client::create_kernel_stdin_connection(&info, &session_id).await?;
    let iopub_conn =
        jupyter_zmq_client::create_kernel_iopub_xpub_connection(&info, &session_id).await?;
    let mut hb = zeromq::RepSocket::new();
    hb.bind(&info.hb_url()).await?;

    let (iopub_tx, iopub_rx) = mpsc::unbounded_channel();
    tokio::spawn(publish_iopub(iopub_conn, iopub_rx));
    tokio::spawn(async move {
        while let Ok(m) = hb.recv().await {
            if hb.send(m).await.is_err() {
                break;
            }
        }
    });

    let (messages_tx, messages_rx) = mpsc::unbounded_channel();
    let child_outputs = side_channel::ChildOutputs::default();
    side_channel::listen(&socket_path, messages_tx.clone(), child_outputs.clone())?;
    let shared = Arc::new(SessionState::default());
    // Every message to iopub goes through the output router (`router_tx`),
    // the one publisher, so a cell's messages keep their order.
    let (router_tx, router_rx) = mpsc::unbounded_channel();
    crate::output::spawn(iopub_tx, shared.clone(), messages_rx, router_rx);
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    tokio::spawn(serve_stdin(stdin, input_rx));

    let mut config = crate::paths::session_config(workdir.join("evcxr"));
    config.child_outputs = child_outputs;
    let session = session::spawn(
        config,
        shared.clone(),
        router_tx.clone(),
        messages_tx,
        input_tx,
    );
    crate::reaper::spawn_zombie_reaper(shared.runner_pid_handle());

    let (shutdown_tx, mut shutdown_rx) = mpsc::unbounded_channel::<()>();
    {
        let iopub = router_tx.clone();
        let shared = shared.clone();
        let shutdown_tx = shutdown_tx.clone();
        tokio::spawn(async move {
            loop {
                let raw = match control.socket.recv().await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("forja-kernel: control socket: {e}");
                        continue;
                    }
                };
                let Some(msg) = accept(raw, &mut control, &iopub).await else {
                    continue;
                };
                handle_control(msg, &mut control, &iopub, &shared, &shutdown_tx).await;
            }
        });
    }
    {
        let mut shell_state = ShellState {
            iopub: router_tx.clone(),
            session,
            shared: shared.clone(),
            history: History::open(crate::history::default_path()),
            comms: Comms::default(),
            execution_count: 0,
            abort_before: None,
        };
        tokio::spawn(async move {
            loop {
                let raw = match shell.socket.recv().await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("forja-kernel: shell socket: {e}");
                        continue;
                    }
                };
                let Some(msg) = accept(raw, &mut shell, &shell_state.iopub).await else {
                    continue;
                };
                shell_state.handle(msg, &mut shell).await;
            }
        });
    }
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = shutdown_rx.recv() => {}
        _ = sigterm.recv() => eprintln!("forja-kernel: SIGTERM, shutting down"),
        _ = crate::reaper::parent_gone() => eprintln!("forja-kernel: the Jupyter server that started it is gone, shutting down"),
        _ = async { loop { sigint.recv().await; crate::interrupt::interrupt(&shared); } } => {}
    }
    shared.kill_runner();
    // Give iopub a moment to deliver the last status messages.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// Decodes a raw message; drops bad signatures, answers bad content.
async fn accept<S: SocketSend>(
    raw: zeromq::ZmqMessage,
    conn: &mut Connection<S>,
    iopub: &Iopub,
) -> Option<JupyterMessage> {
    match wire::decode_zmq(raw, &conn.mac) {
        Ok(m) => Some(m),
        Err(DecodeError::BadContent {
            identities,
            header,
            reason,
            ..
        }) => {
            eprintln!("forja-kernel: invalid {}: {reason}", header.msg_type);
            if let Some(reply) = wire::bad_content_reply(identities, *header, &reason) {
                // The reply's parent is the request: wrap it in busy/idle too.
                let request_like = {
                    let mut m = reply.clone();
                    if let Some(h) = reply.parent_header.clone() {
                        m.header = h;
                    }
                    m
                };
                status(iopub, &request_like, "busy");
                let _ = conn.send(reply).await;
                status(iopub, &request_like, "idle");
            }
            None
        }
        Err(e) => {
            eprintln!("forja-kernel: dropped a message: {e}");
            None
        }
    }
}

async fn publish_iopub(
    mut conn: Connection<zeromq::XPubSocket>,
    mut rx: mpsc::UnboundedReceiver<JupyterMessage>,
) {
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => {
                    if let Err(e) = conn.send(m).await {
                        eprintln!("forja-kernel: iopub send: {e}");
                    }
                }
                None => return,
            },
            s = conn.recv_subscription() => {
                if let Ok(SubscriptionEvent::Subscribe(topic)) = s {
                    let welcome = jupyter_protocol::IoPubWelcome::new(topic);
                    let mut m = JupyterMessage::new(welcome, None);
                    m.header.username = "forja".into();
                    let _ = conn.send(m).await;
                }
            }
        }
    }
}

async fn serve_stdin(
    mut conn: Connection<zeromq::RouterSocket>,
    mut rx: mpsc::UnboundedReceiver<InputAsk>,
) {
    while let Some(ask) = rx.recv().await {
        let req = wire::child_json(
            &ask.parent,
            "input_request",
            json!({"prompt": ask.prompt, "password": ask.password}),
        );
        if conn.send(req).await.is_err() {
            let _ = ask.reply.send(None);
            continue;
        }
        let answer = loop {
            match conn.socket.recv().await {
                Ok(raw) => match wire::decode_zmq(raw, &conn.mac) {
                    Ok(m) => {
                        if let JupyterMessageContent::InputReply(r) = &m.content {
                            break Some(r.value.clone());
                        }
                    }
                    Err(e) => eprintln!("forja-kernel: stdin: {e}"),
                },
                Err(_) => break None,
            }
        };
        let _ = ask.reply.send(answer);
    }
}

fn status(iopub: &Iopub, parent: &JupyterMessage, state: &str) {
    crate::output::publish(
        iopub,
        wire::child_json(parent, "status", json!({"execution_state": state})),
    );
}

async fn handle_control(
    msg: JupyterMessage,
    conn: &mut Connection<zeromq::RouterSocket>,
    iopub: &Iopub,
    shared: &Arc<SessionState>,
    shutdown: &mpsc::UnboundedSender<()>,
) {
    status(iopub, &msg, "busy");
    let mut stop = false;
    let reply = match msg.message_type() {
        "kernel_info_request" => Some(crate::kernel_info::content()),
        "interrupt_request" => {
            crate::interrupt::interrupt(shared);
            Some(json!({"status": "ok"}))
        }
        "shutdown_request" => {
            let restart = match &msg.content {
                JupyterMessageContent::ShutdownRequest(r) => r.restart,
                _ => false,
            };
            shared.kill_runner();
            stop = true;
            Some(json!({"status": "ok", "restart": restart}))
        }
        t if t.ends_with("_request") => Some(json!({
            "status": "error", "ename": "UnsupportedRequest",
            "evalue": format!("forja-kernel does not handle {t} on the control channel"),
            "traceback": [],
        })),
        _ => None,
    };
    if let Some(content) = reply {
        let t = wire::reply_type(msg.message_type());
        let _ = conn.send(wire::child_json(&msg, &t, content)).await;
    }
    status(iopub, &msg, "idle");
    if stop {
        let _ = shutdown.send(());
    }
}

struct ShellState {
    iopub: Iopub,
    session: mpsc::UnboundedSender<Request>,
    shared: Arc<SessionState>,
    history: History,
    comms: Comms,
    execution_count: u64,
    /// After an error with `stop_on_error`, executes sent before this time
    /// (already queued when the error happened) are answered `aborted`.
    abort_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl ShellState {
    async fn handle(&mut self, msg: JupyterMessage, conn: &mut Connection<zeromq::RouterSocket>) {
        status(&self.iopub, &msg, "busy");
        let reply: Option<Value> = match &msg.content {
            JupyterMessageContent::KernelInfoRequest(_) => Some(crate::kernel_info::content()),
            JupyterMessageContent::ExecuteRequest(_) => Some(self.execute(&msg).await),
            JupyterMessageContent::IsCompleteRequest(r) => {
                let c = is_complete(&r.code);
                Some(match c {
                    crate::is_complete::Completeness::Incomplete(indent) => {
                        json!({"status": "incomplete", "indent": indent})
                    }
                    other => json!({"status": other.status()}),
                })
            }
            JupyterMessageContent::CompleteRequest(r) => {
                let (tx, rx) = oneshot::channel();
                let _ = self.session.send(Request::Complete {
                    code: r.code.clone(),
                    cursor_pos: r.cursor_pos,
                    reply: tx,
                });
                Some(rx.await.unwrap_or_else(|_| session_gone()))
            }
            JupyterMessageContent::InspectRequest(r) => {
                let (tx, rx) = oneshot::channel();
                let _ = self.session.send(Request::Inspect {
                    code: r.code.clone(),
                    cursor_pos: r.cursor_pos,
                    reply: tx,
                });
                Some(rx.await.unwrap_or_else(|_| session_gone()))
            }
            JupyterMessageContent::HistoryRequest(_) => {
                let req = serde_json::to_value(&msg.content).unwrap_or_default();
                Some(json!({"status": "ok", "history": self.history.query(&req)}))
            }
            JupyterMessageContent::CommInfoRequest(r) => Some(
                self.comms
                    .info(r.target_name.as_deref().filter(|t| !t.is_empty())),
            ),
            JupyterMessageContent::CommOpen(open) => {
                let target = open.target_name.clone();
                let id = open.comm_id.0.clone();
                if self.comms.knows(&target) {
                    self.comms.opened(&id, &target);
                } else {
                    eprintln!("forja-kernel: comm_open for unknown target {target:?}, closing it");
                    crate::output::publish(
                        &self.iopub,
                        wire::child_json(&msg, "comm_close", json!({"comm_id": id, "data": {}})),
                    );
                }
                None
            }
            JupyterMessageContent::CommClose(close) => {
                self.comms.closed(&close.comm_id.0);
                None
            }
            JupyterMessageContent::CommMsg(_) => None,
            JupyterMessageContent::ShutdownRequest(_)
            | JupyterMessageContent::InterruptRequest(_) => {
                Some(json!({"status": "error", "ename": "WrongChannel",
                            "evalue": "send this request on the control channel", "traceback": []}))
            }
            _ => {
                let t = msg.message_type().to_owned();
                if t.ends_with("_request") {
                    Some(json!({"status": "error", "ename": "UnsupportedRequest",
                                "evalue": format!("forja-kernel does not handle {t}"), "traceback": []}))
                } else {
                    None
                }
            }
        };
        if let Some(content) = reply {
            let t = wire::reply_type(msg.message_type());
            let _ = conn.send(wire::child_json(&msg, &t, content)).await;
        }
        status(&self.iopub, &msg, "idle");
    }

    async fn execute(&mut self, msg: &JupyterMessage) -> Value {
        let JupyterMessageContent::ExecuteRequest(req) = &msg.content else {
            return json!({"status": "error"});
        };
        match self.abort_before {
            Some(t) if msg.header.date < t => {
                return json!({"status": "aborted", "execution_count": self.execution_count});
            }
            Some(_) => self.abort_before = None,
            None => {}
        }
        let silent = req.silent;
        let store_history = req.store_history && !silent;
        if store_history {
            self.execution_count += 1;
        }
        let count = self.execution_count;
        if !silent {
            crate::output::publish(
                &self.iopub,
                wire::child_json(
                    msg,
                    "execute_input",
                    json!({"code": req.code, "execution_count": count}),
                ),
            );
        }
        if store_history {
            self.history.record(count, &req.code);
        }
        // While the session starts, a quiet note (a display, not red
        // stderr) that the session removes with `clear_output` as it begins
        // the cell, before any of the cell's output: it is not kept in the
        // saved notebook.
        let (started, started_rx) = if !silent && !self.shared.ready.load(Ordering::SeqCst) {
            crate::output::publish(
                &self.iopub,
                wire::child_json(
                    msg,
                    "display_data",
                    json!({"data": {"text/plain": starting_note()}, "metadata": {}, "transient": {}}),
                ),
            );
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let user_expressions = req
            .user_expressions
            .clone()
            .map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
            .unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        let _ = self.session.send(Request::Execute {
            code: req.code.clone(),
            parent: Box::new(msg.clone()),
            allow_stdin: req.allow_stdin,
            user_expressions,
            cell: count,
            started,
            reply: tx,
        });
        if let Some(started_rx) = started_rx
            && let Ok(ack) = started_rx.await
        {
            // On the one iopub queue, so it lands before the cell's output;
            // the session waits for the ack before the cell runs.
            crate::output::publish(
                &self.iopub,
                wire::child_json(msg, "clear_output", json!({"wait": false})),
            );
            let _ = ack.send(());
        }
        let outcome = rx.await.unwrap_or_else(|_| Outcome {
            error: Some(CellError {
                ename: "KernelError".into(),
                evalue: crate::messages::Msg::SessionStopped.get().into(),
                traceback: vec![],
            }),
            ..Default::default()
        });
        if let Some(err) = outcome.error {
            crate::output::publish(
                &self.iopub,
                wire::child_json(
                    msg,
                    "error",
                    json!({"ename": err.ename, "evalue": err.evalue, "traceback": err.traceback}),
                ),
            );
            if req.stop_on_error {
                self.abort_before = Some(chrono::Utc::now());
            }
            return json!({"status": "error", "execution_count": count, "ename": err.ename,
                          "evalue": err.evalue, "traceback": err.traceback});
        }
        if let Some(data) = outcome.data
            && !silent
        {
            crate::output::publish(
                &self.iopub,
                wire::child_json(
                    msg,
                    "execute_result",
                    json!({"execution_count": count, "data": data, "metadata": {}}),
                ),
            );
        }
        json!({"status": "ok", "execution_count": count,
               "user_expressions": outcome.user_expressions, "payload": []})
    }
}

/// Shown under a cell sent while the Rust session is still starting.
fn starting_note() -> &'static str {
    crate::messages::Msg::StillStarting.get()
}

fn session_gone() -> Value {
    json!({"status": "error", "ename": "KernelError", "evalue": crate::messages::Msg::SessionStopped.get(), "traceback": []})
}
