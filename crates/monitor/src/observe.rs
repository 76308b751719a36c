//! A run's [`Observer`]: what the runtime's observer hook shows
//! (`cepheid_runtime::Report::tick` with a [`RunView`], once per batch and
//! once per idle second, never per event; `Report::event` with a
//! [`RunEvent`] for checkpoints and reloads) copied into a [`Monitor`].
//! Each pattern's automaton is compiled once per rule set (at the start
//! and after each reload) for the page's drawing. A run on workers (the
//! dataflow crate's) shows their sums, and each worker's own numbers
//! ([`WorkerStatus`]).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cepheid_automata::nfa::Nfa;
use cepheid_core::pattern::Pattern;
use cepheid_core::record::FieldTable;
use cepheid_engine::Record;
use cepheid_runtime::{Kind, Notice, Report, RunEvent, RunView};

use crate::{Graph, Monitor, WaitingStatus, WorkerStatus};

/// Output records of a batch a run copies for the page's latest matches,
/// at most (what an observing report answers to
/// `Report::records_wanted`; the page keeps 20 per pattern).
pub const RECORDS: usize = 256;

/// A run's observer: copies what the runtime shows into the monitor.
///
/// ```
/// use cepheid_engine::{Engine, Record, Rules};
/// use cepheid_monitor::{Monitor, Observer};
/// use cepheid_runtime::RunView;
///
/// let rules = Rules::parse("r.cep", "pattern p { match a where a: n == 1 }")?;
/// let mut engine: Engine<Record> = Engine::new();
/// engine.add(&rules)?;
/// let monitor = Monitor::new();
/// let mut observer = Observer::new(monitor.clone());
/// let mut view = RunView::of_engine(&engine);
/// view.events_read = 5;
/// observer.tick(&view);
/// let status = monitor.snapshot();
/// assert_eq!(status.run.events_read, 5);
/// assert!(status.pattern("p").is_some_and(|p| p.graph.is_some()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Observer {
    monitor: Monitor,
    /// The rule set whose graphs are drawn: each pattern's name and
    /// version (`None` before the first tick).
    rules: Option<Vec<(String, u32)>>,
    /// When the state's bytes were last measured (a walk over the held
    /// events and keys: at most once per [`STATE_EVERY`]).
    state_at: Option<Instant>,
    /// When the patterns' numbers were last read (on one engine a walk
    /// over its keys for each pattern's partial matches: at most once per
    /// [`PATTERNS_EVERY`]).
    patterns_at: Option<Instant>,
    /// The status's `Limits::recent_matches`, read at the first tick.
    keep: Option<usize>,
    /// The latest records of each pattern since they were last put into
    /// the status (each one checked as JSON there: at most once per
    /// [`PATTERNS_EVERY`], not for every batch), at most
    /// `Limits::recent_matches` each, oldest first.
    pending: HashMap<String, VecDeque<String>>,
    /// Texts put into the status already, their room kept.
    spare: Vec<String>,
}

/// How often the state's bytes are measured, at most.
const STATE_EVERY: Duration = Duration::from_secs(1);

/// How often the patterns' numbers are read, at most (the workers publish
/// theirs as often).
const PATTERNS_EVERY: Duration = Duration::from_millis(250);

impl Observer {
    /// An observer filling `monitor`.
    pub fn new(monitor: Monitor) -> Observer {
        Observer {
            monitor,
            rules: None,
            state_at: None,
            patterns_at: None,
            keep: None,
            pending: HashMap::new(),
            spare: Vec::new(),
        }
    }

    /// The monitor it fills.
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }
}

/// An observer is a run's [`Report`] of its own: it watches the run
/// (every tick and event fills the monitor) and keeps the latest
/// [`RECORDS`] records per batch; it says nothing on its
/// own (its notices are dropped). Joined to another report with
/// [`cepheid_runtime::Both`]: `Both(StderrReport, monitor.observer())`.
impl Report for Observer {
    fn notice(&mut self, _notice: Notice) {}

    fn observes(&self) -> bool {
        true
    }

    fn records_wanted(&self) -> usize {
        crate::RECORDS
    }

    fn tick(&mut self, view: &RunView<'_>) {
        Observer::tick(self, view);
    }

    fn event(&mut self, event: &RunEvent<'_>) {
        Observer::event(self, event);
    }
}

/// The wall clock in milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Each pattern's automaton, as the page draws it.
fn graphs<'a>(patterns: impl Iterator<Item = &'a Pattern>) -> Vec<(String, Option<Graph>)> {
    patterns
        .map(|p| {
            let graph = Nfa::<Record>::compile(p, &mut FieldTable::new())
                .ok()
                .and_then(|nfa| serde_json::to_string(&nfa.graph()).ok())
                .and_then(|json| Graph::from_json(&json).ok());
            (p.name.clone(), graph)
        })
        .collect()
}

