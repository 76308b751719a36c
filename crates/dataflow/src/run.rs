//! The run of `cepheid run --workers N` and `--processes P --process I
//! --hostfile FILE` as a library: the runtime's [`Config`] and a
//! [`Scale`] (workers, processes, this process, the hostfile, output per
//! worker) over this crate's operators, on worker threads and processes.
//! [`Workers::new`] checks what it is given and compiles the patterns,
//! [`Workers::handle`] stops live input (what SIGINT and SIGTERM become in
//! the command), [`Workers::run`] runs it and gives the runtime's
//! [`Summary`] (its `Display` is the line the command prints) in an
//! [`Outcome`]; what it says while it runs goes to a [`Report`], as the
//! runtime's notices do. Errors are [`Error`], data the command maps to
//! its exit statuses and messages.
//!
//! - **Input.** With `--events FILE`, the file is cut in chunks of 1 MiB
//!   on line boundaries, dealt to the workers in turn
//!   (`dataflow::FileChunks`; a CSV chunk after the first starts with the
//!   header); each worker reads and decodes its chunks on its own thread
//!   with the runtime's reader of a share (`ShareReader`: the single run's
//!   input policy), a source of its own with its own watermark
//!   (`--max-delay` and `$watermark` lines of its chunks). Events are late by their own part's watermark: with
//!   disorder within `--max-delay` that is the same as one reader.
//! - **Live input.** Standard input, or a file with `--follow`, is read by
//!   worker 0 (of process 0) with the runtime's reader thread
//!   (`cepheid_runtime::source::LiveInput`), whose batches a second thread
//!   hands to a `dataflow::live_source`: the workers never wait on the
//!   input. While the reader waits for input (its last batch stalled),
//!   worker 0 flushes what it writes as it comes, as the single run does.
//!   `--idle-timeout` applies to that source (the rule of
//!   `cepheid_engine::engine::Idle`); [`Handle::stop`] (SIGINT, SIGTERM) stops the feed (event
//!   time stays where it got; summary; exit 130 or 143).
//! - **Output.** One `--output` and `--late`, opened by process 0, and
//!   one summary: matches and timeouts as JSON lines as `cepheid run`
//!   writes them, through one engine's writer (the runtime's `Output` and
//!   `Files`; its first error is the run's, said once). The workers of
//!   process 0 write their own records to `--output` in blocks of whole
//!   lines as they format them (`run/write.rs`; a single writer was the
//!   limit of a run with much output, `BENCHMARKS.md`); worker 0 writes
//!   the late events and
//!   the records of the other processes, sent to it. With `--checkpoint`
//!   every record is sent to worker 0, which writes them in the order of
//!   the frontier (a cut measures the outputs between two epochs). Any
//!   worker layout gives the same lines, each worker's in the order it
//!   made them; sorted bytewise (`LC_ALL=C sort`) they are identical.
//!   With `--output-per-worker`, each worker writes its own records to
//!   `FILE.W`.
//! - **Processes.** Every process runs the same command with its own
//!   `--process I` and the same `--hostfile` (one `host:port` per line,
//!   process 0 first; `#` comments and blank lines skipped); the file is
//!   read by every process, each worker reading its own part. The
//!   processes connect with `run/connect.rs` (timely's own set-up
//!   polls once a second and prints on standard output). Process 0 needs
//!   `--output FILE`: timely's networking prints on standard output when a
//!   peer fails. The other processes write no output file.
//! - **Checkpoints** (`--checkpoint DIR`, `--events FILE`, `--output
//!   FILE` on process 0): cuts of every worker of every process at a
//!   common frontier (`cepheid_dataflow::Cuts`, requested through
//!   `cepheid_dataflow::cut_requests`), one folder per cut in `DIR`, which
//!   every process must see (`run/cut.rs`), resumed on any layout
//!   of processes and workers (keys by key group, the input's lines read
//!   computed over every old worker); `docs/checkpoints.md`. A followed file
//!   (`--follow`) too: each batch of the reader goes to the source with its
//!   place (lines so far, malformed lines so far, the byte offset and the
//!   checksum of the bytes before it, `input::Position`), which the source
//!   records at a cut; [`Handle::stop`] stops the feed and the workers
//!   take a last cut as the dataflow ends (`cepheid_dataflow::cep_cut`);
//!   a resumed run reads the file from that place, or from its beginning
//!   when it was rotated while the run was stopped, as the single run does.
//!   With `--output-per-worker`, each worker's file is synced and measured
//!   when the worker saves its state at a cut (its records are written on
//!   its thread as they are made), and truncated to that length on
//!   resuming.
//! - Not with `--time processing` (exit 2); `--checkpoint` not with
//!   standard input (it cannot be read again: the single run's rule).
//!   `--max-waiting` applies per source, the single run's rule over the
//!   source's own events (`docs/semantics.md`, "Several readers"): with
//!   one source the same forced watermarks as a single run; they are
//!   counted in the summary. With `--strict`, the first malformed line
//!   stops the parts of its process (the live input ends there). Object
//!   keys and keys over `--max-runs-per-key` are counted
//!   in the summary; keys over the limit are named (ten per worker).
//! - More workers than the machine runs threads at once
//!   (`std::thread::available_parallelism`) is said as a warning at the
//!   start: they share its cores, which only adds their coordination.
//! - `--max-live-runs` bounds each engine of each worker (one per group of
//!   patterns partitioned alike), not their sum: N workers may hold N times
//!   the limit. Its first drop is said once per process; the summary adds
//!   up the drops of every worker.
//! - **Fields that never occur** (`Config::field_warnings`): each reader's
//!   decoders watch the fields, their views merged (the runtime's
//!   `FieldWarnings`); said
//!   once the process's readers decoded N events, and at the end by
//!   process 0 over every process's readers, with the single run's message.
//! - **An observing report** (`--metrics`, `--stats-every`): the sums of
//!   what the workers publish now and then (the `Board`), a followed
//!   file's lag, the sources' consumer lag, the latest records per block
//!   (`Tap`), and each cut completed or failed (`RunEvent::Checkpoint`,
//!   `CheckpointFailed`, from worker 0 of process 0); nothing per event.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cepheid_engine::engine::{MatchRef, Sink, Stats};
use cepheid_engine::io::{Decoder, FieldsSeen, Format, Formatter};
use cepheid_engine::{ErrorKind, FieldWatch, PatternStats, Record, Rules, Timestamp};
use cepheid_runtime::checkpoint::{store, Part, Piece};
use cepheid_runtime::source::FieldWarnings as Fields;
use cepheid_runtime::source::{
    Control, FilePosition as Position, Got, Heard, LiveInput, Policy, RulesRead, ShareReader,
    Source, SplitLag, Tail,
};
use cepheid_runtime::{
    add_patterns, Block, Config, End, EngineNumbers, Kind, Layout as SummaryLayout, Level,
    LimitNotices, Notice, Output, Report, RunEvent, RunView, SinkError, Summary, Tap, Time,
    MAX_DROP_KEYS,
};
use serde::{Deserialize, Serialize};
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::{Concat, Operator};
use timely::{CommunicationConfig, WorkerConfig};

