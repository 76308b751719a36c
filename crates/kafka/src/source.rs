//! The Kafka source: explicit partition assignment (no consumer group
//! rebalancing), the offsets kept by the caller's checkpoints
//! ([`KafkaSource::position`], [`KafkaSource::seek`]), records handed out
//! as bytes with where they came from.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::error::{retriable, KafkaError};
use crate::position::KafkaPosition;
use crate::retry::Retry;

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
    /// starts at its first record.
    Position(KafkaPosition),
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
    /// Bounded: read up to each partition's end offset as the broker
    /// gives it when the source starts (its high watermark), then end
    /// ([`KafkaSource::at_end`]); records after it are not handed out.
    pub until_end: bool,
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
            until_end: false,
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

impl KafkaRecord {
    /// True for a record without a value.
    pub fn is_tombstone(&self) -> bool {
        self.payload.is_none()
    }
}

/// What one [`KafkaSource::read`] did. A Kafka source does not end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// This many records were appended.
    Delivered(usize),
    /// Nothing came within the wait.
    Idle,
}

/// Reads assigned partitions of one or more topics.
pub struct KafkaSource {
    consumer: BaseConsumer,
    topics: Vec<String>,
    splits: Vec<(String, i32)>,
    index: HashMap<String, HashMap<i32, usize>>,
    position: KafkaPosition,
    max_batch: usize,
    retry: Retry,
    /// Since when the broker has seemed unreachable.
    down_since: Option<(Instant, ClientError)>,
    /// Bounded: each partition's end offset at the start.
    end: Option<KafkaPosition>,
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

impl KafkaSource {
    /// Connects, checks that the topics and partitions exist, resolves
    /// the start to offsets and assigns them.
    pub fn new(config: SourceConfig) -> Result<KafkaSource, KafkaError> {
        if config.topics.is_empty() {
            return Err(KafkaError::Config {
                reason: "a Kafka source needs at least one topic".to_string(),
            });
        }
        let mut client_config = ClientConfig::new();
        client_config
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
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
        let consumer: BaseConsumer = client_config
            .create()
            .map_err(|e| KafkaError::client("create the consumer", e))?;
        let retry = config.retry;

        // The partitions of each topic, from the broker's metadata.
        let mut splits = Vec::new();
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

        // The start, as offsets.
        let mut position = KafkaPosition::new();
        let watermarks = |t: &str, p: i32| {
            retry.run(
                "fetch watermarks",
                |left| consumer.fetch_watermarks(t, p, left),
                client("fetch watermarks"),
            )
        };
        let by_time = match &config.start {
            StartAt::Timestamp(ts) => {
                let mut tpl = TopicPartitionList::new();
                for (t, p) in &splits {
                    tpl.add_partition_offset(t, *p, Offset::Offset(*ts))
                        .map_err(client("offsets_for_times"))?;
                }
                Some(retry.run(
                    "offsets_for_times",
                    |left| consumer.offsets_for_times(tpl.clone(), left),
                    client("offsets_for_times"),
                )?)
            }
            _ => None,
        };
        for (t, p) in &splits {
            let next = match &config.start {
                StartAt::Earliest => watermarks(t, *p)?.0,
                StartAt::Latest => watermarks(t, *p)?.1,
                StartAt::Timestamp(_) => {
                    let found = by_time
                        .as_ref()
                        .and_then(|tpl| tpl.find_partition(t, *p))
                        .map(|e| e.offset());
                    match found {
                        Some(Offset::Offset(o)) => o,
                        _ => watermarks(t, *p)?.1,
                    }
                }
                StartAt::Position(at) => match at.get(t, *p) {
                    Some(o) => o,
                    None => watermarks(t, *p)?.0,
                },
            };
            position.set(t, *p, next);
        }
        let end = if config.until_end {
            let mut end = KafkaPosition::new();
            for (t, p) in &splits {
                end.set(t, *p, watermarks(t, *p)?.1);
            }
            Some(end)
        } else {
            None
        };
        let mut index: HashMap<String, HashMap<i32, usize>> = HashMap::new();
        for (i, (t, p)) in splits.iter().enumerate() {
            index.entry(t.clone()).or_default().insert(*p, i);
        }
        let mut source = KafkaSource {
            consumer,
            topics: config.topics,
            splits,
            index,
            position,
            max_batch: config.max_batch.max(1),
            retry,
            down_since: None,
            end,
        };
        source.assign()?;
        Ok(source)
    }

    fn assign(&mut self) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in self.position.iter() {
            tpl.add_partition_offset(t, p, Offset::Offset(o))
                .map_err(client("assign"))?;
        }
        self.consumer.assign(&tpl).map_err(client("assign"))
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
        let mut delivered = 0;
        let mut timeout = wait;
        while delivered < self.max_batch {
            let Some(result) = self.consumer.poll(timeout) else {
                break;
            };
            timeout = Duration::ZERO;
            match result {
                Ok(message) => {
                    self.down_since = None;
                    let topic = message.topic();
                    let partition = message.partition();
                    let Some(split) = self
                        .index
                        .get(topic)
                        .and_then(|m| m.get(&partition))
                        .copied()
                    else {
                        continue; // not ours (a stale fetch after seek)
                    };
                    let end = self.end.as_ref().and_then(|e| e.get(topic, partition));
                    if end.is_some_and(|end| message.offset() >= end) {
                        continue; // bounded: after the end
                    }
                    self.position.set(topic, partition, message.offset() + 1);
                    batch.push(KafkaRecord {
                        topic: topic.to_string(),
                        partition,
                        offset: message.offset(),
                        split,
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().map(<[u8]>::to_vec),
                        timestamp: message.timestamp().to_millis(),
                    });
                    delivered += 1;
                }
                Err(error) => self.on_error(error)?,
            }
        }
        self.check_down()?;
        Ok(if delivered == 0 {
            Read::Idle
        } else {
            Read::Delivered(delivered)
        })
    }

    fn on_error(&mut self, error: ClientError) -> Result<(), KafkaError> {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                Err(KafkaError::UnknownTopic {
                    topic: self.topics.join(","),
                })
            }
            _ if retriable(&error) => {
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

    /// Bounded ([`SourceConfig::until_end`]): has every partition been
    /// read to its end offset? Always false otherwise.
    pub fn at_end(&self) -> bool {
        self.end.as_ref().is_some_and(|end| {
            end.iter()
                .all(|(t, p, o)| self.position.get(t, p).is_some_and(|at| at >= o))
        })
    }

    /// Bounded: each partition's end offset, read at the start.
    pub fn end(&self) -> Option<&KafkaPosition> {
        self.end.as_ref()
    }

    /// Per (topic, partition), the offset after the last record handed
    /// out (where it started, for a partition that delivered nothing).
    pub fn position(&self) -> KafkaPosition {
        self.position.clone()
    }

    /// Goes back (or forward) to `position`: each partition it names
    /// restarts at its offset; the others stay where they are; a partition
    /// the source does not read is ignored (another worker's).
    pub fn seek(&mut self, position: &KafkaPosition) -> Result<(), KafkaError> {
        for (t, p, o) in position.iter() {
            if self.position.get(t, p).is_some() {
                self.position.set(t, p, o);
            }
        }
        self.assign()
    }
}
