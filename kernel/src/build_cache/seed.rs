//! Laying the prebuilt build out in a new session: the target dir (in the
//! background, as links to the shared build, see [`super::link`]), the cargo config that points to the vendored
//! sources, and the standard library's registry entries; or a note that
//! says why the session compiles forja itself.

use super::layout::{CARGO_CONFIG, CRATE, REGISTRY_SEED, Stamp};
use super::link::link_tree;
use super::std_registry::seed_registry;
use super::vendor::patched_paths;
use crate::config::Config;
use crate::toolchain::cargo_home;
use std::io;
use std::path::PathBuf;

/// Prepares a new session's crate dir from the prebuilt build: lays its
/// target dir out as links to the prebuilt one ([`link_tree`]) and puts the prebuild's cargo config in the
/// crate dir's parent, which must be the session's own work dir. Does
/// nothing if the crate dir already has a target dir.
///
/// Returns a note for the user when the prebuilt build is missing, does not
/// fit or could not be copied; the session then still works, but its first
/// forja cell compiles forja's dependencies. Nothing is left half-done.
pub fn seed(config: &Config) -> Option<String> {
    start_seed(config).finish()
}

/// A [`seed`] whose layout of the target dir runs on a thread of its own.
pub struct Seed {
    note: Option<String>,
    layout: Option<PendingLayout>,
}

struct PendingLayout {
    thread: std::thread::JoinHandle<io::Result<u64>>,
    target: PathBuf,
    work_config: PathBuf,
    prebuilt: PathBuf,
}

/// A start-up note: `msg` with the directory, the reason, and why the
/// first cell is slow and how to fix that, filled in.
fn seed_note(
    msg: crate::messages::Msg,
    dir: &std::path::Path,
    why: &dyn std::fmt::Display,
) -> String {
    msg.fill(&[
        ("dir", &dir.display()),
        ("why", why),
        ("slow", &crate::messages::Msg::SeedSlow.get()),
        ("fix", &crate::messages::Msg::SeedFix.get()),
    ])
}

/// Starts a [`seed`]: checks the prebuilt build and writes the cargo config
/// now, and lays out the target dir in the background, so that overlaps
/// evcxr's start (its analyzer loads for ~2 s before the first cargo run,
/// which builds only evcxr's own crate, whose files the prebuilt build
/// does not contain). Call [`Seed::finish`] before adding forja.
pub fn start_seed(config: &Config) -> Seed {
    let nothing = Seed {
        note: None,
        layout: None,
    };
    let (Some(prebuilt), Some(forja)) = (&config.prebuilt, &config.forja_dir) else {
        return nothing;
    };
    let to = config.crate_dir.join("target");
    if to.exists() {
        return nothing;
    }
    let note = |text: String| Seed {
        note: Some(text),
        layout: None,
    };
    // Absolute: the session's links point at it.
    let from = std::path::absolute(prebuilt.join(CRATE).join("target"))
        .unwrap_or_else(|_| prebuilt.join(CRATE).join("target"));
    let Some(stamp) = Stamp::read(prebuilt).filter(|_| from.is_dir()) else {
        return note(seed_note(crate::messages::Msg::SeedMissing, prebuilt, &""));
    };
    if let Some(why) = stamp.mismatch(forja) {
        return note(seed_note(
            crate::messages::Msg::SeedMismatch,
            prebuilt,
            &why,
        ));
    }
    let Some(work) = config.crate_dir.parent() else {
        return note(seed_note(crate::messages::Msg::SeedNoParent, prebuilt, &""));
    };
    let work_config = work.join(CARGO_CONFIG);
    let configured = (|| -> anyhow::Result<()> {
        let text = std::fs::read_to_string(prebuilt.join(CARGO_CONFIG))?;
        for path in patched_paths(&text) {
            if !path.join("Cargo.toml").is_file() {
                anyhow::bail!("its vendored sources are missing ({})", path.display());
            }
        }
        std::fs::create_dir_all(work.join(".cargo"))?;
        std::fs::write(&work_config, text)?;
        Ok(())
    })();
    if let Err(e) = configured {
        let _ = std::fs::remove_file(&work_config);
        return note(seed_note(crate::messages::Msg::SeedUnusable, prebuilt, &e));
    }
    // Before evcxr starts: its analyzer resolves the standard library's
    // workspace with cargo while it loads. Best effort (see seed_registry).
    let _ = seed_registry(&prebuilt.join(REGISTRY_SEED), &cargo_home());
    let (src, dst) = (from.clone(), to.clone());
    let thread = std::thread::Builder::new()
        .name("forja-seed".into())
        .spawn(move || link_tree(&src, &dst).map(|done| done.copied));
    match thread {
        Ok(thread) => Seed {
            note: None,
            layout: Some(PendingLayout {
                thread,
                target: to,
                work_config,
                prebuilt: prebuilt.clone(),
            }),
        },
        Err(e) => {
            let _ = std::fs::remove_file(&work_config);
            note(seed_note(
                crate::messages::Msg::SeedLayoutNotStarted,
                prebuilt,
                &e,
            ))
        }
    }
}

