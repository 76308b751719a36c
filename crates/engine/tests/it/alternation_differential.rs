//! Alternation against a reference independent of its automaton code
//! (issue 41): random patterns of `tests/reference/gen.rs` (every element
//! kind) turned into patterns with alternation (a run of top-level elements
//! split into two branches, the second sometimes split again into a nested
//! alternation, sometimes a window on the alternation), over random
//! streams.
//!
//! The reference never sees an alternation: the pattern is expanded into
//! one pattern per choice of branches (each alternation replaced by a group
//! of the chosen branch, with the alternation's connector and window), each
//! is run through the transliteration of Flink's NFA (`tests/reference`),
//! and their outputs are merged as `docs/semantics.md` ("Alternation")
//! defines: a match or timeout names, per alternation, the branch of its
//! own stages it took, else (a timeout) the branch whose stage it waited
//! in; an output that did not reach an alternation is the same partial or
//! complete match in every expansion that differs only there, and counts
//! once. The multisets of matches and timeouts emitted at each event (and
//! at the final advance of time) must equal the real matcher's, branches
//! included.
//!
//! Skip strategies are not generated here: the reference runs each
//! expansion alone, so it cannot prune one expansion's partial matches by
//! another's match; what a skip strategy does across branches is pinned by
//! the golden cases of `tests/alternation.rs`.
//!
//! `CEPHEID_PROPTEST_CASES` sets the number of cases (default 1,024: about
//! half are compared, the others are invalid or too short),
//! `CEPHEID_PROPTEST_SEED` picks another seed.

use crate::reference;

use std::collections::{BTreeMap, HashMap};

use cepheid_automata::matcher::{Cache, Executor, MatchSink, MatchView, Partition, SharedBuffer};
use cepheid_automata::nfa::Nfa;
use cepheid_core::event::{Event, FieldError, FieldId, FieldPath, FieldResolver};
use cepheid_core::pattern::{
    validate, Element, ElementKind, Pattern, Quantifier, Sequence, SkipStrategy,
};
use cepheid_core::primitives::StageId;
use cepheid_engine::{Value, ValueRef};

use proptest::prelude::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};
use reference::gen::{events, pattern_spec};
use reference::{print, run, RefEvent};

/// The event type the real matcher sees (as in `differential.rs`).
#[derive(Clone, Debug, PartialEq)]
struct Ev {
    id: u64,
    ts: i64,
    kind: Value,
    value: i64,
}

const NAMES: [&str; 4] = ["kind", "value", "ts", "id"];

#[derive(Clone, Default)]
struct EvFields;

