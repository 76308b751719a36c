//! One engine's state split by group of patterns (`Engine::retain_patterns`
//! and `Engine::take_waiting`): what `cepheid run --workers` does with a
//! checkpoint of one engine. Each part, fed the rest of the stream, makes
//! exactly the uninterrupted engine's records of its patterns.

use std::time::Duration;

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::{Engine, Output, Record, Rules, Timestamp};

const RULES: &str = r#"
pattern ab {
    partition by user
    within 30ms
    timeouts
    match a followed by b
    where a: kind == "a"
          b: kind == "b"
}
pattern cd {
    partition by host
    match c followed by d+ followed by e
    where c: kind == "c"
          d: kind == "d"
          e: kind == "a"
}
pattern all {
    within 20ms
    match x followed by y
    where x: kind == "b"
          y: kind == "c"
}
"#;

fn engine(rules: &Rules) -> Engine<Record> {
    let mut engine = Engine::with_max_delay(Duration::from_millis(8)).max_runs_per_key(50);
    engine.add(rules).unwrap();
    engine
}

/// Events in arrival order: (time, event).
type Events = Vec<(Timestamp, Record)>;

/// The test's stream through one engine of `rules` from start to end: the
/// engine, the events and what it gave.
fn uninterrupted(rules: &Rules) -> (Engine<Record>, Events, Vec<Output<Record>>) {
    let mut whole = engine(rules);
    let events = stream(whole.fields());
    let mut expected = Vec::new();
    for (ts, e) in &events {
        whole.push(*ts, e.clone(), &mut expected);
    }
    whole.finish(&mut expected);
    (whole, events, expected)
}

/// A stream out of order within the delay: (time, line).
fn stream(fields: &cepheid_core::record::FieldTable) -> Events {
    let mut decoder = Decoder::new(Format::JsonLines, "ts", fields.clone());
    let kinds = ["a", "b", "c", "d", "a", "d", "b"];
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        state >> 33
    };
    (0..400)
        .map(|i| {
            let ts = i64::from(i) * 3 + (next() % 8) as i64;
            let kind = kinds[(next() % 7) as usize];
            let line = format!(
                r#"{{"ts":{ts},"kind":"{kind}","user":"u{}","host":"h{}"}}"#,
                next() % 5,
                next() % 3
            );
            match decoder.decode(line.as_bytes()).unwrap() {
                Item::Event(ts, record) => (ts, record),
                _ => panic!("not an event"),
            }
        })
        .collect()
}

/// The records of pattern `name`, sorted (as text).
fn of(out: &[Output<Record>], name: &str) -> Vec<String> {
    let mut texts: Vec<String> = out
        .iter()
        .filter(|o| match o {
            Output::Match(m) => m.pattern == name,
            Output::Timeout { partial, .. } => partial.pattern == name,
            _ => false,
        })
        .map(|o| format!("{o:?}"))
        .collect();
    texts.sort();
    texts
}

#[test]
fn each_group_of_a_split_engine_ends_as_the_uninterrupted_engine() {
    let rules = Rules::parse("r.cep", RULES).unwrap();
    let (whole, events, expected) = uninterrupted(&rules);
    for cut in [0, 1, 57, 200, 399, 400] {
        let mut first = engine(&rules);
        let mut before = Vec::new();
        for (ts, e) in &events[..cut] {
            first.push(*ts, e.clone(), &mut before);
        }
        let mut snapshot = Vec::new();
        first.snapshot(&mut snapshot).unwrap();
        for name in ["ab", "cd", "all"] {
            let mut part = engine(&rules);
            part.restore(&snapshot[..]).unwrap();
            let taken = part.stats().events;
            let waiting = part.take_waiting();
            assert_eq!(part.stats().events + waiting.len() as u64, taken);
            assert_eq!(part.waiting_events(), 0);
            // (a cut after some events always leaves some waiting: the
            // delay is above the steps of time)
            assert_eq!(waiting.is_empty(), cut == 0, "cut at {cut}");
            part.retain_patterns(|_, p| p.name == name, false);
            let names: Vec<_> = part.patterns().map(|p| p.name.clone()).collect();
            assert_eq!(names, [name]);
            // The part still snapshots and restores (as a worker's engine).
            let mut bytes = Vec::new();
            part.snapshot(&mut bytes).unwrap();
            let mut part = Engine::<Record>::from_snapshot_rules(&bytes[..]).unwrap();
            // What waited, then the rest, in (time, arrival) order: the
            // order a source's clock releases them in.
            let mut rest: Vec<(Timestamp, Record)> = waiting;
            let mut later = events[cut..].to_vec();
            later.sort_by_key(|(ts, _)| *ts);
            rest.extend(later);
            rest.sort_by_key(|(ts, _)| *ts);
            let mut out = before.clone();
            for (ts, e) in rest {
                part.push(ts, e, &mut out);
            }
            part.finish(&mut out);
            assert_eq!(part.stats().events, whole.stats().events, "{name}");
            let made = |e: &Engine<Record>| {
                let stats = e.pattern_stats();
                let p = stats.iter().find(|p| p.name == name).unwrap();
                (p.matches, p.timeouts)
            };
            let stats = part.stats();
            assert_eq!((stats.matches, stats.timeouts), made(&whole), "{name}");
            let counts = |e: &Engine<Record>| {
                let stats = e.pattern_stats();
                format!("{:?}", stats.iter().find(|p| p.name == name))
            };
            assert_eq!(counts(&part), counts(&whole), "{name}, cut at {cut}");
            assert!(!of(&expected, name).is_empty(), "{name} matches nothing");
            assert_eq!(of(&out, name), of(&expected, name), "{name}, cut at {cut}");
            // The state left is the group's alone.
            assert!(of(&out, name).len() <= out.len());
        }
    }
}

