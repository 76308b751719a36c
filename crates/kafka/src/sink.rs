//! The Kafka sink: matches, timeouts and late events to topics, keyed by
//! the partition key. Transactional (exactly once with the source offsets
//! in the same transaction, `docs/checkpoints.md`, "Kafka") or idempotent
//! (at least once).

use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use crate::error::{
    code_of, fencing, retriable, unnamed_code, KafkaError, TRANSACTIONAL_ID_NOT_FOUND,
};
use crate::position::KafkaPosition;
use crate::reach::{Reach, PROBE, RECONNECT_MAX_MS};
use crate::retry::{Retry, Watch};
use crate::watch::TopicWatch;

/// The kind of an output record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A complete match.
    Match,
    /// A partial match that timed out.
    Timeout,
    /// An event behind the watermark.
    Late,
}

/// Which topic each kind goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputTopics {
    /// One topic for all kinds.
    One(String),
    /// A topic per kind.
    PerKind {
        /// Matches.
        matches: String,
        /// Timeouts.
        timeouts: String,
        /// Late events.
        late: String,
    },
}

impl OutputTopics {
    /// The topic of `kind`.
    pub fn topic(&self, kind: Kind) -> &str {
        match (self, kind) {
            (OutputTopics::One(t), _) => t,
            (OutputTopics::PerKind { matches, .. }, Kind::Match) => matches,
            (OutputTopics::PerKind { timeouts, .. }, Kind::Timeout) => timeouts,
            (OutputTopics::PerKind { late, .. }, Kind::Late) => late,
        }
    }

    /// Each distinct topic, in order.
    pub fn all(&self) -> Vec<&str> {
        let mut all = vec![
            self.topic(Kind::Match),
            self.topic(Kind::Timeout),
            self.topic(Kind::Late),
        ];
        all.dedup();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// The exactly-once mode of a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transactional {
    /// `transactional.id`: one per instance of a pipeline, the same after
    /// a restart (a second instance with the same id fences the first).
    pub transactional_id: String,
    /// The consumer group whose committed offsets hold the source position
    /// of the last committed checkpoint.
    pub group_id: String,
    /// The (topic, partition) whose committed offset in the group is the
    /// number of the last committed checkpoint; `None`: partition 0 of the
    /// first output topic (the group never reads it). A topic that is not
    /// an output topic is the sink's own: each transaction also writes a
    /// record `{"checkpoint":N}` there, so that no transaction is without
    /// records (tansu drops the offsets of a transaction without records
    /// after an earlier one of the same producer; a Kafka broker does not
    /// need it), and the topic is a log of the committed checkpoints.
    pub marker: Option<(String, i32)>,
    /// `transaction.timeout.ms`: the broker aborts a transaction open
    /// longer (an instance that died with one open).
    pub timeout: Duration,
}

impl Transactional {
    /// `transactional_id` and `group_id`, the marker by default, a
    /// 60-second transaction timeout.
    pub fn new(transactional_id: impl Into<String>, group_id: impl Into<String>) -> Transactional {
        Transactional {
            transactional_id: transactional_id.into(),
            group_id: group_id.into(),
            marker: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The configuration of a [`KafkaSink`].
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Where records go.
    pub topics: OutputTopics,
    /// Exactly once (`Some`) or idempotent, at least once (`None`).
    pub transactional: Option<Transactional>,
    /// How long a broker that does not answer is waited for.
    pub retry: Retry,
    /// Further librdkafka properties, set last.
    pub properties: Vec<(String, String)>,
    /// Are late events written (to their topic)? Otherwise the runtime
    /// only counts them (`cepheid_runtime::Sink::takes_late`).
    pub late: bool,
    /// The topic of the audit records of changes of rules
    /// (`cepheid_runtime::Sink::takes_audit`), written to its partition 0
    /// in the same transactions as the records; `None`: none are taken.
    pub audit: Option<String>,
    /// The topic of the records of `shadow` patterns
    /// (`cepheid_runtime::Sink::takes_shadow`), keyed as the matches are
    /// (a key's records to one partition, in order) and written in the
    /// same transactions as the records; `None`: none are taken.
    pub shadow: Option<String>,
    /// The topic of the scenes' decisions
    /// (`cepheid_runtime::Sink::takes_decisions`), keyed by the event's id
    /// (an event's decisions to one partition, in order) and written in
    /// the same transactions as the records; `None`: none are taken.
    pub decisions: Option<String>,
    /// The run's source is not Kafka (a file, `cepheid serve`'s log):
    /// its positions are its own, never Kafka offsets; each transaction
    /// commits the checkpoint's marker alone.
    pub foreign_source: bool,
}

impl SinkConfig {
    /// Idempotent (at least once) to `topics` on `brokers`.
    pub fn new(brokers: impl Into<String>, topics: OutputTopics) -> SinkConfig {
        SinkConfig {
            brokers: brokers.into(),
            topics,
            transactional: None,
            retry: Retry::default(),
            properties: Vec::new(),
            late: true,
            audit: None,
            shadow: None,
            decisions: None,
            foreign_source: false,
        }
    }
}

/// A checkpoint the caller still keeps: its number and the source
/// position it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptCheckpoint {
    /// Its number.
    pub id: u64,
    /// The source position in it.
    pub position: KafkaPosition,
}

/// What [`KafkaSink::recover`] found on the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The broker committed the kept checkpoint at this index (newest
    /// first): resume from it.
    Checkpoint(usize),
    /// The group committed nothing for this sink: no transaction ever
    /// committed, resume from the start.
    NothingCommitted,
}

/// The first delivery error, kept by the producer's callback; and what
/// the callbacks tell of whether the brokers answer.
struct SinkContext {
    failed: Arc<Mutex<Option<(String, ClientError)>>>,
    reach: Arc<Reach>,
}

impl ClientContext for SinkContext {
    /// librdkafka's errors that are not a call's (a connection lost, all
    /// brokers down), served by the producer's polls.
    fn error(&self, error: ClientError, _reason: &str) {
        if retriable(&error) {
            self.reach.failed(&error);
        }
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        // (a delivered record is no sign that the broker answers now: its
        // report may have waited in the queue since before it went)
        if let Err((error, message)) = result {
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            if failed.is_none() {
                *failed = Some((message.topic().to_string(), error.clone()));
            }
        }
    }
}

/// The offsets of `tpl` by topic and partition, sorted (`None`: no
/// offset).
/// What the group's offsets say while a commit is not answered
/// ([`KafkaSink::superseded`]).
#[derive(Debug, PartialEq)]
enum Judged {
    /// Nothing yet: as before, or this commit's own.
    Waiting,
    /// The broker lost the group's offsets (its state).
    Lost,
    /// Another instance committed.
    Superseded,
}

/// Judges the group's offsets `now` against those it held `before` and
/// the commit waited for (`ours`), whose `marker` partition's offset is
/// its checkpoint's number:
/// - a group that held offsets and holds none: no instance commits
///   nothing, the broker lost its state (a false "took over" before);
/// - offsets as before, or this commit's: it is still waited for;
/// - this commit's marker with some of its source offsets missing and
///   none other: this commit, whose offsets the broker dropped for topics
///   it lost (a broker restarted without its state, the topics created
///   again; the fault hour's case 20, a false "took over" before);
/// - else another instance's commit.
fn judge(before: &[Held], now: &[Held], ours: &[Held], marker: (&str, i32)) -> Judged {
    let holds = |offsets: &[Held]| offsets.iter().any(|(_, _, o)| o.is_some());
    if holds(before) && !holds(now) {
        return Judged::Lost;
    }
    let offset = |offsets: &[Held], t: &str, p: i32| {
        (offsets.iter())
            .find(|(ht, hp, _)| (ht.as_str(), *hp) == (t, p))
            .and_then(|(_, _, o)| *o)
    };
    let unchanged = now.iter().all(|(t, p, o)| *o == offset(before, t, *p));
    if unchanged || now == ours {
        return Judged::Waiting;
    }
    let is_marker = |t: &str, p: i32| (t, p) == marker;
    let our_marker = offset(ours, marker.0, marker.1);
    let of_ours = (now.iter()).all(|(t, p, o)| o.is_none() || *o == offset(ours, t, *p));
    if our_marker.is_some() && offset(now, marker.0, marker.1) == our_marker && of_ours {
        let sources = |offsets: &[Held]| {
            (offsets.iter())
                .filter(|(t, p, o)| o.is_some() && !is_marker(t, *p))
                .count()
        };
        if sources(now) < sources(ours) {
            return Judged::Lost;
        }
    }
    Judged::Superseded
}

/// A partition's committed offset as the group holds it.
type Held = (String, i32, Option<i64>);

fn held(tpl: &TopicPartitionList) -> Vec<(String, i32, Option<i64>)> {
    let mut held: Vec<_> = tpl
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (e.topic().to_string(), e.partition(), offset)
        })
        .collect();
    held.sort();
    held
}

