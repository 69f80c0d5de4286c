//! Pool with real worker processes. Run with `cargo nextest run -p forja`.

use forja::prelude::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn square(x: u64) -> u64 {
    x * x
}

fn my_pid(_: u32) -> i32 {
    std::thread::sleep(Duration::from_millis(20));
    std::process::id() as i32
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn map_keeps_input_order_with_any_chunksize() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<u64> = (0..1000).map(square).collect();
    assert_eq!(pool.map(square, 0..1000).unwrap(), expected);
    for cs in [1, 3, 7, 1000, 5000] {
        assert_eq!(pool.chunksize(cs).map(square, 0..1000).unwrap(), expected);
    }
    assert_eq!(pool.map(square, Vec::new()).unwrap(), Vec::<u64>::new());
}

fn closures_that_capture_nothing_infer_their_types() {
    let pool = Pool::new(2).unwrap();
    // No annotation: the item type comes from the items.
    assert_eq!(
        pool.map(|x| x * x, 0..10u64).unwrap(),
        (0..10).map(square).collect::<Vec<_>>()
    );
    assert_eq!(pool.apply(|x| x + 1, 41u8).unwrap(), 42);
    assert_eq!(
        pool.starmap(|a, b| a * b, vec![(2u32, 3u32), (4, 5)])
            .unwrap(),
        vec![6, 20]
    );
    assert_eq!(pool.map(square, 0..3).unwrap(), vec![0, 1, 4]);
}

fn starmap_async_gives_one_result_for_all_pairs() {
    let pool = Pool::new(2).unwrap();
    let r = pool
        .starmap_async(|a: u64, b: u64| a.pow(b as u32), vec![(2, 10), (3, 3)])
        .unwrap();
    let panics = pool
        .chunksize(1)
        .starmap_async(
            |a: i32, b: i32| if b == 0 { panic!("zero") } else { a / b },
            vec![(1, 0)],
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), vec![1024, 27]);
    assert!(panics.get().is_err());
    assert_eq!(panics.successful(), Some(false));
}

fn scale_and_shift(k: &(u64, u64), x: u64) -> u64 {
    x * k.0 + k.1
}

fn a_value_sent_with_the_tasks_reaches_every_task() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<u64> = (0..100).map(|x| x * 3 + 1000).collect();
    assert_eq!(
        pool.map_with((3, 1000), scale_and_shift, 0..100).unwrap(),
        expected
    );
    for cs in [1, 7, 1000] {
        assert_eq!(
            pool.chunksize(cs)
                .map_with((3, 1000), scale_and_shift, 0..100)
                .unwrap(),
            expected
        );
    }
    // A value that owns heap memory: sent by value, so it exists in the worker.
    let words = vec!["cero".to_string(), "uno".into(), "dos".into()];
    let got = pool
        .map_with(words, |w: &Vec<String>, i: usize| w[i].clone(), vec![2, 0])
        .unwrap();
    assert_eq!(got, vec!["dos", "cero"]);
    let data: Vec<u64> = (0..1000).collect();
    let got = pool
        .map_with(data, |d: &Vec<u64>, i: usize| d[i], 0..5usize)
        .unwrap();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    assert_eq!(
        pool.starmap_with(
            10,
            |k: &i64, a: i64, b: i64| k * a - b,
            vec![(1, 2), (3, 4)]
        )
        .unwrap(),
        vec![8, 26]
    );
    assert_eq!(
        pool.apply_with("ab".to_string(), |s: &String, n: usize| s.repeat(n), 3)
            .unwrap(),
        "ababab"
    );
    let r = pool
        .apply_async_with(2u8, |k: &u8, x: u8| k * x, 21)
        .unwrap();
    assert_eq!(r.get().unwrap(), 42);
    let r = pool
        .map_async_with(1u8, |k: &u8, x: u8| k + x, vec![1, 2])
        .unwrap();
    assert_eq!(r.get().unwrap(), vec![2, 3]);
    let v: Vec<u8> = pool
        .imap_with(1u8, |k: &u8, x: u8| k + x, vec![1, 2])
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(v, vec![2, 3]);
    let mut v: Vec<u8> = pool
        .imap_unordered_with(1u8, |k: &u8, x: u8| k + x, vec![1, 2])
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    v.sort();
    assert_eq!(v, vec![2, 3]);
}

/// What the workers share with the parent: handles that serde cannot send.
struct Shared {
    total: Value<u64>,
    seen: Queue<u64>,
}

fn record(shared: &Shared, x: u64) -> i32 {
    *shared.total.get_lock().unwrap() += x;
    shared.seen.put(&x).unwrap();
    std::process::id() as i32
}

