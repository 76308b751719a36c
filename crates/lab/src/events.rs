//! What the rule lab's commands share (`diff`, `backtest`, `why`,
//! `docs/rule-lab.md`): the events a rule set runs over ([`Events`]), and
//! a run of it as `cepheid run` runs it, into records ([`Records`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cepheid_decode::Format;
use cepheid_engine::Rules;
use cepheid_runtime::lists::ListFile;
use cepheid_runtime::{
    Config, Input, Kind, Level, Notice, Report, Runtime, Sink, SinkError, SinkState, Time,
};

use crate::{Error, ErrorKind};

/// Where a lab command tells what is not its result: the rule set's
/// diagnostics, a run's warnings, lines left out. Each text is whole, with
/// its newline.
pub type Tell = Arc<dyn Fn(&str) + Send + Sync>;

/// A [`Tell`] to standard error; a failed write is ignored (a full disk
/// or a closed pipe where it is logged never stops the command).
pub fn stderr() -> Tell {
    Arc::new(|text: &str| {
        use std::io::Write;
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    })
}

/// The workers a lab run goes on: each call makes the cluster of one run
/// (`diff` runs twice). The command's `--workers N` is
/// `cepheid_dataflow::run::Cluster::new`.
pub type Workers = Arc<dyn Fn() -> Box<dyn cepheid_runtime::Cluster> + Send + Sync>;

/// The events a rule set runs over, read as `cepheid run` reads them: the
/// options of `run` that say how (`--events`, `--format`, `--time-field`,
/// `--max-delay`, `--list`, `--workers`, the Kafka range's).
#[non_exhaustive]
pub struct Events {
    /// The events: a file, or (feature `kafka`) a range of a Kafka topic,
    /// `kafka://HOST:PORT/TOPIC` (`Events::kafka`).
    pub path: PathBuf,
    /// The events' format, as `run --format`.
    pub format: Format,
    /// The events' time field, as `run --time-field`.
    pub time_field: String,
    /// Bounded out-of-orderness, as `run --max-delay`.
    pub max_delay: Duration,
    /// The reference lists, as `run --list`.
    pub lists: Vec<ListFile>,
    /// The most entries a list holds, as `run --max-list-entries`.
    pub max_list_entries: usize,
    /// The most window entries over all indicators, as `run
    /// --max-indicator-entries`.
    pub max_indicator_entries: usize,
    /// Worker threads to run on instead of one engine (the same records
    /// as one engine's, in another order, which the comparisons do not
    /// see); `why` runs one engine and refuses them.
    pub workers: Option<Workers>,
    /// The Kafka range, when [`Events::path`] is a `kafka://` URL.
    #[cfg(feature = "kafka")]
    pub kafka: KafkaRange,
    /// Where what is not a result is told (standard error by default).
    pub tell: Tell,
    /// The Kafka range as offsets, fixed by [`Events::check`].
    #[cfg(feature = "kafka")]
    range: std::sync::OnceLock<(cepheid_kafka::StartAt, cepheid_kafka::Until)>,
}

/// A range of a Kafka topic (`--events kafka://...`): where it starts and
/// ends and the client's properties, as `cepheid run`'s options say them.
#[cfg(feature = "kafka")]
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct KafkaRange {
    /// Where the range starts, as `run --kafka-start` (`None`: the
    /// earliest offsets).
    pub start: Option<cepheid_kafka::StartAt>,
    /// Where the range ends, as `run --kafka-until` (`None`: each
    /// partition's end when the command starts). Fixed as offsets once,
    /// so every run of the command reads the same records.
    pub until: Option<cepheid_kafka::Until>,
    /// librdkafka properties, as `run --kafka`.
    pub properties: Vec<(String, String)>,
}

impl Events {
    /// The events of the file (or Kafka URL) `path`, read as `cepheid run`
    /// reads them by default: JSON lines, time field `ts`, no delay, no
    /// list, one engine, told to standard error.
    pub fn new(path: impl Into<PathBuf>) -> Events {
        Events {
            path: path.into(),
            format: Format::JsonLines,
            time_field: "ts".to_string(),
            max_delay: Duration::ZERO,
            lists: Vec::new(),
            max_list_entries: cepheid_engine::engine::DEFAULT_MAX_LIST_ENTRIES,
            max_indicator_entries: cepheid_engine::engine::DEFAULT_MAX_INDICATOR_ENTRIES,
            workers: None,
            #[cfg(feature = "kafka")]
            kafka: KafkaRange::default(),
            tell: stderr(),
            #[cfg(feature = "kafka")]
            range: std::sync::OnceLock::new(),
        }
    }

