//! `cepheid run` through the built binary: output records, late events,
//! punctuated watermarks, quiet keys, end of input with and without
//! `--flush-at-end`, malformed lines, `--strict`, CSV, RFC 3339 times, exit
//! statuses.

use crate::common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{scratch, Live, PATIENCE};
use serde_json::{json, Value};

const UNPAID: &str = r#"
/// Orders created and not paid within 15 minutes.
pattern unpaid {
    partition by order_id
    within 15m
    timeouts
    match created followed by paid
    where
        created: type == "order_created"
        paid:    type == "order_paid"
    select
        order = created.order_id
        total = paid.amount
}
"#;

/// Writes the pattern and events, runs `cepheid run` with `extra` flags.
fn run(name: &str, pattern: &str, events: &str, extra: &[&str]) -> (Output, common::Scratch) {
    let dir = scratch(name);
    std::fs::write(dir.join("p.cep"), pattern).unwrap();
    std::fs::write(dir.join("events"), events).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("run")
        .arg(dir.join("p.cep"))
        .arg("--events")
        .arg(dir.join("events"))
        .arg("--no-progress")
        .args(extra)
        .current_dir(&dir)
        .output()
        .unwrap();
    (output, dir)
}

fn records(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const MIN: i64 = 60_000;

fn order(ts: i64, kind: &str, id: &str) -> String {
    format!(
        r#"{{"ts":{ts},"type":"{kind}","order_id":"{id}","amount":{}}}"#,
        ts / MIN
    ) + "\n"
}

#[test]
fn matches_and_timeouts_are_written_as_specified() {
    let events = [
        order(0, "order_created", "o1"),
        order(MIN, "order_created", "o2"),
        order(2 * MIN, "order_paid", "o1"),
        order(20 * MIN, "order_created", "o3"),
    ]
    .concat();
    let (out, _) = run("records", UNPAID, &events, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let recs = records(&out);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(
        recs[0],
        json!({"kind":"match","pattern":"unpaid","key":{"order_id":"o1"},"start":0,"end":120000,
               "events":{"created":[{"ts":0,"type":"order_created","order_id":"o1","amount":0}],
                         "paid":[{"ts":120000,"type":"order_paid","order_id":"o1","amount":2}]},
               "select":{"order":"o1","total":2}})
    );
    assert_eq!(
        recs[1],
        json!({"kind":"timeout","pattern":"unpaid","key":{"order_id":"o2"},"start":60000,
               "expired_at":960000,
               "events":{"created":[{"ts":60000,"type":"order_created","order_id":"o2","amount":1}]}})
    );
    // o3 is still open at the end of input: not reported without --flush-at-end.
    let summary = stderr(&out);
    assert!(
        summary.contains("4 events read, 0 malformed, 0 late, 1 match, 1 timeout"),
        "{summary}"
    );
}

#[test]
fn flush_at_end_expires_everything_pending() {
    let events = [
        order(0, "order_created", "o1"),
        order(MIN, "order_created", "o2"),
    ]
    .concat();
    let (out, _) = run("flush", UNPAID, &events, &[]);
    assert!(records(&out).is_empty());
    let (out, _) = run("flush", UNPAID, &events, &["--flush-at-end"]);
    let kinds: Vec<_> = records(&out)
        .iter()
        .map(|r| r["key"]["order_id"].clone())
        .collect();
    assert_eq!(kinds, [json!("o1"), json!("o2")]);
}

#[test]
fn a_quiet_key_times_out_when_time_moves_on_elsewhere() {
    let events = [
        order(0, "order_created", "o1"),
        order(16 * MIN, "order_paid", "o9"),
    ]
    .concat();
    let (out, _) = run("quiet", UNPAID, &events, &[]);
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["kind"], "timeout");
    assert_eq!(recs[0]["key"], json!({"order_id":"o1"}));
}

#[test]
fn late_events_go_to_the_late_file() {
    let events = [
        order(5 * MIN, "order_created", "o1"),
        order(MIN, "order_paid", "o1"),
        order(3 * MIN, "order_paid", "o1"),
        order(6 * MIN, "order_paid", "o1"),
    ]
    .concat();
    let (out, dir) = run(
        "late",
        UNPAID,
        &events,
        &["--max-delay", "2m", "--late", "late.jsonl"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let late = std::fs::read_to_string(dir.join("late.jsonl")).unwrap();
    let late: Vec<Value> = late
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0]["kind"], "late");
    assert_eq!(late[0]["event"]["ts"], MIN);
    let recs = records(&out);
    // The event at 3m was within the delay: processed in time order, it
    // comes before the order was created, so only 6m pays it.
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["events"]["paid"][0]["ts"], 6 * MIN);
    assert!(stderr(&out).contains("1 late"));
}

