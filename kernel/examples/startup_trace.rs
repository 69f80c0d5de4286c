//! Times each phase of a forja session start and of some cells, the way the
//! kernel runs them (same seed, same prelude), without Jupyter in between.
//! Prints wall time and the CPU used so far by this process (evcxr and its
//! rust-analyzer) and by its finished children (cargo, rustc, the linker).
//!
//! ```text
//! cargo build --release -p forja-kernel --example startup_trace
//! target/release/examples/startup_trace [--no-seed] [--no-prelude] [--warm-up] CELL...
//! ```
//!
//! `FORJA_CRATE_DIR`, `FORJA_PREBUILT` and `FORJA_LOCKFILE` work as for the
//! kernel; `KEEP=1` keeps the session's work dir for inspection.

use forja_kernel::build_cache;
use std::time::Instant;

fn cpu() -> String {
    fn secs(who: i32) -> f64 {
        // SAFETY: getrusage only writes the struct it is given.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut r) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(r.ru_utime) + t(r.ru_stime)
    }
    format!(
        "[cpu self {:5.2} children {:5.2}]",
        secs(libc::RUSAGE_SELF),
        secs(libc::RUSAGE_CHILDREN)
    )
}

fn main() {
    // This binary is also evcxr's runner, like forja-kernel.
    forja_kernel::runner::install_if_runner();
    evcxr::runtime_hook();

    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |args: &mut Vec<String>, name: &str| {
        let found = args.iter().any(|a| a == name);
        args.retain(|a| a != name);
        found
    };
    let seed = !flag(&mut args, "--no-seed");
    let prelude = !flag(&mut args, "--no-prelude");
    let warm = flag(&mut args, "--warm-up");

    let work = forja_kernel::paths::kernel_workdir().expect("creating a work dir");
    let crate_dir = work.join("evcxr");
    // SAFETY: still single-threaded.
    unsafe { std::env::set_var("EVCXR_TMPDIR", &crate_dir) };
    let config = forja_kernel::paths::session_config(crate_dir.clone());
    std::fs::create_dir_all(&crate_dir).expect("creating the crate dir");

    let t = Instant::now();
    let note = if seed {
        build_cache::start_seed(&config).finish()
    } else {
        None
    };
    println!(
        "{} seed {:.3} s{}",
        cpu(),
        t.elapsed().as_secs_f64(),
        note.map(|n| format!(" — {}", n.trim())).unwrap_or_default()
    );
    let t = Instant::now();
    let (mut ctx, outputs) = match (prelude, config.forja_dir.clone()) {
        (true, Some(dir)) => {
            build_cache::start_with_forja(&config, &dir).expect("starting evcxr with forja")
        }
        _ => evcxr::CommandContext::new().expect("starting evcxr"),
    };
    // evcxr waits for these channels to drain at the end of each cell.
    for rx in [outputs.stdout, outputs.stderr] {
        std::thread::spawn(move || while rx.recv().is_ok() {});
    }
    println!(
        "{} session start{} {:.3} s",
        cpu(),
        if prelude { " with forja" } else { "" },
        t.elapsed().as_secs_f64(),
    );
    if warm {
        let d = build_cache::warm_up(&mut ctx);
        println!("{} warm-up {:.3} s", cpu(), d.as_secs_f64());
    }
    for cell in &args {
        let t = Instant::now();
        let r = ctx.execute(cell);
        let took = t.elapsed().as_secs_f64();
        let what = match r {
            Ok(o) => {
                let phases: Vec<String> = o
                    .phases
                    .iter()
                    .map(|p| format!("{} {:.3}", p.name, p.duration.as_secs_f64()))
                    .collect();
                format!("{:?} [{}]", o.get("text/plain"), phases.join(", "))
            }
            Err(e) => format!("ERROR {e}"),
        };
        println!("{} {cell:?} {took:.3} s → {what}", cpu());
    }
    drop(ctx);
    if std::env::var_os("KEEP").is_some() {
        println!("kept {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
}
