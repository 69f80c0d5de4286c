//! The byte ring under every queue: a ring buffer in shared memory that
//! carries length-prefixed items from one producer at a time to one consumer
//! at a time, and streams through it an item larger than the ring.
//!
//! One lock serialises producers and another serialises consumers, so the
//! ring itself only ever has one writer and one reader at a time; a consumer
//! sleeps on a futex while the ring is empty and a producer while it is
//! full. Items are opaque bytes here: encoding them is the typed queues'
//! job.

use super::pid;
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use crate::sync::futex::{self, Woke};
use crate::sync::raw_lock::{Acquired, LockWord};
use crate::waits::record::{self as waits, Holder, Site};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// Bytes of the length that prefixes each item (an item with its length is a record).
pub(super) const HEADER: u64 = 8;
/// `pause` instructions spent busy-waiting before sleeping on the futex
/// (keeps a fast producer and consumer out of the kernel without taking a
/// CPU from a preempted peer for long).
const SPINS: u32 = 2000;
/// Most `pause` instructions between two looks while spinning.
const MAX_PAUSE: u32 = 16;

// The shared state is laid out so that each side mostly writes cache lines
// the other side does not read: the consumers' hot loop reads only the
// `tail` line (and the ring's bytes), the producers' only the `head` line,
// and both only read the rarely written `waiting` lines. Each side keeps its
// last view of the other side's index on its own line and re-reads the
// shared one only when that view says "full" (producers) or "empty"
// (consumers).

#[repr(C, align(64))]
#[derive(Debug, Default)]
struct ProducerSide {
    lock: LockWord,
    /// Items published so far (counted before their bytes are visible).
    /// Written only under `lock`.
    items_in: AtomicU64,
    /// The consumers' `head` as last seen by a producer (under `lock`).
    seen_head: AtomicU64,
    /// An item larger than the ring is partly published.
    partial: AtomicU32,
}

#[repr(C, align(64))]
#[derive(Debug, Default)]
struct ConsumerSide {
    lock: LockWord,
    /// Items consumed so far. Written only under `lock`.
    items_out: AtomicU64,
    /// The producers' `tail` as last seen by a consumer (under `lock`).
    seen_tail: AtomicU64,
    /// An item larger than the ring is partly consumed.
    partial: AtomicU32,
}

/// A monotonic byte index on a cache line of its own.
#[repr(C, align(64))]
#[derive(Debug, Default)]
struct Index(AtomicU64);

/// A side's sleepers: announced in `waiting`, woken through the futex word
/// `seq`. On a line of its own, written only around sleeps.
#[repr(C, align(64))]
#[derive(Debug, Default)]
struct Sleepers {
    waiting: AtomicU32,
    seq: AtomicU32,
}

/// The JoinableQueue's task count, on a line of its own.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub(super) struct JoinSide {
    /// Items put and not yet marked done (JoinableQueue).
    pub(super) unfinished: AtomicU64,
    /// Futex word, bumped when `unfinished` reaches zero.
    pub(super) seq: AtomicU32,
    /// Processes sleeping in `join`.
    pub(super) waiters: AtomicU32,
}

#[repr(C)]
#[derive(Debug, Default)]
struct QueueState {
    prod: ProducerSide,
    cons: ConsumerSide,
    /// Bytes published so far (monotonic).
    tail: Index,
    /// Bytes consumed so far (monotonic).
    head: Index,
    /// Producers waiting for room (woken by consumers).
    prod_wait: Sleepers,
    /// Consumers waiting for data (woken by producers).
    cons_wait: Sleepers,
    join: JoinSide,
    /// 0: unbounded.
    maxsize: u64,
    /// Ring size in bytes (a power of two).
    capacity: u64,
}

