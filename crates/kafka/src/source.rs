//! The Kafka source: explicit partition assignment (no consumer group
//! rebalancing), the offsets kept by the caller's checkpoints
//! ([`KafkaSource::position`], [`KafkaSource::seek`]), records handed out
//! as bytes with where they came from.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use cepheid_runtime::{Level, Notify};

use crate::batch::Batches;
use crate::error::{retriable, KafkaError};
use crate::fit::{misfits, Misfit, Mismatch, OnMismatch};
use crate::options::PartitionOffsets;
use crate::position::{Held, KafkaPosition, Mark};
use crate::reach::{Reach, PROBE, RECONNECT_MAX_MS};
use crate::retry::Retry;
use crate::watch::TopicWatch;

/// Which partitions the source reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partitions {
    /// Every partition of every topic.
    All,
    /// These (topic, partition) pairs only (a worker's share).
    Only(Vec<(String, i32)>),
}

/// Where the source starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// At each partition's first record.
    Earliest,
    /// After each partition's last record (only what comes next).
    Latest,
    /// At each partition's first record with a timestamp at or after this
    /// one (milliseconds since the epoch; `offsets_for_times`), else at
    /// its end.
    Timestamp(i64),
    /// At these offsets (a checkpoint's); a partition it does not name
    /// starts at its first record. Each offset is checked against its
    /// partition as it is now ([`SourceConfig::on_mismatch`]).
    Position(KafkaPosition),
    /// At these offsets (a caller's: `--kafka-start 0:1200`); a partition
    /// they do not name starts at its first record. An offset outside its
    /// partition's records (before the first kept, after the end) is
    /// refused ([`KafkaError::Config`]).
    Offsets(PartitionOffsets),
}

/// Where a bounded source ends: it hands out no record at or after it,
/// and ends ([`KafkaSource::at_end`]) once every partition is read to
/// it. Each partition's end is fixed when the source starts, as offsets,
/// so two runs of one range read the same records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Until {
    /// Each partition's end offset as the broker gives it when the source
    /// starts (its high watermark).
    End,
    /// Before each partition's first record with a timestamp at or after
    /// this one (milliseconds since the epoch; `offsets_for_times`), else
    /// at its end: a range of offsets, so a record after that one with an
    /// earlier timestamp is not read.
    Timestamp(i64),
    /// Before these offsets; a partition they do not name ends at its end
    /// when the source starts. An offset before the partition's start or
    /// beyond its end is refused ([`KafkaError::Config`]).
    Offsets(PartitionOffsets),
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Until::End => f.write_str("end"),
            Until::Timestamp(ms) => write!(f, "{ms}"),
            Until::Offsets(offsets) => write!(f, "{offsets}"),
        }
    }
}

/// The configuration of a [`KafkaSource`].
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// `bootstrap.servers`: `host:port[,host:port...]`.
    pub brokers: String,
    /// The topics, one or more.
    pub topics: Vec<String>,
    /// The partitions read.
    pub partitions: Partitions,
    /// Where to start.
    pub start: StartAt,
    /// The `group.id` the consumer identifies with (no offsets are
    /// committed by the source: its position is in the checkpoint).
    pub group_id: String,
    /// `isolation.level=read_committed` (the default): records of open or
    /// aborted transactions are not read.
    pub read_committed: bool,
    /// At most this many records per [`KafkaSource::read`].
    pub max_batch: usize,
    /// How long a broker that does not answer is waited for.
    pub retry: Retry,
    /// Further librdkafka properties (`key`, `value`), set last.
    pub properties: Vec<(String, String)>,
    /// Bounded: read up to this place in each partition (fixed as offsets
    /// when the source starts), then end ([`KafkaSource::at_end`]);
    /// records at or after it are not handed out. `None`: never ends.
    pub until: Option<Until>,
    /// A topic of rule sets beside the events (the broadcast-state
    /// pattern; one partition): each record a `{"$rules": ...}` or
    /// `{"$rules_file": ...}` record, handed out by
    /// [`KafkaSource::read_rules`]. Read from its first record, up to its
    /// end, when the source starts (unless `start` is a position, which
    /// then names its offset too).
    pub rules_topic: Option<String>,
    /// Reference lists fed by topics of their own (`(list, topic)`; each
    /// partition of a topic read as a topic of control records of its
    /// own, with a split and an offset of its own): a compacted topic
    /// whose record's key is an entry
    /// of the list, its value empty or `{"expires": T}` to add it, null (a
    /// tombstone) to remove it. Each record is handed out by
    /// [`KafkaSource::read_rules`] with the split after the rules topic's
    /// (after the partitions of events, the rules topic, then these in
    /// order), and [`KafkaSource::list_change`] gives the `$list` record
    /// it means; each applies at its record's time, as a rules record
    /// does. Read from its first record (from a checkpoint's offset on
    /// resuming) up to its end when the source starts, as the rules
    /// topic.
    pub list_topics: Vec<(String, String)>,
    /// What to do with a kept offset (of [`StartAt::Position`], or
    /// [`KafkaSource::seek`]) that does not fit its partition as it is
    /// now: beyond its end, before its start, or after a record that is
    /// not the one read there (`crate::Mismatch`); also with an offset
    /// that goes out of range while the source reads.
    pub on_mismatch: OnMismatch,
}

impl SourceConfig {
    /// All partitions of `topics` on `brokers` from the earliest record,
    /// read committed, group `cepheid`.
    pub fn new(brokers: impl Into<String>, topics: &[&str]) -> SourceConfig {
        SourceConfig {
            brokers: brokers.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            partitions: Partitions::All,
            start: StartAt::Earliest,
            group_id: "cepheid".to_string(),
            read_committed: true,
            max_batch: 1024,
            retry: Retry::default(),
            properties: Vec::new(),
            until: None,
            rules_topic: None,
            list_topics: Vec::new(),
            on_mismatch: OnMismatch::Refuse,
        }
    }
}

/// One record as the broker keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaRecord {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The index of its (topic, partition) in [`KafkaSource::splits`]:
    /// the split whose watermark it moves.
    pub split: usize,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value; `None` for a tombstone (a record without a value),
    /// which is handed out too, for the caller to report.
    pub payload: Option<Vec<u8>>,
    /// The Kafka timestamp (create or log-append time), milliseconds.
    pub timestamp: Option<i64>,
}

/// One record as the consumer holds it, lent to the callback of
/// [`KafkaSource::read_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The index of its (topic, partition) in [`KafkaSource::splits`].
    pub split: usize,
    /// Its key, if any.
    pub key: Option<&'a [u8]>,
    /// Its value; `None` for a tombstone.
    pub payload: Option<&'a [u8]>,
    /// The Kafka timestamp, milliseconds.
    pub timestamp: Option<i64>,
}

impl RecordRef<'_> {
    /// The record, copied.
    pub fn to_owned(&self) -> KafkaRecord {
        KafkaRecord {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
            split: self.split,
            key: self.key.map(<[u8]>::to_vec),
            payload: self.payload.map(<[u8]>::to_vec),
            timestamp: self.timestamp,
        }
    }
}

impl KafkaRecord {
    /// True for a record without a value.
    pub fn is_tombstone(&self) -> bool {
        self.payload.is_none()
    }
}

/// A topic of control records of a [`KafkaSource`]: its rules topic, or
/// a list's topic.
struct ControlTopic {
    /// The list it feeds (`None`: the rules topic).
    list: Option<String>,
    /// Its partition (a list's topic may have several, each read as a
    /// topic of control records of its own), and whether the topic has
    /// others (said in messages).
    partition: i32,
    of_several: bool,
    /// Where it was last started ([`ControlTopic::start_at`]), until what
    /// it read then is handed out ([`ControlTopic::read_to_end`]).
    started_at: Option<i64>,
    consumer: BaseConsumer,
    /// Its configuration, and whether it was assigned ([`assign_once`]).
    config: ClientConfig,
    assigned: bool,
    topic: String,
    /// Records read and not handed out yet: the topic up to its end when
    /// the source started or sought.
    backlog: VecDeque<KafkaRecord>,
    /// The offset after the last record the consumer gave.
    read: i64,
    /// Bounded: the topic's end offset when the source started.
    end: Option<i64>,
    /// An end offset that was waited for without coming (markers).
    waited_for: i64,
    retry: Retry,
    /// The marks of the last records handed out (at most
    /// [`ControlTopic::MARKS`]), the latest last: a kept offset goes with the
    /// mark of the record before it, by which a resume tells that the
    /// topic is still the one it was read from.
    handed: VecDeque<Mark>,
    /// The records from where it was sought that the run it resumes had
    /// read and held for event time ([`Held`]): handed out judged so.
    held: Option<Held>,
}

