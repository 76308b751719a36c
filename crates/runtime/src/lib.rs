//! # cepheid-runtime: the stream driver of `cepheid run`, as a library
//!
//! The engine (`cepheid_engine`) matches patterns over the events it is
//! given. This crate gives them to it the way `cepheid run` does: a file
//! read from an offset, followed as `tail -F`, or standard input, decoded
//! on a thread of its own; event time with a bounded delay and an idle
//! timeout, or processing time; checkpoints to a folder from which a later
//! run goes on as if it had never stopped; the rules changed while it runs
//! (control records in the stream, the pattern paths watched on disk, or a
//! [`Handle::reload`]); the records written by a [`Sink`] that takes part
//! in checkpoints; one [`Summary`] at the end.
//!
//! ```no_run
//! use std::time::Duration;
//! use cepheid_runtime::{Config, Input, Runtime, StderrReport};
//!
//! let mut config = Config::new(Input::file("events.jsonl"), vec!["patterns/".into()]);
//! config.follow = true;
//! config.watch = true;
//! config.checkpoint = Some("state/".into());
//! config.checkpoint_every.time = Some(Duration::from_secs(5));
//! config.output = Some("matches.jsonl".into());
//! let rules = cepheid_engine::Rules::load_all(&config.patterns)?;
//! let runtime = Runtime::new(config, &rules, Box::new(StderrReport))?;
//! let handle = runtime.handle(); // stop() from another thread, reload() ...
//! let summary = runtime.run();
//! println!("{summary}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What is observable happens in input order on the calling thread: the
//! reader thread only reads and decodes ahead, and the output's system
//! calls are made on a thread of their own.
//!
//! The same run goes on several workers (threads and processes) with
//! [`Runtime::on_cluster`] and a [`Cluster`] (`cepheid_dataflow::run::
//! Cluster`, on timely-dataflow): the same [`Handle`], [`Summary`] and
//! [`Error`]s; a checkpoint of either resumes on the other.
//!
//! Events are decoded by `cepheid_decode`, below the engine; above it, this
//! crate writes the records of `cepheid run` ([`jsonl`]: the
//! [`Formatter`](jsonl::Formatter) of matches, timeouts, late events and
//! decisions, and [`JsonLines`](jsonl::JsonLines), an engine `Sink`
//! writing them) and finds the fields the rules read that no event carries
//! ([`FieldWatch`]: the run's field warnings and `cepheid check --sample`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::too_many_lines)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cepheid_decode::Format;
use cepheid_engine::engine::ReloadPolicy;
use cepheid_engine::{Engine, PatternStats, Record};
use serde::Serialize;

mod answers;
pub mod audit;
mod background;
mod block;
mod board;
pub mod checkpoint;
mod cluster;
mod conflict;
mod counts;
mod driver;
pub mod executor;
mod field_reads;
mod follow;
pub mod jsonl;
mod limits;
pub mod lists;
mod lock;
mod outputs;
mod reload;
mod resume;
mod rotate;
pub mod sink;
pub mod source;
pub mod stats;
mod timing;
mod view;

pub use answers::Answers;
pub use block::{Block, BlockRecord, Tap};
pub use board::{Board, Published, PUBLISH_EVERY, STATE_EVERY};
pub use checkpoint::Every;
pub use cluster::{Cluster, ClusterError, OpenCluster, RestoredCluster, Sources, WorkerLayout};
pub use conflict::{is_regular, Conflict, Named};
pub use counts::{Counts, Strict};
pub use driver::{Handle, Runtime};
pub use field_reads::{FieldWatch, MissingField, Owner, WatchedRead};
pub use limits::LimitNotices;
pub use outputs::Outputs;
pub use sink::{
    Checkpoint, Durable, Files, Kind, Output, Sink, SinkError, SinkState, Target, Wake, Writing,
};
pub use source::{
    FilePosition, FileSource, Judged, Origin, Position, RawBatch, RawEntry, RawRecord, ReadOutcome,
    Source, SourceError, SourceRules, SplitLag, SplitWatermarks, Unapplied,
};
pub use timing::Idle;
pub use view::{add_patterns, add_stats, EngineNumbers, MemoryNumbers, RunView, Workers};

/// Where the events come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Standard input (no position: no checkpoints, nothing to follow).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    /// A file.
    pub fn file(path: impl Into<PathBuf>) -> Input {
        Input::File(path.into())
    }

    /// The file's path (`-` for standard input, as on the command line).
    pub fn path(&self) -> &Path {
        match self {
            Input::Stdin => Path::new("-"),
            Input::File(path) => path,
        }
    }

    /// Its name in messages.
    pub fn describe(&self) -> String {
        match self {
            Input::Stdin => "standard input".to_string(),
            Input::File(path) => path.display().to_string(),
        }
    }
}

/// Where event time comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Time {
    /// The events' time field (integer milliseconds or an RFC 3339
    /// string) and `$watermark` lines.
    Event {
        /// The field's name.
        field: String,
    },
    /// The wall clock when the run takes each event (no event is late).
    Processing,
    /// The time each record carries from its [`Source`]
    /// ([`RawRecord::timestamp`]: a Kafka record's timestamp); no time
    /// field is read, and a record without a time is malformed. The
    /// built-in file reader gives none: only with a source that does.
    Record,
}

