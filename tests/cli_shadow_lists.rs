//! Shadow copies of lists (issue 42, `docs/semantics.md`, "Shadow
//! rules"): a shadow rule's `then` writes go to the list's shadow copy,
//! which the shadow rules read and the live rules never do. The live
//! rules' records are those of a run without the shadow rules; the shadow
//! rules' are those they make live; a promotion moves nothing into the
//! list; one engine, `--workers 2` and a run killed after a checkpoint
//! and resumed give the same records.

use crate::common;

use std::fs;
use std::path::Path;

use crate::cli_shadow::{lines, ok, pattern_of, run, stderr, time_of};
use common::scratch;

/// A confirmed fraud blocks a device (live); the candidate rule, tried in
/// shadow, blocks the device of a login followed by two failures; one
/// live and one shadow rule read the list; a shadow rule reads and writes
/// a list of its own (a device's first login in 3 s).
const RULES: &str = r#"
list blocked for 5s
list seen for 3s

pattern fraud {
    partition by user
    within 2s
    match pay followed by chargeback
    where
        pay: type == "pay"
        chargeback: type == "chargeback"
    then add pay.device to blocked
}

pattern blocked_login {
    partition by user
    match l
    where l: type == "login" and device in blocked
}

pattern failures {
    partition by user
    within 2s
    shadow
    match l followed by f{2}
    where
        l: type == "login"
        f: type == "fail"
    then add l.device to blocked for 4s
}

pattern shadow_blocked_login {
    partition by user
    shadow
    match l
    where l: type == "login" and device in blocked
}

pattern first_login {
    partition by user
    shadow
    match l
    where l: type == "login" and not (device in seen)
    then add l.device to seen
}
"#;

/// [`RULES`] without its shadow rules.
fn without_shadow() -> String {
    RULES
        .split("\npattern ")
        .filter(|p| !p.contains("    shadow\n"))
        .collect::<Vec<_>>()
        .join("\npattern ")
}

/// [`RULES`] with every rule live.
fn all_live() -> String {
    RULES.replace("    shadow\n", "")
}

/// `n` events of 8 users and 6 devices in strictly increasing time (steps
/// of 1 to 300 ms), with a `$rules` record of `rules` after event `at`
/// (if any): the lines, and the time of the last event before the record.
fn events(n: usize, change: Option<(usize, &str)>) -> (String, i64) {
    let mut moments = crate::common::crash::Moments(0x0051_57ED);
    let mut next = move |m: u64| moments.next() % m;
    let (mut lines, mut ts, mut point) = (Vec::new(), 1_000i64, 0);
    for i in 0..n {
        ts += 1 + next(300) as i64;
        let user = format!("u{}", next(8));
        let device = format!("d{}", next(6));
        let kind = ["login", "login", "fail", "fail", "pay", "chargeback", "x"][next(7) as usize];
        lines.push(format!(
            r#"{{"ts":{ts},"user":"{user}","device":"{device}","type":"{kind}","n":{i}}}"#
        ));
        if let Some((_, rules)) = change.filter(|&(at, _)| at == i + 1) {
            lines.push(serde_json::json!({ "$rules": rules }).to_string());
            point = ts;
        }
    }
    (lines.join("\n") + "\n", point)
}

/// The records of `pattern` among `lines`.
fn of(lines: &[String], pattern: &str) -> Vec<String> {
    (lines.iter())
        .filter(|l| pattern_of(l) == pattern)
        .cloned()
        .collect()
}

#[cfg(feature = "workers")]
fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// The events (no change of rules) and [`RULES`] written in `dir`.
fn setup(dir: &Path, n: usize) {
    fs::write(dir.join("events.jsonl"), events(n, None).0).unwrap();
    fs::write(dir.join("rules.cep"), RULES).unwrap();
}

