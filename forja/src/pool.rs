//! [`Pool`]: a fixed set of worker processes that run many small tasks, like
//! Python's `multiprocessing.Pool`.
//!
//! # How tasks reach the workers
//!
//! Workers are forked once and persist; tasks do not fork. A task is a
//! function or closure plus its argument. Arguments and results travel over
//! one socket pair per worker, encoded with serde (`postcard`). The function
//! itself cannot be encoded, but a worker is a copy of the parent, so it
//! already has the function's *code* — as long as that code was loaded
//! before the worker was forked. So a task function must be `Copy + 'static`
//! (a `fn` item, or a closure that captures only `Copy` values such as
//! numbers): its few bytes are copied to the worker together with the
//! address of a small generic function that runs it.
//!
//! Inside the forja kernel each cell is a library loaded after the previous
//! ones, so a closure written in a later cell than the pool does not exist in
//! the pool's workers. The pool notices: it records how many shared objects
//! the dynamic loader had loaded (glibc's `dlpi_adds`) when it forked its
//! workers, and when a task is submitted after more were loaded, it
//! **re-forks its workers** (once: the new ones serve every later task until
//! another library is loaded). Old workers finish what they were running and
//! then stop. In an ordinary program nothing is ever loaded later, so
//! workers are forked exactly once. [`Pool::worker_starts`] counts forks, so
//! the cost can be measured.
//!
//! A panicking task gives an `Err` with the panic's message; the worker
//! survives. A worker that dies (killed, or a task that aborts) turns the
//! tasks it held into [`Error::WorkerDied`] and is replaced; nothing hangs.
//!
//! Workers are daemons: they are terminated with their parent (see
//! [`Process`](crate::Process) for the mechanism and its caveat).
//!
//! ```
//! use forja::prelude::*;
//!
//! fn square(x: u64) -> u64 { x * x }
//!
//! let pool = Pool::new(2).unwrap();
//! assert_eq!(pool.map(square, 1..=4).unwrap(), vec![1, 4, 9, 16]);
//! let offset = 10;
//! assert_eq!(pool.map(move |x: i32| x + offset, vec![1, 2]).unwrap(), vec![11, 12]);
//! ```

use crate::codec;
use crate::connection::FrameIo;
use crate::error::{Error, Result};
use crate::process::{ChildSetup, fork_child, next_identity, panic_message};
use crate::registry::{self, Registry};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
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

// Frame kinds, parent -> worker.
const TO_WORKER_TASK: u8 = 1;
const TO_WORKER_STOP: u8 = 2;
// Frame kinds, worker -> parent.
const FROM_WORKER_READY: u8 = 1;
const FROM_WORKER_RESULT: u8 = 2;
const FROM_WORKER_INIT_FAILED: u8 = 3;
// How a result frame's body is encoded (byte 13).
/// `Vec<R>`: every task of the chunk returned.
const RESULT_ALL_OK: u8 = 0;
/// A message: the chunk could not run.
const RESULT_FAILED: u8 = 1;
/// `Vec<Result<R, String>>`: some tasks panicked.
const RESULT_MIXED: u8 = 2;

fn getpid() -> i32 {
    // Safety: no preconditions.
    unsafe { libc::getpid() }
}

/// How many shared objects the dynamic loader has loaded so far (never
/// decreases). Code loaded after a worker was forked is missing there.
fn loaded_objects_stamp() -> u64 {
    struct Acc {
        adds: Option<u64>,
        count: u64,
    }
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // Safety: data is our Acc; info is valid for `size` bytes.
        unsafe {
            let acc = &mut *(data as *mut Acc);
            let need = std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs);
            if size >= need {
                acc.adds = Some((*info).dlpi_adds);
                return 1; // the counter is the same in every entry: stop
            }
            acc.count += 1;
            0
        }
    }
    let mut acc = Acc {
        adds: None,
        count: 0,
    };
    // Safety: the callback only touches `acc`.
    unsafe { libc::dl_iterate_phdr(Some(cb), &mut acc as *mut Acc as *mut libc::c_void) };
    acc.adds.unwrap_or(acc.count)
}

/// Runs one chunk of tasks in a worker: decodes the arguments, calls the
/// task on each under `catch_unwind`, appends the encoded results to `out`:
/// `Vec<R>` when every task returned (`Ok(true)`, the usual case: no
/// per-item tag), `Vec<Result<R, String>>` when some panicked (`Ok(false)`).
type Trampoline =
    unsafe fn(*const u8, &[u8], &mut Vec<u8>, fn() -> Option<String>) -> Result<bool, String>;

/// # Safety
/// `closure` points at the bytes of a valid `F` (copied from the parent).
unsafe fn run_chunk<F, A, R>(
    closure: *const u8,
    args: &[u8],
    out: &mut Vec<u8>,
    last_panic: fn() -> Option<String>,
) -> Result<bool, String>
where
    F: Fn(A) -> R + Copy,
    A: DeserializeOwned,
    R: Serialize,
{
    // Safety: F is Copy, so a bitwise copy of its bytes is a valid F.
    let f: F = unsafe { std::ptr::read_unaligned(closure as *const F) };
    let items: Vec<A> =
        postcard::from_bytes(args).map_err(|e| format!("bad task arguments: {e}"))?;
    let run = |a: A| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(a))).map_err(|payload| {
            let msg = last_panic().unwrap_or_else(|| panic_message(&*payload));
            std::mem::forget(payload);
            msg
        })
    };
    let mut ok: Vec<R> = Vec::with_capacity(items.len());
    let mut items = items.into_iter();
    let mut mixed: Option<Vec<Result<R, String>>> = None;
    for a in items.by_ref() {
        match run(a) {
            Ok(r) => ok.push(r),
            Err(msg) => {
                let mut v: Vec<Result<R, String>> = ok.drain(..).map(Ok).collect();
                v.push(Err(msg));
                mixed = Some(v);
                break;
            }
        }
    }
    let taken = std::mem::take(out);
    let all_ok = mixed.is_none();
    let encoded = match mixed {
        None => postcard::to_extend(&ok, taken),
        Some(mut v) => {
            v.extend(items.map(run));
            postcard::to_extend(&v, taken)
        }
    };
    *out = encoded.map_err(|e| format!("could not encode the results: {e}"))?;
    Ok(all_ok)
}

/// Why a chunk of tasks has no result.
#[derive(Debug, Clone)]
enum Fail {
    Died {
        worker: String,
        pid: i32,
        how: String,
    },
    Message {
        worker: String,
        pid: i32,
        message: String,
    },
    Terminated,
    InitFailed {
        pid: i32,
        message: String,
    },
}

impl Fail {
    fn to_error(&self) -> Error {
        match self.clone() {
            Fail::Died { worker, pid, how } => Error::WorkerDied {
                worker,
                worker_pid: pid,
                how,
            },
            Fail::Message {
                worker,
                pid,
                message,
            } => Error::TaskPanicked {
                worker,
                worker_pid: pid,
                message,
            },
            Fail::Terminated => Error::PoolClosed {
                state: "terminated",
                pid: getpid(),
            },
            Fail::InitFailed { pid, message } => Error::PoolInitializerFailed {
                worker_pid: pid,
                message,
            },
        }
    }
}

