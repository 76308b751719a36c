//! `cepheid run`'s reports in text (issue 25): `--stats-every` lines on a
//! slow source whose counts add up to the summary; the summary's line per
//! pattern, which says what `--summary json` says; the progress bar's
//! counts on a terminal (`script` gives the run one). The same on
//! `--workers` (the lines add up to the summary, the lines per pattern are
//! one worker's) and on `--processes` (each process's lines cover its own
//! workers: all processes' lines add up to the summary).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;

use crate::common::{cepheid, Live, PATIENCE};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The sample stream's lines, each with its newline.
fn sample() -> Vec<String> {
    std::fs::read_to_string(root().join("examples/data/sample.jsonl"))
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Events, matches, timeouts, late, malformed.
type Counts = [u64; 5];

/// The counts of a `--stats-every` line, `None` for another line.
fn stats_line(line: &str) -> Option<Counts> {
    let re = Regex::new(
        r"^cepheid: stats at [0-9.]+s \(last [0-9.]+s\): (\d+) events? \(\d+/s\), (\d+) match(?:es)?, (\d+) timeouts?, (\d+) late, (\d+) malformed; (?:watermark .+|no watermark yet); \d+ live partial match(?:es)?$",
    )
    .unwrap();
    let caps = re.captures(line)?;
    Some(std::array::from_fn(|i| caps[i + 1].parse().unwrap()))
}

/// The counts of the summary's first line (as it was before the lines
/// per pattern were added; on workers ending with `on 2 workers`), `None`
/// for another line.
fn summary_line(line: &str) -> Option<Counts> {
    let re = Regex::new(
        r"^cepheid: (\d+) events? read, (\d+) malformed, (\d+) late, (\d+) match(?:es)?, (\d+) timeouts?(?:, .*)? in [0-9.]+ s \([0-9]+ events/s\)(?: on \d+ (?:processes x \d+ )?workers?)?$",
    )
    .unwrap();
    let caps = re.captures(line)?;
    let n = |i: usize| caps[i].parse::<u64>().unwrap();
    Some([n(1), n(4), n(5), n(3), n(2)])
}

#[test]
fn stats_every_lines_add_up_to_the_summary() {
    stats_every_adds_up(&[]);
}

/// `--stats-every` on a slow source (standard input, the sample's first
/// 60 lines then the rest; `extra` arguments): its lines add up to the
/// summary, the sample's known counts.
fn stats_every_adds_up(extra: &[&str]) {
    let lines = sample();
    let mut live = Live::spawn(
        cepheid()
            .current_dir(root())
            .args([
                "run",
                "patterns/",
                "--no-progress",
                "--flush-at-end",
                "--stats-every",
                "300ms",
            ])
            .args(extra),
    );
    // A slow source: the first 60 lines, a line of stats for them, then
    // the rest.
    live.write(&lines[..60].concat());
    let deadline = Instant::now() + PATIENCE;
    let first = loop {
        let line = live.stderr_line("cepheid: stats at ");
        let counts = stats_line(&line).unwrap_or_else(|| panic!("not a stats line: {line}"));
        if counts[0] > 0 {
            break counts;
        }
        assert!(Instant::now() < deadline, "no stats line with events");
    };
    // (the 60 lines may come in more than one batch)
    assert!(first[0] <= 60, "{first:?}");
    live.write(&lines[60..].concat());
    live.close();
    let (status, out, stderr) = live.finish();
    assert!(status.success(), "{stderr}");

    let stats: Vec<Counts> = stderr.lines().filter_map(stats_line).collect();
    assert!(stats.len() >= 2, "{stderr}");
    let summaries: Vec<Counts> = stderr.lines().filter_map(summary_line).collect();
    assert_eq!(summaries.len(), 1, "{stderr}");
    let mut sum = [0; 5];
    for counts in &stats {
        for (s, c) in sum.iter_mut().zip(counts) {
            *s += c;
        }
    }
    assert_eq!(sum, summaries[0], "{stderr}");
    assert_eq!(summaries[0], [102, 14, 2, 3, 0], "{stderr}");
    assert_eq!(out.len(), 16);
    // The last stats line comes before the summary.
    let all: Vec<&str> = stderr.lines().collect();
    let last_stats = all.iter().rposition(|l| stats_line(l).is_some());
    let summary_at = all.iter().position(|l| summary_line(l).is_some());
    assert!(last_stats < summary_at, "{stderr}");
}

#[test]
fn stats_every_needs_a_duration_above_zero() {
    let out = cepheid()
        .current_dir(root())
        .args(["run", "patterns/", "--stats-every", "0s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("greater than zero"), "{stderr}");
}

/// The twin of [`stats_every_lines_add_up_to_the_summary`] on two workers
/// (worker 0 reads standard input, each worker publishes its numbers, the
/// run adds them up).
#[cfg(feature = "workers")]
#[test]
fn stats_every_lines_add_up_to_the_summary_on_workers() {
    stats_every_adds_up(&["--workers", "2"]);
}

/// Two processes of two workers over the sample (cut in small chunks, so
/// that every worker reads some): each process says the lines of its own
/// workers, and every line of both adds up to process 0's summary.
#[cfg(feature = "workers")]
#[test]
fn stats_every_lines_of_every_process_add_up_to_the_summary() {
    let dir = crate::common::scratch("stats_every_processes");
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
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
    let children: Vec<_> = (0..2)
        .map(|process| {
            cepheid()
                .current_dir(root())
                .args(["run", "patterns/", "--events", "examples/data/sample.jsonl"])
                .args(["--flush-at-end", "--no-progress", "--stats-every", "10ms"])
                .args([
                    "--workers",
                    "2",
                    "--processes",
                    "2",
                    "--chunk-bytes",
                    "1000",
                ])
                .args(["--process", &process.to_string()])
                .arg("--hostfile")
                .arg(&hosts)
                .arg("--output")
                .arg(dir.join(format!("out{process}.jsonl")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let said: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert!(out.status.success(), "{stderr}");
            stderr
        })
        .collect();
    // (late events are decided by each reader of a part of the file: not
    // the 3 of one reader)
    let summaries: Vec<Counts> = said[0].lines().filter_map(summary_line).collect();
    assert_eq!(summaries.len(), 1, "{}", said[0]);
    assert_eq!(summaries[0][..3], [102, 14, 2], "{}", said[0]);
    assert!(
        !said[1].lines().any(|l| summary_line(l).is_some()),
        "{}",
        said[1]
    );
    let mut sum = [0; 5];
    for stderr in &said {
        let lines: Vec<Counts> = stderr.lines().filter_map(stats_line).collect();
        // (at least the last line of each process)
        assert!(!lines.is_empty(), "{stderr}");
        for counts in lines {
            for (s, c) in sum.iter_mut().zip(counts) {
                *s += c;
            }
        }
    }
    assert_eq!(sum, summaries[0], "{said:?}");
    // Both processes' workers read and matched.
    let own = |stderr: &str| {
        stderr
            .lines()
            .filter_map(stats_line)
            .fold([0; 5], |mut a, c| {
                a.iter_mut().zip(c).for_each(|(a, c)| *a += c);
                a
            })
    };
    assert!(own(&said[0])[0] > 0 && own(&said[1])[0] > 0, "{said:?}");
}

/// On two workers, the summary's lines per pattern are one worker's
/// (each pattern's counts summed over the workers, live partial matches
/// included), in text and in `--summary json`.
#[cfg(feature = "workers")]
#[test]
fn the_summary_per_pattern_on_workers_is_one_workers() {
    let run = |extra: &[&str]| {
        let out = cepheid()
            .current_dir(root())
            .args(["run", "patterns/", "--events", "examples/data/sample.jsonl"])
            .args(["--no-progress", "--output", "/dev/null"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let per_pattern = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("cepheid: pattern `"))
            .map(String::from)
            .collect()
    };
    let one = run(&[]);
    let two = run(&["--workers", "2", "--chunk-bytes", "2000"]);
    assert_eq!(per_pattern(&one).len(), 10, "{one}");
    assert_eq!(per_pattern(&two), per_pattern(&one), "{two}");
    assert!(
        two.lines().next().unwrap().ends_with(" on 2 workers"),
        "{two}"
    );
    // (the live partial matches of the sample's end, summed)
    assert!(
        two.contains(
            "`active_trader`: 58 events reached it, 1 match, 0 timeouts, 4 live partial matches"
        ),
        "{two}"
    );
    let json = |text: &str| -> serde_json::Value { serde_json::from_str(text.trim_end()).unwrap() };
    let (one, two) = (
        json(&run(&["--summary", "json"])),
        json(&run(&[
            "--summary",
            "json",
            "--workers",
            "2",
            "--chunk-bytes",
            "2000",
        ])),
    );
    assert_eq!(two["patterns"], one["patterns"]);
    assert_eq!(two["matches"], 14);
    assert_eq!(two["layout"]["workers"], 2);
}

/// A pattern's line of the text summary, from its counts in `--summary
/// json`.
fn expected_pattern_line(p: &serde_json::Value) -> String {
    let n = |field: &str| p[field].as_u64().unwrap();
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "cepheid: pattern `{}`: {} reached it, {}, {}, {}, {} cut by the limits",
        p["name"].as_str().unwrap(),
        plural(n("events"), "event", "events"),
        plural(n("matches"), "match", "matches"),
        plural(n("timeouts"), "timeout", "timeouts"),
        plural(n("live_runs"), "live partial match", "live partial matches"),
        plural(n("dropped_runs"), "partial match", "partial matches"),
    )
}

#[test]
fn the_text_summary_has_a_line_per_pattern_with_the_counts_of_the_json_one() {
    let run = |summary: &str| {
        let out = cepheid()
            .current_dir(root())
            .args([
                "run",
                "patterns/",
                "--events",
                "examples/data/sample.jsonl",
                "--no-progress",
                "--output",
                "/dev/null",
                "--summary",
                summary,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let text = run("text");
    let json: serde_json::Value = serde_json::from_str(run("json").trim_end()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The first line as it always was (tests and scripts parse it).
    assert_eq!(summary_line(lines[0]), Some([102, 14, 2, 3, 0]), "{text}");
    assert!(
        lines[0]
            .starts_with("cepheid: 102 events read, 0 malformed, 3 late, 14 matches, 2 timeouts"),
        "{text}"
    );
    // Then one line per pattern, in the engine's order, with the JSON
    // summary's counts.
    let patterns = json["patterns"].as_array().unwrap();
    assert_eq!(patterns.len(), 10);
    let expected: Vec<String> = patterns.iter().map(expected_pattern_line).collect();
    assert_eq!(&lines[1..], expected, "{text}");
    // Which add up to the first line's.
    let total = |field: &str| {
        patterns
            .iter()
            .map(|p| p[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!((total("matches"), total("timeouts")), (14, 2));
    // And what the run wrote: unpaid_order's 5 matches (the README's
    // sample), spelled in the plural; account_takeover's 2 timeouts.
    let line = |name: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("cepheid: pattern `{name}`: ")))
            .unwrap()
    };
    assert!(
        line("unpaid_order").contains(", 5 matches, 0 timeouts,"),
        "{text}"
    );
    assert!(line("account_takeover").contains(", 2 timeouts,"), "{text}");
}

/// Runs `command` (a shell command line) on a terminal of its own
/// (`script`), returning its terminal output once it holds `wanted` (the
/// run then killed), or failing after [`PATIENCE`].
fn on_a_terminal(command: &str, wanted: &str) -> String {
    let mut child = Command::new("script")
        .args(["-qfec", command, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) gives the run a terminal");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(bytes) => seen.extend(bytes),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
        if String::from_utf8_lossy(&seen).contains(wanted) || Instant::now() >= deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn the_progress_bar_shows_events_matches_and_timeouts() {
    // A followed file (with an idle timeout, so that every window
    // closes), on a terminal: the bar ends up showing the run's counts.
    // (`timeout` ends the run should the test not.)
    let command = format!(
        "cd {} && timeout -s TERM 60 {} run patterns/ --events examples/data/sample.jsonl --follow --idle-timeout 100ms --progress --output /dev/null",
        root().display(),
        env!("CARGO_BIN_EXE_cepheid"),
    );
    let wanted = "102 events, 14 matches, 2 timeouts";
    let screen = on_a_terminal(&command, wanted);
    assert!(screen.contains(wanted), "{screen}");
    // With the bytes as before.
    assert!(screen.contains("/9.95 KiB"), "{screen}");
}
