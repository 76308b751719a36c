//! A checkpoint's Kafka offsets resumed on a topic that is no longer the
//! one they were taken on (issue 39, item 2), on the real broker (tansu):
//! the topic deleted and written again with fewer records than the kept
//! offset (before: the resumed run read nothing and exited 0), or with
//! more (before: it skipped the new topic's first records silently).
//! Now the run refuses with exit 5, naming the topic, partition, offset
//! and what the broker has, unless `--kafka-offset-mismatch earliest` or
//! `latest` starts the partition again there, which it says.

use crate::common::crash::{self, PATTERNS};
use crate::common::kafka::{produce_lines_to, stderr};
use crate::common::{cepheid, scratch};
use crate::kafka_support::{topic, Broker};

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

/// The stream's lines (the crash stream: orders, payments, failures).
fn lines(n: usize) -> Vec<String> {
    crash::events(n).lines().map(str::to_string).collect()
}

/// Other records than [`lines`]' at the same offsets: the same events
/// later in time and for other users and orders.
fn other_lines(n: usize) -> Vec<String> {
    lines(n)
        .iter()
        .map(|l| l.replace(":\"o", ":\"x").replace(":\"u", ":\"v"))
        .collect()
}

/// `cepheid run` of the crash patterns over the whole topic `input`
/// (`--kafka-until end`) to `out.jsonl`, checkpointed in `ckpt`.
fn run(dir: &Path, bootstrap: &str, input: &str, extra: &[&str]) -> Output {
    command(dir, bootstrap, input, extra)
        .output()
        .expect("runs")
}

/// The command [`run`] runs.
fn command(dir: &Path, bootstrap: &str, input: &str, extra: &[&str]) -> Command {
    let mut command = cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", &format!("kafka://{bootstrap}/{input}")])
        .args(["--kafka-until", "end", "--output", "out.jsonl"])
        .args(["--checkpoint", "ckpt"])
        .args(extra);
    command
}

/// The number of events the run's summary says were read.
fn read(output: &Output) -> u64 {
    let summary = crash::summary(&stderr(output));
    let n = summary
        .strip_prefix("cepheid: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok());
    n.unwrap_or_else(|| panic!("no summary in:\n{}", stderr(output)))
}

/// How many of `lines` are events (the others malformed).
fn events(lines: &[String]) -> u64 {
    lines.iter().filter(|l| !l.contains("soon")).count() as u64
}

/// A folder whose checkpoint is at the end of a topic of `first` records
/// (one engine's, which any executor resumes: a run on workers that reads
/// a whole topic ends without a cut), and that topic deleted and written
/// again with `then` (the topic's name and the events the first run
/// read).
fn resumed_on_another_topic(
    broker: &Broker,
    name: &str,
    first: usize,
    then: &[String],
) -> (crate::common::Scratch, String, u64) {
    let b = broker.bootstrap();
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let input = topic(name);
    broker.create_topic(&input, 1);
    produce_lines_to(&b, &input, 0, &lines(first));
    let output = run(&dir, &b, &input, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let was = read(&output);
    broker.delete_topic(&input);
    broker.create_topic(&input, 1);
    produce_lines_to(&b, &input, 0, then);
    (dir, input, was)
}

#[test]
fn a_checkpoints_offsets_on_a_topic_written_again_are_refused_or_started_again_as_asked() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let named = |s: &str| format!("kafka_offsets_{s}");
    let earliest = ["--kafka-offset-mismatch", "earliest"];
    // Fewer records than the kept offset (before: nothing read), and more,
    // other ones (before: the first 600 skipped silently).
    let cases = [
        ("fewer", 150, "the partition ends at offset 150 now"),
        ("more", 900, "the record before it was offset 599"),
    ];
    for (case, then, told) in cases {
        let (dir, input, was) =
            resumed_on_another_topic(&broker, &named(case), 600, &other_lines(then));
        // Refused, exit 5, nothing read.
        let output = run(&dir, &b, &input, &[]);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(5), "{case}: {said}");
        assert!(
            said.contains(&format!(
                "the kept offset 600 of topic {input:?} partition 0"
            )) && said.contains("does not fit the topic as it is now")
                && said.contains(told)
                && said.contains("nothing was read (--kafka-offset-mismatch earliest or latest"),
            "{case}: {said}"
        );
        // earliest: the new topic read from its first record, said.
        let output = run(&dir, &b, &input, &earliest);
        let said = stderr(&output);
        assert!(output.status.success(), "{case}: {said}");
        assert!(
            said.contains("starts again at its first record, offset 0")
                && said.contains("(--kafka-offset-mismatch earliest; 1 partition started again)"),
            "{case}: {said}"
        );
        assert_eq!(
            read(&output),
            was + events(&other_lines(then)),
            "{case}: {said}"
        );
    }

    // latest: none of them, said.
    let (dir, input, was) =
        resumed_on_another_topic(&broker, &named("latest"), 600, &other_lines(900));
    let output = run(&dir, &b, &input, &["--kafka-offset-mismatch", "latest"]);
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("starts again after its last record, offset 900"),
        "{said}"
    );
    assert_eq!(read(&output), was, "{said}");

    // The same topic with more records: the kept offset fits, the run goes
    // on from it (nothing said).
    let dir = scratch(&named("same"));
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let input = topic(&named("same"));
    broker.create_topic(&input, 1);
    let all = lines(900);
    produce_lines_to(&b, &input, 0, &all[..600]);
    let first = run(&dir, &b, &input, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    produce_lines_to(&b, &input, 0, &all[600..]);
    let output = run(&dir, &b, &input, &[]);
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    assert!(!said.contains("does not fit"), "{said}");
    assert_eq!(read(&output), read(&first) + events(&all[600..]), "{said}");
}

