//! Shadow rules (issue 42, `docs/rule-lab.md`, "Shadow rules"): a pattern
//! marked `shadow` runs on the live input and writes its records to
//! `--shadow-output` only, the output being a run's without it; promoted
//! mid-stream by a `$rules` record (the same text without the mark), it
//! keeps its partial matches: its records from the promotion's point of
//! event time on are those of a run where it was live from the start, and
//! those before it are the shadow output's. On one engine, on workers,
//! and killed after a checkpoint and resumed.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{run_here, scratch};

/// The rule set: `watch` (the rule tried in shadow) and `steady` (a live
/// rule beside it).
pub(crate) const RULES: &str = r#"
pattern steady {
    partition by user
    within 3s
    match a followed by c
    where
        a: type == "a"
        c: type == "c"
}

/// The candidate.
pattern watch {
    partition by user
    within 8s
    timeouts
    shadow
    match a followed by b{2} followed by c
    where
        a: type == "a"
        b: type == "b"
        c: type == "c"
}
"#;

/// [`RULES`] with `watch` live: what a promotion puts in force.
fn promoted() -> String {
    RULES.replace("    shadow\n", "")
}

/// [`RULES`] without `watch`.
fn without_watch() -> String {
    RULES[..RULES.find("/// The candidate.").unwrap()].to_string()
}

/// `n` events of 8 users in strictly increasing time (steps of 1 to 400
/// ms), with a `$rules` record of `rules` after event `at`: the lines,
/// and the time of the last event before the record (the promotion's
/// point of event time: with `--max-delay 0ms` the watermark is one below
/// it, `docs/dynamic-rules.md`, "The switch point").
fn events(n: usize, at: usize, rules: &str) -> (String, i64) {
    let mut moments = crate::common::crash::Moments(0x005E_ED42);
    let mut next = move |m: u64| moments.next() % m;
    let (mut lines, mut ts, mut point) = (Vec::new(), 1_000i64, 0);
    for i in 0..n {
        ts += 1 + next(400) as i64;
        let user = format!("u{}", next(8));
        let kind = ["a", "b", "b", "c", "x"][next(5) as usize];
        lines.push(format!(
            r#"{{"ts":{ts},"user":"{user}","type":"{kind}","n":{i}}}"#
        ));
        if i + 1 == at {
            lines.push(serde_json::json!({ "$rules": rules }).to_string());
            point = ts;
        }
    }
    (lines.join("\n") + "\n", point)
}

