//! The small shared-memory layer under [`Value`](crate::Value),
//! [`Array`](crate::Array), [`Queue`](crate::Queue) and the locks.
//!
//! A [`SharedRegion`] is an anonymous `MAP_SHARED` mapping: made *before* a
//! fork, the parent and every child see the same bytes (a plain heap
//! allocation, or an anonymous `memmap2` map, is copied at the fork instead).
//! Handles are reference counted within one process (an `Arc`): clones share
//! the mapping and the last one to go unmaps it in that process. Each process
//! unmaps its own view; the memory itself lives until every process has.
//!
//! ```
//! use forja::shm::SharedMem;
//!
//! let counter = SharedMem::new(41u64).unwrap();
//! // SAFETY: no other process touches it while we do.
//! unsafe { *counter.as_ptr() += 1 };
//! assert_eq!(unsafe { *counter.as_ptr() }, 42);
//! ```

use crate::error::{Error, Result};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// One mapping, unmapped when the last handle of this process drops it.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; what lives in it decides how it may be
// used, and every typed user below only hands out shared access through
// atomics or a lock.
unsafe impl Send for Mapping {}
// SAFETY: as for Send.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from mmap and nobody in this process holds a
        // reference any more (we are the last Arc).
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// Raw bytes in an anonymous `MAP_SHARED` mapping, zero-filled.
///
/// Create it before forking; the children then share it with the parent.
///
/// ```
/// let region = forja::shm::SharedRegion::new(4096).unwrap();
/// assert_eq!(region.len(), 4096);
/// assert_eq!(unsafe { *region.as_ptr() }, 0);
/// ```
#[derive(Debug, Clone)]
pub struct SharedRegion {
    map: Arc<Mapping>,
}

impl SharedRegion {
    /// Maps `len` zeroed bytes shared with every process forked afterwards.
    ///
    /// ```
    /// let region = forja::shm::SharedRegion::new(64).unwrap();
    /// assert!(!region.is_empty());
    /// ```
    pub fn new(len: usize) -> Result<Self> {
        let size = NonZeroUsize::new(len.max(1)).expect("max(1) is non-zero");
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| Error::os("mapping shared memory (mmap MAP_SHARED)", e))?;
        Ok(SharedRegion {
            map: Arc::new(Mapping {
                ptr: ptr.cast(),
                len: size.get(),
            }),
        })
    }

    /// The size in bytes.
    ///
    /// ```
    /// assert_eq!(forja::shm::SharedRegion::new(10).unwrap().len(), 10);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// `true` for a region of zero bytes (never: at least one byte is mapped).
    ///
    /// ```
    /// assert!(!forja::shm::SharedRegion::new(1).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.map.len == 0
    }

    /// The first byte. Reading or writing through it is up to you: other
    /// processes may do the same at the same time.
    ///
    /// ```
    /// let r = forja::shm::SharedRegion::new(8).unwrap();
    /// unsafe { r.as_ptr().write(7) };
    /// assert_eq!(unsafe { r.as_ptr().read() }, 7);
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.ptr.as_ptr()
    }
}

/// One plain-data `T` in shared memory (see [`SharedRegion`]).
///
/// Only `bytemuck::Pod` types: no pointers, no padding, any bit pattern valid,
/// so whatever another process wrote is a valid `T`. For a value with a lock
/// and safe access use [`Value`](crate::Value).
///
/// ```
/// let pair = forja::shm::SharedMem::new([1u32, 2]).unwrap();
/// let copy = pair.clone(); // same memory
/// unsafe { (*copy.as_ptr())[1] = 5 };
/// assert_eq!(unsafe { *pair.as_ptr() }, [1, 5]);
/// ```
#[derive(Debug)]
pub struct SharedMem<T> {
    region: SharedRegion,
    _t: PhantomData<T>,
}

