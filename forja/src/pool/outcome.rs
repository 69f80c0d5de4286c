//! What a chunk of tasks came to: its outcome as the parent stores it, why
//! it failed, and decoding it into the tasks' results.

use crate::codec;
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Why a chunk of tasks has no result.
#[derive(Debug, Clone)]
pub(super) enum Fail {
    Died {
        worker: String,
        pid: i32,
        how: String,
    },
    Message {
        worker: String,
        pid: i32,
        message: String,
    },
    Terminated,
    InitFailed {
        pid: i32,
        message: String,
    },
    /// Cancelled before a worker took it (a [`Future`](super::Future)).
    Cancelled,
    /// No worker could be started (or the result thread failed).
    SpawnFailed {
        message: String,
    },
}

impl Fail {
    pub(super) fn to_error(&self) -> Error {
        match self.clone() {
            Fail::Died { worker, pid, how } => Error::WorkerDied {
                worker,
                worker_pid: pid,
                how,
            },
            Fail::Message {
                worker,
                pid,
                message,
            } => Error::TaskPanicked {
                worker,
                worker_pid: pid,
                message,
            },
            Fail::Terminated => Error::PoolClosed {
                state: "terminated",
                pid: crate::os::pid(),
            },
            Fail::InitFailed { pid, message } => Error::PoolInitializerFailed {
                worker_pid: pid,
                message,
            },
            Fail::Cancelled => Error::Cancelled {
                pid: crate::os::pid(),
            },
            Fail::SpawnFailed { message } => Error::PoolBroken {
                message,
                pid: crate::os::pid(),
            },
        }
    }
}

/// The outcome of one chunk.
#[derive(Debug)]
pub(super) enum ChunkOutcome {
    Pending,
    Done {
        bytes: Vec<u8>,
        /// `bytes` is a `Vec<R>` (every task returned), not a
        /// `Vec<Result<R, String>>`.
        all_ok: bool,
        worker: Arc<str>,
        pid: i32,
    },
    Failed(Fail),
}

/// Decodes one finished chunk into its items' results.
pub(super) fn decode_chunk<R: DeserializeOwned>(outcome: &ChunkOutcome) -> Result<Vec<Result<R>>> {
    match outcome {
        ChunkOutcome::Pending => unreachable!("decode of a pending chunk"),
        ChunkOutcome::Failed(f) => Err(f.to_error()),
        ChunkOutcome::Done {
            bytes,
            all_ok: true,
            ..
        } => {
            let items: Vec<R> = codec::decode(bytes, "a pool result")?;
            Ok(items.into_iter().map(Ok).collect())
        }
        ChunkOutcome::Done {
            bytes,
            all_ok: false,
            worker,
            pid,
        } => {
            let items: Vec<Result<R, String>> = codec::decode(bytes, "a pool result")?;
            Ok(items
                .into_iter()
                .map(|r| {
                    r.map_err(|message| Error::TaskPanicked {
                        worker: worker.to_string(),
                        worker_pid: *pid,
                        message,
                    })
                })
                .collect())
        }
    }
}

/// Appends the results of one finished chunk to `out`; the first failed
/// item's error otherwise.
pub(super) fn decode_chunk_into<R: DeserializeOwned>(
    outcome: &ChunkOutcome,
    out: &mut Vec<R>,
) -> Result<()> {
    if let ChunkOutcome::Done {
        bytes,
        all_ok: true,
        ..
    } = outcome
    {
        let items: Vec<R> = codec::decode(bytes, "a pool result")?;
        if out.is_empty() && out.capacity() < items.len() {
            *out = items;
        } else {
            out.extend(items);
        }
        return Ok(());
    }
    for item in decode_chunk::<R>(outcome)? {
        out.push(item?);
    }
    Ok(())
}

pub(super) fn decode_all<R: DeserializeOwned>(chunks: &[ChunkOutcome]) -> Result<Vec<R>> {
    let mut out = Vec::new();
    for c in chunks {
        decode_chunk_into(c, &mut out)?;
    }
    Ok(out)
}

pub(super) fn decode_one<R: DeserializeOwned>(chunks: &[ChunkOutcome]) -> Result<R> {
    let first = chunks.first().expect("one chunk");
    decode_chunk::<R>(first)?
        .into_iter()
        .next()
        .unwrap_or_else(|| {
            Err(Error::Message {
                action: "decode",
                what: "a pool result",
                pid: crate::os::pid(),
                message: crate::messages::Msg::WorkerSentNoResult.get().into(),
            })
        })
}
