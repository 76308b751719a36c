//! The reference matcher on the worked examples of `semantics.md` and the
//! DOC examples of `flink-reference.md`. These pin the reference itself down,
//! independently of the real matcher.

#[path = "reference/mod.rs"]
mod reference;

use cepheid::pattern::{Condition, Pattern, SkipStrategy, StageId};
use reference::build::{kind_in, kind_is, pattern, sum_lt, value_gt_last};
use reference::matcher::Output;
use reference::Emitted;
use reference::{run, RefEvent};

/// Events from kinds: `"a c b b"` → ids 1.., ts = id.
fn events(kinds: &str) -> Vec<RefEvent> {
    kinds
        .split_whitespace()
        .enumerate()
        .map(|(i, k)| RefEvent::kv(i as u64 + 1, i as i64 + 1, k.chars().next().unwrap(), 0))
        .collect()
}

/// Each stage accepts events of its own initial letter.
fn by_initial(text: &str, names: &[&str]) -> Pattern {
    let conds: Vec<(&str, Condition)> = names
        .iter()
        .map(|n| (*n, kind_is(n.chars().next().unwrap())))
        .collect();
    pattern(text, &conds)
}

/// Matches rendered as `"a:1 b:3,4"`, sorted.
fn rendered(out: &Output) -> Vec<String> {
    let mut all: Vec<String> = out.matches.iter().map(|m| render(&m.stages)).collect();
    all.sort();
    all
}

