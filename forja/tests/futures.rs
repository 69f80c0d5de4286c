//! Pool callbacks, the result thread, `maxtasksperchild` and the
//! `concurrent.futures`-style executor. Run with `cargo nextest run -p forja`.

use forja::prelude::*;
use forja::{ProcessPoolExecutor, as_completed, as_completed_timeout};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn my_pid(_: u32) -> u32 {
    std::process::id()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

const LONG: Duration = Duration::from_secs(20);

fn callbacks_run_in_the_parent_in_completion_order() {
    let pool = Pool::new(3).unwrap();
    let (tx, rx) = mpsc::channel();
    let _results: Vec<_> = [400, 50, 200]
        .into_iter()
        .map(|ms| {
            let tx = tx.clone();
            pool.apply_async(nap, ms)
                .unwrap()
                .callback(move |v| tx.send((v, std::process::id())).unwrap())
        })
        .collect();
    let got: Vec<(u64, u32)> = (0..3).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        vec![50, 200, 400]
    );
    assert!(got.iter().all(|g| g.1 == std::process::id()), "{got:?}");
}

fn the_error_callback_gets_the_panic_message() {
    let pool = Pool::new(1).unwrap();
    let (tx, rx) = mpsc::channel();
    let (ok_tx, ok_rx) = mpsc::channel::<i32>();
    let r = pool
        .apply_async(
            |x: i32| {
                if x < 0 {
                    panic!("no negatives: {x}")
                } else {
                    x
                }
            },
            -7,
        )
        .unwrap()
        .callback(move |v| ok_tx.send(v).unwrap())
        .error_callback(move |e| tx.send((e.to_string(), std::process::id())).unwrap());
    let (message, pid) = rx.recv_timeout(LONG).unwrap();
    assert!(message.contains("no negatives: -7"), "{message}");
    assert_eq!(pid, std::process::id());
    assert!(r.get().is_err());
    assert!(
        ok_rx.try_recv().is_err(),
        "the success callback must not run"
    );
}

fn map_async_callback_gets_the_whole_vec() {
    let pool = Pool::new(2).unwrap();
    let (tx, rx) = mpsc::channel();
    let r = pool
        .map_async(|x: u32| x * 2, 0..10)
        .unwrap()
        .callback(move |v: Vec<u32>| tx.send(v).unwrap());
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        (0..10).map(|x| x * 2).collect::<Vec<_>>()
    );
    assert_eq!(r.get().unwrap().len(), 10);
}

fn get_returns_after_the_callback_has_run() {
    let pool = Pool::new(1).unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let r = pool.apply_async(|x: u8| x, 1).unwrap().callback(move |_| {
        std::thread::sleep(Duration::from_millis(100));
        f.store(true, Ordering::SeqCst);
    });
    assert_eq!(r.get().unwrap(), 1);
    assert!(flag.load(Ordering::SeqCst));
    // Attached after it finished: runs at once, in this thread.
    let here = std::thread::current().id();
    let (tx, rx) = mpsc::channel();
    let _r = r.callback(move |_| tx.send(std::thread::current().id()).unwrap());
    assert_eq!(rx.try_recv().unwrap(), here);
}

fn a_callback_that_waits_for_a_result_gets_an_error_not_a_hang() {
    let pool = Arc::new(Pool::new(1).unwrap());
    let first = Arc::new(pool.apply_async(nap, 300).unwrap());
    let (tx, rx) = mpsc::channel();
    let waited = first.clone();
    let _r = pool
        .apply_async(|x: u8| x, 1)
        .unwrap()
        .callback(move |_| tx.send(waited.get().map(|_| ())).unwrap());
    let got = rx.recv_timeout(LONG).unwrap();
    assert!(
        matches!(got, Ok(()) | Err(Error::InvalidArgument { .. })),
        "{got:?}"
    );
}

fn results_progress_without_a_pool_call() {
    let pool = Pool::new(2).unwrap();
    let rs: Vec<_> = (0..4)
        .map(|_| pool.apply_async(nap, 100).unwrap())
        .collect();
    let m = pool.map_async(|x: u32| x + 1, 0..100).unwrap();
    // The parent does other work; no pool call meanwhile.
    std::thread::sleep(Duration::from_millis(700));
    assert!(rs.iter().all(|r| r.ready()), "results did not progress");
    assert!(m.ready());
    assert_eq!(m.successful(), Some(true));
}

