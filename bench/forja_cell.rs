// The forja side of bench/forja.py: the same workloads as bench/cpython_bench.py
// and bench/floor.c. This file is used twice, unchanged:
//   * compiled into the release binary bench/forja-bench (`include!`), and
//   * sent as a notebook cell to the forja kernel, followed by a line that
//     calls `forja_bench(..)` and prints its JSON.
// So it holds only items (no statements), needs nothing but forja and std
// (the kernel preloads `use forja::prelude::*`), and declares the few libc
// functions it needs itself.
//
// `forja_bench(reps, scale)` returns one JSON object: workload -> samples, one
// sample per timed batch (the driver takes medians).

use forja::prelude::*;
use std::time::Instant;

unsafe extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
}

fn fb_n(base: f64, scale: f64) -> u64 {
    ((base * scale) as u64).max(1)
}

/// Small message (a u64) ping-pong over a duplex `Pipe` (a socket pair, like Python's
/// `Pipe()`); µs per round trip.
fn fb_pipe_rtt(reps: usize, n: u64) -> Vec<f64> {
    let (parent, child) = Pipe::new::<u64>().unwrap();
    let echo = Process::new(move || {
        loop {
            let x = child.recv().unwrap();
            if x == u64::MAX {
                break;
            }
            child.send(&x).unwrap();
        }
    });
    echo.start().unwrap();
    let mut out = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for i in 0..n {
            parent.send(&i).unwrap();
            assert_eq!(parent.recv().unwrap(), i);
        }
        out.push(t.elapsed().as_secs_f64() / n as f64 * 1e6);
    }
    parent.send(&u64::MAX).unwrap();
    echo.join().unwrap();
    out
}

/// The same ping-pong over two one-way pipes (`Pipe::one_way`, OS pipes, like
/// Python's `Pipe(duplex=False)`); µs per round trip.
fn fb_pipe_oneway_rtt(reps: usize, n: u64) -> Vec<f64> {
    let (from_parent, to_child) = Pipe::one_way::<u64>().unwrap();
    let (from_child, to_parent) = Pipe::one_way::<u64>().unwrap();
    let echo = Process::new(move || {
        loop {
            let x = from_parent.recv().unwrap();
            if x == u64::MAX {
                break;
            }
            to_parent.send(&x).unwrap();
        }
    });
    echo.start().unwrap();
    let mut out = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for i in 0..n {
            to_child.send(&i).unwrap();
            assert_eq!(from_child.recv().unwrap(), i);
        }
        out.push(t.elapsed().as_secs_f64() / n as f64 * 1e6);
    }
    to_child.send(&u64::MAX).unwrap();
    echo.join().unwrap();
    out
}

/// One producer process puts `n` u64s, this process gets them; items/s.
fn fb_queue_1to1(reps: usize, n: u64) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..reps {
        let q: Queue<u64> = Queue::new().unwrap();
        let go = Barrier::new(2).unwrap();
        let producer = {
            let (q, go) = (q.clone(), go.clone());
            Process::new(move || {
                go.wait().unwrap();
                for i in 0..n {
                    q.put(&i).unwrap();
                }
            })
        };
        producer.start().unwrap();
        go.wait().unwrap();
        let t = Instant::now();
        let mut sum = 0u64;
        for _ in 0..n {
            sum += q.get().unwrap();
        }
        let dt = t.elapsed().as_secs_f64();
        producer.join().unwrap();
        assert_eq!(sum, n * (n - 1) / 2);
        out.push(n as f64 / dt);
    }
    out
}

/// 4 producer and 4 consumer processes move `n` u64s in total; items/s, from
/// the common start to the last join.
fn fb_queue_4to4(reps: usize, n: u64) -> Vec<f64> {
    let per = n / 4;
    let mut out = Vec::new();
    for _ in 0..reps {
        let q: Queue<u64> = Queue::new().unwrap();
        let sums = Array::<u64>::zeroed(4).unwrap();
        let go = Barrier::new(9).unwrap();
        let mut procs = Vec::new();
        for _ in 0..4 {
            let (q, go) = (q.clone(), go.clone());
            procs.push(Process::new(move || {
                go.wait().unwrap();
                for i in 0..per {
                    q.put(&i).unwrap();
                }
            }));
        }
        for k in 0..4 {
            let (q, go, sums) = (q.clone(), go.clone(), sums.clone());
            procs.push(Process::new(move || {
                go.wait().unwrap();
                let mut s = 0u64;
                for _ in 0..per {
                    s += q.get().unwrap();
                }
                sums.get_lock().unwrap()[k] = s;
            }));
        }
        for p in &procs {
            p.start().unwrap();
        }
        go.wait().unwrap();
        let t = Instant::now();
        for p in &procs {
            p.join().unwrap();
            assert_eq!(p.exitcode(), Some(0));
        }
        let dt = t.elapsed().as_secs_f64();
        let total: u64 = sums.get_lock().unwrap().iter().sum();
        assert_eq!(total, 4 * (per * (per - 1) / 2));
        out.push((4 * per) as f64 / dt);
    }
    out
}

