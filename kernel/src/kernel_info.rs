//! The `kernel_info_reply` content.

use serde_json::{Value, json};
use std::sync::OnceLock;

/// The rustc version in use (`rustc --version`), e.g. `1.95.0`.
pub fn rustc_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        std::process::Command::new(rustc)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
            .unwrap_or_else(|| "unknown".into())
    })
}

/// The content of a `kernel_info_reply`.
pub fn content() -> Value {
    json!({
        "status": "ok",
        "protocol_version": "5.3",
        "implementation": "forja",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "rust",
            "version": rustc_version(),
            "mimetype": "text/rust",
            "file_extension": ".rs",
            "pygments_lexer": "rust",
            "codemirror_mode": "rust",
        },
        "banner": format!(
            "forja {} — Rust (rustc {}) on evcxr, with forja's process tools in every cell.\n\
             `use forja::prelude::*;` is already done for you.",
            env!("CARGO_PKG_VERSION"), rustc_version()),
        "help_links": [
            {"text": "Rust std docs", "url": "https://doc.rust-lang.org/stable/std/"},
            {"text": "forja docs", "url": "https://docs.rs/forja"},
            {"text": "evcxr commands", "url": "https://github.com/evcxr/evcxr/blob/main/COMMON.md"},
        ],
        "debugger": false,
    })
}
