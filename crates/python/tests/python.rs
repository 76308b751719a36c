//! The Python package's own tests (`crates/python/tests/test_*.py`,
//! `unittest`) under `cargo test`: `.ci/test-python` builds the wheel with
//! maturin (dev profile, into this build's target folder), installs it into
//! a virtual environment made once beside it (maturin from PyPI), and runs
//! them. A machine that cannot reach PyPI the first time fails here, saying
//! so: the suite never passes without having run.

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
            "the Python tests did not run: maturin could not be installed from PyPI \
             (no network?); they need it once, then the virtual environment is reused\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "the Python tests failed:\n{stdout}\n{stderr}"
    );
    // unittest's last lines: "Ran N tests in T s", then "OK" (with the
    // tests skipped, if any: the comparisons with a built `cepheid`).
    let ran = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no \"Ran N tests\" in:\n{stderr}"));
    assert!(ran >= 30, "only {ran} Python tests ran:\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("OK")),
        "unittest did not say OK:\n{stderr}"
    );
    // What it cost, for the test's log (`cargo test -- --nocapture`).
    for line in stderr
        .lines()
        .filter(|l| l.starts_with("test-python:") || l.starts_with("Ran "))
    {
        println!("{line}");
    }
}
