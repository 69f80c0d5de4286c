//! How many CPUs: all of the machine's ([`cpu_count`], Python's
//! `multiprocessing.cpu_count`) and those this process may use
//! ([`process_cpu_count`], Python 3.13's `os.process_cpu_count`, plus cgroup
//! quotas).

use std::path::{Path, PathBuf};

/// How many CPUs the machine has online, whether or not this process may
/// use them all (Python's `multiprocessing.cpu_count()` / `os.cpu_count()`).
/// To size a pool, use [`process_cpu_count`].
///
/// ```
/// assert!(forja::cpu_count() >= forja::process_cpu_count());
/// ```
pub fn cpu_count() -> usize {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n >= 1 => n as usize,
        _ => process_cpu_count(),
    }
}

/// How many CPUs this process may use: the CPUs of its affinity mask
/// (`taskset`, `sched_setaffinity`), as Python 3.13's
/// `os.process_cpu_count()`, and — unlike Python — no more than its cgroup v2
/// CPU quota (`cpu.max`, what `docker run --cpus=2` or a Kubernetes CPU
/// limit sets), rounded up. At least 1. What [`Pool::new`](crate::Pool::new)
/// and [`Pool::builder`](crate::Pool::builder) use by default.
///
/// ```
/// let n = forja::process_cpu_count();
/// assert!(n >= 1 && n <= forja::cpu_count());
/// ```
pub fn process_cpu_count() -> usize {
    let affinity = affinity_count().unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let quota = cgroup_quota().unwrap_or(usize::MAX);
    affinity.min(quota).max(1)
}

/// CPUs in this process's affinity mask.
fn affinity_count() -> Option<usize> {
    use nix::sched::{CpuSet, sched_getaffinity};
    // An error: more CPUs than a cpu_set_t holds; let std count.
    let set = sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    let n = (0..CpuSet::count())
        .filter(|&i| set.is_set(i).unwrap_or(false))
        .count();
    (n > 0).then_some(n)
}

/// The tightest cgroup v2 `cpu.max` quota from this process's cgroup up to
/// the root, in whole CPUs rounded up; `None` without a quota (or cgroup v2).
fn cgroup_quota() -> Option<usize> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // cgroup v2 has one line, "0::/path".
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let root = Path::new("/sys/fs/cgroup");
    let mut dir: PathBuf = root.join(path.trim().trim_start_matches('/'));
    let mut best: Option<usize> = None;
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("cpu.max"))
            && let Some(cpus) = parse_cpu_max(&text)
        {
            best = Some(best.map_or(cpus, |b| b.min(cpus)));
        }
        if dir == root || !dir.pop() || !dir.starts_with(root) {
            break;
        }
    }
    best
}

/// "QUOTA PERIOD" (microseconds) as whole CPUs rounded up; `None` for
/// "max PERIOD" (no quota) or anything unexpected.
fn parse_cpu_max(text: &str) -> Option<usize> {
    let mut words = text.split_whitespace();
    let quota: u64 = words.next()?.parse().ok()?;
    let period: u64 = words.next()?.parse().ok()?;
    if period == 0 {
        return None;
    }
    Some(quota.div_ceil(period).max(1) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_lines() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("200000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("150000 100000"), Some(2));
        assert_eq!(parse_cpu_max("1000 100000"), Some(1));
        assert_eq!(parse_cpu_max("100 0"), None);
        assert_eq!(parse_cpu_max(""), None);
    }

    #[test]
    fn counts_are_consistent() {
        assert!(process_cpu_count() >= 1);
        assert!(process_cpu_count() <= cpu_count());
    }
}