use crate::pattern::Pattern;
use crate::source::{pull_source, Pull, Pulled};
use crate::{
    cep, cep_cut, cut_requests, group_worker, key_group, live_source, live_source_cut, Collect,
    Cuts, Due, Feed, FileChunks, Lateness, Place, Plan, Requests, SourceItem, SourceState,
    WorkerCut,
};

/// Says a line to the run's [`Report`]: `say!(to, Level, "format", ...)`.
macro_rules! say {
    ($to:expr, $level:ident, $($arg:tt)*) => {
        $to.line(Level::$level, format_args!($($arg)*))
    };
}

mod board;
mod connect;
mod counts;
mod cut;
mod cutter;
mod emit;
mod error;
mod items;
mod job;
mod resume;
mod single;
pub use single::to_one_engine;
mod write;

use board::{observe, Board, Published, PUBLISH_EVERY, STATE_EVERY};
use counts::{count, finish, Chunk, Counts, ReadCounts};
use cutter::{cut_failed, Cutter, Gathered};
use emit::{panic_message, Drops, Emit, Failing, Publish};
pub use error::{Error, Mismatch, Refusal};
use items::{share, Live, PartItems, Share, SourcePlace};
use job::{rules_item, Job};
use resume::{checkpoints, positions, Checkpoint};

use write::{lock, Records};

/// The run's [`Report`], shared by its threads.
#[derive(Clone)]
struct Say(Arc<Mutex<Box<dyn Report>>>);

impl Say {
    fn new(report: Box<dyn Report>) -> Say {
        Say(Arc::new(Mutex::new(report)))
    }

    /// Says one line (a newline is added).
    fn line(&self, level: Level, text: fmt::Arguments<'_>) {
        let notice = Notice::new(level, text);
        self.report().notice(notice);
    }

    fn report(&self) -> std::sync::MutexGuard<'_, Box<dyn Report>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a run on several workers runs: what `--workers`, `--processes`,
/// `--process`, `--hostfile`, `--output-per-worker` say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Worker threads (per process): the input file is cut in one part per
    /// worker and events go to the worker of their key.
    pub workers: usize,
    /// Run as one of this many processes (`None`: one, and the summary
    /// does not name processes).
    pub processes: Option<usize>,
    /// This process's number, from 0.
    pub process: usize,
    /// The processes' addresses, one `host:port` per line, process 0 first
    /// (`#` comments and blank lines skipped); needed with `processes`.
    pub hostfile: Option<PathBuf>,
    /// Each worker writes its matches and timeouts to `OUTPUT.W` (W its
    /// number over all processes) instead of sending them to worker 0.
    pub output_per_worker: bool,
    /// Bytes per chunk of the input file ([`Scale::CHUNK_BYTES`]; tests cut
    /// small files in many chunks).
    pub chunk_bytes: u64,
}

impl Default for Scale {
    /// One worker, one process.
    fn default() -> Scale {
        Scale {
            workers: 1,
            processes: None,
            process: 0,
            hostfile: None,
            output_per_worker: false,
            chunk_bytes: Scale::CHUNK_BYTES,
        }
    }
}

impl Scale {
    /// Bytes of a chunk of the input file: chunks go to the workers in
    /// turn, so that they read through the file (and its time) together.
    pub const CHUNK_BYTES: u64 = 1 << 20;

    /// This process's workers, numbered over every process (process `p`'s
    /// from `p * workers`): those [`Workers::with_sources`] takes a source
    /// for, in order.
    pub fn own_workers(&self) -> std::ops::Range<usize> {
        self.process * self.workers..(self.process + 1) * self.workers
    }

    /// Workers over every process.
    pub fn all_workers(&self) -> usize {
        self.workers * self.process_count()
    }

    /// Processes in all.
    fn process_count(&self) -> usize {
        self.processes.unwrap_or(1)
    }

    /// Several processes?
    fn cluster(&self) -> bool {
        self.processes.is_some_and(|p| p > 1)
    }

    /// Is this process 0 (which writes the outputs)?
    fn first_process(&self) -> bool {
        self.process == 0
    }
}

/// How a run on workers ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// Every worker's counts, gathered by worker 0 of process 0 (`None` on
    /// the other processes, and when worker 0 failed). Its
    /// [`Summary::end`]: [`End::Input`], [`End::Stopped`] (by
    /// [`Handle::stop`]), [`End::OutputClosed`] (standard output closed
    /// at the last flush: nothing more to say), [`End::Failed`] (the last
    /// flush failed, `flushed` false; said), [`End::Incomplete`] (a part
    /// of the input could not be read, or stopped at a malformed line with
    /// `strict`; said when it happened).
    pub summary: Option<Summary>,
    /// Was an error said while the run went on (a worker's own output or
    /// a checkpoint not written: the command exits 4)?
    pub said_errors: bool,
    /// Workers that failed ([`Error::Worker`]), in worker order: to say
    /// after the summary.
    pub failed: Vec<Error>,
}

/// Stops a run's live input from another thread (SIGINT, SIGTERM): the
/// feed stops, event time stays where it got, the workers take a last cut
/// with checkpoints, and the run ends with [`End::Stopped`].
#[derive(Clone, Debug)]
pub struct Handle(Vec<cepheid_runtime::Handle>);

impl Handle {
    /// Stops the input (every source of this process); `why` is said
    /// (`cepheid: stopped by WHY`) and kept in [`End::Stopped`].
    pub fn stop(&self, why: &str) {
        self.0.iter().for_each(|handle| handle.stop(why));
    }

    /// Reads the pattern paths again ([`Config::watch`]): their rules
    /// apply on every worker from the live input's watermark then + 1;
    /// `why` names the reload in what is said (`cepheid: WHY: rules
    /// reloaded:`). Nothing without [`Config::watch`].
    pub fn reload(&self, why: &str) {
        self.0.iter().for_each(|handle| handle.reload(why));
    }
}

