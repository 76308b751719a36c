//! The stream driver: every pattern over one pass of an event stream,
//! matches and timeouts out as JSON lines (`../shared/spec/cli.md`, the
//! records `cepheid run` writes), a [`Summary`] at the end.
//!
//! Decisions where the spec is silent:
//! - When the input carries punctuated watermarks (`{"$watermark": T}`), it
//!   says itself how far event time has got: at the end of input, events
//!   after its last watermark stay pending, as in a Flink operator that
//!   receives no further watermark (conformance case
//!   `CEPOperatorTest.testCEPOperatorSideOutputLateElementsEventTime`);
//!   `flush_at_end` still releases everything. Without punctuated
//!   watermarks the end of input processes every buffered event and
//!   advances to the largest time seen, as `cli.md` says.
//! - With `strict`, the events read before the malformed line are still
//!   processed (as at the end of input) before the run stops; an input
//!   read error does the same.
//! - A closed standard output (`| head`) ends the run quietly.
//! - On a pipe or a terminal, output is flushed whenever the input has no
//!   further line ready (a [`Source`](crate::Source) says so with
//!   [`ReadOutcome::CaughtUp`](crate::ReadOutcome::CaughtUp)); `idle_timeout` lets event time follow the wall
//!   clock on a quiet input.
//! - [`Handle::stop`] stops any run cleanly: no further line is taken,
//!   what the watermark released is written and flushed, events still
//!   waiting for the watermark are not forced out (the input did not end:
//!   no `finish`), the summary says so.
//! - Processing time: each event's time is the wall clock when it is
//!   taken, the time field is not read, `$watermark` lines are ignored
//!   (said once).
//! - The limits (`max_runs_per_key`, `max_live_runs`, `max_waiting`) are
//!   said the first time they act (ten keys for the first) and counted.
//! - Rules can change while it runs (`docs/dynamic-rules.md`): control
//!   records `{"$rules": "..."}` / `{"$rules_file": "..."}` in JSON-lines
//!   input (`rules_from_stream`, `rules_dir`), the pattern paths read again
//!   when they change (`watch`) or on [`Handle::reload`], between two
//!   batches. A set that does not load keeps the old rules (said,
//!   counted). A checkpoint taken after a change holds the rules in force;
//!   resuming from it goes on with those.
//!
//! Reading and decoding run on a thread of their own (`source.rs`), a few
//! batches of lines ahead of the engine (which, with the formatting of the
//! output, stays on the calling thread), and so do the main output's
//! system calls (`background.rs`); everything observable happens in input
//! order on the calling thread, so this changes nothing but the speed.

mod session;

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::jsonl::Formatter;
use crate::{FieldWatch, Owner};
use cepheid_core::record::FieldTable;
use cepheid_decode::{value_from_json, value_to_json, Decoder, Format, Item};
use cepheid_engine::engine::{Engine, MatchRef, Sink as EngineSink};
use cepheid_engine::{FieldId, Record, Rules, Timestamp, Value};

use crate::board::Observing;
use crate::checkpoint::store::{self, OnePosition};
use crate::checkpoint::{self, Counters, Hook, Marker, Schedule, Writer, Written};
use crate::counts::Counts;
use crate::limits::LimitNotices;
use crate::reload::Reloads;
use crate::resume::Meta;
use crate::sink::{Checkpoint, Files, Kind, Output, Sink, Writing};
use crate::source::{
    new_decoder, reading, spawn_reader, Batch, Control, Entry, FieldWarnings, FilePosition, Got,
    Message, Opened, Policy, Position, Range, Reload, RulesRead, Source, SplitLag, SplitTiming, Tx,
};
use crate::timing::{wall_ms, Idle, Timing};
use crate::{
    Answers, Board, Cluster, Config, Doing, End, Error, Input, Level, Notice, Notify, OpenCluster,
    Report, RunEvent, RunView, Sources, Summary, Tap, Time, MAX_DROP_KEYS,
};

/// The records of the engine's sink ([`Reporting`]): each formatted as
/// `cepheid run` writes it and handed to the run's [`Output`] (its first
/// error kept there until the run looks at it, after each line), the
/// latest copied for an observing [`Report`].
struct Emit {
    format: Formatter,
    output: Output,
    /// Does the sink take late records?
    late: bool,
    /// Does it take decisions ([`Config::decisions`])? Without, an engine
    /// with scenes makes them and they are dropped unformatted.
    decisions: bool,
    /// The latest records kept for an observing [`Report`] (at most its
    /// `records_wanted`), `None` when none are wanted.
    tap: Option<Tap>,
}

impl Emit {
    /// The records of `engine` to `sink`, its first error said to
    /// `notify`; said first, when its rules have scenes and the sink
    /// takes no decisions, that their decisions are not written.
    fn new(
        sink: Box<dyn Sink>,
        notify: Notify,
        engine: &Engine<Record>,
        report: &mut dyn Report,
    ) -> Emit {
        let (late, decisions) = (sink.takes_late(), sink.takes_decisions());
        if !decisions {
            say_no_decisions(engine, report);
        }
        Emit {
            format: Formatter::default(),
            output: Output::new(sink, notify),
            late,
            decisions,
            tap: None,
        }
    }

    /// Hands the record just formatted to the output.
    #[inline]
    fn emit(&mut self, kind: Kind) {
        let line = self.format.line();
        self.output.write(kind, self.format.key(), line);
        if let Some(tap) = &mut self.tap {
            tap.push(kind, line);
        }
    }
}

/// How a run ended early.
enum Stop {
    /// An error, already said.
    Failed(Error),
    /// Writing failed, or the output was closed: its error is the
    /// [`Output`]'s ([`Output::end`]).
    Output,
}

/// Asks a running [`Runtime`] to stop or to read its rules again, from any
/// thread (a signal handler's, a supervisor's).
#[derive(Clone, Debug)]
pub struct Handle {
    /// The reader threads it speaks to: one engine's, or each live input
    /// of a cluster's process.
    tx: Vec<Tx>,
    /// The first stop asked (its why), for a run still getting ready,
    /// which reads no message yet: a cluster meeting its other processes.
    asked: Arc<OnceLock<String>>,
}

impl Handle {
    /// The handle of the reader thread that `tx` sends to.
    pub(crate) fn new(tx: Tx) -> Handle {
        Handle::of(vec![tx])
    }

    fn of(tx: Vec<Tx>) -> Handle {
        Handle {
            tx,
            asked: Arc::default(),
        }
    }

    /// What a run says when it takes the stop asked for `why` (a signal,
    /// a read error that stops the other readers), in one engine's words
    /// and its workers'.
    pub fn stopped(why: &str) -> Notice {
        Notice::line(Level::Info, format!("cepheid: stopped by {why}"))
    }

    /// Was a stop asked of this handle (or a clone of it)? Why, the first
    /// time. For an executor that waits before it reads any message (a
    /// cluster meeting its other processes).
    pub fn stop_asked(&self) -> Option<String> {
        self.asked.get().cloned()
    }

