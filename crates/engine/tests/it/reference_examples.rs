//! The reference (`crates/engine/tests/it/reference`: Flink 2.3's NFA transliterated, with
//! cepheid's deviations D1-D5) on small worked examples, and on the shared
//! Flink conformance cases. These pin the reference itself down,
//! independently of the real matcher.
//!
//! Every example says who vouches for its expectation: the real Flink NFA
//! (checked by `flink_reproduces_the_examples` through the oracle of
//! `../shared/flink-oracle`, `cargo test --test reference_examples --
//! --ignored`), Flink advanced one millisecond at a time (D4), or cepheid's
//! own rules D1-D3 (derived by hand in the example's note).
//!
//! The ignored tests are tools around the oracle: the reference against
//! Flink on random patterns (`reference_agrees_with_flink`), and the
//! reference on neutral cases from a file (`reference_on_neutral_cases`).

use crate::reference;
use crate::shared_contract;

use cepheid_core::pattern::{Condition, Pattern, SkipStrategy};

use cepheid_core::primitives::StageId;
use reference::build::{and, kind_in, kind_is, pattern, sum_lt, value_gt_last};
use reference::flink::{run_with, Deviations};
use reference::oracle::{flink_failure, flink_items, reference_items, run_flink};
use reference::{run, Emitted, Failure, RefEvent};

/// Events from kinds: `"a c b b"` → ids 1.., ts = id.
fn events(kinds: &str) -> Vec<RefEvent> {
    kinds
        .split_whitespace()
        .enumerate()
        .map(|(i, k)| RefEvent::kv(i as u64 + 1, i as i64 + 1, k.chars().next().unwrap(), 0))
        .collect()
}

/// Events from `(kind, ts)`: ids 1...
fn timed(items: &[(char, i64)]) -> Vec<RefEvent> {
    items
        .iter()
        .enumerate()
        .map(|(i, (k, ts))| RefEvent::kv(i as u64 + 1, *ts, *k, 0))
        .collect()
}

/// Each stage accepts events of its own initial letter.
fn by_initial(text: &str) -> Pattern {
    let p = pattern(text, &[]);
    let conds: Vec<(&str, Condition)> = p
        .stages
        .iter()
        .map(|s| (s.name.as_str(), kind_is(s.name.chars().next().unwrap())))
        .collect();
    pattern(text, &conds)
}

/// Who vouches for an example's expectation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Vouched {
    /// The real Flink NFA, driven as the oracle drives it.
    Flink,
    /// Flink advanced one millisecond at a time (D4).
    FlinkTicking,
    /// cepheid's deviations D1-D3: no Flink run can show it.
    Cepheid,
}

/// A pattern, an input, and everything the reference must emit, rendered
/// as in [`reference::oracle::render`] (`"a:1 b:3 @p3"`: stages, emitted
/// while processing event 3; `@a3` while advancing before it; `@end` at the
/// final advance; timeouts as `"timeout a:1 !5 @a5"`).
struct Example {
    name: &'static str,
    pattern: Pattern,
    events: Vec<RefEvent>,
    end: Option<i64>,
    want: Vec<&'static str>,
    vouched: Vouched,
}

fn ex(name: &'static str, p: Pattern, events: Vec<RefEvent>, want: &[&'static str]) -> Example {
    Example {
        name,
        pattern: p,
        events,
        end: None,
        want: want.to_vec(),
        vouched: Vouched::Flink,
    }
}

impl Example {
    fn within(mut self, ms: i64) -> Self {
        self.pattern.within = Some(ms);
        self
    }
    fn timeouts(mut self) -> Self {
        self.pattern.emit_timeouts = true;
        self
    }
    fn skip(mut self, skip: SkipStrategy) -> Self {
        self.pattern.skip = skip;
        self
    }
    fn end(mut self, t: i64) -> Self {
        self.end = Some(t);
        self
    }
    fn vouched(mut self, v: Vouched) -> Self {
        self.vouched = v;
        self
    }
}