fn render(stages: &[(String, Vec<u64>)]) -> String {
    stages
        .iter()
        .map(|(s, ids)| {
            format!(
                "{s}:{}",
                ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn sorted(expected: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn check(p: &Pattern, kinds: &str, expected: &[&str]) {
    let out = run(p, &events(kinds), None);
    assert_eq!(rendered(&out), sorted(expected), "pattern {:?}", p.sequence);
}

#[test]
fn contiguity_of_two_stages() {
    let names = ["a", "b"];
    check(&by_initial("a next b", &names), "a c b b", &[]);
    check(
        &by_initial("a followed by b", &names),
        "a c b b",
        &["a:1 b:3"],
    );
    check(
        &by_initial("a followed by any b", &names),
        "a c b b",
        &["a:1 b:3", "a:1 b:4"],
    );
}

const LOOP_INPUT: &str = "a b d b d b c";

#[test]
fn inner_contiguity_consecutive() {
    let p = by_initial(
        "a followed by any b+ consecutive followed by c",
        &["a", "b", "c"],
    );
    check(
        &p,
        LOOP_INPUT,
        &["a:1 b:2 c:7", "a:1 b:4 c:7", "a:1 b:6 c:7"],
    );
}

#[test]
fn inner_contiguity_relaxed() {
    let p = by_initial("a followed by any b+ followed by c", &["a", "b", "c"]);
    let expected = [
        "a:1 b:2 c:7",
        "a:1 b:4 c:7",
        "a:1 b:6 c:7",
        "a:1 b:2,4 c:7",
        "a:1 b:2,4,6 c:7",
        "a:1 b:4,6 c:7",
    ];
    check(&p, LOOP_INPUT, &expected);
}

#[test]
fn inner_contiguity_combinations() {
    let p = by_initial(
        "a followed by any b+ combinations followed by c",
        &["a", "b", "c"],
    );
    let expected = [
        "a:1 b:2 c:7",
        "a:1 b:4 c:7",
        "a:1 b:6 c:7",
        "a:1 b:2,4 c:7",
        "a:1 b:2,4,6 c:7",
        "a:1 b:4,6 c:7",
        "a:1 b:2,6 c:7",
    ];
    check(&p, LOOP_INPUT, &expected);
}

#[test]
fn until_stops_the_loop() {
    let p = pattern(
        "a+ until stop",
        &[("a", kind_is('a')), ("stop", kind_is('b'))],
    );
    check(&p, "a c a b a", &["a:1", "a:1,3", "a:3", "a:5"]);
}

#[test]
fn skip_past_last_event() {
    let mut p = by_initial("b+ followed by c", &["b", "c"]);
    p.skip = SkipStrategy::PastLastEvent;
    check(&p, "b b b c", &["b:1,2,3 c:4"]);
}

#[test]
fn skip_to_last() {
    let mut p = by_initial("b+ followed by c", &["b", "c"]);
    p.skip = SkipStrategy::ToLast(StageId(0));
    check(&p, "b b b c", &["b:1,2,3 c:4", "b:3 c:4"]);
}

#[test]
fn doc_consecutive_example() {
    let names = ["c", "a", "b"];
    let input = "c d a a a d a b";
    let consecutive = by_initial("c followed by a+ consecutive followed by b", &names);
    check(
        &consecutive,
        input,
        &["c:1 a:3 b:8", "c:1 a:3,4 b:8", "c:1 a:3,4,5 b:8"],
    );
    let relaxed = by_initial("c followed by a+ followed by b", &names);
    let all4 = [
        "c:1 a:3 b:8",
        "c:1 a:3,4 b:8",
        "c:1 a:3,4,5 b:8",
        "c:1 a:3,4,5,7 b:8",
    ];
    check(&relaxed, input, &all4);
    let combinations = by_initial("c followed by a+ combinations followed by b", &names);
    let mut all8 = Vec::new();
    for mask in 0..8u32 {
        let mut ids = vec!["3".to_string()];
        for (bit, id) in [4, 5, 7].iter().enumerate() {
            if mask & (1 << bit) != 0 {
                ids.push(id.to_string());
            }
        }
        all8.push(format!("c:1 a:{} b:8", ids.join(",")));
    }
    let expected: Vec<&str> = all8.iter().map(String::as_str).collect();
    check(&combinations, input, &expected);
}

#[test]
fn doc_skip_strategies_on_a_loop_with_next() {
    let input = "b b b c";
    let expect = |skip, expected: &[&str]| {
        let mut p = by_initial("b+ next c", &["b", "c"]);
        p.skip = skip;
        check(&p, input, expected);
    };
    let three = ["b:1,2,3 c:4", "b:2,3 c:4", "b:3 c:4"];
    expect(SkipStrategy::NoSkip, &three);
    expect(SkipStrategy::ToNext, &three);
    expect(SkipStrategy::PastLastEvent, &["b:1,2,3 c:4"]);
    expect(
        SkipStrategy::ToLast(StageId(0)),
        &["b:1,2,3 c:4", "b:3 c:4"],
    );
    // DOC-CEP lists all three for SKIP_TO_FIRST[b], but the later two are
    // held while the run started at b1 (a relaxed loop) is alive (§6).
    expect(SkipStrategy::ToFirst(StageId(0)), &["b:1,2,3 c:4"]);
    let mut p = by_initial("b+ next c", &["b", "c"]);
    p.skip = SkipStrategy::ToFirst(StageId(0));
    p.within = Some(10);
    let out = run(&p, &events(input), Some(100));
    assert_eq!(
        rendered(&out),
        sorted(&three),
        "released when the window closes"
    );
    assert!(
        out.matches[1..].iter().all(|m| m.step == 8),
        "released at the final advance"
    );
}

#[test]
fn doc_skip_to_next_on_a_trailing_loop() {
    let mut p = by_initial("a followed by b+", &["a", "b"]);
    check(&p, "a b b b", &["a:1 b:2", "a:1 b:2,3", "a:1 b:2,3,4"]);
    p.skip = SkipStrategy::ToNext;
    check(&p, "a b b b", &["a:1 b:2"]);
}

#[test]
fn doc_skip_to_first_with_greedy() {
    let conds = [
        ("a", kind_in(&['a', 'b', 'c'])),
        ("b", kind_in(&['b', 'c'])),
        ("c", kind_is('c')),
        ("d", kind_is('d')),
    ];
    let mut p = pattern("a next b next c+ greedy next d", &conds);
    let input = "a b c c c d";
    check(
        &p,
        input,
        &[
            "a:1 b:2 c:3,4,5 d:6",
            "a:2 b:3 c:4,5 d:6",
            "a:3 b:4 c:5 d:6",
        ],
    );
    p.skip = SkipStrategy::ToFirst(StageId(2));
    check(&p, input, &["a:1 b:2 c:3,4,5 d:6", "a:3 b:4 c:5 d:6"]);
}

/// `{stage: [ids]}` objects of a case, rendered like [`render`], sorted
/// unless the order matters.
fn expected_list(json: &serde_json::Value, order_matters: bool, p: &Pattern) -> Vec<String> {
    let mut out: Vec<String> = json
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|m| {
                    let mut stages: Vec<(String, Vec<u64>)> = m
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_array()
                                    .unwrap()
                                    .iter()
                                    .map(|x| x.as_u64().unwrap())
                                    .collect(),
                            )
                        })
                        .collect();
                    stages.sort_by_key(|(k, _)| p.stage_id(k));
                    render(&stages)
                })
                .collect()
        })
        .unwrap_or_default();
    if !order_matters {
        out.sort();
    }
    out
}