impl Seed {
    /// Waits for the layout; returns the note for the user, if any. A
    /// failed one is removed with the cargo config, never left half-done.
    pub fn finish(self) -> Option<String> {
        let Some(layout) = self.layout else {
            return self.note;
        };
        let result = layout
            .thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the seeding thread panicked")));
        match result {
            Ok(_) => None,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&layout.target);
                let _ = std::fs::remove_file(&layout.work_config);
                Some(seed_note(
                    crate::messages::Msg::SeedUnusable,
                    &layout.prebuilt,
                    &e,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_cache::testing::scratch;
    use crate::build_cache::vendor::vendor;
    use std::path::Path;

    fn config(base: &Path, forja: &Path) -> Config {
        Config {
            forja_dir: Some(forja.to_path_buf()),
            lockfile: None,
            crate_dir: base.join("work/evcxr"),
            prebuilt: Some(base.join("pre")),
            child_outputs: Default::default(),
        }
    }

    #[test]
    fn seed_copies_the_build_and_config_once_or_says_why_not() {
        let base = scratch("seed");
        let forja = Path::new("/somewhere/forja");
        let cfg = config(&base, forja);
        std::fs::create_dir_all(&cfg.crate_dir).unwrap();
        // No prebuilt dir at all: a note that says how to make one.
        let note = seed(&cfg).unwrap();
        assert!(note.contains("forja-kernel prebuild"), "{note}");
        assert!(!cfg.crate_dir.join("target").exists());

        let pre = base.join("pre");
        let vendored = base.join("vendor/libc-0.2.1");
        std::fs::create_dir_all(&vendored).unwrap();
        std::fs::write(vendored.join("Cargo.toml"), "").unwrap();
        let text = vendor(&[], &base.join("vendor")).unwrap()
            + &format!(
                "libc = {{ package = \"libc\", path = {:?} }}\n",
                vendored.display().to_string()
            );
        std::fs::create_dir_all(pre.join(".cargo")).unwrap();
        std::fs::write(pre.join(CARGO_CONFIG), &text).unwrap();
        std::fs::create_dir_all(pre.join("crate/target/debug")).unwrap();
        std::fs::write(pre.join("crate/target/debug/x"), "1").unwrap();
        Stamp::current(forja, "rustc test".into())
            .write(&pre)
            .unwrap();
        assert_eq!(seed(&cfg), None);
        assert_eq!(
            std::fs::read_to_string(cfg.crate_dir.join("target/debug/x")).unwrap(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(base.join("work").join(CARGO_CONFIG)).unwrap(),
            text
        );

        // A crate dir that already has a target is left alone.
        std::fs::write(pre.join("crate/target/debug/x"), "2").unwrap();
        assert_eq!(seed(&cfg), None);
        assert_eq!(
            std::fs::read_to_string(cfg.crate_dir.join("target/debug/x")).unwrap(),
            "1"
        );

        // Built for another forja: not used, and the user is told why.
        let mut other = config(&base, Path::new("/elsewhere/forja"));
        other.crate_dir = base.join("work2/evcxr");
        let note = seed(&other).unwrap();
        assert!(note.contains("/elsewhere/forja"), "{note}");
        assert!(!other.crate_dir.join("target").exists());

        // Vendored sources gone: nothing half-copied, and a note.
        std::fs::remove_dir_all(&vendored).unwrap();
        let mut third = config(&base, forja);
        third.crate_dir = base.join("work3/evcxr");
        let note = seed(&third).unwrap();
        assert!(note.contains("vendored sources are missing"), "{note}");
        assert!(!third.crate_dir.join("target").exists());
        assert!(!base.join("work3").join(CARGO_CONFIG).exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