fn drain(q: &Queue<u64>, n: usize) -> Vec<u64> {
    let mut got: Vec<u64> = (0..n)
        .map(|_| q.get_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    got.sort();
    got
}

fn the_pool_context_is_inherited_and_shared_with_the_workers() {
    let shared = Shared {
        total: Value::new(0).unwrap(),
        seen: Queue::new().unwrap(),
    };
    let pool = Pool::builder()
        .processes(2)
        .context(shared)
        .build()
        .unwrap();
    let pids: HashSet<i32> = pool
        .with_context()
        .chunksize(1)
        .map(record, 1..=10)
        .unwrap()
        .into_iter()
        .collect();
    assert!(!pids.contains(&(std::process::id() as i32)));
    assert_eq!(pool.context().total.load().unwrap(), 55);
    assert_eq!(
        drain(&pool.context().seen, 10),
        (1..=10).collect::<Vec<_>>()
    );
    // Every call shape reaches the same context.
    assert_eq!(
        pool.with_context()
            .starmap(
                |s: &Shared, a: u64, b: u64| record(s, a + b) > 0,
                vec![(1, 2)]
            )
            .unwrap(),
        vec![true]
    );
    pool.with_context().apply(record, 100).unwrap();
    pool.with_context()
        .apply_async(record, 1000)
        .unwrap()
        .get()
        .unwrap();
    pool.with_context()
        .map_async(record, vec![10_000])
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(
        pool.with_context().imap(record, vec![0]).unwrap().count(),
        1
    );
    assert_eq!(
        pool.with_context()
            .imap_unordered(record, vec![0])
            .unwrap()
            .count(),
        1
    );
    assert_eq!(pool.context().total.load().unwrap(), 55 + 3 + 11_100);
    assert_eq!(
        drain(&pool.context().seen, 6),
        vec![0, 0, 3, 100, 1000, 10_000]
    );
    // The chunksize view has it too.
    assert_eq!(
        pool.chunksize(3)
            .with_context()
            .map(|s: &Shared, x: u64| record(s, x) > 0, 0..4)
            .unwrap(),
        vec![true; 4]
    );
    assert_eq!(drain(&pool.context().seen, 4), vec![0, 1, 2, 3]);
}

fn the_pool_context_reaches_workers_forked_later() {
    let total = Value::new(0u64).unwrap();
    let pool = Pool::builder().processes(2).context(total).build().unwrap();
    let add = |t: &Value<u64>, x: u64| {
        *t.get_lock().unwrap() += x;
    };
    pool.with_context().map(add, 1..=4).unwrap();
    assert_eq!(pool.context().load().unwrap(), 10);
    // A replaced worker (one was killed) inherits it.
    let killed = pool.worker_pids();
    unsafe { libc::kill(killed[0], libc::SIGKILL) };
    let end = Instant::now() + Duration::from_secs(10);
    while alive(killed[0]) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let end = Instant::now() + Duration::from_secs(10);
    while pool.worker_starts() < 3 && Instant::now() < end {
        let _ = pool.with_context().map(add, vec![0; 4]);
    }
    assert!(pool.worker_starts() >= 3);
    let before = pool.context().load().unwrap();
    pool.with_context()
        .chunksize(1)
        .map(add, vec![1; 20])
        .unwrap();
    assert_eq!(pool.context().load().unwrap(), before + 20);
    // Re-forked workers (code loaded after the fork) inherit it too.
    let starts = pool.worker_starts();
    assert!(load_a_new_library(), "no test library could be loaded");
    pool.with_context()
        .chunksize(1)
        .map(add, vec![1; 20])
        .unwrap();
    assert_eq!(
        pool.worker_starts(),
        starts + 2,
        "one re-fork of both workers"
    );
    assert_eq!(pool.context().load().unwrap(), before + 40);
}

/// Loads a shared object the program had not loaded (what every notebook
/// cell does): the workers no longer have all the code there is.
fn load_a_new_library() -> bool {
    let candidates = [
        c"libresolv.so.2",
        c"libanl.so.1",
        c"libBrokenLocale.so.1",
        c"libnss_dns.so.2",
    ];
    candidates.iter().any(|name| {
        let loaded = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        loaded.is_null() && !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) }.is_null()
    })
}

fn huge_timeouts_mean_no_deadline() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(square, 3).unwrap();
    assert!(r.wait(Duration::MAX).unwrap());
    assert_eq!(r.get_timeout(Duration::MAX).unwrap(), 9);
}

