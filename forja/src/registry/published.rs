//! Finding a forja memfd mapping again without the environment: how every
//! copy of forja in a process (one per notebook cell) and every forked child
//! finds the registry and the timeline.
//!
//! A mapping is published by its memfd's *name*, `KIND:PID` (say
//! `forja-registry:1234`): the kernel shows it in `/proc/self/fd` (the fd)
//! and in `/proc/self/maps` (where it is mapped). A mapping is only trusted
//! while this process holds both an fd of that memfd (same inode) and a
//! shared mapping of it from offset 0: the fd is close-on-exec, so after an
//! `exec` nothing is found; a forked child inherits the fd and the mapping
//! at the same address. Nothing is written to the environment, so a process
//! that already runs threads never calls `setenv` (which races with every
//! `getenv` in other threads: the C library takes no lock that all readers
//! honour).

use crate::error::Result;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One mapping of a published memfd, as this process sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// The process that made it (the `PID` of its name).
    pub pid: i32,
    /// An fd of the memfd in this process.
    pub fd: i32,
    /// Where it is mapped from offset 0 (shared).
    pub addr: usize,
    /// How many bytes that mapping covers.
    pub len: usize,
    /// The memfd's inode.
    pub ino: u64,
    /// Whether a private mapping of the same memfd follows right after
    /// (the registry's [`SelfPage`](super::layout::SelfPage); a
    /// [`Remote`](super::Remote) mapping has none).
    pub private_tail: bool,
}

/// The name to give the memfd of kind `kind` made by process `pid`.
pub(crate) fn memfd_name(kind: &str, pid: i32) -> CString {
    CString::new(format!("{kind}:{pid}")).expect("no NUL in a kind")
}

/// Every mapping of a memfd of kind `kind` that this process holds an fd
/// of (see the module docs), in address order.
pub(crate) fn find_all(kind: &str) -> Vec<Published> {
    let prefix = format!("/memfd:{kind}:");
    // (fd, pid, inode) of every fd that is such a memfd.
    let mut fds: Vec<(i32, i32, u64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if let Some(pid) = pid_in_name(link.as_os_str().as_bytes(), &prefix)
            && let Some(ino) = fd_inode(fd)
        {
            fds.push((fd, pid, ino));
        }
    }
    if fds.is_empty() {
        return Vec::new();
    }
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let lines: Vec<MapLine> = maps.lines().filter_map(parse_map_line).collect();
    let mut found = Vec::new();
    for (i, m) in lines.iter().enumerate() {
        if !m.shared || m.offset != 0 {
            continue;
        }
        let Some(&(fd, pid, ino)) = fds.iter().find(|f| f.2 == m.inode) else {
            continue;
        };
        let private_tail = lines.get(i + 1).is_some_and(|n| {
            n.start == m.end && n.inode == m.inode && !n.shared && n.offset == m.end - m.start
        });
        found.push(Published {
            pid,
            fd,
            addr: m.start,
            len: m.end - m.start,
            ino,
            private_tail,
        });
    }
    found
}

