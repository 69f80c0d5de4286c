//! Length-prefixed messages over one non-blocking fd: each message goes on
//! the wire as an 8-byte length and its payload; reads and writes are
//! buffered, so many small messages cost one system call.

use crate::codec;
use crate::error::{Error, Result};
use crate::registry;
use crate::waits::record::{self as waits, Holder, Site};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, send};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
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
    fd: BorrowedFd<'_>,
    events: PollFlags,
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
        let ms =
            PollTimeout::try_from(slice.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
        let r = match poll(&mut [PollFd::new(fd, events)], ms) {
            Ok(r) => r,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::os("waiting on a pipe (poll)", e)),
        };
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
        fcntl(&fd, FcntlArg::F_GETFL)
            .and_then(|flags| {
                let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
                fcntl(&fd, FcntlArg::F_SETFL(flags))
            })
            .map_err(|e| Error::os("making a pipe non-blocking", e))?;
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
            // libc, not nix: `nix::unistd::read` wants an initialised
            // `&mut [u8]`, and zeroing 64 KiB before every read costs more
            // than many small messages' whole round trip.
            // SAFETY: `spare` is the Vec's spare capacity, writable for
            // `spare.len()` bytes, and nothing else refers to it meanwhile.
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
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => return Ok(false),
                // A socket whose peer vanished mid-stream.
                Errno::ECONNRESET => {
                    self.eof = true;
                    return Ok(false);
                }
                e => return Err(Error::os("reading from a pipe", e)),
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
            if !wait_fd(self.fd.as_fd(), PollFlags::POLLIN, deadline, self.site)? {
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
            let n = if self.is_socket {
                send(self.fd.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL)
            } else {
                nix::unistd::write(&self.fd, rest)
            };
            let e = match n {
                Ok(n) => {
                    self.wpos += n;
                    continue;
                }
                Err(e) => e,
            };
            match e {
                Errno::EINTR => continue,
                Errno::EAGAIN => return Ok(false),
                Errno::EPIPE | Errno::ECONNRESET => {
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
            wait_fd(self.fd.as_fd(), PollFlags::POLLOUT, None, None)?;
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
            if !wait_fd(self.fd.as_fd(), PollFlags::POLLIN, deadline, None)? {
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

    fn socket_pair() -> (MessageFd, MessageFd) {
        let (a, b) = super::super::socket_pair().unwrap();
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

    /// Property tests of the framing: what a reader makes of any bytes.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// The messages a reader must find in `wire`, by an independent
        /// reading of the format: each 8-byte length and its payload, in
        /// order, up to the first incomplete one; and whether the wire then
        /// names a message longer than `max` (an error, not an end of file).
        fn reference_frames(wire: &[u8], max: u64) -> (Vec<&[u8]>, bool) {
            let mut frames = Vec::new();
            let mut rest = wire;
            while rest.len() >= HEADER {
                let len = u64::from_le_bytes(rest[..HEADER].try_into().unwrap());
                if len > max {
                    return (frames, true);
                }
                let Some(payload) = rest[HEADER..].get(..len as usize) else {
                    break;
                };
                frames.push(payload);
                rest = &rest[HEADER + payload.len()..];
            }
            (frames, false)
        }

        /// A reader whose peer wrote `wire` (in one go: it fits the socket
        /// buffer) and closed.
        fn reader_of(wire: &[u8], max: u64) -> MessageFd {
            let (a, b) = super::super::super::socket_pair().unwrap();
            let mut sent = 0;
            while sent < wire.len() {
                sent += nix::unistd::write(&b, &wire[sent..]).unwrap();
            }
            drop(b);
            let mut r = MessageFd::new(a, true).unwrap();
            r.set_max_message(max).unwrap();
            r
        }

        fn frame(payloads: &[Vec<u8>]) -> Vec<u8> {
            let mut wire = Vec::new();
            for p in payloads {
                wire.extend_from_slice(&(p.len() as u64).to_le_bytes());
                wire.extend_from_slice(p);
            }
            wire
        }

        /// Well-framed bytes, then damaged: cut short, a byte flipped, and
        /// arbitrary bytes appended (each maybe).
        fn damaged_wire() -> impl Strategy<Value = Vec<u8>> {
            (
                prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12),
                any::<Option<prop::sample::Index>>(),
                any::<Option<(prop::sample::Index, u8)>>(),
                prop::collection::vec(any::<u8>(), 0..24),
            )
                .prop_map(|(payloads, cut, flip, tail)| {
                    let mut wire = frame(&payloads);
                    if let Some(i) = cut
                        && !wire.is_empty()
                    {
                        wire.truncate(i.index(wire.len()));
                    }
                    if let Some((i, bits)) = flip
                        && !wire.is_empty()
                    {
                        let i = i.index(wire.len());
                        wire[i] ^= bits;
                    }
                    wire.extend_from_slice(&tail);
                    wire
                })
        }

        /// Every message until the reader stops, and how it stopped.
        fn read_all(r: &mut MessageFd) -> (Vec<Vec<u8>>, Error) {
            let mut got = Vec::new();
            loop {
                match r.recv_bytes(None) {
                    Ok(m) => got.push(m),
                    Err(e) => return (got, e),
                }
            }
        }

        proptest! {
            /// Any bytes: the reader returns exactly the reference's
            /// messages (nothing read past a payload's end, nothing
            /// invented), then end of file, or "too large" where a header
            /// names more than the limit; it never panics.
            #[test]
            fn any_bytes_frame_as_the_format_says(
                wire in prop_oneof![damaged_wire(), prop::collection::vec(any::<u8>(), 0..2048)],
                max in prop_oneof![1u64..600, Just(DEFAULT_MAX_MESSAGE)],
            ) {
                let (want, too_large) = reference_frames(&wire, max);
                let mut r = reader_of(&wire, max);
                let (got, end) = read_all(&mut r);
                prop_assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    prop_assert_eq!(&g[..], *w);
                }
                if too_large {
                    prop_assert!(matches!(end, Error::MessageTooLarge { .. }), "{end:?}");
                } else {
                    prop_assert!(matches!(end, Error::Eof { .. }), "{end:?}");
                }
            }

            /// Messages sent through the writer arrive whole and in order.
            #[test]
            fn sent_bytes_round_trip(
                payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..12),
            ) {
                let (mut a, mut b) = socket_pair();
                for p in &payloads {
                    a.send_bytes(p).unwrap();
                }
                drop(a);
                let (got, end) = read_all(&mut b);
                prop_assert_eq!(got, payloads);
                prop_assert!(matches!(end, Error::Eof { .. }), "{end:?}");
            }

            /// Values sent encoded decode to themselves; a payload of any
            /// bytes decodes to a value or an error, never a panic.
            #[test]
            fn values_round_trip_and_any_payload_decodes_or_fails(
                values in prop::collection::vec(
                    any::<(String, Vec<i64>, Option<char>, bool)>(), 0..8),
                junk in prop::collection::vec(any::<u8>(), 0..256),
            ) {
                let (mut a, mut b) = socket_pair();
                for v in &values {
                    a.send_value(v, "a test").unwrap();
                }
                a.send_bytes(&junk).unwrap();
                for v in &values {
                    let got: (String, Vec<i64>, Option<char>, bool) = b.recv_value(None).unwrap();
                    prop_assert_eq!(&got, v);
                }
                let _ = b.recv_value::<(String, Vec<i64>, Option<char>, bool)>(None);
            }
        }
    }
}
