//! The equivalence property of `docs/dynamic-rules.md`: one engine whose
//! rule set changes at a random point of a random stream (`set_rules`, at
//! the watermark `W`) against engines that never change.
//!
//! Per pattern name:
//! - unchanged: exactly the records of an engine with the old rules over
//!   the whole stream;
//! - changed, `drain`: the old version's records are those of an engine
//!   with the old rules over the whole stream whose partial match started
//!   at or before `W` (for a pattern with a skip strategy, runs prune each
//!   other: checked when that engine has no match started after `W`); the
//!   new version's are those of an engine with the new rules fed only the
//!   events processed after the change;
//! - changed, `restart`, and removed: the old version makes no record after
//!   the change but the matches its discarded runs held back; the new
//!   version as under `drain`;
//! - added: as a new version.
//!
//! Records are compared as multisets. Over the `patterns/` library (records
//! from JSON lines; with and without their skip strategies; several
//! patterns per engine, some changed into others, removed or added; each
//! engine knowing only its own rules' fields, records that wait at the
//! change read again for the new ones, and every engine knowing every
//! field from the start) and random patterns of the differential test's
//! generator (typed events).
//!
//! `CEPHEID_PROPTEST_CASES` raises the number of cases.

use crate::reference;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

use cepheid_core::pattern::{Pattern as IrPattern, SkipStrategy};
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::{Change, ReloadPolicy};
use cepheid_engine::{Arrival, Engine, Event, FieldPath, Output, Record, Rules, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// One input step.
#[derive(Clone, Debug)]
enum Step<E> {
    Event(Timestamp, E),
    Watermark(Timestamp),
}

fn cases(default: u32) -> u32 {
    std::env::var("CEPHEID_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An engine with `patterns`. Its field table first gets the fields of
/// `prime` (added, then replaced by `patterns` before any event), when
/// there are any: then every engine of a case knows every field from the
/// start, and numbers them alike. Without (the realistic setup), an engine
/// knows the fields of its patterns only, and records that wait at a
/// change are read again for the new rules' fields
/// (`docs/dynamic-rules.md`, "Records decoded before a change").
fn engine_with<E: Event + 'static>(
    patterns: &[IrPattern],
    prime: &[IrPattern],
    delay: i64,
) -> Engine<E> {
    let mut engine: Engine<E> = Engine::with_max_delay(Duration::from_millis(delay as u64));
    // (under other names: the patterns then come in at version 1)
    let prime: Vec<IrPattern> = prime
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            p.name = format!("prime_{i}");
            p
        })
        .collect();
    engine.add(&prime[..]).unwrap();
    engine
        .set_rules(
            patterns,
            ReloadPolicy::Drain,
            &mut |_: &cepheid_engine::MatchRef<'_, E>| {},
        )
        .unwrap();
    engine
}

/// Feeds `steps` to `engine` (events made for it by `make`).
fn run_steps<E: Event + Clone, S>(
    engine: &mut Engine<E>,
    steps: &[Step<S>],
    make: &dyn Fn(&Engine<E>, &S) -> E,
    out: &mut Vec<Output<E>>,
) {
    for step in steps {
        match step {
            Step::Event(ts, e) => {
                let e = make(engine, e);
                engine.push(*ts, e, out);
            }
            Step::Watermark(t) => engine.watermark(*t, out),
        }
    }
}

/// `patterns` that never match: every stage's condition false (their
/// declarations, and so an engine's memory, as they were).
fn silenced(patterns: &[IrPattern]) -> Vec<IrPattern> {
    use cepheid_core::expr::Expr;
    use cepheid_core::pattern::Condition;
    (patterns.iter())
        .map(|p| {
            let mut p = p.clone();
            for stage in &mut p.stages {
                stage.condition = Condition::Expr(Expr::Literal(false.into()));
            }
            for element in &mut p.sequence.elements {
                element.until = None;
            }
            p.select.clear();
            p
        })
        .collect()
}

/// The records of `out` by (pattern, version), each as text with its
/// version left out, with its start; sorted.
type ByName = BTreeMap<(String, u32), Vec<(Timestamp, String)>>;

