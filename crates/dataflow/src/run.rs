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
//!   header); each worker reads and decodes its chunks, a source of its
//!   own with its own watermark (`--max-delay` and `$watermark` lines of
//!   its chunks). Events are late by their own part's watermark: with
//!   disorder within `--max-delay` that is the same as one reader.
//! - **Live input.** Standard input, or a file with `--follow`, is read by
//!   worker 0 (of process 0) with the runtime's reader (`cepheid_runtime::source`,
//!   `spawn_reader`) on a thread of its own, whose batches a second thread
//!   hands to a `dataflow::live_source`: the workers never wait on the
//!   input. While the reader waits for input (its last batch stalled),
//!   worker 0 flushes what it writes as it comes, as the single run does.
//!   `--idle-timeout` applies to that source (the rule of
//!   `cepheid_engine::engine::Idle`); [`Handle::stop`] (SIGINT, SIGTERM) stops the feed (event
//!   time stays where it got; summary; exit 130 or 143).
//! - **Output.** One `--output` and `--late`, opened by process 0, and
//!   one summary: matches and timeouts as JSON lines as `cepheid run`
//!   writes them. The workers of process 0 write their own records to
//!   `--output` in blocks of whole lines as they format them
//!   (`run/write.rs`; a single writer was the limit of a run with
//!   much output, `BENCHMARKS.md`); worker 0 writes the late events and
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
//!   decoders watch the fields, their views merged (`run/fields.rs`); said
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
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cepheid_engine::engine::{MatchRef, Sink, Stats};
use cepheid_engine::io::{Decoder, FieldsSeen, Format, Formatter, Item, Items};
use cepheid_engine::{ErrorKind, FieldWatch, PatternStats, Record, Rules, Timestamp};
use cepheid_runtime::source::{
    prime, spawn_reader, Control, Entry, FilePosition as Position, Message, Opened, Reading,
    SeenTold, Source, SourceTiming, SplitLag, SplitTiming, Tail, BATCHES_AHEAD,
};
use cepheid_runtime::{
    add_patterns, Block, Config, End, EngineNumbers, Kind, Layout as SummaryLayout, Level,
    LimitNotices, Notice, Report, RunEvent, RunView, SinkError, Summary, Time, MAX_DROP_KEYS,
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
use crate::record::FieldTable;
use crate::{
    cep, cep_cut, cut_requests, group_worker, key_group, live_source, live_source_cut, source,
    source_cut, Collect, Cuts, Due, Feed, FileChunk, FileChunks, Lateness, Place, Plan, Positioned,
    Requests, SourceItem, SourceState, WorkerCut,
};

/// Says a line to the run's [`Report`]: `say!(to, Level, "format", ...)`.
macro_rules! say {
    ($to:expr, $level:ident, $($arg:tt)*) => {
        $to.line(Level::$level, format_args!($($arg)*))
    };
}

mod connect;
mod cut;
mod fields;
mod single;
pub use single::to_one_engine;
mod write;

pub use cut::{CutError, Damage};
use fields::Fields;
use write::{lock, Records, Tap, Writers};

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

/// How often each worker publishes its numbers to the [`Board`] (when
/// the report observes the run), and how often the observer thread shows
/// them to the report ([`Report::tick`]).
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How often a worker measures the bytes of its state, at most (a walk
/// over it).
const STATE_EVERY: Duration = Duration::from_secs(1);

/// What each worker of this process last published (a run whose report
/// observes it: `--stats-every`, `--metrics`): at most every
/// [`PUBLISH_EVERY`] after a batch of work, and at its end, under one
/// mutex (nothing per event); read by the observer thread, which shows
/// their sum to the report.
struct Board {
    /// The index of this process's first worker.
    first: usize,
    /// Each worker of the process, by its index in the process.
    slots: Mutex<Vec<Published>>,
    /// The latest output records of the process's workers, when the
    /// report wants some ([`Report::records_wanted`]).
    tap: Option<Arc<Tap>>,
    /// A followed file's one reader (worker 0 of process 0): the offset in
    /// the file after its last batch handed to the source;
    /// [`Board::NOT_READ`] in every other process, and before it starts.
    read_to: AtomicU64,
    /// The consumer lag of the library user's sources
    /// ([`Workers::with_sources`]): by the worker's index in the process,
    /// whether it reads a source, and its lag per split as its reader
    /// thread last said it (`Message::Lag`, at most once a second).
    lags: Mutex<Vec<(bool, Option<Vec<SplitLag>>)>>,
    /// Warnings about fields no event carried (for their count).
    fields: Option<Arc<Fields>>,
}

/// A worker's numbers as it last published them.
#[derive(Clone, Debug, Default)]
struct Published {
    engines: Option<EngineNumbers>,
    /// Events its source read (late ones included), late events,
    /// malformed lines.
    events: u64,
    late: u64,
    malformed: u64,
}

impl Board {
    /// [`Board::read_to`] before the reader says where it is.
    const NOT_READ: u64 = u64::MAX;

    /// The board of this process's workers; `readers` says which of them
    /// read a source of the library's user (none: they read a file or
    /// live input).
    fn new(
        scale: &Scale,
        records_wanted: usize,
        readers: &[bool],
        fields: Option<Arc<Fields>>,
    ) -> Board {
        Board {
            first: scale.own_workers().start,
            slots: Mutex::new(vec![Published::default(); scale.workers]),
            tap: (records_wanted > 0).then(|| Arc::new(Tap::new(records_wanted))),
            read_to: AtomicU64::new(Board::NOT_READ),
            lags: Mutex::new(readers.iter().map(|&r| (r, None)).collect()),
            fields,
        }
    }

    /// The source of worker `local` (its index in the process) is `lag`
    /// records behind its splits' ends.
    fn lag(&self, local: usize, lag: Vec<SplitLag>) {
        let mut lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, slot)) = lags.get_mut(local) {
            *slot = Some(lag);
        }
    }

    /// The consumer lag of the process's sources, every split of each
    /// (by stream and number): `None` until every worker that reads one
    /// has said its own (a sum of some would say less than is behind),
    /// and on runs without sources.
    fn consumer_lag(&self) -> Option<Vec<SplitLag>> {
        let lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = Vec::new();
        let mut readers = 0;
        for (reads, lag) in lags.iter() {
            if *reads {
                all.extend_from_slice(lag.as_deref()?);
                readers += 1;
            }
        }
        all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        (readers > 0).then_some(all)
    }

    /// Shows the sources' lag and the fields' warnings in `view`.
    fn show<'a>(&self, view: &mut RunView<'a>, lag: &'a Option<Vec<SplitLag>>) {
        if let Some(lag) = lag {
            view.consumer_lag = Some(lag.iter().map(|l| l.records).sum());
            view.split_lag = lag;
        }
        if let Some(fields) = &self.fields {
            view.field_warnings = fields.told();
        }
    }

    /// The output records tapped since the last look (for
    /// [`RunView::records`]).
    fn records(&self) -> Vec<(cepheid_runtime::Kind, String)> {
        self.tap.as_ref().map(|tap| tap.take()).unwrap_or_default()
    }

    /// The followed file's reader is at `offset` of the file (named
    /// `--events` now: its offsets start anew at a rotation).
    fn read_to(&self, offset: u64) {
        self.read_to.store(offset, Ordering::Relaxed);
    }

    /// Bytes of the followed file `path` after its reader's place: its
    /// length now less the offset (as the single run's
    /// `cepheid_source_lag_bytes`); `None` without `path` (not followed)
    /// or in a process that does not read it.
    fn source_lag(&self, path: Option<&Path>) -> Option<u64> {
        let at = self.read_to.load(Ordering::Relaxed);
        if at == Board::NOT_READ {
            return None;
        }
        let len = std::fs::metadata(path?).ok()?.len();
        Some(len.saturating_sub(at))
    }

    /// Worker `index` (over all processes) publishes.
    fn publish(&self, index: usize, published: Published) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(index - self.first) {
            *slot = published;
        }
    }

    /// The sum of what the workers published: their engines' numbers
    /// (each worker's own too), events read, late, malformed.
    fn gather(&self, patterns: &[Pattern]) -> (cepheid_runtime::Workers, [u64; 3]) {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut read = [0; 3];
        let mut each = Vec::with_capacity(slots.len());
        for (i, slot) in slots.iter().enumerate() {
            read[0] += slot.events;
            read[1] += slot.late;
            read[2] += slot.malformed;
            if let Some(engines) = &slot.engines {
                each.push((self.first + i, engines.clone()));
            }
        }
        (cepheid_runtime::Workers::new(patterns.to_vec(), each), read)
    }
}

/// Shows the board's sum to the run's report every [`PUBLISH_EVERY`] on a
/// thread of its own, until `stop`.
fn observe(
    board: Arc<Board>,
    patterns: Vec<Pattern>,
    followed: Option<PathBuf>,
    say: Say,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    thread::spawn(move || loop {
        thread::park_timeout(PUBLISH_EVERY);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (workers, [events, late, malformed]) = board.gather(&patterns);
        let records = board.records();
        let lag = board.consumer_lag();
        let mut view = RunView::of_workers(&workers);
        view.events_read = events;
        view.late = late;
        view.malformed = malformed;
        view.records = &records;
        view.source_lag = board.source_lag(followed.as_deref());
        board.show(&mut view, &lag);
        say.report().tick(&view);
    })
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

/// An option a run on workers does not take (the command exits 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Watched pattern paths ([`Config::watch`]) of an input that is not
    /// live: a file's chunks are read by every worker, and no one reader
    /// takes a reload.
    Watch,
    /// Watched pattern paths with checkpoints: a cut does not keep the
    /// rules in force yet (the one checkpoint format will).
    WatchCheckpoint,
    /// Control records in the input ([`Config::rules_from_stream`]) with
    /// checkpoints: a cut does not keep the rules in force yet (the one
    /// checkpoint format will).
    RulesFromStreamCheckpoint,
    /// A source's rules stream ([`Config::source_rules`]: a Kafka rules
    /// topic) with checkpoints: a cut does not keep the rules in force yet
    /// (the one checkpoint format will).
    SourceRules,
    /// Processing time.
    ProcessingTime,
    /// Event time from the records' own times without sources that give
    /// them ([`Workers::with_sources`]: a Kafka source's): a file's
    /// records have none.
    RecordTime,
    /// A checkpoint with the output on standard output (process 0).
    CheckpointNeedsOutput,
    /// Checkpoints every number of events.
    CheckpointEveryEvents,
    /// Output per worker without an output file.
    OutputPerWorkerNeedsOutput,
    /// A rule that writes to a list (`then add`, `then remove`) or reads a
    /// rolling indicator: on workers each would see only its own keys'
    /// writes and events, and give other records than one engine (the
    /// writes are not carried across workers yet, issue 40).
    ListsAndIndicators,
    /// Several processes with the output on standard output (process 0).
    ProcessesNeedOutput,
    /// Records to a sink ([`Workers::with_sink`]) with several processes
    /// and checkpoints (the cut the sink resumes from is process 0's to
    /// choose, and the other processes do not learn it yet).
    SinkProcesses,
    /// Records to a sink with output per worker.
    SinkOutputPerWorker,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Watch => "--watch with --workers needs live input (--follow FILE or standard input): the chunks of a file are read by every worker, and no one reader takes the reload",
            Refusal::WatchCheckpoint => "--watch with --checkpoint is not supported with --workers or --processes yet (their checkpoints do not keep the rules a reload put in force)",
            Refusal::RulesFromStreamCheckpoint => "--rules-from-stream with --checkpoint is not supported with --workers or --processes yet (their checkpoints do not keep the rules a control record put in force)",
            Refusal::SourceRules => "--rules-topic with --checkpoint is not supported with --workers or --processes yet (their checkpoints do not keep the rules a rules record put in force)",
            Refusal::ProcessingTime => {
                "--time processing is not supported with --workers or --processes"
            }
            Refusal::RecordTime => {
                "--time kafka with --workers or --processes needs a Kafka source (--events kafka://...)"
            }
            Refusal::CheckpointNeedsOutput => "--checkpoint with --workers needs --output FILE",
            Refusal::CheckpointEveryEvents => {
                "--checkpoint-every with --workers takes a duration (not a number of events)"
            }
            Refusal::OutputPerWorkerNeedsOutput => "--output-per-worker needs --output FILE",
            Refusal::ListsAndIndicators => {
                "rules that write to lists or read indicators are not supported with --workers or --processes yet (each worker would see only its own keys' writes and events; run them on one engine)"
            }
            Refusal::ProcessesNeedOutput => {
                "--processes needs --output FILE (timely's networking may print on standard output)"
            }
            Refusal::SinkProcesses => {
                "--output and --late kafka://... with --checkpoint are not supported with --processes yet (without --checkpoint, or with --workers, they are)"
            }
            Refusal::SinkOutputPerWorker => {
                "--output-per-worker needs --output FILE (not kafka://...)"
            }
        })
    }
}

/// Why a checkpoint folder's cut cannot be resumed on this run.
#[derive(Debug)]
#[non_exhaustive]
pub enum Mismatch {
    /// Taken with another chunk size.
    ChunkBytes,
    /// Taken with (`true`) or without output per worker, this run the
    /// other way.
    OutputPerWorker {
        /// Was it taken with it?
        then: bool,
    },
    /// Taken on another number of workers, which this run cannot resume
    /// on: with output per worker (`follow` false) or of a followed file.
    Workers {
        /// Workers in all then.
        then: usize,
        /// Workers in all now.
        now: usize,
        /// Of a followed file (else with output per worker).
        follow: bool,
    },
    /// Taken on another number of workers, which a run over sources of
    /// the library's user ([`Workers::with_sources`]) that do not name
    /// their splits ([`Source::split_names`]) cannot resume on: each
    /// worker's source goes on from its own place.
    SourcesWorkers {
        /// Workers in all then.
        then: usize,
        /// Workers in all now.
        now: usize,
    },
    /// Taken on another number of workers, with sources of the library's
    /// user: the place of old worker `index`'s source cannot be dealt to
    /// the new workers.
    Shares {
        /// The old worker.
        index: usize,
        /// Why.
        why: String,
    },
    /// Taken on another number of workers, with sources of the library's
    /// user: a source of this run cannot go on from the old sources'
    /// places ([`Source::position_of_shares`]): why.
    Sources(String),
    /// Taken by another command: what differs.
    OtherCommand(String),
    /// The checkpoint of a run without workers (one engine) cannot be
    /// resumed on workers: why.
    Single(String),
    /// The cut of workers cannot be resumed on one engine: why.
    ToOneEngine(String),
    /// A worker's state does not fit.
    Worker {
        /// Its number.
        index: usize,
        /// Why.
        source: cepheid_engine::Error,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::ChunkBytes => f.write_str("it was taken with another --chunk-bytes"),
            Mismatch::OutputPerWorker { then } => {
                let (then, now) = match then {
                    true => ("with", "without"),
                    false => ("without", "with"),
                };
                write!(
                    f,
                    "it was taken {then} --output-per-worker, this run is {now}"
                )
            }
            Mismatch::Workers {
                then,
                now,
                follow: false,
            } => write!(
                f,
                "it was taken on {then} workers in all, not {now} (a checkpoint with --output-per-worker resumes on the same number of workers)"
            ),
            Mismatch::Workers {
                then,
                now,
                follow: true,
            } => write!(
                f,
                "it was taken on {then} workers in all, not {now} (a checkpoint of a followed file resumes on the same number of workers)"
            ),
            Mismatch::SourcesWorkers { then, now } => write!(
                f,
                "it was taken on {then} workers in all, not {now} (a checkpoint of sources that do not name their splits resumes on the same number of workers, each worker with its own)"
            ),
            Mismatch::Shares { index, why } => {
                write!(f, "worker {index}: {why}")
            }
            Mismatch::Sources(why) => write!(
                f,
                "its sources' places cannot be dealt to the workers of this run: {why}"
            ),
            Mismatch::OtherCommand(d) => write!(f, "it belongs to another command ({d})"),
            Mismatch::Single(why) => write!(f, "the checkpoint of a run without --workers: {why}"),
            Mismatch::ToOneEngine(why) => write!(
                f,
                "it was taken on workers, and one engine cannot go on from it: {why}"
            ),
            Mismatch::Worker { index, source } => {
                write!(f, "worker {index}: {}", source.message())
            }
        }
    }
}

