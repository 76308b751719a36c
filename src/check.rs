//! `cepheid check PATTERNS...`: parse and compile, print every diagnostic,
//! exit 1 when any is an error (4 when a file cannot be read).
//!
//! `--flink` adds a warning at every place where a valid pattern means
//! something else than in Apache Flink 2.3 (the deviations D1-D4 of
//! `docs/semantics.md`) or where a limit can cut work Flink would do
//! (`cepheid_core::pattern::flink_differences`); nothing more when the pattern
//! means the same in both. The exit status is unchanged by them.

use std::path::PathBuf;

use cepheid_core::pattern::FlinkDifference;
use cepheid_syntax::{Diagnostic, DiagnosticKind};

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
}

/// Runs `check` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    let mut loaded = cepheid_engine::rules::load_paths(&args.paths);
    if args.flink {
        let found = flink_warnings(&loaded);
        loaded.diagnostics.extend(found);
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

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
