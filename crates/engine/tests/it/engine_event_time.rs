//! The engine with real patterns: event-time order does not depend on
//! arrival order within the max delay (property test), patterns sharing
//! keys and conditions give what each gives alone (property test), typed
//! events, and memory that returns to zero when the partial matches are
//! gone.

use std::sync::Arc;

use cepheid_core::event::{Event, FieldError, FieldId, FieldPath, FieldResolver};
use cepheid_core::record::FieldTable;
use cepheid_engine::engine::{Engine, Output};
use cepheid_engine::{Record, Timestamp, Value, ValueRef};
use proptest::prelude::*;

const PATTERNS: &str = r#"
pattern pairs {
    partition by k
    within 50ms
    timeouts
    match a followed by b{2}
    where
        a: type == "a"
        b: type == "b"
}

pattern quiet {
    partition by k
    within 30ms
    match a not followed by c
    where
        a: type == "a"
        c: type == "c"
}

pattern global {
    within 20ms
    timeouts
    match c next a
    where
        c: type == "c"
        a: type == "a"
}
"#;

fn engine(max_delay: i64) -> (Engine<Record>, FieldTable) {
    let loaded = cepheid_engine::rules::load_str("test.cep", PATTERNS);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let mut engine: Engine<Record> =
        Engine::with_max_delay(std::time::Duration::from_millis(max_delay as u64));
    for pattern in &loaded.patterns {
        engine.add(pattern).unwrap();
    }
    let table = engine.fields().clone();
    (engine, table)
}

