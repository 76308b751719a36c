//! `Engine::why` fed as a service's run feeds its engine (issue 63,
//! `cepheid why KEY --events wal:DIR`): requests taken at once into the
//! scene they name (`Why::request`), retries answered from memory, ticks,
//! changes of a list at their place (`Why::add_to_list_by`) and changes
//! of rules (`Why::set_rules`). A traced engine answers each request as a
//! plain one does, with the same output, and its trace agrees with that
//! output: a match per `Matched` (of the version that made it), a
//! timeout per window reported closed, a rule's instance not made on an
//! event of another scene (`NotMade`), the partial matches a change of
//! rules dropped `Discarded`, and a retry is no second event of the key.

use std::collections::BTreeSet;
use std::sync::Arc;

use cepheid_core::record::FieldTable;
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::why::{End, Trace, Why};
use cepheid_engine::engine::{Answer, Changes, EntryOrigin, ReloadPolicy, Request};
use cepheid_engine::{Engine, Output, Record, Rules, Value};

/// The rules the engines start with.
const RULES: &str = r#"
list blocked
indicator payments = count() where type == "payment" group by card within 1h
pattern big { partition by card within 1m timeouts
    match p followed by q where p: amount > 100 q: amount > 100 }
pattern busy { partition by card action review
    match p where p: type == "payment" and payments(card) >= 3 }
pattern listed { partition by card action review match p where p: card in blocked }
pattern pair { partition by card within 10m
    match p followed by q where p: amount > 150 q: amount < 20 }
pattern over(min: int) { partition by card action review match p where p: amount > min }
scene a {
    when type == "payment"
    rules busy, over, listed
    with min = 50
    outcomes approve < review
    review if action review
    fallback approve
    deadline 100ms
}
scene b {
    when type == "payment"
    rules big, busy, over
    with min = 150
    outcomes approve < review
    review if action review
    fallback approve
    deadline 100ms
}
"#;

/// The first change (drained): `big`'s window longer (its version 2),
/// `listed` removed, `pair` put in shadow (the same states: its partial
/// matches go on).
const V2: &str = r#"
list blocked
indicator payments = count() where type == "payment" group by card within 1h
pattern big { partition by card within 2m timeouts
    match p followed by q where p: amount > 100 q: amount > 100 }
pattern busy { partition by card action review
    match p where p: type == "payment" and payments(card) >= 3 }
pattern pair { partition by card within 10m shadow
    match p followed by q where p: amount > 150 q: amount < 20 }
pattern over(min: int) { partition by card action review match p where p: amount > min }
scene a {
    when type == "payment"
    rules busy, over
    with min = 50
    outcomes approve < review
    review if action review
    fallback approve
    deadline 100ms
}
scene b {
    when type == "payment"
    rules big, busy, over
    with min = 150
    outcomes approve < review
    review if action review
    fallback approve
    deadline 100ms
}
"#;

/// The second change (restarted): `big`'s window longer again (version
/// 3, version 2's partial matches discarded), `listed` back (version 1,
/// anew), `pair` out of shadow.
const V3: &str = r#"
list blocked
indicator payments = count() where type == "payment" group by card within 1h
pattern big { partition by card within 3m timeouts
    match p followed by q where p: amount > 100 q: amount > 100 }
pattern busy { partition by card action review
    match p where p: type == "payment" and payments(card) >= 3 }
pattern listed { partition by card action review match p where p: card in blocked }
pattern pair { partition by card within 10m
    match p followed by q where p: amount > 150 q: amount < 20 }
pattern over(min: int) { partition by card action review match p where p: amount > min }
scene a {
    when type == "payment"
    rules busy, over, listed
    with min = 50
    outcomes approve < review
    review if action review
    fallback approve
    deadline 100ms
}
scene b {
    when type == "payment"
    rules big, busy, over
    with min = 150
    outcomes approve < review
    review if action review
    fallback approve
    deadline 100ms
}
"#;

