//! The contract between the three kinds of process (the kernel, evcxr's
//! runner, forja's children): every environment variable name, evcxr's
//! control-line markers, the registry layout the kernel relies on, and the one
//! typed [`Message`] every control message between them is.
//!
//! The kernel and the runner (the `forja-kernel` binary) and every copy of
//! forja a cell links import these names from here; nothing else spells them.
//! Which process writes what on which channel is drawn in `ARCHITECTURE.md`.
//!
//! # Encoding: JSON, one message a line
//!
//! Every [`Message`] travels as one line of JSON ([`Message::to_line`],
//! [`Message::from_line`]), tagged by `"type"`. JSON rather than postcard
//! (which forja uses between processes of a program, `codec`) because:
//! a display carries a MIME bundle that is arbitrary JSON (`serde_json::Value`
//! needs a self-describing format; postcard cannot decode it); a line is its
//! own frame, so a connection can start with one message (the
//! [`Message::AttachOutput`] header) and go on with raw bytes; and a
//! message written on the runner's stdout must be found among the cell's own
//! text by a marker and a newline ([`STDOUT_FRAME_MARKER`]), which a binary
//! encoding could contain. Decoding is the only place bytes become a message:
//! anything that is not exactly one known message is an [`Err`], never a panic.
//!
//! # No data address travels
//!
//! No message, no environment variable and no shared header carries the
//! address of data, not even inside one process (each cell links its own
//! copy of forja, with its own statics, so an address is the only thing two
//! copies could otherwise share):
//!
//! - the stdout flusher is reached through a socket whose fd travels
//!   ([`Message::Flusher`]);
//! - the registry and timeline mappings are found by their memfd's name
//!   ([`REGISTRY_MEMFD_KIND`], [`TIMELINE_MEMFD_KIND`]) in `/proc/self/fd`
//!   and `/proc/self/maps`; forja writes nothing to the environment;
//! - the runner announces its registry as an fd of its own
//!   ([`Message::RunnerHello`]), which the kernel opens through `/proc`;
//! - the timeline's header names the creator's registry (whose cell counter
//!   each event records) by its memfd's inode, found again in the reader's
//!   own `/proc/self/maps`.
//!
//! **The one exception** is *code*: a `Pool` task message carries two code
//! addresses, the task's `fn` pointer and the trampoline that decodes the
//! arguments and calls it. Code is not allocated, so it is valid in a worker
//! by fork inheritance alone, provided it was loaded before the worker was
//! forked: the pool records the loader's stamp (how many objects were
//! loaded) when it forks a worker and re-forks workers older than a task's
//! code before giving them that task (`forja/src/pool/task.rs`).

pub use crate::identity::ProcessInfo;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Environment variable names, each set by one process and read by others
/// (the table in `ARCHITECTURE.md` says who).
pub mod env {
    /// The kernel's pid: "we are under the kernel" (set by the kernel).
    pub const KERNEL_PID: &str = "FORJA_KERNEL_PID";
    /// The side channel's Unix socket path (set by the kernel).
    pub const KERNEL_SOCKET: &str = "FORJA_KERNEL_SOCKET";
    /// The runner's private fds, `a,b,c,d`, which its children close (set by
    /// the runner).
    pub const RUNNER_FDS: &str = "FORJA_RUNNER_FDS";
    /// Keep `RUST_BACKTRACE` as evcxr sets it in the runner (set by the user).
    pub const BACKTRACE: &str = "FORJA_BACKTRACE";
    /// The cap on live children per process (set by the user).
    pub const MAX_CHILDREN: &str = "FORJA_MAX_CHILDREN";
    /// Override of the kernel's history file.
    pub const HISTORY_FILE: &str = "FORJA_HISTORY_FILE";
    /// Override of the forja crate the kernel adds to a session.
    pub const CRATE_DIR: &str = "FORJA_CRATE_DIR";
    /// Override of the lock file a session starts from.
    pub const LOCKFILE: &str = "FORJA_LOCKFILE";
    /// Override of the prebuilt forja build.
    pub const PREBUILT: &str = "FORJA_PREBUILT";
    /// The language of forja's words for students (`es…`: Spanish; set by
    /// the user; then `LC_ALL`, `LC_MESSAGES`, `LANG`).
    pub const LANG: &str = "FORJA_LANG";
    /// The session key in named shared memory's names (set by the user or
    /// a test; else the kernel's pid).
    pub const SHM_SESSION: &str = "FORJA_SHM_SESSION";
    /// evcxr's: this process is evcxr's runner.
    pub const EVCXR_IS_RUNTIME: &str = "EVCXR_IS_RUNTIME";
    /// evcxr's: the session's crate directory (set by the kernel).
    pub const EVCXR_TMPDIR: &str = "EVCXR_TMPDIR";
}

