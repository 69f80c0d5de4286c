//! Small helpers the lessons use to show operating-system behaviour that
//! forja otherwise prevents (a real orphan, a crash, a child's copy-on-write
//! pages) and to keep a failed self-check from leaving processes behind. Not
//! needed by programs.
//!
//! An orphan, step by step (what lesson 01 does):
//!
//! ```
//! use forja::prelude::*;
//! use std::time::Duration;
//!
//! let (rx, tx) = Pipe::one_way::<i32>().unwrap();
//! let boss = Process::new(move || {
//!     let grandchild = Process::new(|| {
//!         forja::demo::renounce_death_signal().unwrap();
//!         loop { std::thread::sleep(Duration::from_millis(50)) }
//!     });
//!     grandchild.start().unwrap();
//!     tx.send(&grandchild.pid().unwrap()).unwrap();
//!     loop { std::thread::sleep(Duration::from_millis(50)) }
//! });
//! boss.start().unwrap();
//! let orphan = rx.recv().unwrap();
//! boss.kill().unwrap(); // the parent dies; the grandchild lives on
//! boss.join().unwrap();
//! assert!(forja::demo::wait_for_other(orphan).is_err()); // not our child
//! forja::demo::kill_pid(orphan).unwrap();
//! ```

use crate::error::{Error, Result};
use crate::registry::{self, ChildState, Registry};

/// Makes the calling process stop asking to die with its parent
/// (`prctl(PR_SET_PDEATHSIG, 0)`). forja asks for that signal in every child
/// under the kernel (SIGKILL, so nothing outlives a notebook) and in daemons
/// elsewhere (SIGTERM); after this call, when the parent dies this process
/// goes on as an **orphan**, adopted by the nearest subreaper (under the
/// kernel: the kernel itself) or by `init`.
///
/// Under the kernel, whoever calls it must also make sure the process ends:
/// the kernel kills what is left of a runner only at restart and shutdown.
pub fn renounce_death_signal() -> Result<()> {
    nix::sys::prctl::set_pdeathsig(None).map_err(|e| {
        Error::os(
            "renouncing the death signal (prctl)",
            std::io::Error::from(e),
        )
    })
}

/// Tries to wait for (reap) process `pid` without blocking, as `join` would
/// with a child: `waitpid(pid, WNOHANG)`. Only a parent may wait for a
/// process, so for anything but an unreaped child of the calling process
/// this fails with `ECHILD` ("No child processes") — which is what it is
/// for: showing that an orphan cannot be joined by its grandparent.
///
/// It may reap a child of this process that forja started; use it only on
/// processes that are not.
pub fn wait_for_other(pid: i32) -> Result<()> {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG))
        .map(drop)
        .map_err(|e| Error::os("waiting for a process (waitpid)", std::io::Error::from(e)))
}

/// Sends SIGKILL to process `pid`, which need not be a child of the caller
/// (`kill -9 PID`). The pid must be one you know is alive and yours (for
/// example an orphan you made, that you can see in `/proc`): a pid that
/// ended may have been reused by another process.
pub fn kill_pid(pid: i32) -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    if pid <= 0 {
        return Err(Error::InvalidArgument {
            message: format!("kill_pid({pid}): a pid is a positive number"),
            pid: crate::os::pid(),
        });
    }
    kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL)
        .map_err(|e| Error::os("sending a signal (kill)", std::io::Error::from(e)))
}

/// The calling process's private modified memory in KiB: the `Private_Dirty`
/// line of `/proc/self/smaps_rollup` (0 when it cannot be read). After a
/// `fork`, the pages a process copied for itself (copy-on-write) count here;
/// the pages it still shares with its parent do not.
///
/// ```
/// let before = forja::demo::private_dirty_kib();
/// let fresh = vec![7u8; 8 << 20]; // 8 MiB written by this process
/// assert!(forja::demo::private_dirty_kib() >= before + 4 * 1024);
/// drop(fresh);
/// ```
pub fn private_dirty_kib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Private_Dirty:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Runs `f` in a new child process on the **child's copy** of `data`, waits
/// for the child and returns its exit code (`Some(0)` if `f` returned, `Some(1)`
/// if it panicked). After `fork` the child sees the parent's memory at the same
/// addresses, shared copy-on-write: what `f` reads costs nothing, what it
/// writes is copied page by page, and the parent's `data` never changes.
///
/// ```
/// let mut data = vec![1u8; 1 << 20];
/// let code = forja::demo::in_child_on_copy(&mut data, |mine| {
///     mine.fill(2);
///     assert!(mine.iter().all(|&b| b == 2));
/// })
/// .unwrap();
/// assert_eq!(code, Some(0));
/// assert!(data.iter().all(|&b| b == 1)); // the parent's copy is untouched
/// ```
pub fn in_child_on_copy<F>(data: &mut [u8], f: F) -> Result<Option<i32>>
where
    F: FnOnce(&mut [u8]) + Send + 'static,
{
    let (addr, len) = (data.as_mut_ptr() as usize, data.len());
    let child = crate::Process::new(move || {
        // SAFETY: this runs in the child, right after `fork`: the child has
        // its own copy of the parent's address space, so `addr..addr + len`
        // is the child's copy of `data`, valid and initialised. The parent
        // lent `data` as `&mut` for the whole call, so no other reference to
        // it existed when the child was forked; in the child nothing else
        // uses it while `f` runs.
        let mine = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len) };
        f(mine);
    });
    child.start()?;
    child.join()?;
    Ok(child.exitcode())
}

