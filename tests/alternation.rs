//! Alternation (issue 41) in the automaton: golden cases of
//! `docs/semantics.md` ("Alternation"), built as pattern IR with native
//! conditions (a stage accepts events whose name starts with its letters).

use crate::matcher_support::*;

use cepheid_core::pattern::{Element, ElementKind, Pattern, Sequence, SkipStrategy};
use cepheid_core::primitives::StageId;

/// An alternation of these branches, relaxed to its predecessor.
pub fn alt(branches: Vec<Vec<Element>>) -> Element {
    Element {
        kind: ElementKind::Alternation(branches.into_iter().map(Sequence::new).collect()),
        ..Element::stage(StageId(0))
    }
}

fn abcd(elements: Vec<Element>) -> Pattern {
    pattern(
        vec![
            ("a", letters("a")),
            ("b", letters("b")),
            ("c", letters("c")),
            ("d", letters("d")),
            ("x", letters("x")),
            ("y", letters("y")),
        ],
        elements,
    )
}

#[test]
fn every_branch_reports_its_matches() {
    // (a followed by b) or (c followed by d)
    let p = abcd(vec![alt(vec![vec![el(0), el(1)], vec![el(2), el(3)]])]);
    assert_eq!(
        run(&p, "a1 c1 b1 d1 a2 b2"),
        ["a:a1|b:b1", "c:c1|d:d1", "a:a2|b:b2"]
    );
}

#[test]
fn an_alternation_in_the_middle_forks_the_partial_match() {
    // x followed by (a or c next d) followed by y
    let p = abcd(vec![
        el(4),
        alt(vec![vec![el(0)], vec![el(2), el(3).next()]]),
        el(5),
    ]);
    assert_eq!(
        sorted(run(&p, "x1 c1 d1 a1 y1")),
        ["a:a1|x:x1|y:y1", "c:c1|d:d1|x:x1|y:y1"]
    );
    // The `next` inside the second branch breaks on `b1`; the first
    // branch goes on.
    assert_eq!(run(&p, "x1 c1 b1 d1 a1 y1"), ["a:a1|x:x1|y:y1"]);
}

#[test]
fn skip_past_last_event_applies_across_branches() {
    // (a followed by b) or (a followed by c), skip past last event: the
    // first match (branch 2, ends at c1) prunes the branch-1 run that
    // started at a1 too.
    let mut p = abcd(vec![alt(vec![vec![el(0), el(1)], vec![el(0), el(2)]])]);
    assert_eq!(run(&p, "a1 c1 b1"), ["a:a1|c:c1", "a:a1|b:b1"]);
    p.skip = SkipStrategy::PastLastEvent;
    assert_eq!(run(&p, "a1 c1 b1"), ["a:a1|c:c1"]);
}

#[test]
fn a_partial_match_times_out_once_per_branch_it_waits_in() {
    // x followed by (a or c), within 10, timeouts: after x1 the partial
    // match waits in both branches, as the two patterns would.
    let mut p = abcd(vec![el(4), alt(vec![vec![el(0)], vec![el(2)]])]);
    p.within = Some(10);
    p.emit_timeouts = true;
    assert_eq!(
        run_at(&p, &[(1, "x1")], Some(100)),
        expect(&["timeout@11 x:x1", "timeout@11 x:x1"])
    );
}
