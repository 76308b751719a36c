//! Where a promoted (or shadowed) rule's records go around the switch
//! point `P` (issue 60, item 14; `docs/rule-lab.md`, "Shadow rules"): the
//! mark in force when a record is emitted decides. Every record the rule
//! emits from `P` on (at an event or a deadline of time `P` or later)
//! goes to the new mark's output, the ones whose last event came before
//! `P` included: a match completed by a deadline after `P` (a pattern
//! ending in `not followed by`), a complete match a skip strategy held
//! back until after `P`. Those emitted before `P` go to the old mark's.
//! Each record goes to one file: the two files together are the records
//! of the run where the rule was live from the start, nothing lost or
//! doubled. Pinned record by record, on one engine and on workers.

use crate::common;

use std::fs;
use std::path::Path;

use common::run_here;

/// Two shadow rules: `unpaid` completes when its window closes (a
/// deadline, 100 ms after the order); `either`, under `skip to next`,
/// holds a complete match back while a partial match that started
/// before it is alive (`docs/semantics.md`, alternation).
const RULES: &str = r#"
pattern unpaid {
    partition by order
    within 100ms
    shadow
    match created not followed by paid
    where
        created: type == "created"
        paid: type == "paid"
}

pattern either {
    partition by user
    within 1s
    skip to next
    shadow
    match (a followed by c) or (b followed by d)
    where
        a: type == "a"
        b: type == "b"
        c: type == "c"
        d: type == "d"
}
"#;

fn live() -> String {
    RULES.replace("    shadow\n", "")
}

fn event(ts: i64, kind: &str, user: &str, order: &str) -> String {
    format!(r#"{{"ts":{ts},"user":"{user}","order":"{order}","type":"{kind}"}}"#)
}

/// The stream, with a `$rules` record of `rules` after the event at 150
/// (the switch point `P` = 150 with `--max-delay 0ms`): order `o0`'s
/// window closes at 101 (before `P`), `o1`'s at 230 (after); `b d`
/// completes at 30 and is held back behind `a` (10) until `c` (200).
fn events(rules: &str) -> String {
    let lines = [
        event(1, "created", "u0", "o0"),
        event(10, "a", "u1", "-"),
        event(20, "b", "u1", "-"),
        event(30, "d", "u1", "-"),
        event(120, "tick", "u0", "-"),
        event(130, "created", "u0", "o1"),
        event(150, "tick", "u0", "-"),
        serde_json::json!({ "$rules": rules }).to_string(),
        event(200, "c", "u1", "-"),
        event(300, "tick", "u0", "-"),
    ];
    lines.join("\n") + "\n"
}

/// Each record of `file` in `dir` as (pattern, start, end), sorted.
fn records(dir: &Path, file: &str) -> Vec<(String, i64, i64)> {
    let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
    let mut records: Vec<_> = (text.lines())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| {
            let pattern = r["pattern"].as_str().unwrap().to_string();
            (
                pattern,
                r["start"].as_i64().unwrap(),
                r["end"].as_i64().unwrap(),
            )
        })
        .collect();
    records.sort();
    records
}

fn record(pattern: &str, start: i64, end: i64) -> (String, i64, i64) {
    (pattern.to_string(), start, end)
}

/// `cepheid run` of `rules` over [`events`] switching to `then`, with
/// `flags`: its output and shadow output, and what it said.
fn switched(
    name: &str,
    (rules, then): (&str, &str),
    flags: &[&str],
) -> [Vec<(String, i64, i64)>; 3] {
    let dir = common::scratch(name);
    fs::write(dir.join("rules.cep"), rules).unwrap();
    fs::write(dir.join("events.jsonl"), events(then)).unwrap();
    let out = run_here(&dir)
        .args(["--max-delay", "0ms", "--rules-from-stream"])
        .args(["--output", "out.jsonl", "--shadow-output", "shadow.jsonl"])
        .args(flags)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let (switch, mark) = match then == RULES {
        true => ("shadowed", "shadow output"),
        false => ("promoted", "output"),
    };
    let said = format!(
        "unpaid: {switch} (its partial matches kept; every record it emits from here on goes to the {mark}, one whose last event came before included)"
    );
    assert!(stderr.contains(&said), "{said:?} not in {stderr}");
    // The run where the rules are live from the start: the two files
    // together, nothing lost or doubled.
    fs::write(dir.join("rules.cep"), live()).unwrap();
    fs::write(dir.join("events.jsonl"), events(&live())).unwrap();
    let all = run_here(&dir)
        .args(["--max-delay", "0ms", "--rules-from-stream"])
        .args(["--output", "all.jsonl"])
        .args(flags)
        .output()
        .unwrap();
    assert!(all.status.success());
    [
        records(&dir, "out.jsonl"),
        records(&dir, "shadow.jsonl"),
        records(&dir, "all.jsonl"),
    ]
}

/// Promoted at 150: `o0` (completed at 101) stays in the shadow output;
/// `o1` (last event 130, completed at 230), `b d` (last event 30, held
/// back until 200) and `a c` go to the output.
fn promoted(name: &str, flags: &[&str]) {
    let [out, shadow, all] = switched(name, (RULES, &live()), flags);
    assert_eq!(
        out,
        vec![
            record("either", 10, 200),
            record("either", 20, 30),
            record("unpaid", 130, 130),
        ]
    );
    assert_eq!(shadow, vec![record("unpaid", 1, 1)]);
    let mut both = [out, shadow].concat();
    both.sort();
    assert_eq!(both, all);
}

/// The reverse, the mark given at 150: the same split, the other way.
fn shadowed(name: &str, flags: &[&str]) {
    let [out, shadow, all] = switched(name, (&live(), RULES), flags);
    assert_eq!(out, vec![record("unpaid", 1, 1)]);
    assert_eq!(
        shadow,
        vec![
            record("either", 10, 200),
            record("either", 20, 30),
            record("unpaid", 130, 130),
        ]
    );
    let mut both = [out, shadow].concat();
    both.sort();
    assert_eq!(both, all);
}

#[test]
fn a_promoted_rules_records_emitted_after_the_switch_go_to_the_output() {
    promoted("switch_promoted", &[]);
    shadowed("switch_shadowed", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_promoted_rules_records_emitted_after_the_switch_go_to_the_output_on_workers() {
    promoted("switch_promoted_w", &["--workers", "2"]);
    shadowed("switch_shadowed_w", &["--workers", "2"]);
}