fn tasks_run_in_the_workers_not_here() {
    let pool = Pool::new(2).unwrap();
    let pids: HashSet<i32> = pool
        .chunksize(1)
        .map(my_pid, 0..20)
        .unwrap()
        .into_iter()
        .collect();
    let workers: HashSet<i32> = pool.worker_pids().into_iter().collect();
    assert!(!pids.contains(&(std::process::id() as i32)));
    assert!(pids.is_subset(&workers));
    assert_eq!(pids.len(), 2, "both workers should get tasks");
    // Workers persist: no fork per task.
    assert_eq!(pool.worker_starts(), 2);
    assert_eq!(
        pool.worker_pids().into_iter().collect::<HashSet<_>>(),
        workers
    );
}

fn imap_yields_in_input_order_even_when_later_tasks_finish_first() {
    let pool = Pool::new(2).unwrap();
    let it = pool
        .imap(
            |i: u64| {
                std::thread::sleep(Duration::from_millis(if i.is_multiple_of(2) {
                    60
                } else {
                    1
                }));
                i
            },
            0..10,
        )
        .unwrap();
    let got: Vec<u64> = it.map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

fn imap_is_lazy_about_results() {
    let pool = Pool::new(2).unwrap();
    let mut it = pool.imap(square, 0..4).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    // The rest is still there after other pool work.
    assert_eq!(pool.apply(square, 5).unwrap(), 25);
    let rest: Vec<u64> = it.map(|r| r.unwrap()).collect();
    assert_eq!(rest, vec![1, 4, 9]);
}

fn imap_unordered_gives_the_same_multiset() {
    let pool = Pool::new(2).unwrap();
    let mut got: Vec<u64> = pool
        .chunksize(3)
        .imap_unordered(square, 0..200)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    got.sort();
    let mut expected: Vec<u64> = (0..200).map(square).collect();
    expected.sort();
    assert_eq!(got, expected);
}

fn starmap_spreads_tuples_into_arguments() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(
        pool.starmap(|a: i64, b: i64| a - b, vec![(5, 3), (1, 10)])
            .unwrap(),
        vec![2, -9]
    );
    assert_eq!(
        pool.starmap(
            |a: u8, b: String, c: bool| format!("{a}{b}{c}"),
            vec![(1, "x".to_string(), true)]
        )
        .unwrap(),
        vec!["1xtrue"]
    );
}

fn apply_async_results_come_back_for_each_call() {
    let pool = Pool::new(2).unwrap();
    let pending: Vec<AsyncResult<u64>> = (0..50)
        .map(|i| pool.apply_async(square, i).unwrap())
        .collect();
    for (i, r) in pending.iter().enumerate().rev() {
        assert_eq!(r.get().unwrap(), (i * i) as u64);
        // get() can be called again.
        assert_eq!(r.get().unwrap(), (i * i) as u64);
        assert!(r.ready());
        assert_eq!(r.successful(), Some(true));
    }
    let m = pool.map_async(square, 0..10).unwrap();
    assert_eq!(m.get().unwrap(), (0..10).map(square).collect::<Vec<_>>());
}

fn get_timeout_and_ready_while_running() {
    let pool = Pool::new(1).unwrap();
    let r = pool
        .apply_async(
            |ms: u64| {
                std::thread::sleep(Duration::from_millis(ms));
                ms
            },
            300,
        )
        .unwrap();
    assert!(!r.ready());
    assert_eq!(r.successful(), None);
    assert!(matches!(
        r.get_timeout(Duration::from_millis(10)),
        Err(Error::Timeout { .. })
    ));
    assert_eq!(r.get_timeout(Duration::from_secs(30)).unwrap(), 300);
}

fn a_panicking_task_is_an_err_and_the_worker_survives() {
    let pool = Pool::new(2).unwrap();
    let before: HashSet<i32> = pool.worker_pids().into_iter().collect();
    let e = pool
        .map(
            |x: i32| {
                if x == 7 {
                    panic!("seven is unlucky")
                } else {
                    x
                }
            },
            0..20,
        )
        .unwrap_err();
    assert!(matches!(e, Error::TaskPanicked { .. }), "{e}");
    assert!(e.to_string().contains("seven is unlucky"), "{e}");
    // imap reports it at its position only.
    let items: Vec<Result<i32>> = pool
        .imap(|x: i32| if x == 2 { panic!("two") } else { x }, 0..4)
        .unwrap()
        .collect();
    assert_eq!(items.len(), 4);
    assert!(items[2].is_err());
    assert_eq!(*items[3].as_ref().unwrap(), 3);
    let r = pool
        .apply_async(|_: ()| -> u8 { panic!("inside apply") }, ())
        .unwrap();
    assert!(r.get().unwrap_err().to_string().contains("inside apply"));
    assert_eq!(r.successful(), Some(false));
    // Same workers, still working.
    assert_eq!(
        pool.worker_pids().into_iter().collect::<HashSet<_>>(),
        before
    );
    assert_eq!(pool.map(square, 0..5).unwrap(), vec![0, 1, 4, 9, 16]);
    assert_eq!(pool.worker_starts(), 2);
}

