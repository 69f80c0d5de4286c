//! A pool worker: forking it, the parent's handle on it (its socket, its
//! tasks in flight, its pace), reaping it, and the loop it runs.

use super::protocol::{
    FROM_WORKER_INIT_FAILED, FROM_WORKER_READY, FROM_WORKER_RESULT, RESULT_ALL_OK, RESULT_FAILED,
    RESULT_MIXED,
};
use super::task::{TaskContext, TaskMessage, Trampoline};
use crate::connection::MessageFd;
use crate::error::{Error, Result};
use crate::fork::{ChildSetup, fork_child, panic_message};
use crate::process::next_identity;
use crate::registry::Registry;
use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tasks in flight per worker: at least one running and one waiting in its
/// socket...
const MIN_DEPTH: usize = 2;
/// ...and more while its tasks are quick (see [`Worker::depth`]), up to this.
const MAX_DEPTH: usize = 64;
/// How much work (by the worker's recent pace) may wait in a worker's
/// socket: enough to keep it busy between two visits of the parent, little
/// enough that other workers never wait long for work it holds.
const QUEUED_WORK: Duration = Duration::from_micros(500);

/// What each worker runs once, when it starts.
pub(super) type Initializer = Arc<dyn Fn() + Send + Sync + 'static>;

/// The pool's context (`()` when it has none): kept by the parent, so every
/// worker it forks, re-forked ones too, inherits it.
pub(super) type PoolContext = Arc<dyn Any + Send + Sync>;

/// The parent's handle on one worker.
pub(super) struct Worker {
    pub(super) pid: i32,
    pub(super) slot: usize,
    pub(super) name: Arc<str>,
    pub(super) io: MessageFd,
    /// Loader stamp when it was forked: it has the code of tasks submitted
    /// at or before it.
    pub(super) stamp: u64,
    pub(super) ready: bool,
    pub(super) outstanding: VecDeque<(u64, usize)>,
    /// Since when it has been busy without a result coming back.
    pub(super) busy_since: Instant,
    /// Its recent time per task (an average), in ns; 0 before the first.
    pace_ns: u64,
    /// Replaced by newer workers: gets no new tasks, stops when idle.
    pub(super) retiring: bool,
    pub(super) stop_sent: bool,
    /// Task messages sent to it (for `maxtasksperchild`).
    pub(super) tasks_sent: usize,
}

impl Worker {
    /// How many tasks it may have in flight: [`MIN_DEPTH`], or as many as
    /// take [`QUEUED_WORK`] at its recent pace (quick tasks: many per write
    /// and per read, few trips through the parent's loop).
    pub(super) fn depth(&self) -> usize {
        if self.pace_ns == 0 {
            return MIN_DEPTH;
        }
        let n = QUEUED_WORK.as_nanos() as u64 / self.pace_ns;
        (n as usize).clamp(MIN_DEPTH, MAX_DEPTH)
    }

    /// `n` results came back: updates its pace.
    pub(super) fn note_results(&mut self, n: usize) {
        let now = Instant::now();
        let per = (now.duration_since(self.busy_since).as_nanos() as u64 / n as u64).max(1);
        self.pace_ns = if self.pace_ns == 0 {
            per
        } else {
            (self.pace_ns * 3 + per) / 4
        };
        self.busy_since = now;
    }

    /// Forks a worker that will have the code of `stamp` and the pool's
    /// `context`; it runs `init` first, and exits after `max_tasks` task
    /// messages if set (`maxtasksperchild`).
    pub(super) fn spawn(
        init: Option<Initializer>,
        context: PoolContext,
        stamp: u64,
        max_tasks: Option<usize>,
    ) -> Result<Worker> {
        let reg = Registry::current()?;
        let (identity, name) = next_identity("ForkPoolWorker");
        let (ours, theirs) = crate::connection::socket_pair()
            .map_err(|e| Error::os("making a pool worker's socket", e))?;
        // Registered as a pipe end before the fork, so the worker closes it.
        let ours = MessageFd::new(ours, true)?;
        let slot = reg.reserve(&name, true, true)?;
        let setup = ChildSetup {
            // A task's panic goes back to the parent as an error, not as a
            // panic report.
            code: None,
            name: &name,
            identity: &identity,
            daemon: true,
            parent_pid: crate::os::pid(),
            parent_name: reg.header().name(),
        };
        // The worker closes its copies of every pipe end and of the other
        // workers' sockets (fork_child does it: they are registered ends).
        // The worker's body uses only its socket, `init` and `context`:
        // never the pool's state or its lock, which another thread of the
        // parent may hold at the fork.
        let result = fork_child(&setup, move || {
            worker_main(theirs, init, context, max_tasks)
        });
        match result {
            Ok(pid) => {
                reg.publish(slot, pid);
                Ok(Worker {
                    pid,
                    slot,
                    name: name.into(),
                    io: ours,
                    stamp,
                    ready: false,
                    outstanding: VecDeque::new(),
                    busy_since: Instant::now(),
                    pace_ns: 0,
                    retiring: false,
                    stop_sent: false,
                    tasks_sent: 0,
                })
            }
            Err(e) => {
                reg.unreserve(slot);
                Err(e)
            }
        }
    }
}

