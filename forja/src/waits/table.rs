//! The tree-wide wait table: one `MAP_SHARED` memfd mapping, made by the
//! root process (at the latest by its first fork), inherited by every forked
//! child and found again by its memfd's name, `forja-waits:PID` (see
//! `registry/published.rs`): the processes of the tree, one slot per thread
//! that sleeps in a forja wait, and the primitives' names.

use crate::error::{Error, Result};
use crate::registry::published::{self, TreeMapping};
use crate::shm::AtomicName;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

const MAGIC: u64 = u64::from_le_bytes(*b"FORJAWAI");
/// Layout version; bump it whenever the layout changes.
pub(crate) const VERSION: u32 = 1;
/// The kind of the table's memfd (its name is `forja-waits:PID`).
pub(crate) const MEMFD_KIND: &str = "forja-waits";
/// How many processes of the tree the table follows at once.
pub(crate) const PROCS: usize = 1024;
/// How many threads may be recorded as waiting at once.
pub(crate) const WAITS: usize = 1024;
/// How many primitive names are kept (slot = id % NAMES).
pub(crate) const NAMES: usize = 4096;

/// Set in [`WaitSlot::flags`] for a wait with a deadline.
pub(crate) const TIMED: u32 = 1;
/// Set in [`WaitSlot::flags`] when the wait ends when a holder lets go (a
/// lock or a join); without it, anyone in the tree may end the wait.
pub(crate) const OWNED: u32 = 2;

#[repr(C)]
pub(crate) struct Header {
    magic: u64,
    version: u32,
    pub(crate) creator_pid: i32,
    /// The next primitive id (ids start at 1).
    pub(crate) next_id: AtomicU32,
    /// 0: detection as the environment says; 1 on; 2 off.
    pub(crate) detect: AtomicU32,
    /// Bumped each time a recorded wait ends.
    pub(crate) progress: AtomicU64,
    _reserved: [AtomicU64; 4],
}

/// What one thread waits on. `pid` is 0 when free, -1 while being written.
#[repr(C)]
pub(crate) struct WaitSlot {
    pub(crate) pid: AtomicI32,
    pub(crate) tid: AtomicI32,
    /// Bumped at every claim: a reader checks it did not change under it.
    pub(crate) generation: AtomicU32,
    pub(crate) prim: AtomicU32,
    pub(crate) kind: AtomicU32,
    pub(crate) flags: AtomicU32,
    /// The process holding what is waited for (0: nobody, or no holder).
    pub(crate) holder_pid: AtomicI32,
    /// The thread holding it, when a guard says which (0 otherwise).
    pub(crate) holder_tid: AtomicI32,
    pub(crate) since_ns: AtomicU64,
    _reserved: [AtomicU64; 3],
}

/// A process of the tree. `pid` is 0 when free.
#[repr(C)]
pub(crate) struct ProcSlot {
    pub(crate) pid: AtomicI32,
    _pad: u32,
    pub(crate) name: AtomicName<7>,
}

/// A primitive's name and kind.
#[repr(C)]
pub(crate) struct NameSlot {
    pub(crate) id: AtomicU32,
    pub(crate) kind: AtomicU32,
    pub(crate) name: AtomicName<7>,
}

const PROCS_AT: usize = std::mem::size_of::<Header>();
const WAITS_AT: usize = PROCS_AT + PROCS * std::mem::size_of::<ProcSlot>();
const NAMES_AT: usize = WAITS_AT + WAITS * std::mem::size_of::<WaitSlot>();
const MAP_LEN: usize = NAMES_AT + NAMES * std::mem::size_of::<NameSlot>();

/// Per-copy cache of the mapping's address (0: not looked up yet); a forked
/// child inherits the cache and the mapping at the same address.
static MAPPING: TreeMapping = TreeMapping::new();

