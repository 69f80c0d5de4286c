//! The runner side of the kernel: code that runs inside evcxr's runner process.
//!
//! evcxr re-runs `forja-kernel` as its runner and reads the runner's stdout
//! line by line, looking for its control lines (`EVCXR_EXECUTION_COMPLETE`,
//! `EVCXR_BEGIN_CONTENT`, ...) mixed with user output. A cell that ends with a
//! flushed partial line glues user text to the end-of-cell marker and evcxr
//! waits forever. So the runner owns its output: fds 1 and 2 become pipes that
//! an output pump reads. The pump sends user output to the kernel over the
//! side channel ([`crate::side_channel`]) as soon as it arrives, partial lines
//! included, and passes evcxr's control lines, whole, to evcxr's real stdout.

use crate::side_channel::{SOCKET_ENV, SideMessage};
use forja::link::{env, evcxr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Environment variable listing the runner's private fds; forja closes them in
/// every child it forks, so a child never keeps evcxr's pipe open.
pub const RUNNER_FDS_ENV: &str = env::RUNNER_FDS;

const MARKER: &[u8] = evcxr::MARKER.as_bytes();
/// Starts a side-channel message that `forja::display` writes on the runner's stdout
/// (JSON, one line).
const FRAME_MARKER: &[u8] = forja::link::STDOUT_FRAME_MARKER.as_bytes();
/// Longest wait at the end of a cell for the cells' stdout to be flushed.
const FLUSH_WAIT: Duration = Duration::from_millis(50);
const EXECUTION_COMPLETE: &[u8] = evcxr::EXECUTION_COMPLETE.as_bytes();
const BEGIN_CONTENT: &[u8] = evcxr::BEGIN_CONTENT.as_bytes();
const END_CONTENT: &[u8] = evcxr::END_CONTENT.as_bytes();
const PANIC_NOTIFICATION: &[u8] = evcxr::PANIC_NOTIFICATION.as_bytes();
const INPUT_REQUEST: &[u8] = evcxr::INPUT_REQUEST.as_bytes();
/// How long a possible start of a control line is held back before it is
/// treated as user output.
const HOLD_BACK: Duration = Duration::from_millis(15);

/// If this process is evcxr's runner started by forja-kernel, install the
/// output pump. Call before `evcxr::runtime_hook()`.
pub fn install_if_runner() {
    if std::env::var_os(env::EVCXR_IS_RUNTIME).is_none() {
        return;
    }
    let Some(path) = std::env::var_os(SOCKET_ENV) else {
        return;
    };
    let Ok(stream) = UnixStream::connect(&path) else {
        return;
    };
    if let Err(e) = install(stream) {
        eprintln!("forja runner: could not install the output pump: {e}");
    }
}

/// SIGTERM in the runner (sent when the kernel dies): kill the runner's whole
/// process group, itself included. Only async-signal-safe calls.
/// A process forked from the runner may still carry this handler for a
/// moment (before forja resets it); there SIGTERM keeps its usual meaning.
extern "C" fn stop_group(sig: libc::c_int) {
    use nix::sys::signal::{SigHandler, Signal, kill, raise, signal};
    use nix::unistd::{Pid, getpid};
    // getpid, kill, signal and raise are async-signal-safe (nix's wrappers
    // only call them).
    if getpid().as_raw() == RUNNER_PID.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = kill(Pid::from_raw(0), Signal::SIGKILL);
    } else if let Ok(sig) = Signal::try_from(sig) {
        // SAFETY: restoring the default action installs no Rust handler.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        let _ = raise(sig);
    }
}

