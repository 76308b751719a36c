//! Decisions against a reference independent of the engine's decision
//! code (issue 62): random rule sets and streams (sequences, `not followed
//! by` endings, timeouts, a rule that writes a list another reads and a
//! scene checks, an indicator, a shadow rule, a rule held by two scenes,
//! events of no scene, disorder and late events) run twice: with their
//! scenes, giving decision records, and without, giving alerts only. The
//! reference groups the second run's matches by the event that ended them
//! and resolves each scene's outcome by the policy of `docs/language.md`
//! §11.3 in a few lines of its own (never `Scene::resolve`); the two must
//! agree, with one decision per event and scene it enters (none doubled,
//! none missing), the two runs' alerts must be the same (alerts stay as
//! they are), and the rules must fire on at least 20% of the events
//! over all cases. `CEPHEID_PROPTEST_CASES` sets the number of cases
//! (default 64).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cepheid_engine::{Decision, Engine, MatchRef, Output, Record, Rules, Sink, Timestamp};
use cepheid_runtime::jsonl::Formatter;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// A rule's attributes: its score and action (0 none, 1 review, 2
/// block: the outcome it gives in both scenes).
#[derive(Clone, Debug)]
struct Attrs {
    score: Option<u8>,
    action: u8,
}

impl Attrs {
    fn text(&self) -> String {
        let mut s = String::new();
        if let Some(score) = self.score {
            s += &format!(" score {score}");
        }
        match self.action {
            1 => s += " action review",
            2 => s += " action block",
            _ => {}
        }
        s
    }
}

/// The rules, by name, in the order written; which end with `not followed
/// by` (their matches complete at a deadline), which are shadow ones.
const RULES: [&str; 8] = [
    "seq",
    "unanswered",
    "timed",
    "writer",
    "reader",
    "busy",
    "trial",
    "single",
];
const NOT_FOLLOWED: [&str; 1] = ["unanswered"];
const SHADOW: [&str; 1] = ["trial"];

#[derive(Clone, Debug)]
struct Scene {
    /// Indexes of `RULES` it holds, in its order.
    rules: Vec<usize>,
    /// `review if score >= t1`, `decline if score >= t2`.
    t1: u8,
    t2: u8,
    /// `default`, `late`: outcomes 0..3.
    default: u8,
    late: u8,
    hit_first: bool,
    /// `decline if u in L` first.
    list_check: bool,
}

#[derive(Clone, Debug)]
struct Case {
    attrs: Vec<Attrs>,
    window: u8,
    k_writer: u8,
    k_busy: u8,
    k_trial: u8,
    k_single: u8,
    /// Scene `two`'s `when v > k_two`.
    k_two: u8,
    scenes: [Scene; 2],
    max_delay: u8,
    /// (type, u, v, time step, lag): each event's time is the running
    /// time (steps summed) less its lag.
    events: Vec<(u8, u8, u8, u8, u8)>,
    /// The part (of three) each rule runs in when the rule set runs in
    /// parts (`decided_in_parts`).
    parts: Vec<u8>,
}

const TYPES: [&str; 5] = ["a", "b", "c", "pay", "x"];

fn attrs() -> impl Strategy<Value = Attrs> {
    (prop::option::of(0u8..80), 0u8..3).prop_map(|(score, action)| Attrs { score, action })
}

