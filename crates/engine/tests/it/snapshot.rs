//! Engine snapshots (`Engine::snapshot` / `Engine::restore`,
//! `docs/snapshot.md`): an engine cut anywhere in a stream, snapshotted and
//! restored into a fresh engine, goes on exactly as the uninterrupted one
//! (same outputs, same order, same stats), over the `patterns/` library
//! (records decoded from JSON lines and from CSV), random patterns of the
//! differential test's generator (typed events and records), with several
//! cuts per stream, disorder within the delay, late events, punctuated
//! watermarks and the per-key limit; a restored engine snapshots to the
//! same bytes. And every way a snapshot can be refused is an error with a
//! clear message, never a panic: wrong magic, unknown version, other
//! patterns, other configuration, other fields, corrupt, truncated (at
//! every length), inconsistent under a valid checksum, engine not fresh.
//!
//! `CEPHEID_PROPTEST_CASES` raises the number of cases.

use crate::reference;

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

use cepheid_core::pattern::Pattern as IrPattern;
use cepheid_core::record::FieldTable;
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::ReloadPolicy;
use cepheid_engine::{Engine, ErrorKind, Event, FieldPath, Output, Record, Rules, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One input step.
#[derive(Clone, Debug)]
enum Step<E> {
    Event(Timestamp, E),
    Watermark(Timestamp),
    /// A change of the rule set (`Engine::set_rules`).
    Rules(Vec<IrPattern>, ReloadPolicy),
}

/// How a stream ends.
#[derive(Clone, Copy, Debug)]
enum End {
    Finish,
    /// `watermark(Timestamp::MAX)`: every window closes.
    Flush,
}

fn feed<E: Event + Clone>(engine: &mut Engine<E>, steps: &[Step<E>], out: &mut Vec<Output<E>>) {
    for step in steps {
        match step {
            Step::Event(ts, e) => {
                engine.push(*ts, e.clone(), out);
            }
            Step::Watermark(t) => engine.watermark(*t, out),
            Step::Rules(set, policy) => {
                engine
                    .set_rules(&set[..], *policy, out)
                    .expect("a change of rules");
            }
        }
    }
}

fn end<E: Event + Clone>(engine: &mut Engine<E>, how: End, out: &mut Vec<Output<E>>) {
    match how {
        End::Finish => engine.finish(out),
        End::Flush => engine.watermark(Timestamp::MAX, out),
    }
}

fn snapshot<E: Event + Serialize>(engine: &Engine<E>) -> Vec<u8> {
    let mut bytes = Vec::new();
    engine.snapshot(&mut bytes).expect("a snapshot");
    bytes
}

/// Engine A runs the whole stream; another is cut at each of `cuts` (in
/// order), snapshotted, and a fresh engine restores the snapshot and goes
/// on. Their outputs and stats must be equal; a restored engine must
/// snapshot to the same bytes. Returns the number of outputs.
fn check_cuts<E>(
    make: &dyn Fn() -> Engine<E>,
    steps: &[Step<E>],
    cuts: &[usize],
    how: End,
) -> Result<usize, TestCaseError>
where
    E: Event + Clone + PartialEq + Debug + Serialize + DeserializeOwned,
{
    let restore = |_: &[Step<E>], bytes: &[u8]| {
        let mut next = make();
        next.restore(bytes).map(|()| next)
    };
    check_restores(make, &restore, steps, cuts, how)
}

/// Makes the engine that goes on from a snapshot (the bytes) taken after
/// some steps.
type Restore<'a, E> = dyn Fn(&[Step<E>], &[u8]) -> Result<Engine<E>, cepheid_engine::Error> + 'a;

/// As [`check_cuts`], with `restore` making the engine that goes on from
/// a snapshot taken after `steps` (the steps up to the cut).
fn check_restores<E>(
    make: &dyn Fn() -> Engine<E>,
    restore: &Restore<'_, E>,
    steps: &[Step<E>],
    cuts: &[usize],
    how: End,
) -> Result<usize, TestCaseError>
where
    E: Event + Clone + PartialEq + Debug + Serialize + DeserializeOwned,
{
    let mut whole = make();
    let mut expected = Vec::new();
    feed(&mut whole, steps, &mut expected);
    end(&mut whole, how, &mut expected);

    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(steps.len())).collect();
    cuts.sort_unstable();
    let mut engine = make();
    let mut got = Vec::new();
    let mut at = 0;
    for cut in cuts {
        feed(&mut engine, &steps[at..cut], &mut got);
        at = cut;
        let bytes = snapshot(&engine);
        let next = restore(&steps[..cut], &bytes[..])
            .map_err(|e| TestCaseError::fail(format!("restore at {cut}: {e}")))?;
        prop_assert_eq!(next.stats(), engine.stats());
        prop_assert_eq!(next.live_keys(), engine.live_keys());
        prop_assert_eq!(next.live_runs(), engine.live_runs());
        prop_assert_eq!(next.waiting_events(), engine.waiting_events());
        prop_assert_eq!(next.stored_events(), engine.stored_events());
        prop_assert_eq!(next.current_watermark(), engine.current_watermark());
        let again = snapshot(&next);
        prop_assert!(again == bytes, "a restored engine snapshots to other bytes");
        engine = next;
    }
    feed(&mut engine, &steps[at..], &mut got);
    end(&mut engine, how, &mut got);
    prop_assert_eq!(got.len(), expected.len(), "number of outputs");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        prop_assert_eq!(g, e, "output {} differs", i);
    }
    prop_assert_eq!(engine.stats(), whole.stats());
    Ok(expected.len())
}