/// The outcome of one chunk.
#[derive(Debug)]
enum ChunkOutcome {
    Pending,
    Done {
        bytes: Vec<u8>,
        /// `bytes` is a `Vec<R>` (every task returned), not a
        /// `Vec<Result<R, String>>`.
        all_ok: bool,
        worker: Arc<str>,
        pid: i32,
    },
    Failed(Fail),
}

#[derive(Debug)]
struct Job {
    chunks: Vec<ChunkOutcome>,
    remaining: usize,
    /// Chunks finished, in the order they finished (for imap_unordered).
    finished: VecDeque<usize>,
    /// Its handle is gone: drop the job once every chunk is in.
    abandoned: bool,
}

struct Task {
    job: u64,
    chunk: usize,
    /// Loader stamp when it was submitted: only workers forked at or after
    /// it have its code.
    stamp: u64,
    frame: Vec<u8>,
}

struct Worker {
    pid: i32,
    slot: usize,
    name: Arc<str>,
    io: FrameIo,
    stamp: u64,
    ready: bool,
    outstanding: VecDeque<(u64, usize)>,
    /// Since when it has been busy without a result coming back.
    busy_since: Instant,
    /// Its recent time per task (an average), in ns; 0 before the first.
    pace_ns: u64,
    /// Replaced by newer workers: gets no new tasks, stops when idle.
    retiring: bool,
    stop_sent: bool,
}

impl Worker {
    /// How many tasks it may have in flight: [`MIN_DEPTH`], or as many as
    /// take [`QUEUED_WORK`] at its recent pace (quick tasks: many per write
    /// and per read, few trips through the parent's loop).
    fn depth(&self) -> usize {
        if self.pace_ns == 0 {
            return MIN_DEPTH;
        }
        let n = QUEUED_WORK.as_nanos() as u64 / self.pace_ns;
        (n as usize).clamp(MIN_DEPTH, MAX_DEPTH)
    }

