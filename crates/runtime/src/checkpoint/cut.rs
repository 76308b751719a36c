//! The files of a cut of workers, written and completed by the runtime:
//! each worker's piece ([`write_piece`]: its own output synced and
//! measured first, with outputs per worker), then, once every piece is
//! there ([`missing_pieces`]), the cut completed ([`complete_cut`]): the
//! outputs prepared (the sink's `prepare`), the marker written, the older
//! cuts' leftovers pruned, the sink's commit, the older cuts pruned. The
//! executor asks for the cuts and gathers the pieces (when is its own:
//! its workers take them at a common frontier).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::store::{self, Marker, Part, Piece};
use crate::source::Position;
use crate::{Kind, Output, SinkError, SinkState, Unusable};

/// Why a cut could not be written ([`write_piece`], [`complete_cut`]).
#[derive(Debug)]
pub enum CutFailed {
    /// The output failed as it was prepared or committed (its error is
    /// the output's, said by it); `written`: the cut's marker was written
    /// before.
    Sink {
        /// The output's error.
        error: SinkError,
        /// Was the marker written (the cut complete, its commit failed)?
        written: bool,
    },
    /// A file of the cut (`path`) could not be written.
    File {
        /// The file, or the cut's folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Writes worker `worker`'s `piece` of the cut at `epoch` in the folder
/// `dir`; with outputs per worker, its own output `own` is synced and
/// measured first (its length and first bytes kept in the piece,
/// [`Part::Own`]). Then what is left of the cut this worker wrote its
/// piece of before the one before (`before`: that cut's epoch) goes:
/// those below it were completed or given up (a cut is asked for once the
/// one before it is whole or given up); not the one before, which may be
/// being completed still.
pub fn write_piece(
    dir: &Path,
    epoch: i64,
    worker: usize,
    mut piece: Piece,
    own: Option<&Mutex<Output>>,
    before: Option<i64>,
) -> Result<(), CutFailed> {
    // (synced and measured as one engine's files at a checkpoint)
    let (own, own_head) = match own.map(|own| lock(own).prepare(0)) {
        Some(Ok(at)) => (at.output_len, at.output_head),
        Some(Err(error)) => {
            let written = false;
            return Err(CutFailed::Sink { error, written });
        }
        None => (None, None),
    };
    // (postcard, as a cut of before kept it)
    let own = postcard::to_allocvec(&(own, own_head));
    piece.set(Part::Own, own.unwrap_or_default());
    if let Err(source) = store::write_piece(dir, epoch, worker, &piece) {
        let path = store::part_dir(dir, epoch).join(store::piece_name(worker));
        return Err(CutFailed::File { path, source });
    }
    if let Some(before) = before {
        store::prune_parts_below(dir, before);
    }
    Ok(())
}

/// The workers (of `workers`, over every process) whose piece of the cut
/// at `epoch` is not in `dir`; when some are missing, the cut is never
/// completed: the files written for it go.
pub fn missing_pieces(dir: &Path, epoch: i64, workers: usize) -> Vec<usize> {
    let missing: Vec<usize> = (0..workers)
        .filter(|&w| !store::has_piece(dir, epoch, w))
        .collect();
    if !missing.is_empty() {
        let _ = std::fs::remove_dir_all(store::part_dir(dir, epoch));
    }
    missing
}

/// The folder of the cut at `epoch` in `dir` while it is written (what a
/// cut that could not be written names).
pub fn cut_folder(dir: &Path, epoch: i64) -> PathBuf {
    store::part_dir(dir, epoch)
}

/// How the positions of the workers' sources are read from a cut's
/// pieces, for a sink's commit ([`complete_cut`]): the executor's, while
/// a piece keeps its source's place in a section of its own
/// ([`Cluster::positions`](crate::Cluster::positions)).
pub type ReadPositions = dyn Fn(&[Piece]) -> Result<Vec<Position>, Unusable>;

/// How a cut was completed ([`complete_cut`]).
#[derive(Clone, Copy, Debug)]
pub struct Completed {
    /// The bytes of its files, when asked for.
    pub bytes: Option<u64>,
}

/// Completes the cut at `epoch` in `dir` as checkpoint `number`, every
/// worker's piece written: every record of the cut written to `out`, made
/// durable and measured by its sink ([`Output::prepare`]: a file's length
/// and first bytes, a sink's own state; with `output_per_worker` each
/// piece holds its own file's), `marker` written with the outputs' state,
/// the pieces of cuts given up below it pruned; with `commit` (a sink
/// that commits each cut), the sink commits it with the positions of the
/// workers' sources in it put together ([`Sink::join_positions`](crate::Sink::join_positions);
/// `positions` reads them from the pieces), and only then do the cuts
/// before it go. `measure`: the bytes of its files are counted.
#[allow(clippy::too_many_arguments)]
pub fn complete_cut(
    dir: &Path,
    epoch: i64,
    number: u64,
    marker: Marker,
    out: &mut Output,
    output_per_worker: bool,
    commit: Option<&ReadPositions>,
    measure: bool,
) -> Result<Completed, CutFailed> {
    let at = out.prepare(number).map_err(|error| CutFailed::Sink {
        error,
        written: false,
    })?;
    let mut state: SinkState = at;
    if output_per_worker {
        // (each worker's piece has its own file's length, `Part::Own`:
        // worker 0's output writes `FILE.0`)
        (state.output_len, state.output_head) = (None, None);
    }
    let marker = marker.outputs(&state);
    if let Err(source) = store::complete_part(dir, epoch, number, &marker.encode()) {
        let path = store::part_dir(dir, epoch);
        return Err(CutFailed::File { path, source });
    }
    // The pieces of cuts given up below it, written late, go: here,
    // where no cut below is being completed. (A worker that pruned them
    // as it wrote its piece of the run's last cut removed the folder of
    // the cut being completed: "cannot write the checkpoint: No such
    // file or directory", and no commit.)
    store::prune_parts_below(dir, epoch);
    if let Some(positions) = commit {
        // The cut is durable: the sink commits it with the sources'
        // positions in it. Until that returned, the cut before stays
        // (resuming, the sink says which of the two it committed).
        committed(dir, number, out, positions).map_err(|error| CutFailed::Sink {
            error,
            written: true,
        })?;
    }
    // (a folder that cannot be pruned now is at the next cut)
    let _ = store::prune(dir, number);
    let bytes = measure.then(|| store::bytes(dir, number));
    Ok(Completed { bytes })
}

/// Commits checkpoint `number` of `dir`, whole, in the output's sink, with
/// the positions of the workers' sources in it (`positions`) put together.
fn committed(
    dir: &Path,
    number: u64,
    out: &mut Output,
    positions: &ReadPositions,
) -> Result<(), SinkError> {
    let position = store::read(dir, number)
        .map_err(|why| why.to_string())
        .and_then(|resume| positions(resume.pieces()).map_err(|why| why.to_string()))
        .map_err(|why| SinkError {
            target: out.sink().describe(Kind::Match),
            late: false,
            source: io::Error::other(format!("the cut just written cannot be read: {why}")),
        })
        .and_then(|shares| out.sink().join_positions(&shares));
    match position {
        Ok(position) => out.commit(number, &position),
        Err(e) => Err(out.fail(e)),
    }
}

/// Locks an output a worker shares (one that panicked while writing has
/// failed the run already).
fn lock(shared: &Mutex<Output>) -> std::sync::MutexGuard<'_, Output> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The end of a run on workers said its field warnings (`warnings`)
/// after its last cut, `number` of `dir` (a file's cut before its end):
/// that cut's counters now keep them, as one engine's checkpoint taken
/// after its end's warnings keeps them, so that a run resumed from it
/// says none of them again. The marker is written again whole (a
/// temporary file, synced, renamed): a crash leaves the one before or
/// this one, either readable. Nothing is written when the cut kept them
/// already.
pub(crate) fn keep_end_warnings(
    dir: &Path,
    number: u64,
    warnings: &crate::source::FieldWarnings,
) -> io::Result<()> {
    let cut = store::cut_dir(dir, number);
    let bytes = std::fs::read(cut.join("marker"))?;
    let marker = Marker::decode(&bytes)
        .map_err(|why| io::Error::other(format!("its marker cannot be read: {why}")))?;
    let counters = marker.the_counters().clone().with_fields(warnings);
    if &counters == marker.the_counters() {
        return Ok(());
    }
    store::write_file(&cut, "marker", &marker.counters(counters).encode(), None)?;
    store::sync_dir(&cut)
}
