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

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cepheid_core::record::FieldTable;
use cepheid_engine::engine::{Engine, MatchRef, Sink as EngineSink};
use cepheid_engine::io::{value_from_json, value_to_json, Decoder, Format, Formatter, Item};
use cepheid_engine::{FieldId, FieldWatch, Record, Rules, Timestamp, Value};

use crate::checkpoint::store::{self, OnePosition};
use crate::checkpoint::{self, Counters, Hook, Marker, Schedule, Writer, Written};
use crate::limits::LimitNotices;
use crate::reload::Reloads;
use crate::resume::Meta;
use crate::sink::{Checkpoint, Files, Kind, Output, Sink, Writing};
use crate::source::{
    new_decoder, reading, spawn_reader, Control, Entry, FieldWarnings, FilePosition, Got, Message,
    Opened, Policy, Position, Reload, RulesRead, Source, SplitLag, SplitTiming, BATCHES_AHEAD,
};
use crate::timing::{wall_ms, Idle, Timing};
use crate::{
    Config, Doing, End, Error, Input, Level, Notice, Notify, Report, RunEvent, RunView, Summary,
    Tap, Time, MAX_DROP_KEYS,
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
    /// The latest records kept for an observing [`Report`] (at most its
    /// `records_wanted`), `None` when none are wanted.
    tap: Option<Tap>,
}

impl Emit {
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
    tx: SyncSender<Message>,
}

impl Handle {
    /// The handle of the reader thread that `tx` sends to.
    pub(crate) fn new(tx: SyncSender<Message>) -> Handle {
        Handle { tx }
    }

    /// Stops the run between two batches: what the watermark released is
    /// written and flushed, a last checkpoint taken; events waiting for
    /// the watermark stay waiting (the input did not end). `why` is said
    /// (`stopped by {why}`) and kept in [`End::Stopped`].
    pub fn stop(&self, why: &str) {
        let _ = self.tx.send(Message::Stop(why.to_string()));
    }

    /// Reads the pattern paths of [`Config::patterns`] again and puts them
    /// in force between two batches (as [`Config::watch`] does when they
    /// change). `why` names what asked for it in what the run says
    /// (`{why}: rules reloaded:`; the command says `SIGHUP`).
    pub fn reload(&self, why: &str) {
        let _ = self
            .tx
            .send(Message::Reload(Reload::Asked(why.to_string())));
    }
}

