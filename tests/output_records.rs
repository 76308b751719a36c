//! One output format: an `Output` of the library, serialized with
//! `serde_json`, is byte for byte the record `cepheid run` prints for it
//! (`cli.md`), and every record the command prints reads back as an
//! `Output` that serializes to the same line.

use std::path::Path;
use std::time::Duration;

use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::{Engine, Output, Record, Rules};

use crate::common::{cepheid, scratch};

/// The library's outputs for `patterns/` over the sample stream: records
/// (matches and timeouts, in the order made) and late events, each
/// serialized.
fn library(max_delay: Duration) -> (Vec<String>, Vec<String>) {
    let rules = Rules::load("patterns").expect("patterns load");
    let mut engine: Engine<Record> = Engine::with_max_delay(max_delay);
    engine.add(&rules).expect("patterns add");
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let input = std::fs::File::open("examples/data/sample.jsonl").expect("sample");
    let mut out: Vec<Output<Record>> = Vec::new();
    for (_line, item) in Items::new("sample.jsonl", input, decoder) {
        match item.expect("the sample is well formed") {
            Item::Event(ts, record) => {
                engine.push(ts, record, &mut out);
            }
            Item::Watermark(t) => engine.watermark(t, &mut out),
            Item::Skip => {}
        }
    }
    engine.finish(&mut out);
    // The counts serialize too, by name.
    let stats = serde_json::to_value(engine.stats()).expect("stats serialize");
    let count = |kind: &str| {
        out.iter()
            .filter(|o| serde_json::to_string(o).unwrap().contains(kind))
            .count()
    };
    assert_eq!(stats["matches"], count(r#""kind":"match""#));
    assert_eq!(stats["timeouts"], count(r#""kind":"timeout""#));
    assert_eq!(stats["late"], count(r#""kind":"late""#));
    let (late, records): (Vec<_>, Vec<_>) = out
        .iter()
        .map(|o| {
            (
                matches!(o, Output::Late { .. }),
                serde_json::to_string(o).expect("serializes"),
            )
        })
        .partition(|(late, _)| *late);
    let text = |v: Vec<(bool, String)>| v.into_iter().map(|(_, s)| s).collect();
    (text(records), text(late))
}

/// The command's records and late events for the same run.
fn command(max_delay: &str, dir: &Path) -> (Vec<String>, Vec<String>) {
    let late = dir.join("late.jsonl");
    let output = cepheid()
        .args(["run", "patterns", "--events", "examples/data/sample.jsonl"])
        .args(["--max-delay", max_delay, "--late"])
        .arg(&late)
        .output()
        .expect("runs cepheid");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
    (
        lines(&String::from_utf8(output.stdout).expect("UTF-8")),
        lines(&std::fs::read_to_string(late).expect("late file")),
    )
}

#[test]
fn a_library_output_serializes_to_the_record_the_command_prints() {
    let dir = scratch("output_records");
    for (delay, millis) in [("0ms", 0), ("5s", 5_000)] {
        let (records, late) = library(Duration::from_millis(millis));
        let (cli_records, cli_late) = command(delay, &dir);
        assert!(records.len() > 10, "the sample makes matches and timeouts");
        assert!(records
            .iter()
            .any(|r| r.starts_with(r#"{"kind":"timeout""#)));
        assert!(records.iter().any(|r| r.contains(r#","select":{"#)));
        assert_eq!(records, cli_records, "--max-delay {delay}");
        assert_eq!(late, cli_late, "--max-delay {delay}");
        if millis == 0 {
            assert!(!late.is_empty(), "the sample has late events at no delay");
        }
    }
}

#[test]
fn every_record_of_the_command_reads_back_and_writes_the_same_line() {
    let dir = scratch("output_records_back");
    let (records, late) = command("0ms", &dir);
    for line in records.iter().chain(&late) {
        let output: Output<Record> = serde_json::from_str(line).expect(line);
        assert_eq!(&serde_json::to_string(&output).expect("serializes"), line);
    }
    // What a record holds, read back.
    let first: Output<Record> = serde_json::from_str(&records[0]).expect("reads");
    let Output::Match(m) = first else {
        panic!("the first record is a match: {}", records[0]);
    };
    assert_eq!(m.pattern, "payment_retry_storm");
    assert_eq!(m.key_fields, ["order_id"]);
    assert_eq!(m.key, [cepheid_engine::Value::from("o-1004")]);
    assert_eq!((m.start, m.end), (1714554630000, 1714554840000));
    assert_eq!(m.stage("declined").len(), 3);
    assert!(m.stage("declined")[0]
        .raw()
        .contains(r#""status": "declined""#));
    assert_eq!(m.selected("attempts"), Some(&cepheid_engine::Value::Int(3)));
}

#[test]
fn a_record_of_another_kind_or_shape_is_an_error() {
    for bad in [
        r#"{"kind":"matched","pattern":"p","key":{},"start":1,"end":1,"events":{}}"#,
        r#"{"kind":"match","key":{},"start":1,"end":1,"events":{}}"#,
        r#"{"kind":"timeout","pattern":"p","key":{},"start":1,"events":{}}"#,
        r#"{"kind":"match","pattern":"p","key":{},"start":1,"end":1,"events":{},"extra":1}"#,
        r#"{"kind":"late"}"#,
    ] {
        assert!(
            serde_json::from_str::<Output<Record>>(bad).is_err(),
            "{bad} was read"
        );
    }
}
