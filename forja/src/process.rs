//! [`Process`]: run a closure in a child process made with `fork`, like
//! Python's `multiprocessing.Process`; plus [`current_process`],
//! [`parent_process`], [`active_children`] and [`exit`] (and, from their
//! own module, [`cpu_count`] and [`process_cpu_count`]).
//!
//! The child is a copy of the parent at the moment of `start()`: it sees
//! every variable the closure captured (and everything else) as it was then.
//! It runs the closure under `catch_unwind`, flushes stdout and stderr and
//! ends with `_exit`: code 0, 1 after a panic (the panic is printed with the
//! process's name and pid), or the code given to [`exit`]. It never returns
//! into the caller's code. Its stdin is `/dev/null`.
//!
//! Reaping is lazy, as in Python: a child that ended stays a zombie until
//! [`join`](Process::join), [`is_alive`](Process::is_alive),
//! [`exitcode`](Process::exitcode), [`active_children`] or the `Process`
//! being dropped reaps it. Dropping never waits.
//!
//! **When a process ends** (the table is in forja's README): as in Python,
//! a program whose `main` returns (or that calls `std::process::exit` or
//! [`exit`]) first terminates its daemons (`.daemon(true)`, SIGTERM) and then
//! waits for its other children; a forja child does the same for its own
//! children before it `_exit`s. **Daemons** are also terminated (SIGTERM)
//! when their parent is killed, unlike Python: on Linux the child asks the
//! kernel for this with `prctl(PR_SET_PDEATHSIG)` right after the fork (and
//! checks it was not orphaned before that). Caveat of that mechanism:
//! "parent" means the *thread* that called `start()`, so start daemons from
//! a thread that lives as long as they should (the main thread, as notebook
//! cells do). A killed parent's non-daemon children keep running, as in
//! Python.
//!
//! **Inside the forja kernel** every child (daemon or not) is killed
//! (SIGKILL) when its parent dies, so no process outlives the kernel (the
//! runner, which runs the cells, does not wait for its children when it
//! ends: they die with it); it
//! also closes the runner's private fds and sends its stdout and stderr to
//! the kernel labelled with its name and pid. The same caveat applies: start
//! processes from the cell's own thread, not from a `std::thread` that ends
//! before them. Once the cell is interrupted, `start`, `join` and every other
//! forja call that could block or start work fail at once with
//! [`Error::Interrupted`]; `terminate`, `kill`, `is_alive` and dropping
//! still work, so clean-up code runs.
//!
//! ```
//! use forja::prelude::*;
//!
//! let p = Process::new(|| println!("hi from {}", current_process().name()));
//! p.start().unwrap();
//! p.join().unwrap();
//! assert_eq!(p.exitcode(), Some(0));
//! ```

use crate::error::{Error, Result};
use crate::fork::{self, ChildSetup, fork_child, pidfd_open};
pub use crate::process_info::{ProcessInfo, active_children, current_process, parent_process};

pub use crate::cpu::{cpu_count, process_cpu_count};
use crate::registry::{self, Registry, STATUS_UNKNOWN};
use std::fmt;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The closure, wrapped so that the child can call it through `&mut`
/// (calling a boxed `FnOnce` frees the box: a needless write to the heap,
/// which costs a copied page in a child that is about to exit).
type Target = Box<dyn FnMut() + Send + 'static>;

/// A function made for each target type `F`, so in the library where the
/// target's code is (a notebook cell's build, under the kernel): its address
/// tells the child's panic report which build's `src/lib.rs` it names.
fn code_marker<F>() -> usize {
    std::mem::size_of::<F>()
}

#[derive(Debug, Clone, Copy)]
enum State {
    New,
    Running { pid: i32, slot: usize, parent: i32 },
    Done { pid: i32, code: i32 },
}

struct Inner {
    target: Option<Target>,
    /// An address in the target's code ([`code_marker`] for its type).
    code: usize,
    state: State,
}