    /// Refuses standard input (`why`: what the command does with the
    /// file), a usage error, and Kafka options without a Kafka range;
    /// fixes a Kafka range as offsets (once: a second check keeps them).
    pub fn check(&self, why: &str) -> Result<(), Error> {
        if self.path == Path::new("-") {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{why}: give a file, not standard input"),
            ));
        }
        #[cfg(feature = "kafka")]
        if self.is_kafka() {
            return self.fix_range();
        } else if self.kafka.start.is_some()
            || self.kafka.until.is_some()
            || !self.kafka.properties.is_empty()
        {
            return Err(Error::new(
                ErrorKind::Usage,
                "--kafka-start, --kafka-until and --kafka need --events kafka://...",
            ));
        }
        Ok(())
    }

    /// Runs the rules at `path` over the events as `cepheid run` would
    /// (the library's run; `which` names it in what it says): the rules,
    /// and the records as `run` writes them.
    pub fn run(&self, path: &Path, which: &str) -> Result<(Rules, Vec<String>), Error> {
        let ran = self.run_into(path, which, Vec::new())?;
        Ok((ran.rules, ran.records))
    }

    /// When the runs give their sink decisions.
    fn gives_decisions(&self) -> Gives {
        match self.workers {
            None => Gives::Always,
            Some(_) => Gives::Asked,
        }
    }

    /// [`Events::run`], each record (matches and timeouts, a `shadow`
    /// pattern's too: they are the rule's records all the same) given to
    /// `records` in the order the run makes them, through a sink of the
    /// lab's own (`ToRecords`): no file written and read back. Gives
    /// the rules, `records` back, and the least and the largest time of
    /// the events the run read
    /// ([`Summary::event_time`](cepheid_runtime::Summary::event_time)):
    /// [`Ran`].
    pub fn run_into<R: Records>(
        &self,
        path: &Path,
        which: &str,
        records: R,
    ) -> Result<Ran<R>, Error> {
        let rules = crate::load_rules(path, &self.tell)?;
        // (a shadow pattern's records are the rule's records all the same:
        // the sink takes them, `Sink::takes_shadow`, which is the run's
        // shadow output, `Config::shadow_sink`)
        let config = self.config(path);
        let said = Box::new(Said(which.to_string(), self.tell.clone()));
        let (back, given) = std::sync::mpsc::channel();
        let sink = Box::new(
            ToRecords::new(records, back, self.gives_decisions())
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a thread: {e}")))?,
        );
        let (span, left_out) = self.run_rules(config, &rules, (said, sink), path, which)?;
        // (the sink gives the records back when the run drops it, at its
        // end)
        let records = given.try_recv().map_err(|_| {
            Error::new(
                ErrorKind::Io,
                format!("{which} ({}): the run kept its records", path.display()),
            )
        })?;
        Ok(Ran {
            rules,
            records,
            span,
            left_out,
        })
    }

    /// The run of `rules` with `config` into `sink`, what it says said as
    /// `which` of the rules at `path`; the events' time span, and what
    /// the lists and indicators left out.
    fn run_rules(
        &self,
        config: Config,
        rules: &Rules,
        (said, sink): (Box<Said>, Box<dyn Sink>),
        path: &Path,
        which: &str,
    ) -> Result<(Option<(i64, i64)>, crate::LeftOut), Error> {
        let runtime = self.runtime(config, rules, (said, sink), which)?;
        let summary = runtime.run();
        match summary.end {
            cepheid_runtime::End::Failed(e) | cepheid_runtime::End::Incomplete(e) => {
                Err(Error::run(format!("{which} ({}): ", path.display()), e))
            }
            _ => Ok((summary.event_time, crate::LeftOut::of(&summary))),
        }
    }
}

/// What a lab run gives ([`Events::run_into`]).
pub struct Ran<R> {
    /// The rules it ran.
    pub rules: Rules,
    /// What took its records.
    pub records: R,
    /// The least and the largest time of the events it read.
    pub span: Option<(i64, i64)>,
    /// What its lists and indicators left out at their limits or for
    /// their values.
    pub left_out: crate::LeftOut,
}