/// Why a run on workers could not start, or stopped on its own.
#[non_exhaustive]
pub enum Error {
    /// An option it does not take (usage).
    Refused(Refusal),
    /// A pattern could not be compiled.
    Pattern {
        /// Its name.
        name: String,
        /// Why.
        source: cepheid_engine::Error,
    },
    /// This process's number is not below the number of processes (usage).
    ProcessNumber {
        /// `process`.
        process: usize,
        /// `processes`.
        processes: usize,
    },
    /// The hostfile cannot be read.
    Hostfile {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line of the hostfile is not one `host:port` (usage).
    HostfileLine {
        /// Its path.
        path: PathBuf,
        /// The line's number.
        line: usize,
        /// The line.
        text: String,
    },
    /// The hostfile has fewer addresses than processes (usage).
    Addresses {
        /// Its path.
        path: PathBuf,
        /// Addresses found.
        found: usize,
        /// Processes.
        processes: usize,
    },
    /// An error of the runtime's pieces: opening the input or an output,
    /// creating the checkpoint folder, its locks
    /// ([`cepheid_runtime::Error::is_checkpoint`]: one the command exits
    /// 5 on).
    Runtime(cepheid_runtime::Error),
    /// The folder's last complete cut cannot be read (corrupt, another
    /// version): why.
    Cut {
        /// The folder.
        folder: PathBuf,
        /// Why.
        why: CutError,
    },
    /// The folder's last complete cut does not fit this run.
    Resume {
        /// The folder.
        folder: PathBuf,
        /// Why.
        why: Mismatch,
    },
    /// An output cannot be truncated to its length at the cut.
    Truncate {
        /// The output.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The unfinished cuts cannot be deleted.
    ClearUnfinished {
        /// The folder.
        folder: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another process runs another command (usage): what differs.
    Differ(String),
    /// The workers (or the connections to the other processes) could not
    /// start.
    Start(String),
    /// The connection to another process was lost.
    ConnectionLost {
        /// With checkpoints (the processes go on from the last cut).
        checkpoint: bool,
    },
    /// A worker failed (said after the summary: [`Outcome::failed`]).
    Worker {
        /// Why (its panic).
        why: String,
        /// Several processes (another may have stopped).
        cluster: bool,
        /// With checkpoints.
        checkpoint: bool,
    },
}

impl Error {
    /// Is it about an option or a layout the run does not take (the
    /// command's usage errors, exit 2)?
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Refused(_)
                | Error::ProcessNumber { .. }
                | Error::HostfileLine { .. }
                | Error::Addresses { .. }
                | Error::Differ(_)
        )
    }

    /// Is it about a checkpoint that cannot be used, or a folder or output
    /// another run holds (exit 5)?
    pub fn is_checkpoint(&self) -> bool {
        match self {
            Error::Runtime(e) => e.is_checkpoint(),
            Error::Cut { .. } | Error::Resume { .. } | Error::Truncate { .. } => true,
            _ => false,
        }
    }
}

/// How to go on after a lost process.
fn hint(checkpoint: bool) -> &'static str {
    if checkpoint {
        ": start every process again with the same --checkpoint, they go on from its last complete cut"
    } else {
        ": start every process again"
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(why) => write!(f, "{why}"),
            Error::Pattern { name, source } => {
                write!(f, "pattern `{name}`: {}", source.message())
            }
            Error::ProcessNumber { process, processes } => {
                write!(f, "--process {process} is not below --processes {processes}")
            }
            Error::Hostfile { path, source } => {
                write!(f, "cannot read the hostfile {}: {source}", path.display())
            }
            Error::HostfileLine { path, line, text } => write!(
                f,
                "{}:{line}: one host:port per line, not `{text}`",
                path.display()
            ),
            Error::Addresses {
                path,
                found,
                processes,
            } => write!(
                f,
                "the hostfile {} has {found} addresses for {processes} processes",
                path.display()
            ),
            Error::Runtime(e) => write!(f, "{e}"),
            Error::Cut { folder, why } => write!(f, "checkpoint in {}: {why}", folder.display()),
            Error::Resume { folder, why } => write!(
                f,
                "cannot resume from the checkpoint in {}: {why}",
                folder.display()
            ),
            Error::Truncate { path, source } => {
                write!(f, "cannot resume {}: {source}", path.display())
            }
            Error::ClearUnfinished { folder, source } => write!(
                f,
                "cannot clear the unfinished cuts in {}: {source}",
                folder.display()
            ),
            Error::Differ(why) => f.write_str(why),
            Error::Start(why) => write!(f, "cannot start the workers: {why}"),
            Error::ConnectionLost { checkpoint } => write!(
                f,
                "the connection to another process was lost (it stopped, or its machine or the network went away); this process stops too{}",
                hint(*checkpoint)
            ),
            Error::Worker {
                why,
                cluster: true,
                checkpoint,
            } => write!(
                f,
                "a worker failed: {why} (with --processes: another process may have stopped){}",
                hint(*checkpoint)
            ),
            Error::Worker { why, .. } => write!(f, "a worker failed: {why}"),
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
            Error::Pattern { source, .. } => Some(source),
            Error::Resume {
                why: Mismatch::Worker { source, .. },
                ..
            } => Some(source),
            Error::Hostfile { source, .. }
            | Error::Truncate { source, .. }
            | Error::ClearUnfinished { source, .. } => Some(source),
            Error::Runtime(e) => Some(e),
            Error::Cut { why, .. } => Some(why),
            _ => None,
        }
    }
}

impl From<cepheid_runtime::Error> for Error {
    fn from(e: cepheid_runtime::Error) -> Error {
        Error::Runtime(e)
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
pub struct Handle(Vec<SyncSender<Message>>);

impl Handle {
    /// Stops the input (every source of this process); `why` is said
    /// (`cepheid: stopped by WHY`) and kept in [`End::Stopped`].
    pub fn stop(&self, why: &str) {
        for tx in &self.0 {
            let _ = tx.send(Message::Stop(why.to_string()));
        }
    }

    /// Reads the pattern paths again ([`Config::watch`]): their rules
    /// apply on every worker from the live input's watermark then + 1;
    /// `why` names the reload in what is said (`cepheid: WHY: rules
    /// reloaded:`). Nothing without [`Config::watch`].
    pub fn reload(&self, why: &str) {
        for tx in &self.0 {
            let _ = tx.send(Message::Reload(cepheid_runtime::source::Reload::Asked(
                why.to_string(),
            )));
        }
    }
}

/// What workers send to worker 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Chunk {
    /// Output records.
    Out(Block),
    /// Late records.
    Late(Block),
    /// A worker's counts, at the end (boxed: they are large, the blocks of
    /// records many).
    Summary(Box<Counts>),
}

/// A worker's counts (worker 0's include the sources' events and late
/// events).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Counts {
    events: u64,
    late: u64,
    matches: u64,
    timeouts: u64,
    unusable_keys: u64,
    dropped_runs: u64,
    dropped_keys: u64,
    /// Did more keys go over the limit than a worker remembers
    /// (`MAX_DROP_KEYS`)?
    dropped_keys_overflow: bool,
    capped_runs: u64,
    forced: u64,
    waiting: u64,
    malformed: u64,
    /// Changes of rules made (worker 0), refused (by the readers and
    /// worker 0), and partial matches they discarded.
    reloads: u64,
    reloads_refused: u64,
    /// Records of a source's rules stream read after event time passed
    /// theirs (applied at once).
    reloads_late: u64,
    discarded: u64,
    /// The first read error of the worker's part (its input, and why).
    read_error: Option<(String, String)>,
    /// The malformed line that stopped the worker's part with `strict`
    /// (its input, its line, why).
    strict_stop: Option<(String, u64, String)>,
    /// Each pattern's counts (the plan's order).
    patterns: Vec<PatternStats>,
    /// What the worker's reader saw of the patterns' fields (merged over
    /// the workers: process 0 says at the end what none carried).
    fields: Option<FieldsSeen>,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.events += other.events;
        self.late += other.late;
        self.matches += other.matches;
        self.timeouts += other.timeouts;
        self.unusable_keys += other.unusable_keys;
        self.dropped_runs += other.dropped_runs;
        self.dropped_keys += other.dropped_keys;
        self.dropped_keys_overflow |= other.dropped_keys_overflow;
        self.capped_runs += other.capped_runs;
        self.forced += other.forced;
        self.waiting += other.waiting;
        self.malformed += other.malformed;
        self.reloads += other.reloads;
        self.reloads_refused += other.reloads_refused;
        self.reloads_late += other.reloads_late;
        self.discarded += other.discarded;
        if self.read_error.is_none() {
            self.read_error.clone_from(&other.read_error);
        }
        if self.strict_stop.is_none() {
            self.strict_stop.clone_from(&other.strict_stop);
        }
        add_patterns(&mut self.patterns, &other.patterns);
        match (&mut self.fields, &other.fields) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.fields = Some(theirs.clone()),
            (_, None) => {}
        }
    }
}

/// What a worker's reader found besides events (shared with the reader
/// thread of live input).
#[derive(Default)]
struct ReadCounts {
    /// Events read by the live input's reader (a file's parts count
    /// theirs in [`PartItems::events`]).
    events: AtomicU64,
    malformed: AtomicU64,
    /// The first read error: the input and why.
    read_error: Mutex<Option<(String, String)>>,
    /// The malformed line that stopped the input with `strict`.
    strict_stop: Mutex<Option<(String, u64, String)>>,
    /// More keys over `--max-runs-per-key` than the worker remembers.
    drops_overflow: AtomicBool,
    /// Changes of rules made (worker 0) and refused, and records of a
    /// source's rules stream read late.
    reloads: AtomicU64,
    reloads_refused: AtomicU64,
    reloads_late: AtomicU64,
}

impl ReadCounts {
    fn malformed_line(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// A read error on `origin`.
    fn read_error(&self, origin: &str, why: impl fmt::Display) {
        let mut first = self.read_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| (origin.to_string(), why.to_string()));
    }

