//! The side channel from the runner (and every process it starts) to the kernel.
//!
//! A Unix socket named in `FORJA_KERNEL_SOCKET`. Each connection carries
//! newline-delimited JSON [`Frame`]s: the runner's output pump sends user
//! output and end-of-cell marks; `forja::display` sends displays while a cell
//! runs. The kernel publishes them on iopub under the running cell.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// The environment variable naming the socket (same name as in `forja::display`).
pub const SOCKET_ENV: &str = "FORJA_KERNEL_SOCKET";

/// Largest frame accepted; bigger ones are dropped with a log line.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// One message on the side channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// Output on stdout or stderr, possibly a partial line.
    Stream {
        /// `stdout` or `stderr`.
        name: String,
        /// The text.
        text: String,
        /// The child process that wrote it (`None`: the runner itself).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// First line of a connection that then carries one child process's raw
    /// stdout or stderr (sent by forja right after a fork).
    AttachOutput {
        /// `stdout` or `stderr`.
        name: String,
        /// The writer's pid.
        pid: i32,
        /// The writer's forja process name.
        process: String,
    },
    /// forja's stdout flusher in the runner (consumed by the runner's pump).
    Flusher {
        /// Address of its `forja::display::FlushControl`.
        addr: usize,
    },
    /// The runner started; its forja registry is fd `registry_fd` of `pid`.
    RunnerHello {
        /// The runner's pid.
        pid: i32,
        /// The memfd of its forja process registry.
        registry_fd: i32,
    },
    /// The runner finished a cell; everything it printed before was sent.
    CellEnd,
    /// The cell's code panicked (evcxr caught the panic).
    Panic,
    /// A new display.
    DisplayData {
        /// MIME bundle.
        data: Value,
        /// Metadata.
        #[serde(default)]
        metadata: Value,
        /// Optional display id for later updates.
        #[serde(default)]
        display_id: Option<String>,
    },
    /// Update of an earlier display.
    UpdateDisplayData {
        /// MIME bundle.
        data: Value,
        /// Metadata.
        #[serde(default)]
        metadata: Value,
        /// The display to update.
        display_id: String,
    },
    /// Clear the cell's output.
    ClearOutput {
        /// Clear only when new output arrives.
        #[serde(default)]
        wait: bool,
    },
}

impl Frame {
    /// The frame as one JSON line.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// A child process that wrote some output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Its pid.
    pub pid: i32,
    /// Its forja process name.
    pub process: String,
}

/// How long a child's partial last line waits for its end.
const PARTIAL_LINE_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Reads one child's raw output, sending whole lines (a partial line after
/// [`PARTIAL_LINE_WAIT`] of silence), labelled with the child.
async fn pump_raw<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    name: String,
    origin: Origin,
    tx: &mpsc::UnboundedSender<Frame>,
) {
    use tokio::io::AsyncReadExt;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let send = |bytes: Vec<u8>| {
        let _ = tx.send(Frame::Stream {
            name: name.clone(),
            text: String::from_utf8_lossy(&bytes).into_owned(),
            origin: Some(origin.clone()),
        });
    };
    loop {
        let read = if pending.is_empty() {
            Ok(reader.read(&mut buf).await)
        } else {
            tokio::time::timeout(PARTIAL_LINE_WAIT, reader.read(&mut buf)).await
        };
        match read {
            Err(_) => send(std::mem::take(&mut pending)),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                pending.extend_from_slice(&buf[..n]);
                if let Some(last_nl) = pending.iter().rposition(|&b| b == b'\n') {
                    let rest = pending.split_off(last_nl + 1);
                    send(std::mem::replace(&mut pending, rest));
                }
            }
        }
    }
    if !pending.is_empty() {
        send(pending);
    }
}

/// Binds the socket and forwards every frame received to `tx`.
pub fn listen(path: &Path, tx: mpsc::UnboundedSender<Frame>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(stream);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line.len() > MAX_FRAME => {
                            eprintln!("forja-kernel: side-channel frame too large, dropped");
                        }
                        Ok(_) => match serde_json::from_slice::<Frame>(&line) {
                            Ok(Frame::AttachOutput { name, pid, process }) => {
                                let origin = Origin { pid, process };
                                pump_raw(reader, name, origin, &tx).await;
                                return;
                            }
                            Ok(frame) => {
                                if tx.send(frame).is_err() {
                                    return;
                                }
                            }
                            Err(e) => eprintln!("forja-kernel: bad side-channel frame: {e}"),
                        },
                    }
                }
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_as_the_forja_crate_writes_them() {
        let f: Frame = serde_json::from_str(
            r#"{"type":"display_data","data":{"text/html":"<b>x</b>"},"metadata":{},"display_id":"d1"}"#,
        )
        .unwrap();
        assert!(matches!(f, Frame::DisplayData { display_id: Some(ref d), .. } if d == "d1"));
        let line = Frame::CellEnd.to_line();
        assert_eq!(line, b"{\"type\":\"cell_end\"}\n");
        let c: Frame = serde_json::from_str(r#"{"type":"clear_output","wait":true}"#).unwrap();
        assert_eq!(c, Frame::ClearOutput { wait: true });
    }
}
