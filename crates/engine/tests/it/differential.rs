//! Differential test: random patterns over every construct and random event
//! sequences (at most 12 events) through the real matcher
//! (`cepheid_automata::matcher::Matcher` over `cepheid_automata::nfa::Nfa`) and the reference
//! (`crates/engine/tests/it/reference`: Flink 2.3's NFA transliterated, with cepheid's
//! deliberate deviations D1-D5), comparing the multisets of matches and
//! timeouts emitted at each event (and at the final advance of time). The
//! real side is driven as the engine drives a partition: the partition's
//! deadlines up to the next event's time are fired one by one (D4), then
//! the event is processed.
//!
//! Patterns that `pattern::validate` rejects are counted, not run; a pattern
//! the reference's compiler rejects (D5) must be rejected by the real
//! compiler too, and the other way round. Cases where Flink itself would
//! throw, or whose partial matches explode past the reference's work
//! budget, are counted and not compared. The counts are printed at the end
//! (`-- --nocapture`).
//!
//! `CEPHEID_PROPTEST_CASES` raises the number of cases (default 256),
//! `CEPHEID_PROPTEST_SEED` picks another seed, `CEPHEID_DIFF_KEEP_GOING=1`
//! reports every distinct (shrunk) disagreement instead of the first.

use crate::reference;

use cepheid_automata::matcher::{Matcher, Output as RealOutput};
use cepheid_automata::nfa::Nfa;
use cepheid_core::event::{Event, FieldError, FieldId, FieldPath, FieldResolver};
use cepheid_core::pattern::{validate, Pattern};
use cepheid_engine::{Value, ValueRef};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestCaseError, TestRunner};
use reference::build::kind_is;
use reference::gen::{events, pattern_spec, PatternSpec};
use reference::{print, run, Failure, RefEvent};

/// The event type the real matcher sees.
#[derive(Clone, Debug, PartialEq)]
struct Ev {
    id: u64,
    ts: i64,
    kind: Value,
    value: i64,
}

/// The field names of [`Ev`], by id.
const NAMES: [&str; 4] = ["kind", "value", "ts", "id"];

#[derive(Clone, Default)]
struct EvFields;

impl FieldResolver for EvFields {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
        let name = path.to_string();
        let index = NAMES.iter().position(|n| *n == name);
        index
            .map(|i| FieldId::from_index(i as u32))
            .ok_or_else(|| FieldError::new(path))
    }
}

impl Event for Ev {
    type Fields = EvFields;

    fn field(&self, id: FieldId) -> ValueRef<'_> {
        match id.index() {
            0 => (&self.kind).into(),
            1 => ValueRef::Int(self.value),
            2 => ValueRef::Int(self.ts),
            3 => ValueRef::from(self.id),
            _ => ValueRef::Null,
        }
    }
}

fn fields() -> EvFields {
    EvFields
}

/// `(event index or n for the final advance, rendered output)`, sorted.
type Outputs = Vec<(usize, String)>;

