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
//! occur (`cepheid_runtime::FieldWatch`): a misspelt field is valid and
//! gives no match, ever. The exit status is unchanged by them too; a
//! sample that cannot be read is exit 4.

use std::path::{Path, PathBuf};

use cepheid_decode::Format;
use cepheid_runtime::FieldWatch;
use cepheid_syntax::{Diagnostic, Loaded};

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
        let found = loaded.flink_warnings();
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
    let mut valid = count(loaded.patterns.len(), "valid pattern");
    if !loaded.scenes.is_empty() {
        valid = format!("{valid} and {}", count(loaded.scenes.len(), "scene"));
    }
    let summary = format!(
        "{valid} in {} {}",
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

/// The sample's events decoded with the patterns' fields: a warning at
/// each place a pattern reads a field no event carried
/// (`FieldWatch::sample_warnings`); the first malformed lines said.
fn sample_warnings(
    loaded: &Loaded,
    sample: &Path,
    args: &Args,
) -> Result<Vec<Diagnostic>, std::io::Error> {
    let bytes = std::fs::read(sample)?;
    let format = match args.format {
        SampleFormat::Jsonl => Format::JsonLines,
        SampleFormat::Csv => Format::Csv,
    };
    let mut malformed = 0;
    let found = FieldWatch::sample_warnings(loaded, &bytes, format, &args.time_field, |n, e| {
        malformed += 1;
        if malformed <= MALFORMED_SHOWN {
            say!("warning: {}:{n}: {e} (line skipped)", sample.display());
        }
    });
    if malformed > MALFORMED_SHOWN {
        say!(
            "warning: {}: {malformed} malformed lines skipped in all",
            sample.display()
        );
    }
    Ok(found)
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
