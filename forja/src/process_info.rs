//! Who a process is, as Python's `multiprocessing` tells it:
//! [`ProcessInfo`], [`current_process`], [`parent_process`] and
//! [`active_children`] (re-exported from [`crate::process`]).

pub use crate::identity::ProcessInfo;
use crate::registry::{self, Registry};

/// The process running this code: its pid and name (`MainProcess`, or the
/// name its `Process` was given).
///
/// ```
/// use forja::prelude::*;
/// let p = Process::new(|| assert_eq!(current_process().name(), "hijo")).with_name("hijo");
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(0));
/// ```
pub fn current_process() -> ProcessInfo {
    match registry::whoami() {
        Some(me) => me.process,
        None => ProcessInfo::new(crate::os::pid(), "MainProcess"),
    }
}

/// The process that started this one with forja, or `None` in the main
/// process (as in Python).
///
/// ```
/// use forja::prelude::*;
/// assert!(parent_process().is_none());
/// let me = forja::os::pid();
/// let p = Process::new(move || assert_eq!(parent_process().unwrap().pid(), me));
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(0));
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    registry::whoami()?.parent
}

/// The children of this process that are still running. Like Python, it
/// reaps (collects the exit code of) those that have ended.
///
/// ```
/// use forja::prelude::*;
/// let p = Process::new(|| std::thread::sleep(std::time::Duration::from_millis(300)));
/// p.start().unwrap();
/// assert!(active_children().iter().any(|c| Some(c.pid()) == p.pid()));
/// p.join().unwrap();
/// assert!(active_children().iter().all(|c| Some(c.pid()) != p.pid()));
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    let Some(reg) = Registry::existing() else {
        return Vec::new();
    };
    reg.reap_all();
    reg.children()
        .into_iter()
        .filter(|c| c.exitcode.is_none())
        .map(|c| c.process)
        .collect()
}
