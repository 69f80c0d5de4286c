//! Process behaviour with real forks. Run with `cargo nextest run -p forja`
//! (one test per process: forking from a threaded test harness is unsafe).

mod common;

use common::{gone_or_zombie, proc_state, wait_for};
use forja::prelude::*;
use std::time::{Duration, Instant};

fn sleeper(secs: u64) -> Process {
    Process::new(move || std::thread::sleep(Duration::from_secs(secs)))
}

fn exit_code_zero_after_normal_return() {
    let p = Process::new(|| {});
    assert_eq!(p.exitcode(), None);
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
}

fn panic_gives_exit_code_one_and_a_message_with_name_and_pid() {
    let (rx, tx) = Pipe::one_way::<()>().unwrap();
    let p = Process::new(move || {
        // Send this child's stderr into the pipe, then panic.
        use std::os::fd::AsRawFd;
        unsafe { libc::dup2(tx.as_raw_fd(), 2) };
        drop(tx);
        panic!("boom {}", 42);
    })
    .with_name("explota");
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(1));
    // Raw stderr text, no framing: read it straight from the fd.
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd};
    let fd = unsafe { libc::dup(rx.as_raw_fd()) };
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    drop(rx);
    let mut text = String::new();
    unsafe { std::fs::File::from_raw_fd(fd) }
        .read_to_string(&mut text)
        .unwrap();
    let pid = p.pid().unwrap();
    assert!(
        text.contains(&format!("panic in process explota (pid {pid})")),
        "stderr was: {text:?}"
    );
    assert!(text.contains("boom 42"), "stderr was: {text:?}");
}

