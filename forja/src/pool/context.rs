//! [`WithContext`]: the calls of a [`Pool`] whose tasks get the pool's own
//! context, the one every worker inherited at fork.

use super::task::TaskCode;
use super::task::sealed::{OneWith, SpreadWith};
use super::{AsyncResult, Imap, ImapUnordered, Pool, StarArgsWith, WithChunksize};
use crate::error::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// A [`Pool`] view whose tasks take the pool's context
/// ([`PoolBuilder::context`](super::PoolBuilder::context)) as their first
/// argument: `fn(&C, A) -> R`. Made by [`Pool::with_context`]. Nothing is
/// sent for the context: each worker has its own copy of it from the fork
/// (for a [`Value`](crate::Value), a [`Queue`](crate::Queue) or a
/// [`Lock`](crate::Lock), a handle on the same shared object).
///
/// ```
/// use forja::prelude::*;
///
/// let lock = Lock::new().unwrap();
/// let pool = Pool::builder().processes(2).context(lock).build().unwrap();
/// let v = pool
///     .with_context()
///     .map(|lock: &Lock, x: u32| { let _g = lock.acquire().unwrap(); x + 1 }, 0..3)
///     .unwrap();
/// assert_eq!(v, vec![1, 2, 3]);
/// ```
pub struct WithContext<'a, C> {
    calls: WithChunksize<'a, C>,
    chunksize: Option<usize>,
    pool: &'a Pool<C>,
}

impl<'a, C: 'static> WithContext<'a, C> {
    pub(super) fn new(pool: &'a Pool<C>, chunksize: Option<usize>) -> Self {
        WithContext {
            calls: WithChunksize::new(pool, chunksize),
            chunksize,
            pool,
        }
    }

    /// The same view, with `chunksize` items per task message (see
    /// [`Pool::chunksize`]).
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(1u8).build().unwrap();
    /// let v = pool.with_context().chunksize(2).map(|k: &u8, x: u8| x + k, vec![1, 2, 3]).unwrap();
    /// assert_eq!(v, vec![2, 3, 4]);
    /// ```
    pub fn chunksize(&self, chunksize: usize) -> WithContext<'a, C> {
        WithContext::new(self.pool, Some(chunksize.max(1)))
    }

    /// [`Pool::map`], each task given the pool's context.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(2).context(10u64).build().unwrap();
    /// assert_eq!(pool.with_context().map(|k: &u64, x: u64| x * k, 1..=3).unwrap(), vec![10, 20, 30]);
    /// ```
    pub fn map<A, R, I>(&self, f: fn(&C, A) -> R, items: I) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::inherited::<OneWith<A, R>, C>(f);
        self.calls.run_map(code, items.into_iter().collect())
    }

    /// [`Pool::starmap`], each task given the pool's context first.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(2i32).build().unwrap();
    /// let v = pool.with_context().starmap(|k: &i32, a: i32, b: i32| k * (a + b), vec![(1, 2)]).unwrap();
    /// assert_eq!(v, vec![6]);
    /// ```
    pub fn starmap<Args, R, I>(
        &self,
        f: <Args as StarArgsWith<C, R>>::Fn,
        items: I,
    ) -> Result<Vec<R>>
    where
        Args: StarArgsWith<C, R> + Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = Args>,
    {
        let code = TaskCode::inherited::<SpreadWith<Args, R>, C>(f);
        self.calls.run_map(code, items.into_iter().collect())
    }

    /// [`Pool::apply`], the task given the pool's context.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(3u8).build().unwrap();
    /// assert_eq!(pool.with_context().apply(|k: &u8, x: u8| k * x, 5).unwrap(), 15);
    /// ```
    pub fn apply<A, R>(&self, f: fn(&C, A) -> R, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.apply_async(f, arg)?.get()
    }

    /// [`Pool::apply_async`], the task given the pool's context.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(3u8).build().unwrap();
    /// let r = pool.with_context().apply_async(|k: &u8, x: u8| k + x, 5).unwrap();
    /// assert_eq!(r.get().unwrap(), 8);
    /// ```
    pub fn apply_async<A, R>(&self, f: fn(&C, A) -> R, arg: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let code = TaskCode::inherited::<OneWith<A, R>, C>(f);
        self.calls.run_apply_async(code, arg)
    }

    /// [`Pool::map_async`], each task given the pool's context.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(1u8).build().unwrap();
    /// let r = pool.with_context().map_async(|k: &u8, x: u8| k + x, vec![1, 2]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 3]);
    /// ```
    pub fn map_async<A, R, I>(&self, f: fn(&C, A) -> R, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::inherited::<OneWith<A, R>, C>(f);
        self.calls.run_map_async(code, items.into_iter().collect())
    }

    /// [`Pool::imap`], each task given the pool's context.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(1u8).build().unwrap();
    /// let v: Vec<u8> = pool.with_context().imap(|k: &u8, x: u8| k + x, vec![1, 2]).unwrap().map(|r| r.unwrap()).collect();
    /// assert_eq!(v, vec![2, 3]);
    /// ```
    pub fn imap<A, R, I>(&self, f: fn(&C, A) -> R, items: I) -> Result<Imap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::inherited::<OneWith<A, R>, C>(f);
        self.calls.run_imap(code, items.into_iter().collect())
    }

    /// [`Pool::imap_unordered`], each task given the pool's context.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(1u8).build().unwrap();
    /// let n = pool.with_context().imap_unordered(|k: &u8, x: u8| k + x, vec![1, 2]).unwrap().count();
    /// assert_eq!(n, 2);
    /// ```
    pub fn imap_unordered<A, R, I>(&self, f: fn(&C, A) -> R, items: I) -> Result<ImapUnordered<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::inherited::<OneWith<A, R>, C>(f);
        self.calls
            .run_imap_unordered(code, items.into_iter().collect())
    }
}

impl<'a, C> WithChunksize<'a, C> {
    /// [`Pool::with_context`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::builder().processes(1).context(5u8).build().unwrap();
    /// let v = pool.chunksize(2).with_context().map(|k: &u8, x: u8| k + x, vec![1, 2, 3]).unwrap();
    /// assert_eq!(v, vec![6, 7, 8]);
    /// ```
    pub fn with_context(&self) -> WithContext<'a, C>
    where
        C: 'static,
    {
        WithContext::new(self.pool, self.chunksize)
    }
}

impl<C> fmt::Debug for WithContext<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("WithContext");
        d.field("pool", &self.pool);
        match self.chunksize {
            Some(n) => d.field("chunksize", &n),
            None => d.field("chunksize", &"default"),
        };
        d.finish()
    }
}
