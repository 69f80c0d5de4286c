//! [`Pool`]: a fixed set of worker processes that run many small tasks, like
//! Python's `multiprocessing.Pool`.
//!
//! # How tasks reach the workers
//!
//! Workers are forked once and persist; tasks do not fork. A task is a
//! function or closure plus its argument. Arguments and results travel over
//! one socket pair per worker, encoded with serde (`postcard`). The function
//! itself cannot be encoded, but a worker is a copy of the parent, so it
//! already has the function's *code* — as long as that code was loaded
//! before the worker was forked. So a task function must be `Copy + 'static`
//! (a `fn` item, or a closure that captures only `Copy` values such as
//! numbers): its few bytes are copied to the worker together with the
//! address of a small generic function that runs it.
//!
//! Inside the forja kernel each cell is a library loaded after the previous
//! ones, so a closure written in a later cell than the pool does not exist in
//! the pool's workers. The pool notices: it records how many shared objects
//! the dynamic loader had loaded (glibc's `dlpi_adds`) when it forked its
//! workers, and when a task is submitted after more were loaded, it
//! **re-forks its workers** (once: the new ones serve every later task until
//! another library is loaded). Old workers finish what they were running and
//! then stop. In an ordinary program nothing is ever loaded later, so
//! workers are forked exactly once. [`Pool::worker_starts`] counts forks, so
//! the cost can be measured.
//!
//! A panicking task gives an `Err` with the panic's message; the worker
//! survives. A worker that dies (killed, or a task that aborts) turns the
//! tasks it held into [`Error::WorkerDied`] and is replaced; nothing hangs.
//!
//! Workers are daemons: they are terminated with their parent (see
//! [`Process`](crate::Process) for the mechanism and its caveat).
//!
//! ```
//! use forja::prelude::*;
//!
//! fn square(x: u64) -> u64 { x * x }
//!
//! let pool = Pool::new(2).unwrap();
//! assert_eq!(pool.map(square, 1..=4).unwrap(), vec![1, 4, 9, 16]);
//! let offset = 10;
//! assert_eq!(pool.map(move |x: i32| x + offset, vec![1, 2]).unwrap(), vec![11, 12]);
//! ```

mod outcome;
mod protocol;
mod results;
mod scheduler;
mod task;
mod worker;

pub use results::{AsyncResult, Imap, ImapUnordered};

use crate::error::{Error, Result};
use crate::registry;
use outcome::{decode_all, decode_chunk_into, decode_one};
use results::take_chunk;
use scheduler::{PoolInner, PoolState, Shared, lock, wait_until};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::{Arc, Mutex};
use task::{chunk_messages, loaded_objects_stamp};
use worker::Initializer;

/// Python's default chunksize for `map`: ceil(len / (4 × workers)).
fn auto_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(4 * workers.max(1)).max(1)
}

/// A pool of worker processes (Python's `multiprocessing.Pool`).
///
/// Task functions must be `Copy + 'static`: `fn` items, or closures that
/// capture only `Copy` values (see the [module docs](self) for why).
/// Arguments and results must be serde types.
///
/// ```
/// use forja::prelude::*;
///
/// let pool = Pool::new(2).unwrap();
/// let total: u64 = pool.map(|x: u64| x * 2, 0..100).unwrap().iter().sum();
/// assert_eq!(total, 9900);
/// pool.close().unwrap();
/// pool.join().unwrap();
/// ```
pub struct Pool {
    shared: Shared,
    size: usize,
}

/// Builds a [`Pool`] with options (Python's `Pool(processes, initializer)`).
///
/// ```
/// let pool = forja::Pool::builder()
///     .processes(2)
///     .initializer(|| eprintln!("worker {} ready", std::process::id()))
///     .build()
///     .unwrap();
/// assert_eq!(pool.size(), 2);
/// ```
pub struct PoolBuilder {
    processes: Option<usize>,
    initializer: Option<Initializer>,
}

impl PoolBuilder {
    /// How many workers (default: [`process_cpu_count`](crate::process_cpu_count)).
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).build().unwrap();
    /// assert_eq!(pool.size(), 1);
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A function each worker runs once, when it starts (also in workers
    /// started later to replace or re-fork others). If it panics, the pool
    /// reports [`Error::PoolInitializerFailed`].
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).initializer(|| {}).build().unwrap();
    /// assert_eq!(pool.apply(|x: i32| x + 1, 1).unwrap(), 2);
    /// ```
    pub fn initializer<F>(mut self, f: F) -> Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.initializer = Some(Arc::new(f));
        self
    }

    /// Starts the workers.
    ///
    /// ```
    /// let pool = forja::Pool::builder().build().unwrap();
    /// assert_eq!(pool.size(), forja::process_cpu_count());
    /// ```
    pub fn build(self) -> Result<Pool> {
        let size = self.processes.unwrap_or_else(crate::process_cpu_count);
        if size == 0 {
            return Err(Error::InvalidArgument {
                message: "a Pool needs at least 1 worker process".into(),
                pid: crate::os::pid(),
            });
        }
        registry::check_interrupt()?;
        let mut inner = PoolInner::new(size, self.initializer);
        if let Err(e) = inner.ensure_workers(loaded_objects_stamp()) {
            inner.terminate();
            return Err(e);
        }
        Ok(Pool {
            shared: Arc::new(Mutex::new(inner)),
            size,
        })
    }
}