/// An event as text that does not depend on an engine's field numbering.
trait Show {
    fn show(&self) -> String;
}

impl Show for Ev {
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl Show for Record {
    fn show(&self) -> String {
        self.raw().to_string()
    }
}

fn by_name<E: Show>(out: &[Output<E>]) -> ByName {
    let mut map = ByName::new();
    for o in out {
        let (kind, m, end) = match o {
            Output::Match(m) => ("match", m, m.end),
            Output::Timeout {
                partial,
                expired_at,
            } => ("timeout", partial, *expired_at),
            Output::Dropped { partial } => ("dropped", partial, partial.end),
            _ => continue,
        };
        let stages: Vec<(String, Vec<String>)> = m
            .stages
            .iter()
            .map(|(name, events)| (name.clone(), events.iter().map(Show::show).collect()))
            .collect();
        let text = format!(
            "{kind} {:?} {} {end} {stages:?} {:?}",
            m.key, m.start, m.select
        );
        let key = (m.pattern.clone(), m.version);
        map.entry(key).or_default().push((m.start, text));
    }
    for records in map.values_mut() {
        records.sort();
    }
    map
}

fn records(map: &ByName, name: &str, version: u32) -> Vec<(Timestamp, String)> {
    map.get(&(name.to_string(), version))
        .cloned()
        .unwrap_or_default()
}

/// Runs the switch and its references; checks every name. Returns the
/// number of records compared.
#[allow(clippy::too_many_arguments)]
fn check_switch<E, S>(
    old: &[IrPattern],
    new: &[IrPattern],
    steps: &[Step<S>],
    make: &dyn Fn(&Engine<E>, &S) -> E,
    prime: &[IrPattern],
    cut: usize,
    delay: i64,
    policy: ReloadPolicy,
) -> Result<usize, TestCaseError>
where
    E: Event + Clone + Debug + Show + 'static,
{
    let cut = cut.min(steps.len());
    // The engine that switches.
    let mut switching: Engine<E> = engine_with(old, prime, delay);
    let mut out: Vec<Output<E>> = Vec::new();
    let mut accepted = vec![false; steps.len()];
    let mut feed =
        |engine: &mut Engine<E>, range: std::ops::Range<usize>, out: &mut Vec<Output<E>>| {
            for i in range {
                match &steps[i] {
                    Step::Event(ts, e) => {
                        let e = make(engine, e);
                        accepted[i] = engine.push(*ts, e, out) == Arrival::Accepted;
                    }
                    Step::Watermark(t) => engine.watermark(*t, out),
                }
            }
        };
    feed(&mut switching, 0..cut, &mut out);
    let w = switching.current_watermark().unwrap_or(Timestamp::MIN);
    let before = out.len();
    let changes = switching
        .set_rules(new, policy, &mut out)
        .map_err(|e| TestCaseError::fail(format!("set_rules: {e}")))?;
    let at_change = out.len();
    feed(&mut switching, cut..steps.len(), &mut out);
    switching.watermark(Timestamp::MAX, &mut out);

    // The old rules over the whole stream.
    let mut old_engine: Engine<E> = engine_with(old, prime, delay);
    let mut old_out: Vec<Output<E>> = Vec::new();
    run_steps(&mut old_engine, steps, make, &mut old_out);
    old_engine.watermark(Timestamp::MAX, &mut old_out);
    // Up to the cut, the switching engine was this engine.
    prop_assert_eq!(
        by_name(&out[..before]),
        by_name(&old_out[..before.min(old_out.len())])
    );

    // The new rules over the events processed after the change: accepted
    // (not late: lateness does not depend on rules) and above `W`. With
    // no delay limit, they are processed in (time, arrival) order, as in
    // the switching engine.
    let mut new_engine: Engine<E> = engine_with(new, prime, i64::MAX / 4);
    let mut new_out: Vec<Output<E>> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if let Step::Event(ts, e) = step {
            if accepted[i] && *ts > w {
                let e = make(&new_engine, e);
                new_engine.push(*ts, e, &mut new_out);
            }
        }
    }
    new_engine.watermark(Timestamp::MAX, &mut new_out);

