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
//! - At most `--max-waiting` events (default 1,000,000) wait for the
//!   watermark; beyond it the watermark moves up to the earliest of them,
//!   said once on standard error and counted in the summary
//!   (`docs/semantics.md`, "The limit on waiting events").
//!
//! Reading and decoding run on a thread of their own, a few batches of
//! lines ahead of the engine (which, with the output, stays on the main
//! thread); everything observable happens in input order on the main
//! thread, so this changes nothing but the speed.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cepheid::engine::{Engine, MatchRef, Sink, Stats};
use cepheid::io::{Decoder, Format, Item, Items, JsonLines};
use cepheid::record::FieldTable;
use cepheid::time::parse_duration;
use cepheid::{Error, ErrorKind, FieldId, Record, Timestamp, Value};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[cfg(feature = "timely")]
#[path = "workers.rs"]
mod workers;

use crate::follow::Follow;
use crate::idle::Idle;
use crate::timing::{wall_ms, Timing};
use crate::{signals, EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR, EXIT_USAGE};

/// Exit status: malformed input with `--strict`.
const EXIT_MALFORMED: u8 = 3;

/// Input format names on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
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
    events: PathBuf,
    /// Follow the events file as `tail -F` does: at its end, wait for more
    /// lines; a file renamed and created anew, or truncated, is read from
    /// its beginning. Never ends by itself: SIGINT or SIGTERM stops it
    /// (output flushed, summary; exit 130 or 143).
    #[arg(long, conflicts_with = "flush_at_end")]
    follow: bool,
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
    output: PathBuf,
    /// Write late events here (otherwise they are only counted).
    #[arg(long, value_name = "FILE")]
    late: Option<PathBuf>,
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
    /// Draw a progress bar on standard error even when the input is not a
    /// file (it is still only drawn on a terminal).
    #[arg(long, overrides_with = "no_progress")]
    progress: bool,
    /// Never draw a progress bar.
    #[arg(long, overrides_with = "progress")]
    no_progress: bool,
    // Several workers (feature `timely`): `--workers`, `--processes`.
    #[cfg(feature = "timely")]
    #[command(flatten)]
    scale: workers::Scale,
}

type Output = JsonLines<Box<dyn Write>, BufWriter<File>>;

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
    let max_delay = std::time::Duration::from_millis(u64::try_from(args.max_delay).unwrap_or(0));
    let mut engine: Engine<Record> = Engine::with_max_delay(max_delay)
        .max_runs_per_key(args.max_runs_per_key)
        .max_waiting_events(args.max_waiting);
    for pattern in &loaded.patterns {
        if let Err(e) = engine.add(pattern) {
            eprintln!("error: pattern `{}`: {}", pattern.name, e.message());
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
        eprintln!("error: --time-field cannot be `$watermark`: that field marks watermark lines");
        return crate::EXIT_USAGE;
    }
    let format = match args.format {
        FormatArg::Jsonl => Format::JsonLines,
        FormatArg::Csv => Format::Csv,
    };
    #[cfg(feature = "timely")]
    if args.scale.enabled() {
        return workers::run(args, &loaded.patterns, format);
    }
    // The decoder reads the fields of the engine's table.
    let mut decoder = Decoder::new(format, &args.time_field, engine.fields().clone());
    if args.time == TimeArg::Processing {
        decoder = decoder.without_time();
    }
    let (input, size) = match open_input(args) {
        Ok(opened) => opened,
        Err(status) => return status,
    };
    let mut out = match open_outputs(args) {
        Ok(out) => out,
        Err(status) => return status,
    };
    let started = Instant::now();
    let progress = progress_bar(args, size);
    let mut malformed = 0;
    let mut keys = KeyFields::new(&loaded.patterns, engine.fields());
    let mut sink = Reporting {
        out: &mut out,
        drops: Drops::default(),
        limit: args.max_runs_per_key,
        progress: &progress,
    };
    let result = stream(
        args,
        &mut engine,
        input,
        decoder,
        &mut sink,
        &mut malformed,
        &mut keys,
    );
    let drops = sink.drops;
    progress.finish_and_clear();
    let (status, signal) = match result {
        Ok(None) => (EXIT_OK, None),
        Ok(Some(signal)) => (signals::exit_status(signal), Some(signal)),
        Err(Stop::Quiet) => return EXIT_OK,
        Err(Stop::Exit(status)) => (status, None),
    };
    match out.flush() {
        Ok(()) => {}
        Err(e) => return report_write_error(args, e),
    }
    summarize(
        &engine.stats(),
        malformed,
        engine.waiting_events(),
        &drops,
        started,
        signal,
    );
    status
}

