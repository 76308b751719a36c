//! Cases the alternation property test (`alternation_differential.rs`)
//! found, each compared as it compares its random cases: the pattern as its
//! report prints it, and the events `(ts, kind, value)`.

use crate::alternation_differential::compare_case;

type Case = (u64, &'static str, &'static str, &'static [(i64, char, i64)]);

/// (`CEPHEID_PROPTEST_SEED`, what went wrong, pattern, events).
const CASES: &[Case] = &[
    (
        4,
        "an optional alternation skipped, every branch ending with a greedy element (difference 4)",
        r#"pattern p {
    skip to last z
    match (s0{0,2} followed by s1+ followed by s2 optional within 5ms) followed by (((s3+ greedy until u0 not followed by s4) within 6ms) or ((s5{2,4} greedy){1,2})) optional followed by z
    where
        s0: kind == "d"
        s1: kind == "a"
        s2: value > 1
        s3: kind == "a"
        s4: kind == "b"
        s5: kind == "c"
        z: kind == "d"
        u0: kind == "d"
}"#,
        &[(2, 'b', 1), (3, 'a', 4), (7, 'a', 2), (7, 'b', 2), (11, 'a', 2), (12, 'a', 3), (14, 'a', 4), (15, 'c', 0), (16, 'd', 0), (18, 'a', 1), (18, 'd', 1), (19, 'a', 1),],
    ),
    (
        37,
        "a greedy loop with `until` in a group that ends with a negation, right before the alternation (the restricted copy of a first state restricts its original)",
        r#"pattern p {
    skip past last event
    timeouts
    match (s0{2,} greedy until u0 not followed by s1) optional followed by (((s2 within 2ms){2,4} consecutive) or ((s3+))) within 56ms
    where
        s0: kind in ["b", "d"]
        s1: kind in ["d", "b"]
        s2: kind in ["d", "a"]
        s3: kind == "c"
        u0: kind == "b"
}"#,
        &[(0, 'a', 2), (1, 'b', 1), (1, 'd', 2), (3, 'd', 2), (5, 'a', 2), (6, 'a', 1), (8, 'a', 4), (10, 'd', 0), (11, 'd', 1), (12, 'c', 3), (14, 'd', 0), (14, 'd', 4),],
    ),
    (
        560,
        "a nested optional alternation: a `not` past the skipped alternation ends the partial match waiting in every branch",
        r#"pattern p {
    within 3ms
    skip to first s3
    timeouts
    match (((s0{1,2} within 2ms)) or ((s1) followed by any (((s2+)) or (y4)) optional)) not followed by s3
    where
        s0: kind == "d"
        s1: value > 2
        s2: kind == "c"
        s3: kind == "c"
        y4: kind == "a"
}"#,
        &[(0, 'c', 2), (0, 'a', 2), (0, 'd', 0), (4, 'b', 2), (5, 'a', 0), (6, 'c', 0), (8, 'c', 3), (10, 'c', 3), (10, 'a', 4),],
    ),
    (
        196,
        "the same, with a `not` after a group",
        r#"pattern p {
    within 7ms
    skip past last event
    match ((((s0{3,}){3,})) or ((s1) followed by (((s2 next (s3+ consecutive)+ consecutive not followed by s4)) or (y6)) optional)) within 7ms not followed by s5 within 3ms
    where
        s0: kind == "d"
        s1: kind == "a"
        s2: kind == "d"
        s3: kind in ["d", "b"]
        s4: kind in ["c", "a"]
        s5: kind == "a"
        y6: kind == "d"
}"#,
        &[(2, 'a', 0), (2, 'a', 0), (4, 'c', 4), (5, 'c', 2), (7, 'c', 2), (9, 'd', 4), (9, 'b', 2),],
    ),
    (
        697,
        "the same, with a skip strategy",
        r#"pattern p {
    within 5ms
    skip to first s8
    timeouts
    match (((s0{2} followed by s1 within 4ms next s2{2,} optional greedy){3,5}) or ((s3) followed by (((s4 optional followed by (s5+ consecutive until u0 not next s6) followed by any s7){2,}) or (y9)) optional)) within 5ms not followed by s8
    where
        s0: kind == "b"
        s1: kind == "a"
        s2: (kind == "b" and sum(s0.value) + value < 4)
        s3: value > 0
        s4: kind == "c"
        s5: (kind == "b" and sum(s0.value) + value < 7)
        s7: kind == "d"
        s8: kind == "d"
        y9: kind == "d"
        u0: kind == "b"
}"#,
        &[(1, 'c', 0), (2, 'a', 0), (2, 'a', 1), (3, 'c', 4), (4, 'c', 4), (5, 'd', 3),],
    ),
    (
        250,
        "a `not` after the alternation checked inside a branch with its own condition (one stop state per branch)",
        r#"pattern p {
    within 7ms
    skip to last s4
    timeouts
    match (((s0{3,} within 6ms){2,} until u0) or ((s1+ consecutive until u1 not followed by s2 within 4ms followed by any s3+ optional within 6ms){2,4} combinations)) within 7ms not followed by s4 not followed by s5
    where
        s0: value > 0
        s1: kind == "a"
        s2: (kind == "a" and value > s1.value)
        s3: value > 2
        s4: kind == "d"
        u0: kind == "d"
        u1: kind == "b"
}"#,
        &[(1, 'a', 4), (3, 'c', 1), (5, 'd', 0)],
    ),
];

#[test]
fn the_cases_the_property_test_found_agree() {
    for (seed, what, text, events) in CASES {
        if let Err(why) = compare_case(text, events) {
            panic!("seed {seed}, {what}:\n{why}");
        }
    }
}

/// Scratch: `ALT_CASE` names a file holding a pattern, a line `---`, and
/// events `ts kind value` a line (a debugging aid; nothing without it).
#[test]
fn scratch_case_from_a_file() {
    let Some(path) = std::env::var_os("ALT_CASE") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let (pattern, events) = text.split_once("---\n").unwrap();
    let events: Vec<(i64, char, i64)> = events
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                f[1].chars().next().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    match compare_case(pattern, &events) {
        Ok(()) => eprintln!("AGREE"),
        Err(why) => eprintln!("DISAGREE\n{why}"),
    }
}
