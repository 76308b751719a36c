//! Audit records of rule changes (issue 42, `docs/rule-lab.md`, "Audit
//! records"): one [`RuleChange`] per change of the rule set a run applied
//! or refused, written as a JSON line to [`Config::audit`](crate::Config::audit)
//! (a run output as `Config::late` is: exactly once with checkpoints), and
//! the latest [`HISTORY`] of them kept in each checkpoint ([`History`]).

use cepheid_core::lookup::Declarations;
use cepheid_engine::engine::{Change, ReloadPolicy};
use cepheid_engine::{PatternStats, Timestamp};
use serde::{Deserialize, Serialize};

pub use crate::reload::{not_reloaded, reloaded};

/// How many of the latest records a checkpoint keeps (and a resumed run
/// shows, `/status.json`'s `rule_changes`).
pub const HISTORY: usize = 100;

/// One change of rules a run applied or refused: the JSON line of
/// `Config::audit`, `{"kind":"rules_change", ...}`.
///
/// ```
/// use cepheid_runtime::audit::{Origin, RuleChange};
/// let line = r#"{"kind":"rules_change","event_time":1001,"wall_time":1764230400000,"origin":{"input":"events.jsonl","line":12},"outcome":"applied","policy":"drain","patterns":[{"pattern":"a","change":"changed","old_version":1,"new_version":2,"partial_matches":3,"state":"drained"}],"unchanged":1,"lists_started_empty":[]}"#;
/// let change: RuleChange = serde_json::from_str(line)?;
/// assert_eq!(change.origin, Origin::Line { input: "events.jsonl".into(), line: 12, rules_file: None });
/// assert_eq!(serde_json::to_string(&change)?, line);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "rules_change")]
pub struct RuleChange {
    /// The event time from which the new rules are in force: the
    /// watermark at the change + 1 (`docs/dynamic-rules.md`, "The switch
    /// point"); `None` before event time started (the rules at the start,
    /// a change before any watermark: every event sees them). For a
    /// refused change, the time at which it would have applied.
    pub event_time: Option<Timestamp>,
    /// When it was applied (or refused): wall-clock milliseconds since the
    /// Unix epoch.
    pub wall_time: i64,
    /// What asked for it.
    pub origin: Origin,
    /// Applied, or refused with the reason.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// `drain` or `restart` (`Config::reload_policy`): what became of a
    /// changed pattern's partial matches.
    pub policy: Policy,
    /// The names the change concerned other than those that stayed
    /// unchanged, in the new set's order, then the names removed (none
    /// for a refused change).
    pub patterns: Vec<PatternChange>,
    /// How many names stayed unchanged (same canonical text, state and
    /// version kept), not listed one by one.
    pub unchanged: usize,
    /// The lists and indicators the change declared anew (new, of another
    /// kind, or an indicator whose definition changed): they start empty
    /// (a list's reference files are read again). Every other list and
    /// indicator kept its entries (`docs/semantics.md`, "Changes of rules
    /// and snapshots").
    pub lists_started_empty: Vec<String>,
}

/// Whether a change was put in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The new rules are in force from [`RuleChange::event_time`].
    Applied,
    /// The old rules went on.
    Refused {
        /// Why, as said on standard error.
        reason: String,
    },
}

/// `Config::reload_policy`, as a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// [`ReloadPolicy::Drain`].
    Drain,
    /// [`ReloadPolicy::Restart`].
    Restart,
}

impl From<ReloadPolicy> for Policy {
    fn from(policy: ReloadPolicy) -> Policy {
        match policy {
            ReloadPolicy::Drain => Policy::Drain,
            ReloadPolicy::Restart => Policy::Restart,
        }
    }
}

