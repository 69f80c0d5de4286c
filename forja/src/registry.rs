//! The process-wide registry: this process's children, its name, the cap on
//! live children and the interrupt flag.
//!
//! Inside the forja kernel every cell is a separate library with its own copy
//! of forja's statics, so this state cannot live in a `static`. It lives in
//! one `MAP_SHARED` mapping per process (a `memfd` on Linux), made on first
//! use and published in the environment variable [`ENV`] as
//! `pid:fd:address:inode`. Every copy of forja in the process reads the same
//! environment and so finds the same mapping; the layout is `#[repr(C)]`,
//! starts with a magic number and a [`VERSION`], so differing copies refuse
//! to share it rather than misread it.
//!
//! **One registry per process, holding that process's own children.** A
//! forked child inherits the parent's variable, sees that the pid in it is not
//! its own and makes a fresh registry on first use (its first pipe, child,
//! blocking wait...). Until then nothing is made: right after the fork forja
//! only writes who the child is (name, identity, parent, daemon) into a
//! private, copy-on-write page that follows the parent's registry in the
//! same `memfd`, which every copy of forja in the child finds through the
//! inherited variable; the child's registry starts from it. So a child that
//! never uses forja costs no more than a fork.
//!
//! Another process (the kernel) can map the same memory through
//! `/proc/PID/fd/FD` with [`Remote::open`] to list children or raise the
//! interrupt flag: blocking forja calls wake at least every [`POLL_INTERVAL`]
//! to look at it, and once it is raised every forja call that could block or
//! start work fails at once with [`Error::Interrupted`].
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

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The environment variable that names this process's registry.
pub const ENV: &str = "FORJA_REGISTRY";
/// The environment variable read for the cap on live children.
pub const MAX_CHILDREN_ENV: &str = "FORJA_MAX_CHILDREN";
/// Default cap on live (unreaped) children per process.
pub const DEFAULT_MAX_CHILDREN: u32 = 256;
/// Layout version; bump it whenever [`Header`], the slots or the memfd's
/// layout change (2: a private page after the shared part, where a forked
/// child records who it is).
pub const VERSION: u32 = 2;
/// How many children the registry can track at once (the highest cap).
pub const SLOTS: usize = 1024;
/// Blocking waits wake at least this often to check the interrupt flag.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Pipe ends on fds at or above this are not tracked (so a child keeps its
/// inherited copies of them, as in Python).
pub const MAX_TRACKED_FD: usize = 4096;

const MAGIC: u64 = u64::from_le_bytes(*b"FORJAREG");
const NAME_WORDS: usize = 8;
const NAME_BYTES: usize = NAME_WORDS * 8;

/// Slot states.
const FREE: u32 = 0;
const RESERVED: u32 = 1;
const RUNNING: u32 = 2;
const REAPING: u32 = 3;
const EXITED: u32 = 4;

/// Slot flags.
const FLAG_DAEMON: u32 = 1;
const FLAG_HANDLE_DROPPED: u32 = 2;
const FLAG_POOL_WORKER: u32 = 4;

/// `status` of a child reaped by someone else (`SIGCHLD` ignored...).
pub(crate) const STATUS_UNKNOWN: i32 = i32::MIN;

/// A name stored in shared memory, as atomics so readers never race writers.
#[repr(C)]
struct SharedName([AtomicU64; NAME_WORDS]);

impl SharedName {
    fn store(&self, name: &str) {
        let mut bytes = [0u8; NAME_BYTES];
        let mut len = name.len().min(NAME_BYTES);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        for (i, word) in self.0.iter().enumerate() {
            let chunk: [u8; 8] = bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes");
            word.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
        }
    }
    fn load(&self) -> String {
        let mut bytes = [0u8; NAME_BYTES];
        for (i, word) in self.0.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
        String::from_utf8_lossy(&bytes[..len]).into_owned()
    }
}

/// The start of the registry mapping (layout [`VERSION`] 2).
#[repr(C)]
pub struct Header {
    magic: u64,
    version: u32,
    slot_count: u32,
    slot_offset: u32,
    slot_size: u32,
    owner_pid: i32,
    /// Pid of the forja parent, 0 in a process not started by forja.
    parent_pid: i32,
    /// 1 when this process was started by forja (a `Process` or pool worker).
    is_child: u32,
    daemon: u32,
    /// Raised (non-zero) to make blocking forja calls return `Interrupted`.
    interrupt: AtomicU32,
    max_children: AtomicU32,
    /// Children reserved or running and not yet reaped.
    live: AtomicU32,
    _pad: u32,
    /// Counter for default names (`Process-1`, `Process-2`...).
    name_counter: AtomicU64,
    /// Set by the kernel: the cell now running; recorded with each child.
    generation: AtomicU64,
    /// When this registry was made (ns since the Unix epoch).
    start_ns: u64,
    name: SharedName,
    parent_name: SharedName,
    /// Python-style identity: "" for the main process, "1:2" for Process-1:2.
    identity: SharedName,
    /// Bitmap of the fds (below [`MAX_TRACKED_FD`]) that are forja pipe
    /// ends open in this process: a child closes those it did not take.
    ends: [AtomicU64; MAX_TRACKED_FD / 64],
    /// Room for later fields (timeline...) without moving the slots.
    reserved: [AtomicU64; 16],
}

