//! The pool's state and its scheduler: queueing a job's chunks, handing
//! them to workers that have their code, collecting what comes back (the
//! result thread, `result_thread.rs`, drives it), noting dead workers, the
//! callbacks a finished job owes, and the wait that every blocking call goes
//! through (with its progress display).

use super::outcome::{ChunkOutcome, Fail};
use super::protocol::{
    FROM_WORKER_INIT_FAILED, FROM_WORKER_READY, FROM_WORKER_RESULT, RESULT_ALL_OK, RESULT_FAILED,
    TO_WORKER_STOP,
};
use super::task::loaded_objects_stamp;
use super::wake::{Wake, on_result_thread};
use super::worker::{Initializer, PoolContext, Worker, reap_soon};
use crate::error::{Error, Result};
use crate::registry;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One submitted call (`map`, `apply_async`...): its chunks' outcomes.
pub(super) struct Job {
    pub(super) chunks: Vec<ChunkOutcome>,
    pub(super) remaining: usize,
    /// Chunks finished, in the order they finished (for imap_unordered).
    pub(super) finished: VecDeque<usize>,
    /// Its handle is gone: drop the job once every chunk is in.
    pub(super) abandoned: bool,
    /// Callbacks to prepare when the last chunk is in.
    pub(super) callbacks: Vec<JobCallback>,
    /// Callbacks attached and not yet run: waiters wait for them too (as
    /// Python's `get()` returns after the callback).
    pub(super) callbacks_left: usize,
    /// Chunks handed to a worker (a job with none can still be cancelled).
    pub(super) dispatched: usize,
    /// Cancelled before a worker took it.
    pub(super) cancelled: bool,
    /// When its last chunk came in (the pool's count of finished jobs).
    pub(super) finished_seq: Option<u64>,
}

/// A callback attached to a job: given the job's chunks under the pool's
/// lock, it decodes them and returns what to run without the lock.
pub(super) type JobCallback = Box<dyn FnOnce(&[ChunkOutcome]) -> PreparedCallback + Send>;
/// A callback with its decoded argument, run by the result thread.
pub(super) type PreparedCallback = Box<dyn FnOnce() + Send>;

/// One chunk waiting for a worker.
pub(super) struct Task {
    job: u64,
    chunk: usize,
    /// Loader stamp when it was submitted: only workers forked at or after
    /// it have its code.
    pub(super) stamp: u64,
    message: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PoolState {
    Open,
    Closed,
    Terminated,
}

/// Everything a [`Pool`](super::Pool) knows, behind one lock.
pub(super) struct PoolInner {
    pub(super) size: usize,
    pub(super) initializer: Option<Initializer>,
    /// The pool's context: every worker forked, now or later, inherits it.
    pub(super) context: PoolContext,
    pub(super) workers: Vec<Worker>,
    pub(super) queue: VecDeque<Task>,
    pub(super) jobs: HashMap<u64, Job>,
    next_job: u64,
    pub(super) state: PoolState,
    pub(super) broken: Option<Fail>,
    creator: i32,
    pub(super) worker_starts: u64,
    /// The newest loader stamp workers were forked for.
    pub(super) last_stamp: u64,
    /// Live progress display of long waits (in the kernel).
    progress: crate::rich::Progress,
    /// Python's `maxtasksperchild`: a worker gets this many task messages,
    /// then exits and is replaced.
    pub(super) max_tasks: Option<usize>,
    /// Workers the result thread is forking (outside the lock).
    pub(super) spawning: usize,
    /// Finished jobs' callbacks, in the order the jobs finished.
    pub(super) callback_queue: VecDeque<(u64, PreparedCallback)>,
    /// How many jobs have finished (orders `as_completed`).
    finished_jobs: u64,
    /// The result thread runs (set when it is started, cleared when it
    /// ends).
    pub(super) thread_running: bool,
}

/// What the pool's handles share: its state behind one lock, the condition
/// variable notified at every change, and the result thread's wake fd.
pub(super) struct PoolShared {
    pub(super) inner: Mutex<PoolInner>,
    /// Notified when results are stored, callbacks run, workers come or go.
    pub(super) changed: Condvar,
    /// Wakes the result thread from its poll.
    pub(super) wake: Wake,
    /// The process that made the pool: its handles touch nothing (not even
    /// the lock, which a thread that does not exist in a fork may hold) in
    /// any other.
    pub(super) creator: i32,
}

impl PoolInner {
    /// An open pool of `size` workers, none forked yet.
    pub(super) fn new(
        size: usize,
        initializer: Option<Initializer>,
        context: PoolContext,
        max_tasks: Option<usize>,
    ) -> PoolInner {
        PoolInner {
            size,
            initializer,
            context,
            workers: Vec::new(),
            queue: VecDeque::new(),
            jobs: HashMap::new(),
            next_job: 1,
            state: PoolState::Open,
            broken: None,
            creator: crate::os::pid(),
            worker_starts: 0,
            last_stamp: 0,
            progress: crate::rich::Progress::default(),
            max_tasks,
            spawning: 0,
            callback_queue: VecDeque::new(),
            finished_jobs: 0,
            thread_running: false,
        }
    }

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
        if self.creator != crate::os::pid() {
            return Err(Error::PoolClosed {
                state: "owned by another process (a pool only works in the process that made it)",
                pid: crate::os::pid(),
            });
        }
        match self.state {
            PoolState::Open => {}
            PoolState::Closed => {
                return Err(Error::PoolClosed {
                    state: "closed",
                    pid: crate::os::pid(),
                });
            }
            PoolState::Terminated => {
                return Err(Error::PoolClosed {
                    state: "terminated",
                    pid: crate::os::pid(),
                });
            }
        }
        if let Some(f) = &self.broken {
            return Err(f.to_error());
        }
        Ok(())
    }

