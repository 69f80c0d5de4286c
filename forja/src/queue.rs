//! [`Queue`], [`JoinableQueue`] and [`SimpleQueue`]: multi-producer,
//! multi-consumer queues between processes (Python's
//! `multiprocessing.Queue`, `JoinableQueue`, `SimpleQueue`).
//!
//! Items are encoded with `postcard` (the same format as forja's pipes)
//! into a ring buffer of bytes in shared memory (1 MiB), each framed by its
//! length. One lock serialises producers and another serialises consumers,
//! so the ring itself only ever has one writer and one reader at a time; a
//! consumer sleeps on a futex while the ring is empty and a producer while it
//! is full. An item larger than the ring is streamed through it in pieces,
//! so no item is ever refused. Made before forking, a queue is shared by the
//! parent and all its children; every item put is got exactly once.
//!
//! ```
//! let q = forja::Queue::new().unwrap();
//! q.put(&"hola".to_string()).unwrap();
//! assert_eq!(q.get().unwrap(), "hola");
//! ```

use crate::error::{Error, Result};
use crate::shm::ShmBox;
use crate::sync::futex::{self, Woke, deadline_after, my_pid};
use crate::sync::raw_lock::{Acquired, LockWord};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes in a queue's ring buffer.
const RING_BYTES: usize = 1 << 20;
/// Bytes of the length that frames each item.
const HEADER: u64 = 8;
/// `pause` instructions spent busy-waiting before sleeping on the futex
/// (keeps a fast producer and consumer out of the kernel without taking a
/// CPU from a preempted peer for long).
const SPINS: u32 = 2000;
/// Items whose frame fits in this many bytes are encoded on the stack.
const SMALL_FRAME: usize = 128;
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

#[repr(C, align(64))]
#[derive(Debug, Default)]
struct JoinSide {
    /// Items put and not yet marked done (JoinableQueue).
    unfinished: AtomicU64,
    seq: AtomicU32,
    waiters: AtomicU32,
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
    static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DECODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn pid() -> i32 {
    my_pid() as i32
}

fn codec_error(action: &'static str, e: postcard::Error) -> Error {
    Error::Message {
        action,
        what: "a queue",
        pid: pid(),
        message: e.to_string(),
    }
}

/// The untyped shared part: the ring and its bookkeeping.
#[derive(Debug, Clone)]
struct Ring {
    shm: ShmBox<QueueState>,
}

/// Waits (spinning first, then on the futex `seq`) until `ready()`,
/// announcing itself in `waiting`. `Ok(false)` at the deadline.
fn wait_for(
    ready: impl Fn() -> bool,
    waiting: &AtomicU32,
    seq: &AtomicU32,
    deadline: Option<Instant>,
    on_timeout_slice: impl Fn() -> Result<()>,
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
    loop {
        waiting.store(1, Ordering::SeqCst);
        let s = seq.load(Ordering::SeqCst);
        if ready() {
            return Ok(true);
        }
        let slice = match deadline {
            None => futex::SLICE,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(r) if !r.is_zero() => r.min(futex::SLICE),
                _ => return Ok(false),
            },
        };
        let woke = futex::wait(seq, s, slice);
        if woke == Woke::TimedOut {
            crate::interrupt::check()?;
            on_timeout_slice()?;
        }
    }
}

impl Ring {
    fn new(maxsize: u64, capacity: usize) -> Result<Ring> {
        let capacity = capacity.next_power_of_two().max(64);
        let state = QueueState {
            maxsize,
            capacity: capacity as u64,
            ..Default::default()
        };
        // Safety: atomics and constants; the ring is raw trailing bytes.
        let shm = unsafe { ShmBox::new(state, capacity, 64)? };
        Ok(Ring { shm })
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

    fn qsize(&self) -> u64 {
        let out = self.shm.cons.items_out.load(Ordering::SeqCst);
        let inn = self.shm.prod.items_in.load(Ordering::SeqCst);
        inn.saturating_sub(out)
    }

    /// Copies `data` into the ring at byte position `pos`.
    fn write_at(&self, pos: u64, data: &[u8]) {
        let cap = self.cap();
        let off = (pos & (cap - 1)) as usize;
        let first = data.len().min(cap as usize - off);
        let base = self.shm.trailing_ptr();
        // Safety: both copies stay inside the ring; the range is free space
        // that only this producer (holding the put lock) touches.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(off), first);
            if first < data.len() {
                std::ptr::copy_nonoverlapping(data.as_ptr().add(first), base, data.len() - first);
            }
        }
    }

