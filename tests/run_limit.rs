//! The limit on partial matches per key (`docs/semantics.md`, "The limit
//! on partial matches per key"): beyond it the oldest partial matches of
//! the key are dropped, reported and counted; below it nothing changes.

use std::path::Path;
use std::process::Command;

use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::engine::{Engine, Output, Stats};
use cepheid_engine::{Record, Rules};

/// Runs JSON-lines `events` through `pattern` with at most `limit` partial
/// matches per key; everything the sink saw, in order, and the counters.
fn run(pattern: &str, events: &str, limit: usize) -> (Vec<Output<Record>>, Stats) {
    let rules = Rules::parse("test.cep", pattern).unwrap();
    let mut engine: Engine<Record> = Engine::new().max_runs_per_key(limit);
    engine.add(&rules).unwrap();
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut out = Vec::new();
    for (_, item) in Items::new("events.jsonl", events.as_bytes(), decoder) {
        match item.unwrap() {
            Item::Event(ts, record) => {
                engine.push(ts, record, &mut out);
            }
            Item::Watermark(t) => engine.watermark(t, &mut out),
            Item::Skip => {}
        }
    }
    engine.finish(&mut out);
    (out, engine.stats())
}

/// Each output as `kind start..end [stage:ts,...]`.
fn describe(out: &[Output<Record>]) -> Vec<String> {
    out.iter()
        .map(|o| {
            let kind = match o {
                Output::Match(_) => "match",
                Output::Timeout { .. } => "timeout",
                Output::Dropped { .. } => "dropped",
                Output::Late { .. } => "late",
                _ => "other",
            };
            let Some(m) = o.as_match() else {
                return kind.to_string();
            };
            let events: Vec<String> = m
                .stages
                .iter()
                .flat_map(|(stage, events)| {
                    events.iter().map(move |e| {
                        let ts = e.raw().split("\"ts\":").nth(1).unwrap_or("?");
                        let ts: String = ts.chars().take_while(char::is_ascii_digit).collect();
                        format!("{stage}:{ts}")
                    })
                })
                .collect();
            format!("{kind} {}..{} [{}]", m.start, m.end, events.join(","))
        })
        .collect()
}

fn lines(events: &[(i64, &str, &str)]) -> String {
    events
        .iter()
        .map(|(ts, kind, extra)| format!("{{\"ts\":{ts},\"type\":\"{kind}\"{extra}}}\n"))
        .collect()
}

const PAIR: &str = r#"pattern pair {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;

#[test]
fn the_oldest_partial_matches_of_a_key_are_dropped_first() {
    let events = lines(&[
        (1, "a", ",\"k\":1"),
        (2, "a", ",\"k\":1"),
        (3, "a", ",\"k\":2"),
        (4, "a", ",\"k\":1"),
        (5, "a", ",\"k\":1"),
        (6, "b", ",\"k\":1"),
        (7, "b", ",\"k\":2"),
    ]);
    let (out, stats) = run(PAIR, &events, 2);
    assert_eq!(
        describe(&out),
        [
            // key 1 holds a@1, a@2; a@4 makes three: a@1 goes; a@5: a@2 goes
            "dropped 1..1 [a:1]",
            "dropped 2..2 [a:2]",
            "match 4..6 [a:4,b:6]",
            "match 5..6 [a:5,b:6]",
            // key 2 never had more than one
            "match 3..7 [a:3,b:7]",
        ]
    );
    assert_eq!(stats.dropped_runs, 2);
    assert_eq!(stats.matches, 3);
    // Without the limit every `a` matches.
    let (out, stats) = run(PAIR, &events, usize::MAX);
    assert_eq!(stats.matches, 5);
    assert_eq!(stats.dropped_runs, 0);
    assert!(out.iter().all(|o| !matches!(o, Output::Dropped { .. })));
}