/// The runner's normal exit (evcxr's runner exits when its stdin closes: the
/// kernel dropped the session, or died): kill the runner's whole process
/// group too. When the kernel is killed, its end of that pipe closes before
/// the kernel's death signal reaches the runner, so the runner may well exit
/// this way first, and the death signal never arrives; its forja children
/// then die with it (their own death signal), but not a plain command a
/// child started. A forked child that calls `exit` must not do this.
extern "C" fn stop_group_at_exit() {
    if nix::unistd::getpid().as_raw() == RUNNER_PID.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The runner's pid, for [`stop_group`] and [`stop_group_at_exit`].
static RUNNER_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

fn pipe_cloexec() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

fn install(stream: UnixStream) -> std::io::Result<()> {
    // A process group of its own: the kernel can stop the runner and every
    // process a cell started with one killpg.
    use nix::sys::signal::{SigHandler, Signal};
    use nix::unistd::Pid;
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // Die with the kernel, even if it is killed with SIGKILL, and take
    // the whole process group along (forja children die with their
    // parents; this also stops plain commands a cell started).
    RUNNER_PID.store(
        nix::unistd::getpid().as_raw(),
        std::sync::atomic::Ordering::Relaxed,
    );
    // SAFETY: `stop_group` makes only async-signal-safe calls.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGTERM, SigHandler::Handler(stop_group)) };
    // SAFETY: registers a plain function (libc: nix has no `atexit`).
    unsafe { libc::atexit(stop_group_at_exit) };
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if let Some(kernel) = std::env::var(env::KERNEL_PID)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        && nix::unistd::getppid().as_raw() != kernel
    {
        // SAFETY: ends the process at once, running no handler (libc: nix
        // has no `_exit`).
        unsafe { libc::_exit(1) };
    }
    let _ = std::io::stdout().flush();
    // A close-on-exec copy of fd 1, numbered 10 or above.
    let orig_out = nix::fcntl::fcntl(std::io::stdout(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
    // SAFETY: orig_out is a fresh fd we own.
    let orig_out = unsafe { OwnedFd::from_raw_fd(orig_out) };
    let (out_r, out_w) = pipe_cloexec()?;
    let (err_r, err_w) = pipe_cloexec()?;
    nix::unistd::dup2_stdout(&out_w)?;
    nix::unistd::dup2_stderr(&err_w)?;
    drop((out_w, err_w));
    // SAFETY: single-threaded at this point of start-up.
    unsafe {
        // evcxr asks for backtraces; a student needs the panic message.
        if std::env::var_os(env::BACKTRACE).is_none() {
            std::env::set_var("RUST_BACKTRACE", "0");
        }
        std::env::set_var(
            RUNNER_FDS_ENV,
            format!(
                "{},{},{},{}",
                orig_out.as_raw_fd(),
                out_r.as_raw_fd(),
                err_r.as_raw_fd(),
                stream.as_raw_fd()
            ),
        );
    }
    let sink = Arc::new(Mutex::new(stream));
    // Make this process's forja registry now, so every cell's copy of forja
    // finds it and the kernel can attach (interrupt flag, :procs).
    if let Ok((pid, registry_fd)) = forja::registry::ensure() {
        send(&sink, &SideMessage::RunnerHello { pid, registry_fd });
    }
    let evcxr_out = std::fs::File::from(orig_out);
    for fd in [&err_r, &out_r] {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
            let _ = fcntl(
                fd,
                FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
            );
        }
    }
    let pump = Pump {
        sink,
        evcxr_out,
        splitter: StdoutSplitter::new(),
        stderr: Some(std::fs::File::from(err_r)),
        err_carry: Vec::new(),
        flusher: None,
        blocks: crate::content_blocks::ContentBlocks::new(),
        in_value: false,
    };
    // A forja-owned thread: forking in a cell does not warn about it.
    forja::os::spawn_owned("out-pump", move || pump.run(std::fs::File::from(out_r)))?;
    Ok(())
}

fn send(sink: &Mutex<UnixStream>, message: &SideMessage) {
    let line = message.to_line();
    if let Ok(mut s) = sink.lock() {
        let _ = s.write_all(&line);
    }
}

/// Splits `bytes` at the end of its last complete UTF-8 character.
fn utf8_split(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => bytes.len(),
    }
}

/// Separates user output from evcxr's control lines on the runner's stdout.
pub struct StdoutSplitter {
    pending: Vec<u8>,
    in_content: bool,
}

/// One piece of the runner's stdout.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// User output, possibly a partial line.
    User(String),
    /// A whole control line for evcxr, with its newline.
    Control(Vec<u8>),
    /// A side-channel message written by forja (JSON, without marker and newline).
    SideMessage(Vec<u8>),
}

impl Default for StdoutSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl StdoutSplitter {
    /// A splitter with nothing pending.
    pub fn new() -> Self {
        Self {
            pending: Vec::new(),
            in_content: false,
        }
    }

