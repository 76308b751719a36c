//! `cepheid run --metrics ADDR` (feature `metrics`): the run's status
//! served by `cepheid_monitor` (Prometheus text on `/metrics`, the live
//! page on `/`, `/status.json`), filled by the runtime's observer hook
//! (`Report::tick` once per batch and once per idle second, never per
//! event; `Report::event` for checkpoints and reloads). Each pattern's
//! automaton is compiled once per rule set (at the start and after each
//! reload) for the page's drawing.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cepheid_automata::nfa::Nfa;
use cepheid_core::record::FieldTable;
use cepheid_engine::{Engine, Record};
use cepheid_monitor::{Graph, Monitor, Server};
use cepheid_runtime::{Kind, RunEvent, RunView};

/// Output records of a batch copied for the page's latest matches, at
/// most (the page keeps 20 per pattern).
pub const RECORDS: usize = 256;

/// `ADDR` as given, `:PORT` meaning `127.0.0.1:PORT`.
fn address(addr: &str) -> String {
    match addr.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => addr.to_string(),
    }
}

/// Serves a fresh monitor on `addr`; says where on standard error.
pub fn serve(addr: &str) -> Result<(Observer, Server), String> {
    let monitor = Monitor::new();
    let server = monitor
        .serve(address(addr))
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    say!("cepheid: metrics on http://{}/", server.addr());
    Ok((
        Observer {
            monitor,
            rules: None,
            state_at: None,
        },
        server,
    ))
}

/// The run's observer: copies what the runtime shows into the monitor.
pub struct Observer {
    monitor: Monitor,
    /// The rule set whose graphs are drawn: each pattern's name and
    /// version (`None` before the first tick).
    rules: Option<Vec<(String, u32)>>,
    /// When the state's bytes were last measured (a walk over the held
    /// events and keys: at most once per [`STATE_EVERY`]).
    state_at: Option<Instant>,
}

/// How often the state's bytes are measured, at most.
const STATE_EVERY: Duration = Duration::from_secs(1);

/// The wall clock in milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Each pattern in force's automaton, as the page draws it.
fn graphs(engine: &Engine<Record>) -> Vec<(String, Option<Graph>)> {
    engine
        .patterns()
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
fn pattern_of(line: &str) -> Option<String> {
    let fast = || {
        let rest = line.strip_prefix(r#"{"kind":""#)?;
        let rest = &rest[rest.find('"')?..];
        let rest = rest.strip_prefix(r#"","pattern":""#)?;
        let name = &rest[..rest.find('"')?];
        (!name.contains('\\')).then(|| name.to_string())
    };
    fast().or_else(|| {
        serde_json::from_str::<Named>(line)
            .ok()
            .map(|named| named.pattern)
    })
}

impl Observer {
    /// One batch (or an idle second, or the end).
    pub fn tick(&mut self, view: &RunView<'_>) {
        let engine = view.engine;
        let stats = engine.pattern_stats();
        let rules: Vec<(String, u32)> = engine
            .patterns()
            .map(|p| {
                let version = stats
                    .iter()
                    .find(|s| s.name == p.name)
                    .map_or(1, |s| s.version);
                (p.name.clone(), version)
            })
            .collect();
        let graphs = (self.rules.as_ref() != Some(&rules)).then(|| graphs(engine));
        self.rules = Some(rules);
        let totals = engine.stats();
        let state_bytes = (view.finished
            || self.state_at.is_none_or(|t| t.elapsed() >= STATE_EVERY))
        .then(|| {
            self.state_at = Some(Instant::now());
            engine.state_bytes()
        });
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
            s.run.watermark_ms = engine.current_watermark();
            s.run.live_runs = engine.live_runs() as u64;
            s.run.waiting_events = engine.waiting_events() as u64;
            s.run.stored_events = engine.stored_events() as u64;
            s.run.source_lag_bytes = view.source_lag;
            if state_bytes.is_some() {
                s.run.state_bytes = state_bytes;
            }
            s.run.field_warnings = view.field_warnings;
            for p in &stats {
                s.pattern_mut(&p.name).set_counts(p);
            }
            // The page keeps the latest `recent_matches` records of each
            // pattern: only those of the batch are taken (from its end),
            // the others not parsed at all.
            let keep = s.limits.recent_matches;
            let mut taken: Vec<(String, &str)> = Vec::new();
            let mut per_pattern: std::collections::HashMap<String, usize> = Default::default();
            for (kind, line) in view.records.iter().rev() {
                if *kind == Kind::Late {
                    continue;
                }
                let line = line.trim_end();
                let Some(name) = pattern_of(line) else {
                    continue;
                };
                let n = per_pattern.entry(name.clone()).or_default();
                if *n < keep {
                    *n += 1;
                    taken.push((name, line));
                }
            }
            for (name, line) in taken.into_iter().rev() {
                let _ = s.push_recent(&name, line);
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
            _ => {}
        });
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_of;

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
