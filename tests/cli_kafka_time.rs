//! Event time of a Kafka source against the real broker (tansu):
//! `--time kafka` (each record's Kafka timestamp, no time field read), and
//! the per-partition watermarks' idle partitions (`--idle-timeout`
//! releases a partition that stays quiet, so that the others' output
//! flows; without it the quiet partition holds event time back).

use crate::common::crash::{self, PATTERNS};
use crate::common::kafka::{client, produce_stamped, stderr};
use crate::common::{cepheid, run_two_processes, scratch, Live};
use crate::kafka_support::{topic, Broker};

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const T: Duration = Duration::from_secs(30);

/// The crash stream of `n` events with each event's time moved from `ts`
/// to `at` and a wrong `ts` (every event at 0), with `at` as the Kafka
/// record's timestamp to give it. (The malformed lines of the stream are
/// left out: with --time kafka a line without a time is no longer
/// malformed.)
fn stamped(n: usize) -> Vec<(String, i64)> {
    let mut records = Vec::new();
    for line in crash::events(n).lines() {
        let Ok(serde_json::Value::Object(mut event)) = serde_json::from_str(line) else {
            continue;
        };
        let Some(at) = event.get("ts").and_then(serde_json::Value::as_i64) else {
            continue;
        };
        event.insert("ts".into(), 0.into());
        event.insert("at".into(), at.into());
        records.push((serde_json::Value::Object(event).to_string(), at));
    }
    records
}

/// A scratch folder `name` with the crash patterns and [`stamped`]'s
/// `n` events as `events.jsonl` (their times in `at`); the events with
/// their timestamps.
fn stamped_folder(name: &str, n: usize) -> (crate::common::Scratch, Vec<(String, i64)>) {
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let records = stamped(n);
    let file: Vec<&str> = records.iter().map(|(text, _)| text.as_str()).collect();
    fs::write(dir.join("events.jsonl"), file.join("\n") + "\n").unwrap();
    (dir, records)
}

