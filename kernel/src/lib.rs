//! forja-kernel: a Jupyter kernel for Rust on evcxr, made for teaching
//! operating-systems concurrency with the `forja` crate.
//!
//! Layout, after xeus: [`server`] owns the sockets, signing and threads;
//! [`session`] is the interpreter (one method per request); [`wire`] decodes
//! untrusted messages; [`runner`] runs inside evcxr's runner process and owns
//! its output; [`side_channel`] and [`output`] carry output and displays to
//! iopub; [`history`], [`comms`], [`is_complete`], [`kernel_info`] and
//! [`install`] answer one request each.

pub mod build_cache;
pub mod comms;
pub mod compile_errors;
pub mod history;
pub mod install;
pub mod interrupt;
pub mod is_complete;
pub mod kernel_info;
pub mod logo;
pub mod output;
pub mod paths;
pub mod prebuild;
pub mod procs;
pub mod reaper;
pub mod runner;
pub mod server;
pub mod session;
pub mod side_channel;
pub mod text;
pub mod wire;

/// rust-analyzer (inside evcxr) allocates heavily while it parses the
/// standard library and forja for the first cells; glibc's malloc took about
/// a fifth of that time. mimalloc is what rust-analyzer itself ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
