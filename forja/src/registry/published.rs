//! Publishing a per-process memfd mapping in the environment and finding it
//! again: how every copy of forja in a process (one per notebook cell) and
//! every forked child finds the registry and the timeline.
//!
//! The variable holds `pid:fd:inode`: who published it, the memfd's fd
//! (close-on-exec) and the memfd's inode. No address travels in it (see
//! `forja::link`): where the memfd is mapped is looked up in this process's
//! own table of mappings, `/proc/self/maps`, by the inode ([`Published::addr`]).
//! The mapping is only trusted while that fd is still the same memfd (same
//! inode): after an `exec` the fd is gone, so a stale variable is never
//! dereferenced. A forked child inherits the fd and the mapping.

/// What a variable published with [`publish`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// The process that published it.
    pub pid: i32,
    /// The memfd's fd.
    pub fd: i32,
    /// The memfd's inode.
    pub ino: u64,
}

impl Published {
    /// Parses the variable `env`, whether or not its fd is still the memfd.
    pub(crate) fn read(env: &str) -> Option<Published> {
        let value = std::env::var(env).ok()?;
        parse(&value)
    }

    /// The variable `env` if its fd is still the memfd it names (see the
    /// module docs), so the mapping at its address is the published one.
    pub(crate) fn find(env: &str) -> Option<Published> {
        Self::read(env).filter(Published::is_live)
    }

    /// Whether the fd is still the memfd that was published (an `exec`
    /// would have closed it: it is close-on-exec).
    pub(crate) fn is_live(&self) -> bool {
        self.ino != 0 && fd_inode(self.fd) == Some(self.ino)
    }

    /// Where this process maps the start of the memfd: the lowest mapping of
    /// its inode at offset 0 in `/proc/self/maps` (`None` if it is not mapped
    /// here, or elsewhere than on Linux).
    pub(crate) fn addr(&self) -> Option<usize> {
        #[cfg(target_os = "linux")]
        {
            let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
            mapping_of(&maps, self.ino)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Whether the fd is a memfd made with `name` (on Linux, where
    /// `/proc/self/fd` tells; elsewhere always true).
    pub(crate) fn is_memfd_named(&self, name: &str) -> bool {
        #[cfg(target_os = "linux")]
        {
            let link = std::fs::read_link(format!("/proc/self/fd/{}", self.fd)).unwrap_or_default();
            link.to_string_lossy().contains(name)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            true
        }
    }
}

fn parse(value: &str) -> Option<Published> {
    let mut parts = value.split(':');
    let pid = parts.next()?.parse().ok()?;
    let fd = parts.next()?.parse().ok()?;
    let ino = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Published { pid, fd, ino })
}

/// The start of the lowest mapping of inode `ino` at offset 0 in `maps` (the
/// text of `/proc/self/maps`: `start-end perms offset dev inode path`).
fn mapping_of(maps: &str, ino: u64) -> Option<usize> {
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let range = f.next()?;
            let _perms = f.next()?;
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let _dev = f.next()?;
            let inode: u64 = f.next()?.parse().ok()?;
            let start = usize::from_str_radix(range.split('-').next()?, 16).ok()?;
            (inode == ino && offset == 0 && start != 0).then_some(start)
        })
        .min()
}

/// Names the memfd `fd`, mapped by process `pid`, in the variable `env`.
/// Call it once the mapping is ready to be used: every copy of forja that
/// reads `env` from then on uses it.
pub(crate) fn publish(env: &str, pid: i32, fd: i32) {
    let ino = fd_inode(fd).unwrap_or(0);
    let value = format!("{pid}:{fd}:{ino}");
    // SAFETY: set once per process (or per process tree), on first use of
    // forja or right after a fork, when the child has a single thread.
    unsafe { std::env::set_var(env, value) };
}

fn fd_inode(fd: i32) -> Option<u64> {
    // SAFETY: fstat writes into a zeroed stat we own.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st.st_ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_publishes() {
        let p = parse("12:5:991").unwrap();
        assert_eq!(
            p,
            Published {
                pid: 12,
                fd: 5,
                ino: 991
            }
        );
        assert!(parse("12:5:zz").is_none());
        assert!(parse("12:5").is_none());
        // No address any more (the old form had one).
        assert!(parse("12:5:0x7f00aa000000:991").is_none());
    }

    #[test]
    fn the_address_is_found_in_the_maps_by_inode_at_offset_0() {
        let maps = "\
7f00aa001000-7f00aa002000 rw-p 00010000 00:01 991  /memfd:forja-registry (deleted)
7f00aa000000-7f00aa001000 rw-s 00000000 00:01 991  /memfd:forja-registry (deleted)
7f00bb000000-7f00bb001000 rw-s 00000000 00:01 992  /memfd:forja-timeline (deleted)
garbage line
";
        assert_eq!(mapping_of(maps, 991), Some(0x7f00_aa00_0000));
        assert_eq!(mapping_of(maps, 992), Some(0x7f00_bb00_0000));
        assert_eq!(mapping_of(maps, 5), None);
    }

    #[test]
    fn a_real_memfd_mapping_is_found_again() {
        let (fd, addr) = crate::shm::memfd_mapping(
            c"forja-published-test",
            4096,
            &crate::shm::MemfdSteps {
                make: "test memfd",
                size: "test size",
                map: "test map",
            },
        )
        .unwrap();
        let p = Published {
            pid: crate::os::pid(),
            fd,
            ino: fd_inode(fd).unwrap(),
        };
        assert!(p.is_live());
        assert_eq!(p.addr(), Some(addr));
    }
}
