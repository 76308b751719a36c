//! `Engine::why` (issue 42): a traced engine gives what a plain one gives,
//! output for output, over a stream of many keys with late events and
//! every way a partial match ends; and what its trace says of the traced
//! key agrees with that output: a match per `Matched`, a timeout per
//! window reported closed, a drop per `Dropped`.

use std::collections::BTreeSet;

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::why::End;
use cepheid_engine::{Engine, Output, Record, Rules, Value};

const RULES: &str = r#"
pattern then_b { partition by k within 5s timeouts
    match a followed by b where a: t == "a" b: t == "b" }
pattern strict { partition by k within 5s
    match a next b where a: t == "a" b: t == "b" and v > a.v }
pattern looping { partition by k within 10s skip past last event
    match a{2,} followed by c where a: t == "a" c: t == "c" }
pattern no_c { partition by k within 5s
    match a not followed by c followed by b where a: t == "a" c: t == "c" b: t == "b" }
pattern unpaid { partition by k within 3s timeouts
    match a not followed by b where a: t == "a" b: t == "b" }
pattern forks { partition by k within 10s
    match a{1,} combinations followed by b where a: t == "a" b: t == "b" }
pattern refs { partition by k
    match b followed by c where b: t == "b" c: t == "c" and v > b.v }
"#;

/// A stream of 3,000 events over five keys, out of order now and then
/// (some late under a delay of 1 s), from a fixed linear congruential
/// generator.
fn stream() -> Vec<String> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut ts: i64 = 1_000;
    (0..3_000)
        .map(|_| {
            ts += next(1_500) as i64;
            let at = if next(20) == 0 { ts - 2_500 } else { ts };
            let t = ["a", "b", "c", "d"][next(4) as usize];
            format!(
                r#"{{"ts":{at},"k":"k{}","t":"{t}","v":{}}}"#,
                next(5),
                next(10)
            )
        })
        .collect()
}

fn engine(rules: &Rules) -> Engine<Record> {
    let mut engine = Engine::with_max_delay(std::time::Duration::from_secs(1)).max_runs_per_key(3);
    engine.add(rules).unwrap();
    engine
}

