//! Compiles a cell by running the rustc command cargo last used for the
//! session's crate, skipping cargo, while nothing but the cell's code changed.
//!
//! A cell changes only `src/lib.rs`, yet each `cargo build` re-checks every
//! dependency's freshness before running rustc (~35 ms with forja's 25
//! dependencies, a quarter of a trivial cell). When evcxr does run cargo, it
//! names its own binary as cargo's `RUSTC_WORKSPACE_WRAPPER` (only the
//! session's crate goes through it, so dependencies' fingerprints are
//! untouched); that binary records the rustc invocation ([`record_and_run_rustc`])
//! and becomes rustc. The invocation is kept with a [`key`] of everything that
//! could change it; while the key holds, the next cell runs that rustc
//! directly ([`FastRustc::run`]). Anything unexpected (no library produced, a
//! failure with no error in the cell's own code) falls back to cargo; errors
//! in the cell are reported as cargo's would be.
//!
//! A forja patch, not upstream evcxr (see `FORJA_PATCHES.md`).

use super::CRATE_NAME;
use super::errors_from_cargo_output;
use super::shared_object_name_from_crate_name;
use crate::code_block::CodeBlock;
use crate::errors::Error;
use crate::eval_context::Config;
use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

/// The environment variable that makes evcxr's subprocess binary, run by
/// cargo as `RUSTC_WORKSPACE_WRAPPER`, record the rustc invocation for the
/// session's crate into the file it names, then become that rustc.
pub(crate) const RECORD_RUSTC_ENV: &str = "EVCXR_RECORD_RUSTC";
const RECORD_FILE: &str = ".evcxr-rustc-invocation.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct RustcInvocation {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: String,
}

/// How cargo last compiled the session's crate, and the key it holds for.
pub(crate) struct FastRustc {
    pub(crate) key: u64,
    invocation: RustcInvocation,
    stamps: Stamps,
}

/// Set (to anything) in the kernel's environment, turns the fast path off:
/// every cell goes through cargo, as upstream.
pub(crate) const NO_FAST_RUSTC_ENV: &str = "EVCXR_NO_FAST_RUSTC";

