//! [`SimpleQueue`]: the plainest queue, a [`Queue`] with only `put`, `get`,
//! `is_empty` and `close` (Python's `multiprocessing.SimpleQueue`).

use super::Queue;
use crate::error::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The plainest queue: unbounded, `put`, `get`, `is_empty` and `close`
/// (Python's `SimpleQueue`).
///
/// ```
/// let q = forja::SimpleQueue::new().unwrap();
/// q.put(&42u32).unwrap();
/// assert!(!q.is_empty());
/// assert_eq!(q.get().unwrap(), 42);
/// ```
pub struct SimpleQueue<T> {
    pub(super) queue: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("qsize", &self.queue.ring.qsize())
            .finish()
    }
}

crate::waits::names::named!([T] SimpleQueue<T>, crate::waits::Kind::Queue, queue.ring.id);

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// ```
    /// assert!(forja::SimpleQueue::<u8>::new().unwrap().is_empty());
    /// ```
    #[track_caller]
    pub fn new() -> Result<SimpleQueue<T>> {
        crate::located::located(Self::new_body(), "SimpleQueue::new")
    }

    fn new_body() -> Result<SimpleQueue<T>> {
        Ok(SimpleQueue {
            queue: Queue::new()?,
        })
    }

    /// Puts `item` (waits only while the ring buffer is full).
    ///
    /// ```
    /// forja::SimpleQueue::new().unwrap().put(&1u8).unwrap();
    /// ```
    #[track_caller]
    pub fn put(&self, item: &T) -> Result<()> {
        crate::located::located(self.put_body(item), "SimpleQueue::put")
    }

    fn put_body(&self, item: &T) -> Result<()> {
        self.queue.put(item)
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// ```
    /// let q = forja::SimpleQueue::new().unwrap();
    /// q.put(&'x').unwrap();
    /// assert_eq!(q.get().unwrap(), 'x');
    /// ```
    #[track_caller]
    pub fn get(&self) -> Result<T> {
        crate::located::located(self.get_body(), "SimpleQueue::get")
    }

    fn get_body(&self) -> Result<T> {
        self.queue.get()
    }

    /// Whether the queue is empty right now.
    ///
    /// ```
    /// assert!(forja::SimpleQueue::<u8>::new().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// See [`Queue::close`].
    ///
    /// ```
    /// let q = forja::SimpleQueue::<u8>::new().unwrap();
    /// q.close();
    /// assert!(q.put(&1).is_err());
    /// ```
    pub fn close(&self) {
        self.queue.close()
    }
}
