//! How messages become bytes: `postcard`, a compact serde format.
//!
//! Why postcard: it is a stable, documented wire format (1.0), well kept,
//! small (no_std, no dependencies worth naming), fast, and it serializes
//! straight onto the end of an existing buffer, so a pipe message is built
//! in one reused `Vec` (length prefix and payload) and written with one
//! system call. Integers are varints, so small messages stay small.
//!
//! Its price: postcard is not self-describing (the bytes carry no field
//! names or types), so serde features that must look at the data to decide
//! what it is (`#[serde(untagged)]`, `#[serde(flatten)]`,
//! `serde_json::Value`, `deserialize_any`) are not supported, and a
//! different message type on the two ends is only noticed when the bytes
//! run out or are invalid. [`message_error`] says which of these is likely.

use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Lets postcard append to a borrowed `Vec`, so a failed encode leaves the
/// buffer (and whatever it already held) in place.
struct Append<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Append<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.0.extend(bytes)
    }
}

/// Appends the encoding of `value` to `buf`. On failure `buf` is as it was:
/// bytes already in it (say, the rest of a message whose sending was
/// interrupted) are kept, so the next message is not lost or garbled.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    what: &'static str,
) -> Result<()> {
    let before = buf.len();
    match postcard::to_extend(value, Append(buf)) {
        Ok(_) => Ok(()),
        Err(e) => {
            buf.truncate(before);
            Err(message_error("encode", what, &e))
        }
    }
}

/// Decodes one value from `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| message_error("decode", what, &e))
}

/// The [`Error::Message`] for a postcard error, naming its likely cause.
pub(crate) fn message_error(
    action: &'static str,
    what: &'static str,
    e: &postcard::Error,
) -> Error {
    use crate::messages::Msg;
    use postcard::Error as P;
    let hint = match e {
        P::WontImplement | P::NotYetImplemented => Msg::CodecNotSelfDescribing,
        P::SerdeSerCustom | P::SerdeDeCustom => Msg::CodecCustom,
        P::SerializeSeqLengthUnknown => Msg::CodecSeqLength,
        _ if action == "decode" => Msg::CodecDecode,
        _ => Msg::CodecOther,
    }
    .get();
    Error::Message {
        action,
        what,
        pid: crate::os::pid(),
        message: format!("{e}; {hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_encode_keeps_what_the_buffer_held() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut buf = vec![1, 2, 3];
        assert!(encode_into(&mut buf, &Fails, "a test").is_err());
        assert_eq!(buf, [1, 2, 3]);
        encode_into(&mut buf, &7u8, "a test").unwrap();
        assert_eq!(buf, [1, 2, 3, 7]);
    }

    #[test]
    fn decode_errors_name_the_likely_cause() {
        let e = decode::<(u64, String)>(&[1], "a test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("same message type"), "{e}");
        let e = decode::<serde_json::Value>(&[1], "a test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("untagged"), "{e}");
    }

    /// A fixed-seed xorshift: the same inputs on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let n = (self.next() % (max as u64 + 1)) as usize;
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Msg {
        Unit,
        Text(String),
        Pair(u64, Vec<i32>),
        Nested {
            items: Vec<Vec<u8>>,
            tag: Option<char>,
        },
    }

    /// Decodes `bytes` as several types; none may panic, and any value
    /// found must survive a round trip (the input need not be canonical:
    /// postcard ignores, say, unused high bits of a varint's last byte).
    fn decode_everything(bytes: &[u8]) {
        let _ = decode::<u64>(bytes, "u64");
        let _ = decode::<String>(bytes, "String");
        let _ = decode::<Vec<u8>>(bytes, "Vec<u8>");
        let _ = decode::<Vec<String>>(bytes, "Vec<String>");
        let _ = decode::<(bool, char, f64)>(bytes, "tuple");
        if let Ok(m) = decode::<Msg>(bytes, "Msg") {
            let mut again = Vec::new();
            encode_into(&mut again, &m, "Msg").unwrap();
            assert_eq!(decode::<Msg>(&again, "Msg").unwrap(), m);
        }
        let _ = decode::<Vec<Msg>>(bytes, "Vec<Msg>");
    }

    #[test]
    fn arbitrary_bytes_decode_to_errors_not_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            decode_everything(&rng.bytes(64));
        }
        // Valid messages, then mutated: flipped bytes, cut short, extended.
        let samples = [
            Msg::Unit,
            Msg::Text("¿qué tal?".into()),
            Msg::Pair(u64::MAX, vec![-1, 0, 7]),
            Msg::Nested {
                items: vec![vec![1, 2], vec![]],
                tag: Some('ñ'),
            },
        ];
        for m in &samples {
            let mut good = Vec::new();
            encode_into(&mut good, m, "Msg").unwrap();
            assert_eq!(&decode::<Msg>(&good, "Msg").unwrap(), m);
            for _ in 0..2_000 {
                let mut b = good.clone();
                match rng.next() % 3 {
                    0 => {
                        let i = (rng.next() as usize) % b.len();
                        b[i] ^= 1 << (rng.next() % 8);
                    }
                    1 => b.truncate((rng.next() as usize) % b.len()),
                    _ => b.extend(rng.bytes(8)),
                }
                decode_everything(&b);
            }
        }
    }

    #[test]
    fn a_huge_claimed_length_is_an_error_not_a_huge_allocation() {
        // A varint length of 2^62 elements with nothing after it: serde
        // caps the capacity it reserves from a length it cannot trust.
        let mut claim = vec![0xFF; 8];
        claim.push(0x3F);
        let started = std::time::Instant::now();
        assert!(decode::<Vec<u64>>(&claim, "Vec<u64>").is_err());
        assert!(decode::<Vec<String>>(&claim, "Vec<String>").is_err());
        assert!(decode::<String>(&claim, "String").is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
