//! `cepheid diff OLD NEW --events FILE` (issue 42): the alerts only one
//! rule set raises, per pattern, both ways; a set against itself gives
//! none; after one change the alerts listed are exactly those by which a
//! run of each set differs; a pattern whose text did not change is listed
//! when a rule that did changes what it reads.

use crate::common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use common::{cepheid, scratch};

const RULES: &str = r#"
list watched
pattern flag {
    match a
    where a: type == "bad"
    then add a.user to watched
}
pattern hit {
    partition by user
    match a
    where a: type == "pay" and user in watched
}
pattern pair {
    partition by user
    within 3s
    match a followed by b
    where a: type == "login"
          b: type == "pay"
}
"#;

/// 600 events of 4 users, one every 250 ms (a user's every second), of
/// types drawn from a fixed sequence.
fn events() -> String {
    let types = ["login", "pay", "bad", "pay", "browse", "login"];
    let mut state = 0x5eed_u64;
    (0..600)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let kind = types[((state >> 33) % 6) as usize];
            format!(
                "{{\"ts\":{},\"user\":\"u{}\",\"type\":\"{kind}\"}}\n",
                i * 250,
                i % 4
            )
        })
        .collect()
}

/// The records of `cepheid run RULES` over the events, by identity (the
/// record without `reads`), counted.
fn run_records(dir: &Path, rules: &str) -> HashMap<String, i64> {
    let out = cepheid()
        .current_dir(dir)
        .args(["run", rules, "--events", "e.jsonl", "--no-progress"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        *counts.entry(identity(line)).or_insert(0) += 1;
    }
    counts
}

fn identity(line: &str) -> String {
    let mut record: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).unwrap();
    record.remove("reads");
    let sorted: std::collections::BTreeMap<_, _> = record.into_iter().collect();
    serde_json::to_string(&sorted).unwrap()
}

