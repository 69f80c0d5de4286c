//! [`Queue`]: typed items over the byte ring — each item encoded with
//! `postcard` (the same format as forja's pipes) and prefixed by its length (a record).

use super::pid;
use super::ring::{HEADER, Ring};
use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Bytes in a queue's ring buffer.
const RING_BYTES: usize = 1 << 20;
/// Items whose record fits in this many bytes are encoded on the stack.
const SMALL_FRAME: usize = 128;

thread_local! {
    static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A multi-producer, multi-consumer queue shared by processes forked after
/// it was made.
///
/// ```
/// use forja::prelude::*;
///
/// let q: Queue<(u32, String)> = Queue::new().unwrap();
/// q.put(&(1, "uno".into())).unwrap();
/// assert_eq!(q.qsize(), 1);
/// assert_eq!(q.get().unwrap(), (1, "uno".into()));
/// assert!(matches!(q.try_get(), Err(Error::Empty { .. })));
/// ```
pub struct Queue<T> {
    pub(super) ring: Ring,
    /// The pid of the process that called `close` on this handle (0: none).
    /// A pid, not a flag: a child forked after its parent closed the queue
    /// has a different pid, so its handle is open, as in Python (whose
    /// queues reset `_closed` after a fork).
    closed_by: Arc<AtomicI32>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            ring: self.ring.clone(),
            closed_by: self.closed_by.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.ring.qsize())
            .field("maxsize", &self.ring.maxsize())
            .finish()
    }
}

