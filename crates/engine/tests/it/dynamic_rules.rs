//! Dynamic rules (`docs/dynamic-rules.md`): `Engine::remove`, `replace`
//! and `set_rules` change the rule set of a running engine at its
//! watermark. Versions and what each change reports, drain and restart,
//! all or nothing, memory freed by a removal, snapshots holding the rule
//! set in force (replaced and draining versions). The records of a change
//! as `cepheid run` writes them (versions, an unchanged set leaving the
//! output byte for byte as it was) are tested by `cepheid-runtime`
//! (`tests/it/dynamic_rules_records.rs`).

use std::time::Duration;

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::{Change, ReloadPolicy};
use cepheid_engine::{Engine, ErrorKind, Output, Record, Rules, Sink, Timestamp};

const V1: &str = r#"pattern ab {
    partition by user
    within 1m
    timeouts
    match a followed by b
    where a: type == "a"
          b: type == "b" }"#;

const V2: &str = r#"pattern ab {
    partition by user
    within 1m
    timeouts
    match a followed by b
    where a: type == "a"
          b: type == "c" }"#;

const OTHER: &str = r#"pattern other {
    partition by user
    match x followed by y
    where x: type == "x"
          y: type == "y" }"#;

fn rules(text: &str) -> Rules {
    Rules::parse("test.cep", text).unwrap()
}

fn record(engine: &Engine<Record>, line: &str) -> (Timestamp, Record) {
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    match decoder.decode(line.as_bytes()).unwrap() {
        Item::Event(ts, r) => (ts, r),
        other => panic!("not an event: {other:?}"),
    }
}

fn push<S: Sink<Record>>(
    engine: &mut Engine<Record>,
    ts: Timestamp,
    user: &str,
    ty: &str,
    out: &mut S,
) {
    let (ts, r) = record(
        engine,
        &format!(r#"{{"ts": {ts}, "user": "{user}", "type": "{ty}"}}"#),
    );
    engine.push(ts, r, out);
}

/// (kind, start, end or expiry, version) of each output.
fn summary(out: &[Output<Record>]) -> Vec<(&'static str, Timestamp, Timestamp, u32)> {
    out.iter()
        .map(|o| match o {
            Output::Match(m) => ("match", m.start, m.end, m.version),
            Output::Timeout {
                partial,
                expired_at,
            } => ("timeout", partial.start, *expired_at, partial.version),
            Output::Dropped { partial } => ("dropped", partial.start, partial.end, partial.version),
            _ => ("late", 0, 0, 0),
        })
        .collect()
}

#[test]
fn drain_lets_old_runs_finish_and_starts_new_ones_under_the_new_version() {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules(V1)).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    push(&mut engine, 1, "u1", "a", &mut out);
    push(&mut engine, 2, "u2", "a", &mut out);
    engine.watermark(2, &mut out);
    let changes = engine
        .replace(&rules(V2), ReloadPolicy::Drain, &mut out)
        .unwrap();
    assert_eq!(changes.get("ab"), Some(Change::Changed { version: 2 }));
    assert_eq!(engine.version("ab"), Some(2));
    assert_eq!(engine.patterns().count(), 1);
    // u1's old run completes with the old condition; the `a` at 4 starts
    // only a new-version run, which completes with the new one.
    push(&mut engine, 3, "u1", "b", &mut out);
    push(&mut engine, 4, "u1", "a", &mut out);
    push(&mut engine, 5, "u1", "b", &mut out);
    push(&mut engine, 6, "u1", "c", &mut out);
    engine.watermark(Timestamp::MAX, &mut out);
    assert_eq!(
        summary(&out),
        [
            ("match", 1, 3, 1),
            ("match", 4, 6, 2),
            // u2's old run times out under the old version's window.
            ("timeout", 2, 60_002, 1)
        ]
    );
    assert_eq!(engine.stats().discarded_runs, 0);
    assert_eq!((engine.live_keys(), engine.stored_events()), (0, 0));
}