/// The live rules' records are byte for byte those of a run without the
/// shadow rules, though a shadow rule writes the list a live rule reads;
/// the shadow rules' records are those they make when live (the shadow
/// one reading the list sees the candidate's writes, and the rule reading
/// what it writes its own); on `extra` flags too (sorted: workers write
/// the records of their keys in their order).
fn shadow_writes_reach_the_shadow_rules_only(
    dir: &Path,
    extra: &[&str],
    order: fn(Vec<String>) -> Vec<String>,
) {
    setup(dir, 4000);
    let mut flags = vec!["--shadow-output", "shadow.jsonl"];
    flags.extend_from_slice(extra);
    ok(run(dir, "mixed", &flags).output().unwrap());
    fs::write(dir.join("rules.cep"), without_shadow()).unwrap();
    ok(run(dir, "without", extra).output().unwrap());
    fs::write(dir.join("rules.cep"), all_live()).unwrap();
    ok(run(dir, "live", extra).output().unwrap());
    let (mixed, without, live) = (
        lines(dir, "out_mixed.jsonl"),
        lines(dir, "out_without.jsonl"),
        lines(dir, "out_live.jsonl"),
    );
    // The live rules: the run without the shadow rules, byte for byte.
    assert!(of(&mixed, "blocked_login").len() > 10, "{mixed:?}");
    assert_eq!(order(mixed.clone()), order(without));
    // The shadow rules: what they make live.
    let shadow = lines(dir, "shadow.jsonl");
    for pattern in ["failures", "shadow_blocked_login", "first_login"] {
        assert!(of(&shadow, pattern).len() > 10, "no {pattern}");
        assert_eq!(
            order(of(&shadow, pattern)),
            order(of(&live, pattern)),
            "{pattern}"
        );
    }
    // The candidate's writes change what a rule reading the list sees:
    // in shadow for the shadow rule only, live for both.
    assert!(of(&shadow, "shadow_blocked_login").len() > of(&mixed, "blocked_login").len());
    assert_eq!(
        of(&live, "blocked_login").len(),
        of(&live, "shadow_blocked_login").len()
    );
}

#[test]
fn a_shadow_rules_list_writes_reach_the_shadow_rules_only() {
    let dir = scratch("shadow_lists");
    shadow_writes_reach_the_shadow_rules_only(&dir, &[], |lines| lines);
}

#[cfg(feature = "workers")]
#[test]
fn a_shadow_rules_list_writes_reach_the_shadow_rules_only_on_workers() {
    let dir = scratch("shadow_lists_workers");
    shadow_writes_reach_the_shadow_rules_only(
        &dir,
        &["--workers", "2", "--chunk-bytes", "16384"],
        sorted,
    );
}

/// One engine, `--workers 2` and `--processes 2` (the shadow writes
/// carried between processes) give the same records and shadow records.
#[cfg(feature = "workers")]
#[test]
fn shadow_copies_on_workers_give_one_engine_s_records() {
    let dir = scratch("shadow_lists_one_and_two");
    setup(&dir, 4000);
    ok(run(&dir, "one", &["--shadow-output", "shadow_one.jsonl"])
        .output()
        .unwrap());
    ok(run(
        &dir,
        "two",
        &[
            "--shadow-output",
            "shadow_two.jsonl",
            "--workers",
            "2",
            "--chunk-bytes",
            "16384",
        ],
    )
    .output()
    .unwrap());
    for (a, b) in [
        ("out_one.jsonl", "out_two.jsonl"),
        ("shadow_one.jsonl", "shadow_two.jsonl"),
    ] {
        let (a, b) = (lines(&dir, a), lines(&dir, b));
        assert!(a.len() > 10);
        assert!(sorted(a) == sorted(b), "--workers 2 gave other records");
    }
    let outs = common::run_two_processes(&dir, |process| {
        let name = if process == 0 { "p2" } else { "p2-1" };
        let shadow = format!("shadow_{name}.jsonl");
        let mut command = run(&dir, name, &["--chunk-bytes", "16384"]);
        command.args(["--shadow-output", &shadow]);
        command
    });
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    for (a, b) in [
        ("out_one.jsonl", "out_p2.jsonl"),
        ("shadow_one.jsonl", "shadow_p2.jsonl"),
    ] {
        let (a, b) = (lines(&dir, a), lines(&dir, b));
        assert!(sorted(a) == sorted(b), "--processes 2 gave other records");
    }
}

/// The rules of the promotion: `first_login` of [`RULES`] alone, which
/// reads the list it writes.
const FIRST: &str = r#"
list seen for 10s

pattern first_login {
    partition by user
    shadow
    match l
    where l: type == "login" and not (device in seen)
    then add l.device to seen
}
"#;

/// Promoted mid-stream (`docs/semantics.md`, "Shadow rules", "A promoted
/// rule's writes"): what the rule wrote in shadow stays in the shadow
/// copy, and it reads the list from the promotion's point of event time
/// `P` on, so its records from `P` on are those of a run where it is live
/// from `P` on over an empty list (the events from `P` on), not those of
/// a run where it was live from the start: it fires again on devices it
/// added in shadow. Its records before `P` are the shadow output's, those
/// a run where it was live from the start makes before `P`.
#[test]
fn a_promoted_rule_writes_the_list_from_the_promotion_on_and_its_shadow_writes_stay_apart() {
    let dir = scratch("shadow_lists_promoted");
    promotion(&dir, &[], |lines| lines);
}

#[cfg(feature = "workers")]
#[test]
fn on_workers_a_promoted_rule_writes_the_list_from_the_promotion_on() {
    let dir = scratch("shadow_lists_promoted_workers");
    promotion(&dir, &["--workers", "2", "--chunk-bytes", "16384"], sorted);
}

