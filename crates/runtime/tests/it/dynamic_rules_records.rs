//! Dynamic rules (`docs/dynamic-rules.md`) as `cepheid run` writes them:
//! the JSON-lines records show a rule's version only for replaced names,
//! and an unchanged rule set leaves the output byte for byte as it was
//! (the engine's own tests of rule changes are `cepheid-engine`'s
//! `tests/it/dynamic_rules.rs`; these read the records the runtime's
//! [`JsonLines`] formats).

use std::path::PathBuf;
use std::time::Duration;

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::ReloadPolicy;
use cepheid_engine::{Engine, Record, Rules, Sink, Timestamp};
use cepheid_runtime::jsonl::JsonLines;

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

#[test]
fn json_lines_show_the_version_only_for_replaced_names() {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules(&format!("{V1}\n{OTHER}"))).unwrap();
    let mut text = Vec::new();
    let mut sink: JsonLines<&mut Vec<u8>, Vec<u8>> = JsonLines::new(&mut text, None);
    push(&mut engine, 1, "u1", "a", &mut sink);
    push(&mut engine, 1, "u1", "x", &mut sink);
    engine.watermark(1, &mut sink);
    engine
        .replace(&rules(V2), ReloadPolicy::Drain, &mut sink)
        .unwrap();
    push(&mut engine, 2, "u1", "b", &mut sink);
    push(&mut engine, 3, "u1", "a", &mut sink);
    push(&mut engine, 4, "u1", "c", &mut sink);
    push(&mut engine, 5, "u1", "y", &mut sink);
    engine.watermark(Timestamp::MAX, &mut sink);
    drop(sink);
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with(r#"{"kind":"match","pattern":"ab","version":1,"key""#));
    assert!(lines[1].starts_with(r#"{"kind":"match","pattern":"ab","version":2,"key""#));
    assert!(lines[2].starts_with(r#"{"kind":"match","pattern":"other","key""#));
}

fn library() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../patterns"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cep"))
            .collect();
    files.sort();
    files
}

/// The engine's JSON-lines output over `lines`, with `set_rules(rules)`
/// before line `at` when given.
fn run_lines(rules: &Rules, lines: &[String], reload_at: Option<usize>) -> Vec<u8> {
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_secs(5));
    engine.add(rules).unwrap();
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut text = Vec::new();
    let mut sink: JsonLines<&mut Vec<u8>, Vec<u8>> = JsonLines::new(&mut text, Some(Vec::new()));
    for (i, line) in lines.iter().enumerate() {
        if reload_at == Some(i) {
            let changes = engine
                .set_rules(rules, ReloadPolicy::Drain, &mut sink)
                .unwrap();
            assert!(!changes.any());
        }
        match decoder.decode(line.as_bytes()).unwrap() {
            Item::Event(ts, r) => {
                engine.push(ts, r, &mut sink);
            }
            Item::Watermark(t) => engine.watermark(t, &mut sink),
            Item::Skip => {}
        }
    }
    engine.watermark(Timestamp::MAX, &mut sink);
    drop(sink);
    text
}

#[test]
fn reloading_the_same_rules_changes_no_byte_of_output() {
    let files = library();
    let rules = Rules::load_all(&files).unwrap();
    // Events over the words of the library's conditions.
    let mut words = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, part) in text.split('"').enumerate() {
            if i % 2 == 1 && !words.contains(&part.to_string()) {
                words.push(part.to_string());
            }
        }
    }
    let mut state = 7u64;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut ts = 1_000_000i64;
    let lines: Vec<String> = (0..3_000)
        .map(|_| {
            ts += [0, 1_000, 30_000, 120_000][next(4) as usize];
            let word = &words[next(words.len() as u64) as usize];
            let key = next(5);
            format!(
                r#"{{"ts": {}, "type": "{word}", "status": "{word}", "user_id": "u{key}", "order_id": "o{key}", "card_id": "c{key}", "account": "a{key}", "ip": "i{key}", "sensor_id": "s{key}", "symbol": "s{key}", "code": "{word}", "amount": {}, "price": {}, "temperature": {}, "success": {}}}"#,
                ts - next(4_000) as i64,
                next(2_000),
                next(200),
                next(120),
                next(2) == 0
            )
        })
        .collect();
    let plain = run_lines(&rules, &lines, None);
    assert!(plain.len() > 1_000, "too little output to compare");
    for at in [0, 1, 777, 1_500, 2_999] {
        assert!(
            run_lines(&rules, &lines, Some(at)) == plain,
            "reload at line {at}"
        );
    }
}