/// What asked for a change (`docs/rule-lab.md`, "Audit records").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Origin {
    /// The pattern paths of `Config::patterns` read (at the start, a
    /// watched file's change, `Handle::reload`): `{"files": [...]}`, with
    /// the label a caller of `Handle::reload` gave (`"SIGHUP"` for the
    /// command's signal).
    Files {
        /// The pattern paths, as given.
        files: Vec<String>,
        /// The caller's label (`Handle::reload`'s `why`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A control record of a source's partitioned log (a Kafka topic: the
    /// rules topic, or the events' with `$rules` records).
    Record {
        /// The topic.
        topic: String,
        /// Its partition.
        partition: u32,
        /// The record's offset.
        offset: i64,
        /// The `$rules_file` path the record named, if it named one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rules_file: Option<String>,
    },
    /// A control record at a line of the input.
    Line {
        /// The input's name (`events.jsonl`, `standard input`).
        input: String,
        /// The line's number (from 1).
        line: u64,
        /// The `$rules_file` path the record named, if it named one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rules_file: Option<String>,
    },
    /// A control record of a source that places its records its own way
    /// (a source of the library's user), named as it names them.
    Place {
        /// Where, as the source says (`Source::describe_origin`).
        place: String,
        /// The `$rules_file` path the record named, if it named one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rules_file: Option<String>,
    },
}

impl Origin {
    /// The pattern paths `paths`, with `label`.
    pub fn files(paths: &[std::path::PathBuf], label: Option<String>) -> Origin {
        Origin::Files {
            files: paths.iter().map(|p| p.display().to_string()).collect(),
            label,
        }
    }

    /// A control record at `place`, `INPUT:LINE` as a run names a line
    /// of its input in messages (`events.jsonl:12`): [`Origin::Line`]; any
    /// other place, [`Origin::Place`].
    pub fn of_line(place: &str, rules_file: Option<String>) -> Origin {
        match place.rsplit_once(':') {
            Some((input, line)) if line.parse::<u64>().is_ok() => Origin::Line {
                input: input.to_string(),
                line: line.parse().unwrap_or(0),
                rules_file,
            },
            _ => Origin::Place {
                place: place.to_string(),
                rules_file,
            },
        }
    }

    /// A control record of a source, at `place` as the source names it
    /// ([`Source::describe_origin`](crate::Source::describe_origin)): a
    /// record of a partitioned log named as the Kafka source names one,
    /// `kafka:TOPIC partition P offset O`, is [`Origin::Record`]; any
    /// other place is [`Origin::Place`].
    pub fn of_place(place: &str, rules_file: Option<String>) -> Origin {
        let record = || {
            let rest = place.strip_prefix("kafka:")?;
            let (topic, rest) = rest.rsplit_once(" partition ")?;
            let (partition, offset) = rest.split_once(" offset ")?;
            Some((topic, partition.parse().ok()?, offset.parse().ok()?))
        };
        match record() {
            Some((topic, partition, offset)) => Origin::Record {
                topic: topic.to_string(),
                partition,
                offset,
                rules_file,
            },
            None => Origin::Place {
                place: place.to_string(),
                rules_file,
            },
        }
    }
}

/// What a change did to one pattern name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternChange {
    /// The name.
    pub pattern: String,
    /// `added`, `removed`, `changed`, `promoted` or `shadowed`.
    pub change: ChangeKind,
    /// Its version before (`None`: a name added).
    pub old_version: Option<u32>,
    /// Its version after (`None`: a name removed).
    pub new_version: Option<u32>,
    /// The partial matches the name held at the change, over every
    /// version (runs, and matches a skip strategy held back), summed over
    /// the run's engines: kept or dropped as [`PatternChange::state`]
    /// says. `None` where a run does not count them in one place (on
    /// several processes, `--processes`).
    pub partial_matches: Option<u64>,
    /// What became of them.
    pub state: State,
}

