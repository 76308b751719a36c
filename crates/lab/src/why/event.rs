//! `cepheid why RULES --event ID --events FILE`: for one event, how each
//! scene it entered came to its outcome, rule by rule (issue 62,
//! `docs/rule-lab.md`, "Why an event got its outcome").
//!
//! The rules run over the events as `cepheid run --decisions` runs them
//! (the same library run: every event, every key, the lists and
//! indicators they feed); the decision records of the event (its scene's
//! `id` field, or its position, `PATH:LINE` or `kafka:TOPIC partition P
//! offset O`, as the records name it) are kept, and each is told against
//! its scene's declaration: a list check that decided, each rule of the
//! scene in its order (fired or not, its action and the outcome it gives,
//! its score, what it read, counted or not), the score against the
//! thresholds, and the outcome.

use std::path::PathBuf;

use cepheid_core::scene::{HitPolicy, Scene};
use serde_json::{json, Value as Json};

use crate::{Error, ErrorKind, Events};

/// What `why --event` is asked: the rule set, the event's id, the events.
#[non_exhaustive]
pub struct Options {
    /// The rule set: a `.cep` file or a folder.
    pub rules: PathBuf,
    /// The event's id as its decisions name it: its scene's `id` field's
    /// value (`p4`), or its position (`events.jsonl:12`).
    pub event: String,
    /// The events the rules run over.
    pub events: Events,
}

impl Options {
    /// The event `event` of the rules at `rules` over `events`.
    pub fn new(rules: impl Into<PathBuf>, event: impl Into<String>, events: Events) -> Options {
        Options {
            rules: rules.into(),
            event: event.into(),
            events,
        }
    }
}

/// The decisions of one event, each with its scene: the report as text
/// ([`WhyEvent::text`]) or one JSON document ([`WhyEvent::json`]).
pub struct WhyEvent {
    event: String,
    /// (its scene, the decision record) in the order the run made them.
    decisions: Vec<(Scene, Json)>,
    /// What is said of how the event came, before its decisions.
    notes: Vec<String>,
}

/// The decision records of one event id, as the run makes them.
struct OfEvent {
    id: String,
    found: Vec<Json>,
}

impl crate::Records for OfEvent {
    fn record(&mut self, line: &[u8]) {
        if !line.starts_with(b"{\"kind\":\"decision\"") {
            return;
        }
        let Ok(d) = serde_json::from_slice::<Json>(line) else {
            return;
        };
        let id = d.get("event").or_else(|| d.get("position"));
        let is = match id {
            Some(Json::String(s)) => *s == self.id,
            // (a number or another value: the id read as JSON)
            Some(other) => serde_json::from_str::<Json>(&self.id).is_ok_and(|id| id == *other),
            None => false,
        };
        if is {
            self.found.push(d);
        }
    }

    fn takes_decisions(&self) -> bool {
        true
    }
}

/// Runs the rules over the events and finds the decisions of the event.
/// Rules without scenes, or an event no scene decided, are an error that
/// says so (`Usage`: nothing to explain).
pub fn run(options: &Options) -> Result<WhyEvent, Error> {
    let events = &options.events;
    events.check("why reads the events from a file or a Kafka range")?;
    if events.workers.is_some() {
        return Err(Error::new(
            ErrorKind::Usage,
            "why runs one engine: --workers is not taken",
        ));
    }
    let of = OfEvent {
        id: options.event.clone(),
        found: Vec::new(),
    };
    let ran = events.run_into(&options.rules, "rules", of)?;
    // (a Kafka record's position is its place: `docs/decisions.md`)
    let position = match events.path.to_string_lossy().starts_with("kafka://") {
        true => "kafka:TOPIC partition P offset O".to_string(),
        false => format!("{}:LINE", events.path.display()),
    };
    WhyEvent::of(&ran.rules, &options.event, ran.records.found, &position)
}

impl WhyEvent {
    /// The decisions of event `event` told from its decision records
    /// made elsewhere (`"kind": "decision"` JSON lines, as `cepheid run
    /// --decisions` writes them; other lines are left out): `cepheid why
    /// --event ID --events wal:DIR` replays a service's log and finds its
    /// requests' records by their place. Told against the scenes of
    /// `rules` (the rules that decided them). Rules without scenes, or no
    /// decision record, are an error that says so (`Usage`).
    pub fn of_records<'a>(
        rules: &cepheid_engine::Rules,
        event: &str,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<WhyEvent, Error> {
        let found = (records.into_iter())
            .filter(|line| line.starts_with(b"{\"kind\":\"decision\""))
            .filter_map(|line| serde_json::from_slice::<Json>(line).ok())
            .collect();
        WhyEvent::of(rules, event, found, "the records given")
    }

