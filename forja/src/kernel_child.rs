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
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

/// The kernel's pid (set by the kernel in the runner's environment).
pub(crate) const KERNEL_PID_ENV: &str = env::KERNEL_PID;
/// The kernel's side-channel socket.
pub(crate) const KERNEL_SOCKET_ENV: &str = env::KERNEL_SOCKET;
/// The runner's private fds.
pub(crate) const RUNNER_FDS_ENV: &str = env::RUNNER_FDS;

type SocketAddr = (libc::sockaddr_un, libc::socklen_t);

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

fn socket_addr(path: &OsStr) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    let bytes = path.as_bytes();
    // SAFETY: sockaddr_un is plain data; all zeroes is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return None;
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Some((addr, len as libc::socklen_t))
}

impl ChildPlan {
    /// Reads the kernel's variables (in the parent, before the fork) for a
    /// child named `process`.
    pub(crate) fn capture(process: &str) -> ChildPlan {
        let kernel_pid = std::env::var(KERNEL_PID_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|&p| p > 0);
        // SAFETY: no preconditions.
        let parent_is_kernel = kernel_pid.is_none_or(|k| unsafe { libc::getppid() } == k);
        let runner_fds = match std::env::var(RUNNER_FDS_ENV) {
            Ok(v) if parent_is_kernel => parse_fd_list(&v),
            _ => Vec::new(),
        };
        let socket = std::env::var_os(KERNEL_SOCKET_ENV).and_then(|p| socket_addr(&p));
        ChildPlan {
            under_kernel: kernel_pid.is_some(),
            runner_fds,
            socket,
            process: process.to_owned(),
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
            // SAFETY: closing inherited fds this child must not keep.
            unsafe { libc::close(fd) };
        }
    }

    /// In the child: asks to die with the parent — `SIGKILL` under the
    /// kernel, `SIGTERM` for a daemon elsewhere — and dies now if the parent
    /// is already gone.
    pub(crate) fn death_signal(&self, daemon: bool, parent_pid: i32) {
        let sig = if self.under_kernel {
            libc::SIGKILL
        } else if daemon {
            libc::SIGTERM
        } else {
            return;
        };
        #[cfg(target_os = "linux")]
        // SAFETY: plain prctl/getppid/raise/_exit calls.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, sig);
            if libc::getppid() != parent_pid {
                // The parent died before prctl: behave as if it fired.
                libc::raise(sig);
                if self.under_kernel {
                    libc::_exit(1);
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
        let (addr, len) = socket;
        let _ = KERNEL_SOCKET.set(*socket);
        // The streams were flushed before the fork and nothing has written
        // since; flush anyway, once, before they are replaced.
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let pid = crate::os::pid();
        for (target, name) in [(1, "stdout"), (2, "stderr")] {
            let Some(fd) = connect(addr, *len) else {
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
            if !send_all(fd, line) {
                // SAFETY: our own fd.
                unsafe { libc::close(fd) };
                continue;
            }
            // SAFETY: dup2 onto a standard fd (the copy is not close-on-exec,
            // so a program the child execs writes there too), then close ours.
            unsafe {
                libc::dup2(fd, target);
                libc::close(fd);
            }
        }
    }
}

/// In a forja child under the kernel: reports a panic to the kernel as a
/// typed message, on a connection of its own (called by the child's panic
/// hook; the kernel shows it in the cell). Whether it was sent: elsewhere,
/// or if the kernel cannot be reached, the hook writes it on stderr.
pub(crate) fn report_panic(info: &std::panic::PanicHookInfo<'_>, process: &str) -> bool {
    let Some((addr, len)) = KERNEL_SOCKET.get() else {
        return false;
    };
    let origin = ProcessInfo::new(crate::os::pid(), process);
    let line = Message::panic_report(info, Some(origin)).to_line();
    let Some(fd) = connect(addr, *len) else {
        return false;
    };
    let sent = send_all(fd, &line);
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    sent
}

/// A blocking connection to the kernel's socket, or `None`.
fn connect(addr: &libc::sockaddr_un, len: libc::socklen_t) -> Option<i32> {
    // SAFETY: socket/connect/fcntl/close on our own fd with a valid address.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        );
        if fd < 0 {
            return None;
        }
        let start = std::time::Instant::now();
        loop {
            let r = libc::connect(fd, (addr as *const libc::sockaddr_un).cast(), len);
            if r == 0 {
                break;
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                // The listener's backlog is full: the kernel is busy accepting.
                Some(libc::EAGAIN) if start.elapsed() < CONNECT_PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Some(libc::EINPROGRESS) => {
                    let mut pfd = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    let ms = CONNECT_PATIENCE.as_millis() as libc::c_int;
                    let mut err: libc::c_int = 0;
                    let mut elen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                    if libc::poll(&mut pfd, 1, ms) != 1
                        || libc::getsockopt(
                            fd,
                            libc::SOL_SOCKET,
                            libc::SO_ERROR,
                            (&mut err as *mut libc::c_int).cast(),
                            &mut elen,
                        ) != 0
                        || err != 0
                    {
                        libc::close(fd);
                        return None;
                    }
                    break;
                }
                _ => {
                    libc::close(fd);
                    return None;
                }
            }
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            libc::close(fd);
            return None;
        }
        Some(fd)
    }
}

fn send_all(fd: i32, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: sending from a live slice.
        let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return false;
        }
        bytes = &bytes[n as usize..];
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