impl ControlTopic {
    /// Marks kept of the records handed out: a kept offset is the first
    /// record not applied yet, at most this many records back (beyond it,
    /// the offset is kept without its mark and checked against the
    /// topic's range alone).
    const MARKS: usize = 1024;

    /// The offset of the next record to hand out.
    fn next(&self) -> i64 {
        self.backlog.front().map_or(self.read, |r| r.offset)
    }

    /// `offset` of the topic in `at`, with the mark of the record before
    /// it when that one was handed out.
    fn put(&self, at: &mut KafkaPosition, offset: i64) {
        match self.handed.iter().rev().find(|m| m.offset == offset - 1) {
            Some(mark) => at.set_after(&self.topic, self.partition, *mark),
            None => at.set(&self.topic, self.partition, offset),
        }
    }

    /// `records` were handed out: their marks are kept.
    fn handed_out(&mut self, records: &[KafkaRecord]) {
        for r in records {
            let mark = Mark::of(
                r.offset,
                r.timestamp,
                r.key.as_deref(),
                r.payload.as_deref(),
            );
            self.handed.push_back(mark);
        }
        let over = self.handed.len().saturating_sub(ControlTopic::MARKS);
        self.handed.drain(..over);
    }

    /// Has the consumer read up to `target`: its last record, or else
    /// librdkafka's position, which moves past transaction markers (a
    /// topic written with transactions ends with one)?
    fn reached(&self, target: i64) -> bool {
        self.read >= target
            || self.consumer.position().is_ok_and(|positions| {
                positions
                    .find_partition(&self.topic, self.partition)
                    .is_some_and(|e| matches!(e.offset(), Offset::Offset(at) if at >= target))
            })
    }

    /// Reads from `offset` on: first up to the topic's end as the broker
    /// gives it now (into the backlog), so that what the topic holds is
    /// known before any event.
    fn start_at(&mut self, offset: i64) -> Result<(), KafkaError> {
        self.started_at = Some(offset);
        self.backlog.clear();
        self.handed.clear();
        self.held = None;
        self.read = offset;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(offset))
            .map_err(client("assign"))?;
        assign_once(&mut self.consumer, &mut self.assigned, &self.config, &tpl)?;
        let (_, high) = self.retry.run(
            "fetch watermarks",
            |left| {
                self.consumer
                    .fetch_watermarks(&self.topic, self.partition, left)
            },
            client("fetch watermarks"),
        )?;
        let high = self.end.map_or(high, |end| end.min(high));
        let started = Instant::now();
        let mut quiet = Instant::now();
        while !self.reached(high) && quiet.elapsed() < RULES_QUIET {
            if started.elapsed() >= self.retry.limit {
                return Err(KafkaError::Config {
                    reason: format!(
                        "{} could not be read to its end (offset {high}) in {:.1} s",
                        self.what(),
                        started.elapsed().as_secs_f64()
                    ),
                });
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    quiet = Instant::now();
                    if message.partition() == self.partition && message.offset() >= self.read {
                        self.read = message.offset() + 1;
                        self.backlog.push_back(record_of(&message, usize::MAX));
                    }
                }
                Some(Err(error)) => self.on_error(error)?,
            }
        }
        Ok(())
    }

    fn on_error(&self, error: ClientError) -> Result<(), KafkaError> {
        match crate::error::code_of(&error) {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                Err(KafkaError::UnknownTopic {
                    topic: self.topic.clone(),
                })
            }
            // (the events' reads tell a broker gone for too long)
            _ if retriable(&error) => Ok(()),
            _ => Err(KafkaError::client(
                match self.list {
                    None => "read the rules topic",
                    Some(_) => "read a list's topic",
                },
                error,
            )),
        }
    }

    /// A list's topic read up to its end at the start (or at a seek): what
    /// it holds, said when it is handed out, so that the events before its
    /// records' times are known to see the list as it was then.
    fn read_to_end(&self) -> Option<String> {
        let list = self.list.as_ref()?;
        let from = self.started_at?;
        let times = self.backlog.iter().filter_map(|r| r.timestamp);
        let (first, last) = times.fold((None, None), |(a, b): (Option<i64>, Option<i64>), t| {
            (
                Some(a.map_or(t, |a| a.min(t))),
                Some(b.map_or(t, |b| b.max(t))),
            )
        });
        let times = match first.zip(last) {
            Some((a, b)) => format!(
                ", of times {} to {}: each applies at its time, events before it see the list without it",
                cepheid_decode::format_rfc3339(a),
                cepheid_decode::format_rfc3339(b)
            ),
            None => String::new(),
        };
        Some(format!(
            "cepheid: list `{list}`: {} records of kafka:{}{} read from offset {from} to its end (offset {}) before the first event{times}",
            self.backlog.len(),
            self.topic,
            self.of_partition(),
            self.read,
        ))
    }

    /// ` partition 2` when its topic has several, else nothing.
    fn of_partition(&self) -> String {
        match self.of_several {
            true => format!(" partition {}", self.partition),
            false => String::new(),
        }
    }

    /// What it is, in messages: `the rules topic "rules"`, `the topic
    /// "blocked" of list `blocked_ips``.
    fn what(&self) -> String {
        match &self.list {
            None => format!("the rules topic {:?}", self.topic),
            Some(list) => format!(
                "the topic {:?}{} of list `{list}`",
                self.topic,
                self.of_partition()
            ),
        }
    }
}

/// What one [`KafkaSource::read`] did. A Kafka source does not end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// This many records were appended (as many as a batch takes: more
    /// may be ready).
    Delivered(usize),
    /// This many records were appended, and the consumer had no further
    /// one ready: all that was written so far is read.
    CaughtUp(usize),
    /// Nothing came within the wait.
    Idle,
}

/// How far one partition of a [`KafkaSource`] is behind its end
/// ([`KafkaSource::lag`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Records behind the partition's end: its end offset (the last
    /// stable offset when reading committed records, else the high
    /// watermark) less the consumer's position.
    pub records: u64,
}

/// How often librdkafka gives the source its statistics
/// (`statistics.interval.ms`), from which [`KafkaSource::lag`] is read.
const STATISTICS_MS: &str = "1000";

/// The consumer's context: keeps what librdkafka's statistics (every
/// [`STATISTICS_MS`], handed over by `poll` on the source's own thread)
/// last said of each partition's offsets. No request of its own: the
/// statistics report what the fetches already learnt.
#[derive(Default)]
struct Offsets {
    seen: Mutex<HashMap<(String, i32), Ends>>,
}

/// One partition's offsets, as the client last knew them (`-1001`, or
/// any negative value: not known yet).
#[derive(Clone, Copy, Debug)]
struct Ends {
    /// The high watermark: the offset after the partition's last record.
    high: i64,
    /// The last stable offset: the first of an open transaction, or the
    /// high watermark (what a `read_committed` consumer can read up to).
    stable: i64,
    /// The consumer's position: after the last record given to the
    /// application, or past the transaction markers after it.
    app: i64,
}

impl ClientContext for Offsets {
    fn stats(&self, statistics: Statistics) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // (partition -1: librdkafka's internal unassigned one)
                if partition >= 0 {
                    let ends = Ends {
                        high: p.hi_offset,
                        stable: p.ls_offset,
                        app: p.app_offset,
                    };
                    seen.insert((topic.clone(), partition), ends);
                }
            }
        }
    }
}

impl ConsumerContext for Offsets {}

impl Offsets {
    fn get(&self, topic: &str, partition: i32) -> Option<Ends> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(&(topic.to_string(), partition)).copied()
    }

    /// Forgets what was seen (after a seek: the positions were others).
    fn clear(&self) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// `fetch.wait.max.ms` of the source's consumers unless the caller's
/// properties set it: how long a broker may hold a fetch that finds no
/// record. A Kafka broker answers as soon as records come, so this only
/// sets how often an idle consumer asks again (10 times a second); a
/// broker that looks again only after a sleep instead (tansu 0.6, the
/// test broker) holds each record that long at most. librdkafka's 500 ms
/// made tansu hold records up to 250 ms, on each of a pipeline's hops
/// (BENCHMARKS.md, "Delay from produce to committed alert").
pub(crate) const FETCH_WAIT_MAX_MS: &str = "100";

