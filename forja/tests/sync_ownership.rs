//! Who owns a lock (issue 11): a thread asking again for a lock it holds
//! through a live guard gets `WouldDeadlock` instead of hanging; other
//! threads and guard-free acquires block as in Python; a holder's death is
//! reported to every acquirer until `recover()`. Fork-heavy: run with
//! `cargo nextest run -p forja`.

use forja::prelude::*;
use std::time::{Duration, Instant};

fn spawn(f: impl FnOnce() + Send + 'static) -> Process {
    let p = Process::new(f);
    p.start().expect("start a child");
    p
}

fn join_ok(p: &Process) {
    p.join().expect("join a child");
    assert_eq!(p.exitcode(), Some(0), "child {} failed", p.name());
}

fn is_would_deadlock<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::WouldDeadlock { .. }))
}

fn is_owner_died<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::LockOwnerDied { .. }))
}

fn four_processes_ten_thousand_guarded_increments_each_are_exact() {
    const N: u64 = 4;
    const M: u64 = 10_000;
    let v = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..N)
        .map(|_| {
            let v = v.clone();
            spawn(move || {
                for _ in 0..M {
                    let mut g = v.get_lock().unwrap();
                    *g += 1;
                }
            })
        })
        .collect();
    children.iter().for_each(join_ok);
    assert_eq!(v.load().unwrap(), N * M);
}

fn load_while_holding_the_guard_is_would_deadlock_at_once() {
    let v = Value::new(5u32).unwrap();
    let mut g = v.get_lock().unwrap();
    let start = Instant::now();
    let err = v.load().unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(10),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, Error::WouldDeadlock { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("*g += 1"), "{text}");
    assert!(text.contains("a Value's lock"), "{text}");
    assert!(is_would_deadlock(v.store(6)));
    assert!(is_would_deadlock(v.get_lock()));
    assert!(is_would_deadlock(
        v.get_lock_timeout(Duration::from_secs(60))
    ));
    assert!(v.is_held_by_current_thread());
    *g += 1; // the guard still works after all that
    drop(g);
    assert!(!v.is_held_by_current_thread());
    assert_eq!(v.load().unwrap(), 6);

    let a = Array::from_slice(&[1i32, 2]).unwrap();
    let g = a.get_lock().unwrap();
    let err = a.load(0).unwrap_err();
    assert!(err.to_string().contains("g[i] += 1"), "{err}");
    assert!(is_would_deadlock(a.store(1, 3)));
    assert!(is_would_deadlock(a.to_vec()));
    drop(g);
    assert_eq!(a.to_vec().unwrap(), vec![1, 2]);
}

fn debug_and_display_of_a_held_value_do_not_hang() {
    let v = Value::new(42i64).unwrap();
    let a = Array::from_slice(&[1u8, 2]).unwrap();
    let gv = v.get_lock().unwrap();
    let ga = a.get_lock().unwrap();
    let start = Instant::now();
    assert_eq!(format!("{v:?}"), "Value(<held by this thread>)");
    assert_eq!(format!("{a:?}"), "Array(<held by this thread>)");
    let shown = dbg!(&v);
    assert!(format!("{shown:?}").contains("held by this thread"));
    // The display does not wait either, and says who holds it.
    assert!(v.to_string().contains("<held by this thread>"), "{v}");
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    drop((gv, ga));
    assert_eq!(format!("{v:?}"), "Value(42)");
    assert_eq!(format!("{a:?}"), "Array([1, 2])");
}

