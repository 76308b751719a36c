//! Inputs the `engine` fuzz target (`fuzz/fuzz_targets/engine.rs`) found,
//! replayed through the same steps as the target (options byte, pattern up
//! to the first NUL, events decoded line by line, `finish`, sometimes a
//! watermark at `Timestamp::MAX`), each within a time limit.
//!
//! Every `tests/engine_fuzz_regressions/*.bin` must finish: the findings,
//! and two seeds in the target's format that pinned earlier bugs
//! (`seed_*`: windows ending past the largest time, which used to hang,
//! and list keys holding objects).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use cepheid::io::{Decoder, Format, Item};
use cepheid::{Engine, Output, Record, Rules, Timestamp};

const DELAYS: [u64; 4] = [0, 5, 1_000, u64::MAX];
/// The target's limit on partial matches per key.
const RUN_LIMIT: usize = 1_000;
/// Generous: the test build is unoptimised and the machine may be busy; a
/// hang is what this catches (the fuzz target allows 10 s, optimised).
const LIMIT: Duration = Duration::from_secs(60);

/// What the fuzz target does with one input.
fn replay(data: &[u8]) {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (pattern, events) = rest.split_at(split);
    let events = events.get(1..).unwrap_or_default();
    let Ok(text) = std::str::from_utf8(pattern) else {
        return;
    };
    let Ok(rules) = Rules::parse("fuzz.cep", text) else {
        return;
    };
    let delay = Duration::from_millis(DELAYS[usize::from(options & 3)]);
    let mut engine: Engine<Record> = Engine::with_max_delay(delay).max_runs_per_key(RUN_LIMIT);
    if engine.add(&rules).is_err() {
        return;
    }
    let format = if options & 8 == 0 {
        Format::JsonLines
    } else {
        Format::Csv
    };
    let mut decoder = Decoder::new(format, "ts", engine.fields().clone());
    let mut out: Vec<Output<Record>> = Vec::new();
    for line in events.split(|&b| b == b'\n').take(256) {
        match decoder.decode(line) {
            Ok(Item::Event(ts, record)) => {
                engine.push(ts, record, &mut out);
            }
            Ok(Item::Watermark(t)) => engine.watermark(t, &mut out),
            Ok(Item::Skip) | Err(_) => {}
        }
        out.clear();
    }
    engine.finish(&mut out);
    if options & 4 != 0 {
        engine.watermark(Timestamp::MAX, &mut out);
    }
}

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
            replay(&data);
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
    replay_all(Path::new("tests/engine_fuzz_regressions"));
}