/// One tracked child.
#[repr(C)]
struct Slot {
    pid: AtomicI32,
    state: AtomicU32,
    /// Python-style exit code once `EXITED` (negative signal number).
    status: AtomicI32,
    flags: AtomicU32,
    generation: AtomicU64,
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    name: SharedName,
}

const MAP_LEN: usize = std::mem::size_of::<Header>() + SLOTS * std::mem::size_of::<Slot>();

/// Who a forja child is, written by the child right after the fork (see the
/// module docs). It lives in the page after the shared part of the parent's
/// registry memfd, mapped privately (copy-on-write), so what a child writes
/// there only that child sees.
#[repr(C)]
struct SelfPage {
    /// The pid this page describes (0: nobody; a stale pid after a fork
    /// that forja did not make).
    pid: AtomicI32,
    parent_pid: AtomicI32,
    daemon: AtomicU32,
    _pad: u32,
    name: SharedName,
    parent_name: SharedName,
    identity: SharedName,
}

fn page_size() -> usize {
    // Safety: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// Bytes of the shared part of the memfd (whole pages); the private
/// [`SelfPage`] follows.
fn shared_len() -> usize {
    MAP_LEN.div_ceil(page_size()) * page_size()
}

/// Who this process is, as far as forja knows (see [`whoami`]).
pub(crate) struct Me {
    pub name: String,
    pub daemon: bool,
    /// Started by forja (a `Process` or a pool worker).
    pub is_child: bool,
    /// The forja parent's pid and name.
    pub parent: Option<(i32, String)>,
}

/// This process's registry (the mapping is never unmapped).
pub(crate) struct Registry {
    header: &'static Header,
    slots: &'static [Slot],
}

// Per-copy cache of the lookup: (pid, address).
static CACHED_PID: AtomicI32 = AtomicI32::new(0);
static CACHED_ADDR: AtomicUsize = AtomicUsize::new(0);
static CREATE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn getpid() -> i32 {
    // Safety: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// This process's pid, cached (reset in a forked child): cheaper than the
/// `getpid` system call on the hot paths that check the interrupt flag.
#[inline]
fn self_pid() -> i32 {
    crate::sync::futex::my_pid() as i32
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn reg_err(message: impl Into<String>) -> Error {
    Error::Registry {
        pid: getpid(),
        message: message.into(),
    }
}

/// What a freshly made registry says about its own process.
pub(crate) struct SelfInfo<'a> {
    pub name: &'a str,
    pub identity: &'a str,
    pub parent_pid: i32,
    pub parent_name: &'a str,
    pub daemon: bool,
}

impl Registry {
    fn from_addr(addr: usize) -> Registry {
        // Safety: addr is a live mapping of MAP_LEN bytes laid out as a
        // Header followed by SLOTS slots (checked by the callers), and the
        // mapping is never unmapped, so 'static is sound. All fields written
        // after creation are atomics.
        unsafe {
            let header = &*(addr as *const Header);
            let slots = std::slice::from_raw_parts(
                (addr + std::mem::size_of::<Header>()) as *const Slot,
                SLOTS,
            );
            Registry { header, slots }
        }
    }

    /// The registry of the calling process, made on first use (from what
    /// the forking parent recorded, in a forja child).
    pub(crate) fn current() -> Result<Registry> {
        let pid = self_pid();
        if CACHED_PID.load(Ordering::Acquire) == pid {
            return Ok(Self::from_addr(CACHED_ADDR.load(Ordering::Acquire)));
        }
        let _guard = CREATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addr) = find_published(pid)? {
            cache(pid, addr);
            return Ok(Self::from_addr(addr));
        }
        let inherited = inherited_page(pid);
        let recorded = inherited.map(|(_, page)| {
            (
                page.name.load(),
                page.identity.load(),
                page.parent_pid.load(Ordering::Relaxed),
                page.parent_name.load(),
                page.daemon.load(Ordering::Relaxed) != 0,
            )
        });
        let info = match &recorded {
            Some((name, identity, parent_pid, parent_name, daemon)) => SelfInfo {
                name,
                identity,
                parent_pid: *parent_pid,
                parent_name,
                daemon: *daemon,
            },
            None => SelfInfo {
                name: "MainProcess",
                identity: "",
                parent_pid: 0,
                parent_name: "",
                daemon: false,
            },
        };
        let addr = create(pid, &info)?;
        if let Some((fd, _)) = inherited {
            // The parent's registry fd, inherited: a forja child does not
            // keep it (its mapping stays, harmless).
            // Safety: closing an fd we inherited and no longer use.
            unsafe { libc::close(fd) };
        }
        Ok(Self::from_addr(addr))
    }

    /// The registry of the calling process if it already exists (never makes one).
    pub(crate) fn existing() -> Option<Registry> {
        let pid = self_pid();
        if CACHED_PID.load(Ordering::Acquire) == pid {
            return Some(Self::from_addr(CACHED_ADDR.load(Ordering::Acquire)));
        }
        let addr = find_published(pid).ok().flatten()?;
        cache(pid, addr);
        Some(Self::from_addr(addr))
    }

    /// Where a child forked from this process records who it is: the
    /// address of the private page after this registry (see [`SelfPage`]).
    /// Taken in the parent, before the fork.
    pub(crate) fn self_page(&self) -> usize {
        self.header as *const Header as usize + shared_len()
    }

    /// In a freshly forked child, with the address [`self_page`] gave the
    /// parent: records who the child is. Only atomic stores into the
    /// child's own copy of that page: no allocation, no system call.
    ///
    /// [`self_page`]: Registry::self_page
    pub(crate) fn record_child(self_page: usize, pid: i32, info: &SelfInfo<'_>) {
        // Safety: the page was mapped (privately, writable) in the parent
        // before the fork, so it is mapped here too; a SelfPage is atomics.
        let page = unsafe { &*(self_page as *const SelfPage) };
        page.parent_pid.store(info.parent_pid, Ordering::Relaxed);
        page.daemon.store(u32::from(info.daemon), Ordering::Relaxed);
        page.name.store(info.name);
        page.parent_name.store(info.parent_name);
        page.identity.store(info.identity);
        page.pid.store(pid, Ordering::Release);
    }

    pub(crate) fn header(&self) -> &'static Header {
        self.header
    }

    /// Next number for a default name.
    pub(crate) fn next_number(&self) -> u64 {
        self.header.name_counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Python-style identity prefix of this process ("" for the main process).
    pub(crate) fn identity(&self) -> String {
        self.header.identity.load()
    }

    /// Reserves a slot for a child about to be forked; enforces the cap.
    pub(crate) fn reserve(&self, name: &str, daemon: bool, pool_worker: bool) -> Result<usize> {
        let limit = self.header.max_children.load(Ordering::Relaxed).max(1);
        let mut reaped_once = false;
        loop {
            let before = self.header.live.fetch_add(1, Ordering::AcqRel);
            if before < limit {
                break;
            }
            self.header.live.fetch_sub(1, Ordering::AcqRel);
            if reaped_once {
                return Err(Error::TooManyChildren {
                    limit,
                    pid: getpid(),
                });
            }
            self.reap_all();
            reaped_once = true;
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if slot
                .state
                .compare_exchange(FREE, RESERVED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                slot.pid.store(0, Ordering::Relaxed);
                slot.status.store(0, Ordering::Relaxed);
                let mut flags = 0;
                if daemon {
                    flags |= FLAG_DAEMON;
                }
                if pool_worker {
                    flags |= FLAG_POOL_WORKER;
                }
                slot.flags.store(flags, Ordering::Relaxed);
                slot.generation.store(
                    self.header.generation.load(Ordering::Relaxed),
                    Ordering::Relaxed,
                );
                slot.start_ns.store(now_ns(), Ordering::Relaxed);
                slot.end_ns.store(0, Ordering::Relaxed);
                slot.name.store(name);
                return Ok(i);
            }
        }
        // Every slot holds an exited child whose handle is still alive.
        self.header.live.fetch_sub(1, Ordering::AcqRel);
        Err(Error::TooManyChildren {
            limit: SLOTS as u32,
            pid: getpid(),
        })
    }

    /// The fork failed: gives the reservation back.
    pub(crate) fn unreserve(&self, slot: usize) {
        self.slots[slot].state.store(FREE, Ordering::Release);
        self.header.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// The fork succeeded: the slot now tracks `pid`.
    pub(crate) fn publish(&self, slot: usize, pid: i32) {
        let s = &self.slots[slot];
        s.pid.store(pid, Ordering::Relaxed);
        s.state.store(RUNNING, Ordering::Release);
    }

    /// Reaps `pid` if it has ended, without blocking. Returns its
    /// Python-style exit code once known ([`STATUS_UNKNOWN`] if someone else
    /// reaped it behind forja's back).
    pub(crate) fn try_reap(&self, slot: usize, pid: i32) -> Option<i32> {
        let s = &self.slots[slot];
        if s.pid.load(Ordering::Acquire) != pid {
            return Some(STATUS_UNKNOWN);
        }
        loop {
            match s.state.load(Ordering::Acquire) {
                EXITED => return Some(s.status.load(Ordering::Acquire)),
                REAPING => std::thread::yield_now(),
                RUNNING => {
                    if s.state
                        .compare_exchange(RUNNING, REAPING, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return self.reap_locked(s, pid);
                    }
                }
                _ => return Some(STATUS_UNKNOWN),
            }
        }
    }

    /// With the slot in `REAPING`: one `waitpid(WNOHANG)`.
    fn reap_locked(&self, s: &Slot, pid: i32) -> Option<i32> {
        let mut status = 0;
        let r = loop {
            // Safety: plain waitpid on our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break r;
        };
        let code = if r == 0 {
            s.state.store(RUNNING, Ordering::Release);
            return None;
        } else if r == pid {
            decode_status(status)
        } else {
            STATUS_UNKNOWN
        };
        s.status.store(code, Ordering::Relaxed);
        s.end_ns.store(now_ns(), Ordering::Relaxed);
        crate::timeline::process_reaped(pid, code);
        s.state.store(EXITED, Ordering::Release);
        self.header.live.fetch_sub(1, Ordering::AcqRel);
        if s.flags.load(Ordering::Relaxed) & FLAG_HANDLE_DROPPED != 0 {
            self.free(s);
        }
        Some(code)
    }

    fn free(&self, s: &Slot) {
        s.pid.store(0, Ordering::Relaxed);
        s.flags.store(0, Ordering::Relaxed);
        s.state.store(FREE, Ordering::Release);
    }

    /// The handle learned the exit code: the slot can be reused.
    pub(crate) fn release(&self, slot: usize, pid: i32) {
        let s = &self.slots[slot];
        if s.pid.load(Ordering::Acquire) == pid && s.state.load(Ordering::Acquire) == EXITED {
            self.free(s);
        }
    }

    /// The handle is gone while the child still runs: whoever reaps it frees
    /// the slot.
    pub(crate) fn handle_dropped(&self, slot: usize, pid: i32) {
        let s = &self.slots[slot];
        if s.pid.load(Ordering::Acquire) != pid {
            return;
        }
        s.flags.fetch_or(FLAG_HANDLE_DROPPED, Ordering::AcqRel);
        // It may have exited in between: reap (and so free) it now.
        if self.try_reap(slot, pid).is_some() {
            self.release(slot, pid);
        }
    }

    /// Reaps the ended children whose handles are gone (no one else will):
    /// a child with a live handle stays a zombie until its handle reaps it.
    pub(crate) fn reap_dropped(&self) {
        for (i, s) in self.slots.iter().enumerate() {
            if s.state.load(Ordering::Acquire) == RUNNING
                && s.flags.load(Ordering::Acquire) & FLAG_HANDLE_DROPPED != 0
            {
                let pid = s.pid.load(Ordering::Acquire);
                if pid > 0 {
                    let _ = self.try_reap(i, pid);
                }
            }
        }
    }

    /// Reaps every child that has ended (exit codes stay for their handles).
    pub(crate) fn reap_all(&self) {
        for (i, s) in self.slots.iter().enumerate() {
            if s.state.load(Ordering::Acquire) == RUNNING {
                let pid = s.pid.load(Ordering::Acquire);
                if pid > 0 {
                    let _ = self.try_reap(i, pid);
                }
            }
        }
    }

    /// Records that `fd` is a forja pipe end of this process.
    pub(crate) fn register_end(&self, fd: i32) {
        if let Some((word, bit)) = end_bit(fd) {
            self.header.ends[word].fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// `fd` is no longer a forja pipe end here.
    pub(crate) fn unregister_end(&self, fd: i32) {
        if let Some((word, bit)) = end_bit(fd) {
            self.header.ends[word].fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// The forja pipe ends open in this process now.
    pub(crate) fn ends(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for (w, word) in self.header.ends.iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                out.push((w * 64 + b) as i32);
                bits &= bits - 1;
            }
        }
        out
    }

    /// Children not yet collected by their handles: running, ended and not
    /// yet reaped (zombies), or reaped with their exit code waiting.
    pub(crate) fn children(&self) -> Vec<ChildRecord> {
        let mut out = Vec::new();
        for s in self.slots {
            let state = s.state.load(Ordering::Acquire);
            if state != RUNNING && state != REAPING && state != EXITED {
                continue;
            }
            let pid = s.pid.load(Ordering::Acquire);
            if pid <= 0 {
                continue;
            }
            let flags = s.flags.load(Ordering::Relaxed);
            let exitcode = (state == EXITED).then(|| s.status.load(Ordering::Relaxed));
            let child_state = match exitcode {
                Some(_) => ChildState::Reaped,
                None if is_zombie(pid) => ChildState::Exited,
                None => ChildState::Running,
            };
            let end_ns = s.end_ns.load(Ordering::Relaxed);
            out.push(ChildRecord {
                pid,
                name: s.name.load(),
                daemon: flags & FLAG_DAEMON != 0,
                pool_worker: flags & FLAG_POOL_WORKER != 0,
                generation: s.generation.load(Ordering::Relaxed),
                start_ns: s.start_ns.load(Ordering::Relaxed),
                exitcode,
                state: child_state,
                end_ns: (exitcode.is_some() && end_ns != 0).then_some(end_ns),
            });
        }
        out
    }

    /// Whether `pid` is an unreaped child in this registry right now.
    fn holds_unreaped(&self, pid: i32) -> bool {
        pid > 0
            && self.slots.iter().any(|s| {
                s.pid.load(Ordering::Acquire) == pid
                    && matches!(s.state.load(Ordering::Acquire), RUNNING | REAPING)
            })
    }
}

/// Whether `pid` has ended but is not reaped yet (state `Z` in /proc).
fn is_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

impl Header {
    /// This process's name ("MainProcess" unless forja started it).
    pub(crate) fn name(&self) -> String {
        self.name.load()
    }
    /// The forja parent's pid and name, if forja started this process.
    pub(crate) fn parent(&self) -> Option<(i32, String)> {
        (self.parent_pid != 0).then(|| (self.parent_pid, self.parent_name.load()))
    }
    /// Whether forja started this process.
    pub(crate) fn is_child(&self) -> bool {
        self.is_child != 0
    }
    /// Whether this process is a daemon.
    pub(crate) fn is_daemon(&self) -> bool {
        self.daemon != 0
    }
}

fn end_bit(fd: i32) -> Option<(usize, u64)> {
    let fd = usize::try_from(fd).ok()?;
    (fd < MAX_TRACKED_FD).then(|| (fd / 64, 1u64 << (fd % 64)))
}

/// Turns a `waitpid` status into Python's `exitcode`.
pub(crate) fn decode_status(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        STATUS_UNKNOWN
    }
}

fn cache(pid: i32, addr: usize) {
    CACHED_ADDR.store(addr, Ordering::Release);
    CACHED_PID.store(pid, Ordering::Release);
}

struct Published {
    pid: i32,
    fd: i32,
    addr: usize,
    ino: u64,
}

fn parse_env() -> Option<Published> {
    let value = std::env::var(ENV).ok()?;
    let mut parts = value.split(':');
    let pid = parts.next()?.parse().ok()?;
    let fd = parts.next()?.parse().ok()?;
    let addr = usize::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
    let ino = parts.next()?.parse().ok()?;
    Some(Published { pid, fd, addr, ino })
}

/// In a forja child without a registry of its own yet: the inherited
/// registry's fd and this child's [`SelfPage`] in it, if the parent recorded
/// one for `pid`.
fn inherited_page(pid: i32) -> Option<(i32, &'static SelfPage)> {
    let p = parse_env()?;
    if p.pid == pid || p.addr == 0 || fd_inode(p.fd) != Some(p.ino) {
        return None;
    }
    // The fd is still the inherited memfd (close-on-exec: no exec since),
    // so the parent's mapping, and the private page after it, are here.
    let header = Registry::from_addr(p.addr).header;
    if header.magic != MAGIC || header.version != VERSION {
        return None;
    }
    // Safety: see above; the page holds only atomics.
    let page = unsafe { &*((p.addr + shared_len()) as *const SelfPage) };
    (page.pid.load(Ordering::Acquire) == pid).then_some((p.fd, page))
}

/// Who this process is: from its registry, or (in a forja child that has
/// not made one yet) from what was recorded at the fork; `None` in a process
/// forja did not start and that has no registry.
pub(crate) fn whoami() -> Option<Me> {
    if let Some(reg) = Registry::existing() {
        let h = reg.header();
        return Some(Me {
            name: h.name(),
            daemon: h.is_daemon(),
            is_child: h.is_child(),
            parent: h.parent(),
        });
    }
    let (_, page) = inherited_page(getpid())?;
    let parent_pid = page.parent_pid.load(Ordering::Relaxed);
    Some(Me {
        name: page.name.load(),
        daemon: page.daemon.load(Ordering::Relaxed) != 0,
        is_child: parent_pid != 0,
        parent: (parent_pid != 0).then(|| (parent_pid, page.parent_name.load())),
    })
}

fn fd_inode(fd: i32) -> Option<u64> {
    // Safety: fstat writes into a zeroed stat we own.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st.st_ino)
    }
}

/// The registry published for `pid`, checked so that a stale variable (after
/// an exec, say) is never dereferenced.
fn find_published(pid: i32) -> Result<Option<usize>> {
    let Some(p) = parse_env() else {
        return Ok(None);
    };
    if p.pid != pid || p.addr == 0 || fd_inode(p.fd) != Some(p.ino) {
        return Ok(None);
    }
    // The fd is the same memfd that was mapped at addr by this process (an
    // exec would have closed it: it is close-on-exec).
    let header = Registry::from_addr(p.addr).header;
    if header.magic != MAGIC {
        return Err(reg_err(format!(
            "{ENV} points at memory that is not a registry"
        )));
    }
    if header.version != VERSION
        || header.slot_count as usize != SLOTS
        || header.slot_size as usize != std::mem::size_of::<Slot>()
    {
        return Err(reg_err(format!(
            "it was made by a different version of forja (layout {} here, {} there); use one \
             forja version in the whole program or notebook",
            VERSION, header.version
        )));
    }
    Ok(Some(p.addr))
}

/// Makes and publishes a fresh registry for `pid`.
fn create(pid: i32, info: &SelfInfo<'_>) -> Result<usize> {
    // The shared part, then one page mapped privately (see SelfPage).
    let shared = shared_len();
    let total = shared + page_size();
    let (fd, addr) = crate::shm::memfd_mapping(
        c"forja-registry",
        total,
        &crate::shm::MemfdSteps {
            make: "making the process registry (memfd_create)",
            size: "sizing the process registry",
            map: "mapping the process registry",
        },
    )?;
    // Safety: `addr` maps `total` bytes of fd; this replaces its last page.
    unsafe {
        let q = libc::mmap(
            (addr + shared) as *mut libc::c_void,
            total - shared,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            fd,
            shared as libc::off_t,
        );
        if q == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            libc::munmap(addr as *mut libc::c_void, total);
            libc::close(fd);
            return Err(Error::os("mapping the process registry", e));
        }
    }
    let max = std::env::var(MAX_CHILDREN_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(DEFAULT_MAX_CHILDREN)
        .clamp(1, SLOTS as u32);
    // Safety: fresh zeroed mapping of MAP_LEN bytes that nothing else sees yet.
    unsafe {
        let h = addr as *mut Header;
        (*h).magic = MAGIC;
        (*h).version = VERSION;
        (*h).slot_count = SLOTS as u32;
        (*h).slot_offset = std::mem::size_of::<Header>() as u32;
        (*h).slot_size = std::mem::size_of::<Slot>() as u32;
        (*h).owner_pid = pid;
        (*h).parent_pid = info.parent_pid;
        (*h).is_child = u32::from(info.parent_pid != 0);
        (*h).daemon = u32::from(info.daemon);
        (*h).start_ns = now_ns();
    }
    let reg = Registry::from_addr(addr);
    reg.header.max_children.store(max, Ordering::Relaxed);
    reg.header.name.store(info.name);
    reg.header.parent_name.store(info.parent_name);
    reg.header.identity.store(info.identity);
    let ino = fd_inode(fd).unwrap_or(0);
    let value = format!("{pid}:{fd}:{addr:#x}:{ino}");
    // Safety: set once per process, on first use of forja (or right after a
    // fork, when the child has a single thread).
    unsafe { std::env::set_var(ENV, value) };
    cache(pid, addr);
    Ok(addr)
}

/// What became of a child (see [`ChildRecord::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// Still running (its pid is still its own: safe to signal).
    Running,
    /// It has ended but nobody has reaped it yet (a zombie: its pid is still
    /// reserved, its exit code not read yet).
    Exited,
    /// Reaped by forja: its exit code is in [`ChildRecord::exitcode`] and
    /// waits for its handle to collect it. Its pid may belong to another
    /// process by now: never signal it.
    Reaped,
}

/// A child as the registry sees it (see [`children`] and [`Remote::children`]).
///
/// ```
/// use forja::registry::ChildState;
/// let p = forja::Process::new(|| std::thread::sleep(std::time::Duration::from_millis(300)));
/// p.start().unwrap();
/// let me = forja::registry::children().unwrap();
/// let rec = me.iter().find(|c| Some(c.pid) == p.pid()).unwrap();
/// assert_eq!(rec.state, ChildState::Running);
/// p.join().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildRecord {
    /// Its pid.
    pub pid: i32,
    /// Its name.
    pub name: String,
    /// Whether it is a daemon (terminated when this process exits).
    pub daemon: bool,
    /// Whether it is a `Pool` worker.
    pub pool_worker: bool,
    /// The generation (kernel cell) that was current when it started.
    pub generation: u64,
    /// When it started, in ns since the Unix epoch.
    pub start_ns: u64,
    /// `Some(code)` if it has ended and been reaped but its handle has not
    /// collected the code yet.
    pub exitcode: Option<i32>,
    /// Running, ended but not reaped, or reaped.
    pub state: ChildState,
    /// When forja reaped it (ns since the Unix epoch), once [`ChildState::Reaped`].
    pub end_ns: Option<u64>,
}