/// Lines the reader thread has decoded, handed over in one go.
struct Batch {
    /// Each line's number and its item, or why it is malformed (an
    /// [`ErrorKind::Input`] error), in input order; a read error
    /// ([`ErrorKind::Io`]) ends the input.
    lines: Vec<(u64, Result<Item, Error>)>,
    /// Input bytes read up to the end of the last line (for progress).
    bytes_read: u64,
    /// Was the batch sent because no further line was ready (a pipe or a
    /// terminal waiting for its writer)? Then what it releases is flushed
    /// to the outputs at once, instead of waiting in their buffers.
    stalled: bool,
}

/// What the main thread receives.
enum Message {
    /// Lines from the reader thread.
    Batch(Batch),
    /// The reader thread is done (end of input, a read error, or a panic
    /// the join passes on).
    End,
    /// SIGINT or SIGTERM (its number).
    Signal(i32),
}

/// Sends [`Message::End`] when the reader thread ends, however it ends
/// (the channel has other senders, so its closing says nothing).
struct EndGuard(SyncSender<Message>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Message::End);
    }
}

/// Most lines in a batch.
const BATCH_LINES: usize = 1024;
/// Most input bytes in a batch (the events hold their text).
const BATCH_BYTES: u64 = 1 << 20;
/// Batches decoded ahead of the engine, at most.
const BATCHES_AHEAD: usize = 2;

/// Reads and decodes the input on a thread of its own, so that parsing
/// overlaps matching and output (the engine itself stays on one thread).
/// The thread ends at the end of input, after a read error, or when the
/// receiver is dropped.
fn spawn_reader(
    origin: String,
    input: Box<dyn Read + Send>,
    decoder: Decoder,
    tx: SyncSender<Message>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let end = EndGuard(tx);
        read_lines(Items::new(origin, input, decoder), &end.0);
    })
}

/// The reader thread: lines into batches. A batch is sent when it is full
/// or when the next line is not in the buffer yet, so that a slow input
/// (a pipe, a terminal) is processed as it comes.
fn read_lines(mut items: Items<Box<dyn Read + Send>>, tx: &SyncSender<Message>) {
    let mut lines = Vec::with_capacity(BATCH_LINES);
    let mut batch_start = 0;
    while let Some(line) = items.next() {
        lines.push(line);
        let full = lines.len() >= BATCH_LINES || items.bytes_read() - batch_start >= BATCH_BYTES;
        let stalled = !items.item_ready();
        if full || stalled {
            let batch = Batch {
                lines: std::mem::replace(&mut lines, Vec::with_capacity(BATCH_LINES)),
                bytes_read: items.bytes_read(),
                stalled,
            };
            if tx.send(Message::Batch(batch)).is_err() {
                return;
            }
            batch_start = items.bytes_read();
        }
    }
    if !lines.is_empty() {
        let _ = tx.send(Message::Batch(Batch {
            lines,
            bytes_read: items.bytes_read(),
            stalled: false,
        }));
    }
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
    fn new(patterns: &[cepheid::pattern::Pattern], table: &FieldTable) -> KeyFields {
        let patterns = patterns
            .iter()
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
                eprintln!(
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
    /// (pattern index, key) of every key that reached the limit.
    keys: HashSet<(usize, Vec<Value>)>,
}

/// How many keys that reached the limit are named on standard error.
const TOLD_KEYS: usize = 10;

/// The run's sink: output records to the writer, dropped partial matches
/// told and counted.
struct Reporting<'a> {
    out: &'a mut Output,
    drops: Drops,
    limit: usize,
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
        let keys = &mut self.drops.keys;
        if keys.contains(&(partial.pattern_index(), partial.key().to_vec())) {
            return;
        }
        keys.insert((partial.pattern_index(), partial.key().to_vec()));
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
                eprintln!(
                    "cepheid: pattern `{name}`, {key}: more than {limit} partial matches; the oldest are dropped (--max-runs-per-key)"
                );
            }
            if n == TOLD_KEYS {
                eprintln!("cepheid: further keys over the limit are only counted in the summary");
            }
        });
    }
}