/// The wait table of this process's tree.
#[derive(Clone, Copy)]
pub(crate) struct Table {
    pub(crate) header: &'static Header,
    pub(crate) procs: &'static [ProcSlot],
    pub(crate) waits: &'static [WaitSlot],
    pub(crate) names: &'static [NameSlot],
}

fn from_addr(addr: usize) -> Table {
    // SAFETY: addr is a live mapping of MAP_LEN bytes (checked by the
    // callers), never unmapped; everything in it is atomic or written once
    // before it is published.
    unsafe {
        Table {
            header: &*(addr as *const Header),
            procs: std::slice::from_raw_parts((addr + PROCS_AT) as *const ProcSlot, PROCS),
            waits: std::slice::from_raw_parts((addr + WAITS_AT) as *const WaitSlot, WAITS),
            names: std::slice::from_raw_parts((addr + NAMES_AT) as *const NameSlot, NAMES),
        }
    }
}

fn table_err(message: impl Into<String>) -> Error {
    Error::Registry {
        pid: crate::os::pid(),
        message: message.into(),
    }
}

/// The table, if this process has one (inherited or its own).
#[inline]
pub(crate) fn existing() -> Option<Table> {
    MAPPING.existing(find_published).map(from_addr)
}

/// The table, made now if there is none (this process becomes its root).
pub(crate) fn current() -> Result<Table> {
    MAPPING.current(find_published, create).map(from_addr)
}

/// The table this process holds an fd of: its own, else the newest
/// inherited one.
fn find_published() -> Result<Option<usize>> {
    let Some(p) = published::newest(MEMFD_KIND) else {
        return Ok(None);
    };
    if p.len < MAP_LEN {
        return Err(table_err(format!(
            "the memfd named {MEMFD_KIND}:{} is mapped shorter than a forja wait table",
            p.pid
        )));
    }
    let header = from_addr(p.addr).header;
    if header.magic != MAGIC || header.version != VERSION {
        return Err(table_err(format!(
            "the memfd named {MEMFD_KIND}:{} is not a wait table of this forja version (layout \
             {VERSION}); use one forja version in the whole program or notebook",
            p.pid
        )));
    }
    Ok(Some(p.addr))
}

fn create() -> Result<usize> {
    let me = crate::os::pid();
    let (_fd, addr) = crate::shm::memfd_mapping(
        &published::memfd_name(MEMFD_KIND, me),
        MAP_LEN,
        &crate::shm::MemfdSteps {
            make: "making the wait table (memfd_create)",
            size: "sizing the wait table",
            map: "mapping the wait table",
        },
    )?;
    // SAFETY: a fresh zeroed mapping nothing else sees yet.
    unsafe {
        let h = addr as *mut Header;
        (*h).magic = MAGIC;
        (*h).version = VERSION;
        (*h).creator_pid = me;
        (*h).next_id = AtomicU32::new(1);
    }
    let t = from_addr(addr);
    t.add_process(me, "MainProcess");
    Ok(addr)
}