/// A run, ready: its checkpoint (if any) read, its engine restored, its
/// input and outputs open. [`Runtime::run`] runs it.
pub struct Runtime {
    config: Config,
    engine: Engine<Record>,
    report: Box<dyn Report>,
    tx: SyncSender<Message>,
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
        let key = |w: &FieldWatch| {
            let mut reads: Vec<(String, String)> = w
                .reads()
                .iter()
                .map(|r| (r.pattern.clone(), r.field.to_string()))
                .collect();
            reads.sort_unstable();
            reads
        };
        if key(&watch) == key(&self.field_watch) {
            self.field_watch = watch;
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
        config: Config,
        mut engine: Engine<Record>,
        mut source: Option<Box<dyn Source>>,
        mut sink: Option<Box<dyn Sink>>,
        mut report: Box<dyn Report>,
    ) -> Result<Runtime, Error> {
        // A source or sink may say things from its own threads, or while
        // the run waits for it, and so does the output: the report is
        // shared.
        let (shared, notify) = Notify::share(report);
        report = shared;
        if let Some(source) = &mut source {
            source.notify_to(notify.clone());
        }
        if let Some(sink) = &mut sink {
            sink.notify_to(notify.clone());
        }
        // What cannot run (the output the input, a rules folder nothing
        // reads...) is refused here too, not only by a caller that asks
        // `Config::check` first.
        config
            .check_reading(source.is_none())
            .map_err(Error::Conflict)?;
        if let Some(sink) = sink.as_deref() {
            if sink.commits_with_checkpoints() && config.checkpoint.is_none() {
                return Err(Error::Conflict(crate::Conflict::SinkNeedsCheckpoints {
                    sink: sink.describe(Kind::Match),
                }));
            }
        }
        if source.is_none() && config.time == Time::Record {
            return Err(Error::Source(crate::SourceError {
                source_name: config.input.describe(),
                error: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "event time from the records' own times needs a source that gives them (a Kafka source), not a file",
                ),
            }));
        }
        let source = source.map(|source| Arc::new(Mutex::new(source)));
        let io_error = |doing: Doing, path: &Path, source: io::Error| Error::Io {
            doing,
            path: path.display().to_string(),
            source,
        };
        let mut locks = Vec::new();
        // Another run on the checkpoint folder is refused (naming it)
        // before the checkpoint is read; the lock is held to the end.
        if let Some(dir) = &config.checkpoint {
            locks.push(crate::lock::lock_folder(dir, 0)?);
        }
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
        // A source's run that its sink may send back to the start (it
        // committed none of the kept checkpoints: `Sink::recover`): the
        // engine and the source as they are before resuming.
        let start_over = match (&source, &config.checkpoint) {
            (Some(source), Some(_)) => {
                let mut bytes = Vec::new();
                engine.snapshot(&mut bytes).map_err(|e| Error::Pattern {
                    name: String::new(),
                    source: e,
                })?;
                Some((bytes, lock_source(source).position()))
            }
            _ => None,
        };
        let resumed = match (&config.checkpoint, &command) {
            (Some(dir), Some(command)) => {
                crate::resume::load(&config, dir, command, &mut engine, report.as_mut())?
            }
            _ => None,
        };
        let mut start = resumed
            .as_ref()
            .map_or(FilePosition::default(), |r| r.meta.input);
        let events = config.input.path();
        // The decoder reads the fields of the engine's table.
        let mut decoder = new_decoder(&config, engine.fields());
        if start.offset > 0 && config.format == Format::Csv {
            // Read from an offset, a CSV file needs its header first.
            crate::source::prime(&mut decoder, events)
                .map_err(|e| io_error(Doing::Read, events, e))?;
        }
        let mut warn = |text: String| report.notice(Notice::line(Level::Warning, text));
        let (mut input, mut size) = match &source {
            Some(source) => {
                let at = resumed.as_ref().and_then(|r| r.meta.source.clone());
                if let Some(at) = at {
                    lock_source(source).seek(&at).map_err(Error::Source)?;
                }
                (Opened::Custom(Arc::clone(source)), None)
            }
            None => Opened::open(events, config.follow, start.offset, &mut warn)
                .map_err(|e| io_error(Doing::Open, events, e))?,
        };
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
        // one before, from which the run then goes on.
        let resumed = match resumed {
            None => None,
            Some(resumed) => {
                let mut kept_ones = vec![kept(&resumed.meta)];
                kept_ones.extend(resumed.prev.as_ref().map(|(meta, _, _)| kept(meta)));
                let kept = kept_ones;
                match sink.recover(&kept).map_err(Error::Sink)? {
                    0 => Some(resumed.meta),
                    n if n == kept.len() && start_over.is_some() => {
                        // Nothing of the kept checkpoints was committed:
                        // from the start, as if none were kept.
                        let (bytes, at) = start_over.expect("checked");
                        let mut fresh = config.engine();
                        fresh
                            .restore_rules(bytes.as_slice())
                            .map_err(|e| Error::Pattern {
                                name: String::new(),
                                source: e,
                            })?;
                        engine = fresh;
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
                        let mut fresh = config.engine();
                        if let Err(e) = fresh.restore_rules(&snapshot[..]) {
                            return Err(Error::Checkpoint {
                                path,
                                folder: config.checkpoint.clone().unwrap_or_default(),
                                why: crate::Unusable::DoesNotFit(e),
                            });
                        }
                        engine = fresh;
                        // (the newest, never committed, goes: the next
                        // write keeps this one until its commit)
                        if let Some(dir) = &config.checkpoint {
                            store::discard_after(dir, Some(meta.number))
                                .map_err(|e| io_error(Doing::WriteCheckpoint, &path, e))?;
                        }
                        report.notice(Notice::line(
                            Level::Info,
                            format!(
                                "cepheid: the sink committed the checkpoint before the newest: resuming from it, {}",
                                crate::resume::resumed_at(&meta, events)
                            ),
                        ));
                        start = meta.input;
                        decoder = new_decoder(&config, engine.fields());
                        if start.offset > 0 && config.format == Format::Csv {
                            crate::source::prime(&mut decoder, events)
                                .map_err(|e| io_error(Doing::Read, events, e))?;
                        }
                        let mut warn =
                            |text: String| report.notice(Notice::line(Level::Warning, text));
                        match (&source, &meta.source) {
                            (Some(source), Some(at)) => {
                                lock_source(source).seek(at).map_err(Error::Source)?;
                            }
                            (Some(_), None) => {}
                            (None, _) => {
                                (input, size) =
                                    Opened::open(events, config.follow, start.offset, &mut warn)
                                        .map_err(|e| io_error(Doing::Open, events, e))?;
                            }
                        }
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
        let late = sink.takes_late();
        let out = Emit {
            format: Formatter::default(),
            output: Output::new(sink, notify),
            late,
            tap: None,
        };
        let (tx, messages) = mpsc::sync_channel(BATCHES_AHEAD);
        let place = resumed.as_ref().and_then(|m| m.source.clone());
        let field_watch = FieldWatch::for_patterns(engine.patterns());
        Ok(Runtime {
            field_watch,
            hook: None,
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
        })
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
    pub fn before_checkpoint_file(mut self, hook: impl FnMut(u64) + Send + 'static) -> Runtime {
        self.hook = Some(Box::new(hook));
        self
    }

    /// A handle that stops the run or asks for a reload, from any thread.
    pub fn handle(&self) -> Handle {
        Handle {
            tx: self.tx.clone(),
        }
    }

    /// The engine (its patterns, its fields) before the run.
    pub fn engine(&self) -> &Engine<Record> {
        &self.engine
    }

    /// Runs to the end of the input (or to [`Handle::stop`], or an error)
    /// and says how it went.
    pub fn run(self) -> Summary {
        let Runtime {
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
            source,
            place,
            _locks,
            field_watch,
            hook,
        } = self;
        let started = Instant::now();
        let start = resumed
            .as_ref()
            .map_or(FilePosition::default(), |m| m.input);
        let reload_first = resumed.as_ref().is_some_and(|m| m.reload_files);
        let was_resumed = resumed.is_some();
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
        let mut counters = resumed.map(|m| m.counters).unwrap_or_default();
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
                buffer: Vec::new(),
                deferred: 0,
                command,
                number,
            }),
            _ => None,
        };
        // (a resumed run said it already if the cap dropped anything)
        let notices =
            LimitNotices::new(&config).resumed(drops.keys.len(), engine.stats().capped_runs > 0);
        let reloads = Reloads {
            applied: counters.reloads,
            refused: counters.reloads_refused,
            late: counters.reloads_late,
        };
        let mut session = Session {
            config: &config,
            engine: &mut engine,
            out: Reporting {
                out: &mut out,
                drops,
                notices,
                report: report.as_mut(),
            },
            keys,
            counters: &mut counters,
            checkpoints,
            position: start,
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
                .resumed(was_resumed),
            observes,
            lag: Vec::new(),
        };
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
        let drops = session.out.drops;
        let end = match result {
            Ok(None) => End::Input,
            Ok(Some(why)) => End::Stopped(why),
            // (the output's error, which `Output::end` gives)
            Err(Stop::Output) => End::Input,
            Err(Stop::Failed(e)) => End::Failed(e),
        };
        let (end, flushed) = out.output.end(end);
        let stats = engine.stats();
        Summary {
            events: stats.events,
            malformed: counters.malformed,
            late: stats.late,
            matches: stats.matches,
            timeouts: stats.timeouts,
            unusable_keys: stats.unusable_keys,
            dropped_runs: stats.dropped_runs.saturating_sub(stats.capped_runs),
            dropped_keys: drops.keys.len(),
            dropped_keys_overflow: drops.overflow,
            capped_runs: stats.capped_runs,
            forced_watermarks: stats.forced_watermarks,
            reloads: reloads.applied,
            reloads_refused: reloads.refused,
            reloads_late: reloads.late,
            discarded_runs: stats.discarded_runs,
            waiting: engine.waiting_events(),
            punctuated: counters.punctuated,
            elapsed: started.elapsed(),
            flushed,
            patterns: engine.pattern_stats(),
            layout: None,
            end,
        }
    }
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
    wake: SyncSender<Message>,
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

impl KeyFields {
    fn new<'p>(
        patterns: impl IntoIterator<Item = &'p cepheid_core::pattern::Pattern>,
        table: &FieldTable,
    ) -> KeyFields {
        let patterns = patterns
            .into_iter()
            .map(|p| {
                let fields = p
                    .partition_by
                    .iter()
                    .map(|path| (table.intern(path), path.to_string()))
                    .collect();
                (p.name.clone(), fields, false)
            })
            .collect();
        KeyFields { patterns }
    }

    /// The rules changed: the new patterns' key fields; a name that stays
    /// is not told again.
    fn reload<'p>(
        &mut self,
        patterns: impl IntoIterator<Item = &'p cepheid_core::pattern::Pattern>,
        table: &FieldTable,
    ) {
        let mut fresh = KeyFields::new(patterns, table);
        for (name, _, told) in &mut fresh.patterns {
            *told = self.patterns.iter().any(|(n, _, t)| n == name && *t);
        }
        *self = fresh;
    }