fn forja_exit_sets_the_exit_code() {
    let p = Process::new(|| {
        forja::exit(3);
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(3));
}

fn kill_gives_minus_nine_and_terminate_minus_fifteen() {
    let k = sleeper(60);
    let t = sleeper(60);
    k.start().unwrap();
    t.start().unwrap();
    assert!(k.is_alive() && t.is_alive());
    assert_eq!(k.exitcode(), None);
    k.kill().unwrap();
    t.terminate().unwrap();
    k.join().unwrap();
    t.join().unwrap();
    assert_eq!(k.exitcode(), Some(-9));
    assert_eq!(t.exitcode(), Some(-15));
    // Signalling a finished process is a no-op, as in Python.
    k.kill().unwrap();
    t.terminate().unwrap();
}

fn finished_child_is_a_zombie_until_joined() {
    let p = Process::new(|| {});
    p.start().unwrap();
    let pid = p.pid().unwrap();
    assert!(
        wait_for(|| proc_state(pid) == Some('Z'), Duration::from_secs(10)),
        "state was {:?}",
        proc_state(pid)
    );
    p.join().unwrap();
    assert_eq!(proc_state(pid), None, "join must reap the zombie");
}

fn is_alive_reaps_a_finished_child() {
    let p = Process::new(|| {});
    p.start().unwrap();
    let pid = p.pid().unwrap();
    assert!(wait_for(|| !p.is_alive(), Duration::from_secs(10)));
    assert_eq!(proc_state(pid), None);
    assert_eq!(p.exitcode(), Some(0));
}

fn starting_twice_and_joining_unstarted_are_errors() {
    let p = Process::new(|| {});
    assert!(matches!(p.join(), Err(Error::ProcessNotStarted { .. })));
    assert!(matches!(
        p.join_timeout(Duration::ZERO),
        Err(Error::ProcessNotStarted { .. })
    ));
    assert!(matches!(
        p.terminate(),
        Err(Error::ProcessNotStarted { .. })
    ));
    assert!(matches!(p.kill(), Err(Error::ProcessNotStarted { .. })));
    assert!(!p.is_alive());
    assert_eq!(p.pid(), None);
    p.start().unwrap();
    let e = p.start().unwrap_err();
    assert!(matches!(e, Error::AlreadyStarted { .. }), "{e}");
    assert!(e.to_string().contains(p.name()));
    p.join().unwrap();
    assert!(matches!(p.start(), Err(Error::AlreadyStarted { .. })));
}

fn join_timeout_reports_whether_it_finished() {
    let p = sleeper(60);
    p.start().unwrap();
    assert!(!p.join_timeout(Duration::from_millis(50)).unwrap());
    assert!(p.is_alive());
    p.terminate().unwrap();
    assert!(p.join_timeout(Duration::from_secs(30)).unwrap());
    assert_eq!(p.exitcode(), Some(-15));
}

fn default_names_count_up_like_python() {
    let a = Process::new(|| {});
    let b = Process::new(|| {});
    let na: u64 = a.name().strip_prefix("Process-").unwrap().parse().unwrap();
    let nb: u64 = b.name().strip_prefix("Process-").unwrap().parse().unwrap();
    assert_eq!(nb, na + 1);
    assert_eq!(Process::new(|| {}).with_name("mine").name(), "mine");
}

fn child_knows_its_name_pid_and_parent() {
    let (rx, tx) = Pipe::one_way::<(String, i32, String, i32, String)>().unwrap();
    let p = Process::new(move || {
        let me = current_process();
        let parent = parent_process().unwrap();
        // A grandchild gets a hierarchical default name, as in Python.
        let grandchild_name = Process::new(|| {}).name().to_owned();
        tx.send(&(
            me.name().into(),
            me.pid(),
            parent.name().into(),
            parent.pid(),
            grandchild_name,
        ))
        .unwrap();
    })
    .with_name("hija");
    p.start().unwrap();
    let (name, pid, parent_name, parent_pid, grandchild) = rx.recv().unwrap();
    p.join().unwrap();
    assert_eq!(name, "hija");
    assert_eq!(Some(pid), p.pid());
    assert_eq!(parent_name, "MainProcess");
    assert_eq!(parent_pid, std::process::id() as i32);
    assert!(
        grandchild.starts_with("Process-") && grandchild.contains(':'),
        "{grandchild}"
    );
    assert_eq!(current_process().name(), "MainProcess");
    assert!(parent_process().is_none());
}

fn child_stdin_is_dev_null() {
    let (rx, tx) = Pipe::one_way::<(usize, String)>().unwrap();
    let p = Process::new(move || {
        use std::io::Read;
        let mut buf = Vec::new();
        let n = std::io::stdin().read_to_end(&mut buf).unwrap();
        let target = std::fs::read_link("/proc/self/fd/0").unwrap();
        tx.send(&(n, target.display().to_string())).unwrap();
    });
    p.start().unwrap();
    let (n, target) = rx.recv().unwrap();
    p.join().unwrap();
    assert_eq!(n, 0);
    assert_eq!(target, "/dev/null");
}

fn child_sees_a_copy_of_captured_data() {
    let (rx, tx) = Pipe::one_way::<u64>().unwrap();
    let data: Vec<u64> = (1..=100).collect();
    let p = Process::new(move || tx.send(&data.iter().sum()).unwrap());
    p.start().unwrap();
    assert_eq!(rx.recv().unwrap(), 5050);
    p.join().unwrap();
}

fn active_children_lists_running_ones_and_reaps_the_rest() {
    let quick = Process::new(|| {});
    let slow = sleeper(60);
    quick.start().unwrap();
    slow.start().unwrap();
    let qpid = quick.pid().unwrap();
    let spid = slow.pid().unwrap();
    assert!(wait_for(
        || !active_children().iter().any(|c| c.pid() == qpid),
        Duration::from_secs(10)
    ));
    // active_children reaped it; the handle still learns its exit code.
    assert_eq!(proc_state(qpid), None);
    assert_eq!(quick.exitcode(), Some(0));
    let kids = active_children();
    assert!(
        kids.iter()
            .any(|c| c.pid() == spid && c.name() == slow.name())
    );
    slow.kill().unwrap();
    slow.join().unwrap();
    assert!(!active_children().iter().any(|c| c.pid() == spid));
}

fn drop_never_blocks_and_a_dropped_child_is_reaped_later() {
    let p = sleeper(60);
    p.start().unwrap();
    let pid = p.pid().unwrap();
    let t = Instant::now();
    drop(p);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(active_children().iter().any(|c| c.pid() == pid));
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_for(
        || !active_children().iter().any(|c| c.pid() == pid) && proc_state(pid).is_none(),
        Duration::from_secs(10)
    ));
}

fn fork_cap_gives_a_clear_error() {
    forja::registry::set_max_children(3).unwrap();
    let procs: Vec<Process> = (0..3).map(|_| sleeper(60)).collect();
    for p in &procs {
        p.start().unwrap();
    }
    let extra = sleeper(60);
    let e = extra.start().unwrap_err();
    assert!(matches!(e, Error::TooManyChildren { limit: 3, .. }), "{e}");
    assert!(e.to_string().contains("FORJA_MAX_CHILDREN"), "{e}");
    // The closure is kept: once a slot frees up, start works.
    procs[0].kill().unwrap();
    procs[0].join().unwrap();
    extra.start().unwrap();
    for p in procs.iter().skip(1).chain([&extra]) {
        p.kill().unwrap();
        p.join().unwrap();
    }
}

fn a_fork_bomb_stops_at_the_cap() {
    forja::registry::set_max_children(16).unwrap();
    let mut started = Vec::new();
    let err = loop {
        let p = sleeper(60);
        match p.start() {
            Ok(()) => started.push(p),
            Err(e) => break e,
        }
        assert!(started.len() <= 16, "the cap did not hold");
    };
    assert_eq!(started.len(), 16);
    assert!(matches!(err, Error::TooManyChildren { .. }));
    for p in &started {
        p.kill().unwrap();
    }
    for p in &started {
        p.join().unwrap();
    }
}