    /// `n` results came back: updates its pace.
    fn note_results(&mut self, n: usize) {
        let now = Instant::now();
        let per = (now.duration_since(self.busy_since).as_nanos() as u64 / n as u64).max(1);
        self.pace_ns = if self.pace_ns == 0 {
            per
        } else {
            (self.pace_ns * 3 + per) / 4
        };
        self.busy_since = now;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolState {
    Open,
    Closed,
    Terminated,
}

type Initializer = Arc<dyn Fn() + Send + Sync + 'static>;

struct PoolInner {
    size: usize,
    initializer: Option<Initializer>,
    workers: Vec<Worker>,
    queue: VecDeque<Task>,
    jobs: HashMap<u64, Job>,
    next_job: u64,
    state: PoolState,
    broken: Option<Fail>,
    creator: i32,
    worker_starts: u64,
    /// Live progress display of long waits (in the kernel).
    progress: crate::rich::Progress,
}

impl PoolInner {
    /// Updates the live progress display (see [`crate::rich::Progress`]).
    fn tick_progress(&mut self) {
        let PoolInner { progress, jobs, .. } = self;
        progress.tick(
            jobs.iter()
                .map(|(&id, j)| (id, j.chunks.len(), j.chunks.len() - j.remaining)),
        );
    }

    /// "open", "closed" or "terminated".
    pub(crate) fn state_name(&self) -> &'static str {
        match self.state {
            PoolState::Open => "open",
            PoolState::Closed => "closed",
            PoolState::Terminated => "terminated",
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.creator != getpid() {
            return Err(Error::PoolClosed {
                state: "owned by another process (a pool only works in the process that made it)",
                pid: getpid(),
            });
        }
        match self.state {
            PoolState::Open => {}
            PoolState::Closed => {
                return Err(Error::PoolClosed {
                    state: "closed",
                    pid: getpid(),
                });
            }
            PoolState::Terminated => {
                return Err(Error::PoolClosed {
                    state: "terminated",
                    pid: getpid(),
                });
            }
        }
        if let Some(f) = &self.broken {
            return Err(f.to_error());
        }
        Ok(())
    }

    fn spawn_worker(&mut self, stamp: u64) -> Result<()> {
        let reg = Registry::current()?;
        let (identity, name) = next_identity("ForkPoolWorker");
        let mut fds = [0; 2];
        // Safety: socketpair fills two fds.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        } != 0
        {
            return Err(Error::os(
                "making a pool worker's socket",
                std::io::Error::last_os_error(),
            ));
        }
        // Safety: fresh fds, ours.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // Registered as a pipe end before the fork, so the worker closes it.
        let ours = FrameIo::new(ours, true)?;
        let slot = reg.reserve(&name, true, true)?;
        let init = self.initializer.clone();
        let setup = ChildSetup {
            name: &name,
            identity: &identity,
            daemon: true,
            parent_pid: getpid(),
            parent_name: reg.header().name(),
        };
        // The worker closes its copies of every pipe end and of the other
        // workers' sockets (fork_child does it: they are registered ends).
        let result = fork_child(&setup, move || worker_main(theirs, init));
        match result {
            Ok(pid) => {
                reg.publish(slot, pid);
                self.worker_starts += 1;
                self.workers.push(Worker {
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
                });
                Ok(())
            }
            Err(e) => {
                reg.unreserve(slot);
                Err(e)
            }
        }
    }

    /// Makes sure `size` workers that have the code of `stamp` exist.
    fn ensure_workers(&mut self, stamp: u64) -> Result<()> {
        let current = self
            .workers
            .iter()
            .filter(|w| !w.retiring && w.stamp >= stamp)
            .count();
        if current == 0 {
            // Code loaded since the last fork: retire the old workers.
            for w in &mut self.workers {
                w.retiring = true;
            }
        }
        let mut current = self.workers.iter().filter(|w| !w.retiring).count();
        while current < self.size {
            self.spawn_worker(stamp.max(loaded_objects_stamp()))?;
            current += 1;
        }
        Ok(())
    }

    fn submit(&mut self, frames: Vec<Vec<u8>>) -> Result<u64> {
        self.check_usable()?;
        registry::check_interrupt()?;
        let stamp = loaded_objects_stamp();
        self.ensure_workers(stamp)?;
        let job = self.next_job;
        self.next_job += 1;
        let n = frames.len();
        for (chunk, mut frame) in frames.into_iter().enumerate() {
            frame[1..9].copy_from_slice(&job.to_le_bytes());
            frame[9..13].copy_from_slice(&(chunk as u32).to_le_bytes());
            self.queue.push_back(Task {
                job,
                chunk,
                stamp,
                frame,
            });
        }
        self.jobs.insert(
            job,
            Job {
                chunks: (0..n).map(|_| ChunkOutcome::Pending).collect(),
                remaining: n,
                finished: VecDeque::new(),
                abandoned: false,
            },
        );
        self.dispatch();
        Ok(job)
    }

    /// Hands queued tasks to workers that have room, and stops idle retiring
    /// workers. The frames for one worker go out with one write.
    fn dispatch(&mut self) {
        let mut dead = Vec::new();
        // Per worker: the tasks given to it in this round (made on the
        // first task: most calls find nothing to hand out).
        let mut sent: Vec<Vec<Task>> = Vec::new();
        while let Some(task) = self.queue.front() {
            let best = self
                .workers
                .iter()
                .enumerate()
                .filter(|(_, w)| {
                    !w.retiring && w.stamp >= task.stamp && w.outstanding.len() < w.depth()
                })
                .min_by_key(|(_, w)| w.outstanding.len())
                .map(|(i, _)| i);
            let Some(i) = best else { break };
            let task = self.queue.pop_front().expect("front exists");
            let w = &mut self.workers[i];
            if w.outstanding.is_empty() {
                w.busy_since = Instant::now();
            }
            let at = w.io.begin_frame();
            w.io.wbuf().extend_from_slice(&task.frame);
            w.io.end_frame(at);
            w.outstanding.push_back((task.job, task.chunk));
            if sent.is_empty() {
                sent.resize_with(self.workers.len(), Vec::new);
            }
            sent[i].push(task);
        }
        let mut undelivered = Vec::new();
        for (i, tasks) in sent.into_iter().enumerate() {
            if tasks.is_empty() {
                continue;
            }
            let w = &mut self.workers[i];
            if w.io.write_some().is_err() {
                // The worker is gone (killed while idle, say) and these
                // tasks' frames never reached it whole, so they cannot have
                // run: they go back to the queue for another worker, not
                // failed.
                let keep = w.outstanding.len() - tasks.len();
                w.outstanding.truncate(keep);
                undelivered.extend(tasks);
                dead.push(i);
            }
        }
        undelivered.sort_by_key(|t| (t.job, t.chunk));
        for task in undelivered.into_iter().rev() {
            self.queue.push_front(task);
        }
        for w in &mut self.workers {
            if w.retiring && !w.stop_sent && w.outstanding.is_empty() {
                let at = w.io.begin_frame();
                w.io.wbuf().push(TO_WORKER_STOP);
                w.io.end_frame(at);
                w.stop_sent = true;
                let _ = w.io.write_some();
            }
        }
        dead.sort_unstable();
        dead.dedup();
        for i in dead.into_iter().rev() {
            self.worker_gone(i);
        }
    }

    fn store(&mut self, job: u64, chunk: usize, outcome: ChunkOutcome) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if !matches!(j.chunks[chunk], ChunkOutcome::Pending) {
            return;
        }
        j.chunks[chunk] = outcome;
        j.remaining -= 1;
        j.finished.push_back(chunk);
        if j.abandoned && j.remaining == 0 {
            self.jobs.remove(&job);
        }
    }

    /// Reads what worker `i` sent. `false` if it has gone.
    fn read_worker(&mut self, i: usize) -> bool {
        loop {
            let mut results = Vec::new();
            let w = &mut self.workers[i];
            let got = match w.io.read_some() {
                Ok(g) => g,
                Err(_) => return false,
            };
            let before = w.outstanding.len();
            while let Some(range) = w.io.frame_ready() {
                let payload = w.io.payload(range.clone());
                match payload.first().copied().unwrap_or(0) {
                    FROM_WORKER_READY => w.ready = true,
                    FROM_WORKER_INIT_FAILED => {
                        let message = String::from_utf8_lossy(&payload[1..]).into_owned();
                        self.broken = Some(Fail::InitFailed {
                            pid: w.pid,
                            message,
                        });
                    }
                    FROM_WORKER_RESULT if payload.len() >= 14 => {
                        let job = u64::from_le_bytes(payload[1..9].try_into().expect("8"));
                        let chunk =
                            u32::from_le_bytes(payload[9..13].try_into().expect("4")) as usize;
                        let body = &payload[14..];
                        let outcome = if payload[13] == RESULT_FAILED {
                            ChunkOutcome::Failed(Fail::Message {
                                worker: w.name.to_string(),
                                pid: w.pid,
                                message: String::from_utf8_lossy(body).into_owned(),
                            })
                        } else {
                            ChunkOutcome::Done {
                                bytes: body.to_vec(),
                                all_ok: payload[13] == RESULT_ALL_OK,
                                worker: w.name.clone(),
                                pid: w.pid,
                            }
                        };
                        if let Some(pos) = w.outstanding.iter().position(|&t| t == (job, chunk)) {
                            w.outstanding.remove(pos);
                        }
                        results.push((job, chunk, outcome));
                    }
                    _ => {}
                }
                w.io.consume(range);
            }
            let done = before - w.outstanding.len();
            if done > 0 {
                w.note_results(done);
            }
            let eof = w.io.at_eof();
            for (job, chunk, outcome) in results {
                self.store(job, chunk, outcome);
            }
            if eof {
                return false;
            }
            if !got {
                return true;
            }
        }
    }

    /// Worker `i` closed its socket: reap it, fail its tasks, replace it.
    fn worker_gone(&mut self, i: usize) {
        // Take what it sent before it went (a result, or why its initializer
        // failed): a failed write to it can come before reading that.
        let _ = self.read_worker(i);
        let w = self.workers.remove(i);
        let code = reap_soon(w.slot, w.pid, Duration::from_secs(2));
        let how = match code {
            Some(c) if c < 0 => format!("(killed by signal {})", -c),
            Some(c) if c != registry::STATUS_UNKNOWN => format!("(exit code {c})"),
            _ => "(exit status unknown)".to_owned(),
        };
        if !w.ready && self.broken.is_none() && !w.stop_sent {
            self.broken = Some(Fail::InitFailed {
                pid: w.pid,
                message: format!("the worker ended {how} before it was ready"),
            });
        }
        let fail = match (&self.broken, w.ready) {
            (Some(f @ Fail::InitFailed { .. }), false) => f.clone(),
            _ => Fail::Died {
                worker: w.name.to_string(),
                pid: w.pid,
                how: how.clone(),
            },
        };
        for (job, chunk) in w.outstanding {
            self.store(job, chunk, ChunkOutcome::Failed(fail.clone()));
        }
        if let Some(Fail::InitFailed { .. }) = &self.broken {
            self.fail_queued(self.broken.clone().expect("just checked"));
            return;
        }
        if self.state != PoolState::Terminated && !w.retiring && !w.stop_sent {
            let stamp = self
                .workers
                .iter()
                .map(|w| w.stamp)
                .max()
                .unwrap_or(0)
                .max(w.stamp);
            let _ = self.spawn_worker(stamp);
        }
    }

    fn fail_queued(&mut self, fail: Fail) {
        let tasks: Vec<Task> = self.queue.drain(..).collect();
        for t in tasks {
            self.store(t.job, t.chunk, ChunkOutcome::Failed(fail.clone()));
        }
    }

    /// Moves tasks and results along, waiting up to `max_wait` for something
    /// to happen.
    fn pump(&mut self, max_wait: Duration) -> Result<()> {
        self.dispatch();
        if self.workers.is_empty() {
            if !self.queue.is_empty() && self.state != PoolState::Terminated {
                let stamp = self.queue.iter().map(|t| t.stamp).max().unwrap_or(0);
                self.ensure_workers(stamp)?;
                self.dispatch();
            }
            if self.workers.is_empty() {
                std::thread::sleep(max_wait.min(Duration::from_millis(1)));
                return Ok(());
            }
        }
        let mut pfds: Vec<libc::pollfd> = self
            .workers
            .iter()
            .map(|w| libc::pollfd {
                fd: w.io.raw_fd(),
                events: libc::POLLIN | if w.io.wants_write() { libc::POLLOUT } else { 0 },
                revents: 0,
            })
            .collect();
        let ms = max_wait.as_micros().div_ceil(1000) as libc::c_int;
        // Safety: a valid array of pollfds.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(());
            }
            return Err(Error::os("waiting for pool workers (poll)", e));
        }
        let mut gone = Vec::new();
        for (i, p) in pfds.iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            if p.revents & libc::POLLOUT != 0 && self.workers[i].io.write_some().is_err() {
                gone.push(i);
                continue;
            }
            if p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                && !self.read_worker(i)
            {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.worker_gone(i);
        }
        self.dispatch();
        Ok(())
    }

    fn terminate(&mut self) {
        if self.state == PoolState::Terminated {
            return;
        }
        self.state = PoolState::Terminated;
        if self.creator != getpid() {
            return;
        }
        for w in &self.workers {
            // Safety: signalling our own unreaped child.
            unsafe { libc::kill(w.pid, libc::SIGTERM) };
        }
        // After an interrupt there is no grace period: the cell must end
        // quickly (the kernel stops the workers too).
        let grace = if registry::interrupted() {
            Duration::ZERO
        } else {
            Duration::from_millis(500)
        };
        let deadline = Instant::now() + grace;
        let workers = std::mem::take(&mut self.workers);
        for w in &workers {
            let left = deadline.saturating_duration_since(Instant::now());
            if reap_soon(w.slot, w.pid, left).is_none() {
                // Safety: as above; SIGKILL cannot be ignored.
                unsafe { libc::kill(w.pid, libc::SIGKILL) };
                reap_soon(w.slot, w.pid, Duration::from_secs(2));
            }
        }
        for w in workers {
            for (job, chunk) in w.outstanding {
                self.store(job, chunk, ChunkOutcome::Failed(Fail::Terminated));
            }
        }
        self.fail_queued(Fail::Terminated);
    }
}

