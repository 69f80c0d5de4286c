//! Turning a timeout into a deadline, the same way for every `*_timeout`
//! call: any `Duration` works, `Duration::MAX` included.

use std::time::{Duration, Instant};

/// The instant `timeout` from now, or `None` (no deadline: wait as long as
/// it takes) when that instant is too far to represent, as
/// `Duration::MAX` is. (Tested below; the public `*_timeout` methods have
/// doctests with `Duration::MAX`.)
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_duration_gives_a_deadline_or_none() {
        assert!(deadline(Duration::ZERO).is_some());
        assert!(deadline(Duration::from_secs(3600)).is_some());
        assert_eq!(deadline(Duration::MAX), None);
        assert_eq!(deadline(Duration::from_secs(u64::MAX)), None);
    }

    /// README's "Timeouts" table lists every public `*_timeout` method, so it
    /// cannot go stale.
    #[test]
    fn the_readme_lists_every_timeout_method() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Timeouts")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README.md has a Timeouts section");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut missing = Vec::new();
        let mut dirs = vec![src];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    let Some(rest) = line.trim().strip_prefix("pub fn ") else {
                        continue;
                    };
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name.ends_with("_timeout") && !section.contains(&format!("::{name}`")) {
                        missing.push(format!("{}: {name}", path.display()));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "not in README's Timeouts table: {missing:?}"
        );
    }
}
