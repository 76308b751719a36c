//! The TypeScript client's own tests (`clients/typescript`, issue 64)
//! under `cargo test`: `.ci/test-typescript` installs its pinned tools
//! from the committed lock file (`npm ci`), checks that the generated API
//! types are the document's, compiles with the pinned `typescript`, and
//! runs `node --test`: every case of `clients/cases.json` on a scripted
//! transport, and the real-server fault tests against this build's
//! `cepheid` (`CEPHEID_BIN`). A machine without Node 20 and npm, or that
//! cannot reach the npm registry the first time, fails here, saying so:
//! the suite never passes without having run.

use std::path::Path;
use std::process::Command;

#[test]
fn the_typescript_client_passes_its_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join(".ci/test-typescript"))
        .env("CEPHEID_BIN", env!("CARGO_BIN_EXE_cepheid"))
        .current_dir(root)
        .output()
        .expect("runs bash .ci/test-typescript");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        panic!(
            "the TypeScript tests did not run: npm ci could not install the pinned tools \
             (no network?); they need the npm registry once, then npm's cache serves\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "the TypeScript tests failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The spec reporter's summary: "ℹ tests N", "ℹ pass N", "ℹ fail 0".
    let count = |what: &str| -> usize {
        stdout
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("ℹ {what} "))?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| {
                panic!("no \"ℹ {what} N\" in the output of node --test:\n{stdout}\n{stderr}")
            })
    };
    let (tests, pass) = (count("tests"), count("pass"));
    assert!(tests >= 40, "only {tests} TypeScript tests ran:\n{stdout}");
    assert_eq!(pass, tests, "{stdout}");
    assert_eq!(count("fail"), 0, "{stdout}");
    assert_eq!(count("skipped"), 0, "{stdout}");
    // What it cost, for the test's log (`cargo test -- --nocapture`).
    for line in stderr.lines().filter(|l| l.starts_with("test-typescript:")) {
        eprintln!("{line}");
    }
}