    /// Which patterns were told about an object key (for checkpoints).
    fn told(&self) -> Vec<bool> {
        self.patterns.iter().map(|(_, _, told)| *told).collect()
    }

    /// Resumed from a checkpoint: which patterns were told already.
    fn restore(&mut self, told: &[bool]) {
        if told.len() == self.patterns.len() {
            for ((_, _, t), &was) in self.patterns.iter_mut().zip(told) {
                *t = was;
            }
        }
    }

    /// Says (once per pattern) which key fields of `record` are objects (or
    /// lists holding one).
    fn check(&mut self, record: &Record, path: &str, line_no: u64, report: &mut dyn Report) {
        if record.objects().is_empty() {
            return;
        }
        for (name, fields, told) in &mut self.patterns {
            if *told {
                continue;
            }
            let Some((_, field)) = fields.iter().find(|(id, _)| record.objects().contains(id))
            else {
                continue;
            };
            *told = true;
            report.notice(Notice::line(Level::Warning, format!(
                "{path}:{line_no}: pattern `{name}`: partition key `{field}` is an object or a list holding one, which cannot be a key; such events are skipped for this pattern and counted"
            )));
        }
    }
}

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

impl Drops {
    /// The keys as JSON (for checkpoints: the pattern as its index among
    /// `names`, the engine's patterns), in a fixed order.
    fn to_json(&self, names: &[String]) -> Vec<(usize, Vec<serde_json::Value>)> {
        let mut keys: Vec<_> = self
            .keys
            .iter()
            .filter_map(|(name, key)| {
                let p = names.iter().position(|n| n == name)?;
                Some((p, key.iter().map(value_to_json).collect::<Vec<_>>()))
            })
            .collect();
        keys.sort_by(|a, b| (a.0, format!("{:?}", a.1)).cmp(&(b.0, format!("{:?}", b.1))));
        keys
    }

