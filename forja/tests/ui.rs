//! Compile-fail tests: what the pool must refuse to compile, with rustc's
//! message pinned (`tests/compile_fail/*.stderr`). A task that captures a
//! variable could carry a pointer into memory the pool's workers do not have
//! (they were forked before it was made), so it must not compile.
//!
//! After a deliberate change of message: `TRYBUILD=overwrite cargo test -p
//! forja --test ui`, then review the new `.stderr` files.

#[test]
fn capturing_tasks_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}