fn reacquiring_a_lock_through_a_live_guard_is_would_deadlock() {
    let lock = Lock::new().unwrap();
    let g = lock.acquire().unwrap();
    assert!(lock.is_held_by_current_thread());
    let err = lock.acquire().unwrap_err();
    assert!(
        matches!(err, Error::WouldDeadlock { what: "a Lock", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("RLock"), "{err}");
    assert!(is_would_deadlock(
        lock.acquire_timeout(Duration::from_secs(60))
    ));
    assert!(is_would_deadlock(lock.acquire_no_guard()));
    assert!(lock.try_acquire().is_none());
    // A Condition sharing the lock sees the same guard.
    let cond = Condition::with_lock(&lock).unwrap();
    assert!(is_would_deadlock(cond.acquire()));
    drop(g);
    let mut cg = cond.acquire().unwrap();
    assert!(is_would_deadlock(lock.acquire()));
    assert!(!cg.wait_timeout(Duration::from_millis(5)).unwrap());
    assert!(is_would_deadlock(cond.acquire()));
    drop(cg);
    drop(lock.acquire().unwrap());
}

fn a_guard_free_lock_released_by_a_child_lets_the_parent_take_it_again() {
    // Python: lock.acquire(); ...; lock.acquire() blocks until another
    // process calls lock.release() — a signal, not a deadlock.
    let lock = Lock::new().unwrap();
    lock.acquire_no_guard().unwrap();
    assert!(!lock.is_held_by_current_thread());
    assert_eq!(lock.owner(), Some(std::process::id() as i32));
    let l2 = lock.clone();
    let child = spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        l2.release().unwrap();
    });
    let start = Instant::now();
    lock.acquire_no_guard().unwrap(); // waits for the child's release
    assert!(
        start.elapsed() >= Duration::from_millis(80),
        "{:?}",
        start.elapsed()
    );
    join_ok(&child);
    lock.release().unwrap();
    assert!(!lock.is_locked());

    // The same with a guard that was forgotten (held across notebook cells).
    lock.acquire().unwrap().forget();
    assert!(!lock.is_held_by_current_thread());
    let r = lock.acquire_timeout(Duration::from_millis(20));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let l3 = lock.clone();
    let child = spawn(move || l3.release().unwrap());
    drop(lock.acquire_timeout(Duration::from_secs(10)).unwrap());
    join_ok(&child);
}

fn another_thread_of_the_same_process_blocks_normally() {
    let v = Value::new(0u32).unwrap();
    let lock = Lock::new().unwrap();
    let g = v.get_lock().unwrap();
    let lg = lock.acquire().unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            assert!(!v.is_held_by_current_thread());
            let r = v.get_lock_timeout(Duration::from_millis(30));
            assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
            let r = lock.acquire_timeout(Duration::from_millis(30));
            assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
            // Blocks until the main thread drops its guards.
            *v.get_lock().unwrap() += 1;
            drop(lock.acquire().unwrap());
        });
        std::thread::sleep(Duration::from_millis(150));
        assert!(!t.is_finished());
        drop(g);
        drop(lg);
        t.join().unwrap();
    });
    assert_eq!(v.load().unwrap(), 1);
}

fn rlock_stays_reentrant_and_other_threads_wait() {
    let rlock = RLock::new().unwrap();
    let outer = rlock.acquire().unwrap();
    let inner = rlock.acquire().unwrap();
    assert_eq!(rlock.depth(), 2);
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(rlock.depth(), 0);
            let r = rlock.acquire_timeout(Duration::from_millis(30));
            assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
        });
    });
    drop(inner);
    drop(outer);
    assert!(!rlock.is_locked());
}

