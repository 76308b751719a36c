//! Every Flink conformance case through the `cepheid` binary, with the
//! shared harness `../shared/conformance/run.py` (it prints one line per
//! failing case and `N passed, M failed, K skipped`).

use crate::shared_contract;

use std::process::Command;

#[test]
fn flink_conformance_cases_pass_through_the_binary() {
    let output = Command::new("python3")
        .arg(shared_contract::path("conformance/run.py"))
        .arg(shared_contract::path("conformance/flink"))
        .arg(env!("CARGO_BIN_EXE_cepheid"))
        .output()
        .expect("python3 runs the conformance harness");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "conformance failures:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
