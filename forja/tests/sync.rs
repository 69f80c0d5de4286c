//! Cross-process tests of Lock, RLock, Semaphore, BoundedSemaphore, Event,
//! Condition and Barrier. Fork-heavy: run with `cargo nextest run -p forja`.

use forja::prelude::*;
use std::time::{Duration, Instant};

/// Starts a child running `f`.
fn spawn(f: impl FnOnce() + Send + 'static) -> Process {
    let p = Process::new(f);
    p.start().expect("start a child");
    p
}

/// Joins every child and checks it exited with code 0 (a failed assertion
/// in a child panics, which exits with 1).
fn join_all_ok(children: Vec<Process>) {
    for p in children {
        p.join().expect("join a child");
        assert_eq!(p.exitcode(), Some(0), "child {} failed", p.name());
    }
}

fn locked_increments_from_n_processes_sum_exactly() {
    const N: u64 = 4;
    const M: u64 = 20_000;
    let lock = Lock::new().unwrap();
    let counter = RawValue::new(0u64).unwrap();
    let children = (0..N)
        .map(|_| {
            let (lock, counter) = (lock.clone(), counter.clone());
            spawn(move || {
                for _ in 0..M {
                    let _g = lock.acquire().unwrap();
                    counter.store(counter.load() + 1);
                }
            })
        })
        .collect();
    join_all_ok(children);
    assert_eq!(counter.load(), N * M);
    assert!(!lock.is_locked());
}

fn lock_blocks_other_processes_and_times_out() {
    let lock = Lock::new().unwrap();
    let _held = lock.acquire().unwrap();
    let l2 = lock.clone();
    let child = spawn(move || {
        assert!(l2.try_acquire().is_none());
        let start = Instant::now();
        let r = l2.acquire_timeout(Duration::from_millis(100));
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(5));
    });
    join_all_ok(vec![child]);
}

fn another_process_may_release_a_lock() {
    let lock = Lock::new().unwrap();
    lock.acquire().unwrap().forget();
    let me = std::process::id() as i32;
    assert_eq!(lock.owner(), Some(me));
    let l2 = lock.clone();
    join_all_ok(vec![spawn(move || l2.release().unwrap())]);
    assert!(!lock.is_locked());
    assert!(matches!(lock.release(), Err(Error::NotHeld { .. })));
}

fn releasing_a_free_lock_is_an_error() {
    let lock = Lock::new().unwrap();
    let err = lock.release().unwrap_err();
    assert!(matches!(err, Error::NotHeld { .. }));
    assert!(err.to_string().contains("not held"), "{err}");
}

fn lock_holder_killed_mid_critical_section_is_reported_and_recoverable() {
    let lock = Lock::new().unwrap();
    let balance = Value::new([100i64, 0]).unwrap(); // an invariant: sum is 100
    let holding = Event::new().unwrap();
    let (l2, b2, h2) = (lock.clone(), balance.clone(), holding.clone());
    let child = spawn(move || {
        let _g = l2.acquire().unwrap();
        // Half of a transfer, under `lock`...
        let mut b = b2.get_lock().unwrap();
        b[0] -= 30;
        drop(b);
        h2.set();
        loop {
            std::thread::sleep(Duration::from_secs(1)); // ...then killed here
        }
    });
    assert!(holding.wait_timeout(Duration::from_secs(10)).unwrap());
    let child_pid = child.pid().unwrap();
    child.kill().unwrap();
    // Not joined on purpose: a dead, unreaped child (a zombie) must count as
    // dead too.
    let start = Instant::now();
    let err = lock.acquire().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    match &err {
        Error::LockOwnerDied { pid, by, .. } => {
            assert_eq!(*pid, child_pid);
            assert_eq!(*by, std::process::id() as i32);
        }
        other => panic!("expected LockOwnerDied, got {other:?}"),
    }
    assert!(err.to_string().contains(&child_pid.to_string()), "{err}");
    assert!(err.to_string().contains("recover()"), "{err}");
    {
        let _g = lock.recover().unwrap();
        let mut b = balance.get_lock().unwrap();
        assert_eq!(b[0] + b[1], 70); // the half-done transfer is visible
        b[1] += 30; // repair
    }
    assert_eq!(balance.load().unwrap().iter().sum::<i64>(), 100);
    assert!(!lock.is_locked());
    drop(lock.acquire().unwrap());
    assert!(matches!(
        lock.recover(),
        Err(Error::NothingToRecover { .. })
    ));
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(-9));
}

