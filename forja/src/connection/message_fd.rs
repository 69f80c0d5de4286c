//! Length-prefixed messages over one non-blocking fd: each message goes on
//! the wire as an 8-byte length and its payload; reads and writes are
//! buffered, so many small messages cost one system call.

use super::os_err;
use crate::codec;
use crate::error::{Error, Result};
use crate::registry;
use crate::waits::record::{self as waits, Holder, Site};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Bytes of the length prefix of every message.
const HEADER: usize = 8;
const READ_CHUNK: usize = 64 * 1024;

/// The largest message a [`Connection`](super::Connection) or
/// [`Receiver`](super::Receiver) accepts unless told otherwise: 1 GiB. A
/// header naming more is refused instead of allocated (a peer's bad bytes
/// must not make this process allocate whatever they say).
pub(crate) const DEFAULT_MAX_MESSAGE: u64 = 1 << 30;
/// The highest limit that may be set (64 GiB): beyond any message a
/// machine this size can hold, so a larger "limit" is a mistake.
pub(crate) const MAX_MAX_MESSAGE: u64 = 1 << 36;

/// Waits until `fd` is ready for `events` or `deadline` passes, waking every
/// [`registry::POLL_INTERVAL`] to check the interrupt flag. `Ok(false)` on
/// the deadline.
///
/// With a `site` (a user's pipe end), a wait that has to sleep is recorded
/// in the wait table (`forja::waits`): the first look does not sleep.
fn wait_fd(
    fd: RawFd,
    events: libc::c_short,
    deadline: Option<Instant>,
    site: Option<Site>,
) -> Result<bool> {
    let mut recorded: Option<waits::Waiting> = None;
    loop {
        registry::check_interrupt()?;
        let mut slice = match (site, deadline) {
            (Some(_), None) => crate::sync::futex::UNTIMED_SLICE,
            _ => registry::POLL_INTERVAL,
        };
        if site.is_some() && recorded.is_none() {
            slice = Duration::ZERO;
        }
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
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::os("waiting on a pipe (poll)", e));
        }
        if r > 0 {
            // After waiting, the flag comes first: the kernel raises it
            // before it stops the cell's processes, so an end of file (or a
            // broken pipe, or the last words of a sender it stopped) seen
            // now is the interrupt's doing, not the other side's.
            registry::check_interrupt()?;
            return Ok(true);
        }
        if let Some(d) = deadline
            && Instant::now() >= d
        {
            return Ok(false);
        }
        if let Some(site) = site {
            match &mut recorded {
                Some(w) => w.check()?,
                None => {
                    recorded = Some(waits::begin(site, Holder::Anyone, deadline.is_some()));
                }
            }
        }
    }
}

/// Length-prefixed messages over one non-blocking fd, with a read and a
/// write buffer. A message on the wire is
/// its 8-byte length, then its payload.
pub(crate) struct MessageFd {
    fd: OwnedFd,
    /// What a wait on it is, in the wait table (a user's pipe end).
    site: Option<Site>,
    is_socket: bool,
    /// Received bytes; `rbuf[rpos..]` is not consumed yet.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Bytes to send; `wbuf[wpos..]` is not written yet.
    wbuf: Vec<u8>,
    wpos: usize,
    eof: bool,
    /// The largest message accepted, in bytes.
    max_message: u64,
}

impl MessageFd {
    pub(crate) fn new(fd: OwnedFd, is_socket: bool) -> Result<MessageFd> {
        // SAFETY: fcntl on an fd we own.
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
        Ok(MessageFd {
            fd,
            site: None,
            is_socket,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            eof: false,
            max_message: MAX_MAX_MESSAGE,
        })
    }

    /// Sets the largest message accepted: 1 to [`MAX_MAX_MESSAGE`] bytes.
    pub(crate) fn set_max_message(&mut self, bytes: u64) -> Result<()> {
        if bytes == 0 || bytes > MAX_MAX_MESSAGE {
            return Err(Error::InvalidArgument {
                message: format!(
                    "a pipe's message limit must be between 1 byte and {MAX_MAX_MESSAGE} bytes \
                     (64 GiB), not {bytes}"
                ),
                pid: crate::os::pid(),
            });
        }
        self.max_message = bytes;
        Ok(())
    }

    /// The length the next message's header names, if the header is here.
    fn next_len(&self) -> Option<u64> {
        let avail = &self.rbuf[self.rpos..];
        (avail.len() >= HEADER)
            .then(|| u64::from_le_bytes(avail[..HEADER].try_into().expect("8 bytes")))
    }

