//! The executor seam: a run's matching on several workers (threads of
//! this process, and processes) instead of one engine on the run's
//! thread. [`Runtime::on_cluster`](crate::Runtime::on_cluster) takes a
//! [`Cluster`] (`cepheid-dataflow`'s, on timely-dataflow) and is then run
//! as any [`Runtime`](crate::Runtime): the same [`Handle`], the same
//! [`Summary`](crate::Summary), the same [`Error`]s. The dependency
//! points from the cluster to this crate: a library user who runs one
//! engine compiles no dataflow.

use std::ops::Range;
use std::sync::Arc;

use cepheid_engine::Rules;

use crate::checkpoint::{Piece, Stored};
use crate::source::Position;
use crate::{Board, Config, Error, Handle, Outputs, Report, Sink, Source, Unusable};

/// The sources of a run on a cluster, one per worker of this process in
/// worker order (`None` for a worker that reads nothing).
pub type Sources = Vec<Option<Box<dyn Source>>>;

/// What runs the patterns of a run on several workers: given to
/// [`Runtime::on_cluster`](crate::Runtime::on_cluster), which checks the
/// run with it ([`Cluster::check`]), opens it ([`Cluster::open`]) and
/// starts it ([`RestoredCluster::start`]).
pub trait Cluster: Send {
    /// What a run of `config` on this cluster does not take (`sink`: its
    /// records go to a sink rather than to files), refused before anything
    /// is opened. [`Runtime::on_cluster`](crate::Runtime::on_cluster) asks
    /// it first; a caller that opens sources or a sink before the run (a
    /// Kafka client asks its broker) asks it before it asks anything.
    fn check(&self, config: &Config, sink: bool) -> Result<(), Error>;

    /// This process's workers, numbered over every process, and the
    /// workers over every process: the sources of a run are one per
    /// worker of this process, in order (a Kafka source's partitions are
    /// dealt to all of them).
    fn workers(&self) -> (Range<usize>, usize);

    /// This process's number among the run's processes (0 in a run of one
    /// process): the lock it takes on the checkpoint folder is its own.
    fn process(&self) -> usize;

    /// How its workers take the cuts of a run: what a checkpoint it
    /// resumes must have been taken with ([`Unusable`]'s worker layout
    /// refusals, checked by the runtime before [`Cluster::open`]).
    fn layout(&self) -> WorkerLayout;

    /// The positions of the sources of this cluster's workers in `pieces`
    /// (a cut of its workers), in worker order, which a sink is told to
    /// say which cut it committed
    /// ([`Sink::join_positions`](crate::Sink::join_positions)); a worker
    /// without a source, or whose source read nothing, has none. While a
    /// piece keeps its source's place in the cluster's own section
    /// ([`Part::Sources`](crate::checkpoint::Part::Sources)), the cluster
    /// reads it (`docs/design/run-seam.md`: it leaves when the runtime
    /// takes the cut protocol).
    fn positions(&self, pieces: &[Piece]) -> Result<Vec<Position>, Unusable>;

    /// Opens the run of `rules` as `config` says, telling `report`: its
    /// patterns planned and the checkpoint it resumes from restored
    /// (`resumed`: the runtime read the folder, holds its lock, chose the
    /// checkpoint with the sink and checked it against the command and
    /// the workers' layout, as for one engine's run; the cluster checks
    /// each piece against its plan and deals their places), its `sources`
    /// (instead of `config.input`) taken. Its records go to `sink` (what
    /// the sink takes is asked here; the runtime opens it with the
    /// outputs, [`RestoredCluster::start`]) instead of `config`'s files.
    /// With a `board` (the report observes the run), its workers publish
    /// their numbers there, which the runtime shows.
    #[allow(clippy::too_many_arguments)]
    fn open(
        self: Box<Self>,
        config: Config,
        rules: &Rules,
        report: Box<dyn Report>,
        sources: Option<Sources>,
        sink: Option<&dyn Sink>,
        resumed: Option<Stored>,
        board: Option<Arc<Board>>,
    ) -> Result<Box<dyn RestoredCluster>, Error>;
}

/// A run on a cluster whose patterns are planned and whose checkpoint is
/// restored ([`Cluster::open`]), its outputs not open yet: the runtime
/// says what it resumes, opens the outputs ([`Outputs`]) and starts it.
pub trait RestoredCluster: Send {
    /// With which rules the cut it resumes goes on: `(changed, edited)`,
    /// the rules of the cut changed while it ran, and the pattern files
    /// edited since (then read at once); `(false, false)` when it starts.
    fn resumed_rules(&self) -> (bool, bool);

    /// Takes the `outputs` of this process (opened by the runtime) and
    /// opens the run; the workers are not started yet.
    fn start(self: Box<Self>, outputs: Outputs) -> Result<Box<dyn OpenCluster>, Error>;
}

/// How a cluster's workers take the cuts of a run ([`Cluster::layout`]):
/// what a cut of theirs keeps of their layout (its marker,
/// [`Marker::on_workers`](crate::checkpoint::Marker::on_workers)), and
/// what a cut they resume must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerLayout {
    /// The run's processes.
    pub processes: usize,
    /// The workers of each process.
    pub workers: usize,
    /// The size of the chunks a file is cut in for the workers.
    pub chunk_bytes: u64,
    /// Does each worker write its own output file?
    pub output_per_worker: bool,
}

/// A run on a cluster, open: what [`Cluster::open`] gives.
pub trait OpenCluster: Send {
    /// The handle that stops its input or reloads its rules (`None`: this
    /// process reads nothing).
    fn handle(&self) -> Option<Handle>;

    /// Starts the workers (and connects to the other processes) and waits
    /// for them: what each counted and what failed, which the runtime
    /// adds up and makes the run's [`Summary`](crate::Summary) of, as of
    /// one engine's ([`Ended`](crate::executor::Ended)). What went wrong
    /// while they ran was said when it happened, as a
    /// [`Notice`](crate::Notice); the workers that failed the runtime
    /// says at the end. A process that does not count the run (another
    /// than process 0, or one whose worker 0 failed) gives no counts.
    fn run(self: Box<Self>) -> crate::executor::Ended;
}

/// An error of a cluster's own, in its words (its layout and hostfile, the
/// other processes, a cut that does not fit the run, a worker that
/// failed): [`Error::Cluster`].
pub trait ClusterError: std::error::Error + Send + Sync {
    /// Is it about an option or a layout the run does not take (a usage
    /// error: the command exits 2)?
    fn is_usage(&self) -> bool;
    /// Is it about a checkpoint that cannot be used (the command exits 5)?
    fn is_checkpoint(&self) -> bool;
}
