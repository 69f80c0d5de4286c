//! The child slots: reserving one before a fork (the cap on live
//! children), reaping children (`waitpid`, recorded on the timeline) and
//! listing them ([`children`]).

use super::SLOTS;
use super::layout::{
    EXITED, FLAG_DAEMON, FLAG_HANDLE_DROPPED, FLAG_POOL_WORKER, FREE, REAPING, RESERVED, RUNNING,
    Slot, now_ns,
};
use super::mapping::Registry;
use crate::error::{Error, Result};
use crate::identity::ProcessInfo;
use std::sync::atomic::Ordering;

/// `status` of a child reaped by someone else (`SIGCHLD` ignored...).
pub(crate) const STATUS_UNKNOWN: i32 = i32::MIN;

impl Registry {
    /// Reserves a slot for a child about to be forked; enforces the cap.
    pub(crate) fn reserve(&self, name: &str, daemon: bool, pool_worker: bool) -> Result<usize> {
        let limit = self.header.max_children.load(Ordering::Relaxed).max(1);
        let mut reaped_once = false;
        loop {
            let before = self.header.live.fetch_add(1, Ordering::AcqRel);
            if before < limit {
                break;
            }
            self.header.live.fetch_sub(1, Ordering::AcqRel);
            if reaped_once {
                return Err(Error::TooManyChildren {
                    limit,
                    pid: crate::os::pid(),
                });
            }
            self.reap_all();
            reaped_once = true;
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if slot
                .state
                .compare_exchange(FREE, RESERVED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                slot.pid.store(0, Ordering::Relaxed);
                slot.status.store(0, Ordering::Relaxed);
                let mut flags = 0;
                if daemon {
                    flags |= FLAG_DAEMON;
                }
                if pool_worker {
                    flags |= FLAG_POOL_WORKER;
                }
                slot.flags.store(flags, Ordering::Relaxed);
                slot.cell
                    .store(self.header.cell.load(Ordering::Relaxed), Ordering::Relaxed);
                slot.start_ns.store(now_ns(), Ordering::Relaxed);
                slot.end_ns.store(0, Ordering::Relaxed);
                slot.name.store(name);
                return Ok(i);
            }
        }
        // Every slot holds an exited child whose handle is still alive.
        self.header.live.fetch_sub(1, Ordering::AcqRel);
        Err(Error::TooManyChildren {
            limit: SLOTS as u32,
            pid: crate::os::pid(),
        })
    }

    /// The fork failed: gives the reservation back.
    pub(crate) fn unreserve(&self, slot: usize) {
        self.slots[slot].state.store(FREE, Ordering::Release);
        self.header.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// The fork succeeded: the slot now tracks `pid`.
    pub(crate) fn publish(&self, slot: usize, pid: i32) {
        let s = &self.slots[slot];
        s.pid.store(pid, Ordering::Relaxed);
        s.state.store(RUNNING, Ordering::Release);
    }

    /// Reaps `pid` if it has ended, without blocking. Returns its
    /// Python-style exit code once known ([`STATUS_UNKNOWN`] if someone else
    /// reaped it behind forja's back).
    pub(crate) fn try_reap(&self, slot: usize, pid: i32) -> Option<i32> {
        let s = &self.slots[slot];
        if s.pid.load(Ordering::Acquire) != pid {
            return Some(STATUS_UNKNOWN);
        }
        loop {
            match s.state.load(Ordering::Acquire) {
                EXITED => return Some(s.status.load(Ordering::Acquire)),
                REAPING => std::thread::yield_now(),
                RUNNING => {
                    if s.state
                        .compare_exchange(RUNNING, REAPING, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return self.reap_locked(s, pid);
                    }
                }
                _ => return Some(STATUS_UNKNOWN),
            }
        }
    }

    /// With the slot in `REAPING`: one `waitpid(WNOHANG)`.
    fn reap_locked(&self, s: &Slot, pid: i32) -> Option<i32> {
        let mut status = 0;
        let r = loop {
            // libc, not nix: nix's `waitpid` reaps a child killed by a
            // real-time signal and then fails (its `Signal` has no such
            // number), losing the status.
            // SAFETY: `status` is a live i32 for the call to write; `pid`
            // is our own child, reaped by this slot holder only (REAPING).
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == -1 && nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                continue;
            }
            break r;
        };
        let code = if r == 0 {
            s.state.store(RUNNING, Ordering::Release);
            return None;
        } else if r == pid {
            decode_status(status)
        } else {
            STATUS_UNKNOWN
        };
        s.status.store(code, Ordering::Relaxed);
        s.end_ns.store(now_ns(), Ordering::Relaxed);
        crate::timeline::process_reaped(pid, code);
        s.state.store(EXITED, Ordering::Release);
        self.header.live.fetch_sub(1, Ordering::AcqRel);
        if s.flags.load(Ordering::Relaxed) & FLAG_HANDLE_DROPPED != 0 {
            self.free(s);
        }
        Some(code)
    }

