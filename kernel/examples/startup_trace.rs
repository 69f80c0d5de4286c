//! Scratch: times each phase of a forja session start and of some cells.
//! usage: startup_trace [--settings ':opt 0;:linker mold'] [--no-seed] [--no-prelude] cell...
use std::time::Instant;

fn cpu() -> String {
    fn get(who: i32) -> f64 {
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut r) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(r.ru_utime) + t(r.ru_stime)
    }
    format!(
        "[cpu self {:.2} children {:.2}]",
        get(libc::RUSAGE_SELF),
        get(libc::RUSAGE_CHILDREN)
    )
}

fn main() {
    forja_kernel::runner::install_if_runner();
    evcxr::runtime_hook();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut settings = Vec::new();
    let mut seed = true;
    let mut prelude = true;
    while let Some(a) = args.first().cloned() {
        match a.as_str() {
            "--settings" => {
                settings = args[1].split(';').map(str::to_owned).collect();
                args.drain(..2);
            }
            "--no-seed" => {
                seed = false;
                args.remove(0);
            }
            "--no-prelude" => {
                prelude = false;
                args.remove(0);
            }
            _ => break,
        }
    }
    let work = forja_kernel::paths::kernel_workdir().unwrap();
    let crate_dir = work.join("evcxr");
    unsafe { std::env::set_var("EVCXR_TMPDIR", &crate_dir) };
    let cfg = forja_kernel::paths::session_config(crate_dir.clone());
    let t = Instant::now();
    std::fs::create_dir_all(&crate_dir).unwrap();
    std::fs::copy(cfg.lockfile.as_ref().unwrap(), crate_dir.join("Cargo.lock")).unwrap();
    if seed {
        let n = forja_kernel::build_cache::seed(&cfg);
        eprint!("{} ", cpu());
        eprintln!(
            "[trace] seed {:.3}s note={:?}",
            t.elapsed().as_secs_f64(),
            n
        );
    }
    let t = Instant::now();
    let (mut ctx, _out) = evcxr::CommandContext::new().unwrap();
    eprint!("{} ", cpu());
    eprintln!(
        "[trace] CommandContext::new {:.3}s",
        t.elapsed().as_secs_f64()
    );
    for s in &settings {
        if s.is_empty() {
            continue;
        }
        let t = Instant::now();
        let r = ctx.execute(s);
        eprint!("{} ", cpu());
        eprintln!(
            "[trace] setting {s:?} {:.3}s {:?}",
            t.elapsed().as_secs_f64(),
            r.as_ref()
                .map(|o| o.get("text/plain").map(str::to_owned))
                .map_err(|e| e.to_string())
        );
    }
    if prelude {
        let dir = cfg.forja_dir.clone().unwrap();
        let t = Instant::now();
        let r = forja_kernel::build_cache::add_forja(
            &cfg,
            &mut ctx,
            &forja_kernel::session::forja_prelude(&dir),
        );
        eprint!("{} ", cpu());
        eprintln!(
            "[trace] prelude {:.3}s ok={} {:?}",
            t.elapsed().as_secs_f64(),
            r.is_ok(),
            r.as_ref().map(|o| &o.phases).map_err(|e| e.to_string())
        );
    }
    if std::env::var_os("WARM").is_some() {
        let d = forja_kernel::build_cache::warm_up(&mut ctx);
        eprint!("{} ", cpu());
        eprintln!("[trace] warm {:.3}s", d.as_secs_f64());
    }
    for c in &args {
        let t = Instant::now();
        let r = ctx.execute(c);
        let el = t.elapsed().as_secs_f64();
        match r {
            Ok(o) => {
                eprint!("{} ", cpu());
                eprintln!(
                    "[trace] cell {c:?} {el:.3}s -> {:?} phases {:?}",
                    o.get("text/plain"),
                    o.phases
                        .iter()
                        .map(|p| format!("{}={:.3}", p.name, p.duration.as_secs_f64()))
                        .collect::<Vec<_>>()
                )
            }
            Err(e) => {
                eprint!("{} ", cpu());
                eprintln!("[trace] cell {c:?} {el:.3}s ERR {e}")
            }
        }
    }
    drop(ctx);
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("[trace] kept {}", work.display());
    }
}
