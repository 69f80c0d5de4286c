//! Runs each test of a fork-heavy test binary in a process of its own, under
//! plain `cargo test` as under `cargo nextest`.
//!
//! Forking from a process whose other threads are running other tests is
//! unsafe (a child can inherit a lock held by a thread it does not have), and
//! forja keeps per-process state (the registry, the timeline, signal
//! handlers), so two tests must never share a process. nextest already runs
//! one process per test; under `cargo test` the binary plays nextest's part:
//! it re-runs itself as `BINARY --exact NAME --test-threads=1`, with
//! [`ONE_TEST`] set, once for each selected test, and reports what each child
//! said. Under nextest (or in such a child) the test runs directly, on the
//! main thread.
//!
//! These binaries are `harness = false` (see `forja/Cargo.toml`), so a test
//! is a plain `fn` listed in [`tests!`](crate::common::tests) at the end of
//! its file: a `#[test]` attribute there would silently drop the function.

use libtest_mimic::{Arguments, Failed, Trial};
use std::process::{Command, Stdio};

/// Set in a child started by the parent below: run the tests, do not re-run.
pub const ONE_TEST: &str = "FORJA_TEST_ONE_PROCESS";

/// One test of a binary: its name, its function, whether it is `#[ignore]`d.
pub struct Test {
    pub name: &'static str,
    pub run: fn(),
    pub ignored: bool,
}

/// The `main` of a fork-heavy test binary.
pub fn main(tests: &[Test]) -> ! {
    // The suite reads forja's messages in English, whatever the machine's
    // locale (see forja::lang).
    // SAFETY: the first thing main does: no other thread exists yet.
    unsafe { std::env::set_var("FORJA_LANG", "en") };
    let mut args = Arguments::from_args();
    let in_own_process =
        std::env::var_os("NEXTEST").is_some() || std::env::var_os(ONE_TEST).is_some();
    let trials = if in_own_process {
        // One test (nextest or our parent passed `--exact NAME`): run it on
        // the main thread, so that no other thread exists when it forks.
        args.test_threads = Some(1);
        tests
            .iter()
            .map(|t| {
                let run = t.run;
                Trial::test(t.name, move || {
                    run();
                    Ok(())
                })
                .with_ignored_flag(t.ignored)
            })
            .collect()
    } else {
        let nocapture = args.nocapture;
        tests
            .iter()
            .map(|t| {
                let name = t.name;
                Trial::test(name, move || in_a_child(name, nocapture)).with_ignored_flag(t.ignored)
            })
            .collect()
    };
    libtest_mimic::run(&args, trials).exit()
}

/// Runs test `name` in a fresh process of this binary. Its output is shown
/// only if it fails, unless `--nocapture` was given.
fn in_a_child(name: &str, nocapture: bool) -> Result<(), Failed> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this test binary: {e}"))?;
    let mut child = Command::new(exe);
    // `--include-ignored`: the parent already decided to run this test.
    child
        .args([name, "--exact", "--test-threads=1", "--include-ignored"])
        .env(ONE_TEST, "1")
        .stdin(Stdio::null());
    if nocapture {
        child.arg("--nocapture");
        let status = child
            .status()
            .map_err(|e| format!("cannot start a process for test {name}: {e}"))?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("its process ended with {status}").into())
        };
    }
    let out = child
        .output()
        .map_err(|e| format!("cannot start a process for test {name}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "its process ended with {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    )
    .into())
}

/// Lists the tests of a fork-heavy test binary and makes its `main`:
/// `common::tests! { first_test, #[ignore] slow_test, ... }`.
macro_rules! tests {
    ($($(#[$ignore:ident])? $name:ident),* $(,)?) => {
        fn main() {
            $crate::common::harness::main(&[$($crate::common::harness::Test {
                name: stringify!($name),
                run: $name,
                ignored: $crate::common::harness::tests!(@ignored $($ignore)?),
            }),*])
        }
    };
    (@ignored ignore) => { true };
    (@ignored) => { false };
}
pub(crate) use tests;
