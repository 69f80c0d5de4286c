//! The process-wide registry: this process's children, its name, the cap on
//! live children and the interrupt flag.
//!
//! Inside the forja kernel every cell is a separate library with its own copy
//! of forja's statics, so this state cannot live in a `static`. It lives in
//! one `MAP_SHARED` mapping per process (a `memfd` on Linux), made on first
//! use and published by its memfd's name, `forja-registry:PID`, which
//! `/proc/self/fd` and `/proc/self/maps` show to every copy of forja in the
//! process, so each finds the same mapping (never through the environment:
//! `setenv` in a process with threads is unsafe); the layout is `#[repr(C)]`,
//! starts with a magic number and a [`VERSION`], so differing copies refuse
//! to share it rather than misread it.
//!
//! **One registry per process, holding that process's own children.** A
//! forked child inherits the parent's memfd, sees that the pid in its name is
//! not its own and makes a fresh registry on first use (its first pipe, child,
//! blocking wait...). Until then nothing is made: right after the fork forja
//! only writes who the child is (name, identity, parent, daemon) into a
//! private, copy-on-write page that follows the parent's registry in the
//! same `memfd`, which every copy of forja in the child finds through the
//! inherited fd and mapping; the child's registry starts from it. So a child that
//! never uses forja costs no more than a fork.
//!
//! Another process (the kernel) can map the same memory through
//! `/proc/PID/fd/FD` with [`Remote::open`] to list children or raise the
//! interrupt flag: blocking forja calls wake at least every [`POLL_INTERVAL`]
//! to look at it, and once it is raised every forja call that could block or
//! start work fails at once with
//! [`Error::Interrupted`](crate::Error::Interrupted).
//!
//! **The cap on live children is per process, not per tree.** Each process
//! has its own registry and so its own cap ([`max_children`], default
//! [`DEFAULT_MAX_CHILDREN`]): a child that starts children of its own counts
//! them against *its* cap, so a tree of depth `d` can hold up to `cap^d`
//! processes. Under the kernel every process of the tree dies with its parent
//! (a death signal), so the kernel can still stop a whole tree by stopping the
//! runner's direct children.
//!
//! ```
//! use forja::registry;
//! assert!(!registry::interrupted());
//! assert!(registry::max_children().unwrap() >= 1);
//! ```
//!
//! # Files
//!
//! * `layout.rs`: the `#[repr(C)]` layout of the mapping (header, slots, the
//!   private page a forked child writes into);
//! * `published.rs`: finding a memfd mapping again by its memfd's name (the timeline uses it too);
//! * `mapping.rs`: finding or making this process's registry;
//! * `identity.rs`: who this process is (name, identity, parent, daemon);
//! * `children.rs`: the child slots (reserve, reap, list);
//! * `ends.rs`: the bitmap of forja pipe ends open in this process;
//! * `control.rs`: the interrupt flag, the cap on live children and the
//!   cell;
//! * `remote.rs`: another process's registry, mapped into this one.

mod children;
mod control;
mod ends;
mod identity;
mod layout;
mod mapping;
pub(crate) mod published;
mod remote;

use std::time::Duration;

pub(crate) use children::STATUS_UNKNOWN;
pub use children::{ChildRecord, ChildState, children};
pub use control::{
    cell, check_interrupt, clear_interrupt, interrupted, max_children, request_interrupt, set_cell,
    set_max_children,
};
pub(crate) use control::{cell_counter_inode, cell_counter_of};
#[allow(deprecated)]
pub use control::{generation, set_generation};
pub(crate) use identity::whoami;
pub use layout::Header;
pub use mapping::ensure;
pub(crate) use mapping::{Registry, SelfInfo};
pub use remote::Remote;

/// The environment variable that named this process's registry, before
/// forja stopped writing the environment (it is never set now: the
/// registry is found by its memfd's name, `forja-registry:PID`).
#[deprecated(note = "forja no longer publishes its registry in the environment")]
pub const ENV: &str = "FORJA_REGISTRY";
/// The environment variable read for the cap on live children.
pub const MAX_CHILDREN_ENV: &str = crate::link::env::MAX_CHILDREN;
/// Default cap on live (unreaped) children per process.
pub const DEFAULT_MAX_CHILDREN: u32 = 256;
/// Layout version; bump it whenever [`Header`], the slots or the memfd's
/// layout change (2: a private page after the shared part, where a forked
/// child records who it is).
pub const VERSION: u32 = crate::link::REGISTRY_VERSION;
/// How many children the registry can track at once (the highest cap).
pub const SLOTS: usize = crate::link::REGISTRY_SLOTS;
/// Blocking waits wake at least this often to check the interrupt flag.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Pipe ends on fds at or above this are not tracked (so a child keeps its
/// inherited copies of them, as in Python).
pub const MAX_TRACKED_FD: usize = 4096;
