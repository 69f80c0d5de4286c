//! Cross-process tests of Value, Array, RawValue, RawArray and the shm layer.
//! Fork-heavy: run with `cargo nextest run -p forja`.

use forja::bytemuck::NoUninit;
use forja::prelude::*;
use forja::shm::{SharedMem, SharedRegion};

fn spawn(f: impl FnOnce() + Send + 'static) -> Process {
    let p = Process::new(f);
    p.start().expect("start a child");
    p
}

fn join_all_ok(children: Vec<Process>) {
    for p in children {
        p.join().expect("join a child");
        assert_eq!(p.exitcode(), Some(0), "child {} failed", p.name());
    }
}

#[derive(Clone, Copy, Debug, PartialEq, NoUninit)]
#[bytemuck(crate = "forja::bytemuck")]
#[repr(C)]
struct Particle {
    pos: [f64; 2],
    id: u32,
    alive: u32,
}

// Safety: repr(C), shareable fields, no padding (NoUninit checks), zero valid.
unsafe impl Shareable for Particle {}

fn value_written_by_child_is_seen_by_parent() {
    let v = Value::new(0i64).unwrap();
    let flag = Value::new(false).unwrap();
    let letter = Value::new('a').unwrap();
    let (v2, f2, l2) = (v.clone(), flag.clone(), letter.clone());
    join_all_ok(vec![spawn(move || {
        v2.store(-42).unwrap();
        f2.store(true).unwrap();
        l2.store('ñ').unwrap();
    })]);
    assert_eq!(v.load().unwrap(), -42);
    assert!(flag.load().unwrap());
    assert_eq!(letter.load().unwrap(), 'ñ');
}

fn value_of_a_repr_c_struct() {
    let p = Value::new(Particle {
        pos: [0.0, 0.0],
        id: 1,
        alive: 1,
    })
    .unwrap();
    let p2 = p.clone();
    join_all_ok(vec![spawn(move || {
        let mut g = p2.get_lock().unwrap();
        g.pos = [1.5, -2.5];
        g.alive = 0;
    })]);
    let got = p.load().unwrap();
    assert_eq!(got.pos, [1.5, -2.5]);
    assert_eq!((got.id, got.alive), (1, 0));
}

fn value_locked_increments_sum_exactly() {
    const N: u64 = 4;
    const M: u64 = 25_000;
    let v = Value::new(0u64).unwrap();
    let children = (0..N)
        .map(|_| {
            let v = v.clone();
            spawn(move || {
                for _ in 0..M {
                    *v.get_lock().unwrap() += 1;
                }
            })
        })
        .collect();
    join_all_ok(children);
    assert_eq!(v.load().unwrap(), N * M);
}

fn raw_value_without_a_lock_loses_updates() {
    // The race shows reliably when every process starts together (a Barrier)
    // and keeps doing unsynchronised read-then-write increments for a while
    // (100 ms, so they overlap in debug and release builds alike). Each
    // process counts its own increments; the shared total must fall short.
    // A few tries in case the scheduler serialises one run completely.
    const N: usize = 4;
    for attempt in 1..=5 {
        let v = RawValue::new(0u64).unwrap();
        let done = Array::<u64>::zeroed(N).unwrap();
        let start = Barrier::new(N as u32).unwrap();
        let children = (0..N)
            .map(|i| {
                let (v, done, start) = (v.clone(), done.clone(), start.clone());
                spawn(move || {
                    start.wait().unwrap();
                    let t = std::time::Instant::now();
                    let mut mine = 0u64;
                    while t.elapsed() < std::time::Duration::from_millis(100) {
                        for _ in 0..1000 {
                            v.store(v.load() + 1);
                        }
                        mine += 1000;
                    }
                    done.store(i, mine).unwrap();
                })
            })
            .collect();
        join_all_ok(children);
        let expected: u64 = done.to_vec().unwrap().iter().sum();
        let total = v.load();
        assert!(total <= expected);
        if total < expected {
            println!("attempt {attempt}: {total} of {expected} updates kept");
            return;
        }
    }
    panic!("no update was lost in 5 tries: the race did not show");
}

