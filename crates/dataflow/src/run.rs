//! The run of `cepheid run --workers N` and `--processes P --process I
//! --hostfile FILE` as a library: the runtime's executor on workers. A
//! [`Cluster`] of a [`Scale`] (workers, processes, this process, the
//! hostfile, output per worker), given to
//! [`Runtime::on_cluster`](cepheid_runtime::Runtime::on_cluster) with the
//! runtime's [`Config`], runs this crate's operators on worker threads and
//! processes: the run's `Handle`, `Summary` and errors are the runtime's,
//! as on one engine. What it refuses is an [`Error`] (in the runtime's
//! `Error::Cluster`), data the command maps to its exit statuses and
//! messages.
//!
//! - **Input.** With `--events FILE`, the file is cut in chunks of 1 MiB
//!   on line boundaries, dealt to the workers in turn
//!   (`dataflow::FileChunks`; a CSV chunk after the first starts with the
//!   header); each worker reads and decodes its chunks on its own thread
//!   with the runtime's reader of a share (`ShareReader`: the single run's
//!   input policy), a source of its own with its own watermark
//!   (`--max-delay` and `$watermark` lines of its chunks). Events are
//!   late by their own part's watermark: with disorder within
//!   `--max-delay` that is the same as one reader. `Handle::stop`
//!   (SIGINT, SIGTERM) stops each part where it is (it looks every 1,024
//!   lines, `PartsStop`), as one engine stops between two batches.
//! - **Live input.** Standard input, or a file with `--follow`, is read by
//!   worker 0 (of process 0) with the runtime's reader thread
//!   (`cepheid_runtime::source::LiveInput`), whose batches worker 0's
//!   source pulls on the worker's own thread (`run/items.rs`, `Live`),
//!   woken by the reader when it sends something: the workers never wait
//!   on the input, and nothing runs while it is quiet. While the reader
//!   waits for input (its last batch stalled), worker 0 flushes what it
//!   writes as it comes, as the single run does. `--idle-timeout`
//!   applies to that source (the rule of
//!   `cepheid_engine::engine::Idle`); `Handle::stop` (SIGINT, SIGTERM)
//!   stops the input (event time stays where it got; summary; exit 130
//!   or 143).
//! - **Output.** One `--output` and `--late`, opened by process 0, and
//!   one summary (each worker's counts sent to worker 0 of process 0,
//!   which hands them to the runtime: it adds them up, flushes the output
//!   and makes the summary, `cepheid_runtime::executor::Ended`, as it
//!   makes one engine's): matches and timeouts as JSON lines as `cepheid run`
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
//!   records at a cut; `Handle::stop` stops the feed and the workers
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
//!   the runtime in process 0 over every process's readers (their views
//!   come with the counts, `executor::Ended`), with the single run's
//!   message.
//! - **An observing report** (`--metrics`, `--stats-every`): the sums of
//!   what the workers publish now and then (the runtime's `Board`, shown
//!   by the runtime), a followed
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
use std::thread;
use std::time::{Duration, Instant};

use cepheid_decode::{Decoder, Format};
use cepheid_engine::engine::{LeftOutParts, MatchRef, Sink, Stats};
use cepheid_engine::{ErrorKind, Record, Rules, Timestamp};
use cepheid_runtime::checkpoint::{rotated_since, said_at_stop, store, Piece, Stored};
use cepheid_runtime::executor::Ended;
use cepheid_runtime::jsonl::Formatter;
use cepheid_runtime::source::FieldWarnings as Fields;
use cepheid_runtime::source::{
    Control, FilePosition as Position, Got, Heard, Lines, LiveInput, Policy, RulesRead,
    ShareReader, Source, Tail,
};
use cepheid_runtime::FieldWatch;
use cepheid_runtime::{
    Block, Config, EngineNumbers, Kind, Layout as SummaryLayout, Level, LimitNotices, Notice,
    Report, RunEvent, SinkError, Tap, Time, Unusable, MAX_DROP_KEYS,
};
use serde::{Deserialize, Serialize};
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::{Concat, Operator};
use timely::scheduling::SyncActivator;
use timely::{CommunicationConfig, WorkerConfig};

