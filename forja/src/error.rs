//! The one error type of forja.
//!
//! Every message says what failed, in which process, and what to do about it.

use std::io;

use crate::messages::{Msg, term};

/// Shorthand for `Result<T, forja::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text of [`Error::Interrupted`]: short in the kernel, whose own error
/// for the cell follows it; with the way out elsewhere.
fn interrupted_message(pid: i32) -> String {
    // In the kernel: its side channel is named (read here, not through
    // `display`, which depends on this module).
    if std::env::var_os(crate::link::env::KERNEL_SOCKET).is_some() {
        return Msg::ErrInterruptedShort.get().to_owned();
    }
    Msg::ErrInterrupted.fill(&[("pid", &pid)])
}

/// Everything that can go wrong in forja.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{}", Msg::ErrOs.fill(&[("what", &term(what)), ("pid", pid), ("source", source)]))]
    Os {
        /// What forja was doing.
        what: &'static str,
        /// The process the call failed in.
        pid: i32,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// [`input`](crate::input()) could not read a line.
    #[error("{}", Msg::ErrInput.fill(&[("reason", reason), ("pid", pid)]))]
    Input {
        /// Why, and what to do instead.
        reason: String,
        /// The process that asked.
        pid: i32,
    },
    /// The display side channel to the kernel could not be used.
    #[error("{}", Msg::ErrDisplay.fill(&[("message", .0)]))]
    Display(String),
    // ---- processes, pipes and pools (process.rs, connection.rs, pool.rs) ----
    /// The cell was interrupted (the kernel's interrupt, or
    /// `registry::request_interrupt`): every forja call that could block or
    /// start work fails with this until the next cell starts.
    ///
    /// In the kernel it reads as one short line (the kernel's own
    /// "Interrupted" error under it says what happened to the cell);
    /// elsewhere it says how to lower the flag.
    #[error("{}", interrupted_message(*pid))]
    Interrupted {
        /// The process that was waiting.
        pid: i32,
    },
    /// Every writer of a pipe has closed it: nothing more can ever arrive.
    #[error("{}", Msg::ErrEof.fill(&[("what", &term(what)), ("pid", pid)]))]
    Eof {
        /// What was being read ("a pipe", "a pool worker").
        what: &'static str,
        /// The process that was reading.
        pid: i32,
    },
    /// Sending on a pipe whose receiving end is closed everywhere.
    #[error("{}", Msg::ErrBrokenPipe.fill(&[("pid", pid)]))]
    BrokenPipe {
        /// The process that tried to send.
        pid: i32,
    },
    /// `join`, `terminate`... on a process that was never started.
    #[error("{}", Msg::ErrProcessNotStarted.fill(&[("name", name), ("what", &term(what)), ("pid", pid)]))]
    ProcessNotStarted {
        /// The name of the `Process`.
        name: String,
        /// What was attempted ("join", "terminate"...).
        what: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// `start()` twice on one `Process`.
    #[error("{}", Msg::ErrAlreadyStarted.fill(&[("name", name), ("child", child)]))]
    AlreadyStarted {
        /// The name of the `Process`.
        name: String,
        /// The pid it got when it was started.
        child: i32,
    },
    /// Waiting for or signalling a process from a process that did not start it.
    #[error("{}", Msg::ErrNotOurChild.fill(&[("name", name), ("child", child), ("parent", parent), ("what", &term(what)), ("pid", pid)]))]
    NotOurChild {
        /// The name of the `Process`.
        name: String,
        /// Its pid.
        child: i32,
        /// The process that started it.
        parent: i32,
        /// What was attempted.
        what: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// The cap on live children was reached (fork-bomb protection).
    #[error("{}", Msg::ErrTooManyChildren.fill(&[("limit", limit), ("pid", pid)]))]
    TooManyChildren {
        /// The cap in force.
        limit: u32,
        /// The process that tried to start one more.
        pid: i32,
    },
    /// A pool task panicked; the worker survived.
    #[error("{}", Msg::ErrTaskPanicked.fill(&[("worker", worker), ("worker_pid", worker_pid), ("message", message)]))]
    TaskPanicked {
        /// The worker's name.
        worker: String,
        /// The worker's pid.
        worker_pid: i32,
        /// The panic message and where it happened.
        message: String,
    },
    /// A pool worker died while it had tasks.
    #[error("{}", Msg::ErrWorkerDied.fill(&[("worker", worker), ("worker_pid", worker_pid), ("how", how)]))]
    WorkerDied {
        /// The worker's name.
        worker: String,
        /// The worker's pid.
        worker_pid: i32,
        /// How it ended ("with exit code 1", "killed by signal 9").
        how: String,
    },
    /// The pool's initializer failed, so the pool cannot run tasks.
    #[error("{}", Msg::ErrPoolInitializerFailed.fill(&[("worker_pid", worker_pid), ("message", message)]))]
    PoolInitializerFailed {
        /// The worker where it failed.
        worker_pid: i32,
        /// What happened.
        message: String,
    },
    /// Using a pool after `close()` or `terminate()`.
    #[error("{}", Msg::ErrPoolClosed.fill(&[("state", &term(state)), ("pid", pid)]))]
    PoolClosed {
        /// "closed" or "terminated".
        state: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// `Pool::join` before `close()`/`terminate()`.
    #[error("{}", Msg::ErrPoolStillOpen.fill(&[("pid", pid)]))]
    PoolStillOpen {
        /// The calling process.
        pid: i32,
    },
    /// A message could not be encoded or decoded.
    #[error("{}", Msg::ErrMessage.fill(&[("action", &term(action)), ("what", &term(what)), ("pid", pid), ("message", message)]))]
    Message {
        /// "encode" or "decode".
        action: &'static str,
        /// Where ("a pipe", "a pool task").
        what: &'static str,
        /// The calling process.
        pid: i32,
        /// What the serializer said, and its likely cause.
        message: String,
    },
    /// A pipe end received a message header naming more bytes than its
    /// limit (`with_max_message_bytes`).
    #[error("{}", Msg::ErrMessageTooLarge.fill(&[("len", len), ("max", max), ("pid", pid)]))]
    MessageTooLarge {
        /// The length the header announced.
        len: u64,
        /// This end's limit.
        max: u64,
        /// The receiving process.
        pid: i32,
    },
    /// The process registry could not be made or found.
    #[error("{}", Msg::ErrRegistry.fill(&[("pid", pid), ("message", message)]))]
    Registry {
        /// The calling process.
        pid: i32,
        /// What is wrong.
        message: String,
    },
    /// A [`Future`](crate::Future) cancelled before a worker took it.
    #[error("{}", Msg::ErrCancelled.fill(&[("pid", pid)]))]
    Cancelled {
        /// The process that asked for the result.
        pid: i32,
    },
    /// A blocking call gave up at its deadline.
    #[error("{}", Msg::ErrTimeout.fill(&[("what", &term(what)), ("pid", pid)]))]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The process that waited.
        pid: i32,
    },
    /// `try_put`/`put_timeout` on a queue that stayed full.
    #[error("{}", Msg::ErrFull.fill(&[("pid", pid)]))]
    Full {
        /// The process that tried to put.
        pid: i32,
    },
    /// `try_get`/`get_timeout` on a queue that stayed empty.
    #[error("{}", Msg::ErrEmpty.fill(&[("pid", pid)]))]
    Empty {
        /// The process that tried to get.
        pid: i32,
    },
    /// A lock's holder died without releasing it. Nobody holds the lock now:
    /// every acquire gets this error until someone calls `recover()` on it.
    #[error("{}", Msg::ErrLockOwnerDied.fill(&[("what", &term(what)), ("pid", pid), ("by", by)]))]
    LockOwnerDied {
        /// Which lock.
        what: &'static str,
        /// The process (or thread) that died holding it.
        pid: i32,
        /// The process that got this error.
        by: i32,
    },
    /// A thread asked for a lock it already holds through a live guard.
    /// Forja's `Lock` and the locks of `Value`, `Array` and `Condition` are
    /// not re-entrant (Python's `Value` and `Condition` default to an RLock),
    /// so waiting would wait forever.
    #[error("{}", Msg::ErrWouldDeadlock.fill(&[("what", &term(what)), ("pid", pid), ("tid", tid), ("hint", &term(hint))]))]
    WouldDeadlock {
        /// Which lock.
        what: &'static str,
        /// The calling process.
        pid: i32,
        /// The calling thread (its kernel thread id; the pid for the main
        /// thread).
        tid: i32,
        /// What to write instead.
        hint: &'static str,
    },
    /// An untimed wait that can never end: the processes of `cycle` each wait
    /// for something another of them holds (or, `quiescent`, every process
    /// of the tree waits for something only another of them can give).
    /// Returned, in one process of the cycle, instead of hanging; see
    /// [`forja::deadlock`](crate::deadlock).
    #[error("{}", crate::waits::text::deadlock(*pid, &crate::waits::sentence(cycle), *quiescent))]
    Deadlock {
        /// The process that saw it (and got this error).
        pid: i32,
        /// Who waits for what, held by whom, starting at `pid`.
        cycle: Vec<crate::waits::WaitStep>,
        /// Whether it is a whole tree waiting rather than a ring of holders.
        quiescent: bool,
    },
    /// `recover()` on a lock whose owner did not die.
    #[error("{}", Msg::ErrNothingToRecover.fill(&[("what", &term(what)), ("pid", pid)]))]
    NothingToRecover {
        /// Which lock.
        what: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// Releasing a lock that is not held.
    #[error("{}", Msg::ErrNotHeld.fill(&[("what", &term(what)), ("pid", pid)]))]
    NotHeld {
        /// Which lock.
        what: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// Releasing a `BoundedSemaphore` above its initial value.
    #[error("{}", Msg::ErrSemaphoreOverReleased.fill(&[("bound", bound), ("pid", pid)]))]
    SemaphoreOverReleased {
        /// The initial (maximum) value.
        bound: u32,
        /// The calling process.
        pid: i32,
    },
    /// A barrier was broken by a timeout, `abort()` or `reset()`.
    #[error("{}", Msg::ErrBrokenBarrier.fill(&[("pid", pid)]))]
    BrokenBarrier {
        /// The process that saw it.
        pid: i32,
    },
    /// `task_done()` called more often than items were put.
    #[error("{}", Msg::ErrTooManyTaskDone.fill(&[("pid", pid)]))]
    TooManyTaskDone {
        /// The calling process.
        pid: i32,
    },
    /// `put` after `close()` on this process's queue handle.
    #[error("{}", Msg::ErrQueueClosed.fill(&[("pid", pid)]))]
    QueueClosed {
        /// The calling process.
        pid: i32,
    },
    /// A process died in the middle of streaming a large item through a queue.
    #[error("{}", Msg::ErrQueueCorrupted.fill(&[("pid", pid)]))]
    QueueCorrupted {
        /// The process that noticed.
        pid: i32,
    },
    // ---- named shared memory (shared_memory.rs) ----
    /// `SharedMemory::attach` (or `unlink`) with a name that does not exist.
    #[error("{}", Msg::ErrSharedMemoryNotFound.fill(&[("name", name), ("pid", pid)]))]
    SharedMemoryNotFound {
        /// The name asked for.
        name: String,
        /// The calling process.
        pid: i32,
    },
    /// `SharedMemory::create` with a name that is taken.
    #[error("{}", Msg::ErrSharedMemoryExists.fill(&[("name", name), ("pid", pid)]))]
    SharedMemoryExists {
        /// The name asked for.
        name: String,
        /// The calling process.
        pid: i32,
    },
    /// `SharedMemory::attach_with_size` found a different size.
    #[error("{}", Msg::ErrSharedMemorySize.fill(&[("name", name), ("expected", expected), ("actual", actual), ("pid", pid)]))]
    SharedMemorySize {
        /// The name asked for.
        name: String,
        /// The size asked for.
        expected: usize,
        /// Its real size.
        actual: usize,
        /// The calling process.
        pid: i32,
    },
    /// A pool that can run no more tasks: it could not start a worker.
    #[error("{}", Msg::ErrPoolBroken.fill(&[("message", message), ("pid", pid)]))]
    PoolBroken {
        /// What went wrong.
        message: String,
        /// The process that owns the pool.
        pid: i32,
    },
    /// An argument out of its allowed range.
    #[error("{}", Msg::ErrInvalidArgument.fill(&[("message", message), ("pid", pid)]))]
    InvalidArgument {
        /// What is wrong and what is allowed.
        message: String,
        /// The calling process.
        pid: i32,
    },
}

/// Debug as `#[derive(Debug)]` would write it, then, for an error a forja
/// call returned, which call and where (`Empty { pid: 7 } (Queue::get at
/// src/main.rs:12:5)`): what `fn main() -> forja::Result<()>` prints when a
/// `?` ends the program (Rust's `main` reports an `Err` with Debug). `{:#?}`
/// stays the derived form. See [`crate::located`].
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        macro_rules! s {
            ($name:literal $(, $field:ident)*) => {
                f.debug_struct($name)$(.field(stringify!($field), $field))*.finish()
            };
        }
        match self {
            Error::Os { what, pid, source } => s!("Os", what, pid, source),
            Error::Input { reason, pid } => s!("Input", reason, pid),
            Error::Display(v) => f.debug_tuple("Display").field(v).finish(),
            Error::Interrupted { pid } => s!("Interrupted", pid),
            Error::Eof { what, pid } => s!("Eof", what, pid),
            Error::BrokenPipe { pid } => s!("BrokenPipe", pid),
            Error::ProcessNotStarted { name, what, pid } => {
                s!("ProcessNotStarted", name, what, pid)
            }
            Error::AlreadyStarted { name, child } => s!("AlreadyStarted", name, child),
            Error::NotOurChild {
                name,
                child,
                parent,
                what,
                pid,
            } => s!("NotOurChild", name, child, parent, what, pid),
            Error::TooManyChildren { limit, pid } => s!("TooManyChildren", limit, pid),
            Error::TaskPanicked {
                worker,
                worker_pid,
                message,
            } => s!("TaskPanicked", worker, worker_pid, message),
            Error::WorkerDied {
                worker,
                worker_pid,
                how,
            } => s!("WorkerDied", worker, worker_pid, how),
            Error::PoolInitializerFailed {
                worker_pid,
                message,
            } => s!("PoolInitializerFailed", worker_pid, message),
            Error::PoolClosed { state, pid } => s!("PoolClosed", state, pid),
            Error::PoolStillOpen { pid } => s!("PoolStillOpen", pid),
            Error::Message {
                action,
                what,
                pid,
                message,
            } => s!("Message", action, what, pid, message),
            Error::MessageTooLarge { len, max, pid } => s!("MessageTooLarge", len, max, pid),
            Error::Registry { pid, message } => s!("Registry", pid, message),
            Error::Cancelled { pid } => s!("Cancelled", pid),
            Error::Timeout { what, pid } => s!("Timeout", what, pid),
            Error::Full { pid } => s!("Full", pid),
            Error::Empty { pid } => s!("Empty", pid),
            Error::LockOwnerDied { what, pid, by } => s!("LockOwnerDied", what, pid, by),
            Error::WouldDeadlock {
                what,
                pid,
                tid,
                hint,
            } => s!("WouldDeadlock", what, pid, tid, hint),
            Error::Deadlock {
                pid,
                cycle,
                quiescent,
            } => s!("Deadlock", pid, cycle, quiescent),
            Error::NothingToRecover { what, pid } => s!("NothingToRecover", what, pid),
            Error::NotHeld { what, pid } => s!("NotHeld", what, pid),
            Error::SemaphoreOverReleased { bound, pid } => s!("SemaphoreOverReleased", bound, pid),
            Error::BrokenBarrier { pid } => s!("BrokenBarrier", pid),
            Error::TooManyTaskDone { pid } => s!("TooManyTaskDone", pid),
            Error::QueueClosed { pid } => s!("QueueClosed", pid),
            Error::QueueCorrupted { pid } => s!("QueueCorrupted", pid),
            Error::SharedMemoryNotFound { name, pid } => s!("SharedMemoryNotFound", name, pid),
            Error::SharedMemoryExists { name, pid } => s!("SharedMemoryExists", name, pid),
            Error::SharedMemorySize {
                name,
                expected,
                actual,
                pid,
            } => s!("SharedMemorySize", name, expected, actual, pid),
            Error::PoolBroken { message, pid } => s!("PoolBroken", message, pid),
            Error::InvalidArgument { message, pid } => s!("InvalidArgument", message, pid),
        }?;
        if !f.alternate()
            && let Some((call, at)) = crate::located::site_of(self)
        {
            write!(
                f,
                " ({call} at {}:{}:{})",
                at.file(),
                at.line(),
                at.column()
            )?;
        }
        Ok(())
    }
}

impl Error {
    /// Wraps an OS error with what forja was doing and the current pid.
    pub fn os(what: &'static str, source: impl Into<io::Error>) -> Self {
        Error::Os {
            what,
            pid: crate::os::pid(),
            source: source.into(),
        }
    }
}