/// The librdkafka configuration of the source's consumers (the events'
/// and the rules topic's): cepheid's settings, then the caller's
/// properties, which override them.
fn consumer_config(config: &SourceConfig) -> ClientConfig {
    let mut client_config = ClientConfig::new();
    client_config
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        // A broker back after an outage is reconnected to within 1 s
        // (librdkafka's default backoff grows to 10 s: a run went on
        // waiting that long after the broker had come back).
        .set("reconnect.backoff.max.ms", RECONNECT_MAX_MS)
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
        .set(
            "isolation.level",
            if config.read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        );
    for (k, v) in &config.properties {
        client_config.set(k, v);
    }
    client_config
}

/// Assigns `tpl` to `consumer`, a new one made from `config` if it was
/// `assigned` before. librdkafka 2.12.1 aborts the process when a
/// consumer's assignment is taken away twice before its fetchers have
/// stopped: replaced, then replaced again or closed, within the round trip
/// of their stop (`rd_kafka_assignment_partition_stopped: Assertion
/// rktp->rktp_started failed`, SIGABRT; librdkafka issue #5573, fixed
/// after 2.15.0). A source that was sought after its start and ended at
/// once did that (issue 39, finding E). So each consumer is assigned once,
/// and closed with that one assignment; a new position goes to a new
/// consumer (the old one closed first).
fn assign_once<C: ConsumerContext + Default>(
    consumer: &mut BaseConsumer<C>,
    assigned: &mut bool,
    config: &ClientConfig,
    tpl: &TopicPartitionList,
) -> Result<(), KafkaError> {
    if *assigned {
        *consumer = (config.create_with_context(C::default()))
            .map_err(|e| KafkaError::client("create the consumer", e))?;
    }
    consumer.assign(tpl).map_err(client("assign"))?;
    *assigned = true;
    Ok(())
}

/// Reads assigned partitions of one or more topics.
pub struct KafkaSource {
    /// Where the consumer's partitions forward their records, read in
    /// batches (`None` before an assignment, or when librdkafka did not
    /// know a partition then: one poll per record). Declared before the
    /// consumer: dropped first.
    batches: Option<Batches>,
    consumer: BaseConsumer<Offsets>,
    /// Its configuration, and whether it was assigned ([`assign_once`]).
    events_config: ClientConfig,
    assigned: bool,
    /// The position is to be assigned at the next read.
    to_assign: bool,
    /// Reading committed records only (the end is the last stable offset).
    read_committed: bool,
    topics: Vec<String>,
    splits: Vec<(String, i32)>,
    index: SplitIndex,
    position: KafkaPosition,
    max_batch: usize,
    retry: Retry,
    /// Since when the broker has seemed unreachable.
    down_since: Option<(Instant, ClientError)>,
    /// Whether the brokers answer, shared with the run's sink (said on
    /// the run's report).
    reach: Arc<Reach>,
    /// Bounded: each partition's end offset at the start.
    end: Option<KafkaPosition>,
    /// The topics of control records: the rules topic, if any, first,
    /// then the lists' topics ([`SourceConfig::list_topics`]), in order;
    /// the split of the `i`th is the number of partitions of events + `i`.
    controls: Vec<ControlTopic>,
    /// A client of its own that asks the control topics' ends
    /// ([`KafkaSource::read_rules`]), on a connection that fetches
    /// nothing: asked on the consumer's own, the request waited behind
    /// its fetch, which a broker may hold `fetch.wait.max.ms` (about
    /// 100 ms per read of a run on workers against the test broker).
    /// `None` without control topics.
    ends: Option<BaseConsumer>,
    /// The topics read (the rules topic's too), described now and then:
    /// one deleted or created again ends the reads.
    watch: TopicWatch,
    /// The configuration of a consumer of its own that reads the records
    /// before kept offsets ([`crate::fit`]).
    probe_config: ClientConfig,
    on_mismatch: OnMismatch,
    /// Its offsets are kept ones (a checkpoint's), not a first start's.
    kept: bool,
    /// Partitions started again because their offsets did not fit.
    restarted: u64,
    /// Where to say what it did; what it said before it was given.
    notify: Option<Notify>,
    unsaid: Vec<(Level, String)>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("splits", &self.splits)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

fn client(operation: &'static str) -> impl Fn(ClientError) -> KafkaError {
    move |e| KafkaError::client(operation, e)
}

/// What resolves a start and an end to offsets: the topics read, the
/// partitions read (`splits`), every partition of the topics (`known`).
struct Places<'a> {
    consumer: &'a BaseConsumer<Offsets>,
    topics: &'a [String],
    splits: &'a [(String, i32)],
    known: &'a [(String, i32)],
    retry: Retry,
}

impl Places<'_> {
    /// A partition's first offset kept and its end (high watermark).
    fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), KafkaError> {
        self.retry.run(
            "fetch watermarks",
            |left| self.consumer.fetch_watermarks(topic, partition, left),
            client("fetch watermarks"),
        )
    }

    /// Per partition read, the offset of its first record with a
    /// timestamp at or after `ts`, or its end when none.
    fn first_at(&self, ts: i64) -> Result<Vec<i64>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in self.splits {
            tpl.add_partition_offset(t, *p, Offset::Offset(ts))
                .map_err(client("offsets_for_times"))?;
        }
        let found = self.retry.run(
            "offsets_for_times",
            |left| self.consumer.offsets_for_times(tpl.clone(), left),
            client("offsets_for_times"),
        )?;
        let mut offsets = Vec::with_capacity(self.splits.len());
        for (t, p) in self.splits {
            match found.find_partition(t, *p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => offsets.push(o),
                _ => offsets.push(self.watermarks(t, *p)?.1),
            }
        }
        Ok(offsets)
    }

    /// The offsets a caller named, per partition read (`what`: which
    /// setting, for messages); each must name a partition of the topics,
    /// and name its topic when there are several.
    fn named(
        &self,
        offsets: &PartitionOffsets,
        what: &str,
    ) -> Result<HashMap<(String, i32), i64>, KafkaError> {
        let mut named = HashMap::new();
        for (topic, partition, offset) in &offsets.0 {
            let topic = match (topic, self.topics) {
                (Some(t), _) => t.clone(),
                (None, [only]) => only.clone(),
                (None, _) => {
                    return Err(KafkaError::Config {
                        reason: format!(
                            "{what} `{partition}:{offset}` names no topic, and the source \
                             reads several: write TOPIC:{partition}:{offset}"
                        ),
                    })
                }
            };
            if !self.topics.contains(&topic) {
                return Err(KafkaError::Config {
                    reason: format!("{what} names topic {topic:?}, which the source does not read"),
                });
            }
            if !self.known.contains(&(topic.clone(), *partition)) {
                return Err(KafkaError::UnknownPartition {
                    topic,
                    partition: *partition,
                });
            }
            named.insert((topic, *partition), *offset);
        }
        Ok(named)
    }

    /// Where each partition read starts.
    fn start(&self, start: &StartAt) -> Result<KafkaPosition, KafkaError> {
        let by_time = match start {
            StartAt::Timestamp(ts) => self.first_at(*ts)?,
            _ => Vec::new(),
        };
        let named = match start {
            StartAt::Offsets(offsets) => self.named(offsets, "the start")?,
            _ => HashMap::new(),
        };
        let mut position = KafkaPosition::new();
        for (i, (t, p)) in self.splits.iter().enumerate() {
            let next = match start {
                StartAt::Earliest => self.watermarks(t, *p)?.0,
                StartAt::Latest => self.watermarks(t, *p)?.1,
                StartAt::Timestamp(_) => by_time[i],
                StartAt::Position(at) => match at.get(t, *p) {
                    Some(o) => o,
                    None => self.watermarks(t, *p)?.0,
                },
                StartAt::Offsets(_) => {
                    let (low, high) = self.watermarks(t, *p)?;
                    match named.get(&(t.clone(), *p)) {
                        Some(&o) if o < low || o > high => {
                            return Err(KafkaError::Config {
                                reason: format!(
                                    "the start offset {o} of {t}/{p} is outside its records, \
                                     offsets {low} to {high} (the end) now"
                                ),
                            })
                        }
                        Some(&o) => o,
                        None => low,
                    }
                }
            };
            position.set(t, *p, next);
        }
        Ok(position)
    }

    /// Where each partition read ends. A range the caller gave
    /// (`ordered`: not a checkpoint's start, not [`Until::End`]) must end
    /// at or after its start (`start`); a resumed run past its end ends
    /// at once.
    fn end(
        &self,
        until: &Until,
        start: &KafkaPosition,
        ordered: bool,
    ) -> Result<KafkaPosition, KafkaError> {
        let by_time = match until {
            Until::Timestamp(ts) => self.first_at(*ts)?,
            _ => Vec::new(),
        };
        let named = match until {
            Until::Offsets(offsets) => self.named(offsets, "the end")?,
            _ => HashMap::new(),
        };
        let mut end = KafkaPosition::new();
        for (i, (t, p)) in self.splits.iter().enumerate() {
            let high = self.watermarks(t, *p)?.1;
            let at = match until {
                Until::End => high,
                Until::Timestamp(_) => by_time[i],
                Until::Offsets(_) => match named.get(&(t.clone(), *p)) {
                    Some(&o) if o > high => {
                        return Err(KafkaError::Config {
                            reason: format!(
                                "the end offset {o} of {t}/{p} is beyond its end, offset \
                                 {high} now"
                            ),
                        })
                    }
                    Some(&o) => o,
                    None => high,
                },
            };
            let from = start.get(t, *p).unwrap_or(0);
            if ordered && at < from {
                return Err(KafkaError::Config {
                    reason: format!(
                        "{t}/{p} would end at offset {at}, before its start at offset {from}"
                    ),
                });
            }
            end.set(t, *p, at);
        }
        Ok(end)
    }
}

