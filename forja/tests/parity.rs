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
    assert!(r.is_err(), "the panic reaches the waiter that ran the action");
    assert!(barrier.broken());
    join_all_ok(vec![other]);
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

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    barrier_reset_breaks_the_current_waiters,
    barrier_action_runs_once_per_round_in_one_waiter,
    barrier_panicking_action_breaks_it,
    semaphore_without_guard_for_producer_and_consumer,
    semaphore_guard_gives_the_unit_back_on_drop,
}
