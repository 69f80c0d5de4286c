//! Pipes between processes: [`Pipe::new`] gives two [`Connection`]s joined
//! both ways (a Unix socket pair); [`Pipe::one_way`] gives a [`Receiver`] and
//! a [`Sender`] (an OS pipe), like Python's `Pipe(duplex=False)`, in the same
//! order: reading end first.
//!
//! Each message is one frame: an 8-byte length and the payload, written with
//! one system call when the pipe has room; messages far larger than the pipe
//! buffer work (they are streamed). Typed messages are encoded with
//! `postcard` (see `codec.rs` for why). Reads are buffered, so many small
//! messages cost one `read`.
//!
//! `recv` returns [`Error::Eof`] once every process that could write to the
//! other end has closed it or exited — a child that died included.
//!
//! ```
//! use forja::prelude::*;
//!
//! let (parent, child) = Pipe::new::<String>().unwrap();
//! let p = Process::new(move || {
//!     let got = child.recv().unwrap();
//!     child.send(&got.to_uppercase()).unwrap();
//! });
//! p.start().unwrap();
//! parent.send(&"hola".to_string()).unwrap();
//! assert_eq!(parent.recv().unwrap(), "HOLA");
//! p.join().unwrap();
//! ```

use crate::codec;
use crate::error::{Error, Result};
use crate::registry;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Bytes of the length prefix of every frame.
pub(crate) const HEADER: usize = 8;
const READ_CHUNK: usize = 64 * 1024;

fn pid() -> i32 {
    std::process::id() as i32
}

fn os_err(what: &'static str) -> Error {
    Error::os(what, io::Error::last_os_error())
}

/// Waits until `fd` is ready for `events` or `deadline` passes, waking every
/// [`registry::POLL_INTERVAL`] to check the interrupt flag. `Ok(false)` on
/// the deadline.
pub(crate) fn wait_fd(fd: RawFd, events: libc::c_short, deadline: Option<Instant>) -> Result<bool> {
    loop {
        registry::check_interrupt()?;
        let mut slice = registry::POLL_INTERVAL;
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                // One last non-blocking look.
                slice = Duration::ZERO;
            } else {
                slice = slice.min(d - now);
            }
        }
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let ms = slice.as_micros().div_ceil(1000) as libc::c_int;
        // Safety: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::os("waiting on a pipe (poll)", e));
        }
        if r > 0 {
            return Ok(true);
        }
        if let Some(d) = deadline
            && Instant::now() >= d
        {
            return Ok(false);
        }
    }
}

/// Frame reading and writing over one non-blocking fd.
pub(crate) struct FrameIo {
    fd: OwnedFd,
    is_socket: bool,
    /// Received bytes; `rbuf[rpos..]` is not consumed yet.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Bytes to send; `wbuf[wpos..]` is not written yet.
    wbuf: Vec<u8>,
    wpos: usize,
    eof: bool,
}

