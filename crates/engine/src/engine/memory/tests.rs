//! Lists and indicators in the engine: the points in event time at which
//! changes and writes are seen, and a brute-force recomputation of every
//! indicator kind over random streams with disorder and late events.

use std::time::Duration;

use proptest::prelude::*;

use crate::engine::{Engine, Output};
use crate::record::Record;
use crate::rules::Rules;
use crate::value::Value;

fn engine(text: &str, max_delay: u64) -> Engine<Record> {
    let rules = Rules::parse("t.cep", text).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::with_max_delay(Duration::from_millis(max_delay));
    engine.add(&rules).unwrap();
    engine
}

fn push(engine: &mut Engine<Record>, line: &str, out: &mut Vec<Output<Record>>) {
    engine.push_json(line, "ts", out).unwrap();
}

/// The `id` field of an event.
fn id_of(r: &Record) -> i64 {
    let json: serde_json::Value = serde_json::from_str(r.raw()).unwrap();
    json["id"].as_i64().unwrap()
}

/// The `id` field of each match's first event, in output order.
fn matched_ids(out: &[Output<Record>]) -> Vec<i64> {
    out.iter()
        .filter_map(|o| match o {
            Output::Match(m) => Some(id_of(&m.stages[0].1[0])),
            _ => None,
        })
        .collect()
}