    /// Copies ring bytes at `pos` into `out`.
    fn read_at(&self, pos: u64, out: &mut [u8]) {
        let cap = self.cap();
        let off = (pos & (cap - 1)) as usize;
        let first = out.len().min(cap as usize - off);
        let base = self.shm.trailing_ptr();
        // Safety: published bytes that only this consumer (holding the get
        // lock) reads and no producer writes until `head` moves past them.
        unsafe {
            std::ptr::copy_nonoverlapping(base.add(off), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(base, out.as_mut_ptr().add(first), out.len() - first);
        }
    }

    /// The published bytes at `pos..pos+len` as one slice, if they do not
    /// wrap around the end of the ring.
    fn contiguous(&self, pos: u64, len: usize) -> Option<&[u8]> {
        let cap = self.cap() as usize;
        let off = (pos as usize) & (cap - 1);
        (off + len <= cap).then(|| {
            // Safety: see read_at; lives while `self` does.
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
        )
    }

    /// While streaming: fails if the producer we wait for died mid-item.
    fn check_producer_alive(&self) -> Result<()> {
        let p = &self.shm.prod;
        if p.partial.load(Ordering::SeqCst) != 0 && p.lock.owner().is_some_and(futex::is_dead) {
            return Err(Error::QueueCorrupted { pid: pid() });
        }
        Ok(())
    }

    /// While streaming: fails if the consumer we wait for died mid-item.
    fn check_consumer_alive(&self) -> Result<()> {
        let c = &self.shm.cons;
        if c.partial.load(Ordering::SeqCst) != 0 && c.lock.owner().is_some_and(futex::is_dead) {
            return Err(Error::QueueCorrupted { pid: pid() });
        }
        Ok(())
    }

    /// Takes a side's lock; a take-over from a dead process is fine unless
    /// it died in the middle of streaming a large item.
    fn take(
        lock: &LockWord,
        partial: &AtomicU32,
        deadline: Option<Instant>,
        what: &'static str,
    ) -> Result<()> {
        if lock.try_lock(my_pid()) {
            return Ok(());
        }
        match lock.lock(my_pid(), deadline, what)? {
            Acquired::Clean => Ok(()),
            Acquired::FromDead(_) => {
                lock.take_recovery(my_pid());
                if partial.load(Ordering::SeqCst) != 0 {
                    lock.unlock();
                    return Err(Error::QueueCorrupted { pid: pid() });
                }
                Ok(())
            }
        }
    }

    /// Puts one framed item (its length, 8 bytes, then its encoding).
    /// `Ok(false)`: no room before the deadline.
    fn put_frame(&self, frame: &[u8], deadline: Option<Instant>, joinable: bool) -> Result<bool> {
        let p = &self.shm.prod;
        match Self::take(&p.lock, &p.partial, deadline, "putting on a Queue") {
            Ok(()) => {}
            Err(Error::Timeout { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        let result = self.put_locked(frame, deadline, joinable);
        p.lock.unlock();
        result
    }

    fn put_locked(&self, whole: &[u8], deadline: Option<Instant>, joinable: bool) -> Result<bool> {
        let p = &self.shm.prod;
        if !self.wait_below_maxsize(deadline)? {
            return Ok(false);
        }
        let frame = whole.len() as u64;
        let (len_bytes, bytes) = whole.split_at(HEADER as usize);
        let mut tail = self.shm.tail.0.load(Ordering::Relaxed);
        if frame <= self.cap() {
            if !self.wait_room(frame, deadline)? {
                return Ok(false);
            }
            self.write_at(tail, whole);
            self.count_in(joinable);
            self.publish(tail + frame);
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
    fn get_with<T>(
        &self,
        deadline: Option<Instant>,
        decode: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        let c = &self.shm.cons;
        match Self::take(&c.lock, &c.partial, deadline, "getting from a Queue") {
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
        let frame = HEADER + len;
        if frame <= self.cap() {
            // A small frame is published whole: its bytes are all here.
            let value = match self.contiguous(head + HEADER, len as usize) {
                Some(slice) => decode(slice),
                None => DECODE_BUF.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    buf.resize(len as usize, 0);
                    self.read_at(head + HEADER, &mut buf);
                    decode(&buf)
                }),
            };
            self.finish_get(head + frame);
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

/// A multi-producer, multi-consumer queue shared by processes forked after
/// it was made.
///
/// ```
/// use forja::prelude::*;
///
/// let q: Queue<(u32, String)> = Queue::new().unwrap();
/// q.put(&(1, "uno".into())).unwrap();
/// assert_eq!(q.qsize(), 1);
/// assert_eq!(q.get().unwrap(), (1, "uno".into()));
/// assert!(matches!(q.try_get(), Err(Error::Empty { .. })));
/// ```
pub struct Queue<T> {
    ring: Ring,
    closed: Arc<AtomicBool>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            ring: self.ring.clone(),
            closed: self.closed.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.ring.qsize())
            .field("maxsize", &self.ring.shm.maxsize)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An unbounded queue.
    ///
    /// ```
    /// let q = forja::Queue::<i64>::new().unwrap();
    /// assert!(q.is_empty());
    /// ```
    pub fn new() -> Result<Queue<T>> {
        Self::build(0, RING_BYTES)
    }

    /// A queue holding at most `maxsize` items: `put` waits while it is full
    /// (`maxsize` 0 means unbounded, as in Python).
    ///
    /// ```
    /// let q = forja::Queue::with_maxsize(1).unwrap();
    /// q.put(&1u8).unwrap();
    /// assert!(q.is_full());
    /// assert!(matches!(q.try_put(&2), Err(forja::Error::Full { .. })));
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>> {
        Self::build(maxsize as u64, RING_BYTES)
    }

    /// A queue whose ring buffer has `bytes` bytes (rounded up to a power of
    /// two, at least 64) instead of 1 MiB; larger items still pass, streamed.
    ///
    /// ```
    /// let q = forja::Queue::with_buffer_bytes(64).unwrap();
    /// q.put(&vec![7u8; 10]).unwrap();
    /// assert_eq!(q.get().unwrap(), vec![7u8; 10]);
    /// ```
    pub fn with_buffer_bytes(bytes: usize) -> Result<Queue<T>> {
        Self::build(0, bytes)
    }

    fn build(maxsize: u64, bytes: usize) -> Result<Queue<T>> {
        Ok(Queue {
            ring: Ring::new(maxsize, bytes)?,
            closed: Arc::new(AtomicBool::new(false)),
            _t: PhantomData,
        })
    }

    fn put_until(&self, item: &T, deadline: Option<Instant>, joinable: bool) -> Result<()> {
        crate::interrupt::check()?;
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::QueueClosed { pid: pid() });
        }
        // A frame is the item's length (8 bytes) and its encoding, built in
        // one buffer so it is copied into the ring at once: small items on
        // the stack, larger ones in a reused per-thread buffer.
        let mut small = [0u8; SMALL_FRAME];
        let done = match postcard::to_slice(item, &mut small[HEADER as usize..]) {
            Ok(payload) => {
                let n = payload.len();
                small[..HEADER as usize].copy_from_slice(&(n as u64).to_le_bytes());
                self.ring
                    .put_frame(&small[..HEADER as usize + n], deadline, joinable)?
            }
            Err(_) => ENCODE_BUF.with(|buf| -> Result<bool> {
                let mut buf = buf.borrow_mut();
                buf.clear();
                buf.extend_from_slice(&[0; HEADER as usize]);
                let mut frame = postcard::to_extend(item, std::mem::take(&mut *buf))
                    .map_err(|e| codec_error("encode", e))?;
                let n = (frame.len() - HEADER as usize) as u64;
                frame[..HEADER as usize].copy_from_slice(&n.to_le_bytes());
                let r = self.ring.put_frame(&frame, deadline, joinable);
                *buf = frame;
                r
            })?,
        };
        if done {
            Ok(())
        } else {
            Err(Error::Full { pid: pid() })
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T> {
        crate::interrupt::check()?;
        self.ring
            .get_with(deadline, |bytes| {
                postcard::from_bytes(bytes).map_err(|e| codec_error("decode", e))
            })?
            .ok_or(Error::Empty { pid: pid() })
    }

    /// Puts `item`, waiting while the queue is full.
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.put(&[1.0f32, 2.0]).unwrap();
    /// ```
    pub fn put(&self, item: &T) -> Result<()> {
        self.put_until(item, None, false)
    }

    /// Like [`put`](Queue::put), giving up with [`Error::Full`] after
    /// `timeout`.
    ///
    /// ```
    /// let q = forja::Queue::with_maxsize(1).unwrap();
    /// q.put(&'a').unwrap();
    /// let r = q.put_timeout(&'b', std::time::Duration::from_millis(5));
    /// assert!(matches!(r, Err(forja::Error::Full { .. })));
    /// ```
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        self.put_until(item, deadline_after(timeout), false)
    }

    /// Puts `item` only if there is room right now, else [`Error::Full`].
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.try_put(&5u16).unwrap();
    /// ```
    pub fn try_put(&self, item: &T) -> Result<()> {
        self.put_until(item, Some(Instant::now()), false)
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.put(&true).unwrap();
    /// assert!(q.get().unwrap());
    /// ```
    pub fn get(&self) -> Result<T> {
        self.get_until(None)
    }

    /// Like [`get`](Queue::get), giving up with [`Error::Empty`] after
    /// `timeout`.
    ///
    /// ```
    /// let q = forja::Queue::<u8>::new().unwrap();
    /// let r = q.get_timeout(std::time::Duration::from_millis(5));
    /// assert!(matches!(r, Err(forja::Error::Empty { .. })));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_until(deadline_after(timeout))
    }

    /// Takes an item only if one is there right now, else [`Error::Empty`].
    ///
    /// ```
    /// let q = forja::Queue::<u8>::new().unwrap();
    /// assert!(q.try_get().is_err());
    /// ```
    pub fn try_get(&self) -> Result<T> {
        self.get_until(Some(Instant::now()))
    }

    /// How many items are in the queue right now (a snapshot: other
    /// processes may change it the next moment).
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// q.put(&2u8).unwrap();
    /// assert_eq!(q.qsize(), 2);
    /// ```
    pub fn qsize(&self) -> usize {
        self.ring.qsize() as usize
    }

    /// Whether the queue is empty right now.
    ///
    /// ```
    /// assert!(forja::Queue::<u8>::new().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ring.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items right now (never for an
    /// unbounded queue).
    ///
    /// ```
    /// assert!(!forja::Queue::<u8>::new().unwrap().is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        let max = self.ring.shm.maxsize;
        max > 0 && self.ring.qsize() >= max
    }

    /// The `maxsize` given at creation (0: unbounded).
    ///
    /// ```
    /// assert_eq!(forja::Queue::<u8>::with_maxsize(3).unwrap().maxsize(), 3);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.ring.shm.maxsize as usize
    }

    /// Declares that this process will put no more items through this handle
    /// (and its clones): a later `put` is [`Error::QueueClosed`]. Other
    /// processes are not affected and items already put stay available, as in
    /// Python.
    ///
    /// ```
    /// let q = forja::Queue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// q.close();
    /// assert!(matches!(q.put(&2), Err(forja::Error::QueueClosed { .. })));
    /// assert_eq!(q.get().unwrap(), 1);
    /// ```
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Whether [`close`](Queue::close) was called on this handle (or a clone).
    ///
    /// ```
    /// let q = forja::Queue::<u8>::new().unwrap();
    /// assert!(!q.is_closed());
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// A [`Queue`] that also counts unfinished tasks: every `put` adds one,
/// [`task_done`](JoinableQueue::task_done) removes one, and
/// [`join`](JoinableQueue::join) waits until none are left.
///
/// ```
/// let q = forja::JoinableQueue::new().unwrap();
/// q.put(&"job".to_string()).unwrap();
/// let job = q.get().unwrap();
/// q.task_done().unwrap();
/// q.join().unwrap(); // every task done
/// assert!(q.task_done().is_err()); // one too many
/// # let _ = job;
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> std::fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("qsize", &self.queue.ring.qsize())
            .field(
                "unfinished",
                &self.queue.ring.shm.join.unfinished.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// An unbounded joinable queue.
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// ```
    pub fn new() -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            queue: Queue::new()?,
        })
    }

    /// A joinable queue holding at most `maxsize` items (0: unbounded).
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::with_maxsize(2).unwrap();
    /// assert_eq!(q.maxsize(), 2);
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            queue: Queue::with_maxsize(maxsize)?,
        })
    }

