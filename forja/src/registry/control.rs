//! The registry's controls: the interrupt flag, the cap on live children,
//! the cell (the kernel's execution count) and the once-per-process
//! fork warning's flag. Each is implemented once, on
//! [`Registry`]; the free functions act on this process's registry and
//! [`Remote`](super::Remote)'s methods on another process's.

use super::SLOTS;
use super::mapping::{Registry, cached_header};
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};

impl Registry {
    /// `true` the first time it is called in this process (every copy of
    /// forja shares the registry): whether to show the warning about forking
    /// a process with threads.
    pub(crate) fn first_fork_warning(&self) -> bool {
        self.header.fork_warned.swap(1, Ordering::Relaxed) == 0
    }

    /// Raises (`true`) or lowers the interrupt flag.
    pub(super) fn set_interrupt(&self, raised: bool) {
        self.header
            .interrupt
            .store(u32::from(raised), Ordering::SeqCst);
    }

    /// Whether the interrupt flag is raised.
    pub(super) fn interrupt_raised(&self) -> bool {
        self.header.interrupt.load(Ordering::SeqCst) != 0
    }

    /// The cap on live children.
    pub(super) fn max_children(&self) -> u32 {
        self.header.max_children.load(Ordering::Relaxed)
    }

    /// Changes the cap on live children (clamped to `1..=SLOTS`).
    pub(super) fn set_max_children(&self, limit: u32) {
        self.header
            .max_children
            .store(limit.clamp(1, SLOTS as u32), Ordering::Relaxed);
    }

    /// The cell recorded with children started now.
    pub(super) fn cell(&self) -> u64 {
        self.header.cell.load(Ordering::SeqCst)
    }

    /// Sets the cell recorded with children started from now on.
    pub(super) fn set_cell(&self, cell: u64) {
        self.header.cell.store(cell, Ordering::SeqCst);
    }
}

/// Whether the interrupt flag is raised for this process. Cheap (a few
/// atomic loads once the registry exists; it makes the registry on first use).
///
/// ```
/// assert!(!forja::registry::interrupted());
/// ```
#[inline]
pub fn interrupted() -> bool {
    if let Some(header) = cached_header() {
        return header.interrupt.load(Ordering::Relaxed) != 0;
    }
    Registry::current()
        .map(|r| r.interrupt_raised())
        .unwrap_or(false)
}

/// `Err(Error::Interrupted)` if the interrupt flag is raised.
///
/// ```
/// forja::registry::check_interrupt().unwrap();
/// ```
#[inline]
pub fn check_interrupt() -> Result<()> {
    if interrupted() {
        Err(Error::Interrupted {
            pid: crate::os::pid(),
        })
    } else {
        Ok(())
    }
}

/// Raises the interrupt flag: blocking forja calls in this process return
/// `Error::Interrupted` within [`POLL_INTERVAL`](super::POLL_INTERVAL), and
/// every forja call fails until [`clear_interrupt`]. Only an atomic store, so
/// a signal handler may call it once the registry exists.
///
/// ```
/// use forja::registry;
/// registry::request_interrupt().unwrap();
/// assert!(registry::interrupted());
/// registry::clear_interrupt().unwrap();
/// assert!(!registry::interrupted());
/// ```
pub fn request_interrupt() -> Result<()> {
    Registry::current()?.set_interrupt(true);
    Ok(())
}

/// Lowers the interrupt flag (the kernel does this when a new cell starts).
///
/// ```
/// forja::registry::clear_interrupt().unwrap();
/// ```
pub fn clear_interrupt() -> Result<()> {
    Registry::current()?.set_interrupt(false);
    Ok(())
}

/// The cap on live children of this process.
///
/// ```
/// assert!(forja::registry::max_children().unwrap() <= forja::registry::SLOTS as u32);
/// ```
pub fn max_children() -> Result<u32> {
    Ok(Registry::current()?.max_children())
}

/// Changes the cap on live children (clamped to `1..=SLOTS`).
///
/// ```
/// let old = forja::registry::max_children().unwrap();
/// forja::registry::set_max_children(8).unwrap();
/// assert_eq!(forja::registry::max_children().unwrap(), 8);
/// forja::registry::set_max_children(old).unwrap();
/// ```
pub fn set_max_children(limit: u32) -> Result<()> {
    Registry::current()?.set_max_children(limit);
    Ok(())
}

/// The memfd inode of this process's registry: the timeline keeps it (no
/// address travels, see `forja::link`) so that forked children, which
/// inherit this mapping, find the counter again with [`cell_counter_of`] and
/// read the current cell.
pub(crate) fn cell_counter_inode() -> Option<u64> {
    let (_, fd) = super::ensure().ok()?;
    super::published::fd_inode(fd)
}

/// The cell counter of the registry whose memfd has inode `ino`, if this
/// process maps it (made here or inherited by `fork`) and it is a registry
/// of this layout.
pub(crate) fn cell_counter_of(ino: u64) -> Option<&'static AtomicU64> {
    use super::layout::{Header, MAGIC};
    let addr = super::published::mapping_of_inode(
        super::mapping::MEMFD_KIND,
        ino,
        std::mem::size_of::<Header>(),
    )?;
    // SAFETY: a live shared registry mapping at least a `Header` long
    // (checked above), never unmapped; its magic and version are written
    // before it can be found, and the counter is an atomic.
    let header = unsafe { &*(addr as *const Header) };
    (header.magic == MAGIC && header.version == super::VERSION).then_some(&header.cell)
}

/// The current cell (the kernel sets it to the execution count).
///
/// ```
/// forja::registry::set_cell(7).unwrap();
/// assert_eq!(forja::registry::cell().unwrap(), 7);
/// ```
pub fn cell() -> Result<u64> {
    Ok(Registry::current()?.cell())
}

/// Sets the cell recorded with children started from now on.
///
/// ```
/// forja::registry::set_cell(1).unwrap();
/// ```
pub fn set_cell(cell: u64) -> Result<()> {
    Registry::current()?.set_cell(cell);
    Ok(())
}

/// Old name of [`cell`].
#[deprecated(since = "0.1.0", note = "renamed to `cell` (the kernel's word for it)")]
pub fn generation() -> Result<u64> {
    cell()
}

/// Old name of [`set_cell`].
#[deprecated(
    since = "0.1.0",
    note = "renamed to `set_cell` (the kernel's word for it)"
)]
pub fn set_generation(cell: u64) -> Result<()> {
    set_cell(cell)
}
