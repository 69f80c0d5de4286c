//! Cross-process tests of Queue, JoinableQueue and SimpleQueue.
//! Fork-heavy: run with `cargo nextest run -p forja`.

use forja::prelude::*;
use std::time::{Duration, Instant};

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

fn fifo_in_one_process_with_sizes() {
    let q = Queue::new().unwrap();
    assert!(q.is_empty());
    for i in 0..1000u32 {
        q.put(&i).unwrap();
    }
    assert_eq!(q.qsize(), 1000);
    for i in 0..1000u32 {
        assert_eq!(q.get().unwrap(), i);
    }
    assert!(q.is_empty());
    assert!(matches!(q.try_get(), Err(Error::Empty { .. })));
}

fn maxsize_full_and_timeouts() {
    let q = Queue::with_maxsize(2).unwrap();
    q.put(&"a".to_string()).unwrap();
    q.try_put(&"b".to_string()).unwrap();
    assert!(q.is_full());
    let err = q.try_put(&"c".to_string()).unwrap_err();
    assert!(matches!(err, Error::Full { .. }));
    assert!(err.to_string().contains("full"), "{err}");
    let start = Instant::now();
    assert!(matches!(
        q.put_timeout(&"c".to_string(), Duration::from_millis(30)),
        Err(Error::Full { .. })
    ));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(q.get().unwrap(), "a");
    q.put_timeout(&"c".to_string(), Duration::from_millis(30))
        .unwrap();
    assert_eq!(q.get().unwrap(), "b");
    assert_eq!(q.get().unwrap(), "c");
    let start = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(30)),
        Err(Error::Empty { .. })
    ));
    assert!(start.elapsed() >= Duration::from_millis(30));
}

fn close_stops_puts_from_this_handle_only() {
    let q = Queue::new().unwrap();
    let q2 = q.clone();
    let child = spawn(move || q2.put(&5u8).unwrap());
    q.put(&1u8).unwrap();
    q.close();
    assert!(matches!(q.put(&2), Err(Error::QueueClosed { .. })));
    join_all_ok(vec![child]);
    let mut got = vec![q.get().unwrap(), q.get().unwrap()];
    got.sort();
    assert_eq!(got, vec![1, 5]);
}

fn four_producers_four_consumers_exact_multiset() {
    const PRODUCERS: u64 = 4;
    const CONSUMERS: usize = 4;
    const TOTAL: u64 = 100_000;
    const PER: u64 = TOTAL / PRODUCERS;
    let q: Queue<u64> = Queue::new().unwrap();
    let seen = Array::<u8>::zeroed(TOTAL as usize).unwrap();
    let counts = Array::<u64>::zeroed(CONSUMERS).unwrap();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let (q, seen, counts) = (q.clone(), seen.clone(), counts.clone());
            spawn(move || {
                let mut n = 0;
                loop {
                    let item = q.get().unwrap();
                    if item == u64::MAX {
                        break;
                    }
                    let mut s = seen.get_lock().unwrap();
                    s[item as usize] += 1;
                    n += 1;
                }
                counts.store(c, n).unwrap();
            })
        })
        .collect();
    let producers = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            spawn(move || {
                for i in 0..PER {
                    q.put(&(p * PER + i)).unwrap();
                }
            })
        })
        .collect();
    join_all_ok(producers);
    for _ in 0..CONSUMERS {
        q.put(&u64::MAX).unwrap();
    }
    join_all_ok(consumers);
    let seen = seen.to_vec().unwrap();
    let missing = seen.iter().filter(|&&s| s == 0).count();
    let duplicated = seen.iter().filter(|&&s| s > 1).count();
    assert_eq!((missing, duplicated), (0, 0));
    assert_eq!(counts.to_vec().unwrap().iter().sum::<u64>(), TOTAL);
    assert!(q.is_empty());
}

