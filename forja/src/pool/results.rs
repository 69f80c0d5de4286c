//! The handles a caller waits on: [`AsyncResult`], and the [`Imap`] and
//! [`ImapUnordered`] iterators; each takes its job's chunks out of the pool
//! as they come in, and drops the job when it goes.

use super::outcome::{ChunkOutcome, Fail, decode_chunk};
use super::scheduler::{PoolCore, job_done, lock, wait_until};
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// A result that will be ready later: from [`Pool::apply_async`](super::Pool::apply_async) and
/// [`Pool::map_async`](super::Pool::map_async).
///
/// [`get`](Self::get) may be called more than once (each call decodes the
/// result again). Dropping it discards the result.
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
    shared: PoolCore,
    job: u64,
    decode: fn(&[ChunkOutcome]) -> Result<T>,
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
    pub fn get(&self) -> Result<T> {
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
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
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
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
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
        let mut inner = lock(&self.shared);
        if !job_done(&inner, self.job) {
            let _ = inner.pump(Duration::ZERO);
        }
        job_done(&inner, self.job)
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
    let mut inner = lock(shared);
    if let Some(j) = inner.jobs.get_mut(&job) {
        if j.remaining == 0 {
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
