//! `cepheid run` from and to Kafka (the default feature `kafka`; issue
//! 24, `docs/kafka.md`): `--events kafka://BROKERS/TOPICS`, `--output`
//! and `--late kafka://BROKERS/TOPIC`, and the `--kafka-*` options, mapped
//! to a `cepheid_kafka::KafkaSource` and `KafkaSink` that the runtime
//! drives through its `Source` and `Sink` traits.

use std::path::Path;
use std::time::Duration;

use cepheid_kafka::{
    default_transactional_id, kafka_error, KafkaError, KafkaSink, KafkaSource, OutputTopics, Retry,
    SinkConfig, SourceConfig, StartAt, Transactional, Url, UrlError,
};
use cepheid_runtime::{Config, Error};

use crate::run::{Args, TimeArg};

/// Exit status: the broker did not answer within `--kafka-timeout`.
pub const EXIT_UNREACHABLE: u8 = 6;
/// Exit status: another instance with the same transactional id took
/// over (this one was fenced).
pub const EXIT_FENCED: u8 = 7;

/// Is `path` a `kafka://` URL (not a file)?
pub fn is_kafka(path: &Path) -> bool {
    path.to_str().is_some_and(Url::is_kafka)
}

/// The `kafka://` URL of `flag`, or what is wrong with it (`--events
/// kafka://h/t: the brokers are HOST:PORT, comma-separated`).
pub fn parse_url(flag: &str, path: &Path) -> Result<Url, String> {
    path.to_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: UrlError| format!("{flag} {e}"))
}

/// The Kafka side of a run: its source and sink, when the command names
/// Kafka, or the reason it cannot.
pub struct Kafka {
    /// `--events kafka://...`.
    pub source: Option<KafkaSource>,
    /// `--output kafka://...`.
    pub sink: Option<KafkaSink>,
}

/// What the command line gets wrong (exit 2) before any broker is asked.
pub fn check(args: &Args) -> Result<(), String> {
    let events = is_kafka(&args.events);
    let output = is_kafka(&args.output);
    let late = args.late.as_deref().is_some_and(is_kafka);
    if events {
        parse_url("--events", &args.events)?;
        if args.follow {
            return Err(
                "--follow is for files: a Kafka source goes on by itself (until --kafka-until end)"
                    .to_string(),
            );
        }
    }
    if let Some(rules) = &args.rules_topic {
        if !events {
            return Err("--rules-topic needs --events kafka://... (on its brokers)".to_string());
        }
        let url = parse_url("--rules-topic", rules)?;
        let input = parse_url("--events", &args.events)?;
        if url.brokers != input.brokers || url.topics.len() != 1 {
            return Err("--rules-topic: one topic on the brokers of --events".to_string());
        }
    }
    if output {
        let url = parse_url("--output", &args.output)?;
        if url.topics.len() != 1 {
            return Err(
                "--output kafka://...: one topic (--timeouts names another for timeouts)"
                    .to_string(),
            );
        }
    }
    if let Some(t) = &args.timeouts {
        if !output {
            return Err("--timeouts needs --output kafka://...".to_string());
        }
        let url = parse_url("--timeouts", t)?;
        let out = parse_url("--output", &args.output)?;
        if url.brokers != out.brokers || url.topics.len() != 1 {
            return Err("--timeouts: one topic on the brokers of --output".to_string());
        }
    }
    if late != output && args.late.is_some() {
        return Err(
            "--late kafka://... goes with --output kafka://... (and a file --late with a file --output)"
                .to_string(),
        );
    }
    if late {
        let url = parse_url("--late", args.late.as_deref().unwrap_or(Path::new("")))?;
        let out = parse_url("--output", &args.output)?;
        if url.brokers != out.brokers || url.topics.len() != 1 {
            return Err("--late kafka://...: one topic on the brokers of --output".to_string());
        }
    }
    let kafka_only = !args.kafka.is_empty()
        || args.transactional_id.is_some()
        || args.kafka_marker_topic.is_some()
        || args.timeouts.is_some()
        || args.time == TimeArg::Kafka;
    if kafka_only && !events && !output {
        return Err(
            "the --kafka-* options, --transactional-id and --time kafka need --events or --output kafka://..."
                .to_string(),
        );
    }
    if args.time == TimeArg::Kafka && !events {
        return Err(
            "--time kafka needs --events kafka://... (the records' timestamps)".to_string(),
        );
    }
    if (args.kafka_start.is_some() || args.kafka_until.is_some()) && !events {
        return Err("--kafka-start and --kafka-until need --events kafka://...".to_string());
    }
    if args.transactional_id.is_some() && !(output && args.checkpoint.is_some()) {
        return Err(
            "--transactional-id needs --output kafka://... and --checkpoint (the transactions commit with the checkpoints)"
                .to_string(),
        );
    }
    if args.kafka_marker_topic.is_some() && !(output && args.checkpoint.is_some()) {
        return Err("--kafka-marker-topic needs --output kafka://... and --checkpoint".to_string());
    }
    Ok(())
}

