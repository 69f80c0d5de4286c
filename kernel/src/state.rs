//! The state of a session that the other threads see: the runner's pid and
//! forja registry, and whether a cell is running, was interrupted or had its
//! runner restarted. One [`SessionState`], shared by the session thread, the
//! control channel, the output router and the zombie reaper.

use nix::sys::signal::Signal;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// State shared between the session thread and the control channel.
#[derive(Default)]
pub struct SessionState {
    /// The runner's pid (also its process group id), 0 before start.
    pub runner_pid: Arc<AtomicI32>,
    /// A cell is running.
    pub executing: AtomicBool,
    /// An interrupt arrived while the cell ran.
    pub interrupted: AtomicBool,
    /// The session finished warming up.
    pub ready: AtomicBool,
    /// The runner's forja registry: (runner pid, memfd fd), from its hello.
    pub registry: Mutex<Option<(i32, i32)>>,
    /// Interrupts received during the running cell.
    pub interrupts: AtomicU32,
    /// Number of the running (or last) cell.
    pub cell_seq: AtomicU64,
    /// The runner was restarted during the running cell.
    pub restarted: AtomicBool,
    /// The recent builds and cells, to place a line of any build in the
    /// cells (session writes, router reads).
    pub builds: Mutex<crate::builds::Builds>,
}

impl SessionState {
    /// The runner pid cell, shared with the zombie reaper.
    pub fn runner_pid_handle(&self) -> Arc<AtomicI32> {
        self.runner_pid.clone()
    }

    /// Restarts the runner of the running cell (evcxr starts a fresh one).
    pub fn restart_runner(&self) {
        self.restarted.store(true, Ordering::SeqCst);
        self.kill_runner();
    }

    /// Kills the runner's whole process group (every process a cell started
    /// that did not leave it), then whatever was re-parented to the kernel,
    /// and unlinks the named shared memory they left.
    pub fn kill_runner(&self) {
        let pid = self.runner_pid.load(Ordering::SeqCst);
        if pid > 0 {
            crate::reaper::kill_group(pid);
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        crate::reaper::sweep(pid, true);
        // Named shared memory the session's processes created and did not
        // unlink (they are all gone now) goes with them.
        let _ = forja::shared_memory::cleanup_session();
    }
}
