//! The pool's result thread (Python's result handler): in the parent, it
//! polls the workers' sockets, hands queued chunks to workers, stores what
//! comes back, replaces workers that ended, and runs the callbacks — so
//! results make progress while the parent does other work.
//!
//! It never holds the pool's `Mutex` while it polls or forks: it takes the
//! lock to see what to poll, polls without it, and takes it again to read
//! what arrived. Replacement workers are forked without the lock too (a
//! fork takes stdout's lock, and a `println!("{pool:?}")` on another thread
//! takes the two the other way round). The worker never touches the pool's
//! `Mutex` (it runs `worker_main` with its socket, the initializer and the
//! context only), so a fork while another thread holds it cannot block the
//! worker. The thread does not exist in a forked child: the pool's handles
//! check the pid they were made in before they lock anything.

use super::outcome::Fail;
use super::scheduler::{PoolCore, PoolInner, PoolState, lock};
use super::worker::{Worker, reap_soon};
use crate::error::Result;
use crate::fork::panic_message;
use crate::registry;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How long the thread polls at most before it looks at the pool again
/// (every change it must see also writes the wake fd: this is a safety net).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Starts the result thread of `shared`.
pub(super) fn start(shared: PoolCore) -> std::io::Result<std::thread::JoinHandle<()>> {
    // A forja-owned thread (`forja/poolres`): forking while it runs does not
    // warn, and the worker it forks never touches the pool's lock.
    crate::os::spawn_owned("poolres", move || {
        super::wake::mark_result_thread();
        let body = std::panic::AssertUnwindSafe(|| run(&shared));
        if let Err(payload) = std::panic::catch_unwind(body) {
            let message = panic_message(&*payload);
            let mut inner = lock(&shared);
            inner.result_thread_failed(message);
            inner.thread_running = false;
            drop(inner);
            shared.changed.notify_all();
        }
    })
}

fn run(shared: &PoolCore) {
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    let mut pids: Vec<i32> = Vec::new();
    loop {
        let mut inner = lock(shared);
        if inner.result_thread_done() {
            inner.thread_running = false;
            drop(inner);
            shared.changed.notify_all();
            return;
        }
        // 1. Callbacks, in the order their jobs finished, without the lock.
        if !inner.callback_queue.is_empty() {
            let batch: Vec<_> = inner.callback_queue.drain(..).collect();
            drop(inner);
            run_callbacks(shared, batch);
            continue;
        }
        // 2. Workers that ended (or reached maxtasksperchild): replace them,
        // forking without the lock.
        if let Some(plan) = inner.replacement_plan() {
            drop(inner);
            let made: Vec<_> = (0..plan.count)
                .map(|_| {
                    Worker::spawn(
                        plan.initializer.clone(),
                        plan.context.clone(),
                        plan.stamp,
                        plan.max_tasks,
                    )
                })
                .collect();
            lock(shared).adopt_workers(made, plan.count);
            shared.changed.notify_all();
            continue;
        }
        // 3. Poll the workers' sockets (and the wake fd) without the lock.
        inner.dispatch();
        pfds.clear();
        pids.clear();
        for w in &inner.workers {
            pfds.push(libc::pollfd {
                fd: w.io.raw_fd(),
                events: libc::POLLIN | if w.io.wants_write() { libc::POLLOUT } else { 0 },
                revents: 0,
            });
            pids.push(w.pid);
        }
        pfds.push(libc::pollfd {
            fd: shared.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        drop(inner);
        let ms = IDLE_POLL.as_millis() as libc::c_int;
        // libc, not nix: nix's `PollFd` borrows each fd for the call, and a
        // worker's fd may be closed (and its number reused) while we poll,
        // which no borrow can promise against. Readiness is only a hint,
        // looked up again by pid under the lock, and every read is
        // non-blocking.
        // SAFETY: `pfds` is a live array of `pfds.len()` pollfds; poll only
        // writes their `revents`. A closed fd is not undefined behaviour for
        // poll (it reports POLLNVAL).
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if r <= 0 {
            continue; // timeout or EINTR: look again
        }
        if pfds.last().is_some_and(|p| p.revents != 0) {
            shared.wake.drain();
        }
        let ready: Vec<(i32, libc::c_short)> = pids
            .iter()
            .zip(&pfds)
            .filter(|(_, p)| p.revents != 0)
            .map(|(&pid, p)| (pid, p.revents))
            .collect();
        if ready.is_empty() {
            continue;
        }
        let mut inner = lock(shared);
        inner.handle_ready(&ready);
        inner.dispatch();
        drop(inner);
        shared.changed.notify_all();
    }
}

/// Runs prepared callbacks (decoded under the lock when their job
/// finished), then marks each job's callback as done.
fn run_callbacks(shared: &PoolCore, batch: Vec<(u64, Box<dyn FnOnce() + Send>)>) {
    for (job, callback) in batch {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback)) {
            eprintln!(
                "forja: a pool callback panicked (process {}): {}",
                crate::os::pid(),
                panic_message(&*payload)
            );
        }
        lock(shared).callback_ran(job);
        shared.changed.notify_all();
    }
}

