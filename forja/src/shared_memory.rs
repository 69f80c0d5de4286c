//! [`SharedMemory`]: a named block of shared memory that unrelated
//! processes attach to by name (Python's `multiprocessing.shared_memory`).
//!
//! A block is a file in `/dev/shm` (what `shm_open` makes on Linux) named
//! `forja-UID-shm-NAME`, so two users of one machine never collide, made
//! with `O_EXCL` and mode `0600`; [`attach`](SharedMemory::attach) refuses a
//! file that belongs to another user. It starts with a 64-byte header (a
//! magic number, the size and a lock word), then `size` zeroed bytes.
//!
//! **Who removes the name.** As Python's `close()` and `unlink()`: dropping
//! a handle (or [`close`](SharedMemory::close)) unmaps the block in this
//! process, and [`unlink`](SharedMemory::unlink) removes its name (the
//! memory lives until every process has unmapped it). Unlike Python, where a
//! creator that forgets `unlink()` leaks the block until reboot (the
//! resource tracker only warns), the *creator's* handle also unlinks the
//! name when it is dropped, in the process that created it (not in a forked
//! child holding a copy): the block lives as long as its creator's handle.
//!
//! **What a crash leaves.** Each creation is also recorded in an empty
//! marker file, `forja-UID-rec-SESSION-NAME`, holding the block's inode.
//! [`cleanup_session`] unlinks every block the session recorded and still
//! owns: the kernel calls it when it restarts or shuts down, so a cell that
//! crashed, or a child killed mid-way, leaks nothing past the session. The
//! session is the kernel (`FORJA_KERNEL_PID`); outside it, the terminal
//! session (`getsid`); `FORJA_SHM_SESSION` overrides both.
//!
//! **Access.** Other processes may write the bytes at any moment, so there
//! is no `as_slice()` (a `&[u8]` to memory another process writes is a data
//! race, undefined behaviour). As for [`Array`](crate::Array), the block
//! has one lock: [`lock`](SharedMemory::lock) gives a guard that derefs to
//! `[u8]`; the bytes start 64-byte aligned, so `bytemuck::cast_slice_mut`
//! views them as `[f64]`, `[u32]`, … (forja re-exports [`bytemuck`]).
//!
//! ```
//! use forja::prelude::*;
//! use forja::shared_memory::SharedMemory;
//!
//! let name = format!("doc-{}", std::process::id());
//! let block = SharedMemory::create(&name, 16).unwrap();
//! let p = {
//!     let name = name.clone();
//!     Process::new(move || {
//!         let mine = SharedMemory::attach(&name).unwrap(); // by name, as another program would
//!         mine.lock().unwrap()[0] = 42;
//!     })
//! };
//! p.start().unwrap();
//! p.join().unwrap();
//! assert_eq!(block.lock().unwrap()[0], 42);
//! drop(block); // the creator's handle: unlinks the name
//! assert!(SharedMemory::attach(&name).is_err());
//! ```

use crate::error::{Error, Result};
use crate::sync::raw_lock::{LockWord, NotSend, guard_id, lock_or_report};

/// What a wait for this lock is on, in the wait graph.
const DATA_SITE: crate::waits::record::Site =
    crate::waits::record::Site::new(0, crate::waits::Kind::DataLock);
use std::fs::{File, OpenOptions};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where `shm_open` keeps its files on Linux.
const DIR: &str = "/dev/shm";
/// "FORJASHM": marks a block made by forja.
const MAGIC: u64 = u64::from_le_bytes(*b"FORJASHM");
/// Bytes before the data: the header, padded so the data is 64-byte aligned.
const HEADER: usize = 64;
/// The longest name (the file name adds about 20 bytes; NAME_MAX is 255).
const MAX_NAME: usize = 200;
const WHAT: &str = "a SharedMemory's lock";
const HINT: &str = "use the guard you hold instead of locking the block again, or drop it first";

#[repr(C)]
struct Header {
    magic: AtomicU64,
    size: AtomicU64,
    lock: LockWord,
}
const _: () = assert!(size_of::<Header>() <= HEADER);