/// Functions that [`Pool::starmap`] can call with a tuple of arguments
/// spread out: `Fn(A)`, `Fn(A, B)`, `Fn(A, B, C)`, `Fn(A, B, C, D)`.
pub trait StarCall<Args> {
    /// What the function returns.
    type Output;
    /// Calls it with the tuple's elements as arguments.
    fn star_call(&self, args: Args) -> Self::Output;
}

macro_rules! star_call {
    ($($a:ident),*) => {
        impl<Func, $($a,)* R> StarCall<($($a,)*)> for Func
        where
            Func: Fn($($a),*) -> R,
        {
            type Output = R;
            #[allow(non_snake_case)]
            fn star_call(&self, ($($a,)*): ($($a,)*)) -> R {
                self($($a),*)
            }
        }
    };
}
star_call!(A);
star_call!(A, B);
star_call!(A, B, C);
star_call!(A, B, C, D);

impl Pool {
    /// A pool of `processes` workers, forked now.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// assert_eq!(pool.size(), 2);
    /// ```
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A pool with one worker per CPU this process may use
    /// ([`process_cpu_count`](crate::process_cpu_count), as Python 3.13).
    ///
    /// ```
    /// let pool = forja::Pool::with_cpus().unwrap();
    /// assert_eq!(pool.size(), forja::process_cpu_count());
    /// ```
    pub fn with_cpus() -> Result<Pool> {
        Pool::builder().build()
    }