/// Feeds every decoded line to the engine, then ends event time. Returns
/// the signal that stopped the run, if one did.
fn stream(
    args: &Args,
    engine: &mut Engine<Record>,
    input: Box<dyn Read + Send>,
    decoder: Decoder,
    out: &mut Reporting<'_>,
    malformed: &mut u64,
    keys: &mut KeyFields,
) -> Result<Option<i32>, Stop> {
    let progress = out.progress;
    let origin = display(&args.events, "standard input");
    let origin_name = origin.clone();
    let (tx, messages) = mpsc::sync_channel(BATCHES_AHEAD);
    let signal_tx = tx.clone();
    if let Err(e) = signals::install(move |signal| {
        let _ = signal_tx.send(Message::Signal(signal));
    }) {
        eprintln!("warning: cannot handle SIGINT and SIGTERM ({e}); they end the run at once");
    }
    let reader = spawn_reader(origin, input, decoder, tx);
    let mut stop = None;
    let mut signal = None;
    let mut punctuated = false;
    let mut watermarks_told = false;
    let mut forced_said = false;
    let mut timing = match args.time {
        TimeArg::Processing => Timing::Processing,
        TimeArg::Event => Timing::Event(args.idle_timeout.map(|ms| {
            let ms = u64::try_from(ms).unwrap_or(u64::MAX);
            Idle::new(Duration::from_millis(ms), Instant::now())
        })),
    };
    'input: loop {
        let message = match timing.wait(Instant::now(), engine) {
            None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(wait) => messages.recv_timeout(wait),
        };
        let batch = match message {
            Ok(Message::Batch(batch)) => {
                timing.arrived(Instant::now());
                batch
            }
            Err(RecvTimeoutError::Timeout) => {
                timing.tick(Instant::now(), wall_ms(), engine, out);
                flush_now(args, out.out)?;
                continue;
            }
            Ok(Message::Signal(number)) => {
                signal = Some(number);
                break;
            }
            Ok(Message::End) | Err(RecvTimeoutError::Disconnected) => break,
        };
        for (line_no, item) in batch.lines {
            match item {
                Ok(Item::Event(ts, record)) => {
                    keys.check(&record, &origin_name, line_no, progress);
                    timing.push(ts, wall_ms, record, engine, out);
                }
                Ok(Item::Watermark(_)) if timing.is_processing() => {
                    if !watermarks_told {
                        watermarks_told = true;
                        progress.suspend(|| {
                            eprintln!(
                                "{origin_name}:{line_no}: `$watermark` lines are ignored with --time processing"
                            );
                        });
                    }
                }
                Ok(Item::Watermark(t)) => {
                    punctuated = true;
                    engine.watermark(t, out);
                }
                Ok(Item::Skip) => {}
                Err(e) if e.kind() == ErrorKind::Io => {
                    eprintln!(
                        "error: cannot read {}: {}",
                        display(&args.events, "standard input"),
                        e.message()
                    );
                    stop = Some(Stop::Exit(EXIT_IO));
                    break 'input;
                }
                Err(e) => {
                    *malformed += 1;
                    let path = display(&args.events, "standard input");
                    let why = e.message();
                    progress.suspend(|| eprintln!("{path}:{line_no}: malformed line: {why}"));
                    if args.strict {
                        stop = Some(Stop::Exit(EXIT_MALFORMED));
                        break 'input;
                    }
                }
            }
            check_output(args, out.out)?;
        }
        progress.set_position(batch.bytes_read);
        if !forced_said && engine.stats().forced_watermarks > 0 {
            forced_said = true;
            progress.suspend(|| {
                eprintln!(
                    "cepheid: more than {} events waited for the watermark; it moved up to the earliest of them (--max-waiting)",
                    args.max_waiting
                )
            });
        }
        if batch.stalled {
            // The input waits for its writer: whatever the watermark
            // released goes out now (a live stream's matches are not held
            // in a buffer until the next burst or the end).
            flush_now(args, out.out)?;
        }
    }
    if let Some(number) = signal {
        // Stopped, not at the end of the input: event time stays where it
        // is (the reader thread may be waiting for input; it ends with the
        // process).
        progress.suspend(|| eprintln!("cepheid: stopped by {}", signals::name(number)));
        check_output(args, out.out)?;
        return Ok(Some(number));
    }
    if stop.is_none() {
        // The input ended: the thread is done (a panic in it is passed on
        // rather than taken for the end of input).
        if let Err(panic) = reader.join() {
            std::panic::resume_unwind(panic);
        }
    }
    if args.flush_at_end {
        engine.watermark(cepheid::Timestamp::MAX, out);
    } else if !punctuated {
        engine.finish(out);
    }
    check_output(args, out.out)?;
    stop.map_or(Ok(None), Err)
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
    match parse_duration(text)? {
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
    eprintln!("error: cannot write {path}: {e}");
    EXIT_IO
}

