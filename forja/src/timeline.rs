//! What ran, and when: a record of every process forja started (pid, name,
//! start, end, exit code, kernel cell) and of every task a [`Pool`] worker
//! ran, drawn as a Gantt chart by [`timeline()`].
//!
//! ```
//! use forja::prelude::*;
//!
//! forja::timeline::reset().unwrap();
//! let p = Process::new(|| {}).with_name("uno");
//! p.start().unwrap();
//! p.join().unwrap();
//! let t = forja::timeline();
//! assert_eq!(t.lanes().len(), 1);
//! assert_eq!(t.lanes()[0].exitcode, Some(0));
//! assert!(t.svg().contains("data-name=\"uno\""));
//! ```
//!
//! # Where the records live
//!
//! Records must be visible across processes (a pool worker records its own
//! tasks, a child its own exit) and across notebook cells (each cell has its
//! own copy of forja's statics). They live in one `MAP_SHARED` mapping (a
//! `memfd`), made on first use — at the latest by the first fork — and named
//! in the environment variable [`ENV`] as `pid:fd:address:inode`, like the
//! [`registry`](crate::registry). Children forked by forja inherit the
//! mapping and write into the same one, so one picture shows a whole tree of
//! processes. The layout starts with a magic number and a [`VERSION`].
//!
//! The mapping is a ring of [`CAPACITY`] fixed-size records with an atomic
//! write index: recording an event costs a clock read, one `fetch_add` and a
//! few relaxed stores, with no lock and no system call. When more than
//! [`CAPACITY`] events happen, the oldest are overwritten (the timeline says
//! how many it lost).
//!
//! # What is recorded
//!
//! * the parent, when it forks a child: its pid, name, start time and the
//!   current generation (the kernel's cell number, see
//!   [`registry::generation`](crate::registry::generation));
//! * the child itself, as it ends normally: its end time and exit code;
//! * the parent, when it reaps the child: the exit code (negative for a
//!   signal, so a killed child is shown as killed) and, if the child could
//!   not say when it ended, the reaping time;
//! * a pool worker, around every task (a chunk of items): start and end.

use crate::display;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

/// The environment variable that names the timeline mapping.
pub const ENV: &str = "FORJA_TIMELINE";
/// Layout version; bump it whenever the header or the records change.
pub const VERSION: u32 = 1;
/// How many events the ring keeps (older ones are overwritten).
pub const CAPACITY: usize = 16384;

const MAGIC: u64 = u64::from_le_bytes(*b"FORJATML");
const NAME_WORDS: usize = 6;
const NAME_BYTES: usize = NAME_WORDS * 8;
const MEMFD_NAME: &str = "forja-timeline";

const KIND_START: u32 = 1;
const KIND_EXIT: u32 = 2;
const KIND_REAPED: u32 = 3;
const KIND_TASK: u32 = 4;

#[repr(C)]
struct Header {
    magic: u64,
    version: u32,
    capacity: u32,
    record_size: u32,
    creator_pid: i32,
    /// Address of the creator's generation counter (in its registry mapping,
    /// which forked descendants inherit too).
    generation_addr: u64,
    created_ns: u64,
    /// Next record index (monotonic; slot = index % CAPACITY).
    next: AtomicU64,
    /// Index from which [`timeline()`] reads (set by [`reset`]).
    reset_at: AtomicU64,
    /// 1 while recording (see [`set_recording`]).
    recording: AtomicU32,
    _pad: u32,
    _reserved: [AtomicU64; 8],
}

/// One event. `seq` is index + 1 once the record is complete (0 while it is
/// being written), so readers skip torn records.
#[repr(C)]
struct Record {
    seq: AtomicU64,
    kind: AtomicU32,
    pid: AtomicI32,
    parent: AtomicI32,
    code: AtomicI32,
    generation: AtomicU64,
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    job: AtomicU64,
    chunk: AtomicU64,
    name: [AtomicU64; NAME_WORDS],
    _reserved: [AtomicU64; 2],
}

const MAP_LEN: usize = std::mem::size_of::<Header>() + CAPACITY * std::mem::size_of::<Record>();

/// Per-copy cache of the mapping's address (0: not looked up yet). A forked
/// child inherits both the cache and the mapping, so a cached address is
/// valid in every process that has it.
static CACHED_ADDR: AtomicUsize = AtomicUsize::new(0);
static CREATE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Shared {
    header: &'static Header,
    ring: &'static [Record],
}

fn getpid() -> i32 {
    crate::sync::futex::my_pid() as i32
}