/// Reaps `pid` within `within`; its exit code, or `None` if it still runs.
fn reap_soon(slot: usize, pid: i32, within: Duration) -> Option<i32> {
    let reg = Registry::current().ok()?;
    let deadline = Instant::now() + within;
    let mut nap = Duration::from_micros(50);
    loop {
        if let Some(code) = reg.try_reap(slot, pid) {
            reg.release(slot, pid);
            return Some(code);
        }
        if Instant::now() >= deadline {
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

/// The worker's life: initializer, then tasks until told to stop.
fn worker_main(fd: OwnedFd, init: Option<Initializer>) -> i32 {
    // Panics in tasks are reported to the parent, not printed here.
    std::panic::set_hook(Box::new(|info| {
        let msg = panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" (at {}:{}:{})", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
    }));
    let Ok(mut io) = FrameIo::new(fd, true) else {
        return 1;
    };
    if let Some(init) = init
        && let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init()))
    {
        let msg = take_last_panic().unwrap_or_else(|| panic_message(&*payload));
        std::mem::forget(payload);
        let at = io.begin_frame();
        io.wbuf().push(FROM_WORKER_INIT_FAILED);
        io.wbuf()
            .extend_from_slice(format!("the initializer panicked: {msg}").as_bytes());
        io.end_frame(at);
        let _ = io.flush();
        return 1;
    }
    if io.send_bytes(&[FROM_WORKER_READY]).is_err() {
        return 0;
    }
    let mut out = Vec::new();
    loop {
        let range = match io.recv_frame(None, "the pool") {
            Ok(Some(r)) => r,
            _ => return 0, // the parent is gone or closed our socket
        };
        let task = io.payload(range.clone());
        if task.first() != Some(&TO_WORKER_TASK) || task.len() < 25 {
            return 0; // a stop
        }
        let header: [u8; 13] = task[..13].try_into().expect("13");
        let tramp = u64::from_le_bytes(task[13..21].try_into().expect("8")) as usize;
        let clen = u32::from_le_bytes(task[21..25].try_into().expect("4")) as usize;
        let closure = task[25..25 + clen].as_ptr();
        let args = &task[25 + clen..];
        let span = crate::timeline::task_begin(
            u64::from_le_bytes(header[1..9].try_into().expect("8")),
            u32::from_le_bytes(header[9..13].try_into().expect("4")).into(),
        );
        out.clear();
        out.extend_from_slice(&header);
        out[0] = FROM_WORKER_RESULT;
        out.push(RESULT_ALL_OK);
        // Safety: the parent sent the address of `run_chunk::<F, A, R>`
        // instantiated for the closure whose bytes follow, and this worker
        // was forked after that code was loaded (the pool checks).
        let run: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(tramp) };
        // Safety: see above.
        match unsafe { run(closure, args, &mut out, take_last_panic) } {
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
    }
}

/// Lays out a task frame: kind, job and chunk (filled in at submit),
/// trampoline, closure bytes, encoded arguments.
fn task_frame<F, A, R>(f: &F, args: &[A]) -> Result<Vec<u8>>
where
    F: Fn(A) -> R + Copy + 'static,
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    let tramp: Trampoline = run_chunk::<F, A, R>;
    let size = std::mem::size_of::<F>();
    let mut frame = Vec::with_capacity(32 + size);
    frame.push(TO_WORKER_TASK);
    frame.extend_from_slice(&[0; 12]);
    frame.extend_from_slice(&(tramp as usize as u64).to_le_bytes());
    frame.extend_from_slice(&(size as u32).to_le_bytes());
    let at = frame.len();
    frame.reserve(size);
    // Safety: copies the closure's bytes (F is Copy: no ownership moves).
    // They are only read back as an F, in the worker.
    unsafe {
        std::ptr::copy_nonoverlapping(f as *const F as *const u8, frame.as_mut_ptr().add(at), size);
        frame.set_len(at + size);
    }
    codec::encode_into(&mut frame, args, "a pool task")?;
    Ok(frame)
}

