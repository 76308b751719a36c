//! A run started from a checkpoint it only reads (`Config::start_from`):
//! the engine goes on from the checkpoint's state and the input from its
//! place, into outputs of the run's own; nothing in the checkpoint's
//! folder changes; what does not fit is refused before anything is
//! written.

use std::path::{Path, PathBuf};

use cepheid_engine::Rules;

use crate::support::{scratch, RULES};
use cepheid_runtime::{Config, Conflict, Error, Input, Runtime, StderrReport, Unusable};

/// `keys` keys with an `a` each, then (`second`) their `b`s and more
/// `a`s and `b`s: matches that straddle where the first part ends.
fn lines(keys: u64, second: bool) -> String {
    let mut text = String::new();
    for k in 0..keys {
        text.push_str(&format!("{{\"ts\":{},\"type\":\"a\",\"k\":{k}}}\n", 10 * k));
        // (and keys whose matches are the first part's own)
        let other = 1000 + k;
        text.push_str(&format!(
            "{{\"ts\":{},\"type\":\"a\",\"k\":{other}}}\n",
            10 * k + 1
        ));
        text.push_str(&format!(
            "{{\"ts\":{},\"type\":\"b\",\"k\":{other}}}\n",
            10 * k + 2
        ));
    }
    if second {
        for k in 0..keys {
            let ts = 10 * keys + 10 * k;
            text.push_str(&format!("{{\"ts\":{ts},\"type\":\"b\",\"k\":{k}}}\n"));
            text.push_str(&format!("{{\"ts\":{},\"type\":\"a\",\"k\":{k}}}\n", ts + 1));
            text.push_str(&format!(
                "{{\"ts\":{},\"type\":\"b\",\"k\":{}}}\n",
                ts + 2,
                (k + 1) % keys
            ));
        }
    }
    text
}

/// Runs `config` with the `ab` rules; the run's error, if any.
fn run(config: Config) -> Result<(), Error> {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let summary = Runtime::new(config, &rules, Box::new(StderrReport))?.run();
    assert!(summary.error().is_none(), "{summary}");
    Ok(())
}

fn config(events: &Path, output: &Path) -> Config {
    let mut config = Config::new(
        Input::File(events.to_path_buf()),
        vec![PathBuf::from("ab.cep")],
    );
    config.output = Some(output.to_path_buf());
    config
}

/// The files below `dir`, with their sizes and contents.
fn listing(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => found.extend(listing(&path)),
            false => found.push((path.clone(), std::fs::read(&path).unwrap())),
        }
    }
    found.sort();
    found
}

#[test]
fn a_run_started_from_a_checkpoint_writes_what_a_run_that_never_stopped_writes_after_it() {
    let dir = scratch("start-from");
    let events = dir.join("events.jsonl");
    // The first part, checkpointed as it ends.
    std::fs::write(&events, lines(50, false)).unwrap();
    let mut first = config(&events, &dir.join("first.jsonl"));
    first.checkpoint = Some(dir.join("checkpoints"));
    run(first).unwrap();
    let first_records = std::fs::read_to_string(dir.join("first.jsonl")).unwrap();
    assert_eq!(first_records.lines().count(), 50);
    let kept = listing(&dir.join("checkpoints"));
    // The file grows; a run that never stopped, for reference.
    std::fs::write(&events, lines(50, true)).unwrap();
    run(config(&events, &dir.join("whole.jsonl"))).unwrap();
    let whole = std::fs::read_to_string(dir.join("whole.jsonl")).unwrap();
    let cut = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("cut-"))
        .expect("a cut");
    for (from, name) in [
        (dir.join("checkpoints"), "after.jsonl"),
        (cut, "after-cut.jsonl"),
    ] {
        let mut after = config(&events, &dir.join(name));
        after.start_from = Some(from.clone());
        run(after).unwrap();
        let after = std::fs::read_to_string(dir.join(name)).unwrap();
        // (the `b`s of the first part's `a`s match after it: the state
        // went on)
        assert!(after.contains(r#""start":490,"#), "{after}");
        // What came after the checkpoint is what the run that never
        // stopped wrote after the same place; the first run's records up
        // to that place are its own (those it wrote after it, the events
        // waiting for the watermark at the end of its input, are made
        // again).
        let shown = from.display();
        let before = whole.strip_suffix(after.as_str());
        let before = before.unwrap_or_else(|| panic!("from {shown}: {after}"));
        assert!(first_records.starts_with(before), "from {shown}: {before}");
        assert!(before.lines().count() >= 49, "from {shown}: {before}");
    }
    assert_eq!(
        listing(&dir.join("checkpoints")),
        kept,
        "the checkpoint changed"
    );
}

#[test]
fn what_cannot_start_from_a_checkpoint_is_refused_before_anything_is_written() {
    let dir = scratch("start-from-refused");
    let events = dir.join("events.jsonl");
    std::fs::write(&events, lines(5, false)).unwrap();
    let mut first = config(&events, &dir.join("first.jsonl"));
    first.checkpoint = Some(dir.join("checkpoints"));
    run(first).unwrap();
    let output = dir.join("after.jsonl");
    let refused = |mut config: Config| {
        config.output = Some(output.clone());
        let error = run(config).expect_err("refused");
        assert!(!output.exists(), "{error}: the output was written");
        error
    };
    // With checkpoints of its own.
    let mut both = config(&events, &output);
    both.start_from = Some(dir.join("checkpoints"));
    both.checkpoint = Some(dir.join("more"));
    let error = refused(both);
    assert!(
        matches!(&error, Error::Conflict(Conflict::StartFromWithCheckpoints)),
        "{error}"
    );
    // From standard input.
    let mut stdin = config(&events, &output);
    stdin.input = Input::Stdin;
    stdin.start_from = Some(dir.join("checkpoints"));
    let error = refused(stdin);
    assert!(
        matches!(&error, Error::Conflict(Conflict::StartFromStdin)),
        "{error}"
    );
    // A folder with none in it.
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let mut empty = config(&events, &output);
    empty.start_from = Some(dir.join("empty"));
    let error = refused(empty);
    assert!(
        matches!(
            &error,
            Error::StartFrom {
                why: Unusable::Empty,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("it holds no checkpoint"),
        "{error}"
    );
    // Another file than the one it was taken on.
    let other = dir.join("other.jsonl");
    std::fs::write(&other, lines(5, false).replace("\"a\"", "\"b\"")).unwrap();
    let mut another = config(&other, &output);
    another.start_from = Some(dir.join("checkpoints"));
    let error = refused(another);
    assert!(
        matches!(
            &error,
            Error::StartFrom {
                why: Unusable::NotTheFile { .. },
                ..
            }
        ),
        "{error}"
    );
    // Another time than the one it was taken with.
    let mut processing = config(&events, &output);
    processing.time = cepheid_runtime::Time::Processing;
    processing.start_from = Some(dir.join("checkpoints"));
    let error = refused(processing);
    assert!(
        matches!(
            &error,
            Error::StartFrom {
                why: Unusable::OtherCommand { .. },
                ..
            }
        ),
        "{error}"
    );
    // Other rules, which the snapshot does not fit.
    let mut other_rules = config(&events, &output);
    other_rules.start_from = Some(dir.join("checkpoints"));
    let rules = Rules::parse("x.cep", "pattern x { match a where a: type == \"x\" }").unwrap();
    let error = Runtime::new(other_rules, &rules, Box::new(StderrReport))
        .err()
        .expect("refused");
    assert!(!output.exists());
    assert!(
        matches!(
            &error,
            Error::StartFrom {
                why: Unusable::DoesNotFit(_),
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_checkpoint());
}
