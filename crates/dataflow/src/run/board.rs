//! The numbers a run that is observed shows (`--stats-every`, `--metrics`):
//! what each worker publishes now and then to the [`Board`], and the
//! observer thread that shows their sum to the run's report.

use super::*;

/// How often each worker publishes its numbers to the [`Board`] (when
/// the report observes the run), and how often the observer thread shows
/// them to the report ([`Report::tick`]).
pub(super) const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How often a worker measures the bytes of its state, at most (a walk
/// over it).
pub(super) const STATE_EVERY: Duration = Duration::from_secs(1);

/// What each worker of this process last published (a run whose report
/// observes it: `--stats-every`, `--metrics`): at most every
/// [`PUBLISH_EVERY`] after a batch of work, and at its end, under one
/// mutex (nothing per event); read by the observer thread, which shows
/// their sum to the report.
pub(super) struct Board {
    /// The index of this process's first worker.
    first: usize,
    /// Each worker of the process, by its index in the process.
    slots: Mutex<Vec<Published>>,
    /// The latest output records of the process's workers, when the
    /// report wants some ([`Report::records_wanted`]).
    pub(super) tap: Option<Arc<Mutex<Tap>>>,
    /// A followed file's one reader (worker 0 of process 0): the offset in
    /// the file after its last batch handed to the source;
    /// [`Board::NOT_READ`] in every other process, and before it starts.
    read_to: AtomicU64,
    /// The consumer lag of the library user's sources
    /// ([`Workers::with_sources`]): by the worker's index in the process,
    /// whether it reads a source, and its lag per split as its reader
    /// thread last said it (`Heard::Lag`, at most once a second).
    lags: Mutex<Vec<(bool, Option<Vec<SplitLag>>)>>,
    /// Warnings about fields no event carried (for their count).
    fields: Option<Arc<Fields>>,
}

/// A worker's numbers as it last published them.
#[derive(Clone, Debug, Default)]
pub(super) struct Published {
    pub(super) engines: Option<EngineNumbers>,
    /// Events its source read (late ones included), late events,
    /// malformed lines.
    pub(super) events: u64,
    pub(super) late: u64,
    pub(super) malformed: u64,
}

impl Board {
    /// [`Board::read_to`] before the reader says where it is.
    const NOT_READ: u64 = u64::MAX;

    /// The board of this process's workers; `readers` says which of them
    /// read a source of the library's user (none: they read a file or
    /// live input).
    pub(super) fn new(
        scale: &Scale,
        records_wanted: usize,
        readers: &[bool],
        fields: Option<Arc<Fields>>,
    ) -> Board {
        Board {
            first: scale.own_workers().start,
            slots: Mutex::new(vec![Published::default(); scale.workers]),
            tap: (records_wanted > 0).then(|| Arc::new(Mutex::new(Tap::new(records_wanted)))),
            read_to: AtomicU64::new(Board::NOT_READ),
            lags: Mutex::new(readers.iter().map(|&r| (r, None)).collect()),
            fields,
        }
    }

    /// The source of worker `local` (its index in the process) is `lag`
    /// records behind its splits' ends.
    pub(super) fn lag(&self, local: usize, lag: Vec<SplitLag>) {
        let mut lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, slot)) = lags.get_mut(local) {
            *slot = Some(lag);
        }
    }

    /// The consumer lag of the process's sources, every split of each
    /// (by stream and number): `None` until every worker that reads one
    /// has said its own (a sum of some would say less than is behind),
    /// and on runs without sources.
    pub(super) fn consumer_lag(&self) -> Option<Vec<SplitLag>> {
        let lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Shows the sources' lag and the fields' warnings in `view`.
    pub(super) fn show<'a>(&self, view: &mut RunView<'a>, lag: &'a Option<Vec<SplitLag>>) {
        if let Some(lag) = lag {
            view.consumer_lag = Some(lag.iter().map(|l| l.records).sum());
            view.split_lag = lag;
        }
        if let Some(fields) = &self.fields {
            view.field_warnings = fields.told();
        }
    }

    /// The output records tapped since the last look (for
    /// [`RunView::records`]).
    pub(super) fn records(&self) -> Vec<(cepheid_runtime::Kind, String)> {
        let Some(tap) = &self.tap else {
            return Vec::new();
        };
        let mut tap = lock(tap);
        let records = tap.records().to_vec();
        tap.shown();
        records
    }

    /// The followed file's reader is at `offset` of the file (named
    /// `--events` now: its offsets start anew at a rotation).
    pub(super) fn read_to(&self, offset: u64) {
        self.read_to.store(offset, Ordering::Relaxed);
    }

    /// Bytes of the followed file `path` after its reader's place: its
    /// length now less the offset (as the single run's
    /// `cepheid_source_lag_bytes`); `None` without `path` (not followed)
    /// or in a process that does not read it.
    pub(super) fn source_lag(&self, path: Option<&Path>) -> Option<u64> {
        let at = self.read_to.load(Ordering::Relaxed);
        if at == Board::NOT_READ {
            return None;
        }
        let len = std::fs::metadata(path?).ok()?.len();
        Some(len.saturating_sub(at))
    }

    /// Worker `index` (over all processes) publishes.
    pub(super) fn publish(&self, index: usize, published: Published) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(index - self.first) {
            *slot = published;
        }
    }

    /// The sum of what the workers published: their engines' numbers
    /// (each worker's own too), events read, late, malformed.
    pub(super) fn gather(&self, patterns: &[Pattern]) -> (cepheid_runtime::Workers, [u64; 3]) {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut read = [0; 3];
        let mut each = Vec::with_capacity(slots.len());
        for (i, slot) in slots.iter().enumerate() {
            read[0] += slot.events;
            read[1] += slot.late;
            read[2] += slot.malformed;
            if let Some(engines) = &slot.engines {
                each.push((self.first + i, engines.clone()));
            }
        }
        (cepheid_runtime::Workers::new(patterns.to_vec(), each), read)
    }
}

/// Shows the board's sum to the run's report every [`PUBLISH_EVERY`] on a
/// thread of its own, until `stop`.
pub(super) fn observe(
    board: Arc<Board>,
    patterns: Vec<Pattern>,
    followed: Option<PathBuf>,
    say: Say,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    thread::spawn(move || loop {
        thread::park_timeout(PUBLISH_EVERY);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (workers, [events, late, malformed]) = board.gather(&patterns);
        let records = board.records();
        let lag = board.consumer_lag();
        let mut view = RunView::of_workers(&workers);
        view.events_read = events;
        view.late = late;
        view.malformed = malformed;
        view.records = &records;
        view.source_lag = board.source_lag(followed.as_deref());
        board.show(&mut view, &lag);
        say.report().tick(&view);
    })
}
