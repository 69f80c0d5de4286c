//! The lock word every mutual-exclusion primitive is built on: who holds it,
//! and what happens when the holder is the caller itself or has died.
//!
//! One `AtomicU32` in shared memory holds `0` (free) or the owner's id, with
//! the top bit set when someone sleeps on it — the classic three-state futex
//! mutex, with the owner's identity in place of the "locked" state so a dead
//! owner can be recognised. Taking a free lock is a single compare-and-swap; a
//! contended one sleeps on the futex in slices of
//! [`SLICE`](super::futex::SLICE), checking the interrupt flag and whether the
//! owner died after each slice.
//!
//! # Owner ids
//!
//! | stored id | who holds it | taken by |
//! |---|---|---|
//! | `tid \| GUARDED` | one thread, through a live guard | `Lock::acquire`, `Value::get_lock`, `Array::get_lock`, `Condition::acquire`, every `recover()` |
//! | `pid` | a process, with no guard | `Lock::acquire_no_guard`, `LockGuard::forget`, the queue's and barrier's internal locks |
//! | `tid` | one thread, re-entrantly | `RLock` |
//!
//! Thread ids and pids share one number space (below 2²², Linux's largest
//! `pid_max`), so a dead thread and a dead process are recognised alike.
//! Recording the thread for guards is what lets forja tell a self-deadlock
//! from an honest wait: a thread asking again for a lock it holds through a
//! live guard gets [`Error::WouldDeadlock`] at once (otherwise it would wait
//! for itself forever, and letting it in would make two live `&mut` to the
//! same data), while another thread of the same process, or the same thread
//! after a guard-free acquire, blocks as in Python.
//!
//! # Owner died (user-facing locks)
//!
//! ```text
//!             acquire                         drop guard / release()
//!   FREE ─────────────────────▶ HELD(owner) ─────────────────────────▶ FREE
//!                                   │
//!                                   │ an acquirer finds `owner` dead
//!                                   ▼
//!                          DIED(owner), held by no one
//!                          every acquire, try_acquire and release():
//!                          Err(LockOwnerDied) at once (waiters are woken)
//!                                   │
//!                                   │ recover(), by anyone
//!                                   ▼
//!                          HELD(recoverer), with a guard ──drop──▶ FREE
//! ```
//!
//! This is pthread's `EOWNERDEAD` adapted: the lock is never handed silently
//! to whoever noticed the death, so a `?` on `LockOwnerDied` leaves nobody
//! holding it, and it stays unusable (`ENOTRECOVERABLE`-like) until someone
//! calls `recover()`, checks or repairs the data, and drops the guard.
//! The queue's and barrier's internal locks instead take a dead owner's lock
//! over ([`LockWord::lock`] returns [`Acquired::FromDead`]) and repair their
//! own state.

use super::futex::{self, Woke};
use crate::error::{Error, Result};
use crate::waits::record::{self as waits, Holder, Site};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

const WAITERS: u32 = 1 << 31;
/// Set in an owner id that is a thread holding the lock through a guard.
const GUARDED: u32 = 1 << 30;
/// The bits of an owner id proper (a pid or a tid).
const ID: u32 = GUARDED - 1;
/// The id part of the state "owner died, not recovered" (no pid is this big).
const DIED: u32 = ID;
const SPINS: u32 = 64;

/// The owner id of a guard held by the calling thread.
#[inline]
pub(crate) fn guard_id() -> u32 {
    crate::os::tid() | GUARDED
}

/// Makes a guard `!Send` (it is tied to the thread whose id is in the lock
/// word) while keeping it `Sync`, as `std::sync::MutexGuard` is.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NotSend(PhantomData<*const ()>);

// SAFETY: `NotSend` holds no data; sharing `&NotSend` between threads is
// harmless. It exists only to take `Send` away from the guards.
unsafe impl Sync for NotSend {}

/// How an acquisition went (for the internal locks that take over).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Acquired {
    /// Normally.
    Clean,
    /// By taking over from `dead`, who died holding it.
    FromDead(u32),
}

/// What to do when the owner turns out to be dead.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum OnDeath {
    /// Take the lock over (internal locks).
    TakeOver,
    /// Mark it DIED and report (user-facing locks).
    Report,
}

/// What [`LockWord::release`] did.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Released {
    /// It was held; now it is free.
    Yes,
    /// It was free already.
    NotHeld,
    /// Its owner died and nobody recovered it: left as it is.
    OwnerDied(u32),
}

