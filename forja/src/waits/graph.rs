//! The wait-for graph as data: processes, "waits for → held by" edges, and
//! the deadlock cycle if there is one, with its sentence and a text table.

use super::kind::Kind;
use super::text;
use std::time::Duration;

/// One wait of a deadlock (or of a graph edge): who waits, on what, held by
/// whom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WaitStep {
    /// The waiting process.
    pub pid: i32,
    /// Its waiting thread.
    pub tid: i32,
    /// The waiting process's name (empty if unknown).
    pub process: String,
    /// The primitive's name (`with_name`, else `Lock 3`).
    pub what: String,
    /// The primitive's kind.
    pub kind: Kind,
    /// The process holding it (a lock's holder, the process being joined).
    pub held_by: Option<i32>,
    /// The holder's name (empty if unknown).
    pub holder: String,
    /// How long it has waited.
    pub waited: Duration,
    /// Whether the wait has a timeout.
    pub timed: bool,
}

impl WaitStep {
    /// The step in words, in the student's language: "P1 espera `tenedor 2`
    /// que tiene P2".
    pub fn sentence(&self) -> String {
        let who = text::process(&self.process, self.pid);
        match self.held_by {
            Some(h) if self.kind == Kind::Process => {
                text::waits_join(&who, &text::process(&self.holder, h))
            }
            Some(h) => text::waits_held(&who, &self.what, &text::process(&self.holder, h)),
            None => text::waits_for(&who, &self.what),
        }
    }
}

/// The sentences of `steps`, joined by "; ".
pub fn sentence(steps: &[WaitStep]) -> String {
    steps
        .iter()
        .map(WaitStep::sentence)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A process of the tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcNode {
    /// Its pid.
    pub pid: i32,
    /// Its name.
    pub name: String,
    /// Whether one of its threads is waiting in forja.
    pub waiting: bool,
}

/// The wait-for graph of a tree of processes at one moment
/// ([`forja::waits()`](crate::waits())).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WaitGraph {
    /// The live processes of the tree.
    pub processes: Vec<ProcNode>,
    /// Every recorded wait: an edge from the waiter to the holder (if any).
    pub edges: Vec<WaitStep>,
    /// The deadlock, if the waits form one (a cycle of holders, or a tree
    /// where everyone waits for everyone).
    pub cycle: Option<Vec<WaitStep>>,
    /// Whether `cycle` is a whole quiescent tree rather than a ring of
    /// holders.
    pub quiescent: bool,
}

impl WaitGraph {
    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// Whether the waits form a deadlock.
    pub fn has_deadlock(&self) -> bool {
        self.cycle.is_some()
    }
}

impl std::fmt::Display for WaitGraph {
    /// A text table: one line per wait, then the cycle in words.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.edges.is_empty() {
            return writeln!(f, "{}", text::nobody_waits());
        }
        writeln!(f, "{}", text::title(self.edges.len()))?;
        for e in &self.edges {
            writeln!(f, "  {} [{:.1} s]", e.sentence(), e.waited.as_secs_f64())?;
        }
        if let Some(c) = &self.cycle {
            writeln!(f, "{} {}", text::cycle_heading(), sentence(c))?;
        }
        Ok(())
    }
}