/// Waits up to `timeout` until every queued record is delivered, as
/// `flush` does, but returns within about a millisecond of the last
/// delivery report, and sleeps while it waits.
///
/// rust-rdkafka's `BaseProducer::flush` waits in calls of `poll(100 ms)`
/// that each last their whole 100 ms even when the reports came at once
/// (its `poll` loops until its deadline): every flush of a record in
/// flight took at least 100 ms, a checkpoint's `prepare` then 100 ms
/// whatever the broker did (BENCHMARKS.md, "Kafka"). Calling it with 1 ms
/// instead spun: its `poll` hands librdkafka the time left in whole
/// milliseconds, 0 below one, so each of those calls polled without
/// waiting until its deadline (a flush at the end of a run of 49,000
/// alerts: 724,000 polls, 17% of the run's instructions under callgrind;
/// BENCHMARKS.md, "Kafka out: a flush that sleeps").
///
/// Here the delivery reports queued are served, then `rd_kafka_flush`
/// waits 1 ms: with delivery reports as events (rust-rdkafka's mode) it
/// only sleeps until the count of undelivered records reaches zero, which
/// serving the reports lowers, and for that millisecond the producer's
/// `linger.ms` is cut short, as for any flush.
fn flush_promptly<C: ProducerContext>(
    producer: &BaseProducer<C>,
    timeout: Duration,
) -> Result<(), ClientError> {
    let deadline = Instant::now() + timeout;
    let reports = crate::native::Queue::main(producer.client());
    loop {
        if let Some(reports) = &reports {
            while reports.len() > 0 {
                producer.poll(Duration::ZERO);
            }
        } else {
            producer.poll(Duration::ZERO);
        }
        if producer.in_flight_count() == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ClientError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        crate::native::flush_for(producer.client(), FLUSH_WAIT_MS);
    }
}

/// How long [`flush_promptly`] sleeps at a time, in milliseconds.
const FLUSH_WAIT_MS: i32 = 1;

/// Writes output records to Kafka.
pub struct KafkaSink {
    /// (shared with a thread that waits for a call librdkafka may not
    /// return from: [`KafkaSink::send_offsets`])
    producer: Arc<BaseProducer<SinkContext>>,
    failed: Arc<Mutex<Option<(String, ClientError)>>>,
    topics: OutputTopics,
    transactional: Option<Transactional>,
    group: Option<(BaseConsumer, Arc<ConsumerGroupMetadata>)>,
    retry: Retry,
    /// How long a record may wait for its delivery (`message.timeout.ms`,
    /// as configured): a record that waited that long is the broker gone
    /// past the limit ([`KafkaError::Unreachable`]).
    message_timeout: Duration,
    initialized: bool,
    in_transaction: bool,
    late: bool,
    /// The audit records' topic (`SinkConfig::audit`).
    audit: Option<String>,
    /// The shadow records' topic (`SinkConfig::shadow`).
    shadow: Option<String>,
    /// The decisions' topic (`SinkConfig::decisions`).
    decisions: Option<String>,
    /// `SinkConfig::foreign_source`.
    pub(crate) foreign_source: bool,
    /// Fenced: every later call fails with this error (librdkafka purges
    /// what was queued; its delivery reports say "purged", not why).
    pub(crate) fenced_by: Option<KafkaError>,
    /// The number of the checkpoint whose interval is being written (the
    /// last committed one + 1): each record of a transactional sink
    /// carries it in its header [`CHECKPOINT_HEADER`].
    interval: u64,
    /// What the group held after this instance's last commit (or, before
    /// its first, as read then): offsets by topic and partition, the
    /// marker's included. A commit the broker does not answer is checked
    /// against it (see [`KafkaSink::superseded`]).
    group_held: Option<Vec<(String, i32, Option<i64>)>>,
    /// The checkpoint the group's marker named when this instance took
    /// its transactional id over ([`KafkaSink::recover`]; `Some(None)`:
    /// none): before this instance's first commit, another instance's
    /// commit shows as a change of it ([`KafkaSink::marker_moved`]).
    marker_at_takeover: Option<Option<u64>>,
    /// Whether the brokers answer, shared with the run's source (said on
    /// the run's report).
    reach: Arc<Reach>,
    /// The output topics, described now and then: one deleted or created
    /// again ends the writes (a broker may acknowledge records to a
    /// deleted topic and drop them: tansu 0.6 does). In a mutex: asked
    /// from the calls that wait for the broker too (`&self`).
    watch: Mutex<TopicWatch>,
    /// Records written since the topics were last looked at.
    since_watched: u32,
}

/// How many records [`KafkaSink::write`] writes between two looks at the
/// output topics (each at most once a second: [`TopicWatch::tick`]).
const WATCH_RECORDS: u32 = 1024;

/// The producer's delivery reports are served every this many records
/// written (a divisor of [`WATCH_RECORDS`]).
const POLL_RECORDS: u32 = 64;