/// The key of a cargo build, or None when the session uses something a
/// direct rustc run would skip (another linker, sccache, evcxr's rustc cache,
/// time-passes, another codegen backend, a `RUSTC_WRAPPER`) or
/// [`NO_FAST_RUSTC_ENV`] is set.
///
/// The key covers every input of the compile that cargo reads before running
/// rustc: the cargo command and the environment it inherits (`:env` sets the
/// kernel's own), `Cargo.toml`, `Cargo.lock` and every cargo config file cargo
/// would read. What cargo reads from rustc itself and from path dependencies'
/// sources is checked by [`FastRustc::run`] against [`Stamps`].
pub(crate) fn key(command: &Command, config: &Config) -> Option<u64> {
    use std::hash::Hash;
    use std::hash::Hasher;
    if config.linker != "system"
        || config.sccache.is_some()
        || config.cache_bytes() > 0
        || config.time_passes
        || config.codegen_backend.is_some()
        || !config.allow_static_linking
        || std::env::var_os(NO_FAST_RUSTC_ENV).is_some()
        || wrapped_rustc(command)
    {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    command.get_program().hash(&mut h);
    for arg in command.get_args() {
        arg.hash(&mut h);
    }
    let mut envs: Vec<_> = command.get_envs().collect();
    envs.sort();
    envs.hash(&mut h);
    let mut inherited: Vec<_> = std::env::vars_os().collect();
    inherited.sort();
    inherited.hash(&mut h);
    command.get_current_dir().hash(&mut h);
    let dir = config.crate_dir();
    let mut files = vec![dir.join("Cargo.toml"), dir.join("Cargo.lock")];
    // Cargo reads .cargo/config{,.toml} in the crate dir and every ancestor,
    // then in CARGO_HOME.
    let cargo_home = cargo_home(|name| std::env::var_os(name));
    let config_dirs = dir.ancestors().map(|d| d.join(".cargo")).chain(cargo_home);
    for config_dir in config_dirs {
        files.push(config_dir.join("config"));
        files.push(config_dir.join("config.toml"));
    }
    for file in files {
        file.hash(&mut h);
        fs::read(&file).ok().hash(&mut h);
    }
    Some(h.finish())
}

/// Whether cargo would run rustc through a `RUSTC_WRAPPER` (set by evcxr or
/// inherited from the kernel's environment): the recorded invocation starts
/// at rustc, so a direct run would skip the wrapper.
fn wrapped_rustc(command: &Command) -> bool {
    let set = command
        .get_envs()
        .find(|(k, _)| *k == "RUSTC_WRAPPER")
        .map(|(_, v)| v.map(OsString::from))
        .unwrap_or_else(|| std::env::var_os("RUSTC_WRAPPER"));
    set.is_some_and(|v| !v.is_empty())
}

/// Cargo's home directory, given how to read an environment variable.
fn cargo_home(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cargo")))
}

/// What a cargo build checks besides the key's inputs, taken when cargo
/// compiled the session's crate: the rustc it ran (a new toolchain makes cargo
/// rebuild everything) and the sources and manifests of path dependencies
/// (cargo rebuilds a path dependency whose sources changed, then every crate
/// using it).
#[derive(PartialEq, Eq)]
struct Stamps {
    files: Vec<(PathBuf, Option<(u64, i64, i64, u64)>)>,
}

impl Stamps {
    fn of(paths: Vec<PathBuf>) -> Stamps {
        use std::os::unix::fs::MetadataExt;
        let files = paths
            .into_iter()
            .map(|path| {
                let stamp = fs::metadata(&path)
                    .ok()
                    .map(|m| (m.len(), m.mtime(), m.mtime_nsec(), m.ino()));
                (path, stamp)
            })
            .collect();
        Stamps { files }
    }

    fn now(&self) -> Stamps {
        Stamps::of(self.files.iter().map(|(path, _)| path.clone()).collect())
    }

    /// The files of `invocation` to stamp: its rustc (found through its PATH,
    /// and the toolchain's own rustc when that is rustup's proxy), and every
    /// source file listed in the dep-info (`.d`) files of its dependency
    /// directories, except registry and vendored packages' (cargo never
    /// re-checks them) and the session crate's own (which each cell rewrites).
    fn files_of(invocation: &RustcInvocation) -> Vec<PathBuf> {
        let env = |name: &str| {
            invocation
                .env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut files = Vec::new();
        let program = Path::new(&invocation.program);
        if program.components().count() > 1 {
            files.push(Path::new(&invocation.dir).join(program));
        } else if let Some(path) = env("PATH") {
            files.extend(
                std::env::split_paths(path)
                    .map(|dir| dir.join(program))
                    .find(|candidate| candidate.is_file()),
            );
        }
        if let (Some(home), Some(toolchain)) = (env("RUSTUP_HOME"), env("RUSTUP_TOOLCHAIN")) {
            files.push(
                Path::new(home)
                    .join("toolchains")
                    .join(toolchain)
                    .join("bin")
                    .join("rustc"),
            );
        }
        let registry = cargo_home(|name| env(name).map(OsString::from)).map(|h| h.join("registry"));
        let own_dir = Path::new(&invocation.dir);
        let dep_dirs = invocation
            .args
            .windows(2)
            .filter(|w| w[0] == "-L")
            .filter_map(|w| w[1].strip_prefix("dependency="));
        let mut sources = std::collections::BTreeSet::new();
        // Each source's package root (the nearest directory with a
        // Cargo.toml), or None for a registry or vendored package, whose
        // sources cargo never re-checks either.
        let mut packages: std::collections::HashMap<PathBuf, Option<PathBuf>> = Default::default();
        let mut package_of = |source: &Path| -> Option<PathBuf> {
            let dir = source.parent()?;
            packages
                .entry(dir.to_owned())
                .or_insert_with(|| {
                    let root = dir.ancestors().find(|d| d.join("Cargo.toml").is_file())?;
                    let immutable = root.join(".cargo-checksum.json").exists()
                        || root.join(".cargo-ok").exists();
                    (!immutable).then(|| root.to_owned())
                })
                .clone()
        };
        for dep_dir in dep_dirs {
            let Ok(entries) = fs::read_dir(dep_dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|ext| ext != "d") {
                    continue;
                }
                let Ok(text) = fs::read_to_string(&path) else {
                    continue;
                };
                // Each source is also listed alone, as `path:`.
                for line in text.lines() {
                    let Some(source) = line.strip_suffix(':') else {
                        continue;
                    };
                    let source = Path::new(source);
                    if source.starts_with(own_dir)
                        || registry.as_ref().is_some_and(|r| source.starts_with(r))
                    {
                        continue;
                    }
                    // Its package's manifest too (a new version, features...).
                    if let Some(package) = package_of(source) {
                        sources.insert(package.join("Cargo.toml"));
                        sources.insert(source.to_owned());
                    }
                }
            }
        }
        files.extend(sources);
        files
    }
}

/// Makes the cargo `command` record how it compiles the session's crate;
/// returns the file the record goes to, for [`FastRustc::recorded`].
pub(crate) fn record_with(command: &mut Command, config: &Config) -> PathBuf {
    let record = config.crate_dir().join(RECORD_FILE);
    let _ = fs::remove_file(&record);
    command
        .env("RUSTC_WORKSPACE_WRAPPER", &config.subprocess_path)
        .env(RECORD_RUSTC_ENV, &record);
    record
}

impl FastRustc {
    /// The invocation recorded in `record` by a cargo build, if any.
    pub(crate) fn recorded(key: u64, record: &Path) -> Option<FastRustc> {
        let json = fs::read(record).ok()?;
        let invocation = serde_json::from_slice(&json).ok()?;
        let stamps = Stamps::of(Stamps::files_of(&invocation));
        Some(FastRustc {
            key,
            invocation,
            stamps,
        })
    }

    /// Runs the recorded rustc invocation: the library it built, or Ok(None)
    /// to fall back to cargo.
    pub(crate) fn run(&self, code_block: &CodeBlock) -> Result<Option<PathBuf>, Error> {
        if self.stamps.now() != self.stamps {
            return Ok(None);
        }
        let fast = &self.invocation;
        let out_dir = fast
            .args
            .windows(2)
            .find(|w| w[0] == "--out-dir")
            .map(|w| PathBuf::from(&w[1]));
        let Some(out_dir) = out_dir else {
            return Ok(None);
        };
        let so = out_dir.join(shared_object_name_from_crate_name(CRATE_NAME));
        let _ = fs::remove_file(&so);
        let Ok(output) = Command::new(&fast.program)
            .args(&fast.args)
            .env_clear()
            .envs(fast.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&fast.dir)
            .output()
        else {
            return Ok(None);
        };
        if output.status.success() {
            return Ok(so.exists().then_some(so));
        }
        // Errors in the cell's own code are reported as cargo would; anything
        // else (a dependency gone from the target dir or built anew...) is
        // cargo's to sort out.
        let deps_missing = fast
            .args
            .windows(2)
            .filter(|w| w[0] == "--extern")
            .filter_map(|w| w[1].split_once('=').map(|(_, path)| path))
            .any(|path| !Path::new(path).exists());
        let (errors, _) = errors_from_cargo_output(&output, code_block);
        let loading_failed = errors.iter().any(|e| {
            matches!(
                e.code(),
                Some("E0460" | "E0461" | "E0462" | "E0463" | "E0464" | "E0514" | "E0519" | "E0523")
            ) || e.message().starts_with("extern location for")
        });
        if !deps_missing && !loading_failed && errors.iter().any(|e| e.is_from_user_code()) {
            Err(Error::CompilationErrors(errors))
        } else {
            Ok(None)
        }
    }
}

/// Runs as cargo's `RUSTC_WORKSPACE_WRAPPER` (`wrapper rustc ARGS...`):
/// records the invocation if it compiles the session's crate, then execs rustc.
pub(crate) fn record_and_run_rustc(record: OsString) -> ! {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os().skip(1);
    let Some(rustc) = args.next() else {
        eprintln!("evcxr: the rustc wrapper was run without a rustc");
        std::process::exit(1);
    };
    let args: Vec<OsString> = args.collect();
    let compiles_ctx = args
        .windows(2)
        .any(|w| w[0] == "--crate-name" && w[1] == CRATE_NAME);
    if compiles_ctx {
        let strings = |v: &[OsString]| -> Option<Vec<String>> {
            v.iter().map(|a| a.to_str().map(str::to_owned)).collect()
        };
        let env: Option<Vec<(String, String)>> = std::env::vars_os()
            .filter(|(k, _)| {
                // The jobserver's fds are cargo's; the wrapper is for cargo.
                !matches!(
                    k.to_str(),
                    Some("CARGO_MAKEFLAGS" | "MAKEFLAGS" | "MFLAGS" | "RUSTC_WORKSPACE_WRAPPER")
                ) && k != RECORD_RUSTC_ENV
            })
            .map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let invocation = (|| {
            Some(RustcInvocation {
                program: rustc.to_str()?.to_owned(),
                args: strings(&args)?,
                env: env?,
                dir: std::env::current_dir().ok()?.to_str()?.to_owned(),
            })
        })();
        if let Some(invocation) = invocation
            && let Ok(json) = serde_json::to_vec(&invocation)
        {
            let _ = fs::write(&record, json);
        }
    }
    let error = Command::new(&rustc).args(&args).exec();
    eprintln!("evcxr: could not run {rustc:?}: {error}");
    std::process::exit(1);
}
