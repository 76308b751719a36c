//! The source and sink as the runtime's [`Source`] and [`Sink`]: what
//! `cepheid run` drives (`cepheid_runtime::Runtime::with_source`).
//!
//! - The source's position in a checkpoint is
//!   [`Position::Bytes`] holding its [`KafkaPosition`] in `postcard`
//!   ([`encode_position`], [`decode_position`]). Each record goes up with
//!   its split (the index of its topic and partition in
//!   [`KafkaSource::splits`]), `Origin::Offset` (partition, offset) and
//!   its Kafka timestamp; a record without a value (a tombstone) goes up
//!   empty, which the runtime reports as malformed. Watermarks are the
//!   runtime's per split (`Config::split_watermarks`), from the event
//!   time of each decoded record: the source does not decode, so it
//!   emits none itself.
//! - The sink's [`Sink::recover`] maps [`Recovery`] to the index of the
//!   kept checkpoint; [`Recovery::NothingCommitted`] is "start from the
//!   beginning" (`kept.len()`) only while every kept checkpoint is the
//!   first (number 1 or less): a later one kept with nothing committed
//!   means the group's committed offsets are gone (expired), an error.
//!   An idempotent sink (no transactions) resumes from the newest.
//!
//! Errors go up as `io::Error`s wrapping the [`KafkaError`]
//! ([`kafka_error`] finds it again).

use std::io;
use std::time::Duration;

use cepheid_runtime::sink::{Checkpoint, Kind as RunKind, Sink, SinkError, SinkState};
use cepheid_runtime::source::{
    Judged, Origin, Position, RawBatch, ReadOutcome, Source, SourceError, SplitLag, Unapplied,
};
use cepheid_runtime::Notify;

use crate::error::KafkaError;
use crate::position::KafkaPosition;
use crate::sink::{KafkaSink, KeptCheckpoint, Kind, Recovery};
use crate::source::{KafkaRecord, KafkaSource, Read, RecordRef};

/// A Kafka position as the bytes of a [`Position::Bytes`].
pub fn encode_position(position: &KafkaPosition) -> Position {
    Position::Bytes(postcard::to_allocvec(position).expect("a map of strings and integers"))
}

/// The Kafka position in `position`, or why it is none. A position
/// written before the marks ([`crate::Mark`]) reads as its offsets alone.
pub fn decode_position(position: &Position) -> Result<KafkaPosition, KafkaError> {
    decode_marked(position).map(|(at, _)| at)
}

/// [`decode_position`], and whether the position was written before the
/// marks.
fn decode_marked(position: &Position) -> Result<(KafkaPosition, bool), KafkaError> {
    match position {
        Position::Bytes(bytes) => {
            KafkaPosition::from_postcard(bytes).map_err(|e| KafkaError::Config {
                reason: format!("a checkpoint's source position is not a Kafka position: {e}"),
            })
        }
        Position::None => Ok((KafkaPosition::new(), false)),
        Position::File(_) => Err(KafkaError::Config {
            reason: "the checkpoint was taken on a file, not on Kafka".to_string(),
        }),
    }
}

/// The [`KafkaError`] inside a runtime error's `io::Error`, if it is one.
pub fn kafka_error(error: &io::Error) -> Option<&KafkaError> {
    error.get_ref()?.downcast_ref::<KafkaError>()
}

/// The [`KafkaError`] a run could not start with or stopped on (inside
/// its source's or its sink's error), if it is one.
pub fn kafka_error_of(error: &cepheid_runtime::Error) -> Option<&KafkaError> {
    match error {
        cepheid_runtime::Error::Source(e) => kafka_error(&e.error),
        cepheid_runtime::Error::Sink(e) => kafka_error(&e.source),
        _ => None,
    }
}

/// A record's payload (empty for a tombstone, which the decoder reports),
/// its place for messages, and its split.
fn placed(r: &KafkaRecord) -> (&[u8], Origin, u32) {
    let origin = Origin::Offset {
        partition: u32::try_from(r.partition).unwrap_or(0),
        offset: r.offset,
    };
    let split = u32::try_from(r.split).unwrap_or(u32::MAX);
    (r.payload.as_deref().unwrap_or_default(), origin, split)
}

