//! The status model: what a run shows, as one serde value.
//!
//! The run fills a [`Status`] through a [`Monitor`](crate::Monitor) once
//! per batch or per second (never per event); the server reads it for
//! `/status.json`, `/metrics` and the page. Counts are totals since the
//! run started (counters); `live_runs`, `waiting_events`, lags and ages
//! are levels (gauges). Times are milliseconds since the Unix epoch
//! (`*_ms`), durations and ages seconds (`*_seconds`).

use std::collections::{BTreeMap, VecDeque};

use cepheid_engine::{PatternStats, Stats, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::MonitorError;

/// How much history a [`Status`] keeps: both bounded, whatever the run's
/// length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Records kept per pattern in [`PatternStatus::recent`] (the latest
    /// ones; 20 by default).
    pub recent_matches: usize,
    /// Samples kept in [`Series`] (one per second: 600, ten minutes, by
    /// default).
    pub samples: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            recent_matches: 20,
            samples: 600,
        }
    }
}

/// Everything the monitor shows: the run, each pattern, each worker, and
/// the recent history (a time series).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// When this value was read (wall clock, ms): the time the derived
    /// fields (lags, ages) were computed at.
    pub now_ms: i64,
    /// When the run last updated it (wall clock, ms), `None` before the
    /// first update.
    pub updated_ms: Option<i64>,
    /// The run as a whole.
    pub run: RunStatus,
    /// The patterns in force, in the engine's order.
    pub patterns: Vec<PatternStatus>,
    /// Per worker (`--workers`/`--processes`); empty for one engine.
    pub workers: Vec<WorkerStatus>,
    /// One sample per second of matches per pattern and watermark lag.
    pub series: Series,
    /// The bounds on [`recent`](PatternStatus::recent) and
    /// [`series`](Status::series).
    pub limits: Limits,
    /// Whether the records kept in [`recent`](PatternStatus::recent) leave
    /// out the matched events (`events`) and the values computed from them
    /// (`select`), keeping their pattern, kind, key and times (`cepheid
    /// run --metrics-no-events`): for a page others can reach. Set it
    /// before the first record comes.
    #[serde(default)]
    pub hide_events: bool,
    /// What the monitor's HTTP servers counted, when one serves it (read
    /// by [`Monitor::read`](crate::Monitor::read)).
    #[serde(default)]
    pub http: Option<HttpStatus>,
}

/// The monitor's HTTP servers: their limit and what it refused
/// ([`HttpLimits`](crate::HttpLimits)). Counts are totals since the first
/// server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HttpStatus {
    /// Connections held at once at most
    /// ([`HttpLimits::max_connections`](crate::HttpLimits::max_connections)).
    pub max_connections: u64,
    /// Connections held now (being answered or waiting for a handler).
    pub open_connections: u64,
    /// Connections taken.
    pub connections: u64,
    /// Connections refused (`503`) because `max_connections` were held.
    pub refused: u64,
    /// Requests whose head was longer than the limit (`431`).
    pub too_large: u64,
    /// Connections closed because no whole request came in time (idle
    /// ones included).
    pub timed_out: u64,
}

