//! The limit on live partial matches over all keys and patterns
//! (`docs/semantics.md`, "The limit on live partial matches"): after each
//! step the engine holds at most that many; the key being stepped keeps
//! only what fits, its oldest dropped as the per-key limit drops them,
//! each reported and counted; below it nothing changes.

use std::path::Path;
use std::process::Command;

use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::engine::{Engine, MatchRef, Output, Sink, Stats};
use cepheid_engine::{Record, Rules, Timestamp};
use proptest::prelude::*;

/// Keeps every output, and counts the dropped partial matches the cap
/// dropped ([`MatchRef::capped`]).
#[derive(Default)]
struct Collect {
    out: Vec<Output<Record>>,
    capped: u64,
}

impl Sink<Record> for Collect {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        assert!(!m.capped());
        self.out.on_match(m);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.out.on_timeout(m, expired_at);
    }

    fn on_late(&mut self, ts: Timestamp, event: &Record) {
        self.out.on_late(ts, event);
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, Record>) {
        self.capped += u64::from(partial.capped());
        self.out.on_dropped(partial);
    }
}

/// One event: `a` or `b`, its key `k`, its group `g`, its `id`.
#[derive(Clone, Copy, Debug)]
struct Ev {
    a: bool,
    k: u8,
    g: u8,
    id: u8,
}

fn ev() -> impl Strategy<Value = Ev> {
    (prop::bool::weighted(0.7), 0u8..6, 0u8..2, 0u8..3).prop_map(|(a, k, g, id)| Ev { a, k, g, id })
}

/// The events as JSON lines, at times 1, 2, 3, ...
fn json(events: &[Ev]) -> String {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let kind = if e.a { "a" } else { "b" };
            format!(
                "{{\"ts\":{},\"type\":\"{kind}\",\"k\":{},\"g\":{},\"id\":{}}}\n",
                i + 1,
                e.k,
                e.g,
                e.id
            )
        })
        .collect()
}

fn engine(rules: &str, per_key: usize, cap: usize) -> Engine<Record> {
    let mut engine: Engine<Record> = Engine::new().max_runs_per_key(per_key).max_live_runs(cap);
    engine
        .add(&Rules::parse("test.cep", rules).unwrap())
        .unwrap();
    engine
}

fn records(engine: &Engine<Record>, events: &[Ev]) -> Vec<(Timestamp, Record)> {
    let text = json(events);
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    Items::new("events.jsonl", text.as_bytes(), decoder)
        .filter_map(|(_, item)| match item.unwrap() {
            Item::Event(ts, record) => Some((ts, record)),
            _ => None,
        })
        .collect()
}

/// Runs the events, each processed at once (a watermark at its time after
/// it); calls `after` after each. Returns the outputs and the counters.
fn run(
    engine: &mut Engine<Record>,
    events: &[(Timestamp, Record)],
    sink: &mut Collect,
    mut after: impl FnMut(&Engine<Record>, &Collect),
) {
    for (ts, record) in events {
        engine.push(*ts, record.clone(), sink);
        engine.watermark(*ts, sink);
        after(engine, sink);
    }
}