/// The runs and checks of the promotion, with `extra` flags.
fn promotion(dir: &Path, extra: &[&str], order: fn(Vec<String>) -> Vec<String>) {
    let dir = dir.to_path_buf();
    let promoted = FIRST.replace("    shadow\n", "");
    let (text, point) = events(3000, Some((2000, &promoted)));
    fs::write(dir.join("events.jsonl"), &text).unwrap();
    fs::write(dir.join("rules.cep"), FIRST).unwrap();
    let mut flags = vec!["--shadow-output", "shadow.jsonl"];
    flags.extend_from_slice(extra);
    let shadowed = ok(run(&dir, "shadowed", &flags).output().unwrap());
    assert!(
        stderr(&shadowed).contains("first_login: promoted (its partial matches kept; every record it emits from here on goes to the output"),
        "{}",
        stderr(&shadowed)
    );
    // Live from the start.
    fs::write(dir.join("rules.cep"), &promoted).unwrap();
    ok(run(&dir, "live", extra).output().unwrap());
    // Live from `P` on: the events from `P` on (the last event before the
    // change is at `P`).
    let from_p: String = (text.lines())
        .filter(|l| !l.contains("$rules"))
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["ts"].as_i64().unwrap() >= point
        })
        .map(|l| l.to_string() + "\n")
        .collect();
    fs::write(dir.join("events.jsonl"), from_p).unwrap();
    ok(run(&dir, "from_p", extra).output().unwrap());
    let out = lines(&dir, "out_shadowed.jsonl");
    let live = lines(&dir, "out_live.jsonl");
    let before: Vec<String> = (live.iter())
        .filter(|l| time_of(l) < point)
        .cloned()
        .collect();
    assert!(before.len() > 10);
    assert_eq!(order(lines(&dir, "shadow.jsonl")), order(before));
    assert!(out.iter().all(|l| time_of(l) >= point));
    assert_eq!(order(out.clone()), order(lines(&dir, "out_from_p.jsonl")));
    // The effect said: after the promotion it fires on devices it had
    // added in shadow, where the rule live from the start does not.
    let after: Vec<String> = (live.iter())
        .filter(|l| time_of(l) >= point)
        .cloned()
        .collect();
    let again: Vec<&String> = out.iter().filter(|l| !after.contains(l)).collect();
    assert!(!again.is_empty(), "no record tells the copies apart");
}

/// Killed after a checkpoint (entries held in the shadow copies, writes
/// waiting) and resumed: the outputs of a run never interrupted (sorted
/// on workers).
fn killed_and_resumed(dir: &Path, extra: &[&str], order: fn(Vec<String>) -> Vec<String>) {
    setup(dir, 4000);
    crate::cli_shadow::run_killed_and_resumed(dir, "1500", extra, order);
}

#[test]
fn killed_with_shadow_entries_held_and_resumed_the_records_are_the_same() {
    let dir = scratch("shadow_lists_killed");
    killed_and_resumed(&dir, &[], |lines| lines);
}

#[cfg(feature = "workers")]
#[test]
fn on_workers_killed_with_shadow_entries_held_and_resumed_the_records_are_the_same() {
    let dir = scratch("shadow_lists_killed_workers");
    killed_and_resumed(&dir, &["--workers", "2"], sorted);
}

/// `/metrics` and `/status.json` count the shadow copies apart: a list
/// only a shadow rule writes holds no entry, its copy some
/// (`cepheid_list_shadow_entries`), and the shadow writes are counted in
/// `cepheid_list_shadow_changes_total`.
#[cfg(feature = "metrics")]
#[test]
fn the_metrics_count_the_shadow_copies_apart() {
    use crate::cli_metrics::{address, get, value};
    use std::time::{Duration, Instant};
    let dir = scratch("shadow_lists_metrics");
    setup(&dir, 2000);
    let live = common::Live::spawn(run(&dir, "metrics", &[]).args([
        "--shadow-output",
        "shadow.jsonl",
        "--follow",
        "--metrics",
        "127.0.0.1:0",
    ]));
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let deadline = Instant::now() + common::PATIENCE;
    let text = loop {
        let (_, text) = get(addr, "/metrics");
        if value(&text, "cepheid_list_shadow_changes_total").is_some_and(|v| v > 100.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "no shadow write counted: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        value(&text, "cepheid_list_entries{list=\"seen\"}"),
        Some(0.0),
        "{text}"
    );
    assert!(
        value(&text, "cepheid_list_shadow_entries").is_some_and(|v| v > 0.0),
        "{text}"
    );
    let (_, status) = get(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    let memory = &status["run"]["memory"];
    assert!(
        memory["shadow_entries"].as_u64().is_some_and(|n| n > 0),
        "{memory}"
    );
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}
