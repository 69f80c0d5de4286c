//! How a forked child fits into the forja kernel: it closes the runner's
//! private fds, dies with its parent, and sends its stdout and stderr to the
//! kernel labelled with its pid and name.
//!
//! Inside the kernel, cells run in evcxr's *runner* process. The kernel puts
//! three variables in its environment:
//!
//! - `FORJA_KERNEL_PID`: the kernel's pid. When it is set, every forja child
//!   (a `Process` or a `Pool` worker) asks for `SIGKILL` when its parent dies
//!   (`PR_SET_PDEATHSIG`), so killing the kernel kills the runner (which has
//!   the same death signal), which kills its children, which kill theirs: no
//!   orphans. Outside the kernel only daemons get a death signal (`SIGTERM`).
//!   Caveat of the mechanism: "parent" is the *thread* that forked, so under
//!   the kernel a process started from a spawned thread dies when that thread
//!   ends — start processes from the cell's own (main) thread.
//! - `FORJA_RUNNER_FDS`: the runner's private fds ("a,b,c,d": evcxr's pipes,
//!   the output pump's ends). A child of the runner closes them, so it never
//!   keeps evcxr's pipes open. Only children of the runner itself do this
//!   (the process whose parent is `FORJA_KERNEL_PID`, or any process when
//!   that variable is unset): in any other process those numbers may be
//!   reused by fds of its own.
//! - `FORJA_KERNEL_SOCKET`: the kernel's Unix socket. Right after the fork
//!   the child opens one connection for stdout and one for stderr, sends one
//!   header line ([`Message::AttachOutput`], encoded in the parent) on each
//!   and puts them on fds 1 and 2: from then on whatever the child (or a
//!   program it `exec`s) writes there reaches the kernel raw, and the kernel
//!   knows which process wrote it (the connection's peer pid). If the socket
//!   cannot be reached, the child keeps the fds it inherited. A panic in the
//!   child is reported on a connection of its own ([`report_panic`]).
//!
//! Everything is read from the environment in the parent, before the fork,
//! so the child does not touch the environment's lock.

use crate::identity::ProcessInfo;
use crate::link::{AttachHeader, Message, env};
use nix::errno::Errno;
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Mutex, OnceLock};

/// The kernel's pid (set by the kernel in the runner's environment).
pub(crate) const KERNEL_PID_ENV: &str = env::KERNEL_PID;
/// The kernel's side-channel socket.
pub(crate) const KERNEL_SOCKET_ENV: &str = env::KERNEL_SOCKET;
/// The runner's private fds.
pub(crate) const RUNNER_FDS_ENV: &str = env::RUNNER_FDS;

type SocketAddr = nix::sys::socket::UnixAddr;

/// In a forja child under the kernel: the kernel's socket, kept at set-up
/// (while the child has one thread) for [`report_panic`], which must not read
/// the environment.
static KERNEL_SOCKET: OnceLock<SocketAddr> = OnceLock::new();

/// How long a child keeps trying to reach a busy kernel socket.
const CONNECT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// What a child must do about the kernel, worked out before the fork.
pub(crate) struct ChildPlan {
    under_kernel: bool,
    runner_fds: Vec<i32>,
    socket: Option<SocketAddr>,
    /// The child's forja process name, for the header lines.
    process: String,
    /// The file name of the library the child's code is in (under the
    /// kernel, when known).
    library: Option<&'static str>,
}

/// In a forja child: the library its code came from (set at set-up, read by
/// [`report_panic`]).
static CODE_LIBRARY: Mutex<Option<&'static str>> = Mutex::new(None);

/// The file name of the shared object that holds address `addr`
/// (`libcode_7.so`), interned: a session has a bounded number of builds, so
/// each name is leaked once and children get it without allocating.
fn library_of(addr: usize) -> Option<&'static str> {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    // SAFETY: an all-zero `Dl_info` is valid (null pointers).
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // libc: nix has no dladdr.
    // SAFETY: dladdr only reads the loader's tables and writes `info`.
    if unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } == 0
        || info.dli_fname.is_null()
    {
        return None;
    }
    // SAFETY: dladdr gave a NUL-terminated path owned by the loader, valid
    // while the object is loaded (it is: it holds `addr`); copied at once.
    let path = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let name = std::path::Path::new(OsStr::from_bytes(path.to_bytes()))
        .file_name()?
        .to_str()?;
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.iter().find(|n| **n == name) {
        return Some(known);
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    Some(leaked)
}

