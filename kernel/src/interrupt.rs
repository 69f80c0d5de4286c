//! Interrupts that keep your variables.
//!
//! A first interrupt raises the forja interrupt flag in the runner (every
//! blocking forja call in the cell returns `Error::Interrupted` within
//! ~50 ms, and every later forja call fails at once), and stops the processes
//! the running cell started: SIGTERM, then SIGKILL after [`GRACE`]. The cell
//! ends with an "Interrupted" error and the variables of earlier cells stay.
//! If the cell has not ended [`ESCALATE_AFTER`] later (a busy loop in the
//! cell's own code), or on a second interrupt, the runner is restarted and
//! the error names the variables that were lost.

use crate::state::SessionState;
use forja::registry::{ChildState, Remote};
use nix::sys::signal::Signal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Time between SIGTERM and SIGKILL for the cell's processes.
pub const GRACE: Duration = Duration::from_millis(500);
/// Time a cell gets to end after an interrupt before the runner is restarted.
pub const ESCALATE_AFTER: Duration = Duration::from_secs(2);

/// Opens the runner's forja registry, if the runner announced one.
pub fn remote(shared: &SessionState) -> Option<Remote> {
    let (pid, fd) = (*shared.registry.lock().ok()?)?;
    if pid != shared.runner_pid.load(Ordering::SeqCst) {
        return None;
    }
    Remote::open(pid, fd).ok()
}

/// Called when a cell starts: lower the flag, record the cell number.
pub fn cell_started(shared: &SessionState, cell: u64) {
    shared.interrupts.store(0, Ordering::SeqCst);
    if let Some(r) = remote(shared) {
        let _ = r.clear_interrupt();
        let _ = r.set_cell(cell);
    }
}

/// Handles an `interrupt_request`.
pub fn interrupt(shared: &Arc<SessionState>) {
    if !shared.executing.load(Ordering::SeqCst) {
        return;
    }
    shared.interrupted.store(true, Ordering::SeqCst);
    let n = shared.interrupts.fetch_add(1, Ordering::SeqCst);
    if n >= 1 {
        shared.restart_runner();
        return;
    }
    let cell = shared.cell_seq.load(Ordering::SeqCst);
    match remote(shared) {
        Some(r) => {
            let _ = r.request_interrupt();
            let cell = r.cell().unwrap_or(0);
            stop_cell_processes(&r, cell);
        }
        None => {
            // No forja in this runner: nothing can stop the cell gently.
            shared.restart_runner();
            return;
        }
    }
    let shared = shared.clone();
    std::thread::spawn(move || {
        std::thread::sleep(ESCALATE_AFTER);
        if shared.executing.load(Ordering::SeqCst) && shared.cell_seq.load(Ordering::SeqCst) == cell
        {
            shared.restart_runner();
        }
    });
}

/// SIGTERM then SIGKILL to the processes (and their descendants) that the
/// cell `cell` started.
fn stop_cell_processes(r: &Remote, cell: u64) {
    let pids: Vec<i32> = r
        .children()
        .into_iter()
        .filter(|c| c.cell == cell && c.state != ChildState::Reaped)
        .map(|c| c.process.pid())
        .collect();
    if pids.is_empty() {
        return;
    }
    // Descendants first (found through /proc), then the children themselves
    // through the registry, which never signals a reused pid.
    let tree = |pids: &[i32]| -> Vec<i32> {
        let mut all: Vec<i32> = pids.to_vec();
        for &p in pids {
            all.extend(crate::reaper::descendants(p).into_iter().map(|d| d.pid));
        }
        all
    };
    let targets = tree(&pids);
    signal_all(&targets[pids.len()..], Signal::SIGTERM);
    for &p in &pids {
        let _ = r.signal(p, Signal::SIGTERM as i32);
    }
    std::thread::spawn(move || {
        std::thread::sleep(GRACE);
        // Descendants may have been born since; kill the tree as it is now.
        let mut now = targets.clone();
        for &p in &targets {
            now.extend(crate::reaper::descendants(p).into_iter().map(|d| d.pid));
        }
        signal_all(&now, Signal::SIGKILL);
    });
}

fn signal_all(pids: &[i32], sig: Signal) {
    for &p in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
    }
}
