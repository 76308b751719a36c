//! What a run counts ([`Counts`]): one engine's, or each worker's of a
//! [`Cluster`](crate::Cluster), added up over them; made the run's
//! [`Summary`] in one place for both executors ([`Counts::summary`]),
//! and the end of a cluster's run (`on_workers_ended`), as one engine's.

use std::time::Duration;

use cepheid_decode::FieldsSeen;
use cepheid_engine::engine::{LeftOutParts, Stats};
use cepheid_engine::{ErrorKind, PatternStats};
use serde::{Deserialize, Serialize};

use crate::executor::Ended;
use crate::{
    add_patterns, Doing, End, Error, IndicatorCounts, Layout, Level, ListCounts, Notice, Summary,
};

/// What a run counted: one engine's, or a worker's (sent to the worker
/// that makes the summary, and added up there: [`Counts::add`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Events read (late ones included).
    pub events: u64,
    /// Late events.
    pub late: u64,
    /// Matches.
    pub matches: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Events skipped by a pattern for an unusable key.
    pub unusable_keys: u64,
    /// Partial matches dropped (both limits: `capped_runs` are the
    /// `max_live_runs` ones).
    pub dropped_runs: u64,
    /// Keys whose partial matches `max_runs_per_key` dropped (remembered
    /// up to a bound).
    pub dropped_keys: u64,
    /// Did more keys than that reach the limit?
    pub dropped_keys_overflow: bool,
    /// Partial matches dropped over `max_live_runs`.
    pub capped_runs: u64,
    /// Watermarks moved over `max_waiting`.
    pub forced: u64,
    /// Events still waiting for the watermark.
    pub waiting: u64,
    /// Malformed lines.
    pub malformed: u64,
    /// Changes of rules made, refused, and read late (records of a
    /// source's rules stream read after event time passed theirs).
    pub reloads: u64,
    /// (see `reloads`)
    pub reloads_refused: u64,
    /// (see `reloads`)
    pub reloads_late: u64,
    /// Reference files read again and not applied (empty, binary, or
    /// giving no entry where they had some: `lists::Refreshed`).
    pub lists_not_applied: u64,
    /// Partial matches the changes of rules discarded.
    pub discarded: u64,
    /// Did the input carry `$watermark` lines?
    pub punctuated: bool,
    /// The first read error of a part of the input: the input, and why.
    pub read_error: Option<(String, String)>,
    /// The malformed line that stopped a part of the input with
    /// `Config::strict`.
    pub strict_stop: Option<Strict>,
    /// Each pattern's counts.
    pub patterns: Vec<PatternStats>,
    /// What the readers saw of the patterns' fields.
    pub fields: Option<FieldsSeen>,
    /// What the limits and values of the lists and indicators left out,
    /// when the rules declare a list or an indicator (`None`: neither).
    pub memory: Option<MemoryCounts>,
    /// The least and the largest event time of the events read (late ones
    /// included; `None`: none read, or processing time). Always written
    /// when the counts cross processes (their format has no field names:
    /// no field may be left out there).
    pub event_time: Option<(i64, i64)>,
}

/// What the lists and indicators of a run left out ([`Counts::memory`]):
/// the adds its lists refused and the events its indicators left out, at
/// their limits or for their values, gathered over the engines as one
/// engine counts them ([`LeftOutParts`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MemoryCounts {
    /// Do the rules declare a list?
    pub lists: bool,
    /// Do the rules declare an indicator?
    pub indicators: bool,
    /// What was left out, by list and indicator.
    pub left_out: LeftOutParts,
}

impl MemoryCounts {
    /// The counts of an engine's lists and indicators (`numbers`:
    /// [`MemoryNumbers::of`](crate::MemoryNumbers::of), or several
    /// engines' added up); `None` when the rules declare neither and
    /// nothing was left out (by rules a change replaced).
    pub fn of(numbers: &crate::MemoryNumbers) -> Option<MemoryCounts> {
        let left_out = numbers.left_out.whole();
        let lists = !numbers.lists.is_empty() || !left_out.lists.is_empty();
        let indicators = numbers.indicators > 0 || !left_out.indicators.is_empty();
        (lists || indicators).then(|| MemoryCounts {
            lists,
            indicators,
            left_out: numbers.left_out.clone(),
        })
    }