    /// Stops the run between two batches: what the watermark released is
    /// written and flushed, a last checkpoint taken; events waiting for
    /// the watermark stay waiting (the input did not end). `why` is said
    /// (`stopped by {why}`) and kept in [`End::Stopped`]. Never waits,
    /// even for a run whose input is held up.
    pub fn stop(&self, why: &str) {
        let _ = self.asked.set(why.to_string());
        self.send(|| Message::Stop(why.to_string()));
    }

    /// Reads the pattern paths of [`Config::patterns`] again and puts them
    /// in force between two batches (as [`Config::watch`] does when they
    /// change). `why` names what asked for it in what the run says
    /// ([`audit::reloaded`](crate::audit::reloaded); the command says
    /// `SIGHUP`), and is the
    /// change's label in its audit record (`{"origin": {"files": [...],
    /// "label": why}}`, [`Config::audit`]).
    pub fn reload(&self, why: &str) {
        self.send(|| Message::Reload(Reload::Asked(why.to_string())));
    }

    /// Adds `value` to list `list` of the rules in force, until event time
    /// `until` (`None`: the list's own `for`, or for ever), from the
    /// watermark then + 1 on, as a watched reference file's change is
    /// made: between two batches, said (`cepheid: list `blocked`: 1 added,
    /// 0 removed through the run's handle, from event time T`), kept in
    /// the checkpoints with the list. On workers, process 0's handle
    /// reaches every worker at one point of event time. A list the rules
    /// do not declare is said and changes nothing. `docs/lists.md`.
    pub fn add_to_list(&self, list: &str, value: &Value, until: Option<Timestamp>) {
        let record = crate::lists::ListRecord {
            list: list.to_string(),
            add: vec![(value_text(value), until)],
            remove: Vec::new(),
        };
        self.send(|| Message::List(record.clone()));
    }

    /// Removes `value` from list `list`, as [`Handle::add_to_list`] adds.
    pub fn remove_from_list(&self, list: &str, value: &Value) {
        let record = crate::lists::ListRecord {
            list: list.to_string(),
            add: Vec::new(),
            remove: vec![value_text(value)],
        };
        self.send(|| Message::List(record.clone()));
    }

    /// Sends each reader `message()` behind what it has to take already:
    /// when its queue is full (the run is held up: a slow output, workers
    /// waiting for another's input), from a thread of its own, so that the
    /// caller (a signal's thread, which hears the next signal only after)
    /// never waits.
    fn send(&self, message: impl Fn() -> Message) {
        for tx in &self.tx {
            let Err(full) = tx.try_send(message()) else {
                continue;
            };
            if let TrySendError::Full(message) = *full {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let _ = tx.send(message);
                });
            }
        }
    }
}

/// A value as the JSON text a list record holds.
fn value_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// One handle for several: each of a cluster's live inputs (a source per
/// worker).
impl FromIterator<Handle> for Handle {
    fn from_iter<I: IntoIterator<Item = Handle>>(handles: I) -> Handle {
        Handle::of(handles.into_iter().flat_map(|h| h.tx).collect())
    }
}

/// A run, ready: its checkpoint (if any) read, its engine restored (or
/// its cluster's workers' states), its input and outputs open.
/// [`Runtime::run`] runs it: one engine on the calling thread
/// ([`Runtime::new`], [`Runtime::with_source`]...), or on the workers of
/// a [`Cluster`] ([`Runtime::on_cluster`]).
pub struct Runtime(Executor);

/// What a [`Runtime`] runs on.
enum Executor {
    /// One engine on the run's thread.
    Single(Box<Single>),
    /// A cluster's workers.
    Cluster(OnCluster),
}

/// A run on a cluster's workers, open: what the runtime keeps to end it.
struct OnCluster {
    open: Box<dyn OpenCluster>,
    /// What shows the workers to an observing report.
    board: Option<Arc<Board>>,
    /// The run's report (the cluster's workers share it).
    notify: Notify,
    /// [`Config::max_waiting`], which the end of the run names.
    max_waiting: usize,
    /// The output the workers of process 0 write to, which the runtime
    /// flushes at the end ([`Outputs::shared`]).
    output: Option<Arc<std::sync::Mutex<crate::Output>>>,
    /// The checkpoint folder, whose last cut keeps the field warnings
    /// said at the end.
    checkpoint: Option<std::path::PathBuf>,
    /// Held to the end: this process's lock of the checkpoint folder.
    _lock: Option<File>,
}

/// Locks the checkpoint folder of `config` (if it has one) for process
/// `process` of the run, on either executor: another run on the folder is
/// refused (naming it) before the checkpoint is read; the lock is held to
/// the end of the run.
fn lock_checkpoint(config: &Config, process: usize) -> Result<Option<File>, Error> {
    let dir = config.checkpoint.as_deref();
    dir.map(|dir| crate::lock::lock_folder(dir, process))
        .transpose()
}

/// One engine's run on the calling thread, ready.
struct Single {
    config: Config,
    engine: Engine<Record>,
    report: Box<dyn Report>,
    tx: Tx,
    messages: Receiver<Message>,
    input: Opened,
    size: Option<u64>,
    decoder: Decoder,
    resumed: Option<Meta>,
    command: Option<checkpoint::Command>,
    out: Emit,
    /// A source of the library's user, shared with the reader thread.
    source: Option<Arc<Mutex<Box<dyn Source>>>>,
    /// Its position at the start.
    place: Option<Position>,
    /// Held to the end: the checkpoint folder's and the outputs' locks.
    _locks: Vec<File>,
    /// Where the patterns read each field, for the warnings about fields
    /// no event carries ([`Config::field_warnings`]).
    field_watch: FieldWatch,
    /// Called before each checkpoint file is written.
    hook: Option<Hook>,
    /// Reference files not applied when read at the open (resumed).
    lists_not_applied: u64,
    /// Where the answers to a source's requests go.
    answers: Option<Box<dyn Answers>>,
}

impl Runtime {
    /// A run of `rules` with `config`; what it does is said to `report`.
    pub fn new(config: Config, rules: &Rules, report: Box<dyn Report>) -> Result<Runtime, Error> {
        let mut engine = config.engine();
        // The automata the rules compiled as they were loaded, shared (one
        // pattern at a time only to say which one the engine refuses).
        if engine.add(rules).is_err() {
            for pattern in rules.patterns() {
                engine.add(pattern).map_err(|source| Error::Pattern {
                    name: pattern.name.clone(),
                    source,
                })?;
            }
        }
        Ok(Runtime::with_engine(config, engine, report)?
            .with_field_watch(FieldWatch::from_rules(rules)))
    }