/// `cepheid diff OLD NEW --events e.jsonl --json` in `dir`.
fn diff(dir: &Path, old: &str, new: &str) -> serde_json::Value {
    let out = cepheid()
        .current_dir(dir)
        .args(["diff", old, new, "--events", "e.jsonl", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_rule_set_against_itself_differs_in_nothing() {
    let dir = scratch("diff-same");
    fs::write(dir.join("old.cep"), RULES).unwrap();
    fs::write(dir.join("e.jsonl"), events()).unwrap();
    let report = diff(&dir, "old.cep", "old.cep");
    assert_eq!(report["patterns"], serde_json::json!([]), "{report}");
    assert!(report["old"]["records"].as_u64().unwrap() > 50, "{report}");
    let text = cepheid()
        .current_dir(&dir)
        .args(["diff", "old.cep", "old.cep", "--events", "e.jsonl"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout)
        .contains("no difference: every alert is raised by both"));
}

#[test]
fn the_alerts_listed_are_exactly_those_by_which_the_two_runs_differ() {
    let dir = scratch("diff-window");
    fs::write(dir.join("old.cep"), RULES).unwrap();
    // One window changed, and a written list's writer changed: `hit`'s
    // text is the same, its alerts are not.
    let new = RULES.replace("within 3s", "within 1500ms").replace(
        "a: type == \"bad\"",
        "a: type == \"bad\" and user != \"u0\"",
    );
    fs::write(dir.join("new.cep"), new).unwrap();
    fs::write(dir.join("e.jsonl"), events()).unwrap();
    let (old_run, new_run) = (run_records(&dir, "old.cep"), run_records(&dir, "new.cep"));
    let report = diff(&dir, "old.cep", "new.cep");
    let mut listed: HashMap<(String, bool), HashMap<String, i64>> = HashMap::new();
    for p in report["patterns"].as_array().unwrap() {
        let name = p["pattern"].as_str().unwrap().to_string();
        for (key, old_side) in [("old_only_records", true), ("new_only_records", false)] {
            for record in p[key].as_array().unwrap() {
                let counts = listed.entry((name.clone(), old_side)).or_default();
                *counts.entry(identity(&record.to_string())).or_insert(0) += 1;
            }
        }
    }
    // What each run raised more than the other, per pattern.
    let mut expected: HashMap<(String, bool), HashMap<String, i64>> = HashMap::new();
    for (mine, theirs, old_side) in [(&old_run, &new_run, true), (&new_run, &old_run, false)] {
        for (id, n) in mine {
            let more = n - theirs.get(id).copied().unwrap_or(0);
            if more > 0 {
                let record: serde_json::Value = serde_json::from_str(id).unwrap();
                let name = record["pattern"].as_str().unwrap().to_string();
                expected
                    .entry((name, old_side))
                    .or_default()
                    .insert(id.clone(), more);
            }
        }
    }
    assert_eq!(listed, expected);
    let rule = |name: &str| {
        (report["patterns"].as_array().unwrap().iter())
            .find(|p| p["pattern"] == name)
            .map(|p| p["rule"].clone())
    };
    assert_eq!(rule("pair"), Some("changed".into()), "{report}");
    assert_eq!(rule("flag"), Some("changed".into()), "{report}");
    assert_eq!(rule("hit"), Some("same text".into()), "{report}");
    // The cause named (issue 60, item 7): the list it reads, and the
    // rule that writes it, which changed.
    let hit = (report["patterns"].as_array().unwrap().iter())
        .find(|p| p["pattern"] == "hit")
        .unwrap();
    assert_eq!(
        hit["cause"],
        "through what it reads that changed: list `watched` (`flag`, which writes it, changed)",
        "{report}"
    );
    assert!(
        expected.contains_key(&("hit".to_string(), true)),
        "the list's writer changed hit's alerts"
    );
    assert!(
        expected.contains_key(&("pair".to_string(), true)),
        "a narrower window loses pairs"
    );
}

#[cfg(feature = "workers")]
#[test]
fn on_workers_the_diff_counts_are_one_engines() {
    let dir = scratch("diff-workers");
    // (no rule writes a list: workers refuse that)
    let rules = format!(
        "list watched\n{}",
        &RULES[RULES.find("pattern hit").unwrap()..]
    );
    fs::write(dir.join("old.cep"), &rules).unwrap();
    fs::write(
        dir.join("new.cep"),
        rules.replace("within 3s", "within 1500ms"),
    )
    .unwrap();
    fs::write(dir.join("e.jsonl"), events()).unwrap();
    let counts = |extra: &[&str]| {
        let out = cepheid()
            .current_dir(&dir)
            .args([
                "diff", "old.cep", "new.cep", "--events", "e.jsonl", "--json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut counts: Vec<(String, u64, u64, u64)> =
            (report["patterns"].as_array().unwrap().iter())
                .map(|p| {
                    (
                        p["pattern"].as_str().unwrap().to_string(),
                        p["old_only"].as_u64().unwrap(),
                        p["new_only"].as_u64().unwrap(),
                        p["both"].as_u64().unwrap(),
                    )
                })
                .collect();
        counts.sort();
        counts
    };
    let one = counts(&[]);
    assert!(!one.is_empty());
    assert_eq!(counts(&["--workers", "2"]), one);
}

#[test]
fn no_events_keeps_the_events_values_out_of_the_diff() {
    use crate::cli_backtest_html::{events, RULES, SECRET};
    let dir = scratch("diff_no_events");
    fs::write(dir.join("old.cep"), RULES).unwrap();
    // `pair` within 500 ms: its alert (1 s) gone, every hit a timeout.
    fs::write(
        dir.join("new.cep"),
        RULES.replace("within 10s", "within 500ms"),
    )
    .unwrap();
    fs::write(dir.join("e.jsonl"), events()).unwrap();
    let diff = |extra: &[&str]| {
        let out = cepheid()
            .current_dir(&dir)
            .args(["diff", "old.cep", "new.cep", "--events", "e.jsonl"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        (String::from_utf8_lossy(&out.stdout).to_string(), stderr)
    };
    // Without it, the records listed hold the events and their values.
    let (text, _) = diff(&[]);
    assert!(text.contains(SECRET), "{text}");
    let (json, _) = diff(&["--json"]);
    assert!(json.contains(SECRET), "{json}");
    let (text, stderr) = diff(&["--no-events"]);
    assert!(
        !text.contains(SECRET) && !stderr.contains(SECRET),
        "{text}{stderr}"
    );
    // The same records (`pair`'s 1 alert and 8 timeouts, each timeout's
    // window closed sooner), without their values: kind, pattern, key,
    // times.
    assert!(
        text.contains("pair            9         9         0  changed"),
        "{text}"
    );
    assert!(
        text.contains(
            "- {\"kind\":\"match\",\"pattern\":\"pair\",\"key\":{\"user\":\"u1\"},\"start\":1714557650000,\"end\":1714557651000}\n"
        ),
        "{text}"
    );
    for field in ["events", "select", "reads"] {
        assert!(!text.contains(&format!("\"{field}\"")), "{field}: {text}");
    }
    let (json, stderr) = diff(&["--json", "--no-events"]);
    assert!(
        !json.contains(SECRET) && !stderr.contains(SECRET),
        "{json}{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pair = &report["patterns"][0];
    assert_eq!(pair["pattern"], "pair", "{report}");
    let record = &pair["old_only_records"][0];
    assert_eq!(record["kind"], "match", "{report}");
    assert_eq!(record["end"], 1_714_557_651_000_i64);
    assert!(record.get("events").is_none(), "{record}");
}

/// A rule whose attributes changed and nothing else is listed as such,
/// its alerts counted in `both`; one whose matching changed too is
/// `changed`; the attributes are columns (`OLD->NEW` for one that
/// changed) and fields, for sets that have them only.
#[test]
fn a_change_of_attributes_alone_is_said_with_the_attributes() {
    let dir = scratch("diff-attributes");
    let old = RULES
        .replace(
            "pattern pair {",
            "pattern pair {\n    level high\n    score 70",
        )
        .replace(
            "pattern hit {",
            "pattern hit {\n    action block\n    tags \"pay\"",
        );
    let new = old
        .replace("level high\n    score 70", "level medium\n    score 40")
        .replace("action block", "action review")
        .replace(
            "a: type == \"pay\" and user in watched",
            "a: type == \"pay\" and user in watched and user != \"u1\"",
        );
    fs::write(dir.join("old.cep"), &old).unwrap();
    fs::write(dir.join("new.cep"), &new).unwrap();
    fs::write(dir.join("plain.cep"), RULES).unwrap();
    fs::write(dir.join("e.jsonl"), events()).unwrap();
    let report = diff(&dir, "old.cep", "new.cep");
    let listed: Vec<&serde_json::Value> = report["patterns"].as_array().unwrap().iter().collect();
    let pair = listed.iter().find(|p| p["pattern"] == "pair").unwrap();
    assert_eq!(pair["rule"], "attributes changed", "{report}");
    assert_eq!(
        (pair["old_only"].as_u64(), pair["new_only"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(pair["both"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        pair["attributes"],
        serde_json::json!({"old": {"score": 70, "level": "high"}, "new": {"score": 40, "level": "medium"}})
    );
    let hit = listed.iter().find(|p| p["pattern"] == "hit").unwrap();
    assert_eq!(hit["rule"], "changed", "{report}");
    assert_eq!(
        hit["attributes"],
        serde_json::json!({"old": {"action": "block", "tags": ["pay"]}, "new": {"action": "review", "tags": ["pay"]}})
    );
    assert!(!listed.iter().any(|p| p["pattern"] == "flag"), "{report}");
    let text = cepheid()
        .current_dir(&dir)
        .args(["diff", "old.cep", "new.cep", "--events", "e.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        "pattern  old only  new only      both  level         action         score   tags  rule",
        "{text}"
    );
    assert!(
        lines[3].starts_with("pair            0         0")
            && lines[3].contains("  high->medium  -              70->40  -     attributes changed: what it matches did not change"),
        "{text}"
    );
    assert!(
        lines[2].contains("  -             block->review  -       pay   changed"),
        "{text}"
    );
    // Sets without attributes: no column, no field.
    let plain = RULES.replace("within 3s", "within 1s");
    fs::write(dir.join("plain2.cep"), plain).unwrap();
    let report = diff(&dir, "plain.cep", "plain2.cep");
    assert!(!report.to_string().contains("attributes"), "{report}");
    let text = cepheid()
        .current_dir(&dir)
        .args(["diff", "plain.cep", "plain2.cep", "--events", "e.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "pattern  old only  new only      both  rule",
        "{text}"
    );
}

/// `cepheid diff … | head`, `cepheid why … | head`, `cepheid backtest … |
/// head` (issue 60, item 12): a reader that closes the pipe before the
/// report is written ends the command quietly, exit 0, as it ends `run`
/// and `explain`; before, `print!` panicked ("failed printing to stdout:
/// Broken pipe", exit 101).
#[test]
fn the_labs_commands_into_a_closed_pipe_end_quietly() {
    use std::process::Stdio;
    let dir = scratch("diff-closed-pipe");
    fs::write(dir.join("old.cep"), RULES).unwrap();
    fs::write(dir.join("new.cep"), RULES.replace("within 3s", "within 2s")).unwrap();
    fs::write(dir.join("e.jsonl"), events()).unwrap();
    let commands: [&[&str]; 6] = [
        &["diff", "old.cep", "new.cep"],
        &["diff", "old.cep", "new.cep", "--json"],
        &["why", "old.cep", "u1"],
        &["why", "old.cep", "u1", "--json"],
        &["backtest", "old.cep"],
        &["backtest", "old.cep", "--json"],
    ];
    for command in commands {
        let mut child = cepheid()
            .current_dir(&dir)
            .args(command)
            .args(["--events", "e.jsonl"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command has run its rules.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{command:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{command:?}: {stderr}");
        assert_eq!(stderr, "", "{command:?}");
    }
}

/// `shadow` (issue 60, item 8): a shadow pattern's records are no
/// alerts. Putting a rule in shadow and nothing else says `shadowed`,
/// every alert it raised with the old set only with old (lost: none in
/// `both`), its records with the new set as shadow records; the reverse
/// says `promoted`; a shadow pattern changed on both sides is `shadow` in
/// the column and `changed`. Sets without shadow patterns have no such
/// column or field (the tests above).
#[test]
fn a_shadow_mark_is_said_and_shadow_records_are_no_alerts() {
    let dir = scratch("diff-shadow");
    let shadowed = RULES.replace(
        "pattern pair {\n    partition by user",
        "pattern pair {\n    shadow\n    partition by user",
    );
    assert_ne!(shadowed, RULES);
    fs::write(dir.join("old.cep"), RULES).unwrap();
    fs::write(dir.join("new.cep"), &shadowed).unwrap();
    fs::write(
        dir.join("changed.cep"),
        shadowed.replace("within 3s", "within 2s"),
    )
    .unwrap();
    fs::write(dir.join("e.jsonl"), events()).unwrap();
    let alerts = run_records(&dir, "old.cep")
        .iter()
        .filter(|(r, _)| r.contains("\"pattern\":\"pair\""))
        .map(|(_, n)| *n)
        .sum::<i64>() as u64;
    assert!(alerts > 10, "{alerts}");
    let pair = |report: &serde_json::Value| {
        (report["patterns"].as_array().unwrap().iter())
            .find(|p| p["pattern"] == "pair")
            .cloned()
            .unwrap_or_else(|| panic!("pair listed: {report}"))
    };
    let report = diff(&dir, "old.cep", "new.cep");
    let p = pair(&report);
    assert_eq!(p["rule"], "shadowed", "{p}");
    assert_eq!(p["old_only"], alerts, "every alert of old is lost: {p}");
    assert_eq!(p["new_only"], alerts, "{p}");
    assert_eq!(p["both"], 0, "{p}");
    assert_eq!(p["shadow"], serde_json::json!({"old": false, "new": true}));
    assert_eq!(report["patterns"].as_array().unwrap().len(), 1, "{report}");
    let p = pair(&diff(&dir, "new.cep", "old.cep"));
    assert_eq!((&p["rule"], &p["both"]), (&"promoted".into(), &0.into()));
    let p = pair(&diff(&dir, "new.cep", "changed.cep"));
    assert_eq!(p["rule"], "changed", "{p}");
    assert_eq!(p["shadow"], serde_json::json!({"old": true, "new": true}));
    assert!(p["both"].as_u64().unwrap() > 0, "shadow records alike: {p}");
    // The text: the column, the sentence, the records said as shadow ones.
    let out = cepheid()
        .current_dir(&dir)
        .args(["diff", "old.cep", "new.cep", "--events", "e.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().skip(1);
    let header = lines.next().unwrap();
    assert!(header.ends_with("both  shadow        rule"), "{text}");
    let row = lines.next().unwrap();
    assert!(
        row.contains(" live->shadow  shadowed: only its `shadow` mark changed"),
        "{text}"
    );
    assert!(
        text.contains(&format!("pair: {alerts} only with old:\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "pair: {alerts} only with new (shadow records, not alerts):\n"
        )),
        "{text}"
    );
}

/// The cause of a pattern's changed alerts whose text did not change is
/// what it reads that changed (issue 60, item 7: a fixed sentence named
/// "a list one of them writes" when only two indicators' windows had
/// changed): the indicators whose declarations changed, by name, and no
/// list; a rule reading an indicator that did not change is not listed.
#[test]
fn the_cause_named_is_the_indicator_whose_declaration_changed() {
    let dir = scratch("diff-indicator-cause");
    let rules = |window: &str| {
        format!(
            "indicator logins = count() where type == \"login\" group by user within {window}\n\
             indicator pays = count() where type == \"pay\" group by user within 10s\n\
             list watched\n\
             pattern busy {{\n    partition by user\n    match a\n    where a: type == \"pay\" and logins(user) > 2\n}}\n\
             pattern quiet {{\n    partition by user\n    match a\n    where a: type == \"login\" and pays(user) > 1 and not (user in watched)\n}}\n"
        )
    };
    fs::write(dir.join("old.cep"), rules("5s")).unwrap();
    fs::write(dir.join("new.cep"), rules("20s")).unwrap();
    fs::write(dir.join("e.jsonl"), events()).unwrap();
    let report = diff(&dir, "old.cep", "new.cep");
    let listed: Vec<(&str, &str, &str)> = (report["patterns"].as_array().unwrap().iter())
        .map(|p| {
            (
                p["pattern"].as_str().unwrap(),
                p["rule"].as_str().unwrap(),
                p["cause"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(
            "busy",
            "same text",
            "through what it reads that changed: indicator `logins` (its declaration)"
        )],
        "{report}"
    );
    let out = cepheid()
        .current_dir(&dir)
        .args(["diff", "old.cep", "new.cep", "--events", "e.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("same text: its text did not change; its alerts differ through what it reads that changed: indicator `logins` (its declaration)\n"),
        "{text}"
    );
    assert!(!text.contains("a list one of them writes"), "{text}");
}
