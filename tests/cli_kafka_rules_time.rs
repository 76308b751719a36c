//! Issue 59: a rules topic read before the first event. An operator's
//! rules topic holds the initial rule set and changes dated hours after
//! the first events (one adds a pattern, one changes a window); the
//! events come live to a topic of three partitions. A run reads its rules
//! topic to its end before its first event (`crates/kafka`: a topic of
//! control records is read up to its end when the source starts), when it
//! has no event time yet: its records wait for event time to reach their
//! times, and none may be judged "far ahead" (`--rules-max-ahead`) against
//! a time the run does not have. A run resumed from a checkpoint holds
//! the records it reads again as the run that took the checkpoint held
//! them (`docs/dynamic-rules.md`, "Records far ahead").
//!
//! The crash test kills such a run with SIGKILL at least a dozen times
//! (before the first event is matched, right after each change applies,
//! and at random moments between), on one engine and on `--workers 2`,
//! exactly once to Kafka; the committed output must equal one
//! uninterrupted file run of the same events with the same changes as
//! `$rules` lines, as a multiset and per key in order.

use crate::cli_kafka::{assert_same, file_run, kafka_run_live, watermark_after};
use crate::common::crash::Moments;
use crate::common::kafka::{
    by_key, client, count, lines, partition_of, produce_by_key, produce_timed, send_waiting,
    stderr, topics_with, Out, Reader,
};
use crate::common::{cepheid, scratch};
use crate::kafka_support::Broker;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

/// 2026-01-01T00:00:00Z: the first event's time.
const T0: i64 = 1_767_225_600_000;
/// The events: one every 1.2 s or so, some four hours of event time.
const EVENTS: usize = 12_000;
/// The lines of the file run before which each change of rules stands
/// (80 and 160 minutes after the first event: further ahead of it than
/// `--rules-max-ahead`'s default hour).
const CHANGES_AT: [usize; 2] = [4_000, 8_000];

/// The initial rule set: a sequence with a window and timeouts, and a
/// looping stage.
const INITIAL: &str = r#"
pattern unpaid {
    partition by order
    within 30s
    timeouts
    match created followed by paid
    where
        created: type == "created"
        paid:    type == "paid"
    select
        order  = created.order
        amount = paid.amount
}

pattern burst {
    partition by user
    within 20s
    skip past last event
    match fail{3,} consecutive
    where
        fail: type == "fail"
    select
        user     = fail.user
        attempts = count(fail)
}
"#;

/// The first change: a pattern added.
fn added() -> String {
    format!(
        "{INITIAL}
pattern never_paid {{
    partition by order
    within 20s
    match created not followed by paid
    where
        created: type == \"created\"
        paid:    type == \"paid\"
}}
"
    )
}

/// The second change: `unpaid`'s window from 30 s to 60 s.
fn widened() -> String {
    added().replace("within 30s", "within 60s")
}

/// The events, in time order, each at a time of its own: orders created
/// and paid (or not) 1 to 80 events later, and failures of five users.
fn events() -> Vec<String> {
    let mut draw = Moments(59);
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut out = Vec::with_capacity(EVENTS);
    let mut ts = T0;
    let mut orders = 0;
    for i in 0..EVENTS {
        let due = open.iter().position(|(at, _)| *at <= i);
        let user = format!("u{}", draw.next() % 5);
        let amount = 1 + draw.next() % 300;
        let event = match (due, draw.next() % 10) {
            (Some(k), _) => {
                let (_, order) = open.swap_remove(k);
                serde_json::json!({"ts": ts, "type": "paid", "order": order, "user": user, "amount": amount})
            }
            (None, 0..=3) => {
                orders += 1;
                let order = format!("o{orders}");
                // (a fifth never paid)
                if draw.next() % 5 != 0 {
                    open.push((i + 1 + (draw.next() % 80) as usize, order.clone()));
                }
                serde_json::json!({"ts": ts, "type": "created", "order": order, "user": user, "amount": 0})
            }
            (None, _) => {
                serde_json::json!({"ts": ts, "type": "fail", "user": user, "amount": amount})
            }
        };
        out.push(event.to_string());
        ts += 1_000 + (draw.next() % 400) as i64;
    }
    out
}