/// CLOCK_MONOTONIC in ns: the same clock in every process of the machine.
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Safety: clock_gettime writes into a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn from_addr(addr: usize) -> Shared {
    // Safety: addr is a live mapping of MAP_LEN bytes (checked by the
    // callers), never unmapped; everything written after creation is atomic.
    unsafe {
        Shared {
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
        pid: getpid(),
        message: message.into(),
    }
}

/// The published mapping, if this process has one (inherited or its own).
fn existing() -> Option<Shared> {
    let cached = CACHED_ADDR.load(Ordering::Acquire);
    if cached != 0 {
        return Some(from_addr(cached));
    }
    let addr = find_published().ok().flatten()?;
    CACHED_ADDR.store(addr, Ordering::Release);
    Some(from_addr(addr))
}

/// The mapping, made now if there is none.
fn current() -> Result<Shared> {
    if let Some(s) = existing() {
        return Ok(s);
    }
    let _guard = CREATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(addr) = find_published()? {
        CACHED_ADDR.store(addr, Ordering::Release);
        return Ok(from_addr(addr));
    }
    let addr = create()?;
    CACHED_ADDR.store(addr, Ordering::Release);
    Ok(from_addr(addr))
}

/// Parses [`ENV`] and checks that its fd is still our memfd (so the mapping
/// was inherited by `fork`, not lost in an `exec`).
fn find_published() -> Result<Option<usize>> {
    let Ok(value) = std::env::var(ENV) else {
        return Ok(None);
    };
    let mut parts = value.split(':');
    let (Some(_pid), Some(fd), Some(addr), Some(ino)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let (Ok(fd), Ok(addr), Ok(ino)) = (
        fd.parse::<i32>(),
        usize::from_str_radix(addr.trim_start_matches("0x"), 16),
        ino.parse::<u64>(),
    ) else {
        return Ok(None);
    };
    // Safety: fstat into a zeroed stat we own.
    let st_ino = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st.st_ino)
    };
    if addr == 0 || st_ino != Some(ino) {
        return Ok(None);
    }
    #[cfg(target_os = "linux")]
    {
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
        if !link.to_string_lossy().contains(MEMFD_NAME) {
            return Ok(None);
        }
    }
    let header = from_addr(addr).header;
    if header.magic != MAGIC {
        return Err(tl_err(format!(
            "{ENV} points at memory that is not a forja timeline"
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
    Ok(Some(addr))
}

fn create() -> Result<usize> {
    let (fd, addr) = crate::shm::memfd_mapping(
        c"forja-timeline",
        MAP_LEN,
        &crate::shm::MemfdSteps {
            make: "making the timeline (memfd_create)",
            size: "sizing the timeline",
            map: "mapping the timeline",
        },
    )?;
    let generation_addr = crate::registry::generation_counter()
        .map(|g| g as *const AtomicU64 as u64)
        .unwrap_or(0);
    // Safety: a fresh zeroed mapping nothing else sees yet.
    unsafe {
        let h = addr as *mut Header;
        (*h).magic = MAGIC;
        (*h).version = VERSION;
        (*h).capacity = CAPACITY as u32;
        (*h).record_size = std::mem::size_of::<Record>() as u32;
        (*h).creator_pid = getpid();
        (*h).generation_addr = generation_addr;
        (*h).created_ns = now_ns();
    }
    from_addr(addr).header.recording.store(1, Ordering::Release);
    let ino = {
        // Safety: fstat into a zeroed stat we own.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(fd, &mut st);
            st.st_ino
        }
    };
    let value = format!("{}:{fd}:{addr:#x}:{ino}", getpid());
    // Safety: set once per process tree, on first use (as the registry does).
    unsafe { std::env::set_var(ENV, value) };
    Ok(addr)
}

impl Shared {
    fn generation(&self) -> u64 {
        let a = self.header.generation_addr as usize;
        if a == 0 {
            return 0;
        }
        // Safety: the creator's registry mapping is never unmapped and every
        // process that finds this timeline is the creator or was forked from
        // it (the fd check), so it has that mapping at the same address.
        unsafe { (*(a as *const AtomicU64)).load(Ordering::Relaxed) }
    }

    fn recording(&self) -> bool {
        self.header.recording.load(Ordering::Relaxed) != 0
    }

    /// Appends one record; returns its index.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        kind: u32,
        pid: i32,
        code: i32,
        start_ns: u64,
        end_ns: u64,
        job: u64,
        chunk: u64,
        name: &str,
    ) -> u64 {
        let idx = self.header.next.fetch_add(1, Ordering::Relaxed);
        self.fill(idx, kind, pid, code, start_ns, end_ns, job, chunk, name);
        idx
    }

    /// Writes record `idx` and publishes it.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        idx: u64,
        kind: u32,
        pid: i32,
        code: i32,
        start_ns: u64,
        end_ns: u64,
        job: u64,
        chunk: u64,
        name: &str,
    ) {
        let r = &self.ring[(idx % CAPACITY as u64) as usize];
        r.seq.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        r.kind.store(kind, Ordering::Relaxed);
        r.pid.store(pid, Ordering::Relaxed);
        r.parent.store(getpid(), Ordering::Relaxed);
        r.code.store(code, Ordering::Relaxed);
        // An exit record takes its generation from its start record (and a
        // child ending need not touch the page that holds the counter).
        let generation = if kind == KIND_EXIT {
            0
        } else {
            self.generation()
        };
        r.generation.store(generation, Ordering::Relaxed);
        r.start_ns.store(start_ns, Ordering::Relaxed);
        r.end_ns.store(end_ns, Ordering::Relaxed);
        r.job.store(job, Ordering::Relaxed);
        r.chunk.store(chunk, Ordering::Relaxed);
        if kind == KIND_START {
            store_name(&r.name, name);
        }
        r.seq.store(idx + 1, Ordering::Release);
    }
}

fn store_name(words: &[AtomicU64; NAME_WORDS], name: &str) {
    let mut bytes = [0u8; NAME_BYTES];
    let mut len = name.len().min(NAME_BYTES);
    while !name.is_char_boundary(len) {
        len -= 1;
    }
    bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
    for (i, w) in words.iter().enumerate() {
        let chunk: [u8; 8] = bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes");
        w.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
    }
}

fn load_name(words: &[AtomicU64; NAME_WORDS]) -> String {
    let mut bytes = [0u8; NAME_BYTES];
    for (i, w) in words.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

// ---- hooks called by process.rs, registry.rs and pool.rs ----

/// The start record of a child about to be forked: its place in the ring is
/// taken before the fork, so it comes before anything the child records.
pub(crate) struct ForkRecord {
    shared: Shared,
    idx: u64,
    start_ns: u64,
}

/// Right before a fork: makes sure the mapping exists (so the child inherits
/// it) and reserves the child's start record.
pub(crate) fn before_fork() -> Option<ForkRecord> {
    let shared = current().ok()?;
    if !shared.recording() {
        return None;
    }
    let idx = shared.header.next.fetch_add(1, Ordering::Relaxed);
    let r = &shared.ring[(idx % CAPACITY as u64) as usize];
    r.seq.store(0, Ordering::Relaxed);
    Some(ForkRecord {
        shared,
        idx,
        start_ns: now_ns(),
    })
}

/// In the parent, after a successful fork: completes the start record.
pub(crate) fn process_started(record: Option<ForkRecord>, pid: i32, name: &str) {
    let Some(rec) = record else { return };
    rec.shared
        .fill(rec.idx, KIND_START, pid, 0, rec.start_ns, 0, 0, 0, name);
    std::mem::forget(rec);
}

impl Drop for ForkRecord {
    /// The fork failed: the reserved record becomes an empty one.
    fn drop(&mut self) {
        self.shared.fill(self.idx, 0, 0, 0, 0, 0, 0, 0, "");
    }
}

/// In a forja child, right before it `_exit`s with `code`.
pub(crate) fn process_exiting(code: i32) {
    if let Some(s) = existing()
        && s.recording()
    {
        let t = now_ns();
        s.append(KIND_EXIT, getpid(), code, t, t, 0, 0, "");
    }
}

/// In the parent, when it reaped `pid` (Python-style `code`).
pub(crate) fn process_reaped(pid: i32, code: i32) {
    if let Some(s) = existing()
        && s.recording()
    {
        let t = now_ns();
        s.append(KIND_REAPED, pid, code, t, t, 0, 0, "");
    }
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
    let idx = s.append(KIND_TASK, getpid(), 0, now_ns(), 0, job, chunk, "");
    Some(TaskToken { idx })
}

/// In a pool worker, as it finishes the task.
pub(crate) fn task_end(token: Option<TaskToken>) {
    let (Some(t), Some(s)) = (token, existing()) else {
        return;
    };
    let r = &s.ring[(t.idx % CAPACITY as u64) as usize];
    if r.seq.load(Ordering::Acquire) == t.idx + 1 {
        r.end_ns.store(now_ns(), Ordering::Release);
    }
}

// ---- public control ----

/// Forgets what was recorded so far: the next [`timeline()`] shows only what
/// runs from now on (in every process that shares the timeline).
///
/// ```
/// forja::timeline::reset().unwrap();
/// assert!(forja::timeline().is_empty());
/// ```
pub fn reset() -> Result<()> {
    let s = current()?;
    let next = s.header.next.load(Ordering::Acquire);
    s.header.reset_at.store(next, Ordering::Release);
    Ok(())
}

/// Turns recording on or off (it is on by default); for example to measure
/// what recording costs.
///
/// ```
/// forja::timeline::set_recording(false).unwrap();
/// assert!(!forja::timeline::is_recording());
/// forja::timeline::set_recording(true).unwrap();
/// ```
pub fn set_recording(on: bool) -> Result<()> {
    current()?
        .header
        .recording
        .store(u32::from(on), Ordering::Relaxed);
    Ok(())
}

/// Whether events are being recorded.
///
/// ```
/// assert!(forja::timeline::is_recording());
/// ```
pub fn is_recording() -> bool {
    current().map(|s| s.recording()).unwrap_or(false)
}

// ---- reading ----

/// One task a pool worker ran (one chunk of a `map`, or one `apply`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TaskSpan {
    /// The pool job it belonged to (one `map` or `apply_async` call).
    pub job: u64,
    /// Which chunk of that job.
    pub chunk: u64,
    /// When it started, in ms from the timeline's origin.
    pub start_ms: f64,
    /// When it ended, in ms from the origin (`None`: still running, or the
    /// worker died during it).
    pub end_ms: Option<f64>,
}

/// One process in a [`Timeline`]: a lane of the chart.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Lane {
    /// Its pid.
    pub pid: i32,
    /// Its name (`Process-1`, `ForkPoolWorker-2`, or the name given).
    pub name: String,
    /// The process that started it.
    pub parent_pid: i32,
    /// The generation (kernel cell) it was started in.
    pub generation: u64,
    /// When it started, in ms from the timeline's origin (negative when it
    /// started before, e.g. a pool made in an earlier cell).
    pub start_ms: f64,
    /// When it ended (`None`: still running, or not yet reaped after a kill).
    pub end_ms: Option<f64>,
    /// Its exit code: negative for a signal (`-9` = SIGKILL), as in Python.
    pub exitcode: Option<i32>,
    /// The pool tasks it ran (empty unless it is a pool worker).
    pub tasks: Vec<TaskSpan>,
}

