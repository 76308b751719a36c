//! `cepheid run --metrics ADDR` (feature `metrics`): the repository's rules
//! over the sample stream, followed (with an idle timeout, so that every
//! window closes), scraped over a plain TCP GET while the run goes on: the
//! Prometheus text gives the run's known counts (14 matches, 2 timeouts, 3
//! late) and, per pattern, what the run wrote; `/status.json` parses. The
//! output is the same byte for byte with and without `--metrics`; a busy
//! address exits 4. The same run on two workers gives the same numbers
//! (their sums) and each worker's own; on two processes, each serves its
//! own workers' numbers on its own address, which add up to the run's.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{cepheid, Live, PATIENCE};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The sample stream's lines, each with its newline.
fn sample_lines() -> Vec<String> {
    let sample = std::fs::read_to_string(root().join("examples/data/sample.jsonl")).unwrap();
    sample.lines().map(|l| format!("{l}\n")).collect()
}

/// `GET path` over a plain TCP connection: the status code and the body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

/// Each sample of the metric `name` by its `pattern` label.
fn per_pattern(text: &str, name: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{name}{{pattern=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (pattern, value) = rest.split_once("\"} ")?;
            Some((pattern.to_string(), value.parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// The value of the unlabelled metric `name`.
pub(crate) fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Records of `kind` per pattern in output lines.
fn count(lines: &[String], kind: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in lines {
        let record: serde_json::Value = serde_json::from_str(line).expect("JSON");
        if record["kind"] == kind {
            let name = record["pattern"].as_str().unwrap().to_string();
            *counts.entry(name).or_default() += 1;
        }
    }
    counts
}

/// The address in `cepheid: metrics on http://ADDR/`.
pub(crate) fn address(line: &str) -> SocketAddr {
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no address: {line}"));
    addr.parse().expect("an address")
}

#[test]
fn metrics_of_a_followed_run_give_what_it_wrote() {
    followed_run_metrics(&[]);
}

/// The twin of [`metrics_of_a_followed_run_give_what_it_wrote`] on two
/// workers: the same numbers (the workers' sums), and each worker's own.
#[cfg(feature = "workers")]
#[test]
fn metrics_of_a_followed_run_on_workers_give_what_it_wrote() {
    let text = followed_run_metrics(&["--workers", "2"]);
    // Each worker's own numbers, which add up to the run's matches.
    let per_worker = |name: &str| -> BTreeMap<String, u64> {
        let prefix = format!("{name}{{worker=\"");
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&prefix)?;
                let (worker, value) = rest.split_once("\"} ")?;
                Some((worker.to_string(), value.parse::<f64>().ok()? as u64))
            })
            .collect()
    };
    let matches = per_worker("cepheid_worker_matches_total");
    assert_eq!(matches.keys().collect::<Vec<_>>(), ["0", "1"], "{text}");
    assert_eq!(matches.values().sum::<u64>(), 14, "{text}");
    assert_eq!(per_worker("cepheid_worker_events_total").len(), 2, "{text}");
}

/// Runs the repository's rules over the sample stream, followed, with
/// `--metrics` and `extra`; checks what `/metrics` and `/status.json`
/// say against what the run wrote; returns the last `/metrics` text.
fn followed_run_metrics(extra: &[&str]) -> String {
    let root = root();
    let workers = !extra.is_empty();
    let live = Live::spawn(
        cepheid()
            .current_dir(&root)
            .args([
                "run",
                "patterns/",
                "--events",
                "examples/data/sample.jsonl",
                "--follow",
                "--idle-timeout",
                "100ms",
                "--no-progress",
                "--metrics",
                "127.0.0.1:0",
            ])
            .args(extra),
    );
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    // The sample's 14 matches and 2 timeouts (the idle timeout closes the
    // last windows).
    let mut lines = Vec::new();
    while lines.len() < 16 {
        lines.push(live.line(PATIENCE).expect("an output line"));
    }
    let matches = count(&lines, "match");
    let timeouts = count(&lines, "timeout");
    // The status is updated once per batch or idle second: wait for it.
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let (code, text) = get(addr, "/metrics");
        assert_eq!(code, 200, "{text}");
        let m = per_pattern(&text, "cepheid_matches_total");
        let t = per_pattern(&text, "cepheid_timeouts_total");
        if m.values().sum::<u64>() == 14 && t.values().sum::<u64>() == 2 {
            break text;
        }
        assert!(Instant::now() < deadline, "the counts never came: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let m = per_pattern(&text, "cepheid_matches_total");
    let t = per_pattern(&text, "cepheid_timeouts_total");
    assert_eq!(m.len(), 10, "{text}");
    for (name, n) in &m {
        assert_eq!(*n, matches.get(name).copied().unwrap_or(0), "{name}");
        assert_eq!(t[name], timeouts.get(name).copied().unwrap_or(0), "{name}");
    }
    assert_eq!(
        value(&text, "cepheid_events_late_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "cepheid_events_read_total"),
        Some(102.0),
        "{text}"
    );
    assert_eq!(value(&text, "cepheid_events_malformed_total"), Some(0.0));
    // The whole file read: nothing behind its end (one reader's; on
    // workers too, where worker 0 reads the followed file).
    let lag = value(&text, "cepheid_source_lag_bytes");
    assert_eq!(lag, Some(0.0), "{text}");
    for (name, version) in per_pattern(&text, "cepheid_rule_version") {
        assert_eq!(version, 1, "{name}");
    }

    // Each pattern's latest records: every one written (on workers too,
    // copied from the blocks the workers write, whose observer shows
    // them at its next tick: waited for).
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        let (code, json) = get(addr, "/status.json");
        assert_eq!(code, 200);
        let status: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        let recent: usize = (status["patterns"].as_array().expect("patterns").iter())
            .map(|p| p["recent"].as_array().map_or(0, Vec::len))
            .sum();
        if recent >= 16 {
            break status;
        }
        assert!(Instant::now() < deadline, "the records never came: {json}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["run"]["matches"], 14);
    assert_eq!(status["run"]["timeouts"], 2);
    assert_eq!(status["run"]["late"], 3);
    let patterns = status["patterns"].as_array().expect("patterns");
    assert_eq!(patterns.len(), 10);
    for p in patterns {
        // Each pattern's automaton, and its latest records.
        let graph = &p["graph"];
        assert!(
            graph["nodes"].as_array().is_some_and(|n| !n.is_empty()),
            "{p}"
        );
        let name = p["name"].as_str().unwrap();
        let written =
            matches.get(name).copied().unwrap_or(0) + timeouts.get(name).copied().unwrap_or(0);
        let recent = p["recent"].as_array().unwrap();
        assert_eq!(recent.len() as u64, written, "{name}");
        // The very records written, in the order written.
        let of_pattern: Vec<serde_json::Value> = (lines.iter())
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|record| record["pattern"] == name)
            .collect();
        let mut shown = recent.clone();
        let mut wrote = of_pattern.clone();
        if workers {
            // (the workers' blocks interleave: in no set order)
            let key = |v: &serde_json::Value| v.to_string();
            shown.sort_by_key(key);
            wrote.sort_by_key(key);
        }
        assert_eq!(shown, wrote, "{name}");
    }

    live.signal("TERM");
    let (status, rest, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    text
}

#[test]
fn metrics_change_nothing_in_the_output() {
    let run = |metrics: bool| {
        let mut command = cepheid();
        command.current_dir(root()).args([
            "run",
            "patterns/",
            "--events",
            "examples/data/sample.jsonl",
            "--no-progress",
        ]);
        if metrics {
            command.args(["--metrics", ":0"]);
        }
        command.output().unwrap()
    };
    let (plain, watched) = (run(false), run(true));
    assert!(plain.status.success() && watched.status.success());
    assert_eq!(plain.stdout, watched.stdout);
    assert!(!plain.stdout.is_empty());
    let stderr = String::from_utf8(watched.stderr).unwrap();
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with("cepheid: metrics on http://127.0.0.1:"),
        "{stderr}"
    );
    // Nothing else: the same summary (its first line without the time it
    // took, and each pattern's line).
    let plain_err = String::from_utf8(plain.stderr).unwrap();
    let summary = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with("cepheid: metrics on "))
            .map(|l| l.split(" in ").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(summary(&stderr), summary(&plain_err));
    assert_eq!(summary(&stderr).len(), 11, "{stderr}");
}

#[test]
fn metrics_on_a_busy_address_is_an_io_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = cepheid()
        .current_dir(root())
        .args([
            "run",
            "patterns/",
            "--events",
            "examples/data/sample.jsonl",
            "--metrics",
            &addr,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: --metrics {addr}: ")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// Two processes of one worker following the sample (read by process
/// 0's worker, the events going to the worker of their key), each with
/// `--metrics :0`: each serves its own worker's numbers on its own
/// address, and the two add up to the run's.
#[cfg(feature = "workers")]
#[test]
fn each_process_serves_its_own_workers_metrics() {
    let dir = crate::common::scratch("metrics_processes");
    let port = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port()
    };
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", port(), port()),
    )
    .unwrap();
    let processes: Vec<Live> = (0..2)
        .map(|process| {
            Live::spawn(
                cepheid()
                    .current_dir(root())
                    .args(["run", "patterns/", "--events", "examples/data/sample.jsonl"])
                    .args(["--follow", "--idle-timeout", "100ms", "--no-progress"])
                    .args(["--metrics", ":0", "--workers", "1", "--processes", "2"])
                    .args(["--process", &process.to_string()])
                    .arg("--hostfile")
                    .arg(&hosts)
                    .arg("--output")
                    .arg(dir.join(format!("out{process}.jsonl"))),
            )
        })
        .collect();
    let addrs: Vec<SocketAddr> = processes
        .iter()
        .map(|p| address(&p.stderr_line("cepheid: metrics on http://")))
        .collect();
    assert_ne!(addrs[0], addrs[1]);
    let deadline = Instant::now() + PATIENCE;
    let texts = loop {
        let texts: Vec<String> = addrs
            .iter()
            .map(|addr| {
                let (code, text) = get(*addr, "/metrics");
                assert_eq!(code, 200, "{text}");
                text
            })
            .collect();
        let sum = |name: &str| -> u64 {
            texts
                .iter()
                .map(|t| per_pattern(t, name).values().sum::<u64>())
                .sum()
        };
        if sum("cepheid_matches_total") == 14 && sum("cepheid_timeouts_total") == 2 {
            break texts;
        }
        assert!(
            Instant::now() < deadline,
            "the counts never came: {texts:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Process 0's worker read every event (and found the late ones); each
    // process's worker matched some (the keys are spread).
    let read = |t: &str| value(t, "cepheid_events_read_total");
    assert_eq!((read(&texts[0]), read(&texts[1])), (Some(102.0), Some(0.0)));
    assert_eq!(value(&texts[0], "cepheid_events_late_total"), Some(3.0));
    // The followed file's one reader is process 0's: its lag is there,
    // left out by the other process.
    let lag = |t: &str| value(t, "cepheid_source_lag_bytes");
    assert_eq!((lag(&texts[0]), lag(&texts[1])), (Some(0.0), None));
    for (process, text) in texts.iter().enumerate() {
        let matches = per_pattern(text, "cepheid_matches_total");
        assert_eq!(matches.len(), 10, "{text}");
        assert!(
            matches.values().sum::<u64>() > 0,
            "process {process}: {text}"
        );
        let worker = format!("cepheid_worker_matches_total{{worker=\"{process}\"}}");
        assert!(text.contains(&worker), "{text}");
    }
    // Process 0 reads the input: stopped, it ends the run of both.
    processes[0].signal("TERM");
    let codes: Vec<Option<i32>> = processes
        .into_iter()
        .map(|live| live.finish().0.code())
        .collect();
    assert_eq!(codes, [Some(143), Some(0)]);
}

#[test]
fn a_field_warning_is_counted_in_the_metrics() {
    field_warning_counted(&[]);
}

/// The same on workers: worker 0's reader of the followed file watches the
/// fields; the warning is counted in the run's metrics.
#[cfg(feature = "workers")]
#[test]
fn a_field_warning_on_workers_is_counted_in_the_metrics() {
    field_warning_counted(&["--workers", "2"]);
}

/// A misspelt field said after 3 events of a followed file, run with
/// `extra`, counted in `cepheid_field_warnings_total`.
fn field_warning_counted(extra: &[&str]) {
    let dir = crate::common::scratch("metrics_field_warning");
    std::fs::write(
        dir.join("rules.cep"),
        "pattern fails {\n    partition by user\n    match f{3}\n    where\n        f: not sucess\n}\n",
    )
    .unwrap();
    let events: String = (0..5)
        .map(|i| format!(r#"{{"ts": {i}, "user": "u", "success": false}}"#) + "\n")
        .collect();
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let live = Live::spawn(
        cepheid()
            .current_dir(&dir)
            .args([
                "run",
                "rules.cep",
                "--events",
                "events.jsonl",
                "--follow",
                "--field-warnings-after",
                "3",
                "--no-progress",
                "--metrics",
                "127.0.0.1:0",
            ])
            .args(extra),
    );
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let warning = live.stderr_line("never occurs");
    assert!(warning.contains("did you mean `success`?"), "{warning}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, text) = get(addr, "/metrics");
        if value(&text, "cepheid_field_warnings_total") == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "never counted: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

/// Lists and indicators on `/metrics` and `/status.json`: `patterns/risk`
/// followed with `--max-delay 1d` (its last event, 25 hours in, holds
/// event time where the first day's events are processed and inside the
/// indicators' windows): the list a confirmed
/// fraud writes holds its one device, one change made; the indicators
/// hold entries in groups. A run whose rules declare neither shows none
/// of these metrics.
#[test]
fn lists_and_indicators_are_in_the_metrics() {
    let live = Live::spawn(
        cepheid()
            .current_dir(root())
            .args([
                "run",
                "patterns/risk",
                "--events",
                "patterns/risk/events.jsonl",
            ])
            .args(["--follow", "--max-delay", "1d", "--no-progress"])
            .args(["--output", "/dev/null", "--metrics", "127.0.0.1:0"]),
    );
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let (_, text) = get(addr, "/metrics");
        if value(&text, "cepheid_list_entries{list=\"blocked_devices\"}") == Some(1.0) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the list never held its entry: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        value(&text, "cepheid_list_changes_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "cepheid_list_changes_late_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "cepheid_list_adds_refused_total{why=\"limit\"}"),
        Some(0.0),
        "{text}"
    );
    // (no shadow rule wrote: no shadow metrics)
    assert!(!text.contains("cepheid_list_shadow"), "{text}");
    for name in ["cepheid_indicator_entries", "cepheid_indicator_groups"] {
        assert!(
            value(&text, name).is_some_and(|v| v > 0.0),
            "{name}: {text}"
        );
    }
    assert_eq!(
        value(
            &text,
            "cepheid_indicator_events_left_out_total{why=\"not_numeric\"}"
        ),
        Some(0.0),
        "{text}"
    );
    let (_, status) = get(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    let memory = &status["run"]["memory"];
    assert_eq!(memory["lists"][0]["name"], "blocked_devices", "{memory}");
    assert_eq!(memory["lists"][0]["entries"], 1, "{memory}");
    // (three of `rules.cep`, one of `scenes.cep`)
    assert_eq!(memory["indicators"], 4, "{memory}");
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");

    // Rules without lists or indicators: none of these metrics.
    let dir = crate::common::scratch("metrics_no_memory");
    std::fs::write(
        dir.join("rules.cep"),
        "pattern p {\n    match a\n    where a: n > 1\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("events.jsonl"), "{\"ts\": 1, \"n\": 2}\n").unwrap();
    let live = Live::spawn(
        cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--events", "events.jsonl", "--follow"])
            .args([
                "--no-progress",
                "--output",
                "/dev/null",
                "--metrics",
                "127.0.0.1:0",
            ]),
    );
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let (_, text) = get(addr, "/metrics");
    assert!(text.contains("cepheid_events_read_total"), "{text}");
    assert!(!text.contains("cepheid_list_"), "{text}");
    assert!(!text.contains("cepheid_indicator_"), "{text}");
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

/// A scraper gone wrong: with `--metrics-max-connections 2`, two idle
/// connections hold the server; the next one is refused (503), counted on
/// `/metrics` and `/status.json`, and said on standard error, while the
/// run goes on matching what comes; once they close, the server answers
/// again. With `--metrics-no-events`, `/status.json` keeps the records
/// without their events.
#[test]
fn connections_beyond_the_limit_are_refused_and_the_run_goes_on() {
    let dir = crate::common::scratch("metrics_limit");
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "").unwrap();
    let live = Live::spawn(
        cepheid()
            .current_dir(root())
            .args(["run", "patterns/", "--events"])
            .arg(&events)
            .args([
                "--follow",
                "--idle-timeout",
                "100ms",
                "--no-progress",
                "--metrics",
                "127.0.0.1:0",
                "--metrics-max-connections",
                "2",
                "--metrics-no-events",
            ]),
    );
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut refused = TcpStream::connect(addr).unwrap();
    refused.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = String::new();
    let _ = refused.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    let said = live.stderr_line("the metrics server refused");
    assert!(said.contains("refused 1 connections so far"), "{said}");
    assert!(said.contains("limit of 2"), "{said}");

    // The run goes on while the connections are held: the sample's 14
    // matches and 2 timeouts.
    let sample = std::fs::read_to_string(root().join("examples/data/sample.jsonl")).unwrap();
    append(&events, &sample);
    let mut lines = Vec::new();
    while lines.len() < 16 {
        lines.push(live.line(PATIENCE).expect("an output line"));
    }
    assert_eq!(count(&lines, "match").values().sum::<u64>(), 14);

    // The scraper goes: the server answers again, every refusal counted
    // (ours, and those met while the closed connections were let go).
    drop(idle);
    let deadline = Instant::now() + PATIENCE;
    let mut met = 0;
    let text = loop {
        match get_or_refused(addr, "/metrics") {
            (200, text) => break text,
            // (a refusal, or one reset before its answer was read)
            (503 | 0, _) => met += 1,
            (code, text) => panic!("{code}: {text}"),
        }
        assert!(Instant::now() < deadline, "never answered again");
        std::thread::sleep(Duration::from_millis(20));
    };
    let counted = value(&text, "cepheid_http_connections_refused_total");
    assert_eq!(counted, Some(1.0 + met as f64), "{text}");
    assert_eq!(
        value(&text, "cepheid_http_max_connections"),
        Some(2.0),
        "{text}"
    );
    // (each scrape answered, or refused while the server still lets go of
    // the connections before it: on a loaded machine it may be slow to)
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let text = answered(addr, "/metrics");
        if per_pattern(&text, "cepheid_matches_total")
            .values()
            .sum::<u64>()
            == 14
        {
            break text;
        }
        assert!(Instant::now() < deadline, "the matches never came: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(value(&text, "cepheid_events_read_total"), Some(102.0));
    let json = answered(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(status["http"]["refused"].as_u64() >= Some(1), "{json}");
    let records: Vec<&serde_json::Value> = (status["patterns"].as_array().unwrap().iter())
        .flat_map(|p| p["recent"].as_array().unwrap())
        .collect();
    assert!(!records.is_empty(), "{json}");
    for record in records {
        assert!(
            record["events"].is_null() && record["select"].is_null(),
            "{record}"
        );
        assert!(
            record["pattern"].is_string() && record["start"].is_i64(),
            "{record}"
        );
    }
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

/// `GET path` until it is answered (200): refused (503, or reset before
/// its answer was read) while the server is at its limit of connections,
/// it is asked again; any other answer fails, and so does none within
/// [`PATIENCE`]. The body.
fn answered(addr: SocketAddr, path: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match get_or_refused(addr, path) {
            (200, text) => return text,
            (503 | 0, _) => {}
            (code, text) => panic!("{code}: {text}"),
        }
        assert!(Instant::now() < deadline, "{path} never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` that may be refused: the status code and the body, `(503,
/// ...)` without waiting for more than the refusal.
fn get_or_refused(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // (a refused connection may be closed before the request is written:
    // its answer, if any, is read all the same)
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut answer = Vec::new();
    // (a refused connection may be reset once its answer is sent)
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

/// Appends `text` to the file `path` in one write.
fn append(path: &Path, text: &str) {
    use std::fs::OpenOptions;
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Scrapes `/metrics` until `done` holds for its text, or fails after
/// [`PATIENCE`] (the status is updated once per batch or idle second).
pub(crate) fn scrape_until(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, text) = get(addr, "/metrics");
        assert_eq!(code, 200, "{text}");
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never came: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn checkpoints_and_the_state_held_are_in_the_metrics() {
    let dir = crate::common::scratch("metrics_checkpoint");
    let events = dir.join("events.jsonl");
    let lines = sample_lines();
    std::fs::write(&events, "").unwrap();
    let state = dir.join("state");
    let live = Live::spawn(cepheid().current_dir(root()).args([
        "run",
        "patterns/",
        "--events",
        events.to_str().unwrap(),
        "--follow",
        "--no-progress",
        "--output",
        dir.join("out.jsonl").to_str().unwrap(),
        "--checkpoint",
        state.to_str().unwrap(),
        // (a checkpoint after every 10 lines; none on time)
        "--checkpoint-every",
        "1h,10",
        "--metrics",
        "127.0.0.1:0",
    ]));
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let text = scrape_until(addr, "the first update", |t| {
        value(t, "cepheid_checkpoints_total").is_some()
    });
    // No checkpoint yet: counted as none, the levels left out.
    assert_eq!(value(&text, "cepheid_checkpoints_total"), Some(0.0));
    assert_eq!(value(&text, "cepheid_checkpoint_failures_total"), Some(0.0));
    assert_eq!(value(&text, "cepheid_checkpoint_size_bytes"), None);
    assert_eq!(value(&text, "cepheid_checkpoint_age_seconds"), None);

    // Three times ten lines: three checkpoints, each after its ten.
    for k in 1..=3u32 {
        let from = 10 * (k as usize - 1);
        append(&events, &lines[from..from + 10].concat());
        let text = scrape_until(addr, "a checkpoint", |t| {
            value(t, "cepheid_checkpoints_total") == Some(f64::from(k))
                && value(t, "cepheid_events_read_total") == Some(f64::from(10 * k))
        });
        // The last checkpoint's size is its files'.
        let size = checkpoint_size(&state);
        assert_eq!(
            value(&text, "cepheid_checkpoint_size_bytes"),
            Some(size as f64),
            "{text}"
        );
        let took = value(&text, "cepheid_checkpoint_duration_seconds").unwrap();
        assert!(took > 0.0 && took < 30.0, "{took}");
        let age = value(&text, "cepheid_checkpoint_age_seconds").unwrap();
        assert!((0.0..30.0).contains(&age), "{age}");
        // The state held: the events partial matches hold, their text.
        let held = value(&text, "cepheid_state_bytes").expect("state measured");
        assert!(held > 0.0, "{text}");
    }
    let text = scrape_until(addr, "no more checkpoints", |_| true);
    assert_eq!(
        value(&text, "cepheid_checkpoints_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(value(&text, "cepheid_checkpoint_failures_total"), Some(0.0));
    let (_, json) = get(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    let checkpoint = &status["run"]["checkpoint"];
    assert_eq!(checkpoint["completed"], 3, "{checkpoint}");
    assert_eq!(checkpoint["failures"], 0, "{checkpoint}");
    assert!(checkpoint["last_error"].is_null(), "{checkpoint}");
    assert!(status["run"]["state_bytes"].as_u64().unwrap() > 0);

    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

#[test]
fn reloads_applied_and_refused_are_in_the_metrics() {
    reloads_in_the_metrics("metrics_reload", &[]);
}

/// The same on workers: worker 0 says each change made or refused to the
/// observer as one engine's run does (they were said on standard error
/// only: the page and `/metrics` showed no change of rules).
#[cfg(feature = "workers")]
#[test]
fn reloads_on_workers_applied_and_refused_are_in_the_metrics() {
    reloads_in_the_metrics("metrics_reload_workers", &["--workers", "2"]);
}

/// A followed file's patterns watched, edited (applied), broken (refused)
/// and reloaded by SIGHUP, on `layout`: each change in the metrics and
/// `/status.json`.
fn reloads_in_the_metrics(name: &str, layout: &[&str]) {
    let dir = crate::common::scratch(name);
    let rules = dir.join("p.cep");
    let pair = "pattern pair {\n    partition by k\n    match a followed by b\n    where\n        a: type == \"a\"\n        b: type == \"b\"\n}\n";
    std::fs::write(&rules, pair).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "{\"ts\":1,\"type\":\"a\",\"k\":1}\n").unwrap();
    let live = Live::spawn(
        cepheid()
            .current_dir(&dir)
            .args([
                "run",
                "p.cep",
                "--events",
                "events.jsonl",
                "--follow",
                "--watch",
                "--no-progress",
                "--metrics",
                "127.0.0.1:0",
            ])
            .args(layout),
    );
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let text = scrape_until(addr, "the first update", |t| {
        value(t, "cepheid_events_read_total") == Some(1.0)
    });
    assert_eq!(value(&text, "cepheid_reloads_total"), Some(0.0));
    assert_eq!(value(&text, "cepheid_reloads_refused_total"), Some(0.0));

    // An edit: applied (version 2).
    std::fs::write(&rules, pair.replace("\"b\"", "\"c\"")).unwrap();
    live.stderr_line("pair: changed (version 2)");
    // (the reload is counted when it happens, the patterns' versions at
    // the next tick: within a second)
    let text = scrape_until(addr, "the reload", |t| {
        value(t, "cepheid_reloads_total") == Some(1.0)
            && per_pattern(t, "cepheid_rule_version").get("pair") == Some(&2)
    });
    assert_eq!(value(&text, "cepheid_reloads_refused_total"), Some(0.0));

    // A broken edit: refused, the old rules kept.
    std::fs::write(&rules, "pattern pair {\n    match a b\n}\n").unwrap();
    live.stderr_line("the old rules go on");
    let text = scrape_until(addr, "the refusal", |t| {
        value(t, "cepheid_reloads_refused_total") == Some(1.0)
    });
    assert_eq!(value(&text, "cepheid_reloads_total"), Some(1.0), "{text}");
    let (_, json) = get(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    let reloads = &status["run"]["reloads"];
    assert_eq!(
        (reloads["applied"].as_u64(), reloads["refused"].as_u64()),
        (Some(1), Some(1))
    );
    let why = reloads["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("have errors"), "{reloads}");
    assert!(reloads["last_ms"].as_i64().is_some(), "{reloads}");

    // SIGHUP with the file fixed: applied again.
    std::fs::write(&rules, pair).unwrap();
    live.stderr_line("pair: changed (version 3)");
    live.signal("HUP");
    live.stderr_line("cepheid: SIGHUP: rules reloaded:");
    let text = scrape_until(addr, "the SIGHUP reload", |t| {
        value(t, "cepheid_reloads_total") == Some(3.0)
    });
    assert_eq!(
        value(&text, "cepheid_reloads_refused_total"),
        Some(1.0),
        "{text}"
    );
    let (_, json) = get(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(status["run"]["reloads"]["last_error"].is_null(), "{json}");

    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("3 rule reloads, 1 refused (the old rules kept)"),
        "{stderr}"
    );
}

#[test]
fn the_page_keeps_the_latest_records_of_a_batch_in_order() {
    let dir = crate::common::scratch("metrics_recent");
    std::fs::write(
        dir.join("p.cep"),
        "pattern pair {\n    partition by k\n    match a followed by b\n    where\n        a: type == \"a\"\n        b: type == \"b\"\n}\n",
    )
    .unwrap();
    // 30 matches in one batch (keys 1 to 30, in that order).
    let events: String = (1..=30)
        .map(|k| {
            format!(
                "{{\"ts\":{},\"type\":\"a\",\"k\":{k}}}\n{{\"ts\":{},\"type\":\"b\",\"k\":{k}}}\n",
                2 * k,
                2 * k + 1
            )
        })
        .collect::<String>()
        // (an event later than all: the watermark passes the last `b`)
        + "{\"ts\":1000,\"type\":\"x\",\"k\":0}\n";
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let live = Live::spawn(cepheid().current_dir(&dir).args([
        "run",
        "p.cep",
        "--events",
        "events.jsonl",
        "--follow",
        "--no-progress",
        "--metrics",
        "127.0.0.1:0",
    ]));
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    scrape_until(addr, "the matches", |t| {
        per_pattern(t, "cepheid_matches_total").get("pair") == Some(&30)
    });
    let (_, json) = get(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<i64> = status["patterns"][0]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"]["k"].as_i64().unwrap())
        .collect();
    // The page keeps 20: the latest, oldest first.
    assert_eq!(keys, (11..=30).collect::<Vec<i64>>(), "{json}");
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

/// The newest checkpoint in the folder `state` (the older ones are
/// deleted once it is committed): its number (in its marker) and the
/// bytes of its files; `None` before the first.
#[cfg(feature = "workers")]
fn last_cut(state: &Path) -> Option<(u64, u64)> {
    let stored = crate::common::newest_stored(state)?;
    Some((stored.marker().number(), checkpoint_size(state)))
}

/// The bytes of the files of the newest checkpoint in `state` (its marker
/// and every piece).
fn checkpoint_size(state: &Path) -> u64 {
    let newest = crate::common::newest_checkpoint(state).expect("a checkpoint");
    std::fs::read_dir(newest)
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum()
}

/// `--workers 2 --checkpoint`: each cut the workers complete is counted,
/// with its size (the bytes of every worker's file and its marker) and how
/// long it took; the count is the number of the last cut in the folder.
#[cfg(feature = "workers")]
#[test]
fn checkpoints_on_workers_are_in_the_metrics() {
    let dir = crate::common::scratch("metrics_checkpoint_workers");
    let events = dir.join("events.jsonl");
    let lines = sample_lines();
    std::fs::write(&events, "").unwrap();
    let state = dir.join("state");
    let live = Live::spawn(cepheid().current_dir(root()).args([
        "run",
        "patterns/",
        "--events",
        events.to_str().unwrap(),
        "--follow",
        // (the watermark follows the wall clock while the file is idle:
        // the frontier moves past each cut asked for)
        "--idle-timeout",
        "100ms",
        "--no-progress",
        "--workers",
        "2",
        "--output",
        dir.join("out.jsonl").to_str().unwrap(),
        "--checkpoint",
        state.to_str().unwrap(),
        "--checkpoint-every",
        "200ms",
        "--metrics",
        "127.0.0.1:0",
    ]));
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let text = scrape_until(addr, "the first update", |t| {
        value(t, "cepheid_checkpoints_total").is_some()
    });
    assert_eq!(value(&text, "cepheid_checkpoint_failures_total"), Some(0.0));
    // The lines in three parts, each once the cuts before it were counted.
    let mut counted = 0.0;
    for part in lines.chunks(lines.len().div_ceil(3)) {
        append(&events, &part.concat());
        let text = scrape_until(addr, "a cut of the new lines", |t| {
            value(t, "cepheid_checkpoints_total").is_some_and(|n| n > counted)
        });
        counted = value(&text, "cepheid_checkpoints_total").unwrap();
    }
    assert!(counted >= 3.0, "{counted} cuts");
    // What the folder holds and what the metrics say agree once no cut is
    // under way between the two looks (cuts go on while the workers move).
    let deadline = Instant::now() + PATIENCE;
    let (number, bytes, text) = loop {
        let before = last_cut(&state);
        let (code, text) = get(addr, "/metrics");
        assert_eq!(code, 200, "{text}");
        if let (Some((number, bytes)), true) = (before, last_cut(&state) == before) {
            if value(&text, "cepheid_checkpoints_total") == Some(number as f64)
                && value(&text, "cepheid_checkpoint_size_bytes") == Some(bytes as f64)
            {
                break (number, bytes, text);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the metrics never said the folder's cut ({before:?}): {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(number >= 3 && bytes > 0, "{number} {bytes}");
    assert_eq!(value(&text, "cepheid_checkpoint_failures_total"), Some(0.0));
    let took = value(&text, "cepheid_checkpoint_duration_seconds").expect("a duration");
    assert!(took > 0.0 && took < 30.0, "{took}");
    let age = value(&text, "cepheid_checkpoint_age_seconds").expect("an age");
    assert!((0.0..30.0).contains(&age), "{age}");
    let (_, json) = get(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    let checkpoint = &status["run"]["checkpoint"];
    assert!(
        checkpoint["completed"].as_u64() >= Some(number),
        "{checkpoint}"
    );
    assert_eq!(checkpoint["failures"], 0, "{checkpoint}");
    assert!(checkpoint["last_error"].is_null(), "{checkpoint}");

    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("checkpoint taken in") && stderr.contains("as the run stopped"),
        "{stderr}"
    );
}

#[test]
fn a_resumed_run_shows_its_numbers_as_a_whole() {
    resumed_numbers("metrics_resumed_one", &[]);
}

#[test]
fn a_resumed_run_on_workers_shows_its_numbers_as_a_whole() {
    resumed_numbers("metrics_resumed_workers", &["--workers", "2"]);
}

/// The sample in two parts: a followed run with checkpoints over the first
/// part, stopped (a last cut), then resumed with `--metrics` over the
/// whole file: `/status.json` and `/metrics` give the whole run's numbers
/// (events read, matches and timeouts of the run and of each rule) once
/// the run read the second part, as one uninterrupted run (the sample's
/// 14 matches and 2 timeouts; each rule's as its output has them): a resumed run on
/// workers showed the events read since the resume only. (The latest
/// records are not kept in checkpoints yet: a resumed run shows those
/// made since.)
fn resumed_numbers(name: &str, extra: &[&str]) {
    let dir = crate::common::scratch(name);
    let events = dir.join("events.jsonl");
    let out = dir.join("out.jsonl");
    let state = dir.join("state");
    let lines = sample_lines();
    let (first, second) = lines.split_at(lines.len() / 2);
    std::fs::write(&events, first.concat()).unwrap();
    let run = || {
        let mut command = cepheid();
        command.current_dir(root()).args([
            "run",
            "patterns/",
            "--events",
            events.to_str().unwrap(),
            "--follow",
            // (every window closes: the sample's 14 matches and 2
            // timeouts all come while the run goes on)
            "--idle-timeout",
            "100ms",
            "--no-progress",
            "--output",
            out.to_str().unwrap(),
            "--checkpoint",
            state.to_str().unwrap(),
            "--checkpoint-every",
            "100ms",
            "--metrics",
            "127.0.0.1:0",
        ]);
        command.args(extra);
        Live::spawn(&mut command)
    };
    let stopped = |live: Live| {
        live.signal("TERM");
        let (status, _, stderr) = live.finish();
        assert_eq!(status.code(), Some(143), "{stderr}");
    };
    let events_read = |t: &str| value(t, "cepheid_events_read_total");
    let live = run();
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    scrape_until(addr, "the first part read", |t| {
        events_read(t) == Some(first.len() as f64)
    });
    stopped(live);
    let live = run();
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    append(&events, &second.concat());
    // (the numbers are published now and then: waited for until the
    // sample's whole run is counted)
    let all_of = |t: &str, name: &str| per_pattern(t, name).values().sum::<u64>();
    let text = scrape_until(addr, "the whole run's numbers", |t| {
        events_read(t) == Some(lines.len() as f64)
            && all_of(t, "cepheid_matches_total") == 14
            && all_of(t, "cepheid_timeouts_total") == 2
    });
    // (the page's numbers are the run's: the summary's once it ends)
    let (_, json) = get(addr, "/status.json");
    stopped(live);
    let written: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let matches = count(&written, "match");
    let timeouts = count(&written, "timeout");
    let status: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let run = &status["run"];
    let all = |counts: &BTreeMap<String, u64>| counts.values().sum::<u64>();
    assert_eq!(run["events_read"], lines.len(), "{run}");
    assert_eq!(run["matches"], all(&matches), "{run}");
    assert_eq!(run["timeouts"], all(&timeouts), "{run}");
    let m = per_pattern(&text, "cepheid_matches_total");
    let patterns = status["patterns"].as_array().expect("patterns");
    assert_eq!(patterns.len(), m.len());
    for p in patterns {
        let name = p["name"].as_str().unwrap();
        let wrote = matches.get(name).copied().unwrap_or(0);
        assert_eq!(p["matches"], wrote, "{name}");
        assert_eq!(m.get(name).copied().unwrap_or(0), wrote, "{name}");
        let timed_out = timeouts.get(name).copied().unwrap_or(0);
        assert_eq!(p["timeouts"], timed_out, "{name}");
    }
}
