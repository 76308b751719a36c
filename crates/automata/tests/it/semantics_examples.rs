//! Golden tests: every worked example of `semantics.md` and the DOC examples
//! of `flink-reference.md` §2, §3.1 and §6, built as pattern IR with native
//! conditions (a stage accepts events whose name starts with its letters).

use crate::matcher_support;

use cepheid_core::pattern::SkipStrategy;

use cepheid_core::primitives::StageId;
use matcher_support::*;

fn ab(b: cepheid_core::pattern::Element) -> cepheid_core::pattern::Pattern {
    pattern(
        vec![("a", letters("a")), ("b", letters("b"))],
        vec![el(0), b],
    )
}

#[test]
fn next_followed_by_and_followed_by_any() {
    assert_eq!(run(&ab(el(1).next()), "a c b1 b2"), expect(&[]));
    assert_eq!(run(&ab(el(1)), "a c b1 b2"), expect(&["a:a|b:b1"]));
    assert_eq!(
        sorted(run(&ab(el(1).any()), "a c b1 b2")),
        expect(&["a:a|b:b1", "a:a|b:b2"])
    );
}

fn abc_loop(b: cepheid_core::pattern::Element) -> cepheid_core::pattern::Pattern {
    pattern(
        vec![
            ("a", letters("a")),
            ("b", letters("b")),
            ("c", letters("c")),
        ],
        vec![el(0), b, el(2)],
    )
}

const LOOP_INPUT: &str = "a b1 d1 b2 d2 b3 c";

#[test]
fn inner_contiguity_of_a_loop() {
    let consecutive = ["a:a|b:b1|c:c", "a:a|b:b2|c:c", "a:a|b:b3|c:c"];
    assert_eq!(
        sorted(run(&abc_loop(el(1).any().plus().consecutive()), LOOP_INPUT)),
        expect(&consecutive)
    );
    let mut relaxed = consecutive.to_vec();
    relaxed.extend(["a:a|b:b1 b2|c:c", "a:a|b:b1 b2 b3|c:c", "a:a|b:b2 b3|c:c"]);
    assert_eq!(
        sorted(run(&abc_loop(el(1).any().plus()), LOOP_INPUT)),
        expect(&relaxed)
    );
    let mut combinations = relaxed.clone();
    combinations.push("a:a|b:b1 b3|c:c");
    assert_eq!(
        sorted(run(
            &abc_loop(el(1).any().plus().combinations()),
            LOOP_INPUT
        )),
        expect(&combinations)
    );
}

#[test]
fn until_ends_a_loop() {
    let p = pattern(
        vec![("a", letters("a"))],
        vec![el(0).plus().until(letters("b"))],
    );
    assert_eq!(
        sorted(run(&p, "a1 c a2 b a3")),
        expect(&["a:a1", "a:a1 a2", "a:a2", "a:a3"])
    );
}

fn b_plus_c(
    skip: SkipStrategy,
    c: cepheid_core::pattern::Element,
) -> cepheid_core::pattern::Pattern {
    let mut p = pattern(
        vec![("b", letters("b")), ("c", letters("c"))],
        vec![el(0).plus(), c],
    );
    p.skip = skip;
    p
}

#[test]
fn b_plus_next_c_under_each_skip_strategy() {
    // flink-reference §6 (DOC-CEP writes concatenation as strict `next`)
    let all = ["b:b1 b2 b3|c:c", "b:b2 b3|c:c", "b:b3|c:c"];
    let input = "b1 b2 b3 c";
    let p = |skip| b_plus_c(skip, el(1).next());
    assert_eq!(sorted(run(&p(SkipStrategy::NoSkip), input)), expect(&all));
    assert_eq!(sorted(run(&p(SkipStrategy::ToNext), input)), expect(&all));
    assert_eq!(
        run(&p(SkipStrategy::PastLastEvent), input),
        vec!["b:b1 b2 b3|c:c"]
    );
    assert_eq!(
        run(&p(SkipStrategy::ToLast(StageId(0))), input),
        vec!["b:b1 b2 b3|c:c", "b:b3|c:c"]
    );
    // skip to first b: the later matches are held while the run started at
    // b1 lives (without a window: forever).
    assert_eq!(
        run(&p(SkipStrategy::ToFirst(StageId(0))), input),
        vec!["b:b1 b2 b3|c:c"]
    );
}

#[test]
fn b_plus_followed_by_c_with_skips() {
    // semantics.md worked examples
    let input = "b1 b2 b3 c";
    let p = |skip| b_plus_c(skip, el(1));
    assert_eq!(run(&p(SkipStrategy::NoSkip), input).len(), 6);
    assert_eq!(
        run(&p(SkipStrategy::PastLastEvent), input),
        vec!["b:b1 b2 b3|c:c"]
    );
    assert_eq!(
        run(&p(SkipStrategy::ToLast(StageId(0))), input),
        vec!["b:b1 b2 b3|c:c", "b:b3|c:c"]
    );
}

