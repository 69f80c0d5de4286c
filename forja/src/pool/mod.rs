//! [`Pool`]: a fixed set of worker processes that run many small tasks, like
//! Python's `multiprocessing.Pool`.
//!
//! # What a task may be
//!
//! Workers are forked once and persist; tasks do not fork. A task is a
//! **function pointer**: a `fn` item, or a closure that captures nothing
//! (Rust turns both into a `fn(A) -> R`). Its argument and its result travel
//! over one socket pair per worker, encoded with serde (`postcard`), like
//! the items of a [`Queue`](crate::Queue).
//!
//! A task cannot capture variables, because a worker is a copy of the parent
//! *as it was when the worker was forked*: a captured `Vec`, `String` or
//! `&'static` reference made later would point at memory the worker does not
//! have. Rust says so at the call site: "closures can only be coerced to
//! `fn` types if they do not capture any variables". What a task needs
//! besides its item goes in one of two **contexts**, the task's first
//! argument `&C`:
//!
//! - **A value sent with the tasks** (`map_with`, `starmap_with`,
//!   `apply_with`, ...): any serde value, encoded once per call and sent with
//!   every task message. Python's `pool.map(functools.partial(f, value), xs)`.
//! - **The pool's context**, set when the pool is made
//!   ([`PoolBuilder::context`]) and inherited by every worker at fork, also
//!   by those forked later to replace or re-fork others (the parent keeps
//!   it). For forja handles that are not serde values: a [`Value`](crate::Value),
//!   a [`Queue`](crate::Queue), a [`Lock`](crate::Lock), or a struct of them.
//!   Tasks reach it through [`Pool::with_context`]. Python's
//!   `Pool(initializer=f, initargs=(q,))` setting a global.
//!
//! The one address a task message carries is *code*: the task's, and a
//! small generic function's that calls it. Code is valid in every fork, as
//! long as it was loaded before the worker was forked. Inside the forja
//! kernel each cell is a library loaded after the previous ones, so a task
//! written in a later cell than the pool does not exist in the pool's
//! workers. The pool notices: it records how many shared objects the dynamic
//! loader had loaded (glibc's `dlpi_adds`) when it forked its workers, and
//! when a task is submitted after more were loaded, it **re-forks its
//! workers** (once: the new ones serve every later task until another
//! library is loaded). Old workers finish what they were running and then
//! stop. In an ordinary program nothing is ever loaded later, so workers are
//! forked exactly once. [`Pool::worker_starts`] counts forks, so the cost can
//! be measured.
//!
//! Results make progress while the parent does other work: a thread of the
//! parent (the pool's result thread, as Python's result handler) hands out
//! tasks, collects results and runs callbacks
//! ([`AsyncResult::callback`]). [`ProcessPoolExecutor`] and [`Future`] are
//! Python's `concurrent.futures` over the same pool.
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
//! fn scale(factor: &u64, x: u64) -> u64 { x * factor }
//!
//! let pool = Pool::new(2).unwrap();
//! assert_eq!(pool.map(square, 1..=4).unwrap(), vec![1, 4, 9, 16]);
//! assert_eq!(pool.map(|x| x + 1, 1..=3u64).unwrap(), vec![2, 3, 4]);
//! // A value the tasks need: sent with them.
//! assert_eq!(pool.map_with(10, scale, vec![1, 2]).unwrap(), vec![10, 20]);
//!
//! // Shared handles: the pool's context, inherited by the workers.
//! let total = Value::new(0u64).unwrap();
//! let pool = Pool::builder().processes(2).context(total).build().unwrap();
//! pool.with_context()
//!     .map(|total: &Value<u64>, x: u64| *total.get_lock().unwrap() += x, 1..=4)
//!     .unwrap();
//! assert_eq!(pool.context().load().unwrap(), 10);
//! ```

mod calls;
mod chunksize;
mod context;
mod futures;
mod outcome;
mod protocol;
mod result_thread;
mod results;
mod scheduler;
mod task;
mod wake;
mod worker;

pub use chunksize::WithChunksize;
pub use context::WithContext;
pub use futures::{AsCompleted, Future, ProcessPoolExecutor, as_completed, as_completed_timeout};
pub use results::{AsyncResult, Imap, ImapUnordered};
pub use task::{StarArgs, StarArgsWith};

use crate::error::{Error, Result};
use crate::registry;
use scheduler::{PoolCore, PoolInner, PoolShared, PoolState, lock, wait_until};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use task::loaded_objects_stamp;
use worker::Initializer;

/// Python's default chunksize for `map`: ceil(len / (4 × workers)).
fn auto_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(4 * workers.max(1)).max(1)
}

