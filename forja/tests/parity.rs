//! Where forja follows Python's `multiprocessing` semantics that students
//! rely on (issue 15): Barrier reset and action, one timeout convention,
//! semaphores without a guard, `Queue::close`, CPU counts, what happens to
//! children at exit, and the codec's limits. Fork-heavy: each test runs in a
//! process of its own (common/harness.rs).

use forja::prelude::*;
use std::time::Duration;

/// Starts a child running `f`.
fn spawn(f: impl FnOnce() + Send + 'static) -> Process {
    let p = Process::new(f);
    p.start().expect("start a child");
    p
}

/// Joins every child and checks it exited with code 0.
fn join_all_ok(children: Vec<Process>) {
    for p in children {
        p.join().expect("join a child");
        assert_eq!(p.exitcode(), Some(0), "child {} failed", p.name());
    }
}

fn wait_until_waiting(barrier: &Barrier, n: u32) {
    while barrier.n_waiting() < n {
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---- 1. Barrier ----

fn barrier_reset_breaks_the_current_waiters() {
    let barrier = Barrier::new(3).unwrap();
    let children: Vec<Process> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            spawn(move || {
                let r = b.wait();
                assert!(matches!(r, Err(Error::BrokenBarrier { .. })), "{r:?}");
            })
        })
        .collect();
    wait_until_waiting(&barrier, 2);
    barrier.reset().unwrap();
    join_all_ok(children);
    // Usable again at once, for a full round.
    assert!(!barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
    let children: Vec<Process> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            spawn(move || {
                b.wait().unwrap();
            })
        })
        .collect();
    barrier.wait().unwrap();
    join_all_ok(children);
}

fn barrier_action_runs_once_per_round_in_one_waiter() {
    const PARTIES: u32 = 3;
    const ROUNDS: u32 = 5;
    let runs = Value::<u32>::new(0).unwrap();
    let seen = Array::<u32>::zeroed(ROUNDS as usize).unwrap();
    let r = runs.clone();
    let barrier = Barrier::with_action(PARTIES, move || *r.get_lock().unwrap() += 1).unwrap();
    let children: Vec<Process> = (0..PARTIES)
        .map(|_| {
            let (b, runs, seen) = (barrier.clone(), runs.clone(), seen.clone());
            spawn(move || {
                for round in 0..ROUNDS {
                    b.wait().unwrap();
                    // Every waiter is released after the action ran.
                    let now = runs.load().unwrap();
                    assert_eq!(now, 2 * round + 1);
                    seen.get_lock().unwrap()[round as usize] += 1;
                    b.wait().unwrap(); // a second round between checks
                }
            })
        })
        .collect();
    join_all_ok(children);
    assert_eq!(runs.load().unwrap(), 2 * ROUNDS);
    assert!(seen.get_lock().unwrap().iter().all(|&n| n == PARTIES));
}

fn barrier_panicking_action_breaks_it() {
    let barrier = Barrier::with_action(2, || panic!("the action failed")).unwrap();
    let b = barrier.clone();
    let other = spawn(move || {
        let r = b.wait();
        assert!(matches!(r, Err(Error::BrokenBarrier { .. })), "{r:?}");
    });
    wait_until_waiting(&barrier, 1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| barrier.wait()));
    assert!(
        r.is_err(),
        "the panic reaches the waiter that ran the action"
    );
    assert!(barrier.broken());
    join_all_ok(vec![other]);
}

// ---- 2. Timeouts ----

