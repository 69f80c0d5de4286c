//! The `:waits` command: the wait-for graph of the runner's tree of
//! processes (who waits for what, held by whom, and the deadlock if there
//! is one), as an SVG and as text.

use crate::state::SessionState;
use serde_json::{Map, Value};
use std::sync::atomic::Ordering;

/// `:waits` output as a MIME bundle.
pub fn show(shared: &SessionState) -> Map<String, Value> {
    let pid = shared.runner_pid.load(Ordering::SeqCst);
    let graph = forja::waits::of_process(pid).unwrap_or_default();
    bundle(&graph)
}

/// A graph as a MIME bundle: the picture and the text.
pub fn bundle(graph: &forja::WaitGraph) -> Map<String, Value> {
    Map::from_iter([
        ("text/plain".to_owned(), Value::String(graph.to_string())),
        ("image/svg+xml".to_owned(), Value::String(graph.svg())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_graph_is_a_picture_and_a_line() {
        let b = bundle(&forja::WaitGraph::default());
        assert!(b["image/svg+xml"].as_str().unwrap().starts_with("<svg"));
        assert!(!b["text/plain"].as_str().unwrap().is_empty());
    }
}
