//! The interrupt flag seen from another process (`registry::Remote`, as the
//! kernel uses it), `registry::ensure`, `forja::sleep`, "every call fails once
//! interrupted", and the cap on live children. Run with
//! `cargo nextest run -p forja` (one test per process).

mod common;

use common::{proc_state, wait_for};
use forja::prelude::*;
use forja::registry::{self, ChildState, Remote};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn is_interrupted<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::Interrupted { .. }))
}

fn fd_inode(fd: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// What the "runner" process reports back to the test, as plain numbers.
type Report = (String, u64);

fn remote_interrupt_stops_blocked_calls_in_another_process() {
    // The "runner": publishes its registry, then blocks in join() on a child
    // that never ends, then (after the test clears the flag) in Queue::get.
    let (test_end, runner_end) = Pipe::new::<(i32, i32, i32)>().unwrap();
    let (report_rx, report_tx) = Pipe::one_way::<Report>().unwrap();
    let runner = Process::new(move || {
        let (pid, fd) = registry::ensure().unwrap();
        let child = Process::new(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .with_name("forever")
        .daemon(true);
        child.start().unwrap();
        runner_end.send(&(pid, fd, child.pid().unwrap())).unwrap();
        let t = Instant::now();
        let r = child.join();
        let ms = t.elapsed().as_millis() as u64;
        report_tx
            .send(&(format!("join:{}", is_interrupted(r)), ms))
            .unwrap();
        // Once interrupted, everything fails at once, even what would not wait.
        let q = Queue::<u8>::new().unwrap();
        let fails = [
            is_interrupted(Process::new(|| {}).start()),
            is_interrupted(child.join()),
            is_interrupted(q.put(&1)),
            is_interrupted(q.try_get()),
            is_interrupted(forja::sleep(Duration::ZERO)),
        ];
        report_tx
            .send(&(format!("all:{}", fails.iter().all(|&f| f)), 0))
            .unwrap();
        // The test lowers the flag, then raises it again while we wait in
        // get() (forja calls fail until the flag is lowered).
        while registry::interrupted() {
            std::thread::sleep(Duration::from_millis(5));
        }
        runner_end.recv().unwrap();
        let t = Instant::now();
        let r = Queue::<u8>::new().unwrap().get();
        let ms = t.elapsed().as_millis() as u64;
        report_tx
            .send(&(format!("get:{}", is_interrupted(r)), ms))
            .unwrap();
    })
    .with_name("runner");
    registry::set_cell(0).unwrap();
    runner.start().unwrap();

    let (pid, fd, child_pid) = test_end.recv().unwrap();
    assert_eq!(Some(pid), runner.pid());
    let remote = Remote::open(pid, fd).unwrap();
    assert_eq!(remote.owner_pid(), pid);
    assert!(!remote.interrupted());
    let kids = remote.children();
    assert_eq!(kids.len(), 1, "{kids:?}");
    assert_eq!(kids[0].process.pid(), child_pid);
    assert_eq!(kids[0].process.name(), "forever");
    assert_eq!(kids[0].state, ChildState::Running);

    // Give the runner time to block in join().
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    remote.request_interrupt().unwrap();
    let (what, runner_ms) = report_rx.recv().unwrap();
    let seen_ms = t.elapsed().as_millis();
    assert_eq!(what, "join:true");
    eprintln!("join interrupted after {seen_ms} ms (runner blocked {runner_ms} ms)");
    assert!(
        seen_ms < 2000,
        "join took {seen_ms} ms to notice the interrupt"
    );
    let (what, _) = report_rx.recv().unwrap();
    assert_eq!(what, "all:true");

    // The kernel's clean-up: signal the cell's children through the registry.
    assert!(remote.signal(child_pid, libc::SIGKILL).unwrap());
    assert!(wait_for(
        || remote
            .children()
            .iter()
            .any(|c| c.process.pid() == child_pid && c.state == ChildState::Exited),
        Duration::from_secs(5)
    ));
    assert!(!remote.signal(12345678, libc::SIGKILL).unwrap()); // not a child

    // Second round: clear, let it block in get(), raise again.
    remote.clear_interrupt().unwrap();
    remote.set_cell(7).unwrap();
    test_end.send(&(0, 0, 0)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    remote.request_interrupt().unwrap();
    let (what, _) = report_rx.recv().unwrap();
    let seen_ms = t.elapsed().as_millis();
    assert_eq!(what, "get:true");
    eprintln!("Queue::get interrupted after {seen_ms} ms");
    assert!(
        seen_ms < 2000,
        "get took {seen_ms} ms to notice the interrupt"
    );
    assert_eq!(remote.cell().unwrap(), 7);
    runner.join().unwrap();
    assert_eq!(runner.exitcode(), Some(0));
}

fn remote_refuses_what_is_not_a_registry() {
    let me = std::process::id() as i32;
    let f = std::fs::File::open("/proc/self/stat").unwrap();
    let e = Remote::open(me, f.as_raw_fd()).unwrap_err();
    assert!(matches!(e, Error::Registry { .. }), "{e}");
    assert!(Remote::open(me, 987_654).is_err());
    // The right fd but the wrong pid.
    let (pid, fd) = registry::ensure().unwrap();
    let p = Process::new(|| std::thread::sleep(Duration::from_secs(30))).daemon(true);
    p.start().unwrap();
    // The child closed its copy of our registry fd (or reused the number for
    // its own registry): either way it is not ours.
    let e = Remote::open(p.pid().unwrap(), fd);
    assert!(e.is_err() || e.unwrap().owner_pid() == p.pid().unwrap());
    assert!(Remote::open(pid, fd).is_ok());
    p.kill().unwrap();
    p.join().unwrap();
}

fn ensure_publishes_a_close_on_exec_registry_that_children_do_not_keep() {
    let (pid, fd) = registry::ensure().unwrap();
    assert_eq!(pid, std::process::id() as i32);
    assert_eq!(registry::ensure().unwrap(), (pid, fd));
    // Safety: fcntl on an fd of ours.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0 && flags & libc::FD_CLOEXEC != 0, "{flags}");
    // Published by the memfd's name, never in the environment.
    #[allow(deprecated)]
    let env = registry::ENV;
    assert!(std::env::var_os(env).is_none());
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    assert!(
        link.to_string_lossy()
            .starts_with(&format!("/memfd:forja-registry:{pid}")),
        "{link:?}"
    );
    let ours = fd_inode(fd).unwrap();

    // A child has its own registry and none of its fds is ours.
    let (rx, tx) = Pipe::one_way::<(i32, i32, bool)>().unwrap();
    let p = Process::new(move || {
        let (cpid, cfd) = registry::ensure().unwrap();
        let mut keeps_parents = false;
        for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
            let n: i32 = entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            if fd_inode(n) == Some(ours) {
                keeps_parents = true;
            }
        }
        tx.send(&(cpid, cfd, keeps_parents)).unwrap();
    });
    p.start().unwrap();
    let (cpid, cfd, keeps_parents) = rx.recv().unwrap();
    p.join().unwrap();
    assert_eq!(Some(cpid), p.pid());
    assert!(cfd > 2);
    assert!(!keeps_parents, "the child kept its parent's registry memfd");
}

fn sleep_sleeps_and_is_cut_short_by_an_interrupt() {
    let t = Instant::now();
    forja::sleep(Duration::from_millis(150)).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));

    let raiser = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(200));
        registry::request_interrupt().unwrap();
        Instant::now()
    });
    let r = forja::sleep(Duration::from_secs(60));
    let woke = Instant::now();
    let raised = raiser.join().unwrap();
    assert!(is_interrupted(r));
    let lag = woke.saturating_duration_since(raised);
    eprintln!("forja::sleep noticed the interrupt after {lag:?}");
    assert!(lag < Duration::from_secs(2), "{lag:?}");
    // The message speaks to a student.
    let msg = forja::sleep(Duration::ZERO).unwrap_err().to_string();
    assert!(
        msg.starts_with("interrupted by the kernel: the cell was stopped"),
        "{msg}"
    );
    registry::clear_interrupt().unwrap();
    forja::sleep(Duration::ZERO).unwrap();
}

