//! [`Lock`]: mutual exclusion between processes (Python's
//! `multiprocessing.Lock`).
//!
//! The lock lives in shared memory made when it is created, so create it
//! before forking the processes that use it. A free lock is taken with one
//! compare-and-swap; a contended one sleeps on a futex. If the holder dies,
//! the next acquirer takes the lock over and gets
//! [`Error::LockOwnerDied`](crate::Error::LockOwnerDied) instead of hanging.

use super::futex::{deadline_after, my_pid};
use super::raw_lock::{LockWord, lock_or_report};
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use std::time::Duration;

const WHAT: &str = "a Lock";

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
}

/// Holds a [`Lock`]; dropping it releases the lock.
///
/// ```
/// let lock = forja::Lock::new().unwrap();
/// let guard = lock.acquire().unwrap();
/// drop(guard);
/// assert!(!lock.is_locked());
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Lock {
    /// Makes a new, free lock in shared memory.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// assert!(!lock.is_locked());
    /// ```
    pub fn new() -> Result<Lock> {
        // Safety: LockWord is made of atomics.
        let word = unsafe { ShmBox::new(LockWord::new(), 0, 1)? };
        Ok(Lock { word })
    }

    pub(crate) fn word(&self) -> &LockWord {
        &self.word
    }

    /// Waits until the lock is free and takes it.
    ///
    /// If its holder died, this process takes it over and gets
    /// [`Error::LockOwnerDied`]; call [`recover`](Lock::recover) for the guard.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// let guard = lock.acquire().unwrap();
    /// assert_eq!(lock.owner(), Some(std::process::id() as i32));
    /// # drop(guard);
    /// ```
    #[inline]
    pub fn acquire(&self) -> Result<LockGuard<'_>> {
        lock_or_report(&self.word, my_pid(), None, WHAT)?;
        Ok(LockGuard { lock: self })
    }

    /// Like [`acquire`](Lock::acquire), giving up with
    /// [`Error::Timeout`] after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = forja::Lock::new().unwrap();
    /// let _held = lock.acquire().unwrap();
    /// let again = lock.acquire_timeout(Duration::from_millis(10));
    /// assert!(matches!(again, Err(forja::Error::Timeout { .. })));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        lock_or_report(&self.word, my_pid(), deadline_after(timeout), WHAT)?;
        Ok(LockGuard { lock: self })
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
        self.word
            .try_lock(my_pid())
            .then(|| LockGuard { lock: self })
    }

    /// Releases the lock, whichever process holds it (as Python allows).
    /// Releasing a free lock is [`Error::NotHeld`].
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// lock.acquire().unwrap().forget(); // keep it held without a guard
    /// lock.release().unwrap();
    /// assert!(lock.release().is_err()); // not held any more
    /// ```
    pub fn release(&self) -> Result<()> {
        if self.word.unlock() {
            Ok(())
        } else {
            Err(Error::NotHeld {
                what: WHAT,
                pid: my_pid() as i32,
            })
        }
    }

    /// After [`Error::LockOwnerDied`], gives the guard of the lock this
    /// process took over. Check (or repair) the protected data, then drop it.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// // Nobody died, so there is nothing to recover:
    /// assert!(matches!(lock.recover(), Err(forja::Error::NothingToRecover { .. })));
    /// ```
    pub fn recover(&self) -> Result<LockGuard<'_>> {
        match self.word.take_recovery(my_pid()) {
            Some(_) => Ok(LockGuard { lock: self }),
            None => Err(Error::NothingToRecover {
                what: WHAT,
                pid: my_pid() as i32,
            }),
        }
    }

    /// Whether some process holds the lock right now.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// assert!(!lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.word.owner().is_some()
    }

    /// The pid of the process holding the lock, if any.
    ///
    /// ```
    /// let lock = forja::Lock::new().unwrap();
    /// assert_eq!(lock.owner(), None);
    /// ```
    pub fn owner(&self) -> Option<i32> {
        self.word.owner().map(|p| p as i32)
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
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // If another process released it meanwhile (Python allows that) and
        // someone else took it, leave it alone.
        self.lock.word.unlock_if_owner(my_pid());
    }
}