/// Every `*_timeout` takes any `Duration`: `Duration::MAX` means "no
/// deadline" instead of an overflow panic. Waits that return nothing give
/// `Ok(bool)`; calls that return a value give it (or an `Err` on timeout).
fn every_timeout_accepts_duration_max() {
    let max = Duration::MAX;
    let p = spawn(|| {});
    assert!(p.join_timeout(max).unwrap());

    let q: Queue<u8> = Queue::new().unwrap();
    q.put_timeout(&1, max).unwrap();
    assert_eq!(q.get_timeout(max).unwrap(), 1);
    let jq: JoinableQueue<u8> = JoinableQueue::new().unwrap();
    jq.put_timeout(&2, max).unwrap();
    assert_eq!(jq.get_timeout(max).unwrap(), 2);
    jq.task_done().unwrap();
    assert!(jq.join_timeout(max).unwrap());

    let (a, b) = Pipe::new::<u8>().unwrap();
    a.send(&3).unwrap();
    assert!(b.poll(max).unwrap());
    assert_eq!(b.recv_timeout(max).unwrap(), 3);
    let (rx, tx) = Pipe::one_way::<u8>().unwrap();
    tx.send(&4).unwrap();
    assert_eq!(rx.recv_timeout(max).unwrap(), 4);

    drop(Lock::new().unwrap().acquire_timeout(max).unwrap());
    drop(RLock::new().unwrap().acquire_timeout(max).unwrap());
    drop(Semaphore::new(1).unwrap().acquire_timeout(max).unwrap());
    drop(
        BoundedSemaphore::new(1)
            .unwrap()
            .acquire_timeout(max)
            .unwrap(),
    );
    let cond = Condition::new().unwrap();
    let mut g = cond.acquire_timeout(max).unwrap();
    assert!(g.wait_for_timeout(|| true, max).unwrap());
    drop(g);
    let ev = Event::new().unwrap();
    ev.set();
    assert!(ev.wait_timeout(max).unwrap());
    assert_eq!(Barrier::new(1).unwrap().wait_timeout(max).unwrap(), 0);
    let v = Value::<u8>::new(5).unwrap();
    assert_eq!(*v.get_lock_timeout(max).unwrap(), 5);
    let arr = Array::<u8>::zeroed(2).unwrap();
    assert_eq!(arr.get_lock_timeout(max).unwrap().len(), 2);

    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(|x: u8| x + 1, 1).unwrap();
    assert!(r.wait(max).unwrap());
    assert_eq!(r.get_timeout(max).unwrap(), 2);
}

/// The two shapes of the convention, side by side.
fn waits_give_a_bool_and_values_an_error() {
    let short = Duration::from_millis(5);
    // Waits that return nothing: Ok(false) at the deadline.
    let jq: JoinableQueue<u8> = JoinableQueue::new().unwrap();
    jq.put(&1).unwrap();
    assert!(!jq.join_timeout(short).unwrap());
    assert!(!Event::new().unwrap().wait_timeout(short).unwrap());
    let p = spawn(|| std::thread::sleep(Duration::from_secs(5)));
    assert!(!p.join_timeout(short).unwrap());
    p.kill().unwrap();
    p.join().unwrap();
    // Calls that return a value: an Err at the deadline.
    let (a, _b) = Pipe::new::<u8>().unwrap();
    assert!(matches!(a.recv_timeout(short), Err(Error::Timeout { .. })));
    let sem = Semaphore::new(0).unwrap();
    assert!(matches!(
        sem.acquire_timeout(short),
        Err(Error::Timeout { .. })
    ));
    let q: Queue<u8> = Queue::new().unwrap();
    assert!(matches!(q.get_timeout(short), Err(Error::Empty { .. })));
}

// ---- 3. Semaphore ----

fn semaphore_without_guard_for_producer_and_consumer() {
    let items = Semaphore::new(0).unwrap();
    let sem = items.clone();
    let consumer = spawn(move || {
        for _ in 0..3 {
            sem.acquire_no_guard().unwrap();
        }
    });
    for _ in 0..3 {
        items.release().unwrap();
    }
    join_all_ok(vec![consumer]);
    assert_eq!(items.value(), 0, "the consumer kept the units it took");
    let bounded = BoundedSemaphore::new(1).unwrap();
    bounded.acquire_no_guard().unwrap();
    assert_eq!(bounded.value(), 0);
    bounded.release().unwrap();
    assert!(bounded.release().is_err());
}

fn semaphore_guard_gives_the_unit_back_on_drop() {
    let sem = Semaphore::new(1).unwrap();
    {
        let _unit = sem.acquire().unwrap();
        assert_eq!(sem.value(), 0);
    }
    assert_eq!(sem.value(), 1);
}

// ---- 4. Queue::close ----

fn queue_close_stops_this_process_puts_only() {
    let q: Queue<u8> = Queue::new().unwrap();
    q.put(&1).unwrap();
    q.close();
    assert!(q.is_closed());
    assert!(
        q.clone().is_closed(),
        "clones in this process share the close"
    );
    assert!(matches!(q.put(&2), Err(Error::QueueClosed { .. })));
    assert!(matches!(q.try_put(&2), Err(Error::QueueClosed { .. })));
    // A child forked after the close has an open handle (Python resets
    // `_closed` after a fork), and its puts reach this process.
    let q2 = q.clone();
    let child = spawn(move || {
        assert!(!q2.is_closed());
        q2.put(&3).unwrap();
        q2.close();
        assert!(q2.put(&4).is_err());
    });
    join_all_ok(vec![child]);
    // get keeps working in the closing process (see Queue::close).
    let mut got = vec![q.get().unwrap(), q.get().unwrap()];
    got.sort();
    assert_eq!(got, vec![1, 3]);
    assert!(q.try_get().is_err());
}