impl KafkaSource {
    /// Connects, checks that the topics and partitions exist, resolves
    /// the start to offsets and assigns them.
    pub fn new(config: SourceConfig) -> Result<KafkaSource, KafkaError> {
        if config.topics.is_empty() {
            return Err(KafkaError::Config {
                reason: "a Kafka source needs at least one topic".to_string(),
            });
        }
        let client_config = consumer_config(&config);
        // The consumer's statistics, for its lag (unless the caller's
        // properties set them: 0 turns them off).
        let mut events_config = client_config.clone();
        if !config
            .properties
            .iter()
            .any(|(k, _)| k == "statistics.interval.ms")
        {
            events_config.set("statistics.interval.ms", STATISTICS_MS);
        }
        // An offset out of range is the source's to see (an error, not
        // librdkafka's silent jump: `OnMismatch`); every partition is
        // assigned an offset of its own, a first start's too.
        if !config
            .properties
            .iter()
            .any(|(k, _)| k == "auto.offset.reset")
        {
            events_config.set("auto.offset.reset", "error");
        }
        let consumer: BaseConsumer<Offsets> = events_config
            .create_with_context(Offsets::default())
            .map_err(|e| KafkaError::client("create the consumer", e))?;
        let retry = config.retry;
        let control_topics = control_topics(&config)?;

        // The partitions of each topic, from the broker's metadata.
        let mut splits = Vec::new();
        let mut known = Vec::new();
        for topic in &config.topics {
            let metadata = retry.run(
                "fetch metadata",
                |t| consumer.fetch_metadata(Some(topic), t),
                client("fetch metadata"),
            )?;
            let found = metadata.topics().iter().find(|m| m.name() == topic);
            let partitions = match found {
                Some(m) if m.error().is_none() && !m.partitions().is_empty() => {
                    m.partitions().iter().map(|p| p.id()).collect::<Vec<_>>()
                }
                _ => {
                    return Err(KafkaError::UnknownTopic {
                        topic: topic.clone(),
                    })
                }
            };
            known.extend(partitions.iter().map(|p| (topic.clone(), *p)));
            match &config.partitions {
                Partitions::All => {
                    let mut partitions = partitions;
                    partitions.sort_unstable();
                    splits.extend(partitions.into_iter().map(|p| (topic.clone(), p)));
                }
                Partitions::Only(only) => {
                    for (t, p) in only.iter().filter(|(t, _)| t == topic) {
                        if !partitions.contains(p) {
                            return Err(KafkaError::UnknownPartition {
                                topic: t.clone(),
                                partition: *p,
                            });
                        }
                        splits.push((t.clone(), *p));
                    }
                }
            }
        }
        if let Partitions::Only(only) = &config.partitions {
            if let Some((t, _)) = only.iter().find(|(t, _)| !config.topics.contains(t)) {
                return Err(KafkaError::Config {
                    reason: format!("partition of topic {t:?}, which the source does not read"),
                });
            }
        }

        // The start and the end, as offsets.
        let places = Places {
            consumer: &consumer,
            topics: &config.topics,
            splits: &splits,
            known: &known,
            retry,
        };
        let position = places.start(&config.start)?;
        let end = match &config.until {
            Some(until) => {
                let resumed = matches!(config.start, StartAt::Position(_));
                let ordered = !resumed && *until != Until::End;
                Some(places.end(until, &position, ordered)?)
            }
            None => None,
        };
        let index = SplitIndex::new(&splits);
        let mut controls = Vec::with_capacity(control_topics.len());
        let opened = control_topics.into_iter().map(|(list, topic)| {
            let partitions = control_partitions(&consumer, list.as_deref(), &topic, retry)?;
            let several = partitions.len() > 1;
            let each = partitions
                .into_iter()
                .map(move |p| (list.clone(), topic.clone(), p));
            Ok::<_, KafkaError>(each.map(move |(l, t, p)| (l, t, p, several)))
        });
        let opened = opened.collect::<Result<Vec<_>, _>>()?.into_iter().flatten();
        for (list, topic, partition, several) in opened {
            // A checkpoint's offset that compaction removed since: from
            // the first record kept (librdkafka's default would skip to
            // the end, and with it the rule set in force, or entries).
            let mut control_config = client_config.clone();
            if !config
                .properties
                .iter()
                .any(|(k, _)| k == "auto.offset.reset")
            {
                control_config.set("auto.offset.reset", "earliest");
            }
            let consumer = (control_config.create::<BaseConsumer>())
                .map_err(|e| KafkaError::client("create the consumer", e))?;
            let from = match &config.start {
                StartAt::Position(at) => at.get(&topic, partition),
                _ => None,
            };
            controls.push(ControlTopic::open(
                (consumer, control_config),
                (list, &topic, partition, several),
                from,
                config.until.is_some(),
                retry,
            )?);
        }
        let mut watched = splits.clone();
        watched.extend(controls.iter().map(|c| (c.topic.clone(), c.partition)));
        let watch = TopicWatch::new(consumer.client(), &watched, false);
        let ends = match controls.is_empty() {
            true => None,
            false => Some(
                (client_config.create::<BaseConsumer>())
                    .map_err(|e| KafkaError::client("create the consumer", e))?,
            ),
        };
        let mut source = KafkaSource {
            batches: None,
            consumer,
            events_config,
            assigned: false,
            to_assign: false,
            read_committed: config.read_committed,
            topics: config.topics,
            splits,
            index,
            position,
            max_batch: config.max_batch.max(1),
            retry,
            down_since: None,
            reach: Reach::of(&config.brokers, retry.limit),
            end,
            controls,
            ends,
            watch,
            probe_config: client_config,
            on_mismatch: config.on_mismatch,
            kept: false,
            restarted: 0,
            notify: None,
            unsaid: Vec::new(),
        };
        if let StartAt::Position(at) = &config.start {
            let controls_from = source.fit(at)?;
            for (control, from) in source.controls.iter_mut().zip(controls_from) {
                if let Some(from) = from {
                    if at.get(&control.topic, control.partition) != Some(from) {
                        control.start_at(from)?;
                    }
                    // (read again from the position's offset: the records
                    // held then are judged as then)
                    control.held = (at.held(&control.topic, control.partition))
                        .filter(|_| at.get(&control.topic, control.partition) == Some(from))
                        .cloned();
                }
            }
        }
        source.assign()?;
        Ok(source)
    }

    /// Where to say that the brokers stop answering during the run, and
    /// answer again (once each, not per retry): the run's report
    /// (`cepheid_runtime::Source::notify_to`). Shared with the sinks of
    /// the same brokers in this process.
    pub fn notify_to(&mut self, notify: cepheid_runtime::Notify) {
        for (level, text) in self.unsaid.drain(..) {
            notify.say(level, text);
        }
        self.reach.notify_to(notify.clone());
        self.notify = Some(notify);
    }

    /// Says `text` on the run's report (once it is given one).
    fn say(&mut self, level: Level, text: String) {
        match &self.notify {
            Some(notify) => notify.say(level, text),
            None => self.unsaid.push((level, text)),
        }
    }

    /// Says that the position sought was written before the marks: its
    /// topics' identity is not checked.
    pub(crate) fn say_once_unmarked(&mut self) {
        self.say(
            Level::Info,
            "cepheid: Kafka: the checkpoint's position was written by an older cepheid, without \
             the records' fingerprints: its offsets are checked against each partition's range, \
             not that the topic is the one they were taken on"
                .to_string(),
        );
    }

