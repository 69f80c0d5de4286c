//! What Linux says about processes: this process's and thread's ids (cached,
//! reset in every forked child), one reader of `/proc/PID/stat`, `poll`, and which
//! threads of this process forja did not start (forking with those is
//! risky), used by forja and by the kernel alike.
//!
//! # Threads forja owns
//!
//! A thread that forja (or the kernel's runner) starts is named
//! `forja/NAME` ([`spawn_owned`]): the name is the registration. Linux keeps
//! it in `/proc/self/task/TID/comm`, where every copy of forja in the process
//! (one per notebook cell) can read it, and it goes when the thread ends, so
//! there is no count to keep right. A program's main thread can never carry
//! that prefix (its name is the program's file name, which has no `/`).

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::cell::Cell;
use std::os::fd::BorrowedFd;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

static PID: AtomicI32 = AtomicI32::new(0);
static ATFORK: Once = Once::new();

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn after_fork_in_child() {
    PID.store(0, Ordering::Relaxed);
    // Only written if set: a write would copy the page in the child.
    let _ = TID.try_with(|t| {
        if t.get() != 0 {
            t.set(0)
        }
    });
}

fn register_atfork() {
    ATFORK.call_once(|| {
        // libc: nix has no pthread_atfork.
        // SAFETY: the handler only touches an atomic and a thread-local cell,
        // both async-signal-safe to write in a freshly forked child.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

/// This process's pid, cached (reset in the child after every `fork`):
/// cheaper than the `getpid` system call on the hot paths that check the
/// interrupt flag or stamp a lock's owner.
///
/// ```
/// assert_eq!(forja::os::pid(), std::process::id() as i32);
/// ```
#[inline]
pub fn pid() -> i32 {
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    register_atfork();
    let p = nix::unistd::getpid().as_raw();
    PID.store(p, Ordering::Relaxed);
    p
}

/// This thread's kernel thread id (same number space as pids), cached.
#[inline]
pub(crate) fn tid() -> u32 {
    TID.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        register_atfork();
        let v = nix::unistd::gettid().as_raw() as u32;
        t.set(v);
        v
    })
}

/// The pid of the process thread `tid` belongs to (`tid` itself if that
/// cannot be read, for instance because the thread ended).
pub(crate) fn pid_of_thread(tid: u32) -> u32 {
    if tid == self::tid() {
        return pid() as u32;
    }
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(tid)
}

/// A process as `/proc/PID/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// State letter (`R` running, `S` sleeping, `Z` zombie, ...).
    pub state: char,
}

impl ProcStat {
    /// Whether it has ended but is not reaped yet (`Z`, or `X` while it goes).
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses the text of a `/proc/PID/stat` file.
///
/// ```
/// let s = forja::os::parse_stat("42 (a (b) c) S 1 42 42 0").unwrap();
/// assert_eq!((s.pid, s.ppid, s.pgid, s.state), (42, 1, 42, 'S'));
/// ```
pub fn parse_stat(stat: &str) -> Option<ProcStat> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    // The command name is in parentheses and may contain spaces and `)`.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        ppid,
        pgid,
        state,
    })
}

/// Reads `/proc/PID/stat`; `None` if the process is gone or unreadable.
///
/// ```
/// let me = forja::os::proc_stat(forja::os::pid()).unwrap();
/// assert_eq!(me.state, 'R');
/// ```
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the machine that can be read.
pub fn processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        proc_stat(pid)
    })
    .collect()
}

/// `true` when the process (or thread) `id` no longer runs: it does not
/// exist, or it is a zombie waiting to be reaped.
pub(crate) fn is_dead(id: u32) -> bool {
    if id == 0 || id > i32::MAX as u32 {
        return false;
    }
    let pid = nix::unistd::Pid::from_raw(id as i32);
    if nix::sys::signal::kill(pid, None) == Err(nix::errno::Errno::ESRCH) {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{id}/stat")) {
        Ok(stat) => parse_stat(&stat).is_some_and(|s| s.is_zombie()),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Waits at most `slice` for `fd` to become readable (see [`poll_fds`]).
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, slice: Duration) -> std::io::Result<()> {
    poll_fds(&mut [PollFd::new(fd, PollFlags::POLLIN)], slice).map(drop)
}

/// `poll(2)` on `pfds` for at most `slice` (rounded up to a millisecond),
/// retried on `EINTR` as a wake-up; the number of fds with events.
pub(crate) fn poll_fds(pfds: &mut [PollFd<'_>], slice: Duration) -> std::io::Result<usize> {
    let ms = PollTimeout::try_from(slice.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
    if pfds.is_empty() {
        std::thread::sleep(slice);
        return Ok(0);
    }
    match nix::poll::poll(pfds, ms) {
        Ok(n) => Ok(n as usize),
        Err(Errno::EINTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The prefix of the name of every thread forja (or the kernel's runner)
/// starts; see the module docs.
pub const OWNED_THREAD_PREFIX: &str = "forja/";

/// Starts a thread owned by forja, named `forja/NAME` (Linux keeps 15 bytes
/// of a thread's name, so `name` should be at most 9 bytes), and returns
/// once the thread carries that name: a fork right after does not count it.
///
/// ```
/// let t = forja::os::spawn_owned("demo", forja::os::other_threads).unwrap();
/// // The test's main thread is another thread forja did not start.
/// assert!(t.join().unwrap() >= 1);
/// ```
pub fn spawn_owned<F, T>(name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (named_tx, named_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name(format!("{OWNED_THREAD_PREFIX}{name}"))
        .spawn(move || {
            // std names the thread before it runs this closure.
            let _ = named_tx.send(());
            f()
        })?;
    let _ = named_rx.recv();
    Ok(handle)
}

/// How many threads of this process are neither the calling thread nor
/// owned by forja ([`spawn_owned`]): the ones a forked child would not
/// have, though they may hold a lock (the allocator's, stdout's...) the
/// child then waits for forever. Reads `/proc/self/status` (and, only when
/// there are other threads, `/proc/self/task`); 0 if it cannot be read.
///
/// ```
/// assert_eq!(forja::os::other_threads(), 0); // a doctest runs on one thread
/// ```
pub fn other_threads() -> usize {
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(1);
    if threads <= 1 {
        return 0;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let me = tid().to_string();
    dir.flatten()
        .filter(|e| e.file_name().to_str() != Some(me.as_str()))
        .filter(|e| {
            // A thread that ended while we read is not counted.
            std::fs::read(e.path().join("comm"))
                .is_ok_and(|comm| !comm.starts_with(OWNED_THREAD_PREFIX.as_bytes()))
        })
        .count()
}
