//! A shadow topic (issue 42, `docs/rule-lab.md`, "Shadow rules"): with
//! `--output kafka://B/O`, `--shadow-output kafka://B/S` takes the records
//! of `shadow` patterns, each keyed by its partition key as the matches
//! are, in the output's transactions with `--checkpoint`. Against the real
//! broker: the shadow topic holds exactly the lines a file run writes to
//! its `--shadow-output`, key by key in order, and the output topic none
//! of them; on one engine and on 2 workers; and the refusals.

use crate::common::kafka::{by_key, lines, partition_among, produce_lines_to, stderr};
use crate::common::{run_here, scratch};
use crate::kafka_support::{topic, Broker};

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// A live rule (`steady`) and a shadow one (`watch`), both keyed by
/// `user`.
const RULES: &str = r#"
pattern steady {
    partition by user
    within 3s
    match a followed by c
    where
        a: type == "a"
        c: type == "c"
}

pattern watch {
    partition by user
    within 8s
    timeouts
    shadow
    match a followed by b{2} followed by c
    where
        a: type == "a"
        b: type == "b"
        c: type == "c"
}
"#;

/// `n` events of 8 users in strictly increasing time (steps of 1 to 400
/// ms).
fn events(n: usize) -> Vec<String> {
    let mut seed: u64 = 0x005E_ED42;
    let mut next = move |m: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % m
    };
    let mut ts = 1_000i64;
    (0..n)
        .map(|i| {
            ts += 1 + next(400) as i64;
            let user = format!("u{}", next(8));
            let kind = ["a", "b", "b", "c", "x"][next(5) as usize];
            format!(r#"{{"ts":{ts},"user":"{user}","type":"{kind}","n":{i}}}"#)
        })
        .collect()
}

/// The records of `topic` as a `read_committed` consumer sees them, by
/// partition key (each key's in offset order), after checking that each
/// record's Kafka key is its partition key and that a key's records are
/// in one partition.
fn read_by_key(broker: &Broker, topic: &str) -> BTreeMap<String, Vec<String>> {
    let seen = broker.read_topic(topic, "read_committed");
    let mut partition_of: BTreeMap<String, i32> = BTreeMap::new();
    for s in &seen {
        let value: serde_json::Value = serde_json::from_str(&s.payload).expect("JSON");
        let key: serde_json::Value =
            serde_json::from_str(s.key.as_deref().expect("a key")).expect("a JSON key");
        assert_eq!(key, value["key"], "the record's Kafka key is its partition key");
        let p = *partition_of.entry(key.to_string()).or_insert(s.partition);
        assert_eq!(p, s.partition, "a key's records in one partition of {topic}");
    }
    by_key(seen.iter().map(|s| s.payload.as_str()))
}

