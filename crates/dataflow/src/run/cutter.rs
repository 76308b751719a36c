//! Worker 0's part of a checkpoint: it asks for cuts, gathers every
//! worker's state at a cut, and writes and commits the cut ([`Cutter`]).

use super::*;
use cepheid_runtime::checkpoint::{self, CutFailed};

/// Worker 0's part in the cuts: asks for one every `--checkpoint-every`,
/// and when its input frontier passes the cut's epoch (every record made
/// below it is written, every worker's file is), syncs the outputs, writes
/// `complete` with their lengths, and deletes the older cuts.
pub(super) struct Cutter {
    pub(super) say: Say,
    pub(super) checkpoint: Arc<Checkpoint>,
    /// Sends the requests to every worker; dropped at the end of the input
    /// (every worker's requests dataflow then ends).
    pub(super) requests: Option<Requests>,
    /// Several processes: the epoch is chosen from every process's
    /// sources ([`Requests::ask`]).
    pub(super) ask: bool,
    /// Asked, and the epoch not chosen yet.
    pub(super) asking: bool,
    /// Cuts given up in a row because a worker's file was not there.
    pub(super) misses: u32,
    /// When the last cut was asked for (or the run started).
    pub(super) last: Instant,
    /// The lines the process's readers had read then.
    pub(super) last_lines: u64,
    /// The epoch asked for and not passed yet.
    pub(super) pending: Option<Timestamp>,
    /// When the cut under way was asked for (its duration runs from
    /// there to its `complete` durable).
    pub(super) asked_at: Option<Instant>,
    /// Does the report observe the run? Then each cut completed, or that
    /// could not be written, is said to it ([`RunEvent`]).
    pub(super) observes: bool,
    /// Has the writer's input ended?
    pub(super) ended: bool,
    pub(super) failed: Arc<Failed>,
    pub(super) stop: Arc<AtomicBool>,
    /// The latest records an observer was shown, kept in each cut's
    /// marker (a resumed run shows them first).
    pub(super) tap: Option<Arc<Mutex<Tap>>>,
    /// When the writer's next look at the cuts is scheduled.
    pub(super) woken: Option<Instant>,
    /// The audit records of changes of rules: those before a cut's
    /// epoch are kept in its marker.
    pub(super) audit: Arc<super::emit::AuditJoin>,
}

impl Cutter {
    /// The epoch chosen since the last look (several processes), which the
    /// workers now take part in: pending. Data made at or above it can
    /// only come after it was chosen, on this worker's thread.
    pub(super) fn learn(&mut self) {
        if !self.asking {
            return;
        }
        if let Some(e) = self.requests.as_ref().and_then(Requests::chosen) {
            self.asking = false;
            self.pending = Some(e);
        }
    }

