//! Recording: the ring of fixed-size event records in one shared memfd
//! mapping (found by its memfd's name, see `registry/published.rs`), and the hooks that forja's process,
//! registry and pool code call as processes start, end and are reaped and
//! as pool workers run tasks.

use super::{CAPACITY, VERSION};
use crate::error::{Error, Result};
use crate::identity::ProcessInfo;
use crate::registry::published::{self, TreeMapping};
use crate::shm::AtomicName;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

const MAGIC: u64 = u64::from_le_bytes(*b"FORJATML");
/// The kind of the timeline's memfd (its name is `forja-timeline:PID`).
const MEMFD_KIND: &str = crate::link::TIMELINE_MEMFD_KIND;

pub(super) const KIND_START: u32 = 1;
pub(super) const KIND_EXIT: u32 = 2;
pub(super) const KIND_REAPED: u32 = 3;
pub(super) const KIND_TASK: u32 = 4;

#[repr(C)]
pub(super) struct Header {
    magic: u64,
    version: u32,
    capacity: u32,
    record_size: u32,
    creator_pid: i32,
    /// The memfd inode of the creator's registry, whose cell counter every
    /// process of the tree maps (forked descendants inherit the mapping);
    /// an inode, not an address (`forja::link`: no data address travels).
    cell_registry_ino: u64,
    created_ns: u64,
    /// Next record index (monotonic; slot = index % CAPACITY).
    next: AtomicU64,
    /// Index from which [`timeline()`](super::timeline()) reads (set by
    /// [`reset`](super::reset)).
    reset_at: AtomicU64,
    /// 1 while recording (see [`set_recording`](super::set_recording)).
    recording: AtomicU32,
    _pad: u32,
    _reserved: [AtomicU64; 8],
}

/// One event. `seq` is index + 1 once the record is complete (0 while it is
/// being written), so readers skip torn records.
#[repr(C)]
pub(super) struct Record {
    seq: AtomicU64,
    kind: AtomicU32,
    pid: AtomicI32,
    parent: AtomicI32,
    code: AtomicI32,
    cell: AtomicU64,
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    job: AtomicU64,
    chunk: AtomicU64,
    /// At most 48 bytes.
    name: AtomicName<6>,
    _reserved: [AtomicU64; 2],
}

const MAP_LEN: usize = std::mem::size_of::<Header>() + CAPACITY * std::mem::size_of::<Record>();

/// Per-copy cache of the mapping's address (0: not looked up yet). A forked
/// child inherits both the cache and the mapping, so a cached address is
/// valid in every process that has it.
static MAPPING: TreeMapping = TreeMapping::new();

/// The timeline's mapping: its header and its ring of records.
pub(super) struct RecordRing {
    header: &'static Header,
    ring: &'static [Record],
}

/// One event as it is written into the ring.
#[derive(Clone, Copy, Default)]
struct Event<'a> {
    kind: u32,
    pid: i32,
    code: i32,
    start_ns: u64,
    end_ns: u64,
    job: u64,
    chunk: u64,
    /// Only stored for a start record.
    name: &'a str,
}

/// One event as read back from the ring.
pub(super) struct RawRecord {
    pub idx: u64,
    pub kind: u32,
    pub pid: i32,
    pub parent: i32,
    pub code: i32,
    pub cell: u64,
    pub start: u64,
    pub end: u64,
    pub job: u64,
    pub chunk: u64,
    pub name: String,
}

/// CLOCK_MONOTONIC in ns: the same clock in every process of the machine.
pub(super) fn now_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always there on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

fn from_addr(addr: usize) -> RecordRing {
    // SAFETY: addr is a live mapping of MAP_LEN bytes (checked by the
    // callers), never unmapped; everything written after creation is atomic.
    unsafe {
        RecordRing {
            header: &*(addr as *const Header),
            ring: std::slice::from_raw_parts(
                (addr + std::mem::size_of::<Header>()) as *const Record,
                CAPACITY,
            ),
        }
    }
}

fn tl_err(message: impl Into<String>) -> Error {
    Error::Registry {
        pid: crate::os::pid(),
        message: message.into(),
    }
}

/// The published mapping, if this process has one (inherited or its own).
fn existing() -> Option<RecordRing> {
    MAPPING.existing(find_published).map(from_addr)
}

/// The mapping, made now if there is none.
pub(super) fn current() -> Result<RecordRing> {
    MAPPING.current(find_published, create).map(from_addr)
}

