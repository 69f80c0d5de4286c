//! The bitmap of forja pipe ends open in this process (fds below
//! [`MAX_TRACKED_FD`]): a forked child closes the ends it did not take.

use super::MAX_TRACKED_FD;
use super::mapping::Registry;
use std::sync::atomic::Ordering;

impl Registry {
    /// Records that `fd` is a forja pipe end of this process.
    pub(crate) fn register_end(&self, fd: i32) {
        if let Some((word, bit)) = end_bit(fd) {
            self.header.ends[word].fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// `fd` is no longer a forja pipe end here.
    pub(crate) fn unregister_end(&self, fd: i32) {
        if let Some((word, bit)) = end_bit(fd) {
            self.header.ends[word].fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// The forja pipe ends open in this process now.
    pub(crate) fn ends(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for (w, word) in self.header.ends.iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                out.push((w * 64 + b) as i32);
                bits &= bits - 1;
            }
        }
        out
    }
}

fn end_bit(fd: i32) -> Option<(usize, u64)> {
    let fd = usize::try_from(fd).ok()?;
    (fd < MAX_TRACKED_FD).then(|| (fd / 64, 1u64 << (fd % 64)))
}

#[cfg(test)]
mod tests {
    use super::end_bit;

    #[test]
    fn only_fds_below_the_limit_have_a_bit() {
        assert_eq!(end_bit(0), Some((0, 1)));
        assert_eq!(end_bit(65), Some((1, 2)));
        assert_eq!(end_bit(-1), None);
        assert_eq!(end_bit(super::MAX_TRACKED_FD as i32), None);
    }
}
