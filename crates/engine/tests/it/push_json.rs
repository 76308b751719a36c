//! `Engine::<Record>::push_json`: one call per JSON line, decoded with the
//! engine's own field table. It gives exactly what the read → decode →
//! push loop gives (`cepheid_decode::Items`, `Decoder`) over the pattern library
//! and the sample data, watermark and blank lines and line endings
//! included; a malformed line is an `ErrorKind::Input` error saying what is
//! wrong, the engine unchanged; patterns added later and another time
//! field are seen at the next line.

use std::time::Duration;

use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::engine::Pushed;
use cepheid_engine::{Arrival, Engine, ErrorKind, Output, Record, Rules};

fn library_engine() -> Engine<Record> {
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_secs(10));
    engine
        .add(&Rules::load(cepheid_testkit::path("patterns")).unwrap())
        .unwrap();
    engine
}

/// The sample data with a watermark, blank lines and CRLF endings mixed in.
fn input() -> String {
    let sample =
        std::fs::read_to_string(cepheid_testkit::path("examples/data/sample.jsonl")).unwrap();
    let mut text = String::new();
    for (i, line) in sample.lines().enumerate() {
        text.push_str(line);
        text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
        if i == 40 {
            text.push_str("{\"$watermark\": 1714554300000}\n\n");
            // behind the watermark: late
            text.push_str("{\"ts\": 1714554000000, \"type\": \"login\", \"user_id\": \"u-0\"}\n");
        }
    }
    text
}

#[test]
fn push_json_is_the_decode_loop_in_one_call() {
    let text = input();

    let mut by_loop = library_engine();
    let decoder = Decoder::new(Format::JsonLines, "ts", by_loop.fields().clone());
    let mut expected: Vec<Output<Record>> = Vec::new();
    let mut expected_items = Vec::new();
    for (_line, item) in Items::new("in.jsonl", text.as_bytes(), decoder) {
        expected_items.push(match item.unwrap() {
            Item::Event(ts, record) => Pushed::Event(ts, by_loop.push(ts, record, &mut expected)),
            Item::Watermark(t) => {
                by_loop.watermark(t, &mut expected);
                Pushed::Watermark(t)
            }
            Item::Skip => Pushed::Blank,
        });
    }
    by_loop.finish(&mut expected);

    let mut engine = library_engine();
    let mut got: Vec<Output<Record>> = Vec::new();
    let mut got_items = Vec::new();
    for line in text.split_inclusive('\n') {
        got_items.push(engine.push_json(line, "ts", &mut got).unwrap());
    }
    engine.finish(&mut got);

    assert!(expected.len() > 5, "{}", expected.len());
    assert!(expected_items.contains(&Pushed::Watermark(1714554300000)));
    assert!(expected_items.contains(&Pushed::Blank));
    assert!(expected_items
        .iter()
        .any(|p| matches!(p, Pushed::Event(_, Arrival::Late))));
    assert_eq!(got_items, expected_items);
    assert_eq!(got, expected);
    assert_eq!(engine.stats(), by_loop.stats());
}

