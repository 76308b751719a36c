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

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cepheid::engine::{
    parse_duration, Decoder, Engine, EngineConfig, Format, Item, JsonLines, Line, LineReader, Stats,
};
use cepheid::event::FieldTable;
use cepheid::nfa::Nfa;
use cepheid::Record;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR};

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

/// Arguments of `cepheid run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Pattern files (`.cep`) or folders (every `*.cep` inside).
    #[arg(required = true, value_name = "PATTERNS")]
    patterns: Vec<PathBuf>,
    /// The events file; `-` (the default) reads standard input.
    #[arg(long, value_name = "FILE", default_value = "-")]
    events: PathBuf,
    /// Input format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: FormatArg,
    /// The event-time field: integer milliseconds or an RFC 3339 string.
    #[arg(long, value_name = "FIELD", default_value = "ts")]
    time_field: String,
    /// Bounded out-of-orderness: an event more than this behind the largest
    /// time seen is late (e.g. 500ms, 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    max_delay: i64,
    /// Where matches and timeouts go; `-` (the default) is standard output.
    #[arg(long, value_name = "FILE", default_value = "-")]
    output: PathBuf,
    /// Write late events here (otherwise they are only counted).
    #[arg(long, value_name = "FILE")]
    late: Option<PathBuf>,
    /// At the end, let time run to infinity so every pending window expires.
    #[arg(long)]
    flush_at_end: bool,
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
    let mut table = FieldTable::new();
    let mut engine: Engine<Record, Nfa<Record>> = Engine::new(EngineConfig {
        max_delay: args.max_delay,
    });
    for pattern in &loaded.patterns {
        let added = Nfa::<Record>::compile(pattern, &mut table)
            .map_err(|e| e.to_string())
            .and_then(|nfa| engine.add(nfa, &mut table));
        if let Err(e) = added {
            eprintln!("error: pattern `{}`: {e}", pattern.name);
            return EXIT_PATTERN_ERROR;
        }
    }
    let format = match args.format {
        FormatArg::Jsonl => Format::JsonLines,
        FormatArg::Csv => Format::Csv,
    };
    let decoder = Decoder::new(format, &args.time_field, table);
    let (input, size) = match open_input(&args.events) {
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
    let result = stream(
        args,
        &mut engine,
        input,
        decoder,
        &mut out,
        &progress,
        &mut malformed,
    );
    progress.finish_and_clear();
    let status = match result {
        Ok(()) => EXIT_OK,
        Err(Stop::Quiet) => return EXIT_OK,
        Err(Stop::Exit(status)) => status,
    };
    match out.flush() {
        Ok(()) => {}
        Err(e) => return report_write_error(args, e),
    }
    summarize(&engine.stats(), malformed, started);
    status
}

/// Reads, decodes and feeds every line, then ends event time.
fn stream(
    args: &Args,
    engine: &mut Engine<Record, Nfa<Record>>,
    input: Box<dyn BufRead>,
    mut decoder: Decoder,
    out: &mut Output,
    progress: &ProgressBar,
    malformed: &mut u64,
) -> Result<(), Stop> {
    let mut reader = LineReader::new(input);
    let mut stop = None;
    let mut punctuated = false;
    loop {
        let (line_no, line) = match reader.next_line() {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => {
                eprintln!(
                    "error: cannot read {}: {e}",
                    display(&args.events, "standard input")
                );
                stop = Some(Stop::Exit(EXIT_IO));
                break;
            }
        };
        let item = match line {
            Line::Text(text) => decoder.decode(text).map_err(|m| m.0),
            Line::TooLong(len) => Err(format!("line too long ({len} bytes, at most 1 MiB)")),
        };
        match item {
            Ok(Item::Event(ts, record)) => {
                engine.push(ts, record, out);
            }
            Ok(Item::Watermark(t)) => {
                punctuated = true;
                engine.watermark(t, out);
            }
            Ok(Item::Skip) => {}
            Err(why) => {
                *malformed += 1;
                let path = display(&args.events, "standard input");
                progress.suspend(|| eprintln!("{path}:{line_no}: malformed line: {why}"));
                if args.strict {
                    stop = Some(Stop::Exit(EXIT_MALFORMED));
                    break;
                }
            }
        }
        check_output(args, out)?;
        if line_no % 4096 == 0 {
            progress.set_position(reader.bytes_read());
        }
    }
    if args.flush_at_end {
        engine.flush(out);
    } else if !punctuated {
        engine.finish(out);
    }
    check_output(args, out)?;
    stop.map_or(Ok(()), Err)
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

/// The event source and its size in bytes when it is a file.
fn open_input(path: &Path) -> Result<(Box<dyn BufRead>, Option<u64>), u8> {
    if path == Path::new("-") {
        return Ok((
            Box::new(BufReader::with_capacity(1 << 18, io::stdin())),
            None,
        ));
    }
    let file = File::open(path).map_err(|e| {
        eprintln!("error: cannot open {}: {e}", path.display());
        EXIT_IO
    })?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 18, file)), size))
}

/// The output sink over `--output` and `--late`.
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

/// The one-line summary on standard error.
fn summarize(stats: &Stats, malformed: u64, started: Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    let rate = if elapsed > 0.0 {
        stats.events as f64 / elapsed
    } else {
        0.0
    };
    eprintln!(
        "cepheid: {} events read, {malformed} malformed, {} late, {} matches, {} timeouts in {elapsed:.3} s ({rate:.0} events/s)",
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