use crate::pattern::Pattern;
use crate::source::{pull_source, Pull, Pulled};
use crate::{
    cep, cep_cut, cut_requests, group_worker, key_group, AuditPart, Change, Collect, Cuts, Due,
    FileChunks, Lateness, Place, Plan, Requests, SourceItem, SourceState, WorkerCut,
};

/// Says a line to the run's [`Report`]: `say!(to, Level, "format", ...)`.
macro_rules! say {
    ($to:expr, $level:ident, $($arg:tt)*) => {
        $to.line(Level::$level, format_args!($($arg)*))
    };
}

mod connect;
mod cut;
mod cutter;
mod decisions;
mod emit;
mod error;
mod items;
mod job;
mod single;
mod write;

use cepheid_runtime::audit::{not_reloaded, reloaded, Origin, RuleChange};
use cepheid_runtime::Counts;
use cepheid_runtime::{
    Board, Handle, Outputs, Published, RestoredCluster, Strict, PUBLISH_EVERY, STATE_EVERY,
};
use cut::{checkpoints, Checkpoint, RunPlan};
use cutter::{cut_failed, Cutter, Failed, Gathered};
use emit::{panic_message, Chunk, Drops, Emit, Failing, PeerStop, Publish};
use error::unusable;
pub use error::{Error, Refusal};
use items::{positions, Live, PartItems, PartsInput, ReadCounts, Share, SourcePlace};
use job::{rules_item, Job};

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

    /// Says `event` to a report that observes the run (a change of rules
    /// made or refused, as one engine's run says it).
    fn event(&self, event: &RunEvent<'_>) {
        let mut report = self.report();
        if report.observes() {
            report.event(event);
        }
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
    /// from `p * workers`): those a run takes a source for
    /// (`Runtime::on_cluster`), in order.
    pub fn own_workers(&self) -> std::ops::Range<usize> {
        self.process * self.workers..(self.process + 1) * self.workers
    }

    /// Workers over every process.
    pub fn all_workers(&self) -> usize {
        self.workers * self.process_count()
    }

    /// Where the run runs, as its summary says it.
    fn summary_layout(&self) -> SummaryLayout {
        SummaryLayout {
            processes: self.processes,
            workers: self.workers,
        }
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

/// The runtime's executor on workers
/// ([`cepheid_runtime::Cluster`]): a run's matching on the worker threads
/// and processes of a [`Scale`], given to
/// [`Runtime::on_cluster`](cepheid_runtime::Runtime::on_cluster).
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    scale: Scale,
}

impl Cluster {
    /// The cluster of `scale`.
    pub fn new(scale: Scale) -> Cluster {
        Cluster { scale }
    }
}

impl cepheid_runtime::Cluster for Cluster {
    fn check(&self, config: &Config, sink: bool) -> Result<(), cepheid_runtime::Error> {
        Workers::check(config, &self.scale, sink).map_err(|why| Error::Refused(why).into())
    }

    fn workers(&self) -> (std::ops::Range<usize>, usize) {
        (self.scale.own_workers(), self.scale.all_workers())
    }

    fn process(&self) -> usize {
        self.scale.process
    }

    fn layout(&self) -> cepheid_runtime::WorkerLayout {
        cepheid_runtime::WorkerLayout {
            processes: self.scale.process_count(),
            workers: self.scale.workers,
            chunk_bytes: self.scale.chunk_bytes,
            output_per_worker: self.scale.output_per_worker,
        }
    }

    fn positions(
        &self,
        pieces: &[Piece],
    ) -> Result<Vec<cepheid_runtime::source::Position>, Unusable> {
        positions(pieces)
    }

    fn open(
        self: Box<Self>,
        config: Config,
        rules: &Rules,
        report: Box<dyn Report>,
        sources: Option<cepheid_runtime::Sources>,
        sink: Option<&dyn cepheid_runtime::Sink>,
        resumed: Option<Stored>,
        board: Option<Arc<Board>>,
    ) -> Result<Box<dyn RestoredCluster>, cepheid_runtime::Error> {
        let mut workers = Workers::new(&config, &self.scale, rules, report)?;
        workers.board = board;
        workers.resumed = resumed;
        if let Some(sources) = sources {
            workers = workers.with_sources(sources);
        }
        if let Some(sink) = sink {
            workers.sink = Some(ToSink {
                commits_at_end: sink.commits_at_end(),
                takes_late: sink.takes_late(),
                takes_decisions: sink.takes_decisions(),
            });
        }
        Ok(Box::new(workers.open()?))
    }
}

impl RestoredCluster for Restored {
    fn resumed_rules(&self) -> (bool, bool) {
        self.rules
    }

    fn start(
        self: Box<Self>,
        outputs: Outputs,
    ) -> Result<Box<dyn cepheid_runtime::OpenCluster>, cepheid_runtime::Error> {
        Ok(Box::new(self.into_opened(outputs)?))
    }
}

/// The records (matches, timeouts and late events) go to a sink
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
/// others' sinks are not written); with checkpoints, process 0's sink
/// chooses the cut to resume from ([`Sink::recover`](cepheid_runtime::Sink::recover)),
/// the other processes ask theirs which one it committed without
/// taking over ([`Sink::committed`](cepheid_runtime::Sink::committed)),
/// and the processes check that they agree before they start. What it takes
/// is asked when the run opens (`Cluster::open`),
/// and the runtime opens it with the outputs.
#[derive(Clone, Copy, Debug)]
struct ToSink {
    /// It commits at the end ([`Sink::commits_at_end`](cepheid_runtime::Sink::commits_at_end)).
    commits_at_end: bool,
    /// It takes the late events.
    takes_late: bool,
    /// It takes decisions (a topic of its own), gathered by worker 0 as
    /// for a decisions file.
    takes_decisions: bool,
}

/// A run of the runtime's [`Config`] on several workers (threads of this
/// process, and processes): checked and compiled, not opened yet.
struct Workers {
    config: Config,
    scale: Scale,
    plan: Plan<Record>,
    /// Where the workers publish their numbers, when the report observes
    /// the run.
    board: Option<Arc<Board>>,
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
    /// The records go to a sink instead of the files ([`ToSink`]).
    sink: Option<ToSink>,
    /// The checkpoint it resumes from, as the runtime read and chose it
    /// (`Config::checkpoint`).
    resumed: Option<Stored>,
    /// The rules when they have scenes: with a decisions file or a sink
    /// that takes decisions, those worker 0 resolves the engines' parts
    /// by (`run/decisions.rs`).
    rules: Option<Rules>,
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
    /// `sink` when its records go to a sink ([`ToSink`]):
    /// what [`Workers::new`] and then [`Workers::run`] refuse, checked at
    /// once, for a caller that opens sources or a sink before the run (a
    /// Kafka client asks its broker) and would refuse the run before it
    /// asks anything.
    fn check(config: &Config, scale: &Scale, sink: bool) -> Result<(), Refusal> {
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
    fn new(
        config: &Config,
        scale: &Scale,
        rules: &Rules,
        report: Box<dyn Report>,
    ) -> Result<Workers, Error> {
        refuse(config).map_err(Error::Refused)?;
        // (not for every rule set with lists: routing as rules that can
        // change costs 5% more instructions, `BENCHMARKS.md`, and a
        // change through the handle is then refused, said)
        let changing = config.rules_from_stream
            || config.lists_from_stream
            || config.watch
            || config.source_rules;
        // (a pattern reading indicators its key does not fix runs, its
        // engines sharing them over the whole stream, unless its rules
        // can change)
        let refused = |p: &Pattern| match changing {
            true => not_on_workers(p).map(|r| r.under_changes()),
            false => not_on_workers_from_start(p),
        };
        if let Some(refusal) = rules.patterns().iter().find_map(refused) {
            return Err(Error::Refused(refusal));
        }
        let mut plan = Plan::<Record>::new()
            .max_runs_per_key(config.max_runs_per_key)
            .max_live_runs(config.max_live_runs)
            .max_list_entries(config.max_list_entries)
            .max_indicator_entries(config.max_indicator_entries);
        if changing {
            plan = plan.changing(config.reload_policy);
        }
        // (each group's engine decides its part; worker 0 gathers them)
        if config.decisions.is_some() {
            plan = plan.gathering_decisions();
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
            board: None,
            agreement,
            // (each read located `path:line:column`, as the single run's)
            field_watch: FieldWatch::from_rules(rules),
            say,
            messages,
            sources: None,
            sink: None,
            resumed: None,
            rules: (!rules.scenes().is_empty()).then(|| rules.clone()),
        })
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
    /// only ([`Unusable::SourcesWorkers`]).
    fn with_sources(mut self, sources: Vec<Option<Box<dyn Source>>>) -> Workers {
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
        self
    }

    /// Opens it: refuses outputs it does not take ([`Refusal`]), reads
    /// the hostfile, restores the checkpoint the runtime chose (its
    /// pieces checked against the plan, their rules and places); the
    /// runtime then says the resume and opens the outputs
    /// ([`Restored::into_opened`]), and the workers start (after connecting to
    /// the other processes and checking that they run the same command)
    /// when it runs ([`Opened`]).
    fn open(self) -> Result<Restored, Error> {
        let Workers {
            config,
            scale,
            mut plan,
            board,
            agreement,
            field_watch,
            say,
            messages,
            sources,
            sink,
            resumed,
            rules: decided_by,
        } = self;
        refuse_to_run(&config, &scale, sink.is_some())?;
        // (a sink that takes decisions, a decisions topic or the rule
        // lab's, gets them as a decisions file does: gathered by worker 0)
        let to_sink = sink.as_ref().is_some_and(|s| s.takes_decisions);
        let gathers = config.decisions.is_some() || to_sink;
        if gathers && !plan.gathers_decisions() {
            plan = plan.gathering_decisions();
        }
        let decided_by = decided_by.filter(|_| gathers);
        // A file's parts: each worker reads its own, and looks now and
        // then at what a handle asks (a stop, a reload).
        let parts = (!live(&config) && sources.is_none()).then(|| {
            let policy = Policy::new(config.input.describe(), config.strict);
            Arc::new(PartsInput::new(LiveInput::new(policy)))
        });
        // (sources of the library's user: the first of this process's
        // that reads anything takes the reloads)
        let reload_reader = (sources.iter().flatten())
            .position(|(source, _, _)| source.is_some())
            .filter(|_| scale.first_process());
        let reader_of_sources =
            (sources.as_ref().zip(reload_reader)).map(|(sources, reader)| &sources[reader].2);
        let _watch = watch(
            &config,
            &scale,
            (&messages, &parts, reader_of_sources),
            &say,
        );
        let mut layout = layout(&scale)?;
        if let Layout::Cluster {
            agreement: agreed, ..
        } = &mut layout
        {
            *agreed = agreement;
        }
        let (mut checkpoint, resume, shares, rules) = open_checkpoints(
            &config,
            &scale,
            sources.as_deref(),
            sink,
            resumed,
            &mut plan,
            &say,
        )?;
        // (resumed: from what the cut saw and said, as one engine goes on
        // from its checkpoint's)
        let fields = config.field_warnings.map(|after| {
            let fields = Fields::new(after, field_watch, scale.workers);
            Arc::new(match &resume {
                Some((marker, _)) => fields.resuming(marker.the_counters()),
                None => fields,
            })
        });
        if let (Some(board), Some(fields)) = (&board, &fields) {
            board.show_fields(Arc::clone(fields));
        }
        if let Some(checkpoint) = &mut checkpoint {
            checkpoint.fields.clone_from(&fields);
        }
        Ok(Restored {
            config,
            scale,
            plan,
            board,
            say,
            messages,
            sources,
            sink,
            parts,
            reload_reader,
            _watch,
            layout,
            fields,
            checkpoint,
            resume,
            shares,
            rules,
            decided_by,
        })
    }
}

/// A run on workers whose checkpoint is restored ([`Workers::open`]),
/// its outputs not open yet ([`Restored::into_opened`]).
struct Restored {
    config: Config,
    scale: Scale,
    plan: Plan<Record>,
    board: Option<Arc<Board>>,
    say: Say,
    messages: Option<LiveInput>,
    sources: Option<Vec<OwnSource>>,
    sink: Option<ToSink>,
    parts: Option<Arc<PartsInput>>,
    reload_reader: Option<usize>,
    _watch: Vec<cepheid_runtime::source::PatternWatch>,
    layout: Layout,
    fields: Option<Arc<Fields>>,
    checkpoint: Option<Checkpoint>,
    resume: Option<(cepheid_runtime::checkpoint::Marker, Vec<Piece>)>,
    shares: Vec<Option<Share>>,
    /// With which rules the cut goes on: changed while it ran, and the
    /// pattern files edited since.
    rules: (bool, bool),
    /// With a decisions file: the rules whose scenes decide
    /// ([`Job::rules`]).
    decided_by: Option<Rules>,
}

impl Restored {
    /// Takes this process's `outputs` (opened by the runtime, the cut's
    /// lengths recovered) and opens the run: the reference files read,
    /// the audit's first record written.
    fn into_opened(self, outputs: Outputs) -> Result<Opened, Error> {
        let Restored {
            config,
            scale,
            mut plan,
            board,
            say,
            messages,
            sources,
            sink,
            parts,
            reload_reader,
            _watch,
            mut layout,
            fields,
            checkpoint,
            mut resume,
            shares,
            rules: _,
            decided_by,
        } = self;
        // The reference files, read once by each process before its
        // workers start (resumed: what they changed since the cut).
        let read = cepheid_runtime::lists::read_lists(
            &config,
            &mut RunPlan {
                plan: &mut plan,
                config: &config,
            },
            resume.as_mut(),
            scale.first_process() && sink.is_none(),
            &mut |n| say.report().notice(n),
        )
        .map_err(Error::Runtime)?;
        let (digest, lists_not_applied) = (read.digest, read.not_applied);
        let checkpoint = checkpoint.map(|mut c| {
            c.lists = read.at_start;
            Arc::new(c)
        });
        if let Layout::Cluster { agreement, .. } = &mut layout {
            // Every process goes on from the same cut (a folder some do
            // not see as the others do would give silent wrong records),
            // with the same lists.
            let cut = resume.as_ref().map(|(marker, _)| marker.number());
            let cut = cut.map_or("none".to_string(), |n| format!("number {n}"));
            agreement.push_str(&format!("the checkpoint resumed: {cut}\n"));
            agreement.push_str(&digest);
        }
        if let (Some(input), true) = (
            &messages,
            checkpoint.as_ref().is_some_and(|c| c.reload_files),
        ) {
            // (before any line: the files as the cut's rules, at its place;
            // a file's parts and sources have them as a change of the cut)
            input
                .handle()
                .reload("the pattern files changed since the checkpoint");
        }
        if let (Some(tap), Some((marker, _))) = (board.as_ref().and_then(|b| b.tap()), &resume) {
            // (a resumed run shows the latest records made before it)
            for (kind, record) in marker.latest_records() {
                lock(tap).push(*kind, record.as_bytes());
            }
        }
        // (late events are made for a sink that takes them)
        let sink_takes_late = sink.is_some_and(|s| s.takes_late);
        let audit = audit_join(&config, &scale, &plan, resume.as_ref(), &outputs);
        if let Some(board) = &board {
            board.show_history(Arc::clone(&audit.history));
        }
        if sources.is_none() {
            opens(&config.input)?;
        }
        let live = live(&config) || sources.is_some();
        let job = Arc::new(Job {
            rules: decided_by,
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
            parts,
            reload_reader,
            failing: Arc::default(),
            chunk_bytes: scale.chunk_bytes,
            out: outputs.shared,
            own: outputs.own,
            write_failed: Failed::default(),
            source_failed: Failed::default(),
            stop_all: std::sync::OnceLock::new(),
            peer_stop: (scale.own_workers(), Arc::default()),
            read_failed: Arc::default(),
            stop: Arc::default(),
            cluster: scale.cluster(),
            checkpoint,
            resume: Mutex::new(resume.map(|(_, pieces)| pieces)),
            shares: Mutex::new(shares),
            checkpoint_failed: Arc::default(),
            say: say.clone(),
            board,
            fields: fields.clone(),
            controls: (matches!(config.format, Format::JsonLines) || config.source_rules)
                .then(|| Arc::new(config.clone())),
            reloads: config.watch.then(|| Arc::new(config.clone())),
            lists: read.watched,
            audit: Arc::new(audit),
            lists_not_applied,
        });
        let handle = handle_of(&job);
        if let Some(handle) = &handle {
            let _ = job.stop_all.set(handle.clone());
        }
        Ok(Opened {
            job,
            layout,
            scale,
            _watch,
            handle,
        })
    }
}

/// The audit records of the process's changes of rules, with the history
/// of the cut resumed; a run that starts (not resumed) has the record of
/// its rules first, written by process 0 before any other record.
fn audit_join(
    config: &Config,
    scale: &Scale,
    plan: &Plan<Record>,
    resume: Option<&(store::Marker, Vec<Piece>)>,
    outputs: &Outputs,
) -> emit::AuditJoin {
    let history = resume.map_or_else(Default::default, |(marker, _)| marker.the_history().clone());
    // (an audit file, or a sink's audit topic)
    let takes = (outputs.shared.as_ref()).is_some_and(|o| write::lock(o).sink().takes_audit());
    let join = emit::AuditJoin::new(
        scale.own_workers().len(),
        (scale.cluster(), scale.first_process()),
        takes,
        history,
    );
    if resume.is_none() && scale.first_process() {
        let origin = Origin::files(&config.patterns, None);
        let none = cepheid_core::lookup::Declarations::default();
        let declared = cepheid_runtime::audit::started_empty(&none, &plan.declarations());
        let patterns = (plan.patterns().iter()).map(|p| (p.name.clone(), 1));
        let record = RuleChange::initial(origin, config.reload_policy, patterns, declared);
        if let (true, Some(out)) = (join.write, &outputs.shared) {
            write::lock(out).write(Kind::Audit, b"", record.line().as_bytes());
        }
        join.keep_first(record);
    }
    join
}

/// A run on workers, opened: its checkpoint read, its outputs open; run
/// by [`OpenCluster::run`](cepheid_runtime::OpenCluster::run).
struct Opened {
    job: Arc<Job>,
    layout: Layout,
    scale: Scale,
    /// Watched pattern paths (held for the whole run).
    _watch: Vec<cepheid_runtime::source::PatternWatch>,
    handle: Option<cepheid_runtime::Handle>,
}

/// The handle of the live input `job` reads: its sources', or its reader
/// thread's, or its file's parts' (`None`: it reads nothing).
fn handle_of(job: &Job) -> Option<cepheid_runtime::Handle> {
    if let Some(sources) = &job.sources {
        let sources = sources.lock().unwrap_or_else(|e| e.into_inner());
        let readers = sources.iter().flatten().filter(|(s, _, _)| s.is_some());
        let handles: Vec<_> = readers.map(|(_, handle, _)| handle.clone()).collect();
        return (!handles.is_empty()).then(|| handles.into_iter().collect());
    }
    if let Some(parts) = &job.parts {
        return Some(parts.handle());
    }
    let messages = job.messages.lock().unwrap_or_else(|e| e.into_inner());
    Some(messages.as_ref()?.handle())
}

impl cepheid_runtime::OpenCluster for Opened {
    fn handle(&self) -> Option<cepheid_runtime::Handle> {
        self.handle.clone()
    }

    /// Starts the workers (connected to the other processes first, which
    /// must run the same command) and waits for them: what they counted
    /// and what failed, which the runtime ends the run with.
    fn run(self: Box<Self>) -> Ended {
        let Opened {
            job,
            layout,
            scale,
            _watch,
            handle,
        } = *self;
        let say = job.say.clone();
        let cluster = scale.cluster();
        if cluster {
            short_thread_panics();
        }
        let asked: connect::Asked = Arc::new(move || handle.as_ref()?.stop_asked());
        let guards = execute(layout, &say, &asked, {
            let job = Arc::clone(&job);
            move |worker| job.work_or_fail(worker)
        });
        let guards = match guards {
            Ok(guards) => guards,
            Err(Start::Differ(why)) => return failed(&scale, Error::Differ(why)),
            Err(Start::Failed(why)) => return failed(&scale, Error::Start(why)),
            Err(Start::Stopped(why)) => {
                // (nothing read, nothing to keep: no counts, as another
                // process's)
                say!(
                    say,
                    Info,
                    "cepheid: stopped by {why} before the other processes were met"
                );
                return Ended {
                    stopped: Some(why),
                    ..Ended::on(scale.summary_layout())
                };
            }
        };
        // A peer process that dies (killed, its machine gone) makes
        // timely's networking threads panic, and joining them panicked
        // this process (exit 101, a backtrace, no hint): it stops with
        // exit 4 and says how to go on (issue 26).
        JOINING.store(true, Ordering::Relaxed);
        let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()));
        JOINING.store(false, Ordering::Relaxed);
        let Ok(results) = joined else {
            let checkpoint = job.config.checkpoint.is_some();
            return failed(&scale, Error::ConnectionLost { checkpoint });
        };
        outcome_of(results, &job, &scale)
    }
}

