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