fn array_children_fill_their_slots() {
    const N: usize = 6;
    let a = Array::<u64>::zeroed(N).unwrap();
    let children = (0..N)
        .map(|i| {
            let a = a.clone();
            spawn(move || a.store(i, (i as u64 + 1) * 10).unwrap())
        })
        .collect();
    join_all_ok(children);
    assert_eq!(a.to_vec().unwrap(), vec![10, 20, 30, 40, 50, 60]);
}

fn array_locked_increments_sum_exactly() {
    const N: u32 = 3;
    const M: u32 = 10_000;
    let a = Array::from_elem(0u32, 4).unwrap();
    let children = (0..N)
        .map(|_| {
            let a = a.clone();
            spawn(move || {
                for k in 0..M {
                    let mut g = a.get_lock().unwrap();
                    let i = (k % 4) as usize;
                    g[i] += 1;
                }
            })
        })
        .collect();
    join_all_ok(children);
    assert_eq!(a.to_vec().unwrap().iter().sum::<u32>(), N * M);
    assert_eq!(a.to_vec().unwrap(), vec![N * M / 4; 4]);
}

fn array_bounds_are_errors_not_panics() {
    let a = Array::from_slice(&[1u8, 2, 3]).unwrap();
    assert!(matches!(a.load(3), Err(Error::InvalidArgument { .. })));
    assert!(a.store(99, 0).is_err());
    let r = RawArray::from_slice(&[1u8]).unwrap();
    assert!(r.load(1).is_err());
    assert!(r.store(1, 0).is_err());
    let empty = Array::<f32>::zeroed(0).unwrap();
    assert!(empty.is_empty());
    assert!(empty.to_vec().unwrap().is_empty());
}

fn raw_array_is_shared_too() {
    let r = RawArray::from_fn(8, |i| i as i32).unwrap();
    let r2 = r.clone();
    join_all_ok(vec![spawn(move || {
        for i in 0..r2.len() {
            r2.store(i, -r2.load(i).unwrap()).unwrap();
        }
    })]);
    assert_eq!(r.to_vec(), vec![0, -1, -2, -3, -4, -5, -6, -7]);
}

fn value_guard_timeout_while_another_process_holds_it() {
    let v = Value::new(1u8).unwrap();
    let _g = v.get_lock().unwrap();
    let v2 = v.clone();
    join_all_ok(vec![spawn(move || {
        let r = v2.get_lock_timeout(std::time::Duration::from_millis(50));
        assert!(matches!(r, Err(Error::Timeout { .. })));
    })]);
}

fn shm_region_and_shared_mem_are_shared_across_fork() {
    let region = SharedRegion::new(4096).unwrap();
    let mem = SharedMem::new([0u32; 4]).unwrap();
    let (r2, m2) = (region.clone(), mem.clone());
    join_all_ok(vec![spawn(move || unsafe {
        r2.as_ptr().add(100).write(0xAB);
        (*m2.as_ptr())[3] = 7;
    })]);
    assert_eq!(unsafe { region.as_ptr().add(100).read() }, 0xAB);
    assert_eq!(unsafe { *mem.as_ptr() }, [0, 0, 0, 7]);
    // A plain Box is copied at the fork instead: the child's write is lost.
    let private = Box::into_raw(Box::new(0u32)) as usize;
    join_all_ok(vec![spawn(move || unsafe {
        *(private as *mut u32) = 9;
    })]);
    assert_eq!(unsafe { *(private as *const u32) }, 0);
    drop(unsafe { Box::from_raw(private as *mut u32) });
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    value_written_by_child_is_seen_by_parent,
    value_of_a_repr_c_struct,
    value_locked_increments_sum_exactly,
    raw_value_without_a_lock_loses_updates,
    array_children_fill_their_slots,
    array_locked_increments_sum_exactly,
    array_bounds_are_errors_not_panics,
    raw_array_is_shared_too,
    value_guard_timeout_while_another_process_holds_it,
    shm_region_and_shared_mem_are_shared_across_fork,
}
