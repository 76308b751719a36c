//! What the rule lab's commands share (`diff`, `backtest`,
//! `docs/rule-lab.md`): the events a rule set runs over, and a run of it
//! as `cepheid run` runs it, into records.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cepheid_core::time::parse_duration;
use cepheid_engine::io::Format;
use cepheid_engine::Rules;
use cepheid_runtime::lists::ListFile;
use cepheid_runtime::{Config, Input, Level, Notice, Report, Runtime, Time};

use crate::run::FormatArg;
use crate::{EXIT_IO, EXIT_PATTERN_ERROR, EXIT_USAGE};

/// The events a rule set runs over, read as `run` reads them.
#[derive(clap::Args)]
pub struct Events {
    /// The events: a file, or a range of a Kafka topic
    /// (kafka://HOST:PORT/TOPIC, with --kafka-start and --kafka-until).
    #[arg(long = "events", value_name = "FILE|URL")]
    path: PathBuf,
    /// Kafka: where the range starts, as `run --kafka-start` (`earliest`,
    /// the default; a time; offsets `0:1200,1:1180`).
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "WHERE", value_parser = cepheid_kafka::parse_start)]
    kafka_start: Option<cepheid_kafka::StartAt>,
    /// Kafka: where the range ends, as `run --kafka-until` (`end`, the
    /// default: each partition's end when the command starts; a time;
    /// offsets, the first not read). Fixed as offsets once, so every run
    /// of the command reads the same records.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "WHERE", value_parser = cepheid_kafka::parse_until)]
    kafka_until: Option<cepheid_kafka::Until>,
    /// Kafka: a librdkafka property, as `run --kafka` (repeatable).
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "NAME=VALUE", value_parser = cepheid_kafka::parse_property)]
    kafka: Vec<(String, String)>,
    /// The Kafka range as offsets, fixed by [`Events::check`].
    #[cfg(feature = "kafka")]
    #[arg(skip)]
    range: std::cell::OnceCell<(cepheid_kafka::StartAt, cepheid_kafka::Until)>,
    /// The events' format, as `run --format`.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: FormatArg,
    /// The events' time field, as `run --time-field`.
    #[arg(long, value_name = "FIELD", default_value = "ts")]
    time_field: String,
    /// Bounded out-of-orderness, as `run --max-delay`.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0ms",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    max_delay: i64,
    /// A reference list, as `run --list`. Repeatable.
    #[arg(long = "list", value_name = "NAME=PATH", value_parser = ListFile::parse)]
    lists: Vec<ListFile>,
    /// Worker threads, as `run --workers` (the same records as one
    /// engine's, in another order, which the comparisons do not see).
    #[cfg(feature = "workers")]
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024)
    )]
    workers: Option<usize>,
}

impl Events {
    /// Refuses standard input (`why`: what the command does with the
    /// file) with exit 2, and Kafka options without a Kafka range; fixes
    /// a Kafka range as offsets, exit 6 when the broker does not answer,
    /// 4 on another Kafka error.
    pub fn check(&self, why: &str) -> Result<(), u8> {
        if self.path == Path::new("-") {
            say!("error: {why}: give a file, not standard input");
            return Err(EXIT_USAGE);
        }
        #[cfg(feature = "kafka")]
        if self.is_kafka() {
            return self.fix_range();
        } else if self.kafka_start.is_some() || self.kafka_until.is_some() || !self.kafka.is_empty()
        {
            say!("error: --kafka-start, --kafka-until and --kafka need --events kafka://...");
            return Err(EXIT_USAGE);
        }
        Ok(())
    }

    /// Runs the rules at `path` over the events as `cepheid run` would
    /// (the library's run, into a file of its own; `which` names it in
    /// what it says): the rules, and the records as `run` writes them (a
    /// `shadow` pattern's, which `run` writes to its shadow output, after
    /// the others: they are the rule's records all the same).
    pub fn run(&self, path: &Path, which: &str) -> Result<(Rules, Vec<String>), u8> {
        let (loaded, checked) = crate::load_checked(&[path.to_path_buf()])?;
        let rules = Rules::from_checked(loaded, checked).map_err(|_| EXIT_PATTERN_ERROR)?;
        let dir = std::env::temp_dir().join(format!("cepheid-lab-{}-{which}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            say!("error: cannot create {}: {e}", dir.display());
            EXIT_IO
        })?;
        let out = dir.join("records.jsonl");
        let mut config = self.config(path);
        config.output = Some(out.clone());
        let shadow = dir.join("shadow.jsonl");
        config.shadow_output = Some(shadow.clone());
        let said = Box::new(Said(which.to_string()));
        let failed = |e: &cepheid_runtime::Error| {
            say!(
                "error: {which} ({}): {}",
                path.display(),
                crate::run::shown(e)
            );
            crate::run::error_status(e)
        };
        let result = self
            .runtime(config, &rules, said, which)
            .and_then(|runtime| {
                let summary = runtime.run();
                match summary.error() {
                    Some(e) => Err(failed(e)),
                    None => [&out, &shadow]
                        .into_iter()
                        .map(|file| {
                            std::fs::read_to_string(file).map_err(|e| {
                                say!("error: cannot read {}: {e}", file.display());
                                EXIT_IO
                            })
                        })
                        .collect::<Result<String, u8>>(),
                }
            });
        let _ = std::fs::remove_dir_all(&dir);
        Ok((rules, result?.lines().map(str::to_string).collect()))
    }
}

