//! What the `engine` fuzz target does with one input, shared by the target
//! (`fuzz/fuzz_targets/engine.rs`) and its replay test
//! (`crates/engine/tests/it/engine_fuzz_regressions.rs`, which includes this file), so that a
//! finding replays through exactly the same steps.
//!
//! Layout: the first byte picks the options (allowed delay, flush at end,
//! format); the text up to the first NUL byte is the pattern file; the rest
//! is the input, one line per `\n`, at most 256 lines.

use std::time::Duration;

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::{Engine, Output, Record, Rules, Timestamp};

/// The allowed delays the options byte picks from (its two low bits).
const DELAYS: [u64; 4] = [0, 5, 1_000, u64::MAX];
/// A small limit on partial matches per key (the default is 10,000), so
/// that inputs at the limit stay fast and its code path is exercised often.
const RUN_LIMIT: usize = 1_000;

/// Runs one input: `Rules::parse`, `Engine<Record>`, `io::Decoder`,
/// watermarks, then `finish` (and, when the options say so,
/// `watermark(Timestamp::MAX)`, as `--flush-at-end`).
pub fn run(data: &[u8]) {
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
        // Bounded memory: outputs are dropped as they come, as the CLI
        // writes them out.
        out.clear();
    }
    engine.finish(&mut out);
    if options & 4 != 0 {
        engine.watermark(Timestamp::MAX, &mut out);
    }
}
