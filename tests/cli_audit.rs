//! Audit records of rule changes (issue 42, `docs/rule-lab.md`, "Audit
//! records"): `cepheid run --audit FILE` writes one JSON line per change
//! of rules applied or refused, the rules at the start first. Their
//! records exactly (the wall time masked) for `$rules` records in the
//! stream (a change kept draining and a pattern added, a refused set, a
//! pattern removed; under `drain` and `restart`), on one engine and on
//! two workers; a watched file's change and SIGHUP's label; killed after
//! a checkpoint and resumed, no record lost or written twice, and the
//! history in the checkpoint is the file's.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::{run_here, scratch, Live};
use serde_json::{json, Value};

/// `ab`: an `a`, then a `b` of the same user within 10 s.
const RULES: &str = r#"pattern ab {
    partition by user
    within 10s
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
"#;

/// [`RULES`] with `ab` within 20 s, and a pattern `c` added.
fn changed_and_added() -> String {
    RULES.replace("10s", "20s")
        + "\npattern c {\n    partition by user\n    match c\n    where c: type == \"c\"\n}\n"
}

fn event(ts: i64, user: usize, kind: &str) -> String {
    format!("{{\"ts\":{ts},\"user\":\"u{user}\",\"type\":\"{kind}\"}}\n")
}

fn rules_record(rules: &str) -> String {
    json!({ "$rules": rules }).to_string() + "\n"
}

/// Six `a` of three users (six partial matches of `ab`), then at line 7
/// `ab` changed and `c` added, a `b`, at line 9 a set that does not
/// parse, at line 10 `c` removed again, an `a`.
fn events() -> String {
    let mut text = String::new();
    for i in 0..6 {
        text += &event(1000 + i, i as usize % 3, "a");
    }
    text += &rules_record(&changed_and_added());
    text += &event(1006, 0, "b");
    text += &rules_record("pattern x { match ");
    text += &rules_record(&RULES.replace("10s", "20s"));
    text += &event(1008, 1, "a");
    text
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

/// The records of `file` in `dir`, each with its wall time checked (a
/// time of the last day) and masked as 0.
fn records(dir: &Path, file: &str) -> Vec<Value> {
    let text = fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines().map(masked).collect()
}

/// A record's line, its wall time checked and masked as 0.
fn masked(line: &str) -> Value {
    let mut record: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let wall = record["wall_time"].as_i64().expect(line);
    assert!(now - wall < 86_400_000 && wall <= now, "{line}");
    record["wall_time"] = json!(0);
    record
}

/// `records` in the order of their event time, then their line: on
/// workers two changes' records may be written in another order (each by
/// the last worker to make it), as their other records are.
fn in_order(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_key(|r| (r["event_time"].as_i64(), r["origin"]["line"].as_u64()));
    records
}

/// A pattern's entry of a record.
fn entry(
    pattern: &str,
    change: &str,
    versions: (Option<u32>, Option<u32>),
    partial_matches: u64,
    state: &str,
) -> Value {
    json!({
        "pattern": pattern,
        "change": change,
        "old_version": versions.0,
        "new_version": versions.1,
        "partial_matches": partial_matches,
        "state": state,
    })
}

/// A record of the stream's change at `line` (`None`: the rules at the
/// start).
fn record(event_time: Option<i64>, line: Option<u64>, policy: &str, patterns: Value) -> Value {
    let origin = match line {
        Some(line) => json!({ "input": "events.jsonl", "line": line }),
        None => json!({ "files": ["rules.cep"] }),
    };
    json!({
        "kind": "rules_change",
        "event_time": event_time,
        "wall_time": 0,
        "origin": origin,
        "outcome": "applied",
        "policy": policy,
        "patterns": patterns,
        "unchanged": 0,
        "lists_started_empty": [],
    })
}

/// What [`events`] makes under `policy`: `ab`'s partial matches kept
/// draining (`drain`) or dropped (`restart`).
fn expected(policy: &str) -> Vec<Value> {
    let first = record(
        None,
        None,
        policy,
        json!([entry("ab", "added", (None, Some(1)), 0, "empty")]),
    );
    let kept = if policy == "drain" {
        "drained"
    } else {
        "dropped"
    };
    // (with --max-delay 0ms the watermark at line 7 is 1005 - 1: the
    // switch point is 1005, and the `a` of 1005 still waits: it is the new
    // version's, five partial matches are the old one's)
    let changed = record(
        Some(1005),
        Some(7),
        policy,
        json!([
            entry("ab", "changed", (Some(1), Some(2)), 5, kept),
            entry("c", "added", (None, Some(1)), 0, "empty"),
        ]),
    );
    let mut refused = record(Some(1006), Some(9), policy, json!([]));
    refused["outcome"] = json!("refused");
    refused["reason"] =
        json!("events.jsonl:9 (`$rules`): the new rules have errors; the old rules go on");
    let mut removed = record(
        Some(1006),
        Some(10),
        policy,
        json!([entry("c", "removed", (Some(1), None), 0, "dropped")]),
    );
    removed["unchanged"] = json!(1);
    vec![first, changed, refused, removed]
}

/// `--audit audit_NAME.jsonl` over [`events`] with `extra`.
fn audited(dir: &Path, name: &str, extra: &[&str]) -> Vec<Value> {
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("events.jsonl"), events()).unwrap();
    let audit = format!("audit_{name}.jsonl");
    let output = format!("out_{name}.jsonl");
    ok(run_here(dir)
        .args(["--max-delay", "0ms", "--rules-from-stream"])
        .args(["--audit", &audit, "--output", &output])
        .args(extra)
        .output()
        .unwrap());
    records(dir, &audit)
}

