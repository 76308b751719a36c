//! `cepheid run`: every pattern over one pass of an event stream, matches
//! and timeouts out as JSON lines, a summary on standard error
//! (`../shared/spec/cli.md`).
//!
//! Decisions where the spec is silent:
//! - When the input carries punctuated watermarks (`{"$watermark": T}`), it
//!   says itself how far event time has got: at the end of input, events
//!   after its last watermark stay pending, as in a Flink operator that
//!   receives no further watermark (conformance case
//!   `CEPOperatorTest.testCEPOperatorSideOutputLateElementsEventTime`);
//!   `--flush-at-end` still releases everything. Without punctuated
//!   watermarks the end of input processes every buffered event and
//!   advances to the largest time seen, as `cli.md` says.
//! - With `--strict`, the events read before the malformed line are still
//!   processed (as at the end of input) before exiting with status 3; an
//!   input read error does the same and exits with 4.
//! - A closed standard output (`| head`) ends the run quietly.
//! - On a pipe or a terminal, output is flushed whenever the input has no
//!   further line ready; `--idle-timeout` lets event time follow the wall
//!   clock on a quiet input (the `idle` module says how).
//! - `--follow` reads the events file as `tail -F` (the `follow` module
//!   says how); it refuses standard input (there is nothing to follow) and
//!   `--flush-at-end` (the input never ends).
//! - SIGINT and SIGTERM stop any run cleanly (the `signals` module): no
//!   further line is taken, what the watermark released is written and
//!   flushed, events still waiting for the watermark are not forced out
//!   (the input did not end: no `finish`), the summary says so, and the
//!   exit status is 128 + the signal (130, 143).
//! - `--time processing` (the `timing` module): each event's time is the
//!   wall clock when it is taken, the time field is not read, `$watermark`
//!   lines are ignored (said once), and `--max-delay` and `--idle-timeout`
//!   are refused (no event is late; time always follows the clock).
//! - A key of a pattern holds at most `--max-runs-per-key` partial matches
//!   (default 10,000); beyond it the oldest are dropped. The first time a
//!   key reaches the limit is said on standard error (for the first ten
//!   such keys; later ones are only counted) and the summary counts the
//!   dropped partial matches and their keys (`docs/semantics.md`, "The
//!   limit on partial matches per key").
//! - At most `--max-live-runs` partial matches (default 4,000,000) live
//!   over all keys and patterns; a key whose step would go beyond it keeps
//!   only what fits, its oldest dropped. Said once on standard error (not
//!   per key) and counted apart in the summary (`docs/semantics.md`, "The
//!   limit on live partial matches").
//! - At most `--max-waiting` events (default 1,000,000) wait for the
//!   watermark; beyond it the watermark moves up to the earliest of them,
//!   said once on standard error and counted in the summary
//!   (`docs/semantics.md`, "The limit on waiting events").
//!
//! - Rules can change while it runs (`docs/dynamic-rules.md`): with
//!   `--rules-from-stream` (off by default: a refused record is said and
//!   counted), a control record `{"$rules": "..."}` or, with `--rules-dir
//!   DIR`, `{"$rules_file": "..."}` (confined to DIR) in JSON-lines
//!   input replaces the rule set at its line; `--watch` reloads the
//!   pattern paths when they change and on SIGHUP, between two batches.
//!   A set that does not load keeps the old rules (diagnostics on standard
//!   error, counted in the summary); a good one says what it did to each
//!   pattern. A checkpoint taken after a change holds the rules in force;
//!   resuming from it goes on with those, not the command line's.
//!
//! Reading and decoding run on a thread of their own (`input.rs`), a few
//! batches of lines ahead of the engine (which, with the formatting of the
//! output, stays on the main thread), and so do the main output's system
//! calls (`output.rs`: blocks of formatted records, a flush waits for
//! them); everything observable happens in input order on the main
//! thread, so this changes nothing but the speed.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use cepheid_core::record::FieldTable;
use cepheid_core::time::parse_duration;
use cepheid_engine::engine::{Engine, MatchRef, Sink, Stats};
use cepheid_engine::io::{value_from_json, value_to_json, Decoder, Format, Item, JsonLines};
use cepheid_engine::{ErrorKind, FieldId, Record, Timestamp, Value};
use cepheid_syntax::Loaded;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[cfg(feature = "workers")]
#[path = "workers.rs"]
mod workers;

use crate::checkpoint::{self, Counters, Every, Meta, Writer};
use crate::idle::Idle;
use crate::input::{
    spawn_reader, Control, Entry, Message, Position, Reading, Reload, Source, BATCHES_AHEAD,
};
use crate::output::Background;
use crate::reload::{self, PolicyArg, Reloads};
use crate::resume;
use crate::timing::{wall_ms, Timing};
use crate::{signals, EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR, EXIT_USAGE};

/// Exit status: malformed input with `--strict`.
const EXIT_MALFORMED: u8 = 3;

/// Input format names on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line.
    Jsonl,
    /// A header line, then one row per line.
    Csv,
}

/// Where event time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeArg {
    /// The events' time field (`--time-field`) and `$watermark` lines.
    Event,
    /// The wall clock when the run takes each line.
    Processing,
}

