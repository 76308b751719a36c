//! `cepheid run --workers N --events FILE --checkpoint DIR` over a file
//! that grows between runs (a file written by day, run again each night):
//! each run leaves a cut at the end of its input, before the end moves
//! event time on (as one engine's checkpoint there), and the next run, on
//! the same or another worker count, reads on from it: every line once,
//! the records of a run that was never interrupted. (At `3c5a200` a worker
//! whose chunks were read to their end at the cut stayed ended, so the
//! lines the file got since in its chunks were never read: 20,505 of
//! 29,949 events, 45 of 61 records, said nowhere; and a short run could
//! leave no cut at all.)

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::cepheid;
use common::crash::{self, sorted};

/// The rules of the golden sweep's runs over 30,000 events: they match
/// rarely, over the whole stream.
const RARE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/data/crash/rare.cep"
);

/// `cepheid run RULES --events EVENTS --workers N --max-delay 3s` (above
/// the stream's disorder: no event is late on any layout), writing
/// `out_NAME.jsonl` and `late_NAME.jsonl`, with `extra` flags; waits for
/// its end.
fn run(
    dir: &Path,
    rules: &Path,
    events: &str,
    workers: &str,
    name: &str,
    extra: &[&str],
) -> Output {
    let output = cepheid()
        .current_dir(dir)
        .arg("run")
        .arg(rules)
        .args(["--events", events, "--no-progress", "--max-delay", "3s"])
        .args(["--workers", workers])
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(["--late", &format!("late_{name}.jsonl")])
        .args(extra)
        .output()
        .expect("cepheid runs");
    assert!(
        output.status.success(),
        "{name} on {workers} workers: {}",
        stderr(&output)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The first `lines` lines of `text`.
fn head(text: &str, lines: usize) -> &str {
    let end = (text.match_indices('\n'))
        .nth(lines - 1)
        .map_or(text.len(), |(i, _)| i + 1);
    &text[..end]
}

/// Does the checkpoint folder hold a complete cut?
fn has_complete_cut(dir: &Path) -> bool {
    crate::common::newest_checkpoint(dir).is_some()
}

/// Runs `first` workers over the first `lines` lines of `text` with
/// checkpoints in `ckpt_NAME`, then `then` workers over the whole of it
/// (the file grown while no run was on it), then once more (nothing
/// new): the outputs and summary of each of the last two are those of
/// `whole`, an uninterrupted run over the whole text.
#[allow(clippy::too_many_arguments)]
fn grown(
    dir: &Path,
    rules: &Path,
    text: &str,
    lines: usize,
    name: &str,
    [first, then]: [&str; 2],
    every: &str,
    whole: &Output,
) {
    let events = format!("events_{name}.jsonl");
    let ckpt = format!("ckpt_{name}");
    let extra = ["--checkpoint", &ckpt, "--checkpoint-every", every];
    fs::write(dir.join(&events), head(text, lines)).unwrap();
    run(dir, rules, &events, first, name, &extra);
    assert!(
        has_complete_cut(&dir.join(&ckpt)),
        "{name}: no complete cut in {ckpt} after a run over {lines} lines on {first} workers"
    );
    fs::write(dir.join(&events), text).unwrap();
    for again in ["grown", "again"] {
        let resumed = run(dir, rules, &events, then, name, &extra);
        assert!(
            stderr(&resumed).contains("resuming from checkpoint"),
            "{name} ({again}): {}",
            stderr(&resumed)
        );
        for file in ["out", "late"] {
            assert!(
                sorted(dir, &format!("{file}_{name}.jsonl"))
                    == sorted(dir, &format!("{file}_whole.jsonl")),
                "{name} ({again}): {file}_{name}.jsonl differs from the uninterrupted run's"
            );
        }
        assert_eq!(
            crash::summary(&stderr(&resumed)),
            crash::summary(&stderr(whole)),
            "{name} ({again})"
        );
    }
}

#[test]
fn workers_checkpoint_of_a_file_grown_since_reads_on_to_the_uninterrupted_records() {
    let dir = common::scratch("workers_checkpoint_grown");
    let text = crash::events(30_000);
    fs::write(dir.join("events_whole.jsonl"), &text).unwrap();
    let rules = Path::new(RARE);
    let whole = run(&dir, rules, "events_whole.jsonl", "2", "whole", &[]);
    assert!(
        crash::summary(&stderr(&whole)).starts_with("cepheid: 29949 events read"),
        "{}",
        stderr(&whole)
    );
    // (the first run's last cut, with chunks of 1 MiB: worker 1 has none
    // of the first 15,000 lines, and ended at once)
    grown(
        &dir,
        rules,
        &text,
        15_000,
        "two",
        ["2", "2"],
        "10ms",
        &whole,
    );
    grown(
        &dir,
        rules,
        &text,
        15_000,
        "one_three",
        ["1", "3"],
        "10ms",
        &whole,
    );
}

#[test]
fn workers_checkpoint_at_the_end_of_a_short_run_is_kept_and_read_on() {
    // Three rules with windows and timeouts (what the end of event time
    // releases is written after the cut, and again once by the next run),
    // in chunks of 20,000 bytes (the workers' sources end one after the
    // other); no periodic cut comes in an hour: the one at the end is all
    // there is.
    let dir = common::scratch("workers_checkpoint_end");
    fs::write(dir.join("rules.cep"), crash::PATTERNS).unwrap();
    let rules = Path::new("rules.cep");
    let text = crash::events(3_000);
    fs::write(dir.join("events_whole.jsonl"), &text).unwrap();
    let chunks = ["--chunk-bytes", "20000"];
    let whole = run(&dir, rules, "events_whole.jsonl", "2", "whole", &chunks);
    let every = "1h";
    let extra = [
        &chunks[..],
        &["--checkpoint", "ckpt_end", "--checkpoint-every", every],
    ]
    .concat();
    fs::write(dir.join("events_end.jsonl"), head(&text, 2_000)).unwrap();
    let first = run(&dir, rules, "events_end.jsonl", "2", "end", &extra);
    assert!(
        has_complete_cut(&dir.join("ckpt_end")),
        "no complete cut after a run over 2,000 lines: {}",
        stderr(&first)
    );
    let (out, late) = (
        sorted(&dir, "out_end.jsonl"),
        sorted(&dir, "late_end.jsonl"),
    );
    assert!(out.len() > 10, "the run made records");
    // The same file again: the outputs truncated to the cut, and what the
    // end released written once more, not twice.
    let again = run(&dir, rules, "events_end.jsonl", "2", "end", &extra);
    assert!(
        stderr(&again).contains("resuming from checkpoint"),
        "{}",
        stderr(&again)
    );
    assert!(
        sorted(&dir, "out_end.jsonl") == out,
        "run again, the output changed"
    );
    assert!(
        sorted(&dir, "late_end.jsonl") == late,
        "run again, the late file changed"
    );
    assert_eq!(
        crash::summary(&stderr(&again)),
        crash::summary(&stderr(&first))
    );
    // Grown, on 2 and then on 3 workers (nothing new).
    fs::write(dir.join("events_end.jsonl"), &text).unwrap();
    for workers in ["2", "3"] {
        let grown = run(&dir, rules, "events_end.jsonl", workers, "end", &extra);
        assert!(
            stderr(&grown).contains("resuming from checkpoint"),
            "{}",
            stderr(&grown)
        );
        for file in ["out", "late"] {
            assert!(
                sorted(&dir, &format!("{file}_end.jsonl")) == sorted(&dir, &format!("{file}_whole.jsonl")),
                "grown, on {workers} workers: {file}_end.jsonl differs from the uninterrupted run's"
            );
        }
        assert_eq!(
            crash::summary(&stderr(&grown)),
            crash::summary(&stderr(&whole))
        );
    }
}
