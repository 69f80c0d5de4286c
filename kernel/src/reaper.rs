//! Process hygiene: no orphans, no zombies.
//!
//! The kernel is a child subreaper, so a process a cell started that loses
//! its parent is re-parented to the kernel instead of init. The runner runs in
//! a process group of its own (see [`crate::runner`]) and dies with the kernel
//! (`PR_SET_PDEATHSIG`). [`sweep`] kills what is left of earlier runners and
//! reaps their zombies, without touching processes evcxr itself waits for
//! (the current runner, cargo and rustc, all in the kernel's own group).

use forja::os::{ProcStat, processes};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getppid};
use std::time::Duration;

/// Makes this process the subreaper of its descendants.
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// All descendants of `root`.
pub fn descendants(root: i32) -> Vec<ProcStat> {
    let all = processes();
    let mut out: Vec<ProcStat> = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for c in all.iter().filter(|c| c.ppid == p) {
            if !out.iter().any(|o| o.pid == c.pid) {
                out.push(*c);
                frontier.push(c.pid);
            }
        }
    }
    out
}

/// Kills and reaps the kernel's children that are not evcxr's: anything in
/// another process group than the kernel's, except the current runner.
/// With `kill_running` false only zombies are reaped.
pub fn sweep(current_runner: i32, kill_running: bool) {
    let me = std::process::id() as i32;
    let my_group = nix::unistd::getpgrp().as_raw();
    for p in processes() {
        if p.ppid != me || p.pid == current_runner || p.pgid == my_group {
            continue;
        }
        if p.state == 'Z' {
            reap(p.pid);
        } else if kill_running {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            reap(p.pid);
        }
    }
}

fn reap(pid: i32) {
    // The status is not wanted: nix's failing to name a real-time signal
    // after reaping does not matter here.
    let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
}

/// Kills a whole process group and everything re-parented from it.
pub fn kill_group(pgid: i32) {
    if pgid <= 1 {
        return;
    }
    let _ = kill(Pid::from_raw(-pgid), Signal::SIGKILL);
}

/// Reaps orphaned zombies every second, so none piles up.
pub fn spawn_zombie_reaper(runner: std::sync::Arc<std::sync::atomic::AtomicI32>) {
    std::thread::Builder::new()
        .name("forja-reaper".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                sweep(runner.load(std::sync::atomic::Ordering::SeqCst), false);
            }
        })
        .ok();
}

/// Resolves once the process that launched this kernel is gone, if it named
/// itself in `JPY_PARENT_PID` as jupyter_client does; never resolves
/// otherwise. A Jupyter server that exits without shutting its kernels down
/// (JupyterHub stops a student's server with SIGINT, which jupyter_server
/// 2.x can turn into a plain exit) must not leave a kernel and its ~650 MB
/// running as an orphan; ipykernel polls its parent the same way.
pub async fn parent_gone() {
    let named = std::env::var("JPY_PARENT_PID")
        .ok()
        .and_then(|p| p.trim().parse::<libc::pid_t>().ok());
    let parent = getppid().as_raw();
    if parent <= 1 || named != Some(parent) {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if getppid().as_raw() != parent {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let p = forja::os::parse_stat("123 (my (odd) name) S 45 67 67 0 -1").unwrap();
        assert_eq!(
            p,
            ProcStat {
                pid: 123,
                ppid: 45,
                pgid: 67,
                state: 'S'
            }
        );
    }

    #[test]
    fn finds_own_descendants() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let d = descendants(std::process::id() as i32);
        assert!(d.iter().any(|p| p.pid == child.id() as i32));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
