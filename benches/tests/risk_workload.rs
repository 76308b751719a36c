//! The `risk` workload (issue 60): the engine's flagged events equal the
//! table of `bench-workloads.md` (3,320 / 28,133 / 115,247 at 1M events;
//! 155 / 1,743 / 132 at 100,000) and the hand-written windows', on typed
//! events and on JSON lines as `cepheid run` reads them; `risk-scene`
//! (issue 62) decides every event once and counts the same.

use cepheid_bench::risk::{self, RiskCounts, RiskEvent};
use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::{Record, Timestamp};

fn stream(n: u64) -> Vec<RiskEvent> {
    risk::events(n, 42, risk::STEP_MS).collect()
}

#[test]
fn a_million_events_give_the_table_s_counts() {
    let events = stream(1_000_000);
    let expected = risk::expected(1_000_000, 42, risk::STEP_MS).unwrap();
    assert_eq!(
        expected,
        RiskCounts {
            card_count: 3_320,
            card_amount: 28_133,
            device_cards: 115_247
        }
    );
    assert_eq!(risk::reference_counts(&events), expected);
    assert_eq!(risk::engine_counts(&events).unwrap(), expected);
}

#[test]
fn a_hundred_thousand_events_as_json_lines_give_the_table_s_counts() {
    let events = stream(100_000);
    let expected = risk::expected(100_000, 42, risk::STEP_MS).unwrap();
    assert_eq!(risk::reference_counts(&events), expected);
    assert_eq!(risk::engine_counts(&events).unwrap(), expected);
    let mut text = Vec::new();
    risk::write_jsonl(events, &mut text).unwrap();
    let mut engine = risk::engine_for::<Record>().unwrap();
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut sink = risk::Discard::default();
    for (_, item) in Items::new("risk", &text[..], decoder) {
        if let Item::Event(ts, record) = item.unwrap() {
            engine.push(ts, record, &mut sink);
        }
    }
    engine.watermark(Timestamp::MAX, &mut sink);
    assert_eq!(risk::counts_of(&engine), expected);
}

/// `risk-scene` (issue 62): the same rules in one scene that every event
/// enters decide every event once and match what they match without it.
#[test]
fn the_scene_decides_every_event_once_and_changes_no_count() {
    let events = stream(100_000);
    let mut engine = risk::engine_with_scene_for::<RiskEvent>().unwrap();
    let mut sink = risk::Discard::default();
    for e in &events {
        engine.push(e.ts, *e, &mut sink);
    }
    engine.watermark(Timestamp::MAX, &mut sink);
    assert_eq!(sink.decisions, [events.len() as u64, 0]);
    assert_eq!(engine.decision_stats().decisions, events.len() as u64);
    let expected = risk::expected(100_000, 42, risk::STEP_MS).unwrap();
    assert_eq!(risk::counts_of(&engine), expected);
}
