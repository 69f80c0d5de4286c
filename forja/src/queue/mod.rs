//! [`Queue`], [`JoinableQueue`] and [`SimpleQueue`]: multi-producer,
//! multi-consumer queues between processes (Python's
//! `multiprocessing.Queue`, `JoinableQueue`, `SimpleQueue`).
//!
//! Composed of parts, as CPython composes its queues: `ring` moves bytes
//! through shared memory (1 MiB by default), [`Queue`] encodes typed items
//! onto it, and [`JoinableQueue`] and [`SimpleQueue`] are built on a
//! [`Queue`]. An item larger than the ring is streamed through it in pieces,
//! so no item is ever refused. Made before forking, a queue is shared by the
//! parent and all its children; every item put is got exactly once.
//!
//! ```
//! let q = forja::Queue::new().unwrap();
//! q.put(&"hola".to_string()).unwrap();
//! assert_eq!(q.get().unwrap(), "hola");
//! ```

mod joinable;
mod ring;
mod simple;
mod typed;

pub use joinable::JoinableQueue;
pub use simple::SimpleQueue;
pub use typed::Queue;

fn pid() -> i32 {
    crate::os::pid()
}