fn after_the_holder_is_killed_every_acquirer_gets_owner_died_until_recover() {
    let lock = Lock::new().unwrap();
    let holding = Event::new().unwrap();
    let (l2, h2) = (lock.clone(), holding.clone());
    let holder = spawn(move || {
        let _g = l2.acquire().unwrap();
        h2.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(holding.wait_timeout(Duration::from_secs(10)).unwrap());
    // A waiter that is already blocked when the holder dies.
    let l3 = lock.clone();
    let waiter = spawn(move || {
        let r = l3.acquire();
        assert!(matches!(r, Err(Error::LockOwnerDied { .. })), "{r:?}");
    });
    std::thread::sleep(Duration::from_millis(50));
    let holder_pid = holder.pid().unwrap();
    holder.kill().unwrap();
    holder.join().unwrap();

    let err = lock.acquire().unwrap_err();
    assert!(
        matches!(err, Error::LockOwnerDied { pid, .. } if pid == holder_pid),
        "{err:?}"
    );
    join_ok(&waiter);
    // `?` left nobody holding it, and it stays that way: every acquirer,
    // here or in another process, keeps getting LockOwnerDied.
    assert_eq!(lock.owner(), None);
    assert!(lock.is_locked());
    assert!(is_owner_died(lock.acquire()));
    assert!(is_owner_died(lock.acquire_timeout(Duration::from_secs(60))));
    assert!(is_owner_died(lock.acquire_no_guard()));
    assert!(lock.try_acquire().is_none());
    assert!(is_owner_died(lock.release()));
    let l4 = lock.clone();
    join_ok(&spawn(move || assert!(is_owner_died(l4.acquire()))));
    // Anyone may recover it; then it works normally again.
    {
        let _g = lock.recover().unwrap();
        assert!(matches!(
            lock.recover(),
            Err(Error::NothingToRecover { .. })
        ));
        assert!(is_would_deadlock(lock.acquire()));
    }
    assert!(!lock.is_locked());
    drop(lock.acquire().unwrap());
    let l5 = lock.clone();
    join_ok(&spawn(move || drop(l5.acquire().unwrap())));
}

fn a_value_whose_holder_died_stays_unusable_until_recover() {
    let v = Value::new(0u32).unwrap();
    let holding = Event::new().unwrap();
    let (v2, h2) = (v.clone(), holding.clone());
    let holder = spawn(move || {
        let mut g = v2.get_lock().unwrap();
        *g = 7;
        h2.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(holding.wait_timeout(Duration::from_secs(10)).unwrap());
    holder.kill().unwrap();
    holder.join().unwrap();
    assert!(is_owner_died(v.load()));
    assert!(is_owner_died(v.store(1)));
    assert!(is_owner_died(v.get_lock()));
    assert!(format!("{v:?}").contains("recover()"), "{v:?}");
    let mut g = v.recover().unwrap();
    assert_eq!(*g, 7);
    *g = 8;
    drop(g);
    assert_eq!(v.load().unwrap(), 8);
}

fn an_rlock_whose_holder_died_stays_unusable_until_recover() {
    let rlock = RLock::new().unwrap();
    let holding = Event::new().unwrap();
    let (r2, h2) = (rlock.clone(), holding.clone());
    let holder = spawn(move || {
        r2.acquire().unwrap().forget();
        h2.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(holding.wait_timeout(Duration::from_secs(10)).unwrap());
    holder.kill().unwrap();
    holder.join().unwrap();
    assert!(is_owner_died(rlock.acquire()));
    assert!(is_owner_died(rlock.acquire()));
    assert_eq!(rlock.depth(), 0);
    let g = rlock.recover().unwrap();
    assert_eq!(rlock.depth(), 1);
    let again = rlock.acquire().unwrap();
    assert_eq!(rlock.depth(), 2);
    drop((again, g));
    assert!(!rlock.is_locked());
}

mod common;

// Each test runs in a process of its own (see common/harness.rs).
common::tests! {
    four_processes_ten_thousand_guarded_increments_each_are_exact,
    load_while_holding_the_guard_is_would_deadlock_at_once,
    debug_and_display_of_a_held_value_do_not_hang,
    reacquiring_a_lock_through_a_live_guard_is_would_deadlock,
    a_guard_free_lock_released_by_a_child_lets_the_parent_take_it_again,
    another_thread_of_the_same_process_blocks_normally,
    rlock_stays_reentrant_and_other_threads_wait,
    after_the_holder_is_killed_every_acquirer_gets_owner_died_until_recover,
    a_value_whose_holder_died_stays_unusable_until_recover,
    an_rlock_whose_holder_died_stays_unusable_until_recover,
}
