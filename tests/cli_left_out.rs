//! What the limits of lists and indicators cut, and the values indicators
//! leave out, said where a user looks (issue 60, item 3): past
//! `--max-list-entries` a list's adds are refused (`$list` records and
//! rules' writes), past `--max-indicator-entries` events are left out of
//! the indicators, and a `sum` leaves out values that are not numbers;
//! each is said once on standard error when it first happens (the list or
//! indicator, the limit, the option, the docs), counted in the summary
//! (text and `--summary json`), on one engine and on workers (counted as
//! one engine counts them), over a checkpoint and its resume (the run as a
//! whole), and shown by `backtest` and `why`. A rule set without lists or
//! indicators has none of it in its summary.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::{cepheid, scratch};

/// A list fed by a rule's writes and by `$list` records, and an indicator
/// summed over each card's hour.
const RULES: &str = r#"
list seen for 1d
indicator spent = sum(amount) group by card within 1h
pattern big {
    partition by card
    match p
    where p: spent(card) > 100
    then add p.card to seen
}
"#;

/// Events `from..to`, each of its own card: `c{i}` of 200, but every
/// fifth `n{i}` of `"n/a"` (not a number: its card's sum stays 0, no
/// match); a `$list` record of two more values after event 10.
fn events(from: usize, to: usize) -> String {
    let mut text = String::new();
    for i in from..to {
        let (card, amount) = match i % 5 {
            4 => (format!("n{i}"), "\"n/a\""),
            _ => (format!("c{i}"), "200"),
        };
        text.push_str(&format!(
            "{{\"ts\":{},\"card\":\"{card}\",\"amount\":{amount}}}\n",
            1000 + i
        ));
        if i == 10 {
            text.push_str("{\"$list\":\"seen\",\"add\":[\"x1\",\"x2\"]}\n");
        }
    }
    text
}

