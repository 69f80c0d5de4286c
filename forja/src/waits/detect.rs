//! Deadlock detection: which recorded waits can never end, and the scans an
//! untimed wait makes now and then while it sleeps (two in a row must agree
//! before a deadlock is reported, in one thread of it).
//!
//! A wait can never end when (a) what it waits for is held by a thread that
//! itself can never go on (a ring of lock holders and joins), or (b) anyone
//! in the tree could end it, but every thread of every process of the tree
//! is in an untimed forja wait that can never end. A thread outside forja's
//! waits (computing, sleeping, reading a file) makes its process able to go
//! on, so (b) never fires while one exists; forja's own helper threads
//! (`forja/…`) do not count. Timed waits can always go on: they time out.

use super::graph::WaitStep;
use super::snapshot::{self, Snapshot};
use super::table::{self, Table};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// How often a blocked untimed wait looks for a deadlock (at most).
pub(crate) const SCAN_EVERY_NS: u64 = 20_000_000;
/// The environment variable that turns detection off (`0`, `off`, `false`).
pub const ENV: &str = "FORJA_DEADLOCK";

/// Turns deadlock detection on or off for the whole tree of processes (it is
/// on by default, unless the environment variable [`ENV`] is `0`). Off, an
/// untimed wait in a deadlock hangs silently, as in Python.
///
/// ```
/// forja::deadlock::detect(false).unwrap();
/// assert!(!forja::deadlock::is_detecting());
/// forja::deadlock::detect(true).unwrap();
/// assert!(forja::deadlock::is_detecting());
/// ```
pub fn detect(on: bool) -> Result<()> {
    let t = table::current()?;
    t.header
        .detect
        .store(if on { 1 } else { 2 }, Ordering::Relaxed);
    Ok(())
}

/// Whether deadlocks are detected (see [`detect`]).
pub fn is_detecting() -> bool {
    match table::existing().map(|t| t.header.detect.load(Ordering::Relaxed)) {
        Some(1) => true,
        Some(2) => false,
        _ => env_allows(),
    }
}

fn env_allows() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        !std::env::var(ENV)
            .map(|v| matches!(v.trim(), "0" | "off" | "false" | "no"))
            .unwrap_or(false)
    })
}