/// A pool of worker processes (Python's `multiprocessing.Pool`).
///
/// Tasks are function pointers: `fn` items, or closures that capture
/// nothing; what they need besides their item goes in a context (see the
/// [module docs](self) for why). Arguments and results must be serde types.
/// `C` is the pool's context, `()` unless set with
/// [`PoolBuilder::context`].
///
/// ```
/// use forja::prelude::*;
///
/// let pool = Pool::new(2).unwrap();
/// let total: u64 = pool.map(|x| x * 2, 0..100u64).unwrap().iter().sum();
/// assert_eq!(total, 9900);
/// pool.close().unwrap();
/// pool.join().unwrap();
/// ```
pub struct Pool<C = ()> {
    shared: PoolCore,
    size: usize,
    context: Arc<C>,
    /// The result thread, joined when the pool stops.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Builds a [`Pool`] with options (Python's `Pool(processes, initializer,
/// initargs)`).
///
/// ```
/// let pool = forja::Pool::builder()
///     .processes(2)
///     .initializer(|| eprintln!("worker {} ready", std::process::id()))
///     .build()
///     .unwrap();
/// assert_eq!(pool.size(), 2);
/// ```
pub struct PoolBuilder<C = ()> {
    processes: Option<usize>,
    initializer: Option<Initializer>,
    max_tasks: Option<usize>,
    context: C,
}

impl<C> PoolBuilder<C> {
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

    /// The pool's context: made here, before the workers are forked, so
    /// every worker has it (those forked later too: the pool keeps it). For
    /// what tasks share and serde cannot send: a [`Value`](crate::Value), a
    /// [`Queue`](crate::Queue), a [`Lock`](crate::Lock), a tuple or struct
    /// of them. Tasks get it as their first argument through
    /// [`Pool::with_context`]; the parent reads it with [`Pool::context`].
    /// Like Python's `initargs` with an initializer that stores them in a
    /// global.
    ///
    /// ```
    /// use forja::prelude::*;
    ///
    /// let q: Queue<u64> = Queue::new().unwrap();
    /// let pool = Pool::builder().processes(2).context(q).build().unwrap();
    /// pool.with_context().map(|q: &Queue<u64>, x: u64| q.put(&(x * 10)).unwrap(), 0..3).unwrap();
    /// let mut got: Vec<u64> = (0..3).map(|_| pool.context().get().unwrap()).collect();
    /// got.sort();
    /// assert_eq!(got, vec![0, 10, 20]);
    /// ```
    pub fn context<D: Send + Sync + 'static>(self, context: D) -> PoolBuilder<D> {
        PoolBuilder {
            processes: self.processes,
            initializer: self.initializer,
            max_tasks: self.max_tasks,
            context,
        }
    }

    /// Python's `maxtasksperchild`: each worker runs `n` task messages (a
    /// `map` chunk is one, as in Python), then exits and is replaced by a
    /// fresh one (for code that leaks memory or other resources). Default:
    /// workers live as long as the pool. `0` is refused by `build`.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).maxtasksperchild(2).build().unwrap();
    /// let pids = pool.chunksize(1).map(|_: u8| std::process::id(), vec![0; 6]).unwrap();
    /// assert_eq!(pids.iter().collect::<std::collections::HashSet<_>>().len(), 3);
    /// ```
    pub fn maxtasksperchild(mut self, n: usize) -> Self {
        self.max_tasks = Some(n);
        self
    }

    /// Starts the workers.
    ///
    /// ```
    /// let pool = forja::Pool::builder().build().unwrap();
    /// assert_eq!(pool.size(), forja::process_cpu_count());
    /// ```
    #[track_caller]
    pub fn build(self) -> Result<Pool<C>>
    where
        C: Send + Sync + 'static,
    {
        crate::located::located(self.build_body(), "PoolBuilder::build")
    }