fn a_killed_worker_gives_an_error_not_a_hang() {
    let pool = Pool::new(2).unwrap();
    let started = Instant::now();
    let r = pool
        .apply_async(
            |_: ()| {
                std::thread::sleep(Duration::from_secs(60));
                0u8
            },
            (),
        )
        .unwrap();
    // Find the busy worker by trying: kill both current workers.
    std::thread::sleep(Duration::from_millis(100));
    let killed = pool.worker_pids();
    for &pid in &killed {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let e = r.get().unwrap_err();
    assert!(matches!(e, Error::WorkerDied { .. }), "{e}");
    assert!(e.to_string().contains("signal 9"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // SIGKILL is asynchronous: a task handed to the idle worker before it
    // actually died would rightly fail too. Wait until both are dead.
    let end = Instant::now() + Duration::from_secs(10);
    while killed.iter().any(|&p| alive(p)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The pool replaced its workers and keeps working.
    assert_eq!(
        pool.map(square, 0..10).unwrap(),
        (0..10).map(square).collect::<Vec<_>>()
    );
    assert_eq!(pool.worker_pids().len(), 2);
    assert!(pool.worker_starts() >= 3);
}

fn a_task_that_exits_kills_only_its_worker() {
    let pool = Pool::new(2).unwrap();
    let e = pool
        .apply(|_: ()| -> u8 { forja::exit(5) }, ())
        .unwrap_err();
    assert!(matches!(e, Error::WorkerDied { .. }), "{e}");
    assert!(e.to_string().contains("exit code 5"), "{e}");
    assert_eq!(pool.apply(square, 3).unwrap(), 9);
}

fn initializer_runs_once_per_worker() {
    let path = std::env::temp_dir().join(format!("forja-init-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    let pool = Pool::builder()
        .processes(3)
        .initializer(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .unwrap();
            // One write per line (O_APPEND keeps it whole): `writeln!` on a
            // File writes the number and the newline separately, and the
            // workers' initializers run at the same time.
            f.write_all(format!("{}\n", std::process::id()).as_bytes())
                .unwrap();
        })
        .build()
        .unwrap();
    pool.chunksize(1).map(my_pid, 0..12).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let pids: Vec<i32> = text.lines().map(|l| l.parse().unwrap()).collect();
    let _ = std::fs::remove_file(&path);
    assert_eq!(pids.len(), 3);
    assert_eq!(
        pids.into_iter().collect::<HashSet<_>>(),
        pool.worker_pids().into_iter().collect::<HashSet<_>>()
    );
}

fn a_failing_initializer_is_reported() {
    let pool = Pool::builder()
        .processes(2)
        .initializer(|| panic!("no config file"))
        .build()
        .unwrap();
    let e = pool.map(square, 0..4).unwrap_err();
    assert!(matches!(e, Error::PoolInitializerFailed { .. }), "{e}");
    assert!(e.to_string().contains("no config file"), "{e}");
}

fn close_join_and_terminate() {
    let pool = Pool::new(2).unwrap();
    assert!(matches!(pool.join(), Err(Error::PoolStillOpen { .. })));
    let r = pool
        .apply_async(
            |x: u64| {
                std::thread::sleep(Duration::from_millis(100));
                x
            },
            7,
        )
        .unwrap();
    let pids = pool.worker_pids();
    pool.close().unwrap();
    assert!(matches!(
        pool.apply(square, 1),
        Err(Error::PoolClosed { .. })
    ));
    pool.join().unwrap();
    assert_eq!(
        r.get().unwrap(),
        7,
        "close+join lets submitted tasks finish"
    );
    for pid in pids {
        assert!(!alive(pid), "worker {pid} should have exited");
    }

    let pool = Pool::new(2).unwrap();
    let r = pool
        .apply_async(
            |_: ()| {
                std::thread::sleep(Duration::from_secs(60));
                1u8
            },
            (),
        )
        .unwrap();
    let pids = pool.worker_pids();
    let t = Instant::now();
    pool.terminate().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(matches!(r.get(), Err(Error::PoolClosed { .. })));
    for pid in pids {
        assert!(!alive(pid));
    }
    pool.join().unwrap();
}

fn dropping_the_pool_terminates_its_workers() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.worker_pids();
    assert!(pids.iter().all(|&p| alive(p)));
    drop(pool);
    for pid in pids {
        assert!(!alive(pid));
    }
    assert!(active_children().is_empty());
}

fn workers_are_listed_as_children() {
    let pool = Pool::new(2).unwrap();
    let kids = active_children();
    for pid in pool.worker_pids() {
        let k = kids.iter().find(|c| c.pid() == pid).expect("worker listed");
        assert!(k.name().starts_with("ForkPoolWorker-"));
        assert!(k.is_daemon());
    }
}

fn code_loaded_after_the_fork_makes_the_pool_refork() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..4).unwrap(), vec![0, 1, 4, 9]);
    assert_eq!(pool.worker_starts(), 2);
    // Load a shared object the program had not loaded (what every notebook
    // cell does): the workers no longer have all the code there is.
    let candidates = [
        c"libresolv.so.2",
        c"libanl.so.1",
        c"libBrokenLocale.so.1",
        c"libnss_dns.so.2",
    ];
    let loaded = candidates
        .iter()
        .any(|name| !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) }.is_null());
    assert!(loaded, "no test library could be loaded");
    let old: HashSet<i32> = pool.worker_pids().into_iter().collect();
    assert_eq!(pool.map(square, 0..4).unwrap(), vec![0, 1, 4, 9]);
    assert_eq!(pool.worker_starts(), 4, "one re-fork of both workers");
    let new: HashSet<i32> = pool.worker_pids().into_iter().collect();
    assert!(old.is_disjoint(&new));
    // Once re-forked, the workers are reused.
    assert_eq!(pool.apply(square, 9).unwrap(), 81);
    assert_eq!(pool.worker_starts(), 4);
    // The retired workers stop.
    std::thread::sleep(Duration::from_millis(200));
    let _ = pool.apply(square, 1);
    for pid in old {
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            let _ = pool.apply(square, 1);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "retired worker {pid} still running");
    }
}

