//! Support shared by the integration tests of the workspace's crates (one
//! harness per crate, `crates/*/tests/it/`, and the command's
//! `tests/cli/`): where their data is, from wherever Cargo runs them (a
//! crate's tests run in its own folder).
//!
//! It depends on no crate of the workspace: a dev-dependency of the
//! lowest crates too, without a cycle. Not published.

use std::path::Path;

pub mod shared_contract;

/// The repository's root (the folder of `patterns/`, `tests/`, `docs/`).
pub fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The path of `rel` inside the repository's root, e.g. `patterns`.
pub fn path(rel: &str) -> std::path::PathBuf {
    root().join(rel)
}