/// One input of a service's run: a request (its time, id, scene and
/// event), a tick (a watermark), a change of the list `blocked` (a card
/// added or removed, from the watermark + 1 on, as the run makes a logged
/// `$list` change), or a change of rules (to [`V2`], drained, or [`V3`],
/// restarted).
#[derive(Clone)]
enum Step {
    Request(i64, Value, Option<&'static str>, String),
    Watermark(i64),
    List(bool, String),
    Rules(&'static str, ReloadPolicy),
}

/// 600 inputs over four cards from a fixed linear congruential
/// generator: requests into scene `a`, `b` or none, now and then a
/// retry of an earlier id, an event of no id, a tick, or a card blocked
/// or let go; the rules change at the 200th and the 400th.
fn steps() -> Vec<Step> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut at: i64 = 1_000;
    let mut asked: Vec<Step> = Vec::new();
    let mut steps = Vec::new();
    for n in 0..600 {
        at += next(20_000) as i64;
        let step = match (n, next(10)) {
            (200, _) => Step::Rules(V2, ReloadPolicy::Drain),
            (400, _) => Step::Rules(V3, ReloadPolicy::Restart),
            (_, 0) if !asked.is_empty() => asked[next(asked.len() as u64) as usize].clone(),
            (_, 1) => Step::Watermark(at - 1),
            (_, 3) if next(2) == 0 => Step::List(next(2) == 0, format!("c{}", next(4))),
            (_, roll) => {
                let scene = [Some("a"), Some("b"), None][next(3) as usize];
                let id = match roll {
                    2 => Value::Null,
                    _ => Value::from(format!("p{n}")),
                };
                let event = format!(
                    r#"{{"n":{n},"type":"payment","card":"c{}","amount":{}}}"#,
                    next(4),
                    next(200)
                );
                let step = Step::Request(at, id, scene, event);
                asked.push(step.clone());
                step
            }
        };
        // (a retry keeps its event and scene, at the time it comes again)
        steps.push(match step {
            Step::Request(_, id, scene, event) => Step::Request(at, id, scene, event),
            other => other,
        });
    }
    steps
}

/// The origin of the changes of `blocked`: a log's `$list` records'.
const ORIGIN: EntryOrigin = EntryOrigin::Records;

/// What a run gives its engine, a plain one or one that traces a key.
trait Takes {
    fn fields(&self) -> FieldTable;
    fn take(&mut self, at: i64, request: Request, event: Record, out: &mut Out) -> Answer;
    fn watermark(&mut self, t: i64, out: &mut Out);
    fn current_watermark(&self) -> Option<i64>;
    fn list(&mut self, add: bool, card: &str, at: i64);
    fn rules(&mut self, rules: &Rules, policy: ReloadPolicy, out: &mut Out) -> Changes;
}

type Out = Vec<Output<Record>>;

impl Takes for Engine<Record> {
    fn fields(&self) -> FieldTable {
        Engine::fields(self).clone()
    }
    fn take(&mut self, at: i64, request: Request, event: Record, out: &mut Out) -> Answer {
        self.request(at, request, event, out)
    }
    fn watermark(&mut self, t: i64, out: &mut Out) {
        Engine::watermark(self, t, out);
    }
    fn current_watermark(&self) -> Option<i64> {
        Engine::current_watermark(self)
    }
    fn list(&mut self, add: bool, card: &str, at: i64) {
        let value = Value::from(card);
        match add {
            true => self.add_to_list_by(&ORIGIN, "blocked", value, at, None),
            false => self.remove_from_list_by(&ORIGIN, "blocked", value, at),
        }
        .unwrap();
    }
    fn rules(&mut self, rules: &Rules, policy: ReloadPolicy, out: &mut Out) -> Changes {
        self.set_rules(rules, policy, out).unwrap()
    }
}

impl Takes for Why<Record> {
    fn fields(&self) -> FieldTable {
        Why::fields(self).clone()
    }
    fn take(&mut self, at: i64, request: Request, event: Record, out: &mut Out) -> Answer {
        self.request(at, request, event, out)
    }
    fn watermark(&mut self, t: i64, out: &mut Out) {
        Why::watermark(self, t, out);
    }
    fn current_watermark(&self) -> Option<i64> {
        Why::current_watermark(self)
    }
    fn list(&mut self, add: bool, card: &str, at: i64) {
        let value = Value::from(card);
        match add {
            true => self.add_to_list_by(&ORIGIN, "blocked", value, at, None),
            false => self.remove_from_list_by(&ORIGIN, "blocked", value, at),
        }
        .unwrap();
    }
    fn rules(&mut self, rules: &Rules, policy: ReloadPolicy, out: &mut Out) -> Changes {
        self.set_rules(rules, policy, out).unwrap()
    }
}

/// `steps` given to `engine`: its answers, output and changes of rules.
fn drive(engine: &mut impl Takes, steps: &[Step]) -> (Vec<Answer>, Out, Vec<Changes>) {
    let (mut answers, mut out, mut changes) = (Vec::new(), Vec::new(), Vec::new());
    for step in steps {
        match step {
            Step::Request(at, id, scene, text) => {
                let request = Request {
                    id: id.clone(),
                    scene: scene.map(Arc::from),
                    note: Arc::from(&b""[..]),
                    position: Some(Value::from("here")),
                    dry_run: false,
                    shed_shadow: false,
                };
                let event = event(&engine.fields(), text);
                answers.push(engine.take(*at, request, event, &mut out));
            }
            Step::Watermark(t) => engine.watermark(*t, &mut out),
            Step::List(add, card) => {
                let at = engine.current_watermark().map_or(i64::MIN, |w| w + 1);
                engine.list(*add, card, at);
            }
            Step::Rules(text, policy) => {
                let rules = Rules::parse("changed.cep", text).unwrap();
                changes.push(engine.rules(&rules, *policy, &mut out));
            }
        }
    }
    (answers, out, changes)
}

/// The event of `text` for an engine's fields (no time field: a request
/// takes its time).
fn event(fields: &FieldTable, text: &str) -> Record {
    let mut decoder = Decoder::new(Format::JsonLines, "ts", fields.clone()).without_time();
    match decoder.decode(text.as_bytes()).unwrap() {
        Item::Event(_, record) => record,
        other => panic!("not an event: {other:?}"),
    }
}

/// The distinct partial matches of each kind of output for a key, by
/// pattern, version and their events (each its field `n`), and the same
/// of the trace's ends.
type Chains = BTreeSet<(String, u32, Vec<i64>)>;

/// An event's field `n`: its number in the stream.
fn number(event: &Record) -> i64 {
    let json: serde_json::Value = serde_json::from_str(event.raw()).unwrap();
    json["n"].as_i64().unwrap()
}

fn outputs(out: &[Output<Record>], key: &Value, timeouts: bool) -> Chains {
    (out.iter())
        .filter(|o| match timeouts {
            false => matches!(o, Output::Match(_)),
            true => matches!(o, Output::Timeout { .. }),
        })
        .filter_map(Output::as_match)
        .filter(|m| m.key == [key.clone()])
        .map(|m| {
            let mut events: Vec<i64> = (m.stages.iter())
                .flat_map(|(_, events)| events.iter().map(number))
                .collect();
            events.sort_unstable();
            (m.pattern.clone(), m.version, events)
        })
        .collect()
}

fn ends(trace: &Trace<Record>, f: fn(&End) -> bool) -> Chains {
    (trace.patterns.iter())
        .flat_map(|p| p.runs.iter().map(move |r| (p, r)))
        .filter(|(_, r)| r.end.as_ref().is_some_and(f))
        .map(|(p, r)| {
            let mut events: Vec<i64> = (r.events.iter())
                .map(|(seq, _)| number(&trace.events[seq].1))
                .collect();
            events.sort_unstable();
            (p.name.clone(), p.version, events)
        })
        .collect()
}

#[test]
fn a_traced_engine_takes_a_services_inputs_as_a_plain_one_and_its_trace_agrees() {
    let rules = Rules::parse("requests.cep", RULES).unwrap();
    let engine = || {
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
        engine
    };
    let steps = steps();
    let (answered, expected, changed) = drive(&mut engine(), &steps);
    let c1 = Value::from("c1");
    let key = c1.clone();
    let mut why = engine().why(Box::new(move |paths, values| {
        paths.len() == 1 && values == [key.clone()]
    }));
    let (answers, actual, changes) = drive(&mut why, &steps);
    assert!(answers == answered, "a traced engine answers otherwise");
    assert_eq!(changes, changed);
    assert_eq!(actual.len(), expected.len());
    assert!(actual == expected, "a traced engine's output differs");

    let trace = why.trace();
    let matched = ends(&trace, |e| matches!(e, End::Matched { .. }));
    assert_eq!(matched, outputs(&actual, &c1, false));
    let closed = ends(&trace, |e| {
        matches!(e, End::WindowClosed { reported: true, .. })
    });
    assert_eq!(closed, outputs(&actual, &c1, true));
    assert!(!matched.is_empty() && !closed.is_empty());
    // `over@b` fires on c1's payments over 150 that enter `b`; on one
    // that enters `a` (or no scene) its match is not made.
    let not_made = ends(&trace, |e| matches!(e, End::NotMade { .. }));
    for chains in [&matched, &not_made] {
        assert!(chains.iter().any(|(p, ..)| p == "over@b"), "{chains:?}");
    }
    // (and c1 was blocked a while: `listed` fired on it)
    assert!(matched.iter().any(|(p, ..)| p == "listed"), "{matched:?}");
    // Each version of `big` is traced apart and made matches; version 2's
    // partial matches under way at the restart were discarded, and none
    // is left under way but the last version's.
    let versions: Vec<u32> = (trace.patterns.iter())
        .filter(|p| p.name == "big")
        .map(|p| p.version)
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    for v in 1..=3 {
        assert!(
            matched.iter().any(|(p, at, _)| p == "big" && *at == v),
            "{v}"
        );
    }
    let discarded = ends(&trace, |e| matches!(e, End::Discarded { .. }));
    assert!(
        discarded.iter().any(|(p, v, _)| p == "big" && *v == 2),
        "{discarded:?}"
    );
    for p in trace
        .patterns
        .iter()
        .filter(|p| p.name == "big" && p.version < 3)
    {
        assert!(p.runs.iter().all(|r| r.end.is_some()), "{p:?}");
    }
    // `pair` in shadow, then out of it: one pattern throughout.
    assert_eq!(
        trace.patterns.iter().filter(|p| p.name == "pair").count(),
        1
    );
    // The key's events are its requests taken: a retry answered from
    // memory is none.
    let asked = steps.iter().filter_map(|step| match step {
        Step::Request(_, _, _, text) => Some(text),
        _ => None,
    });
    let fields = why.fields().clone();
    let of_c1: Vec<(i64, &Answer)> = (asked.zip(&answers))
        .filter(|(text, _)| text.contains(r#""card":"c1""#))
        .map(|(text, answer)| (number(&event(&fields, text)), answer))
        .collect();
    let mut taken: Vec<i64> = (of_c1.iter())
        .filter(|(_, answer)| matches!(answer, Answer::Taken { .. }))
        .map(|(n, _)| *n)
        .collect();
    taken.sort_unstable();
    let mut traced: Vec<i64> = trace.events.values().map(|(_, e)| number(e)).collect();
    traced.sort_unstable();
    assert_eq!(traced, taken);
    let repeated = of_c1
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Repeated(_)));
    assert!(repeated.count() > 0, "the stream retries a request of c1");
}
