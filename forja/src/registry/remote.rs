//! Another process's registry, mapped into this one ([`Remote`]): how the
//! kernel interrupts its runner, tags children with a cell and lists or
//! stops them.

use super::layout::{Header, MAGIC, MAP_LEN, slots_match};
use super::mapping::Registry;
use super::{ChildRecord, VERSION};
use crate::error::{Error, Result};
use std::sync::atomic::Ordering;

/// Another process's registry, mapped into this one: what the kernel uses to
/// interrupt the cell running in its runner process, tag the children each
/// cell starts with that cell's number, and list (and stop) them.
///
/// Everything it touches is atomic, so it is safe while the other process
/// runs. It is `Send + Sync`; dropping it unmaps the memory.
///
/// ```
/// use forja::registry::{self, Remote};
/// let (pid, fd) = registry::ensure().unwrap();
/// let remote = Remote::open(pid, fd).unwrap(); // here: our own registry
/// assert_eq!(remote.owner_pid(), pid);
/// remote.set_cell(3).unwrap();
/// assert_eq!(registry::cell().unwrap(), 3);
/// remote.request_interrupt().unwrap();
/// assert!(registry::interrupted());
/// remote.clear_interrupt().unwrap();
/// assert!(!registry::interrupted());
/// ```
pub struct Remote {
    addr: usize,
    pid: i32,
}

// SAFETY: the mapping is only accessed through atomics (and fields written
// once before the registry was published).
unsafe impl Send for Remote {}
// SAFETY: as above.
unsafe impl Sync for Remote {}

impl Remote {
    /// Maps the registry that process `pid` holds in its fd `fd` (through
    /// `/proc/PID/fd/FD`; needs the same rights as `ptrace`-reading it: the
    /// same user, as for a parent and its child). Checks that it is a forja
    /// registry of this layout [`VERSION`] owned by `pid`.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// assert!(forja::registry::Remote::open(pid, fd).is_ok());
    /// assert!(forja::registry::Remote::open(pid, 0).is_err()); // not a registry
    /// ```
    pub fn open(pid: i32, fd: i32) -> Result<Remote> {
        let path = format!("/proc/{pid}/fd/{fd}");
        let err = |message: String| Error::Registry {
            pid: crate::os::pid(),
            message: format!("cannot attach to the registry of process {pid} ({path}): {message}"),
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| err(e.to_string()))?;
        let len = file.metadata().map_err(|e| err(e.to_string()))?.len();
        if len < MAP_LEN as u64 {
            return Err(err(format!(
                "it is {len} bytes, not a registry of {MAP_LEN} bytes"
            )));
        }
        use nix::sys::mman::{MapFlags, ProtFlags};
        let map_len = std::num::NonZeroUsize::new(MAP_LEN).expect("a registry is not empty");
        // SAFETY: a fresh mapping (no address asked for, so nothing is
        // replaced) of MAP_LEN bytes of a file at least that long; the
        // mapping outlives the fd.
        let p = unsafe {
            nix::sys::mman::mmap(
                None,
                map_len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &file,
                0,
            )
        }
        .map_err(|e| err(e.to_string()))?;
        let remote = Remote {
            addr: p.as_ptr() as usize,
            pid,
        };
        let h = remote.registry().header;
        if h.magic != MAGIC {
            return Err(err("it is not a forja registry".into()));
        }
        if h.version != VERSION
            || !slots_match(h)
            || h.slot_offset as usize != std::mem::size_of::<Header>()
        {
            return Err(err(format!(
                "it was made by a different version of forja (layout {} there, {VERSION} \
                 here); build the kernel and the notebook's forja from the same version",
                h.version
            )));
        }
        if h.owner_pid != pid {
            return Err(err(format!(
                "it belongs to process {}, not {pid}",
                h.owner_pid
            )));
        }
        Ok(remote)
    }

    fn registry(&self) -> Registry {
        Registry::from_addr(self.addr)
    }

    /// The pid of the process that owns the registry.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// assert_eq!(forja::registry::Remote::open(pid, fd).unwrap().owner_pid(), pid);
    /// ```
    pub fn owner_pid(&self) -> i32 {
        self.pid
    }

    /// Raises that process's interrupt flag: its blocking forja calls return
    /// [`Error::Interrupted`] within [`POLL_INTERVAL`](super::POLL_INTERVAL), and every forja call
    /// fails at once until [`clear_interrupt`](Self::clear_interrupt).
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// forja::registry::Remote::open(pid, fd).unwrap().request_interrupt().unwrap();
    /// assert!(forja::Process::new(|| {}).start().is_err());
    /// ```
    pub fn request_interrupt(&self) -> Result<()> {
        self.registry().set_interrupt(true);
        Ok(())
    }

    /// Lowers that process's interrupt flag (do it before the next cell).
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// let r = forja::registry::Remote::open(pid, fd).unwrap();
    /// r.request_interrupt().unwrap();
    /// r.clear_interrupt().unwrap();
    /// assert!(!r.interrupted());
    /// ```
    pub fn clear_interrupt(&self) -> Result<()> {
        self.registry().set_interrupt(false);
        Ok(())
    }

    /// Whether that process's interrupt flag is raised.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// assert!(!forja::registry::Remote::open(pid, fd).unwrap().interrupted());
    /// ```
    pub fn interrupted(&self) -> bool {
        self.registry().interrupt_raised()
    }

