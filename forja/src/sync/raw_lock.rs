//! The lock word every mutual-exclusion primitive is built on.
//!
//! One `AtomicU32` in shared memory holds `0` (free) or the owner's id (a pid
//! or a thread id) with the top bit set when someone sleeps on it — the
//! classic three-state futex mutex, with the owner's identity in place of the
//! "locked" state so a dead owner can be recognised. Taking a free lock is a
//! single compare-and-swap; a contended one sleeps on the futex in slices of
//! [`SLICE`](super::futex::SLICE), checking the interrupt flag and whether the
//! owner died after each slice.

use super::futex::{self, Woke};
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

const WAITERS: u32 = 1 << 31;
const SPINS: u32 = 64;

/// How an acquisition went.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Acquired {
    /// Normally.
    Clean,
    /// By taking over from `dead`, who died holding it.
    FromDead(u32),
}

/// A lock word in shared memory (see the module docs).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct LockWord {
    state: AtomicU32,
    /// Pid/tid of the dead owner this lock was taken over from, until the
    /// new owner recovers it (0 = none).
    recovered_from: AtomicU32,
}

impl LockWord {
    pub(crate) const fn new() -> Self {
        LockWord {
            state: AtomicU32::new(0),
            recovered_from: AtomicU32::new(0),
        }
    }

    /// The owner's id, if held.
    pub(crate) fn owner(&self) -> Option<u32> {
        match self.state.load(Ordering::Relaxed) & !WAITERS {
            0 => None,
            id => Some(id),
        }
    }

    /// One compare-and-swap: takes the lock if it is free.
    #[inline]
    pub(crate) fn try_lock(&self, me: u32) -> bool {
        self.state
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock for `me`, waiting until `deadline` (`None`: forever).
    #[inline]
    pub(crate) fn lock(
        &self,
        me: u32,
        deadline: Option<Instant>,
        what: &'static str,
    ) -> Result<Acquired> {
        if self.try_lock(me) {
            return Ok(Acquired::Clean);
        }
        self.lock_slow(me, deadline, what)
    }

    #[cold]
    fn lock_slow(
        &self,
        me: u32,
        deadline: Option<Instant>,
        what: &'static str,
    ) -> Result<Acquired> {
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0 && self.try_lock(me) {
                return Ok(Acquired::Clean);
            }
        }
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
            if s & WAITERS == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let slice = futex::slice_until(deadline, what)?;
            if futex::wait(&self.state, s | WAITERS, slice) == Woke::TimedOut {
                crate::interrupt::check()?;
                let owner = s & !WAITERS;
                if futex::is_dead(owner)
                    && self
                        .state
                        .compare_exchange(
                            s | WAITERS,
                            me | WAITERS,
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    self.recovered_from.store(owner, Ordering::Relaxed);
                    return Ok(Acquired::FromDead(owner));
                }
            }
        }
    }

    /// Releases the lock whoever holds it; `false` if it was not held.
    #[inline]
    pub(crate) fn unlock(&self) -> bool {
        self.clear_recovery();
        let prev = self.state.swap(0, Ordering::Release);
        if prev & WAITERS != 0 {
            futex::wake(&self.state, 1);
        }
        prev != 0
    }

    /// Releases the lock if `me` holds it; `false` (and no change) otherwise.
    #[inline]
    pub(crate) fn unlock_if_owner(&self, me: u32) -> bool {
        self.clear_recovery();
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

    #[inline]
    fn clear_recovery(&self) {
        if self.recovered_from.load(Ordering::Relaxed) != 0 {
            self.recovered_from.store(0, Ordering::Relaxed);
        }
    }

    /// If `me` took this lock over from a dead owner and has not recovered it
    /// yet, marks it recovered and returns the dead owner's id.
    pub(crate) fn take_recovery(&self, me: u32) -> Option<u32> {
        if self.owner() != Some(me) {
            return None;
        }
        match self.recovered_from.swap(0, Ordering::Relaxed) {
            0 => None,
            dead => Some(dead),
        }
    }

    /// Whether a recovery is pending for `me`.
    pub(crate) fn recovery_pending(&self, me: u32) -> bool {
        self.owner() == Some(me) && self.recovered_from.load(Ordering::Relaxed) != 0
    }
}

/// Takes `word` for `me`, turning a take-over from a dead owner into
/// `Error::LockOwnerDied` (the lock is then held by `me`, recovery pending).
pub(crate) fn lock_or_report(
    word: &LockWord,
    me: u32,
    deadline: Option<Instant>,
    what: &'static str,
) -> Result<()> {
    // Every acquire (Lock, RLock, Condition, Value, Array) fails at once
    // after an interrupt.
    crate::interrupt::check()?;
    if word.try_lock(me) {
        return Ok(());
    }
    if word.recovery_pending(me) {
        word.take_recovery(me);
        return Ok(());
    }
    match word.lock(me, deadline, what)? {
        Acquired::Clean => Ok(()),
        Acquired::FromDead(pid) => Err(Error::LockOwnerDied {
            what,
            pid: pid as i32,
            by: me as i32,
        }),
    }
}
