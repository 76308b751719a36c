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

/// The Kafka options of a command that only writes to Kafka (`cepheid
/// serve --output kafka://...`): the sink's flags of `cepheid run`, the
/// same names, defaults and words, mapped to the same [`KafkaOptions`].
#[derive(clap::Args, Debug, Clone)]
pub struct SinkArgs {
    /// A librdkafka property for the Kafka producer (repeatable):
    /// `--kafka linger.ms=20` (docs/kafka.md, "TLS and SASL").
    #[arg(long, value_name = "NAME=VALUE", value_parser = cepheid_kafka::parse_property)]
    pub kafka: Vec<(String, String)>,
    /// The Kafka producer's transactional id (with --output kafka://...);
    /// default `cepheid:` and the checkpoint folder's canonical path
    /// (`STATE/checkpoints`). A second instance with the same id fences
    /// the first, which stops (exit 7).
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// A topic of cepheid's own whose partition 0 marks the committed
    /// checkpoints (as `cepheid run --kafka-marker-topic`).
    #[arg(long, value_name = "TOPIC")]
    pub kafka_marker_topic: Option<String>,
    /// How long a Kafka broker that does not answer is waited for (retried
    /// with backoff), at the start and while serving; then the service
    /// stops with exit status 6.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = cepheid_core::time::parse_positive_duration)]
    pub kafka_timeout: i64,
}

impl SinkArgs {
    /// The [`KafkaOptions`] of these flags (no source: nothing read from
    /// Kafka).
    pub fn options(&self) -> KafkaOptions<'_> {
        KafkaOptions {
            rules_topic: None,
            timeouts: None,
            properties: &self.kafka,
            transactional_id: self.transactional_id.as_deref(),
            marker_topic: self.kafka_marker_topic.as_deref(),
            start: None,
            until: None,
            offset_mismatch: None,
            retry: Retry {
                limit: Duration::from_millis(u64::try_from(self.kafka_timeout).unwrap_or(0)),
                ..Retry::default()
            },
        }
    }
}

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
        until: args.kafka_until.as_ref(),
        offset_mismatch: args.kafka_offset_mismatch,
        // Retried with backoff up to `--kafka-timeout`.
        retry: Retry {
            limit: Duration::from_millis(u64::try_from(args.kafka_timeout).unwrap_or(0)),
            ..Retry::default()
        },
    }
}