/// Every child of this process not yet collected by its handle (without
/// reaping any).
///
/// ```
/// assert!(forja::registry::children().unwrap().is_empty());
/// ```
pub fn children() -> Result<Vec<ChildRecord>> {
    Ok(Registry::current()?.children())
}

/// Whether the interrupt flag is raised for this process. Cheap (a few
/// atomic loads once the registry exists; it makes the registry on first use).
///
/// ```
/// assert!(!forja::registry::interrupted());
/// ```
#[inline]
pub fn interrupted() -> bool {
    if CACHED_PID.load(Ordering::Acquire) == self_pid() {
        let header = CACHED_ADDR.load(Ordering::Acquire) as *const Header;
        // Safety: the cached address is this process's registry mapping,
        // never unmapped.
        return unsafe { (*header).interrupt.load(Ordering::Relaxed) } != 0;
    }
    Registry::current()
        .map(|r| r.header.interrupt.load(Ordering::Relaxed) != 0)
        .unwrap_or(false)
}

/// `Err(Error::Interrupted)` if the interrupt flag is raised.
///
/// ```
/// forja::registry::check_interrupt().unwrap();
/// ```
#[inline]
pub fn check_interrupt() -> Result<()> {
    if interrupted() {
        Err(Error::Interrupted { pid: self_pid() })
    } else {
        Ok(())
    }
}