fn interrupt_stops_a_blocked_map() {
    let pool = Pool::new(2).unwrap();
    let t = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(150));
        forja::registry::request_interrupt().unwrap();
    });
    let start = Instant::now();
    let e = pool
        .map(
            |_: u8| {
                std::thread::sleep(Duration::from_secs(60));
                0u8
            },
            0..4,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Interrupted { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(10));
    t.join().unwrap();
    forja::registry::clear_interrupt().unwrap();
}

fn zero_workers_is_an_error() {
    assert!(matches!(Pool::new(0), Err(Error::InvalidArgument { .. })));
}

fn large_arguments_and_results() {
    let pool = Pool::new(2).unwrap();
    let inputs: Vec<Vec<u32>> = (0..4).map(|i| vec![i; 1_000_000]).collect();
    let sums = pool
        .chunksize(1)
        .map(
            |v: Vec<u32>| v.iter().map(|&x| x as u64).sum::<u64>(),
            inputs,
        )
        .unwrap();
    assert_eq!(sums, vec![0, 1_000_000, 2_000_000, 3_000_000]);
    let big = pool.apply(|n: usize| vec![1u8; n], 5_000_000).unwrap();
    assert_eq!(big.len(), 5_000_000);
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    map_keeps_input_order_with_any_chunksize,
    starmap_async_gives_one_result_for_all_pairs,
    closures_that_capture_nothing_infer_their_types,
    a_value_sent_with_the_tasks_reaches_every_task,
    the_pool_context_is_inherited_and_shared_with_the_workers,
    the_pool_context_reaches_workers_forked_later,
    huge_timeouts_mean_no_deadline,
    tasks_run_in_the_workers_not_here,
    imap_yields_in_input_order_even_when_later_tasks_finish_first,
    imap_is_lazy_about_results,
    imap_unordered_gives_the_same_multiset,
    starmap_spreads_tuples_into_arguments,
    apply_async_results_come_back_for_each_call,
    get_timeout_and_ready_while_running,
    a_panicking_task_is_an_err_and_the_worker_survives,
    a_killed_worker_gives_an_error_not_a_hang,
    a_task_that_exits_kills_only_its_worker,
    initializer_runs_once_per_worker,
    a_failing_initializer_is_reported,
    close_join_and_terminate,
    dropping_the_pool_terminates_its_workers,
    workers_are_listed_as_children,
    code_loaded_after_the_fork_makes_the_pool_refork,
    interrupt_stops_a_blocked_map,
    zero_workers_is_an_error,
    large_arguments_and_results,
}
