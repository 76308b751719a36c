//! `cepheid run` from and to Kafka (the default feature `kafka`; issue
//! 24, `docs/kafka.md`): `--events kafka://BROKERS/TOPICS`, `--output`
//! and `--late kafka://BROKERS/TOPIC`, and the `--kafka-*` options, mapped
//! to a `cepheid_kafka::KafkaSource` and `KafkaSink` that the runtime
//! drives through its `Source` and `Sink` traits.

use std::time::Duration;

pub use cepheid_kafka::is_kafka;
use cepheid_kafka::{
    default_transactional_id, kafka_error, KafkaError, KafkaOptions, KafkaSink, KafkaSource,
    OptionsError, OutputTopics, Retry, SinkConfig, SourceConfig, StartAt, Transactional, Url,
};
use cepheid_runtime::{Config, Error};

use crate::run::{Args, TimeArg};

/// Exit status: the broker did not answer within `--kafka-timeout`.
pub const EXIT_UNREACHABLE: u8 = 6;
/// Exit status: another instance with the same transactional id took
/// over (this one was fenced).
pub const EXIT_FENCED: u8 = 7;

/// The Kafka side of a run: its source and sink, when the command names
/// Kafka, or the reason it cannot.
pub struct Kafka {
    /// `--events kafka://...`.
    pub source: Option<KafkaSource>,
    /// `--output kafka://...`.
    pub sink: Option<KafkaSink>,
}

/// What the command line gets wrong (exit 2) before any broker is asked.
pub fn check(args: &Args) -> Result<(), OptionsError> {
    KafkaOptions {
        events: &args.events,
        output: &args.output,
        late: args.late.as_deref(),
        rules_topic: args.rules_topic.as_deref(),
        timeouts: args.timeouts.as_deref(),
        follow: args.follow,
        record_time: args.time == TimeArg::Kafka,
        properties: &args.kafka,
        transactional_id: args.transactional_id.as_deref(),
        marker_topic: args.kafka_marker_topic.as_deref(),
        start_or_until: args.kafka_start.is_some() || args.kafka_until.is_some(),
        checkpoint: args.checkpoint.as_deref(),
    }
    .check()
}

/// The URL of `flag` as a configuration error (checked before: [`check`]).
fn kafka_url(flag: &'static str, path: &std::path::Path) -> Result<Url, KafkaError> {
    cepheid_kafka::parse_url(flag, path).map_err(|e| KafkaError::Config {
        reason: e.to_string(),
    })
}

/// Connects the source and the sink the command names (each checks that
/// its topics exist), and sets `config` for them.
pub fn open(args: &Args, config: &mut Config) -> Result<Kafka, KafkaError> {
    let source = if is_kafka(&args.events) {
        Some(KafkaSource::new(source_config(
            args,
            retry(args),
            transactional_id(args),
        )?)?)
    } else {
        None
    };
    let sink = open_sink(args, config)?;
    Ok(Kafka { source, sink })
}

/// Retried with backoff up to `--kafka-timeout`.
fn retry(args: &Args) -> Retry {
    Retry {
        limit: Duration::from_millis(u64::try_from(args.kafka_timeout).unwrap_or(0)),
        ..Retry::default()
    }
}

/// The producer's transactional id (and the consumer group its offsets
/// are committed for): with `--checkpoint` and a Kafka output.
fn transactional_id(args: &Args) -> Option<String> {
    match (&args.checkpoint, is_kafka(&args.output)) {
        (Some(dir), true) => Some(
            args.transactional_id
                .clone()
                .unwrap_or_else(|| default_transactional_id(dir)),
        ),
        _ => None,
    }
}