/// Arguments of `cepheid run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Pattern files (`.cep`) or folders (every `*.cep` inside).
    #[arg(required = true, value_name = "PATTERNS")]
    patterns: Vec<PathBuf>,
    /// The events file; `-` (the default) reads standard input.
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub(crate) events: PathBuf,
    /// Follow the events file as `tail -F` does: at its end, wait for more
    /// lines; a file renamed and created anew, or truncated (or rewritten
    /// in place: its first bytes changed), is read from its beginning.
    /// Never ends by itself: SIGINT or SIGTERM stops it (output flushed,
    /// summary; exit 130 or 143).
    #[arg(long, conflicts_with = "flush_at_end")]
    pub(crate) follow: bool,
    /// Reload the pattern files and folders when they change (and on
    /// SIGHUP); a set that does not check cleanly keeps the old rules.
    #[arg(long)]
    pub(crate) watch: bool,
    /// What a changed pattern's partial matches do at a reload (`--watch`
    /// or a `$rules` record): `drain`, go on under the old version to
    /// their match or timeout; `restart`, dropped and counted.
    #[arg(long, value_enum, default_value = "drain", value_name = "POLICY")]
    reload_policy: PolicyArg,
    /// Honour control records in the event stream (JSON lines):
    /// `{"$rules": "..."}` replaces the rule set at its line. Off by
    /// default: whoever writes events does not change the rules unless
    /// the operator says so (a refused record is said and counted).
    #[arg(long)]
    rules_from_stream: bool,
    /// With --rules-from-stream, also honour `{"$rules_file": "PATH"}`,
    /// PATH a `.cep` file or folder inside DIR (relative to DIR; no way
    /// out through `..` or symbolic links; regular files of at most 1 MiB).
    #[arg(long, value_name = "DIR", requires = "rules_from_stream")]
    rules_dir: Option<PathBuf>,
    /// Input format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: FormatArg,
    /// Where event time comes from: `event`, the time field; `processing`,
    /// the wall clock when each line is taken (no time field needed, no
    /// late events, windows close as the clock passes them).
    #[arg(long, value_enum, default_value = "event")]
    time: TimeArg,
    /// The event-time field: integer milliseconds or an RFC 3339 string.
    #[arg(long, value_name = "FIELD", default_value = "ts")]
    time_field: String,
    /// Bounded out-of-orderness: an event more than this behind the largest
    /// time seen is late (e.g. 500ms, 10s, 1m).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0ms",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    max_delay: i64,
    /// When no line has arrived for this long (wall-clock time), event time
    /// follows the clock from the last watermark, so timeouts fire on a
    /// quiet stream; events that then arrive behind it are late.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    idle_timeout: Option<i64>,
    /// Where matches and timeouts go; `-` (the default) is standard output.
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub(crate) output: PathBuf,
    /// Write late events here (otherwise they are only counted).
    #[arg(long, value_name = "FILE")]
    pub(crate) late: Option<PathBuf>,
    /// At the end, let time run to infinity: every event still waiting is
    /// processed (with `$watermark` lines in the input, events after the
    /// last one otherwise stay unprocessed, and the summary counts them)
    /// and every pending window expires.
    #[arg(long)]
    flush_at_end: bool,
    /// Most partial matches one key of a pattern holds; beyond it the
    /// oldest are dropped (said on standard error, counted in the summary).
    /// Bounds the memory and time a pattern such as `a+ combinations
    /// followed by b` takes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = Engine::<Record>::DEFAULT_MAX_RUNS_PER_KEY,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_runs_per_key: usize,
    /// Most partial matches over all keys and patterns; a key whose step
    /// would go beyond it keeps only what fits, its oldest dropped (said
    /// once on standard error, counted in the summary). Bounds the memory
    /// of many keys each under --max-runs-per-key (about 160 to 400 bytes
    /// per partial match: the default holds within about 1.6 GB).
    #[arg(
        long,
        value_name = "N",
        default_value_t = Engine::<Record>::DEFAULT_MAX_LIVE_RUNS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub(crate) max_live_runs: usize,
    /// Most events that wait for the watermark; when more would wait, the
    /// watermark moves up to the earliest of them, as if a watermark had
    /// arrived (said on standard error, counted in the summary). Bounds
    /// the memory a burst of events at one time takes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = Engine::<Record>::DEFAULT_MAX_WAITING_EVENTS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_waiting: usize,
    /// Stop at the first malformed line (exit status 3).
    #[arg(long)]
    strict: bool,
    /// Keep checkpoints in this folder, and resume from the one there: the
    /// outputs end byte for byte as those of a run that never stopped.
    /// Needs --events FILE (standard input cannot be read again); matches
    /// written to standard output since the last checkpoint are written
    /// again on resuming (at least once; with --output FILE exactly once).
    /// Exit 5 when the checkpoint is corrupt or belongs to another command.
    /// With --processes, DIR must be a folder every process sees (the same
    /// machine or a shared file system).
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
    /// How often to checkpoint: a wall-clock duration, a number of events,
    /// or both (`10s`, `100000`, `10s,100000`; default 10s).
    #[arg(long, value_name = "WHEN", requires = "checkpoint", value_parser = checkpoint::parse_every)]
    checkpoint_every: Option<Every>,
    /// Draw a progress bar on standard error even when the input is not a
    /// file (it is still only drawn on a terminal).
    #[arg(long, overrides_with = "no_progress")]
    progress: bool,
    /// Never draw a progress bar.
    #[arg(long, overrides_with = "progress")]
    no_progress: bool,
    // Several workers (feature `timely`): `--workers`, `--processes`.
    #[cfg(feature = "workers")]
    #[command(flatten)]
    scale: workers::Scale,
}

/// Records are copied into 256 KiB blocks that the `cepheid-write` thread
/// writes (`output.rs`): the system calls are off the main thread.
type Output = JsonLines<Background, BufWriter<Box<dyn Write + Send>>>;

/// How a run ended early.
enum Stop {
    /// An I/O error, already described; exit with this status.
    Exit(u8),
    /// Standard output was closed: stop quietly.
    Quiet,
}