/// The timeline mapping this process holds an fd of (see
/// `registry/published.rs`: so it was made here or inherited by `fork`, not
/// lost in an `exec`): its own if it made one, else the newest inherited.
fn find_published() -> Result<Option<usize>> {
    let Some(p) = published::newest(MEMFD_KIND) else {
        return Ok(None);
    };
    if p.len < MAP_LEN {
        return Err(tl_err(format!(
            "the memfd named {MEMFD_KIND}:{} is mapped shorter than a forja timeline",
            p.pid
        )));
    }
    let header = from_addr(p.addr).header;
    if header.magic != MAGIC {
        return Err(tl_err(format!(
            "the memfd named {MEMFD_KIND}:{} holds memory that is not a forja timeline",
            p.pid
        )));
    }
    if header.version != VERSION
        || header.capacity as usize != CAPACITY
        || header.record_size as usize != std::mem::size_of::<Record>()
    {
        return Err(tl_err(format!(
            "the timeline was made by a different version of forja (layout {VERSION} here, {} \
             there); use one forja version in the whole program or notebook",
            header.version
        )));
    }
    Ok(Some(p.addr))
}

fn create() -> Result<usize> {
    let (_fd, addr) = crate::shm::memfd_mapping(
        &published::memfd_name(MEMFD_KIND, crate::os::pid()),
        MAP_LEN,
        &crate::shm::MemfdSteps {
            make: "making the timeline (memfd_create)",
            size: "sizing the timeline",
            map: "mapping the timeline",
        },
    )?;
    let cell_registry_ino = crate::registry::cell_counter_inode().unwrap_or(0);
    // SAFETY: a fresh zeroed mapping nothing else sees yet.
    unsafe {
        let h = addr as *mut Header;
        (*h).magic = MAGIC;
        (*h).version = VERSION;
        (*h).capacity = CAPACITY as u32;
        (*h).record_size = std::mem::size_of::<Record>() as u32;
        (*h).creator_pid = crate::os::pid();
        (*h).cell_registry_ino = cell_registry_ino;
        (*h).created_ns = now_ns();
    }
    from_addr(addr).header.recording.store(1, Ordering::Release);
    // Published from here on: its memfd's name says whose it is.
    Ok(addr)
}

impl RecordRing {
    fn cell(&self) -> u64 {
        let ino = self.header.cell_registry_ino;
        if ino == 0 {
            return 0;
        }
        // Found once per copy of forja (a `/proc/self/maps` read) and kept:
        // a forked child inherits both the mapping and this cache, so a
        // child's first event reads no file.
        static CACHED_INO: AtomicU64 = AtomicU64::new(0);
        static CACHED_COUNTER: AtomicUsize = AtomicUsize::new(0);
        let counter = if CACHED_INO.load(Ordering::Acquire) == ino {
            CACHED_COUNTER.load(Ordering::Relaxed) as *const AtomicU64
        } else {
            let Some(c) = crate::registry::cell_counter_of(ino) else {
                return 0;
            };
            CACHED_COUNTER.store(c as *const AtomicU64 as usize, Ordering::Relaxed);
            CACHED_INO.store(ino, Ordering::Release);
            c as *const AtomicU64
        };
        // SAFETY: a counter in a registry mapping that is never unmapped,
        // found in this process's own maps (or inherited with this cache by
        // fork, which keeps the mapping at the same address).
        unsafe { (*counter).load(Ordering::Relaxed) }
    }

    /// Whether events are being recorded.
    pub(super) fn recording(&self) -> bool {
        self.header.recording.load(Ordering::Relaxed) != 0
    }

    /// Turns recording on or off.
    pub(super) fn set_recording(&self, on: bool) {
        self.header
            .recording
            .store(u32::from(on), Ordering::Relaxed);
    }

    /// Makes readers start from the next record.
    pub(super) fn reset(&self) {
        let next = self.header.next.load(Ordering::Acquire);
        self.header.reset_at.store(next, Ordering::Release);
    }

    fn slot(&self, idx: u64) -> &Record {
        &self.ring[(idx % CAPACITY as u64) as usize]
    }

    /// Appends one record; returns its index.
    fn append(&self, event: &Event<'_>) -> u64 {
        let idx = self.header.next.fetch_add(1, Ordering::Relaxed);
        self.fill(idx, event);
        idx
    }

    /// Writes record `idx` and publishes it.
    fn fill(&self, idx: u64, e: &Event<'_>) {
        let r = self.slot(idx);
        r.seq.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        r.kind.store(e.kind, Ordering::Relaxed);
        r.pid.store(e.pid, Ordering::Relaxed);
        r.parent.store(crate::os::pid(), Ordering::Relaxed);
        r.code.store(e.code, Ordering::Relaxed);
        // An exit record takes its cell from its start record (and a
        // child ending need not touch the page that holds the counter).
        let cell = if e.kind == KIND_EXIT { 0 } else { self.cell() };
        r.cell.store(cell, Ordering::Relaxed);
        r.start_ns.store(e.start_ns, Ordering::Relaxed);
        r.end_ns.store(e.end_ns, Ordering::Relaxed);
        r.job.store(e.job, Ordering::Relaxed);
        r.chunk.store(e.chunk, Ordering::Relaxed);
        if e.kind == KIND_START {
            r.name.store(e.name);
        }
        r.seq.store(idx + 1, Ordering::Release);
    }

