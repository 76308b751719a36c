//! Inputs the `engine` fuzz target (`fuzz/fuzz_targets/engine.rs`) found,
//! replayed through the same steps as the target (the same code:
//! `fuzz/common/engine_input.rs`), each within a time limit.
//!
//! Every `tests/engine_fuzz_regressions/*.bin` must finish: the findings,
//! and two seeds in the target's format that pinned earlier bugs
//! (`seed_*`: windows ending past the largest time, which used to hang,
//! and list keys holding objects).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::engine_input;

/// Generous: the test build is unoptimised and the machine may be busy; a
/// hang is what this catches (the fuzz target allows 10 s, optimised).
const LIMIT: Duration = Duration::from_secs(60);

/// Replays every `.bin` file of `dir`, each on a thread of its own that
/// must finish within [`LIMIT`] (a hang leaves the thread behind and fails).
fn replay_all(dir: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    for file in files {
        let data = std::fs::read(&file).expect("read");
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            engine_input::run(&data);
            let _ = done.send(());
        });
        match finished.recv_timeout(LIMIT) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{}: still running after {LIMIT:?}", file.display())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{}: panicked", file.display())
            }
        }
    }
}

/// `combinations_followed_by_any_32_events.bin` was found twice by the
/// seeded 10-minute run (from the conformance case
/// `SameElementITCase.testZeroOrMoreSameElement` as CSV): `middle+ optional
/// combinations` between two `followed by any` makes every subset of 32 `a`
/// events a partial match. It finishes since the limit on partial matches
/// per key (`Engine::max_runs_per_key`).
#[test]
fn engine_fuzz_regressions_finish() {
    replay_all(&cepheid_testkit::path("tests/engine_fuzz_regressions"));
}
