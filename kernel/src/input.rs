//! Answers `forja::input` and `forja::input_password`, asked over the side
//! channel by the cell or by any process it started, through Jupyter's stdin
//! channel (the same `InputAsk` path as evcxr's own input requests).
//!
//! One connection per question: an `input_request` line in, one JSON line
//! out, `{"value": …}` or `{"error": …}`. The running cell's desk (its
//! request, whether the frontend takes input) is opened by the session when
//! the cell starts and closed when it ends; a question with no cell running,
//! or from a frontend with `allow_stdin` off, gets an error at once.

use crate::state::SessionState;
use jupyter_protocol::JupyterMessage;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// An input request from a running cell, answered by the server's stdin task.
pub struct InputAsk {
    /// The execute request that asks.
    pub parent: JupyterMessage,
    /// Prompt text.
    pub prompt: String,
    /// Hide the typed text.
    pub password: bool,
    /// Where the answer goes (`None`: no answer, e.g. interrupted).
    pub reply: std::sync::mpsc::Sender<Option<String>>,
}

/// What a question needs of the running cell.
#[derive(Clone)]
pub struct Desk {
    /// The cell's `execute_request` (parent of the `input_request`).
    pub parent: JupyterMessage,
    /// Whether the frontend takes input.
    pub allow_stdin: bool,
    /// The server's stdin task.
    pub input: mpsc::UnboundedSender<InputAsk>,
    /// Blocks until what was printed before the question is published (the
    /// children's output readers drained, the output router flushed).
    pub before_asking: Arc<dyn Fn() + Send + Sync>,
    /// The session's state (whether the cell was interrupted).
    pub shared: Arc<SessionState>,
}

static DESK: Mutex<Option<Desk>> = Mutex::new(None);

/// Opens the desk for the cell that starts now.
pub fn open(desk: Desk) {
    if let Ok(mut d) = DESK.lock() {
        *d = Some(desk);
    }
}

/// Closes it when the cell ends.
pub fn close() {
    if let Ok(mut d) = DESK.lock() {
        *d = None;
    }
}

/// What the frontend answered, or why there is no answer.
async fn ask(prompt: String, password: bool) -> Result<String, String> {
    let desk = DESK
        .lock()
        .ok()
        .and_then(|d| d.clone())
        .ok_or(crate::messages::Msg::InputNoCell.get())?;
    if !desk.allow_stdin {
        return Err(
            "this frontend does not accept input (its execute_request has allow_stdin \
             false, as when a notebook is run by a script): give the value in the code instead"
                .into(),
        );
    }
    // What was printed before the question is shown before it.
    let before = desk.before_asking.clone();
    let _ = tokio::task::spawn_blocking(move || before()).await;
    let (atx, arx) = std::sync::mpsc::channel();
    desk.input
        .send(InputAsk {
            parent: desk.parent.clone(),
            prompt,
            password,
            reply: atx,
        })
        .map_err(|_| crate::messages::Msg::InputStdinClosed.get().to_owned())?;
    let shared = desk.shared.clone();
    tokio::task::spawn_blocking(move || {
        loop {
            match arx.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => return Err(crate::messages::Msg::InputNoAnswer.get().to_owned()),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if shared.interrupted.load(Ordering::SeqCst) {
                        return Err(crate::messages::Msg::InputInterrupted.get().to_owned());
                    }
                }
                Err(_) => return Err(crate::messages::Msg::InputStdinClosed.get().to_owned()),
            }
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
}

/// Answers one question on its connection.
pub async fn answer(mut stream: tokio::net::UnixStream, prompt: String, password: bool) {
    let reply = match ask(prompt, password).await {
        Ok(value) => forja::link::InputAnswer {
            value: Some(value),
            error: None,
        },
        Err(error) => forja::link::InputAnswer {
            value: None,
            error: Some(error),
        },
    };
    let _ = stream.write_all(&reply.to_line()).await;
}