/// The file run's shadow output and output in `dir`, then the same events
/// from a 2-partition topic (each user's in one) to an output topic and a
/// shadow topic (2 partitions each), with `--checkpoint` and `extra`
/// flags: the shadow topic holds the file run's shadow lines key by key,
/// the output topic the file run's output and no shadow record.
fn shadow_topic_holds_the_file_runs_shadow_output(name: &str, extra: &[&str]) {
    let broker = Broker::start();
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    let events = events(3000);
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = run_here(&dir)
        .args(["--max-delay", "0ms", "--output", "out.jsonl"])
        .args(["--shadow-output", "shadow.jsonl"])
        .output()
        .unwrap();
    assert!(file.status.success(), "{}", stderr(&file));
    let (input, output, shadow) = (
        topic(&format!("{name}-in")),
        topic(&format!("{name}-out")),
        topic(&format!("{name}-shadow")),
    );
    for t in [&input, &output, &shadow] {
        broker.create_topic(t, 2);
    }
    let b = broker.bootstrap();
    for p in 0..2 {
        let part: Vec<String> = (events.iter())
            .filter(|l| partition_among(l, 2) == p)
            .cloned()
            .collect();
        produce_lines_to(&b, &input, p, &part);
    }
    let run = kafka_run(&dir, &b, (&input, &output, &shadow))
        .args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"])
        .args(["--transactional-id", name])
        .args(extra)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let file_shadow = lines(&dir.join("shadow.jsonl"));
    assert!(file_shadow.len() > 20, "{}", file_shadow.len());
    assert!(file_shadow.iter().any(|l| l.contains(r#""kind":"timeout""#)));
    assert_eq!(
        read_by_key(&broker, &shadow),
        by_key(file_shadow.iter().map(String::as_str)),
        "the shadow topic, key by key"
    );
    let out = lines(&dir.join("out.jsonl"));
    assert!(out.len() > 20, "{}", out.len());
    let topic_out = read_by_key(&broker, &output);
    assert!(
        (topic_out.values().flatten()).all(|l| l.contains(r#""pattern":"steady""#)),
        "no shadow record in the output topic"
    );
    assert_eq!(topic_out, by_key(out.iter().map(String::as_str)));
    // The summary tells the shadow pattern apart, as a file run's does.
    let said = |s: &str| {
        (s.lines())
            .find(|l| l.starts_with("cepheid: pattern `watch` (shadow)"))
            .map(str::to_string)
    };
    assert!(said(&stderr(&file)).is_some(), "{}", stderr(&file));
    assert_eq!(said(&stderr(&run)), said(&stderr(&file)), "{}", stderr(&run));
}

/// `cepheid run` in `dir` from the `input` topic to `output`, shadow
/// records to `shadow`, until the input's end.
fn kafka_run(dir: &Path, b: &str, (input, output, shadow): (&str, &str, &str)) -> std::process::Command {
    let mut command = crate::common::cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "0ms"])
        .args(["--kafka-until", "end"])
        .args(["--events", &format!("kafka://{b}/{input}")])
        .args(["--output", &format!("kafka://{b}/{output}")])
        .args(["--shadow-output", &format!("kafka://{b}/{shadow}")]);
    command
}

#[test]
fn a_shadow_topic_holds_the_shadow_records_keyed_in_the_outputs_transactions() {
    shadow_topic_holds_the_file_runs_shadow_output("shadow_topic", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_shadow_topic_on_workers_holds_the_shadow_records_keyed() {
    shadow_topic_holds_the_file_runs_shadow_output("shadow_topic_w", &["--workers", "2"]);
}

/// Refused before it runs (exit 2): a shadow topic without a Kafka
/// output, or on other brokers than the output's; a shadow file with a
/// Kafka output (it would not be cut with the output's transactions).
#[test]
fn a_shadow_topic_without_a_kafka_output_on_other_brokers_or_a_file_beside_one_is_refused() {
    let dir = scratch("shadow_topic_refused");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("events.jsonl"), events(10).join("\n") + "\n").unwrap();
    let refused = |flags: &[&str], said: &str| {
        let run = run_here(&dir).args(flags).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(said), "{flags:?}: {}", stderr(&run));
    };
    refused(
        &["--shadow-output", "kafka://localhost:9/shadow"],
        "error: --shadow-output kafka://... goes with --output kafka://... (its records are written in the output's transactions)",
    );
    refused(
        &[
            "--output",
            "kafka://localhost:9/out",
            "--shadow-output",
            "kafka://localhost:10/shadow",
        ],
        "error: --shadow-output kafka://...: one topic on the brokers of --output",
    );
    // A file beside a Kafka output (the broker asked: the sink is opened
    // before the run refuses it).
    let broker = Broker::start();
    let (b, output) = (broker.bootstrap(), topic("shadow-refused-out"));
    broker.create_topic(&output, 1);
    refused(
        &[
            "--output",
            &format!("kafka://{b}/{output}"),
            "--shadow-output",
            "shadow.jsonl",
        ],
        &format!("error: kafka:{output} takes no records of shadow patterns"),
    );
    assert!(!dir.join("shadow.jsonl").exists());
    // Without one, the shadow pattern has nowhere to go.
    refused(
        &["--output", &format!("kafka://{b}/{output}")],
        "pattern `watch` is a shadow pattern, and the run has no shadow output (--shadow-output)",
    );
}