/// Runs the command and returns the exit status.
pub fn run(args: &Args) -> u8 {
    let loaded = match crate::load(&args.patterns) {
        Ok(loaded) => loaded,
        Err(status) => return status,
    };
    let mut engine = new_engine(args);
    for pattern in &loaded.patterns {
        if let Err(e) = engine.add(pattern) {
            say!("error: pattern `{}`: {}", pattern.name, e.message());
            return EXIT_PATTERN_ERROR;
        }
    }
    if let Err(status) = refuse_shared_files(args) {
        return status;
    }
    if let Err(status) = refuse_conflicts(args) {
        return status;
    }
    if args.time_field == "$watermark" {
        // Every line would be read as a watermark.
        say!("error: --time-field cannot be `$watermark`: that field marks watermark lines");
        return crate::EXIT_USAGE;
    }
    #[cfg(feature = "workers")]
    if args.scale.enabled() && args.watch {
        say!("error: --watch is not supported with --workers or --processes");
        return EXIT_USAGE;
    }
    #[cfg(feature = "workers")]
    if args.scale.enabled() && args.rules_from_stream {
        say!(
            "error: --rules-from-stream is not supported with --workers or --processes (they read no control records)"
        );
        return EXIT_USAGE;
    }
    if let Some(dir) = &args.rules_dir {
        if !dir.is_dir() {
            say!("error: --rules-dir {}: not a folder", dir.display());
            return EXIT_USAGE;
        }
    }
    #[cfg(feature = "workers")]
    if args.scale.enabled() {
        return workers::run(args, &loaded.patterns, format(args));
    }
    // Another run on the checkpoint folder is refused (exit 5, naming
    // it) before the checkpoint is read; the lock is held to the end.
    let _folder_lock = match &args.checkpoint {
        Some(dir) => match crate::lock::folder(dir, &crate::lock::file_name(0)) {
            Ok(file) => Some(file),
            Err(status) => return status,
        },
        None => None,
    };
    special_outputs(args);
    // A checkpoint to resume from is checked whole (and the engine
    // restored) before any file is touched.
    let command = checkpoint_command(args);
    let resumed = match (&args.checkpoint, &command) {
        (Some(dir), Some(command)) => match resume::load(args, dir, command, &mut engine) {
            Ok(resumed) => resumed,
            Err(status) => return status,
        },
        _ => None,
    };
    let start = resumed.as_ref().map_or(Position::default(), |m| m.input);
    let reload_first = resumed.as_ref().is_some_and(|m| m.reload_files);
    // The decoder reads the fields of the engine's table.
    let mut decoder = new_decoder(args, engine.fields());
    if start.offset > 0 && args.format == FormatArg::Csv {
        // Read from an offset, a CSV file needs its header first.
        if let Err(e) = crate::input::prime(&mut decoder, &args.events) {
            say!("error: cannot read {}: {e}", args.events.display());
            return EXIT_IO;
        }
    }
    let (input, size) = match Source::open(&args.events, args.follow, start.offset) {
        Ok(opened) => opened,
        Err(e) => {
            say!("error: cannot open {}: {e}", args.events.display());
            return EXIT_IO;
        }
    };
    // So is another run writing the outputs (with another folder).
    let mut _output_locks = Vec::new();
    if args.checkpoint.is_some() {
        let late = args.late.iter().map(|late| (late, "--late"));
        for (path, flag) in std::iter::once((&args.output, "--output")).chain(late) {
            match crate::lock::output(path, flag) {
                Ok(file) => _output_locks.extend(file),
                Err(status) => return status,
            }
        }
    }
    let (mut out, files) = match open_outputs(args, resumed.as_ref()) {
        Ok(opened) => opened,
        Err(status) => return status,
    };
    let started = Instant::now();
    let progress = progress_bar(args, size);
    progress.set_position(start.offset);
    // (the engine's patterns: resumed after a change of rules, the
    // snapshot's, not the command line's)
    let mut keys = KeyFields::new(engine.patterns(), engine.fields());
    let mut drops = Drops::default();
    let mut counters = resumed.map(|m| m.counters).unwrap_or_default();
    keys.restore(&counters.object_keys_told);
    drops.restore(&counters.dropped_keys, &names(&engine));
    drops.overflow = counters.dropped_keys_overflow;
    let checkpoints = match (&args.checkpoint, command) {
        (Some(dir), Some(command)) => {
            let every = args.checkpoint_every.unwrap_or_else(|| {
                checkpoint::parse_every(checkpoint::DEFAULT_EVERY).expect("a valid default")
            });
            Some(Checkpoints {
                writer: Writer::new(dir, every, started),
                command,
                files,
            })
        }
        _ => None,
    };
    // (a resumed run said it already if the cap dropped anything)
    let capped_told = engine.stats().capped_runs > 0;
    let reloads = Reloads {
        applied: counters.reloads,
        refused: counters.reloads_refused,
    };
    let mut session = Session {
        args,
        engine: &mut engine,
        out: Reporting {
            out: &mut out,
            drops,
            limit: args.max_runs_per_key,
            live_limit: args.max_live_runs,
            capped_told,
            progress: &progress,
        },
        keys,
        counters: &mut counters,
        checkpoints,
        position: start,
        reloads,
        stale_below: 0,
        open_end: false,
        reload_first,
    };
    let result = session.stream(input, decoder);
    let reloads = session.reloads;
    let drops = session.out.drops;
    progress.finish_and_clear();
    // Why events may be left waiting for the watermark (at the end of
    // input they are processed, unless `$watermark` lines define time).
    let (status, stopped) = match result {
        Ok(None) => (EXIT_OK, None),
        Ok(Some(signal)) => (
            signals::exit_status(signal),
            Some(format!("stopped by {}", signals::name(signal))),
        ),
        Err(Stop::Quiet) => return EXIT_OK,
        // A `--strict` stop processes what waits, as at the end of input.
        Err(Stop::Exit(status)) if counters.punctuated => (status, None),
        Err(Stop::Exit(status)) => (status, Some("the run stopped on an error".to_string())),
    };
    match out.flush() {
        Ok(()) => {}
        Err(e) => return report_write_error(args, e),
    }
    summarize(
        &engine.stats(),
        counters.malformed,
        engine.waiting_events(),
        &drops,
        &reloads,
        started,
        stopped,
    );
    status
}

/// The names of the engine's patterns in force, in order.
fn names(engine: &Engine<Record>) -> Vec<String> {
    engine.patterns().map(|p| p.name.clone()).collect()
}