/// evcxr's control lines on the runner's stdout (recognised only by the
/// kernel's `runner::StdoutSplitter`; written by evcxr and by forja's rich
/// displays of a cell's value).
pub mod evcxr {
    /// Every control line starts with this.
    pub const MARKER: &str = "EVCXR_";
    /// The cell finished.
    pub const EXECUTION_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";
    /// A cell value's content block starts: `EVCXR_BEGIN_CONTENT mime`.
    pub const BEGIN_CONTENT: &str = "EVCXR_BEGIN_CONTENT";
    /// A content block ends.
    pub const END_CONTENT: &str = "EVCXR_END_CONTENT";
    /// The cell's code panicked (evcxr caught the panic).
    pub const PANIC_NOTIFICATION: &str = "EVCXR_PANIC_NOTIFICATION";
    /// The cell reads a line: `EVCXR_INPUT_REQUEST:prompt`.
    pub const INPUT_REQUEST: &str = "EVCXR_INPUT_REQUEST";
    /// Printed by the cell's generated code (a forja patch to evcxr) just
    /// before the cell's value.
    pub const FORJA_VALUE: &str = "EVCXR_FORJA_VALUE";
}

/// Starts a [`Message`] that forja writes on the runner's stdout, so it keeps
/// its place among what the cell printed; the kernel's output pump takes it
/// out of the user's output.
pub const STDOUT_FRAME_MARKER: &str = "FORJA_FRAME ";

/// Largest message accepted; bigger ones are dropped with a log line.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The registry's first word, `FORJAREG` (the kernel maps the runner's
/// registry through `/proc`; `forja::registry::Remote` checks it).
pub const REGISTRY_MAGIC: u64 = u64::from_le_bytes(*b"FORJAREG");
/// The registry layout's version: a kernel attaches only to a registry of
/// its own layout.
pub const REGISTRY_VERSION: u32 = 2;
/// Slots for children in a registry.
pub const REGISTRY_SLOTS: usize = 1024;
/// A registry's memfd is named `forja-registry:PID` (its maker's pid): every
/// copy of forja in a process finds it in `/proc/self/fd` and
/// `/proc/self/maps` by that name, never through the environment.
pub const REGISTRY_MEMFD_KIND: &str = "forja-registry";
/// The timeline's memfd is named `forja-timeline:PID`, found the same way.
pub const TIMELINE_MEMFD_KIND: &str = "forja-timeline";