/// Everything a run takes, but its patterns: what `cepheid run` takes but
/// presentation (progress bar, colours). Build it with [`Config::new`] and
/// set the fields; [`Config::default`] is standard input and no patterns.
#[derive(Clone, Debug)]
pub struct Config {
    /// The events.
    pub input: Input,
    /// Follow the file as `tail -F` does: at its end, wait for more lines;
    /// a file renamed and created anew, truncated or rewritten in place is
    /// read from its beginning. Never ends by itself: [`Handle::stop`].
    pub follow: bool,
    /// The input format.
    pub format: Format,
    /// Where event time comes from.
    pub time: Time,
    /// Bounded out-of-orderness: an event more than this behind the
    /// largest time seen is late.
    pub max_delay: Duration,
    /// When no line has arrived for this long, event time follows the
    /// wall clock from the last watermark (event time only).
    pub idle_timeout: Option<Duration>,
    /// [`Engine::max_runs_per_key`].
    pub max_runs_per_key: usize,
    /// [`Engine::max_live_runs`].
    pub max_live_runs: usize,
    /// [`Engine::max_waiting_events`].
    pub max_waiting: usize,
    /// [`Engine::max_list_entries`]: the most entries a list holds; an
    /// add beyond it is refused, said once per list on standard error and
    /// counted in the [`Summary`] (issue 60, item 3). On workers, per
    /// engine (each holds every list whole).
    pub max_list_entries: usize,
    /// [`Engine::max_indicator_entries`]: the most window entries over
    /// all indicators; an event beyond it is left out of the indicators
    /// at the limit, said once per indicator and counted in the
    /// [`Summary`]. On workers, per engine.
    pub max_indicator_entries: usize,
    /// Stop at the first malformed line ([`Error::Malformed`]).
    pub strict: bool,
    /// At the end, let time run to infinity (every waiting event is
    /// processed, every pending window expires).
    pub flush_at_end: bool,
    /// Where matches and timeouts go; `None` is standard output.
    pub output: Option<PathBuf>,
    /// Where late events go (otherwise they are only counted).
    pub late: Option<PathBuf>,
    /// Where the matches and timeouts of `shadow` patterns go, never to
    /// [`Config::output`] (`docs/rule-lab.md`, "Shadow rules"): a run
    /// output as [`Config::late`] is (synced, measured and truncated with
    /// the checkpoints). A run whose rules have a shadow pattern needs one
    /// (or a sink that takes them, [`Sink::takes_shadow`]: a Kafka shadow
    /// topic, [`Config::shadow_sink`]).
    pub shadow_output: Option<PathBuf>,
    /// Does the run's sink take the records of `shadow` patterns itself
    /// ([`Sink::takes_shadow`]: a topic of a Kafka sink's, the rule lab's
    /// records), so that shadow patterns run without
    /// [`Config::shadow_output`]? Set by the runtime from its sink when a
    /// run is made ([`Runtime::with_source`], [`Runtime::on_cluster`]): a
    /// caller's value is replaced. Changes of rules that bring a shadow
    /// pattern read it.
    pub shadow_sink: bool,
    /// Where an audit record of each change of rules goes
    /// ([`audit::RuleChange`], a JSON line: applied or refused, its
    /// origin, what it did to each pattern and its state;
    /// `docs/rule-lab.md`, "Audit records"): a run output as
    /// [`Config::late`] is (synced, measured and truncated with the
    /// checkpoints).
    pub audit: Option<PathBuf>,
    /// Also an audit record of each change of a list by a `$list` record
    /// of the input or of the run's source, made or refused
    /// ([`audit::ListChange`], beside the changes of rules), to
    /// [`Config::audit`] (`cepheid serve` sets it: every change of a list
    /// it takes goes through its log). One engine only: a run on
    /// workers refuses it ([`Conflict::AuditListsOnWorkers`]).
    pub audit_lists: bool,
    /// Where the decision of each scene on each event that enters it goes
    /// (`docs/decisions.md`: a JSON line, `"kind": "decision"`): a run
    /// output as [`Config::late`] is (synced, measured and truncated with
    /// the checkpoints). Without it, the scenes' rules run and their
    /// alerts are written; their decisions are not made into records.
    pub decisions: Option<PathBuf>,
    /// Keep checkpoints in this folder and resume from the one there.
    pub checkpoint: Option<PathBuf>,
    /// How often to checkpoint (default 10 s).
    pub checkpoint_every: Every,
    /// Start from this checkpoint, only reading it: a checkpoint folder
    /// (its newest checkpoint) or one checkpoint's folder (`DIR/cut-N`)
    /// of a run on one engine. The engine goes on from its state and the
    /// input from its place, as a resumed run would; but the outputs are
    /// this run's own, written from empty, and the checkpoint's command is
    /// not checked but for the input's format and time (its input and
    /// outputs may be named otherwise: a copy of the checkpoint, a replay
    /// of a service's log into other files). Nothing is written to the
    /// folder. Not with [`Config::checkpoint`], nor on workers
    /// (`docs/checkpoints.md`, "Starting from a checkpoint").
    pub start_from: Option<PathBuf>,
    /// The pattern files and folders: read again by [`Config::watch`] and
    /// [`Handle::reload`].
    pub patterns: Vec<PathBuf>,
    /// Reload the pattern paths when they change (feature `watch`) and on
    /// [`Handle::reload`].
    pub watch: bool,
    /// What a changed pattern's partial matches do at a reload.
    pub reload_policy: ReloadPolicy,
    /// Honour control records (`{"$rules": "..."}`) in JSON-lines input.
    pub rules_from_stream: bool,
    /// Honour changes of lists in JSON-lines input (`{"$list": "name",
    /// "add": value}`, `docs/lists.md`), made at the watermark then + 1.
    /// Off: such a record is said and counted as malformed, and the run
    /// goes on. A source's rules stream may carry them without it.
    pub lists_from_stream: bool,
    /// With `rules_from_stream` (or a source's rules stream,
    /// [`Config::source_rules`]), also honour `{"$rules_file": "PATH"}`
    /// for `.cep` files and folders inside this folder.
    pub rules_dir: Option<PathBuf>,
    /// The run's [`Source`] has a rules stream of its own (a Kafka rules
    /// topic, handed out as [`RawEntry::Rules`] records, which the run
    /// applies without `rules_from_stream`). Set it with such a source:
    /// [`Config::check`] then takes a `rules_dir` without
    /// `rules_from_stream` (it confines that stream's `$rules_file`
    /// records), and a run that reads no source's rules refuses it (the
    /// dataflow crate's on workers).
    pub source_rules: bool,
    /// Event time per split of a [`Source`] (a Kafka partition), as
    /// Flink's Kafka source: each split's watermark is its largest time
    /// less `max_delay` less 1 ms, the run's watermark is the least over
    /// the splits, and a split without a record for `idle_timeout` is left
    /// out until it delivers again (one quiet partition does not hold
    /// event time back; without `idle_timeout` it does, until the end of
    /// the input). The engine then keeps no watermark of its own from the
    /// largest time seen ([`Config::engine`]): an event is late when it is
    /// at or behind the combined watermark, so a partition behind the
    /// others is not late for that. Each split's watermark is kept in
    /// checkpoints. With one split it is the same as without. Ignored in
    /// processing time and for the built-in file reader.
    pub split_watermarks: bool,
    /// How far ahead of event time a record of a [`Source`]'s rules
    /// stream may be when it is read and still wait for event time to
    /// reach it (`None`: however far). One further ahead (a producer that
    /// writes microseconds, a wrong clock) would hold every later rules
    /// record back for as long: it applies when it is read instead, said
    /// ([`RunEvent::RulesAhead`]). Default: an hour.
    pub rules_max_ahead: Option<Duration>,
    /// Warn about each field a pattern reads that no event carried, once
    /// this many events were decoded and again at the end of the input
    /// (`None`: never). A misspelt field in a condition is valid and
    /// matches nothing, ever: this says so, with the pattern, where it is
    /// read and the closest field that did occur. It costs a test per
    /// event for each field not seen yet (none once all were), and, over
    /// the first this-many events, the names of their keys.
    pub field_warnings: Option<u64>,
    /// Reference lists fed by files (`cepheid run --list NAME=PATH`;
    /// [`lists`]): each file's entries are the list's from
    /// the start, before any event; with [`Config::watch`], a file that
    /// changes changes the list at the watermark then. Each list must be
    /// declared by the rules (`list NAME`).
    pub lists: Vec<lists::ListFile>,
}