fn each_producers_items_arrive_in_order() {
    let q: Queue<(u32, u32)> = Queue::with_maxsize(16).unwrap();
    let producers = (0..3u32)
        .map(|p| {
            let q = q.clone();
            spawn(move || {
                for i in 0..5_000u32 {
                    q.put(&(p, i)).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u32; 3];
    for _ in 0..15_000 {
        assert!(q.qsize() <= 16);
        let (p, i) = q.get_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(i, next[p as usize], "producer {p} out of order");
        next[p as usize] += 1;
    }
    join_all_ok(producers);
    assert_eq!(next, [5_000; 3]);
}

fn items_larger_than_the_ring_pass_whole() {
    // 3 MiB through a 1 MiB ring, across processes, both directions of waiting.
    let q: Queue<Vec<u8>> = Queue::new().unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let expected = big.clone();
    let q2 = q.clone();
    let producer = spawn(move || {
        q2.put(&big).unwrap();
        q2.put(&vec![1, 2, 3]).unwrap();
    });
    assert_eq!(q.get().unwrap(), expected);
    assert_eq!(q.get().unwrap(), vec![1, 2, 3]);
    join_all_ok(vec![producer]);
}

fn mixed_sizes_through_a_tiny_ring_many_to_many() {
    // A 64-byte ring forces most items to be streamed in pieces while other
    // producers and consumers wait their turn.
    let q: Queue<Vec<u32>> = Queue::with_buffer_bytes(64).unwrap();
    let sums = Array::<u64>::zeroed(2).unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|c| {
            let (q, sums) = (q.clone(), sums.clone());
            spawn(move || {
                let mut sum = 0u64;
                loop {
                    let v = q.get().unwrap();
                    if v.is_empty() {
                        break;
                    }
                    assert!(v.iter().all(|&x| x == v[0]), "item mixed up");
                    sum += v.iter().map(|&x| x as u64).sum::<u64>();
                }
                sums.store(c, sum).unwrap();
            })
        })
        .collect();
    let producers = (0..2u32)
        .map(|p| {
            let q = q.clone();
            spawn(move || {
                for i in 0..300u32 {
                    let len = (i * 13 + p) % 97 + 1;
                    q.put(&vec![i; len as usize]).unwrap();
                }
            })
        })
        .collect();
    join_all_ok(producers);
    q.put(&vec![]).unwrap();
    q.put(&vec![]).unwrap();
    join_all_ok(consumers);
    let expected: u64 = (0..2u32)
        .flat_map(|p| (0..300u32).map(move |i| i as u64 * (((i * 13 + p) % 97 + 1) as u64)))
        .sum();
    assert_eq!(sums.to_vec().unwrap().iter().sum::<u64>(), expected);
}

fn joinable_queue_join_waits_for_every_task_done() {
    const ITEMS: u32 = 200;
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    let processed = Value::new(0u32).unwrap();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (q, processed) = (q.clone(), processed.clone());
            spawn(move || {
                loop {
                    let item = q.get().unwrap();
                    if item == u32::MAX {
                        q.task_done().unwrap();
                        break;
                    }
                    *processed.get_lock().unwrap() += 1;
                    q.task_done().unwrap();
                }
            })
        })
        .collect();
    for i in 0..ITEMS {
        q.put(&i).unwrap();
    }
    assert!(q.join_timeout(Duration::from_secs(30)).unwrap());
    // join returned only after every item was processed and marked done.
    assert_eq!(processed.load().unwrap(), ITEMS);
    assert_eq!(q.unfinished_tasks(), 0);
    for _ in 0..3 {
        q.put(&u32::MAX).unwrap();
    }
    q.join().unwrap();
    join_all_ok(workers);
    let err = q.task_done().unwrap_err();
    assert!(matches!(err, Error::TooManyTaskDone { .. }));
}

fn joinable_queue_join_times_out_while_tasks_remain() {
    let q: JoinableQueue<u8> = JoinableQueue::new().unwrap();
    q.put(&1).unwrap();
    q.get().unwrap();
    // A wait that returns nothing: Ok(false) at the deadline (issue 15).
    assert!(!q.join_timeout(Duration::from_millis(20)).unwrap());
    let q2 = q.clone();
    join_all_ok(vec![spawn(move || q2.task_done().unwrap())]);
    assert!(q.join_timeout(Duration::from_secs(10)).unwrap());
}

fn simple_queue_across_processes() {
    let q: SimpleQueue<String> = SimpleQueue::new().unwrap();
    let q2 = q.clone();
    let child = spawn(move || {
        for i in 0..100 {
            q2.put(&format!("mensaje {i}")).unwrap();
        }
    });
    for i in 0..100 {
        assert_eq!(q.get().unwrap(), format!("mensaje {i}"));
    }
    join_all_ok(vec![child]);
    assert!(q.is_empty());
}

fn a_killed_consumer_between_items_loses_nothing() {
    // A consumer blocked in get() (holding the consumer lock) is killed: the
    // next consumer takes over and still gets every item.
    let q: Queue<u32> = Queue::new().unwrap();
    let q2 = q.clone();
    let blocked = spawn(move || {
        let _ = q2.get();
        forja::exit(3); // would mean it got an item: not expected
    });
    std::thread::sleep(Duration::from_millis(100));
    blocked.kill().unwrap();
    blocked.join().unwrap();
    assert_eq!(blocked.exitcode(), Some(-9));
    for i in 0..10 {
        q.put(&i).unwrap();
    }
    for i in 0..10 {
        assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), i);
    }
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    fifo_in_one_process_with_sizes,
    maxsize_full_and_timeouts,
    close_stops_puts_from_this_handle_only,
    four_producers_four_consumers_exact_multiset,
    each_producers_items_arrive_in_order,
    items_larger_than_the_ring_pass_whole,
    mixed_sizes_through_a_tiny_ring_many_to_many,
    joinable_queue_join_waits_for_every_task_done,
    joinable_queue_join_times_out_while_tasks_remain,
    simple_queue_across_processes,
    a_killed_consumer_between_items_loses_nothing,
}
