//! The wait-for graph and deadlock detection (issue 17): deadlocks between
//! processes are named with their cycle (`Error::Deadlock`) instead of
//! hanging, the graph shows them, and consistent lock orders never trip the
//! detector. Fork-heavy: run with `cargo nextest run -p forja`.

use forja::prelude::*;
use std::time::{Duration, Instant};

fn spawn(f: impl FnOnce() + Send + 'static) -> Process {
    let p = Process::new(f);
    p.start().expect("start a child");
    p
}

/// What a child says about how its blocking call ended.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
struct Report {
    who: usize,
    deadlock: bool,
    cycle_len: usize,
    message: String,
    ms: u64,
}

fn report(who: usize, r: &Result<()>, since: Instant) -> Report {
    match r {
        Err(Error::Deadlock { cycle, .. }) => Report {
            who,
            deadlock: true,
            cycle_len: cycle.len(),
            message: r.as_ref().unwrap_err().to_string(),
            ms: since.elapsed().as_millis() as u64,
        },
        Err(e) => panic!("child {who}: unexpected error {e}"),
        Ok(()) => Report {
            who,
            deadlock: false,
            cycle_len: 0,
            message: String::new(),
            ms: since.elapsed().as_millis() as u64,
        },
    }
}

fn join_all(ps: &[Process]) {
    for p in ps {
        p.join().expect("join a child");
        assert_eq!(p.exitcode(), Some(0), "child {} failed", p.name());
    }
}

/// Five philosophers each take their left fork, meet at a barrier, and take
/// their right fork: a 5-cycle. `detect_first`: detection on from the start.
fn philosophers(detect_first: bool) -> (Vec<Report>, Option<WaitGraph>) {
    const N: usize = 5;
    forja::deadlock::detect(detect_first).unwrap();
    let forks: Vec<Lock> = (0..N)
        .map(|i| Lock::new().unwrap().with_name(&format!("tenedor {i}")))
        .collect();
    let barrier = Barrier::new(N as u32).unwrap();
    let reports: Queue<Report> = Queue::new().unwrap();
    let ps: Vec<Process> = (0..N)
        .map(|i| {
            let (left, right) = (forks[i].clone(), forks[(i + 1) % N].clone());
            let (barrier, reports) = (barrier.clone(), reports.clone());
            let p = Process::new(move || {
                let _l = left.acquire().unwrap();
                barrier.wait().unwrap();
                let t = Instant::now();
                let r = right.acquire().map(drop);
                reports.put(&report(i, &r, t)).unwrap();
            })
            .with_name(format!("filósofo {i}"));
            p.start().unwrap();
            p
        })
        .collect();
    let mut graph = None;
    if !detect_first {
        // Hung as in Python: the graph must show the 5-cycle.
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let g = forja::waits();
            if g.cycle.as_ref().is_some_and(|c| c.len() == N) {
                graph = Some(g);
                break;
            }
            forja::sleep(Duration::from_millis(20)).unwrap();
        }
        forja::deadlock::detect(true).unwrap();
    }
    join_all(&ps);
    let mut out = Vec::new();
    while let Ok(r) = reports.get_timeout(Duration::from_millis(100)) {
        out.push(r);
    }
    (out, graph)
}

fn dining_philosophers_deadlock_is_named_with_its_five_cycle() {
    let (reports, _) = philosophers(true);
    assert_eq!(reports.len(), 5, "{reports:?}");
    let dead: Vec<_> = reports.iter().filter(|r| r.deadlock).collect();
    assert!(!dead.is_empty(), "nobody got Deadlock: {reports:?}");
    let first = dead[0];
    assert_eq!(first.cycle_len, 5, "{first:?}");
    for i in 0..5 {
        assert!(
            first.message.contains(&format!("`tenedor {i}`")),
            "{}",
            first.message
        );
    }
    // Loose bound (the detector answers within ~50 ms of the cycle closing).
    assert!(first.ms < 2000, "took {} ms", first.ms);
    eprintln!("deadlock reported after {} ms: {}", first.ms, first.message);
}

fn the_graph_of_hung_philosophers_shows_the_five_cycle_in_red() {
    let (reports, graph) = philosophers(false);
    let g = graph.expect("the graph never showed the 5-cycle");
    let cycle = g.cycle.as_ref().unwrap();
    assert!(!g.quiescent);
    let sentence = forja::waits::sentence(cycle);
    for i in 0..5 {
        assert!(sentence.contains(&format!("`tenedor {i}`")), "{sentence}");
        assert!(sentence.contains(&format!("filósofo {i}")), "{sentence}");
    }
    let svg = g.svg();
    assert_eq!(svg.matches("class=\"wait cycle\"").count(), 5, "{svg}");
    assert!(svg.contains("#d32f2f"));
    assert!(g.to_string().contains("tenedor 3"));
    // Turning detection back on unblocks them with a Deadlock.
    assert!(reports.iter().any(|r| r.deadlock), "{reports:?}");
}