impl Default for Config {
    fn default() -> Config {
        Config::new(Input::Stdin, Vec::new())
    }
}

impl Config {
    /// The defaults of `cepheid run` over `input` with the patterns at
    /// `patterns`: JSON lines, event time from `ts`, no delay, the
    /// engine's limits, standard output, no checkpoints.
    pub fn new(input: Input, patterns: Vec<PathBuf>) -> Config {
        Config {
            input,
            follow: false,
            format: Format::JsonLines,
            time: Time::Event {
                field: "ts".to_string(),
            },
            max_delay: Duration::ZERO,
            idle_timeout: None,
            max_runs_per_key: Engine::<Record>::DEFAULT_MAX_RUNS_PER_KEY,
            max_live_runs: Engine::<Record>::DEFAULT_MAX_LIVE_RUNS,
            max_waiting: Engine::<Record>::DEFAULT_MAX_WAITING_EVENTS,
            max_list_entries: cepheid_engine::engine::DEFAULT_MAX_LIST_ENTRIES,
            max_indicator_entries: cepheid_engine::engine::DEFAULT_MAX_INDICATOR_ENTRIES,
            strict: false,
            flush_at_end: false,
            output: None,
            late: None,
            shadow_output: None,
            shadow_sink: false,
            audit: None,
            audit_lists: false,
            decisions: None,
            checkpoint: None,
            checkpoint_every: Every::default(),
            start_from: None,
            patterns,
            watch: false,
            reload_policy: ReloadPolicy::Drain,
            rules_from_stream: false,
            lists_from_stream: false,
            rules_dir: None,
            source_rules: false,
            split_watermarks: false,
            rules_max_ahead: Some(Config::RULES_MAX_AHEAD),
            field_warnings: Some(Config::FIELD_WARNINGS_AFTER),
            lists: Vec::new(),
        }
    }

    /// The default of [`rules_max_ahead`](Config::rules_max_ahead): an
    /// hour.
    pub const RULES_MAX_AHEAD: Duration = Duration::from_secs(3600);

    /// The default of [`field_warnings`](Config::field_warnings): after
    /// 10,000 events.
    pub const FIELD_WARNINGS_AFTER: u64 = 10_000;

    /// An engine with this configuration and no patterns.
    /// With [`Config::split_watermarks`] its delay is unbounded: the
    /// watermark is the splits' (given to it by the run).
    pub fn engine(&self) -> Engine<Record> {
        let max_delay = if self.split_watermarks && self.time != Time::Processing {
            Duration::from_millis(i64::MAX as u64)
        } else {
            self.max_delay
        };
        Engine::with_max_delay(max_delay)
            .max_runs_per_key(self.max_runs_per_key)
            .max_live_runs(self.max_live_runs)
            .max_waiting_events(self.max_waiting)
            .max_list_entries(self.max_list_entries)
            .max_indicator_entries(self.max_indicator_entries)
    }

    /// The time field (`None` in processing time).
    pub fn time_field(&self) -> Option<&str> {
        match &self.time {
            Time::Event { field } => Some(field),
            Time::Processing | Time::Record => None,
        }
    }

    /// The output's path (`-` for standard output, as on the command line).
    pub fn output_path(&self) -> &Path {
        self.output.as_deref().unwrap_or(Path::new("-"))
    }
}

/// One name for the folder `dir` wherever it is given from: its canonical
/// path (its parent's joined with its name when it does not exist yet),
/// or `dir` as given when that cannot be resolved. Two runs given the same
/// checkpoint folder by different paths get the same name (a Kafka sink's
/// default transactional id is made of it).
pub fn folder_identity(dir: &Path) -> PathBuf {
    driver::canonical(dir).unwrap_or_else(|| dir.to_path_buf())
}

/// How loud a [`Notice`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Level {
    /// What the run did (resumed, rules reloaded, stopped).
    Info,
    /// Something the operator should know (an output rotated, a limit
    /// reached, a refused rule set, a malformed line).
    Warning,
    /// Why the run stops (also in [`Summary::error`] or the `Err` of
    /// [`Runtime::new`]).
    Error,
}

/// Something the run says while it runs: the text `cepheid run` prints on
/// standard error, in input order. A setting is named as this library
/// names it, its [`Config`] field between backquotes
/// (`` `Config::max_runs_per_key` ``), as are the run's errors and its
/// [`Summary`]'s line: a program that takes the settings otherwise (the
/// command's flags) maps those names to its own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    level: Level,
    /// The exact text, with its final newline.
    text: String,
}

impl Notice {
    /// A notice of one line (a newline is added): what a driver of its
    /// own (the dataflow crate's run on workers) says through a [`Report`].
    pub fn new(level: Level, text: impl fmt::Display) -> Notice {
        Notice::line(level, text)
    }

    /// A notice of one line (a newline is added).
    pub(crate) fn line(level: Level, text: impl fmt::Display) -> Notice {
        Notice {
            level,
            text: format!("{text}\n"),
        }
    }

    /// A notice of several lines, given with their newlines.
    pub(crate) fn text(level: Level, text: String) -> Notice {
        Notice { level, text }
    }

    /// How loud it is.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The text, with its newlines: what `cepheid run` writes.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text.strip_suffix('\n').unwrap_or(&self.text))
    }
}

