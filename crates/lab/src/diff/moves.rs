//! The events whose outcome two rule sets decide differently (issue 62,
//! `docs/rule-lab.md`, "Outcomes moved"): each set's decision records
//! (`docs/decisions.md`) paired by scene and event id, the events that
//! move from one outcome to another counted per move, and the rules that
//! fired on them with one set and not with the other, which is why they
//! moved ("312 events approve -> review: `payment_velocity` v4").

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use serde::Deserialize;

/// A rule that fired: its name and version.
type Rule = (String, Option<u64>);

/// A rule that fired with one set only: its name, version and whether it
/// was the new set.
type OneSided = (String, Option<u64>, bool);

/// The decision records of one rule set's run.
#[derive(Default)]
pub(super) struct Decided {
    /// (scene, event id) → (outcome, the rules that fired: name and
    /// version), in the order they came.
    by_event: HashMap<(String, String), (String, Vec<Rule>)>,
    /// The keys in the order their decisions came.
    order: Vec<(String, String)>,
}

/// The part of a decision record a diff reads.
#[derive(Deserialize)]
struct Line {
    scene: String,
    #[serde(default)]
    event: Option<serde_json::Value>,
    #[serde(default)]
    position: Option<serde_json::Value>,
    outcome: String,
    #[serde(default)]
    rules: Vec<Fired>,
}

#[derive(Deserialize)]
struct Fired {
    rule: String,
    #[serde(default)]
    version: Option<u64>,
}

/// The id text of a decision's `event` or `position`: a string's own
/// text, another value's JSON.
fn id_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Decided {
    /// Takes one decision record (a line that is none is left).
    pub(super) fn take(&mut self, line: &[u8]) {
        let Ok(d) = serde_json::from_slice::<Line>(line) else {
            return;
        };
        let Some(id) = d.event.as_ref().or(d.position.as_ref()) else {
            return;
        };
        let key = (d.scene, id_text(id));
        let fired = d.rules.into_iter().map(|f| (f.rule, f.version)).collect();
        if self
            .by_event
            .insert(key.clone(), (d.outcome, fired))
            .is_none()
        {
            self.order.push(key);
        }
    }

    /// How many decisions.
    pub(super) fn len(&self) -> usize {
        self.by_event.len()
    }
}

/// One move of outcome in one scene, and why.
#[derive(Debug, PartialEq)]
pub(super) struct Move {
    pub(super) scene: String,
    /// The old set's outcome (`None`: the event entered the scene only
    /// with the new set).
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    /// The events that moved so, the first ones' ids kept.
    pub(super) events: u64,
    pub(super) first: Vec<String>,
    /// The rules that fired on them with one set only: (rule, version,
    /// `true` with the new set only), and on how many of the events.
    pub(super) rules: Vec<(OneSided, u64)>,
}

/// How many ids of each move are kept to be shown.
const FIRST: usize = 5;