/// A child process that runs a closure (Python's `multiprocessing.Process`).
///
/// Build it with [`Process::new`], optionally [`with_name`](Self::with_name)
/// and [`daemon`](Self::daemon), then [`start`](Self::start) it. All other
/// methods take `&self`, so a `Vec<Process>` can be started and joined with
/// a plain `for p in &procs`.
///
/// ```
/// use forja::prelude::*;
///
/// let procs: Vec<Process> = (0..3)
///     .map(|i| Process::new(move || println!("worker {i}")))
///     .collect();
/// for p in &procs { p.start().unwrap(); }
/// for p in &procs { p.join().unwrap(); }
/// assert!(procs.iter().all(|p| p.exitcode() == Some(0)));
/// ```
pub struct Process {
    name: String,
    /// Python-style identity the child will have ("3", "1:2").
    identity: String,
    daemon: bool,
    inner: Mutex<Inner>,
    /// A pidfd of the child, opened by `start()`: readable once it ends.
    pub(crate) sentinel: OnceLock<OwnedFd>,
}

/// Fallback counter when the registry cannot be made (then names are only
/// unique per notebook cell).
static LOCAL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The next default identity and name, e.g. ("2", "Process-2") in the main
/// process or ("1:2", "Process-1:2") in Process-1.
pub(crate) fn next_identity(kind: &str) -> (String, String) {
    let (prefix, n) = match Registry::current() {
        Ok(reg) => (reg.identity(), reg.next_number()),
        Err(_) => (
            String::new(),
            LOCAL_COUNTER.fetch_add(1, Ordering::Relaxed) + 1,
        ),
    };
    let identity = if prefix.is_empty() {
        n.to_string()
    } else {
        format!("{prefix}:{n}")
    };
    let name = format!("{kind}-{identity}");
    (identity, name)
}

impl Process {
    /// A process that will run `target`. Nothing happens until
    /// [`start`](Self::start). Its default name is `Process-N`, as in Python.
    ///
    /// ```
    /// let p = forja::Process::new(|| {});
    /// assert!(p.name().starts_with("Process-"));
    /// assert_eq!(p.pid(), None);
    /// ```
    pub fn new<F>(target: F) -> Process
    where
        F: FnOnce() + Send + 'static,
    {
        let (identity, name) = next_identity("Process");
        Process {
            name,
            identity,
            daemon: false,
            inner: Mutex::new(Inner {
                code: code_marker::<F> as *const () as usize,
                target: Some({
                    let mut once = Some(target);
                    Box::new(move || {
                        if let Some(f) = once.take() {
                            f()
                        }
                    })
                }),
                state: State::New,
            }),
            sentinel: OnceLock::new(),
        }
    }

    /// Gives the process a name (shown in errors, panics and
    /// [`current_process`] in the child).
    ///
    /// ```
    /// let p = forja::Process::new(|| {}).with_name("lector");
    /// assert_eq!(p.name(), "lector");
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Process {
        self.name = name.into();
        self
    }

    /// Makes it a daemon: it is terminated when this process exits.
    ///
    /// ```
    /// let p = forja::Process::new(|| {}).daemon(true);
    /// assert!(p.is_daemon());
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Process {
        self.daemon = daemon;
        self
    }

    /// Its name.
    ///
    /// ```
    /// assert_eq!(forja::Process::new(|| {}).with_name("x").name(), "x");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a daemon.
    ///
    /// ```
    /// assert!(!forja::Process::new(|| {}).is_daemon());
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its pid once started (`None` before).
    ///
    /// ```
    /// let p = forja::Process::new(|| {});
    /// assert_eq!(p.pid(), None);
    /// p.start().unwrap();
    /// assert!(p.pid().unwrap() > 0);
    /// p.join().unwrap();
    /// ```
    pub fn pid(&self) -> Option<i32> {
        match self.lock().state {
            State::New => None,
            State::Running { pid, .. } | State::Done { pid, .. } => Some(pid),
        }
    }