fn io_error(error: KafkaError) -> io::Error {
    io::Error::other(error)
}

impl KafkaSource {
    fn run_error(&self, error: KafkaError) -> SourceError {
        SourceError {
            source_name: self.describe(),
            error: io_error(error),
        }
    }
}

impl Source for KafkaSource {
    fn describe(&self) -> String {
        KafkaSource::describe(self)
    }

    fn read(&mut self, batch: &mut RawBatch, wait: Duration) -> Result<ReadOutcome, SourceError> {
        let ended = self.at_end();
        // (each payload copied once, from the consumer's message into the
        // batch)
        let first = batch.len();
        let read = match ended {
            // (the rules topic still read to its end: a resumed run whose
            // events were all read before takes the rules records since)
            true => Read::Idle,
            false => {
                let mut each = |r: RecordRef<'_>| {
                    let origin = Origin::Offset {
                        partition: u32::try_from(r.partition).unwrap_or(0),
                        offset: r.offset,
                    };
                    let split = u32::try_from(r.split).unwrap_or(u32::MAX);
                    // (a tombstone goes up empty: the decoder reports it)
                    batch.push(r.payload.unwrap_or_default(), origin, r.timestamp, split);
                };
                match KafkaSource::read_with(self, wait, &mut each) {
                    Ok(read) => read,
                    Err(e) => return Err(self.run_error(e)),
                }
            }
        };
        let events = batch.len() > first;
        // The rules topic's records (asked after the events: one written
        // before an event goes up with it or before), first: the reader
        // holds each until the events' watermark reaches its time.
        let mut rules = Vec::new();
        if let Err(e) = self.read_rules(&mut rules) {
            return Err(self.run_error(e));
        }
        let before_rules = batch.len();
        for r in &rules {
            let (payload, origin, split) = placed(r);
            match self.list_change(r) {
                // (a list's topic: the `$list` record it means, at its
                // time)
                Some(Ok(change)) => batch.push_rules(&change, origin, r.timestamp, split),
                Some(Err(why)) => batch.push_refused_rules(&why, origin, r.timestamp, split),
                None => batch.push_rules(payload, origin, r.timestamp, split),
            }
            // (read again on resuming: held then, judged as then)
            match self.held_before(r) {
                Some(None) => batch.judged_before(Judged::Waits),
                Some(Some(w)) => batch.judged_before(Judged::Ahead(w)),
                None => {}
            }
        }
        // (the rules records go up before the events read with them)
        if events && batch.len() > before_rules {
            batch.move_before(before_rules, first);
        }
        Ok(if matches!(read, Read::CaughtUp(_)) {
            ReadOutcome::CaughtUp
        } else if events || !rules.is_empty() {
            ReadOutcome::Delivered
        } else if ended || self.at_end() {
            ReadOutcome::Ended
        } else {
            ReadOutcome::Idle
        })
    }

    fn position(&self) -> Position {
        encode_position(&KafkaSource::position(self))
    }

    /// Each topic of control records at its first record not applied,
    /// with how the run judged those it holds from there on
    /// ([`crate::Held`]).
    fn position_before(&self, unapplied: &[Unapplied]) -> Position {
        // (each topic's records wait in order: from its first)
        let mut first: Vec<(usize, i64)> = Vec::new();
        let mut held: Vec<(usize, i64, Option<i64>)> = Vec::new();
        for u in unapplied {
            let split = u.split as usize;
            if let Origin::Offset { offset, .. } = u.origin {
                if self.control_topic(split).is_none() {
                    continue;
                }
                if !first.iter().any(|(s, _)| *s == split) {
                    first.push((split, offset));
                }
                let ahead = match u.judged {
                    Judged::Waits => None,
                    Judged::Ahead(w) => Some(w),
                };
                held.push((split, offset, ahead));
            }
        }
        encode_position(&self.position_with_controls_at(&first, &held))
    }

    /// A position written before the marks ([`crate::Mark`]) is sought
    /// without the check that its topics are the ones it was taken on
    /// (said once).
    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        let (at, unmarked) = decode_marked(position).map_err(|e| self.run_error(e))?;
        if unmarked && !at.is_empty() {
            self.say_once_unmarked();
        }
        KafkaSource::seek(self, &at).map_err(|e| self.run_error(e))
    }

    fn splits(&self) -> usize {
        KafkaSource::splits(self).len()
    }

    /// `topic/partition` of each partition of events.
    fn split_names(&self) -> Option<Vec<String>> {
        let splits = KafkaSource::splits(self);
        Some(splits.iter().map(|(t, p)| format!("{t}/{p}")).collect())
    }

    /// Each partition's offset from the share that names it
    /// ([`KafkaPosition::of_shares`]), and each topic of control records
    /// it reads (the rules topic, lists' topics).
    fn position_of_shares(&self, positions: &[Position]) -> Result<Position, SourceError> {
        let shares = (positions.iter())
            .map(decode_position)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.run_error(e))?;
        // (its partitions of events, and the topics of control records it
        // reads: a rules topic's, a list's offset from the share that
        // read it)
        let mut partitions = KafkaSource::splits(self).to_vec();
        partitions.extend(self.control_partitions());
        KafkaPosition::of_shares(&shares, &partitions)
            .map(|at| encode_position(&at))
            .map_err(|(topic, partition, a, b)| {
                self.run_error(KafkaError::Config {
                    reason: format!(
                        "the checkpoint's sources name partition {partition} of topic {topic:?} at two offsets, {a} and {b}"
                    ),
                })
            })
    }

    fn bounded(&self) -> bool {
        self.end().is_some()
    }

    fn lag(&self) -> Option<Vec<SplitLag>> {
        let lag = KafkaSource::lag(self)?;
        Some(
            lag.into_iter()
                .map(|p| SplitLag {
                    topic: p.topic,
                    partition: u32::try_from(p.partition).unwrap_or(0),
                    records: p.records,
                })
                .collect(),
        )
    }

    /// Each partition's end asked now ([`KafkaSource::lag_now`]).
    fn lag_now(&mut self, splits: &[usize]) -> Option<Vec<u64>> {
        KafkaSource::lag_now(self, splits)
    }

    fn notify_to(&mut self, notify: Notify) {
        KafkaSource::notify_to(self, notify);
    }

    fn describe_origin(&self, split: u32, origin: &Origin) -> String {
        let splits = KafkaSource::splits(self);
        let topic = match splits.get(split as usize) {
            Some((t, _)) => t.as_str(),
            // (after the partitions of events: the rules topic, the
            // lists' topics)
            None => self.control_topic(split as usize).map_or("?", |(t, _)| t),
        };
        match origin {
            // (the form `cepheid_runtime::audit::Origin::of_place` reads
            // back as a record of a topic: keep them together)
            Origin::Offset { partition, offset } => {
                format!("kafka:{topic} partition {partition} offset {offset}")
            }
            Origin::Line(n) => format!("kafka:{topic} record {n}"),
        }
    }
}

