//! What running a cell gives back: its value, or the [`CellError`] to show,
//! and the results of its `user_expressions`.

use serde_json::{Map, Value};

/// An error to show for a cell.
#[derive(Debug, Clone)]
pub struct CellError {
    /// Error name (`CompileError`, `Panic`, `Interrupted`, ...).
    pub ename: String,
    /// One-line description.
    pub evalue: String,
    /// Readable lines (may contain ANSI colours).
    pub traceback: Vec<String>,
}

/// The result of running a cell.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The cell's value, as a MIME bundle.
    pub data: Option<Map<String, Value>>,
    /// Set when the cell failed.
    pub error: Option<CellError>,
    /// Results of `user_expressions`.
    pub user_expressions: Map<String, Value>,
}
