//! Python's `concurrent.futures` over a [`Pool`]: [`ProcessPoolExecutor`],
//! its [`Future`]s and [`as_completed`].

use super::outcome::ChunkOutcome;
use super::scheduler::{PoolCore, lock, wait_changed};
use super::{AsyncResult, Imap, Pool};
use crate::error::{Error, Result};
use crate::registry;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Python's `concurrent.futures.ProcessPoolExecutor`: a [`Pool`] whose
/// [`submit`](Self::submit) gives a [`Future`].
///
/// Dropping it terminates the workers, like dropping a [`Pool`]; call
/// [`shutdown(true)`](Self::shutdown) first to wait for what was submitted
/// (Python's `with ProcessPoolExecutor() as ex:` does that at the end of the
/// block).
///
/// ```
/// use forja::prelude::*;
///
/// let ex = ProcessPoolExecutor::new(2).unwrap();
/// let futures: Vec<_> = (1..=3u64).map(|x| ex.submit(|x: u64| x * x, x).unwrap()).collect();
/// let mut got: Vec<u64> = as_completed(&futures).map(|f| f.unwrap().result().unwrap()).collect();
/// got.sort();
/// assert_eq!(got, vec![1, 4, 9]);
/// ex.shutdown(true).unwrap();
/// ```
pub struct ProcessPoolExecutor {
    pool: Pool,
}

impl ProcessPoolExecutor {
    /// An executor with `max_workers` worker processes, forked now.
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(2).unwrap();
    /// assert_eq!(ex.pool().size(), 2);
    /// ```
    #[track_caller]
    pub fn new(max_workers: usize) -> Result<ProcessPoolExecutor> {
        crate::located::located(Self::new_body(max_workers), "ProcessPoolExecutor::new")
    }

    fn new_body(max_workers: usize) -> Result<ProcessPoolExecutor> {
        Ok(ProcessPoolExecutor {
            pool: Pool::new(max_workers)?,
        })
    }

    /// An executor over a pool made with [`Pool::builder`] (an initializer,
    /// `maxtasksperchild`...).
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).maxtasksperchild(10).build().unwrap();
    /// let ex = forja::ProcessPoolExecutor::from_pool(pool);
    /// assert_eq!(ex.submit(|x: i32| x + 1, 1).unwrap().result().unwrap(), 2);
    /// ```
    pub fn from_pool(pool: Pool) -> ProcessPoolExecutor {
        ProcessPoolExecutor { pool }
    }

    /// The pool underneath.
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// assert_eq!(ex.pool().worker_pids().len(), 1);
    /// ```
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Schedules `f(arg)` in a worker and returns its [`Future`] at once.
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// let f = ex.submit(|s: String| s.to_uppercase(), "hola".into()).unwrap();
    /// assert_eq!(f.result().unwrap(), "HOLA");
    /// ```
    #[track_caller]
    pub fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        crate::located::located(self.submit_body(f, arg), "ProcessPoolExecutor::submit")
    }

    fn submit_body<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        Ok(Future {
            result: self.pool.apply_async(f, arg)?,
        })
    }

    /// Python's `executor.map(f, items)`: the results in input order, each
    /// as soon as it is ready (the pool's [`imap`](Pool::imap)).
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(2).unwrap();
    /// let v: Vec<u32> = ex.map(|x: u32| x + 1, 0..4).unwrap().map(|r| r.unwrap()).collect();
    /// assert_eq!(v, vec![1, 2, 3, 4]);
    /// ```
    #[track_caller]
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Imap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        crate::located::located(self.map_body(f, items), "ProcessPoolExecutor::map")
    }

    fn map_body<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Imap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.pool.imap(f, items)
    }

    /// Takes no more tasks; with `wait`, also waits for every submitted
    /// task (and its callbacks) and for the workers to exit (Python's
    /// `shutdown(wait=True)`).
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// let f = ex.submit(|x: u8| x, 3).unwrap();
    /// ex.shutdown(true).unwrap();
    /// assert!(f.done());
    /// assert!(ex.submit(|x: u8| x, 3).is_err());
    /// ```
    #[track_caller]
    pub fn shutdown(&self, wait: bool) -> Result<()> {
        crate::located::located(self.shutdown_body(wait), "ProcessPoolExecutor::shutdown")
    }

    fn shutdown_body(&self, wait: bool) -> Result<()> {
        self.pool.close()?;
        if wait {
            self.pool.join()?;
        }
        Ok(())
    }
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("pool", &self.pool)
            .finish()
    }
}

/// The result of [`ProcessPoolExecutor::submit`], later (Python's
/// `concurrent.futures.Future`).
///
/// ```
/// use std::time::Duration;
/// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
/// let f = ex.submit(|x: u64| x * 2, 21).unwrap();
/// assert_eq!(f.result_timeout(Duration::from_secs(10)).unwrap(), 42);
/// assert!(f.done());
/// ```
pub struct Future<R> {
    result: AsyncResult<R>,
}

