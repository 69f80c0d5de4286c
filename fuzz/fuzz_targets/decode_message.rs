//! Fuzzes the kernel's decoding of untrusted multipart messages: whatever the
//! frames, `wire::decode` returns (never panics), and a message signed with
//! the right key but broken content is answerable.
#![no_main]

#[path = "../../kernel/src/wire.rs"]
#[allow(dead_code)]
mod wire;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ring::hmac;

fuzz_target!(|data: &[u8]| {
    // Split the input into frames at 0xFF bytes.
    let frames: Vec<Bytes> = data
        .split(|&b| b == 0xff)
        .map(Bytes::copy_from_slice)
        .collect();
    let key = Some(hmac::Key::new(hmac::HMAC_SHA256, b"fuzz-key"));
    let _ = wire::decode(frames.clone(), &key);
    let _ = wire::decode(frames.clone(), &None);
    // The same parts, correctly signed, to reach the content parsing.
    if frames.len() >= 4 {
        let parts = &frames[frames.len() - 4..];
        let mut ctx = hmac::Context::with_key(key.as_ref().unwrap());
        for p in parts {
            ctx.update(p);
        }
        let sig: String = ctx.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let mut signed = vec![Bytes::from_static(b"id"), Bytes::from_static(b"<IDS|MSG>"), Bytes::from(sig)];
        signed.extend(parts.iter().cloned());
        if let Err(wire::DecodeError::BadContent { identities, header, reason, .. }) = wire::decode(signed, &key) {
            let _ = wire::bad_content_reply(identities, *header, &reason);
        }
    }
});