/// The topic kind of a record kind; `None` for a shadow pattern's record
/// or an audit record, which go to topics of their own when the sink takes
/// them (`SinkConfig::shadow`, `SinkConfig::audit`; a run that has them
/// and a sink that does not is refused before it starts), and for a
/// decision, which goes to a topic of its own too (`SinkConfig::decisions`;
/// a run with a decisions file and a Kafka sink without one is refused
/// before it starts).
fn kind(kind: RunKind) -> Option<Kind> {
    match kind {
        RunKind::Match => Some(Kind::Match),
        RunKind::Timeout => Some(Kind::Timeout),
        RunKind::Late => Some(Kind::Late),
        RunKind::Shadow | RunKind::Audit | RunKind::Decision => None,
    }
}

impl KafkaSink {
    fn run_error(&mut self, late: bool, error: KafkaError) -> SinkError {
        if error.is_fenced() && self.fenced_by.is_none() {
            self.fenced_by = Some(error.clone());
        }
        SinkError {
            target: self.describe(),
            late,
            source: io_error(error),
        }
    }

    /// Fenced before: the same error again.
    pub(crate) fn still(&mut self, late: bool) -> Result<(), SinkError> {
        match self.fenced_by.clone() {
            Some(e) => Err(self.run_error(late, e)),
            None => Ok(()),
        }
    }
}