    /// Options: number of processes, initializer.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).build().unwrap();
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            initializer: None,
        }
    }

    /// How many workers it keeps.
    ///
    /// ```
    /// assert_eq!(forja::Pool::new(1).unwrap().size(), 1);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// The pids of its current workers.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// assert_eq!(pool.worker_pids().len(), 2);
    /// ```
    pub fn worker_pids(&self) -> Vec<i32> {
        lock(&self.shared)
            .workers
            .iter()
            .filter(|w| !w.retiring)
            .map(|w| w.pid)
            .collect()
    }

    /// How many worker processes it has forked so far: its size at first,
    /// more after replacing dead workers or re-forking for code loaded later
    /// (a later notebook cell).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// pool.map(|x: u8| x, vec![1, 2, 3]).unwrap();
    /// assert_eq!(pool.worker_starts(), 2);
    /// ```
    pub fn worker_starts(&self) -> u64 {
        lock(&self.shared).worker_starts
    }

    /// "open", "closed" or "terminated", and how many tasks wait (for the
    /// rich display).
    pub(crate) fn state_summary(&self) -> (&'static str, usize) {
        let inner = lock(&self.shared);
        (inner.state_name(), inner.queue.len())
    }

    /// Uses `chunksize` items per task message for the calls made through
    /// the returned view (`map`, `imap`...). Bigger chunks mean less
    /// overhead; smaller ones balance uneven tasks better.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let v = pool.chunksize(1).map(|x: i32| -x, vec![1, 2]).unwrap();
    /// assert_eq!(v, vec![-1, -2]);
    /// ```
    pub fn chunksize(&self, chunksize: usize) -> WithChunksize<'_> {
        WithChunksize {
            pool: self,
            chunksize: Some(chunksize.max(1)),
        }
    }

    /// The view with each call's default chunksize: `Pool`'s own `map`,
    /// `imap`... go through it.
    fn default_chunksize(&self) -> WithChunksize<'_> {
        WithChunksize {
            pool: self,
            chunksize: None,
        }
    }

    fn submit<F, A, R>(&self, f: &F, items: &[A], chunksize: usize) -> Result<u64>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let messages = chunk_messages(f, items, chunksize)?;
        lock(&self.shared).submit(messages)
    }

    /// Applies `f` to every item in the workers; results in input order.
    /// Items are sent in chunks of `ceil(len / (4 × workers))`, as in Python
    /// (change it with [`chunksize`](Self::chunksize)). The first failed
    /// item (a panic, a dead worker) makes the whole call an `Err`.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let words = pool.map(|n: usize| "ab".repeat(n), vec![0, 1, 2]).unwrap();
    /// assert_eq!(words, vec!["", "ab", "abab"]);
    /// ```
    pub fn map<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().map(f, items)
    }

    /// Like [`map`](Self::map), but calls `f` with each tuple spread into
    /// arguments (Python's `starmap`).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let sums = pool.starmap(|a: i32, b: i32| a + b, vec![(1, 2), (3, 4)]).unwrap();
    /// assert_eq!(sums, vec![3, 7]);
    /// ```
    pub fn starmap<F, Args, I>(&self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        F: StarCall<Args> + Copy + 'static,
        Args: Serialize + DeserializeOwned,
        F::Output: Serialize + DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.map(move |args: Args| f.star_call(args), items)
    }

    /// Runs `f(arg)` in a worker and waits for the result.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.apply(|s: String| s.len(), "hola".into()).unwrap(), 4);
    /// ```
    pub fn apply<F, A, R>(&self, f: F, arg: A) -> Result<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.apply_async(f, arg)?.get()
    }

    /// Starts `f(arg)` in a worker and returns at once; get the result from
    /// the [`AsyncResult`].
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let pending: Vec<_> = (0..4).map(|i| pool.apply_async(|x: u32| x * 10, i).unwrap()).collect();
    /// let got: Vec<u32> = pending.iter().map(|r| r.get().unwrap()).collect();
    /// assert_eq!(got, vec![0, 10, 20, 30]);
    /// ```
    pub fn apply_async<F, A, R>(&self, f: F, arg: A) -> Result<AsyncResult<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let job = self.submit(&f, std::slice::from_ref(&arg), 1)?;
        Ok(AsyncResult::new(self.shared.clone(), job, decode_one::<R>))
    }

    /// [`map`](Self::map) without waiting: the [`AsyncResult`] gives the
    /// whole `Vec` later.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let r = pool.map_async(|x: i32| x + 1, vec![1, 2, 3]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 3, 4]);
    /// ```
    pub fn map_async<F, A, R, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().map_async(f, items)
    }

    /// Like [`map`](Self::map), but an iterator that yields each result (in
    /// input order) as soon as it and those before it are ready. All items are
    /// taken from `items` and sent at once; one item per task message by
    /// default, as in Python.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// for (i, r) in pool.imap(|x: u64| x * x, 0..5).unwrap().enumerate() {
    ///     assert_eq!(r.unwrap(), (i * i) as u64);
    /// }
    /// ```
    pub fn imap<F, A, R, I>(&self, f: F, items: I) -> Result<Imap<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().imap(f, items)
    }

    /// Like [`imap`](Self::imap), but yields results in the order they
    /// finish.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let mut got: Vec<i32> = pool
    ///     .imap_unordered(|x: i32| x * 2, vec![1, 2, 3])
    ///     .unwrap()
    ///     .map(|r| r.unwrap())
    ///     .collect();
    /// got.sort();
    /// assert_eq!(got, vec![2, 4, 6]);
    /// ```
    pub fn imap_unordered<F, A, R, I>(&self, f: F, items: I) -> Result<ImapUnordered<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().imap_unordered(f, items)
    }

    /// Takes no more tasks; those already submitted still run. Then
    /// [`join`](Self::join).
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// pool.close().unwrap();
    /// assert!(pool.apply(|x: i32| x, 1).is_err());
    /// pool.join().unwrap();
    /// ```
    pub fn close(&self) -> Result<()> {
        let mut inner = lock(&self.shared);
        if inner.state == PoolState::Open {
            inner.state = PoolState::Closed;
        }
        Ok(())
    }

    /// After [`close`](Self::close): waits for every submitted task to finish
    /// and for the workers to exit. After [`terminate`](Self::terminate):
    /// returns at once.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let r = pool.apply_async(|x: u8| x, 5).unwrap();
    /// pool.close().unwrap();
    /// pool.join().unwrap();
    /// assert_eq!(r.get().unwrap(), 5);
    /// ```
    pub fn join(&self) -> Result<()> {
        {
            let inner = lock(&self.shared);
            if inner.state == PoolState::Open {
                return Err(Error::PoolStillOpen {
                    pid: crate::os::pid(),
                });
            }
        }
        wait_until(&self.shared, None, |inner| {
            inner.queue.is_empty() && inner.workers.iter().all(|w| w.outstanding.is_empty())
        })?;
        {
            let mut inner = lock(&self.shared);
            for w in &mut inner.workers {
                w.retiring = true;
            }
            inner.dispatch(); // sends every worker a stop
        }
        wait_until(&self.shared, None, |inner| inner.workers.is_empty())?;
        Ok(())
    }

    /// Stops the workers now (SIGTERM, then SIGKILL for any still there after
    /// half a second). Pending tasks fail with [`Error::PoolClosed`].
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// pool.terminate().unwrap();
    /// assert!(pool.worker_pids().is_empty());
    /// ```
    pub fn terminate(&self) -> Result<()> {
        lock(&self.shared).terminate();
        Ok(())
    }
}