/// A small deterministic generator (splitmix64), for streams made from a
/// proptest seed.
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

fn cases(default: u32) -> u32 {
    std::env::var("CEPHEID_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------
// The `patterns/` library over records.

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

/// The string literals of the library's patterns: the values of `type`,
/// `status`, ... that make conditions true.
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

/// A cell of a generated row.
#[derive(Clone, Debug)]
enum Cell {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Cell {
    fn json(&self) -> String {
        match self {
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => format!("{f:?}"),
            Cell::Bool(b) => b.to_string(),
            Cell::Str(s) => format!("\"{s}\""),
        }
    }

    fn csv(&self) -> String {
        match self {
            Cell::Str(s) => s.clone(),
            other => other.json(),
        }
    }
}

/// A generated stream: rows (`None`: a watermark at that time) over the
/// fields of the engine's table.
struct Rows {
    fields: Vec<String>,
    rows: Vec<(Timestamp, Option<Vec<Option<Cell>>>)>,
}

fn library_rows(
    rng: &mut Rng,
    fields: &[String],
    keys: &[String],
    vocab: &[String],
    n: usize,
    delay: i64,
) -> Rows {
    let steps = [0i64, 1_000, 10_000, 60_000, 300_000, 1_200_000];
    let mut clock: i64 = 1_000_000;
    let mut rows = Vec::new();
    for _ in 0..n {
        clock += *rng.pick(&steps) * i64::from(rng.chance(60));
        if rng.chance(4) {
            let t = clock - rng.below(2 * delay as u64 + 1) as i64;
            rows.push((t, None));
            continue;
        }
        // Disorder within the delay, now and then a late one.
        let back = if rng.chance(5) {
            delay + 1 + rng.below(5_000) as i64
        } else {
            rng.below(delay as u64 + 1) as i64
        };
        let ts = clock - back;
        let cells = fields
            .iter()
            .map(|f| {
                if f == "ts" {
                    return Some(Cell::Int(ts));
                }
                if rng.chance(3) {
                    return None;
                }
                Some(if keys.contains(f) {
                    if rng.chance(50) {
                        Cell::Int(rng.below(3) as i64)
                    } else {
                        Cell::Str(format!("k{}", rng.below(2)))
                    }
                } else if f == "type" {
                    Cell::Str(rng.pick(vocab).clone())
                } else {
                    match rng.below(10) {
                        0..=2 => Cell::Bool(rng.chance(60)),
                        3..=5 => Cell::Int(*rng.pick(&[0, 1, 3, 50, 70, 85, 90, 600, 1000, 1500])),
                        6 => Cell::Float(*rng.pick(&[0.5, 2.5, 4.99, 99.5, 750.25])),
                        _ => Cell::Str(rng.pick(vocab).clone()),
                    }
                })
            })
            .collect();
        rows.push((ts, Some(cells)));
    }
    Rows {
        fields: fields.to_vec(),
        rows,
    }
}

/// The rows as records, decoded from JSON lines or CSV by a decoder of
/// `table`.
fn decode_rows(rows: &Rows, table: &FieldTable, csv: bool) -> Vec<Step<Record>> {
    let format = if csv { Format::Csv } else { Format::JsonLines };
    let mut decoder = Decoder::new(format, "ts", table.clone());
    let mut lines = Vec::new();
    if csv {
        lines.push(rows.fields.join(","));
    }
    for (t, row) in &rows.rows {
        let Some(cells) = row else {
            lines.push(format!("{{\"$watermark\": {t}}}"));
            continue;
        };
        if csv {
            let cells: Vec<String> = cells
                .iter()
                .map(|c| c.as_ref().map_or(String::new(), Cell::csv))
                .collect();
            lines.push(cells.join(","));
        } else {
            let members: Vec<String> = rows
                .fields
                .iter()
                .zip(cells)
                .filter_map(|(f, c)| c.as_ref().map(|c| format!("\"{f}\": {}", c.json())))
                .collect();
            lines.push(format!("{{{}}}", members.join(", ")));
        }
    }
    let mut steps = Vec::new();
    for line in lines {
        // (CSV has no watermark lines: a JSON one is a malformed row there,
        // so watermarks are given to the engine directly.)
        if line.starts_with("{\"$watermark\"") && csv {
            let t = line["{\"$watermark\": ".len()..line.len() - 1]
                .parse()
                .unwrap();
            steps.push(Step::Watermark(t));
            continue;
        }
        match decoder.decode(line.as_bytes()).unwrap() {
            Item::Event(ts, record) => steps.push(Step::Event(ts, record)),
            Item::Watermark(t) => steps.push(Step::Watermark(t)),
            Item::Skip => {}
        }
    }
    steps
}

fn library_engine(rules: &Rules, delay: i64, limit: Option<usize>) -> Engine<Record> {
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_millis(delay as u64));
    if let Some(limit) = limit {
        engine = engine.max_runs_per_key(limit);
    }
    engine.add(rules).unwrap();
    engine
}

/// One case over the library: every file alone, and all files in one
/// engine; JSON lines or CSV; a random delay, limit, end and cuts.
fn library_case(seed: u64) -> Result<usize, TestCaseError> {
    let mut rng = Rng(seed);
    let files = library_files();
    let vocab = vocabulary(&files);
    let mut outputs = 0;
    let mut sets: Vec<Vec<PathBuf>> = files.iter().map(|f| vec![f.clone()]).collect();
    sets.push(files.clone());
    for (index, set) in sets.into_iter().enumerate() {
        let rules = Rules::load_all(&set).unwrap();
        let delay = *rng.pick(&[0i64, 2_000, 60_000]);
        let limit = if rng.chance(20) { Some(2) } else { None };
        let template = library_engine(&rules, delay, limit);
        let table = template.fields().clone();
        let mut fields: Vec<String> = table.paths().iter().map(ToString::to_string).collect();
        if !fields.iter().any(|f| f == "ts") {
            fields.insert(0, "ts".into());
        }
        let keys: Vec<String> = template
            .patterns()
            .flat_map(|p| p.partition_by.iter().map(ToString::to_string))
            .collect();
        let n = 60 + rng.below(240) as usize;
        let rows = library_rows(&mut rng, &fields, &keys, &vocab, n, delay);
        let csv = rng.chance(30);
        let steps = decode_rows(&rows, &table, csv);
        let cuts: Vec<usize> = (0..1 + rng.below(3))
            .map(|_| rng.below(steps.len() as u64 + 1) as usize)
            .collect();
        let how = if rng.chance(50) {
            End::Finish
        } else {
            End::Flush
        };
        let make = || library_engine(&rules, delay, limit);
        // Every other set resumes through `Engine::from_snapshot`: the
        // rules given, the delay and limits from the snapshot.
        let from_snapshot = (index as u64 + seed) % 2 == 0;
        let restore = |_: &[Step<Record>], bytes: &[u8]| {
            if from_snapshot {
                Engine::from_snapshot(bytes, &rules)
            } else {
                let mut next = make();
                next.restore(bytes).map(|()| next)
            }
        };
        outputs += check_restores(&make, &restore, &steps, &cuts, how).map_err(|e| {
            TestCaseError::fail(format!("{set:?} csv={csv} cuts={cuts:?} {how:?}: {e}"))
        })?;
    }
    Ok(outputs)
}

#[test]
fn the_pattern_library_resumes_exactly_from_a_snapshot() {
    let total = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(24),
        ..ProptestConfig::default()
    });
    runner
        .run(&any::<u64>(), |seed| {
            total.set(total.get() + library_case(seed)?);
            Ok(())
        })
        .unwrap();
    // The streams are not trivial: they make matches and timeouts.
    assert!(total.get() > 100, "only {} outputs", total.get());
}