const LOOP_INPUT: &str = "a b d b d b c";

fn contiguity_examples() -> Vec<Example> {
    vec![
        ex(
            "next: the very next event",
            by_initial("a next b"),
            events("a c b b"),
            &[],
        ),
        ex(
            "followed by: the first match",
            by_initial("a followed by b"),
            events("a c b b"),
            &["a:1 b:3 @p3"],
        ),
        ex(
            "followed by any: every match",
            by_initial("a followed by any b"),
            events("a c b b"),
            &["a:1 b:3 @p3", "a:1 b:4 @p4"],
        ),
        ex(
            "consecutive loop",
            by_initial("a followed by any b+ consecutive followed by c"),
            events(LOOP_INPUT),
            &["a:1 b:2 c:7 @p7", "a:1 b:4 c:7 @p7", "a:1 b:6 c:7 @p7"],
        ),
        ex(
            "relaxed loop",
            by_initial("a followed by any b+ followed by c"),
            events(LOOP_INPUT),
            &[
                "a:1 b:2 c:7 @p7",
                "a:1 b:2,4 c:7 @p7",
                "a:1 b:2,4,6 c:7 @p7",
                "a:1 b:4 c:7 @p7",
                "a:1 b:4,6 c:7 @p7",
                "a:1 b:6 c:7 @p7",
            ],
        ),
        ex(
            "combinations loop",
            by_initial("a followed by any b+ combinations followed by c"),
            events(LOOP_INPUT),
            &[
                "a:1 b:2 c:7 @p7",
                "a:1 b:2,4 c:7 @p7",
                "a:1 b:2,4,6 c:7 @p7",
                "a:1 b:2,6 c:7 @p7",
                "a:1 b:4 c:7 @p7",
                "a:1 b:4,6 c:7 @p7",
                "a:1 b:6 c:7 @p7",
            ],
        ),
        ex(
            "DOC consecutive",
            by_initial("c followed by a+ consecutive followed by b"),
            events("c d a a a d a b"),
            &[
                "c:1 a:3 b:8 @p8",
                "c:1 a:3,4 b:8 @p8",
                "c:1 a:3,4,5 b:8 @p8",
            ],
        ),
        ex(
            "DOC relaxed",
            by_initial("c followed by a+ followed by b"),
            events("c d a a a d a b"),
            &[
                "c:1 a:3 b:8 @p8",
                "c:1 a:3,4 b:8 @p8",
                "c:1 a:3,4,5 b:8 @p8",
                "c:1 a:3,4,5,7 b:8 @p8",
            ],
        ),
        ex(
            "an optional group head can be taken",
            by_initial("a followed by (c? next d)"),
            events("a c d"),
            &["a:1 c:2 d:3 @p3"],
        ),
        ex(
            "an optional group head can be skipped",
            by_initial("a followed by (c? next d)"),
            events("a d"),
            &["a:1 d:2 @p2"],
        ),
        ex(
            "skipping an optional group head keeps the strict connector",
            by_initial("a followed by (c? next d)"),
            events("a x d"),
            &[],
        ),
        ex(
            "a counted group head may stop before its maximum",
            by_initial("a followed by (c{1,2} next d)"),
            events("a c d"),
            &["a:1 c:2 d:3 @p3"],
        ),
        ex(
            "a group that starts a group is entered strictly (begin(Pattern))",
            by_initial("a followed by any ((b))"),
            events("a c b"),
            &[],
        ),
    ]
}

