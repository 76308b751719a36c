//! Alternation (`or` in `match`, issue 41): parsing, printing, lowering
//! to the IR and back, and the errors with their places.

use crate::ast::ElementKind;
use crate::pattern::{ElementKind as IrKind, Pattern};
use crate::{load_str, parse, pattern_source, print_file};

fn lowered(src: &str) -> Pattern {
    let loaded = load_str("t.cep", src);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(&loaded.sources))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    loaded.patterns.into_iter().next().expect("a pattern")
}

/// The rendered errors (`path:line:column: message` and the underlined
/// text) of loading `src`.
fn rendered_errors(src: &str) -> Vec<String> {
    let loaded = load_str("t.cep", src);
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(&loaded.sources))
        .collect()
}

#[test]
fn top_level_alternation_of_sequences() {
    let f = parse(
        "pattern p { within 1h match (reset followed by withdrawal) or (new_device next cashout) }",
    )
    .unwrap();
    let seq = &f.patterns[0].sequence;
    assert_eq!(seq.elements.len(), 1);
    let ElementKind::Alternation(alts) = &seq.elements[0].kind else {
        panic!("not an alternation: {seq:?}");
    };
    assert_eq!(alts.len(), 2);
    assert!(alts.iter().all(|a| a.connector.is_none()));
    assert!(matches!(&alts[0].kind, ElementKind::Group(g) if g.elements.len() == 2));
}

#[test]
fn alternation_inside_a_group_with_quantified_and_windowed_branches() {
    let p = lowered(
        "pattern p { within 1h match x followed by (a or b{2,} within 5m or (c next d)) \
         followed by y }",
    );
    let e = &p.sequence.elements[1];
    let IrKind::Alternation(branches) = &e.kind else {
        panic!("{e:?}");
    };
    assert_eq!(branches.len(), 3);
    // A bare group is only the branch's parentheses: its sequence is the branch.
    assert_eq!(branches[2].elements.len(), 2);
    assert_eq!(branches[1].elements[0].within, Some(300_000));
    assert!(p.has_alternation());
    assert_eq!(e.contiguity, crate::pattern::Contiguity::Relaxed);
}

#[test]
fn printing_round_trips_the_tree() {
    for src in [
        "pattern p {\n    within 1h\n    match (a followed by b) or (c next d+)\n}\n",
        "pattern p {\n    within 1h\n    match x followed by (a or b{2,} within 5m) next y\n}\n",
        "pattern p {\n    within 1h\n    match a or (b or c) or d? followed by e\n}\n",
    ] {
        let f = match parse(src) {
            Ok(f) => f,
            Err(d) => {
                // the third one is an error: `or` then a connector
                assert!(src.contains("d?"), "{}", d[0].message);
                continue;
            }
        };
        let printed = print_file(&f);
        let again = parse(&printed).unwrap();
        assert_eq!(f.without_spans(), again.without_spans(), "{printed}");
    }
}

#[test]
fn the_ir_prints_back_to_source_that_lowers_to_it() {
    for src in [
        "pattern p { within 1h match (reset followed by withdrawal) or (new_device next withdrawal) where withdrawal: amount > 100 }",
        "pattern p { within 1h match x followed by (a or (b next c) or d{2}) within 10m followed by y }",
        "pattern p { within 1h match a or b }",
    ] {
        let p = lowered(src);
        let text = pattern_source(&p).expect("printable");
        let again = lowered(&text);
        assert_eq!(shape(&again, &again.sequence), shape(&p, &p.sequence), "{text}");
        assert_eq!(pattern_source(&again).unwrap(), text);
    }
}

/// The sequence's structure without spans: stage names, groups,
/// alternations, connectors, quantifiers, windows.
fn shape(p: &Pattern, seq: &crate::pattern::Sequence) -> String {
    let mut out = String::new();
    for e in &seq.elements {
        out.push_str(&format!(
            " {:?}/{:?}/{}/{:?}:",
            e.contiguity, e.quantifier, e.optional, e.within
        ));
        match &e.kind {
            IrKind::Stage(s) => out.push_str(&p.stage(*s).name),
            IrKind::Group(g) => out.push_str(&format!("({})", shape(p, g))),
            IrKind::Alternation(bs) => {
                let parts: Vec<String> = bs.iter().map(|b| shape(p, b)).collect();
                out.push_str(&format!("[{}]", parts.join(" | ")));
            }
        }
    }
    out
}

#[test]
fn a_stage_may_appear_once_per_branch() {
    let p = lowered(
        "pattern p { within 1h match (reset followed by withdrawal) or (new_device followed by withdrawal) \
         where withdrawal: type == \"withdrawal\" }",
    );
    // One stage, one condition, shared by both branches.
    assert_eq!(
        p.stages.iter().filter(|s| s.name == "withdrawal").count(),
        1
    );
    let errors = rendered_errors(
        "pattern p { within 1h match (a followed by w followed by w) or (b followed by w) }",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("stage `w` is used more than once in the sequence"),
        "{}",
        errors[0]
    );
    // Outside the alternation and inside it: the same stage twice.
    let errors = rendered_errors("pattern p { within 1h match w followed by (a or w) }");
    assert!(
        errors.iter().any(|e| e.contains("stage `w` appears twice")),
        "{errors:?}"
    );
}