/// The run as a whole.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunStatus {
    /// When the run started (wall clock, ms).
    pub started_ms: Option<i64>,
    /// Whether the input ended and the run finished.
    pub finished: bool,
    /// Events read from the sources (malformed lines included).
    pub events_read: u64,
    /// Lines that could not be decoded.
    pub malformed: u64,
    /// Events that arrived behind the watermark (the late output).
    pub late: u64,
    /// Complete matches over all patterns.
    pub matches: u64,
    /// Timed-out partial matches over all patterns.
    pub timeouts: u64,
    /// Partial matches dropped by the limit per key or over all keys
    /// ([`Stats::dropped_runs`]).
    pub dropped_runs: u64,
    /// Of `dropped_runs`, those dropped by the limit over all keys
    /// ([`Stats::capped_runs`]).
    pub capped_runs: u64,
    /// Partial matches discarded by a change of rules
    /// ([`Stats::discarded_runs`]).
    pub discarded_runs: u64,
    /// Times the limit on waiting events forced the watermark up
    /// ([`Stats::forced_watermarks`]).
    pub forced_watermarks: u64,
    /// The current watermark (event time, ms), `None` before the first.
    pub watermark_ms: Option<Timestamp>,
    /// How far the watermark is behind the wall clock, in seconds
    /// (derived from `watermark_ms` and `now_ms` when read).
    pub watermark_lag_seconds: Option<f64>,
    /// Bytes behind the end of a followed file, `None` when the source has
    /// no end to be behind.
    pub source_lag_bytes: Option<u64>,
    /// Records behind the end of a source with offsets (a Kafka consumer's
    /// lag: the sum of `consumer_lag_partitions`), `None` for other
    /// sources and until the source knows it.
    pub consumer_lag: Option<u64>,
    /// The same per partition (topic, partition, records), in the
    /// source's order; empty when `consumer_lag` is `None`.
    #[serde(default)]
    pub consumer_lag_partitions: Vec<cepheid_runtime::SplitLag>,
    /// Partial matches held over all patterns and keys
    /// (`Engine::live_runs`).
    pub live_runs: u64,
    /// Events waiting for the watermark (`Engine::waiting_events`).
    pub waiting_events: u64,
    /// Events held by partial matches (`Engine::stored_events`).
    pub stored_events: u64,
    /// Bytes of state held, when the run knows it.
    pub state_bytes: Option<u64>,
    /// Warnings about fields that never occur.
    pub field_warnings: u64,
    /// The reference lists and rolling indicators the rules declare.
    #[serde(default)]
    pub memory: MemoryStatus,
    /// Checkpoints.
    pub checkpoint: CheckpointStatus,
    /// Changes of the rules.
    pub reloads: ReloadStatus,
}

/// The reference lists and rolling indicators of the run
/// (`Engine::memory_stats`, `Engine::list_sizes`; on workers the sum of
/// their engines'): empty when the rules declare none.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStatus {
    /// Each list the rules declare, with its entries now.
    pub lists: Vec<ListStatus>,
    /// Indicators the rules declare.
    pub indicators: u64,
    /// The counts, by their names (`list_entries`, `indicator_entries`,
    /// `indicator_groups`, `list_changes`, `late_changes`,
    /// `refused_entries`, `bad_entries`, `non_numeric`, `unkeyed`,
    /// `refused_events`, `shadow_entries`, `shadow_changes`:
    /// `MemoryStats`).
    #[serde(flatten)]
    pub counts: cepheid_engine::engine::MemoryStats,
}

/// One reference list.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ListStatus {
    /// Its name.
    pub name: String,
    /// Its entries now.
    pub entries: u64,
}

impl MemoryStatus {
    /// What `numbers` say.
    pub fn of(numbers: &cepheid_runtime::MemoryNumbers) -> MemoryStatus {
        MemoryStatus {
            lists: (numbers.lists.iter())
                .map(|(name, entries)| ListStatus {
                    name: name.clone(),
                    entries: *entries,
                })
                .collect(),
            indicators: numbers.indicators,
            counts: numbers.stats,
        }
    }
}

/// Checkpoints of the run (all zero and `None` without `--checkpoint`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckpointStatus {
    /// Checkpoints written.
    pub completed: u64,
    /// Checkpoints that failed.
    pub failures: u64,
    /// When the last one was written (wall clock, ms).
    pub last_ms: Option<i64>,
    /// How long writing the last one took, in seconds.
    pub last_duration_seconds: Option<f64>,
    /// The last one's size in bytes.
    pub last_size_bytes: Option<u64>,
    /// Seconds since the last one was written (derived when read).
    pub age_seconds: Option<f64>,
    /// The last failure's message, kept until a checkpoint succeeds.
    pub last_error: Option<String>,
}

impl CheckpointStatus {
    /// Records a checkpoint written at `at_ms` (wall clock) in
    /// `duration_seconds`, `size_bytes` long; clears `last_error`.
    pub fn completed(&mut self, at_ms: i64, duration_seconds: f64, size_bytes: u64) {
        self.completed += 1;
        self.last_ms = Some(at_ms);
        self.last_duration_seconds = Some(duration_seconds);
        self.last_size_bytes = Some(size_bytes);
        self.last_error = None;
    }

    /// Records a failed checkpoint and why.
    pub fn failed(&mut self, error: impl std::fmt::Display) {
        self.failures += 1;
        self.last_error = Some(error.to_string());
    }
}