/// Where a run's [`Notice`]s and progress go.
pub trait Report: Send {
    /// Something to say.
    fn notice(&mut self, notice: Notice);
    /// The run starts reading the input at byte `offset` of `size` bytes
    /// (`None`: not a file, or followed).
    fn started(&mut self, size: Option<u64>, offset: u64) {
        let _ = (size, offset);
    }
    /// The input got to byte `offset`.
    fn progress(&mut self, offset: u64) {
        let _ = offset;
    }
    /// Does this report watch the run ([`Report::tick`],
    /// [`Report::event`])? `false` (the default): the run does nothing
    /// for it. Asked once, at the start.
    fn observes(&self) -> bool {
        false
    }
    /// How many of each batch's output records (the latest) the run keeps
    /// for [`RunView::records`]; 0 (the default): none are copied. Asked
    /// once, at the start, when [`Report::observes`].
    fn records_wanted(&self) -> usize {
        0
    }
    /// The run as it is now: called after each batch of lines and at
    /// least once per second while the input is idle, and once at the end
    /// ([`RunView::finished`]); never per event. (The dataflow crate's run
    /// on workers calls it from a thread of its own every quarter second,
    /// with the numbers each worker last published, and once at the end.)
    /// Only when [`Report::observes`].
    fn tick(&mut self, view: &RunView<'_>) {
        let _ = view;
    }
    /// Something happened to the run (a checkpoint, a change of rules),
    /// when it happens, to every report, observing or not (events are
    /// rare; `cepheid serve` counts its checkpoints' stalls).
    fn event(&mut self, event: &RunEvent<'_>) {
        let _ = event;
    }
}

/// Something that happened to a run, said to [`Report::event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum RunEvent<'a> {
    /// Checkpoint `number` was written and committed.
    Checkpoint {
        /// Its number.
        number: u64,
        /// How long it took, from the sink's prepare to its file durable
        /// (written on the checkpoint thread while the run went on).
        duration: Duration,
        /// The checkpoint file's size.
        bytes: u64,
        /// How long the matching thread was stopped for it: the sink's
        /// prepare and the engine's snapshot into memory.
        stall: Duration,
        /// Checkpoints so far that came due while the one before was
        /// still being written (each taken once that one was durable).
        deferred: u64,
    },
    /// A checkpoint could not be taken (the run stops; the previous one is
    /// kept).
    CheckpointFailed {
        /// Why.
        error: &'a Error,
    },
    /// A new rule set was put in force.
    Reloaded,
    /// A rule set was refused (the old rules go on).
    ReloadRefused {
        /// Why, as said on standard error.
        why: &'a str,
    },
    /// A record of a source's rules stream was further ahead of event
    /// time than [`Config::rules_max_ahead`] when it was read: it applies
    /// then, not at its time ([`RunEvent::Reloaded`] or
    /// [`RunEvent::ReloadRefused`] follows).
    RulesAhead {
        /// What was said on standard error.
        what: &'a str,
    },
}

/// A [`Report`] that writes each notice to standard error (ignoring a
/// standard error that cannot be written: the run goes on).
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrReport;

impl Report for StderrReport {
    fn notice(&mut self, notice: Notice) {
        use std::io::Write;
        let _ = io::stderr().lock().write_all(notice.as_str().as_bytes());
    }
}

/// Two reports as one: every notice and the progress go to both; what
/// watches the run ([`Report::observes`]) is shown each tick and event.
/// How a program says the run on standard error and feeds a monitor at
/// once: `Both(StderrReport, observer)`.
#[derive(Clone, Debug, Default)]
pub struct Both<A, B>(pub A, pub B);

impl<A: Report, B: Report> Report for Both<A, B> {
    fn notice(&mut self, notice: Notice) {
        self.0.notice(notice.clone());
        self.1.notice(notice);
    }

    fn started(&mut self, size: Option<u64>, offset: u64) {
        self.0.started(size, offset);
        self.1.started(size, offset);
    }

    fn progress(&mut self, offset: u64) {
        self.0.progress(offset);
        self.1.progress(offset);
    }

    fn observes(&self) -> bool {
        self.0.observes() || self.1.observes()
    }

    fn records_wanted(&self) -> usize {
        let wanted = |r: &dyn Report| if r.observes() { r.records_wanted() } else { 0 };
        wanted(&self.0).max(wanted(&self.1))
    }

    fn tick(&mut self, view: &RunView<'_>) {
        if self.0.observes() {
            self.0.tick(view);
        }
        if self.1.observes() {
            self.1.tick(view);
        }
    }

    fn event(&mut self, event: &RunEvent<'_>) {
        if self.0.observes() {
            self.0.event(event);
        }
        if self.1.observes() {
            self.1.event(event);
        }
    }
}

/// Says [`Notice`]s to a run's [`Report`] from any thread: what a
/// [`Source`] or [`Sink`] has to say of its own while the run goes on (a
/// Kafka broker that stops answering, and answers again), said at once,
/// even while the run waits for that source or sink (a blocked call that
/// retries). The run hands one to its source and sink when it starts
/// ([`Source::notify_to`], [`Sink::notify_to`]).
#[derive(Clone)]
pub struct Notify(std::sync::Arc<std::sync::Mutex<Box<dyn Report>>>);

impl Notify {
    /// `report`, shared: the report the run keeps (which passes every
    /// call on to `report`) and a handle to it for other threads.
    pub fn share(report: Box<dyn Report>) -> (Box<dyn Report>, Notify) {
        let shared = std::sync::Arc::new(std::sync::Mutex::new(report));
        (Box::new(Shared(shared.clone())), Notify(shared))
    }

    /// A handle to a report that the run's threads already share (the
    /// dataflow crate's run on workers).
    pub fn of_shared(report: std::sync::Arc<std::sync::Mutex<Box<dyn Report>>>) -> Notify {
        Notify(report)
    }

    /// Says `notice`.
    pub fn notice(&self, notice: Notice) {
        lock_report(&self.0).notice(notice);
    }

    /// Says one line (a newline is added).
    pub fn say(&self, level: Level, text: impl fmt::Display) {
        self.notice(Notice::line(level, text));
    }

    /// Shows `view` to the report.
    pub(crate) fn tick(&self, view: &RunView<'_>) {
        lock_report(&self.0).tick(view);
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notify")
    }
}

fn lock_report(
    report: &std::sync::Mutex<Box<dyn Report>>,
) -> std::sync::MutexGuard<'_, Box<dyn Report>> {
    report
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The report a run keeps when its [`Notify`] shares it: each call passed
/// on (every method of [`Report`]).
struct Shared(std::sync::Arc<std::sync::Mutex<Box<dyn Report>>>);

