//! What [`KafkaOptions`] open, as `cepheid run` opens them: the source of
//! a Kafka `events` (or one per worker, the partitions dealt to them,
//! [`KafkaSource::shares`]) and the sink of a Kafka `output`, as the
//! runtime's boxed [`Source`] and [`Sink`], ready for
//! `cepheid_runtime::Runtime::with_source` or the dataflow crate's run on
//! workers. Their configurations ([`KafkaOptions::source_config`],
//! [`KafkaOptions::sink_config`]) are public too, for a program that sets
//! more than the options name.

use std::ops::Range;
use std::path::Path;

use cepheid_runtime::{Config, Sink, Source};

use crate::apart::CommitApart;
use crate::command::{is_kafka, parse_url, KafkaOptions, Sides};
use crate::error::KafkaError;
use crate::options::{default_transactional_id, Url};
use crate::sink::{KafkaSink, OutputTopics, SinkConfig, Transactional};
use crate::source::{KafkaSource, Partitions, SourceConfig, StartAt};

/// One source per worker of a process, in order, `None` for a worker
/// dealt no partition: what the dataflow crate's `Workers::with_sources`
/// takes ([`KafkaOptions::open_shares`]).
pub type Shares = Vec<Option<Box<dyn Source>>>;

/// The source's consumer group when no transactional id names one.
const GROUP: &str = "cepheid";

/// The URL `setting` gives as `path`, as a configuration error
/// ([`KafkaOptions::check`] says it better, before).
fn url(setting: &'static str, path: &Path) -> Result<Url, KafkaError> {
    parse_url(setting, path).map_err(|e| KafkaError::Config {
        reason: e.to_string(),
    })
}