/// `PID` from a `/proc/self/fd` link `/memfd:KIND:PID (deleted)`.
fn pid_in_name(link: &[u8], prefix: &str) -> Option<i32> {
    let rest = link.strip_prefix(prefix.as_bytes())?;
    let rest = rest.strip_suffix(b" (deleted)").unwrap_or(rest);
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// This process's own mapping of `kind` if it made one, else the newest
/// inherited one (by inode).
pub(crate) fn newest(kind: &str) -> Option<Published> {
    let me = crate::os::pid();
    find_all(kind)
        .into_iter()
        .max_by_key(|p| (p.pid == me, p.ino))
}

/// A mapping one process tree shares (the timeline's ring, the wait table):
/// the first process that needs it makes it, forked children inherit it, and
/// each copy of forja finds it once with its `find` and caches the address.
pub(crate) struct TreeMapping {
    cached: AtomicUsize,
    create_lock: Mutex<()>,
}

impl TreeMapping {
    pub(crate) const fn new() -> TreeMapping {
        TreeMapping {
            cached: AtomicUsize::new(0),
            create_lock: Mutex::new(()),
        }
    }

    /// Its address, if this process has it (inherited or its own).
    #[inline]
    pub(crate) fn existing(&self, find: impl FnOnce() -> Result<Option<usize>>) -> Option<usize> {
        match self.cached.load(Ordering::Acquire) {
            0 => self.existing_slow(find),
            cached => Some(cached),
        }
    }

    #[cold]
    fn existing_slow(&self, find: impl FnOnce() -> Result<Option<usize>>) -> Option<usize> {
        let addr = find().ok().flatten()?;
        self.cached.store(addr, Ordering::Release);
        Some(addr)
    }

    /// Its address, made now by `create` if there is none (this process
    /// becomes its root): under a lock, so one thread makes it.
    pub(crate) fn current(
        &self,
        find: impl Fn() -> Result<Option<usize>>,
        create: impl FnOnce() -> Result<usize>,
    ) -> Result<usize> {
        if let Some(addr) = self.existing(&find) {
            return Ok(addr);
        }
        let _guard = self.create_lock.lock().unwrap_or_else(|e| e.into_inner());
        let addr = match find()? {
            Some(addr) => addr,
            None => create()?,
        };
        self.cached.store(addr, Ordering::Release);
        Ok(addr)
    }
}

/// One line of `/proc/self/maps`, the fields forja needs.
#[derive(Debug, PartialEq, Eq)]
struct MapLine {
    start: usize,
    end: usize,
    shared: bool,
    offset: usize,
    inode: u64,
}

fn parse_map_line(line: &str) -> Option<MapLine> {
    let mut f = line.split_ascii_whitespace();
    let (start, end) = f.next()?.split_once('-')?;
    let perms = f.next()?;
    let offset = f.next()?;
    let _dev = f.next()?;
    let inode = f.next()?.parse().ok()?;
    Some(MapLine {
        start: usize::from_str_radix(start, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
        shared: perms.as_bytes().get(3) == Some(&b's'),
        offset: usize::from_str_radix(offset, 16).ok()?,
        inode,
    })
}

/// Where this process maps the memfd of kind `kind` with inode `ino`:
/// shared, from offset 0, at least `min_len` bytes. Unlike [`find_all`] it
/// needs no fd: a forked child that made its own registry closed its
/// parent's registry fd but keeps the inherited mapping. The name is checked
/// too, so a mapped file elsewhere with the same inode number never matches.
pub(crate) fn mapping_of_inode(kind: &str, ino: u64, min_len: usize) -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let name = format!("/memfd:{kind}:");
    maps.lines()
        .filter(|line| line.contains(&name))
        .filter_map(parse_map_line)
        .find(|m| m.inode == ino && m.shared && m.offset == 0 && m.end - m.start >= min_len)
        .map(|m| m.start)
}

/// The inode of the file open as `fd`.
pub(crate) fn fd_inode(fd: i32) -> Option<u64> {
    // SAFETY: `fd` stays open while the borrow lives (this thread does not
    // close it; another thread closing a forja memfd would be a bug anyway,
    // and fstat of a closed or reused fd only answers EBADF or another inode).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::sys::stat::fstat(fd).ok().map(|st| st.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_maps_lines() {
        assert_eq!(
            pid_in_name(
                b"/memfd:forja-registry:12 (deleted)",
                "/memfd:forja-registry:"
            ),
            Some(12)
        );
        assert_eq!(
            pid_in_name(
                b"/memfd:forja-timeline:12 (deleted)",
                "/memfd:forja-registry:"
            ),
            None
        );
        assert_eq!(
            pid_in_name(b"/memfd:forja-registry:x", "/memfd:forja-registry:"),
            None
        );
        assert_eq!(
            parse_map_line(
                "7f00aa000000-7f00aa010000 rw-s 00000000 00:01 991   /memfd:forja-registry:12 (deleted)"
            ),
            Some(MapLine {
                start: 0x7f00_aa00_0000,
                end: 0x7f00_aa01_0000,
                shared: true,
                offset: 0,
                inode: 991
            })
        );
        assert!(parse_map_line("garbage").is_none());
    }

    #[test]
    fn finds_a_fresh_memfd_mapping() {
        let name = memfd_name("forja-test-published", crate::os::pid());
        let steps = crate::shm::MemfdSteps {
            make: "m",
            size: "s",
            map: "p",
        };
        let (fd, addr) = crate::shm::memfd_mapping(&name, 4096, &steps).unwrap();
        let all = find_all("forja-test-published");
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(
            (all[0].fd, all[0].addr, all[0].pid),
            (fd, addr, crate::os::pid())
        );
        assert!(!all[0].private_tail);
    }
}
