//! A reference list fed by a Kafka topic of its own (`--list
//! NAME=kafka://BROKERS/TOPIC`, issue 40; `docs/kafka.md`, "Lists from
//! topics"), against a real broker (tansu, `crates/kafka/tests/it/support.rs`):
//! the record's key is the entry, a null value removes it, `{"expires": T}`
//! adds it until then; each record applies at its Kafka timestamp. The
//! output is that of a file run with the same changes as `$list` records
//! at the lines where the file's watermark is just before their times, on
//! one engine and on two workers, and across a stop and a resume; records
//! that are no entry are said with their place, counted, and left out.

use crate::common::crash;
use crate::common::kafka::{client, lines, produce_lines_to, stderr};
use crate::common::{cepheid, scratch};
use crate::kafka_support::{topic, Broker};

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Longest a run is waited for.
const T: Duration = Duration::from_secs(60);

const RULES: &str = "list suspects\npattern failing { partition by user match a where a: type == \"fail\" and user in suspects }\n";

/// One record of a list's topic: key, value (`None`: a tombstone), time.
type Entry = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

/// A key and a value of a list's topic.
type Keyed = (Vec<u8>, Option<Vec<u8>>);

/// Produces `records` to partition 0 of `topic`, one at a time (tansu's
/// end offset: the last one alone).
fn produce_entries(bootstrap: &str, topic: &str, records: &[Entry]) {
    produce_entries_to(bootstrap, topic, 1, records);
}

/// The same over `partitions` partitions, each record to the partition
/// its key gives (the sum of its bytes: every record of an entry in one
/// partition, in order, as Kafka's partitioner keeps them).
fn produce_entries_to(bootstrap: &str, topic: &str, partitions: u32, records: &[Entry]) {
    let producer: BaseProducer = client(bootstrap).create().expect("a producer");
    for (key, value, ts) in records {
        let sum: u32 = key.iter().flatten().map(|b| u32::from(*b)).sum();
        let partition = i32::try_from(sum % partitions).unwrap();
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .timestamp(*ts);
        if let Some(key) = key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = value {
            record = record.payload(value.as_slice());
        }
        producer.send(record).map_err(|(e, _)| e).expect("queued");
        producer.flush(Duration::from_secs(30)).expect("delivered");
    }
}

/// The watermark of a file run (`--max-delay 2s`) after `lines`.
fn watermark_after(lines: &[String]) -> Option<i64> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["ts"].as_i64())
        .max()
        .map(|t| t - 2000 - 1)
}

fn users(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|u| format!("u{u}")).collect()
}

/// The changes of the list, each `(line, $list record, entries of the
/// list's topic)`: 60 users added, 60 more that expire at 150 s, then 30
/// of the first removed (tombstones).
fn changes() -> Vec<(usize, String, Vec<Keyed>)> {
    let add = |us: Vec<String>| us.into_iter().map(|u| (u.into_bytes(), Some(Vec::new())));
    let expiring = br#"{"expires": 150000}"#.to_vec();
    vec![
        (
            2_000,
            serde_json::json!({ "$list": "suspects", "add": users(0, 60) }).to_string(),
            add(users(0, 60)).collect(),
        ),
        (
            6_000,
            serde_json::json!({ "$list": "suspects", "add": users(60, 120), "expires": 150_000 })
                .to_string(),
            (users(60, 120).into_iter())
                .map(|u| (u.into_bytes(), Some(expiring.clone())))
                .collect(),
        ),
        (
            9_000,
            serde_json::json!({ "$list": "suspects", "remove": users(0, 30) }).to_string(),
            (users(0, 30).into_iter())
                .map(|u| (u.into_bytes(), None))
                .collect(),
        ),
    ]
}

/// A folder with the rules, 20,000 events, and the file with the changes
/// as `$list` records at their lines; the events, and the list topic's
/// records at the times where the file's watermark is just before them.
fn setup(dir: &Path) -> (Vec<String>, Vec<Entry>) {
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    let events: Vec<String> = crash::events(20_000).lines().map(str::to_string).collect();
    let mut file = events.clone();
    let mut entries = Vec::new();
    for (line, record, topic_records) in changes().into_iter().rev() {
        let w = watermark_after(&events[..line]).expect("events before");
        let timed = (topic_records.into_iter()).map(|(k, v)| (Some(k), v, w + 1));
        entries.splice(0..0, timed);
        file.insert(line, record);
    }
    fs::write(dir.join("events.jsonl"), file.join("\n") + "\n").unwrap();
    (events, entries)
}

