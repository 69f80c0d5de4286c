//! [`Semaphore`] and [`BoundedSemaphore`] between processes (Python's
//! `multiprocessing.Semaphore` / `BoundedSemaphore`).
//!
//! A counter in shared memory: `acquire` waits until it is above zero and
//! decrements it, `release` increments it and wakes one waiter. A semaphore
//! has no owner, so a process dying while it holds a unit does not give the
//! unit back (as in Python).
//!
//! Two ways to take a unit, as Python's `with sem:` and bare
//! `sem.acquire()`: [`acquire`](Semaphore::acquire) returns a guard that
//! gives the unit back when dropped (so `sem.acquire()?;` alone takes it and
//! gives it back at once: keep the guard in a variable), and
//! [`acquire_no_guard`](Semaphore::acquire_no_guard) keeps the unit until some
//! process calls [`release`](Semaphore::release) — the producer/consumer
//! pattern, where one process acquires and another releases.

use super::futex::{self, Woke};
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
#[repr(C)]
struct SemState {
    value: AtomicU32,
    waiters: AtomicU32,
    /// `u32::MAX` for an unbounded semaphore.
    bound: u32,
}

#[derive(Debug, Clone)]
struct SemCore {
    state: ShmBox<SemState>,
    id: u32,
}

impl SemCore {
    fn new(value: u32, bound: u32) -> Result<SemCore> {
        let st = SemState {
            value: AtomicU32::new(value),
            waiters: AtomicU32::new(0),
            bound,
        };
        Ok(SemCore {
            // SAFETY: atomics and a constant.
            state: unsafe { ShmBox::new(st, 0, 1)? },
            id: crate::waits::names::new_id(crate::waits::Kind::Semaphore),
        })
    }

    #[inline]
    fn try_down(&self) -> bool {
        let mut v = self.state.value.load(Ordering::Relaxed);
        while v > 0 {
            match self.state.value.compare_exchange_weak(
                v,
                v - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
        false
    }

    fn down(&self, deadline: Option<Instant>, what: &'static str) -> Result<()> {
        crate::interrupt::check()?;
        let mut recorded = None;
        loop {
            if self.try_down() {
                return Ok(());
            }
            let slice = futex::slice_until(deadline, what)?;
            let rec = recorded.get_or_insert_with(|| {
                crate::waits::record::begin(
                    crate::waits::record::Site::new(self.id, crate::waits::Kind::Semaphore),
                    crate::waits::record::Holder::Anyone,
                    deadline.is_some(),
                )
            });
            self.state.waiters.fetch_add(1, Ordering::SeqCst);
            let woke = futex::wait(&self.state.value, 0, slice);
            self.state.waiters.fetch_sub(1, Ordering::SeqCst);
            if woke == Woke::TimedOut {
                crate::interrupt::check()?;
                rec.check()?;
            }
        }
    }

    fn up(&self) -> Result<()> {
        let st = &*self.state;
        let mut v = st.value.load(Ordering::Relaxed);
        loop {
            if v >= st.bound {
                return Err(Error::SemaphoreOverReleased {
                    bound: st.bound,
                    pid: crate::os::pid(),
                });
            }
            match st
                .value
                .compare_exchange_weak(v, v + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if st.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake(&st.value, 1);
        }
        Ok(())
    }

    fn value(&self) -> u32 {
        self.state.value.load(Ordering::Relaxed)
    }
}

/// A counting semaphore shared by processes forked after it was made.
///
/// ```
/// let sem = forja::Semaphore::new(2).unwrap();
/// let a = sem.acquire().unwrap();
/// let b = sem.acquire().unwrap();
/// assert!(sem.try_acquire().is_none()); // both units taken
/// drop(a);
/// assert_eq!(sem.value(), 1);
/// # drop(b);
/// ```
#[derive(Debug, Clone)]
pub struct Semaphore {
    core: SemCore,
}

crate::waits::names::named!([] Semaphore, crate::waits::Kind::Semaphore, core.id);

/// One unit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives the
/// unit back.
///
/// ```
/// let sem = forja::Semaphore::new(1).unwrap();
/// let unit = sem.acquire().unwrap();
/// assert_eq!(sem.value(), 0);
/// drop(unit);
/// assert_eq!(sem.value(), 1);
/// ```
#[derive(Debug)]
#[must_use = "dropping this guard gives the unit back at once, so `sem.acquire()?;` alone \
              holds nothing: keep it (`let _unit = sem.acquire()?;`) while you need the unit, \
              or call acquire_no_guard() and later release()"]
pub struct SemaphoreGuard<'a> {
    core: &'a SemCore,
}

impl SemaphoreGuard<'_> {
    /// Keeps the unit after the guard is gone; give it back later with
    /// `release()`.
    ///
    /// ```
    /// let sem = forja::Semaphore::new(1).unwrap();
    /// sem.acquire().unwrap().forget();
    /// assert_eq!(sem.value(), 0);
    /// sem.release().unwrap();
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let _ = self.core.up();
    }
}

