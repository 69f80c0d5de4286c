//! Rich displays of forja's handles in a notebook, plain text elsewhere.
//!
//! A notebook cell that ends with a [`Process`], [`Value`], [`Array`],
//! [`Queue`] or [`Pool`] shows a small HTML table (evcxr calls the type's
//! `evcxr_display` method); `println!("{x}")` prints the same facts as text.
//! A long `Pool::map` (more than a second) shows a live progress bar in the
//! kernel ([`Progress`]).
//!
//! ```
//! use forja::prelude::*;
//! let v = Value::new(42i32).unwrap();
//! assert_eq!(v.to_string(), "Value<i32>(42)");
//! let q: Queue<u8> = Queue::with_maxsize(4).unwrap();
//! assert_eq!(q.to_string(), "<Queue qsize=0 maxsize=4 open>");
//! ```

mod progress;
pub(crate) mod protocol;

pub use progress::{PROGRESS_AFTER, PROGRESS_EVERY, Progress};

use crate::{Array, JoinableQueue, Pool, Process, Queue, RawArray, RawValue, Shareable, Value};
use protocol::{emit, xml_escape};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::{self, Debug, Write as _};
use std::time::Duration;

/// How long a display waits for a `Value`'s or `Array`'s lock before it
/// shows "locked" instead (a display must never hang a cell).
const LOCK_WAIT: Duration = Duration::from_millis(100);
/// Arrays longer than this are shown as their first and last items.
const ARRAY_SHOWN: usize = 16;

fn emit_html(text: String, html: String) {
    emit(&[("text/plain", text), ("text/html", html)]);
}

const TABLE: &str =
    "<table class=\"forja\" style=\"border-collapse:collapse;font-family:monospace\">";

/// A two-row HTML table: a header row and one row of cells (already escaped).
fn html_table(caption: &str, headers: &[String], cells: &[String]) -> String {
    let mut s = String::from(TABLE);
    let _ = write!(
        s,
        "<caption style=\"text-align:left;font-weight:bold\">{}</caption><tr>",
        xml_escape(caption)
    );
    for h in headers {
        let _ = write!(s, "<th style=\"padding:2px 8px\">{h}</th>");
    }
    s.push_str("</tr><tr>");
    for c in cells {
        let _ = write!(s, "<td style=\"padding:2px 8px;text-align:right\">{c}</td>");
    }
    s.push_str("</tr></table>");
    s
}

/// `alloc::string::String` → `String`, `[f64; 3]` stays.
fn short_type<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::new();
    let mut word = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            out.push_str(word.rsplit("::").next().unwrap_or(""));
            word.clear();
            out.push(c);
        }
    }
    out.push_str(word.rsplit("::").next().unwrap_or(""));
    out
}

/// `true`/`false` in an HTML table, in the student's language.
fn yes_no(b: bool) -> &'static str {
    if b {
        crate::messages::Msg::Yes.get()
    } else {
        crate::messages::Msg::No.get()
    }
}

// ---- Process ----

impl Process {
    fn state_word(&self) -> (&'static str, Option<i32>) {
        match self.pid() {
            None => (crate::messages::Msg::StateInitial.get(), None),
            Some(_) => match self.exitcode() {
                Some(c) => (crate::messages::Msg::StateStopped.get(), Some(c)),
                None if self.is_alive() => (crate::messages::Msg::StateRunning.get(), None),
                None => (crate::messages::Msg::StateStarted.get(), None),
            },
        }
    }

    /// How evcxr shows a `Process` as a cell's value: a table with its name,
    /// pid, state and exit code (and the text form).
    ///
    /// ```
    /// let p = forja::Process::new(|| {}).with_name("demo");
    /// p.evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let (state, code) = self.state_word();
        let code_html = match code {
            Some(0) => "<span style=\"color:#2e7d32\">0</span>".to_owned(),
            Some(c) if c < 0 => format!(
                "<span style=\"color:#ef6c00\">{}</span>",
                crate::messages::Msg::ExitSignal.fill(&[("code", &c), ("signal", &-c)])
            ),
            Some(c) => format!("<span style=\"color:#c62828\">{c}</span>"),
            None => "–".to_owned(),
        };
        let html = html_table(
            "Process",
            &[
                crate::messages::Msg::ColName.get(),
                "pid",
                crate::messages::Msg::ColState.get(),
                crate::messages::Msg::ColExitCode.get(),
                crate::messages::Msg::ColDaemon.get(),
            ]
            .map(String::from),
            &[
                xml_escape(self.name()),
                self.pid().map(|p| p.to_string()).unwrap_or("–".into()),
                state.to_owned(),
                code_html,
                self.is_daemon().to_string(),
            ],
        );
        emit_html(self.to_string(), html);
    }
}

// ---- Value / RawValue ----

