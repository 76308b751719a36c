//! Random patterns over every construct and random event sequences, for the
//! differential test. A [`PatternSpec`] is plain data (so proptest shrinks
//! it); [`PatternSpec::build`] turns it into a pattern.
//!
//! `build` repairs only what can never be valid (a sequence starting with a
//! negation, a negation on a group or with modifiers, a negation after an
//! optional element, modifiers on elements that cannot carry them, a
//! trailing `not followed by` without a window, a skip target inside a
//! group, an element window larger than the pattern's, a looping group
//! that can take nothing); each repair maps an invalid shape onto a valid
//! one, so every valid shape stays reachable. A few elements are left
//! *wild* (no repair), and an optional element after a greedy one is never
//! repaired: those patterns go to `pattern::validate`, which rejects what is
//! invalid, and the test counts them.

use cepheid_core::pattern::{
    Condition, Contiguity, Element, ElementKind, InnerContiguity, Pattern, Quantifier, Sequence,
    SkipStrategy, Stage,
};

use cepheid_core::primitives::StageId;
use proptest::prelude::*;

use super::build::{and, kind_in, kind_is, sum_lt, value_gt, value_gt_last};
use super::cond::RefEvent;

/// Event kinds the generator uses.
pub const KINDS: [char; 4] = ['a', 'b', 'c', 'd'];

/// A condition from the closed set.
#[derive(Clone, Debug)]
pub struct CondSpec {
    /// 0..=2: `kind == k`; 3: `kind in [k, k2]`; 4: `true`; 5: `value > v`;
    /// 6: `kind == k and value > last(s).value`; 7: `kind == k and
    /// sum(s.value) + value < v`.
    pub shape: u8,
    /// First kind (index into [`KINDS`]).
    pub k: usize,
    /// Second kind.
    pub k2: usize,
    /// A small constant.
    pub v: i64,
    /// Which earlier stage an iterative condition reads (modulo).
    pub stage: u16,
}

/// One element of a sequence.
#[derive(Clone, Debug)]
pub struct ElemSpec {
    /// Inner elements: empty for a stage, else a group.
    pub group: Vec<ElemSpec>,
    /// The stage condition (stages only).
    pub cond: CondSpec,
    /// 0 next, 1 followed by, 2 followed by any, 3 not next, 4 not followed by.
    pub connector: u8,
    /// 0 one, 1 `{min,min+extra}`, 2 `{min,}`.
    pub quant: u8,
    /// Least count (0 makes `{0,m}` of a counted element; loops take 1).
    pub min: u32,
    /// `max - min` for counted elements.
    pub extra: u32,
    /// `optional`.
    pub optional: bool,
    /// `greedy`.
    pub greedy: bool,
    /// 0 relaxed, 1 consecutive, 2 combinations.
    pub inner: u8,
    /// `until` condition.
    pub until: Option<CondSpec>,
    /// Element window.
    pub within: Option<i64>,
    /// Leave the modifiers as drawn (no repair), so invalid shapes reach
    /// `validate`.
    pub wild: bool,
}

/// A whole pattern.
#[derive(Clone, Debug)]
pub struct PatternSpec {
    /// The top-level sequence.
    pub elements: Vec<ElemSpec>,
    /// Pattern window.
    pub within: Option<i64>,
    /// 0 no skip, 1 to next, 2 past last, 3 to first, 4 to last.
    pub skip: u8,
    /// Target of `to first` / `to last` (modulo the top-level stages).
    pub skip_target: usize,
    /// Emit timeouts.
    pub timeouts: bool,
    /// Let the skip target be any stage (also one inside a group).
    pub wild_target: bool,
}

fn cond_spec() -> impl Strategy<Value = CondSpec> {
    (
        prop_oneof![6 => 0u8..3, 2 => Just(3u8), 1 => Just(4u8), 1 => Just(5u8), 2 => 6u8..8],
        0..4usize,
        0..4usize,
        0i64..6,
        0u16..8,
    )
        .prop_map(|(shape, k, k2, v, stage)| CondSpec {
            shape,
            k,
            k2,
            v,
            stage,
        })
}

