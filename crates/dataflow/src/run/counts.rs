//! What a worker counts and sends to worker 0 ([`Chunk`], [`Counts`],
//! [`ReadCounts`]), and the end of the run: worker 0's [`finish`], the
//! run's [`Summary`] over every worker's counts.

use super::*;

/// What workers send to worker 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Chunk {
    /// Records (matches and timeouts, or late ones: each with its kind).
    Records(Block),
    /// A worker's counts, at the end (boxed: they are large, the blocks of
    /// records many).
    Summary(Box<Counts>),
}

/// A worker's counts (worker 0's include the sources' events and late
/// events).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Counts {
    pub(super) events: u64,
    pub(super) late: u64,
    pub(super) matches: u64,
    pub(super) timeouts: u64,
    pub(super) unusable_keys: u64,
    pub(super) dropped_runs: u64,
    pub(super) dropped_keys: u64,
    /// Did more keys go over the limit than a worker remembers
    /// (`MAX_DROP_KEYS`)?
    pub(super) dropped_keys_overflow: bool,
    pub(super) capped_runs: u64,
    pub(super) forced: u64,
    pub(super) waiting: u64,
    pub(super) malformed: u64,
    /// Changes of rules made (worker 0), refused (by the readers and
    /// worker 0), and partial matches they discarded.
    pub(super) reloads: u64,
    pub(super) reloads_refused: u64,
    /// Records of a source's rules stream read after event time passed
    /// theirs (applied at once).
    pub(super) reloads_late: u64,
    pub(super) discarded: u64,
    /// The first read error of the worker's part (its input, and why).
    pub(super) read_error: Option<(String, String)>,
    /// The malformed line that stopped the worker's part with `strict`.
    pub(super) strict_stop: Option<Strict>,
    /// Each pattern's counts (the plan's order).
    pub(super) patterns: Vec<PatternStats>,
    /// What the worker's reader saw of the patterns' fields (merged over
    /// the workers: process 0 says at the end what none carried).
    pub(super) fields: Option<FieldsSeen>,
}

impl Counts {
    pub(super) fn add(&mut self, other: &Counts) {
        self.events += other.events;
        self.late += other.late;
        self.matches += other.matches;
        self.timeouts += other.timeouts;
        self.unusable_keys += other.unusable_keys;
        self.dropped_runs += other.dropped_runs;
        self.dropped_keys += other.dropped_keys;
        self.dropped_keys_overflow |= other.dropped_keys_overflow;
        self.capped_runs += other.capped_runs;
        self.forced += other.forced;
        self.waiting += other.waiting;
        self.malformed += other.malformed;
        self.reloads += other.reloads;
        self.reloads_refused += other.reloads_refused;
        self.reloads_late += other.reloads_late;
        self.discarded += other.discarded;
        if self.read_error.is_none() {
            self.read_error.clone_from(&other.read_error);
        }
        if self.strict_stop.is_none() {
            self.strict_stop.clone_from(&other.strict_stop);
        }
        add_patterns(&mut self.patterns, &other.patterns);
        match (&mut self.fields, &other.fields) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.fields = Some(theirs.clone()),
            (_, None) => {}
        }
    }
}

/// The malformed line that stopped a worker's part with `strict`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Strict {
    /// A line of a file: its input, its line, why.
    Line(String, u64, String),
    /// A record of a source: its place, why.
    Record(String, String),
}

/// What a worker's reader found besides events (shared with the reader
/// thread of live input).
#[derive(Default)]
pub(super) struct ReadCounts {
    /// Events read by the live input's reader (a file's parts count
    /// theirs in [`PartItems::events`]).
    pub(super) events: AtomicU64,
    pub(super) malformed: AtomicU64,
    /// The first read error: the input and why.
    pub(super) read_error: Mutex<Option<(String, String)>>,
    /// The malformed line that stopped the input with `strict`.
    pub(super) strict_stop: Mutex<Option<Strict>>,
    /// More keys over `--max-runs-per-key` than the worker remembers.
    pub(super) drops_overflow: AtomicBool,
    /// Rules records refused by the worker's readers, and records of a
    /// source's rules stream read late.
    pub(super) reloads_refused: AtomicU64,
    pub(super) reloads_late: AtomicU64,
}

impl ReadCounts {
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
/// process 0, with every worker's counts); says what the single run says
/// as it happens (forced watermarks). An output that failed (said when it
/// happened) or could not be flushed ends the run as on one engine
/// ([`Output::end`]).
pub(super) fn finish(
    config: &Config,
    scale: &Scale,
    out: &mut Output,
    counts: Counts,
    stopped: Option<String>,
    started: Instant,
    say: &Say,
) -> Summary {
    let end = if let Some(why) = stopped {
        End::Stopped(why)
    } else if let Some((path, why)) = counts.read_error {
        End::Incomplete(cepheid_runtime::Error::Io {
            doing: cepheid_runtime::Doing::Read,
            path,
            source: io::Error::other(why),
        })
    } else if let Some(strict) = counts.strict_stop {
        let malformed = |why| cepheid_engine::Error::new(ErrorKind::Input, why);
        End::Incomplete(match strict {
            Strict::Line(origin, line, why) => cepheid_runtime::Error::Malformed {
                origin,
                line,
                source: malformed(why),
            },
            Strict::Record(place, why) => cepheid_runtime::Error::MalformedRecord {
                place,
                source: malformed(why),
            },
        })
    } else {
        End::Input
    };
    let (end, flushed) = out.end(end);
    let output_failed = matches!(
        end,
        End::OutputClosed | End::Failed(cepheid_runtime::Error::Sink(_))
    );
    if counts.forced > 0 && !output_failed {
        // The single run says it when it happens; here the sources count it.
        say!(
            say,
            Warning,
            "cepheid: more than {} events waited for the watermark; it moved up to the earliest of them (`Config::max_waiting`; raise it to let more wait)",
            config.max_waiting
        );
    }
    Summary {
        events: counts.events,
        malformed: counts.malformed,
        late: counts.late,
        matches: counts.matches,
        timeouts: counts.timeouts,
        unusable_keys: counts.unusable_keys,
        dropped_runs: counts.dropped_runs.saturating_sub(counts.capped_runs),
        dropped_keys: usize::try_from(counts.dropped_keys).unwrap_or(usize::MAX),
        dropped_keys_overflow: counts.dropped_keys_overflow,
        capped_runs: counts.capped_runs,
        forced_watermarks: counts.forced,
        waiting: usize::try_from(counts.waiting).unwrap_or(usize::MAX),
        reloads: counts.reloads,
        reloads_refused: counts.reloads_refused,
        reloads_late: counts.reloads_late,
        discarded_runs: counts.discarded,
        flushed,
        layout: Some(SummaryLayout {
            processes: scale.processes,
            workers: scale.workers,
        }),
        patterns: counts.patterns,
        elapsed: started.elapsed(),
        end,
        ..Summary::default()
    }
}

/// `1 worker`, `2 workers`: a count with its noun.
pub(super) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
