//! The Python package's own tests (`crates/python/tests/test_*.py`,
//! pytest) under `cargo test`: `.ci/test-python` builds the wheel with
//! maturin (dev profile, into this build's target folder), installs it into
//! a virtual environment made beside it (the pinned
//! `crates/python/requirements-test.txt` from PyPI, again when that file
//! changes), and runs them. A machine that cannot reach PyPI the first
//! time fails here, saying so: the suite never passes without having run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target folder this test binary was built in
/// (`TARGET/debug/deps/python-HASH`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary is in TARGET/PROFILE/deps")
        .to_path_buf()
}

#[test]
fn the_python_package_passes_its_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join(".ci/test-python"))
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(&root)
        .output()
        .expect("runs bash .ci/test-python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        panic!(
            "the Python tests did not run: the test requirements could not be installed from PyPI \
             (no network?); they need it once, then the virtual environment is reused\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "the Python tests failed:\n{stdout}\n{stderr}"
    );
    // pytest's last line (`-q`): "N passed, M skipped in T s" (skipped:
    // the comparisons with a built `cepheid`), with "failed" or "error"
    // had any failed (then the status above was not 0).
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed"))
        .unwrap_or_else(|| panic!("no \"N passed\" in:\n{stdout}\n{stderr}"));
    let words: Vec<&str> = summary.split_whitespace().collect();
    let passed = words
        .windows(2)
        .find_map(|w| match w[1].trim_end_matches(',') {
            "passed" => w[0].parse::<usize>().ok(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no count of tests passed in {summary:?}"));
    assert!(passed >= 30, "only {passed} Python tests passed:\n{stdout}");
    assert!(
        !summary.contains("failed") && !summary.contains("error"),
        "pytest said: {summary}"
    );
    // What it cost, for the test's log (`cargo test -- --nocapture`).
    for line in stderr
        .lines()
        .filter(|l| l.starts_with("test-python:"))
        .chain(std::iter::once(summary))
    {
        println!("{line}");
    }
}
