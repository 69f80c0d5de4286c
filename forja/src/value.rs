//! [`Value`] and [`RawValue`]: one plain-data value in shared memory
//! (Python's `multiprocessing.Value` with and without `lock=True`).
//!
//! Make it before forking; parent and children then read and write the same
//! memory. `Value` carries its own [`Lock`](crate::Lock)-style lock:
//! [`get_lock`](Value::get_lock) returns a guard that derefs to `&mut T`, so a
//! read-modify-write such as `*v.get_lock()? += 1` is safe from lost updates.
//! `RawValue` has no lock, for showing what goes wrong without one.
//!
//! ```
//! let counter = forja::Value::new(0u64).unwrap();
//! *counter.get_lock().unwrap() += 1;
//! assert_eq!(counter.load().unwrap(), 1);
//! ```
//!
//! Python's `with v.get_lock(): v.value += 1` becomes a block with a guard
//! that you use *instead of* the value: the lock is not re-entrant, so
//! [`load`](Value::load), [`store`](Value::store), `get_lock` or `{:?}` on
//! the same `Value` while this thread holds its guard is
//! [`Error::WouldDeadlock`] at once, not a hang.
//!
//! ```
//! let v = forja::Value::new(0u64).unwrap();
//! {
//!     let mut g = v.get_lock().unwrap();
//!     *g += 1; // not v.store(v.load()? + 1)
//!     assert!(matches!(v.load(), Err(forja::Error::WouldDeadlock { .. })));
//!     assert_eq!(format!("{v:?}"), "Value(<held by this thread>)");
//! }
//! assert_eq!(v.load().unwrap(), 1);
//! ```

use crate::error::{Error, Result};
use crate::shm::{Shareable, ShmBox, racy_load, racy_store};
use crate::sync::raw_lock::{LockWord, NotSend, guard_id, lock_or_report};

/// What a wait for this lock is on, in the wait graph.
const DATA_SITE: crate::waits::record::Site =
    crate::waits::record::Site::new(0, crate::waits::Kind::DataLock);
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

const WHAT: &str = "a Value's lock";
const HINT: &str = "use the guard you hold instead of the Value: `let mut g = v.get_lock()?; \
                    *g += 1;` (not `v.store(v.load()? + 1)`), or drop the guard first";

#[repr(C)]
struct ValueCell<T> {
    lock: LockWord,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a guard holding `lock`.
unsafe impl<T: Shareable> Sync for ValueCell<T> {}

/// A `T` in shared memory with its own lock.
///
/// ```
/// let v = forja::Value::new(1.5f64).unwrap();
/// v.store(2.5).unwrap();
/// assert_eq!(v.load().unwrap(), 2.5);
/// ```
pub struct Value<T: Shareable> {
    cell: ShmBox<ValueCell<T>>,
}

impl<T: Shareable> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            cell: self.cell.clone(),
        }
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for Value<T> {
    /// `Value(42)`; `Value(<held by this thread>)` while this thread holds
    /// its guard (reading then could alias the guard's `&mut T`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.load() {
            Ok(v) => f.debug_tuple("Value").field(&v).finish(),
            Err(e) => write!(f, "Value({})", unavailable(&e)),
        }
    }
}

/// What `{:?}` and the displays show instead of a `Value`'s or `Array`'s
/// data when taking its lock failed with `e`.
pub(crate) fn unavailable(e: &Error) -> &'static str {
    match e {
        Error::WouldDeadlock { .. } => "<held by this thread>",
        Error::LockOwnerDied { .. } => "<holder died: call recover()>",
        Error::Timeout { .. } => "<locked>",
        _ => "<lock unavailable>",
    }
}

/// Holds a [`Value`]'s lock and gives `&T` / `&mut T`; dropping it releases
/// the lock.
///
/// ```
/// let v = forja::Value::new([0u8; 4]).unwrap();
/// let mut g = v.get_lock().unwrap();
/// g[2] = 9;
/// drop(g);
/// assert_eq!(v.load().unwrap(), [0, 0, 9, 0]);
/// ```
///
/// It belongs to the thread that took it, so it cannot be sent to another
/// thread (error E0277, "`*const ()` cannot be sent between threads safely"):
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// let v = forja::Value::new(0u8).unwrap();
/// send(v.get_lock().unwrap());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: Shareable> {
    cell: &'a ValueCell<T>,
    /// The owner id in the lock word: this thread, through a guard.
    me: u32,
    _not_send: NotSend,
}

