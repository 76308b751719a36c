//! The equivalence property of `docs/dynamic-rules.md`: one engine whose
//! rule set changes at a random point of a random stream (`set_rules`, at
//! the watermark `W`) against engines that never change.
//!
//! Per pattern name:
//! - unchanged: exactly the records of an engine with the old rules over
//!   the whole stream;
//! - changed, `drain`: the old version's records are those of an engine
//!   with the old rules over the whole stream whose partial match started
//!   at or before `W`; the new version's are those of an engine with the
//!   new rules fed only the events processed after the change. The
//!   reference for the old version is exact only when the partial matches
//!   it starts after `W` (which the draining version never starts) take no
//!   part in what becomes of the others, so it is compared (what is left
//!   out counted and printed):
//!   - per key, except where the per-key limit dropped partial matches of
//!     the name after the change (in either engine): the limit counts the
//!     reference's later partial matches too, so it drops other ones
//!     (`docs/dynamic-rules.md`, "Policies for a replaced pattern");
//!   - for a pattern with a skip strategy, per key, except where the old
//!     rules start a partial match from the events processed after the
//!     change (a pattern that reads lists or indicators: on every key):
//!     runs prune each other, and the later ones change the layout of the
//!     queues that order a key's matches with one first event (Flink's
//!     priority queues), so which of those goes first;
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
//! `CEPHEID_PROPTEST_CASES` raises the number of cases,
//! `CEPHEID_PROPTEST_SEED` picks another seed (fixed by default, so the
//! suite is reproducible). A failing case is shrunk for at most a minute
//! (`MAX_SHRINK_MS`): one with thousands of records takes about a second a
//! run, and shrinking it to the end took 7 minutes.

use crate::reference;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

use cepheid_core::pattern::{Pattern as IrPattern, SkipStrategy};
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::{Change, ReloadPolicy};
use cepheid_engine::{Arrival, Engine, Event, FieldPath, Output, Record, Rules, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError};

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

/// The longest a failing case is shrunk (proptest's `max_shrink_time`,
/// milliseconds).
const MAX_SHRINK_MS: u32 = 60_000;

/// `cases_default` cases (or `CEPHEID_PROPTEST_CASES`) from the seed
/// `seed_default` (or `CEPHEID_PROPTEST_SEED`), shrunk for at most
/// [`MAX_SHRINK_MS`]. (A failing input is printed; the seed reproduces it.)
fn config(cases_default: u32, seed_default: u64) -> ProptestConfig {
    let seed = std::env::var("CEPHEID_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(seed_default);
    ProptestConfig {
        cases: cases(cases_default),
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_time: MAX_SHRINK_MS,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
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
/// version left out, with its start and its key (as text); sorted.
type ByName = BTreeMap<(String, u32), Vec<(Timestamp, String, String)>>;

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
        map.entry(key)
            .or_default()
            .push((m.start, text, format!("{:?}", m.key)));
    }
    for records in map.values_mut() {
        records.sort();
    }
    map
}

fn records(map: &ByName, name: &str, version: u32) -> Vec<(Timestamp, String)> {
    records_where(map, name, version, &|_, _| true)
}

/// The records of `name` at `version` whose (start, key) `keep` keeps.
fn records_where(
    map: &ByName,
    name: &str,
    version: u32,
    keep: &dyn Fn(Timestamp, &str) -> bool,
) -> Vec<(Timestamp, String)> {
    map.get(&(name.to_string(), version))
        .into_iter()
        .flatten()
        .filter(|(start, _, key)| keep(*start, key))
        .map(|(start, text, _)| (*start, text.clone()))
        .collect()
}

/// The keys (as text) of the partial matches of `name` at `version` that
/// the per-key limit dropped in `out`.
fn dropped_keys<E>(out: &[Output<E>], name: &str, version: u32) -> BTreeSet<String> {
    (out.iter())
        .filter_map(|o| match o {
            Output::Dropped { partial }
                if partial.pattern == name && partial.version == version =>
            {
                Some(format!("{:?}", partial.key))
            }
            _ => None,
        })
        .collect()
}

/// The keys (as text) on which the rules `pattern` (with the field table
/// of `prime`) start a partial match from one of `events` (in the order
/// they are processed). Partitions are independent: the partial matches
/// of one key take no part in what becomes of another's.
fn keys_started<E: Event + Clone + 'static, S>(
    pattern: &IrPattern,
    prime: &[IrPattern],
    events: &[&S],
    make: &dyn Fn(&Engine<E>, &S) -> E,
) -> BTreeSet<String> {
    use cepheid_core::pattern::{Condition, Element, Sequence, Stage};
    use cepheid_core::primitives::StageId;
    // Each event's key as `pattern` partitions: a pattern that matches any
    // event alone says it (an event without a usable key reaches no
    // partition).
    let mut keyed = IrPattern::new(
        "key",
        vec![Stage::new("any", Condition::True)],
        Sequence::new(vec![Element::stage(StageId(0))]),
    );
    keyed.partition_by = pattern.partition_by.clone();
    let mut probe: Engine<E> = engine_with(&[keyed], prime, 0);
    let mut by_key: BTreeMap<String, Vec<&S>> = BTreeMap::new();
    for (t, e) in (1..).zip(events) {
        let mut out: Vec<Output<E>> = Vec::new();
        probe.push(t, make(&probe, e), &mut out);
        probe.watermark(t, &mut out);
        if let Some(Output::Match(m)) = out.first() {
            by_key.entry(format!("{:?}", m.key)).or_default().push(*e);
        }
    }
    (by_key.into_iter())
        .filter(|(_, events)| starts_any(pattern, prime, events, make))
        .map(|(key, _)| key)
        .collect()
}