    /// The input frontier of worker 0's writer is at `at` (`None`: the
    /// input ended).
    pub(super) fn tick(&mut self, at: Option<Timestamp>, gathered: &mut Gathered) {
        let checkpoint = Arc::clone(&self.checkpoint);
        if at.is_none() {
            // The run ends: no more requests. A cut under way whose epoch
            // every worker's CEP operator passed before its input ended
            // (their files are written) is completed: the frontier may go
            // from below it to empty at once (a source that reads its
            // last chunks in one go), which left a short run with no cut
            // at all. Not when the workers' last cut (`Cuts::last_cut`: a
            // source stopped, `Cuts::at_end`, `Cuts::before_end`) is at or
            // below its epoch: that one is the run's cut at its end, which
            // `last_cut` completes. At the same epoch (a request at the
            // largest source capability + 1, the last cut's epoch when
            // nothing moved since) both are one folder, the last cut's
            // files: completed here too, it was completed twice, numbered
            // `n` then `n + 1`, so that a sink's commit `n + 1` found the
            // cut it had committed (`n`) gone; above it, no operator
            // passed the epoch before its input ended.
            if let Some(e) = self.pending.take() {
                let since = self.asked_at.take().unwrap_or_else(Instant::now);
                let last_at_or_below = checkpoint.cuts.last_cut().is_some_and(|l| l <= e);
                if !last_at_or_below && !checkpoint.cuts.failed(e) && !self.failed.is_set() {
                    if let Err(why) = self.complete(e, since, gathered) {
                        self.cut_error(e, why);
                    }
                }
            }
            self.asking = false;
            self.requests = None;
            if !self.ended {
                self.ended = true;
                self.last_cut(gathered);
            }
            return;
        }
        self.learn();
        let mut again = false;
        if let (Some(e), Some(at)) = (self.pending, at) {
            if at >= e {
                self.pending = None;
                let since = self.asked_at.take().unwrap_or_else(Instant::now);
                let whole = !checkpoint.cuts.failed(e) && {
                    match self.complete(e, since, gathered) {
                        Ok(whole) => whole,
                        Err(why) => {
                            self.cut_error(e, why);
                            true
                        }
                    }
                };
                // What was held during the cut was made below the next
                // one (asked for just above every source's capability
                // seen, so above every record made so far): written now,
                // before another cut is asked for in this same call and
                // holds it on, past that cut's measure of the outputs.
                for chunk in std::mem::take(&mut gathered.held) {
                    gathered.take(chunk);
                }
                if whole {
                    self.misses = 0;
                    self.last = Instant::now();
                } else {
                    // A source passed `e` before it saw the request: ask
                    // again at once (once; then at the usual pace).
                    self.misses += 1;
                    again = self.misses == 1;
                    if !again {
                        self.last = Instant::now();
                    }
                }
            }
        }
        if self.pending.is_none()
            && !self.asking
            && at.is_some()
            && !self.failed.is_set()
            && (again || self.last.elapsed() >= checkpoint.every || self.lines_due())
        {
            if let Some(requests) = &mut self.requests {
                self.asked_at = Some(Instant::now());
                self.last_lines = self.checkpoint.lines.load(Ordering::Relaxed);
                if self.ask {
                    requests.ask();
                    self.asking = true;
                } else {
                    self.pending = Some(requests.request(&checkpoint.cuts));
                }
            }
        }
    }

    /// Before the writer takes what came: the epoch chosen since the last
    /// look is learned (before anything made at or above it is taken);
    /// then, during a cut at `e`, what was made at `e` or above waits until
    /// the outputs are measured (the epoch returned), and what the end of
    /// a file made (at `Timestamp::MAX`) waits for the cut before it
    /// (`Cuts::before_end`: `true`).
    pub(super) fn holding(cutter: Option<&mut Cutter>) -> (Option<Timestamp>, bool) {
        let Some(cutter) = cutter else {
            return (None, false);
        };
        cutter.learn();
        let before_end = cutter.checkpoint.cuts.cuts_before_end();
        (cutter.pending, before_end)
    }

    /// Schedules the writer's next look at the cuts ([`Cutter::look_in`]),
    /// one wake-up at a time.
    pub(super) fn wake(&mut self, activator: &timely::scheduling::Activator) {
        if let Some(wait) = self.look_in() {
            let at = Instant::now() + wait;
            if (self.woken).is_none_or(|w| w <= Instant::now() || w > at) {
                activator.activate_after(wait);
                self.woken = Some(at);
            }
        }
    }

    /// When to look at the cuts again while nothing comes to the writer:
    /// when the next cut is due by time (a quiet input's sources take it
    /// where they stand, `SourceClock`), or soon while the processes
    /// choose one; `None` once the run ends or a cut is under way (the
    /// frontier's moves wake it then).
    fn look_in(&self) -> Option<Duration> {
        if self.ended || self.requests.is_none() || self.failed.is_set() {
            return None;
        }
        if self.asking {
            return Some(Duration::from_millis(10));
        }
        if self.pending.is_some() {
            return None;
        }
        if self.checkpoint.every == Duration::MAX {
            // (by lines only: lines read move the frontier)
            return None;
        }
        let due = self.checkpoint.every.saturating_sub(self.last.elapsed());
        Some(due.max(Duration::from_millis(1)))
    }

    /// Did the process's readers read `Config::checkpoint_every` lines
    /// since the last cut was asked for?
    fn lines_due(&self) -> bool {
        let read = self.checkpoint.lines.load(Ordering::Relaxed);
        (self.checkpoint.every_lines).is_some_and(|n| read.saturating_sub(self.last_lines) >= n)
    }

