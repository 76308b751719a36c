//! `Engine::why` fed as a service's run feeds its engine (issue 63,
//! `cepheid why KEY --events wal:DIR`): requests taken at once into the
//! scene they name (`Why::request`), retries answered from memory, ticks,
//! changes of a list at their place (`Why::add_to_list_by`).
//! A traced engine answers each request as a plain one does, with the
//! same output, and its trace agrees with that output: a match per
//! `Matched`, a timeout per window reported closed, a rule's instance not
//! made on an event of another scene (`NotMade`), and a retry is no
//! second event of the key.

use std::collections::BTreeSet;
use std::sync::Arc;

use cepheid_core::record::FieldTable;
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::why::{End, Trace};
use cepheid_engine::engine::{Answer, EntryOrigin, Request};
use cepheid_engine::{Engine, Output, Record, Rules, Value};

const RULES: &str = r#"
list blocked
indicator payments = count() where type == "payment" group by card within 1h
pattern big { partition by card within 1m timeouts
    match p followed by q where p: amount > 100 q: amount > 100 }
pattern busy { partition by card action review
    match p where p: type == "payment" and payments(card) >= 3 }
pattern listed { partition by card action review match p where p: card in blocked }
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
/// event), a tick (a watermark), or a change of the list `blocked` (a
/// card added or removed, from the watermark + 1 on, as the run makes a
/// logged `$list` change).
#[derive(Clone)]
pub(crate) enum Step {
    Request(i64, Value, Option<&'static str>, String),
    Watermark(i64),
    List(bool, String),
}

/// 600 inputs over four cards from a fixed linear congruential
/// generator: requests into scene `a`, `b` or none, now and then a
/// retry of an earlier id, an event of no id, a tick, or a card blocked
/// or let go.
pub(crate) fn steps() -> Vec<Step> {
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
        let step = match next(10) {
            0 if !asked.is_empty() => asked[next(asked.len() as u64) as usize].clone(),
            1 => Step::Watermark(at - 1),
            3 if next(2) == 0 => Step::List(next(2) == 0, format!("c{}", next(4))),
            roll => {
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

pub(crate) fn request(id: &Value, scene: Option<&str>) -> Request {
    Request {
        id: id.clone(),
        scene: scene.map(Arc::from),
        note: Arc::from(&b""[..]),
        position: Some(Value::from("here")),
        dry_run: false,
        shed_shadow: false,
    }
}

/// The event of `text` for `engine`'s fields (no time field: a request
/// takes its time).
pub(crate) fn event(fields: &FieldTable, text: &str) -> Record {
    let mut decoder = Decoder::new(Format::JsonLines, "ts", fields.clone()).without_time();
    match decoder.decode(text.as_bytes()).unwrap() {
        Item::Event(_, record) => record,
        other => panic!("not an event: {other:?}"),
    }
}

/// The distinct partial matches of each kind of output for `key`, by
/// pattern and their events (each its field `n`), and the same of the
/// trace's ends.
pub(crate) type Chains = BTreeSet<(String, Vec<i64>)>;

/// An event's field `n`: its number in the stream.
fn number(event: &Record) -> i64 {
    let json: serde_json::Value = serde_json::from_str(event.raw()).unwrap();
    json["n"].as_i64().unwrap()
}

pub(crate) fn outputs(out: &[Output<Record>], key: &Value, timeouts: bool) -> Chains {
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
            (m.pattern.clone(), events)
        })
        .collect()
}

pub(crate) fn ends(trace: &Trace<Record>, f: fn(&End) -> bool) -> Chains {
    (trace.patterns.iter())
        .flat_map(|p| p.runs.iter().map(move |r| (p, r)))
        .filter(|(_, r)| r.end.as_ref().is_some_and(f))
        .map(|(p, r)| {
            let mut events: Vec<i64> = (r.events.iter())
                .map(|(seq, _)| number(&trace.events[seq].1))
                .collect();
            events.sort_unstable();
            (p.name.clone(), events)
        })
        .collect()
}

#[test]
fn a_traced_engine_takes_requests_as_a_plain_one_and_its_trace_agrees() {
    let rules = Rules::parse("requests.cep", RULES).unwrap();
    let engine = || {
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
        engine
    };
    let steps = steps();
    let mut plain = engine();
    let (mut expected, mut answered) = (Vec::new(), Vec::new());
    for step in &steps {
        match step {
            Step::Request(at, id, scene, text) => {
                let record = event(plain.fields(), text);
                answered.push(plain.request(*at, request(id, *scene), record, &mut expected));
            }
            Step::Watermark(t) => plain.watermark(*t, &mut expected),
            Step::List(add, card) => {
                let at = plain.current_watermark().map_or(i64::MIN, |w| w + 1);
                let value = Value::from(card.as_str());
                match add {
                    true => plain.add_to_list_by(&ORIGIN, "blocked", value, at, None),
                    false => plain.remove_from_list_by(&ORIGIN, "blocked", value, at),
                }
                .unwrap();
            }
        }
    }
    let traced = engine();
    let fields = traced.fields().clone();
    let c1 = Value::from("c1");
    let key = c1.clone();
    let mut why = traced.why(Box::new(move |paths, values| {
        paths.len() == 1 && values == [key.clone()]
    }));
    let (mut actual, mut answers) = (Vec::new(), Vec::new());
    for step in &steps {
        match step {
            Step::Request(at, id, scene, text) => {
                let record = event(&fields, text);
                answers.push(why.request(*at, request(id, *scene), record, &mut actual));
            }
            Step::Watermark(t) => why.watermark(*t, &mut actual),
            Step::List(add, card) => {
                let at = why.current_watermark().map_or(i64::MIN, |w| w + 1);
                let value = Value::from(card.as_str());
                match add {
                    true => why.add_to_list_by(&ORIGIN, "blocked", value, at, None),
                    false => why.remove_from_list_by(&ORIGIN, "blocked", value, at),
                }
                .unwrap();
            }
        }
    }
    assert!(answers == answered, "a traced engine answers otherwise");
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
        assert!(chains.iter().any(|(p, _)| p == "over@b"), "{chains:?}");
    }
    // (and c1 was blocked a while: `listed` fired on it)
    assert!(matched.iter().any(|(p, _)| p == "listed"), "{matched:?}");
    // The key's events are its requests taken: a retry answered from
    // memory is none.
    let asked = steps.iter().filter_map(|step| match step {
        Step::Request(_, _, _, text) => Some(text),
        Step::Watermark(_) | Step::List(..) => None,
    });
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