/// Three patterns of one shape: every `a` starts one partial match, which
/// ends as a match (the next `b` of its key), a timeout (`pair` only) or a
/// drop. `pair` and `pair2` share their keys (one group), `pair_g` has its
/// own.
const PAIRS: &str = r#"
pattern pair {
    partition by k
    within 8ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
pattern pair2 {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
pattern pair_g {
    partition by g
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;

/// Patterns that fork, hold matches back, and wait on ids.
const SHAPES: &str = r#"
pattern held {
    partition by g
    skip past last event
    match a followed by b
    where
        a: type == "a"
        b: type == "b" and id == a.id
}
pattern combos {
    partition by k
    within 5ms
    match a{1,} combinations followed by b
    where
        a: type == "a"
        b: type == "b"
}
pattern pair {
    partition by k
    within 8ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;

fn count(out: &[Output<Record>], pattern: &str, kind: fn(&Output<Record>) -> bool) -> usize {
    out.iter()
        .filter(|o| kind(o) && o.as_match().is_some_and(|m| m.pattern == pattern))
        .count()
}

fn is_match(o: &Output<Record>) -> bool {
    matches!(o, Output::Match(_))
}

fn is_timeout(o: &Output<Record>) -> bool {
    matches!(o, Output::Timeout { .. })
}

fn is_dropped(o: &Output<Record>) -> bool {
    matches!(o, Output::Dropped { .. })
}

/// The drops the outputs show agree with the counters.
fn check_counted(sink: &Collect, stats: &Stats) -> Result<(), TestCaseError> {
    let dropped = sink.out.iter().filter(|o| is_dropped(o)).count() as u64;
    prop_assert_eq!(dropped, stats.dropped_runs);
    prop_assert_eq!(sink.capped, stats.capped_runs);
    prop_assert!(stats.capped_runs <= stats.dropped_runs);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// After every event the live partial matches are at most the cap, and
    /// exactly what the outputs leave: each `a` started one partial match
    /// per pattern, and each match, timeout and drop ended one.
    #[test]
    fn the_live_count_is_exact_and_never_over_the_cap(
        events in prop::collection::vec(ev(), 0..80),
        cap in 1usize..12,
        per_key in prop_oneof![Just(usize::MAX), 1usize..5],
    ) {
        let mut engine = engine(PAIRS, per_key, cap);
        let input = records(&engine, &events);
        let mut sink = Collect::default();
        let mut a = 0;
        let mut failure = None;
        let mut i = 0;
        run(&mut engine, &input, &mut sink, |engine, sink| {
            a += usize::from(events[i].a);
            i += 1;
            let ended: usize = ["pair", "pair2", "pair_g"]
                .iter()
                .map(|p| {
                    count(&sink.out, p, is_match)
                        + count(&sink.out, p, is_timeout)
                        + count(&sink.out, p, is_dropped)
                })
                .sum();
            let live = engine.live_runs();
            if failure.is_none() && (live > cap || live != 3 * a - ended) {
                failure = Some(format!("after event {i}: {live} live, cap {cap}, {a} a's, {ended} ended"));
            }
        });
        prop_assert!(failure.is_none(), "{}", failure.unwrap_or_default());
        check_counted(&sink, &engine.stats())?;
    }

    /// Forks, held matches and several groups: never over the cap; when
    /// the cap drops nothing the outputs are those of an engine without
    /// it, and an engine that never holds more than the cap is one whose
    /// cap drops nothing.
    #[test]
    fn below_the_cap_nothing_changes(
        events in prop::collection::vec(ev(), 0..60),
        cap in 1usize..40,
        per_key in prop_oneof![Just(usize::MAX), 1usize..6],
    ) {
        let mut capped = engine(SHAPES, per_key, cap);
        let input = records(&capped, &events);
        let mut sink = Collect::default();
        let mut over = false;
        run(&mut capped, &input, &mut sink, |engine, _| over |= engine.live_runs() > cap);
        capped.finish(&mut sink);
        prop_assert!(!over, "more than {} live", cap);
        prop_assert!(capped.live_runs() <= cap);
        check_counted(&sink, &capped.stats())?;

        let mut free = engine(SHAPES, per_key, usize::MAX);
        let mut free_sink = Collect::default();
        let mut most = 0;
        run(&mut free, &input, &mut free_sink, |engine, _| most = most.max(engine.live_runs()));
        free.finish(&mut free_sink);
        prop_assert_eq!(free.stats().capped_runs, 0);
        if most <= cap {
            prop_assert_eq!(capped.stats().capped_runs, 0);
        }
        if capped.stats().capped_runs == 0 {
            prop_assert_eq!(&sink.out, &free_sink.out);
            prop_assert_eq!(capped.stats(), free.stats());
        } else {
            prop_assert!(most > cap);
        }
    }

    /// An engine restored from a snapshot taken at the cap goes on exactly
    /// as the one that wrote it.
    #[test]
    fn a_restored_engine_behaves_identically_at_the_cap(
        events in prop::collection::vec(ev(), 1..60),
        cut in 0usize..60,
        cap in 1usize..8,
    ) {
        let cut = cut.min(events.len());
        let mut whole = engine(SHAPES, usize::MAX, cap);
        let input = records(&whole, &events);
        let mut expected = Collect::default();
        run(&mut whole, &input, &mut expected, |_, _| {});
        whole.finish(&mut expected);

        let mut first = engine(SHAPES, usize::MAX, cap);
        let mut got = Collect::default();
        run(&mut first, &input[..cut], &mut got, |_, _| {});
        let mut bytes = Vec::new();
        first.snapshot(&mut bytes).unwrap();
        let mut second = engine(SHAPES, usize::MAX, cap);
        second.restore(&bytes[..]).unwrap();
        prop_assert_eq!(second.live_runs(), first.live_runs());
        prop_assert_eq!(second.stats(), first.stats());
        run(&mut second, &input[cut..], &mut got, |_, _| {});
        second.finish(&mut got);
        prop_assert_eq!(&got.out, &expected.out);
        prop_assert_eq!(got.capped, expected.capped);
        prop_assert_eq!(second.stats(), whole.stats());
        prop_assert_eq!(second.live_runs(), whole.live_runs());
    }
}

/// Many keys each far under the per-key limit, together over the cap: the
/// case the per-key limit misses.
#[test]
fn many_keys_under_the_per_key_limit_are_bounded_by_the_cap() {
    let pair = r#"pattern pair {
        partition by k
        match a followed by b
        where
            a: type == "a"
            b: type == "b"
    }"#;
    // (a key per event: `k` is the event's number)
    let text: String = (0..1_000)
        .map(|i| format!("{{\"ts\":{},\"type\":\"a\",\"k\":{i}}}\n", i + 1))
        .collect();
    let feed = |mut engine: Engine<Record>| {
        let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
        let mut sink = Collect::default();
        for (_, item) in Items::new("e.jsonl", text.as_bytes(), decoder) {
            if let Item::Event(ts, record) = item.unwrap() {
                engine.push(ts, record, &mut sink);
            }
        }
        engine.finish(&mut sink);
        (engine, sink)
    };
    let unbounded = engine(pair, 10, usize::MAX);
    let (unbounded, sink) = feed(unbounded);
    assert_eq!(unbounded.live_runs(), 1_000);
    assert_eq!(unbounded.stats().dropped_runs, 0);
    assert!(sink.out.is_empty());

    let (bounded, sink) = feed(engine(pair, 10, 100));
    assert_eq!(bounded.live_runs(), 100);
    assert_eq!(bounded.live_keys(), 100);
    let stats = bounded.stats();
    assert_eq!((stats.dropped_runs, stats.capped_runs), (900, 900));
    assert_eq!(sink.capped, 900);
    // The keys that came after the cap was reached: each new partial
    // match dropped at once, in arrival order.
    let dropped: Vec<i64> = sink
        .out
        .iter()
        .filter_map(|o| match o {
            Output::Dropped { partial, .. } => Some(partial.start),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, (101..=1_000).collect::<Vec<i64>>());
}

/// The cap drops the oldest partial matches of the key being stepped, as
/// the per-key limit does, and frees its room when matches end.
#[test]
fn the_stepped_key_drops_its_oldest_and_room_comes_back() {
    let pair = r#"pattern pair {
        partition by k
        match a followed by b
        where
            a: type == "a"
            b: type == "b"
    }"#;
    let text = [
        (1, "a", "x"),
        (2, "a", "x"),
        (3, "a", "y"),
        (4, "a", "x"), // x holds 2, y 1: x keeps 2 of its 3 (a@1 dropped)
        (5, "b", "y"), // y's match frees one place
        (6, "a", "x"), // x holds 3: a@2 stays, nothing dropped
        (7, "b", "x"),
    ]
    .iter()
    .map(|(ts, kind, k)| format!("{{\"ts\":{ts},\"type\":\"{kind}\",\"k\":\"{k}\"}}\n"))
    .collect::<String>();
    let mut engine = engine(pair, 10, 3);
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut sink = Collect::default();
    for (_, item) in Items::new("e.jsonl", text.as_bytes(), decoder) {
        if let Item::Event(ts, record) = item.unwrap() {
            engine.push(ts, record, &mut sink);
            engine.watermark(ts, &mut sink);
            assert!(engine.live_runs() <= 3);
        }
    }
    let seen: Vec<String> = sink
        .out
        .iter()
        .map(|o| {
            let m = o.as_match().unwrap();
            let kind = if is_dropped(o) { "dropped" } else { "match" };
            format!("{kind} {}..{}", m.start, m.end)
        })
        .collect();
    assert_eq!(
        seen,
        [
            "dropped 1..1",
            "match 3..5",
            "match 2..7",
            "match 4..7",
            "match 6..7"
        ]
    );
    assert_eq!(engine.live_runs(), 0);
    assert_eq!(engine.stats().capped_runs, 1);
}

/// Removing a pattern gives back the room its partial matches took.
#[test]
fn removed_patterns_give_their_room_back() {
    let mut engine = engine(PAIRS, usize::MAX, 100);
    let events: Vec<Ev> = (0..6)
        .map(|i| Ev {
            a: true,
            k: i,
            g: i % 2,
            id: 0,
        })
        .collect();
    let input = records(&engine, &events);
    let mut sink = Collect::default();
    run(&mut engine, &input, &mut sink, |_, _| {});
    assert_eq!(engine.live_runs(), 18);
    engine.remove("pair2", &mut sink).unwrap();
    assert_eq!(engine.live_runs(), 12);
    assert_eq!(engine.stats().discarded_runs, 6);
}

/// A snapshot records the cap: an engine with another refuses it.
#[test]
fn a_snapshot_taken_with_another_cap_is_refused() {
    let mut bytes = Vec::new();
    engine(PAIRS, 10, 100).snapshot(&mut bytes).unwrap();
    let err = engine(PAIRS, 10, 200).restore(&bytes[..]).unwrap_err();
    assert!(
        err.to_string()
            .contains("at most 100 live partial matches, this engine has 200"),
        "{err}"
    );
    engine(PAIRS, 10, 100).restore(&bytes[..]).unwrap();
}

/// `cepheid run --max-live-runs N`: said once, counted in the summary,
/// exit 0; 0 is a usage error.
#[test]
fn the_command_says_once_that_the_cap_dropped_and_counts_the_drops() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live_limit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pair.cep"),
        r#"pattern pair {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#,
    )
    .unwrap();
    let events: String = (1..=6)
        .map(|t| format!("{{\"ts\":{t},\"type\":\"a\",\"k\":{t}}}\n"))
        .chain(std::iter::once(
            "{\"ts\":7,\"type\":\"b\",\"k\":1}\n".to_string(),
        ))
        .collect();
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let cepheid = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cepheid"))
            .arg("run")
            .arg(dir.join("pair.cep"))
            .arg("--events")
            .arg(dir.join("events.jsonl"))
            .arg("--no-progress")
            .args(extra)
            .output()
            .unwrap()
    };
    let output = cepheid(&["--max-live-runs", "2"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    // keys 1 and 2 kept, 3 to 6 dropped; key 1's match comes out
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let said = "cepheid: 2 partial matches live over all keys and patterns; \
                keys that would hold more drop their oldest (--max-live-runs; raise it to keep them)";
    assert_eq!(stderr.matches(said).count(), 1, "{stderr}");
    assert!(
        stderr.contains(", 4 partial matches dropped over --max-live-runs"),
        "{stderr}"
    );
    assert!(!stderr.contains("--max-runs-per-key"), "{stderr}");
    // The default is far away: nothing said.
    let output = cepheid(&[]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("dropped"), "{stderr}");
    // 0 is a usage error.
    let output = cepheid(&["--max-live-runs", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--max-live-runs"), "{stderr}");
}