/// Connects the source and the sink the command names (each checks that
/// its topics exist), and sets `config` for them.
pub fn open(args: &Args, config: &mut Config) -> Result<Kafka, KafkaError> {
    let retry = Retry {
        limit: Duration::from_millis(u64::try_from(args.kafka_timeout).unwrap_or(0)),
        ..Retry::default()
    };
    let transactional_id = match (&args.checkpoint, is_kafka(&args.output)) {
        (Some(dir), true) => Some(
            args.transactional_id
                .clone()
                .unwrap_or_else(|| default_transactional_id(dir)),
        ),
        _ => None,
    };
    let source = if is_kafka(&args.events) {
        Some(KafkaSource::new(source_config(
            args,
            retry,
            transactional_id.clone(),
        )?)?)
    } else {
        None
    };
    let sink = if is_kafka(&args.output) {
        let url =
            parse_url("--output", &args.output).map_err(|reason| KafkaError::Config { reason })?;
        let matches = url.topics[0].clone();
        let timeouts = match &args.timeouts {
            Some(t) => parse_url("--timeouts", t)
                .map_err(|reason| KafkaError::Config { reason })?
                .topics[0]
                .clone(),
            None => matches.clone(),
        };
        let late = match args.late.as_deref() {
            Some(l) => Some(
                parse_url("--late", l)
                    .map_err(|reason| KafkaError::Config { reason })?
                    .topics[0]
                    .clone(),
            ),
            None => None,
        };
        let topics = OutputTopics::PerKind {
            matches: matches.clone(),
            timeouts,
            late: late.clone().unwrap_or(matches),
        };
        let mut c = SinkConfig::new(url.brokers, topics);
        c.retry = retry;
        c.late = late.is_some();
        c.properties.clone_from(&args.kafka);
        if let Some(id) = &transactional_id {
            let mut t = Transactional::new(id.clone(), id.clone());
            t.marker = args.kafka_marker_topic.clone().map(|topic| (topic, 0));
            c.transactional = Some(t);
        }
        config.output = None;
        config.late = None;
        Some(KafkaSink::new(c)?)
    } else {
        None
    };
    Ok(Kafka { source, sink })
}

/// The source's configuration from `--events kafka://...` and the
/// `--kafka-*` options.
fn source_config(
    args: &Args,
    retry: Retry,
    transactional_id: Option<String>,
) -> Result<SourceConfig, KafkaError> {
    let url =
        parse_url("--events", &args.events).map_err(|reason| KafkaError::Config { reason })?;
    let topics: Vec<&str> = url.topics.iter().map(String::as_str).collect();
    let mut c = SourceConfig::new(url.brokers.clone(), &topics);
    c.start = args.kafka_start.clone().unwrap_or(StartAt::Earliest);
    c.until_end = args.kafka_until.is_some();
    c.retry = retry;
    c.group_id = transactional_id.unwrap_or_else(|| "cepheid".to_string());
    c.properties.clone_from(&args.kafka);
    if let Some(rules) = &args.rules_topic {
        let url =
            parse_url("--rules-topic", rules).map_err(|reason| KafkaError::Config { reason })?;
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
    let retry = Retry {
        limit: Duration::from_millis(u64::try_from(args.kafka_timeout).unwrap_or(0)),
        ..Retry::default()
    };
    let config = source_config(args, retry, None)?;
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
