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
    range: std::sync::OnceLock<(cepheid_kafka::StartAt, cepheid_kafka::Until)>,
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
    /// what it says): the rules, and the records as `run` writes them.
    pub fn run(&self, path: &Path, which: &str) -> Result<(Rules, Vec<String>), u8> {
        let mut records = Vec::new();
        let rules = self.run_each(path, which, &mut |line| records.push(line.to_string()))?;
        Ok((rules, records))
    }

    /// [`Events::run`], each record given to `each` as it is read back,
    /// on a thread of its own while the run writes them (none kept: a
    /// backtest of a million alerts holds none of their events).
    pub fn run_each(
        &self,
        path: &Path,
        which: &str,
        each: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Rules, u8> {
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
        let done = std::sync::atomic::AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            let reader = scope.spawn(|| read_lines(&out, &done, each));
            let ran = self.run_rules(config, &rules, said, path, which);
            done.store(true, std::sync::atomic::Ordering::Release);
            let read =
                (reader.join()).unwrap_or_else(|_| Err(std::io::Error::other("its reader failed")));
            ran.and_then(|()| {
                read.map_err(|e| {
                    say!("error: cannot read {}: {e}", out.display());
                    EXIT_IO
                })
            })
        });
        // (a `shadow` pattern's records, which `run` writes to its shadow
        // output, after the others: they are the rule's records all the
        // same)
        let result = result.and_then(|()| {
            let finished = std::sync::atomic::AtomicBool::new(true);
            read_lines(&shadow, &finished, each).map_err(|e| {
                say!("error: cannot read {}: {e}", shadow.display());
                EXIT_IO
            })
        });
        let _ = std::fs::remove_dir_all(&dir);
        result.map(|()| rules)
    }

    /// The run of `rules` with `config`, what it says said as `which` of
    /// the rules at `path`.
    fn run_rules(
        &self,
        config: Config,
        rules: &Rules,
        said: Box<Said>,
        path: &Path,
        which: &str,
    ) -> Result<(), u8> {
        let runtime = self.runtime(config, rules, said, which)?;
        let summary = runtime.run();
        match summary.error() {
            Some(e) => {
                say!(
                    "error: {which} ({}): {}",
                    path.display(),
                    crate::run::shown(e)
                );
                Err(crate::run::error_status(e))
            }
            None => Ok(()),
        }
    }
}

/// Each line of the file at `path`, without its newline, to `each`, as
/// the run writes it: read on until `done` (the run ended, its outputs
/// flushed) and then to its end.
fn read_lines(
    path: &Path,
    done: &std::sync::atomic::AtomicBool,
    each: &mut dyn FnMut(&str),
) -> std::io::Result<()> {
    use std::io::BufRead;
    use std::sync::atomic::Ordering;
    let pause = std::time::Duration::from_millis(2);
    let file = loop {
        // (the run creates it as it starts; a run that failed first, none)
        let finished = done.load(Ordering::Acquire);
        match std::fs::File::open(path) {
            Ok(file) => break file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !finished => {
                std::thread::sleep(pause);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 20, Tail { file, done, pause });
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        each(line.strip_suffix('\n').unwrap_or(&line));
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
    /// range (events without a time left out), read as the run reads it: the engine's decoder, with
    /// the time field and no other (a JSON line's other fields skipped
    /// unbuilt). Streamed: `backtest` reads it beside its run.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        use std::io::BufRead;
        #[cfg(feature = "kafka")]
        if let Some(range) = self.range.get() {
            return self.kafka_time_span(range);
        }
        let mut decoder = self.time_decoder();
        let file = std::fs::File::open(&self.path).ok()?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let mut span: Option<(i64, i64)> = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return span,
                Ok(_) => {}
            }
            if let Ok(cepheid_engine::io::Item::Event(t, _)) = decoder.decode(&line) {
                span = Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
            }
        }
    }

    /// A decoder of the events' time field as the run reads it, and no
    /// other field (a JSON line's others skipped unbuilt).
    fn time_decoder(&self) -> cepheid_engine::io::Decoder {
        let table = cepheid_core::record::FieldTable::new();
        cepheid_engine::io::Decoder::new(self.format(), &self.time_field, table)
    }
}

/// A file read as it is written: at its end, waits for more until `done`
/// (its writer finished), then ends there.
struct Tail<'a> {
    file: std::fs::File,
    done: &'a std::sync::atomic::AtomicBool,
    pause: std::time::Duration,
}

impl std::io::Read for Tail<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // (`done` looked at before the read: once it is set, a read of
            // nothing is the end)
            let finished = self.done.load(std::sync::atomic::Ordering::Acquire);
            let n = self.file.read(buf)?;
            if n > 0 || finished {
                return Ok(n);
            }
            std::thread::sleep(self.pause);
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
        let mut decoder = self.time_decoder();
        let mut span: Option<(i64, i64)> = None;
        while !source.at_end() {
            batch.clear();
            source.read(&mut batch, Duration::from_millis(100)).ok()?;
            for payload in batch.iter().filter_map(|r| r.payload.as_deref()) {
                if let Ok(cepheid_engine::io::Item::Event(t, _)) = decoder.decode(payload) {
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

/// The fields of a record that hold the matched events' values: the
/// events, the values computed from them, and the values the rules read.
pub const EVENT_FIELDS: [&str; 3] = ["events", "select", "reads"];

/// `line`, a record, without [`EVENT_FIELDS`] (`--no-events`), its other
/// fields as they were and in their order. A line that is not a JSON
/// object is left out whole (`None`): its text could be anything.
pub fn without_events(line: &str) -> Option<String> {
    /// An object's fields in their order, each as its JSON text.
    struct Fields<'a>(Vec<(String, &'a serde_json::value::RawValue)>);
    impl<'de: 'a, 'a> serde::Deserialize<'de> for Fields<'a> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit<'a>(std::marker::PhantomData<&'a ()>);
            impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
                type Value = Fields<'a>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<M: serde::de::MapAccess<'de>>(
                    self,
                    mut map: M,
                ) -> Result<Self::Value, M::Error> {
                    let mut fields = Vec::new();
                    while let Some(field) = map.next_entry()? {
                        fields.push(field);
                    }
                    Ok(Fields(fields))
                }
            }
            d.deserialize_map(Visit(std::marker::PhantomData))
        }
    }
    let Fields(fields) = serde_json::from_str(line).ok()?;
    let kept: Vec<String> = (fields.iter())
        .filter(|(name, _)| !EVENT_FIELDS.contains(&name.as_str()))
        .map(|(name, value)| {
            let name = serde_json::to_string(name).unwrap_or_default();
            format!("{name}:{}", value.get())
        })
        .collect();
    Some(format!("{{{}}}", kept.join(",")))
}