    /// Where the patterns read their fields, for the warnings about fields
    /// no event carries ([`Config::field_warnings`]): from their `.cep`
    /// text ([`FieldWatch::from_rules`], [`FieldWatch::from_loaded`]),
    /// each read is placed at its `path:line:column`. Without it (a run
    /// made by [`with_engine`](Runtime::with_engine)), reads are named by
    /// pattern and clause. Ignored when it does not describe the patterns
    /// in force (a checkpoint resumed with other rules).
    pub fn with_field_watch(mut self, watch: FieldWatch) -> Runtime {
        let Executor::Single(single) = &mut self.0 else {
            // (a cluster's workers watch the fields of its rules)
            return self;
        };
        // (the patterns' reads: those of its indicators and scenes are
        // kept when the engine has them)
        let key = |w: &FieldWatch| {
            let mut reads: Vec<(String, String)> = (w.reads().iter())
                .filter(|r| r.owner == Owner::Pattern)
                .map(|r| (r.pattern.clone(), r.field.to_string()))
                .collect();
            reads.sort_unstable();
            reads
        };
        if key(&watch) == key(&single.field_watch) {
            let mut watch = watch;
            let engine = &single.engine;
            watch.retain(|read| match read.owner {
                Owner::Indicator => engine.declarations().indicator(&read.pattern).is_some(),
                Owner::Scene => engine.scenes().any(|s| s.name == read.pattern),
                _ => true,
            });
            single.field_watch = watch;
        }
        self
    }

    /// A run with `config` of `engine` (made with [`Config::engine`], its
    /// patterns added), into the files of `config` ([`Files`]); what it
    /// does is said to `report`.
    pub fn with_engine(
        config: Config,
        engine: Engine<Record>,
        report: Box<dyn Report>,
    ) -> Result<Runtime, Error> {
        Runtime::with_sink(config, engine, None, report)
    }

    /// A run with `config` of `engine` into `sink` (`None`: the files of
    /// `config`, [`Files`]); what it does is said to `report`.
    pub fn with_sink(
        config: Config,
        engine: Engine<Record>,
        sink: Option<Box<dyn Sink>>,
        report: Box<dyn Report>,
    ) -> Result<Runtime, Error> {
        Runtime::with_source(config, engine, None, sink, report)
    }

    /// A run with `config` of `engine` from `source` (`None`: the input of
    /// `config`, read by the built-in file reader) into `sink` (`None`:
    /// the files of `config`, [`Files`]); what it does is said to
    /// `report`. A source's records are decoded in `config.format`; its
    /// position goes into checkpoints and is sought back to on resuming.
    pub fn with_source(
        mut config: Config,
        mut engine: Engine<Record>,
        mut source: Option<Box<dyn Source>>,
        mut sink: Option<Box<dyn Sink>>,
        report: Box<dyn Report>,
    ) -> Result<Runtime, Error> {
        // A source or sink may say things from its own threads, or while
        // the run waits for it, and so does the output: the report is
        // shared.
        let (mut report, notify) = Notify::share(report);
        if let Some(source) = &mut source {
            source.notify_to(notify.clone());
        }
        if let Some(sink) = &mut sink {
            sink.notify_to(notify.clone());
        }
        let file = source.is_none();
        config.shadow_sink = sink.as_ref().is_some_and(|s| s.takes_shadow());
        refuse(&config, file, sink.as_deref(), engine.patterns())?;
        let source = source.map(|source| Arc::new(Mutex::new(source)));
        let locks = Vec::from_iter(lock_checkpoint(&config, 0)?);
        // (a cut of workers is made one engine's first: `one_engine.rs`)
        crate::checkpoint::one_engine::of_workers(&config, &engine, report.as_mut())?;
        special_outputs(&config, report.as_mut());
        // A checkpoint to resume from is checked whole (and the engine
        // restored) before any file is touched.
        let command = match &source {
            Some(source) => config.checkpoint.as_ref().map(|_| {
                let name = lock_source(source).describe();
                custom_command(&config, name)
            }),
            None => checkpoint_command(&config),
        };
        // (the engine as given, before a checkpoint is restored into it:
        // what a run its sink sends back to the start goes on with, and one
        // it sends back to the checkpoint before the newest is restored
        // into, its scenes with it, which a snapshot does not hold)
        let given = match &config.checkpoint {
            Some(_) => engine.duplicate().ok(),
            None => None,
        };
        let start_over = start_over(&config, source.as_ref(), &engine, given.as_ref())?;
        let resumed = match (&config.checkpoint, &command) {
            (Some(dir), Some(command)) => {
                crate::resume::load(&config, dir, command, &mut engine, report.as_mut())?
            }
            _ => None,
        };
        // (or one it only reads and starts from: `Config::start_from`)
        let started_from = started_from(&config, source.as_ref(), &mut engine, report.as_mut())?;
        let meta = (resumed.as_ref().map(|r| &r.meta)).or(started_from.as_ref());
        let (mut decoder, mut input, mut size) =
            open_input(&config, source.as_ref(), meta, &engine, report.as_mut())?;
        // (so is another run writing the outputs, with another folder:
        // `Files::open`)
        let mut sink = match sink {
            Some(sink) => sink,
            None => {
                let mut files = Files::open(&config, resumed.is_some(), Writing::Thread)?;
                files.notify_to(notify.clone());
                Box::new(files)
            }
        };
        // The sink says which kept checkpoint it committed: the newest,
        // or (a transactional sink that stopped before its commit) the
        // one before, from which the run then goes on. With none kept, it
        // is asked too: one that committed checkpoints of its own (a
        // standby with an empty folder) refuses, rather than commit every
        // record a second time.
        let resumed = match resumed {
            None if config.checkpoint.is_some() => {
                crate::sink::first_start(sink.as_mut()).map_err(Error::Sink)?;
                None
            }
            None => started_from,
            Some(resumed) => {
                let mut kept_ones = vec![kept(&resumed.meta)];
                kept_ones.extend(resumed.prev.as_ref().map(|(meta, _, _)| kept(meta)));
                let kept = kept_ones;
                match sink.recover(&kept).map_err(Error::Sink)? {
                    0 => Some(resumed.meta),
                    n if n == kept.len() && start_over.is_some() => {
                        // Nothing of the kept checkpoints was committed:
                        // from the start, as if none were kept.
                        let (given, at) = start_over.expect("checked");
                        engine = given;
                        // (they go, never to be resumed from: the next
                        // checkpoint, numbered from 1 again, is written
                        // where the first of them was)
                        if let Some(dir) = &config.checkpoint {
                            store::discard_after(dir, None).map_err(|source| Error::Io {
                                doing: Doing::WriteCheckpoint,
                                path: dir.display().to_string(),
                                source,
                            })?;
                        }
                        decoder = new_decoder(&config, engine.fields());
                        if let Some(source) = &source {
                            lock_source(source).seek(&at).map_err(Error::Source)?;
                        }
                        report.notice(Notice::line(
                            Level::Info,
                            "cepheid: the sink committed none of the kept checkpoints: starting from the beginning",
                        ));
                        None
                    }
                    1 => {
                        let (meta, snapshot, path) = resumed.prev.expect("two kept");
                        // (into the engine as given, as `resume::load`
                        // restores the newest, unless the rules changed
                        // before it: the snapshot's rules then)
                        let restored = match given {
                            Some(mut given) if !meta.counters.rules_changed => {
                                given.restore(&snapshot[..]).map(|()| given)
                            }
                            _ => rules_of(&config, &snapshot),
                        };
                        engine = restored.map_err(|e| Error::Checkpoint {
                            path: path.clone(),
                            folder: config.checkpoint.clone().unwrap_or_default(),
                            why: crate::Unusable::DoesNotFit(e),
                        })?;
                        // (the newest, never committed, goes: the next
                        // write keeps this one until its commit)
                        if let Some(dir) = &config.checkpoint {
                            store::discard_after(dir, Some(meta.number)).map_err(|source| {
                                Error::Io {
                                    doing: Doing::WriteCheckpoint,
                                    path: path.display().to_string(),
                                    source,
                                }
                            })?;
                        }
                        report.notice(Notice::line(
                            Level::Info,
                            format!(
                                "cepheid: the sink committed the checkpoint before the newest: resuming from it, {}",
                                crate::resume::resumed_at(&meta, config.input.path())
                            ),
                        ));
                        (decoder, input, size) = open_input(
                            &config,
                            source.as_ref(),
                            Some(&meta),
                            &engine,
                            report.as_mut(),
                        )?;
                        Some(meta)
                    }
                    chosen => {
                        return Err(Error::Recover {
                            chosen,
                            kept: kept.len(),
                        })
                    }
                }
            }
        };
        shadow_placed(&config, engine.patterns())?;
        let lists_not_applied =
            read_lists(&config, &mut engine, resumed.as_ref(), report.as_mut())?;
        let out = Emit::new(sink, notify, &engine, report.as_mut());
        let (tx, messages) = Tx::channel();
        let place = resumed.as_ref().and_then(|m| m.source.clone());
        let field_watch = FieldWatch::for_patterns(engine.patterns());
        Ok(Runtime(Executor::Single(Box::new(Single {
            field_watch,
            hook: None,
            answers: None,
            lists_not_applied,
            config,
            engine,
            report,
            tx,
            messages,
            input,
            size,
            decoder,
            resumed,
            command,
            out,
            source,
            place,
            _locks: locks,
        }))))
    }

