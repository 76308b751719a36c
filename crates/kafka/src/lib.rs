//! Kafka in, Kafka out for cepheid (issue 24), driven by
//! `cepheid_runtime` through its `Source` and `Sink` traits (what
//! `cepheid run --events/--output kafka://...` does).
//!
//! - [`KafkaSource`]: topics read with an explicit partition assignment
//!   (no group rebalancing), started at the earliest or latest record, a
//!   timestamp or given offsets; its [`KafkaPosition`] (the next offset of
//!   each partition) goes into cepheid's checkpoints and
//!   [`KafkaSource::seek`] goes back to it. Records go up as bytes with
//!   their topic, partition, offset, key and timestamp; a tombstone is
//!   handed out too ([`KafkaRecord::is_tombstone`]).
//! - Per-partition watermarks: each partition is a split of the runtime's
//!   `Source`, whose reader thread combines their watermarks by minimum
//!   and releases idle ones (`cepheid_runtime::SplitWatermarks`, as
//!   Flink's Kafka source).
//! - [`KafkaSink`]: matches, timeouts and late events to topics, keyed by
//!   the partition key. With a [`Transactional`] configuration the records
//!   of a checkpoint interval, the source offsets they came from and the
//!   checkpoint's number commit in one transaction (exactly once; the
//!   protocol is in `docs/checkpoints.md`, "Kafka"); without, an
//!   idempotent producer (at least once). [`CommitApart`]: a
//!   transactional one whose commits go on while the run writes the next
//!   interval's records (what `cepheid run` and `cepheid serve` open).
//!
//! - [`Url`], [`parse_start`], [`parse_property`] and
//!   [`default_transactional_id`]: the settings as a command line gives
//!   them (`kafka://HOST:PORT/TOPIC`, `earliest`, `NAME=VALUE`),
//!   [`KafkaOptions::check`]: which of them go together
//!   ([`OptionsError`]), and what they open as the runtime's `Source` and
//!   `Sink` ([`KafkaOptions::open_source`], [`KafkaOptions::open_sink`],
//!   and one source per worker, [`KafkaOptions::open_shares`] over
//!   [`KafkaSource::shares`]).
//!
//! Errors are [`KafkaError`] values; a broker that does not answer is
//! retried with backoff up to [`Retry::limit`].

#![deny(unsafe_code)] // (allowed in `guard` alone: one call into C)
#![warn(missing_docs)]

mod apart;
mod batch;
mod command;
mod error;
mod fit;
mod guard;
mod identity;
mod lists;
mod native;
mod open;
mod options;
mod position;
mod reach;
mod retry;
mod runtime;
mod sink;
mod source;
mod watch;

// The tests' real broker, for the unit tests that need one.
#[cfg(test)]
#[path = "../tests/it/support.rs"]
mod test_broker;

pub use apart::{CommitApart, HELD_BYTES};
pub use command::{builtin_features, is_kafka, parse_url, KafkaOptions, OptionsError};
pub use error::{KafkaError, TopicChange};
pub use fit::{Mismatch, OnMismatch, OnMismatchError};
pub use guard::metadata_guard_active;
pub use lists::change as list_change;
pub use open::Shares;
pub use options::{
    default_transactional_id, parse_property, parse_start, parse_until, PartitionOffsets,
    PropertyError, StartError, Url, UrlError,
};
pub use position::{Held, KafkaPosition, Mark};
pub use retry::Retry;
pub use runtime::{decode_position, encode_position, kafka_error, kafka_error_of};
pub use sink::{
    KafkaSink, KeptCheckpoint, Kind, OutputTopics, Recovery, SinkConfig, Transactional,
    CHECKPOINT_HEADER,
};
pub use source::{
    KafkaRecord, KafkaSource, PartitionLag, Partitions, Read, RecordRef, SourceConfig, StartAt,
    Until,
};