impl<T: Shareable + Debug> fmt::Display for Value<T> {
    /// `Value<i32>(42)`, or `Value<i32>(<locked>)` when another process
    /// holds its lock for more than 100 ms (`<held by this thread>` when
    /// this thread holds its guard).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get_lock_timeout(LOCK_WAIT) {
            Ok(g) => write!(f, "Value<{}>({:?})", short_type::<T>(), &*g),
            Err(e) => write!(
                f,
                "Value<{}>({})",
                short_type::<T>(),
                crate::value::unavailable(&e)
            ),
        }
    }
}

impl<T: Shareable + Debug> Value<T> {
    /// How evcxr shows a `Value` as a cell's value: its type and value.
    ///
    /// ```
    /// forja::Value::new(1.5f64).unwrap().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let v = match self.get_lock_timeout(LOCK_WAIT) {
            Ok(g) => format!("{:?}", &*g),
            Err(e) => crate::value::unavailable(&e).to_owned(),
        };
        let html = html_table(
            &format!("Value<{}>", short_type::<T>()),
            &[crate::messages::Msg::ColValue.get().to_owned()],
            &[xml_escape(&v)],
        );
        emit_html(self.to_string(), html);
    }
}

impl<T: Shareable + Debug> fmt::Display for RawValue<T> {
    /// `RawValue<u64>(7)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawValue<{}>({:?})", short_type::<T>(), self.load())
    }
}

impl<T: Shareable + Debug> RawValue<T> {
    /// How evcxr shows a `RawValue`: its type and value.
    ///
    /// ```
    /// forja::RawValue::new(7u64).unwrap().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let html = html_table(
            &format!("RawValue<{}>", short_type::<T>()),
            &[crate::messages::Msg::ColValue.get().to_owned()],
            &[xml_escape(&format!("{:?}", self.load()))],
        );
        emit_html(self.to_string(), html);
    }
}

// ---- Array / RawArray ----

/// The indices shown for an array of `len` items (`None`: the gap).
fn shown_indices(len: usize) -> Vec<Option<usize>> {
    if len <= ARRAY_SHOWN {
        (0..len).map(Some).collect()
    } else {
        let head = ARRAY_SHOWN - 4;
        (0..head)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((len - 3..len).map(Some))
            .collect()
    }
}

fn array_text<T: Debug>(kind: &str, items: Option<&[T]>, len: usize) -> String {
    let Some(items) = items else {
        return format!("{kind}<{}>[len {len}](<locked>)", short_type::<T>());
    };
    let parts: Vec<String> = shown_indices(len)
        .into_iter()
        .map(|i| match i {
            Some(i) => format!("{:?}", items[i]),
            None => "…".to_owned(),
        })
        .collect();
    format!(
        "{kind}<{}>[len {len}]([{}])",
        short_type::<T>(),
        parts.join(", ")
    )
}

fn array_html<T: Debug>(kind: &str, items: Option<&[T]>, len: usize) -> String {
    let caption = crate::messages::Msg::ArrayCaption.fill(&[
        ("kind", &kind),
        ("type", &short_type::<T>()),
        ("len", &len),
    ]);
    let Some(items) = items else {
        return html_table(&caption, &["".into()], &["&lt;locked&gt;".into()]);
    };
    let (mut heads, mut cells) = (Vec::new(), Vec::new());
    for i in shown_indices(len) {
        match i {
            Some(i) => {
                heads.push(i.to_string());
                cells.push(xml_escape(&format!("{:?}", items[i])));
            }
            None => {
                heads.push("…".into());
                cells.push("…".into());
            }
        }
    }
    html_table(&caption, &heads, &cells)
}

impl<T: Shareable + Debug> fmt::Display for Array<T> {
    /// `Array<i32>[len 3]([1, 2, 3])`; long arrays show their first and
    /// last items.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.get_lock_timeout(LOCK_WAIT).ok();
        f.write_str(&array_text("Array", g.as_deref(), self.len()))
    }
}

impl<T: Shareable + Debug> Array<T> {
    /// How evcxr shows an `Array`: a table of index and value (the first and
    /// last items of a long one).
    ///
    /// ```
    /// forja::Array::from_slice(&[1, 2, 3]).unwrap().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let g = self.get_lock_timeout(LOCK_WAIT).ok();
        let text = array_text("Array", g.as_deref(), self.len());
        let html = array_html("Array", g.as_deref(), self.len());
        drop(g);
        emit_html(text, html);
    }
}

impl<T: Shareable + Debug> fmt::Display for RawArray<T> {
    /// `RawArray<u8>[len 2]([0, 0])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.to_vec();
        f.write_str(&array_text("RawArray", Some(&v), v.len()))
    }
}

impl<T: Shareable + Debug> RawArray<T> {
    /// How evcxr shows a `RawArray`: a table of index and value.
    ///
    /// ```
    /// forja::RawArray::<u8>::zeroed(4).unwrap().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let v = self.to_vec();
        emit_html(
            array_text("RawArray", Some(&v), v.len()),
            array_html("RawArray", Some(&v), v.len()),
        );
    }
}