/// The file run's output (sorted) and its standard error.
fn file_run(dir: &Path) -> (Vec<String>, String) {
    let output = cepheid()
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", "events.jsonl", "--lists-from-stream"])
        .args(["--output", "out.jsonl", "--late", "late.jsonl"])
        .output()
        .expect("runs");
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    (sorted(&dir.join("out.jsonl")), err)
}

fn sorted(path: &Path) -> Vec<String> {
    let mut lines = lines(path);
    lines.sort();
    lines
}

/// `cepheid run` of the events of `input` with list `suspects` fed by
/// `list`, to `kafka-out.jsonl` (`--max-delay` the caller's).
fn kafka_run(dir: &Path, bootstrap: &str, input: &str, list: &str) -> Command {
    let mut command = cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress"])
        .args(["--events", &format!("kafka://{bootstrap}/{input}")])
        .args(["--list", &format!("suspects=kafka://{bootstrap}/{list}")])
        .args(["--output", "kafka-out.jsonl", "--late", "kafka-late.jsonl"]);
    command
}

fn a_list_topic_gives_the_file_runs_output(name: &str, partitions: u32, extra: &[&str]) {
    let broker = Broker::start();
    let dir = scratch(name);
    let (events, entries) = setup(&dir);
    let (expected, file_err) = file_run(&dir);
    assert!(expected.len() > 300, "{file_err}");
    let b = broker.bootstrap();
    let input = topic(&format!("{name}-in"));
    let list = topic(&format!("{name}-list"));
    broker.create_topic(&input, 1);
    broker.create_topic(&list, i32::try_from(partitions).unwrap());
    produce_lines_to(&b, &input, 0, &events);
    produce_entries_to(&b, &list, partitions, &entries);
    let output = kafka_run(&dir, &b, &input, &list)
        .args(["--kafka-until", "end", "--max-delay", "2s"])
        .args(extra)
        .output()
        .expect("runs");
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert_eq!(sorted(&dir.join("kafka-out.jsonl")), expected, "{err}");
    assert_eq!(
        sorted(&dir.join("kafka-late.jsonl")),
        sorted(&dir.join("late.jsonl")),
        "{err}"
    );
    // (read to its end before the first event, each record at its time;
    // each partition)
    if partitions == 1 {
        assert!(
            err.contains(&format!(
                "cepheid: list `suspects`: 150 records of kafka:{list} read from offset 0 to its end (offset 150) before the first event, of times"
            )),
            "{err}"
        );
    }
    for p in (0..partitions).filter(|_| partitions > 1) {
        assert!(
            err.contains(&format!(
                "records of kafka:{list} partition {p} read from offset 0 to its end"
            )),
            "{err}"
        );
    }
    assert_eq!(
        crash::summary(&err).split(" in ").next(),
        crash::summary(&file_err).split(" in ").next(),
        "{err}"
    );
}

/// Adds, expiries and removals from a list's topic apply at their records'
/// times: the output of the file run with the same changes as `$list`
/// records, although every record of the topic was written (and read)
/// before the first event.
#[test]
fn a_list_topic_gives_the_output_of_the_same_changes_as_list_records_in_a_file() {
    a_list_topic_gives_the_file_runs_output("list_topic", 1, &[]);
}

/// The same from a list's topic of three partitions, each entry's records
/// in one of them: each partition is read as a topic of its own, its
/// records at their times.
#[test]
fn a_list_topic_of_three_partitions_gives_the_output_of_the_same_changes_in_a_file() {
    a_list_topic_gives_the_file_runs_output("list_topic_3", 3, &[]);
}

/// The same on two workers (from three partitions): worker 0's source
/// reads the list's topic, its changes go to every worker at their times.
#[cfg(feature = "workers")]
#[test]
fn on_workers_a_list_topic_gives_the_output_of_the_same_changes_as_list_records_in_a_file() {
    a_list_topic_gives_the_file_runs_output("list_topic_workers", 3, &["--workers", "2"]);
}

/// A run stopped (SIGTERM: a last checkpoint) after the first part of the
/// events, with changes of the list still waiting for event time, and
/// resumed over the rest, gives the file run's output: the entries made
/// are in the checkpoint, the list's topic is read again from the first
/// record not applied.
#[test]
fn a_run_with_a_list_topic_stopped_and_resumed_gives_the_uninterrupted_output() {
    stopped_and_resumed("list_topic_resume", 1, &[], &[]);
}