fn maxtasksperchild_replaces_workers() {
    let pool = Pool::builder()
        .processes(2)
        .maxtasksperchild(3)
        .build()
        .unwrap();
    let first: HashSet<i32> = pool.worker_pids().into_iter().collect();
    let pids: Vec<u32> = pool.chunksize(1).map(my_pid, 0..12).unwrap();
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert!(distinct.len() >= 4, "12 tasks, 3 per worker: {distinct:?}");
    let mut counts = std::collections::HashMap::new();
    for p in &pids {
        *counts.entry(p).or_insert(0) += 1;
    }
    assert!(counts.values().all(|&n| n <= 3), "{counts:?}");
    assert!(pool.worker_starts() >= 4);
    // The replacements are there without another call.
    assert!(common::wait_for(
        || {
            let now: HashSet<i32> = pool.worker_pids().into_iter().collect();
            now.len() == 2 && now.is_disjoint(&first)
        },
        LONG
    ));
    assert_eq!(pool.map(|x: u8| x, vec![1, 2, 3]).unwrap(), vec![1, 2, 3]);
    assert!(forja::Pool::builder().maxtasksperchild(0).build().is_err());
}

fn futures_result_timeout_done_and_callbacks() {
    let ex = ProcessPoolExecutor::new(2).unwrap();
    let slow = ex.submit(nap, 500).unwrap();
    assert!(matches!(
        slow.result_timeout(Duration::from_millis(20)),
        Err(Error::Timeout { .. })
    ));
    assert!(!slow.done());
    let (tx, rx) = mpsc::channel();
    slow.add_done_callback(move |r| tx.send((r.unwrap(), std::process::id())).unwrap());
    assert_eq!(rx.recv_timeout(LONG).unwrap(), (500, std::process::id()));
    assert!(slow.done());
    assert_eq!(slow.result().unwrap(), 500);
    let bad = ex
        .submit(|x: u8| if x > 0 { panic!("boom {x}") } else { x }, 3)
        .unwrap();
    assert!(bad.result().unwrap_err().to_string().contains("boom 3"));
    ex.shutdown(true).unwrap();
    assert!(ex.submit(nap, 1).is_err());
}

fn a_future_is_cancelled_only_before_it_starts() {
    let ex = ProcessPoolExecutor::new(1).unwrap();
    // One worker takes two tasks (one runs, one waits in its socket).
    let busy: Vec<_> = (0..2).map(|_| ex.submit(nap, 300).unwrap()).collect();
    let queued = ex.submit(nap, 300).unwrap();
    let (tx, rx) = mpsc::channel();
    queued.add_done_callback(move |r| tx.send(matches!(r, Err(Error::Cancelled { .. }))).unwrap());
    assert!(queued.cancel());
    assert!(queued.cancelled());
    assert!(queued.done());
    assert!(
        rx.recv_timeout(LONG).unwrap(),
        "done callback sees the cancel"
    );
    assert!(matches!(queued.result(), Err(Error::Cancelled { .. })));
    assert!(!busy[0].cancel());
    assert!(busy[0].running() || busy[0].done());
    assert_eq!(busy[1].result().unwrap(), 300);
    assert!(!busy[1].cancel());
    assert!(!busy[1].cancelled());
}

fn as_completed_gives_futures_in_completion_order() {
    let ex = ProcessPoolExecutor::new(3).unwrap();
    let fs: Vec<_> = [400, 20, 200]
        .into_iter()
        .map(|ms| ex.submit(nap, ms).unwrap())
        .collect();
    let order: Vec<u64> = as_completed(&fs)
        .map(|f| f.unwrap().result().unwrap())
        .collect();
    assert_eq!(order, vec![20, 200, 400]);
    let slow = vec![ex.submit(nap, 2000).unwrap()];
    let t = Instant::now();
    let mut it = as_completed_timeout(&slow, Duration::from_millis(50));
    assert!(matches!(it.next(), Some(Err(Error::Timeout { .. }))));
    assert!(it.next().is_none());
    assert!(t.elapsed() < Duration::from_secs(1));
    let v: Vec<u64> = ex
        .map(nap, vec![30, 1])
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(v, vec![30, 1]);
}