fn record(table: &FieldTable, ts: Timestamp, k: u8, kind: &str) -> Record {
    let text = format!(r#"{{"ts":{ts},"k":{k},"type":"{kind}"}}"#);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    cepheid_decode::record_from_json(table, json.as_object().unwrap(), Arc::from(text))
}

/// Runs events given in arrival order; returns every output.
fn run(max_delay: i64, events: &[(Timestamp, u8, &str)], flush: bool) -> Vec<Output<Record>> {
    let (mut engine, table) = engine(max_delay);
    let mut out = Vec::new();
    for &(ts, k, kind) in events {
        engine.push(ts, record(&table, ts, k, kind), &mut out);
    }
    if flush {
        engine.watermark(Timestamp::MAX, &mut out);
        assert_eq!(engine.live_keys(), 0, "every window expired");
        assert_eq!(engine.stored_events(), 0);
    } else {
        engine.finish(&mut out);
    }
    out
}

/// The outputs of each pattern run alone over `events`, by pattern name.
fn run_alone(events: &[(Timestamp, u8, &str)]) -> Vec<(String, Vec<Output<Record>>)> {
    let loaded = cepheid_engine::rules::load_str("test.cep", PATTERNS);
    loaded
        .patterns
        .iter()
        .map(|pattern| {
            let mut engine: Engine<Record> = Engine::new();
            engine.add(pattern).unwrap();
            let table = engine.fields().clone();
            let mut out = Vec::new();
            for &(ts, k, kind) in events {
                engine.push(ts, record(&table, ts, k, kind), &mut out);
            }
            engine.watermark(Timestamp::MAX, &mut out);
            (pattern.name.clone(), out)
        })
        .collect()
}

/// The name of the pattern that produced an output.
fn pattern_of(output: &Output<Record>) -> &str {
    match output {
        Output::Match(m) | Output::Timeout { partial: m, .. } => &m.pattern,
        Output::Dropped { partial: m, .. } => &m.pattern,
        _ => "",
    }
}

/// An output as text, its events as read (records made with different
/// field tables compare unequal).
fn summary(output: &Output<Record>) -> String {
    let (kind, m, expired) = match output {
        Output::Match(m) => ("match", m, None),
        Output::Timeout {
            partial,
            expired_at,
        } => ("timeout", partial, Some(*expired_at)),
        Output::Dropped { partial, .. } => ("dropped", partial, None),
        Output::Late { ts, .. } => return format!("late {ts}"),
        _ => return "other".to_string(),
    };
    let stages: Vec<String> = m
        .stages
        .iter()
        .map(|(name, events)| {
            let raw: Vec<&str> = events.iter().map(Record::raw).collect();
            format!("{name}: {}", raw.join(" "))
        })
        .collect();
    format!(
        "{kind} {} {:?} {}-{} {expired:?} {}",
        m.pattern,
        m.key,
        m.start,
        m.end,
        stages.join("; ")
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The patterns of one engine share keys (two are partitioned by `k`)
    /// and conditions (`type == "a"` in all three), yet each pattern's
    /// outputs are exactly, in the same order, what it gives alone.
    #[test]
    fn each_pattern_gives_what_it_gives_alone(
        steps in proptest::collection::vec((0i64..12, 0u8..3, 0usize..3), 0..60),
    ) {
        let kinds = ["a", "b", "c"];
        let mut ts = 0;
        let mut events = Vec::new();
        for &(gap, k, kind) in &steps {
            ts += gap;
            events.push((ts, k, kinds[kind]));
        }
        let together = run(0, &events, true);
        for (name, alone) in run_alone(&events) {
            let mine: Vec<_> = together
                .iter()
                .filter(|o| pattern_of(o) == name)
                .map(summary)
                .collect();
            let alone: Vec<_> = alone.iter().map(summary).collect();
            prop_assert_eq!(mine, alone, "pattern {}", name);
        }
    }

    /// Delivering events shuffled within the max delay gives the same
    /// matches and timeouts, in the same order, as delivering them sorted.
    #[test]
    fn shuffled_within_the_delay_equals_sorted(
        steps in proptest::collection::vec((1i64..15, 0u8..3, 0usize..3, 0i64..=40), 0..50),
        delay in 0i64..=40,
    ) {
        let kinds = ["a", "b", "c"];
        let mut ts = 0;
        let mut sorted = Vec::new();
        let mut arriving = Vec::new();
        for &(gap, k, kind, jitter) in &steps {
            ts += gap;
            sorted.push((ts, k, kinds[kind]));
            arriving.push((ts + jitter.min(delay), (ts, k, kinds[kind])));
        }
        arriving.sort_by_key(|(arrival, _)| *arrival);
        let shuffled: Vec<_> = arriving.into_iter().map(|(_, e)| e).collect();
        for flush in [false, true] {
            let expected = run(delay, &sorted, flush);
            let late = expected.iter().filter(|o| matches!(o, Output::Late { .. })).count();
            prop_assert_eq!(late, 0);
            prop_assert_eq!(run(delay, &shuffled, flush), expected);
        }
    }
}

#[test]
fn quiet_keys_end_their_pending_not_followed_by_on_the_global_watermark() {
    let out = run(0, &[(0, 1, "a"), (100, 2, "b")], false);
    let quiet: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Match(m) if m.pattern == "quiet" => Some(m.key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(quiet, [vec![Value::Int(1)]]);
}

/// A typed event with a hand-written `Event` implementation.
#[derive(Clone, Debug, PartialEq)]
struct Reading {
    sensor: u32,
    celsius: f64,
}

/// `sensor` is id 0, `celsius` id 1.
#[derive(Clone, Default)]
struct ReadingFields;

impl FieldResolver for ReadingFields {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
        match path.to_string().as_str() {
            "sensor" => Ok(FieldId::from_index(0)),
            "celsius" => Ok(FieldId::from_index(1)),
            _ => Err(FieldError::new(path).of_type("Reading")),
        }
    }
}

impl Event for Reading {
    type Fields = ReadingFields;

    fn field(&self, id: FieldId) -> ValueRef<'_> {
        match id.index() {
            0 => ValueRef::from(self.sensor),
            1 => ValueRef::Float(self.celsius),
            _ => ValueRef::Null,
        }
    }
}

#[test]
fn typed_events_run_through_the_engine() {
    let source = r#"
        pattern heating {
            partition by sensor
            within 1m
            match hot{2} consecutive
            where hot: celsius > 80
        }"#;
    let loaded = cepheid_engine::rules::load_str("typed.cep", source);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let mut engine: Engine<Reading> = Engine::new();
    engine.add(&loaded.patterns[0]).unwrap();
    let mut out = Vec::new();
    for (ts, sensor, celsius) in [(0, 1, 85.0), (1, 2, 90.0), (2, 1, 86.0), (3, 2, 20.0)] {
        engine.push(ts, Reading { sensor, celsius }, &mut out);
    }
    engine.watermark(Timestamp::MAX, &mut out);
    let outputs = std::mem::take(&mut out);
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let Output::Match(m) = &outputs[0] else {
        panic!("{outputs:?}")
    };
    assert_eq!(m.stage("hot").len(), 2);
    assert_eq!(m.key[0], Value::Int(1));
    assert_eq!(engine.live_keys(), 0);
}

#[test]
fn state_follows_live_work_not_history() {
    let loaded = cepheid_engine::rules::load_str(
        "orders.cep",
        r#"
        pattern unpaid {
            partition by order_id
            within 15m
            timeouts
            match created followed by paid
            where
                created: type == "order_created"
                paid:    type == "order_paid"
        }"#,
    );
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let mut engine: Engine<Record> = Engine::with_max_delay(std::time::Duration::from_secs(5));
    engine.add(&loaded.patterns[0]).unwrap();
    let table = engine.fields().clone();
    let order = |ts: Timestamp, kind: &str, id: i64| {
        let text = format!(r#"{{"ts":{ts},"type":"{kind}","order_id":{id}}}"#);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        cepheid_decode::record_from_json(&table, json.as_object().unwrap(), Arc::from(text))
    };
    let mut out = Vec::new();
    let mut peak = 0;
    // One order a second, paid a minute later (every tenth never): about 60
    // open orders and 90 unpaid ones waiting for their window at any time.
    for i in 0..20_000i64 {
        let ts = i * 1_000;
        engine.push(ts, order(ts, "order_created", i), &mut out);
        if i >= 60 && (i - 60) % 10 != 0 {
            engine.push(ts, order(ts, "order_paid", i - 60), &mut out);
        }
        peak = peak.max(engine.live_keys());
        out.clear();
    }
    assert!(peak <= 1_000, "live keys peaked at {peak}");
    assert!(engine.stored_events() <= 1_000);
    engine.watermark(Timestamp::MAX, &mut out);
    assert_eq!(engine.live_keys(), 0);
    assert_eq!(engine.stored_events(), 0);
    let paid = (0..20_000 - 60).filter(|j| j % 10 != 0).count() as u64;
    assert_eq!(engine.stats().matches, paid);
    assert_eq!(engine.stats().timeouts, 20_000 - paid);
}