fn pid() -> i32 {
    crate::os::pid()
}

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument {
        message,
        pid: pid(),
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME || name.contains(['/', '\0']) {
        return Err(invalid(format!(
            "a shared memory name must be 1 to {MAX_NAME} bytes without '/' or NUL, not {name:?}"
        )));
    }
    Ok(())
}

fn segment_path(name: &str) -> PathBuf {
    PathBuf::from(format!("{DIR}/forja-{}-shm-{name}", uid()))
}

/// This process's session: `FORJA_SHM_SESSION`, else the kernel's pid,
/// else the terminal session (letters and digits only).
fn session_key() -> String {
    let key = std::env::var(crate::link::env::SHM_SESSION)
        .ok()
        .or_else(|| {
            std::env::var(crate::link::env::KERNEL_PID)
                .ok()
                .map(|k| format!("kernel{k}"))
        })
        .unwrap_or_else(|| {
            let sid = nix::unistd::getsid(None).map_or(0, |p| p.as_raw());
            format!("sid{sid}")
        });
    key.chars().filter(char::is_ascii_alphanumeric).collect()
}

fn marker_prefix(key: &str) -> String {
    format!("forja-{}-rec-{key}-", uid())
}

fn marker_path(name: &str) -> PathBuf {
    PathBuf::from(format!("{DIR}/{}{name}", marker_prefix(&session_key())))
}

/// One mapping of a block in this process.
struct Segment {
    ptr: NonNull<u8>,
    /// Mapped bytes: the header and the data.
    len: usize,
    name: String,
    /// The pid that created the block, if this handle made it.
    creator: Option<i32>,
    unlinked: AtomicBool,
}

// SAFETY: the mapping is plain shared memory that lives as long as the
// Segment; the data is reached only through the lock (guards) and the header
// only through atomics, so moving the handle to another thread is sound.
unsafe impl Send for Segment {}
// SAFETY: as for Send: every shared access goes through atomics or the lock.
unsafe impl Sync for Segment {}

impl Segment {
    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a Header (atomics only), is
        // page-aligned and lives as long as `self`.
        unsafe { &*self.ptr.as_ptr().cast::<Header>() }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from mmap; no guard outlives the handles.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) };
        if self.creator == Some(pid()) && !self.unlinked.swap(true, Ordering::SeqCst) {
            let _ = remove_block(&self.name);
        }
    }
}

/// Removes a block's name and this session's marker of it; `false` if the
/// name did not exist.
fn remove_block(name: &str) -> std::io::Result<bool> {
    let _ = std::fs::remove_file(marker_path(name));
    match std::fs::remove_file(segment_path(name)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn map(file: &File, len: usize) -> Result<NonNull<u8>> {
    use nix::sys::mman::{MapFlags, ProtFlags, mmap};
    let size = std::num::NonZeroUsize::new(len).expect("the header is never empty");
    // SAFETY: a fresh shared mapping of a file we opened; it aliases no
    // Rust object.
    let ptr = unsafe {
        mmap(
            None,
            size,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            file,
            0,
        )
    }
    .map_err(|e| Error::os("mapping named shared memory (mmap)", e))?;
    Ok(ptr.cast())
}

/// A named block of shared memory (Python's
/// `multiprocessing.shared_memory.SharedMemory`); see the [module
/// docs](self) for names, clean-up and access. Clones share the mapping.
///
/// ```
/// use forja::shared_memory::SharedMemory;
///
/// let a = SharedMemory::new(8).unwrap(); // a generated name, as Python's
/// let b = SharedMemory::attach(a.name()).unwrap();
/// b.lock().unwrap().copy_from_slice(b"abcdefgh");
/// assert_eq!(a.to_vec().unwrap(), b"abcdefgh");
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    seg: Arc<Segment>,
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name())
            .field("size", &self.size())
            .field("creator", &self.seg.creator)
            .finish()
    }
}