// ---------------------------------------------------------------------
// Random patterns (the differential test's generator), typed and records.

/// The typed event of the random patterns: `kind` and `value` are what the
/// generator's conditions read, `key` partitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, cepheid_engine::Event)]
struct Ev {
    key: i64,
    kind: String,
    value: i64,
    id: u64,
}

/// `(kind, value, time step, key)` of random events, and the stream's
/// delay; events are disordered within the delay, some are late.
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

fn as_records(steps: &[Step<Ev>], table: &FieldTable) -> Vec<Step<Record>> {
    let mut decoder = Decoder::new(Format::JsonLines, "ts", table.clone());
    steps
        .iter()
        .map(|s| match s {
            Step::Watermark(t) => Step::Watermark(*t),
            Step::Rules(set, policy) => Step::Rules(set.clone(), *policy),
            Step::Event(ts, e) => {
                let line = format!(
                    r#"{{"ts": {ts}, "key": {}, "kind": "{}", "value": {}, "id": {}}}"#,
                    e.key, e.kind, e.value, e.id
                );
                match decoder.decode(line.as_bytes()).unwrap() {
                    Item::Event(ts, r) => Step::Event(ts, r),
                    other => panic!("{other:?}"),
                }
            }
        })
        .collect()
}

fn random_engine<E: Event + 'static>(p: &IrPattern, delay: i64, limit: usize) -> Option<Engine<E>> {
    // A small limit on partial matches per key makes some drop, and then
    // one on waiting events forces watermarks.
    let mut engine: Engine<E> = Engine::with_max_delay(Duration::from_millis(delay as u64))
        .max_runs_per_key(limit)
        .max_waiting_events(if limit >= 4 { usize::MAX } else { 3 });
    engine.add(p).ok()?;
    // A second pattern partitioned alike, and one over the whole stream:
    // groups, numbering and deadlines of several patterns.
    let mut twin = p.clone();
    twin.name = "twin".into();
    twin.emit_timeouts = !twin.emit_timeouts;
    let mut global = p.clone();
    global.name = "global".into();
    global.partition_by.clear();
    engine.add(&twin).ok()?;
    engine.add(&global).ok()?;
    Some(engine)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(96), ..ProptestConfig::default() })]

    /// Random patterns over typed events and over the same events as
    /// records: cut anywhere, restored, the same outputs.
    #[test]
    fn random_patterns_resume_exactly_from_a_snapshot(
        spec in reference::gen::pattern_spec(),
        raw in prop::collection::vec((0..4usize, 0i64..5, prop_oneof![3 => Just(0i64), 8 => 1i64..3, 1 => 3i64..12], 0i64..3, any::<u8>()), 0..40),
        delay in prop_oneof![Just(0i64), 1i64..4],
        // (Never unlimited: `a+ combinations` doubles its partial matches
        // with every event, and a stream has up to 40.)
        limit in prop_oneof![4 => Just(64usize), 1 => 1usize..4],
        cuts in prop::collection::vec(0usize..41, 1..4),
        flush in any::<bool>(),
    ) {
        let mut p = spec.build();
        if !cepheid_core::pattern::validate(&p).is_empty() {
            return Ok(());
        }
        p.partition_by = vec![FieldPath::single("key")];
        let how = if flush { End::Flush } else { End::Finish };
        let steps = typed_steps(&raw, delay);
        if random_engine::<Ev>(&p, delay, limit).is_none() {
            return Ok(());
        }
        let make = || random_engine::<Ev>(&p, delay, limit).unwrap();
        check_cuts(&make, &steps, &cuts, how)?;
        let make = || random_engine::<Record>(&p, delay, limit).unwrap();
        let records = as_records(&steps, make().fields());
        check_cuts(&make, &records, &cuts, how)?;
    }
}

