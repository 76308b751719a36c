//! `cepheid run --workers N` and `--processes P --process I --hostfile
//! FILE` (feature `workers`): the arguments mapped to a
//! `cepheid_dataflow::run::Scale`, whose `Cluster` the run's `Runtime`
//! runs on (`Runtime::on_cluster`) instead of one engine.

use std::path::PathBuf;

use cepheid_dataflow::run::{Cluster, Scale};
use cepheid_engine::Rules;
use cepheid_runtime::Config;

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

    /// The cluster the run goes on.
    pub fn cluster(&self) -> Cluster {
        Cluster::new(Scale {
            workers: self.workers.unwrap_or(1),
            processes: self.processes,
            process: self.process.unwrap_or(0),
            hostfile: self.hostfile.clone(),
            output_per_worker: self.output_per_worker,
            chunk_bytes: self.chunk_bytes,
        })
    }
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
            let e = cepheid_runtime::Error::from(e);
            match &e {
                cepheid_runtime::Error::Cluster(_) => {
                    say!("error: {}; nothing was changed", super::shown(&e));
                }
                e => say!("error: {}", super::shown(e)),
            }
            Err(super::error_status(&e))
        }
    }
}