    /// The complete records still in the ring, oldest first, with the index
    /// readers start from ([`reset`](super::reset)) and how many records
    /// after it were overwritten.
    pub(super) fn read(&self) -> (Vec<RawRecord>, u64, u64) {
        let next = self.header.next.load(Ordering::Acquire);
        let reset_at = self.header.reset_at.load(Ordering::Acquire);
        let first = next.saturating_sub(CAPACITY as u64);
        let lost = first.saturating_sub(reset_at);
        let mut out = Vec::with_capacity((next - first) as usize);
        for idx in first..next {
            let r = self.slot(idx);
            let s1 = r.seq.load(Ordering::Acquire);
            if s1 != idx + 1 {
                continue;
            }
            let kind = r.kind.load(Ordering::Relaxed);
            let rec = RawRecord {
                idx,
                kind,
                pid: r.pid.load(Ordering::Relaxed),
                parent: r.parent.load(Ordering::Relaxed),
                code: r.code.load(Ordering::Relaxed),
                cell: r.cell.load(Ordering::Relaxed),
                start: r.start_ns.load(Ordering::Relaxed),
                end: r.end_ns.load(Ordering::Acquire),
                job: r.job.load(Ordering::Relaxed),
                chunk: r.chunk.load(Ordering::Relaxed),
                name: if kind == KIND_START {
                    r.name.load()
                } else {
                    String::new()
                },
            };
            fence(Ordering::Acquire);
            if r.seq.load(Ordering::Relaxed) != s1 {
                continue;
            }
            out.push(rec);
        }
        (out, reset_at, lost)
    }
}

// ---- hooks called by process.rs, the registry and the pool ----

/// The start record of a child about to be forked: its place in the ring is
/// taken before the fork, so it comes before anything the child records.
pub(crate) struct ForkRecord {
    ring: RecordRing,
    idx: u64,
    start_ns: u64,
}

/// Right before a fork: makes sure the mapping exists (so the child inherits
/// it) and reserves the child's start record.
pub(crate) fn before_fork() -> Option<ForkRecord> {
    let ring = current().ok()?;
    if !ring.recording() {
        return None;
    }
    // Finds the cell counter now, so the child inherits it found.
    let _ = ring.cell();
    let idx = ring.header.next.fetch_add(1, Ordering::Relaxed);
    ring.slot(idx).seq.store(0, Ordering::Relaxed);
    Some(ForkRecord {
        ring,
        idx,
        start_ns: now_ns(),
    })
}

/// In the parent, after a successful fork: completes the start record.
pub(crate) fn process_started(record: Option<ForkRecord>, child: &ProcessInfo) {
    let Some(rec) = record else { return };
    let event = Event {
        kind: KIND_START,
        pid: child.pid(),
        start_ns: rec.start_ns,
        name: child.name(),
        ..Event::default()
    };
    rec.ring.fill(rec.idx, &event);
    std::mem::forget(rec);
}

impl Drop for ForkRecord {
    /// The fork failed: the reserved record becomes an empty one.
    fn drop(&mut self) {
        self.ring.fill(self.idx, &Event::default());
    }
}

/// Appends an event that starts and ends now.
fn append_instant(kind: u32, pid: i32, code: i32) {
    if let Some(s) = existing()
        && s.recording()
    {
        let t = now_ns();
        s.append(&Event {
            kind,
            pid,
            code,
            start_ns: t,
            end_ns: t,
            ..Event::default()
        });
    }
}

/// In a forja child, right before it `_exit`s with `code`.
pub(crate) fn process_exiting(code: i32) {
    append_instant(KIND_EXIT, crate::os::pid(), code);
}

/// In the parent, when it reaped `pid` (Python-style `code`).
pub(crate) fn process_reaped(pid: i32, code: i32) {
    append_instant(KIND_REAPED, pid, code);
}

/// A task that a pool worker is running (see [`task_begin`]).
pub(crate) struct TaskToken {
    idx: u64,
}

/// In a pool worker, as it starts a task (chunk `chunk` of job `job`).
pub(crate) fn task_begin(job: u64, chunk: u64) -> Option<TaskToken> {
    let s = existing()?;
    if !s.recording() {
        return None;
    }
    let idx = s.append(&Event {
        kind: KIND_TASK,
        pid: crate::os::pid(),
        start_ns: now_ns(),
        job,
        chunk,
        ..Event::default()
    });
    Some(TaskToken { idx })
}

/// In a pool worker, as it finishes the task.
pub(crate) fn task_end(token: Option<TaskToken>) {
    let (Some(t), Some(s)) = (token, existing()) else {
        return;
    };
    let r = s.slot(t.idx);
    if r.seq.load(Ordering::Acquire) == t.idx + 1 {
        r.end_ns.store(now_ns(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_is_fixed() {
        assert_eq!(std::mem::size_of::<Record>(), 128);
    }
}
