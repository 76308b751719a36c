//! `cepheid run` from Kafka to Kafka against a real broker (tansu, started
//! by `crates/kafka/tests/it/support.rs`, never skipped: a broker that cannot be
//! installed or started fails the test): the sample stream gives the file
//! run's output; a run killed with SIGKILL at random moments and resumed
//! commits exactly the file run's records; the broker unreachable for 10 s
//! mid-run costs nothing; an unreachable broker at the start, a topic that
//! does not exist, a malformed record and a fenced instance each end or
//! warn clearly.
//!
//! tansu 0.6 hands the records of aborted transactions to `read_committed`
//! consumers (`crates/kafka/tests/it/broker.rs`,
//! `tansu_shows_aborted_records_to_read_committed`): the crash test cannot
//! leave the filtering to the broker, and does it itself, as a Kafka
//! broker would (docs/checkpoints.md, "Kafka", "The crash test"): each
//! record carries the number of its checkpoint interval (header
//! `cepheid-checkpoint`); after each kill the harness initializes the
//! transactions of the same transactional id (which ends what the dead
//! instance left open), reads the marker's committed offset (the last
//! committed checkpoint M) and every record the instance wrote; of those,
//! the records of intervals up to M are the committed ones.

use crate::common::crash::{self, Moments, PATTERNS};
use crate::common::kafka::{
    by_key, client, lines, produce_by_key, produce_lines_to, produce_timed, read_by_key, stderr,
    topics_with, Feeder, Out, Reader, Topics,
};
use crate::common::{cepheid, scratch};
use crate::kafka_support::{topic, Broker};

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const T: Duration = Duration::from_secs(30);

/// Produces `lines` to partition 0 of `topic`, batched, the last one
/// alone: tansu's memory storage answers the latest offset as the last
/// batch's first offset + 1, which `--kafka-until end` takes for the end.
fn produce_lines(bootstrap: &str, topic: &str, lines: &[String]) {
    produce_lines_to(bootstrap, topic, 0, lines);
}

/// Compares committed Kafka records with a file run's outputs: the same
/// records per key in the same order (so the same multiset), each key in
/// one partition, and the late events in the same order.
pub(crate) fn assert_same(
    committed: &[Out],
    out_topic: &str,
    late_topic: &str,
    out: &[String],
    late: &[String],
) {
    let mut sorted: Vec<&Out> = committed.iter().collect();
    sorted
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    let outs: Vec<&Out> = sorted
        .iter()
        .copied()
        .filter(|o| o.topic == out_topic)
        .collect();
    let lates: Vec<&str> = sorted
        .iter()
        .filter(|o| o.topic == late_topic)
        .map(|o| o.payload.as_str())
        .collect();
    let mut partition_of: BTreeMap<&[u8], i32> = BTreeMap::new();
    for o in &outs {
        let p = *partition_of.entry(o.key.as_slice()).or_insert(o.partition);
        assert_eq!(p, o.partition, "a key's records in two partitions");
    }
    let kafka = by_key(outs.iter().map(|o| o.payload.as_str()));
    let file = by_key(out.iter().map(String::as_str));
    assert_eq!(outs.len(), out.len(), "as many records as the file run's");
    for (key, records) in &file {
        assert_eq!(kafka.get(key), Some(records), "the records of key {key}");
    }
    assert_eq!(kafka.len(), file.len());
    assert_eq!(
        lates,
        late.iter().map(String::as_str).collect::<Vec<_>>(),
        "late events"
    );
}

/// `cepheid run` from `in` to `out`/`late` on `bootstrap` in `dir`.
fn kafka_run(dir: &Path, bootstrap: &str, t: &Topics, extra: &[&str]) -> Command {
    let mut command = kafka_run_live(dir, bootstrap, t, extra);
    command.args(["--kafka-until", "end"]);
    command
}

/// The same, reading on live (no end).
pub(crate) fn kafka_run_live(dir: &Path, bootstrap: &str, t: &Topics, extra: &[&str]) -> Command {
    let mut command = cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", &format!("kafka://{bootstrap}/{}", t.input)])
        .args(["--output", &format!("kafka://{bootstrap}/{}", t.output)])
        .args(["--late", &format!("kafka://{bootstrap}/{}", t.late)])
        .args(["--rules-from-stream"])
        .args(extra);
    command
}

/// The same over the events file.
pub(crate) fn file_run(dir: &Path) -> Output {
    let output = cepheid()
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", "events.jsonl", "--rules-from-stream"])
        .args(["--output", "out.jsonl", "--late", "late.jsonl"])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn topics(broker: &Broker, name: &str, out_partitions: i32) -> Topics {
    topics_with(broker, name, 1, out_partitions)
}

#[test]
fn the_sample_stream_from_kafka_to_kafka_gives_the_file_runs_output() {
    let broker = Broker::start();
    let dir = scratch("kafka_sample");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let events = lines(&root.join("examples/data/sample.jsonl"));
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    // (the sample's patterns, one file)
    let mut rules = String::new();
    let mut paths: Vec<_> = fs::read_dir(root.join("patterns"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cep"))
        .collect();
    paths.sort();
    for p in paths {
        rules.push_str(&fs::read_to_string(p).unwrap());
        rules.push('\n');
    }
    fs::write(dir.join("rules.cep"), rules).unwrap();
    file_run(&dir);
    let t = topics(&broker, "sample", 3);
    produce_lines(&broker.bootstrap(), &t.input, &events);
    let marker = format!("--kafka-marker-topic={}", t.marker);
    let output = kafka_run(
        &dir,
        &broker.bootstrap(),
        &t,
        &[
            "--checkpoint",
            "ckpt",
            &marker,
            "--transactional-id",
            "sample",
        ],
    )
    .output()
    .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let file = file_run(&dir);
    assert_eq!(
        crash::summary(&stderr(&output)),
        crash::summary(&stderr(&file))
    );
    // What a read_committed consumer sees (nothing was aborted here).
    let mut seen = Vec::new();
    for name in [&t.output, &t.late] {
        for s in broker.read_topic(name, "read_committed") {
            seen.push(Out {
                topic: name.clone(),
                partition: s.partition,
                offset: s.offset,
                key: s.key.unwrap_or_default().into_bytes(),
                payload: s.payload,
                interval: None,
            });
        }
    }
    let out = lines(&dir.join("out.jsonl"));
    assert!(out.len() >= 10, "the sample gives matches");
    assert_same(
        &seen,
        &t.output,
        &t.late,
        &out,
        &lines(&dir.join("late.jsonl")),
    );
}

/// `--timeouts kafka://...`: the timeouts go to a topic of their own and
/// the matches to `--output`'s, each record keyed by its partition key
/// (a key's records in one partition of each, in the file run's order).
#[test]
fn timeouts_to_a_topic_of_their_own_each_keyed_by_its_partition_key() {
    let broker = Broker::start();
    let dir = scratch("kafka_timeouts");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(20_000).lines().map(str::to_string).collect();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = file_run(&dir);
    let t = topics(&broker, "timeouts", 3);
    let timeouts = topic("timeouts-timeouts");
    broker.create_topic(&timeouts, 2);
    let b = broker.bootstrap();
    produce_lines(&b, &t.input, &events);
    let marker = format!("--kafka-marker-topic={}", t.marker);
    let timeouts_flag = format!("kafka://{b}/{timeouts}");
    let output = kafka_run(
        &dir,
        &b,
        &t,
        &[
            "--timeouts",
            &timeouts_flag,
            "--checkpoint",
            "ckpt",
            "--checkpoint-every",
            "500ms",
            "--transactional-id",
            "timeouts",
            &marker,
        ],
    )
    .output()
    .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        crash::summary(&stderr(&output)),
        crash::summary(&stderr(&file))
    );
    let out = lines(&dir.join("out.jsonl"));
    let kind = |line: &str| -> String {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
        value["kind"].as_str().expect("a kind").to_string()
    };
    // Each topic as a read_committed consumer sees it (nothing aborted):
    // its records by key, after checking each record's Kafka key and
    // that a key's records are in one partition.
    let read = |name: &str| read_by_key(&broker, name);
    for (name, wanted) in [(&t.output, "match"), (&timeouts, "timeout")] {
        let file_records: Vec<&String> = out.iter().filter(|l| kind(l) == wanted).collect();
        assert!(file_records.len() > 100, "the stream gives {wanted}s");
        let file_by_key = by_key(file_records.iter().map(|l| l.as_str()));
        assert_eq!(
            read(name),
            file_by_key,
            "the {wanted}s of {name}, key by key"
        );
    }
    // The late events went to their own topic, in order.
    let late: Vec<String> = broker
        .read_topic(&t.late, "read_committed")
        .into_iter()
        .map(|s| s.payload)
        .collect();
    assert_eq!(late, lines(&dir.join("late.jsonl")));
}

/// Rules of `PATTERNS` changed (the `$rules` records of the stream).
pub(crate) const CHANGED: &str = r#"
pattern unpaid {
    partition by order
    within 40s
    timeouts
    match created followed by paid
    where
        created: type == "created"
        paid:    type == "paid" and amount > 100
    select
        order  = created.order
        amount = paid.amount
}

pattern burst {
    partition by user
    within 10s
    skip past last event
    match fail{3,} consecutive
    where
        fail: type == "fail"
}
"#;

/// The number of the newest whole checkpoint in `dir/ckpt` (its folder
/// `cut-N`), `None` before the first: a new one is a new checkpoint.
fn checkpoint_file(dir: &Path) -> Option<u64> {
    let kept = cepheid_runtime::checkpoint::store::complete(&dir.join("ckpt")).ok()?;
    kept.first().copied()
}

/// Are two checkpoints kept (the newest not committed yet)?
fn two_kept(dir: &Path) -> bool {
    cepheid_runtime::checkpoint::store::complete(&dir.join("ckpt")).is_ok_and(|k| k.len() > 1)
}

/// How many times the crash test kills the run at least (more when a
/// window was not hit yet), and at most.
const WANTED: usize = 12;
const MOST: usize = 20;

/// The moments the crash test aims its kills at. Whether a kill did land
/// there is told afterwards from what the run left (`Landed`), not from
/// the aim. While rule changes are ahead, each aim also stops at the
/// first `$rules` record applied beyond those killed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aim {
    /// A random moment 50 to 600 ms after the start (before or in its
    /// first transaction).
    Start,
    /// Once the records of an interval after its last commit reach the
    /// broker (read uncommitted by the harness while it runs): that
    /// interval's transaction open, records in it.
    Open,
    /// As soon as it has written a checkpoint of its own (the snapshot
    /// durable, the checkpoint before it kept until the commit).
    SnapshotCommit,
    /// As soon as it says it applied a `$rules` record beyond those
    /// killed at before (an `Open` once all were).
    RuleChange,
}

/// The windows of the protocol a kill is told to have hit, from the run's
/// own state after its death.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Landed {
    /// Records of an interval after the last committed checkpoint M
    /// reached the broker: a transaction with records was open.
    open: bool,
    /// The checkpoint before is still kept and the checkpoint it wrote
    /// (number N) is after M: snapshot N durable, commit N not done.
    snapshot_commit: bool,
    /// It said it applied a `$rules` record at input offset X, and the
    /// input offset committed with M is at most X: the change was read,
    /// the commit after it not done.
    rule_change: bool,
}