/// `cepheid run rules.cep` in `dir` over its events, `--max-delay 0ms`,
/// rule changes from the stream, records to `out_NAME.jsonl`, with
/// `extra` flags.
pub(crate) fn run(dir: &Path, name: &str, extra: &[&str]) -> Command {
    let mut command = run_here(dir);
    command
        .args(["--max-delay", "0ms", "--rules-from-stream"])
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(extra);
    command
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

/// The lines of `file` in `dir`.
pub(crate) fn lines(dir: &Path, file: &str) -> Vec<String> {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

pub(crate) fn pattern_of(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["pattern"].as_str().unwrap().to_string()
}

/// A record's point of event time: a match's last event, a timeout's
/// expiry.
pub(crate) fn time_of(line: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v.get("expired_at")
        .or_else(|| v.get("end"))
        .and_then(serde_json::Value::as_i64)
        .unwrap()
}

fn start_of(line: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["start"].as_i64().unwrap()
}

fn of(lines: &[String], pattern: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| pattern_of(l) == pattern)
        .cloned()
        .collect()
}

#[cfg_attr(not(feature = "workers"), allow(dead_code))]
fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

#[test]
fn a_shadow_patterns_records_go_to_the_shadow_output_only() {
    let dir = scratch("shadow_only");
    // (a `$rules` record that changes nothing: the same set)
    let (text, _) = events(3000, 1500, RULES);
    fs::write(dir.join("events.jsonl"), &text).unwrap();
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    let shadowed = ok(run(&dir, "shadowed", &["--shadow-output", "shadow.jsonl"])
        .output()
        .unwrap());
    // The output is that of a run without the shadow pattern, byte for byte.
    fs::write(dir.join("rules.cep"), without_watch()).unwrap();
    let (plain, _) = events(3000, 1500, &without_watch());
    fs::write(dir.join("events.jsonl"), plain).unwrap();
    ok(run(&dir, "plain", &[]).output().unwrap());
    assert_eq!(
        fs::read(dir.join("out_shadowed.jsonl")).unwrap(),
        fs::read(dir.join("out_plain.jsonl")).unwrap()
    );
    // The shadow output is, line for line, what the pattern writes live
    // (no field added to its records).
    fs::write(dir.join("rules.cep"), promoted()).unwrap();
    let (live, _) = events(3000, 1500, &promoted());
    fs::write(dir.join("events.jsonl"), live).unwrap();
    ok(run(&dir, "live", &[]).output().unwrap());
    let shadow = lines(&dir, "shadow.jsonl");
    assert!(shadow.len() > 20, "{}", shadow.len());
    assert!(shadow.iter().any(|l| l.contains(r#""kind":"timeout""#)));
    assert_eq!(shadow, of(&lines(&dir, "out_live.jsonl"), "watch"));
    // The summary tells the shadow pattern apart.
    let err = stderr(&shadowed);
    assert!(
        err.contains(&format!(
            "cepheid: pattern `watch` (shadow): 3000 events reached it, {}, ",
            match of(&shadow, "watch")
                .iter()
                .filter(|l| l.contains(r#""kind":"match""#))
                .count()
            {
                1 => "1 match".to_string(),
                n => format!("{n} matches"),
            }
        )),
        "{err}"
    );
}

#[test]
fn a_shadow_pattern_without_a_shadow_output_is_refused() {
    let dir = scratch("shadow_refused");
    let (text, _) = events(100, 50, RULES);
    fs::write(dir.join("events.jsonl"), &text).unwrap();
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    let refused = run(&dir, "refused", &[]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(
            "pattern `watch` is a shadow pattern, and the run has no shadow output (--shadow-output)"
        ),
        "{}",
        stderr(&refused)
    );
    // A change of rules that brings one is refused, the old rules going on.
    fs::write(dir.join("rules.cep"), without_watch()).unwrap();
    let changed = ok(run(&dir, "changed", &[]).output().unwrap());
    assert!(
        stderr(&changed).contains(
            "refused: pattern `watch` is a shadow pattern, and the run has no shadow output (--shadow-output)"
        ),
        "{}",
        stderr(&changed)
    );
    // The shadow output is a file of its own.
    let same = run(&dir, "same", &["--shadow-output", "out_same.jsonl"])
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(2), "{}", stderr(&same));
    assert!(
        stderr(&same).contains(
            "--output out_same.jsonl and --shadow-output out_same.jsonl are the same file"
        ),
        "{}",
        stderr(&same)
    );
    // `-` is the output's place.
    let dash = run(&dir, "dash", &["--shadow-output", "-"])
        .output()
        .unwrap();
    assert_eq!(dash.status.code(), Some(2), "{}", stderr(&dash));
    // A shadow pattern may write a list: to its shadow copy, which
    // `explain` says (`tests/cli_shadow_lists.rs`).
    fs::write(
        dir.join("rules.cep"),
        "list seen\npattern w {\n    shadow\n    match a\n    where a: type == \"a\"\n    then add a.user to seen\n}\n",
    )
    .unwrap();
    let check = common::cepheid()
        .current_dir(&*dir)
        .args(["check", "rules.cep"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let explain = common::cepheid()
        .current_dir(&*dir)
        .args(["explain", "rules.cep"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&explain.stdout).into_owned();
    assert!(
        said.contains("its writes go to the lists' shadow copies, read by shadow rules only"),
        "{said}"
    );
}

/// The runs of a promotion: the shadow run (promoted by the `$rules`
/// record after event `at`) and the run where `watch` is live from the
/// start, both with `extra` flags; checks what the module says of them.
fn promotion(dir: &Path, extra: &[&str], order: fn(Vec<String>) -> Vec<String>) {
    let point = promotion_events(dir);
    let mut flags = vec!["--shadow-output", "shadow.jsonl"];
    flags.extend_from_slice(extra);
    let shadowed = ok(run(dir, "shadowed", &flags).output().unwrap());
    promoted_as_live(dir, point, &stderr(&shadowed), extra, order);
}

/// The events of a promotion (its `$rules` record after event 2600) and
/// the shadow rules, written in `dir`: the promotion's point of event
/// time.
fn promotion_events(dir: &Path) -> i64 {
    let (text, point) = events(4000, 2600, &promoted());
    fs::write(dir.join("events.jsonl"), &text).unwrap();
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    point
}

/// After the shadow run of [`promotion_events`] wrote `out_shadowed.jsonl`
/// and `shadow.jsonl` (saying `said`): a run with `watch` live from the
/// start (with `extra` flags) gives the same records of `steady`, those of
/// `watch` from `point` on, and the shadow output those before.
fn promoted_as_live(
    dir: &Path,
    point: i64,
    said: &str,
    extra: &[&str],
    order: fn(Vec<String>) -> Vec<String>,
) {
    assert!(
        said.contains("watch: promoted (its partial matches kept; every record it emits from here on goes to the output"),
        "{said}"
    );
    fs::write(dir.join("rules.cep"), promoted()).unwrap();
    ok(run(dir, "live", extra).output().unwrap());
    let out = lines(dir, "out_shadowed.jsonl");
    let live = lines(dir, "out_live.jsonl");
    // The live rule beside it: the same records.
    assert_eq!(order(of(&out, "steady")), order(of(&live, "steady")));
    // The promoted rule: from the promotion's point of event time on, the
    // live run's records; before it, in the shadow output.
    let after: Vec<String> = (of(&live, "watch").into_iter())
        .filter(|l| time_of(l) >= point)
        .collect();
    let before: Vec<String> = (of(&live, "watch").into_iter())
        .filter(|l| time_of(l) < point)
        .collect();
    assert!(
        after.len() > 10 && before.len() > 10,
        "{after:?} {before:?}"
    );
    assert_eq!(order(of(&out, "watch")), order(after.clone()));
    assert_eq!(order(lines(dir, "shadow.jsonl")), order(before));
    // Sequences under way at the promotion: their first events were
    // matched by the shadow rule, their last by the promoted one.
    assert!(
        after.iter().any(|l| start_of(l) < point),
        "no match spans the promotion: {after:?}"
    );
}

#[test]
fn a_promoted_shadow_rule_fires_as_if_it_had_been_live_from_the_start() {
    let dir = scratch("shadow_promoted");
    promotion(&dir, &[], |lines| lines);
}

#[cfg(feature = "workers")]
#[test]
fn a_promoted_shadow_rule_on_workers_fires_as_if_it_had_been_live_from_the_start() {
    let dir = scratch("shadow_promoted_workers");
    // (workers write the records of their keys in their order)
    promotion(&dir, &["--workers", "2", "--chunk-bytes", "65536"], sorted);
}

#[cfg(feature = "workers")]
#[test]
fn a_promoted_shadow_rule_on_two_processes_fires_as_if_it_had_been_live_from_the_start() {
    let dir = scratch("shadow_promoted_processes");
    let point = promotion_events(&dir);
    let outputs = common::run_two_processes(&dir, |_| {
        let mut command = run(&dir, "shadowed", &["--shadow-output", "shadow.jsonl"]);
        command.args(["--workers", "2", "--chunk-bytes", "65536"]);
        command
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
    }
    // (process 0 writes the records and says the changes)
    promoted_as_live(&dir, point, &stderr(&outputs[0]), &[], sorted);
    let summary = stderr(&outputs[0]);
    assert!(
        summary.contains("cepheid: pattern `watch`: 4000 events"),
        "{summary}"
    );
}

/// With a checkpoint every `every` events, killed after the first
/// (`CEPHEID_TEST_KILL_AFTER_CHECKPOINT`) and resumed: the outputs of a
/// run never interrupted, byte for byte (sorted on workers); the resumed
/// run's standard error.
fn killed_and_resumed(
    dir: &Path,
    every: &str,
    extra: &[&str],
    order: fn(Vec<String>) -> Vec<String>,
) -> String {
    let (text, _) = events(4000, 2600, &promoted());
    fs::write(dir.join("events.jsonl"), &text).unwrap();
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    run_killed_and_resumed(dir, every, extra, order)
}

/// The rules and events in `dir` run whole, then killed after a
/// checkpoint (`--checkpoint-every every`) and resumed, with `extra`
/// flags: both outputs (live and shadow, each in `order`) are the whole
/// run's. Returns the resumed run's standard error.
pub(crate) fn run_killed_and_resumed(
    dir: &Path,
    every: &str,
    extra: &[&str],
    order: fn(Vec<String>) -> Vec<String>,
) -> String {
    let mut whole = vec!["--shadow-output", "shadow_whole.jsonl"];
    whole.extend_from_slice(extra);
    ok(run(dir, "whole", &whole).output().unwrap());
    let mut flags = vec![
        "--shadow-output",
        "shadow_killed.jsonl",
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        every,
    ];
    flags.extend_from_slice(extra);
    let killed = run(dir, "killed", &flags)
        .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1")
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{}", stderr(&killed));
    let resumed = ok(run(dir, "killed", &flags).output().unwrap());
    assert!(
        stderr(&resumed).contains("resuming from checkpoint"),
        "{}",
        stderr(&resumed)
    );
    for (a, b) in [
        ("out_whole.jsonl", "out_killed.jsonl"),
        ("shadow_whole.jsonl", "shadow_killed.jsonl"),
    ] {
        let (a, b) = (lines(dir, a), lines(dir, b));
        assert!(!a.is_empty());
        assert_eq!(order(a), order(b));
    }
    stderr(&resumed)
}

/// The line a resumed run of one engine goes on from.
fn resumed_line(stderr: &str) -> usize {
    let at = stderr.find("at line ").expect(stderr) + "at line ".len();
    let digits: String = stderr[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn killed_before_the_promotion_and_resumed_the_records_are_the_same() {
    let dir = scratch("shadow_killed_before");
    let resumed = killed_and_resumed(&dir, "500", &[], |lines| lines);
    // (the promotion's record is line 2601)
    assert!(resumed_line(&resumed) < 2601, "{resumed}");
    assert!(
        resumed.contains("watch: promoted (its partial matches kept; every record it emits from here on goes to the output"),
        "{resumed}"
    );
}

#[test]
fn killed_after_the_promotion_and_resumed_the_records_are_the_same() {
    let dir = scratch("shadow_killed_after");
    // (the first checkpoint past the promotion's record: the rules in
    // force, the promoted ones, go on)
    let resumed = killed_and_resumed(&dir, "2700", &[], |lines| lines);
    assert!(resumed_line(&resumed) > 2601, "{resumed}");
    assert!(!resumed.contains("promoted"), "{resumed}");
}

#[cfg(feature = "workers")]
#[test]
fn on_workers_killed_before_the_promotion_and_resumed_the_records_are_the_same() {
    // On workers the cut is taken where the workers are when it is
    // asked (a checkpoint every 100 events), which on a loaded machine
    // can be past the promotion's line 2601: then the run resumes after
    // it and does not cover this case. The records must be the same at
    // every try; a try whose cut came too late is made again, up to 5.
    for attempt in 0..5 {
        let dir = scratch(&format!("shadow_killed_workers_{attempt}"));
        let resumed = killed_and_resumed(&dir, "100", &["--workers", "2"], sorted);
        if resumed.contains("watch: promoted (its partial matches kept; every record it emits from here on goes to the output") {
            return;
        }
    }
    panic!("in 5 tries the workers' first cut was always past the promotion");
}

#[cfg(feature = "workers")]
#[test]
fn on_workers_killed_after_the_promotion_and_resumed_the_records_are_the_same() {
    let dir = scratch("shadow_killed_workers_after");
    let resumed = killed_and_resumed(&dir, "2700", &["--workers", "2"], sorted);
    assert!(!resumed.contains("promoted"), "{resumed}");
}

/// `cepheid diff` and `backtest` count a shadow rule's records as its
/// alerts (those a run writes to its shadow output).
#[test]
fn the_lab_counts_a_shadow_rules_records() {
    let dir = scratch("shadow_lab");
    // (no `$rules` record: 0 is after no event)
    let (text, _) = events(2000, 0, RULES);
    fs::write(dir.join("events.jsonl"), &text).unwrap();
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("old.cep"), without_watch()).unwrap();
    ok(run(&dir, "run", &["--shadow-output", "shadow.jsonl"])
        .output()
        .unwrap());
    let shadow = lines(&dir, "shadow.jsonl");
    let diff = ok(common::cepheid()
        .current_dir(&*dir)
        .args([
            "diff",
            "old.cep",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--json",
        ])
        .output()
        .unwrap());
    let diff: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    let watch = (diff["patterns"].as_array().unwrap().iter())
        .find(|p| p["pattern"] == "watch")
        .unwrap();
    assert_eq!(watch["rule"], "added");
    assert_eq!(watch["new_only"].as_u64(), Some(shadow.len() as u64));
    let backtest = ok(common::cepheid()
        .current_dir(&*dir)
        .args([
            "backtest",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--json",
        ])
        .output()
        .unwrap());
    let backtest: serde_json::Value = serde_json::from_slice(&backtest.stdout).unwrap();
    let watch = (backtest["patterns"].as_array().unwrap().iter())
        .find(|p| p["pattern"] == "watch")
        .unwrap();
    let matches = shadow
        .iter()
        .filter(|l| l.contains(r#""kind":"match""#))
        .count();
    assert_eq!(watch["alerts"].as_u64(), Some(matches as u64));
}
