//! Pipes between real processes. Run with `cargo nextest run -p forja`.

use forja::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: f64,
    y: f64,
    label: String,
}

fn duplex_round_trip_with_a_child() {
    let (here, there) = Pipe::new::<Point>().unwrap();
    let p = Process::new(move || {
        while let Ok(mut pt) = there.recv() {
            pt.x *= 2.0;
            pt.label.push('!');
            there.send(&pt).unwrap();
        }
    });
    p.start().unwrap();
    for i in 0..100 {
        let pt = Point {
            x: i as f64,
            y: -1.0,
            label: format!("p{i}"),
        };
        here.send(&pt).unwrap();
        let back = here.recv().unwrap();
        assert_eq!(back.x, 2.0 * i as f64);
        assert_eq!(back.label, format!("p{i}!"));
    }
    drop(here); // the child sees end of file and exits
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

fn one_way_keeps_order_of_many_messages() {
    let (rx, tx) = Pipe::one_way::<u32>().unwrap();
    let p = Process::new(move || {
        for i in 0..20_000u32 {
            tx.send(&i).unwrap();
        }
    });
    p.start().unwrap();
    let mut expected = 0;
    loop {
        match rx.recv() {
            Ok(v) => {
                assert_eq!(v, expected);
                expected += 1;
            }
            Err(Error::Eof { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(expected, 20_000);
    p.join().unwrap();
}

fn eof_once_the_writer_moved_into_a_child_is_gone_without_manual_close() {
    let (rx, tx) = Pipe::one_way::<String>().unwrap();
    let p = Process::new(move || tx.send(&"only one".to_string()).unwrap());
    p.start().unwrap();
    // start() dropped the parent's copy of `tx`: no close() needed here.
    assert_eq!(rx.recv().unwrap(), "only one");
    assert!(matches!(rx.recv(), Err(Error::Eof { .. })));
    p.join().unwrap();
}

fn eof_after_the_writer_child_is_killed() {
    let (here, there) = Pipe::new::<u8>().unwrap();
    let p = Process::new(move || {
        there.send(&1).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    p.start().unwrap();
    assert_eq!(here.recv().unwrap(), 1);
    p.kill().unwrap();
    let start = Instant::now();
    let e = here.recv().unwrap_err();
    assert!(matches!(e, Error::Eof { .. }), "{e}");
    assert!(e.to_string().contains("end of file"));
    assert!(start.elapsed() < Duration::from_secs(10));
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-9));
}

fn ten_megabyte_messages_both_ways() {
    let (here, there) = Pipe::new::<Vec<u8>>().unwrap();
    let p = Process::new(move || {
        let got = there.recv().unwrap();
        let reversed: Vec<u8> = got.into_iter().rev().collect();
        there.send(&reversed).unwrap();
    });
    p.start().unwrap();
    let big: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
    here.send(&big).unwrap();
    let back = here.recv().unwrap();
    p.join().unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back.iter().rev().eq(big.iter()));
}

fn large_messages_mixed_with_small_ones_stay_framed() {
    let (rx, tx) = Pipe::one_way::<Vec<u64>>().unwrap();
    let p = Process::new(move || {
        for n in [0usize, 1, 100_000, 3, 500_000, 7] {
            tx.send(&(0..n as u64).collect()).unwrap();
        }
    });
    p.start().unwrap();
    for n in [0usize, 1, 100_000, 3, 500_000, 7] {
        let v = rx.recv().unwrap();
        assert_eq!(v.len(), n);
        assert_eq!(v.iter().sum::<u64>(), (0..n as u64).sum::<u64>());
    }
    assert!(matches!(rx.recv(), Err(Error::Eof { .. })));
    p.join().unwrap();
}

fn recv_timeout_and_poll() {
    let (a, b) = Pipe::new::<i32>().unwrap();
    assert!(!a.poll(Duration::ZERO).unwrap());
    let e = a.recv_timeout(Duration::from_millis(30)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    let p = Process::new(move || {
        std::thread::sleep(Duration::from_millis(50));
        b.send(&9).unwrap();
    });
    p.start().unwrap();
    assert!(a.poll(Duration::from_secs(10)).unwrap());
    assert_eq!(a.recv_timeout(Duration::from_secs(10)).unwrap(), 9);
    p.join().unwrap();
    // End of file also counts as "something to receive".
    assert!(a.poll(Duration::from_secs(10)).unwrap());
    assert!(matches!(a.recv(), Err(Error::Eof { .. })));
}

fn bytes_travel_raw() {
    let (rx, tx) = Pipe::one_way::<()>().unwrap();
    tx.send_bytes(b"").unwrap();
    tx.send_bytes(&[0, 255, 10]).unwrap();
    assert_eq!(rx.recv_bytes().unwrap(), b"");
    assert_eq!(rx.recv_bytes().unwrap(), vec![0, 255, 10]);
}

fn sending_to_a_closed_pipe_is_broken_pipe() {
    let (a, b) = Pipe::new::<u8>().unwrap();
    b.close();
    let e = a.send(&1).unwrap_err();
    assert!(matches!(e, Error::BrokenPipe { .. }), "{e}");
    let (rx, tx) = Pipe::one_way::<u8>().unwrap();
    drop(rx);
    assert!(matches!(tx.send(&1), Err(Error::BrokenPipe { .. })));
}

fn a_wrong_message_type_is_a_decode_error() {
    let (rx, tx) = Pipe::one_way::<String>().unwrap();
    tx.send_bytes(&[0xff, 0xff, 0xff]).unwrap();
    let e = rx.recv().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Message {
                action: "decode",
                ..
            }
        ),
        "{e}"
    );
    // The bad message was consumed; the pipe still works.
    tx.send(&"ok".to_string()).unwrap();
    assert_eq!(rx.recv().unwrap(), "ok");
}

fn interrupt_stops_a_blocked_recv() {
    let (rx, _tx) = Pipe::one_way::<u8>().unwrap();
    let t = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        forja::registry::request_interrupt().unwrap();
    });
    let start = Instant::now();
    let e = rx.recv().unwrap_err();
    assert!(matches!(e, Error::Interrupted { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(10));
    t.join().unwrap();
    forja::registry::clear_interrupt().unwrap();
}

fn ends_are_close_on_exec() {
    use std::os::fd::AsRawFd;
    let (a, b) = Pipe::new::<u8>().unwrap();
    let (rx, tx) = Pipe::one_way::<u8>().unwrap();
    for fd in [a.as_raw_fd(), b.as_raw_fd(), rx.as_raw_fd(), tx.as_raw_fd()] {
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(flags & libc::FD_CLOEXEC != 0);
    }
}

fn many_children_write_through_cloned_senders() {
    let (rx, tx) = Pipe::one_way::<(u32, u32)>().unwrap();
    let writers: Vec<Process> = (0..4u32)
        .map(|id| {
            let tx = tx.try_clone().unwrap();
            Process::new(move || {
                for i in 0..1000u32 {
                    tx.send(&(id, i)).unwrap();
                }
            })
        })
        .collect();
    for w in &writers {
        w.start().unwrap();
    }
    // Every clone went into a child; drop the original so EOF can come.
    drop(tx);
    let mut last = [None::<u32>; 4];
    let mut count = 0;
    loop {
        match rx.recv() {
            Ok((id, i)) => {
                // Small messages from several writers stay whole, and each
                // writer's messages arrive in its order.
                assert!(last[id as usize].is_none_or(|l| l + 1 == i));
                last[id as usize] = Some(i);
                count += 1;
            }
            Err(Error::Eof { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(count, 4000);
    for w in &writers {
        w.join().unwrap();
    }
}

fn a_cloned_duplex_end_talks_to_the_same_peer() {
    let (a, b) = Pipe::new::<i32>().unwrap();
    let b2 = b.try_clone().unwrap();
    a.send(&1).unwrap();
    assert_eq!(b2.recv().unwrap(), 1);
    b.send(&2).unwrap();
    assert_eq!(a.recv().unwrap(), 2);
    drop(b);
    b2.send(&3).unwrap();
    assert_eq!(a.recv().unwrap(), 3);
    drop(b2);
    assert!(matches!(a.recv(), Err(Error::Eof { .. })));
}

fn child_sees_eof_when_the_parent_drops_the_sender_it_kept() {
    // The child inherits every fd at the fork; forja closes in the child the
    // pipe ends its closure did not take, so this cannot hang.
    let (rx, tx) = Pipe::one_way::<u32>().unwrap();
    let (done_rx, done_tx) = Pipe::one_way::<u32>().unwrap();
    let p = Process::new(move || {
        let mut n = 0;
        while rx.recv().is_ok() {
            n += 1;
        }
        done_tx.send(&n).unwrap();
    });
    p.start().unwrap();
    for i in 0..10 {
        tx.send(&i).unwrap();
    }
    drop(tx);
    assert_eq!(done_rx.recv_timeout(Duration::from_secs(30)).unwrap(), 10);
    p.join().unwrap();
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    duplex_round_trip_with_a_child,
    one_way_keeps_order_of_many_messages,
    eof_once_the_writer_moved_into_a_child_is_gone_without_manual_close,
    eof_after_the_writer_child_is_killed,
    ten_megabyte_messages_both_ways,
    large_messages_mixed_with_small_ones_stay_framed,
    recv_timeout_and_poll,
    bytes_travel_raw,
    sending_to_a_closed_pipe_is_broken_pipe,
    a_wrong_message_type_is_a_decode_error,
    interrupt_stops_a_blocked_recv,
    ends_are_close_on_exec,
    many_children_write_through_cloned_senders,
    a_cloned_duplex_end_talks_to_the_same_peer,
    child_sees_eof_when_the_parent_drops_the_sender_it_kept,
}