#[test]
fn restart_discards_old_runs_and_counts_them() {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules(V1)).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    for (t, user) in [(1, "u1"), (2, "u2"), (3, "u2")] {
        push(&mut engine, t, user, "a", &mut out);
    }
    engine.watermark(3, &mut out);
    assert_eq!(engine.stored_events(), 3);
    engine
        .replace(&rules(V2), ReloadPolicy::Restart, &mut out)
        .unwrap();
    assert_eq!(engine.stats().discarded_runs, 3);
    assert_eq!((engine.live_keys(), engine.stored_events()), (0, 0));
    push(&mut engine, 4, "u1", "b", &mut out);
    push(&mut engine, 5, "u1", "a", &mut out);
    push(&mut engine, 6, "u1", "c", &mut out);
    engine.watermark(Timestamp::MAX, &mut out);
    assert_eq!(summary(&out), [("match", 5, 6, 2)]);
}

#[test]
fn versions_count_changes_and_unchanged_text_keeps_them() {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules(&format!("{V1}\n{OTHER}"))).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    assert_eq!(engine.version("ab"), Some(1));
    let c = engine
        .replace(&rules(V2), ReloadPolicy::Drain, &mut out)
        .unwrap();
    assert_eq!(c.to_string(), "ab: changed (version 2)\n");
    let c = engine
        .replace(&rules(V1), ReloadPolicy::Restart, &mut out)
        .unwrap();
    assert_eq!(c.get("ab"), Some(Change::Changed { version: 3 }));
    // Layout, comments and doc comments are not a change.
    let relaid = format!("/// a doc\n// a comment\n{}", V1.replace('\n', "\n\n  "));
    let c = engine
        .set_rules(
            &rules(&format!("{OTHER}\n{relaid}")),
            ReloadPolicy::Drain,
            &mut out,
        )
        .unwrap();
    assert_eq!(c.to_string(), "other: unchanged\nab: unchanged\n");
    assert!(!c.any());
    assert_eq!(engine.version("ab"), Some(3));
    assert_eq!(engine.version("other"), Some(1));
    // set_rules puts the patterns in the set's order.
    let names: Vec<&str> = engine.patterns().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["other", "ab"]);
    // A removed name is forgotten: added again, it is version 1.
    engine.remove("ab", &mut out).unwrap();
    assert_eq!(engine.version("ab"), None);
    let c = engine
        .replace(&rules(V2), ReloadPolicy::Drain, &mut out)
        .unwrap();
    assert_eq!(c.get("ab"), Some(Change::Added));
    assert_eq!(engine.version("ab"), Some(1));
    let c = engine
        .set_rules(&rules(V2), ReloadPolicy::Drain, &mut out)
        .unwrap();
    assert_eq!(c.to_string(), "ab: unchanged\nother: removed\n");
    assert!(out.is_empty());
    let err = engine.remove("nothing", &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Pattern);
}

/// A typed event: a pattern that reads a field it lacks does not compile.
#[derive(Clone, Debug, cepheid_engine::Event)]
struct Ev {
    user: String,
    kind: String,
}

