//! Partition keys (`docs/semantics.md`, "Partition keys"): keys equal
//! under the language's `==` are one partition (`1` and `1.0`, `-0.0` and
//! `0`); objects (alone or in a list) and NaN are unusable keys, counted
//! apart from missing ones and never matched.

use std::sync::Arc;

use cepheid_engine::engine::{Engine, Output};
use cepheid_engine::{Event, Pattern, Record, Value};

const PATTERN: &str = r#"
pattern pair {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
"#;

fn engine() -> Engine<Record> {
    let loaded = cepheid_engine::rules::load_str("test.cep", PATTERN);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let mut engine: Engine<Record> = Engine::new();
    for pattern in &loaded.patterns {
        engine.add(pattern).unwrap();
    }
    engine
}

/// Runs JSON events (`k` given as JSON text) through the pattern.
fn run(events: &[(&str, &str)]) -> (Vec<Output<Record>>, cepheid_engine::engine::Stats) {
    let mut engine = engine();
    let table = engine.fields().clone();
    let mut out = Vec::new();
    for (ts, &(kind, k)) in (1..).zip(events) {
        let text = format!(r#"{{"ts":{ts},"type":"{kind}","k":{k}}}"#);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let record =
            cepheid_decode::record_from_json(&table, json.as_object().unwrap(), Arc::from(text));
        engine.push(ts, record, &mut out);
    }
    engine.finish(&mut out);
    (out, engine.stats())
}

fn keys(out: &[Output<Record>]) -> Vec<Vec<Value>> {
    out.iter()
        .filter_map(Output::as_match)
        .map(|m| m.key.clone())
        .collect()
}

#[test]
fn an_integer_and_an_equal_float_are_one_key() {
    let (out, stats) = run(&[("a", "1"), ("b", "1.0")]);
    assert_eq!(keys(&out), vec![vec![Value::Int(1)]]);
    let (out, _) = run(&[("a", "2.0"), ("b", "2")]);
    // The key shown is the normalized value: the integer.
    assert_eq!(keys(&out), vec![vec![Value::Int(2)]]);
    let (out, _) = run(&[("a", "-0.0"), ("b", "0")]);
    assert_eq!(keys(&out), vec![vec![Value::Int(0)]]);
    let (out, _) = run(&[("a", "[1, 2.5]"), ("b", "[1.0, 2.5]")]);
    assert_eq!(keys(&out).len(), 1);
    assert_eq!((stats.unkeyed, stats.unusable_keys), (0, 0));
}

#[test]
fn keys_compare_exactly_beyond_float_precision() {
    // 2^53 + 1 is not the float 2^53 (though `==` rounds it to that).
    let (out, _) = run(&[("a", "9007199254740993"), ("b", "9007199254740992.0")]);
    assert!(keys(&out).is_empty());
    let (out, _) = run(&[("a", "1.5"), ("b", "1.5")]);
    assert_eq!(keys(&out), vec![vec![Value::Float(1.5)]]);
}

#[test]
fn an_object_key_is_unusable_not_missing() {
    let (out, stats) = run(&[("a", r#"{"x":1}"#), ("b", r#"{"x":1}"#), ("a", "null")]);
    assert!(keys(&out).is_empty());
    assert_eq!(stats.unusable_keys, 2);
    assert_eq!(stats.unkeyed, 1);
}

#[derive(Clone, Debug, Event)]
struct Reading {
    k: f64,
    b: bool,
}

#[test]
fn a_nan_key_is_unusable() {
    let by_field = Pattern::<Reading>::begin("a")
        .where_fn(|e| !e.b)
        .followed_by("b")
        .where_fn(|e| e.b)
        .partition_by("k");
    let by_closure = Pattern::<Reading>::begin("a")
        .where_fn(|e| !e.b)
        .followed_by("b")
        .where_fn(|e| e.b)
        .partition_by_fn(|e| e.k);
    for builder in [by_field, by_closure] {
        nan_run(builder.build().unwrap());
    }
}

fn nan_run(pattern: Pattern<Reading>) {
    let mut engine = Engine::new();
    engine.add(&pattern).unwrap();
    let mut out = Vec::new();
    let at = |k, b| Reading { k, b };
    let events = [
        at(f64::NAN, false),
        at(f64::NAN, true),
        at(-0.0, false),
        at(0.0, true),
    ];
    for (ts, e) in (1..).zip(events) {
        engine.push(ts, e, &mut out);
    }
    engine.finish(&mut out);
    let matches: Vec<_> = out.iter().filter_map(Output::as_match).collect();
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].key, vec![Value::Int(0)]);
    assert_eq!(engine.stats().unusable_keys, 2);
    assert_eq!(engine.stats().unkeyed, 0);
}

/// Runs JSON lines through `pattern` as `cepheid run` reads them (the
/// `io::Decoder`).
fn run_decoded(pattern: &str, lines: &[String]) -> (usize, cepheid_engine::engine::Stats) {
    use cepheid_decode::{Decoder, Format, Item};
    let loaded = cepheid_engine::rules::load_str("test.cep", pattern);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&loaded.patterns[0]).unwrap();
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut out = Vec::new();
    for line in lines {
        match decoder.decode(line.as_bytes()).unwrap() {
            Item::Event(ts, record) => engine.push(ts, record, &mut out),
            item => panic!("not an event: {item:?}"),
        };
    }
    engine.finish(&mut out);
    let matches = out.iter().filter_map(Output::as_match).count();
    (matches, engine.stats())
}

/// An object inside a list used to be read as null (`[{"x":1}]` as
/// `[null]`): a key that silently grouped different events, and a value
/// equal to a real `[null]`. A field holding an object anywhere is null as
/// a whole and an unusable key (`docs/semantics.md`, "Fields holding JSON
/// objects").
#[test]
fn lists_holding_objects_are_unusable_keys_not_lists_of_null() {
    let holding = [r#"[{"x":1}]"#, r#"[1,[{"x":1}]]"#, r#"[[], [[{}]]]"#];
    for k in holding {
        // Parsed whole (`record_from_json`)...
        let (out, stats) = run(&[("a", k), ("b", "[null]"), ("a", "[null]"), ("b", k)]);
        assert!(keys(&out).is_empty(), "{k}: {out:?}");
        assert_eq!((stats.unusable_keys, stats.unkeyed), (2, 0), "{k}");
        // ... and as `cepheid run` reads a line.
        let lines: Vec<String> = [("a", k), ("b", k), ("b", "[null]")]
            .iter()
            .zip(1..)
            .map(|((kind, k), ts)| format!(r#"{{"ts":{ts},"type":"{kind}","k":{k}}}"#))
            .collect();
        let (matches, stats) = run_decoded(PATTERN, &lines);
        assert_eq!(matches, 0, "{k}");
        assert_eq!((stats.unusable_keys, stats.unkeyed), (2, 0), "{k}");
    }
    // Lists of scalars and nulls are still keys.
    let (out, stats) = run(&[
        ("a", "[null]"),
        ("b", "[null]"),
        ("a", "[[1]]"),
        ("b", "[[1.0]]"),
    ]);
    assert_eq!(keys(&out).len(), 2);
    assert_eq!(stats.unusable_keys, 0);
}

#[test]
fn a_list_holding_an_object_is_not_equal_to_a_list_of_null() {
    let pattern = r#"
pattern same {
    match a followed by b
    where
        a: type == "a"
        b: type == "b" and k == a.k
}
"#;
    let line = |ts: i64, kind: &str, k: &str| format!(r#"{{"ts":{ts},"type":"{kind}","k":{k}}}"#);
    let (matches, _) = run_decoded(
        pattern,
        &[line(1, "a", "[null]"), line(2, "b", r#"[{"x":1}]"#)],
    );
    assert_eq!(matches, 0);
    let (matches, _) = run_decoded(
        pattern,
        &[line(1, "a", r#"[{"x":1}]"#), line(2, "b", "[null]")],
    );
    assert_eq!(matches, 0);
    let (matches, _) = run_decoded(pattern, &[line(1, "a", "[null]"), line(2, "b", "[null]")]);
    assert_eq!(matches, 1);
    // Nor a list of anything: `len` of it is null, so `len(k) == 1` fails.
    let pattern = "pattern one {\n match a\n where\n  a: len(k) == 1\n}\n";
    let (matches, _) = run_decoded(
        pattern,
        &[line(1, "a", r#"[{"x":1}]"#), line(2, "a", "[7]")],
    );
    assert_eq!(matches, 1);
}

/// Integers beyond the `i64` range (u64 snowflake ids) were read as one
/// float: neighbours were one key. Up to `u64::MAX` they are exact (a
/// string of their digits), whichever path decodes them.
#[test]
fn integers_beyond_i64_are_exact_keys() {
    let (out, _) = run(&[("a", "12345678901234567890"), ("b", "12345678901234567891")]);
    assert!(keys(&out).is_empty());
    let (out, _) = run(&[("a", "12345678901234567890"), ("b", "12345678901234567890")]);
    assert_eq!(keys(&out), vec![vec![Value::from("12345678901234567890")]]);
    let line = |ts: i64, kind: &str, k: &str| format!(r#"{{"ts":{ts},"type":"{kind}","k":{k}}}"#);
    let apart = [
        line(1, "a", "12345678901234567890"),
        line(2, "b", "12345678901234567891"),
    ];
    assert_eq!(run_decoded(PATTERN, &apart).0, 0);
    // (an escape: the general path)
    let same = [
        line(1, "a\\u0000", "12345678901234567890"),
        line(2, "a", "9223372036854775808"),
        line(3, "b", "9223372036854775808"),
    ];
    assert_eq!(run_decoded(PATTERN, &same).0, 1);
}
