//! A shadow topic (issue 42, `docs/rule-lab.md`, "Shadow rules"): with
//! `--output kafka://B/O`, `--shadow-output kafka://B/S` takes the records
//! of `shadow` patterns, each keyed by its partition key as the matches
//! are, in the output's transactions with `--checkpoint`. Against the real
//! broker: the shadow topic holds exactly the lines a file run writes to
//! its `--shadow-output`, key by key in order, and the output topic none
//! of them; on one engine and on 2 workers; and the refusals.

use crate::common::kafka::{by_key, lines, partition_among, produce_lines_to, read_by_key, stderr};
use crate::common::{run_here, scratch};
use crate::kafka_support::{topic, Broker};

use std::fs;
use std::path::Path;

// (the rule set of the file tests: a live rule, `steady`, and a shadow
// one, `watch`, both keyed by `user`)
use crate::cli_shadow::RULES;

/// `n` events of 8 users in strictly increasing time (steps of 1 to 400
/// ms).
fn events(n: usize) -> Vec<String> {
    let mut moments = crate::common::crash::Moments(0x005E_ED42);
    let mut next = move |m: u64| moments.next() % m;
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
        .args(["--kafka-until", "end"])
        .args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"])
        .args(["--transactional-id", name])
        .args(extra)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let file_shadow = lines(&dir.join("shadow.jsonl"));
    assert!(file_shadow.len() > 20, "{}", file_shadow.len());
    assert!(file_shadow
        .iter()
        .any(|l| l.contains(r#""kind":"timeout""#)));
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
    assert_eq!(
        said(&stderr(&run)),
        said(&stderr(&file)),
        "{}",
        stderr(&run)
    );
}

/// `cepheid run` in `dir` from the `input` topic to `output`, shadow
/// records to `shadow`.
fn kafka_run(
    dir: &Path,
    b: &str,
    (input, output, shadow): (&str, &str, &str),
) -> std::process::Command {
    let mut command = crate::common::cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "0ms"])
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
        &format!("error: kafka:{output} takes no records of shadow patterns to a file: with a Kafka --output, give --shadow-output a topic (kafka://HOST:PORT/TOPIC"),
    );
    assert!(!dir.join("shadow.jsonl").exists());
    // Without one, the shadow pattern has nowhere to go.
    refused(
        &["--output", &format!("kafka://{b}/{output}")],
        "pattern `watch` is a shadow pattern, and the run has no shadow output (--shadow-output)",
    );
}

/// Killed (SIGKILL) after a checkpoint committed, with records of the
/// next transaction written, and resumed to the input's end: the shadow
/// topic's committed records (those of the intervals up to the last
/// committed checkpoint of each instance: the harness reads the aborted
/// ones too, as tansu hands them out) are the file run's shadow lines key
/// by key, none lost or doubled; so is the output topic's.
#[test]
fn killed_after_a_checkpoint_and_resumed_no_shadow_record_is_lost_or_doubled() {
    use crate::common::kafka::{committed_offset, Reader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let broker = Broker::start();
    let dir = scratch("shadow_topic_killed");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    let events = events(3000);
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = run_here(&dir)
        .args(["--max-delay", "0ms", "--output", "out.jsonl"])
        .args(["--shadow-output", "shadow.jsonl"])
        .output()
        .unwrap();
    assert!(file.status.success(), "{}", stderr(&file));
    let name = "shadow_topic_killed";
    let (input, output, shadow, marker) = (
        topic(&format!("{name}-in")),
        topic(&format!("{name}-out")),
        topic(&format!("{name}-shadow")),
        topic(&format!("{name}-marker")),
    );
    for t in [&input, &output, &shadow] {
        broker.create_topic(t, 2);
    }
    broker.create_topic(&marker, 1);
    let b = broker.bootstrap();
    let produce = |lines: &[String]| {
        for p in 0..2 {
            let part: Vec<String> = (lines.iter())
                .filter(|l| partition_among(l, 2) == p)
                .cloned()
                .collect();
            produce_lines_to(&b, &input, p, &part);
        }
    };
    let instance = |extra: &[&str]| {
        let mut command = kafka_run(&dir, &b, (&input, &output, &shadow));
        command
            .args(["--checkpoint", "ckpt"])
            .args(["--transactional-id", name])
            .arg(format!("--kafka-marker-topic={marker}"))
            .args(extra);
        command
    };
    let committed = || committed_offset(&b, name, &marker).unwrap_or(0);
    let wait_for = |n: i64| {
        let start = Instant::now();
        while committed() < n {
            let said = || fs::read_to_string(dir.join("first.err")).unwrap_or_default();
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no checkpoint {n}: {}",
                said()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The first half read (no end: the run goes on), then the rest.
    produce(&events[..1500]);
    let mut first = instance(&["--checkpoint-every", "1s"]);
    let said = fs::File::create(dir.join("first.err")).unwrap();
    let mut first = first.stderr(Stdio::from(said)).spawn().unwrap();
    wait_for(1);
    // (in slices, checkpoints between them; the last one read a moment
    // before the kill, likely in the transaction open then)
    let at = committed();
    for slice in events[1500..2850].chunks(150) {
        produce(slice);
        std::thread::sleep(Duration::from_millis(40));
    }
    wait_for(at + 1);
    produce(&events[2850..]);
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap();
    first.wait().unwrap();
    let mut reader = Reader::new(&b, &[(shadow.as_str(), 2), (output.as_str(), 2)]);
    let (mut records, mut aborted) = (Vec::new(), 0);
    let m = reader.take_committed(&b, name, &marker, &mut records, &mut aborted);
    assert!(m.is_some_and(|m| m >= 2), "{m:?}");
    eprintln!("killed: checkpoint {m:?} committed, {aborted} records aborted");
    let resumed =
        (instance(&["--kafka-until", "end", "--checkpoint-every", "100ms"]).output()).unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("resum"), "{}", stderr(&resumed));
    reader.take_committed(&b, name, &marker, &mut records, &mut aborted);
    let of = |t: &str| {
        by_key(
            (records.iter())
                .filter(|o| o.topic == t)
                .map(|o| o.payload.as_str()),
        )
    };
    let file_shadow = lines(&dir.join("shadow.jsonl"));
    assert!(file_shadow.len() > 20, "{}", file_shadow.len());
    assert_eq!(of(&shadow), by_key(file_shadow.iter().map(String::as_str)));
    let out = lines(&dir.join("out.jsonl"));
    assert_eq!(of(&output), by_key(out.iter().map(String::as_str)));
}