/// What takes a lab run's records ([`Events::run_into`]), one at a time
/// in the order the run makes them, on a thread beside the run's.
pub trait Records: Send + 'static {
    /// A record: the JSON line `cepheid run` writes (UTF-8), without its
    /// newline.
    fn record(&mut self, line: &[u8]);

    /// Does it take the decisions of scenes too (`docs/decisions.md`:
    /// `"kind": "decision"` lines)? No by default: only matches and
    /// timeouts.
    fn takes_decisions(&self) -> bool {
        false
    }
}

/// The records kept whole, in the order the run made them.
impl Records for Vec<String> {
    fn record(&mut self, line: &[u8]) {
        self.push(String::from_utf8_lossy(line).into_owned());
    }
}

/// When a lab run gives its sink decisions ([`Events::gives_decisions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gives {
    /// One engine: always (a run of scenes then says nothing of
    /// decisions not written).
    Always,
    /// Workers: when the records take them (worker 0 gathers the groups'
    /// parts).
    Asked,
}

/// A lab run's sink: each match and timeout (a shadow pattern's too) to
/// its [`Records`], late events not taken; given back through `back` when
/// the run drops it. Nothing to make durable: a lab run keeps no
/// checkpoint.
///
/// The run's thread only copies each record into a block (its length,
/// then its bytes); full blocks go to a thread of the sink's own
/// (`cepheid-lab`), which gives their records to the [`Records`]: what a
/// backtest makes of a record (its head read, its key counted) is done
/// beside the run, as `cepheid run`'s writer thread writes its records
/// beside it, so that the backtest's run goes at `run`'s pace (issue 42,
/// BENCHMARKS.md).
struct ToRecords<R: Records> {
    /// Does its [`Records`] take decisions?
    decisions: bool,
    /// Does the run give it decisions ([`Events::gives_decisions`])?
    takes_decisions: bool,
    block: Vec<u8>,
    blocks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    taker: Option<std::thread::JoinHandle<R>>,
    back: std::sync::mpsc::Sender<R>,
}

impl<R: Records> ToRecords<R> {
    /// A block's size: it goes to the taking thread when the next record
    /// does not fit in it.
    const BLOCK: usize = 256 * 1024;

    /// Records to `records` (given back through `back`); as `gives`
    /// says ([`Events::gives_decisions`]): on one engine the run's
    /// decisions are taken (those `records` does not want dropped here),
    /// on workers those `records` wants (gathered by worker 0, which costs
    /// the others nothing when none is wanted).
    fn new(
        mut records: R,
        back: std::sync::mpsc::Sender<R>,
        gives: Gives,
    ) -> std::io::Result<ToRecords<R>> {
        // (a few blocks ahead: the run waits when the thread is behind)
        let (blocks, taken) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let decisions = records.takes_decisions();
        let takes_decisions = match gives {
            Gives::Always => true,
            Gives::Asked => decisions,
        };
        let taker = std::thread::Builder::new()
            .name("cepheid-lab".to_string())
            .spawn(move || {
                for block in taken {
                    let mut rest = &block[..];
                    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
                        let len = u32::from_le_bytes(*len) as usize;
                        let (line, tail) = tail.split_at(len.min(tail.len()));
                        records.record(line);
                        rest = tail;
                    }
                }
                records
            })?;
        Ok(ToRecords {
            decisions,
            takes_decisions,
            block: Vec::with_capacity(Self::BLOCK),
            blocks: Some(blocks),
            taker: Some(taker),
            back,
        })
    }

    /// The block to the taking thread (false: it is gone).
    fn hand(&mut self) -> bool {
        let full = std::mem::replace(&mut self.block, Vec::with_capacity(Self::BLOCK));
        (self.blocks.as_ref()).is_some_and(|blocks| blocks.send(full).is_ok())
    }

    fn gone(&self) -> SinkError {
        SinkError {
            target: self.describe(Kind::Match),
            late: false,
            source: std::io::Error::other("the thread taking the records stopped"),
        }
    }
}

impl<R: Records> Sink for ToRecords<R> {
    fn describe(&self, _: Kind) -> String {
        "the lab's records".to_string()
    }

    fn takes_late(&self) -> bool {
        false
    }

    fn takes_shadow(&self) -> bool {
        true
    }

