//! `cepheid_dataflow::live_source` gives what one engine gives on live
//! input: a stream read in batches with quiet spells between them, the
//! source's watermark following an injected clock over its idle timeout
//! (`Lateness::idle_timeout`, the rule of `cepheid_engine::engine::Idle`) and
//! bounded by its limit on waiting events (`Lateness::max_waiting`). For
//! random keyed streams over every pattern of `patterns/`, 1 and 2 workers
//! produce the same multiset of matches, timeouts and late events, and the
//! same count of forced watermarks, as a single [`Engine`] fed the same
//! batches with the same idle advances (`cepheid run --idle-timeout`'s
//! loop) and the same `max_waiting_events`.
//!
//! The clock is the test's: the worker that reads moves it, wakes the
//! source ([`Feed::wake`]) and runs the dataflow until the source has taken
//! every message ([`Feed::backlog`]); nothing waits on the wall clock.

use crate::dataflow_support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cepheid_dataflow::{cep, live_source, Collect, Feed, Lateness, Plan, SourceItem};
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::{Idle, MatchRef, Sink, Stats};
use cepheid_engine::{Engine, Output, Record, Timestamp};
use proptest::prelude::*;
use timely::dataflow::operators::Inspect;

use dataflow_support::{event, lines, patterns};

/// One step of the input: lines that arrive together, or a quiet spell of
/// this many milliseconds of the clock.
#[derive(Clone, Debug)]
enum Step {
    Lines(Vec<String>),
    Quiet(u64),
}

/// How the source reads: delay, idle timeout, limit on waiting events.
#[derive(Clone, Copy, Debug)]
struct Setup {
    delay: i64,
    idle: Duration,
    max_waiting: usize,
}

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

fn decode(decoder: &mut Decoder, line: &str) -> Option<Item> {
    match decoder.decode(line.as_bytes()).expect("decodes") {
        Item::Skip => None,
        item => Some(item),
    }
}

/// One engine, as `cepheid run --idle-timeout` drives it: each batch is an
/// arrival, each quiet spell a tick of the idle clock.
fn single(
    patterns: &[cepheid_core::pattern::Pattern],
    steps: &[Step],
    setup: Setup,
) -> (Vec<String>, u64) {
    let mut engine: Engine<Record> =
        Engine::with_max_delay(Duration::from_millis(setup.delay as u64))
            .max_waiting_events(setup.max_waiting);
    for p in patterns {
        engine.add(p).expect("adds");
    }
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut out: Vec<Output<Record>> = Vec::new();
    let mut punctuated = false;
    let mut now = Instant::now();
    let mut idle = Idle::new(setup.idle, now);
    for step in steps {
        match step {
            Step::Lines(lines) => {
                idle.arrived(now);
                for line in lines {
                    match decode(&mut decoder, line) {
                        Some(Item::Event(ts, record)) => {
                            engine.push(ts, record, &mut out);
                        }
                        Some(Item::Watermark(t)) => {
                            punctuated = true;
                            engine.watermark(t, &mut out);
                        }
                        _ => {}
                    }
                }
            }
            Step::Quiet(ms) => {
                now += Duration::from_millis(*ms);
                if let Some(t) = idle.advance(now, engine.current_watermark()) {
                    engine.watermark(t, &mut out);
                }
            }
        }
    }
    if !punctuated {
        engine.finish(&mut out);
    }
    (canonical(&out), engine.stats().forced_watermarks)
}

/// A worker's sink: the outputs, and its counts at the end.
struct Capture {
    out: Vec<Output<Record>>,
    stats: Arc<Mutex<Stats>>,
}

impl Sink<Record> for Capture {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        self.out.on_match(m);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.out.on_timeout(m, expired_at);
    }
}

impl Collect<Record> for Capture {
    type Item = Output<Record>;

    fn drain(&mut self, out: &mut Vec<Output<Record>>) {
        out.append(&mut self.out);
    }

    fn finish(&mut self, stats: &Stats, _waiting: usize) {
        let mut total = self.stats.lock().unwrap();
        total.forced_watermarks += stats.forced_watermarks;
    }
}

/// Runs the dataflow until the source has taken every message of `feed`.
fn settle(worker: &mut timely::worker::Worker, feed: &Feed<Record>) {
    while feed.backlog() > 0 {
        worker.step();
    }
}

