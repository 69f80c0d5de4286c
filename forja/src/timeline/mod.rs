//! What ran, and when: a record of every process forja started (pid, name,
//! start, end, exit code, kernel cell) and of every task a [`Pool`](crate::Pool) worker
//! ran, drawn as a Gantt chart by [`timeline()`].
//!
//! ```
//! use forja::prelude::*;
//!
//! forja::timeline::reset().unwrap();
//! let p = Process::new(|| {}).with_name("uno");
//! p.start().unwrap();
//! p.join().unwrap();
//! let t = forja::timeline();
//! assert_eq!(t.lanes().len(), 1);
//! assert_eq!(t.lanes()[0].exitcode, Some(0));
//! assert!(t.svg().contains("data-name=\"uno\""));
//! ```
//!
//! # Where the records live
//!
//! Records must be visible across processes (a pool worker records its own
//! tasks, a child its own exit) and across notebook cells (each cell has its
//! own copy of forja's statics). They live in one `MAP_SHARED` mapping (a
//! `memfd`), made on first use — at the latest by the first fork — and found
//! again by its memfd's name, `forja-timeline:PID`, like the
//! [`registry`](crate::registry) (never through the environment). Children forked by forja inherit the
//! mapping and write into the same one, so one picture shows a whole tree of
//! processes. The layout starts with a magic number and a [`VERSION`].
//!
//! The mapping is a ring of [`CAPACITY`] fixed-size records with an atomic
//! write index: recording an event costs a clock read, one `fetch_add` and a
//! few relaxed stores, with no lock and no system call. When more than
//! [`CAPACITY`] events happen, the oldest are overwritten (the timeline says
//! how many it lost).
//!
//! # What is recorded
//!
//! * the parent, when it forks a child: its pid, name, start time and the
//!   current cell (the kernel's execution count, see
//!   [`registry::cell`](crate::registry::cell));
//! * the child itself, as it ends normally: its end time and exit code;
//! * the parent, when it reaps the child: the exit code (negative for a
//!   signal, so a killed child is shown as killed) and, if the child could
//!   not say when it ended, the reaping time;
//! * a pool worker, around every task (a chunk of items): start and end.
//!
//! # Files
//!
//! `record.rs` writes the records (the hooks forja calls as processes start
//! and end), `model.rs` turns them into a [`Timeline`] of [`Lane`]s and
//! prints it as a text table, `svg.rs` draws it.

mod model;
pub(crate) mod record;
mod svg;

use crate::display;
use crate::error::Result;

pub use model::{Lane, TaskSpan, Timeline};
pub(crate) use record::{
    before_fork, process_exiting, process_reaped, process_started, task_begin, task_end,
};

/// The environment variable that named the timeline mapping, before forja
/// stopped writing the environment (it is never set now: the mapping is
/// found by its memfd's name, `forja-timeline:PID`).
#[deprecated(note = "forja no longer publishes the timeline in the environment")]
pub const ENV: &str = "FORJA_TIMELINE";
/// Layout version; bump it whenever the header or the records change (2:
/// the header names the creator's registry by inode, not by an address).
pub const VERSION: u32 = 2;
/// How many events the ring keeps (older ones are overwritten).
pub const CAPACITY: usize = 16384;

/// Forgets what was recorded so far: the next [`timeline()`] shows only what
/// runs from now on (in every process that shares the timeline).
///
/// ```
/// forja::timeline::reset().unwrap();
/// assert!(forja::timeline().is_empty());
/// ```
pub fn reset() -> Result<()> {
    record::current()?.reset();
    Ok(())
}

/// Turns recording on or off (it is on by default); for example to measure
/// what recording costs.
///
/// ```
/// forja::timeline::set_recording(false).unwrap();
/// assert!(!forja::timeline::is_recording());
/// forja::timeline::set_recording(true).unwrap();
/// ```
pub fn set_recording(on: bool) -> Result<()> {
    record::current()?.set_recording(on);
    Ok(())
}

/// Whether events are being recorded.
///
/// ```
/// assert!(forja::timeline::is_recording());
/// ```
pub fn is_recording() -> bool {
    record::current().map(|s| s.recording()).unwrap_or(false)
}

/// The timeline of what ran in the current kernel cell (records of the
/// current [cell](crate::registry::cell)); outside the kernel,
/// of everything since the program started or since [`timeline::reset`](reset).
///
/// ```
/// let t = forja::timeline();
/// println!("{t}");
/// let _svg: String = t.svg();
/// ```
pub fn timeline() -> Timeline {
    if display::in_kernel() {
        let g = crate::registry::cell().unwrap_or(0);
        Timeline::of_cell(g)
    } else {
        Timeline::all()
    }
}

impl Timeline {
    /// Shows the chart: as a picture in the forja kernel, as a text table
    /// elsewhere.
    ///
    /// ```
    /// forja::timeline().show().unwrap();
    /// ```
    pub fn show(&self) -> Result<()> {
        display::show_picture(self, || self.svg())
    }

    /// How evcxr shows a cell's final value: the SVG chart and the text
    /// table (a cell ending in `forja::timeline()` shows the picture).
    ///
    /// ```
    /// forja::timeline().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        crate::rich::protocol::emit_picture(self.to_string(), self.svg());
    }
}
