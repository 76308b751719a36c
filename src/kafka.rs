//! `cepheid run` from and to Kafka (the default feature `kafka`; issue
//! 24, `docs/kafka.md`): `--events kafka://BROKERS/TOPICS`, `--output`
//! and `--late kafka://BROKERS/TOPIC`, and the `--kafka-*` options, mapped
//! to `cepheid_kafka::KafkaOptions`, which checks them and opens the
//! source and the sink that the runtime drives through its `Source` and
//! `Sink` traits; Kafka's errors to their exit statuses.

use std::time::Duration;

use cepheid_kafka::{kafka_error_of, KafkaError, KafkaOptions, Retry};
use cepheid_runtime::Error;

use crate::run::Args;

/// Exit status: the broker did not answer within `--kafka-timeout`.
pub const EXIT_UNREACHABLE: u8 = 6;
/// Exit status: another instance with the same transactional id took
/// over (this one was fenced).
pub const EXIT_FENCED: u8 = 7;

/// The command line's Kafka options (what the run itself says, its input,
/// outputs, time and checkpoint folder, is in its `Config`).
pub fn options(args: &Args) -> KafkaOptions<'_> {
    KafkaOptions {
        rules_topic: args.rules_topic.as_deref(),
        timeouts: args.timeouts.as_deref(),
        properties: &args.kafka,
        transactional_id: args.transactional_id.as_deref(),
        marker_topic: args.kafka_marker_topic.as_deref(),
        start: args.kafka_start.as_ref(),
        until_end: args.kafka_until.is_some(),
        // Retried with backoff up to `--kafka-timeout`.
        retry: Retry {
            limit: Duration::from_millis(u64::try_from(args.kafka_timeout).unwrap_or(0)),
            ..Retry::default()
        },
    }
}

/// The exit status of a Kafka error: 6 unreachable, 7 fenced, else 4.
pub fn status_of(error: &KafkaError) -> u8 {
    if error.is_unreachable() {
        EXIT_UNREACHABLE
    } else if error.is_fenced() {
        EXIT_FENCED
    } else {
        crate::EXIT_IO
    }
}

/// The exit status of a run's error when it is a Kafka one.
pub fn status(error: &Error) -> Option<u8> {
    kafka_error_of(error).map(status_of)
}
