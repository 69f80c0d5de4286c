//! [`Array`] and [`RawArray`]: a fixed-length array of plain data in shared
//! memory (Python's `multiprocessing.Array` with and without `lock=True`).
//!
//! Make it before forking; parent and children then share the elements.
//! `Array` has one lock for the whole array: [`get_lock`](Array::get_lock)
//! gives `&mut [T]`. `RawArray` has none, for race-condition demos.
//!
//! The lock is not re-entrant: `load`, `store`, `to_vec`, `get_lock` or
//! `{:?}` on an `Array` whose guard this thread holds is
//! [`Error::WouldDeadlock`] at once; read and write through the guard.
//!
//! ```
//! let a = forja::Array::from_slice(&[1i32, 2, 3]).unwrap();
//! a.get_lock().unwrap()[0] = 10;
//! assert_eq!(a.to_vec().unwrap(), vec![10, 2, 3]);
//! ```

use crate::error::{Error, Result};
use crate::shm::{Shareable, ShmBox, racy_load, racy_store};
use crate::sync::raw_lock::{LockWord, NotSend, guard_id, lock_or_report};

/// What a wait for this lock is on, in the wait graph.
const DATA_SITE: crate::waits::record::Site =
    crate::waits::record::Site::new(0, crate::waits::Kind::DataLock);
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

const WHAT: &str = "an Array's lock";
const HINT: &str = "use the guard you hold instead of the Array: `let mut g = a.get_lock()?; \
                    g[i] += 1;` (not `a.store(i, a.load(i)? + 1)`), or drop the guard first";

#[repr(C)]
#[derive(Debug)]
struct ArrayHeader {
    lock: LockWord,
    len: usize,
}

fn make<T: Shareable>(len: usize, fill: impl FnMut(usize) -> T) -> Result<ShmBox<ArrayHeader>> {
    let bytes = len
        .checked_mul(size_of::<T>())
        .ok_or_else(|| Error::InvalidArgument {
            message: crate::messages::Msg::ArrayTooBig.fill(&[("len", &len)]),
            pid: crate::os::pid(),
        })?;
    let header = ArrayHeader {
        lock: LockWord::new(),
        len,
    };
    // SAFETY: atomics plus a constant; the elements are trailing bytes.
    let shm = unsafe { ShmBox::new(header, bytes, align_of::<T>())? };
    let data = shm.trailing_ptr().cast::<T>();
    let mut fill = fill;
    for i in 0..len {
        // SAFETY: in bounds and aligned; nobody else sees it yet.
        unsafe { data.add(i).write(fill(i)) };
    }
    Ok(shm)
}

fn out_of_bounds(index: usize, len: usize) -> Error {
    Error::InvalidArgument {
        message: crate::messages::Msg::ArrayIndex.fill(&[("index", &index), ("len", &len)]),
        pid: crate::os::pid(),
    }
}

/// A fixed-length `[T]` in shared memory with one lock.
///
/// ```
/// let a = forja::Array::<f64>::zeroed(3).unwrap();
/// a.store(1, 0.5).unwrap();
/// assert_eq!(a.load(1).unwrap(), 0.5);
/// assert_eq!(a.len(), 3);
/// ```
pub struct Array<T: Shareable> {
    shm: ShmBox<ArrayHeader>,
    _t: PhantomData<T>,
}

impl<T: Shareable> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            shm: self.shm.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.get_lock() {
            Ok(g) => f.debug_tuple("Array").field(&&*g).finish(),
            Err(e) => write!(f, "Array({})", crate::value::unavailable(&e)),
        }
    }
}

/// Holds an [`Array`]'s lock and gives `&[T]` / `&mut [T]`; dropping it
/// releases the lock.
///
/// ```
/// let a = forja::Array::from_slice(&[3u8, 1, 2]).unwrap();
/// a.get_lock().unwrap().sort();
/// assert_eq!(a.to_vec().unwrap(), vec![1, 2, 3]);
/// ```
///
/// It belongs to the thread that took it, so it cannot be sent to another
/// thread (error E0277, "`*const ()` cannot be sent between threads safely"):
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// let a = forja::Array::from_elem(0u8, 2).unwrap();
/// send(a.get_lock().unwrap());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: Shareable> {
    array: &'a Array<T>,
    /// The owner id in the lock word: this thread, through a guard.
    me: u32,
    _not_send: NotSend,
}

impl<T: Shareable> Array<T> {
    /// An array of `len` zeroed elements (Python's `Array('d', 10)`).
    ///
    /// ```
    /// let a = forja::Array::<bool>::zeroed(2).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), vec![false, false]);
    /// ```
    #[track_caller]
    pub fn zeroed(len: usize) -> Result<Array<T>>
    where
        T: bytemuck::Zeroable,
    {
        crate::located::located(Self::zeroed_body(len), "Array::zeroed")
    }