    /// Whether bytes are held back waiting for more input.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Feeds bytes and returns the pieces they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Piece> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.in_content {
                let Some(nl) = self.pending.iter().position(|&b| b == b'\n') else {
                    break;
                };
                let line: Vec<u8> = self.pending.drain(..=nl).collect();
                let body = &line[..line.len() - 1];
                if body == END_CONTENT || body == PANIC_NOTIFICATION {
                    self.in_content = false;
                }
                out.push(Piece::Control(line));
                continue;
            }
            let evcxr = find(&self.pending, MARKER);
            let frame = find(&self.pending, FRAME_MARKER);
            let first = match (evcxr, frame) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match first {
                Some(i) => {
                    if i > 0 {
                        let text: Vec<u8> = self.pending.drain(..i).collect();
                        out.push(Piece::User(String::from_utf8_lossy(&text).into_owned()));
                    }
                    let Some(nl) = self.pending.iter().position(|&b| b == b'\n') else {
                        break;
                    };
                    let line: Vec<u8> = self.pending.drain(..=nl).collect();
                    if frame == Some(i) {
                        out.push(Piece::SideMessage(
                            line[FRAME_MARKER.len()..line.len() - 1].to_vec(),
                        ));
                        continue;
                    }
                    if line.starts_with(BEGIN_CONTENT) {
                        self.in_content = true;
                    }
                    out.push(Piece::Control(line));
                }
                None => {
                    let keep = marker_prefix_suffix(&self.pending);
                    let mut cut = self.pending.len() - keep;
                    cut = utf8_split(&self.pending[..cut]);
                    if cut > 0 {
                        let text: Vec<u8> = self.pending.drain(..cut).collect();
                        out.push(Piece::User(String::from_utf8_lossy(&text).into_owned()));
                    }
                    break;
                }
            }
        }
        out
    }

    /// Leaves a content block that will never end (the cell ended inside
    /// it): what follows is read as usual again.
    pub fn leave_content(&mut self) {
        self.in_content = false;
    }

    /// Gives up waiting: whatever is held back is user output.
    pub fn flush(&mut self) -> Option<Piece> {
        if self.pending.is_empty() || self.in_content {
            return None;
        }
        let text = std::mem::take(&mut self.pending);
        Some(Piece::User(String::from_utf8_lossy(&text).into_owned()))
    }
}

/// evcxr keeps only the part of an input prompt before its first `:`; swap
/// the prompt's colons for U+2236 (∶) so the kernel can restore them.
pub fn protect_prompt(line: Vec<u8>) -> Vec<u8> {
    if !line.starts_with(INPUT_REQUEST) {
        return line;
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return line;
    };
    let (head, prompt) = line.split_at(colon + 1);
    let prompt = String::from_utf8_lossy(prompt).replace(':', PROMPT_COLON);
    let mut out = head.to_vec();
    out.extend_from_slice(prompt.as_bytes());
    out
}