    fn build_body(self) -> Result<Pool<C>>
    where
        C: Send + Sync + 'static,
    {
        let size = self.processes.unwrap_or_else(crate::process_cpu_count);
        if size == 0 {
            return Err(Error::InvalidArgument {
                message: crate::messages::Msg::PoolNeedsWorker.get().into(),
                pid: crate::os::pid(),
            });
        }
        if self.max_tasks == Some(0) {
            return Err(Error::InvalidArgument {
                message: crate::messages::Msg::MaxTasksPerChild.get().into(),
                pid: crate::os::pid(),
            });
        }
        registry::check_interrupt()?;
        let context = Arc::new(self.context);
        let mut inner = PoolInner::new(size, self.initializer, context.clone(), self.max_tasks);
        if let Err(e) = inner.ensure_workers(loaded_objects_stamp()) {
            inner.terminate();
            return Err(e);
        }
        let wake = wake::Wake::new().map_err(|e| Error::os("making the pool's wake-up eventfd", e));
        let wake = match wake {
            Ok(w) => w,
            Err(e) => {
                inner.terminate();
                return Err(e);
            }
        };
        inner.thread_running = true;
        let shared = Arc::new(PoolShared {
            inner: Mutex::new(inner),
            changed: Condvar::new(),
            wake,
            creator: crate::os::pid(),
        });
        let thread = match result_thread::start(shared.clone()) {
            Ok(t) => t,
            Err(e) => {
                let mut inner = lock(&shared);
                inner.thread_running = false;
                inner.terminate();
                return Err(Error::os("starting the pool's result thread", e));
            }
        };
        Ok(Pool {
            shared,
            size,
            context,
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl Pool {
    /// A pool of `processes` workers, forked now.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// assert_eq!(pool.size(), 2);
    /// ```
    #[track_caller]
    pub fn new(processes: usize) -> Result<Pool> {
        crate::located::located(Self::new_body(processes), "Pool::new")
    }

    fn new_body(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A pool with one worker per CPU this process may use
    /// ([`process_cpu_count`](crate::process_cpu_count), as Python 3.13).
    ///
    /// ```
    /// let pool = forja::Pool::with_cpus().unwrap();
    /// assert_eq!(pool.size(), forja::process_cpu_count());
    /// ```
    #[track_caller]
    pub fn with_cpus() -> Result<Pool> {
        crate::located::located(Self::with_cpus_body(), "Pool::with_cpus")
    }

    fn with_cpus_body() -> Result<Pool> {
        Pool::builder().build()
    }

    /// Options: number of processes, initializer, context.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).build().unwrap();
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            initializer: None,
            max_tasks: None,
            context: (),
        }
    }
}

impl<C> Pool<C> {
    /// How many workers it keeps.
    ///
    /// ```
    /// assert_eq!(forja::Pool::new(1).unwrap().size(), 1);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// The pool's context ([`PoolBuilder::context`]), as the parent has it.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(7u8).build().unwrap();
    /// assert_eq!(*pool.context(), 7);
    /// ```
    pub fn context(&self) -> &C {
        &self.context
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
    pub fn chunksize(&self, chunksize: usize) -> WithChunksize<'_, C> {
        WithChunksize::new(self, Some(chunksize.max(1)))
    }

    /// The view with each call's default chunksize: `Pool`'s own `map`,
    /// `imap`... go through it.
    fn default_chunksize(&self) -> WithChunksize<'_, C> {
        WithChunksize::new(self, None)
    }

    /// Calls whose tasks get the pool's context ([`PoolBuilder::context`])
    /// as their first argument: `fn(&C, A) -> R`.
    ///
    /// ```
    /// use forja::prelude::*;
    ///
    /// let hits = Value::new(0u32).unwrap();
    /// let pool = Pool::builder().processes(2).context(hits).build().unwrap();
    /// fn count(hits: &Value<u32>, x: u32) -> u32 {
    ///     *hits.get_lock().unwrap() += 1;
    ///     x
    /// }
    /// assert_eq!(pool.with_context().map(count, 0..5).unwrap(), vec![0, 1, 2, 3, 4]);
    /// assert_eq!(pool.context().load().unwrap(), 5);
    /// ```
    pub fn with_context(&self) -> WithContext<'_, C>
    where
        C: 'static,
    {
        WithContext::new(self, None)
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
    #[track_caller]
    pub fn close(&self) -> Result<()> {
        crate::located::located(self.close_body(), "Pool::close")
    }

    fn close_body(&self) -> Result<()> {
        scheduler::check_creator(&self.shared)?;
        let mut inner = lock(&self.shared);
        if inner.state == PoolState::Open {
            inner.state = PoolState::Closed;
        }
        drop(inner);
        self.shared.wake.wake();
        Ok(())
    }

    /// Waits for the result thread to end (it has been told to), unless
    /// this is that thread (a callback stopping the pool).
    fn join_result_thread(&self) {
        if wake::on_result_thread() {
            return;
        }
        self.shared.wake.wake();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
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
    #[track_caller]
    pub fn join(&self) -> Result<()> {
        crate::located::located(self.join_body(), "Pool::join")
    }

    fn join_body(&self) -> Result<()> {
        scheduler::check_creator(&self.shared)?;
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
        self.shared.wake.wake();
        wait_until(&self.shared, None, |inner| {
            inner.workers.is_empty() || !inner.thread_running
        })?;
        self.join_result_thread();
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
    #[track_caller]
    pub fn terminate(&self) -> Result<()> {
        crate::located::located(self.terminate_body(), "Pool::terminate")
    }

    fn terminate_body(&self) -> Result<()> {
        scheduler::check_creator(&self.shared)?;
        lock(&self.shared).terminate();
        self.shared.changed.notify_all();
        self.join_result_thread();
        Ok(())
    }
}

impl<C> Drop for Pool<C> {
    /// Terminates the workers and stops the result thread, like Python's
    /// `Pool.__del__`. In a fork of the pool's process it does nothing: the
    /// workers and the thread are not that process's.
    fn drop(&mut self) {
        if scheduler::check_creator(&self.shared).is_err() {
            // The thread does not exist here: never join it.
            if let Ok(t) = self.thread.get_mut() {
                std::mem::forget(t.take());
            }
            return;
        }
        lock(&self.shared).terminate();
        self.shared.changed.notify_all();
        self.join_result_thread();
    }
}

impl<C> fmt::Debug for Pool<C> {
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