fn square(x: u32) -> u32 {
    x * x
}

fn every_call_fails_at_once_after_an_interrupt_and_drops_do_not_block() {
    // Everything is ready: none of these calls would have to wait.
    let q = Queue::<u32>::new().unwrap();
    q.put(&1).unwrap();
    let jq = JoinableQueue::<u32>::new().unwrap();
    let sq = SimpleQueue::<u32>::new().unwrap();
    sq.put(&1).unwrap();
    let lock = Lock::new().unwrap();
    let rlock = RLock::new().unwrap();
    let sem = Semaphore::new(5).unwrap();
    let ev = Event::new().unwrap();
    ev.set();
    let barrier = Barrier::new(1).unwrap();
    let cond = Condition::new().unwrap();
    let value = Value::new(5u64).unwrap();
    let array = Array::from_slice(&[1u8, 2]).unwrap();
    let (a, b) = Pipe::new::<u32>().unwrap();
    b.send(&1).unwrap();
    let (rx, tx) = Pipe::one_way::<u32>().unwrap();
    tx.send(&1).unwrap();
    let pool = Pool::new(2).unwrap();
    let ready = pool.apply_async(square, 3).unwrap();
    assert_eq!(ready.get().unwrap(), 9);
    let done = Process::new(|| {});
    done.start().unwrap();
    done.join().unwrap();
    let running = Process::new(|| std::thread::sleep(Duration::from_secs(30))).daemon(true);
    running.start().unwrap();

    registry::request_interrupt().unwrap();
    let t = Instant::now();
    assert!(is_interrupted(q.get()));
    assert!(is_interrupted(q.try_get()));
    assert!(is_interrupted(q.put(&2)));
    assert!(is_interrupted(q.get_timeout(Duration::from_secs(5))));
    assert!(is_interrupted(jq.put(&1)));
    assert!(is_interrupted(jq.join()));
    assert!(is_interrupted(sq.get()));
    assert!(is_interrupted(lock.acquire()));
    assert!(is_interrupted(lock.acquire_timeout(Duration::from_secs(5))));
    assert!(is_interrupted(rlock.acquire()));
    assert!(is_interrupted(sem.acquire()));
    assert!(is_interrupted(ev.wait()));
    assert!(is_interrupted(ev.wait_timeout(Duration::from_secs(5))));
    assert!(is_interrupted(barrier.wait()));
    assert!(is_interrupted(cond.acquire()));
    assert!(is_interrupted(value.load()));
    assert!(is_interrupted(value.get_lock()));
    assert!(is_interrupted(array.to_vec()));
    assert!(is_interrupted(a.recv()));
    assert!(is_interrupted(a.poll(Duration::ZERO)));
    assert!(is_interrupted(rx.recv()));
    assert!(is_interrupted(pool.map(square, vec![1, 2])));
    assert!(is_interrupted(pool.apply(square, 2)));
    assert!(is_interrupted(pool.apply_async(square, 2)));
    assert!(is_interrupted(ready.get()));
    assert!(is_interrupted(Pool::new(1)));
    assert!(is_interrupted(done.join()));
    assert!(is_interrupted(running.join()));
    assert!(is_interrupted(running.join_timeout(Duration::from_secs(5))));
    assert!(is_interrupted(Process::new(|| {}).start()));
    assert!(is_interrupted(forja::sleep(Duration::from_secs(5))));
    let calls = t.elapsed();
    eprintln!("31 calls after the interrupt took {calls:?}");
    assert!(calls < Duration::from_secs(2), "{calls:?}");

    // Dropping every handle after the interrupt is quick (the pool's workers
    // are killed without a grace period).
    let pool_pids = pool.worker_pids();
    let t = Instant::now();
    drop((q, jq, sq, lock, rlock, sem, ev, barrier, cond, value, array));
    drop((a, b, rx, tx, ready, pool, done, running));
    let drops = t.elapsed();
    eprintln!("dropping the handles took {drops:?}");
    assert!(drops < Duration::from_secs(2), "{drops:?}");
    for pid in pool_pids {
        assert!(matches!(proc_state(pid), None | Some('Z') | Some('X')));
    }
    registry::clear_interrupt().unwrap();
}