#[test]
fn a_set_that_fails_changes_nothing() {
    let typed = |text: &str| Rules::parse("t.cep", &text.replace("type ==", "kind ==")).unwrap();
    let mut engine: Engine<Ev> = Engine::new();
    engine.add(&typed(&format!("{V1}\n{OTHER}"))).unwrap();
    let mut out: Vec<Output<Ev>> = Vec::new();
    let ev = |t: &str| Ev {
        user: "u1".into(),
        kind: t.into(),
    };
    engine.push(1, ev("a"), &mut out);
    engine.watermark(1, &mut out);
    // A changed pattern, a removed one and one that does not compile:
    // nothing happens.
    let bad = typed(&format!(
        "{V2}\npattern bad {{ match z where z: missing == 1 }}"
    ));
    for policy in [ReloadPolicy::Drain, ReloadPolicy::Restart] {
        let err = engine.set_rules(&bad, policy, &mut out).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let err = engine.replace(&bad, policy, &mut out).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
    assert_eq!(engine.version("ab"), Some(1));
    assert_eq!(engine.patterns().count(), 2);
    assert_eq!(engine.stats().discarded_runs, 0);
    engine.push(2, ev("b"), &mut out);
    engine.watermark(Timestamp::MAX, &mut out);
    assert!(matches!(&out[..], [Output::Match(m)] if (m.start, m.end, m.version) == (1, 2, 1)));
}

#[test]
fn removing_a_pattern_frees_its_state() {
    let make = || {
        let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_secs(1));
        engine.add(&rules(&format!("{V1}\n{OTHER}"))).unwrap();
        engine
    };
    let mut engine = make();
    let mut baseline = make();
    baseline.remove("ab", &mut Vec::new()).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    let mut base_out: Vec<Output<Record>> = Vec::new();
    for i in 0..10_000 {
        let user = format!("u{i}");
        push(&mut engine, 10, &user, "a", &mut out);
        if i % 10 == 0 {
            push(&mut engine, 10, &user, "x", &mut out);
            push(&mut baseline, 10, &user, "x", &mut base_out);
        }
    }
    engine.watermark(10, &mut out);
    baseline.watermark(10, &mut base_out);
    assert_eq!(engine.live_keys(), 11_000);
    engine.remove("ab", &mut out).unwrap();
    assert_eq!(engine.stats().discarded_runs, 10_000);
    assert_eq!(engine.live_keys(), baseline.live_keys());
    assert_eq!(engine.stored_events(), baseline.stored_events());
    assert!(out.is_empty());
    // And the rest goes on as in an engine that never had it.
    for (e, o) in [(&mut engine, &mut out), (&mut baseline, &mut base_out)] {
        for i in (0..10_000).step_by(10) {
            push(e, 20, &format!("u{i}"), "y", o);
        }
        e.watermark(Timestamp::MAX, o);
    }
    assert_eq!(out, base_out);
    assert_eq!(out.len(), 1_000);
    engine.remove("other", &mut out).unwrap();
    assert_eq!((engine.live_keys(), engine.stored_events()), (0, 0));
}

#[test]
fn snapshots_hold_removals() {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules(&format!("{V1}\n{OTHER}"))).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    push(&mut engine, 1, "u1", "x", &mut out);
    push(&mut engine, 1, "u1", "a", &mut out);
    engine.watermark(1, &mut out);
    engine.remove("ab", &mut out).unwrap();
    let mut bytes = Vec::new();
    engine.snapshot(&mut bytes).unwrap();
    let mut restored: Engine<Record> = Engine::new();
    restored.add(&rules(OTHER)).unwrap();
    restored.restore(&bytes[..]).unwrap();
    let mut got = Vec::new();
    push(&mut restored, 2, "u1", "y", &mut got);
    restored.watermark(Timestamp::MAX, &mut got);
    assert_eq!(summary(&got), [("match", 1, 2, 1)]);
}

/// A snapshot holds the rule set in force: replaced versions, and old
/// versions still draining with their partial matches. `restore` takes
/// the patterns in force from the engine (the draining ones from the
/// snapshot), `restore_rules` all of them from the snapshot; either goes
/// on exactly as the engine that was not interrupted, and snapshots to the
/// same bytes.
#[test]
fn snapshots_hold_replaced_and_draining_versions() {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules(&format!("{V1}\n{OTHER}"))).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    push(&mut engine, 1, "u1", "a", &mut out);
    engine.watermark(1, &mut out);
    engine
        .replace(&rules(V2), ReloadPolicy::Drain, &mut out)
        .unwrap();
    push(&mut engine, 2, "u2", "a", &mut out);
    push(&mut engine, 3, "u2", "x", &mut out);
    engine.watermark(3, &mut out);
    let mut bytes = Vec::new();
    engine.snapshot(&mut bytes).unwrap();

    let rest = |engine: &mut Engine<Record>| {
        let mut out: Vec<Output<Record>> = Vec::new();
        push(engine, 4, "u1", "b", &mut out);
        push(engine, 5, "u2", "c", &mut out);
        push(engine, 6, "u2", "y", &mut out);
        engine.watermark(Timestamp::MAX, &mut out);
        (out, engine.stats())
    };
    let mut own: Engine<Record> = Engine::new();
    own.add(&rules(&format!("{V2}\n{OTHER}"))).unwrap();
    own.restore(&bytes[..]).unwrap();
    let mut from_snapshot: Engine<Record> = Engine::new();
    from_snapshot.restore_rules(&bytes[..]).unwrap();
    for restored in [&own, &from_snapshot] {
        assert_eq!(restored.version("ab"), Some(2));
        assert_eq!(restored.version("other"), Some(1));
        let names: Vec<&str> = restored.patterns().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ab", "other"]);
        let mut again = Vec::new();
        restored.snapshot(&mut again).unwrap();
        assert!(again == bytes, "a restored engine snapshots to other bytes");
    }
    let expected = rest(&mut engine);
    // The old version's run finishes under version 1, the new one's under 2.
    assert_eq!(
        summary(&expected.0),
        [("match", 1, 4, 1), ("match", 2, 5, 2), ("match", 3, 6, 1)]
    );
    assert_eq!(rest(&mut own), expected);
    assert_eq!(rest(&mut from_snapshot), expected);

    // `restore` still wants the engine's patterns to be those in force.
    let mut old_rules: Engine<Record> = Engine::new();
    old_rules.add(&rules(&format!("{V1}\n{OTHER}"))).unwrap();
    let err = old_rules.restore(&bytes[..]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Snapshot);
    assert!(err.to_string().contains("(`ab`) is not the same"), "{err}");
    // `restore_rules` replaces whatever patterns the engine has.
    old_rules.restore_rules(&bytes[..]).unwrap();
    assert_eq!(rest(&mut old_rules), expected);
}

