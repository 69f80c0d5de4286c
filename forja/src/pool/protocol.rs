//! The messages between the pool and a worker: their kinds and byte layouts.
//!
//! Each travels as one length-prefixed message on the worker's socket (see
//! [`MessageFd`](crate::connection::MessageFd)); its first byte is its kind.
//!
//! Parent -> worker:
//! - task: `TO_WORKER_TASK`, job (u64 LE, bytes 1..9), chunk (u32 LE,
//!   9..13), trampoline address (u64 LE, 13..21), task address (u64 LE,
//!   21..29), context length (u32 LE, 29..33), the encoded context (the
//!   value of a `_with` call; `()` otherwise), the encoded arguments. Laid
//!   out by `task::TaskCode`, read by `task::TaskMessage`; job and chunk are
//!   filled in when the task is queued. The two addresses are code, never
//!   data: no message carries a pointer into the sender's memory (see
//!   `task` for why code is the one exception).
//! - stop: `TO_WORKER_STOP` alone.
//!
//! Worker -> parent:
//! - ready: `FROM_WORKER_READY` alone, once its initializer has run.
//! - initializer failed: `FROM_WORKER_INIT_FAILED`, then a UTF-8 message.
//! - result: `FROM_WORKER_RESULT`, the task's job and chunk (bytes 1..13,
//!   copied from the task), one of the `RESULT_*` encodings (byte 13), the
//!   body.

// Message kinds, parent -> worker.
pub(super) const TO_WORKER_TASK: u8 = 1;
pub(super) const TO_WORKER_STOP: u8 = 2;
// Message kinds, worker -> parent.
pub(super) const FROM_WORKER_READY: u8 = 1;
pub(super) const FROM_WORKER_RESULT: u8 = 2;
pub(super) const FROM_WORKER_INIT_FAILED: u8 = 3;
// How a result message's body is encoded (byte 13).
/// `Vec<R>`: every task of the chunk returned.
pub(super) const RESULT_ALL_OK: u8 = 0;
/// A text: why the chunk could not run.
pub(super) const RESULT_FAILED: u8 = 1;
/// `Vec<Result<R, String>>`: some tasks panicked.
pub(super) const RESULT_MIXED: u8 = 2;