fn actual_list(items: &[Emitted], order_matters: bool) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|m| render(&m.stages)).collect();
    if !order_matters {
        out.sort();
    }
    out
}

/// Every applicable conformance case through the reference: the reference
/// must agree with Flink's facts before it may judge the real matcher.
#[test]
fn reference_passes_the_conformance_cases() {
    let root = std::path::Path::new("../shared/conformance/flink");
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    dirs.sort();
    let (mut passed, mut failures, mut skipped) = (0, Vec::new(), Vec::new());
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let case = match reference::conformance::load(dir) {
            Ok(c) => c,
            Err(why) => {
                skipped.push(format!("{}: {why}", dir.display()));
                continue;
            }
        };
        let out = run(&case.pattern, &case.events, None);
        let order = case.json["match_order_matters"].as_bool().unwrap_or(false);
        let want = expected_list(&case.json["expected_matches"], order, &case.pattern);
        let got = actual_list(&out.matches, order);
        let mut problems = Vec::new();
        if want != got {
            problems.push(format!("matches: want {want:?}\n   got {got:?}"));
        }
        if !case.json["expected_timeouts"].is_null() {
            let want = expected_list(&case.json["expected_timeouts"], false, &case.pattern);
            let got = actual_list(&out.timeouts, false);
            if want != got {
                problems.push(format!("timeouts: want {want:?}\n   got {got:?}"));
            }
        }
        if let Some(on) = case.json["expected_emitted_on_event"].as_array() {
            let mut want: Vec<u64> = on.iter().map(|x| x.as_u64().unwrap()).collect();
            let mut got: Vec<u64> = out
                .matches
                .iter()
                .map(|m| case.events[m.step / 2].id)
                .collect();
            want.sort();
            got.sort();
            if want != got {
                problems.push(format!("emitted on: want {want:?} got {got:?}"));
            }
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failures.push(format!("{}\n  {}", case.id, problems.join("\n  ")));
        }
    }
    eprintln!(
        "reference conformance: {passed} passed; skipped:\n  {}",
        skipped.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(passed >= 50, "too few cases ran: {passed}");
}

#[test]
fn not_followed_by_is_checked_inside_a_preceding_times() {
    let p = by_initial(
        "a followed by b{2} not followed by c followed by d",
        &["a", "b", "c", "d"],
    );
    check(&p, "a b c b d", &[]);
    check(&p, "a b b c d", &[]);
    check(&p, "a b b x d", &["a:1 b:2,3 d:5"]);
}