/// A run that failed with `e` before its workers could count anything
/// (said by the runtime, the summary's end).
fn failed(scale: &Scale, e: Error) -> Ended {
    Ended {
        failed: vec![e.into()],
        ..Ended::on(scale.summary_layout())
    }
}

/// The checkpoints of a run with `Config::checkpoint`: what
/// [`checkpoints`] makes of the checkpoint `resumed` (the runtime's
/// choice), the cuts to come (a last one at the end of a file, or at the
/// end for a sink that commits there).
fn open_checkpoints(
    config: &Config,
    scale: &Scale,
    sources: Option<&[OwnSource]>,
    sink: Option<ToSink>,
    resumed: Option<Stored>,
    plan: &mut Plan<Record>,
    say: &Say,
) -> Result<OpenCheckpoints, Error> {
    let Some(dir) = &config.checkpoint else {
        return Ok((None, None, Vec::new(), (false, false)));
    };
    let commits_at_end = sink.is_some_and(|s| s.commits_at_end);
    let shape = (scale.process_count(), scale.workers);
    let to_sink = sink.is_some();
    let (checkpoint, resume, shares, rules) = checkpoints(
        config, scale, sources, to_sink, resumed, dir, plan, shape, say,
    )?;
    if commits_at_end {
        checkpoint.cuts.at_end();
    } else if !live(config) && sources.is_none() {
        // A file: a last cut at its end, before the end moves event time
        // on (as one engine's checkpoint there), from which a run over the
        // file grown since goes on.
        checkpoint.cuts.before_end();
    }
    Ok((Some(checkpoint), resume, shares, rules))
}