/// An engine with the command's configuration and no patterns.
pub(crate) fn new_engine(args: &Args) -> Engine<Record> {
    let max_delay = std::time::Duration::from_millis(u64::try_from(args.max_delay).unwrap_or(0));
    Engine::with_max_delay(max_delay)
        .max_runs_per_key(args.max_runs_per_key)
        .max_live_runs(args.max_live_runs)
        .max_waiting_events(args.max_waiting)
}

/// A decoder of the command's format and time over the engine's fields.
fn new_decoder(args: &Args, fields: &FieldTable) -> Decoder {
    let decoder = Decoder::new(format(args), &args.time_field, fields.clone());
    match args.time {
        TimeArg::Event => decoder,
        TimeArg::Processing => decoder.without_time(),
    }
}

/// What a checkpoint of this command must agree on (`None` without
/// `--checkpoint`, or when a path has no canonical form).
fn checkpoint_command(args: &Args) -> Option<checkpoint::Command> {
    args.checkpoint.as_ref()?;
    let path = |p: &Path| canonical(p).map(|c| c.display().to_string());
    let output = if args.output == Path::new("-") {
        None
    } else {
        Some(path(&args.output)?)
    };
    let late = match &args.late {
        Some(late) => Some(path(late)?),
        None => None,
    };
    Some(checkpoint::Command {
        events: path(&args.events)?,
        format: format!("{:?}", args.format).to_lowercase(),
        time: format!("{:?}", args.time).to_lowercase(),
        time_field: args.time_field.clone(),
        output,
        late,
    })
}

/// The output files, for checkpoints: synced and measured before each.
#[derive(Default)]
struct OutputFiles {
    output: Option<crate::rotate::Current>,
    late: Option<crate::rotate::Current>,
}

/// A run's checkpoints.
struct Checkpoints {
    writer: Writer,
    command: checkpoint::Command,
    files: OutputFiles,
}

/// One run: the engine, its outputs and the command's own state.
struct Session<'a> {
    args: &'a Args,
    engine: &'a mut Engine<Record>,
    out: Reporting<'a>,
    keys: KeyFields,
    counters: &'a mut Counters,
    checkpoints: Option<Checkpoints>,
    /// Where the input is after the lines given to the engine.
    position: Position,
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
    /// Resumed with `--watch` from a checkpoint whose rules the pattern
    /// files no longer are: they are read at once, before any line, as
    /// the reload `--watch` made before the run was stopped.
    reload_first: bool,
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
    fn check(&mut self, record: &Record, path: &str, line_no: u64, progress: &ProgressBar) {
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
            progress.suspend(|| {
                say!(
                    "{path}:{line_no}: pattern `{name}`: partition key `{field}` is an object or a list holding one, which cannot be a key; such events are skipped for this pattern and counted"
                );
            });
        }
    }
}

/// Keys whose partial matches the limit cut, told on standard error the
/// first time (for the first [`TOLD_KEYS`]).
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

/// Keys over `--max-runs-per-key` remembered, at most (by each worker with
/// `--workers`): the first [`TOLD_KEYS`] are said, all of them are counted
/// up to here.
pub(crate) const MAX_DROP_KEYS: usize = 10_000;

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

/// What `cepheid run` says on standard error the first time
/// `--max-live-runs` drops a partial match.
pub(crate) fn capped_message(limit: usize) -> String {
    format!(
        "cepheid: {limit} partial matches live over all keys and patterns; \
         keys that would hold more drop their oldest (--max-live-runs; raise it to keep them)"
    )
}

/// How many keys that reached the limit are named on standard error.
const TOLD_KEYS: usize = 10;

/// The run's sink: output records to the writer, dropped partial matches
/// told and counted.
struct Reporting<'a> {
    out: &'a mut Output,
    drops: Drops,
    limit: usize,
    /// `--max-live-runs`, and was its first drop said?
    live_limit: usize,
    capped_told: bool,
    progress: &'a ProgressBar,
}

impl Sink<Record> for Reporting<'_> {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        self.out.on_match(m);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.out.on_timeout(m, expired_at);
    }

    fn on_late(&mut self, ts: Timestamp, event: &Record) {
        self.out.on_late(ts, event);
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, Record>) {
        if partial.capped() {
            if !self.capped_told {
                self.capped_told = true;
                let limit = self.live_limit;
                self.progress.suspend(|| say!("{}", capped_message(limit)));
            }
            return;
        }
        let keys = &mut self.drops.keys;
        if keys.len() >= MAX_DROP_KEYS {
            // (past the first ten, nothing is said: only whether there
            // were more is kept)
            self.drops.overflow = true;
            return;
        }
        let told = (partial.pattern().to_string(), partial.key().to_vec());
        if !keys.insert(told) {
            return;
        }
        let (limit, n) = (self.limit, keys.len());
        let key = if partial.key().is_empty() {
            "(the pattern has no `partition by`)".to_string()
        } else {
            let values: Vec<String> = partial.key().iter().map(Value::to_string).collect();
            format!("key [{}]", values.join(", "))
        };
        let name = partial.pattern();
        self.progress.suspend(|| {
            if n <= TOLD_KEYS {
                say!(
                    "cepheid: pattern `{name}`, {key}: more than {limit} partial matches; the oldest are dropped (--max-runs-per-key; raise it to keep them)"
                );
            }
            if n == TOLD_KEYS {
                say!("cepheid: further keys over the limit are only counted in the summary");
            }
        });
    }
}