    /// A run of `rules` with `config` on the workers of `cluster` (threads
    /// of this process, and processes: `cepheid_dataflow::Cluster`) instead
    /// of one engine, from `sources` (one per worker of this process,
    /// [`Cluster::workers`]; `None`: the input of `config`, cut in parts
    /// for the workers) into `sink` (`None`: the files of `config`); what
    /// it does is said to `report`. What one engine's run refuses is
    /// refused first, the same, then what the cluster does not take
    /// ([`Cluster::check`]); then the run is opened (its checkpoint read,
    /// its outputs open) as one engine's is here.
    pub fn on_cluster(
        mut config: Config,
        rules: &Rules,
        cluster: Box<dyn Cluster>,
        sources: Option<Sources>,
        mut sink: Option<Box<dyn Sink>>,
        mut report: Box<dyn Report>,
    ) -> Result<Runtime, Error> {
        config.shadow_sink = sink.as_ref().is_some_and(|s| s.takes_shadow());
        refuse(
            &config,
            sources.is_none(),
            sink.as_deref(),
            rules.patterns().iter(),
        )?;
        if config.start_from.is_some() {
            return Err(Error::Conflict(crate::Conflict::StartFromOnWorkers));
        }
        if config.audit_lists {
            return Err(Error::Conflict(crate::Conflict::AuditListsOnWorkers));
        }
        cluster.check(&config, sink.is_some())?;
        let lock = lock_checkpoint(&config, cluster.process())?;
        if cluster.process() == 0 && sink.is_none() {
            // (process 0 writes the outputs; a sink's are its own)
            special_outputs(&config, report.as_mut());
        }
        let (report, notify) = Notify::share(report);
        let board = report.observes().then(|| {
            let readers = sources.iter().flatten().map(Option::is_some).collect();
            Arc::new(Board::new(
                cluster.workers(),
                rules.patterns().to_vec(),
                readers,
                report.records_wanted(),
                crate::board::followed(&config).map(Path::to_path_buf),
            ))
        });
        if let Some(sink) = &mut sink {
            // (told what it has to say, as the workers will tell it)
            sink.notify_to(notify.clone());
        }
        // The checkpoint resumed from: read here, chosen with the sink.
        let resumed = match &config.checkpoint {
            Some(dir) => crate::resume::for_cluster(dir, sink.as_deref_mut(), cluster.as_ref())?,
            None => None,
        };
        if let (Some(dir), Some(stored)) = (&config.checkpoint, &resumed) {
            // Against this command and the cluster's workers, before the
            // cluster restores it.
            let (layout, process) = (cluster.layout(), cluster.process());
            let why = crate::resume::on_workers(stored, &config, layout, process, sources.as_ref());
            if let Some(why) = why {
                return Err(Error::Resume {
                    folder: dir.clone(),
                    why,
                });
            }
        }
        let max_waiting = config.max_waiting;
        let here = crate::outputs::Here {
            layout: cluster.layout(),
            process: cluster.process(),
            workers: cluster.workers().0,
        };
        let unfinished = (here.process == 0)
            .then(|| config.checkpoint.clone())
            .flatten();
        // (what the resume says and the outputs go on from: the cut as
        // the folder keeps it)
        let at = resumed.as_ref().map(crate::outputs::At::of);
        let taken = resumed.as_ref().map(crate::resume::Taken::of);
        let output_config = config.clone();
        let restored = cluster.open(
            config,
            rules,
            report,
            sources,
            sink.as_deref(),
            resumed,
            board.clone(),
        )?;
        if let (Some(dir), Some(taken)) = (&output_config.checkpoint, taken) {
            let layout = (here.layout.processes, here.layout.workers);
            let rules = restored.resumed_rules();
            for notice in crate::resume::on_workers_said(dir, taken, layout, rules) {
                notify.notice(notice);
            }
        }
        let outputs = crate::outputs::open(&output_config, &here, sink, at.as_ref(), &notify)?;
        let output = outputs.shared.clone();
        let open = restored.start(outputs)?;
        if let Some(dir) = unfinished {
            // (what a run killed while it wrote a cut left: process 0's to
            // delete, before any worker of this run writes one)
            crate::resume::clear_unfinished(&dir)?;
        }
        Ok(Runtime(Executor::Cluster(OnCluster {
            open,
            board,
            notify,
            max_waiting,
            output,
            checkpoint: output_config.checkpoint,
            _lock: lock,
        })))
    }