    /// Forks the child, which runs the closure. Errors: started already
    /// ([`Error::AlreadyStarted`]), too many live children
    /// ([`Error::TooManyChildren`]), the cell was interrupted, or `fork`
    /// failed. After it returns, this process no longer holds the closure (so
    /// pipe ends moved into it are closed here).
    ///
    /// ```
    /// let p = forja::Process::new(|| {});
    /// p.start().unwrap();
    /// assert!(p.start().is_err()); // a Process runs once
    /// p.join().unwrap();
    /// ```
    #[track_caller]
    pub fn start(&self) -> Result<()> {
        crate::located::located(self.start_body(), "Process::start")
    }

    fn start_body(&self) -> Result<()> {
        registry::check_interrupt()?;
        let mut inner = self.lock();
        if let State::Running { pid, .. } | State::Done { pid, .. } = inner.state {
            return Err(Error::AlreadyStarted {
                name: self.name.clone(),
                child: pid,
            });
        }
        let reg = Registry::current()?;
        let Some(target) = inner.target.take() else {
            return Err(Error::AlreadyStarted {
                name: self.name.clone(),
                child: 0,
            });
        };
        let slot = match reg.reserve(&self.name, self.daemon, false) {
            Ok(s) => s,
            Err(e) => {
                inner.target = Some(target);
                return Err(e);
            }
        };
        let setup = ChildSetup {
            name: &self.name,
            identity: &self.identity,
            daemon: self.daemon,
            parent_pid: crate::os::pid(),
            parent_name: reg.header().name(),
            code: Some(inner.code),
        };
        match fork_child(&setup, || {
            let mut target = target;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut target));
            // The child is about to exit: no need to free it.
            std::mem::forget(target);
            match r {
                Ok(()) => 0,
                Err(payload) => {
                    // Dropping the payload could panic again: leak it.
                    std::mem::forget(payload);
                    1
                }
            }
        }) {
            Ok(pid) => {
                reg.publish(slot, pid);
                if let Some(fd) = pidfd_open(pid) {
                    let _ = self.sentinel.set(fd);
                }
                inner.state = State::Running {
                    pid,
                    slot,
                    parent: setup.parent_pid,
                };
                Ok(())
            }
            Err(e) => {
                reg.unreserve(slot);
                Err(e)
            }
        }
        // `target` was moved into the closure above, which fork_child has
        // dropped in this (the parent) process by now.
    }

    pub(crate) fn running(&self, what: &'static str) -> Result<Option<(i32, usize)>> {
        match self.lock().state {
            State::New => Err(Error::ProcessNotStarted {
                name: self.name.clone(),
                what,
                pid: crate::os::pid(),
            }),
            State::Done { .. } => Ok(None),
            State::Running { pid, slot, parent } => {
                if parent != crate::os::pid() {
                    return Err(Error::NotOurChild {
                        name: self.name.clone(),
                        child: pid,
                        parent,
                        what,
                        pid: crate::os::pid(),
                    });
                }
                Ok(Some((pid, slot)))
            }
        }
    }

    /// Reaps it if it has ended; its exit code then.
    pub(crate) fn poll_exit(&self) -> Option<i32> {
        let mut inner = self.lock();
        match inner.state {
            State::New => None,
            State::Done { code, .. } => Some(code),
            State::Running { pid, slot, parent } => {
                if parent != crate::os::pid() {
                    return None;
                }
                let reg = Registry::current().ok()?;
                let code = reg.try_reap(slot, pid)?;
                reg.release(slot, pid);
                inner.state = State::Done { pid, code };
                Some(code)
            }
        }
    }

    /// Waits for the child to end (and reaps it). Returns at once if it has
    /// already ended. Wakes every 50 ms to honour an interrupt.
    ///
    /// ```
    /// let p = forja::Process::new(|| {});
    /// assert!(p.join().is_err()); // not started yet
    /// p.start().unwrap();
    /// p.join().unwrap();
    /// p.join().unwrap(); // joining again is fine
    /// ```
    #[track_caller]
    pub fn join(&self) -> Result<()> {
        crate::located::located(self.join_body(), "Process::join")
    }

    fn join_body(&self) -> Result<()> {
        self.wait(None, "join").map(|_| ())
    }

    /// Waits at most `timeout` for the child to end: `Ok(true)` if it ended,
    /// `Ok(false)` if it is still running.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = forja::Process::new(|| std::thread::sleep(Duration::from_secs(5)));
    /// p.start().unwrap();
    /// assert!(!p.join_timeout(Duration::from_millis(10)).unwrap());
    /// p.kill().unwrap();
    /// assert!(p.join_timeout(Duration::from_secs(10)).unwrap());
    /// ```
    #[track_caller]
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        crate::located::located(self.join_timeout_body(timeout), "Process::join_timeout")
    }

    fn join_timeout_body(&self, timeout: Duration) -> Result<bool> {
        self.wait(crate::deadline::deadline(timeout), "join")
    }

    fn wait(&self, deadline: Option<Instant>, what: &'static str) -> Result<bool> {
        registry::check_interrupt()?;
        if self.running(what)?.is_none() {
            return Ok(true);
        }
        // The pidfd becomes readable when the child ends (at once if it has
        // ended), so with one there is no need to ask waitpid first.
        let pidfd = self.sentinel.get();
        if pidfd.is_none() && self.poll_exit().is_some() {
            return Ok(true);
        }
        let mut nap = Duration::from_micros(200);
        let mut recorded = None;
        loop {
            registry::check_interrupt()?;
            let mut slice = crate::sync::futex::UNTIMED_SLICE;
            if let Some(d) = deadline {
                slice = registry::POLL_INTERVAL.min(d.saturating_duration_since(Instant::now()));
            }
            let rec = recorded.get_or_insert_with(|| {
                let pid = self.pid().unwrap_or(0);
                crate::waits::record::begin(
                    crate::waits::record::Site::new(0, crate::waits::Kind::Process),
                    crate::waits::record::Holder::Process(pid),
                    deadline.is_some(),
                )
            });
            match &pidfd {
                Some(fd) => crate::os::poll_readable(fd.as_fd(), slice)
                    .map_err(|e| Error::os("waiting for a process (poll)", e))?,
                None => {
                    std::thread::sleep(nap.min(slice));
                    nap = (nap * 2).min(registry::POLL_INTERVAL);
                }
            }
            if self.poll_exit().is_some() {
                // The kernel raises the flag before it stops the cell's
                // processes, so a child that ended during an interrupt may
                // have been stopped by it: the wait was cut short, not
                // satisfied, and the cell must not go on as if it had been.
                registry::check_interrupt()?;
                return Ok(true);
            }
            if let Some(d) = deadline
                && Instant::now() >= d
            {
                return Ok(false);
            }
            rec.check()?;
        }
    }

    /// Whether it has started and not yet ended (reaps it if it ended).
    ///
    /// ```
    /// let p = forja::Process::new(|| {});
    /// assert!(!p.is_alive());
    /// p.start().unwrap();
    /// p.join().unwrap();
    /// assert!(!p.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        matches!(self.lock().state, State::Running { parent, .. } if parent == crate::os::pid())
            && self.poll_exit().is_none()
    }

    /// `None` while it runs (or before it starts); then its exit code: the
    /// code it exited with, or minus the signal that killed it (`-9` for
    /// SIGKILL), as in Python. Reaps it if it ended.
    ///
    /// ```
    /// let p = forja::Process::new(|| forja::exit(3));
    /// p.start().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(3));
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.poll_exit().filter(|&c| c != STATUS_UNKNOWN)
    }

    /// A fd that becomes readable when the child ends (Python's
    /// `Process.sentinel`): a pidfd opened by `start()`, for your own event
    /// loop ([`forja::wait`](crate::wait) takes the `Process` itself). `Err`
    /// before `start()` or without pidfds (Linux < 5.3).
    ///
    /// ```
    /// let p = forja::Process::new(|| {});
    /// assert!(p.sentinel().is_err()); // not started
    /// p.start().unwrap();
    /// p.join().unwrap();
    /// let mut pfd = [nix::poll::PollFd::new(p.sentinel().unwrap(), nix::poll::PollFlags::POLLIN)];
    /// assert_eq!(nix::poll::poll(&mut pfd, 0u16).unwrap(), 1); // readable: it ended
    /// ```
    #[track_caller]
    pub fn sentinel(&self) -> Result<BorrowedFd<'_>> {
        crate::located::located(self.sentinel_body(), "Process::sentinel")
    }

    fn sentinel_body(&self) -> Result<BorrowedFd<'_>> {
        self.running("sentinel")?;
        let e = || Error::os("Process::sentinel", std::io::Error::other("no pidfd_open"));
        Ok(self.sentinel.get().ok_or_else(e)?.as_fd())
    }

    fn signal(&self, sig: i32, what: &'static str) -> Result<()> {
        let Some((pid, _)) = self.running(what)? else {
            return Ok(());
        };
        if self.poll_exit().is_some() {
            return Ok(()); // already ended: nothing to do, as in Python
        }
        // Our own, unreaped child: its pid cannot have been reused.
        let signal = nix::sys::signal::Signal::try_from(sig)
            .map_err(|e| Error::os("sending a signal to a child", std::io::Error::from(e)))?;
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::os(
                "sending a signal to a child",
                std::io::Error::from(e),
            )),
        }
    }

    /// Asks it to stop: sends SIGTERM (its exit code becomes `-15`). Does not
    /// wait: `join()` afterwards. Does nothing if it already ended.
    ///
    /// ```
    /// let p = forja::Process::new(|| loop { std::thread::sleep(std::time::Duration::from_secs(1)) });
    /// p.start().unwrap();
    /// p.terminate().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(-15));
    /// ```
    #[track_caller]
    pub fn terminate(&self) -> Result<()> {
        crate::located::located(self.terminate_body(), "Process::terminate")
    }

    fn terminate_body(&self) -> Result<()> {
        self.signal(libc::SIGTERM, "terminate")
    }

    /// Kills it: sends SIGKILL, which cannot be caught (exit code `-9`).
    ///
    /// ```
    /// let p = forja::Process::new(|| loop { std::thread::sleep(std::time::Duration::from_secs(1)) });
    /// p.start().unwrap();
    /// p.kill().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(-9));
    /// ```
    #[track_caller]
    pub fn kill(&self) -> Result<()> {
        crate::located::located(self.kill_body(), "Process::kill")
    }

    fn kill_body(&self) -> Result<()> {
        self.signal(libc::SIGKILL, "kill")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let state = self.lock().state;
        if let State::Running { pid, slot, parent } = state
            && parent == crate::os::pid()
            && let Ok(reg) = Registry::current()
        {
            if reg.try_reap(slot, pid).is_some() {
                reg.release(slot, pid);
            } else {
                // Still running: never wait here. Whoever reaps it later
                // (active_children, the next start) frees its slot.
                reg.handle_dropped(slot, pid);
            }
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock().state;
        let mut d = f.debug_struct("Process");
        d.field("name", &self.name).field("daemon", &self.daemon);
        match state {
            State::New => d.field("state", &"initial"),
            State::Running { pid, .. } => d.field("pid", &pid).field("state", &"started"),
            State::Done { pid, code } => d.field("pid", &pid).field("exitcode", &code),
        };
        d.finish()
    }
}

impl fmt::Display for Process {
    /// Like Python's repr: `<Process name='Process-1' pid=42 started>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock().state;
        write!(f, "<Process name='{}'", self.name)?;
        match state {
            State::New => write!(f, " initial")?,
            State::Running { pid, .. } => write!(f, " pid={pid} started")?,
            State::Done { pid, code } => write!(f, " pid={pid} exitcode={code}")?,
        }
        if self.daemon {
            write!(f, " daemon")?;
        }
        write!(f, ">")
    }
}

/// Ends the calling process with `code` (like Python's `sys.exit(code)` in
/// a child). In a process started by forja it flushes stdout and stderr and
/// ends at once (`_exit`): destructors do not run. Elsewhere (the main
/// program) it is `std::process::exit`.
///
/// ```
/// let p = forja::Process::new(|| forja::exit(7));
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(7));
/// ```
pub fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    if registry::whoami().is_some_and(|me| me.is_child) {
        fork::exit_child(code)
    }
    std::process::exit(code)
}