    /// These decisions, then `other`'s (the same event's, told against
    /// other rules: a service's requests of one event id under two
    /// versions of the rules).
    pub fn and(mut self, other: WhyEvent) -> WhyEvent {
        self.decisions.extend(other.decisions);
        self.notes.extend(other.notes);
        self
    }

    /// The decisions `found` of event `event`, each with its scene of
    /// `rules`.
    fn of(
        rules: &cepheid_engine::Rules,
        event: &str,
        found: Vec<Json>,
        position: &str,
    ) -> Result<WhyEvent, Error> {
        let scenes = &rules.loaded().scenes;
        if scenes.is_empty() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "--event {event}: the rule set has no scene, so no event gets a decision (why KEY explains a key)"
                ),
            ));
        }
        if found.is_empty() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "--event {event}: no scene decided an event of that id (an event is named by its scene's `id` field, or by its position, {position})"
                ),
            ));
        }
        let decisions = (found.into_iter())
            .filter_map(|d| {
                let scene = scenes.iter().find(|s| d["scene"] == *s.name)?;
                Some((scene.clone(), d))
            })
            .collect();
        Ok(WhyEvent {
            event: event.to_string(),
            decisions,
            notes: Vec::new(),
        })
    }

    /// The same, with lines said first of how the event came (a service's
    /// request: its entry in the log, its answer), after those it had:
    /// in the text after the first line, in the JSON document as
    /// `"notes"`.
    pub fn with_notes(mut self, notes: Vec<String>) -> WhyEvent {
        self.notes.extend(notes);
        self
    }
}

/// A number as the records write it (an integer when it is one).
fn number(v: &Json) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    }
}

/// What one rule of a scene did with the event.
struct RuleSaid {
    pattern: String,
    text: String,
    json: Json,
}

impl WhyEvent {
    /// Each scene's rules, in its order, as told.
    fn rules_of(scene: &Scene, d: &Json) -> Vec<RuleSaid> {
        let fired: Vec<&Json> = (d["rules"].as_array().into_iter().flatten())
            .chain(d["shadow"].as_array().into_iter().flatten())
            .collect();
        let late = d["late"] == true;
        (scene.rules.iter())
            .map(|r| {
                let of_rule: Vec<&&Json> =
                    fired.iter().filter(|f| f["rule"] == *r.pattern).collect();
                let outcome = r.outcome.map(|o| scene.outcomes[o.index()].to_string());
                let mut json = json!({
                    "rule": r.pattern,
                    "fired": !of_rule.is_empty(),
                    "action": r.action.as_deref(),
                    "outcome": outcome,
                    "score": r.score,
                    "shadow": r.shadow,
                });
                let text = match of_rule.first() {
                    None if late => "not evaluated: the event came late".to_string(),
                    None => "did not fire on this event".to_string(),
                    Some(f) => {
                        let versions: Vec<String> = (of_rule.iter())
                            .filter_map(|f| f["version"].as_u64())
                            .map(|v| format!("v{v}"))
                            .collect();
                        let mut said = format!("fired ({})", versions.join(", "));
                        if r.shadow {
                            said.push_str(", shadow: listed, never counted");
                        } else if f["counted"] == false {
                            said.push_str(", not counted (`hit first`: an earlier rule decided)");
                        }
                        if let (Some(a), Some(o)) = (&r.action, &outcome) {
                            said.push_str(&format!("; action {a} gives {o}"));
                        } else if let Some(a) = &r.action {
                            said.push_str(&format!("; action {a} (no outcome of its own)"));
                        }
                        if let Some(score) = r.score {
                            said.push_str(&format!("; score {}", number(&json!(score))));
                        }
                        if let Some(reads) = f["reads"].as_object() {
                            let reads: Vec<String> =
                                reads.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                            said.push_str(&format!("; read {}", reads.join(", ")));
                            json["reads"] = f["reads"].clone();
                        }
                        json["versions"] = (of_rule.iter()).map(|f| f["version"].clone()).collect();
                        json["counted"] = (!r.shadow && f["counted"] != false).into();
                        said
                    }
                };
                RuleSaid {
                    pattern: r.pattern.clone(),
                    text,
                    json,
                }
            })
            .collect()
    }