/// A pattern built in Rust with a closure has no source text: a snapshot
/// cannot rebuild it, and says so.
#[test]
fn patterns_with_closures_are_restored_only_from_the_engine() {
    let closure = |ms: u64| {
        cepheid_engine::Pattern::<Record>::begin("a")
            .where_fn(|r: &Record| r.raw().contains("\"a\""))
            .followed_by("b")
            .where_fn(|r: &Record| r.raw().contains("\"b\""))
            .within(Duration::from_millis(ms))
            .name("ab")
            .build()
            .unwrap()
    };
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&closure(1_000)).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    push(&mut engine, 1, "u1", "a", &mut out);
    engine.watermark(1, &mut out);
    let mut bytes = Vec::new();
    engine.snapshot(&mut bytes).unwrap();
    let mut bare: Engine<Record> = Engine::new();
    let err = bare.restore_rules(&bytes[..]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Snapshot);
    assert!(err.to_string().contains("closure"), "{err}");
    assert_eq!(bare.patterns().count(), 0);
    let mut own: Engine<Record> = Engine::new();
    own.add(&closure(1_000)).unwrap();
    own.restore(&bytes[..]).unwrap();

    // A draining version with a closure cannot be rebuilt either.
    engine
        .replace(&closure(2_000), ReloadPolicy::Drain, &mut out)
        .unwrap();
    let mut bytes = Vec::new();
    engine.snapshot(&mut bytes).unwrap();
    let mut own: Engine<Record> = Engine::new();
    own.add(&closure(2_000)).unwrap();
    let err = own.restore(&bytes[..]).unwrap_err();
    assert!(
        err.to_string().contains("draining") && err.to_string().contains("closure"),
        "{err}"
    );
    // Refused, the engine is as it was.
    assert_eq!(own.version("ab"), Some(1));
    own.restore(&small_snapshot_of(&closure(2_000))[..])
        .unwrap();
}

/// A snapshot of a fresh engine with `pattern`.
fn small_snapshot_of(pattern: &cepheid_engine::Pattern<Record>) -> Vec<u8> {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(pattern).unwrap();
    let mut bytes = Vec::new();
    engine.snapshot(&mut bytes).unwrap();
    bytes
}

/// A record that waits for the watermark at a change is processed by the
/// new rules with the fields they read, although it was decoded before
/// them (`docs/dynamic-rules.md`, "Records decoded before a change").
#[test]
fn waiting_records_read_the_new_rules_fields() {
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_secs(10));
    engine.add(&rules(V1)).unwrap();
    let (ts, waiting) = record(
        &engine,
        r#"{"ts": 5, "user": "u1", "amount": 7, "tags": [{"a": 1}]}"#,
    );
    assert_eq!(waiting.values().len(), engine.fields().len());
    let mut out: Vec<Output<Record>> = Vec::new();
    engine.push(ts, waiting, &mut out);
    let big =
        r#"pattern big { partition by user match x where x: amount > 5 and not exists(tags) }"#;
    engine
        .set_rules(&rules(big), ReloadPolicy::Drain, &mut out)
        .unwrap();
    engine.watermark(Timestamp::MAX, &mut out);
    assert_eq!(summary(&out), [("match", 5, 5, 1)]);
    // The same as an engine with the new rules from the start (`tags`
    // holds a list with an object, which reads as null there too).
    let mut fresh: Engine<Record> = Engine::new();
    fresh.add(&rules(big)).unwrap();
    let (ts, again) = record(
        &fresh,
        r#"{"ts": 5, "user": "u1", "amount": 7, "tags": [{"a": 1}]}"#,
    );
    let mut direct: Vec<Output<Record>> = Vec::new();
    fresh.push(ts, again, &mut direct);
    fresh.watermark(Timestamp::MAX, &mut direct);
    assert_eq!(summary(&direct), summary(&out));
}