/// `cepheid run rules.cep --max-delay MAX_DELAY EXTRA...` in `dir`,
/// which must succeed.
fn run_ok(dir: &std::path::Path, max_delay: &str, extra: &[&str]) -> std::process::Output {
    let output = cepheid()
        .current_dir(dir)
        .args([
            "run",
            "rules.cep",
            "--no-progress",
            "--max-delay",
            max_delay,
        ])
        .args(extra)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

#[test]
fn time_kafka_takes_each_records_kafka_timestamp_not_a_field() {
    let broker = Broker::start();
    // 20,000 events up to 3 s out of order (so late ones with --max-delay
    // 2s), their time moved from `ts` to `at`, and a `ts` that is wrong
    // (every event at 0): the Kafka record's timestamp is `at`. The file
    // run reads `at` (--time-field at); the Kafka run must take the
    // record's timestamp, or its output differs (from `ts`: every event at
    // 0, nothing late, no timeout) or it fails (from `at`: not read).
    let (dir, records) = stamped_folder("kafka_record_time", 20_000);
    let run = |extra: &[&str]| run_ok(&dir, "2s", extra);
    let by_field = run(&[
        "--events",
        "events.jsonl",
        "--time-field",
        "at",
        "--output",
        "out.jsonl",
        "--late",
        "late.jsonl",
    ]);
    let summary = crash::summary(&stderr(&by_field));
    assert!(
        !summary.contains(" 0 late,") && !summary.contains(" 0 timeouts"),
        "the stream has late events and timeouts: {summary}"
    );
    let b = broker.bootstrap();
    let input = topic("record-time-in");
    broker.create_topic(&input, 1);
    produce_stamped(&b, &input, 0, &records);
    let by_record = run(&[
        "--events",
        &format!("kafka://{b}/{input}"),
        "--kafka-until",
        "end",
        "--time",
        "kafka",
        "--output",
        "kafka-out.jsonl",
        "--late",
        "kafka-late.jsonl",
    ]);
    assert_eq!(crash::summary(&stderr(&by_record)), summary);
    let out = fs::read_to_string(dir.join("out.jsonl")).unwrap();
    assert!(out.lines().count() > 1_000, "the stream gives records");
    assert_eq!(
        fs::read_to_string(dir.join("kafka-out.jsonl")).unwrap(),
        out,
        "the matches and timeouts, byte for byte"
    );
    assert_eq!(
        fs::read_to_string(dir.join("kafka-late.jsonl")).unwrap(),
        fs::read_to_string(dir.join("late.jsonl")).unwrap(),
        "the late events"
    );
    // The same topic with the time field (the default, `ts`): every event
    // at 0, so another output (what --time kafka did not read).
    let by_ts = run(&[
        "--events",
        &format!("kafka://{b}/{input}"),
        "--kafka-until",
        "end",
        "--output",
        "ts-out.jsonl",
    ]);
    assert!(
        crash::summary(&stderr(&by_ts)).contains(" 0 late,"),
        "{}",
        stderr(&by_ts)
    );
    assert_ne!(fs::read_to_string(dir.join("ts-out.jsonl")).unwrap(), out);
}

/// Pairs `created`, `paid` of order `o{i}` (times `i × 200` and
/// `i × 200 + 100` ms) to partition 0 of `topic`, a pair every 20 ms from
/// `i = 0` until `stop`: a partition that is never quiet.
fn produce_pairs_until(bootstrap: String, topic: String, stop: Arc<AtomicBool>) {
    let producer: BaseProducer = client(&bootstrap).create().expect("a producer");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for line in [
            format!(r#"{{"ts":{},"type":"created","order":"o{i}"}}"#, i * 200),
            format!(
                r#"{{"ts":{},"type":"paid","order":"o{i}","amount":5}}"#,
                i * 200 + 100
            ),
        ] {
            producer
                .send(BaseRecord::<(), _>::to(&topic).partition(0).payload(&line))
                .map_err(|(e, _)| e)
                .expect("queued");
        }
        // (sent by librdkafka's own thread within its linger; a flush
        // here would wait for rust-rdkafka's 100 ms polls, a pair every
        // 120 ms instead of 20)
        producer.poll(Duration::ZERO);
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    producer.flush(T).expect("delivered");
}

/// Waits until the `--stats-every` lines of standard error (each gives
/// the events of its interval) have counted `events` events read.
fn read_at_least(live: &Live, events: u64) {
    let mut read = 0;
    while read < events {
        let line = live.stderr_line("cepheid: stats at ");
        let counts = line.split("): ").nth(1).expect("counts");
        read += counts
            .split(' ')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .expect("events of the interval");
    }
}

/// The order of the next output record (a match of `unpaid`).
fn next_order(live: &Live) -> String {
    let record = live.record("a match");
    assert_eq!(record["kind"], "match", "{record}");
    record["select"]["order"]
        .as_str()
        .expect("order")
        .to_string()
}

#[test]
fn idle_timeout_releases_a_quiet_partition_and_without_it_event_time_is_held() {
    let broker = Broker::start();
    let dir = scratch("kafka_idle");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let b = broker.bootstrap();
    // Each run reads a 2-partition topic whose partition 0 gets a pair of
    // events every 20 ms for as long as it runs (so the input is never
    // quiet: event time never follows the clock, which --idle-timeout
    // also does on a quiet input), and partition 1 nothing.
    let live = |input: &str, extra: &[&str]| {
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (b, input, stop) = (b.clone(), input.to_string(), stop.clone());
            std::thread::spawn(move || produce_pairs_until(b, input, stop))
        };
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "1s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--stats-every", "200ms"])
            .args(extra);
        (Live::spawn(&mut command), stop, producer)
    };

    // Without --idle-timeout: partition 1 holds the watermark back while
    // partition 0's events are read; nothing comes out.
    let held = topic("idle-held");
    broker.create_topic(&held, 2);
    let (run, stop, producer) = live(&held, &[]);
    read_at_least(&run, 300);
    assert_eq!(run.line(Duration::ZERO), None, "no output while held");
    // One record in partition 1, far ahead in time: the watermark is then
    // partition 0's, and the matches come, from the first order on.
    broker.produce(&held, 1, &[("", r#"{"ts":100000000,"type":"noop"}"#)]);
    for i in 0..5 {
        assert_eq!(next_order(&run), format!("o{i}"));
    }
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("the producer");
    run.signal("TERM");
    let (status, _, said) = run.finish();
    assert_eq!(status.code(), Some(143), "{said}");

    // With --idle-timeout 1s: partition 1, quiet for 1 s since the run
    // started, is left out; partition 0's matches come, in order, though
    // partition 1 never delivers.
    let released = topic("idle-released");
    broker.create_topic(&released, 2);
    let started = Instant::now();
    let (run, stop, producer) = live(&released, &["--idle-timeout", "1s"]);
    for i in 0..5 {
        assert_eq!(next_order(&run), format!("o{i}"));
    }
    // (not before the idle timeout had passed since the start)
    assert!(started.elapsed() >= Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("the producer");
    run.signal("TERM");
    let (status, _, said) = run.finish();
    assert_eq!(status.code(), Some(143), "{said}");
}

/// `--time kafka` on workers: the partitions of a 3-partition topic dealt
/// to 2 workers, each reading its records' timestamps (the time field
/// `ts` says 0 for every event): each key's records are the file run's
/// that reads the same times from a field (up to 3 s out of order,
/// `--max-delay 5s`: none late, in the file nor in any partition).
#[cfg(feature = "workers")]
#[test]
fn time_kafka_on_workers_takes_each_records_kafka_timestamp() {
    use crate::common::kafka::{by_key, lines, partition_of};
    let broker = Broker::start();
    let (dir, records) = stamped_folder("kafka_record_time_workers", 20_000);
    let run = |extra: &[&str]| crash::summary(&stderr(&run_ok(&dir, "5s", extra)));
    let summary = run(&[
        "--events",
        "events.jsonl",
        "--time-field",
        "at",
        "--output",
        "out.jsonl",
    ]);
    assert!(summary.contains(", 0 late,"), "{summary}");
    let b = broker.bootstrap();
    let input = topic("record-time-workers");
    broker.create_topic(&input, 3);
    for p in 0..3 {
        let part: Vec<(String, i64)> = records
            .iter()
            .filter(|(text, _)| partition_of(text) == p)
            .cloned()
            .collect();
        produce_stamped(&b, &input, p, &part);
    }
    let on_workers = run(&[
        "--events",
        &format!("kafka://{b}/{input}"),
        "--kafka-until",
        "end",
        "--time",
        "kafka",
        "--workers",
        "2",
        "--output",
        "kafka-out.jsonl",
    ]);
    assert_eq!(on_workers, summary);
    let want = lines(&dir.join("out.jsonl"));
    assert!(want.len() > 1_000, "the stream gives records");
    let same_records = |output: &str, layout: &str| {
        let got = lines(&dir.join(output));
        assert_eq!(got.len(), want.len(), "{layout}");
        assert_eq!(
            by_key(got.iter().map(String::as_str)),
            by_key(want.iter().map(String::as_str)),
            "{layout}: each key's records, in order"
        );
    };
    same_records("kafka-out.jsonl", "2 workers");

    // On 2 processes of one worker each (process 0 writes the output).
    let ended = run_two_processes(&dir, |process| {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--kafka-until", "end", "--time", "kafka", "--workers", "1"])
            .args(["--output", &format!("processes-out-{process}.jsonl")]);
        command
    });
    for (process, output) in ended.iter().enumerate() {
        assert!(output.status.success(), "{process}: {}", stderr(output));
    }
    assert_eq!(crash::summary(&stderr(&ended[0])), summary);
    same_records("processes-out-0.jsonl", "2 processes");
}

/// Orders of two events, `a` then `b` 10 ms later, of one key.
const PAIRS: &str = r#"
pattern pair {
    partition by k
    within 10s
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
    select
        k = a.k
}
"#;

/// Pairs `from..to`: `a` to partition 0, `b` 10 ms later to partition 1,
/// 100 ms apart, in time order, sent together and flushed.
fn produce_pairs(producer: &BaseProducer, topic: &str, pairs: std::ops::Range<usize>) {
    for i in pairs {
        let ts = 1_700_000_000_000 + i as i64 * 100;
        for (partition, kind, at) in [(0, "a", ts), (1, "b", ts + 10)] {
            let event = format!(r#"{{"ts":{at},"type":"{kind}","k":"k{i}"}}"#);
            let record = BaseRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&event);
            producer.send(record).map_err(|(e, _)| e).expect("queued");
        }
    }
    producer.flush(T).expect("delivered");
}

/// Issue 39, item 4: two partitions, events in time order, a pause of the
/// whole topic longer than `--idle-timeout`. After it, the partition that
/// delivers first must not move event time on alone while the other has
/// records waiting (its lag): before, its burst was late, 20 of the 40
/// pairs lost. (The hang guard only: no time is asserted.)
fn a_pause_of_the_whole_topic(extra: &[&str]) {
    let broker = Broker::start();
    let dir = scratch(&format!("kafka_idle_pause_{}", extra.len()));
    fs::write(dir.join("rules.cep"), PAIRS).unwrap();
    let b = broker.bootstrap();
    let input = topic("idle-pause");
    broker.create_topic(&input, 2);
    let producer: BaseProducer = client(&b).create().expect("a producer");
    let mut command = cepheid();
    command
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "0ms"])
        .args(["--idle-timeout", "1s"])
        .args(["--events", &format!("kafka://{b}/{input}")])
        .args(extra);
    let run = Live::spawn(&mut command);
    let mut got = Vec::new();
    produce_pairs(&producer, &input, 0..20);
    // (the pairs before the last come out: event time reached them)
    while got.len() < 19 {
        got.push(run.record("a pair before the pause")["select"]["k"].clone());
    }
    // The whole topic quiet for 3 s: both partitions idle.
    std::thread::sleep(Duration::from_secs(3));
    produce_pairs(&producer, &input, 20..40);
    // Event time past every pair, on both partitions.
    for partition in [0, 1] {
        let end = r#"{"ts":1800000000000,"type":"end","k":"end"}"#;
        let record = BaseRecord::<(), _>::to(&input)
            .partition(partition)
            .payload(end);
        producer.send(record).map_err(|(e, _)| e).expect("queued");
    }
    producer.flush(T).expect("delivered");
    while let Some(line) = run.line(Duration::from_secs(10)) {
        let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON record");
        got.push(record["select"]["k"].clone());
        if got.len() == 40 {
            break;
        }
    }
    run.signal("TERM");
    let (status, _, said) = run.finish();
    assert_eq!(status.code(), Some(143), "{said}");
    // (workers write each one's records in its order: as a set)
    let mut got: Vec<String> = got
        .iter()
        .map(|k| k.as_str().unwrap_or("?").to_string())
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    want.sort();
    assert_eq!(got, want, "{said}");
    assert!(said.contains(" 0 late,"), "{said}");
}

#[test]
fn after_a_pause_of_the_whole_topic_a_partition_with_records_waiting_is_not_idle() {
    a_pause_of_the_whole_topic(&[]);
}

#[cfg(feature = "workers")]
#[test]
fn on_workers_after_a_pause_of_the_whole_topic_a_partition_with_records_waiting_is_not_idle() {
    a_pause_of_the_whole_topic(&["--workers", "2"]);
}