/// What the result thread needs to fork replacement workers without the
/// pool's lock.
pub(super) struct Replacement {
    pub(super) count: usize,
    pub(super) stamp: u64,
    pub(super) initializer: Option<super::worker::Initializer>,
    pub(super) context: super::worker::PoolContext,
    pub(super) max_tasks: Option<usize>,
}

impl PoolInner {
    /// Workers to fork so that `size` serve (the result thread forks them
    /// without the lock, then [`adopt_workers`](Self::adopt_workers)):
    /// after a worker died or reached `maxtasksperchild`. `None` if none
    /// are needed, or none may be made now.
    pub(super) fn replacement_plan(&mut self) -> Option<Replacement> {
        if self.state == PoolState::Terminated
            || self.broken.is_some()
            || registry::interrupted()
            || (self.state == PoolState::Closed && self.queue.is_empty())
        {
            return None;
        }
        let serving = self.workers.iter().filter(|w| !w.retiring).count() + self.spawning;
        let count = self.size.checked_sub(serving).filter(|&n| n > 0)?;
        let stamp = self
            .workers
            .iter()
            .map(|w| w.stamp)
            .chain(self.queue.iter().map(|t| t.stamp))
            .max()
            .unwrap_or(0)
            .max(self.last_stamp);
        self.spawning += count;
        Some(Replacement {
            count,
            stamp,
            initializer: self.initializer.clone(),
            context: self.context.clone(),
            max_tasks: self.max_tasks,
        })
    }

    /// Takes the workers the result thread forked for a
    /// [`Replacement`] of `count`.
    pub(super) fn adopt_workers(&mut self, made: Vec<Result<Worker>>, count: usize) {
        self.spawning -= count;
        for worker in made {
            match worker {
                Ok(mut w) => {
                    self.worker_starts += 1;
                    let serving = self.workers.iter().filter(|w| !w.retiring).count();
                    if self.state == PoolState::Terminated {
                        // Our own unreaped child: the pid is still its.
                        let _ = kill(Pid::from_raw(w.pid), Signal::SIGKILL);
                        reap_soon(w.slot, w.pid, Duration::from_secs(2));
                        continue;
                    }
                    if serving >= self.size || w.stamp < self.last_stamp {
                        w.retiring = true; // a re-fork overtook it: it stops when idle
                    }
                    self.workers.push(w);
                }
                Err(e) => {
                    self.broken = Some(Fail::SpawnFailed {
                        message: crate::messages::Msg::ReplacementFailed.fill(&[("error", &e)]),
                    });
                    self.fail_queued(self.broken.clone().expect("just set"));
                }
            }
        }
    }

    /// The result thread panicked (a bug): every task fails with why.
    pub(super) fn result_thread_failed(&mut self, message: String) {
        self.broken = Some(Fail::SpawnFailed {
            message: crate::messages::Msg::ResultThreadPanicked.fill(&[("message", &message)]),
        });
        self.terminate();
    }

    /// Reads and writes the workers that `poll` found ready (by pid: the
    /// list may have changed since).
    pub(super) fn handle_ready(&mut self, ready: &[(i32, libc::c_short)]) {
        let mut gone = Vec::new();
        for &(pid, revents) in ready {
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                continue;
            };
            if revents & libc::POLLOUT != 0 && self.workers[i].io.write_some().is_err() {
                gone.push(pid);
                continue;
            }
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && !self.read_worker(i)
            {
                gone.push(pid);
            }
        }
        for pid in gone {
            if let Some(i) = self.workers.iter().position(|w| w.pid == pid) {
                self.worker_gone(i);
            }
        }
    }

    /// Looked at by the result thread after each turn: true once it has
    /// nothing left to do (terminated, or closed with no workers left).
    fn result_thread_done(&self) -> bool {
        match self.state {
            PoolState::Terminated => true,
            PoolState::Closed => {
                self.workers.is_empty()
                    && self.queue.is_empty()
                    && self.callback_queue.is_empty()
                    && self.spawning == 0
            }
            PoolState::Open => false,
        }
    }
}
