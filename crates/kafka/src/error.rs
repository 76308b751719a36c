//! The crate's error: what went wrong, as data the caller can act on.

use std::fmt;
use std::time::Duration;

use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};

use crate::fit::Mismatch;
use crate::position::KafkaPosition;

/// What a Kafka source or sink could not do.
#[derive(Clone)]
#[non_exhaustive]
pub enum KafkaError {
    /// The client (librdkafka) refused or failed `operation`.
    Client {
        /// What was being done: `"assign"`, `"commit_transaction"`, ...
        operation: &'static str,
        /// librdkafka's error.
        source: ClientError,
    },
    /// The broker did not answer `operation` within the configured limit
    /// ([`crate::Retry::limit`]), retried with backoff until then.
    Unreachable {
        /// What was being done.
        operation: &'static str,
        /// How long it was tried.
        waited: Duration,
        /// The last error.
        source: ClientError,
    },
    /// Another producer with the same `transactional.id` took over: this
    /// instance must stop (its open transaction was aborted).
    Fenced {
        /// The transactional id both instances use.
        transactional_id: String,
        /// librdkafka's error.
        source: ClientError,
    },
    /// Another instance with the same `transactional.id` committed to the
    /// sink's consumer group while this one's commit went unanswered: it
    /// has taken over, as with [`KafkaError::Fenced`], but the broker never
    /// said so to this producer.
    Superseded {
        /// The transactional id both instances use.
        transactional_id: String,
        /// The checkpoint the other instance committed (the marker's
        /// offset), if any.
        committed_checkpoint: Option<u64>,
        /// The source offsets it committed.
        committed: KafkaPosition,
    },
    /// The broker lost its state in the middle of a run (a broker
    /// replaced, its storage lost): it does not know the producer's
    /// transactional id (Kafka's `TRANSACTIONAL_ID_NOT_FOUND`), or the
    /// sink's consumer group holds no offsets any more. Not another
    /// instance: nothing fenced this one.
    StateLost {
        /// The transactional id.
        transactional_id: String,
        /// The call the broker refused with `TRANSACTIONAL_ID_NOT_FOUND`;
        /// `None`: the group was found empty.
        operation: Option<&'static str>,
    },
    /// A topic the configuration names does not exist on the broker.
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// A topic the source read (or the sink wrote to) was deleted, or
    /// deleted and created again under its name (another topic, whose
    /// offsets are not the ones read), while the run used it.
    TopicChanged {
        /// The topic.
        topic: String,
        /// An output topic (the sink's), not one read.
        written: bool,
        /// What became of it.
        change: TopicChange,
    },
    /// A partition the configuration names does not exist.
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A record could not be delivered to its topic.
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        source: ClientError,
    },
    /// On recovery, the group's committed offsets name a checkpoint that
    /// is not kept, or a kept checkpoint whose source position differs.
    NoCheckpointMatches {
        /// The checkpoint number the broker committed last (the marker's
        /// offset), if any.
        committed_checkpoint: Option<u64>,
        /// The committed source offsets.
        committed: KafkaPosition,
        /// The numbers of the kept checkpoints, newest first.
        kept: Vec<u64>,
    },
    /// `commit` or `recover` of a sink without a `transactional.id`
    /// needs none of them; this one needs a transactional sink.
    NotTransactional {
        /// The operation.
        operation: &'static str,
    },
    /// A kept offset (a checkpoint's, or the one a transactional sink
    /// committed) does not fit its partition as the broker has it now,
    /// and [`crate::OnMismatch::Refuse`] (the default) says not to start
    /// it again: nothing was read.
    OffsetMismatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The kept offset.
        offset: i64,
        /// How it does not fit (boxed: a variant the size of the others).
        mismatch: Box<Mismatch>,
        /// How many other partitions do not fit either.
        others: usize,
    },
    /// A configuration that cannot work (explained).
    Config {
        /// Why.
        reason: String,
    },
}

/// What became of a topic a source read or a sink wrote to
/// ([`KafkaError::TopicChanged`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicChange {
    /// The broker no longer has it.
    Deleted,
    /// The broker has a topic of that name with another topic id: the
    /// topic was deleted and created again.
    CreatedAgain,
    /// The broker has a topic of that name with fewer partitions than
    /// the source read (a topic's partitions are never removed: it was
    /// deleted and created again).
    FewerPartitions {
        /// The partitions the source read (the highest number + 1).
        had: usize,
        /// The partitions the broker has now.
        has: usize,
    },
}