    /// The cut at `e` could not be written: said; the input stops, exit 4
    /// at the end.
    fn cut_error(&self, e: Timestamp, why: io::Error) {
        let checkpoint = &self.checkpoint;
        say!(
            self.say,
            Error,
            "error: cannot write the checkpoint in {}: {why}",
            checkpoint.dir.display()
        );
        let error = cut_failed(&checkpoint::cut_folder(&checkpoint.dir, e), why);
        self.failed_event(&error);
        self.failed.set(error);
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The run ends: when a signal stopped the live input, every worker
    /// took a last cut (`cep_cut`), whose files are written (its CEP
    /// operator's capability went after): the outputs, everything made
    /// included, are measured and the cut completed, so that the next
    /// run replays nothing.
    fn last_cut(&mut self, gathered: &mut Gathered) {
        let checkpoint = Arc::clone(&self.checkpoint);
        let Some(e) = checkpoint.cuts.last_cut() else {
            return;
        };
        for chunk in std::mem::take(&mut gathered.held) {
            gathered.take(chunk);
        }
        if self.failed.is_set() {
            // A cut failed (said then, the input stopped for it): none is
            // completed after it, as the single run takes no checkpoint
            // after a failed one; the next run goes on from the last
            // complete cut. (A sink that failed would fail again, and was
            // said to have taken this one.)
            return;
        }
        let dir = checkpoint.dir.display();
        // (taken by every worker as the dataflow ended: from now)
        // (before the end of a file: as one engine's there, not said)
        let quiet = checkpoint.cuts.last_cut_before_end();
        match self.complete(e, Instant::now(), gathered) {
            Ok(_) if quiet => {}
            Ok(taken) => {
                let said = said_at_stop(&checkpoint.dir, taken);
                self.say.report().notice(said);
            }
            Err(why) => {
                say!(
                    self.say,
                    Error,
                    "error: cannot write the checkpoint in {dir}: {why}"
                );
                let error = cut_failed(&checkpoint::cut_folder(&checkpoint.dir, e), why);
                self.failed_event(&error);
                self.failed.set(error);
            }
        }
    }

    /// The frontier passed `e`: every worker that took the cut has written
    /// its file (before its capability moved past `e`). When every
    /// worker's file is there, the outputs are synced and measured,
    /// `complete` written, the older cuts deleted: `Ok(true)`, said to an
    /// observing report ([`RunEvent::Checkpoint`]: its number, the time
    /// since it was asked for (`since`), the bytes of its files).
    /// `Ok(false)`: a worker could not take it.
    fn complete(&self, e: Timestamp, since: Instant, gathered: &mut Gathered) -> io::Result<bool> {
        let completing = Instant::now();
        let checkpoint = &self.checkpoint;
        let workers = checkpoint.layout.0 * checkpoint.layout.1;
        let missing = checkpoint::missing_pieces(&checkpoint.dir, e, workers);
        if !missing.is_empty() {
            // (never complete: the files written for it went)
            if self.misses + 1 == MISSES_TOLD {
                let shown: Vec<String> = missing.iter().map(usize::to_string).collect();
                say!(
                    self.say,
                    Info,
                    "cepheid: no checkpoint could be completed in {} ({} cuts in a row): no file of worker {} there; with `Scale::processes`, every process needs `Config::checkpoint` with a folder they all see",
                    checkpoint.dir.display(),
                    MISSES_TOLD,
                    shown.join(", ")
                );
            }
            return Ok(false);
        }
        let Some(out) = &gathered.out else {
            return Ok(true);
        };
        let mut out = lock(out);
        let number = checkpoint.number.load(Ordering::SeqCst) + 1;
        let latest = self.tap.as_ref().map(|tap| lock(tap).latest());
        let marker = (checkpoint.marker(number))
            .records(latest.unwrap_or_default())
            .history(self.audit.history_below(e));
        // (the runtime's: the outputs prepared, the marker, the sink's
        // commit with the sources' positions in the pieces, the pruning)
        let commit = checkpoint
            .to_sink
            .then_some(&positions as &checkpoint::ReadPositions);
        let completed = checkpoint::complete_cut(
            &checkpoint.dir,
            e,
            number,
            marker,
            &mut out,
            checkpoint.output_per_worker,
            commit,
            self.observes,
        );
        let completed = match completed {
            Ok(completed) => completed,
            Err(CutFailed::File { source, .. }) => return Err(source),
            Err(CutFailed::Sink { error, written }) => {
                if written {
                    checkpoint.number.store(number, Ordering::SeqCst);
                }
                drop(out);
                self.sink_event(error);
                return Ok(self.sink_failed());
            }
        };
        checkpoint.number.store(number, Ordering::SeqCst);
        drop(out);
        if let (true, Some(bytes)) = (self.observes, completed.bytes) {
            self.say.report().event(&RunEvent::Checkpoint {
                number,
                duration: since.elapsed(),
                bytes,
                // (worker 0's writer, syncing the outputs and writing
                // `complete`; each worker wrote its own file on its thread)
                stall: completing.elapsed(),
                deferred: 0,
            });
        }
        Ok(true)
    }

    /// Says to an observing report that a cut could not be completed
    /// ([`RunEvent::CheckpointFailed`]).
    fn failed_event(&self, error: &cepheid_runtime::Error) {
        if self.observes {
            self.say
                .report()
                .event(&RunEvent::CheckpointFailed { error });
        }
    }

    /// [`Cutter::failed_event`] of the sink's error `e` at a cut.
    fn sink_event(&self, e: SinkError) {
        self.failed_event(&cepheid_runtime::Error::Sink(e));
    }

    /// The sink failed at a cut: the input stops (no more cuts), and the
    /// run ends with its error (kept in the output, said when it
    /// happened). The cut is not retried.
    fn sink_failed(&self) -> bool {
        // (its error is the output's, the run's end: `Output::end`)
        self.failed.mark();
        self.stop.store(true, Ordering::Relaxed);
        true
    }
}

/// What an observing report is told of a cut's file (or folder) at
/// `path` that could not be written ([`RunEvent::CheckpointFailed`]).
pub(super) fn cut_failed(path: &Path, source: io::Error) -> cepheid_runtime::Error {
    cepheid_runtime::Error::Io {
        doing: cepheid_runtime::Doing::WriteCheckpoint,
        path: path.display().to_string(),
        source,
    }
}

/// Something that failed while the run went on without stopping it at
/// once (a cut not written, a worker's own output), said when it happened:
/// the first error, which ends the run as failed, as one engine's first
/// error does (its own summary's end).
#[derive(Default)]
pub(super) struct Failed {
    set: AtomicBool,
    first: Mutex<Option<cepheid_runtime::Error>>,
}

impl Failed {
    /// `error` happened (the first is kept).
    pub(super) fn set(&self, error: cepheid_runtime::Error) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(error);
        self.mark();
    }

