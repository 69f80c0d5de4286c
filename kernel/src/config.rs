//! Where a session finds things: the [`Config`] the server (or the
//! prebuild) gives a new evcxr session.

use crate::side_channel::ChildOutputs;
use std::path::PathBuf;

/// Where the session finds things.
pub struct Config {
    /// The child-output readers, drained at each cell's end.
    pub child_outputs: ChildOutputs,
    /// The forja crate to add to every session (`None`: do not add it).
    pub forja_dir: Option<PathBuf>,
    /// A Cargo.lock to seed evcxr's crate with, so versions match the workspace.
    pub lockfile: Option<PathBuf>,
    /// evcxr's crate directory.
    pub crate_dir: PathBuf,
    /// The prebuilt forja build to start from (`forja-kernel prebuild`, see
    /// `build_cache`); the crate dir's parent must be the session's own.
    pub prebuilt: Option<PathBuf>,
}