    /// Sets the cell (the kernel's execution count) recorded with the children that
    /// process starts from now on.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// let r = forja::registry::Remote::open(pid, fd).unwrap();
    /// r.set_cell(12).unwrap();
    /// assert_eq!(r.cell().unwrap(), 12);
    /// ```
    pub fn set_cell(&self, cell: u64) -> Result<()> {
        self.registry().set_cell(cell);
        Ok(())
    }

    /// The current cell of that process.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// forja::registry::set_cell(4).unwrap();
    /// assert_eq!(forja::registry::Remote::open(pid, fd).unwrap().cell().unwrap(), 4);
    /// ```
    pub fn cell(&self) -> Result<u64> {
        Ok(self.registry().cell())
    }

    /// Old name of [`Remote::set_cell`].
    #[deprecated(
        since = "0.1.0",
        note = "renamed to `set_cell` (the kernel's word for it)"
    )]
    pub fn set_generation(&self, cell: u64) -> Result<()> {
        self.set_cell(cell)
    }

    /// Old name of [`Remote::cell`].
    #[deprecated(since = "0.1.0", note = "renamed to `cell` (the kernel's word for it)")]
    pub fn generation(&self) -> Result<u64> {
        self.cell()
    }

    /// That process's children not yet collected by their handles, with
    /// their state (running, ended but not reaped, reaped) and cell.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// let r = forja::registry::Remote::open(pid, fd).unwrap();
    /// let p = forja::Process::new(|| std::thread::sleep(std::time::Duration::from_millis(200)));
    /// p.start().unwrap();
    /// assert!(r.children().iter().any(|c| Some(c.pid) == p.pid()));
    /// p.join().unwrap();
    /// assert!(r.children().iter().all(|c| Some(c.pid) != p.pid()));
    /// ```
    pub fn children(&self) -> Vec<ChildRecord> {
        self.registry().children()
    }

    /// How many children of that process are live (started, not yet reaped).
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// assert_eq!(forja::registry::Remote::open(pid, fd).unwrap().live_children(), 0);
    /// ```
    pub fn live_children(&self) -> u32 {
        self.registry().header.live.load(Ordering::SeqCst)
    }

    /// That process's cap on live children.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// let r = forja::registry::Remote::open(pid, fd).unwrap();
    /// r.set_max_children(10).unwrap();
    /// assert_eq!(r.max_children().unwrap(), 10);
    /// ```
    pub fn max_children(&self) -> Result<u32> {
        Ok(self.registry().max_children())
    }

    /// Changes that process's cap on live children (clamped to `1..=SLOTS`).
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// forja::registry::Remote::open(pid, fd).unwrap().set_max_children(5).unwrap();
    /// assert_eq!(forja::registry::max_children().unwrap(), 5);
    /// ```
    pub fn set_max_children(&self, limit: u32) -> Result<()> {
        self.registry().set_max_children(limit);
        Ok(())
    }

    /// Sends `signal` to `pid` if — and only if — it is an unreaped child in
    /// that registry (running, or ended and not reaped), so a pid that was
    /// reaped and reused by an unrelated process is never signalled (on
    /// Linux through a pidfd, so the check and the signal refer to the same
    /// process). `Ok(true)` if the signal was sent.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// let r = forja::registry::Remote::open(pid, fd).unwrap();
    /// let p = forja::Process::new(|| loop { std::thread::sleep(std::time::Duration::from_secs(1)) });
    /// p.start().unwrap();
    /// assert!(r.signal(p.pid().unwrap(), libc::SIGKILL).unwrap());
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(-9));
    /// assert!(!r.signal(p.pid().unwrap(), libc::SIGKILL).unwrap()); // reaped: left alone
    /// ```
    pub fn signal(&self, pid: i32, signal: i32) -> Result<bool> {
        let reg = self.registry();
        if !reg.holds_unreaped(pid) {
            return Ok(false);
        }
        #[cfg(target_os = "linux")]
        {
            if let Some(fd) = crate::fork::pidfd_open(pid) {
                // The pidfd pins the process: if the pid is still an unreaped
                // child now, the pidfd is that child.
                if !reg.holds_unreaped(pid) {
                    return Ok(false);
                }
                // libc: nix 0.30 has no pidfd_send_signal.
                // SAFETY: the system call takes an fd (ours, open for the
                // call), a signal number (checked by the kernel), a null
                // siginfo (allowed) and flags 0; it touches no memory of ours.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        std::os::fd::AsRawFd::as_raw_fd(&fd),
                        signal,
                        std::ptr::null::<libc::siginfo_t>(),
                        0u32,
                    )
                };
                return signal_result(r == 0);
            }
        }
        // libc, not nix: nix's `kill` takes a `Signal`, which has no
        // real-time signals; any number goes through here as it does above.
        // SAFETY: kill takes two integers and touches no memory of ours
        // (the pid is an unreaped child of the owner, so not reused).
        let r = unsafe { libc::kill(pid, signal) };
        signal_result(r == 0)
    }
}

fn signal_result(sent: bool) -> Result<bool> {
    if sent {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) {
        Ok(false)
    } else {
        Err(Error::os("signalling a child of another process", e))
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let Some(addr) = std::ptr::NonNull::new(self.addr as *mut std::ffi::c_void) else {
            return;
        };
        // SAFETY: unmapping our own mapping; no reference into it outlives
        // the methods that made one.
        let _ = unsafe { nix::sys::mman::munmap(addr, MAP_LEN) };
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("owner_pid", &self.pid)
            .field("cell", &self.cell().unwrap_or(0))
            .field("interrupted", &self.interrupted())
            .field("live_children", &self.live_children())
            .finish()
    }
}