/// Raises the interrupt flag: blocking forja calls in this process return
/// `Error::Interrupted` within [`POLL_INTERVAL`], and every forja call fails
/// until [`clear_interrupt`]. Only an atomic store, so a signal handler may
/// call it once the registry exists.
///
/// ```
/// use forja::registry;
/// registry::request_interrupt().unwrap();
/// assert!(registry::interrupted());
/// registry::clear_interrupt().unwrap();
/// assert!(!registry::interrupted());
/// ```
pub fn request_interrupt() -> Result<()> {
    Registry::current()?
        .header
        .interrupt
        .store(1, Ordering::SeqCst);
    Ok(())
}

/// Lowers the interrupt flag (the kernel does this when a new cell starts).
///
/// ```
/// forja::registry::clear_interrupt().unwrap();
/// ```
pub fn clear_interrupt() -> Result<()> {
    Registry::current()?
        .header
        .interrupt
        .store(0, Ordering::SeqCst);
    Ok(())
}

/// The cap on live children of this process.
///
/// ```
/// assert!(forja::registry::max_children().unwrap() <= forja::registry::SLOTS as u32);
/// ```
pub fn max_children() -> Result<u32> {
    Ok(Registry::current()?
        .header
        .max_children
        .load(Ordering::Relaxed))
}

