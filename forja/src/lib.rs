//! # forja
//!
//! Python-`multiprocessing`-style process tools for Rust: [`Process`], [`Pipe`],
//! [`Queue`], [`Lock`], [`Pool`], [`Value`], [`Array`] and relatives.
//!
//! Processes are created with `fork`, so a closure runs in the child. Every
//! handle is a nameable `'static` type, so it can be kept in a notebook
//! variable and used in a later cell of the forja Jupyter kernel.
//!
//! ```
//! use forja::prelude::*;
//!
//! let mut p = Process::new(|| println!("hello from a child")).name("greeter");
//! p.start().unwrap();
//! p.join().unwrap();
//! assert_eq!(p.exitcode(), Some(0));
//! ```
#![warn(missing_docs)]

pub mod display;
pub mod error;
mod interrupt;
pub mod shm;
pub mod sync;

pub use error::{Error, Result};
pub use sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, RLock, RLockGuard,
    Semaphore, SemaphoreGuard,
};

/// Everything a notebook cell usually needs: `use forja::prelude::*;`.
pub mod prelude {
    pub use crate::error::{Error, Result};
    pub use crate::sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
}
