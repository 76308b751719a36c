//! Support shared by the integration tests of the workspace's crates (one
//! harness per crate, `crates/*/tests/it/`, and the command's
//! `tests/cli/`): where their data is, from wherever Cargo runs them (a
//! crate's tests run in its own folder), and their scratch folders
//! ([`Scratch`]); a reference for exact sums ([`decimal_sum`]).
//!
//! It depends on no crate of the workspace: a dev-dependency of the
//! lowest crates too, without a cycle. Not published.

use std::path::{Path, PathBuf};

pub mod decimal_sum;
pub mod shared_contract;

/// The repository's root (the folder of `patterns/`, `tests/`, `docs/`).
pub fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The path of `rel` inside the repository's root, e.g. `patterns`.
pub fn path(rel: &str) -> std::path::PathBuf {
    root().join(rel)
}

/// A test's scratch folder, made empty by [`Scratch::new`]: removed when
/// dropped, unless the thread is panicking (a failed test's files are
/// kept, and named on standard error, to be looked at). Kept always, the
/// suite's folders filled 13 GB of `target/tmp` and 19 GB of `/tmp` over a
/// few runs. (`tempfile::TempDir` removes them on a failure too, and names
/// them at random: a failed test's folder could not be found.)
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// The folder `dir`, emptied (or made).
    pub fn new(dir: PathBuf) -> Scratch {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("(the test's files are kept in {})", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
