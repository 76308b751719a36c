//! The answer's JSON: the `Decision` object of `docs/api/openapi.yaml`,
//! made from the engine's [`Decision`] and the request's [`Note`].

use std::sync::Arc;

use cepheid_engine::{Decision, Fired, Value};
use serde::Serialize;

use super::note::Note;

/// The `Decision` object of the API (`docs/api/openapi.yaml`), fields in
/// the document's order.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionBody {
    pub decision_id: String,
    pub scene: Arc<str>,
    pub event_id: Arc<str>,
    pub outcome: Arc<str>,
    pub score: serde_json::Number,
    pub rules: Vec<FiredBody>,
    pub shadow: Vec<FiredBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<Arc<str>>,
    pub degraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded_why: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow_shed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
    pub rules_version: u64,
    pub mode: &'static str,
    pub stamp: i64,
    pub elapsed_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<Explained>>,
}

/// A rule that fired (`FiredRule`).
#[derive(Clone, Debug, Serialize)]
pub struct FiredBody {
    pub rule: String,
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<serde_json::Number>,
    pub counted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One rule of the scene in an explanation.
#[derive(Clone, Debug, Serialize)]
pub struct Explained {
    pub rule: String,
    pub fired: bool,
    pub why: String,
}

/// A number as the records write it: an integer when it is one.
pub fn number(x: f64) -> serde_json::Number {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        serde_json::Number::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).unwrap_or_else(|| serde_json::Number::from(0))
    }
}

/// A value as JSON.
pub fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Str(s) => serde_json::Value::String(s.to_string()),
        Value::List(items) => serde_json::Value::Array(items.iter().map(json).collect()),
    }
}

fn fired(f: &Fired) -> FiredBody {
    FiredBody {
        rule: f.rule.clone(),
        version: f.version,
        action: f.action.clone(),
        score: f.score.map(number),
        counted: f.counted,
        reads: (!f.reads.is_empty()).then(|| {
            (f.reads.iter())
                .map(|(name, value)| (name.clone(), json(value)))
                .collect()
        }),
    }
}

/// What the service knows of a scene to answer for it.
#[derive(Clone, Debug)]
pub struct SceneFacts {
    pub fallback: Arc<str>,
    pub rules: Vec<String>,
}

/// The answer for `decision` of the request `note` with `event_id`
/// (`degraded`: the scene's fallback, no rule; `repeated`: a retry).
pub fn decision_body(
    decision: &Decision,
    note: &Note,
    event_id: &Arc<str>,
    facts: Option<&SceneFacts>,
    repeated: bool,
    explain: bool,
) -> DecisionBody {
    let degraded = note.degraded;
    let (outcome, score, rules, shadow, list) = match (degraded, facts) {
        (true, Some(facts)) => (
            facts.fallback.clone(),
            number(0.0),
            Vec::new(),
            Vec::new(),
            None,
        ),
        _ => (
            decision.outcome.clone(),
            number(decision.score),
            decision.rules.iter().map(fired).collect(),
            decision.shadow.iter().map(fired).collect(),
            decision.list.clone(),
        ),
    };
    let explanation = (explain && !degraded).then(|| {
        let names = facts.map(|f| f.rules.clone()).unwrap_or_default();
        (names.into_iter())
            .map(|rule| {
                let hit = (decision.rules.iter().chain(&decision.shadow)).find(|f| f.rule == rule);
                let why = match hit {
                    None => "its conditions did not hold on the event (no match of it held the event)".to_string(),
                    Some(f) if !f.counted => "it fired and does not count (a shadow rule, or past the first under `hit first`)".to_string(),
                    Some(f) => {
                        let mut why = "it fired".to_string();
                        if let Some(action) = &f.action {
                            why.push_str(&format!(", action {action}"));
                        }
                        if let Some(score) = f.score {
                            why.push_str(&format!(", score {}", number(score)));
                        }
                        why
                    }
                };
                Explained { fired: hit.is_some(), rule, why }
            })
            .collect()
    });
    DecisionBody {
        decision_id: decision_id(note.seq),
        scene: decision.scene.clone(),
        event_id: event_id.clone(),
        outcome,
        score,
        rules,
        shadow,
        list,
        missing: if degraded {
            Vec::new()
        } else {
            decision.missing.clone()
        },
        degraded,
        degraded_why: degraded.then_some("deadline"),
        shadow_shed: note.shadow_shed,
        repeated,
        rules_version: note.rules_version,
        mode: if note.dry_run { "dry_run" } else { "decide" },
        stamp: decision.ts,
        elapsed_us: 0,
        explanation,
    }
}

/// The decision id of the request logged at `seq`.
pub fn decision_id(seq: u64) -> String {
    format!("d-{seq}")
}

/// The seq of `decision_id`, if it is one of this service's.
pub fn seq_of(decision_id: &str) -> Option<u64> {
    let digits = decision_id.strip_prefix("d-")?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
