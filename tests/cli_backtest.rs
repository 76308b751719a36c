//! `cepheid backtest RULES --events FILE [--labels FILE]` (issue 42): its
//! alerts are `cepheid run`'s, and its figures those counted by hand on a
//! small fixture, with labels caught or not as the tolerance says.

use crate::common;

use std::fs;
use std::path::Path;

use common::{cepheid, scratch};

const RULES: &str = r#"
pattern three_fails {
    partition by user
    within 10s
    skip past last event
    match a{3}
    where a: type == "fail"
}
pattern fail_then_ok {
    partition by user
    within 5s
    timeouts
    match a followed by b
    where a: type == "fail"
          b: type == "ok"
}
"#;

/// By hand: u1 fails at 1, 2, 3 s (an alert of `three_fails`, 1 to 3 s);
/// u2 at 5, 6, 7, 8 s (one alert, 5 to 7 s: skip past last event); u3 at
/// 10, 30, 31 s (no three within 10 s). `fail_then_ok`: u1's fail at 3 s,
/// then ok at 4 s (an alert, 3 to 4 s; the fails at 1 and 2 s too: 1 to 4
/// and 2 to 4 s), every other fail times out.
const EVENTS: &str = r#"{"ts":1000,"user":"u1","type":"fail"}
{"ts":2000,"user":"u1","type":"fail"}
{"ts":3000,"user":"u1","type":"fail"}
{"ts":4000,"user":"u1","type":"ok"}
{"ts":5000,"user":"u2","type":"fail"}
{"ts":6000,"user":"u2","type":"fail"}
{"ts":7000,"user":"u2","type":"fail"}
{"ts":8000,"user":"u2","type":"fail"}
{"ts":10000,"user":"u3","type":"fail"}
{"ts":30000,"user":"u3","type":"fail"}
{"ts":31000,"user":"u3","type":"fail"}
"#;

