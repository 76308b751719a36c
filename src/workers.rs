//! `cepheid run --workers N` and `--processes P --process I --hostfile
//! FILE` (feature `workers`): the arguments mapped to a
//! `cepheid_dataflow::run::Scale`, whose `Cluster` the run's `Runtime`
//! runs on (`Runtime::on_cluster`) instead of one engine.

use std::path::PathBuf;

use cepheid_dataflow::run::{Cluster, Scale};

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
