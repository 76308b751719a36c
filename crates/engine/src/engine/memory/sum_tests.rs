//! `sum`, `avg`, `min` and `max` on one engine against their definition
//! computed exactly (`cepheid_testkit::decimal_sum`, never a running
//! float): the exact sum of the window's numbers rounded once, the exact
//! mean rounded once, the exact extremes, over streams of huge, tiny,
//! negative, infinite and NaN values and integers from 2^63 to 2^64 - 1
//! (issue 60, item 1).

use std::time::Duration;

use cepheid_testkit::decimal_sum::{Aggregates, Number};
use proptest::prelude::*;

use crate::engine::{Engine, Output};
use crate::record::Record;
use crate::rules::Rules;
use crate::value::Value;

fn engine(text: &str) -> Engine<Record> {
    let rules = Rules::parse("t.cep", text).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::with_max_delay(Duration::ZERO);
    engine.add(&rules).unwrap();
    engine
}

/// Each match's `select` values, in output order.
fn selected(engine: &mut Engine<Record>, lines: &[String]) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for line in lines {
        engine.push_json(line, "ts", &mut out).unwrap();
    }
    engine.finish(&mut out);
    out.iter()
        .filter_map(|o| match o {
            Output::Match(m) => Some(m.select.iter().map(|(_, v)| v.clone()).collect()),
            _ => None,
        })
        .collect()
}

const VELOCITY: &str = r#"
    indicator spent = sum(amount) group by card within 10m
    pattern velocity {
        match p
        where p: spent(card) > 1000
        select spent = spent(p.card)
    }
"#;

