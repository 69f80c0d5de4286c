//! [`Lock`]: mutual exclusion between processes (Python's
//! `multiprocessing.Lock`).
//!
//! The lock lives in shared memory made when it is created, so create it
//! before forking the processes that use it. A free lock is taken with one
//! compare-and-swap; a contended one sleeps on a futex.
//!
//! Two things never hang, unlike in Python: a thread asking again for a lock
//! it holds through a live guard gets
//! [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) at once, and if the
//! holder dies every acquirer gets
//! [`Error::LockOwnerDied`](crate::Error::LockOwnerDied) until someone calls
//! [`Lock::recover`] (the states are drawn in `raw_lock.rs`'s module docs).

use super::raw_lock::{LockWord, NotSend, Released, guard_id, lock_or_report};
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use crate::waits::Kind;
use std::time::Duration;

const WHAT: &str = "a Lock";
const HINT: &str = "drop the guard before acquiring again (a block `{ let _g = lock.acquire()?; \
                    ... }` ends it), or use an RLock if this thread must take it again";

/// A lock shared by processes forked after it was made.
///
/// Unlike Rust's `Mutex` it does not own the data it protects (as in Python):
/// use [`Value`](crate::Value) or [`Array`](crate::Array) for locked data.
/// Any process may [`release`](Lock::release) it, as in Python.
///
/// ```
/// use forja::prelude::*;
///
/// let lock = Lock::new().unwrap();
/// {
///     let _guard = lock.acquire().unwrap();
///     assert!(lock.is_locked());
/// } // released here
/// assert!(!lock.is_locked());
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    word: ShmBox<LockWord>,
    id: u32,
}

crate::waits::names::named!([] Lock, Kind::Lock, id);

/// Holds a [`Lock`]; dropping it releases the lock.
///
/// ```
/// let lock = forja::Lock::new().unwrap();
/// let guard = lock.acquire().unwrap();
/// drop(guard);
/// assert!(!lock.is_locked());
/// ```
///
/// The guard belongs to the thread that took it, so it cannot be sent to
/// another thread (the compiler says error E0277, "`*const ()` cannot be sent
/// between threads safely"):
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// let lock = forja::Lock::new().unwrap();
/// send(lock.acquire().unwrap());
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    /// The owner id in the lock word: this thread, through a guard.
    me: u32,
    _not_send: NotSend,
}

impl<'a> LockGuard<'a> {
    fn new(lock: &'a Lock, me: u32) -> Self {
        LockGuard {
            lock,
            me,
            _not_send: NotSend::default(),
        }
    }
}

impl Lock {
    /// Makes a new, free lock in shared memory.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// assert!(!lock.is_locked());
    /// ```
    #[track_caller]
    pub fn new() -> Result<Lock> {
        crate::located::located(Self::new_body(), "Lock::new")
    }

    fn new_body() -> Result<Lock> {
        // SAFETY: LockWord is made of atomics.
        let word = unsafe { ShmBox::new(LockWord::new(), 0, 1)? };
        Ok(Lock {
            word,
            id: crate::waits::names::new_id(Kind::Lock),
        })
    }

    pub(crate) fn word(&self) -> &LockWord {
        &self.word
    }