/// On one engine, under both policies; a line starts with its kind.
#[test]
fn audit_records_of_stream_changes_on_one_engine() {
    let dir = scratch("audit_one");
    assert_eq!(audited(&dir, "drain", &[]), expected("drain"));
    let restart = audited(&dir, "restart", &["--reload-policy", "restart"]);
    assert_eq!(restart, expected("restart"));
    let line = fs::read_to_string(dir.join("audit_drain.jsonl")).unwrap();
    assert!(
        line.starts_with(r#"{"kind":"rules_change","event_time":null,"wall_time":"#),
        "{line}"
    );
}

#[cfg(feature = "workers")]
#[test]
fn audit_records_on_two_workers_are_one_engines() {
    let dir = scratch("audit_workers");
    let w2 = audited(&dir, "w2", &["--workers", "2"]);
    assert_eq!(in_order(w2), expected("drain"));
    // (a file in small chunks: each worker reads its own)
    let chunks = ["--workers", "3", "--chunk-bytes", "64"];
    assert_eq!(in_order(audited(&dir, "w3", &chunks)), expected("drain"));
}

/// On two processes of two workers: one engine's records but for their
/// partial matches, which no process counts whole (`null`), written once
/// by process 0.
#[cfg(feature = "workers")]
#[test]
fn audit_records_on_two_processes_are_written_once_without_counts() {
    let dir = scratch("audit_processes");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("events.jsonl"), events()).unwrap();
    let outputs = common::run_two_processes(&dir, |_| {
        let mut command = run_here(&dir);
        command
            .args(["--max-delay", "0ms", "--rules-from-stream"])
            .args(["--workers", "2", "--chunk-bytes", "64"])
            .args(["--audit", "audit_p.jsonl", "--output", "out_p.jsonl"]);
        command
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
    }
    let mut expected = expected("drain");
    for record in &mut expected[1..] {
        for entry in record["patterns"].as_array_mut().unwrap() {
            entry["partial_matches"] = Value::Null;
        }
    }
    assert_eq!(in_order(records(&dir, "audit_p.jsonl")), expected);
}

/// Refused before it runs: an audit topic without a Kafka output,
/// standard output, the audit file the output, and output per worker.
#[test]
fn an_audit_topic_standard_output_or_the_output_are_refused() {
    let dir = scratch("audit_refused");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("events.jsonl"), events()).unwrap();
    for (flags, said) in [
        #[cfg(feature = "kafka")]
        (
            &["--audit", "kafka://localhost:9092/audit"][..],
            "--audit kafka://... goes with --output kafka://...",
        ),
        #[cfg(not(feature = "kafka"))]
        (
            &["--audit", "kafka://localhost:9092/audit"][..],
            "built without the feature `kafka`",
        ),
        (&["--audit", "-"][..], "--audit needs a file path"),
        (
            &["--audit", "o.jsonl", "--output", "o.jsonl"][..],
            "are the same file",
        ),
    ] {
        let output = run_here(&dir).args(flags).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(said), "{}", stderr(&output));
    }
    // (each worker writing its own output: one audit file is not built)
    #[cfg(feature = "workers")]
    {
        let flags = [
            "--audit",
            "a.jsonl",
            "--workers",
            "2",
            "--output-per-worker",
        ];
        let output = (run_here(&dir).args(flags))
            .args(["--output", "o.jsonl"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let said = "--output-per-worker does not take an audit file (--audit)";
        assert!(stderr(&output).contains(said), "{}", stderr(&output));
        assert!(!dir.join("a.jsonl").exists());
    }
}

/// `--watch` over a followed file: an edit of the rules is a record of
/// origin the files; SIGHUP's reload (nothing changed) one with its label.
fn watched(extra: &[&str]) {
    let dir = scratch("audit_watch");
    let rules = dir.join("rules.cep");
    let events = dir.join("events.jsonl");
    let audit = dir.join("audit.jsonl");
    fs::write(&rules, RULES).unwrap();
    // (the `x` moves the watermark past the `b`: the match comes out)
    let text = event(1000, 0, "a") + &event(1001, 0, "b") + &event(1002, 0, "x");
    fs::write(&events, text).unwrap();
    let args = [
        "--events",
        events.to_str().unwrap(),
        "--follow",
        "--watch",
        "--no-progress",
        "--max-delay",
        "0ms",
        "--audit",
        audit.to_str().unwrap(),
    ];
    let live = Live::run(&rules, &[&args[..], extra].concat());
    live.record("the first match");
    fs::write(&rules, RULES.replace("10s", "20s")).unwrap();
    live.stderr_line("ab: changed (version 2)");
    live.signal("HUP");
    live.stderr_line("cepheid: SIGHUP: rules reloaded:");
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let got = records(&dir, "audit.jsonl");
    let files = json!([rules.to_str().unwrap()]);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0]["origin"], json!({ "files": files }));
    assert_eq!(got[1]["origin"], json!({ "files": files }));
    assert_eq!(
        got[1]["patterns"],
        json!([entry("ab", "changed", (Some(1), Some(2)), 0, "drained")])
    );
    assert_eq!(got[1]["outcome"], "applied");
    assert_eq!(
        got[2]["origin"],
        json!({ "files": files, "label": "SIGHUP" })
    );
    assert_eq!(
        (&got[2]["patterns"], &got[2]["unchanged"]),
        (&json!([]), &json!(1))
    );
}