    /// Adds `other`'s (other engines of the same run).
    pub fn add(&mut self, other: &MemoryCounts) {
        self.lists |= other.lists;
        self.indicators |= other.indicators;
        self.left_out.merge(&other.left_out);
    }
}

/// The malformed line that stopped a part of the input with
/// `Config::strict`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Strict {
    /// A line of a file: its input, its line, why.
    Line(String, u64, String),
    /// A record of a source: its place, why.
    Record(String, String),
}

impl Counts {
    /// The counts an engine keeps itself (`stats`, and the events still
    /// `waiting`); the rest are the run's, 0.
    pub fn of_engine(stats: &Stats, waiting: usize) -> Counts {
        Counts {
            events: stats.events,
            late: stats.late,
            matches: stats.matches,
            timeouts: stats.timeouts,
            unusable_keys: stats.unusable_keys,
            dropped_runs: stats.dropped_runs,
            capped_runs: stats.capped_runs,
            forced: stats.forced_watermarks,
            waiting: waiting as u64,
            discarded: stats.discarded_runs,
            ..Counts::default()
        }
    }

    /// Counts what the lists and indicators of the engines `numbers`
    /// describe left out ([`Counts::memory`]).
    pub fn memory_of(&mut self, numbers: &crate::MemoryNumbers) {
        self.memory = MemoryCounts::of(numbers);
    }

    /// Adds `other`'s (the first read error and strict stop kept).
    pub fn add(&mut self, other: &Counts) {
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
        self.lists_not_applied += other.lists_not_applied;
        self.discarded += other.discarded;
        self.punctuated |= other.punctuated;
        if self.read_error.is_none() {
            self.read_error.clone_from(&other.read_error);
        }
        if self.strict_stop.is_none() {
            self.strict_stop.clone_from(&other.strict_stop);
        }
        self.event_time = widen_span(self.event_time, other.event_time);
        add_patterns(&mut self.patterns, &other.patterns);
        match (&mut self.fields, &other.fields) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.fields = Some(theirs.clone()),
            (_, None) => {}
        }
        match (&mut self.memory, &other.memory) {
            (Some(mine), Some(theirs)) => mine.add(theirs),
            (None, Some(theirs)) => self.memory = Some(theirs.clone()),
            (_, None) => {}
        }
    }

    /// How a run over parts of its input ended: at a part's read error
    /// (which stops the others as a signal does), else `stopped` (why),
    /// else at its end with a part not read whole (its malformed line
    /// with `Config::strict`), else at its end.
    pub fn end(&self, stopped: Option<String>) -> End {
        // (a read error first: it stops the other readers as a signal
        // does, and the run ended because of it)
        if let Some((path, why)) = &self.read_error {
            return End::Incomplete(Error::Io {
                doing: Doing::Read,
                path: path.clone(),
                source: std::io::Error::other(why.clone()),
            });
        }
        if let Some(why) = stopped {
            return End::Stopped(why);
        }
        let malformed = |why: &str| cepheid_engine::Error::new(ErrorKind::Input, why);
        match &self.strict_stop {
            Some(Strict::Line(origin, line, why)) => End::Incomplete(Error::Malformed {
                origin: origin.clone(),
                line: *line,
                source: malformed(why),
            }),
            Some(Strict::Record(place, why)) => End::Incomplete(Error::MalformedRecord {
                place: place.clone(),
                source: malformed(why),
            }),
            None => End::Input,
        }
    }

    /// The run's summary: how it `end`ed, whether the outputs were
    /// `flushed`, how long it took, where it ran (`layout`: on workers).
    pub fn summary(
        self,
        (end, flushed): (End, bool),
        elapsed: Duration,
        layout: Option<Layout>,
    ) -> Summary {
        let left_out = (self.memory.as_ref()).map(|m| m.left_out.whole());
        let [adds_refused, values_refused, entries_refused, not_numeric] =
            left_out.as_ref().map_or([0; 4], |l| l.totals());
        let memory = self.memory.as_ref();
        Summary {
            lists: memory.filter(|m| m.lists).map(|_| ListCounts {
                adds_refused,
                values_refused,
            }),
            indicators: memory.filter(|m| m.indicators).map(|_| IndicatorCounts {
                entries_refused,
                not_numeric,
            }),
            left_out: left_out.unwrap_or_default(),
            events: self.events,
            malformed: self.malformed,
            late: self.late,
            matches: self.matches,
            timeouts: self.timeouts,
            unusable_keys: self.unusable_keys,
            dropped_runs: self.dropped_runs.saturating_sub(self.capped_runs),
            dropped_keys: usize::try_from(self.dropped_keys).unwrap_or(usize::MAX),
            dropped_keys_overflow: self.dropped_keys_overflow,
            capped_runs: self.capped_runs,
            forced_watermarks: self.forced,
            reloads: self.reloads,
            reloads_refused: self.reloads_refused,
            reloads_late: self.reloads_late,
            lists_not_applied: self.lists_not_applied,
            discarded_runs: self.discarded,
            waiting: usize::try_from(self.waiting).unwrap_or(usize::MAX),
            punctuated: self.punctuated,
            elapsed,
            flushed,
            patterns: self.patterns,
            layout,
            end,
            uncounted: false,
            event_time: self.event_time,
        }
    }
}