#[test]
fn combinations_stay_bounded_by_the_limit() {
    // 2^40 - 1 partial matches without a limit: this would never end.
    let pattern = r#"pattern p {
        match a{1,} combinations followed by b
        where
            a: type == "a"
            b: type == "b"
    }"#;
    let mut events: Vec<(i64, &str, &str)> = (1..=40).map(|t| (t, "a", "")).collect();
    events.push((41, "b", ""));
    events.push((42, "b", ""));
    let (out, stats) = run(pattern, &lines(&events), 500);
    assert!(stats.dropped_runs > 0);
    let dropped = out
        .iter()
        .filter(|o| matches!(o, Output::Dropped { .. }))
        .count();
    assert_eq!(dropped as u64, stats.dropped_runs);
    // Each `b` completes at most the partial matches that are kept.
    assert!(stats.matches > 0 && stats.matches <= 2 * 500, "{stats:?}");
    // The kept partial matches are the newest: every one that matched
    // started after every dropped one.
    let latest_dropped = out
        .iter()
        .filter(|o| matches!(o, Output::Dropped { .. }))
        .filter_map(Output::as_match)
        .map(|m| m.start)
        .max()
        .unwrap();
    let earliest_match = out
        .iter()
        .filter(|o| matches!(o, Output::Match(_)))
        .filter_map(Output::as_match)
        .map(|m| m.start)
        .min()
        .unwrap();
    assert!(latest_dropped <= earliest_match);
}

#[test]
fn matches_held_behind_a_dropped_partial_match_are_emitted() {
    // a@1 waits for a `b` with its own id, and (skip past last event)
    // holds back the match a@2 b@3 that started after it; dropping a@1
    // releases that match at once.
    let pattern = r#"pattern held {
        partition by k
        skip past last event
        match a followed by b
        where
            a: type == "a"
            b: type == "b" and id == a.id
    }"#;
    let events = lines(&[
        (1, "a", ",\"k\":1,\"id\":1"),
        (2, "a", ",\"k\":1,\"id\":2"),
        (3, "b", ",\"k\":1,\"id\":2"),
        (4, "a", ",\"k\":1,\"id\":3"),
    ]);
    let (out, stats) = run(pattern, &events, 2);
    assert_eq!(
        describe(&out),
        ["dropped 1..1 [a:1]", "match 2..3 [a:2,b:3]"],
        "{out:#?}"
    );
    assert_eq!(stats.dropped_runs, 1);
    // Without the limit a@1 blocks the match for ever (as in Flink).
    let (out, _) = run(pattern, &events, usize::MAX);
    assert!(describe(&out).is_empty(), "{:?}", describe(&out));
}

#[test]
fn below_the_limit_the_pattern_library_gives_the_same_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = Rules::load(root.join("patterns")).unwrap();
    let sample = std::fs::read_to_string(root.join("examples/data/sample.jsonl")).unwrap();
    let outputs = [Engine::<Record>::DEFAULT_MAX_RUNS_PER_KEY, usize::MAX].map(|limit| {
        let mut engine: Engine<Record> = Engine::new().max_runs_per_key(limit);
        engine.add(&rules).unwrap();
        let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
        let mut out: Vec<Output<Record>> = Vec::new();
        for (_, item) in Items::new("sample.jsonl", sample.as_bytes(), decoder) {
            if let Ok(Item::Event(ts, record)) = item {
                engine.push(ts, record, &mut out);
            }
        }
        engine.watermark(cepheid_engine::Timestamp::MAX, &mut out);
        assert_eq!(engine.stats().dropped_runs, 0);
        out
    });
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1]);
}