    /// How many partitions were started again because their offsets did
    /// not fit ([`SourceConfig::on_mismatch`]).
    pub fn restarted(&self) -> u64 {
        self.restarted
    }

    /// Takes the offsets (and marks) of `kept` for the partitions it
    /// names, each checked against its partition as it is now: one that
    /// does not fit is refused or started again
    /// ([`SourceConfig::on_mismatch`]). The rules topic's offset (the
    /// first record not applied yet) is checked as well: one before its
    /// start reads from its first record kept (compaction), said; the
    /// record before it gone with a later one there is compaction too
    /// (nothing to compare); another record at its offset is another
    /// topic under the same name. So are the lists' topics'. Gives, per
    /// topic of control records, the offset to read from (its kept one, or
    /// where it starts again; `None` when `kept` does not name it).
    /// Assigns nothing.
    fn fit(&mut self, kept: &KafkaPosition) -> Result<Vec<Option<i64>>, KafkaError> {
        self.kept = true;
        for (t, p) in &self.splits {
            match (kept.get(t, *p), kept.mark(t, *p)) {
                (Some(_), Some(mark)) => self.position.set_after(t, *p, mark),
                (Some(o), None) => self.position.set(t, *p, o),
                _ => {}
            }
        }
        let mut found = misfits(
            &self.consumer,
            &self.probe_config,
            kept,
            &self.splits,
            self.retry,
        )?;
        let mut controls_from = vec![None; self.controls.len()];
        for (i, from) in controls_from.iter_mut().enumerate() {
            let (topic, partition) = (self.controls[i].topic.clone(), self.controls[i].partition);
            let Some(offset) = kept.get(&topic, partition) else {
                continue;
            };
            *from = Some(offset);
            let mut at = KafkaPosition::new();
            match kept.mark(&topic, partition) {
                Some(mark) => at.set_after(&topic, partition, mark),
                None => at.set(&topic, partition, offset),
            }
            let only = [(topic.clone(), partition)];
            for m in misfits(&self.consumer, &self.probe_config, &at, &only, self.retry)? {
                match m.mismatch {
                    // (the record before the offset gone, a later one
                    // there: compaction, nothing to compare)
                    Mismatch::OtherRecord { kept, found }
                        if found.is_none_or(|f| f.offset != kept.offset) => {}
                    Mismatch::BeforeStart { start } => {
                        *from = Some(start);
                        let what = self.controls[i].what();
                        self.say(
                            Level::Info,
                            format!(
                                "cepheid: Kafka: {what} starts at offset {start} now, after the \
                                 kept offset {offset}: read from its first record kept \
                                 (compaction or retention removed the others)"
                            ),
                        );
                    }
                    _ => found.push(m),
                }
            }
        }
        for (m, to) in self.restart(found, self.on_mismatch)? {
            let control = |c: &ControlTopic| c.topic == m.topic && c.partition == m.partition;
            match self.controls.iter().position(control) {
                Some(i) => controls_from[i] = Some(to),
                None => self.position.set(&m.topic, m.partition, to),
            }
        }
        Ok(controls_from)
    }

    /// Starts each of `found` again as `on` says, and says so (each with
    /// the offset it starts again at); or refuses with the first.
    fn restart(
        &mut self,
        found: Vec<Misfit>,
        on: OnMismatch,
    ) -> Result<Vec<(Misfit, i64)>, KafkaError> {
        if on == OnMismatch::Refuse {
            let others = found.len().saturating_sub(1);
            return match found.into_iter().next() {
                Some(m) => Err(KafkaError::OffsetMismatch {
                    topic: m.topic,
                    partition: m.partition,
                    offset: m.offset,
                    mismatch: Box::new(m.mismatch),
                    others,
                }),
                None => Ok(Vec::new()),
            };
        }
        let mut restarted = Vec::with_capacity(found.len());
        for m in found {
            let (to, which) = match on {
                OnMismatch::Latest => (m.high, "after its last record"),
                _ => (m.low, "at its first record"),
            };
            self.restarted += 1;
            self.say(
                Level::Warning,
                format!(
                    "cepheid: Kafka: the kept offset {} of topic {:?} partition {} does not fit \
                     the topic as it is now: {}; the partition starts again {which}, offset {to} \
                     (`KafkaOptions::offset_mismatch` {on}; {} partition{} started again)",
                    m.offset,
                    m.topic,
                    m.partition,
                    m.mismatch,
                    self.restarted,
                    if self.restarted == 1 { "" } else { "s" }
                ),
            );
            restarted.push((m, to));
        }
        Ok(restarted)
    }

    /// The rules topic, if the source reads one.
    pub fn rules_topic(&self) -> Option<&str> {
        (self.controls.iter())
            .find(|c| c.list.is_none())
            .map(|c| c.topic.as_str())
    }

    /// The topic of control records whose records go up with split
    /// `split` ([`KafkaRecord::split`]), and the list it feeds (`None`:
    /// the rules topic); `None` for a split of events.
    pub fn control_topic(&self, split: usize) -> Option<(&str, Option<&str>)> {
        let c = self.controls.get(split.checked_sub(self.splits.len())?)?;
        Some((c.topic.as_str(), c.list.as_deref()))
    }