#[test]
fn a_watched_edit_and_sighup_are_audited_with_their_origin() {
    watched(&[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_watched_edit_and_sighup_are_audited_on_workers() {
    watched(&["--workers", "2"]);
}

/// 3,000 events with a change of rules every 200 lines (drain, an added
/// pattern, a refused one, in turn).
fn long_events() -> String {
    let mut text = String::new();
    for i in 0..3000i64 {
        let kind = ["a", "b", "x", "c"][(i % 7 % 4) as usize];
        text += &event(1000 + i * 10, (i % 5) as usize, kind);
        if i % 200 == 199 {
            let within = 10 + i / 200;
            let rules = match i / 200 % 3 {
                0 => RULES.replace("10s", &format!("{within}s")),
                1 => changed_and_added().replace("10s", &format!("{within}s")),
                _ => "pattern broken {".to_string(),
            };
            text += &rules_record(&rules);
        }
    }
    text
}

/// Killed after its first checkpoint and resumed (`extra`: the
/// executor): the audit file is an uninterrupted run's, record for
/// record, and the history in the newest checkpoint is the file's (all of
/// it with `whole_history`: a checkpoint the resumed run took at its end).
fn killed_and_resumed(extra: &[&str], whole_history: bool) {
    let dir = scratch("audit_killed");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("events.jsonl"), long_events()).unwrap();
    let run = |name: &str, more: &[&str]| {
        let mut command = run_here(&dir);
        command
            .args(["--max-delay", "0ms", "--rules-from-stream"])
            .args(["--audit", &format!("audit_{name}.jsonl")])
            .args(["--output", &format!("out_{name}.jsonl")])
            .args(extra)
            .args(more);
        command
    };
    ok(run("whole", &[]).output().unwrap());
    let flags = ["--checkpoint", "ckpt", "--checkpoint-every", "700"];
    let killed = run("killed", &flags)
        .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1")
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{}", stderr(&killed));
    let cut = records(&dir, "audit_killed.jsonl").len();
    let resumed = ok(run("killed", &flags).output().unwrap());
    assert!(
        stderr(&resumed).contains("resuming from checkpoint"),
        "{}",
        stderr(&resumed)
    );
    let whole = records(&dir, "audit_whole.jsonl");
    // (the rules at the start, and 15 changes: 5 of them refused)
    assert_eq!(whole.len(), 16, "{whole:#?}");
    let refused = whole.iter().filter(|r| r["outcome"] == "refused").count();
    assert_eq!(refused, 5);
    assert!(cut > 1, "killed with {cut} records");
    let whole = in_order(whole);
    assert_eq!(in_order(records(&dir, "audit_killed.jsonl")), whole);
    // The history the newest checkpoint keeps: the records before it, in
    // the order of event time (fewer than its bound: all of them). One
    // engine's last is taken at the end of the input by the resumed run,
    // whose history went on from the killed run's.
    let stored = common::newest_stored(&dir.join("ckpt")).expect("a checkpoint");
    let history: Vec<Value> = (stored.marker().the_history().iter())
        .map(|r| masked(&r.line()))
        .collect();
    assert!(history.len() > 1, "{history:#?}");
    assert_eq!(history[..], whole[..history.len()]);
    if whole_history {
        assert_eq!(history, whole);
    }
}

#[test]
fn killed_after_a_checkpoint_and_resumed_no_audit_record_is_lost_or_doubled() {
    killed_and_resumed(&[], true);
}

#[cfg(feature = "workers")]
#[test]
fn killed_after_a_cut_on_workers_and_resumed_no_audit_record_is_lost_or_doubled() {
    killed_and_resumed(&["--workers", "2"], false);
}

/// From a Kafka topic whose `$rules` records change the rules, to a Kafka
/// output with `--audit kafka://.../TOPIC`: the records one engine writes
/// to a file, each change's origin the record's topic, partition and
/// offset, in partition 0 of the audit topic, committed with the output's
/// transactions.
#[cfg(feature = "kafka")]
#[test]
fn audit_records_to_a_topic_in_the_outputs_transactions_with_their_records_places() {
    use crate::kafka_support::{topic, Broker};
    let broker = Broker::start();
    let dir = scratch("audit_kafka");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    let b = broker.bootstrap();
    let (input, output, audit) = (topic("audit-in"), topic("audit-out"), topic("audit"));
    for t in [&input, &output, &audit] {
        broker.create_topic(t, 1);
    }
    let lines: Vec<String> = events().lines().map(str::to_string).collect();
    common::kafka::produce_lines_to(&b, &input, 0, &lines);
    let run = crate::common::cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "0ms"])
        .args(["--rules-from-stream", "--kafka-until", "end"])
        .args(["--events", &format!("kafka://{b}/{input}")])
        .args(["--output", &format!("kafka://{b}/{output}")])
        .args(["--audit", &format!("kafka://{b}/{audit}")])
        .args(["--checkpoint", "ckpt", "--transactional-id", "audit-test"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let seen = broker.read_topic(&audit, "read_committed");
    assert!(seen.iter().all(|s| s.partition == 0));
    let got: Vec<Value> = seen.iter().map(|s| masked(&s.payload)).collect();
    let mut expected = expected("drain");
    for (record, line) in expected[1..].iter_mut().zip([7, 9, 10]) {
        record["origin"] = json!({ "topic": input, "partition": 0, "offset": line - 1 });
    }
    // (the refusal's words are standard error's, which name the record
    // by the input's name)
    let said = got[2]["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        said.contains(&input)
            && said.ends_with("(`$rules`): the new rules have errors; the old rules go on"),
        "{said}"
    );
    expected[2]["reason"] = json!(said);
    assert_eq!(got, expected);
}
