//! What an observed run on a [`Cluster`](crate::Cluster) shows
//! (`--stats-every`, `--metrics`, the monitor's page): each worker
//! publishes its numbers to the process's [`Board`] now and then, and the
//! runtime shows their sum to the run's report from a thread of its own
//! every [`PUBLISH_EVERY`], and once more at the end with the summary
//! ([`Observing`]). One engine shows itself after each batch instead
//! (nothing to add up).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cepheid_core::pattern::Pattern;

use crate::source::{FieldWarnings, RulesWaiting};
use crate::{EngineNumbers, Kind, Notify, RunView, SplitLag, Summary, Tap, Workers};

/// How often each worker publishes its numbers to the [`Board`] of a run
/// whose report observes it, and how often they are shown to the report
/// ([`Report::tick`](crate::Report::tick)).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How often a worker measures the bytes of its state, at most (a walk
/// over it).
pub const STATE_EVERY: Duration = Duration::from_secs(1);

/// What each worker of this process last published, when the run's report
/// observes it: at most every [`PUBLISH_EVERY`] after a batch of work, and
/// at its end, under one mutex (nothing per event). Made by
/// [`Runtime::on_cluster`](crate::Runtime::on_cluster) and given to
/// [`Cluster::open`](crate::Cluster::open); the runtime shows the sum.
pub struct Board {
    /// This process's workers, numbered over every process.
    workers: Range<usize>,
    /// Does the run span several processes (each shows its own workers)?
    processes: bool,
    slots: Mutex<Vec<Published>>,
    /// The patterns, for the views.
    patterns: Vec<Pattern>,
    tap: Option<Arc<Mutex<Tap>>>,
    /// A followed file, and its one reader's offset in it after its last
    /// batch ([`Board::NOT_READ`] in another process, and before it
    /// starts).
    followed: Option<PathBuf>,
    read_to: AtomicU64,
    /// By the worker's index in the process: whether it reads a source of
    /// the library's user, and that source's lag per split as its reader
    /// last said it.
    lags: Mutex<Vec<(bool, Option<Vec<SplitLag>>)>>,
    /// The rules records waiting for event time, as the one reader of the
    /// source's rules stream last said.
    rules_waiting: Mutex<Option<RulesWaiting>>,
    /// Warnings about fields no event carried (for their count).
    fields: OnceLock<Arc<FieldWarnings>>,
    /// The latest audit records of changes of rules, kept by the workers.
    history: OnceLock<Arc<Mutex<crate::audit::History>>>,
}

/// A worker's numbers as it last published them.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Published {
    /// Its engines' numbers.
    pub engines: Option<EngineNumbers>,
    /// Events its source read (late ones included).
    pub events: u64,
    /// Late events of its source.
    pub late: u64,
    /// Malformed lines its reader skipped.
    pub malformed: u64,
}