impl KafkaOptions<'_> {
    /// The sink's transactional id, also the consumer group its offsets
    /// are committed for: with a checkpoint and a Kafka output
    /// ([`Config::checkpoint`], [`Config::output`]), the one given
    /// ([`KafkaOptions::transactional_id`]) or [`default_transactional_id`]
    /// of the checkpoint folder; otherwise none (an idempotent sink).
    pub fn sink_transactional_id(&self, config: &Config) -> Option<String> {
        let run = Sides::of(config);
        match (run.checkpoint, is_kafka(run.output)) {
            (Some(dir), true) => Some(
                self.transactional_id
                    .map_or_else(|| default_transactional_id(dir), str::to_string),
            ),
            _ => None,
        }
    }

    /// The configuration of the source of a Kafka `events` (`None` for a
    /// file): every partition of its topics, from [`KafkaOptions::start`]
    /// (the earliest records by default), bounded with
    /// [`KafkaOptions::until`], the retries, the properties and the
    /// rules topic; its consumer group the sink's transactional id
    /// ([`KafkaOptions::sink_transactional_id`]), else `cepheid`.
    pub fn source_config(&self, config: &Config) -> Result<Option<SourceConfig>, KafkaError> {
        self.source_config_in(config, self.sink_transactional_id(config))
    }

    /// [`KafkaOptions::source_config`] in consumer group `group` (`None`:
    /// `cepheid`).
    fn source_config_in(
        &self,
        config: &Config,
        group: Option<String>,
    ) -> Result<Option<SourceConfig>, KafkaError> {
        let run = Sides::of(config);
        if !is_kafka(run.events) {
            return Ok(None);
        }
        let events = url("`Config::input`", run.events)?;
        let topics: Vec<&str> = events.topics.iter().map(String::as_str).collect();
        let mut c = SourceConfig::new(events.brokers.clone(), &topics);
        c.start = self.start.cloned().unwrap_or(StartAt::Earliest);
        c.until = self.until.cloned();
        c.on_mismatch = self.offset_mismatch.unwrap_or_default();
        c.retry = self.retry;
        c.group_id = group.unwrap_or_else(|| GROUP.to_string());
        c.properties = self.properties.to_vec();
        if let Some(rules) = self.rules_topic {
            c.rules_topic = url("`KafkaOptions::rules_topic`", rules)?
                .topics
                .into_iter()
                .next();
        }
        for list in config.lists.iter().filter(|l| is_kafka(&l.path)) {
            let topic = url("`Config::lists`", &list.path)?
                .topics
                .into_iter()
                .next();
            c.list_topics.extend(topic.map(|t| (list.list.clone(), t)));
        }
        Ok(Some(c))
    }

    /// The configuration of the sink of a Kafka `output` (`None` for a
    /// file): matches to its topic, timeouts to the topic of `timeouts`
    /// (else the same), late events to the topic of `late` when given
    /// (else none are made); transactional with a checkpoint
    /// ([`KafkaOptions::sink_transactional_id`], the marker topic's
    /// partition 0 with [`KafkaOptions::marker_topic`]), idempotent
    /// without.
    pub fn sink_config(&self, config: &Config) -> Result<Option<SinkConfig>, KafkaError> {
        let run = Sides::of(config);
        if !is_kafka(run.output) {
            return Ok(None);
        }
        let output = url("`Config::output`", run.output)?;
        let matches = output.topics[0].clone();
        let timeouts = match self.timeouts {
            Some(t) => url("`KafkaOptions::timeouts`", t)?.topics[0].clone(),
            None => matches.clone(),
        };
        let late = match run.late {
            Some(l) => Some(url("`Config::late`", l)?.topics[0].clone()),
            None => None,
        };
        let topics = OutputTopics::PerKind {
            matches: matches.clone(),
            timeouts,
            late: late.clone().unwrap_or(matches),
        };
        let mut c = SinkConfig::new(output.brokers, topics);
        c.retry = self.retry;
        c.late = late.is_some();
        c.audit = match run.audit.filter(|a| is_kafka(a)) {
            Some(a) => Some(url("`Config::audit`", a)?.topics[0].clone()),
            None => None,
        };
        c.shadow = match run.shadow.filter(|s| is_kafka(s)) {
            Some(s) => Some(url("`Config::shadow_output`", s)?.topics[0].clone()),
            None => None,
        };
        c.decisions = match run.decisions.filter(|d| is_kafka(d)) {
            Some(d) => Some(url("`Config::decisions`", d)?.topics[0].clone()),
            None => None,
        };
        c.properties = self.properties.to_vec();
        c.foreign_source = !is_kafka(run.events);
        if let Some(id) = self.sink_transactional_id(config) {
            let mut t = Transactional::new(id.clone(), id);
            t.marker = self.marker_topic.map(|topic| (topic.to_string(), 0));
            c.transactional = Some(t);
        }
        Ok(Some(c))
    }

    /// Opens the source of `config`'s Kafka input (`None` for a file): it
    /// connects and checks that its topics exist, waiting for the broker
    /// up to [`KafkaOptions::retry`]'s limit. `config` learns what the
    /// source implies: event time per partition
    /// ([`Config::split_watermarks`], Flink's Kafka source) and, with a
    /// rules topic or a list's topic, a rules stream
    /// ([`Config::source_rules`]); the lists of [`Config::lists`] fed by
    /// topics (`kafka://BROKERS/TOPIC`) are the source's, taken out of
    /// them (`docs/kafka.md`, "Lists from topics"). (Open it before
    /// [`Config::engine`] makes an engine of the config.)
    pub fn open_source(&self, config: &mut Config) -> Result<Option<Box<dyn Source>>, KafkaError> {
        match self.source_config(config)? {
            Some(c) => {
                let source = KafkaSource::new(c)?;
                implied_by_source(self, config);
                Ok(Some(Box::new(source)))
            }
            None => Ok(None),
        }
    }

    /// Opens the sink of `config`'s Kafka output (`None` for a file), as
    /// [`KafkaOptions::sink_config`] says: transactional when `config`
    /// has a checkpoint folder, idempotent otherwise. It checks that its
    /// topics exist. The records go to it: `config`'s outputs (which
    /// named its topics) become none.
    pub fn open_sink(&self, config: &mut Config) -> Result<Option<Box<dyn Sink>>, KafkaError> {
        let Some(c) = self.sink_config(config)? else {
            return Ok(None);
        };
        let (audit, shadow, decisions) =
            (c.audit.is_some(), c.shadow.is_some(), c.decisions.is_some());
        let sink = KafkaSink::new(c)?;
        config.output = None;
        config.late = None;
        // (topics of the sink's; a file `Config::audit` or
        // `Config::shadow_output` stays, which the run refuses with this
        // sink)
        if audit {
            config.audit = None;
        }
        if shadow {
            config.shadow_output = None;
        }
        if decisions {
            config.decisions = None;
        }
        // (a transactional one commits apart from the run: the run does
        // not wait for each checkpoint's transaction, `CommitApart`)
        if sink.is_transactional() {
            return Ok(Some(Box::new(CommitApart::new(sink))));
        }
        Ok(Some(Box::new(sink)))
    }

    /// Opens the sources of `config`'s Kafka input for the workers
    /// `workers` (numbered over every process) of `total` (`None` for a
    /// file): [`KafkaSource::shares`], in consumer group `cepheid`.
    /// `config` learns what they imply, as with
    /// [`KafkaOptions::open_source`].
    pub fn open_shares(
        &self,
        config: &mut Config,
        workers: Range<usize>,
        total: usize,
    ) -> Result<Option<Shares>, KafkaError> {
        let Some(source) = self.source_config_in(config, None)? else {
            return Ok(None);
        };
        let shares = KafkaSource::shares(&source, workers, total)?;
        implied_by_source(self, config);
        let boxed = |s: KafkaSource| Box::new(s) as Box<dyn Source>;
        Ok(Some(shares.into_iter().map(|s| s.map(boxed)).collect()))
    }
}

