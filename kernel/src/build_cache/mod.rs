//! The prebuilt forja build every new kernel starts from, so a session's
//! first forja cell compiles nothing of forja or its dependencies: how it is
//! laid out, vendored, pruned and checked (by `forja-kernel prebuild`), how
//! a session uses it in place, and how a session starts with forja in it.
//!
//! Cargo rebuilt forja and all its dependencies in every kernel (12–25 s)
//! for three reasons, each fixed in one submodule: new modification times
//! ([`copy`]), a pruned lock file ([`session_start`]) and per-user source
//! paths ([`vendor`](mod@vendor)). [`std_registry`] lets rust-analyzer work offline.
//!
//! - [`layout`]: the prebuilt dir's layout and the [`Stamp`] of what built it.
//! - [`copy`]: copies that keep mtimes; permissions for every user.
//! - [`vendor`](mod@vendor): the shared copies of forja's dependencies and their cargo config.
//! - [`std_registry`]: the standard library's registry entries, for offline analysis.
//! - [`prune`]: removing what no session can use from a prebuilt target dir.
//! - [`verify`](mod@verify): asking cargo whether a new session would rebuild anything.
//! - [`link`]: a session's target dir as links to the shared prebuilt build.
//! - [`seed`](mod@seed): laying the prebuilt build out in a new session.
//! - [`session_start`]: starting evcxr with forja, the prelude, the warm-up.
//!
//! The toolchain lookups live in [`crate::toolchain`] (re-exported here).

pub mod copy;
pub mod layout;
pub mod link;
pub mod prune;
pub mod seed;
pub mod session_start;
pub mod std_registry;
#[cfg(test)]
mod testing;
pub mod vendor;
pub mod verify;

pub use copy::{copy_tree, make_readable_by_all};
pub use layout::{CARGO_CONFIG, CRATE, REGISTRY_SEED, STAMP, Stamp, vendor_dir};
pub use link::{LINK_FROM, Linked, link_tree};
pub use prune::{prune_session_outputs, prune_stale_units, unit_hash};
pub use seed::{Seed, seed, start_seed};
pub use session_start::{FLUSHER_START, FORJA_PRELUDE, start_with_forja, warm_up};
pub use std_registry::{seed_registry, snapshot_std_registry};
pub use vendor::{Package, registry_packages, vendor};
pub use verify::{Freshness, verify};

pub use crate::toolchain::{cargo_home, host_triple, rustc_version, sysroot_lock, tool};
