//! The side channel from the runner (and every process it starts) to the kernel.
//!
//! A Unix socket named in `FORJA_KERNEL_SOCKET`. Each connection carries
//! [`SideMessage`]s (`forja::link::Message`, one JSON line each): the
//! runner's output pump sends user output and end-of-cell marks;
//! `forja::display` sends displays while a cell runs; a forja child sends
//! panic reports. A child's output connection starts with one
//! `attach_output` message and is raw bytes after it. The kernel publishes
//! them on iopub under the running cell.

use std::path::Path;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

pub use forja::ProcessInfo;
pub use forja::link::{MAX_MESSAGE, Message as SideMessage};

/// The old name of the child that wrote some output: now forja's one
/// child-identity type (same wire form, `{"pid": …, "process": …}`).
#[deprecated(note = "use `forja::ProcessInfo` (`ProcessInfo::new(pid, name)`)")]
pub type Origin = ProcessInfo;

/// The environment variable naming the socket.
pub const SOCKET_ENV: &str = forja::link::env::KERNEL_SOCKET;

/// The old name of [`MAX_MESSAGE`].
#[deprecated(note = "renamed `MAX_MESSAGE`")]
pub const MAX_FRAME: usize = MAX_MESSAGE;

/// The old name of [`SideMessage`].
#[deprecated(note = "renamed `SideMessage`")]
pub type Frame = SideMessage;

/// The side-channel messages for `outs`: text on stream `name`, blocks as
/// displays (with `text/plain` only when the block is text).
pub fn block_messages(
    outs: Vec<crate::content_blocks::Out>,
    name: &str,
    origin: Option<&ProcessInfo>,
) -> Vec<SideMessage> {
    outs.into_iter()
        .map(|o| match o {
            crate::content_blocks::Out::Text(text) => SideMessage::Stream {
                name: name.to_owned(),
                text,
                origin: origin.cloned(),
            },
            crate::content_blocks::Out::Display { mime, body } => SideMessage::DisplayData {
                data: serde_json::json!({ mime: body }),
                metadata: serde_json::json!({}),
                display_id: None,
            },
        })
        .collect()
}

/// How long a child's partial last line waits for its end.
const PARTIAL_LINE_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// A request to a child-output reader: pass on everything already received,
/// then answer.
pub type DrainRequest = std::sync::mpsc::Sender<()>;

/// The live child-output readers, so a cell's end can wait until what its
/// children wrote before it ended has been passed on.
#[derive(Clone, Default)]
pub struct ChildOutputs {
    readers: std::sync::Arc<std::sync::Mutex<Vec<mpsc::UnboundedSender<DrainRequest>>>>,
}

impl ChildOutputs {
    fn add(&self) -> mpsc::UnboundedReceiver<DrainRequest> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut r) = self.readers.lock() {
            r.retain(|t| !t.is_closed());
            r.push(tx);
        }
        rx
    }

    /// Blocks (at most `timeout`) until every reader has passed on what it
    /// had received. Messages sent before this returns precede anything sent
    /// after it on the message channel.
    pub fn drain(&self, timeout: std::time::Duration) {
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        let mut asked = 0;
        if let Ok(mut r) = self.readers.lock() {
            r.retain(|t| !t.is_closed());
            for t in r.iter() {
                if t.send(ack_tx.clone()).is_ok() {
                    asked += 1;
                }
            }
        }
        let deadline = std::time::Instant::now() + timeout;
        for _ in 0..asked {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if ack_rx.recv_timeout(left).is_err() {
                break;
            }
        }
    }
}

/// Reads one child's raw output, sending whole lines (a partial line after
/// [`PARTIAL_LINE_WAIT`] of silence), labelled with the child.
async fn pump_raw(
    stream: tokio::net::UnixStream,
    mut pending: Vec<u8>,
    name: String,
    origin: ProcessInfo,
    tx: &mpsc::UnboundedSender<SideMessage>,
    mut drains: mpsc::UnboundedReceiver<DrainRequest>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    // Content blocks the child prints become displays
    // (crate::content_blocks); `end`: the cell ends, or the output does.
    let mut blocks = crate::content_blocks::ContentBlocks::new();
    let mut send = |bytes: Vec<u8>, end: bool| {
        let text = String::from_utf8_lossy(&bytes);
        let mut outs = if name == "stdout" {
            blocks.feed(&text)
        } else {
            vec![crate::content_blocks::Out::Text(text.into_owned())]
        };
        if end {
            outs.extend(blocks.finish());
        }
        outs.retain(|o| !matches!(o, crate::content_blocks::Out::Text(t) if t.is_empty()));
        for m in block_messages(outs, &name, Some(&origin)) {
            let _ = tx.send(m);
        }
    };
    let whole_lines = |pending: &mut Vec<u8>| -> Vec<u8> {
        match pending.iter().rposition(|&b| b == b'\n') {
            Some(last_nl) => {
                let rest = pending.split_off(last_nl + 1);
                std::mem::replace(pending, rest)
            }
            None => Vec::new(),
        }
    };
    send(whole_lines(&mut pending), false);
    let mut eof = false;
    while !eof {
        let wait = async {
            if pending.is_empty() {
                std::future::pending::<()>().await
            } else {
                tokio::time::sleep(PARTIAL_LINE_WAIT).await
            }
        };
        tokio::select! {
            r = stream.readable() => {
                if r.is_err() {
                    break;
                }
                match stream.try_read(&mut buf) {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        pending.extend_from_slice(&buf[..n]);
                        send(whole_lines(&mut pending), false);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => eof = true,
                }
            }
            d = drains.recv() => {
                // Everything already in the socket, lines and partial line.
                loop {
                    match stream.try_read(&mut buf) {
                        Ok(0) => { eof = true; break; }
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                        Err(_) => break,
                    }
                }
                send(std::mem::take(&mut pending), true);
                if let Some(ack) = d {
                    let _ = ack.send(());
                }
            }
            _ = wait => send(std::mem::take(&mut pending), false),
        }
    }
    send(pending, true);
}

/// Binds the socket and forwards every message received to `tx`.
pub fn listen(
    path: &Path,
    tx: mpsc::UnboundedSender<SideMessage>,
    children: ChildOutputs,
) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            let children = children.clone();
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(stream);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => match SideMessage::from_line(&line) {
                            Ok(SideMessage::AttachOutput { name, pid, process }) => {
                                let origin = ProcessInfo::new(pid, process);
                                let drains = children.add();
                                let buffered = reader.buffer().to_vec();
                                let stream = reader.into_inner();
                                pump_raw(stream, buffered, name, origin, &tx, drains).await;
                                return;
                            }
                            Ok(SideMessage::InputRequest { prompt, password }) => {
                                crate::input::answer(reader.into_inner(), prompt, password).await;
                                return;
                            }
                            Ok(message) => {
                                if tx.send(message).is_err() {
                                    return;
                                }
                            }
                            Err(e) => eprintln!("forja-kernel: side-channel message dropped: {e}"),
                        },
                    }
                }
            });
        }
    });
    Ok(())
}