/// The `pattern` of an output record's JSON.
#[derive(serde::Deserialize)]
struct Named {
    pattern: String,
}

/// The pattern of an output record (a match or a timeout, as the run
/// writes it: `{"kind":"match","pattern":"NAME",...`), read from its
/// start; any other form is parsed as JSON.
fn pattern_of(line: &str) -> Option<Cow<'_, str>> {
    let fast = || {
        let rest = line.strip_prefix(r#"{"kind":""#)?;
        let rest = &rest[rest.find('"')?..];
        let rest = rest.strip_prefix(r#"","pattern":""#)?;
        let name = &rest[..rest.find('"')?];
        (!name.contains('\\')).then_some(Cow::Borrowed(name))
    };
    fast().or_else(|| {
        serde_json::from_str::<Named>(line)
            .ok()
            .map(|named| Cow::Owned(named.pattern))
    })
}

impl Observer {
    /// One batch (or an idle second, or the end).
    pub fn tick(&mut self, view: &RunView<'_>) {
        // Each pattern's numbers (and with them a change of rules) at most
        // every quarter second, and at the end: the run's own numbers and
        // the batch's records every time.
        let patterns_due = view.finished
            || self
                .patterns_at
                .map_or(true, |t| t.elapsed() >= PATTERNS_EVERY);
        let stats = if patterns_due {
            self.patterns_at = Some(Instant::now());
            view.pattern_stats()
        } else {
            Vec::new()
        };
        let graphs = if patterns_due {
            let rules: Vec<(String, u32)> = view
                .patterns()
                .map(|p| {
                    let version = stats
                        .iter()
                        .find(|s| s.name == p.name)
                        .map_or(1, |s| s.version);
                    (p.name.clone(), version)
                })
                .collect();
            let graphs = (self.rules.as_ref() != Some(&rules)).then(|| graphs(view.patterns()));
            self.rules = Some(rules);
            graphs
        } else {
            None
        };
        let in_force: Vec<&str> = view.patterns().map(|p| p.name.as_str()).collect();
        let totals = view.stats();
        // (on one engine a walk over its state; workers measure their own)
        let state_bytes = (view.finished
            || self.state_at.map_or(true, |t| t.elapsed() >= STATE_EVERY))
        .then(|| {
            self.state_at = Some(Instant::now());
            view.state_bytes()
        })
        .flatten();
        let workers: Vec<WorkerStatus> = view
            .workers()
            .iter()
            .map(|(id, n)| {
                let mut w = WorkerStatus::new(*id);
                w.events = n.stats.events;
                w.matches = n.stats.matches;
                w.live_runs = n.live_runs;
                w.watermark_ms = n.watermark;
                w
            })
            .collect();
        // The page keeps the latest `recent_matches` records of each
        // pattern: only those of the batch are taken (from its end), the
        // others not parsed at all; once every pattern in force has its
        // `keep`, the older records of the batch are not read at all.
        let keep = *self
            .keep
            .get_or_insert_with(|| self.monitor.read(|s| s.limits.recent_matches));
        let mut taken: Vec<(Cow<'_, str>, &str)> = Vec::new();
        // (a pattern and its records taken: a few dozen patterns at most
        // in a batch, looked up in a row)
        let mut per_pattern: Vec<(Cow<'_, str>, usize)> = Vec::new();
        let mut full = 0;
        for (kind, line) in view.records.iter().rev() {
            if keep == 0 || (!in_force.is_empty() && full == in_force.len()) {
                break;
            }
            if *kind == Kind::Late {
                continue;
            }
            let line = line.trim_end();
            let Some(name) = pattern_of(line) else {
                continue;
            };
            let at = match per_pattern.iter().position(|(p, _)| *p == name) {
                Some(at) => at,
                None => {
                    per_pattern.push((name.clone(), 0));
                    per_pattern.len() - 1
                }
            };
            let n = &mut per_pattern[at].1;
            if *n < keep {
                *n += 1;
                // (a drained or removed pattern's records may come too:
                // only those in force count towards stopping)
                full += usize::from(*n == keep && in_force.contains(&&*name));
                taken.push((name, line));
            }
        }
        for (name, line) in taken.into_iter().rev() {
            let records = match self.pending.get_mut(&*name) {
                Some(records) => records,
                None => self.pending.entry(name.to_string()).or_default(),
            };
            let mut text = if records.len() == keep {
                records.pop_front()
            } else {
                self.spare.pop()
            }
            .unwrap_or_default();
            text.clear();
            text.push_str(line);
            records.push_back(text);
        }
        self.monitor.update(|s| {
            if let Some(graphs) = graphs {
                s.set_patterns(graphs.iter().map(|(name, _)| name.as_str()));
                for (name, graph) in graphs {
                    s.pattern_mut(&name).graph = graph;
                }
            }
            s.apply_stats(&totals);
            s.run.events_read = view.events_read + view.malformed;
            s.run.malformed = view.malformed;
            s.run.late = view.late;
            s.run.watermark_ms = view.watermark();
            s.run.live_runs = view.live_runs();
            s.run.waiting_events = view.waiting_events();
            s.run.stored_events = view.stored_events();
            if !workers.is_empty() {
                s.workers = workers;
            }
            s.run.source_lag_bytes = view.source_lag;
            s.run.consumer_lag = view.consumer_lag;
            s.run.consumer_lag_partitions.clear();
            s.run
                .consumer_lag_partitions
                .extend_from_slice(view.split_lag);
            if state_bytes.is_some() {
                s.run.state_bytes = state_bytes;
            }
            s.run.field_warnings = view.field_warnings;
            s.run.memory = crate::status::MemoryStatus::of(&view.memory());
            s.run.reloads.waiting =
                (view.rules_waiting).map(|w| WaitingStatus::new(w.records, w.at));
            // (copied when it changed: at a change of rules, at most 100)
            if s.run.reloads.history.last() != view.rule_changes.last()
                || s.run.reloads.history.len() != view.rule_changes.len()
            {
                s.run.reloads.history.clear();
                s.run.reloads.history.extend_from_slice(view.rule_changes);
            }
            for p in &stats {
                s.pattern_mut(&p.name).set_counts(p);
            }
            if patterns_due {
                for (name, records) in &mut self.pending {
                    for line in records.drain(..) {
                        let _ = s.push_recent(name, &line);
                        self.spare.push(line);
                    }
                }
                self.pending
                    .retain(|name, _| in_force.contains(&name.as_str()));
            }
            if view.finished {
                s.run.finished = true;
            }
        });
    }

    /// A checkpoint or a change of rules.
    pub fn event(&mut self, event: &RunEvent<'_>) {
        let at = now_ms();
        self.monitor.update(|s| match event {
            RunEvent::Checkpoint {
                duration, bytes, ..
            } => s
                .run
                .checkpoint
                .completed(at, duration.as_secs_f64(), *bytes),
            RunEvent::CheckpointFailed { error } => s.run.checkpoint.failed(error),
            RunEvent::Reloaded => s.run.reloads.applied(at),
            RunEvent::ReloadRefused { why } => s.run.reloads.refused(at, why),
            RunEvent::RulesAhead { what } => s.run.reloads.ahead(what),
            _ => {}
        });
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_of;

    /// The rule changes a run shows are `/status.json`'s
    /// `run.reloads.history`, copied when they change, and read back.
    #[test]
    fn the_rule_changes_shown_are_the_statuss_history() {
        use cepheid_engine::engine::ReloadPolicy;
        use cepheid_engine::{Engine, Record};
        use cepheid_runtime::audit::{Origin, RuleChange};
        let engine: Engine<Record> = Engine::new();
        let monitor = crate::Monitor::new();
        let mut observer = super::Observer::new(monitor.clone());
        let change = |t: i64| {
            let origin = Origin::files(&["p.cep".into()], Some("deploy".into()));
            RuleChange::refused(Some(t), origin, ReloadPolicy::Drain, "cepheid: broken")
        };
        let shown = vec![change(1), change(2)];
        let mut view = cepheid_runtime::RunView::of_engine(&engine);
        view.rule_changes = &shown[..1];
        observer.tick(&view);
        assert_eq!(monitor.snapshot().run.reloads.history, shown[..1]);
        view.rule_changes = &shown;
        observer.tick(&view);
        let status = monitor.snapshot();
        assert_eq!(status.run.reloads.history, shown);
        let json = serde_json::to_value(&status).unwrap();
        let history = &json["run"]["reloads"]["history"];
        assert_eq!(history[1]["origin"]["label"], "deploy");
        assert_eq!(history[1]["reason"], "broken");
        let back: crate::Status = serde_json::from_value(json).unwrap();
        assert_eq!(back.run.reloads.history, shown);
    }

    #[test]
    fn the_pattern_of_a_record_is_read_from_its_start_or_its_json() {
        let record = r#"{"kind":"match","pattern":"unpaid_order","key":{"order_id":"o-1"},"start":1,"end":2,"select":{"pattern":"no"}}"#;
        assert_eq!(pattern_of(record).as_deref(), Some("unpaid_order"));
        let timeout = r#"{"kind":"timeout","pattern":"p","key":{},"start":5,"expired_at":905}"#;
        assert_eq!(pattern_of(timeout).as_deref(), Some("p"));
        // Another order of the keys, spaces: read as JSON.
        let other = r#"{"pattern": "q", "kind": "match"}"#;
        assert_eq!(pattern_of(other).as_deref(), Some("q"));
        assert_eq!(pattern_of(r#"{"kind":"late","event":{}}"#), None);
        assert_eq!(pattern_of("not json"), None);
    }
}