#[test]
fn retaining_every_pattern_changes_nothing_and_none_leaves_no_state() {
    let rules = Rules::parse("r.cep", RULES).unwrap();
    let mut engine = engine(&rules);
    let events = stream(engine.fields());
    let mut out = Vec::new();
    for (ts, e) in &events[..100] {
        engine.push(*ts, e.clone(), &mut out);
    }
    let (runs, keys) = (engine.live_runs(), engine.live_keys());
    assert!(runs > 0);
    engine.retain_patterns(|_, _| true, false);
    assert_eq!((engine.live_runs(), engine.live_keys()), (runs, keys));
    engine.retain_patterns(|_, _| false, false);
    assert_eq!(engine.patterns().count(), 0);
    assert_eq!((engine.live_runs(), engine.live_keys()), (0, 0));
    assert_eq!(engine.stored_events(), 0);
}

/// Events waiting for the watermark, in order.
type Waiting = Vec<(Timestamp, Record)>;

/// The engines of `groups` (pattern names) over two ranges of keys each,
/// made from `snapshot` as a cut of two workers holds them, with the
/// events that waited: a worker run's state at a cut.
fn pieces(rules: &Rules, snapshot: &[u8], cut: usize) -> (Vec<(Engine<Record>, bool)>, Waiting) {
    let mut waiting = Vec::new();
    let mut pieces = Vec::new();
    for (group, name) in ["ab", "cd", "all"].into_iter().enumerate() {
        for half in [0, 1] {
            let mut part = engine(rules);
            part.restore(snapshot).unwrap();
            waiting = part.take_waiting();
            part.retain_patterns(|_, p| p.name == name, false);
            // (by the key's text: two disjoint halves of the keys)
            let side = |key: &[cepheid_engine::Value]| {
                (format!("{key:?}").bytes().map(u32::from).sum::<u32>() % 2) as u8
            };
            part.retain_keys(|key| side(key) == half, half == 0);
            if cut == 399 && name != "all" {
                // (both halves hold keys)
                assert!(part.live_keys() > 0, "{name} {half}");
            }
            pieces.push((part, group == 0));
        }
    }
    (pieces, waiting)
}

#[test]
fn engines_of_every_group_and_range_merged_into_one_end_as_the_uninterrupted_engine() {
    let rules = Rules::parse("r.cep", RULES).unwrap();
    let (whole, events, expected) = uninterrupted(&rules);
    let all = |out: &[Output<Record>]| {
        let mut texts: Vec<String> = out.iter().map(|o| format!("{o:?}")).collect();
        texts.sort();
        texts
    };
    for cut in [0, 1, 57, 200, 399, 400] {
        let mut first = engine(&rules);
        let mut out = Vec::new();
        for (ts, e) in &events[..cut] {
            first.push(*ts, e.clone(), &mut out);
        }
        let mut snapshot = Vec::new();
        first.snapshot(&mut snapshot).unwrap();
        let (pieces, waiting) = pieces(&rules, &snapshot, cut);
        let mut merged = engine(&rules);
        for (piece, events) in pieces {
            merged.absorb(piece, events).unwrap();
        }
        merged
            .resume_clock((first.current_watermark(), first.max_seen()), waiting, 0)
            .unwrap();
        assert_eq!(merged.live_runs(), first.live_runs(), "cut at {cut}");
        assert_eq!(merged.live_keys(), first.live_keys(), "cut at {cut}");
        assert_eq!(merged.waiting_events(), first.waiting_events());
        assert_eq!(merged.stats(), first.stats(), "cut at {cut}");
        // The merged engine snapshots and restores as any.
        let mut bytes = Vec::new();
        merged.snapshot(&mut bytes).unwrap();
        let mut merged = Engine::<Record>::from_snapshot(&bytes[..], &rules).unwrap();
        for (ts, e) in &events[cut..] {
            merged.push(*ts, e.clone(), &mut out);
        }
        merged.finish(&mut out);
        assert_eq!(all(&out), all(&expected), "cut at {cut}");
        assert_eq!(merged.stats(), whole.stats(), "cut at {cut}");
        assert_eq!(
            format!("{:?}", merged.pattern_stats()),
            format!("{:?}", whole.pattern_stats()),
            "cut at {cut}"
        );
    }
}

#[test]
fn an_engine_of_other_patterns_or_with_events_waiting_is_not_taken_in() {
    let rules = Rules::parse("r.cep", RULES).unwrap();
    let mut busy = engine(&rules);
    let events = stream(busy.fields());
    let mut out = Vec::new();
    for (ts, e) in &events[..50] {
        busy.push(*ts, e.clone(), &mut out);
    }
    let mut merged = engine(&rules);
    let error = merged.absorb(busy, true).unwrap_err();
    assert!(error.message().contains("waiting"), "{}", error.message());
    let other = Rules::parse("o.cep", "pattern zz { match x where x: n > 1 }").unwrap();
    let mut stranger: Engine<Record> = engine(&other);
    let error = merged.absorb(std::mem::replace(&mut stranger, engine(&other)), true);
    assert!(error.unwrap_err().message().contains("`zz`"));
    // A key held by both is not one stream cut in parts.
    let mut a = engine(&rules);
    let mut b = engine(&rules);
    for (ts, e) in &events[..50] {
        a.push(*ts, e.clone(), &mut out);
        b.push(*ts, e.clone(), &mut out);
    }
    a.take_waiting();
    b.take_waiting();
    merged.absorb(a, true).unwrap();
    let error = merged.absorb(b, false).unwrap_err();
    assert!(error.message().contains("both"), "{}", error.message());
}
