//! The live progress display of a [`Pool`](crate::Pool)'s long waits.

use crate::display::{self, Data, DisplayHandle};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a pool wait runs before the progress display appears.
pub const PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// The progress display is updated at most this often.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The live progress display of a [`Pool`](crate::Pool)'s long waits (`map`, `starmap`,
/// `imap`, `AsyncResult::get`...): in the forja kernel, once work has been
/// pending for [`PROGRESS_AFTER`], an HTML progress bar "k / n tasks,
/// elapsed" appears, is updated at most every [`PROGRESS_EVERY`] and shows
/// the total time when the work is done. Outside the kernel it shows nothing.
/// A task is one message to a worker: one chunk of a `map`.
///
/// The pool drives it; this type is public only so that it can be named.
///
/// ```
/// let mut p = forja::rich::Progress::default();
/// p.tick([(1u64, 4usize, 2usize)].into_iter()); // job 1: 2 of 4 tasks done
/// assert!(!p.is_shown()); // not yet a second, and not in the kernel
/// ```
#[derive(Default)]
pub struct Progress {
    /// Since when work has been pending (no display yet).
    pending_since: Option<Instant>,
    /// Whether this process is in the kernel (looked up once).
    in_kernel: Option<bool>,
    shown: Option<Shown>,
}

struct Shown {
    /// Shared with the watcher thread, which ends the display if the cell is
    /// interrupted while it shows (the pool's wait then returns at once and
    /// never ticks again; the pool itself may live on in a variable).
    live: Arc<Live>,
    /// Jobs followed: (id, tasks).
    jobs: Vec<(u64, usize)>,
    last_update: Instant,
}

/// What the watcher thread and the pool share of a showing display.
struct Live {
    handle: DisplayHandle,
    since: Instant,
    /// `(done, total)` last shown, and whether the display has ended (said
    /// "done", "stopped" or "interrupted"): an ended display is never
    /// updated again.
    state: Mutex<(usize, usize, bool)>,
}

impl Live {
    /// Shows `(done, total)`, or ends the display with `how`; nothing once
    /// it has ended.
    fn show(&self, done: usize, total: usize, how: Option<&str>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.2 {
            return;
        }
        *st = (done, total, how.is_some());
        let _ = self
            .handle
            .update_data(&progress_data(done, total, self.since.elapsed(), how));
    }

    /// Ends the display with `how` at the last counts shown.
    fn end(&self, how: &str) {
        let (done, total) = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (st.0, st.1)
        };
        self.show(done, total, Some(how));
    }

    fn ended(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).2
    }
}

/// How often the watcher looks at the interrupt flag: well inside the
/// pool's own [`POLL_INTERVAL`](crate::registry::POLL_INTERVAL), so the
/// display says "interrupted" before the cell ends (an atomic load each time).
const WATCH_EVERY: Duration = Duration::from_millis(5);

/// Ends `live` as "interrupted" once the interrupt flag is raised; returns
/// when the display has ended either way.
fn watch(live: Arc<Live>) {
    while !live.ended() {
        if crate::registry::interrupted() {
            live.end(crate::messages::Msg::ProgressInterrupted.get());
            return;
        }
        std::thread::sleep(WATCH_EVERY);
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("shown", &self.shown.is_some())
            .finish()
    }
}

fn progress_html(done: usize, total: usize, elapsed: Duration, finished: Option<&str>) -> String {
    format!(
        "<div class=\"forja-progress\" style=\"font-family:monospace\">\
         <progress value=\"{done}\" max=\"{}\" style=\"width:300px\"></progress> \
         {}</div>",
        total.max(1),
        progress_text(done, total, elapsed, finished)
    )
}

/// The same line as text, for frontends (and saved notebooks read as text)
/// that do not show HTML.
fn progress_text(done: usize, total: usize, elapsed: Duration, finished: Option<&str>) -> String {
    let secs = elapsed.as_secs_f64();
    match finished {
        Some(how) => crate::messages::Msg::ProgressFinished.fill(&[
            ("done", &done),
            ("total", &total),
            ("how", &how),
            ("secs", &format!("{secs:.1}")),
        ]),
        None => crate::messages::Msg::ProgressRunning.fill(&[
            ("done", &done),
            ("total", &total),
            ("secs", &format!("{secs:.1}")),
        ]),
    }
}