#[test]
fn a_malformed_line_is_an_error_naming_the_problem() {
    let mut engine: Engine<Record> = Engine::new();
    engine
        .add(&Rules::parse("r.cep", "pattern p { match a where a: n > 1 }").unwrap())
        .unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    engine
        .push_json(r#"{"ts": 5, "n": 2}"#, "ts", &mut out)
        .unwrap();
    for (line, says) in [
        (r#"{"ts": 6, "n": "#, "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        (r#"{"n": 2}"#, "no time field `ts`"),
        (r#"{"ts": "yesterday", "n": 2}"#, "bad time field `ts`"),
        (
            r#"{"$watermark": 10, "n": 2}"#,
            "`$watermark` line must have no other field",
        ),
        (r#"{"$watermark": "soon"}"#, "bad `$watermark`"),
    ] {
        let err = engine.push_json(line, "ts", &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input, "{line}: {err}");
        assert!(err.to_string().contains(says), "{line}: {err}");
    }
    assert_eq!(engine.stats().events, 1);
    assert_eq!(engine.current_watermark(), Some(4));
    engine.finish(&mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn later_patterns_and_another_time_field_are_seen_at_the_next_line() {
    let mut engine: Engine<Record> = Engine::new();
    engine
        .add(&Rules::parse("a.cep", "pattern a { match x where x: n > 1 }").unwrap())
        .unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    engine
        .push_json(r#"{"ts": 1, "n": 2, "m": 9}"#, "ts", &mut out)
        .unwrap();
    // A pattern reading a field the first lines were not decoded for.
    engine
        .add(&Rules::parse("b.cep", "pattern b { match y where y: m > 5 }").unwrap())
        .unwrap();
    engine
        .push_json(r#"{"ts": 2, "n": 0, "m": 9}"#, "ts", &mut out)
        .unwrap();
    // Another time field: a nested one, in RFC 3339.
    let pushed = engine
        .push_json(
            r#"{"meta": {"at": "1970-01-01T00:00:00.003Z"}, "n": 3, "m": 0}"#,
            "meta.at",
            &mut out,
        )
        .unwrap();
    assert_eq!(pushed, Pushed::Event(3, Arrival::Accepted));
    engine.finish(&mut out);
    let found: Vec<(String, i64)> = out
        .iter()
        .map(|o| match o {
            Output::Match(m) => (m.pattern.to_string(), m.start),
            other => panic!("{other:?}"),
        })
        .collect();
    // `b` also matches the first event: it still waited for the watermark
    // when `b` was added, and a waiting record reads the fields it lacks
    // from its text (the engine's rule, `Record::read_missing`).
    assert_eq!(
        found,
        [
            ("a".to_string(), 1),
            ("b".to_string(), 1),
            ("b".to_string(), 2),
            ("a".to_string(), 3)
        ]
    );
}

#[test]
fn an_engine_from_a_snapshot_decodes_with_its_own_table() {
    let rules = Rules::parse(
        "r.cep",
        "pattern ab { partition by k match a followed by b where a: n == 1 b: n == 2 }",
    )
    .unwrap();
    let mut first: Engine<Record> = Engine::new();
    first.add(&rules).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    first
        .push_json(r#"{"ts": 1, "k": "x", "n": 1}"#, "ts", &mut out)
        .unwrap();
    let mut bytes = Vec::new();
    first.snapshot(&mut bytes).unwrap();
    let mut second = Engine::<Record>::from_snapshot(&bytes[..], &rules).unwrap();
    second
        .push_json(r#"{"ts": 2, "k": "x", "n": 2}"#, "ts", &mut out)
        .unwrap();
    second.finish(&mut out);
    assert!(
        matches!(&out[..], [Output::Match(m)] if (m.start, m.end) == (1, 2)),
        "{out:?}"
    );
}

/// One numbering: a pattern added to the engine after the decoder was
/// made from the engine's table reads the field it added, and the
/// decoder extracts it from the next line on.
#[test]
fn fields_added_after_the_decoder_are_decoded() {
    use cepheid_core::{Event, FieldPath, Timestamp, Value};
    for format in [Format::JsonLines, Format::Csv] {
        let mut engine: Engine<Record> = Engine::new();
        let table = engine.fields().clone();
        let mut decoder = Decoder::new(format, "ts", table.clone());
        if format == Format::Csv {
            assert!(matches!(decoder.decode(b"ts,kind,user"), Ok(Item::Skip)));
        }
        let loaded = cepheid_engine::rules::load_str(
            "p.cep",
            r#"pattern p { match a where a: kind == "x" and user == "u" }"#,
        );
        assert!(!loaded.has_errors(), "{}", loaded.render());
        engine.add(&loaded.patterns[0]).unwrap();
        let kind = table.get(&FieldPath::single("kind")).unwrap();
        let line: &[u8] = match format {
            Format::JsonLines => br#"{"ts": 1, "kind": "x", "user": "u"}"#,
            Format::Csv => b"1,x,u",
        };
        let Ok(Item::Event(ts, record)) = decoder.decode(line) else {
            panic!("not an event");
        };
        assert_eq!(record.field(kind), Value::from("x"), "{format:?}");
        let mut outputs: Vec<Output<Record>> = Vec::new();
        engine.push(ts, record, &mut outputs);
        engine.watermark(Timestamp::MAX, &mut outputs);
        assert!(
            matches!(outputs.as_slice(), [Output::Match(_)]),
            "{format:?}: {outputs:?}"
        );
    }
}