    /// Calls `hook` with each checkpoint's number on the checkpoint
    /// thread, just before its file is written (and after the matching
    /// thread took its snapshot and went on). For tests: a hook that
    /// waits holds a checkpoint's file back, to see what the run does
    /// meanwhile (it goes on matching; a sink that does not take writes
    /// before its commit, [`Sink::writes_before_commit`], waits). The run
    /// may be waiting for the file (a stop, the end): a hook must not
    /// wait for the run (nor call [`Handle::stop`], which may wait for
    /// room in the run's channel) without a thread of its own.
    ///
    /// One engine's: a cluster's workers write their pieces of a cut
    /// themselves (the hook is not called).
    pub fn before_checkpoint_file(mut self, hook: impl FnMut(u64) + Send + 'static) -> Runtime {
        if let Executor::Single(single) = &mut self.0 {
            single.hook = Some(Box::new(hook));
        }
        self
    }

    /// Gives the answers to the requests of the run's source
    /// ([`Source::gives_requests`]: `cepheid serve`'s log) to `answers`
    /// ([`Answers`]). One engine's: a cluster's run refuses a source that
    /// gives requests (usage error).
    pub fn answering(mut self, mut answers: Box<dyn Answers>) -> Runtime {
        if let Executor::Single(single) = &mut self.0 {
            // (the engine as the run starts: resumed, it is restored)
            answers.start(&single.engine);
            single.answers = Some(answers);
        }
        self
    }

    /// A handle that stops the run or asks for a reload, from any thread
    /// (on a cluster that reads no live input, one that does nothing:
    /// [`Runtime::stoppable`]).
    pub fn handle(&self) -> Handle {
        match &self.0 {
            Executor::Single(single) => Handle::new(single.tx.clone()),
            Executor::Cluster(on) => on.open.handle().unwrap_or_else(|| Handle::of(Vec::new())),
        }
    }

    /// Does [`Handle::stop`] stop this run? One engine's, always; a
    /// cluster's, unless this process reads nothing (another process than
    /// process 0 of a run over standard input or a followed file, whose
    /// reader is process 0's).
    pub fn stoppable(&self) -> bool {
        match &self.0 {
            Executor::Single(_) => true,
            Executor::Cluster(on) => on.open.handle().is_some(),
        }
    }

    /// The engine (its patterns, its fields) before the run: one engine's
    /// (`None` on a cluster, whose workers have engines of their own).
    pub fn engine(&self) -> Option<&Engine<Record>> {
        match &self.0 {
            Executor::Single(single) => Some(&single.engine),
            Executor::Cluster(..) => None,
        }
    }

    /// Runs to the end of the input (or to [`Handle::stop`], or an error)
    /// and says how it went.
    pub fn run(self) -> Summary {
        match self.0 {
            Executor::Single(single) => single.run(),
            Executor::Cluster(on) => on.run(),
        }
    }
}

impl OnCluster {
    /// Runs the cluster's workers (observed, with a board) and ends the
    /// run as one engine's ends: the output flushed, the workers' counts
    /// made the summary and what they say said here, once for both
    /// executors.
    fn run(self) -> Summary {
        let OnCluster {
            open,
            board,
            notify,
            max_waiting,
            output,
            checkpoint,
            _lock,
        } = self;
        let observing = board.map(|board| Observing::start(board, notify.clone()));
        let started = Instant::now();
        let ended = open.run();
        let summary = crate::counts::on_workers_ended(
            ended,
            output.as_deref(),
            checkpoint.as_deref(),
            started,
            &notify,
        );
        // (the output closed before what the end says, as the workers'
        // was)
        drop(output);
        if let Some(notice) = crate::counts::said_at_end(&summary, max_waiting) {
            notify.notice(notice);
        }
        if let Some(observing) = observing {
            observing.end(&summary);
        }
        summary
    }
}

impl Single {
    /// Runs to the end of the input (or to [`Handle::stop`], or an error)
    /// and says how it went.
    fn run(self) -> Summary {
        let Single {
            config,
            mut engine,
            mut report,
            tx,
            messages,
            input,
            size,
            decoder,
            resumed,
            command,
            mut out,
            lists_not_applied,
            source,
            place,
            _locks,
            field_watch,
            hook,
            mut answers,
        } = self;
        let started = Instant::now();
        let start = resumed
            .as_ref()
            .map_or(FilePosition::default(), |m| m.input);
        let reload_first = resumed.as_ref().is_some_and(|m| m.reload_files);
        let was_resumed = resumed.is_some();
        let counters_fields = (resumed.as_ref())
            .map(|m| m.counters.fields.clone())
            .unwrap_or_default();
        report.started(size, start.offset);
        let observes = report.observes();
        if observes && report.records_wanted() > 0 {
            let mut tap = Tap::new(report.records_wanted());
            // (a resumed run shows the latest records made before it)
            let kept = resumed.as_ref().map_or(&[][..], |m| &m.records[..]);
            for (kind, record) in kept {
                tap.push(*kind, record.as_bytes());
            }
            out.tap = Some(tap);
        }
        // (the engine's patterns: resumed after a change of rules, the
        // snapshot's, not the command line's)
        let mut keys = KeyFields::new(engine.patterns(), engine.fields());
        let mut drops = Drops::default();
        let number = resumed.as_ref().map_or(0, |m| m.number);
        let splits = resumed.as_ref().and_then(|m| m.split_watermarks.clone());
        let ranges = resumed.as_ref().map_or_else(Vec::new, |m| m.ranges.clone());
        let history = (resumed.as_ref()).map_or_else(Default::default, |m| m.history.clone());
        let mut counters = resumed.map(|m| m.counters).unwrap_or_default();
        // (what the files gave is read: their lists hold it)
        counters.lists = Vec::new();
        keys.restore(&counters.object_keys_told);
        drops.restore(&counters.dropped_keys, &names(&engine));
        drops.overflow = counters.dropped_keys_overflow;
        let checkpoints = match (&config.checkpoint, command) {
            (Some(dir), Some(command)) => Some(Checkpoints {
                schedule: Schedule::new(config.checkpoint_every, started),
                dir: dir.clone(),
                writer: None,
                hook,
                wake: tx.clone(),
                in_flight: None,
                buffer: checkpoint::first_buffer(dir, number),
                deferred: 0,
                command,
                number,
            }),
            _ => None,
        };
        let (notices, left_out_seen) = (
            limit_notices(&config, &drops, &engine),
            session::left_out_counts(&engine),
        );
        let reloads = Reloads {
            applied: counters.reloads,
            refused: counters.reloads_refused,
            late: counters.reloads_late,
            lists_not_applied,
        };
        let mut session = Session {
            config: &config,
            engine: &mut engine,
            out: Reporting {
                out: &mut out,
                drops,
                notices,
                left_out_seen,
                report: report.as_mut(),
            },
            keys,
            counters: &mut counters,
            checkpoints,
            position: start,
            ranges,
            source,
            place,
            reloads,
            stale_below: 0,
            open_end: false,
            mid_batch: false,
            no_split_watermark: config.split_watermarks
                && config.time != Time::Processing
                && !splits
                    .as_ref()
                    .is_some_and(|s| !s.is_empty() && s.iter().all(Option::is_some)),
            splits,
            reload_first,
            fields: FieldWarnings::new(config.field_warnings.unwrap_or(u64::MAX), field_watch, 1)
                .resumed(was_resumed)
                .going_on(&counters_fields),
            observes,
            lag: Vec::new(),
            rules_waiting: None,
            history,
            event_time: None,
            answers: answers.as_deref_mut().map(|a| a as &mut dyn Answers),
        };
        if !was_resumed {
            session.first_record();
        }
        let result = session.stream(input, decoder, tx, messages);
        // The checkpoint whose file is being written: waited for (a
        // stopped run's last checkpoint is whole when it ends); committed
        // unless the run failed (its error is the first one, said).
        let result = match result {
            Ok(end) => session.settle(true).map(|()| end),
            Err(stop) => {
                session.abandon();
                Err(stop)
            }
        };
        session.observe(true);
        let reloads = session.reloads;
        let event_time = (session.event_time).filter(|_| config.time != Time::Processing);
        let drops = session.out.drops;
        let end = match result {
            Ok(None) => End::Input,
            Ok(Some(why)) => End::Stopped(why),
            // (the output's error, which `Output::end` gives)
            Err(Stop::Output) => End::Input,
            Err(Stop::Failed(e)) => End::Failed(e),
        };
        let ended = out.output.end(end);
        Counts {
            malformed: counters.malformed,
            dropped_keys: drops.keys.len() as u64,
            dropped_keys_overflow: drops.overflow,
            reloads: reloads.applied,
            reloads_refused: reloads.refused,
            reloads_late: reloads.late,
            lists_not_applied: reloads.lists_not_applied,
            punctuated: counters.punctuated,
            patterns: engine.pattern_stats(),
            event_time,
            memory: crate::counts::MemoryCounts::of(&crate::MemoryNumbers::of(&engine)),
            ..Counts::of_engine(&engine.stats(), engine.waiting_events())
        }
        .summary(ended, started.elapsed(), None)
    }
}