/// Changes the cap on live children (clamped to `1..=SLOTS`).
///
/// ```
/// let old = forja::registry::max_children().unwrap();
/// forja::registry::set_max_children(8).unwrap();
/// assert_eq!(forja::registry::max_children().unwrap(), 8);
/// forja::registry::set_max_children(old).unwrap();
/// ```
pub fn set_max_children(limit: u32) -> Result<()> {
    Registry::current()?
        .header
        .max_children
        .store(limit.clamp(1, SLOTS as u32), Ordering::Relaxed);
    Ok(())
}

/// The generation counter itself: the timeline keeps its address so that
/// forked children, which inherit this mapping, read the current cell.
pub(crate) fn generation_counter() -> Result<&'static AtomicU64> {
    Ok(&Registry::current()?.header.generation)
}

/// The current generation (the kernel sets it to the cell number).
///
/// ```
/// forja::registry::set_generation(7).unwrap();
/// assert_eq!(forja::registry::generation().unwrap(), 7);
/// ```
pub fn generation() -> Result<u64> {
    Ok(Registry::current()?
        .header
        .generation
        .load(Ordering::Relaxed))
}

/// Sets the generation recorded with children started from now on.
///
/// ```
/// forja::registry::set_generation(1).unwrap();
/// ```
pub fn set_generation(generation: u64) -> Result<()> {
    Registry::current()?
        .header
        .generation
        .store(generation, Ordering::Relaxed);
    Ok(())
}