fn lock_order_inversion_between_two_processes_is_a_deadlock() {
    let a = Lock::new().unwrap().with_name("cuenta A");
    let b = Lock::new().unwrap().with_name("cuenta B");
    let barrier = Barrier::new(2).unwrap();
    let reports: Queue<Report> = Queue::new().unwrap();
    let ps: Vec<Process> = [(a.clone(), b.clone()), (b.clone(), a.clone())]
        .into_iter()
        .enumerate()
        .map(|(i, (first, second))| {
            let (barrier, reports) = (barrier.clone(), reports.clone());
            spawn(move || {
                let _g = first.acquire().unwrap();
                barrier.wait().unwrap();
                let t = Instant::now();
                let r = second.acquire().map(drop);
                reports.put(&report(i, &r, t)).unwrap();
            })
        })
        .collect();
    join_all(&ps);
    let rs = [reports.get().unwrap(), reports.get().unwrap()];
    let dead: Vec<_> = rs.iter().filter(|r| r.deadlock).collect();
    assert_eq!(dead.len(), 1, "exactly one reports it: {rs:?}");
    assert_eq!(dead[0].cycle_len, 2);
    assert!(dead[0].message.contains("`cuenta A`") && dead[0].message.contains("`cuenta B`"));
}

fn timed_waits_keep_returning_timeout() {
    let a = Lock::new().unwrap();
    let b = Lock::new().unwrap();
    let barrier = Barrier::new(2).unwrap();
    let outcomes: Queue<String> = Queue::new().unwrap();
    let ps: Vec<Process> = [(a.clone(), b.clone()), (b.clone(), a.clone())]
        .into_iter()
        .map(|(first, second)| {
            let (barrier, outcomes) = (barrier.clone(), outcomes.clone());
            spawn(move || {
                let g = first.acquire().unwrap();
                barrier.wait().unwrap();
                let r = second.acquire_timeout(Duration::from_millis(400));
                let outcome = match &r {
                    Ok(_) => "ok".to_owned(),
                    Err(Error::Timeout { .. }) => "timeout".to_owned(),
                    Err(e) => format!("{e:?}"),
                };
                // Let go of the first lock: the other may then get it.
                drop(r);
                drop(g);
                outcomes.put(&outcome).unwrap();
            })
        })
        .collect();
    join_all(&ps);
    let got = [outcomes.get().unwrap(), outcomes.get().unwrap()];
    assert!(got.contains(&"timeout".to_owned()), "{got:?}");
    assert!(got.iter().all(|o| o == "timeout" || o == "ok"), "{got:?}");
}

fn a_recv_whose_only_writer_joins_the_reader_is_a_deadlock() {
    let (mine, theirs) = Pipe::new::<u32>().unwrap();
    let theirs = theirs.with_name("respuesta");
    let reports: Queue<Report> = Queue::new().unwrap();
    let r2 = reports.clone();
    let child = spawn(move || {
        let t = Instant::now();
        let r = theirs.recv().map(drop);
        r2.put(&report(1, &r, t)).unwrap();
    });
    let t = Instant::now();
    let joined = child.join();
    let mut rs = Vec::new();
    if let Ok(r) = reports.get_timeout(Duration::from_secs(1)) {
        rs.push(r);
    }
    rs.push(report(0, &joined, t));
    drop(mine);
    child.join().unwrap();
    let dead: Vec<_> = rs.iter().filter(|r| r.deadlock).collect();
    assert!(!dead.is_empty(), "{rs:?}");
    assert!(dead[0].message.contains("respuesta"), "{}", dead[0].message);
    assert!(t.elapsed() < Duration::from_secs(10));
}

fn a_producer_on_a_full_queue_and_a_consumer_waiting_for_its_lock_deadlock() {
    let q: Queue<u32> = Queue::with_maxsize(1).unwrap().with_name("bandeja");
    let lock = Lock::new().unwrap().with_name("registro");
    let holding = Event::new().unwrap();
    let reports: Queue<Report> = Queue::new().unwrap();
    let producer = {
        let (q, lock, holding, reports) =
            (q.clone(), lock.clone(), holding.clone(), reports.clone());
        spawn(move || {
            let _g = lock.acquire().unwrap();
            holding.set();
            q.put(&1).unwrap();
            let t = Instant::now();
            let r = q.put(&2);
            reports.put(&report(0, &r, t)).unwrap();
        })
    };
    let consumer = {
        let (q, lock, holding, reports) =
            (q.clone(), lock.clone(), holding.clone(), reports.clone());
        spawn(move || {
            holding.wait().unwrap();
            let t = Instant::now();
            let r = lock.acquire().map(drop);
            reports.put(&report(1, &r, t)).unwrap();
            if r.is_ok() {
                let _ = q.get_timeout(Duration::from_millis(100));
            }
        })
    };
    join_all(&[producer, consumer]);
    let mut rs = Vec::new();
    while let Ok(r) = reports.get_timeout(Duration::from_millis(100)) {
        rs.push(r);
    }
    let dead: Vec<_> = rs.iter().filter(|r| r.deadlock).collect();
    assert!(!dead.is_empty(), "{rs:?}");
    let m = &dead[0].message;
    assert!(m.contains("bandeja") || m.contains("registro"), "{m}");
}