impl PatternChange {
    /// What `change` did to `name` under `policy`, its versions and
    /// partial matches read in `before` and `after` (an engine's
    /// [`pattern_stats`](cepheid_engine::Engine::pattern_stats) before and
    /// after the change, or their sum over engines); `None` when it stayed
    /// unchanged.
    pub fn of(
        name: &str,
        change: Change,
        policy: ReloadPolicy,
        (before, after): (&[PatternStats], &[PatternStats]),
    ) -> Option<PatternChange> {
        let of = |stats: &[PatternStats]| {
            (stats.iter())
                .find(|s| s.name == name)
                .map(|s| (s.version, s.live_runs))
        };
        let (old, new) = (of(before), of(after));
        let held = old.map_or(0, |(_, live)| live);
        let (kind, state, held) = match change {
            Change::Unchanged => return None,
            Change::Added => (ChangeKind::Added, State::Empty, 0),
            Change::Removed => (ChangeKind::Removed, State::Dropped, held),
            Change::Changed { .. } => {
                let state = match policy {
                    ReloadPolicy::Drain => State::Drained,
                    ReloadPolicy::Restart => State::Dropped,
                };
                (ChangeKind::Changed, state, held)
            }
            Change::Promoted => (ChangeKind::Promoted, State::Kept, held),
            Change::Shadowed => (ChangeKind::Shadowed, State::Kept, held),
        };
        let new_version = match change {
            Change::Changed { version } => Some(version),
            Change::Removed => None,
            _ => Some(new.map_or(1, |(v, _)| v)),
        };
        Some(PatternChange {
            pattern: name.to_string(),
            change: kind,
            old_version: old.map(|(v, _)| v),
            new_version,
            partial_matches: Some(held),
            state,
        })
    }
}

/// [`Change`], without its version (in [`PatternChange::new_version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// [`Change::Added`].
    Added,
    /// [`Change::Removed`].
    Removed,
    /// [`Change::Changed`].
    Changed,
    /// [`Change::Unchanged`] (never listed: counted in
    /// [`RuleChange::unchanged`]).
    Unchanged,
    /// [`Change::Promoted`].
    Promoted,
    /// [`Change::Shadowed`].
    Shadowed,
}

/// What became of a name's partial matches at a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Kept as they were (promoted, shadowed: the same text).
    Kept,
    /// Kept by the old version, which drains them to their match or
    /// timeout and starts no new one (`drain`); the new version starts
    /// empty.
    Drained,
    /// Dropped (a name removed; changed under `restart`), counted in the
    /// summary's partial matches discarded by reloads.
    Dropped,
    /// A new name: it starts empty.
    Empty,
}

impl RuleChange {
    /// The record of a change applied at `event_time` under `policy`:
    /// `changes` (each name and what the engine did to it, as
    /// [`Changes::iter`](cepheid_engine::engine::Changes::iter) gives them), `before` the engine's
    /// [`pattern_stats`](cepheid_engine::Engine::pattern_stats) before it
    /// and `after` after it (their versions and partial matches), `anew`
    /// the lists and indicators declared anew.
    pub fn applied<'c>(
        event_time: Option<Timestamp>,
        origin: Origin,
        policy: ReloadPolicy,
        changes: impl IntoIterator<Item = (&'c str, Change)>,
        (before, after): (&[PatternStats], &[PatternStats]),
        anew: Vec<String>,
    ) -> RuleChange {
        let mut patterns = Vec::new();
        let mut unchanged = 0;
        for (name, change) in changes {
            match PatternChange::of(name, change, policy, (before, after)) {
                Some(p) => patterns.push(p),
                None => unchanged += 1,
            }
        }
        RuleChange {
            event_time,
            wall_time: wall_ms(),
            origin,
            outcome: Outcome::Applied,
            policy: policy.into(),
            patterns,
            unchanged,
            lists_started_empty: anew,
        }
    }

