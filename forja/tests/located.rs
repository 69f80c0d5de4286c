//! A forja call that fails names itself and its call site in `Error`'s
//! Debug, which is what `fn main() -> forja::Result<()>` prints when a `?`
//! ends the program ("Error: Empty { pid: 7 } (Queue::get_timeout at
//! forja/tests/located.rs:12:5)"); Display, which students and lessons
//! read and compare, is unchanged (issue 13).

use forja::prelude::*;
use std::time::Duration;

/// What Rust's `main` prints for an `Err` it returns.
fn as_main_reports(e: &forja::Error) -> String {
    format!("Error: {e:?}")
}

fn a_failed_call_names_itself_and_the_callers_line() {
    let q: Queue<u32> = Queue::new().unwrap();
    let line = line!() + 1;
    let e = q.get_timeout(Duration::from_millis(5)).unwrap_err();
    assert!(matches!(e, Error::Empty { .. }), "{e:?}");
    let report = as_main_reports(&e);
    let site = format!("(Queue::get_timeout at {}:{line}:", file!());
    assert!(report.contains(&site), "{report} lacks {site}");
    // Display is unchanged: no site in it.
    assert!(!e.to_string().contains(file!()), "{e}");
    // `{:#?}` is the plain derived form.
    assert!(!format!("{e:#?}").contains(file!()));
}

fn a_closed_pipe_names_recv() {
    let (a, b) = Pipe::new::<u32>().unwrap();
    drop(b);
    let line = line!() + 1;
    let e = a.recv().unwrap_err();
    let site = format!("(Connection::recv at {}:{line}:", file!());
    assert!(format!("{e:?}").contains(&site), "{e:?}");
}

fn an_error_made_elsewhere_has_no_site() {
    let q: Queue<u32> = Queue::new().unwrap();
    let _ = q.try_get(); // fails, handled
    let e = Error::Timeout { what: "x", pid: 1 };
    assert!(!format!("{e:?}").contains(" at "), "{e:?}");
}

mod common;

common::tests! {
    a_failed_call_names_itself_and_the_callers_line,
    a_closed_pipe_names_recv,
    an_error_made_elsewhere_has_no_site,
}
