//! The origins of a list's values (issue 60, item 5; `docs/lists.md`,
//! "Origins"): each `--list` file, the rules' writes, `$list` records and
//! the library hold a value apart; a file's edit ends that file's hold
//! only, so a value another file, a rule or a record holds stays listed;
//! on one engine and on workers, and across a checkpoint and a resume.

use crate::common;

use std::fs;
use std::path::Path;

use common::{cepheid, scratch, Live};

/// A rule that lists the cards of frauds, and one that reads the list.
const RULES: &str = r#"
list blocked
pattern block { match a where a: kind == "fraud" then add a.card to blocked }
pattern hit { match a where a: kind == "pay" and card in blocked }
"#;

fn event(ts: i64, kind: &str, card: &str) -> String {
    format!("{{\"ts\":{ts},\"kind\":\"{kind}\",\"card\":\"{card}\"}}\n")
}

fn pay(ts: i64, card: &str) -> String {
    event(ts, "pay", card)
}

/// A record's pattern and the `ts` of its event.
fn hit(record: &serde_json::Value) -> (String, i64) {
    let pattern = record["pattern"].as_str().unwrap_or_default().to_string();
    (
        pattern,
        record["events"]["a"][0]["ts"].as_i64().unwrap_or(-1),
    )
}

/// The next `n` records of `live`, sorted.
fn next_hits(live: &Live, n: usize, what: &str) -> Vec<(String, i64)> {
    let mut hits: Vec<_> = (0..n).map(|_| hit(&live.record(what))).collect();
    hits.sort();
    hits
}

fn hits(at: &[i64]) -> Vec<(String, i64)> {
    at.iter().map(|&ts| ("hit".to_string(), ts)).collect()
}

