//! The timeline as data: [`Timeline`], its [`Lane`]s (one per process) and
//! their [`TaskSpan`]s (pool tasks), built from the recorded events, and its
//! text table (`Display`).

use super::record::{self, KIND_EXIT, KIND_REAPED, KIND_START, KIND_TASK, now_ns};
use std::collections::HashMap;
use std::fmt;

/// One task a pool worker ran (one chunk of a `map`, or one `apply`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TaskSpan {
    /// The pool job it belonged to (one `map` or `apply_async` call).
    pub job: u64,
    /// Which chunk of that job.
    pub chunk: u64,
    /// When it started, in ms from the timeline's origin.
    pub start_ms: f64,
    /// When it ended, in ms from the origin (`None`: still running, or the
    /// worker died during it).
    pub end_ms: Option<f64>,
}

/// One process in a [`Timeline`]: a lane of the chart.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Lane {
    /// Its pid.
    pub pid: i32,
    /// Its name (`Process-1`, `ForkPoolWorker-2`, or the name given).
    pub name: String,
    /// The process that started it.
    pub parent_pid: i32,
    /// The kernel cell (execution count) it was started in.
    pub cell: u64,
    /// Old name of [`Lane::cell`] (the same number).
    #[deprecated(since = "0.1.0", note = "renamed to `cell` (the kernel's word for it)")]
    pub generation: u64,
    /// When it started, in ms from the timeline's origin (negative when it
    /// started before, e.g. a pool made in an earlier cell).
    pub start_ms: f64,
    /// When it ended (`None`: still running, or not yet reaped after a kill).
    pub end_ms: Option<f64>,
    /// Its exit code: negative for a signal (`-9` = SIGKILL), as in Python.
    pub exitcode: Option<i32>,
    /// The pool tasks it ran (empty unless it is a pool worker).
    pub tasks: Vec<TaskSpan>,
}

impl Lane {
    /// Whether it ran pool tasks.
    ///
    /// ```
    /// let t = forja::timeline();
    /// assert!(t.lanes().iter().all(|l| l.is_pool_worker() == !l.tasks.is_empty()));
    /// ```
    pub fn is_pool_worker(&self) -> bool {
        !self.tasks.is_empty()
    }
}

/// What ran: the processes and pool tasks of the current kernel cell (or,
/// outside the kernel, of the whole program since it started or since
/// [`reset`](super::reset)). Made by [`timeline()`](super::timeline()); draws itself as an SVG Gantt chart
/// ([`svg`](Timeline::svg)), prints as a text table (`Display`).
///
/// ```
/// use forja::prelude::*;
/// forja::timeline::reset().unwrap();
/// let procs: Vec<Process> = (0..2).map(|_| Process::new(|| {})).collect();
/// for p in &procs { p.start().unwrap(); }
/// for p in &procs { p.join().unwrap(); }
/// let t = forja::timeline();
/// assert_eq!(t.lanes().len(), 2);
/// println!("{t}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    cell: Option<u64>,
    pub(super) lanes: Vec<Lane>,
    pub(super) span_ms: f64,
    lost: u64,
}

struct LaneBuild {
    pid: i32,
    name: String,
    parent: i32,
    cell: u64,
    selected: bool,
    start: u64,
    exit: Option<(u64, i32)>,
    reaped: Option<(u64, i32)>,
    tasks: Vec<(u64, u64, u64, Option<u64>)>,
}

impl Timeline {
    /// Everything recorded since the program started or since [`reset`](super::reset),
    /// whatever the cell.
    ///
    /// ```
    /// let t = forja::Timeline::all();
    /// assert!(t.cell().is_none());
    /// ```
    pub fn all() -> Timeline {
        Self::build(None)
    }

    /// What was started (and the pool tasks run) in cell `cell`
    /// (a kernel cell), since the last [`reset`](super::reset).
    ///
    /// ```
    /// let t = forja::Timeline::of_cell(0);
    /// assert_eq!(t.cell(), Some(0));
    /// ```
    pub fn of_cell(cell: u64) -> Timeline {
        Self::build(Some(cell))
    }

