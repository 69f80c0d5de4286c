//! Who this process is, as far as forja knows: its name, Python-style
//! identity, forja parent and daemon flag, from its registry or (in a forja
//! child that has not made one yet) from what was recorded at the fork.

use super::layout::{Header, SelfPage, shared_len};
use super::mapping::{Registry, SelfInfo, inherited_page};
use crate::identity::ProcessInfo;
use std::sync::atomic::Ordering;

/// Who this process is, as far as forja knows (see [`whoami`]).
pub(crate) struct Me {
    /// This process: pid, name, daemon flag.
    pub process: ProcessInfo,
    /// Started by forja (a `Process` or a pool worker).
    pub is_child: bool,
    /// The forja parent (its daemon flag is not recorded: always false).
    pub parent: Option<ProcessInfo>,
}

impl Registry {
    /// Where a child forked from this process records who it is: the
    /// address of the private page after this registry (see [`SelfPage`]).
    /// Taken in the parent, before the fork.
    pub(crate) fn self_page(&self) -> usize {
        self.header as *const Header as usize + shared_len()
    }

    /// In a freshly forked child, with the address [`self_page`] gave the
    /// parent: records who the child is. Only atomic stores into the
    /// child's own copy of that page: no allocation, no system call.
    ///
    /// [`self_page`]: Registry::self_page
    pub(crate) fn record_child(self_page: usize, pid: i32, info: &SelfInfo<'_>) {
        // SAFETY: the page was mapped (privately, writable) in the parent
        // before the fork, so it is mapped here too; a SelfPage is atomics.
        let page = unsafe { &*(self_page as *const SelfPage) };
        let (parent_pid, parent_name) = info.parent.map_or((0, ""), |p| (p.pid(), p.name()));
        page.parent_pid.store(parent_pid, Ordering::Relaxed);
        page.daemon.store(u32::from(info.daemon), Ordering::Relaxed);
        page.name.store(info.name);
        page.parent_name.store(parent_name);
        page.identity.store(info.identity);
        page.pid.store(pid, Ordering::Release);
    }

    /// Next number for a default name.
    pub(crate) fn next_number(&self) -> u64 {
        self.header.name_counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Python-style identity prefix of this process ("" for the main process).
    pub(crate) fn identity(&self) -> String {
        self.header.identity.load()
    }
}

impl Header {
    /// This process's name ("MainProcess" unless forja started it).
    pub(crate) fn name(&self) -> String {
        self.name.load()
    }
    /// The forja parent, if forja started this process.
    pub(crate) fn parent(&self) -> Option<ProcessInfo> {
        (self.parent_pid != 0).then(|| ProcessInfo::new(self.parent_pid, self.parent_name.load()))
    }
    /// Whether forja started this process.
    pub(crate) fn is_child(&self) -> bool {
        self.is_child != 0
    }
    /// Whether this process is a daemon.
    pub(crate) fn is_daemon(&self) -> bool {
        self.daemon != 0
    }
}

/// Who this process is: from its registry, or (in a forja child that has
/// not made one yet) from what was recorded at the fork; `None` in a process
/// forja did not start and that has no registry.
pub(crate) fn whoami() -> Option<Me> {
    if let Some(reg) = Registry::existing() {
        let h = reg.header();
        return Some(Me {
            process: ProcessInfo::new(crate::os::pid(), h.name()).with_daemon(h.is_daemon()),
            is_child: h.is_child(),
            parent: h.parent(),
        });
    }
    let (_, page) = inherited_page(crate::os::pid())?;
    let parent_pid = page.parent_pid.load(Ordering::Relaxed);
    Some(Me {
        process: ProcessInfo::new(crate::os::pid(), page.name.load())
            .with_daemon(page.daemon.load(Ordering::Relaxed) != 0),
        is_child: parent_pid != 0,
        parent: (parent_pid != 0).then(|| ProcessInfo::new(parent_pid, page.parent_name.load())),
    })
}
