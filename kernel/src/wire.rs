//! The Jupyter wire protocol: decoding untrusted multipart messages and
//! building replies.
//!
//! Signing and verification (HMAC-SHA256) are done by `jupyter-zmq-client`'s
//! `RawMessage`; this module adds what a kernel needs on top: telling a badly
//! signed message (dropped) from a malformed one that can still be answered
//! with an error reply, and never panicking on anything from the network.

use bytes::Bytes;
use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent, UnknownMessage};
use jupyter_zmq_client::{RawMessage, RuntimeError};
use ring::hmac;
use serde_json::{Value, json};

/// Why a message could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Missing, malformed or wrong signature: drop the message, never run it.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// Frames that do not form a Jupyter message at all: nothing to reply to.
    #[error("malformed frames: {0}")]
    Malformed(String),
    /// A correctly signed message whose content is invalid: reply with an error.
    #[error("invalid {msg_type} content: {reason}")]
    BadContent {
        /// The request's routing identities.
        identities: Vec<Bytes>,
        /// The request's header.
        header: Box<Header>,
        /// The request type.
        msg_type: String,
        /// What was wrong.
        reason: String,
    },
}

/// Decodes and verifies one multipart message.
pub fn decode(frames: Vec<Bytes>, key: &Option<hmac::Key>) -> Result<JupyterMessage, DecodeError> {
    let zmq =
        zeromq::ZmqMessage::try_from(frames).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    decode_zmq(zmq, key)
}

/// Decodes and verifies one message as received from a socket.
pub fn decode_zmq(
    zmq: zeromq::ZmqMessage,
    key: &Option<hmac::Key>,
) -> Result<JupyterMessage, DecodeError> {
    let raw = RawMessage::from_multipart(zmq, key).map_err(|e| match e {
        RuntimeError::MissingHmac | RuntimeError::VerifyError(_) => {
            DecodeError::BadSignature(e.to_string())
        }
        RuntimeError::MissingDelimiter | RuntimeError::InsufficientMessageParts(_) => {
            DecodeError::Malformed(e.to_string())
        }
        other => DecodeError::BadSignature(other.to_string()),
    })?;
    let header: Header = serde_json::from_slice(&raw.jparts[0])
        .map_err(|e| DecodeError::Malformed(format!("header: {e}")))?;
    let bad = |reason: String| DecodeError::BadContent {
        identities: raw.zmq_identities.clone(),
        header: Box::new(header.clone()),
        msg_type: header.msg_type.clone(),
        reason,
    };
    let mut content: Value =
        serde_json::from_slice(&raw.jparts[3]).map_err(|e| bad(format!("content: {e}")))?;
    if !content.is_object() {
        return Err(bad("content is not a JSON object".into()));
    }
    fill_defaults(&header.msg_type, &mut content);
    let metadata: Value =
        serde_json::from_slice(&raw.jparts[2]).map_err(|e| bad(format!("metadata: {e}")))?;
    let content = JupyterMessageContent::from_type_and_content(&header.msg_type, content)
        .map_err(|e| bad(e.to_string()))?;
    let parent_header = serde_json::from_slice(&raw.jparts[1]).ok();
    Ok(JupyterMessage {
        zmq_identities: raw.zmq_identities,
        header,
        parent_header,
        metadata,
        content,
        buffers: raw.jparts[4..].to_vec(),
        channel: None,
    })
}

/// Fills in the fields the messaging spec makes optional (clients such as
/// jupyter_client leave them out) with the spec's defaults, so the typed
/// parse only rejects content that is really wrong.
pub fn fill_defaults(msg_type: &str, content: &mut Value) {
    let Some(obj) = content.as_object_mut() else {
        return;
    };
    let mut default = |k: &str, v: Value| {
        if obj.get(k).is_none_or(Value::is_null) {
            obj.insert(k.to_owned(), v);
        }
    };
    match msg_type {
        "execute_request" => {
            default("silent", json!(false));
            default("store_history", json!(true));
            default("user_expressions", json!({}));
            default("allow_stdin", json!(true));
            default("stop_on_error", json!(true));
        }
        "history_request" => {
            default("output", json!(false));
            default("raw", json!(true));
            default("hist_access_type", json!("tail"));
            default("n", json!(0));
            default("pattern", json!("*"));
            default("unique", json!(false));
            default("start", json!(0));
            default("stop", json!(i32::MAX));
        }
        "complete_request" | "inspect_request" => {
            let len = obj
                .get("code")
                .and_then(Value::as_str)
                .map_or(0, |c| c.chars().count());
            if obj.get("cursor_pos").is_none_or(Value::is_null) {
                obj.insert("cursor_pos".into(), json!(len));
            }
            if msg_type == "inspect_request" && obj.get("detail_level").is_none_or(Value::is_null) {
                obj.insert("detail_level".into(), json!(0));
            }
        }
        "shutdown_request" => default("restart", json!(false)),
        _ => {}
    }
}

/// Content built from JSON for any message type.
pub fn json_content(msg_type: &str, content: Value) -> JupyterMessageContent {
    JupyterMessageContent::UnknownMessage(UnknownMessage {
        msg_type: msg_type.to_owned(),
        content,
    })
}

/// A message with `content`, child of `parent`, from this kernel.
pub fn child(parent: &JupyterMessage, content: impl Into<JupyterMessageContent>) -> JupyterMessage {
    let mut m = JupyterMessage::new(content, Some(parent));
    m.header.username = "forja".into();
    m
}