/// The sink of `--output kafka://...` (and `--timeouts`, `--late`),
/// transactional with `--checkpoint`; `config`'s outputs are then none.
pub fn open_sink(args: &Args, config: &mut Config) -> Result<Option<KafkaSink>, KafkaError> {
    if !is_kafka(&args.output) {
        return Ok(None);
    }
    let url = kafka_url("--output", &args.output)?;
    let matches = url.topics[0].clone();
    let timeouts = match &args.timeouts {
        Some(t) => kafka_url("--timeouts", t)?.topics[0].clone(),
        None => matches.clone(),
    };
    let late = match args.late.as_deref() {
        Some(l) => Some(kafka_url("--late", l)?.topics[0].clone()),
        None => None,
    };
    let topics = OutputTopics::PerKind {
        matches: matches.clone(),
        timeouts,
        late: late.clone().unwrap_or(matches),
    };
    let mut c = SinkConfig::new(url.brokers, topics);
    c.retry = retry(args);
    c.late = late.is_some();
    c.properties.clone_from(&args.kafka);
    if let Some(id) = transactional_id(args) {
        let mut t = Transactional::new(id.clone(), id);
        t.marker = args.kafka_marker_topic.clone().map(|topic| (topic, 0));
        c.transactional = Some(t);
    }
    config.output = None;
    config.late = None;
    Ok(Some(KafkaSink::new(c)?))
}

/// The source's configuration from `--events kafka://...` and the
/// `--kafka-*` options.
fn source_config(
    args: &Args,
    retry: Retry,
    transactional_id: Option<String>,
) -> Result<SourceConfig, KafkaError> {
    let url = kafka_url("--events", &args.events)?;
    let topics: Vec<&str> = url.topics.iter().map(String::as_str).collect();
    let mut c = SourceConfig::new(url.brokers.clone(), &topics);
    c.start = args.kafka_start.clone().unwrap_or(StartAt::Earliest);
    c.until_end = args.kafka_until.is_some();
    c.retry = retry;
    c.group_id = transactional_id.unwrap_or_else(|| "cepheid".to_string());
    c.properties.clone_from(&args.kafka);
    if let Some(rules) = &args.rules_topic {
        let url = kafka_url("--rules-topic", rules)?;
        c.rules_topic = url.topics.into_iter().next();
    }
    Ok(c)
}

/// `--events kafka://...` on workers (`docs/kafka.md`, "On workers"): the
/// topics' (topic, partition) pairs, in the source's order (topics as
/// named, partitions by number), dealt in turn over the workers of every
/// process, pair `i` to worker `i mod (processes × workers)`; one source
/// per worker of process `process`, in worker order (`None` for a worker
/// dealt no partition). Without a rules topic (the command refuses it
/// with workers).
#[cfg(feature = "workers")]
pub fn open_shares(
    args: &Args,
    process: usize,
    workers: usize,
    processes: usize,
) -> Result<Vec<Option<Box<dyn cepheid_runtime::Source>>>, KafkaError> {
    let config = source_config(args, retry(args), None)?;
    // (every partition, from the broker's metadata)
    let pairs = KafkaSource::new(config.clone())?.splits().to_vec();
    let total = (workers * processes).max(1);
    let mut sources = Vec::with_capacity(workers);
    for worker in process * workers..(process + 1) * workers {
        let share: Vec<(String, i32)> = (pairs.iter().enumerate())
            .filter(|(i, _)| i % total == worker)
            .map(|(_, pair)| pair.clone())
            .collect();
        if share.is_empty() {
            sources.push(None);
            continue;
        }
        let mut c = config.clone();
        c.partitions = cepheid_kafka::Partitions::Only(share);
        let source = KafkaSource::new(c)?;
        sources.push(Some(Box::new(source) as Box<dyn cepheid_runtime::Source>));
    }
    Ok(sources)
}

/// The exit status of a Kafka error: 6 unreachable, 7 fenced, else 4.
pub fn status_of(error: &KafkaError) -> u8 {
    match error {
        KafkaError::Unreachable { .. } => EXIT_UNREACHABLE,
        KafkaError::Fenced { .. } | KafkaError::Superseded { .. } => EXIT_FENCED,
        _ => crate::EXIT_IO,
    }
}

/// The exit status of a run's error when it is a Kafka one.
pub fn status(error: &Error) -> Option<u8> {
    let io = match error {
        Error::Source(e) => &e.error,
        Error::Sink(e) => &e.source,
        _ => return None,
    };
    kafka_error(io).map(status_of)
}