/// The number of the newest whole checkpoint in `dir/ckpt` (its marker,
/// `docs/checkpoints.md`, "The files").
fn checkpoint_number(dir: &Path) -> Option<u64> {
    let stored = crate::common::newest_stored(&dir.join("ckpt"))?;
    Some(stored.marker().number())
}

/// The input offsets of the `$rules` records a run said it applied
/// (`cepheid: kafka://HOST:PORT/TOPIC:X (`$rules`): rules reloaded:`, X
/// the record's offset), in its standard error `said`.
fn rules_applied_at(said: &str) -> Vec<i64> {
    said.lines()
        .filter(|l| {
            l.starts_with("cepheid: kafka://") && l.ends_with(" (`$rules`): rules reloaded:")
        })
        .filter_map(|l| {
            let (place, _) = l.split_once(" (`$rules`)")?;
            place.rsplit(':').next()?.parse().ok()
        })
        .collect()
}

/// The group's committed offset of partition 0 of `input`: where the
/// last committed checkpoint's source position is.
fn committed_input(bootstrap: &str, id: &str, input: &str) -> Option<i64> {
    crate::common::kafka::committed_offset(bootstrap, id, input)
}

/// Waits until `until` says so or the child ends (false) or 30 s pass
/// (false), looking every millisecond.
fn wait_for(child: &mut Child, mut until: impl FnMut() -> bool) -> bool {
    let limit = Instant::now() + T;
    while Instant::now() < limit {
        if until() {
            return true;
        }
        if child.try_wait().expect("status").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Waits for `child` to end by itself (a hang guard: five times [`T`]).
fn wait_for_end(child: &mut Child) -> std::process::ExitStatus {
    let limit = Instant::now() + 5 * T;
    loop {
        if let Some(status) = child.try_wait().expect("status") {
            return status;
        }
        if Instant::now() >= limit {
            child.kill().expect("SIGKILL");
            panic!("the run did not end");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn killed_ten_times_from_kafka_to_kafka_the_committed_output_is_the_file_runs() {
    let broker = Broker::start();
    let dir = scratch("kafka_crash");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    // 100,000 events up to 3 s out of order (late ones with --max-delay
    // 2s), malformed lines, and three changes of rules; more of the same
    // stream while the kills go on (`Feeder`).
    let mut events: Vec<String> = crash::events(100_000).lines().map(str::to_string).collect();
    events.insert(75_000, serde_json::json!({ "$rules": CHANGED }).to_string());
    events.insert(
        50_000,
        serde_json::json!({ "$rules": PATTERNS }).to_string(),
    );
    events.insert(25_000, serde_json::json!({ "$rules": CHANGED }).to_string());
    let t = topics(&broker, "crash", 3);
    let bootstrap = broker.bootstrap();
    produce_lines(&bootstrap, &t.input, &events);
    let id = "crash-test";
    // The last `$rules` record's offset.
    let last_rules = i64::try_from(
        events
            .iter()
            .rposition(|e| e.starts_with(r#"{"$rules""#))
            .expect("rules records"),
    )
    .expect("an offset");
    // (the stream's events without the rules records, and 20,000 more of
    // them each time more are needed)
    let generated = events.len() - 3;
    let feeder = Feeder::start(
        &bootstrap,
        &t.input,
        id,
        events,
        generated,
        40_000,
        |from| {
            let more = crash::events(from + 20_000);
            more.lines().skip(from).map(str::to_string).collect()
        },
    );
    let marker = format!("--kafka-marker-topic={}", t.marker);
    // (the runs killed read on live, without `--kafka-until end`: one
    // that reached the end would end the input, and its end's records
    // would be committed; the last one reads to the end)
    let run = |k: usize, to_end: bool| {
        let mut command = kafka_run_live(
            &dir,
            &bootstrap,
            &t,
            &[
                "--checkpoint",
                "ckpt",
                "--checkpoint-every",
                "250ms",
                "--transactional-id",
                id,
                &marker,
            ],
        );
        if to_end {
            command.args(["--kafka-until", "end"]);
        }
        command
            .stdout(Stdio::null())
            // (a file, read while it runs)
            .stderr(fs::File::create(dir.join(format!("run-{k}.err"))).expect("creates"))
            .spawn()
            .expect("starts")
    };
    let mut reader = Reader::new(&bootstrap, &[(&t.output, 3), (&t.late, 1)]);
    let mut committed: Vec<Out> = Vec::new();
    let mut moments = Moments(24);
    let mut markers = Vec::new();
    let mut aborted = 0;
    // Each kill: what it aimed at and where it landed.
    let mut kills: Vec<(Aim, Landed)> = Vec::new();
    // The largest input offset of a `$rules` record killed at, and the
    // last one's.
    let mut rules_killed_at = -1;
    let started = Instant::now();
    loop {
        // (a rule change is still ahead of the runs: one not killed at
        // may have been committed past)
        let rules_left = rules_killed_at < last_rules
            && committed_input(&bootstrap, id, &t.input).is_none_or(|at| at <= last_rules);
        let hits = |kills: &[(Aim, Landed)], f: fn(&Landed) -> bool| {
            kills.iter().filter(|(_, l)| f(l)).count()
        };
        // The aims in turn; once WANTED kills are done, the windows not
        // hit yet, up to MOST kills; then the run goes to its end.
        let cycle = [Aim::Open, Aim::SnapshotCommit, Aim::RuleChange];
        let aim = if kills.len() < WANTED {
            match kills.len() {
                0 | 6 => Aim::Start,
                n if cycle[n % 3] == Aim::RuleChange && !rules_left => Aim::Open,
                n => cycle[n % 3],
            }
        } else if kills.len() >= MOST {
            break;
        } else if hits(&kills, |l| l.snapshot_commit) == 0 {
            Aim::SnapshotCommit
        } else if hits(&kills, |l| l.rule_change) == 0 && rules_left {
            Aim::RuleChange
        } else if hits(&kills, |l| l.open) == 0 {
            Aim::Open
        } else {
            break;
        };
        let k = markers.len();
        let mut child: Child = run(k, false);
        let err = dir.join(format!("run-{k}.err"));
        let before = checkpoint_file(&dir);
        // While rule changes are ahead, every run is killed at the latest
        // once it applied a `$rules` record beyond those killed at,
        // whatever its aim: a run fast enough to read them all before its
        // aim's moment would commit past every rule change, and none
        // could be hit after it.
        let at_rules = || {
            rules_left && {
                let said = fs::read_to_string(&err).unwrap_or_default();
                rules_applied_at(&said).iter().any(|&x| x > rules_killed_at)
            }
        };
        let reached = match aim {
            Aim::Start => {
                let at = Instant::now()
                    + moments.between(Duration::from_millis(50), Duration::from_millis(600));
                wait_for(&mut child, || Instant::now() >= at || at_rules())
            }
            Aim::SnapshotCommit => wait_for(&mut child, || {
                (checkpoint_file(&dir) != before && two_kept(&dir)) || at_rules()
            }),
            Aim::Open => wait_for(&mut child, || {
                // (all that came: the run writes faster than one a poll)
                for _ in 0..100_000 {
                    if !reader.poll(Duration::ZERO) {
                        break;
                    }
                }
                if at_rules() {
                    return true;
                }
                // (committed: a checkpoint of its own, the one before gone)
                let last_commit = (checkpoint_file(&dir) != before && !two_kept(&dir))
                    .then(|| checkpoint_number(&dir))
                    .flatten();
                last_commit.is_some_and(|n| {
                    (reader.untaken().iter()).any(|o| o.interval.is_some_and(|i| i > n))
                })
            }),
            Aim::RuleChange => wait_for(&mut child, || {
                let said = fs::read_to_string(&err).unwrap_or_default();
                rules_applied_at(&said).iter().any(|&x| x > rules_killed_at)
            }),
        };
        let alive = child.try_wait().expect("status").is_none();
        assert!(
            reached && alive,
            "run {k} (aim {aim:?}) ended or did not get there: {}",
            fs::read_to_string(&err).unwrap_or_default()
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("waits");
        // What the dead run left, before anything else touches it.
        let prev_kept = two_kept(&dir);
        let wrote_checkpoint = checkpoint_file(&dir) != before;
        let number = checkpoint_number(&dir);
        let said = fs::read_to_string(&err).expect("its standard error");
        let from = reader.seen.len() - reader.untaken().len();
        let m = reader.take_committed(&bootstrap, id, &t.marker, &mut committed, &mut aborted);
        markers.push(m);
        let input_at = committed_input(&bootstrap, id, &t.input);
        let mine = &reader.seen[from..];
        let after_m = |i: Option<u64>| i.is_some_and(|i| m.is_none_or(|m| i > m));
        let rules = rules_applied_at(&said);
        let landed = Landed {
            open: mine.iter().any(|o| after_m(o.interval)),
            snapshot_commit: prev_kept && wrote_checkpoint && after_m(number),
            rule_change: rules.iter().any(|&x| input_at.is_none_or(|at| at <= x)),
        };
        if landed.rule_change {
            rules_killed_at = rules.iter().copied().max().unwrap_or(rules_killed_at);
        }
        kills.push((aim, landed));
        assert!(started.elapsed() < Duration::from_secs(300), "too slow");
    }
    // The input as it stands now, the file run over the same lines, and
    // the last run, to the end of it.
    let events = feeder.stop();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = file_run(&dir);
    let k = markers.len();
    let mut child = run(k, true);
    let status = wait_for_end(&mut child);
    let last = fs::read_to_string(dir.join(format!("run-{k}.err"))).expect("its standard error");
    assert!(status.success(), "{last}");
    markers.push(reader.take_committed(&bootstrap, id, &t.marker, &mut committed, &mut aborted));
    let count = |f: fn(&Landed) -> bool| kills.iter().filter(|(_, l)| f(l)).count();
    eprintln!(
        "{} kills: {} with a transaction open, {} between a snapshot and its commit, {} during a rule change; \
         last committed checkpoints {markers:?}; {aborted} records of aborted transactions left out, {} committed; \
         kills (aim, landed): {kills:?}",
        kills.len(),
        count(|l| l.open),
        count(|l| l.snapshot_commit),
        count(|l| l.rule_change),
        committed.len()
    );
    assert!(kills.len() >= 10, "at least ten kills: {kills:?}");
    // Each window of the protocol was hit, as the run's own state shows.
    assert!(
        count(|l| l.open) > 0,
        "no kill with a transaction open: {kills:?}"
    );
    assert!(
        count(|l| l.snapshot_commit) > 0,
        "no kill between a snapshot and its commit: {kills:?}"
    );
    assert!(
        count(|l| l.rule_change) > 0,
        "no kill during a rule change: {kills:?}"
    );
    // (the kills did cut transactions: the harness's filtering was needed)
    assert!(aborted > 0, "no kill left an open transaction with records");
    // The committed checkpoints went forward (never back) over the kills.
    let numbers: Vec<u64> = markers.iter().flatten().copied().collect();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{markers:?}");
    assert!(
        last.contains("cepheid: resuming from checkpoint"),
        "the last run resumed: {last}"
    );
    assert_same(
        &committed,
        &t.output,
        &t.late,
        &lines(&dir.join("out.jsonl")),
        &lines(&dir.join("late.jsonl")),
    );
    // The counts go on over the resumed runs: the last one's summary is
    // the uninterrupted file run's.
    assert_eq!(crash::summary(&last), crash::summary(&stderr(&file)));
}

#[test]
fn the_broker_unreachable_for_10_s_mid_run_the_run_waits_and_the_output_is_exact() {
    // The broker behind tansu's proxy: the proxy killed for 10 s is a
    // broker that refuses connections (tansu's memory storage would not
    // survive a restart of the broker itself; SIGSTOP would leave the
    // connections open, which is a slow broker, not a gone one).
    let (broker, mut proxy) = Broker::start_behind_proxy();
    let dir = scratch("kafka_outage");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(100_000).lines().map(str::to_string).collect();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = file_run(&dir);
    let t = topics(&broker, "outage", 2);
    let bootstrap = proxy.bootstrap();
    produce_lines(&bootstrap, &t.input, &events);
    let child = run_to_a_checkpoint(&dir, &bootstrap, &t, "outage", &[]);
    // Once it has committed a checkpoint, the broker goes for 10 s.
    proxy.stop();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let mut child = child;
    assert!(
        child.try_wait().expect("status").is_none(),
        "the run ended while the broker was unreachable"
    );
    // It said so while the broker was gone, once, and nothing of its
    // return yet.
    let said = fs::read_to_string(dir.join("run.err")).expect("its standard error");
    assert_eq!(said.matches(UNREACHABLE).count(), 1, "{said}");
    assert!(!said.contains(BACK), "{said}");
    proxy.start();
    let status = child.wait().expect("waits");
    let said = fs::read_to_string(dir.join("run.err")).expect("its standard error");
    assert!(status.success(), "{said}");
    assert!(stopped.elapsed() >= Duration::from_secs(10));
    assert_eq!(crash::summary(&said), crash::summary(&stderr(&file)));
    // And said once that it answers again, after the first message.
    let (before, after) = said.split_once(UNREACHABLE).expect("said");
    assert!(!before.contains(BACK), "{said}");
    assert_eq!(after.matches(BACK).count(), 1, "{said}");
    assert!(!after.contains(UNREACHABLE), "{said}");
    // Nothing was aborted: read_committed sees the output.
    let mut seen = Vec::new();
    for name in [&t.output, &t.late] {
        let n = if name == &t.output { 2 } else { 1 };
        let mut reader = Reader::new(&bootstrap, &[(name.as_str(), n)]);
        reader.drain(Duration::from_secs(2));
        seen.extend(reader.seen);
    }
    assert_same(
        &seen,
        &t.output,
        &t.late,
        &lines(&dir.join("out.jsonl")),
        &lines(&dir.join("late.jsonl")),
    );
}

/// `cepheid run` exactly once from the input topic to the output topics
/// through `bootstrap` (`--checkpoint ckpt` every 250 ms, transactional id
/// `id`, then `extra`), its standard error in `run.err` (read while it
/// runs), once it has committed its first checkpoint.
fn run_to_a_checkpoint(
    dir: &Path,
    bootstrap: &str,
    t: &Topics,
    id: &str,
    extra: &[&str],
) -> std::process::Child {
    let marker = format!("--kafka-marker-topic={}", t.marker);
    let mut args = vec![
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        "250ms",
        "--transactional-id",
        id,
        &marker,
    ];
    args.extend_from_slice(extra);
    let child = kafka_run(dir, bootstrap, t, &args)
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("run.err")).expect("creates"))
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + T;
    while crate::common::newest_checkpoint(&dir.join("ckpt")).is_none() {
        assert!(Instant::now() < deadline, "no checkpoint in 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The status of `child` once it ends by itself; a hang guard of 120 s
/// (far above what the runs need), then `hang` is the failure.
fn ended_within(child: &mut Child, hang: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("status") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{hang}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a run says when the broker stops answering (`crates/kafka`,
/// `reach.rs`: `cepheid: Kafka: the broker HOST:PORT does not answer
/// (...)`), and when it answers again.
const UNREACHABLE: &str = " does not answer (";
const BACK: &str = " answers again, after ";

#[test]
fn the_broker_gone_mid_run_past_the_limit_ends_the_run_with_exit_6_and_says_why() {
    let (broker, mut proxy) = Broker::start_behind_proxy();
    let dir = scratch("kafka_gone");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(100_000).lines().map(str::to_string).collect();
    let t = topics(&broker, "gone", 2);
    let bootstrap = proxy.bootstrap();
    produce_lines(&bootstrap, &t.input, &events);
    let mut child = run_to_a_checkpoint(&dir, &bootstrap, &t, "gone", &["--kafka-timeout", "5s"]);
    // Once it has committed a checkpoint, the broker goes for good.
    proxy.stop();
    // It ends by itself (not waiting forever), with exit 6.
    let status = ended_within(&mut child, "the run did not end with the broker gone");
    let said = fs::read_to_string(dir.join("run.err")).expect("its standard error");
    assert_eq!(status.code(), Some(6), "{said}");
    // Said once that the broker does not answer, then the error that
    // ends the run, and never that it answers again.
    let (before, after) = said.split_once(UNREACHABLE).expect("said unreachable");
    // (its line's start: the first line when the broker went before the
    // run said anything else, as under load it may)
    assert_eq!(
        before.rsplit('\n').next(),
        Some(&*format!("cepheid: Kafka: the broker {bootstrap}")),
        "{said}"
    );
    assert!(
        said.contains("retrying with backoff, for up to 5.0 s before giving up"),
        "{said}"
    );
    assert!(!after.contains(UNREACHABLE), "said once: {said}");
    assert!(!said.contains(BACK), "{said}");
    let error = said
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("an error line: {said}"));
    assert!(
        error.contains("Kafka: the broker did not answer ")
            && error.contains("(retried with backoff)"),
        "{said}"
    );
    drop(broker);
}

/// The broker gone mid-run past `--kafka-timeout` under a run whose only
/// Kafka client is its source (a file output): exit 6, as when the sink
/// fails too, on one engine and on workers. Before, the source's error
/// reached the run's end as its text only, an I/O error: exit 4. On
/// workers the input stops as at a signal, and says so, even when every
/// reader failed (one worker; two whose broker went at once): before, it
/// was said only by a reader that heard another's stop, so a run whose
/// reader 0 failed said nothing of it and took its input for ended,
/// warning of fields "never" seen "in 0 events".
#[test]
fn a_source_alone_whose_broker_is_gone_ends_the_run_with_exit_6() {
    let executors: &[&[&str]] = if cfg!(feature = "workers") {
        &[&[], &["--workers", "1"], &["--workers", "2"]]
    } else {
        &[&[]]
    };
    for (n, executor) in executors.iter().enumerate() {
        let (broker, mut proxy) = Broker::start_behind_proxy();
        let dir = scratch(&format!("kafka_source_gone_{n}"));
        fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
        let events: Vec<String> = crash::events(2_000).lines().map(str::to_string).collect();
        let t = topics_with(&broker, "source-gone", 3, 1);
        let bootstrap = proxy.bootstrap();
        produce_by_key(&broker.bootstrap(), &t.input, &events);
        let mut child = cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
            .args(["--events", &format!("kafka://{bootstrap}/{}", t.input)])
            .args(["--output", "out.jsonl", "--kafka-timeout", "3s"])
            .args(*executor)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("run.err")).expect("creates"))
            .spawn()
            .expect("starts");
        let deadline = Instant::now() + Duration::from_secs(120);
        while fs::metadata(dir.join("out.jsonl")).map_or(0, |m| m.len()) == 0 {
            assert!(Instant::now() < deadline, "{executor:?}: no record came");
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy.stop();
        let status = ended_within(&mut child, "the run did not end with its broker gone");
        let said = fs::read_to_string(dir.join("run.err")).expect("its standard error");
        assert_eq!(status.code(), Some(6), "{executor:?}: {said}");
        assert!(said.contains("did not answer"), "{executor:?}: {said}");
        assert!(!said.contains("never occurs"), "{executor:?}: {said}");
        if !executor.is_empty() {
            assert_eq!(
                said.matches("cepheid: stopped by a read error (said above)")
                    .count(),
                1,
                "{executor:?}: {said}"
            );
        }
    }
}

/// A run in a folder of its own (`name`) whose source's broker is a port
/// where nothing listens, with `--kafka-timeout` `timeout`.
fn unreachable_run(name: &str, timeout: &str) -> (crate::common::Scratch, Command) {
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = cepheid();
    command
        .current_dir(&dir)
        .args(["run", "rules.cep", "--kafka-timeout", timeout])
        .args(["--events", &format!("kafka://127.0.0.1:{port}/events")]);
    (dir, command)
}

#[test]
fn a_broker_unreachable_at_the_start_exits_6_after_the_limit() {
    let (_dir, mut command) = unreachable_run("kafka_unreachable", "3s");
    let started = Instant::now();
    let output = command.output().expect("runs");
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("error: Kafka: the broker did not answer"),
        "{}",
        stderr(&output)
    );
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

/// SIGTERM while the run waits for its broker at the start (the fault
/// hour's case 26: an instance stopped as it started): not ready within
/// 2 s, it ends with 143 and says it was stopped before the run started.
/// Before, the signals were taken only once the run was ready, and it
/// died by the signal, saying nothing.
#[test]
fn sigterm_before_the_run_is_ready_ends_it_saying_so() {
    let (dir, mut command) = unreachable_run("kafka_unreachable_stopped", "10m");
    let mut child = command
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("run.err")).expect("creates"))
        .spawn()
        .expect("starts");
    crate::common::terminate_once_handled(&child);
    let status = ended_within(&mut child, "the run did not end at SIGTERM");
    let said = fs::read_to_string(dir.join("run.err")).expect("its standard error");
    assert_eq!(status.code(), Some(143), "{said}");
    assert!(
        said.contains("cepheid: stopped by SIGTERM before the run started"),
        "{said}"
    );
}

#[test]
fn a_topic_that_does_not_exist_a_malformed_record_and_a_fenced_instance_are_said_clearly() {
    let broker = Broker::start();
    let dir = scratch("kafka_errors");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let b = broker.bootstrap();
    // A topic that does not exist: named, exit 4, nothing created.
    let output = cepheid()
        .current_dir(&dir)
        .args([
            "run",
            "rules.cep",
            "--events",
            &format!("kafka://{b}/nowhere"),
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(r#"error: Kafka: topic "nowhere" does not exist"#),
        "{}",
        stderr(&output)
    );
    // A malformed record: placed by topic, partition and offset, counted,
    // and the run goes on (to standard output here).
    let input = topic("malformed");
    broker.create_topic(&input, 1);
    let records = [
        r#"{"ts":1,"type":"created","order":"o1"}"#.to_string(),
        r#"{"ts":2,"type":"paid","order""#.to_string(),
        r#"{"ts":3,"type":"paid","order":"o1","amount":5}"#.to_string(),
    ];
    produce_lines(&b, &input, &records);
    let output = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--kafka-until", "end"])
        .args(["--events", &format!("kafka://{b}/{input}")])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains(&format!(
            "kafka:{input} partition 0 offset 1: malformed record: "
        )),
        "{said}"
    );
    assert!(
        said.contains("3 events read, 1 malformed") || said.contains("2 events read, 1 malformed"),
        "{said}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(r#""pattern":"unpaid""#));

    // A checkpoint of a Kafka run resumed with another --max-delay (the
    // per-partition watermarks' bound): refused, exit 5, as for a file.
    let with_delay = |delay: &str| {
        cepheid()
            .current_dir(&dir)
            .args([
                "run",
                "rules.cep",
                "--kafka-until",
                "end",
                "--checkpoint",
                "md",
            ])
            .args(["--max-delay", delay])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .output()
            .expect("runs")
    };
    let first = with_delay("2s");
    assert!(first.status.success(), "{}", stderr(&first));
    let other = with_delay("1s");
    assert_eq!(other.status.code(), Some(5), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("--max-delay 2000 ms), now event (per split, --max-delay 1000 ms)"),
        "{}",
        stderr(&other)
    );

    // Fenced: a second instance with the same transactional id takes
    // over; the first stops with exit 7 and says why.
    // (a stream long enough that the first instance is in the middle of
    // a transaction, with records written, when the second starts; the
    // first commits nothing before it (no checkpoint due): a folder that
    // keeps none, with checkpoints of the same id committed, is refused
    // without fencing anyone,
    // `an_empty_folder_with_a_transactional_id_the_broker_committed_is_refused`)
    let t = topics(&broker, "fenced", 1);
    let stream: Vec<String> = crash::events(100_000).lines().map(str::to_string).collect();
    produce_lines(&b, &t.input, &stream);
    let marker = format!("--kafka-marker-topic={}", t.marker);
    let first = cepheid()
        .current_dir(&dir)
        .args([
            "run",
            "rules.cep",
            "--checkpoint",
            "one",
            "--checkpoint-every",
            "1h",
            "--stats-every",
            "100ms",
        ])
        .args(["--transactional-id", "fenced", &marker])
        .args(["--events", &format!("kafka://{b}/{}", t.input)])
        .args(["--output", &format!("kafka://{b}/{}", t.output)])
        .stdout(Stdio::null())
        // (a file, not a pipe nobody reads while it runs: its warnings
        // would fill the pipe and block it)
        .stderr(fs::File::create(dir.join("first.err")).expect("creates"))
        .spawn()
        .expect("starts");
    // Matches made (its stats lines count them): records written in its
    // open transaction.
    let deadline = Instant::now() + T;
    let matched = |said: &str| {
        said.lines()
            // (`...: 1200 events (4000/s), 3 matches, ...`)
            .filter_map(|l| {
                l.split_once("/s), ")?
                    .1
                    .split_once(' ')?
                    .0
                    .parse::<u64>()
                    .ok()
            })
            .any(|n| n > 0)
    };
    while !matched(&fs::read_to_string(dir.join("first.err")).unwrap_or_default()) {
        assert!(Instant::now() < deadline, "no match in 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        crate::common::newest_checkpoint(&dir.join("one")).is_none(),
        "nothing committed yet"
    );
    let second = kafka_run(
        &dir,
        &b,
        &t,
        &[
            "--checkpoint",
            "two",
            "--transactional-id",
            "fenced",
            &marker,
        ],
    )
    .output()
    .expect("runs");
    assert!(second.status.success(), "{}", stderr(&second));
    // The second took the id over as it started (it has ended): the first
    // learns it at its next write to the broker, which a first that had
    // read the whole stream, waiting for more, would never make. More
    // comes, that it writes records for: a match, then the timeouts of
    // the orders left unpaid, which a watermark an hour later lets out.
    let after: Vec<String> = [
        r#"{"ts":2000000,"type":"created","order":"fence"}"#,
        r#"{"ts":2000001,"type":"paid","order":"fence","amount":1}"#,
        r#"{"ts":5600000,"type":"created","order":"later"}"#,
    ]
    .map(str::to_string)
    .to_vec();
    produce_lines(&b, &t.input, &after);
    let mut first = first;
    let deadline = Instant::now() + T;
    while first.try_wait().expect("status").is_none() {
        if Instant::now() > deadline {
            let _ = first.kill();
            panic!("the fenced instance did not stop in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = first.wait().expect("waits");
    let said = fs::read_to_string(dir.join("first.err")).expect("its standard error");
    assert_eq!(status.code(), Some(7), "{said}");
    assert!(
        said.contains(
            r#"another instance with transactional id "fenced" took over; this one stops"#
        ),
        "{said}"
    );
}

#[test]
fn kafka_options_that_cannot_work_are_refused_before_any_broker_is_asked() {
    let dir = scratch("kafka_usage");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    fs::write(dir.join("events.jsonl"), "").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--events", "kafka://127.0.0.1:1"],
            "a Kafka URL is kafka://HOST:PORT",
        ),
        (
            &["--events", "kafka://127.0.0.1:1/"],
            "no topic after the brokers",
        ),
        (
            &["--events", "kafka://nohost/t"],
            "the brokers are HOST:PORT",
        ),
        (
            &["--events", "events.jsonl", "--time", "kafka"],
            "--time kafka need --events or --output kafka://",
        ),
        (
            &["--events", "events.jsonl", "--kafka-until", "end"],
            "--kafka-until need --events kafka://",
        ),
        (
            &[
                "--events",
                "kafka://127.0.0.1:1/t",
                "--transactional-id",
                "x",
            ],
            "--transactional-id needs --output kafka://... and --checkpoint",
        ),
        (
            &[
                "--events",
                "kafka://127.0.0.1:1/t",
                "--output",
                "kafka://127.0.0.1:1/a",
                "--late",
                "late.jsonl",
            ],
            "--late kafka://... goes with --output kafka://...",
        ),
        (
            &["--events", "kafka://127.0.0.1:1/t", "--follow"],
            "--follow is for files",
        ),
        (
            &[
                "--events",
                "kafka://127.0.0.1:1/t",
                "--kafka-start",
                "yesterday",
            ],
            "is not earliest, latest",
        ),
        (
            &["--events", "kafka://127.0.0.1:1/t", "--kafka", "nonsense"],
            "is not NAME=VALUE",
        ),
        (
            &[
                "--events",
                "events.jsonl",
                "--rules-topic",
                "kafka://127.0.0.1:1/r",
            ],
            "--rules-topic needs --events kafka://",
        ),
        (
            &[
                "--events",
                "kafka://127.0.0.1:1/t",
                "--rules-topic",
                "kafka://127.0.0.2:1/r",
            ],
            "--rules-topic: one topic on the brokers of --events",
        ),
        (
            &["--events", "kafka://127.0.0.1:1/t", "--rules-dir", "."],
            "--rules-dir needs --rules-from-stream or --rules-topic",
        ),
        // What this build's librdkafka lacks (no OpenSSL: docs/kafka.md,
        // "TLS and SASL"), named, before any broker is asked; and what
        // librdkafka does not take.
        (
            &[
                "--events",
                "kafka://127.0.0.1:1/t",
                "--kafka",
                "security.protocol=ssl",
            ],
            "error: --kafka security.protocol=ssl: this cepheid's Kafka client (librdkafka) is built without SSL (TLS: OpenSSL) (it has: ",
        ),
        (
            &[
                "--output",
                "kafka://127.0.0.1:1/t",
                "--kafka",
                "security.protocol=sasl_plaintext",
                "--kafka",
                "sasl.mechanism=SCRAM-SHA-512",
            ],
            "error: --kafka sasl.mechanism=SCRAM-SHA-512: this cepheid's Kafka client (librdkafka) is built without the SASL mechanism SCRAM-SHA-512 (sasl_scram)",
        ),
        (
            &["--events", "kafka://127.0.0.1:1/t", "--kafka", "linger.ms=soon"],
            "error: --kafka linger.ms=soon: ",
        ),
    ];
    for (args, said) in cases {
        let output = cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep"])
            .args(*args)
            .output()
            .expect("runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(said),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

/// The watermark of a file run with `--max-delay 2s` after `lines` (its
/// largest event time less 2 s less 1 ms; `None` before any event).
pub(crate) fn watermark_after(lines: &[String]) -> Option<i64> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["ts"].as_i64())
        .max()
        .map(|t| t - 2000 - 1)
}

/// The changes of rules of the rules-topic tests, each `(line, record)`:
/// at that line of the file, and in the rules topic with the time at
/// which the file run's watermark is just before it there. A refused set,
/// a `$rules_file` inside `--rules-dir` and one outside it.
fn rule_changes() -> Vec<(usize, String)> {
    vec![
        (3_000, serde_json::json!({ "$rules": CHANGED }).to_string()),
        (
            6_000,
            serde_json::json!({ "$rules": "pattern broken {" }).to_string(),
        ),
        (
            9_000,
            serde_json::json!({ "$rules_file": "patterns.cep" }).to_string(),
        ),
        (
            12_000,
            serde_json::json!({ "$rules_file": "../rules.cep" }).to_string(),
        ),
        (15_000, serde_json::json!({ "$rules": CHANGED }).to_string()),
    ]
}

/// 20,000 events of the crash test's stream, the folder of `$rules_file`
/// records, and the file with the changes of rules at their lines: the
/// events and the timed rules records for Kafka.
fn rules_topic_setup(dir: &Path) -> (Vec<String>, Vec<(String, i64)>) {
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    fs::create_dir_all(dir.join("allowed")).unwrap();
    fs::write(dir.join("allowed/patterns.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(20_000).lines().map(str::to_string).collect();
    let mut file = events.clone();
    let mut timed = Vec::new();
    for (line, record) in rule_changes().into_iter().rev() {
        let w = watermark_after(&events[..line]).expect("events before");
        timed.push((record.clone(), w + 1));
        file.insert(line, record);
    }
    timed.reverse();
    fs::write(dir.join("events.jsonl"), file.join("\n") + "\n").unwrap();
    (events, timed)
}

/// `cepheid run` of the rules-topic tests over the file, to `out.jsonl`.
fn rules_file_run(dir: &Path) -> Output {
    let output = cepheid()
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", "events.jsonl", "--rules-from-stream"])
        .args(["--rules-dir", "allowed"])
        .args(["--output", "out.jsonl", "--late", "late.jsonl"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

/// The same from Kafka: the events from `input`, the rules from `rules`
/// (no --rules-from-stream: the operator named the rules topic), to
/// `kafka-out.jsonl`.
fn rules_kafka_run(dir: &Path, bootstrap: &str, input: &str, rules: &str) -> Command {
    let mut command = cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", &format!("kafka://{bootstrap}/{input}")])
        .args(["--rules-topic", &format!("kafka://{bootstrap}/{rules}")])
        .args(["--rules-dir", "allowed"])
        .args(["--output", "kafka-out.jsonl", "--late", "kafka-late.jsonl"]);
    command
}

#[test]
fn rules_from_a_rules_topic_give_the_output_of_the_same_rules_records_in_a_file() {
    let broker = Broker::start();
    let dir = scratch("kafka_rules_topic");
    let (events, timed) = rules_topic_setup(&dir);
    let file = rules_file_run(&dir);
    let file_err = stderr(&file);
    assert!(
        crash::summary(&file_err).contains(", 3 rule reloads, 2 refused"),
        "{file_err}"
    );
    let b = broker.bootstrap();
    let input = topic("rules-in");
    let rules = topic("rules-rules");
    broker.create_topic(&input, 1);
    broker.create_topic(&rules, 1);
    produce_lines(&b, &input, &events);
    // (and a record that is not a rules record: said, counted, skipped)
    let mut records = timed.clone();
    records.insert(1, ("{\"hello\": 1}".to_string(), timed[0].1));
    produce_timed(&b, &rules, &records);
    let output = rules_kafka_run(&dir, &b, &input, &rules)
        .args(["--kafka-until", "end"])
        .output()
        .expect("runs");
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert_eq!(
        fs::read_to_string(dir.join("kafka-out.jsonl")).unwrap(),
        fs::read_to_string(dir.join("out.jsonl")).unwrap(),
        "the matches and timeouts"
    );
    assert_eq!(
        fs::read_to_string(dir.join("kafka-late.jsonl")).unwrap(),
        fs::read_to_string(dir.join("late.jsonl")).unwrap(),
        "the late events"
    );
    // The same counts, but one more malformed record: the one that is not
    // a rules record, said with its place.
    let malformed = |s: &str| -> u64 {
        s.split(", ")
            .find_map(|p| p.strip_suffix(" malformed")?.parse().ok())
            .expect("a count of malformed lines")
    };
    let (kafka_counts, file_counts) = (crash::summary(&err), crash::summary(&file_err));
    let m = malformed(&file_counts);
    assert_eq!(malformed(&kafka_counts), m + 1, "{kafka_counts}");
    assert_eq!(
        kafka_counts.replace(
            &format!(", {} malformed", m + 1),
            &format!(", {m} malformed")
        ),
        file_counts
    );
    assert!(
        err.contains(&format!(
            "kafka:{rules} partition 0 offset 1: malformed record: not a rules record"
        )),
        "{err}"
    );
    // Refused as in the file, with the record's place.
    assert!(
        err.contains(&format!(
            "error: kafka:{rules} partition 0 offset 2 ($rules):1:17: expected a clause"
        )) && err.contains(&format!(
            "cepheid: kafka:{rules} partition 0 offset 2 (`$rules`): the new rules have errors; the old rules go on"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "cepheid: kafka:{rules} partition 0 offset 4 (`$rules_file` ../rules.cep): refused: it is outside --rules-dir"
        )),
        "{err}"
    );
    assert!(!err.contains("late (docs"), "no record is late: {err}");
}

#[test]
fn a_run_with_a_rules_topic_stopped_and_resumed_gives_the_same_output() {
    rules_topic_stopped_and_resumed("kafka_rules_resume", &[], "TERM");
}

/// The same on `--workers 2` (a rules topic with `--checkpoint` was
/// refused on workers), killed (SIGKILL) once a cut taken after the
/// first part is whole (the second part's first events let it complete):
/// the cut keeps the rules in force and the changes pending, and the
/// resumed run reads the rules records after its place again.
#[cfg(feature = "workers")]
#[test]
fn a_run_with_a_rules_topic_on_workers_killed_and_resumed_gives_the_same_output() {
    rules_topic_stopped_and_resumed("kafka_rules_resume_workers", &["--workers", "2"], "KILL");
}

/// A run over a rules topic with `--checkpoint` (and `extra`) stopped by
/// `signal` once it has read the first part of the events, then resumed
/// over the rest: the records of the file run (the same bytes on one
/// engine, the same lines on workers).
fn rules_topic_stopped_and_resumed(name: &str, extra: &[&str], signal: &str) {
    let broker = Broker::start();
    let dir = scratch(name);
    let (events, timed) = rules_topic_setup(&dir);
    rules_file_run(&dir);
    let b = broker.bootstrap();
    let input = topic(&format!("{name}-in"));
    let rules = topic(&format!("{name}-rules"));
    broker.create_topic(&input, 1);
    broker.create_topic(&rules, 1);
    // Every rule set is in the topic from the start; the events come in
    // two parts: the first run is stopped with some of the rules records
    // still waiting for event time (read, not applied: not in the
    // checkpoint's position).
    produce_timed(&b, &rules, &timed);
    let (first, second) = events.split_at(7_500);
    produce_lines(&b, &input, first);
    let run = || {
        let mut command = rules_kafka_run(&dir, &b, &input, &rules);
        command
            .args(["--checkpoint", "ckpt", "--checkpoint-every", "100ms"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let mut child = run().spawn().expect("starts");
    // What the file run has written once event time is where the first
    // part takes it (a `$watermark` line there: the end of the part does
    // not end event time), which the Kafka run writes once it has read
    // the first part.
    let file: Vec<String> = fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let changes = rule_changes()
        .iter()
        .filter(|(l, _)| *l < first.len())
        .count();
    let mut part = file[..first.len() + changes].to_vec();
    let w = watermark_after(first).unwrap();
    part.push(serde_json::json!({ "$watermark": w }).to_string());
    fs::write(dir.join("part.jsonl"), part.join("\n") + "\n").unwrap();
    let part_run = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", "part.jsonl", "--rules-from-stream"])
        .args(["--rules-dir", "allowed", "--output", "part-out.jsonl"])
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
    let mut second = second;
    if signal == "KILL" {
        // A cut taken after the first part was processed: a cut completes
        // once the sources read past it (not while the topic is quiet),
        // so the second part comes a hundred events at a time until one
        // does.
        // (the second new one: the first may have been asked for before
        // the first part was processed)
        let newest = || crate::common::newest_checkpoint(&dir.join("ckpt"));
        let (mut seen, mut new, limit) = (newest(), 0, Instant::now() + T);
        while new < 2 {
            assert!(Instant::now() < limit, "a cut after the first part");
            let (now, later) = second.split_at(second.len().min(100));
            produce_lines(&b, &input, now);
            second = later;
            std::thread::sleep(Duration::from_millis(50));
            if newest() != seen {
                (seen, new) = (newest(), new + 1);
            }
        }
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill");
    let stopped = child.wait_with_output().expect("waits");
    if signal == "TERM" {
        assert_eq!(stopped.status.code(), Some(143), "{}", stderr(&stopped));
        let said = stderr(&stopped);
        assert!(
            said.contains(", 1 rule reload, 1 refused"),
            "two changes reached, three waiting: {said}"
        );
    }
    // The rest of the events; the run resumed to the end.
    produce_lines(&b, &input, second);
    let output = run().args(["--kafka-until", "end"]).output().expect("runs");
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    // (the cut was taken after the first change: its rules go on, and the
    // changes made and refused before it are counted)
    assert!(
        said.contains("it goes on with the rules of the checkpoint"),
        "{said}"
    );
    assert!(
        crash::summary(&said).contains(", 3 rule reloads, 2 refused"),
        "{said}"
    );
    let read = |file: &str| {
        let text = fs::read_to_string(dir.join(file)).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if !extra.is_empty() {
            // (the workers' lines in another order)
            lines.sort();
        }
        lines
    };
    assert_eq!(
        read("kafka-out.jsonl"),
        read("out.jsonl"),
        "the matches and timeouts"
    );
    assert_eq!(
        read("kafka-late.jsonl"),
        read("late.jsonl"),
        "the late events"
    );
}

/// Waits until `path` holds a line with `text` (the live run wrote it).
fn wait_for_line(path: &Path, text: &str, child: &mut Child) {
    let limit = Instant::now() + T;
    while !fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l.contains(text))) {
        assert!(Instant::now() < limit, "{text} in {}", path.display());
        assert!(child.try_wait().unwrap().is_none(), "still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_idle_rules_topic_holds_no_event_time_back_and_a_late_rules_record_applies_at_once() {
    idle_rules_topic_and_a_late_rules_record(&[]);
}

/// The same on two workers (issue 38): worker 0's source reads the rules
/// topic, the late record applies at once on every worker, said and
/// counted as on one engine.
#[cfg(feature = "workers")]
#[test]
fn on_workers_an_idle_rules_topic_holds_no_event_time_back_and_a_late_rules_record_applies_at_once()
{
    idle_rules_topic_and_a_late_rules_record(&["--workers", "2"]);
}

/// A broker with an input and a rules topic (one partition each), and a
/// folder with the crash test's patterns; the input holds o1 created at
/// 1,000, paid 50 at 2,000, and an event at 10,000.
fn rules_topic_live(name: &str) -> (Broker, crate::common::Scratch, String, String) {
    let broker = Broker::start();
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let input = topic(&format!("{name}-in"));
    let rules = topic(&format!("{name}-rules"));
    broker.create_topic(&input, 1);
    broker.create_topic(&rules, 1);
    produce_lines(
        &broker.bootstrap(),
        &input,
        &[
            order_event(1_000, "created", "o1", 0),
            order_event(2_000, "paid", "o1", 50),
            order_event(10_000, "other", "-", 0),
        ],
    );
    (broker, dir, input, rules)
}

/// An event of the crash test's patterns: of user `u`.
fn order_event(ts: i64, kind: &str, order: &str, amount: i64) -> String {
    serde_json::json!({ "ts": ts, "type": kind, "order": order, "user": "u", "amount": amount })
        .to_string()
}

/// A live run with `extra` whose rules topic is empty, then gets a record
/// whose time event time has passed.
fn idle_rules_topic_and_a_late_rules_record(extra: &[&str]) {
    let (broker, dir, input, rules) = rules_topic_live("kafka_rules_idle");
    let b = broker.bootstrap();
    let event = order_event;
    // Live, the rules topic empty: the match of o1 needs event time past
    // 2,000, which the rules topic does not hold back.
    let mut child = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "0s"])
        .args(["--events", &format!("kafka://{b}/{input}")])
        .args(["--rules-topic", &format!("kafka://{b}/{rules}")])
        .args(["--output", "out.jsonl"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    wait_for_line(&dir.join("out.jsonl"), "\"o1\"", &mut child);
    // A rules record of time 5,000, read when event time is at 9,999: it
    // applies at once, late (paid needs amount > 100 from then on).
    produce_timed(
        &b,
        &rules,
        &[(serde_json::json!({ "$rules": CHANGED }).to_string(), 5_000)],
    );
    // o2 paid 50 (no match under the new rules), o3 paid 500 (a match).
    produce_lines(
        &b,
        &input,
        &[
            event(20_000, "created", "o2", 0),
            event(21_000, "paid", "o2", 50),
            event(30_000, "created", "o3", 0),
            event(31_000, "paid", "o3", 500),
            event(35_000, "other", "-", 0),
        ],
    );
    wait_for_line(&dir.join("out.jsonl"), "\"o3\"", &mut child);
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let output = child.wait_with_output().expect("waits");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(143), "{err}");
    assert!(
        err.contains(&format!(
            "cepheid: kafka:{rules} partition 0 offset 0: a rules record of time 1970-01-01T00:00:05.000Z read when event time was already at 1970-01-01T00:00:09.999Z: applied now, late"
        )),
        "{err}"
    );
    assert!(
        crash::summary(&err).contains(", 1 rule reload, 1 late"),
        "{err}"
    );
    let out = fs::read_to_string(dir.join("out.jsonl")).unwrap();
    assert!(!out.contains("\"o2\""), "o2 under the new rules: {out}");
}

/// Issue 39, items 5 and 8, on a live run's rules topic with the monitor:
/// a rules record stamped far ahead of event time (the year 2100: a
/// producer writing microseconds, a wrong clock) applies when it is read
/// instead of holding every later record back for ever; `{"$rules": ""}`
/// is refused (it would stop every alert); a record within
/// `--rules-max-ahead` waits for event time, shown as waiting. Each is said
/// on standard error, in `/metrics` and in `/status.json`.
#[cfg(feature = "metrics")]
#[test]
fn a_rules_record_far_ahead_applies_when_read_an_empty_set_is_refused_and_a_waiting_one_is_shown() {
    rules_topic_guards(&[]);
}

/// The same on two workers.
#[cfg(all(feature = "metrics", feature = "workers"))]
#[test]
fn on_workers_a_rules_record_far_ahead_applies_when_read_an_empty_set_is_refused_and_a_waiting_one_is_shown(
) {
    rules_topic_guards(&["--workers", "2"]);
}

#[cfg(feature = "metrics")]
fn rules_topic_guards(extra: &[&str]) {
    use crate::cli_metrics::{address, get, scrape_until, value};
    use crate::common::Live;
    let (broker, dir, input, rules) = rules_topic_live("kafka_rules_guards");
    let b = broker.bootstrap();
    let event = order_event;
    let live = Live::spawn(
        cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "0s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--rules-topic", &format!("kafka://{b}/{rules}")])
            .args(["--output", "out.jsonl", "--metrics", "127.0.0.1:0"])
            .args(extra),
    );
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let out = dir.join("out.jsonl");
    let matched = |order: &str| {
        let needle = format!("\"order\":\"{order}\"");
        fs::read_to_string(&out).is_ok_and(|t| {
            t.lines()
                .any(|l| l.contains("\"kind\":\"match\"") && l.contains(&needle))
        })
    };
    let deadline = Instant::now() + T;
    while !matched("o1") {
        assert!(Instant::now() < deadline, "no match of o1");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The year 2100: applied when read (paid needs amount > 100 from then
    // on), not at its time.
    let year_2100 = 4_102_444_800_000;
    let changed = serde_json::json!({ "$rules": CHANGED }).to_string();
    produce_timed(&b, &rules, &[(changed.clone(), year_2100)]);
    let said = live.stderr_line("further ahead than --rules-max-ahead");
    assert!(
        said.contains(&format!(
            "cepheid: kafka:{rules} partition 0 offset 0: a rules record of time 2100-01-01T00:00:00.000Z read when event time was at "
        )) && said.contains(": applied now, not at its time"),
        "{said}"
    );
    scrape_until(addr, "the record applied ahead", |t| {
        value(t, "cepheid_reloads_ahead_total") == Some(1.0)
            && value(t, "cepheid_reloads_total") == Some(1.0)
    });
    // Then an empty set (refused) at 13,000, past o2 and o3 under the new
    // rules.
    produce_timed(
        &b,
        &rules,
        &[(serde_json::json!({ "$rules": "" }).to_string(), 13_000)],
    );
    produce_lines(
        &b,
        &input,
        &[
            event(11_000, "created", "o2", 0),
            event(11_500, "paid", "o2", 50),
            event(12_000, "created", "o3", 0),
            event(12_500, "paid", "o3", 500),
            event(20_000, "other", "-", 0),
        ],
    );
    live.stderr_line(&format!(
        "cepheid: kafka:{rules} partition 0 offset 1 (`$rules`): refused: the new rule set has no patterns"
    ));
    scrape_until(addr, "the refusal", |t| {
        value(t, "cepheid_reloads_refused_total") == Some(1.0)
    });
    // A record half an hour ahead waits (within the bound), shown.
    let half_hour_on = 20_000 + 1_800_000;
    produce_timed(&b, &rules, &[(changed, half_hour_on)]);
    let deadline = Instant::now() + T;
    let status = loop {
        let (_, json) = get(addr, "/status.json");
        let status: serde_json::Value = serde_json::from_str(&json).unwrap();
        let waiting = &status["run"]["reloads"]["waiting"];
        if waiting["at_ms"].as_i64() == Some(half_hour_on) {
            assert_eq!(waiting["records"].as_u64(), Some(1), "{waiting}");
            break status;
        }
        assert!(Instant::now() < deadline, "not shown waiting: {status}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = scrape_until(addr, "the record waiting", |t| {
        value(t, "cepheid_rules_waiting").is_some()
    });
    assert_eq!(value(&text, "cepheid_rules_waiting"), Some(1.0), "{text}");
    let reloads = &status["run"]["reloads"];
    assert_eq!(reloads["ahead"].as_u64(), Some(1), "{reloads}");
    assert!(
        reloads["last_ahead"]
            .as_str()
            .unwrap_or_default()
            .contains("further ahead than --rules-max-ahead"),
        "{reloads}"
    );
    assert!(
        reloads["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("no patterns"),
        "{reloads}"
    );
    // Event time reaches it: applied, nothing waits.
    produce_lines(&b, &input, &[event(2_000_000, "other", "-", 0)]);
    scrape_until(addr, "the waiting record applied", |t| {
        value(t, "cepheid_rules_waiting") == Some(0.0)
            && value(t, "cepheid_reloads_total") == Some(2.0)
    });
    assert!(
        matched("o3") && !matched("o2"),
        "o2 and o3 under the new rules"
    );
    live.signal("TERM");
    let (status, _, err) = live.finish();
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(
        crash::summary(&err).contains(", 2 rule reloads, 1 refused (the old rules kept)"),
        "{err}"
    );
}

#[test]
fn a_three_partition_topic_gives_each_keys_output_of_the_file_run_exactly_once_across_a_stop() {
    let broker = Broker::start();
    let dir = scratch("kafka_partitions");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    // 20,000 events up to 3 s out of order, --max-delay 5s: none is late,
    // in the file nor in any partition (the file's watermark and the
    // partitions' least one differ, so lateness would differ), and each
    // key's records depend only on its own events.
    let events: Vec<String> = crash::events(20_000).lines().map(str::to_string).collect();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
        .args(["--events", "events.jsonl"])
        .args(["--output", "out.jsonl", "--late", "late.jsonl"])
        .output()
        .expect("runs");
    assert!(file.status.success(), "{}", stderr(&file));
    assert!(
        crash::summary(&stderr(&file)).contains(", 0 late,"),
        "{}",
        stderr(&file)
    );
    let b = broker.bootstrap();
    let input = topic("partitions-in");
    let output = topic("partitions-out");
    let late = topic("partitions-late");
    let marker = topic("partitions-marker");
    broker.create_topic(&input, 3);
    broker.create_topic(&output, 3);
    broker.create_topic(&late, 1);
    broker.create_topic(&marker, 1);
    let (first, second) = events.split_at(10_000);
    produce_by_key(&b, &input, first);
    let marker_flag = format!("--kafka-marker-topic={marker}");
    let run = || {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--output", &format!("kafka://{b}/{output}")])
            .args(["--late", &format!("kafka://{b}/{late}")])
            .args(["--checkpoint", "ckpt", "--checkpoint-every", "100ms"])
            .args(["--transactional-id", "partitions", &marker_flag])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    // Live over the first half, stopped (SIGTERM: a last checkpoint and
    // its transaction) once it has taken a checkpoint.
    let mut child = run().spawn().expect("starts");
    let limit = Instant::now() + T;
    while checkpoint_file(&dir).is_none() {
        assert!(Instant::now() < limit, "a first checkpoint");
        assert!(child.try_wait().unwrap().is_none(), "still running");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let stopped = child.wait_with_output().expect("waits");
    assert_eq!(stopped.status.code(), Some(143), "{}", stderr(&stopped));
    // The second half; resumed to the end.
    produce_by_key(&b, &input, second);
    let last = run().args(["--kafka-until", "end"]).output().expect("runs");
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(
        stderr(&last).contains("cepheid: resuming from checkpoint"),
        "resumed from the checkpoint: {}",
        stderr(&last)
    );
    // A Kafka position is offsets, not a line ("at line 1" before).
    let resuming = stderr(&last)
        .lines()
        .find(|l| l.starts_with("cepheid: resuming from checkpoint"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        resuming.ends_with(&format!(" where it left kafka://{b}/{input}")),
        "{resuming}"
    );
    // The counts go on over the resumed run.
    assert_eq!(
        crash::summary(&stderr(&last)),
        crash::summary(&stderr(&file))
    );
    let mut seen = Vec::new();
    for name in [&output, &late] {
        for s in broker.read_topic(name, "read_committed") {
            seen.push(Out {
                topic: name.clone(),
                partition: s.partition,
                offset: s.offset,
                key: s.key.unwrap_or_default().into_bytes(),
                payload: s.payload,
                interval: None,
            });
        }
    }
    let out = lines(&dir.join("out.jsonl"));
    assert!(out.len() > 1_000, "the stream gives records");
    // Each key's records in the file run's order, once each (so the same
    // multiset), each key in one partition; no late events.
    assert_same(&seen, &output, &late, &out, &lines(&dir.join("late.jsonl")));
}

/// Writes `lines` to partition 0 of `topic` with a transactional
/// producer, `per` lines a transaction, each committed (as `cepheid
/// run`'s transactional sink writes): each transaction ends with a commit
/// marker, which no consumer reads.
fn produce_lines_in_transactions(bootstrap: &str, topic: &str, lines: &[String], per: usize) {
    let producer: BaseProducer = client(bootstrap)
        .set("transactional.id", format!("{topic}-writer"))
        .create()
        .expect("a transactional producer");
    producer.init_transactions(T).expect("init_transactions");
    for chunk in lines.chunks(per) {
        producer.begin_transaction().expect("begin_transaction");
        for line in chunk {
            loop {
                match producer.send(BaseRecord::<(), _>::to(topic).partition(0).payload(line)) {
                    Ok(()) => break,
                    Err((e, _)) => {
                        assert!(
                            e.rdkafka_error_code()
                                == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                            "{e}"
                        );
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        producer.commit_transaction(T).expect("commit_transaction");
    }
}

#[test]
fn kafka_until_end_ends_on_a_topic_written_with_transactions() {
    let broker = Broker::start();
    let dir = scratch("kafka_until_end_transactions");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(2_000).lines().map(str::to_string).collect();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = file_run(&dir);
    let input = topic("transactional-in");
    broker.create_topic(&input, 1);
    // The last offset of the topic is a commit marker.
    produce_lines_in_transactions(&broker.bootstrap(), &input, &events, 300);
    let output = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args([
            "--events",
            &format!("kafka://{}/{input}", broker.bootstrap()),
        ])
        .args(["--kafka-until", "end", "--rules-from-stream"])
        .args(["--output", "kafka-out.jsonl", "--late", "kafka-late.jsonl"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    // One partition: the file run's output, byte for byte.
    assert_eq!(
        fs::read(dir.join("kafka-out.jsonl")).unwrap(),
        fs::read(dir.join("out.jsonl")).unwrap()
    );
    assert_eq!(
        fs::read(dir.join("kafka-late.jsonl")).unwrap(),
        fs::read(dir.join("late.jsonl")).unwrap()
    );
    assert_eq!(
        crash::summary(&stderr(&output)),
        crash::summary(&stderr(&file))
    );
    assert!(
        !lines(&dir.join("out.jsonl")).is_empty(),
        "the stream gives records"
    );
}

/// `--metrics` on a Kafka source: the consumer's lag, summed and per
/// partition, is 0 once the run has read every record (and waits for
/// more: no `--kafka-until`). A lag above 0 is shown by the source's own
/// test (`crates/kafka/tests/it/source.rs`, paused partitions).
#[cfg(feature = "metrics")]
#[test]
fn the_consumer_lag_is_in_the_metrics_and_0_once_everything_is_read() {
    consumer_lag_metrics(&[]);
}

/// The same on two workers, the partitions dealt to them (one reads two):
/// the lag is over every partition of both workers' sources.
#[cfg(all(feature = "metrics", feature = "workers"))]
#[test]
fn the_consumer_lag_on_workers_is_in_the_metrics_and_0_once_everything_is_read() {
    consumer_lag_metrics(&["--workers", "2"]);
}

/// A run over a 3-partition topic with `--metrics` and `extra`: its lag
/// per partition and summed, 0 once every record was read.
#[cfg(feature = "metrics")]
fn consumer_lag_metrics(extra: &[&str]) {
    use crate::cli_metrics::{address, get, value};
    use crate::common::Live;

    let broker = Broker::start();
    let dir = scratch("kafka_lag_metrics");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(3_000).lines().map(str::to_string).collect();
    let input = topic("lag-in");
    broker.create_topic(&input, 3);
    produce_by_key(&broker.bootstrap(), &input, &events);
    let mut command = cepheid();
    command
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
        .args([
            "--events",
            &format!("kafka://{}/{input}", broker.bootstrap()),
        ])
        .args(["--output", "out.jsonl", "--metrics", "127.0.0.1:0"])
        .args(extra);
    let live = Live::spawn(&mut command);
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let per_partition = |text: &str| -> Vec<(String, Option<f64>)> {
        (0..3)
            .map(|p| {
                let name =
                    format!("cepheid_partition_lag_records{{topic=\"{input}\",partition=\"{p}\"}}");
                let v = value(text, &name);
                (name, v)
            })
            .collect()
    };
    // Every record read, and statistics taken since: nothing behind.
    let deadline = Instant::now() + T;
    let text = loop {
        let (code, text) = get(addr, "/metrics");
        assert_eq!(code, 200, "{text}");
        let all_read = value(&text, "cepheid_events_read_total") == Some(events.len() as f64);
        let lag = value(&text, "cepheid_consumer_lag_records");
        if all_read && lag == Some(0.0) && per_partition(&text).iter().all(|(_, v)| *v == Some(0.0))
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no lag of 0 came: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(per_partition(&text).len(), 3, "{text}");
    assert!(
        text.contains("# TYPE cepheid_partition_lag_records gauge"),
        "{text}"
    );
    let (code, json) = get(addr, "/status.json");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(status["run"]["consumer_lag"], 0, "{json}");
    let partitions = status["run"]["consumer_lag_partitions"]
        .as_array()
        .expect("per partition");
    let named: Vec<(String, u64, u64)> = partitions
        .iter()
        .map(|p| {
            (
                p["topic"].as_str().unwrap().to_string(),
                p["partition"].as_u64().unwrap(),
                p["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        named,
        (0..3).map(|p| (input.clone(), p, 0)).collect::<Vec<_>>()
    );
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

/// `--workers` over a 3-partition topic (the partitions dealt to the
/// workers, each reading its own with per-partition watermarks): each key
/// gets the file run's records in its order, and the counts are the file
/// run's; on 2 workers (one reads two partitions) and on 4 (one reads
/// none).
#[cfg(feature = "workers")]
#[test]
fn a_three_partition_topic_on_workers_gives_each_key_the_file_runs_records() {
    let broker = Broker::start();
    let dir = scratch("kafka_workers");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    // Up to 3 s out of order, --max-delay 5s: none is late (as in the
    // one-worker test of three partitions).
    let events: Vec<String> = crash::events(20_000).lines().map(str::to_string).collect();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
        .args(["--events", "events.jsonl"])
        .args(["--output", "out.jsonl", "--late", "late.jsonl"])
        .output()
        .expect("runs");
    assert!(file.status.success(), "{}", stderr(&file));
    assert!(
        crash::summary(&stderr(&file)).contains(", 0 late,"),
        "{}",
        stderr(&file)
    );
    let out = lines(&dir.join("out.jsonl"));
    assert!(out.len() > 1_000, "the stream gives records");
    let input = topic("workers-in");
    broker.create_topic(&input, 3);
    produce_by_key(&broker.bootstrap(), &input, &events);
    for workers in ["2", "4"] {
        let output = cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
            .args([
                "--events",
                &format!("kafka://{}/{input}", broker.bootstrap()),
            ])
            .args(["--kafka-until", "end", "--workers", workers])
            .args(["--output", "kafka-out.jsonl", "--late", "kafka-late.jsonl"])
            .output()
            .expect("runs");
        assert!(output.status.success(), "{workers}: {}", stderr(&output));
        assert_eq!(
            crash::summary(&stderr(&output)),
            crash::summary(&stderr(&file)),
            "{workers}: {}",
            stderr(&output)
        );
        let got = lines(&dir.join("kafka-out.jsonl"));
        assert_eq!(got.len(), out.len(), "{workers}");
        let (got, want) = (
            by_key(got.iter().map(String::as_str)),
            by_key(out.iter().map(String::as_str)),
        );
        assert_eq!(got.len(), want.len(), "{workers}");
        for (key, records) in &want {
            assert_eq!(
                got.get(key),
                Some(records),
                "{workers}: the records of key {key}"
            );
        }
        assert!(lines(&dir.join("kafka-late.jsonl")).is_empty(), "{workers}");
    }
}

/// Without `--kafka-until` a Kafka source on workers goes on until a
/// signal: SIGTERM stops every worker's source, the run ends with 143,
/// and each key has a prefix of the file run's records (event time stops
/// at the least of the workers' watermarks).
#[cfg(feature = "workers")]
#[test]
fn sigterm_stops_a_kafka_source_on_workers() {
    use crate::common::Live;

    let broker = Broker::start();
    let dir = scratch("kafka_workers_sigterm");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(5_000).lines().map(str::to_string).collect();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
        .args(["--events", "events.jsonl", "--output", "out.jsonl"])
        .output()
        .expect("runs");
    assert!(file.status.success(), "{}", stderr(&file));
    let input = topic("workers-sigterm-in");
    broker.create_topic(&input, 3);
    produce_by_key(&broker.bootstrap(), &input, &events);
    let mut command = cepheid();
    command
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
        .args([
            "--events",
            &format!("kafka://{}/{input}", broker.bootstrap()),
        ])
        .args(["--workers", "2", "--output", "kafka-out.jsonl"]);
    let live = Live::spawn(&mut command);
    // Records come out once worker 0 has read what its partitions hold.
    let limit = Instant::now() + T;
    while fs::metadata(dir.join("kafka-out.jsonl")).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < limit, "no output came");
        std::thread::sleep(Duration::from_millis(20));
    }
    live.signal("TERM");
    let (status, _, err) = live.finish();
    assert_eq!(status.code(), Some(143), "{err}");
    assert_eq!(
        err.matches("cepheid: stopped by SIGTERM").count(),
        1,
        "{err}"
    );
    let got = lines(&dir.join("kafka-out.jsonl"));
    assert!(!got.is_empty());
    let want = by_key(lines(&dir.join("out.jsonl")).iter().map(String::as_str));
    for (key, records) in by_key(got.iter().map(String::as_str)) {
        let all = want
            .get(&key)
            .unwrap_or_else(|| panic!("key {key} not in the file run's"));
        assert!(
            all.starts_with(&records),
            "key {key}: {records:?} is not a prefix of {all:?}"
        );
    }
}

/// What Kafka on workers does not do is refused (exit 2) before any
/// broker is asked: a Kafka output with `--output-per-worker`
/// (`docs/kafka.md`, "On workers"). (A Kafka output with `--processes`
/// and `--checkpoint` was refused too: `cli_kafka_workers.rs` kills such a
/// run and checks what it committed.)
#[cfg(feature = "workers")]
#[test]
fn kafka_on_workers_refuses_what_it_does_not_do_yet() {
    let dir = scratch("kafka_workers_refused");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    fs::write(dir.join("events.jsonl"), "").unwrap();
    let cases: &[(&[&str], &str)] = &[(
        &[
            "--events",
            "events.jsonl",
            "--output",
            "kafka://127.0.0.1:1/o",
            "--output-per-worker",
        ],
        "error: --output-per-worker needs --output FILE, not a sink (kafka://...)",
    )];
    for (args, said) in cases {
        let output = cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--workers", "2"])
            .args(*args)
            .output()
            .expect("runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(said),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

/// With `--checkpoint` a Kafka source on workers keeps each worker's
/// offsets and partition watermarks in the cuts: a run on 2 workers over
/// the first half of a 3-partition topic, stopped by SIGTERM (its last
/// cut), and resumed on 3 workers over the whole topic (each partition
/// dealt to a new worker, sought to its offset, its watermark restored)
/// gives each key the file run's records exactly once, in order, and the
/// file run's counts, late events included (none, and no late line).
#[cfg(feature = "workers")]
#[test]
fn a_kafka_source_on_workers_resumes_from_its_cut_after_sigterm() {
    use crate::common::Live;

    let broker = Broker::start();
    let dir = scratch("kafka_workers_checkpoint");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(20_000).lines().map(str::to_string).collect();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let file = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
        .args(["--events", "events.jsonl"])
        .args(["--output", "out.jsonl", "--late", "late.jsonl"])
        .output()
        .expect("runs");
    assert!(file.status.success(), "{}", stderr(&file));
    assert!(crash::summary(&stderr(&file)).contains(", 0 late,"));
    let input = topic("workers-checkpoint-in");
    broker.create_topic(&input, 3);
    let (first, second) = events.split_at(10_000);
    produce_by_key(&broker.bootstrap(), &input, first);
    let url = format!("kafka://{}/{input}", broker.bootstrap());
    let run = |workers: &str| {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
            .args(["--events", &url, "--workers", workers])
            .args(["--checkpoint", "ckpt", "--checkpoint-every", "100ms"])
            .args(["--output", "kafka-out.jsonl", "--late", "kafka-late.jsonl"]);
        command
    };
    // The first half, stopped once records came out (worker 0 read what
    // its partitions held): the last cut holds each worker's offsets.
    let live = Live::spawn(&mut run("2"));
    let limit = Instant::now() + T;
    while fs::metadata(dir.join("kafka-out.jsonl")).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < limit, "no output came");
        std::thread::sleep(Duration::from_millis(20));
    }
    live.signal("TERM");
    let (status, _, err) = live.finish();
    assert_eq!(status.code(), Some(143), "{err}");
    let complete = crate::common::newest_checkpoint(&dir.join("ckpt")).is_some();
    assert!(complete, "a complete cut: {err}");
    let written = fs::read(dir.join("kafka-out.jsonl")).unwrap();

    // The second half; resumed on another number of workers, 3, to the
    // end: each partition goes on from its offset and its watermark on
    // the worker it is dealt to now.
    produce_by_key(&broker.bootstrap(), &input, second);
    let last = run("3")
        .args(["--kafka-until", "end"])
        .output()
        .expect("runs");
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(
        stderr(&last).contains("cepheid: resuming from checkpoint")
            && stderr(&last).contains("it was taken on 2 workers"),
        "{}",
        stderr(&last)
    );
    assert!(written.len() <= fs::metadata(dir.join("kafka-out.jsonl")).unwrap().len() as usize);
    assert_eq!(
        crash::summary(&stderr(&last)),
        crash::summary(&stderr(&file)),
        "{}",
        stderr(&last)
    );
    let out = lines(&dir.join("out.jsonl"));
    let got = lines(&dir.join("kafka-out.jsonl"));
    assert_eq!(got.len(), out.len());
    let (got, want) = (
        by_key(got.iter().map(String::as_str)),
        by_key(out.iter().map(String::as_str)),
    );
    assert_eq!(got.len(), want.len());
    for (key, records) in &want {
        assert_eq!(got.get(key), Some(records), "the records of key {key}");
    }
    assert!(lines(&dir.join("kafka-late.jsonl")).is_empty());
}

/// Issue 39, item 3: a standby taking over with a checkpoint folder of its
/// own, empty (or a disk replaced), and the transactional id the broker
/// holds a committed checkpoint of: refused (exit 5), saying how to go on
/// and how to start over on purpose, on one engine and on workers;
/// nothing is committed again. It started from the beginning and
/// committed every record a second time. Another transactional id is the
/// deliberate way to start over.
#[test]
fn an_empty_folder_with_a_transactional_id_the_broker_committed_is_refused() {
    let broker = Broker::start();
    let dir = scratch("kafka_empty_folder");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(3_000).lines().map(str::to_string).collect();
    let t = topics(&broker, "empty-folder", 1);
    let bootstrap = broker.bootstrap();
    produce_lines(&bootstrap, &t.input, &events);
    let marker = format!("--kafka-marker-topic={}", t.marker);
    let run = |folder: &str, id: &str, extra: &[&str]| {
        let args = ["--checkpoint", folder, &marker, "--transactional-id", id];
        kafka_run(&dir, &bootstrap, &t, &[&args[..], extra].concat())
            .output()
            .expect("runs")
    };
    let first = run("ckpt", "standby", &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let committed = broker.read_topic(&t.output, "read_committed").len();
    assert!(committed > 0, "{}", stderr(&first));
    for layout in [&[][..], &["--workers", "2"][..]] {
        let again = run("empty", "standby", layout);
        let said = stderr(&again);
        assert_eq!(again.status.code(), Some(5), "{layout:?}: {said}");
        assert!(
            said.contains("but no checkpoint is kept")
                && said.contains("give another --transactional-id"),
            "{layout:?}: {said}"
        );
        assert_eq!(
            broker.read_topic(&t.output, "read_committed").len(),
            committed,
            "{layout:?}: nothing committed again"
        );
    }
    let over = run("fresh", "standby-2", &[]);
    assert!(over.status.success(), "{}", stderr(&over));
    assert_eq!(
        broker.read_topic(&t.output, "read_committed").len(),
        2 * committed,
        "another transactional id starts over: every record again"
    );
}

/// A source that cannot read on, on workers (issue 39, found by
/// `tests/kafka_faults.rs`): the broker gone past `--kafka-timeout` with
/// events still to come. Each worker's input stops where it is, as a
/// signal stops it (every reader of the process, and a last cut), and
/// the run ends with the error (exit 6). Before, each worker's input
/// ended as at its end, with no last cut; with a transactional sink the
/// workers then took their last cut "at the end", the sources ended in
/// it, so that a resume read nothing more (the kafka_faults finding).
/// What the run wrote before it ended is each key's beginning, and,
/// resumed once the broker is back over the rest of the input, the
/// outputs are the file run's.
#[cfg(feature = "workers")]
#[test]
fn on_workers_a_source_that_cannot_read_on_stops_the_input_and_a_resume_reads_on() {
    let (broker, mut proxy) = Broker::start_behind_proxy();
    let dir = scratch("kafka_workers_source_gone");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(20_000).lines().map(str::to_string).collect();
    let t = topics_with(&broker, "workers-source-gone", 3, 1);
    let bootstrap = proxy.bootstrap();
    let first = &events[..10_000];
    // (the first half trickles in: a cut needs event time to move on)
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let (stop, b, input) = (Arc::clone(&stop), broker.bootstrap(), t.input.clone());
        let first = first.to_vec();
        std::thread::spawn(move || {
            let mut sent = 0;
            for part in first.chunks(100) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                produce_by_key(&b, &input, part);
                sent += part.len();
                std::thread::sleep(Duration::from_millis(20));
            }
            sent
        })
    };
    let run = |extra: &[&str]| {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
            .args(["--events", &format!("kafka://{bootstrap}/{}", t.input)])
            .args(["--output", "out.jsonl", "--late", "late.jsonl"])
            .args(["--checkpoint", "ckpt", "--checkpoint-every", "100ms"])
            .args(["--kafka-timeout", "3s", "--workers", "2"])
            .args(extra);
        command
    };
    let mut child = run(&[])
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("run.err")).expect("creates"))
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    while crate::common::newest_checkpoint(&dir.join("ckpt")).is_none() {
        assert!(Instant::now() < deadline, "no cut");
        std::thread::sleep(Duration::from_millis(20));
    }
    // (the producer first: its broker advertises the proxy)
    stop.store(true, Ordering::Relaxed);
    let sent = trickle.join().expect("produced");
    proxy.stop();
    // (it ends once --kafka-timeout has passed)
    let status = ended_within(&mut child, "the run did not end with its broker gone");
    let said = fs::read_to_string(dir.join("run.err")).expect("its standard error");
    // (6: the broker did not answer, the source's own error's status; it
    // was 4 when only its text reached the run's end)
    assert_eq!(status.code(), Some(6), "{said}");
    assert!(said.contains("did not answer"), "{said}");
    // Stopped as a signal stops it: every reader, and a last cut.
    assert!(
        said.contains("cepheid: stopped by a read error (said above)")
            && said.contains("checkpoint taken in ckpt as the run stopped"),
        "{said}"
    );
    // What it wrote before it ended: each key's records the beginning of
    // its records in the end (none that the input did not make: no
    // timeout of a window still open, as the end of event time writes).
    let before = lines(&dir.join("out.jsonl"));
    proxy.start();
    produce_by_key(&bootstrap, &t.input, &events[sent..]);
    let output = run(&["--kafka-until", "end"]).output().expect("runs");
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("cepheid: resuming from checkpoint"), "{said}");
    let late: Vec<String> = (lines(&dir.join("late.jsonl")).iter())
        .map(|r| crate::common::kafka::late_event(r))
        .collect();
    let end = lines(&dir.join("out.jsonl"));
    crate::common::kafka::assert_exact(&dir, &events, &late, &end, &said);
    let by_key =
        |records: &[String]| crate::common::kafka::by_key(records.iter().map(|r| r.as_str()));
    let end = by_key(&end);
    for (key, records) in by_key(&before) {
        let all = end.get(&key).map_or(&[][..], Vec::as_slice);
        assert!(
            all.starts_with(&records),
            "{key}: written before the source failed {records:?}, in the end {all:?}"
        );
    }
}

/// Changes of a list of users in `$list` records, each `(line, record)`,
/// as in [`rule_changes`].
fn list_changes() -> Vec<(usize, String)> {
    let users =
        |from: usize, to: usize| -> Vec<String> { (from..to).map(|u| format!("u{u}")).collect() };
    vec![
        (
            2_000,
            serde_json::json!({ "$list": "suspects", "add": users(0, 60) }).to_string(),
        ),
        (
            6_000,
            serde_json::json!({ "$list": "suspects", "add": users(60, 120), "expires": 150_000 })
                .to_string(),
        ),
        (
            9_000,
            serde_json::json!({ "$list": "suspects", "remove": users(0, 30) }).to_string(),
        ),
        // (no such list: refused, said, counted)
        (
            12_000,
            serde_json::json!({ "$list": "nope", "add": "u1" }).to_string(),
        ),
    ]
}

#[test]
fn list_records_on_a_rules_topic_give_the_output_of_the_same_records_in_a_file() {
    let broker = Broker::start();
    let dir = scratch("kafka_list_records");
    fs::write(
        dir.join("rules.cep"),
        "list suspects\npattern failing { partition by user match a where a: type == \"fail\" and user in suspects }\n",
    )
    .unwrap();
    let events: Vec<String> = crash::events(20_000).lines().map(str::to_string).collect();
    let mut file = events.clone();
    let mut timed = Vec::new();
    for (line, record) in list_changes().into_iter().rev() {
        let w = watermark_after(&events[..line]).expect("events before");
        timed.push((record.clone(), w + 1));
        file.insert(line, record);
    }
    timed.reverse();
    fs::write(dir.join("events.jsonl"), file.join("\n") + "\n").unwrap();
    let from_file = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", "events.jsonl", "--lists-from-stream"])
        .args(["--output", "out.jsonl"])
        .output()
        .expect("runs");
    let file_err = stderr(&from_file);
    assert!(from_file.status.success(), "{file_err}");
    let sorted = |path: &Path| {
        let mut lines: Vec<String> = (fs::read_to_string(path).unwrap().lines())
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let expected = sorted(&dir.join("out.jsonl"));
    assert!(expected.len() > 500, "{file_err}");
    let b = broker.bootstrap();
    let input = topic("lists-in");
    let rules = topic("lists-rules");
    broker.create_topic(&input, 1);
    broker.create_topic(&rules, 1);
    produce_lines(&b, &input, &events);
    produce_timed(&b, &rules, &timed);
    for workers in ["1", "2"] {
        let output = cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--rules-topic", &format!("kafka://{b}/{rules}")])
            .args(["--output", "kafka-out.jsonl", "--kafka-until", "end"])
            .args(["--workers", workers])
            .output()
            .expect("runs");
        let err = stderr(&output);
        assert!(output.status.success(), "{err}");
        assert_eq!(
            sorted(&dir.join("kafka-out.jsonl")),
            expected,
            "{workers}: {err}"
        );
        assert!(
            err.contains(&format!(
                "kafka:{rules} partition 0 offset 3 (`$list` nope): refused: there is no list `nope` in the rule set; the record is left out"
            )),
            "{workers}: {err}"
        );
        assert_eq!(
            crash::summary(&err).split(" in ").next(),
            crash::summary(&file_err).split(" in ").next(),
            "{workers}"
        );
    }
}