/// The exit status of a Kafka error: 6 unreachable, 7 fenced, 5 a
/// checkpoint's offsets that do not fit the topics now or kept checkpoints
/// that are not what the broker committed, else 4.
pub fn status_of(error: &KafkaError) -> u8 {
    if error.is_checkpoint() {
        crate::EXIT_CHECKPOINT
    } else if error.is_unreachable() {
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

/// `cepheid serve --rules-topic kafka://BROKERS/TOPIC` (`docs/serve.md`,
/// "A rules topic"): partition 0 of a topic of rule sets, each
/// `{"$rules": TEXT}` record handed to the service, which logs it as a
/// change of rules named by its place (`kafka:TOPIC partition 0 offset
/// N`). Read from the record after the last one the log holds, so that
/// each is logged once across restarts and crashes.
#[cfg(feature = "serve")]
pub struct RulesTopic {
    source: cepheid_kafka::KafkaSource,
    topic: String,
}

#[cfg(feature = "serve")]
impl RulesTopic {
    /// Opens partition 0 of the topic `url` names, with the flags'
    /// properties, the broker waited for up to `--kafka-timeout`: a
    /// mistake said as `--rules-topic`'s, with its exit status.
    pub fn open(url: &std::path::Path, args: &SinkArgs) -> Result<RulesTopic, (u8, String)> {
        use cepheid_kafka::{KafkaSource, Partitions, SourceConfig};
        let said =
            |e: &dyn std::fmt::Display| format!("error: --rules-topic {}: {e}", url.display());
        let parsed = cepheid_kafka::parse_url("--rules-topic", url)
            .map_err(|e| (crate::EXIT_USAGE, said(&e)))?;
        let [topic] = parsed.topics.as_slice() else {
            return Err((
                crate::EXIT_USAGE,
                said(&"a rules topic is one topic (its partition 0 is read)"),
            ));
        };
        let mut config = SourceConfig::new(parsed.brokers.clone(), &[topic.as_str()]);
        config.partitions = Partitions::Only(vec![(topic.clone(), 0)]);
        config.group_id = "cepheid-serve-rules".to_string();
        config.retry = args.options().retry;
        config.properties = args.kafka.clone();
        config.max_batch = 64;
        let source = KafkaSource::new(config).map_err(|e| (status_of(&e), said(&e)))?;
        Ok(RulesTopic {
            source,
            topic: topic.clone(),
        })
    }

    /// Reads it on a thread of its own into `feed` until `stop`: once the
    /// service has read its log again, from the record after the last
    /// one logged (its first record when none was). A record that is no
    /// rule set, or whose rules do not load, is said and left out; a
    /// broker that does not answer is said, and asked again, while the
    /// service goes on answering with the rules in force.
    pub fn spawn(
        mut self,
        feed: cepheid_serve::service::RulesFeed,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("cepheid-serve-rules-topic".into())
            .spawn(move || self.read_into(&feed, &stop))
    }

    fn read_into(
        &mut self,
        feed: &cepheid_serve::service::RulesFeed,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        use cepheid_serve::service::Taken;
        use std::sync::atomic::Ordering;
        let stopped = || stop.load(Ordering::Acquire) || feed.gone();
        while !feed.ready() {
            if stopped() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let topic = self.topic.clone();
        let from = feed.next_offset(&topic);
        if let Some(next) = from {
            let mut at = cepheid_kafka::KafkaPosition::new();
            at.set(&topic, 0, next);
            if let Err(e) = self.source.seek(&at) {
                eprintln!(
                    "cepheid serve: --rules-topic kafka:{topic}: cannot read on from offset {next}, after the last record logged: {e}; no change of rules is read from it"
                );
                return;
            }
        }
        eprintln!(
            "cepheid serve: --rules-topic kafka:{topic}: read from {}",
            from.map_or_else(
                || "its first record".to_string(),
                |next| format!("offset {next}, after the last record logged")
            )
        );
        let mut batch = Vec::new();
        let mut failing = false;
        while !stopped() {
            batch.clear();
            match self.source.read(&mut batch, Duration::from_millis(200)) {
                Ok(_) => failing = false,
                Err(e) => {
                    feed.read_failed();
                    if !std::mem::replace(&mut failing, true) {
                        eprintln!(
                            "cepheid serve: --rules-topic kafka:{topic}: cannot be read ({e}); asked again every second, the rules in force go on"
                        );
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
            for record in &batch {
                let mut said = false;
                loop {
                    match feed.take(&topic, record.offset, record.payload.as_deref()) {
                        Taken::Logged(words) | Taken::Refused(words) => {
                            eprintln!("{words}");
                            break;
                        }
                        Taken::NotLogged(why) => {
                            if stopped() {
                                return;
                            }
                            if !std::mem::replace(&mut said, true) {
                                eprintln!(
                                    "cepheid serve: kafka:{topic} partition 0 offset {}: not logged ({why}); tried again every second",
                                    record.offset
                                );
                            }
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            }
        }
    }
}

/// The topics of events `cepheid serve --events-topic` reads into its log
/// (every partition): what its reader needs.
pub struct EventsTopic {
    source: cepheid_kafka::KafkaSource,
    url: String,
}

impl EventsTopic {
    /// Opens every partition of the topics `url` names, with the flags'
    /// properties, the broker waited for up to `--kafka-timeout`: a
    /// mistake said as `--events-topic`'s, with its exit status.
    pub fn open(url: &std::path::Path, args: &SinkArgs) -> Result<EventsTopic, (u8, String)> {
        let said =
            |e: &dyn std::fmt::Display| format!("error: --events-topic {}: {e}", url.display());
        let parsed = cepheid_kafka::parse_url("--events-topic", url)
            .map_err(|e| (crate::EXIT_USAGE, said(&e)))?;
        let topics: Vec<&str> = parsed.topics.iter().map(String::as_str).collect();
        let source = every_partition(&parsed.brokers, &topics, "cepheid-serve-events", args)
            .map_err(|e| (status_of(&e), said(&e)))?;
        Ok(EventsTopic {
            source,
            url: url.display().to_string(),
        })
    }

    /// Reads it on a thread of its own into `feed` until `stop`: once the
    /// service has read its log again, each partition from the record
    /// after the last one logged (its first record when none was). A
    /// record that is no event is said and left out; a broker that does
    /// not answer is said, and asked again; a log that cannot take the
    /// records stops the reader (a restart reads on from what it holds).
    pub fn spawn(
        mut self,
        feed: cepheid_serve::service::EventsFeed,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("cepheid-serve-events-topic".into())
            .spawn(move || self.read_into(&feed, &stop))
    }

    fn read_into(
        &mut self,
        feed: &cepheid_serve::service::EventsFeed,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        let flag = format!("--events-topic {}", self.url);
        read_topic(
            &mut self.source,
            &flag,
            feed,
            stop,
            &mut |topic, partition| feed.next_offset(topic, partition),
            &mut |topic, batch| {
                let records: Vec<(i32, i64, Option<&[u8]>)> = (batch.iter())
                    .map(|r| (r.partition, r.offset, r.payload.as_deref()))
                    .collect();
                feed.take(topic, &records)
            },
        );
    }
}

/// A list's topic `cepheid serve --list NAME=kafka://...` reads into its
/// log (every partition): each record the `$list` change it means
/// (`docs/kafka.md`, "Lists from topics": the key the entry, a tombstone
/// a removal).
pub struct ListTopic {
    source: cepheid_kafka::KafkaSource,
    list: String,
    url: String,
}

impl ListTopic {
    /// Opens every partition of the topic `url` names for list `list`, as
    /// [`EventsTopic::open`] opens its topics.
    pub fn open(
        list: &str,
        url: &std::path::Path,
        args: &SinkArgs,
    ) -> Result<ListTopic, (u8, String)> {
        let said =
            |e: &dyn std::fmt::Display| format!("error: --list {list}={}: {e}", url.display());
        let parsed =
            cepheid_kafka::parse_url("--list", url).map_err(|e| (crate::EXIT_USAGE, said(&e)))?;
        let [topic] = parsed.topics.as_slice() else {
            return Err((crate::EXIT_USAGE, said(&"a list's topic is one topic")));
        };
        let source = every_partition(
            &parsed.brokers,
            &[topic.as_str()],
            "cepheid-serve-lists",
            args,
        )
        .map_err(|e| (status_of(&e), said(&e)))?;
        Ok(ListTopic {
            source,
            list: list.to_string(),
            url: url.display().to_string(),
        })
    }

    /// Reads it on a thread of its own into `feed` until `stop`, as
    /// [`EventsTopic::spawn`] reads its topics: each partition from the
    /// record after the last one logged.
    pub fn spawn(
        mut self,
        feed: cepheid_serve::service::EventsFeed,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("cepheid-serve-list-topic".into())
            .spawn(move || {
                let (list, url) = (self.list.clone(), self.url.clone());
                let flag = format!("--list {list}={url}");
                read_topic(
                    &mut self.source,
                    &flag,
                    &feed,
                    &stop,
                    &mut |topic, partition| feed.next_list_offset(topic, partition),
                    &mut |topic, batch| {
                        let records: Vec<cepheid_serve::service::ListRecord> = (batch.iter())
                            .map(|r| (r.partition, r.offset, cepheid_kafka::list_change(&list, r)))
                            .collect();
                        feed.take_list(topic, &records)
                    },
                );
            })
    }
}

/// A source of every partition of `topics` for `cepheid serve`'s readers
/// (events and lists' topics), from their first records, with the flags'
/// properties and retries; at most 256 records a read (one group of the
/// log: requests wait behind no more).
fn every_partition(
    brokers: &str,
    topics: &[&str],
    group: &str,
    args: &SinkArgs,
) -> Result<cepheid_kafka::KafkaSource, cepheid_kafka::KafkaError> {
    use cepheid_kafka::{KafkaSource, Partitions, SourceConfig, StartAt};
    let mut config = SourceConfig::new(brokers.to_string(), topics);
    config.partitions = Partitions::All;
    config.start = StartAt::Earliest;
    config.group_id = group.to_string();
    config.retry = args.options().retry;
    config.properties = args.kafka.clone();
    config.max_batch = 256;
    KafkaSource::new(config)
}

/// A topic's reader for `cepheid serve` (events and lists' topics): once
/// the service has read its log again, each partition from the record
/// after the last one logged (`next`), its first record when none was,
/// said; each read's records of one topic handed to `take` in order and
/// waited for; refusals said (the first hundred); a broker gone said once
/// and asked again every second; a log that cannot take them stops it.
fn read_topic(
    source: &mut cepheid_kafka::KafkaSource,
    flag: &str,
    feed: &cepheid_serve::service::EventsFeed,
    stop: &std::sync::atomic::AtomicBool,
    next: &mut dyn FnMut(&str, i32) -> Option<i64>,
    take: &mut dyn FnMut(
        &str,
        &[cepheid_kafka::KafkaRecord],
    ) -> cepheid_serve::service::EventsTaken,
) {
    use cepheid_serve::service::EventsTaken;
    use std::sync::atomic::Ordering;
    let stopped = || stop.load(Ordering::Acquire) || feed.gone();
    while !feed.ready() {
        if stopped() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut at = cepheid_kafka::KafkaPosition::new();
    let (mut logged, mut fresh) = (0usize, 0usize);
    for (topic, partition) in source.splits().to_vec() {
        match next(&topic, partition) {
            Some(offset) => {
                at.set(&topic, partition, offset);
                logged += 1;
            }
            None => fresh += 1,
        }
    }
    if logged > 0 {
        if let Err(e) = source.seek(&at) {
            eprintln!(
                "cepheid serve: {flag}: cannot read on after the records logged: {e}; nothing more is read from it"
            );
            return;
        }
    }
    eprintln!(
        "cepheid serve: {flag}: read {logged} partitions on from the record after the last one logged, {fresh} from their first record"
    );
    let mut batch = Vec::new();
    let mut failing = false;
    let mut refused_said = 0u64;
    while !stopped() {
        batch.clear();
        match source.read(&mut batch, Duration::from_millis(200)) {
            Ok(_) => failing = false,
            Err(e) => {
                feed.read_failed();
                if !std::mem::replace(&mut failing, true) {
                    eprintln!(
                        "cepheid serve: {flag}: cannot be read ({e}); asked again every second"
                    );
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        }
        // (each topic's records, in their order)
        let mut i = 0;
        while i < batch.len() {
            let topic = batch[i].topic.clone();
            let n = batch[i..].iter().take_while(|r| r.topic == topic).count();
            let taken = take(&topic, &batch[i..i + n]);
            i += n;
            match taken {
                EventsTaken::Logged(refused) => {
                    for words in refused {
                        // (said for the first hundred; all counted)
                        refused_said += 1;
                        if refused_said <= 100 {
                            eprintln!("{words}");
                        } else if refused_said == 101 {
                            eprintln!(
                                "cepheid serve: {flag}: more records refused: counted, not said (cepheid_serve_events_topic_refused_total)"
                            );
                        }
                    }
                }
                EventsTaken::NotLogged(why) => {
                    eprintln!(
                        "cepheid serve: {flag}: its records are not logged ({why}): the reader stops; a restart reads on from the records the log holds"
                    );
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cepheid_kafka::{OptionsError, UrlError};

    use crate::run::in_flags;

    /// The library says its Kafka refusals in its own words (the settings
    /// of `KafkaOptions` and `Config`); the command says each with its
    /// flags, as it always has.
    #[test]
    fn each_kafka_refusal_is_said_with_the_commands_flags() {
        let url = |setting, error| OptionsError::Url { setting, error };
        let cases = [
            (
                url(
                    "`Config::input`",
                    UrlError::Brokers {
                        text: "kafka://a/in".into(),
                    },
                ),
                "--events kafka://a/in: the brokers are HOST:PORT, comma-separated",
            ),
            (
                url(
                    "`KafkaOptions::rules_topic`",
                    UrlError::NotKafka {
                        text: "rules.cep".into(),
                    },
                ),
                "--rules-topic rules.cep: not a kafka:// URL",
            ),
            (
                OptionsError::ListTopicAlone {
                    list: "blocked".into(),
                },
                "--list blocked=kafka://... needs --events kafka://... (on its brokers)",
            ),
            (
                OptionsError::ListTopicPlace {
                    list: "blocked".into(),
                },
                "--list blocked=kafka://...: one topic on the brokers of --events",
            ),
            (
                OptionsError::FollowKafka,
                "--follow is for files: a Kafka source goes on by itself (until --kafka-until WHERE)",
            ),
            (
                OptionsError::RulesTopicAlone,
                "--rules-topic needs --events kafka://... (on its brokers)",
            ),
            (
                OptionsError::RulesTopicPlace,
                "--rules-topic: one topic on the brokers of --events",
            ),
            (
                OptionsError::OutputTopics,
                "--output kafka://...: one topic (--timeouts names another for timeouts)",
            ),
            (
                OptionsError::TimeoutsAlone,
                "--timeouts needs --output kafka://...",
            ),
            (
                OptionsError::TimeoutsPlace,
                "--timeouts: one topic on the brokers of --output",
            ),
            (
                OptionsError::LateMixed,
                "--late kafka://... goes with --output kafka://... (and a file --late with a file --output)",
            ),
            (
                OptionsError::LatePlace,
                "--late kafka://...: one topic on the brokers of --output",
            ),
            (
                OptionsError::AuditMixed,
                "--audit kafka://... goes with --output kafka://... (its records are written in the output's transactions)",
            ),
            (
                OptionsError::AuditPlace,
                "--audit kafka://...: one topic on the brokers of --output",
            ),
            (
                OptionsError::ShadowMixed,
                "--shadow-output kafka://... goes with --output kafka://... (its records are written in the output's transactions)",
            ),
            (
                OptionsError::DecisionsMixed,
                "--decisions kafka://... goes with --output kafka://... (its records are written in the output's transactions)",
            ),
            (
                OptionsError::DecisionsPlace,
                "--decisions kafka://...: one topic on the brokers of --output",
            ),
            (
                OptionsError::ShadowPlace,
                "--shadow-output kafka://...: one topic on the brokers of --output",
            ),
            (
                OptionsError::KafkaOnly,
                "the --kafka-* options, --transactional-id and --time kafka need --events or --output kafka://...",
            ),
            (
                OptionsError::RecordTimeAlone,
                "--time kafka needs --events kafka://... (the records' timestamps)",
            ),
            (
                OptionsError::StartAlone,
                "--kafka-start and --kafka-until need --events kafka://...",
            ),
            (
                OptionsError::MismatchAlone,
                "--kafka-offset-mismatch needs --events kafka://...",
            ),
            (
                OptionsError::TransactionalIdAlone,
                "--transactional-id needs --output kafka://... and --checkpoint (the transactions commit with the checkpoints)",
            ),
            (
                OptionsError::MarkerTopicAlone,
                "--kafka-marker-topic needs --output kafka://... and --checkpoint",
            ),
            (
                OptionsError::Property {
                    property: "linger.ms=soon".into(),
                    reason: "Invalid value".into(),
                },
                "--kafka linger.ms=soon: Invalid value",
            ),
            (
                OptionsError::NotBuiltIn {
                    property: "security.protocol=ssl".into(),
                    needs: "SSL (TLS: OpenSSL)".into(),
                    built: "gzip".into(),
                },
                "--kafka security.protocol=ssl: this cepheid's Kafka client (librdkafka) is built without SSL (TLS: OpenSSL) \
                 (it has: gzip); TLS and SASL other than PLAIN are not supported yet (docs/kafka.md, \"TLS and SASL\")",
            ),
        ];
        for (error, said) in cases {
            let words = error.to_string();
            assert!(
                !words.contains("--"),
                "a flag in the library's words: {words}"
            );
            assert_eq!(in_flags(&words), said);
        }
    }
}