impl FrameIo {
    pub(crate) fn new(fd: OwnedFd, is_socket: bool) -> Result<FrameIo> {
        // Safety: fcntl on an fd we own.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0
            {
                return Err(os_err("making a pipe non-blocking"));
            }
        }
        if let Ok(reg) = registry::Registry::current() {
            reg.register_end(fd.as_raw_fd());
        }
        Ok(FrameIo {
            fd,
            is_socket,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            eof: false,
        })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A new `FrameIo` on a duplicate of the fd (close-on-exec), with empty
    /// buffers.
    pub(crate) fn try_clone(&self) -> Result<FrameIo> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::os("duplicating a pipe end", e))?;
        FrameIo::new(fd, self.is_socket)
    }

    /// The payload range of a complete frame at the front of the buffer.
    pub(crate) fn frame_ready(&self) -> Option<Range<usize>> {
        let avail = &self.rbuf[self.rpos..];
        if avail.len() < HEADER {
            return None;
        }
        let len = u64::from_le_bytes(avail[..HEADER].try_into().expect("8 bytes")) as usize;
        let start = self.rpos + HEADER;
        (avail.len() - HEADER >= len).then(|| start..start + len)
    }

    /// Drops the frame whose payload is `payload` from the buffer.
    pub(crate) fn consume(&mut self, payload: Range<usize>) {
        self.rpos = payload.end;
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
    }

    pub(crate) fn payload(&self, range: Range<usize>) -> &[u8] {
        &self.rbuf[range]
    }

    /// Whether the peer has closed and every complete frame was taken.
    pub(crate) fn at_eof(&self) -> bool {
        self.eof && self.frame_ready().is_none()
    }

    /// One non-blocking read. `Ok(true)` if bytes arrived, `Ok(false)` if
    /// none are there yet; sets `eof` at end of file.
    pub(crate) fn read_some(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        // Make room: move unread bytes to the front, then reserve what the
        // frame being received still needs (at least READ_CHUNK).
        if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos.., 0);
            self.rbuf.truncate(self.rbuf.len() - self.rpos);
            self.rpos = 0;
        }
        let mut want = READ_CHUNK;
        if self.rbuf.len() >= HEADER {
            let len = u64::from_le_bytes(self.rbuf[..HEADER].try_into().expect("8 bytes")) as usize;
            want = want.max((HEADER + len).saturating_sub(self.rbuf.len()));
        }
        self.rbuf.reserve(want);
        let spare = self.rbuf.spare_capacity_mut();
        loop {
            // Safety: reading into the Vec's spare capacity, at most its length.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
            if n > 0 {
                // Safety: the kernel initialised n bytes of the spare capacity.
                unsafe { self.rbuf.set_len(self.rbuf.len() + n as usize) };
                return Ok(true);
            }
            if n == 0 {
                self.eof = true;
                return Ok(false);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(false),
                // A socket whose peer vanished mid-stream.
                Some(libc::ECONNRESET) => {
                    self.eof = true;
                    return Ok(false);
                }
                _ => return Err(Error::os("reading from a pipe", e)),
            }
        }
    }

    /// Waits for a complete frame. `Ok(None)` on the deadline.
    pub(crate) fn recv_frame(
        &mut self,
        deadline: Option<Instant>,
        what: &'static str,
    ) -> Result<Option<Range<usize>>> {
        registry::check_interrupt()?;
        loop {
            if let Some(r) = self.frame_ready() {
                return Ok(Some(r));
            }
            if self.eof {
                return Err(Error::Eof { what, pid: pid() });
            }
            // Wait first, then read: in a request/response exchange the data
            // is rarely there yet, so this saves a read that would find none.
            if !wait_fd(self.raw_fd(), libc::POLLIN, deadline)? {
                return Ok(None);
            }
            self.read_some()?;
        }
    }

    /// Starts a frame in the write buffer; returns where its length goes.
    pub(crate) fn begin_frame(&mut self) -> usize {
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        let at = self.wbuf.len();
        self.wbuf.extend_from_slice(&[0; HEADER]);
        at
    }

    /// The write buffer, to append a frame's payload to.
    pub(crate) fn wbuf(&mut self) -> &mut Vec<u8> {
        &mut self.wbuf
    }

    /// Writes the length of the frame begun at `at`.
    pub(crate) fn end_frame(&mut self, at: usize) {
        let len = (self.wbuf.len() - at - HEADER) as u64;
        self.wbuf[at..at + HEADER].copy_from_slice(&len.to_le_bytes());
    }

    /// Drops a frame begun at `at` (its encoding failed).
    pub(crate) fn abort_frame(&mut self, at: usize) {
        self.wbuf.truncate(at);
    }

    /// Whether bytes wait to be written.
    pub(crate) fn wants_write(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// Writes what it can without blocking. `Ok(true)` when all is written.
    pub(crate) fn write_some(&mut self) -> Result<bool> {
        while self.wpos < self.wbuf.len() {
            let rest = &self.wbuf[self.wpos..];
            // Safety: writing from a live slice.
            let n = unsafe {
                if self.is_socket {
                    libc::send(
                        self.fd.as_raw_fd(),
                        rest.as_ptr().cast(),
                        rest.len(),
                        libc::MSG_NOSIGNAL,
                    )
                } else {
                    libc::write(self.fd.as_raw_fd(), rest.as_ptr().cast(), rest.len())
                }
            };
            if n >= 0 {
                self.wpos += n as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(false),
                Some(libc::EPIPE) | Some(libc::ECONNRESET) => {
                    self.wbuf.clear();
                    self.wpos = 0;
                    return Err(Error::BrokenPipe { pid: pid() });
                }
                _ => return Err(Error::os("writing to a pipe", e)),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(true)
    }

    /// Writes everything buffered, waiting for room as needed.
    pub(crate) fn flush(&mut self) -> Result<()> {
        while !self.write_some()? {
            wait_fd(self.raw_fd(), libc::POLLOUT, None)?;
        }
        Ok(())
    }

    /// Sends one frame made of `bytes`.
    pub(crate) fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let at = self.begin_frame();
        self.wbuf.extend_from_slice(bytes);
        self.end_frame(at);
        self.flush()
    }

    /// Sends one frame holding `value` encoded.
    pub(crate) fn send_value<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        what: &'static str,
    ) -> Result<()> {
        let at = self.begin_frame();
        if let Err(e) = codec::encode_into(&mut self.wbuf, value, what) {
            self.abort_frame(at);
            return Err(e);
        }
        self.end_frame(at);
        self.flush()
    }

    /// Whether a frame can be received without waiting (or EOF is there).
    pub(crate) fn poll(&mut self, timeout: Duration) -> Result<bool> {
        registry::check_interrupt()?;
        let deadline = Instant::now() + timeout;
        loop {
            if self.frame_ready().is_some() || self.eof {
                return Ok(true);
            }
            if self.read_some()? || self.eof {
                continue;
            }
            if !wait_fd(self.raw_fd(), libc::POLLIN, Some(deadline))? {
                return Ok(false);
            }
        }
    }
}