impl Report for Shared {
    fn notice(&mut self, notice: Notice) {
        lock_report(&self.0).notice(notice);
    }
    fn started(&mut self, size: Option<u64>, offset: u64) {
        lock_report(&self.0).started(size, offset);
    }
    fn progress(&mut self, offset: u64) {
        lock_report(&self.0).progress(offset);
    }
    fn observes(&self) -> bool {
        lock_report(&self.0).observes()
    }
    fn records_wanted(&self) -> usize {
        lock_report(&self.0).records_wanted()
    }
    fn tick(&mut self, view: &RunView<'_>) {
        lock_report(&self.0).tick(view);
    }
    fn event(&mut self, event: &RunEvent<'_>) {
        lock_report(&self.0).event(event);
    }
}

/// A [`Report`] that keeps every notice (tests, programs that log them
/// their own way).
#[derive(Clone, Debug, Default)]
pub struct Notices(pub Vec<Notice>);

impl Report for Notices {
    fn notice(&mut self, notice: Notice) {
        self.0.push(notice);
    }
}

/// What was being done when an I/O error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Doing {
    /// Opening the input.
    Open,
    /// Reading the input (or a checkpoint's input file).
    Read,
    /// Creating an output (or an output's lock).
    Create,
    /// Creating the checkpoint folder.
    CreateFolder,
    /// Creating a lock file.
    CreateLock,
    /// Writing a lock file.
    WriteLock,
    /// Taking a lock.
    Lock,
    /// Reading the checkpoint.
    ReadCheckpoint,
    /// Writing a checkpoint (the previous one is kept).
    WriteCheckpoint,
    /// Starting the output's thread.
    StartThread,
    /// Deleting the checkpoints of a folder that are not to be resumed
    /// from (unfinished, or after the one a sink committed).
    ClearCheckpoints,
}

/// Why a checkpoint cannot be used (nothing was changed).
#[derive(Debug)]
#[non_exhaustive]
pub enum Unusable {
    /// Not a checkpoint, or truncated.
    NotACheckpoint,
    /// Another format version.
    Version {
        /// The file's.
        found: u32,
        /// This build's.
        reads: u32,
    },
    /// The checksum does not match.
    Checksum,
    /// A folder given as a checkpoint holds none.
    Empty,
    /// The metadata's length is wrong.
    MetaLength,
    /// The metadata does not decode.
    Meta(serde_json::Error),
    /// A part of it does not decode: what.
    Malformed(String),
    /// It holds a section this build does not read, which its writer did
    /// not mark as one a reader may go without (a newer format's).
    Section {
        /// The section's number.
        id: u32,
    },
    /// Taken by another command: this setting differs.
    OtherCommand {
        /// The setting, as its flag.
        flag: &'static str,
        /// Its value then.
        was: String,
        /// Its value now.
        now: String,
    },
    /// The engine's snapshot does not fit (patterns, limits).
    DoesNotFit(cepheid_engine::Error),
    /// The input file's bytes before the offset differ.
    NotTheFile {
        /// The input file.
        path: PathBuf,
        /// The checkpoint's offset.
        offset: u64,
    },
    /// A cut of workers taken with another chunk size
    /// (`Scale::chunk_bytes`).
    ChunkBytes,
    /// A cut of workers taken with (`true`) or without output per worker,
    /// this run the other way.
    OutputPerWorker {
        /// Was it taken with it?
        then: bool,
    },
    /// A cut taken on another number of workers, which this run cannot
    /// resume on: with output per worker (`follow` false) or of a followed
    /// file.
    Workers {
        /// Workers in all then.
        then: usize,
        /// Workers in all now.
        now: usize,
        /// Of a followed file (else with output per worker).
        follow: bool,
    },
    /// A cut taken on another number of workers, which a run over sources
    /// of the library's user ([`Runtime::on_cluster`] with sources) that do
    /// not name their splits ([`Source::split_names`]) cannot resume on:
    /// each worker's source goes on from its own place.
    SourcesWorkers {
        /// Workers in all then.
        then: usize,
        /// Workers in all now.
        now: usize,
    },
    /// A cut taken on another number of workers, with sources of the
    /// library's user: the place of old worker `index`'s source cannot be
    /// dealt to the new workers.
    Shares {
        /// The old worker.
        index: usize,
        /// Why.
        why: String,
    },
    /// A cut taken on another number of workers, with sources of the
    /// library's user: a source of this run cannot go on from the old
    /// sources' places ([`Source::position_of_shares`]): why.
    Sources(String),
    /// A cut of workers taken by another command: what differs.
    AnotherCommand(String),
    /// The checkpoint of a run without workers (one engine) cannot be
    /// resumed on workers: why.
    OneEngine(String),
    /// The cut of workers cannot be resumed on one engine: why.
    ToOneEngine(String),
    /// The cut of workers as a whole cannot go on with this run: its rules
    /// (the same in every worker's piece), or one engine's state.
    Cut(cepheid_engine::Error),
    /// A worker's piece of the cut does not fit.
    Worker {
        /// Its number.
        index: usize,
        /// Why.
        source: cepheid_engine::Error,
    },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::NotACheckpoint => {
                f.write_str("it is not a cepheid checkpoint (or it is truncated)")
            }
            Unusable::Version { found, reads } => write!(
                f,
                "it is of format version {found}; this cepheid reads version {reads}"
            ),
            Unusable::Checksum => {
                f.write_str("its checksum does not match: it is corrupt or truncated")
            }
            Unusable::MetaLength => f.write_str("its metadata length is wrong"),
            Unusable::Empty => f.write_str(
                "it holds no checkpoint (a checkpoint folder holds `cut-N` folders: give it, or one of them)",
            ),
            Unusable::Meta(e) => write!(f, "its metadata does not decode: {e}"),
            Unusable::Malformed(what) => write!(f, "it is malformed: {what}"),
            Unusable::Section { id } => write!(
                f,
                "it holds section {id}, which this cepheid does not read (written by a newer one)"
            ),
            Unusable::OtherCommand { flag, was, now } => write!(
                f,
                "it was taken by another command ({flag} was {was}, now {now})"
            ),
            Unusable::DoesNotFit(e) => {
                write!(f, "it does not fit this command: {}", e.message())
            }
            Unusable::NotTheFile { path, offset } => write!(
                f,
                "{} is not the file it was taken on (its bytes before offset {offset} differ)",
                path.display()
            ),
            Unusable::ChunkBytes => f.write_str("it was taken with another `Scale::chunk_bytes`"),
            Unusable::OutputPerWorker { then } => {
                let (then, now) = match then {
                    true => ("with", "without"),
                    false => ("without", "with"),
                };
                write!(
                    f,
                    "it was taken {then} `Scale::output_per_worker`, this run is {now}"
                )
            }
            Unusable::Workers {
                then,
                now,
                follow: false,
            } => write!(
                f,
                "it was taken on {then} workers in all, not {now} (a checkpoint with `Scale::output_per_worker` resumes on the same number of workers)"
            ),
            Unusable::Workers {
                then,
                now,
                follow: true,
            } => write!(
                f,
                "it was taken on {then} workers in all, not {now} (a checkpoint of a followed file resumes on the same number of workers)"
            ),
            Unusable::SourcesWorkers { then, now } => write!(
                f,
                "it was taken on {then} workers in all, not {now} (a checkpoint of sources that do not name their splits resumes on the same number of workers, each worker with its own)"
            ),
            Unusable::Shares { index, why } => write!(f, "worker {index}: {why}"),
            Unusable::Sources(why) => write!(
                f,
                "its sources' places cannot be dealt to the workers of this run: {why}"
            ),
            Unusable::AnotherCommand(d) => write!(f, "it belongs to another command ({d})"),
            Unusable::OneEngine(why) => {
                write!(f, "the checkpoint of a run without `Scale::workers`: {why}")
            }
            Unusable::ToOneEngine(why) => write!(
                f,
                "it was taken on workers, and one engine cannot go on from it: {why}"
            ),
            Unusable::Cut(source) => f.write_str(source.message()),
            Unusable::Worker { index, source } => {
                write!(f, "worker {index}: {}", source.message())
            }
        }
    }
}