crate::waits::names::named!([T] Queue<T>, crate::waits::Kind::Queue, ring.id);

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An unbounded queue.
    ///
    /// ```
    /// let q = forja::Queue::<i64>::new().unwrap();
    /// assert!(q.is_empty());
    /// ```
    #[track_caller]
    pub fn new() -> Result<Queue<T>> {
        crate::located::located(Self::new_body(), "Queue::new")
    }

    fn new_body() -> Result<Queue<T>> {
        Self::build(0, RING_BYTES)
    }

    /// A queue holding at most `maxsize` items: `put` waits while it is full
    /// (`maxsize` 0 means unbounded, as in Python).
    ///
    /// ```
    /// let q = forja::Queue::with_maxsize(1).unwrap();
    /// q.put(&1u8).unwrap();
    /// assert!(q.is_full());
    /// assert!(matches!(q.try_put(&2), Err(forja::Error::Full { .. })));
    /// ```
    #[track_caller]
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>> {
        crate::located::located(Self::with_maxsize_body(maxsize), "Queue::with_maxsize")
    }

    fn with_maxsize_body(maxsize: usize) -> Result<Queue<T>> {
        Self::build(maxsize as u64, RING_BYTES)
    }

    /// A queue whose ring buffer has `bytes` bytes (rounded up to a power of
    /// two, at least 64) instead of 1 MiB; larger items still pass, streamed.
    ///
    /// ```
    /// let q = forja::Queue::with_buffer_bytes(64).unwrap();
    /// q.put(&vec![7u8; 10]).unwrap();
    /// assert_eq!(q.get().unwrap(), vec![7u8; 10]);
    /// ```
    #[track_caller]
    pub fn with_buffer_bytes(bytes: usize) -> Result<Queue<T>> {
        crate::located::located(
            Self::with_buffer_bytes_body(bytes),
            "Queue::with_buffer_bytes",
        )
    }

    fn with_buffer_bytes_body(bytes: usize) -> Result<Queue<T>> {
        Self::build(0, bytes)
    }

    fn build(maxsize: u64, bytes: usize) -> Result<Queue<T>> {
        Ok(Queue {
            ring: Ring::new(maxsize, bytes)?,
            closed_by: Arc::new(AtomicI32::new(0)),
            _t: PhantomData,
        })
    }

    pub(super) fn put_until(
        &self,
        item: &T,
        deadline: Option<Instant>,
        joinable: bool,
    ) -> Result<()> {
        crate::interrupt::check()?;
        if self.is_closed() {
            return Err(Error::QueueClosed { pid: pid() });
        }
        // A record is the item's length (8 bytes) and its encoding, built in
        // one buffer so it is copied into the ring at once: small items on
        // the stack, larger ones in a reused per-thread buffer.
        let mut small = [0u8; SMALL_FRAME];
        let done = match postcard::to_slice(item, &mut small[HEADER as usize..]) {
            Ok(payload) => {
                let n = payload.len();
                small[..HEADER as usize].copy_from_slice(&(n as u64).to_le_bytes());
                self.ring
                    .put_record(&small[..HEADER as usize + n], deadline, joinable)?
            }
            Err(_) => ENCODE_BUF.with(|buf| -> Result<bool> {
                let mut buf = buf.borrow_mut();
                buf.clear();
                buf.extend_from_slice(&[0; HEADER as usize]);
                crate::codec::encode_into(&mut buf, item, "a queue")?;
                let n = (buf.len() - HEADER as usize) as u64;
                buf[..HEADER as usize].copy_from_slice(&n.to_le_bytes());
                self.ring.put_record(&buf, deadline, joinable)
            })?,
        };
        if done {
            Ok(())
        } else {
            Err(Error::Full { pid: pid() })
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T> {
        crate::interrupt::check()?;
        self.ring
            .get_with(deadline, |bytes| crate::codec::decode(bytes, "a queue"))?
            .ok_or(Error::Empty { pid: pid() })
    }

    /// Puts `item`, waiting while the queue is full.
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.put(&[1.0f32, 2.0]).unwrap();
    /// ```
    #[track_caller]
    pub fn put(&self, item: &T) -> Result<()> {
        crate::located::located(self.put_body(item), "Queue::put")
    }

    fn put_body(&self, item: &T) -> Result<()> {
        self.put_until(item, None, false)
    }

    /// Like [`put`](Queue::put), giving up with [`Error::Full`] after
    /// `timeout`.
    ///
    /// ```
    /// let q = forja::Queue::with_maxsize(1).unwrap();
    /// q.put(&'a').unwrap();
    /// let r = q.put_timeout(&'b', std::time::Duration::from_millis(5));
    /// assert!(matches!(r, Err(forja::Error::Full { .. })));
    /// ```
    #[track_caller]
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        crate::located::located(self.put_timeout_body(item, timeout), "Queue::put_timeout")
    }

    fn put_timeout_body(&self, item: &T, timeout: Duration) -> Result<()> {
        self.put_until(item, crate::deadline::deadline(timeout), false)
    }

    /// Puts `item` only if there is room right now, else [`Error::Full`].
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.try_put(&5u16).unwrap();
    /// ```
    #[track_caller]
    pub fn try_put(&self, item: &T) -> Result<()> {
        crate::located::located(self.try_put_body(item), "Queue::try_put")
    }

    fn try_put_body(&self, item: &T) -> Result<()> {
        self.put_until(item, Some(Instant::now()), false)
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.put(&true).unwrap();
    /// assert!(q.get().unwrap());
    /// ```
    #[track_caller]
    pub fn get(&self) -> Result<T> {
        crate::located::located(self.get_body(), "Queue::get")
    }

    fn get_body(&self) -> Result<T> {
        self.get_until(None)
    }

    /// Like [`get`](Queue::get), giving up with [`Error::Empty`] after
    /// `timeout`.
    ///
    /// ```
    /// let q = forja::Queue::<u8>::new().unwrap();
    /// let r = q.get_timeout(std::time::Duration::from_millis(5));
    /// assert!(matches!(r, Err(forja::Error::Empty { .. })));
    /// ```
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        crate::located::located(self.get_timeout_body(timeout), "Queue::get_timeout")
    }

    fn get_timeout_body(&self, timeout: Duration) -> Result<T> {
        self.get_until(crate::deadline::deadline(timeout))
    }

    /// Takes an item only if one is there right now, else [`Error::Empty`].
    ///
    /// ```
    /// let q = forja::Queue::<u8>::new().unwrap();
    /// assert!(q.try_get().is_err());
    /// ```
    #[track_caller]
    pub fn try_get(&self) -> Result<T> {
        crate::located::located(self.try_get_body(), "Queue::try_get")
    }

    fn try_get_body(&self) -> Result<T> {
        self.get_until(Some(Instant::now()))
    }

    /// How many items are in the queue right now (a snapshot: other
    /// processes may change it the next moment).
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// q.put(&2u8).unwrap();
    /// assert_eq!(q.qsize(), 2);
    /// ```
    pub fn qsize(&self) -> usize {
        self.ring.qsize() as usize
    }

    /// Whether the queue is empty right now.
    ///
    /// ```
    /// assert!(forja::Queue::<u8>::new().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ring.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items right now (never for an
    /// unbounded queue).
    ///
    /// ```
    /// assert!(!forja::Queue::<u8>::new().unwrap().is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        let max = self.ring.maxsize();
        max > 0 && self.ring.qsize() >= max
    }

    /// The `maxsize` given at creation (0: unbounded).
    ///
    /// ```
    /// assert_eq!(forja::Queue::<u8>::with_maxsize(3).unwrap().maxsize(), 3);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.ring.maxsize() as usize
    }

    /// Declares that this process will put no more items through this handle
    /// (and its clones), as Python's `close()`: a later `put` here is
    /// [`Error::QueueClosed`].
    ///
    /// - Only this process is affected: other processes keep putting and
    ///   getting, and a child forked later starts with an open handle (as in
    ///   Python).
    /// - Items already put stay in the queue for whoever gets them.
    /// - `get` keeps working in this process. Python (3.8 and later) raises
    ///   `ValueError: Queue is closed` for a `get` after `close` in the same
    ///   process; forja lets it read, because there is no reader to close
    ///   here (no pipe, no feeder thread: the items are in shared memory).
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// q.close();
    /// assert!(matches!(q.put(&2), Err(forja::Error::QueueClosed { .. })));
    /// assert_eq!(q.get().unwrap(), 1);
    /// ```
    pub fn close(&self) {
        self.closed_by.store(pid(), Ordering::Relaxed);
    }

    /// Whether this process called [`close`](Queue::close) on this handle
    /// (or a clone).
    ///
    /// ```
    /// let q = forja::Queue::<u8>::new().unwrap();
    /// assert!(!q.is_closed());
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.closed_by.load(Ordering::Relaxed) == pid()
    }
}