impl<R> Future<R> {
    fn shared(&self) -> &PoolCore {
        &self.result.shared
    }

    /// Waits for the result: its value, or why there is none (the task
    /// panicked, its worker died, it was cancelled: [`Error::Cancelled`]).
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// let f = ex.submit(|x: i32| if x < 0 { panic!("negative") } else { x }, -1).unwrap();
    /// assert!(f.result().unwrap_err().to_string().contains("negative"));
    /// ```
    #[track_caller]
    pub fn result(&self) -> Result<R> {
        crate::located::located(self.result_body(), "Future::result")
    }

    fn result_body(&self) -> Result<R> {
        self.result.get()
    }

    /// [`result`](Self::result), waiting at most `timeout`:
    /// [`Error::Timeout`] then (the task keeps running).
    ///
    /// ```
    /// use std::time::Duration;
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// let f = ex.submit(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 2000).unwrap();
    /// assert!(matches!(f.result_timeout(Duration::from_millis(10)), Err(forja::Error::Timeout { .. })));
    /// ```
    #[track_caller]
    pub fn result_timeout(&self, timeout: Duration) -> Result<R> {
        crate::located::located(self.result_timeout_body(timeout), "Future::result_timeout")
    }

    fn result_timeout_body(&self, timeout: Duration) -> Result<R> {
        self.result.get_timeout(timeout)
    }

    /// Whether it finished or was cancelled (does not wait). As in Python,
    /// it is already true when its done callbacks run.
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// let f = ex.submit(|x: u8| x, 1).unwrap();
    /// f.result().unwrap();
    /// assert!(f.done());
    /// ```
    pub fn done(&self) -> bool {
        if super::scheduler::check_creator(self.shared()).is_err() {
            return false;
        }
        let inner = lock(self.shared());
        inner
            .jobs
            .get(&self.result.job)
            .is_none_or(|j| j.remaining == 0)
    }

    /// Whether a worker has it (it was handed out and is not done).
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// let f = ex.submit(|x: u8| x, 1).unwrap();
    /// f.result().unwrap();
    /// assert!(!f.running());
    /// ```
    pub fn running(&self) -> bool {
        let inner = lock(self.shared());
        inner
            .jobs
            .get(&self.result.job)
            .is_some_and(|j| j.dispatched > 0 && j.remaining > 0)
    }

    /// Cancels it if no worker has taken it yet: `true` then (its
    /// [`result`](Self::result) is [`Error::Cancelled`] and its done
    /// callbacks run). `false` once it runs or is done, as in Python.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// let nap = |ms: u64| std::thread::sleep(Duration::from_millis(ms));
    /// // The one worker takes the first two tasks (one runs, one waits in its socket).
    /// let busy: Vec<_> = (0..2).map(|_| ex.submit(nap, 300).unwrap()).collect();
    /// let queued = ex.submit(nap, 300).unwrap();
    /// assert!(queued.cancel());
    /// assert!(queued.cancelled());
    /// assert!(matches!(queued.result(), Err(forja::Error::Cancelled { .. })));
    /// assert!(!busy[0].cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        let Some(callbacks) = lock(self.shared()).cancel_job(self.result.job) else {
            return false;
        };
        for callback in callbacks {
            // A panicking callback must not leave the future waiting for it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback));
            lock(self.shared()).callback_ran(self.result.job);
        }
        self.shared().changed.notify_all();
        true
    }

    /// Whether [`cancel`](Self::cancel) cancelled it.
    ///
    /// ```
    /// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
    /// let f = ex.submit(|x: u8| x, 1).unwrap();
    /// f.result().unwrap();
    /// assert!(!f.cancel());
    /// assert!(!f.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        let inner = lock(self.shared());
        inner
            .jobs
            .get(&self.result.job)
            .is_some_and(|j| j.cancelled)
    }

    /// Calls `f` with the outcome once it is done (finished, failed or
    /// cancelled): in the pool's result thread, in the parent, in the order
    /// tasks finish; at once, in this thread, if it is already done (as
    /// Python's `add_done_callback`). `f` should be quick: the next results
    /// wait for it.
    ///
    /// ```
    /// use forja::prelude::*;
    /// use std::sync::mpsc;
    ///
    /// let ex = ProcessPoolExecutor::new(1).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let f = ex.submit(|x: u32| x + 1, 1).unwrap();
    /// f.add_done_callback(move |r: forja::Result<u32>| tx.send(r.unwrap()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 2);
    /// ```
    pub fn add_done_callback<F>(&self, f: F)
    where
        F: FnOnce(Result<R>) + Send + 'static,
        R: Send + 'static,
    {
        let decode = self.result.decode;
        self.result.attach(Box::new(move |chunks: &[ChunkOutcome]| {
            let outcome = decode(chunks);
            Box::new(move || f(outcome))
        }));
    }
}

