//! A forja child inside the kernel: it closes the runner's private fds, dies
//! with its parent, and sends its output to the kernel's socket labelled with
//! its pid and name. The test process plays the kernel (its pid goes in
//! `FORJA_KERNEL_PID`; it listens on the socket) and a forja `Process` plays
//! the runner. Run with `cargo nextest run -p forja` (one test per process).

mod common;

use common::{gone_or_zombie, proc_state, wait_for};
use forja::prelude::*;
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

fn is_open(fd: i32) -> bool {
    // Safety: fcntl only looks.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // Safety: pipe fills two fds.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

fn pretend_to_be_the_kernel() {
    // Safety: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("FORJA_KERNEL_PID", std::process::id().to_string()) };
}

/// The inode of what `fd` refers to (pipes have distinct ones).
fn inode(fd: i32) -> Option<u64> {
    // Safety: fstat into a zeroed struct we own.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st.st_ino)
    }
}

/// The inodes of every open fd of this process.
fn open_inodes() -> Vec<u64> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(inode)
        .collect()
}

fn children_of_the_runner_close_its_private_fds_and_only_they() {
    pretend_to_be_the_kernel();
    let (rx, tx) = Pipe::one_way::<Vec<bool>>().unwrap();
    let runner = Process::new(move || {
        // The runner's private fds (and some junk in the list).
        let (a, b) = pipe();
        let (c, d) = pipe();
        let private = [inode(a).unwrap(), inode(c).unwrap()];
        let list = format!("{a}, {b},junk,{c},,1,-3,{d}");
        // Safety: this process has one thread.
        unsafe { std::env::set_var("FORJA_RUNNER_FDS", list) };
        let tx2 = tx.try_clone().unwrap();
        let child = Process::new(move || {
            let open = open_inodes();
            let closed = private.iter().all(|i| !open.contains(i));
            let std_kept = [0, 1, 2].iter().all(|&fd| is_open(fd));
            // New fds here may reuse those numbers; a grandchild must keep
            // them (it is not a child of the runner).
            let (e, f) = pipe();
            let (g, h) = pipe();
            let mine = [e, f, g, h];
            let reused = mine.iter().any(|fd| [a, b, c, d].contains(fd));
            let mine_inodes = [inode(e).unwrap(), inode(g).unwrap()];
            let (grx, gtx) = Pipe::one_way::<bool>().unwrap();
            let grandchild = Process::new(move || {
                let open = open_inodes();
                gtx.send(&mine_inodes.iter().all(|i| open.contains(i)))
                    .unwrap();
            });
            grandchild.start().unwrap();
            let grandchild_kept = grx.recv().unwrap();
            grandchild.join().unwrap();
            tx2.send(&vec![closed, std_kept, reused, grandchild_kept])
                .unwrap();
        });
        child.start().unwrap();
        child.join().unwrap();
        // The runner itself keeps them.
        let open = open_inodes();
        tx.send(&vec![private.iter().all(|i| open.contains(i))])
            .unwrap();
    });
    runner.start().unwrap();
    let child_view = rx.recv().unwrap();
    let runner_view = rx.recv().unwrap();
    runner.join().unwrap();
    assert_eq!(runner.exitcode(), Some(0));
    assert!(child_view[0], "the child kept a runner fd");
    assert!(child_view[1], "the child lost a standard fd");
    assert!(child_view[2], "test setup: the numbers were not reused");
    assert!(child_view[3], "the grandchild closed its parent's fds");
    assert_eq!(runner_view, vec![true]);
}

