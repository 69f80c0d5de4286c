//! `forja-kernel install` / `uninstall`: the Jupyter kernelspec.

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where a kernelspec goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The user's Jupyter data dir (`~/.local/share/jupyter`).
    User,
    /// The active Python environment (`$VIRTUAL_ENV` or `sys.prefix`).
    SysPrefix,
    /// `DIR/share/jupyter`.
    Prefix(PathBuf),
}

/// Parsed `install`/`uninstall` options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where.
    pub location: Location,
    /// Kernelspec name (default `forja`).
    pub name: String,
    /// Replace a kernelspec that is not forja's.
    pub force: bool,
    /// Environment variables for the kernel (`--env NAME=VALUE`, repeatable),
    /// written to `kernel.json`'s `env`: e.g. `FORJA_CRATE_DIR`,
    /// `FORJA_PREBUILT` and a `PATH` with a shared toolchain on a JupyterHub.
    pub env: Vec<(String, String)>,
}

impl Options {
    /// Parses `[--user | --sys-prefix | --prefix DIR] [--name NAME] [--force]
    /// [--lang es|en|auto] [--env NAME=VALUE]...`.
    ///
    /// `--lang es` or `en` writes `FORJA_LANG` into the kernelspec's `env`,
    /// so the student's messages are in that language whatever the server's
    /// locale (a hub whose locale is `C.UTF-8` gets Spanish this way);
    /// `auto`, the default, writes nothing and the kernel follows the
    /// locale it is started with (see `forja::lang`).
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options {
            location: Location::User,
            name: "forja".into(),
            force: false,
            env: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--user" => o.location = Location::User,
                "--sys-prefix" => o.location = Location::SysPrefix,
                "--prefix" => {
                    let dir = it.next().context("--prefix needs a directory")?;
                    o.location = Location::Prefix(PathBuf::from(dir));
                }
                "--name" => o.name = it.next().context("--name needs a name")?.clone(),
                "--force" => o.force = true,
                "--lang" => {
                    let lang = it.next().context("--lang needs es, en or auto")?;
                    o.env.retain(|(k, _)| k != forja::link::env::LANG);
                    match lang.as_str() {
                        "es" | "en" => o.env.push((forja::link::env::LANG.into(), lang.clone())),
                        "auto" => {}
                        other => bail!("--lang `{other}`: use es, en or auto"),
                    }
                }
                "--env" => {
                    let kv = it.next().context("--env needs NAME=VALUE")?;
                    let (k, v) = kv
                        .split_once('=')
                        .filter(|(k, _)| !k.is_empty())
                        .with_context(|| format!("--env `{kv}` is not NAME=VALUE"))?;
                    o.env.push((k.to_owned(), v.to_owned()));
                }
                other => bail!("unknown option `{other}` (see `forja-kernel --help`)"),
            }
        }
        if o.name.is_empty()
            || !o
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "kernel name `{}` must be ASCII letters, digits, `-`, `_` or `.`",
                o.name
            );
        }
        Ok(o)
    }
}

fn data_dir(loc: &Location) -> Result<PathBuf> {
    Ok(match loc {
        Location::Prefix(p) => p.join("share/jupyter"),
        Location::SysPrefix => {
            let prefix = std::env::var_os("VIRTUAL_ENV")
                .map(PathBuf::from)
                .or_else(|| {
                    std::process::Command::new("python3")
                        .args(["-c", "import sys; print(sys.prefix)"])
                        .output()
                        .ok()
                        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
                })
                .context("could not find the Python environment for --sys-prefix")?;
            prefix.join("share/jupyter")
        }
        Location::User => match std::env::var_os("JUPYTER_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                let base = std::env::var_os("XDG_DATA_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))
                    })
                    .context("HOME is not set")?;
                base.join("jupyter")
            }
        },
    })
}

/// The kernelspec directory for these options.
pub fn spec_dir(o: &Options) -> Result<PathBuf> {
    Ok(data_dir(&o.location)?.join("kernels").join(&o.name))
}

fn is_forjas(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("kernel.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .is_some_and(|v| v["metadata"]["forja"].is_object())
}

/// Writes the kernelspec.
pub fn install(o: &Options) -> Result<PathBuf> {
    let dir = spec_dir(o)?;
    if dir.join("kernel.json").exists() && !is_forjas(&dir) && !o.force {
        bail!(
            "a kernelspec that is not forja's exists at {}; pass --force to replace it or --name to pick another name",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe()?.canonicalize()?;
    let mut spec = json!({
        "argv": [exe, "--connection-file", "{connection_file}"],
        "display_name": "Rust (forja)",
        "language": "rust",
        "interrupt_mode": "message",
        "metadata": {"forja": {"version": env!("CARGO_PKG_VERSION")}, "debugger": false},
    });
    if !o.env.is_empty() {
        let env: serde_json::Map<String, serde_json::Value> = o
            .env
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        spec["env"] = serde_json::Value::Object(env);
    }
    std::fs::write(
        dir.join("kernel.json"),
        serde_json::to_string_pretty(&spec)?,
    )?;
    std::fs::write(dir.join("logo-svg.svg"), crate::logo::SVG)?;
    std::fs::write(dir.join("logo-32x32.png"), crate::logo::png(32))?;
    std::fs::write(dir.join("logo-64x64.png"), crate::logo::png(64))?;
    Ok(dir)
}

/// Removes the kernelspec (only forja's, unless forced).
pub fn uninstall(o: &Options) -> Result<PathBuf> {
    let dir = spec_dir(o)?;
    if !dir.exists() {
        bail!("no kernelspec at {}", dir.display());
    }
    if !is_forjas(&dir) && !o.force {
        bail!(
            "the kernelspec at {} is not forja's; pass --force to remove it",
            dir.display()
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_pairs_are_parsed_in_order() {
        let o = Options::parse(&args(&[
            "--prefix",
            "/opt/x",
            "--env",
            "FORJA_PREBUILT=/opt/x/p",
            "--env",
            "PATH=/a:/b=c",
        ]))
        .unwrap();
        assert_eq!(o.location, Location::Prefix("/opt/x".into()));
        assert_eq!(
            o.env,
            [
                ("FORJA_PREBUILT".to_owned(), "/opt/x/p".to_owned()),
                ("PATH".to_owned(), "/a:/b=c".to_owned()),
            ]
        );
    }

    #[test]
    fn lang_writes_forja_lang_and_auto_writes_nothing() {
        let o = Options::parse(&args(&["--lang", "es"])).unwrap();
        assert_eq!(o.env, [("FORJA_LANG".to_owned(), "es".to_owned())]);
        let o = Options::parse(&args(&["--env", "FORJA_LANG=es", "--lang", "en"])).unwrap();
        assert_eq!(o.env, [("FORJA_LANG".to_owned(), "en".to_owned())]);
        let o = Options::parse(&args(&["--lang", "es", "--lang", "auto"])).unwrap();
        assert!(o.env.is_empty());
        assert!(Options::parse(&args(&["--lang", "fr"])).is_err());
        assert!(Options::parse(&args(&["--lang"])).is_err());
    }

    #[test]
    fn env_without_a_name_is_refused() {
        assert!(Options::parse(&args(&["--env", "=x"])).is_err());
        assert!(Options::parse(&args(&["--env", "NOVALUE"])).is_err());
        assert!(Options::parse(&args(&["--env"])).is_err());
    }
}