/// A run of the runtime's [`Config`] on several workers (threads of this
/// process, and processes): checked and compiled, not started yet.
pub struct Workers {
    config: Config,
    scale: Scale,
    plan: Plan<Record>,
    /// The patterns, for the views of an observing report.
    patterns: Vec<Pattern>,
    /// Does the report observe the run ([`Report::observes`])?
    observes: bool,
    /// How many of the latest output records it wants
    /// ([`Report::records_wanted`], asked when it observes).
    records_wanted: usize,
    /// What every process must agree on ([`agreement`]).
    agreement: String,
    /// Where the patterns read each field, for the warnings about fields
    /// no event carried ([`Config::field_warnings`]).
    field_watch: FieldWatch,
    say: Say,
    /// Live input read by this process (what its reader reads, and
    /// [`Handle::stop`]).
    messages: Option<LiveInput>,
    /// Sources of the library's user ([`Workers::with_sources`]), one per
    /// worker of this process, each with the channel of its reader's
    /// batches and of [`Handle::stop`].
    sources: Option<Vec<OwnSource>>,
    /// Where the records go instead of the files ([`Workers::with_sink`]).
    sink: Option<Box<dyn cepheid_runtime::Sink>>,
}

/// A worker's own [`Source`] ([`Workers::with_sources`]), `None` for a
/// worker that reads nothing, the handle that stops it, and what its
/// reader thread reads.
type OwnSource = (Option<Box<dyn Source>>, cepheid_runtime::Handle, LiveInput);

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("config", &self.config)
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

impl Workers {
    /// What a run of `config` on `scale` does not take ([`Refusal`]),
    /// `sink` when its records go to a sink ([`Workers::with_sink`]):
    /// what [`Workers::new`] and then [`Workers::run`] refuse, checked at
    /// once, for a caller that opens sources or a sink before the run (a
    /// Kafka client asks its broker) and would refuse the run before it
    /// asks anything.
    pub fn check(config: &Config, scale: &Scale, sink: bool) -> Result<(), Refusal> {
        refuse(config)?;
        refuse_outputs(config, scale, sink)
    }

    /// The run of `rules` as `config` says, on `scale`; what it says goes
    /// to `report`. Refuses what it does not take ([`Refusal`]: no
    /// processing time, watched patterns of a file read in chunks;
    /// metrics are the command's), plans the patterns (every
    /// worker shares the automata the rules compiled as they were
    /// loaded). The outputs and the hostfile are checked when it runs
    /// ([`Workers::run`]: whether records go to a sink is known then).
    pub fn new(
        config: &Config,
        scale: &Scale,
        rules: &Rules,
        report: Box<dyn Report>,
    ) -> Result<Workers, Error> {
        refuse(config).map_err(Error::Refused)?;
        if rules.patterns().iter().any(uses_lists_or_indicators) {
            return Err(Error::Refused(Refusal::ListsAndIndicators));
        }
        let mut plan = Plan::<Record>::new()
            .max_runs_per_key(config.max_runs_per_key)
            .max_live_runs(config.max_live_runs);
        if config.rules_from_stream || config.watch || config.source_rules {
            plan = plan.changing(config.reload_policy);
        }
        let patterns = rules.patterns();
        // The automata the rules compiled as they were loaded, shared by
        // every worker (one pattern at a time only to say which one the
        // plan refuses).
        if plan.add(rules).is_err() {
            for pattern in patterns {
                plan.add(pattern).map_err(|source| Error::Pattern {
                    name: pattern.name.clone(),
                    source,
                })?;
            }
        }
        // (the hostfile is read when the run starts, after the outputs
        // were checked)
        let agreement = agreement(config, scale, patterns);
        let live = live(config);
        let policy = Policy::new(config.input.describe(), config.strict);
        let messages = (live && scale.first_process()).then(|| LiveInput::new(policy));
        let observes = report.observes();
        let records_wanted = if observes { report.records_wanted() } else { 0 };
        let say = Say::new(report);
        // More workers than the machine runs at once share its cores: each
        // still reads and matches its part, and their coordination costs
        // more than nothing is gained (`BENCHMARKS.md`, issue 23).
        if let Ok(cores) = thread::available_parallelism() {
            if scale.workers > cores.get() {
                say!(
                    say,
                    Warning,
                    "warning: `Scale::workers` {} on a machine that runs {} threads at once: the workers share its cores, which only adds their coordination; give at most `Scale::workers` {} here",
                    scale.workers,
                    cores,
                    cores
                );
            }
        }
        Ok(Workers {
            config: config.clone(),
            scale: scale.clone(),
            plan,
            patterns: if observes {
                patterns.to_vec()
            } else {
                Vec::new()
            },
            observes,
            records_wanted,
            agreement,
            // (each read located `path:line:column`, as the single run's)
            field_watch: FieldWatch::from_rules(rules),
            say,
            messages,
            sources: None,
            sink: None,
        })
    }

    /// The records (matches, timeouts and late events) go to `sink`
    /// instead of `Config::output` and `Config::late`: worker 0 hands it
    /// every worker's records, each with its kind and key, in the order
    /// the files would have them. With `--checkpoint` it takes part in the
    /// cuts as in the single run (`cepheid_runtime::sink`): when every
    /// worker's file of a cut is written, [`Sink::prepare`](cepheid_runtime::Sink::prepare),
    /// then `complete` (with the cut's number and the sink's state), then
    /// [`Sink::commit`](cepheid_runtime::Sink::commit) with the workers'
    /// positions put together ([`Sink::join_positions`](cepheid_runtime::Sink::join_positions)),
    /// and only then are the cuts before it deleted and the records made
    /// after it written; resuming, [`Sink::recover`](cepheid_runtime::Sink::recover)
    /// chooses among the complete cuts kept. A sink that
    /// [commits at the end](cepheid_runtime::Sink::commits_at_end) gets a
    /// last cut when the input ends ([`Cuts::at_end`]). With several
    /// processes, process 0's sink takes every process's records (the
    /// others' sinks are not written), without `--checkpoint` only
    /// ([`Refusal::SinkProcesses`]).
    pub fn with_sink(mut self, mut sink: Box<dyn cepheid_runtime::Sink>) -> Workers {
        sink.notify_to(cepheid_runtime::Notify::of_shared(self.say.0.clone()));
        self.sink = Some(sink);
        self
    }

    /// The run reads `sources` instead of `Config::input`: one per worker
    /// of this process, in worker order (`None` for a worker that reads
    /// nothing), each read by a thread of the runtime's
    /// ([`LiveInput::read_source`]) into its worker's source, with per-split
    /// watermarks (each split's largest time less `max_delay` less 1 ms,
    /// the least over the worker's splits, idle ones left out after
    /// `idle_timeout`), as the single run reads a `Source`; the dataflow
    /// takes the least over the workers. A worker's sources are live: the
    /// run ends when every source has ended (a bounded one), or at
    /// [`Handle::stop`]. With `--checkpoint`, each worker's cuts hold its
    /// source's position ([`Source::position_before`]) and split
    /// watermarks after the batches taken below the cut, and a resumed
    /// run seeks each worker's source there: on the same number of workers
    /// only ([`Mismatch::SourcesWorkers`]).
    pub fn with_sources(mut self, sources: Vec<Option<Box<dyn Source>>>) -> Result<Workers, Error> {
        let mut own = Vec::with_capacity(sources.len());
        for mut source in sources {
            if let Some(source) = &mut source {
                source.notify_to(cepheid_runtime::Notify::of_shared(self.say.0.clone()));
            }
            let input = LiveInput::new(Policy::new(
                self.config.input.describe(),
                self.config.strict,
            ));
            own.push((source, input.handle(), input));
        }
        self.sources = Some(own);
        Ok(self)
    }