fn scene() -> impl Strategy<Value = Scene> {
    (
        prop::sample::subsequence((0..RULES.len()).collect::<Vec<_>>(), 1..=RULES.len()),
        Just(()).prop_perturb(|_, mut rng| {
            // a permutation of the subsequence's order, sometimes
            rng.next_u32()
        }),
        1u8..100,
        1u8..100,
        0u8..3,
        0u8..3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(mut rules, turn, a, b, default, late, hit_first, list_check)| {
                // `single` is held by both scenes.
                let single = RULES.len() - 1;
                if !rules.contains(&single) {
                    rules.push(single);
                }
                let n = rules.len();
                rules.rotate_left(turn as usize % n);
                let (t1, t2) = (a.min(b), a.max(b).max(a.min(b) + 1));
                Scene {
                    rules,
                    t1,
                    t2,
                    default,
                    late,
                    hit_first,
                    list_check,
                }
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(attrs(), RULES.len()),
        (5u8..40, 0u8..10, 1u8..4, 0u8..10, 0u8..8, 0u8..10),
        (scene(), scene()),
        0u8..6,
        prop::collection::vec((0u8..5, 0u8..3, 0u8..10, 0u8..4, 0u8..8), 10..60),
        prop::collection::vec(0u8..3, RULES.len()),
    )
        .prop_map(
            |(
                attrs,
                (window, k_writer, k_busy, k_trial, k_single, k_two),
                (s1, s2),
                max_delay,
                events,
                parts,
            )| {
                Case {
                    attrs,
                    window,
                    k_writer,
                    k_busy,
                    k_trial,
                    k_single,
                    k_two,
                    scenes: [s1, s2],
                    max_delay,
                    events,
                    parts,
                }
            },
        )
}

impl Case {
    /// The patterns' text (the reference runs it alone).
    fn patterns(&self) -> String {
        let a = |i: usize| self.attrs[i].text();
        let w = self.window;
        format!(
            r#"
            list L
            indicator n = count() group by u within {w}ms
            pattern seq {{ partition by u{} match a followed by b
                where a: type == "a"
                      b: type == "b" }}
            pattern unanswered {{ partition by u within {w}ms{} match a not followed by c
                where a: type == "a"
                      c: type == "c" }}
            pattern timed {{ partition by u within {w}ms timeouts{} match a followed by c
                where a: type == "a"
                      c: type == "c" }}
            pattern writer {{{} match p where p: type == "c" and v > {} then add p.u to L }}
            pattern reader {{{} match p where p: u in L }}
            pattern busy {{ partition by u{} match p where p: n(u) >= {} }}
            pattern trial {{ shadow{} match p where p: v > {} }}
            pattern single {{{} match p where p: v > {} }}
            "#,
            a(0),
            a(1),
            a(2),
            a(3),
            self.k_writer,
            a(4),
            a(5),
            self.k_busy,
            a(6),
            self.k_trial,
            a(7),
            self.k_single,
        )
    }

    /// The patterns and the two scenes.
    fn with_scenes(&self) -> String {
        let outcomes = ["approve", "review", "decline"];
        let mut text = self.patterns();
        for (name, when, s) in [
            (
                "one",
                r#"type == "b" or type == "pay""#.to_string(),
                &self.scenes[0],
            ),
            ("two", format!("v > {}", self.k_two), &self.scenes[1]),
        ] {
            let rules: Vec<&str> = s.rules.iter().map(|&i| RULES[i]).collect();
            text += &format!(
                "scene {name} {{ when {when} id id rules {}
                    outcomes approve < review < decline default {} late {}
                    {} review if action review decline if action block
                    review if score >= {} decline if score >= {}
                    hit {} fallback review deadline 100ms }}\n",
                rules.join(", "),
                outcomes[s.default as usize],
                outcomes[s.late as usize],
                if s.list_check {
                    "decline if u in L"
                } else {
                    ""
                },
                s.t1,
                s.t2,
                if s.hit_first { "first" } else { "all" },
            );
        }
        text
    }

    /// The input lines.
    fn lines(&self) -> Vec<String> {
        let mut now = 100i64;
        (self.events.iter().enumerate())
            .map(|(id, &(t, u, v, step, lag))| {
                now += i64::from(step);
                let ts = now - i64::from(lag);
                format!(
                    r#"{{"ts": {ts}, "id": {id}, "type": "{}", "u": {u}, "v": {v}}}"#,
                    TYPES[t as usize]
                )
            })
            .collect()
    }

    /// Does event `e` (type, v) enter scene `s`?
    fn enters(&self, s: usize, ty: &str, v: i64) -> bool {
        match s {
            0 => ty == "b" || ty == "pay",
            _ => v > i64::from(self.k_two),
        }
    }
}

/// An event's fields the reference reads.
#[derive(Clone, Debug)]
struct Ev {
    id: i64,
    ts: Timestamp,
    ty: String,
    u: i64,
    v: i64,
}

