//! `sum`, `avg`, `min` and `max` on workers equal their definition
//! computed exactly (`cepheid_testkit::decimal_sum`, never a running
//! float; issue 60, item 1), as on one engine
//! (`cepheid_engine`'s `memory::sum_tests`): indicators grouped by the
//! reader's key (each on the worker of its key) and by another field
//! (shared by the workers over the whole stream), over streams of huge,
//! tiny, negative and infinite values and integers from 2^63 to 2^64 - 1.

use std::sync::{Arc, Mutex};

use cepheid_dataflow::{cep, source, Lateness, Plan, SourceItem};
use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::{Output, Record, Timestamp, Value};
use cepheid_testkit::decimal_sum::{Aggregates, Number};
use proptest::prelude::*;
use timely::dataflow::operators::Inspect;

/// Each match's `select` values, in no order, on `workers` threads that
/// read `lines` from one source on worker 0.
fn selected(text: &str, lines: Vec<String>, workers: usize) -> Vec<Vec<Value>> {
    let loaded = cepheid_engine::rules::load_str("sums.cep", text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let mut plan = Plan::<Record>::new();
    for p in &loaded.patterns {
        plan.add(p).expect("adds");
    }
    let plan = Arc::new(plan);
    let lines = Arc::new(lines);
    let found: Arc<Mutex<Vec<Vec<Value>>>> = Arc::default();
    let collected = Arc::clone(&found);
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let text = if index == 0 {
            lines.join("\n")
        } else {
            String::new()
        };
        let plan = Arc::clone(&plan);
        let found = Arc::clone(&collected);
        worker.dataflow::<Timestamp, _, _>(move |scope| {
            let decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
            let items = Items::new("in", std::io::Cursor::new(text.into_bytes()), decoder)
                .filter_map(|(line, item)| match item.expect("decodes") {
                    Item::Event(ts, event) => Some(SourceItem::Event {
                        ts,
                        offset: line,
                        event,
                    }),
                    Item::Watermark(t) => Some(SourceItem::Watermark(t)),
                    Item::Skip => None,
                });
            let (events, _late) = source(scope, index as u32, items, Lateness::new(0));
            cep(&plan, events, |_| Vec::<Output<Record>>::new()).inspect(move |o| {
                if let Output::Match(m) = o {
                    let values = m.select.iter().map(|(_, v)| v.clone()).collect();
                    found.lock().unwrap().push(values);
                }
            });
        });
    })
    .expect("timely starts")
    .join()
    .into_iter()
    .for_each(|r| r.expect("a worker failed"));
    let found = found.lock().unwrap();
    found.clone()
}

/// A value of `v` as JSON: an integer, one from 2^63 to 2^64 - 1, a
/// float of any magnitude (in exponent form: read as a float), a string.
fn value_text() -> impl Strategy<Value = String> {
    let float = prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |f| f.is_finite()),
        2 => prop::sample::select(vec![1e20, -1e20, 600.0, 1e308, -1e308, 0.1, 5e-324, -0.0, 3.0]),
        2 => (-1000i64..1000, -60i32..60).prop_map(|(m, e)| m as f64 * 2f64.powi(e)),
    ];
    prop_oneof![
        4 => float.prop_map(|f| format!("{f:e}")),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => ((1u64 << 63)..=u64::MAX).prop_map(|u| u.to_string()),
        1 => Just("\"x\"".to_string()),
    ]
}

/// A value as the definition takes it.
fn number(v: &Value) -> Option<Number> {
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

/// A number as `sum`, `min`, `max` give it (beyond `i64`: the nearest
/// float).
fn as_value(x: Number) -> Value {
    match x {
        Number::Int(i) => i64::try_from(i).map_or(Value::Float(i as f64), Value::Int),
        Number::Float(f) => Value::Float(f),
    }
}

fn definition(numbers: &[Number]) -> Vec<Value> {
    let a = Aggregates::of(numbers);
    vec![
        as_value(a.sum),
        a.mean.map_or(Value::Null, Value::Float),
        a.min.map_or(Value::Null, as_value),
        a.max.map_or(Value::Null, as_value),
    ]
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// At every event: the indicators of its key `k` (read under
    /// `partition by k`) and of another field `g` (shared over the whole
    /// stream) over `v` and `v * f` (`f` 1 or 1e300: infinities), on 2
    /// or 3 workers, equal their definition over the window's numbers.
    #[test]
    fn sums_on_workers_equal_their_exact_definition(
        events in prop::collection::vec(
            (0i64..4, 0i64..3, 0i64..2, value_text(), prop::sample::select(vec!["1", "1e300"])),
            1..40,
        ),
        width in 1i64..12,
        workers in 2usize..4,
    ) {
        let text = format!(r#"
            indicator s = sum(v) group by k within {width}ms
            indicator a = avg(v) group by k within {width}ms
            indicator lo = min(v) group by k within {width}ms
            indicator hi = max(v) group by k within {width}ms
            indicator sp = sum(v * f) group by k within {width}ms
            indicator ap = avg(v * f) group by k within {width}ms
            indicator lop = min(v * f) group by k within {width}ms
            indicator hip = max(v * f) group by k within {width}ms
            indicator sg = sum(v) group by g within {width}ms
            indicator ag = avg(v) group by g within {width}ms
            indicator log = min(v) group by g within {width}ms
            indicator hig = max(v) group by g within {width}ms
            pattern probe {{
                partition by k
                match e
                select id = e.id v = e.v p = e.v * e.f
                    s = s(e.k) a = a(e.k) lo = lo(e.k) hi = hi(e.k)
                    sp = sp(e.k) ap = ap(e.k) lop = lop(e.k) hip = hip(e.k)
                    sg = sg(e.g) ag = ag(e.g) log = log(e.g) hig = hig(e.g)
            }}
        "#);
        let mut ts = 0;
        let rows: Vec<(i64, i64, i64)> = events
            .iter()
            .map(|(step, k, g, _, _)| {
                ts += step;
                (ts, *k, *g)
            })
            .collect();
        let lines: Vec<String> = events
            .iter()
            .zip(&rows)
            .enumerate()
            .map(|(id, ((_, _, _, v, f), (ts, k, g)))| {
                format!(r#"{{"id": {id}, "ts": {ts}, "k": {k}, "g": {g}, "v": {v}, "f": {f}}}"#)
            })
            .collect();
        let mut got = selected(&text, lines, workers);
        prop_assert_eq!(got.len(), rows.len());
        got.sort_by_key(|row| match row[0] { Value::Int(id) => id, _ => -1 });
        for (i, row) in got.iter().enumerate() {
            prop_assert_eq!(&row[0], &Value::Int(i as i64));
            let (t, k, g) = rows[i];
            let window = |by_g: bool, column: usize| -> Vec<Number> {
                (0..=i)
                    .filter(|&j| rows[j].0 > t - width && if by_g { rows[j].2 == g } else { rows[j].1 == k })
                    .filter_map(|j| number(&got[j][column]))
                    .collect()
            };
            let mut expected = definition(&window(false, 1));
            expected.extend(definition(&window(false, 2)));
            expected.extend(definition(&window(true, 1)));
            for (c, want) in expected.iter().enumerate() {
                prop_assert!(same(&row[3 + c], want), "event {}: column {} is {:?}, by definition {:?}", i, c, row[3 + c], want);
            }
        }
    }
}