impl SharedMemory {
    /// Makes a block of `size` zeroed bytes named `name` (Python's
    /// `SharedMemory(name, create=True, size=size)`).
    /// [`Error::SharedMemoryExists`] if this user has one of that name.
    /// The name is recorded for [`cleanup_session`].
    ///
    /// ```
    /// use forja::shared_memory::SharedMemory;
    /// let name = format!("create-{}", std::process::id());
    /// let a = SharedMemory::create(&name, 100).unwrap();
    /// assert_eq!((a.name(), a.size()), (name.as_str(), 100));
    /// assert!(matches!(SharedMemory::create(&name, 100),
    ///                  Err(forja::Error::SharedMemoryExists { .. })));
    /// assert!(SharedMemory::create("no/slash", 1).is_err());
    /// ```
    pub fn create(name: &str, size: usize) -> Result<SharedMemory> {
        check_name(name)?;
        if size == 0 {
            return Err(invalid(
                "a new SharedMemory needs a size of at least 1 byte".into(),
            ));
        }
        let total = size
            .checked_add(HEADER)
            .ok_or_else(|| invalid(format!("{size} bytes of shared memory is too large")))?;
        let path = segment_path(name);
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::SharedMemoryExists {
                    name: name.into(),
                    pid: pid(),
                });
            }
            Err(e) => return Err(Error::os("creating named shared memory in /dev/shm", e)),
        };
        let made = file
            .set_len(total as u64)
            .map_err(|e| Error::os("sizing named shared memory (ftruncate)", e))
            .and_then(|()| map(&file, total));
        let ptr = match made {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let seg = Segment {
            ptr,
            len: total,
            name: name.into(),
            creator: Some(pid()),
            unlinked: AtomicBool::new(false),
        };
        let h = seg.header();
        h.size.store(size as u64, Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
        // Record it for the session's clean-up: the inode tells this block
        // from a later one of the same name.
        let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
        let _ = std::fs::write(marker_path(name), ino.to_string());
        Ok(SharedMemory { seg: Arc::new(seg) })
    }

    /// Makes a block with a generated name (`psm-PID-N-…`, Python's
    /// `SharedMemory(create=True, size=size)`): pass [`name`](Self::name)
    /// to the processes that should attach.
    ///
    /// ```
    /// let a = forja::shared_memory::SharedMemory::new(4).unwrap();
    /// assert!(a.name().starts_with("psm-"));
    /// ```
    pub fn new(size: usize) -> Result<SharedMemory> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            match Self::create(&format!("psm-{}-{n}-{nanos:x}", pid()), size) {
                Err(Error::SharedMemoryExists { .. }) => continue,
                other => return other,
            }
        }
    }

    /// Maps the block this user made under `name` (Python's
    /// `SharedMemory(name)`), whatever its size.
    /// [`Error::SharedMemoryNotFound`] if there is none.
    ///
    /// ```
    /// use forja::shared_memory::SharedMemory;
    /// assert!(matches!(SharedMemory::attach("nobody-made-this"),
    ///                  Err(forja::Error::SharedMemoryNotFound { .. })));
    /// ```
    pub fn attach(name: &str) -> Result<SharedMemory> {
        check_name(name)?;
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(segment_path(name))
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::SharedMemoryNotFound {
                    name: name.into(),
                    pid: pid(),
                });
            }
            Err(e) => return Err(Error::os("opening named shared memory in /dev/shm", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::os("reading named shared memory's size (fstat)", e))?;
        let not_ours = |why: &str| {
            invalid(format!(
                "/dev/shm/{} is not a forja SharedMemory of this user: {why}",
                segment_path(name).display()
            ))
        };
        if meta.uid() != uid() {
            return Err(not_ours("another user owns it"));
        }
        let len = usize::try_from(meta.len()).unwrap_or(0);
        if len <= HEADER {
            return Err(not_ours(
                "it is too short (still being made, or not forja's)",
            ));
        }
        let seg = Segment {
            ptr: map(&file, len)?,
            len,
            name: name.into(),
            creator: None,
            unlinked: AtomicBool::new(false),
        };
        let h = seg.header();
        if h.magic.load(Ordering::Acquire) != MAGIC
            || h.size.load(Ordering::Relaxed) != (len - HEADER) as u64
        {
            return Err(not_ours("its header is not forja's"));
        }
        Ok(SharedMemory { seg: Arc::new(seg) })
    }

    /// [`attach`](Self::attach), checking that the block holds `size`
    /// bytes: [`Error::SharedMemorySize`] if not.
    ///
    /// ```
    /// use forja::shared_memory::SharedMemory;
    /// let a = SharedMemory::new(32).unwrap();
    /// assert!(SharedMemory::attach_with_size(a.name(), 32).is_ok());
    /// assert!(matches!(SharedMemory::attach_with_size(a.name(), 64),
    ///                  Err(forja::Error::SharedMemorySize { actual: 32, .. })));
    /// ```
    pub fn attach_with_size(name: &str, size: usize) -> Result<SharedMemory> {
        let shm = Self::attach(name)?;
        if shm.size() != size {
            return Err(Error::SharedMemorySize {
                name: name.into(),
                expected: size,
                actual: shm.size(),
                pid: pid(),
            });
        }
        Ok(shm)
    }

    /// Its name, as given to [`create`](Self::create) (without the
    /// `forja-UID-shm-` prefix of the file).
    ///
    /// ```
    /// let a = forja::shared_memory::SharedMemory::new(1).unwrap();
    /// assert!(std::path::Path::new(&format!("/dev/shm/forja-{}-shm-{}",
    ///     unsafe { libc::getuid() }, a.name())).exists());
    /// ```
    pub fn name(&self) -> &str {
        &self.seg.name
    }

    /// Its size in bytes, as given to [`create`](Self::create).
    ///
    /// ```
    /// assert_eq!(forja::shared_memory::SharedMemory::new(10).unwrap().size(), 10);
    /// ```
    pub fn size(&self) -> usize {
        self.seg.len - HEADER
    }

    /// Waits for the block's lock and returns a guard giving `&mut [u8]`.
    /// Not re-entrant ([`Error::WouldDeadlock`] if this thread holds the
    /// guard); [`Error::LockOwnerDied`] if its holder died (see
    /// [`recover`](Self::recover)). Typed views through `bytemuck`:
    ///
    /// ```
    /// let a = forja::shared_memory::SharedMemory::new(3 * 8).unwrap();
    /// let mut g = a.lock().unwrap();
    /// let xs: &mut [f64] = forja::bytemuck::cast_slice_mut(&mut g[..]);
    /// xs[2] = 0.5;
    /// assert_eq!(xs, [0.0, 0.0, 0.5]);
    /// ```
    pub fn lock(&self) -> Result<SharedMemoryGuard<'_>> {
        self.lock_until(None)
    }

    /// Like [`lock`](Self::lock), giving up with [`Error::Timeout`] after
    /// `timeout`.
    ///
    /// ```
    /// let a = forja::shared_memory::SharedMemory::new(1).unwrap();
    /// let g = a.lock_timeout(std::time::Duration::from_millis(5)).unwrap();
    /// assert!(a.lock_timeout(std::time::Duration::ZERO).is_err()); // this thread holds it
    /// # drop(g);
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<SharedMemoryGuard<'_>> {
        self.lock_until(crate::deadline::deadline(timeout))
    }

    fn lock_until(&self, deadline: Option<Instant>) -> Result<SharedMemoryGuard<'_>> {
        let me = guard_id();
        lock_or_report(&self.seg.header().lock, me, deadline, WHAT, HINT, DATA_SITE)?;
        Ok(self.guard(me))
    }

    fn guard(&self, me: u32) -> SharedMemoryGuard<'_> {
        SharedMemoryGuard {
            shm: self,
            me,
            _not_send: NotSend::default(),
        }
    }

    /// After [`Error::LockOwnerDied`], takes the lock whose holder died
    /// and gives its guard: check or repair the bytes, then drop it.
    ///
    /// ```
    /// let a = forja::shared_memory::SharedMemory::new(1).unwrap();
    /// assert!(a.recover().is_err()); // nobody died
    /// ```
    pub fn recover(&self) -> Result<SharedMemoryGuard<'_>> {
        let me = guard_id();
        match self.seg.header().lock.recover(me) {
            Some(_) => Ok(self.guard(me)),
            None => Err(Error::NothingToRecover {
                what: WHAT,
                pid: pid(),
            }),
        }
    }

    /// A copy of the bytes, taken under the lock.
    ///
    /// ```
    /// let a = forja::shared_memory::SharedMemory::new(2).unwrap();
    /// assert_eq!(a.to_vec().unwrap(), vec![0, 0]);
    /// ```
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        Ok(self.lock()?.to_vec())
    }

    /// Unmaps it in this process (the same as dropping it; Python's
    /// `close()`). The creator's last handle also unlinks the name.
    ///
    /// ```
    /// let a = forja::shared_memory::SharedMemory::new(1).unwrap();
    /// let name = a.name().to_string();
    /// a.close();
    /// assert!(forja::shared_memory::SharedMemory::attach(&name).is_err());
    /// ```
    pub fn close(self) {}

    /// Removes the name (Python's `unlink()`): no one can attach any more;
    /// whoever has it mapped keeps using it until they drop it. Any process
    /// may call it; [`Error::SharedMemoryNotFound`] if the name is gone.
    ///
    /// ```
    /// use forja::shared_memory::SharedMemory;
    /// let a = SharedMemory::new(1).unwrap();
    /// a.unlink().unwrap();
    /// assert!(SharedMemory::attach(a.name()).is_err());
    /// a.lock().unwrap()[0] = 1; // still mapped here
    /// assert!(a.unlink().is_err());
    /// ```
    pub fn unlink(&self) -> Result<()> {
        self.seg.unlinked.store(true, Ordering::SeqCst);
        match remove_block(self.name()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::SharedMemoryNotFound {
                name: self.name().into(),
                pid: pid(),
            }),
            Err(e) => Err(Error::os("unlinking named shared memory", e)),
        }
    }
}