    /// A malformed line that stops the input with `strict`.
    fn strict_stop(&self, origin: &str, line: u64, why: &str) {
        let mut first = self.strict_stop.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| (origin.to_string(), line, why.to_string()));
    }

    fn read_error_now(&self) -> Option<(String, String)> {
        self.read_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn strict_stop_now(&self) -> Option<(String, u64, String)> {
        self.strict_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
    /// Live input read by this process: the channel of the reader's
    /// batches and of [`Handle::stop`].
    messages: Option<(SyncSender<Message>, Receiver<Message>)>,
    /// Sources of the library's user ([`Workers::with_sources`]), one per
    /// worker of this process, each with the channel of its reader's
    /// batches and of [`Handle::stop`].
    sources: Option<Vec<OwnSource>>,
    /// Where the records go instead of the files ([`Workers::with_sink`]).
    sink: Option<Box<dyn cepheid_runtime::Sink>>,
}

/// A worker's own [`Source`] ([`Workers::with_sources`]), `None` for a
/// worker that reads nothing, and the channel of its reader thread.
type OwnSource = (
    Option<Box<dyn Source>>,
    SyncSender<Message>,
    Receiver<Message>,
);

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
    /// processing time, watched patterns, control records or rules
    /// stream; metrics are the command's), plans the patterns (every
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
        let messages = (live && scale.first_process()).then(|| mpsc::sync_channel(BATCHES_AHEAD));
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
                    "warning: --workers {} on a machine that runs {} threads at once: the workers share its cores, which only adds their coordination; give at most --workers {} here",
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
    /// ([`spawn_reader`]) into its worker's source, with per-split
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
            let (tx, rx) = mpsc::sync_channel(BATCHES_AHEAD);
            own.push((source, tx, rx));
        }
        self.sources = Some(own);
        Ok(self)
    }

    /// The handle that stops the live input (`None` when this process
    /// reads none: a file's parts end by themselves).
    pub fn handle(&self) -> Option<Handle> {
        if let Some(sources) = &self.sources {
            let readers = sources.iter().filter(|(s, _, _)| s.is_some());
            let senders: Vec<_> = readers.map(|(_, tx, _)| tx.clone()).collect();
            return (!senders.is_empty()).then_some(Handle(senders));
        }
        let (tx, _) = self.messages.as_ref()?;
        Some(Handle(vec![tx.clone()]))
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
            plan,
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
        refuse_outputs(&config, &scale, sink.is_some()).map_err(Error::Refused)?;
        if config.watch && sources.is_some() {
            // (each worker's source reads its own share: no one reader)
            return Err(Error::Refused(Refusal::Watch));
        }
        // Watched pattern paths: their changes go to the live input's
        // reader, which reads them again (held for the whole run).
        let _watch = match (&messages, config.watch) {
            (Some((tx, _)), true) => {
                match cepheid_runtime::source::watch_patterns(&config.patterns, tx.clone()) {
                    Ok(watch) => Some(watch),
                    Err(why) => {
                        say!(say, Warning, "{why}");
                        None
                    }
                }
            }
            _ => None,
        };
        // What one engine's run refuses when it is made, the same.
        config
            .check_reading(sources.is_none())
            .map_err(|c| Error::Runtime(cepheid_runtime::Error::Conflict(c)))?;
        if scale.first_process() && sink.is_none() {
            for notice in config.start_warnings() {
                say.report().notice(notice);
            }
        }
        if let Some(sink) = sink.as_deref() {
            if sink.commits_with_checkpoints() && config.checkpoint.is_none() {
                let conflict = cepheid_runtime::Conflict::SinkNeedsCheckpoints {
                    sink: sink.describe(cepheid_runtime::Kind::Match),
                };
                return Err(Error::Runtime(cepheid_runtime::Error::Conflict(conflict)));
            }
        }
        if config.time == Time::Record && sources.is_none() {
            return Err(Error::Refused(Refusal::RecordTime));
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
        let first_process = scale.first_process();
        let shape = (scale.process_count(), scale.workers);
        let (checkpoint, resume, shares) = match &config.checkpoint {
            Some(dir) => {
                let (checkpoint, resume, shares) = checkpoints(
                    &config,
                    &scale,
                    sources.as_deref(),
                    sink.as_deref_mut(),
                    dir,
                    &plan,
                    shape,
                    &say,
                )?;
                if sink.as_ref().is_some_and(|s| s.commits_at_end()) {
                    checkpoint.cuts.at_end();
                } else if !live(&config) && sources.is_none() {
                    // A file: a last cut at its end, before the end moves
                    // event time on (as one engine's checkpoint there), from
                    // which a run over the file grown since goes on.
                    checkpoint.cuts.before_end();
                }
                (Some(Arc::new(checkpoint)), resume, shares)
            }
            None => (None, None, Vec::new()),
        };
        // (late events are made for a sink that takes them)
        let sink_takes_late = sink.as_ref().is_some_and(|s| s.takes_late());
        let writers = match (first_process, sink) {
            (true, Some(sink)) => Some(Writers::with_sink(sink)),
            (true, None) => Some(Writers::open(&config, &scale, resume.is_some())?),
            (false, _) => None,
        };
        if let (cepheid_runtime::Input::File(path), None) = (&config.input, &sources) {
            if let Err(source) = File::open(path) {
                return Err(Error::Runtime(cepheid_runtime::Error::Io {
                    doing: cepheid_runtime::Doing::Open,
                    path: path.display().to_string(),
                    source,
                }));
            }
        }
        let live = live(&config) || sources.is_some();
        // A followed file's lag (bytes behind its end) is its one reader's.
        let followed = match (&config.input, config.follow) {
            (cepheid_runtime::Input::File(path), true) => Some(path.clone()),
            _ => None,
        };
        let job = Arc::new(Job {
            plan,
            format: config.format,
            time_field: config.time_field().unwrap_or("ts").to_string(),
            record_time: config.time == Time::Record,
            events: config.input.path().to_path_buf(),
            origin: config.input.describe(),
            max_delay: millis(config.max_delay),
            max_waiting: config.max_waiting,
            idle_timeout: config.idle_timeout,
            live,
            messages: Mutex::new(messages),
            sources: sources
                .map(|sources| Mutex::new(sources.into_iter().map(Some).collect::<Vec<_>>())),
            first_worker: scale.own_workers().start,
            follow: config.follow,
            flush: config.flush_at_end,
            strict: config.strict,
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
            writers: writers.map(|w| Arc::new(Mutex::new(w))),
            per_worker: scale
                .output_per_worker
                .then(|| config.output.clone())
                .flatten(),
            write_failed: AtomicBool::new(false),
            stop: Arc::default(),
            cluster: scale.cluster(),
            checkpoint,
            resume: Mutex::new(resume.map(|r| r.workers)),
            shares: Mutex::new(shares),
            checkpoint_failed: Arc::default(),
            say: say.clone(),
            board: board.clone(),
            fields: fields.clone(),
            controls: (matches!(config.format, Format::JsonLines) || config.source_rules).then(
                || {
                    Arc::new(Controls {
                        config: config.clone(),
                    })
                },
            ),
            reloads: config.watch.then(|| {
                Arc::new(Controls {
                    config: config.clone(),
                })
            }),
        });
        let started = Instant::now();
        let observing = board.as_ref().map(|board| {
            let stop = Arc::new(AtomicBool::new(false));
            let thread = observe(
                Arc::clone(board),
                patterns.clone(),
                followed.clone(),
                say.clone(),
                Arc::clone(&stop),
            );
            (thread, stop)
        });
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
        if let Some((thread, stop)) = observing {
            stop.store(true, Ordering::Relaxed);
            thread.thread().unpark();
            let _ = thread.join();
        }
        let with_checkpoint = config.checkpoint.is_some();
        let Ok(results) = joined else {
            return Err(Error::ConnectionLost {
                checkpoint: with_checkpoint,
            });
        };
        let mut outcome = Outcome {
            summary: None,
            said_errors: job.write_failed.load(Ordering::Relaxed)
                || job.checkpoint_failed.load(Ordering::Relaxed),
            failed: Vec::new(),
        };
        for result in results {
            match result {
                Ok(Ok(None)) => {}
                Ok(Ok(Some((writers, counts, stopped)))) => {
                    if let (Some(fields), None) = (&fields, &stopped) {
                        // The end of the input: what no reader of any
                        // process saw (their views came with the counts).
                        fields.at_end(counts.fields.as_ref(), &say);
                    }
                    let mut writers = lock(&writers);
                    let finished = finish(
                        &config,
                        &scale,
                        &mut writers,
                        counts,
                        stopped,
                        started,
                        &say,
                    );
                    outcome.summary = Some(finished);
                }
                Ok(Err(why)) | Err(why) => outcome.failed.push(Error::Worker {
                    why,
                    cluster,
                    checkpoint: with_checkpoint,
                }),
            }
        }
        if let Some(board) = &board {
            // The last tick: every worker published its numbers at its
            // end. This process's own (the other processes show theirs),
            // which on one process are the summary's.
            let (workers, [events, late, malformed]) = board.gather(&patterns);
            let records = board.records();
            let mut view = RunView::of_workers(&workers);
            (view.events_read, view.late, view.malformed) = (events, late, malformed);
            view.records = &records;
            if let (false, Some(summary)) = (cluster, &outcome.summary) {
                (view.events_read, view.late, view.malformed) =
                    (summary.events, summary.late, summary.malformed);
            }
            view.source_lag = board.source_lag(followed.as_deref());
            let lag = board.consumer_lag();
            board.show(&mut view, &lag);
            view.finished = true;
            say.report().tick(&view);
        }
        Ok(outcome)
    }
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
    if config.watch && config.checkpoint.is_some() {
        return Err(Refusal::WatchCheckpoint);
    }
    if config.rules_from_stream && config.checkpoint.is_some() {
        return Err(Refusal::RulesFromStreamCheckpoint);
    }
    if config.source_rules && config.checkpoint.is_some() {
        return Err(Refusal::SourceRules);
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
/// What every worker of the process shares.
struct Job {
    plan: Plan<Record>,
    format: Format,
    time_field: String,
    /// Event time is each record's own (`Time::Record`: a Kafka record's
    /// timestamp), set by the sources' readers; the time field is not
    /// read.
    record_time: bool,
    events: PathBuf,
    /// The input's name in messages (`standard input`, its path).
    origin: String,
    max_delay: i64,
    max_waiting: usize,
    idle_timeout: Option<Duration>,
    /// Standard input or `--follow`: read on a thread of its own by
    /// worker 0 (of process 0), output flushed when the input waits.
    live: bool,
    /// Live input: the channel of the reader's batches and the signals.
    messages: Mutex<Option<(SyncSender<Message>, Receiver<Message>)>>,
    /// Sources of the library's user, each taken by its worker (by its
    /// index in the process), instead of `events`.
    sources: Option<Mutex<Vec<Option<OwnSource>>>>,
    /// The index of this process's first worker.
    first_worker: usize,
    follow: bool,
    flush: bool,
    strict: bool,
    keep_late: bool,
    /// What the process's workers said of the limits on partial matches.
    notices: Arc<LimitNotices>,
    /// Was the stop of the live input said (by one of its readers)?
    stop_said: Arc<AtomicBool>,
    /// Did a worker of the process panic? Then the others stop too.
    failing: Arc<Failing>,
    chunk_bytes: u64,
    /// The outputs of process 0: worker 0 writes the late events and the
    /// records sent to it, each worker its own records (`write.rs`).
    writers: Option<write::Shared>,
    /// With `--output-per-worker`, the `--output` path each worker adds
    /// its number to.
    per_worker: Option<PathBuf>,
    /// Did a worker fail to write its own output file?
    write_failed: AtomicBool,
    /// Set by a part that met a malformed line with `--strict`.
    stop: Arc<AtomicBool>,
    /// Several processes (`--processes`).
    cluster: bool,
    /// With `--checkpoint`: where and how often.
    checkpoint: Option<Arc<Checkpoint>>,
    /// Resumed: each worker's file (taken by the workers).
    resume: Mutex<Option<Vec<cut::WorkerFile>>>,
    /// Resumed on another number of workers, with sources of the
    /// library's user: where each worker's source of this process goes
    /// on (by its index in the process; taken by the workers).
    shares: Mutex<Vec<Option<Share>>>,
    /// Could a checkpoint not be written? (Exit 4.)
    checkpoint_failed: Arc<AtomicBool>,
    /// What the run says.
    say: Say,
    /// Where each worker publishes its numbers (an observing report).
    board: Option<Arc<Board>>,
    /// The warnings about fields no event carried
    /// ([`Config::field_warnings`]), which the readers tell what they saw.
    fields: Option<Arc<Fields>>,
    /// Control records (JSON lines), read as one engine reads them.
    controls: Option<Arc<Controls>>,
    /// Reloads of the pattern paths (`--watch`, [`Handle::reload`]), read
    /// by the live input's reader.
    reloads: Option<Arc<Controls>>,
}

/// Control records (`$rules`, `$rules_file`) as the workers' readers read
/// them: each loaded and checked where it is read (said there, once, when
/// refused: the single run's words), and a good one handed to the source
/// as [`SourceItem::Rules`], to apply at its source's watermark + 1 on
/// every worker ([`Plan::changing`]).
struct Controls {
    config: Config,
}

impl Controls {
    fn read(
        &self,
        control: &Control,
        name: &str,
        offset: u64,
        counts: &ReadCounts,
        say: &Say,
    ) -> Option<SourceItem<Record>> {
        let where_ = format!("{name} ({})", control.describe());
        let refused = |why: &str| {
            counts.reloads_refused.fetch_add(1, Ordering::Relaxed);
            say!(
                say,
                Warning,
                "cepheid: {where_}: {why}; the old rules go on"
            );
            None
        };
        let loaded = match control.load(&self.config, false, name) {
            Ok(loaded) => loaded,
            Err(why) => return refused(&format!("refused: {why}")),
        };
        self.checked(loaded, where_, offset, counts, say)
    }

    /// A record of a source's rules stream (a Kafka rules topic), read by
    /// the reader of the source that reads the stream (one for the run):
    /// placed as the source says, allowed without
    /// [`Config::rules_from_stream`] (the operator named the stream). Its
    /// reader gave it after a watermark just before its time (or, late,
    /// at once), so that it applies at its time on every worker.
    fn source_rules(
        &self,
        rules: &cepheid_runtime::SourceRules,
        place: &str,
        offset: u64,
        counts: &ReadCounts,
        say: &Say,
    ) -> Option<SourceItem<Record>> {
        if let (Some(time), Some(watermark)) = (rules.time, rules.late) {
            counts.reloads_late.fetch_add(1, Ordering::Relaxed);
            say!(
                say,
                Warning,
                "cepheid: {place}: a rules record of time {} read when event time was already at {}: applied now, late (docs/dynamic-rules.md)",
                cepheid_engine::io::format_rfc3339(time),
                cepheid_engine::io::format_rfc3339(watermark)
            );
        }
        let where_ = format!("{place} ({})", rules.control.describe());
        match rules.control.load(&self.config, true, place) {
            Ok(loaded) => self.checked(loaded, where_, offset, counts, say),
            Err(why) => {
                counts.reloads_refused.fetch_add(1, Ordering::Relaxed);
                say!(
                    say,
                    Warning,
                    "cepheid: {where_}: refused: {why}; the old rules go on"
                );
                None
            }
        }
    }

    /// A reload of the pattern paths (`--watch`, [`Handle::reload`]).
    fn reload(
        &self,
        why: &cepheid_runtime::source::Reload,
        offset: u64,
        counts: &ReadCounts,
        say: &Say,
    ) -> Option<SourceItem<Record>> {
        use cepheid_runtime::source::Reload;
        let where_ = match why {
            Reload::Changed => "the pattern files changed".to_string(),
            Reload::Asked(why) => why.clone(),
            Reload::Resumed => "the pattern files changed since the checkpoint".to_string(),
        };
        match cepheid_runtime::source::reload_patterns(&self.config.patterns) {
            Ok(loaded) => self.checked(loaded, where_, offset, counts, say),
            Err(empty) => {
                // An editor rewriting it: its next change reloads.
                say!(
                    say,
                    Warning,
                    "cepheid: {where_}: {} is empty (being written?): not applied, the rules go on until it is written",
                    empty.display()
                );
                None
            }
        }
    }

    /// `loaded` checked: the change to hand on, or `None` when refused
    /// (said, counted).
    fn checked(
        &self,
        mut loaded: cepheid_syntax::Loaded,
        where_: String,
        offset: u64,
        counts: &ReadCounts,
        say: &Say,
    ) -> Option<SourceItem<Record>> {
        let refused = |why: &str| {
            counts.reloads_refused.fetch_add(1, Ordering::Relaxed);
            say!(
                say,
                Warning,
                "cepheid: {where_}: {why}; the old rules go on"
            );
            None
        };
        let texts = (loaded.sources.iter())
            .map(|source| (source.name.clone(), source.text.clone()))
            .collect();
        let checked = cepheid_engine::rules::check(&mut loaded);
        let diagnostics = loaded.render();
        if !diagnostics.is_empty() {
            say.report().notice(Notice::new(
                Level::Warning,
                diagnostics.strip_suffix('\n').unwrap_or(&diagnostics),
            ));
        }
        let Ok(rules) = Rules::from_checked(loaded, checked) else {
            return refused("the new rules have errors");
        };
        if rules.patterns().iter().any(uses_lists_or_indicators) {
            return refused(
                "the new rules use lists or indicators, which --workers and --processes do not run yet",
            );
        }
        Some(SourceItem::Rules {
            offset,
            place: where_,
            texts,
        })
    }
}

/// `--checkpoint DIR` with `--workers`: the cuts of the run.
struct Checkpoint {
    dir: PathBuf,
    every: Duration,
    cuts: Arc<Cuts>,
    /// What `complete` says (its epoch and lengths set at each cut).
    marker: cut::Marker,
    /// The lines of the input read at the cut resumed from (none when
    /// starting), over every worker: no worker reads them again.
    read: Arc<cut::Read>,
    /// The locks of the folder and of the outputs (`lock.rs`), held for
    /// the whole run.
    _locks: Vec<File>,
    /// The number of the last cut completed (that resumed from, 0 when
    /// starting): each cut's is the next.
    number: AtomicU64,
}

/// What [`checkpoints`] gives: the cuts of the run, the cut it resumes
/// from, and where this process's sources go on from it on another number
/// of workers.
type Checkpoints = (Checkpoint, Option<cut::Resume>, Vec<Option<Share>>);

/// Reads the checkpoint folder of a run on `layout` (processes, workers
/// per process): its last complete cut (checked whole and against this
/// command and plan), and the cuts to come. Exit 5 when it cannot be used,
/// 4 when it cannot be read. Every process reads the folder; only process
/// 0 truncates the outputs and deletes the unfinished cuts.
///
/// With `sources` (the library's user's, [`Workers::with_sources`]) and
/// another number of workers than the cut's, also where each of them goes
/// on ([`Share`], by its worker's index in this process): a cut of sources
/// without [`Source::split_names`] is refused then.
///
/// With a `sink` ([`Workers::with_sink`]), the cut resumed from is the one
/// it says it committed last ([`chosen`]), and the cuts after it go.
#[allow(clippy::too_many_arguments)]
fn checkpoints(
    config: &Config,
    scale: &Scale,
    sources: Option<&[OwnSource]>,
    sink: Option<&mut (dyn cepheid_runtime::Sink + 'static)>,
    dir: &Path,
    plan: &Plan<Record>,
    layout: (usize, usize),
    say: &Say,
) -> Result<Checkpoints, Error> {
    use cepheid_runtime::lock;
    let first_process = scale.first_process();
    if let Err(source) = std::fs::create_dir_all(dir) {
        return Err(Error::Runtime(cepheid_runtime::Error::Io {
            doing: cepheid_runtime::Doing::CreateFolder,
            path: dir.display().to_string(),
            source,
        }));
    }
    let output = config.output_path().to_path_buf();
    // Another run on this folder (this process's part of it), or on the
    // outputs, is refused before anything is read or changed.
    let process = scale.process;
    let mut locks = vec![lock::folder(dir, &lock::file_name(process))?];
    let to_sink = sink.is_some();
    if first_process && !scale.output_per_worker && !to_sink {
        locks.extend(lock::output(&output, "--output")?);
        if let Some(late) = &config.late {
            locks.extend(lock::output(late, "--late")?);
        }
    }
    let mut command = cepheid_runtime::checkpoint::command(config);
    let mut read = cut::Read::default();
    let mut shares = Vec::new();
    // A checkpoint of one engine (`DIR/checkpoint`) is read as the cut of
    // one worker while the folder holds no cut of its own; once a cut is
    // complete it is newer (the run went on from that checkpoint), and the
    // old file goes.
    let cut_error = |why| Error::Cut {
        folder: dir.to_path_buf(),
        why,
    };
    let single = cut::complete_epochs(dir).map_err(cut_error)?.is_empty() && has_single(dir);
    let resume = match (sink, single) {
        (Some(_), true) => {
            return Err(Error::Resume {
                folder: dir.to_path_buf(),
                why: Mismatch::Single(
                    "its output is a sink's (Kafka), which recovers on workers from cuts of workers: resume it without --workers".to_string(),
                ),
            })
        }
        (None, true) => {
            let chunk_bytes = scale.chunk_bytes;
            single::resume(dir, config, chunk_bytes, plan).map_err(|why| Error::Resume {
                folder: dir.to_path_buf(),
                why,
            })?
        }
        (Some(sink), false) => chosen(dir, sink)?,
        (None, false) => cut::read(dir).map_err(cut_error)?,
    };
    if !single && first_process && has_single(dir) {
        // (a cut made since the run went on from it)
        for name in [
            cepheid_runtime::checkpoint::FILE,
            cepheid_runtime::checkpoint::PREV,
        ] {
            match std::fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::ClearUnfinished {
                        folder: dir.to_path_buf(),
                        source: e,
                    })
                }
                _ => {}
            }
        }
    }
    if let (false, Some(resume), Some(now)) = (first_process, &resume, &mut command) {
        // The other processes write no output: theirs are not compared.
        if let Some(then) = &resume.marker.command {
            now.output.clone_from(&then.output);
            now.late.clone_from(&then.late);
        }
    }
    if let Some(resume) = &resume {
        let marker = &resume.marker;
        let (then, now) = (marker.processes * marker.workers, layout.0 * layout.1);
        let why = if marker.chunk_bytes != scale.chunk_bytes {
            Some(Mismatch::ChunkBytes)
        } else if marker.output_per_worker != scale.output_per_worker {
            Some(Mismatch::OutputPerWorker {
                then: marker.output_per_worker,
            })
        } else if scale.output_per_worker && then != now {
            // Each worker's own file: another count would leave old files
            // beside the new ones.
            Some(Mismatch::Workers {
                then,
                now,
                follow: false,
            })
        } else if sources.is_some_and(|sources| !rescalable(sources)) && then != now {
            // Each worker's source goes on from its own place: its splits
            // cannot be dealt again without their names.
            Some(Mismatch::SourcesWorkers { then, now })
        } else if config.follow && then != now {
            // One reader on worker 0: its place and clock would go on
            // whole, which `WorkerCut::rescale` does not do (it retires
            // every source).
            Some(Mismatch::Workers {
                then,
                now,
                follow: true,
            })
        } else {
            match (&marker.command, &command) {
                (Some(then), Some(now)) => then
                    .difference(now)
                    .map(|d| Mismatch::OtherCommand(d.to_string())),
                _ => None,
            }
        };
        if let Some(why) = why {
            return Err(Error::Resume {
                folder: dir.to_path_buf(),
                why,
            });
        }
        // Every worker's state is checked before any output is touched.
        let mut places = Vec::with_capacity(resume.workers.len());
        for (index, file) in resume.workers.iter().enumerate() {
            let check = WorkerCut::new(Cuts::new(), |_, _| {});
            let checked = check.restore(plan, &file.state).and_then(|_| {
                let sources = WorkerCut::saved_sources(&file.state)?;
                let place = sources.iter().find(|(s, _)| *s == 0);
                places.push(place.map_or(0, |(_, state)| state.position));
                Ok(())
            });
            if let Err(source) = checked {
                return Err(Error::Resume {
                    folder: dir.to_path_buf(),
                    why: Mismatch::Worker { index, source },
                });
            }
        }
        match resume.workers.first() {
            // (a followed file's places are its own: `input::Position`)
            Some(first) if !config.follow => read = first.read.after(&places),
            _ => {}
        }
        if let (Some(sources), true) = (sources, then != now) {
            shares =
                dealt(&resume.workers, sources, places.iter().max().copied()).map_err(|why| {
                    Error::Resume {
                        folder: dir.to_path_buf(),
                        why,
                    }
                })?;
        }
        // Each output at its length then and with the first bytes it had
        // (none in a cut of version 5).
        let mut outputs = Vec::new();
        if first_process && !marker.output_per_worker && !to_sink {
            outputs.push((output.clone(), marker.output, marker.output_head));
        }
        if let (true, false, Some(late)) = (first_process, to_sink, &config.late) {
            outputs.push((late.clone(), marker.late, marker.late_head));
        }
        if marker.output_per_worker {
            // This process's workers' own files, each at its length then.
            let first = scale.process * layout.1;
            for index in first..first + layout.1 {
                let file = resume.workers.get(index);
                let len = file.and_then(|f| f.own).unwrap_or(0);
                let head = file.and_then(|f| f.own_head);
                let path = PathBuf::from(format!("{}.{index}", output.display()));
                if len == 0 && !path.exists() {
                    continue;
                }
                outputs.push((path, len, head));
            }
        }
        for (path, len, head) in &outputs {
            // (a device or a FIFO is written as standard output is: not
            // truncated, at least once, `Config::start_warnings`)
            if !cepheid_runtime::is_regular(path) {
                continue;
            }
            let mut len = *len;
            // Shorter than then, or other first bytes: rotated since
            // (logrotate's `create` or `copytruncate`), started empty, as
            // the single run does (`rotate::rotated_since`; it was refused
            // for ever: issue 26).
            if let Some(rotated) = cepheid_runtime::rotate::rotated_since(path, len, *head) {
                say!(
                    say,
                    Warning,
                    "warning: checkpoint in {}: {rotated}",
                    dir.display()
                );
                len = 0;
            }
            // (an empty output deleted since is made again: nothing of it
            // is lost)
            let truncated = OpenOptions::new()
                .write(true)
                .create(len == 0)
                .truncate(false)
                .open(path)
                .and_then(|file| {
                    if file.metadata()?.len() < len {
                        return Err(io::Error::other("shorter than at the checkpoint"));
                    }
                    file.set_len(len)?;
                    file.sync_all()
                });
            if let Err(source) = truncated {
                return Err(Error::Truncate {
                    path: path.clone(),
                    source,
                });
            }
        }
        let said = |(p, w): (usize, usize)| {
            let workers = count(w as u64, "worker", "workers");
            if p == 1 {
                workers
            } else {
                format!("{p} processes x {workers}")
            }
        };
        let mut on = said(layout);
        if single {
            on = format!("{on}; it was taken on one engine, without --workers");
        } else if (marker.processes, marker.workers) != layout {
            on = format!(
                "{on}; it was taken on {}",
                said((marker.processes, marker.workers))
            );
        }
        say!(
            say,
            Info,
            "cepheid: resuming from checkpoint in {} ({on})",
            dir.display()
        );
    }
    if first_process {
        // Before any worker of this run writes a cut.
        if let Err(source) = cut::clear_unfinished(dir) {
            return Err(Error::ClearUnfinished {
                folder: dir.to_path_buf(),
                source,
            });
        }
    }
    let every = config
        .checkpoint_every
        .time
        .unwrap_or(Duration::from_secs(10));
    let checkpoint = Checkpoint {
        dir: dir.to_path_buf(),
        every,
        cuts: Cuts::new(),
        marker: cut::Marker {
            output_per_worker: scale.output_per_worker,
            ..cut::Marker::new(0, layout, scale.chunk_bytes, command)
        },
        read: Arc::new(read),
        _locks: locks,
        number: AtomicU64::new(resume.as_ref().map_or(0, |r| r.marker.number)),
    };
    Ok((checkpoint, resume, shares))
}

