//! [`Barrier`]: a meeting point for a fixed number of processes (Python's
//! `multiprocessing.Barrier`, `action` included).
//!
//! Each [`wait`](Barrier::wait) blocks until `parties` processes are waiting,
//! then all are released together and the barrier is ready for the next
//! round. A waiter that times out, or [`abort`](Barrier::abort), *breaks* it:
//! current and later waiters get [`Error::BrokenBarrier`] until
//! [`reset`](Barrier::reset). `reset` also breaks the round in progress (its
//! waiters get the error) and leaves the barrier ready for new rounds.

use super::futex::{self, Woke};
use super::raw_lock::LockWord;
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The closure a round's last waiter runs (see [`Barrier::with_action`]).
type Action = Arc<dyn Fn() + Send + Sync + 'static>;

#[derive(Debug)]
#[repr(C)]
struct BarrierState {
    /// Guards `count`, `broken` and `broken_generation` changes.
    lock: LockWord,
    parties: u32,
    count: AtomicU32,
    /// The futex word: bumped when a round ends or the barrier breaks.
    generation: AtomicU32,
    /// Whether later waiters fail at once (until `reset`).
    broken: AtomicU32,
    /// The generation of the last round that broke, plus one (0: none).
    /// Not cleared by `reset`, so the waiters of a round that `reset`
    /// broke still learn that it broke.
    broken_round: AtomicU32,
}

/// A barrier for `parties` processes forked after it was made.
///
/// ```
/// let barrier = forja::Barrier::new(1).unwrap();
/// assert_eq!(barrier.wait().unwrap(), 0); // one party: passes at once
/// assert_eq!(barrier.parties(), 1);
/// ```
#[derive(Clone)]
pub struct Barrier {
    state: ShmBox<BarrierState>,
    action: Option<Action>,
    id: u32,
}

crate::waits::names::named!([] Barrier, crate::waits::Kind::Barrier, id);

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .field("action", &self.action.is_some())
            .finish()
    }
}

struct Held<'a>(&'a LockWord);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

impl Barrier {
    /// Makes a barrier for `parties` processes (at least 1).
    ///
    /// ```
    /// assert!(forja::Barrier::new(0).is_err());
    /// assert_eq!(forja::Barrier::new(3).unwrap().n_waiting(), 0);
    /// ```
    #[track_caller]
    pub fn new(parties: u32) -> Result<Barrier> {
        crate::located::located(Self::new_body(parties), "Barrier::new")
    }

    fn new_body(parties: u32) -> Result<Barrier> {
        if parties == 0 {
            return Err(Error::InvalidArgument {
                message: crate::messages::Msg::BarrierParties.get().into(),
                pid: crate::os::pid(),
            });
        }
        let st = BarrierState {
            lock: LockWord::new(),
            parties,
            count: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            broken: AtomicU32::new(0),
            broken_round: AtomicU32::new(0),
        };
        Ok(Barrier {
            // SAFETY: atomics, a lock word and a constant.
            state: unsafe { ShmBox::new(st, 0, 1)? },
            action: None,
            id: crate::waits::names::new_id(crate::waits::Kind::Barrier),
        })
    }

    /// Makes a barrier whose `action` runs once per round, in the waiter that
    /// completes it, before any waiter is released (Python's
    /// `Barrier(parties, action)`).
    ///
    /// Across processes: the closure lives in the `Barrier` value, and every
    /// process forked after it was made has its own copy (with whatever the
    /// closure captured, as it was at the fork). Only the process whose
    /// `wait` completes a round runs *its* copy; the others never call
    /// theirs. To make the action's effect visible to every process, have it
    /// write to shared memory (a [`Value`](crate::Value), an
    /// [`Array`](crate::Array)) or print.
    ///
    /// If the action panics, the barrier breaks (the other waiters get
    /// [`Error::BrokenBarrier`]) and the panic continues in the waiter that
    /// ran it, as Python raises the action's exception there.
    ///
    /// ```
    /// let rounds = forja::Value::<u32>::new(0).unwrap();
    /// let r = rounds.clone();
    /// let b = forja::Barrier::with_action(1, move || *r.get_lock().unwrap() += 1).unwrap();
    /// b.wait().unwrap();
    /// b.wait().unwrap();
    /// assert_eq!(rounds.load().unwrap(), 2);
    /// ```
    #[track_caller]
    pub fn with_action(parties: u32, action: impl Fn() + Send + Sync + 'static) -> Result<Barrier> {
        crate::located::located(
            Self::with_action_body(parties, action),
            "Barrier::with_action",
        )
    }

    fn with_action_body(
        parties: u32,
        action: impl Fn() + Send + Sync + 'static,
    ) -> Result<Barrier> {
        let mut b = Barrier::new(parties)?;
        b.action = Some(Arc::new(action));
        Ok(b)
    }