fn backtest(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let out = cepheid()
        .current_dir(dir)
        .args(["backtest", "r.cep", "--events", "e.jsonl", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn figures<'a>(report: &'a serde_json::Value, pattern: &str) -> &'a serde_json::Value {
    (report["patterns"].as_array().unwrap().iter())
        .find(|p| p["pattern"] == pattern)
        .unwrap()
}

#[test]
fn a_backtest_counts_what_was_counted_by_hand_and_labels_by_their_tolerance() {
    let dir = scratch("backtest");
    fs::write(dir.join("r.cep"), RULES).unwrap();
    fs::write(dir.join("e.jsonl"), EVENTS).unwrap();
    // u1's case at 2.5 s, u2's at 9 s (2 s after its alert's span), u3's
    // at 30.5 s (no alert of u3); a line that is no label.
    fs::write(
        dir.join("labels.jsonl"),
        "{\"key\": \"u1\", \"ts\": 2500}\n{\"key\": {\"user\": \"u2\"}, \"ts\": 9000}\n{\"key\": \"u3\", \"ts\": 30500}\nnot a label\n",
    )
    .unwrap();
    let plain = backtest(&dir, &[]);
    assert_eq!(
        plain["event_time"],
        serde_json::json!({"from": 1000, "to": 31000})
    );
    let three = figures(&plain, "three_fails");
    assert_eq!(three["alerts"], 2);
    assert_eq!(three["keys"], 2);
    assert_eq!(three["timeouts"], 0);
    assert_eq!(
        three["delay_ms"],
        serde_json::json!({"min": 2000, "median": 2000, "p95": 2000, "max": 2000})
    );
    // 2 alerts over 30 s of event time: 5,760 a day.
    assert_eq!(three["per_day"], 5760.0);
    let pair = figures(&plain, "fail_then_ok");
    assert_eq!(pair["alerts"], 3, "{pair}");
    assert_eq!(pair["keys"], 1);
    assert_eq!(pair["delay_ms"]["max"], 3000);
    // The alerts are `cepheid run`'s, to the record.
    let run = cepheid()
        .current_dir(&dir)
        .args(["run", "r.cep", "--events", "e.jsonl", "--no-progress"])
        .output()
        .unwrap();
    let matches = String::from_utf8_lossy(&run.stdout)
        .matches("\"kind\":\"match\"")
        .count();
    let timeouts = String::from_utf8_lossy(&run.stdout)
        .matches("\"kind\":\"timeout\"")
        .count();
    assert_eq!(matches, 5);
    assert_eq!(pair["timeouts"].as_u64().unwrap() as usize, timeouts);
    // Labels: within 1 s, u1's alone is caught (by both patterns).
    let near = backtest(&dir, &["--labels", "labels.jsonl", "--tolerance", "1s"]);
    let three = figures(&near, "three_fails");
    assert_eq!(
        (
            three["true_positives"].clone(),
            three["false_positives"].clone()
        ),
        (1.into(), 1.into())
    );
    assert_eq!(three["precision"], 0.5);
    assert_eq!(three["recall"], serde_json::json!(1.0 / 3.0));
    let caught_by_none: Vec<i64> = (near["labels"]["caught_by_none"].as_array().unwrap().iter())
        .map(|l| l["ts"].as_i64().unwrap())
        .collect();
    assert_eq!(caught_by_none, vec![9000, 30500]);
    assert_eq!(near["labels"]["count"], 3);
    // Within 2 s, u2's too.
    let far = backtest(&dir, &["--labels", "labels.jsonl", "--tolerance", "2s"]);
    let three = figures(&far, "three_fails");
    assert_eq!(three["true_positives"], 2);
    assert_eq!(three["precision"], 1.0);
    assert_eq!(far["labels"]["caught_by_none"].as_array().unwrap().len(), 1);
    // The table says the same, and the label line that is none.
    let text = cepheid()
        .current_dir(&dir)
        .args([
            "backtest",
            "r.cep",
            "--events",
            "e.jsonl",
            "--labels",
            "labels.jsonl",
            "--tolerance",
            "1s",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&text.stdout),
        String::from_utf8_lossy(&text.stderr),
    );
    assert!(
        stdout.contains("labels: 3, caught by a pattern: 1, caught by none: 2"),
        "{stdout}"
    );
    assert!(stderr.contains("labels.jsonl:4: not a label"), "{stderr}");
}

/// A `shadow` pattern's records are its alerts as any pattern's: a shadow
/// twin of each rule has the figures of the rule (one engine and, with the
/// feature, two workers), and `diff` lists the twins' records as those of
/// the patterns added.
#[test]
fn a_shadow_patterns_alerts_are_counted_as_any_patterns() {
    let dir = scratch("backtest-shadow");
    let twins = RULES
        .replace(
            "pattern three_fails {",
            "pattern three_fails_shadow {\n    shadow",
        )
        .replace(
            "pattern fail_then_ok {",
            "pattern fail_then_ok_shadow {\n    shadow",
        );
    fs::write(dir.join("r.cep"), format!("{RULES}\n{twins}")).unwrap();
    fs::write(dir.join("old.cep"), RULES).unwrap();
    fs::write(dir.join("e.jsonl"), EVENTS).unwrap();
    let mut layouts = vec![vec![]];
    if cfg!(feature = "workers") {
        layouts.push(vec!["--workers", "2"]);
    }
    for layout in layouts {
        let report = backtest(&dir, &layout);
        for pattern in ["three_fails", "fail_then_ok"] {
            let live = figures(&report, pattern);
            let shadow = figures(&report, &format!("{pattern}_shadow"));
            assert!(live["alerts"].as_u64().unwrap() > 0, "{layout:?}: {live}");
            for field in ["alerts", "keys", "timeouts", "delay_ms", "per_day"] {
                assert_eq!(shadow[field], live[field], "{layout:?} {pattern} {field}");
            }
        }
    }
    // Marked apart (issue 60, item 8): `"shadow"` in the JSON, and in the
    // table after the live patterns under a line of their own.
    let report = backtest(&dir, &[]);
    for (pattern, shadow) in [("three_fails", false), ("three_fails_shadow", true)] {
        assert_eq!(figures(&report, pattern)["shadow"], shadow, "{pattern}");
    }
    let out = cepheid()
        .current_dir(&dir)
        .args(["backtest", "r.cep", "--events", "e.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = (text.lines().skip(2))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "three_fails",
            "fail_then_ok",
            "shadow",
            "three_fails_shadow",
            "fail_then_ok_shadow"
        ],
        "{text}"
    );
    assert!(
        text.contains("\nshadow patterns (their matches go to the shadow output: not alerts):\n"),
        "{text}"
    );
    let out = cepheid()
        .current_dir(&dir)
        .args(["diff", "old.cep", "r.cep", "--events", "e.jsonl", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let added: Vec<(&str, u64)> = (diff["patterns"].as_array().unwrap().iter())
        .map(|p| {
            (
                p["pattern"].as_str().unwrap(),
                p["new_only"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        added,
        // (records: `fail_then_ok`'s 3 matches and 5 timeouts)
        [("three_fails_shadow", 2), ("fail_then_ok_shadow", 8)],
        "{diff}"
    );
}

/// Labels that only a shadow pattern's records caught are no alert's: the
/// summary counts them apart (`by shadow patterns only`), not as caught,
/// and lists them apart from those no pattern caught; the JSON too.
#[test]
fn labels_caught_only_by_shadow_patterns_are_said_apart() {
    let dir = scratch("backtest-shadow-labels");
    let rules = RULES.replace(
        "pattern fail_then_ok {",
        "pattern fail_then_ok {\n    shadow",
    );
    fs::write(dir.join("r.cep"), rules).unwrap();
    fs::write(dir.join("e.jsonl"), EVENTS).unwrap();
    // u2's case at 6 s: `three_fails` (live, 5 to 7 s) catches it; u1's at
    // 3.5 s: only `fail_then_ok` (shadow, 1 to 4 s); u3's at 30.5 s: none.
    fs::write(
        dir.join("labels.jsonl"),
        "{\"key\": \"u2\", \"ts\": 6000}\n{\"key\": \"u1\", \"ts\": 3500}\n{\"key\": \"u3\", \"ts\": 30500}\n",
    )
    .unwrap();
    let report = backtest(&dir, &["--labels", "labels.jsonl"]);
    let times = |list: &serde_json::Value| -> Vec<i64> {
        (list.as_array().unwrap().iter())
            .map(|l| l["ts"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(report["labels"]["count"], 3, "{report}");
    assert_eq!(report["labels"]["caught"], 1, "{report}");
    assert_eq!(times(&report["labels"]["caught_by_none"]), vec![30500]);
    assert_eq!(
        times(&report["labels"]["caught_by_shadow_only"]),
        vec![3500]
    );
    // (each pattern's own figures as before: the shadow one's recall is
    // what its records caught)
    assert_eq!(
        figures(&report, "fail_then_ok")["recall"],
        serde_json::json!(1.0 / 3.0)
    );
    let out = cepheid()
        .current_dir(&dir)
        .args(["backtest", "r.cep", "--events", "e.jsonl"])
        .args(["--labels", "labels.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "labels: 3, caught by a live pattern: 1, by shadow patterns only: 1, caught by none: 1\n\
             caught by none:\n  line 3: key \"u3\" at 30500\n\
             caught by shadow patterns only (no alert):\n  line 2: key \"u1\" at 3500\n"
        ),
        "{text}"
    );
    // The page says the same, with a table of its own.
    let out = cepheid()
        .current_dir(&dir)
        .args(["backtest", "r.cep", "--events", "e.jsonl"])
        .args(["--labels", "labels.jsonl", "--html", "page.html"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = fs::read_to_string(dir.join("page.html")).unwrap();
    assert!(
        page.contains("<p id=\"labels\">labels: 3, caught by a live pattern: 1, by shadow patterns only: 1, caught by none: 1</p>"),
        "{page}"
    );
    assert!(page.contains("<table id=\"shadow-only\">"), "{page}");
}

/// Rule attributes (`level`, `action`, `score`, `tags`): columns of the
/// table and fields of the JSON for a rule set whose patterns have some
/// (`-` for one a pattern has not), and no column, no field, for one
/// without them.
#[test]
fn rule_attributes_are_shown_only_for_rule_sets_that_have_them() {
    let dir = scratch("backtest-attributes");
    let with = RULES
        .replace(
            "pattern three_fails {",
            "pattern three_fails {\n    score 80\n    level high\n    action block\n    tags \"login\", \"ato\"",
        )
        .replace("pattern fail_then_ok {", "pattern fail_then_ok {\n    action review");
    fs::write(dir.join("r.cep"), &with).unwrap();
    fs::write(dir.join("plain.cep"), RULES).unwrap();
    fs::write(dir.join("e.jsonl"), EVENTS).unwrap();
    let report = backtest(&dir, &[]);
    assert_eq!(
        figures(&report, "three_fails")["attributes"],
        serde_json::json!({"score": 80, "level": "high", "action": "block", "tags": ["login", "ato"]})
    );
    assert_eq!(
        figures(&report, "fail_then_ok")["attributes"],
        serde_json::json!({"action": "review"})
    );
    let text = |rules: &str| {
        let out = cepheid()
            .current_dir(&dir)
            .args(["backtest", rules, "--events", "e.jsonl"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let table: Vec<String> = text("r.cep").lines().skip(1).map(str::to_string).collect();
    assert_eq!(
        table,
        [
            "pattern        alerts    per day    keys  timeouts      delay ms min/median/p95/max  level  action  score  tags",
            "three_fails         2     5760.0       2         0              2000/2000/2000/2000  high   block   80     login,ato",
            "fail_then_ok        3     8640.0       1         5              1000/2000/3000/3000  -      review  -      -",
        ]
    );
    // Without attributes: the report as before them.
    let plain = text("plain.cep");
    assert_eq!(
        plain.lines().nth(1).unwrap(),
        "pattern        alerts    per day    keys  timeouts      delay ms min/median/p95/max"
    );
    assert!(!plain.contains("level"), "{plain}");
    let out = cepheid()
        .current_dir(&dir)
        .args(["backtest", "plain.cep", "--events", "e.jsonl", "--json"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("attributes"));
}