fn until_and_greedy_examples() -> Vec<Example> {
    let until = pattern(
        "a+ until stop",
        &[("a", kind_is('a')), ("stop", kind_is('b'))],
    );
    let conds = [
        ("b", kind_is('b')),
        ("c", kind_is('c')),
        ("d", kind_is('d')),
        ("x", kind_is('x')),
    ];
    let group_until = || pattern("(b next c)+ until x followed by d", &conds);
    let relaxed_group_until = pattern("(b followed by c)+ until x followed by d", &conds);
    let greedy_doc = pattern(
        "a next b next c+ greedy next d",
        &[
            ("a", kind_in(&['a', 'b', 'c'])),
            ("b", kind_in(&['b', 'c'])),
            ("c", kind_is('c')),
            ("d", kind_is('d')),
        ],
    );
    vec![
        ex(
            "until stops the loop",
            until,
            events("a c a b a"),
            &["a:1 @p1", "a:1,3 @p3", "a:3 @p3", "a:5 @p5"],
        ),
        ex(
            "until on a group ends the loop",
            group_until(),
            events("b c x b c d"),
            &["b:1 c:2 d:6 @p6", "b:4 c:5 d:6 @p6"],
        ),
        ex(
            "until on a group also ends an iteration",
            relaxed_group_until,
            events("b x c b c d"),
            &["b:4 c:5 d:6 @p6"],
        ),
        ex(
            "greedy restricts the next element",
            by_initial("a+ greedy next b"),
            events("a a a b"),
            &["a:1,2,3 b:4 @p4", "a:2,3 b:4 @p4", "a:3 b:4 @p4"],
        ),
        ex(
            "greedy zero or more",
            by_initial("c followed by a* greedy followed by d"),
            events("c a x a d"),
            &["c:1 a:2,4 d:5 @p5"],
        ),
        ex(
            "greedy on the last element is not a no-op",
            by_initial("(b+ greedy){1,2}"),
            events("b"),
            &[],
        ),
        ex(
            "the same without greedy",
            by_initial("(b+){1,2}"),
            events("b"),
            &["b:1 @p1"],
        ),
        ex(
            "DOC skip to first with greedy (no skip)",
            greedy_doc.clone(),
            events("a b c c c d"),
            &[
                "a:1 b:2 c:3,4,5 d:6 @p6",
                "a:2 b:3 c:4,5 d:6 @p6",
                "a:3 b:4 c:5 d:6 @p6",
            ],
        ),
        ex(
            "DOC skip to first with greedy",
            greedy_doc,
            events("a b c c c d"),
            &["a:1 b:2 c:3,4,5 d:6 @p6", "a:3 b:4 c:5 d:6 @p6"],
        )
        .skip(SkipStrategy::ToFirst(StageId(2))),
    ]
}

fn skip_examples() -> Vec<Example> {
    let loop_next = || by_initial("b+ next c");
    let three = ["b:1,2,3 c:4 @p4", "b:2,3 c:4 @p4", "b:3 c:4 @p4"];
    vec![
        ex(
            "skip past last event",
            by_initial("b+ followed by c"),
            events("b b b c"),
            &["b:1,2,3 c:4 @p4"],
        )
        .skip(SkipStrategy::PastLastEvent),
        ex(
            "skip to last: equal starts do not hold a match back",
            by_initial("b+ followed by c"),
            events("b b b c"),
            &["b:1,2,3 c:4 @p4", "b:3 c:4 @p4"],
        )
        .skip(SkipStrategy::ToLast(StageId(0))),
        ex("DOC no skip", loop_next(), events("b b b c"), &three),
        ex("DOC skip to next", loop_next(), events("b b b c"), &three).skip(SkipStrategy::ToNext),
        ex(
            "DOC skip past last",
            loop_next(),
            events("b b b c"),
            &["b:1,2,3 c:4 @p4"],
        )
        .skip(SkipStrategy::PastLastEvent),
        ex(
            "DOC skip to last",
            loop_next(),
            events("b b b c"),
            &["b:1,2,3 c:4 @p4", "b:3 c:4 @p4"],
        )
        .skip(SkipStrategy::ToLast(StageId(0))),
        ex(
            "skip to first holds later matches while an earlier run lives",
            loop_next(),
            events("b b b c"),
            &["b:1,2,3 c:4 @p4"],
        )
        .skip(SkipStrategy::ToFirst(StageId(0))),
        ex(
            "held matches are released when the window closes",
            loop_next(),
            events("b b b c"),
            &["b:1,2,3 c:4 @p4", "b:2,3 c:4 @end", "b:3 c:4 @end"],
        )
        .skip(SkipStrategy::ToFirst(StageId(0)))
        .within(10)
        .end(100),
        ex(
            "DOC skip to next on a trailing loop (no skip)",
            by_initial("a followed by b+"),
            events("a b b b"),
            &["a:1 b:2 @p2", "a:1 b:2,3 @p3", "a:1 b:2,3,4 @p4"],
        ),
        ex(
            "DOC skip to next on a trailing loop",
            by_initial("a followed by b+"),
            events("a b b b"),
            &["a:1 b:2 @p2"],
        )
        .skip(SkipStrategy::ToNext),
        ex(
            "a looping group at the start emits a match twice",
            by_initial("(b)+ followed by c"),
            events("b x b c"),
            &["b:1 c:4 @p4", "b:1 c:4 @p4", "b:1,3 c:4 @p4", "b:3 c:4 @p4"],
        ),
    ]
}