/// Parses "a,b,c,d" defensively: numbers above 2, each once; anything else
/// is skipped.
pub(crate) fn parse_fd_list(text: &str) -> Vec<i32> {
    let mut fds: Vec<i32> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|t| t.trim().parse::<i32>().ok())
        .filter(|&fd| fd > 2)
        .collect();
    fds.sort_unstable();
    fds.dedup();
    fds
}

fn socket_addr(path: &OsStr) -> Option<SocketAddr> {
    let bytes = path.as_bytes();
    if bytes.is_empty() || bytes.contains(&0) {
        return None;
    }
    // Too long a path is an error here, not a truncated address.
    SocketAddr::new(path).ok()
}

impl ChildPlan {
    /// Reads the kernel's variables (in the parent, before the fork) for a
    /// child named `process`.
    /// `code`: an address in the code the child will run, whose library is
    /// named in its panic report (looked up only under the kernel).
    pub(crate) fn capture(process: &str, code: Option<usize>) -> ChildPlan {
        let kernel_pid = std::env::var(KERNEL_PID_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|&p| p > 0);
        let parent_is_kernel = kernel_pid.is_none_or(|k| nix::unistd::getppid().as_raw() == k);
        let runner_fds = match std::env::var(RUNNER_FDS_ENV) {
            Ok(v) if parent_is_kernel => parse_fd_list(&v),
            _ => Vec::new(),
        };
        let socket = std::env::var_os(KERNEL_SOCKET_ENV).and_then(|p| socket_addr(&p));
        let library = code.filter(|_| socket.is_some()).and_then(library_of);
        ChildPlan {
            under_kernel: kernel_pid.is_some(),
            runner_fds,
            socket,
            process: process.to_owned(),
            library,
        }
    }

    /// Whether this process runs under the forja kernel (`FORJA_KERNEL_PID`
    /// is set), where every child dies with its parent.
    pub(crate) fn under_kernel(&self) -> bool {
        self.under_kernel
    }

    /// In the child: closes the runner's private fds.
    pub(crate) fn close_runner_fds(&self) {
        for &fd in &self.runner_fds {
            // Inherited fds this child must not keep (an error means it was
            // not open: nothing to do).
            let _ = nix::unistd::close(fd);
        }
    }