/// `cepheid run r.cep --events e.jsonl` in `dir`, with `args`.
fn run(dir: &Path, args: &[&str]) -> Output {
    let out = cepheid()
        .current_dir(dir)
        .args(["run", "r.cep", "--events", "e.jsonl", "--no-progress"])
        .args(["--lists-from-stream", "--output", "out.jsonl"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lines of `text` that contain `needle`.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// The summary of a `--summary json` run: its last line of standard
/// error.
fn summary_json(out: &Output) -> serde_json::Value {
    let text = stderr(out);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// What the summary counts of the lists and indicators.
fn left_out(summary: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    (summary["lists"].clone(), summary["indicators"].clone())
}

fn setup(name: &str, events_text: &str) -> common::Scratch {
    let dir = scratch(name);
    fs::write(dir.join("r.cep"), RULES).unwrap();
    fs::write(dir.join("e.jsonl"), events_text).unwrap();
    dir
}

const LIMITS: [&str; 4] = ["--max-list-entries", "5", "--max-indicator-entries", "20"];

#[test]
fn what_the_limits_and_values_leave_out_is_said_once_and_counted_in_the_summary() {
    let dir = setup("left-out", &events(0, 60));
    let out = run(&dir, &LIMITS);
    let said = stderr(&out);
    // Said once each, when it first happens: the list, the limit, the
    // option that raises it, the docs.
    let list = lines_with(&said, "list `seen`: an add refused");
    assert_eq!(list.len(), 1, "{said}");
    assert!(
        list[0].contains("its limit of 5 entries (--max-list-entries; raise it to keep them)")
            && list[0].contains("docs/semantics.md, \"Lists and indicators\""),
        "{said}"
    );
    let limit = lines_with(&said, "indicator `spent`: an event left out");
    assert_eq!(limit.len(), 1, "{said}");
    assert!(
        limit[0].contains("limit of 20 window entries (--max-indicator-entries;"),
        "{said}"
    );
    let values = lines_with(&said, "indicator `spent`: a value that is not a number");
    assert_eq!(values.len(), 1, "{said}");
    // Counted in the text summary ...
    let line = said
        .lines()
        .find(|l| l.contains(" events read, "))
        .unwrap_or_default();
    assert!(
        line.contains(" list adds refused over --max-list-entries")
            && line.contains(" indicator entries refused over --max-indicator-entries")
            && line.contains(" values left out of indicators (not a number)"),
        "{line}"
    );
    // ... and in JSON: 12 of the 60 events are not numbers; of the other
    // 48, the first 20 enter `spent` and match (the others read 0: no
    // match); their 20 cards written and 2 `$list` values, 5 held.
    let json = summary_json(&run(&dir, &[&LIMITS[..], &["--summary", "json"]].concat()));
    assert_eq!(
        left_out(&json),
        (
            serde_json::json!({"adds_refused": 17, "values_refused": 0}),
            serde_json::json!({"entries_refused": 28, "not_numeric": 12}),
        )
    );
    // Under the limits none is refused, nor said to be; the values that
    // are no numbers are, as ever.
    let out = run(&dir, &["--summary", "json"]);
    let said = stderr(&out);
    let notices = lines_with(&said, "cepheid: ");
    assert!(
        notices.len() == 1 && notices[0].contains("a value that is not a number"),
        "{said}"
    );
    assert_eq!(
        left_out(&summary_json(&out)),
        (
            serde_json::json!({"adds_refused": 0, "values_refused": 0}),
            serde_json::json!({"entries_refused": 0, "not_numeric": 12}),
        )
    );
    // A rule set without lists or indicators: no such counts in its
    // summary, with the options or without.
    fs::write(
        dir.join("r.cep"),
        "pattern p {\n    partition by card\n    match a\n    where a: amount > 100\n}\n",
    )
    .unwrap();
    for args in [&LIMITS[..], &[]] {
        let json = summary_json(&run(&dir, &[args, &["--summary", "json"]].concat()));
        assert!(
            json.get("lists").is_none() && json.get("indicators").is_none(),
            "{json}"
        );
    }
}

/// On two workers, the counts are one engine's where the limit is one
/// engine's (each worker's engine holds every list, and makes every
/// write), the values that are not numbers counted once each; each is
/// said once in the run, not once per worker.
#[cfg(feature = "workers")]
#[test]
fn on_workers_the_counts_are_one_engines_and_each_is_said_once() {
    let dir = setup("left-out-workers", &events(0, 60));
    let workers = ["--workers", "2", "--chunk-bytes", "600"];
    // (the list's limit alone: the indicators' is per engine, and lets
    // more events match on two)
    let lists = ["--max-list-entries", "5", "--summary", "json"];
    let one = summary_json(&run(&dir, &lists));
    let two = summary_json(&run(&dir, &[&lists[..], &workers].concat()));
    assert_eq!(two["layout"]["workers"], 2, "{two}");
    assert_eq!(
        (&two["lists"], &two["indicators"]),
        (&one["lists"], &one["indicators"])
    );
    assert_eq!(
        left_out(&two),
        (
            serde_json::json!({"adds_refused": 45, "values_refused": 0}),
            serde_json::json!({"entries_refused": 0, "not_numeric": 12}),
        )
    );
    let out = run(
        &dir,
        &[&LIMITS[..], &["--summary", "json"], &workers].concat(),
    );
    let said = stderr(&out);
    for needle in [
        "list `seen`: an add refused",
        "indicator `spent`: an event left out",
        "indicator `spent`: a value that is not a number",
    ] {
        assert_eq!(lines_with(&said, needle).len(), 1, "{needle}: {said}");
    }
    // (the limit is per engine: each worker's engine holds its cards'
    // entries, up to 20)
    let refused = summary_json(&out)["indicators"]["entries_refused"]
        .as_u64()
        .unwrap();
    assert!(refused > 0 && refused < 28, "{said}");
}

/// Checkpointed over the first 30 events and resumed over all 60, the
/// summary counts the run as a whole, as an uninterrupted run's does; what
/// was said before the checkpoint is not said again.
#[test]
fn over_a_checkpoint_and_its_resume_the_counts_are_the_whole_runs() {
    resumed(&[], "left-out-resume");
}

/// The same on two workers.
#[cfg(feature = "workers")]
#[test]
fn over_a_checkpoint_and_its_resume_on_workers_the_counts_are_the_whole_runs() {
    resumed(
        &["--workers", "2", "--chunk-bytes", "600"],
        "left-out-resume-workers",
    );
}

fn resumed(scale: &[&str], name: &str) {
    let dir = setup(name, &events(0, 60));
    let args = [&LIMITS[..], &["--summary", "json"], scale].concat();
    let whole = summary_json(&run(&dir, &args));
    fs::write(dir.join("e.jsonl"), events(0, 30)).unwrap();
    let checkpointed = [&args[..], &["--checkpoint", "ckpt"]].concat();
    let first = run(&dir, &checkpointed);
    let said = stderr(&first);
    assert_eq!(
        lines_with(&said, "list `seen`: an add refused").len(),
        1,
        "{said}"
    );
    fs::write(dir.join("e.jsonl"), events(0, 60)).unwrap();
    let second = run(&dir, &checkpointed);
    let said = stderr(&second);
    assert!(said.contains("resuming from checkpoint"), "{said}");
    assert!(
        lines_with(&said, "list `seen`: an add refused").is_empty(),
        "said before the checkpoint: {said}"
    );
    let json = summary_json(&second);
    assert_eq!(json["lists"], whole["lists"], "{json}");
    assert_eq!(json["indicators"], whole["indicators"], "{json}");
}

/// `backtest` shows what was left out in its table, its JSON and its
/// page; `why` beside its trace.
#[test]
fn backtest_and_why_show_what_was_left_out() {
    let dir = setup("left-out-lab", &events(0, 60));
    // (`backtest` and `why` apply no `$list` record: the rules' writes
    // alone fill the list, 12 cards)
    let lab = |args: &[&str]| {
        let out = cepheid()
            .current_dir(&dir)
            .args(args)
            .args(["--events", "e.jsonl"])
            .args(LIMITS)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr(&out),
        )
    };
    // (20 cards matched and written, 5 held)
    let (text, said) = lab(&["backtest", "r.cep"]);
    assert!(
        text.contains("left out: list `seen`: 15 adds refused at its limit (--max-list-entries)")
            && text.contains(
                "left out: indicator `spent`: 28 events left out at the limit (--max-indicator-entries), 12 values left out (not a number)"
            ),
        "{text}"
    );
    assert_eq!(
        lines_with(&said, "list `seen`: an add refused").len(),
        1,
        "{said}"
    );
    assert!(said.contains("--max-list-entries"), "{said}");
    let (json, _) = lab(&["backtest", "r.cep", "--json"]);
    let json: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(
        json["lists"],
        serde_json::json!({"adds_refused": 15, "values_refused": 0,
            "by_list": {"seen": {"adds_refused": 15, "values_refused": 0}}})
    );
    assert_eq!(json["indicators"]["not_numeric"], 12);
    lab(&["backtest", "r.cep", "--html", "page.html"]);
    let page = fs::read_to_string(dir.join("page.html")).unwrap();
    assert!(
        page.contains("<dd id=\"run-left-out\">list `seen`: 15 adds refused"),
        "{page}"
    );
    let (why, _) = lab(&["why", "r.cep", "c3"]);
    assert!(
        why.contains("left out over the run: indicator `spent`: 28 events left out"),
        "{why}"
    );
}
