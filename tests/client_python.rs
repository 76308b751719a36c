//! The Python client (`cepheid.client`, issue 64, `docs/clients.md`)
//! against a real `cepheid serve`: its tests of
//! `crates/python/tests-server/` (sync and asyncio; the server stopped,
//! killed, overloaded; a lost answer retried; one connection; a token and
//! TLS) run by `.ci/test-python` with `CEPHEID_BIN` = the binary Cargo
//! built for this package. They are here, not in the package's own run
//! (`crates/python/tests/python.rs`, which has no binary to give), so
//! that they run in one place; the client's cases
//! (`clients/cases.json`, no server) are the package's own tests.
//!
//! `.ci/test-python` builds the wheel (dev profile, into this build's
//! target folder) and installs it into a virtual environment made once
//! beside it (from PyPI: a machine that cannot reach it the first time
//! fails here, saying so).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target folder this test binary was built in
/// (`TARGET/debug/deps/cli-HASH`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary is in TARGET/PROFILE/deps")
        .to_path_buf()
}

#[test]
fn the_python_client_passes_its_tests_against_a_real_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = root.join("crates/python/tests-server");
    // `-s FOLDER`: the folder to run, for pytest (`-s` is then "no
    // capture", the folder its argument) and for unittest's `discover`
    // alike (its start folder), whichever `.ci/test-python` runs.
    let out = Command::new("bash")
        .arg(root.join(".ci/test-python"))
        .arg("-s")
        .arg(&tests)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CEPHEID_BIN", env!("CARGO_BIN_EXE_cepheid"))
        .current_dir(root)
        .output()
        .expect("runs bash .ci/test-python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        panic!(
            "the Python client's tests did not run: the test requirements could not be \
             installed from PyPI (no network?)\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "the Python client's tests against a real server failed:\n{stdout}\n{stderr}"
    );
    // pytest's "N passed", or unittest's "Ran N tests": every test ran
    // (8 tests, each on the sync and on the async client).
    let all = format!("{stdout}\n{stderr}");
    let ran = all
        .lines()
        .find_map(|l| {
            let l = l.trim().trim_matches('=').trim();
            if let Some(rest) = l.strip_prefix("Ran ") {
                return rest.split(' ').next()?.parse::<usize>().ok();
            }
            let (n, rest) = l.split_once(' ')?;
            rest.starts_with("passed")
                .then(|| n.parse::<usize>().ok())?
        })
        .unwrap_or_else(|| panic!("no count of the tests run in:\n{all}"));
    assert!(ran >= 16, "only {ran} Python client tests ran:\n{all}");
    for line in all
        .lines()
        .filter(|l| l.starts_with("test-python:") || l.contains(" passed") || l.starts_with("Ran "))
    {
        println!("{line}");
    }
}
