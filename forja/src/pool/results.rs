//! The handles a caller waits on: [`AsyncResult`], and the [`Imap`] and
//! [`ImapUnordered`] iterators; each takes its job's chunks out of the pool
//! as they come in, and drops the job when it goes.

use super::outcome::{ChunkOutcome, Fail, decode_chunk};
use super::scheduler::{JobCallback, PoolCore, job_done, lock, wait_until};
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// A result that will be ready later: from [`Pool::apply_async`](super::Pool::apply_async) and
/// [`Pool::map_async`](super::Pool::map_async).
///
/// [`get`](Self::get) may be called more than once (each call decodes the
/// result again). Dropping it discards the result (its callbacks still run).
///
/// Results arrive while the parent does other work: the pool's result
/// thread collects them, so [`ready`](Self::ready) becomes true without a
/// call that waits. [`callback`](Self::callback) and
/// [`error_callback`](Self::error_callback) are Python's
/// `apply_async(f, args, callback=..., error_callback=...)`.
///
/// ```
/// use std::time::Duration;
/// let pool = forja::Pool::new(1).unwrap();
/// let r = pool.apply_async(|x: i32| x * 3, 5).unwrap();
/// assert_eq!(r.get_timeout(Duration::from_secs(10)).unwrap(), 15);
/// assert!(r.ready());
/// assert_eq!(r.successful(), Some(true));
/// ```
pub struct AsyncResult<T> {
    pub(super) shared: PoolCore,
    pub(super) job: u64,
    pub(super) decode: fn(&[ChunkOutcome]) -> Result<T>,
}

impl<T> AsyncResult<T> {
    /// The handle on `job`, whose chunks `decode` turns into its result.
    pub(super) fn new(
        shared: PoolCore,
        job: u64,
        decode: fn(&[ChunkOutcome]) -> Result<T>,
    ) -> Self {
        AsyncResult {
            shared,
            job,
            decode,
        }
    }

    fn finish(&self) -> Result<T> {
        let inner = lock(&self.shared);
        match inner.jobs.get(&self.job) {
            Some(j) => (self.decode)(&j.chunks),
            None => Err(Error::PoolClosed {
                state: "terminated",
                pid: crate::os::pid(),
            }),
        }
    }