impl Events {
    /// The run's configuration, as `cepheid run` would make it of these
    /// options, for the rules at `rules` (no output).
    pub fn config(&self, rules: &Path) -> Config {
        let mut config = Config::new(Input::File(self.path.clone()), vec![rules.to_path_buf()]);
        config.format = self.format();
        config.time = Time::Event {
            field: self.time_field.clone(),
        };
        config.max_delay = Duration::from_millis(u64::try_from(self.max_delay).unwrap_or(0));
        config.lists.clone_from(&self.lists);
        config
    }

    /// The events' format.
    pub fn format(&self) -> Format {
        match self.format {
            FormatArg::Jsonl => Format::JsonLines,
            FormatArg::Csv => Format::Csv,
        }
    }

    /// The events' time field.
    pub fn time_field(&self) -> &str {
        &self.time_field
    }

    /// Are the events a range of a Kafka topic (`--events kafka://...`)?
    pub fn is_kafka_range(&self) -> bool {
        #[cfg(feature = "kafka")]
        if self.is_kafka() {
            return true;
        }
        false
    }

    /// Was `--workers` given (`why` runs one engine)?
    pub fn workers(&self) -> bool {
        #[cfg(feature = "workers")]
        if self.workers.is_some() {
            return true;
        }
        false
    }

    /// The run of `config`: on one engine, or on `--workers`; from the
    /// Kafka range fixed by [`Events::check`] when the events are one.
    /// What stops it from starting is said (`which`: the rule set's name).
    fn runtime(
        &self,
        config: Config,
        rules: &Rules,
        said: Box<Said>,
        which: &str,
    ) -> Result<Runtime, u8> {
        let failed = |e: cepheid_runtime::Error| {
            say!("error: {which}: {}", crate::run::shown(&e));
            crate::run::error_status(&e)
        };
        #[cfg(feature = "kafka")]
        if let Some(range) = self.range.get() {
            return self.kafka_runtime(config, rules, said, range);
        }
        #[cfg(feature = "workers")]
        if let Some(workers) = self.workers {
            let cluster = Box::new(self.cluster(workers));
            return Runtime::on_cluster(config, rules, cluster, None, None, said).map_err(failed);
        }
        Runtime::new(config, rules, said).map_err(failed)
    }

    /// The workers of `--workers N`.
    #[cfg(feature = "workers")]
    fn cluster(&self, workers: usize) -> cepheid_dataflow::run::Cluster {
        let scale = cepheid_dataflow::run::Scale {
            workers,
            ..cepheid_dataflow::run::Scale::default()
        };
        cepheid_dataflow::run::Cluster::new(scale)
    }

    /// The file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The least and the largest event time of the file or the Kafka
    /// range (events without a time left out), as the run reads its time
    /// field: integer milliseconds or an RFC 3339 time.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        #[cfg(feature = "kafka")]
        if let Some(range) = self.range.get() {
            return self.kafka_time_span(range);
        }
        let text = std::fs::read_to_string(&self.path).ok()?;
        let times: Vec<i64> = match self.format {
            FormatArg::Jsonl => (text.lines())
                .filter_map(|l| self.time_of_line(l.as_bytes()))
                .collect(),
            FormatArg::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .from_reader(text.as_bytes());
                let column = (reader.headers().ok()?.iter()).position(|h| h == self.time_field)?;
                (reader.records().flatten())
                    .filter_map(|row| {
                        let cell = row.get(column)?;
                        cell.parse::<i64>()
                            .ok()
                            .or_else(|| cepheid_engine::io::parse_rfc3339(cell).ok())
                    })
                    .collect()
            }
        };
        Some((*times.iter().min()?, *times.iter().max()?))
    }

    /// The event time of a JSON line (`None`: none, or not JSON).
    fn time_of_line(&self, line: &[u8]) -> Option<i64> {
        let event = serde_json::from_slice::<serde_json::Value>(line).ok()?;
        match &event[self.time_field.as_str()] {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => cepheid_engine::io::parse_rfc3339(s).ok(),
            _ => None,
        }
    }
}

/// A Kafka range (`--events kafka://...`): fixed once as offsets, read by
/// each run of the command as `cepheid run` reads a topic.
#[cfg(feature = "kafka")]
impl Events {
    /// Are the events a Kafka range?
    fn is_kafka(&self) -> bool {
        cepheid_kafka::is_kafka(&self.path)
    }