    // A pattern that reads rolling indicators reads their windows as the
    // change found them: with the events before it, when the indicators
    // were declared then (kept across a change, `docs/semantics.md`,
    // "Lists and indicators"). Its reference is then an engine whose
    // memory went through the same events and change: the old patterns
    // silenced (every condition false: no partial match, the same
    // declarations), switched to the new ones at the same point.
    let mut replica: Engine<E> = engine_with(&silenced(old), prime, delay);
    let mut replica_out: Vec<Output<E>> = Vec::new();
    run_steps(&mut replica, &steps[..cut], make, &mut replica_out);
    replica
        .set_rules(new, policy, &mut replica_out)
        .map_err(|e| TestCaseError::fail(format!("set_rules: {e}")))?;
    run_steps(&mut replica, &steps[cut..], make, &mut replica_out);
    replica.watermark(Timestamp::MAX, &mut replica_out);
    let replica_all = by_name(&replica_out);
    let reads_indicators = |name: &str| {
        new.iter().any(|p| {
            p.name == name
                && p.declarations
                    .as_ref()
                    .is_some_and(|d| !d.indicators.is_empty())
        })
    };

    let got = by_name(&out);
    let got_before = by_name(&out[..at_change]);
    let old_all = by_name(&old_out);
    let new_all = by_name(&new_out);
    let mut compared = 0;
    let mut names: Vec<&str> = old.iter().chain(new).map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let change = changes.get(name);
        let skip = old
            .iter()
            .find(|p| p.name == name)
            .is_some_and(|p| p.skip != SkipStrategy::NoSkip);
        match change {
            // (the generated sets mark no pattern `shadow`: never promoted)
            Some(Change::Unchanged | Change::Promoted | Change::Shadowed) => {
                let got = records(&got, name, 1);
                prop_assert_eq!(&got, &records(&old_all, name, 1), "unchanged `{}`", name);
                compared += got.len();
            }
            Some(Change::Removed) => {
                prop_assert_eq!(
                    records(&got, name, 1),
                    records(&got_before, name, 1),
                    "removed `{}` made records after the change",
                    name
                );
            }
            Some(Change::Added) | Some(Change::Changed { .. }) => {
                let version = match change {
                    Some(Change::Changed { version }) => version,
                    _ => 1,
                };
                let fresh = records(&got, name, version);
                if reads_indicators(name) {
                    prop_assert_eq!(
                        &fresh,
                        &records(&replica_all, name, version),
                        "new `{}`, reading indicators",
                        name
                    );
                } else {
                    prop_assert_eq!(&fresh, &records(&new_all, name, 1), "new `{}`", name);
                }
                compared += fresh.len();
                if version == 1 {
                    continue;
                }
                let old_records = records(&got, name, 1);
                match policy {
                    ReloadPolicy::Restart => prop_assert_eq!(
                        old_records,
                        records(&got_before, name, 1),
                        "restarted `{}` made records after the change",
                        name
                    ),
                    ReloadPolicy::Drain => {
                        let reference: Vec<(Timestamp, String)> = records(&old_all, name, 1);
                        let later_match = old_out.iter().any(
                            |o| matches!(o, Output::Match(m) if m.pattern == name && m.start > w),
                        );
                        if skip && later_match {
                            continue;
                        }
                        let reference: Vec<_> =
                            reference.into_iter().filter(|(s, _)| *s <= w).collect();
                        prop_assert_eq!(
                            &old_records,
                            &reference,
                            "draining `{}` (W = {})",
                            name,
                            w
                        );
                        compared += old_records.len();
                    }
                }
            }
            None => prop_assert!(false, "no change reported for `{}`", name),
        }
    }
    Ok(compared)
}

// ---------------------------------------------------------------------
// The `patterns/` library over records.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = self.0;
        let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn library_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../patterns"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cep"))
            .collect();
    files.sort();
    files
}

