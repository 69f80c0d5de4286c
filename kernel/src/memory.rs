//! The kernel's memory: what rust-analyzer leaves out of the standard
//! library ([`ANALYSIS_SKIP`]), giving freed memory back to the system
//! between cells ([`release`]), and dropping rust-analyzer while the
//! student is idle ([`IdleUnload`]).
//!
//! rust-analyzer (inside evcxr) allocates and frees hundreds of megabytes
//! while it loads the crate graph, primes it on a second thread and infers
//! the first cells' types. mimalloc keeps freed pages for reuse and purges
//! them only later, per thread, when that thread allocates again; pages of a
//! thread that ended (the primer) wait until another thread reclaims them.
//! So after a cell, with nothing else waiting, the session thread asks
//! mimalloc to collect everything it can ([`release`]): a few milliseconds,
//! after the reply has gone out.

use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Parts of the Rust sysroot's source rust-analyzer (inside evcxr, patch
/// 0013) is given empty, as `EVCXR_ANALYSIS_SKIP` (the kernel sets it unless
/// it is already set): the SIMD intrinsics `core::arch` includes (stdarch:
/// 8 MB of x86 source, all parsed for `core`'s name resolution), nightly's
/// `core::simd`, CPU feature detection, the backtrace symbolizer and
/// compiler-builtins (std's private machinery), and the standard library's
/// own tests and benchmarks (never part of a crate). Nothing a student's cell
/// names lives there: such a name is then unknown to completion and to the
/// types of `let`s (the cell still compiles: rustc sees the real standard
/// library). `bench/memory.py`: 645 MiB with none of it left out, 551 MiB.
pub const ANALYSIS_SKIP: &str = "/library/stdarch/:/library/portable-simd/:\
/library/std_detect/:/library/backtrace/:/library/compiler-builtins/:\
/library/coretests/:/library/alloctests/:/tests/:/benches/";

// The symbol is mimalloc's own (linked in by the global allocator, see
// lib.rs); `libmimalloc-sys` declares it only behind a feature.
unsafe extern "C" {
    fn mi_collect(force: bool);
}

/// Frees what the allocator holds but no longer uses: this thread's heap,
/// and the abandoned heaps of threads that ended. `FORJA_NO_MEMORY_RELEASE`
/// set in the kernel's environment turns it off (for `bench/memory.py`).
pub fn release() {
    if std::env::var_os("FORJA_NO_MEMORY_RELEASE").is_some() {
        return;
    }
    // SAFETY: mi_collect only walks mimalloc's own heaps; it may be called
    // from any thread at any time.
    unsafe { mi_collect(true) };
}

/// [`release`] on this thread and on every thread of rayon's global pool:
/// rust-analyzer's file loader reads the source files there, and the pages
/// of that text, freed from this thread, stay in those (idle) threads' heaps
/// until they collect (~100 MiB of a reloaded kernel held otherwise).
fn release_everywhere() {
    release();
    if std::env::var_os("FORJA_NO_MEMORY_RELEASE").is_none() {
        rayon::broadcast(|_| release());
    }
}

/// Seconds without a request after which the session drops rust-analyzer's
/// database ([`IdleUnload`]), unless `FORJA_ANALYSIS_IDLE` says otherwise.
/// `bench/memory.py --idle`: the kernel goes from ~550 to ~40 MiB, and the
/// next `let` cell or Tab pays the reload (see the README's memory section).
pub const ANALYSIS_IDLE_DEFAULT: Duration = Duration::from_secs(300);

/// How long after an unload its memory is collected (see [`IdleUnload::recv`]).
const SETTLE: Duration = Duration::from_secs(2);

/// `FORJA_ANALYSIS_IDLE` read: seconds (a decimal number, > 0), `0` or
/// `off` to never unload; unset or unreadable, [`ANALYSIS_IDLE_DEFAULT`].
pub fn analysis_idle(value: Option<&str>) -> Option<Duration> {
    let Some(value) = value.map(str::trim) else {
        return Some(ANALYSIS_IDLE_DEFAULT);
    };
    if value.eq_ignore_ascii_case("off") {
        return None;
    }
    match value.parse::<f64>().ok().map(Duration::try_from_secs_f64) {
        Some(Ok(d)) if d.is_zero() => None,
        Some(Ok(d)) => Some(d),
        _ => {
            eprintln!("forja-kernel: FORJA_ANALYSIS_IDLE={value:?} is not a number of seconds");
            Some(ANALYSIS_IDLE_DEFAULT)
        }
    }
}