    fn build(cell: Option<u64>) -> Timeline {
        let now = now_ns();
        let Ok(s) = record::current() else {
            return Timeline {
                cell,
                lanes: Vec::new(),
                span_ms: 0.0,
                lost: 0,
            };
        };
        let (records, reset_at, lost) = s.read();
        let wanted = |g: u64, idx: u64| idx >= reset_at && cell.is_none_or(|w| w == g);
        let mut lanes: Vec<LaneBuild> = Vec::new();
        let mut by_pid: HashMap<i32, usize> = HashMap::new();
        for r in records {
            match r.kind {
                KIND_START => {
                    by_pid.insert(r.pid, lanes.len());
                    lanes.push(LaneBuild {
                        pid: r.pid,
                        name: r.name,
                        parent: r.parent,
                        cell: r.cell,
                        selected: wanted(r.cell, r.idx),
                        start: r.start,
                        exit: None,
                        reaped: None,
                        tasks: Vec::new(),
                    });
                }
                KIND_EXIT | KIND_REAPED | KIND_TASK => {
                    let i = match by_pid.get(&r.pid) {
                        Some(&i) => i,
                        None => {
                            // Its start was overwritten or predates the
                            // timeline: a lane with what we know.
                            by_pid.insert(r.pid, lanes.len());
                            lanes.push(LaneBuild {
                                pid: r.pid,
                                name: format!("pid {}", r.pid),
                                parent: 0,
                                cell: r.cell,
                                selected: false,
                                start: r.start,
                                exit: None,
                                reaped: None,
                                tasks: Vec::new(),
                            });
                            lanes.len() - 1
                        }
                    };
                    let lane = &mut lanes[i];
                    match r.kind {
                        KIND_EXIT => lane.exit = Some((r.end, r.code)),
                        KIND_REAPED => lane.reaped = Some((r.end, r.code)),
                        _ => {
                            if wanted(r.cell, r.idx) {
                                lane.tasks.push((
                                    r.job,
                                    r.chunk,
                                    r.start,
                                    (r.end != 0).then_some(r.end),
                                ));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        lanes.retain(|l| l.selected || !l.tasks.is_empty());
        lanes.sort_by_key(|l| (l.start, l.pid));
        // The origin: the first thing that happened in the selection.
        let origin = lanes
            .iter()
            .flat_map(|l| {
                let own = l.selected.then_some(l.start);
                own.into_iter().chain(l.tasks.iter().map(|t| t.2))
            })
            .min()
            .unwrap_or(now);
        let ms = |t: u64| (t as f64 - origin as f64) / 1e6;
        let mut end_max = origin;
        let lanes: Vec<Lane> = lanes
            .into_iter()
            .map(|l| {
                let end = l.exit.map(|e| e.0).or(l.reaped.map(|r| r.0));
                let code = match (l.reaped, l.exit) {
                    (Some((_, c)), _) if c != crate::registry::STATUS_UNKNOWN => Some(c),
                    (_, Some((_, c))) => Some(c),
                    _ => None,
                };
                end_max = end_max.max(end.unwrap_or(now));
                let tasks = l
                    .tasks
                    .iter()
                    .map(|&(job, chunk, t0, t1)| {
                        end_max = end_max.max(t1.unwrap_or(now));
                        TaskSpan {
                            job,
                            chunk,
                            start_ms: ms(t0),
                            end_ms: t1.map(ms),
                        }
                    })
                    .collect();
                Lane {
                    pid: l.pid,
                    name: l.name,
                    parent_pid: l.parent,
                    cell: l.cell,
                    #[allow(deprecated)]
                    generation: l.cell,
                    start_ms: ms(l.start),
                    end_ms: end.map(ms),
                    exitcode: code,
                    tasks,
                }
            })
            .collect();
        Timeline {
            cell,
            span_ms: if lanes.is_empty() { 0.0 } else { ms(end_max) },
            lanes,
            lost,
        }
    }

    /// The cell shown (`None`: all of them).
    ///
    /// ```
    /// assert_eq!(forja::Timeline::of_cell(3).cell(), Some(3));
    /// ```
    pub fn cell(&self) -> Option<u64> {
        self.cell
    }

    /// Old name of [`Timeline::cell`].
    #[deprecated(since = "0.1.0", note = "renamed to `cell` (the kernel's word for it)")]
    pub fn generation(&self) -> Option<u64> {
        self.cell
    }

    /// Old name of [`Timeline::of_cell`].
    #[deprecated(
        since = "0.1.0",
        note = "renamed to `of_cell` (the kernel's word for it)"
    )]
    pub fn of_generation(cell: u64) -> Timeline {
        Self::of_cell(cell)
    }

    /// One lane per process, in order of start.
    ///
    /// ```
    /// for lane in forja::timeline().lanes() {
    ///     println!("{} {} {:?}", lane.pid, lane.name, lane.exitcode);
    /// }
    /// ```
    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// Whether nothing was recorded.
    ///
    /// ```
    /// forja::timeline::reset().unwrap();
    /// assert!(forja::timeline().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// How many pool tasks it shows.
    ///
    /// ```
    /// forja::timeline::reset().unwrap();
    /// let pool = forja::Pool::new(2).unwrap();
    /// pool.chunksize(1).map(|x: u32| x, 0..6).unwrap();
    /// assert_eq!(forja::timeline().task_count(), 6);
    /// ```
    pub fn task_count(&self) -> usize {
        self.lanes.iter().map(|l| l.tasks.len()).sum()
    }

    /// From the first start to the last end (or now, if something still
    /// runs), in ms.
    ///
    /// ```
    /// assert!(forja::timeline().span_ms() >= 0.0);
    /// ```
    pub fn span_ms(&self) -> f64 {
        self.span_ms
    }

    /// How many events were overwritten before they could be shown (more
    /// than [`CAPACITY`](super::CAPACITY) since the last [`reset`](super::reset)).
    ///
    /// ```
    /// assert_eq!(forja::timeline().lost_events(), 0);
    /// ```
    pub fn lost_events(&self) -> u64 {
        self.lost
    }

    /// The most processes that were alive at the same moment (1 for
    /// processes run one after another).
    ///
    /// ```
    /// forja::timeline::reset().unwrap();
    /// assert_eq!(forja::timeline().max_parallel_processes(), 0);
    /// ```
    pub fn max_parallel_processes(&self) -> usize {
        let end = self.span_ms;
        max_overlap(
            self.lanes
                .iter()
                .map(|l| (l.start_ms, l.end_ms.unwrap_or(end))),
        )
    }

    /// The most pool tasks that ran at the same moment.
    ///
    /// ```
    /// forja::timeline::reset().unwrap();
    /// assert_eq!(forja::timeline().max_parallel_tasks(), 0);
    /// ```
    pub fn max_parallel_tasks(&self) -> usize {
        let end = self.span_ms;
        max_overlap(
            self.lanes
                .iter()
                .flat_map(|l| l.tasks.iter())
                .map(|t| (t.start_ms, t.end_ms.unwrap_or(end))),
        )
    }

    pub(super) fn title(&self) -> String {
        let mut t = String::from(crate::messages::Msg::TimelineTitle.get());
        if let Some(g) = self.cell {
            t.push_str(&crate::messages::Msg::TimelineCell.fill(&[("cell", &g)]));
        }
        let n = self.lanes.len();
        let ms = fmt_ms(self.span_ms, self.span_ms);
        t.push_str(&if n == 1 {
            crate::messages::Msg::TimelineOneProcess.fill(&[("ms", &ms)])
        } else {
            crate::messages::Msg::TimelineProcesses.fill(&[("n", &n), ("ms", &ms)])
        });
        if n > 0 {
            t.push_str(
                &crate::messages::Msg::TimelineAtOnce
                    .fill(&[("n", &self.max_parallel_processes())]),
            );
        }
        let tasks = self.task_count();
        if tasks > 0 {
            let n = self.max_parallel_tasks();
            t.push_str(&if tasks == 1 {
                crate::messages::Msg::TimelineOneTask.fill(&[("n", &n)])
            } else {
                crate::messages::Msg::TimelineTasks.fill(&[("tasks", &tasks), ("n", &n)])
            });
        }
        if self.lost > 0 {
            t.push_str(&crate::messages::Msg::TimelineLost.fill(&[("n", &self.lost)]));
        }
        t
    }
}

fn max_overlap(spans: impl Iterator<Item = (f64, f64)>) -> usize {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for (a, b) in spans {
        events.push((a, 1));
        events.push((b.max(a), -1));
    }
    // Ends before starts at the same instant: touching spans do not overlap.
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        best = best.max(cur);
    }
    best as usize
}

/// `x` ms with a precision that suits a chart spanning `span` ms.
pub(super) fn fmt_ms(x: f64, span: f64) -> String {
    if span < 10.0 {
        format!("{x:.2}")
    } else if span < 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

pub(super) fn exit_label(code: Option<i32>, ended: bool) -> String {
    match code {
        Some(0) => "exit 0".into(),
        Some(c) if c > 0 => format!("exit {c}"),
        Some(c) => match -c {
            libc::SIGTERM => "SIGTERM".into(),
            libc::SIGKILL => "SIGKILL".into(),
            libc::SIGINT => "SIGINT".into(),
            libc::SIGSEGV => "SIGSEGV".into(),
            libc::SIGABRT => "SIGABRT".into(),
            s => format!("signal {s}"),
        },
        None if ended => "exit ?".into(),
        None => crate::messages::Msg::TimelineRunning.get().into(),
    }
}

impl fmt::Display for Timeline {
    /// A text table with a small bar per process (`█` running, `▒` a pool
    /// task).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BAR: usize = 40;
        writeln!(f, "{}", self.title())?;
        if self.lanes.is_empty() {
            return write!(f, "  ({})", crate::messages::Msg::TimelineEmpty.get());
        }
        let span = if self.span_ms > 0.0 {
            self.span_ms
        } else {
            1.0
        };
        let col = |ms: f64| ((ms.clamp(0.0, span) / span) * BAR as f64).floor() as usize;
        writeln!(
            f,
            "  {:>7}  {:<20} {:>9} {:>9}  {:<8} |0{:>w$}|",
            "pid",
            crate::messages::Msg::TimelineColName.get(),
            crate::messages::Msg::TimelineColStart.get(),
            crate::messages::Msg::TimelineColEnd.get(),
            crate::messages::Msg::TimelineColExit.get(),
            format!("{} ms", fmt_ms(self.span_ms, span)),
            w = BAR - 1
        )?;
        for (i, lane) in self.lanes.iter().enumerate() {
            let ended = lane.end_ms.is_some();
            let end = lane.end_ms.unwrap_or(span);
            let mut bar = vec![' '; BAR];
            let (a, b) = (col(lane.start_ms), col(end).max(col(lane.start_ms) + 1));
            let worker = lane.is_pool_worker();
            for c in bar.iter_mut().take(b.min(BAR)).skip(a) {
                *c = if worker { '·' } else { '█' };
            }
            for t in &lane.tasks {
                let (ta, tb) = (
                    col(t.start_ms),
                    col(t.end_ms.unwrap_or(end)).max(col(t.start_ms) + 1),
                );
                for c in bar.iter_mut().take(tb.min(BAR)).skip(ta) {
                    *c = '▒';
                }
            }
            let mut name = lane.name.clone();
            if name.chars().count() > 20 {
                name = name.chars().take(19).collect::<String>() + "…";
            }
            write!(
                f,
                "  {:>7}  {:<20} {:>9} {:>9}  {:<8} |{}|",
                lane.pid,
                name,
                fmt_ms(lane.start_ms, span),
                lane.end_ms
                    .map(|e| fmt_ms(e, span))
                    .unwrap_or_else(|| "…".into()),
                exit_label(lane.exitcode, ended),
                bar.into_iter().collect::<String>()
            )?;
            if !lane.tasks.is_empty() {
                write!(f, " {} tasks", lane.tasks.len())?;
            }
            if i + 1 < self.lanes.len() {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_counts_touching_spans_as_sequential() {
        assert_eq!(max_overlap([(0.0, 1.0), (1.0, 2.0)].into_iter()), 1);
        assert_eq!(max_overlap([(0.0, 2.0), (1.0, 3.0)].into_iter()), 2);
        assert_eq!(max_overlap(std::iter::empty()), 0);
    }

    #[test]
    fn exit_labels() {
        assert_eq!(exit_label(Some(-9), true), "SIGKILL");
        assert_eq!(exit_label(None, false), "running");
    }
}