impl Semaphore {
    /// Makes a semaphore with `value` units.
    ///
    /// ```
    /// assert_eq!(forja::Semaphore::new(3).unwrap().value(), 3);
    /// ```
    #[track_caller]
    pub fn new(value: u32) -> Result<Semaphore> {
        crate::located::located(Self::new_body(value), "Semaphore::new")
    }

    fn new_body(value: u32) -> Result<Semaphore> {
        Ok(Semaphore {
            core: SemCore::new(value, u32::MAX)?,
        })
    }

    /// Waits for a unit and takes it.
    ///
    /// ```
    /// let sem = forja::Semaphore::new(1).unwrap();
    /// let _unit = sem.acquire().unwrap();
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_>> {
        crate::located::located(self.acquire_body(), "Semaphore::acquire")
    }

    fn acquire_body(&self) -> Result<SemaphoreGuard<'_>> {
        self.core.down(None, "acquiring a Semaphore")?;
        Ok(SemaphoreGuard { core: &self.core })
    }

    /// Waits for a unit and takes it without a guard: the unit stays taken
    /// until some process calls [`release`](Semaphore::release) (Python's bare
    /// `sem.acquire()`; for a producer that signals a consumer, or a unit
    /// released by another process).
    ///
    /// ```
    /// let sem = forja::Semaphore::new(1).unwrap();
    /// sem.acquire_no_guard().unwrap();
    /// assert_eq!(sem.value(), 0);
    /// sem.release().unwrap();
    /// assert_eq!(sem.value(), 1);
    /// ```
    #[track_caller]
    pub fn acquire_no_guard(&self) -> Result<()> {
        crate::located::located(self.acquire_no_guard_body(), "Semaphore::acquire_no_guard")
    }

    fn acquire_no_guard_body(&self) -> Result<()> {
        self.core.down(None, "acquiring a Semaphore")
    }

    /// Like [`acquire`](Semaphore::acquire), giving up with
    /// [`Error::Timeout`] after `timeout`.
    ///
    /// ```
    /// let sem = forja::Semaphore::new(0).unwrap();
    /// let r = sem.acquire_timeout(std::time::Duration::from_millis(10));
    /// assert!(matches!(r, Err(forja::Error::Timeout { .. })));
    /// ```
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        crate::located::located(
            self.acquire_timeout_body(timeout),
            "Semaphore::acquire_timeout",
        )
    }

    fn acquire_timeout_body(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        self.core
            .down(crate::deadline::deadline(timeout), "acquiring a Semaphore")?;
        Ok(SemaphoreGuard { core: &self.core })
    }

    /// Takes a unit only if one is free right now.
    ///
    /// ```
    /// let sem = forja::Semaphore::new(0).unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.core
            .try_down()
            .then(|| SemaphoreGuard { core: &self.core })
    }

    /// Adds a unit (any process may; a plain semaphore has no upper bound).
    ///
    /// ```
    /// let sem = forja::Semaphore::new(0).unwrap();
    /// sem.release().unwrap();
    /// assert_eq!(sem.value(), 1);
    /// ```
    #[track_caller]
    pub fn release(&self) -> Result<()> {
        crate::located::located(self.release_body(), "Semaphore::release")
    }

    fn release_body(&self) -> Result<()> {
        self.core.up()
    }

    /// The number of free units right now.
    ///
    /// ```
    /// assert_eq!(forja::Semaphore::new(5).unwrap().value(), 5);
    /// ```
    pub fn value(&self) -> u32 {
        self.core.value()
    }
}

