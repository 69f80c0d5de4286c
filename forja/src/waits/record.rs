//! Recording a wait: the guard a blocking forja call holds while it sleeps
//! (it claims a slot of the wait table, says what it waits on and who holds
//! it, and gives the slot back when the wait ends), and the hooks called at
//! fork. A call that does not sleep never gets here.

use super::detect::Scanner;
pub(crate) use super::kind::Site;
use super::table::{self, OWNED, TIMED, WaitSlot};
use crate::error::Result;
use std::sync::atomic::Ordering;

/// Who must act for a wait to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Any process of the tree (an event, a queue, a pipe...).
    Anyone,
    /// Whoever holds it, and nobody does right now.
    Free,
    /// One thread (a lock held through a guard, an RLock); readers find
    /// its process.
    Thread(i32),
    /// One process that must end (a process being joined).
    Process(i32),
    /// A process holds it, but any process may release it (a lock taken
    /// without a guard, as Python's `release()` from anywhere): shown as
    /// held by it, and a deadlock only when the whole tree is stuck.
    Releasable(i32),
}

impl Holder {
    /// The holder of a lock whose word holds owner id `id` (0: free);
    /// `is_thread`: the id is a thread's (a guard, an RLock), else a
    /// process's.
    pub(crate) fn of_lock_owner(id: u32, is_thread: bool) -> Holder {
        match id {
            0 => Holder::Free,
            id if is_thread => Holder::Thread(id as i32),
            id => Holder::Releasable(id as i32),
        }
    }
}

/// A wait being recorded; dropping it ends the record.
pub(crate) struct Waiting {
    slot: Option<&'static WaitSlot>,
    timed: bool,
    holder: Holder,
    scanner: Scanner,
}

/// Starts recording that the calling thread is about to sleep on `site`.
/// Costs one table lookup (cached), one compare-and-swap and a few stores.
pub(crate) fn begin(site: Site, holder: Holder, timed: bool) -> Waiting {
    let slot = table::current().ok().and_then(|t| {
        let pid = crate::os::pid();
        let tid = crate::os::tid();
        let slot = t.claim(tid)?;
        slot.tid.store(tid as i32, Ordering::Relaxed);
        slot.prim.store(site.id, Ordering::Relaxed);
        slot.kind.store(site.kind as u32, Ordering::Relaxed);
        let owned = if matches!(holder, Holder::Anyone | Holder::Releasable(_)) {
            0
        } else {
            OWNED
        };
        slot.flags
            .store(if timed { TIMED } else { 0 } | owned, Ordering::Relaxed);
        store_holder(slot, holder);
        slot.since_ns.store(table::now_ns(), Ordering::Relaxed);
        slot.pid.store(pid, Ordering::Release);
        Some(slot)
    });
    Waiting {
        slot,
        timed,
        holder,
        scanner: Scanner::default(),
    }
}

fn store_holder(slot: &WaitSlot, holder: Holder) {
    let (pid, tid) = match holder {
        Holder::Anyone | Holder::Free => (0, 0),
        Holder::Thread(tid) => (0, tid),
        Holder::Process(pid) | Holder::Releasable(pid) => (pid, 0),
    };
    slot.holder_pid.store(pid, Ordering::Relaxed);
    slot.holder_tid.store(tid, Ordering::Relaxed);
}

impl Waiting {
    /// The holder changed (a lock passed to someone else while we waited).
    pub(crate) fn set_holder(&mut self, holder: Holder) {
        if holder != self.holder {
            self.holder = holder;
            if let Some(slot) = self.slot {
                store_holder(slot, holder);
                let owned = !matches!(holder, Holder::Anyone | Holder::Releasable(_));
                let timed = if self.timed { TIMED } else { 0 };
                slot.flags
                    .store(timed | if owned { OWNED } else { 0 }, Ordering::Relaxed);
            }
        }
    }

    /// Called after each sleep slice of the wait: for an untimed wait, looks
    /// for a deadlock now and then (see `detect.rs`), and reports one this
    /// thread is part of as [`Error::Deadlock`](crate::Error::Deadlock).
    pub(crate) fn check(&mut self) -> Result<()> {
        if self.timed || self.slot.is_none() {
            return Ok(());
        }
        self.scanner.poll()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            slot.pid.store(0, Ordering::Release);
            if let Some(t) = table::existing() {
                t.header.progress.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Right before a fork: makes sure the table exists, so the child inherits
/// it (the forking process becomes the root if it had none).
pub(crate) fn before_fork() {
    let _ = table::current();
}

/// In the parent, after forking `pid`.
pub(crate) fn process_started(pid: i32, name: &str) {
    if let Some(t) = table::existing() {
        t.add_process(pid, name);
    }
}
