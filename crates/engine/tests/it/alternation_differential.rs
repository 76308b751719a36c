//! Alternation against a reference independent of its automaton code
//! (issue 41): random patterns of `tests/reference/gen.rs` (every element
//! kind) turned into patterns with alternation (a run of top-level elements
//! split into two branches, the rest of the second sometimes split again into a nested
//! alternation, sometimes a window on the alternation, sometimes either
//! optional), with every skip
//! strategy (`skip to first/last` of a top-level stage: one inside a
//! branch is refused), over random streams.
//!
//! The reference never sees an alternation: the pattern is expanded into
//! its branch patterns (one per choice of branches, each alternation
//! replaced by a group of the chosen branch, with the alternation's
//! connector, window and `optional`, marked as a branch's group, which
//! leaves to a state of its own after it when it has a greedy element:
//! `reference::BRANCH_GROUP`), and they run through the transliteration of
//! Flink's NFA (`tests/reference`) as *one* NFA
//! (`reference::flink::run_patterns`): one queue of computation states of
//! every branch pattern in Flink's order, one shared buffer (its event
//! ids, which pruning compares, shared), the complete matches of all of
//! them held back and emitted by one `processMatchesAccordingToSkipStrategy`,
//! so that a match of one branch prunes the partial matches of every
//! branch and a partial match of any branch holds matches back, as
//! `docs/semantics.md` ("Alternation") defines. Its outputs are then named
//! as that section says: a match or timeout names, per alternation, the
//! branch of its own stages it took, else (a timeout) the branch whose
//! stage it waited in.
//!
//! Difference 1 of the section (one set of partial matches): before an
//! alternation, the branch patterns that differ only there hold copies of
//! one partial match. The copies share their first event, so they are
//! pruned together and hold matches back alike, as the one partial match
//! does, and a complete match that did not pass an alternation prunes
//! alike whichever copy goes first. An output that did not reach an
//! alternation (same events, same branches) counts once: at each event,
//! an output counts as many times as the one branch pattern that gives it
//! most (`merge`). (Not "the copy of the branch pattern that chose the
//! first branch there": Flink's NFA of that branch pattern may not give
//! it, `tests/alternation.rs`,
//! `a_match_that_skipped_the_alternation_is_reported_when_one_branch_pattern_gives_it`.)
//!
//! Held matches with the same first event: Flink's queue orders them by
//! its layout, which differs between the one NFA of the branch patterns
//! and the real matcher's one automaton; the section defines their order
//! for a pattern with alternation (branches, then last event, then
//! events, then stages), and under a skip strategy it decides which are
//! reported (the first may prune the others). The reference orders them
//! so by itself (`AltHooks::choose`, [`preference`]).
//!
//! The multisets of matches and timeouts emitted at each event (and at the
//! final advance of time) must equal the real matcher's, branches
//! included.
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
    validate, Contiguity, Element, ElementKind, Pattern, Quantifier, Sequence, SkipStrategy, Stage,
};
use cepheid_core::primitives::StageId;
use cepheid_engine::{Value, ValueRef};