fn render(stages: &[(String, Vec<u64>)], expired_at: Option<i64>) -> String {
    let mut out = stages
        .iter()
        .map(|(s, ids)| format!("{s}:{ids:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(t) = expired_at {
        out += &format!(" @{t}");
    }
    out
}

/// The time the final advance goes to: past every window.
fn end_time(events: &[RefEvent]) -> i64 {
    events.last().map_or(0, |e| e.ts) + 100
}

/// `(matches, timeouts)` sorted per step.
type Outcome = (Outputs, Outputs);

fn sorted_outputs(items: &[reference::Emitted]) -> Outputs {
    let mut v: Outputs = items
        .iter()
        .map(|m| (m.step / 2, render(&m.stages, m.expired_at)))
        .collect();
    v.sort();
    v
}

/// Why the real side produced no outcome.
#[derive(Debug)]
enum RealError {
    /// `Nfa::compile` rejected the pattern.
    Rejected(String),
    /// The partition's deadline did not move (the test cannot go on).
    Stuck(String),
}

fn real_outputs(p: &Pattern, evs: &[RefEvent]) -> Result<Outcome, RealError> {
    let nfa = Nfa::<Ev>::compile(p, &mut fields())
        .map_err(|e| RealError::Rejected(format!("compile error: {e:?}")))?;
    let mut m = Matcher::new(nfa);
    let (mut matches, mut timeouts) = (Vec::new(), Vec::new());
    let mut collect = |step: usize, outs: Vec<RealOutput<Ev>>| {
        for o in outs {
            let (om, t) = match o {
                RealOutput::Match(om) => (om, None),
                RealOutput::Timeout {
                    partial,
                    expired_at,
                } => (partial, Some(expired_at)),
                // (a `Matcher` has no late events and no limit)
                _ => unreachable!("a matcher gives only matches and timeouts"),
            };
            let stages: Vec<(String, Vec<u64>)> = om
                .stages
                .iter()
                .map(|(s, es)| (s.clone(), es.iter().map(|e| e.id).collect()))
                .collect();
            let line = (step, render(&stages, t));
            if t.is_some() {
                timeouts.push(line);
            } else {
                matches.push(line);
            }
        }
    };
    for (i, e) in evs.iter().enumerate() {
        let ev = Ev {
            id: e.id,
            ts: e.ts,
            kind: e.fields["kind"].clone(),
            value: e.fields["value"].as_int().unwrap_or(0),
        };
        fire_deadlines(&mut m, e.ts, &mut |outs| collect(i, outs)).map_err(RealError::Stuck)?;
        collect(i, m.process(e.ts, ev));
    }
    let end = end_time(evs);
    fire_deadlines(&mut m, end, &mut |outs| collect(evs.len(), outs)).map_err(RealError::Stuck)?;
    collect(evs.len(), m.advance_time(end));
    matches.sort();
    timeouts.sort();
    Ok((matches, timeouts))
}

/// What the engine does before time moves to `t`: the partition's
/// deadlines up to `t`, one `advance_time` each, earliest first (D4).
fn fire_deadlines(
    m: &mut Matcher<Ev>,
    t: i64,
    collect: &mut dyn FnMut(Vec<RealOutput<Ev>>),
) -> Result<(), String> {
    let mut last = None;
    while let Some(d) = m.partition().next_deadline().filter(|d| *d <= t) {
        if last.is_some_and(|l| d <= l) {
            return Err(format!(
                "the deadline {d} did not move after advancing to it"
            ));
        }
        last = Some(d);
        collect(m.advance_time(d));
    }
    Ok(())
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The case count (`CEPHEID_PROPTEST_CASES`, default 256) and a fixed seed
/// (`CEPHEID_PROPTEST_SEED` explores others), so the suite is reproducible.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: env_number("CEPHEID_PROPTEST_CASES").map_or(256, |n| n as u32),
        rng_seed: RngSeed::Fixed(env_number("CEPHEID_PROPTEST_SEED").unwrap_or(0x5eed_c0de)),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// What happened to the cases, printed at the end.
#[derive(Default)]
struct Tally {
    compared: AtomicUsize,
    invalid: AtomicUsize,
    rejected_by_compiler: AtomicUsize,
    flink_runtime_error: AtomicUsize,
    too_expensive: AtomicUsize,
    invalid_kinds: Mutex<BTreeMap<String, usize>>,
}

fn failure(p: &Pattern, evs: &[RefEvent], what: String) -> TestCaseError {
    TestCaseError::fail(format!(
        "\n{}\nevents:\n{}\n{what}",
        print::pattern(p),
        print::events(evs)
    ))
}

fn compare(p: &Pattern, evs: &[RefEvent], tally: &Tally) -> Result<(), TestCaseError> {
    let errors = validate(p);
    if !errors.is_empty() {
        tally.invalid.fetch_add(1, Relaxed);
        let mut kinds = tally.invalid_kinds.lock().unwrap();
        for e in errors {
            *kinds.entry(format!("{:?}", e.kind)).or_default() += 1;
        }
        return Ok(());
    }
    let want = run(p, evs, Some(end_time(evs)));
    if want.failure == Some(Failure::TooExpensive) {
        // Only the compilers are compared: running this one takes too long.
        if let Err(why) = Nfa::<Ev>::compile(p, &mut fields()) {
            return Err(failure(
                p,
                evs,
                format!(
                    "the real compiler rejects the pattern ({why:?}), the reference accepts it"
                ),
            ));
        }
        tally.too_expensive.fetch_add(1, Relaxed);
        return Ok(());
    }
    let got = real_outputs(p, evs);
    if let Err(RealError::Stuck(why)) = &got {
        return Err(failure(p, evs, format!("the real matcher is stuck: {why}")));
    }
    match (&want.failure, &got) {
        (Some(Failure::Rejected(_)), Err(_)) => {
            tally.rejected_by_compiler.fetch_add(1, Relaxed);
            return Ok(());
        }
        (Some(Failure::Rejected(why)), Ok(_)) => {
            return Err(failure(
                p,
                evs,
                format!("the reference rejects the pattern ({why}), the real compiler accepts it"),
            ));
        }
        (_, Err(RealError::Rejected(why) | RealError::Stuck(why))) => {
            return Err(failure(
                p,
                evs,
                format!("the real compiler rejects the pattern ({why}), the reference accepts it"),
            ));
        }
        (Some(Failure::Runtime(_)), Ok(_)) => {
            // Flink itself would throw here: nothing to compare.
            tally.flink_runtime_error.fetch_add(1, Relaxed);
            return Ok(());
        }
        (Some(Failure::TooExpensive), Ok(_)) => unreachable!("handled above"),
        (None, Ok(_)) => {}
    }
    let (want_m, want_t) = (
        sorted_outputs(&want.matches),
        sorted_outputs(&want.timeouts),
    );
    let (got_m, got_t) = got.expect("checked above");
    tally.compared.fetch_add(1, Relaxed);
    if (&want_m, &want_t) != (&got_m, &got_t) {
        return Err(failure(
            p,
            evs,
            format!(
                "reference matches: {want_m:?}\nreal matches:      {got_m:?}\n\
                 reference timeouts: {want_t:?}\nreal timeouts:      {got_t:?}"
            ),
        ));
    }
    Ok(())
}

/// Shrinks a failing case the way proptest's runner does (simplify while
/// it still fails, complicate when it passes); returns the last failure.
fn shrink(
    tree: &mut impl ValueTree<Value = (PatternSpec, Vec<RefEvent>)>,
    mut last: String,
    tally: &Tally,
) -> String {
    let mut steps = 0;
    if !tree.simplify() {
        return last;
    }
    while steps < 10_000 {
        steps += 1;
        let (spec, evs) = tree.current();
        match compare(&spec.build(), &evs, tally) {
            Err(e) => {
                last = e.to_string();
                if !tree.simplify() {
                    break;
                }
            }
            Ok(()) => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    last
}

/// The random cases; `CEPHEID_DIFF_KEEP_GOING=1` reports every (shrunk)
/// disagreement instead of stopping at the first.
#[test]
fn real_matcher_agrees_with_the_reference() {
    let config = config();
    let keep_going = std::env::var("CEPHEID_DIFF_KEEP_GOING").is_ok_and(|v| v == "1");
    let tally = Tally::default();
    let mut runner = TestRunner::new(config.clone());
    let strategy = (pattern_spec(), events());
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..config.cases {
        let mut tree = strategy.new_tree(&mut runner).expect("a case");
        let (spec, evs) = tree.current();
        if let Err(e) = compare(&spec.build(), &evs, &tally) {
            let shrunk = shrink(&mut tree, e.to_string(), &Tally::default());
            if !keep_going {
                failures.insert(shrunk, 1);
                break;
            }
            let seen = failures.entry(shrunk.clone()).or_default();
            if *seen == 0 {
                eprintln!("disagreement:{shrunk}\n");
            }
            *seen += 1;
        }
    }
    let invalid_kinds = tally.invalid_kinds.lock().unwrap();
    eprintln!(
        "differential: {} cases compared; rejected: {} by validate ({:?}), {} by both compilers (D5); \
         {} where Flink would throw at run time, {} too expensive; {} distinct disagreements",
        tally.compared.load(Relaxed),
        tally.invalid.load(Relaxed),
        *invalid_kinds,
        tally.rejected_by_compiler.load(Relaxed),
        tally.flink_runtime_error.load(Relaxed),
        tally.too_expensive.load(Relaxed),
        failures.len(),
    );
    if let Some((first, _)) = failures.iter().next() {
        panic!("minimal failing case:{first}");
    }
}

/// D5 at its border: a cycle of PROCEED edges (a looping group that can
/// take nothing, which `validate` rejects first, so the compilers are asked
/// directly), and optional groups repeated until one state has more than
/// 10,000 PROCEED paths: both compilers accept or reject each pattern alike.
#[test]
fn both_compilers_reject_what_d5_rejects() {
    let by_initial = |text: &str| {
        let p = reference::build::pattern(text, &[]);
        let conds: Vec<(&str, cepheid_core::pattern::Condition)> = p
            .stages
            .iter()
            .map(|s| (s.name.as_str(), kind_is(s.name.chars().next().unwrap())))
            .collect();
        reference::build::pattern(text, &conds)
    };
    let mut texts = vec![
        "(a?)+".to_string(),
        "x followed by (a? followed by b?)+".to_string(),
    ];
    texts.extend((8..=14).map(|n| format!("x followed by ((a? followed by b?) optional){{{n}}}")));
    let mut rejected = Vec::new();
    for text in &texts {
        let p = by_initial(text);
        let ours = reference::flink::compile(&p, reference::flink::Deviations::CEPHEID);
        let real = Nfa::<Ev>::compile(&p, &mut fields());
        assert_eq!(
            ours.is_err(),
            real.is_err(),
            "{text}: reference {:?}, real {:?}",
            ours.err(),
            real.err()
        );
        if ours.is_err() {
            rejected.push(text.as_str());
        }
    }
    assert!(rejected.contains(&"(a?)+"), "{rejected:?}");
    assert!(rejected.iter().any(|t| t.ends_with("{14}")), "{rejected:?}");
    assert!(!rejected.iter().any(|t| t.ends_with("{8}")), "{rejected:?}");
}