/// A run on workers' cut on a topic of `first` records and more coming
/// (a cut needs event time to move on: a live run killed after three
/// cuts), and that topic deleted and written again with `then`: the
/// folder, the topic.
#[cfg(feature = "workers")]
fn workers_cut_on_another_topic(
    broker: &Broker,
    name: &str,
    first: usize,
    then: &[String],
) -> (crate::common::Scratch, String) {
    workers_cut_on_another_topic_of(broker, name, 1, first, then)
}

/// [`workers_cut_on_another_topic`] over `partitions` partitions (the
/// lines dealt to them ten at a time, `then` written to each).
fn workers_cut_on_another_topic_of(
    broker: &Broker,
    name: &str,
    partitions: i32,
    first: usize,
    then: &[String],
) -> (crate::common::Scratch, String) {
    use crate::common::{newest_checkpoint, Live};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let b = broker.bootstrap();
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let input = topic(name);
    broker.create_topic(&input, partitions);
    let all = lines(first + 2_000);
    for (i, part) in all[..first].chunks(10).enumerate() {
        produce_lines_to(&b, &input, i as i32 % partitions, part);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let (stop, b, input) = (stop.clone(), b.clone(), input.clone());
        let rest = all[first..].to_vec();
        std::thread::spawn(move || {
            for (i, line) in rest.chunks(10).enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                produce_lines_to(&b, &input, i as i32 % partitions, line);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut command = cepheid();
    command
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", &format!("kafka://{b}/{input}")])
        .args(["--output", "out.jsonl", "--workers", "2"])
        .args(["--checkpoint", "ckpt", "--checkpoint-every", "100ms"]);
    let live = Live::spawn(&mut command);
    // (a hang guard only: the cuts come every 100 ms)
    let limit = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        if Instant::now() > limit {
            live.signal("KILL");
            let (_, _, err) = live.finish();
            panic!("no cuts came: {err}");
        }
        let newest = newest_checkpoint(&dir.join("ckpt"));
        if newest.is_some() && seen.last() != Some(&newest) {
            seen.push(newest);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    live.signal("KILL");
    let _ = live.finish();
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    broker.delete_topic(&input);
    broker.create_topic(&input, partitions);
    for p in 0..partitions {
        produce_lines_to(&b, &input, p, then);
    }
    (dir, input)
}

/// A cut of 2 workers resumed on 2 processes over a topic written again
/// with fewer records in each partition: each process's source refuses
/// to seek, and each process ends with the refusal (exit 5), process 1
/// too. Before, process 1 said the error and exited 0 (it counts nothing
/// of the run; its source's seek error reached only process 0's end), and
/// its source ended rather than stopped (fault hour seed 47, case 9).
#[cfg(feature = "workers")]
#[test]
fn on_two_processes_a_cut_that_does_not_fit_ends_each_process_with_the_refusal() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let name = "kafka_offsets_processes";
    let (dir, input) = workers_cut_on_another_topic_of(&broker, name, 2, 600, &other_lines(100));
    let grace = std::time::Duration::from_secs(30);
    let outputs = crate::common::run_two_processes_within(&dir, grace, |_| {
        command(&dir, &b, &input, &["--workers", "1"])
    });
    for (process, output) in outputs.iter().enumerate() {
        let said = stderr(output);
        assert_eq!(output.status.code(), Some(5), "process {process}: {said}");
        assert!(said.contains("does not fit"), "process {process}: {said}");
    }
}

#[cfg(feature = "workers")]
#[test]
fn on_workers_a_cuts_offsets_on_a_topic_written_again_are_refused_or_started_again() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let workers = ["--workers", "2"];
    let cases = [
        ("fewer", 150, "ends at offset 150 now"),
        (
            "more",
            900,
            "the topic is not the one the offset was taken on",
        ),
    ];
    for (case, then, told) in cases {
        let name = format!("kafka_offsets_workers_{case}");
        let (dir, input) = workers_cut_on_another_topic(&broker, &name, 600, &other_lines(then));
        // Refused, nothing read, exit 5 as on one engine.
        let output = run(&dir, &b, &input, &workers);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(5), "{case}: {said}");
        assert!(
            said.contains(&format!("of topic {input:?} partition 0 does not fit"))
                && said.contains(told)
                && said.contains("nothing was read (--kafka-offset-mismatch earliest or latest"),
            "{case}: {said}"
        );
        let earliest = [&workers[..], &["--kafka-offset-mismatch", "earliest"]].concat();
        let output = run(&dir, &b, &input, &earliest);
        let said = stderr(&output);
        assert!(output.status.success(), "{case}: {said}");
        assert!(
            said.contains("starts again at its first record, offset 0"),
            "{case}: {said}"
        );
    }
}

/// The rules topic's kept offset (the first rules record not applied yet)
/// goes with the mark of the record before it, as the events' offsets do:
/// a rules topic deleted and written again with other records (as many
/// and one more) is refused, exit 5, naming it (before: its first records
/// were skipped silently, the rule sets among them never applied), or
/// read again from its first record with `earliest`; the same topic with
/// one more record fits (nothing said), and its new record is applied.
#[test]
fn a_checkpoints_rules_topic_offset_on_a_topic_written_again_is_refused_or_started_again() {
    use crate::cli_kafka::CHANGED;
    use crate::common::kafka::produce_timed;
    let broker = Broker::start();
    let b = broker.bootstrap();
    let dir = scratch("kafka_offsets_rules");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let input = topic("kafka_offsets_rules_in");
    let rules = topic("kafka_offsets_rules_rules");
    broker.create_topic(&input, 1);
    broker.create_topic(&rules, 1);
    produce_lines_to(&b, &input, 0, &lines(300));
    let record = |set: &str, ts: i64| (serde_json::json!({ "$rules": set }).to_string(), ts);
    produce_timed(&b, &rules, &[record(CHANGED, 1), record(PATTERNS, 2)]);
    let with_rules = ["--rules-topic", &format!("kafka://{b}/{rules}")];
    let first = run(&dir, &b, &input, &with_rules);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        crash::summary(&stderr(&first)).contains(", 2 rule reloads"),
        "{}",
        stderr(&first)
    );
    // The same topic with one more record: it fits, the new one applies.
    produce_timed(&b, &rules, &[record(CHANGED, 3)]);
    let output = run(&dir, &b, &input, &with_rules);
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    assert!(!said.contains("does not fit"), "{said}");
    assert!(crash::summary(&said).contains(", 3 rule reloads"), "{said}");
    // Written again: as many records and one more, other ones.
    broker.delete_topic(&rules);
    broker.create_topic(&rules, 1);
    let again: Vec<_> = (10..14).map(|ts| record(CHANGED, ts)).collect();
    produce_timed(&b, &rules, &again);
    let output = run(&dir, &b, &input, &with_rules);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(5), "{said}");
    assert!(
        said.contains(&format!("the kept offset 3 of topic {rules:?} partition 0"))
            && said.contains("does not fit the topic as it is now")
            && said.contains("the record before it was offset 2"),
        "{said}"
    );
    let earliest = [&with_rules[..], &["--kafka-offset-mismatch", "earliest"]].concat();
    let output = run(&dir, &b, &input, &earliest);
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("starts again at its first record, offset 0"),
        "{said}"
    );
    assert!(crash::summary(&said).contains(", 7 rule reloads"), "{said}");
}