impl Lane {
    /// Whether it ran pool tasks.
    ///
    /// ```
    /// let t = forja::timeline();
    /// assert!(t.lanes().iter().all(|l| l.is_pool_worker() == !l.tasks.is_empty()));
    /// ```
    pub fn is_pool_worker(&self) -> bool {
        !self.tasks.is_empty()
    }
}

/// What ran: the processes and pool tasks of the current kernel cell (or,
/// outside the kernel, of the whole program since it started or since
/// [`reset`]). Made by [`timeline()`]; draws itself as an SVG Gantt chart
/// ([`svg`](Timeline::svg)), prints as a text table (`Display`).
///
/// ```
/// use forja::prelude::*;
/// forja::timeline::reset().unwrap();
/// let procs: Vec<Process> = (0..2).map(|_| Process::new(|| {})).collect();
/// for p in &procs { p.start().unwrap(); }
/// for p in &procs { p.join().unwrap(); }
/// let t = forja::timeline();
/// assert_eq!(t.lanes().len(), 2);
/// println!("{t}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    generation: Option<u64>,
    lanes: Vec<Lane>,
    span_ms: f64,
    lost: u64,
}

/// The timeline of what ran in the current kernel cell (records of the
/// current [generation](crate::registry::generation)); outside the kernel,
/// of everything since the program started or since [`timeline::reset`](reset).
///
/// ```
/// let t = forja::timeline();
/// println!("{t}");
/// let _svg: String = t.svg();
/// ```
pub fn timeline() -> Timeline {
    if display::in_kernel() {
        let g = crate::registry::generation().unwrap_or(0);
        Timeline::of_generation(g)
    } else {
        Timeline::all()
    }
}

