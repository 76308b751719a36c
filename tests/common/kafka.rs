//! Helpers of the tests against the real broker (`tests/cli_kafka*.rs`,
//! `tests/kafka_faults.rs`): clients, producing by key, the harness's own
//! committed view of a transactional output ([`Reader`]: tansu hands the
//! records of aborted transactions to `read_committed` consumers), and the
//! check of a committed output against the file run of its input
//! ([`assert_exact`]).

use super::crash;
use super::{cepheid, PATIENCE};
use crate::kafka_support::{topic, Broker};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Longest a client call of the harness waits for the broker.
const T: Duration = Duration::from_secs(30);

pub(crate) fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    config
}

/// The same to `partition`.
pub(crate) fn produce_lines_to(bootstrap: &str, topic: &str, partition: i32, lines: &[String]) {
    let records: Vec<(&str, Option<i64>)> = lines.iter().map(|l| (l.as_str(), None)).collect();
    produce_batched(bootstrap, topic, partition, &records);
}

/// Produces `records` (value, Kafka timestamp in ms) to partition
/// `partition` of `topic`, batched, the last one alone (tansu's end
/// offset, `--kafka-until end`).
pub(crate) fn produce_stamped(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    records: &[(String, i64)],
) {
    let records: Vec<(&str, Option<i64>)> = (records.iter())
        .map(|(v, t)| (v.as_str(), Some(*t)))
        .collect();
    produce_batched(bootstrap, topic, partition, &records);
}

/// Produces `records` (value, Kafka timestamp if given) to `partition`
/// of `topic`, batched, the last one alone: tansu's memory storage
/// answers the latest offset as the last batch's first offset + 1, which
/// `--kafka-until end` takes for the end.
fn produce_batched(bootstrap: &str, topic: &str, partition: i32, records: &[(&str, Option<i64>)]) {
    let producer: BaseProducer = client(bootstrap).create().expect("a producer");
    let send = |&(value, ts): &(&str, Option<i64>)| {
        let mut record = BaseRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(value);
        if let Some(ts) = ts {
            record = record.timestamp(ts);
        }
        send_waiting(&producer, record);
    };
    let (last, rest) = records.split_last().expect("records");
    rest.iter().for_each(send);
    producer.flush(T).expect("delivered");
    send(last);
    producer.flush(T).expect("delivered");
}

/// Queues `record`, waiting while the producer's queue is full.
pub(crate) fn send_waiting<P: rdkafka::message::ToBytes + ?Sized>(
    producer: &BaseProducer,
    record: BaseRecord<'_, (), P>,
) {
    let mut record = Some(record);
    while let Some(r) = record.take() {
        if let Err((e, r)) = producer.send(r) {
            assert!(
                e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                "{e}"
            );
            producer.poll(Duration::from_millis(10));
            record = Some(r);
        }
    }
}

/// A record of an output topic as the harness reads it.
#[derive(Clone, Debug)]
pub(crate) struct Out {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Vec<u8>,
    pub(crate) payload: String,
    /// The `cepheid-checkpoint` header: its checkpoint interval.
    pub(crate) interval: Option<u64>,
}

/// Reads output topics from their beginning, every record (uncommitted,
/// aborted and committed alike), as they come.
pub(crate) struct Reader {
    consumer: BaseConsumer,
    pub(crate) seen: Vec<Out>,
    /// The records of `seen` before this were taken by an instance
    /// ([`Reader::take_committed`]).
    taken: usize,
    /// Each partition's last offset read: a consumer reads a partition in
    /// order, so a record at or before it is one read twice.
    last: std::collections::HashMap<(String, i32), i64>,
    /// The partitions it reads.
    partitions: Vec<(String, i32)>,
}

impl Reader {
    pub(crate) fn new(bootstrap: &str, topics: &[(&str, i32)]) -> Reader {
        Reader::with(bootstrap, topics, "read_uncommitted")
    }

