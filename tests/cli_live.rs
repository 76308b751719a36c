//! `cepheid run` on live input through the built binary: `--follow` on a
//! file that is appended to, rotated and truncated while it runs;
//! `--time processing`; SIGINT and SIGTERM. Records are read as they come
//! (`common::Live`), each with a generous deadline, never after a sleep.

use crate::common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use common::{cepheid, scratch, Live};

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

fn event(ts: i64, kind: &str, k: u32) -> String {
    format!("{{\"ts\":{ts},\"type\":\"{kind}\",\"k\":{k}}}\n")
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[test]
fn follow_reads_a_growing_file_through_rotation_and_truncation() {
    let dir = scratch("follow");
    let events = dir.join("events.jsonl");
    fs::write(dir.join("p.cep"), PAIR_BY_K).unwrap();
    // `b` at 2 is released once an event at 3 moves the watermark to 2.
    fs::write(
        &events,
        [event(1, "a", 1), event(2, "b", 1), event(3, "x", 1)].concat(),
    )
    .unwrap();
    let events_arg = events.to_str().unwrap();
    let live = Live::run(
        &dir.join("p.cep"),
        &["--events", events_arg, "--follow", "--no-progress"],
    );
    let first = live.record("the file's first match");
    assert_eq!(
        (first["kind"].as_str(), first["end"].as_i64()),
        (Some("match"), Some(2))
    );

    // Appended while it runs: read as it comes.
    append(
        &events,
        &[event(4, "a", 2), event(5, "b", 2), event(6, "x", 2)].concat(),
    );
    let appended = live.record("a match from appended lines");
    assert_eq!(appended["key"]["k"], 2);
    assert_eq!(appended["end"], 5);

    // Rotated: renamed away, a new file under the same name, read from its
    // beginning. Key 4's `a` waits for its `b`.
    fs::rename(&events, dir.join("events.jsonl.1")).unwrap();
    fs::write(
        &events,
        [
            event(7, "a", 3),
            event(8, "b", 3),
            event(9, "a", 4),
            event(9, "x", 3),
        ]
        .concat(),
    )
    .unwrap();
    let rotated = live.record("a match from the new file");
    assert_eq!(rotated["key"]["k"], 3);
    assert_eq!(rotated["end"], 8);

    // Truncated (copytruncate) and written again, shorter: read from the
    // beginning too; state carries over (key 4 completes).
    fs::write(&events, [event(10, "b", 4), event(11, "x", 4)].concat()).unwrap();
    let truncated = live.record("a match from the truncated file");
    assert_eq!(truncated["key"]["k"], 4);
    assert_eq!(truncated["events"]["a"][0]["ts"], 9);
    assert_eq!(truncated["end"], 10);

    // Never ends by itself; SIGTERM stops it cleanly.
    assert_eq!(live.line(std::time::Duration::from_millis(200)), None);
    live.signal("TERM");
    let (status, rest, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(stderr.contains("cepheid: stopped by SIGTERM"), "{stderr}");
    assert!(
        stderr.contains("12 events read, 0 malformed, 0 late, 4 matches, 0 timeouts"),
        "{stderr}"
    );
    // The event at 11 waits for the watermark: counted, not forced out.
    assert!(
        stderr.contains(", 1 waiting for the watermark (not processed: stopped by SIGTERM)"),
        "{stderr}"
    );
}

#[test]
fn follow_with_an_idle_timeout_fires_timeouts_on_a_quiet_file() {
    let dir = scratch("follow_idle");
    let events = dir.join("events.jsonl");
    let pattern = r#"pattern quick {
        partition by k
        within 300ms
        timeouts
        match a followed by b
        where
            a: type == "a"
            b: type == "b"
    }"#;
    fs::write(dir.join("p.cep"), pattern).unwrap();
    fs::write(&events, event(1000, "a", 1)).unwrap();
    let live = Live::run(
        &dir.join("p.cep"),
        &[
            "--events",
            events.to_str().unwrap(),
            "--follow",
            "--idle-timeout",
            "100ms",
        ],
    );
    let timeout = live.record("a timeout on a quiet followed file");
    assert_eq!(timeout["kind"], "timeout");
    assert_eq!(timeout["expired_at"], 1300);
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

#[test]
fn sigint_stops_a_run_cleanly() {
    let dir = scratch("sigint");
    fs::write(dir.join("p.cep"), PAIR_BY_K).unwrap();
    let mut live = Live::run(&dir.join("p.cep"), &[]);
    live.write(&[event(1, "a", 1), event(2, "b", 1), event(3, "x", 1)].concat());
    assert_eq!(live.record("a match")["end"], 2);
    live.signal("INT");
    let (status, rest, stderr) = live.finish();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(stderr.contains("cepheid: stopped by SIGINT"), "{stderr}");
    assert!(stderr.contains("3 events read"), "{stderr}");
}

#[test]
fn processing_time_stamps_events_with_the_clock_and_closes_windows_with_it() {
    let dir = scratch("processing");
    let pattern = r#"pattern quick {
        partition by k
        within 300ms
        timeouts
        match a followed by b
        where
            a: type == "a"
            b: type == "b"
    }"#;
    fs::write(dir.join("p.cep"), pattern).unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = now();
    let mut live = Live::run(&dir.join("p.cep"), &["--time", "processing"]);
    // No time field; a time field that is there plays no part.
    live.write("{\"type\":\"a\",\"k\":1}\n{\"type\":\"b\",\"k\":1,\"ts\":5}\n");
    let matched = live.record("a match in processing time");
    let after = now();
    assert_eq!(matched["kind"], "match");
    let (start, end) = (
        matched["start"].as_i64().unwrap(),
        matched["end"].as_i64().unwrap(),
    );
    assert!(
        before <= start && start <= end && end <= after,
        "{before} {matched} {after}"
    );
    // A quiet stream: the window of key 2 closes with the clock.
    live.write("{\"$watermark\": 1}\n{\"type\":\"a\",\"k\":2}\n");
    let timeout = live.record("a timeout on a quiet stream");
    assert_eq!(timeout["kind"], "timeout");
    let start = timeout["start"].as_i64().unwrap();
    assert_eq!(timeout["expired_at"].as_i64(), Some(start + 300));
    assert!(now() >= start + 300);
    live.close();
    let (status, rest, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        stderr.contains(":3: `$watermark` lines are ignored with --time processing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 events read, 0 malformed, 0 late, 1 match, 1 timeout"),
        "{stderr}"
    );
}

#[test]
fn options_that_do_not_go_together_are_refused() {
    let dir = scratch("live_refused");
    fs::write(dir.join("p.cep"), PAIR_BY_K).unwrap();
    fs::write(dir.join("events"), "").unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--follow"], "--follow needs --events FILE"),
        (
            &["--follow", "--events", "events", "--flush-at-end"],
            "cannot be used with",
        ),
        (
            &["--time", "processing", "--max-delay", "1s"],
            "--max-delay has no meaning",
        ),
        (
            &["--time", "processing", "--idle-timeout", "1s"],
            "--idle-timeout has no meaning",
        ),
    ];
    for (args, message) in cases {
        let out = cepheid()
            .arg("run")
            .arg("p.cep")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