/// The notices of the run's limits, of a run that resumed with `drops`
/// and `engine` already said (a resumed run said it already if the cap
/// dropped anything, or its lists and indicators left something out).
fn limit_notices(config: &Config, drops: &Drops, engine: &Engine<Record>) -> LimitNotices {
    LimitNotices::new(config)
        .resumed(drops.keys.len(), engine.stats().capped_runs > 0)
        .resumed_left_out(engine.left_out())
}

/// The reference files of `config`, read whole before any event into
/// `engine`'s lists (resumed: what they changed since the checkpoint, at
/// once); the files not applied (resumed: one that had entries and is
/// now empty, binary, or gives none).
///
/// What each file gave is not kept beside its list (a watched change or a
/// resume compares a new read with the file's holds in the list,
/// `lists::refresh`); a checkpoint of workers, or of an older build, that
/// kept it has it read once, at the resume.
fn read_lists(
    config: &Config,
    engine: &mut Engine<Record>,
    resumed: Option<&Meta>,
    report: &mut dyn Report,
) -> Result<u64, Error> {
    let Some(resumed) = resumed else {
        crate::lists::load(&config.lists, engine, &mut |n| report.notice(n))?;
        return Ok(0);
    };
    let mut kept = resumed.counters.lists.clone();
    // (after the changes of lists the engine had made for times it had
    // not reached, which would undo what changed since)
    let at = engine.last_list_change_waiting().unwrap_or(Timestamp::MIN);
    let when = crate::lists::When::Resumed;
    let refreshed = crate::lists::refresh(&config.lists, engine, &mut kept, at, when, &mut |n| {
        report.notice(n)
    })?;
    Ok(refreshed.not_applied)
}

/// A source's run that its sink may send back to the start (it committed
/// none of the kept checkpoints: `Sink::recover`): a copy of the engine
/// as given (`given`, when made), before resuming, and the source's
/// position.
fn start_over(
    config: &Config,
    source: Option<&Arc<Mutex<Box<dyn Source>>>>,
    engine: &Engine<Record>,
    given: Option<&Engine<Record>>,
) -> Result<Option<(Engine<Record>, Position)>, Error> {
    let (Some(source), Some(_)) = (source, &config.checkpoint) else {
        return Ok(None);
    };
    // (a copy, scenes and all: an engine of the rules of its snapshot
    // would have no scene, and the run that starts over no decision)
    let given = match given {
        Some(given) => given.duplicate(),
        None => engine.duplicate(),
    };
    let given = given.map_err(|e| Error::Pattern {
        name: String::new(),
        source: e,
    })?;
    Ok(Some((given, lock_source(source).position())))
}

/// The checkpoint a run of `config` starts from
/// ([`Config::start_from`]), `engine` restored from it; `None` without
/// one.
fn started_from(
    config: &Config,
    source: Option<&Arc<Mutex<Box<dyn Source>>>>,
    engine: &mut Engine<Record>,
    report: &mut dyn Report,
) -> Result<Option<crate::resume::Meta>, Error> {
    let Some(path) = &config.start_from else {
        return Ok(None);
    };
    let name = match source {
        Some(source) => lock_source(source).describe(),
        None => config.input.path().display().to_string(),
    };
    let command = custom_command(config, name);
    let meta = crate::resume::start_from(config, path, &command, source.is_some(), engine, report)?;
    Ok(Some(meta))
}

/// The names of the engine's patterns in force, in order.
fn names(engine: &Engine<Record>) -> Vec<String> {
    engine.patterns().map(|p| p.name.clone()).collect()
}

/// What a checkpoint of this run must agree on (`None` without
/// checkpoints, or when a path has no canonical form).
pub(crate) fn checkpoint_command(config: &Config) -> Option<checkpoint::Command> {
    config.checkpoint.as_ref()?;
    let path = |p: &Path| canonical(p).map(|c| c.display().to_string());
    let output = match &config.output {
        None => None,
        Some(output) => Some(path(output)?),
    };
    let late = match &config.late {
        Some(late) => Some(path(late)?),
        None => None,
    };
    let shadow = match &config.shadow_output {
        Some(shadow) => Some(path(shadow)?),
        None => None,
    };
    let audit = match &config.audit {
        Some(audit) => Some(path(audit)?),
        None => None,
    };
    let decisions = match &config.decisions {
        Some(decisions) => Some(path(decisions)?),
        None => None,
    };
    let Input::File(events) = &config.input else {
        return None;
    };
    let format = match config.format {
        Format::JsonLines => "jsonl",
        Format::Csv => "csv",
    };
    Some(checkpoint::Command {
        events: path(events)?,
        format: format.to_string(),
        time: match config.time {
            Time::Event { .. } => "event",
            Time::Processing => "processing",
            Time::Record => "record",
        }
        .to_string(),
        // (in processing time no field is read: `ts`, the default)
        time_field: config.time_field().unwrap_or("ts").to_string(),
        output,
        late,
        shadow,
        audit,
        decisions,
    })
}