/// What [`open_checkpoints`] gives (and with which rules the cut goes
/// on: [`RestoredCluster::resumed_rules`]).
type OpenCheckpoints = (
    Option<Checkpoint>,
    Option<(cepheid_runtime::checkpoint::Marker, Vec<Piece>)>,
    Vec<Option<Share>>,
    (bool, bool),
);

/// How the run went, from what each worker of this process ended with:
/// worker 0 of process 0 every worker's counts (another process's holds
/// none: the runtime's summary then counts nothing, `Summary::uncounted`),
/// any worker what failed (said by the runtime, which adds the counts up
/// and ends the run with them: `cepheid_runtime::executor::Ended`).
/// The first error said while it ran (a cut not written, a worker's own
/// output), else the first worker's that failed, is the summary's end, as
/// one engine's first error is.
fn outcome_of(
    results: Vec<Result<Result<Option<job::Ended>, String>, String>>,
    job: &Job,
    scale: &Scale,
) -> Ended {
    let config = &job.config;
    let mut ended = Ended::on(scale.summary_layout());
    for result in results {
        match result {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((counts, stopped)))) => {
                ended.counts = Some(counts);
                ended.stopped = stopped;
            }
            Ok(Err(why)) | Err(why) => {
                let e = Error::Worker {
                    why,
                    cluster: job.cluster,
                    checkpoint: config.checkpoint.is_some(),
                };
                ended.failed.push(e.into());
            }
        }
    }
    ended.source_failed = job.source_failed.take();
    ended.read_failed = job.read_failed.take();
    ended.said = (job.checkpoint_failed.take()).or_else(|| job.write_failed.take());
    if ended.counts.is_some() {
        // (what no reader of any process saw, said by the runtime at the
        // end of the input and kept in the last cut)
        ended.fields.clone_from(&job.fields);
        let last_cut = job.checkpoint.as_ref();
        ended.last_cut = last_cut.map_or(0, |c| c.number.load(Ordering::SeqCst));
    }
    ended
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

