//! Reading the wait table: a consistent copy of who waits on what right now,
//! and which threads each process of the tree has.

use super::graph::WaitStep;
use super::kind::Kind;
use super::names;
use super::table::{self, OWNED, TIMED, Table};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// One recorded wait, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WaitRec {
    pub pid: i32,
    pub tid: i32,
    pub generation: u32,
    pub prim: u32,
    pub kind: Kind,
    pub timed: bool,
    /// Ended by a holder letting go (a lock, a join).
    pub owned: bool,
    pub holder_pid: i32,
    pub holder_tid: i32,
    pub since_ns: u64,
    pub name: String,
}

/// The table as read at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub waits: Vec<WaitRec>,
    /// The live processes of the tree.
    pub procs: Vec<i32>,
    pub progress: u64,
    pub now_ns: u64,
}

/// Reads the table (each slot checked against being rewritten meanwhile).
pub(crate) fn take(t: &Table) -> Snapshot {
    let mut waits = Vec::new();
    for slot in t.waits {
        let pid = slot.pid.load(Ordering::Acquire);
        if pid <= 0 {
            continue;
        }
        let generation = slot.generation.load(Ordering::Relaxed);
        let flags = slot.flags.load(Ordering::Relaxed);
        let prim = slot.prim.load(Ordering::Relaxed);
        let kind = Kind::from_u32(slot.kind.load(Ordering::Relaxed));
        let rec = WaitRec {
            pid,
            tid: slot.tid.load(Ordering::Relaxed),
            generation,
            prim,
            kind,
            timed: flags & TIMED != 0,
            owned: flags & OWNED != 0,
            holder_pid: slot.holder_pid.load(Ordering::Relaxed),
            holder_tid: slot.holder_tid.load(Ordering::Relaxed),
            since_ns: slot.since_ns.load(Ordering::Relaxed),
            name: names::name_in(t, prim, kind),
        };
        std::sync::atomic::fence(Ordering::Acquire);
        if slot.pid.load(Ordering::Relaxed) != pid
            || slot.generation.load(Ordering::Relaxed) != generation
            || crate::os::is_dead(pid as u32)
        {
            continue;
        }
        waits.push(rec);
    }
    waits.sort_by_key(|w| (w.pid, w.tid));
    // A lock held through a guard records its thread: find its process.
    for i in 0..waits.len() {
        let tid = waits[i].holder_tid;
        if tid > 0 && waits[i].holder_pid == 0 {
            waits[i].holder_pid = match waits.iter().find(|w| w.tid == tid) {
                Some(w) => w.pid,
                None => crate::os::pid_of_thread(tid as u32) as i32,
            };
        }
    }
    Snapshot {
        waits,
        procs: t.live_processes(),
        progress: t.header.progress.load(Ordering::Relaxed),
        now_ns: table::now_ns(),
    }
}

/// Wait `w` as a step of a graph or a deadlock.
pub(crate) fn step(t: &Table, w: &WaitRec, now_ns: u64) -> WaitStep {
    let held_by = (w.holder_pid > 0).then_some(w.holder_pid);
    WaitStep {
        pid: w.pid,
        tid: w.tid,
        process: t.process_name(w.pid),
        what: w.name.clone(),
        kind: w.kind,
        held_by,
        holder: held_by.map(|h| t.process_name(h)).unwrap_or_default(),
        waited: Duration::from_nanos(now_ns.saturating_sub(w.since_ns)),
        timed: w.timed,
    }
}

/// The threads of process `pid` that are not forja's own helpers (named
/// `forja/…`): the ones that could act for the process.
pub(crate) fn user_threads(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut v: Vec<i32> = dir
        .flatten()
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            (!comm.starts_with(crate::os::OWNED_THREAD_PREFIX)).then_some(tid)
        })
        .collect();
    v.sort_unstable();
    v
}