/// The canonical path of `p`, or of its parent joined with its file name
/// when `p` does not exist yet.
pub(crate) fn canonical(p: &Path) -> Option<std::path::PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(name))
}

/// What `config` says before it starts ([`Config::start_warnings`]).
fn special_outputs(config: &Config, report: &mut dyn Report) {
    for notice in config.start_warnings() {
        report.notice(notice);
    }
}

/// What cannot run with a file input (`reads_file`) or a source, into
/// `sink`: refused here too, not only by a caller that asks
/// [`Config::check`] first (the output the input, a rules folder nothing
/// reads, a transactional sink without checkpoints, the records' own
/// times from a file).
fn refuse<'a>(
    config: &Config,
    reads_file: bool,
    sink: Option<&dyn Sink>,
    patterns: impl Iterator<Item = &'a cepheid_core::pattern::Pattern>,
) -> Result<(), Error> {
    config.check_reading(reads_file).map_err(Error::Conflict)?;
    if let Some(sink) = sink {
        if sink.commits_with_checkpoints() && config.checkpoint.is_none() {
            return Err(Error::Conflict(crate::Conflict::SinkNeedsCheckpoints {
                sink: sink.describe(Kind::Match),
            }));
        }
        if config.shadow_output.is_some() && !sink.takes_shadow() {
            return Err(Error::Conflict(crate::Conflict::SinkTakesNoShadow {
                sink: sink.describe(Kind::Match),
            }));
        }
        if config.audit.is_some() && !sink.takes_audit() {
            return Err(Error::Conflict(crate::Conflict::SinkTakesNoAudit {
                sink: sink.describe(Kind::Match),
            }));
        }
        if config.decisions.is_some() && !sink.takes_decisions() {
            return Err(Error::Conflict(crate::Conflict::SinkTakesNoDecisions {
                sink: sink.describe(Kind::Match),
            }));
        }
    }
    shadow_placed(config, patterns)?;
    if reads_file && config.time == Time::Record {
        return Err(Error::Source(crate::SourceError {
            source_name: config.input.describe(),
            error: io::Error::new(
                io::ErrorKind::InvalidInput,
                "event time from the records' own times needs a source that gives them (a Kafka source), not a file",
            ),
        }));
    }
    Ok(())
}

/// Says, at the start of a run whose rules have scenes and whose sink
/// takes no decisions ([`Config::decisions`]), that their decisions are
/// not written: the scenes' rules run and their alerts are written, but
/// the one outcome per event the scenes are for goes nowhere.
fn say_no_decisions(engine: &Engine<Record>, report: &mut dyn Report) {
    let scenes: Vec<&str> = engine.scenes().map(|s| s.name.as_str()).collect();
    if !scenes.is_empty() {
        report.notice(Notice::line(
            Level::Info,
            format!(
                "cepheid: the decisions of scene{} {} are not written: give the run a decisions file (`Config::decisions`)",
                if scenes.len() == 1 { "" } else { "s" },
                scenes.join(", ")
            ),
        ));
    }
}

/// Refuses `patterns` when one is a `shadow` pattern and the run has no
/// shadow output: the rules given, and again those in force after a
/// resume (a checkpoint goes on with the rules it changed to).
fn shadow_placed<'a>(
    config: &Config,
    patterns: impl Iterator<Item = &'a cepheid_core::pattern::Pattern>,
) -> Result<(), Error> {
    match crate::conflict::shadow_unplaced(config, patterns) {
        Some(pattern) => Err(Error::Conflict(crate::Conflict::ShadowWithoutOutput {
            pattern,
        })),
        None => Ok(()),
    }
}

/// The input opened where the checkpoint `meta` goes on (without one,
/// from the start): a file from its offset, a source sought to its
/// position; with the decoder of the engine's fields (a CSV file read
/// from an offset primed with its header first) and the size of a file
/// that is not followed (for progress).
fn open_input(
    config: &Config,
    source: Option<&Arc<Mutex<Box<dyn Source>>>>,
    meta: Option<&Meta>,
    engine: &Engine<Record>,
    report: &mut dyn Report,
) -> Result<(Decoder, Opened, Option<u64>), Error> {
    let events = config.input.path();
    let io_error = |doing: Doing, source: io::Error| Error::Io {
        doing,
        path: events.display().to_string(),
        source,
    };
    let offset = meta.map_or(0, |m| m.input.offset);
    let mut decoder = new_decoder(config, engine.fields());
    if offset > 0 && config.format == Format::Csv {
        crate::source::prime(&mut decoder, events).map_err(|e| io_error(Doing::Read, e))?;
    }
    if let Some(source) = source {
        if let Some(at) = meta.and_then(|m| m.source.as_ref()) {
            lock_source(source).seek(at).map_err(Error::Source)?;
        }
        return Ok((decoder, Opened::Custom(Arc::clone(source)), None));
    }
    if let Some(ranges) = meta.map(|m| &m.ranges).filter(|r| !r.is_empty()) {
        let size = std::fs::metadata(events)
            .map_err(|e| io_error(Doing::Open, e))?
            .len();
        let csv = config.format == Format::Csv;
        let ranges = Opened::Ranges(events.to_path_buf(), ranges.clone(), csv);
        return Ok((decoder, ranges, Some(size)));
    }
    let mut warn = |text: String| report.notice(Notice::line(Level::Warning, text));
    let (input, size) = Opened::open(events, config.follow, offset, &mut warn)
        .map_err(|e| io_error(Doing::Open, e))?;
    Ok((decoder, input, size))
}

/// An engine of `config` with the rules of the snapshot `bytes` (its
/// patterns and fields; no state).
fn rules_of(config: &Config, bytes: &[u8]) -> Result<Engine<Record>, cepheid_engine::Error> {
    let mut engine = config.engine();
    engine.restore_rules(bytes)?;
    Ok(engine)
}