    fn spawn_worker(&mut self, stamp: u64) -> Result<()> {
        let worker = Worker::spawn(
            self.initializer.clone(),
            self.context.clone(),
            stamp,
            self.max_tasks,
        )?;
        self.worker_starts += 1;
        self.workers.push(worker);
        Ok(())
    }

    /// Makes sure `size` workers that have the code of `stamp` exist.
    pub(super) fn ensure_workers(&mut self, stamp: u64) -> Result<()> {
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
        let mut current = self.workers.iter().filter(|w| !w.retiring).count() + self.spawning;
        self.last_stamp = self.last_stamp.max(stamp);
        while current < self.size {
            self.spawn_worker(stamp.max(loaded_objects_stamp()))?;
            current += 1;
        }
        Ok(())
    }

    /// Queues a job's task messages and hands out what workers have room
    /// for. Its id, and whether the result thread must be woken (new
    /// workers to poll, or a write to finish).
    pub(super) fn submit(&mut self, messages: Vec<Vec<u8>>) -> Result<(u64, bool)> {
        self.check_usable()?;
        registry::check_interrupt()?;
        let stamp = loaded_objects_stamp();
        let starts = self.worker_starts;
        self.ensure_workers(stamp)?;
        let job = self.next_job;
        self.next_job += 1;
        let n = messages.len();
        for (chunk, mut message) in messages.into_iter().enumerate() {
            message[1..9].copy_from_slice(&job.to_le_bytes());
            message[9..13].copy_from_slice(&(chunk as u32).to_le_bytes());
            self.queue.push_back(Task {
                job,
                chunk,
                stamp,
                message,
            });
        }
        self.jobs.insert(
            job,
            Job {
                chunks: (0..n).map(|_| ChunkOutcome::Pending).collect(),
                remaining: n,
                finished: VecDeque::new(),
                abandoned: false,
                callbacks: Vec::new(),
                callbacks_left: 0,
                dispatched: 0,
                cancelled: false,
                finished_seq: None,
            },
        );
        self.dispatch();
        let wake = self.worker_starts != starts || self.workers.iter().any(|w| w.io.wants_write());
        Ok((job, wake))
    }

    /// Hands queued tasks to workers that have room, and stops idle retiring
    /// workers. The messages for one worker go out with one write.
    pub(super) fn dispatch(&mut self) {
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
            let at = w.io.begin_message();
            w.io.wbuf().extend_from_slice(&task.message);
            w.io.end_message(at);
            w.outstanding.push_back((task.job, task.chunk));
            w.tasks_sent += 1;
            if self.max_tasks.is_some_and(|m| w.tasks_sent >= m) {
                // It exits by itself after this task (maxtasksperchild): no
                // more tasks, no stop message; the result thread replaces it.
                w.retiring = true;
                w.stop_sent = true;
            }
            if let Some(j) = self.jobs.get_mut(&task.job) {
                j.dispatched += 1;
            }
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
                // tasks' messages never reached it whole, so they cannot have
                // run: they go back to the queue for another worker, not
                // failed.
                let keep = w.outstanding.len() - tasks.len();
                w.outstanding.truncate(keep);
                for t in &tasks {
                    if let Some(j) = self.jobs.get_mut(&t.job) {
                        j.dispatched -= 1;
                    }
                }
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
                let at = w.io.begin_message();
                w.io.wbuf().push(TO_WORKER_STOP);
                w.io.end_message(at);
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
        if j.remaining > 0 {
            return;
        }
        self.finished_jobs += 1;
        j.finished_seq = Some(self.finished_jobs);
        for callback in std::mem::take(&mut j.callbacks) {
            let prepared = callback(&j.chunks);
            self.callback_queue.push_back((job, prepared));
        }
        if j.abandoned && j.callbacks_left == 0 {
            self.jobs.remove(&job);
        }
    }