/// A semaphore that refuses to be released above its initial value
/// ([`Error::SemaphoreOverReleased`]), which catches unpaired releases.
///
/// ```
/// let sem = forja::BoundedSemaphore::new(1).unwrap();
/// assert!(sem.release().is_err()); // nothing was acquired
/// let unit = sem.acquire().unwrap();
/// drop(unit);
/// assert_eq!(sem.value(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct BoundedSemaphore {
    core: SemCore,
}

crate::waits::names::named!([] BoundedSemaphore, crate::waits::Kind::Semaphore, core.id);

impl BoundedSemaphore {
    /// Makes a bounded semaphore with `value` units, which is also its maximum.
    ///
    /// ```
    /// assert_eq!(forja::BoundedSemaphore::new(2).unwrap().value(), 2);
    /// ```
    #[track_caller]
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        crate::located::located(Self::new_body(value), "BoundedSemaphore::new")
    }

    fn new_body(value: u32) -> Result<BoundedSemaphore> {
        Ok(BoundedSemaphore {
            core: SemCore::new(value, value)?,
        })
    }

    /// Waits for a unit and takes it.
    ///
    /// ```
    /// let sem = forja::BoundedSemaphore::new(1).unwrap();
    /// let _unit = sem.acquire().unwrap();
    /// assert_eq!(sem.value(), 0);
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_>> {
        crate::located::located(self.acquire_body(), "BoundedSemaphore::acquire")
    }

    fn acquire_body(&self) -> Result<SemaphoreGuard<'_>> {
        self.core.down(None, "acquiring a BoundedSemaphore")?;
        Ok(SemaphoreGuard { core: &self.core })
    }

    /// Waits for a unit and takes it without a guard: the unit stays taken
    /// until some process calls [`release`](BoundedSemaphore::release) (Python's bare
    /// `sem.acquire()`; for a producer that signals a consumer, or a unit
    /// released by another process).
    ///
    /// ```
    /// let sem = forja::BoundedSemaphore::new(1).unwrap();
    /// sem.acquire_no_guard().unwrap();
    /// assert_eq!(sem.value(), 0);
    /// sem.release().unwrap();
    /// assert_eq!(sem.value(), 1);
    /// ```
    #[track_caller]
    pub fn acquire_no_guard(&self) -> Result<()> {
        crate::located::located(
            self.acquire_no_guard_body(),
            "BoundedSemaphore::acquire_no_guard",
        )
    }

    fn acquire_no_guard_body(&self) -> Result<()> {
        self.core.down(None, "acquiring a BoundedSemaphore")
    }

    /// Like [`acquire`](BoundedSemaphore::acquire), giving up with
    /// [`Error::Timeout`] after `timeout`.
    ///
    /// ```
    /// let sem = forja::BoundedSemaphore::new(0).unwrap();
    /// assert!(sem.acquire_timeout(std::time::Duration::from_millis(5)).is_err());
    /// ```
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        crate::located::located(
            self.acquire_timeout_body(timeout),
            "BoundedSemaphore::acquire_timeout",
        )
    }

    fn acquire_timeout_body(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        self.core.down(
            crate::deadline::deadline(timeout),
            "acquiring a BoundedSemaphore",
        )?;
        Ok(SemaphoreGuard { core: &self.core })
    }

    /// Takes a unit only if one is free right now.
    ///
    /// ```
    /// let sem = forja::BoundedSemaphore::new(1).unwrap();
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.core
            .try_down()
            .then(|| SemaphoreGuard { core: &self.core })
    }

    /// Gives a unit back; above the initial value this is
    /// [`Error::SemaphoreOverReleased`].
    ///
    /// ```
    /// let sem = forja::BoundedSemaphore::new(1).unwrap();
    /// sem.acquire().unwrap().forget();
    /// sem.release().unwrap();
    /// assert!(sem.release().is_err());
    /// ```
    #[track_caller]
    pub fn release(&self) -> Result<()> {
        crate::located::located(self.release_body(), "BoundedSemaphore::release")
    }

    fn release_body(&self) -> Result<()> {
        self.core.up()
    }

    /// The number of free units right now.
    ///
    /// ```
    /// assert_eq!(forja::BoundedSemaphore::new(4).unwrap().value(), 4);
    /// ```
    pub fn value(&self) -> u32 {
        self.core.value()
    }
}