/// Makes this process's registry now (if it does not exist yet) and returns
/// `(pid, fd)`: this process's pid and the fd of its registry's `memfd`, for
/// another process to attach with [`Remote::open`].
///
/// The kernel's runner calls it at start-up, before any cell runs, so every
/// cell's copy of forja finds the same registry and the kernel can attach.
/// The fd is close-on-exec (a program started with `exec` does not get it),
/// and a child forked by forja closes it right after making its own registry.
///
/// ```
/// let (pid, fd) = forja::registry::ensure().unwrap();
/// assert_eq!(pid, std::process::id() as i32);
/// assert_eq!(forja::registry::ensure().unwrap(), (pid, fd)); // made once
/// ```
pub fn ensure() -> Result<(i32, i32)> {
    Registry::current()?;
    match parse_env() {
        Some(p) if p.pid == getpid() => Ok((p.pid, p.fd)),
        _ => Err(reg_err(format!(
            "it was made but {ENV} does not name it (was the variable changed?)"
        ))),
    }
}

/// Another process's registry, mapped into this one: what the kernel uses to
/// interrupt the cell running in its runner process, tag the children each
/// cell starts with a generation, and list (and stop) them.
///
/// Everything it touches is atomic, so it is safe while the other process
/// runs. It is `Send + Sync`; dropping it unmaps the memory.
///
/// ```
/// use forja::registry::{self, Remote};
/// let (pid, fd) = registry::ensure().unwrap();
/// let remote = Remote::open(pid, fd).unwrap(); // here: our own registry
/// assert_eq!(remote.owner_pid(), pid);
/// remote.set_generation(3).unwrap();
/// assert_eq!(registry::generation().unwrap(), 3);
/// remote.request_interrupt().unwrap();
/// assert!(registry::interrupted());
/// remote.clear_interrupt().unwrap();
/// assert!(!registry::interrupted());
/// ```
pub struct Remote {
    addr: usize,
    pid: i32,
}

