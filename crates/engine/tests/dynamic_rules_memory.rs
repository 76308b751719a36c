//! Memory after a change of rules (issue 14: "memory after removing a
//! pattern with 100,000 live runs returns to the baseline";
//! `docs/dynamic-rules.md`): an engine holding 100,000 live partial
//! matches loses a pattern (removed, replaced under `restart`, or replaced
//! under `drain` and then left to time out), and everything the pattern
//! held is given back: the engine's own accounting (live runs, stored
//! events, live keys, waiting events) and its heap bytes, counted by a
//! global allocator, equal those of an engine that never had the pattern.
//! No timing is checked here (`examples/reload_latency.rs` measures it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::{Change, ReloadPolicy};
use cepheid_engine::{Engine, MatchRef, Record, Rules, Sink, Timestamp};

/// The system allocator, counting per thread the bytes it holds live for
/// that thread (tests run on threads of their own; an engine allocates
/// and frees on the thread that drives it).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

// SAFETY: every call is passed to `System` unchanged; only the counter is
// added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes this thread holds live.
fn heap() -> isize {
    LIVE.with(Cell::get)
}

/// Counts what the engine reports.
#[derive(Default)]
struct Count(u64);

impl Sink<Record> for Count {
    fn on_match(&mut self, _: &MatchRef<'_, Record>) {
        self.0 += 1;
    }
    fn on_timeout(&mut self, _: &MatchRef<'_, Record>, _: Timestamp) {
        self.0 += 1;
    }
}

const LIBRARY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../patterns");
const UNPAID: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../patterns/unpaid_orders.cep"
);

/// `unpaid_order` with another window: a changed pattern.
fn unpaid_v2() -> Rules {
    let text = std::fs::read_to_string(UNPAID).unwrap();
    assert!(text.contains("within 15m"));
    Rules::parse(
        "unpaid_orders.cep",
        &text.replace("within 15m", "within 16m"),
    )
    .unwrap()
}

/// The library without `unpaid_order`.
fn library_without_unpaid() -> Rules {
    let mut files: Vec<_> = std::fs::read_dir(LIBRARY)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cep"))
        .filter(|p| !p.ends_with("unpaid_orders.cep"))
        .collect();
    files.sort();
    Rules::load_all(&files).unwrap()
}