fn a_fork_bomb_stops_at_the_default_cap_with_advice() {
    assert_eq!(
        registry::max_children().unwrap(),
        registry::DEFAULT_MAX_CHILDREN
    );
    let t = Instant::now();
    let mut started = Vec::new();
    let err = loop {
        let p = Process::new(|| std::thread::sleep(Duration::from_secs(60))).daemon(true);
        match p.start() {
            Ok(()) => started.push(p),
            Err(e) => break e,
        }
        assert!(started.len() <= 256, "the cap did not hold");
    };
    let elapsed = t.elapsed();
    eprintln!("256 starts then a refusal in {elapsed:?}");
    assert_eq!(started.len(), 256);
    assert!(
        matches!(err, Error::TooManyChildren { limit: 256, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("set_max_children"), "{msg}");
    assert!(msg.contains("FORJA_MAX_CHILDREN"), "{msg}");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    // Refusing again is immediate.
    let t = Instant::now();
    assert!(Process::new(|| {}).start().is_err());
    assert!(t.elapsed() < Duration::from_secs(2));
    // Each process has its own cap: a child does not inherit this one's count.
    for p in &started {
        p.kill().unwrap();
    }
    for p in &started {
        p.join().unwrap();
    }
    registry::set_max_children(1).unwrap();
    let p = Process::new(|| {
        assert_eq!(
            forja::registry::max_children().unwrap(),
            forja::registry::DEFAULT_MAX_CHILDREN
        );
        let kids: Vec<Process> = (0..3).map(|_| Process::new(|| {})).collect();
        for k in &kids {
            k.start().unwrap();
        }
        for k in &kids {
            k.join().unwrap();
        }
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

fn slow(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn every_blocking_wait_wakes_soon_after_an_interrupt() {
    let lock = Lock::new().unwrap();
    let held = lock.acquire().unwrap();
    let sem = Semaphore::new(0).unwrap();
    let ev = Event::new().unwrap();
    let barrier = Barrier::new(2).unwrap();
    let cond = Condition::new().unwrap();
    let q = Queue::<u8>::new().unwrap();
    let full = Queue::<u8>::with_maxsize(1).unwrap();
    full.put(&0).unwrap();
    let jq = JoinableQueue::<u8>::new().unwrap();
    jq.put(&1).unwrap();
    let (a, _b) = Pipe::new::<u8>().unwrap();
    let pool = Pool::new(1).unwrap();
    let pending = pool.apply_async(slow, 30_000).unwrap();
    let child = Process::new(|| std::thread::sleep(Duration::from_secs(30))).daemon(true);
    child.start().unwrap();

    type Wait<'a> = Box<dyn FnOnce() -> bool + Send + 'a>;
    let waits: Vec<(&str, Wait<'_>)> = vec![
        ("Lock::acquire", Box::new(|| is_interrupted(lock.acquire()))),
        (
            "Semaphore::acquire",
            Box::new(|| is_interrupted(sem.acquire())),
        ),
        ("Event::wait", Box::new(|| is_interrupted(ev.wait()))),
        ("Barrier::wait", Box::new(|| is_interrupted(barrier.wait()))),
        (
            "Condition wait",
            Box::new(|| {
                let mut g = cond.acquire().unwrap();
                is_interrupted(g.wait())
            }),
        ),
        ("Queue::get", Box::new(|| is_interrupted(q.get()))),
        (
            "Queue::put (full)",
            Box::new(|| is_interrupted(full.put(&1))),
        ),
        (
            "JoinableQueue::join",
            Box::new(|| is_interrupted(jq.join())),
        ),
        (
            "Connection::recv",
            Box::new(move || is_interrupted(a.recv())),
        ),
        (
            "AsyncResult::get",
            Box::new(|| is_interrupted(pending.get())),
        ),
        ("Process::join", Box::new(|| is_interrupted(child.join()))),
        (
            "forja::sleep",
            Box::new(|| is_interrupted(forja::sleep(Duration::from_secs(30)))),
        ),
    ];
    let n = waits.len();
    let raised = std::sync::OnceLock::<Instant>::new();
    let lags = std::thread::scope(|s| {
        let handles: Vec<_> = waits
            .into_iter()
            .map(|(name, wait)| {
                let raised = &raised;
                s.spawn(move || {
                    let ok = wait();
                    let lag = raised
                        .get()
                        .map(|r| Instant::now().saturating_duration_since(*r));
                    (name, ok, lag)
                })
            })
            .collect();
        // Let every thread block, then interrupt.
        std::thread::sleep(Duration::from_millis(300));
        raised.set(Instant::now()).unwrap();
        registry::request_interrupt().unwrap();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(lags.len(), n);
    let mut worst = Duration::ZERO;
    for (name, ok, lag) in &lags {
        assert!(ok, "{name} did not return Interrupted");
        let lag = lag.unwrap_or_else(|| panic!("{name} returned before the interrupt"));
        eprintln!("{name:<22} woke {lag:?} after the interrupt");
        worst = worst.max(lag);
    }
    assert!(worst < Duration::from_secs(1), "slowest wake-up {worst:?}");
    drop(held);
    registry::clear_interrupt().unwrap();
    child.kill().unwrap();
    child.join().unwrap();
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
common::tests! {
    remote_interrupt_stops_blocked_calls_in_another_process,
    remote_refuses_what_is_not_a_registry,
    ensure_publishes_a_close_on_exec_registry_that_children_do_not_keep,
    sleep_sleeps_and_is_cut_short_by_an_interrupt,
    every_call_fails_at_once_after_an_interrupt_and_drops_do_not_block,
    a_fork_bomb_stops_at_the_default_cap_with_advice,
    every_blocking_wait_wakes_soon_after_an_interrupt,
}