    /// Something failed whose error is kept elsewhere (the output's).
    pub(super) fn mark(&self) {
        self.set.store(true, Ordering::Relaxed);
    }

    /// Has anything failed?
    pub(super) fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// The first error kept.
    pub(super) fn take(&self) -> Option<cepheid_runtime::Error> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Cuts given up in a row before it is said why.
pub(super) const MISSES_TOLD: u32 = 3;

/// What reaches worker 0: the records to write, the counts to add.
pub(super) struct Gathered {
    pub(super) out: Option<write::Shared>,
    /// Set when writing failed: the input stops.
    pub(super) stop: Arc<AtomicBool>,
    /// Made at or above the epoch of a cut under way: written after it.
    pub(super) held: Vec<Chunk>,
    /// Made by the end of a file's input, after the cut before it
    /// ([`Cuts::before_end`]): written once the run's last cut is
    /// complete.
    pub(super) after_end: Vec<Chunk>,
    /// Each worker's counts, as they came (worker 0 of process 0's: every
    /// worker's of every process), which the runtime adds up.
    pub(super) counts: Vec<Counts>,
}

impl Gathered {
    /// What worker 0 gathers into `out` (another worker: nothing), until
    /// `stop`.
    pub(super) fn new(out: Option<write::Shared>, stop: Arc<AtomicBool>) -> Gathered {
        Gathered {
            out,
            stop,
            held: Vec::new(),
            after_end: Vec::new(),
            counts: Vec::new(),
        }
    }

    pub(super) fn flush_now(&mut self) {
        if let Some(out) = &self.out {
            lock(out).flush_written();
        }
    }

    pub(super) fn take(&mut self, chunk: Chunk) {
        match chunk {
            Chunk::Records(block) => {
                if let Some(out) = &self.out {
                    write::write(out, &block, &self.stop);
                }
            }
            Chunk::Summary(counts) => self.counts.push(*counts),
            // (taken by worker 0's `decisions::Gather` before they come
            // here)
            Chunk::Parts(_) | Chunk::Late(_) => {}
        }
    }
}
