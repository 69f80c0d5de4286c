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

impl<T> crate::wait::Waitable for Queue<T> {}
impl<T> crate::wait::sealed::Sealed for Queue<T> {
    /// No fd to wait on: a wait that includes a queue looks at it every
    /// millisecond (see `forja::wait`).
    fn probe(&self) -> crate::Result<crate::wait::Probe> {
        Ok(if self.ring.has_bytes() {
            crate::wait::Probe::Ready
        } else {
            crate::wait::Probe::Poll
        })
    }
}

macro_rules! waitable_through_queue {
    ($($ty:ident),*) => {$(
        impl<T> crate::wait::Waitable for $ty<T> {}
        impl<T> crate::wait::sealed::Sealed for $ty<T> {
            fn probe(&self) -> crate::Result<crate::wait::Probe> {
                self.queue.probe()
            }
        }
    )*};
}
waitable_through_queue!(JoinableQueue, SimpleQueue);