    /// Puts `item` and counts one more unfinished task.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// ```
    pub fn put(&self, item: &T) -> Result<()> {
        self.queue.put_until(item, None, true)
    }

    /// Like [`put`](JoinableQueue::put), giving up with [`Error::Full`]
    /// after `timeout`.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put_timeout(&1u8, std::time::Duration::from_millis(5)).unwrap();
    /// ```
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        self.queue.put_until(item, deadline_after(timeout), true)
    }

    /// Puts `item` only if there is room right now, else [`Error::Full`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.try_put(&1u8).unwrap();
    /// ```
    pub fn try_put(&self, item: &T) -> Result<()> {
        self.queue.put_until(item, Some(Instant::now()), true)
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&3i32).unwrap();
    /// assert_eq!(q.get().unwrap(), 3);
    /// ```
    pub fn get(&self) -> Result<T> {
        self.queue.get()
    }

    /// Like [`get`](JoinableQueue::get), giving up with [`Error::Empty`]
    /// after `timeout`.
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// assert!(q.get_timeout(std::time::Duration::from_millis(5)).is_err());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.queue.get_timeout(timeout)
    }

    /// Takes an item only if one is there right now, else [`Error::Empty`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// assert!(q.try_get().is_err());
    /// ```
    pub fn try_get(&self) -> Result<T> {
        self.queue.try_get()
    }

    /// Marks one task got from the queue as done. More calls than items put
    /// is [`Error::TooManyTaskDone`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&0u8).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert!(matches!(q.task_done(), Err(forja::Error::TooManyTaskDone { .. })));
    /// ```
    pub fn task_done(&self) -> Result<()> {
        let j = &self.queue.ring.shm.join;
        let mut n = j.unfinished.load(Ordering::SeqCst);
        loop {
            if n == 0 {
                return Err(Error::TooManyTaskDone { pid: pid() });
            }
            match j
                .unfinished
                .compare_exchange_weak(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        if n == 1 {
            j.seq.fetch_add(1, Ordering::SeqCst);
            if j.waiters.load(Ordering::SeqCst) > 0 {
                futex::wake(&j.seq, u32::MAX);
            }
        }
        Ok(())
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<()> {
        crate::interrupt::check()?;
        let j = &self.queue.ring.shm.join;
        loop {
            j.waiters.fetch_add(1, Ordering::SeqCst);
            let s = j.seq.load(Ordering::SeqCst);
            if j.unfinished.load(Ordering::SeqCst) == 0 {
                j.waiters.fetch_sub(1, Ordering::SeqCst);
                return Ok(());
            }
            let slice = futex::slice_until(deadline, "joining a JoinableQueue");
            let woke = slice.map(|s2| futex::wait(&j.seq, s, s2));
            j.waiters.fetch_sub(1, Ordering::SeqCst);
            if woke? == Woke::TimedOut {
                crate::interrupt::check()?;
            }
        }
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](JoinableQueue::task_done).
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// q.join().unwrap(); // nothing was put
    /// ```
    pub fn join(&self) -> Result<()> {
        self.join_until(None)
    }

    /// Like [`join`](JoinableQueue::join), giving up with [`Error::Timeout`]
    /// after `timeout`.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// assert!(q.join_timeout(std::time::Duration::from_millis(5)).is_err());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.join_until(deadline_after(timeout))
    }

    /// Items put and not yet marked done.
    ///
    /// ```
    /// let q = forja::JoinableQueue::new().unwrap();
    /// q.put(&1u8).unwrap();
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// ```
    pub fn unfinished_tasks(&self) -> u64 {
        self.queue.ring.shm.join.unfinished.load(Ordering::SeqCst)
    }

    /// See [`Queue::qsize`].
    ///
    /// ```
    /// assert_eq!(forja::JoinableQueue::<u8>::new().unwrap().qsize(), 0);
    /// ```
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// See [`Queue::is_empty`].
    ///
    /// ```
    /// assert!(forja::JoinableQueue::<u8>::new().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// See [`Queue::is_full`].
    ///
    /// ```
    /// assert!(!forja::JoinableQueue::<u8>::new().unwrap().is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    /// See [`Queue::maxsize`].
    ///
    /// ```
    /// assert_eq!(forja::JoinableQueue::<u8>::new().unwrap().maxsize(), 0);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.queue.maxsize()
    }

    /// See [`Queue::close`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// q.close();
    /// assert!(q.put(&1).is_err());
    /// ```
    pub fn close(&self) {
        self.queue.close()
    }

    /// See [`Queue::is_closed`].
    ///
    /// ```
    /// let q = forja::JoinableQueue::<u8>::new().unwrap();
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

/// The plainest queue: unbounded, `put`, `get`, `is_empty` and `close`
/// (Python's `SimpleQueue`).
///
/// ```
/// let q = forja::SimpleQueue::new().unwrap();
/// q.put(&42u32).unwrap();
/// assert!(!q.is_empty());
/// assert_eq!(q.get().unwrap(), 42);
/// ```
pub struct SimpleQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("qsize", &self.queue.ring.qsize())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// ```
    /// assert!(forja::SimpleQueue::<u8>::new().unwrap().is_empty());
    /// ```
    pub fn new() -> Result<SimpleQueue<T>> {
        Ok(SimpleQueue {
            queue: Queue::new()?,
        })
    }

    /// Puts `item` (waits only while the ring buffer is full).
    ///
    /// ```
    /// forja::SimpleQueue::new().unwrap().put(&1u8).unwrap();
    /// ```
    pub fn put(&self, item: &T) -> Result<()> {
        self.queue.put(item)
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// ```
    /// let q = forja::SimpleQueue::new().unwrap();
    /// q.put(&'x').unwrap();
    /// assert_eq!(q.get().unwrap(), 'x');
    /// ```
    pub fn get(&self) -> Result<T> {
        self.queue.get()
    }

    /// Whether the queue is empty right now.
    ///
    /// ```
    /// assert!(forja::SimpleQueue::<u8>::new().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// See [`Queue::close`].
    ///
    /// ```
    /// let q = forja::SimpleQueue::<u8>::new().unwrap();
    /// q.close();
    /// assert!(q.put(&1).is_err());
    /// ```
    pub fn close(&self) {
        self.queue.close()
    }
}