// ---------------------------------------------------------------------
// Snapshots around changes of rules (`docs/dynamic-rules.md`,
// "Checkpoints"): the snapshot holds the rule set in force, draining old
// versions included.

/// The rule set in force after `steps`: the last change's, else `initial`.
fn rules_after<E>(steps: &[Step<E>], initial: &[IrPattern]) -> Vec<IrPattern> {
    steps
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::Rules(set, _) => Some(set.clone()),
            _ => None,
        })
        .unwrap_or_else(|| initial.to_vec())
}

/// Puts 1 to 2 changes of rules (`sets` in turn, each with a random
/// policy) at random places of `steps`.
fn with_changes<E: Clone>(
    rng: &mut Rng,
    steps: &[Step<E>],
    sets: &[Vec<IrPattern>],
) -> Vec<Step<E>> {
    let mut at: Vec<usize> = (0..1 + rng.below(2))
        .map(|_| rng.below(steps.len() as u64 + 1) as usize)
        .collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut next = 0;
    for (i, step) in steps.iter().enumerate() {
        while next < at.len() && at[next] == i {
            let policy = if rng.chance(50) {
                ReloadPolicy::Drain
            } else {
                ReloadPolicy::Restart
            };
            out.push(Step::Rules(sets[next % sets.len()].clone(), policy));
            next += 1;
        }
        out.push(step.clone());
    }
    while next < at.len() {
        out.push(Step::Rules(
            sets[next % sets.len()].clone(),
            ReloadPolicy::Drain,
        ));
        next += 1;
    }
    out
}

/// A restore from a snapshot taken after `before`: into an engine built
/// with the rules in force then (`make_with`, `Engine::restore`) or into
/// one without patterns (`bare`, `Engine::restore_rules`), as `rules` says.
fn restore_either<E: Event + DeserializeOwned + 'static>(
    before: &[Step<E>],
    bytes: &[u8],
    initial: &[IrPattern],
    make_with: &dyn Fn(&[IrPattern]) -> Engine<E>,
    bare: &dyn Fn() -> Engine<E>,
    rules: bool,
) -> Result<Engine<E>, cepheid_engine::Error> {
    if rules {
        let mut engine = bare();
        engine.restore_rules(bytes).map(|()| engine)
    } else {
        let mut engine = make_with(&rules_after(before, initial));
        engine.restore(bytes).map(|()| engine)
    }
}