/// Locks a source shared with the reader thread (a panic there does not
/// poison it).
fn lock_source(source: &Mutex<Box<dyn Source>>) -> std::sync::MutexGuard<'_, Box<dyn Source>> {
    source
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a checkpoint of a run from a source of the library's user must
/// agree on: the source's name for the input.
fn custom_command(config: &Config, name: String) -> checkpoint::Command {
    let path = |p: &Path| {
        canonical(p).map_or_else(|| p.display().to_string(), |c| c.display().to_string())
    };
    checkpoint::Command {
        events: name,
        format: match config.format {
            Format::JsonLines => "jsonl",
            Format::Csv => "csv",
        }
        .to_string(),
        time: {
            let time = match config.time {
                Time::Event { .. } => "event",
                Time::Processing => "processing",
                Time::Record => "record",
            };
            // (the engine's delay is unbounded with split watermarks: the
            // run's own is checked here)
            if config.split_watermarks && config.time != Time::Processing {
                format!(
                    "{time} (per split, `Config::max_delay` {} ms)",
                    config.max_delay.as_millis()
                )
            } else {
                time.to_string()
            }
        },
        time_field: config.time_field().unwrap_or("ts").to_string(),
        output: config.output.as_deref().map(path),
        late: config.late.as_deref().map(path),
        shadow: config.shadow_output.as_deref().map(path),
        audit: config.audit.as_deref().map(path),
        decisions: config.decisions.as_deref().map(path),
    }
}

/// A kept checkpoint, as the sink sees it.
fn kept(meta: &Meta) -> Checkpoint {
    Checkpoint {
        number: meta.number,
        source: meta.source.clone().unwrap_or(Position::File(meta.input)),
        sink: meta.sink.clone(),
    }
}

/// A run's checkpoints: the matching thread takes each snapshot, and the
/// checkpoint thread ([`Writer`]) writes its file meanwhile, one at a
/// time.
struct Checkpoints {
    schedule: Schedule,
    dir: std::path::PathBuf,
    /// The checkpoint thread, started with the first checkpoint.
    writer: Option<Writer>,
    /// Given to it then.
    hook: Option<Hook>,
    /// Wakes the matching thread when a file is written.
    wake: Tx,
    /// The checkpoint whose file is being written.
    in_flight: Option<InFlight>,
    /// The last checkpoint's buffer, back from the checkpoint thread: the
    /// next one is encoded into it (no allocation, no page faults, and
    /// one buffer of a checkpoint's size held, not a new one each time
    /// while the allocator keeps the freed one).
    buffer: Vec<u8>,
    /// Checkpoints that came due while the one before was being written
    /// (taken once it was durable).
    deferred: u64,
    command: checkpoint::Command,
    /// The number of the last checkpoint written (or resumed from).
    number: u64,
}

/// A checkpoint whose file is being written.
struct InFlight {
    number: u64,
    /// When it began (the sink's prepare).
    started: Instant,
    /// The matching thread's part: the sink's prepare, the snapshot.
    stall: Duration,
    /// The source's position in it, for the sink's commit.
    position: Position,
    /// Did the next one come due meanwhile?
    deferred: bool,
    /// Its file written (when, how many bytes), its commit begun by the
    /// sink and going on (`Sink::commit_apart`).
    committing: Option<(Instant, u64)>,
}

/// One run: the engine, its outputs and the run's own state.
struct Session<'a> {
    config: &'a Config,
    engine: &'a mut Engine<Record>,
    out: Reporting<'a>,
    keys: KeyFields,
    counters: &'a mut Counters,
    checkpoints: Option<Checkpoints>,
    /// Where the input is after the lines given to the engine.
    position: FilePosition,
    /// The ranges of the file it read first (resumed from a cut of
    /// workers; none: the file from `position`).
    ranges: Vec<Range>,
    /// A source of the library's user, and its position after the lines
    /// given to the engine.
    source: Option<Arc<Mutex<Box<dyn Source>>>>,
    place: Option<Position>,
    /// The rule changes so far.
    reloads: Reloads,
    /// After a reload from disk, records with fewer values than this were
    /// decoded (ahead, on the reader thread) before it: they are read
    /// again for the new rules' fields. 0: none can be.
    stale_below: usize,
    /// Was the last line of a file still being written (no newline yet,
    /// `Batch::open_end`) given to the engine? Then no checkpoint is taken
    /// any more: the last one is just before it, which a resumed run reads
    /// again whole (issue 26).
    open_end: bool,
    /// Was the last batch the first part of a source's read, cut after a
    /// control record (`Batch::partial`)? Then no checkpoint is taken
    /// until the rest came: the source's position is after all of it.
    mid_batch: bool,
    /// With split watermarks, each split's watermark after the lines
    /// given to the engine (kept in checkpoints).
    splits: Option<Vec<Option<Timestamp>>>,
    /// With split watermarks, none given to the engine yet (resumed: none
    /// in the checkpoint's), nor a `$watermark` line, nor the end of the
    /// input's: the engine's own watermark, from events with an unbounded
    /// delay, is then shown as none.
    no_split_watermark: bool,
    /// Resumed with `watch` from a checkpoint whose rules the pattern
    /// files no longer are: they are read at once, before any line, as
    /// the reload `watch` made before the run was stopped.
    reload_first: bool,
    /// The warnings about fields no event carries.
    fields: FieldWarnings,
    /// Does the report observe the run ([`Report::observes`])?
    observes: bool,
    /// A source's lag per split, as it last said it (`Message::Lag`).
    lag: Vec<SplitLag>,
    /// The records of a source's rules stream waiting for event time, as
    /// its reader last said (`Message::RulesWaiting`).
    rules_waiting: Option<crate::source::RulesWaiting>,
    /// The latest audit records of changes of rules (kept in the
    /// checkpoints, shown to an observer).
    history: crate::audit::History,
    /// The least and the largest time of the events given to the engine
    /// ([`Summary::event_time`]; not kept in checkpoints).
    event_time: Option<(Timestamp, Timestamp)>,
    /// Where the answers to a source's requests go.
    answers: Option<&'a mut dyn Answers>,
}

/// Each pattern's `partition by` fields, to say the first time per pattern
/// that an event's key field holds an object (the engine counts such events
/// in `Stats::unusable_keys` and skips them for that pattern).
struct KeyFields {
    patterns: Vec<PatternKey>,
}

/// One pattern's name, its key fields (id and name), and whether it was
/// told about an object key already.
type PatternKey = (String, Vec<(FieldId, String)>, bool);

/// Keys whose partial matches the limit cut, told the first time (for the
/// first ten: [`LimitNotices`]).
#[derive(Default)]
struct Drops {
    /// (pattern name, key) of every key that reached the limit (by name:
    /// pattern numbers change when the rules do), the first
    /// [`MAX_DROP_KEYS`] of them.
    keys: HashSet<(String, Vec<Value>)>,
    /// Did more keys than that reach the limit? Then they are not
    /// remembered (nor written into checkpoints): with key churn the set
    /// grew without bound, for the whole run (issue 26), and the summary
    /// says "more than N keys".
    overflow: bool,
}

/// An observing [`Report`] is shown the run at least this often.
const OBSERVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The run's engine sink: output records to the writer, dropped partial
/// matches told and counted.
struct Reporting<'a> {
    out: &'a mut Emit,
    drops: Drops,
    notices: LimitNotices,
    /// The engine's counts of what its lists and indicators left out
    /// when last looked at ([`Reporting::tell_left_out`]).
    left_out_seen: [u64; 4],
    report: &'a mut dyn Report,
}
