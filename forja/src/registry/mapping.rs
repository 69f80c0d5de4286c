//! Finding or making this process's registry: the [`Registry`] handle, the
//! per-copy cache of its address, making a fresh one (from what the forking
//! parent recorded, in a forja child) and publishing it by its memfd's name
//! ([`MEMFD_KIND`], see `published.rs`).

use super::layout::{
    Header, MAGIC, SelfPage, Slot, header_and_slots, now_ns, page_size, shared_len, slots_match,
};
use super::published::{self, Published};
use super::{DEFAULT_MAX_CHILDREN, MAX_CHILDREN_ENV, SLOTS, VERSION};
use crate::error::{Error, Result};
use crate::identity::ProcessInfo;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// This process's registry (the mapping is never unmapped).
pub(crate) struct Registry {
    pub(super) header: &'static Header,
    pub(super) slots: &'static [Slot],
}

// Per-copy cache of the lookup: (pid, address).
static CACHED_PID: AtomicI32 = AtomicI32::new(0);
static CACHED_ADDR: AtomicUsize = AtomicUsize::new(0);
static CREATE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The kind of the registry's memfd (its name is `forja-registry:PID`).
pub(super) const MEMFD_KIND: &str = crate::link::REGISTRY_MEMFD_KIND;

pub(super) fn reg_err(message: impl Into<String>) -> Error {
    Error::Registry {
        pid: crate::os::pid(),
        message: message.into(),
    }
}

/// What a freshly made registry says about its own process (borrowed: a
/// freshly forked child records it without allocating). Its pid is the
/// process's own; its parent is the one [`ProcessInfo`] type.
pub(crate) struct SelfInfo<'a> {
    pub name: &'a str,
    pub identity: &'a str,
    pub daemon: bool,
    /// The forja parent (`None`: forja did not start this process).
    pub parent: Option<&'a ProcessInfo>,
}

/// This process's registry header if this copy of forja has already found
/// it: a few atomic loads, for the hot path of the interrupt check.
#[inline]
pub(super) fn cached_header() -> Option<&'static Header> {
    if CACHED_PID.load(Ordering::Acquire) != crate::os::pid() {
        return None;
    }
    // SAFETY: the cached address is this process's registry mapping, never
    // unmapped.
    Some(unsafe { &*(CACHED_ADDR.load(Ordering::Acquire) as *const Header) })
}

impl Registry {
    /// The registry mapped at `addr`.
    pub(super) fn from_addr(addr: usize) -> Registry {
        // SAFETY: addr is a live mapping of MAP_LEN bytes laid out as a
        // Header followed by SLOTS slots (checked by the callers), and the
        // mapping is never unmapped (a `Remote` unmaps only when dropped,
        // after its methods' borrows end), so 'static is sound.
        let (header, slots) = unsafe { header_and_slots(addr) };
        Registry { header, slots }
    }

    /// The registry of the calling process, made on first use (from what
    /// the forking parent recorded, in a forja child).
    pub(crate) fn current() -> Result<Registry> {
        let pid = crate::os::pid();
        if CACHED_PID.load(Ordering::Acquire) == pid {
            return Ok(Self::from_addr(CACHED_ADDR.load(Ordering::Acquire)));
        }
        let _guard = CREATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addr) = find_published(pid)? {
            cache(pid, addr);
            return Ok(Self::from_addr(addr));
        }
        let inherited = inherited_page(pid);
        let recorded = inherited.map(|(_, page)| {
            let parent_pid = page.parent_pid.load(Ordering::Relaxed);
            (
                page.name.load(),
                page.identity.load(),
                (parent_pid != 0).then(|| ProcessInfo::new(parent_pid, page.parent_name.load())),
                page.daemon.load(Ordering::Relaxed) != 0,
            )
        });
        let info = match &recorded {
            Some((name, identity, parent, daemon)) => SelfInfo {
                name,
                identity,
                daemon: *daemon,
                parent: parent.as_ref(),
            },
            None => SelfInfo {
                name: "MainProcess",
                identity: "",
                daemon: false,
                parent: None,
            },
        };
        let addr = create(pid, &info)?;
        if let Some((fd, _)) = inherited {
            // The parent's registry fd, inherited: a forja child does not
            // keep it (its mapping stays, harmless).
            // SAFETY: an fd this process inherited and owns; nothing here
            // uses it any more (the mapping stays); dropping it closes it.
            drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        }
        Ok(Self::from_addr(addr))
    }

    /// The registry of the calling process if it already exists (never makes one).
    pub(crate) fn existing() -> Option<Registry> {
        let pid = crate::os::pid();
        if CACHED_PID.load(Ordering::Acquire) == pid {
            return Some(Self::from_addr(CACHED_ADDR.load(Ordering::Acquire)));
        }
        let addr = find_published(pid).ok().flatten()?;
        cache(pid, addr);
        Some(Self::from_addr(addr))
    }

    pub(crate) fn header(&self) -> &'static Header {
        self.header
    }
}