    /// Waits for the result.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.apply_async(|x: u8| x, 1).unwrap().get().unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn get(&self) -> Result<T> {
        crate::located::located(self.get_body(), "AsyncResult::get")
    }

    fn get_body(&self) -> Result<T> {
        wait_until(&self.shared, None, |inner| job_done(inner, self.job))?;
        self.finish()
    }

    /// Waits at most `timeout`; [`Error::Timeout`] if it is not ready by
    /// then (the task keeps running: ask again later).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 2000).unwrap();
    /// assert!(matches!(r.get_timeout(Duration::from_millis(10)), Err(forja::Error::Timeout { .. })));
    /// ```
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        crate::located::located(self.get_timeout_body(timeout), "AsyncResult::get_timeout")
    }

    fn get_timeout_body(&self, timeout: Duration) -> Result<T> {
        let deadline = crate::deadline::deadline(timeout);
        if !wait_until(&self.shared, deadline, |inner| job_done(inner, self.job))? {
            return Err(Error::Timeout {
                what: "waiting for a pool result",
                pid: crate::os::pid(),
            });
        }
        self.finish()
    }

    /// Waits until it is ready (or `timeout`); `Ok(true)` if it is.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async(|x: u8| x, 1).unwrap();
    /// assert!(r.wait(std::time::Duration::from_secs(10)).unwrap());
    /// ```
    #[track_caller]
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        crate::located::located(self.wait_body(timeout), "AsyncResult::wait")
    }

    fn wait_body(&self, timeout: Duration) -> Result<bool> {
        wait_until(&self.shared, crate::deadline::deadline(timeout), |inner| {
            job_done(inner, self.job)
        })
    }

    /// Whether the result is there (does not wait).
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async(|x: u8| x, 1).unwrap();
    /// r.get().unwrap();
    /// assert!(r.ready());
    /// ```
    pub fn ready(&self) -> bool {
        if super::scheduler::check_creator(&self.shared).is_err() {
            return false;
        }
        job_done(&lock(&self.shared), self.job)
    }

    /// Calls `f` with the result when the task succeeds (Python's
    /// `callback=`): in the parent, on the pool's result thread, in the
    /// order results come in; at once, in this thread, if the result is
    /// already there. [`get`](Self::get) returns after the callback has run,
    /// as in Python. `f` should be quick (later results wait for it), and
    /// must not wait for pool results itself.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = forja::Pool::new(2).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool
    ///     .apply_async(|x: u64| x * x, 7)
    ///     .unwrap()
    ///     .callback(move |v: u64| tx.send(v).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 49);
    /// assert_eq!(r.get().unwrap(), 49);
    /// ```
    pub fn callback<F>(self, f: F) -> Self
    where
        F: FnOnce(T) + Send + 'static,
        T: Send + 'static,
    {
        let decode = self.decode;
        self.attach(Box::new(move |chunks: &[ChunkOutcome]| {
            let outcome = decode(chunks);
            Box::new(move || {
                if let Ok(v) = outcome {
                    f(v)
                }
            })
        }));
        self
    }

    /// Calls `f` with the error when the task fails: a panic (its message is
    /// in the [`Error`]), a dead worker (Python's `error_callback=`). Run
    /// like [`callback`](Self::callback)'s.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = forja::Pool::new(1).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let _r = pool
    ///     .apply_async(|x: i32| if x < 0 { panic!("negative: {x}") } else { x }, -3)
    ///     .unwrap()
    ///     .error_callback(move |e: forja::Error| tx.send(e.to_string()).unwrap());
    /// assert!(rx.recv().unwrap().contains("negative: -3"));
    /// ```
    pub fn error_callback<F>(self, f: F) -> Self
    where
        F: FnOnce(Error) + Send + 'static,
        T: 'static,
    {
        let decode = self.decode;
        self.attach(Box::new(move |chunks: &[ChunkOutcome]| {
            let error = decode(chunks).err();
            Box::new(move || {
                if let Some(e) = error {
                    f(e)
                }
            })
        }));
        self
    }

    /// Attaches `callback` to the job; runs it now (without the lock) if
    /// the job has finished.
    pub(super) fn attach(&self, callback: JobCallback) {
        if super::scheduler::check_creator(&self.shared).is_err() {
            return;
        }
        let now = lock(&self.shared).attach(self.job, callback);
        if let Some(run) = now {
            run();
        }
    }

    /// `None` while not ready; then whether it succeeded (no panic, no dead
    /// worker).
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async(|x: i32| if x < 0 { panic!("negative") } else { x }, -1).unwrap();
    /// assert!(r.get().is_err());
    /// assert_eq!(r.successful(), Some(false));
    /// ```
    pub fn successful(&self) -> Option<bool> {
        if !self.ready() {
            return None;
        }
        Some(self.finish().is_ok())
    }
}

impl<T> Drop for AsyncResult<T> {
    fn drop(&mut self) {
        abandon(&self.shared, self.job);
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("job", &self.job)
            .field("ready", &job_done(&lock(&self.shared), self.job))
            .finish()
    }
}

fn abandon(shared: &PoolCore, job: u64) {
    if super::scheduler::check_creator(shared).is_err() {
        return; // a fork: the lock is not ours to touch
    }
    let mut inner = lock(shared);
    if let Some(j) = inner.jobs.get_mut(&job) {
        if j.remaining == 0 && j.callbacks_left == 0 {
            inner.jobs.remove(&job);
        } else {
            j.abandoned = true;
        }
    }
}

/// The iterator of [`Pool::imap`](super::Pool::imap): results in input order, each as soon as
/// it is ready. Each item is a `Result` (a panic in that task, a dead
/// worker...).
///
/// ```
/// let pool = forja::Pool::new(2).unwrap();
/// let mut it = pool.imap(|x: i32| x + 1, vec![1, 2]).unwrap();
/// assert_eq!(it.next().unwrap().unwrap(), 2);
/// assert_eq!(it.next().unwrap().unwrap(), 3);
/// assert!(it.next().is_none());
/// ```
pub struct Imap<R> {
    shared: PoolCore,
    job: u64,
    next_chunk: usize,
    chunks: usize,
    buffer: VecDeque<Result<R>>,
}