    /// A reader of the committed records only.
    #[allow(dead_code)]
    pub(crate) fn committed(bootstrap: &str, topics: &[(&str, i32)]) -> Reader {
        Reader::with(bootstrap, topics, "read_committed")
    }

    fn with(bootstrap: &str, topics: &[(&str, i32)], isolation: &str) -> Reader {
        let consumer: BaseConsumer = client(bootstrap)
            .set("group.id", "cepheid-test-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", isolation)
            // (never a silent jump past records, were an offset ever out
            // of range: the harness would see records lost)
            .set("auto.offset.reset", "error")
            .create()
            .expect("a consumer");
        let mut tpl = TopicPartitionList::new();
        let mut partitions = Vec::new();
        for (t, n) in topics {
            for p in 0..*n {
                tpl.add_partition_offset(t, p, Offset::Beginning)
                    .expect("adds");
                partitions.push((t.to_string(), p));
            }
        }
        consumer.assign(&tpl).expect("assign");
        Reader {
            consumer,
            seen: Vec::new(),
            taken: 0,
            last: std::collections::HashMap::new(),
            partitions,
        }
    }

    /// Reads until each partition is read up to its end as the broker
    /// gives it now (its high watermark; past a transaction's marker:
    /// librdkafka's position moves past it), within [`PATIENCE`] (a hang
    /// guard). Not "until nothing comes for a while": a consumer whose
    /// connection was cut may fetch nothing for seconds (librdkafka's
    /// reconnection backoff, up to 10 s), and what an instance wrote
    /// would then be taken for the next one's (issue 39, finding D).
    pub(crate) fn read_to_end(&mut self) {
        let mut ends = Vec::new();
        for (t, p) in &self.partitions {
            let (_, high) = (self.consumer.fetch_watermarks(t, *p, T))
                .unwrap_or_else(|e| panic!("the end of {t}/{p}: {e}"));
            ends.push((t.clone(), *p, high));
        }
        let started = Instant::now();
        loop {
            let positions = self.consumer.position().expect("positions");
            let behind: Vec<&(String, i32, i64)> = (ends.iter())
                .filter(|(t, p, end)| {
                    let read = self.last.get(&(t.clone(), *p)).map_or(0, |o| o + 1);
                    let at = match positions.find_partition(t, *p).map(|e| e.offset()) {
                        Some(Offset::Offset(at)) => at.max(read),
                        _ => read,
                    };
                    at < *end
                })
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the harness's reader did not reach the ends {behind:?} in {PATIENCE:?}"
            );
            self.poll(Duration::from_millis(50));
        }
    }

    /// Reads until nothing came for `idle`.
    pub(crate) fn drain(&mut self, idle: Duration) {
        let mut last = Instant::now();
        while last.elapsed() < idle {
            if self.poll(Duration::from_millis(50)) {
                last = Instant::now();
            }
        }
    }

    /// Reads one record if one comes within `wait`: true if one did.
    pub(crate) fn poll(&mut self, wait: Duration) -> bool {
        {
            let Some(message) = self.consumer.poll(wait) else {
                return false;
            };
            let m = match message {
                Ok(m) => m,
                // (the broker gone for a while: kafka_faults.rs)
                Err(rdkafka::error::KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::AllBrokersDown
                    | rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
                )) => return false,
                Err(e) => panic!("a record: {e}"),
            };
            let interval = m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == cepheid_kafka::CHECKPOINT_HEADER)
                    .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok())
            });
            // (once per record, in constant time: the crash tests read
            // hundreds of thousands while they wait for their aims)
            let last = (self.last)
                .entry((m.topic().to_string(), m.partition()))
                .or_insert(-1);
            assert!(
                m.offset() > *last,
                "the harness read {:?} twice",
                (m.topic(), m.partition(), m.offset())
            );
            *last = m.offset();
            self.seen.push(Out {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().unwrap_or_default().to_vec(),
                payload: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                interval,
            });
        }
        true
    }

    /// The records read since the last instance's were taken.
    pub(crate) fn untaken(&self) -> &[Out] {
        &self.seen[self.taken..]
    }
}