/// The indices of the waits of `snap` that can never end; `threads` gives
/// the user threads of a process (see the module docs).
pub(crate) fn stuck(snap: &Snapshot, threads: &mut dyn FnMut(i32) -> Vec<i32>) -> Vec<usize> {
    let w = &snap.waits;
    let mut cand: Vec<bool> = w.iter().map(|w| !w.timed).collect();
    let by_tid: HashMap<i32, usize> = w.iter().enumerate().map(|(i, w)| (w.tid, i)).collect();
    let mut cache: HashMap<i32, Vec<i32>> = HashMap::new();
    let live = |pid: i32| snap.procs.contains(&pid);
    loop {
        let mut full = |pid: i32, cand: &[bool]| -> bool {
            if !live(pid) || !w.iter().enumerate().any(|(i, x)| x.pid == pid && cand[i]) {
                return false;
            }
            let ts = cache.entry(pid).or_insert_with(|| threads(pid));
            !ts.is_empty()
                && ts
                    .iter()
                    .all(|t| by_tid.get(t).is_some_and(|&i| cand[i] && w[i].pid == pid))
        };
        let tree_full = snap.procs.iter().all(|&p| full(p, &cand));
        let mut changed = false;
        for i in 0..w.len() {
            if !cand[i] {
                continue;
            }
            let x = &w[i];
            let ok = if !x.owned {
                tree_full
            } else if x.holder_tid > 0 {
                by_tid.get(&x.holder_tid).is_some_and(|&j| cand[j])
            } else if x.holder_pid > 0 {
                full(x.holder_pid, &cand)
            } else {
                false
            };
            if !ok {
                cand[i] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    (0..w.len()).filter(|&i| cand[i]).collect()
}

/// Of the stuck waits, a ring of holders (and `false`), or, if there is
/// none, all of them (and `true`: the whole tree is quiescent).
pub(crate) fn ring(snap: &Snapshot, stuck: &[usize]) -> (Vec<usize>, bool) {
    let w = &snap.waits;
    let next = |i: usize| -> Option<usize> {
        let x = &w[i];
        if !x.owned {
            None
        } else if x.holder_tid > 0 {
            stuck.iter().copied().find(|&j| w[j].tid == x.holder_tid)
        } else if x.holder_pid > 0 {
            stuck.iter().copied().find(|&j| w[j].pid == x.holder_pid)
        } else {
            None
        }
    };
    for &start in stuck {
        let mut path = vec![start];
        let mut cur = start;
        while let Some(n) = next(cur) {
            if let Some(pos) = path.iter().position(|&p| p == n) {
                return (path[pos..].to_vec(), false);
            }
            path.push(n);
            cur = n;
        }
    }
    (stuck.to_vec(), true)
}

/// The deadlock in `snap`, if any: the waits of its ring (or of the whole
/// quiescent tree) and whether it is the latter.
pub(crate) fn find(snap: &Snapshot) -> Option<(Vec<usize>, bool)> {
    let stuck = stuck(snap, &mut snapshot::user_threads);
    (!stuck.is_empty()).then(|| ring(snap, &stuck))
}

/// The error for a deadlock seen by process `pid`.
pub(crate) fn error(steps: Vec<WaitStep>, quiescent: bool) -> Error {
    Error::Deadlock {
        pid: crate::os::pid(),
        cycle: steps,
        quiescent,
    }
}

/// The scans of one blocked untimed wait.
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    last_ns: u64,
    /// What the previous scan saw (a fingerprint of the deadlock this thread
    /// would report).
    prev: Option<u64>,
}

impl Scanner {
    /// Scans if it is time to; `Err(Deadlock)` when this thread is the one
    /// to report a deadlock seen on two scans in a row.
    pub(crate) fn poll(&mut self) -> Result<()> {
        if !is_detecting() {
            return Ok(());
        }
        let now = table::now_ns();
        if now.saturating_sub(self.last_ns) < SCAN_EVERY_NS {
            return Ok(());
        }
        self.last_ns = now;
        let Some(t) = table::existing() else {
            return Ok(());
        };
        match self.scan(&t) {
            Some((fp, steps, quiescent)) => {
                if self.prev == Some(fp) {
                    self.prev = None;
                    return Err(error(steps, quiescent));
                }
                self.prev = Some(fp);
            }
            None => self.prev = None,
        }
        Ok(())
    }

    /// The deadlock this thread should report, if it sees one now.
    fn scan(&self, t: &Table) -> Option<(u64, Vec<WaitStep>, bool)> {
        let snap = snapshot::take(t);
        let (ring, quiescent) = find(&snap)?;
        let me = crate::os::tid() as i32;
        // One thread reports: the first of the ring, a join only if nothing
        // else waits (the joined process is the one that is stuck).
        let first = ring.iter().copied().min_by_key(|&i| {
            let w = &snap.waits[i];
            (w.kind == super::kind::Kind::Process, w.pid, w.tid)
        })?;
        if snap.waits[first].tid != me {
            return None;
        }
        let mut fp = std::collections::hash_map::DefaultHasher::new();
        use std::hash::{Hash, Hasher};
        for &i in &ring {
            let w = &snap.waits[i];
            (w.pid, w.tid, w.generation, w.holder_pid, w.holder_tid).hash(&mut fp);
        }
        if quiescent {
            snap.progress.hash(&mut fp);
        }
        // Start the report at the reporter.
        let pos = ring.iter().position(|&i| i == first).unwrap_or(0);
        let steps = ring[pos..]
            .iter()
            .chain(&ring[..pos])
            .map(|&i| snapshot::step(t, &snap.waits[i], snap.now_ns))
            .collect();
        Some((fp.finish(), steps, quiescent))
    }
}

#[cfg(test)]
mod tests {
    use super::super::kind::Kind;
    use super::super::snapshot::WaitRec;
    use super::*;

    fn wait(pid: i32, tid: i32, owned: bool, holder_pid: i32, holder_tid: i32) -> WaitRec {
        WaitRec {
            pid,
            tid,
            generation: 1,
            prim: 1,
            kind: Kind::Lock,
            timed: false,
            owned,
            holder_pid,
            holder_tid,
            since_ns: 0,
            name: String::new(),
        }
    }

    fn snap(waits: Vec<WaitRec>, procs: Vec<i32>) -> Snapshot {
        Snapshot {
            waits,
            procs,
            progress: 0,
            now_ns: 0,
        }
    }

    fn one_thread(pid: i32) -> Vec<i32> {
        vec![pid]
    }

    #[test]
    fn a_ring_of_holders_is_stuck() {
        let s = snap(
            vec![wait(1, 1, true, 2, 2), wait(2, 2, true, 1, 1)],
            vec![1, 2, 3],
        );
        let st = stuck(&s, &mut one_thread);
        assert_eq!(st, vec![0, 1]);
        assert_eq!(ring(&s, &st), (vec![0, 1], false));
    }

    #[test]
    fn a_free_lock_or_a_running_holder_is_not_stuck() {
        let s = snap(
            vec![wait(1, 1, true, 2, 2), wait(2, 2, true, 0, 0)],
            vec![1, 2],
        );
        assert!(stuck(&s, &mut one_thread).is_empty());
        let s = snap(vec![wait(1, 1, true, 2, 2)], vec![1, 2]);
        assert!(stuck(&s, &mut one_thread).is_empty());
        let mut timed = wait(2, 2, true, 1, 1);
        timed.timed = true;
        let s = snap(vec![wait(1, 1, true, 2, 2), timed], vec![1, 2]);
        assert!(stuck(&s, &mut one_thread).is_empty());
    }

    #[test]
    fn anyone_waits_are_stuck_only_when_the_whole_tree_is() {
        // 1 waits on a pipe, 2 joins 1: nobody else can write.
        let s = snap(
            vec![wait(1, 1, false, 0, 0), wait(2, 2, true, 1, 0)],
            vec![1, 2],
        );
        let st = stuck(&s, &mut one_thread);
        assert_eq!(st, vec![0, 1]);
        assert!(ring(&s, &st).1);
        // A third process computing could still write.
        let s = snap(
            vec![wait(1, 1, false, 0, 0), wait(2, 2, true, 1, 0)],
            vec![1, 2, 3],
        );
        assert!(stuck(&s, &mut one_thread).is_empty());
        // A second thread of process 1 outside forja could too.
        let s = snap(
            vec![wait(1, 1, false, 0, 0), wait(2, 2, true, 1, 0)],
            vec![1, 2],
        );
        assert!(stuck(&s, &mut |p| if p == 1 { vec![1, 7] } else { vec![p] }).is_empty());
    }
}