    /// How the outcome came about, after the rules: the list that decided,
    /// the late outcome, the thresholds the score reached, the default.
    fn resolution(scene: &Scene, d: &Json) -> Vec<String> {
        let mut said = Vec::new();
        let outcome = d["outcome"].as_str().unwrap_or("?");
        if let Some(missing) = d["missing"].as_array() {
            let names: Vec<&str> = missing.iter().filter_map(Json::as_str).collect();
            said.push(format!(
                "the event lacks {}: a rule reading it cannot fire on it",
                names.join(", ")
            ));
        }
        if d["late"] == true {
            said.push(format!(
                "the event came late (behind the watermark): the scene's late outcome, {outcome}"
            ));
            return said;
        }
        if let Some(list) = d["list"].as_str() {
            said.push(format!(
                "list check `{list}` held: {outcome} at once (the rules still took the event)"
            ));
            return said;
        }
        if !scene.list_checks.is_empty() {
            let checks: Vec<&str> = scene.list_checks.iter().map(|c| &*c.label).collect();
            said.push(format!("no list check held ({})", checks.join(", ")));
        }
        let score = &d["score"];
        let sum = score.as_f64().unwrap_or(0.0);
        let reached: Vec<String> = (scene.thresholds.iter())
            .filter(|t| t.reached(sum))
            .map(|t| {
                let op = if t.inclusive { ">=" } else { ">" };
                format!(
                    "{} if score {op} {}",
                    scene.outcomes[t.outcome.index()],
                    number(&json!(t.score))
                )
            })
            .collect();
        match reached.last() {
            Some(top) => said.push(format!("score {}: reaches `{top}`", number(score))),
            None if !scene.thresholds.is_empty() => {
                said.push(format!("score {}: reaches no threshold", number(score)))
            }
            None => {}
        }
        let counted = (d["rules"].as_array().into_iter().flatten())
            .filter(|r| r["counted"] != false)
            .count();
        if counted == 0 && reached.is_empty() {
            said.push(format!(
                "no rule that counts fired: the scene's default, {}",
                scene.outcomes[scene.default.index()]
            ));
        }
        let hit = match scene.hit {
            HitPolicy::First => "the first rule that fires decides (`hit first`)",
            HitPolicy::All => "the most severe of what the rules and the score give",
        };
        said.push(format!("outcome: {outcome} ({hit})"));
        said
    }

    /// The report as text: per scene the event entered, its outcome, each
    /// rule, and how the outcome came about.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let n = self.decisions.len();
        let _ = writeln!(
            out,
            "event {}: {n} {}",
            self.event,
            if n == 1 { "decision" } else { "decisions" }
        );
        for note in &self.notes {
            let _ = writeln!(out, "  {note}");
        }
        for (scene, d) in &self.decisions {
            let _ = writeln!(
                out,
                "scene {} at {}: {} (score {})",
                scene.name,
                d["ts"],
                d["outcome"].as_str().unwrap_or("?"),
                number(&d["score"])
            );
            let rules = Self::rules_of(scene, d);
            let width = rules.iter().map(|r| r.pattern.len()).max().unwrap_or(0);
            for r in &rules {
                let _ = writeln!(out, "  {:width$}  {}", r.pattern, r.text);
            }
            for line in Self::resolution(scene, d) {
                let _ = writeln!(out, "  {line}");
            }
        }
        out
    }

    /// The report as one JSON document (one line, without its newline):
    /// `{"event", "decisions": [{"scene", "decision", "rules",
    /// "resolution"}]}`, and `"notes"` when there are any
    /// ([`WhyEvent::with_notes`]).
    pub fn json(&self) -> String {
        let decisions: Vec<Json> = (self.decisions.iter())
            .map(|(scene, d)| {
                let rules: Vec<Json> = Self::rules_of(scene, d)
                    .into_iter()
                    .map(|r| r.json)
                    .collect();
                json!({
                    "scene": scene.name,
                    "decision": d,
                    "rules": rules,
                    "resolution": Self::resolution(scene, d),
                })
            })
            .collect();
        let mut doc = json!({"event": self.event, "decisions": decisions});
        if !self.notes.is_empty() {
            doc["notes"] = json!(self.notes);
        }
        doc.to_string()
    }
}
