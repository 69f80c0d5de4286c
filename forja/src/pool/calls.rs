//! The task methods of [`Pool`]: Python's `map`, `starmap`, `apply`,
//! `apply_async`, `map_async`, `imap`, `imap_unordered`, each also as `_with`
//! (a value sent with the tasks), all with the default chunksize.

use super::{AsyncResult, Imap, ImapUnordered, Pool, StarArgs, StarArgsWith};
use crate::error::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The task methods: Python's names, each also as `_with` (a value sent with
/// the tasks: `fn(&S, A) -> R`). They all go through [`WithChunksize`].
impl<C> Pool<C> {
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
    #[track_caller]
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        crate::located::located(self.map_body(f, items), "Pool::map")
    }

    fn map_body<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().map(f, items)
    }

    /// [`map`](Self::map) with `value` as the first argument of every task:
    /// `f(&value, item)`. `value` is encoded once and sent with the tasks
    /// (Python's `pool.map(functools.partial(f, value), items)`).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let offset = 100;
    /// let v = pool.map_with(offset, |offset: &i32, x: i32| x + offset, vec![1, 2]).unwrap();
    /// assert_eq!(v, vec![101, 102]);
    /// ```
    #[track_caller]
    pub fn map_with<S, A, R, I>(&self, value: S, f: fn(&S, A) -> R, items: I) -> Result<Vec<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        crate::located::located(self.map_with_body(value, f, items), "Pool::map_with")
    }

    fn map_with_body<S, A, R, I>(&self, value: S, f: fn(&S, A) -> R, items: I) -> Result<Vec<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().map_with(value, f, items)
    }

    /// Like [`map`](Self::map), but calls `f` with each tuple spread into
    /// arguments (Python's `starmap`). `f` is a closure that captures
    /// nothing, or a `fn` cast to a pointer (see [`StarArgs`]).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let sums = pool.starmap(|a: i32, b: i32| a + b, vec![(1, 2), (3, 4)]).unwrap();
    /// assert_eq!(sums, vec![3, 7]);
    /// fn power(b: u64, e: u32) -> u64 { b.pow(e) }
    /// assert_eq!(pool.starmap(power as fn(u64, u32) -> u64, vec![(2, 3)]).unwrap(), vec![8]);
    /// ```
    #[track_caller]
    pub fn starmap<Args, R, I>(&self, f: Args::Fn, items: I) -> Result<Vec<R>>
    where
        Args: StarArgs<R> + Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = Args>,
    {
        crate::located::located(self.starmap_body(f, items), "Pool::starmap")
    }

    fn starmap_body<Args, R, I>(&self, f: Args::Fn, items: I) -> Result<Vec<R>>
    where
        Args: StarArgs<R> + Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = Args>,
    {
        self.default_chunksize().starmap(f, items)
    }

    /// [`starmap`](Self::starmap) without waiting (Python's
    /// `starmap_async`): an [`AsyncResult`] for the whole `Vec`.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let r = pool.starmap_async(|a: i32, b: i32| a * b, vec![(1, 2), (3, 4)]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 12]);
    /// ```
    #[track_caller]
    pub fn starmap_async<Args, R, I>(&self, f: Args::Fn, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        Args: StarArgs<R> + Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = Args>,
    {
        crate::located::located(self.starmap_async_body(f, items), "Pool::starmap_async")
    }

    fn starmap_async_body<Args, R, I>(&self, f: Args::Fn, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        Args: StarArgs<R> + Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = Args>,
    {
        self.default_chunksize().starmap_async(f, items)
    }

    /// [`starmap`](Self::starmap) with `value` as the first argument of every
    /// task: `f(&value, a, b, ..)`, sent like [`map_with`](Self::map_with)'s.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let v = pool.starmap_with(10, |k: &i32, a: i32, b: i32| k * a + b, vec![(1, 2), (3, 4)]).unwrap();
    /// assert_eq!(v, vec![12, 34]);
    /// ```
    #[track_caller]
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
        crate::located::located(
            self.starmap_with_body(value, f, items),
            "Pool::starmap_with",
        )
    }

    fn starmap_with_body<S, Args, R, I>(
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
        self.default_chunksize().starmap_with(value, f, items)
    }

    /// Runs `f(arg)` in a worker and waits for the result.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// assert_eq!(pool.apply(|s: String| s.len(), "hola".into()).unwrap(), 4);
    /// ```
    #[track_caller]
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        crate::located::located(self.apply_body(f, arg), "Pool::apply")
    }

    fn apply_body<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.apply_async(f, arg)?.get()
    }

    /// [`apply`](Self::apply) of `f(&value, arg)`, `value` sent with the task.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let greeting = pool.apply_with("hola".to_string(), |g: &String, n: usize| g.repeat(n), 2);
    /// assert_eq!(greeting.unwrap(), "holahola");
    /// ```
    #[track_caller]
    pub fn apply_with<S, A, R>(&self, value: S, f: fn(&S, A) -> R, arg: A) -> Result<R>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        crate::located::located(self.apply_with_body(value, f, arg), "Pool::apply_with")
    }

    fn apply_with_body<S, A, R>(&self, value: S, f: fn(&S, A) -> R, arg: A) -> Result<R>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.apply_async_with(value, f, arg)?.get()
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
    #[track_caller]
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        crate::located::located(self.apply_async_body(f, arg), "Pool::apply_async")
    }

    fn apply_async_body<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.default_chunksize().apply_async(f, arg)
    }

    /// [`apply_async`](Self::apply_async) of `f(&value, arg)`, `value` sent
    /// with the task.
    ///
    /// ```
    /// let pool = forja::Pool::new(1).unwrap();
    /// let r = pool.apply_async_with(3u32, |k: &u32, x: u32| k * x, 5).unwrap();
    /// assert_eq!(r.get().unwrap(), 15);
    /// ```
    #[track_caller]
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
        crate::located::located(
            self.apply_async_with_body(value, f, arg),
            "Pool::apply_async_with",
        )
    }

    fn apply_async_with_body<S, A, R>(
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
        self.default_chunksize().apply_async_with(value, f, arg)
    }

    /// [`map`](Self::map) without waiting: the [`AsyncResult`] gives the
    /// whole `Vec` later.
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let r = pool.map_async(|x: i32| x + 1, vec![1, 2, 3]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 3, 4]);
    /// ```
    #[track_caller]
    pub fn map_async<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        crate::located::located(self.map_async_body(f, items), "Pool::map_async")
    }

    fn map_async_body<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().map_async(f, items)
    }

    /// [`map_async`](Self::map_async) with `value` sent with the tasks, as in
    /// [`map_with`](Self::map_with).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let r = pool.map_async_with(2, |k: &i32, x: i32| x * k, vec![1, 2]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 4]);
    /// ```
    #[track_caller]
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
        crate::located::located(
            self.map_async_with_body(value, f, items),
            "Pool::map_async_with",
        )
    }

    fn map_async_with_body<S, A, R, I>(
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
        self.default_chunksize().map_async_with(value, f, items)
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
    #[track_caller]
    pub fn imap<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Imap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        crate::located::located(self.imap_body(f, items), "Pool::imap")
    }

    fn imap_body<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Imap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().imap(f, items)
    }

    /// [`imap`](Self::imap) with `value` sent with the tasks, as in
    /// [`map_with`](Self::map_with).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let v: Vec<i32> = pool.imap_with(1, |k: &i32, x: i32| x - k, vec![5, 6]).unwrap().map(|r| r.unwrap()).collect();
    /// assert_eq!(v, vec![4, 5]);
    /// ```
    #[track_caller]
    pub fn imap_with<S, A, R, I>(&self, value: S, f: fn(&S, A) -> R, items: I) -> Result<Imap<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        crate::located::located(self.imap_with_body(value, f, items), "Pool::imap_with")
    }

    fn imap_with_body<S, A, R, I>(&self, value: S, f: fn(&S, A) -> R, items: I) -> Result<Imap<R>>
    where
        S: Serialize + DeserializeOwned + 'static,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().imap_with(value, f, items)
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
    #[track_caller]
    pub fn imap_unordered<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<ImapUnordered<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        crate::located::located(self.imap_unordered_body(f, items), "Pool::imap_unordered")
    }

    fn imap_unordered_body<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<ImapUnordered<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.default_chunksize().imap_unordered(f, items)
    }

    /// [`imap_unordered`](Self::imap_unordered) with `value` sent with the
    /// tasks, as in [`map_with`](Self::map_with).
    ///
    /// ```
    /// let pool = forja::Pool::new(2).unwrap();
    /// let n = pool.imap_unordered_with(0u8, |_: &u8, x: u8| x, vec![1, 2]).unwrap().count();
    /// assert_eq!(n, 2);
    /// ```
    #[track_caller]
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
        crate::located::located(
            self.imap_unordered_with_body(value, f, items),
            "Pool::imap_unordered_with",
        )
    }

    fn imap_unordered_with_body<S, A, R, I>(
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
        self.default_chunksize()
            .imap_unordered_with(value, f, items)
    }
}
