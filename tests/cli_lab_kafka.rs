//! The rule lab over a range of a Kafka topic (`--events kafka://...` with
//! `--kafka-start` and `--kafka-until` by offsets or times,
//! docs/rule-lab.md), on the real broker: `backtest`, `diff` and `why`
//! over a one-partition range give what they give over a file of the
//! same records, and `cepheid run` over the range gives that file's run, to
//! the record. Ranges that do not fit the topic are refused, said.

use crate::common::crash::{self, PATTERNS};
use crate::common::kafka::{produce_lines_to, stderr};
use crate::common::{cepheid, scratch};
use crate::kafka_support::{topic, Broker};

use cepheid_decode::format_rfc3339;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall-clock time now, in milliseconds since the epoch.
fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn cepheid_in(dir: &Path, args: &[&str]) -> Output {
    let output = cepheid()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    output
}

/// `backtest --json`, without the field that names the events.
fn backtest(dir: &Path, events: &[&str]) -> serde_json::Value {
    let mut args = vec!["backtest", "rules.cep", "--json", "--max-delay", "2s"];
    args.extend_from_slice(events);
    let out = cepheid_in(dir, &args);
    let mut report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report.as_object_mut().unwrap().remove("events");
    report
}

/// `diff --json` of the rules against `new.cep`, without the fields that
/// name the rule sets.
fn diff(dir: &Path, events: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "diff",
        "rules.cep",
        "new.cep",
        "--json",
        "--max-delay",
        "2s",
    ];
    args.extend_from_slice(events);
    let out = cepheid_in(dir, &args);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["patterns"].clone()
}

/// The value of `field` that most of `lines` (events) hold.
fn busiest(lines: &[String], field: &str) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for line in lines {
        let event = serde_json::from_str::<serde_json::Value>(line).unwrap_or_default();
        if let Some(value) = event[field].as_str() {
            *counts.entry(value.to_string()).or_default() += 1;
        }
    }
    let most = counts.iter().max_by_key(|(_, n)| **n).expect("events");
    most.0.clone()
}