fn negation_examples() -> Vec<Example> {
    let times = || by_initial("a followed by b{2} not followed by c followed by d");
    let not_next = || by_initial("a followed by b+ not next c followed by d");
    let stop_and_final = pattern(
        "a not followed by b next t",
        &[("a", kind_is('a')), ("b", kind_is('b'))],
    );
    vec![
        ex(
            "not followed by inside a preceding times (1)",
            times(),
            events("a b c b d"),
            &[],
        ),
        ex(
            "not followed by inside a preceding times (2)",
            times(),
            events("a b b c d"),
            &[],
        ),
        ex(
            "not followed by inside a preceding times (3)",
            times(),
            events("a b b x d"),
            &["a:1 b:2,3 d:5 @p5"],
        ),
        ex(
            "not followed by before an optional end does not delay",
            by_initial("a not followed by b followed by c?"),
            events("a x c"),
            &["a:1 @p1", "a:1 c:3 @p3"],
        ),
        ex(
            "a trailing not followed by completes when the window closes",
            by_initial("a not followed by b"),
            events("a b a x x x x"),
            &["a:3 @a6"],
        )
        .within(3),
        ex(
            "not next after a loop stops every branch (1)",
            not_next(),
            events("a b c d"),
            &[],
        ),
        ex(
            "not next after a loop stops every branch (2)",
            not_next(),
            events("a b x d"),
            &["a:1 b:2 d:4 @p4"],
        ),
        ex(
            "a stop does not cancel a match completed by the same event",
            stop_and_final,
            events("a b"),
            &["a:1 t:2 @p2"],
        ),
        ex(
            "a not followed by right before a not next is dropped",
            by_initial("c not followed by b not next x followed by d"),
            events("c b d"),
            &["c:1 d:3 @p3"],
        ),
    ]
}

fn time_examples() -> Vec<Example> {
    vec![
        ex(
            "the window border is exclusive; timeouts carry the taken events",
            by_initial("a followed by b"),
            events("a b a x b"),
            &["a:1 b:2 @p2", "timeout a:3 !5 @a5"],
        )
        .within(2)
        .timeouts(),
        ex(
            "D4: the pattern window closes first, so it is the one reported",
            by_initial("a next b followed by c within 3ms"),
            timed(&[('a', 0), ('b', 1)]),
            &["timeout a:1 b:2 !3 @end"],
        )
        .within(3)
        .timeouts()
        .end(101)
        .vouched(Vouched::FlinkTicking),
    ]
}