/// Does `dir` hold a checkpoint of one engine (a run without workers)?
fn has_single(dir: &Path) -> bool {
    [
        cepheid_runtime::checkpoint::FILE,
        cepheid_runtime::checkpoint::PREV,
    ]
    .iter()
    .any(|name| dir.join(name).exists())
}

/// The cut to resume from with a `sink` ([`Workers::with_sink`]): of the
/// complete cuts kept in `dir` (newest first: two when the run stopped
/// between the newest one's `complete` and the sink's commit), the one
/// the sink says it committed last ([`Sink::recover`](cepheid_runtime::Sink::recover),
/// told each one's number, its sources' positions put together and the
/// sink's state); `None` when it committed none (the run starts from its
/// sources' beginning). The cuts after the one chosen are deleted: never
/// committed, they are not to be resumed from again.
fn chosen(
    dir: &Path,
    sink: &mut (dyn cepheid_runtime::Sink + 'static),
) -> Result<Option<cut::Resume>, Error> {
    let folder = || dir.to_path_buf();
    let epochs = cut::complete_epochs(dir).map_err(|why| Error::Cut {
        folder: folder(),
        why,
    })?;
    if epochs.is_empty() {
        return Ok(None);
    }
    let mut cuts = Vec::with_capacity(epochs.len());
    let mut kept = Vec::with_capacity(epochs.len());
    for &epoch in &epochs {
        let resume = cut::read_at(dir, epoch).map_err(|why| Error::Cut {
            folder: folder(),
            why,
        })?;
        let shares = positions(&resume.workers).map_err(|why| Error::Resume {
            folder: folder(),
            why,
        })?;
        let sink_error = |e| Error::Runtime(cepheid_runtime::Error::Sink(e));
        kept.push(cepheid_runtime::sink::Checkpoint {
            number: resume.marker.number,
            source: sink.join_positions(&shares).map_err(sink_error)?,
            sink: cepheid_runtime::SinkState {
                data: resume.marker.sink.clone(),
                ..cepheid_runtime::SinkState::default()
            },
        });
        cuts.push(resume);
    }
    let index = sink
        .recover(&kept)
        .map_err(|e| Error::Runtime(cepheid_runtime::Error::Sink(e)))?;
    let keep = epochs.get(index).copied();
    cut::discard_after(dir, keep).map_err(|source| Error::ClearUnfinished {
        folder: folder(),
        source,
    })?;
    Ok((index < cuts.len()).then(|| cuts.swap_remove(index)))
}

/// The places of the workers' sources in a cut's files, with the index of
/// the worker (a worker without a source, or whose source read nothing,
/// has none: its sources start where they are).
fn places(files: &[cut::WorkerFile]) -> Result<Vec<(usize, SourcePlace)>, Mismatch> {
    let mut found = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let saved = WorkerCut::saved_sources(&file.state)
            .map_err(|source| Mismatch::Worker { index, source })?;
        for (_, state) in saved.iter().filter(|(s, _)| *s == 0) {
            if state.place.is_empty() {
                continue;
            }
            let place = SourcePlace::decode(&state.place).map_err(|e| Mismatch::Shares {
                index,
                why: format!("its source's place cannot be read: {e}"),
            })?;
            found.push((index, place));
        }
    }
    Ok(found)
}

/// The positions of the workers' sources in a cut's files ([`places`]).
fn positions(
    files: &[cut::WorkerFile],
) -> Result<Vec<cepheid_runtime::source::Position>, Mismatch> {
    Ok(places(files)?
        .into_iter()
        .map(|(_, p)| p.position)
        .collect())
}

/// Can a cut of `sources` resume on another number of workers? When each
/// names its splits ([`Source::split_names`]; a worker without a source
/// has none to name).
fn rescalable(sources: &[OwnSource]) -> bool {
    (sources.iter())
        .filter_map(|(source, _, _)| source.as_ref())
        .all(|source| source.split_names().is_some())
}

/// Where each of `sources` (this process's workers', in order) goes on
/// from the cut the old workers saved in `files`, on another number of
/// workers: its splits' watermarks from the old places that name them,
/// its position from theirs ([`Source::position_of_shares`]), its lines
/// above `lines` (the most an old source had read). Checked before any
/// output is touched: an old place that cannot be read or has no names,
/// or positions that do not fit together, are a [`Mismatch`].
fn dealt(
    files: &[cut::WorkerFile],
    sources: &[OwnSource],
    lines: Option<u64>,
) -> Result<Vec<Option<Share>>, Mismatch> {
    let mut olds = Vec::new();
    for (index, place) in places(files)? {
        if place.names.is_empty() && !place.splits.is_empty() {
            return Err(Mismatch::Shares {
                index,
                why: "its source's place does not name its splits (a cut of an older version: resume it on the same number of workers)".to_string(),
            });
        }
        olds.push(place);
    }
    let positions: Vec<_> = olds.iter().map(|old| old.position.clone()).collect();
    let mut shares = Vec::with_capacity(sources.len());
    for (source, _, _) in sources {
        let Some(source) = source else {
            shares.push(None);
            continue;
        };
        let names = source.split_names().unwrap_or_default();
        let position = source
            .position_of_shares(&positions)
            .map_err(|e| Mismatch::Sources(e.to_string()))?;
        shares.push(Some(share(&olds, &names, position, lines.unwrap_or(0))));
    }
    Ok(shares)
}

