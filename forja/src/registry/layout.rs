//! The registry's memory layout: a `#[repr(C)]` [`Header`], [`SLOTS`] child
//! slots after it, and one page after that shared part that a forked child
//! maps privately and writes who it is into ([`SelfPage`]).

use super::{MAX_TRACKED_FD, SLOTS};
use crate::shm::AtomicName;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};

pub(super) const MAGIC: u64 = crate::link::REGISTRY_MAGIC;

/// A name in the registry: at most 64 bytes.
pub(super) type Name = AtomicName<8>;

/// Slot states.
pub(super) const FREE: u32 = 0;
pub(super) const RESERVED: u32 = 1;
pub(super) const RUNNING: u32 = 2;
pub(super) const REAPING: u32 = 3;
pub(super) const EXITED: u32 = 4;

/// Slot flags.
pub(super) const FLAG_DAEMON: u32 = 1;
pub(super) const FLAG_HANDLE_DROPPED: u32 = 2;
pub(super) const FLAG_POOL_WORKER: u32 = 4;

/// The start of the registry mapping (layout [`VERSION`](super::VERSION) 2).
#[repr(C)]
pub struct Header {
    pub(super) magic: u64,
    pub(super) version: u32,
    pub(super) slot_count: u32,
    pub(super) slot_offset: u32,
    pub(super) slot_size: u32,
    pub(super) owner_pid: i32,
    /// Pid of the forja parent, 0 in a process not started by forja.
    pub(super) parent_pid: i32,
    /// 1 when this process was started by forja (a `Process` or pool worker).
    pub(super) is_child: u32,
    pub(super) daemon: u32,
    /// Raised (non-zero) to make blocking forja calls return `Interrupted`.
    pub(super) interrupt: AtomicU32,
    pub(super) max_children: AtomicU32,
    /// Children reserved or running and not yet reaped.
    pub(super) live: AtomicU32,
    _pad: u32,
    /// Counter for default names (`Process-1`, `Process-2`...).
    pub(super) name_counter: AtomicU64,
    /// Set by the kernel: the cell now running; recorded with each child.
    pub(super) cell: AtomicU64,
    /// When this registry was made (ns since the Unix epoch).
    pub(super) start_ns: u64,
    pub(super) name: Name,
    pub(super) parent_name: Name,
    /// Python-style identity: "" for the main process, "1:2" for Process-1:2.
    pub(super) identity: Name,
    /// Bitmap of the fds (below [`MAX_TRACKED_FD`]) that are forja pipe
    /// ends open in this process: a child closes those it did not take.
    pub(super) ends: [AtomicU64; MAX_TRACKED_FD / 64],
    /// Non-zero once forja warned that this process forked while it had
    /// threads it did not start (the warning is shown once per process).
    pub(super) fork_warned: AtomicU64,
    /// Room for later fields (timeline...) without moving the slots.
    reserved: [AtomicU64; 15],
}

/// One tracked child.
#[repr(C)]
pub(super) struct Slot {
    pub(super) pid: AtomicI32,
    pub(super) state: AtomicU32,
    /// Python-style exit code once `EXITED` (negative signal number).
    pub(super) status: AtomicI32,
    pub(super) flags: AtomicU32,
    pub(super) cell: AtomicU64,
    pub(super) start_ns: AtomicU64,
    pub(super) end_ns: AtomicU64,
    pub(super) name: Name,
}

/// Bytes of the header and the slots.
pub(super) const MAP_LEN: usize =
    std::mem::size_of::<Header>() + SLOTS * std::mem::size_of::<Slot>();

/// Who a forja child is, written by the child right after the fork (see the
/// module docs). It lives in the page after the shared part of the parent's
/// registry memfd, mapped privately (copy-on-write), so what a child writes
/// there only that child sees.
#[repr(C)]
pub(super) struct SelfPage {
    /// The pid this page describes (0: nobody; a stale pid after a fork
    /// that forja did not make).
    pub(super) pid: AtomicI32,
    pub(super) parent_pid: AtomicI32,
    pub(super) daemon: AtomicU32,
    _pad: u32,
    pub(super) name: Name,
    pub(super) parent_name: Name,
    pub(super) identity: Name,
}

pub(super) fn page_size() -> usize {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => 4096,
    }
}

/// Bytes of the shared part of the memfd (whole pages); the private
/// [`SelfPage`] follows.
pub(super) fn shared_len() -> usize {
    MAP_LEN.div_ceil(page_size()) * page_size()
}

/// Whether a header's layout fields match this build's slots (the magic
/// number and the version are checked by the callers, which word their
/// errors differently).
pub(super) fn slots_match(h: &Header) -> bool {
    h.slot_count as usize == SLOTS && h.slot_size as usize == std::mem::size_of::<Slot>()
}

/// A reference to the header and the slots of the mapping at `addr`.
///
/// # Safety
///
/// `addr` must be a live mapping of at least [`MAP_LEN`] bytes laid out as a
/// [`Header`] followed by [`SLOTS`] slots, that stays mapped for `'a`.
pub(super) unsafe fn header_and_slots<'a>(addr: usize) -> (&'a Header, &'a [Slot]) {
    // SAFETY: as the caller promised; all fields written after creation are
    // atomics.
    unsafe {
        let header = &*(addr as *const Header);
        let slots = std::slice::from_raw_parts(
            (addr + std::mem::size_of::<Header>()) as *const Slot,
            SLOTS,
        );
        (header, slots)
    }
}

/// The time now in ns since the Unix epoch (0 if the clock is before it).
pub(super) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_place_in_the_layout() {
        assert_eq!(std::mem::size_of::<Name>(), 64);
    }
}