    /// In the child: asks to die with the parent — `SIGKILL` under the
    /// kernel, `SIGTERM` for a daemon elsewhere — and dies now if the parent
    /// is already gone.
    pub(crate) fn death_signal(&self, daemon: bool, parent_pid: i32) {
        use nix::sys::signal::Signal;
        let sig = if self.under_kernel {
            Signal::SIGKILL
        } else if daemon {
            Signal::SIGTERM
        } else {
            return;
        };
        #[cfg(target_os = "linux")]
        {
            let _ = nix::sys::prctl::set_pdeathsig(sig);
            if nix::unistd::getppid().as_raw() != parent_pid {
                // The parent died before prctl: behave as if it fired.
                let _ = nix::sys::signal::raise(sig);
                if self.under_kernel {
                    // SAFETY: `_exit` ends the process at once, running no
                    // handler (libc: nix has no `_exit`).
                    unsafe { libc::_exit(1) };
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (sig, parent_pid);
    }

    /// In the child: points fds 1 and 2 at the kernel (see the module docs).
    /// (The header lines are encoded on the stack when they fit: the child
    /// allocates nothing here.)
    pub(crate) fn attach_output(&self) {
        let Some(socket) = &self.socket else {
            return;
        };
        let _ = KERNEL_SOCKET.set(*socket);
        // Only this (the child's one) thread runs yet: the lock is free.
        if let Ok(mut library) = CODE_LIBRARY.try_lock() {
            *library = self.library;
        }
        // The streams were flushed before the fork and nothing has written
        // since; flush anyway, once, before they are replaced.
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let pid = crate::os::pid();
        for (target, name) in [(1, "stdout"), (2, "stderr")] {
            let Some(fd) = connect(socket) else {
                continue;
            };
            let header = AttachHeader {
                name,
                pid,
                process: &self.process,
            };
            // On the stack unless the name is very long.
            let mut small = [0u8; 512];
            let long;
            let line: &[u8] = match header.encode_into(&mut small) {
                Some(n) => &small[..n],
                None => {
                    long = Message::AttachOutput {
                        name: name.to_owned(),
                        pid,
                        process: self.process.clone(),
                    }
                    .to_line();
                    &long
                }
            };
            if !send_all(&fd, line) {
                continue; // dropping `fd` closes it
            }
            // A copy on the standard fd that is not close-on-exec, so a
            // program the child execs writes there too; ours closes on drop.
            let _ = if target == 1 {
                nix::unistd::dup2_stdout(&fd)
            } else {
                nix::unistd::dup2_stderr(&fd)
            };
        }
    }
}

/// In a forja child under the kernel: reports a panic to the kernel as a
/// typed message, on a connection of its own (called by the child's panic
/// hook; the kernel shows it in the cell). Whether it was sent: elsewhere,
/// or if the kernel cannot be reached, the hook writes it on stderr.
pub(crate) fn report_panic(info: &std::panic::PanicHookInfo<'_>, process: &str) -> bool {
    let Some(addr) = KERNEL_SOCKET.get() else {
        return false;
    };
    let origin = ProcessInfo::new(crate::os::pid(), process);
    let library = CODE_LIBRARY.try_lock().ok().and_then(|l| *l);
    let mut report = Message::panic_report(info, Some(origin));
    if let Message::PanicReport { library: l, .. } = &mut report {
        *l = library.map(str::to_owned);
    }
    let line = report.to_line();
    let Some(fd) = connect(addr) else {
        return false;
    };
    if !send_all(&fd, &line) {
        return false;
    }
    // Wait until the kernel has read the report and closed the connection:
    // the report is then queued before the runner's end of the cell, so it
    // shows in the cell that started this child.
    wait_for_close(&fd, CONNECT_PATIENCE);
    true
}

/// Half-closes `fd` and waits (at most `patience`) for the other end to close.
fn wait_for_close(fd: &OwnedFd, patience: std::time::Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Write);
    let give_up = std::time::Instant::now() + patience;
    let mut buf = [0u8; 64];
    loop {
        let left = give_up.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return,
            Ok(_) => match nix::unistd::read(fd, &mut buf) {
                Ok(0) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            },
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// A blocking connection to the kernel's socket, or `None`.
fn connect(addr: &SocketAddr) -> Option<OwnedFd> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket, sockopt};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .ok()?;
    let start = std::time::Instant::now();
    loop {
        match nix::sys::socket::connect(fd.as_raw_fd(), addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => continue,
            // The listener's backlog is full: the kernel is busy; try again.
            Err(Errno::EAGAIN) if start.elapsed() < CONNECT_PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(Errno::EINPROGRESS) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
                let wait = PollTimeout::try_from(CONNECT_PATIENCE).unwrap_or(PollTimeout::MAX);
                let connected = poll(&mut fds, wait) == Ok(1)
                    && nix::sys::socket::getsockopt(&fd, sockopt::SocketError) == Ok(0);
                if !connected {
                    return None;
                }
                break;
            }
            Err(_) => return None,
        }
    }
    // Blocking from here on.
    let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL).ok()?);
    fcntl(&fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)).ok()?;
    Some(fd)
}

/// Sends all of `bytes`; `false` if the connection failed.
fn send_all(fd: &OwnedFd, mut bytes: &[u8]) -> bool {
    use nix::sys::socket::{MsgFlags, send};
    while !bytes.is_empty() {
        match send(fd.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::parse_fd_list;

    #[test]
    fn fd_lists_are_parsed_defensively() {
        assert_eq!(parse_fd_list("10,11,12,13"), vec![10, 11, 12, 13]);
        assert_eq!(parse_fd_list(" 12, x,1,2,0,-4,12,,99999 "), vec![12, 99999]);
        assert!(parse_fd_list("").is_empty());
    }
}