fn dropping_a_pool_with_pending_tasks_does_not_hang() {
    assert_eq!(threads(), 1);
    let pool = Pool::new(2).unwrap();
    assert_eq!(threads(), 2, "the result thread");
    let pending: Vec<_> = (0..10)
        .map(|_| pool.apply_async(nap, 5000).unwrap().callback(|_| ()))
        .collect();
    let pids = pool.worker_pids();
    let t = Instant::now();
    drop(pool);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(threads(), 1, "the result thread stopped");
    assert!(pids.iter().all(|&p| common::gone_or_zombie(p)));
    assert!(pending.iter().all(|r| r.ready() && r.get().is_err()));
    let ex = ProcessPoolExecutor::new(1).unwrap();
    let _f = ex.submit(nap, 5000).unwrap();
    let t = Instant::now();
    drop(ex);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(threads(), 1);
}

fn close_join_and_terminate_stop_the_result_thread() {
    let pool = Pool::new(2).unwrap();
    let r = pool.map_async(nap, vec![50, 50, 50]).unwrap();
    pool.close().unwrap();
    pool.join().unwrap();
    assert_eq!(r.get().unwrap(), vec![50, 50, 50]);
    assert_eq!(threads(), 1);
    let pool = Pool::new(1).unwrap();
    pool.terminate().unwrap();
    assert_eq!(threads(), 1);
    let pool = Pool::new(1).unwrap();
    pool.close().unwrap();
    assert_eq!(threads(), 2, "closed, not joined: its thread still serves");
    pool.join().unwrap();
    assert_eq!(threads(), 1);
}

fn forking_a_process_while_the_result_thread_runs_does_not_deadlock() {
    let pool = Pool::new(2).unwrap();
    // Many tiny tasks, each with a callback: the result thread takes the
    // pool's lock all the time.
    let busy = pool
        .chunksize(1)
        .map_async(|x: u32| x, 0..20_000)
        .unwrap()
        .callback(|_| ());
    let more: Vec<_> = (0..200)
        .map(|i| pool.apply_async(|x: u32| x, i).unwrap().callback(|_| ()))
        .collect();
    for _ in 0..30 {
        let p = Process::new(|| {
            let v: Vec<u32> = (0..100).collect();
            assert_eq!(v.len(), 100);
        });
        p.start().unwrap();
        assert!(
            p.join_timeout(Duration::from_secs(10)).unwrap(),
            "the child hung"
        );
        assert_eq!(p.exitcode(), Some(0));
    }
    assert_eq!(busy.get().unwrap().len(), 20_000);
    assert!(more.iter().all(|r| r.get().is_ok()));
}

fn a_blocked_get_is_interrupted() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(nap, 5000).unwrap();
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        forja::registry::request_interrupt().unwrap();
    });
    let t = Instant::now();
    assert!(matches!(r.get(), Err(Error::Interrupted { .. })));
    assert!(t.elapsed() < Duration::from_secs(2));
    forja::registry::clear_interrupt().unwrap();
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    callbacks_run_in_the_parent_in_completion_order,
    the_error_callback_gets_the_panic_message,
    map_async_callback_gets_the_whole_vec,
    get_returns_after_the_callback_has_run,
    a_callback_that_waits_for_a_result_gets_an_error_not_a_hang,
    results_progress_without_a_pool_call,
    maxtasksperchild_replaces_workers,
    futures_result_timeout_done_and_callbacks,
    a_future_is_cancelled_only_before_it_starts,
    as_completed_gives_futures_in_completion_order,
    dropping_a_pool_with_pending_tasks_does_not_hang,
    close_join_and_terminate_stop_the_result_thread,
    forking_a_process_while_the_result_thread_runs_does_not_deadlock,
    a_blocked_get_is_interrupted,
}