/// The same on two workers, resumed on three, from a list's topic of
/// three partitions (read by worker 0's source, their offsets kept in
/// that worker's piece of the cut and taken from it by the new worker 0).
#[cfg(feature = "workers")]
#[test]
fn a_run_with_a_list_topic_on_workers_stopped_and_resumed_on_more_gives_the_uninterrupted_output() {
    stopped_and_resumed(
        "list_topic_resume_workers",
        3,
        &["--workers", "2"],
        &["--workers", "3"],
    );
}

/// A run with `first` stopped after the first part, resumed with `then`.
fn stopped_and_resumed(name: &str, partitions: u32, first_args: &[&str], then_args: &[&str]) {
    let broker = Broker::start();
    let dir = scratch(name);
    let (events, entries) = setup(&dir);
    let (expected, _) = file_run(&dir);
    let b = broker.bootstrap();
    let input = topic(&format!("{name}-in"));
    let list = topic(&format!("{name}-list"));
    broker.create_topic(&input, 1);
    broker.create_topic(&list, i32::try_from(partitions).unwrap());
    produce_entries_to(&b, &list, partitions, &entries);
    // The first part takes event time past the first change, not the
    // second (line 6,000).
    let (first, second) = events.split_at(4_000);
    produce_lines_to(&b, &input, 0, first);
    let run = || {
        let mut command = kafka_run(&dir, &b, &input, &list);
        command.args([
            "--max-delay",
            "2s",
            "--checkpoint",
            "ckpt",
            "--checkpoint-every",
            "100ms",
        ]);
        command
    };
    let mut child = (run().args(first_args))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // What the file run writes up to where the first part takes event
    // time, which the Kafka run writes once it has read the first part.
    let file: Vec<String> = fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut part = file[..first.len() + 1].to_vec();
    let w = watermark_after(first).unwrap();
    part.push(serde_json::json!({ "$watermark": w }).to_string());
    fs::write(dir.join("part.jsonl"), part.join("\n") + "\n").unwrap();
    let part_run = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", "part.jsonl", "--lists-from-stream"])
        .args(["--output", "part-out.jsonl"])
        .output()
        .expect("runs");
    assert!(part_run.status.success(), "{}", stderr(&part_run));
    let first_part = lines(&dir.join("part-out.jsonl")).len();
    assert!(first_part > 0, "the first part gives records");
    let limit = Instant::now() + T;
    while fs::read_to_string(dir.join("kafka-out.jsonl")).map_or(0, |t| t.lines().count())
        < first_part
    {
        assert!(Instant::now() < limit, "the first part is processed");
        assert!(child.try_wait().unwrap().is_none(), "still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let stopped = child.wait_with_output().expect("waits");
    assert_eq!(stopped.status.code(), Some(143), "{}", stderr(&stopped));
    produce_lines_to(&b, &input, 0, second);
    let output = (run().args(["--kafka-until", "end"]).args(then_args))
        .output()
        .expect("runs");
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("resuming from checkpoint"), "{said}");
    // (resumed: from the first record not applied, the 61st; in each
    // partition, after the records of the first change there)
    if partitions == 1 {
        assert!(
            said.contains(&format!(
                "cepheid: list `suspects`: 90 records of kafka:{list} read from offset 60 to its end (offset 150)"
            )),
            "{said}"
        );
    }
    for p in (0..partitions).filter(|_| partitions > 1) {
        let of = |(key, _, _): &&Entry| {
            let sum: u32 = key.iter().flatten().map(|b| u32::from(*b)).sum();
            sum % partitions == p
        };
        let applied = entries[..60].iter().filter(of).count();
        let all = entries.iter().filter(of).count();
        assert!(
            said.contains(&format!(
                "records of kafka:{list} partition {p} read from offset {applied} to its end (offset {all})"
            )),
            "{p}: {said}"
        );
    }
    assert_eq!(sorted(&dir.join("kafka-out.jsonl")), expected, "{said}");
    assert_eq!(
        sorted(&dir.join("kafka-late.jsonl")),
        sorted(&dir.join("late.jsonl")),
        "{said}"
    );
}

/// Records of a list's topic that are no entry (no key, a key that is
/// not UTF-8, a value that is neither empty nor `{"expires": T}`, an
/// expiry that is no time) are each said with their place, counted as
/// malformed, and left out; the run goes on, and the others apply at
/// their times: one added at 1 s, another added at 1 s until 5 s, the
/// first removed at 3 s.
#[test]
fn records_of_a_list_topic_that_are_no_entry_are_said_counted_and_left_out() {
    let broker = Broker::start();
    let dir = scratch("list_topic_malformed");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    let b = broker.bootstrap();
    let input = topic("list-bad-in");
    let list = topic("list-bad-list");
    broker.create_topic(&input, 1);
    broker.create_topic(&list, 1);
    let events: Vec<String> = (0..240)
        .map(|i| {
            let user = format!("u{}", 1 + i % 4);
            serde_json::json!({ "ts": i * 25, "type": "fail", "user": user }).to_string()
        })
        .collect();
    produce_lines_to(&b, &input, 0, &events);
    let k = |s: &[u8]| Some(s.to_vec());
    let entries: Vec<Entry> = vec![
        (k(b"u1"), k(b""), 1000),
        (None, k(b""), 1000),
        (k(b"\xff\xfe"), k(b""), 1000),
        (k(b"u2"), k(b"yes"), 1000),
        (k(b"u3"), k(br#"{"expires": "soon"}"#), 1000),
        (k(b"u4"), k(br#"{"expires": 5000}"#), 1000),
        (k(b"u1"), None, 3000),
    ];
    produce_entries(&b, &list, &entries);
    let output = kafka_run(&dir, &b, &input, &list)
        .args(["--kafka-until", "end", "--max-delay", "0s"])
        .output()
        .expect("runs");
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let place = |offset: u32| format!("kafka:{list} partition 0 offset {offset}");
    for (offset, why) in [
        (1, "no entry of list `suspects`: a list's record has its entry as its key: this one has no key; the record is left out"),
        (2, "no entry of list `suspects`: its key is not UTF-8 text"),
        (3, "no entry of list `suspects`: its value is not empty (add), absent (remove) or {\"expires\": T}"),
        (4, "no entry of list `suspects`: its `expires` (\"soon\") is not integer milliseconds or an RFC 3339 time"),
    ] {
        let said = err
            .lines()
            .find(|l| l.contains(&place(offset)))
            .unwrap_or_else(|| panic!("offset {offset}: {err}"));
        assert!(said.contains(why), "{said}");
    }
    assert!(crash::summary(&err).contains("4 malformed"), "{err}");
    // The failures of u1 from 1 s to 3 s, of u4 from 1 s to 5 s.
    let mut want: Vec<(String, i64)> = (0..240)
        .map(|i| (format!("u{}", 1 + i % 4), i * 25))
        .filter(|(u, t)| match u.as_str() {
            "u1" => (1000..3000).contains(t),
            "u4" => (1000..5000).contains(t),
            _ => false,
        })
        .collect();
    want.sort();
    let mut got: Vec<(String, i64)> = lines(&dir.join("kafka-out.jsonl"))
        .iter()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let user = r["key"]["user"].as_str().unwrap_or_default().to_string();
            (user, r["end"].as_i64().unwrap_or(-1))
        })
        .collect();
    got.sort();
    assert_eq!(got, want, "{err}");
}

/// A list fed by a topic is refused before the run starts when the rules
/// do not declare it, when the input is not Kafka, when its topic is on
/// other brokers, or does not exist.
#[test]
fn a_list_topic_that_cannot_work_is_refused_before_the_run_starts() {
    let broker = Broker::start();
    let dir = scratch("list_topic_refused");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("e.jsonl"), "{\"ts\":1}\n").unwrap();
    let b = broker.bootstrap();
    let input = topic("list-refused-in");
    let two = topic("list-refused-two");
    broker.create_topic(&input, 1);
    broker.create_topic(&two, 2);
    let events = format!("kafka://{b}/{input}");
    let run = |events: &str, list: &str| {
        let output = cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--events", events])
            .args(["--list", list, "--kafka-until", "end"])
            .args(["--kafka-timeout", "10s"])
            .output()
            .expect("runs");
        (output.status.code(), stderr(&output))
    };
    let (code, err) = run(&events, &format!("nope=kafka://{b}/{two}"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "error: list `nope` (kafka://{b}/{two}): the rules declare no list `nope` (`list nope`)"
        )),
        "{err}"
    );
    let (code, err) = run("e.jsonl", &format!("suspects=kafka://{b}/{two}"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(
            "error: --list suspects=kafka://... needs --events kafka://... (on its brokers)"
        ),
        "{err}"
    );
    let (code, err) = run(&events, &format!("suspects=kafka://other:9092/{two}"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("error: --list suspects=kafka://...: one topic on the brokers of --events"),
        "{err}"
    );
    // (a topic that does not exist: the run does not start)
    let missing = topic("list-refused-missing");
    let (code, err) = run(&events, &format!("suspects=kafka://{b}/{missing}"));
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains(&missing), "{err}");
}
