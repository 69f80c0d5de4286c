//! Synchronisation between processes: [`Lock`], [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Event`], [`Condition`] and [`Barrier`] — one module
//! per primitive over a futex word in shared memory.
//!
//! Every primitive lives in `MAP_SHARED` memory made when it is created:
//! create it *before* forking the processes that use it, then pass clones
//! (or just use the same variable) in the children.
//!
//! A guard belongs to the thread that took it (guards are `!Send`): that
//! thread asking again for the same `Lock`, `Value`, `Array` or `Condition`
//! gets [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) at once instead
//! of waiting for itself forever; other threads and processes wait as
//! usual. A holder that dies leaves the lock to nobody: every acquirer gets
//! [`Error::LockOwnerDied`](crate::Error::LockOwnerDied) until someone calls
//! `recover()` (the states are drawn in `raw_lock.rs`).
//!
//! ```
//! use forja::prelude::*;
//! let lock = Lock::new().unwrap();
//! let guard = lock.acquire().unwrap();
//! drop(guard);
//! ```

pub mod barrier;
pub mod condition;
pub mod event;
pub(crate) mod futex;
pub mod lock;
pub(crate) mod raw_lock;
pub mod rlock;
pub mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};