    /// Resumed from a checkpoint: the keys already told.
    fn restore(&mut self, keys: &[(usize, Vec<serde_json::Value>)], names: &[String]) {
        self.keys = keys
            .iter()
            .filter_map(|(p, key)| {
                let name = names.get(*p)?.clone();
                Some((name, key.iter().map(value_from_json).collect()))
            })
            .collect();
    }
}

/// An observing [`Report`] is shown the run at least this often.
const OBSERVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The run's engine sink: output records to the writer, dropped partial
/// matches told and counted.
struct Reporting<'a> {
    out: &'a mut Emit,
    drops: Drops,
    notices: LimitNotices,
    report: &'a mut dyn Report,
}

impl Reporting<'_> {
    /// Says one line.
    fn say(&mut self, level: Level, text: impl std::fmt::Display) {
        self.report.notice(Notice::line(level, text));
    }
}

impl EngineSink<Record> for Reporting<'_> {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        self.out.format.record("match", m, None);
        self.out.emit(Kind::Match);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.out.format.record("timeout", m, Some(expired_at));
        self.out.emit(Kind::Timeout);
    }

    fn on_late(&mut self, _ts: Timestamp, event: &Record) {
        if self.out.late {
            self.out.format.late(event);
            self.out.emit(Kind::Late);
        }
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, Record>) {
        let keys = &mut self.drops.keys;
        let new_key = if partial.capped() {
            false
        } else if keys.len() >= MAX_DROP_KEYS {
            // (past the bound, nothing is said: only whether there were
            // more is kept)
            self.drops.overflow = true;
            return;
        } else {
            keys.insert((partial.pattern().to_string(), partial.key().to_vec()))
        };
        let report = &mut *self.report;
        self.notices
            .dropped(partial, new_key, |notice| report.notice(notice));
    }
}