    fn free(&self, s: &Slot) {
        s.pid.store(0, Ordering::Relaxed);
        s.flags.store(0, Ordering::Relaxed);
        s.state.store(FREE, Ordering::Release);
    }

    /// The handle learned the exit code: the slot can be reused.
    pub(crate) fn release(&self, slot: usize, pid: i32) {
        let s = &self.slots[slot];
        if s.pid.load(Ordering::Acquire) == pid && s.state.load(Ordering::Acquire) == EXITED {
            self.free(s);
        }
    }

    /// The handle is gone while the child still runs: whoever reaps it frees
    /// the slot.
    pub(crate) fn handle_dropped(&self, slot: usize, pid: i32) {
        let s = &self.slots[slot];
        if s.pid.load(Ordering::Acquire) != pid {
            return;
        }
        s.flags.fetch_or(FLAG_HANDLE_DROPPED, Ordering::AcqRel);
        // It may have exited in between: reap (and so free) it now.
        if self.try_reap(slot, pid).is_some() {
            self.release(slot, pid);
        }
    }

    /// Reaps the ended children whose handles are gone (no one else will):
    /// a child with a live handle stays a zombie until its handle reaps it.
    pub(crate) fn reap_dropped(&self) {
        for (i, s) in self.slots.iter().enumerate() {
            if s.state.load(Ordering::Acquire) == RUNNING
                && s.flags.load(Ordering::Acquire) & FLAG_HANDLE_DROPPED != 0
            {
                let pid = s.pid.load(Ordering::Acquire);
                if pid > 0 {
                    let _ = self.try_reap(i, pid);
                }
            }
        }
    }

    /// Reaps every child that has ended (exit codes stay for their handles).
    pub(crate) fn reap_all(&self) {
        for (i, s) in self.slots.iter().enumerate() {
            if s.state.load(Ordering::Acquire) == RUNNING {
                let pid = s.pid.load(Ordering::Acquire);
                if pid > 0 {
                    let _ = self.try_reap(i, pid);
                }
            }
        }
    }

    /// Children not yet collected by their handles: running, ended and not
    /// yet reaped (zombies), or reaped with their exit code waiting.
    pub(crate) fn children(&self) -> Vec<ChildRecord> {
        let mut out = Vec::new();
        for s in self.slots {
            let state = s.state.load(Ordering::Acquire);
            if state != RUNNING && state != REAPING && state != EXITED {
                continue;
            }
            let pid = s.pid.load(Ordering::Acquire);
            if pid <= 0 {
                continue;
            }
            let flags = s.flags.load(Ordering::Relaxed);
            let exitcode = (state == EXITED).then(|| s.status.load(Ordering::Relaxed));
            let child_state = match exitcode {
                Some(_) => ChildState::Reaped,
                None if crate::os::proc_stat(pid).is_some_and(|s| s.is_zombie()) => {
                    ChildState::Exited
                }
                None => ChildState::Running,
            };
            let end_ns = s.end_ns.load(Ordering::Relaxed);
            let cell = s.cell.load(Ordering::Relaxed);
            let name = s.name.load();
            let daemon = flags & FLAG_DAEMON != 0;
            #[allow(deprecated)]
            out.push(ChildRecord {
                process: ProcessInfo::new(pid, name.as_str()).with_daemon(daemon),
                pid,
                name,
                daemon,
                pool_worker: flags & FLAG_POOL_WORKER != 0,
                cell,
                #[allow(deprecated)]
                generation: cell,
                start_ns: s.start_ns.load(Ordering::Relaxed),
                exitcode,
                state: child_state,
                end_ns: (exitcode.is_some() && end_ns != 0).then_some(end_ns),
            });
        }
        out
    }