impl Drop for Pool {
    /// Terminates the workers, like Python's `Pool.__del__`.
    fn drop(&mut self) {
        lock(&self.shared).terminate();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = lock(&self.shared);
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("state", &inner.state)
            .field(
                "workers",
                &inner.workers.iter().map(|w| w.pid).collect::<Vec<_>>(),
            )
            .field("queued_tasks", &inner.queue.len())
            .finish()
    }
}

/// A [`Pool`] view with a fixed chunksize; made by [`Pool::chunksize`].
///
/// ```
/// let pool = forja::Pool::new(2).unwrap();
/// let v: Vec<i32> = pool.chunksize(10).imap(|x: i32| x, 0..25).unwrap().map(|r| r.unwrap()).collect();
/// assert_eq!(v, (0..25).collect::<Vec<_>>());
/// ```
pub struct WithChunksize<'a> {
    pool: &'a Pool,
    /// `None`: each call's default (as in Python: `ceil(len / (4 ×
    /// workers))` for `map` and `map_async`, 1 for `imap` and
    /// `imap_unordered`).
    chunksize: Option<usize>,
}

impl WithChunksize<'_> {
    /// [`Pool::map`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(2).map(|x: u8| x + 1, vec![1, 2, 3]).unwrap(), vec![2, 3, 4]);
    /// ```
    pub fn map<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let pool = self.pool;
        let items: Vec<A> = items.into_iter().collect();
        let len = items.len();
        let cs = self
            .chunksize
            .unwrap_or_else(|| auto_chunksize(len, pool.size));
        let job = pool.submit(&f, &items, cs)?;
        drop(items);
        // Drops the job (whatever is still running) if we return early.
        let _handle = AsyncResult::<Vec<R>>::new(pool.shared.clone(), job, decode_all::<R>);
        // Decode each chunk as soon as it and those before it are in, while
        // the workers run the rest.
        let mut out = Vec::with_capacity(len);
        for c in 0..len.div_ceil(cs) {
            let outcome = take_chunk(&pool.shared, job, Some(c))?;
            decode_chunk_into(&outcome, &mut out)?;
        }
        Ok(out)
    }

    /// [`Pool::map_async`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(1).map_async(|x: u8| x, vec![7]).unwrap().get().unwrap(), vec![7]);
    /// ```
    pub fn map_async<F, A, R, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let items: Vec<A> = items.into_iter().collect();
        let cs = self
            .chunksize
            .unwrap_or_else(|| auto_chunksize(items.len(), self.pool.size));
        let job = self.pool.submit(&f, &items, cs)?;
        Ok(AsyncResult::new(
            self.pool.shared.clone(),
            job,
            decode_all::<R>,
        ))
    }

    /// [`Pool::starmap`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(1).starmap(|a: i32, b: i32| a * b, vec![(2, 3)]).unwrap(), vec![6]);
    /// ```
    pub fn starmap<F, Args, I>(&self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        F: StarCall<Args> + Copy + 'static,
        Args: Serialize + DeserializeOwned,
        F::Output: Serialize + DeserializeOwned,
        I: IntoIterator<Item = Args>,
    {
        self.map(move |args: Args| f.star_call(args), items)
    }

    /// [`Pool::imap`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(4).imap(|x: u8| x, vec![1, 2]).unwrap().count(), 2);
    /// ```
    pub fn imap<F, A, R, I>(&self, f: F, items: I) -> Result<Imap<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let items: Vec<A> = items.into_iter().collect();
        let cs = self.chunksize.unwrap_or(1);
        let job = self.pool.submit(&f, &items, cs)?;
        Ok(Imap::new(
            self.pool.shared.clone(),
            job,
            items.len().div_ceil(cs),
        ))
    }

    /// [`Pool::imap_unordered`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(4).imap_unordered(|x: u8| x, vec![1, 2]).unwrap().count(), 2);
    /// ```
    pub fn imap_unordered<F, A, R, I>(&self, f: F, items: I) -> Result<ImapUnordered<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let items: Vec<A> = items.into_iter().collect();
        let cs = self.chunksize.unwrap_or(1);
        let job = self.pool.submit(&f, &items, cs)?;
        Ok(ImapUnordered::new(
            self.pool.shared.clone(),
            job,
            items.len().div_ceil(cs),
        ))
    }
}

impl fmt::Debug for WithChunksize<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("WithChunksize");
        d.field("pool", &self.pool);
        match self.chunksize {
            Some(n) => d.field("chunksize", &n),
            None => d.field("chunksize", &"default"),
        };
        d.finish()
    }
}
