//! Comms: forja registers no comm targets yet, so every `comm_open` is
//! answered with a `comm_close`, and the open-comm table stays empty.

use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Comm targets this kernel knows (none yet) and the comms open on them.
#[derive(Default)]
pub struct Comms {
    open: HashMap<String, String>,
}

impl Comms {
    /// Whether a target name is known.
    pub fn knows(&self, _target: &str) -> bool {
        false
    }

    /// Records an open comm on a known target.
    pub fn opened(&mut self, comm_id: &str, target: &str) {
        self.open.insert(comm_id.to_owned(), target.to_owned());
    }

    /// Forgets a comm.
    pub fn closed(&mut self, comm_id: &str) {
        self.open.remove(comm_id);
    }

    /// The `comm_info_reply` content, optionally filtered by target.
    pub fn info(&self, target: Option<&str>) -> Value {
        let comms: Map<String, Value> = self
            .open
            .iter()
            .filter(|(_, t)| target.is_none_or(|want| want == t.as_str()))
            .map(|(id, t)| (id.clone(), json!({"target_name": t})))
            .collect();
        json!({"status": "ok", "comms": comms})
    }
}