/// Where [`KafkaSink::send`] queues a record.
enum To<'a> {
    /// The output topic of this kind of record, to the partition of its
    /// key.
    Output(Kind),
    /// A topic of the sink's own, to the partition of the record's key:
    /// the shadow records' (`SinkConfig::shadow`), the decisions'
    /// (`SinkConfig::decisions`).
    Keyed(&'a str),
    /// A partition of a topic of the sink's own: the marker topic's, the
    /// audit records' (`SinkConfig::audit`).
    Marker(&'a str, i32),
}

/// How long one `commit_transaction` call waits before the sink looks at
/// the brokers ([`Reach`]) and asks the group whether another instance
/// has taken over.
const COMMIT_STEP: Duration = Duration::from_secs(1);

/// The header of each record a transactional sink writes: the number of
/// the checkpoint whose transaction holds it, in decimal. A consumer that
/// reads uncommitted records (or a broker that hands out aborted ones, as
/// tansu does) can tell them apart by it: the records of interval N are
/// committed exactly when the marker's committed offset is N or more.
pub const CHECKPOINT_HEADER: &str = "cepheid-checkpoint";

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topics", &self.topics)
            .field("transactional", &self.transactional)
            .field("in_transaction", &self.in_transaction)
            .finish_non_exhaustive()
    }
}

/// The producer's `linger.ms` unless a property sets it.
const LINGER_MS: &str = "20";

/// The producer's `compression.type` unless a property sets it.
const COMPRESSION: &str = "lz4";

