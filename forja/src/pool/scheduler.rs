//! The pool's state and its scheduler: queueing a job's chunks, handing
//! them to workers that have their code, collecting what comes back,
//! replacing dead workers, and the wait loop (with its progress display)
//! that every blocking call goes through.

use super::outcome::{ChunkOutcome, Fail};
use super::protocol::{
    FROM_WORKER_INIT_FAILED, FROM_WORKER_READY, FROM_WORKER_RESULT, RESULT_ALL_OK, RESULT_FAILED,
    TO_WORKER_STOP,
};
use super::task::loaded_objects_stamp;
use super::worker::{Initializer, PoolContext, Worker, reap_soon};
use crate::error::{Error, Result};
use crate::registry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One submitted call (`map`, `apply_async`...): its chunks' outcomes.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) chunks: Vec<ChunkOutcome>,
    pub(super) remaining: usize,
    /// Chunks finished, in the order they finished (for imap_unordered).
    pub(super) finished: VecDeque<usize>,
    /// Its handle is gone: drop the job once every chunk is in.
    pub(super) abandoned: bool,
}

/// One chunk waiting for a worker.
pub(super) struct Task {
    job: u64,
    chunk: usize,
    /// Loader stamp when it was submitted: only workers forked at or after
    /// it have its code.
    stamp: u64,
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
    size: usize,
    initializer: Option<Initializer>,
    /// The pool's context: every worker forked, now or later, inherits it.
    context: PoolContext,
    pub(super) workers: Vec<Worker>,
    pub(super) queue: VecDeque<Task>,
    pub(super) jobs: HashMap<u64, Job>,
    next_job: u64,
    pub(super) state: PoolState,
    broken: Option<Fail>,
    creator: i32,
    pub(super) worker_starts: u64,
    /// Live progress display of long waits (in the kernel).
    progress: crate::rich::Progress,
}

impl PoolInner {
    /// An open pool of `size` workers, none forked yet.
    pub(super) fn new(
        size: usize,
        initializer: Option<Initializer>,
        context: PoolContext,
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
            progress: crate::rich::Progress::default(),
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
        let worker = Worker::spawn(self.initializer.clone(), self.context.clone(), stamp)?;
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
        let mut current = self.workers.iter().filter(|w| !w.retiring).count();
        while current < self.size {
            self.spawn_worker(stamp.max(loaded_objects_stamp()))?;
            current += 1;
        }
        Ok(())
    }

    pub(super) fn submit(&mut self, messages: Vec<Vec<u8>>) -> Result<u64> {
        self.check_usable()?;
        registry::check_interrupt()?;
        let stamp = loaded_objects_stamp();
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
            },
        );
        self.dispatch();
        Ok(job)
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
    pub(super) fn pump(&mut self, max_wait: Duration) -> Result<()> {
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
        // SAFETY: a valid array of pollfds.
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

    pub(super) fn terminate(&mut self) {
        if self.state == PoolState::Terminated {
            return;
        }
        self.state = PoolState::Terminated;
        if self.creator != crate::os::pid() {
            return;
        }
        for w in &self.workers {
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(w.pid, libc::SIGTERM) };
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
                // SAFETY: as above; SIGKILL cannot be ignored.
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

pub(super) type Shared = Arc<Mutex<PoolInner>>;

pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, PoolInner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pumps until `done` says so, or the deadline. `Ok(false)` on the deadline.
pub(super) fn wait_until(
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

pub(super) fn job_done(inner: &PoolInner, job: u64) -> bool {
    inner.jobs.get(&job).is_none_or(|j| j.remaining == 0)
}
