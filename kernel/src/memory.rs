//! The kernel's memory: what rust-analyzer leaves out of the standard
//! library ([`ANALYSIS_SKIP`]), and giving freed memory back to the system
//! between cells ([`release`]).
//!
//! rust-analyzer (inside evcxr) allocates and frees hundreds of megabytes
//! while it loads the crate graph, primes it on a second thread and infers
//! the first cells' types. mimalloc keeps freed pages for reuse and purges
//! them only later, per thread, when that thread allocates again; pages of a
//! thread that ended (the primer) wait until another thread reclaims them.
//! So after a cell, with nothing else waiting, the session thread asks
//! mimalloc to collect everything it can ([`release`]): a few milliseconds,
//! after the reply has gone out.

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