impl Sink for KafkaSink {
    fn describe(&self, k: RunKind) -> String {
        match kind(k) {
            Some(k) => format!("kafka:{}", self.topic(k)),
            None if k == RunKind::Decision => match self.decisions_topic() {
                Some(topic) => format!("kafka:{topic}"),
                None => "a decisions file (a Kafka output has none)".to_string(),
            },
            None if k == RunKind::Audit => match self.audit_topic() {
                Some(topic) => format!("kafka:{topic}"),
                None => "an audit file (a Kafka output has none)".to_string(),
            },
            None => match self.shadow_topic() {
                Some(topic) => format!("kafka:{topic}"),
                None => "a shadow output (a Kafka output has none)".to_string(),
            },
        }
    }

    fn takes_late(&self) -> bool {
        KafkaSink::takes_late(self)
    }

    fn takes_shadow(&self) -> bool {
        self.shadow_topic().is_some()
    }

    fn takes_audit(&self) -> bool {
        self.audit_topic().is_some()
    }

    fn takes_decisions(&self) -> bool {
        self.decisions_topic().is_some()
    }

    fn write(&mut self, k: RunKind, key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        self.still(k == RunKind::Late)?;
        if let (RunKind::Audit, Some(_)) = (k, self.audit_topic()) {
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            return KafkaSink::write_audit(self, record).map_err(|e| self.run_error(true, e));
        }
        if let (RunKind::Decision, Some(_)) = (k, self.decisions_topic()) {
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            return KafkaSink::write_decision(self, key, record)
                .map_err(|e| self.run_error(true, e));
        }
        if let (RunKind::Shadow, Some(_)) = (k, self.shadow_topic()) {
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            return KafkaSink::write_shadow(self, key, record).map_err(|e| self.run_error(true, e));
        }
        let Some(topic_kind) = kind(k) else {
            return Err(SinkError {
                target: Sink::describe(self, k),
                late: true,
                source: std::io::Error::other(match k {
                    RunKind::Audit => "a Kafka output takes no audit records",
                    RunKind::Decision => "a Kafka output takes no decisions",
                    _ => "a Kafka output takes no shadow records",
                }),
            });
        };
        // (the line without its newline: one record a value)
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        KafkaSink::write(self, topic_kind, key, record)
            .map_err(|e| self.run_error(k == RunKind::Late, e))
    }

    fn commits_at_end(&self) -> bool {
        self.is_transactional()
    }

    /// A transactional sink's records are visible to `read_committed`
    /// readers only once a checkpoint commits them.
    fn commits_with_checkpoints(&self) -> bool {
        self.is_transactional()
    }

    fn notify_to(&mut self, notify: Notify) {
        KafkaSink::notify_to(self, notify);
    }

    /// A transaction commits what was written before its commit: the run
    /// waits for each checkpoint's file (a transactional sink as `cepheid
    /// run` and `cepheid serve` open it, [`crate::CommitApart`], holds
    /// what is written meanwhile for the next transaction instead). An
    /// idempotent sink's commit only flushes (at least once): the run goes
    /// on meanwhile.
    fn writes_before_commit(&self) -> bool {
        !self.is_transactional()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.still(false)?;
        KafkaSink::flush(self).map_err(|e| self.run_error(false, e))
    }

    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError> {
        self.still(false)?;
        KafkaSink::prepare(self, checkpoint).map_err(|e| self.run_error(false, e))?;
        Ok(SinkState::default())
    }

    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        self.still(false)?;
        // (a file's position, when the input is a file, or another
        // source's of its own: the marker alone)
        let at = self
            .source_position(source)
            .map_err(|e| self.run_error(false, e))?;
        KafkaSink::commit(self, checkpoint, &at).map_err(|e| self.run_error(false, e))
    }

    /// Every partition's offset, each from the share that names it (a
    /// file's position, when the input is a file, holds none: the marker
    /// alone is committed then). Two offsets for one partition are an
    /// error: the shares of one checkpoint are disjoint.
    fn join_positions(&self, shares: &[Position]) -> Result<Position, SinkError> {
        let error = |e: KafkaError| SinkError {
            target: self.describe(),
            late: false,
            source: io_error(e),
        };
        let mut decoded = Vec::with_capacity(shares.len());
        let mut partitions = Vec::new();
        let kafka = |s: &&Position| matches!(s, Position::Bytes(_)) && !self.foreign_source;
        for share in shares.iter().filter(kafka) {
            let position = decode_position(share).map_err(error)?;
            partitions.extend(position.iter().map(|(t, p, _)| (t.to_string(), p)));
            decoded.push(position);
        }
        KafkaPosition::of_shares(&decoded, &partitions)
            .map(|at| encode_position(&at))
            .map_err(|(topic, partition, a, b)| {
                error(KafkaError::Config {
                    reason: format!(
                        "the checkpoint's sources name partition {partition} of topic {topic:?} at two offsets, {a} and {b}"
                    ),
                })
            })
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        self.choose(kept, true)
    }

    fn committed(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        self.choose(kept, false)
    }
}