fn leaf() -> impl Strategy<Value = ElemSpec> {
    let quant = prop_oneof![5 => Just(0u8), 2 => Just(1u8), 3 => Just(2u8)];
    let inner = prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)];
    (
        cond_spec(),
        0u8..5,
        quant,
        (0u32..4, 0u32..3),
        (prop::bool::weighted(0.25), prop::bool::weighted(0.3), inner),
        prop::option::weighted(0.25, cond_spec()),
        prop::option::weighted(0.15, 1i64..7),
        prop::bool::weighted(0.015),
    )
        .prop_map(
            |(
                cond,
                connector,
                quant,
                (min, extra),
                (optional, greedy, inner),
                until,
                within,
                wild,
            )| {
                ElemSpec {
                    group: Vec::new(),
                    cond,
                    connector,
                    quant,
                    min,
                    extra,
                    optional,
                    greedy,
                    inner,
                    until,
                    within,
                    wild,
                }
            },
        )
}

fn element() -> impl Strategy<Value = ElemSpec> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        (prop::collection::vec(inner, 1..4), leaf()).prop_map(|(group, mut el)| {
            el.group = group;
            el
        })
    })
}

/// A random pattern specification.
pub fn pattern_spec() -> impl Strategy<Value = PatternSpec> {
    (
        prop::collection::vec(element(), 1..5),
        prop::option::weighted(0.5, 1i64..9),
        prop_oneof![3 => Just(0u8), 1 => 1u8..5],
        0..8usize,
        any::<bool>(),
        prop::bool::weighted(0.03),
    )
        .prop_map(
            |(elements, within, skip, skip_target, timeouts, wild_target)| PatternSpec {
                elements,
                within,
                skip,
                skip_target,
                timeouts,
                wild_target,
            },
        )
}

/// Random events: `(kind index, value, time step)`, at most 12.
pub fn events() -> impl Strategy<Value = Vec<RefEvent>> {
    prop::collection::vec(
        (
            0..4usize,
            0i64..5,
            prop_oneof![3 => Just(0i64), 8 => 1i64..3, 1 => 3i64..8],
        ),
        0..13,
    )
    .prop_map(|raw| {
        let mut ts = 0;
        raw.iter()
            .enumerate()
            .map(|(i, (k, v, dt))| {
                ts += dt;
                RefEvent::kv(i as u64 + 1, ts, KINDS[*k], *v)
            })
            .collect()
    })
}

impl CondSpec {
    fn build(&self, own: StageId) -> Condition {
        let refd = StageId(self.stage % (own.0 + 1));
        match self.shape {
            0..=2 => kind_is(KINDS[self.k]),
            3 => kind_in(&[KINDS[self.k], KINDS[self.k2]]),
            4 => Condition::True,
            5 => value_gt(self.v.min(3)),
            6 => and(kind_is(KINDS[self.k]), value_gt_last(refd)),
            _ => and(kind_is(KINDS[self.k]), sum_lt(refd, self.v + 2)),
        }
    }
}

impl PatternSpec {
    /// Builds the pattern (repairing what can never be valid, see the
    /// module doc).
    pub fn build(&self) -> Pattern {
        let mut b = Builder { stages: Vec::new() };
        let within = self.within;
        let mut sequence = b.sequence(&self.elements);
        if let Some(w) = within {
            clamp_windows(&mut sequence, &self.elements, w);
        }
        // A trailing `not followed by` needs a window (its own will do).
        if within.is_none() {
            if let Some(last) = sequence.elements.last_mut() {
                let wild = self.elements.last().is_some_and(|e| e.wild);
                if last.contiguity == Contiguity::NotFollowedBy && last.within.is_none() && !wild {
                    last.contiguity = Contiguity::Relaxed;
                }
            }
        }
        let top: Vec<StageId> = if self.wild_target {
            (0..b.stages.len() as u16).map(StageId).collect()
        } else {
            sequence
                .elements
                .iter()
                .filter_map(|e| match e.kind {
                    ElementKind::Stage(s) => Some(s),
                    ElementKind::Group(_) | ElementKind::Alternation(_) => None,
                })
                .collect()
        };
        let target = top.get(self.skip_target % top.len().max(1)).copied();
        let skip = match (self.skip, target) {
            (1, _) => SkipStrategy::ToNext,
            (2, _) => SkipStrategy::PastLastEvent,
            (3, Some(t)) => SkipStrategy::ToFirst(t),
            (4, Some(t)) => SkipStrategy::ToLast(t),
            _ => SkipStrategy::NoSkip,
        };
        let mut pattern = Pattern::new("p", b.stages, sequence);
        pattern.within = within;
        pattern.skip = skip;
        pattern.emit_timeouts = self.timeouts;
        pattern
    }
}