impl Drop for FrameIo {
    fn drop(&mut self) {
        if let Some(reg) = registry::Registry::existing() {
            reg.unregister_end(self.fd.as_raw_fd());
        }
    }
}

fn recv_typed<T: DeserializeOwned>(io: &mut FrameIo, deadline: Option<Instant>) -> Result<T> {
    let Some(range) = io.recv_frame(deadline, "a pipe")? else {
        return Err(Error::Timeout {
            what: "receiving from a pipe",
            pid: pid(),
        });
    };
    let value = codec::decode(io.payload(range.clone()), "a pipe");
    io.consume(range);
    value
}

fn recv_raw(io: &mut FrameIo, deadline: Option<Instant>) -> Result<Vec<u8>> {
    let Some(range) = io.recv_frame(deadline, "a pipe")? else {
        return Err(Error::Timeout {
            what: "receiving from a pipe",
            pid: pid(),
        });
    };
    let bytes = io.payload(range.clone()).to_vec();
    io.consume(range);
    Ok(bytes)
}

/// Makes pipes. See [`Pipe::new`] and [`Pipe::one_way`].
///
/// ```
/// let (a, b) = forja::Pipe::new::<u32>().unwrap();
/// a.send(&7).unwrap();
/// assert_eq!(b.recv().unwrap(), 7);
/// ```
#[derive(Debug)]
pub struct Pipe;

impl Pipe {
    /// Two connected ends; each can send and receive (Python's `Pipe()`).
    /// Give one to a child (move it into the closure) and keep the other.
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<String>().unwrap();
    /// b.send(&"ping".to_string()).unwrap();
    /// assert_eq!(a.recv().unwrap(), "ping");
    /// ```
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T>() -> Result<(Connection<T>, Connection<T>)> {
        let mut fds = [0; 2];
        // Safety: socketpair fills two fds.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if r != 0 {
            return Err(os_err("making a pipe (socketpair)"));
        }
        // Safety: both fds are fresh and ours.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((
            Connection::from_io(FrameIo::new(a, true)?),
            Connection::from_io(FrameIo::new(b, true)?),
        ))
    }

    /// A one-way pipe: `(receiver, sender)`, reading end first as in
    /// Python's `Pipe(duplex=False)`. The types keep you from sending on the
    /// reading end.
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<Vec<i32>>().unwrap();
    /// tx.send(&vec![1, 2, 3]).unwrap();
    /// assert_eq!(rx.recv().unwrap(), vec![1, 2, 3]);
    /// ```
    pub fn one_way<T>() -> Result<(Receiver<T>, Sender<T>)> {
        let mut fds = [0; 2];
        // Safety: pipe2 fills two fds.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(os_err("making a pipe (pipe2)"));
        }
        // Safety: both fds are fresh and ours.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((
            Receiver {
                io: RefCell::new(FrameIo::new(r, false)?),
                _marker: PhantomData,
            },
            Sender {
                io: RefCell::new(FrameIo::new(w, false)?),
                _marker: PhantomData,
            },
        ))
    }
}

