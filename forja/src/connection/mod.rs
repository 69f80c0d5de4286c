//! Pipes between processes: [`Pipe::new`] gives two [`Connection`]s joined
//! both ways (a Unix socket pair); [`Pipe::one_way`] gives a [`Receiver`] and
//! a [`Sender`] (an OS pipe), like Python's `Pipe(duplex=False)`, in the same
//! order: reading end first.
//!
//! Each message goes on the wire as an 8-byte length and the payload
//! (`message_fd.rs`), written with one system call when the pipe has room;
//! messages far larger than the pipe buffer work (they are streamed). Typed
//! messages are encoded with `postcard` (see `codec.rs` for why). Reads are
//! buffered, so many small messages cost one `read`.
//!
//! `recv` returns [`Error::Eof`] once every process that could write to the
//! other end has closed it or exited — a child that died included.
//!
//! A receiving end accepts messages up to 1 GiB
//! ([`with_max_message_bytes`](Connection::with_max_message_bytes) changes
//! that): a larger one is [`Error::MessageTooLarge`], never an allocation of
//! whatever size the bytes on the pipe name.
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

mod message_fd;

use message_fd::DEFAULT_MAX_MESSAGE;
pub(crate) use message_fd::MessageFd;

use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

/// A connected pair of Unix stream sockets, both close-on-exec.
pub(crate) fn socket_pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
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
        let (a, b) = socket_pair().map_err(|e| Error::os("making a pipe (socketpair)", e))?;
        Ok((
            Connection::from_io(MessageFd::new(a, true)?),
            Connection::from_io(MessageFd::new(b, true)?),
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
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::os("making a pipe (pipe2)", e))?;
        let mut r = MessageFd::new(r, false)?;
        r.set_max_message(DEFAULT_MAX_MESSAGE)?;
        let id = r.user_end();
        Ok((
            Receiver {
                io: RefCell::new(r),
                id,
                _marker: PhantomData,
            },
            Sender {
                io: RefCell::new(MessageFd::new(w, false)?),
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
    io: RefCell<MessageFd>,
    id: u32,
    _marker: PhantomData<fn(T) -> T>,
}

crate::waits::names::named!([T] Connection<T>, crate::waits::Kind::Connection, id);

impl<T> Connection<T> {
    fn from_io(mut io: MessageFd) -> Self {
        io.set_max_message(DEFAULT_MAX_MESSAGE)
            .expect("the default limit is valid");
        let id = io.user_end();
        Connection {
            io: RefCell::new(io),
            id,
            _marker: PhantomData,
        }
    }

    /// Sets the largest message this end accepts (default 1 GiB); a larger
    /// one is [`Error::MessageTooLarge`] instead of an allocation of that
    /// size. `bytes` must be between 1 and 64 GiB ([`Error::InvalidArgument`]).
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<Vec<u8>>().unwrap();
    /// let b = b.with_max_message_bytes(16).unwrap();
    /// a.send(&vec![0; 100]).unwrap();
    /// assert!(matches!(b.recv(), Err(forja::Error::MessageTooLarge { .. })));
    /// assert!(a.with_max_message_bytes(0).is_err());
    /// ```
    #[track_caller]
    pub fn with_max_message_bytes(self, bytes: u64) -> Result<Self> {
        crate::located::located(
            self.with_max_message_bytes_body(bytes),
            "Connection::with_max_message_bytes",
        )
    }

    fn with_max_message_bytes_body(self, bytes: u64) -> Result<Self> {
        self.io.borrow_mut().set_max_message(bytes)?;
        Ok(self)
    }

    /// Sends raw bytes as one message (no encoding).
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<()>().unwrap();
    /// a.send_bytes(b"raw").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"raw");
    /// ```
    #[track_caller]
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        crate::located::located(self.send_bytes_body(bytes), "Connection::send_bytes")
    }

    fn send_bytes_body(&self, bytes: &[u8]) -> Result<()> {
        self.io.borrow_mut().send_bytes(bytes)
    }

    /// Receives one message as raw bytes, waiting for it.
    ///
    /// ```
    /// let (a, b) = forja::Pipe::new::<()>().unwrap();
    /// b.send_bytes(&[1, 2]).unwrap();
    /// assert_eq!(a.recv_bytes().unwrap(), vec![1, 2]);
    /// ```
    #[track_caller]
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        crate::located::located(self.recv_bytes_body(), "Connection::recv_bytes")
    }

    fn recv_bytes_body(&self) -> Result<Vec<u8>> {
        self.io.borrow_mut().recv_bytes(None)
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
    #[track_caller]
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        crate::located::located(self.poll_body(timeout), "Connection::poll")
    }

    fn poll_body(&self, timeout: Duration) -> Result<bool> {
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
    #[track_caller]
    pub fn try_clone(&self) -> Result<Self> {
        crate::located::located(self.try_clone_body(), "Connection::try_clone")
    }

    fn try_clone_body(&self) -> Result<Self> {
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
    #[track_caller]
    pub fn send(&self, value: &T) -> Result<()> {
        crate::located::located(self.send_body(value), "Connection::send")
    }

    fn send_body(&self, value: &T) -> Result<()> {
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
    #[track_caller]
    pub fn recv(&self) -> Result<T> {
        crate::located::located(self.recv_body(), "Connection::recv")
    }

    fn recv_body(&self) -> Result<T> {
        self.io.borrow_mut().recv_value(None)
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
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        crate::located::located(self.recv_timeout_body(timeout), "Connection::recv_timeout")
    }

    fn recv_timeout_body(&self, timeout: Duration) -> Result<T> {
        self.io
            .borrow_mut()
            .recv_value(crate::deadline::deadline(timeout))
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
    io: RefCell<MessageFd>,
    id: u32,
    _marker: PhantomData<fn() -> T>,
}

crate::waits::names::named!([T] Receiver<T>, crate::waits::Kind::Connection, id);

impl<T> Receiver<T> {
    /// Sets the largest message this end accepts (default 1 GiB); see
    /// [`Connection::with_max_message_bytes`].
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<String>().unwrap();
    /// let rx = rx.with_max_message_bytes(4).unwrap();
    /// tx.send(&"too long".to_string()).unwrap();
    /// assert!(matches!(rx.recv(), Err(forja::Error::MessageTooLarge { .. })));
    /// ```
    #[track_caller]
    pub fn with_max_message_bytes(self, bytes: u64) -> Result<Self> {
        crate::located::located(
            self.with_max_message_bytes_body(bytes),
            "Receiver::with_max_message_bytes",
        )
    }

    fn with_max_message_bytes_body(self, bytes: u64) -> Result<Self> {
        self.io.borrow_mut().set_max_message(bytes)?;
        Ok(self)
    }

    /// Receives one message as raw bytes, waiting for it.
    ///
    /// ```
    /// let (rx, tx) = forja::Pipe::one_way::<()>().unwrap();
    /// tx.send_bytes(b"x").unwrap();
    /// assert_eq!(rx.recv_bytes().unwrap(), b"x");
    /// ```
    #[track_caller]
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        crate::located::located(self.recv_bytes_body(), "Receiver::recv_bytes")
    }

    fn recv_bytes_body(&self) -> Result<Vec<u8>> {
        self.io.borrow_mut().recv_bytes(None)
    }

    /// Whether a message (or end of file) is there, waiting up to `timeout`.
    ///
    /// ```
    /// let (rx, _tx) = forja::Pipe::one_way::<i32>().unwrap();
    /// assert!(!rx.poll(std::time::Duration::ZERO).unwrap());
    /// ```
    #[track_caller]
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        crate::located::located(self.poll_body(timeout), "Receiver::poll")
    }

    fn poll_body(&self, timeout: Duration) -> Result<bool> {
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
    #[track_caller]
    pub fn try_clone(&self) -> Result<Self> {
        crate::located::located(self.try_clone_body(), "Receiver::try_clone")
    }

    fn try_clone_body(&self) -> Result<Self> {
        Ok(Receiver {
            io: RefCell::new(self.io.borrow().try_clone()?),
            id: self.id,
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
    #[track_caller]
    pub fn recv(&self) -> Result<T> {
        crate::located::located(self.recv_body(), "Receiver::recv")
    }

    fn recv_body(&self) -> Result<T> {
        self.io.borrow_mut().recv_value(None)
    }

    /// Like [`recv`](Self::recv), but gives up with [`Error::Timeout`].
    ///
    /// ```
    /// let (rx, _tx) = forja::Pipe::one_way::<i32>().unwrap();
    /// assert!(rx.recv_timeout(std::time::Duration::from_millis(5)).is_err());
    /// ```
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        crate::located::located(self.recv_timeout_body(timeout), "Receiver::recv_timeout")
    }

    fn recv_timeout_body(&self, timeout: Duration) -> Result<T> {
        self.io
            .borrow_mut()
            .recv_value(crate::deadline::deadline(timeout))
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
    io: RefCell<MessageFd>,
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
    #[track_caller]
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        crate::located::located(self.send_bytes_body(bytes), "Sender::send_bytes")
    }

    fn send_bytes_body(&self, bytes: &[u8]) -> Result<()> {
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
    #[track_caller]
    pub fn try_clone(&self) -> Result<Self> {
        crate::located::located(self.try_clone_body(), "Sender::try_clone")
    }

    fn try_clone_body(&self) -> Result<Self> {
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
    #[track_caller]
    pub fn send(&self, value: &T) -> Result<()> {
        crate::located::located(self.send_body(value), "Sender::send")
    }

    fn send_body(&self, value: &T) -> Result<()> {
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
                // SAFETY: the fd lives as long as self.
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

macro_rules! waitable {
    ($($ty:ident),*) => {$(
        impl<T> crate::wait::Waitable for $ty<T> {}
        impl<T> crate::wait::sealed::Sealed for $ty<T> {
            fn probe(&self) -> Result<crate::wait::Probe> {
                let mut io = self.io.borrow_mut();
                Ok(if io.ready_now()? {
                    crate::wait::Probe::Ready
                } else {
                    crate::wait::Probe::Fd(io.raw_fd())
                })
            }
        }
    )*};
}
waitable!(Connection, Receiver);

/// The messages of a [`Receiver`] or [`Connection`] until end of file:
/// `for msg in &rx { let msg = msg?; … }`. Each item is what `recv` gave;
/// the iteration ends at [`Error::Eof`] (every sender gone) and after the
/// first other error, which it yields (an interrupt, a message that does
/// not decode as `T`, one over the size limit).
///
/// ```
/// let (rx, tx) = forja::Pipe::one_way::<u32>().unwrap();
/// for i in 0..3 { tx.send(&i).unwrap(); }
/// drop(tx);
/// let got: Vec<u32> = rx.iter().collect::<forja::Result<_>>().unwrap();
/// assert_eq!(got, vec![0, 1, 2]);
/// ```
pub struct Iter<'a, E> {
    end: Option<&'a E>,
}

impl<E> fmt::Debug for Iter<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("done", &self.end.is_none())
            .finish()
    }
}

macro_rules! iter_impls {
    ($($ty:ident),*) => {$(
        impl<T: DeserializeOwned> $ty<T> {
            /// The messages until end of file (see [`Iter`]); the same as
            /// `for msg in &end`.
            ///
            /// ```
            /// let (a, b) = forja::Pipe::new::<String>().unwrap();
            /// a.send(&"uno".to_string()).unwrap();
            /// drop(a);
            /// for msg in &b {
            ///     assert_eq!(msg.unwrap(), "uno");
            /// }
            /// ```
            pub fn iter(&self) -> Iter<'_, $ty<T>> {
                Iter { end: Some(self) }
            }
        }
        impl<'a, T: DeserializeOwned> Iterator for Iter<'a, $ty<T>> {
            type Item = Result<T>;
            fn next(&mut self) -> Option<Result<T>> {
                match self.end?.io.borrow_mut().recv_value::<T>(None) {
                    Ok(v) => Some(Ok(v)),
                    Err(Error::Eof { .. }) => {
                        self.end = None;
                        None
                    }
                    Err(e) => {
                        self.end = None;
                        Some(Err(e))
                    }
                }
            }
        }
        impl<'a, T: DeserializeOwned> IntoIterator for &'a $ty<T> {
            type Item = Result<T>;
            type IntoIter = Iter<'a, $ty<T>>;
            fn into_iter(self) -> Self::IntoIter {
                self.iter()
            }
        }
    )*};
}
iter_impls!(Connection, Receiver);