/// An engine whose field table has the fields of every pattern of
/// `prime` (added under other names, then replaced by `set`), so that
/// engines of one case number fields alike.
fn primed<E: Event + 'static>(
    set: &[IrPattern],
    prime: &[IrPattern],
    make: &dyn Fn() -> Engine<E>,
) -> Engine<E> {
    let mut engine = make();
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
            set,
            ReloadPolicy::Drain,
            &mut |_: &cepheid_engine::MatchRef<'_, E>| {},
        )
        .unwrap();
    engine
}

/// Over the library: a rule set, changed once or twice (patterns kept,
/// changed into others under their names, removed, added; drained or
/// restarted) at random places of a stream cut at random places, each
/// snapshot restored with the engine's rules or with the snapshot's.
fn library_changes_case(seed: u64) -> Result<usize, TestCaseError> {
    let mut rng = Rng(seed);
    let files = library_files();
    let vocab = vocabulary(&files);
    let library: Vec<IrPattern> = Rules::load_all(&files).unwrap().patterns().to_vec();
    let mut old: Vec<IrPattern> = library.iter().filter(|_| rng.chance(40)).cloned().collect();
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
    let added = rng.pick(&library);
    if !new.iter().any(|p| p.name == added.name) {
        new.push(added.clone());
    }
    let delay = *rng.pick(&[0i64, 2_000, 60_000]);
    let limit = if rng.chance(20) { Some(2) } else { None };
    let config = || {
        let engine: Engine<Record> = Engine::with_max_delay(Duration::from_millis(delay as u64));
        match limit {
            Some(limit) => engine.max_runs_per_key(limit),
            None => engine,
        }
    };
    let make_with = |set: &[IrPattern]| primed(set, &library, &config);
    let template = make_with(&old);
    let table = template.fields().clone();
    let mut fields: Vec<String> = table.paths().iter().map(ToString::to_string).collect();
    if !fields.iter().any(|f| f == "ts") {
        fields.insert(0, "ts".into());
    }
    let keys: Vec<String> = library
        .iter()
        .flat_map(|p| p.partition_by.iter().map(ToString::to_string))
        .collect();
    let n = 100 + rng.below(300) as usize;
    let rows = library_rows(&mut rng, &fields, &keys, &vocab, n, delay);
    let csv = rng.chance(30);
    let steps = with_changes(
        &mut rng,
        &decode_rows(&rows, &table, csv),
        &[new.clone(), old.clone()],
    );
    let cuts: Vec<usize> = (0..1 + rng.below(3))
        .map(|_| rng.below(steps.len() as u64 + 1) as usize)
        .collect();
    let how = if rng.chance(50) {
        End::Finish
    } else {
        End::Flush
    };
    let choices: Vec<bool> = (0..4).map(|_| rng.chance(50)).collect();
    let turn = std::cell::Cell::new(0);
    let restore = |before: &[Step<Record>], bytes: &[u8]| {
        let i = turn.get();
        turn.set(i + 1);
        restore_either(before, bytes, &old, &make_with, &config, choices[i % 4])
    };
    let names = |set: &[IrPattern]| set.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    check_restores(&|| make_with(&old), &restore, &steps, &cuts, how).map_err(|e| {
        TestCaseError::fail(format!(
            "old {:?} new {:?} csv={csv} cuts={cuts:?} restore_rules={choices:?} {how:?}: {e}",
            names(&old),
            names(&new)
        ))
    })
}

#[test]
fn the_library_resumes_exactly_around_changes_of_rules() {
    let total = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(32),
        ..ProptestConfig::default()
    });
    runner
        .run(&any::<u64>(), |seed| {
            total.set(total.get() + library_changes_case(seed)?);
            Ok(())
        })
        .unwrap();
    assert!(total.get() > 100, "only {} outputs", total.get());
}

/// Makes every `until` of `Condition::True` in `seq` the expression
/// `true`.
fn truthful_untils(seq: &mut cepheid_core::pattern::Sequence) {
    use cepheid_core::pattern::{Condition, ElementKind};
    for e in &mut seq.elements {
        if matches!(e.until, Some(Condition::True)) {
            e.until = Some(Condition::Expr(cepheid_core::expr::Expr::Literal(
                cepheid_engine::Value::Bool(true),
            )));
        }
        if let ElementKind::Group(inner) = &mut e.kind {
            truthful_untils(inner);
        }
    }
}

/// An engine configured as [`random_engine`]'s, without patterns.
fn random_config<E: Event + 'static>(delay: i64, limit: usize) -> Engine<E> {
    Engine::with_max_delay(Duration::from_millis(delay as u64))
        .max_runs_per_key(limit)
        .max_waiting_events(if limit >= 4 { usize::MAX } else { 3 })
}