impl Job {
    /// [`Job::work`], or what made it panic (a library user's sink, a
    /// bug): the worker's dataflows are dropped and every other worker of
    /// the process told to stop ([`Failing`]).
    fn work_or_fail(
        &self,
        worker: &mut timely::worker::Worker,
    ) -> Result<Option<(write::Shared, Counts, Option<String>)>, String> {
        self.failing.enter();
        let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.work(worker)));
        worked.map_err(|payload| {
            self.failing.fail();
            for dataflow in worker.installed_dataflows() {
                worker.drop_dataflow(dataflow);
            }
            panic_message(payload.as_ref())
        })
    }

    /// One worker's run: its part of the input, its engines; worker 0
    /// writes what every worker found and returns the outputs and counts.
    fn work(
        &self,
        worker: &mut timely::worker::Worker,
    ) -> Option<(write::Shared, Counts, Option<String>)> {
        let index = worker.index();
        let peers = worker.peers();
        // Worker 0 (of process 0) writes the late events and what is sent
        // to it.
        let writers = (index == 0).then(|| self.writers.clone()).flatten();
        let records_to = self.records_to(index, writers.as_ref());
        // The cut requests of worker 0 to every worker of every process: a
        // dataflow of their own, built by every worker with or without
        // `--checkpoint` (every process must build the same dataflows).
        let process_cuts = self.checkpoint.as_ref().map(|c| Arc::clone(&c.cuts));
        let requests = cut_requests(worker, &process_cuts.unwrap_or_else(Cuts::new));
        let mut requests = requests.filter(|_| self.checkpoint.is_some());
        let gathered = Rc::new(RefCell::new(Gathered {
            writers,
            held: Vec::new(),
            after_end: Vec::new(),
            summary: Counts::default(),
        }));
        let counts = Arc::new(ReadCounts::default());
        let drops = Rc::new(RefCell::new(HashMap::new()));
        let worker_cut = self.checkpoint.as_ref().map(|checkpoint| {
            self.worker_cut(checkpoint, index, &counts, &drops, &records_to, peers)
        });
        let read = self.checkpoint.as_ref().map(|c| Arc::clone(&c.read));
        let items = self.items(index, peers, &counts, read.unwrap_or_default());
        // (counted on this thread; published with the engines' numbers)
        let (events_read, late_count) = (Rc::clone(&items.events), Rc::new(Cell::new(0)));
        // Resumed: the numbers shown go on from the cut's (as the
        // summary's do).
        let (events_before, late_before) =
            (worker_cut.as_ref()).map_or((0, 0), WorkerCut::restored_counts);
        late_count.set(late_before);
        // A source of the library's user: the worker's own, its watermark
        // its splits' (no delay of its own: that of each split).
        let own = self.take_source(index);
        let delay = if own.is_some() {
            i64::MAX
        } else {
            self.max_delay
        };
        let mut lateness = Lateness::new(delay)
            .flush_at_end(self.flush)
            .max_waiting(self.max_waiting);
        if let Some(timeout) = self.idle_timeout {
            lateness = lateness.idle_timeout(timeout);
        }
        let notices = Arc::clone(&self.notices);
        let keep_late = self.keep_late;
        let mut format = Formatter::default();
        let sink_counts = Arc::clone(&counts);
        let to_write = Rc::clone(&gathered);
        // Live input: worker 0 reads it on a thread of its own; the output
        // is flushed while that thread waits for input.
        let reads_live = match &self.sources {
            Some(_) => own.as_ref().is_some_and(|(source, _, _)| source.is_some()),
            None => self.live && index == 0,
        };
        let waiting_for_input = Arc::new(AtomicBool::new(false));
        let flush_when_waiting = reads_live.then(|| Arc::clone(&waiting_for_input));
        let mut feed = None;
        worker.dataflow::<Timestamp, _, _>(|scope| {
            // One input: the chunks of the file share one source number.
            let (events, late) = if reads_live {
                let (fed, events, late) = match &worker_cut {
                    Some(cut) => live_source_cut(scope, 0, lateness, Instant::now, cut),
                    None => live_source(scope, 0, lateness, Instant::now),
                };
                feed = Some(fed);
                (events, late)
            } else if let Some(cut) = &worker_cut {
                source_cut(scope, 0, items, lateness, cut)
            } else {
                source(scope, 0, items, lateness)
            };
            let sink_drops = Rc::clone(&drops);
            let tap = self.board.as_ref().and_then(|board| board.tap.clone());
            let records = Records::new(records_to.clone(), tap);
            let say = self.say.clone();
            let publish = self.board.clone().map(|board| Publish {
                board,
                index,
                events_before,
                events: events_read,
                late: Rc::clone(&late_count),
                last: None,
                measured: None,
            });
            let fields = (self.fields.clone()).zip(index.checked_sub(self.first_worker));
            let make_sink = move |_| {
                let mut sink =
                    CliSink::new(Arc::clone(&notices), sink_counts, sink_drops, records, say);
                sink.publish = publish;
                sink.fields = fields;
                sink
            };
            let found = match &worker_cut {
                Some(cut) => cep_cut(&self.plan, events, make_sink, cut),
                None => cep(&self.plan, events, make_sink),
            };
            let late = late.unary::<CapacityContainerBuilder<Vec<Chunk>>, _, _, _>(
                Pipeline,
                "CepLate",
                move |_, _| {
                    move |input, output| {
                        input.for_each_stamp(|cap, data| {
                            let mut lines = Block::default();
                            for batch in data {
                                late_count.set(late_count.get() + batch.len() as u64);
                                for (_, event) in batch.drain(..) {
                                    if keep_late {
                                        format.late(&event);
                                        lines.push(Kind::Late, &format);
                                    }
                                }
                            }
                            if !lines.is_empty() {
                                output.session(&cap).give(Chunk::Late(lines));
                            }
                        });
                    }
                },
            );
            // What a worker does not write itself goes to worker 0.
            let mut cutter = (index == 0)
                .then_some(self.checkpoint.as_ref())
                .flatten()
                .map(|checkpoint| Cutter {
                    say: self.say.clone(),
                    checkpoint: Arc::clone(checkpoint),
                    requests: requests.take(),
                    ask: self.cluster,
                    asking: false,
                    misses: 0,
                    last: Instant::now(),
                    pending: None,
                    asked_at: None,
                    observes: self.board.is_some(),
                    ended: false,
                    failed: Arc::clone(&self.checkpoint_failed),
                    stop: Arc::clone(&self.stop),
                });
            found.concat(late).sink(
                Exchange::new(|_: &Chunk| 0),
                "CepWrite",
                move |(input, frontier)| {
                    let mut gathered = to_write.borrow_mut();
                    let mut took = false;
                    if let Some(cutter) = &mut cutter {
                        // Before anything made at or above it is taken.
                        cutter.learn();
                    }
                    // During a cut at `e`, what was made at `e` or above
                    // waits until the outputs are measured.
                    let holding = cutter.as_ref().and_then(|c| c.pending);
                    // What the end of a file made (at `Timestamp::MAX`)
                    // waits for the cut before it (`Cuts::before_end`).
                    let before_end = cutter
                        .as_ref()
                        .is_some_and(|c| c.checkpoint.cuts.cuts_before_end());
                    input.for_each_stamp(|cap, data| {
                        let at = cap.least().copied().unwrap_or(Timestamp::MIN);
                        for chunk in data.flat_map(|batch| batch.drain(..)) {
                            took = true;
                            match holding {
                                _ if before_end && at == Timestamp::MAX => {
                                    gathered.after_end.push(chunk);
                                }
                                Some(e) if at >= e => gathered.held.push(chunk),
                                _ => gathered.take(chunk),
                            }
                        }
                    });
                    let waiting = flush_when_waiting
                        .as_ref()
                        .is_some_and(|w| w.load(Ordering::Relaxed));
                    if waiting {
                        // Also what the other workers wrote, before their
                        // frontier moved.
                        gathered.flush_now();
                    }
                    if let Some(cutter) = &mut cutter {
                        cutter.tick(frontier.frontier().first().copied(), &mut gathered);
                        if cutter.pending.is_none() {
                            for chunk in std::mem::take(&mut gathered.held) {
                                gathered.take(chunk);
                            }
                        }
                        if cutter.ended {
                            // After the last cut.
                            for chunk in std::mem::take(&mut gathered.after_end) {
                                gathered.take(chunk);
                            }
                        }
                        if waiting {
                            // And what was held during a cut it completed.
                            gathered.flush_now();
                        }
                    }
                },
            );
        });
        // Resumed: where the live input goes on (a source that had ended
        // reads nothing).
        let restored = worker_cut.as_ref().and_then(|cut| cut.source_state(0));
        let feed = feed.filter(|_| !restored.as_ref().is_some_and(|state| state.ended));
        let reader = feed.map(|feed| {
            let live = Live {
                feed,
                local: index - self.first_worker,
                fields: self.fields.clone(),
                board: self.board.clone(),
                stop_said: Arc::clone(&self.stop_said),
                source: self.sources.is_some(),
                names: Vec::new(),
                counts: Arc::clone(&counts),
                waiting_for_input,
                strict: self.strict,
                origin: self.origin.clone(),
                say: self.say.clone(),
                places: self.checkpoint.is_some(),
                lines: restored.as_ref().map_or(0, |state| state.position),
                controls: self.controls.clone(),
                reloads: self.reloads.clone().filter(|_| self.sources.is_none()),
                go_on: None,
            };
            match own {
                Some((Some(source), tx, messages)) => {
                    self.read_source(live, source, (tx, messages), restored.as_ref())
                }
                _ => self.read_live(live, restored.as_ref()),
            }
        });
        while worker.has_dataflows() {
            if self.failing.failed() {
                // A peer will make no progress: the dataflows go (timely
                // steps them until they are gone, after this returns);
                // the reader, if any, ends when it finds the feed gone.
                for dataflow in worker.installed_dataflows() {
                    worker.drop_dataflow(dataflow);
                }
                return None;
            }
            worker.step_or_park(None);
        }
        // The reader thread has ended the feed (the dataflow ended with
        // it); it may still wait on its input after a signal.
        let signal = reader.and_then(|reader| reader.join().ok().flatten());
        let mut gathered = gathered.borrow_mut();
        let summary = std::mem::take(&mut gathered.summary);
        if let Some(writers) = gathered.writers.take() {
            return Some((writers, summary, signal));
        }
        // Another worker's own `FILE.W`.
        if let (Some(own), Some(path)) = (records_to, &self.per_worker) {
            if let Err((_, e)) = lock(&own).flush() {
                say!(
                    self.say,
                    Error,
                    "error: cannot write {}.{index}: {e}",
                    path.display()
                );
                self.write_failed.store(true, Ordering::Relaxed);
            }
        }
        None
    }

    /// Where worker `index` writes its records itself (`writers`: worker
    /// 0's, of process 0): with `--output-per-worker` its own `FILE.W`
    /// (worker 0's writers then write to `FILE.0`); else, on process 0 of
    /// a run without cuts, the process's outputs. `None`: they are sent to
    /// worker 0 (other processes; with cuts, records reach worker 0 in
    /// the order of the frontier).
    fn records_to(&self, index: usize, writers: Option<&write::Shared>) -> Option<write::Shared> {
        let Some(path) = &self.per_worker else {
            return self
                .checkpoint
                .is_none()
                .then(|| self.writers.clone())
                .flatten();
        };
        let path = PathBuf::from(format!("{}.{index}", path.display()));
        // Resumed at a cut: written on from its length then (truncated to
        // it before the workers started).
        let resumed = self.resume.lock().ok().and_then(|files| {
            files
                .as_ref()
                .and_then(|files| files.get(index))
                .and_then(|file| file.own)
        });
        // (appending, opened again when rotated; a worker's own file is
        // not locked)
        let opened = match write::open(&path, resumed.is_some(), false) {
            Ok(opened) => opened,
            Err(e) => {
                say!(self.say, Error, "error: {e}");
                self.write_failed.store(true, Ordering::Relaxed);
                return None;
            }
        };
        match writers {
            Some(writers) => {
                lock(writers).set_out(opened);
                Some(Arc::clone(writers))
            }
            None => Some(Arc::new(Mutex::new(Writers::own(opened)))),
        }
    }

    /// The worker's part of the input, decoded; malformed lines are said
    /// on standard error and counted.
    fn items(
        &self,
        index: usize,
        peers: usize,
        counts: &Arc<ReadCounts>,
        read: Arc<cut::Read>,
    ) -> PartItems {
        let csv = matches!(self.format, Format::Csv);
        let mut chunks = None;
        if self.live {
            // Read by worker 0's reader thread (`read_live`).
        } else {
            match FileChunks::new(&self.events, index, peers, self.chunk_bytes) {
                Ok(parts) => {
                    let parts = parts.with_header(csv);
                    chunks = Some(match self.controls {
                        Some(_) => parts.past_lines(|line| Control::parse(line).is_some()),
                        None => parts,
                    });
                }
                Err(e) => {
                    say!(
                        self.say,
                        Error,
                        "error: cannot read {}: {e}",
                        self.events.display()
                    );
                    counts.read_error(&self.origin, e);
                }
            }
        }
        PartItems {
            chunks,
            current: None,
            format: self.format,
            time_field: self.time_field.clone(),
            fields: self.plan.fields().clone(),
            origin: self.origin.clone(),
            path: self.events.clone(),
            say: self.say.clone(),
            counts: Arc::clone(counts),
            strict: self.strict,
            stop: Arc::clone(&self.stop),
            done: false,
            position: 0,
            read,
            events: Rc::default(),
            watch: (self.fields.clone()).zip(index.checked_sub(self.first_worker)),
            seen: FieldsSeen::default(),
            controls: self.controls.clone(),
            control: None,
        }
    }

    /// Worker `index`'s part of the cuts: its state restored when the run
    /// resumes, its file written at each cut.
    fn worker_cut(
        &self,
        checkpoint: &Checkpoint,
        index: usize,
        counts: &Arc<ReadCounts>,
        drops: &Rc<RefCell<Drops>>,
        records_to: &Option<write::Shared>,
        peers: usize,
    ) -> WorkerCut {
        let dir = checkpoint.dir.clone();
        let drops_saved = Rc::clone(drops);
        let cut_counts = Arc::clone(counts);
        let stop = Arc::clone(&self.stop);
        let failed = Arc::clone(&self.checkpoint_failed);
        // With `--output-per-worker`: the worker's own `FILE.W`, which
        // holds every record it made below the cut when its CEP operator
        // saves (the records are written on this thread as they are made).
        let own = self
            .per_worker
            .as_ref()
            .and_then(|path| Some((path.clone(), records_to.clone()?)));
        let read = checkpoint.read.clone();
        let say = self.say.clone();
        // (a file that cannot be written is said to an observing report)
        let observes = self.board.is_some();
        let failed_event = move |say: &Say, error: cepheid_runtime::Error| {
            if observes {
                say.report()
                    .event(&RunEvent::CheckpointFailed { error: &error });
            }
        };
        let cut = WorkerCut::new(Arc::clone(&checkpoint.cuts), move |epoch, state| {
            let folder = cut::epoch_dir(&dir, epoch);
            let name = format!("worker-{index}");
            let (own, own_head) = match &own {
                Some((path, writers)) => match lock(writers).sync_own() {
                    Ok((len, head)) => (Some(len), head),
                    Err(e) => {
                        say!(
                            say,
                            Error,
                            "error: cannot write the checkpoint {}: {}.{index}: {e}",
                            folder.join(&name).display(),
                            path.display()
                        );
                        let own = PathBuf::from(format!("{}.{index}", path.display()));
                        failed_event(&say, cut_failed(&own, e));
                        failed.store(true, Ordering::Relaxed);
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                },
                None => (None, None),
            };
            let file = cut::WorkerFile {
                state,
                drops: (drops_saved.borrow().iter())
                    .map(|((pattern, key), kg)| (*pattern, key.clone(), *kg))
                    .collect(),
                read: (*read).clone(),
                own,
                drops_overflow: cut_counts.drops_overflow.load(Ordering::Relaxed),
                own_head,
            };
            if let Err(e) = cut::write(&folder, &name, &cut::encode(&file)) {
                say!(
                    say,
                    Error,
                    "error: cannot write the checkpoint {}: {e}",
                    folder.join(&name).display()
                );
                failed_event(&say, cut_failed(&folder.join(&name), e));
                // The input stops; exit 4 at the end.
                failed.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
            } else {
                cut::prune_unfinished(&dir, epoch);
            }
        });
        let resume = self.resume.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(files) = resume.as_ref() {
            // Checked before the workers started.
            let mut mine = Vec::new();
            if files.iter().any(|f| f.drops_overflow) {
                counts.drops_overflow.store(true, Ordering::Relaxed);
            }
            if files.len() == peers {
                let _ = cut.restore(&self.plan, &files[index].state);
                mine.extend(files[index].drops.iter().cloned());
            } else {
                // Another worker count: the keys go to their new workers.
                let states: Vec<&[u8]> = files.iter().map(|f| &f.state[..]).collect();
                let _ = cut.rescale(&self.plan, &states, index, peers);
                // A source of the library's user goes on from its share of
                // the old sources' places.
                let local = index.checked_sub(self.first_worker);
                let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
                let share = local.and_then(|i| shares.get_mut(i)?.take());
                if let Some(Share {
                    place,
                    lines,
                    start,
                }) = share
                {
                    let bytes = postcard::to_allocvec(&place).unwrap_or_default();
                    cut.go_on(0, bytes, lines, start);
                }
                let all = files.iter().flat_map(|f| f.drops.iter().cloned());
                mine.extend(all.filter(|(_, _, kg)| group_worker(*kg, peers) == index));
            }
            if checkpoint.cuts.cuts_before_end() {
                // A file, which may have grown since: a worker whose
                // chunks were read to their end reads on, past what it read
                // (`cut::Read`), the chunks that are new or longer.
                cut.read_on();
            }
            if let Some(state) = cut.source_state(0) {
                counts.malformed.store(state.unread, Ordering::Relaxed);
            }
            let mut drops = drops.borrow_mut();
            drops.extend(
                mine.into_iter()
                    .map(|(pattern, key, kg)| ((pattern, key), kg)),
            );
        }
        drop(resume);
        cut
    }

    /// The decoders of a reader thread (live input, a library user's
    /// source): each watches the fields when their warnings are on (as
    /// the single run's reader does).
    fn decoder(&self) -> impl Fn() -> Decoder + Send + 'static {
        let fields = self.plan.fields().clone();
        let (format, time_field) = (self.format, self.time_field.clone());
        let after = self.fields.as_ref().map(|f| f.after());
        let record_time = self.record_time;
        move || {
            let decoder = Decoder::new(format, &time_field, fields.clone());
            // (a record's time is set from its source's, `SourceTiming`)
            let decoder = if record_time {
                decoder.without_time()
            } else {
                decoder
            };
            match after {
                Some(after) => decoder.watch_fields(after),
                None => decoder,
            }
        }
    }

    /// When a reader thread sends what its decoder saw of the fields
    /// (`Message::Seen`): after the warnings' N events, and at the end.
    fn seen_told(&self) -> SeenTold {
        SeenTold::new(self.fields.as_ref().map(|f| f.after()))
    }

    /// Worker `index`'s own source ([`Workers::with_sources`]), if the
    /// run reads sources: `None` on other runs, `Some((None, ..))` for a
    /// worker that reads nothing.
    fn take_source(&self, index: usize) -> Option<OwnSource> {
        let sources = self.sources.as_ref()?;
        let mut sources = sources.lock().unwrap_or_else(|e| e.into_inner());
        sources
            .get_mut(index.checked_sub(self.first_worker)?)?
            .take()
    }

    /// Reads the worker's own `source` on a thread of the runtime's (its
    /// decoding, its per-split watermarks: each split's largest time less
    /// `--max-delay` less 1 ms, the least of them sent as the source's
    /// watermark, idle splits left out after `--idle-timeout`), whose
    /// batches `live` hands to the worker's source. Resumed (`restored`),
    /// the source is sought to the place of the cut, and its splits'
    /// watermarks are those of the cut.
    fn read_source(
        &self,
        mut live: Live,
        mut source: Box<dyn Source>,
        (tx, messages): (SyncSender<Message>, Receiver<Message>),
        restored: Option<&SourceState>,
    ) -> JoinHandle<Option<String>> {
        live.names = source.split_names().unwrap_or_default();
        let mut resumed = Vec::new();
        let mut emitted = None;
        if let Some(state) = restored.filter(|state| !state.place.is_empty()) {
            match SourcePlace::decode(&state.place) {
                Ok(place) => {
                    // (each split's own, by name: the same source's, or
                    // on another number of workers the `Share` made of
                    // the old sources')
                    resumed = place.watermarks_of(&live.names);
                    if let Err(e) = source.seek(&place.position) {
                        say!(self.say, Error, "error: cannot read {}: {e}", live.origin);
                        live.counts.read_error(&live.origin, e);
                        drop(tx);
                        return thread::spawn(move || live.forward(&messages));
                    }
                }
                Err(e) => {
                    say!(
                        self.say,
                        Error,
                        "error: checkpoint: the place of {} in the cut cannot be read: {e}",
                        live.origin
                    );
                    live.counts.read_error(&live.origin, e);
                    drop(tx);
                    return thread::spawn(move || live.forward(&messages));
                }
            }
            emitted = state.lateness.watermark();
        }
        let decoder = self.decoder();
        // Control records (`$rules`) in JSON lines, as one engine reads a
        // source's: the reader waits after each (and after a record of the
        // source's rules stream) until `Live::forward` has handed it on.
        let json = matches!(self.format, Format::JsonLines);
        let controls = (json && live.controls.is_some()).then(|| {
            let (go_on, wait) = mpsc::sync_channel::<()>(1);
            live.go_on = Some(go_on);
            wait
        });
        let reading = Reading {
            origin: live.origin.clone(),
            decoder: decoder(),
            fresh: Box::new(decoder),
            start: Position::default(),
            tails: false,
            controls,
            seen: self.seen_told(),
            timing: SourceTiming {
                record_time: self.record_time,
                splits: Some(SplitTiming {
                    max_delay: self.max_delay,
                    idle_timeout: self.idle_timeout,
                    resumed,
                    emitted,
                }),
            },
        };
        // Ends with the source (a bounded one), or when `live` stops
        // taking its batches (a signal).
        let _reader = spawn_reader(Opened::Custom(Arc::new(Mutex::new(source))), reading, tx);
        thread::spawn(move || live.forward(&messages))
    }

    /// Reads live input (standard input, a followed file) on threads of
    /// their own (the reader of the single-engine run, `input.rs`, and one
    /// that hands its batches to the source), and SIGINT/SIGTERM as the
    /// single-engine run does: the feed stops, event time stays where it
    /// is (with `--checkpoint`, the workers then take a last cut). The
    /// thread returns the signal that stopped it, if one did. Resumed
    /// (`restored`), a followed file is read from the place of the cut,
    /// or from its beginning when the file there is another one (rotated
    /// while the run was stopped), as the single run does.
    fn read_live(
        &self,
        mut live: Live,
        restored: Option<&SourceState>,
    ) -> JoinHandle<Option<String>> {
        let taken = self.messages.lock().ok().and_then(|mut m| m.take());
        let (tx, messages) = taken.unwrap_or_else(|| mpsc::sync_channel(BATCHES_AHEAD));
        let decoder = self.decoder();
        let start = restored.map_or_else(Position::default, |state| self.live_start(state));
        let mut first = decoder();
        if start.offset > 0 {
            // A CSV file's header, read from its beginning.
            if let Err(e) = prime(&mut first, &self.events) {
                say!(self.say, Error, "error: cannot read {}: {e}", live.origin);
            }
        }
        match Opened::open(&self.events, self.follow, start.offset, &mut |w| {
            say!(self.say, Warning, "{w}")
        }) {
            Ok((input, _)) => {
                if let Some(board) = &live.board {
                    board.read_to(start.offset);
                }
                // Control records: the reader waits after each until
                // `Live::forward` has handed it on.
                let controls = live.controls.is_some().then(|| {
                    let (go_on, wait) = mpsc::sync_channel::<()>(1);
                    live.go_on = Some(go_on);
                    wait
                });
                let reading = Reading {
                    origin: live.origin.clone(),
                    decoder: first,
                    fresh: Box::new(decoder),
                    start,
                    tails: live.places,
                    controls,
                    seen: self.seen_told(),
                    timing: Default::default(),
                };
                // Ends with the input, or with the process (a signal).
                let _reader = spawn_reader(input, reading, tx);
            }
            Err(e) => {
                say!(self.say, Error, "error: cannot read {}: {e}", live.origin);
                live.counts.read_error(&live.origin, e);
                drop(tx);
            }
        }
        thread::spawn(move || live.forward(&messages))
    }

    /// Where a followed file goes on after a cut: the place its source
    /// recorded, if the file named `--events` holds, before that offset,
    /// the bytes it held then; else (rotated while the run was stopped)
    /// its beginning, with a warning, as the single run does
    /// (`resume.rs`).
    fn live_start(&self, state: &SourceState) -> Position {
        let Ok(at) = postcard::from_bytes::<Position>(&state.place) else {
            // Nothing was read before the cut.
            return Position::default();
        };
        let file = File::open(&self.events);
        let same = at.tail.is_some_and(|tail| {
            file.as_ref()
                .is_ok_and(|file| Tail::of(file, at.offset) == Some(tail))
        });
        if at.offset == 0 || same {
            say!(
                self.say,
                Info,
                "cepheid: the input goes on at line {} of {}",
                at.lines + 1,
                self.events.display()
            );
            return at;
        }
        say!(
            self.say,
            Warning,
            "warning: checkpoint: {} is not the file it was taken on (its bytes before offset {} differ): rotated since, so it is read from its beginning; lines of the old file after the checkpoint are not read",
            self.events.display(),
            at.offset
        );
        Position::default()
    }
}