// ---- Queue / JoinableQueue ----

fn maxsize_text(m: usize) -> String {
    if m == 0 { "∞".into() } else { m.to_string() }
}

impl<T: Serialize + DeserializeOwned> fmt::Display for Queue<T> {
    /// `<Queue qsize=3 maxsize=∞ open>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<Queue qsize={} maxsize={} {}>",
            self.qsize(),
            maxsize_text(self.maxsize()),
            if self.is_closed() { "closed" } else { "open" }
        )
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// How evcxr shows a `Queue`: items waiting, `maxsize` and whether it is
    /// closed here.
    ///
    /// ```
    /// forja::Queue::<u8>::new().unwrap().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let html = html_table(
            &format!("Queue<{}>", short_type::<T>()),
            &[
                crate::messages::Msg::ColQsize.get(),
                crate::messages::Msg::ColMaxsize.get(),
                crate::messages::Msg::ColClosed.get(),
            ]
            .map(String::from),
            &[
                self.qsize().to_string(),
                maxsize_text(self.maxsize()),
                yes_no(self.is_closed()).to_owned(),
            ],
        );
        emit_html(self.to_string(), html);
    }
}

impl<T: Serialize + DeserializeOwned> fmt::Display for JoinableQueue<T> {
    /// `<JoinableQueue qsize=0 maxsize=∞ unfinished=2 open>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<JoinableQueue qsize={} maxsize={} unfinished={} {}>",
            self.qsize(),
            maxsize_text(self.maxsize()),
            self.unfinished_tasks(),
            if self.is_closed() { "closed" } else { "open" }
        )
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// How evcxr shows a `JoinableQueue`: like a [`Queue`], plus the
    /// unfinished tasks.
    ///
    /// ```
    /// forja::JoinableQueue::<u8>::new().unwrap().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let html = html_table(
            &format!("JoinableQueue<{}>", short_type::<T>()),
            &[
                crate::messages::Msg::ColQsize.get(),
                crate::messages::Msg::ColMaxsize.get(),
                crate::messages::Msg::ColUnfinished.get(),
                crate::messages::Msg::ColClosed.get(),
            ]
            .map(String::from),
            &[
                self.qsize().to_string(),
                maxsize_text(self.maxsize()),
                self.unfinished_tasks().to_string(),
                yes_no(self.is_closed()).to_owned(),
            ],
        );
        emit_html(self.to_string(), html);
    }
}

// ---- Pool ----

impl<C> fmt::Display for Pool<C> {
    /// `<Pool size=2 state=open workers=[101, 102] worker_starts=2>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (state, queued) = self.state_summary();
        write!(
            f,
            "<Pool size={} state={state} workers={:?} worker_starts={}",
            self.size(),
            self.worker_pids(),
            self.worker_starts()
        )?;
        if queued > 0 {
            write!(f, " queued_tasks={queued}")?;
        }
        write!(f, ">")
    }
}

impl<C> Pool<C> {
    /// How evcxr shows a `Pool`: size, state, worker pids and how many
    /// workers it has forked (more than its size after a re-fork).
    ///
    /// ```
    /// forja::Pool::new(1).unwrap().evcxr_display();
    /// ```
    pub fn evcxr_display(&self) {
        let (state, queued) = self.state_summary();
        let pids: Vec<String> = self.worker_pids().iter().map(|p| p.to_string()).collect();
        let html = html_table(
            "Pool",
            &[
                crate::messages::Msg::ColSize.get(),
                crate::messages::Msg::ColState.get(),
                crate::messages::Msg::ColWorkerPids.get(),
                crate::messages::Msg::ColWorkerStarts.get(),
                crate::messages::Msg::ColQueuedTasks.get(),
            ]
            .map(String::from),
            &[
                self.size().to_string(),
                state.to_owned(),
                pids.join(", "),
                self.worker_starts().to_string(),
                queued.to_string(),
            ],
        );
        emit_html(self.to_string(), html);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_type_names() {
        assert_eq!(short_type::<i32>(), "i32");
        assert_eq!(short_type::<[f64; 3]>(), "[f64; 3]");
        assert_eq!(short_type::<String>(), "String");
        assert_eq!(short_type::<Vec<(u8, String)>>(), "Vec<(u8, String)>");
    }

    #[test]
    fn long_arrays_are_truncated() {
        assert_eq!(shown_indices(3), vec![Some(0), Some(1), Some(2)]);
        let v = shown_indices(1000);
        assert_eq!(v.len(), ARRAY_SHOWN);
        assert!(v.contains(&None));
        assert_eq!(v.last(), Some(&Some(999)));
        let items: Vec<u32> = (0..100).collect();
        let t = array_text("Array", Some(&items), 100);
        assert!(t.contains("0, 1") && t.contains("…") && t.ends_with("99])"));
    }
}