/// What a colon in an input prompt travels as (see [`protect_prompt`]).
pub const PROMPT_COLON: &str = "\u{2236}";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the longest suffix of `buf` that is a proper prefix of a marker.
fn marker_prefix_suffix(buf: &[u8]) -> usize {
    [MARKER, FRAME_MARKER]
        .iter()
        .map(|m| {
            (1..m.len())
                .rev()
                .find(|&k| buf.len() >= k && buf[buf.len() - k..] == m[..k])
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

impl Pump {
    /// Takes the value marker and the lines of a content block the cell
    /// printed (not its value), sending each whole block as a display
    /// ([`crate::content_blocks`]). `true` if `line` was taken.
    fn printed_block(&mut self, line: &[u8]) -> bool {
        if line.starts_with(crate::content_blocks::VALUE_MARKER.as_bytes()) {
            self.in_value = true;
            return true;
        }
        if self.in_value
            || line.starts_with(EXECUTION_COMPLETE)
            || line.starts_with(PANIC_NOTIFICATION)
            || !(self.blocks.in_block() || line.starts_with(BEGIN_CONTENT))
        {
            return false;
        }
        let outs = self.blocks.feed(&String::from_utf8_lossy(line));
        for m in crate::side_channel::block_messages(outs, "stdout", None) {
            send(&self.sink, &m);
        }
        true
    }

    /// At a panic or the cell's end: a printed block that never ended is
    /// sent as text (nothing lost, evcxr never waits for its end).
    fn end_printed_block(&mut self, cell_end: bool) {
        if self.blocks.in_block() {
            self.splitter.leave_content();
            let mut outs = self.blocks.finish();
            // Its unfinished last line, held by the splitter, goes too.
            if let Some(Piece::User(text)) = self.splitter.flush() {
                outs.push(crate::content_blocks::Out::Text(text));
            }
            for m in crate::side_channel::block_messages(outs, "stdout", None) {
                send(&self.sink, &m);
            }
        }
        if cell_end {
            self.in_value = false;
        }
    }
}

/// The runner's output pump: one thread reading the stdout and stderr pipes.
///
/// A panic message is written to stderr before evcxr's panic notice reaches
/// stdout, so before passing on a control line the pump drains stderr: the
/// kernel always has a cell's stderr before the cell's end.
struct Pump {
    sink: Arc<Mutex<UnixStream>>,
    evcxr_out: std::fs::File,
    splitter: StdoutSplitter,
    /// Non-blocking; `None` once closed.
    stderr: Option<std::fs::File>,
    err_carry: Vec<u8>,
    /// The cells' stdout flusher (the pump's end of its socket, and the
    /// last request number), once forja announced it.
    flusher: Option<(UnixStream, u32)>,
    /// Content blocks the cell prints, each a display at once.
    blocks: crate::content_blocks::ContentBlocks,
    /// Between the cell's value marker and its end: blocks go to evcxr.
    in_value: bool,
}

impl Pump {
    /// Sends whatever stderr holds now.
    fn drain_stderr(&mut self) {
        let Some(err) = self.stderr.as_mut() else {
            return;
        };
        let mut buf = [0u8; 64 * 1024];
        loop {
            match err.read(&mut buf) {
                Ok(0) => {
                    self.stderr = None;
                    break;
                }
                Ok(n) => self.err_carry.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.stderr = None;
                    break;
                }
            }
        }
        let cut = utf8_split(&self.err_carry);
        if cut > 0 {
            let text = String::from_utf8_lossy(&self.err_carry[..cut]).into_owned();
            self.err_carry.drain(..cut);
            send(
                &self.sink,
                &SideMessage::Stream {
                    name: "stderr".into(),
                    text,
                    origin: None,
                },
            );
        }
    }

    /// At the end of a cell: has the cells' stdout buffer flushed (a
    /// `print!` without newline sits in it) and passes on what that wrote.
    fn flush_cell_stdout(&mut self, stdout: &mut std::fs::File) {
        if let Some((socket, last)) = self.flusher.as_mut() {
            *last = last.wrapping_add(1);
            let want = *last;
            if flush_round_trip(socket, want, FLUSH_WAIT).is_err() {
                // The flusher is gone (a fresh runner announces a new one).
                self.flusher = None;
            }
        }
        self.read_available(stdout);
    }

    /// Reads and passes on what stdout holds now, without blocking.
    fn read_available(&mut self, stdout: &mut std::fs::File) {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            for p in self.splitter.feed(&buf[..n]) {
                self.emit(p, stdout);
            }
        }
    }

    fn emit(&mut self, piece: Piece, stdout: &mut std::fs::File) {
        match piece {
            Piece::SideMessage(json) => match SideMessage::from_line(&json) {
                Ok(SideMessage::Flusher { fd }) => {
                    if let Some(socket) = adopt_socket(fd) {
                        self.flusher = Some((socket, 0));
                    }
                }
                Ok(message) => send(&self.sink, &message),
                Err(e) => eprintln!("forja runner: bad side-channel message on stdout: {e}"),
            },
            Piece::User(text) => send(
                &self.sink,
                &SideMessage::Stream {
                    name: "stdout".into(),
                    text,
                    origin: None,
                },
            ),
            Piece::Control(line) => {
                if self.printed_block(&line) {
                    return;
                }
                if line.starts_with(EXECUTION_COMPLETE) {
                    self.flush_cell_stdout(stdout);
                }
                if line.starts_with(EXECUTION_COMPLETE) || line.starts_with(PANIC_NOTIFICATION) {
                    self.end_printed_block(line.starts_with(EXECUTION_COMPLETE));
                }
                self.drain_stderr();
                if line.starts_with(EXECUTION_COMPLETE) {
                    // Everything before the marker has been sent; tell the
                    // kernel so it can end the cell's output.
                    send(&self.sink, &SideMessage::CellEnd);
                } else if line.starts_with(PANIC_NOTIFICATION) {
                    send(&self.sink, &SideMessage::Panic);
                }
                let line = protect_prompt(line);
                let _ = self.evcxr_out.write_all(&line);
                let _ = self.evcxr_out.flush();
            }
        }
    }

    fn run(mut self, mut stdout: std::fs::File) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
            let timeout = if self.splitter.has_pending() {
                PollTimeout::try_from(HOLD_BACK).unwrap_or(PollTimeout::MAX)
            } else {
                PollTimeout::NONE
            };
            let (out_ready, err_ready) = {
                let mut fds = vec![PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
                if let Some(err) = &self.stderr {
                    fds.push(PollFd::new(err.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, timeout) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                    Ok(0) => (false, false),
                    Ok(_) => {
                        let seen = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
                        (seen(&fds[0]), fds.get(1).is_some_and(seen))
                    }
                }
            };
            if !out_ready && !err_ready {
                if let Some(p) = self.splitter.flush() {
                    self.emit(p, &mut stdout);
                }
                continue;
            }
            if err_ready {
                self.drain_stderr();
            }
            if out_ready {
                match stdout.read(&mut buf) {
                    Ok(0) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                    Ok(n) => {
                        for p in self.splitter.feed(&buf[..n]) {
                            self.emit(p, &mut stdout);
                        }
                    }
                }
            }
        }
        if let Some(p) = self.splitter.flush() {
            self.emit(p, &mut stdout);
        }
        self.drain_stderr();
    }
}

/// Takes ownership of fd `fd` of this process, announced by forja's
/// flusher as its socket: only if it is an open Unix socket.
fn adopt_socket(fd: i32) -> Option<UnixStream> {
    if fd <= 2 {
        return None;
    }
    // SAFETY: only looked at (fstat) while this function runs; the fd was
    // made for the pump by forja and nothing else closes it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let is_socket = nix::sys::stat::fstat(borrowed).is_ok_and(|st| {
        nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
            == nix::sys::stat::SFlag::S_IFSOCK
    });
    // SAFETY: forja made this fd for the pump and gave it up (`into_raw_fd`);
    // the pump is its only owner from now on.
    is_socket.then(|| unsafe { UnixStream::from_raw_fd(fd) })
}

