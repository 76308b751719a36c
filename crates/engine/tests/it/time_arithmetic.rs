//! Property test of time arithmetic at the ends of the range (issue 11): no
//! operation on timestamps and durations overflows (this runs in debug,
//! with overflow checks) for event times anywhere in `i64`, watermarks at
//! the extremes, every accepted duration up to `i64::MAX` ms, and the
//! allowed delay from zero to the largest. Windows behave as
//! `docs/semantics.md` ("Windows at the end of the time range") says: a
//! window closes at its start (or previous event) plus its length,
//! saturated at `i64::MAX`; a match ends before that; a timeout expires
//! exactly there; after `watermark(Timestamp::MAX)` nothing is pending.

use cepheid_core::time::{format_duration, parse_duration};
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::{Engine, Output, Record, Rules, Timestamp};
use proptest::prelude::*;
use std::time::Duration;

/// Event times: anywhere, and clustered at both ends of the range.
fn time() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        (0i64..1_000).prop_map(|d| i64::MAX - d),
        (0i64..1_000).prop_map(|d| i64::MIN + d),
        (-1_000i64..1_000),
        (-100_000i64..100_000).prop_map(|d| (i64::MAX - 86_400_000).saturating_add(d)),
    ]
}

/// Window lengths in milliseconds: every accepted duration, the largest
/// ones most often.
fn window() -> impl Strategy<Value = i64> {
    prop_oneof![
        1i64..=i64::MAX,
        (0i64..1_000).prop_map(|d| i64::MAX - d),
        1i64..100_000,
        // What `parse_duration` accepts, in every unit.
        (1u64..1_000_000_000_000, 0usize..5).prop_filter_map("too large", |(n, u)| {
            let unit = ["ms", "s", "m", "h", "d"][u];
            parse_duration(&format!("{n}{unit}")).ok()
        }),
    ]
}

/// One input step: an event of stage `a` or `b`, or a watermark.
#[derive(Clone, Debug)]
enum Step {
    Event(i64, bool),
    Watermark(i64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => (time(), any::<bool>()).prop_map(|(t, a)| Step::Event(t, a)),
        1 => prop_oneof![time(), Just(i64::MAX), Just(i64::MIN)].prop_map(Step::Watermark),
    ];
    prop::collection::vec(step, 0..24)
}

fn delay() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        1u64..1_000,
        Just(i64::MAX as u64),
        Just(u64::MAX)
    ]
}

/// The window's end: `from + length`, saturated at the largest time.
fn window_end(from: i64, length: i64) -> i64 {
    (i128::from(from) + i128::from(length)).min(i128::from(i64::MAX)) as i64
}

/// Runs `a followed by b` with the pattern window (`element == false`) or
/// an element window on `b` of `length` ms, checks every output against the
/// window, and returns nothing: failures are assertion errors.
fn check(length: i64, element: bool, steps: &[Step], max_delay: u64) -> Result<(), TestCaseError> {
    let w = format_duration(length);
    prop_assert_eq!(parse_duration(&w), Ok(length));
    let text = if element {
        format!("pattern p {{\n timeouts\n match a followed by b within {w}\n where\n  a: k == \"a\"\n  b: k == \"b\"\n}}\n")
    } else {
        format!("pattern p {{\n within {w}\n timeouts\n match a followed by b\n where\n  a: k == \"a\"\n  b: k == \"b\"\n}}\n")
    };
    let rules = Rules::parse("p.cep", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_millis(max_delay));
    engine
        .add(&rules)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut out: Vec<Output<Record>> = Vec::new();
    let mut a_events = 0u64;
    for step in steps {
        let line = match step {
            Step::Event(t, a) => {
                a_events += u64::from(*a);
                format!("{{\"ts\":{t},\"k\":\"{}\"}}", if *a { "a" } else { "b" })
            }
            Step::Watermark(t) => format!("{{\"$watermark\":{t}}}"),
        };
        match decoder.decode(line.as_bytes()) {
            Ok(Item::Event(ts, record)) => {
                engine.push(ts, record, &mut out);
            }
            Ok(Item::Watermark(t)) => engine.watermark(t, &mut out),
            other => return Err(TestCaseError::fail(format!("{line}: {other:?}"))),
        }
    }
    engine.finish(&mut out);
    engine.watermark(Timestamp::MAX, &mut out);
    // Once more: time cannot pass the end, nothing else comes out.
    let before = out.len();
    engine.watermark(Timestamp::MAX, &mut out);
    engine.finish(&mut out);
    prop_assert_eq!(out.len(), before);

    let (mut matches, mut timeouts, mut late_a) = (0u64, 0u64, 0u64);
    for output in &out {
        match output {
            Output::Match(m) => {
                matches += 1;
                // `b` comes less than the window after `a` (the previous
                // event, and the first): before the window's end.
                prop_assert!(m.end < window_end(m.start, length), "{m:?} window {length}");
                prop_assert!(m.start <= m.end);
            }
            Output::Timeout {
                partial,
                expired_at,
            } => {
                timeouts += 1;
                prop_assert_eq!(*expired_at, window_end(partial.start, length));
            }
            Output::Late { event, .. } => {
                late_a += u64::from(event.raw().contains("\"a\""));
            }
            other => prop_assert!(false, "one run per key is far below the limit: {other:?}"),
        }
    }
    // No skip: every `a` that was not late ends in one match or one timeout.
    prop_assert_eq!(matches + timeouts, a_events - late_a, "{:?}", out);
    let stats = engine.stats();
    prop_assert_eq!((stats.matches, stats.timeouts), (matches, timeouts));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn pattern_windows_never_overflow(length in window(), steps in steps(), max_delay in delay()) {
        check(length, false, &steps, max_delay)?;
    }

    #[test]
    fn element_windows_never_overflow(length in window(), steps in steps(), max_delay in delay()) {
        check(length, true, &steps, max_delay)?;
    }

    #[test]
    fn durations_round_trip_without_overflow(n in any::<u64>(), u in 0usize..5) {
        let unit = ["ms", "s", "m", "h", "d"][u];
        let text = format!("{n}{unit}");
        let millis = [1i128, 1_000, 60_000, 3_600_000, 86_400_000][u];
        let exact = i128::from(n) * millis;
        match parse_duration(&text) {
            Ok(ms) => {
                prop_assert_eq!(i128::from(ms), exact);
                prop_assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
            }
            Err(_) => prop_assert!(exact > i128::from(i64::MAX), "{} rejected", text),
        }
    }
}
