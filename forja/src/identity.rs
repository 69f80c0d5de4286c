//! Who a process is: [`ProcessInfo`], the one type that says it (pid, forja
//! name, daemon flag), for `current_process`, a registry's child records,
//! what a child records at its fork, and the kernel's labels of a child's
//! output and panics (`forja::link`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who a process is: what [`current_process`](crate::current_process),
/// [`parent_process`](crate::parent_process) and
/// [`active_children`](crate::active_children) tell, what a
/// [`ChildRecord`](crate::registry::ChildRecord) holds, and the origin of
/// a child's output or panic on the kernel's side channel
/// ([`link::Message`](crate::link::Message); there its name is the field
/// `process`, and `daemon` is left out when false).
///
/// ```
/// let me = forja::current_process();
/// assert_eq!(me.pid(), forja::os::pid());
/// let w = forja::ProcessInfo::new(7, "Worker-1").with_daemon(true);
/// assert_eq!(w.to_string(), "<Process name='Worker-1' pid=7 daemon>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessInfo {
    pid: i32,
    #[serde(rename = "process")]
    name: String,
    #[serde(default, skip_serializing_if = "is_false")]
    daemon: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ProcessInfo {
    /// Process `pid`, named `name`, not a daemon.
    ///
    /// ```
    /// let p = forja::ProcessInfo::new(12, "Process-1");
    /// assert_eq!((p.pid(), p.name(), p.is_daemon()), (12, "Process-1", false));
    /// ```
    pub fn new(pid: i32, name: impl Into<String>) -> Self {
        ProcessInfo {
            pid,
            name: name.into(),
            daemon: false,
        }
    }
    /// The same, with its daemon flag set to `daemon`.
    ///
    /// ```
    /// assert!(forja::ProcessInfo::new(1, "d").with_daemon(true).is_daemon());
    /// ```
    pub fn with_daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_keeps_the_side_channel_field_names() {
        let p = ProcessInfo::new(7, "Process-1");
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"pid":7,"process":"Process-1"}"#
        );
        let d = p.clone().with_daemon(true);
        let back: ProcessInfo = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<ProcessInfo>(r#"{"pid":7,"name":"x"}"#).is_err());
    }
}