fn closing_in_a_child_does_not_close_the_parent() {
    let q: JoinableQueue<u8> = JoinableQueue::new().unwrap();
    let q2 = q.clone();
    join_all_ok(vec![spawn(move || q2.close())]);
    assert!(!q.is_closed());
    q.put(&7).unwrap();
    assert_eq!(q.get().unwrap(), 7);
    q.task_done().unwrap();
    let sq: SimpleQueue<u8> = SimpleQueue::new().unwrap();
    sq.close();
    assert!(sq.put(&1).is_err());
}

// ---- 5. CPU counts ----

fn process_cpu_count_follows_the_affinity_mask() {
    let all = cpu_count();
    assert!(all >= 1);
    assert!(process_cpu_count() <= all);
    let child = spawn(move || {
        // SAFETY: a zeroed cpu_set_t is empty; CPU 0 is set in it, then
        // this process (pid 0) is pinned to it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set),
                0
            );
        }
        assert_eq!(process_cpu_count(), 1);
        assert_eq!(cpu_count(), all, "cpu_count counts every CPU");
        // A pool's default size follows it.
        assert_eq!(Pool::with_cpus().unwrap().size(), 1);
    });
    join_all_ok(vec![child]);
}

// ---- 6. Exit and daemons ----

/// Where the helper programs below write their children's pids.
const PIDS_FILE: &str = "FORJA_PARITY_PIDS_FILE";

/// Not a test: run by [`run_helper`] as a program of its own. Its main
/// process starts a daemon (60 s) and a non-daemon (300 ms), writes their
/// pids and returns, so the program exits normally.
fn helper_main_returns_with_children() {
    let daemon = Process::new(|| std::thread::sleep(Duration::from_secs(60))).daemon(true);
    let normal = Process::new(|| std::thread::sleep(Duration::from_millis(300)));
    daemon.start().unwrap();
    normal.start().unwrap();
    let path = std::env::var(PIDS_FILE).unwrap();
    let pids = format!("{} {}", daemon.pid().unwrap(), normal.pid().unwrap());
    std::fs::write(path, pids).unwrap();
    // Dropping the handles does not wait; the program's exit does.
}

/// Runs `helper` in a fresh process of this test binary (with `env`), and
/// returns how long it took and the (daemon, non-daemon) pids it wrote.
fn run_helper(helper: &str, env: &[(&str, String)]) -> (Duration, i32, i32) {
    let file = std::env::temp_dir().join(format!("forja-parity-{}", std::process::id()));
    let started = std::time::Instant::now();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([helper, "--exact", "--include-ignored", "--test-threads=1"])
        .env("FORJA_TEST_ONE_PROCESS", "1")
        .env(PIDS_FILE, &file)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{helper}: {status}");
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    let mut pids = text.split_whitespace().map(|p| p.parse::<i32>().unwrap());
    (took, pids.next().unwrap(), pids.next().unwrap())
}

fn gone(pid: i32) -> bool {
    common::wait_for(|| common::gone_or_zombie(pid), Duration::from_secs(10))
}

fn a_program_that_exits_joins_children_and_terminates_daemons() {
    let (took, daemon, normal) = run_helper("helper_main_returns_with_children", &[]);
    assert!(
        took >= Duration::from_millis(300),
        "exit did not wait: {took:?}"
    );
    assert!(
        took < Duration::from_secs(30),
        "the daemon was not terminated"
    );
    assert!(common::gone_or_zombie(normal), "the non-daemon was joined");
    assert!(gone(daemon), "the daemon was terminated");
}

fn under_the_kernel_children_die_with_the_program() {
    // FORJA_KERNEL_PID marks "under the kernel"; any live pid will do here.
    let me = std::process::id().to_string();
    let (took, daemon, normal) = run_helper(
        "helper_main_returns_with_children",
        &[("FORJA_KERNEL_PID", me)],
    );
    assert!(took < Duration::from_secs(30));
    assert!(
        gone(normal),
        "the kernel's death signal killed the non-daemon"
    );
    assert!(gone(daemon));
}