impl KafkaSink {
    /// The Kafka offsets in a checkpoint's source position: none when the
    /// source is a file or one of its own (`SinkConfig::foreign_source`:
    /// `cepheid serve`'s log, whose positions are bytes too).
    fn source_position(&self, source: &Position) -> Result<KafkaPosition, KafkaError> {
        match source {
            Position::Bytes(_) if !self.foreign_source => decode_position(source),
            _ => Ok(KafkaPosition::new()),
        }
    }

    /// [`Sink::recover`] (`take_over`), or [`Sink::committed`]: which of
    /// `kept` the broker committed.
    fn choose(&mut self, kept: &[Checkpoint], take_over: bool) -> Result<usize, SinkError> {
        if !self.is_transactional() {
            // At least once: from the newest; what was written after it
            // is written again.
            return Ok(0);
        }
        let mut list = Vec::with_capacity(kept.len());
        for k in kept {
            let position = self
                .source_position(&k.source)
                .map_err(|e| self.run_error(false, e))?;
            list.push(KeptCheckpoint {
                id: k.number,
                position,
            });
        }
        let recovery = match take_over {
            true => KafkaSink::recover(self, &list),
            false => KafkaSink::committed(self, &list),
        };
        match recovery.map_err(|e| self.run_error(false, e))? {
            Recovery::Checkpoint(i) => Ok(i),
            Recovery::NothingCommitted if kept.iter().all(|k| k.number <= 1) => Ok(kept.len()),
            Recovery::NothingCommitted => Err(self.run_error(
                false,
                KafkaError::Config {
                    reason: format!(
                        "the broker has no committed checkpoint of this sink, but checkpoint {} is kept: \
                         the consumer group's committed offsets are gone (expired: offsets.retention.minutes?); \
                         nothing was changed (remove the checkpoint folder to start over from --kafka-start)",
                        kept.first().map_or(0, |k| k.number)
                    ),
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};

    use super::*;

    #[test]
    fn a_runs_error_gives_back_the_kafka_error_inside_it() {
        let unreachable = KafkaError::Unreachable {
            operation: "fetch_metadata",
            waited: Duration::from_secs(1),
            source: ClientError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown),
        };
        assert!(unreachable.is_unreachable() && !unreachable.is_fenced());
        let source = cepheid_runtime::Error::Source(SourceError {
            source_name: "kafka:t".into(),
            error: io_error(unreachable),
        });
        assert!(kafka_error_of(&source).is_some_and(KafkaError::is_unreachable));
        let sink_error = |source| {
            cepheid_runtime::Error::Sink(SinkError {
                target: "out".into(),
                late: false,
                source,
            })
        };
        let config = KafkaError::Config {
            reason: "no".into(),
        };
        let sink = sink_error(io_error(config));
        assert!(matches!(
            kafka_error_of(&sink),
            Some(KafkaError::Config { .. })
        ));
        // A file's error is none.
        assert!(kafka_error_of(&sink_error(io::Error::other("disk full"))).is_none());
    }
}
