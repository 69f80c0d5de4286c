//! The one error type of forja.
//!
//! Every message says what failed, in which process, and what to do about it.

use std::io;

/// Shorthand for `Result<T, forja::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in forja.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{what} failed in process {pid}: {source}")]
    Os {
        /// What forja was doing.
        what: &'static str,
        /// The process the call failed in.
        pid: i32,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The display side channel to the kernel could not be used.
    #[error("could not send a display to the kernel: {0}")]
    Display(String),
}

impl Error {
    /// Wraps an OS error with what forja was doing and the current pid.
    pub fn os(what: &'static str, source: impl Into<io::Error>) -> Self {
        Error::Os {
            what,
            pid: std::process::id() as i32,
            source: source.into(),
        }
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::os("a system call", io::Error::from(e))
    }
}