fn consistent_lock_orders_never_report_a_deadlock() {
    const PROCS: usize = 4;
    const LOCKS: usize = 3;
    const ITERS: u64 = 2500; // 10,000 schedules in all
    let locks: Vec<Lock> = (0..LOCKS).map(|_| Lock::new().unwrap()).collect();
    let t = Instant::now();
    let ps: Vec<Process> = (0..PROCS)
        .map(|p| {
            let locks = locks.clone();
            spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (p as u64 + 1);
                for i in 0..ITERS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let mask = (x % 7 + 1) as usize; // a non-empty subset
                    let mut guards = Vec::new();
                    for (k, l) in locks.iter().enumerate() {
                        if mask & (1 << k) != 0 {
                            guards.push(l.acquire().expect("no deadlock in a consistent order"));
                        }
                    }
                    // Now and then hold long enough that the others sleep
                    // and scan for deadlocks.
                    if i % 250 == (p as u64) * 60 {
                        std::thread::sleep(Duration::from_millis(60));
                    } else {
                        for _ in 0..(x % 200) {
                            std::hint::spin_loop();
                        }
                    }
                    drop(guards);
                }
            })
        })
        .collect();
    join_all(&ps);
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    eprintln!("10,000 schedules in {:?}", t.elapsed());
}

fn a_child_busy_computing_is_never_a_deadlock() {
    let ev = Event::new().unwrap();
    let e2 = ev.clone();
    let child = spawn(move || {
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(600) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        e2.set();
    });
    ev.wait().expect("the computing child sets it");
    child.join().unwrap();
}

fn primitives_have_unique_default_names_and_given_names() {
    let a = Lock::new().unwrap();
    let b = Lock::new().unwrap();
    assert_ne!(a.name(), b.name());
    assert!(a.name().starts_with("Lock "), "{}", a.name());
    let q: Queue<u8> = Queue::new().unwrap().with_name("cola <1>");
    assert_eq!(q.name(), "cola <1>");
    let names: Queue<String> = Queue::new().unwrap();
    let n2 = names.clone();
    let c = spawn(move || {
        n2.put(&Lock::new().unwrap().name()).unwrap();
    });
    c.join().unwrap();
    let theirs = names.get().unwrap();
    let mine = Lock::new().unwrap().name();
    assert_ne!(theirs, mine);
    assert_ne!(theirs, a.name());
}

fn detection_off_keeps_the_timeout_of_an_untimed_waiter_to_others() {
    // With detection off a deadlocked pair hangs; the parent sees it in the
    // graph and ends it by killing one child.
    forja::deadlock::detect(false).unwrap();
    let a = Lock::new().unwrap();
    let b = Lock::new().unwrap();
    let barrier = Barrier::new(2).unwrap();
    let ps: Vec<Process> = [(a.clone(), b.clone()), (b.clone(), a.clone())]
        .into_iter()
        .map(|(first, second)| {
            let barrier = barrier.clone();
            spawn(move || {
                let _g = first.acquire().unwrap();
                barrier.wait().unwrap();
                let _ = second.acquire();
            })
        })
        .collect();
    assert!(common::wait_for(
        || forja::waits().has_deadlock(),
        Duration::from_secs(10)
    ));
    forja::sleep(Duration::from_millis(300)).unwrap();
    assert!(ps.iter().all(|p| p.is_alive()), "detection was off");
    for p in &ps {
        p.kill().unwrap();
        p.join().unwrap();
    }
    forja::deadlock::detect(true).unwrap();
}

mod common;

common::tests! {
    dining_philosophers_deadlock_is_named_with_its_five_cycle,
    the_graph_of_hung_philosophers_shows_the_five_cycle_in_red,
    lock_order_inversion_between_two_processes_is_a_deadlock,
    timed_waits_keep_returning_timeout,
    a_recv_whose_only_writer_joins_the_reader_is_a_deadlock,
    a_producer_on_a_full_queue_and_a_consumer_waiting_for_its_lock_deadlock,
    consistent_lock_orders_never_report_a_deadlock,
    a_child_busy_computing_is_never_a_deadlock,
    primitives_have_unique_default_names_and_given_names,
    detection_off_keeps_the_timeout_of_an_untimed_waiter_to_others,
}