/// Changes of the rules during the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReloadStatus {
    /// Changes applied.
    pub applied: u64,
    /// Changes refused (rules that did not load, or a change the policy
    /// refused); the run kept the rules in force.
    pub refused: u64,
    /// When the last change was applied or refused (wall clock, ms).
    pub last_ms: Option<i64>,
    /// Why the last change was refused, until one is applied.
    pub last_error: Option<String>,
    /// Records of a rules stream further ahead of event time than the
    /// run's bound when read (`Config::rules_max_ahead`): applied then,
    /// not at their time.
    #[serde(default)]
    pub ahead: u64,
    /// What was said of the last one.
    #[serde(default)]
    pub last_ahead: Option<String>,
    /// The records of a rules stream waiting for event time to reach them.
    #[serde(default)]
    pub waiting: Option<WaitingStatus>,
    /// The latest changes of rules applied or refused, oldest first, as
    /// their audit records (`cepheid_runtime::audit::RuleChange`, at most
    /// `cepheid_runtime::audit::HISTORY`; a resumed run's include those
    /// before its checkpoint: `docs/rule-lab.md`, "Audit records").
    #[serde(default)]
    pub history: Vec<cepheid_runtime::audit::RuleChange>,
}

/// Records of a rules stream waiting for event time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WaitingStatus {
    /// How many.
    pub records: u64,
    /// The event time (ms) at which the first applies.
    pub at_ms: i64,
}

impl WaitingStatus {
    /// `records` waiting, the first to apply at event time `at_ms`.
    pub fn new(records: u64, at_ms: i64) -> WaitingStatus {
        WaitingStatus { records, at_ms }
    }
}

impl ReloadStatus {
    /// Records a change applied at `at_ms` (wall clock); clears
    /// `last_error`.
    pub fn applied(&mut self, at_ms: i64) {
        self.applied += 1;
        self.last_ms = Some(at_ms);
        self.last_error = None;
    }

    /// Records a rules record applied ahead of its time, and what was
    /// said of it.
    pub fn ahead(&mut self, what: impl std::fmt::Display) {
        self.ahead += 1;
        self.last_ahead = Some(what.to_string().trim_end().to_string());
    }

    /// Records a change refused at `at_ms` (wall clock), and why.
    pub fn refused(&mut self, at_ms: i64, error: impl std::fmt::Display) {
        self.refused += 1;
        self.last_ms = Some(at_ms);
        self.last_error = Some(error.to_string());
    }
}

/// One pattern: the field names of the engine's per-pattern counts
/// (`PatternStats`), its automaton, and its latest records.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PatternStatus {
    /// The pattern's name.
    pub name: String,
    /// Its version: 1 when first added, +1 per replacement.
    pub version: u32,
    /// Is it a `shadow` pattern (its records go to the shadow output;
    /// `docs/rule-lab.md`)? In the JSON only when it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// Events that reached it (processed, with a usable key).
    pub events: u64,
    /// Complete matches.
    pub matches: u64,
    /// Timed-out partial matches.
    pub timeouts: u64,
    /// Partial matches it holds now, over all keys.
    pub live_runs: u64,
    /// Partial matches dropped by the limit per key or over all keys.
    pub dropped_runs: u64,
    /// Of `dropped_runs`, those dropped by the limit over all keys.
    pub capped_runs: u64,
    /// Partial matches discarded by a change of rules.
    pub discarded_runs: u64,
    /// Events that did not reach it: a `partition by` field missing.
    pub unkeyed: u64,
    /// Events that did not reach it: a `partition by` value that cannot be
    /// a key.
    pub unusable_keys: u64,
    /// Its automaton, to draw.
    pub graph: Option<Graph>,
    /// Its latest output records (the JSON lines `cepheid run` writes),
    /// oldest first, at most [`Limits::recent_matches`].
    pub recent: VecDeque<Box<RawValue>>,
}

impl PatternStatus {
    /// A pattern with this name, version 1, all counts zero.
    pub fn new(name: impl Into<String>) -> PatternStatus {
        PatternStatus {
            name: name.into(),
            version: 1,
            ..PatternStatus::default()
        }
    }

    /// Takes the engine's counts for this pattern
    /// ([`Engine::pattern_stats`](cepheid_engine::Engine::pattern_stats);
    /// the name is kept).
    pub fn set_counts(&mut self, counts: &PatternStats) {
        self.version = counts.version;
        self.shadow = counts.shadow;
        self.events = counts.events;
        self.matches = counts.matches;
        self.timeouts = counts.timeouts;
        self.live_runs = counts.live_runs;
        self.dropped_runs = counts.dropped_runs;
        self.capped_runs = counts.capped_runs;
        self.discarded_runs = counts.discarded_runs;
        self.unkeyed = counts.unkeyed;
        self.unusable_keys = counts.unusable_keys;
    }