/// Where a worker's own [`Source`] is after a batch (the opaque bytes of
/// its [`Place`] in the cuts): its position and its splits' watermarks,
/// with the splits' names ([`Source::split_names`]), by which a cut
/// resumed on another number of workers gives each split's watermark to
/// the source that reads it then.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct SourcePlace {
    /// [`Source::position_before`] after the batch.
    position: cepheid_runtime::source::Position,
    /// Each split's watermark after the batch, in split order.
    splits: Vec<Option<Timestamp>>,
    /// Each split's name, in split order (empty for a source without
    /// names, and in cuts taken before names were kept).
    names: Vec<String>,
}

/// A [`SourcePlace`] as cuts held it before the splits' names were kept
/// (read on the same number of workers as before).
#[derive(Deserialize)]
struct UnnamedPlace {
    position: cepheid_runtime::source::Position,
    splits: Vec<Option<Timestamp>>,
}

impl SourcePlace {
    /// The place in a cut's bytes (of either form).
    fn decode(bytes: &[u8]) -> Result<SourcePlace, postcard::Error> {
        postcard::from_bytes::<SourcePlace>(bytes).or_else(|e| {
            let old = postcard::from_bytes::<UnnamedPlace>(bytes).map_err(|_| e)?;
            Ok(SourcePlace {
                position: old.position,
                splits: old.splits,
                names: Vec::new(),
            })
        })
    }

    /// The watermarks of splits `names` in this place: by name when it
    /// has names, else by split number (a place of the same source).
    fn watermarks_of(&self, names: &[String]) -> Vec<Option<Timestamp>> {
        if self.names.is_empty() {
            return self.splits.clone();
        }
        let of = |name: &String| {
            let i = self.names.iter().position(|n| n == name)?;
            self.splits.get(i).copied().flatten()
        };
        names.iter().map(of).collect()
    }
}

/// Where a worker's source goes on when a cut taken on another number of
/// workers resumes ([`shares`]): its place (its position from the old
/// sources' shares, its splits' watermarks from the old sources that
/// read them), the lines the old sources had read (the largest: its
/// events' offsets go on above every old one's, so that events of equal
/// times keep their input order), and the watermark its clock starts at:
/// the least of its splits' (`None` when one of them has none).
#[derive(Clone, Debug, PartialEq)]
struct Share {
    place: SourcePlace,
    lines: u64,
    start: Option<Timestamp>,
}