#[test]
fn a_traced_engine_gives_a_plain_ones_output_and_its_trace_agrees() {
    let rules = Rules::parse("why.cep", RULES).unwrap();
    let lines = stream();
    let mut plain = engine(&rules);
    let mut decoder = Decoder::new(Format::JsonLines, "ts", plain.fields().clone());
    let mut expected: Vec<Output<Record>> = Vec::new();
    for line in &lines {
        if let Item::Event(ts, r) = decoder.decode(line.as_bytes()).unwrap() {
            plain.push(ts, r, &mut expected);
        }
    }
    plain.finish(&mut expected);

    let traced = engine(&rules);
    let mut decoder = Decoder::new(Format::JsonLines, "ts", traced.fields().clone());
    let mut why = traced.why(Box::new(|paths, key| {
        paths.len() == 1 && key == [Value::from("k3")]
    }));
    let mut actual: Vec<Output<Record>> = Vec::new();
    for line in &lines {
        if let Item::Event(ts, r) = decoder.decode(line.as_bytes()).unwrap() {
            why.push(ts, r, &mut actual);
        }
    }
    why.finish(&mut actual);
    assert_eq!(actual.len(), expected.len());
    assert!(actual == expected, "a traced engine's output differs");

    let trace = why.trace();
    let k3 = [Value::from("k3")];
    // The distinct partial matches (by their events' times) of each kind
    // of output for k3, and of each kind of end in the trace: runs of the
    // matcher with the same events are one partial match of the trace.
    type Chains = BTreeSet<(String, Vec<i64>)>;
    let outputs = |kind: fn(&Output<Record>) -> bool| -> Chains {
        (actual.iter())
            .filter(|o| kind(o))
            .filter_map(Output::as_match)
            .filter(|m| m.key == k3)
            .map(|m| {
                let mut times: Vec<i64> = (m.stages.iter())
                    .flat_map(|(_, events)| events.iter().map(time))
                    .collect();
                times.sort_unstable();
                (m.pattern.clone(), times)
            })
            .collect()
    };
    let ends = |f: fn(&End) -> bool| -> Chains {
        (trace.patterns.iter())
            .flat_map(|p| p.runs.iter().map(move |r| (p, r)))
            .filter(|(_, r)| r.end.as_ref().is_some_and(f))
            .map(|(p, r)| {
                let mut times: Vec<i64> = (r.events.iter())
                    .map(|(seq, _)| trace.events[seq].0)
                    .collect();
                times.sort_unstable();
                (p.name.clone(), times)
            })
            .collect()
    };
    let matched = ends(|e| matches!(e, End::Matched { .. }));
    assert_eq!(matched, outputs(|o| matches!(o, Output::Match(_))));
    let closed = ends(|e| matches!(e, End::WindowClosed { reported: true, .. }));
    assert_eq!(closed, outputs(|o| matches!(o, Output::Timeout { .. })));
    // A drop ends a partial match when it was its last run (runs with the
    // same events are one partial match): every drop the trace says is
    // one, and every run dropped is, or was before taking more events, a
    // partial match it knows.
    let dropped = ends(|e| matches!(e, End::Dropped { .. }));
    let drops = outputs(|o| matches!(o, Output::Dropped { .. }));
    assert!(
        dropped.is_subset(&drops),
        "{:?}",
        dropped.difference(&drops).collect::<Vec<_>>()
    );
    // (a partial match's events so far: each beginning of one's events)
    let known: Chains = (trace.patterns.iter())
        .flat_map(|p| p.runs.iter().map(move |r| (p, r)))
        .flat_map(|(p, r)| {
            let times: Vec<i64> = (r.events.iter())
                .map(|(seq, _)| trace.events[seq].0)
                .collect();
            (1..=times.len()).map(move |n| {
                let mut first = times[..n].to_vec();
                first.sort_unstable();
                (p.name.clone(), first)
            })
        })
        .collect();
    assert!(
        drops.is_subset(&known),
        "{:?}",
        drops.difference(&known).collect::<Vec<_>>()
    );
    let failed = ends(|e| matches!(e, End::ConditionFailed { .. }));
    let negated = ends(|e| matches!(e, End::Negation { .. }));
    let pruned = ends(|e| matches!(e, End::Pruned { .. }));
    // (the stream has each of them for k3)
    for (what, chains) in [
        ("matched", &matched),
        ("closed", &closed),
        ("dropped", &dropped),
        ("failed", &failed),
        ("negated", &negated),
        ("pruned", &pruned),
    ] {
        assert!(!chains.is_empty(), "no {what}");
    }
    for p in &trace.patterns {
        assert!(!p.reached.is_empty(), "{}", p.name);
        for run in &p.runs {
            assert!(!run.events.is_empty(), "{}: {run:?}", p.name);
        }
    }
    let late = actual.iter().filter(|o| match o {
        Output::Late { event, .. } => event.raw().contains(r#""k":"k3""#),
        _ => false,
    });
    assert_eq!(trace.late.len(), late.count());
    assert!(!trace.late.is_empty());
}

/// An event's time.
fn time(event: &Record) -> i64 {
    let json: serde_json::Value = serde_json::from_str(event.raw()).unwrap();
    json["ts"].as_i64().unwrap()
}

/// What the traced key's conditions read of lists and indicators: the
/// lookups its matcher made at each event, as it made them (a rule's
/// write seen from the time after it; a condition stopped before a lookup
/// read none), for the patterns that read some; the output a plain
/// engine's.
#[test]
fn a_trace_keeps_what_conditions_read_of_lists_and_indicators() {
    use cepheid_engine::engine::why::Read;
    let rules = Rules::parse(
        "reads.cep",
        r#"
list seen
indicator a_1m = count() where t == "a" group by k within 1m
pattern w { partition by k match a where a: t == "w" then add a.k to seen }
pattern r { partition by k match x where x: t == "x" and k in seen and a_1m(k) >= 2 }
"#,
    )
    .unwrap();
    let lines = [
        r#"{"ts":1000,"k":"k1","t":"a"}"#,
        r#"{"ts":1500,"k":"k2","t":"a"}"#,
        r#"{"ts":2000,"k":"k1","t":"w"}"#,
        r#"{"ts":2000,"k":"k1","t":"x"}"#,
        r#"{"ts":3000,"k":"k1","t":"a"}"#,
        r#"{"ts":4000,"k":"k1","t":"x"}"#,
    ];
    let run = |engine: Engine<Record>| {
        let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
        let mut items = Vec::new();
        for line in lines {
            if let Item::Event(ts, r) = decoder.decode(line.as_bytes()).unwrap() {
                items.push((ts, r));
            }
        }
        (engine, items)
    };
    let (mut plain, items) = run(engine(&rules));
    let mut expected: Vec<Output<Record>> = Vec::new();
    for (ts, r) in items {
        plain.push(ts, r, &mut expected);
    }
    plain.finish(&mut expected);
    let (traced, items) = run(engine(&rules));
    let mut why = traced.why(Box::new(|_, key| key == [Value::from("k1")]));
    let mut actual: Vec<Output<Record>> = Vec::new();
    for (ts, r) in items {
        why.push(ts, r, &mut actual);
    }
    why.finish(&mut actual);
    assert!(actual == expected, "a traced engine's output differs");
    assert_eq!(actual.len(), 2, "{actual:?}");

    let trace = why.trace();
    let seq_at = |n: usize| *trace.events.keys().nth(n).unwrap();
    assert!(trace.patterns[0].reads.is_empty(), "w reads nothing");
    let reads = &trace.patterns[1].reads;
    let list = |found| Read::List {
        list: "seen".to_string(),
        value: Value::from("k1"),
        found: Some(found),
        shadow: false,
        expired: None,
    };
    // (events of k1: a, w, x at 2000, a, x at 4000; only the `x`s get
    // past `t == "x"`)
    assert_eq!(
        reads.keys().copied().collect::<Vec<_>>(),
        [seq_at(2), seq_at(4)]
    );
    assert_eq!(reads[&seq_at(2)], [list(false)]);
    assert_eq!(
        reads[&seq_at(4)],
        [
            list(true),
            Read::Indicator {
                indicator: "a_1m".to_string(),
                key: vec![Value::from("k1")],
                value: Value::from(2i64),
            }
        ]
    );
}