/// A lock word in shared memory (see the module docs).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct LockWord {
    state: AtomicU32,
    /// The dead owner's id: while the state is DIED, or (internal locks)
    /// after a take-over until [`take_recovery`](Self::take_recovery).
    dead_owner: AtomicU32,
}

impl LockWord {
    pub(crate) const fn new() -> Self {
        LockWord {
            state: AtomicU32::new(0),
            dead_owner: AtomicU32::new(0),
        }
    }

    /// The owner's id (a pid or a tid), if held by someone alive or not yet
    /// found dead; `None` if free or DIED.
    pub(crate) fn owner(&self) -> Option<u32> {
        match self.state.load(Ordering::Relaxed) & ID {
            0 | DIED => None,
            id => Some(id),
        }
    }

    /// The pid of the process holding it, if any (a guard records a thread:
    /// this finds its process).
    pub(crate) fn owner_pid(&self) -> Option<u32> {
        let s = self.state.load(Ordering::Relaxed) & !WAITERS;
        match s & ID {
            0 | DIED => None,
            id if s & GUARDED != 0 => Some(crate::os::pid_of_thread(id)),
            id => Some(id),
        }
    }

    /// Whether anyone holds it, or it is DIED (not free either way).
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & !WAITERS != 0
    }

    /// Whether the calling thread holds it through a live guard.
    pub(crate) fn held_by_my_guard(&self) -> bool {
        self.state.load(Ordering::Relaxed) & !WAITERS == guard_id()
    }

    /// One compare-and-swap: takes the lock if it is free.
    #[inline]
    pub(crate) fn try_lock(&self, me: u32) -> bool {
        self.state
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock for `me`, waiting until `deadline` (`None`: forever),
    /// taking it over if its owner died (internal locks).
    #[inline]
    pub(crate) fn lock(
        &self,
        me: u32,
        deadline: Option<Instant>,
        what: &'static str,
        site: Site,
    ) -> Result<Acquired> {
        if self.try_lock(me) {
            return Ok(Acquired::Clean);
        }
        self.lock_slow(me, deadline, what, OnDeath::TakeOver, site)
    }

    #[cold]
    fn lock_slow(
        &self,
        me: u32,
        deadline: Option<Instant>,
        what: &'static str,
        on_death: OnDeath,
        site: Site,
    ) -> Result<Acquired> {
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0 && self.try_lock(me) {
                return Ok(Acquired::Clean);
            }
        }
        // Recorded in the wait table only once this thread is about to sleep.
        let mut recorded: Option<(waits::Waiting, u32)> = None;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s == 0 {
                // Others may still sleep: keep the waiters bit so the unlock
                // wakes the next one.
                if self
                    .state
                    .compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(Acquired::Clean);
                }
                continue;
            }
            if s & ID == DIED {
                return Err(owner_died(what, self.dead_owner.load(Ordering::Relaxed)));
            }
            if s & WAITERS == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let slice = futex::slice_until(deadline, what)?;
            let holder_id = s & !WAITERS;
            match &mut recorded {
                Some((w, seen)) => {
                    if *seen != holder_id {
                        *seen = holder_id;
                        w.set_holder(lock_holder(holder_id, site));
                    }
                }
                None => {
                    let w = waits::begin(site, lock_holder(holder_id, site), deadline.is_some());
                    recorded = Some((w, holder_id));
                }
            }
            if futex::wait(&self.state, s | WAITERS, slice) == Woke::TimedOut {
                crate::interrupt::check()?;
                if let Some((w, _)) = &mut recorded {
                    w.check()?;
                }
                let owner = s & ID;
                if crate::os::is_dead(owner)
                    && let Some(acquired) = self.after_death(s | WAITERS, owner, me, on_death)
                {
                    return acquired.map_err(|dead| owner_died(what, dead));
                }
            }
        }
    }

    /// `owner` (state `s`) is dead: take over, or mark the lock DIED and wake
    /// every waiter. `None` if the state changed meanwhile (look again).
    #[cold]
    fn after_death(
        &self,
        s: u32,
        owner: u32,
        me: u32,
        on_death: OnDeath,
    ) -> Option<Result<Acquired, u32>> {
        let new = match on_death {
            OnDeath::TakeOver => me | WAITERS,
            OnDeath::Report => DIED | WAITERS,
        };
        // Written first: whoever sees DIED (or takes over) reads it after.
        self.dead_owner.store(owner, Ordering::Relaxed);
        self.state
            .compare_exchange(s, new, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        Some(match on_death {
            OnDeath::TakeOver => Ok(Acquired::FromDead(owner)),
            OnDeath::Report => {
                futex::wake(&self.state, u32::MAX);
                Err(owner)
            }
        })
    }

    /// Releases an internal lock whoever holds it; `false` if it was free.
    #[inline]
    pub(crate) fn unlock(&self) -> bool {
        if self.dead_owner.load(Ordering::Relaxed) != 0 {
            self.dead_owner.store(0, Ordering::Relaxed);
        }
        let prev = self.state.swap(0, Ordering::Release);
        if prev & WAITERS != 0 {
            futex::wake(&self.state, 1);
        }
        prev != 0
    }

    /// Releases a user-facing lock whoever holds it (Python's `release()`),
    /// but never a DIED one: that needs `recover()`.
    pub(crate) fn release(&self) -> Released {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & !WAITERS == 0 {
                return Released::NotHeld;
            }
            if s & ID == DIED {
                return Released::OwnerDied(self.dead_owner.load(Ordering::Relaxed));
            }
            match self
                .state
                .compare_exchange(s, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if s & WAITERS != 0 {
                        futex::wake(&self.state, 1);
                    }
                    return Released::Yes;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Releases the lock if `me` holds it; `false` (and no change) otherwise.
    #[inline]
    pub(crate) fn unlock_if_owner(&self, me: u32) -> bool {
        match self
            .state
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(s) if s == me | WAITERS => {
                self.state.store(0, Ordering::Release);
                futex::wake(&self.state, 1);
                true
            }
            Err(_) => false,
        }
    }

    /// Hands the lock from owner `from` to owner `to`, keeping the waiters
    /// bit; `false` (and no change) if `from` does not hold it.
    pub(crate) fn hand_over(&self, from: u32, to: u32) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & !WAITERS == from {
            match self.state.compare_exchange(
                s,
                to | (s & WAITERS),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Takes a DIED lock for `me` (`recover()`); returns the dead owner, or
    /// `None` (and no change) if the lock is not DIED.
    pub(crate) fn recover(&self, me: u32) -> Option<u32> {
        let mut s = self.state.load(Ordering::Acquire);
        while s & ID == DIED {
            let dead = self.dead_owner.load(Ordering::Relaxed);
            match self.state.compare_exchange(
                s,
                me | (s & WAITERS),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(dead),
                Err(now) => s = now,
            }
        }
        None
    }

    /// If `me` took this internal lock over from a dead owner and has not
    /// recovered it yet, marks it recovered and returns the dead owner's id.
    pub(crate) fn take_recovery(&self, me: u32) -> Option<u32> {
        if self.owner() != Some(me) {
            return None;
        }
        match self.dead_owner.swap(0, Ordering::Relaxed) {
            0 => None,
            dead => Some(dead),
        }
    }
}

/// Who holds a lock whose state (without the waiters bit) is `s`: a guard's
/// or an RLock's thread, or a process.
fn lock_holder(s: u32, site: Site) -> Holder {
    let is_thread = s & GUARDED != 0 || site.kind == crate::waits::Kind::RLock;
    Holder::of_lock_owner(s & ID, is_thread)
}

fn owner_died(what: &'static str, dead: u32) -> Error {
    Error::LockOwnerDied {
        what,
        pid: dead as i32,
        by: crate::os::pid(),
    }
}

/// Takes a user-facing lock for `me`: `Err(WouldDeadlock)` at once if the
/// calling thread already holds it through a live guard (`hint` says what to
/// do instead), `Err(LockOwnerDied)` if its owner died and nobody called
/// `recover()` yet (the module docs draw the states).
#[inline]
pub(crate) fn lock_or_report(
    word: &LockWord,
    me: u32,
    deadline: Option<Instant>,
    what: &'static str,
    hint: &'static str,
    site: Site,
) -> Result<()> {
    // Every acquire (Lock, RLock, Condition, Value, Array) fails at once
    // after an interrupt.
    crate::interrupt::check()?;
    if word.try_lock(me) {
        return Ok(());
    }
    lock_contended(word, me, deadline, what, hint, site)
}

#[cold]
fn lock_contended(
    word: &LockWord,
    me: u32,
    deadline: Option<Instant>,
    what: &'static str,
    hint: &'static str,
    site: Site,
) -> Result<()> {
    if word.held_by_my_guard() {
        return Err(would_deadlock(what, hint));
    }
    word.lock_slow(me, deadline, what, OnDeath::Report, site)
        .map(|_| ())
}

/// The error for a thread asking for a lock it holds through a live guard.
pub(crate) fn would_deadlock(what: &'static str, hint: &'static str) -> Error {
    Error::WouldDeadlock {
        what,
        pid: crate::os::pid(),
        tid: crate::os::tid() as i32,
        hint,
    }
}