/// The time of the change before line `at` of the file: the file run's
/// watermark there + 1, so that the switch is where the file run has it.
fn change_time(events: &[String], at: usize) -> i64 {
    watermark_after(&events[..at]).expect("events before") + 1
}

/// The scene: the rules file (the initial set), the file run's events
/// with the three `$rules` lines, and the rules topic's records with
/// their times (the initial set an hour before the first event).
fn setup(dir: &Path) -> (Vec<String>, Vec<(String, i64)>) {
    fs::write(dir.join("rules.cep"), INITIAL).unwrap();
    let events = events();
    let rules = |text: String| serde_json::json!({ "$rules": text }).to_string();
    let timed = vec![
        (rules(INITIAL.to_string()), T0 - 3_600_000),
        (rules(added()), change_time(&events, CHANGES_AT[0])),
        (rules(widened()), change_time(&events, CHANGES_AT[1])),
    ];
    let mut file = events.clone();
    file.insert(CHANGES_AT[1], timed[2].0.clone());
    file.insert(CHANGES_AT[0], timed[1].0.clone());
    file.insert(0, timed[0].0.clone());
    fs::write(dir.join("events.jsonl"), file.join("\n") + "\n").unwrap();
    (events, timed)
}

/// The input offsets of the rules topic's records a run said it applied
/// (`cepheid: kafka:RULES partition 0 offset X (`$rules`): ...`).
fn applied(said: &str, rules: &str) -> Vec<i64> {
    let prefix = format!("cepheid: kafka:{rules} partition 0 offset ");
    said.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once(" (`$rules`): ")?.0.parse().ok())
        .collect()
}

/// Says no run judged a rules record far ahead of event time.
fn none_ahead(said: &str) {
    assert!(
        !said.contains("further ahead than --rules-max-ahead"),
        "a rules record judged far ahead: {said}"
    );
}