    /// The handle that stops the live input (`None` when this process
    /// reads none: a file's parts end by themselves).
    pub fn handle(&self) -> Option<Handle> {
        if let Some(sources) = &self.sources {
            let readers = sources.iter().filter(|(s, _, _)| s.is_some());
            let handles: Vec<_> = readers.map(|(_, handle, _)| handle.clone()).collect();
            return (!handles.is_empty()).then_some(Handle(handles));
        }
        Some(Handle(vec![self.messages.as_ref()?.handle()]))
    }

    /// Runs it: refuses outputs it does not take ([`Refusal`]), reads
    /// the hostfile, reads the checkpoint folder (and resumes from its last
    /// cut), opens the outputs, starts the workers (after connecting to
    /// the other processes and checking that they run the same command),
    /// and waits for them.
    pub fn run(self) -> Result<Outcome, Error> {
        let Workers {
            config,
            scale,
            mut plan,
            patterns,
            observes,
            records_wanted,
            agreement,
            field_watch,
            say,
            messages,
            sources,
            mut sink,
        } = self;
        refuse_to_run(&config, &scale, sources.is_some(), sink.as_deref())?;
        // Watched pattern paths: their changes go to the live input's
        // reader, which reads them again (held for the whole run).
        let _watch = match (&messages, config.watch) {
            (Some(input), true) => match input.watch(&config.patterns) {
                Ok(watch) => Some(watch),
                Err(why) => {
                    say!(say, Warning, "{why}");
                    None
                }
            },
            _ => None,
        };
        if scale.first_process() && sink.is_none() {
            for notice in config.start_warnings() {
                say.report().notice(notice);
            }
        }
        let mut layout = layout(&scale)?;
        if let Layout::Cluster {
            agreement: agreed, ..
        } = &mut layout
        {
            *agreed = agreement;
        }
        let fields = config
            .field_warnings
            .map(|after| Arc::new(Fields::new(after, field_watch, scale.workers)));
        let readers: Vec<bool> = (sources.iter().flatten())
            .map(|(source, _, _)| source.is_some())
            .collect();
        let board = observes
            .then(|| Arc::new(Board::new(&scale, records_wanted, &readers, fields.clone())));
        let (checkpoint, resume, shares) = open_checkpoints(
            &config,
            &scale,
            sources.as_deref(),
            sink.as_deref_mut(),
            &mut plan,
            &say,
        )?;
        if let (Some(input), true) = (
            &messages,
            checkpoint.as_ref().is_some_and(|c| c.reload_files),
        ) {
            // (before any line: the files as the cut's rules, at its place)
            input
                .handle()
                .reload("the pattern files changed since the checkpoint");
        }
        if let (Some(tap), Some((marker, _))) =
            (board.as_ref().and_then(|b| b.tap.as_ref()), &resume)
        {
            // (a resumed run shows the latest records made before it)
            for (kind, record) in marker.latest_records() {
                lock(tap).push(*kind, record.as_bytes());
            }
        }
        // (late events are made for a sink that takes them)
        let sink_takes_late = sink.as_ref().is_some_and(|s| s.takes_late());
        let outputs = write::open(&config, &scale, sink, resume.as_ref(), &say)?;
        if sources.is_none() {
            opens(&config.input)?;
        }
        let live = live(&config) || sources.is_some();
        // A followed file's lag (bytes behind its end) is its one reader's.
        let followed = match (&config.input, config.follow) {
            (cepheid_runtime::Input::File(path), true) => Some(path.clone()),
            _ => None,
        };
        let job = Arc::new(Job {
            plan,
            origin: config.input.describe(),
            live,
            messages: Mutex::new(messages),
            config: config.clone(),
            sources: sources
                .map(|sources| Mutex::new(sources.into_iter().map(Some).collect::<Vec<_>>())),
            first_worker: scale.own_workers().start,
            // With --processes only process 0 may have --late (as the
            // README shows): every process makes its late lines, which
            // process 0 writes when it has --late (issue 26: process 1's
            // were lost while the summary counted them).
            keep_late: config.late.is_some()
                || sink_takes_late
                || scale.processes.is_some_and(|p| p > 1),
            notices: Arc::new(LimitNotices::new(&config)),
            stop_said: Arc::default(),
            failing: Arc::default(),
            chunk_bytes: scale.chunk_bytes,
            out: outputs.shared,
            own: outputs.own,
            write_failed: AtomicBool::new(false),
            stop: Arc::default(),
            cluster: scale.cluster(),
            checkpoint,
            resume: Mutex::new(resume.map(|(_, pieces)| pieces)),
            shares: Mutex::new(shares),
            checkpoint_failed: Arc::default(),
            say: say.clone(),
            board: board.clone(),
            fields: fields.clone(),
            controls: (matches!(config.format, Format::JsonLines) || config.source_rules)
                .then(|| Arc::new(config.clone())),
            reloads: config.watch.then(|| Arc::new(config.clone())),
        });
        let started = Instant::now();
        let observing = (board.as_ref())
            .map(|board| Observing::start(board, &patterns, followed.clone(), &say));
        let cluster = scale.cluster();
        if cluster {
            short_thread_panics();
        }
        let guards = execute(layout, &say, {
            let job = Arc::clone(&job);
            move |worker| job.work_or_fail(worker)
        })
        .map_err(|e| match e {
            Start::Differ(why) => Error::Differ(why),
            Start::Failed(why) => Error::Start(why),
        })?;
        // A peer process that dies (killed, its machine gone) makes
        // timely's networking threads panic, and joining them panicked
        // this process (exit 101, a backtrace, no hint): it stops with
        // exit 4 and says how to go on (issue 26).
        JOINING.store(true, Ordering::Relaxed);
        let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()));
        JOINING.store(false, Ordering::Relaxed);
        if let Some(observing) = observing {
            observing.stop();
        }
        let with_checkpoint = config.checkpoint.is_some();
        let Ok(results) = joined else {
            return Err(Error::ConnectionLost {
                checkpoint: with_checkpoint,
            });
        };
        let outcome = outcome_of(results, &job, &scale, started);
        if let Some(board) = &board {
            last_tick(
                board,
                &patterns,
                cluster,
                &outcome,
                followed.as_deref(),
                &say,
            );
        }
        Ok(outcome)
    }
}

