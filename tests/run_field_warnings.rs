//! `cepheid run` says, once per pattern and field, when a field a pattern
//! reads has occurred in none of the first `--field-warnings-after N`
//! events (default 10,000), and at the end of the input for what is
//! still missing and was not said: the pattern, `path:line:column` of the
//! read, and the closest field that did occur. The records are the same
//! with or without the warnings.

use std::path::Path;
use std::process::Output;

use crate::common::{cepheid, scratch};

fn run(dir: &Path, args: &[&str]) -> Output {
    cepheid()
        .current_dir(dir)
        .args([
            "run",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--no-progress",
        ])
        .args(args)
        .output()
        .expect("run cepheid")
}

fn warnings(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("warning"))
        .map(str::to_string)
        .collect()
}

/// `n` failed logins of one user, with a `success` field.
fn logins(n: usize) -> String {
    (0..n)
        .map(|i| format!(r#"{{"ts": {i}, "user": "u", "success": false}}"#) + "\n")
        .collect()
}

fn setup(name: &str, rules: &str, events: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("rules.cep"), rules).unwrap();
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    dir
}

const MISSPELT: &str = "pattern fails {
    partition by user
    match f{3}
    where
        f: not sucess
}
";

#[test]
fn a_misspelt_field_is_said_once_at_the_end_with_where_and_did_you_mean() {
    let dir = setup("run_fields_end", MISSPELT, &logins(5));
    let out = run(&dir, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        warnings(&out),
        ["warning: rules.cep:5:16: pattern `fails`, the condition of stage `f`: field `sucess` never occurs in 5 events; did you mean `success`?"]
    );
    // `not sucess` is `not null`: null, so nothing matched.
    assert!(out.stdout.is_empty());
}

#[test]
fn after_n_events_it_is_said_once_not_again_at_the_end() {
    let dir = setup("run_fields_n", MISSPELT, &logins(50));
    let out = run(&dir, &["--field-warnings-after", "10"]);
    let said = warnings(&out);
    assert_eq!(said.len(), 1, "{said:?}");
    // Said when 10 events were read (a batch's worth may be decoded by
    // then: at least 10, at most the input).
    let events: u64 = said[0]
        .split("never occurs in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!((10..=50).contains(&events), "{said:?}");
}

#[test]
fn no_warning_when_every_field_occurs_or_when_turned_off() {
    let fine = MISSPELT.replace("sucess", "success");
    let dir = setup("run_fields_fine", &fine, &logins(5));
    let out = run(&dir, &[]);
    assert!(warnings(&out).is_empty(), "{out:?}");
    assert!(!out.stdout.is_empty(), "three failures match");

    let dir = setup("run_fields_off", MISSPELT, &logins(5));
    let out = run(&dir, &["--field-warnings-after", "0"]);
    assert!(warnings(&out).is_empty(), "{out:?}");
}

#[test]
fn a_field_that_occurs_late_is_not_said_at_the_end() {
    // `note` occurs only in the last event; with N above the input's
    // length only the end is looked at, where it has occurred.
    let rules = "pattern noted {
    match a
    where
        a: note == \"x\"
}
";
    let mut events = logins(20);
    events.push_str(r#"{"ts": 99, "user": "u", "note": "x"}"#);
    events.push('\n');
    let dir = setup("run_fields_late", rules, &events);
    let late = run(&dir, &["--field-warnings-after", "100"]);
    assert!(warnings(&late).is_empty(), "{late:?}");
    assert_eq!(String::from_utf8_lossy(&late.stdout).lines().count(), 1);
}

#[test]
fn the_records_are_the_same_with_and_without_the_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run_sample = |extra: &[&str]| {
        cepheid()
            .current_dir(root)
            .args([
                "run",
                "patterns/",
                "--events",
                "examples/data/sample.jsonl",
                "--no-progress",
            ])
            .args(extra)
            .output()
            .expect("run cepheid")
    };
    let on = run_sample(&["--field-warnings-after", "1"]);
    let off = run_sample(&["--field-warnings-after", "0"]);
    assert_eq!(on.stdout, off.stdout);
    assert!(!on.stdout.is_empty());
}