struct LaneBuild {
    pid: i32,
    name: String,
    parent: i32,
    generation: u64,
    selected: bool,
    start: u64,
    exit: Option<(u64, i32)>,
    reaped: Option<(u64, i32)>,
    tasks: Vec<(u64, u64, u64, Option<u64>)>,
}

struct RawRecord {
    idx: u64,
    kind: u32,
    pid: i32,
    parent: i32,
    code: i32,
    generation: u64,
    start: u64,
    end: u64,
    job: u64,
    chunk: u64,
    name: String,
}

fn read_records(s: &Shared) -> (Vec<RawRecord>, u64, u64) {
    let next = s.header.next.load(Ordering::Acquire);
    let reset_at = s.header.reset_at.load(Ordering::Acquire);
    let first = next.saturating_sub(CAPACITY as u64);
    let lost = first.saturating_sub(reset_at);
    let mut out = Vec::with_capacity((next - first) as usize);
    for idx in first..next {
        let r = &s.ring[(idx % CAPACITY as u64) as usize];
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
            generation: r.generation.load(Ordering::Relaxed),
            start: r.start_ns.load(Ordering::Relaxed),
            end: r.end_ns.load(Ordering::Acquire),
            job: r.job.load(Ordering::Relaxed),
            chunk: r.chunk.load(Ordering::Relaxed),
            name: if kind == KIND_START {
                load_name(&r.name)
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

impl Timeline {
    /// Everything recorded since the program started or since [`reset`],
    /// whatever the generation.
    ///
    /// ```
    /// let t = forja::Timeline::all();
    /// assert!(t.generation().is_none());
    /// ```
    pub fn all() -> Timeline {
        Self::build(None)
    }

    /// What was started (and the pool tasks run) in generation `generation`
    /// (a kernel cell), since the last [`reset`].
    ///
    /// ```
    /// let t = forja::Timeline::of_generation(0);
    /// assert_eq!(t.generation(), Some(0));
    /// ```
    pub fn of_generation(generation: u64) -> Timeline {
        Self::build(Some(generation))
    }

    fn build(generation: Option<u64>) -> Timeline {
        let now = now_ns();
        let Ok(s) = current() else {
            return Timeline {
                generation,
                lanes: Vec::new(),
                span_ms: 0.0,
                lost: 0,
            };
        };
        let (records, reset_at, lost) = read_records(&s);
        let wanted = |g: u64, idx: u64| idx >= reset_at && generation.is_none_or(|w| w == g);
        let mut lanes: Vec<LaneBuild> = Vec::new();
        let mut by_pid: HashMap<i32, usize> = HashMap::new();
        for r in records {
            match r.kind {
                KIND_START => {
                    by_pid.insert(r.pid, lanes.len());
                    lanes.push(LaneBuild {
                        pid: r.pid,
                        name: r.name,
                        parent: r.parent,
                        generation: r.generation,
                        selected: wanted(r.generation, r.idx),
                        start: r.start,
                        exit: None,
                        reaped: None,
                        tasks: Vec::new(),
                    });
                }
                KIND_EXIT | KIND_REAPED | KIND_TASK => {
                    let i = match by_pid.get(&r.pid) {
                        Some(&i) => i,
                        None => {
                            // Its start was overwritten or predates the
                            // timeline: a lane with what we know.
                            by_pid.insert(r.pid, lanes.len());
                            lanes.push(LaneBuild {
                                pid: r.pid,
                                name: format!("pid {}", r.pid),
                                parent: 0,
                                generation: r.generation,
                                selected: false,
                                start: r.start,
                                exit: None,
                                reaped: None,
                                tasks: Vec::new(),
                            });
                            lanes.len() - 1
                        }
                    };
                    let lane = &mut lanes[i];
                    match r.kind {
                        KIND_EXIT => lane.exit = Some((r.end, r.code)),
                        KIND_REAPED => lane.reaped = Some((r.end, r.code)),
                        _ => {
                            if wanted(r.generation, r.idx) {
                                lane.tasks.push((
                                    r.job,
                                    r.chunk,
                                    r.start,
                                    (r.end != 0).then_some(r.end),
                                ));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        lanes.retain(|l| l.selected || !l.tasks.is_empty());
        lanes.sort_by_key(|l| (l.start, l.pid));
        // The origin: the first thing that happened in the selection.
        let origin = lanes
            .iter()
            .flat_map(|l| {
                let own = l.selected.then_some(l.start);
                own.into_iter().chain(l.tasks.iter().map(|t| t.2))
            })
            .min()
            .unwrap_or(now);
        let ms = |t: u64| (t as f64 - origin as f64) / 1e6;
        let mut end_max = origin;
        let lanes: Vec<Lane> = lanes
            .into_iter()
            .map(|l| {
                let end = l.exit.map(|e| e.0).or(l.reaped.map(|r| r.0));
                let code = match (l.reaped, l.exit) {
                    (Some((_, c)), _) if c != crate::registry::STATUS_UNKNOWN => Some(c),
                    (_, Some((_, c))) => Some(c),
                    _ => None,
                };
                end_max = end_max.max(end.unwrap_or(now));
                let tasks = l
                    .tasks
                    .iter()
                    .map(|&(job, chunk, t0, t1)| {
                        end_max = end_max.max(t1.unwrap_or(now));
                        TaskSpan {
                            job,
                            chunk,
                            start_ms: ms(t0),
                            end_ms: t1.map(ms),
                        }
                    })
                    .collect();
                Lane {
                    pid: l.pid,
                    name: l.name,
                    parent_pid: l.parent,
                    generation: l.generation,
                    start_ms: ms(l.start),
                    end_ms: end.map(ms),
                    exitcode: code,
                    tasks,
                }
            })
            .collect();
        Timeline {
            generation,
            span_ms: if lanes.is_empty() { 0.0 } else { ms(end_max) },
            lanes,
            lost,
        }
    }

    /// The generation shown (`None`: all of them).
    ///
    /// ```
    /// assert_eq!(forja::Timeline::of_generation(3).generation(), Some(3));
    /// ```
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// One lane per process, in order of start.
    ///
    /// ```
    /// for lane in forja::timeline().lanes() {
    ///     println!("{} {} {:?}", lane.pid, lane.name, lane.exitcode);
    /// }
    /// ```
    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// Whether nothing was recorded.
    ///
    /// ```
    /// forja::timeline::reset().unwrap();
    /// assert!(forja::timeline().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// How many pool tasks it shows.
    ///
    /// ```
    /// forja::timeline::reset().unwrap();
    /// let pool = forja::Pool::new(2).unwrap();
    /// pool.chunksize(1).map(|x: u32| x, 0..6).unwrap();
    /// assert_eq!(forja::timeline().task_count(), 6);
    /// ```
    pub fn task_count(&self) -> usize {
        self.lanes.iter().map(|l| l.tasks.len()).sum()
    }

    /// From the first start to the last end (or now, if something still
    /// runs), in ms.
    ///
    /// ```
    /// assert!(forja::timeline().span_ms() >= 0.0);
    /// ```
    pub fn span_ms(&self) -> f64 {
        self.span_ms
    }

    /// How many events were overwritten before they could be shown (more
    /// than [`CAPACITY`] since the last [`reset`]).
    ///
    /// ```
    /// assert_eq!(forja::timeline().lost_events(), 0);
    /// ```
    pub fn lost_events(&self) -> u64 {
        self.lost
    }

    /// The most processes that were alive at the same moment (1 for
    /// processes run one after another).
    ///
    /// ```
    /// forja::timeline::reset().unwrap();
    /// assert_eq!(forja::timeline().max_parallel_processes(), 0);
    /// ```
    pub fn max_parallel_processes(&self) -> usize {
        let end = self.span_ms;
        max_overlap(
            self.lanes
                .iter()
                .map(|l| (l.start_ms, l.end_ms.unwrap_or(end))),
        )
    }

    /// The most pool tasks that ran at the same moment.
    ///
    /// ```
    /// forja::timeline::reset().unwrap();
    /// assert_eq!(forja::timeline().max_parallel_tasks(), 0);
    /// ```
    pub fn max_parallel_tasks(&self) -> usize {
        let end = self.span_ms;
        max_overlap(
            self.lanes
                .iter()
                .flat_map(|l| l.tasks.iter())
                .map(|t| (t.start_ms, t.end_ms.unwrap_or(end))),
        )
    }

    fn title(&self) -> String {
        let mut t = String::from("forja timeline");
        if let Some(g) = self.generation {
            let _ = write!(t, ", cell {g}");
        }
        let n = self.lanes.len();
        let _ = write!(
            t,
            ": {n} process{}, {} ms",
            if n == 1 { "" } else { "es" },
            fmt_ms(self.span_ms, self.span_ms)
        );
        if n > 0 {
            let _ = write!(t, ", at most {} at once", self.max_parallel_processes());
        }
        let tasks = self.task_count();
        if tasks > 0 {
            let _ = write!(
                t,
                "; {tasks} pool task{}, at most {} at once",
                if tasks == 1 { "" } else { "s" },
                self.max_parallel_tasks()
            );
        }
        if self.lost > 0 {
            let _ = write!(t, " ({} older events lost)", self.lost);
        }
        t
    }

    /// The Gantt chart as an SVG document: one `<g class="lane"
    /// data-pid=".." data-name="..">` per process, a bar from its start to its
    /// end coloured by how it ended (green: exit 0, red: other exit code,
    /// orange: killed by a signal, blue: still running), the exit code after
    /// the bar, pool tasks as segments inside their worker's lane, and a time
    /// axis in ms.
    ///
    /// ```
    /// let svg = forja::timeline().svg();
    /// assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    /// ```
    pub fn svg(&self) -> String {
        render_svg(self)
    }

    /// Shows the chart: as a picture in the forja kernel, as a text table
    /// elsewhere.
    ///
    /// ```
    /// forja::timeline().show().unwrap();
    /// ```
    pub fn show(&self) -> Result<()> {
        if display::in_kernel() {
            display::display(&display::Data::new().text(self.to_string()).svg(self.svg()))?;
        } else {
            println!("{self}");
        }
        Ok(())
    }

    /// How evcxr shows a cell's final value: the SVG chart and the text
    /// table (a cell ending in `forja::timeline()` shows the picture).
    ///
    /// ```
    /// forja::timeline().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        crate::rich::emit(&[
            ("text/plain", self.to_string()),
            ("image/svg+xml", self.svg()),
        ]);
    }
}

fn max_overlap(spans: impl Iterator<Item = (f64, f64)>) -> usize {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for (a, b) in spans {
        events.push((a, 1));
        events.push((b.max(a), -1));
    }
    // Ends before starts at the same instant: touching spans do not overlap.
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        best = best.max(cur);
    }
    best as usize
}

/// `x` ms with a precision that suits a chart spanning `span` ms.
fn fmt_ms(x: f64, span: f64) -> String {
    if span < 10.0 {
        format!("{x:.2}")
    } else if span < 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

fn exit_label(code: Option<i32>, ended: bool) -> String {
    match code {
        Some(0) => "exit 0".into(),
        Some(c) if c > 0 => format!("exit {c}"),
        Some(c) => match -c {
            libc::SIGTERM => "SIGTERM".into(),
            libc::SIGKILL => "SIGKILL".into(),
            libc::SIGINT => "SIGINT".into(),
            libc::SIGSEGV => "SIGSEGV".into(),
            libc::SIGABRT => "SIGABRT".into(),
            s => format!("signal {s}"),
        },
        None if ended => "exit ?".into(),
        None => "running".into(),
    }
}

fn status_colour(code: Option<i32>, ended: bool) -> &'static str {
    match code {
        Some(0) => "#43a047",
        Some(c) if c > 0 => "#e53935",
        Some(_) => "#fb8c00",
        None if ended => "#9e9e9e",
        None => "#1e88e5",
    }
}

const JOB_COLOURS: [&str; 6] = [
    "#3949ab", "#00897b", "#8e24aa", "#6d4c41", "#c0ca33", "#d81b60",
];

/// Escapes text for XML content and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(1e-6);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

fn render_svg(t: &Timeline) -> String {
    const LABEL_W: f64 = 210.0;
    const PLOT_W: f64 = 600.0;
    const RIGHT_W: f64 = 80.0;
    const TOP: f64 = 34.0;
    const LANE_H: f64 = 26.0;
    const AXIS_H: f64 = 30.0;
    let width = LABEL_W + PLOT_W + RIGHT_W;
    let n = t.lanes.len().max(1);
    let height = TOP + LANE_H * n as f64 + AXIS_H;
    let span = if t.span_ms > 0.0 { t.span_ms } else { 1.0 };
    let x = |ms: f64| LABEL_W + (ms.clamp(0.0, span) / span) * PLOT_W;
    let mut s = String::with_capacity(4096 + 400 * t.lanes.len());
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"forja-timeline\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" \
         font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        s,
        "<text class=\"title\" x=\"8\" y=\"20\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        xml_escape(&t.title())
    );
    // Grid and axis.
    let axis_y = TOP + LANE_H * n as f64;
    let step = nice_step(span, 8.0);
    let _ = writeln!(s, "<g class=\"axis\">");
    let mut tick = 0.0;
    while tick <= span + step * 1e-9 {
        let tx = x(tick);
        let _ = writeln!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"{TOP}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            axis_y + 4.0,
            axis_y + 17.0,
            fmt_tick(tick, step)
        );
        tick += step;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{LABEL_W}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\" stroke=\"#757575\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555\">ms</text>",
        LABEL_W + PLOT_W,
        LABEL_W + PLOT_W + 8.0,
        axis_y + 17.0
    );
    let _ = writeln!(s, "</g>");
    if t.lanes.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{LABEL_W}\" y=\"{:.1}\" fill=\"#757575\">no processes ran</text>",
            TOP + 17.0
        );
    }
    for (i, lane) in t.lanes.iter().enumerate() {
        let y = TOP + LANE_H * i as f64;
        let ended = lane.end_ms.is_some();
        let colour = status_colour(lane.exitcode, ended);
        let label = exit_label(lane.exitcode, ended);
        let end_ms = lane.end_ms.unwrap_or(span);
        let (x0, x1) = (x(lane.start_ms), x(end_ms).max(x(lane.start_ms) + 1.0));
        let _ = writeln!(
            s,
            "<g class=\"lane\" data-pid=\"{}\" data-name=\"{}\" data-exitcode=\"{}\">",
            lane.pid,
            xml_escape(&lane.name),
            lane.exitcode.map(|c| c.to_string()).unwrap_or_default()
        );
        if i % 2 == 1 {
            let _ = writeln!(
                s,
                "<rect x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{LANE_H}\" fill=\"#f7f7f7\"/>"
            );
        }
        let mut name = lane.name.clone();
        if name.chars().count() > 20 {
            name = name.chars().take(19).collect::<String>() + "…";
        }
        let _ = writeln!(
            s,
            "<text class=\"label\" x=\"8\" y=\"{:.1}\">{} <tspan fill=\"#757575\">({})</tspan></text>",
            y + 17.0,
            xml_escape(&name),
            lane.pid
        );
        let worker = lane.is_pool_worker();
        let (fill, opacity) = if worker {
            ("#cfd8dc", "1")
        } else {
            (colour, "0.85")
        };
        let _ = writeln!(
            s,
            "<rect class=\"bar\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             rx=\"3\" fill=\"{fill}\" fill-opacity=\"{opacity}\" stroke=\"{colour}\">\
             <title>{} (pid {}): {}–{} ms, {}</title></rect>",
            y + 5.0,
            x1 - x0,
            LANE_H - 10.0,
            xml_escape(&lane.name),
            lane.pid,
            fmt_ms(lane.start_ms, span),
            lane.end_ms.map(|e| fmt_ms(e, span)).unwrap_or("…".into()),
            label
        );
        if lane.start_ms < 0.0 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#757575\" font-size=\"10\">◀</text>",
                x0 + 2.0,
                y + 17.0
            );
        }
        // Tasks: tasks narrower than 2 px that follow each other are merged
        // into one segment, so that a long map stays a light picture.
        let tiny = 2.0 * span / PLOT_W;
        let mut merged: Vec<(f64, f64, u64, usize)> = Vec::new();
        for task in &lane.tasks {
            let a = task.start_ms;
            let b = task.end_ms.unwrap_or(end_ms);
            if let Some(last) = merged.last_mut()
                && last.2 == task.job
                && last.1 - last.0 < tiny
                && b - a < tiny
                && a - last.1 < tiny / 4.0
            {
                last.1 = last.1.max(b);
                last.3 += 1;
                continue;
            }
            merged.push((a, b, task.job, 1));
        }
        for (a, b, job, count) in merged {
            let (tx0, tx1) = (x(a), x(b).max(x(a) + 1.0));
            let what = if count == 1 {
                "task".to_owned()
            } else {
                format!("{count} tasks")
            };
            let _ = writeln!(
                s,
                "<rect class=\"task\" x=\"{tx0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                 fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"0.75\"><title>{what} of job {job}: {}–{} ms</title></rect>",
                y + 8.0,
                tx1 - tx0,
                LANE_H - 16.0,
                JOB_COLOURS[(job as usize) % JOB_COLOURS.len()],
                fmt_ms(a, span),
                fmt_ms(b, span)
            );
        }
        let _ = writeln!(
            s,
            "<text class=\"exit\" x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" font-weight=\"bold\">{}</text>",
            x1 + 4.0,
            y + 17.0,
            xml_escape(&label)
        );
        let _ = writeln!(s, "</g>");
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_tick(tick: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{tick:.0}")
    } else if step >= 0.1 {
        format!("{tick:.1}")
    } else {
        format!("{tick:.2}")
    }
}