/// The checkpoints of a run with `Config::checkpoint`: what
/// [`checkpoints`] reads of the folder, the cuts to come (a last one at
/// the end of a file, or at the end for a sink that commits there).
fn open_checkpoints(
    config: &Config,
    scale: &Scale,
    sources: Option<&[OwnSource]>,
    sink: Option<&mut (dyn cepheid_runtime::Sink + 'static)>,
    plan: &mut Plan<Record>,
    say: &Say,
) -> Result<OpenCheckpoints, Error> {
    let Some(dir) = &config.checkpoint else {
        return Ok((None, None, Vec::new()));
    };
    let commits_at_end = sink.as_ref().is_some_and(|s| s.commits_at_end());
    let shape = (scale.process_count(), scale.workers);
    let (checkpoint, resume, shares) =
        checkpoints(config, scale, sources, sink, dir, plan, shape, say)?;
    if commits_at_end {
        checkpoint.cuts.at_end();
    } else if !live(config) && sources.is_none() {
        // A file: a last cut at its end, before the end moves event time
        // on (as one engine's checkpoint there), from which a run over the
        // file grown since goes on.
        checkpoint.cuts.before_end();
    }
    Ok((Some(Arc::new(checkpoint)), resume, shares))
}

/// What [`open_checkpoints`] gives.
type OpenCheckpoints = (
    Option<Arc<Checkpoint>>,
    Option<(cepheid_runtime::checkpoint::Marker, Vec<Piece>)>,
    Vec<Option<Share>>,
);

/// How the run went, from what each worker of this process ended with:
/// worker 0 of process 0 the outputs and every worker's counts (the
/// summary), any worker what failed.
fn outcome_of(
    results: Vec<Result<Result<Option<job::Ended>, String>, String>>,
    job: &Job,
    scale: &Scale,
    started: Instant,
) -> Outcome {
    let (config, say) = (&job.config, &job.say);
    let mut outcome = Outcome {
        summary: None,
        said_errors: job.write_failed.load(Ordering::Relaxed)
            || job.checkpoint_failed.load(Ordering::Relaxed),
        failed: Vec::new(),
    };
    for result in results {
        match result {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((out, counts, stopped)))) => {
                // (an output that failed stopped the input, as it stops
                // one engine's)
                let failed = lock(&out).failed();
                if let (Some(fields), None, false) = (&job.fields, &stopped, failed) {
                    // The end of the input: what no reader of any process
                    // saw (their views came with the counts).
                    fields.at_end(counts.fields.as_ref(), &mut |n| say.report().notice(n));
                }
                let out = &mut lock(&out);
                let finished = finish(config, scale, out, counts, stopped, started, say);
                outcome.summary = Some(finished);
            }
            Ok(Err(why)) | Err(why) => outcome.failed.push(Error::Worker {
                why,
                cluster: job.cluster,
                checkpoint: config.checkpoint.is_some(),
            }),
        }
    }
    outcome
}

/// The events file of a run that reads one, opened once to see that it
/// can be (before any worker starts).
fn opens(input: &cepheid_runtime::Input) -> Result<(), Error> {
    if let cepheid_runtime::Input::File(path) = input {
        if let Err(source) = File::open(path) {
            return Err(Error::Runtime(cepheid_runtime::Error::Io {
                doing: cepheid_runtime::Doing::Open,
                path: path.display().to_string(),
                source,
            }));
        }
    }
    Ok(())
}

/// The thread that shows an observed run while it runs ([`observe`]).
struct Observing {
    thread: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Observing {
    /// Starts it on `board`.
    fn start(
        board: &Arc<Board>,
        patterns: &[cepheid_core::pattern::Pattern],
        followed: Option<PathBuf>,
        say: &Say,
    ) -> Observing {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = observe(
            Arc::clone(board),
            patterns.to_vec(),
            followed,
            say.clone(),
            Arc::clone(&stop),
        );
        Observing { thread, stop }
    }

    /// Stops it and waits for it.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// What cannot run on workers, refused before anything is read: outputs
/// they do not take ([`Refusal`]), `Config::watch` with sources of the
/// library's user (each worker reads its own share: no one reader), and
/// what one engine's run refuses when it is made (`Config::check_reading`,
/// a transactional sink without checkpoints, the records' own times from a
/// file), the same.
fn refuse_to_run(
    config: &Config,
    scale: &Scale,
    sources: bool,
    sink: Option<&(dyn cepheid_runtime::Sink + 'static)>,
) -> Result<(), Error> {
    refuse_outputs(config, scale, sink.is_some()).map_err(Error::Refused)?;
    if config.watch && sources {
        return Err(Error::Refused(Refusal::Watch));
    }
    config
        .check_reading(!sources)
        .map_err(|c| Error::Runtime(cepheid_runtime::Error::Conflict(c)))?;
    if let Some(sink) = sink {
        if sink.commits_with_checkpoints() && config.checkpoint.is_none() {
            let conflict = cepheid_runtime::Conflict::SinkNeedsCheckpoints {
                sink: sink.describe(cepheid_runtime::Kind::Match),
            };
            return Err(Error::Runtime(cepheid_runtime::Error::Conflict(conflict)));
        }
    }
    if config.time == Time::Record && !sources {
        return Err(Error::Refused(Refusal::RecordTime));
    }
    Ok(())
}

/// The last tick of an observed run: every worker published its numbers
/// at its end. This process's own (the other processes show theirs),
/// which on one process are the summary's.
fn last_tick(
    board: &Board,
    patterns: &[cepheid_core::pattern::Pattern],
    cluster: bool,
    outcome: &Outcome,
    followed: Option<&Path>,
    say: &Say,
) {
    // The last tick: every worker published its numbers at its
    // end. This process's own (the other processes show theirs),
    // which on one process are the summary's.
    let (workers, [events, late, malformed]) = board.gather(patterns);
    let records = board.records();
    let mut view = RunView::of_workers(&workers);
    (view.events_read, view.late, view.malformed) = (events, late, malformed);
    view.records = &records;
    if let (false, Some(summary)) = (cluster, &outcome.summary) {
        (view.events_read, view.late, view.malformed) =
            (summary.events, summary.late, summary.malformed);
    }
    view.source_lag = board.source_lag(followed);
    let lag = board.consumer_lag();
    board.show(&mut view, &lag);
    view.finished = true;
    say.report().tick(&view);
}

/// Standard input, or a followed file: read on a thread of its own.
fn live(config: &Config) -> bool {
    config.follow || config.input == cepheid_runtime::Input::Stdin
}

/// A duration in whole milliseconds.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// With `--processes`, a panic of one of timely's threads (its networking
/// when a peer dies: "Connection reset by peer", "MergeQueue poisoned",
/// "Send thread panic") is said in one line on standard error (the panic
/// hook's own place), where and why, not with a backtrace per thread;
/// [`Workers::run`] then gives [`Error::ConnectionLost`] or
/// [`Error::Worker`]. Other threads' panics keep the default report.
fn short_thread_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("");
        let joining = name == "main" && JOINING.load(Ordering::Relaxed);
        if !name.starts_with("timely:") && !joining {
            return default(info);
        }
        let message = panic_message(info.payload());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = io::Write::write_fmt(
            &mut io::stderr().lock(),
            format_args!("cepheid: thread {name} stopped{place}: {message}\n"),
        );
    }));
}

