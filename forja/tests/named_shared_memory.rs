//! Named shared memory (`forja::shared_memory`) between real processes.
//! Run with `cargo nextest run -p forja`.

mod common;

use forja::prelude::*;
use forja::shared_memory::{SharedMemory, cleanup_session};
use std::time::Duration;

fn unique(what: &str) -> String {
    format!("t-{what}-{}", std::process::id())
}

fn file_of(name: &str) -> std::path::PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    format!("/dev/shm/forja-{uid}-shm-{name}").into()
}

fn a_child_attaches_by_name_and_writes() {
    let name = unique("attach");
    let block = SharedMemory::create(&name, 4096).unwrap();
    let p = {
        let name = name.clone();
        Process::new(move || {
            let mine = SharedMemory::attach_with_size(&name, 4096).unwrap();
            let mut g = mine.lock().unwrap();
            let xs: &mut [u64] = forja::bytemuck::cast_slice_mut(&mut g[..]);
            for (i, x) in xs.iter_mut().enumerate() {
                *x = i as u64 * 3;
            }
        })
    };
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    let g = block.lock().unwrap();
    let xs: &[u64] = forja::bytemuck::cast_slice(&g[..]);
    assert_eq!(xs[511], 511 * 3);
}

fn clear_errors_for_missing_taken_and_wrong_size() {
    let name = unique("errors");
    let r = SharedMemory::attach(&name);
    assert!(
        matches!(r, Err(Error::SharedMemoryNotFound { .. })),
        "{r:?}"
    );
    let text = r.unwrap_err().to_string();
    assert!(
        text.contains(&name) && text.contains("SharedMemory::create"),
        "{text}"
    );
    let block = SharedMemory::create(&name, 10).unwrap();
    let r = SharedMemory::create(&name, 10);
    assert!(matches!(r, Err(Error::SharedMemoryExists { .. })), "{r:?}");
    let r = SharedMemory::attach_with_size(&name, 11);
    assert!(
        matches!(
            r,
            Err(Error::SharedMemorySize {
                expected: 11,
                actual: 10,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(SharedMemory::create(&unique("zero"), 0).is_err());
    assert!(SharedMemory::create("", 1).is_err());
    assert!(SharedMemory::attach("../etc").is_err());
    // A file that forja did not make is refused.
    let junk = unique("junk");
    std::fs::write(file_of(&junk), vec![7u8; 200]).unwrap();
    let r = SharedMemory::attach(&junk);
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    std::fs::remove_file(file_of(&junk)).unwrap();
    drop(block);
}

fn the_creators_handle_unlinks_and_no_one_elses_does() {
    let name = unique("owner");
    let block = SharedMemory::create(&name, 8).unwrap();
    let copy = block.clone();
    // A child holding copies of the creator's handle drops them: no unlink.
    let p = {
        let (block, name) = (block.clone(), name.clone());
        Process::new(move || {
            drop(block);
            drop(SharedMemory::attach(&name).unwrap());
        })
    };
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(file_of(&name).exists());
    drop(block);
    assert!(file_of(&name).exists(), "a clone is still alive");
    copy.lock().unwrap()[0] = 9;
    drop(copy);
    assert!(
        !file_of(&name).exists(),
        "the creator's last handle unlinks"
    );

    // Explicit unlink, Python style: the mapping stays usable.
    let block = SharedMemory::create(&name, 8).unwrap();
    let other = SharedMemory::attach(&name).unwrap();
    block.unlink().unwrap();
    assert!(!file_of(&name).exists());
    other.lock().unwrap()[1] = 5;
    assert_eq!(block.to_vec().unwrap()[1], 5);
    assert!(matches!(
        other.unlink(),
        Err(Error::SharedMemoryNotFound { .. })
    ));
}

fn cleanup_session_unlinks_what_a_killed_creator_leaked() {
    // SAFETY: one test per process, and no other thread runs yet.
    unsafe { std::env::set_var("FORJA_SHM_SESSION", format!("test{}", std::process::id())) };
    let name = unique("leak");
    let p = {
        let name = name.clone();
        Process::new(move || {
            let _block = SharedMemory::create(&name, 64).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        })
    };
    p.start().unwrap();
    assert!(common::wait_for(
        || file_of(&name).exists(),
        Duration::from_secs(10)
    ));
    p.kill().unwrap();
    p.join().unwrap();
    assert!(file_of(&name).exists(), "killed: nothing unlinked it");
    // Another session's block of the same kind is not touched.
    let theirs = unique("theirs");
    // SAFETY: as above.
    unsafe { std::env::set_var("FORJA_SHM_SESSION", format!("other{}", std::process::id())) };
    let other = SharedMemory::create(&theirs, 8).unwrap();
    // SAFETY: as above.
    unsafe { std::env::set_var("FORJA_SHM_SESSION", format!("test{}", std::process::id())) };
    assert_eq!(cleanup_session().unwrap(), 1);
    assert!(!file_of(&name).exists());
    assert!(file_of(&theirs).exists());
    assert_eq!(cleanup_session().unwrap(), 0);
    // SAFETY: as above.
    unsafe { std::env::set_var("FORJA_SHM_SESSION", format!("other{}", std::process::id())) };
    drop(other);
    assert!(!file_of(&theirs).exists());
    assert_eq!(
        cleanup_session().unwrap(),
        0,
        "the drop removed its record too"
    );
}

fn a_holder_that_dies_leaves_the_lock_to_recover() {
    let block = SharedMemory::new(4).unwrap();
    let p = {
        let block = block.clone();
        Process::new(move || {
            let mut g = block.lock().unwrap();
            g[0] = 1;
            forja::exit(3); // dies holding it
        })
    };
    p.start().unwrap();
    p.join().unwrap();
    let r = block.lock_timeout(Duration::from_secs(10));
    assert!(matches!(r, Err(Error::LockOwnerDied { .. })), "{r:?}");
    drop(r);
    let g = block.recover().unwrap();
    assert_eq!(g[0], 1);
    drop(g);
    assert_eq!(block.to_vec().unwrap(), vec![1, 0, 0, 0]);
}

common::tests! {
    a_child_attaches_by_name_and_writes,
    clear_errors_for_missing_taken_and_wrong_size,
    the_creators_handle_unlinks_and_no_one_elses_does,
    cleanup_session_unlinks_what_a_killed_creator_leaked,
    a_holder_that_dies_leaves_the_lock_to_recover,
}