#[test]
fn not_followed_by_at_the_end_of_a_group_is_enforced() {
    let p = by_initial(
        "a followed by (b not followed by c) followed by d",
        &["a", "b", "c", "d"],
    );
    check(&p, "a b c d", &[]);
    check(&p, "a b x d", &["a:1 b:2 d:4"]);
}

#[test]
fn not_followed_by_before_an_optional_end_does_not_delay() {
    let p = by_initial("a not followed by b followed by c?", &["a", "b", "c"]);
    let out = run(&p, &events("a x c"), None);
    assert_eq!(rendered(&out), sorted(&["a:1", "a:1 c:3"]));
    assert_eq!(
        out.matches[0].step, 1,
        "{{a}} is emitted while a is processed"
    );
}

#[test]
fn trailing_not_followed_by_completes_when_the_window_closes() {
    let mut p = by_initial("a not followed by b", &["a", "b"]);
    p.within = Some(3);
    // a@1 is stopped by b@2; a@3 completes when time reaches 6.
    let out = run(&p, &events("a b a x x x x"), None);
    assert_eq!(rendered(&out), sorted(&["a:3"]));
    assert_eq!(
        out.matches[0].step,
        2 * 5,
        "released while advancing to event 6"
    );
}

#[test]
fn not_next_after_a_loop_stops_every_branch() {
    let p = by_initial(
        "a followed by b+ not next c followed by d",
        &["a", "b", "c", "d"],
    );
    check(&p, "a b c d", &[]);
    check(&p, "a b x d", &["a:1 b:2 d:4"]);
}

#[test]
fn window_border_is_exclusive_and_timeouts_carry_the_taken_events() {
    let mut p = by_initial("a followed by b", &["a", "b"]);
    p.within = Some(2);
    p.emit_timeouts = true;
    // a@1 b@2 matches; a@3 cannot take b@5 (5 - 3 >= 2): timeout at 5.
    let out = run(&p, &events("a b a x b"), None);
    assert_eq!(rendered(&out), sorted(&["a:1 b:2"]));
    assert_eq!(out.timeouts.len(), 1);
    assert_eq!(out.timeouts[0].stages, vec![("a".to_string(), vec![3])]);
    assert_eq!(out.timeouts[0].expired_at, Some(5));
}

#[test]
fn greedy_restricts_only_the_next_element() {
    let p = by_initial("a+ greedy next b", &["a", "b"]);
    check(&p, "a a a b", &["a:1,2,3 b:4", "a:2,3 b:4", "a:3 b:4"]);
    let zero = by_initial("c followed by a* greedy followed by d", &["c", "a", "d"]);
    check(&zero, "c a x a d", &["c:1 a:2,4 d:5"]);
}

#[test]
fn iterative_conditions_see_only_earlier_events_of_the_run() {
    let events: Vec<RefEvent> = [('s', 0), ('f', 1), ('f', 2), ('f', 3), ('f', 1), ('e', 0)]
        .iter()
        .enumerate()
        .map(|(i, (k, v))| RefEvent::kv(i as u64 + 1, i as i64 + 1, *k, *v))
        .collect();
    let conds = [
        ("s", kind_is('s')),
        (
            "f",
            reference::build::and(kind_is('f'), sum_lt(StageId(1), 5)),
        ),
        ("e", kind_is('e')),
    ];
    // f3 (value 3) is skipped by the run holding f1 f2 (sum would be 6).
    let p = pattern("s followed by f+ followed by e", &conds);
    let out = run(&p, &events, None);
    let expected = ["s:1 f:2 e:6", "s:1 f:2,3 e:6", "s:1 f:2,3,5 e:6"];
    assert_eq!(rendered(&out), sorted(&expected));
    let rising = pattern(
        "f followed by g",
        &[("f", kind_is('f')), ("g", value_gt_last(StageId(0)))],
    );
    let out = run(&rising, &events, None);
    assert_eq!(rendered(&out), sorted(&["f:2 g:3", "f:3 g:4"]));
}