fn cache(pid: i32, addr: usize) {
    CACHED_ADDR.store(addr, Ordering::Release);
    CACHED_PID.store(pid, Ordering::Release);
}

/// In a forja child without a registry of its own yet: the inherited
/// registry's fd and this child's [`SelfPage`] in it, if the parent recorded
/// one for `pid`.
pub(super) fn inherited_page(pid: i32) -> Option<(i32, &'static SelfPage)> {
    published::find_all(MEMFD_KIND)
        .into_iter()
        .filter(|p| p.pid != pid && p.private_tail && p.len >= shared_len())
        .find_map(|p| {
            // The fd is still the inherited memfd (close-on-exec: no exec
            // since), so the parent's mapping, and the private page after
            // it, are here.
            let header = Registry::from_addr(p.addr).header;
            if header.magic != MAGIC || header.version != VERSION {
                return None;
            }
            // SAFETY: see above; the page holds only atomics.
            let page = unsafe { &*((p.addr + shared_len()) as *const SelfPage) };
            (page.pid.load(Ordering::Acquire) == pid).then_some((p.fd, page))
        })
}

/// This process's own registry mapping as `/proc/self` shows it (see
/// `published.rs`): made by `pid`, followed by its private page (a
/// [`Remote`](super::Remote) of our own registry has none).
fn own_published(pid: i32) -> Option<Published> {
    published::find_all(MEMFD_KIND)
        .into_iter()
        .find(|p| p.pid == pid && p.private_tail)
}

/// The registry published for `pid`, checked so that a stale mapping (one
/// whose fd is gone) is never dereferenced.
fn find_published(pid: i32) -> Result<Option<usize>> {
    let Some(p) = own_published(pid) else {
        return Ok(None);
    };
    // The fd is the same memfd that is mapped at addr (an exec would have
    // closed it: it is close-on-exec), at least a header long.
    if p.len < std::mem::size_of::<Header>() {
        return Err(reg_err(
            "its memfd is mapped shorter than a registry header",
        ));
    }
    if magic_of(p.addr) != MAGIC {
        return Err(reg_err(format!(
            "the memfd named {MEMFD_KIND}:{pid} holds memory that is not a registry"
        )));
    }
    // SAFETY: a live shared mapping at least a `Header` long (checked
    // above), never unmapped, whose fields were written before its magic
    // (read with Acquire).
    let header = unsafe { &*(p.addr as *const Header) };
    if header.version != VERSION || !slots_match(header) || p.len < shared_len() {
        return Err(reg_err(format!(
            "it was made by a different version of forja (layout {} here, {} there); use one \
             forja version in the whole program or notebook",
            VERSION, header.version
        )));
    }
    Ok(Some(p.addr))
}

/// The magic number of the registry at `addr` (a live mapping at least a
/// `Header` long), read with Acquire: a registry that another copy of forja
/// is still making (it is found by its memfd's name as soon as the memfd
/// exists) shows 0 for a moment; this waits for it (at most a second).
fn magic_of(addr: usize) -> u64 {
    // SAFETY: `magic` is the header's first field, an aligned u64 that is
    // only written atomically once the memfd is mapped.
    let magic = unsafe { AtomicU64::from_ptr(addr as *mut u64) };
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let m = magic.load(Ordering::Acquire);
        if m != 0 || std::time::Instant::now() > give_up {
            return m;
        }
        std::thread::yield_now();
    }
}

