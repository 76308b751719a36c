//! Where a pattern means something else in cepheid than in Apache Flink 2.3
//! (`cepheid check --flink`).
//!
//! [`flink_differences`] walks the pattern IR and lists, with the span of the
//! text concerned, every place where the deliberate deviations of
//! `docs/semantics.md` (D1-D4) change what the pattern matches, and every
//! place whose shape lets a limit of cepheid cut work that Flink would do
//! (partial matches that fork on every event whatever the window:
//! `followed by any`, `combinations`; `--max-runs-per-key`,
//! `--max-live-runs`). A looping element without any window is not listed:
//! loading the pattern already warns there, naming the same limits.
//! Nothing is printed: the CLI renders each finding as a warning. An empty
//! list means the pattern gives Flink's results (below the limits).
//!
//! Patterns Flink fails on at run time (D5) are rejected by
//! [`crate::pattern::validate`] and the NFA compiler, whose messages say
//! when Flink fails; they never reach this function as valid patterns.
//! The limit on waiting events (`--max-waiting`) depends on the input alone
//! (how many events wait for the watermark), not on the pattern, so it is
//! never a finding here.

use crate::pattern::ir::{
    Contiguity, Element, ElementKind, InnerContiguity, Pattern, Quantifier, Sequence, SkipStrategy,
};
use crate::primitives::{DurationMs, Span};

/// Which difference from Flink 2.3 a [`FlinkFinding`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlinkDifference {
    /// D1: a `not followed by` that ends a group is enforced (Flink drops
    /// it, FLINK-15980).
    D1,
    /// D2: an element window on a group applies to its elements (Flink
    /// ignores it).
    D2,
    /// D3: an element window on a quantified element applies (Flink
    /// ignores it).
    D3,
    /// D4: when one watermark passes several deadlines, cepheid handles them
    /// in time order (Flink all at once).
    D4,
    /// A limit of cepheid can drop partial matches that Flink keeps.
    Limit,
    /// A construct Flink CEP has no equivalent of: reference lists, rolling
    /// indicators, writes to lists, rule attributes (Flink users build them
    /// by hand with broadcast and keyed state).
    NoSuchConstruct,
}

impl FlinkDifference {
    /// `D1`..`D4`, or `limit`.
    pub fn label(self) -> &'static str {
        match self {
            FlinkDifference::D1 => "D1",
            FlinkDifference::D2 => "D2",
            FlinkDifference::D3 => "D3",
            FlinkDifference::D4 => "D4",
            FlinkDifference::Limit => "limit",
            FlinkDifference::NoSuchConstruct => "no such construct",
        }
    }
}

/// One place where the pattern's results can differ from Flink 2.3's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlinkFinding {
    /// Which deviation or limit.
    pub difference: FlinkDifference,
    /// The text concerned (empty for the builder API).
    pub span: Span,
    /// What cepheid does here and what Flink 2.3 would do instead.
    pub message: String,
    /// How to get Flink's behaviour (or lift the limit).
    pub help: String,
    /// For [`FlinkDifference::Limit`]: the settings of `cepheid run` that
    /// lift it.
    pub settings: Vec<&'static str>,
}

impl FlinkFinding {
    fn new(difference: FlinkDifference, span: Span, message: String, help: String) -> Self {
        FlinkFinding {
            difference,
            span,
            message,
            help,
            settings: Vec::new(),
        }
    }
}

/// Every place where `pattern` means something else in cepheid than in
/// Apache Flink 2.3, in the order of the text (see the module docs).
/// `pattern` should be valid ([`crate::pattern::validate`] gives nothing).
pub fn flink_differences(pattern: &Pattern) -> Vec<FlinkFinding> {
    let mut w = Walk {
        pattern,
        out: Vec::new(),
        element_windows: false,
    };
    w.sequence(&pattern.sequence, 0, true, None);
    w.d4();
    w.extensions();
    w.out
        .sort_by_key(|f| (f.span.start, f.span.end, f.difference.label()));
    w.out
}

struct Walk<'p> {
    pattern: &'p Pattern,
    out: Vec<FlinkFinding>,
    /// Does some take state get an element window (its own, or a group's)?
    element_windows: bool,
}