impl Session<'_> {
    /// Feeds every decoded line to the engine, then ends event time.
    /// Returns the signal that stopped the run, if one did.
    fn stream(&mut self, input: Source, decoder: Decoder) -> Result<Option<i32>, Stop> {
        let args = self.args;
        let progress = self.out.progress;
        let origin = display(&args.events, "standard input");
        let origin_name = origin.clone();
        let (tx, messages) = mpsc::sync_channel(BATCHES_AHEAD);
        let signal_tx = tx.clone();
        let installed = signals::install(
            move |signal| {
                let _ = signal_tx.send(if signals::is_hangup(signal) {
                    Message::Reload(Reload::Hangup)
                } else {
                    Message::Signal(signal)
                });
            },
            args.watch,
        );
        if let Err(e) = installed {
            say!("warning: cannot handle SIGINT and SIGTERM ({e}); they end the run at once");
        }
        // Kept for the whole run: the watch ends with it.
        let _watcher = if args.watch {
            match reload::watch(&args.patterns, tx.clone()) {
                Ok(watcher) => Some(watcher),
                Err(e) => {
                    say!(
                        "warning: cannot watch the pattern files ({e}); SIGHUP still reloads them"
                    );
                    None
                }
            }
        } else {
            None
        };
        // Control records (JSON lines only): the reader thread waits after
        // each until it is applied.
        let (go_on, controls) = match args.format {
            FormatArg::Jsonl => {
                let (go_on, controls) = mpsc::sync_channel::<()>(1);
                (Some(go_on), Some(controls))
            }
            FormatArg::Csv => (None, None),
        };
        let fresh = {
            let table = self.engine.fields().clone();
            let args = (args.format, args.time, args.time_field.clone());
            Box::new(move || {
                let (format, time, time_field) = &args;
                let decoder = Decoder::new(format_of(*format), time_field, table.clone());
                match time {
                    TimeArg::Event => decoder,
                    TimeArg::Processing => decoder.without_time(),
                }
            })
        };
        let reading = Reading {
            origin,
            decoder,
            fresh,
            start: self.position,
            tails: self.checkpoints.is_some(),
            controls,
        };
        if self.reload_first {
            // (first in the channel: before any line)
            let _ = tx.send(Message::Reload(Reload::Resumed));
        }
        let reader = spawn_reader(input, reading, tx);
        let mut stop = None;
        let mut signal = None;
        let mut timing = match args.time {
            TimeArg::Processing => Timing::Processing,
            TimeArg::Event => Timing::Event(args.idle_timeout.map(|ms| {
                let ms = u64::try_from(ms).unwrap_or(u64::MAX);
                Idle::new(Duration::from_millis(ms), Instant::now())
            })),
        };
        'input: loop {
            let message = match timing.wait(Instant::now(), self.engine) {
                None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => messages.recv_timeout(wait),
            };
            let batch = match message {
                Ok(Message::Batch(batch)) => {
                    timing.arrived(Instant::now());
                    batch
                }
                Err(RecvTimeoutError::Timeout) => {
                    timing.tick(Instant::now(), wall_ms(), self.engine, &mut self.out);
                    flush_now(args, self.out.out)?;
                    if let Some(checkpoints) = &mut self.checkpoints {
                        checkpoints.writer.advanced(0);
                    }
                    self.checkpoint_if_due()?;
                    continue;
                }
                Ok(Message::Signal(number)) => {
                    signal = Some(number);
                    break;
                }
                Ok(Message::Reload(why)) => {
                    self.reload_from_disk(why)?;
                    flush_now(args, self.out.out)?;
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
            for (line_no, item) in batch.lines {
                match item {
                    Ok(Entry::Item(Item::Event(ts, mut record))) => {
                        if record.values().len() < self.stale_below {
                            record = reread(record, self.engine.fields());
                        }
                        self.keys.check(&record, &origin_name, line_no, progress);
                        timing.push(ts, wall_ms, record, self.engine, &mut self.out);
                    }
                    Ok(Entry::Rules(control)) => {
                        let applied = self.reload_from_stream(&control, &origin_name, line_no);
                        // The reader thread decodes the next lines now (with
                        // the new rules' fields), even when this one stops
                        // the run (then it finds the receiver gone).
                        if let Some(go_on) = &go_on {
                            let _ = go_on.send(());
                        }
                        if let Err(stop_now) = applied {
                            stop = Some(stop_now);
                            break 'input;
                        }
                    }
                    Ok(Entry::Item(Item::Watermark(_))) if timing.is_processing() => {
                        if !self.counters.watermarks_told {
                            self.counters.watermarks_told = true;
                            progress.suspend(|| {
                                say!(
                                    "{origin_name}:{line_no}: `$watermark` lines are ignored with --time processing"
                                );
                            });
                        }
                    }
                    Ok(Entry::Item(Item::Watermark(t))) => {
                        self.counters.punctuated = true;
                        self.engine.watermark(t, &mut self.out);
                    }
                    Ok(Entry::Item(Item::Skip)) => {}
                    Err(e) if e.kind() == ErrorKind::Io => {
                        say!(
                            "error: cannot read {}: {}",
                            display(&args.events, "standard input"),
                            e.message()
                        );
                        stop = Some(Stop::Exit(EXIT_IO));
                        break 'input;
                    }
                    Err(e) => {
                        self.counters.malformed += 1;
                        let path = display(&args.events, "standard input");
                        let why = e.message();
                        progress.suspend(|| say!("{path}:{line_no}: malformed line: {why}"));
                        if args.strict {
                            stop = Some(Stop::Exit(EXIT_MALFORMED));
                            break 'input;
                        }
                    }
                }
                check_output(args, self.out.out)?;
            }
            if !batch.open_end {
                self.position = batch.at;
            }
            progress.set_position(batch.at.offset);
            if !self.counters.forced_told && self.engine.stats().forced_watermarks > 0 {
                self.counters.forced_told = true;
                progress.suspend(|| {
                    say!(
                        "cepheid: more than {} events waited for the watermark; it moved up to the earliest of them (--max-waiting; raise it to let more wait)",
                        args.max_waiting
                    )
                });
            }
            if batch.stalled {
                // The input waits for its writer: whatever the watermark
                // released goes out now (a live stream's matches are not held
                // in a buffer until the next burst or the end).
                flush_now(args, self.out.out)?;
            }
            if let Some(checkpoints) = &mut self.checkpoints {
                checkpoints.writer.advanced(lines);
            }
            self.checkpoint_if_due()?;
        }
        if let Some(number) = signal {
            // Stopped, not at the end of the input: event time stays where
            // it is (the reader thread may be waiting for input; it ends
            // with the process). A last checkpoint lets the next run go on
            // from here.
            progress.suspend(|| say!("cepheid: stopped by {}", signals::name(number)));
            check_output(args, self.out.out)?;
            self.checkpoint_if_dirty()?;
            return Ok(Some(number));
        }
        if stop.is_none() {
            // The input ended: the thread is done (a panic in it is passed
            // on rather than taken for the end of input).
            if let Err(panic) = reader.join() {
                std::panic::resume_unwind(panic);
            }
            // Checkpointed before the end of event time: run again, the
            // command ends the same way; the input grown, it goes on.
            self.checkpoint_if_dirty()?;
        }
        if args.flush_at_end {
            self.engine
                .watermark(cepheid_engine::Timestamp::MAX, &mut self.out);
        } else if !self.counters.punctuated {
            self.engine.finish(&mut self.out);
        }
        check_output(args, self.out.out)?;
        stop.map_or(Ok(None), Err)
    }

    /// A control record at line `line_no`: the rules it names replace the
    /// engine's here. A set that does not load is said and counted, and
    /// the old rules go on.
    fn reload_from_stream(
        &mut self,
        control: &Control,
        origin: &str,
        line_no: u64,
    ) -> Result<(), Stop> {
        let what = reload::describe(control);
        let where_ = format!("{origin}:{line_no} ({what})");
        let allowed = reload::StreamRules {
            enabled: self.args.rules_from_stream,
            dir: self.args.rules_dir.clone(),
        };
        match reload::load_control(control, &allowed, origin, line_no) {
            Ok(loaded) => {
                self.apply(loaded, &where_);
            }
            Err(why) => {
                self.reloads.refused += 1;
                self.out
                    .progress
                    .suspend(|| say!("cepheid: {where_}: refused: {why}; the old rules go on"));
            }
        }
        Ok(())
    }

    /// `--watch`: the pattern paths of the command line again, applied
    /// here, between two batches. Lines the reader thread decoded before
    /// the change are read again when they come (`stale_below`).
    fn reload_from_disk(&mut self, why: Reload) -> Result<(), Stop> {
        let why = match why {
            Reload::Changed => "the pattern files changed",
            Reload::Hangup => "SIGHUP",
            Reload::Resumed => "the pattern files changed since the checkpoint",
        };
        if let Some(empty) = reload::empty_file(&self.args.patterns) {
            // An editor rewriting it: its next change reloads.
            self.out.progress.suspend(|| {
                say!(
                    "cepheid: {why}: {} is empty (being written?): not applied, the rules go on until it is written",
                    empty.display()
                )
            });
            return Ok(());
        }
        let loaded = cepheid_engine::rules::load_paths(&self.args.patterns);
        if self.apply(loaded, why) {
            self.stale_below = self.engine.fields().len();
        }
        check_output(self.args, self.out.out)
    }

    /// Makes `loaded` the engine's rule set (`where_` names what asked for
    /// it in messages) and says what that did to each pattern; a set with
    /// errors is said (with its diagnostics) and counted, and changes
    /// nothing. True when the rules were put in force.
    fn apply(&mut self, loaded: Loaded, where_: &str) -> bool {
        let progress = self.out.progress;
        let diagnostics = loaded.render();
        if !diagnostics.is_empty() {
            progress.suspend(|| say_text!("{diagnostics}"));
        }
        let refused = |reloads: &mut Reloads, why: &str| {
            reloads.refused += 1;
            progress
                .suspend(|| say!("cepheid: {where_}: the new rules {why}; the old rules go on"));
            false
        };
        // Errors are said above; `Rules` places a compile error in its text.
        let Ok(rules) = cepheid_engine::Rules::from_loaded(loaded) else {
            return refused(&mut self.reloads, "have errors");
        };
        let policy = self.args.reload_policy.into();
        match self.engine.set_rules(&rules, policy, &mut self.out) {
            Ok(changes) => {
                self.reloads.applied += 1;
                self.counters.rules_changed |= changes.any();
                self.keys
                    .reload(self.engine.patterns(), self.engine.fields());
                let lines: String = changes
                    .to_string()
                    .lines()
                    .map(|line| format!("  {line}\n"))
                    .collect();
                progress.suspend(|| say_text!("cepheid: {where_}: rules reloaded:\n{lines}"));
                true
            }
            Err(e) => {
                progress.suspend(|| say!("{e}"));
                refused(&mut self.reloads, "do not compile")
            }
        }
    }

    /// Takes a checkpoint when one is due.
    fn checkpoint_if_due(&mut self) -> Result<(), Stop> {
        match &self.checkpoints {
            Some(c) if c.writer.due(Instant::now()) => self.take_checkpoint(),
            _ => Ok(()),
        }
    }

    /// Takes a checkpoint when anything happened since the last one.
    fn checkpoint_if_dirty(&mut self) -> Result<(), Stop> {
        match &self.checkpoints {
            Some(c) if c.writer.dirty() => self.take_checkpoint(),
            _ => Ok(()),
        }
    }

    /// Flushes and syncs the outputs, then writes a checkpoint of the
    /// engine, the input position, the outputs' lengths and the counters.
    /// A failure stops the run (exit 4); the previous checkpoint is kept.
    fn take_checkpoint(&mut self) -> Result<(), Stop> {
        if self.open_end {
            return Ok(());
        }
        let args = self.args;
        let started = Instant::now();
        flush_now(args, self.out.out)?;
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        // (the file open now under the name: a rotated one was reopened
        // by the flush above)
        let measure = |file: &Option<crate::rotate::Current>,
                       to_late: bool|
         -> Result<(Option<u64>, Option<u32>), Stop> {
            let Some(file) = file else {
                return Ok((None, None));
            };
            let file = crate::rotate::lock(file);
            match file.sync_data().and_then(|()| file.metadata()) {
                Ok(meta) => Ok((Some(meta.len()), crate::rotate::head_crc(&file, meta.len()))),
                Err(e) => Err(Stop::Exit(report_write_error(args, (to_late, e)))),
            }
        };
        let (output_len, output_head) = measure(&checkpoints.files.output, false)?;
        let (late_len, late_head) = measure(&checkpoints.files.late, true)?;
        self.counters.object_keys_told = self.keys.told();
        self.counters.dropped_keys = self.out.drops.to_json(&names(self.engine));
        self.counters.dropped_keys_overflow = self.out.drops.overflow;
        self.counters.reloads = self.reloads.applied;
        self.counters.reloads_refused = self.reloads.refused;
        let meta = Meta {
            command: checkpoints.command.clone(),
            input: self.position,
            output_len,
            late_len,
            output_head,
            late_head,
            counters: self.counters.clone(),
            reload_files: false,
        };
        let path = checkpoints.writer.path();
        let failed = |why: String| {
            say!(
                "error: cannot write checkpoint {}: {why}; the previous checkpoint is kept",
                path.display()
            );
            Stop::Exit(EXIT_IO)
        };
        let mut snapshot = Vec::new();
        self.engine
            .snapshot(&mut snapshot)
            .map_err(|e| failed(e.message().to_string()))?;
        let bytes = checkpoint::encode(&meta, &snapshot);
        checkpoints
            .writer
            .write(&bytes, started)
            .map_err(|e| failed(e.to_string()))
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

/// Flushes the outputs (a live stream's records go out now); stops the run
/// when writing failed.
fn flush_now(args: &Args, out: &mut Output) -> Result<(), Stop> {
    out.flush().map_err(|e| match report_write_error(args, e) {
        EXIT_OK => Stop::Quiet,
        status => Stop::Exit(status),
    })
}

/// A duration greater than zero, in milliseconds.
fn parse_positive_duration(text: &str) -> Result<i64, String> {
    match parse_duration(text).map_err(|e| e.to_string())? {
        0 => Err("the duration must be greater than zero".to_string()),
        ms => Ok(ms),
    }
}

/// Stops the run when writing output failed.
fn check_output(args: &Args, out: &mut Output) -> Result<(), Stop> {
    match out.take_error() {
        None => Ok(()),
        Some(e) => match report_write_error(args, e) {
            EXIT_OK => Err(Stop::Quiet),
            status => Err(Stop::Exit(status)),
        },
    }
}

/// Describes a write error; a closed standard output is not an error.
fn report_write_error(args: &Args, (to_late, e): (bool, io::Error)) -> u8 {
    let path = if to_late {
        args.late
            .as_deref()
            .map_or("the late file".into(), |p| p.display().to_string())
    } else {
        display(&args.output, "standard output")
    };
    if !to_late && e.kind() == io::ErrorKind::BrokenPipe {
        return EXIT_OK;
    }
    say!("error: cannot write {path}: {e}");
    EXIT_IO
}

/// The input format.
fn format(args: &Args) -> Format {
    format_of(args.format)
}

/// The library's name of an input format.
fn format_of(format: FormatArg) -> Format {
    match format {
        FormatArg::Jsonl => Format::JsonLines,
        FormatArg::Csv => Format::Csv,
    }
}

/// Options that make no sense together (beyond what the argument parser
/// checks); exit 2.
fn refuse_conflicts(args: &Args) -> Result<(), u8> {
    let refuse = |why: &str| {
        say!("error: {why}");
        Err(EXIT_USAGE)
    };
    if args.checkpoint.is_some() && args.events == Path::new("-") {
        return refuse("--checkpoint needs --events FILE: standard input cannot be read again from a checkpoint's offset");
    }
    if args.follow && args.events == Path::new("-") {
        return refuse("--follow needs --events FILE (standard input cannot be followed; it is read as it comes anyway)");
    }
    if args.time == TimeArg::Processing {
        if args.max_delay != 0 {
            return refuse("--max-delay has no meaning with --time processing (no event is late)");
        }
        if args.idle_timeout.is_some() {
            return refuse(
                "--idle-timeout has no meaning with --time processing (time always follows the clock)",
            );
        }
    }
    Ok(())
}

/// With `--checkpoint`, an `--output` or `--late` that is not a regular
/// file (`/dev/null`, a FIFO, a socket) cannot be synced, measured or
/// truncated on resuming: it is written as standard output is (records
/// after the last checkpoint written again on resuming: at least once),
/// and the run says so before it starts (issue 26; it stopped at its
/// first checkpoint with "cannot write /dev/null: Invalid argument").
fn special_outputs(args: &Args) {
    if args.checkpoint.is_none() {
        return;
    }
    let late = args.late.iter().map(|late| (late, "--late"));
    for (path, flag) in std::iter::once((&args.output, "--output")).chain(late) {
        if path != Path::new("-") && std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            say!(
                "cepheid: {flag} {} is not a regular file: with --checkpoint it is written as standard output is (not synced nor measured; records written after the last checkpoint are written again on resuming)",
                path.display()
            );
        }
    }
}

/// The output sink over `--output` and `--late`.
/// The input, the output and the late output must be different files:
/// `--output X --late X` interleaved the two streams into one file, and
/// `--output X --events X` truncated the input before reading it. Paths
/// are compared canonically (the parent folder for a file that does not
/// exist yet) and, for existing files, by identity (hard links, `/dev/fd`
/// names). `-` (a standard stream) is never compared. Exit 2 on a clash.
fn refuse_shared_files(args: &Args) -> Result<(), u8> {
    let mut named: Vec<(&str, &Path)> = Vec::new();
    if args.events != Path::new("-") {
        named.push(("--events", &args.events));
    }
    if args.output != Path::new("-") {
        named.push(("--output", &args.output));
    }
    if let Some(late) = &args.late {
        if late == Path::new("-") {
            // It created a file named `-`; sharing standard output with the
            // matches would need one writer for both.
            say!("error: --late needs a file path (`-` is not supported)");
            return Err(crate::EXIT_USAGE);
        }
        named.push(("--late", late));
    }
    for (i, (a_flag, a)) in named.iter().enumerate() {
        for (b_flag, b) in &named[i + 1..] {
            if same_file(a, b) {
                say!(
                    "error: {a_flag} {} and {b_flag} {} are the same file; give them different paths",
                    a.display(),
                    b.display()
                );
                return Err(crate::EXIT_USAGE);
            }
        }
    }
    Ok(())
}

/// Do two paths name the same file (existing or to be created)?
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if (ma.dev(), ma.ino()) == (mb.dev(), mb.ino()) {
                return true;
            }
        }
        #[cfg(not(unix))]
        let _ = (ma, mb);
    }
    match (canonical(a), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The canonical path of `p`, or of its parent joined with its file name
/// when `p` does not exist yet.
fn canonical(p: &Path) -> Option<std::path::PathBuf> {
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

/// The output sink over `--output` and `--late`, and (for checkpoints)
/// handles to their files. Resuming from a checkpoint, the files are
/// truncated to the lengths it records and written on from there;
/// otherwise they are created empty.
fn open_outputs(args: &Args, resumed: Option<&Meta>) -> Result<(Output, OutputFiles), u8> {
    // A regular file (or none yet) is written by appending and opened
    // again when rotated (`rotate.rs`), its length set to the checkpoint's
    // (an empty output deleted since is made again: nothing of it is lost;
    // one rotated since was given length 0 by `resume`); a device or a
    // FIFO is created as before, neither synced nor measured (written as
    // standard output is, `special_outputs`).
    type Opened = (Box<dyn Write + Send>, Option<crate::rotate::Current>);
    let open = |path: &Path, len: Option<u64>| -> Result<Opened, u8> {
        let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
        let opened = if special {
            File::create(path).map(|f| (Box::new(f) as Box<dyn Write + Send>, None))
        } else {
            crate::rotate::Reopening::open(path, len.unwrap_or(0), args.checkpoint.is_some()).map(
                |f| {
                    let current = args.checkpoint.as_ref().map(|_| f.current());
                    (Box::new(f) as Box<dyn Write + Send>, current)
                },
            )
        };
        opened.map_err(|e| {
            say!("error: cannot create {}: {e}", path.display());
            EXIT_IO
        })
    };
    let mut files = OutputFiles::default();
    let out: Box<dyn Write + Send> = if args.output == Path::new("-") {
        Box::new(io::stdout())
    } else {
        let (file, current) = open(&args.output, resumed.and_then(|m| m.output_len))?;
        files.output = current;
        file
    };
    let out = Background::new(out).map_err(|e| {
        say!("error: cannot start the output's thread: {e}");
        EXIT_IO
    })?;
    let late = match &args.late {
        Some(path) => {
            let (file, current) = open(path, resumed.and_then(|m| m.late_len))?;
            files.late = current;
            Some(BufWriter::new(file))
        }
        None => None,
    };
    Ok((JsonLines::new(out, late), files))
}

/// A progress bar over the input bytes, or a hidden one.
fn progress_bar(args: &Args, size: Option<u64>) -> ProgressBar {
    let wanted = if args.progress {
        true
    } else {
        !args.no_progress && size.is_some() && io::stderr().is_terminal()
    };
    if !wanted {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
    let template = "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} {eta}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// The one-line summary on standard error; events still waiting at the
/// end (after the input's last `$watermark` line) are counted, never left
/// out silently.
fn summarize(
    stats: &Stats,
    malformed: u64,
    waiting: usize,
    drops: &Drops,
    reloads: &Reloads,
    started: Instant,
    stopped: Option<String>,
) {
    let elapsed = started.elapsed().as_secs_f64();
    let rate = if elapsed > 0.0 {
        stats.events as f64 / elapsed
    } else {
        0.0
    };
    let unusable = if stats.unusable_keys > 0 {
        format!(", {} unusable keys", stats.unusable_keys)
    } else {
        String::new()
    };
    let per_key = stats.dropped_runs.saturating_sub(stats.capped_runs);
    let dropped = if per_key > 0 {
        let keys = if drops.overflow {
            format!("more than {MAX_DROP_KEYS}")
        } else {
            drops.keys.len().to_string()
        };
        format!(", {per_key} partial matches dropped in {keys} keys over --max-runs-per-key")
    } else {
        String::new()
    };
    let capped = if stats.capped_runs > 0 {
        format!(
            ", {} partial matches dropped over --max-live-runs",
            stats.capped_runs
        )
    } else {
        String::new()
    };
    let forced = if stats.forced_watermarks > 0 {
        format!(
            ", watermark moved {} times over --max-waiting",
            stats.forced_watermarks
        )
    } else {
        String::new()
    };
    let waiting = if let (true, Some(why)) = (waiting > 0, stopped) {
        format!(", {waiting} waiting for the watermark (not processed: {why})")
    } else if waiting > 0 {
        format!(
            ", {waiting} waiting after the last watermark (not processed; --flush-at-end processes them)"
        )
    } else {
        String::new()
    };
    let reloads = reloads.summary(stats.discarded_runs);
    say!(
        "cepheid: {} events read, {malformed} malformed, {} late, {} matches, {} timeouts{unusable}{dropped}{capped}{forced}{reloads}{waiting} in {elapsed:.3} s ({rate:.0} events/s)",
        stats.events, stats.late, stats.matches, stats.timeouts
    );
}

/// A path for messages (`-` is the standard stream named `stdio`).
fn display(path: &Path, stdio: &str) -> String {
    if path == Path::new("-") {
        stdio.into()
    } else {
        path.display().to_string()
    }
}
