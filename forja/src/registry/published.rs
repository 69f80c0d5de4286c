//! Publishing a per-process memfd mapping in the environment and finding it
//! again: how every copy of forja in a process (one per notebook cell) and
//! every forked child finds the registry and the timeline.
//!
//! The variable holds `pid:fd:address:inode`: who published it, the memfd's
//! fd (close-on-exec), where it is mapped and the memfd's inode. The mapping
//! is only trusted while that fd is still the same memfd (same inode): after
//! an `exec` the fd is gone, so a stale variable is never dereferenced. A
//! forked child inherits the fd and the mapping at the same address.

/// What a variable published with [`publish`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// The process that published it.
    pub pid: i32,
    /// The memfd's fd.
    pub fd: i32,
    /// Where it is mapped.
    pub addr: usize,
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

    /// Whether the fd is still the memfd that was mapped at the address (an
    /// `exec` would have closed it: it is close-on-exec).
    pub(crate) fn is_live(&self) -> bool {
        self.addr != 0 && fd_inode(self.fd) == Some(self.ino)
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
    let addr = usize::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
    let ino = parts.next()?.parse().ok()?;
    Some(Published { pid, fd, addr, ino })
}

/// Names the memfd `fd`, mapped at `addr` by process `pid`, in the variable
/// `env`. Call it once the mapping is ready to be used: every copy of forja
/// that reads `env` from then on uses it.
pub(crate) fn publish(env: &str, pid: i32, fd: i32, addr: usize) {
    let ino = fd_inode(fd).unwrap_or(0);
    let value = format!("{pid}:{fd}:{addr:#x}:{ino}");
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
        let p = parse("12:5:0x7f00aa000000:991").unwrap();
        assert_eq!(
            p,
            Published {
                pid: 12,
                fd: 5,
                addr: 0x7f00_aa00_0000,
                ino: 991
            }
        );
        assert!(parse("12:5:zz:1").is_none());
        assert!(parse("12:5").is_none());
    }
}