/// Starts a "runner" that starts a child, which starts a grandchild; both
/// sleep forever. Returns the runner and the pids of child and grandchild.
fn runner_with_a_tree() -> (Process, i32, i32) {
    let (rx, tx) = Pipe::one_way::<(i32, i32)>().unwrap();
    let runner = Process::new(move || {
        let tx2 = tx.try_clone().unwrap();
        let child = Process::new(move || {
            let grandchild = Process::new(|| {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
            grandchild.start().unwrap();
            tx2.send(&(forja::current_process().pid(), grandchild.pid().unwrap()))
                .unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        child.start().unwrap();
        drop(tx);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .daemon(true);
    runner.start().unwrap();
    let (child, grandchild) = rx.recv().unwrap();
    (runner, child, grandchild)
}

fn killing_the_runner_kills_the_whole_tree_under_the_kernel() {
    // Control first: outside the kernel, non-daemon children outlive a
    // killed parent (so the check below can fail).
    let (runner, child, grandchild) = runner_with_a_tree();
    runner.kill().unwrap();
    runner.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !gone_or_zombie(child) && !gone_or_zombie(grandchild),
        "control: they died anyway"
    );
    // Safety: cleaning up the control's orphans.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::kill(grandchild, libc::SIGKILL);
    }

    pretend_to_be_the_kernel();
    let (runner, child, grandchild) = runner_with_a_tree();
    assert!(!gone_or_zombie(child) && !gone_or_zombie(grandchild));
    let t = Instant::now();
    runner.kill().unwrap();
    runner.join().unwrap();
    assert!(
        wait_for(
            || gone_or_zombie(child) && gone_or_zombie(grandchild),
            Duration::from_secs(10)
        ),
        "child {:?} or grandchild {:?} survived",
        proc_state(child),
        proc_state(grandchild)
    );
    eprintln!("tree gone {:?} after killing the runner", t.elapsed());
}

/// Reads every connection the listener gets until `count` are done; returns
/// (header line, rest) of each.
fn collect(listener: &UnixListener, count: usize) -> Vec<(serde_json::Value, String)> {
    listener.set_nonblocking(true).unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < end {
        match listener.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut all = String::new();
                s.read_to_string(&mut all).unwrap();
                let (header, rest) = all.split_once('\n').expect("a header line");
                out.push((serde_json::from_str(header).unwrap(), rest.to_owned()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    }
    out
}

fn child_output_goes_to_the_kernel_socket_with_a_header() {
    let dir = std::env::temp_dir().join(format!("forja-attach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kernel.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();

    let (rx, tx) = Pipe::one_way::<(i32, i32)>().unwrap();
    let path2 = path.clone();
    let runner = Process::new(move || {
        // Safety: this process has one thread.
        unsafe { std::env::set_var("FORJA_KERNEL_SOCKET", &path2) };
        let tx2 = tx.try_clone().unwrap();
        let printer = Process::new(move || {
            let nieto = Process::new(|| {
                println!("línea del nieto");
            })
            .with_name("nieto \"2\"");
            nieto.start().unwrap();
            nieto.join().unwrap();
            tx2.send(&(0, nieto.pid().unwrap())).unwrap();
            println!("hola desde printer");
            print!("sin salto");
            eprintln!("un error");
        })
        .with_name("printer");
        printer.start().unwrap();
        printer.join().unwrap();
        tx.send(&(printer.pid().unwrap(), 0)).unwrap();
    });
    runner.start().unwrap();
    let (_, nieto_pid) = rx.recv().unwrap();
    let (printer_pid, _) = rx.recv().unwrap();
    runner.join().unwrap();
    assert_eq!(runner.exitcode(), Some(0));

    let got = collect(&listener, 4);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got.len(), 4, "{got:?}");
    let find = |pid: i32, name: &str| {
        got.iter()
            .find(|(h, _)| h["pid"] == pid && h["name"] == name)
            .unwrap_or_else(|| panic!("no {name} connection from {pid}: {got:?}"))
    };
    for (h, _) in &got {
        assert_eq!(h["type"], "attach_output");
    }
    let (h, text) = find(printer_pid, "stdout");
    assert_eq!(h["process"], "printer");
    assert_eq!(text, "hola desde printer\nsin salto");
    let (h, text) = find(printer_pid, "stderr");
    assert_eq!(h["process"], "printer");
    assert_eq!(text, "un error\n");
    let (h, text) = find(nieto_pid, "stdout");
    assert_eq!(h["process"], "nieto \"2\"");
    assert_eq!(text, "línea del nieto\n");
    let (_, text) = find(nieto_pid, "stderr");
    assert_eq!(text, "");
}

fn without_a_reachable_socket_the_child_keeps_its_inherited_output() {
    let (rx, tx) = Pipe::one_way::<String>().unwrap();
    let runner = Process::new(move || {
        // Safety: this process has one thread.
        unsafe { std::env::set_var("FORJA_KERNEL_SOCKET", "/nonexistent/forja.sock") };
        let (r, w) = pipe();
        // Safety: fd 1 becomes our pipe.
        unsafe { libc::dup2(w, 1) };
        // Safety: closing our copy; fd 1 still writes to the pipe.
        unsafe { libc::close(w) };
        let child = Process::new(|| println!("por la tubería"));
        child.start().unwrap();
        child.join().unwrap();
        // Safety: closing the last writer so the read ends.
        unsafe { libc::close(1) };
        let mut text = String::new();
        // Safety: r is our fd; File takes it over.
        let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(r) };
        f.read_to_string(&mut text).unwrap();
        tx.send(&text).unwrap();
    });
    runner.start().unwrap();
    assert_eq!(rx.recv().unwrap(), "por la tubería\n");
    runner.join().unwrap();
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
common::tests! {
    children_of_the_runner_close_its_private_fds_and_only_they,
    killing_the_runner_kills_the_whole_tree_under_the_kernel,
    child_output_goes_to_the_kernel_socket_with_a_header,
    without_a_reachable_socket_the_child_keeps_its_inherited_output,
}