/// The three patterns of [`random_engine`] for `p`.
fn random_set(p: &IrPattern) -> Vec<IrPattern> {
    let mut twin = p.clone();
    twin.name = "twin".into();
    twin.emit_timeouts = !twin.emit_timeouts;
    let mut global = p.clone();
    global.name = "global".into();
    global.partition_by.clear();
    vec![p.clone(), twin, global]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(96), ..ProptestConfig::default() })]

    /// Random patterns over typed events and records: the rule set changes
    /// to another pattern's (all three, or only the first), then perhaps
    /// back, around random cuts; each snapshot restored with the engine's
    /// rules or the snapshot's.
    #[test]
    fn random_patterns_resume_exactly_around_changes_of_rules(
        spec in reference::gen::pattern_spec(),
        other in reference::gen::pattern_spec(),
        raw in prop::collection::vec((0..4usize, 0i64..5, prop_oneof![3 => Just(0i64), 8 => 1i64..3, 1 => 3i64..12], 0i64..3, any::<u8>()), 0..40),
        delay in prop_oneof![Just(0i64), 1i64..4],
        limit in prop_oneof![4 => Just(64usize), 1 => 1usize..4],
        cuts in prop::collection::vec(0usize..43, 1..4),
        seed in any::<u64>(),
        flush in any::<bool>(),
    ) {
        let build = |spec: &reference::gen::PatternSpec| {
            let mut p = spec.build();
            p.partition_by = vec![FieldPath::single("key")];
            // (an `until` of `Condition::True` has no source text: the
            // same as `until u where u: true`, which has)
            truthful_untils(&mut p.sequence);
            p
        };
        let (p, q) = (build(&spec), build(&other));
        if !cepheid_core::pattern::validate(&p).is_empty() || !cepheid_core::pattern::validate(&q).is_empty() {
            return Ok(());
        }
        if random_engine::<Ev>(&p, delay, limit).is_none() || random_engine::<Ev>(&q, delay, limit).is_none() {
            return Ok(());
        }
        let mut rng = Rng(seed);
        let old = random_set(&p);
        let mut new = random_set(&q);
        if rng.chance(50) {
            // Only the first changes; the twin goes.
            new = vec![q.clone(), old[2].clone()];
        }
        let how = if flush { End::Flush } else { End::Finish };
        let steps = with_changes(&mut rng, &typed_steps(&raw, delay), &[new.clone(), old.clone()]);
        let choices: Vec<bool> = (0..4).map(|_| rng.chance(50)).collect();
        let prime: Vec<IrPattern> = old.iter().chain(&new).cloned().collect();
        {
            let config = || random_config::<Ev>(delay, limit);
            let make_with = |set: &[IrPattern]| primed::<Ev>(set, &prime, &config);
            let turn = std::cell::Cell::new(0);
            let restore = |before: &[Step<Ev>], bytes: &[u8]| {
                let i = turn.get();
                turn.set(i + 1);
                restore_either(before, bytes, &old, &make_with, &config, choices[i % 4])
            };
            check_restores(&|| make_with(&old), &restore, &steps, &cuts, how)?;
        }
        let config = || random_config::<Record>(delay, limit);
        let make_with = |set: &[IrPattern]| primed::<Record>(set, &prime, &config);
        let records = as_records(&steps, make_with(&old).fields());
        let turn = std::cell::Cell::new(0);
        let restore = |before: &[Step<Record>], bytes: &[u8]| {
            let i = turn.get();
            turn.set(i + 1);
            restore_either(before, bytes, &old, &make_with, &config, choices[i % 4])
        };
        check_restores(&|| make_with(&old), &restore, &records, &cuts, how)?;
    }
}

// ---------------------------------------------------------------------
// Refusals.

const RULES: &str = r#"
pattern unpaid {
    partition by order
    within 15m
    timeouts
    match create followed by pay
    where
        create: type == "create"
        pay:    type == "pay"
}
pattern big {
    partition by order
    match o{2} where o: amount > 10
}"#;

fn small_engine(rules: &str) -> Engine<Record> {
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_secs(1));
    engine.add(&Rules::parse("r.cep", rules).unwrap()).unwrap();
    engine
}

/// A snapshot of an engine holding a few partial matches, waiting events
/// and deadlines.
fn small_snapshot() -> Vec<u8> {
    let mut engine = small_engine(RULES);
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut out: Vec<Output<Record>> = Vec::new();
    for line in [
        r#"{"ts": 1000, "order": 1, "type": "create", "amount": 20}"#,
        r#"{"ts": 2000, "order": "x", "type": "create", "amount": 30}"#,
        r#"{"ts": 2500, "order": 1, "type": "other", "amount": 40}"#,
        r#"{"ts": 2200, "order": 2, "type": "create"}"#,
    ] {
        if let Item::Event(ts, r) = decoder.decode(line.as_bytes()).unwrap() {
            engine.push(ts, r, &mut out);
        }
    }
    assert!(engine.live_keys() > 0 && engine.waiting_events() > 0);
    snapshot(&engine)
}

fn restore_error(engine: &mut Engine<Record>, bytes: &[u8]) -> cepheid_engine::Error {
    let err = engine.restore(bytes).expect_err("a refused snapshot");
    assert_eq!(err.kind(), ErrorKind::Snapshot, "{err}");
    err
}