impl<R> fmt::Debug for Future<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future")
            .field("job", &self.result.job)
            .field("done", &self.done())
            .finish()
    }
}

/// The futures of `futures` as they finish (or are cancelled), each once:
/// Python's `concurrent.futures.as_completed(fs)`. Those already done come
/// first, in the order they finished.
///
/// ```
/// use forja::prelude::*;
/// use std::time::Duration;
///
/// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
/// let ex = ProcessPoolExecutor::new(3).unwrap();
/// let fs: Vec<_> = [300, 10, 150].into_iter().map(|ms| ex.submit(nap, ms).unwrap()).collect();
/// let order: Vec<u64> = as_completed(&fs).map(|f| f.unwrap().result().unwrap()).collect();
/// assert_eq!(order, vec![10, 150, 300]);
/// ```
pub fn as_completed<R>(futures: &[Future<R>]) -> AsCompleted<'_, R> {
    as_completed_timeout(futures, Duration::MAX)
}

/// [`as_completed`], up to `timeout` from now: past it the iterator gives
/// one [`Error::Timeout`] and ends (Python raises `TimeoutError`).
///
/// ```
/// use forja::prelude::*;
/// use std::time::Duration;
///
/// let ex = ProcessPoolExecutor::new(1).unwrap();
/// let fs = vec![ex.submit(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 2000).unwrap()];
/// let mut it = as_completed_timeout(&fs, Duration::from_millis(20));
/// assert!(matches!(it.next(), Some(Err(Error::Timeout { .. }))));
/// assert!(it.next().is_none());
/// ```
pub fn as_completed_timeout<R>(futures: &[Future<R>], timeout: Duration) -> AsCompleted<'_, R> {
    AsCompleted {
        futures,
        yielded: vec![false; futures.len()],
        left: futures.len(),
        deadline: crate::deadline::deadline(timeout),
        over: false,
    }
}

/// The iterator of [`as_completed`]: `Ok(&future)` as each finishes.
///
/// ```
/// let ex = forja::ProcessPoolExecutor::new(1).unwrap();
/// let fs = vec![ex.submit(|x: u8| x, 1).unwrap()];
/// assert_eq!(forja::as_completed(&fs).count(), 1);
/// ```
pub struct AsCompleted<'a, R> {
    futures: &'a [Future<R>],
    yielded: Vec<bool>,
    left: usize,
    deadline: Option<Instant>,
    over: bool,
}

impl<'a, R> AsCompleted<'a, R> {
    /// The done one that finished first among those not given yet.
    fn first_done(&self) -> Option<usize> {
        (0..self.futures.len())
            .filter(|&i| !self.yielded[i])
            .filter_map(|i| {
                let f = &self.futures[i];
                lock(f.shared())
                    .finished_at(f.result.job)
                    .map(|seq| (seq, i))
            })
            .min()
            .map(|(_, i)| i)
    }
}

impl<'a, R> Iterator for AsCompleted<'a, R> {
    type Item = Result<&'a Future<R>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.over {
            return None;
        }
        loop {
            if let Err(e) = registry::check_interrupt() {
                self.over = true;
                return Some(Err(e));
            }
            if let Some(i) = self.first_done() {
                self.yielded[i] = true;
                self.left -= 1;
                return Some(Ok(&self.futures[i]));
            }
            let mut slice = registry::POLL_INTERVAL;
            if let Some(d) = self.deadline {
                let now = Instant::now();
                if now >= d {
                    self.over = true;
                    return Some(Err(Error::Timeout {
                        what: "as_completed: waiting for futures",
                        pid: crate::os::pid(),
                    }));
                }
                slice = slice.min(d - now);
            }
            // Wait for a change in the pool of the first pending future
            // (checked again under its lock: no wake-up is lost for it).
            let pending = (0..self.futures.len())
                .find(|&i| !self.yielded[i])
                .expect("left > 0");
            let shared = self.futures[pending].shared();
            let jobs: Vec<u64> = self
                .futures
                .iter()
                .zip(&self.yielded)
                .filter(|(f, y)| !**y && Arc::ptr_eq(f.shared(), shared))
                .map(|(f, _)| f.result.job)
                .collect();
            wait_changed(shared, slice, |inner| {
                jobs.iter().any(|&j| inner.finished_at(j).is_some())
            });
        }
    }
}

impl<R> fmt::Debug for AsCompleted<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("futures", &self.futures.len())
            .field("left", &self.left)
            .finish()
    }
}