#[test]
fn a_b_plus_skip_to_next() {
    let mut p = pattern(
        vec![("a", letters("a")), ("b", letters("b"))],
        vec![el(0), el(1).plus()],
    );
    assert_eq!(
        run(&p, "a b1 b2 b3"),
        vec!["a:a|b:b1", "a:a|b:b1 b2", "a:a|b:b1 b2 b3"]
    );
    p.skip = SkipStrategy::ToNext;
    assert_eq!(run(&p, "a b1 b2 b3"), vec!["a:a|b:b1"]);
}

#[test]
fn consecutive_javadoc_example() {
    // C D A1 A2 A3 D A4 B, pattern C followedBy A+ followedBy B
    let p = |a: cepheid_core::pattern::Element| {
        pattern(
            vec![
                ("c", letters("c")),
                ("a", letters("a")),
                ("b", letters("b")),
            ],
            vec![el(0), a, el(2)],
        )
    };
    let input = "c d a1 a2 a3 d a4 b";
    let consecutive = ["a:a1|b:b|c:c", "a:a1 a2|b:b|c:c", "a:a1 a2 a3|b:b|c:c"];
    let render_sorted = |v: Vec<String>| sorted(v.into_iter().map(|s| reorder(&s)).collect());
    assert_eq!(
        render_sorted(run(&p(el(1).plus().consecutive()), input)),
        expect(&consecutive)
    );
    let mut relaxed = consecutive.to_vec();
    relaxed.push("a:a1 a2 a3 a4|b:b|c:c");
    assert_eq!(
        render_sorted(run(&p(el(1).plus()), input)),
        expect(&relaxed)
    );
    assert_eq!(run(&p(el(1).plus().combinations()), input).len(), 8);
}

/// Puts the `stage:events` parts in name order.
fn reorder(s: &str) -> String {
    let mut parts: Vec<&str> = s.split('|').collect();
    parts.sort();
    parts.join("|")
}

#[test]
fn greedy_loop_with_or_condition() {
    // (a|b|c) (b|c) c+.greedy d on a b c1 c2 c3 d
    let mut p = pattern(
        vec![
            ("x", letters("abc")),
            ("y", letters("bc")),
            ("z", letters("c")),
            ("d", letters("d")),
        ],
        vec![el(0), el(1), el(2).plus().greedy(), el(3)],
    );
    let input = "a b c1 c2 c3 d";
    assert_eq!(
        sorted(run(&p, input)),
        expect(&[
            "x:a|y:b|z:c1 c2 c3|d:d",
            "x:b|y:c1|z:c2 c3|d:d",
            "x:c1|y:c2|z:c3|d:d",
        ])
    );
    p.skip = SkipStrategy::ToFirst(StageId(2));
    assert_eq!(
        run(&p, input),
        vec!["x:a|y:b|z:c1 c2 c3|d:d", "x:c1|y:c2|z:c3|d:d"]
    );
}

#[test]
fn adjacent_combination_loops_do_not_collide() {
    // NFAITCase#testMultipleTakesVersionCollision: c a+ combinations
    // a+ combinations b over c a1..a5 b: the second loop starts at the first
    // `a` after the first loop's last element; 20 matches.
    let p = pattern(
        vec![
            ("start", letters("c")),
            ("m1", letters("a")),
            ("m2", letters("a")),
            ("end", letters("b")),
        ],
        vec![
            el(0),
            el(1).plus().combinations(),
            el(2).plus().combinations(),
            el(3),
        ],
    );
    let out = run(&p, "c a1 a2 a3 a4 a5 b");
    assert_eq!(out.len(), 20, "{out:#?}");
    let unique: std::collections::BTreeSet<_> = out.iter().collect();
    assert_eq!(unique.len(), 20);
    assert!(out.contains(&"start:c|m1:a1|m2:a2 a3 a4 a5|end:b".to_string()));
    assert!(out.contains(&"start:c|m1:a1 a2 a3 a4|m2:a5|end:b".to_string()));
}

#[test]
fn greedy_until_lets_the_next_stage_take_after_the_stop_event() {
    // GreedyITCase#testGreedyUntilZeroOrMoreWithDummyEventsAfterQuantifier:
    // c a* greedy until(value > 3) followed by d on c a1(2) a2(3) a3(4) d
    let p = pattern(
        vec![
            ("start", letters("c")),
            ("middle", letters("a")),
            ("end", letters("d")),
        ],
        vec![
            el(0),
            el(1).plus().opt().greedy().until(cond(|e| e.value > 3)),
            el(2),
        ],
    );
    let input = [("c", 1), ("a1", 2), ("a2", 3), ("a3", 4), ("d", 3)];
    assert_eq!(run_valued(&p, &input), vec!["start:c|middle:a1 a2|end:d"]);
}