/// Why a run could not start, or stopped before the end of its input.
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a file (named as in messages).
    Io {
        /// What was being done.
        doing: Doing,
        /// The file or folder.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// A pattern could not be added to the engine.
    Pattern {
        /// Its name.
        name: String,
        /// Why.
        source: cepheid_engine::Error,
    },
    /// The checkpoint cannot be used; nothing was changed.
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Its folder.
        folder: PathBuf,
        /// Why.
        why: Unusable,
    },
    /// The checkpoint in the folder (a cut of workers, or one engine's
    /// resumed on workers) cannot be used with this run and its workers;
    /// nothing was changed.
    Resume {
        /// The checkpoint folder.
        folder: PathBuf,
        /// Why.
        why: Unusable,
    },
    /// The checkpoint a run starts from ([`Config::start_from`]) cannot
    /// be used; nothing was changed.
    StartFrom {
        /// The checkpoint's folder, or the folder given.
        path: PathBuf,
        /// Why.
        why: Unusable,
    },
    /// The checkpoint folder is in use by another run.
    FolderInUse {
        /// The folder.
        folder: PathBuf,
        /// Its lock file.
        lock: PathBuf,
        /// The process id written in it, if one is.
        holder: Option<u32>,
    },
    /// An output is being written by another run.
    OutputInUse {
        /// The output's flag (`--output`, `--late`).
        flag: &'static str,
        /// The output.
        path: PathBuf,
    },
    /// The config cannot run as it is ([`Config::check`]), or not with the
    /// sink it is given ([`Conflict::SinkNeedsCheckpoints`]): nothing was
    /// opened.
    Conflict(Conflict),
    /// The sink could not write, flush, prepare, commit or recover.
    Sink(sink::SinkError),
    /// A source could not read or seek.
    Source(source::SourceError),
    /// The sink chose a checkpoint that is not kept.
    Recover {
        /// Its choice.
        chosen: usize,
        /// How many were kept.
        kept: usize,
    },
    /// A malformed record of a [`Source`] (placed as it says: `kafka:orders
    /// partition 2 offset 17`), with [`Config::strict`].
    MalformedRecord {
        /// Where it is.
        place: String,
        /// Why.
        source: cepheid_engine::Error,
    },
    /// A malformed line, with [`Config::strict`] (said as a [`Notice`]
    /// when it was read).
    Malformed {
        /// The input's name.
        origin: String,
        /// The line's number.
        line: u64,
        /// Why.
        source: cepheid_engine::Error,
    },
    /// A reference list's file ([`Config::lists`]) cannot be read, or
    /// names a list the rules do not declare (`cepheid run` exits with 2).
    List {
        /// The list.
        list: String,
        /// Its file.
        path: PathBuf,
        /// Why, in words.
        why: String,
    },
    /// An error of the [`Cluster`]'s own, in its words (its layout, the
    /// other processes, a cut that does not fit the run, a worker that
    /// failed).
    Cluster(Box<dyn ClusterError>),
}

impl Error {
    /// Is it about a checkpoint that cannot be used or a folder or output
    /// another run holds (`cepheid run` exits with 5)?
    pub fn is_checkpoint(&self) -> bool {
        match self {
            Error::Cluster(e) => e.is_checkpoint(),
            e => matches!(
                e,
                Error::Checkpoint { .. }
                    | Error::StartFrom { .. }
                    | Error::Resume { .. }
                    | Error::FolderInUse { .. }
                    | Error::OutputInUse { .. }
            ),
        }
    }