    /// `Err` if the next message is larger than the limit.
    fn check_next_len(&self) -> Result<()> {
        match self.next_len() {
            Some(len) if len > self.max_message => Err(Error::MessageTooLarge {
                len,
                max: self.max_message,
                pid: crate::os::pid(),
            }),
            _ => Ok(()),
        }
    }

    /// Names this fd a user's pipe end (a new id) unless it is one already;
    /// its id.
    pub(crate) fn user_end(&mut self) -> u32 {
        let kind = crate::waits::Kind::Connection;
        self.site
            .get_or_insert_with(|| Site::new(crate::waits::names::new_id(kind), kind))
            .id
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A new `MessageFd` on a duplicate of the fd (close-on-exec), with empty
    /// buffers.
    pub(crate) fn try_clone(&self) -> Result<MessageFd> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::os("duplicating a pipe end", e))?;
        let mut io = MessageFd::new(fd, self.is_socket)?;
        io.max_message = self.max_message;
        io.site = self.site;
        Ok(io)
    }

    /// The payload range of a complete message at the front of the buffer.
    pub(crate) fn message_ready(&self) -> Option<Range<usize>> {
        let len = self.next_len()?;
        if len > self.max_message {
            return None; // never ready: recv_message reports it
        }
        let len = len as usize;
        let avail = self.rbuf.len() - self.rpos;
        let start = self.rpos + HEADER;
        (avail - HEADER >= len).then(|| start..start + len)
    }

    /// Drops the message whose payload is `payload` from the buffer.
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

    /// Whether the peer has closed and every complete message was taken.
    pub(crate) fn at_eof(&self) -> bool {
        self.eof && self.message_ready().is_none()
    }

    /// One non-blocking read. `Ok(true)` if bytes arrived, `Ok(false)` if
    /// none are there yet; sets `eof` at end of file.
    pub(crate) fn read_some(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        // Make room: move unread bytes to the front, then reserve what the
        // message being received still needs (at least READ_CHUNK).
        if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos.., 0);
            self.rbuf.truncate(self.rbuf.len() - self.rpos);
            self.rpos = 0;
        }
        self.check_next_len()?;
        let mut want = READ_CHUNK;
        if let Some(len) = self.next_len() {
            want = want.max((HEADER + len as usize).saturating_sub(self.rbuf.len()));
        }
        self.rbuf.reserve(want);
        let spare = self.rbuf.spare_capacity_mut();
        loop {
            // SAFETY: reading into the Vec's spare capacity, at most its length.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
            if n > 0 {
                // SAFETY: the kernel initialised n bytes of the spare capacity.
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

    /// Waits for a complete message. `Ok(None)` on the deadline.
    pub(crate) fn recv_message(
        &mut self,
        deadline: Option<Instant>,
        what: &'static str,
    ) -> Result<Option<Range<usize>>> {
        registry::check_interrupt()?;
        loop {
            if let Some(r) = self.message_ready() {
                return Ok(Some(r));
            }
            self.check_next_len()?;
            if self.eof {
                return Err(Error::Eof {
                    what,
                    pid: crate::os::pid(),
                });
            }
            // Wait first, then read: in a request/response exchange the data
            // is rarely there yet, so this saves a read that would find none.
            if !wait_fd(self.raw_fd(), libc::POLLIN, deadline, self.site)? {
                return Ok(None);
            }
            self.read_some()?;
        }
    }

    /// Starts a message in the write buffer; returns where its length goes.
    pub(crate) fn begin_message(&mut self) -> usize {
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        let at = self.wbuf.len();
        self.wbuf.extend_from_slice(&[0; HEADER]);
        at
    }

    /// The write buffer, to append a message's payload to.
    pub(crate) fn wbuf(&mut self) -> &mut Vec<u8> {
        &mut self.wbuf
    }

    /// Writes the length of the message begun at `at`.
    pub(crate) fn end_message(&mut self, at: usize) {
        let len = (self.wbuf.len() - at - HEADER) as u64;
        self.wbuf[at..at + HEADER].copy_from_slice(&len.to_le_bytes());
    }

    /// Drops a message begun at `at` (its encoding failed).
    pub(crate) fn abort_message(&mut self, at: usize) {
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
            // SAFETY: writing from a live slice.
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
                    return Err(Error::BrokenPipe {
                        pid: crate::os::pid(),
                    });
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
            wait_fd(self.raw_fd(), libc::POLLOUT, None, None)?;
        }
        Ok(())
    }

    /// Sends one message made of `bytes`.
    pub(crate) fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let at = self.begin_message();
        self.wbuf.extend_from_slice(bytes);
        self.end_message(at);
        self.flush()
    }

    /// Sends one message holding `value` encoded.
    pub(crate) fn send_value<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        what: &'static str,
    ) -> Result<()> {
        let at = self.begin_message();
        if let Err(e) = codec::encode_into(&mut self.wbuf, value, what) {
            self.abort_message(at);
            return Err(e);
        }
        self.end_message(at);
        self.flush()
    }

    /// Receives one message and decodes it as a `T`, waiting for it;
    /// [`Error::Timeout`] at the deadline.
    pub(crate) fn recv_value<T: DeserializeOwned>(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<T> {
        let range = self.recv_or_timeout(deadline)?;
        let value = codec::decode(self.payload(range.clone()), "a pipe");
        self.consume(range);
        value
    }

    /// Receives one message as raw bytes, waiting for it;
    /// [`Error::Timeout`] at the deadline.
    pub(crate) fn recv_bytes(&mut self, deadline: Option<Instant>) -> Result<Vec<u8>> {
        let range = self.recv_or_timeout(deadline)?;
        let bytes = self.payload(range.clone()).to_vec();
        self.consume(range);
        Ok(bytes)
    }

    fn recv_or_timeout(&mut self, deadline: Option<Instant>) -> Result<Range<usize>> {
        self.recv_message(deadline, "a pipe")?
            .ok_or(Error::Timeout {
                what: "receiving from a pipe",
                pid: crate::os::pid(),
            })
    }

    /// Whether `recv` would return at once (a message, end of file, or a
    /// message over the limit), reading what the fd has without waiting.
    pub(crate) fn ready_now(&mut self) -> Result<bool> {
        loop {
            if self.message_ready().is_some() || self.eof || self.check_next_len().is_err() {
                return Ok(true);
            }
            if !self.read_some()? {
                return Ok(self.eof);
            }
        }
    }

    /// Whether a message can be received without waiting (or EOF is there).
    pub(crate) fn poll(&mut self, timeout: Duration) -> Result<bool> {
        registry::check_interrupt()?;
        let deadline = crate::deadline::deadline(timeout);
        loop {
            if self.message_ready().is_some() || self.eof {
                return Ok(true);
            }
            self.check_next_len()?;
            if self.read_some()? || self.eof {
                continue;
            }
            if !wait_fd(self.raw_fd(), libc::POLLIN, deadline, None)? {
                return Ok(false);
            }
        }
    }
}

