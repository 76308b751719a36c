//! A Kafka output on workers (`docs/kafka.md`, "On workers", "The
//! transactional sink"), against the real broker: worker 0 hands every
//! worker's records to one producer, idempotent without `--checkpoint`,
//! transactional with it (each cut committed with the workers' offsets
//! put together, the cut before kept until the commit returned).
//!
//! The crash test kills a run on workers from a 3-partition topic to
//! Kafka with SIGKILL at random moments (before its first commit, or at
//! a random moment after a cut of its own is complete: between the cut
//! and its commit, or in the next transaction), each instance on another
//! number of workers than the one before, and lets the last one end. As
//! in `cli_kafka.rs`, the harness filters the records of aborted
//! transactions itself (tansu hands them to `read_committed` consumers):
//! each record carries its checkpoint interval, and the marker's
//! committed offset says the last committed checkpoint.
//!
//! The input is out of order by up to 3 s and read with `--max-delay
//! 2s`, so events are late, and which ones depends on how each worker's
//! partitions were fetched: as in `cli_kafka_rescale.rs`, the committed
//! output is checked against what the runs said they did. Its late topic
//! has exactly the late events the summary counts, each an input event,
//! none twice; and the file run of the input without them (none late
//! there) gives each key exactly the committed records, in order, with
//! the same counts. A record committed twice, lost, or an event dropped
//! without reaching the late topic breaks one of them.

use crate::common::crash::{self, Moments, PATTERNS};
use crate::common::kafka::{
    assert_exact, client, complete_cuts, late_event, partition_of, produce_by_key,
    produce_lines_to, produce_timed, send_waiting, stderr, topics_with, Out, Reader, Topics,
};
use crate::common::{
    cepheid, free_ports, run_two_processes, run_two_processes_within, scratch, Scratch, PATIENCE,
};
use crate::kafka_support::{topic, Broker};

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Longest a run may take to show what the test waits for.
const T: Duration = Duration::from_secs(60);

/// How many times the crash test kills the run before letting it end.
const KILLS: usize = 6;

/// Produces `lines` to the 3 partitions of `topic`, each to the
/// partition of its key, with `producer` (one for the whole test: a slice
/// goes out in milliseconds).
fn produce_slice(producer: &BaseProducer, topic: &str, lines: &[String]) {
    for line in lines {
        let record = BaseRecord::<(), _>::to(topic)
            .partition(partition_of(line))
            .payload(line);
        send_waiting(producer, record);
    }
    producer.flush(T).expect("delivered");
}