fn ev(record: &Record) -> Ev {
    let j: serde_json::Value = serde_json::from_str(record.raw()).unwrap();
    Ev {
        id: j["id"].as_i64().unwrap(),
        ts: j["ts"].as_i64().unwrap(),
        ty: j["type"].as_str().unwrap().to_string(),
        u: j["u"].as_i64().unwrap(),
        v: j["v"].as_i64().unwrap(),
    }
}

/// A decision as compared: scene, event id, outcome, score, the counted
/// and uncounted rules, the shadow ones, list-decided, late.
type Compared = (
    String,
    i64,
    String,
    i64,
    Vec<String>,
    Vec<String>,
    bool,
    bool,
);

/// The decisions, and the alerts as the JSON lines of `cepheid run`.
#[derive(Default)]
struct Decisions(Vec<Decision>, Alerts);

/// Alerts as the JSON lines of `cepheid run` (`cepheid_runtime::jsonl::Formatter`).
#[derive(Default)]
struct Alerts(Formatter, Vec<String>);

impl Alerts {
    fn keep(&mut self, line: &[u8]) {
        self.1.push(String::from_utf8_lossy(line).into_owned());
    }
}

impl Sink<Record> for Alerts {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        let line = self.0.record("match", m, None).to_vec();
        self.keep(&line);
    }
    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        let line = self.0.record("timeout", m, Some(expired_at)).to_vec();
        self.keep(&line);
    }
    fn on_late(&mut self, _: Timestamp, event: &Record) {
        let line = self.0.late(event).to_vec();
        self.keep(&line);
    }
}

impl Sink<Record> for Decisions {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        self.1.on_match(m);
    }
    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.1.on_timeout(m, expired_at);
    }
    fn on_late(&mut self, ts: Timestamp, event: &Record) {
        self.1.on_late(ts, event);
    }
    fn on_decision(&mut self, d: &Decision) {
        self.0.push(d.clone());
    }
}

