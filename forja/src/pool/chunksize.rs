//! [`WithChunksize`]: the calls of a [`Pool`] with a chosen chunksize, and
//! the one place where every call (`map`, `imap`, `apply_async`... with or
//! without a context) is cut into task messages and submitted.

use super::outcome::{decode_all, decode_chunk_into, decode_one};
use super::results::take_chunk;
use super::scheduler::{check_creator, lock};
use super::task::TaskCode;
use super::task::sealed::{One, OneWith, Spread, SpreadWith};
use super::{AsyncResult, Imap, ImapUnordered, Pool, StarArgs, StarArgsWith, auto_chunksize};
use crate::error::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// A [`Pool`] view with a fixed chunksize; made by [`Pool::chunksize`]. The
/// same calls as the pool's.
///
/// ```
/// let pool = forja::Pool::new(2).unwrap();
/// let v: Vec<i32> = pool.chunksize(10).imap(|x: i32| x, 0..25).unwrap().map(|r| r.unwrap()).collect();
/// assert_eq!(v, (0..25).collect::<Vec<_>>());
/// ```
pub struct WithChunksize<'a, C = ()> {
    pub(super) pool: &'a Pool<C>,
    /// `None`: each call's default (as in Python: `ceil(len / (4 ×
    /// workers))` for `map` and `map_async`, 1 for `imap` and
    /// `imap_unordered`).
    pub(super) chunksize: Option<usize>,
}

/// How a call's items become chunks, and its result handle.
impl<'a, C> WithChunksize<'a, C> {
    pub(super) fn new(pool: &'a Pool<C>, chunksize: Option<usize>) -> Self {
        WithChunksize { pool, chunksize }
    }

    fn submit<A: Serialize>(
        &self,
        code: &TaskCode<A>,
        items: &[A],
        chunksize: usize,
    ) -> Result<u64> {
        let messages = code.chunk_messages(items, chunksize)?;
        let shared = &self.pool.shared;
        check_creator(shared)?;
        let (job, wake) = lock(shared).submit(messages)?;
        if wake {
            shared.wake.wake();
        }
        Ok(job)
    }

    pub(super) fn run_map<A, R>(&self, code: TaskCode<A>, items: Vec<A>) -> Result<Vec<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let pool = self.pool;
        let len = items.len();
        let cs = self
            .chunksize
            .unwrap_or_else(|| auto_chunksize(len, pool.size));
        let job = self.submit(&code, &items, cs)?;
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

    pub(super) fn run_map_async<A, R>(
        &self,
        code: TaskCode<A>,
        items: Vec<A>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let cs = self
            .chunksize
            .unwrap_or_else(|| auto_chunksize(items.len(), self.pool.size));
        let job = self.submit(&code, &items, cs)?;
        Ok(AsyncResult::new(
            self.pool.shared.clone(),
            job,
            decode_all::<R>,
        ))
    }

    pub(super) fn run_apply_async<A, R>(&self, code: TaskCode<A>, arg: A) -> Result<AsyncResult<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let job = self.submit(&code, std::slice::from_ref(&arg), 1)?;
        Ok(AsyncResult::new(
            self.pool.shared.clone(),
            job,
            decode_one::<R>,
        ))
    }

    pub(super) fn run_imap<A, R>(&self, code: TaskCode<A>, items: Vec<A>) -> Result<Imap<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let cs = self.chunksize.unwrap_or(1);
        let job = self.submit(&code, &items, cs)?;
        Ok(Imap::new(
            self.pool.shared.clone(),
            job,
            items.len().div_ceil(cs),
        ))
    }

    pub(super) fn run_imap_unordered<A, R>(
        &self,
        code: TaskCode<A>,
        items: Vec<A>,
    ) -> Result<ImapUnordered<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let cs = self.chunksize.unwrap_or(1);
        let job = self.submit(&code, &items, cs)?;
        Ok(ImapUnordered::new(
            self.pool.shared.clone(),
            job,
            items.len().div_ceil(cs),
        ))
    }
}

