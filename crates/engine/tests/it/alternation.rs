//! Alternation (issue 41) in the automaton: golden cases of
//! `docs/semantics.md` ("Alternation"), built as pattern IR with native
//! conditions (a stage accepts events whose name starts with its letters).
//! The records of alternations as `cepheid run` writes them are tested by
//! `cepheid-runtime` (`tests/it/alternation_records.rs`).

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

/// The examples of `docs/language.md` §4.6 load and compile (the CLI's
/// `language_doc` test checks them with `cepheid check` too).
#[test]
fn the_language_reference_examples_compile() {
    use cepheid_engine::{Engine, Record, Rules};

    let doc = std::fs::read_to_string(cepheid_testkit::path("docs/language.md")).unwrap();
    let section = doc
        .split("### 4.6 Alternation")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("section 4.6");
    let blocks: Vec<&str> = section
        .split("```cep\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(!blocks.is_empty());
    for text in blocks {
        let rules = Rules::parse("doc.cep", text).unwrap();
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
    }
}

/// `cepheid check --flink` (the library's `flink_differences`): Flink has
/// no alternation, with the alternation's place and how to write it there.
#[test]
fn flink_has_no_alternation() {
    let loaded = cepheid_syntax::load_str(
        "t.cep",
        "pattern p {\n    within 1h\n    match x followed by (a or b)\n}\n",
    );
    let p = &loaded.patterns[0];
    let findings = cepheid_core::pattern::flink_differences(p);
    let f = findings
        .iter()
        .find(|f| f.message.contains("alternation"))
        .expect("a finding");
    assert_eq!(
        f.difference,
        cepheid_core::pattern::FlinkDifference::NoSuchConstruct
    );
    assert!(f.message.contains("FLINK-4641"), "{}", f.message);
    assert!(f.help.contains("one pattern per branch"), "{}", f.help);
    let text = &loaded.sources[0].text;
    assert_eq!(
        &text[f.span.start as usize..f.span.end as usize],
        "(a or b)"
    );
}

/// No state is left of a bypassed alternation entry: the automaton of
/// `x followed by (a or c)` is the states of its branches and no more.
#[test]
fn the_automaton_has_no_entry_state_left() {
    let p = abcd(vec![el(4), alt(vec![vec![el(0)], vec![el(2)]])]);
    let nfa =
        cepheid_automata::nfa::Nfa::<Ev>::compile(&p, &mut cepheid_core::event::NoFields).unwrap();
    let text = nfa.explain();
    assert!(!text.contains("$or$"), "{text}");
    assert!(text.contains("x --take[x]--> a"), "{text}");
    assert!(text.contains("x --take[x]--> c"), "{text}");
    // At the start of the pattern the entry is the start state.
    let p = abcd(vec![alt(vec![vec![el(0)], vec![el(2)]]), el(5)]);
    let nfa =
        cepheid_automata::nfa::Nfa::<Ev>::compile(&p, &mut cepheid_core::event::NoFields).unwrap();
    let text = nfa.explain();
    assert!(text.contains("$or$ (start)"), "{text}");
}

/// A branch that can reach its negation before taking an event would end
/// the partial matches of every branch when the negation fires (they are
/// entered in one decision): a compile error, at the alternation, until
/// branches are decided apart (found by `alternation_differential.rs`).
#[test]
fn a_negation_a_branch_reaches_before_taking_is_an_error() {
    // x followed by (a or (b? not next c next d)): built as IR, since
    // `validate` already rejects `not next` after an optional element in
    // the language; the compiler must not run it either.
    let mut p = abcd(vec![
        el(4),
        alt(vec![
            vec![el(0)],
            vec![el(1).opt(), el(2).not_next(), el(3).next()],
        ]),
    ]);
    p.sequence.elements[1].span = cepheid_core::Span::new(5, 9);
    let err = cepheid_automata::nfa::Nfa::<Ev>::compile(&p, &mut cepheid_core::event::NoFields)
        .unwrap_err();
    assert!(
        err.message()
            .contains("branch 2 of this alternation can reach its `not` element"),
        "{err:?}"
    );
    assert_eq!(err.span(), Some(cepheid_core::Span::new(5, 9)));
}