/// Waits for the session's next request and, when none has come for the
/// idle time, drops rust-analyzer's database (evcxr patch 0018) once and
/// gives the memory back ([`release`]). The next `let` cell, completion or
/// inspection loads it again (cells without a `let` never do).
pub struct IdleUnload {
    after: Option<Duration>,
    /// A timer for the wait; the session thread has no runtime of its own.
    timer: Option<tokio::runtime::Runtime>,
    /// Whether a request came since the last unload.
    armed: bool,
}

impl IdleUnload {
    /// From `FORJA_ANALYSIS_IDLE` (see [`analysis_idle`]).
    pub fn from_env() -> IdleUnload {
        IdleUnload::new(analysis_idle(
            std::env::var("FORJA_ANALYSIS_IDLE").ok().as_deref(),
        ))
    }

    /// Unloads after `after` idle (`None`: never).
    fn new(after: Option<Duration>) -> IdleUnload {
        let timer = after.and_then(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok()
        });
        IdleUnload {
            after,
            timer,
            armed: true,
        }
    }

    /// The next request (`None`: the channel closed). Blocks without
    /// polling; `unload` runs on this thread when the wait passes the idle
    /// time, and says whether it freed anything.
    pub fn recv<T>(
        &mut self,
        rx: &mut UnboundedReceiver<T>,
        unload: impl FnOnce() -> bool,
    ) -> Option<T> {
        if let (true, Some(after), Some(timer)) = (self.armed, self.after, &self.timer) {
            let mut wait = |d| timer.block_on(async { tokio::time::timeout(d, rx.recv()).await });
            if let Ok(next) = wait(after) {
                return next;
            }
            self.armed = false;
            if unload() {
                // rust-analyzer hands much of what it frees to its dropper
                // threads, which free it in batches 100 ms apart: collect
                // once they are done (a cell before then collects after it).
                if let Ok(next) = wait(SETTLE) {
                    self.armed = true;
                    return next;
                }
                release_everywhere();
            }
        }
        let next = rx.blocking_recv();
        self.armed = true;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_setting_is_read() {
        assert_eq!(analysis_idle(None), Some(ANALYSIS_IDLE_DEFAULT));
        assert_eq!(analysis_idle(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(
            analysis_idle(Some(" 0.5 ")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(analysis_idle(Some("0")), None);
        assert_eq!(analysis_idle(Some("OFF")), None);
        assert_eq!(analysis_idle(Some("soon")), Some(ANALYSIS_IDLE_DEFAULT));
        assert_eq!(analysis_idle(Some("-3")), Some(ANALYSIS_IDLE_DEFAULT));
    }

    #[test]
    fn unloads_once_per_idle_spell() {
        std::thread::spawn(|| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let mut idle = IdleUnload::new(Some(Duration::from_millis(50)));
            let unloads = std::cell::Cell::new(0);
            let sender = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                tx.send(1).unwrap();
                tx.send(2).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                tx.send(3).unwrap();
            });
            let count = || {
                unloads.set(unloads.get() + 1);
                false
            };
            // Idle for 300 ms: one unload, then the request.
            assert_eq!(idle.recv(&mut rx, count), Some(1));
            assert_eq!(unloads.get(), 1);
            // The next request was already waiting: no unload.
            assert_eq!(idle.recv(&mut rx, count), Some(2));
            assert_eq!(unloads.get(), 1);
            // Requests came since: idle again, unloaded again.
            assert_eq!(idle.recv(&mut rx, count), Some(3));
            assert_eq!(unloads.get(), 2);
            sender.join().unwrap();
            // A closed channel ends the wait at once.
            assert_eq!(idle.recv(&mut rx, count), None);
            assert_eq!(unloads.get(), 2);
        })
        .join()
        .unwrap();
    }
}