/// The dataflow on `workers` threads; worker 0 reads the steps through a
/// live source whose clock the steps move.
fn dataflow(
    patterns: &[cepheid_core::pattern::Pattern],
    steps: Vec<Step>,
    setup: Setup,
    workers: usize,
) -> (Vec<String>, u64) {
    let mut plan = Plan::<Record>::new();
    for p in patterns {
        plan.add(p).expect("adds");
    }
    let plan = Arc::new(plan);
    let steps = Arc::new(steps);
    let found: Arc<Mutex<Vec<Output<Record>>>> = Arc::default();
    let stats: Arc<Mutex<Stats>> = Arc::default();
    let (collected, counted) = (Arc::clone(&found), Arc::clone(&stats));
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let plan = Arc::clone(&plan);
        let (late_to, found_to) = (Arc::clone(&collected), Arc::clone(&collected));
        let counted = Arc::clone(&counted);
        let clock = Rc::new(Cell::new(Instant::now()));
        let now = Rc::clone(&clock);
        let plan_here = Arc::clone(&plan);
        let feed = worker.dataflow::<Timestamp, _, _>(move |scope| {
            let lateness = Lateness::new(setup.delay)
                .max_waiting(setup.max_waiting)
                .idle_timeout(setup.idle);
            let (feed, events, late) =
                live_source::<Record, _>(scope, 0, lateness, move || now.get());
            late.inspect(move |late| {
                let (ts, event) = (&late.ts, &late.event);
                late_to.lock().unwrap().push(Output::Late {
                    ts: *ts,
                    event: event.clone(),
                })
            });
            cep(&plan_here, events, |_| Capture {
                out: Vec::new(),
                stats: counted,
            })
            .inspect(move |o| found_to.lock().unwrap().push(o.clone()));
            feed
        });
        if index != 0 {
            // Only worker 0 reads; the others' inputs are empty.
            return;
        }
        let mut decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
        let mut offset = 0;
        for step in steps.iter() {
            match step {
                Step::Lines(lines) => {
                    let mut items = Vec::new();
                    for line in lines {
                        offset += 1;
                        match decode(&mut decoder, line) {
                            Some(Item::Event(ts, event)) => {
                                items.push(SourceItem::Event { ts, offset, event })
                            }
                            Some(Item::Watermark(t)) => items.push(SourceItem::Watermark(t)),
                            _ => {}
                        }
                    }
                    feed.send(items).expect("the source is there");
                }
                Step::Quiet(ms) => {
                    clock.set(clock.get() + Duration::from_millis(*ms));
                    feed.wake();
                }
            }
            settle(worker, &feed);
        }
    })
    .expect("timely starts")
    .join()
    .into_iter()
    .for_each(|r| r.expect("a worker failed"));
    let found = found.lock().unwrap();
    let forced = stats.lock().unwrap().forced_watermarks;
    (canonical(&found), forced)
}

/// The lines in batches of the given sizes, a quiet spell after each.
fn script(lines: &[String], cuts: &[(usize, u64)]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = lines;
    for &(size, quiet) in cuts {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at(size.min(rest.len()));
        steps.push(Step::Lines(now.to_vec()));
        steps.push(Step::Quiet(quiet));
        rest = later;
    }
    if !rest.is_empty() {
        steps.push(Step::Lines(rest.to_vec()));
    }
    steps
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn a_live_source_with_idle_time_equals_one_engine(
        events in prop::collection::vec(event(), 1..200),
        delay in prop_oneof![Just(0i64), 1i64..20_000],
        within in any::<bool>(),
        idle_ms in 1_000u64..60_000,
        cuts in prop::collection::vec((1usize..40, 0u64..180_000), 0..30),
        max_waiting in prop_oneof![Just(usize::MAX), 1usize..20],
    ) {
        let patterns = patterns();
        let lines = lines(&events, delay, within);
        let steps = script(&lines, &cuts);
        let setup = Setup { delay, idle: Duration::from_millis(idle_ms), max_waiting };
        let expected = single(&patterns, &steps, setup);
        for workers in [1, 2] {
            let got = dataflow(&patterns, steps.clone(), setup, workers);
            prop_assert_eq!(&got, &expected, "{} workers", workers);
        }
    }
}

#[test]
fn quiet_spells_fire_timeouts_and_make_late_events() {
    // The property is not vacuous: on one fixed stream the idle advances
    // fire timeouts that the stream alone would not, and make events late.
    let event =
        |ts: i64, kind: &str, k: u32| format!(r#"{{"ts":{ts},"type":"{kind}","order_id":"o{k}"}}"#);
    let patterns = {
        let loaded = cepheid_engine::rules::load_str(
            "unpaid.cep",
            r#"pattern unpaid {
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
        loaded.patterns
    };
    let steps = vec![
        Step::Lines(vec![
            event(0, "order_created", 1),
            event(1_000, "order_created", 2),
        ]),
        // quiet for 20 minutes with a 1-minute idle timeout: time follows
        Step::Quiet(20 * 60_000),
        // 1,200,999 is the watermark now: the payment of 2 is late
        Step::Lines(vec![event(60_000, "order_paid", 2)]),
    ];
    let setup = Setup {
        delay: 0,
        idle: Duration::from_secs(60),
        max_waiting: usize::MAX,
    };
    let (expected, _) = single(&patterns, &steps, setup);
    let kinds: Vec<&str> = expected
        .iter()
        .map(|l| l.split('"').nth(3).unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["late", "timeout", "timeout"], "{expected:?}");
    for workers in [1, 2] {
        assert_eq!(
            dataflow(&patterns, steps.clone(), setup, workers).0,
            expected
        );
    }
    // Without the quiet spell nothing is late and 2 is paid.
    let busy = vec![Step::Lines(
        steps
            .iter()
            .flat_map(|s| match s {
                Step::Lines(l) => l.clone(),
                Step::Quiet(_) => Vec::new(),
            })
            .collect(),
    )];
    let (expected, _) = single(&patterns, &busy, setup);
    assert!(
        expected.iter().any(|l| l.contains("\"kind\":\"match\"")),
        "{expected:?}"
    );
    assert_eq!(dataflow(&patterns, busy, setup, 2).0, expected);
}

#[test]
fn forced_watermarks_count_as_in_one_engine() {
    // Ten events at one time, at most three waiting: forced up, counted.
    let patterns = dataflow_support::patterns();
    let line = |ts: i64| format!(r#"{{"ts":{ts},"type":"login","user_id":1,"success":false}}"#);
    let mut lines: Vec<String> = (0..10).map(|_| line(5)).collect();
    lines.push(line(4));
    lines.push(line(6));
    let steps = vec![Step::Lines(lines)];
    let setup = Setup {
        delay: 0,
        idle: Duration::from_secs(3600),
        max_waiting: 3,
    };
    let expected = single(&patterns, &steps, setup);
    assert!(expected.1 > 0, "{expected:?}");
    assert!(expected.0.iter().any(|l| l.contains("\"kind\":\"late\"")));
    for workers in [1, 2] {
        assert_eq!(dataflow(&patterns, steps.clone(), setup, workers), expected);
    }
}