    /// The record of the rules a run starts with (`patterns`: each name
    /// and version), from the start of event time: every pattern added,
    /// every list and indicator of `declared` started empty.
    pub fn initial(
        origin: Origin,
        policy: ReloadPolicy,
        patterns: impl IntoIterator<Item = (String, u32)>,
        declared: Vec<String>,
    ) -> RuleChange {
        let patterns = (patterns.into_iter())
            .map(|(pattern, version)| PatternChange {
                pattern,
                change: ChangeKind::Added,
                old_version: None,
                new_version: Some(version),
                partial_matches: Some(0),
                state: State::Empty,
            })
            .collect();
        RuleChange {
            event_time: None,
            wall_time: wall_ms(),
            origin,
            outcome: Outcome::Applied,
            policy: policy.into(),
            patterns,
            unchanged: 0,
            lists_started_empty: declared,
        }
    }

    /// The record of a change refused for `reason` (the old rules went
    /// on), that would have applied at `event_time`.
    pub fn refused(
        event_time: Option<Timestamp>,
        origin: Origin,
        policy: ReloadPolicy,
        reason: &str,
    ) -> RuleChange {
        RuleChange {
            event_time,
            wall_time: wall_ms(),
            origin,
            outcome: Outcome::Refused {
                reason: reason
                    .strip_prefix("cepheid: ")
                    .unwrap_or(reason)
                    .to_string(),
            },
            policy: policy.into(),
            patterns: Vec::new(),
            unchanged: 0,
            lists_started_empty: Vec::new(),
        }
    }

    /// The JSON line (with its newline).
    pub fn line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("plain data");
        line.push('\n');
        line
    }
}

/// One change of a list a run made or refused, written with
/// [`Config::audit_lists`](crate::Config::audit_lists) beside the
/// [`RuleChange`]s: the JSON line `{"kind":"list_change", ...}` of a
/// `$list` record of the input or of the run's source.
///
/// ```
/// use cepheid_runtime::audit::{ListChange, Origin, Outcome};
/// let line = r#"{"kind":"list_change","event_time":1001,"wall_time":1764230400000,"origin":{"place":"the log state/log entry 7"},"outcome":"applied","list":"blocked","added":["c1",42],"expires":7200000,"removed":[]}"#;
/// let change: ListChange = serde_json::from_str(line)?;
/// assert_eq!((change.list.as_deref(), &change.outcome), (Some("blocked"), &Outcome::Applied));
/// assert_eq!(serde_json::to_string(&change)?, line);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "list_change")]
pub struct ListChange {
    /// The event time from which the change is in force: the watermark
    /// at the change + 1, as a change of rules (`None` before event time
    /// started: every event sees it). For a refused change, the time at
    /// which it would have applied.
    pub event_time: Option<Timestamp>,
    /// When it was made (or refused): wall-clock milliseconds since the
    /// Unix epoch.
    pub wall_time: i64,
    /// Where the record was.
    pub origin: Origin,
    /// Made, or refused with the reason (as said on standard error).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The list (`None`: a record refused before its list could be read).
    pub list: Option<String>,
    /// The values added (as JSON values), in the record's order.
    pub added: Vec<serde_json::Value>,
    /// When the values added expire (milliseconds since the epoch), if
    /// they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// The values removed.
    pub removed: Vec<serde_json::Value>,
}

impl ListChange {
    /// The record of `record` (as read: `Err` why it could not be) at
    /// `event_time` from `origin`: made, or refused for `refused`.
    pub fn of(
        event_time: Option<Timestamp>,
        origin: Origin,
        record: Result<&crate::lists::ListRecord, &str>,
        refused: Option<&str>,
    ) -> ListChange {
        let value = |text: &String| {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.clone()))
        };
        let reason = refused.or(record.err());
        let record = record.ok();
        ListChange {
            event_time,
            wall_time: wall_ms(),
            origin,
            outcome: match reason {
                None => Outcome::Applied,
                Some(reason) => Outcome::Refused {
                    reason: reason.to_string(),
                },
            },
            list: record.map(|r| r.list.clone()),
            added: (record.iter())
                .flat_map(|r| r.add.iter().map(|(v, _)| value(v)))
                .collect(),
            expires: record.and_then(|r| r.add.first().and_then(|(_, until)| *until)),
            removed: (record.iter())
                .flat_map(|r| r.remove.iter().map(value))
                .collect(),
        }
    }

    /// The JSON line (with its newline).
    pub fn line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("plain data");
        line.push('\n');
        line
    }
}