impl Drop for MessageFd {
    fn drop(&mut self) {
        if let Some(reg) = registry::Registry::existing() {
            reg.unregister_end(self.fd.as_raw_fd());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn socket_pair() -> (MessageFd, MessageFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills two fds, which we own from here on.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: fresh fds.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        (
            MessageFd::new(a, true).unwrap(),
            MessageFd::new(b, true).unwrap(),
        )
    }

    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("cannot encode"))
        }
    }

    /// A send interrupted after buffering its message, then a send whose
    /// encoding fails: the first message must still go out whole, and the
    /// next good one after it.
    #[test]
    fn a_failed_encode_after_an_unfinished_send_drops_nothing() {
        let (mut a, mut b) = socket_pair();
        // What an interrupted `send_value` leaves: a whole message buffered,
        // not yet written.
        let at = a.begin_message();
        codec::encode_into(a.wbuf(), &1u32, "a test").unwrap();
        a.end_message(at);
        assert!(a.wants_write());
        assert!(a.send_value(&Fails, "a test").is_err());
        a.send_value(&2u32, "a test").unwrap();
        assert_eq!(b.recv_value::<u32>(None).unwrap(), 1);
        assert_eq!(b.recv_value::<u32>(None).unwrap(), 2);
    }

    #[test]
    fn an_oversized_header_is_an_error_not_an_allocation() {
        let (mut a, mut b) = socket_pair();
        b.set_max_message(1024).unwrap();
        let at = a.begin_message();
        a.wbuf().extend_from_slice(&[0; 10]);
        a.end_message(at);
        // Claim u64::MAX bytes in the header.
        a.wbuf()[at..at + HEADER].copy_from_slice(&u64::MAX.to_le_bytes());
        a.flush().unwrap();
        let r = b.recv_bytes(None);
        assert!(
            matches!(
                r,
                Err(Error::MessageTooLarge {
                    len: u64::MAX,
                    max: 1024,
                    ..
                })
            ),
            "{r:?}"
        );
        assert!(b.poll(Duration::ZERO).is_err());
    }

    #[test]
    fn a_limit_of_zero_or_above_64_gib_is_refused() {
        let (mut a, _b) = socket_pair();
        assert!(a.set_max_message(0).is_err());
        assert!(a.set_max_message(MAX_MAX_MESSAGE + 1).is_err());
        a.set_max_message(1).unwrap();
        a.set_max_message(MAX_MAX_MESSAGE).unwrap();
    }
}