/// The moves from `old`'s decisions to `new`'s, by scene, then by the
/// number of events (most first), then by outcomes.
pub(super) fn moves(old: &Decided, new: &Decided) -> Vec<Move> {
    type Key = (String, Option<String>, Option<String>);
    type Found = (u64, Vec<String>, BTreeMap<OneSided, u64>);
    let mut found: BTreeMap<Key, Found> = BTreeMap::new();
    let keys =
        (old.order.iter()).chain(new.order.iter().filter(|k| !old.by_event.contains_key(*k)));
    for key in keys {
        let (was, is) = (old.by_event.get(key), new.by_event.get(key));
        let (from, to) = (was.map(|w| w.0.clone()), is.map(|i| i.0.clone()));
        if from == to {
            continue;
        }
        let entry = found.entry((key.0.clone(), from, to)).or_default();
        entry.0 += 1;
        if entry.1.len() < FIRST {
            entry.1.push(key.1.clone());
        }
        let none = Vec::new();
        let (was, is) = (was.map_or(&none, |w| &w.1), is.map_or(&none, |i| &i.1));
        for (rule, version) in is.iter().filter(|r| !was.contains(r)) {
            *entry.2.entry((rule.clone(), *version, true)).or_default() += 1;
        }
        for (rule, version) in was.iter().filter(|r| !is.contains(r)) {
            *entry.2.entry((rule.clone(), *version, false)).or_default() += 1;
        }
    }
    let mut list: Vec<Move> = (found.into_iter())
        .map(|((scene, from, to), (events, first, rules))| {
            let mut rules: Vec<_> = rules.into_iter().collect();
            rules.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Move {
                scene,
                from,
                to,
                events,
                first,
                rules,
            }
        })
        .collect();
    list.sort_by(|a, b| {
        (a.scene.cmp(&b.scene))
            .then_with(|| b.events.cmp(&a.events))
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    list
}

/// An outcome, or `-` for none (the event entered no scene of that name
/// with that set).
fn shown(outcome: &Option<String>) -> &str {
    outcome.as_deref().unwrap_or("-")
}

/// A rule of a move as the report says it: `` `name` v4 `` (and whether it
/// fired with the new set only, or stopped firing).
fn rule_text((rule, version, new): &OneSided) -> String {
    let version = version.map_or_else(String::new, |v| format!(" v{v}"));
    let how = if *new { "fired" } else { "no longer fired" };
    format!("`{rule}`{version} {how}")
}

/// The terminal's text of `moves`: a line per move, after one that
/// counts them (none: that no event moved).
pub(super) fn text(out: &mut String, moves: &[Move], decided: (usize, usize)) {
    let _ = writeln!(out, "decisions: old {}, new {}", decided.0, decided.1);
    if moves.is_empty() {
        let _ = writeln!(out, "no event changes outcome");
        return;
    }
    let moved: u64 = moves.iter().map(|m| m.events).sum();
    let _ = writeln!(out, "{moved} events change outcome:");
    for m in moves {
        let because: Vec<String> = (m.rules.iter())
            .map(|(rule, n)| format!("{} ({n})", rule_text(rule)))
            .collect();
        let because = if because.is_empty() {
            "no rule fired differently: the scene's resolution changed".to_string()
        } else {
            because.join(", ")
        };
        let _ = writeln!(
            out,
            "  scene {}: {} {} {} -> {}: {because}; e.g. {}",
            m.scene,
            m.events,
            if m.events == 1 { "event" } else { "events" },
            shown(&m.from),
            shown(&m.to),
            m.first.join(", ")
        );
    }
}

/// The JSON of `moves`, `"outcomes"` of the report.
pub(super) fn json(moves: &[Move], decided: (usize, usize)) -> serde_json::Value {
    let moves: Vec<serde_json::Value> = (moves.iter())
        .map(|m| {
            let rules: Vec<serde_json::Value> = (m.rules.iter())
                .map(|((rule, version, new), n)| {
                    serde_json::json!({
                        "rule": rule,
                        "version": version,
                        "fired_with": if *new { "new" } else { "old" },
                        "events": n,
                    })
                })
                .collect();
            serde_json::json!({
                "scene": m.scene,
                "from": m.from,
                "to": m.to,
                "events": m.events,
                "first": m.first,
                "rules": rules,
            })
        })
        .collect();
    serde_json::json!({
        "old_decisions": decided.0,
        "new_decisions": decided.1,
        "moves": moves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(lines: &[&str]) -> Decided {
        let mut d = Decided::default();
        for line in lines {
            d.take(line.as_bytes());
        }
        d
    }

    /// Events paired by scene and id move with the rules that fired with
    /// one set only; an event of a scene one set has not moves from or to
    /// none; equal outcomes are no move.
    #[test]
    fn moves_are_counted_with_the_rules_that_made_them() {
        let old = decided(&[
            r#"{"kind":"decision","scene":"pay","event":"a","ts":1,"outcome":"approve","score":0,"rules":[]}"#,
            r#"{"kind":"decision","scene":"pay","event":"b","ts":2,"outcome":"approve","score":0,"rules":[{"rule":"big","version":1}]}"#,
            r#"{"kind":"decision","scene":"pay","position":"e.jsonl:3","ts":3,"outcome":"review","score":0,"rules":[{"rule":"vel","version":1}]}"#,
            r#"{"kind":"decision","scene":"pay","event":"d","ts":4,"outcome":"approve","score":0,"rules":[]}"#,
        ]);
        let new = decided(&[
            r#"{"kind":"decision","scene":"pay","event":"a","ts":1,"outcome":"review","score":0,"rules":[{"rule":"vel","version":2}]}"#,
            r#"{"kind":"decision","scene":"pay","event":"b","ts":2,"outcome":"review","score":0,"rules":[{"rule":"big","version":1},{"rule":"vel","version":2}]}"#,
            r#"{"kind":"decision","scene":"pay","position":"e.jsonl:3","ts":3,"outcome":"approve","score":0,"rules":[]}"#,
            r#"{"kind":"decision","scene":"pay","event":"d","ts":4,"outcome":"approve","score":0,"rules":[]}"#,
            r#"{"kind":"decision","scene":"new","event":"d","ts":4,"outcome":"x","score":0,"rules":[]}"#,
        ]);
        let m = moves(&old, &new);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(
            (
                m[1].scene.as_str(),
                m[1].from.as_deref(),
                m[1].to.as_deref(),
                m[1].events
            ),
            ("pay", Some("approve"), Some("review"), 2)
        );
        assert_eq!(m[1].rules, [(("vel".to_string(), Some(2), true), 2)]);
        assert_eq!(m[1].first, ["a", "b"]);
        assert_eq!(m[2].rules, [(("vel".to_string(), Some(1), false), 1)]);
        assert_eq!((m[0].scene.as_str(), m[0].from.as_deref()), ("new", None));
        let mut out = String::new();
        text(&mut out, &m, (old.len(), new.len()));
        assert!(
            out.contains("scene pay: 2 events approve -> review: `vel` v2 fired (2); e.g. a, b"),
            "{out}"
        );
        assert!(
            out.contains("scene pay: 1 event review -> approve: `vel` v1 no longer fired (1)"),
            "{out}"
        );
        assert!(
            out.contains("scene new: 1 event - -> x: no rule fired differently"),
            "{out}"
        );
        assert!(out.contains("4 events change outcome"), "{out}");
    }
}