impl Reader {
    /// What an instance with transactional id `id` left once it ended:
    /// its open transaction ended ([`fence_and_read_marker`]), the last
    /// committed checkpoint M (returned), every record it wrote read; of
    /// those, the records of intervals up to M go to `committed`, the
    /// others (aborted) are counted in `aborted`.
    pub(crate) fn take_committed(
        &mut self,
        bootstrap: &str,
        id: &str,
        marker: &str,
        committed: &mut Vec<Out>,
        aborted: &mut usize,
    ) -> Option<u64> {
        let m = fence_and_read_marker(bootstrap, id, marker);
        self.read_to_end();
        let mine = &self.seen[self.taken..];
        self.taken = self.seen.len();
        assert!(
            mine.iter().all(|o| o.interval.is_some()),
            "every record has its interval"
        );
        for o in mine {
            match (o.interval, m) {
                (Some(i), Some(m)) if i <= m => committed.push(o.clone()),
                _ => *aborted += 1,
            }
        }
        m
    }
}

/// What a dead instance with transactional id `id` left: its open
/// transaction ended by a new producer's `init_transactions` (as the next
/// instance's would), then the marker's committed offset in the group
/// `id`: the last committed checkpoint.
fn fence_and_read_marker(bootstrap: &str, id: &str, marker: &str) -> Option<u64> {
    let producer: BaseProducer = client(bootstrap)
        .set("transactional.id", id)
        .create()
        .expect("a producer");
    producer.init_transactions(T).expect("init_transactions");
    drop(producer);
    committed_offset(bootstrap, id, marker).map(|n| u64::try_from(n).expect("a checkpoint number"))
}

/// The committed offset of partition 0 of `topic` in the group `id`.
pub(crate) fn committed_offset(bootstrap: &str, id: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", id)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let committed = consumer.committed_offsets(tpl, T).expect("committed");
    match committed.elements().first().map(|e| e.offset()) {
        Some(Offset::Offset(n)) => Some(n),
        _ => None,
    }
}

/// Output records grouped by their partition key (the `key` of the JSON
/// record), each key's in order: the file run's lines in file order, a
/// topic's records in offset order (a key's records are in one partition).
pub(crate) fn by_key<'a>(records: impl Iterator<Item = &'a str>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        let value: serde_json::Value = serde_json::from_str(r).expect("a JSON record");
        map.entry(value["key"].to_string())
            .or_default()
            .push(r.to_string());
    }
    map
}

pub(crate) fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// A test's topics: the input, the records', the late events' and the
/// checkpoint marker's.
pub(crate) struct Topics {
    pub(crate) input: String,
    pub(crate) output: String,
    pub(crate) late: String,
    pub(crate) marker: String,
}