#[test]
fn a_file_that_drops_a_value_another_file_holds_leaves_it_listed() {
    two_files("origins-files", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_file_that_drops_a_value_another_file_holds_leaves_it_listed_on_workers() {
    two_files("origins-files-w", &["--workers", "2"]);
}

/// Two watched files of one list, both with `c-1`: one drops it, and it
/// is still listed (the other holds it); the other drops it, and it is
/// not.
fn two_files(name: &str, flags: &[&str]) {
    let dir = scratch(name);
    let rules = dir.join("r.cep");
    fs::write(&rules, RULES).unwrap();
    let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
    fs::write(&a, "c-1\n").unwrap();
    fs::write(&b, "c-1\nc-2\n").unwrap();
    let (list_a, list_b) = (
        format!("blocked={}", a.display()),
        format!("blocked={}", b.display()),
    );
    let args = [
        &[
            "--watch",
            "--no-progress",
            "--list",
            &list_a,
            "--list",
            &list_b,
        ][..],
        flags,
    ]
    .concat();
    let mut live = Live::run(&rules, &args);
    live.stderr_line("2 entries from");
    live.write(&[pay(1, "c-1"), pay(2, "-")].concat());
    assert_eq!(next_hits(&live, 1, "c-1 listed by both"), hits(&[1]));
    fs::write(&b, "c-2\n").unwrap();
    live.stderr_line("b.csv changed: 0 added, 1 removed");
    live.write(&[pay(3, "c-1"), pay(4, "-")].concat());
    assert_eq!(
        next_hits(&live, 1, "c-1 still listed: a.csv holds it"),
        hits(&[3])
    );
    fs::write(&a, "# none\n").unwrap();
    live.stderr_line("a.csv changed: 0 added, 1 removed");
    live.write(&[pay(5, "c-1"), pay(6, "c-2"), pay(7, "-")].concat());
    assert_eq!(next_hits(&live, 1, "c-2, b.csv's"), hits(&[6]));
    live.close();
    let (status, rest, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    assert!(rest.is_empty(), "c-1 listed by no file matched: {rest:?}");
}

#[test]
fn a_value_a_rule_or_a_record_holds_survives_a_file_that_drops_it() {
    rule_and_record("origins-rule", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_value_a_rule_or_a_record_holds_survives_a_file_that_drops_it_on_workers() {
    rule_and_record("origins-rule-w", &["--workers", "2"]);
}

/// A watched file with `c-1`, `c-7` and `c-9`; a rule writes `c-1`, a
/// `$list` record adds `c-7`; the file is emptied: `c-1` and `c-7` stay
/// listed (the rules' and the records' holds), `c-9` goes.
fn rule_and_record(name: &str, flags: &[&str]) {
    let dir = scratch(name);
    let rules = dir.join("r.cep");
    fs::write(&rules, RULES).unwrap();
    let file = dir.join("blocked.csv");
    fs::write(&file, "c-1\nc-7\nc-9\n").unwrap();
    let list = format!("blocked={}", file.display());
    let args = [
        &[
            "--watch",
            "--no-progress",
            "--lists-from-stream",
            "--list",
            &list,
        ][..],
        flags,
    ]
    .concat();
    let mut live = Live::run(&rules, &args);
    live.stderr_line("3 entries from");
    let record = "{\"$list\": \"blocked\", \"add\": \"c-7\"}\n";
    live.write(
        &[
            event(1, "fraud", "c-1"),
            record.to_string(),
            pay(2, "c-1"),
            pay(3, "c-7"),
            pay(4, "c-9"),
            pay(5, "-"),
        ]
        .concat(),
    );
    let mut expected = hits(&[2, 3, 4]);
    expected.insert(0, ("block".to_string(), 1));
    assert_eq!(next_hits(&live, 4, "the listed cards"), expected);
    fs::write(&file, "# none\n").unwrap();
    live.stderr_line("blocked.csv changed: 0 added, 3 removed");
    live.write(&[pay(6, "c-1"), pay(7, "c-7"), pay(8, "c-9"), pay(9, "-")].concat());
    assert_eq!(
        next_hits(&live, 2, "the cards the rule and the record hold"),
        hits(&[6, 7])
    );
    live.close();
    let (status, rest, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    assert!(rest.is_empty(), "c-9, listed by no one, matched: {rest:?}");
}

#[test]
fn a_checkpoint_keeps_the_holds_of_every_origin() {
    resumed_with_holds("origins-resume", &[], &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_checkpoint_keeps_the_holds_of_every_origin_on_workers_and_across_executors() {
    let workers: &[&str] = &["--workers", "2"];
    resumed_with_holds("origins-resume-w", workers, workers);
    resumed_with_holds("origins-resume-1w", &[], workers);
    resumed_with_holds("origins-resume-w1", workers, &[]);
}

/// `c-1` held by a.csv and b.csv, `c-3` by b.csv and a rule, when the
/// checkpoint is taken; b.csv drops both while the run is stopped: the
/// resumed run (with `second`'s flags) still lists them.
fn resumed_with_holds(name: &str, first: &[&str], second: &[&str]) {
    let dir = scratch(name);
    fs::write(dir.join("r.cep"), RULES).unwrap();
    fs::write(dir.join("a.csv"), "c-1\n").unwrap();
    fs::write(dir.join("b.csv"), "c-1\nc-2\nc-3\n").unwrap();
    let events = [
        event(1, "fraud", "c-3"),
        pay(2, "c-1"),
        pay(3, "c-2"),
        pay(4, "c-3"),
    ];
    fs::write(dir.join("e.jsonl"), events.concat()).unwrap();
    let run = |flags: &[&str]| {
        let out = cepheid()
            .current_dir(&dir)
            .args(["run", "r.cep", "--events", "e.jsonl", "--no-progress"])
            .args(["--list", "blocked=a.csv", "--list", "blocked=b.csv"])
            .args(["--checkpoint", "ck", "--output", "out.jsonl"])
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{name}: {stderr}");
        (records(&dir.join("out.jsonl")), stderr)
    };
    let (one, _) = run(first);
    let mut expected = hits(&[2, 3, 4]);
    expected.insert(0, ("block".to_string(), 1));
    assert_eq!(one, expected, "{name}");
    // While it is stopped: b.csv drops c-1 and c-3.
    fs::write(dir.join("b.csv"), "c-2\n").unwrap();
    let more = [pay(5, "c-1"), pay(6, "c-2"), pay(7, "c-3"), pay(8, "-")];
    let mut all = fs::read_to_string(dir.join("e.jsonl")).unwrap();
    all.push_str(&more.concat());
    fs::write(dir.join("e.jsonl"), all).unwrap();
    let (two, stderr) = run(second);
    assert!(
        stderr.contains("b.csv changed while the run was stopped: 0 added, 2 removed"),
        "{name}: {stderr}"
    );
    let mut expected = hits(&[2, 3, 4, 5, 6, 7]);
    expected.insert(0, ("block".to_string(), 1));
    assert_eq!(two, expected, "{name}: {stderr}");
}

/// The records of the output file `path`, sorted.
fn records(path: &Path) -> Vec<(String, i64)> {
    let mut records: Vec<_> = fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| hit(&serde_json::from_str(l).unwrap()))
        .collect();
    records.sort();
    records
}