/// One end of a two-way pipe made by [`Pipe::new`]: sends and receives
/// messages of type `T`.
///
/// Any `T: Serialize + DeserializeOwned` travels (numbers, `String`, `Vec`,
/// your own `#[derive(Serialize, Deserialize)]` types). Use it from one
/// process at a time: if two processes send on the same end at once, their
/// large messages may interleave.
///
/// ```
/// use forja::prelude::*;
/// let (a, b) = Pipe::new::<(u8, String)>().unwrap();
/// a.send(&(1, "uno".into())).unwrap();
/// assert_eq!(b.recv().unwrap(), (1, "uno".to_string()));
/// ```
pub struct Connection<T> {
    io: RefCell<FrameIo>,
    _marker: PhantomData<fn(T) -> T>,
}

impl<T> Connection<T> {
    fn from_io(io: FrameIo) -> Self {
        Connection {
            io: RefCell::new(io),
            _marker: PhantomData,
        }
    }

    /// Sends raw bytes as one message (no encoding).
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<()>().unwrap();
    /// a.send_bytes(b"raw").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"raw");
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.io.borrow_mut().send_bytes(bytes)
    }

    /// Receives one message as raw bytes, waiting for it.
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<()>().unwrap();
    /// b.send_bytes(&[1, 2]).unwrap();
    /// assert_eq!(a.recv_bytes().unwrap(), vec![1, 2]);
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        recv_raw(&mut self.io.borrow_mut(), None)
    }

    /// Whether a message (or end of file) is there, waiting up to `timeout`
    /// (`Duration::ZERO` just looks).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = forja::Pipe::new::<i32>().unwrap();
    /// assert!(!a.poll(Duration::ZERO).unwrap());
    /// b.send(&1).unwrap();
    /// assert!(a.poll(Duration::from_secs(1)).unwrap());
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        self.io.borrow_mut().poll(timeout)
    }

    /// Closes this end (the same as dropping it).
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<i32>().unwrap();
    /// a.close();
    /// assert!(matches!(b.recv(), Err(forja::Error::Eof { .. })));
    /// ```
    pub fn close(self) {}

    /// Another handle on the same end, e.g. to give one to each of several
    /// children. The end is closed only when every handle is.
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<i32>().unwrap();
    /// let b2 = b.try_clone().unwrap();
    /// b2.send(&1).unwrap();
    /// assert_eq!(a.recv().unwrap(), 1);
    /// ```
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Connection::from_io(self.io.borrow().try_clone()?))
    }
}

impl<T: Serialize + DeserializeOwned> Connection<T> {
    /// Sends one message. Waits only while the pipe is full.
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<f64>().unwrap();
    /// a.send(&2.5).unwrap();
    /// assert_eq!(b.recv().unwrap(), 2.5);
    /// ```
    pub fn send(&self, value: &T) -> Result<()> {
        self.io.borrow_mut().send_value(value, "a pipe")
    }

    /// Receives one message, waiting for it. [`Error::Eof`] once every
    /// process holding the other end has closed it or exited.
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<i32>().unwrap();
    /// a.send(&5).unwrap();
    /// drop(a);
    /// assert_eq!(b.recv().unwrap(), 5);
    /// assert!(matches!(b.recv(), Err(forja::Error::Eof { .. })));
    /// ```
    pub fn recv(&self) -> Result<T> {
        recv_typed(&mut self.io.borrow_mut(), None)
    }

    /// Like [`recv`](Self::recv), but gives up with [`Error::Timeout`] after
    /// `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, _b) = forja::Pipe::new::<i32>().unwrap();
    /// let r = a.recv_timeout(Duration::from_millis(10));
    /// assert!(matches!(r, Err(forja::Error::Timeout { .. })));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        recv_typed(&mut self.io.borrow_mut(), Some(Instant::now() + timeout))
    }
}

/// The reading end of a one-way pipe made by [`Pipe::one_way`].
///
/// ```
/// let (rx, tx) = forja::Pipe::one_way::<u64>().unwrap();
/// tx.send(&1).unwrap();
/// assert_eq!(rx.recv().unwrap(), 1);
/// ```
pub struct Receiver<T> {
    io: RefCell<FrameIo>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Receiver<T> {
    /// Receives one message as raw bytes, waiting for it.
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<()>().unwrap();
    /// tx.send_bytes(b"x").unwrap();
    /// assert_eq!(rx.recv_bytes().unwrap(), b"x");
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        recv_raw(&mut self.io.borrow_mut(), None)
    }