fn engine_of(text: &str, max_delay: u8) -> Engine<Record> {
    let rules = Rules::parse("p.cep", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut engine: Engine<Record> =
        Engine::with_max_delay(Duration::from_millis(u64::from(max_delay)));
    engine.add(&rules).unwrap();
    engine
}

/// One engine's decisions, whole.
fn one_engines(case: &Case) -> Vec<Decision> {
    let mut engine = engine_of(&case.with_scenes(), case.max_delay);
    let mut out = Decisions::default();
    for line in case.lines() {
        engine.push_json(&line, "ts", &mut out).unwrap();
    }
    engine.finish(&mut out);
    out.0
}

/// The engine's decisions, and its alerts (as JSON lines).
fn decided(case: &Case) -> (Vec<Compared>, Vec<String>) {
    let mut engine = engine_of(&case.with_scenes(), case.max_delay);
    let mut out = Decisions::default();
    for line in case.lines() {
        engine.push_json(&line, "ts", &mut out).unwrap();
    }
    engine.finish(&mut out);
    let alerts = out.1 .1;
    let decisions = out
        .0
        .iter()
        .map(|d| {
            let names = |rules: &[cepheid_engine::Fired]| {
                rules
                    .iter()
                    .map(|f| format!("{}{}", f.rule, if f.counted { "" } else { "?" }))
                    .collect::<Vec<_>>()
            };
            let id = match &d.event {
                cepheid_engine::Value::Int(i) => *i,
                other => panic!("an id: {other:?}"),
            };
            (
                d.scene.to_string(),
                id,
                d.outcome.to_string(),
                d.score as i64,
                names(&d.rules),
                d.shadow.iter().map(|f| f.rule.clone()).collect(),
                d.list.is_some(),
                d.late,
            )
        })
        .collect();
    (decisions, alerts)
}

/// The decisions of the rule set run in parts, as workers run it: each
/// part an engine holding some of the patterns (`Case::parts`; the list
/// `L`'s reader in its writer's part, since here no loop carries a part's
/// writes to the others as the workers' does) and every scene
/// ([`Engine::set_scenes_in_part`]), every event pushed to each;
/// each event's parts gathered by [`Decision::gather`]. In the order of
/// one engine's decisions (the first part's order).
fn decided_in_parts(case: &Case) -> Vec<Decision> {
    let whole = Rules::parse("p.cep", &case.with_scenes()).unwrap();
    let all = engine_of(&case.patterns(), case.max_delay);
    let patterns: Vec<_> = whole.patterns().iter().collect();
    let part_of = |rule: usize| match RULES[rule] {
        "reader" => case.parts[3],
        _ => case.parts[rule],
    };
    let mut parts: Vec<(Engine<Record>, Decisions)> = (0..3)
        .map(|part| {
            let mut engine: Engine<Record> =
                Engine::with_max_delay(Duration::from_millis(u64::from(case.max_delay)));
            engine.set_declarations(all.declarations()).unwrap();
            for (rule, nfa) in all.automata().enumerate() {
                if part_of(rule) == part {
                    engine.add_shared(nfa).unwrap();
                }
            }
            engine
                .set_scenes_in_part(whole.scenes(), &patterns)
                .unwrap();
            (engine, Decisions::default())
        })
        .collect();
    for line in case.lines() {
        for (engine, out) in &mut parts {
            engine.push_json(&line, "ts", out).unwrap();
        }
    }
    for (engine, out) in &mut parts {
        engine.finish(out);
    }
    // Each event's parts, by scene and event, in the first part's order.
    let mut by_event: BTreeMap<(String, String), Vec<&Decision>> = BTreeMap::new();
    for (_, out) in &parts {
        for d in &out.0 {
            let key = (d.scene.to_string(), format!("{:?}", d.event));
            by_event.entry(key).or_default().push(d);
        }
    }
    parts[0]
        .1
         .0
        .iter()
        .map(|d| {
            let got = &by_event[&(d.scene.to_string(), format!("{:?}", d.event))];
            assert_eq!(got.len(), parts.len(), "a part's decision missing");
            let scene = whole.scenes().iter().find(|s| *s.name == *d.scene).unwrap();
            Decision::gather(scene, got.iter().copied()).unwrap()
        })
        .collect()
}

/// The reference: the alerts of the rules without scenes, grouped by the
/// event that ended each match, resolved by the documented policy.
/// Returns the decisions, the number of events some rule fired on, and
/// the alerts (as JSON lines).
fn reference(case: &Case) -> (Vec<Compared>, usize, Vec<String>) {
    let mut engine = engine_of(&case.patterns(), case.max_delay);
    let mut out: Vec<Output<Record>> = Vec::new();
    let mut events: Vec<Ev> = Vec::new();
    for line in case.lines() {
        engine.push_json(&line, "ts", &mut out).unwrap();
    }
    engine.finish(&mut out);
    for line in case.lines() {
        let j: serde_json::Value = serde_json::from_str(&line).unwrap();
        events.push(Ev {
            id: j["id"].as_i64().unwrap(),
            ts: j["ts"].as_i64().unwrap(),
            ty: j["type"].as_str().unwrap().to_string(),
            u: j["u"].as_i64().unwrap(),
            v: j["v"].as_i64().unwrap(),
        });
    }
    // The rules that fired on each event (by id), and the list's entries
    // (u, the time of the writer's event: seen from the next millisecond).
    let mut fired: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    let mut late: BTreeSet<i64> = BTreeSet::new();
    let mut listed: Vec<(i64, Timestamp)> = Vec::new();
    for o in &out {
        match o {
            Output::Match(m) => {
                let last = ev(m.stages.last().unwrap().1.last().unwrap());
                let rule = RULES.iter().find(|r| **r == m.pattern).unwrap();
                if m.pattern == "writer" {
                    listed.push((last.u, last.ts));
                }
                if !NOT_FOLLOWED.contains(rule) {
                    fired.entry(last.id).or_default().insert(rule);
                }
            }
            Output::Late { event, .. } => {
                late.insert(ev(event).id);
            }
            _ => {}
        }
    }
    let outcomes = ["approve", "review", "decline"];
    let mut decisions = Vec::new();
    for e in &events {
        for (s, name) in ["one", "two"].into_iter().enumerate() {
            if !case.enters(s, &e.ty, e.v) {
                continue;
            }
            let scene = &case.scenes[s];
            if late.contains(&e.id) {
                let late = outcomes[scene.late as usize].to_string();
                decisions.push((name.into(), e.id, late, 0, vec![], vec![], false, true));
                continue;
            }
            let on = fired.get(&e.id).cloned().unwrap_or_default();
            let held: Vec<usize> = (scene.rules.iter().copied())
                .filter(|&i| on.contains(RULES[i]))
                .collect();
            let live: Vec<usize> = (held.iter().copied())
                .filter(|&i| !SHADOW.contains(&RULES[i]))
                .collect();
            let score = |rules: &[usize]| -> i64 {
                (rules.iter())
                    .map(|&i| i64::from(case.attrs[i].score.unwrap_or(0)))
                    .sum()
            };
            // The most severe outcome `rules` give (actions, thresholds).
            let given = |rules: &[usize]| -> Option<u8> {
                let sum = score(rules);
                let by_score = if sum >= i64::from(scene.t2) {
                    Some(2)
                } else if sum >= i64::from(scene.t1) {
                    Some(1)
                } else {
                    None
                };
                let by_action = rules.iter().map(|&i| case.attrs[i].action).max();
                let by_action = by_action.filter(|&a| a > 0);
                if rules.is_empty() {
                    None
                } else {
                    by_action.max(by_score)
                }
            };
            let counted: Vec<usize> = if scene.hit_first {
                live.iter()
                    .copied()
                    .find(|&i| given(&[i]).is_some())
                    .into_iter()
                    .collect()
            } else {
                live.clone()
            };
            let in_list = scene.list_check && listed.iter().any(|&(u, t)| u == e.u && t < e.ts);
            let outcome = if in_list {
                2
            } else {
                given(&counted).unwrap_or(scene.default)
            };
            let rules = (live.iter())
                .map(|&i| {
                    format!(
                        "{}{}",
                        RULES[i],
                        if counted.contains(&i) { "" } else { "?" }
                    )
                })
                .collect();
            let shadow = (held.iter())
                .filter(|&&i| SHADOW.contains(&RULES[i]))
                .map(|&i| RULES[i].to_string())
                .collect();
            decisions.push((
                name.into(),
                e.id,
                outcomes[outcome as usize].into(),
                score(&counted),
                rules,
                shadow,
                in_list,
                false,
            ));
        }
    }
    let mut lines = Alerts::default();
    let mut again = engine_of(&case.patterns(), case.max_delay);
    for line in case.lines() {
        again.push_json(&line, "ts", &mut lines).unwrap();
    }
    again.finish(&mut lines);
    (decisions, fired.len(), lines.1)
}

#[test]
fn decisions_agree_with_the_reference() {
    let cases = std::env::var("CEPHEID_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let totals = std::cell::Cell::new((0usize, 0usize, 0usize));
    runner
        .run(&case(), |case| {
            // The rule set run in parts, gathered: one engine's decisions,
            // whole (rules with their reads, missing fields, list, late).
            let whole = one_engines(&case);
            prop_assert_eq!(decided_in_parts(&case), whole, "{}", case.with_scenes());
            let (mut got, alerts) = decided(&case);
            let (mut want, firing, plain) = reference(&case);
            // The alerts are those of the rules without scenes.
            prop_assert_eq!(alerts, plain);
            let key = |d: &Compared| (d.0.clone(), d.1);
            got.sort_by_key(key);
            want.sort_by_key(key);
            // None doubled, none missing.
            let ids: BTreeSet<(String, i64)> = got.iter().map(key).collect();
            prop_assert_eq!(ids.len(), got.len(), "a decision doubled");
            prop_assert_eq!(got.len(), want.len(), "{}", case.with_scenes());
            for (g, w) in got.iter().zip(&want) {
                prop_assert_eq!(g, w, "{}", case.with_scenes());
            }
            let (events, fired, late) = totals.get();
            let lates = want.iter().filter(|d| d.7).count();
            totals.set((events + case.events.len(), fired + firing, late + lates));
            Ok::<(), TestCaseError>(())
        })
        .unwrap();
    let (events, fired, late) = totals.get();
    assert!(
        fired * 5 >= events,
        "rules fired on {fired} of {events} events: the cases test too little"
    );
    assert!(late > 0, "no late event in any case");
}
