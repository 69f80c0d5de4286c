//! Where a forja call that failed was made: forja's fallible public
//! functions are `#[track_caller]` and return through [`located`], which
//! records, for the `Err` it returns, the call's name and the caller's line,
//! so an error propagated with `?` names the forja call that failed and
//! where ("`Queue::get` at src/main.rs:12:5").
//!
//! Why a record beside the error and not in it: [`Error`]'s variants and
//! texts are fixed (students and lessons match `Err(Error::Eof { .. })`,
//! tests compare texts), so the site cannot be a field. The record is
//! per thread and holds the error's text; an error is matched to it by that
//! text, so a later error of another kind (a `parse()` that fails after a
//! handled `get_nowait`) is never given a forja call's site. It is read in
//! two places:
//! - `Error`'s `Debug`, which Rust's `main` prints for an `Err` it returns
//!   (`Error: Empty { pid: 7 } (Queue::get at src/main.rs:12:5)`);
//! - [`question_mark`], which the forja kernel's cells call when a `?` ends
//!   the cell (evcxr prints the error with `Display`, whose text must not
//!   change): it adds one line, "Queue::get failed at src/lib.rs:12:5",
//!   which the kernel shows as "… at cell [7], line 4".

use std::cell::RefCell;
use std::fmt::Display;
use std::panic::Location;

/// The last forja call that failed on this thread.
struct Failure {
    call: &'static str,
    at: &'static Location<'static>,
    text: String,
}

thread_local! {
    static LAST: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

/// `result`, recording for an `Err` that `call` (`"Queue::get"`) failed at
/// the caller's line (`#[track_caller]`: the caller of the public function
/// that calls this, when it is `#[track_caller]` too).
#[track_caller]
#[inline]
pub(crate) fn located<T, E: Display>(result: Result<T, E>, call: &'static str) -> Result<T, E> {
    if let Err(e) = &result {
        record(e, call, Location::caller());
    }
    result
}

#[cold]
fn record(e: &dyn Display, call: &'static str, at: &'static Location<'static>) {
    let text = e.to_string();
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            *l = Some(Failure { call, at, text });
        }
    });
}

/// The forja call that returned `e` (a [`crate::Error`]) on this thread, and
/// where, if `e` is (by its text) the last error such a call returned.
pub(crate) fn site_of(e: &dyn Display) -> Option<(&'static str, &'static Location<'static>)> {
    let text = e.to_string();
    site_of_text(&text)
}

fn site_of_text(text: &str) -> Option<(&'static str, &'static Location<'static>)> {
    LAST.try_with(|l| {
        let l = l.try_borrow().ok()?;
        let f = l.as_ref()?;
        (f.text == text).then_some((f.call, f.at))
    })
    .ok()
    .flatten()
}

/// Called by the forja kernel's cells when a `?` ended the cell with
/// `error` (already printed): if a forja call returned it, writes on stderr
/// which call and where ("Queue::get failed at src/lib.rs:12:5", in the
/// student's language), which the kernel shows as the cell's line.
#[doc(hidden)]
pub fn question_mark(error: &dyn std::fmt::Display) {
    let text = error.to_string();
    // An interrupt: the kernel's own error for the cell says what happened,
    // and the `?` echo stays one short line.
    if text == crate::messages::Msg::ErrInterruptedShort.get() {
        return;
    }
    if let Some((call, at)) = site_of_text(&text) {
        let line = crate::messages::Msg::CallFailedAt.fill(&[
            ("call", &call),
            (
                "at",
                &format_args!("{}:{}:{}", at.file(), at.line(), at.column()),
            ),
        ]);
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};

    #[track_caller]
    fn fails() -> Result<()> {
        located(Err(Error::Empty { pid: 7 }), "Queue::get")
    }

    #[test]
    fn the_site_follows_the_error_it_was_recorded_for() {
        let line = line!() + 1;
        let e = fails().unwrap_err();
        let (call, at) = site_of(&e).expect("recorded");
        assert_eq!(call, "Queue::get");
        assert_eq!((at.file(), at.line()), (file!(), line));
        // Another error's text: no site.
        assert!(site_of(&Error::Full { pid: 7 }).is_none());
        let debug = format!("{e:?}");
        assert!(
            debug.starts_with("Empty { pid: 7 } (Queue::get at "),
            "{debug}"
        );
        assert_eq!(format!("{e:#?}"), "Empty {\n    pid: 7,\n}");
    }
}
