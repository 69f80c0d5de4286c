//! The one error type of forja.
//!
//! Every message says what failed, in which process, and what to do about it.

use std::io;

/// Shorthand for `Result<T, forja::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text of [`Error::Interrupted`]: short in the kernel, whose own error
/// for the cell follows it; with the way out elsewhere.
fn interrupted_message(pid: i32) -> String {
    // In the kernel: its side channel is named (read here, not through
    // `display`, which depends on this module).
    if std::env::var_os(crate::link::env::KERNEL_SOCKET).is_some() {
        return crate::lang::pick("interrumpido", "interrupted").to_owned();
    }
    format!(
        "interrupted by the kernel: the cell was stopped (seen in process {pid}), so every \
         forja call in this cell now fails at once and the processes it started are being \
         stopped; variables from earlier cells are kept: fix the cell and run it again \
         (outside the kernel, forja::registry::clear_interrupt() lowers the flag)"
    )
}

/// Everything that can go wrong in forja.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{what} failed in process {pid}: {source}")]
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
    #[error("could not read input in process {pid}: {reason}")]
    Input {
        /// Why, and what to do instead.
        reason: String,
        /// The process that asked.
        pid: i32,
    },
    /// The display side channel to the kernel could not be used.
    #[error("could not send a display to the kernel: {0}")]
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
    #[error(
        "end of file on {what} in process {pid}: every process that could send on the other \
         end has closed it or exited, so nothing more will arrive; stop receiving here (if a \
         message was expected, check whether the sender crashed)"
    )]
    Eof {
        /// What was being read ("a pipe", "a pool worker").
        what: &'static str,
        /// The process that was reading.
        pid: i32,
    },
    /// Sending on a pipe whose receiving end is closed everywhere.
    #[error(
        "process {pid} sent on a pipe whose other end is closed in every process (the \
         receiver exited or dropped it): nobody can read this message"
    )]
    BrokenPipe {
        /// The process that tried to send.
        pid: i32,
    },
    /// `join`, `terminate`... on a process that was never started.
    #[error(
        "process {name} has not been started (in process {pid}): call start() before \
         {what}()"
    )]
    ProcessNotStarted {
        /// The name of the `Process`.
        name: String,
        /// What was attempted ("join", "terminate"...).
        what: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// `start()` twice on one `Process`.
    #[error(
        "process {name} was already started (as pid {child}); a Process runs only once: \
         make a new Process to run the function again"
    )]
    AlreadyStarted {
        /// The name of the `Process`.
        name: String,
        /// The pid it got when it was started.
        child: i32,
    },
    /// Waiting for or signalling a process from a process that did not start it.
    #[error(
        "process {name} (pid {child}) was started by process {parent}, so only that \
         process can {what} it, not process {pid}"
    )]
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
    #[error(
        "process {pid} already has {limit} live child processes, the limit: join() the \
         ones that finished (or stop ones you no longer need) before starting more. The \
         limit protects the machine from a fork bomb (an endless loop of start()); to raise \
         it call forja::registry::set_max_children(n) in that process, or set the \
         FORJA_MAX_CHILDREN environment variable before the process first uses forja \
         (at most 1024; each child process has its own limit for its own children)"
    )]
    TooManyChildren {
        /// The cap in force.
        limit: u32,
        /// The process that tried to start one more.
        pid: i32,
    },
    /// A pool task panicked; the worker survived.
    #[error("a task panicked in pool worker {worker} (pid {worker_pid}): {message}")]
    TaskPanicked {
        /// The worker's name.
        worker: String,
        /// The worker's pid.
        worker_pid: i32,
        /// The panic message and where it happened.
        message: String,
    },
    /// A pool worker died while it had tasks.
    #[error(
        "pool worker {worker} (pid {worker_pid}) died {how} while running a task, so that \
         task's result is lost; the pool started a replacement worker. Was it killed, or \
         did the task abort or call exit?"
    )]
    WorkerDied {
        /// The worker's name.
        worker: String,
        /// The worker's pid.
        worker_pid: i32,
        /// How it ended ("with exit code 1", "killed by signal 9").
        how: String,
    },
    /// The pool's initializer failed, so the pool cannot run tasks.
    #[error(
        "the pool's initializer failed in worker pid {worker_pid}: {message}; fix the \
         initializer and make a new Pool"
    )]
    PoolInitializerFailed {
        /// The worker where it failed.
        worker_pid: i32,
        /// What happened.
        message: String,
    },
    /// Using a pool after `close()` or `terminate()`.
    #[error("the pool is {state} (process {pid}): it takes no more tasks; make a new Pool")]
    PoolClosed {
        /// "closed" or "terminated".
        state: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// `Pool::join` before `close()`/`terminate()`.
    #[error(
        "Pool::join() in process {pid} would wait forever: call close() (or terminate()) \
         first, then join()"
    )]
    PoolStillOpen {
        /// The calling process.
        pid: i32,
    },
    /// A message could not be encoded or decoded.
    #[error("could not {action} a message for {what} in process {pid}: {message}")]
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
    #[error(
        "process {pid} received a message of {len} bytes on a pipe whose limit is {max} \
         bytes, so it was refused instead of allocating that much: either the sender sent \
         a larger message than this end accepts (raise the limit with \
         .with_max_message_bytes(n) on the receiving end), or something other than forja \
         wrote to the pipe. This end cannot receive any more messages"
    )]
    MessageTooLarge {
        /// The length the header announced.
        len: u64,
        /// This end's limit.
        max: u64,
        /// The receiving process.
        pid: i32,
    },
    /// The process registry could not be made or found.
    #[error("the forja process registry is unusable in process {pid}: {message}")]
    Registry {
        /// The calling process.
        pid: i32,
        /// What is wrong.
        message: String,
    },
    /// A [`Future`](crate::Future) cancelled before a worker took it.
    #[error(
        "the task was cancelled (process {pid}): Future::cancel() took it before a worker \
         started it; submit it again to run it"
    )]
    Cancelled {
        /// The process that asked for the result.
        pid: i32,
    },
    /// A blocking call gave up at its deadline.
    #[error(
        "{what} timed out in process {pid}: nothing happened before the deadline; \
         wait longer, or check that the other processes are still running"
    )]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The process that waited.
        pid: i32,
    },
    /// `try_put`/`put_timeout` on a queue that stayed full.
    #[error(
        "the queue is full (process {pid}): its maxsize was reached; use put() to wait \
         for room, or have a consumer get() items"
    )]
    Full {
        /// The process that tried to put.
        pid: i32,
    },
    /// `try_get`/`get_timeout` on a queue that stayed empty.
    #[error(
        "the queue is empty (process {pid}): there was nothing to take; use get() to wait \
         for an item, or check that a producer is running"
    )]
    Empty {
        /// The process that tried to get.
        pid: i32,
    },
    /// A lock's holder died without releasing it. Nobody holds the lock now:
    /// every acquire gets this error until someone calls `recover()` on it.
    #[error(
        "process or thread {pid} died while holding {what}, so the data it protects may be \
         half-updated (seen by process {by}). Nobody holds the lock now, and every acquire \
         gets this error until someone calls .recover() on it: that gives the guard, so \
         check or repair the data, then drop the guard to make the lock usable again"
    )]
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
    #[error(
        "thread {tid} of process {pid} already holds {what} through a guard it has not \
         dropped, and that lock is not re-entrant, so waiting for it would wait forever: \
         {hint}"
    )]
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
    /// `recover()` on a lock whose owner did not die.
    #[error(
        "process {pid} called recover() on {what}, but no holder of it died without \
         releasing it (or someone recovered it already); use acquire() instead"
    )]
    NothingToRecover {
        /// Which lock.
        what: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// Releasing a lock that is not held.
    #[error(
        "process {pid} released {what}, which is not held: each release must pair with \
         one acquire"
    )]
    NotHeld {
        /// Which lock.
        what: &'static str,
        /// The calling process.
        pid: i32,
    },
    /// Releasing a `BoundedSemaphore` above its initial value.
    #[error(
        "process {pid} released a BoundedSemaphore more times than it was acquired (its \
         value would exceed the initial {bound}): pair each release with one acquire"
    )]
    SemaphoreOverReleased {
        /// The initial (maximum) value.
        bound: u32,
        /// The calling process.
        pid: i32,
    },
    /// A barrier was broken by a timeout, `abort()` or `reset()`.
    #[error(
        "the barrier is broken (seen in process {pid}): a waiter timed out, or abort() or \
         reset() was called; call reset() before using it again"
    )]
    BrokenBarrier {
        /// The process that saw it.
        pid: i32,
    },
    /// `task_done()` called more often than items were put.
    #[error(
        "task_done() was called more times than items were put (process {pid}): call it \
         exactly once for each item taken with get()"
    )]
    TooManyTaskDone {
        /// The calling process.
        pid: i32,
    },
    /// `put` after `close()` on this process's queue handle.
    #[error(
        "process {pid} closed this queue and then tried to put on it: close() means this \
         process puts no more items; put before closing"
    )]
    QueueClosed {
        /// The calling process.
        pid: i32,
    },
    /// A process died in the middle of streaming a large item through a queue.
    #[error(
        "a process died while moving a large item through the queue (seen in process \
         {pid}); the queue's contents can no longer be trusted: make a new queue"
    )]
    QueueCorrupted {
        /// The process that noticed.
        pid: i32,
    },
    // ---- named shared memory (shared_memory.rs) ----
    /// `SharedMemory::attach` (or `unlink`) with a name that does not exist.
    #[error(
        "there is no shared memory named '{name}' for this user (process {pid}): create it \
         first with SharedMemory::create, check the spelling, or its creator already \
         unlinked it (a creator's handle unlinks the name when dropped)"
    )]
    SharedMemoryNotFound {
        /// The name asked for.
        name: String,
        /// The calling process.
        pid: i32,
    },
    /// `SharedMemory::create` with a name that is taken.
    #[error(
        "shared memory named '{name}' already exists for this user (process {pid}): attach \
         to it with SharedMemory::attach, pick another name, or unlink the old one first"
    )]
    SharedMemoryExists {
        /// The name asked for.
        name: String,
        /// The calling process.
        pid: i32,
    },
    /// `SharedMemory::attach_with_size` found a different size.
    #[error(
        "shared memory '{name}' holds {actual} bytes, not the {expected} asked for (process \
         {pid}): attach with SharedMemory::attach and read .size(), or recreate it"
    )]
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
    #[error("the pool in process {pid} cannot run tasks: {message}; make a new Pool")]
    PoolBroken {
        /// What went wrong.
        message: String,
        /// The process that owns the pool.
        pid: i32,
    },
    /// An argument out of its allowed range.
    #[error("invalid argument in process {pid}: {message}")]
    InvalidArgument {
        /// What is wrong and what is allowed.
        message: String,
        /// The calling process.
        pid: i32,
    },
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
