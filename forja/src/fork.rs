//! Fork mechanics apart from the [`Process`](crate::Process) object (as
//! CPython's `popen_fork.py`): the fork itself, what the child does before it
//! runs its body (identity, death signal, signals, stdin, panic hook, which
//! inherited pipe ends to close), how a child ends — and what happens to a
//! process's own children when it ends — and pidfds.
//!
//! Used by `Process::start` and by the pool's workers.

use crate::error::{Error, Result};
use crate::identity::ProcessInfo;
use crate::kernel_child::ChildPlan;
use crate::registry::{self, Registry, SelfInfo};
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

/// What a child needs to set itself up right after the fork.
pub(crate) struct ChildSetup<'a> {
    pub name: &'a str,
    pub identity: &'a str,
    pub daemon: bool,
    pub parent_pid: i32,
    pub parent_name: String,
    /// An address in the code the child runs (see
    /// [`ChildPlan::capture`]): under the kernel, its library is named in
    /// the child's panic report.
    pub code: Option<usize>,
}

/// Forks. In the child: sets it up (own registry, death signal for daemons,
/// stdin from /dev/null, panic message with name and pid), runs `body`,
/// flushes and `_exit`s with its code — never returns. In the parent: drops
/// `body` (and so everything it captured) and returns the child's pid.
///
/// Pipe ends: the child closes its inherited copies of every forja pipe end
/// that the parent still holds once `body` is dropped — that is, every end
/// the closure did not take. So a child sees end of file when the parent
/// drops its end, and the parent when the child's end goes. To know which
/// ends the closure took, the child waits for one short message from the
/// parent (only when this process has pipe ends at all).
pub(crate) fn fork_child<B>(setup: &ChildSetup<'_>, body: B) -> Result<i32>
where
    B: FnOnce() -> i32,
{
    let reg = Registry::current()?;
    warn_if_threads(&reg);
    let before = reg.ends();
    let sync = if before.is_empty() {
        None
    } else {
        Some(
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| Error::os("starting a process (pipe2)", e))?,
        )
    };
    let plan = ChildPlan::capture(setup.name, setup.code);
    // Who the parent is, made here: the child records it without allocating.
    let parent = ProcessInfo::new(setup.parent_pid, setup.parent_name.as_str());
    let self_page = reg.self_page();
    let fork_record = crate::timeline::before_fork();
    crate::waits::record::before_fork();
    // Hold the stdout/stderr locks across the fork: another thread of this
    // process (the kernel's output flusher, or the user's) must not own them
    // in the child, where that thread does not exist. The forking thread owns
    // them on both sides and releases them right after.
    let mut out_lock = std::io::stdout().lock();
    let mut err_lock = std::io::stderr().lock();
    let _ = out_lock.flush();
    let _ = err_lock.flush();
    // SAFETY: the child only runs forja's setup and `body`, then _exits;
    // the locks another thread may hold at the fork (see above and
    // `warn_if_threads`) are the documented risk of forking with threads.
    let forked = unsafe { nix::unistd::fork() };
    drop(err_lock);
    drop(out_lock);
    let forked = forked.map_err(|e| Error::os("starting a process (fork)", e))?;
    let pid = match forked {
        nix::unistd::ForkResult::Parent { child } => child.as_raw(),
        nix::unistd::ForkResult::Child => 0,
    };
    if pid == 0 {
        child_setup(setup, &parent, &plan, self_page);
        if let Some((r, w)) = sync {
            drop(w);
            let kept_by_parent = read_fd_list(&r);
            drop(r);
            for fd in &kept_by_parent {
                // SAFETY: our inherited copy of an end the parent kept: this
                // process owns it and nothing else here uses it; dropping
                // the `OwnedFd` closes it.
                drop(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
            // The child holds pipe ends: it needs its registry now, to
            // record them (its own children must close those they do not take).
            if let Ok(mine) = Registry::current() {
                for fd in before.iter().filter(|fd| !kept_by_parent.contains(fd)) {
                    mine.register_end(*fd);
                }
            }
        }
        exit_child(body())
    }
    crate::timeline::process_started(fork_record, &ProcessInfo::new(pid, setup.name));
    crate::waits::record::process_started(pid, setup.name);
    if !plan.under_kernel() {
        finish_children_at_exit();
    }
    drop(body);
    if let Some((r, w)) = sync {
        drop(r);
        let after = reg.ends();
        let kept: Vec<i32> = before.into_iter().filter(|fd| after.contains(fd)).collect();
        write_fd_list(&w, &kept);
    }
    Ok(pid)
}

/// The warning shown (once per process) when it forks while it has threads
/// forja did not start, as Python 3.12's `DeprecationWarning`.
pub(crate) const THREADS_WARNING: &str =
    "This process is multi-threaded, use of fork() may lead to deadlocks in the child";

/// Before a fork: if this process has threads other than the calling one
/// and forja's own ([`crate::os::other_threads`]), says so on stderr, once
/// per process. The child gets only the forking thread; a lock another
/// thread held at that moment (the allocator's, stdout's, a `Mutex` of the
/// program's) stays locked in the child forever.
fn warn_if_threads(reg: &Registry) {
    let others = crate::os::other_threads();
    if others == 0 || !reg.first_fork_warning() {
        return;
    }
    let line = format!(
        "forja: warning (pid {}): {THREADS_WARNING}: {others} other thread(s) that forja did \
         not start are running; a lock one of them holds stays locked in the child. Start \
         threads after starting processes, or inside them. (shown once per process)\n",
        crate::os::pid()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn write_fd_list(fd: &OwnedFd, list: &[i32]) {
    let mut buf = Vec::with_capacity(4 + 4 * list.len());
    buf.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for f in list {
        buf.extend_from_slice(&f.to_le_bytes());
    }
    let mut off = 0;
    while off < buf.len() {
        match nix::unistd::write(fd, &buf[off..]) {
            Ok(0) => return,
            Ok(n) => off += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn read_fd_list(fd: &OwnedFd) -> Vec<i32> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if buf.len() < 4 {
        return Vec::new();
    }
    let count = u32::from_le_bytes(buf[..4].try_into().expect("4")) as usize;
    buf[4..]
        .chunks_exact(4)
        .take(count)
        .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
        .collect()
}

/// Right after the fork, in the child. Kept lean (no allocation, few system
/// calls): the child's registry is made only if it uses one (see the
/// registry's docs); here it only records who it is.
fn child_setup(setup: &ChildSetup<'_>, parent: &ProcessInfo, plan: &ChildPlan, self_page: usize) {
    // First, while they are still open (so no fd made below can reuse
    // their numbers), the runner's private fds go.
    plan.close_runner_fds();
    Registry::record_child(
        self_page,
        crate::os::pid(),
        &SelfInfo {
            name: setup.name,
            identity: setup.identity,
            daemon: setup.daemon,
            parent: Some(parent),
        },
    );
    plan.death_signal(setup.daemon, setup.parent_pid);
    // A crash in the child is the child's: do not run handlers inherited
    // from the parent (evcxr's runner prints a backtrace and aborts).
    // SIGTERM too: the kernel's runner handles it by stopping its whole
    // process group, which must not happen for a child's `terminate()`.
    use nix::sys::signal::{SigHandler, Signal};
    for sig in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTERM,
    ] {
        // SAFETY: restoring the default disposition installs no handler.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
    use nix::fcntl::OFlag;
    if let Ok(null) = nix::fcntl::open(
        c"/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    plan.attach_output();
    // A function item: boxing it allocates nothing.
    std::panic::set_hook(Box::new(child_panic_hook));
}

/// The panic hook of a forja child: under the kernel, a typed report of the
/// panic ([`link::Message::PanicReport`](crate::link::Message)), which the
/// kernel shows in the cell; elsewhere (or if the kernel cannot be reached)
/// the same line on stderr, in one write so other output never splits it.
fn child_panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    let name = registry::whoami().map_or_else(|| "?".to_owned(), |me| me.process.name().to_owned());
    let _ = std::io::stdout().flush();
    if crate::kernel_child::report_panic(info, &name) {
        return;
    }
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    let line = crate::link::child_panic_line(
        &ProcessInfo::new(crate::os::pid(), name),
        location.as_deref(),
        &panic_message(info.payload()),
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The text of a panic payload (see [`crate::link::panic_message`]).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    crate::link::panic_message(payload)
}

pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the pidfd_open system call; the fd returned is ours.
        // (libc: nix 0.30 has no pidfd_open.)
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: a fresh fd.
            return Some(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
    }
    let _ = pid;
    None
}

/// Ends a forja child with `code`: finishes its own children (as Python's
/// `_exit_function`, see [`finish_children`]), records its exit on the
/// timeline, flushes stdout and stderr and `_exit`s, so none of the parent's
/// exit handlers or destructors run in it.
pub(crate) fn exit_child(code: i32) -> ! {
    finish_children();
    crate::timeline::process_exiting(code);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: ends the child without running the parent's exit handlers.
    // (libc: nix has no `_exit`; std's `exit` would run them.)
    unsafe { libc::_exit(code) }
}

/// What a process does with its children when it ends normally, as Python's
/// `multiprocessing.util._exit_function`: daemons (and pool workers, which
/// are daemons in Python too) get SIGTERM, then every child is waited for.
/// A child that never ends makes this wait forever, as in Python; an
/// interrupt (under the kernel) stops the wait, and the kernel's death
/// signal then kills what is left.
pub(crate) fn finish_children() {
    let Some(reg) = Registry::existing() else {
        return; // this process never started a child
    };
    reg.reap_all();
    for c in reg.children() {
        if c.state == registry::ChildState::Running && (c.process.is_daemon() || c.pool_worker) {
            // Our own unreaped child: its pid is still its own.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.process.pid()),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    let mut nap = std::time::Duration::from_micros(200);
    loop {
        reg.reap_all();
        let waiting = reg
            .children()
            .iter()
            .any(|c| c.state != registry::ChildState::Reaped);
        if !waiting || registry::interrupted() {
            return;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(registry::POLL_INTERVAL);
    }
}

/// In a program's main process (not a forja child, not under the kernel):
/// runs [`finish_children`] when the program exits normally (`main`
/// returns, `std::process::exit`, `forja::exit`), registered with `atexit`
/// the first time the process starts a child.
fn finish_children_at_exit() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    if registry::whoami().is_some_and(|me| me.is_child) {
        return; // a forja child finishes its children in exit_child
    }
    extern "C" fn at_exit() {
        // Never unwind into libc.
        let _ = std::panic::catch_unwind(finish_children);
    }
    REGISTERED.call_once(|| {
        // SAFETY: registers a function that lives as long as the program
        // (forja is linked into it, not a library unloaded before exit:
        // under the kernel, where cells are libraries, this is not called).
        // (libc: nix has no atexit.)
        unsafe { libc::atexit(at_exit) };
    });
}