/// 2 processes each do `m` increments of a `Value<u64>` under its lock
/// (Python's `with v.get_lock(): v.value += 1`); million increments/s.
fn fb_locked_incr(reps: usize, m: u64) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..reps {
        let v = Value::new(0u64).unwrap();
        let go = Barrier::new(3).unwrap();
        let procs: Vec<Process> = (0..2)
            .map(|_| {
                let (v, go) = (v.clone(), go.clone());
                Process::new(move || {
                    go.wait().unwrap();
                    for _ in 0..m {
                        *v.get_lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for p in &procs {
            p.start().unwrap();
        }
        go.wait().unwrap();
        let t = Instant::now();
        for p in &procs {
            p.join().unwrap();
        }
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(v.load().unwrap(), 2 * m);
        out.push(2.0 * m as f64 / dt / 1e6);
    }
    out
}

/// `Process::new(|| {})`, `start`, `join`; µs each.
fn fb_process_start_join(reps: usize, n: u64) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..n {
            let p = Process::new(|| {});
            p.start().unwrap();
            p.join().unwrap();
        }
        out.push(t.elapsed().as_secs_f64() / n as f64 * 1e6);
    }
    out
}

/// Bare `fork` + `_exit(0)` + `waitpid` from this same process (the floor
/// `Process` start + join is held to); µs each.
fn fb_bare_fork_wait(reps: usize, n: u64) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..n {
            // Safety: the child calls only `_exit`.
            let pid = unsafe { fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                unsafe { _exit(0) };
            }
            let mut status = 0;
            assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
        }
        out.push(t.elapsed().as_secs_f64() / n as f64 * 1e6);
    }
    out
}

fn fb_inc(x: u64) -> u64 {
    x + 1
}

/// `pool.map(inc, 0..n)` on a warm pool of 2 workers; µs per task.
/// `chunksize` None = forja's automatic chunksize (as CPython's).
fn fb_pool_map(pool: &Pool, reps: usize, n: u64, chunksize: Option<usize>) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let r = match chunksize {
            None => pool.map(fb_inc, 0..n).unwrap(),
            Some(c) => pool.chunksize(c).map(fb_inc, 0..n).unwrap(),
        };
        out.push(t.elapsed().as_secs_f64() / n as f64 * 1e6);
        assert_eq!(r.len() as u64, n);
        assert_eq!(r[n as usize - 1], n);
    }
    out
}

/// `pool.apply_async(inc, i).get()` one after another; µs per round trip.
fn fb_apply_async(pool: &Pool, reps: usize, n: u64) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for i in 0..n {
            assert_eq!(pool.apply_async(fb_inc, i).unwrap().get().unwrap(), i + 1);
        }
        out.push(t.elapsed().as_secs_f64() / n as f64 * 1e6);
    }
    out
}

fn fb_json(name: &str, v: &[f64]) -> String {
    let xs: Vec<String> = v.iter().map(|x| format!("{x:.6e}")).collect();
    format!("\"{name}\": [{}]", xs.join(", "))
}

/// Runs every workload `reps` times; `scale` multiplies the batch sizes.
fn forja_bench(reps: usize, scale: f64) -> String {
    let mut parts = vec![
        fb_json("pipe_rtt_us", &fb_pipe_rtt(reps, fb_n(20_000.0, scale))),
        fb_json(
            "pipe_oneway_rtt_us",
            &fb_pipe_oneway_rtt(reps, fb_n(20_000.0, scale)),
        ),
        fb_json(
            "queue_1to1_items_s",
            &fb_queue_1to1(reps, fb_n(500_000.0, scale)),
        ),
        fb_json(
            "locked_incr_mps",
            &fb_locked_incr(reps, fb_n(2_000_000.0, scale)),
        ),
        fb_json(
            "process_start_join_us",
            &fb_process_start_join(reps, fb_n(200.0, scale)),
        ),
        fb_json(
            "bare_fork_wait_us",
            &fb_bare_fork_wait(reps, fb_n(200.0, scale)),
        ),
        fb_json(
            "queue_4to4_items_s",
            &fb_queue_4to4(reps, fb_n(400_000.0, scale)),
        ),
    ];
    let pool = Pool::new(2).unwrap();
    pool.map(fb_inc, 0..1000u64).unwrap(); // warm: workers up and ready
    parts.push(fb_json(
        "pool_map_default_us",
        &fb_pool_map(&pool, reps, fb_n(1_000_000.0, scale), None),
    ));
    parts.push(fb_json(
        "pool_map_cs1_us",
        &fb_pool_map(&pool, reps, fb_n(20_000.0, scale), Some(1)),
    ));
    parts.push(fb_json(
        "apply_async_us",
        &fb_apply_async(&pool, reps, fb_n(5_000.0, scale)),
    ));
    drop(pool);
    format!("{{{}}}", parts.join(", "))
}
