//! The scenes' outcome mix of a backtest (issue 62, `docs/rule-lab.md`,
//! "Outcomes"): per scene, how many decisions gave each outcome, over the
//! whole run and per day of event time, and, with labels by event
//! (`{"event": ID, "label": "fraud" | "legit"}`), the precision and recall
//! of each outcome. Read from the run's decision records
//! (`docs/decisions.md`) as the run makes them; a rule set without scenes
//! has none, and its report has no such section.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

/// A day of event time, in milliseconds.
const DAY: i64 = 86_400_000;

/// A label by event: the event's id (the text of its scene's `id` field,
/// or its position, `PATH:LINE`), and whether it was fraud.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct EventLabel {
    /// The id as its decisions name it: a string's own text, another
    /// value's JSON.
    pub(super) event: String,
    pub(super) fraud: bool,
    /// Its line in the labels file, for messages.
    pub(super) line: usize,
}

/// The id text of a decision's `event` or `position`, or of a label's
/// `event`: a string's own text, another value's JSON (`7`, `true`).
pub(super) fn id_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a backtest takes of the decision records, as the run makes them.
#[derive(Default)]
pub(super) struct Taking {
    /// The scenes in the order their first decision came.
    scenes: Vec<Taken>,
    /// The labels by event: id → (fraud, found in a decision yet).
    labels: hashbrown::HashMap<String, (bool, bool)>,
}

/// One scene's decisions, as they came.
#[derive(Default)]
struct Taken {
    scene: String,
    /// The outcomes' names in the order they came, and their counts.
    outcomes: Vec<(String, u64)>,
    late: u64,
    /// Per day of event time: the count of each outcome (by its place in
    /// `outcomes`).
    days: BTreeMap<i64, Vec<u64>>,
    /// Per outcome: labelled events (fraud, legit) that got it.
    labelled: Vec<(u64, u64)>,
}

/// The part of a decision record a backtest reads.
#[derive(Deserialize)]
struct Line {
    kind: String,
    scene: String,
    #[serde(default)]
    event: Option<serde_json::Value>,
    #[serde(default)]
    position: Option<serde_json::Value>,
    ts: i64,
    outcome: String,
    #[serde(default)]
    late: bool,
}

impl Taking {
    /// Taking decisions, with `labels` by event.
    pub(super) fn new(labels: &[EventLabel]) -> Taking {
        Taking {
            scenes: Vec::new(),
            labels: (labels.iter())
                .map(|l| (l.event.clone(), (l.fraud, false)))
                .collect(),
        }
    }

    /// Is `line` a decision record? (Then [`Taking::take`] takes it.)
    pub(super) fn is_decision(line: &[u8]) -> bool {
        line.starts_with(b"{\"kind\":\"decision\"")
    }