/// The wait table of process `pid`'s tree, mapped read-only from outside
/// (the kernel reads its runner's through `/proc/PID/fd`); mapped once per
/// table and kept.
pub(crate) fn remote(pid: i32) -> Option<Table> {
    static MAPPED: std::sync::Mutex<Vec<(i32, u64, usize)>> = std::sync::Mutex::new(Vec::new());
    let prefix = format!("/memfd:{MEMFD_KIND}:");
    let mut found = None;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let link = link.to_string_lossy();
        if let Some(rest) = link.strip_prefix(&prefix) {
            let owner: i32 = rest.split(' ').next()?.parse().ok()?;
            // Its own table first, else the one it inherited.
            if found.is_none() || owner == pid {
                found = Some(entry.path());
            }
        }
    }
    let path = found?;
    let file = std::fs::File::open(&path).ok()?;
    let meta = file.metadata().ok()?;
    use std::os::unix::fs::MetadataExt;
    let ino = meta.ino();
    let mut mapped = MAPPED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, _, addr)) = mapped.iter().find(|m| m.0 == pid && m.1 == ino) {
        return Some(from_addr(addr));
    }
    if meta.len() < MAP_LEN as u64 {
        return None;
    }
    use nix::sys::mman::{MapFlags, ProtFlags};
    let len = std::num::NonZeroUsize::new(MAP_LEN)?;
    // SAFETY: a fresh read-only mapping (no address asked for, so nothing is
    // replaced) of MAP_LEN bytes of a file at least that long; it outlives
    // the fd and is never unmapped.
    let p = unsafe {
        nix::sys::mman::mmap(
            None,
            len,
            ProtFlags::PROT_READ,
            MapFlags::MAP_SHARED,
            &file,
            0,
        )
    }
    .ok()?;
    let addr = p.as_ptr() as usize;
    let t = from_addr(addr);
    if t.header.magic != MAGIC || t.header.version != VERSION {
        return None;
    }
    mapped.push((pid, ino, addr));
    Some(t)
}

impl Table {
    /// Records `pid` as a process of the tree (a forja child just forked,
    /// or the root); reuses the slot of a process that ended.
    pub(crate) fn add_process(&self, pid: i32, name: &str) {
        let start = (pid as usize) % PROCS;
        for i in 0..PROCS {
            let slot = &self.procs[(start + i) % PROCS];
            let cur = slot.pid.load(Ordering::Relaxed);
            if cur == pid {
                slot.name.store(name);
                return;
            }
            if (cur == 0 || crate::os::is_dead(cur as u32))
                && slot
                    .pid
                    .compare_exchange(cur, -1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                slot.name.store(name);
                slot.pid.store(pid, Ordering::Release);
                return;
            }
        }
    }

    /// The name recorded for process `pid` (empty if unknown).
    pub(crate) fn process_name(&self, pid: i32) -> String {
        let start = (pid as usize) % PROCS;
        for i in 0..PROCS {
            let slot = &self.procs[(start + i) % PROCS];
            let cur = slot.pid.load(Ordering::Acquire);
            if cur == pid {
                return slot.name.load();
            }
            if cur == 0 {
                break;
            }
        }
        String::new()
    }

    /// The processes of the tree that are alive (not ended, not zombies).
    pub(crate) fn live_processes(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .procs
            .iter()
            .map(|p| p.pid.load(Ordering::Acquire))
            .filter(|&p| p > 0 && !crate::os::is_dead(p as u32))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Claims a free wait slot for the calling thread (`None` if all are
    /// taken by live waiters).
    pub(crate) fn claim(&self, tid: u32) -> Option<&'static WaitSlot> {
        let start = (tid as usize).wrapping_mul(7) % WAITS;
        for round in 0..2 {
            for i in 0..WAITS {
                let slot: &'static WaitSlot = &self.waits[(start + i) % WAITS];
                let cur = slot.pid.load(Ordering::Relaxed);
                // A dead process's slot is taken back on the second round.
                let free = cur == 0 || (round == 1 && cur > 0 && crate::os::is_dead(cur as u32));
                if free
                    && slot
                        .pid
                        .compare_exchange(cur, -1, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    slot.generation.fetch_add(1, Ordering::Relaxed);
                    return Some(slot);
                }
            }
        }
        None
    }

    /// The name slot of primitive `id`.
    pub(crate) fn name_slot(&self, id: u32) -> &'static NameSlot {
        &self.names[id as usize % NAMES]
    }
}

/// CLOCK_MONOTONIC in ns (the same clock in every process).
#[inline]
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_have_a_fixed_size() {
        assert_eq!(std::mem::size_of::<WaitSlot>(), 64);
        assert_eq!(std::mem::size_of::<NameSlot>(), 64);
        assert_eq!(std::mem::size_of::<ProcSlot>(), 64);
        const { assert!(MAP_LEN < 1 << 20) };
    }
}