/// Do the rules `pattern` (with the field table of `prime`) start a
/// partial match from one of `events`? Whether an event starts one
/// depends on the event alone, not on time or on other partial matches:
/// they are processed one at a time at times 1, 2, ... (never late), and
/// the first one that starts a partial match leaves one held (or a match
/// or record out).
fn starts_any<E: Event + Clone + 'static, S>(
    pattern: &IrPattern,
    prime: &[IrPattern],
    events: &[&S],
    make: &dyn Fn(&Engine<E>, &S) -> E,
) -> bool {
    let mut engine: Engine<E> = engine_with(std::slice::from_ref(pattern), prime, 0);
    let mut out: Vec<Output<E>> = Vec::new();
    for (t, e) in (1..).zip(events) {
        let e = make(&engine, e);
        engine.push(t, e, &mut out);
        engine.watermark(t, &mut out);
        if engine.live_runs() > 0 || !out.is_empty() {
            return true;
        }
    }
    false
}

/// What a case compared, and what the old version's reference left out.
#[derive(Clone, Copy, Debug, Default)]
struct Compared {
    /// Records compared.
    records: usize,
    /// Draining names compared.
    drains: usize,
    /// Keys of draining names left out: the per-key limit dropped partial
    /// matches of the name after the change.
    keys_at_limit: usize,
    /// Keys of draining names with a skip strategy left out: the old rules
    /// start partial matches on them after the change.
    keys_started: usize,
    /// Draining names with a skip strategy that reads lists or indicators
    /// left out (they might start a partial match on what came before).
    skip_declaring: usize,
}

impl std::ops::AddAssign for Compared {
    fn add_assign(&mut self, o: Compared) {
        self.records += o.records;
        self.drains += o.drains;
        self.keys_at_limit += o.keys_at_limit;
        self.keys_started += o.keys_started;
        self.skip_declaring += o.skip_declaring;
    }
}