impl<'p> Walk<'p> {
    /// Lists, indicators, writes and attributes: constructs Flink CEP has
    /// none of.
    fn extensions(&mut self) {
        let p = self.pattern;
        let help = "Flink CEP has no reference lists or rolling indicators: keep them in \
            broadcast state (lists) or keyed state (indicators) of a function before the \
            CEP operator and write their values into the events"
            .to_string();
        for stage in &p.stages {
            if let crate::pattern::Condition::Expr(e) = &stage.condition {
                if e.reads_lookup() {
                    self.out.push(FlinkFinding::new(
                        FlinkDifference::NoSuchConstruct,
                        stage.span,
                        format!(
                            "the condition of `{}` reads a reference list or an indicator, which Flink CEP has no construct for",
                            stage.name
                        ),
                        help.clone(),
                    ));
                }
            }
        }
        for item in &p.select {
            if item.expr.reads_lookup() {
                self.out.push(FlinkFinding::new(
                    FlinkDifference::NoSuchConstruct,
                    item.span,
                    format!(
                        "`select` entry `{}` reads a reference list or an indicator, which Flink CEP has no construct for",
                        item.name
                    ),
                    help.clone(),
                ));
            }
        }
        for write in &p.writes {
            self.out.push(FlinkFinding::new(
                FlinkDifference::NoSuchConstruct,
                write.span,
                format!(
                    "a match writes to list `{}`; Flink CEP has no construct for a rule that changes state other rules read",
                    write.list.name
                ),
                "in Flink, send the match to a broadcast stream that the functions holding the list read".to_string(),
            ));
        }
        if !p.attributes.is_empty() {
            self.out.push(FlinkFinding::new(
                FlinkDifference::NoSuchConstruct,
                p.span,
                "the pattern's rule attributes (`score`, `level`, `action`, `tags`) have no equivalent in Flink CEP".to_string(),
                "in Flink, add them in the `PatternProcessFunction` that emits the match".to_string(),
            ));
        }
    }

    fn name(&self, e: &Element) -> String {
        match &e.kind {
            ElementKind::Stage(id) => self
                .pattern
                .stages
                .get(id.index())
                .map_or_else(|| "?".to_string(), |s| s.name.clone()),
            ElementKind::Group(_) => "the group".to_string(),
            ElementKind::Alternation(_) => "the alternation".to_string(),
        }
    }

    /// `depth`: 0 for the pattern's own sequence. `at_end`: does the end of
    /// `seq` complete the match (nothing follows it, and no enclosing group
    /// repeats)? `window`: the element window of the enclosing groups.
    fn sequence(
        &mut self,
        seq: &'p Sequence,
        depth: usize,
        at_end: bool,
        window: Option<DurationMs>,
    ) {
        let last = seq.elements.len().saturating_sub(1);
        if depth > 0 {
            self.group_trailing_negations(seq, at_end);
        }
        for (i, e) in seq.elements.iter().enumerate() {
            let negation = e.is_negation();
            // A `not followed by` in the middle makes no state: its window
            // has no effect (as in Flink); at the end it makes the pending
            // state, which gets it.
            let own = e.within.filter(|_| !negation || (depth == 0 && i == last));
            let inner = match (own, window) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if inner.is_some() && !matches!(e.kind, ElementKind::Group(_)) {
                self.element_windows = true;
            }
            if e.contiguity == Contiguity::NonDeterministic {
                let what = match e.kind {
                    ElementKind::Stage(_) => format!("that matches `{}`", self.name(e)),
                    ElementKind::Group(_) => "that can start the group".to_string(),
                    ElementKind::Alternation(_) => {
                        "that can start a branch of the alternation".to_string()
                    }
                };
                self.fork(
                    e,
                    format!(
                        "`followed by any` lets every event {what} start another partial \
                         match beside the ones that skip it"
                    ),
                );
            }
            match &e.kind {
                ElementKind::Stage(_) => {
                    if let (Some(w), true) = (e.within, e.is_repeating()) {
                        self.d3(e, w);
                    }
                    if e.inner == InnerContiguity::Combinations {
                        self.fork(
                            e,
                            format!(
                                "with `combinations`, every subset of the events `{}` can \
                                 take is a partial match",
                                self.name(e)
                            ),
                        );
                    }
                }
                ElementKind::Group(inner_seq) => {
                    if let Some(w) = e.within {
                        self.d2(e, w);
                    }
                    // A repeated group's iterations lead to its next
                    // iteration, not to the end.
                    let end = at_end && i == last && e.quantifier == Quantifier::One;
                    self.sequence(inner_seq, depth + 1, end, inner);
                }
                ElementKind::Alternation(branches) => {
                    self.alternation(e, branches.len());
                    let end = at_end && i == last && e.quantifier == Quantifier::One;
                    for branch in branches {
                        self.sequence(branch, depth + 1, end, inner);
                    }
                }
            }
        }
    }

    /// An alternation: Flink CEP has none (FLINK-4641 was abandoned, and
    /// Flink SQL's `MATCH_RECOGNIZE` rejects `|`).
    fn alternation(&mut self, e: &Element, branches: usize) {
        self.out.push(FlinkFinding::new(
            FlinkDifference::NoSuchConstruct,
            e.span,
            format!(
                "an alternation of {branches} branches (`or` in `match`); Flink CEP has no \
                 alternation (FLINK-4641), and Flink SQL's MATCH_RECOGNIZE rejects `|`"
            ),
            "in Flink, write one pattern per branch (each with the elements before and after \
             the alternation), apply each to the keyed stream, and union their outputs; the \
             skip strategy then applies to each pattern alone, and an event both patterns use \
             is reported twice"
                .to_string(),
        ));
    }