    /// (on one engine always, so that a run of scenes says nothing of
    /// decisions not written: those its [`Records`] does not take are
    /// dropped here)
    fn takes_decisions(&self) -> bool {
        self.takes_decisions
    }

    fn write(&mut self, kind: Kind, _key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        if kind == Kind::Late || (kind == Kind::Decision && !self.decisions) {
            return Ok(());
        }
        let line = record.strip_suffix(b"\n").unwrap_or(record);
        let len = u32::try_from(line.len()).map_err(|_| SinkError {
            target: self.describe(kind),
            late: false,
            source: std::io::Error::other("a record of 4 GiB or more"),
        })?;
        // (a block that cannot take the record goes first: never grown,
        // nor copied, but for a record larger than a block)
        let room = self.block.capacity() - self.block.len();
        if room < 4 + line.len() && !self.block.is_empty() && !self.hand() {
            return Err(self.gone());
        }
        self.block.extend_from_slice(&len.to_le_bytes());
        self.block.extend_from_slice(line);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn prepare(&mut self, _: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }

    fn recover(&mut self, _: &[cepheid_runtime::sink::Checkpoint]) -> Result<usize, SinkError> {
        Ok(0)
    }
}

/// The last block to the taking thread, which ends then: its records go
/// back. (A panic of the thread is passed on, unless one unwinds already.)
impl<R: Records> Drop for ToRecords<R> {
    fn drop(&mut self) {
        if !self.block.is_empty() {
            self.hand();
        }
        self.blocks = None;
        let Some(taker) = self.taker.take() else {
            return;
        };
        match taker.join() {
            Ok(records) => {
                let _ = self.back.send(records);
            }
            Err(panic) if !std::thread::panicking() => std::panic::resume_unwind(panic),
            Err(_) => {}
        }
    }
}

impl Events {
    /// The run's configuration, as `cepheid run` would make it of these
    /// options, for the rules at `rules` (no output).
    pub fn config(&self, rules: &Path) -> Config {
        let mut config = Config::new(Input::File(self.path.clone()), vec![rules.to_path_buf()]);
        config.format = self.format;
        config.time = Time::Event {
            field: self.time_field.clone(),
        };
        config.max_delay = self.max_delay;
        config.lists.clone_from(&self.lists);
        config.max_list_entries = self.max_list_entries;
        config.max_indicator_entries = self.max_indicator_entries;
        config
    }

    /// The run of `config` into `sink`: on one engine, or on
    /// [`Events::workers`]; from the Kafka range fixed by
    /// [`Events::check`] when the events are one. What stops it from
    /// starting is said as of `which` (the rule set's name).
    fn runtime(
        &self,
        config: Config,
        rules: &Rules,
        (said, sink): (Box<Said>, Box<dyn Sink>),
        which: &str,
    ) -> Result<Runtime, Error> {
        let failed = |e: cepheid_runtime::Error| Error::run(format!("{which}: "), e);
        #[cfg(feature = "kafka")]
        if let Some(range) = self.range.get() {
            return self.kafka_runtime(config, rules, (said, sink), range);
        }
        if let Some(workers) = &self.workers {
            return Runtime::on_cluster(config, rules, workers(), None, Some(sink), said)
                .map_err(failed);
        }
        let mut engine = config.engine();
        if let Err(source) = engine.add(rules) {
            return Err(Error::new(ErrorKind::Rules, format!("{which}: {source}")));
        }
        Runtime::with_sink(config, engine, Some(sink), said)
            .map(|r| r.with_field_watch(cepheid_runtime::FieldWatch::from_rules(rules)))
            .map_err(failed)
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

    /// The range fixed by [`Events::check`], opened for a reader of the
    /// lab's own (`why`); `None` when the events are no Kafka range.
    pub fn open_range(&self) -> Result<Option<cepheid_kafka::KafkaSource>, Error> {
        match self.range.get() {
            Some((start, until)) => self.open(start, until).map(Some),
            None => Ok(None),
        }
    }

    /// The Kafka options of the range from `start` to `until`.
    fn options<'a>(
        &'a self,
        start: &'a cepheid_kafka::StartAt,
        until: &'a cepheid_kafka::Until,
    ) -> cepheid_kafka::KafkaOptions<'a> {
        cepheid_kafka::KafkaOptions {
            properties: &self.kafka.properties,
            start: Some(start),
            until: Some(until),
            ..cepheid_kafka::KafkaOptions::default()
        }
    }