/// Set while the main thread joins the workers and timely's threads: a
/// panic of the main thread then is timely's.
static JOINING: AtomicBool = AtomicBool::new(false);

/// Options the dataflow run does not take.
fn refuse(config: &Config) -> Result<(), Refusal> {
    if config.watch && !live(config) {
        return Err(Refusal::Watch);
    }
    if config.time == Time::Processing {
        return Err(Refusal::ProcessingTime);
    }
    if config.checkpoint.is_some() && config.checkpoint_every.time.is_none() {
        return Err(Refusal::CheckpointEveryEvents);
    }
    Ok(())
}

/// Does `pattern` write to a list or read an indicator (what a run on
/// workers cannot do the way one engine does yet)?
fn uses_lists_or_indicators(pattern: &Pattern) -> bool {
    let indicator = |e: &cepheid_core::expr::Expr| {
        let mut found = false;
        e.walk(|x| found |= matches!(x, cepheid_core::expr::Expr::Indicator(..)));
        found
    };
    !pattern.writes.is_empty()
        || pattern.reads.iter().any(|r| indicator(&r.expr))
        || pattern.select.iter().any(|s| indicator(&s.expr))
}

/// The outputs a run on workers does not take, `sink` when its records go
/// to a sink ([`Workers::with_sink`]) rather than to files.
fn refuse_outputs(config: &Config, scale: &Scale, sink: bool) -> Result<(), Refusal> {
    if sink {
        if scale.processes.is_some_and(|p| p > 1) && config.checkpoint.is_some() {
            return Err(Refusal::SinkProcesses);
        }
        if scale.output_per_worker {
            return Err(Refusal::SinkOutputPerWorker);
        }
        return Ok(());
    }
    let stdout = config.output.is_none();
    if config.checkpoint.is_some() {
        // Standard input is refused with the single run's message (the
        // command's): it cannot be read again.
        // Process 0 writes the outputs; the others write none.
        let first_process = scale.first_process();
        if first_process && stdout {
            return Err(Refusal::CheckpointNeedsOutput);
        }
        // (a device or a FIFO is written as standard output is, as on one
        // engine: `Config::start_warnings`)
    }
    if scale.output_per_worker && stdout {
        return Err(Refusal::OutputPerWorkerNeedsOutput);
    }
    if scale.processes.is_some() && scale.process == 0 && stdout {
        // Timely's networking prints on standard output when a peer fails
        // (`failed to read full header!`): not into the matches.
        return Err(Refusal::ProcessesNeedOutput);
    }
    Ok(())
}

/// Where the workers run.
enum Layout {
    /// `threads` workers in this process.
    Process(usize),
    /// `threads` workers in each process of `addresses`, this being
    /// `process`.
    Cluster {
        threads: usize,
        process: usize,
        addresses: Vec<String>,
        /// What every process must agree on (`agreement`), checked with
        /// every other process before any record moves.
        agreement: String,
    },
}

/// The layout from the scale (the hostfile read and checked).
fn layout(scale: &Scale) -> Result<Layout, Error> {
    let threads = scale.workers;
    let Some(processes) = scale.processes else {
        return Ok(Layout::Process(threads));
    };
    let process = scale.process;
    if process >= processes {
        return Err(Error::ProcessNumber { process, processes });
    }
    let path = scale.hostfile.as_deref().unwrap_or(Path::new(""));
    let text = std::fs::read_to_string(path).map_err(|source| Error::Hostfile {
        path: path.to_path_buf(),
        source,
    })?;
    let lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .take(processes);
    let mut addresses = Vec::with_capacity(processes);
    for (n, line) in lines {
        if line.split_whitespace().nth(1).is_some() {
            return Err(Error::HostfileLine {
                path: path.to_path_buf(),
                line: n,
                text: line.to_string(),
            });
        }
        addresses.push(line.to_string());
    }
    if addresses.len() < processes {
        return Err(Error::Addresses {
            path: path.to_path_buf(),
            found: addresses.len(),
            processes,
        });
    }
    Ok(Layout::Cluster {
        threads,
        process,
        addresses,
        agreement: String::new(),
    })
}

/// What the processes of `--processes` must agree on, one `name: value`
/// per line: a process started with another `--max-delay`, other rules (a
/// rolling deploy), another events file or another `--workers` gave
/// silent wrong records, or a panic (issue 26). `--process`, `--hostfile`
/// and the outputs (process 0's) may differ; the events file is compared
/// by its size (its path may differ from machine to machine) unless it is
/// followed or standard input.
fn agreement(config: &Config, scale: &Scale, patterns: &[Pattern]) -> String {
    let rules: String = patterns.iter().map(cepheid_syntax::explain).collect();
    let events_path = config.input.path();
    let events = if live(config) {
        format!("{} (live)", events_path.display())
    } else {
        std::fs::metadata(events_path).map_or_else(
            |e| format!("unreadable ({})", e.kind()),
            |m| format!("{} bytes", m.len()),
        )
    };
    let format = match config.format {
        Format::JsonLines => "Jsonl",
        Format::Csv => "Csv",
    };
    let time = match config.time {
        Time::Event { .. } => "Event",
        Time::Processing => "Processing",
        Time::Record => "Record",
    };
    [
        ("cepheid", env!("CARGO_PKG_VERSION").to_string()),
        (
            "the rules (FNV-1a of their text)",
            format!("{:016x}", {
                use std::hash::Hasher;
                let mut hasher = fnv::FnvHasher::default();
                hasher.write(rules.as_bytes());
                hasher.finish()
            }),
        ),
        ("--events", events),
        ("--format", format.to_string()),
        ("--time", time.to_string()),
        (
            "--time-field",
            config.time_field().unwrap_or_default().to_string(),
        ),
        ("--max-delay", format!("{} ms", millis(config.max_delay))),
        (
            "--idle-timeout",
            format!("{:?}", config.idle_timeout.map(millis)),
        ),
        ("--flush-at-end", config.flush_at_end.to_string()),
        ("--strict", config.strict.to_string()),
        ("--follow", config.follow.to_string()),
        ("--max-runs-per-key", config.max_runs_per_key.to_string()),
        ("--max-live-runs", config.max_live_runs.to_string()),
        ("--max-waiting", config.max_waiting.to_string()),
        ("--workers", scale.workers.to_string()),
        ("--processes", format!("{:?}", scale.processes)),
        ("--output-per-worker", scale.output_per_worker.to_string()),
        ("--checkpoint", config.checkpoint.is_some().to_string()),
        ("--chunk-bytes", scale.chunk_bytes.to_string()),
    ]
    .iter()
    .map(|(name, value)| format!("{name}: {value}\n"))
    .collect()
}