use proptest::prelude::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};
use reference::flink::nfa::Stages;
use reference::flink::run_patterns;
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
/// alternation (`None` when it has fewer than two elements), and skip
/// strategy `skip.0` (0 no skip, 1 to next, 2 past last event, 3 to
/// first, 4 to last; 3 and 4 target the `skip.1`-th stage of the
/// top-level sequence: for them the alternation leaves out a top-level
/// stage where it can, else a stage `z` (`kind == "a"`..`"d"`) is
/// appended to the pattern for a target; a stage inside a branch or group
/// is refused by `validate`).
fn with_alternation(
    mut p: Pattern,
    split: (usize, usize, usize, u8, u8),
    skip: (u8, usize),
) -> Option<Pattern> {
    let within = p.within;
    let Pattern {
        sequence, stages, ..
    } = &mut p;
    // A pattern of one group: the alternation goes inside the group.
    if let [Element {
        kind: ElementKind::Group(inner),
        ..
    }] = sequence.elements.as_mut_slice()
    {
        if !split_into_alternation(inner, stages, within, split, None) {
            return None;
        }
    } else {
        let top: Vec<usize> = (0..sequence.elements.len())
            .filter(|i| matches!(sequence.elements[*i].kind, ElementKind::Stage(_)))
            .collect();
        let keep = (skip.0 % 5 >= 3 && !top.is_empty()).then(|| top[skip.1 % top.len()]);
        if !split_into_alternation(sequence, stages, within, split, keep) {
            return None;
        }
    }
    let mut top: Vec<StageId> = p
        .sequence
        .elements
        .iter()
        .filter_map(|e| match e.kind {
            ElementKind::Stage(s) => Some(s),
            _ => None,
        })
        .collect();
    if top.is_empty() && skip.0 % 5 >= 3 {
        let z = StageId(p.stages.len() as u16);
        let kind = reference::gen::KINDS[skip.1 % reference::gen::KINDS.len()];
        p.stages
            .push(Stage::new("z", reference::build::kind_is(kind)));
        p.sequence.elements.push(Element::stage(z));
        top.push(z);
    }
    let target = top.get(skip.1 % top.len().max(1)).copied();
    p.skip = match (skip.0 % 5, target) {
        (0, _) => SkipStrategy::NoSkip,
        (1, _) | (3, None) => SkipStrategy::ToNext,
        (2, _) | (_, None) => SkipStrategy::PastLastEvent,
        (3, Some(t)) => SkipStrategy::ToFirst(t),
        (_, Some(t)) => SkipStrategy::ToLast(t),
    };
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

/// Makes elements `start..start + len` of `seq` an alternation, out of
/// element `keep` when there are two elements on one side of it; `d`:
/// bit 0 nests an alternation in the second branch (after its first
/// element), bit 1 puts a window
/// on the alternation (of `d >> 2` without a pattern window); `optional`
/// 1 or 3 makes the alternation optional, 2 or 3 the nested one, 4 makes
/// a stage right before the alternation a greedy loop or count.
fn split_into_alternation(
    seq: &mut Sequence,
    stages: &mut Vec<Stage>,
    within: Option<i64>,
    (a, b, c, d, optional): (usize, usize, usize, u8, u8),
    keep: Option<usize>,
) -> bool {
    let n = seq.elements.len();
    if n < 2 {
        return false;
    }
    let (lo, hi) = match keep {
        Some(t) if t >= 2 => (0, t),
        Some(t) if n - t > 2 => (t + 1, n),
        _ => (0, n),
    };
    let start = lo + a % (hi - lo - 1);
    let len = 2 + b % (hi - start - 1);
    let cut = 1 + c % (len - 1);
    let mut elements = std::mem::take(&mut seq.elements);
    let suffix = elements.split_off(start + len);
    let mut middle = elements.split_off(start);
    let mut second = middle.split_off(cut);
    // A greedy loop or count right before the alternation (rare among the
    // random elements, which are not often valid there).
    if let Some(before) = elements.last_mut().filter(|_| optional == 4) {
        if matches!(before.kind, ElementKind::Stage(_)) && !before.is_negation() {
            if before.quantifier == Quantifier::One {
                before.quantifier = Quantifier::AtLeast(1);
            }
            before.greedy = true;
            before.inner = cepheid_core::pattern::InnerContiguity::Relaxed;
        }
    }
    let model = middle[0].clone();
    required_head(&mut middle);
    let second = if d & 1 == 1 && second.len() >= 2 {
        // The branch keeps its first element (a branch of one alternation
        // would have no stage of its own that each of its matches takes);
        // its rest is split in two, or, of one element, is the first
        // branch of the nested alternation and a new stage `y` the second.
        let mut head = second;
        let mut inner = head.split_off(1);
        let mut tail = if inner.len() >= 2 {
            inner.split_off(1)
        } else {
            let y = StageId(stages.len() as u16);
            let kind = reference::gen::KINDS[usize::from(d >> 5) % reference::gen::KINDS.len()];
            stages.push(Stage::new(
                format!("y{}", y.0),
                reference::build::kind_is(kind),
            ));
            vec![Element::stage(y)]
        };
        required_head(&mut head);
        required_head(&mut inner);
        required_head(&mut tail);
        let mut nested = alternation(&inner[0].clone(), vec![inner, tail]);
        nested.optional = matches!(optional, 2 | 3);
        head.push(nested);
        head
    } else {
        required_head(&mut second);
        second
    };
    let mut alt = alternation(&model, vec![middle, second]);
    alt.optional = matches!(optional, 1 | 3);
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
#[derive(Clone)]
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
                        g.span = reference::BRANCH_GROUP;
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

/// Per alternation, the branch an output of the expansion that `chose`
/// took: the branch whose own stage it took an event into, else (a
/// timeout) the branch it waited in; `None` where it did not reach the
/// alternation.
fn branch_of(
    infos: &[AltInfo],
    chose: &[Option<u32>],
    stages: &[(String, Vec<u64>)],
    waiting: Option<&String>,
) -> Vec<Option<u32>> {
    let took = |name: &str| stages.iter().any(|(s, _)| s == name);
    infos
        .iter()
        .enumerate()
        .map(|(k, info)| {
            let by_events = info
                .own
                .iter()
                .position(|own| own.iter().any(|s| took(s)))
                .map(|b| b as u32 + 1);
            let by_state = waiting.filter(|w| info.inside.contains(w)).and(chose[k]);
            by_events.or(by_state)
        })
        .collect()
}

/// The outputs of the branch patterns `(graph, event index, rendered)`,
/// merged: an output (same events, same branches) at an event counts as
/// many times as the branch pattern that gives it most does (the copies of
/// an output that did not reach an alternation are one, difference 1).
fn merge(outputs: Vec<(usize, usize, String)>) -> Outputs {
    let mut counts: BTreeMap<(usize, String), BTreeMap<usize, usize>> = BTreeMap::new();
    for (graph, step, line) in outputs {
        *counts
            .entry((step, line))
            .or_default()
            .entry(graph)
            .or_default() += 1;
    }
    let mut merged = Vec::new();
    for (out, per_graph) in counts {
        let n = per_graph.values().copied().max().unwrap_or(0);
        merged.extend(std::iter::repeat(out).take(n));
    }
    merged
}

/// The order `docs/semantics.md` ("Alternation") defines among complete
/// matches of one first event, of a pattern with alternation, as a key
/// (smallest first): the branches (per alternation in the order of the
/// text, null first), then the last event, then the events in order of
/// arrival, then the stage of each (in the pattern's order of stages).
/// Event ids are arrival numbers (`reference::gen::events`).
fn preference(
    branch: Vec<Option<u32>>,
    stages: &[(String, Vec<u64>)],
    order: &HashMap<String, usize>,
) -> (Vec<Option<u32>>, u64, Vec<u64>, Vec<usize>) {
    let mut events: Vec<(u64, usize)> = stages
        .iter()
        .flat_map(|(s, ids)| ids.iter().map(|id| (*id, order[s])))
        .collect();
    events.sort();
    let last = events.last().map_or(0, |e| e.0);
    let (ids, stages) = events.into_iter().unzip();
    (branch, last, ids, stages)
}

/// What the one NFA of all expansions asks ([`reference::flink::nfa::Hooks`]):
/// the order of held matches with one start event, which Flink's queue
/// leaves to its layout and `docs/semantics.md` defines for a pattern with
/// alternation ([`preference`]).
struct AltHooks {
    infos: Vec<AltInfo>,
    /// Per expansion, per alternation, the branch it chose.
    chose: Vec<Vec<Option<u32>>>,
    /// Each stage's place in the pattern's order of stages, by name.
    order: HashMap<String, usize>,
    /// Ties met, and those where the order is not Flink's head of the
    /// queue.
    ties: Ties,
}

type Ties = std::rc::Rc<std::cell::Cell<(usize, usize)>>;

impl reference::flink::nfa::Hooks for AltHooks {
    fn choose(&mut self, candidates: &[(usize, Stages)]) -> usize {
        let k = (0..candidates.len())
            .min_by_key(|i| {
                let (graph, stages) = &candidates[*i];
                let branch = branch_of(&self.infos, &self.chose[*graph], stages, None);
                preference(branch, stages, &self.order)
            })
            .unwrap_or(0);
        let (ties, other) = self.ties.get();
        self.ties.set((ties + 1, other + usize::from(k != 0)));
        k
    }
}

/// The reference's outputs, merged; `Err` when some expansion could not
/// be run (rejected, Flink would throw, too expensive). `ties` counts the
/// ties of held matches met.
fn reference_outputs(
    p: &Pattern,
    evs: &[RefEvent],
    ties: &Ties,
) -> Result<(Outputs, Outputs), String> {
    let (infos, numbers) = alternations(p);
    let expansions = expand(&p.sequence, &numbers);
    let chose: Vec<Vec<Option<u32>>> = expansions
        .iter()
        .map(|(_, choices)| {
            (0..infos.len())
                .map(|k| choices.iter().find(|(a, _)| *a == k).map(|(_, b)| *b))
                .collect()
        })
        .collect();
    let patterns: Vec<Pattern> = expansions
        .into_iter()
        .map(|(elements, _)| {
            let mut q = p.clone();
            q.sequence = Sequence::new(elements);
            q
        })
        .collect();
    let hooks = AltHooks {
        infos: infos.clone(),
        chose: chose.clone(),
        order: p
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect(),
        ties: ties.clone(),
    };
    let out = run_patterns(p, &patterns, evs, Some(end_time(evs)), Box::new(hooks));
    if let Some(f) = out.failure {
        return Err(format!("{f:?}"));
    }
    let named = |list: &[reference::Emitted]| {
        list.iter()
            .map(|m| {
                let branch = branch_of(&infos, &chose[m.graph], &m.stages, m.waiting.as_ref());
                (
                    m.graph,
                    m.step / 2,
                    render(&m.stages, m.expired_at, &branch),
                )
            })
            .collect::<Vec<_>>()
    };
    Ok((merge(named(&out.matches)), merge(named(&out.timeouts))))
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
    /// Patterns over a limit of the real compiler (not of the branch
    /// patterns').
    limits: usize,
    reference_failed: usize,
    with_matches: usize,
    with_timeouts: usize,
    /// Compared cases by skip strategy.
    by_skip: BTreeMap<&'static str, usize>,
    /// Held matches with one start event the reference ordered, and how
    /// often not as Flink's head of the queue.
    ties: usize,
    ties_not_flink: usize,
    invalid_kinds: BTreeMap<String, usize>,
    /// Compared cases by shape ([`shapes`]).
    shapes: BTreeMap<&'static str, usize>,
    /// Patterns the real compiler refuses as not supported, by message.
    unsupported_kinds: BTreeMap<String, usize>,
}

/// Every shape of [`shapes`]: the test fails when one is never compared.
const SHAPES: [&str; 20] = [
    "alternation",
    "optional alternation",
    "alternation with a window",
    "alternation first",
    "alternation after greedy",
    "alternation after a group ending with a negation",
    "in a branch: stage",
    "in a branch: negation",
    "in a branch: group",
    "in a branch: alternation",
    "in a branch: counted",
    "in a branch: loop",
    "in a branch: optional",
    "in a branch: greedy",
    "in a branch: until",
    "in a branch: window",
    "in a branch: next",
    "in a branch: followed by",
    "in a branch: followed by any",
    "in a branch: not followed by",
];

/// The shapes a pattern holds, for the tally: what its alternations are
/// (optional, with a window, nested, first, right after a greedy element
/// or a group that ends with a negation) and the kinds of elements inside
/// branches (the generator must reach each).
fn shapes(seq: &Sequence, in_branch: bool, out: &mut std::collections::BTreeSet<&'static str>) {
    fn ends_with_negation(e: &Element) -> bool {
        match &e.kind {
            ElementKind::Group(inner) => inner
                .elements
                .last()
                .is_some_and(|l| l.is_negation() || ends_with_negation(l)),
            _ => false,
        }
    }
    for (i, e) in seq.elements.iter().enumerate() {
        if in_branch {
            out.insert(match &e.kind {
                ElementKind::Stage(_) if e.is_negation() => "in a branch: negation",
                ElementKind::Stage(_) => "in a branch: stage",
                ElementKind::Group(_) => "in a branch: group",
                ElementKind::Alternation(_) => "in a branch: alternation",
            });
            match e.quantifier {
                Quantifier::One => {}
                Quantifier::Times { .. } => {
                    out.insert("in a branch: counted");
                }
                Quantifier::AtLeast(_) => {
                    out.insert("in a branch: loop");
                }
            }
            for (has, name) in [
                (e.optional, "in a branch: optional"),
                (e.greedy, "in a branch: greedy"),
                (e.until.is_some(), "in a branch: until"),
                (e.within.is_some(), "in a branch: window"),
                (
                    i > 0 && e.contiguity == Contiguity::Strict,
                    "in a branch: next",
                ),
                (
                    e.contiguity == Contiguity::NonDeterministic,
                    "in a branch: followed by any",
                ),
                (
                    i > 0 && e.contiguity == Contiguity::Relaxed,
                    "in a branch: followed by",
                ),
                (
                    e.contiguity == Contiguity::NotFollowedBy,
                    "in a branch: not followed by",
                ),
            ] {
                if has {
                    out.insert(name);
                }
            }
        }
        match &e.kind {
            ElementKind::Stage(_) => {}
            ElementKind::Group(inner) => shapes(inner, in_branch, out),
            ElementKind::Alternation(branches) => {
                let previous = i.checked_sub(1).map(|j| &seq.elements[j]);
                for (has, name) in [
                    (true, "alternation"),
                    (e.optional, "optional alternation"),
                    (e.within.is_some(), "alternation with a window"),
                    (i == 0, "alternation first"),
                    (
                        previous.is_some_and(|p| p.greedy),
                        "alternation after greedy",
                    ),
                    (
                        previous.is_some_and(ends_with_negation),
                        "alternation after a group ending with a negation",
                    ),
                ] {
                    if has {
                        out.insert(name);
                    }
                }
                for b in branches {
                    shapes(b, true, out);
                }
            }
        }
    }
}

fn skip_name(s: SkipStrategy) -> &'static str {
    match s {
        SkipStrategy::NoSkip => "no skip",
        SkipStrategy::ToNext => "to next",
        SkipStrategy::PastLastEvent => "past last event",
        SkipStrategy::ToFirst(_) => "to first",
        SkipStrategy::ToLast(_) => "to last",
    }
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
        // A limit of the one automaton, which holds every branch's ways at
        // once (PROCEED paths from a state before the alternation add up
        // over the branches), where each branch pattern keeps within it.
        Err(e) if e.kind() == cepheid_core::ErrorKind::Limit => {
            tally.limits += 1;
            return Ok(());
        }
        Err(e) if e.message().contains("not supported") || e.message().contains("yet:") => {
            tally.unsupported += 1;
            let kind = e
                .message()
                .split(" (")
                .next()
                .unwrap_or_default()
                .to_string();
            *tally.unsupported_kinds.entry(kind).or_default() += 1;
            return Ok(());
        }
        Err(e) => {
            return match reference_outputs(p, evs, &Default::default()) {
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
    // The reference first: when it gives up (too expensive, as some
    // nests of loops are), the real matcher is not run either.
    let ties = Ties::default();
    let want = match reference_outputs(p, evs, &ties) {
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
    if std::env::var_os("ALT_SHOW").is_some() {
        eprintln!("reference: {want:?}\nreal:      {got:?}");
    }
    tally.compared += 1;
    let mut found = std::collections::BTreeSet::new();
    shapes(&p.sequence, false, &mut found);
    for shape in found {
        *tally.shapes.entry(shape).or_default() += 1;
    }
    tally.ties += ties.get().0;
    tally.ties_not_flink += ties.get().1;
    *tally.by_skip.entry(skip_name(p.skip)).or_default() += 1;
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
        (0..8usize, 0..8usize, 0..8usize, any::<u8>(), 0..6u8),
        (0..5u8, 0..8usize),
    );
    let mut tally = Tally::default();
    for _ in 0..config.cases {
        let mut tree = strategy.new_tree(&mut runner).expect("a case");
        let (spec, evs, split, skip) = tree.current();
        let Some(p) = with_alternation(spec.build(), split, skip) else {
            tally.too_short += 1;
            continue;
        };
        if std::env::var_os("ALT_TRACE").is_some() {
            eprintln!("{}\n{}", print::pattern(&p), print::events(&evs));
        }
        if let Err(why) = compare(&p, &evs, &mut tally) {
            // Shrink while it still fails.
            let mut last = (p, evs, why);
            let mut steps = 0;
            while steps < 2_000 && tree.simplify() {
                steps += 1;
                let (spec, evs, split, skip) = tree.current();
                if let Some(p) = with_alternation(spec.build(), split, skip) {
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
    assert!(
        tally.by_skip.len() == 5 && tally.by_skip.values().all(|n| *n > 0),
        "every skip strategy is compared: {tally:?}"
    );
    for shape in SHAPES {
        assert!(
            tally.shapes.get(shape).is_some_and(|n| *n > 0),
            "no case of {shape:?} compared: {tally:?}"
        );
    }
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

/// The reference prunes and holds back across branches by itself (no
/// real matcher to follow): `(a followed by c) or (b followed by d)`.
#[test]
fn the_reference_prunes_and_holds_back_across_branches() {
    use reference::build::kind_is;
    let stages = ["a", "b", "c", "d"]
        .into_iter()
        .map(|k| Stage::new(k, kind_is(k.chars().next().unwrap())))
        .collect();
    let el = |s: u16| Element::stage(StageId(s));
    let mut p = Pattern::new(
        "p",
        stages,
        Sequence::new(vec![alternation(
            &el(0),
            vec![vec![el(0), el(2)], vec![el(1), el(3)]],
        )]),
    );
    let evs: Vec<RefEvent> = ["a", "b", "d", "c"]
        .iter()
        .enumerate()
        .map(|(i, k)| RefEvent::kv(i as u64 + 1, i as i64, k.chars().next().unwrap(), 0))
        .collect();
    let outputs = |p: &Pattern| reference_outputs(p, &evs, &Default::default()).unwrap().0;
    // No skip: `b d` at d, `a c` at c.
    assert_eq!(
        outputs(&p),
        [
            (2, "b:[2] d:[3] branch=[Some(2)]".to_string()),
            (3, "a:[1] c:[4] branch=[Some(1)]".to_string())
        ]
    );
    // Skip past last event: `b d` is held back by the partial match of
    // branch 1 that started before it, then pruned by `a c`.
    p.skip = SkipStrategy::PastLastEvent;
    assert_eq!(
        outputs(&p),
        [(3, "a:[1] c:[4] branch=[Some(1)]".to_string())]
    );
}

/// Compares one case written as the failure report prints it: the
/// pattern's text, and the events as `(ts, kind, value)` (ids from 1).
pub(crate) fn compare_case(text: &str, events: &[(i64, char, i64)]) -> Result<(), String> {
    let loaded = cepheid_syntax::load_str("case.cep", text);
    let p = loaded
        .patterns
        .first()
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    let evs: Vec<RefEvent> = events
        .iter()
        .enumerate()
        .map(|(i, (ts, k, v))| RefEvent::kv(i as u64 + 1, *ts, *k, *v))
        .collect();
    let mut tally = Tally::default();
    compare(p, &evs, &mut tally)?;
    assert_eq!(tally.compared, 1, "{tally:?}");
    Ok(())
}
