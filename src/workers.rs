//! `cepheid run --workers N` and `--processes P --process I --hostfile
//! FILE` (feature `workers`): the arguments mapped to a
//! `cepheid_dataflow::run::Scale` beside the run's `Config`, the run
//! handed to `cepheid_dataflow::run::Workers` (which says what happens on
//! standard error through the command's report, with `--stats-every` and
//! `--metrics`), SIGINT and SIGTERM to its handle, and how it ended to the
//! summary and the exit status.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cepheid_dataflow::run::{Error, Refusal, Scale, Workers};
use cepheid_engine::Rules;
use cepheid_runtime::{Config, Report, Sink, Source};

use super::{ended, error_status, SummaryArg, EXIT_USAGE};
use crate::{signals, EXIT_CHECKPOINT, EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR};

/// The options of a run on several workers.
#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// Worker threads (per process, with `--processes`): the input file is
    /// cut in one part per worker and events go to the worker of their key.
    /// More than the machine's cores is said as a warning (they share
    /// them). On two cores a run without --workers already uses both (its
    /// reader and writer threads): two workers are not faster there
    /// (BENCHMARKS.md).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024)
    )]
    workers: Option<usize>,
    /// Run as one of P processes (each with `--workers` threads): every
    /// process runs the same command with its own `--process`.
    #[arg(
        long,
        value_name = "P",
        requires_all = ["process", "hostfile"],
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024)
    )]
    processes: Option<usize>,
    /// This process's number, from 0 (with `--processes`).
    #[arg(long, value_name = "I", requires = "processes")]
    process: Option<usize>,
    /// The processes' addresses, one `host:port` per line, process 0 first
    /// (with `--processes`).
    #[arg(long, value_name = "FILE", requires = "processes")]
    hostfile: Option<PathBuf>,
    /// With `--output FILE`: each worker writes its matches and timeouts to
    /// `FILE.W` (W its number over all processes) instead of sending them
    /// to worker 0 (late events and the summary stay with worker 0).
    #[arg(long)]
    output_per_worker: bool,
    /// Bytes per chunk of the input file (hidden: for tests, which cut small
    /// files in many chunks).
    #[arg(long, hide = true, default_value_t = Scale::CHUNK_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    chunk_bytes: u64,
}

impl ScaleArgs {
    /// Was a run on several workers asked for?
    pub fn enabled(&self) -> bool {
        self.workers.is_some() || self.processes.is_some()
    }

    /// The library's scale.
    pub fn scale(&self) -> Scale {
        Scale {
            workers: self.workers.unwrap_or(1),
            processes: self.processes,
            process: self.process.unwrap_or(0),
            hostfile: self.hostfile.clone(),
            output_per_worker: self.output_per_worker,
            chunk_bytes: self.chunk_bytes,
        }
    }
}

/// What a run of `config` on the workers of `scale` does not take, `sink`
/// when its records go to a sink.
pub fn check(config: &Config, scale: &ScaleArgs, sink: bool) -> Result<(), Refusal> {
    Workers::check(config, &scale.scale(), sink)
}

/// The exit status of a run on workers that could not start or failed.
fn status(e: &Error) -> u8 {
    match e {
        e if e.is_usage() => EXIT_USAGE,
        // (a sink's: a Kafka broker unreachable, a producer fenced)
        Error::Runtime(e) => error_status(e),
        Error::Pattern { .. } => EXIT_PATTERN_ERROR,
        e if e.is_checkpoint() => EXIT_CHECKPOINT,
        _ => EXIT_IO,
    }
}

/// Runs `cepheid run` on workers, telling `report`; returns the exit
/// status.
pub fn run(
    config: &Config,
    scale: &ScaleArgs,
    rules: &Rules,
    report: Box<dyn Report>,
    summary: SummaryArg,
    sources: Option<Vec<Option<Box<dyn Source>>>>,
    sink: Option<Box<dyn Sink>>,
) -> u8 {
    let said = |e: Error| {
        match &e {
            Error::Runtime(e) => say!("error: {}", super::shown(e)),
            e => say!("error: {}", super::in_flags(&e.to_string())),
        }
        status(&e)
    };
    let form = summary;
    let workers = Workers::new(config, &scale.scale(), rules, report);
    let workers = match (workers, sources) {
        (Ok(workers), Some(sources)) => workers.with_sources(sources),
        (workers, None) => workers,
        (Err(e), _) => Err(e),
    };
    let workers = match (workers, sink) {
        (Ok(workers), Some(sink)) => Ok(workers.with_sink(sink)),
        (workers, _) => workers,
    };
    let workers = match workers {
        Ok(workers) => workers,
        Err(e) => return said(e),
    };
    // Live input: SIGINT and SIGTERM stop the feed, heard from here on (a
    // run that said it resumes stops with a last cut).
    // With --watch, SIGHUP reads the pattern files again, as on one engine.
    let signal = match workers.handle() {
        Some(handle) => {
            let on_signal = move |n| {
                if signals::is_hangup(n) {
                    handle.reload("SIGHUP");
                } else {
                    handle.stop(signals::name(n));
                }
            };
            signals::hand_to(on_signal, config.watch)
        }
        None => Arc::default(),
    };
    let outcome = match workers.run() {
        Ok(outcome) => outcome,
        Err(e) => return said(e),
    };
    let mut status = if outcome.said_errors {
        EXIT_IO
    } else {
        EXIT_OK
    };
    if let Some(summary) = &outcome.summary {
        status = status.max(ended(summary, form, signal.load(Ordering::SeqCst)));
    }
    for e in outcome.failed {
        status = status.max(said(e));
    }
    status
}

/// Before a run without `--workers` on a checkpoint folder that holds a
/// cut of workers: the cut made a checkpoint of one engine
/// (`cepheid_dataflow::run::to_one_engine`, said once), from which the
/// run resumes; or refused, with its exit status (nothing changed).
pub fn to_one_engine(config: &Config, rules: &Rules) -> Result<(), u8> {
    match cepheid_dataflow::run::to_one_engine(config, rules) {
        Ok(None) => Ok(()),
        Ok(Some(workers)) => {
            if let Some(dir) = &config.checkpoint {
                say!(
                    "cepheid: the checkpoint in {} was taken on {workers} worker{}: it is a checkpoint of one engine now (docs/checkpoints.md, \"Across executors\")",
                    dir.display(),
                    if workers == 1 { "" } else { "s" }
                );
            }
            Ok(())
        }
        Err(e) => {
            match &e {
                Error::Runtime(e) => say!("error: {}", super::shown(e)),
                e => say!(
                    "error: {}; nothing was changed",
                    super::in_flags(&e.to_string())
                ),
            }
            Err(status(&e))
        }
    }
}