/// Which outputs were a `shadow` pattern's: (shadow, kind, start, end or
/// expiry, version).
#[derive(Default)]
struct Marked(Vec<(bool, &'static str, Timestamp, Timestamp, u32)>);

impl Sink<Record> for Marked {
    fn on_match(&mut self, m: &cepheid_engine::MatchRef<'_, Record>) {
        self.0
            .push((m.shadow(), "match", m.start(), m.end(), m.version()));
    }

    fn on_timeout(&mut self, m: &cepheid_engine::MatchRef<'_, Record>, expired_at: Timestamp) {
        self.0
            .push((m.shadow(), "timeout", m.start(), expired_at, m.version()));
    }
}

/// `shadow` is not part of a pattern's identity (`docs/rule-lab.md`,
/// "Shadow rules"): promoting it (the same text without the mark) keeps
/// its partial matches and version, and its outputs are no longer
/// shadow ones from the change on; marking it again keeps them too.
#[test]
fn promoting_a_shadow_pattern_keeps_its_partial_matches() {
    let shadow = V1.replace("    timeouts\n", "    timeouts\n    shadow\n");
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules(&shadow)).unwrap();
    assert!(engine.patterns().next().unwrap().shadow);
    let mut out = Marked::default();
    push(&mut engine, 1, "u3", "a", &mut out);
    push(&mut engine, 2, "u3", "b", &mut out);
    push(&mut engine, 3, "u1", "a", &mut out);
    engine.watermark(3, &mut out);
    assert_eq!(out.0, vec![(true, "match", 1, 2, 1)]);
    assert_eq!(engine.pattern_stats()[0].live_runs, 1);
    let mut changed = Vec::<Output<Record>>::new();
    let changes = engine
        .set_rules(&rules(V1), ReloadPolicy::Restart, &mut changed)
        .unwrap();
    assert_eq!(changes.get("ab"), Some(Change::Promoted));
    assert!(changes.any());
    assert_eq!(
        changes.to_string(),
        "ab: promoted (its partial matches kept; every record it emits from here on goes to the output, one whose last event came before included)\n"
    );
    assert!(changed.is_empty());
    assert!(!engine.patterns().next().unwrap().shadow);
    assert_eq!(engine.version("ab"), Some(1));
    let stats = &engine.pattern_stats()[0];
    assert_eq!(
        (stats.live_runs, stats.matches, stats.shadow),
        (1, 1, false)
    );
    // The sequence under way completes under the promoted rule.
    push(&mut engine, 4, "u1", "b", &mut out);
    engine.watermark(4, &mut out);
    assert_eq!(out.0[1..], [(false, "match", 3, 4, 1)]);
    // Marked again: the state stays, its outputs are shadow ones.
    push(&mut engine, 5, "u2", "a", &mut out);
    engine.watermark(5, &mut out);
    let changes = engine
        .set_rules(&rules(&shadow), ReloadPolicy::Restart, &mut changed)
        .unwrap();
    assert_eq!(changes.get("ab"), Some(Change::Shadowed));
    engine.watermark(Timestamp::MAX, &mut out);
    assert_eq!(out.0[2..], [(true, "timeout", 5, 60_005, 1)]);
    // The same text again changes nothing.
    let changes = engine
        .set_rules(&rules(&shadow), ReloadPolicy::Restart, &mut changed)
        .unwrap();
    assert_eq!(changes.get("ab"), Some(Change::Unchanged));
}