fn value_lock_holder_killed_then_recover() {
    let v = Value::new(0u32).unwrap();
    let holding = Event::new().unwrap();
    let (v2, h2) = (v.clone(), holding.clone());
    let child = spawn(move || {
        let mut g = v2.get_lock().unwrap();
        *g = 7;
        h2.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(holding.wait_timeout(Duration::from_secs(10)).unwrap());
    child.kill().unwrap();
    child.join().unwrap();
    let err = v.get_lock().unwrap_err();
    assert!(matches!(err, Error::LockOwnerDied { pid, .. } if pid == child.pid().unwrap()));
    assert_eq!(*v.recover().unwrap(), 7);
    assert_eq!(v.load().unwrap(), 7);
}

fn rlock_is_reentrant_and_excludes_other_processes() {
    let rlock = RLock::new().unwrap();
    let g1 = rlock.acquire().unwrap();
    let g2 = rlock.acquire().unwrap();
    assert_eq!(rlock.depth(), 2);
    let r2 = rlock.clone();
    join_all_ok(vec![spawn(move || {
        assert_eq!(r2.depth(), 0);
        assert!(r2.release().is_err()); // not ours
        let r = r2.acquire_timeout(Duration::from_millis(50));
        assert!(matches!(r, Err(Error::Timeout { .. })));
    })]);
    drop(g2);
    assert!(rlock.is_locked());
    drop(g1);
    assert!(!rlock.is_locked());
    assert!(matches!(rlock.release(), Err(Error::NotHeld { .. })));
    // Free again: a child can take it now.
    let r3 = rlock.clone();
    join_all_ok(vec![spawn(move || drop(r3.acquire().unwrap()))]);
}

fn rlock_counter_from_processes() {
    const N: u32 = 3;
    const M: u32 = 5_000;
    let rlock = RLock::new().unwrap();
    let counter = RawValue::new(0u32).unwrap();
    let children = (0..N)
        .map(|_| {
            let (rlock, counter) = (rlock.clone(), counter.clone());
            spawn(move || {
                for _ in 0..M {
                    let _outer = rlock.acquire().unwrap();
                    let _inner = rlock.acquire().unwrap();
                    counter.store(counter.load() + 1);
                }
            })
        })
        .collect();
    join_all_ok(children);
    assert_eq!(counter.load(), N * M);
}

fn semaphore_limits_concurrency() {
    const UNITS: u32 = 2;
    let sem = Semaphore::new(UNITS).unwrap();
    let inside = Value::new(0u32).unwrap();
    let max_inside = Value::new(0u32).unwrap();
    let children = (0..6)
        .map(|_| {
            let (sem, inside, max_inside) = (sem.clone(), inside.clone(), max_inside.clone());
            spawn(move || {
                for _ in 0..20 {
                    let _unit = sem.acquire().unwrap();
                    let now = {
                        let mut g = inside.get_lock().unwrap();
                        *g += 1;
                        *g
                    };
                    {
                        let mut m = max_inside.get_lock().unwrap();
                        *m = (*m).max(now);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                    *inside.get_lock().unwrap() -= 1;
                }
            })
        })
        .collect();
    join_all_ok(children);
    let max = max_inside.load().unwrap();
    assert!((1..=UNITS).contains(&max), "max inside {max}");
    assert_eq!(inside.load().unwrap(), 0);
    assert_eq!(sem.value(), UNITS);
}

fn semaphore_release_and_timeout() {
    let sem = Semaphore::new(0).unwrap();
    assert!(sem.try_acquire().is_none());
    let r = sem.acquire_timeout(Duration::from_millis(20));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    // A child releases: the parent's blocked acquire gets the unit.
    let s2 = sem.clone();
    let child = spawn(move || s2.release().unwrap());
    sem.acquire_timeout(Duration::from_secs(10))
        .unwrap()
        .forget();
    join_all_ok(vec![child]);
    // Unbounded: releasing above the initial value is allowed.
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.value(), 2);
}

fn bounded_semaphore_rejects_extra_release() {
    let sem = BoundedSemaphore::new(2).unwrap();
    let err = sem.release().unwrap_err();
    assert!(matches!(err, Error::SemaphoreOverReleased { bound: 2, .. }));
    let a = sem.acquire().unwrap();
    a.forget();
    let s2 = sem.clone();
    join_all_ok(vec![spawn(move || {
        s2.release().unwrap();
        assert!(s2.release().is_err());
    })]);
    assert_eq!(sem.value(), 2);
}

fn event_releases_every_waiter() {
    let ev = Event::new().unwrap();
    let passed = Value::new(0u32).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let (ev, passed) = (ev.clone(), passed.clone());
            spawn(move || {
                ev.wait().unwrap();
                assert!(ev.is_set());
                *passed.get_lock().unwrap() += 1;
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(passed.load().unwrap(), 0, "nobody passes before set()");
    ev.set();
    join_all_ok(children);
    assert_eq!(passed.load().unwrap(), 4);
    ev.clear();
    assert!(!ev.wait_timeout(Duration::from_millis(20)).unwrap());
}

fn condition_hands_out_tokens_to_waiters() {
    const WAITERS: u32 = 4;
    const PER: u32 = 25;
    let cond = Condition::new().unwrap();
    let tokens = RawValue::new(0u32).unwrap(); // guarded by cond's lock
    let taken = Value::new(0u32).unwrap();
    let children = (0..WAITERS)
        .map(|_| {
            let (cond, tokens, taken) = (cond.clone(), tokens.clone(), taken.clone());
            spawn(move || {
                for _ in 0..PER {
                    let mut g = cond.acquire().unwrap();
                    g.wait_for(|| tokens.load() > 0).unwrap();
                    tokens.store(tokens.load() - 1);
                    drop(g);
                    *taken.get_lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for _ in 0..WAITERS * PER {
        let g = cond.acquire().unwrap();
        tokens.store(tokens.load() + 1);
        g.notify();
    }
    join_all_ok(children);
    assert_eq!(tokens.load(), 0);
    assert_eq!(taken.load().unwrap(), WAITERS * PER);
}

fn condition_notify_all_and_timeout() {
    let cond = Condition::new().unwrap();
    let go = RawValue::new(false).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            let (cond, go) = (cond.clone(), go.clone());
            spawn(move || {
                let mut g = cond.acquire().unwrap();
                let ok = g
                    .wait_for_timeout(|| go.load(), Duration::from_secs(20))
                    .unwrap();
                assert!(ok);
            })
        })
        .collect();
    {
        let g = cond.acquire().unwrap();
        go.store(true);
        g.notify_all();
    }
    join_all_ok(children);
    let mut g = cond.acquire().unwrap();
    let start = Instant::now();
    assert!(!g.wait_timeout(Duration::from_millis(30)).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert!(cond.lock().is_locked()); // held again after the wait
}

fn barrier_synchronises_rounds() {
    const N: usize = 4;
    const ROUNDS: u32 = 20;
    let barrier = Barrier::new(N as u32).unwrap();
    let progress = Array::<u32>::zeroed(N).unwrap();
    let arrivals = Array::<u32>::zeroed(N).unwrap(); // index histogram
    let children = (0..N)
        .map(|i| {
            let (barrier, progress, arrivals) =
                (barrier.clone(), progress.clone(), arrivals.clone());
            spawn(move || {
                for round in 1..=ROUNDS {
                    progress.store(i, round).unwrap();
                    let idx = barrier.wait().unwrap();
                    arrivals.get_lock().unwrap()[idx as usize] += 1;
                    // Everyone reached this round before anyone passed.
                    assert!(progress.to_vec().unwrap().iter().all(|&r| r >= round));
                    barrier.wait().unwrap();
                }
            })
        })
        .collect();
    join_all_ok(children);
    // Each round hands out every index 0..N exactly once.
    assert_eq!(arrivals.to_vec().unwrap(), vec![ROUNDS; N]);
    assert_eq!(barrier.n_waiting(), 0);
}

fn barrier_timeout_breaks_it_for_everyone_until_reset() {
    let barrier = Barrier::new(3).unwrap();
    let b2 = barrier.clone();
    let child = spawn(move || {
        let r = b2.wait();
        assert!(matches!(r, Err(Error::BrokenBarrier { .. })), "{r:?}");
    });
    let r = barrier.wait_timeout(Duration::from_millis(100));
    assert!(matches!(r, Err(Error::BrokenBarrier { .. })));
    join_all_ok(vec![child]);
    assert!(barrier.broken());
    assert!(barrier.wait().is_err());
    barrier.reset().unwrap();
    assert!(!barrier.broken());
    let b3 = barrier.clone();
    let b4 = barrier.clone();
    let children = vec![
        spawn(move || {
            b3.wait().unwrap();
        }),
        spawn(move || {
            b4.wait().unwrap();
        }),
    ];
    barrier.wait().unwrap();
    join_all_ok(children);
}

fn barrier_abort_wakes_waiters() {
    let barrier = Barrier::new(2).unwrap();
    let b2 = barrier.clone();
    let child = spawn(move || {
        assert!(matches!(b2.wait(), Err(Error::BrokenBarrier { .. })));
    });
    while barrier.n_waiting() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    barrier.abort().unwrap();
    join_all_ok(vec![child]);
    assert!(Barrier::new(0).is_err());
}

fn failed_try_acquire_changes_nothing() {
    let lock = Lock::new().unwrap();
    let _held = lock.acquire().unwrap();
    assert!(lock.try_acquire().is_none());
    assert!(lock.is_locked());
    let sem = Semaphore::new(0).unwrap();
    assert!(sem.try_acquire().is_none());
    assert_eq!(sem.value(), 0);
    let bounded = BoundedSemaphore::new(1).unwrap();
    let _unit = bounded.acquire().unwrap();
    assert!(bounded.try_acquire().is_none());
    assert_eq!(bounded.value(), 0);
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    locked_increments_from_n_processes_sum_exactly,
    lock_blocks_other_processes_and_times_out,
    another_process_may_release_a_lock,
    releasing_a_free_lock_is_an_error,
    lock_holder_killed_mid_critical_section_is_reported_and_recoverable,
    value_lock_holder_killed_then_recover,
    rlock_is_reentrant_and_excludes_other_processes,
    rlock_counter_from_processes,
    semaphore_limits_concurrency,
    semaphore_release_and_timeout,
    bounded_semaphore_rejects_extra_release,
    event_releases_every_waiter,
    condition_hands_out_tokens_to_waiters,
    condition_notify_all_and_timeout,
    barrier_synchronises_rounds,
    barrier_timeout_breaks_it_for_everyone_until_reset,
    barrier_abort_wakes_waiters,
    failed_try_acquire_changes_nothing,
}