    /// Attaches `callback` to `job`: run by the result thread when the job
    /// finishes; returned (to be run by the caller, without the lock) if it
    /// has finished already or no result thread is left to run it.
    pub(super) fn attach(&mut self, job: u64, callback: JobCallback) -> Option<PreparedCallback> {
        let thread_running = self.thread_running;
        let j = self.jobs.get_mut(&job)?;
        if j.remaining == 0 {
            return Some(callback(&j.chunks));
        }
        if !thread_running {
            return None;
        }
        j.callbacks.push(callback);
        j.callbacks_left += 1;
        None
    }

    /// The result thread ran one callback of `job`.
    pub(super) fn callback_ran(&mut self, job: u64) {
        if let Some(j) = self.jobs.get_mut(&job) {
            j.callbacks_left = j.callbacks_left.saturating_sub(1);
            if j.abandoned && j.remaining == 0 && j.callbacks_left == 0 {
                self.jobs.remove(&job);
            }
        }
    }

    /// Cancels `job` if no worker has taken any of its chunks: they leave
    /// the queue and fail with [`Error::Cancelled`]. `None` if it could
    /// not; otherwise its callbacks, for the caller to run at once (as
    /// Python's `cancel()`), then report with
    /// [`callback_ran`](Self::callback_ran).
    pub(super) fn cancel_job(&mut self, job: u64) -> Option<Vec<PreparedCallback>> {
        match self.jobs.get_mut(&job) {
            Some(j) if j.dispatched == 0 && j.remaining > 0 => j.cancelled = true,
            _ => return None,
        }
        let mut chunks = Vec::new();
        self.queue.retain(|t| {
            let mine = t.job == job;
            if mine {
                chunks.push(t.chunk);
            }
            !mine
        });
        for chunk in chunks {
            self.store(job, chunk, ChunkOutcome::Failed(Fail::Cancelled));
        }
        let (mine, others) = std::mem::take(&mut self.callback_queue)
            .into_iter()
            .partition(|(j, _)| *j == job);
        self.callback_queue = others;
        Some(mine.into_iter().map(|(_, c)| c).collect())
    }

    /// When `job` finished (its place among finished jobs), once it has
    /// and its callbacks have run; a job that is gone counts as finished
    /// first.
    pub(super) fn finished_at(&self, job: u64) -> Option<u64> {
        match self.jobs.get(&job) {
            None => Some(0),
            Some(j) if j.remaining == 0 && j.callbacks_left == 0 => j.finished_seq.or(Some(0)),
            Some(_) => None,
        }
    }

