//! `cepheid_dataflow` on worker threads gives what one engine gives: for
//! random keyed streams over every pattern of `patterns/` (plus one pattern
//! without `partition by`, which runs on worker 0, and one keyed by two
//! fields), 1, 2 and 4 workers produce the same multiset of matches,
//! timeouts and late events as a single [`Engine`] over the whole stream.
//!
//! Two ways to read the input: split in one part per worker (each part its
//! own source, disorder within the delay: no event is late anywhere), and
//! one source on worker 0 with disorder beyond the delay and `$watermark`
//! lines (the late events are then exactly the single engine's).

use crate::dataflow_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_dataflow::{cep, source, Lateness, Plan, SourceItem};
use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::{Engine, Output, Record, Timestamp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use timely::dataflow::operators::Inspect;

use dataflow_support::{coarse_lines, event, lines, patterns};

/// Each output as a canonical line: its record (what `cepheid run` prints)
/// and its `Debug` form (every field, the records' values too), sorted.
fn canonical(outputs: &[Output<Record>]) -> Vec<String> {
    let mut lines: Vec<String> = outputs
        .iter()
        .map(|o| format!("{} {o:?}", serde_json::to_string(o).expect("serializes")))
        .collect();
    lines.sort();
    lines
}

/// One engine over the whole stream, as `cepheid run` drives it.
fn single(
    patterns: &[cepheid_core::pattern::Pattern],
    lines: &[String],
    delay: i64,
) -> Vec<String> {
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_millis(delay as u64));
    for p in patterns {
        engine.add(p).expect("adds");
    }
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let text = lines.join("\n");
    let mut out: Vec<Output<Record>> = Vec::new();
    let mut punctuated = false;
    for (_, item) in Items::new("in", text.as_bytes(), decoder) {
        match item.expect("decodes") {
            Item::Event(ts, record) => {
                engine.push(ts, record, &mut out);
            }
            Item::Watermark(t) => {
                punctuated = true;
                engine.watermark(t, &mut out);
            }
            Item::Skip => {}
        }
    }
    if !punctuated {
        engine.finish(&mut out);
    }
    canonical(&out)
}

/// The dataflow on `workers` threads; worker `i` reads `parts[i]` (none
/// when there are fewer parts).
fn dataflow(
    patterns: &[cepheid_core::pattern::Pattern],
    parts: Vec<Vec<String>>,
    delay: i64,
    workers: usize,
) -> Vec<String> {
    let mut plan = Plan::<Record>::new();
    for p in patterns {
        plan.add(p).expect("adds");
    }
    let plan = Arc::new(plan);
    let parts = Arc::new(parts);
    let found: Arc<Mutex<Vec<Output<Record>>>> = Arc::default();
    let collected = Arc::clone(&found);
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let text = parts.get(index).map(|p| p.join("\n")).unwrap_or_default();
        let plan = Arc::clone(&plan);
        let (late_to, found_to) = (Arc::clone(&collected), Arc::clone(&collected));
        worker.dataflow::<Timestamp, _, _>(move |scope| {
            let decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
            let items = Items::new("part", std::io::Cursor::new(text.into_bytes()), decoder)
                .filter_map(|(line, item)| match item.expect("decodes") {
                    Item::Event(ts, event) => Some(SourceItem::Event {
                        ts,
                        offset: line,
                        event,
                    }),
                    Item::Watermark(t) => Some(SourceItem::Watermark(t)),
                    Item::Skip => None,
                });
            let (events, late) = source(scope, index as u32, items, Lateness::new(delay));
            late.inspect(move |late| {
                let (ts, event) = (&late.ts, &late.event);
                late_to.lock().unwrap().push(Output::Late {
                    ts: *ts,
                    event: event.clone(),
                })
            });
            cep(&plan, events, |_| Vec::<Output<Record>>::new())
                .inspect(move |o| found_to.lock().unwrap().push(o.clone()));
        });
    })
    .expect("timely starts")
    .join()
    .into_iter()
    .for_each(|r| r.expect("a worker failed"));
    let found = found.lock().unwrap();
    canonical(&found)
}

/// `lines` cut in `n` contiguous parts.
fn split(lines: &[String], n: usize) -> Vec<Vec<String>> {
    (0..n)
        .map(|i| lines[i * lines.len() / n..(i + 1) * lines.len() / n].to_vec())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_worker_count_equals_one_engine(
        events in prop::collection::vec(event(), 1..300),
        delay in prop_oneof![Just(0i64), 1i64..20_000],
    ) {
        let patterns = patterns();
        // Split in one part per worker, disorder within the delay.
        let within = lines(&events, delay, true);
        let expected = single(&patterns, &within, delay);
        for workers in [1, 2, 4] {
            let got = dataflow(&patterns, split(&within, workers), delay, workers);
            prop_assert_eq!(&got, &expected, "{} workers, parts", workers);
        }
        // One reader, disorder beyond the delay, punctuation: late events.
        let beyond = lines(&events, delay, false);
        let expected = single(&patterns, &beyond, delay);
        for workers in [1, 2, 4] {
            let got = dataflow(&patterns, vec![beyond.clone()], delay, workers);
            prop_assert_eq!(&got, &expected, "{} workers, one source", workers);
        }
    }

    /// Times in whole seconds: rules write lists that rules of other keys
    /// (and of no key) read, several writes of one time meet (adds and
    /// removes of one value), events share the time of a write; shadow
    /// rules write the shadow copies of the same lists, which other
    /// shadow rules read (`docs/semantics.md`, "Shadow rules").
    #[test]
    fn writes_of_one_time_give_one_engine_s_records_on_any_worker_count(
        events in prop::collection::vec(event(), 1..300),
        delay in prop_oneof![Just(0i64), 1i64..5_000],
    ) {
        let patterns = patterns();
        let stream = coarse_lines(&events, delay);
        let expected = single(&patterns, &stream, delay);
        for workers in [1, 2, 3, 4] {
            let got = dataflow(&patterns, vec![stream.clone()], delay, workers);
            prop_assert_eq!(&got, &expected, "{} workers", workers);
        }
    }
}

#[test]
fn the_streams_have_matches_timeouts_and_late_events() {
    // The generator is not vacuous: one fixed stream (over three hours)
    // has all three.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let events = prop::collection::vec(event(), 600)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let patterns = patterns();
    let out = single(&patterns, &lines(&events, 5_000, false), 5_000);
    for kind in ["\"match\"", "\"timeout\"", "\"late\""] {
        assert!(
            out.iter().any(|l| l.contains(&format!("\"kind\":{kind}"))),
            "no {kind} in {} outputs",
            out.len()
        );
    }
    // Every reader of an indicator has records (the values of those that
    // `select` them in their records).
    for name in [
        "account_takeover",
        "user_login_burst",
        "card_spend_then_withdrawal",
        "device_prices",
        "account_extremes",
        "shared_ip",
        "ip_shared_then_withdrawal",
        "login_from_shared_ip",
        "user_ip_fails_counted",
        "login_on_flagged_device",
        "withdrawal_from_cleared_ip",
        "first_withdrawal_from_ip",
        "sensor_on_quiet_device",
        // (shadow rules reading the shadow copies of lists)
        "shadow_login_on_flagged_device",
        "shadow_first_withdrawal_from_ip",
    ] {
        let pattern = format!("\"pattern\":\"{name}\"");
        assert!(
            out.iter().any(|l| l.contains(&pattern)),
            "no record of {name}"
        );
    }
    assert_eq!(
        dataflow(&patterns, vec![lines(&events, 5_000, false)], 5_000, 2),
        out
    );
}