/// Ends the calling process with a real failure, and without a core file:
/// `"abort"` (SIGABRT, exit code -6), `"segfault"` (a write to an invalid
/// address: SIGSEGV, -11), anything else a `panic!` (which forja turns into
/// exit code 1 in a child). Call it in a child: in the notebook's own process
/// it would end the session.
///
/// The kernel's runner handles SIGSEGV (it prints a trace and aborts) and a
/// child inherits signal handlers through `fork`, so this first restores the
/// default action: the child dies of SIGSEGV, as a program would.
///
/// ```
/// let p = forja::Process::new(|| forja::demo::crash("abort"));
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(-6));
/// ```
pub fn crash(how: &str) -> ! {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct it is given, which lives on this
    // stack for the whole call; lowering RLIMIT_CORE only stops core files.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    match how {
        "abort" => std::process::abort(),
        "segfault" => {
            use nix::sys::signal::{SigHandler, Signal, signal};
            // SAFETY: SIG_DFL installs no Rust code as a handler, so no
            // handler can run at an unsafe moment.
            let _ = unsafe { signal(Signal::SIGSEGV, SigHandler::SigDfl) };
            // SAFETY: none on purpose: address 16 is never mapped, so this
            // write raises SIGSEGV, which (default action) ends the process
            // before anything can observe the write.
            unsafe { std::ptr::without_provenance_mut::<u8>(16).write_volatile(42) };
            unreachable!("writing to address 16 raises SIGSEGV")
        }
        _ => panic!(
            "{}",
            crate::lang::pick("un panic en el hijo", "a panic in the child")
        ),
    }
}

/// Kills, when dropped, the children of this process that started after it
/// was made and still run, and reaps them: a self-check that fails half-way
/// (a panicking `assert!` unwinds through it) leaves no process behind.
/// Children that were already running when it was made are left alone.
#[must_use = "it kills the leftovers when it is dropped: keep it in a variable (`let _leftovers = …`)"]
pub struct Leftovers {
    before: Vec<i32>,
}

/// A [`Leftovers`] guard: children started from now on that still run when
/// it is dropped are killed (SIGKILL) and reaped.
///
/// ```
/// let leftovers = forja::demo::kill_leftovers_at_end();
/// let p = forja::Process::new(|| loop { std::thread::sleep(std::time::Duration::from_millis(20)) });
/// p.start().unwrap();
/// drop(leftovers);
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(-9));
/// ```
pub fn kill_leftovers_at_end() -> Leftovers {
    Leftovers {
        before: running().into_iter().map(|(pid, _)| pid).collect(),
    }
}

/// This process's running (unreaped) children: pid and name.
fn running() -> Vec<(i32, String)> {
    registry::children()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.state == ChildState::Running)
        .map(|c| (c.process.pid(), c.process.name().to_owned()))
        .collect()
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let new: Vec<(i32, String)> = running()
            .into_iter()
            .filter(|(pid, _)| !self.before.contains(pid))
            .collect();
        if new.is_empty() {
            return;
        }
        for (pid, name) in &new {
            // Our own unreaped child (the registry says so): its pid is
            // still its own, so the signal cannot reach another process.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let [es, en] = leftover_message(*pid, name);
            eprintln!("{}", crate::lang::pick(&es, &en));
        }
        let Ok(reg) = Registry::current() else {
            return;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            reg.reap_all();
            let left = running()
                .iter()
                .any(|(p, _)| new.iter().any(|(n, _)| n == p));
            if !left {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// What is printed for each child killed by [`Leftovers`], in both languages.
fn leftover_message(pid: i32, name: &str) -> [String; 2] {
    [
        format!("(limpieza: maté al proceso {name} (PID {pid}), que había quedado corriendo)"),
        format!("(clean-up: killed process {name} (pid {pid}), which was left running)"),
    ]
}