    /// Waits until the lock is free and takes it (Python's `with lock:`).
    ///
    /// If this thread already holds it through a live guard, this is
    /// [`Error::WouldDeadlock`] at once. If its holder died, this is
    /// [`Error::LockOwnerDied`] until someone calls
    /// [`recover`](Lock::recover); nobody holds the lock meanwhile.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// let guard = lock.acquire().unwrap();
    /// assert_eq!(lock.owner(), Some(std::process::id() as i32));
    /// // Again from the same thread: an error, not a hang.
    /// assert!(matches!(lock.acquire(), Err(forja::Error::WouldDeadlock { .. })));
    /// # drop(guard);
    /// ```
    #[inline]
    #[track_caller]
    pub fn acquire(&self) -> Result<LockGuard<'_>> {
        crate::located::located(self.acquire_body(), "Lock::acquire")
    }

    fn acquire_body(&self) -> Result<LockGuard<'_>> {
        let me = guard_id();
        lock_or_report(&self.word, me, None, WHAT, HINT, self.wait_site())?;
        Ok(LockGuard::new(self, me))
    }

    /// Takes the lock without a guard, as Python's `lock.acquire()` outside
    /// a `with`: it stays held by this process until some process calls
    /// [`release`](Lock::release) — a signal from one process to another.
    /// Like Python, asking again from the same thread waits (until another
    /// process releases it), unless this thread holds it through a live
    /// guard, which is [`Error::WouldDeadlock`].
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// lock.acquire_no_guard().unwrap();
    /// assert!(lock.is_locked());
    /// lock.release().unwrap(); // any process may do this
    /// assert!(!lock.is_locked());
    /// ```
    #[track_caller]
    pub fn acquire_no_guard(&self) -> Result<()> {
        crate::located::located(self.acquire_no_guard_body(), "Lock::acquire_no_guard")
    }

    fn acquire_no_guard_body(&self) -> Result<()> {
        lock_or_report(
            &self.word,
            crate::os::pid() as u32,
            None,
            WHAT,
            HINT,
            self.wait_site(),
        )
    }

    /// Like [`acquire`](Lock::acquire), giving up with
    /// [`Error::Timeout`] after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = forja::Lock::new().unwrap();
    /// lock.acquire_no_guard().unwrap(); // held until someone releases it
    /// let again = lock.acquire_timeout(Duration::from_millis(10));
    /// assert!(matches!(again, Err(forja::Error::Timeout { .. })));
    /// # lock.release().unwrap();
    /// ```
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        crate::located::located(self.acquire_timeout_body(timeout), "Lock::acquire_timeout")
    }

    fn acquire_timeout_body(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        let me = guard_id();
        lock_or_report(
            &self.word,
            me,
            crate::deadline::deadline(timeout),
            WHAT,
            HINT,
            self.wait_site(),
        )?;
        Ok(LockGuard::new(self, me))
    }

    /// Takes the lock only if it is free right now.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// let first = lock.try_acquire();
    /// assert!(first.is_some());
    /// assert!(lock.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        let me = guard_id();
        self.word.try_lock(me).then(|| LockGuard::new(self, me))
    }

    /// Releases the lock, whichever process holds it (as Python allows).
    /// Releasing a free lock is [`Error::NotHeld`]; releasing one whose
    /// holder died is [`Error::LockOwnerDied`] (use [`recover`](Lock::recover)).
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// lock.acquire().unwrap().forget(); // keep it held without a guard
    /// lock.release().unwrap();
    /// assert!(lock.release().is_err()); // not held any more
    /// ```
    #[track_caller]
    pub fn release(&self) -> Result<()> {
        crate::located::located(self.release_body(), "Lock::release")
    }

    fn release_body(&self) -> Result<()> {
        match self.word.release() {
            Released::Yes => Ok(()),
            Released::NotHeld => Err(Error::NotHeld {
                what: WHAT,
                pid: crate::os::pid(),
            }),
            Released::OwnerDied(dead) => Err(Error::LockOwnerDied {
                what: WHAT,
                pid: dead as i32,
                by: crate::os::pid(),
            }),
        }
    }

    /// After [`Error::LockOwnerDied`], takes the lock whose holder died and
    /// gives its guard (any process may call it). Check or repair the
    /// protected data, then drop the guard: the lock works normally again.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// // Nobody died, so there is nothing to recover:
    /// assert!(matches!(lock.recover(), Err(forja::Error::NothingToRecover { .. })));
    /// ```
    #[track_caller]
    pub fn recover(&self) -> Result<LockGuard<'_>> {
        crate::located::located(self.recover_body(), "Lock::recover")
    }

    fn recover_body(&self) -> Result<LockGuard<'_>> {
        let me = guard_id();
        match self.word.recover(me) {
            Some(_) => Ok(LockGuard::new(self, me)),
            None => Err(Error::NothingToRecover {
                what: WHAT,
                pid: crate::os::pid(),
            }),
        }
    }

    /// Whether the lock is taken right now (by some process, or left by a
    /// holder that died and not recovered yet).
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// assert!(!lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.word.is_locked()
    }

    /// The pid of the process holding the lock, if any (`None` also after
    /// its holder died, until [`recover`](Lock::recover)).
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// assert_eq!(lock.owner(), None);
    /// ```
    pub fn owner(&self) -> Option<i32> {
        self.word.owner_pid().map(|p| p as i32)
    }

    /// Whether the calling thread holds the lock through a live guard (then
    /// acquiring it again would be [`Error::WouldDeadlock`]).
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// let g = lock.acquire().unwrap();
    /// assert!(lock.is_held_by_current_thread());
    /// drop(g);
    /// assert!(!lock.is_held_by_current_thread());
    /// ```
    pub fn is_held_by_current_thread(&self) -> bool {
        self.word.held_by_my_guard()
    }
}

impl LockGuard<'_> {
    /// Keeps the lock held after the guard is gone; release it later with
    /// [`Lock::release`] (for instance in a later notebook cell).
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// lock.acquire().unwrap().forget();
    /// assert!(lock.is_locked());
    /// lock.release().unwrap();
    /// ```
    ///
    /// The lock then belongs to this process rather than to this thread, as
    /// after [`Lock::acquire_no_guard`].
    pub fn forget(self) {
        self.lock.word.hand_over(self.me, crate::os::pid() as u32);
        std::mem::forget(self);
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // If another process released it meanwhile (Python allows that) and
        // someone else took it, leave it alone.
        self.lock.word.unlock_if_owner(self.me);
    }
}
