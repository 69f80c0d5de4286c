//! `forja-kernel`: the Jupyter kernel binary (and evcxr's runner).

use anyhow::{Result, bail};
use forja_kernel::install::{self, Options};
use std::path::PathBuf;

const HELP: &str = "\
forja-kernel — a Jupyter kernel for Rust, with forja's process tools

USAGE:
    forja-kernel --connection-file FILE      run the kernel (Jupyter does this)
    forja-kernel install [--user | --sys-prefix | --prefix DIR] [--name NAME] [--force]
                         [--lang es|en|auto] [--env NAME=VALUE]...
        --lang: the language of the students' messages (auto, the default, follows the locale)
    forja-kernel uninstall [--user | --sys-prefix | --prefix DIR] [--name NAME] [--force]
    forja-kernel prebuild                    compile forja once for fast first cells
    forja-kernel --version | --help
";

fn main() {
    // When this binary runs as evcxr's runner, own its output first, then let
    // evcxr take over (it never returns in that case).
    forja_kernel::runner::install_if_runner();
    evcxr::runtime_hook();
    if let Err(e) = real_main() {
        eprintln!("forja-kernel: {e:#}");
        std::process::exit(2);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--connection-file") | Some("-f") => {
            let Some(file) = args.get(1) else {
                bail!("--connection-file needs a path");
            };
            forja_kernel::server::run(PathBuf::from(file))
        }
        Some(a) if a.starts_with("--connection-file=") => {
            forja_kernel::server::run(PathBuf::from(&a["--connection-file=".len()..]))
        }
        Some("install") => {
            let dir = install::install(&Options::parse(&args[1..])?)?;
            println!("installed the forja kernelspec in {}", dir.display());
            Ok(())
        }
        Some("uninstall") => {
            let dir = install::uninstall(&Options::parse(&args[1..])?)?;
            println!("removed the kernelspec {}", dir.display());
            Ok(())
        }
        Some("prebuild") => forja_kernel::prebuild::run(),
        Some("--version") | Some("-V") => {
            println!("forja-kernel {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("--help") | Some("-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown argument `{other}`\n\n{HELP}"),
    }
}