/// One payment of 1e20, then 600.0 every 30 s: every payment is over
/// 1000 in its window, before and after the big one leaves it (a running
/// float read 0.0 once it had left: no alert at all).
#[test]
fn a_huge_amount_that_left_the_window_blinds_no_velocity_rule() {
    let mut lines = vec![r#"{"ts": 0, "card": "c", "amount": 1e20}"#.to_string()];
    for i in 1..=240 {
        lines.push(format!(
            r#"{{"ts": {}, "card": "c", "amount": 600.0}}"#,
            i * 30_000
        ));
    }
    let spent = selected(&mut engine(VELOCITY), &lines);
    assert_eq!(spent.len(), 241, "every payment alerts");
    assert_eq!(spent[0], vec![Value::Float(1e20)]);
    assert_eq!(spent[19], vec![Value::Float(1e20 + 19.0 * 600.0)]);
    // (at 10 min the big one has left: 20 payments of 600.0)
    for s in &spent[20..] {
        assert_eq!(s, &vec![Value::Float(12_000.0)]);
    }
}

/// Two payments of 1e308 (an infinite sum while they are in the window),
/// then 10.0 every 30 s: alerts while they are in the window, none after
/// (a running float stayed infinite: an alert at every payment).
#[test]
fn an_infinite_sum_ends_when_its_amounts_leave_the_window() {
    let mut lines = vec![
        r#"{"ts": 0, "card": "c", "amount": 1e308}"#.to_string(),
        r#"{"ts": 1, "card": "c", "amount": 1e308}"#.to_string(),
    ];
    for i in 1..=240 {
        lines.push(format!(
            r#"{{"ts": {}, "card": "c", "amount": 10.0}}"#,
            i * 30_000
        ));
    }
    let text = VELOCITY.replace("spent(card) > 1000", "true");
    let spent: Vec<Value> = selected(&mut engine(&text), &lines)
        .into_iter()
        .map(|mut s| s.remove(0))
        .collect();
    assert_eq!(spent[0], Value::Float(1e308));
    // (payments at 30 s to 9.5 min see both; at 10 min, the one at 1 ms)
    assert!(spent[1..21]
        .iter()
        .all(|s| *s == Value::Float(f64::INFINITY)));
    assert_eq!(spent[21], Value::Float(1e308 + 200.0));
    assert!(spent[22..].iter().all(|s| *s == Value::Float(200.0)));
    let alerts = selected(&mut engine(VELOCITY), &lines);
    assert_eq!(
        alerts.len(),
        22,
        "alerts while a 1e308 is in the window only"
    );
}

/// Integers from 2^63 to 2^64 - 1 (kept as their digits) are numbers for
/// `sum`, `avg`, `min` and `max`, integers exact while every value is one.
#[test]
fn integers_beyond_i64_are_numbers_of_sum_avg_min_and_max() {
    let text = r#"
        indicator s = sum(v) group by k within 1h
        indicator a = avg(v) group by k within 1h
        indicator lo = min(v) group by k within 1h
        indicator hi = max(v) group by k within 1h
        pattern p { match e select s = s(e.k) a = a(e.k) lo = lo(e.k) hi = hi(e.k) }
    "#;
    let lines: Vec<String> = [
        "18446744073709551615",
        "-9223372036854775808",
        "9223372036854775808",
        "\"x\"",
    ]
    .iter()
    .enumerate()
    .map(|(i, v)| format!(r#"{{"ts": {i}, "k": 1, "v": {v}}}"#))
    .collect();
    let mut e = engine(text);
    let got = selected(&mut e, &lines);
    // (2^64 - 1 is no float: the nearest is 2^64)
    let top = Value::Float(18_446_744_073_709_551_616.0);
    assert_eq!(
        got[0],
        vec![top.clone(), top.clone(), top.clone(), top.clone()]
    );
    // 2^64 - 1 - 2^63, exact (a float sum gives 2^63, beyond i64)
    let low = Value::Int(i64::MIN);
    assert_eq!(
        got[1],
        vec![
            Value::Int(i64::MAX),
            Value::Float(i64::MAX as f64 / 2.0),
            low.clone(),
            top.clone()
        ]
    );
    let three = Value::Float((u64::MAX as f64) / 3.0);
    assert_eq!(
        got[2],
        vec![top.clone(), three.clone(), low.clone(), top.clone()]
    );
    assert_eq!(got[3], got[2]);
    assert_eq!(e.memory_stats().non_numeric, 4);
}

/// A value of `v` as JSON: an integer, an integer from 2^63 to 2^64 - 1,
/// a float of any magnitude (its shortest digits, in exponent form so
/// that it is read as a float), or a string.
fn value_text() -> impl Strategy<Value = String> {
    let float = prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |f| f.is_finite()),
        2 => prop::sample::select(vec![
            1e20, -1e20, 600.0, 1e308, -1e308, f64::MAX, -f64::MAX, 0.1, -0.1, 5e-324,
            f64::MIN_POSITIVE, 0.0, -0.0, 1.0, 3.0,
        ]),
        2 => (-1000i64..1000, -60i32..60).prop_map(|(m, e)| m as f64 * 2f64.powi(e)),
    ];
    prop_oneof![
        4 => float.prop_map(|f| format!("{f:e}")),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => (-5i64..5).prop_map(|i| i.to_string()),
        1 => ((1u64 << 63)..=u64::MAX).prop_map(|u| u.to_string()),
        1 => Just("\"x\"".to_string()),
    ]
}

/// A value as the definition takes it: an integer exactly (the digits of
/// one from 2^63 to 2^64 - 1 too), a float; NaN and other strings are no
/// number.
fn num(v: &Value) -> Option<Number> {
    match v {
        Value::Int(i) => Some(Number::Int(i128::from(*i))),
        Value::Float(f) if !f.is_nan() => Some(Number::Float(*f)),
        Value::Str(s) => s
            .parse::<u64>()
            .ok()
            .filter(|&u| u > i64::MAX as u64 && u.to_string() == **s)
            .map(|u| Number::Int(i128::from(u))),
        _ => None,
    }
}

/// A number as `sum`, `min` and `max` give it: an integer beyond `i64`,
/// the nearest float.
fn as_value(x: Number) -> Value {
    match x {
        Number::Int(i) => i64::try_from(i).map_or(Value::Float(i as f64), Value::Int),
        Number::Float(f) => Value::Float(f),
    }
}

/// `sum`, `avg`, `min`, `max` of `numbers` (in the window, oldest first)
/// by their definition.
fn definition(numbers: &[Number]) -> Vec<Value> {
    let a = Aggregates::of(numbers);
    vec![
        as_value(a.sum),
        a.mean.map_or(Value::Null, Value::Float),
        a.min.map_or(Value::Null, as_value),
        a.max.map_or(Value::Null, as_value),
    ]
}

/// Are two values the same (NaN as NaN)?
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `sum`, `avg`, `min` and `max` of a field (integers, integers beyond
    /// `i64`, floats of every magnitude, strings) and of a product of
    /// fields that overflows to infinities and gives NaN (`v * f * g`,
    /// `f` up to ±1e300, `g` 0 or 1), at every event, equal their
    /// definition computed exactly over the window's numbers, as values
    /// enter and leave the windows of three keys.
    #[test]
    fn sums_means_and_extremes_equal_their_exact_definition(
        events in prop::collection::vec(
            (0i64..4, 0i64..3, value_text(), prop::sample::select(vec!["1", "1e300", "-1e300", "-1"]), prop::sample::select(vec!["1", "0"])),
            1..50,
        ),
        width in 1i64..12,
    ) {
        let text = format!(r#"
            indicator s = sum(v) group by k within {width}ms
            indicator a = avg(v) group by k within {width}ms
            indicator lo = min(v) group by k within {width}ms
            indicator hi = max(v) group by k within {width}ms
            indicator sp = sum(v * f * g) group by k within {width}ms
            indicator ap = avg(v * f * g) group by k within {width}ms
            indicator lop = min(v * f * g) group by k within {width}ms
            indicator hip = max(v * f * g) group by k within {width}ms
            pattern probe {{
                match e
                select k = e.k v = e.v p = e.v * e.f * e.g
                    s = s(e.k) a = a(e.k) lo = lo(e.k) hi = hi(e.k)
                    sp = sp(e.k) ap = ap(e.k) lop = lop(e.k) hip = hip(e.k)
            }}
        "#);
        let mut ts = 0;
        let lines: Vec<String> = events
            .iter()
            .map(|(step, k, v, f, g)| {
                ts += step;
                format!(r#"{{"ts": {ts}, "k": {k}, "v": {v}, "f": {f}, "g": {g}}}"#)
            })
            .collect();
        let times: Vec<i64> = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"].as_i64().unwrap())
            .collect();
        let mut engine = engine(&text);
        let got = selected(&mut engine, &lines);
        prop_assert_eq!(got.len(), lines.len());
        let mut refused = 0u64;
        for (i, row) in got.iter().enumerate() {
            let window: Vec<&Vec<Value>> = (0..=i)
                .filter(|&j| got[j][0] == row[0] && times[j] > times[i] - width)
                .map(|j| &got[j])
                .collect();
            let of = |column: usize| -> Vec<Number> {
                window.iter().filter_map(|r| num(&r[column])).collect()
            };
            let mut expected = definition(&of(1));
            expected.extend(definition(&of(2)));
            for (c, want) in expected.iter().enumerate() {
                prop_assert!(same(&row[3 + c], want), "event {}: column {} is {:?}, by definition {:?}", i, c, row[3 + c], want);
            }
            // (strings and NaN are refused and counted; null is left out)
            refused += 4 * u64::from(num(&row[1]).is_none() && !row[1].is_null());
            refused += 4 * u64::from(num(&row[2]).is_none() && !row[2].is_null());
        }
        prop_assert_eq!(engine.memory_stats().non_numeric, refused);
    }
}