/// One control message between the kernel, the runner and forja's children.
///
/// Unknown fields are an error, except on the field-less variants
/// (`cell_end`, `panic`), which serde's tagged form cannot check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// Output on stdout or stderr, possibly a partial line (runner → kernel;
    /// the kernel's readers of children's raw output make these too).
    Stream {
        /// `stdout` or `stderr`.
        name: String,
        /// The text.
        text: String,
        /// The child process that wrote it (`None`: the runner itself).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<ProcessInfo>,
    },
    /// First line of a connection that then carries one child process's raw
    /// stdout or stderr (child → kernel, right after the fork; a forked child
    /// encodes it without allocating, from an [`AttachHeader`]).
    AttachOutput {
        /// `stdout` or `stderr`.
        name: String,
        /// The writer's pid.
        pid: i32,
        /// The writer's forja process name.
        process: String,
    },
    /// forja's stdout flusher in the runner (cell → runner's pump, on stdout):
    /// the pump now owns fd `fd` of this process, a Unix socket whose other
    /// end the flusher thread reads (see [`flush_request`]).
    Flusher {
        /// The pump's end of the flusher's socket.
        fd: i32,
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
    /// The cell's code panicked (evcxr caught the panic and said so).
    Panic,
    /// A panic, reported by the panic hook of the process that panicked (the
    /// runner's, installed with the stdout flusher, or a forja child's).
    PanicReport {
        /// The thread's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<String>,
        /// `file:line:column`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
        /// The panic's message.
        message: String,
        /// The child process that panicked (`None`: the runner).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<ProcessInfo>,
        /// The file name of the library the child's code came from
        /// (`libcode_7.so`: under the kernel each cell's build is a library
        /// of its own, all with a `src/lib.rs`), so the kernel can place
        /// `location` in the cells; `None` when not known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        library: Option<String>,
    },
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
    /// First line of a connection that asks the student for a line
    /// (`forja::input`); the kernel answers on the same connection with
    /// one [`InputAnswer`] line.
    InputRequest {
        /// The prompt.
        prompt: String,
        /// Hide what is typed.
        #[serde(default)]
        password: bool,
    },
    /// Clear the cell's output.
    ClearOutput {
        /// Clear only when new output arrives.
        #[serde(default)]
        wait: bool,
    },
}

/// The kernel's answer to a [`Message::InputRequest`], one JSON line on the
/// question's connection: `{"value": …}` or `{"error": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputAnswer {
    /// The line the student typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why there is no line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl InputAnswer {
    /// The answer as one JSON line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Decodes one line (with or without its newline).
    pub fn from_line(line: &[u8]) -> Result<InputAnswer, DecodeError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        serde_json::from_slice(line).map_err(DecodeError::Malformed)
    }
}

/// [`Message::AttachOutput`] with borrowed fields: the same JSON, encoded by
/// a freshly forked child into a buffer on its stack
/// ([`AttachHeader::encode_into`]), so it allocates nothing.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type", rename = "attach_output")]
pub struct AttachHeader<'a> {
    /// `stdout` or `stderr`.
    pub name: &'a str,
    /// The writer's pid.
    pub pid: i32,
    /// The writer's forja process name.
    pub process: &'a str,
}

impl AttachHeader<'_> {
    /// Writes the header line into `buf`; returns its length, or `None` if
    /// it does not fit.
    pub fn encode_into(&self, buf: &mut [u8]) -> Option<usize> {
        let total = buf.len();
        let mut rest: &mut [u8] = buf;
        serde_json::to_writer(&mut rest, self).ok()?;
        let (nl, _) = rest.split_first_mut()?;
        *nl = b'\n';
        Some(total - rest.len() + 1)
    }
}

