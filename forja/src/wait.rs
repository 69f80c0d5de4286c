//! Waiting on several things at once: [`wait`] tells which of some pipe
//! ends, processes and queues are ready (Python's
//! `multiprocessing.connection.wait`).
//!
//! Pipe ends and processes are file descriptors (a process through its
//! pidfd, [`Process::sentinel`](crate::Process::sentinel)), so one `poll`
//! waits for all of them. A queue is not: it is a ring in shared memory
//! with futex words, and one thread can sleep on one futex at a time. So
//! while a queue is among the things waited on, the wait looks at the
//! queues every [`QUEUE_SLICE`] (1 ms) between `poll`s of the fds: it
//! reacts to a queue within about a millisecond, at the cost of about a
//! thousand wake-ups a second while it waits (negligible next to a
//! process's work, and only while waiting). Without queues it sleeps in
//! `poll` and wakes only for the interrupt check, every
//! [`POLL_INTERVAL`](crate::registry::POLL_INTERVAL).
//!
//! ```
//! use forja::prelude::*;
//! use std::time::Duration;
//!
//! let (rx, tx) = Pipe::one_way::<String>().unwrap();
//! let q: Queue<u32> = Queue::new().unwrap();
//! let p = Process::new(move || tx.send(&"hola".to_string()).unwrap());
//! p.start().unwrap();
//! // Python: wait([rx, q._reader, p.sentinel])
//! let ready = forja::wait(&[&rx, &q, &p], Duration::MAX).unwrap();
//! assert!(ready.contains(&0) || ready.contains(&2));
//! assert!(!ready.contains(&1)); // nothing was put on the queue
//! assert_eq!(rx.recv().unwrap(), "hola");
//! p.join().unwrap();
//! ```

use crate::error::{Error, Result};
use crate::registry::{self, POLL_INTERVAL};
use nix::poll::{PollFd, PollFlags};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

/// How often a wait that includes a queue looks at it.
pub const QUEUE_SLICE: Duration = Duration::from_millis(1);

/// Something [`wait`] can wait on: [`Connection`](crate::Connection),
/// [`Receiver`](crate::Receiver), [`Process`](crate::Process),
/// [`Queue`](crate::Queue), [`JoinableQueue`](crate::JoinableQueue) and
/// [`SimpleQueue`](crate::SimpleQueue) (and references to them).
///
/// Ready means: a `recv` or `get` would not wait (a message or an item is
/// there, or the pipe is at end of file), or the process has ended.
pub trait Waitable: sealed::Sealed {}

impl<W: Waitable + ?Sized> Waitable for &W {}
impl<W: Waitable + ?Sized> sealed::Sealed for &W {
    fn probe(&self) -> Result<Probe> {
        (**self).probe()
    }
}

pub(crate) mod sealed {
    /// How [`wait`](super::wait) looks at one thing (not for users: the
    /// set of waitable types is forja's).
    pub trait Sealed {
        /// Whether it is ready now, or what to wait on.
        fn probe(&self) -> crate::Result<super::Probe>;
    }
}

/// What one look at a waitable found.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Ready now.
    Ready,
    /// Not ready; wait for this fd to become readable, then look again.
    Fd(RawFd),
    /// Not ready and no fd to wait on: look again after [`QUEUE_SLICE`].
    Poll,
}

/// Waits until at least one of `objects` is ready or `timeout` passes, and
/// returns the indices of the ready ones, in order (Python's
/// `multiprocessing.connection.wait`, which returns the objects
/// themselves). An empty `Vec` means the timeout passed, as Python's empty
/// list; `Duration::MAX` waits as long as it takes, `Duration::ZERO` only
/// looks.
///
/// Objects of different types go in one slice of references:
/// `forja::wait(&[&pipe_end, &queue, &process], timeout)`. For a `Vec` or
/// slice of one type, [`wait_slice`] takes it as it is.
///
/// Interruptible: [`Error::Interrupted`] when the cell is stopped. A
/// process that was never started is [`Error::ProcessNotStarted`].
///
/// ```
/// use forja::prelude::*;
/// use std::time::Duration;
///
/// let (a, b) = Pipe::new::<i32>().unwrap();
/// let (rx, _tx) = Pipe::one_way::<i32>().unwrap();
/// assert!(forja::wait(&[&a, &rx], Duration::ZERO).unwrap().is_empty());
/// b.send(&1).unwrap();
/// assert_eq!(forja::wait(&[&a, &rx], Duration::MAX).unwrap(), vec![0]);
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Duration) -> Result<Vec<usize>> {
    wait_slice(objects, timeout)
}

/// [`wait`] for a slice of one type, e.g. the reading ends of one pipe per
/// worker, or the workers themselves.
///
/// ```
/// use forja::prelude::*;
/// use std::time::Duration;
///
/// let procs: Vec<Process> = [50u64, 0].iter()
///     .map(|&ms| Process::new(move || std::thread::sleep(Duration::from_millis(ms))))
///     .collect();
/// for p in &procs { p.start().unwrap(); }
/// let first = forja::wait_slice(&procs, Duration::MAX).unwrap();
/// assert!(first.contains(&1)); // the one that does not sleep ends first
/// for p in &procs { p.join().unwrap(); }
/// ```
pub fn wait_slice<W: Waitable>(objects: &[W], timeout: Duration) -> Result<Vec<usize>> {
    let deadline = crate::deadline::deadline(timeout);
    let mut pfds: Vec<PollFd<'_>> = Vec::with_capacity(objects.len());
    loop {
        registry::check_interrupt()?;
        let mut ready = Vec::new();
        let mut any_poll = false;
        pfds.clear();
        for (i, o) in objects.iter().enumerate() {
            match o.probe()? {
                Probe::Ready => ready.push(i),
                Probe::Fd(fd) => {
                    // SAFETY: `fd` is `o`'s own (a process's pidfd, a pipe
                    // end's fd), open as long as `o` lives, and `objects`
                    // is borrowed for this whole call; the borrow ends with
                    // `pfds`, before the call returns.
                    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                    pfds.push(PollFd::new(fd, PollFlags::POLLIN));
                }
                Probe::Poll => any_poll = true,
            }
        }
        if !ready.is_empty() {
            return Ok(ready);
        }
        let mut slice = if any_poll { QUEUE_SLICE } else { POLL_INTERVAL };
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(ready);
            }
            slice = slice.min(left);
        }
        crate::os::poll_fds(&mut pfds, slice)
            .map_err(|e| Error::os("waiting on several things (poll)", e))?;
    }
}

impl Waitable for crate::Process {}
impl sealed::Sealed for crate::Process {
    /// Ready once it has ended (reaped here, as `is_alive` does).
    fn probe(&self) -> Result<Probe> {
        if self.running("wait")?.is_none() || self.poll_exit().is_some() {
            return Ok(Probe::Ready);
        }
        Ok(match self.sentinel.get() {
            Some(fd) => Probe::Fd(fd.as_raw_fd()),
            None => Probe::Poll, // no pidfds (Linux < 5.3): look every millisecond
        })
    }
}