impl KafkaSource {
    /// The sources of the workers `workers` (numbered over every process)
    /// of `total` over the partitions of `config` (`docs/kafka.md`, "On
    /// workers"): its (topic, partition) pairs, from the broker's
    /// metadata in the source's order (topics as named, partitions by
    /// number), dealt in turn, pair `i` to worker `i mod total`; one
    /// source per worker of `workers`, in order, `None` for a worker dealt
    /// no partition.
    pub fn shares(
        config: &SourceConfig,
        workers: Range<usize>,
        total: usize,
    ) -> Result<Vec<Option<KafkaSource>>, KafkaError> {
        // (the partitions alone: the topics of control records are read
        // by the share that reads them)
        let mut partitions = config.clone();
        partitions.rules_topic = None;
        partitions.list_topics.clear();
        let pairs = KafkaSource::new(partitions)?.splits().to_vec();
        let mut sources = Vec::with_capacity(workers.len());
        let first = workers.start;
        for (worker, share) in (first..).zip(deal(&pairs, workers, total)) {
            if share.is_empty() {
                sources.push(None);
                continue;
            }
            let mut c = config.clone();
            c.partitions = Partitions::Only(share);
            if worker != 0 {
                // The rules topic and the lists' topics are read once,
                // by worker 0's source (dealt partition 0 of the first
                // topic), whose changes go to every worker.
                c.rules_topic = None;
                c.list_topics.clear();
            }
            sources.push(Some(KafkaSource::new(c)?));
        }
        Ok(sources)
    }
}

/// What a Kafka source implies for the run: event time per partition, a
/// rules stream with a rules topic or a list's topic; the lists fed by
/// topics are the source's, not files.
fn implied_by_source(options: &KafkaOptions<'_>, config: &mut Config) {
    config.split_watermarks = true;
    let topics = config.lists.iter().any(|l| is_kafka(&l.path));
    config.source_rules |= options.rules_topic.is_some() || topics;
    config.lists.retain(|l| !is_kafka(&l.path));
}