impl KafkaError {
    pub(crate) fn client(operation: &'static str, source: ClientError) -> KafkaError {
        KafkaError::Client { operation, source }
    }

    /// True for [`KafkaError::Fenced`] and [`KafkaError::Superseded`]:
    /// another instance took over.
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            KafkaError::Fenced { .. } | KafkaError::Superseded { .. }
        )
    }

    /// True for [`KafkaError::OffsetMismatch`] and
    /// [`KafkaError::NoCheckpointMatches`]: the checkpoint's offsets do not
    /// fit the topics as they are now, or the kept checkpoints (none, in
    /// an empty folder) are not what the broker committed (`cepheid run`
    /// exits as for a checkpoint it cannot resume, 5).
    pub fn is_checkpoint(&self) -> bool {
        matches!(
            self,
            KafkaError::OffsetMismatch { .. } | KafkaError::NoCheckpointMatches { .. }
        )
    }

    /// True for [`KafkaError::Unreachable`]: the broker did not answer
    /// within the configured limit.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, KafkaError::Unreachable { .. })
    }
}

/// The error code of `error`, when librdkafka knows it: `None` for an
/// error without a code, and for a transactional call's error whose code
/// is a broker's that librdkafka has no name for (`ERR_105?`: 105 is
/// Kafka's `TRANSACTIONAL_ID_NOT_FOUND`, which a broker that lost its
/// state answers). rdkafka converts such a code into an enum that has no
/// such value, which is undefined behaviour (a debug build stops on an
/// illegal instruction): every code of this crate is read here.
pub(crate) fn code_of(error: &ClientError) -> Option<RDKafkaErrorCode> {
    match error {
        ClientError::Transaction(e) if e.name().ends_with('?') => None,
        _ => error.rdkafka_error_code(),
    }
}

/// The broker's error code of a transactional call that librdkafka has no
/// name for (see [`code_of`]): 105 for `ERR_105?`.
pub(crate) fn unnamed_code(error: &ClientError) -> Option<i32> {
    match error {
        ClientError::Transaction(e) => e
            .name()
            .strip_prefix("ERR_")?
            .strip_suffix('?')?
            .parse()
            .ok(),
        _ => None,
    }
}

/// Kafka's `TRANSACTIONAL_ID_NOT_FOUND`: the broker does not know the
/// producer's transactional id (it lost its state), which librdkafka
/// 2.12.1 has no name for.
pub(crate) const TRANSACTIONAL_ID_NOT_FOUND: i32 = 105;

/// Whether librdkafka's error says the producer was fenced by a newer
/// instance with the same transactional id.
pub(crate) fn fencing(error: &ClientError) -> bool {
    matches!(
        code_of(error),
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::TransactionCoordinatorFenced
        )
    )
}