/// Makes and publishes a fresh registry for `pid`.
fn create(pid: i32, info: &SelfInfo<'_>) -> Result<usize> {
    // The shared part, then one page mapped privately (see SelfPage).
    let shared = shared_len();
    let total = shared + page_size();
    let (fd, addr) = crate::shm::memfd_mapping(
        &published::memfd_name(MEMFD_KIND, pid),
        total,
        &crate::shm::MemfdSteps {
            make: "making the process registry (memfd_create)",
            size: "sizing the process registry",
            map: "mapping the process registry",
        },
    )?;
    {
        use nix::sys::mman::{MapFlags, ProtFlags};
        // SAFETY: the fd was just made by memfd_mapping and is ours.
        let memfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let page = std::num::NonZeroUsize::new(total - shared).expect("a page is not empty");
        // SAFETY: `addr` maps `total` bytes of the fd and nothing refers to
        // them yet; MAP_FIXED replaces exactly its last page.
        let q = unsafe {
            nix::sys::mman::mmap(
                std::num::NonZeroUsize::new(addr + shared),
                page,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_FIXED,
                memfd,
                shared as libc::off_t,
            )
        };
        if let Err(e) = q {
            if let Some(start) = std::ptr::NonNull::new(addr as *mut std::ffi::c_void) {
                // SAFETY: our own fresh mapping, never handed out.
                let _ = unsafe { nix::sys::mman::munmap(start, total) };
            }
            // SAFETY: our own fd, not published (its mapping is gone).
            drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            return Err(Error::os("mapping the process registry", e));
        }
    }
    let max = std::env::var(MAX_CHILDREN_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(DEFAULT_MAX_CHILDREN)
        .clamp(1, SLOTS as u32);
    // SAFETY: fresh zeroed mapping of MAP_LEN bytes that nothing else uses
    // yet: another copy of forja may find it by its name already, but
    // reads nothing else until `magic` is set, last, with Release.
    unsafe {
        let h = addr as *mut Header;
        (*h).version = VERSION;
        (*h).slot_count = SLOTS as u32;
        (*h).slot_offset = std::mem::size_of::<Header>() as u32;
        (*h).slot_size = std::mem::size_of::<Slot>() as u32;
        (*h).owner_pid = pid;
        (*h).parent_pid = info.parent.map_or(0, ProcessInfo::pid);
        (*h).is_child = u32::from(info.parent.is_some());
        (*h).daemon = u32::from(info.daemon);
        (*h).start_ns = now_ns();
    }
    let reg = Registry::from_addr(addr);
    reg.header.max_children.store(max, Ordering::Relaxed);
    reg.header.name.store(info.name);
    reg.header
        .parent_name
        .store(info.parent.map_or("", ProcessInfo::name));
    reg.header.identity.store(info.identity);
    // SAFETY: `magic` is an aligned u64 in the mapping; from here on it is
    // only accessed atomically (see `magic_of`).
    unsafe { AtomicU64::from_ptr(addr as *mut u64) }.store(MAGIC, Ordering::Release);
    // Published from here on: its memfd's name says whose it is.
    cache(pid, addr);
    Ok(addr)
}

/// Makes this process's registry now (if it does not exist yet) and returns
/// `(pid, fd)`: this process's pid and the fd of its registry's `memfd`, for
/// another process to attach with [`Remote::open`](super::Remote::open).
///
/// The kernel's runner calls it at start-up, before any cell runs, so every
/// cell's copy of forja finds the same registry and the kernel can attach.
/// The fd is close-on-exec (a program started with `exec` does not get it),
/// and a child forked by forja closes it right after making its own registry.
///
/// ```
/// let (pid, fd) = forja::registry::ensure().unwrap();
/// assert_eq!(pid, std::process::id() as i32);
/// assert_eq!(forja::registry::ensure().unwrap(), (pid, fd)); // made once
/// ```
pub fn ensure() -> Result<(i32, i32)> {
    Registry::current()?;
    let pid = crate::os::pid();
    match own_published(pid) {
        Some(p) => Ok((p.pid, p.fd)),
        None => Err(reg_err(format!(
            "it was made but no fd of this process is its memfd ({MEMFD_KIND}:{pid}; was it \
             closed?)"
        ))),
    }
}
