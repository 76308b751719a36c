//! `cepheid check PATTERNS...`: parse and compile, print every diagnostic,
//! exit 1 when any is an error (4 when a file cannot be read).

use std::path::PathBuf;

use crate::{EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR};

/// Arguments of `check`.
#[derive(clap::Args)]
pub struct Args {
    /// Pattern files or folders (every `*.cep` inside, sorted by name).
    #[arg(required = true, value_name = "PATTERNS")]
    paths: Vec<PathBuf>,
}

/// Runs `check` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    let loaded = cepheid::dsl::load_paths(&args.paths);
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

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