fn progress_data(done: usize, total: usize, elapsed: Duration, finished: Option<&str>) -> Data {
    Data::new()
        .text(progress_text(done, total, elapsed, finished))
        .html(progress_html(done, total, elapsed, finished))
}

impl Progress {
    /// Whether the display is showing.
    ///
    /// ```
    /// assert!(!forja::rich::Progress::default().is_shown());
    /// ```
    pub fn is_shown(&self) -> bool {
        self.shown.is_some()
    }

    /// Looks at the pool's jobs, as `(job id, tasks, tasks done)`, and
    /// shows or updates the display if it is time to.
    ///
    /// ```
    /// let mut p = forja::rich::Progress::default();
    /// p.tick(std::iter::empty());
    /// ```
    pub fn tick(&mut self, jobs: impl Iterator<Item = (u64, usize, usize)>) {
        if let Some(shown) = &mut self.shown {
            let (mut done, mut total) = (0, 0);
            let mut seen = vec![false; shown.jobs.len()];
            for (id, n, d) in jobs {
                match shown.jobs.iter().position(|&(j, _)| j == id) {
                    Some(i) => {
                        seen[i] = true;
                        done += d;
                        total += n;
                    }
                    None if d < n => {
                        // New work while the display shows: follow it too.
                        shown.jobs.push((id, n));
                        seen.push(true);
                        done += d;
                        total += n;
                    }
                    None => {}
                }
            }
            // Jobs collected and gone: they are done.
            for (i, &(_, n)) in shown.jobs.iter().enumerate() {
                if !seen[i] {
                    done += n;
                    total += n;
                }
            }
            let now = Instant::now();
            if done >= total {
                shown
                    .live
                    .show(done, total, Some(crate::messages::Msg::ProgressDone.get()));
                self.shown = None;
                self.pending_since = None;
            } else if now - shown.last_update >= PROGRESS_EVERY {
                let last = {
                    let st = shown.live.state.lock().unwrap_or_else(|e| e.into_inner());
                    (st.0, st.1)
                };
                if last != (done, total) {
                    shown.live.show(done, total, None);
                    shown.last_update = now;
                }
            }
            return;
        }
        // Cheap path: is anything pending? (no allocation, no system call)
        let Some(since) = self.pending_since else {
            if jobs.into_iter().any(|(_, n, d)| d < n) {
                self.pending_since = Some(Instant::now());
            }
            return;
        };
        let now = Instant::now();
        let due =
            now - since >= PROGRESS_AFTER && *self.in_kernel.get_or_insert_with(display::in_kernel);
        if !due {
            if !jobs.into_iter().any(|(_, n, d)| d < n) {
                self.pending_since = None;
            }
            return;
        }
        let snapshot: Vec<(u64, usize, usize)> = jobs.filter(|&(_, n, d)| d < n).collect();
        if snapshot.is_empty() {
            self.pending_since = None;
            return;
        }
        let done = snapshot.iter().map(|j| j.2).sum();
        let total = snapshot.iter().map(|j| j.1).sum();
        if let Ok(handle) = display::display(&progress_data(done, total, now - since, None)) {
            let live = Arc::new(Live {
                handle,
                since,
                state: Mutex::new((done, total, false)),
            });
            let watched = live.clone();
            let _ = std::thread::Builder::new()
                .name("forja-progress".into())
                .spawn(move || watch(watched));
            self.shown = Some(Shown {
                live,
                jobs: snapshot.iter().map(|&(id, n, _)| (id, n)).collect(),
                last_update: now,
            });
        }
    }
}

impl Drop for Progress {
    /// A display still showing says why it ended: "interrupted" if the
    /// interrupt flag is raised (the wait may return before the watcher's
    /// next look), else "stopped" (the pool was terminated).
    fn drop(&mut self) {
        if let Some(shown) = self.shown.take() {
            let how = if crate::registry::interrupted() {
                crate::messages::Msg::ProgressInterrupted
            } else {
                crate::messages::Msg::ProgressStopped
            };
            shown.live.end(how.get());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_html_is_well_formed() {
        let h = progress_html(3, 10, Duration::from_millis(1500), None);
        assert!(h.contains("3 / 10 tasks, 1.5 s"));
        assert!(progress_html(10, 10, Duration::from_secs(2), Some("done")).contains("done in"));
        let d = progress_data(3, 10, Duration::from_millis(1500), Some("interrupted"));
        assert_eq!(d.plain(), Some("3 / 10 tasks, interrupted in 1.5 s"));
    }
}