    /// Whether `pid` is an unreaped child in this registry right now.
    pub(super) fn holds_unreaped(&self, pid: i32) -> bool {
        pid > 0
            && self.slots.iter().any(|s| {
                s.pid.load(Ordering::Acquire) == pid
                    && matches!(s.state.load(Ordering::Acquire), RUNNING | REAPING)
            })
    }
}

/// Turns a `waitpid` status into Python's `exitcode`.
pub(crate) fn decode_status(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        STATUS_UNKNOWN
    }
}

/// What became of a child (see [`ChildRecord::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// Still running (its pid is still its own: safe to signal).
    Running,
    /// It has ended but nobody has reaped it yet (a zombie: its pid is still
    /// reserved, its exit code not read yet).
    Exited,
    /// Reaped by forja: its exit code is in [`ChildRecord::exitcode`] and
    /// waits for its handle to collect it. Its pid may belong to another
    /// process by now: never signal it.
    Reaped,
}

/// A child as the registry sees it (see [`children`] and [`Remote::children`](super::Remote::children)).
///
/// ```
/// use forja::registry::ChildState;
/// let p = forja::Process::new(|| std::thread::sleep(std::time::Duration::from_millis(300)));
/// p.start().unwrap();
/// let me = forja::registry::children().unwrap();
/// let rec = me.iter().find(|c| Some(c.process.pid()) == p.pid()).unwrap();
/// assert_eq!(rec.state, ChildState::Running);
/// p.join().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildRecord {
    /// Who it is: pid, name, whether it is a daemon (terminated when this
    /// process exits).
    pub process: ProcessInfo,
    /// Its pid (the same as `process.pid()`).
    #[deprecated(since = "0.1.0", note = "use `process.pid()`")]
    pub pid: i32,
    /// Its name (the same as `process.name()`).
    #[deprecated(since = "0.1.0", note = "use `process.name()`")]
    pub name: String,
    /// Whether it is a daemon (the same as `process.is_daemon()`).
    #[deprecated(since = "0.1.0", note = "use `process.is_daemon()`")]
    pub daemon: bool,
    /// Whether it is a `Pool` worker.
    pub pool_worker: bool,
    /// The kernel cell (execution count) that was current when it started.
    pub cell: u64,
    /// Old name of [`ChildRecord::cell`] (the same number).
    #[deprecated(since = "0.1.0", note = "renamed to `cell` (the kernel's word for it)")]
    pub generation: u64,
    /// When it started, in ns since the Unix epoch.
    pub start_ns: u64,
    /// `Some(code)` if it has ended and been reaped but its handle has not
    /// collected the code yet.
    pub exitcode: Option<i32>,
    /// Running, ended but not reaped, or reaped.
    pub state: ChildState,
    /// When forja reaped it (ns since the Unix epoch), once [`ChildState::Reaped`].
    pub end_ns: Option<u64>,
}

/// Every child of this process not yet collected by its handle (without
/// reaping any).
///
/// ```
/// assert!(forja::registry::children().unwrap().is_empty());
/// ```
pub fn children() -> Result<Vec<ChildRecord>> {
    Ok(Registry::current()?.children())
}