impl<T: Shareable> Value<T> {
    /// Puts `value` in new shared memory.
    ///
    /// ```
    /// let flag = forja::Value::new(true).unwrap();
    /// assert!(flag.load().unwrap());
    /// ```
    #[track_caller]
    pub fn new(value: T) -> Result<Value<T>> {
        crate::located::located(Self::new_body(value), "Value::new")
    }

    fn new_body(value: T) -> Result<Value<T>> {
        let cell = ValueCell {
            lock: LockWord::new(),
            value: UnsafeCell::new(value),
        };
        // SAFETY: a lock word and plain data guarded by it.
        Ok(Value {
            cell: unsafe { ShmBox::new(cell, 0, 1)? },
        })
    }

    fn guard(&self, me: u32) -> ValueGuard<'_, T> {
        ValueGuard {
            cell: &self.cell,
            me,
            _not_send: NotSend::default(),
        }
    }

    #[inline]
    fn guard_until(&self, deadline: Option<Instant>) -> Result<ValueGuard<'_, T>> {
        let me = guard_id();
        lock_or_report(&self.cell.lock, me, deadline, WHAT, HINT, DATA_SITE)?;
        Ok(self.guard(me))
    }

    /// Waits for the lock and returns a guard giving `&mut T`.
    ///
    /// If this thread holds the guard already, this is
    /// [`Error::WouldDeadlock`] at once: use that guard. If a process died
    /// holding it, this is [`Error::LockOwnerDied`] until someone calls
    /// [`recover`](Value::recover).
    ///
    /// ```
    /// let v = forja::Value::new(10i32).unwrap();
    /// *v.get_lock().unwrap() -= 3;
    /// assert_eq!(v.load().unwrap(), 7);
    /// ```
    #[inline]
    #[track_caller]
    pub fn get_lock(&self) -> Result<ValueGuard<'_, T>> {
        crate::located::located(self.get_lock_body(), "Value::get_lock")
    }

    fn get_lock_body(&self) -> Result<ValueGuard<'_, T>> {
        self.guard_until(None)
    }

    /// Like [`get_lock`](Value::get_lock), giving up with
    /// [`Error::Timeout`] after `timeout`.
    ///
    /// ```
    /// let v = forja::Value::new(0u8).unwrap();
    /// let _g = v.get_lock().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         // Another thread (or process) waits, then gives up.
    ///         let r = v.get_lock_timeout(std::time::Duration::from_millis(5));
    ///         assert!(matches!(r, Err(forja::Error::Timeout { .. })));
    ///     });
    /// });
    /// ```
    #[track_caller]
    pub fn get_lock_timeout(&self, timeout: Duration) -> Result<ValueGuard<'_, T>> {
        crate::located::located(
            self.get_lock_timeout_body(timeout),
            "Value::get_lock_timeout",
        )
    }

    fn get_lock_timeout_body(&self, timeout: Duration) -> Result<ValueGuard<'_, T>> {
        self.guard_until(crate::deadline::deadline(timeout))
    }

    /// After [`Error::LockOwnerDied`], takes the lock whose holder died and
    /// gives its guard: check or repair the value, then drop it.
    ///
    /// ```
    /// let v = forja::Value::new(0u8).unwrap();
    /// assert!(v.recover().is_err()); // nobody died
    /// ```
    #[track_caller]
    pub fn recover(&self) -> Result<ValueGuard<'_, T>> {
        crate::located::located(self.recover_body(), "Value::recover")
    }

    fn recover_body(&self) -> Result<ValueGuard<'_, T>> {
        let me = guard_id();
        match self.cell.lock.recover(me) {
            Some(_) => Ok(self.guard(me)),
            None => Err(Error::NothingToRecover {
                what: WHAT,
                pid: crate::os::pid(),
            }),
        }
    }

    /// Reads the value under the lock ([`Error::WouldDeadlock`] if this
    /// thread holds its guard: read through the guard).
    ///
    /// ```
    /// assert_eq!(forja::Value::new('ñ').unwrap().load().unwrap(), 'ñ');
    /// ```
    #[track_caller]
    pub fn load(&self) -> Result<T> {
        crate::located::located(self.load_body(), "Value::load")
    }

    fn load_body(&self) -> Result<T> {
        Ok(*self.get_lock()?)
    }

    /// Writes the value under the lock ([`Error::WouldDeadlock`] if this
    /// thread holds its guard: write through the guard).
    ///
    /// ```
    /// let v = forja::Value::new(0u16).unwrap();
    /// v.store(5).unwrap();
    /// assert_eq!(v.load().unwrap(), 5);
    /// ```
    #[track_caller]
    pub fn store(&self, value: T) -> Result<()> {
        crate::located::located(self.store_body(value), "Value::store")
    }

    fn store_body(&self, value: T) -> Result<()> {
        *self.get_lock()? = value;
        Ok(())
    }

    /// Whether the calling thread holds this value's guard (then `load`,
    /// `store` and `get_lock` are [`Error::WouldDeadlock`]).
    ///
    /// ```
    /// let v = forja::Value::new(0u8).unwrap();
    /// let g = v.get_lock().unwrap();
    /// assert!(v.is_held_by_current_thread());
    /// drop(g);
    /// assert!(!v.is_held_by_current_thread());
    /// ```
    pub fn is_held_by_current_thread(&self) -> bool {
        self.cell.lock.held_by_my_guard()
    }
}