    /// D1: the `not followed by` elements that end a group (the last one
    /// and the negations right before it).
    fn group_trailing_negations(&mut self, seq: &'p Sequence, at_end: bool) {
        if seq.elements.len() < 2 || at_end {
            // At the end of the pattern the group's last take completes
            // the match: nothing is enforced after it, as in Flink.
            return;
        }
        for e in seq.elements[1..].iter().rev() {
            if e.contiguity != Contiguity::NotFollowedBy {
                break;
            }
            let name = self.name(e);
            self.out.push(FlinkFinding::new(
                FlinkDifference::D1,
                e.span,
                format!(
                    "this `not followed by` ends a group, so cepheid enforces it: no event \
                     satisfying `{name}` may come between the group's last event and the next \
                     element's first (D1); Flink 2.3 ignores it (FLINK-15980) and also finds \
                     the matches with such an event in between"
                ),
                format!(
                    "to get Flink's matches, remove `not followed by {name}`; to keep it in \
                     both, move it out of the group, before the element that follows"
                ),
            ));
        }
    }

    fn d2(&mut self, e: &Element, w: DurationMs) {
        self.out.push(FlinkFinding::new(
            FlinkDifference::D2,
            e.span,
            format!(
                "a window on a group applies to every event its elements take: each comes \
                 within {} of the event before it (D2); Flink 2.3 ignores a window on a group, \
                 so it also finds the matches with longer gaps and no timeouts for them",
                crate::pattern::show_ms(w)
            ),
            "to get Flink's matches, remove the group's `within`".to_string(),
        ));
    }

    fn d3(&mut self, e: &Element, w: DurationMs) {
        let name = self.name(e);
        self.out.push(FlinkFinding::new(
            FlinkDifference::D3,
            e.span,
            format!(
                "a window on a quantified element applies: every event `{name}` takes comes \
                 within {} of the event before it (D3); Flink 2.3 ignores the window of an \
                 element with a quantifier, so it also finds the matches with longer gaps and \
                 no timeouts for them",
                crate::pattern::show_ms(w)
            ),
            format!("to get Flink's matches, remove `within` after `{name}`"),
        ));
    }

    /// A place where partial matches fork, so that the limits on partial
    /// matches can be reached where Flink keeps them all.
    fn fork(&mut self, e: &Element, why: String) {
        let mut f = FlinkFinding::new(
            FlinkDifference::Limit,
            e.span,
            format!(
                "partial matches can pile up here: {why}. Past `--max-runs-per-key` partial \
                 matches in one key (or `--max-live-runs` over all keys) cepheid drops the \
                 oldest and says so; Flink keeps them all"
            ),
            "raise `--max-runs-per-key` (and `--max-live-runs`) on `cepheid run`, or \
             `Engine::max_runs_per_key` / `Engine::max_live_runs` in the library"
                .to_string(),
        );
        f.settings = vec!["--max-runs-per-key", "--max-live-runs"];
        self.out.push(f);
    }