impl fmt::Display for Timeline {
    /// A text table with a small bar per process (`█` running, `▒` a pool
    /// task).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BAR: usize = 40;
        writeln!(f, "{}", self.title())?;
        if self.lanes.is_empty() {
            return write!(f, "  (no processes ran)");
        }
        let span = if self.span_ms > 0.0 {
            self.span_ms
        } else {
            1.0
        };
        let col = |ms: f64| ((ms.clamp(0.0, span) / span) * BAR as f64).floor() as usize;
        writeln!(
            f,
            "  {:>7}  {:<20} {:>9} {:>9}  {:<8} |0{:>w$}|",
            "pid",
            "name",
            "start ms",
            "end ms",
            "exit",
            format!("{} ms", fmt_ms(self.span_ms, span)),
            w = BAR - 1
        )?;
        for (i, lane) in self.lanes.iter().enumerate() {
            let ended = lane.end_ms.is_some();
            let end = lane.end_ms.unwrap_or(span);
            let mut bar = vec![' '; BAR];
            let (a, b) = (col(lane.start_ms), col(end).max(col(lane.start_ms) + 1));
            let worker = lane.is_pool_worker();
            for c in bar.iter_mut().take(b.min(BAR)).skip(a) {
                *c = if worker { '·' } else { '█' };
            }
            for t in &lane.tasks {
                let (ta, tb) = (
                    col(t.start_ms),
                    col(t.end_ms.unwrap_or(end)).max(col(t.start_ms) + 1),
                );
                for c in bar.iter_mut().take(tb.min(BAR)).skip(ta) {
                    *c = '▒';
                }
            }
            let mut name = lane.name.clone();
            if name.chars().count() > 20 {
                name = name.chars().take(19).collect::<String>() + "…";
            }
            write!(
                f,
                "  {:>7}  {:<20} {:>9} {:>9}  {:<8} |{}|",
                lane.pid,
                name,
                fmt_ms(lane.start_ms, span),
                lane.end_ms
                    .map(|e| fmt_ms(e, span))
                    .unwrap_or_else(|| "…".into()),
                exit_label(lane.exitcode, ended),
                bar.into_iter().collect::<String>()
            )?;
            if !lane.tasks.is_empty() {
                write!(f, " {} tasks", lane.tasks.len())?;
            }
            if i + 1 < self.lanes.len() {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_counts_touching_spans_as_sequential() {
        assert_eq!(max_overlap([(0.0, 1.0), (1.0, 2.0)].into_iter()), 1);
        assert_eq!(max_overlap([(0.0, 2.0), (1.0, 3.0)].into_iter()), 2);
        assert_eq!(max_overlap(std::iter::empty()), 0);
    }

    #[test]
    fn escape_and_steps() {
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(nice_step(100.0, 10.0), 10.0);
        assert_eq!(nice_step(13.0, 8.0), 2.0);
        assert_eq!(exit_label(Some(-9), true), "SIGKILL");
        assert_eq!(exit_label(None, false), "running");
    }

    #[test]
    fn record_layout_is_fixed() {
        assert_eq!(std::mem::size_of::<Record>(), 128);
    }
}