    fn hold(&self) -> Result<Held<'_>> {
        // The critical sections are a few stores; a holder that died in one
        // leaves consistent-enough state, so a take-over is simply accepted.
        self.state.lock.lock(
            crate::os::pid() as u32,
            None,
            "a Barrier's internal lock",
            self.wait_site(),
        )?;
        Ok(Held(&self.state.lock))
    }

    fn broken_error() -> Error {
        Error::BrokenBarrier {
            pid: crate::os::pid(),
        }
    }

    /// Breaks the current round (lock held).
    fn break_locked(&self) {
        let st = &*self.state;
        let g = st.generation.load(Ordering::Relaxed);
        st.broken.store(1, Ordering::Relaxed);
        st.broken_round.store(g.wrapping_add(1), Ordering::Relaxed);
        st.count.store(0, Ordering::Relaxed);
        st.generation.store(g.wrapping_add(1), Ordering::Release);
        futex::wake(&st.generation, u32::MAX);
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<u32> {
        crate::interrupt::check()?;
        let st = &*self.state;
        let (index, generation) = {
            let _held = self.hold()?;
            if st.broken.load(Ordering::Relaxed) != 0 {
                return Err(Self::broken_error());
            }
            let index = st.count.load(Ordering::Relaxed);
            let g = st.generation.load(Ordering::Relaxed);
            if index + 1 == st.parties {
                if let Some(action) = &self.action {
                    // Run with the internal lock held, as Python does: the
                    // round cannot change under the action.
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| action())) {
                        self.break_locked();
                        drop(_held);
                        resume_unwind(panic);
                    }
                }
                st.count.store(0, Ordering::Relaxed);
                st.generation.store(g.wrapping_add(1), Ordering::Release);
                futex::wake(&st.generation, u32::MAX);
                return Ok(index);
            }
            st.count.store(index + 1, Ordering::Relaxed);
            (index, g)
        };
        let mut recorded = crate::waits::record::begin(
            self.wait_site(),
            crate::waits::record::Holder::Anyone,
            deadline.is_some(),
        );
        loop {
            let now = st.generation.load(Ordering::Acquire);
            if now != generation {
                let _held = self.hold()?;
                if st.broken_round.load(Ordering::Relaxed) == generation.wrapping_add(1) {
                    return Err(Self::broken_error());
                }
                return Ok(index);
            }
            let slice = match futex::slice_until(deadline, "waiting at a Barrier") {
                Ok(s) => s,
                Err(Error::Timeout { .. }) => {
                    let _held = self.hold()?;
                    if st.generation.load(Ordering::Relaxed) == generation {
                        self.break_locked();
                    }
                    continue; // sees the new generation and reports
                }
                Err(e) => return Err(e),
            };
            if futex::wait(&st.generation, generation, slice) == Woke::TimedOut
                && let Err(e) = crate::interrupt::check().and_then(|()| recorded.check())
            {
                let _held = self.hold()?;
                if st.generation.load(Ordering::Relaxed) == generation {
                    self.break_locked();
                }
                return Err(e);
            }
        }
    }

    /// Waits until `parties` processes wait, then returns this process's
    /// arrival index (`0..parties`), as Python does.
    ///
    /// ```
    /// let b = forja::Barrier::new(1).unwrap();
    /// assert_eq!(b.wait().unwrap(), 0);
    /// ```
    #[track_caller]
    pub fn wait(&self) -> Result<u32> {
        crate::located::located(self.wait_body(), "Barrier::wait")
    }

    fn wait_body(&self) -> Result<u32> {
        self.wait_until(None)
    }

    /// Like [`wait`](Barrier::wait); after `timeout` the barrier breaks and
    /// every waiter gets [`Error::BrokenBarrier`].
    ///
    /// ```
    /// let b = forja::Barrier::new(2).unwrap();
    /// let r = b.wait_timeout(std::time::Duration::from_millis(5));
    /// assert!(matches!(r, Err(forja::Error::BrokenBarrier { .. })));
    /// assert!(b.broken());
    /// ```
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32> {
        crate::located::located(self.wait_timeout_body(timeout), "Barrier::wait_timeout")
    }

    fn wait_timeout_body(&self, timeout: Duration) -> Result<u32> {
        self.wait_until(crate::deadline::deadline(timeout))
    }

    /// Breaks the barrier: current and later waiters get
    /// [`Error::BrokenBarrier`] until [`reset`](Barrier::reset).
    ///
    /// ```
    /// let b = forja::Barrier::new(2).unwrap();
    /// b.abort().unwrap();
    /// assert!(b.wait().is_err());
    /// ```
    #[track_caller]
    pub fn abort(&self) -> Result<()> {
        crate::located::located(self.abort_body(), "Barrier::abort")
    }

    fn abort_body(&self) -> Result<()> {
        let _held = self.hold()?;
        if self.state.broken.load(Ordering::Relaxed) == 0 {
            self.break_locked();
        }
        Ok(())
    }

    /// Returns the barrier to its empty, unbroken state; processes waiting on
    /// it right now get [`Error::BrokenBarrier`] (as in Python), later ones
    /// start a new round.
    ///
    /// ```
    /// let b = forja::Barrier::new(2).unwrap();
    /// let b2 = b.clone();
    /// let waiter = forja::Process::new(move || {
    ///     assert!(matches!(b2.wait(), Err(forja::Error::BrokenBarrier { .. })));
    /// });
    /// waiter.start().unwrap();
    /// while b.n_waiting() == 0 {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// b.reset().unwrap();
    /// waiter.join().unwrap();
    /// assert_eq!(waiter.exitcode(), Some(0));
    /// assert!(!b.broken());
    /// ```
    #[track_caller]
    pub fn reset(&self) -> Result<()> {
        crate::located::located(self.reset_body(), "Barrier::reset")
    }

    fn reset_body(&self) -> Result<()> {
        let _held = self.hold()?;
        let st = &*self.state;
        if st.count.load(Ordering::Relaxed) > 0 {
            self.break_locked();
        }
        st.broken.store(0, Ordering::Relaxed);
        st.count.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// How many processes must wait for the barrier to open.
    ///
    /// ```
    /// assert_eq!(forja::Barrier::new(4).unwrap().parties(), 4);
    /// ```
    pub fn parties(&self) -> u32 {
        self.state.parties
    }

    /// How many processes are waiting right now.
    ///
    /// ```
    /// assert_eq!(forja::Barrier::new(4).unwrap().n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> u32 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken.
    ///
    /// ```
    /// assert!(!forja::Barrier::new(2).unwrap().broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.state.broken.load(Ordering::Relaxed) != 0
    }
}