    /// The pattern's name and counts, without its graph and records.
    pub(crate) fn counts_only(&self) -> PatternStatus {
        PatternStatus {
            name: self.name.clone(),
            version: self.version,
            shadow: self.shadow,
            events: self.events,
            matches: self.matches,
            timeouts: self.timeouts,
            live_runs: self.live_runs,
            dropped_runs: self.dropped_runs,
            capped_runs: self.capped_runs,
            discarded_runs: self.discarded_runs,
            unkeyed: self.unkeyed,
            unusable_keys: self.unusable_keys,
            graph: None,
            recent: VecDeque::new(),
        }
    }
}

/// One worker of `--workers`/`--processes`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerStatus {
    /// The worker's index (over all processes).
    pub id: usize,
    /// Events its engines processed.
    pub events: u64,
    /// Complete matches it found.
    pub matches: u64,
    /// Partial matches it holds.
    pub live_runs: u64,
    /// Its watermark (event time, ms).
    pub watermark_ms: Option<Timestamp>,
}

impl WorkerStatus {
    /// Worker `id`, all counts zero.
    pub fn new(id: usize) -> WorkerStatus {
        WorkerStatus {
            id,
            ..WorkerStatus::default()
        }
    }
}

/// An automaton as a graph: the JSON `cepheid explain --graph json`
/// prints for one pattern (`{"pattern", "start", "nodes": [{"id", "name",
/// "kind"}], "edges": [{"from", "to", "kind", "label"}]}`), which
/// deserializes into it as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    /// The pattern's name.
    #[serde(default)]
    pub pattern: String,
    /// The start state's id.
    pub start: usize,
    /// The states.
    pub nodes: Vec<Node>,
    /// The transitions.
    pub edges: Vec<Edge>,
}

impl Graph {
    /// The graph of one pattern from its JSON (`explain --graph json`).
    pub fn from_json(json: &str) -> Result<Graph, MonitorError> {
        serde_json::from_str(json).map_err(MonitorError::Json)
    }
}

/// A state of a [`Graph`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The state's number (what edges refer to).
    pub id: usize,
    /// Its name, the label drawn (Flink's state names: the stage,
    /// `stage:N`, `$endState$`). Read from `label` too.
    #[serde(alias = "label")]
    pub name: String,
    /// What kind of state it is.
    pub kind: NodeKind,
}

/// The kinds of states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Where every run starts.
    Start,
    /// An ordinary state.
    Normal,
    /// Reaching it completes a match.
    Final,
    /// Reaching it discards the run (`not` elements).
    Stop,
    /// A `not followed by` ending: completes when the window closes.
    Pending,
}

/// A transition of a [`Graph`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// The source state's id.
    pub from: usize,
    /// The target state's id.
    pub to: usize,
    /// What it does with the event.
    pub kind: EdgeKind,
    /// `take cond`, `ignore cond`, `proceed cond`, `window ends`.
    pub label: String,
}

/// The kinds of transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Takes the event into the run.
    Take,
    /// Skips the event; the run stays.
    Ignore,
    /// Moves on without consuming the event.
    Proceed,
    /// A pending `not followed by` ending completes when the window closes.
    WindowEnd,
}

/// The recent history: one sample per second, the oldest first, at most
/// [`Limits::samples`]. Every sequence ends at the latest sample; a
/// pattern added during the run has a shorter one (align them at the end).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Series {
    /// When each sample was taken (wall clock, ms).
    pub at_ms: VecDeque<i64>,
    /// The watermark's lag behind the wall clock at each sample, seconds.
    pub watermark_lag_seconds: VecDeque<Option<f64>>,
    /// Per pattern, the matches found since the sample before.
    pub matches: BTreeMap<String, VecDeque<u64>>,
    /// Each pattern's match count at the last sample (not serialized).
    #[serde(skip)]
    last_matches: BTreeMap<String, u64>,
}

impl Status {
    /// An empty status with these bounds.
    pub fn new(limits: Limits) -> Status {
        Status {
            limits,
            ..Status::default()
        }
    }