/// What cannot run on workers, refused before anything is read: outputs
/// they do not take ([`Refusal`]). (What one engine's run refuses too, the
/// runtime refuses for both first: `Runtime::on_cluster`.)
fn refuse_to_run(config: &Config, scale: &Scale, sink: bool) -> Result<(), Error> {
    refuse_outputs(config, scale, sink).map_err(Error::Refused)
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
/// the run then ends with [`Error::ConnectionLost`] or
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
    if config.time == Time::Processing {
        return Err(Refusal::ProcessingTime);
    }
    Ok(())
}

/// Who reads what a watch hears: the live input's reader, a file's parts,
/// the first of this process's sources that reads anything.
type Readers<'a> = (
    &'a Option<LiveInput>,
    &'a Option<Arc<PartsInput>>,
    Option<&'a LiveInput>,
);

/// Watches the pattern paths and the reference files of `config`
/// (`Config::watch`, process 0's): their changes go to the live input's
/// reader, or to the parts, or to the first of this process's sources
/// that reads anything, which read them again (held for the whole run).
fn watch(
    config: &Config,
    scale: &Scale,
    readers: Readers<'_>,
    say: &Say,
) -> Vec<cepheid_runtime::source::PatternWatch> {
    let list_paths: Vec<PathBuf> = config.lists.iter().map(|l| l.path.clone()).collect();
    let lists_too = !list_paths.is_empty();
    let watched = match readers {
        _ if !config.watch || !scale.first_process() => Vec::new(),
        (Some(input), _, _) | (None, None, Some(input)) => {
            let mut watched = vec![input.watch(&config.patterns)];
            if lists_too {
                watched.push(input.watch_lists(&list_paths));
            }
            watched
        }
        (None, Some(parts), _) => {
            let mut watched = vec![parts.watch(&config.patterns)];
            if lists_too {
                watched.push(parts.watch_lists(&list_paths));
            }
            watched
        }
        (None, None, None) => Vec::new(),
    };
    (watched.into_iter())
        .filter_map(|watched| match watched {
            Ok(watch) => Some(watch),
            Err(why) => {
                say!(say, Warning, "{why}");
                None
            }
        })
        .collect()
}