    /// Takes one decision record (anything else is left).
    pub(super) fn take(&mut self, line: &[u8]) {
        let Ok(d) = serde_json::from_slice::<Line>(line) else {
            return;
        };
        if d.kind != "decision" {
            return;
        }
        let s = match self.scenes.iter().position(|s| s.scene == d.scene) {
            Some(s) => s,
            None => {
                self.scenes.push(Taken {
                    scene: d.scene.clone(),
                    ..Taken::default()
                });
                self.scenes.len() - 1
            }
        };
        let scene = &mut self.scenes[s];
        let o = match scene.outcomes.iter().position(|(o, _)| *o == d.outcome) {
            Some(o) => o,
            None => {
                scene.outcomes.push((d.outcome, 0));
                scene.labelled.push((0, 0));
                scene.outcomes.len() - 1
            }
        };
        scene.outcomes[o].1 += 1;
        scene.late += u64::from(d.late);
        let day = scene.days.entry(d.ts.div_euclid(DAY)).or_default();
        if day.len() <= o {
            day.resize(o + 1, 0);
        }
        day[o] += 1;
        if self.labels.is_empty() {
            return;
        }
        let Some(id) = d.event.as_ref().or(d.position.as_ref()) else {
            return;
        };
        if let Some((fraud, found)) = self.labels.get_mut(&id_text(id)) {
            *found = true;
            let counts = &mut scene.labelled[o];
            if *fraud {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }

    /// The figures, each scene's outcomes in the order `order` gives
    /// them (the scene's declaration: mildest first; an outcome it does
    /// not declare after them), the scenes in `scenes`' order (those it
    /// names and no decision came for, with none).
    pub(super) fn figures(self, declared: &[(String, Vec<String>)], labelled: bool) -> Outcomes {
        let mut scenes: Vec<SceneMix> = Vec::new();
        let mut taken = self.scenes;
        for (name, outcomes) in declared {
            let t = match taken.iter().position(|t| t.scene == *name) {
                Some(i) => taken.remove(i),
                None => Taken {
                    scene: name.clone(),
                    ..Taken::default()
                },
            };
            scenes.push(SceneMix::of(t, outcomes));
        }
        scenes.extend(taken.into_iter().map(|t| SceneMix::of(t, &[])));
        let labels = labelled.then(|| {
            let (mut fraud, mut legit, mut unmatched) = (0, 0, 0);
            for (is_fraud, found) in self.labels.values() {
                if *is_fraud {
                    fraud += 1;
                } else {
                    legit += 1;
                }
                unmatched += u64::from(!found);
            }
            EventLabels {
                fraud,
                legit,
                unmatched,
            }
        });
        Outcomes { scenes, labels }
    }
}

/// The scenes' outcome mix.
pub(super) struct Outcomes {
    pub(super) scenes: Vec<SceneMix>,
    /// With labels by event: how many, and how many named no event a
    /// scene decided.
    pub(super) labels: Option<EventLabels>,
}

/// The labels by event, counted.
pub(super) struct EventLabels {
    fraud: u64,
    legit: u64,
    unmatched: u64,
}

/// One scene's figures.
pub(super) struct SceneMix {
    pub(super) scene: String,
    /// (outcome, decisions, (fraud, legit) among the labelled events).
    pub(super) outcomes: Vec<(String, u64, (u64, u64))>,
    pub(super) late: u64,
    /// Per day of event time (the day's first millisecond): the count of
    /// each outcome, in the order of `outcomes`.
    pub(super) days: Vec<(i64, Vec<u64>)>,
}

impl SceneMix {
    fn of(t: Taken, declared: &[String]) -> SceneMix {
        // (the declared outcomes first, in their order; those no
        // decision gave count 0)
        let mut order: Vec<usize> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for name in declared {
            names.push(name.clone());
            order.push(
                t.outcomes
                    .iter()
                    .position(|(o, _)| o == name)
                    .unwrap_or(usize::MAX),
            );
        }
        for (i, (o, _)) in t.outcomes.iter().enumerate() {
            if !declared.contains(o) {
                names.push(o.clone());
                order.push(i);
            }
        }
        let at = |row: &[u64], i: usize| row.get(i).copied().unwrap_or(0);
        let outcomes = (names.into_iter().zip(&order))
            .map(|(name, &i)| {
                let count = t.outcomes.get(i).map_or(0, |(_, n)| *n);
                (name, count, t.labelled.get(i).copied().unwrap_or((0, 0)))
            })
            .collect();
        let days = (t.days.into_iter())
            .map(|(day, row)| (day * DAY, order.iter().map(|&i| at(&row, i)).collect()))
            .collect();
        SceneMix {
            scene: t.scene,
            outcomes,
            late: t.late,
            days,
        }
    }

    /// Its decisions.
    pub(super) fn decisions(&self) -> u64 {
        self.outcomes.iter().map(|(_, n, _)| n).sum()
    }

    /// The fraud among its labelled decisions.
    fn fraud(&self) -> u64 {
        self.outcomes.iter().map(|(_, _, (f, _))| f).sum()
    }

    /// An outcome's precision (the fraud among the labelled events that
    /// got it) and recall (the share of the scene's labelled fraud that
    /// got it); `None` where there is nothing to divide by.
    pub(super) fn precision_recall(&self, o: usize) -> (Option<f64>, Option<f64>) {
        let (_, _, (fraud, legit)) = self.outcomes[o];
        let all_fraud = self.fraud();
        (
            (fraud + legit > 0).then(|| fraud as f64 / (fraud + legit) as f64),
            (all_fraud > 0).then(|| fraud as f64 / all_fraud as f64),
        )
    }
}

/// `n` and the word for it, one or many.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A share as a percentage with one decimal (`-` for none).
fn percent(part: Option<f64>) -> String {
    part.map_or_else(|| "-".to_string(), |p| format!("{:.1}%", p * 100.0))
}

/// A day's date (UTC), `YYYY-MM-DD`, from a millisecond of it.
pub(super) fn date(ms: i64) -> String {
    cepheid_decode::format_rfc3339(ms)[..10].to_string()
}

impl Outcomes {
    /// The text of the terminal: per scene, a line and its table.
    pub(super) fn text(&self, out: &mut String) {
        let labelled = self.labels.is_some();
        for s in &self.scenes {
            let total = s.decisions();
            let _ = write!(
                out,
                "scene {}: {}",
                s.scene,
                counted(total, "decision", "decisions")
            );
            if s.late > 0 {
                let _ = write!(out, ", {} late", s.late);
            }
            let days = counted(s.days.len() as u64, "day", "days");
            let _ = writeln!(out, ", over {days} of event time");
            let width = (s.outcomes.iter())
                .map(|(o, ..)| o.chars().count())
                .max()
                .unwrap_or(7)
                .max(7);
            let _ = write!(
                out,
                "  {:width$}  {:>9}  {:>6}",
                "outcome", "decisions", "share"
            );
            if labelled {
                let _ = write!(
                    out,
                    "  {:>6}  {:>6}  {:>9}  {:>6}",
                    "fraud", "legit", "precision", "recall"
                );
            }
            out.push('\n');
            for (i, (name, n, (fraud, legit))) in s.outcomes.iter().enumerate() {
                let share = (total > 0).then(|| *n as f64 / total as f64);
                let _ = write!(out, "  {name:width$}  {n:>9}  {:>6}", percent(share));
                if labelled {
                    let (p, r) = s.precision_recall(i);
                    let _ = write!(
                        out,
                        "  {fraud:>6}  {legit:>6}  {:>9}  {:>6}",
                        percent(p),
                        percent(r)
                    );
                }
                out.push('\n');
            }
        }
        if let Some(l) = &self.labels {
            let _ = writeln!(
                out,
                "labels by event: {} ({} fraud, {} legit); {} name no event a scene decided",
                l.fraud + l.legit,
                l.fraud,
                l.legit,
                l.unmatched
            );
        }
    }

    /// The JSON of each scene (`"scenes"`) and of the labels by event
    /// (`"event_labels"`), into `report`.
    pub(super) fn json_into(&self, report: &mut serde_json::Value) {
        let scenes: Vec<serde_json::Value> = (self.scenes.iter())
            .map(|s| {
                let total = s.decisions();
                let outcomes: Vec<serde_json::Value> = (s.outcomes.iter().enumerate())
                    .map(|(i, (name, n, (fraud, legit)))| {
                        let mut o = serde_json::json!({
                            "outcome": name,
                            "decisions": n,
                            "share": (total > 0).then(|| *n as f64 / total as f64),
                        });
                        if self.labels.is_some() {
                            let (p, r) = s.precision_recall(i);
                            o["fraud"] = (*fraud).into();
                            o["legit"] = (*legit).into();
                            o["precision"] = serde_json::json!(p);
                            o["recall"] = serde_json::json!(r);
                        }
                        o
                    })
                    .collect();
                let days: Vec<serde_json::Value> = (s.days.iter())
                    .map(|(day, counts)| {
                        let counts: serde_json::Map<String, serde_json::Value> =
                            (s.outcomes.iter())
                                .zip(counts)
                                .map(|((name, ..), n)| (name.clone(), (*n).into()))
                                .collect();
                        serde_json::json!({"day": date(*day), "counts": counts})
                    })
                    .collect();
                serde_json::json!({
                    "scene": s.scene,
                    "decisions": total,
                    "late": s.late,
                    "outcomes": outcomes,
                    "days": days,
                })
            })
            .collect();
        report["scenes"] = scenes.into();
        if let Some(l) = &self.labels {
            report["event_labels"] = serde_json::json!({
                "count": l.fraud + l.legit,
                "fraud": l.fraud,
                "legit": l.legit,
                "unmatched": l.unmatched,
            });
        }
    }
}

/// The colours of a scene's outcomes on the page, mildest first (the
/// last for the rest).
const COLOURS: [&str; 6] = [
    "#4c9a2a", "#e0a526", "#d9534f", "#8e44ad", "#2c7fb8", "#777777",
];

impl Outcomes {
    /// The page's section: per scene, the terminal's table and its
    /// outcomes per day of event time as stacked bars (an inline SVG, a
    /// title on each bar with its day and counts).
    pub(super) fn html(&self, out: &mut String) {
        use super::html::escape;
        out.push_str("<h2>Outcomes</h2>\n");
        if let Some(l) = &self.labels {
            let _ = writeln!(
                out,
                "<p id=\"event-labels\">Labels by event: {} ({} fraud, {} legit); {} name no event a scene decided.</p>",
                l.fraud + l.legit,
                l.fraud,
                l.legit,
                l.unmatched
            );
        }
        for (n, s) in self.scenes.iter().enumerate() {
            let total = s.decisions();
            let _ = writeln!(
                out,
                "<h3 id=\"scene-{n}\">Scene {}: {}{}</h3>",
                escape(&s.scene),
                counted(total, "decision", "decisions"),
                if s.late > 0 {
                    format!(", {} late", s.late)
                } else {
                    String::new()
                }
            );
            let _ = write!(out, "<table class=\"outcomes\" data-scene=\"{}\">\n<thead><tr><th>outcome</th><th>decisions</th><th>share</th>", escape(&s.scene));
            if self.labels.is_some() {
                out.push_str("<th>fraud</th><th>legit</th><th>precision</th><th>recall</th>");
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for (i, (name, count, (fraud, legit))) in s.outcomes.iter().enumerate() {
                let share = (total > 0).then(|| *count as f64 / total as f64);
                let colour = COLOURS[i.min(COLOURS.len() - 1)];
                let _ = write!(
                    out,
                    "<tr data-outcome=\"{0}\"><td><span class=\"swatch\" style=\"background:{colour}\"></span>{0}</td><td>{count}</td><td>{1}</td>",
                    escape(name),
                    percent(share)
                );
                if self.labels.is_some() {
                    let (p, r) = s.precision_recall(i);
                    let _ = write!(
                        out,
                        "<td>{fraud}</td><td>{legit}</td><td>{}</td><td>{}</td>",
                        percent(p),
                        percent(r)
                    );
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n");
            bars(out, n, s);
        }
    }
}

/// A scene's outcomes per day, stacked bars in an inline SVG.
fn bars(out: &mut String, n: usize, s: &SceneMix) {
    use super::html::escape;
    if s.days.is_empty() {
        return;
    }
    let (width, height) = (640.0_f64, 160.0_f64);
    let most = (s.days.iter())
        .map(|(_, row)| row.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let step = width / s.days.len() as f64;
    let bar = (step * 0.8).clamp(1.0, 48.0);
    let _ = writeln!(
        out,
        "<svg class=\"outcome-days\" id=\"scene-{n}-days\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"outcomes of scene {} per day\">",
        escape(&s.scene)
    );
    // (a date under each bar when they fit)
    let dated = s.days.len() <= 31;
    let room = if dated { height - 14.0 } else { height };
    for (d, (day, row)) in s.days.iter().enumerate() {
        let x = d as f64 * step;
        let mut y = room;
        let counts: Vec<String> = (s.outcomes.iter())
            .zip(row)
            .map(|((name, ..), c)| format!("{name} {c}"))
            .collect();
        let _ = write!(
            out,
            "<g><title>{}: {}</title>",
            date(*day),
            escape(&counts.join(", "))
        );
        for (i, c) in row.iter().enumerate().filter(|(_, c)| **c > 0) {
            let h = *c as f64 / most * room;
            y -= h;
            let colour = COLOURS[i.min(COLOURS.len() - 1)];
            let _ = write!(
                out,
                "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{bar:.2}\" height=\"{h:.2}\" fill=\"{colour}\"/>"
            );
        }
        if dated {
            let _ = write!(
                out,
                "<text x=\"{:.2}\" y=\"{:.2}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                height - 3.0,
                &date(*day)[5..]
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_date_is_its_civil_date() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(DAY - 1), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        // 2024-02-29 (a leap day) and 2026-11-28
        assert_eq!(date(19_782 * DAY), "2024-02-29");
        assert_eq!(date(20_785 * DAY + 5), "2026-11-28");
    }

    /// The mix counts each decision once, per outcome and per day, the
    /// declared outcomes first; labels count by id or position.
    #[test]
    fn decisions_are_counted_by_outcome_day_and_label() {
        let labels = [
            EventLabel {
                event: "p1".into(),
                fraud: true,
                line: 1,
            },
            EventLabel {
                event: "p2".into(),
                fraud: false,
                line: 2,
            },
            EventLabel {
                event: "e.jsonl:3".into(),
                fraud: true,
                line: 3,
            },
            EventLabel {
                event: "nowhere".into(),
                fraud: true,
                line: 4,
            },
        ];
        let mut taking = Taking::new(&labels);
        for line in [
            r#"{"kind":"decision","scene":"pay","event":"p1","ts":5,"outcome":"review","score":70,"rules":[]}"#,
            r#"{"kind":"decision","scene":"pay","event":"p2","ts":6,"outcome":"approve","score":0,"rules":[]}"#,
            r#"{"kind":"decision","scene":"pay","position":"e.jsonl:3","ts":86400001,"outcome":"review","score":0,"rules":[],"late":true}"#,
            r#"{"kind":"decision","scene":"other","event":"p1","ts":7,"outcome":"x","score":0,"rules":[]}"#,
        ] {
            assert!(Taking::is_decision(line.as_bytes()));
            taking.take(line.as_bytes());
        }
        let declared = [(
            "pay".to_string(),
            vec![
                "approve".to_string(),
                "review".to_string(),
                "decline".to_string(),
            ],
        )];
        let o = taking.figures(&declared, true);
        let pay = &o.scenes[0];
        assert_eq!(
            pay.outcomes,
            [
                ("approve".to_string(), 1, (0, 1)),
                ("review".to_string(), 2, (2, 0)),
                ("decline".to_string(), 0, (0, 0)),
            ]
        );
        assert_eq!(pay.days, [(0, vec![1, 1, 0]), (DAY, vec![0, 1, 0])]);
        assert_eq!((pay.late, pay.decisions()), (1, 3));
        assert_eq!(pay.precision_recall(1), (Some(1.0), Some(1.0)));
        assert_eq!(pay.precision_recall(0), (Some(0.0), Some(0.0)));
        assert_eq!(pay.precision_recall(2), (None, Some(0.0)));
        assert_eq!(o.scenes[1].scene, "other");
        let l = o.labels.as_ref().unwrap();
        assert_eq!((l.fraud, l.legit, l.unmatched), (3, 1, 1));
        let mut text = String::new();
        o.text(&mut text);
        assert!(
            text.contains("scene pay: 3 decisions, 1 late, over 2 days of event time"),
            "{text}"
        );
        assert!(
            text.contains("scene other: 1 decision, over 1 day of event time"),
            "{text}"
        );
        assert!(
            text.contains("labels by event: 4 (3 fraud, 1 legit); 1 name no event a scene decided"),
            "{text}"
        );
        let mut json = serde_json::json!({});
        o.json_into(&mut json);
        assert_eq!(json["scenes"][0]["days"][1]["day"], "1970-01-02");
        assert_eq!(json["scenes"][0]["outcomes"][1]["precision"], 1.0);
    }
}
