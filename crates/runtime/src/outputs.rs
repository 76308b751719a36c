//! The outputs of a run on a cluster's workers, opened by the runtime for
//! this process before its workers start ([`Outputs`]): process 0's (the
//! caller's sink, or the files of the run's [`Config`]), and with outputs
//! per worker each of this process's workers' own `FILE.W`. Resumed, each
//! file is truncated to its length at the cut ([`Sink::recover`]; one
//! rotated since is started empty, said), as one engine's are.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::checkpoint::{Part, Stored};
use crate::cluster::WorkerLayout;
use crate::source::Position;
use crate::{Checkpoint, Config, Error, Files, Notify, Output, Sink, SinkState, Writing};

/// The outputs of this process of a run on a cluster, open
/// ([`RestoredCluster::start`](crate::RestoredCluster::start)): the one its
/// workers share (process 0's: the caller's sink, or the run's files;
/// `None` on another process), and each worker's own file with outputs
/// per worker (by index in the process; worker 0's is process 0's
/// output, `None` without them).
pub struct Outputs {
    /// The output the workers of process 0 write to, behind a lock.
    pub shared: Option<Arc<Mutex<Output>>>,
    /// Each worker's own output file (`FILE.W`), in worker order.
    pub own: Vec<Option<Arc<Mutex<Output>>>>,
}

/// Where this process's workers are: the layout of the cluster, this
/// process's number and its workers (numbered over every process).
pub(crate) struct Here {
    pub(crate) layout: WorkerLayout,
    pub(crate) process: usize,
    pub(crate) workers: std::ops::Range<usize>,
}

/// What the outputs are resumed at: the cut's number, the sink's state
/// (the files' lengths) and each old worker's own file at the cut (its
/// length and first bytes, [`Part::Own`]).
pub(crate) struct At {
    number: u64,
    sink: SinkState,
    own: Vec<(Option<u64>, Option<u32>)>,
}

impl At {
    /// What the outputs of a run resuming `stored` go on from.
    pub(crate) fn of(stored: &Stored) -> At {
        let own = (stored.pieces().iter())
            .map(|piece| {
                (piece.get(Part::Own))
                    .and_then(|bytes| postcard::from_bytes(bytes).ok())
                    .unwrap_or_default()
            })
            .collect();
        At {
            number: stored.marker().number(),
            sink: stored.marker().sink_state(),
            own,
        }
    }
}

/// Opens the outputs of this process (`here`) of a run of `config` on a
/// cluster, into `sink` (`None`: the files of `config`), before its
/// workers start; resumed `at` a cut, each file is truncated to its
/// length then. What they say goes to `notify`.
pub(crate) fn open(
    config: &Config,
    here: &Here,
    sink: Option<Box<dyn Sink>>,
    at: Option<&At>,
    notify: &Notify,
) -> Result<Outputs, Error> {
    let per_worker = (config.output.as_ref()).filter(|_| here.layout.output_per_worker);
    let own_file =
        |index: usize| per_worker.map(|p| PathBuf::from(format!("{}.{index}", p.display())));
    // Each worker's own file at the cut: its length and first bytes.
    let own_at =
        |index: usize| (at.and_then(|at| at.own.get(index)).copied()).unwrap_or((None, None));
    let files = |config: &Config, state: SinkState| -> Result<Arc<Mutex<Output>>, Error> {
        let mut files = Files::open(config, at.is_some(), Writing::Caller)?;
        files.notify_to(notify.clone());
        if let Some(at) = at {
            let kept = Checkpoint {
                number: at.number,
                source: Position::None,
                sink: state,
            };
            files.recover(&[kept]).map_err(Error::Sink)?;
        }
        let output = Output::new(Box::new(files), notify.clone());
        Ok(Arc::new(Mutex::new(output)))
    };
    let shared = match (here.process == 0, sink) {
        (false, _) => None,
        (true, Some(sink)) => Some(Arc::new(Mutex::new(Output::new(sink, notify.clone())))),
        (true, None) => {
            let mut state = SinkState {
                // (a file keeps no state of its own)
                data: Vec::new(),
                ..at.map(|at| at.sink.clone()).unwrap_or_default()
            };
            let mut config = config.clone();
            if per_worker.is_some() {
                // Worker 0 writes `FILE.0`, at its own length.
                config.output = own_file(0);
                (state.output_len, state.output_head) = own_at(0);
            }
            Some(files(&config, state)?)
        }
    };
    let mut own = Vec::with_capacity(here.layout.workers);
    for index in here.workers.clone() {
        own.push(match own_file(index) {
            None => None,
            Some(_) if index == 0 => shared.clone(),
            Some(path) => {
                let mut config = config.clone();
                (config.output, config.late, config.shadow_output) = (Some(path), None, None);
                (config.audit, config.decisions) = (None, None);
                let (output_len, output_head) = own_at(index);
                let state = SinkState {
                    output_len,
                    output_head,
                    ..SinkState::default()
                };
                Some(files(&config, state)?)
            }
        });
    }
    Ok(Outputs { shared, own })
}