    /// The pattern named `name`, added (version 1, counts zero) at the end
    /// if missing.
    pub fn pattern_mut(&mut self, name: &str) -> &mut PatternStatus {
        let i = match self.patterns.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => {
                self.patterns.push(PatternStatus::new(name));
                self.patterns.len() - 1
            }
        };
        &mut self.patterns[i]
    }

    /// The pattern named `name`, if present.
    pub fn pattern(&self, name: &str) -> Option<&PatternStatus> {
        self.patterns.iter().find(|p| p.name == name)
    }

    /// Keeps exactly the patterns named in `names`, in that order (after a
    /// change of rules): missing ones are added, others removed with their
    /// history.
    pub fn set_patterns<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let mut old = std::mem::take(&mut self.patterns);
        for name in names {
            let p = match old.iter().position(|p| p.name == name) {
                Some(i) => old.swap_remove(i),
                None => PatternStatus::new(name),
            };
            self.patterns.push(p);
        }
        let series = &mut self.series;
        let patterns = &self.patterns;
        series
            .matches
            .retain(|name, _| patterns.iter().any(|p| &p.name == name));
        series
            .last_matches
            .retain(|name, _| patterns.iter().any(|p| &p.name == name));
    }

    /// The worker `id`, added if missing (the list kept sorted by id).
    pub fn worker_mut(&mut self, id: usize) -> &mut WorkerStatus {
        let i = match self.workers.binary_search_by_key(&id, |w| w.id) {
            Ok(i) => i,
            Err(i) => {
                self.workers.insert(i, WorkerStatus::new(id));
                i
            }
        };
        &mut self.workers[i]
    }

    /// Adds an output record (one JSON line as `cepheid run` writes it: a
    /// match, or a timeout) to the latest of `pattern` (added if missing),
    /// dropping the oldest beyond [`Limits::recent_matches`]. An error if
    /// `json` is not JSON; the status is then unchanged.
    pub fn push_recent(&mut self, pattern: &str, json: &str) -> Result<(), MonitorError> {
        let json = json.trim_end();
        let record = if self.hide_events {
            without_events(json)?
        } else {
            RawValue::from_string(json.to_string()).map_err(MonitorError::Json)?
        };
        let keep = self.limits.recent_matches;
        let recent = &mut self.pattern_mut(pattern).recent;
        recent.push_back(record);
        while recent.len() > keep {
            recent.pop_front();
        }
        Ok(())
    }

    /// Copies the engine's totals ([`Engine::stats`](cepheid_engine::Engine::stats))
    /// into the run: late events, matches, timeouts, dropped, capped and
    /// discarded partial matches, forced watermarks. (`events_read` and
    /// `malformed` are the reader's counts, not the engine's.)
    pub fn apply_stats(&mut self, stats: &Stats) {
        let run = &mut self.run;
        run.late = stats.late;
        run.matches = stats.matches;
        run.timeouts = stats.timeouts;
        run.dropped_runs = stats.dropped_runs;
        run.capped_runs = stats.capped_runs;
        run.discarded_runs = stats.discarded_runs;
        run.forced_watermarks = stats.forced_watermarks;
    }

    /// Computes the derived fields at wall-clock time `now_ms`:
    /// [`now_ms`](Status::now_ms), the watermark's lag and the last
    /// checkpoint's age.
    pub fn refresh(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        self.run.watermark_lag_seconds = self.run.watermark_ms.map(|w| seconds_between(w, now_ms));
        let checkpoint = &mut self.run.checkpoint;
        checkpoint.age_seconds = checkpoint.last_ms.map(|t| seconds_between(t, now_ms));
    }

    /// Takes one sample of the series at wall-clock time `now_ms` (the
    /// server does every second): the matches of each pattern since the
    /// sample before, and the watermark's lag. Refreshes the derived
    /// fields first.
    pub fn sample(&mut self, now_ms: i64) {
        self.refresh(now_ms);
        let keep = self.limits.samples.max(1);
        let series = &mut self.series;
        series.at_ms.push_back(now_ms);
        series
            .watermark_lag_seconds
            .push_back(self.run.watermark_lag_seconds);
        for p in &self.patterns {
            let last = series.last_matches.insert(p.name.clone(), p.matches);
            let new = p.matches.saturating_sub(last.unwrap_or(0));
            series
                .matches
                .entry(p.name.clone())
                .or_default()
                .push_back(new);
        }
        let patterns = &self.patterns;
        series
            .matches
            .retain(|name, _| patterns.iter().any(|p| &p.name == name));
        while series.at_ms.len() > keep {
            series.at_ms.pop_front();
        }
        while series.watermark_lag_seconds.len() > keep {
            series.watermark_lag_seconds.pop_front();
        }
        for values in series.matches.values_mut() {
            while values.len() > keep {
                values.pop_front();
            }
        }
    }
}