/// Why bytes are not a [`Message`].
#[derive(Debug)]
pub enum DecodeError {
    /// Longer than [`MAX_MESSAGE`]: dropped unread.
    TooLarge(usize),
    /// Not one JSON message of a known type with the fields it needs.
    Malformed(serde_json::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge(n) => {
                write!(f, "a message of {n} bytes (the limit is {MAX_MESSAGE})")
            }
            DecodeError::Malformed(e) => write!(f, "not a forja side-channel message: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Message {
    /// The message as one JSON line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        // Serializing a value of this type cannot fail: every map key is a
        // string and every field serializes.
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Decodes one line (with or without its newline).
    pub fn from_line(line: &[u8]) -> Result<Message, DecodeError> {
        if line.len() > MAX_MESSAGE {
            return Err(DecodeError::TooLarge(line.len()));
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        serde_json::from_slice(line).map_err(DecodeError::Malformed)
    }

    /// The message as a line for the runner's stdout: [`STDOUT_FRAME_MARKER`],
    /// the JSON, a newline.
    pub fn to_stdout_frame(&self) -> Vec<u8> {
        let mut line = STDOUT_FRAME_MARKER.as_bytes().to_vec();
        line.extend_from_slice(&self.to_line());
        line
    }

    /// The report of the panic `info`, made by a panic hook.
    pub fn panic_report(
        info: &std::panic::PanicHookInfo<'_>,
        origin: Option<ProcessInfo>,
    ) -> Message {
        Message::PanicReport {
            thread: std::thread::current().name().map(str::to_owned),
            location: info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
            message: panic_message(info.payload()),
            origin,
            library: None,
        }
    }
}

/// The line a forja child's panic shows as: on its stderr outside the
/// kernel; in the cell, made by the kernel from the child's
/// [`Message::PanicReport`] (so it is never read back from text).
pub fn child_panic_line(process: &ProcessInfo, location: Option<&str>, message: &str) -> String {
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    format!(
        "panic in process {} (pid {}){at}: {message}\n",
        process.name(),
        process.pid()
    )
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a panic without a message)".to_owned()
    }
}

/// The flusher's socket carries request numbers, 4 bytes little-endian each
/// way: the pump sends `n` to ask for a flush, the flusher answers with the
/// last `n` it read once stdout is flushed.
pub fn flush_request(n: u32) -> [u8; 4] {
    n.to_le_bytes()
}

/// The last whole request number in `bytes` read from the flusher's socket.
pub fn last_flush_number(bytes: &[u8]) -> Option<u32> {
    let whole = bytes.len() / 4 * 4;
    let last = bytes.get(whole.checked_sub(4)?..whole)?;
    Some(u32::from_le_bytes(last.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_variant() -> Vec<Message> {
        let origin = Some(ProcessInfo::new(7, "Process-1"));
        vec![
            Message::Stream {
                name: "stdout".into(),
                text: "año\n\"quoted\"\u{0}".into(),
                origin: None,
            },
            Message::Stream {
                name: "stderr".into(),
                text: "partial".into(),
                origin: origin.clone(),
            },
            Message::AttachOutput {
                name: "stderr".into(),
                pid: 9,
                process: "Worker \"x\"\n".into(),
            },
            Message::Flusher { fd: 17 },
            Message::RunnerHello {
                pid: 42,
                registry_fd: 5,
            },
            Message::CellEnd,
            Message::Panic,
            Message::PanicReport {
                thread: Some("main".into()),
                location: Some("src/lib.rs:3:1".into()),
                message: "boom".into(),
                origin: None,
                library: Some("libcode_7.so".into()),
            },
            Message::PanicReport {
                thread: None,
                location: None,
                message: String::new(),
                origin,
                library: None,
            },
            Message::DisplayData {
                data: json!({"text/html": "<b>x</b>", "application/json": {"a": [1, 2]}}),
                metadata: json!({}),
                display_id: Some("d1".into()),
            },
            Message::DisplayData {
                data: json!({"text/plain": "x"}),
                metadata: json!({"isolated": true}),
                display_id: None,
            },
            Message::UpdateDisplayData {
                data: json!({"text/plain": "y"}),
                metadata: json!({}),
                display_id: "d1".into(),
            },
            Message::ClearOutput { wait: true },
            Message::ClearOutput { wait: false },
            Message::InputRequest {
                prompt: "¿nombre?: ".into(),
                password: true,
            },
        ]
    }

    #[test]
    fn every_variant_round_trips_as_one_line() {
        for m in every_variant() {
            let line = m.to_line();
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "{m:?}");
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(Message::from_line(&line).unwrap(), m);
            assert_eq!(Message::from_line(&line[..line.len() - 1]).unwrap(), m);
            let frame = m.to_stdout_frame();
            let body = frame.strip_prefix(STDOUT_FRAME_MARKER.as_bytes()).unwrap();
            assert_eq!(Message::from_line(body).unwrap(), m);
        }
    }

    #[test]
    fn the_wire_form_is_stable() {
        assert_eq!(Message::CellEnd.to_line(), b"{\"type\":\"cell_end\"}\n");
        assert_eq!(
            Message::from_line(br#"{"type":"clear_output","wait":true}"#).unwrap(),
            Message::ClearOutput { wait: true }
        );
        let d = Message::from_line(
            br#"{"type":"display_data","data":{"text/html":"<b>x</b>"},"metadata":{},"display_id":"d1"}"#,
        )
        .unwrap();
        assert!(matches!(d, Message::DisplayData { display_id: Some(ref i), .. } if i == "d1"));
    }

    #[test]
    fn garbled_or_unknown_messages_are_errors_not_panics() {
        let bad: &[&[u8]] = &[
            b"",
            b"\n",
            b"{",
            b"null",
            b"[1,2]",
            b"\xff\xfe{}",
            br#"{"type":"no_such_message"}"#,
            br#"{"type":"stream","name":"stdout"}"#,
            br#"{"type":"flusher","fd":"12"}"#,
            br#"{"type":"flusher","addr":140737488355328}"#,
            br#"{"type":"runner_hello","pid":1,"registry_fd":99999999999}"#,
            br#"{"type":"cell_end"} {"type":"cell_end"}"#,
        ];
        for b in bad {
            assert!(
                matches!(Message::from_line(b), Err(DecodeError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let huge = vec![b' '; MAX_MESSAGE + 1];
        assert!(matches!(
            Message::from_line(&huge),
            Err(DecodeError::TooLarge(_))
        ));
    }

    #[test]
    fn the_attach_header_is_the_attach_message() {
        let h = AttachHeader {
            name: "stdout",
            pid: -3,
            process: "año \"1\"\n",
        };
        let mut buf = [0u8; 128];
        let n = h.encode_into(&mut buf).unwrap();
        assert_eq!(buf[n - 1], b'\n');
        assert_eq!(
            Message::from_line(&buf[..n]).unwrap(),
            Message::AttachOutput {
                name: "stdout".into(),
                pid: -3,
                process: "año \"1\"\n".into()
            }
        );
        assert_eq!(h.encode_into(&mut [0u8; 10]), None);
        let mut exact = vec![0u8; n];
        assert_eq!(h.encode_into(&mut exact), Some(n));
    }

    #[test]
    fn a_childs_panic_line_names_it() {
        let p = ProcessInfo::new(12, "Process-1");
        assert_eq!(
            child_panic_line(&p, Some("src/lib.rs:3:9"), "boom"),
            "panic in process Process-1 (pid 12) at src/lib.rs:3:9: boom\n"
        );
        assert_eq!(
            child_panic_line(&p, None, "x"),
            "panic in process Process-1 (pid 12): x\n"
        );
    }

    #[test]
    fn input_answers_round_trip() {
        for a in [
            InputAnswer {
                value: Some("año".into()),
                error: None,
            },
            InputAnswer {
                value: None,
                error: Some("no stdin".into()),
            },
        ] {
            assert_eq!(InputAnswer::from_line(&a.to_line()).unwrap(), a);
        }
        assert_eq!(
            InputAnswer::from_line(br#"{"value":"x"}"#)
                .unwrap()
                .value
                .as_deref(),
            Some("x")
        );
    }

    #[test]
    fn flush_numbers_take_the_last_whole_one() {
        let mut b = Vec::new();
        b.extend_from_slice(&flush_request(3));
        b.extend_from_slice(&flush_request(u32::MAX));
        assert_eq!(last_flush_number(&b), Some(u32::MAX));
        b.push(9);
        assert_eq!(last_flush_number(&b), Some(u32::MAX));
        assert_eq!(last_flush_number(&[1, 2]), None);
    }
}