    fn zeroed_body(len: usize) -> Result<Array<T>>
    where
        T: bytemuck::Zeroable,
    {
        Self::from_fn(len, |_| T::zeroed())
    }

    /// An array of `len` copies of `value`.
    ///
    /// ```
    /// let a = forja::Array::from_elem(7u32, 3).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), vec![7, 7, 7]);
    /// ```
    #[track_caller]
    pub fn from_elem(value: T, len: usize) -> Result<Array<T>> {
        crate::located::located(Self::from_elem_body(value, len), "Array::from_elem")
    }

    fn from_elem_body(value: T, len: usize) -> Result<Array<T>> {
        Self::from_fn(len, |_| value)
    }

    /// An array holding a copy of `items`.
    ///
    /// ```
    /// let a = forja::Array::from_slice(&['a', 'b']).unwrap();
    /// assert_eq!(a.load(1).unwrap(), 'b');
    /// ```
    #[track_caller]
    pub fn from_slice(items: &[T]) -> Result<Array<T>> {
        crate::located::located(Self::from_slice_body(items), "Array::from_slice")
    }

    fn from_slice_body(items: &[T]) -> Result<Array<T>> {
        Self::from_fn(items.len(), |i| items[i])
    }

    /// An array whose element `i` is `f(i)`.
    ///
    /// ```
    /// let squares = forja::Array::from_fn(4, |i| (i * i) as u64).unwrap();
    /// assert_eq!(squares.to_vec().unwrap(), vec![0, 1, 4, 9]);
    /// ```
    #[track_caller]
    pub fn from_fn(len: usize, f: impl FnMut(usize) -> T) -> Result<Array<T>> {
        crate::located::located(Self::from_fn_body(len, f), "Array::from_fn")
    }

    fn from_fn_body(len: usize, f: impl FnMut(usize) -> T) -> Result<Array<T>> {
        Ok(Array {
            shm: make(len, f)?,
            _t: PhantomData,
        })
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(forja::Array::from_elem(0i8, 5).unwrap().len(), 5);
    /// ```
    pub fn len(&self) -> usize {
        self.shm.len
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(forja::Array::<u8>::zeroed(0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shm.len == 0
    }

    fn guard(&self, me: u32) -> ArrayGuard<'_, T> {
        ArrayGuard {
            array: self,
            me,
            _not_send: NotSend::default(),
        }
    }

    #[inline]
    fn guard_until(&self, deadline: Option<Instant>) -> Result<ArrayGuard<'_, T>> {
        let me = guard_id();
        lock_or_report(&self.shm.lock, me, deadline, WHAT, HINT, DATA_SITE)?;
        Ok(self.guard(me))
    }

    /// Waits for the lock and returns a guard giving `&mut [T]`.
    ///
    /// If this thread holds the guard already, this is
    /// [`Error::WouldDeadlock`] at once: use that guard. If a process died
    /// holding it, this is [`Error::LockOwnerDied`] until someone calls
    /// [`recover`](Array::recover).
    ///
    /// ```
    /// let a = forja::Array::from_elem(1u32, 3).unwrap();
    /// for x in a.get_lock().unwrap().iter_mut() { *x *= 2; }
    /// assert_eq!(a.to_vec().unwrap(), vec![2, 2, 2]);
    /// ```
    #[track_caller]
    pub fn get_lock(&self) -> Result<ArrayGuard<'_, T>> {
        crate::located::located(self.get_lock_body(), "Array::get_lock")
    }