/// The event source and its size in bytes when it is a file (unbuffered:
/// the line reader reads large chunks); with `--follow`, the followed file
/// (its size unknown: it grows).
fn open_input(args: &Args) -> Result<(Box<dyn Read + Send>, Option<u64>), u8> {
    let path = args.events.as_path();
    if path == Path::new("-") {
        return Ok((Box::new(io::stdin()), None));
    }
    let cannot_open = |e: io::Error| {
        eprintln!("error: cannot open {}: {e}", path.display());
        EXIT_IO
    };
    if args.follow {
        return Ok((Box::new(Follow::open(path).map_err(cannot_open)?), None));
    }
    let file = File::open(path).map_err(cannot_open)?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Ok((Box::new(file), size))
}

/// Options that make no sense together (beyond what the argument parser
/// checks); exit 2.
fn refuse_conflicts(args: &Args) -> Result<(), u8> {
    let refuse = |why: &str| {
        eprintln!("error: {why}");
        Err(EXIT_USAGE)
    };
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
            eprintln!("error: --late needs a file path (`-` is not supported)");
            return Err(crate::EXIT_USAGE);
        }
        named.push(("--late", late));
    }
    for (i, (a_flag, a)) in named.iter().enumerate() {
        for (b_flag, b) in &named[i + 1..] {
            if same_file(a, b) {
                eprintln!(
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

fn open_outputs(args: &Args) -> Result<Output, u8> {
    let create = |path: &Path| {
        File::create(path).map_err(|e| {
            eprintln!("error: cannot create {}: {e}", path.display());
            EXIT_IO
        })
    };
    let out: Box<dyn Write> = if args.output == Path::new("-") {
        Box::new(BufWriter::with_capacity(1 << 18, io::stdout()))
    } else {
        Box::new(BufWriter::with_capacity(1 << 18, create(&args.output)?))
    };
    let late = match &args.late {
        Some(path) => Some(BufWriter::new(create(path)?)),
        None => None,
    };
    Ok(JsonLines::new(out, late))
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
    started: Instant,
    signal: Option<i32>,
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
    let dropped = if stats.dropped_runs > 0 {
        format!(
            ", {} partial matches dropped in {} keys over --max-runs-per-key",
            stats.dropped_runs,
            drops.keys.len()
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
    let waiting = if let (true, Some(signal)) = (waiting > 0, signal) {
        format!(
            ", {waiting} waiting for the watermark (not processed: stopped by {})",
            signals::name(signal)
        )
    } else if waiting > 0 {
        format!(
            ", {waiting} waiting after the last watermark (not processed; --flush-at-end processes them)"
        )
    } else {
        String::new()
    };
    eprintln!(
        "cepheid: {} events read, {malformed} malformed, {} late, {} matches, {} timeouts{unusable}{dropped}{forced}{waiting} in {elapsed:.3} s ({rate:.0} events/s)",
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