impl<T> Clone for SharedMem<T> {
    fn clone(&self) -> Self {
        SharedMem {
            region: self.region.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: bytemuck::Pod> SharedMem<T> {
    /// Maps shared memory holding `value`.
    ///
    /// ```
    /// let x = forja::shm::SharedMem::new(1.5f64).unwrap();
    /// assert_eq!(unsafe { *x.as_ptr() }, 1.5);
    /// ```
    pub fn new(value: T) -> Result<Self> {
        check_align(align_of::<T>())?;
        let region = SharedRegion::new(size_of::<T>())?;
        // SAFETY: the region is fresh (nothing else refers to it), at least
        // `size_of::<T>()` bytes, and page-aligned: enough for `T`, whose
        // alignment `check_align` bounded by a page.
        unsafe { region.as_ptr().cast::<T>().write(value) };
        Ok(SharedMem {
            region,
            _t: PhantomData,
        })
    }

    /// A raw pointer to the shared `T`.
    ///
    /// ```
    /// let x = forja::shm::SharedMem::new(3u8).unwrap();
    /// assert_eq!(unsafe { x.as_ptr().read_volatile() }, 3);
    /// ```
    pub fn as_ptr(&self) -> *mut T {
        self.region.as_ptr().cast()
    }

    /// The underlying region.
    ///
    /// ```
    /// let x = forja::shm::SharedMem::new(0u32).unwrap();
    /// assert!(x.region().len() >= 4);
    /// ```
    pub fn region(&self) -> &SharedRegion {
        &self.region
    }
}

/// The alignment a mapping guarantees: a page (at least 4 KiB on Linux).
const MAP_ALIGN: usize = 4096;

/// Refuses a type aligned beyond a page: `mmap` would not align it.
fn check_align(align: usize) -> Result<()> {
    if align <= MAP_ALIGN {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        message: format!(
            "shared memory is aligned to {MAP_ALIGN} bytes; a type aligned to {align} bytes \
             cannot live there"
        ),
        pid: crate::os::pid(),
    })
}

/// Crate-internal: a header `T` (atomics only: it is reached through `&T`
/// from several processes at once) followed by `trailing` raw bytes.
pub(crate) struct ShmBox<T> {
    region: SharedRegion,
    trailing_offset: usize,
    trailing_len: usize,
    _t: PhantomData<T>,
}

impl<T> Clone for ShmBox<T> {
    fn clone(&self) -> Self {
        ShmBox {
            region: self.region.clone(),
            trailing_offset: self.trailing_offset,
            trailing_len: self.trailing_len,
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for ShmBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmBox")
            .field("ptr", &self.region.as_ptr())
            .field("trailing_len", &self.trailing_len)
            .finish()
    }
}

impl<T> ShmBox<T> {
    /// Maps `header` followed by `trailing_len` zeroed bytes aligned to
    /// `trailing_align` (at most a page).
    ///
    /// SAFETY: `T` must be usable through `&T` from several processes at
    /// once (atomics / `UnsafeCell` guarded by a lock in shared memory), must
    /// not own process-local resources (its `Drop` never runs).
    pub(crate) unsafe fn new(
        header: T,
        trailing_len: usize,
        trailing_align: usize,
    ) -> Result<Self> {
        check_align(align_of::<T>())?;
        check_align(trailing_align)?;
        let align = trailing_align.max(1);
        let trailing_offset = size_of::<T>().div_ceil(align) * align;
        let total = trailing_offset
            .checked_add(trailing_len)
            .ok_or_else(|| Error::os("sizing shared memory", std::io::Error::other("too large")))?;
        let region = SharedRegion::new(total)?;
        // SAFETY: the region is fresh (nothing else refers to it), page-
        // aligned (so aligned for `T`, checked above) and holds
        // `trailing_offset >= size_of::<T>()` bytes before the trailing ones.
        unsafe { region.as_ptr().cast::<T>().write(header) };
        Ok(ShmBox {
            region,
            trailing_offset,
            trailing_len,
            _t: PhantomData,
        })
    }

    /// The trailing bytes.
    pub(crate) fn trailing_ptr(&self) -> *mut u8 {
        // SAFETY: `trailing_offset` is at most the mapping's length (`new`
        // mapped `trailing_offset + trailing_len` bytes), so the result is
        // inside it or one past its end.
        unsafe { self.region.as_ptr().add(self.trailing_offset) }
    }
}

impl<T> Deref for ShmBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: written in `new`, lives as long as the mapping, and `T` is
        // built for shared access (see `new`).
        unsafe { &*self.region.as_ptr().cast::<T>() }
    }
}

// SAFETY: the header is built for concurrent access from several processes,
// so from several threads too.
unsafe impl<T: Sync> Send for ShmBox<T> {}
// SAFETY: as for Send.
unsafe impl<T: Sync> Sync for ShmBox<T> {}

/// Plain data that may live in shared memory: [`Value`](crate::Value),
/// [`Array`](crate::Array), [`RawValue`](crate::RawValue) and
/// [`RawArray`](crate::RawArray) hold only `Shareable` types.
///
/// Implemented for the integers, `f32`/`f64`, `bool`, `char` and fixed
/// arrays of those. A `String`, `Vec` or `Box` is *not* shareable: it is a
/// pointer to this process's heap, which means nothing in another process.
///
/// For your own struct, make it `#[repr(C)]` of shareable fields with no
/// padding, derive `bytemuck::NoUninit` (forja re-exports
/// [`bytemuck`]) and promise the rest with `unsafe impl`:
///
/// ```
/// use forja::bytemuck::NoUninit;
///
/// #[derive(Clone, Copy, NoUninit)]
/// #[bytemuck(crate = "forja::bytemuck")]
/// #[repr(C)]
/// struct Point { x: f64, y: f64 }
///
/// // SAFETY: repr(C), fields are shareable, no padding (NoUninit checks it),
/// // and all-zero bytes are a valid Point.
/// unsafe impl forja::Shareable for Point {}
///
/// let p = forja::Value::new(Point { x: 1.0, y: 2.0 }).unwrap();
/// assert_eq!(p.load().unwrap().y, 2.0);
/// ```
///
/// A heap type does not compile, and the message says why:
///
/// ```compile_fail,E0277
/// let name = forja::Value::new(String::from("Ada")); // String: not Shareable
/// ```
///
/// ```compile_fail,E0277
/// let bytes = forja::Value::new(vec![1u8, 2, 3]); // Vec: not Shareable
/// ```
///
/// # Safety
///
/// Implement it only for `Copy` types that are `#[repr(C)]` (or primitive)
/// and made only of `Shareable` fields with no padding: no pointers or
/// references, no process-local handles, all-zero bytes valid. Then any
/// bytes another process wrote as a `T` are a valid `T` here.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be shared between processes: it is not plain data",
    label = "`{Self}` is not `forja::Shareable`",
    note = "a pointer means nothing in another process: `String`, `Vec`, `Box` and references point into this process's own heap, so shared memory can only hold plain data (integers, floats, bool, char, fixed arrays, #[repr(C)] structs of those)",
    note = "for text use a fixed array such as `[u8; 32]`, or send owned values through a `forja::Queue` or `Pipe` instead"
)]
pub unsafe trait Shareable: bytemuck::NoUninit + Send + Sync {}

