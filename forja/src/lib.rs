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
//! let p = Process::new(|| println!("hello from a child")).with_name("greeter");
//! p.start().unwrap();
//! p.join().unwrap();
//! assert_eq!(p.exitcode(), Some(0));
//! ```
//!
//! One job per module (how they fit together: `ARCHITECTURE.md` at the
//! repository root):
//!
//! - [`array`](mod@array): [`Array`] and [`RawArray`], a fixed-length array of plain data in shared memory.
//! - [`connection`]: [`Pipe`], [`Connection`], [`Sender`] and [`Receiver`], messages between processes.
//! - [`demo`]: helpers the lessons use to show a real orphan and to clean up after a failed self-check.
//! - [`display`]: rich output that appears, updates and clears while a cell runs.
//! - [`error`]: the one [`Error`] type: what failed, in which process, what to do.
//! - [`input`]: [`input()`] and [`input_password`]: a line typed by the student, in the notebook or the terminal.
//! - [`lang`]: which language forja's words for students are in (Spanish or English).
//! - [`link`]: the contract between the kernel, its runner and forja's children: variable names, markers, messages.
//! - [`located`]: where a forja call that failed was made, for an error propagated with `?`.
//! - [`messages`]: every text a student reads from forja, in Spanish and English (one catalogue).
//! - [`os`]: this process's cached pid and the one reader of `/proc/PID/stat`.
//! - [`pool`]: [`Pool`], a fixed set of worker processes that run many small tasks.
//! - [`process`]: [`Process`], a closure run in a forked child, and who-am-I functions.
//! - [`queue`]: [`Queue`], [`JoinableQueue`] and [`SimpleQueue`] between processes.
//! - [`registry`]: this process's children, name, cap on children and interrupt flag.
//! - [`rich`]: notebook displays of forja's handles, plain text elsewhere.
//! - [`shared_memory`]: [`SharedMemory`], named shared memory that processes attach to by name.
//! - [`shm`]: the shared-memory layer, and the [`Shareable`] types that may live in it.
//! - [`sync`]: [`Lock`], [`RLock`], semaphores, [`Event`], [`Condition`] and [`Barrier`] between processes.
//! - [`timeline`](mod@timeline): what ran and when, drawn as a Gantt chart by [`timeline()`].
//! - [`value`]: [`Value`] and [`RawValue`], one plain-data value in shared memory.
//! - [`wait`](mod@wait): [`wait()`], which of several pipe ends, processes and queues are ready.
//! - [`waits`](mod@waits): who waits for whom across the tree, drawn by [`waits()`]; deadlocks named with their cycle ([`deadlock`]).
//! - [`prelude`]: everything a notebook cell usually needs.
#![warn(missing_docs)]

pub mod array;
mod codec;
pub mod connection;
mod cpu;
mod deadline;
pub mod demo;
pub mod display;
pub mod error;
mod fork;
mod identity;
pub mod input;
mod interrupt;
mod kernel_child;
pub mod lang;
pub mod link;
pub mod located;
pub mod messages;
pub mod os;
pub mod pool;
pub mod process;
mod process_info;
pub mod queue;
pub mod registry;
pub mod rich;
pub mod shared_memory;
pub mod shm;
pub mod sync;
pub mod timeline;
pub mod value;
pub mod wait;
pub mod waits;

pub use waits::detect as deadlock;

pub use array::{Array, ArrayGuard, RawArray};
pub use bytemuck;
pub use connection::{Connection, Pipe, Receiver, Sender};
pub use error::{Error, Result};
pub use input::{input, input_password};
pub use interrupt::sleep;
pub use pool::{
    AsCompleted, AsyncResult, Future, Imap, ImapUnordered, Pool, PoolBuilder, ProcessPoolExecutor,
    WithChunksize, WithContext, as_completed, as_completed_timeout,
};
pub use process::{
    Process, ProcessInfo, active_children, cpu_count, current_process, exit, parent_process,
    process_cpu_count,
};
pub use queue::{JoinableQueue, Queue, SimpleQueue};
pub use shared_memory::SharedMemory;
pub use shm::Shareable;
pub use sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, RLock,
    RLockGuard, Semaphore, SemaphoreGuard,
};
pub use timeline::{Timeline, timeline};
pub use value::{RawValue, Value, ValueGuard};
pub use wait::{Waitable, wait, wait_slice};
pub use waits::{WaitGraph, waits};

/// Everything a notebook cell usually needs: `use forja::prelude::*;`.
pub mod prelude {
    pub use crate::array::{Array, RawArray};
    pub use crate::connection::{Connection, Pipe, Receiver, Sender};
    #[doc(hidden)]
    pub use crate::display::DebugDisplay as _;
    pub use crate::error::{Error, Result};
    pub use crate::input::{input, input_password};
    pub use crate::interrupt::sleep;
    pub use crate::pool::{
        AsyncResult, Future, Pool, ProcessPoolExecutor, as_completed, as_completed_timeout,
    };
    pub use crate::process::{
        Process, ProcessInfo, active_children, cpu_count, current_process, exit, parent_process,
        process_cpu_count,
    };
    pub use crate::queue::{JoinableQueue, Queue, SimpleQueue};
    pub use crate::shm::Shareable;
    pub use crate::sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
    pub use crate::timeline::{Timeline, timeline};
    pub use crate::value::{RawValue, Value};
    pub use crate::waits::{WaitGraph, waits};
}

#[cfg(test)]
mod tests {
    /// The module list in the crate doc is checked against the `pub mod`
    /// lines, so it cannot go stale.
    #[test]
    fn the_doc_lists_every_public_module_once() {
        let source = include_str!("lib.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("pub mod ")?;
                rest.strip_suffix(';').or(rest.strip_suffix(" {"))
            })
            .collect();
        let listed: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("//! - [`")?.split_once("`]").map(|(m, _)| m))
            .collect();
        assert_eq!(listed, declared);
    }
}