/// What a running instance says on standard error (read by a thread of
/// its own, so that the pipe never fills), and whether its stats lines
/// (`--stats-every`) have counted an event read yet.
struct Reading {
    said: std::sync::Arc<std::sync::Mutex<String>>,
    reads: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Reading {
    fn of(child: &mut Child) -> Reading {
        use std::io::BufRead;
        use std::sync::atomic::Ordering;
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stderr = std::io::BufReader::new(child.stderr.take().expect("piped"));
        let (into, seen) = (said.clone(), reads.clone());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                // `cepheid: stats at 0.3s (last 0.1s): 1200 events (...`
                let events = line
                    .split_once("): ")
                    .filter(|_| line.starts_with("cepheid: stats at"))
                    .and_then(|(_, rest)| rest.split_once(" event"))
                    .and_then(|(n, _)| n.parse::<u64>().ok());
                if events.is_some_and(|n| n > 0) {
                    seen.store(true, Ordering::Relaxed);
                }
                let mut said = into.lock().unwrap();
                said.push_str(&line);
                said.push('\n');
            }
        });
        Reading { said, reads }
    }

    /// Has the instance read an event?
    fn reads(&self) -> bool {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What it said so far (but its stats lines).
    fn said(&self) -> String {
        let said = self.said.lock().unwrap();
        said.lines()
            .filter(|l| !l.starts_with("cepheid: stats at"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

/// The topics of a test: the input (3 partitions), the records' (3), the
/// late events' and the checkpoint marker's (1 each).
fn topics(broker: &Broker, name: &str) -> Topics {
    topics_with(broker, name, 3, 3)
}

/// `cepheid run` on `workers` workers from the input topic to the output
/// and late topics (add `--kafka-until end` to end with the input).
fn run(dir: &Path, bootstrap: &str, t: &Topics, workers: usize, extra: &[&str]) -> Command {
    let mut command = cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", &format!("kafka://{bootstrap}/{}", t.input)])
        .args(["--output", &format!("kafka://{bootstrap}/{}", t.output)])
        .args(["--late", &format!("kafka://{bootstrap}/{}", t.late)])
        .args(["--workers", &workers.to_string()])
        .args(extra);
    command
}

/// Checks records read from the output and late topics against the
/// input and the summary of the run that produced them (see the module's
/// comment, and `cli_kafka_rescale::assert_exact`): each record keyed by
/// its partition key, a key's records in one partition.
fn check(dir: &Path, events: &[String], records: &[Out], t: &Topics, said: &str) {
    let mut sorted: Vec<&Out> = records.iter().collect();
    sorted
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    let outs: Vec<&Out> = sorted
        .iter()
        .copied()
        .filter(|o| o.topic == t.output)
        .collect();
    let late: Vec<String> = (sorted.iter())
        .filter(|o| o.topic == t.late)
        .map(|o| late_event(&o.payload))
        .collect();
    // Each record keyed by its partition key, a key's records in one
    // partition (so in order).
    let mut partition_of: BTreeMap<&[u8], i32> = BTreeMap::new();
    for o in &outs {
        let value: serde_json::Value = serde_json::from_str(&o.payload).expect("a JSON record");
        assert_eq!(
            o.key,
            value["key"].to_string().into_bytes(),
            "a record's Kafka key is its partition key"
        );
        let p = *partition_of.entry(o.key.as_slice()).or_insert(o.partition);
        assert_eq!(p, o.partition, "a key's records in two partitions");
    }

    let got: Vec<String> = outs.iter().map(|o| o.payload.clone()).collect();
    assert!(!late.is_empty(), "the input has late events: {said}");
    assert_exact(dir, events, &late, &got, said);
}

/// Without `--checkpoint`, the producer is idempotent: 2 workers from a
/// 3-partition topic give every record once, each keyed by its partition
/// key, and the late events the summary counts.
#[test]
fn a_kafka_output_on_workers_without_checkpoints_has_every_record_once() {
    let broker = Broker::start();
    let dir = scratch("kafka_workers_out");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(12_000).lines().map(str::to_string).collect();
    let t = topics(&broker, "workers-out");
    let bootstrap = broker.bootstrap();
    produce_by_key(&bootstrap, &t.input, &events);
    let output = run(&dir, &bootstrap, &t, 2, &["--kafka-until", "end"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("on 2 workers"),
        "{}",
        stderr(&output)
    );
    let mut reader = Reader::new(&bootstrap, &[(&t.output, 3), (&t.late, 1)]);
    reader.drain(Duration::from_millis(1500));
    assert!(
        reader.seen.iter().all(|o| o.interval.is_none()),
        "no transactions without --checkpoint"
    );
    check(&dir, &events, &reader.seen, &t, &stderr(&output));
}

/// The same on 2 processes of 1 worker each: the partitions dealt over
/// both processes' workers, process 0's producer writes every record
/// (process 1's go to it, as into files), once each.
#[test]
fn a_kafka_output_on_two_processes_without_checkpoints_has_every_record_once() {
    let broker = Broker::start();
    let dir = scratch("kafka_processes_out");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(12_000).lines().map(str::to_string).collect();
    let t = topics(&broker, "processes-out");
    let bootstrap = broker.bootstrap();
    produce_by_key(&bootstrap, &t.input, &events);
    let ended = run_two_processes(&dir, |_| {
        run(&dir, &bootstrap, &t, 1, &["--kafka-until", "end"])
    });
    for (process, output) in ended.iter().enumerate() {
        assert!(output.status.success(), "{process}: {}", stderr(output));
    }
    let said = stderr(&ended[0]);
    assert!(said.contains("on 2 processes"), "{said}");
    let mut reader = Reader::new(&bootstrap, &[(&t.output, 3), (&t.late, 1)]);
    reader.drain(Duration::from_millis(1500));
    assert!(
        reader.seen.iter().all(|o| o.interval.is_none()),
        "no transactions without --checkpoint"
    );
    check(&dir, &events, &reader.seen, &t, &said);
}

/// The crash test on workers (see the module's comment): killed with
/// SIGKILL six times at random moments, each instance on another number
/// of workers (2, 3, 1, 2, ...), the committed output is that of one
/// uninterrupted run. The killed instances read an unbounded topic that
/// grows while they run, a part of the input each, in slices (a cut needs
/// event time to move on, which it would not once everything there was
/// read); the last one reads the rest to the end of the topic.
#[test]
fn killed_six_times_on_workers_from_kafka_to_kafka_the_committed_output_is_exact() {
    crash_chain("workers-crash", &[(1, 2), (1, 3), (1, 1), (1, 2)], None);
}

/// The crash test on processes: each instance on 2 processes of 1 worker
/// (process 0's producer commits every process's records) or on one
/// process of 2 or 3 workers, killed six times (every process at once,
/// as a machine that fails) and resumed on the other layout. Process 0's
/// sink chooses the cut every process goes on from (the one it committed,
/// when a kill came between a cut and its commit); the other process asks
/// its own sink which one that is (`Sink::committed`), and the processes
/// check that they agree before they start. The broker answers through a
/// proxy that holds each answer back 150 ms, and each instance is killed
/// as soon as a cut of its own is complete: before that cut's commit
/// (three round trips after its marker), so that the next instance has a
/// kept cut the sink did not commit, and process 0's sink chooses the one
/// before (which process 1 learns from its own).
#[test]
fn killed_six_times_on_two_processes_from_kafka_to_kafka_the_committed_output_is_exact() {
    let layouts = [(2, 1), (1, 2), (2, 1), (1, 3)];
    crash_chain(
        "processes-crash",
        &layouts,
        Some(Duration::from_millis(250)),
    );
}

/// An instance of the crash chain: its processes (process 0 first), and
/// what the others say (read, so that their pipes never fill).
struct Instance {
    children: Vec<Child>,
    others: Vec<Reading>,
}

impl Instance {
    /// Starts the instance of `run` on `processes` processes (their
    /// hostfile written in `dir`), standard error piped.
    fn start(dir: &Path, processes: usize, run: impl Fn() -> Command) -> Instance {
        if processes > 1 {
            let ports = free_ports(processes);
            let hosts: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
            fs::write(dir.join("hosts"), hosts).unwrap();
        }
        let children = (0..processes)
            .map(|process| {
                let mut command = run();
                if processes > 1 {
                    command.args(["--processes", &processes.to_string()]);
                    command.args(["--process", &process.to_string(), "--hostfile", "hosts"]);
                }
                (command.stdout(Stdio::null()).stderr(Stdio::piped()))
                    .spawn()
                    .expect("starts")
            })
            .collect();
        Instance {
            children,
            others: Vec::new(),
        }
    }

    /// Did a process end by itself?
    fn ended(&mut self) -> bool {
        (self.children.iter_mut()).any(|c| c.try_wait().expect("status").is_some())
    }

    fn kill(mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            child.wait().expect("waits");
        }
    }
}

/// Runs the crash test (see the module's comment) over `layouts`
/// (processes, workers per process), in turn, named `name` (its topics,
/// folder and transactional id). With `slow`, the broker's answers come
/// through a [`FaultProxy`](crate::kafka_support::FaultProxy) that holds
/// each back that long, and each instance is killed as soon as a cut of
/// its own is complete (before its commit, which takes three answers).
fn crash_chain(name: &str, layouts: &[(usize, usize)], slow: Option<Duration>) {
    let (broker, _proxy) = match slow {
        Some(delay) => {
            let (broker, proxy) = Broker::start_behind_slow_proxy(delay);
            (broker, Some(proxy))
        }
        None => (Broker::start(), None),
    };
    let dir = scratch(&name.replace('-', "_"));
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(40_000).lines().map(str::to_string).collect();
    let t = topics(&broker, name);
    let bootstrap = broker.bootstrap();
    let id = format!("{name}-test");
    let marker = format!("--kafka-marker-topic={}", t.marker);
    let parts: Vec<&[String]> = events.chunks(events.len().div_ceil(KILLS + 1)).collect();
    let mut reader = Reader::new(&bootstrap, &[(&t.output, 3), (&t.late, 1)]);
    let producer: BaseProducer = client(&bootstrap).create().expect("a producer");
    let mut committed: Vec<Out> = Vec::new();
    let mut moments = Moments(42);
    let mut markers = Vec::new();
    let mut aborted = 0;
    let started = Instant::now();
    let mut last = None;
    let mut uncommitted_resumed = Vec::new();
    for (instance, part) in parts.iter().enumerate() {
        let (processes, workers) = layouts[instance % layouts.len()];
        let killed = instance < KILLS;
        let mut slices: Vec<&[String]> = part.chunks(part.len().div_ceil(20)).collect();
        slices.reverse();
        if !killed {
            while let Some(slice) = slices.pop() {
                produce_by_key(&bootstrap, &t.input, slice);
            }
        }
        let before = complete_cuts(&dir);
        // (a cut kept that the sink did not commit: the sink chooses the
        // one before, process 0's on processes)
        let newest = before
            .iter()
            .filter_map(|c| c.strip_prefix("cut-")?.parse::<u64>().ok())
            .max();
        let uncommitted = newest > markers.last().and_then(|(_, m): &(_, Option<u64>)| *m);
        if uncommitted {
            uncommitted_resumed.push((processes, workers));
        }
        let mut args = vec![
            "--checkpoint",
            "ckpt",
            "--checkpoint-every",
            "200ms",
            "--transactional-id",
            &id,
            &marker,
        ];
        if killed {
            // (its reading seen on standard error: see below)
            args.extend(["--stats-every", "100ms"]);
        } else {
            args.extend(["--kafka-until", "end"]);
        }
        let mut running = Instance::start(&dir, processes, || {
            run(&dir, &bootstrap, &t, workers, &args)
        });
        let layout = (processes, workers);
        if killed {
            // A kill a quarter of the time at a random moment after the
            // start, otherwise at a random moment up to 300 ms after a cut
            // of its own is complete (before its commit, or in the next
            // transaction); its part comes meanwhile. Paced on the
            // instance, not on the clock: a cut needs event time to move
            // on after it is asked for, which it does not once the
            // instance has read everything there, so the slices after the
            // first wait until the instance reads (process 0's stats
            // lines count events): on a loaded machine it may start after
            // slices paced on the clock were all there, and no cut could
            // come.
            let reading = Reading::of(&mut running.children[0]);
            running.others = (running.children.iter_mut().skip(1))
                .map(Reading::of)
                .collect();
            let early = moments.next() % 4 == 0 && slow.is_none();
            let wait = moments.between(Duration::ZERO, Duration::from_millis(300));
            let wait = if slow.is_some() { Duration::ZERO } else { wait };
            let mut deadline = early.then(|| Instant::now() + wait + Duration::from_millis(100));
            let limit = Instant::now() + T;
            let mut first = true;
            // The last kill, when none before left an open transaction
            // with records (the check below wants one: a kill before a
            // commit), waits past its moment until the harness's reader
            // sees a record of an interval whose cut is not complete yet,
            // while the instance has its part to read (on a loaded
            // machine the moments alone once missed every transaction).
            let must_abort = instance + 1 == KILLS && aborted == 0;
            let mut open = false;
            while deadline.is_none_or(|d| Instant::now() < d) || (must_abort && !open) {
                if must_abort && deadline.is_some() {
                    while reader.poll(Duration::ZERO) {}
                    let newest = (complete_cuts(&dir).iter())
                        .filter_map(|c| c.strip_prefix("cut-")?.parse::<u64>().ok())
                        .max();
                    open = (reader.untaken().iter())
                        .any(|o| o.interval.is_some_and(|i| Some(i) > newest));
                    // (its part all there for a while: nothing more comes)
                    let waited = deadline.is_some_and(|d| d.elapsed() > Duration::from_secs(2));
                    if !open && slices.is_empty() && waited {
                        break;
                    }
                }
                assert!(
                    Instant::now() < limit,
                    "instance {instance} {layout:?}: no cut came: {}",
                    reading.said()
                );
                assert!(
                    !running.ended(),
                    "instance {instance} {layout:?}: a process ended by itself: {}{}",
                    reading.said(),
                    (running.others.iter())
                        .map(Reading::said)
                        .collect::<String>()
                );
                if deadline.is_none() && !complete_cuts(&dir).is_subset(&before) {
                    deadline = Some(Instant::now() + wait);
                    if slow.is_some() {
                        // (at once: producing the next slice waits for
                        // the broker's slow answers too)
                        break;
                    }
                }
                if first || reading.reads() {
                    if let Some(slice) = slices.pop() {
                        produce_slice(&producer, &t.input, slice);
                    }
                    first = false;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            running.kill();
            // The rest of its part, for the next instance.
            while let Some(slice) = slices.pop() {
                produce_slice(&producer, &t.input, slice);
            }
            let m = reader.take_committed(&bootstrap, &id, &t.marker, &mut committed, &mut aborted);
            markers.push((layout, m));
            assert!(started.elapsed() < Duration::from_secs(300), "too slow");
            continue;
        }
        let ended: Vec<_> = (running.children.into_iter())
            .map(|child| child.wait_with_output().expect("waits"))
            .collect();
        let m = reader.take_committed(&bootstrap, &id, &t.marker, &mut committed, &mut aborted);
        markers.push((layout, m));
        for (process, output) in ended.iter().enumerate() {
            assert!(output.status.success(), "{process}: {}", stderr(output));
        }
        last = ended.into_iter().next();
        assert!(started.elapsed() < Duration::from_secs(300), "too slow");
    }
    let last = last.expect("the last instance");
    eprintln!(
        "{KILLS} kills, ((processes, workers), last committed checkpoint) {markers:?}, {aborted} records of aborted transactions left out, {} committed; resumed with a cut kept that was not committed on {uncommitted_resumed:?}",
        committed.len()
    );
    assert!(aborted > 0, "no kill left an open transaction with records");
    if slow.is_some() {
        assert!(
            uncommitted_resumed.iter().any(|&(processes, _)| processes > 1),
            "no instance on several processes resumed beside a cut not committed: {uncommitted_resumed:?}"
        );
    }
    let numbers: Vec<u64> = markers.iter().filter_map(|(_, m)| *m).collect();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{markers:?}");
    assert!(
        stderr(&last).contains("cepheid: resuming from checkpoint"),
        "the last run resumed: {}",
        stderr(&last)
    );
    // The last cut, taken at the end, was committed: nothing is left
    // uncommitted, and only it is kept.
    assert_eq!(complete_cuts(&dir).len(), 1, "{:?}", complete_cuts(&dir));
    check(&dir, &events, &committed, &t, &stderr(&last));
}

/// A run resumed from the cut taken at the end of its input commits
/// nothing more: the topic's records stay those of the first run.
#[test]
fn a_run_on_workers_resumed_after_its_end_adds_nothing() {
    let broker = Broker::start();
    let dir = scratch("kafka_workers_again");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(3_000).lines().map(str::to_string).collect();
    let t = topics(&broker, "workers-again");
    let bootstrap = broker.bootstrap();
    produce_by_key(&bootstrap, &t.input, &events);
    let marker = format!("--kafka-marker-topic={}", t.marker);
    let args = [
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        "100ms",
        &marker,
        "--kafka-until",
        "end",
    ];
    let mut reader = Reader::new(&bootstrap, &[(&t.output, 3), (&t.late, 1)]);
    let first = run(&dir, &bootstrap, &t, 2, &args).output().expect("runs");
    assert!(first.status.success(), "{}", stderr(&first));
    reader.drain(Duration::from_millis(1500));
    let written = reader.seen.len();
    assert!(written > 0);
    let again = run(&dir, &bootstrap, &t, 3, &args).output().expect("runs");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("cepheid: resuming from checkpoint"),
        "{}",
        stderr(&again)
    );
    reader.drain(Duration::from_millis(1500));
    assert_eq!(reader.seen.len(), written, "{}", stderr(&again));
    assert_eq!(
        crash::summary(&stderr(&again)),
        crash::summary(&stderr(&first))
    );
    check(&dir, &events, &reader.seen, &t, &stderr(&again));
}

/// `n` events in time order (each 3 ms after the one before), over keys
/// `k` (0..4) and `d` (0..6), with fields `v` and `w` that only some rule
/// sets read: `cli_workers_rules`'s events, without equal times.
fn keyed_events(n: usize) -> Vec<String> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut below = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let types = ["a", "b", "c", "x", "y"];
    (0..n)
        .map(|i| {
            format!(
                "{{\"ts\":{},\"type\":\"{}\",\"k\":{},\"d\":{},\"v\":{},\"w\":{}}}",
                i * 3,
                types[below(5) as usize],
                below(4),
                below(6),
                below(5),
                below(2)
            )
        })
        .collect()
}

/// `--rules-topic` on workers (issue 38): the rules topic is read once,
/// by worker 0's source, and each record is a change at its time (its
/// Kafka timestamp) on every worker, as one engine applies it there. A
/// stream in time order over 3 partitions (none late) with changes that
/// add fields (`v`, `w`), do not parse (refused), add a pattern
/// partitioned by a new key (`d`), and go back: the records, the reload
/// lines and the summary of one engine, on 2 and on 3 workers and on
/// `--processes 2`.
#[test]
fn a_rules_topic_on_workers_gives_one_engines_records_and_words() {
    let broker = Broker::start();
    let dir = scratch("kafka_workers_rules_topic");
    fs::write(dir.join("rules.cep"), crate::cli_rules::OLD).unwrap();
    let b = broker.bootstrap();
    let input = topic("workers-rules-in");
    let rules = topic("workers-rules-rules");
    broker.create_topic(&input, 3);
    broker.create_topic(&rules, 1);
    let events = keyed_events(3_000);
    for partition in 0..3 {
        let mine: Vec<String> = (events.iter().skip(partition).step_by(3))
            .cloned()
            .collect();
        produce_lines_to(&b, &input, partition as i32, &mine);
    }
    // Each change at the time of an event: that event and the ones after
    // it see the new rules.
    let at = |i: usize| (i * 3) as i64;
    let changes = [
        (at(500), crate::cli_rules::NEW),
        (at(1_000), "pattern broken { match"),
        (at(1_500), crate::cli_workers_rules::SETS[1]),
        (at(2_300), crate::cli_rules::OLD),
    ];
    let records: Vec<(String, i64)> = (changes.iter())
        .map(|(t, set)| (serde_json::json!({ "$rules": set }).to_string(), *t))
        .collect();
    produce_timed(&b, &rules, &records);
    let command = || {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "0ms"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--rules-topic", &format!("kafka://{b}/{rules}")])
            .args(["--kafka-until", "end"]);
        command
    };
    let run = |extra: &[&str]| command().args(extra).output().expect("runs");
    // What standard error says of the rules topic's records (the
    // diagnostics of the set that does not parse too), sorted.
    let of_rules = |output: &std::process::Output| {
        let err = stderr(output);
        let mut lines: Vec<String> = (err.lines())
            .filter(|l| l.contains(&format!("kafka:{rules}")))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let one = run(&[]);
    assert!(one.status.success(), "{}", stderr(&one));
    let expected = crate::cli_workers_rules::sorted(&one);
    // (the added patterns matched: `fresh` reads `w`, `bydev` is keyed
    // by `d`)
    for name in ["\"fresh\"", "\"bydev\""] {
        assert!(expected.iter().any(|r| r.contains(name)), "{name}");
    }
    let words = crate::cli_workers_rules::said(&one);
    assert!(
        words
            .1
            .contains(", 3 rule reloads, 1 refused (the old rules kept)"),
        "{}",
        words.1
    );
    assert!(words.1.contains(", 0 late,"), "no event late: {}", words.1);
    assert!(
        !stderr(&one).contains("applied now, late"),
        "no rules record late"
    );
    assert!(
        of_rules(&one).iter().any(|l| l.contains(&format!(
            "cepheid: kafka:{rules} partition 0 offset 1 (`$rules`): the new rules have errors; the old rules go on"
        ))),
        "{:?}",
        of_rules(&one)
    );
    for workers in ["2", "3"] {
        let got = run(&["--workers", workers]);
        assert!(got.status.success(), "{}", stderr(&got));
        assert_eq!(
            crate::cli_workers_rules::sorted(&got),
            expected,
            "--workers {workers}"
        );
        assert_eq!(
            crate::cli_workers_rules::said(&got),
            words,
            "--workers {workers}"
        );
        assert_eq!(of_rules(&got), of_rules(&one), "--workers {workers}");
    }
    // On two processes: worker 0 of process 0 reads the rules topic, the
    // changes reach the workers of both.
    let outputs = run_two_processes(&dir, |process| {
        let mut command = command();
        command.args(["--output", &format!("two-{process}.jsonl")]);
        command
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
    }
    let mut got: Vec<String> = fs::read_to_string(dir.join("two-0.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    assert!(got == expected, "--processes 2: {} records", got.len());
    let (mut reloads, summary, patterns) = crate::cli_workers_rules::said(&outputs[0]);
    reloads.extend(crate::cli_workers_rules::said(&outputs[1]).0);
    reloads.sort();
    assert_eq!((reloads, summary, patterns), words, "--processes 2");
    let mut lines = of_rules(&outputs[0]);
    lines.extend(of_rules(&outputs[1]));
    lines.sort();
    assert_eq!(lines, of_rules(&one), "--processes 2");
}

/// `$rules` records among the events of a Kafka topic with
/// `--rules-from-stream` on workers: read as one engine reads them (the
/// reader waits after each until it is handed on), each a change at its
/// reader's watermark + 1 on every worker. One partition (one reader, whose
/// watermark is one engine's): one engine's records and words on 2
/// workers, a refused set and a new key among the changes.
#[test]
fn rules_records_in_a_kafka_topic_on_workers_give_one_engines_records_and_words() {
    let broker = Broker::start();
    let dir = scratch("kafka_workers_rules_records");
    fs::write(dir.join("rules.cep"), crate::cli_rules::OLD).unwrap();
    let b = broker.bootstrap();
    let input = topic("workers-rules-records");
    broker.create_topic(&input, 1);
    let mut lines = keyed_events(2_000);
    for (at, set) in [
        (1_500, crate::cli_rules::OLD),
        (1_000, crate::cli_workers_rules::SETS[1]),
        (700, "pattern broken { match"),
        (400, crate::cli_rules::NEW),
    ] {
        lines.insert(at, serde_json::json!({ "$rules": set }).to_string());
    }
    produce_lines_to(&b, &input, 0, &lines);
    let run = |extra: &[&str]| {
        cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "0ms"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--rules-from-stream", "--kafka-until", "end"])
            .args(extra)
            .output()
            .expect("runs")
    };
    let one = run(&[]);
    assert!(one.status.success(), "{}", stderr(&one));
    let words = crate::cli_workers_rules::said(&one);
    assert!(
        words
            .1
            .contains(", 3 rule reloads, 1 refused (the old rules kept)"),
        "{}",
        words.1
    );
    let got = run(&["--workers", "2"]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(
        crate::cli_workers_rules::sorted(&got),
        crate::cli_workers_rules::sorted(&one)
    );
    assert_eq!(crate::cli_workers_rules::said(&got), words);
}

/// A 2-partition topic whose records are all in partition 0, read on 2
/// workers with `--checkpoint`: worker 1's source reads nothing, so its
/// clock stays where it started (event time waits for it, as on one
/// engine). Worker 0's source may read only a little ahead of the slowest
/// source's clock while it takes part in cuts (`source.rs`, `LEAD`), but
/// only while the slowest moves (`STUCK`): before, it stopped pulling after
/// a few batches and never went on, its feed filled, the reader waited on
/// it, and SIGTERM did not stop the run (`Handle::stop` waited to send on
/// the full channel of the live input): the run hung, saying nothing.
/// Found by `tests/kafka_faults.rs` (seed 39, case 17's last run, finding
/// I). The reader reads to the end, SIGTERM stops the run, and its last
/// cut resumes: the topic's other partition then gets records, and the
/// resumed run's records are one engine's over the whole topic.
#[test]
fn on_workers_with_checkpoints_a_partition_without_records_holds_no_other_for_ever() {
    use crate::common::Live;

    let broker = Broker::start();
    // (in time order)
    let events = crash::events_with(3_000, 39 ^ 17, 0);
    let events: Vec<String> = events.lines().map(str::to_string).collect();
    let input = topic("workers-empty-in");
    broker.create_topic(&input, 2);
    produce_lines_to(&broker.bootstrap(), &input, 0, &events);
    for checkpoint in [false, true] {
        let dir = scratch(&format!("kafka_workers_empty_partition_{checkpoint}"));
        fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
        let command = |until_end: bool| {
            let mut command = to_file(&dir, &broker.bootstrap(), &input, until_end);
            command.args(["--workers", "2"]);
            if checkpoint {
                command.args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"]);
            }
            command
        };
        let live = Live::spawn(&mut command(false));
        // (everything read by the reader: its last malformed record said)
        let last = events
            .iter()
            .rposition(|e| e.contains("soon"))
            .expect("one");
        live.stderr_line(&format!("partition 0 offset {last}: malformed record"));
        // (a few cuts asked meanwhile)
        std::thread::sleep(Duration::from_secs(1));
        live.signal("TERM");
        let (status, _, err) = live.finish();
        assert_eq!(status.code(), Some(143), "checkpoint {checkpoint}: {err}");
        if !checkpoint {
            continue;
        }
        assert!(
            err.lines()
                .any(|l| l.starts_with("cepheid: checkpoint taken in")
                    && l.ends_with("as the run stopped")),
            "{err}"
        );
        // The last cut resumes: a bounded run reads nothing more of the
        // topic, ends event time, and gives one engine's records of it.
        let resumed = command(true).output().expect("cepheid runs");
        assert!(resumed.status.success(), "{}", stderr(&resumed));
        assert_one_engines_records(&dir, &events);
    }
}

/// `cepheid run rules.cep` in `dir` from the Kafka topic `input` to
/// `out.jsonl` (`--max-delay 2s`), to the topic's end with `until_end`.
fn to_file(dir: &Path, bootstrap: &str, input: &str, until_end: bool) -> Command {
    let mut command = cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", &format!("kafka://{bootstrap}/{input}")])
        .args(["--output", "out.jsonl"]);
    if until_end {
        command.args(["--kafka-until", "end"]);
    }
    command
}

/// A broker, a scratch folder with `rules.cep`, `n` events in time order
/// (`seed`: nothing late, one engine's records) produced by key to the
/// input topic of `topics(broker, name)`.
fn in_order(name: &str, n: usize, seed: u64) -> (Broker, Scratch, Vec<String>, Topics) {
    let broker = Broker::start();
    let dir = scratch(&format!("kafka_{}", name.replace('-', "_")));
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = (crash::events_with(n, seed, 0).lines())
        .map(str::to_string)
        .collect();
    let t = topics(&broker, name);
    produce_by_key(&broker.bootstrap(), &t.input, &events);
    (broker, dir, events, t)
}

/// `dir/out.jsonl` holds, in any order, the records of one engine's run
/// over `events` in a file (`rules.cep`, `--max-delay 2s`), and some.
fn assert_one_engines_records(dir: &Path, events: &[String]) {
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let one = cepheid()
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", "events.jsonl", "--output", "one.jsonl"])
        .output()
        .expect("cepheid runs");
    assert!(one.status.success(), "{}", stderr(&one));
    let sorted = |name: &str| {
        let mut lines = crate::common::kafka::lines(&dir.join(name));
        lines.sort();
        lines
    };
    let want = sorted("one.jsonl");
    assert!(!want.is_empty());
    assert_eq!(sorted("out.jsonl"), want);
}

/// A read error on two processes (`tests/kafka_faults.rs`, finding B):
/// the broker behind tansu's proxy gone past `--kafka-timeout` while both
/// processes read. Each process's readers stop at their read error, and
/// each process ends with its status, process 1 too (before: process 1
/// said the error and exited 0, as if the run had gone well; its status
/// is what an orchestrator sees of it).
#[test]
fn on_two_processes_a_read_error_ends_each_process_with_its_status() {
    let (broker, mut proxy) = Broker::start_behind_proxy();
    let dir = scratch("kafka_processes_read_error");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let events: Vec<String> = crash::events(6_000).lines().map(str::to_string).collect();
    let t = topics(&broker, "processes-read-error");
    let bootstrap = proxy.bootstrap();
    produce_by_key(&bootstrap, &t.input, &events);
    // The broker goes once process 0 has written records (each process
    // reads its partitions of the topic, live).
    let out = dir.join("out.jsonl");
    let gone = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while fs::metadata(&out).map_or(0, |m| m.len()) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy.stop();
        proxy
    });
    // (each must end by itself: the one that ends a moment after the
    // other is not killed then, up to a hang guard)
    let ended = run_two_processes_within(&dir, PATIENCE, |_| {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
            .args(["--events", &format!("kafka://{bootstrap}/{}", t.input)])
            .args(["--output", "out.jsonl", "--kafka-timeout", "3s"]);
        command
    });
    let _proxy = gone.join().expect("the proxy");
    for (process, output) in ended.iter().enumerate() {
        let said = stderr(output);
        // (6: the broker did not answer, each process's own source's error)
        assert_eq!(output.status.code(), Some(6), "process {process}: {said}");
        assert!(said.contains("did not answer"), "process {process}: {said}");
    }
}

/// SIGTERM to one process of two, each reading its partitions of a topic
/// live: the other stops too (after a few seconds, in which a signal sent
/// to every process stops each by itself), with a last cut, and ends with
/// exit 4 saying why (the signalled process, not process 0, ends with 0
/// as the others always do); the two resumed read to the end and give one
/// engine's records of the topic. Before, the other process read on
/// while event time waited for the stopped process's sources: the run
/// held for ever, saying nothing, until the other was signalled too (the
/// same after one process's read error: `kafka_faults`).
#[test]
fn on_two_processes_the_stop_of_one_stops_the_other_with_a_last_cut() {
    use crate::common::spawn_two_processes;

    let (broker, dir, events, t) = in_order("processes-one-stopped", 3_000, 45);
    let command = |until_end: bool| {
        let mut command = to_file(&dir, &broker.bootstrap(), &t.input, until_end);
        command.args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"]);
        command
    };
    let children = spawn_two_processes(&dir, |_| command(false));
    // (both read: process 0 wrote records; no periodic cut needs to be
    // complete, nor can one be once every partition is read: a cut of
    // workers waits for event time to move on)
    let deadline = Instant::now() + T;
    while fs::metadata(dir.join("out.jsonl")).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "no record came");
        std::thread::sleep(Duration::from_millis(20));
    }
    let term = std::process::Command::new("kill")
        .args(["-s", "TERM", &children[1].id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    // (a hang guard: both are killed if one fails, or after a minute)
    let pids: Vec<String> = children.iter().map(|c| c.id().to_string()).collect();
    let (done, guard) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if guard.recv_timeout(T) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .status();
        }
    });
    // (process 0 ends with 4, a failure to `wait_together`, which would
    // kill process 1 at once if it were still writing its last cut: so
    // the other is given the guard's minute to end by itself)
    let ended = crate::common::wait_together_within(children, T);
    drop(done);
    let said: Vec<String> = ended.iter().map(stderr).collect();
    // (another process than 0 ends with 0 when stopped: process 0 says
    // how the run ended, here that it did not end by itself)
    assert_eq!(ended[1].status.code(), Some(0), "{}", said[1]);
    assert!(
        said[1].contains("cepheid: stopped by SIGTERM"),
        "{}",
        said[1]
    );
    assert_eq!(ended[0].status.code(), Some(4), "{}", said[0]);
    assert!(
        said[0].contains("cepheid: stopped by the stop of another process (said there)"),
        "{}",
        said[0]
    );
    assert!(said[0].contains("as the run stopped"), "{}", said[0]);
    let resumed = crate::common::run_two_processes(&dir, |_| command(true));
    for (process, output) in resumed.iter().enumerate() {
        assert!(
            output.status.success(),
            "process {process}: {}",
            stderr(output)
        );
    }
    assert_one_engines_records(&dir, &events);
}

/// A cut of workers is at a point of event time; a source with nothing
/// to read takes a cut asked for where it stands (its capability moves
/// up, its clock stays: `SourceClock`), so a live run on workers into a
/// transactional sink commits what the records before a quiet spell
/// released without another record, as one engine does on schedule
/// (`docs/checkpoints.md`, "Cuts and a quiet input"). Before, nothing was
/// committed after the last cut that event time reached, and the run
/// said so at its start.
#[test]
fn workers_into_a_transactional_sink_commit_what_a_quiet_input_released() {
    use crate::common::kafka::Reader;
    use crate::common::Live;

    let (broker, dir, _, t) = in_order("workers-quiet", 500, 46);
    let bootstrap = broker.bootstrap();
    let every = ["--checkpoint", "ckpt", "--checkpoint-every", "100ms"];
    let live = Live::spawn(&mut run(&dir, &bootstrap, &t, 2, &every));
    let mut written = Reader::new(&bootstrap, &[(&t.output, 3)]);
    let mut committed = Reader::committed(&bootstrap, &[(&t.output, 3)]);
    // Every record the run writes comes committed, while no record comes
    // in (a hang guard, not a timing).
    let started = std::time::Instant::now();
    loop {
        written.read_to_end();
        committed.read_to_end();
        let (w, c) = (written.seen.len(), committed.seen.len());
        if w > 0 && c == w {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{c} of {w} records committed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    live.signal("TERM");
    let (status, _, err) = live.finish();
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(!err.contains("commits at each cut"), "{err}");
}