    fn get_lock_body(&self) -> Result<ArrayGuard<'_, T>> {
        self.guard_until(None)
    }

    /// Like [`get_lock`](Array::get_lock), giving up with
    /// [`Error::Timeout`] after `timeout`.
    ///
    /// ```
    /// let a = forja::Array::from_elem(0u8, 1).unwrap();
    /// let g = a.get_lock_timeout(std::time::Duration::from_millis(5)).unwrap();
    /// # drop(g);
    /// ```
    #[track_caller]
    pub fn get_lock_timeout(&self, timeout: Duration) -> Result<ArrayGuard<'_, T>> {
        crate::located::located(
            self.get_lock_timeout_body(timeout),
            "Array::get_lock_timeout",
        )
    }

    fn get_lock_timeout_body(&self, timeout: Duration) -> Result<ArrayGuard<'_, T>> {
        self.guard_until(crate::deadline::deadline(timeout))
    }

    /// After [`Error::LockOwnerDied`], takes the lock whose holder died and
    /// gives its guard: check or repair the elements, then drop it.
    ///
    /// ```
    /// let a = forja::Array::from_elem(0u8, 1).unwrap();
    /// assert!(a.recover().is_err()); // nobody died
    /// ```
    #[track_caller]
    pub fn recover(&self) -> Result<ArrayGuard<'_, T>> {
        crate::located::located(self.recover_body(), "Array::recover")
    }

    fn recover_body(&self) -> Result<ArrayGuard<'_, T>> {
        let me = guard_id();
        match self.shm.lock.recover(me) {
            Some(_) => Ok(self.guard(me)),
            None => Err(Error::NothingToRecover {
                what: WHAT,
                pid: crate::os::pid(),
            }),
        }
    }

    /// Reads element `index` under the lock.
    ///
    /// ```
    /// let a = forja::Array::from_slice(&[5i64, 6]).unwrap();
    /// assert_eq!(a.load(0).unwrap(), 5);
    /// assert!(a.load(2).is_err()); // out of bounds
    /// ```
    #[track_caller]
    pub fn load(&self, index: usize) -> Result<T> {
        crate::located::located(self.load_body(index), "Array::load")
    }

    fn load_body(&self, index: usize) -> Result<T> {
        let g = self.get_lock()?;
        g.get(index)
            .copied()
            .ok_or_else(|| out_of_bounds(index, self.len()))
    }

    /// Writes element `index` under the lock.
    ///
    /// ```
    /// let a = forja::Array::from_slice(&[5i64, 6]).unwrap();
    /// a.store(1, 60).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), vec![5, 60]);
    /// ```
    #[track_caller]
    pub fn store(&self, index: usize, value: T) -> Result<()> {
        crate::located::located(self.store_body(index, value), "Array::store")
    }

    fn store_body(&self, index: usize, value: T) -> Result<()> {
        let mut g = self.get_lock()?;
        let len = g.len();
        *g.get_mut(index).ok_or_else(|| out_of_bounds(index, len))? = value;
        Ok(())
    }

    /// A copy of every element, taken under the lock.
    ///
    /// ```
    /// let a = forja::Array::from_slice(&[1u8, 2]).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), vec![1, 2]);
    /// ```
    #[track_caller]
    pub fn to_vec(&self) -> Result<Vec<T>> {
        crate::located::located(self.to_vec_body(), "Array::to_vec")
    }

    fn to_vec_body(&self) -> Result<Vec<T>> {
        Ok(self.get_lock()?.to_vec())
    }

    /// Whether the calling thread holds this array's guard (then `load`,
    /// `store`, `to_vec` and `get_lock` are [`Error::WouldDeadlock`]).
    ///
    /// ```
    /// let a = forja::Array::from_elem(0u8, 2).unwrap();
    /// let g = a.get_lock().unwrap();
    /// assert!(a.is_held_by_current_thread());
    /// assert_eq!(format!("{a:?}"), "Array(<held by this thread>)");
    /// drop(g);
    /// assert!(!a.is_held_by_current_thread());
    /// ```
    pub fn is_held_by_current_thread(&self) -> bool {
        self.shm.lock.held_by_my_guard()
    }
}

impl<T: Shareable> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let shm = &self.array.shm;
        // SAFETY: we hold the lock, and this thread cannot take it again
        // (WouldDeadlock), so no other reference to the elements is live;
        // len elements were written in `make`.
        unsafe { std::slice::from_raw_parts(shm.trailing_ptr().cast::<T>(), shm.len) }
    }
}

impl<T: Shareable> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let shm = &self.array.shm;
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { std::slice::from_raw_parts_mut(shm.trailing_ptr().cast::<T>(), shm.len) }
    }
}

impl<T: Shareable> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.array.shm.lock.unlock_if_owner(self.me);
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

/// A fixed-length `[T]` in shared memory *without* a lock, for
/// race-condition demos (Python's `Array(..., lock=False)`).
///
/// Each [`load`](RawArray::load) / [`store`](RawArray::store) is one separate
/// read or write of one element, as for [`RawValue`](crate::RawValue): two
/// processes doing `a.store(i, a.load(i)? + 1)` lose updates (a race
/// condition, not undefined behaviour). Use [`Array`] for correct code.
///
/// ```
/// let a = forja::RawArray::from_elem(0u32, 2).unwrap();
/// a.store(1, a.load(1).unwrap() + 1).unwrap();
/// assert_eq!(a.to_vec(), vec![0, 1]);
/// ```
pub struct RawArray<T: Shareable> {
    shm: ShmBox<ArrayHeader>,
    _t: PhantomData<T>,
}

impl<T: Shareable> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray {
            shm: self.shm.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Shareable + std::fmt::Debug> std::fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawArray").field(&self.to_vec()).finish()
    }
}