    /// D4, once per pattern, at the pattern: only with timeouts, and only
    /// where one advance of time over several deadlines can report
    /// something else than Flink's `advanceTime`.
    fn d4(&mut self) {
        let p = self.pattern;
        if !p.emit_timeouts {
            return;
        }
        let pending_end = p
            .sequence
            .elements
            .last()
            .is_some_and(|e| e.contiguity == Contiguity::NotFollowedBy);
        let windows = p.within.is_some() || self.element_windows || pending_end;
        let mut why = Vec::new();
        if p.skip != SkipStrategy::NoSkip && windows {
            why.push(
                "under the skip strategy, a match that a deadline lets out (a final `not \
                 followed by` whose window closes, or a complete match held back until an \
                 earlier partial match expires) prunes the partial matches it overlaps \
                 before their own later deadlines; Flink, advanced past both at once, \
                 expires those first and reports their timeouts too",
            );
        }
        if p.within.is_some() && self.element_windows {
            why.push(
                "a partial match whose pattern window closes before its element window \
                 times out at the first deadline; Flink, advanced past both at once, \
                 reports the element window's",
            );
        }
        if why.is_empty() {
            return;
        }
        self.out.push(FlinkFinding::new(
            FlinkDifference::D4,
            p.span,
            format!(
                "when one watermark passes several deadlines of this pattern, cepheid \
                 handles them one by one in time order (D4): {}",
                why.join("; ")
            ),
            "results then do not depend on how often watermarks arrive; Flink's equal \
             them when its time advances one millisecond at a time"
                .to_string(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::ir::Stage;
    use crate::pattern::Condition;
    use crate::primitives::StageId;

    fn pattern(elements: Vec<Element>, stages: usize) -> Pattern {
        let stages = (0..stages)
            .map(|i| Stage::new(format!("s{i}"), Condition::True))
            .collect();
        Pattern::new("p", stages, Sequence::new(elements))
    }

    fn stage(i: u16, contiguity: Contiguity) -> Element {
        let mut e = Element::stage(StageId(i));
        e.contiguity = contiguity;
        e
    }

    fn classes(p: &Pattern) -> Vec<&'static str> {
        flink_differences(p)
            .iter()
            .map(|f| f.difference.label())
            .collect()
    }

    #[test]
    fn a_plain_sequence_means_the_same() {
        let p = pattern(
            vec![
                stage(0, Contiguity::Relaxed),
                stage(1, Contiguity::Strict),
                stage(2, Contiguity::NotFollowedBy),
                stage(3, Contiguity::Relaxed),
            ],
            4,
        );
        assert_eq!(classes(&p), Vec::<&str>::new());
    }

    #[test]
    fn group_ending_negation_is_d1_unless_at_the_end() {
        let group = Element::group(Sequence::new(vec![
            stage(1, Contiguity::Relaxed),
            stage(2, Contiguity::NotFollowedBy),
        ]));
        let p = pattern(
            vec![
                stage(0, Contiguity::Relaxed),
                group.clone(),
                stage(3, Contiguity::Relaxed),
            ],
            4,
        );
        assert_eq!(classes(&p), vec!["D1"]);
        let q = pattern(vec![stage(0, Contiguity::Relaxed), group], 3);
        assert_eq!(classes(&q), Vec::<&str>::new());
    }

    #[test]
    fn windows_on_groups_and_quantified_elements() {
        let mut group = Element::group(Sequence::new(vec![stage(1, Contiguity::Relaxed)]));
        group.within = Some(5);
        let mut looping = stage(2, Contiguity::Relaxed);
        looping.quantifier = Quantifier::Times { min: 2, max: 2 };
        looping.within = Some(3);
        let mut one = stage(3, Contiguity::Relaxed);
        one.within = Some(3);
        let p = pattern(vec![stage(0, Contiguity::Relaxed), group, looping, one], 4);
        assert_eq!(classes(&p), vec!["D2", "D3"]);
    }

    #[test]
    fn forking_shapes_can_reach_the_limits() {
        let mut plus = stage(1, Contiguity::Relaxed);
        plus.quantifier = Quantifier::AtLeast(1);
        let mut p = pattern(
            vec![
                stage(0, Contiguity::Relaxed),
                plus,
                stage(2, Contiguity::NonDeterministic),
            ],
            3,
        );
        // `s1+` without a window is the load's own warning (no `within`),
        // which names the limits; `followed by any` and `combinations` fork
        // within any window.
        let mut combinations = stage(3, Contiguity::Relaxed);
        combinations.quantifier = Quantifier::Times { min: 1, max: 3 };
        combinations.inner = InnerContiguity::Combinations;
        p.sequence.elements.push(combinations);
        p.stages.push(Stage::new("s3", Condition::True));
        p.within = Some(1000);
        let found = flink_differences(&p);
        assert_eq!(found.len(), 2);

        assert!(found.iter().all(|f| f.difference == FlinkDifference::Limit
            && f.settings == ["--max-runs-per-key", "--max-live-runs"]));
    }

    #[test]
    fn d4_needs_timeouts_and_several_deadlines() {
        let mut s1 = stage(1, Contiguity::Relaxed);
        s1.within = Some(3);
        let mut p = pattern(vec![stage(0, Contiguity::Relaxed), s1], 2);
        p.within = Some(10);
        assert_eq!(classes(&p), Vec::<&str>::new());
        p.emit_timeouts = true;
        assert_eq!(classes(&p), vec!["D4"]);
        let mut q = pattern(
            vec![
                stage(0, Contiguity::Relaxed),
                stage(1, Contiguity::NotFollowedBy),
            ],
            2,
        );
        q.within = Some(10);
        q.emit_timeouts = true;
        assert_eq!(classes(&q), Vec::<&str>::new());
        q.skip = SkipStrategy::PastLastEvent;
        assert_eq!(classes(&q), vec!["D4"]);
        // A held match let out when an earlier partial match expires
        // prunes too (oracle seed 51, `(s1{2} consecutive)? next s2`).
        let mut r = pattern(
            vec![stage(0, Contiguity::Relaxed), stage(1, Contiguity::Strict)],
            2,
        );
        r.emit_timeouts = true;
        r.skip = SkipStrategy::PastLastEvent;
        assert_eq!(classes(&r), Vec::<&str>::new(), "no window, no deadline");
        r.within = Some(10);
        assert_eq!(classes(&r), vec!["D4"]);
    }
}