impl<T: Shareable> Deref for ValueGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock, and this thread cannot take it again
        // (WouldDeadlock), so no other reference to the value is live.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T: Shareable> DerefMut for ValueGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T: Shareable> Drop for ValueGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.lock.unlock_if_owner(self.me);
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

#[repr(C)]
struct RawCell<T> {
    value: UnsafeCell<T>,
}

// SAFETY: only reached through racy_load/racy_store (relaxed atomics).
unsafe impl<T: Shareable> Sync for RawCell<T> {}

/// A `T` in shared memory *without* a lock, for race-condition demos
/// (Python's `Value(..., lock=False)`).
///
/// [`load`](RawValue::load) and [`store`](RawValue::store) are each one
/// separate read or write (relaxed atomic accesses, chunk by chunk, never a
/// read-modify-write). So when two processes both run
/// `v.store(v.load() + 1)`, one can read the old value after the other read
/// it and before it wrote back: an update is lost. That is a *race
/// condition*, a logic error, and the point of the demo. It is not undefined
/// behaviour: the accesses are atomic per chunk (at most 8 bytes), so a
/// value wider than 8 bytes may mix halves of two writes, but never holds an
/// invalid `bool` or `char`. Use [`Value`] for correct code.
///
/// ```
/// let v = forja::RawValue::new(0u64).unwrap();
/// v.store(v.load() + 1); // fine in one process; racy across several
/// assert_eq!(v.load(), 1);
/// ```
pub struct RawValue<T: Shareable> {
    cell: ShmBox<RawCell<T>>,
}

impl<T: Shareable> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue {
            cell: self.cell.clone(),
        }
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawValue").field(&self.load()).finish()
    }
}

impl<T: Shareable> RawValue<T> {
    /// Puts `value` in new shared memory, without a lock.
    ///
    /// ```
    /// assert_eq!(forja::RawValue::new(3i8).unwrap().load(), 3);
    /// ```
    #[track_caller]
    pub fn new(value: T) -> Result<RawValue<T>> {
        crate::located::located(Self::new_body(value), "RawValue::new")
    }

    fn new_body(value: T) -> Result<RawValue<T>> {
        let cell = RawCell {
            value: UnsafeCell::new(value),
        };
        // SAFETY: accessed only with racy_load/racy_store.
        Ok(RawValue {
            cell: unsafe { ShmBox::new(cell, 0, 1)? },
        })
    }

    /// One unsynchronised read.
    ///
    /// ```
    /// assert_eq!(forja::RawValue::new(false).unwrap().load(), false);
    /// ```
    #[inline]
    pub fn load(&self) -> T {
        // SAFETY: valid, aligned, mapped while `self` lives.
        unsafe { racy_load(self.cell.value.get()) }
    }

    /// One unsynchronised write.
    ///
    /// ```
    /// let v = forja::RawValue::new(0.0f32).unwrap();
    /// v.store(1.0);
    /// assert_eq!(v.load(), 1.0);
    /// ```
    #[inline]
    pub fn store(&self, value: T) {
        // SAFETY: valid, aligned, mapped while `self` lives.
        unsafe { racy_store(self.cell.value.get(), value) }
    }
}