    /// Whether a message (or end of file) is there, waiting up to `timeout`.
    ///
    /// ```
    /// let (rx, _tx) = forja::Pipe::one_way::<i32>().unwrap();
    /// assert!(!rx.poll(std::time::Duration::ZERO).unwrap());
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        self.io.borrow_mut().poll(timeout)
    }

    /// Closes this end (the same as dropping it).
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<i32>().unwrap();
    /// rx.close();
    /// assert!(matches!(tx.send(&1), Err(forja::Error::BrokenPipe { .. })));
    /// ```
    pub fn close(self) {}

    /// Another handle on the reading end (several consumers may share it;
    /// each message goes to one of them — keep messages small then, as
    /// large ones could be split between readers).
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<u8>().unwrap();
    /// let rx2 = rx.try_clone().unwrap();
    /// tx.send(&5).unwrap();
    /// assert_eq!(rx2.recv().unwrap(), 5);
    /// ```
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Receiver {
            io: RefCell::new(self.io.borrow().try_clone()?),
            _marker: PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Receives one message, waiting for it; [`Error::Eof`] once every
    /// sender is closed or has exited.
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<String>().unwrap();
    /// tx.send(&"hola".to_string()).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv().unwrap(), "hola");
    /// assert!(matches!(rx.recv(), Err(forja::Error::Eof { .. })));
    /// ```
    pub fn recv(&self) -> Result<T> {
        recv_typed(&mut self.io.borrow_mut(), None)
    }

    /// Like [`recv`](Self::recv), but gives up with [`Error::Timeout`].
    ///
    /// ```
    /// let (rx, _tx) = forja::Pipe::one_way::<i32>().unwrap();
    /// assert!(rx.recv_timeout(std::time::Duration::from_millis(5)).is_err());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        recv_typed(&mut self.io.borrow_mut(), Some(Instant::now() + timeout))
    }
}

/// The writing end of a one-way pipe made by [`Pipe::one_way`].
///
/// ```
/// let (rx, tx) = forja::Pipe::one_way::<char>().unwrap();
/// tx.send(&'ñ').unwrap();
/// assert_eq!(rx.recv().unwrap(), 'ñ');
/// ```
pub struct Sender<T> {
    io: RefCell<FrameIo>,
    _marker: PhantomData<fn(T)>,
}

impl<T> Sender<T> {
    /// Sends raw bytes as one message (no encoding).
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<()>().unwrap();
    /// tx.send_bytes(&[9]).unwrap();
    /// assert_eq!(rx.recv_bytes().unwrap(), vec![9]);
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.io.borrow_mut().send_bytes(bytes)
    }

    /// Closes this end (the same as dropping it).
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<i32>().unwrap();
    /// tx.close();
    /// assert!(matches!(rx.recv(), Err(forja::Error::Eof { .. })));
    /// ```
    pub fn close(self) {}

    /// Another handle on the writing end, to give one to each of several
    /// children. End of file comes once every handle is closed. Messages
    /// up to `PIPE_BUF` (4096 bytes) from different writers never mix.
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<u8>().unwrap();
    /// let tx2 = tx.try_clone().unwrap();
    /// tx2.send(&1).unwrap();
    /// drop((tx, tx2));
    /// assert_eq!(rx.recv().unwrap(), 1);
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Sender {
            io: RefCell::new(self.io.borrow().try_clone()?),
            _marker: PhantomData,
        })
    }
}

impl<T: Serialize> Sender<T> {
    /// Sends one message. Waits only while the pipe is full;
    /// [`Error::BrokenPipe`] if no process can read it any more.
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<i32>().unwrap();
    /// tx.send(&3).unwrap();
    /// assert_eq!(rx.recv().unwrap(), 3);
    /// ```
    pub fn send(&self, value: &T) -> Result<()> {
        self.io.borrow_mut().send_value(value, "a pipe")
    }
}

macro_rules! fd_impls {
    ($($ty:ident),*) => {$(
        impl<T> AsRawFd for $ty<T> {
            fn as_raw_fd(&self) -> RawFd {
                self.io.borrow().raw_fd()
            }
        }
        impl<T> AsFd for $ty<T> {
            fn as_fd(&self) -> BorrowedFd<'_> {
                // Safety: the fd lives as long as self.
                unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
            }
        }
        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.as_raw_fd())
                    .field("message_type", &std::any::type_name::<T>())
                    .finish()
            }
        }
    )*};
}
fd_impls!(Connection, Receiver, Sender);