/// Why the workers did not start.
enum Start {
    /// Another process runs another command (exit 2).
    Differ(String),
    /// The rest (exit 4).
    Failed(String),
}

/// Starts the workers of `layout` on `work`; for a cluster, connects to
/// the other processes first and checks that they run the same command
/// (`run/connect.rs`).
fn execute<T, F>(
    layout: Layout,
    say: &Say,
    work: F,
) -> Result<timely::communication::WorkerGuards<T>, Start>
where
    T: Send + 'static,
    F: Fn(&mut timely::worker::Worker) -> T + Send + Sync + 'static,
{
    let (builders, others) = match layout {
        Layout::Process(threads) => CommunicationConfig::Process(threads)
            .try_build()
            .map_err(Start::Failed)?,
        Layout::Cluster {
            threads,
            process,
            addresses,
            agreement,
        } => {
            let mut sockets = connect::sockets(&addresses, process, say)
                .map_err(|e| Start::Failed(e.to_string()))?;
            connect::agree(&mut sockets, process, &agreement).map_err(|e| match e {
                connect::Disagreement::Differ(why) => Start::Differ(why),
                connect::Disagreement::Io(e) => Start::Failed(e.to_string()),
            })?;
            let hooks = Hooks::default();
            let local = ProcessBuilder::new_typed_vector(
                threads,
                hooks.refill.clone(),
                hooks.spill.clone(),
            );
            let (builders, guard) =
                initialize_networking_from_sockets(local, sockets, process, threads, hooks)
                    .map_err(|e| Start::Failed(format!("cannot start the networking: {e}")))?;
            let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
            (builders, Box::new(guard) as Box<dyn std::any::Any + Send>)
        }
    };
    timely::execute::execute_from(builders, others, WorkerConfig::default(), work)
        .map_err(Start::Failed)
}
#[cfg(test)]
mod tests {
    use super::*;