macro_rules! shareable {
    ($($t:ty),*) => {
        // SAFETY: plain numbers, `bool` and `char` hold no pointer, and
        // `NoUninit` (a supertrait) rules out padding.
        $(unsafe impl Shareable for $t {})*
    };
}
shareable!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool, char
);
// SAFETY: an array of shareable elements is shareable.
unsafe impl<T: Shareable, const N: usize> Shareable for [T; N] where [T; N]: bytemuck::NoUninit {}

/// Reads a `T` from shared memory that other processes may write at the same
/// time, without a lock: relaxed atomic loads of `min(align, 8)` bytes each.
///
/// Each chunk is one atomic load, so no field with a validity rule (`bool`,
/// `char`) can be torn; wider plain numbers may mix two writes.
///
/// # Safety
///
/// `p` points to a valid, aligned `T` in memory that stays mapped.
pub(crate) unsafe fn racy_load<T: Shareable>(p: *const T) -> T {
    use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};
    let mut out = std::mem::MaybeUninit::<T>::uninit();
    let dst = out.as_mut_ptr().cast::<u8>();
    let src = p.cast::<u8>();
    let chunk = align_of::<T>().min(8);
    let mut off = 0;
    while off < size_of::<T>() {
        // SAFETY: chunks are aligned to `chunk` (a divisor of T's alignment)
        // and inside the T that `p` points to (the caller's promise), and
        // inside `out`; each is read with one atomic load.
        unsafe {
            match chunk {
                8 => dst.add(off).cast::<u64>().write(
                    AtomicU64::from_ptr(src.add(off).cast::<u64>().cast_mut()).load(Relaxed),
                ),
                4 => dst.add(off).cast::<u32>().write(
                    AtomicU32::from_ptr(src.add(off).cast::<u32>().cast_mut()).load(Relaxed),
                ),
                2 => dst.add(off).cast::<u16>().write(
                    AtomicU16::from_ptr(src.add(off).cast::<u16>().cast_mut()).load(Relaxed),
                ),
                _ => dst
                    .add(off)
                    .write(AtomicU8::from_ptr(src.add(off).cast_mut()).load(Relaxed)),
            }
        }
        off += chunk;
    }
    // SAFETY: every byte of `out` was written. Each chunk comes whole from
    // one valid `T` (one atomic load); the only fields with a validity rule
    // (`bool`, 1 byte; `char`, 4 bytes aligned to 4, while chunks are
    // aligned to `min(align_of::<T>(), 8) >= 4` when a `char` is in `T`)
    // never straddle two chunks, and `Shareable` types have no padding and
    // no pointers, so a mix of chunks of different writes is a valid `T`.
    unsafe { out.assume_init() }
}