/// `items` dealt in turn over `total` workers, item `i` to worker `i mod
/// total`: the shares of the workers `workers`, in order.
fn deal<T: Clone>(items: &[T], workers: Range<usize>, total: usize) -> Vec<Vec<T>> {
    let total = total.max(1);
    let share = |worker: usize| {
        let mine = items
            .iter()
            .enumerate()
            .filter(|(i, _)| i % total == worker);
        mine.map(|(_, item)| item.clone()).collect()
    };
    workers.map(share).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cepheid_runtime::Input;

    use super::*;
    use crate::{Retry, Until};

    #[test]
    fn partitions_are_dealt_in_turn_over_the_workers_of_every_process() {
        let pairs: Vec<u32> = (0..5).collect();
        // One process of two workers.
        assert_eq!(deal(&pairs, 0..2, 2), [vec![0, 2, 4], vec![1, 3]]);
        // Process 1 of two, each of two workers: workers 2 and 3 of 4.
        assert_eq!(deal(&pairs, 2..4, 4), [vec![2], vec![3]]);
        // More workers than partitions: the last get none.
        assert_eq!(deal(&pairs[..1], 0..3, 3), [vec![0], vec![], vec![]]);
    }

    const IN: &str = "kafka://a:1,b:2/in,more";
    const OUT: &str = "kafka://a:1/out";

    /// A run from `events` to `output`, nothing else set.
    fn run(events: &str, output: &str) -> Config {
        let mut config = Config::new(Input::file(events), Vec::new());
        config.output = Some(output.into());
        config
    }

    #[test]
    fn the_options_make_the_source_and_sink_configurations() {
        let props = [("acks".to_string(), "all".to_string())];
        let start = StartAt::Timestamp(7);
        let mut config = run(IN, OUT);
        config.late = Some("kafka://a:1/late".into());
        let options = KafkaOptions {
            timeouts: Some(Path::new("kafka://a:1/timeouts")),
            rules_topic: Some(Path::new("kafka://a:1,b:2/rules")),
            properties: &props,
            start: Some(&start),
            until: Some(&Until::End),
            retry: Retry {
                limit: Duration::from_secs(3),
                ..Retry::default()
            },
            ..KafkaOptions::default()
        };
        assert_eq!(options.check(&config), Ok(()));
        let source = options.source_config(&config).unwrap();
        let source = source.expect("a Kafka source");
        assert_eq!(source.brokers, "a:1,b:2");
        assert_eq!(source.topics, ["in", "more"]);
        assert_eq!(source.start, start);
        assert_eq!(source.until, Some(Until::End));
        assert_eq!(source.retry.limit, Duration::from_secs(3));
        assert_eq!(source.properties, props);
        assert_eq!(source.rules_topic.as_deref(), Some("rules"));
        // Without a checkpoint: an idempotent sink, the default group.
        assert_eq!(source.group_id, "cepheid");
        let sink = options.sink_config(&config).unwrap().expect("a Kafka sink");
        assert_eq!(sink.brokers, "a:1");
        assert_eq!(
            sink.topics,
            OutputTopics::PerKind {
                matches: "out".into(),
                timeouts: "timeouts".into(),
                late: "late".into(),
            }
        );
        assert!(sink.late);
        assert!(sink.transactional.is_none());
        // With the run's checkpoint folder (given once, in the config):
        // transactions, and the source in their group.
        config.checkpoint = Some("state".into());
        let committed = KafkaOptions {
            transactional_id: Some("t1"),
            marker_topic: Some("marks"),
            ..options
        };
        let source = committed.source_config(&config).unwrap().unwrap();
        assert_eq!(source.group_id, "t1");
        let t = committed
            .sink_config(&config)
            .unwrap()
            .unwrap()
            .transactional;
        let t = t.expect("transactional");
        assert_eq!(
            (t.transactional_id.as_str(), t.group_id.as_str()),
            ("t1", "t1")
        );
        assert_eq!(t.marker, Some(("marks".to_string(), 0)));
        let default_id = KafkaOptions {
            transactional_id: None,
            ..committed
        };
        assert_eq!(
            default_id.sink_transactional_id(&config),
            Some(default_transactional_id(Path::new("state")))
        );
        let t = default_id.sink_config(&config).unwrap().unwrap();
        assert!(t.transactional.is_some());
    }

    #[test]
    fn lists_fed_by_topics_go_to_the_source_and_files_stay_the_runtimes() {
        let mut config = run(IN, OUT);
        let list = |arg: &str| cepheid_runtime::lists::ListFile::parse(arg).unwrap();
        config.lists = vec![
            list("files=f.csv"),
            list("blocked=kafka://a:1,b:2/blocked"),
            list("nets=kafka://a:1,b:2/nets"),
        ];
        let options = KafkaOptions::default();
        let source = options.source_config(&config).unwrap().unwrap();
        assert_eq!(
            source.list_topics,
            [
                ("blocked".to_string(), "blocked".to_string()),
                ("nets".to_string(), "nets".to_string())
            ]
        );
        implied_by_source(&options, &mut config);
        assert!(config.source_rules && config.split_watermarks);
        assert_eq!(config.lists, [list("files=f.csv")]);
    }

    #[test]
    fn files_open_nothing_and_keep_the_configs_outputs() {
        let options = KafkaOptions::default();
        let mut config = run("events.jsonl", "out.jsonl");
        assert!(options.source_config(&config).unwrap().is_none());
        assert!(options.sink_config(&config).unwrap().is_none());
        assert!(options.open_source(&mut config).unwrap().is_none());
        assert!(options.open_sink(&mut config).unwrap().is_none());
        assert!(options.open_shares(&mut config, 0..2, 2).unwrap().is_none());
        assert_eq!(config.output.as_deref(), Some(Path::new("out.jsonl")));
        // (nothing implied by a file)
        assert!(!config.split_watermarks && !config.source_rules);
        // Only one topic at `--late kafka://...` counts (checked before).
        let mut late = run("events.jsonl", OUT);
        late.late = Some("kafka://a:1/".into());
        let e = options.sink_config(&late).unwrap_err();
        assert!(
            e.to_string()
                .contains("`Config::late` kafka://a:1/: no topic"),
            "{e}"
        );
    }
}