/// `cepheid run DIR/PATTERN --events DIR/events.jsonl --no-progress EXTRA...`.
fn run_command(dir: &Path, pattern: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("run")
        .arg(dir.join(pattern))
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .arg("--no-progress")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_command_says_which_keys_reached_the_limit_and_counts_the_drops() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run_limit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pair.cep"), PAIR).unwrap();
    let events = lines(&[
        (1, "a", ",\"k\":\"x\""),
        (2, "a", ",\"k\":\"x\""),
        (3, "a", ",\"k\":\"x\""),
        (4, "b", ",\"k\":\"x\""),
    ]);
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let cepheid = |extra: &[&str]| run_command(&dir, "pair.cep", extra);
    let output = cepheid(&["--max-runs-per-key", "2"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stderr.contains(
            "pattern `pair`, key [\"x\"]: more than 2 partial matches; the oldest are dropped (--max-runs-per-key; raise it to keep them)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(", 1 partial match dropped in 1 key over --max-runs-per-key"),
        "{stderr}"
    );
    // The default limit is far away: nothing said.
    let output = cepheid(&[]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("dropped"), "{stderr}");
    // A limit of 0 is a usage error.
    let output = cepheid(&["--max-runs-per-key", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--max-runs-per-key"), "{stderr}");
}

/// One step of a stream for the waiting-limit tests.
#[derive(Clone, Debug)]
enum Step {
    /// An event: time, kind (`a` or `b`), key.
    Event(i64, bool, u8),
    /// A punctuated watermark.
    Watermark(i64),
}

impl Step {
    fn line(&self) -> String {
        match self {
            Step::Event(ts, a, k) => {
                let kind = if *a { "a" } else { "b" };
                format!("{{\"ts\":{ts},\"type\":\"{kind}\",\"k\":{k}}}\n")
            }
            Step::Watermark(t) => format!("{{\"$watermark\":{t}}}\n"),
        }
    }
}

const WITHIN: &str = r#"pattern w {
    partition by k
    within 6ms
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;

/// Runs `steps` with a delay of 3 ms and at most `limit` waiting events:
/// what the sink saw, and after which steps the watermark was forced (and
/// to what).
fn run_waiting(steps: &[Step], limit: usize) -> (Vec<String>, Vec<(usize, i64)>, Stats) {
    let rules = Rules::parse("w.cep", WITHIN).unwrap();
    let mut engine: Engine<Record> =
        Engine::with_max_delay(std::time::Duration::from_millis(3)).max_waiting_events(limit);
    engine.add(&rules).unwrap();
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let text: String = steps.iter().map(Step::line).collect();
    let mut out = Vec::new();
    let mut forced = Vec::new();
    for (i, (_, item)) in Items::new("events.jsonl", text.as_bytes(), decoder).enumerate() {
        let before = engine.stats().forced_watermarks;
        match item.unwrap() {
            Item::Event(ts, record) => {
                engine.push(ts, record, &mut out);
            }
            Item::Watermark(t) => engine.watermark(t, &mut out),
            Item::Skip => {}
        }
        assert!(engine.waiting_events() <= limit);
        if engine.stats().forced_watermarks > before {
            forced.push((i, engine.current_watermark().unwrap()));
        }
    }
    engine.finish(&mut out);
    (describe(&out), forced, engine.stats())
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        12 => (0i64..40, any::<bool>(), 0u8..3).prop_map(|(t, a, k)| Step::Event(t, a, k)),
        1 => (0i64..40).prop_map(Step::Watermark),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// A forced watermark is exactly a watermark inserted at that point:
    /// the stream run with the limit gives what the same stream with those
    /// watermarks, run without a limit, gives.
    #[test]
    fn waiting_events_over_the_limit_act_as_an_inserted_watermark(
        // sorted-ish times with bursts at one time, so the limit is reached
        steps in proptest::collection::vec(step(), 0..120),
        limit in 1usize..6,
    ) {
        let (limited, forced, stats) = run_waiting(&steps, limit);
        proptest::prop_assert_eq!(stats.forced_watermarks, forced.len() as u64);
        let mut with_marks = Vec::new();
        let mut next = forced.iter().peekable();
        for (i, s) in steps.iter().enumerate() {
            with_marks.push(s.clone());
            if let Some((_, t)) = next.next_if(|(at, _)| *at == i) {
                with_marks.push(Step::Watermark(*t));
            }
        }
        let (unlimited, none, _) = run_waiting(&with_marks, usize::MAX);
        proptest::prop_assert!(none.is_empty());
        proptest::prop_assert_eq!(limited, unlimited);
    }
}

#[test]
fn waiting_events_of_a_burst_at_one_time_stay_bounded() {
    // 5,000 events at one time: they all wait (the watermark trails the
    // largest time) until the limit moves the watermark to them.
    let steps: Vec<Step> = (0..5_000).map(|i| Step::Event(7, i % 2 == 0, 0)).collect();
    let (out, forced, stats) = run_waiting(&steps, 1_000);
    // the 1,001st event forces the watermark to 7; the rest are late
    assert_eq!(forced, vec![(1_000, 7)]);
    assert_eq!(stats.late, 5_000 - 1_001);
    assert_eq!(out.iter().filter(|o| o.starts_with("late")).count(), 3_999);
    // the 1,001 processed events at one time: every `a` pairs with every
    // later `b` (the pattern is relaxed, so each run takes the first `b`)
    assert_eq!(out.iter().filter(|o| o.starts_with("match")).count(), 500);
    // without the limit all wait, and all are processed at the end
    let (_, forced, stats) = run_waiting(&steps, usize::MAX);
    assert!(forced.is_empty());
    assert_eq!(stats.late, 0);
}

#[test]
fn the_command_says_when_the_watermark_was_forced() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run_limit_waiting");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("w.cep"), WITHIN).unwrap();
    let steps: Vec<Step> = (0..10).map(|i| Step::Event(5, i % 2 == 0, 0)).collect();
    std::fs::write(
        dir.join("events.jsonl"),
        steps.iter().map(Step::line).collect::<String>(),
    )
    .unwrap();
    let cepheid = |extra: &[&str]| run_command(&dir, "w.cep", extra);
    let output = cepheid(&["--max-waiting", "4"]);
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "more than 4 events waited for the watermark; it moved up to the earliest of them (--max-waiting; raise it to let more wait)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(", 5 late,"), "{stderr}");
    assert!(
        stderr.contains(", watermark moved 1 time over --max-waiting"),
        "{stderr}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    // events 1..5 processed (a b a b a): two matches
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let output = cepheid(&[]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("--max-waiting"), "{stderr}");
    let output = cepheid(&["--max-waiting", "0"]);
    assert_eq!(output.status.code(), Some(2));
}

/// Every key that ever went over `--max-runs-per-key` was remembered for
/// the whole run and written into every checkpoint, after its state was
/// gone: memory and checkpoints grew with key churn without bound. The
/// first 10,000 are remembered (and counted); beyond, the summary says
/// "more than 10000 keys" and a checkpoint holds no more (issue 26).
#[test]
fn keys_over_the_limit_are_remembered_up_to_a_bound_and_checkpoints_stay_bounded() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run_limit_churn");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pair.cep"), PAIR).unwrap();
    // 12,000 keys, each with two `a` (one dropped at the limit of 1).
    let mut events = String::new();
    for k in 0..12_000 {
        for ts in [2 * k, 2 * k + 1] {
            events += &format!("{{\"ts\":{ts},\"type\":\"a\",\"k\":{k}}}\n");
        }
    }
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let ckpt = dir.join("ckpt");
    let output = run_command(
        &dir,
        "pair.cep",
        &[
            "--max-runs-per-key",
            "1",
            "--checkpoint",
            ckpt.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            ", 12000 partial matches dropped in more than 10000 keys over --max-runs-per-key"
        ),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("the oldest are dropped").count(),
        10,
        "{stderr}"
    );
    // The checkpoint's counters (its marker).
    let stored = crate::common::newest_stored(&ckpt).expect("a checkpoint");
    let (kept, overflow) = stored.marker().the_counters().dropped_keys();
    assert_eq!(kept.len(), 10_000);
    assert!(overflow);
}