/// The calls, as on [`Pool`].
impl<'a, C> WithChunksize<'a, C> {
    /// [`Pool::map`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(2).map(|x: u8| x + 1, vec![1, 2, 3]).unwrap(), vec![2, 3, 4]);
    /// ```
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::shipped::<One<A, R>, ()>(f, &())?;
        self.run_map(code, items.into_iter().collect())
    }

    /// [`Pool::map_with`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(2).map_with(1, |k: &u8, x: u8| x + k, vec![1, 2, 3]).unwrap(), vec![2, 3, 4]);
    /// ```
    pub fn map_with<S, A, R, I>(&self, value: S, f: fn(&S, A) -> R, items: I) -> Result<Vec<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::shipped::<OneWith<A, R>, S>(f, &value)?;
        self.run_map(code, items.into_iter().collect())
    }

    /// [`Pool::starmap`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(1).starmap(|a: i32, b: i32| a * b, vec![(2, 3)]).unwrap(), vec![6]);
    /// ```
    pub fn starmap<Args, R, I>(&self, f: Args::Fn, items: I) -> Result<Vec<R>>
    where
        Args: StarArgs<R> + Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = Args>,
    {
        let code = TaskCode::shipped::<Spread<Args, R>, ()>(f, &())?;
        self.run_map(code, items.into_iter().collect())
    }

    /// [`Pool::starmap_async`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.chunksize(1).starmap_async(|a: i32, b: i32| a - b, vec![(5, 3)]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2]);
    /// ```
    pub fn starmap_async<Args, R, I>(&self, f: Args::Fn, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        Args: StarArgs<R> + Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = Args>,
    {
        let code = TaskCode::shipped::<Spread<Args, R>, ()>(f, &())?;
        self.run_map_async(code, items.into_iter().collect())
    }

    /// [`Pool::starmap_with`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let v = pool.chunksize(1).starmap_with(2, |k: &i32, a: i32, b: i32| k * a * b, vec![(2, 3)]);
    /// assert_eq!(v.unwrap(), vec![12]);
    /// ```
    pub fn starmap_with<S, Args, R, I>(
        &self,
        value: S,
        f: <Args as StarArgsWith<S, R>>::Fn,
        items: I,
    ) -> Result<Vec<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        Args: StarArgsWith<S, R> + Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = Args>,
    {
        let code = TaskCode::shipped::<SpreadWith<Args, R>, S>(f, &value)?;
        self.run_map(code, items.into_iter().collect())
    }

    /// [`Pool::apply`] (the chunksize does not matter for one task).
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(3).apply(|x: u8| x * 2, 4).unwrap(), 8);
    /// ```
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.apply_async(f, arg)?.get()
    }

    /// [`Pool::apply_with`].
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(3).apply_with(3, |k: &u8, x: u8| x * k, 4).unwrap(), 12);
    /// ```
    pub fn apply_with<S, A, R>(&self, value: S, f: fn(&S, A) -> R, arg: A) -> Result<R>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.apply_async_with(value, f, arg)?.get()
    }

    /// [`Pool::apply_async`].
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(3).apply_async(|x: u8| x, 4).unwrap().get().unwrap(), 4);
    /// ```
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let code = TaskCode::shipped::<One<A, R>, ()>(f, &())?;
        self.run_apply_async(code, arg)
    }

    /// [`Pool::apply_async_with`].
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.chunksize(3).apply_async_with(1, |k: &u8, x: u8| x + k, 4).unwrap();
    /// assert_eq!(r.get().unwrap(), 5);
    /// ```
    pub fn apply_async_with<S, A, R>(
        &self,
        value: S,
        f: fn(&S, A) -> R,
        arg: A,
    ) -> Result<AsyncResult<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let code = TaskCode::shipped::<OneWith<A, R>, S>(f, &value)?;
        self.run_apply_async(code, arg)
    }

    /// [`Pool::map_async`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(1).map_async(|x: u8| x, vec![7]).unwrap().get().unwrap(), vec![7]);
    /// ```
    pub fn map_async<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::shipped::<One<A, R>, ()>(f, &())?;
        self.run_map_async(code, items.into_iter().collect())
    }

    /// [`Pool::map_async_with`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.chunksize(1).map_async_with(1, |k: &u8, x: u8| x + k, vec![7]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![8]);
    /// ```
    pub fn map_async_with<S, A, R, I>(
        &self,
        value: S,
        f: fn(&S, A) -> R,
        items: I,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::shipped::<OneWith<A, R>, S>(f, &value)?;
        self.run_map_async(code, items.into_iter().collect())
    }

    /// [`Pool::imap`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(4).imap(|x: u8| x, vec![1, 2]).unwrap().count(), 2);
    /// ```
    pub fn imap<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Imap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::shipped::<One<A, R>, ()>(f, &())?;
        self.run_imap(code, items.into_iter().collect())
    }

    /// [`Pool::imap_with`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(4).imap_with(0, |_: &u8, x: u8| x, vec![1, 2]).unwrap().count(), 2);
    /// ```
    pub fn imap_with<S, A, R, I>(&self, value: S, f: fn(&S, A) -> R, items: I) -> Result<Imap<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::shipped::<OneWith<A, R>, S>(f, &value)?;
        self.run_imap(code, items.into_iter().collect())
    }

    /// [`Pool::imap_unordered`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.chunksize(4).imap_unordered(|x: u8| x, vec![1, 2]).unwrap().count(), 2);
    /// ```
    pub fn imap_unordered<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<ImapUnordered<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::shipped::<One<A, R>, ()>(f, &())?;
        self.run_imap_unordered(code, items.into_iter().collect())
    }

    /// [`Pool::imap_unordered_with`] with this chunksize.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let n = pool.chunksize(4).imap_unordered_with(0, |_: &u8, x: u8| x, vec![1, 2]).unwrap().count();
    /// assert_eq!(n, 2);
    /// ```
    pub fn imap_unordered_with<S, A, R, I>(
        &self,
        value: S,
        f: fn(&S, A) -> R,
        items: I,
    ) -> Result<ImapUnordered<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = TaskCode::shipped::<OneWith<A, R>, S>(f, &value)?;
        self.run_imap_unordered(code, items.into_iter().collect())
    }
}

impl<C> fmt::Debug for WithChunksize<'_, C> {
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