    /// The Kafka options of the range from `start` to `until`.
    fn options<'a>(
        &'a self,
        start: &'a cepheid_kafka::StartAt,
        until: &'a cepheid_kafka::Until,
    ) -> cepheid_kafka::KafkaOptions<'a> {
        cepheid_kafka::KafkaOptions {
            properties: &self.kafka,
            start: Some(start),
            until: Some(until),
            ..cepheid_kafka::KafkaOptions::default()
        }
    }

    /// Opens the range from `start` to `until` (the broker waited for as
    /// `run` waits, 60 s), said on failure.
    fn open(
        &self,
        start: &cepheid_kafka::StartAt,
        until: &cepheid_kafka::Until,
    ) -> Result<cepheid_kafka::KafkaSource, u8> {
        let config = Config::new(Input::file(&self.path), Vec::new());
        let options = self.options(start, until);
        let opened = (options.check(&config))
            .map_err(|e| cepheid_kafka::KafkaError::Config {
                reason: e.to_string(),
            })
            .and_then(|()| options.source_config(&config))
            .and_then(|c| {
                let c = c.expect("the events are a kafka:// URL");
                cepheid_kafka::KafkaSource::new(c)
            });
        opened.map_err(|e| {
            say!("error: {}", crate::run::in_flags(&e.to_string()));
            crate::run::kafka::status_of(&e)
        })
    }

    /// Fixes the range as offsets: where each partition starts and ends
    /// now (`--kafka-until end` is the end when the command starts).
    fn fix_range(&self) -> Result<(), u8> {
        let start = (self.kafka_start.clone()).unwrap_or(cepheid_kafka::StartAt::Earliest);
        let until = (self.kafka_until.clone()).unwrap_or(cepheid_kafka::Until::End);
        let source = self.open(&start, &until)?;
        let offsets = |position: &cepheid_kafka::KafkaPosition| {
            cepheid_kafka::PartitionOffsets(
                (position.iter())
                    .map(|(t, p, o)| (Some(t.to_string()), p, o))
                    .collect(),
            )
        };
        let from = offsets(&source.position());
        let to = offsets(source.end().expect("a bounded source has an end"));
        let _ = self.range.set((
            cepheid_kafka::StartAt::Offsets(from),
            cepheid_kafka::Until::Offsets(to),
        ));
        Ok(())
    }

    /// A run over the range, on one engine or on `--workers`.
    fn kafka_runtime(
        &self,
        mut config: Config,
        rules: &Rules,
        said: Box<Said>,
        (start, until): &(cepheid_kafka::StartAt, cepheid_kafka::Until),
    ) -> Result<Runtime, u8> {
        let options = self.options(start, until);
        let kafka_failed = |e: cepheid_kafka::KafkaError| {
            say!("error: {}", crate::run::in_flags(&e.to_string()));
            crate::run::kafka::status_of(&e)
        };
        let failed = |e: cepheid_runtime::Error| {
            say!("error: {}", crate::run::shown(&e));
            crate::run::error_status(&e)
        };
        #[cfg(feature = "workers")]
        if let Some(workers) = self.workers {
            let cluster = self.cluster(workers);
            let (own, all) = cepheid_runtime::Cluster::workers(&cluster);
            let sources = (options.open_shares(&mut config, own, all)).map_err(kafka_failed)?;
            return Runtime::on_cluster(config, rules, Box::new(cluster), sources, None, said)
                .map_err(failed);
        }
        let source = options.open_source(&mut config).map_err(kafka_failed)?;
        let mut engine = config.engine();
        if let Err(source) = engine.add(rules) {
            say!("error: {source}");
            return Err(EXIT_PATTERN_ERROR);
        }
        Runtime::with_source(config, engine, source, None, said).map_err(failed)
    }

    /// The least and the largest event time of the range's records (as
    /// JSON lines; CSV has no place in a topic), read once more.
    fn kafka_time_span(
        &self,
        (start, until): &(cepheid_kafka::StartAt, cepheid_kafka::Until),
    ) -> Option<(i64, i64)> {
        let mut source = self.open(start, until).ok()?;
        let mut batch = Vec::new();
        let mut span: Option<(i64, i64)> = None;
        while !source.at_end() {
            batch.clear();
            source.read(&mut batch, Duration::from_millis(100)).ok()?;
            for record in &batch {
                let time = record.payload.as_deref().and_then(|p| self.time_of_line(p));
                if let Some(t) = time {
                    span = Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
                }
            }
        }
        span
    }
}

/// What a run says: its warnings and errors, named by `which`; the rest
/// (its summary, the lists' sizes) is the report's.
struct Said(String);

impl Report for Said {
    fn notice(&mut self, notice: Notice) {
        if notice.level() != Level::Info {
            say!("{}: {}", self.0, notice.as_str());
        }
    }
}