/// The [`Share`] of a source whose splits are `names`: `olds` are the old
/// workers' places (of the sources that read something), `position` its
/// position put together from theirs ([`Source::position_of_shares`]),
/// `lines` the largest number of lines an old source had read. Each split
/// takes the watermark of the old source that read it (the least, if
/// several name it).
fn share(
    olds: &[SourcePlace],
    names: &[String],
    position: cepheid_runtime::source::Position,
    lines: u64,
) -> Share {
    let mut splits: Vec<Option<Timestamp>> = vec![None; names.len()];
    for old in olds {
        for (slot, w) in splits.iter_mut().zip(old.watermarks_of(names)) {
            *slot = match (*slot, w) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let start = splits.iter().try_fold(None, |least: Option<Timestamp>, w| {
        w.map(|w| Some(least.map_or(w, |l| l.min(w))))
    });
    Share {
        place: SourcePlace {
            position,
            splits,
            names: names.to_vec(),
        },
        lines,
        start: start.flatten(),
    }
}

/// Worker 0's live input, on its way to the source.
struct Live {
    say: Say,
    feed: Feed<Record>,
    /// The worker's index in the process.
    local: usize,
    /// Told what the reader's decoder saw of the fields (`Message::Seen`).
    fields: Option<Arc<Fields>>,
    /// Where the run's numbers are published (with an observing report):
    /// the reader's place in the file goes there.
    board: Option<Arc<Board>>,
    /// Was the stop said (by this or another reader of the process)?
    stop_said: Arc<AtomicBool>,
    /// A source of the library's user: its places are its
    /// [`SourcePlace`]s.
    source: bool,
    /// Its splits' names ([`Source::split_names`]), kept in its places.
    names: Vec<String>,
    counts: Arc<ReadCounts>,
    /// Set while the reader waits for input (its last batch stalled).
    waiting_for_input: Arc<AtomicBool>,
    strict: bool,
    origin: String,
    /// With `--checkpoint`: each batch goes with its place (lines so far,
    /// malformed lines so far, its [`Position`] in the file), which the
    /// source records at a cut.
    places: bool,
    /// Lines read before (resumed: the place of the cut).
    lines: u64,
    /// Control records are read (JSON lines).
    controls: Option<Arc<Controls>>,
    /// Tells the reader to go on after a control record.
    go_on: Option<SyncSender<()>>,
    /// Reloads of the pattern paths are read (`--watch`).
    reloads: Option<Arc<Controls>>,
}

impl Live {
    /// Hands the reader's batches to the source until the input ends, a
    /// read error, a malformed line with `--strict` (the input ends there,
    /// as in the single-engine run) or a signal (the input stops).
    fn forward(self, messages: &Receiver<Message>) -> Option<String> {
        // Lines in input order over rotations of a followed file (whose
        // line numbers start anew): the order of equal times.
        let mut offset = self.lines;
        loop {
            let batch = match messages.recv() {
                Ok(Message::Batch(batch)) => batch,
                Ok(Message::Stop(why)) => {
                    // (once, of the process's several sources)
                    if !self.stop_said.swap(true, Ordering::Relaxed) {
                        say!(self.say, Info, "cepheid: stopped by {why}");
                    }
                    self.feed.stop();
                    return Some(why);
                }
                Ok(Message::Seen(seen)) => {
                    if let Some(fields) = &self.fields {
                        fields.report(self.local, seen, &self.say);
                    }
                    continue;
                }
                Ok(Message::Lag(lag)) => {
                    if let Some(board) = &self.board {
                        board.lag(self.local, lag);
                    }
                    continue;
                }
                Ok(Message::Reload(why)) => {
                    // (at the live input's watermark then + 1)
                    let controls = self.reloads.as_ref();
                    let read =
                        controls.and_then(|c| c.reload(&why, offset, &self.counts, &self.say));
                    if let Some(item) = read {
                        if self.feed.send(vec![item]).is_err() {
                            return None;
                        }
                    }
                    continue;
                }
                Ok(Message::Checkpointed) => continue,
                Ok(Message::End) | Err(_) => return None,
            };
            let mut items = Vec::with_capacity(batch.lines.len());
            let mut end = false;
            // (a `Source`'s malformed records, placed as it says)
            let mut places = batch.places.into_iter().peekable();
            for (index, (line, item)) in batch.lines.into_iter().enumerate() {
                offset += 1;
                let place = match places.peek() {
                    Some((i, _)) if *i == index => places.next().map(|(_, p)| p),
                    _ => None,
                };
                match item {
                    Ok(Entry::Item(Item::Event(ts, event))) => {
                        items.push(SourceItem::Event { ts, offset, event })
                    }
                    Ok(Entry::Item(Item::Watermark(t))) => items.push(SourceItem::Watermark(t)),
                    // (a `Source`'s splits' least watermark)
                    Ok(Entry::SplitWatermark(t)) => items.push(SourceItem::SplitWatermark(t)),
                    Ok(Entry::Item(Item::Skip)) => {}
                    // (a `Source`'s rules stream: this is its one reader)
                    Ok(Entry::SourceRules(rules)) => {
                        let place = place.as_deref().unwrap_or_default();
                        let controls = self.controls.as_ref();
                        items.extend(controls.and_then(|c| {
                            c.source_rules(&rules, place, offset, &self.counts, &self.say)
                        }));
                        if let Some(go_on) = &self.go_on {
                            let _ = go_on.send(());
                        }
                    }
                    Ok(Entry::Rules(control)) => {
                        let name = format!("{}:{line}", self.origin);
                        let controls = self.controls.as_ref();
                        let read = controls
                            .and_then(|c| c.read(&control, &name, offset, &self.counts, &self.say));
                        items.extend(read);
                        // The reader waits after a control record (one
                        // engine applies it first): here it applies on the
                        // workers at its time, and records decoded before
                        // its new fields are numbered are read again.
                        if let Some(go_on) = &self.go_on {
                            let _ = go_on.send(());
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Io => {
                        say!(
                            self.say,
                            Error,
                            "error: cannot read {}: {}",
                            self.origin,
                            e.message()
                        );
                        self.counts.read_error(&self.origin, e.message());
                        end = true;
                        break;
                    }
                    Err(e) => {
                        self.counts.malformed_line();
                        match &place {
                            Some(place) => say!(
                                self.say,
                                Warning,
                                "{place}: malformed record: {}",
                                e.message()
                            ),
                            None => say!(
                                self.say,
                                Warning,
                                "{}:{line}: malformed line: {}",
                                self.origin,
                                e.message()
                            ),
                        }
                        if self.strict {
                            self.counts.strict_stop(&self.origin, line, e.message());
                            end = true;
                            break;
                        }
                    }
                }
            }
            let events = items
                .iter()
                .filter(|item| matches!(item, SourceItem::Event { .. }))
                .count();
            self.counts
                .events
                .fetch_add(events as u64, Ordering::Relaxed);
            self.waiting_for_input
                .store(batch.stalled, Ordering::Relaxed);
            if let Some(board) = &self.board {
                board.read_to(batch.at.offset);
            }
            let sent = if self.places && !end {
                let place = if self.source {
                    let at = SourcePlace {
                        position: batch.place.unwrap_or_default(),
                        splits: batch.splits.unwrap_or_default(),
                        names: self.names.clone(),
                    };
                    postcard::to_allocvec(&at)
                } else {
                    postcard::to_allocvec(&batch.at)
                };
                let place = Place {
                    position: offset,
                    unread: self.counts.malformed.load(Ordering::Relaxed),
                    place: place.unwrap_or_default(),
                };
                self.feed.send_at(items, place)
            } else {
                self.feed.send(items)
            };
            if sent.is_err() || end {
                return None;
            }
        }
    }
}

/// A worker's chunks of the input as [`SourceItem`]s.
struct PartItems {
    say: Say,
    chunks: Option<FileChunks>,
    current: Option<Current>,
    format: Format,
    time_field: String,
    fields: FieldTable,
    origin: String,
    path: PathBuf,
    counts: Arc<ReadCounts>,
    strict: bool,
    /// Shared by the parts of the process: `--strict` stops them all.
    stop: Arc<AtomicBool>,
    done: bool,
    /// The place of the last line read (`FileChunk::offset`; 0 for none),
    /// for cuts.
    position: u64,
    /// Resumed: the lines read before (over every worker), skipped.
    read: Arc<cut::Read>,
    /// Events read (late ones included), for the worker's numbers.
    events: Rc<Cell<u64>>,
    /// The fields' warnings and the worker's index in the process: each
    /// chunk's decoder watches the fields, and what the chunks read so far
    /// saw ([`PartItems::seen`]) is told at the end of each chunk.
    watch: Option<(Arc<Fields>, usize)>,
    /// What the decoders of the chunks read whole saw of the fields.
    seen: FieldsSeen,
    /// Control records are read (JSON lines).
    controls: Option<Arc<Controls>>,
    /// The control record of the line just read (the line itself comes
    /// as an [`Item::Skip`]): set aside, so that an event's line travels
    /// as the decoder's item, unwrapped.
    control: Option<Control>,
}

impl Positioned for PartItems {
    fn position(&self) -> u64 {
        self.position
    }

    /// Malformed lines (one source per worker: the worker's count).
    fn unread(&self) -> u64 {
        self.counts.malformed.load(Ordering::Relaxed)
    }
}

/// The chunk being read.
struct Current {
    items: Items<Box<dyn Read + Send>>,
    chunk: FileChunk,
    /// Lines of the file before the chunk (counted at the first message).
    lines_before: Option<u64>,
}

impl PartItems {
    /// Starts reading `chunk`.
    fn start(&mut self, mut chunk: FileChunk) {
        let mut decoder = Decoder::new(self.format, &self.time_field, self.fields.clone());
        if let Some((fields, _)) = &self.watch {
            // The names of keys ("did you mean") of the first N events of
            // the process's readers only, as the single run keeps those of
            // its first N.
            decoder = decoder.watch_fields(fields.after().saturating_sub(fields.events()));
        }
        let reader = std::mem::replace(&mut chunk.reader, Box::new(io::empty()));
        self.current = Some(Current {
            items: Items::new(self.origin.clone(), reader, decoder),
            chunk,
            lines_before: None,
        });
    }

    /// The next line of the chunks, `None` at their end.
    /// A control record is an [`Item::Skip`] with [`PartItems::control`]
    /// set.
    #[inline]
    fn next_line(&mut self) -> Option<(u64, Result<Item, cepheid_engine::Error>, u64)> {
        let controls = self.controls.is_some();
        loop {
            if let Some(current) = &mut self.current {
                let control = &mut self.control;
                let read = current.items.next_with(|decoder, text| {
                    match controls.then(|| Control::parse(text)).flatten() {
                        Some(Ok(read)) => {
                            *control = Some(read);
                            Ok(Item::Skip)
                        }
                        Some(Err(why)) => Err(cepheid_engine::Error::new(ErrorKind::Input, why)),
                        None => decoder.decode(text),
                    }
                });
                if let Some((line, item)) = read {
                    let offset = current.chunk.offset(line);
                    if offset & 0xffff_ffff <= self.read.upto(current.chunk.number) {
                        // (read before the cut: a control record too)
                        self.control = None;
                        continue;
                    }
                    self.position = offset;
                    return Some((line, item, offset));
                }
                if let (Some((fields, local)), Some(seen)) =
                    (&self.watch, current.items.decoder().fields_seen())
                {
                    // The chunk read whole: what it saw of the fields.
                    self.seen.merge(seen);
                    fields.report(*local, self.seen.clone(), &self.say);
                }
                self.current = None;
            }
            match self.chunks.as_mut()?.next()? {
                // Resumed: the chunks read whole.
                Ok(chunk) if self.read.upto(chunk.number) == u64::MAX => {}
                Ok(chunk) => self.start(chunk),
                Err(e) => {
                    say!(self.say, Error, "error: cannot read {}: {e}", self.origin);
                    self.counts.read_error(&self.origin, e);
                    return None;
                }
            }
        }
    }

    /// Line `line` of the current chunk's number in the whole input.
    fn line_in_input(&mut self, line: u64) -> u64 {
        let Some(current) = &mut self.current else {
            return line;
        };
        let (path, start) = (&self.path, current.chunk.start);
        let before = *current
            .lines_before
            .get_or_insert_with(|| count_lines(path, start).unwrap_or(0));
        // A later CSV chunk starts with the header, which is not its line.
        before + line - u64::from(current.chunk.header)
    }
}

/// Newlines in the first `len` bytes of a file.
fn count_lines(path: &Path, len: u64) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?.take(len));
    let mut lines = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(lines);
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buf.len();
        reader.consume(n);
    }
}

impl Iterator for PartItems {
    type Item = SourceItem<Record>;

    fn next(&mut self) -> Option<SourceItem<Record>> {
        loop {
            if self.done || self.stop.load(Ordering::Relaxed) {
                self.done = true;
                return None;
            }
            let Some((line, item, offset)) = self.next_line() else {
                self.done = true;
                return None;
            };
            match item {
                Ok(Item::Event(ts, event)) => {
                    self.events.set(self.events.get() + 1);
                    return Some(SourceItem::Event { ts, offset, event });
                }
                Ok(Item::Watermark(t)) => return Some(SourceItem::Watermark(t)),
                Ok(Item::Skip) => {
                    let Some(control) = self.control.take() else {
                        continue;
                    };
                    let line = self.line_in_input(line);
                    let name = format!("{}:{line}", self.origin);
                    let controls = self.controls.as_ref()?;
                    if let Some(item) =
                        controls.read(&control, &name, offset, &self.counts, &self.say)
                    {
                        return Some(item);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Io => {
                    say!(
                        self.say,
                        Error,
                        "error: cannot read {}: {}",
                        self.origin,
                        e.message()
                    );
                    self.counts.read_error(&self.origin, e.message());
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.counts.malformed_line();
                    let line = self.line_in_input(line);
                    say!(
                        self.say,
                        Warning,
                        "{}:{line}: malformed line: {}",
                        self.origin,
                        e.message()
                    );
                    if self.strict {
                        self.counts.strict_stop(&self.origin, line, e.message());
                        self.stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Keys over `--max-runs-per-key` already said: (pattern, key as JSON) and
/// the key's key group.
type Drops = HashMap<(usize, String), u32>;

/// The worker threads of a process, and whether one of them panicked (a
/// library user's sink, a bug). A worker parks while it waits for its
/// peers' progress, which a panicked worker never makes: the failing
/// worker says so here and wakes every other, which then drop their
/// dataflows and stop (the run ends with the failed worker's
/// [`Error::Worker`]) instead of parking forever.
#[derive(Default)]
struct Failing {
    failed: AtomicBool,
    threads: Mutex<Vec<std::thread::Thread>>,
}

impl Failing {
    /// The calling worker thread is one of the process's.
    fn enter(&self) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.push(std::thread::current());
    }

    /// A worker failed: the others are woken to stop.
    fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        for thread in threads.iter() {
            thread.unpark();
        }
    }

    /// Did a worker fail?
    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// What a panic said (its payload's text, if it is text).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// A worker's sink: records as `cepheid run` writes them, the limits'
/// notices said ([`LimitNotices`], shared by the process's workers),
/// counts at the end.
struct CliSink {
    say: Say,
    format: Formatter,
    records: Records,
    /// Keys over the limit (pattern, key as JSON), shared with the cuts.
    drops: Rc<RefCell<Drops>>,
    notices: Arc<LimitNotices>,
    counts: Arc<ReadCounts>,
    summary: Option<Counts>,
    /// Where the worker publishes its numbers, with an observing report.
    publish: Option<Publish>,
    /// The fields' warnings and the worker's index in the process: what
    /// its reader saw goes into its counts at the end.
    fields: Option<(Arc<Fields>, usize)>,
}

/// A worker's part in the [`Board`].
struct Publish {
    board: Arc<Board>,
    /// The worker's index over all processes.
    index: usize,
    /// Events its sources had read at the cut it was resumed from.
    events_before: u64,
    /// Events its file's parts read ([`PartItems::events`]).
    events: Rc<Cell<u64>>,
    /// Late events of its source.
    late: Rc<Cell<u64>>,
    /// When it last published, and measured its state.
    last: Option<Instant>,
    measured: Option<Instant>,
}

impl Publish {
    /// Is it time to publish (at most every [`PUBLISH_EVERY`], the state
    /// measured at most every [`STATE_EVERY`])?
    fn due(&mut self, finished: bool) -> Due {
        let now = Instant::now();
        if let (false, Some(last)) = (finished, self.last) {
            let since = now.duration_since(last);
            if since < PUBLISH_EVERY {
                return Due::After(PUBLISH_EVERY - since);
            }
        }
        self.last = Some(now);
        let measure = finished
            || self
                .measured
                .is_none_or(|t| now.duration_since(t) >= STATE_EVERY);
        if measure {
            self.measured = Some(now);
        }
        Due::Now {
            state_bytes: measure,
        }
    }
}

impl CliSink {
    fn new(
        notices: Arc<LimitNotices>,
        counts: Arc<ReadCounts>,
        drops: Rc<RefCell<Drops>>,
        records: Records,
        say: Say,
    ) -> CliSink {
        CliSink {
            say,
            format: Formatter::default(),
            records,
            drops,
            notices,
            counts,
            summary: None,
            publish: None,
            fields: None,
        }
    }
}

impl Sink<Record> for CliSink {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        self.format.record("match", m, None);
        self.records.push(Kind::Match, &self.format);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.format.record("timeout", m, Some(expired_at));
        self.records.push(Kind::Timeout, &self.format);
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, Record>) {
        let new_key = !partial.capped() && {
            let key = serde_json::to_string(partial.key()).unwrap_or_default();
            let mut drops = self.drops.borrow_mut();
            let told = (partial.pattern_index(), key);
            if drops.len() >= MAX_DROP_KEYS && !drops.contains_key(&told) {
                // Remembered up to a bound (issue 26): only that there
                // were more is kept.
                self.counts.drops_overflow.store(true, Ordering::Relaxed);
                return;
            }
            let kg = key_group(partial.key());
            // (a key is one worker's: the process's notices count it once)
            drops.insert(told, kg).is_none()
        };
        let say = &self.say;
        (self.notices).dropped(partial, new_key, |notice| say.report().notice(notice));
    }
}

impl Collect<Record> for CliSink {
    type Item = Chunk;

    fn drain(&mut self, out: &mut Vec<Chunk>) {
        out.extend(self.records.take().into_iter().map(Chunk::Out));
        if let Some(summary) = self.summary.take() {
            out.push(Chunk::Summary(Box::new(summary)));
        }
    }

    fn finish(&mut self, stats: &Stats, waiting: usize) {
        self.summary = Some(Counts {
            events: stats.events,
            late: stats.late,
            matches: stats.matches,
            timeouts: stats.timeouts,
            unusable_keys: stats.unusable_keys,
            dropped_runs: stats.dropped_runs,
            dropped_keys: self.drops.borrow().len() as u64,
            dropped_keys_overflow: self.counts.drops_overflow.load(Ordering::Relaxed),
            capped_runs: stats.capped_runs,
            forced: stats.forced_watermarks,
            waiting: waiting as u64,
            malformed: self.counts.malformed.load(Ordering::Relaxed),
            reloads: self.counts.reloads.load(Ordering::Relaxed),
            reloads_refused: self.counts.reloads_refused.load(Ordering::Relaxed),
            reloads_late: self.counts.reloads_late.load(Ordering::Relaxed),
            discarded: stats.discarded_runs,
            read_error: self.counts.read_error_now(),
            strict_stop: self.counts.strict_stop_now(),
            patterns: Vec::new(),
            fields: (self.fields.as_ref()).and_then(|(fields, local)| fields.of_worker(*local)),
        });
    }

    fn numbers_due(&mut self, finished: bool) -> Due {
        match &mut self.publish {
            Some(publish) => publish.due(finished),
            // The summary's lines per pattern.
            None if finished => Due::Now { state_bytes: false },
            None => Due::Never,
        }
    }

    fn rules_changed(&mut self, place: &str, outcome: Result<String, String>) {
        // (the single run's words)
        match outcome {
            Ok(lines) => {
                self.counts.reloads.fetch_add(1, Ordering::Relaxed);
                let text = format!("cepheid: {place}: rules reloaded:\n{lines}");
                self.say.report().notice(Notice::new(
                    Level::Info,
                    text.strip_suffix('\n').unwrap_or(&text),
                ));
            }
            Err(why) => {
                self.counts.reloads_refused.fetch_add(1, Ordering::Relaxed);
                say!(
                    self.say,
                    Warning,
                    "cepheid: {place}: the new rules {why}; the old rules go on"
                );
            }
        }
    }

    fn numbers(&mut self, numbers: EngineNumbers, finished: bool) {
        if let (true, Some(summary)) = (finished, &mut self.summary) {
            summary.patterns.clone_from(&numbers.patterns);
        }
        if let Some(publish) = &self.publish {
            let published = Published {
                engines: Some(numbers),
                events: publish.events_before
                    + publish.events.get()
                    + self.counts.events.load(Ordering::Relaxed),
                late: publish.late.get(),
                malformed: self.counts.malformed.load(Ordering::Relaxed),
            };
            publish.board.publish(publish.index, published);
        }
    }
}

/// Worker 0's part in the cuts: asks for one every `--checkpoint-every`,
/// and when its input frontier passes the cut's epoch (every record made
/// below it is written, every worker's file is), syncs the outputs, writes
/// `complete` with their lengths, and deletes the older cuts.
struct Cutter {
    say: Say,
    checkpoint: Arc<Checkpoint>,
    /// Sends the requests to every worker; dropped at the end of the input
    /// (every worker's requests dataflow then ends).
    requests: Option<Requests>,
    /// Several processes: the epoch is chosen from every process's
    /// sources ([`Requests::ask`]).
    ask: bool,
    /// Asked, and the epoch not chosen yet.
    asking: bool,
    /// Cuts given up in a row because a worker's file was not there.
    misses: u32,
    /// When the last cut was asked for (or the run started).
    last: Instant,
    /// The epoch asked for and not passed yet.
    pending: Option<Timestamp>,
    /// When the cut under way was asked for (its duration runs from
    /// there to its `complete` durable).
    asked_at: Option<Instant>,
    /// Does the report observe the run? Then each cut completed, or that
    /// could not be written, is said to it ([`RunEvent`]).
    observes: bool,
    /// Has the writer's input ended?
    ended: bool,
    failed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Cutter {
    /// The epoch chosen since the last look (several processes), which the
    /// workers now take part in: pending. Data made at or above it can
    /// only come after it was chosen, on this worker's thread.
    fn learn(&mut self) {
        if !self.asking {
            return;
        }
        if let Some(e) = self.requests.as_ref().and_then(Requests::chosen) {
            self.asking = false;
            self.pending = Some(e);
        }
    }

    /// The input frontier of worker 0's writer is at `at` (`None`: the
    /// input ended).
    fn tick(&mut self, at: Option<Timestamp>, gathered: &mut Gathered) {
        let checkpoint = Arc::clone(&self.checkpoint);
        if at.is_none() {
            // The run ends: no more requests. A cut under way whose epoch
            // every worker's CEP operator passed before its input ended
            // (their files are written) is completed: the frontier may go
            // from below it to empty at once (a source that reads its
            // last chunks in one go), which left a short run with no cut
            // at all. Not when the workers' last cut (`Cuts::last_cut`: a
            // source stopped, `Cuts::at_end`, `Cuts::before_end`) is at or
            // below its epoch: that one is the run's cut at its end, which
            // `last_cut` completes. At the same epoch (a request at the
            // largest source capability + 1, the last cut's epoch when
            // nothing moved since) both are one folder, the last cut's
            // files: completed here too, it was completed twice, numbered
            // `n` then `n + 1`, so that a sink's commit `n + 1` found the
            // cut it had committed (`n`) gone; above it, no operator
            // passed the epoch before its input ended.
            if let Some(e) = self.pending.take() {
                let since = self.asked_at.take().unwrap_or_else(Instant::now);
                let last_at_or_below = checkpoint.cuts.last_cut().is_some_and(|l| l <= e);
                if !last_at_or_below
                    && !checkpoint.cuts.failed(e)
                    && !self.failed.load(Ordering::Relaxed)
                {
                    if let Err(why) = self.complete(e, since, gathered) {
                        self.cut_error(e, why);
                    }
                }
            }
            self.asking = false;
            self.requests = None;
            if !self.ended {
                self.ended = true;
                self.last_cut(gathered);
            }
            return;
        }
        self.learn();
        let mut again = false;
        if let (Some(e), Some(at)) = (self.pending, at) {
            if at >= e {
                self.pending = None;
                let since = self.asked_at.take().unwrap_or_else(Instant::now);
                let whole = !checkpoint.cuts.failed(e) && {
                    match self.complete(e, since, gathered) {
                        Ok(whole) => whole,
                        Err(why) => {
                            self.cut_error(e, why);
                            true
                        }
                    }
                };
                // What was held during the cut was made below the next
                // one (asked for just above every source's capability
                // seen, so above every record made so far): written now,
                // before another cut is asked for in this same call and
                // holds it on, past that cut's measure of the outputs.
                for chunk in std::mem::take(&mut gathered.held) {
                    gathered.take(chunk);
                }
                if whole {
                    self.misses = 0;
                    self.last = Instant::now();
                } else {
                    // A source passed `e` before it saw the request: ask
                    // again at once (once; then at the usual pace).
                    self.misses += 1;
                    again = self.misses == 1;
                    if !again {
                        self.last = Instant::now();
                    }
                }
            }
        }
        if self.pending.is_none()
            && !self.asking
            && at.is_some()
            && !self.failed.load(Ordering::Relaxed)
            && (again || self.last.elapsed() >= checkpoint.every)
        {
            if let Some(requests) = &mut self.requests {
                self.asked_at = Some(Instant::now());
                if self.ask {
                    requests.ask();
                    self.asking = true;
                } else {
                    self.pending = Some(requests.request(&checkpoint.cuts));
                }
            }
        }
    }

    /// The cut at `e` could not be written: said; the input stops, exit 4
    /// at the end.
    fn cut_error(&self, e: Timestamp, why: io::Error) {
        let checkpoint = &self.checkpoint;
        say!(
            self.say,
            Error,
            "error: cannot write the checkpoint in {}: {why}",
            checkpoint.dir.display()
        );
        self.failed_event(&cut_failed(&cut::epoch_dir(&checkpoint.dir, e), why));
        self.failed.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The run ends: when a signal stopped the live input, every worker
    /// took a last cut (`cep_cut`), whose files are written (its CEP
    /// operator's capability went after): the outputs, everything made
    /// included, are measured and the cut completed, so that the next
    /// run replays nothing.
    fn last_cut(&mut self, gathered: &mut Gathered) {
        let checkpoint = Arc::clone(&self.checkpoint);
        let Some(e) = checkpoint.cuts.last_cut() else {
            return;
        };
        for chunk in std::mem::take(&mut gathered.held) {
            gathered.take(chunk);
        }
        if self.failed.load(Ordering::Relaxed) {
            // A cut failed (said then, the input stopped for it): none is
            // completed after it, as the single run takes no checkpoint
            // after a failed one; the next run goes on from the last
            // complete cut. (A sink that failed would fail again, and was
            // said to have taken this one.)
            return;
        }
        let dir = checkpoint.dir.display();
        // (taken by every worker as the dataflow ended: from now)
        // (before the end of a file: as one engine's there, not said)
        let quiet = checkpoint.cuts.last_cut_before_end();
        match self.complete(e, Instant::now(), gathered) {
            Ok(_) if quiet => {}
            Ok(true) => say!(self.say, Info, "cepheid: checkpoint taken in {dir} as the run stopped"),
            Ok(false) => say!(
                self.say,
                Warning,
                "warning: no checkpoint could be taken in {dir} as the run stopped: the next run goes on from the one before"
            ),
            Err(why) => {
                say!(self.say, Error, "error: cannot write the checkpoint in {dir}: {why}");
                self.failed_event(&cut_failed(&cut::epoch_dir(&checkpoint.dir, e), why));
                self.failed.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The frontier passed `e`: every worker that took the cut has written
    /// its file (before its capability moved past `e`). When every
    /// worker's file is there, the outputs are synced and measured,
    /// `complete` written, the older cuts deleted: `Ok(true)`, said to an
    /// observing report ([`RunEvent::Checkpoint`]: its number, the time
    /// since it was asked for (`since`), the bytes of its files).
    /// `Ok(false)`: a worker could not take it.
    fn complete(&self, e: Timestamp, since: Instant, gathered: &mut Gathered) -> io::Result<bool> {
        let completing = Instant::now();
        let checkpoint = &self.checkpoint;
        let folder = cut::epoch_dir(&checkpoint.dir, e);
        let marker = &checkpoint.marker;
        let workers = marker.processes * marker.workers;
        let missing: Vec<usize> = (0..workers)
            .filter(|w| !folder.join(format!("worker-{w}")).exists())
            .collect();
        if !missing.is_empty() {
            // Never complete: the files written for it go.
            let _ = std::fs::remove_dir_all(&folder);
            if self.misses + 1 == MISSES_TOLD {
                let shown: Vec<String> = missing.iter().map(usize::to_string).collect();
                say!(
                    self.say,
                    Info,
                    "cepheid: no checkpoint could be completed in {} ({} cuts in a row): no file of worker {} there; with --processes, every process needs --checkpoint with a folder they all see",
                    checkpoint.dir.display(),
                    MISSES_TOLD,
                    shown.join(", ")
                );
            }
            return Ok(false);
        }
        let Some(writers) = &gathered.writers else {
            return Ok(true);
        };
        let mut writers = lock(writers);
        let to_sink = writers.sink().is_some();
        if to_sink {
            // Every record of the cut on its way (a write error stops the
            // run: the sink's, said at the end).
            if let Err((late, source)) = writers.flush() {
                let target = writers.describe(late).unwrap_or_default();
                let e = SinkError {
                    target,
                    late,
                    source,
                };
                self.sink_event(&e);
                writers.fail(e.late, e.source);
                return Ok(self.sink_failed());
            }
        } else {
            // Flushed (a rotation followed: the files open now under the
            // names), synced, measured.
            writers.flush().map_err(|(_, e)| e)?;
        }
        let [output, late] = writers.measure()?;
        let mut marker = checkpoint.marker.clone();
        marker.epoch = e;
        let number = checkpoint.number.load(Ordering::SeqCst) + 1;
        marker.number = number;
        if let Some(sink) = writers.sink() {
            match sink.prepare(number) {
                Ok(state) => marker.sink = state.data,
                Err(e) => {
                    self.sink_event(&e);
                    writers.fail(e.late, e.source);
                    return Ok(self.sink_failed());
                }
            }
        }
        // (with `--output-per-worker` each worker's file has its own
        // length, `WorkerFile::own`: worker 0's writers write `FILE.0`)
        if !marker.output_per_worker {
            (marker.output, marker.output_head) = output.unwrap_or_default();
        }
        (marker.late, marker.late_head) = late.unwrap_or_default();
        cut::write(&folder, cut::COMPLETE, &cut::encode_marker(&marker)?)?;
        checkpoint.number.store(number, Ordering::SeqCst);
        if to_sink {
            // The cut is durable: the sink commits it with the sources'
            // positions in it. Until that returned, the cut before stays
            // (resuming, the sink says which of the two it committed).
            if let Err(e) = commit(&checkpoint.dir, e, number, &mut writers) {
                self.sink_event(&e);
                writers.fail(e.late, e.source);
                return Ok(self.sink_failed());
            }
        }
        cut::prune(&checkpoint.dir, e);
        drop(writers);
        if self.observes {
            self.say.report().event(&RunEvent::Checkpoint {
                number,
                duration: since.elapsed(),
                bytes: cut::bytes(&folder),
                // (worker 0's writer, syncing the outputs and writing
                // `complete`; each worker wrote its own file on its thread)
                stall: completing.elapsed(),
                deferred: 0,
            });
        }
        Ok(true)
    }

    /// Says to an observing report that a cut could not be completed
    /// ([`RunEvent::CheckpointFailed`]).
    fn failed_event(&self, error: &cepheid_runtime::Error) {
        if self.observes {
            self.say
                .report()
                .event(&RunEvent::CheckpointFailed { error });
        }
    }

    /// [`Cutter::failed_event`] of the sink's error `e` at a cut.
    fn sink_event(&self, e: &SinkError) {
        if self.observes {
            self.failed_event(&cepheid_runtime::Error::Sink(copied(e)));
        }
    }

    /// The sink failed at a cut: the input stops (no more cuts), and the
    /// run ends with its error (kept in the writers, said with the
    /// summary). The cut is not retried.
    fn sink_failed(&self) -> bool {
        self.failed.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        true
    }
}

/// Commits the complete cut at `e` (number `number`) in the writers'
/// sink, with the positions of the workers' sources in it put together
/// ([`Sink::join_positions`](cepheid_runtime::Sink::join_positions)).
fn commit(
    dir: &Path,
    e: Timestamp,
    number: u64,
    writers: &mut Writers,
) -> Result<(), cepheid_runtime::SinkError> {
    let target = writers.describe(false).unwrap_or_default();
    let Some(sink) = writers.sink() else {
        return Ok(());
    };
    let failed = |why: String| cepheid_runtime::SinkError {
        target: target.clone(),
        late: false,
        source: io::Error::other(why),
    };
    let resume = cut::read_at(dir, e)
        .map_err(|why| failed(format!("the cut just written cannot be read: {why}")))?;
    let shares = positions(&resume.workers)
        .map_err(|why| failed(format!("the cut just written cannot be read: {why}")))?;
    let position = sink.join_positions(&shares)?;
    sink.commit(number, &position)
}

/// What an observing report is told of a cut's file (or folder) at
/// `path` that could not be written ([`RunEvent::CheckpointFailed`]).
fn cut_failed(path: &Path, source: io::Error) -> cepheid_runtime::Error {
    cepheid_runtime::Error::Io {
        doing: cepheid_runtime::Doing::WriteCheckpoint,
        path: path.display().to_string(),
        source,
    }
}

/// A copy of a sink's error (its I/O error's kind and text), for
/// [`RunEvent::CheckpointFailed`] while the run keeps the error itself.
fn copied(e: &SinkError) -> SinkError {
    SinkError {
        target: e.target.clone(),
        late: e.late,
        source: io::Error::new(e.source.kind(), e.source.to_string()),
    }
}

/// Cuts given up in a row before it is said why.
const MISSES_TOLD: u32 = 3;

/// What reaches worker 0: the outputs to write, the counts to add.
struct Gathered {
    writers: Option<write::Shared>,
    /// Made at or above the epoch of a cut under way: written after it.
    held: Vec<Chunk>,
    /// Made by the end of a file's input, after the cut before it
    /// ([`Cuts::before_end`]): written once the run's last cut is
    /// complete.
    after_end: Vec<Chunk>,
    summary: Counts,
}

impl Gathered {
    fn flush_now(&mut self) {
        if let Some(w) = &self.writers {
            lock(w).flush_now();
        }
    }

    fn take(&mut self, chunk: Chunk) {
        match chunk {
            Chunk::Out(block) => {
                if let Some(w) = &self.writers {
                    lock(w).write(false, &block);
                }
            }
            Chunk::Late(block) => {
                if let Some(w) = &self.writers {
                    lock(w).write(true, &block);
                }
            }
            Chunk::Summary(summary) => self.summary.add(&summary),
        }
    }
}

/// Flushes the outputs and gives the run's [`Summary`] (worker 0 of
/// process 0, with every worker's counts); says what the single run says
/// as it happens (a failed flush, forced watermarks).
fn finish(
    config: &Config,
    scale: &Scale,
    writers: &mut Writers,
    counts: Counts,
    stopped: Option<String>,
    started: Instant,
    say: &Say,
) -> Summary {
    let mut summary = Summary {
        events: counts.events,
        malformed: counts.malformed,
        late: counts.late,
        matches: counts.matches,
        timeouts: counts.timeouts,
        unusable_keys: counts.unusable_keys,
        dropped_runs: counts.dropped_runs.saturating_sub(counts.capped_runs),
        dropped_keys: usize::try_from(counts.dropped_keys).unwrap_or(usize::MAX),
        dropped_keys_overflow: counts.dropped_keys_overflow,
        capped_runs: counts.capped_runs,
        forced_watermarks: counts.forced,
        waiting: usize::try_from(counts.waiting).unwrap_or(usize::MAX),
        reloads: counts.reloads,
        reloads_refused: counts.reloads_refused,
        reloads_late: counts.reloads_late,
        discarded_runs: counts.discarded,
        flushed: true,
        layout: Some(SummaryLayout {
            processes: scale.processes,
            workers: scale.workers,
        }),
        patterns: counts.patterns,
        ..Summary::default()
    };
    if let Err((late, source)) = writers.flush() {
        summary.elapsed = started.elapsed();
        summary.flushed = false;
        let stdout = config.output.is_none() && writers.describe(false).is_none();
        if !late && stdout && source.kind() == io::ErrorKind::BrokenPipe {
            // A closed standard output (`| head`): quietly.
            summary.end = End::OutputClosed;
            return summary;
        }
        let target = match (late, &config.late, &config.output) {
            _ if writers.describe(late).is_some() => writers.describe(late).unwrap_or_default(),
            (true, Some(path), _) => path.display().to_string(),
            (true, None, _) => "the late file".to_string(),
            (false, _, Some(path)) => path.display().to_string(),
            (false, _, None) => "standard output".to_string(),
        };
        let e = cepheid_runtime::SinkError {
            target,
            late,
            source,
        };
        say!(say, Error, "error: {e}");
        summary.end = End::Failed(cepheid_runtime::Error::Sink(e));
        return summary;
    }
    if counts.forced > 0 {
        // The single run says it when it happens; here the sources count it.
        say!(
            say,
            Warning,
            "cepheid: more than {} events waited for the watermark; it moved up to the earliest of them (`Config::max_waiting`; raise it to let more wait)",
            config.max_waiting
        );
    }
    summary.elapsed = started.elapsed();
    summary.end = if let Some(why) = stopped {
        End::Stopped(why)
    } else if let Some((path, why)) = counts.read_error {
        End::Incomplete(cepheid_runtime::Error::Io {
            doing: cepheid_runtime::Doing::Read,
            path,
            source: io::Error::other(why),
        })
    } else if let Some((origin, line, why)) = counts.strict_stop {
        End::Incomplete(cepheid_runtime::Error::Malformed {
            origin,
            line,
            source: cepheid_engine::Error::new(ErrorKind::Input, why),
        })
    } else {
        End::Input
    };
    summary
}

/// `1 worker`, `2 workers`: a count with its noun.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_runtime::source::Position;

    fn place(names: &[&str], splits: &[Option<Timestamp>], at: u8) -> SourcePlace {
        SourcePlace {
            position: Position::Bytes(vec![at]),
            splits: splits.to_vec(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_new_source_takes_the_watermarks_of_its_splits_from_the_old_places() {
        // Two old workers: partitions 0 and 2, and 1.
        let olds = [
            place(&["t/0", "t/2"], &[Some(100), Some(300)], 0),
            place(&["t/1"], &[Some(200)], 1),
        ];
        let at = Position::Bytes(vec![9]);
        // A new worker with partitions 2 and 1: each split's own, its clock
        // at their least, its lines above the old ones'.
        let got = share(&olds, &names(&["t/2", "t/1"]), at.clone(), 70);
        assert_eq!(got.place.splits, [Some(300), Some(200)]);
        assert_eq!(got.place.names, names(&["t/2", "t/1"]));
        assert_eq!(got.place.position, at);
        assert_eq!((got.lines, got.start), (70, Some(200)));
        // One split no old place knows (a partition added since): no start
        // of its own (the retired sources' least, `WorkerCut::rescale`).
        let got = share(&olds, &names(&["t/0", "t/3"]), at.clone(), 0);
        assert_eq!(got.place.splits, [Some(100), None]);
        assert_eq!(got.start, None);
        // A split that had delivered nothing keeps none.
        let quiet = [place(&["t/0", "t/1"], &[Some(5), None], 0)];
        let got = share(&quiet, &names(&["t/1"]), at.clone(), 0);
        assert_eq!((got.place.splits, got.start), (vec![None], None));
        // Named twice (not the shares of one cut): the least.
        let twice = [olds[0].clone(), place(&["t/2"], &[Some(250)], 2)];
        let got = share(&twice, &names(&["t/2"]), at, 0);
        assert_eq!((got.place.splits, got.start), (vec![Some(250)], Some(250)));
    }

    #[test]
    fn a_place_is_read_in_either_form_and_its_watermarks_found_by_name() {
        let named = place(&["t/0", "t/1"], &[Some(1), Some(2)], 3);
        let bytes = postcard::to_allocvec(&named).unwrap();
        assert_eq!(SourcePlace::decode(&bytes).unwrap(), named);
        assert_eq!(
            named.watermarks_of(&names(&["t/1", "t/9"])),
            [Some(2), None]
        );
        // A cut taken before the names were kept: by split number.
        #[derive(Serialize)]
        struct Unnamed {
            position: Position,
            splits: Vec<Option<Timestamp>>,
        }
        let old = Unnamed {
            position: Position::Bytes(vec![3]),
            splits: vec![Some(1), Some(2)],
        };
        let read = SourcePlace::decode(&postcard::to_allocvec(&old).unwrap()).unwrap();
        assert!(read.names.is_empty());
        assert_eq!(read.watermarks_of(&names(&["a", "b"])), [Some(1), Some(2)]);
        assert!(SourcePlace::decode(&[0xff, 0xff]).is_err());
    }

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
                "--watch with --workers needs live input (--follow FILE or standard input): the chunks of a file are read by every worker, and no one reader takes the reload",
            ),
            (
                with(|c| {
                    c.rules_from_stream = true;
                    c.checkpoint = Some("checkpoints".into());
                }),
                Refusal::RulesFromStreamCheckpoint,
                "--rules-from-stream with --checkpoint is not supported with --workers or --processes yet (their checkpoints do not keep the rules a control record put in force)",
            ),
            (
                with(|c| {
                    c.source_rules = true;
                    c.checkpoint = Some("checkpoints".into());
                }),
                Refusal::SourceRules,
                "--rules-topic with --checkpoint is not supported with --workers or --processes yet (their checkpoints do not keep the rules a rules record put in force)",
            ),
        ];
        // A source's rules stream without checkpoints is taken.
        assert_eq!(refused_by_new(&with(|c| c.source_rules = true)), None);
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
            "--time kafka with --workers or --processes needs a Kafka source (--events kafka://...)"
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
