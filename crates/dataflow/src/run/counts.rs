//! What a worker sends to worker 0 ([`Chunk`]) and its reader counts
//! ([`ReadCounts`]), and the end of the run: worker 0's [`finish`], the
//! run's [`Summary`] over every worker's [`Counts`].

use super::*;
use cepheid_runtime::{Counts, Strict};
use std::sync::atomic::AtomicI64;

/// What workers send to worker 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Chunk {
    /// Records (matches and timeouts, or late ones: each with its kind).
    Records(Block),
    /// A worker's counts, at the end (boxed: they are large, the blocks of
    /// records many).
    Summary(Box<Counts>),
    /// The decisions of the worker's engines' parts, to be gathered by
    /// worker 0 (`decisions.rs`).
    Parts(Vec<cepheid_engine::Decision>),
    /// Late events, decided by worker 0 (`decisions.rs`).
    Late(Vec<crate::Stamped<Record>>),
}

/// What a worker's reader found besides events (shared with the reader
/// thread of live input).
pub(super) struct ReadCounts {
    /// Events read by the live input's reader (a file's parts count
    /// theirs in [`PartItems::events`]).
    pub(super) events: AtomicU64,
    pub(super) malformed: AtomicU64,
    /// The first read error: the input and why.
    pub(super) read_error: Mutex<Option<(String, String)>>,
    /// A source's read error as it gave it (a Kafka source's: its exit
    /// status), taken by the reader for the process's end.
    pub(super) source_error: Mutex<Option<cepheid_runtime::Error>>,
    /// The malformed line that stopped the input with `strict`.
    pub(super) strict_stop: Mutex<Option<Strict>>,
    /// More keys over `--max-runs-per-key` than the worker remembers.
    pub(super) drops_overflow: AtomicBool,
    /// Rules records refused by the worker's readers, and records of a
    /// source's rules stream read late.
    pub(super) reloads_refused: AtomicU64,
    pub(super) reloads_late: AtomicU64,
    /// The least and the largest time of the events read
    /// (`Counts::event_time`; `i64::MAX` and `i64::MIN` while none was).
    pub(super) least_time: AtomicI64,
    pub(super) largest_time: AtomicI64,
}

impl Default for ReadCounts {
    fn default() -> ReadCounts {
        ReadCounts {
            events: AtomicU64::default(),
            malformed: AtomicU64::default(),
            read_error: Mutex::default(),
            source_error: Mutex::default(),
            strict_stop: Mutex::default(),
            drops_overflow: AtomicBool::default(),
            reloads_refused: AtomicU64::default(),
            reloads_late: AtomicU64::default(),
            least_time: AtomicI64::new(i64::MAX),
            largest_time: AtomicI64::new(i64::MIN),
        }
    }
}

impl ReadCounts {
    /// An event of time `ts` was read. (Loads first: the span rarely
    /// widens, and a load costs less than a read-modify-write.)
    #[inline]
    pub(super) fn event_at(&self, ts: Timestamp) {
        if ts < self.least_time.load(Ordering::Relaxed) {
            self.least_time.fetch_min(ts, Ordering::Relaxed);
        }
        if ts > self.largest_time.load(Ordering::Relaxed) {
            self.largest_time.fetch_max(ts, Ordering::Relaxed);
        }
    }

    /// The least and the largest time of the events read, if any was.
    pub(super) fn event_time(&self) -> Option<(Timestamp, Timestamp)> {
        let least = self.least_time.load(Ordering::Relaxed);
        let largest = self.largest_time.load(Ordering::Relaxed);
        (least <= largest).then_some((least, largest))
    }

    pub(super) fn malformed_line(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// A read error on `origin`.
    pub(super) fn read_error(&self, origin: &str, why: impl fmt::Display) {
        let mut first = self.read_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| (origin.to_string(), why.to_string()));
    }

    /// The input ended on `error` (the runtime's policy: a read error, or
    /// a malformed line with `strict`).
    pub(super) fn ended(&self, error: cepheid_runtime::Error) {
        let strict = match error {
            cepheid_runtime::Error::Io { path, source, .. } => {
                return self.read_error(&path, source);
            }
            cepheid_runtime::Error::Source(e) => {
                self.read_error(&e.source_name, &e.error);
                let mut typed = self.source_error.lock().unwrap_or_else(|e| e.into_inner());
                typed.get_or_insert(cepheid_runtime::Error::Source(e));
                return;
            }
            cepheid_runtime::Error::Malformed {
                origin,
                line,
                source,
            } => Strict::Line(origin, line, source.message().to_string()),
            cepheid_runtime::Error::MalformedRecord { place, source } => {
                Strict::Record(place, source.message().to_string())
            }
            _ => return,
        };
        let mut first = self.strict_stop.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(strict);
    }

    /// The read error for the process's end: the source's own, else one
    /// made of [`ReadCounts::read_error`]'s text.
    pub(super) fn take_read_error(&self) -> Option<cepheid_runtime::Error> {
        let typed = self
            .source_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        typed.or_else(|| {
            let (path, why) = self.read_error_now()?;
            Some(cepheid_runtime::Error::Io {
                doing: cepheid_runtime::Doing::Read,
                path,
                source: std::io::Error::other(why),
            })
        })
    }

    pub(super) fn read_error_now(&self) -> Option<(String, String)> {
        self.read_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn strict_stop_now(&self) -> Option<Strict> {
        self.strict_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Flushes the output and gives the run's [`Summary`] (worker 0 of
/// process 0, with every worker's counts). An output that failed (said
/// when it happened) or could not be flushed ends the run as on one
/// engine ([`Output::end`]); what the counts say (forced watermarks) the
/// runtime says at the end of the run, as one engine's.
pub(super) fn finish(
    scale: &Scale,
    out: &mut Output,
    counts: Counts,
    stopped: Option<String>,
    started: Instant,
) -> Summary {
    let ended = out.end(counts.end(stopped));
    let layout = SummaryLayout {
        processes: scale.processes,
        workers: scale.workers,
    };
    counts.summary(ended, started.elapsed(), Some(layout))
}
