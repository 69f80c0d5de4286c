//! Who waits for what, across the whole tree of processes: a live wait-for
//! graph ([`waits()`]), and deadlocks named with their cycle
//! ([`Error::Deadlock`](crate::Error::Deadlock)) instead of a silent hang.
//!
//! ```
//! use forja::prelude::*;
//!
//! let fork = Lock::new().unwrap().with_name("tenedor 1");
//! assert_eq!(fork.name(), "tenedor 1");
//! let g = forja::waits(); // nothing waits now
//! assert!(g.is_empty() && !g.has_deadlock());
//! assert!(g.svg().starts_with("<svg"));
//! ```
//!
//! # How it works
//!
//! The root process makes a wait table (a memfd mapping, `forja-waits:PID`,
//! found like the [timeline](crate::timeline)) at the latest by its first
//! fork; every forked child inherits it. A blocking forja call that is about
//! to sleep (`Lock`/`RLock`/`Semaphore` acquire, `Condition`/`Event`/`Barrier`
//! wait, `recv`, `Queue::get`, `put` on a full queue, `JoinableQueue::join`,
//! `Process::join`) records in a slot what it waits on and since when, and
//! who holds it (a lock's word already says who holds it; the waiter copies
//! it); a call that does not sleep records nothing. While an untimed wait
//! sleeps it looks for a deadlock every few tens of milliseconds
//! ([`deadlock`](crate::deadlock) says when one is reported).
//!
//! # Files
//!
//! `table.rs` the mapping, `names.rs` ids and names, `record.rs` the
//! guard a blocking call holds, `snapshot.rs` reading the table,
//! `detect.rs` which waits can never end, `graph.rs` the graph as data,
//! `svg.rs` its picture, `text.rs` every word a student reads.

pub mod detect;
mod graph;
pub(crate) mod kind;
pub(crate) mod names;
pub(crate) mod record;
mod snapshot;
mod svg;
mod table;
pub(crate) mod text;

pub use graph::{ProcNode, WaitGraph, WaitStep, sentence};
pub use kind::Kind;

use crate::display;
use crate::error::Result;

/// The wait-for graph of this process's tree right now: every process, what
/// each waiting thread waits for and who holds it, and the deadlock if
/// there is one. In a notebook, a cell ending in `forja::waits()` draws it.
///
/// ```
/// let g = forja::waits();
/// println!("{g}");
/// ```
pub fn waits() -> WaitGraph {
    let Some(t) = table::existing() else {
        return WaitGraph::default();
    };
    let snap = snapshot::take(&t);
    let cycle = detect::find(&snap);
    build(&t, &snap, cycle)
}

fn build(
    t: &table::Table,
    snap: &snapshot::Snapshot,
    cycle: Option<(Vec<usize>, bool)>,
) -> WaitGraph {
    let edges: Vec<WaitStep> = snap
        .waits
        .iter()
        .map(|w| snapshot::step(t, w, snap.now_ns))
        .collect();
    let processes = snap
        .procs
        .iter()
        .map(|&pid| ProcNode {
            pid,
            name: t.process_name(pid),
            waiting: snap.waits.iter().any(|w| w.pid == pid),
        })
        .collect();
    let (cycle, quiescent) = match cycle {
        Some((idx, q)) => (Some(idx.iter().map(|&i| edges[i].clone()).collect()), q),
        None => (None, false),
    };
    WaitGraph {
        processes,
        edges,
        cycle,
        quiescent,
    }
}

/// The wait-for graph of the tree process `pid` belongs to, read from
/// outside that tree (the kernel reads its runner's for `:waits`); `None`
/// if that process has no wait table (it never forked nor waited).
///
/// ```
/// let _ = forja::waits(); // makes no table by itself
/// assert!(forja::waits::of_process(i32::MAX).is_none());
/// ```
pub fn of_process(pid: i32) -> Option<WaitGraph> {
    let t = table::remote(pid)?;
    let snap = snapshot::take(&t);
    let cycle = detect::find(&snap);
    Some(build(&t, &snap, cycle))
}

impl WaitGraph {
    /// Shows the graph: as a picture in the forja kernel, as text elsewhere.
    ///
    /// ```
    /// forja::waits().show().unwrap();
    /// ```
    pub fn show(&self) -> Result<()> {
        display::show_picture(self, || self.svg())
    }

    /// How evcxr shows a cell's final value: the SVG and the text.
    ///
    /// ```
    /// forja::waits().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        crate::rich::protocol::emit_picture(self.to_string(), self.svg());
    }
}

/// Records one untimed wait on a lock and ends it at once: what a blocking
/// call adds before it sleeps (for `bench/wait-record`).
#[doc(hidden)]
pub fn bench_record_one_wait() {
    let site = record::Site::new(1, Kind::Lock);
    drop(std::hint::black_box(record::begin(
        site,
        record::Holder::Thread(1),
        false,
    )));
}