/// Asks the flusher for flush `want` and waits (at most `wait`) for it to
/// answer `want`; earlier answers (of requests that timed out) are skipped.
fn flush_round_trip(socket: &mut UnixStream, want: u32, wait: Duration) -> std::io::Result<()> {
    socket.write_all(&forja::link::flush_request(want))?;
    let deadline = std::time::Instant::now() + wait;
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        let wait =
            PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        if !matches!(poll(&mut fds, wait), Ok(n) if n > 0) {
            continue;
        }
        let n = socket.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(done) = forja::link::last_flush_number(&buf[..n])
            && done.wrapping_sub(want) as i32 >= 0
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> Piece {
        Piece::User(s.into())
    }
    fn ctl(s: &str) -> Piece {
        Piece::Control(s.as_bytes().to_vec())
    }

    #[test]
    fn partial_line_glued_to_marker_is_split() {
        let mut s = StdoutSplitter::new();
        let p = s.feed(b"xEVCXR_EXECUTION_COMPLETE\n");
        assert_eq!(p, vec![user("x"), ctl("EVCXR_EXECUTION_COMPLETE\n")]);
    }

    #[test]
    fn marker_split_across_reads() {
        let mut s = StdoutSplitter::new();
        assert_eq!(s.feed(b"hello\nEVC"), vec![user("hello\n")]);
        assert!(s.has_pending());
        assert_eq!(
            s.feed(b"XR_EXECUTION_COMPLETE\n"),
            vec![ctl("EVCXR_EXECUTION_COMPLETE\n")]
        );
    }

    #[test]
    fn held_back_prefix_is_user_text_after_flush() {
        let mut s = StdoutSplitter::new();
        assert_eq!(s.feed(b"progress: E"), vec![user("progress: ")]);
        assert_eq!(s.flush(), Some(user("E")));
    }

    #[test]
    fn content_block_goes_to_evcxr_whole() {
        let mut s = StdoutSplitter::new();
        let p = s.feed(b"EVCXR_BEGIN_CONTENT text/html\n<b>EVCXR_ x</b>\nEVCXR_END_CONTENT\nafter");
        assert_eq!(
            p,
            vec![
                ctl("EVCXR_BEGIN_CONTENT text/html\n"),
                ctl("<b>EVCXR_ x</b>\n"),
                ctl("EVCXR_END_CONTENT\n"),
                user("after"),
            ]
        );
    }

    #[test]
    fn prompt_colons_survive_evcxr() {
        let l = protect_prompt(b"EVCXR_INPUT_REQUEST:City: \n".to_vec());
        let l = String::from_utf8(l).unwrap();
        // evcxr's own parsing: the second ':'-separated field.
        let prompt = l.strip_suffix('\n').unwrap().split(':').nth(1).unwrap();
        assert_eq!(prompt.replace(PROMPT_COLON, ":"), "City: ");
        assert_eq!(
            protect_prompt(b"EVCXR_EXECUTION_COMPLETE\n".to_vec()),
            b"EVCXR_EXECUTION_COMPLETE\n"
        );
    }

    #[test]
    fn multibyte_char_split_is_kept_whole() {
        let mut s = StdoutSplitter::new();
        let bytes = "año".as_bytes();
        assert_eq!(s.feed(&bytes[..2]), vec![user("a")]);
        assert_eq!(s.feed(&bytes[2..]), vec![user("ño")]);
    }
}