/// What refuses `pattern` on workers, if anything
/// ([`Refusal::ListsAndIndicators`]: a list written, an indicator read
/// for groups its key does not fix).
fn not_on_workers(pattern: &Pattern) -> Option<Refusal> {
    crate::route::not_on_workers(pattern).map(|why| Refusal::ListsAndIndicators {
        pattern: pattern.name.clone(),
        why,
    })
}

/// What refuses `pattern` on workers from the start of a run whose rules
/// do not change, if anything (an indicator its rules do not declare).
fn not_on_workers_from_start(pattern: &Pattern) -> Option<Refusal> {
    crate::route::not_on_workers_from_start(pattern).map(|why| Refusal::ListsAndIndicators {
        pattern: pattern.name.clone(),
        why,
    })
}

/// The outputs a run on workers does not take, `sink` when its records go
/// to a sink ([`ToSink`]) rather than to files.
fn refuse_outputs(config: &Config, scale: &Scale, sink: bool) -> Result<(), Refusal> {
    if sink {
        if scale.output_per_worker {
            return Err(Refusal::SinkOutputPerWorker);
        }
        return Ok(());
    }
    let stdout = config.output.is_none();
    // (with `Config::checkpoint`, standard output, a device or a FIFO is
    // written as one engine writes it: not measured, the records after
    // the last cut written again on resuming; standard input is refused
    // with one engine's message: it cannot be read again)
    if scale.output_per_worker && stdout {
        return Err(Refusal::OutputPerWorkerNeedsOutput);
    }
    if scale.output_per_worker && config.shadow_output.is_some() {
        return Err(Refusal::ShadowOutputPerWorker);
    }
    if scale.output_per_worker && config.audit.is_some() {
        return Err(Refusal::AuditPerWorker);
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
    /// Stopped while it met the other processes (why).
    Stopped(String),
}

/// Starts the workers of `layout` on `work`; for a cluster, connects to
/// the other processes first and checks that they run the same command
/// (`run/connect.rs`).
fn execute<T, F>(
    layout: Layout,
    say: &Say,
    asked: &connect::Asked,
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
            let mut sockets =
                connect::sockets(&addresses, process, say, asked).map_err(|e| match e {
                    connect::Unconnected::Io(e) => Start::Failed(e.to_string()),
                    connect::Unconnected::Stopped(why) => Start::Stopped(why),
                })?;
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
