//! [`Event`]: a flag processes can wait for (Python's
//! `multiprocessing.Event`).

use super::futex::{self, Woke};
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
#[repr(C)]
struct EventState {
    flag: AtomicU32,
    waiters: AtomicU32,
}

/// A flag in shared memory: [`set`](Event::set) wakes every process
/// [`wait`](Event::wait)ing for it.
///
/// ```
/// let ev = forja::Event::new().unwrap();
/// assert!(!ev.is_set());
/// ev.set();
/// ev.wait().unwrap(); // returns at once: already set
/// ev.clear();
/// assert!(!ev.wait_timeout(std::time::Duration::from_millis(5)).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct Event {
    state: ShmBox<EventState>,
    id: u32,
}

crate::waits::names::named!([] Event, crate::waits::Kind::Event, id);

impl Event {
    /// Makes a new event, not set.
    ///
    /// ```
    /// assert!(!forja::Event::new().unwrap().is_set());
    /// ```
    #[track_caller]
    pub fn new() -> Result<Event> {
        crate::located::located(Self::new_body(), "Event::new")
    }

    fn new_body() -> Result<Event> {
        // SAFETY: `EventState` is only atomics, built for shared access.
        Ok(Event {
            state: unsafe { ShmBox::new(EventState::default(), 0, 1)? },
            id: crate::waits::names::new_id(crate::waits::Kind::Event),
        })
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let ev = forja::Event::new().unwrap();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.flag.load(Ordering::Acquire) != 0
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// ```
    /// let ev = forja::Event::new().unwrap();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ```
    pub fn set(&self) {
        self.state.flag.store(1, Ordering::SeqCst);
        if self.state.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake(&self.state.flag, u32::MAX);
        }
    }

    /// Clears the flag.
    ///
    /// ```
    /// let ev = forja::Event::new().unwrap();
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.flag.store(0, Ordering::SeqCst);
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool> {
        crate::interrupt::check()?;
        let mut recorded = None;
        loop {
            if self.is_set() {
                return Ok(true);
            }
            let slice = match futex::slice_until(deadline, "waiting for an Event") {
                Ok(s) => s,
                Err(Error::Timeout { .. }) => return Ok(false),
                Err(e) => return Err(e),
            };
            let rec = recorded.get_or_insert_with(|| {
                crate::waits::record::begin(
                    self.wait_site(),
                    crate::waits::record::Holder::Anyone,
                    deadline.is_some(),
                )
            });
            self.state.waiters.fetch_add(1, Ordering::SeqCst);
            let woke = futex::wait(&self.state.flag, 0, slice);
            self.state.waiters.fetch_sub(1, Ordering::SeqCst);
            if woke == Woke::TimedOut {
                crate::interrupt::check()?;
                rec.check()?;
            }
        }
    }

    /// Waits until the flag is set.
    ///
    /// ```
    /// let ev = forja::Event::new().unwrap();
    /// ev.set();
    /// ev.wait().unwrap();
    /// ```
    #[track_caller]
    pub fn wait(&self) -> Result<()> {
        crate::located::located(self.wait_body(), "Event::wait")
    }

    fn wait_body(&self) -> Result<()> {
        self.wait_until(None).map(|_| ())
    }

    /// Waits at most `timeout`; `Ok(true)` if the flag is set, `Ok(false)` if
    /// time ran out first (as Python's `wait(timeout)` returns).
    ///
    /// ```
    /// let ev = forja::Event::new().unwrap();
    /// assert!(!ev.wait_timeout(std::time::Duration::from_millis(1)).unwrap());
    /// ```
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        crate::located::located(self.wait_timeout_body(timeout), "Event::wait_timeout")
    }

    fn wait_timeout_body(&self, timeout: Duration) -> Result<bool> {
        self.wait_until(crate::deadline::deadline(timeout))
    }
}