#[test]
fn from_snapshot_takes_the_settings_from_the_header() {
    let rules = Rules::parse("r.cep", RULES).unwrap();
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_millis(1_500))
        .max_runs_per_key(3)
        .max_live_runs(40)
        .max_waiting_events(50);
    engine.add(&rules).unwrap();
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut out: Vec<Output<Record>> = Vec::new();
    let lines = [
        r#"{"ts": 1000, "order": 1, "type": "create", "amount": 20}"#,
        r#"{"ts": 2200, "order": 2, "type": "create"}"#,
        r#"{"ts": 2000, "order": 1, "type": "create", "amount": 30}"#,
        r#"{"ts": 4000, "order": 1, "type": "pay", "amount": 40}"#,
        r#"{"ts": 9000, "order": 2, "type": "pay"}"#,
    ];
    let mut events = Vec::new();
    for line in lines {
        if let Item::Event(ts, r) = decoder.decode(line.as_bytes()).unwrap() {
            events.push((ts, r));
        }
    }
    for (ts, r) in &events[..3] {
        engine.push(*ts, r.clone(), &mut out);
    }
    let bytes = snapshot(&engine);

    let mut restored = Engine::<Record>::from_snapshot(&bytes[..], &rules).unwrap();
    // Same settings, same state: the summaries are equal.
    assert_eq!(format!("{restored:?}"), format!("{engine:?}"));
    assert!(format!("{restored:?}").contains(
        "max_delay_ms: 1500, max_runs_per_key: 3, max_live_runs: 40, max_waiting_events: 50"
    ));
    assert_eq!(snapshot(&restored), bytes);
    let mut got = out.clone();
    for (ts, r) in &events[3..] {
        engine.push(*ts, r.clone(), &mut out);
        restored.push(*ts, r.clone(), &mut got);
    }
    engine.finish(&mut out);
    restored.finish(&mut got);
    assert_eq!(got, out);
    assert_eq!(restored.stats(), engine.stats());

    // `restore` on an engine built by hand still works, with the same result.
    let mut by_hand: Engine<Record> = Engine::with_max_delay(Duration::from_millis(1_500))
        .max_runs_per_key(3)
        .max_live_runs(40)
        .max_waiting_events(50);
    by_hand.add(&rules).unwrap();
    by_hand.restore(&bytes[..]).unwrap();
    assert_eq!(
        format!("{by_hand:?}"),
        format!(
            "{:?}",
            Engine::<Record>::from_snapshot(&bytes[..], &rules).unwrap()
        )
    );

    // The rule set from the snapshot too.
    let from_rules = Engine::<Record>::from_snapshot_rules(&bytes[..]).unwrap();
    assert_eq!(snapshot(&from_rules), bytes);
}

#[test]
fn from_snapshot_refuses_other_patterns_and_bad_bytes() {
    let bytes = small_snapshot();
    let other = Rules::parse("r.cep", "pattern other { match a where a: n > 1 }").unwrap();
    let err = Engine::<Record>::from_snapshot(&bytes[..], &other).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Snapshot, "{err}");
    assert!(err.to_string().contains("other patterns"), "{err}");
    let err = Engine::<Record>::from_snapshot(&b"not a snapshot"[..], &other).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Snapshot, "{err}");
    assert!(err.to_string().contains("not a cepheid snapshot"), "{err}");
    let err = Engine::<Record>::from_snapshot_rules(&bytes[..bytes.len() - 1]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // A pattern that does not compile for the event type is the add's error.
    #[derive(Clone, Debug, Event, Serialize, Deserialize)]
    struct Other {
        n: i64,
    }
    let rules = Rules::parse("r.cep", RULES).unwrap();
    let err = Engine::<Other>::from_snapshot(&bytes[..], &rules).unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Snapshot, "{err}");
}

#[test]
fn a_snapshot_restores_into_the_same_patterns() {
    let bytes = small_snapshot();
    let mut engine = small_engine(RULES);
    engine.restore(&bytes[..]).unwrap();
    assert_eq!(snapshot(&engine), bytes);
    // Doc comments and layout are not part of a pattern's fingerprint.
    let commented = format!("/// Orders.\n{}", RULES.replace("    ", "  "));
    small_engine(&commented).restore(&bytes[..]).unwrap();
}

#[test]
fn wrong_magic_unknown_version_and_trailing_bytes_are_refused() {
    let bytes = small_snapshot();
    let mut engine = small_engine(RULES);
    let err = restore_error(&mut engine, b"{\"ts\": 1}\n");
    assert!(err.to_string().contains("not a cepheid snapshot"), "{err}");
    let err = restore_error(&mut engine, b"");
    assert!(err.to_string().contains("empty"), "{err}");
    let mut other = bytes.clone();
    other[8] = 99;
    let err = restore_error(&mut engine, &other);
    assert!(err.to_string().contains("format version 99"), "{err}");
    let mut longer = bytes.clone();
    longer.push(0);
    let err = restore_error(&mut engine, &longer);
    assert!(err.to_string().contains("corrupt"), "{err}");
    // Still fresh after every refusal.
    engine.restore(&bytes[..]).unwrap();
}

