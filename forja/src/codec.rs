//! How messages become bytes: `postcard`, a compact serde format.
//!
//! Why postcard: it is a stable, documented wire format (1.0), well kept,
//! small (no_std, no dependencies worth naming), fast, and it serializes
//! straight onto the end of an existing buffer, so a pipe message is built
//! in one reused `Vec` (length prefix and payload) and written with one
//! system call. Integers are varints, so small messages stay small.

use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Appends the encoding of `value` to `buf`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    what: &'static str,
) -> Result<()> {
    let taken = std::mem::take(buf);
    match postcard::to_extend(value, taken) {
        Ok(v) => {
            *buf = v;
            Ok(())
        }
        Err(e) => Err(Error::Message {
            action: "encode",
            what,
            pid: crate::os::pid(),
            message: e.to_string(),
        }),
    }
}

/// Decodes one value from `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Message {
        action: "decode",
        what,
        pid: crate::os::pid(),
        message: e.to_string(),
    })
}