/// An element window larger than the pattern's is clamped to it (unless
/// the element is wild).
fn clamp_windows(seq: &mut Sequence, specs: &[ElemSpec], within: i64) {
    for (el, spec) in seq.elements.iter_mut().zip(specs) {
        if !spec.wild {
            el.within = el.within.map(|w| w.min(within));
        }
        if let ElementKind::Group(inner) = &mut el.kind {
            clamp_windows(inner, &spec.group, within);
        }
    }
}

/// A looping group needs an element that is not optional: the first
/// optional one that is no negation becomes required.
fn require_one(seq: &mut Sequence) {
    if let Some(el) = seq.elements.iter_mut().find(|e| !e.is_negation()) {
        make_required(el);
        if let ElementKind::Group(inner) = &mut el.kind {
            if inner.can_take_nothing() {
                require_one(inner);
            }
        }
    }
}

struct Builder {
    stages: Vec<Stage>,
}

impl Builder {
    fn sequence(&mut self, specs: &[ElemSpec]) -> Sequence {
        let mut elements: Vec<Element> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let mut el = self.element(spec);
            if i == 0 {
                // The first element's connector means nothing, except that
                // a negation cannot start a sequence.
                el.contiguity = Contiguity::Relaxed;
            }
            if !spec.wild && el.is_negation() {
                if matches!(el.kind, ElementKind::Group(_)) {
                    el.contiguity = Contiguity::Relaxed;
                } else {
                    strip_for_negation(&mut el);
                    if let Some(prev) = elements.last_mut() {
                        make_required(prev);
                    }
                }
            }
            elements.push(el);
        }
        Sequence::new(elements)
    }

    fn element(&mut self, spec: &ElemSpec) -> Element {
        let contiguity = match spec.connector {
            0 => Contiguity::Strict,
            1 => Contiguity::Relaxed,
            2 => Contiguity::NonDeterministic,
            3 => Contiguity::NotNext,
            _ => Contiguity::NotFollowedBy,
        };
        let quantifier = match spec.quant {
            0 => Quantifier::One,
            1 => Quantifier::Times {
                min: spec.min,
                max: (spec.min + spec.extra).max(1),
            },
            _ => Quantifier::AtLeast(spec.min.max(1)),
        };
        let kind = if spec.group.is_empty() {
            let id = StageId(self.stages.len() as u16);
            self.stages
                .push(Stage::new(format!("s{}", id.0), spec.cond.build(id)));
            ElementKind::Stage(id)
        } else {
            let mut inner = self.sequence(&spec.group);
            if !spec.wild && spec.quant == 2 && inner.can_take_nothing() {
                require_one(&mut inner);
            }
            ElementKind::Group(inner)
        };
        let is_stage = matches!(kind, ElementKind::Stage(_));
        let repeating = quantifier != Quantifier::One;
        let looping = matches!(quantifier, Quantifier::AtLeast(_));
        let greedy = spec.greedy && (spec.wild || (repeating && is_stage));
        let inner = match spec.inner {
            _ if !(spec.wild || repeating) => InnerContiguity::Relaxed,
            1 => InnerContiguity::Consecutive,
            2 if spec.wild || !greedy => InnerContiguity::Combinations,
            _ => InnerContiguity::Relaxed,
        };
        let own = StageId(self.stages.len().saturating_sub(1) as u16);
        let mut el = match kind {
            ElementKind::Stage(id) => Element::stage(id),
            ElementKind::Group(seq) => Element::group(seq),
            ElementKind::Alternation(_) => unreachable!("never built here"),
        };
        el.contiguity = contiguity;
        el.quantifier = quantifier;
        el.optional = spec.optional;
        el.greedy = greedy;
        el.inner = inner;
        el.until = spec
            .until
            .as_ref()
            .filter(|_| spec.wild || looping)
            .map(|u| u.build(own));
        el.within = spec.within;
        el
    }
}

/// Neither `optional` nor `{0,m}`.
fn make_required(el: &mut Element) {
    el.optional = false;
    if let Quantifier::Times { min: 0, max } = el.quantifier {
        el.quantifier = Quantifier::Times { min: 1, max };
    }
}

/// A negation takes no quantifier or modifier but a window.
fn strip_for_negation(el: &mut Element) {
    el.quantifier = Quantifier::One;
    el.optional = false;
    el.greedy = false;
    el.inner = InnerContiguity::Relaxed;
    el.until = None;
}