/// The latest [`HISTORY`] records of a run, oldest first: kept in each
/// checkpoint, so that a resumed run shows the changes before it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History(Vec<RuleChange>);

impl History {
    /// Keeps `change` in the order of event time (after those of its
    /// time: the workers of a run may complete two changes' records in
    /// another order), forgetting the oldest past [`HISTORY`].
    pub fn push(&mut self, change: RuleChange) {
        // (a hundred moved at most, once per change of rules)
        let at = (self.0.iter()).rposition(|c| c.event_time <= change.event_time);
        self.0.insert(at.map_or(0, |i| i + 1), change);
        if self.0.len() > HISTORY {
            self.0.remove(0);
        }
    }

    /// The records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &RuleChange> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None kept?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The records as one slice, oldest first.
    pub fn as_slice(&self) -> &[RuleChange] {
        &self.0
    }
}

/// The lists and indicators of `after` that a change from `before`
/// declared anew, which start empty: a list not of the same name and kind
/// before, an indicator not of the same name and definition (the engine's
/// rule, `docs/semantics.md`, "Changes of rules and snapshots").
pub fn started_empty(before: &Declarations, after: &Declarations) -> Vec<String> {
    let lists = (after.lists.iter())
        .filter(|l| !(before.lists.iter()).any(|b| b.name == l.name && b.kind == l.kind))
        .map(|l| l.name.to_string());
    let indicators = (after.indicators.iter())
        .filter(|i| !(before.indicators.iter()).any(|b| b.same_definition(i)))
        .map(|i| i.name.to_string());
    lists.chain(indicators).collect()
}

/// Wall-clock milliseconds since the Unix epoch.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_latest_records() {
        let mut history = History::default();
        for i in 0..(HISTORY as i64 + 5) {
            let origin = Origin::Files {
                files: vec![],
                label: Some(i.to_string()),
            };
            history.push(RuleChange::refused(
                Some(i),
                origin,
                ReloadPolicy::Drain,
                "x",
            ));
        }
        assert_eq!(history.len(), HISTORY);
        assert_eq!(history.iter().next().unwrap().event_time, Some(5));
        let json = serde_json::to_string(&history).unwrap();
        let back: History = serde_json::from_str(&json).unwrap();
        assert_eq!(back, history);
    }

    #[test]
    fn a_kafka_place_is_a_record_of_a_topic() {
        assert_eq!(
            Origin::of_place("kafka:my rules partition 2 offset 17", Some("a.cep".into())),
            Origin::Record {
                topic: "my rules".into(),
                partition: 2,
                offset: 17,
                rules_file: Some("a.cep".into()),
            }
        );
        for place in [
            "kafka:rules record 3",
            "events.jsonl:4",
            "kafka:t partition x offset 1",
        ] {
            assert!(
                matches!(Origin::of_place(place, None), Origin::Place { .. }),
                "{place}"
            );
        }
    }

    #[test]
    fn origins_read_back_as_they_are_written() {
        for origin in [
            Origin::files(&["p.cep".into()], Some("SIGHUP".into())),
            Origin::Record {
                topic: "rules".into(),
                partition: 0,
                offset: 3,
                rules_file: None,
            },
            Origin::Line {
                input: "e.jsonl".into(),
                line: 2,
                rules_file: Some("v2.cep".into()),
            },
            Origin::Place {
                place: "mine 3".into(),
                rules_file: None,
            },
        ] {
            let json = serde_json::to_string(&origin).unwrap();
            assert_eq!(
                serde_json::from_str::<Origin>(&json).unwrap(),
                origin,
                "{json}"
            );
        }
    }
}