#[test]
fn punctuated_watermarks_fire_timeouts_and_make_events_late() {
    let events = format!(
        "{}{}\n{}",
        order(0, "order_created", "o1"),
        r#"{"$watermark": 1000000}"#,
        order(10 * MIN, "order_paid", "o1")
    );
    let (out, dir) = run(
        "wm",
        UNPAID,
        &events,
        &["--max-delay", "1h", "--late", "late.jsonl"],
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["kind"], "timeout");
    assert_eq!(
        std::fs::read_to_string(dir.join("late.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}

#[test]
fn malformed_lines_are_reported_and_skipped() {
    let events = format!(
        "{}not json\n[1]\n\n{{\"type\":\"order_paid\"}}\n{{\"ts\":\"noon\"}}\n{}",
        order(0, "order_created", "o1"),
        order(MIN, "order_paid", "o1")
    );
    let (out, _) = run("malformed", UNPAID, &events, &[]);
    assert!(out.status.success());
    let err = stderr(&out);
    for line in [
        ":2: malformed line: invalid JSON",
        ":3: malformed line: not a JSON object",
        ":5: malformed line: no time field `ts`",
        ":6: malformed line: bad time field",
    ] {
        assert!(err.contains(line), "{line} in {err}");
    }
    assert!(err.contains("2 events read, 4 malformed"), "{err}");
    assert_eq!(records(&out).len(), 1);
}

#[test]
fn strict_stops_at_the_first_malformed_line_keeping_what_was_read() {
    let events = format!(
        "{}{}oops\n{}",
        order(0, "order_created", "o1"),
        order(MIN, "order_paid", "o1"),
        order(2 * MIN, "order_created", "o2")
    );
    let (out, _) = run("strict", UNPAID, &events, &["--strict"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains(":3: malformed line"));
    assert_eq!(records(&out).len(), 1);
}

#[test]
fn csv_input_with_rfc3339_times() {
    let events = "ts,type,order_id,amount\n\
                  2024-05-01T12:00:00Z,order_created,o1,\n\
                  2024-05-01T12:05:00.250+00:00,order_paid,o1,19.5\n";
    let (out, _) = run("csv", UNPAID, events, &["--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["start"], 1_714_564_800_000i64);
    assert_eq!(recs[0]["end"], 1_714_565_100_250i64);
    assert_eq!(
        recs[0]["events"]["created"][0],
        json!({"ts":"2024-05-01T12:00:00Z","type":"order_created","order_id":"o1"})
    );
    assert_eq!(recs[0]["select"], json!({"order":"o1","total":19.5}));
}

#[test]
fn exit_statuses() {
    let (out, _) = run("bad_pattern", "pattern p { match }", "", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).is_empty());
    let missing = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .args(["run", "no/such/file.cep"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(4));
    let dir = scratch("io");
    std::fs::write(dir.join("p.cep"), UNPAID).unwrap();
    let no_events = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("run")
        .arg(dir.join("p.cep"))
        .args(["--events", "no/such/events.jsonl"])
        .output()
        .unwrap();
    assert_eq!(no_events.status.code(), Some(4));
    assert!(stderr(&no_events).contains("no/such/events.jsonl"));
    let bad_flag = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("run")
        .arg(dir.join("p.cep"))
        .args(["--max-delay", "soon"])
        .output()
        .unwrap();
    assert_eq!(bad_flag.status.code(), Some(2));
}

#[test]
fn standard_input_is_the_default_source() {
    use std::io::Write;
    let dir = scratch("stdin");
    std::fs::write(dir.join("p.cep"), UNPAID).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("run")
        .arg(dir.join("p.cep"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events = [
        order(0, "order_created", "o1"),
        order(MIN, "order_paid", "o1"),
    ]
    .concat();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(events.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(records(&out).len(), 1);
}

/// A live stream: the match record comes out as soon as the watermark
/// releases it, while standard input is still open (before, it waited in
/// the output buffer until the end of input).
#[test]
fn on_a_live_pipe_records_come_out_while_the_input_is_still_open() {
    let dir = scratch("live_pipe");
    std::fs::write(dir.join("p.cep"), PAIR_BY_K).unwrap();
    let mut live = Live::run(&dir.join("p.cep"), &[]);
    // `b` at 2 is released by the watermark once an event at 3 arrives.
    live.write(concat!(
        r#"{"ts":1,"type":"a","k":1}"#,
        "\n",
        r#"{"ts":2,"type":"b","k":1}"#,
        "\n",
        r#"{"ts":3,"type":"x","k":1}"#,
        "\n",
    ));
    let record = live.record("a match while the input was open");
    assert_eq!(record["kind"], "match");
    assert_eq!(record["end"], 2);
    live.close();
    let (status, _, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
}

/// `--idle-timeout`: on a quiet stream event time follows the clock, so a
/// window closes and its timeout comes out while the input is still open
/// (without it, nothing happens until the next event or the end).
#[test]
fn on_a_quiet_stream_idle_time_fires_timeouts() {
    let dir = scratch("idle");
    let pattern = r#"pattern quick {
    partition by k
    within 300ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;
    std::fs::write(dir.join("p.cep"), pattern).unwrap();
    let first_line = |extra: &[&str], wait: Duration| {
        let mut live = Live::run(&dir.join("p.cep"), extra);
        live.write("{\"ts\":1000,\"type\":\"a\",\"k\":1}\n");
        live.line(wait)
    };
    let line = first_line(&["--idle-timeout", "100ms"], PATIENCE)
        .expect("no timeout while the input was open");
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["kind"], "timeout");
    assert_eq!(record["expired_at"], 1300);
    // Without it the quiet stream keeps its time: nothing within a second.
    assert_eq!(first_line(&[], Duration::from_secs(1)), None);
    // Zero is refused.
    let zero = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("run")
        .arg(dir.join("p.cep"))
        .args(["--idle-timeout", "0s"])
        .output()
        .unwrap();
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn with_punctuated_watermarks_the_end_of_input_keeps_later_events_pending() {
    let events = format!(
        "{}{}\n{}",
        order(0, "order_created", "o1"),
        r#"{"$watermark": 0}"#,
        order(MIN, "order_paid", "o1")
    );
    let (out, _) = run("wm_end", UNPAID, &events, &["--max-delay", "1h"]);
    assert!(records(&out).is_empty());
    let (out, _) = run(
        "wm_end",
        UNPAID,
        &events,
        &["--max-delay", "1h", "--flush-at-end"],
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["kind"], "match");
}

#[test]
fn output_late_and_events_must_be_different_files() {
    // `--output X --late X` interleaved both streams into X (a late record
    // overwrote a match); `--output X --events X` truncated the input
    // before it was read. Both are refused with exit 2, also through
    // another spelling of the path or a hard link.
    let dir = scratch("same_files");
    std::fs::write(dir.join("p.cep"), UNPAID).unwrap();
    let events = "{\"ts\":1,\"type\":\"order_created\",\"order_id\":\"o1\"}\n";
    std::fs::write(dir.join("events"), events).unwrap();
    std::fs::hard_link(dir.join("events"), dir.join("linked")).unwrap();
    let cases: [&[&str]; 4] = [
        &["--output", "out", "--late", "./out"],
        &["--events", "events", "--output", "events"],
        &["--events", "events", "--output", "linked"],
        &["--events", "events", "--late", "../cli_same/../events"],
    ];
    for extra in cases {
        let mut args = vec!["run", "p.cep", "--no-progress"];
        if !extra.contains(&"--events") {
            args.extend(["--events", "events"]);
        }
        args.extend_from_slice(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_cepheid"))
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if extra.contains(&"../cli_same/../events") {
            // A path through a folder that does not exist names no file
            // here: not the same file, and the late output cannot be
            // created (exit 4).
            assert_eq!(out.status.code(), Some(4), "{extra:?}: {stderr}");
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains("are the same file"), "{extra:?}: {stderr}");
    }
    // Nothing was truncated.
    assert_eq!(std::fs::read_to_string(dir.join("events")).unwrap(), events);
}

#[test]
fn a_watermark_line_is_exactly_one_field() {
    // `{"$watermark": 100, "ts": 5, ...}` became a watermark and the event
    // was dropped without a word; it is now a malformed line, counted and
    // named, and the run goes on.
    let events = concat!(
        "{\"$watermark\":100,\"ts\":5,\"order_id\":\"o1\",\"type\":\"order_created\"}\n",
        "{\"ts\":6,\"order_id\":\"o2\",\"type\":\"order_created\"}\n",
    );
    let (out, _) = run("watermark_fields", UNPAID, events, &["--flush-at-end"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(":1: malformed line"), "{stderr}");
    assert!(stderr.contains("1 malformed"), "{stderr}");
    let recs = records(&out);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["key"]["order_id"], "o2");
    // And the time field cannot be `$watermark` (every line would be one).
    let (out, _) = run(
        "watermark_time_field",
        UNPAID,
        events,
        &["--time-field", "$watermark"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn events_left_after_the_last_watermark_are_counted() {
    // With `$watermark` lines the input defines event time, and events after
    // its last watermark stay unprocessed at the end (Flink's operator); the
    // summary says how many, instead of nothing.
    let events = concat!(
        "{\"$watermark\":0}\n",
        "{\"ts\":1,\"order_id\":\"o1\",\"type\":\"order_created\"}\n",
        "{\"ts\":2,\"order_id\":\"o1\",\"type\":\"order_paid\"}\n",
    );
    let (out, _) = run("waiting_at_end", UNPAID, events, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(records(&out).is_empty());
    assert!(
        stderr.contains(
            ", 1 waiting after the last watermark (not processed; --flush-at-end processes them)"
        ),
        "{stderr}"
    );
    let (out, _) = run(
        "waiting_at_end_flushed",
        UNPAID,
        events,
        &["--flush-at-end"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(records(&out).len(), 1, "{stderr}");
    // (the phrase, not the word: the run's folder, named in the warning
    // that `amount` never occurs, has "waiting" in its name)
    assert!(!stderr.contains("waiting after"), "{stderr}");
}

#[test]
fn small_command_line_mistakes_get_clear_errors() {
    // `--late -` created a file named `-`.
    let (out, dir) = run("late_dash", UNPAID, "", &["--late", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--late needs a file path"));
    assert!(!dir.join("-").exists());
    // `--max-delay -1s` was taken for an unknown flag by the argument parser.
    let (out, _) = run("negative_delay", UNPAID, "", &["--max-delay", "-1s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`-1s` is not a duration"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `check` on a folder without `.cep` files said "ok" and exited 4.
    let empty = scratch("no_patterns");
    let out = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("check")
        .arg(&empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("error: no `.cep` files"), "{stderr}");
    assert!(stderr.contains("failed: 1 error"), "{stderr}");
}

/// `a followed by b` per key `k`.
const PAIR_BY_K: &str = r#"
pattern pair {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
"#;

#[test]
fn object_keys_are_reported_once_and_counted_and_equal_numbers_are_one_key() {
    let events = concat!(
        r#"{"ts":1,"type":"a","k":1}"#,
        "\n",
        r#"{"ts":2,"type":"a","k":{"x":1}}"#,
        "\n",
        r#"{"ts":3,"type":"b","k":{"x":1}}"#,
        "\n",
        r#"{"ts":4,"type":"b","k":1.0}"#,
        "\n",
    );
    let (output, dir) = run("object_keys", PAIR_BY_K, events, &[]);
    assert_eq!(output.status.code(), Some(0));
    let out = records(&output);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["key"], serde_json::json!({"k": 1}));
    let err = stderr(&output);
    let path = dir.join("events").display().to_string();
    let message = format!("{path}:2: pattern `pair`: partition key `k` is an object");
    assert!(err.contains(&message), "{err}");
    assert_eq!(err.matches("is an object").count(), 1, "{err}");
    assert!(
        err.contains(" 1 match, 0 timeouts, 2 unusable keys in "),
        "{err}"
    );
}

/// `[{"x":1}]` was read as `[null]`: the same key as a real `[null]`, so
/// these two events matched silently. A list holding an object is an
/// unusable key, reported once and counted.
#[test]
fn lists_holding_objects_are_unusable_keys_reported_and_counted() {
    let events = concat!(
        r#"{"ts":1,"type":"a","k":[null]}"#,
        "\n",
        r#"{"ts":2,"type":"b","k":[{"x":1}]}"#,
        "\n",
        r#"{"ts":3,"type":"b","k":[1,[{"x":1}]]}"#,
        "\n",
        r#"{"ts":4,"type":"b","k":[null]}"#,
        "\n",
    );
    let (output, dir) = run("list_object_keys", PAIR_BY_K, events, &[]);
    assert_eq!(output.status.code(), Some(0));
    let out = records(&output);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["key"], serde_json::json!({"k": [null]}));
    assert_eq!(out[0]["events"]["b"][0]["ts"], 4);
    let err = stderr(&output);
    let path = dir.join("events").display().to_string();
    let message =
        format!("{path}:2: pattern `pair`: partition key `k` is an object or a list holding one");
    assert!(err.contains(&message), "{err}");
    assert_eq!(err.matches("holding one").count(), 1, "{err}");
    assert!(
        err.contains(" 1 match, 0 timeouts, 2 unusable keys in "),
        "{err}"
    );
}

/// Standard error that cannot be written (a full disk where it is logged,
/// a log pipe whose reader died) never takes the run down: diagnostics
/// (malformed lines, late events, the summary) are lost, the records and
/// the exit status are those of a run whose standard error works.
#[cfg(unix)]
#[test]
fn an_unwritable_standard_error_never_takes_the_run_down() {
    let dir = scratch("stderr_full");
    std::fs::write(dir.join("p.cep"), UNPAID).unwrap();
    let mut events = String::new();
    for i in 0..2_000 {
        events += &order(i * 1_000, "order_created", &format!("o{i}"));
        if i % 3 == 0 {
            events += "not json\n";
        }
    }
    std::fs::write(dir.join("events"), &events).unwrap();
    let command = |out: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cepheid"));
        command
            .current_dir(&dir)
            .args(["run", "p.cep", "--events", "events", "--no-progress"])
            .args(["--output", out]);
        command
    };
    let fine = command("fine.jsonl").output().unwrap();
    assert!(fine.status.success(), "{}", stderr(&fine));
    assert!(stderr(&fine).contains("malformed line"));
    let expected = std::fs::read(dir.join("fine.jsonl")).unwrap();
    assert!(expected.len() > 1000);
    // `2>/dev/full`: every write fails with ENOSPC.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let status = command("full.jsonl").stderr(full).status().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(std::fs::read(dir.join("full.jsonl")).unwrap(), expected);
    // A pipe whose reader is gone: every write fails with EPIPE.
    let mut child = command("pipe.jsonl")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(std::fs::read(dir.join("pipe.jsonl")).unwrap(), expected);
}

/// Keys are exact (issue 26): u64 ids beyond the `i64` range are distinct
/// keys (they were one float), and CSV cells `00042` and `42`, `+7` and
/// `7` are distinct keys, each event's text showing its own cell.
#[test]
fn ids_beyond_i64_and_csv_cells_as_written_are_exact_keys() {
    let events = concat!(
        r#"{"ts":1,"type":"a","k":12345678901234567890}"#,
        "\n",
        r#"{"ts":2,"type":"b","k":12345678901234567891}"#,
        "\n",
        r#"{"ts":3,"type":"a","k":18446744073709551615}"#,
        "\n",
        r#"{"ts":4,"type":"b","k":18446744073709551615}"#,
        "\n",
    );
    let (output, _) = run("u64_keys", PAIR_BY_K, events, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(r#""key":{"k":"18446744073709551615"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"{"ts":3,"type":"a","k":18446744073709551615}"#),
        "{text}"
    );
    let events = "ts,type,k\n1,a,00042\n2,b,42\n3,a,+7\n4,b,7\n5,a,12345678901234567890\n\
                  6,b,12345678901234567891\n7,a,009\n8,b,009\n";
    let (output, _) = run("csv_keys", PAIR_BY_K, events, &["--format", "csv"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(r#""key":{"k":"009"}"#), "{text}");
    assert!(text.contains(r#"{"ts":7,"type":"a","k":"009"}"#), "{text}");
}

#[test]
fn the_summary_as_json_has_each_patterns_counts() {
    let out = common::cepheid()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "patterns/",
            "--events",
            "examples/data/sample.jsonl",
            "--no-progress",
            "--summary",
            "json",
        ])
        .output()
        .expect("run cepheid");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().expect("a summary");
    let summary: serde_json::Value = serde_json::from_str(line).expect(line);
    assert_eq!(summary["events"], 102);
    assert_eq!(summary["matches"], 14);
    assert_eq!(summary["timeouts"], 2);
    assert_eq!(summary["late"], 3);
    assert!(summary["elapsed"].is_f64(), "{summary}");
    let patterns = summary["patterns"].as_array().expect("patterns");
    assert_eq!(patterns.len(), 10);
    // Each pattern's own counts are what the run wrote for it.
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for p in patterns {
        let name = p["name"].as_str().unwrap();
        let of = |kind: &str| {
            records
                .iter()
                .filter(|r| r["pattern"] == name && r["kind"] == kind)
                .count() as u64
        };
        assert_eq!(p["matches"].as_u64(), Some(of("match")), "{name}");
        assert_eq!(p["timeouts"].as_u64(), Some(of("timeout")), "{name}");
    }
}

/// Issue 41's sample rules (`patterns/alternation/`) through `cepheid run`:
/// the records are `expected.jsonl` (which the engine's own test,
/// `crates/engine/tests/it/alternation.rs`, writes and checks), byte for
/// byte on one engine and as the same records, by key, on two workers.
#[test]
fn the_alternation_samples_give_their_expected_records() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("patterns/alternation");
    let expected = std::fs::read_to_string(root.join("expected.jsonl")).unwrap();
    assert!(expected.contains(r#""branch":[1]"#) && expected.contains(r#""branch":[2]"#));
    let mut runs: Vec<&[&str]> = vec![&[]];
    if cfg!(feature = "workers") {
        runs.push(&["--workers", "2"]);
    }
    for extra in runs {
        let out = common::run_here(&root).args(extra).output().unwrap();
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        let got = String::from_utf8(out.stdout).unwrap();
        if extra.is_empty() {
            assert_eq!(got, expected);
        } else {
            let sorted = |text: &str| {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.sort_unstable();
                lines.join("\n")
            };
            assert_eq!(sorted(&got), sorted(&expected), "{extra:?}");
        }
    }
}