fn daemon_is_terminated_when_its_parent_exits() {
    // The middle process starts a daemon and a non-daemon, reports both pids
    // and returns. As in Python (issue 15), before it ends it terminates the
    // daemon and waits for the non-daemon.
    let (rx, tx) = Pipe::one_way::<(i32, i32)>().unwrap();
    let middle = Process::new(move || {
        let d = Process::new(|| std::thread::sleep(Duration::from_secs(60))).daemon(true);
        let n = Process::new(|| std::thread::sleep(Duration::from_millis(300)));
        d.start().unwrap();
        n.start().unwrap();
        tx.send(&(d.pid().unwrap(), n.pid().unwrap())).unwrap();
    });
    let started = Instant::now();
    middle.start().unwrap();
    let (daemon, normal) = rx.recv().unwrap();
    middle.join().unwrap();
    assert_eq!(middle.exitcode(), Some(0));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the middle process ended before its non-daemon child"
    );
    assert!(gone_or_zombie(normal), "the non-daemon was joined");
    assert!(
        wait_for(|| gone_or_zombie(daemon), Duration::from_secs(10)),
        "daemon {daemon} still running: {:?}",
        proc_state(daemon)
    );
}

fn daemon_is_terminated_even_when_its_parent_is_killed() {
    let (rx, tx) = Pipe::one_way::<i32>().unwrap();
    let middle = Process::new(move || {
        let d = Process::new(|| std::thread::sleep(Duration::from_secs(60))).daemon(true);
        d.start().unwrap();
        tx.send(&d.pid().unwrap()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    middle.start().unwrap();
    let daemon = rx.recv().unwrap();
    middle.kill().unwrap();
    middle.join().unwrap();
    assert!(wait_for(|| gone_or_zombie(daemon), Duration::from_secs(10)));
}

fn interrupt_stops_a_blocked_join() {
    let p = sleeper(60);
    p.start().unwrap();
    let t = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        forja::registry::request_interrupt().unwrap();
    });
    let start = Instant::now();
    let e = p.join().unwrap_err();
    assert!(matches!(e, Error::Interrupted { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(10));
    t.join().unwrap();
    // Every call fails while the flag is up.
    assert!(matches!(
        Process::new(|| {}).start(),
        Err(Error::Interrupted { .. })
    ));
    forja::registry::clear_interrupt().unwrap();
    p.kill().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-9));
}

fn processes_can_be_kept_in_a_vec_and_used_by_reference() {
    let procs: Vec<Process> = (0..4)
        .map(|i| Process::new(move || forja::exit(i)))
        .collect();
    for p in &procs {
        p.start().unwrap();
    }
    for p in &procs {
        p.join().unwrap();
    }
    let codes: Vec<_> = procs.iter().map(|p| p.exitcode().unwrap()).collect();
    assert_eq!(codes, vec![0, 1, 2, 3]);
}

fn display_reads_like_python() {
    let p = Process::new(|| {}).with_name("w").daemon(true);
    assert_eq!(p.to_string(), "<Process name='w' initial daemon>");
    p.start().unwrap();
    p.join().unwrap();
    let pid = p.pid().unwrap();
    assert_eq!(
        p.to_string(),
        format!("<Process name='w' pid={pid} exitcode=0 daemon>")
    );
}

fn cpu_count_is_positive() {
    assert!(cpu_count() >= 1);
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
common::tests! {
    exit_code_zero_after_normal_return,
    panic_gives_exit_code_one_and_a_message_with_name_and_pid,
    forja_exit_sets_the_exit_code,
    kill_gives_minus_nine_and_terminate_minus_fifteen,
    finished_child_is_a_zombie_until_joined,
    is_alive_reaps_a_finished_child,
    starting_twice_and_joining_unstarted_are_errors,
    join_timeout_reports_whether_it_finished,
    default_names_count_up_like_python,
    child_knows_its_name_pid_and_parent,
    child_stdin_is_dev_null,
    child_sees_a_copy_of_captured_data,
    active_children_lists_running_ones_and_reaps_the_rest,
    drop_never_blocks_and_a_dropped_child_is_reaped_later,
    fork_cap_gives_a_clear_error,
    a_fork_bomb_stops_at_the_cap,
    daemon_is_terminated_when_its_parent_exits,
    daemon_is_terminated_even_when_its_parent_is_killed,
    interrupt_stops_a_blocked_join,
    processes_can_be_kept_in_a_vec_and_used_by_reference,
    display_reads_like_python,
    cpu_count_is_positive,
}