impl FieldResolver for EvFields {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
        let name = path.to_string();
        NAMES
            .iter()
            .position(|n| *n == name)
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

/// `(event index or n for the final advance, rendered output)`.
type Outputs = Vec<(usize, String)>;

fn render(
    stages: &[(String, Vec<u64>)],
    expired_at: Option<i64>,
    branch: &[Option<u32>],
) -> String {
    let mut out = stages
        .iter()
        .map(|(s, ids)| format!("{s}:{ids:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(t) = expired_at {
        out += &format!(" @{t}");
    }
    out += &format!(" branch={branch:?}");
    out
}

fn end_time(events: &[RefEvent]) -> i64 {
    events.last().map_or(0, |e| e.ts) + 100
}

/// An alternation of these branches with `model`'s connector.
fn alternation(model: &Element, branches: Vec<Vec<Element>>) -> Element {
    Element {
        kind: ElementKind::Alternation(branches.into_iter().map(Sequence::new).collect()),
        contiguity: model.contiguity,
        ..Element::stage(StageId(0))
    }
}

/// The random pattern with a run of its top-level elements made an
/// alternation (`None` when it has fewer than two elements).
fn with_alternation(mut p: Pattern, split: (usize, usize, usize, u8)) -> Option<Pattern> {
    let within = p.within;
    // A pattern of one group: the alternation goes inside the group.
    if let [Element {
        kind: ElementKind::Group(inner),
        ..
    }] = p.sequence.elements.as_mut_slice()
    {
        if !split_into_alternation(inner, within, split) {
            return None;
        }
    } else if !split_into_alternation(&mut p.sequence, within, split) {
        return None;
    }
    p.skip = SkipStrategy::NoSkip;
    Some(p)
}

/// A branch should take an event: its first element that is not a
/// negation is made required (the random elements are often optional).
fn required_head(branch: &mut [Element]) {
    if let Some(e) = branch.iter_mut().find(|e| !e.is_negation()) {
        e.optional = false;
        if let Quantifier::Times { min: 0, max } = e.quantifier {
            e.quantifier = Quantifier::Times { min: 1, max };
        }
    }
}

fn split_into_alternation(
    seq: &mut Sequence,
    within: Option<i64>,
    (a, b, c, d): (usize, usize, usize, u8),
) -> bool {
    let n = seq.elements.len();
    if n < 2 {
        return false;
    }
    let start = a % (n - 1);
    let len = 2 + b % (n - start - 1);
    let cut = 1 + c % (len - 1);
    let mut elements = std::mem::take(&mut seq.elements);
    let suffix = elements.split_off(start + len);
    let mut middle = elements.split_off(start);
    let mut second = middle.split_off(cut);
    let model = middle[0].clone();
    required_head(&mut middle);
    let second = if d & 1 == 1 && second.len() >= 2 {
        let mut inner = second;
        let mut tail = inner.split_off(1);
        required_head(&mut inner);
        required_head(&mut tail);
        vec![alternation(&inner[0].clone(), vec![inner, tail])]
    } else {
        required_head(&mut second);
        second
    };
    let mut alt = alternation(&model, vec![middle, second]);
    if d & 2 == 2 {
        alt.within = Some(within.unwrap_or(1 + i64::from(d >> 2)));
    }
    elements.push(alt);
    elements.extend(suffix);
    seq.elements = elements;
    true
}

/// Every stage name written in `seq` (any depth).
fn stage_names(p: &Pattern, seq: &Sequence, out: &mut Vec<String>) {
    for e in &seq.elements {
        match &e.kind {
            ElementKind::Stage(s) => out.push(p.stage(*s).name.clone()),
            ElementKind::Group(inner) => stage_names(p, inner, out),
            ElementKind::Alternation(bs) => bs.iter().for_each(|b| stage_names(p, b, out)),
        }
    }
}

/// What the reference needs to know of each alternation (in the order of
/// the text): per branch the stage names no other branch writes, and all
/// the stage names inside it.
struct AltInfo {
    own: Vec<Vec<String>>,
    inside: Vec<String>,
}

fn alternations(p: &Pattern) -> (Vec<AltInfo>, HashMap<usize, usize>) {
    type Found = (usize, Vec<Vec<String>>);
    fn walk(p: &Pattern, seq: &Sequence, out: &mut Vec<Found>) {
        for e in &seq.elements {
            match &e.kind {
                ElementKind::Stage(_) => {}
                ElementKind::Group(inner) => walk(p, inner, out),
                ElementKind::Alternation(bs) => {
                    let per_branch = bs
                        .iter()
                        .map(|b| {
                            let mut names = Vec::new();
                            stage_names(p, b, &mut names);
                            names
                        })
                        .collect();
                    out.push((e as *const Element as usize, per_branch));
                    bs.iter().for_each(|b| walk(p, b, out));
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(p, &p.sequence, &mut found);
    let mut infos = Vec::new();
    let mut numbers = HashMap::new();
    for (k, (addr, per_branch)) in found.into_iter().enumerate() {
        numbers.insert(addr, k);
        // A branch's own stages: those no other branch writes (a partial
        // match that took one is in that branch, whatever it waits in).
        let own = per_branch
            .iter()
            .enumerate()
            .map(|(i, names)| {
                names
                    .iter()
                    .filter(|n| {
                        !per_branch
                            .iter()
                            .enumerate()
                            .any(|(j, other)| j != i && other.contains(n))
                    })
                    .cloned()
                    .collect()
            })
            .collect();
        infos.push(AltInfo {
            own,
            inside: per_branch.concat(),
        });
    }
    (infos, numbers)
}

/// One expansion: the elements, and the choices made (alternation number,
/// branch 1-based).
type Expansion = (Vec<Element>, Vec<(usize, u32)>);

/// The expansions of `seq`: each alternation replaced by a group of one
/// branch.
fn expand(seq: &Sequence, numbers: &HashMap<usize, usize>) -> Vec<Expansion> {
    let mut partial: Vec<Expansion> = vec![(Vec::new(), Vec::new())];
    for e in &seq.elements {
        let options: Vec<(Element, Vec<(usize, u32)>)> = match &e.kind {
            ElementKind::Stage(_) => vec![(e.clone(), Vec::new())],
            ElementKind::Group(inner) => expand(inner, numbers)
                .into_iter()
                .map(|(els, ch)| {
                    let mut g = e.clone();
                    g.kind = ElementKind::Group(Sequence::new(els));
                    (g, ch)
                })
                .collect(),
            ElementKind::Alternation(branches) => {
                let k = numbers[&(e as *const Element as usize)];
                let mut out = Vec::new();
                for (b, branch) in branches.iter().enumerate() {
                    for (els, mut ch) in expand(branch, numbers) {
                        let mut g = e.clone();
                        g.kind = ElementKind::Group(Sequence::new(els));
                        ch.push((k, b as u32 + 1));
                        out.push((g, ch));
                    }
                }
                out
            }
        };
        let mut next = Vec::new();
        for (els, ch) in &partial {
            for (o, och) in &options {
                let mut els = els.clone();
                els.push(o.clone());
                let mut ch = ch.clone();
                ch.extend(och.iter().copied());
                next.push((els, ch));
            }
        }
        partial = next;
    }
    partial
}

/// The reference's outputs, merged; `Err` when some expansion could not
/// be run (rejected, Flink would throw, too expensive).
fn reference_outputs(p: &Pattern, evs: &[RefEvent]) -> Result<(Outputs, Outputs), String> {
    let (infos, numbers) = alternations(p);
    let mut matches = Vec::new();
    let mut timeouts = Vec::new();
    for (elements, choices) in expand(&p.sequence, &numbers) {
        let mut q = p.clone();
        q.sequence = Sequence::new(elements);
        let out = run(&q, evs, Some(end_time(evs)));
        if let Some(f) = out.failure {
            return Err(format!("{f:?}"));
        }
        let chosen: Vec<Option<u32>> = (0..infos.len())
            .map(|k| choices.iter().find(|(a, _)| *a == k).map(|(_, b)| *b))
            .collect();
        for (list, into) in [(&out.matches, &mut matches), (&out.timeouts, &mut timeouts)] {
            for m in list.iter() {
                let took = |name: &str| m.stages.iter().any(|(s, _)| s == name);
                let branch: Vec<Option<u32>> = infos
                    .iter()
                    .enumerate()
                    .map(|(k, info)| {
                        let by_events = info
                            .own
                            .iter()
                            .position(|own| own.iter().any(|s| took(s)))
                            .map(|b| b as u32 + 1);
                        let by_state = m
                            .waiting
                            .as_ref()
                            .filter(|w| info.inside.contains(w))
                            .and(chosen[k]);
                        by_events.or(by_state)
                    })
                    .collect();
                // An alternation the output did not reach: every choice
                // there gives it; keep the first branch's only.
                let canonical = (0..infos.len())
                    .all(|k| branch[k].is_some() || chosen[k].map_or(true, |c| c == 1));
                if canonical {
                    into.push((m.step / 2, render(&m.stages, m.expired_at, &branch)));
                }
            }
        }
    }
    matches.sort();
    timeouts.sort();
    Ok((matches, timeouts))
}

/// Collects the real matcher's outputs with their branches.
struct Collect {
    step: usize,
    matches: Outputs,
    timeouts: Outputs,
}

impl Collect {
    fn line(&self, m: &MatchView<'_, Ev>, expired_at: Option<i64>) -> (usize, String) {
        let p = m.pattern();
        let mut by_stage: BTreeMap<StageId, Vec<u64>> = BTreeMap::new();
        for (s, e) in m.events() {
            by_stage.entry(s).or_default().push(m.get(e).id);
        }
        let stages: Vec<(String, Vec<u64>)> = by_stage
            .into_iter()
            .map(|(s, ids)| (p.stage(s).name.clone(), ids))
            .collect();
        let branch = m.branches().expect("a pattern with alternation");
        (self.step, render(&stages, expired_at, &branch))
    }
}

impl MatchSink<Ev> for Collect {
    fn on_match(&mut self, m: &MatchView<'_, Ev>) {
        let line = self.line(m, None);
        self.matches.push(line);
    }

    fn on_timeout(&mut self, m: &MatchView<'_, Ev>, expired_at: i64) {
        let line = self.line(m, Some(expired_at));
        self.timeouts.push(line);
    }
}

fn real_outputs(nfa: &Nfa<Ev>, evs: &[RefEvent]) -> (Outputs, Outputs) {
    let mut part = Partition::new();
    let mut buf = SharedBuffer::new();
    let mut cache = Cache::new();
    let mut exec = Executor::new(nfa, &mut cache);
    let mut sink = Collect {
        step: 0,
        matches: Vec::new(),
        timeouts: Vec::new(),
    };
    let mut advance =
        |part: &mut Partition, buf: &mut SharedBuffer<Ev>, t: i64, sink: &mut Collect| {
            let mut last = None;
            while let Some(d) = part.next_deadline().filter(|d| *d <= t) {
                assert!(last.map_or(true, |l| d > l), "the deadline did not move");
                last = Some(d);
                exec.advance_time(part, buf, d, sink);
            }
            exec.advance_time(part, buf, t, sink);
        };
    for (i, e) in evs.iter().enumerate() {
        sink.step = i;
        advance(&mut part, &mut buf, e.ts, &mut sink);
        let ev = buf.insert(
            e.ts,
            Ev {
                id: e.id,
                ts: e.ts,
                kind: e.fields["kind"].clone(),
                value: e.fields["value"].as_int().unwrap_or(0),
            },
        );
        Executor::new(nfa, &mut Cache::new()).process(&mut part, &mut buf, ev, &mut sink);
        buf.release_if_unused(ev);
    }
    sink.step = evs.len();
    advance(&mut part, &mut buf, end_time(evs), &mut sink);
    sink.matches.sort();
    sink.timeouts.sort();
    (sink.matches, sink.timeouts)
}

/// The real matcher's matches for a pattern without alternation.
fn plain_outputs(q: &Pattern, evs: &[RefEvent]) -> Result<Vec<(usize, String)>, String> {
    let nfa = Nfa::<Ev>::compile(q, &mut EvFields).map_err(|e| format!("{e:?}"))?;
    let mut m = cepheid_automata::matcher::Matcher::new(nfa);
    let mut out = Vec::new();
    let mut push = |step: usize, outs: Vec<cepheid_automata::matcher::Output<Ev>>| {
        for o in outs {
            if let cepheid_automata::matcher::Output::Match(x) = o {
                let st: Vec<String> = x
                    .stages
                    .iter()
                    .map(|(s, es)| format!("{s}:{:?}", es.iter().map(|e| e.id).collect::<Vec<_>>()))
                    .collect();
                out.push((step, st.join(" ")));
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
        push(i, m.process(e.ts, ev));
    }
    push(evs.len(), m.advance_time(end_time(evs)));
    Ok(out)
}

#[derive(Default, Debug)]
struct Tally {
    compared: usize,
    too_short: usize,
    invalid: usize,
    unsupported: usize,
    reference_failed: usize,
    with_matches: usize,
    with_timeouts: usize,
    invalid_kinds: BTreeMap<String, usize>,
}

fn compare(p: &Pattern, evs: &[RefEvent], tally: &mut Tally) -> Result<(), String> {
    let errors = validate(p);
    if !errors.is_empty() {
        tally.invalid += 1;
        for e in errors {
            *tally
                .invalid_kinds
                .entry(format!("{:?}", e.kind))
                .or_default() += 1;
        }
        return Ok(());
    }
    let nfa = match Nfa::<Ev>::compile(p, &mut EvFields) {
        Ok(nfa) => nfa,
        Err(e) if e.message().contains("not supported yet") || e.message().contains("yet:") => {
            tally.unsupported += 1;
            return Ok(());
        }
        Err(e) => {
            return match reference_outputs(p, evs) {
                Err(_) => {
                    tally.reference_failed += 1;
                    Ok(())
                }
                Ok(_) => Err(format!(
                    "the real compiler rejects the pattern ({e:?}), the reference runs it"
                )),
            }
        }
    };
    let want = match reference_outputs(p, evs) {
        Ok(w) => w,
        Err(why) if why.contains("Rejected") => {
            return Err(format!(
                "the reference rejects an expansion ({why}), the real compiler accepts the pattern"
            ))
        }
        Err(_) => {
            tally.reference_failed += 1;
            return Ok(());
        }
    };
    let got = real_outputs(&nfa, evs);
    tally.compared += 1;
    tally.with_matches += usize::from(!want.0.is_empty());
    tally.with_timeouts += usize::from(!want.1.is_empty());
    if want != got {
        // Each branch pattern alone, real and reference, to tell a bug of
        // the alternation from one of the matcher.
        let (_, numbers) = alternations(p);
        let mut alone = String::new();
        for (elements, choices) in expand(&p.sequence, &numbers) {
            let mut q = p.clone();
            q.sequence = Sequence::new(elements);
            let reference = run(&q, evs, Some(end_time(evs)));
            let real = plain_outputs(&q, evs);
            alone += &format!(
                "\nbranch pattern {choices:?}: {}\n  reference matches {:?}\n  real      {:?}",
                print::pattern(&q),
                reference
                    .matches
                    .iter()
                    .map(|m| (m.step / 2, &m.stages))
                    .collect::<Vec<_>>(),
                real
            );
        }
        if std::env::var_os("ALT_EXPLAIN").is_some() {
            alone += &format!("\n{}", nfa.explain());
            for (elements, _) in expand(&p.sequence, &numbers) {
                let mut q = p.clone();
                q.sequence = Sequence::new(elements);
                if let Ok(n) = Nfa::<Ev>::compile(&q, &mut EvFields) {
                    alone += &format!("\n{}", n.explain());
                }
            }
        }
        return Err(format!(
            "{alone}\nreference matches: {:?}\nreal matches:      {:?}\nreference timeouts: {:?}\nreal timeouts:      {:?}",
            want.0, got.0, want.1, got.1
        ));
    }
    Ok(())
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn alternation_agrees_with_the_merged_reference() {
    let config = ProptestConfig {
        cases: env_number("CEPHEID_PROPTEST_CASES").map_or(1024, |n| n as u32),
        rng_seed: RngSeed::Fixed(env_number("CEPHEID_PROPTEST_SEED").unwrap_or(0x00a1_7e41)),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let strategy = (
        pattern_spec(),
        events(),
        (0..8usize, 0..8usize, 0..8usize, any::<u8>()),
    );
    let mut tally = Tally::default();
    for _ in 0..config.cases {
        let mut tree = strategy.new_tree(&mut runner).expect("a case");
        let (spec, evs, split) = tree.current();
        let Some(p) = with_alternation(spec.build(), split) else {
            tally.too_short += 1;
            continue;
        };
        if let Err(why) = compare(&p, &evs, &mut tally) {
            // Shrink while it still fails.
            let mut last = (p, evs, why);
            let mut steps = 0;
            while steps < 2_000 && tree.simplify() {
                steps += 1;
                let (spec, evs, split) = tree.current();
                if let Some(p) = with_alternation(spec.build(), split) {
                    if let Err(why) = compare(&p, &evs, &mut Tally::default()) {
                        last = (p, evs, why);
                    }
                }
            }
            panic!(
                "\n{}\nevents:\n{}\n{}",
                print::pattern(&last.0),
                print::events(&last.1),
                last.2
            );
        }
    }
    eprintln!("alternation differential: {tally:?}");
    assert!(tally.compared > config.cases as usize / 4, "{tally:?}");
    assert!(
        tally.with_matches > 0 && tally.with_timeouts > 0,
        "{tally:?}"
    );
}

/// The expansion is the reference's own: a pattern without alternation
/// expands to itself.
#[test]
fn a_pattern_without_alternation_expands_to_itself() {
    let p = reference::build::pattern("a followed by (b next c)+", &[]);
    let (_, numbers) = alternations(&p);
    let expanded = expand(&p.sequence, &numbers);
    assert_eq!(expanded.len(), 1);
    assert_eq!(
        print::pattern(&Pattern {
            sequence: Sequence::new(expanded[0].0.clone()),
            ..p.clone()
        }),
        print::pattern(&p)
    );
    let _ = Quantifier::One;
}