fn iterative_examples() -> Vec<Example> {
    let input: Vec<RefEvent> = [('s', 0), ('f', 1), ('f', 2), ('f', 3), ('f', 1), ('e', 0)]
        .iter()
        .enumerate()
        .map(|(i, (k, v))| RefEvent::kv(i as u64 + 1, i as i64 + 1, *k, *v))
        .collect();
    let sum = pattern(
        "s followed by f+ followed by e",
        &[
            ("s", kind_is('s')),
            ("f", and(kind_is('f'), sum_lt(StageId(1), 5))),
            ("e", kind_is('e')),
        ],
    );
    let rising = pattern(
        "f followed by g",
        &[("f", kind_is('f')), ("g", value_gt_last(StageId(0)))],
    );
    vec![
        ex(
            "an iterative condition sees the run's earlier events only",
            sum,
            input.clone(),
            &[
                "s:1 f:2 e:6 @p6",
                "s:1 f:2,3 e:6 @p6",
                "s:1 f:2,3,5 e:6 @p6",
            ],
        ),
        ex(
            "a stage field is the last event taken",
            rising,
            input,
            &["f:2 g:3 @p3", "f:3 g:4 @p4"],
        ),
    ]
}

/// cepheid's deviations D1-D3, derived from their definitions in
/// `reference/mod.rs` (the notes say how).
fn deviation_examples() -> Vec<Example> {
    vec![
        // D1: after b the run waits in a copy of d's state with a PROCEED to
        // the stop state of c.
        ex(
            "D1: a group's trailing not followed by is enforced",
            by_initial("a followed by (b not followed by c) followed by d"),
            events("a b c d"),
            &[],
        ),
        ex(
            "D1: without the negated event the group matches",
            by_initial("a followed by (b not followed by c) followed by d"),
            events("a b x d"),
            &["a:1 b:2 d:4 @p4"],
        ),
        // D1: skipping the optional group goes to d's own state, which has
        // no stop edge.
        ex(
            "D1: skipping an optional group bypasses its negation",
            by_initial("a followed by (b not followed by c) optional followed by d"),
            events("a c d"),
            &["a:1 d:3 @p3"],
        ),
        // D1 in a looping group: the dummy state that closes an iteration
        // has the PROCEED to c's stop state, so c right after b stops the
        // run ...
        ex(
            "D1: a looping group's trailing negation after an iteration",
            by_initial("a followed by (b not followed by c)+ followed by d"),
            events("a b c d"),
            &[],
        ),
        // ... and after the last one: a run that left the loop waits in a
        // copy of d's state that carries the stop edge.
        ex(
            "D1: a looping group's negation holds after its last iteration",
            by_initial("a followed by (b not followed by c)+ followed by d"),
            events("a b b c d"),
            &[],
        ),
        // D2: b's and c's states register the group's 2 ms: the run waiting
        // for c after b@1 expires at 3.
        ex(
            "D2: an element window on a group bounds its elements",
            by_initial("a followed by (b followed by c) within 2ms"),
            timed(&[('a', 0), ('b', 1), ('x', 2), ('c', 4)]),
            &["timeout a:1 b:2 !3 @a4"],
        )
        .timeouts(),
        // D3: both states of b{2} register 2 ms.
        ex(
            "D3: an element window on a quantified element bounds each event",
            by_initial("a followed by b{2} within 2ms"),
            timed(&[('a', 0), ('b', 1), ('x', 2), ('b', 4)]),
            &["timeout a:1 b:2 !3 @a4"],
        )
        .timeouts(),
    ]
    .into_iter()
    .map(|e| e.vouched(Vouched::Cepheid))
    .collect()
}

fn examples() -> Vec<Example> {
    let mut all = contiguity_examples();
    all.extend(until_and_greedy_examples());
    all.extend(skip_examples());
    all.extend(negation_examples());
    all.extend(time_examples());
    all.extend(iterative_examples());
    all.extend(deviation_examples());
    all
}

fn sorted(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().collect();
    v.sort();
    v
}