/// Runs the switch and its references; checks every name. Returns what
/// it compared.
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
) -> Result<Compared, TestCaseError>
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
    let mut after: Vec<(Timestamp, &S)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if let Step::Event(ts, e) = step {
            if accepted[i] && *ts > w {
                after.push((*ts, e));
                let e = make(&new_engine, e);
                new_engine.push(*ts, e, &mut new_out);
            }
        }
    }
    // (in the order they are processed)
    after.sort_by_key(|(ts, _)| *ts);
    let after: Vec<&S> = after.into_iter().map(|(_, e)| e).collect();
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
    let mut compared = Compared::default();
    let mut names: Vec<&str> = old.iter().chain(new).map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let change = changes.get(name);
        let old_pattern = old.iter().find(|p| p.name == name);
        let skip = old_pattern.is_some_and(|p| p.skip != SkipStrategy::NoSkip);
        match change {
            // (the generated sets mark no pattern `shadow`: never promoted)
            Some(Change::Unchanged | Change::Promoted | Change::Shadowed) => {
                let got = records(&got, name, 1);
                prop_assert_eq!(&got, &records(&old_all, name, 1), "unchanged `{}`", name);
                compared.records += got.len();
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
                compared.records += fresh.len();
                if version == 1 {
                    continue;
                }
                match policy {
                    ReloadPolicy::Restart => prop_assert_eq!(
                        records(&got, name, 1),
                        records(&got_before, name, 1),
                        "restarted `{}` made records after the change",
                        name
                    ),
                    ReloadPolicy::Drain => {
                        // (what is left out: the module's doc)
                        let mut started = BTreeSet::new();
                        if let Some(p) = old_pattern.filter(|_| skip) {
                            if p.declarations.is_some() {
                                // (it might start a partial match on what
                                // came before the events: taken as starting
                                // them on every key)
                                compared.skip_declaring += 1;
                                continue;
                            }
                            started = keys_started(p, prime, &after, make);
                            compared.keys_started += started.len();
                        }
                        let mut at_limit =
                            dropped_keys(&old_out[before.min(old_out.len())..], name, 1);
                        at_limit.extend(dropped_keys(&out[at_change..], name, 1));
                        compared.keys_at_limit += at_limit.len();
                        let kept = |key: &str| !at_limit.contains(key) && !started.contains(key);
                        let old_records = records_where(&got, name, 1, &|_, key: &str| kept(key));
                        let reference = records_where(&old_all, name, 1, &|start, key: &str| {
                            start <= w && kept(key)
                        });
                        prop_assert_eq!(
                            &old_records,
                            &reference,
                            "draining `{}` (W = {}, left out: keys at the limit {:?}, \
                             keys with partial matches started after W {:?})",
                            name,
                            w,
                            at_limit,
                            started
                        );
                        compared.records += old_records.len();
                        compared.drains += 1;
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

fn library_case(seed: u64, no_skip: bool) -> Result<Compared, TestCaseError> {
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
    let mut compared = Compared::default();
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
    let total = std::cell::Cell::new(Compared::default());
    let mut runner = proptest::test_runner::TestRunner::new(config(48, 0x11b_5eed));
    runner
        .run(&(any::<u64>(), any::<bool>()), |(seed, no_skip)| {
            let mut sum = total.get();
            sum += library_case(seed, no_skip)?;
            total.set(sum);
            Ok(())
        })
        .unwrap();
    let total = total.get();
    eprintln!("{total:?}");
    assert!(
        total.records > 100,
        "only {} records compared",
        total.records
    );
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

/// Random patterns: one pattern replaced by another (or by itself) at a
/// random point, drained or restarted.
#[test]
fn random_patterns_switch_as_separate_engines_would() {
    let total = std::cell::Cell::new(Compared::default());
    let mut runner = proptest::test_runner::TestRunner::new(config(128, 0xd1a1_5eed));
    let raw = prop::collection::vec(
        (
            0..4usize,
            0i64..5,
            prop_oneof![3 => Just(0i64), 8 => 1i64..3, 1 => 3i64..12],
            0i64..3,
            any::<u8>(),
        ),
        0..40,
    );
    let case = (
        reference::gen::pattern_spec(),
        reference::gen::pattern_spec(),
        raw,
        prop_oneof![Just(0i64), 1i64..4],
        0usize..41,
        any::<bool>(),
        prop::bool::weighted(0.1),
    );
    runner
        .run(
            &case,
            |(old_spec, new_spec, raw, delay, cut, drain, same)| {
                let mut sum = total.get();
                sum += random_case(&old_spec, &new_spec, &raw, delay, cut, drain, same)?;
                total.set(sum);
                Ok(())
            },
        )
        .unwrap();
    let total = total.get();
    eprintln!("{total:?}");
    assert!(total.drains > 0, "no draining version compared");
}

/// One case of [`random_patterns_switch_as_separate_engines_would`].
fn random_case(
    old_spec: &reference::gen::PatternSpec,
    new_spec: &reference::gen::PatternSpec,
    raw: &[(usize, i64, i64, i64, u8)],
    delay: i64,
    cut: usize,
    drain: bool,
    same: bool,
) -> Result<Compared, TestCaseError> {
    let build = |spec: &reference::gen::PatternSpec| {
        let mut p = spec.build();
        p.name = "p".into();
        p.partition_by = vec![FieldPath::single("key")];
        p
    };
    let old = build(old_spec);
    let new = if same { old.clone() } else { build(new_spec) };
    if !cepheid_core::pattern::validate(&old).is_empty()
        || !cepheid_core::pattern::validate(&new).is_empty()
    {
        return Ok(Compared::default());
    }
    let mut probe: Engine<Ev> = Engine::new();
    if probe.add(&old).is_err()
        || (probe.set_rules(&new, ReloadPolicy::Drain, &mut Vec::new())).is_err()
    {
        return Ok(Compared::default());
    }
    let steps = typed_steps(raw, delay);
    let policy = if drain {
        ReloadPolicy::Drain
    } else {
        ReloadPolicy::Restart
    };
    let make = |_: &Engine<Ev>, e: &Ev| e.clone();
    check_switch(&[old], &[new], &steps, &make, &[], cut, delay, policy)
}

/// A case of the random test from pattern text (one pattern `p`, the
/// events' `key` its partition key).
fn text_case(
    old: &str,
    new: &str,
    raw: &[(usize, i64, i64, i64, u8)],
    delay: i64,
    cut: usize,
    policy: ReloadPolicy,
) -> Compared {
    let parse = |text: &str| {
        let mut p = Rules::parse("p.cep", text).unwrap().patterns()[0].clone();
        p.partition_by = vec![FieldPath::single("key")];
        p
    };
    let steps = typed_steps(raw, delay);
    let make = |_: &Engine<Ev>, e: &Ev| e.clone();
    let started = std::time::Instant::now();
    let compared = check_switch(
        &[parse(old)],
        &[parse(new)],
        &steps,
        &make,
        &[],
        cut,
        delay,
        policy,
    )
    .unwrap();
    // (each took up to minutes when it failed: proptest shrank it)
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    compared
}

/// Found by the random test (`CEPHEID_PROPTEST_SEED=29`, shrunk): 11
/// events of one key make `(s0 optional followed by s1+ combinations)+`
/// fork past the per-key limit (10,000) after the change. The reference,
/// which also holds the partial matches started after `W`, drops other
/// ones than the draining version: 21 more `dropped` records, so the test
/// failed, and shrinking the first such case (thousands of records, a
/// second a run) took 7 minutes. The key is left out of the comparison;
/// the rest is compared.
#[test]
fn a_key_at_the_run_limit_is_not_compared_with_the_reference() {
    let raw = [
        (0, 0, 0, 0, 1),
        (0, 0, 0, 0, 1),
        (0, 0, 0, 0, 1),
        (0, 0, 0, 0, 1),
        (0, 0, 0, 0, 0),
        (0, 0, 1, 0, 2),
        (0, 0, 0, 0, 23),
        (0, 0, 0, 0, 34),
        (0, 0, 0, 0, 2),
        (0, 0, 0, 0, 28),
        (0, 0, 0, 0, 1),
    ];
    let old = r#"pattern p {
        match (s0 optional followed by s1+ combinations)+
        where s0: kind in ["a", "c"]
              s1: kind in ["a", "b"]
    }"#;
    let new = r#"pattern p { match s0 where s0: kind == "a" }"#;
    let compared = text_case(old, new, &raw, 0, 5, ReloadPolicy::Drain);
    assert_eq!(
        (compared.drains, compared.keys_at_limit),
        (1, 1),
        "{compared:?}"
    );
}

/// Found by the random test (`CEPHEID_PROPTEST_SEED=22`, shrunk): `skip to
/// next`, and two complete matches with one first event (`s1` = #11) held
/// back behind older partial matches. Which goes first (and prunes the
/// other) is decided by the layout of Flink's priority queues, which the
/// partial matches started after the change (by #21 and #22: `s1` takes
/// anything) change in the reference and the draining version never has:
/// the reference emits `s1 [#11] s2 [#13, #14]`, the draining version
/// `s1 [#11, #14] s2 [#13, #21, #22]`. The test compared a pattern with a
/// skip strategy when the reference emitted no match started after `W`;
/// now the keys on which the old rules start a partial match after it
/// (here the one key of #21 and #22) are left out.
#[test]
fn a_key_where_a_skip_strategy_starts_runs_after_the_change_is_not_compared() {
    let raw = [
        (0, 2, 0, 2, 34),
        (0, 0, 0, 0, 0),
        (0, 2, 0, 2, 69),
        (0, 0, 1, 0, 0),
        (0, 0, 1, 2, 119),
        (0, 0, 0, 0, 0),
        (0, 2, 2, 0, 0),
        (0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0),
        (0, 0, 0, 2, 3),
        (0, 0, 1, 0, 0),
        (0, 0, 0, 2, 3),
        (0, 2, 2, 2, 2),
        (0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0),
        (0, 0, 0, 0, 74),
        (0, 0, 0, 0, 5),
        (0, 0, 0, 0, 0),
        (0, 0, 1, 2, 41),
        (0, 0, 0, 2, 29),
    ];
    let old = r#"pattern p {
        skip to next
        match (s0{2,} greedy) optional next (s1 next s2{1,2} within 3ms)+
        where s0: value > 1
    }"#;
    let new = r#"pattern p { match s0 where s0: kind == "a" }"#;
    let compared = text_case(old, new, &raw, 2, 23, ReloadPolicy::Drain);
    assert_eq!(
        (compared.drains, compared.keys_started),
        (1, 1),
        "{compared:?}"
    );
}