impl<T: Shareable> RawArray<T> {
    /// An array of `len` zeroed elements, without a lock.
    ///
    /// ```
    /// let a = forja::RawArray::<i16>::zeroed(3).unwrap();
    /// assert_eq!(a.to_vec(), vec![0, 0, 0]);
    /// ```
    #[track_caller]
    pub fn zeroed(len: usize) -> Result<RawArray<T>>
    where
        T: bytemuck::Zeroable,
    {
        crate::located::located(Self::zeroed_body(len), "RawArray::zeroed")
    }

    fn zeroed_body(len: usize) -> Result<RawArray<T>>
    where
        T: bytemuck::Zeroable,
    {
        Self::from_fn(len, |_| T::zeroed())
    }

    /// An array of `len` copies of `value`, without a lock.
    ///
    /// ```
    /// assert_eq!(forja::RawArray::from_elem(true, 2).unwrap().to_vec(), vec![true, true]);
    /// ```
    #[track_caller]
    pub fn from_elem(value: T, len: usize) -> Result<RawArray<T>> {
        crate::located::located(Self::from_elem_body(value, len), "RawArray::from_elem")
    }

    fn from_elem_body(value: T, len: usize) -> Result<RawArray<T>> {
        Self::from_fn(len, |_| value)
    }

    /// An array holding a copy of `items`, without a lock.
    ///
    /// ```
    /// assert_eq!(forja::RawArray::from_slice(&[1u8]).unwrap().len(), 1);
    /// ```
    #[track_caller]
    pub fn from_slice(items: &[T]) -> Result<RawArray<T>> {
        crate::located::located(Self::from_slice_body(items), "RawArray::from_slice")
    }

    fn from_slice_body(items: &[T]) -> Result<RawArray<T>> {
        Self::from_fn(items.len(), |i| items[i])
    }

    /// An array whose element `i` is `f(i)`, without a lock.
    ///
    /// ```
    /// let a = forja::RawArray::from_fn(3, |i| i as u8).unwrap();
    /// assert_eq!(a.to_vec(), vec![0, 1, 2]);
    /// ```
    #[track_caller]
    pub fn from_fn(len: usize, f: impl FnMut(usize) -> T) -> Result<RawArray<T>> {
        crate::located::located(Self::from_fn_body(len, f), "RawArray::from_fn")
    }

    fn from_fn_body(len: usize, f: impl FnMut(usize) -> T) -> Result<RawArray<T>> {
        Ok(RawArray {
            shm: make(len, f)?,
            _t: PhantomData,
        })
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(forja::RawArray::from_elem(0u8, 4).unwrap().len(), 4);
    /// ```
    pub fn len(&self) -> usize {
        self.shm.len
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(forja::RawArray::<u8>::zeroed(0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shm.len == 0
    }

    fn ptr(&self, index: usize) -> Result<*mut T> {
        if index < self.shm.len {
            // SAFETY: in bounds.
            Ok(unsafe { self.shm.trailing_ptr().cast::<T>().add(index) })
        } else {
            Err(out_of_bounds(index, self.shm.len))
        }
    }

    /// One unsynchronised read of element `index`.
    ///
    /// ```
    /// let a = forja::RawArray::from_slice(&[4u16]).unwrap();
    /// assert_eq!(a.load(0).unwrap(), 4);
    /// assert!(a.load(1).is_err());
    /// ```
    #[track_caller]
    pub fn load(&self, index: usize) -> Result<T> {
        crate::located::located(self.load_body(index), "RawArray::load")
    }

    fn load_body(&self, index: usize) -> Result<T> {
        // SAFETY: valid, aligned, mapped while `self` lives.
        Ok(unsafe { racy_load(self.ptr(index)?) })
    }

    /// One unsynchronised write of element `index`.
    ///
    /// ```
    /// let a = forja::RawArray::from_slice(&[4u16]).unwrap();
    /// a.store(0, 8).unwrap();
    /// assert_eq!(a.load(0).unwrap(), 8);
    /// ```
    #[track_caller]
    pub fn store(&self, index: usize, value: T) -> Result<()> {
        crate::located::located(self.store_body(index, value), "RawArray::store")
    }

    fn store_body(&self, index: usize, value: T) -> Result<()> {
        // SAFETY: valid, aligned, mapped while `self` lives.
        unsafe { racy_store(self.ptr(index)?, value) };
        Ok(())
    }

    /// A copy of every element, read one by one without a lock.
    ///
    /// ```
    /// assert_eq!(forja::RawArray::from_elem(2i8, 2).unwrap().to_vec(), vec![2, 2]);
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        let base = self.shm.trailing_ptr().cast::<T>();
        // SAFETY: every index is in bounds.
        (0..self.shm.len)
            .map(|i| unsafe { racy_load(base.add(i)) })
            .collect()
    }
}