    /// Reads what worker `i` sent. `false` if it has gone.
    pub(super) fn read_worker(&mut self, i: usize) -> bool {
        loop {
            let mut results = Vec::new();
            let w = &mut self.workers[i];
            let got = match w.io.read_some() {
                Ok(g) => g,
                Err(_) => return false,
            };
            let before = w.outstanding.len();
            while let Some(range) = w.io.message_ready() {
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
    pub(super) fn worker_gone(&mut self, i: usize) {
        // Take what it sent before it went (a result, or why its initializer
        // failed): a failed write to it can come before reading that.
        let _ = self.read_worker(i);
        let w = self.workers.remove(i);
        let code = reap_soon(w.slot, w.pid, Duration::from_secs(2));
        let how = match code {
            Some(c) if c < 0 => crate::messages::Msg::HowKilled.fill(&[("signal", &-c)]),
            Some(c) if c != registry::STATUS_UNKNOWN => {
                crate::messages::Msg::HowExitCode.fill(&[("code", &c)])
            }
            _ => crate::messages::Msg::HowUnknown.get().to_owned(),
        };
        if !w.ready && self.broken.is_none() && !w.stop_sent {
            self.broken = Some(Fail::InitFailed {
                pid: w.pid,
                message: crate::messages::Msg::WorkerEndedEarly.fill(&[("how", &how)]),
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
        // The result thread forks its replacement (`replacement_plan`).
        self.last_stamp = self.last_stamp.max(w.stamp);
    }

    pub(super) fn fail_queued(&mut self, fail: Fail) {
        let tasks: Vec<Task> = self.queue.drain(..).collect();
        for t in tasks {
            self.store(t.job, t.chunk, ChunkOutcome::Failed(fail.clone()));
        }
    }

    pub(super) fn terminate(&mut self) {
        if self.state == PoolState::Terminated {
            return;
        }
        self.state = PoolState::Terminated;
        if self.creator != crate::os::pid() {
            return;
        }
        for w in &self.workers {
            // Our own unreaped child: the pid is still its.
            let _ = kill(Pid::from_raw(w.pid), Signal::SIGTERM);
        }
        // After an interrupt there is no grace period: the cell must end
        // quickly (the kernel stops the workers too).
        let grace = if registry::interrupted() {
            Duration::ZERO
        } else {
            Duration::from_millis(500)
        };
        let deadline = crate::deadline::deadline(grace);
        let workers = std::mem::take(&mut self.workers);
        for w in &workers {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if reap_soon(w.slot, w.pid, left).is_none() {
                // As above; SIGKILL cannot be ignored.
                let _ = kill(Pid::from_raw(w.pid), Signal::SIGKILL);
                reap_soon(w.slot, w.pid, Duration::from_secs(2));
            }
        }
        for w in workers {
            for (job, chunk) in w.outstanding {
                self.store(job, chunk, ChunkOutcome::Failed(Fail::Terminated));
            }
        }
        self.fail_queued(Fail::Terminated);
        // As Python: a terminated pool runs no more callbacks.
        self.callback_queue.clear();
        let done: Vec<u64> = self
            .jobs
            .iter_mut()
            .filter_map(|(&id, j)| {
                j.callbacks.clear();
                j.callbacks_left = 0;
                (j.abandoned && j.remaining == 0).then_some(id)
            })
            .collect();
        for id in done {
            self.jobs.remove(&id);
        }
    }
}

/// The pool's state, shared by the [`Pool`](super::Pool), its result
/// handles and its result thread.
pub(super) type PoolCore = Arc<PoolShared>;

pub(super) fn lock(shared: &PoolCore) -> MutexGuard<'_, PoolInner> {
    shared.inner.lock().unwrap_or_else(|e| e.into_inner())
}

/// `Err` in a process that did not make the pool (a fork of it): its
/// handles must not touch the lock there.
pub(super) fn check_creator(shared: &PoolCore) -> Result<()> {
    if shared.creator != crate::os::pid() {
        return Err(Error::PoolClosed {
            state: "owned by another process (a pool only works in the process that made it)",
            pid: crate::os::pid(),
        });
    }
    Ok(())
}

/// Waits (the result thread does the work) until `done` says so, or the
/// deadline. `Ok(false)` on the deadline.
pub(super) fn wait_until(
    shared: &PoolCore,
    deadline: Option<Instant>,
    mut done: impl FnMut(&PoolInner) -> bool,
) -> Result<bool> {
    check_creator(shared)?;
    let mut inner = lock(shared);
    // Shown in the wait graph; never a deadlock (workers wait outside it).
    let mut recorded = None;
    loop {
        // First: once interrupted, every wait fails at once, done or not.
        registry::check_interrupt()?;
        if done(&inner) {
            inner.tick_progress();
            return Ok(true);
        }
        if on_result_thread() {
            // A callback waiting for a result would wait for itself.
            return Err(Error::InvalidArgument {
                message: crate::messages::Msg::CallbackWaits.get().into(),
                pid: crate::os::pid(),
            });
        }
        if !inner.thread_running {
            // Nothing would ever change (it ended with the pool).
            return Err(Error::PoolClosed {
                state: "terminated",
                pid: crate::os::pid(),
            });
        }
        let mut slice = registry::POLL_INTERVAL;
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                return Ok(false);
            }
            slice = slice.min(d - now);
        }
        inner.tick_progress();
        let site = crate::waits::record::Site::new(0, crate::waits::Kind::PoolResult);
        let anyone = crate::waits::record::Holder::Anyone;
        recorded
            .get_or_insert_with(|| crate::waits::record::begin(site, anyone, deadline.is_some()));
        inner = shared
            .changed
            .wait_timeout(inner, slice)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Waits up to `slice` for a change of the pool, unless `done` already.
pub(super) fn wait_changed(
    shared: &PoolCore,
    slice: Duration,
    done: impl FnOnce(&PoolInner) -> bool,
) {
    if shared.creator != crate::os::pid() {
        return;
    }
    let inner = lock(shared);
    if done(&inner) || !inner.thread_running {
        return;
    }
    let _ = shared.changed.wait_timeout(inner, slice);
}

pub(super) fn job_done(inner: &PoolInner, job: u64) -> bool {
    inner
        .jobs
        .get(&job)
        .is_none_or(|j| j.remaining == 0 && j.callbacks_left == 0)
}