/// Produces `events` to the input's three partitions (each event to its
/// key's, [`partition_of`]) once told to start, a slice every 100 ms
/// (some 500 events a second): a live producer.
struct Producer {
    go: Arc<AtomicBool>,
    produced: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Producer {
    const SLICE: usize = 50;

    fn new(bootstrap: &str, input: &str, events: Vec<String>) -> Producer {
        let go = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicUsize::new(0));
        let producer: BaseProducer = client(bootstrap).create().expect("a producer");
        let input = input.to_string();
        let (waiting, counting) = (Arc::clone(&go), Arc::clone(&produced));
        let thread = std::thread::spawn(move || {
            while !waiting.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let slices = events.chunks(Producer::SLICE).count();
            for (i, slice) in events.chunks(Producer::SLICE).enumerate() {
                let next = Instant::now() + Duration::from_millis(100);
                for line in slice {
                    let record = BaseRecord::<(), _>::to(&input)
                        .partition(partition_of(line))
                        .payload(line.as_str());
                    send_waiting(&producer, record);
                    // (the last slice one record a batch: tansu answers a
                    // partition's end offset as its last batch's first
                    // offset + 1, which `--kafka-until end` reads)
                    if i + 1 == slices {
                        producer.flush(Duration::from_secs(30)).expect("delivered");
                    }
                }
                producer.flush(Duration::from_secs(30)).expect("delivered");
                counting.fetch_add(slice.len(), Ordering::Relaxed);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        Producer {
            go,
            produced,
            thread,
        }
    }

    fn start(&self) {
        self.go.store(true, Ordering::Relaxed);
    }

    fn produced(&self) -> usize {
        self.produced.load(Ordering::Relaxed)
    }

    fn finish(self) {
        self.start();
        self.thread.join().expect("the producer");
    }
}

/// Waits until `until` says so (true), the child ends or 180 s pass
/// (false: a hang guard, for a loaded machine).
fn wait_for(child: &mut Child, mut until: impl FnMut() -> bool) -> bool {
    let limit = Instant::now() + Duration::from_secs(180);
    while Instant::now() < limit {
        if until() {
            return true;
        }
        if child.try_wait().expect("status").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// The whole cuts of `dir/ckpt`.
fn cuts(dir: &Path) -> usize {
    cepheid_runtime::checkpoint::store::complete(&dir.join("ckpt")).map_or(0, |k| k.len())
}

/// The newest whole cut's number.
fn newest(dir: &Path) -> Option<u64> {
    let stored = crate::common::newest_stored(&dir.join("ckpt"))?;
    Some(stored.marker().number())
}

/// What each kill aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aim {
    /// A random moment soon after the start, before any event was
    /// produced: nothing matched yet.
    Start,
    /// Once a checkpoint of its own is whole, before any event was
    /// produced: a cut that holds every rules record, unapplied.
    FirstCut,
    /// As soon as it said it applied the rules record after those killed
    /// at.
    RuleChange,
    /// A random moment.
    Random,
}

#[test]
fn a_rules_topic_with_changes_hours_ahead_killed_a_dozen_times_commits_the_file_runs_output() {
    rules_topic_crash("kafka_rules_time_crash", &[]);
}

/// The same on two workers. Issue 59's workers fault: a worker that took
/// a cut at `e` while a quiet source's capability had moved up to `e`
/// (its clock below) moved its engines to `e - 1` as soon as the clock's
/// lift reached it, before the events the source had sent at `e` with
/// times below it: each was taken for late there, dropped with no late
/// line (1 to 52 per run under load, some alerts lost). The engines now
/// wait for the frontier to pass `e` (`cepheid-dataflow`, `Clocks`).
#[cfg(feature = "workers")]
#[test]
fn on_workers_a_rules_topic_with_changes_hours_ahead_killed_a_dozen_times_commits_the_file_runs_output(
) {
    rules_topic_crash("kafka_rules_time_crash_w", &["--workers", "2"]);
}

fn rules_topic_crash(name: &str, extra: &[&str]) {
    let broker = Broker::start();
    let dir = scratch(name);
    let (events, timed) = setup(&dir);
    let file = file_run(&dir);
    let t = topics_with(&broker, name, 3, 3);
    let rules = crate::kafka_support::topic(&format!("{name}-rules"));
    broker.create_topic(&rules, 1);
    let b = broker.bootstrap();
    // The rules topic whole before the first run; the events topic empty.
    produce_timed(&b, &rules, &timed);
    let producer = Producer::new(&b, &t.input, events);
    let id = format!("{name}-id");
    let run = |k: usize, to_end: bool| -> Child {
        let rules = format!("kafka://{b}/{rules}");
        let mut args = vec!["--rules-topic", &rules, "--checkpoint", "ckpt"];
        args.extend(["--checkpoint-every", "200ms", "--transactional-id", &id]);
        args.extend(["--kafka-marker-topic", &t.marker]);
        args.extend(extra);
        if to_end {
            args.extend(["--kafka-until", "end"]);
        }
        // (the crash test's command of cli_kafka.rs: `--rules-from-stream`
        // there takes nothing from these events)
        kafka_run_live(&dir, &b, &t, &args)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join(format!("run-{k}.err"))).expect("creates"))
            .spawn()
            .expect("starts")
    };
    let mut reader = Reader::new(&b, &[(&t.output, 3), (&t.late, 1)]);
    let mut committed: Vec<Out> = Vec::new();
    let mut aborted = 0;
    let mut moments = Moments(5_959);
    // The offsets of the rules records a run was killed right after it
    // applied them.
    let mut hit: BTreeSet<i64> = BTreeSet::new();
    let mut kills: Vec<(Aim, Option<i64>)> = Vec::new();
    let started = Instant::now();
    loop {
        let beyond = hit.last().copied().unwrap_or(-1);
        let changes_left = beyond < 2;
        let aim = match kills.len() {
            0 => Aim::Start,
            1 => Aim::FirstCut,
            n if n >= 20 => break,
            n if n >= 12 && !changes_left => break,
            n if n % 2 == 0 && changes_left => Aim::RuleChange,
            _ => Aim::Random,
        };
        if !matches!(aim, Aim::Start | Aim::FirstCut) {
            producer.start();
        }
        let k = kills.len();
        let err = dir.join(format!("run-{k}.err"));
        let said = || fs::read_to_string(&err).unwrap_or_default();
        // (whatever the aim, a run that applied a rules record beyond
        // those killed right after is killed then: one that went on
        // would commit past it, and it could not be hit after)
        let new_change = || applied(&said(), &rules).iter().any(|&x| x > beyond);
        let cut_before = newest(&dir);
        let mut child = run(k, false);
        let reached = match aim {
            Aim::Start => {
                let at = Instant::now()
                    + moments.between(Duration::from_millis(50), Duration::from_millis(600));
                wait_for(&mut child, || Instant::now() >= at)
            }
            Aim::FirstCut => wait_for(&mut child, || newest(&dir) != cut_before && cuts(&dir) > 0),
            Aim::RuleChange => wait_for(&mut child, new_change),
            Aim::Random => {
                let at = Instant::now()
                    + moments.between(Duration::from_millis(300), Duration::from_millis(2_500));
                wait_for(&mut child, || Instant::now() >= at || new_change())
            }
        };
        assert!(
            reached && child.try_wait().expect("status").is_none(),
            "run {k} (aim {aim:?}) ended or did not get there: {}",
            said()
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("waits");
        let said = said();
        none_ahead(&said);
        if matches!(aim, Aim::Start | Aim::FirstCut) {
            assert_eq!(producer.produced(), 0, "no event before the first kills");
        }
        let after = applied(&said, &rules)
            .into_iter()
            .filter(|&x| x > beyond)
            .max();
        if let Some(x) = after {
            hit.insert(x);
        }
        reader.take_committed(&b, &id, &t.marker, &mut committed, &mut aborted);
        kills.push((aim, after));
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "too slow: {kills:?}"
        );
    }
    // Every event produced, the last run to the end of them.
    producer.finish();
    let k = kills.len();
    let mut child = run(k, true);
    let limit = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("status") {
            break status;
        }
        if Instant::now() > limit {
            child.kill().expect("SIGKILL");
            panic!("the last run did not end");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let last = fs::read_to_string(dir.join(format!("run-{k}.err"))).unwrap();
    assert!(status.success(), "{last}");
    none_ahead(&last);
    assert!(last.contains("resuming from checkpoint"), "{last}");
    reader.take_committed(&b, &id, &t.marker, &mut committed, &mut aborted);
    eprintln!(
        "{} kills {kills:?}; {} records committed, {aborted} of aborted transactions left out",
        kills.len(),
        committed.len()
    );
    assert!(kills.len() >= 12, "{kills:?}");
    assert_eq!(
        hit,
        BTreeSet::from([0, 1, 2]),
        "killed right after each rules record applied: {kills:?}"
    );
    // (every late record written, committed or not)
    for o in reader.seen.iter().filter(|o| o.topic == t.late) {
        eprintln!("late record (interval {:?}): {}", o.interval, o.payload);
    }
    // (what differs, said before the comparison fails)
    let want = lines(&dir.join("out.jsonl"));
    let (got, file_keys) = (
        by_key(
            committed
                .iter()
                .filter(|o| o.topic == t.output)
                .map(|o| o.payload.as_str()),
        ),
        by_key(want.iter().map(String::as_str)),
    );
    for (n, (key, records)) in (file_keys.iter())
        .filter(|(k, r)| got.get(*k) != Some(*r))
        .take(5)
        .enumerate()
    {
        let committed = got.get(key).cloned().unwrap_or_default();
        eprintln!(
            "key {key}: {} records in the file run, {} committed (differ-{n}.file, differ-{n}.got)",
            records.len(),
            committed.len()
        );
        fs::write(
            dir.join(format!("differ-{n}.file")),
            records.join("\n") + "\n",
        )
        .unwrap();
        fs::write(
            dir.join(format!("differ-{n}.got")),
            committed.join("\n") + "\n",
        )
        .unwrap();
    }
    assert_same(
        &committed,
        &t.output,
        &t.late,
        &lines(&dir.join("out.jsonl")),
        &lines(&dir.join("late.jsonl")),
    );
    // The counts went on over the resumed runs: the file run's matches
    // and timeouts (issue 59: 10,607 and 1,774 against 9,274 and 1,240).
    let (file, kafka) = (
        crate::common::crash::summary(&stderr(&file)),
        crate::common::crash::summary(&last),
    );
    for word in ["matches", "timeouts"] {
        assert_eq!(count(&kafka, word), count(&file, word), "{kafka} / {file}");
    }
    // The late events' count too (issue 59's workers fault counted events
    // the engines took for late, with no late line).
    assert_eq!(
        count(&kafka, "late"),
        count(&file, "late"),
        "{kafka} / {file}"
    );
}

/// A run started with the rules topic holding every change and the
/// events topic empty, then fed the events live: each change applies at
/// its own time (none judged far ahead of an event time the run did not
/// have), the records of the file run; stopped with SIGTERM and resumed
/// to the end.
#[test]
fn a_run_started_before_any_event_applies_each_rules_record_at_its_time() {
    started_before_any_event("kafka_rules_time_start", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn on_workers_a_run_started_before_any_event_applies_each_rules_record_at_its_time() {
    started_before_any_event("kafka_rules_time_start_w", &["--workers", "2"]);
}

fn started_before_any_event(name: &str, extra: &[&str]) {
    let broker = Broker::start();
    let dir = scratch(name);
    let (events, timed) = setup(&dir);
    file_run(&dir);
    let b = broker.bootstrap();
    let input = crate::kafka_support::topic(&format!("{name}-in"));
    let rules = crate::kafka_support::topic(&format!("{name}-rules"));
    broker.create_topic(&input, 3);
    broker.create_topic(&rules, 1);
    produce_timed(&b, &rules, &timed);
    let run = |k: usize, to_end: bool| {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--rules-topic", &format!("kafka://{b}/{rules}")])
            .args(["--output", "kafka-out.jsonl", "--late", "kafka-late.jsonl"])
            .args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"])
            .args(extra);
        if to_end {
            command.args(["--kafka-until", "end"]);
        }
        command
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join(format!("run-{k}.err"))).expect("creates"));
        command
    };
    let mut child = run(0, false).spawn().expect("starts");
    // A cut with every rules record read and none applied, then the
    // events.
    let (first, limit) = (newest(&dir), Instant::now() + Duration::from_secs(180));
    while newest(&dir) == first {
        assert!(Instant::now() < limit, "no checkpoint");
        assert!(child.try_wait().unwrap().is_none(), "still running");
        std::thread::sleep(Duration::from_millis(10));
    }
    produce_by_key(&b, &input, &events);
    let said = || fs::read_to_string(dir.join("run-0.err")).unwrap_or_default();
    // (a hang guard, for a loaded machine)
    let limit = Instant::now() + Duration::from_secs(180);
    while applied(&said(), &rules) != [0, 1, 2] {
        assert!(Instant::now() < limit, "not applied: {}", said());
        assert!(child.try_wait().unwrap().is_none(), "still running");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert_eq!(child.wait().expect("waits").code(), Some(143), "{}", said());
    let first = said();
    none_ahead(&first);
    // Each at its time, in order: the records before it under the rules
    // before it.
    let output = run(1, true).output().expect("runs");
    let last = fs::read_to_string(dir.join("run-1.err")).unwrap();
    assert!(output.status.success(), "{last}");
    none_ahead(&last);
    // (per key in order: on workers the keys' records interleave
    // otherwise)
    let (got, want) = (
        lines(&dir.join("kafka-out.jsonl")),
        lines(&dir.join("out.jsonl")),
    );
    assert_eq!(got.len(), want.len(), "{first}\n{last}");
    assert_eq!(
        by_key(got.iter().map(String::as_str)),
        by_key(want.iter().map(String::as_str)),
        "{first}\n{last}"
    );
    assert_eq!(
        lines(&dir.join("kafka-late.jsonl")),
        lines(&dir.join("late.jsonl"))
    );
}