    /// Is it about settings that cannot run as they are ([`Conflict`]), or
    /// an option or a layout a [`Cluster`] does not take (`cepheid run`
    /// exits with 2)?
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Conflict(_) | Error::List { .. } => true,
            Error::Cluster(e) => e.is_usage(),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                doing,
                path,
                source,
            } => match doing {
                Doing::Open => write!(f, "cannot open {path}: {source}"),
                Doing::Read => write!(f, "cannot read {path}: {source}"),
                Doing::Create => write!(f, "cannot create {path}: {source}"),
                Doing::CreateFolder => {
                    write!(f, "cannot create checkpoint folder {path}: {source}")
                }
                Doing::CreateLock => write!(f, "cannot create lock file {path}: {source}"),
                Doing::WriteLock => write!(f, "cannot write lock file {path}: {source}"),
                Doing::Lock => write!(f, "cannot lock {path}: {source}"),
                Doing::ReadCheckpoint => write!(f, "cannot read checkpoint {path}: {source}"),
                Doing::WriteCheckpoint => write!(
                    f,
                    "cannot write checkpoint {path}: {source}; the previous checkpoint is kept"
                ),
                Doing::StartThread => write!(f, "cannot start the output's thread: {source}"),
                Doing::ClearCheckpoints => {
                    write!(f, "cannot clear the unfinished cuts in {path}: {source}")
                }
            },
            Error::Pattern { name, source } => {
                write!(f, "pattern `{name}`: {}", source.message())
            }
            Error::Checkpoint { path, folder, why } => write!(
                f,
                "checkpoint {} cannot be used: {why}; nothing was changed (remove {} to start over; a transactional output then needs another transactional id too, or it refuses to commit its records a second time)",
                path.display(),
                folder.display()
            ),
            Error::Resume { folder, why } => write!(
                f,
                "checkpoint in {} cannot be used: {why}; nothing was changed (remove {} to start over; a transactional output then needs another transactional id too, or it refuses to commit its records a second time)",
                folder.display(),
                folder.display()
            ),
            Error::StartFrom { path, why } => write!(
                f,
                "checkpoint {} cannot be started from: {why}; nothing was changed",
                path.display()
            ),
            Error::FolderInUse {
                folder,
                lock,
                holder,
            } => {
                let holder = holder.map_or_else(
                    || "another process".to_string(),
                    |pid| format!("process {pid}"),
                );
                write!(
                    f,
                    "checkpoint folder {} is in use by another run ({holder} holds {}); nothing was changed",
                    folder.display(),
                    lock.display()
                )
            }
            Error::OutputInUse { flag, path } => write!(
                f,
                "{flag} {} is being written by another cepheid run (it holds the file's lock); nothing was changed",
                path.display()
            ),
            Error::Malformed {
                origin,
                line,
                source,
            } => write!(f, "{origin}:{line}: malformed line: {}", source.message()),
            Error::MalformedRecord { place, source } => {
                write!(f, "{place}: malformed record: {}", source.message())
            }
            Error::Conflict(e) => write!(f, "{e}"),
            Error::List { list, path, why } => {
                write!(f, "list `{list}` ({}): {why}", path.display())
            }
            Error::Cluster(e) => write!(f, "{e}"),
            Error::Sink(e) => write!(f, "{e}"),
            Error::Source(e) => write!(f, "{e}"),
            Error::Recover { chosen, kept } => write!(
                f,
                "the sink chose kept checkpoint {chosen}, but {kept} are kept"
            ),
        }
    }
}

/// What `?` in a `main` prints: the message and the causes it does not
/// already say ([`cepheid_core::error::write_report`]), not a struct dump.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        cepheid_core::error::write_report(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Conflict(e) => Some(e),
            Error::Cluster(e) => e.source(),
            Error::Sink(e) => Some(e),
            Error::Source(e) => Some(e),
            Error::Pattern { source, .. }
            | Error::Malformed { source, .. }
            | Error::MalformedRecord { source, .. } => Some(source),
            Error::Checkpoint {
                why: Unusable::DoesNotFit(e),
                ..
            } => Some(e),
            Error::Checkpoint {
                why: Unusable::Meta(e),
                ..
            } => Some(e),
            Error::StartFrom {
                why: Unusable::DoesNotFit(e),
                ..
            } => Some(e),
            Error::Resume {
                why: Unusable::Worker { source, .. },
                ..
            } => Some(source),
            _ => None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum End {
    /// At the end of its input.
    #[default]
    Input,
    /// Stopped by [`Handle::stop`] (the reason given); the input did not
    /// end: events waiting for the watermark stay waiting.
    Stopped(String),
    /// Standard output was closed (`| head`): stopped quietly.
    OutputClosed,
    /// Stopped on an error (said as a [`Notice`] when it happened).
    Failed(Error),
    /// At the end of its input, but a part of it was not read whole (a run
    /// over parts of the input, the dataflow crate's on workers: a part
    /// could not be read, or stopped at a malformed line with
    /// [`Config::strict`]; the other parts were read to their end). Said
    /// as a [`Notice`] when it happened.
    Incomplete(Error),
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A run's counts: what `cepheid run` prints at the end (its `Display`
/// is that line, without the `cepheid: ` before it).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Events read.
    pub events: u64,
    /// Malformed lines.
    pub malformed: u64,
    /// Late events.
    pub late: u64,
    /// Matches.
    pub matches: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Events skipped by a pattern for an unusable key.
    pub unusable_keys: u64,
    /// Partial matches dropped over `max_runs_per_key`.
    pub dropped_runs: u64,
    /// Keys in which they were (up to 10,000).
    pub dropped_keys: usize,
    /// Were there more keys than that?
    pub dropped_keys_overflow: bool,
    /// Partial matches dropped over `max_live_runs`.
    pub capped_runs: u64,
    /// Watermarks moved over `max_waiting`.
    pub forced_watermarks: u64,
    /// Rule sets put in force.
    pub reloads: u64,
    /// Rule sets refused.
    pub reloads_refused: u64,
    /// Records of a source's rules stream read after event time had
    /// passed their time: applied at once, late (in JSON only when some
    /// were).
    #[serde(skip_serializing_if = "is_zero")]
    pub reloads_late: u64,
    /// Reference files read again and not applied: they had entries and
    /// were empty, binary, or gave no entry (`docs/lists.md`; in JSON only
    /// when some were).
    #[serde(skip_serializing_if = "is_zero")]
    pub lists_not_applied: u64,
    /// Partial matches discarded by reloads.
    pub discarded_runs: u64,
    /// What the lists refused, when the rules declare a list, or a list
    /// of rules a change replaced refused some (in JSON only then: issue
    /// 60, item 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lists: Option<ListCounts>,
    /// What the indicators left out, when the rules declare an indicator
    /// (or one of rules a change replaced left some out; in JSON only
    /// then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indicators: Option<IndicatorCounts>,
    /// The same by list and indicator ([`Engine::left_out`], over the
    /// engines as one engine counts it); not in the JSON, nor in the line.
    #[serde(skip)]
    pub left_out: cepheid_engine::engine::LeftOut,
    /// Events still waiting for the watermark.
    pub waiting: usize,
    /// Did the input carry `$watermark` lines (then it said itself how
    /// far event time got, and the end of input does not finish it)?
    pub punctuated: bool,
    /// Wall-clock time of the run (in JSON: seconds, a number).
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Were the outputs flushed at the end? (`false`: the last flush
    /// failed, [`Summary::end`] says why.)
    pub flushed: bool,
    /// Each pattern in force at the end, with its own counts
    /// ([`Engine::pattern_stats`]: events that reached it, matches,
    /// timeouts, partial matches live and dropped, its version).
    pub patterns: Vec<PatternStats>,
    /// Where it ran, when on several workers (the dataflow crate's run):
    /// the line ends with `on 2 workers`, `on 2 processes x 1 worker`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// How it ended.
    #[serde(skip)]
    pub end: End,
    /// Are the run's counts elsewhere? On a [`Cluster`], process 0's
    /// summary counts the run: another process's, or one whose worker 0
    /// failed before it gathered them, holds none (its numbers are zeros,
    /// and `cepheid run` prints no summary). `false` on one engine.
    #[serde(skip)]
    pub uncounted: bool,
    /// The least and the largest event time of the events this run read
    /// (late ones included; a resumed run's, since its checkpoint), by
    /// one engine or added up over a cluster's workers: the time the input
    /// spans (`cepheid backtest`'s days). `None` when it read none, or
    /// with [`Time::Processing`]. Not in the summary's line.
    #[serde(skip)]
    pub event_time: Option<(i64, i64)>,
}

/// What a run's lists refused ([`Summary::lists`]), over the whole run
/// (a resumed run's since the run it resumes started: its checkpoints
/// keep them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ListCounts {
    /// Adds refused: the list held [`Config::max_list_entries`] entries
    /// (`$list` records, rules' writes, reference files, the library).
    pub adds_refused: u64,
    /// Values refused: no list of its kind can hold them (null, a list,
    /// an object; for `cidr`, no address or network).
    pub values_refused: u64,
}