/// What a run says once its engines forced the watermark up because more
/// than `max_waiting` events waited for it ([`Config::max_waiting`]): one
/// engine as it happens, a cluster's at its end ([`said_at_end`]).
///
/// [`Config::max_waiting`]: crate::Config::max_waiting
pub(crate) fn waited_for_watermark(max_waiting: usize) -> String {
    format!(
        "cepheid: more than {max_waiting} events waited for the watermark; it moved up to the earliest of them (`Config::max_waiting`; raise it to let more wait)"
    )
}

/// What the end of a cluster's run says of the workers' counts, added up
/// in `summary` (the process that counts the run; one whose output failed
/// said that instead): the watermark forced up, which its workers' sources
/// count rather than say as it happens.
pub(crate) fn said_at_end(summary: &Summary, max_waiting: usize) -> Option<Notice> {
    let output_failed = matches!(summary.end, End::OutputClosed | End::Failed(Error::Sink(_)));
    (!summary.uncounted && summary.forced_watermarks > 0 && !output_failed)
        .then(|| Notice::line(Level::Warning, waited_for_watermark(max_waiting)))
}

/// The end of a cluster's run (`started` then), as one engine's ends
/// (`Single::run`): what the workers counted, added up; at the end of the
/// input, what no reader saw of the patterns' fields said (and kept in
/// the last cut of `checkpoint`, the run's folder); the counts made the
/// run's summary after the `output` (process 0's, the workers wrote to)
/// is flushed; the workers that failed said; the first error said while
/// it ran, else the first worker's that failed, the summary's end, as one
/// engine's first error is. A process that counts nothing (another than process 0, or
/// one whose worker 0 failed) gives a summary that says so
/// ([`Summary::uncounted`]).
pub(crate) fn on_workers_ended(
    ended: Ended,
    output: Option<&std::sync::Mutex<crate::Output>>,
    checkpoint: Option<&std::path::Path>,
    started: std::time::Instant,
    notify: &crate::Notify,
) -> Summary {
    let Ended {
        layout,
        counts,
        stopped,
        failed,
        said,
        source_failed,
        read_failed,
        fields,
        last_cut,
    } = ended;
    let mut summary = match (counts, output) {
        (Some(each), Some(output)) => {
            let mut counts = Counts::default();
            for worker in &each {
                counts.add(worker);
            }
            let lock = || output.lock().unwrap_or_else(|e| e.into_inner());
            // (an output that failed stopped the input, as it stops one
            // engine's: its error is the end)
            let output_failed = lock().failed();
            if let (Some(fields), None, false) = (&fields, &stopped, output_failed) {
                fields_at_end(fields, &counts, checkpoint, last_cut, notify);
            }
            let end = counts.end(stopped);
            let ended = lock().end(end);
            counts.summary(ended, started.elapsed(), Some(layout))
        }
        _ => Summary {
            end: stopped.map_or(End::Input, End::Stopped),
            uncounted: true,
            layout: Some(layout),
            ..Summary::default()
        },
    };
    for e in &failed {
        notify.say(Level::Error, format!("error: {e}"));
    }
    // (a source that could not go on from its cut: the part it did not
    // read is its error, as one engine's refusal to seek is; another
    // process than 0's too, which counts nothing, and exited 0)
    match (source_failed, &summary.end) {
        (Some(e), End::Incomplete(_)) => summary.end = End::Failed(e),
        (Some(e), End::Input | End::Stopped(_)) if summary.uncounted => {
            summary.end = End::Failed(e);
        }
        _ => {}
    }
    // (another process than 0 counts nothing: a read error of its own
    // readers is its end, which its exit status says)
    match (read_failed, &summary.end) {
        (Some(e), End::Input | End::Stopped(_)) if summary.uncounted => {
            summary.end = End::Incomplete(e);
        }
        // (process 0's own reader's error as its source gave it, not its
        // text: a Kafka source's exit status)
        (Some(e @ Error::Source(_)), End::Incomplete(_)) => {
            summary.end = End::Incomplete(e);
        }
        _ => {}
    }
    let said = said.or(failed.into_iter().next());
    if let (Some(e), End::Input | End::Stopped(_) | End::OutputClosed) = (said, &summary.end) {
        summary.end = End::Failed(e);
    }
    summary
}