    /// What `Workers::new` says of `config` on one worker.
    fn refused_by_new(config: &Config) -> Option<Refusal> {
        let rules = Rules::parse(
            "p.cep",
            "pattern p {\n match a followed by b\n where\n a: type == \"a\"\n b: type == \"b\"\n}",
        )
        .unwrap();
        let report = Box::new(cepheid_runtime::Notices::default());
        match Workers::new(config, &Scale::default(), &rules, report) {
            Err(Error::Refused(refusal)) => Some(refusal),
            Err(e) => panic!("not a refusal: {e}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn what_the_workers_cannot_read_is_refused_not_ignored() {
        let plain = Config::new(cepheid_runtime::Input::file("events.jsonl"), Vec::new());
        assert_eq!(refused_by_new(&plain), None);
        let with = |set: fn(&mut Config)| {
            let mut config = plain.clone();
            set(&mut config);
            config
        };
        let cases = [
            (
                with(|c| c.watch = true),
                Refusal::Watch,
                "`Config::watch` with `Scale::workers` needs live input (a followed file, `Config::follow`, or standard input): the chunks of a file are read by every worker, and no one reader takes the reload",
            ),
        ];
        // Rule changes of every origin are taken with checkpoints (a cut
        // keeps the rules in force and the changes pending), and a
        // source's rules stream without them.
        let taken = [
            with(|c| {
                c.rules_from_stream = true;
                c.checkpoint = Some("checkpoints".into());
            }),
            with(|c| {
                c.source_rules = true;
                c.checkpoint = Some("checkpoints".into());
            }),
            with(|c| {
                (c.watch, c.follow) = (true, true);
                c.checkpoint = Some("checkpoints".into());
            }),
            with(|c| c.source_rules = true),
        ];
        for mut config in taken {
            config.output = Some("out.jsonl".into());
            let config = &config;
            assert_eq!(refused_by_new(config), None, "{config:?}");
            assert_eq!(Workers::check(config, &Scale::default(), false), Ok(()));
        }
        for (config, refusal, said) in cases {
            assert_eq!(refused_by_new(&config), Some(refusal));
            let checked = Workers::check(&config, &Scale::default(), false);
            assert_eq!(checked, Err(refusal));
            assert_eq!(refusal.to_string(), said);
        }
        // Event time from the records' own times: taken with sources that
        // give them (a Kafka source's), refused when the run reads a file.
        let record_time = with(|c| c.time = cepheid_runtime::Time::Record);
        assert_eq!(refused_by_new(&record_time), None);
        let rules = Rules::parse(
            "p.cep",
            "pattern p {\n match a followed by b\n where\n a: type == \"a\"\n b: type == \"b\"\n}",
        )
        .unwrap();
        let report = Box::new(cepheid_runtime::Notices::default());
        let run = Workers::new(&record_time, &Scale::default(), &rules, report).unwrap();
        match run.run() {
            Err(Error::Refused(Refusal::RecordTime)) => {}
            Err(e) => panic!("not the refusal: {e}"),
            Ok(_) => panic!("a file's records have no time of their own"),
        }
        assert_eq!(
            Refusal::RecordTime.to_string(),
            "`Time::Record` with `Scale::workers` or `Scale::processes` needs sources that give each record's time (a Kafka source: `Config::input` kafka://...)"
        );
    }

    #[test]
    fn a_sink_is_refused_with_checkpoints_on_several_processes_or_output_per_worker_before_anything_opens(
    ) {
        let mut config = Config::new(cepheid_runtime::Input::file("events.jsonl"), Vec::new());
        config.output = Some("out.jsonl".into());
        let one = Scale::default();
        assert_eq!(Workers::check(&config, &one, true), Ok(()));
        assert_eq!((one.own_workers(), one.all_workers()), (0..1, 1));
        let processes = Scale {
            processes: Some(2),
            ..Scale::default()
        };
        // (without checkpoints, process 0's sink takes every record)
        assert_eq!(Workers::check(&config, &processes, true), Ok(()));
        let mut checkpointed = config.clone();
        checkpointed.checkpoint = Some("ckpt".into());
        assert_eq!(
            Workers::check(&checkpointed, &processes, true),
            Err(Refusal::SinkProcesses)
        );
        assert_eq!(Workers::check(&checkpointed, &one, true), Ok(()));
        let second = Scale {
            workers: 3,
            process: 1,
            ..processes.clone()
        };
        assert_eq!((second.own_workers(), second.all_workers()), (3..6, 6));
        // (into files, several processes are fine)
        assert_eq!(Workers::check(&config, &processes, false), Ok(()));
        let per_worker = Scale {
            output_per_worker: true,
            ..Scale::default()
        };
        assert_eq!(
            Workers::check(&config, &per_worker, true),
            Err(Refusal::SinkOutputPerWorker)
        );
        // What `Workers::new` refuses, `check` refuses too.
        config.time = cepheid_runtime::Time::Processing;
        assert_eq!(
            Workers::check(&config, &one, true),
            Err(Refusal::ProcessingTime)
        );
    }

    /// A sink that delivers only what checkpoints commit, on workers
    /// without a checkpoint folder: refused as on one engine, before
    /// anything is read.
    #[test]
    fn a_sink_that_commits_with_checkpoints_is_refused_without_a_checkpoint_folder() {
        struct Committing;
        impl cepheid_runtime::Sink for Committing {
            fn describe(&self, _kind: cepheid_runtime::Kind) -> String {
                "kafka:alerts".to_string()
            }
            fn write(
                &mut self,
                _kind: cepheid_runtime::Kind,
                _key: &[u8],
                _record: &[u8],
            ) -> Result<(), SinkError> {
                panic!("nothing is written")
            }
            fn flush(&mut self) -> Result<(), SinkError> {
                Ok(())
            }
            fn prepare(
                &mut self,
                _checkpoint: u64,
            ) -> Result<cepheid_runtime::SinkState, SinkError> {
                Ok(cepheid_runtime::SinkState::default())
            }
            fn commits_with_checkpoints(&self) -> bool {
                true
            }
            fn recover(
                &mut self,
                kept: &[cepheid_runtime::Checkpoint],
            ) -> Result<usize, SinkError> {
                Ok(kept.len())
            }
        }
        let config = Config::new(cepheid_runtime::Input::file("events.jsonl"), Vec::new());
        let rules = Rules::parse(
            "p.cep",
            "pattern p {\n match a followed by b\n where\n a: type == \"a\"\n b: type == \"b\"\n}",
        )
        .unwrap();
        let report = Box::new(cepheid_runtime::Notices::default());
        let run = Workers::new(&config, &Scale::default(), &rules, report).unwrap();
        match run.with_sink(Box::new(Committing)).run() {
            Err(Error::Runtime(cepheid_runtime::Error::Conflict(
                cepheid_runtime::Conflict::SinkNeedsCheckpoints { sink },
            ))) => assert_eq!(sink, "kafka:alerts"),
            Err(e) => panic!("not the refusal: {e}"),
            Ok(_) => panic!("a run whose sink would never commit was accepted"),
        }
    }

    /// A report whose notices the test reads after the run.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<Notice>>>);

    impl Report for Kept {
        fn notice(&mut self, notice: Notice) {
            self.0.lock().unwrap().push(notice);
        }
    }

    /// The keys over `--max-runs-per-key` are said as one engine says
    /// them, from one place per process: warnings, the first ten keys
    /// named, then that further keys are only counted (they were info
    /// lines on workers, ten per worker, and the last line was missing).
    #[test]
    fn keys_over_the_limit_are_said_on_workers_as_on_one_engine() {
        let dir = std::env::temp_dir().join(format!("cepheid-told-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events.jsonl");
        let mut text = String::new();
        for k in 0..12 {
            for t in 0..3 {
                text += &format!("{{\"ts\":{},\"k\":\"k{k}\",\"type\":\"a\"}}\n", k * 10 + t);
            }
        }
        std::fs::write(&events, text).unwrap();
        let rules = Rules::parse(
            "p.cep",
            "pattern p {\n partition by k\n match a followed by b\n where\n a: type == \"a\"\n b: type == \"b\"\n}",
        )
        .unwrap();
        let mut config = Config::new(cepheid_runtime::Input::file(&events), Vec::new());
        config.output = Some(dir.join("out.jsonl"));
        config.max_runs_per_key = 2;
        let said = |notices: &Kept| -> Vec<(Level, String)> {
            let notices = notices.0.lock().unwrap();
            notices
                .iter()
                .filter(|n| {
                    n.as_str().contains("partial matches; the oldest")
                        || n.as_str().contains("further keys")
                })
                .map(|n| (n.level(), n.as_str().trim_end().to_string()))
                .collect()
        };
        let single = Kept::default();
        let runtime =
            cepheid_runtime::Runtime::new(config.clone(), &rules, Box::new(single.clone()))
                .unwrap();
        assert!(runtime.run().error().is_none());
        let scale = Scale {
            workers: 2,
            ..Scale::default()
        };
        let workers = Kept::default();
        let run = Workers::new(&config, &scale, &rules, Box::new(workers.clone())).unwrap();
        assert!(run.run().is_ok());
        let (single, workers) = (said(&single), said(&workers));
        for said in [&single, &workers] {
            assert_eq!(said.len(), 11, "{said:?}");
            assert!(
                said.iter().all(|(level, _)| *level == Level::Warning),
                "{said:?}"
            );
            assert_eq!(
                said[10].1,
                "cepheid: further keys over the limit are only counted in the summary"
            );
        }
        // Ten distinct keys named in the same words (which ten depends on
        // the order the workers meet them).
        for said in [&single, &workers] {
            let mut keys: Vec<&str> = said[..10]
                .iter()
                .map(|(_, text)| {
                    let rest = text.strip_prefix("cepheid: pattern `p`, key [\"").unwrap();
                    let (key, tail) = rest.split_once("\"]").unwrap();
                    assert_eq!(
                        tail,
                        ": more than 2 partial matches; the oldest are dropped (`Config::max_runs_per_key`; raise it to keep them)"
                    );
                    key
                })
                .collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), 10, "{said:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What `Config::check` refuses, the run on workers refuses too when it
    /// starts (before anything is opened), as one engine's `Runtime` does.
    #[test]
    fn the_workers_refuse_what_config_check_refuses() {
        let dir = std::env::temp_dir().join(format!("cepheid-same-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events.jsonl");
        std::fs::write(&events, "{\"ts\":1}\n").unwrap();
        let mut config = Config::new(cepheid_runtime::Input::file(&events), Vec::new());
        config.output = Some(events.clone());
        let rules =
            Rules::parse("p.cep", "pattern p {\n match a\n where a: type == \"a\"\n}").unwrap();
        let report = Box::new(cepheid_runtime::Notices::default());
        let run = Workers::new(&config, &Scale::default(), &rules, report).unwrap();
        match run.run() {
            Err(Error::Runtime(cepheid_runtime::Error::Conflict(
                cepheid_runtime::Conflict::SameFile { .. },
            ))) => {}
            Err(e) => panic!("not the refusal: {e}"),
            Ok(_) => panic!("a run writing over its input was accepted"),
        }
        assert_eq!(std::fs::read_to_string(&events).unwrap(), "{\"ts\":1}\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