/// What a run's indicators left out ([`Summary::indicators`]), over the
/// whole run; the events were matched all the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IndicatorCounts {
    /// Window entries refused: the indicators held
    /// [`Config::max_indicator_entries`] (an event one indicator at the
    /// limit left out is one).
    pub entries_refused: u64,
    /// Values an indicator's condition took that are not numbers, left
    /// out of a `sum`, `avg`, `min` or `max`.
    pub not_numeric: u64,
}

/// The workers a run ran on, for its [`Summary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Processes, when given (`None`: one, and the summary does not name
    /// them).
    pub processes: Option<usize>,
    /// Worker threads per process.
    pub workers: usize,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let workers = count(self.workers as u64, "worker", "workers");
        match self.processes {
            None => f.write_str(&workers),
            Some(p) => write!(f, "{} x {workers}", count(p as u64, "process", "processes")),
        }
    }
}

/// Keys over the per-key limit remembered, at most.
pub const MAX_DROP_KEYS: usize = 10_000;

impl Summary {
    /// The error that stopped the run, if one did.
    pub fn error(&self) -> Option<&Error> {
        match &self.end {
            End::Failed(e) | End::Incomplete(e) => Some(e),
            _ => None,
        }
    }
}

impl Summary {
    /// What the lists and indicators left out, in the summary's line
    /// (only what some was).
    fn fmt_left_out(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lists = self.lists.unwrap_or_default();
        if lists.adds_refused > 0 {
            write!(
                f,
                ", {} refused over `Config::max_list_entries`",
                count(lists.adds_refused, "list add", "list adds")
            )?;
        }
        if lists.values_refused > 0 {
            write!(
                f,
                ", {} refused (no entry of its list's kind)",
                count(lists.values_refused, "list value", "list values")
            )?;
        }
        let indicators = self.indicators.unwrap_or_default();
        if indicators.entries_refused > 0 {
            write!(
                f,
                ", {} refused over `Config::max_indicator_entries`",
                count(
                    indicators.entries_refused,
                    "indicator entry",
                    "indicator entries"
                )
            )?;
        }
        if indicators.not_numeric > 0 {
            write!(
                f,
                ", {} left out of indicators (not a number)",
                count(indicators.not_numeric, "value", "values")
            )?;
        }
        Ok(())
    }
}

/// A duration as seconds, for the JSON of a [`Summary`].
fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// `1 match`, `2 matches`, `0 matches`: a count with its noun.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let elapsed = self.elapsed.as_secs_f64();
        let rate = if elapsed > 0.0 {
            self.events as f64 / elapsed
        } else {
            0.0
        };
        write!(
            f,
            "{} read, {} malformed, {} late, {}, {}",
            count(self.events, "event", "events"),
            self.malformed,
            self.late,
            count(self.matches, "match", "matches"),
            count(self.timeouts, "timeout", "timeouts"),
        )?;
        if self.unusable_keys > 0 {
            write!(
                f,
                ", {}",
                count(self.unusable_keys, "unusable key", "unusable keys")
            )?;
        }
        if self.dropped_runs > 0 {
            let keys = if self.dropped_keys_overflow {
                // One engine remembers MAX_DROP_KEYS; on workers, the keys
                // each remembered, added up.
                let remembered = match self.layout {
                    None => MAX_DROP_KEYS as u64,
                    Some(_) => self.dropped_keys as u64,
                };
                format!("more than {}", count(remembered, "key", "keys"))
            } else {
                count(self.dropped_keys as u64, "key", "keys")
            };
            write!(
                f,
                ", {} dropped in {keys} over `Config::max_runs_per_key`",
                count(self.dropped_runs, "partial match", "partial matches")
            )?;
        }
        if self.capped_runs > 0 {
            write!(
                f,
                ", {} dropped over `Config::max_live_runs`",
                count(self.capped_runs, "partial match", "partial matches")
            )?;
        }
        if self.forced_watermarks > 0 {
            write!(
                f,
                ", watermark moved {} over `Config::max_waiting`",
                count(self.forced_watermarks, "time", "times")
            )?;
        }
        if self.reloads + self.reloads_refused > 0 {
            let s = if self.reloads == 1 { "" } else { "s" };
            write!(f, ", {} rule reload{s}", self.reloads)?;
            if self.reloads_refused > 0 {
                write!(f, ", {} refused (the old rules kept)", self.reloads_refused)?;
            }
            if self.reloads_late > 0 {
                write!(f, ", {} late", self.reloads_late)?;
            }
        }
        if self.lists_not_applied > 0 {
            write!(
                f,
                ", {} not applied (their lists kept)",
                count(self.lists_not_applied, "list file read", "list file reads")
            )?;
        }
        if self.discarded_runs > 0 {
            write!(
                f,
                ", {} discarded by reloads",
                count(self.discarded_runs, "partial match", "partial matches")
            )?;
        }
        self.fmt_left_out(f)?;
        if self.waiting > 0 {
            match &self.end {
                End::Stopped(why) => write!(
                    f,
                    ", {} waiting for the watermark (not processed: stopped by {why})",
                    self.waiting
                )?,
                End::Failed(_) if !self.punctuated => write!(
                    f,
                    ", {} waiting for the watermark (not processed: the run stopped on an error)",
                    self.waiting
                )?,
                _ => write!(
                    f,
                    ", {} waiting after the last watermark (not processed; `Config::flush_at_end` processes them)",
                    self.waiting
                )?,
            }
        }
        write!(f, " in {elapsed:.3} s ({rate:.0} events/s)")?;
        if let Some(layout) = &self.layout {
            write!(f, " on {layout}")?;
        }
        Ok(())
    }
}
