//! Fork safety: forja never writes the environment, and forking while the
//! process has threads forja did not start warns once per process.

use forja::prelude::*;
use std::io::{Read, Seek};

const WARNING: &str = "This process is multi-threaded, use of fork() may lead to deadlocks";

/// What `f` writes on fd 2 (the parent's stderr only: children inherit the
/// same file, but these tests' children write nothing).
fn stderr_of(f: impl FnOnce()) -> String {
    let mut file = std::fs::File::from(
        nix::sys::memfd::memfd_create(c"stderr", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap(),
    );
    let saved = nix::unistd::dup(std::io::stderr()).unwrap();
    nix::unistd::dup2_stderr(&file).unwrap();
    f();
    nix::unistd::dup2_stderr(&saved).unwrap();
    let mut text = String::new();
    file.rewind().unwrap();
    file.read_to_string(&mut text).unwrap();
    text
}

fn run_child() {
    let p = Process::new(|| {});
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

fn a_plain_program_that_starts_processes_gets_no_warning() {
    let err = stderr_of(|| {
        run_child();
        run_child();
    });
    assert!(!err.contains(WARNING), "{err}");
    assert_eq!(forja::os::other_threads(), 0);
}

fn forjas_own_threads_do_not_count() {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let t = forja::os::spawn_owned("test", move || {
        let _ = stop_rx.recv();
    })
    .unwrap();
    let err = stderr_of(run_child);
    assert!(!err.contains(WARNING), "{err}");
    stop_tx.send(()).unwrap();
    t.join().unwrap();
}

fn a_live_thread_gives_exactly_one_warning_for_two_forks() {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let _ = stop_rx.recv();
    });
    assert_eq!(forja::os::other_threads(), 1);
    let err = stderr_of(|| {
        run_child();
        run_child();
    });
    assert_eq!(err.matches(WARNING).count(), 1, "{err}");
    assert!(err.contains("1 other thread(s)"), "{err}");
    stop_tx.send(()).unwrap();
    t.join().unwrap();
}

fn a_pool_with_a_live_thread_warns_once_too() {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let _ = stop_rx.recv();
    });
    let err = stderr_of(|| {
        let pool = Pool::new(2).unwrap();
        let squares = pool.map(|x: u64| x * x, 0..4u64).unwrap();
        assert_eq!(squares, vec![0, 1, 4, 9]);
        run_child();
    });
    assert_eq!(err.matches(WARNING).count(), 1, "{err}");
    stop_tx.send(()).unwrap();
    t.join().unwrap();
}

fn the_environment_is_never_written() {
    let before: Vec<_> = std::env::vars_os().collect();
    let (rx, tx) = Pipe::one_way::<Vec<(String, String)>>().unwrap();
    let p = Process::new(move || {
        // The child's own registry, made and used.
        forja::registry::ensure().unwrap();
        let inner = Process::new(|| {});
        inner.start().unwrap();
        inner.join().unwrap();
        tx.send(&std::env::vars().collect()).unwrap();
    });
    p.start().unwrap();
    let in_child = rx.recv().unwrap();
    p.join().unwrap();
    forja::timeline::reset().unwrap();
    let after: Vec<_> = std::env::vars_os().collect();
    assert_eq!(before, after);
    let before: Vec<(String, String)> = before
        .into_iter()
        .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
        .collect();
    assert_eq!(before, in_child);
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    a_plain_program_that_starts_processes_gets_no_warning,
    forjas_own_threads_do_not_count,
    a_live_thread_gives_exactly_one_warning_for_two_forks,
    a_pool_with_a_live_thread_warns_once_too,
    the_environment_is_never_written,
}