/// Per key `k`, nine events that start a partial match of each pattern
/// of the library and complete none (ten runs: a failed login starts one
/// of each `brute_force` pattern), each pattern on keys of its own.
fn library_events(keys: usize) -> Vec<String> {
    (0..keys)
        .flat_map(|k| {
            [
                format!(r#"{{"type":"login","success":true,"account_id":"a{k}","ip":"10.0.0.1"}}"#),
                format!(r#"{{"type":"trade","status":"filled","quantity":1,"notional":10.5,"symbol":"X","user_id":"t{k}"}}"#),
                format!(r#"{{"type":"login","success":false,"user_id":"u{k}","ip":"10.0.0.2"}}"#),
                format!(r#"{{"type":"charge","amount":1.25,"merchant_id":"m1","card_id":"c{k}"}}"#),
                format!(r#"{{"type":"coupon_claim","user_id":"x","coupon_id":"c1","device_id":"d{k}"}}"#),
                format!(r#"{{"type":"payment","status":"declined","reason":"funds","order_id":"p{k}"}}"#),
                format!(r#"{{"type":"price","price":100.0,"symbol":"s{k}"}}"#),
                format!(r#"{{"type":"sensor","temperature":20.0,"sensor_id":"z{k}"}}"#),
                format!(r#"{{"type":"order_created","user_id":"x","amount":5,"order_id":"o{k}"}}"#),
            ]
        })
        .collect()
}

/// One order created per key: one `unpaid_order` run each.
fn order_events(keys: usize) -> Vec<String> {
    (0..keys)
        .map(|k| {
            format!(r#"{{"type":"order_created","user_id":"u{k}","amount":5,"order_id":"o{k}"}}"#)
        })
        .collect()
}

/// Pushes `lines`, decoded with the engine's fields, at times ascending
/// within 30 seconds (inside every window of the library), and a watermark
/// at 30 seconds: none waits.
fn feed(engine: &mut Engine<Record>, lines: &[String], sink: &mut Count) {
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).without_time();
    let n = lines.len() as i64;
    for (i, line) in lines.iter().enumerate() {
        match decoder.decode(line.as_bytes()).unwrap() {
            Item::Event(_, record) => {
                engine.push(i as i64 * 30_000 / n, record, sink);
            }
            other => panic!("not an event: {other:?}"),
        }
    }
    engine.watermark(30_000, sink);
}

/// The engine's accounting, as one comparable value.
fn accounting(engine: &Engine<Record>) -> [usize; 4] {
    [
        engine.live_runs(),
        engine.stored_events(),
        engine.live_keys(),
        engine.waiting_events(),
    ]
}

/// What an engine holds on this thread's heap after `make` built it (the
/// engine stays alive until it is measured).
fn measured(make: impl FnOnce() -> Engine<Record>) -> (Engine<Record>, isize) {
    let base = heap();
    let engine = make();
    let bytes = heap() - base;
    (engine, bytes)
}

/// The heap of the engine after the change may exceed the baseline's by
/// this much at most (a few vectors' rounding; the state of 100,000 runs
/// is tens of megabytes).
const SLACK: isize = 64 * 1024;

fn assert_back_to_baseline(
    what: &str,
    (after, after_bytes): (Engine<Record>, isize),
    (baseline, baseline_bytes): (Engine<Record>, isize),
    peak_bytes: isize,
) {
    assert_eq!(
        accounting(&after),
        accounting(&baseline),
        "{what}: accounting"
    );
    eprintln!(
        "{what}: {peak_bytes} bytes with the runs, {after_bytes} after the change, \
         {baseline_bytes} in the baseline"
    );
    assert!(
        after_bytes <= baseline_bytes + SLACK,
        "{what}: {after_bytes} heap bytes after the change, {baseline_bytes} in an engine \
         that never had the pattern ({peak_bytes} before the change)"
    );
}

const KEYS: usize = 100_000;

/// 100,000 live runs of `unpaid_order`, one per key, then `change`; the
/// heap bytes before it.
fn unpaid_engine(
    change: impl FnOnce(&mut Engine<Record>, &mut Count),
) -> (Engine<Record>, isize, isize) {
    let lines = order_events(KEYS);
    let base = heap();
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&Rules::load(UNPAID).unwrap()).unwrap();
    let mut sink = Count::default();
    feed(&mut engine, &lines, &mut sink);
    assert_eq!(engine.live_runs(), KEYS);
    assert_eq!(engine.stored_events(), KEYS);
    assert_eq!(engine.live_keys(), KEYS);
    let peak = heap() - base;
    change(&mut engine, &mut sink);
    let after = heap() - base;
    (engine, after, peak)
}

/// An engine that never had `unpaid_order`: the same events, then
/// `patterns` added (if any) and `then` done.
fn baseline(
    patterns: Option<Rules>,
    then: impl FnOnce(&mut Engine<Record>),
) -> (Engine<Record>, isize) {
    let lines = order_events(KEYS);
    measured(|| {
        let mut engine: Engine<Record> = Engine::new();
        let mut sink = Count::default();
        feed(&mut engine, &lines, &mut sink);
        if let Some(p) = patterns {
            engine.add(&p).unwrap();
        }
        then(&mut engine);
        assert_eq!(sink.0, 0);
        engine
    })
}

#[test]
fn removing_a_pattern_with_100_000_live_runs_frees_its_memory() {
    let (engine, after, peak) = unpaid_engine(|engine, sink| {
        engine.remove("unpaid_order", sink).unwrap();
        assert_eq!(sink.0, 0);
    });
    assert_eq!(engine.stats().discarded_runs, KEYS as u64);
    assert_eq!(engine.patterns().count(), 0);
    assert_back_to_baseline("remove", (engine, after), baseline(None, |_| {}), peak);
}

#[test]
fn replacing_under_restart_frees_the_old_versions_memory() {
    let (engine, after, peak) = unpaid_engine(|engine, sink| {
        let changes = engine
            .replace(&unpaid_v2(), ReloadPolicy::Restart, sink)
            .unwrap();
        assert_eq!(
            changes.get("unpaid_order"),
            Some(Change::Changed { version: 2 })
        );
    });
    assert_eq!(engine.stats().discarded_runs, KEYS as u64);
    assert_back_to_baseline(
        "restart",
        (engine, after),
        baseline(Some(unpaid_v2()), |_| {}),
        peak,
    );
}

/// Under `drain` the old version's runs go on; once time runs out (the
/// watermark passes their window: each is a match of `not followed by`)
/// the old version holds nothing and is gone with all it held.
#[test]
fn a_drained_version_frees_its_memory_once_its_runs_time_out() {
    let end: Timestamp = 20 * 60_000;
    let mut matches = 0;
    let (engine, after, peak) = unpaid_engine(|engine, sink| {
        engine
            .replace(&unpaid_v2(), ReloadPolicy::Drain, sink)
            .unwrap();
        assert_eq!(engine.live_runs(), KEYS, "the old version drains");
        engine.watermark(end, sink);
        matches = sink.0;
    });
    assert_eq!(matches, KEYS as u64);
    assert_eq!(engine.stats().discarded_runs, 0);
    assert_back_to_baseline(
        "drain",
        (engine, after),
        baseline(Some(unpaid_v2()), |e| {
            e.watermark(end, &mut Count::default())
        }),
        peak,
    );
}

/// The whole `patterns/` library holding 100,000 live runs (10,000 keys,
/// ten runs each); `unpaid_order` (10,000 of them) is removed. The engine
/// then holds what an engine with the library without `unpaid_order` over
/// the same events holds.
#[test]
fn removing_one_pattern_of_the_library_leaves_the_others_state() {
    let lines = library_events(10_000);
    let mut peak = 0;
    let after = measured(|| {
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&Rules::load(LIBRARY).unwrap()).unwrap();
        let mut sink = Count::default();
        let base = heap();
        feed(&mut engine, &lines, &mut sink);
        peak = heap() - base;
        assert_eq!(engine.live_runs(), 100_000);
        let changes = engine
            .set_rules(&library_without_unpaid(), ReloadPolicy::Drain, &mut sink)
            .unwrap();
        assert_eq!(changes.get("unpaid_order"), Some(Change::Removed));
        assert_eq!(engine.stats().discarded_runs, 10_000);
        assert_eq!(sink.0, 0);
        engine
    });
    let base = measured(|| {
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&library_without_unpaid()).unwrap();
        feed(&mut engine, &lines, &mut Count::default());
        engine
    });
    assert_eq!(base.0.live_runs(), 90_000);
    assert_back_to_baseline("library", after, base, peak);
}