#[test]
fn a_list_change_is_seen_from_its_time_on_before_events_of_that_time() {
    let mut e = engine(
        "list blocked\npattern hit { match a where a: ip in blocked }",
        0,
    );
    e.add_to_list("blocked", "x".into(), 20, None).unwrap();
    e.remove_from_list("blocked", "x".into(), 30).unwrap();
    let mut out = Vec::new();
    for (id, ts) in [(1, 10), (2, 19), (3, 20), (4, 25), (5, 29), (6, 30)] {
        push(
            &mut e,
            &format!(r#"{{"id": {id}, "ts": {ts}, "ip": "x"}}"#),
            &mut out,
        );
    }
    e.finish(&mut out);
    e.finish(&mut out);
    assert_eq!(matched_ids(&out), vec![3, 4, 5]);
}

#[test]
fn an_entry_given_an_expiry_time_lives_until_it_wherever_it_is_applied() {
    let text = "list seen\npattern hit { match a where a: ip in seen }";
    let ids = |cut: bool| {
        let mut e = engine(text, 0);
        // Applied at once (no event yet), and scheduled for time 20.
        e.add_to_list_until("seen", "x".into(), i64::MIN, Some(15))
            .unwrap();
        e.add_to_list_until("seen", "y".into(), 20, Some(40))
            .unwrap();
        // Expired when it applies: the value leaves.
        e.add_to_list_until("seen", "z".into(), i64::MIN, None)
            .unwrap();
        e.add_to_list_until("seen", "z".into(), 30, Some(25))
            .unwrap();
        let mut out = Vec::new();
        let events = [
            (1, 10, "x"),
            (2, 14, "x"),
            (3, 15, "x"),
            (4, 19, "y"),
            (5, 20, "y"),
            (6, 29, "z"),
            (7, 30, "z"),
            (8, 39, "y"),
            (9, 40, "y"),
        ];
        for (i, (id, ts, ip)) in events.into_iter().enumerate() {
            if cut && i == 2 {
                let mut bytes = Vec::new();
                e.snapshot(&mut bytes).unwrap();
                e = Engine::with_max_delay(Duration::ZERO);
                e.restore_rules(&bytes[..]).unwrap();
            }
            push(
                &mut e,
                &format!(r#"{{"id": {id}, "ts": {ts}, "ip": "{ip}"}}"#),
                &mut out,
            );
        }
        e.finish(&mut out);
        matched_ids(&out)
    };
    assert_eq!(ids(false), vec![1, 2, 5, 6, 8]);
    assert_eq!(ids(true), ids(false));
}

#[test]
fn an_entry_for_ever_by_its_own_expiry_stays_so_through_a_snapshot_in_a_list_with_a_for() {
    // (a list file's entry without an expiry: for ever, not the list's
    // `for`, also when a snapshot holds it scheduled)
    let text = "list seen for 10ms\npattern hit { match a where a: ip in seen }";
    let ids = |cut: bool| {
        let mut e = engine(text, 0);
        e.add_to_list_until("seen", "y".into(), 20, Some(i64::MAX))
            .unwrap();
        let mut out = Vec::new();
        let events = [(1, 10), (2, 19), (3, 20), (4, 100), (5, 1000)];
        for (i, (id, ts)) in events.into_iter().enumerate() {
            if cut && i == 2 {
                let mut bytes = Vec::new();
                e.snapshot(&mut bytes).unwrap();
                e = Engine::with_max_delay(Duration::ZERO);
                e.restore_rules(&bytes[..]).unwrap();
            }
            push(
                &mut e,
                &format!(r#"{{"id": {id}, "ts": {ts}, "ip": "y"}}"#),
                &mut out,
            );
        }
        e.finish(&mut out);
        matched_ids(&out)
    };
    assert_eq!(ids(false), vec![3, 4, 5]);
    assert_eq!(ids(true), ids(false));
}

#[test]
fn an_engine_copies_the_lists_of_another_with_their_scheduled_changes() {
    let text = "list seen\nlist nets of cidr\npattern hit { match a where a: ip in seen }";
    let events = [(1, 10, "x"), (2, 20, "y"), (3, 30, "x"), (4, 31, "z")];
    let ids = |copy: bool| {
        let mut theirs = engine(text, 0);
        theirs
            .add_to_list_until("seen", "x".into(), i64::MIN, Some(30))
            .unwrap();
        theirs
            .add_to_list_until("seen", "y".into(), 20, None)
            .unwrap();
        theirs
            .add_to_list_until("nets", "10.0.0.0/8".into(), i64::MIN, None)
            .unwrap();
        let mut e = engine(text, 0);
        // (an entry of its own, which the copy replaces)
        e.add_to_list_until("seen", "z".into(), i64::MIN, None)
            .unwrap();
        if copy {
            e.copy_lists_from(&theirs);
        } else {
            e = theirs;
        }
        let mut out = Vec::new();
        for (id, ts, ip) in events {
            push(
                &mut e,
                &format!(r#"{{"id": {id}, "ts": {ts}, "ip": "{ip}"}}"#),
                &mut out,
            );
        }
        e.finish(&mut out);
        let sizes: Vec<(String, usize)> = e.list_sizes().map(|(n, s)| (n.to_string(), s)).collect();
        (matched_ids(&out), sizes)
    };
    assert_eq!(ids(false).0, vec![1, 2]);
    assert_eq!(ids(true), ids(false));
}

#[test]
fn entries_expire_in_event_time() {
    let mut e = engine(
        "list seen for 10ms\npattern hit { match a where a: ip in seen }",
        0,
    );
    e.add_to_list("seen", "x".into(), 0, None).unwrap();
    e.add_to_list("seen", "y".into(), 0, Some(Duration::from_millis(20)))
        .unwrap();
    let mut out = Vec::new();
    for (id, ts, ip) in [(1, 9, "x"), (2, 10, "x"), (3, 19, "y"), (4, 20, "y")] {
        push(
            &mut e,
            &format!(r#"{{"id": {id}, "ts": {ts}, "ip": "{ip}"}}"#),
            &mut out,
        );
    }
    e.finish(&mut out);
    assert_eq!(matched_ids(&out), vec![1, 3]);
}

/// Each match's pattern and the `id` of its first event, in output order.
fn hits(out: &[Output<Record>]) -> Vec<(String, i64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Match(m) => Some((m.pattern.clone(), id_of(&m.stages[0].1[0]))),
            _ => None,
        })
        .collect()
}

#[test]
fn a_match_writes_at_the_next_millisecond_and_later_events_see_it() {
    // A confirmed fraud blocks its device for the other rule, and for
    // itself, from its time + 1 on: not for events of its own time,
    // whether they arrive before or after the one that completed it.
    let text = r#"
        list blocked_devices
        pattern fraud {
            match a where a: kind == "fraud"
            then add a.device to blocked_devices for 100ms
        }
        pattern blocked {
            match a where a: device in blocked_devices
        }
    "#;
    let mut e = engine(text, 0);
    let mut out = Vec::new();
    for (id, ts, kind) in [
        (0, 10, "pay"),
        (1, 10, "fraud"),
        (2, 10, "pay"),
        (3, 11, "pay"),
        (4, 109, "pay"),
        (5, 110, "pay"),
    ] {
        push(
            &mut e,
            &format!(r#"{{"id": {id}, "ts": {ts}, "kind": "{kind}", "device": "d"}}"#),
            &mut out,
        );
    }
    e.finish(&mut out);
    // event 1 completes `fraud` at 10; events 0 and 2 (its time) do not
    // see the write, 3 (at 11) and 4 do; the entry lives 100ms from 10,
    // so it left at 110.
    assert_eq!(
        hits(&out),
        vec![
            ("fraud".to_string(), 1),
            ("blocked".to_string(), 3),
            ("blocked".to_string(), 4)
        ]
    );
    assert_eq!(e.memory_stats().list_changes, 1);
    assert_eq!(e.memory_stats().late_changes, 0);
}

#[test]
fn a_deadline_that_completes_a_match_writes_at_the_next_millisecond() {
    // A `not followed by` ending completes at its deadline (10 + 5ms =
    // 15): the write is seen from 16 on.
    let text = r#"
        list quiet
        pattern calm {
            partition by k
            match a not followed by b within 5ms
            where a: kind == "start" b: kind == "stop"
            then add a.k to quiet
        }
        pattern probe {
            match e where e: kind == "probe" and k in quiet
        }
    "#;
    let mut e = engine(text, 0);
    let mut out = Vec::new();
    for (id, ts, kind) in [(1, 10, "start"), (2, 15, "probe"), (3, 16, "probe")] {
        push(
            &mut e,
            &format!(r#"{{"id": {id}, "ts": {ts}, "kind": "{kind}", "k": "x"}}"#),
            &mut out,
        );
    }
    e.finish(&mut out);
    assert_eq!(
        hits(&out),
        vec![("calm".to_string(), 1), ("probe".to_string(), 3)]
    );
}

#[test]
fn writes_of_one_time_apply_in_one_order_whatever_the_order_of_patterns() {
    // At 10 one rule adds `d` for 50ms, one for 20ms and one removes it;
    // at 20, one removes `e` and one adds it. The adds win over the
    // removes and the latest expiry wins, in every order of the patterns
    // and of the events.
    let rules = [
        r#"pattern long { match a where a: kind == "long" then add a.device to l for 50ms }"#,
        r#"pattern short { match a where a: kind == "short" then add a.device to l for 20ms }"#,
        r#"pattern drop { match a where a: kind == "drop" then remove a.device from l }"#,
        r#"pattern probe { match a where a: kind == "probe" and device in l }"#,
    ];
    let events = [
        (1, 10, "long", "d"),
        (2, 10, "short", "d"),
        (3, 10, "drop", "d"),
        (4, 20, "drop", "e"),
        (5, 20, "short", "e"),
    ];
    let probes = [
        (6, 21, "d"),
        (7, 21, "e"),
        (8, 35, "d"),
        (9, 45, "e"),
        (10, 59, "d"),
        (11, 60, "d"),
    ];
    let run = |order: &[usize], reversed: bool| {
        let text = std::iter::once("list l".to_string())
            .chain(order.iter().map(|&i| rules[i].to_string()))
            .collect::<Vec<_>>()
            .join("\n");
        let mut e = engine(&text, 0);
        let mut out = Vec::new();
        let mut batch: Vec<_> = events.to_vec();
        if reversed {
            batch.reverse();
            batch.sort_by_key(|&(_, ts, _, _)| ts);
        }
        let lines = batch
            .iter()
            .map(|&(id, ts, kind, device)| (id, ts, kind, device))
            .chain(
                probes
                    .iter()
                    .map(|&(id, ts, device)| (id, ts, "probe", device)),
            );
        for (id, ts, kind, device) in lines {
            push(
                &mut e,
                &format!(r#"{{"id": {id}, "ts": {ts}, "kind": "{kind}", "device": "{device}"}}"#),
                &mut out,
            );
        }
        e.finish(&mut out);
        let mut probed: Vec<i64> = hits(&out)
            .into_iter()
            .filter(|(p, _)| p == "probe")
            .map(|(_, id)| id)
            .collect();
        probed.sort_unstable();
        probed
    };
    // `d` from 11 to 60 (the 50ms add), `e` from 21 to 40 (the 20ms one).
    let expected = vec![6, 7, 8, 10];
    for order in [[0, 1, 2, 3], [2, 1, 0, 3], [1, 2, 0, 3], [3, 2, 1, 0]] {
        for reversed in [false, true] {
            assert_eq!(run(&order, reversed), expected, "{order:?} {reversed}");
        }
    }
}

#[test]
fn an_indicator_over_a_non_numeric_value_is_counted_and_the_event_still_matches() {
    let text = r#"
        indicator total = sum(amount) group by user within 1h
        pattern every { match a select t = total(a.user) }
    "#;
    let mut e = engine(text, 0);
    let mut out = Vec::new();
    push(&mut e, r#"{"ts": 1, "user": "u", "amount": 5}"#, &mut out);
    push(
        &mut e,
        r#"{"ts": 2, "user": "u", "amount": "five"}"#,
        &mut out,
    );
    push(&mut e, r#"{"ts": 3, "user": "u", "amount": 2.5}"#, &mut out);
    e.finish(&mut out);
    let totals: Vec<Value> = out
        .iter()
        .filter_map(|o| match o {
            Output::Match(m) => Some(m.select[0].1.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        totals,
        vec![Value::Int(5), Value::Int(5), Value::Float(7.5)]
    );
    assert_eq!(e.memory_stats().non_numeric, 1);
    assert_eq!(
        e.indicator_value("total", &["u".into()]),
        Some(Value::Float(7.5))
    );
}

#[test]
fn a_threshold_rule_is_a_one_stage_pattern() {
    let text = r#"
        indicator logins_1h = count() where type == "login" group by user within 1h
        pattern many_logins {
            match login
            where login: type == "login" and logins_1h(user) > 2
        }
    "#;
    let mut e = engine(text, 0);
    let mut out = Vec::new();
    for (id, ts) in [(1, 0), (2, 1000), (3, 2000), (4, 3_600_000), (5, 3_600_001)] {
        push(
            &mut e,
            &format!(r#"{{"id": {id}, "ts": {ts}, "type": "login", "user": "u"}}"#),
            &mut out,
        );
    }
    // at 3: 3 logins in (t - 1h, t]; at 3_600_000: those at 1000, 2000 and
    // itself; at 3_600_001: 2000, and the two of this hour.
    e.finish(&mut out);
    assert_eq!(matched_ids(&out), vec![3, 4, 5]);
}

/// What the brute force reads of an event.
#[derive(Clone, Debug)]
struct Ev {
    id: i64,
    ts: i64,
    key: i64,
    cond: bool,
    value: Option<Value>,
}

fn ev_strategy() -> impl Strategy<Value = (i64, i64, bool, Option<Value>)> {
    let value = prop_oneof![
        3 => (-6i64..6).prop_map(|i| Some(Value::Int(i))),
        2 => (-6i64..6).prop_map(|i| Some(Value::Float(i as f64 + 0.5))),
        1 => Just(Some(Value::Str("x".into()))),
        1 => Just(None),
    ];
    (0i64..60, 0i64..3, any::<bool>(), value)
}

fn json(e: &Ev) -> String {
    let value = match &e.value {
        Some(v) => format!(r#", "v": {v}"#),
        None => String::new(),
    };
    format!(
        r#"{{"id": {}, "ts": {}, "k": {}, "c": {}{value}}}"#,
        e.id, e.ts, e.key, e.cond
    )
}

/// The value of every indicator kind at event `i` of `seen` (the events in
/// the order the engine processed them), from the definition, over the
/// events that meet `counts`.
fn brute(seen: &[Ev], i: usize, width: i64, counts: fn(&Ev) -> bool) -> Vec<Value> {
    let at = &seen[i];
    let window: Vec<&Ev> = seen[..=i]
        .iter()
        .filter(|e| e.key == at.key && counts(e) && e.ts > at.ts - width && e.ts <= at.ts)
        .collect();
    let numbers: Vec<&Value> = window
        .iter()
        .filter_map(|e| e.value.as_ref())
        .filter(|v| matches!(v, Value::Int(_) | Value::Float(_)))
        .collect();
    let as_f64 = |v: &Value| match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => unreachable!(),
    };
    let ints: i64 = numbers
        .iter()
        .filter_map(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        })
        .sum();
    let floats: Vec<f64> = numbers
        .iter()
        .filter_map(|v| match v {
            Value::Float(f) => Some(*f),
            _ => None,
        })
        .collect();
    let sum = if floats.is_empty() {
        Value::Int(ints)
    } else {
        Value::Float(ints as f64 + floats.iter().sum::<f64>())
    };
    let avg = if numbers.is_empty() {
        Value::Null
    } else {
        Value::Float((ints as f64 + floats.iter().sum::<f64>()) / numbers.len() as f64)
    };
    let pick = |better: fn(f64, f64) -> bool| {
        let mut best: Option<&Value> = None;
        for v in &numbers {
            if best.is_none_or(|b| better(as_f64(v), as_f64(b))) {
                best = Some(v);
            }
        }
        best.cloned().unwrap_or(Value::Null)
    };
    let mut distinct: Vec<&Value> = Vec::new();
    for v in window.iter().filter_map(|e| e.value.as_ref()) {
        if !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    vec![
        Value::Int(window.len() as i64),
        sum,
        avg,
        pick(|a, b| a < b),
        pick(|a, b| a > b),
        Value::Int(distinct.len() as i64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every indicator kind, over random streams with disorder (a bounded
    /// delay) and late events, equals its definition at every event: the
    /// events with time in `(t - W, t]` processed up to this one, in the
    /// engine's (time, arrival) order, late events left out. Indicators of
    /// one `group by` and width share their state, each with its own
    /// `where` (here `c`, none, `c == false`), beside one of another
    /// width.
    #[test]
    fn indicators_equal_a_brute_force_recomputation(
        events in prop::collection::vec(ev_strategy(), 1..80),
        width in 1i64..30,
        wide in 1i64..60,
        delay in 0u64..8,
    ) {
        let text = format!(r#"
            indicator n = count() where c group by k within {width}ms
            indicator s = sum(v) where c group by k within {width}ms
            indicator n_all = count() group by k within {width}ms
            indicator a = avg(v) where c group by k within {width}ms
            indicator hi_not = max(v) where c == false group by k within {width}ms
            indicator lo = min(v) where c group by k within {width}ms
            indicator hi = max(v) where c group by k within {width}ms
            indicator s_wide = sum(v) where c group by k within {wide}ms
            indicator d = count_distinct(v) where c group by k within {width}ms
            indicator d_not = count_distinct(v) where c == false group by k within {width}ms
            pattern probe {{
                match e
                select n = n(e.k) s = s(e.k) a = a(e.k) lo = lo(e.k) hi = hi(e.k) d = d(e.k)
                    n_all = n_all(e.k) hi_not = hi_not(e.k) d_not = d_not(e.k)
                    s_wide = s_wide(e.k)
            }}
        "#);
        let mut engine = engine(&text, delay);
        let evs: Vec<Ev> = events
            .iter()
            .enumerate()
            .map(|(i, (ts, key, cond, value))| Ev {
                id: i as i64,
                ts: *ts,
                key: *key,
                cond: *cond,
                value: value.clone(),
            })
            .collect();
        let mut out = Vec::new();
        for e in &evs {
            push(&mut engine, &json(e), &mut out);
        }
        engine.finish(&mut out);
        let mut late = 0;
        let mut seen = Vec::new();
        let mut values = Vec::new();
        for o in &out {
            match o {
                Output::Match(m) => {
                    let id = id_of(&m.stages[0].1[0]);
                    seen.push(evs[id as usize].clone());
                    values.push(m.select.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
                }
                Output::Late { .. } => late += 1,
                _ => {}
            }
        }
        prop_assert_eq!(seen.len() + late, evs.len());
        prop_assert!(seen.windows(2).all(|w| w[0].ts <= w[1].ts), "not in time order");
        for i in 0..seen.len() {
            let mut expected = brute(&seen, i, width, |e| e.cond);
            let not = brute(&seen, i, width, |e| !e.cond);
            expected.extend([
                brute(&seen, i, width, |_| true)[0].clone(),
                not[4].clone(),
                not[5].clone(),
                brute(&seen, i, wide, |e| e.cond)[1].clone(),
            ]);
            prop_assert_eq!(&values[i], &expected, "at {:?}", seen[i]);
        }
        let strings = |cond: bool| {
            seen.iter().filter(|e| e.cond == cond && matches!(e.value, Some(Value::Str(_)))).count() as u64
        };
        // (five numeric indicators leave each string out, one those of
        // `c == false`)
        prop_assert_eq!(engine.memory_stats().non_numeric, 5 * strings(true) + strings(false));
    }
}

/// A run cut by a snapshot at every event, restored into a fresh engine
/// (with the rules, and from the snapshot's own rules), gives the output
/// of the run without a cut: lists, their scheduled changes, `then`
/// writes and indicator windows are all in the snapshot.
#[test]
fn a_snapshot_keeps_lists_and_indicators() {
    let text = r#"
        list hot for 30ms
        indicator n = count() group by k within 20ms
        indicator s = sum(v) where v > 0 group by k within 40ms
        indicator hi = max(v) where v > 2 group by k within 20ms
        pattern heat {
            partition by k
            match a next b
            where b: v > 3
            then add b.k to hot
        }
        pattern probe {
            match e
            select n = n(e.k) s = s(e.k) hi = hi(e.k) hot = e.k in hot
        }
    "#;
    let lines: Vec<String> = (0..40)
        .map(|i| {
            format!(
                r#"{{"id": {i}, "ts": {}, "k": {}, "v": {}}}"#,
                i * 3 - (i % 4),
                i % 3,
                (i * 7) % 6
            )
        })
        .collect();
    let run = |cut: Option<(usize, bool)>| {
        let mut e = engine(text, 5);
        e.add_to_list("hot", Value::Int(1), 50, None).unwrap();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if cut.is_some_and(|(at, _)| at == i) {
                let mut bytes = Vec::new();
                e.snapshot(&mut bytes).unwrap();
                let mut fresh: Engine<Record> = Engine::with_max_delay(Duration::from_millis(5));
                if cut.is_some_and(|(_, own)| own) {
                    fresh.add(&Rules::parse("t.cep", text).unwrap()).unwrap();
                    fresh.restore(&bytes[..]).unwrap();
                } else {
                    fresh.restore_rules(&bytes[..]).unwrap();
                }
                e = fresh;
            }
            push(&mut e, line, &mut out);
        }
        e.finish(&mut out);
        out.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>()
    };
    let whole = run(None);
    assert!(
        whole.iter().any(|o| o.contains("Bool(true)")),
        "no list hit"
    );
    for at in [1, 7, 20, 33] {
        assert_eq!(run(Some((at, true))), whole, "cut at {at}, own rules");
        assert_eq!(
            run(Some((at, false))),
            whole,
            "cut at {at}, the snapshot's rules"
        );
    }
}

/// A pattern added alone (as `cepheid run` and the workers add them)
/// brings the lists and indicators it names: each carries its rule set's
/// table.
#[test]
fn patterns_added_one_by_one_bring_their_declarations() {
    let rules = Rules::parse(
        "t.cep",
        r#"
        list blocked
        indicator n = count() group by k within 1h
        pattern hit { match a where a: ip in blocked }
        pattern many { match a where a: n(k) > 1 }
        "#,
    )
    .unwrap();
    let mut e: Engine<Record> = Engine::new();
    for p in rules.patterns() {
        e.add(p).unwrap();
    }
    assert_eq!(e.declarations().lists.len(), 1);
    assert_eq!(e.declarations().indicators.len(), 1);
    e.add_to_list("blocked", "x".into(), 0, None).unwrap();
    let mut out = Vec::new();
    push(&mut e, r#"{"id": 1, "ts": 1, "ip": "x", "k": 1}"#, &mut out);
    push(&mut e, r#"{"id": 2, "ts": 2, "ip": "y", "k": 1}"#, &mut out);
    e.finish(&mut out);
    let hits: Vec<(String, i64)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Match(m) => Some((m.pattern.clone(), id_of(&m.stages[0].1[0]))),
            _ => None,
        })
        .collect();
    assert_eq!(hits, vec![("hit".to_string(), 1), ("many".to_string(), 2)]);
}

/// The cost per event of the indicators, by window and number of groups
/// (`cargo test --release -p cepheid-engine --lib indicator_cost --
/// --ignored --nocapture`): the time per event of an engine whose one
/// pattern reads an indicator of each kind, against the same engine
/// without indicators. Figures in `BENCHMARKS.md`.
#[test]
#[ignore]
fn indicator_cost() {
    use crate::event::FieldResolver;
    use std::time::Instant;
    // (`CEPHEID_INDICATOR_EVENTS` and `CEPHEID_INDICATOR_CASE`, 0 to 3,
    // make a run small enough for callgrind; `CEPHEID_INDICATOR_ONLY=1`
    // runs the engine with indicators alone; `CEPHEID_INDICATOR_FLOATS=1`
    // gives `v` floats, `i % 100 + 0.5`: `sum` takes the exact float path)
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<i64>().ok());
    let n: i64 = env("CEPHEID_INDICATOR_EVENTS").unwrap_or(2_000_000);
    let cases = [
        (1_000, 1_000),
        (86_400_000, 1_000),
        (1_000, 1_000_000),
        (86_400_000, 1_000_000),
    ];
    let only = env("CEPHEID_INDICATOR_CASE");
    let floats = env("CEPHEID_INDICATOR_FLOATS") == Some(1);
    for (i, &(window, groups)) in cases.iter().enumerate() {
        if only.is_some_and(|c| c != i as i64) {
            continue;
        }
        let with = format!(
            r#"
            indicator c = count() group by k within {window}ms
            indicator s = sum(v) group by k within {window}ms
            indicator hi = max(v) group by k within {window}ms
            indicator d = count_distinct(v) group by k within {window}ms
            pattern p {{ match a where a: c(k) < 0 }}
            "#
        );
        let without = "pattern p { match a where a: v < 0 }".to_string();
        let mut times = Vec::new();
        let only_with = env("CEPHEID_INDICATOR_ONLY") == Some(1);
        for text in [&without, &with] {
            if only_with && text == &without {
                times.push(0.0);
                continue;
            }
            let mut e = engine(text, 0);
            let fields = e.fields().clone();
            let (k, v) = (
                fields
                    .clone()
                    .resolve(&crate::event::FieldPath::single("k"))
                    .unwrap(),
                fields
                    .clone()
                    .resolve(&crate::event::FieldPath::single("v"))
                    .unwrap(),
            );
            let width = fields.len();
            let records: Vec<(i64, Record)> = (0..n)
                .map(|i| {
                    let mut values = vec![Value::Null; width];
                    values[k.index()] = Value::Int((i * 7919) % groups);
                    values[v.index()] = if floats {
                        Value::Float((i % 100) as f64 + 0.5)
                    } else {
                        Value::Int(i % 100)
                    };
                    (i * 86_400_000 / n, Record::new(values, "{}".into()))
                })
                .collect();
            let mut out: Vec<Output<Record>> = Vec::new();
            let start = Instant::now();
            for (ts, r) in records {
                e.push(ts, r, &mut out);
            }
            times.push(start.elapsed().as_nanos() as f64 / n as f64);
            if text == &with {
                let stats = e.memory_stats();
                let bytes = e.core.memory.heap_bytes();
                eprintln!(
                    "window {window} ms, {groups} groups: {} entries, {} groups at the end, {bytes} heap bytes in the indicators ({:.1} per entry)",
                    stats.indicator_entries,
                    stats.indicator_groups,
                    bytes as f64 / stats.indicator_entries.max(1) as f64
                );
            }
        }
        eprintln!(
            "window {window} ms, {groups} groups: {:.0} ns/event without indicators, {:.0} with four",
            times[0], times[1]
        );
    }
}

/// An engine told to keep only the indicators grouped by some fields (a
/// worker's engine of the patterns partitioned by them) counts those and
/// no other, across a change of rules and a restore; told `None`, it
/// counts all again from then on.
#[test]
fn an_engine_keeps_only_the_indicators_grouped_by_its_key_when_told() {
    let text = r#"
        indicator by_user = count() group by user within 1h
        indicator by_user_ip = count() group by ip, user within 1h
        indicator by_ip = count() group by ip within 1h
        pattern p { partition by user match a where a: by_user(user) > 100 }
    "#;
    let mut e = engine(text, 0);
    let key = crate::event::FieldPath::parse("user");
    e.keep_indicators_grouped_by(Some(vec![key]));
    let mut out = Vec::new();
    let values = |e: &Engine<Record>| {
        let (u, ip) = (
            crate::value::ValueRef::Str("u"),
            crate::value::ValueRef::Str("1.2.3.4"),
        );
        [
            e.indicator_value("by_user", &[u]).unwrap(),
            e.indicator_value("by_user_ip", &[ip, u]).unwrap(),
            e.indicator_value("by_ip", &[ip]).unwrap(),
        ]
    };
    push(
        &mut e,
        r#"{"id": 1, "ts": 1, "user": "u", "ip": "1.2.3.4"}"#,
        &mut out,
    );
    e.watermark(1, &mut out);
    assert_eq!(values(&e), [Value::Int(1), Value::Int(1), Value::Int(0)]);
    assert_eq!(e.memory_stats().indicator_entries, 2);
    // A change of rules keeps the scope.
    e.set_rules(
        &Rules::parse(
            "t.cep",
            &format!("{text}\npattern q {{ match a where a: by_ip(ip) > 100 }}"),
        )
        .unwrap(),
        crate::engine::ReloadPolicy::Drain,
        &mut out,
    )
    .unwrap();
    push(
        &mut e,
        r#"{"id": 2, "ts": 2, "user": "u", "ip": "1.2.3.4"}"#,
        &mut out,
    );
    e.watermark(2, &mut out);
    assert_eq!(values(&e), [Value::Int(2), Value::Int(2), Value::Int(0)]);
    // So does a restore.
    let mut snapshot = Vec::new();
    e.snapshot_into(&mut snapshot).unwrap();
    let mut again: Engine<Record> = Engine::new();
    again.keep_indicators_grouped_by(Some(vec![crate::event::FieldPath::parse("user")]));
    again.restore_rules(&snapshot[..]).unwrap();
    assert_eq!(
        values(&again),
        [Value::Int(2), Value::Int(2), Value::Int(0)]
    );
    // All of them from then on.
    e.keep_indicators_grouped_by(None);
    push(
        &mut e,
        r#"{"id": 3, "ts": 3, "user": "u", "ip": "1.2.3.4"}"#,
        &mut out,
    );
    e.watermark(3, &mut out);
    assert_eq!(values(&e), [Value::Int(3), Value::Int(3), Value::Int(1)]);
}

/// An indicator the rules keep across a change (same name, same
/// definition) keeps its windows: a pattern the change adds reads the
/// events before it at once (a new threshold rule needs no warm-up).
#[test]
fn a_pattern_added_by_a_change_reads_the_windows_as_they_were() {
    let declared = "indicator n = count() group by k within 1h\n";
    let mut e = engine(
        &format!("{declared}pattern a {{ match x where x: k == 0 }}"),
        0,
    );
    let mut out = Vec::new();
    for (id, ts) in [(1, 10), (2, 20), (3, 30)] {
        push(
            &mut e,
            &format!(r#"{{"id": {id}, "ts": {ts}, "k": 1}}"#),
            &mut out,
        );
    }
    e.watermark(30, &mut out);
    let added = format!("{declared}pattern a {{ match x where x: k == 0 }}\npattern b {{ match x where x: n(k) >= 4 }}");
    e.set_rules(
        &Rules::parse("t.cep", &added).unwrap(),
        crate::engine::ReloadPolicy::Drain,
        &mut out,
    )
    .unwrap();
    push(&mut e, r#"{"id": 4, "ts": 40, "k": 1}"#, &mut out);
    e.finish(&mut out);
    let b: Vec<i64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Match(m) if m.pattern == "b" => Some(id_of(&m.stages[0].1[0])),
            _ => None,
        })
        .collect();
    assert_eq!(b, [4], "the fourth event sees the three before the change");
}

/// A change of rules that adds an indicator of the same `group by` and
/// window as kept ones (their shared state made again) keeps the kept
/// ones' entries, and the new one counts from the change on.
#[test]
fn a_change_that_adds_an_indicator_beside_kept_ones_keeps_their_entries() {
    let kept = "indicator n = count() group by k within 1h\nindicator hi = max(v) where v > 1 group by k within 1h\n";
    let probe = "pattern p { match x where x: k == 0 }";
    let mut e = engine(&format!("{kept}{probe}"), 0);
    let mut out = Vec::new();
    for (ts, v) in [(10, 5), (20, 1), (30, 3)] {
        push(
            &mut e,
            &format!(r#"{{"ts": {ts}, "k": 1, "v": {v}}}"#),
            &mut out,
        );
    }
    e.watermark(30, &mut out);
    let added = format!("indicator s = sum(v) group by k within 1h\n{kept}{probe}");
    e.set_rules(
        &Rules::parse("t.cep", &added).unwrap(),
        crate::engine::ReloadPolicy::Drain,
        &mut out,
    )
    .unwrap();
    push(&mut e, r#"{"ts": 40, "k": 1, "v": 2}"#, &mut out);
    e.watermark(40, &mut out);
    let key = [crate::value::ValueRef::Int(1)];
    assert_eq!(e.indicator_value("n", &key), Some(Value::Int(4)));
    assert_eq!(e.indicator_value("hi", &key), Some(Value::Int(5)));
    assert_eq!(e.indicator_value("s", &key), Some(Value::Int(2)));
    let stats = e.memory_stats();
    assert_eq!(
        (stats.indicator_entries, stats.indicator_groups),
        (4 + 3 + 1, 3)
    );
}

/// The limit of window entries counts an event once per indicator that
/// took it, indicators of one `group by` included: at the limit, the
/// indicators declared first take the event, the others leave it out and
/// count it.
#[test]
fn the_limit_of_entries_counts_each_indicator_an_event_enters() {
    let text = r#"
        indicator n = count() group by k within 1h
        indicator s = sum(v) group by k within 1h
        pattern p { match a where a: n(k) < 0 }
    "#;
    let rules = Rules::parse("t.cep", text).unwrap();
    let mut e: Engine<Record> = Engine::with_max_delay(Duration::ZERO).max_indicator_entries(3);
    e.add(&rules).unwrap();
    let mut out = Vec::new();
    for ts in 1..=3 {
        push(
            &mut e,
            &format!(r#"{{"ts": {ts}, "k": 1, "v": 10}}"#),
            &mut out,
        );
    }
    e.watermark(3, &mut out);
    let key = [crate::value::ValueRef::Int(1)];
    assert_eq!(e.indicator_value("n", &key), Some(Value::Int(2)));
    assert_eq!(e.indicator_value("s", &key), Some(Value::Int(10)));
    let stats = e.memory_stats();
    assert_eq!(
        (
            stats.indicator_entries,
            stats.indicator_groups,
            stats.refused_events
        ),
        (3, 2, 3)
    );
}

/// What the limits and values left out is counted by list and indicator
/// (their sums are the `MemoryStats`' counts), and kept by a snapshot: a
/// restored engine counts on from the run's counts, not from zero.
#[test]
fn what_limits_and_values_left_out_is_counted_by_name_and_kept_by_snapshots() {
    let text = r#"
        list seen
        list nets of cidr
        indicator n = count() group by k within 1h
        indicator s = sum(v) group by k within 1h
        pattern p { match a where a: n(k) < 0 and v in seen and v in nets }
    "#;
    let rules = Rules::parse("t.cep", text).unwrap();
    let make = || {
        let mut e: Engine<Record> = Engine::with_max_delay(Duration::ZERO)
            .max_indicator_entries(4)
            .max_list_entries(2);
        e.add(&rules).unwrap();
        e
    };
    let mut e = make();
    let mut out = Vec::new();
    // `s` leaves "x" out for its value; then the indicators hold their
    // limit of 4 entries (n, s, n, n): `s` refuses the third event, both
    // the last.
    for (ts, v) in [(1, "1"), (2, "\"x\""), (3, "3")] {
        push(
            &mut e,
            &format!(r#"{{"ts": {ts}, "k": 1, "v": {v}}}"#),
            &mut out,
        );
    }
    for (at, value) in [(4, 1), (4, 2), (4, 3)] {
        e.add_to_list("seen", Value::Int(value), at, None).unwrap();
    }
    e.add_to_list("nets", Value::from("not a network"), 4, None)
        .unwrap();
    push(&mut e, r#"{"ts": 5, "k": 1, "v": 5}"#, &mut out);
    e.watermark(5, &mut out);
    let counts = |limit, value| {
        let mut c = super::LeftOutCounts::default();
        (c.limit, c.value) = (limit, value);
        c
    };
    let expected = super::LeftOut {
        lists: [("nets", counts(0, 1)), ("seen", counts(1, 0))]
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect(),
        indicators: [("n", counts(1, 0)), ("s", counts(2, 1))]
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect(),
    };
    assert_eq!(e.left_out(), &expected);
    let stats = e.memory_stats();
    assert_eq!(
        [
            stats.refused_entries,
            stats.bad_entries,
            stats.refused_events,
            stats.non_numeric
        ],
        [1, 1, 3, 1]
    );
    assert_eq!(expected.totals(), [1, 1, 3, 1]);
    let mut bytes = Vec::new();
    e.snapshot(&mut bytes).unwrap();
    let mut restored = make();
    restored.restore(&bytes[..]).unwrap();
    assert_eq!(restored.left_out(), &expected);
    assert_eq!(restored.memory_stats().non_numeric, 1);
    push(&mut restored, r#"{"ts": 6, "k": 1, "v": "y"}"#, &mut out);
    restored.watermark(6, &mut out);
    assert_eq!(restored.left_out().indicators["n"], counts(2, 0));
    // (a value that is not a number is left out for its value, at the
    // limit too)
    assert_eq!(restored.left_out().indicators["s"], counts(2, 2));
}

/// Engines of parts of one stream gather what they left out as one engine
/// counts it: a list's count is one engine's (each makes every change),
/// an indicator's the sum over one group's engines (the group that
/// counted the most).
#[test]
fn parts_gather_lists_once_and_indicators_over_one_group() {
    let of = |lists: &[(&str, u64)], indicators: &[(&str, u64)]| {
        let named = |all: &[(&str, u64)]| {
            (all.iter())
                .map(|&(n, limit)| {
                    let c = super::LeftOutCounts {
                        limit,
                        ..super::LeftOutCounts::default()
                    };
                    (n.to_string(), c)
                })
                .collect()
        };
        super::LeftOut {
            lists: named(lists),
            indicators: named(indicators),
        }
    };
    let mut a = super::LeftOutParts::default();
    a.add(0, &of(&[("l", 4)], &[("i", 2)]));
    a.add(1, &of(&[("l", 4)], &[("i", 1), ("j", 1)]));
    let mut b = super::LeftOutParts::default();
    b.add(0, &of(&[("l", 4)], &[("i", 3)]));
    b.add(1, &of(&[("l", 3)], &[("i", 1)]));
    a.merge(&b);
    assert_eq!(a.whole(), of(&[("l", 4)], &[("i", 5), ("j", 1)]));
}

/// An engine that hands its writes out (a dataflow worker's) and another
/// that makes them (`make_list_writes`) see the list as one engine that
/// makes its own does: from the step's time + 1, writes of one time in one
/// order whatever order they are made in; a write taken and not made is
/// nowhere.
#[test]
fn writes_handed_out_and_made_elsewhere_are_seen_at_one_engine_s_point() {
    let text = r#"
        list blocked for 40ms
        pattern block { partition by k match a where a: kind == "block" then add a.d to blocked }
        pattern clear { partition by k match a where a: kind == "clear" then remove a.d from blocked }
        pattern hit { match a where a: kind == "probe" and d in blocked }
    "#;
    let writes = [
        (1, 10, "block", "x"),
        (2, 10, "clear", "x"),
        (3, 30, "block", "y"),
    ];
    let probes = [
        (4, 10, "x"),
        (5, 11, "x"),
        (6, 30, "y"),
        (7, 31, "y"),
        (8, 49, "x"),
        (9, 50, "x"),
        (11, 69, "y"),
        (12, 70, "y"),
    ];
    let line = |id: i32, ts: i32, kind: &str, d: &str| {
        format!(r#"{{"id": {id}, "ts": {ts}, "kind": "{kind}", "k": "{d}", "d": "{d}"}}"#)
    };
    // One engine.
    let mut one = engine(text, 0);
    let mut all: Vec<(i32, i32, &str, &str)> = writes.to_vec();
    all.extend(probes.iter().map(|&(id, ts, d)| (id, ts, "probe", d)));
    all.sort_by_key(|&(id, ts, _, _)| (ts, id));
    let mut out = Vec::new();
    for &(id, ts, kind, d) in &all {
        push(&mut one, &line(id, ts, kind, d), &mut out);
    }
    one.finish(&mut out);
    let expected: Vec<i64> = hits(&out)
        .into_iter()
        .filter(|(p, _)| p == "hit")
        .map(|(_, id)| id)
        .collect();
    // (x: added and removed at 10, the add wins: seen in [11, 50); y:
    // seen in [31, 70))
    assert_eq!(expected, vec![5, 7, 8, 11]);
    // A writer that hands its writes out and a reader that makes them
    // (the writes of one time given in reverse), moved together.
    let mut writer = engine(text, 0);
    writer.hand_out_list_writes();
    let mut reader = engine(text, 0);
    let (mut wout, mut rout) = (Vec::new(), Vec::new());
    let mut times: Vec<i32> = all.iter().map(|&(_, ts, _, _)| ts).collect();
    times.dedup();
    let mut handed = Vec::new();
    for t in times {
        for &(id, ts, kind, d) in all.iter().filter(|e| e.1 == t) {
            let to = if kind == "probe" {
                &mut reader
            } else {
                &mut writer
            };
            let out = if kind == "probe" {
                &mut rout
            } else {
                &mut wout
            };
            push(to, &line(id, ts, kind, d), out);
        }
        writer.watermark(i64::from(t), &mut wout);
        reader.watermark(i64::from(t), &mut rout);
        let mut taken = Vec::new();
        writer.take_list_writes(&mut taken);
        assert!(taken.iter().all(|w| w.at() == i64::from(t) + 1));
        taken.reverse();
        reader.make_list_writes(&taken);
        handed.extend(taken);
    }
    reader.finish(&mut rout);
    let got: Vec<i64> = hits(&rout).into_iter().map(|(_, id)| id).collect();
    assert_eq!(got, expected);
    assert_eq!(handed.len(), 3);
    // (the writer made none of its own)
    assert_eq!(
        writer.list_contains("blocked", (&Value::from("y")).into()),
        Some(false)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Engines of parts of one stream by another key than the indicators'
    /// (`p`), each taking the others' events for its shared indicators
    /// only (`share_indicators`, `push_for_indicators`), as a dataflow
    /// worker's engines do: each event's values, in whichever engine has
    /// it, are one engine's over the whole stream, with disorder and late
    /// events; those grouped by `p` too, read for the engine's own key or
    /// another's (`mine(1, e.k)`).
    #[test]
    fn engines_of_parts_sharing_indicators_read_one_engine_s_values(
        events in prop::collection::vec((ev_strategy(), 0i64..3), 1..80),
        width in 1i64..30,
        delay in 0u64..8,
    ) {
        let text = format!(r#"
            indicator n = count() where c group by k within {width}ms
            indicator s = sum(v) where c group by k within {width}ms
            indicator d = count_distinct(v) group by k within {width}ms
            indicator hi = max(v) where c group by k within {width}ms
            indicator mine = count() group by p, k within {width}ms
            pattern probe {{
                partition by p
                match e
                select n = n(e.k) s = s(e.k) d = d(e.k) hi = hi(e.k) mine = mine(e.p, e.k)
                    one = mine(1, e.k)
            }}
        "#);
        let lines: Vec<(i64, String)> = events
            .iter()
            .enumerate()
            .map(|(i, ((ts, key, cond, value), p))| {
                let e = Ev { id: i as i64, ts: *ts, key: *key, cond: *cond, value: value.clone() };
                let line = json(&e);
                (*p, format!("{}, \"p\": {p}}}", &line[..line.len() - 1]))
            })
            .collect();
        let values = |out: &[Output<Record>]| {
            let mut by_id: Vec<(i64, Vec<Value>)> = out
                .iter()
                .filter_map(|o| match o {
                    Output::Match(m) => Some((
                        id_of(&m.stages[0].1[0]),
                        m.select.iter().map(|(_, v)| v.clone()).collect(),
                    )),
                    _ => None,
                })
                .collect();
            by_id.sort_by_key(|(id, _)| *id);
            by_id
        };
        let mut one = engine(&text, delay);
        let mut out = Vec::new();
        for (_, line) in &lines {
            push(&mut one, line, &mut out);
        }
        one.finish(&mut out);
        let expected = values(&out);
        let late = out.iter().filter(|o| matches!(o, Output::Late { .. })).count();
        let mut parts = Vec::new();
        let mut late_parts = 0;
        for part in 0..3 {
            let mut e = engine(&text, delay);
            e.keep_indicators_grouped_by(Some(vec![crate::event::FieldPath::parse("p")]));
            e.share_indicators(true);
            let mut out = Vec::new();
            for (p, line) in &lines {
                if *p == part {
                    push(&mut e, line, &mut out);
                } else {
                    let mut decoder = cepheid_decode::Decoder::new(
                        cepheid_decode::Format::JsonLines,
                        "ts",
                        e.fields().clone(),
                    );
                    if let Ok(cepheid_decode::Item::Event(ts, record)) = decoder.decode(line.as_bytes()) {
                        e.push_for_indicators(ts, record, &mut out);
                    }
                }
            }
            e.finish(&mut out);
            late_parts += out.iter().filter(|o| matches!(o, Output::Late { .. })).count();
            parts.extend(values(&out));
            prop_assert_eq!(
                e.stats().events,
                lines.iter().filter(|(p, _)| *p == part).count() as u64
            );
        }
        parts.sort_by_key(|(id, _)| *id);
        prop_assert_eq!(late_parts, late);
        prop_assert_eq!(parts, expected);
    }
}

/// A snapshot encodes each indicator's window entries from the window,
/// by reference (`SavedOut`): the bytes are those of the entries copied
/// out first (`Saved`, which a restore reads), for every kind of
/// indicator, keys of one and two values, and members sharing a window.
#[test]
fn indicator_entries_encoded_in_place_are_the_bytes_of_their_copies() {
    let mut engine = engine(
        r#"
        indicator n = count() where type == "pay" group by card within 1h
        indicator s = sum(amount) where type == "pay" group by card within 1h
        indicator m = max(amount) group by card within 1h
        indicator d = count_distinct(ip) group by card, country within 30m
        indicator a = avg(amount) group by country within 10m
        pattern p { match x where x: n(card) > 100 }
        "#,
        0,
    );
    let mut out = Vec::new();
    for i in 0..200 {
        let line = format!(
            r#"{{"ts": {}, "type": "{}", "card": "c{}", "amount": {}, "ip": "10.0.0.{}", "country": {}}}"#,
            i * 7,
            if i % 3 == 0 { "pay" } else { "view" },
            i % 11,
            i as f64 * 1.5,
            i % 5,
            if i % 2 == 0 { r#""fr""# } else { "7" },
        );
        push(&mut engine, &line, &mut out);
    }
    let memory = &engine.core.memory;
    let (out_ref, _, _) = memory.save();
    let owned = super::Saved {
        now: out_ref.now,
        lists: out_ref.lists.clone(),
        indicators: (memory.indicators.iter())
            .zip(&memory.decls.indicators)
            .map(|(i, d)| {
                let items = (memory.families[i.family].windows.items(i.member))
                    .into_iter()
                    .map(|(k, t, v)| super::SavedItem {
                        key: k.into_iter().map(super::SavedValue).collect(),
                        ts: t,
                        value: v,
                    })
                    .collect::<Vec<_>>();
                (d.name.to_string(), items)
            })
            .collect(),
        scheduled: out_ref.scheduled.clone(),
    };
    assert!(owned.indicators.iter().all(|(_, items)| !items.is_empty()));
    let by_reference = postcard::to_allocvec(&out_ref).unwrap();
    assert_eq!(by_reference, postcard::to_allocvec(&owned).unwrap());
    let back: super::Saved = postcard::from_bytes(&by_reference).unwrap();
    assert_eq!(back.indicators.len(), 5);
}