fn chunk_frames<F, A, R>(f: &F, items: &[A], chunksize: usize) -> Result<Vec<Vec<u8>>>
where
    F: Fn(A) -> R + Copy + 'static,
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    items
        .chunks(chunksize.max(1))
        .map(|c| task_frame(f, c))
        .collect()
}

/// Decodes one finished chunk into its items' results.
fn decode_chunk<R: DeserializeOwned>(outcome: &ChunkOutcome) -> Result<Vec<Result<R>>> {
    match outcome {
        ChunkOutcome::Pending => unreachable!("decode of a pending chunk"),
        ChunkOutcome::Failed(f) => Err(f.to_error()),
        ChunkOutcome::Done {
            bytes,
            all_ok: true,
            ..
        } => {
            let items: Vec<R> = codec::decode(bytes, "a pool result")?;
            Ok(items.into_iter().map(Ok).collect())
        }
        ChunkOutcome::Done {
            bytes,
            all_ok: false,
            worker,
            pid,
        } => {
            let items: Vec<Result<R, String>> = codec::decode(bytes, "a pool result")?;
            Ok(items
                .into_iter()
                .map(|r| {
                    r.map_err(|message| Error::TaskPanicked {
                        worker: worker.to_string(),
                        worker_pid: *pid,
                        message,
                    })
                })
                .collect())
        }
    }
}

/// Appends the results of one finished chunk to `out`; the first failed
/// item's error otherwise.
fn decode_chunk_into<R: DeserializeOwned>(outcome: &ChunkOutcome, out: &mut Vec<R>) -> Result<()> {
    if let ChunkOutcome::Done {
        bytes,
        all_ok: true,
        ..
    } = outcome
    {
        let items: Vec<R> = codec::decode(bytes, "a pool result")?;
        if out.is_empty() && out.capacity() < items.len() {
            *out = items;
        } else {
            out.extend(items);
        }
        return Ok(());
    }
    for item in decode_chunk::<R>(outcome)? {
        out.push(item?);
    }
    Ok(())
}

fn decode_all<R: DeserializeOwned>(chunks: &[ChunkOutcome]) -> Result<Vec<R>> {
    let mut out = Vec::new();
    for c in chunks {
        decode_chunk_into(c, &mut out)?;
    }
    Ok(out)
}

fn decode_one<R: DeserializeOwned>(chunks: &[ChunkOutcome]) -> Result<R> {
    let first = chunks.first().expect("one chunk");
    decode_chunk::<R>(first)?
        .into_iter()
        .next()
        .unwrap_or_else(|| {
            Err(Error::Message {
                action: "decode",
                what: "a pool result",
                pid: getpid(),
                message: "the worker sent no result".into(),
            })
        })
}

/// Python's default chunksize for `map`: ceil(len / (4 × workers)).
fn auto_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(4 * workers.max(1)).max(1)
}

type Shared = Arc<Mutex<PoolInner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, PoolInner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pumps until `done` says so, or the deadline. `Ok(false)` on the deadline.
fn wait_until(
    shared: &Shared,
    deadline: Option<Instant>,
    mut done: impl FnMut(&PoolInner) -> bool,
) -> Result<bool> {
    loop {
        // First: once interrupted, every wait fails at once, done or not.
        registry::check_interrupt()?;
        let mut inner = lock(shared);
        if done(&inner) {
            inner.tick_progress();
            return Ok(true);
        }
        let mut slice = registry::POLL_INTERVAL;
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                return Ok(false);
            }
            slice = slice.min(d - now);
        }
        inner.pump(slice)?;
        inner.tick_progress();
    }
}

fn job_done(inner: &PoolInner, job: u64) -> bool {
    inner.jobs.get(&job).is_none_or(|j| j.remaining == 0)
}

/// A pool of worker processes (Python's `multiprocessing.Pool`).
///
/// Task functions must be `Copy + 'static`: `fn` items, or closures that
/// capture only `Copy` values (see the [module docs](self) for why).
/// Arguments and results must be serde types.
///
/// ```
/// use forja::prelude::*;
///
/// let pool = Pool::new(2).unwrap();
/// let total: u64 = pool.map(|x: u64| x * 2, 0..100).unwrap().iter().sum();
/// assert_eq!(total, 9900);
/// pool.close().unwrap();
/// pool.join().unwrap();
/// ```
pub struct Pool {
    shared: Shared,
    size: usize,
}

/// Builds a [`Pool`] with options (Python's `Pool(processes, initializer)`).
///
/// ```
/// let pool = forja::Pool::builder()
///     .processes(2)
///     .initializer(|| eprintln!("worker {} ready", std::process::id()))
///     .build()
///     .unwrap();
/// assert_eq!(pool.size(), 2);
/// ```
pub struct PoolBuilder {
    processes: Option<usize>,
    initializer: Option<Initializer>,
}

impl PoolBuilder {
    /// How many workers (default: [`cpu_count`](crate::cpu_count)).
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).build().unwrap();
    /// assert_eq!(pool.size(), 1);
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A function each worker runs once, when it starts (also in workers
    /// started later to replace or re-fork others). If it panics, the pool
    /// reports [`Error::PoolInitializerFailed`].
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).initializer(|| {}).build().unwrap();
    /// assert_eq!(pool.apply(|x: i32| x + 1, 1).unwrap(), 2);
    /// ```
    pub fn initializer<F>(mut self, f: F) -> Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.initializer = Some(Arc::new(f));
        self
    }

    /// Starts the workers.
    ///
    /// ```
    /// let pool = forja::Pool::builder().build().unwrap();
    /// assert_eq!(pool.size(), forja::cpu_count());
    /// ```
    pub fn build(self) -> Result<Pool> {
        let size = self.processes.unwrap_or_else(crate::cpu_count);
        if size == 0 {
            return Err(Error::InvalidArgument {
                message: "a Pool needs at least 1 worker process".into(),
                pid: getpid(),
            });
        }
        registry::check_interrupt()?;
        let mut inner = PoolInner {
            size,
            initializer: self.initializer,
            workers: Vec::new(),
            queue: VecDeque::new(),
            jobs: HashMap::new(),
            next_job: 1,
            state: PoolState::Open,
            broken: None,
            creator: getpid(),
            worker_starts: 0,
            progress: crate::rich::Progress::default(),
        };
        if let Err(e) = inner.ensure_workers(loaded_objects_stamp()) {
            inner.terminate();
            return Err(e);
        }
        Ok(Pool {
            shared: Arc::new(Mutex::new(inner)),
            size,
        })
    }
}

/// Functions that [`Pool::starmap`] can call with a tuple of arguments
/// spread out: `Fn(A)`, `Fn(A, B)`, `Fn(A, B, C)`, `Fn(A, B, C, D)`.
pub trait StarCall<Args> {
    /// What the function returns.
    type Output;
    /// Calls it with the tuple's elements as arguments.
    fn star_call(&self, args: Args) -> Self::Output;
}