/// Reaps `pid` within `within`; its exit code, or `None` if it still runs.
pub(super) fn reap_soon(slot: usize, pid: i32, within: Duration) -> Option<i32> {
    let reg = Registry::current().ok()?;
    let deadline = crate::deadline::deadline(within);
    let mut nap = Duration::from_micros(50);
    loop {
        if let Some(code) = reg.try_reap(slot, pid) {
            reg.release(slot, pid);
            return Some(code);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            reg.handle_dropped(slot, pid);
            return None;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn take_last_panic() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

/// The worker's life: initializer, then tasks until told to stop (or, with
/// `max_tasks`, until it has run that many task messages).
fn worker_main(
    fd: OwnedFd,
    init: Option<Initializer>,
    context: PoolContext,
    max_tasks: Option<usize>,
) -> i32 {
    // Panics in tasks are reported to the parent, not printed here.
    std::panic::set_hook(Box::new(|info| {
        let msg = panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" (at {}:{}:{})", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
    }));
    let Ok(mut io) = MessageFd::new(fd, true) else {
        return 1;
    };
    if let Some(init) = init
        && let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init()))
    {
        let msg = take_last_panic().unwrap_or_else(|| panic_message(&*payload));
        std::mem::forget(payload);
        let at = io.begin_message();
        io.wbuf().push(FROM_WORKER_INIT_FAILED);
        io.wbuf()
            .extend_from_slice(format!("the initializer panicked: {msg}").as_bytes());
        io.end_message(at);
        let _ = io.flush();
        return 1;
    }
    if io.send_bytes(&[FROM_WORKER_READY]).is_err() {
        return 0;
    }
    let mut out = Vec::new();
    let mut done = 0usize;
    loop {
        if max_tasks.is_some_and(|m| done >= m) {
            return 0; // maxtasksperchild: the parent replaces us
        }
        let range = match io.recv_message(None, "the pool") {
            Ok(Some(r)) => r,
            _ => return 0, // the parent is gone or closed our socket
        };
        let Some(task) = TaskMessage::parse(io.payload(range.clone())) else {
            return 0; // a stop
        };
        let header = task.header;
        let span = crate::timeline::task_begin(
            u64::from_le_bytes(header[1..9].try_into().expect("8")),
            u32::from_le_bytes(header[9..13].try_into().expect("4")).into(),
        );
        out.clear();
        out.extend_from_slice(&header);
        out[0] = FROM_WORKER_RESULT;
        out.push(RESULT_ALL_OK);
        // SAFETY: the parent sent the address of a trampoline
        // (`run_shipped` or `run_inherited`) instantiated for the task whose
        // address follows, and this worker was forked after that code was
        // loaded (the pool checks the loader stamp). Code addresses are the
        // only addresses a task message carries.
        let run: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(task.trampoline) };
        let ctx = TaskContext {
            shipped: task.context,
            inherited: &*context,
        };
        // SAFETY: see above.
        match unsafe { run(task.task, ctx, task.args, &mut out, take_last_panic) } {
            Ok(true) => {}
            Ok(false) => out[13] = RESULT_MIXED,
            Err(msg) => {
                out.truncate(14);
                out[13] = RESULT_FAILED;
                out.extend_from_slice(msg.as_bytes());
            }
        }
        io.consume(range);
        crate::timeline::task_end(span);
        if io.send_bytes(&out).is_err() {
            return 0;
        }
        done += 1;
    }
}
