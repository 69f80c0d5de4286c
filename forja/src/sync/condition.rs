//! [`Condition`]: wait until another process says something changed
//! (Python's `multiprocessing.Condition`).
//!
//! A condition pairs a [`Lock`] with a wait queue. Waiting releases the lock
//! while asleep and takes it back before returning. As with POSIX condition
//! variables a waiter may wake without a notify meant for it, so always
//! re-check the condition — [`ConditionGuard::wait_for`] does that for you.

use super::futex::{self, SLICE};
use super::lock::Lock;
use super::raw_lock::{NotSend, guard_id, lock_or_report};
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const WHAT: &str = "a Condition's lock";
const HINT: &str = "wait and notify through the guard you hold, or drop it before acquiring \
                    again (a Condition's lock is a Lock, not an RLock as in Python)";

/// Bookkeeping changed only while holding the condition's lock (except
/// `seq`, the futex word sleepers watch).
#[derive(Debug, Default)]
#[repr(C)]
struct CondState {
    seq: AtomicU32,
    waiters: AtomicU32,
    to_wake: AtomicU32,
}

/// A condition variable shared by processes forked after it was made.
///
/// ```
/// let cond = forja::Condition::new().unwrap();
/// let mut guard = cond.acquire().unwrap();
/// guard.notify_all(); // nobody waits: nothing happens
/// // wait_timeout gives Ok(false) when nobody notified in time.
/// assert!(!guard.wait_timeout(std::time::Duration::from_millis(5)).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct Condition {
    lock: Lock,
    state: ShmBox<CondState>,
    id: u32,
}

crate::waits::names::named!([] Condition, crate::waits::Kind::Condition, id);

/// Holds a [`Condition`]'s lock; wait and notify through it.
///
/// ```
/// let cond = forja::Condition::new().unwrap();
/// let guard = cond.acquire().unwrap();
/// guard.notify();
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    held: bool,
    /// The owner id in the lock word: this thread, through a guard.
    me: u32,
    _not_send: NotSend,
}

impl<'a> ConditionGuard<'a> {
    fn new(cond: &'a Condition, me: u32) -> Self {
        ConditionGuard {
            cond,
            held: true,
            me,
            _not_send: NotSend::default(),
        }
    }
}

impl Condition {
    /// Makes a condition with its own new [`Lock`].
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// # let _ = cond;
    /// ```
    #[track_caller]
    pub fn new() -> Result<Condition> {
        crate::located::located(Self::new_body(), "Condition::new")
    }

    fn new_body() -> Result<Condition> {
        Condition::with_lock(&Lock::new()?)
    }

    /// Makes a condition using an existing `lock` (shared: the same lock).
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// let cond = forja::Condition::with_lock(&lock).unwrap();
    /// let _g = cond.acquire().unwrap();
    /// assert!(lock.is_locked());
    /// ```
    #[track_caller]
    pub fn with_lock(lock: &Lock) -> Result<Condition> {
        crate::located::located(Self::with_lock_body(lock), "Condition::with_lock")
    }

    fn with_lock_body(lock: &Lock) -> Result<Condition> {
        // SAFETY: atomics.
        let state = unsafe { ShmBox::new(CondState::default(), 0, 1)? };
        Ok(Condition {
            lock: lock.clone(),
            state,
            id: crate::waits::names::new_id(crate::waits::Kind::Condition),
        })
    }

    /// The lock this condition uses.
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// assert!(!cond.lock().is_locked());
    /// ```
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Takes the lock; the guard lets you wait and notify.
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// let _g = cond.acquire().unwrap();
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> Result<ConditionGuard<'_>> {
        crate::located::located(self.acquire_body(), "Condition::acquire")
    }

    fn acquire_body(&self) -> Result<ConditionGuard<'_>> {
        let me = guard_id();
        lock_or_report(self.lock.word(), me, None, WHAT, HINT, self.wait_site())?;
        Ok(ConditionGuard::new(self, me))
    }

    /// Like [`acquire`](Condition::acquire), giving up with
    /// [`Error::Timeout`] after `timeout`.
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// let _g = cond.acquire_timeout(std::time::Duration::from_millis(5)).unwrap();
    /// ```
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<ConditionGuard<'_>> {
        crate::located::located(
            self.acquire_timeout_body(timeout),
            "Condition::acquire_timeout",
        )
    }

    fn acquire_timeout_body(&self, timeout: Duration) -> Result<ConditionGuard<'_>> {
        let me = guard_id();
        lock_or_report(
            self.lock.word(),
            me,
            crate::deadline::deadline(timeout),
            WHAT,
            HINT,
            self.wait_site(),
        )?;
        Ok(ConditionGuard::new(self, me))
    }

    /// After [`Error::LockOwnerDied`], takes the lock whose holder died and
    /// gives its guard; check the shared state, then drop it.
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// assert!(cond.recover().is_err()); // nobody died
    /// ```
    #[track_caller]
    pub fn recover(&self) -> Result<ConditionGuard<'_>> {
        crate::located::located(self.recover_body(), "Condition::recover")
    }

    fn recover_body(&self) -> Result<ConditionGuard<'_>> {
        let me = guard_id();
        match self.lock.word().recover(me) {
            Some(_) => Ok(ConditionGuard::new(self, me)),
            None => Err(Error::NothingToRecover {
                what: WHAT,
                pid: crate::os::pid(),
            }),
        }
    }
}

