//! `cepheid check PATTERNS...`: parse and compile, print every diagnostic,
//! exit 1 when any is an error (4 when a file cannot be read).
//!
//! `--flink` adds a warning at every place where a valid pattern means
//! something else than in Apache Flink 2.3 (the deviations D1-D4 of
//! `docs/semantics.md`) or where a limit can cut work Flink would do
//! (`cepheid_core::pattern::flink_differences`); nothing more when the pattern
//! means the same in both. The exit status is unchanged by them.
//!
//! `--sample FILE` decodes the events of FILE as `run` would (`--format`,
//! `--time-field`) and warns, at each place a pattern reads it, about every
//! field that no sample event carried, with the closest name that did
//! occur (`cepheid_engine::FieldWatch`): a misspelt field is valid and
//! gives no match, ever. The exit status is unchanged by them too; a
//! sample that cannot be read is exit 4.

use std::path::{Path, PathBuf};

use cepheid_core::pattern::FlinkDifference;
use cepheid_engine::io::{Decoder, FieldsSeen, Format};
use cepheid_engine::{Engine, FieldWatch, Record};
use cepheid_syntax::{Diagnostic, DiagnosticKind, Loaded};

use crate::{EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR};

/// Arguments of `check`.
#[derive(clap::Args)]
pub struct Args {
    /// Pattern files or folders (every `*.cep` inside, sorted by name).
    #[arg(required = true, value_name = "PATTERNS")]
    paths: Vec<PathBuf>,
    /// Also warn where a pattern's results can differ from Apache Flink
    /// 2.3's (deviations D1-D4, limits on partial matches).
    #[arg(long)]
    flink: bool,
    /// Sample events (JSON lines or CSV, as `run --format` reads them):
    /// warn about every field a pattern reads that no sample event carries.
    #[arg(long, value_name = "FILE")]
    sample: Option<PathBuf>,
    /// The sample's format.
    #[arg(long, value_enum, default_value = "jsonl", requires = "sample")]
    format: SampleFormat,
    /// The sample events' time field (as `run --time-field`).
    #[arg(long, value_name = "FIELD", default_value = "ts", requires = "sample")]
    time_field: String,
}

/// The formats of `--sample` (those of `run --format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SampleFormat {
    /// One JSON object per line.
    Jsonl,
    /// A header line, then one row per line.
    Csv,
}

/// The most malformed sample lines said one by one.
const MALFORMED_SHOWN: usize = 3;

/// Runs `check` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    let mut loaded = cepheid_engine::rules::load_paths(&args.paths);
    if args.flink {
        let found = flink_warnings(&loaded);
        loaded.diagnostics.extend(found);
    }
    if let Some(sample) = &args.sample {
        match sample_warnings(&loaded, sample, args) {
            Ok(found) => loaded.diagnostics.extend(found),
            Err(why) => {
                if !loaded.diagnostics.is_empty() {
                    say!("{}", loaded.render());
                }
                say!("error: cannot read the sample {}: {why}", sample.display());
                return EXIT_IO;
            }
        }
    }
    if !loaded.diagnostics.is_empty() {
        say!("{}", loaded.render());
    }
    let files = loaded.sources.len();
    let summary = format!(
        "{} in {} {}",
        count(loaded.patterns.len(), "valid pattern"),
        files,
        if files == 1 { "file" } else { "files" },
    );
    match (loaded.error_count(), loaded.warning_count()) {
        (0, 0) => say!("ok: {summary}"),
        (0, w) => say!("ok: {summary}, {}", count(w, "warning")),
        (e, w) => say!(
            "failed: {}, {} ({summary})",
            count(e, "error"),
            count(w, "warning")
        ),
    }
    if loaded.has_io_errors() {
        EXIT_IO
    } else if loaded.has_errors() {
        EXIT_PATTERN_ERROR
    } else {
        EXIT_OK
    }
}

/// The findings of `flink_differences` for every loaded pattern, as
/// warnings in the pattern's source (after the load's own diagnostics).
fn flink_warnings(loaded: &cepheid_syntax::Loaded) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (pattern, &source) in loaded.patterns.iter().zip(&loaded.pattern_sources) {
        for f in cepheid_core::pattern::flink_differences(pattern) {
            let what = match f.difference {
                FlinkDifference::Limit => "differs from Flink 2.3 at a limit".to_string(),
                d => format!("differs from Flink 2.3 ({})", d.label()),
            };
            let mut d = Diagnostic::warning(
                DiagnosticKind::Flink(f.difference),
                f.span,
                format!("pattern `{}` {what}: {}", pattern.name, f.message),
            )
            .with_help(f.help);
            d.source = source;
            out.push(d);
        }
    }
    out
}

/// The sample's events decoded with the patterns' fields: a warning at
/// each place a pattern reads a field no event carried.
fn sample_warnings(
    loaded: &Loaded,
    sample: &Path,
    args: &Args,
) -> Result<Vec<Diagnostic>, std::io::Error> {
    let bytes = std::fs::read(sample)?;
    let mut engine: Engine<Record> = Engine::new();
    // (the valid patterns were compiled once already: this cannot fail)
    if engine.add(&loaded.patterns[..]).is_err() {
        return Ok(Vec::new());
    }
    let format = match args.format {
        SampleFormat::Jsonl => Format::JsonLines,
        SampleFormat::Csv => Format::Csv,
    };
    let mut decoder =
        Decoder::new(format, &args.time_field, engine.fields().clone()).watch_fields(u64::MAX);
    let mut malformed = 0;
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Err(e) = decoder.decode(line) {
            malformed += 1;
            if malformed <= MALFORMED_SHOWN {
                say!(
                    "warning: {}:{}: {e} (line skipped)",
                    sample.display(),
                    n + 1
                );
            }
        }
    }
    if malformed > MALFORMED_SHOWN {
        say!(
            "warning: {}: {} malformed lines skipped in all",
            sample.display(),
            malformed
        );
    }
    let seen = decoder
        .fields_seen()
        .cloned()
        .unwrap_or_else(|| FieldsSeen::new(0));
    let mut out = Vec::new();
    for missing in FieldWatch::from_loaded(loaded).missing(&seen) {
        let message = missing.message("sample events");
        for read in &missing.reads {
            let Some((source, span)) = read.source else {
                continue;
            };
            let d = Diagnostic::warning(DiagnosticKind::FieldNeverOccurs, span, message.clone())
                .with_help(format!(
                    "read by pattern `{}`, {}",
                    read.pattern, read.clause
                ))
                .in_source(source);
            out.push(d);
        }
    }
    Ok(out)
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