#[test]
fn the_lab_over_a_kafka_range_gives_what_it_gives_over_a_file_of_its_records() {
    let broker = Broker::start();
    let dir = scratch("lab-kafka-range");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    fs::write(
        dir.join("new.cep"),
        PATTERNS.replace("within 30s", "within 12s"),
    )
    .unwrap();
    let records: Vec<String> = crash::events(3_000).lines().map(str::to_string).collect();
    let input = topic("lab-range");
    broker.create_topic(&input, 1);
    // In three parts, a time between each two: the broker finds a time's
    // first record by the time each batch was stored (tansu 0.6,
    // `crates/kafka/tests/it/source.rs`), so the times given fall between
    // the parts.
    let bootstrap = broker.bootstrap();
    let mut times = Vec::new();
    for part in [&records[..600], &records[600..2_100], &records[2_100..]] {
        if !times.is_empty() {
            sleep(Duration::from_millis(100));
        }
        produce_lines_to(&bootstrap, &input, 0, part);
        sleep(Duration::from_millis(100));
        times.push(now());
    }
    let url = format!("kafka://{bootstrap}/{input}");

    // By offsets, and by times (RFC 3339 and milliseconds).
    let (from_t, to_t) = (format_rfc3339(times[0]), times[1].to_string());
    let ranges = [
        (
            400,
            2_300,
            vec!["--kafka-start", "0:400", "--kafka-until", "0:2300"],
        ),
        (
            600,
            2_100,
            vec!["--kafka-start", &from_t, "--kafka-until", &to_t],
        ),
    ];
    for (from, to, range) in ranges {
        assert!(from > 0 && to > from + 500, "a range inside the topic");
        let slice = &records[from..to];
        fs::write(dir.join("slice.jsonl"), slice.join("\n") + "\n").unwrap();
        let mut kafka = vec!["--events", url.as_str()];
        kafka.extend(range.iter().copied());

        // `run` over the range: the file's run, record for record.
        let run = |events: &[&str], out: &str| {
            let mut args = vec!["run", "rules.cep", "--no-progress", "--max-delay", "2s"];
            args.extend_from_slice(events);
            args.extend(["--output", out]);
            let output = cepheid_in(&dir, &args);
            (
                fs::read_to_string(dir.join(out)).unwrap(),
                crash::summary(&stderr(&output)),
            )
        };
        let file = run(&["--events", "slice.jsonl"], "file.jsonl");
        assert!(file.0.lines().count() > 20, "the range raises alerts");
        assert_eq!(run(&kafka, "kafka.jsonl"), file, "{range:?}");

        let file = backtest(&dir, &["--events", "slice.jsonl"]);
        assert_eq!(backtest(&dir, &kafka), file, "{range:?}");
        assert!(file["patterns"][0]["alerts"].as_u64().unwrap() > 0);

        let file = diff(&dir, &["--events", "slice.jsonl"]);
        assert_eq!(diff(&dir, &kafka), file, "{range:?}");
        let changed = &file.as_array().unwrap()[0];
        assert_eq!(changed["pattern"], "unpaid");
        let differ = changed["old_only"].as_u64().unwrap() + changed["new_only"].as_u64().unwrap();
        assert!(differ > 0, "{changed}");

        // `why` over the range: the file's text (but for the events' name
        // in its first line), for the busiest order and user, each with
        // late events.
        let why = |key: &str, events: &[&str]| {
            let mut args = vec!["why", "rules.cep", key, "--max-delay", "2s"];
            args.extend_from_slice(events);
            String::from_utf8(cepheid_in(&dir, &args).stdout).unwrap()
        };
        for key in [busiest(slice, "order"), busiest(slice, "user")] {
            let file = why(&key, &["--events", "slice.jsonl"]);
            assert!(file.contains("partial match"), "{key}: {file}");
            // (some of its events late: event time moved as the run moves it)
            assert!(!file.contains(", 0 late;"), "{key}: {file}");
            let named = file.replacen(" over slice.jsonl;", &format!(" over {url};"), 1);
            assert_ne!(named, file);
            assert_eq!(why(&key, &kafka), named, "{key} {range:?}");
        }
    }

    // On two workers, the same figures.
    #[cfg(feature = "workers")]
    {
        let mut kafka = vec!["--events", url.as_str()];
        kafka.extend(["--kafka-start", "0:400", "--kafka-until", "0:2300"]);
        let one = backtest(&dir, &kafka);
        kafka.extend(["--workers", "2"]);
        assert_eq!(backtest(&dir, &kafka), one);
    }

    // Ranges that do not fit the topic: refused, said, nothing run.
    let refused = |range: &[&str], said: &str| {
        let output = cepheid()
            .current_dir(&dir)
            .args(["backtest", "rules.cep", "--events", &url])
            .args(range)
            .output()
            .expect("runs");
        assert_eq!(
            output.status.code(),
            Some(4),
            "{range:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(said),
            "{range:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty());
    };
    refused(
        &["--kafka-start", "0:5000"],
        &format!("the start offset 5000 of {input}/0 is outside its records, offsets 0 to"),
    );
    refused(
        &["--kafka-until", "0:9999"],
        &format!("the end offset 9999 of {input}/0 is beyond its end"),
    );
    refused(
        &["--kafka-start", "0:300", "--kafka-until", "0:200"],
        &format!("{input}/0 would end at offset 200, before its start at offset 300"),
    );
    refused(
        &["--kafka-start", "1:0"],
        &format!("topic {input:?} has no partition 1"),
    );
    refused(
        &["--kafka-start", "other:0:0"],
        "the start names topic \"other\", which the source does not read",
    );
    // Kafka options without a Kafka range: a usage error.
    let output = cepheid()
        .current_dir(&dir)
        .args(["backtest", "rules.cep", "--events", "slice.jsonl"])
        .args(["--kafka-until", "end"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("need --events kafka://"));
}