/// The string literals of the library's patterns.
fn vocabulary(files: &[PathBuf]) -> Vec<String> {
    let mut words = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, part) in text.split('"').enumerate() {
            if i % 2 == 1 && !words.iter().any(|w| w == part) {
                words.push(part.to_string());
            }
        }
    }
    words
}

/// A random stream of JSON lines over the library's fields, decoded.
fn library_steps(
    rng: &mut Rng,
    library: &[IrPattern],
    vocab: &[String],
    n: usize,
    delay: i64,
) -> Vec<Step<String>> {
    let engine: Engine<Record> = engine_with(library, &[], delay);
    let table = engine.fields().clone();
    let fields: Vec<String> = table.paths().iter().map(ToString::to_string).collect();
    let keys: Vec<String> = library
        .iter()
        .flat_map(|p| p.partition_by.iter().map(ToString::to_string))
        .collect();
    let jumps = [0i64, 1_000, 10_000, 60_000, 300_000, 1_200_000];
    let mut clock: i64 = 1_000_000;
    let mut steps = Vec::new();
    for _ in 0..n {
        clock += *rng.pick(&jumps) * i64::from(rng.chance(60));
        if rng.chance(4) {
            steps.push(Step::Watermark(
                clock - rng.below(2 * delay as u64 + 1) as i64,
            ));
            continue;
        }
        let back = if rng.chance(5) {
            delay + 1 + rng.below(5_000) as i64
        } else {
            rng.below(delay as u64 + 1) as i64
        };
        let ts = clock - back;
        let mut members = vec![format!("\"ts\": {ts}")];
        for f in &fields {
            if f == "ts" || f.contains('.') || rng.chance(3) {
                continue;
            }
            let value = if keys.contains(f) {
                format!("\"k{}\"", rng.below(2))
            } else if f == "type" || rng.chance(30) {
                format!("\"{}\"", rng.pick(vocab))
            } else {
                match rng.below(10) {
                    0..=2 => rng.chance(60).to_string(),
                    3..=5 => rng
                        .pick(&[0, 1, 3, 50, 70, 85, 90, 600, 1000, 1500])
                        .to_string(),
                    6 => format!("{:?}", rng.pick(&[0.5, 2.5, 4.99, 99.5, 750.25])),
                    _ => format!("\"{}\"", rng.pick(vocab)),
                }
            };
            members.push(format!("\"{f}\": {value}"));
        }
        steps.push(Step::Event(ts, format!("{{{}}}", members.join(", "))));
    }
    steps
}

/// A JSON line decoded for `engine` (each engine numbers fields its way).
fn decode(engine: &Engine<Record>, line: &String) -> Record {
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    match decoder.decode(line.as_bytes()).unwrap() {
        Item::Event(_, r) => r,
        other => panic!("not an event: {other:?}"),
    }
}

fn library_case(seed: u64, no_skip: bool) -> Result<usize, TestCaseError> {
    let mut rng = Rng(seed);
    let files = library_files();
    let vocab = vocabulary(&files);
    let mut library: Vec<IrPattern> = Rules::load_all(&files).unwrap().patterns().to_vec();
    if no_skip {
        for p in &mut library {
            p.skip = SkipStrategy::NoSkip;
        }
    }
    // The old set: a few patterns; the new: each kept, changed into
    // another pattern under its name, or removed; and one perhaps added.
    let mut old = Vec::new();
    for p in &library {
        if rng.chance(40) {
            old.push(p.clone());
        }
    }
    if old.is_empty() {
        old.push(rng.pick(&library).clone());
    }
    let mut new = Vec::new();
    for p in &old {
        match rng.below(3) {
            0 => new.push(p.clone()),
            1 => {
                let mut other = rng.pick(&library).clone();
                other.name = p.name.clone();
                new.push(other);
            }
            _ => {}
        }
    }
    if rng.chance(50) {
        let added = rng.pick(&library);
        if !new.iter().any(|p: &IrPattern| p.name == added.name) {
            new.push(added.clone());
        }
    }
    if new.is_empty() {
        new.push(old[0].clone());
    }
    let delay = *rng.pick(&[0i64, 2_000, 60_000]);
    let n = 200 + rng.below(400) as usize;
    let steps = library_steps(&mut rng, &library, &vocab, n, delay);
    let cut = rng.below(steps.len() as u64 + 1) as usize;
    let policy = if rng.chance(50) {
        ReloadPolicy::Drain
    } else {
        ReloadPolicy::Restart
    };
    let names = |set: &[IrPattern]| set.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    // Each engine with the fields of its own rules only (records decoded
    // before the change read the new fields at it), and every engine with
    // every field from the start.
    let mut compared = 0;
    for prime in [&[][..], &library[..]] {
        compared +=
            check_switch(&old, &new, &steps, &decode, prime, cut, delay, policy).map_err(|e| {
                TestCaseError::fail(format!(
                    "old {:?} new {:?} cut {cut} delay {delay} {policy:?} primed {}: {e}",
                    names(&old),
                    names(&new),
                    !prime.is_empty()
                ))
            })?;
    }
    Ok(compared)
}