/// The lock of a [`SharedMemory`], held: derefs to its bytes. Released
/// when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SharedMemoryGuard<'a> {
    shm: &'a SharedMemory,
    me: u32,
    _not_send: NotSend,
}

impl Deref for SharedMemoryGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let seg = &self.shm.seg;
        // SAFETY: we hold the lock and this thread cannot take it again
        // (WouldDeadlock), so no other reference to the bytes is live; they
        // are mapped for as long as `seg` lives.
        unsafe { std::slice::from_raw_parts(seg.ptr.as_ptr().add(HEADER), seg.len - HEADER) }
    }
}

impl DerefMut for SharedMemoryGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let seg = &self.shm.seg;
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { std::slice::from_raw_parts_mut(seg.ptr.as_ptr().add(HEADER), seg.len - HEADER) }
    }
}

impl Drop for SharedMemoryGuard<'_> {
    fn drop(&mut self) {
        self.shm.seg.header().lock.unlock_if_owner(self.me);
    }
}

impl std::fmt::Debug for SharedMemoryGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemoryGuard")
            .field("name", &self.shm.name())
            .field("size", &self.len())
            .finish()
    }
}

/// Unlinks every block this session created and did not unlink, and
/// forgets them; returns how many it unlinked. The kernel calls it when it
/// restarts or shuts down (the session is the kernel there; see the
/// [module docs](self)). Handles still open keep their mappings.
///
/// ```
/// use forja::shared_memory::{SharedMemory, cleanup_session};
/// # // SAFETY: a doctest is its own process, still single-threaded here.
/// # unsafe { std::env::set_var("FORJA_SHM_SESSION", format!("doc{}", std::process::id())) };
/// let a = SharedMemory::new(8).unwrap();
/// std::mem::forget(a); // as a crashed process would
/// assert_eq!(cleanup_session().unwrap(), 1);
/// assert_eq!(cleanup_session().unwrap(), 0);
/// ```
pub fn cleanup_session() -> Result<usize> {
    let prefix = marker_prefix(&session_key());
    let entries =
        std::fs::read_dir(DIR).map_err(|e| Error::os("listing /dev/shm for clean-up", e))?;
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let marker = entry.path();
        let recorded = std::fs::read_to_string(&marker).unwrap_or_default();
        let segment = segment_path(name);
        // Only the block this session made: a later one of the same name
        // (another session's) has another inode.
        let same = std::fs::symlink_metadata(&segment)
            .is_ok_and(|m| m.ino().to_string() == recorded.trim());
        if same && std::fs::remove_file(&segment).is_ok() {
            removed += 1;
        }
        let _ = std::fs::remove_file(&marker);
    }
    Ok(removed)
}