#[test]
fn other_patterns_are_refused_naming_the_first_that_differs() {
    let bytes = small_snapshot();
    let changed = RULES.replace("within 15m", "within 16m");
    let err = restore_error(&mut small_engine(&changed), &bytes);
    assert!(
        err.to_string()
            .contains("pattern 1 (`unpaid`) is not the same"),
        "{err}"
    );
    let renamed = RULES.replace("pattern big", "pattern large");
    let err = restore_error(&mut small_engine(&renamed), &bytes);
    assert!(
        err.to_string()
            .contains("pattern 2 is `big` in the snapshot, `large` in this engine"),
        "{err}"
    );
    let fewer = &RULES[..RULES.find("pattern big").unwrap()];
    let err = restore_error(&mut small_engine(fewer), &bytes);
    assert!(err.to_string().contains("`big` is missing"), "{err}");
    let more = format!("{RULES}\npattern third {{ match x where x: amount > 1 }}");
    let err = restore_error(&mut small_engine(&more), &bytes);
    assert!(
        err.to_string().contains("`third` is not in the snapshot"),
        "{err}"
    );
}

#[test]
fn another_configuration_or_field_table_is_refused() {
    let bytes = small_snapshot();
    let rules = Rules::parse("r.cep", RULES).unwrap();
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_secs(2));
    engine.add(&rules).unwrap();
    let err = restore_error(&mut engine, &bytes);
    assert!(err.to_string().contains("max delay of 1000 ms"), "{err}");
    let mut engine: Engine<Record> =
        Engine::with_max_delay(Duration::from_secs(1)).max_runs_per_key(5);
    engine.add(&rules).unwrap();
    let err = restore_error(&mut engine, &bytes);
    assert!(err.to_string().contains("partial matches per key"), "{err}");
    let mut engine: Engine<Record> =
        Engine::with_max_delay(Duration::from_secs(1)).max_waiting_events(5);
    engine.add(&rules).unwrap();
    let err = restore_error(&mut engine, &bytes);
    assert!(err.to_string().contains("waiting events"), "{err}");
    let mut engine = small_engine(RULES);
    engine.fields().intern(&FieldPath::single("extra"));
    let err = restore_error(&mut engine, &bytes);
    assert!(err.to_string().contains("field table"), "{err}");
}

#[test]
fn an_engine_that_saw_events_or_watermarks_is_refused() {
    let bytes = small_snapshot();
    let mut engine = small_engine(RULES);
    engine.watermark(5, &mut Vec::new());
    let err = restore_error(&mut engine, &bytes);
    assert!(
        err.to_string().contains("fresh") || err.to_string().contains("new engine"),
        "{err}"
    );
    let mut engine = small_engine(RULES);
    let record = Record::new(Vec::new(), std::sync::Arc::from("{}"));
    engine.push(1, record, &mut Vec::new());
    restore_error(&mut engine, &bytes);
}

#[test]
fn every_truncation_is_refused() {
    let bytes = small_snapshot();
    for len in 0..bytes.len() {
        let mut engine = small_engine(RULES);
        let err = restore_error(&mut engine, &bytes[..len]);
        let text = err.to_string();
        assert!(
            text.contains("truncated")
                || text.contains("empty")
                || text.contains("not a cepheid snapshot"),
            "{len}: {text}"
        );
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let bytes = small_snapshot();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            let mut engine = small_engine(RULES);
            restore_error(&mut engine, &bad);
        }
    }
}

/// Rewrites the body of a snapshot (after magic, version, length and the
/// header) and seals it again with a valid length and checksum.
fn reseal(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut content = bytes[..bytes.len() - 4].to_vec();
    edit(&mut content);
    let len = (content.len() + 4) as u64;
    content[12..20].copy_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&content);
    content.extend_from_slice(&crc.to_le_bytes());
    content
}

#[test]
fn inconsistent_state_under_a_valid_checksum_is_an_error_not_a_panic() {
    let bytes = small_snapshot();
    // Every single byte of the body changed, resealed: refused, or (when
    // the change means another consistent state, e.g. a time) restored;
    // never a panic, and a restored engine can go on.
    let body_start = 20;
    let mut refused = 0;
    for i in body_start..bytes.len() - 4 {
        for delta in [1u8, 0x7f, 0xff] {
            let bad = reseal(&bytes, |b| b[i] = b[i].wrapping_add(delta));
            let mut engine = small_engine(RULES);
            match engine.restore(&bad[..]) {
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Snapshot);
                    refused += 1;
                }
                Ok(()) => {
                    let mut out = Vec::new();
                    let record = Record::new(Vec::new(), std::sync::Arc::from("{}"));
                    engine.push(3_000, record, &mut out);
                    engine.watermark(Timestamp::MAX, &mut out);
                }
            }
        }
    }
    assert!(refused > 0);
}
