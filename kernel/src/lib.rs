//! forja-kernel: a Jupyter kernel for Rust on evcxr, made for teaching
//! operating-systems concurrency with the `forja` crate.
//!
//! Layout, after xeus: the server owns the sockets, the session is the
//! interpreter, and everything the session says reaches iopub through one
//! router. One job per module:
//!
//! - [`build_cache`]: the prebuilt forja build a new session starts from, and the session start.
//! - [`builds`]: the recent builds and cells, to place a line of any build (a child may run an older one).
//! - [`cell_lines`]: where a line of the compiled `src/lib.rs` is in the student's cells.
//! - [`comms`]: answers `comm_*` requests (no comm targets yet).
//! - [`compile_errors`]: evcxr errors as tracebacks: rustc's report with the cell's lines, then hints.
//! - [`config`]: where a session finds things (its crate dir, forja, the prebuilt build).
//! - [`content_blocks`]: evcxr content blocks printed during a cell, found so each becomes a display at once.
//! - [`fresh`]: `:fresh`, a new runner at a cell boundary keeping the items, and the note that suggests it.
//! - [`help`]: `:help`, the kernel's magics and evcxr's commands described in the student's language.
//! - [`hints`]: the hints added after rustc's errors for the mistakes beginners make with processes.
//! - [`history`]: the execution history on disk, answering `history_request`.
//! - [`input`]: answers `forja::input` over the side channel, through Jupyter's stdin channel.
//! - [`install`]: `forja-kernel install` / `uninstall`, the kernelspec.
//! - [`interrupt`]: interrupts that stop the cell's processes and keep the variables.
//! - [`is_complete`]: answers `is_complete_request`.
//! - [`kernel_info`]: the `kernel_info_reply` content.
//! - [`logo`]: the kernel's logo, as SVG and PNG.
//! - [`memory`]: giving the kernel's freed memory back to the system between
//!   cells, and rust-analyzer's while the student is idle.
//! - [`messages`]: every text the kernel writes for a student, in Spanish and English (one catalogue).
//! - [`outcome`]: what running a cell gives back (value, error, user expressions).
//! - [`output`]: the router from side-channel messages to iopub, batching stream text.
//! - [`paths`]: where the kernel keeps things (work dir, forja, lock file, prebuilt build).
//! - [`prebuild`]: `forja-kernel prebuild`, which makes the prebuilt forja build.
//! - [`procs`]: the `:procs` and `:kill` commands.
//! - [`reaper`]: subreaper, process-group kill and zombie reaping.
//! - [`runner`]: runs inside evcxr's runner process and owns its output.
//! - [`server`]: the sockets, signing and tasks; hands requests to the session.
//! - [`session`]: the interpreter, one evcxr session on its own thread.
//! - [`side_channel`]: the Unix socket from the runner and its children to the kernel.
//! - [`state`]: the session state other threads see (runner pid, running cell).
//! - [`text`]: unicode code point and byte offsets.
//! - [`toolchain`]: the Rust toolchain as evcxr finds it.
//! - [`waits`]: the `:waits` command, the wait-for graph of the runner's tree.
//! - [`wire`]: decodes untrusted Jupyter messages and builds replies.

pub mod build_cache;
pub mod builds;
pub mod cell_lines;
pub mod comms;
pub mod compile_errors;
pub mod config;
pub mod content_blocks;
pub mod fresh;
pub mod help;
pub mod hints;
pub mod history;
pub mod input;
pub mod install;
pub mod interrupt;
pub mod is_complete;
pub mod kernel_info;
pub mod logo;
pub mod memory;
pub mod messages;
pub mod outcome;
pub mod output;
pub mod paths;
pub mod prebuild;
pub mod procs;
pub mod reaper;
pub mod runner;
pub mod server;
pub mod session;
pub mod side_channel;
pub mod state;
pub mod text;
pub mod toolchain;
pub mod waits;
pub mod wire;

/// rust-analyzer (inside evcxr) allocates heavily while it parses the
/// standard library and forja for the first cells; glibc's malloc took about
/// a fifth of that time. mimalloc is what rust-analyzer itself ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(test)]
mod tests {
    /// The module list above is checked against the `pub mod` lines, so it
    /// cannot go stale.
    #[test]
    fn the_doc_lists_every_module_once() {
        let source = include_str!("lib.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
            .collect();
        let listed: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("//! - [`")?.split_once("`]").map(|(m, _)| m))
            .collect();
        assert_eq!(listed, declared);
    }
}