macro_rules! star_call {
    ($($a:ident),*) => {
        impl<Func, $($a,)* R> StarCall<($($a,)*)> for Func
        where
            Func: Fn($($a),*) -> R,
        {
            type Output = R;
            #[allow(non_snake_case)]
            fn star_call(&self, ($($a,)*): ($($a,)*)) -> R {
                self($($a),*)
            }
        }
    };
}
star_call!(A);
star_call!(A, B);
star_call!(A, B, C);
star_call!(A, B, C, D);

impl Pool {
    /// A pool of `processes` workers, forked now.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// assert_eq!(pool.size(), 2);
    /// ```
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A pool with one worker per CPU ([`cpu_count`](crate::cpu_count)).
    ///
    /// ```
    /// let pool = forja::Pool::with_cpus().unwrap();
    /// assert_eq!(pool.size(), forja::cpu_count());
    /// ```
    pub fn with_cpus() -> Result<Pool> {
        Pool::builder().build()
    }

    /// Options: number of processes, initializer.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).build().unwrap();
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            initializer: None,
        }
    }

    /// How many workers it keeps.
    ///
    /// ```
    /// assert_eq!(forja::Pool::new(1).unwrap().size(), 1);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// The pids of its current workers.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// assert_eq!(pool.worker_pids().len(), 2);
    /// ```
    pub fn worker_pids(&self) -> Vec<i32> {
        lock(&self.shared)
            .workers
            .iter()
            .filter(|w| !w.retiring)
            .map(|w| w.pid)
            .collect()
    }

    /// How many worker processes it has forked so far: its size at first,
    /// more after replacing dead workers or re-forking for code loaded later
    /// (a later notebook cell).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// pool.map(|x: u8| x, vec![1, 2, 3]).unwrap();
    /// assert_eq!(pool.worker_starts(), 2);
    /// ```
    pub fn worker_starts(&self) -> u64 {
        lock(&self.shared).worker_starts
    }

    /// "open", "closed" or "terminated", and how many tasks wait (for the
    /// rich display).
    pub(crate) fn state_summary(&self) -> (&'static str, usize) {
        let inner = lock(&self.shared);
        (inner.state_name(), inner.queue.len())
    }

    /// Uses `chunksize` items per task message for the calls made through
    /// the returned view (`map`, `imap`...). Bigger chunks mean less
    /// overhead; smaller ones balance uneven tasks better.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let v = pool.chunksize(1).map(|x: i32| -x, vec![1, 2]).unwrap();
    /// assert_eq!(v, vec![-1, -2]);
    /// ```
    pub fn chunksize(&self, chunksize: usize) -> WithChunksize<'_> {
        WithChunksize {
            pool: self,
            chunksize: chunksize.max(1),
        }
    }

    fn submit<F, A, R>(&self, f: &F, items: &[A], chunksize: usize) -> Result<u64>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let frames = chunk_frames(f, items, chunksize)?;
        lock(&self.shared).submit(frames)
    }

    fn map_with<F, A, R>(&self, f: F, items: Vec<A>, chunksize: Option<usize>) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let len = items.len();
        let cs = chunksize.unwrap_or_else(|| auto_chunksize(len, self.size));
        let job = self.submit(&f, &items, cs)?;
        drop(items);
        // Drops the job (whatever is still running) if we return early.
        let _handle = AsyncResult::<Vec<R>> {
            shared: self.shared.clone(),
            job,
            decode: decode_all::<R>,
        };
        // Decode each chunk as soon as it and those before it are in, while
        // the workers run the rest.
        let mut out = Vec::with_capacity(len);
        for c in 0..len.div_ceil(cs) {
            let outcome = take_chunk(&self.shared, job, Some(c))?;
            decode_chunk_into(&outcome, &mut out)?;
        }
        Ok(out)
    }

    fn map_async_with<F, A, R>(
        &self,
        f: F,
        items: Vec<A>,
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let cs = chunksize.unwrap_or_else(|| auto_chunksize(items.len(), self.size));
        let job = self.submit(&f, &items, cs)?;
        Ok(AsyncResult {
            shared: self.shared.clone(),
            job,
            decode: decode_all::<R>,
        })
    }

    fn imap_with<F, A, R>(&self, f: F, items: Vec<A>, chunksize: usize) -> Result<Imap<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let n = items.len().div_ceil(chunksize.max(1));
        let job = self.submit(&f, &items, chunksize)?;
        Ok(Imap {
            shared: self.shared.clone(),
            job,
            next_chunk: 0,
            chunks: n,
            buffer: VecDeque::new(),
        })
    }

    fn imap_unordered_with<F, A, R>(
        &self,
        f: F,
        items: Vec<A>,
        chunksize: usize,
    ) -> Result<ImapUnordered<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let n = items.len().div_ceil(chunksize.max(1));
        let job = self.submit(&f, &items, chunksize)?;
        Ok(ImapUnordered {
            shared: self.shared.clone(),
            job,
            taken: 0,
            chunks: n,
            buffer: VecDeque::new(),
        })
    }

    /// Applies `f` to every item in the workers; results in input order.
    /// Items are sent in chunks of `ceil(len / (4 × workers))`, as in Python
    /// (change it with [`chunksize`](Self::chunksize)). The first failed
    /// item (a panic, a dead worker) makes the whole call an `Err`.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let words = pool.map(|n: usize| "ab".repeat(n), vec![0, 1, 2]).unwrap();
    /// assert_eq!(words, vec!["", "ab", "abab"]);
    /// ```
    pub fn map<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.map_with(f, items.into_iter().collect(), None)
    }

    /// Like [`map`](Self::map), but calls `f` with each tuple spread into
    /// arguments (Python's `starmap`).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let sums = pool.starmap(|a: i32, b: i32| a + b, vec![(1, 2), (3, 4)]).unwrap();
    /// assert_eq!(sums, vec![3, 7]);
    /// ```
    pub fn starmap<F, Args, I>(&self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        F: StarCall<Args> + Copy + 'static,
        Args: Serialize + DeserializeOwned,
        F::Output: Serialize + DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.map(move |args: Args| f.star_call(args), items)
    }

    /// Runs `f(arg)` in a worker and waits for the result.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.apply(|s: String| s.len(), "hola".into()).unwrap(), 4);
    /// ```
    pub fn apply<F, A, R>(&self, f: F, arg: A) -> Result<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.apply_async(f, arg)?.get()
    }

    /// Starts `f(arg)` in a worker and returns at once; get the result from
    /// the [`AsyncResult`].
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let pending: Vec<_> = (0..4).map(|i| pool.apply_async(|x: u32| x * 10, i).unwrap()).collect();
    /// let got: Vec<u32> = pending.iter().map(|r| r.get().unwrap()).collect();
    /// assert_eq!(got, vec![0, 10, 20, 30]);
    /// ```
    pub fn apply_async<F, A, R>(&self, f: F, arg: A) -> Result<AsyncResult<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let job = self.submit(&f, std::slice::from_ref(&arg), 1)?;
        Ok(AsyncResult {
            shared: self.shared.clone(),
            job,
            decode: decode_one::<R>,
        })
    }

    /// [`map`](Self::map) without waiting: the [`AsyncResult`] gives the
    /// whole `Vec` later.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let r = pool.map_async(|x: i32| x + 1, vec![1, 2, 3]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 3, 4]);
    /// ```
    pub fn map_async<F, A, R, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.map_async_with(f, items.into_iter().collect(), None)
    }

    /// Like [`map`](Self::map), but an iterator that yields each result (in
    /// input order) as soon as it and those before it are ready. All items are
    /// taken from `items` and sent at once; one item per task message by
    /// default, as in Python.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// for (i, r) in pool.imap(|x: u64| x * x, 0..5).unwrap().enumerate() {
    ///     assert_eq!(r.unwrap(), (i * i) as u64);
    /// }
    /// ```
    pub fn imap<F, A, R, I>(&self, f: F, items: I) -> Result<Imap<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.imap_with(f, items.into_iter().collect(), 1)
    }

    /// Like [`imap`](Self::imap), but yields results in the order they
    /// finish.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let mut got: Vec<i32> = pool
    ///     .imap_unordered(|x: i32| x * 2, vec![1, 2, 3])
    ///     .unwrap()
    ///     .map(|r| r.unwrap())
    ///     .collect();
    /// got.sort();
    /// assert_eq!(got, vec![2, 4, 6]);
    /// ```
    pub fn imap_unordered<F, A, R, I>(&self, f: F, items: I) -> Result<ImapUnordered<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.imap_unordered_with(f, items.into_iter().collect(), 1)
    }

    /// Takes no more tasks; those already submitted still run. Then
    /// [`join`](Self::join).
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// pool.close().unwrap();
    /// assert!(pool.apply(|x: i32| x, 1).is_err());
    /// pool.join().unwrap();
    /// ```
    pub fn close(&self) -> Result<()> {
        let mut inner = lock(&self.shared);
        if inner.state == PoolState::Open {
            inner.state = PoolState::Closed;
        }
        Ok(())
    }

    /// After [`close`](Self::close): waits for every submitted task to finish
    /// and for the workers to exit. After [`terminate`](Self::terminate):
    /// returns at once.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let r = pool.apply_async(|x: u8| x, 5).unwrap();
    /// pool.close().unwrap();
    /// pool.join().unwrap();
    /// assert_eq!(r.get().unwrap(), 5);
    /// ```
    pub fn join(&self) -> Result<()> {
        {
            let inner = lock(&self.shared);
            if inner.state == PoolState::Open {
                return Err(Error::PoolStillOpen { pid: getpid() });
            }
        }
        wait_until(&self.shared, None, |inner| {
            inner.queue.is_empty() && inner.workers.iter().all(|w| w.outstanding.is_empty())
        })?;
        {
            let mut inner = lock(&self.shared);
            for w in &mut inner.workers {
                w.retiring = true;
            }
            inner.dispatch(); // sends every worker a stop
        }
        wait_until(&self.shared, None, |inner| inner.workers.is_empty())?;
        Ok(())
    }

    /// Stops the workers now (SIGTERM, then SIGKILL for any still there after
    /// half a second). Pending tasks fail with [`Error::PoolClosed`].
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// pool.terminate().unwrap();
    /// assert!(pool.worker_pids().is_empty());
    /// ```
    pub fn terminate(&self) -> Result<()> {
        lock(&self.shared).terminate();
        Ok(())
    }
}

