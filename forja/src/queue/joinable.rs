//! [`JoinableQueue`]: a [`Queue`] that also counts unfinished tasks
//! (Python's `multiprocessing.JoinableQueue`).

use super::{Queue, pid};
use crate::error::{Error, Result};
use crate::sync::futex::{self, Woke};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A [`Queue`] that also counts unfinished tasks: every `put` adds one,
/// [`task_done`](JoinableQueue::task_done) removes one, and
/// [`join`](JoinableQueue::join) waits until none are left.
///
/// ```
/// let q = forja::JoinableQueue::new().unwrap();
/// q.put(&"job".to_string()).unwrap();
/// let job = q.get().unwrap();
/// q.task_done().unwrap();
/// q.join().unwrap(); // every task done
/// assert!(q.task_done().is_err()); // one too many
/// # let _ = job;
/// ```
pub struct JoinableQueue<T> {
    pub(super) queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> std::fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("qsize", &self.queue.ring.qsize())
            .field(
                "unfinished",
                &self.queue.ring.join().unfinished.load(Ordering::Relaxed),
            )
            .finish()
    }
}

crate::waits::names::named!([T] JoinableQueue<T>, crate::waits::Kind::Queue, queue.ring.id);

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// An unbounded joinable queue.
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// ```
    #[track_caller]
    pub fn new() -> Result<JoinableQueue<T>> {
        crate::located::located(Self::new_body(), "JoinableQueue::new")
    }

    fn new_body() -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            queue: Queue::new()?,
        })
    }

    /// A joinable queue holding at most `maxsize` items (0: unbounded).
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::with_maxsize(2).unwrap();
    /// assert_eq!(q.maxsize(), 2);
    /// ```
    #[track_caller]
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>> {
        crate::located::located(
            Self::with_maxsize_body(maxsize),
            "JoinableQueue::with_maxsize",
        )
    }

    fn with_maxsize_body(maxsize: usize) -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            queue: Queue::with_maxsize(maxsize)?,
        })
    }

    /// Puts `item` and counts one more unfinished task.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// ```
    #[track_caller]
    pub fn put(&self, item: &T) -> Result<()> {
        crate::located::located(self.put_body(item), "JoinableQueue::put")
    }

    fn put_body(&self, item: &T) -> Result<()> {
        self.queue.put_until(item, None, true)
    }

    /// Like [`put`](JoinableQueue::put), giving up with [`Error::Full`]
    /// after `timeout`.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put_timeout(&1u8, std::time::Duration::from_millis(5)).unwrap();
    /// ```
    #[track_caller]
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        crate::located::located(
            self.put_timeout_body(item, timeout),
            "JoinableQueue::put_timeout",
        )
    }

    fn put_timeout_body(&self, item: &T, timeout: Duration) -> Result<()> {
        self.queue
            .put_until(item, crate::deadline::deadline(timeout), true)
    }

    /// Puts `item` only if there is room right now, else [`Error::Full`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.try_put(&1u8).unwrap();
    /// ```
    #[track_caller]
    pub fn try_put(&self, item: &T) -> Result<()> {
        crate::located::located(self.try_put_body(item), "JoinableQueue::try_put")
    }

    fn try_put_body(&self, item: &T) -> Result<()> {
        self.queue.put_until(item, Some(Instant::now()), true)
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&3i32).unwrap();
    /// assert_eq!(q.get().unwrap(), 3);
    /// ```
    #[track_caller]
    pub fn get(&self) -> Result<T> {
        crate::located::located(self.get_body(), "JoinableQueue::get")
    }

    fn get_body(&self) -> Result<T> {
        self.queue.get()
    }

    /// Like [`get`](JoinableQueue::get), giving up with [`Error::Empty`]
    /// after `timeout`.
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// assert!(q.get_timeout(std::time::Duration::from_millis(5)).is_err());
    /// ```
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        crate::located::located(self.get_timeout_body(timeout), "JoinableQueue::get_timeout")
    }

    fn get_timeout_body(&self, timeout: Duration) -> Result<T> {
        self.queue.get_timeout(timeout)
    }

    /// Takes an item only if one is there right now, else [`Error::Empty`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// assert!(q.try_get().is_err());
    /// ```
    #[track_caller]
    pub fn try_get(&self) -> Result<T> {
        crate::located::located(self.try_get_body(), "JoinableQueue::try_get")
    }

    fn try_get_body(&self) -> Result<T> {
        self.queue.try_get()
    }

    /// Marks one task got from the queue as done. More calls than items put
    /// is [`Error::TooManyTaskDone`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&0u8).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert!(matches!(q.task_done(), Err(forja::Error::TooManyTaskDone { .. })));
    /// ```
    #[track_caller]
    pub fn task_done(&self) -> Result<()> {
        crate::located::located(self.task_done_body(), "JoinableQueue::task_done")
    }

    fn task_done_body(&self) -> Result<()> {
        let j = &self.queue.ring.join();
        let mut n = j.unfinished.load(Ordering::SeqCst);
        loop {
            if n == 0 {
                return Err(Error::TooManyTaskDone { pid: pid() });
            }
            match j
                .unfinished
                .compare_exchange_weak(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        if n == 1 {
            j.seq.fetch_add(1, Ordering::SeqCst);
            if j.waiters.load(Ordering::SeqCst) > 0 {
                futex::wake(&j.seq, u32::MAX);
            }
        }
        Ok(())
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<()> {
        crate::interrupt::check()?;
        let j = &self.queue.ring.join();
        let mut recorded = None;
        loop {
            j.waiters.fetch_add(1, Ordering::SeqCst);
            let s = j.seq.load(Ordering::SeqCst);
            if j.unfinished.load(Ordering::SeqCst) == 0 {
                j.waiters.fetch_sub(1, Ordering::SeqCst);
                return Ok(());
            }
            let slice = futex::slice_until(deadline, "joining a JoinableQueue");
            let rec = recorded.get_or_insert_with(|| {
                crate::waits::record::begin(
                    self.queue.ring.site(),
                    crate::waits::record::Holder::Anyone,
                    deadline.is_some(),
                )
            });
            let woke = slice.map(|s2| futex::wait(&j.seq, s, s2));
            j.waiters.fetch_sub(1, Ordering::SeqCst);
            if woke? == Woke::TimedOut {
                crate::interrupt::check()?;
                rec.check()?;
            }
        }
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](JoinableQueue::task_done).
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// q.join().unwrap(); // nothing was put
    /// ```
    #[track_caller]
    pub fn join(&self) -> Result<()> {
        crate::located::located(self.join_body(), "JoinableQueue::join")
    }

    fn join_body(&self) -> Result<()> {
        self.join_until(None)
    }

    /// Like [`join`](JoinableQueue::join) for at most `timeout`: `Ok(true)`
    /// once every item is done, `Ok(false)` if some are still unfinished at
    /// the deadline (as [`Process::join_timeout`](crate::Process::join_timeout)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// assert!(!q.join_timeout(Duration::from_millis(5)).unwrap());
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert!(q.join_timeout(Duration::MAX).unwrap());
    /// ```
    #[track_caller]
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        crate::located::located(
            self.join_timeout_body(timeout),
            "JoinableQueue::join_timeout",
        )
    }

    fn join_timeout_body(&self, timeout: Duration) -> Result<bool> {
        match self.join_until(crate::deadline::deadline(timeout)) {
            Ok(()) => Ok(true),
            Err(Error::Timeout { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Items put and not yet marked done.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// ```
    pub fn unfinished_tasks(&self) -> u64 {
        self.queue.ring.join().unfinished.load(Ordering::SeqCst)
    }

    /// See [`Queue::qsize`].
    ///
    /// ```
    /// assert_eq!(forja::JoinableQueue::<u8>::new().unwrap().qsize(), 0);
    /// ```
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// See [`Queue::is_empty`].
    ///
    /// ```
    /// assert!(forja::JoinableQueue::<u8>::new().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// See [`Queue::is_full`].
    ///
    /// ```
    /// assert!(!forja::JoinableQueue::<u8>::new().unwrap().is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    /// See [`Queue::maxsize`].
    ///
    /// ```
    /// assert_eq!(forja::JoinableQueue::<u8>::new().unwrap().maxsize(), 0);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.queue.maxsize()
    }

    /// See [`Queue::close`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// q.close();
    /// assert!(q.put(&1).is_err());
    /// ```
    pub fn close(&self) {
        self.queue.close()
    }

    /// See [`Queue::is_closed`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}