#[test]
fn the_library_switches_rules_as_separate_engines_would() {
    let total = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(48),
        ..ProptestConfig::default()
    });
    runner
        .run(&(any::<u64>(), any::<bool>()), |(seed, no_skip)| {
            total.set(total.get() + library_case(seed, no_skip)?);
            Ok(())
        })
        .unwrap();
    eprintln!("{} records compared", total.get());
    assert!(total.get() > 100, "only {} records compared", total.get());
}

// ---------------------------------------------------------------------
// Random patterns over typed events.

#[derive(Clone, Debug, PartialEq, cepheid_engine::Event)]
struct Ev {
    key: i64,
    kind: String,
    value: i64,
    id: u64,
}

fn typed_steps(raw: &[(usize, i64, i64, i64, u8)], delay: i64) -> Vec<Step<Ev>> {
    let mut clock = 0;
    let mut steps = Vec::new();
    for (i, &(k, value, dt, key, r)) in raw.iter().enumerate() {
        clock += dt;
        if r % 11 == 0 {
            steps.push(Step::Watermark(clock - delay - i64::from(r % 3)));
            continue;
        }
        let back = if r % 13 == 1 {
            delay + 1
        } else {
            i64::from(r) % (delay + 1)
        };
        let kind = ["a", "b", "c", "d"][k].to_string();
        steps.push(Step::Event(
            clock - back,
            Ev {
                key,
                kind,
                value,
                id: i as u64,
            },
        ));
    }
    steps
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// Random patterns: one pattern replaced by another (or by itself)
    /// at a random point, drained or restarted.
    #[test]
    fn random_patterns_switch_as_separate_engines_would(
        old_spec in reference::gen::pattern_spec(),
        new_spec in reference::gen::pattern_spec(),
        raw in prop::collection::vec((0..4usize, 0i64..5, prop_oneof![3 => Just(0i64), 8 => 1i64..3, 1 => 3i64..12], 0i64..3, any::<u8>()), 0..40),
        delay in prop_oneof![Just(0i64), 1i64..4],
        cut in 0usize..41,
        drain in any::<bool>(),
        same in prop::bool::weighted(0.1),
    ) {
        let build = |spec: &reference::gen::PatternSpec| {
            let mut p = spec.build();
            p.name = "p".into();
            p.partition_by = vec![FieldPath::single("key")];
            p
        };
        let old = build(&old_spec);
        let new = if same { old.clone() } else { build(&new_spec) };
        if !cepheid_core::pattern::validate(&old).is_empty() || !cepheid_core::pattern::validate(&new).is_empty() {
            return Ok(());
        }
        let mut probe: Engine<Ev> = Engine::new();
        if probe.add(&old).is_err() || probe.set_rules(&new, ReloadPolicy::Drain, &mut Vec::new()).is_err() {
            return Ok(());
        }
        let steps = typed_steps(&raw, delay);
        let policy = if drain { ReloadPolicy::Drain } else { ReloadPolicy::Restart };
        check_switch(&[old], &[new], &steps, &|_: &Engine<Ev>, e: &Ev| e.clone(), &[], cut, delay, policy)?;
    }
}