/// The topics of test `name`, created: the input with `in_partitions`,
/// the records' with `out_partitions`, the others with one.
pub(crate) fn topics_with(
    broker: &Broker,
    name: &str,
    in_partitions: i32,
    out_partitions: i32,
) -> Topics {
    let t = Topics {
        input: topic(&format!("{name}-in")),
        output: topic(&format!("{name}-out")),
        late: topic(&format!("{name}-late")),
        marker: topic(&format!("{name}-marker")),
    };
    broker.create_topic(&t.input, in_partitions);
    broker.create_topic(&t.output, out_partitions);
    broker.create_topic(&t.late, 1);
    broker.create_topic(&t.marker, 1);
    t
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The partition of an event of the crash test's stream among 3: by its
/// key (`order` or `user`), so that each key is in one partition; a line
/// without one (malformed) in partition 0.
pub(crate) fn partition_of(line: &str) -> i32 {
    partition_among(line, 3)
}

/// The same among `partitions`.
pub(crate) fn partition_among(line: &str, partitions: u32) -> i32 {
    let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let key = value["order"]
        .as_str()
        .or(value["user"].as_str())
        .unwrap_or("");
    let h = key
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    i32::try_from(h % partitions).expect("small")
}

/// Produces `lines` to the 3 partitions of `topic`, each line to the
/// partition of its key, in order within each.
pub(crate) fn produce_by_key(bootstrap: &str, topic: &str, lines: &[String]) {
    for p in 0..3 {
        let part: Vec<String> = lines
            .iter()
            .filter(|l| partition_of(l) == p)
            .cloned()
            .collect();
        if !part.is_empty() {
            produce_lines_to(bootstrap, topic, p, &part);
        }
    }
}

/// Checks the outputs of a run over `events` whose late events differ
/// from the file run's (they depend on how partitions were fetched)
/// against what it said on standard error (`said`): `late`, its late
/// events, are those its summary counts, each an input event, none
/// twice; and the file run of the input without them (none late there)
/// gives each key exactly `got`'s records, in order, with the same
/// matches, timeouts and malformed lines, and as many events read but
/// the late ones.
pub(crate) fn assert_exact(
    dir: &Path,
    events: &[String],
    late: &[String],
    got: &[String],
    said: &str,
) {
    let summary = crash::summary(said);
    assert!(summary.contains("events read"), "{said}");
    assert_eq!(late.len() as u64, count(&summary, "late"), "{said}");
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for event in events {
        *left.entry(event.as_str()).or_default() += 1;
    }
    for event in late {
        let n = left
            .get_mut(event.as_str())
            .filter(|n| **n > 0)
            .unwrap_or_else(|| panic!("late {event}: not an input event, or late twice"));
        *n -= 1;
    }

    // The file run of the input without the late events.
    let mut late_left: BTreeMap<&str, usize> = BTreeMap::new();
    for event in late {
        *late_left.entry(event.as_str()).or_default() += 1;
    }
    let kept: Vec<&str> = events
        .iter()
        .filter(|event| match late_left.get_mut(event.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .map(String::as_str)
        .collect();
    fs::write(dir.join("kept.jsonl"), kept.join("\n") + "\n").unwrap();
    let file = cepheid()
        .current_dir(dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "5s"])
        .args(["--events", "kept.jsonl"])
        .args(["--output", "file-out.jsonl", "--late", "file-late.jsonl"])
        .output()
        .expect("runs");
    assert!(file.status.success(), "{}", stderr(&file));
    let file_summary = crash::summary(&stderr(&file));
    assert_eq!(count(&file_summary, "late"), 0, "{file_summary}");
    for word in ["matches", "timeouts", "malformed"] {
        assert_eq!(
            count(&summary, word),
            count(&file_summary, word),
            "{word}: {summary} / {file_summary}"
        );
    }
    assert_eq!(
        count(&summary, "events"),
        count(&file_summary, "events") + late.len() as u64,
        "{summary} / {file_summary}"
    );
    let want = lines(&dir.join("file-out.jsonl"));
    assert_eq!(got.len(), want.len(), "{summary} / {file_summary}");
    let (got, want) = (
        by_key(got.iter().map(String::as_str)),
        by_key(want.iter().map(String::as_str)),
    );
    assert_eq!(got.len(), want.len());
    for (key, records) in &want {
        assert_eq!(got.get(key), Some(records), "the records of key {key}");
    }
}

/// The number before `word` in the summary line (`..., 12 late, ...`).
pub(crate) fn count(summary: &str, word: &str) -> u64 {
    let words: Vec<&str> = summary
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .collect();
    let at = words
        .iter()
        .position(|w| *w == word)
        .unwrap_or_else(|| panic!("no `{word}` in {summary:?}"));
    words[at - 1]
        .parse()
        .unwrap_or_else(|_| panic!("no number before `{word}` in {summary:?}"))
}

/// The complete cuts in `dir/ckpt`.
pub(crate) fn complete_cuts(dir: &Path) -> BTreeSet<String> {
    let kept = cepheid_runtime::checkpoint::store::complete(&dir.join("ckpt"));
    let kept = kept.unwrap_or_default().into_iter();
    kept.map(|n| format!("cut-{n}")).collect()
}

/// Produces `records` (value, timestamp in ms) to partition 0 of `topic`,
/// one at a time, in order.
pub(crate) fn produce_timed(bootstrap: &str, topic: &str, records: &[(String, i64)]) {
    let producer: BaseProducer = client(bootstrap).create().expect("a producer");
    for (value, ts) in records {
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(value)
                    .timestamp(*ts),
            )
            .map_err(|(e, _)| e)
            .expect("queued");
        producer.flush(T).expect("delivered");
    }
}

/// The event of a late record (`{"kind":"late","event":RAW}`).
pub(crate) fn late_event(record: &str) -> String {
    record
        .strip_prefix("{\"kind\":\"late\",\"event\":")
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a late record: {record}"))
        .to_string()
}

/// `topic` as a `read_committed` consumer sees it (nothing aborted): its
/// records by key, after checking that each record's Kafka key is its
/// partition key and that a key's records are in one partition.
pub fn read_by_key(broker: &Broker, topic: &str) -> BTreeMap<String, Vec<String>> {
    let seen = broker.read_topic(topic, "read_committed");
    let mut partition_of: BTreeMap<String, i32> = BTreeMap::new();
    for s in &seen {
        let value: serde_json::Value = serde_json::from_str(&s.payload).expect("JSON");
        let key: serde_json::Value =
            serde_json::from_str(s.key.as_deref().expect("a key")).expect("a JSON key");
        assert_eq!(
            key, value["key"],
            "the record's Kafka key is its partition key"
        );
        let p = *partition_of.entry(key.to_string()).or_insert(s.partition);
        assert_eq!(
            p, s.partition,
            "a key's records in one partition of {topic}"
        );
    }
    by_key(seen.iter().map(|s| s.payload.as_str()))
}

/// Keeps a crash test's input ahead of its runs, whatever the machine's
/// speed: while the kills go on, the next slice of the same stream is
/// produced (to partition 0) whenever the offset the runs committed comes
/// within `ahead` records of the topic's end (a kill schedule that
/// depended on the input lasting landed 8 kills of 10 beside `stress-ng`).
pub(crate) struct Feeder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Feeder {
    /// Events in all at the most (a hang guard's bound, not a schedule).
    const MOST: usize = 1_000_000;

    /// Feeds partition 0 of `input`, which holds `events` (the first
    /// `generated` of a stream, and maybe records of other kinds), as the
    /// group `id` commits its offsets: whenever they come within `ahead`
    /// records of the end, the next slice of the stream, `next(generated)`
    /// (the stream's events from the `generated`th on, as many as it
    /// gives).
    pub(crate) fn start(
        bootstrap: &str,
        input: &str,
        id: &str,
        mut events: Vec<String>,
        mut generated: usize,
        ahead: i64,
        mut next: impl FnMut(usize) -> Vec<String> + Send + 'static,
    ) -> Feeder {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (bootstrap, input, id) = (bootstrap.to_string(), input.to_string(), id.to_string());
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) && generated < Feeder::MOST {
                let at = committed_offset(&bootstrap, &id, &input).unwrap_or(0);
                if at + ahead >= events.len() as i64 {
                    let slice = next(generated);
                    assert!(!slice.is_empty(), "the stream goes on");
                    produce_lines_to(&bootstrap, &input, 0, &slice);
                    generated += slice.len();
                    events.extend(slice);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            events
        });
        Feeder { stop, thread }
    }

    /// Stops feeding: every event produced, in order.
    pub(crate) fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the feeder")
    }
}