thread_local! {
    static DECODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The untyped shared part: the ring and its bookkeeping.
#[derive(Debug, Clone)]
pub(super) struct Ring {
    shm: ShmBox<QueueState>,
    /// The queue's id in the wait table (see `waits/names.rs`).
    pub(super) id: u32,
}

/// Waits (spinning first, then on the futex `seq`) until `ready()`,
/// announcing itself in `waiting`. `Ok(false)` at the deadline.
fn wait_for(
    ready: impl Fn() -> bool,
    waiting: &AtomicU32,
    seq: &AtomicU32,
    deadline: Option<Instant>,
    on_timeout_slice: impl Fn() -> Result<()>,
    site: Site,
) -> Result<bool> {
    // Back off between looks, so a waiting side does not keep pulling the
    // cache line the other side is about to write.
    let mut pause = 1u32;
    let mut spent = 0u32;
    while spent < SPINS {
        if ready() {
            return Ok(true);
        }
        for _ in 0..pause {
            std::hint::spin_loop();
        }
        spent += pause;
        pause = (pause * 2).min(MAX_PAUSE);
    }
    // The flag stays up until a waker takes it down (another process may
    // sleep on it too): a flag left up costs the other side one needless
    // wake-up, a flag taken down too early a sleeper that oversleeps.
    let mut recorded = None;
    loop {
        waiting.store(1, Ordering::SeqCst);
        let s = seq.load(Ordering::SeqCst);
        if ready() {
            return Ok(true);
        }
        let slice = match deadline {
            None => futex::UNTIMED_SLICE,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(r) if !r.is_zero() => r.min(futex::SLICE),
                _ => return Ok(false),
            },
        };
        let rec =
            recorded.get_or_insert_with(|| waits::begin(site, Holder::Anyone, deadline.is_some()));
        let woke = futex::wait(seq, s, slice);
        if woke == Woke::TimedOut {
            crate::interrupt::check()?;
            on_timeout_slice()?;
            rec.check()?;
        }
    }
}

impl Ring {
    pub(super) fn new(maxsize: u64, capacity: usize) -> Result<Ring> {
        let capacity = capacity.next_power_of_two().max(64);
        let state = QueueState {
            maxsize,
            capacity: capacity as u64,
            ..Default::default()
        };
        // SAFETY: atomics and constants; the ring is raw trailing bytes.
        let shm = unsafe { ShmBox::new(state, capacity, 64)? };
        Ok(Ring {
            shm,
            id: crate::waits::names::new_id(crate::waits::Kind::Queue),
        })
    }

    /// The `maxsize` given at creation (0: unbounded).
    pub(super) fn maxsize(&self) -> u64 {
        self.shm.maxsize
    }

    /// The JoinableQueue's task count.
    pub(super) fn join(&self) -> &JoinSide {
        &self.shm.join
    }

    fn cap(&self) -> u64 {
        self.shm.capacity
    }

    fn used(&self) -> u64 {
        let tail = self.shm.tail.0.load(Ordering::SeqCst);
        let head = self.shm.head.0.load(Ordering::SeqCst);
        tail.wrapping_sub(head)
    }

    /// For a producer (holding the put lock): whether `need` bytes are free
    /// after `tail`. Looks at the consumers' `head` only when the last view
    /// of it says there is not enough room.
    fn has_room(&self, need: u64) -> bool {
        let p = &self.shm.prod;
        let tail = self.shm.tail.0.load(Ordering::Relaxed);
        // The view may be so old (after streamed items) that it is more
        // than a ring behind: then it says nothing.
        let seen = p.seen_head.load(Ordering::Relaxed);
        if self.cap().saturating_sub(tail.wrapping_sub(seen)) >= need {
            return true;
        }
        let head = self.shm.head.0.load(Ordering::SeqCst);
        p.seen_head.store(head, Ordering::Relaxed);
        self.cap() - tail.wrapping_sub(head) >= need
    }

    /// For a consumer (holding the get lock): whether `need` bytes are
    /// published after `head`. Looks at the producers' `tail` only when the
    /// last view of it says there is not enough.
    fn has_data(&self, need: u64) -> bool {
        let c = &self.shm.cons;
        let head = self.shm.head.0.load(Ordering::Relaxed);
        // The view may be older than `head` after a streamed item.
        if c.seen_tail.load(Ordering::Relaxed).saturating_sub(head) >= need {
            return true;
        }
        let tail = self.shm.tail.0.load(Ordering::SeqCst);
        c.seen_tail.store(tail, Ordering::Relaxed);
        tail.wrapping_sub(head) >= need
    }