#[test]
fn mixing_or_with_connectors_on_one_level_asks_for_parentheses() {
    let errors = rendered_errors("pattern p {\n    match a followed by b or c\n}\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("t.cep:2:27: "), "{}", errors[0]);
    assert!(errors[0].contains("`or` and connectors cannot be mixed on one level"));
    assert!(errors[0].contains("^^"), "underlined: {}", errors[0]);
    let errors = rendered_errors("pattern p {\n    match a or b followed by c\n}\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("t.cep:2:18: "), "{}", errors[0]);
    assert!(errors[0]
        .contains("`followed by` after an alternative: `or` and connectors cannot be mixed"));
    assert!(errors[0].contains("^^^^^^^^^^^"), "{}", errors[0]);
}

#[test]
fn an_or_without_an_alternative_is_a_syntax_error() {
    let errors = rendered_errors("pattern p {\n    match a or\n}\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("t.cep:3:1: "), "{}", errors[0]);
    assert!(errors[0].contains("a stage name or `(`"), "{}", errors[0]);
}

#[test]
fn a_branch_that_can_take_nothing_is_an_error() {
    let errors =
        rendered_errors("pattern p {\n    within 1h\n    match x followed by (a? or b)\n}\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("t.cep:3:26: "), "{}", errors[0]);
    assert!(errors[0].contains("branch 1 of the alternation can take no event"));
}

/// A `not followed by` that ends a branch at the end of the pattern ends
/// that branch's pattern: its window is checked against the pattern's, as
/// at the end of any pattern (found by the alternation property test with
/// `CEPHEID_PROPTEST_SEED=356`: the branch pattern was rejected, the
/// pattern accepted).
#[test]
fn a_negation_that_ends_a_branch_at_the_end_has_its_window_checked() {
    let errors = rendered_errors(
        "pattern p {\n    within 1m\n    match (a not followed by b within 5m) or c\n}\n",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("t.cep:3:"), "{}", errors[0]);
    assert!(
        errors[0].contains("this element's window (5m) is larger than the pattern's `within` (1m)"),
        "{}",
        errors[0]
    );
    // Not at the end (followed by `d`), it makes no state: not checked.
    let errors = rendered_errors(
        "pattern p {\n    within 1m\n    match ((a not followed by b within 5m) or c) \
         followed by d\n}\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn not_and_greedy_cannot_apply_to_an_alternation() {
    let errors =
        rendered_errors("pattern p { within 1h match x not followed by (a or b) followed by y }");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("must be followed by a single stage")),
        "{errors:?}"
    );
    let errors = rendered_errors("pattern p { within 1h match x followed by (a or b)+ greedy }");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`greedy` cannot be applied to a group")),
        "{errors:?}"
    );
}

#[test]
fn explain_lists_the_branches() {
    let p = lowered("pattern p { within 1h match x followed by (a or (b next c)) }");
    let text = crate::explain(&p);
    assert!(text.contains("one of 2 branches"), "{text}");
    assert!(text.contains("branch 2:"), "{text}");
    let dot = crate::sequence_dot(&p);
    assert!(dot.contains("branch 1"), "{dot}");
}

#[test]
fn each_branch_needs_a_stage_of_its_own() {
    // `w` alone is in the other branch too: a match `w` could be either.
    let errors =
        rendered_errors("pattern p {\n    within 1h\n    match (w followed by a?) or w\n}\n");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[1].contains("t.cep:3:33: branch 2"), "{}", errors[1]);
    assert!(errors[0].contains("t.cep:3:12: "), "{}", errors[0]);
    assert!(
        errors[0].contains("branch 1 of the alternation has no stage of its own"),
        "{}",
        errors[0]
    );
    // Each branch has one: fine, and the keys say which.
    let p =
        lowered("pattern p { within 1h match (reset followed by w) or (device followed by w) }");
    let keys = crate::pattern::branch_keys(&p);
    let names = |ids: &Vec<crate::primitives::StageId>| -> Vec<String> {
        ids.iter().map(|s| p.stage(*s).name.clone()).collect()
    };
    assert_eq!(keys.len(), 1);
    assert_eq!(names(&keys[0][0]), ["reset"]);
    assert_eq!(names(&keys[0][1]), ["device"]);
}

#[test]
fn exists_of_a_stage_in_select() {
    let p = lowered(
        "pattern p { within 1h match (a followed by b) or c \
         select took_a = exists(a) n = count(c) }",
    );
    let text = pattern_source(&p).unwrap();
    assert!(text.contains("took_a = count(a) > 0"), "{text}");
    // A field in `select` is still an error, which says what `exists`
    // takes there (its help once suggested `a.a.x` for `exists(a.x)`).
    let errors = rendered_errors("pattern p { within 1h match a or c select x = exists(user.id) }");
    assert!(
        errors.iter().any(|e| e
            .contains("in `select`, `exists` takes a stage name, not `user.id`")
            && e.contains("the pattern's stages: a, c")),
        "{errors:?}"
    );
    let errors = rendered_errors("pattern p { within 1h match a or c select x = exists(a.id) }");
    assert!(
        errors.iter().any(|e| e.contains("not `a.id`")
            && e.contains("`exists(a)` says whether the match took an event into the stage `a`")
            && !e.contains("a.a.id")),
        "{errors:?}"
    );
}