/// Takes chunk `chunk` of `job` out once it is in (pumping meanwhile).
pub(super) fn take_chunk(
    shared: &PoolCore,
    job: u64,
    chunk: Option<usize>,
) -> Result<ChunkOutcome> {
    let mut picked = None;
    wait_until(shared, None, |inner| {
        let Some(j) = inner.jobs.get(&job) else {
            return true;
        };
        match chunk {
            Some(c) => !matches!(j.chunks[c], ChunkOutcome::Pending),
            None => !j.finished.is_empty(),
        }
    })?;
    let mut inner = lock(shared);
    if let Some(j) = inner.jobs.get_mut(&job) {
        let c = match chunk {
            Some(c) => Some(c),
            None => j.finished.pop_front(),
        };
        if let Some(c) = c {
            picked = Some(std::mem::replace(
                &mut j.chunks[c],
                ChunkOutcome::Failed(Fail::Terminated),
            ));
        }
    }
    Ok(picked.unwrap_or(ChunkOutcome::Failed(Fail::Terminated)))
}

fn next_from_chunk<R: DeserializeOwned>(
    buffer: &mut VecDeque<Result<R>>,
    outcome: ChunkOutcome,
) -> Option<Result<R>> {
    match decode_chunk::<R>(&outcome) {
        Ok(items) => buffer.extend(items),
        Err(e) => buffer.push_back(Err(e)),
    }
    buffer.pop_front()
}

impl<R> Imap<R> {
    /// The iterator over `job`, which has `chunks` chunks.
    pub(super) fn new(shared: PoolCore, job: u64, chunks: usize) -> Self {
        Imap {
            shared,
            job,
            next_chunk: 0,
            chunks,
            buffer: VecDeque::new(),
        }
    }
}

impl<R: DeserializeOwned> Iterator for Imap<R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        if let Some(r) = self.buffer.pop_front() {
            return Some(r);
        }
        if self.next_chunk >= self.chunks {
            return None;
        }
        let c = self.next_chunk;
        self.next_chunk += 1;
        match take_chunk(&self.shared, self.job, Some(c)) {
            Ok(outcome) => next_from_chunk(&mut self.buffer, outcome),
            Err(e) => Some(Err(e)),
        }
    }
}

impl<R> Drop for Imap<R> {
    fn drop(&mut self) {
        abandon(&self.shared, self.job);
    }
}

impl<R> fmt::Debug for Imap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("job", &self.job)
            .field("chunks", &self.chunks)
            .field("next_chunk", &self.next_chunk)
            .finish()
    }
}

/// The iterator of [`Pool::imap_unordered`](super::Pool::imap_unordered): results as they finish.
///
/// ```
/// let pool = forja::Pool::new(2).unwrap();
/// let n = pool.imap_unordered(|x: i32| x, 0..10).unwrap().filter(|r| r.is_ok()).count();
/// assert_eq!(n, 10);
/// ```
pub struct ImapUnordered<R> {
    shared: PoolCore,
    job: u64,
    taken: usize,
    chunks: usize,
    buffer: VecDeque<Result<R>>,
}

impl<R> ImapUnordered<R> {
    /// The iterator over `job`, which has `chunks` chunks.
    pub(super) fn new(shared: PoolCore, job: u64, chunks: usize) -> Self {
        ImapUnordered {
            shared,
            job,
            taken: 0,
            chunks,
            buffer: VecDeque::new(),
        }
    }
}

impl<R: DeserializeOwned> Iterator for ImapUnordered<R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        if let Some(r) = self.buffer.pop_front() {
            return Some(r);
        }
        if self.taken >= self.chunks {
            return None;
        }
        self.taken += 1;
        match take_chunk(&self.shared, self.job, None) {
            Ok(outcome) => next_from_chunk(&mut self.buffer, outcome),
            Err(e) => Some(Err(e)),
        }
    }
}

impl<R> Drop for ImapUnordered<R> {
    fn drop(&mut self) {
        abandon(&self.shared, self.job);
    }
}

impl<R> fmt::Debug for ImapUnordered<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("job", &self.job)
            .field("chunks", &self.chunks)
            .field("taken", &self.taken)
            .finish()
    }
}