/// Writes a `T` the way [`racy_load`] reads it.
///
/// SAFETY: `p` points to a valid, aligned `T` in memory that stays mapped.
pub(crate) unsafe fn racy_store<T: Shareable>(p: *mut T, value: T) {
    use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};
    let src = bytemuck::bytes_of(&value).as_ptr();
    let dst = p.cast::<u8>();
    let chunk = align_of::<T>().min(8);
    let mut off = 0;
    while off < size_of::<T>() {
        // SAFETY: as in racy_load; `src` is a local, so unaligned reads.
        unsafe {
            match chunk {
                8 => AtomicU64::from_ptr(dst.add(off).cast())
                    .store(src.add(off).cast::<u64>().read_unaligned(), Relaxed),
                4 => AtomicU32::from_ptr(dst.add(off).cast())
                    .store(src.add(off).cast::<u32>().read_unaligned(), Relaxed),
                2 => AtomicU16::from_ptr(dst.add(off).cast())
                    .store(src.add(off).cast::<u16>().read_unaligned(), Relaxed),
                _ => AtomicU8::from_ptr(dst.add(off)).store(src.add(off).read(), Relaxed),
            }
        }
        off += chunk;
    }
}

/// What [`memfd_mapping`] says in its errors: the step that failed.
pub(crate) struct MemfdSteps {
    /// `memfd_create` failed.
    pub make: &'static str,
    /// `ftruncate` failed.
    pub size: &'static str,
    /// `mmap` failed.
    pub map: &'static str,
}

/// A fresh memfd named `name`, `len` bytes long, mapped `MAP_SHARED`
/// read-write: the per-process tables (the registry, the timeline) that
/// every cell's copy of forja, and every child, finds by the memfd's name
/// (see `registry/published.rs`). Returns the fd (close-on-exec) and
/// the address; on error nothing is left open or mapped.
pub(crate) fn memfd_mapping(
    name: &std::ffi::CStr,
    len: usize,
    steps: &MemfdSteps,
) -> Result<(libc::c_int, usize)> {
    use nix::sys::mman::{MapFlags, ProtFlags};
    use std::os::fd::IntoRawFd;
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| Error::os(steps.make, e))?;
    nix::unistd::ftruncate(&fd, len as libc::off_t).map_err(|e| Error::os(steps.size, e))?;
    let len = std::num::NonZeroUsize::new(len).ok_or_else(|| {
        Error::os(
            steps.size,
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
        )
    })?;
    // SAFETY: a fresh mapping (no address asked for, so nothing is replaced)
    // of `len` bytes of a memfd just sized to `len`.
    let p = unsafe {
        nix::sys::mman::mmap(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            &fd,
            0,
        )
    }
    .map_err(|e| Error::os(steps.map, e))?;
    // Kept open for the life of the process: callers publish it.
    Ok((fd.into_raw_fd(), p.as_ptr() as usize))
}

/// A short string (at most `8 * WORDS` bytes, cut at a character boundary)
/// stored as atomics, so a reader in another process never races the
/// writer: names in the registry and the timeline.
#[repr(transparent)]
pub(crate) struct AtomicName<const WORDS: usize>([std::sync::atomic::AtomicU64; WORDS]);

impl<const WORDS: usize> AtomicName<WORDS> {
    /// Stores `name`, cut to fit.
    pub(crate) fn store(&self, name: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut bytes = [0u8; 8];
        let mut len = name.len().min(8 * WORDS);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let name = &name.as_bytes()[..len];
        for (i, word) in self.0.iter().enumerate() {
            bytes.fill(0);
            let chunk = name.get(i * 8..).unwrap_or_default();
            let n = chunk.len().min(8);
            bytes[..n].copy_from_slice(&chunk[..n]);
            word.store(u64::from_le_bytes(bytes), Relaxed);
        }
    }

    /// The stored name (up to the first NUL byte).
    pub(crate) fn load(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let mut bytes = Vec::with_capacity(8 * WORDS);
        for word in &self.0 {
            bytes.extend_from_slice(&word.load(Relaxed).to_le_bytes());
        }
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..len]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::AtomicName;

    #[test]
    fn names_are_cut_at_a_character_boundary() {
        let name: AtomicName<2> = AtomicName(Default::default());
        name.store("Process-1");
        assert_eq!(name.load(), "Process-1");
        name.store("abcdefghijklmnopqrs");
        assert_eq!(name.load(), "abcdefghijklmnop");
        name.store("aaaaaaaaaaaaaaañ"); // ñ would straddle the end
        assert_eq!(name.load(), "aaaaaaaaaaaaaaa");
        name.store("");
        assert_eq!(name.load(), "");
    }
}
