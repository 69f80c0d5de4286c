//! [`RLock`]: a re-entrant lock between processes (Python's
//! `multiprocessing.RLock`).
//!
//! The thread holding it may acquire it again; it is free once every
//! acquisition has been released. The owner is a thread (its kernel thread
//! id, which for a single-threaded process is its pid).

use super::raw_lock::{LockWord, NotSend, lock_or_report};
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const WHAT: &str = "an RLock";
/// Never shown: an RLock's owner id is a plain tid, never a guard's.
const HINT: &str = "";

#[derive(Debug, Default)]
#[repr(C)]
struct RLockState {
    word: LockWord,
    /// How many times the owner holds it (touched only by the owner).
    depth: AtomicU32,
}

/// A re-entrant lock shared by processes forked after it was made.
///
/// ```
/// let rlock = forja::RLock::new().unwrap();
/// let outer = rlock.acquire().unwrap();
/// let inner = rlock.acquire().unwrap(); // same thread: fine
/// assert_eq!(rlock.depth(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!rlock.is_locked());
/// ```
#[derive(Debug, Clone)]
pub struct RLock {
    state: ShmBox<RLockState>,
    id: u32,
}

crate::waits::names::named!([] RLock, crate::waits::Kind::RLock, id);

/// One acquisition of an [`RLock`]; dropping it releases that acquisition.
///
/// ```
/// let rlock = forja::RLock::new().unwrap();
/// let g = rlock.acquire().unwrap();
/// drop(g);
/// assert_eq!(rlock.depth(), 0);
/// ```
///
/// The lock belongs to the thread that took it, so the guard cannot be sent
/// to another thread (error E0277, "`*const ()` cannot be sent between
/// threads safely"):
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// let rlock = forja::RLock::new().unwrap();
/// send(rlock.acquire().unwrap());
/// ```
#[derive(Debug)]
#[must_use = "the acquisition is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    rlock: &'a RLock,
    _not_send: NotSend,
}

impl<'a> RLockGuard<'a> {
    fn new(rlock: &'a RLock) -> Self {
        RLockGuard {
            rlock,
            _not_send: NotSend::default(),
        }
    }
}

impl RLock {
    /// Makes a new, free re-entrant lock in shared memory.
    ///
    /// ```
    /// assert!(!forja::RLock::new().unwrap().is_locked());
    /// ```
    #[track_caller]
    pub fn new() -> Result<RLock> {
        crate::located::located(Self::new_body(), "RLock::new")
    }

    fn new_body() -> Result<RLock> {
        // SAFETY: made of atomics.
        let state = unsafe { ShmBox::new(RLockState::default(), 0, 1)? };
        Ok(RLock {
            state,
            id: crate::waits::names::new_id(crate::waits::Kind::RLock),
        })
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<RLockGuard<'_>> {
        let me = crate::os::tid();
        if self.state.word.owner() == Some(me) {
            self.state.depth.fetch_add(1, Ordering::Relaxed);
            return Ok(RLockGuard::new(self));
        }
        lock_or_report(&self.state.word, me, deadline, WHAT, HINT, self.wait_site())?;
        self.state.depth.store(1, Ordering::Relaxed);
        Ok(RLockGuard::new(self))
    }

    /// Takes the lock (again, if this thread already holds it).
    ///
    /// If its holder died, this is [`Error::LockOwnerDied`] until someone
    /// calls [`recover`](RLock::recover); nobody holds it meanwhile.
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// let _g = rlock.acquire().unwrap();
    /// assert!(rlock.is_locked());
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> Result<RLockGuard<'_>> {
        crate::located::located(self.acquire_body(), "RLock::acquire")
    }

    fn acquire_body(&self) -> Result<RLockGuard<'_>> {
        self.acquire_until(None)
    }

    /// Like [`acquire`](RLock::acquire), giving up with [`Error::Timeout`]
    /// after `timeout`.
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// let g = rlock.acquire_timeout(std::time::Duration::from_millis(10)).unwrap();
    /// # drop(g);
    /// ```
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>> {
        crate::located::located(self.acquire_timeout_body(timeout), "RLock::acquire_timeout")
    }

    fn acquire_timeout_body(&self, timeout: Duration) -> Result<RLockGuard<'_>> {
        self.acquire_until(crate::deadline::deadline(timeout))
    }

    /// Releases one acquisition held by this thread without a guard (after
    /// [`RLockGuard::forget`]). Releasing what this thread does not hold is
    /// [`Error::NotHeld`].
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// rlock.acquire().unwrap().forget();
    /// rlock.release().unwrap();
    /// assert!(rlock.release().is_err());
    /// ```
    #[track_caller]
    pub fn release(&self) -> Result<()> {
        crate::located::located(self.release_body(), "RLock::release")
    }

    fn release_body(&self) -> Result<()> {
        let me = crate::os::tid();
        if self.state.word.owner() != Some(me) || self.state.depth.load(Ordering::Relaxed) == 0 {
            return Err(Error::NotHeld {
                what: WHAT,
                pid: me as i32,
            });
        }
        if self.state.depth.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.state.word.unlock_if_owner(me);
        }
        Ok(())
    }

    /// After [`Error::LockOwnerDied`], takes the lock whose holder died and
    /// gives its guard (depth 1).
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// assert!(rlock.recover().is_err()); // nobody died
    /// ```
    #[track_caller]
    pub fn recover(&self) -> Result<RLockGuard<'_>> {
        crate::located::located(self.recover_body(), "RLock::recover")
    }

    fn recover_body(&self) -> Result<RLockGuard<'_>> {
        let me = crate::os::tid();
        match self.state.word.recover(me) {
            Some(_) => {
                self.state.depth.store(1, Ordering::Relaxed);
                Ok(RLockGuard::new(self))
            }
            None => Err(Error::NothingToRecover {
                what: WHAT,
                pid: me as i32,
            }),
        }
    }

    /// Whether some thread holds the lock.
    ///
    /// ```
    /// assert!(!forja::RLock::new().unwrap().is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.word.is_locked()
    }

    /// How many times the calling thread holds the lock (0 if it does not).
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// assert_eq!(rlock.depth(), 0);
    /// ```
    pub fn depth(&self) -> u32 {
        if self.state.word.owner() == Some(crate::os::tid()) {
            self.state.depth.load(Ordering::Relaxed)
        } else {
            0
        }
    }
}

impl RLockGuard<'_> {
    /// Keeps this acquisition after the guard is gone; undo it later with
    /// [`RLock::release`].
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// rlock.acquire().unwrap().forget();
    /// rlock.release().unwrap();
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.rlock.release();
    }
}