impl Drop for Pool {
    /// Terminates the workers, like Python's `Pool.__del__`.
    fn drop(&mut self) {
        lock(&self.shared).terminate();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = lock(&self.shared);
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("state", &inner.state)
            .field(
                "workers",
                &inner.workers.iter().map(|w| w.pid).collect::<Vec<_>>(),
            )
            .field("queued_tasks", &inner.queue.len())
            .finish()
    }
}

/// A [`Pool`] view with a fixed chunksize; made by [`Pool::chunksize`].
///
/// ```
/// let pool = forja::Pool::new(2).unwrap();
/// let v: Vec<i32> = pool.chunksize(10).imap(|x: i32| x, 0..25).unwrap().map(|r| r.unwrap()).collect();
/// assert_eq!(v, (0..25).collect::<Vec<_>>());
/// ```
#[derive(Debug)]
pub struct WithChunksize<'a> {
    pool: &'a Pool,
    chunksize: usize,
}

impl WithChunksize<'_> {
    /// [`Pool::map`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(2).map(|x: u8| x + 1, vec![1, 2, 3]).unwrap(), vec![2, 3, 4]);
    /// ```
    pub fn map<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.pool
            .map_with(f, items.into_iter().collect(), Some(self.chunksize))
    }

    /// [`Pool::map_async`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(1).map_async(|x: u8| x, vec![7]).unwrap().get().unwrap(), vec![7]);
    /// ```
    pub fn map_async<F, A, R, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.pool
            .map_async_with(f, items.into_iter().collect(), Some(self.chunksize))
    }

    /// [`Pool::starmap`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(1).starmap(|a: i32, b: i32| a * b, vec![(2, 3)]).unwrap(), vec![6]);
    /// ```
    pub fn starmap<F, Args, I>(&self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        F: StarCall<Args> + Copy + 'static,
        Args: Serialize + DeserializeOwned,
        F::Output: Serialize + DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.map(move |args: Args| f.star_call(args), items)
    }

    /// [`Pool::imap`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(4).imap(|x: u8| x, vec![1, 2]).unwrap().count(), 2);
    /// ```
    pub fn imap<F, A, R, I>(&self, f: F, items: I) -> Result<Imap<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.pool
            .imap_with(f, items.into_iter().collect(), self.chunksize)
    }

    /// [`Pool::imap_unordered`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(4).imap_unordered(|x: u8| x, vec![1, 2]).unwrap().count(), 2);
    /// ```
    pub fn imap_unordered<F, A, R, I>(&self, f: F, items: I) -> Result<ImapUnordered<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.pool
            .imap_unordered_with(f, items.into_iter().collect(), self.chunksize)
    }
}

/// A result that will be ready later: from [`Pool::apply_async`] and
/// [`Pool::map_async`].
///
/// [`get`](Self::get) may be called more than once (each call decodes the
/// result again). Dropping it discards the result.
///
/// ```
/// use std::time::Duration;
/// let pool = forja::Pool::new(1).unwrap();
/// let r = pool.apply_async(|x: i32| x * 3, 5).unwrap();
/// assert_eq!(r.get_timeout(Duration::from_secs(10)).unwrap(), 15);
/// assert!(r.ready());
/// assert_eq!(r.successful(), Some(true));
/// ```
pub struct AsyncResult<T> {
    shared: Shared,
    job: u64,
    decode: fn(&[ChunkOutcome]) -> Result<T>,
}

