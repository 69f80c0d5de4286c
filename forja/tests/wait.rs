//! `forja::wait` over pipes, processes and queues, and iterating a pipe
//! until end of file. Run with `cargo nextest run -p forja`.

mod common;

use forja::prelude::*;
use std::time::{Duration, Instant};

fn ready_pipe_ends_are_reported_by_index() {
    let (a, b) = Pipe::new::<u8>().unwrap();
    let (rx, tx) = Pipe::one_way::<u8>().unwrap();
    let t = Instant::now();
    assert!(
        forja::wait(&[&a, &rx], Duration::from_millis(30))
            .unwrap()
            .is_empty()
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    tx.send(&1).unwrap();
    assert_eq!(forja::wait(&[&a, &rx], Duration::MAX).unwrap(), vec![1]);
    b.send(&2).unwrap();
    assert_eq!(forja::wait(&[&a, &rx], Duration::MAX).unwrap(), vec![0, 1]);
    // Ready means a recv does not wait, even after wait read the bytes.
    assert_eq!(rx.recv_timeout(Duration::ZERO).unwrap(), 1);
    assert_eq!(a.recv_timeout(Duration::ZERO).unwrap(), 2);
    // End of file is ready too.
    drop(tx);
    assert_eq!(forja::wait(&[&a, &rx], Duration::MAX).unwrap(), vec![1]);
}

fn a_message_from_a_child_wakes_the_wait() {
    let ends: Vec<(Receiver<u32>, Sender<u32>)> =
        (0..3).map(|_| Pipe::one_way().unwrap()).collect();
    let (receivers, senders): (Vec<_>, Vec<_>) = ends.into_iter().unzip();
    let senders = std::sync::Mutex::new(Some(senders));
    let p = Process::new(move || {
        let senders = senders.lock().unwrap().take().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        senders[2].send(&7).unwrap();
        // Keep the others open: their end of file would be ready too.
        std::thread::sleep(Duration::from_millis(500));
    });
    p.start().unwrap();
    let t = Instant::now();
    assert_eq!(
        forja::wait_slice(&receivers, Duration::MAX).unwrap(),
        vec![2]
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(receivers[2].recv().unwrap(), 7);
    p.join().unwrap();
}

fn processes_are_ready_when_they_end() {
    let slow = Process::new(|| std::thread::sleep(Duration::from_secs(30)));
    let quick = Process::new(|| std::thread::sleep(Duration::from_millis(50)));
    slow.start().unwrap();
    quick.start().unwrap();
    let t = Instant::now();
    assert_eq!(
        forja::wait(&[&slow, &quick], Duration::MAX).unwrap(),
        vec![1]
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(quick.exitcode(), Some(0));
    assert!(slow.sentinel().is_ok());
    slow.kill().unwrap();
    assert_eq!(forja::wait(&[&slow], Duration::MAX).unwrap(), vec![0]);
    assert_eq!(slow.exitcode(), Some(-9));
    // An ended (and reaped) process stays ready.
    assert_eq!(
        forja::wait(&[&slow, &quick], Duration::ZERO).unwrap(),
        vec![0, 1]
    );
}

fn an_unstarted_process_is_an_error() {
    let p = Process::new(|| {});
    let r = forja::wait(&[&p], Duration::ZERO);
    assert!(matches!(r, Err(Error::ProcessNotStarted { .. })), "{r:?}");
}

fn a_queue_is_seen_within_a_few_milliseconds() {
    let q: Queue<u64> = Queue::new().unwrap();
    let jq: JoinableQueue<u64> = JoinableQueue::new().unwrap();
    let sq: SimpleQueue<u64> = SimpleQueue::new().unwrap();
    let (rx, _tx) = Pipe::one_way::<u8>().unwrap();
    assert!(
        forja::wait(&[&q, &jq, &sq, &rx], Duration::ZERO)
            .unwrap()
            .is_empty()
    );
    let stamp = forja::Value::new(0u64).unwrap();
    let p = {
        let (q, stamp) = (q.clone(), stamp.clone());
        Process::new(move || {
            std::thread::sleep(Duration::from_millis(100));
            stamp.store(now_micros()).unwrap();
            q.put(&1).unwrap();
        })
    };
    p.start().unwrap();
    assert_eq!(
        forja::wait(&[&rx, &q, &jq, &sq], Duration::MAX).unwrap(),
        vec![1]
    );
    let late = now_micros() - stamp.load().unwrap();
    // 1 ms slices: allow a loaded machine some slack, but far below the
    // 50 ms of the interrupt check.
    assert!(late < 40_000, "the wait saw the item {late} µs late");
    assert_eq!(q.get().unwrap(), 1);
    jq.put(&2).unwrap();
    sq.put(&3).unwrap();
    assert_eq!(
        forja::wait(&[&q, &jq, &sq], Duration::ZERO).unwrap(),
        vec![1, 2]
    );
    p.join().unwrap();
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn an_interrupt_stops_the_wait() {
    let (rx, _tx) = Pipe::one_way::<u8>().unwrap();
    let q: Queue<u8> = Queue::new().unwrap();
    let raiser = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        forja::registry::request_interrupt().unwrap();
    });
    let t = Instant::now();
    let r = forja::wait(&[&rx, &q], Duration::MAX);
    assert!(matches!(r, Err(Error::Interrupted { .. })), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    raiser.join().unwrap();
    forja::registry::clear_interrupt().unwrap();
    assert!(forja::wait(&[&rx], Duration::ZERO).unwrap().is_empty());
}

fn iterating_a_pipe_ends_at_end_of_file() {
    let (rx, tx) = Pipe::one_way::<String>().unwrap();
    let p = Process::new(move || {
        for i in 0..5 {
            tx.send(&format!("m{i}")).unwrap();
        }
    });
    p.start().unwrap();
    let mut got = Vec::new();
    for msg in &rx {
        got.push(msg.unwrap());
    }
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
    p.join().unwrap();

    // A duplex end too; an error other than end of file is yielded once.
    let (a, b) = Pipe::new::<u8>().unwrap();
    b.send_bytes(&[]).unwrap(); // not a u8: a decode error
    drop(b);
    let items: Vec<_> = a.iter().collect();
    assert_eq!(items.len(), 1);
    assert!(matches!(items[0], Err(Error::Message { .. })), "{items:?}");
}

common::tests! {
    ready_pipe_ends_are_reported_by_index,
    a_message_from_a_child_wakes_the_wait,
    processes_are_ready_when_they_end,
    an_unstarted_process_is_an_error,
    a_queue_is_seen_within_a_few_milliseconds,
    an_interrupt_stops_the_wait,
    iterating_a_pipe_ends_at_end_of_file,
}