/// A JSON-content message of type `msg_type`, child of `parent`.
pub fn child_json(parent: &JupyterMessage, msg_type: &str, content: Value) -> JupyterMessage {
    child(parent, json_content(msg_type, content))
}

/// The reply type for a request type (`execute_request` → `execute_reply`).
pub fn reply_type(request_type: &str) -> String {
    match request_type.strip_suffix("_request") {
        Some(stem) => format!("{stem}_reply"),
        None => format!("{request_type}_reply"),
    }
}

/// An error reply to a request whose content could not be parsed.
pub fn bad_content_reply(
    identities: Vec<Bytes>,
    header: Header,
    reason: &str,
) -> Option<JupyterMessage> {
    if !header.msg_type.ends_with("_request") {
        return None;
    }
    let reply = reply_type(&header.msg_type);
    let mut m = JupyterMessage::new(
        json_content(
            &reply,
            json!({"status": "error", "ename": "MalformedMessage",
                   "evalue": format!("forja-kernel could not read this {}: {reason}", header.msg_type),
                   "traceback": []}),
        ),
        None,
    );
    m.header.username = "forja".into();
    m.header.session = header.session.clone();
    m.parent_header = Some(header);
    m.zmq_identities = identities;
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Option<hmac::Key> {
        Some(hmac::Key::new(hmac::HMAC_SHA256, b"secret"))
    }

    fn sign(key: &[u8], parts: &[&[u8]]) -> String {
        let k = hmac::Key::new(hmac::HMAC_SHA256, key);
        let mut ctx = hmac::Context::with_key(&k);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn frames(key: &[u8], msg_type: &str, content: &str) -> Vec<Bytes> {
        let header = format!(
            r#"{{"msg_id":"1","username":"u","session":"s","date":"2026-01-01T00:00:00Z","msg_type":"{msg_type}","version":"5.3"}}"#
        );
        let parts: [&[u8]; 4] = [header.as_bytes(), b"{}", b"{}", content.as_bytes()];
        let sig = sign(key, &parts);
        let mut v = vec![
            Bytes::from_static(b"peer"),
            Bytes::from_static(b"<IDS|MSG>"),
            Bytes::from(sig),
        ];
        v.extend(parts.iter().map(|p| Bytes::copy_from_slice(p)));
        v
    }

    #[test]
    fn good_message_decodes() {
        let m = decode(frames(b"secret", "kernel_info_request", "{}"), &key()).unwrap();
        assert_eq!(m.message_type(), "kernel_info_request");
        assert_eq!(m.zmq_identities, vec![Bytes::from_static(b"peer")]);
    }

    #[test]
    fn wrong_key_is_a_bad_signature() {
        let e = decode(
            frames(b"other", "execute_request", r#"{"code":"1"}"#),
            &key(),
        );
        assert!(matches!(e, Err(DecodeError::BadSignature(_))), "{e:?}");
    }

    #[test]
    fn missing_signature_is_a_bad_signature() {
        let mut f = frames(b"secret", "execute_request", r#"{"code":"1"}"#);
        f[2] = Bytes::new();
        assert!(matches!(
            decode(f, &key()),
            Err(DecodeError::BadSignature(_))
        ));
    }

    #[test]
    fn bad_json_content_is_answerable() {
        let e = decode(frames(b"secret", "execute_request", "{not json"), &key());
        match e {
            Err(DecodeError::BadContent {
                identities, header, ..
            }) => {
                let r = bad_content_reply(identities, *header, "x").unwrap();
                assert_eq!(r.message_type(), "execute_reply");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_content_shape_is_answerable() {
        let e = decode(
            frames(b"secret", "execute_request", r#"{"code":5}"#),
            &key(),
        );
        assert!(matches!(e, Err(DecodeError::BadContent { .. })), "{e:?}");
    }

    #[test]
    fn no_delimiter_is_malformed() {
        let f = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        assert!(matches!(decode(f, &key()), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..8 {
            let f: Vec<Bytes> = (0..n).map(|i| Bytes::from(vec![i as u8; i])).collect();
            let _ = decode(f, &key());
            let _ = decode(
                (0..n).map(|_| Bytes::from_static(b"<IDS|MSG>")).collect(),
                &key(),
            );
        }
    }

    #[test]
    fn optional_fields_get_the_spec_defaults() {
        let m = decode(
            frames(
                b"secret",
                "history_request",
                r#"{"hist_access_type":"search","pattern":"a*"}"#,
            ),
            &key(),
        )
        .unwrap();
        assert_eq!(m.message_type(), "history_request");
        let m = decode(
            frames(b"secret", "execute_request", r#"{"code":"1"}"#),
            &key(),
        )
        .unwrap();
        match m.content {
            JupyterMessageContent::ExecuteRequest(r) => assert!(r.store_history && !r.silent),
            other => panic!("{other:?}"),
        }
        let m = decode(
            frames(b"secret", "complete_request", r#"{"code":"ab"}"#),
            &key(),
        )
        .unwrap();
        match m.content {
            JupyterMessageContent::CompleteRequest(r) => assert_eq!(r.cursor_pos, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reply_types() {
        assert_eq!(reply_type("execute_request"), "execute_reply");
        assert_eq!(reply_type("comm_info_request"), "comm_info_reply");
    }
}