/// An output record without its `events` and `select` (any other JSON as
/// it is).
fn without_events(json: &str) -> Result<Box<RawValue>, MonitorError> {
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(MonitorError::Json)?;
    if let Some(record) = value.as_object_mut() {
        record.remove("events");
        record.remove("select");
    }
    serde_json::value::to_raw_value(&value).map_err(MonitorError::Json)
}

/// `to - from` milliseconds in seconds.
fn seconds_between(from: i64, to: i64) -> f64 {
    to.saturating_sub(from) as f64 / 1000.0
}

/// The wall clock in milliseconds since the Unix epoch (0 before it).
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_matches_and_samples_are_bounded() {
        let mut s = Status::new(Limits {
            recent_matches: 2,
            samples: 3,
        });
        for i in 0..5 {
            s.push_recent("p", &format!("{{\"n\": {i}}}\n")).unwrap();
        }
        let recent: Vec<&str> = s.patterns[0].recent.iter().map(|r| r.get()).collect();
        assert_eq!(recent, ["{\"n\": 3}", "{\"n\": 4}"]);
        assert!(s.push_recent("p", "{not json").is_err());
        assert_eq!(s.patterns[0].recent.len(), 2);

        s.run.watermark_ms = Some(1_000);
        for t in 1..=5 {
            s.pattern_mut("p").matches += t as u64;
            s.sample(t * 1_000 + 500);
        }
        assert_eq!(s.series.at_ms, [3_500, 4_500, 5_500]);
        assert_eq!(s.series.matches["p"], [3, 4, 5]);
        assert_eq!(
            s.series.watermark_lag_seconds,
            [Some(2.5), Some(3.5), Some(4.5)]
        );
    }

    #[test]
    fn hidden_events_leave_the_records_without_events_and_select() {
        let mut s = Status {
            hide_events: true,
            ..Status::default()
        };
        let record = r#"{"kind":"match","pattern":"p","key":{"u":"u-1"},"start":1,"end":2,"events":{"a":[{"ip":"10.0.0.1"}]},"select":{"ip":"10.0.0.1"}}"#;
        s.push_recent("p", record).unwrap();
        let kept: serde_json::Value = serde_json::from_str(s.patterns[0].recent[0].get()).unwrap();
        let expected = r#"{"kind":"match","pattern":"p","key":{"u":"u-1"},"start":1,"end":2}"#;
        assert_eq!(
            kept,
            serde_json::from_str::<serde_json::Value>(expected).unwrap()
        );
        s.push_recent("p", "[1, 2]").unwrap();
        assert_eq!(s.patterns[0].recent[1].get(), "[1,2]");
        assert!(s.push_recent("p", "{not json").is_err());
    }

    #[test]
    fn set_patterns_keeps_order_counts_and_drops_the_others() {
        let mut s = Status::default();
        s.pattern_mut("a").matches = 1;
        s.pattern_mut("b").matches = 2;
        s.sample(0);
        s.set_patterns(["c", "a"]);
        let names: Vec<&str> = s.patterns.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["c", "a"]);
        assert_eq!(s.pattern("a").unwrap().matches, 1);
        assert!(!s.series.matches.contains_key("b"));
    }

    #[test]
    fn the_status_reads_back_from_its_json() {
        let mut s = Status::default();
        s.push_recent("p", r#"{"kind":"match"}"#).unwrap();
        s.pattern_mut("p").graph = Some(
            Graph::from_json(
                r#"{"pattern":"p","start":0,"nodes":[{"id":0,"name":"a","kind":"start"},
                {"id":1,"label":"$endState$","kind":"final"}],
                "edges":[{"from":0,"to":1,"kind":"take","label":"take a"}]}"#,
            )
            .unwrap(),
        );
        s.worker_mut(1).events = 3;
        s.worker_mut(0).events = 2;
        s.sample(10);
        let json = serde_json::to_string(&s).unwrap();
        let back: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(
            back.workers.iter().map(|w| w.id).collect::<Vec<_>>(),
            [0, 1]
        );
        let graph = back.pattern("p").unwrap().graph.as_ref().unwrap();
        assert_eq!(graph.nodes[1].name, "$endState$");
        assert_eq!(graph.edges[0].kind, EdgeKind::Take);
    }
}