/// The end of the input of a cluster's run: what no reader of any process
/// saw of the patterns' fields (their views came with the `counts`) said,
/// and kept by the run's last cut (`last_cut` in `checkpoint`) as one
/// engine's last checkpoint, taken after them, keeps them.
fn fields_at_end(
    fields: &crate::source::FieldWarnings,
    counts: &Counts,
    checkpoint: Option<&std::path::Path>,
    last_cut: u64,
    notify: &crate::Notify,
) {
    fields.at_end(counts.fields.as_ref(), &mut |n| notify.notice(n));
    let Some(dir) = checkpoint.filter(|_| last_cut > 0) else {
        return;
    };
    if let Err(e) = crate::checkpoint::keep_end_warnings(dir, last_cut, fields) {
        notify.say(
            Level::Warning,
            format!(
                "warning: checkpoint {last_cut} in {} could not keep the field warnings said at the end ({e}): a run resumed from it says them again",
                dir.display()
            ),
        );
    }
}

/// The span of times covering both `a` and `b` (`None`: no time).
pub(crate) fn widen_span(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts added up span the times of both (a worker that read no
    /// event takes nothing from the span).
    #[test]
    fn added_counts_span_both_times() {
        let mut all = Counts::default();
        all.add(&Counts::default());
        assert_eq!(all.event_time, None);
        let of = |span| Counts {
            event_time: span,
            ..Counts::default()
        };
        all.add(&of(Some((5, 9))));
        all.add(&of(None));
        all.add(&of(Some((-3, 7))));
        assert_eq!(all.event_time, Some((-3, 9)));
        all.add(&of(Some((0, 12))));
        assert_eq!(all.event_time, Some((-3, 12)));
        let summary = all.summary((End::Input, true), Duration::ZERO, None);
        assert_eq!(summary.event_time, Some((-3, 12)));
    }
}