#[test]
fn reference_reproduces_the_examples() {
    let mut failures = Vec::new();
    for e in examples() {
        let out = run(&e.pattern, &e.events, e.end);
        let got = sorted(reference_items(&e.events, &out.matches, &out.timeouts));
        let want = sorted(e.want.iter().map(|s| s.to_string()));
        if got != want || out.failure.is_some() {
            failures.push(format!(
                "{}:\n  want {want:?}\n  got  {got:?} {:?}",
                e.name, out.failure
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The examples vouched for by Flink, through the real Flink NFA.
#[test]
#[ignore = "needs Java 17 and the Flink venv of ../shared/flink-oracle (README there)"]
fn flink_reproduces_the_examples() {
    let chosen: Vec<Example> = examples()
        .into_iter()
        .filter(|e| e.vouched != Vouched::Cepheid)
        .collect();
    let cases = chosen
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let id = i.to_string();
            let mut c = reference::neutral::case(&id, &e.pattern, &e.events, e.end).unwrap();
            if e.vouched == Vouched::FlinkTicking {
                c["tick"] = serde_json::json!(true);
            }
            c.to_string()
        })
        .collect();
    let mut failures = Vec::new();
    for (e, answer) in chosen.iter().zip(run_flink(cases)) {
        let mut got = flink_items(&e.pattern, &answer);
        if !e.pattern.emit_timeouts {
            got.retain(|i| !i.starts_with("timeout"));
        }
        let got = sorted(got);
        let want = sorted(e.want.iter().map(|s| s.to_string()));
        if got != want || flink_failure(&answer).is_some() {
            failures.push(format!(
                "{}:\n  want  {want:?}\n  flink {got:?} {:?}",
                e.name,
                flink_failure(&answer)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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

/// Stages rendered as `a:1 b:3,4`.
fn render(stages: &[(String, Vec<u64>)]) -> String {
    reference::oracle::render_stages(stages.iter().map(|(s, ids)| (s.as_str(), ids.clone())))
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
    let root = shared_contract::path("conformance/flink");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
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

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The reference in plain-Flink mode (no D1-D3) against the real Flink NFA
/// of the oracle (`../shared/flink-oracle`), on random valid patterns of the
/// differential test's generator: the same matches and timeouts, emitted in
/// the same order by the same call. `CEPHEID_ORACLE_CASES` (default 500),
/// `CEPHEID_ORACLE_SEED`; `CEPHEID_ORACLE_TICK=1` runs Flink one millisecond
/// at a time against the reference with D4 (same items per call; D4 expires
/// overdue deadlines one by one, so the order within a call may differ).
#[test]
#[ignore = "needs Java 17 and the Flink venv of ../shared/flink-oracle (README there)"]
fn reference_agrees_with_flink() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngSeed, TestRunner};

    let count = env_number("CEPHEID_ORACLE_CASES").unwrap_or(500) as usize;
    let seed = env_number("CEPHEID_ORACLE_SEED").unwrap_or(7);
    let tick = std::env::var("CEPHEID_ORACLE_TICK").is_ok_and(|v| v == "1");
    let dev = Deviations {
        ordered_advance: tick,
        ..Deviations::NONE
    };
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    let strategy = (reference::gen::pattern_spec(), reference::gen::events());
    let mut cases = Vec::new();
    while cases.len() < count {
        let (spec, events) = strategy.new_tree(&mut runner).unwrap().current();
        let mut p = spec.build();
        if !cepheid_core::pattern::validate(&p).is_empty() {
            continue;
        }
        p.emit_timeouts = true;
        cases.push((p, events));
    }
    let end = |events: &[RefEvent]| events.last().map_or(0, |e| e.ts) + 100;
    let lines: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (p, events))| {
            let id = i.to_string();
            let mut c = reference::neutral::case(&id, p, events, Some(end(events))).unwrap();
            if tick {
                c["tick"] = serde_json::json!(true);
            }
            c.to_string()
        })
        .collect();
    let answers = run_flink(lines.clone());
    let (mut both_fail, mut too_expensive, mut failures) = (0, 0, Vec::new());
    // Patterns `validate` accepts but Flink's `Pattern` API rejects (not the
    // reference's concern): Flink's message, how often.
    let mut flink_rejects: std::collections::BTreeMap<String, usize> = Default::default();
    for (((p, events), answer), line) in cases.iter().zip(&answers).zip(&lines) {
        let ours = run_with(p, events, Some(end(events)), dev);
        let problem = match (&ours.failure, flink_failure(answer)) {
            (Some(Failure::TooExpensive), _) => {
                too_expensive += 1;
                None
            }
            (Some(_), Some(_)) => {
                both_fail += 1;
                None
            }
            (None, Some(_)) if answer["error"].is_string() => {
                let message = answer["error"].as_str().unwrap_or_default().to_string();
                *flink_rejects.entry(message).or_default() += 1;
                None
            }
            (Some(f), None) => Some(format!("the reference fails ({f:?}), Flink does not")),
            (None, Some(f)) => Some(format!("Flink fails ({f}), the reference does not")),
            (None, None) => {
                let mut want = flink_items(p, answer);
                let mut got = reference_items(events, &ours.matches, &ours.timeouts);
                if tick {
                    want.sort();
                    got.sort();
                }
                (want != got).then(|| format!("flink:     {want:?}\nreference: {got:?}"))
            }
        };
        if let Some(what) = problem {
            failures.push(format!(
                "{}\nevents:\n{}\n{what}\nneutral case: {line}",
                reference::print::pattern(p),
                reference::print::events(events)
            ));
        }
    }
    let differ = failures.len();
    let rejected: usize = flink_rejects.values().sum();
    eprintln!(
        "reference vs Flink: {} agree, {both_fail} fail on both sides, {differ} differ, \
         {too_expensive} too expensive for the reference, {rejected} valid for cepheid but \
         rejected by Flink's API: {flink_rejects:?}",
        cases.len() - both_fail - differ - too_expensive - rejected
    );
    assert!(
        failures.is_empty(),
        "{differ} disagreements; the first ones:\n\n{}",
        failures[..differ.min(5)].join("\n\n")
    );
}

/// A debugging aid: runs the neutral cases of the file `CEPHEID_NEUTRAL`
/// (JSON lines, the oracle's format) through the reference and prints the
/// outputs (`CEPHEID_DEVIATIONS=1` applies D1-D4, `CEPHEID_GRAPH=1` prints
/// the automaton).
#[test]
#[ignore = "a tool: needs CEPHEID_NEUTRAL=cases.jsonl"]
fn reference_on_neutral_cases() {
    let path = std::env::var("CEPHEID_NEUTRAL").expect("CEPHEID_NEUTRAL=file");
    let dev = match std::env::var("CEPHEID_DEVIATIONS").as_deref() {
        Ok("1") => Deviations::CEPHEID,
        _ => Deviations::NONE,
    };
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        let end = json["end_time"].as_i64();
        let id = json["id"].to_string();
        let mut case = reference::conformance::parse(id.clone(), json).unwrap();
        case.pattern.emit_timeouts = true;
        if std::env::var("CEPHEID_GRAPH").is_ok_and(|v| v == "1") {
            match reference::flink::compile(&case.pattern, dev) {
                Ok(g) => eprintln!("{}", g.describe()),
                Err(e) => eprintln!("rejected: {e}"),
            }
        }
        let started = std::time::Instant::now();
        let out = run_with(&case.pattern, &case.events, end, dev);
        eprintln!(
            "case {id} ({:?}):\n{}\n{:?}\nfailure: {:?}",
            started.elapsed(),
            reference::print::pattern(&case.pattern),
            reference_items(&case.events, &out.matches, &out.timeouts),
            out.failure
        );
    }
}