impl ConditionGuard<'_> {
    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<bool> {
        crate::interrupt::check()?;
        let st = &*self.cond.state;
        let word = self.cond.lock.word();
        let me = self.me;
        st.waiters.fetch_add(1, Ordering::Relaxed);
        let mut recorded = crate::waits::record::begin(
            self.cond.wait_site(),
            crate::waits::record::Holder::Anyone,
            deadline.is_some(),
        );
        loop {
            let seq = st.seq.load(Ordering::Relaxed);
            word.unlock_if_owner(me);
            self.held = false;
            let slice = match deadline {
                None => Some(futex::UNTIMED_SLICE),
                Some(d) => d
                    .checked_duration_since(Instant::now())
                    .map(|r| r.min(SLICE)),
            };
            let timed_out = match slice {
                Some(s) if !s.is_zero() => futex::wait(&st.seq, seq, s) == futex::Woke::TimedOut,
                _ => true,
            };
            let relocked = lock_or_report(word, me, None, WHAT, HINT, self.cond.wait_site());
            self.held = relocked.is_ok();
            if !self.held {
                // Interrupted, or the lock's holder died meanwhile
                // (LockOwnerDied: nobody holds it until recover()).
                st.waiters.fetch_sub(1, Ordering::Relaxed);
                return relocked.map(|_| false);
            }
            let to_wake = st.to_wake.load(Ordering::Relaxed);
            if to_wake > 0 {
                st.to_wake.store(to_wake - 1, Ordering::Relaxed);
                st.waiters.fetch_sub(1, Ordering::Relaxed);
                return relocked.map(|_| true);
            }
            let expired = deadline.is_some_and(|d| Instant::now() >= d);
            let interrupted = if timed_out {
                crate::interrupt::check()
                    .and_then(|()| recorded.check())
                    .err()
            } else {
                None
            };
            if expired || interrupted.is_some() {
                st.waiters.fetch_sub(1, Ordering::Relaxed);
                return match interrupted {
                    Some(e) => Err(e),
                    None => Ok(false),
                };
            }
        }
    }

    /// Releases the lock, sleeps until notified, and takes the lock back.
    ///
    /// ```no_run
    /// let cond = forja::Condition::new().unwrap();
    /// let mut g = cond.acquire().unwrap();
    /// g.wait().unwrap(); // until another process calls notify()
    /// ```
    #[track_caller]
    pub fn wait(&mut self) -> Result<()> {
        crate::located::located(self.wait_body(), "ConditionGuard::wait")
    }

    fn wait_body(&mut self) -> Result<()> {
        self.wait_until(None).map(|_| ())
    }

    /// Like [`wait`](ConditionGuard::wait) for at most `timeout`: `Ok(true)`
    /// if notified, `Ok(false)` if time ran out (the lock is held again
    /// either way).
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// let mut g = cond.acquire().unwrap();
    /// assert!(!g.wait_timeout(std::time::Duration::from_millis(5)).unwrap());
    /// ```
    #[track_caller]
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool> {
        crate::located::located(
            self.wait_timeout_body(timeout),
            "ConditionGuard::wait_timeout",
        )
    }

    fn wait_timeout_body(&mut self, timeout: Duration) -> Result<bool> {
        self.wait_until(crate::deadline::deadline(timeout))
    }

    /// Waits until `ready()` is true (checked with the lock held, before the
    /// first wait and after every wake-up).
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// let mut g = cond.acquire().unwrap();
    /// g.wait_for(|| true).unwrap(); // already true: no wait
    /// ```
    #[track_caller]
    pub fn wait_for(&mut self, ready: impl FnMut() -> bool) -> Result<()> {
        crate::located::located(self.wait_for_body(ready), "ConditionGuard::wait_for")
    }

    fn wait_for_body(&mut self, mut ready: impl FnMut() -> bool) -> Result<()> {
        while !ready() {
            self.wait()?;
        }
        Ok(())
    }

    /// Like [`wait_for`](ConditionGuard::wait_for) for at most `timeout`;
    /// returns the last value of `ready()`.
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// let mut g = cond.acquire().unwrap();
    /// let ok = g.wait_for_timeout(|| false, std::time::Duration::from_millis(5)).unwrap();
    /// assert!(!ok);
    /// ```
    #[track_caller]
    pub fn wait_for_timeout(
        &mut self,
        ready: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool> {
        crate::located::located(
            self.wait_for_timeout_body(ready, timeout),
            "ConditionGuard::wait_for_timeout",
        )
    }

    fn wait_for_timeout_body(
        &mut self,
        mut ready: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool> {
        let deadline = crate::deadline::deadline(timeout);
        loop {
            if ready() {
                return Ok(true);
            }
            if !self.wait_until(deadline)? && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(ready());
            }
        }
    }

    /// Wakes one waiting process, if any.
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// cond.acquire().unwrap().notify();
    /// ```
    pub fn notify(&self) {
        self.notify_n(1);
    }

    /// Wakes up to `n` waiting processes.
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// cond.acquire().unwrap().notify_n(3);
    /// ```
    pub fn notify_n(&self, n: u32) {
        let st = &*self.cond.state;
        let waiters = st.waiters.load(Ordering::Relaxed);
        let pending = st.to_wake.load(Ordering::Relaxed);
        let k = n.min(waiters.saturating_sub(pending));
        if k > 0 {
            st.to_wake.store(pending + k, Ordering::Relaxed);
            st.seq.fetch_add(1, Ordering::Release);
            futex::wake(&st.seq, k);
        }
    }

    /// Wakes every waiting process.
    ///
    /// ```
    /// let cond = forja::Condition::new().unwrap();
    /// cond.acquire().unwrap().notify_all();
    /// ```
    pub fn notify_all(&self) {
        self.notify_n(u32::MAX);
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            self.cond.lock.word().unlock_if_owner(self.me);
        }
    }
}