impl Published {
    /// A worker's numbers: its engines', its source's events read, late
    /// and malformed.
    pub fn new(engines: EngineNumbers, events: u64, late: u64, malformed: u64) -> Published {
        Published {
            engines: Some(engines),
            events,
            late,
            malformed,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Board {
    /// [`Board::read_to`] before the reader says where it is.
    const NOT_READ: u64 = u64::MAX;

    /// The board of the workers `workers` of `all` (numbered over every
    /// process), running `patterns`; `readers`: which of them read a
    /// source (none: a file or live input); `records_wanted`: the latest
    /// records kept ([`Report::records_wanted`](crate::Report::records_wanted));
    /// `followed`: the followed file, whose lag is shown.
    pub(crate) fn new(
        (workers, all): (Range<usize>, usize),
        patterns: Vec<Pattern>,
        readers: Vec<bool>,
        records_wanted: usize,
        followed: Option<PathBuf>,
    ) -> Board {
        Board {
            processes: workers.len() < all,
            slots: Mutex::new(vec![Published::default(); workers.len()]),
            workers,
            patterns,
            tap: (records_wanted > 0).then(|| Arc::new(Mutex::new(Tap::new(records_wanted)))),
            followed,
            read_to: AtomicU64::new(Board::NOT_READ),
            lags: Mutex::new(readers.into_iter().map(|r| (r, None)).collect()),
            rules_waiting: Mutex::new(None),
            fields: OnceLock::new(),
            history: OnceLock::new(),
        }
    }

    /// Where the workers copy the latest records, when the report wants
    /// some: every block as it leaves a worker.
    pub fn tap(&self) -> Option<&Arc<Mutex<Tap>>> {
        self.tap.as_ref()
    }

    /// The warnings about fields no event carried: their count is shown.
    pub fn show_fields(&self, fields: Arc<FieldWarnings>) {
        let _ = self.fields.set(fields);
    }

    /// The latest audit records of changes of rules, as the workers keep
    /// them: shown ([`RunView::rule_changes`]).
    pub fn show_history(&self, history: Arc<Mutex<crate::audit::History>>) {
        let _ = self.history.set(history);
    }

    /// Worker `index` (over all processes) publishes.
    pub fn publish(&self, index: usize, published: Published) {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get_mut(index - self.workers.start) {
            *slot = published;
        }
    }

    /// The source of worker `local` (its index in the process) is `lag`
    /// records behind its splits' ends.
    pub fn lag(&self, local: usize, lag: Vec<SplitLag>) {
        if let Some((_, slot)) = lock(&self.lags).get_mut(local) {
            *slot = Some(lag);
        }
    }

    /// The reader of the source's rules stream has `waiting` records
    /// waiting for event time.
    pub fn rules_waiting(&self, waiting: Option<RulesWaiting>) {
        *lock(&self.rules_waiting) = waiting;
    }

    /// The followed file's reader is at `offset` of the file (its offsets
    /// start anew at a rotation).
    pub fn read_to(&self, offset: u64) {
        self.read_to.store(offset, Ordering::Relaxed);
    }

    /// The consumer lag of the process's sources, every split of each:
    /// `None` until every worker that reads one has said its own (a sum of
    /// some would say less than is behind), and without sources.
    fn consumer_lag(&self) -> Option<Vec<SplitLag>> {
        let lags = lock(&self.lags);
        let mut all = Vec::new();
        let mut readers = 0;
        for (reads, lag) in lags.iter() {
            if *reads {
                all.extend_from_slice(lag.as_deref()?);
                readers += 1;
            }
        }
        all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        (readers > 0).then_some(all)
    }

    /// Bytes of the followed file after its reader's place (its length now
    /// less the offset, as one engine's); `None` when not followed, or in
    /// a process that does not read it.
    fn source_lag(&self) -> Option<u64> {
        let at = self.read_to.load(Ordering::Relaxed);
        if at == Board::NOT_READ {
            return None;
        }
        let len = std::fs::metadata(self.followed.as_deref()?).ok()?.len();
        Some(len.saturating_sub(at))
    }

    /// Shows the sum of what the workers published to `notify`'s report;
    /// `summary` at the end (on one process, its numbers are the view's).
    fn show(&self, notify: &Notify, summary: Option<&Summary>) {
        let mut read = [0; 3];
        let mut each = Vec::new();
        for (i, slot) in lock(&self.slots).iter().enumerate() {
            read[0] += slot.events;
            read[1] += slot.late;
            read[2] += slot.malformed;
            if let Some(engines) = &slot.engines {
                each.push((self.workers.start + i, engines.clone()));
            }
        }
        let workers = Workers::new(self.patterns.clone(), each);
        let records: Vec<(Kind, String)> = match &self.tap {
            Some(tap) => {
                let mut tap = lock(tap);
                let records = tap.records().to_vec();
                tap.shown();
                records
            }
            None => Vec::new(),
        };
        let lag = self.consumer_lag();
        let mut view = RunView::of_workers(&workers);
        [view.events_read, view.late, view.malformed] = read;
        if let Some(summary) = summary.filter(|s| !self.processes && !s.uncounted) {
            (view.events_read, view.late, view.malformed) =
                (summary.events, summary.late, summary.malformed);
        }
        view.records = &records;
        view.source_lag = self.source_lag();
        if let Some(lag) = &lag {
            view.consumer_lag = Some(lag.iter().map(|l| l.records).sum());
            view.split_lag = lag;
        }
        if let Some(fields) = self.fields.get() {
            view.field_warnings = fields.told();
        }
        view.rules_waiting = *lock(&self.rules_waiting);
        let history = (self.history.get()).map(|h| lock(h).as_slice().to_vec());
        view.rule_changes = history.as_deref().unwrap_or_default();
        view.finished = summary.is_some();
        notify.tick(&view);
    }
}

/// The thread that shows a [`Board`] to the run's report while the run's
/// workers run.
pub(crate) struct Observing {
    board: Arc<Board>,
    notify: Notify,
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Observing {
    /// Starts showing `board` to `notify`'s report every [`PUBLISH_EVERY`].
    pub(crate) fn start(board: Arc<Board>, notify: Notify) -> Observing {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let (board, notify, stop) = (Arc::clone(&board), notify.clone(), Arc::clone(&stop));
            move || loop {
                thread::park_timeout(PUBLISH_EVERY);
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                board.show(&notify, None);
            }
        });
        Observing {
            board,
            notify,
            thread,
            stop,
        }
    }

    /// Stops it, then shows the run's end: every worker published its
    /// numbers at its end (this process's own; the other processes show
    /// theirs, and on one process the summary's counts are the view's).
    pub(crate) fn end(self, summary: &Summary) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
        self.board.show(&self.notify, Some(summary));
    }
}

/// The path of a followed file, whose lag an observed run shows.
pub(crate) fn followed(config: &crate::Config) -> Option<&Path> {
    match (&config.input, config.follow) {
        (crate::Input::File(path), true) => Some(path),
        _ => None,
    }
}