// Safety: the mapping is only accessed through atomics (and fields written
// once before the registry was published).
unsafe impl Send for Remote {}
// Safety: as above.
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
            pid: getpid(),
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
        // Safety: mapping MAP_LEN bytes of a file at least that long; the
        // mapping outlives the fd.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAP_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(err(std::io::Error::last_os_error().to_string()));
        }
        let remote = Remote {
            addr: p as usize,
            pid,
        };
        let h = remote.registry().header;
        if h.magic != MAGIC {
            return Err(err("it is not a forja registry".into()));
        }
        if h.version != VERSION
            || h.slot_count as usize != SLOTS
            || h.slot_size as usize != std::mem::size_of::<Slot>()
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
    /// [`Error::Interrupted`] within [`POLL_INTERVAL`], and every forja call
    /// fails at once until [`clear_interrupt`](Self::clear_interrupt).
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// forja::registry::Remote::open(pid, fd).unwrap().request_interrupt().unwrap();
    /// assert!(forja::Process::new(|| {}).start().is_err());
    /// ```
    pub fn request_interrupt(&self) -> Result<()> {
        self.registry().header.interrupt.store(1, Ordering::SeqCst);
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
        self.registry().header.interrupt.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// Whether that process's interrupt flag is raised.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// assert!(!forja::registry::Remote::open(pid, fd).unwrap().interrupted());
    /// ```
    pub fn interrupted(&self) -> bool {
        self.registry().header.interrupt.load(Ordering::SeqCst) != 0
    }

    /// Sets the generation (the cell number) recorded with the children that
    /// process starts from now on.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// let r = forja::registry::Remote::open(pid, fd).unwrap();
    /// r.set_generation(12).unwrap();
    /// assert_eq!(r.generation().unwrap(), 12);
    /// ```
    pub fn set_generation(&self, generation: u64) -> Result<()> {
        self.registry()
            .header
            .generation
            .store(generation, Ordering::SeqCst);
        Ok(())
    }

    /// The current generation of that process.
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// forja::registry::set_generation(4).unwrap();
    /// assert_eq!(forja::registry::Remote::open(pid, fd).unwrap().generation().unwrap(), 4);
    /// ```
    pub fn generation(&self) -> Result<u64> {
        Ok(self.registry().header.generation.load(Ordering::SeqCst))
    }

    /// That process's children not yet collected by their handles, with
    /// their state (running, ended but not reaped, reaped) and generation.
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
        Ok(self.registry().header.max_children.load(Ordering::Relaxed))
    }

    /// Changes that process's cap on live children (clamped to `1..=SLOTS`).
    ///
    /// ```
    /// let (pid, fd) = forja::registry::ensure().unwrap();
    /// forja::registry::Remote::open(pid, fd).unwrap().set_max_children(5).unwrap();
    /// assert_eq!(forja::registry::max_children().unwrap(), 5);
    /// ```
    pub fn set_max_children(&self, limit: u32) -> Result<()> {
        self.registry()
            .header
            .max_children
            .store(limit.clamp(1, SLOTS as u32), Ordering::Relaxed);
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
            // Safety: pidfd_open; the fd returned is ours.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
            if fd >= 0 {
                // Safety: a fresh fd.
                let fd = unsafe {
                    <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32)
                };
                // The pidfd pins the process: if the pid is still an unreaped
                // child now, the pidfd is that child.
                if !reg.holds_unreaped(pid) {
                    return Ok(false);
                }
                // Safety: pidfd_send_signal on our pidfd, no siginfo.
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
        // Safety: plain kill; the pid is an unreaped child of the owner, so
        // it cannot have been reused.
        let r = unsafe { libc::kill(pid, signal) };
        signal_result(r == 0)
    }
}

fn signal_result(sent: bool) -> Result<bool> {
    if sent {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(Error::os("signalling a child of another process", e))
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Safety: unmapping our own mapping; no reference into it outlives
        // the methods that made one.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, MAP_LEN) };
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("owner_pid", &self.pid)
            .field("generation", &self.generation().unwrap_or(0))
            .field("interrupted", &self.interrupted())
            .field("live_children", &self.live_children())
            .finish()
    }
}