fn a_child_that_returns_joins_its_own_children() {
    let (rx, tx) = Pipe::one_way::<i32>().unwrap();
    let middle = spawn(move || {
        let n = Process::new(|| std::thread::sleep(Duration::from_millis(300)));
        n.start().unwrap();
        tx.send(&n.pid().unwrap()).unwrap();
    });
    let started = std::time::Instant::now();
    let grandchild = rx.recv().unwrap();
    join_all_ok(vec![middle]);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(common::gone_or_zombie(grandchild));
}

fn a_killed_parent_leaves_its_non_daemon_running() {
    let (rx, tx) = Pipe::one_way::<(i32, i32)>().unwrap();
    let middle = spawn(move || {
        let d = Process::new(|| std::thread::sleep(Duration::from_secs(60))).daemon(true);
        let n = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
        d.start().unwrap();
        n.start().unwrap();
        tx.send(&(d.pid().unwrap(), n.pid().unwrap())).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    let (daemon, normal) = rx.recv().unwrap();
    middle.kill().unwrap();
    middle.join().unwrap();
    assert!(
        gone(daemon),
        "a daemon dies with its parent (PR_SET_PDEATHSIG)"
    );
    assert!(
        !common::gone_or_zombie(normal),
        "a non-daemon outlives a killed parent"
    );
    // SAFETY: signalling the orphan this test made.
    unsafe { libc::kill(normal, libc::SIGKILL) };
}

// ---- 7. The codec ----

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
#[serde(untagged)]
enum Untagged {
    Number(u32),
    Text(String),
}

fn unsupported_serde_features_are_named_in_the_error() {
    let (a, b) = Pipe::new::<Untagged>().unwrap();
    a.send(&Untagged::Number(1)).unwrap();
    let e = b.recv().unwrap_err();
    assert!(matches!(e, Error::Message { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("untagged") && text.contains("flatten"),
        "{text}"
    );
    // A plain type mismatch says so.
    let (a, b) = Pipe::new::<String>().unwrap();
    a.send_bytes(&[200]).unwrap();
    let text = b.recv().unwrap_err().to_string();
    assert!(text.contains("same message type"), "{text}");
}

fn a_peer_naming_a_huge_frame_gets_an_error() {
    use std::os::fd::AsRawFd;
    let (a, b) = Pipe::new::<Vec<u8>>().unwrap();
    // A bad peer: a header claiming 2^62 bytes, written raw.
    let header = (1u64 << 62).to_le_bytes();
    // SAFETY: writing 8 bytes from a live array to an open socket.
    let n = unsafe { libc::write(a.as_raw_fd(), header.as_ptr().cast(), header.len()) };
    assert_eq!(n, 8);
    let r = b.recv();
    assert!(matches!(r, Err(Error::MessageTooLarge { .. })), "{r:?}");
    // Limits are checked when set.
    let (a, b) = Pipe::new::<Vec<u8>>().unwrap();
    assert!(matches!(
        b.with_max_message_bytes(0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(a.with_max_message_bytes(u64::MAX).is_err());
    let (rx, tx) = Pipe::one_way::<Vec<u8>>().unwrap();
    let rx = rx.with_max_message_bytes(1 << 20).unwrap();
    tx.send(&vec![1; 1000]).unwrap();
    assert_eq!(rx.recv().unwrap().len(), 1000);
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    barrier_reset_breaks_the_current_waiters,
    barrier_action_runs_once_per_round_in_one_waiter,
    barrier_panicking_action_breaks_it,
    every_timeout_accepts_duration_max,
    waits_give_a_bool_and_values_an_error,
    semaphore_without_guard_for_producer_and_consumer,
    semaphore_guard_gives_the_unit_back_on_drop,
    queue_close_stops_this_process_puts_only,
    closing_in_a_child_does_not_close_the_parent,
    process_cpu_count_follows_the_affinity_mask,
    #[ignore] helper_main_returns_with_children,
    a_program_that_exits_joins_children_and_terminates_daemons,
    under_the_kernel_children_die_with_the_program,
    a_child_that_returns_joins_its_own_children,
    a_killed_parent_leaves_its_non_daemon_running,
    unsupported_serde_features_are_named_in_the_error,
    a_peer_naming_a_huge_frame_gets_an_error,
}