impl<T> AsyncResult<T> {
    fn finish(&self) -> Result<T> {
        let inner = lock(&self.shared);
        match inner.jobs.get(&self.job) {
            Some(j) => (self.decode)(&j.chunks),
            None => Err(Error::PoolClosed {
                state: "terminated",
                pid: getpid(),
            }),
        }
    }

    /// Waits for the result.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.apply_async(|x: u8| x, 1).unwrap().get().unwrap(), 1);
    /// ```
    pub fn get(&self) -> Result<T> {
        wait_until(&self.shared, None, |inner| job_done(inner, self.job))?;
        self.finish()
    }

    /// Waits at most `timeout`; [`Error::Timeout`] if it is not ready by
    /// then (the task keeps running: ask again later).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 2000).unwrap();
    /// assert!(matches!(r.get_timeout(Duration::from_millis(10)), Err(forja::Error::Timeout { .. })));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        let deadline = Instant::now() + timeout;
        if !wait_until(&self.shared, Some(deadline), |inner| {
            job_done(inner, self.job)
        })? {
            return Err(Error::Timeout {
                what: "waiting for a pool result",
                pid: getpid(),
            });
        }
        self.finish()
    }

    /// Waits until it is ready (or `timeout`); `Ok(true)` if it is.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async(|x: u8| x, 1).unwrap();
    /// assert!(r.wait(std::time::Duration::from_secs(10)).unwrap());
    /// ```
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        wait_until(&self.shared, Some(Instant::now() + timeout), |inner| {
            job_done(inner, self.job)
        })
    }

    /// Whether the result is there (does not wait).
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async(|x: u8| x, 1).unwrap();
    /// r.get().unwrap();
    /// assert!(r.ready());
    /// ```
    pub fn ready(&self) -> bool {
        let mut inner = lock(&self.shared);
        if !job_done(&inner, self.job) {
            let _ = inner.pump(Duration::ZERO);
        }
        job_done(&inner, self.job)
    }

    /// `None` while not ready; then whether it succeeded (no panic, no dead
    /// worker).
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async(|x: i32| if x < 0 { panic!("negative") } else { x }, -1).unwrap();
    /// assert!(r.get().is_err());
    /// assert_eq!(r.successful(), Some(false));
    /// ```
    pub fn successful(&self) -> Option<bool> {
        if !self.ready() {
            return None;
        }
        Some(self.finish().is_ok())
    }
}

impl<T> Drop for AsyncResult<T> {
    fn drop(&mut self) {
        abandon(&self.shared, self.job);
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("job", &self.job)
            .field("ready", &job_done(&lock(&self.shared), self.job))
            .finish()
    }
}

fn abandon(shared: &Shared, job: u64) {
    let mut inner = lock(shared);
    if let Some(j) = inner.jobs.get_mut(&job) {
        if j.remaining == 0 {
            inner.jobs.remove(&job);
        } else {
            j.abandoned = true;
        }
    }
}

/// The iterator of [`Pool::imap`]: results in input order, each as soon as
/// it is ready. Each item is a `Result` (a panic in that task, a dead
/// worker...).
///
/// ```
/// let pool = forja::Pool::new(2).unwrap();
/// let mut it = pool.imap(|x: i32| x + 1, vec![1, 2]).unwrap();
/// assert_eq!(it.next().unwrap().unwrap(), 2);
/// assert_eq!(it.next().unwrap().unwrap(), 3);
/// assert!(it.next().is_none());
/// ```
pub struct Imap<R> {
    shared: Shared,
    job: u64,
    next_chunk: usize,
    chunks: usize,
    buffer: VecDeque<Result<R>>,
}

/// Takes chunk `chunk` of `job` out once it is in (pumping meanwhile).
fn take_chunk(shared: &Shared, job: u64, chunk: Option<usize>) -> Result<ChunkOutcome> {
    let mut picked = None;
    wait_until(shared, None, |inner| {
        let Some(j) = inner.jobs.get(&job) else {
            return true;
        };
        match chunk {
            Some(c) => !matches!(j.chunks[c], ChunkOutcome::Pending),
            None => !j.finished.is_empty(),
        }
    })?;
    let mut inner = lock(shared);
    if let Some(j) = inner.jobs.get_mut(&job) {
        let c = match chunk {
            Some(c) => Some(c),
            None => j.finished.pop_front(),
        };
        if let Some(c) = c {
            picked = Some(std::mem::replace(
                &mut j.chunks[c],
                ChunkOutcome::Failed(Fail::Terminated),
            ));
        }
    }
    Ok(picked.unwrap_or(ChunkOutcome::Failed(Fail::Terminated)))
}

fn next_from_chunk<R: DeserializeOwned>(
    buffer: &mut VecDeque<Result<R>>,
    outcome: ChunkOutcome,
) -> Option<Result<R>> {
    match decode_chunk::<R>(&outcome) {
        Ok(items) => buffer.extend(items),
        Err(e) => buffer.push_back(Err(e)),
    }
    buffer.pop_front()
}

impl<R: DeserializeOwned> Iterator for Imap<R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        if let Some(r) = self.buffer.pop_front() {
            return Some(r);
        }
        if self.next_chunk >= self.chunks {
            return None;
        }
        let c = self.next_chunk;
        self.next_chunk += 1;
        match take_chunk(&self.shared, self.job, Some(c)) {
            Ok(outcome) => next_from_chunk(&mut self.buffer, outcome),
            Err(e) => Some(Err(e)),
        }
    }
}

impl<R> Drop for Imap<R> {
    fn drop(&mut self) {
        abandon(&self.shared, self.job);
    }
}

impl<R> fmt::Debug for Imap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("job", &self.job)
            .field("chunks", &self.chunks)
            .field("next_chunk", &self.next_chunk)
            .finish()
    }
}

/// The iterator of [`Pool::imap_unordered`]: results as they finish.
///
/// ```
/// let pool = forja::Pool::new(2).unwrap();
/// let n = pool.imap_unordered(|x: i32| x, 0..10).unwrap().filter(|r| r.is_ok()).count();
/// assert_eq!(n, 10);
/// ```
pub struct ImapUnordered<R> {
    shared: Shared,
    job: u64,
    taken: usize,
    chunks: usize,
    buffer: VecDeque<Result<R>>,
}

impl<R: DeserializeOwned> Iterator for ImapUnordered<R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        if let Some(r) = self.buffer.pop_front() {
            return Some(r);
        }
        if self.taken >= self.chunks {
            return None;
        }
        self.taken += 1;
        match take_chunk(&self.shared, self.job, None) {
            Ok(outcome) => next_from_chunk(&mut self.buffer, outcome),
            Err(e) => Some(Err(e)),
        }
    }
}

impl<R> Drop for ImapUnordered<R> {
    fn drop(&mut self) {
        abandon(&self.shared, self.job);
    }
}

impl<R> fmt::Debug for ImapUnordered<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("job", &self.job)
            .field("chunks", &self.chunks)
            .field("taken", &self.taken)
            .finish()
    }
}
