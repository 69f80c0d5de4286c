//! Who a process is, as Python's `multiprocessing` tells it:
//! [`ProcessInfo`], [`current_process`], [`parent_process`] and
//! [`active_children`] (re-exported from [`crate::process`]).

use crate::registry::{self, Registry};
use std::fmt;

/// What [`current_process`], [`parent_process`] and [`active_children`]
/// tell about a process.
///
/// ```
/// let me = forja::current_process();
/// assert_eq!(me.pid(), forja::os::pid());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pid: i32,
    name: String,
    daemon: bool,
}

impl ProcessInfo {
    /// Its pid.
    ///
    /// ```
    /// assert!(forja::current_process().pid() > 0);
    /// ```
    pub fn pid(&self) -> i32 {
        self.pid
    }
    /// Its name (`MainProcess` for a program's first process).
    ///
    /// ```
    /// assert_eq!(forja::current_process().name(), "MainProcess");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether it is a daemon.
    ///
    /// ```
    /// assert!(!forja::current_process().is_daemon());
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }
}

impl fmt::Display for ProcessInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Process name='{}' pid={}", self.name, self.pid)?;
        if self.daemon {
            write!(f, " daemon")?;
        }
        write!(f, ">")
    }
}

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
    let pid = crate::os::pid();
    match registry::whoami() {
        Some(me) => ProcessInfo {
            pid,
            name: me.name,
            daemon: me.daemon,
        },
        None => ProcessInfo {
            pid,
            name: "MainProcess".to_owned(),
            daemon: false,
        },
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
    let (pid, name) = registry::whoami()?.parent?;
    Some(ProcessInfo {
        pid,
        name,
        daemon: false,
    })
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
        .map(|c| ProcessInfo {
            pid: c.pid,
            name: c.name,
            daemon: c.daemon,
        })
        .collect()
}