/// Whether trying again may succeed (a broker down, a timeout, a
/// coordinator moving).
pub(crate) fn retriable(error: &ClientError) -> bool {
    // (librdkafka says it is; a broker that lost the transactional id
    // will not find it again)
    if unnamed_code(error) == Some(TRANSACTIONAL_ID_NOT_FOUND) {
        return false;
    }
    if let ClientError::Transaction(e) = error {
        if e.is_retriable() {
            return true;
        }
        if e.is_fatal() || e.txn_requires_abort() {
            return false;
        }
    }
    matches!(
        code_of(error),
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::ConcurrentTransactions
                | RDKafkaErrorCode::QueueFull
        )
    )
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KafkaError::Client { operation, source } => {
                write!(f, "Kafka: {operation} failed: {source}")
            }
            KafkaError::Unreachable {
                operation,
                waited,
                source,
            } => write!(
                f,
                "Kafka: the broker did not answer {operation} for {:.1} s (retried with backoff): {source}",
                waited.as_secs_f64()
            ),
            KafkaError::Fenced {
                transactional_id,
                ..
            } => write!(
                f,
                "Kafka: another instance with transactional id {transactional_id:?} took over; \
                 this one stops (its open transaction was aborted)"
            ),
            KafkaError::Superseded {
                transactional_id,
                committed_checkpoint,
                committed,
            } => {
                write!(
                    f,
                    "Kafka: another instance with transactional id {transactional_id:?} took over; \
                     this one stops (the broker did not answer its commit, and meanwhile the \
                     group's offsets became "
                )?;
                match committed_checkpoint {
                    Some(n) => write!(f, "checkpoint {n} at {committed})"),
                    None => write!(f, "{committed})"),
                }
            }
            KafkaError::StateLost {
                transactional_id,
                operation,
            } => {
                match operation {
                    Some(operation) => write!(
                        f,
                        "Kafka: the broker does not know transactional id {transactional_id:?} \
                         ({operation}: TRANSACTIONAL_ID_NOT_FOUND)"
                    )?,
                    None => write!(
                        f,
                        "Kafka: the broker no longer holds the offsets committed with \
                         transactional id {transactional_id:?} (its consumer group lost them)"
                    )?,
                }
                write!(
                    f,
                    ": it lost its state (a broker replaced, its storage lost), and the \
                     transaction open with it; this instance stops"
                )
            }
            KafkaError::UnknownTopic { topic } => {
                write!(f, "Kafka: topic {topic:?} does not exist")
            }
            KafkaError::TopicChanged {
                topic,
                written,
                change,
            } => {
                let (used, lost) = if *written {
                    ("wrote to it", "what the run wrote before is the old topic's")
                } else {
                    ("read it", "the offsets read are the old topic's")
                };
                write!(f, "Kafka: topic {topic:?} ")?;
                match change {
                    TopicChange::Deleted => write!(f, "was deleted while the run {used}"),
                    TopicChange::CreatedAgain => write!(
                        f,
                        "was deleted and created again while the run {used} \
                         (another topic id): {lost}"
                    ),
                    TopicChange::FewerPartitions { had, has } => write!(
                        f,
                        "has {has} partition{} now, {had} when the run started: it was deleted \
                         and created again while the run {used}, and {lost}",
                        if *has == 1 { "" } else { "s" }
                    ),
                }
            }
            KafkaError::UnknownPartition { topic, partition } => {
                write!(f, "Kafka: topic {topic:?} has no partition {partition}")
            }
            KafkaError::Delivery { topic, source } => {
                write!(f, "Kafka: a record to {topic:?} was not delivered: {source}")
            }
            KafkaError::NoCheckpointMatches {
                committed_checkpoint,
                committed,
                kept,
            } => {
                if kept.is_empty() {
                    // (a standby with a folder of its own, a disk replaced)
                    return write!(
                        f,
                        "Kafka: the broker committed {} for this transactional id, but no checkpoint is kept in the folder: a run from the beginning would commit its records a second time; resume with the folder that run kept, or, to start over on purpose, give another `KafkaOptions::transactional_id` (what was committed stays in the topics)",
                        committed_checkpoint.map_or_else(
                            || format!("source offsets {committed}"),
                            |n| format!("checkpoint {n}")
                        )
                    );
                }
                match committed_checkpoint {
                    Some(n) => write!(f, "Kafka: the broker committed checkpoint {n}")?,
                    None => write!(f, "Kafka: the broker committed no checkpoint of this sink")?,
                }
                write!(
                    f,
                    " with source offsets {committed}, which matches none of the kept checkpoints {kept:?}"
                )
            }
            KafkaError::NotTransactional { operation } => write!(
                f,
                "Kafka: {operation} needs a transactional sink (a transactional.id)"
            ),
            KafkaError::OffsetMismatch {
                topic,
                partition,
                offset,
                mismatch,
                others,
            } => {
                write!(
                    f,
                    "Kafka: the kept offset {offset} of topic {topic:?} partition {partition} \
                     does not fit the topic as it is now: {mismatch}; nothing was read"
                )?;
                if *others > 0 {
                    write!(
                        f,
                        " ({others} other partition{} do{} not fit either)",
                        if *others == 1 { "" } else { "s" },
                        if *others == 1 { "es" } else { "" }
                    )?;
                }
                write!(
                    f,
                    " (`KafkaOptions::offset_mismatch` earliest or latest starts such a partition again there)"
                )
            }
            KafkaError::Config { reason } => write!(f, "Kafka: {reason}"),
        }
    }
}

/// What `?` in a `main` prints: the message and the causes it does not
/// already say ([`cepheid_core::error::write_report`]), not a struct dump.
impl fmt::Debug for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        cepheid_core::error::write_report(self, f)
    }
}

impl std::error::Error for KafkaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KafkaError::Client { source, .. }
            | KafkaError::Unreachable { source, .. }
            | KafkaError::Fenced { source, .. }
            | KafkaError::Delivery { source, .. } => Some(source),
            _ => None,
        }
    }
}