impl Session<'_> {
    /// Says one line.
    fn say(&mut self, level: Level, text: impl std::fmt::Display) {
        self.out.say(level, text);
    }

    /// Shows the run to an observing report (after a batch, on an idle
    /// second, at the end): nothing per event.
    fn observe(&mut self, finished: bool) {
        if !self.observes {
            return;
        }
        let source_lag = match (&self.config.input, &self.source) {
            (Input::File(path), None) => std::fs::metadata(path)
                .ok()
                .map(|m| m.len().saturating_sub(self.position.offset)),
            _ => None,
        };
        let stats = self.engine.stats();
        let records = match &mut self.out.out.tap {
            Some(tap) => tap.records(),
            None => &[],
        };
        let mut view = RunView::of_engine(&*self.engine);
        view.events_read = stats.events;
        view.malformed = self.counters.malformed;
        view.late = stats.late;
        view.records = records;
        view.source_lag = source_lag;
        if !self.lag.is_empty() {
            view.consumer_lag = Some(self.lag.iter().map(|l| l.records).sum());
            view.split_lag = &self.lag;
        }
        view.field_warnings = self.fields.told();
        view.finished = finished;
        view.no_watermark_yet = self.no_split_watermark;
        self.out.report.tick(&view);
        if let Some(tap) = &mut self.out.out.tap {
            tap.shown();
        }
    }

    /// Says `event` to an observing report.
    fn event(&mut self, event: &RunEvent<'_>) {
        if self.observes {
            self.out.report.event(event);
        }
    }

    /// Feeds every decoded line to the engine, then ends event time.
    /// Returns why the run was stopped, if it was.
    fn stream(
        &mut self,
        input: Opened,
        decoder: Decoder,
        tx: SyncSender<Message>,
        messages: Receiver<Message>,
    ) -> Result<Option<String>, Stop> {
        let config = self.config;
        let origin = config.input.describe();
        let origin_name = origin.clone();
        let policy = Policy::new(&origin, config.strict);
        // Kept for the whole run: the watch ends with it.
        #[cfg(feature = "watch")]
        let _watcher = if config.watch {
            match crate::reload::watch(&config.patterns, tx.clone()) {
                Ok(watcher) => Some(watcher),
                Err(e) => {
                    self.say(
                        Level::Warning,
                        format!("warning: cannot watch the pattern files ({e}); a reload through the run's handle (Handle::reload) still reads them"),
                    );
                    None
                }
            }
        } else {
            None
        };
        #[cfg(not(feature = "watch"))]
        if config.watch {
            self.say(
                Level::Warning,
                "warning: cannot watch the pattern files (built without the feature `watch`); a reload through the run's handle (Handle::reload) still reads them",
            );
        }
        // Control records (JSON lines only): the reader thread waits after
        // each until it is applied.
        let (go_on, controls) = match config.format {
            Format::JsonLines => {
                let (go_on, controls) = mpsc::sync_channel::<()>(1);
                (Some(go_on), Some(controls))
            }
            Format::Csv => (None, None),
        };
        let mut reading = reading(
            config,
            self.engine.fields(),
            decoder,
            self.position,
            self.checkpoints.is_some(),
            controls,
        );
        reading.timing.splits =
            (config.split_watermarks && config.time != Time::Processing).then(|| SplitTiming {
                max_delay: i64::try_from(config.max_delay.as_millis()).unwrap_or(i64::MAX),
                idle_timeout: config.idle_timeout,
                resumed: self.splits.clone().unwrap_or_default(),
                emitted: self.engine.current_watermark(),
            });
        if self.reload_first {
            // (first in the channel: before any line)
            let _ = tx.send(Message::Reload(Reload::Resumed));
        }
        let reader = spawn_reader(input, reading, tx);
        let mut stop = None;
        let mut stopped = None;
        let mut timing = match config.time {
            Time::Processing => Timing::Processing,
            Time::Event { .. } | Time::Record => Timing::Event(
                config
                    .idle_timeout
                    .map(|timeout| Idle::new(timeout, Instant::now())),
            ),
        };
        'input: loop {
            let waiting = Instant::now();
            let own = timing.wait(waiting, self.engine);
            // A checkpoint due by time is taken when it is due, also while
            // no input comes (a followed file or a topic gone quiet: the
            // records of its interval would otherwise wait for the next
            // line to be committed, and the checkpoint with them).
            let checkpoint = self.checkpoint_due_in(waiting);
            // (an observer sees the run at least once per second)
            let observer = self.observes.then_some(OBSERVE_EVERY);
            let message = match [own, checkpoint, observer].into_iter().flatten().min() {
                None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => messages.recv_timeout(wait),
            };
            // (a checkpoint's file written meanwhile: committed now)
            self.settle(false)?;
            let batch = match message {
                Ok(Message::Checkpointed) => continue,
                Ok(Message::Batch(batch)) => {
                    timing.arrived(Instant::now());
                    batch
                }
                Err(RecvTimeoutError::Timeout)
                    if !own.is_some_and(|wait| waiting.elapsed() >= wait) =>
                {
                    // (a checkpoint come due or the observer's second, not
                    // the run's own wait)
                    self.checkpoint_if_due()?;
                    self.observe(false);
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => {
                    timing.tick(Instant::now(), wall_ms(), self.engine, &mut self.out);
                    self.flush_now()?;
                    if let Some(checkpoints) = &mut self.checkpoints {
                        checkpoints.schedule.advanced(0);
                    }
                    self.checkpoint_if_due()?;
                    self.observe(false);
                    continue;
                }
                Ok(Message::Stop(why)) => {
                    stopped = Some(why);
                    break;
                }
                Ok(Message::Reload(why)) => {
                    self.reload_from_disk(why)?;
                    self.flush_now()?;
                    continue;
                }
                Ok(Message::Seen(seen)) => {
                    let report = &mut *self.out.report;
                    self.fields
                        .report(0, seen, &mut |notice| report.notice(notice));
                    continue;
                }
                Ok(Message::Lag(lag)) => {
                    self.lag = lag;
                    continue;
                }
                Ok(Message::End) | Err(RecvTimeoutError::Disconnected) => break,
            };
            let lines = batch.lines.len();
            if batch.open_end {
                // The last line, without its newline yet: a checkpoint
                // before it (the position is just before it), none after.
                self.checkpoint_if_dirty()?;
                self.open_end = true;
            }
            let mut places = batch.places.into_iter().peekable();
            for (index, (line_no, item)) in batch.lines.into_iter().enumerate() {
                let place = match places.peek() {
                    Some((i, _)) if *i == index => places.next().map(|(_, p)| p),
                    _ => None,
                };
                let got = match item {
                    // (the one line of most: no detour)
                    Ok(Entry::Item(Item::Event(ts, mut record))) => {
                        if record.values().len() < self.stale_below {
                            record = reread(record, self.engine.fields());
                        }
                        self.keys
                            .check(&record, &origin_name, line_no, &mut *self.out.report);
                        timing.push(ts, wall_ms, record, self.engine, &mut self.out);
                        self.check_output()?;
                        continue;
                    }
                    item => policy.take(item, || line_no, place),
                };
                match got {
                    // (taken above; a blank line)
                    Some(Got::Event(..)) | None => {}
                    Some(Got::Rules(control, name)) => {
                        self.reload_from_stream(&control, &name, false);
                        // The reader thread decodes the next lines now (with
                        // the new rules' fields).
                        if let Some(go_on) = &go_on {
                            let _ = go_on.send(());
                        }
                    }
                    Some(Got::SourceRules(rules, place)) => {
                        // (a record of the source's rules stream: placed
                        // as the source says)
                        if let Some(late) = rules.late_notice(&place) {
                            self.reloads.late += 1;
                            self.out.report.notice(late);
                        }
                        self.reload_from_stream(&rules.control, &place, true);
                        match &go_on {
                            Some(go_on) => {
                                let _ = go_on.send(());
                            }
                            // (no control records, CSV: the reader thread did
                            // not wait; what it decoded since is read again)
                            None => self.stale_below = self.engine.fields().len(),
                        }
                    }
                    Some(Got::Watermark(_)) if timing.is_processing() => {
                        if !self.counters.watermarks_told {
                            self.counters.watermarks_told = true;
                            self.say(Level::Warning, format!(
                                "{origin_name}:{line_no}: `$watermark` lines are ignored with `Time::Processing`"
                            ));
                        }
                    }
                    Some(Got::Watermark(t)) => {
                        self.counters.punctuated = true;
                        self.no_split_watermark = false;
                        self.engine.watermark(t, &mut self.out);
                    }
                    Some(Got::SplitWatermark(_)) if timing.is_processing() => {}
                    Some(Got::SplitWatermark(t)) => {
                        self.no_split_watermark = false;
                        self.engine.watermark(t, &mut self.out);
                    }
                    Some(Got::Failed(notice, error)) => {
                        self.out.report.notice(notice);
                        stop = Some(Stop::Failed(*error));
                        break 'input;
                    }
                    Some(Got::Malformed(notice, end)) => {
                        self.counters.malformed += 1;
                        self.out.report.notice(notice);
                        if let Some(error) = end {
                            stop = Some(Stop::Failed(*error));
                            break 'input;
                        }
                    }
                }
                self.check_output()?;
            }
            if !batch.open_end {
                self.position = batch.at;
                if batch.place.is_some() {
                    self.place = batch.place;
                }
            }
            self.mid_batch = batch.partial;
            if batch.splits.is_some() {
                self.splits = batch.splits;
            }
            self.out.report.progress(batch.at.offset);
            if !self.counters.forced_told && self.engine.stats().forced_watermarks > 0 {
                self.counters.forced_told = true;
                self.say(Level::Warning, format!(
                    "cepheid: more than {} events waited for the watermark; it moved up to the earliest of them (`Config::max_waiting`; raise it to let more wait)",
                    config.max_waiting
                ));
            }
            if batch.stalled {
                // The input waits for its writer: whatever the watermark
                // released goes out now (a live stream's matches are not held
                // in a buffer until the next burst or the end).
                self.flush_now()?;
            }
            if let Some(checkpoints) = &mut self.checkpoints {
                checkpoints.schedule.advanced(lines);
            }
            self.checkpoint_if_due()?;
            self.observe(false);
        }
        if let Some(why) = stopped {
            // Stopped, not at the end of the input: event time stays where
            // it is (the reader thread may be waiting for input; it ends
            // with the process). A last checkpoint lets the next run go on
            // from here.
            self.say(Level::Info, format!("cepheid: stopped by {why}"));
            self.check_output()?;
            self.checkpoint_if_dirty()?;
            return Ok(Some(why));
        }
        if stop.is_none() && config.field_warnings.is_some() {
            // The input ended: what no event carried.
            let seen = self.fields.of_reader(0);
            let report = &mut *self.out.report;
            self.fields
                .at_end(seen.as_ref(), &mut |notice| report.notice(notice));
        }
        if stop.is_none() {
            // The input ended: the thread is done (a panic in it is passed
            // on rather than taken for the end of input).
            if let Err(panic) = reader.join() {
                std::panic::resume_unwind(panic);
            }
            // Checkpointed before the end of event time: run again, the
            // run ends the same way; the input grown, it goes on.
            self.checkpoint_if_dirty()?;
        }
        if config.flush_at_end {
            self.engine.watermark(Timestamp::MAX, &mut self.out);
            self.no_split_watermark = false;
        } else if !self.counters.punctuated {
            self.engine.finish(&mut self.out);
            self.no_split_watermark = false;
        }
        self.check_output()?;
        if stop.is_none() && self.out.out.output.sink().commits_at_end() {
            // What the end of event time released commits with a last
            // checkpoint (a transactional sink cannot take it back on
            // resuming, as a file is truncated).
            self.take_checkpoint(true)?;
        }
        stop.map_or(Ok(None), Err)
    }

    /// A control record (`name`: its place, `events.jsonl:12`): the rules
    /// it names replace the engine's here. A set that does not load is
    /// said and counted, and the old rules go on. `own`: a record of the
    /// source's rules stream, which the operator named (allowed without
    /// `rules_from_stream`).
    fn reload_from_stream(&mut self, control: &Control, name: &str, own: bool) {
        let report = &mut *self.out.report;
        let (where_, read) = control.read(self.config, own, name, &mut |n| report.notice(n));
        self.apply(read, &where_);
    }

    /// The pattern paths again, applied here, between two batches. Lines
    /// the reader thread decoded before the change are read again when
    /// they come (`stale_below`).
    fn reload_from_disk(&mut self, why: Reload) -> Result<(), Stop> {
        let report = &mut *self.out.report;
        let (where_, read) = why.read(self.config, &mut |n| report.notice(n));
        if self.apply(read, &where_) {
            self.stale_below = self.engine.fields().len();
        }
        self.check_output()
    }

    /// Makes the rules `read` (loaded and checked, its diagnostics said)
    /// the engine's rule set (`where_` names what asked for it in
    /// messages) and says what that did to each pattern; a set refused is
    /// said and counted, and changes nothing. True when the rules were put
    /// in force.
    fn apply(&mut self, read: RulesRead, where_: &str) -> bool {
        let refused = |this: &mut Self, why: String| {
            this.reloads.refused += 1;
            this.event(&RunEvent::ReloadRefused { why: &why });
            this.say(Level::Warning, why);
            false
        };
        let (rules, watch) = match read {
            RulesRead::Checked { rules, watch, .. } => (rules, watch),
            RulesRead::Refused(why) => return refused(self, why),
            RulesRead::Later(why) => {
                self.say(Level::Warning, why);
                return false;
            }
        };
        let policy = self.config.reload_policy;
        match self.engine.set_rules(&rules, policy, &mut self.out) {
            Ok(changes) => {
                self.fields.set_watch(watch);
                self.reloads.applied += 1;
                self.counters.rules_changed |= changes.any();
                self.keys
                    .reload(self.engine.patterns(), self.engine.fields());
                let lines: String = changes
                    .to_string()
                    .lines()
                    .map(|line| format!("  {line}\n"))
                    .collect();
                self.out.report.notice(Notice::text(
                    Level::Info,
                    format!("cepheid: {where_}: rules reloaded:\n{lines}"),
                ));
                self.event(&RunEvent::Reloaded);
                true
            }
            Err(e) => {
                self.say(Level::Warning, e);
                let why =
                    format!("cepheid: {where_}: the new rules do not compile; the old rules go on");
                refused(self, why)
            }
        }
    }

    /// Flushes the outputs (a live stream's records go out now); stops the
    /// run when writing failed.
    fn flush_now(&mut self) -> Result<(), Stop> {
        self.out.out.output.flush().map_err(|_| Stop::Output)
    }

    /// Stops the run when writing output failed.
    fn check_output(&mut self) -> Result<(), Stop> {
        match self.out.out.output.failed() {
            false => Ok(()),
            true => Err(Stop::Output),
        }
    }

    /// Takes a checkpoint when one is due: its snapshot now, its file on
    /// the checkpoint thread while the run goes on. One due while the
    /// one before is still being written is taken once that one is
    /// durable (one file at a time; counted, and said once).
    fn checkpoint_if_due(&mut self) -> Result<(), Stop> {
        self.settle(false)?;
        let Some(c) = &mut self.checkpoints else {
            return Ok(());
        };
        if !c.schedule.due(Instant::now()) {
            return Ok(());
        }
        match &mut c.in_flight {
            None => self.take_checkpoint(false),
            Some(flight) => {
                if !std::mem::replace(&mut flight.deferred, true) {
                    c.deferred += 1;
                    if c.deferred == 1 {
                        let text = format!(
                            "cepheid: checkpoint {} came due while checkpoint {} was still being written: it is taken once that one is durable (one checkpoint file is written at a time; a longer `Config::checkpoint_every` leaves more time to each)",
                            flight.number + 1,
                            flight.number
                        );
                        self.say(Level::Warning, text);
                    }
                }
                Ok(())
            }
        }
    }

    /// How long until a checkpoint is due by time, when one can be taken
    /// then (see [`Schedule::due_in`]; none in the middle of a batch cut
    /// after a control record, nor after a last line without its
    /// newline).
    fn checkpoint_due_in(&self, now: Instant) -> Option<Duration> {
        if self.open_end || self.mid_batch {
            return None;
        }
        self.checkpoints.as_ref()?.schedule.due_in(now)
    }

    /// Takes a checkpoint when anything happened since the last one, and
    /// waits for its file (and for the one being written before it).
    fn checkpoint_if_dirty(&mut self) -> Result<(), Stop> {
        self.settle(true)?;
        match &self.checkpoints {
            Some(c) if c.schedule.dirty() => self.take_checkpoint(true),
            _ => Ok(()),
        }
    }

    /// Takes a checkpoint (after the one being written, waited for): its
    /// snapshot now, its file on the checkpoint thread, waited for with
    /// `wait` or when the sink takes no writes before its commit
    /// ([`Sink::writes_before_commit`]). A failure stops the run; the
    /// previous checkpoint is kept.
    fn take_checkpoint(&mut self, wait: bool) -> Result<(), Stop> {
        self.settle(true)?;
        match self.begin_checkpoint() {
            Err(Stop::Failed(error)) => {
                self.event(&RunEvent::CheckpointFailed { error: &error });
                return Err(Stop::Failed(error));
            }
            result => result?,
        }
        if wait || !self.out.out.output.sink().writes_before_commit() {
            self.settle(true)?;
        }
        Ok(())
    }

    /// Makes the sink's records durable (`Sink::prepare`), then encodes a
    /// checkpoint of the engine, the input position, what the sink said
    /// and the counters into memory, and hands it to the checkpoint
    /// thread ([`Session::settle`] takes its answer).
    fn begin_checkpoint(&mut self) -> Result<(), Stop> {
        if self.open_end || self.mid_batch {
            return Ok(());
        }
        let started = Instant::now();
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let number = checkpoints.number + 1;
        let state = match self.out.out.output.prepare(number) {
            Ok(state) => state,
            Err(e) => return Err(stop(e)),
        };
        self.counters.object_keys_told = self.keys.told();
        self.counters.dropped_keys = self.out.drops.to_json(&names(self.engine));
        self.counters.dropped_keys_overflow = self.out.drops.overflow;
        self.counters.reloads = self.reloads.applied;
        self.counters.reloads_refused = self.reloads.refused;
        self.counters.reloads_late = self.reloads.late;
        let path = checkpoint::path(&checkpoints.dir, number);
        let report = &mut *self.out.report;
        let mut failed = |source: io::Error| {
            let error = Error::Io {
                doing: Doing::WriteCheckpoint,
                path: path.display().to_string(),
                source,
            };
            report.notice(Notice::line(Level::Error, format!("error: {error}")));
            Stop::Failed(error)
        };
        // One engine's piece: its snapshot (written in place: no copy)
        // and its place in the input; and the marker.
        let mut bytes = std::mem::take(&mut checkpoints.buffer);
        let mut piece = checkpoint::file::Writer::new(checkpoint::file::Kind::Piece, &mut bytes);
        let (group, keys) = store::ONE_ENGINE;
        if let Err(e) = self
            .engine
            .snapshot_into(store::engine_section(&mut piece, group, keys))
        {
            return Err(failed(io::Error::other(e.message().to_string())));
        }
        let position = OnePosition {
            input: self.position,
            source: self.place.clone(),
            split_watermarks: self.splits.clone(),
        };
        store::position_section(&mut piece, &position);
        piece.finish();
        let mut marker = Vec::new();
        let latest = self.out.out.tap.as_ref().map(Tap::latest);
        Marker::new(number)
            .command(Some(checkpoints.command.clone()))
            .outputs(&state)
            .counters(self.counters.clone())
            .records(latest.unwrap_or_default())
            .encode_into(&mut marker);
        checkpoints.schedule.began();
        if checkpoints.writer.is_none() {
            let wake = checkpoints.wake.clone();
            let wake = Box::new(move || {
                // (a full channel wakes the matching thread anyway)
                let _ = wake.try_send(Message::Checkpointed);
            });
            let writer = Writer::new(&checkpoints.dir, wake, checkpoints.hook.take());
            checkpoints.writer = Some(writer.map_err(&mut failed)?);
        }
        let writer = checkpoints.writer.as_mut().expect("started");
        writer.send(number, bytes, marker).map_err(&mut failed)?;
        checkpoints.in_flight = Some(InFlight {
            number,
            started,
            stall: started.elapsed(),
            position: match &self.place {
                Some(place) => place.clone(),
                None => Position::File(self.position),
            },
            deferred: false,
        });
        Ok(())
    }

    /// Takes the answer of the checkpoint whose file is being written, if
    /// any: waiting for it with `wait`, else only if it is there. Its
    /// file durable, the sink commits it (`Sink::commit`), the source is
    /// told, and the checkpoint before it is deleted (on the checkpoint
    /// thread); a file that could not be written stops the run (the
    /// previous checkpoint is kept).
    fn settle(&mut self, wait: bool) -> Result<(), Stop> {
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let Some(written) = checkpoints.writer.as_mut().and_then(|w| w.done(wait)) else {
            return Ok(());
        };
        let flight = checkpoints
            .in_flight
            .take()
            .expect("a checkpoint in flight");
        match self.commit_checkpoint(flight, written) {
            Err(Stop::Failed(error)) => {
                self.event(&RunEvent::CheckpointFailed { error: &error });
                Err(Stop::Failed(error))
            }
            result => result,
        }
    }

    /// [`Session::settle`] of `flight`, its file work `written`.
    fn commit_checkpoint(&mut self, flight: InFlight, written: Written) -> Result<(), Stop> {
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let report = &mut *self.out.report;
        if let Err(source) = written.result {
            let error = Error::Io {
                doing: Doing::WriteCheckpoint,
                path: checkpoint::path(&checkpoints.dir, flight.number)
                    .display()
                    .to_string(),
                source,
            };
            report.notice(Notice::line(Level::Error, format!("error: {error}")));
            return Err(Stop::Failed(error));
        }
        if let Some(said) = checkpoints.schedule.ended(flight.started, written.ended) {
            report.notice(Notice::line(Level::Warning, said));
        }
        checkpoints.number = flight.number;
        checkpoints.buffer = written.buffer;
        if let Err(e) = self.out.out.output.commit(flight.number, &flight.position) {
            return Err(stop(e));
        }
        if let Some(source) = &self.source {
            lock_source(source).checkpoint_committed(&flight.position);
        }
        if let Some(writer) = &mut checkpoints.writer {
            writer.committed(flight.number);
        }
        let deferred = checkpoints.deferred;
        self.event(&RunEvent::Checkpoint {
            number: flight.number,
            duration: written.ended.saturating_duration_since(flight.started),
            bytes: written.bytes,
            stall: flight.stall,
            deferred,
        });
        Ok(())
    }

    /// The run failed: the checkpoint whose file is being written is
    /// waited for (its file whole or not there), not committed.
    fn abandon(&mut self) {
        if let Some(checkpoints) = &mut self.checkpoints {
            if let Some(writer) = &mut checkpoints.writer {
                let _ = writer.done(true);
            }
            checkpoints.in_flight = None;
        }
    }
}

/// `record` (decoded before a reload from disk) read again from its text
/// for the fields of `table`, the new rules' (a record's text is JSON, CSV
/// rows included, whose columns are top-level fields).
fn reread(record: Record, table: &FieldTable) -> Record {
    let raw: std::sync::Arc<str> = std::sync::Arc::from(record.raw());
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&raw) {
        Ok(object) => cepheid_engine::io::record_from_json(table, &object, raw),
        Err(_) => record,
    }
}

/// How the run stops on the output's error `e` (said by the [`Output`]):
/// quietly when the output was closed.
fn stop(e: crate::SinkError) -> Stop {
    if e.closed() {
        return Stop::Output;
    }
    Stop::Failed(Error::Sink(e))
}