    /// Opens the range from `start` to `until` (the broker waited for as
    /// `run` waits, 60 s).
    fn open(
        &self,
        start: &cepheid_kafka::StartAt,
        until: &cepheid_kafka::Until,
    ) -> Result<cepheid_kafka::KafkaSource, Error> {
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
        opened.map_err(Error::kafka)
    }

    /// Fixes the range as offsets: where each partition starts and ends
    /// now (`--kafka-until end` is the end when the command starts).
    fn fix_range(&self) -> Result<(), Error> {
        if self.range.get().is_some() {
            return Ok(());
        }
        let start = (self.kafka.start.clone()).unwrap_or(cepheid_kafka::StartAt::Earliest);
        let until = (self.kafka.until.clone()).unwrap_or(cepheid_kafka::Until::End);
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

    /// A run over the range, on one engine or on the workers.
    fn kafka_runtime(
        &self,
        mut config: Config,
        rules: &Rules,
        (said, sink): (Box<Said>, Box<dyn Sink>),
        (start, until): &(cepheid_kafka::StartAt, cepheid_kafka::Until),
    ) -> Result<Runtime, Error> {
        let options = self.options(start, until);
        let failed = |e: cepheid_runtime::Error| Error::run("", e);
        if let Some(workers) = &self.workers {
            let cluster = workers();
            let (own, all) = cluster.workers();
            let sources = (options.open_shares(&mut config, own, all)).map_err(Error::kafka)?;
            return Runtime::on_cluster(config, rules, cluster, sources, Some(sink), said)
                .map_err(failed);
        }
        let source = options.open_source(&mut config).map_err(Error::kafka)?;
        let mut engine = config.engine();
        if let Err(source) = engine.add(rules) {
            return Err(Error::new(ErrorKind::Rules, source.to_string()));
        }
        Runtime::with_source(config, engine, source, Some(sink), said).map_err(failed)
    }
}

/// What a run says: its warnings and errors, named by `which`, told; the
/// rest (its summary, the lists' sizes) is the report's.
struct Said(String, Tell);

impl Report for Said {
    fn notice(&mut self, notice: Notice) {
        if notice.level() != Level::Info {
            tell!(self.1, "{}: {}", self.0, notice.as_str());
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

/// Rule attributes (`score`, `level`, `action`, `tags`) as the lab's
/// reports show them: `backtest`'s and `diff`'s columns and fields, which
/// appear only for rule sets whose patterns have some (a rule set without
/// attributes has the reports it had before them).
pub mod attributes {
    use cepheid_core::lookup::Attributes;
    use cepheid_engine::Rules;
    use serde_json::{json, Value as Json};

    /// The columns, in order.
    pub const COLUMNS: [&str; 4] = ["level", "action", "score", "tags"];

    /// Does a pattern of `rules` have an attribute?
    pub fn used(rules: &Rules) -> bool {
        rules.patterns().iter().any(|p| !p.attributes.is_empty())
    }

    /// The cells of `a` under [`COLUMNS`]: `-` for one it has not; tags
    /// joined by commas.
    pub fn cells(a: &Attributes) -> [String; 4] {
        let word = |w: &Option<std::sync::Arc<str>>| w.as_deref().unwrap_or("-").to_string();
        let tags: Vec<&str> = a.tags.iter().map(|t| &**t).collect();
        [
            word(&a.level),
            word(&a.action),
            a.score
                .as_ref()
                .map_or("-".to_string(), ToString::to_string),
            if tags.is_empty() {
                "-".to_string()
            } else {
                tags.join(",")
            },
        ]
    }

    /// `a` as JSON, as a record's `"rule"` has it: the attributes it has
    /// (`score`, `level`, `action`, `tags`), none for one it has not.
    pub fn json(a: &Attributes) -> Json {
        let mut j = json!({});
        if let Some(score) = &a.score {
            j["score"] = serde_json::to_value(score).unwrap_or(Json::Null);
        }
        if let Some(level) = &a.level {
            j["level"] = json!(&**level);
        }
        if let Some(action) = &a.action {
            j["action"] = json!(&**action);
        }
        if !a.tags.is_empty() {
            j["tags"] = a.tags.iter().map(|t| json!(&**t)).collect();
        }
        j
    }
}