impl KafkaSink {
    /// Connects and checks that the output topics exist. A transactional
    /// sink initializes its transactions in [`KafkaSink::recover`] or, on
    /// a fresh start, at its first write or commit.
    pub fn new(config: SinkConfig) -> Result<KafkaSink, KafkaError> {
        let retry = config.retry;
        let mut client_config = ClientConfig::new();
        client_config
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            // A topic that does not exist is an error, not created.
            .set("allow.auto.create.topics", "false")
            // A broker back after an outage is reconnected to within 1 s
            // (librdkafka's default backoff grows to 10 s: a run went on
            // waiting that long after the broker had come back).
            .set("reconnect.backoff.max.ms", RECONNECT_MAX_MS)
            .set("acks", "all")
            // Alerts batched for up to 20 ms and compressed with lz4
            // (BENCHMARKS.md, "Kafka: the producer's settings"): 7-17%
            // less of cepheid's CPU, half the bytes and 40% less of the
            // broker's CPU, for a few ms of delay without checkpoints and
            // none measured with a checkpoint every second. `--kafka`
            // (the properties, set last) overrides them.
            .set("linger.ms", LINGER_MS)
            .set("compression.type", COMPRESSION)
            .set(
                "message.timeout.ms",
                retry.call_timeout().as_millis().to_string(),
            );
        if let Some(t) = &config.transactional {
            client_config
                .set("transactional.id", &t.transactional_id)
                .set("transaction.timeout.ms", t.timeout.as_millis().to_string());
            // The message timeout may not exceed the transaction's.
            if retry.call_timeout() > t.timeout {
                client_config.set("message.timeout.ms", t.timeout.as_millis().to_string());
            }
        }
        for (k, v) in &config.properties {
            client_config.set(k, v);
        }
        let message_timeout = client_config
            .get("message.timeout.ms")
            .and_then(|ms| ms.parse().ok())
            .map_or(retry.call_timeout(), Duration::from_millis);
        let reach = Reach::of(&config.brokers, retry.limit);
        let context = SinkContext {
            failed: Arc::default(),
            reach: reach.clone(),
        };
        let failed = context.failed.clone();
        let producer: BaseProducer<SinkContext> = client_config
            .create_with_context(context)
            .map_err(|e| KafkaError::client("create the producer", e))?;
        let mut watched = Vec::new();
        let mut topics = config.topics.all();
        for own in [&config.audit, &config.shadow, &config.decisions]
            .into_iter()
            .flatten()
        {
            if !topics.contains(&own.as_str()) {
                topics.push(own);
            }
        }
        for topic in topics {
            let metadata = retry.run(
                "fetch metadata",
                |left| producer.client().fetch_metadata(Some(topic), left),
                |e| KafkaError::client("fetch metadata", e),
            )?;
            let exists = metadata
                .topics()
                .iter()
                .any(|m| m.name() == topic && m.error().is_none() && !m.partitions().is_empty());
            if !exists {
                return Err(KafkaError::UnknownTopic {
                    topic: topic.to_string(),
                });
            }
            let partitions = metadata
                .topics()
                .iter()
                .find(|m| m.name() == topic)
                .map_or(0, |m| m.partitions().len());
            let highest = i32::try_from(partitions).unwrap_or(i32::MAX) - 1;
            watched.push((topic.to_string(), highest));
        }
        let watch = TopicWatch::new(producer.client(), &watched, true);
        let group = match &config.transactional {
            Some(t) => {
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &config.brokers)
                    .set("group.id", &t.group_id)
                    .set("reconnect.backoff.max.ms", RECONNECT_MAX_MS)
                    .set("enable.auto.commit", "false")
                    .create()
                    .map_err(|e| KafkaError::client("create the group's consumer", e))?;
                let metadata = consumer
                    .group_metadata()
                    .ok_or_else(|| KafkaError::Config {
                        reason: "no consumer group metadata".to_string(),
                    })?;
                Some((consumer, Arc::new(metadata)))
            }
            None => None,
        };
        Ok(KafkaSink {
            producer: Arc::new(producer),
            failed,
            topics: config.topics,
            transactional: config.transactional,
            group,
            retry,
            message_timeout,
            initialized: false,
            in_transaction: false,
            late: config.late,
            audit: config.audit,
            shadow: config.shadow,
            decisions: config.decisions,
            foreign_source: config.foreign_source,
            fenced_by: None,
            interval: 1,
            group_held: None,
            marker_at_takeover: None,
            reach,
            watch: Mutex::new(watch),
            since_watched: 0,
        })
    }

    /// Where to say that the brokers stop answering while a call waits for
    /// them, and answer again (once each, not per retry): the run's report
    /// (`cepheid_runtime::Sink::notify_to`). Shared with the sources of
    /// the same brokers in this process.
    pub fn notify_to(&mut self, notify: cepheid_runtime::Notify) {
        self.reach.notify_to(notify);
    }

    /// Does the broker answer a metadata request (within [`PROBE`])?
    fn probe(&self) -> bool {
        let topic = self.topics.topic(Kind::Match);
        self.producer
            .client()
            .fetch_metadata(Some(topic), PROBE)
            .is_ok()
    }

    /// `kafka:` and the output topics.
    pub fn describe(&self) -> String {
        format!("kafka:{}", self.topics.all().join(","))
    }

    /// The topic records of `kind` go to.
    pub fn topic(&self, kind: Kind) -> &str {
        self.topics.topic(kind)
    }

    /// Does it write late events (`SinkConfig::late`)?
    pub fn takes_late(&self) -> bool {
        self.late
    }

    /// The topic of the audit records (`SinkConfig::audit`), if it takes
    /// them.
    pub fn audit_topic(&self) -> Option<&str> {
        self.audit.as_deref()
    }

    /// Writes an audit record of a change of rules to partition 0 of the
    /// audit topic (in order), in the transaction of the records;
    /// an error when the sink takes none.
    pub fn write_audit(&mut self, record: &[u8]) -> Result<(), KafkaError> {
        let Some(topic) = self.audit.clone() else {
            return Err(KafkaError::Config {
                reason: "this sink takes no audit records (`SinkConfig::audit`)".to_string(),
            });
        };
        self.begin()?;
        self.send(To::Marker(&topic, 0), b"", record)
    }

    /// The topic of the records of `shadow` patterns
    /// (`SinkConfig::shadow`), if it takes them.
    pub fn shadow_topic(&self) -> Option<&str> {
        self.shadow.as_deref()
    }

    /// Queues a record of a `shadow` pattern (a match or a timeout, the
    /// line it would write live) to the shadow topic, keyed by `key` as
    /// [`KafkaSink::write`] keys the matches (a key's records go to one
    /// partition, in order), in the transaction of the records; an error
    /// when the sink takes none.
    pub fn write_shadow(&mut self, key: &[u8], record: &[u8]) -> Result<(), KafkaError> {
        let Some(topic) = self.shadow.clone() else {
            return Err(KafkaError::Config {
                reason: "this sink takes no records of shadow patterns (`SinkConfig::shadow`)"
                    .to_string(),
            });
        };
        self.write_to(To::Keyed(&topic), key, record)
    }

    /// The topic of the scenes' decisions (`SinkConfig::decisions`), if it
    /// takes them.
    pub fn decisions_topic(&self) -> Option<&str> {
        self.decisions.as_deref()
    }

    /// Queues a decision record to the decisions topic, keyed by `key`
    /// (the event's id: an event's decisions go to one partition, in
    /// order), in the transaction of the records; an error when the sink
    /// takes none.
    pub fn write_decision(&mut self, key: &[u8], record: &[u8]) -> Result<(), KafkaError> {
        let Some(topic) = self.decisions.clone() else {
            return Err(KafkaError::Config {
                reason: "this sink takes no decisions (`SinkConfig::decisions`)".to_string(),
            });
        };
        self.write_to(To::Keyed(&topic), key, record)
    }

    /// The number of the checkpoint whose interval is being written.
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// True for a transactional (exactly-once) sink.
    pub fn is_transactional(&self) -> bool {
        self.transactional.is_some()
    }

    fn transactional_id(&self) -> String {
        self.transactional
            .as_ref()
            .map(|t| t.transactional_id.clone())
            .unwrap_or_default()
    }

    /// The producer's fatal error, if it is a fencing: librdkafka purges
    /// the queued records of a fenced producer, whose delivery reports then
    /// say "purged", not why.
    fn fenced(&self) -> Option<ClientError> {
        self.transactional.as_ref()?;
        let (code, _) = self.producer.client().fatal_error()?;
        let error = ClientError::MessageProduction(code);
        fencing(&error).then_some(error)
    }

    /// The output topics looked at, at most once a second.
    fn watch_tick(&self) -> Result<(), KafkaError> {
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        watch.tick(self.producer.client())
    }

    /// An output topic deleted or created again, asked now: after a
    /// transactional call failed, or waited, for a reason the broker does
    /// not give (a broker that lost its state answers "unknown producer
    /// id", "erroneous state", or nothing at all): the topics say it.
    fn topics_changed(&self) -> Option<KafkaError> {
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        watch.ask(self.producer.client()).err()
    }

    /// The error value of a failed transactional call: fenced, the
    /// broker's lost state, an output topic changed, or the client's.
    fn txn_error(&self, operation: &'static str) -> impl Fn(ClientError) -> KafkaError + '_ {
        let id = self.transactional_id();
        move |e| {
            if let Some(source) = self.fenced() {
                KafkaError::Fenced {
                    transactional_id: id.clone(),
                    source,
                }
            } else if fencing(&e) {
                KafkaError::Fenced {
                    transactional_id: id.clone(),
                    source: e,
                }
            } else if unnamed_code(&e) == Some(TRANSACTIONAL_ID_NOT_FOUND) {
                KafkaError::StateLost {
                    transactional_id: id.clone(),
                    operation: Some(operation),
                }
            } else if let Some(changed) = self.topics_changed() {
                changed
            } else {
                KafkaError::client(operation, e)
            }
        }
    }

    fn init(&mut self) -> Result<(), KafkaError> {
        if self.initialized || self.transactional.is_none() {
            return Ok(());
        }
        let error = self.txn_error("init_transactions");
        let producer = &self.producer;
        let watch = Watch {
            reach: &self.reach,
            probe: &|| self.probe(),
            answers: true,
        };
        self.retry.run_watched(
            "init_transactions",
            &watch,
            |t| producer.init_transactions(t),
            error,
        )?;
        self.initialized = true;
        Ok(())
    }

    fn begin(&mut self) -> Result<(), KafkaError> {
        if self.transactional.is_none() || self.in_transaction {
            return Ok(());
        }
        self.init()?;
        self.producer
            .begin_transaction()
            .map_err(self.txn_error("begin_transaction"))?;
        self.in_transaction = true;
        Ok(())
    }

    fn check_delivery(&mut self) -> Result<(), KafkaError> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner()).take();
        if failed.is_none() {
            return Ok(());
        }
        if let Some(source) = self.fenced() {
            return Err(KafkaError::Fenced {
                transactional_id: self.transactional_id(),
                source,
            });
        }
        match failed {
            Some((_, source)) if fencing(&source) => Err(KafkaError::Fenced {
                transactional_id: self.transactional_id(),
                source,
            }),
            Some((topic, source)) => {
                self.fenced_on_abort()?;
                if code_of(&source) == Some(RDKafkaErrorCode::MessageTimedOut) {
                    // Not delivered within `message.timeout.ms` (the retry
                    // limit unless configured): the broker gone past the
                    // limit, as a call it does not answer would say.
                    return Err(KafkaError::Unreachable {
                        operation: "a record's delivery",
                        waited: self.message_timeout,
                        source,
                    });
                }
                Err(KafkaError::Delivery { topic, source })
            }
            None => Ok(()),
        }
    }

    /// A transaction in an error state that does not say why (its queue
    /// purged, `Local: Purged in queue`; a record refused with `Local:
    /// Erroneous state`): a broker refused its records, which it does when
    /// another instance with the same transactional id has bumped the
    /// producer's epoch. Aborting tells: a fenced producer's abort fails
    /// as fenced ([`KafkaError::Fenced`], returned); otherwise the
    /// transaction is aborted and the caller says its own error.
    fn fenced_on_abort(&mut self) -> Result<(), KafkaError> {
        if self.transactional.is_none() || !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        let _ = flush_promptly(&self.producer, COMMIT_STEP);
        // (what the group held after this instance's last commit: another
        // instance's commit changes it, as for an unanswered commit)
        let mut held_tpl = TopicPartitionList::new();
        for (t, p, o) in self.group_held.clone().unwrap_or_default() {
            let offset = o.map_or(Offset::Invalid, Offset::Offset);
            let _ = held_tpl.add_partition_offset(&t, p, offset);
        }

        let fenced = |this: &Self, source| KafkaError::Fenced {
            transactional_id: this.transactional_id(),
            source,
        };
        let start = Instant::now();
        // In steps: a broker may not answer a fenced producer's EndTxn
        // (tansu does not), and the group tells meanwhile.
        loop {
            match self.producer.abort_transaction(COMMIT_STEP) {
                Ok(()) => break,
                Err(e) if fencing(&e) => return Err(fenced(self, e)),
                Err(e) if retriable(&e) && start.elapsed() < self.retry.limit => {
                    if let Some(source) = self.fenced() {
                        return Err(fenced(self, source));
                    }
                    if held_tpl.count() > 0 {
                        if let Some(error) = self.superseded(&held_tpl) {
                            return Err(error);
                        }
                    } else if let Some(error) = self.marker_moved() {
                        return Err(error);
                    }
                }
                Err(_) => break,
            }
        }
        let _ = self.failed.lock().map(|mut f| f.take());
        match self.fenced() {
            Some(source) => Err(fenced(self, source)),
            None => Ok(()),
        }
    }

    /// Queues one record of `kind`, keyed by `key` (the partition key: a
    /// key's records go to one partition, in order). A transactional sink
    /// begins a transaction at the first write after a commit.
    pub fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) -> Result<(), KafkaError> {
        self.write_to(To::Output(kind), key, record)
    }

    /// [`KafkaSink::write`] to `to`.
    fn write_to(&mut self, to: To<'_>, key: &[u8], record: &[u8]) -> Result<(), KafkaError> {
        self.begin()?;
        self.send(to, key, record)?;
        // (delivery reports served, and a failed one seen, every few
        // records: each poll takes the queue's lock; a flush, a
        // checkpoint and the end serve them all)
        if self.since_watched % POLL_RECORDS == 0 {
            self.producer.poll(Duration::ZERO);
            self.check_delivery()?;
        }
        self.since_watched += 1;
        if self.since_watched >= WATCH_RECORDS {
            self.since_watched = 0;
            self.watch_tick()?;
        }
        Ok(())
    }

    /// Queues one record (to a partition by its key, unless `to` names
    /// one), waiting while the queue is full.
    fn send(&mut self, to: To<'_>, key: &[u8], record: &[u8]) -> Result<(), KafkaError> {
        let (topic, partition) = match to {
            To::Output(kind) => (self.topics.topic(kind), None),
            To::Keyed(topic) => (topic, None),
            To::Marker(topic, partition) => (topic, Some(partition)),
        };
        // (the interval's number as text, for a transactional sink's
        // header, without an allocation per record)
        let mut digits = [0u8; 20];
        let interval = self.transactional.is_some().then(|| {
            let mut at = &mut digits[..];
            write!(at, "{}", self.interval).expect("a u64 fits in 20 digits");
            let left = at.len();
            &digits[..20 - left]
        });
        let mut waited = Duration::ZERO;
        loop {
            let mut base = BaseRecord::to(topic).key(key).payload(record);
            if let Some(p) = partition {
                base = base.partition(p);
            }
            if let Some(interval) = interval {
                base = base.headers(OwnedHeaders::new().insert(Header {
                    key: CHECKPOINT_HEADER,
                    value: Some(interval),
                }));
            }
            let sent = self.producer.send(base);
            match sent {
                Ok(()) => break,
                Err((e, _)) if code_of(&e) == Some(RDKafkaErrorCode::QueueFull) => {
                    if waited >= self.retry.limit {
                        return Err(KafkaError::Unreachable {
                            operation: "write",
                            waited,
                            source: e,
                        });
                    }
                    // Full: serve the delivery reports, try again.
                    self.producer.poll(Duration::from_millis(100));
                    self.reach.tick(&|| self.probe());
                    waited += Duration::from_millis(100);
                }
                Err((e, _)) => {
                    // (a delivery that failed may have put the transaction
                    // in an error state, `Local: Erroneous state` here:
                    // its report, served now, says why, a fencing for one)
                    self.producer.poll(Duration::from_millis(50));
                    self.check_delivery()?;
                    if code_of(&e) == Some(RDKafkaErrorCode::State) {
                        self.fenced_on_abort()?;
                    }
                    return Err(self.txn_error("write")(e));
                }
            }
        }
        Ok(())
    }

    /// Waits until every queued record is delivered (or the retry limit
    /// passes: [`KafkaError::Unreachable`]).
    pub fn flush(&mut self) -> Result<(), KafkaError> {
        self.watch_tick()?;
        let producer = &self.producer;
        let error = self.txn_error("flush");
        let watch = Watch {
            reach: &self.reach,
            probe: &|| self.probe(),
            answers: false,
        };
        self.retry
            .run_watched("flush", &watch, |t| flush_promptly(producer, t), error)?;
        self.check_delivery()
    }

    /// Before the checkpoint `checkpoint` is written: every record of the
    /// interval is on the broker (in the open transaction, for a
    /// transactional sink).
    pub fn prepare(&mut self, checkpoint: u64) -> Result<(), KafkaError> {
        let _ = checkpoint;
        self.flush()
    }

    fn marker(&self) -> Option<(String, i32)> {
        let t = self.transactional.as_ref()?;
        Some(
            t.marker
                .clone()
                .unwrap_or_else(|| (self.topics.all()[0].to_string(), 0)),
        )
    }

    /// After checkpoint `checkpoint` is durable: a transactional sink
    /// commits the interval's records together with `source` (as the
    /// group's committed offsets) and the checkpoint's number (the
    /// marker's offset), in one transaction; an idempotent sink flushes.
    /// A transaction that cannot commit is aborted and the error returned:
    /// the caller resumes from the checkpoint before (see
    /// [`KafkaSink::recover`]).
    pub fn commit(&mut self, checkpoint: u64, source: &KafkaPosition) -> Result<(), KafkaError> {
        if self.transactional.is_none() {
            return self.flush();
        }
        self.begin()?;
        let tpl = self.transaction_offsets(checkpoint, source)?;
        let result = self
            .send_offsets(&tpl)
            .and_then(|()| self.commit_transaction(&tpl));
        if let Err(error) = result {
            // (a broker that lost the transactional id has no transaction
            // to abort: it would be retried up to the limit in vain)
            let lost = matches!(error, KafkaError::StateLost { .. });
            if !error.is_fenced() && !lost {
                let _ = self.abort();
            }
            self.in_transaction = false;
            return Err(error);
        }
        self.group_held = Some(held(&tpl));
        self.in_transaction = false;
        self.interval = checkpoint + 1;
        self.check_delivery()
    }

    /// The offsets checkpoint `checkpoint` commits: the source's, and the
    /// marker's (its offset is the checkpoint's number). A marker topic of
    /// its own gets a record in the transaction.
    fn transaction_offsets(
        &mut self,
        checkpoint: u64,
        source: &KafkaPosition,
    ) -> Result<TopicPartitionList, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in source.iter() {
            tpl.add_partition_offset(t, p, Offset::Offset(o))
                .map_err(|e| KafkaError::client("send_offsets_to_transaction", e))?;
        }
        if let Some((t, p)) = self.marker() {
            let n = i64::try_from(checkpoint).map_err(|_| KafkaError::Config {
                reason: format!("checkpoint number {checkpoint} is too large"),
            })?;
            let own = [&self.audit, &self.shadow, &self.decisions]
                .into_iter()
                .any(|o| o.as_deref() == Some(t.as_str()));
            if !self.topics.all().contains(&t.as_str()) && !own {
                // A marker topic of its own: a record there in each
                // transaction, so that none is without records (tansu
                // drops the offsets of a transaction without records).
                let text = format!("{{\"checkpoint\":{checkpoint}}}");
                self.send(To::Marker(&t, p), b"", text.as_bytes())?;
            }
            tpl.add_partition_offset(&t, p, Offset::Offset(n))
                .map_err(|e| KafkaError::client("send_offsets_to_transaction", e))?;
        }
        Ok(tpl)
    }

    /// Sends `tpl` to the open transaction (after reading what the group
    /// holds, before this instance's first commit), retried with backoff
    /// up to the limit. librdkafka's `send_offsets_to_transaction` does
    /// not always keep its timeout: with the broker gone at the wrong
    /// moment its call was seen waiting for good (the reply of its
    /// internal request never came; gdb: `rd_kafka_txn_op_req1(...,
    /// RD_POLL_INFINITE)`), and the run with it, saying nothing. So each
    /// call runs on a thread of its own, waited for in steps of
    /// [`STEP`](crate::retry::STEP) that look at the brokers; past the
    /// limit the broker is said unreachable and the call is left behind
    /// (the run then ends).
    fn send_offsets(&mut self, tpl: &TopicPartitionList) -> Result<(), KafkaError> {
        if self.group_held.is_none() {
            self.group_held = Some(self.read_group(tpl, false)?);
        }
        let (_, metadata) = self
            .group
            .as_ref()
            .expect("a transactional sink has a group");
        let metadata = Arc::clone(metadata);
        const OPERATION: &str = "send_offsets_to_transaction";
        let error = self.txn_error(OPERATION);
        let start = Instant::now();
        let mut backoff = self.retry.first_backoff;
        loop {
            let left =
                (self.retry.limit.saturating_sub(start.elapsed())).max(Duration::from_millis(100));
            let (tx, rx) = std::sync::mpsc::channel();
            let (producer, metadata, offsets) = (
                Arc::clone(&self.producer),
                Arc::clone(&metadata),
                tpl.clone(),
            );
            std::thread::Builder::new()
                .name("cepheid-kafka-offsets".to_string())
                .spawn(move || {
                    let sent = producer.send_offsets_to_transaction(&offsets, &metadata, left);
                    let _ = tx.send(sent);
                })
                .map_err(|e| KafkaError::Config {
                    reason: format!("cannot start a thread: {e}"),
                })?;
            let answer = loop {
                match rx.recv_timeout(crate::retry::STEP) {
                    Ok(sent) => break Some(sent),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        self.reach
                            .failed_with(&"send_offsets_to_transaction: no answer");
                        self.reach.tick(&|| self.probe());
                        // (a broker that does not answer a fenced producer:
                        // the group tells, as for the commit)
                        if let Some(fenced) = self.superseded(tpl) {
                            return Err(fenced);
                        }
                        if start.elapsed() >= self.retry.limit + crate::retry::STEP {
                            break None;
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
                }
            };
            let gave_up = answer.is_none();
            let source = match answer {
                Some(Ok(())) => {
                    self.reach.answered();
                    return Ok(());
                }
                Some(Err(e)) if retriable(&e) => e,
                Some(Err(e)) => return Err(error(e)),
                None => ClientError::Global(RDKafkaErrorCode::OperationTimedOut),
            };
            self.reach.failed(&source);
            self.reach.tick(&|| self.probe());
            if let Some(fenced) = self.superseded(tpl) {
                return Err(fenced);
            }
            let timed_out = code_of(&source) == Some(RDKafkaErrorCode::OperationTimedOut);
            if gave_up || start.elapsed() + backoff >= self.retry.limit {
                return Err(KafkaError::Unreachable {
                    operation: OPERATION,
                    waited: start.elapsed(),
                    source,
                });
            }
            if !timed_out {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(self.retry.max_backoff);
            }
        }
    }

    /// `commit_transaction`, retried with backoff up to the limit, in
    /// calls of at most [`COMMIT_STEP`] (librdkafka resumes the commit on
    /// the next call). After a call that timed out, the group is asked
    /// whether another instance has taken over: a broker is meant to fence
    /// this producer then (and does, on a record it sends), but one that
    /// never answers the old instance's `EndTxn` (tansu closes the
    /// connection) would leave it waiting for the whole limit and then
    /// report an unreachable broker instead.
    fn commit_transaction(&self, ours: &TopicPartitionList) -> Result<(), KafkaError> {
        let start = Instant::now();
        let mut backoff = self.retry.first_backoff;
        let error = self.txn_error("commit_transaction");
        loop {
            let left = self.retry.limit.saturating_sub(start.elapsed());
            let step = left.clamp(Duration::from_millis(100), COMMIT_STEP);
            // (what is in flight first, promptly: rust-rdkafka's
            // commit_transaction flushes in polls of 100 ms, which the
            // marker's record, sent just before, would always cost)
            let committed = flush_promptly(&self.producer, step)
                .and_then(|()| self.producer.commit_transaction(step));
            let source = match committed {
                Ok(()) => {
                    self.reach.answered();
                    return Ok(());
                }
                Err(e) if retriable(&e) => e,
                Err(e) => return Err(error(e)),
            };
            self.reach.failed(&source);
            self.reach.tick(&|| self.probe());
            if let Some(fenced) = self.superseded(ours) {
                return Err(fenced);
            }
            if start.elapsed() + backoff >= self.retry.limit {
                return Err(KafkaError::Unreachable {
                    operation: "commit_transaction",
                    waited: start.elapsed(),
                    source,
                });
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }

    /// Whether another instance with this sink's transactional id (and so
    /// its consumer group) has committed since this one last did: the
    /// group holds offsets that are neither what this instance committed
    /// last nor the commit it is waiting for. Only a fenced instance sees
    /// that. `None` when the group cannot be read now (the caller keeps
    /// waiting, up to its limit).
    fn superseded(&self, ours: &TopicPartitionList) -> Option<KafkaError> {
        if let Some(fenced) = self.fenced() {
            return Some(KafkaError::Fenced {
                transactional_id: self.transactional_id(),
                source: fenced,
            });
        }
        // (a broker that lost its state, its topics created again, does
        // not answer either: not another instance)
        if let Some(changed) = self.topics_changed() {
            return Some(changed);
        }
        let now = self.read_group(ours, true).ok()?;
        let before = self.group_held.as_deref().unwrap_or_default();
        let marker = self.marker().expect("transactional");
        match judge(before, &now, &held(ours), (&marker.0, marker.1)) {
            Judged::Waiting => return None,
            Judged::Lost => {
                return Some(KafkaError::StateLost {
                    transactional_id: self.transactional_id(),
                    operation: None,
                })
            }
            Judged::Superseded => {}
        }
        let checkpoint = now
            .iter()
            .find(|(t, p, _)| (t.as_str(), *p) == (marker.0.as_str(), marker.1))
            .and_then(|(_, _, o)| o.and_then(|o| u64::try_from(o).ok()));
        let mut committed = KafkaPosition::new();
        for (t, p, o) in &now {
            if let (Some(o), false) = (o, (t.as_str(), *p) == (marker.0.as_str(), marker.1)) {
                committed.set(t, *p, *o);
            }
        }
        Some(KafkaError::Superseded {
            transactional_id: self.transactional_id(),
            committed_checkpoint: checkpoint,
            committed,
        })
    }

    /// The group's committed offsets for the partitions of `tpl`: asked
    /// `once` (for at most [`COMMIT_STEP`]) or retried up to the limit.
    fn read_group(
        &self,
        tpl: &TopicPartitionList,
        once: bool,
    ) -> Result<Vec<(String, i32, Option<i64>)>, KafkaError> {
        let (consumer, _) = self
            .group
            .as_ref()
            .expect("a transactional sink has a group");
        let mut partitions = TopicPartitionList::new();
        for e in tpl.elements() {
            partitions.add_partition(e.topic(), e.partition());
        }
        let operation = "read the committed offsets";
        let committed = if once {
            consumer
                .committed_offsets(partitions, COMMIT_STEP)
                .map_err(|e| KafkaError::client(operation, e))?
        } else {
            let watch = Watch {
                reach: &self.reach,
                probe: &|| self.probe(),
                answers: true,
            };
            self.retry.run_watched(
                operation,
                &watch,
                |t| consumer.committed_offsets(partitions.clone(), t),
                |e| KafkaError::client(operation, e),
            )?
        };
        Ok(held(&committed))
    }

    /// Aborts the open transaction, if any (its records are never seen by
    /// a `read_committed` consumer).
    pub fn abort(&mut self) -> Result<(), KafkaError> {
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        // A BaseProducer's abort waits for the delivery reports.
        let _ = flush_promptly(&self.producer, self.retry.call_timeout());
        let producer = &self.producer;
        let watch = Watch {
            reach: &self.reach,
            probe: &|| self.probe(),
            answers: false,
        };
        self.retry.run_watched(
            "abort_transaction",
            &watch,
            |t| producer.abort_transaction(t),
            self.txn_error("abort_transaction"),
        )?;
        let _ = self.failed.lock().map(|mut f| f.take());
        Ok(())
    }

    /// On resume: initializes the transactions (which aborts whatever an
    /// earlier instance with the same transactional id left open, and
    /// fences it), then tells which of the `kept` checkpoints (newest
    /// first) the broker committed last ([`KafkaSink::committed`]), from
    /// which the sink goes on.
    pub fn recover(&mut self, kept: &[KeptCheckpoint]) -> Result<Recovery, KafkaError> {
        if self.transactional.is_none() {
            return Err(KafkaError::NotTransactional {
                operation: "recover",
            });
        }
        // Called again on the same instance: its own open transaction is
        // aborted (its transactions are initialized once).
        self.abort()?;
        self.init()?;
        let (recovery, next) = self.read_committed(kept)?;
        self.interval = next;
        self.marker_at_takeover = Some(next.checked_sub(1).filter(|&n| n > 0));
        Ok(recovery)
    }

    /// Before this instance's first commit (nothing it committed to compare
    /// the group with): has the group's marker moved since it took the
    /// transactional id over? Only another instance commits then: it took
    /// over ([`KafkaError::Superseded`]). `None` when not, or when the group
    /// cannot be read now.
    fn marker_moved(&self) -> Option<KafkaError> {
        let then = self.marker_at_takeover?;
        let (t, p) = self.marker()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&t, p);
        let now = self.read_group(&tpl, true).ok()?;
        let now = now
            .iter()
            .find_map(|(_, _, o)| o.and_then(|o| u64::try_from(o).ok()));
        (now != then).then(|| KafkaError::Superseded {
            transactional_id: self.transactional_id(),
            committed_checkpoint: now,
            committed: KafkaPosition::new(),
        })
    }

    /// Which of the `kept` checkpoints (newest first) the broker committed
    /// last, read from the group's committed offsets without taking the
    /// transactional id over (no instance is fenced, nothing aborted): what
    /// [`KafkaSink::recover`] would say, for a process that resumes beside
    /// the one that writes (process 0 of a run on several processes). The
    /// marker's offset names it; each of its source offsets that the group
    /// holds must equal the committed one (the group holds none of a topic
    /// deleted since). No kept
    /// checkpoint matches:
    /// [`KafkaError::NoCheckpointMatches`].
    pub fn committed(&self, kept: &[KeptCheckpoint]) -> Result<Recovery, KafkaError> {
        if self.transactional.is_none() {
            return Err(KafkaError::NotTransactional {
                operation: "committed",
            });
        }
        self.read_committed(kept).map(|(recovery, _)| recovery)
    }

    /// [`KafkaSink::committed`], and the interval of the next transaction.
    fn read_committed(&self, kept: &[KeptCheckpoint]) -> Result<(Recovery, u64), KafkaError> {
        let marker = self.marker().expect("transactional");
        let mut tpl = TopicPartitionList::new();
        for checkpoint in kept {
            for (t, p, _) in checkpoint.position.iter() {
                if tpl.find_partition(t, p).is_none() {
                    tpl.add_partition(t, p);
                }
            }
        }
        tpl.add_partition(&marker.0, marker.1);
        let (consumer, _) = self
            .group
            .as_ref()
            .expect("a transactional sink has a group");
        let committed = self.retry.run(
            "read the committed offsets",
            |t| consumer.committed_offsets(tpl.clone(), t),
            |e| KafkaError::client("read the committed offsets", e),
        )?;
        let mut position = KafkaPosition::new();
        let mut checkpoint = None;
        for e in committed.elements() {
            if let Offset::Offset(o) = e.offset() {
                if (e.topic(), e.partition()) == (marker.0.as_str(), marker.1) {
                    checkpoint = u64::try_from(o).ok();
                } else {
                    position.set(e.topic(), e.partition(), o);
                }
            }
        }
        let Some(n) = checkpoint else {
            if position.is_empty() {
                return Ok((Recovery::NothingCommitted, 1));
            }
            return Err(KafkaError::NoCheckpointMatches {
                committed_checkpoint: None,
                committed: position,
                kept: kept.iter().map(|k| k.id).collect(),
            });
        };
        // The marker names the checkpoint (committed in the same
        // transaction as the offsets); each of its offsets the group holds
        // must be the kept one. One the group lacks is no evidence either
        // way: a topic deleted takes the group's offsets of it along (the
        // source checks each kept offset against its topic as it is now).
        let found = kept.iter().position(|k| {
            k.id == n
                && k.position
                    .iter()
                    .all(|(t, p, o)| position.get(t, p).is_none_or(|c| c == o))
        });
        match found {
            Some(i) => Ok((Recovery::Checkpoint(i), n + 1)),
            None => Err(KafkaError::NoCheckpointMatches {
                committed_checkpoint: Some(n),
                committed: position,
                kept: kept.iter().map(|k| k.id).collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_broker::{topic, Broker};
    use crate::{KeptCheckpoint, Recovery};

    /// Offsets as the group holds them: (topic, partition, offset).
    fn group(offsets: &[(&str, i32, Option<i64>)]) -> Vec<Held> {
        let mut held: Vec<Held> = (offsets.iter())
            .map(|(t, p, o)| (t.to_string(), *p, *o))
            .collect();
        held.sort();
        held
    }

    /// What the group's offsets say while a commit is not answered: the
    /// fault hour's case 20 (a broker restarted without its state, the
    /// topics created again; the group holds this commit's marker and
    /// none of its source offsets) is the broker's lost state, not
    /// another instance.
    #[test]
    fn a_commit_whose_source_offsets_the_broker_dropped_is_its_lost_state_not_another_instance() {
        let marker = ("m", 0);
        let ours = group(&[("in", 0, Some(40)), ("in", 1, Some(7)), ("m", 0, Some(9))]);
        let before = group(&[("in", 0, Some(30)), ("in", 1, Some(5)), ("m", 0, Some(8))]);
        // As before, or this commit's: still waited for.
        assert_eq!(judge(&before, &before, &ours, marker), Judged::Waiting);
        assert_eq!(judge(&before, &ours, &ours, marker), Judged::Waiting);
        // Nothing held any more: lost.
        let empty = group(&[("in", 0, None), ("in", 1, None), ("m", 0, None)]);
        assert_eq!(judge(&before, &empty, &ours, marker), Judged::Lost);
        // This commit's marker, its source offsets gone (before: held,
        // or nothing, as for an instance's first commit): lost.
        let marker_only = group(&[("in", 0, None), ("in", 1, None), ("m", 0, Some(9))]);
        assert_eq!(judge(&before, &marker_only, &ours, marker), Judged::Lost);
        assert_eq!(judge(&empty, &marker_only, &ours, marker), Judged::Lost);
        let one_gone = group(&[("in", 0, Some(40)), ("in", 1, None), ("m", 0, Some(9))]);
        assert_eq!(judge(&empty, &one_gone, &ours, marker), Judged::Lost);
        // Another checkpoint's marker, or offsets this commit does not
        // hold: another instance.
        let other = group(&[("in", 0, None), ("in", 1, None), ("m", 0, Some(12))]);
        assert_eq!(judge(&before, &other, &ours, marker), Judged::Superseded);
        let moved = group(&[("in", 0, Some(41)), ("in", 1, Some(7)), ("m", 0, Some(9))]);
        assert_eq!(judge(&before, &moved, &ours, marker), Judged::Superseded);
        let further = group(&[("in", 0, Some(50)), ("in", 1, Some(9)), ("m", 0, Some(10))]);
        assert_eq!(judge(&before, &further, &ours, marker), Judged::Superseded);
    }

    fn sink(broker: &Broker, topic: &str, id: &str) -> KafkaSink {
        let mut config = SinkConfig::new(broker.bootstrap(), OutputTopics::One(topic.into()));
        config.transactional = Some(Transactional::new(id, id));
        KafkaSink::new(config).expect("a transactional sink")
    }

    fn at(t: &str, offset: i64) -> KafkaPosition {
        let mut p = KafkaPosition::new();
        p.set(t, 0, offset);
        p
    }

    /// The window no public call can open: a second instance takes over
    /// between the first's offsets and its `EndTxn`, and commits. tansu
    /// never answers that `EndTxn` (`tests/it/broker.rs`,
    /// `tansu_does_not_answer_the_commit_of_a_producer_fenced_after_its_last_record`);
    /// without the group probe the first would wait out its 60 s limit and
    /// report an unreachable broker.
    #[test]
    fn an_unanswered_commit_after_another_instance_committed_is_said_fenced() {
        let broker = Broker::start();
        let (input, output) = (topic("window-in"), topic("window-out"));
        broker.create_topic(&input, 1);
        broker.create_topic(&output, 1);
        let mut first = sink(&broker, &output, "window");
        first.write(Kind::Match, b"k", b"one").expect("writes");
        first.commit(1, &at(&input, 1)).expect("commit 1");

        first
            .write(Kind::Match, b"k", b"first-two")
            .expect("writes");
        first.prepare(2).expect("on the broker");
        first.begin().expect("in the transaction");
        let tpl = first
            .transaction_offsets(2, &at(&input, 3))
            .expect("offsets");
        first.send_offsets(&tpl).expect("offsets sent");

        let mut second = sink(&broker, &output, "window");
        let kept = KeptCheckpoint {
            id: 1,
            position: at(&input, 1),
        };
        assert_eq!(
            second.recover(&[kept]).expect("recovers"),
            Recovery::Checkpoint(0)
        );
        second
            .write(Kind::Match, b"k", b"second-two")
            .expect("writes");
        second.commit(2, &at(&input, 5)).expect("commit 2");

        let started = Instant::now();
        let error = first
            .commit_transaction(&tpl)
            .expect_err("the first instance was taken over");
        eprintln!("after {:?}: {error}", started.elapsed());
        match &error {
            KafkaError::Superseded {
                transactional_id,
                committed_checkpoint,
                committed,
            } => {
                assert_eq!(transactional_id, "window");
                assert_eq!(*committed_checkpoint, Some(2));
                assert_eq!(*committed, at(&input, 5));
            }
            other => panic!("not superseded: {other:?}"),
        }
        assert!(error.is_fenced());
        assert!(
            error.to_string().contains(
                r#"another instance with transactional id "window" took over; this one stops"#
            ),
            "{error}"
        );
    }
}
