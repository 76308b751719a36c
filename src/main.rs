//! The `cepheid` command line (see `../shared/spec/cli.md`): a thin
//! dispatcher over the library. Each subcommand lives in its own file and
//! returns the process exit status.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// First: its `say!` and `say_text!` are used by every module after it.
#[macro_use]
mod diag;

mod backtest;
mod check;
mod diff;
mod explain;
mod lab;
mod run;
#[cfg(feature = "serve")]
mod serve;
mod signals;
mod why;

/// The command's allocator (the library's users choose their own): `run`
/// decodes each event on its reader thread and frees it on the main thread,
/// a cross-thread free that mimalloc makes one atomic push where glibc's
/// malloc takes the other thread's arena lock (`Cargo.toml`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status: success.
const EXIT_OK: u8 = 0;
/// Exit status: a pattern file has errors.
const EXIT_PATTERN_ERROR: u8 = 1;
/// Exit status: bad command line (clap uses 2 for its own errors too).
const EXIT_USAGE: u8 = 2;
/// Exit status: an I/O error.
const EXIT_IO: u8 = 4;
/// Exit status: `run --checkpoint`'s checkpoint cannot be used (corrupt,
/// or taken by another command).
const EXIT_CHECKPOINT: u8 = 5;

/// Complex event processing with Apache Flink CEP semantics.
#[derive(Parser)]
#[command(name = "cepheid", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and compile pattern files, print every diagnostic.
    Check(check::Args),
    /// Print each compiled pattern as text, or as a Graphviz graph.
    Explain(explain::Args),
    /// Run patterns over a stream of events; matches and timeouts as JSON lines.
    Run(Box<run::Args>),
    /// The alerts that only one of two rule sets raises over the same events.
    Diff(diff::Args),
    /// What a rule set would have raised over past events, per pattern.
    Backtest(backtest::Args),
    /// For one key: what each pattern did with its events, and why it did not fire.
    Why(why::Args),
    /// Decisions on request over HTTP: one outcome per event, logged first.
    #[cfg(feature = "serve")]
    Serve(Box<serve::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Why(args) => why::run(&args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&args),
    };
    ExitCode::from(status)
}

/// Loads pattern paths, prints diagnostics to standard error, and returns
/// the loaded patterns or the exit status to stop with.
fn load(paths: &[std::path::PathBuf]) -> Result<cepheid_syntax::Loaded, u8> {
    load_checked(paths).map(|(loaded, _)| loaded)
}

/// [`load`], with the automata that checking the patterns compiled (a run
/// keeps them: `cepheid_engine::Rules::from_checked`).
fn load_checked(
    paths: &[std::path::PathBuf],
) -> Result<(cepheid_syntax::Loaded, cepheid_engine::rules::Checked), u8> {
    let mut loaded = cepheid_syntax::load_paths(paths);
    let checked = cepheid_engine::rules::check(&mut loaded);
    if !loaded.diagnostics.is_empty() {
        say_text!("{}", loaded.render());
    }
    if loaded.has_io_errors() {
        Err(EXIT_IO)
    } else if loaded.has_errors() {
        Err(EXIT_PATTERN_ERROR)
    } else {
        Ok((loaded, checked))
    }
}