    /// Whether a `get` would find bytes at once (an item, or the first
    /// piece of a streamed one).
    pub(super) fn has_bytes(&self) -> bool {
        self.used() > 0
    }

    pub(super) fn qsize(&self) -> u64 {
        let out = self.shm.cons.items_out.load(Ordering::SeqCst);
        let inn = self.shm.prod.items_in.load(Ordering::SeqCst);
        inn.saturating_sub(out)
    }

    /// Copies `data` (at most the ring's size: a whole small record, a
    /// length, or a piece no larger than the free space) into the ring at
    /// byte position `pos`.
    fn write_at(&self, pos: u64, data: &[u8]) {
        let cap = self.cap();
        debug_assert!(data.len() as u64 <= cap);
        let off = (pos & (cap - 1)) as usize;
        let first = data.len().min(cap as usize - off);
        let base = self.shm.trailing_ptr();
        // SAFETY: the ring is `cap` mapped bytes at `base`; the first copy
        // is `off..off + first <= cap`, the second `0..data.len() - first`,
        // within it as `data.len() <= cap`. `data` is a local slice, not in
        // the ring. The range is free space that only this producer
        // (holding the put lock) touches, and consumers read it only after
        // `publish` (SeqCst) moves `tail` past it.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(off), first);
            if first < data.len() {
                std::ptr::copy_nonoverlapping(data.as_ptr().add(first), base, data.len() - first);
            }
        }
    }

    /// Copies published ring bytes at `pos` into `out` (at most the ring's
    /// size: a length, a whole small record, or a piece no larger than what
    /// is published).
    fn read_at(&self, pos: u64, out: &mut [u8]) {
        let cap = self.cap();
        debug_assert!(out.len() as u64 <= cap);
        let off = (pos & (cap - 1)) as usize;
        let first = out.len().min(cap as usize - off);
        let base = self.shm.trailing_ptr();
        // SAFETY: inside the ring as in `write_at` (`out.len() <= cap`);
        // `out` is the caller's own buffer, not in the ring. The bytes are
        // published (`tail` was seen past them, SeqCst) and no producer
        // writes them until this consumer (holding the get lock) moves
        // `head` past them.
        unsafe {
            std::ptr::copy_nonoverlapping(base.add(off), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(base, out.as_mut_ptr().add(first), out.len() - first);
        }
    }

    /// The published bytes at `pos..pos+len` as one slice, if they do not
    /// wrap around the end of the ring.
    ///
    /// # Safety
    /// The bytes are published, the caller holds the get lock, and it drops
    /// the slice before moving `head` past them (after which producers may
    /// overwrite them).
    unsafe fn contiguous(&self, pos: u64, len: usize) -> Option<&[u8]> {
        let cap = self.cap() as usize;
        let off = (pos as usize) & (cap - 1);
        (off + len <= cap).then(|| {
            // SAFETY: `off..off + len` is inside the ring's `cap` mapped
            // bytes; the caller's promise keeps producers off them while
            // the slice lives.
            unsafe { std::slice::from_raw_parts(self.shm.trailing_ptr().add(off), len) }
        })
    }

    fn signal_consumer(&self) {
        Self::wake_sleepers(&self.shm.cons_wait);
    }

    fn signal_producer(&self) {
        Self::wake_sleepers(&self.shm.prod_wait);
    }

    /// Wakes whoever announced a sleep on `side`. The flag is taken down
    /// here, by the waker, so the next publications do not each make a
    /// system call while the woken side is still getting up; every sleeper
    /// is woken and announces itself again if it must sleep again.
    fn wake_sleepers(side: &Sleepers) {
        if side.waiting.load(Ordering::SeqCst) != 0 && side.waiting.swap(0, Ordering::SeqCst) != 0 {
            side.seq.fetch_add(1, Ordering::SeqCst);
            futex::wake(&side.seq, u32::MAX);
        }
    }

    /// What a wait on this queue is on, in the wait graph.
    pub(super) fn site(&self) -> Site {
        Site::new(self.id, crate::waits::Kind::Queue)
    }

    fn publish(&self, tail: u64) {
        self.shm.tail.0.store(tail, Ordering::SeqCst);
        self.signal_consumer();
    }

    fn wait_room(&self, need: u64, deadline: Option<Instant>) -> Result<bool> {
        let p = &self.shm.prod_wait;
        wait_for(
            || self.has_room(need),
            &p.waiting,
            &p.seq,
            deadline,
            || self.check_consumer_alive(),
            self.site(),
        )
    }

    fn wait_below_maxsize(&self, deadline: Option<Instant>) -> Result<bool> {
        let max = self.shm.maxsize;
        if max == 0 {
            return Ok(true);
        }
        let p = &self.shm.prod_wait;
        wait_for(
            || self.qsize() < max,
            &p.waiting,
            &p.seq,
            deadline,
            || Ok(()),
            self.site(),
        )
    }

    fn wait_data(&self, need: u64, deadline: Option<Instant>) -> Result<bool> {
        let c = &self.shm.cons_wait;
        wait_for(
            || self.has_data(need),
            &c.waiting,
            &c.seq,
            deadline,
            || self.check_producer_alive(),
            self.site(),
        )
    }

    /// While streaming: fails if the producer we wait for died mid-item.
    fn check_producer_alive(&self) -> Result<()> {
        let p = &self.shm.prod;
        if p.partial.load(Ordering::SeqCst) != 0 && p.lock.owner().is_some_and(crate::os::is_dead) {
            return Err(Error::QueueCorrupted { pid: pid() });
        }
        Ok(())
    }

    /// While streaming: fails if the consumer we wait for died mid-item.
    fn check_consumer_alive(&self) -> Result<()> {
        let c = &self.shm.cons;
        if c.partial.load(Ordering::SeqCst) != 0 && c.lock.owner().is_some_and(crate::os::is_dead) {
            return Err(Error::QueueCorrupted { pid: pid() });
        }
        Ok(())
    }

    /// Takes a side's lock; a take-over from a dead process is fine unless
    /// it died in the middle of streaming a large item.
    fn take(
        &self,
        lock: &LockWord,
        partial: &AtomicU32,
        deadline: Option<Instant>,
        what: &'static str,
    ) -> Result<()> {
        if lock.try_lock(crate::os::pid() as u32) {
            return Ok(());
        }
        match lock.lock(crate::os::pid() as u32, deadline, what, self.site())? {
            Acquired::Clean => Ok(()),
            Acquired::FromDead(_) => {
                lock.take_recovery(crate::os::pid() as u32);
                if partial.load(Ordering::SeqCst) != 0 {
                    lock.unlock();
                    return Err(Error::QueueCorrupted { pid: pid() });
                }
                Ok(())
            }
        }
    }

    /// Puts one record (its length, 8 bytes, then its encoding).
    /// `Ok(false)`: no room before the deadline.
    pub(super) fn put_record(
        &self,
        record: &[u8],
        deadline: Option<Instant>,
        joinable: bool,
    ) -> Result<bool> {
        let p = &self.shm.prod;
        match self.take(&p.lock, &p.partial, deadline, "putting on a Queue") {
            Ok(()) => {}
            Err(Error::Timeout { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        let result = self.put_locked(record, deadline, joinable);
        p.lock.unlock();
        result
    }

    fn put_locked(&self, whole: &[u8], deadline: Option<Instant>, joinable: bool) -> Result<bool> {
        let p = &self.shm.prod;
        if !self.wait_below_maxsize(deadline)? {
            return Ok(false);
        }
        let record = whole.len() as u64;
        let (len_bytes, bytes) = whole.split_at(HEADER as usize);
        let mut tail = self.shm.tail.0.load(Ordering::Relaxed);
        if record <= self.cap() {
            if !self.wait_room(record, deadline)? {
                return Ok(false);
            }
            self.write_at(tail, whole);
            self.count_in(joinable);
            self.publish(tail + record);
            return Ok(true);
        }
        // Larger than the ring: stream it. Once started it must finish, so
        // only the first piece honours the deadline.
        if !self.wait_room(HEADER + 1, deadline)? {
            return Ok(false);
        }
        p.partial.store(1, Ordering::SeqCst);
        self.count_in(joinable);
        self.write_at(tail, len_bytes);
        tail += HEADER;
        let mut rest = bytes;
        while !rest.is_empty() {
            // From our own tail: the header is written but not yet published.
            let head = self.shm.head.0.load(Ordering::SeqCst);
            let free = self.cap() - tail.wrapping_sub(head);
            if free == 0 {
                self.publish(tail);
                self.wait_room(1, None)?;
                continue;
            }
            let n = (free as usize).min(rest.len());
            self.write_at(tail, &rest[..n]);
            tail += n as u64;
            rest = &rest[n..];
            self.publish(tail);
        }
        p.partial.store(0, Ordering::SeqCst);
        Ok(true)
    }

    fn count_in(&self, joinable: bool) {
        if joinable {
            self.shm.join.unfinished.fetch_add(1, Ordering::SeqCst);
        }
        // Only the holder of the put lock writes it.
        let items_in = &self.shm.prod.items_in;
        items_in.store(items_in.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Gets one item and decodes it. `Ok(None)`: nothing before the deadline.
    pub(super) fn get_with<T>(
        &self,
        deadline: Option<Instant>,
        decode: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        let c = &self.shm.cons;
        match self.take(&c.lock, &c.partial, deadline, "getting from a Queue") {
            Ok(()) => {}
            Err(Error::Timeout { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let result = self.get_locked(deadline, decode);
        c.lock.unlock();
        result
    }

    fn get_locked<T>(
        &self,
        deadline: Option<Instant>,
        decode: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        let c = &self.shm.cons;
        if !self.wait_data(HEADER, deadline)? {
            return Ok(None);
        }
        let head = self.shm.head.0.load(Ordering::Relaxed);
        let mut len_bytes = [0u8; HEADER as usize];
        self.read_at(head, &mut len_bytes);
        let len = u64::from_le_bytes(len_bytes);
        let record = HEADER + len;
        if record <= self.cap() {
            // A small record is published whole: its bytes are all here.
            // SAFETY: `wait_data` saw the whole record published (a small
            // record is published at once), we hold the get lock, and the
            // slice is gone (decoded) before `finish_get` moves `head`.
            let value = match unsafe { self.contiguous(head + HEADER, len as usize) } {
                Some(slice) => decode(slice),
                None => DECODE_BUF.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    buf.resize(len as usize, 0);
                    self.read_at(head + HEADER, &mut buf);
                    decode(&buf)
                }),
            };
            self.finish_get(head + record);
            return value.map(Some);
        }
        // Streamed: collect the pieces as the producer publishes them.
        c.partial.store(1, Ordering::SeqCst);
        let mut buf = vec![0u8; len as usize];
        let mut pos = head + HEADER;
        self.shm.head.0.store(pos, Ordering::SeqCst);
        self.signal_producer();
        let mut got = 0usize;
        while got < buf.len() {
            let avail = self.used();
            if avail == 0 {
                self.wait_data(1, None)?;
                continue;
            }
            let n = (avail as usize).min(buf.len() - got);
            self.read_at(pos, &mut buf[got..got + n]);
            got += n;
            pos += n as u64;
            self.shm.head.0.store(pos, Ordering::SeqCst);
            self.signal_producer();
        }
        c.partial.store(0, Ordering::SeqCst);
        self.finish_get(pos);
        decode(&buf).map(Some)
    }

    fn finish_get(&self, head: u64) {
        // Only the holder of the get lock writes it.
        let items_out = &self.shm.cons.items_out;
        items_out.store(items_out.load(Ordering::Relaxed) + 1, Ordering::Release);
        self.shm.head.0.store(head, Ordering::SeqCst);
        self.signal_producer();
    }
}