    /// The partition of each topic of control records, in split order.
    pub(crate) fn control_partitions(&self) -> impl Iterator<Item = (String, i32)> + '_ {
        self.controls.iter().map(|c| (c.topic.clone(), c.partition))
    }

    /// A record of a list's topic as the `$list` record it means (JSON
    /// text), or why it is no entry (`docs/kafka.md`, "Lists from
    /// topics"). `None` for a record of another topic.
    pub fn list_change(&self, record: &KafkaRecord) -> Option<Result<Vec<u8>, String>> {
        let c = self
            .controls
            .get(record.split.checked_sub(self.splits.len())?)?;
        let list = c.list.as_deref()?;
        Some(
            crate::lists::change(list, record)
                .map_err(|why| format!("no entry of list `{list}`: {why}; the record is left out")),
        )
    }

    /// Appends the records of the rules topic to `out`: first those read
    /// when the source started or sought (the topic up to its end then),
    /// then every record up to the topic's end as the broker gives it now
    /// (one request; read until the consumer's position reaches it, which
    /// librdkafka moves past the markers of a topic written with
    /// transactions, or for at most a few seconds per new end). So a rules record the broker acknowledged
    /// before an event was written is handed out no later than that event
    /// when this is called after the events' [`KafkaSource::read`]. Their
    /// `split` is the number of the source's [`KafkaSource::splits`] (one
    /// after the last partition of events). Nothing without a rules topic.
    ///
    /// The lists' topics' records too ([`SourceConfig::list_topics`]), each
    /// topic's after the rules topic's, with the split after its
    /// ([`KafkaSource::control_topic`]).
    pub fn read_rules(&mut self, out: &mut Vec<KafkaRecord>) -> Result<(), KafkaError> {
        let max_batch = self.max_batch;
        let said: Vec<String> = (self.controls.iter())
            .filter_map(ControlTopic::read_to_end)
            .collect();
        for text in said {
            self.say(Level::Info, text);
        }
        let Some(ends) = self.ends.as_ref() else {
            return Ok(()); // (no control topic)
        };
        for (i, control) in self.controls.iter_mut().enumerate() {
            control.started_at = None;
            let split = self.splits.len() + i;
            let first = out.len();
            let read = Self::read_rules_of(control, ends, out, split, max_batch);
            control.handed_out(&out[first..]);
            read?;
        }
        Ok(())
    }

    /// [`KafkaSource::read_rules`] of `rules`.
    fn read_rules_of(
        rules: &mut ControlTopic,
        ends: &BaseConsumer,
        out: &mut Vec<KafkaRecord>,
        split: usize,
        max_batch: usize,
    ) -> Result<(), KafkaError> {
        out.extend(
            rules
                .backlog
                .drain(..)
                .map(|record| KafkaRecord { split, ..record }),
        );
        // (a broker that does not answer: what was fetched, the events'
        // reads tell when it is gone for too long)
        // (asked by a client that fetches nothing: `KafkaSource::ends`)
        let high = ends
            .fetch_watermarks(&rules.topic, rules.partition, RULES_END_ASKED)
            .map_or(rules.read, |(_, high)| high);
        let target = rules.end.map_or(high, |end| end.min(high));
        let mut quiet = Instant::now();
        let mut taken = 0;
        loop {
            let behind = rules.waited_for < target && !rules.reached(target);
            if !behind && taken >= max_batch {
                break;
            }
            let wait = if behind {
                Duration::from_millis(10)
            } else {
                Duration::ZERO
            };
            let Some(result) = rules.consumer.poll(wait) else {
                if !behind {
                    break;
                }
                if quiet.elapsed() >= RULES_QUIET {
                    rules.waited_for = target;
                }
                continue;
            };
            match result {
                Ok(message) => {
                    quiet = Instant::now();
                    if message.partition() != rules.partition || message.offset() < rules.read {
                        continue; // (a stale fetch after a seek)
                    }
                    if rules.end.is_some_and(|end| message.offset() >= end) {
                        continue; // bounded: after the end
                    }
                    rules.read = message.offset() + 1;
                    out.push(record_of(&message, split));
                    taken += 1;
                }
                Err(error) => {
                    rules.on_error(error)?;
                    if !behind {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// The consumer goes to the position: at its first read
    /// ([`KafkaSource::assigned`]), so that a source sought before it
    /// reads (a resume) assigns one consumer once.
    fn assign(&mut self) -> Result<(), KafkaError> {
        // (statistics of the positions before: stale)
        self.consumer.context().clear();
        self.to_assign = true;
        Ok(())
    }

    /// librdkafka's positions of the partitions (none while the consumer
    /// still holds an assignment the source was sought away from).
    fn librdkafka_positions(&self) -> Option<TopicPartitionList> {
        (!self.to_assign)
            .then(|| self.consumer.position().ok())
            .flatten()
    }

    /// The consumer assigned the position, if it is not yet
    /// ([`assign_once`]).
    fn assigned(&mut self) -> Result<(), KafkaError> {
        if !self.to_assign {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in self.position.iter() {
            tpl.add_partition_offset(t, p, Offset::Offset(o))
                .map_err(client("assign"))?;
        }
        let config = &self.events_config;
        // (the queues of the consumer that assign_once may replace go
        // first)
        self.batches = None;
        assign_once(&mut self.consumer, &mut self.assigned, config, &tpl)?;
        self.batches = Batches::new(&self.consumer, &self.splits);
        self.to_assign = false;
        Ok(())
    }

    /// `kafka:` and the topics, comma-separated: `kafka:orders,logins`.
    pub fn describe(&self) -> String {
        format!("kafka:{}", self.topics.join(","))
    }

    /// The (topic, partition) pairs read, in split order.
    pub fn splits(&self) -> &[(String, i32)] {
        &self.splits
    }

    /// Appends up to `max_batch` records to `batch`, waiting at most
    /// `wait` for the first. A broker that stays unreachable past the
    /// retry limit is an error ([`KafkaError::Unreachable`]).
    pub fn read(
        &mut self,
        batch: &mut Vec<KafkaRecord>,
        wait: Duration,
    ) -> Result<Read, KafkaError> {
        self.read_with(wait, &mut |r| batch.push(r.to_owned()))
    }

    /// [`KafkaSource::read`] without a copy of its own: hands each record
    /// to `each` as the consumer holds it (up to `max_batch`, waiting at
    /// most `wait` for the first), in order. What `cepheid run` reads
    /// with: each payload is copied once, where `each` puts it.
    pub fn read_with(
        &mut self,
        wait: Duration,
        each: &mut dyn FnMut(RecordRef<'_>),
    ) -> Result<Read, KafkaError> {
        self.assigned()?;
        let mut delivered = 0;
        let mut timeout = wait;
        let drained = 'read: loop {
            let (drained, errors) = self.poll_batch(&mut timeout, &mut delivered, each);
            if errors.is_empty() {
                break drained;
            }
            for error in errors {
                self.on_error(error)?;
                if self.to_assign {
                    // (partitions started again: the rest from the
                    // consumer assigned their new offsets, at the next
                    // read, not from this one's queue)
                    break 'read false;
                }
            }
        };
        // (records handed out are no sign that the broker answers: they
        // may have been fetched before it went; a probe tells)
        let (consumer, topic) = (&self.consumer, &self.topics[0]);
        self.reach
            .tick(&|| consumer.fetch_metadata(Some(topic), PROBE).is_ok());
        self.check_down()?;
        // (a broker that does not answer: its topics are not asked after)
        if self.down_since.is_none() {
            self.watch.tick(self.consumer.client())?;
        }
        Ok(if delivered == 0 {
            Read::Idle
        } else if drained {
            Read::CaughtUp(delivered)
        } else {
            Read::Delivered(delivered)
        })
    }

    /// Takes records for [`KafkaSource::read_with`] until the batch is
    /// full (`delivered`), none is ready (true) or errors came (returned,
    /// in order, for the caller to handle): first what the consumer's own
    /// queue holds (statistics, the client's errors, and records when the
    /// partitions are not forwarded to [`Batches`]), then a batch of the
    /// partitions' records. The position moves past those handed out.
    fn poll_batch(
        &mut self,
        timeout: &mut Duration,
        delivered: &mut usize,
        each: &mut dyn FnMut(RecordRef<'_>),
    ) -> (bool, Vec<ClientError>) {
        let batched = self.batches.is_some();
        // (with batches, the consumer's queue is served without waiting:
        // the wait is the batch's)
        let mut wait = if batched { Duration::ZERO } else { *timeout };
        let (drained, error) = self.poll_each(&mut wait, delivered, each);
        if !batched || error.is_some() {
            *timeout = wait;
            return (drained, error.into_iter().collect());
        }
        if *delivered > 0 {
            *timeout = Duration::ZERO;
        }
        let room = self.max_batch.saturating_sub(*delivered);
        if room == 0 {
            return (false, Vec::new());
        }
        let messages = (self.batches.as_ref())
            .expect("batched")
            .take(*timeout, room);
        *timeout = Duration::ZERO;
        let mut errors = Vec::new();
        // (each partition's last record, whose mark the position keeps)
        let mut last: Vec<Option<usize>> = Vec::new();
        for i in 0..messages.len() {
            let m = messages.get(i);
            if let Some(e) = m.error() {
                errors.push(e);
                continue;
            }
            self.down_since = None;
            let (topic, partition) = (m.topic(), m.partition());
            let Some(split) = self.index.get(topic, partition) else {
                continue; // not ours (a stale fetch after seek)
            };
            let end = self.end.as_ref().and_then(|e| e.get(topic, partition));
            if end.is_some_and(|end| m.offset() >= end) {
                continue; // bounded: after the end
            }
            each(RecordRef {
                topic,
                partition,
                offset: m.offset(),
                split,
                key: m.key(),
                payload: m.payload(),
                timestamp: m.timestamp(),
            });
            *delivered += 1;
            if last.len() <= split {
                last.resize(split + 1, None);
            }
            last[split] = Some(i);
        }
        for m in last.iter().flatten().map(|&i| messages.get(i)) {
            let mark = Mark::of(m.offset(), m.timestamp(), m.key(), m.payload());
            self.position.set_after(m.topic(), m.partition(), mark);
        }
        (messages.len() < room, errors)
    }

    /// The most events [`KafkaSource::poll_each`] serves from the
    /// consumer's queue in one read, besides records.
    const EVENTS_A_READ: usize = 10_000;

    /// Polls the consumer's queue one record at a time, waiting at most
    /// `timeout` for the first, until the batch is full, the queue has
    /// nothing ready (true) or it gives an error (returned); moves the
    /// position past the records handed out: each partition's after its
    /// last one, with that record's mark (one CRC of a key and a value per
    /// partition and poll, not per record: the last message of each
    /// partition is held until then).
    fn poll_each(
        &mut self,
        timeout: &mut Duration,
        delivered: &mut usize,
        each: &mut dyn FnMut(RecordRef<'_>),
    ) -> (bool, Option<ClientError>) {
        let mut last: Vec<Option<BorrowedMessage<'_>>> = Vec::new();
        let mut drained = false;
        let mut error = None;
        // (rdkafka's poll gives nothing both for an empty queue and for an
        // event it served, statistics or a log line: with batches, the
        // queue's length tells them apart, so that a stream of log lines,
        // as while the brokers are down, does not hold errors back behind
        // it; at most this many events a read)
        let mut events = 0;
        while *delivered < self.max_batch {
            let Some(result) = self.consumer.poll(*timeout) else {
                let pending = self.batches.as_ref().map_or(0, Batches::pending);
                events += 1;
                if pending > 0 && events < Self::EVENTS_A_READ {
                    continue;
                }
                drained = true;
                break;
            };
            *timeout = Duration::ZERO;
            let message = match result {
                Ok(message) => message,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            self.down_since = None;
            let (topic, partition) = (message.topic(), message.partition());
            let Some(split) = self.index.get(topic, partition) else {
                continue; // not ours (a stale fetch after seek)
            };
            let end = self.end.as_ref().and_then(|e| e.get(topic, partition));
            if end.is_some_and(|end| message.offset() >= end) {
                continue; // bounded: after the end
            }
            each(RecordRef {
                topic,
                partition,
                offset: message.offset(),
                split,
                key: message.key(),
                payload: message.payload(),
                timestamp: message.timestamp().to_millis(),
            });
            *delivered += 1;
            if last.len() <= split {
                last.resize_with(split + 1, || None);
            }
            last[split] = Some(message);
        }
        for m in last.iter().flatten() {
            let mark = Mark::of(m.offset(), m.timestamp().to_millis(), m.key(), m.payload());
            self.position.set_after(m.topic(), m.partition(), mark);
        }
        (drained, error)
    }

    fn on_error(&mut self, error: ClientError) -> Result<(), KafkaError> {
        match crate::error::code_of(&error) {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                // (which topic, and what became of it, when the broker says)
                self.watch.ask(self.consumer.client())?;
                Err(KafkaError::UnknownTopic {
                    topic: self.topics.join(","),
                })
            }
            Some(RDKafkaErrorCode::OffsetOutOfRange) => {
                // (which partition the error does not say: each is
                // checked, and those out of their range now start again
                // as asked; a first start's at their first record)
                let at = self.position.clone();
                let found = misfits(
                    &self.consumer,
                    &self.probe_config,
                    &at,
                    &self.splits,
                    self.retry,
                )?;
                if found.is_empty() {
                    return Ok(());
                }
                let on = if self.kept {
                    self.on_mismatch
                } else {
                    OnMismatch::Earliest
                };
                for (m, to) in self.restart(found, on)? {
                    self.position.set(&m.topic, m.partition, to);
                }
                self.assign()
            }
            _ if retriable(&error) => {
                self.reach.failed(&error);
                if self.down_since.is_none() {
                    self.down_since = Some((Instant::now(), error));
                }
                Ok(())
            }
            _ => Err(KafkaError::client("read", error)),
        }
    }

    /// Past the limit since the broker seemed unreachable: asks it once
    /// more; no answer is the error.
    fn check_down(&mut self) -> Result<(), KafkaError> {
        let Some((since, _)) = &self.down_since else {
            return Ok(());
        };
        if since.elapsed() < self.retry.limit {
            return Ok(());
        }
        let topic = self.topics[0].clone();
        match self
            .consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(2))
        {
            Ok(_) => {
                self.down_since = None;
                self.reach.answered();
                Ok(())
            }
            Err(error) => {
                let (since, _) = self.down_since.take().expect("checked");
                Err(KafkaError::Unreachable {
                    operation: "read",
                    waited: since.elapsed(),
                    source: error,
                })
            }
        }
    }

    /// Bounded ([`SourceConfig::until`]): has every partition been
    /// read to its end offset? Always false otherwise.
    ///
    /// A partition is read to its end when the offset after the last
    /// record handed out is there, or else when the consumer's own
    /// position is: librdkafka moves it past the markers that end
    /// transactions, which no consumer reads (on a topic written with
    /// transactions the end offset is after a commit marker). The
    /// consumer's position is asked (a call into the client, no request
    /// to the broker) only for a partition whose last record handed out
    /// is not at its end.
    pub fn at_end(&self) -> bool {
        let Some(end) = &self.end else {
            return false;
        };
        let behind =
            |(t, p, o): &(&str, i32, i64)| self.position.get(t, *p).is_none_or(|at| at < *o);
        if !end.iter().any(|e| behind(&e)) {
            return true;
        }
        let Some(positions) = self.librdkafka_positions() else {
            return false;
        };
        end.iter().filter(behind).all(|(t, p, o)| {
            positions
                .find_partition(t, p)
                .is_some_and(|e| matches!(e.offset(), Offset::Offset(at) if at >= o))
        })
    }

    /// Stops fetching every partition of events (the caller cannot take
    /// more for a while): [`KafkaSource::read`] then hands out nothing
    /// (what was fetched and not handed out is fetched again on
    /// [`KafkaSource::resume`]), and still serves the client's statistics,
    /// so [`KafkaSource::lag`] shows what waits.
    pub fn pause(&mut self) -> Result<(), KafkaError> {
        self.assigned()?;
        let tpl = self.events_partitions();
        self.consumer.pause(&tpl).map_err(client("pause"))
    }

    /// Fetches again after [`KafkaSource::pause`], from the position.
    pub fn resume(&mut self) -> Result<(), KafkaError> {
        self.assigned()?;
        let tpl = self.events_partitions();
        self.consumer.resume(&tpl).map_err(client("resume"))
    }

    fn events_partitions(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &self.splits {
            tpl.add_partition(t, *p);
        }
        tpl
    }

    /// Records behind the end of each partition read, in split order,
    /// from librdkafka's statistics (every second, served by
    /// [`KafkaSource::read`]'s polls: no request to the broker): each
    /// partition's end offset (the last stable offset when reading
    /// committed records, else the high watermark) less the consumer's
    /// position (the larger of the offset after the last record handed
    /// out and librdkafka's, which moves past transaction markers), never
    /// below 0. `None` until the statistics have named every partition
    /// with an end offset (or when `--kafka statistics.interval.ms=0`
    /// turned them off). At most a second old; after the source reads
    /// everything and the next statistics come, each is 0.
    pub fn lag(&self) -> Option<Vec<PartitionLag>> {
        let offsets = self.consumer.context();
        let mut lag = Vec::with_capacity(self.splits.len());
        for (topic, partition) in &self.splits {
            let ends = offsets.get(topic, *partition)?;
            let end = if self.read_committed && ends.stable >= 0 {
                ends.stable
            } else {
                ends.high
            };
            if end < 0 {
                return None;
            }
            let at = self
                .position
                .get(topic, *partition)
                .unwrap_or(0)
                .max(ends.app);
            lag.push(PartitionLag {
                topic: topic.clone(),
                partition: *partition,
                records: u64::try_from(end - at).unwrap_or(0),
            });
        }
        Some(lag)
    }

    /// Records behind the end of each partition of `splits` (numbers of
    /// [`KafkaSource::splits`]), as the client knows it now: each one's
    /// high watermark from the client's last fetch response for it
    /// (`identity::known_high_watermark`, no request: the fetches that
    /// bring any partition's records bring every partition's end on that
    /// broker) less the position (the offset after the last record handed
    /// out, or librdkafka's, which moves past transaction markers: asked
    /// only when the first is behind), never below 0. `None` when the
    /// client knows no end of one of them yet. (The high watermark, not
    /// the last stable offset: the records of a transaction still open
    /// count as waiting, they come when it commits. tansu 0.6 gives its
    /// last batch's first offset + 1, which still tells a batch that was
    /// not read from one that was.)
    pub fn lag_now(&self, splits: &[usize]) -> Option<Vec<u64>> {
        let mut lag = Vec::with_capacity(splits.len());
        for &split in splits {
            let (topic, partition) = self.splits.get(split)?;
            let high =
                crate::identity::known_high_watermark(self.consumer.client(), topic, *partition)?;
            let mut at = self.position.get(topic, *partition).unwrap_or(0);
            if at < high {
                let librdkafka = self.librdkafka_positions().and_then(|p| {
                    match p.find_partition(topic, *partition)?.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    }
                });
                at = at.max(librdkafka.unwrap_or(0));
            }
            lag.push(u64::try_from(high - at).unwrap_or(0));
        }
        Some(lag)
    }

    /// Bounded: each partition's end offset, read at the start.
    pub fn end(&self) -> Option<&KafkaPosition> {
        self.end.as_ref()
    }

    /// Per (topic, partition), the offset after the last record handed
    /// out (where it started, for a partition that delivered nothing);
    /// with a rules topic and lists' topics, their partition 0 too.
    pub fn position(&self) -> KafkaPosition {
        self.position_with_controls_at(&[], &[])
    }

    /// [`KafkaSource::position`] with each topic of control records that
    /// `first` names (by split, [`KafkaSource::control_topic`]) at its
    /// offset (the first of its records not applied yet).
    ///
    /// `held` (by split): the records from there on that are held for
    /// event time, each with its offset and, when it was judged far ahead
    /// of event time, the watermark then ([`Held`]).
    pub(crate) fn position_with_controls_at(
        &self,
        first: &[(usize, i64)],
        held: &[(usize, i64, Option<i64>)],
    ) -> KafkaPosition {
        let mut position = self.position.clone();
        for (i, control) in self.controls.iter().enumerate() {
            let split = self.splits.len() + i;
            let offset = (first.iter())
                .find(|(s, _)| *s == split)
                .map_or(control.next(), |(_, o)| *o);
            control.put(&mut position, offset);
            let through = control.next();
            if offset < through {
                let ahead = (held.iter())
                    .filter(|(s, _, _)| *s == split)
                    .filter_map(|(_, o, w)| Some((*o, (*w)?)))
                    .collect();
                position.set_held(&control.topic, control.partition, Held { through, ahead });
            }
        }
        position
    }

    /// How the run judged the record `record` of a topic of control
    /// records before the checkpoint it resumed from, when it is one the
    /// run had read and held then ([`Held`]): `Some(None)` when it waited
    /// for its time, `Some(Some(w))` when it was read far ahead of event
    /// time at watermark `w`.
    pub fn held_before(&self, record: &KafkaRecord) -> Option<Option<i64>> {
        let control = self
            .controls
            .get(record.split.checked_sub(self.splits.len())?)?;
        let held = control.held.as_ref()?;
        if record.offset >= held.through {
            return None;
        }
        let ahead = held.ahead.iter().find(|(o, _)| *o == record.offset);
        Some(ahead.map(|(_, w)| *w))
    }

    /// Goes back (or forward) to `position`: each partition it names
    /// restarts at its offset; the others stay where they are; a partition
    /// the source does not read is ignored (another worker's). The rules
    /// topic is read again from the offset it names, up to its end now.
    ///
    /// Each offset is checked against its partition as it is now, and
    /// one that does not fit refused or started again
    /// ([`SourceConfig::on_mismatch`]).
    pub fn seek(&mut self, position: &KafkaPosition) -> Result<(), KafkaError> {
        let controls_from = self.fit(position)?;
        for (control, from) in self.controls.iter_mut().zip(controls_from) {
            let offset = from.unwrap_or(control.next());
            control.start_at(offset)?;
            control.held = (position.held(&control.topic, control.partition))
                .filter(|_| from.is_some())
                .cloned();
        }
        self.assign()
    }
}

fn record_of(message: &BorrowedMessage<'_>, split: usize) -> KafkaRecord {
    KafkaRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        split,
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        timestamp: message.timestamp().to_millis(),
    }
}

/// The split of each (topic, partition) read: found per record without
/// hashing (a source reads a few topics, partitions numbered from 0).
struct SplitIndex(Vec<(String, Vec<Option<usize>>)>);

impl SplitIndex {
    fn new(splits: &[(String, i32)]) -> SplitIndex {
        let mut index: Vec<(String, Vec<Option<usize>>)> = Vec::new();
        for (i, (topic, partition)) in splits.iter().enumerate() {
            let Ok(p) = usize::try_from(*partition) else {
                continue; // (no such partition)
            };
            let at = match index.iter().position(|(t, _)| t == topic) {
                Some(at) => at,
                None => {
                    index.push((topic.clone(), Vec::new()));
                    index.len() - 1
                }
            };
            let partitions = &mut index[at].1;
            if partitions.len() <= p {
                partitions.resize(p + 1, None);
            }
            partitions[p] = Some(i);
        }
        SplitIndex(index)
    }

    fn get(&self, topic: &str, partition: i32) -> Option<usize> {
        let (_, partitions) = self.0.iter().find(|(t, _)| t == topic)?;
        *partitions.get(usize::try_from(partition).ok()?)?
    }
}

/// How long the rules topic is waited for when it gives no record before
/// its end and librdkafka's position does not show it past the end either
/// (a broker slow to answer).
const RULES_QUIET: Duration = Duration::from_secs(5);

/// How long [`KafkaSource::read_rules`] waits for the rules topic's end
/// offset.
const RULES_END_ASKED: Duration = Duration::from_secs(1);

impl ControlTopic {
    /// Reads partition `partition` of `topic` (feeding `list`, of a topic
    /// with `several` partitions or not) from `from` (a checkpoint's
    /// offset) or else from its first record, up to its end as the broker
    /// gives it now.
    fn open(
        (consumer, config): (BaseConsumer, ClientConfig),
        (list, topic, partition, several): (Option<String>, &str, i32, bool),
        from: Option<i64>,
        until_end: bool,
        retry: Retry,
    ) -> Result<ControlTopic, KafkaError> {
        let (low, high) = retry.run(
            "fetch watermarks",
            |left| consumer.fetch_watermarks(topic, partition, left),
            client("fetch watermarks"),
        )?;
        let mut control = ControlTopic {
            list,
            partition,
            of_several: several,
            started_at: None,
            consumer,
            config,
            assigned: false,
            topic: topic.to_string(),
            backlog: VecDeque::new(),
            handed: VecDeque::new(),
            read: low,
            end: until_end.then_some(high),
            waited_for: -1,
            retry,
            held: None,
        };
        control.start_at(from.unwrap_or(low))?;
        Ok(control)
    }
}

/// The partitions of a topic of control records, by number, checked: it
/// exists, and a rules topic (`list` `None`) has one (its rule sets are
/// one sequence); a list's topic may have several (each entry's records
/// are in one of them, as its key puts it).
fn control_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    list: Option<&str>,
    topic: &str,
    retry: Retry,
) -> Result<Vec<i32>, KafkaError> {
    let metadata = retry.run(
        "fetch metadata",
        |t| consumer.fetch_metadata(Some(topic), t),
        client("fetch metadata"),
    )?;
    let mut partitions = match metadata.topics().iter().find(|m| m.name() == topic) {
        Some(m) if m.error().is_none() && !m.partitions().is_empty() => {
            m.partitions().iter().map(|p| p.id()).collect::<Vec<_>>()
        }
        _ => {
            return Err(KafkaError::UnknownTopic {
                topic: topic.to_string(),
            })
        }
    };
    if list.is_none() && partitions.len() != 1 {
        return Err(KafkaError::Config {
            reason: format!(
                "the rules topic {topic:?} has {} partitions: a rules topic has one (its rule sets are one sequence)",
                partitions.len()
            ),
        });
    }
    partitions.sort_unstable();
    Ok(partitions)
}

/// The topics of control records of `config`: the rules topic (no list),
/// then each list's, checked: none a topic of events or another's.
fn control_topics(config: &SourceConfig) -> Result<Vec<(Option<String>, String)>, KafkaError> {
    let mut controls: Vec<(Option<String>, String)> = Vec::new();
    let rules = config.rules_topic.iter().map(|t| (None, t.clone()));
    let lists = (config.list_topics.iter()).map(|(l, t)| (Some(l.clone()), t.clone()));
    for (list, topic) in rules.chain(lists) {
        let what = match &list {
            None => "the rules topic".to_string(),
            Some(list) => format!("the topic of list `{list}`"),
        };
        if config.topics.contains(&topic) {
            return Err(KafkaError::Config {
                reason: format!("topic {topic:?} is both a topic of events and {what}"),
            });
        }
        if let Some((other, _)) = controls.iter().find(|(_, t)| *t == topic) {
            let other = match other {
                None => "the rules topic".to_string(),
                Some(other) => format!("the topic of list `{other}`"),
            };
            return Err(KafkaError::Config {
                reason: format!("topic {topic:?} is both {other} and {what}"),
            });
        }
        if let Some(list) = list
            .as_ref()
            .filter(|l| controls.iter().any(|(o, _)| o.as_ref() == Some(l)))
        {
            return Err(KafkaError::Config {
                reason: format!("list `{list}` is given two topics: a list has one"),
            });
        }
        controls.push((list, topic));
    }
    Ok(controls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumers_wait_at_most_100_ms_for_a_fetch_unless_a_property_says_otherwise() {
        let mut config = SourceConfig::new("127.0.0.1:9092", &["in"]);
        let made = consumer_config(&config);
        assert_eq!(made.get("fetch.wait.max.ms"), Some(FETCH_WAIT_MAX_MS));
        assert_eq!(FETCH_WAIT_MAX_MS, "100");
        assert_eq!(made.get("isolation.level"), Some("read_committed"));
        // The caller's properties are set last: theirs win.
        config.properties = vec![
            ("fetch.wait.max.ms".to_string(), "500".to_string()),
            ("fetch.min.bytes".to_string(), "1000".to_string()),
        ];
        let made = consumer_config(&config);
        assert_eq!(made.get("fetch.wait.max.ms"), Some("500"));
        assert_eq!(made.get("fetch.min.bytes"), Some("1000"));
        assert_eq!(made.get("group.id"), Some("cepheid"));
    }
}
