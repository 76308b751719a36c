//! A checkpoint resumed on another executor (issue 38): `cepheid run
//! --checkpoint DIR` stopped after a checkpoint of its one engine, then
//! run again with `--workers N` on the same folder, ends with the records
//! (`--output`, `--late`, as multisets) and the summary of a run that was
//! never interrupted. The patterns are partitioned by different keys, one
//! is global, two have timeouts, and the events are out of order within
//! `--max-delay` (some wait for the watermark at every checkpoint).

use crate::common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::cepheid;
use common::crash::{self, sorted};

const RULES: &str = r#"
pattern ab {
    partition by user
    within 3s
    timeouts
    match a followed by b
    where a: kind == "a"
          b: kind == "b"
}
pattern cd {
    partition by host
    within 5s
    match c followed by d+ followed by a
    where c: kind == "c"
          d: kind == "d"
          a: kind == "a"
}
pattern all {
    within 2s
    timeouts
    match x followed by y
    where x: kind == "b" and n > 50
          y: kind == "c" and n > 90
}
"#;

/// `n` events 50 ms apart, each up to 800 ms early or late (within the
/// 1 s delay), with a malformed line every 9,000.
fn events(n: usize) -> String {
    let mut state = 0x2545_f491_u64;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let mut text = String::new();
    for i in 0..n {
        if i % 9_000 == 4_500 {
            text.push_str("{\"ts\": not json\n");
        }
        let ts = 1_000_000 + i as u64 * 50 + next(800);
        let kind = ["a", "b", "c", "d"][next(4) as usize];
        text.push_str(&format!(
            "{{\"ts\":{ts},\"kind\":\"{kind}\",\"user\":\"u{}\",\"host\":\"h{}\",\"n\":{}}}\n",
            next(40),
            next(15),
            next(100)
        ));
    }
    text
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `cepheid run` of the rules over the events in `dir`, its outputs
/// `out_NAME.jsonl` and `late_NAME.jsonl`, with `extra`.
fn command(dir: &Path, name: &str, extra: &[&str]) -> Command {
    let mut command = cepheid();
    // (a folder with `events.csv` reads it)
    let csv = dir.join("events.csv").exists();
    let events = ["events.jsonl", "events.csv"][usize::from(csv)];
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--events", events, "--no-progress"])
        .args(["--format", ["jsonl", "csv"][usize::from(csv)]])
        .args(["--max-delay", "1s"])
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(["--late", &format!("late_{name}.jsonl")])
        .args(extra);
    command
}

/// `cepheid run` over `events.jsonl` in `dir` into `out_NAME.jsonl` and
/// `late_NAME.jsonl`, with `extra` flags; waits for its end.
fn run(dir: &Path, name: &str, extra: &[&str]) -> Output {
    let output = command(dir, name, extra).output().expect("cepheid runs");
    assert!(
        output.status.success(),
        "{name} {extra:?}: {}",
        stderr(&output)
    );
    output
}

/// A folder with the rules, `events.jsonl` holding all `text`, and the
/// uninterrupted run's outputs (`out_full.jsonl`, `late_full.jsonl`) and
/// summary.
fn setup(name: &str, text: &str) -> (common::Scratch, String) {
    setup_as(name, text, "events.jsonl")
}

/// [`setup`] with the events in `file` (`events.csv`: CSV).
fn setup_as(name: &str, text: &str, file: &str) -> (common::Scratch, String) {
    let dir = common::scratch(name);
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join(file), text).unwrap();
    let full = run(&dir, "full", &[]);
    let summary = crash::summary(&stderr(&full));
    assert!(summary.contains(" malformed, 0 late,"), "{summary}");
    assert!(!summary.contains(" 0 malformed"), "{summary}");
    (dir, summary)
}

/// The outputs of `name` are the uninterrupted run's (as multisets), and
/// its summary `summary`.
fn same_as_full(dir: &Path, name: &str, output: &Output, summary: &str) {
    let out = sorted(dir, &format!("out_{name}.jsonl"));
    assert!(out.len() > 1_000, "{name}: {} records", out.len());
    assert_eq!(out, sorted(dir, "out_full.jsonl"), "{name}: --output");
    assert_eq!(
        sorted(dir, &format!("late_{name}.jsonl")),
        sorted(dir, "late_full.jsonl"),
        "{name}: --late"
    );
    assert_eq!(crash::summary(&stderr(output)), summary, "{name}");
}

/// The first `lines` lines of `text`.
fn head(text: &str, lines: usize) -> &str {
    let end = (text.match_indices('\n'))
        .nth(lines - 1)
        .map_or(text.len(), |(i, _)| i + 1);
    &text[..end]
}

#[test]
fn one_engine_s_checkpoint_at_the_end_of_a_file_goes_on_over_the_grown_file_on_workers() {
    let text = events(24_000);
    let (dir, summary) = setup("cross_grown", &text);
    for (workers, lines) in [("2", 9_001), ("3", 15_503), ("1", 4_000)] {
        let name = format!("w{workers}");
        let ck = format!("ck{workers}");
        // One engine over the first part of the file: its checkpoint at the
        // end of its input, before the end moves event time on.
        fs::write(dir.join("events.jsonl"), head(&text, lines)).unwrap();
        run(&dir, &name, &["--checkpoint", &ck]);
        assert!(one_engine_s(&dir.join(&ck)), "one engine's checkpoint");
        fs::write(dir.join("events.jsonl"), &text).unwrap();
        let resumed = run(&dir, &name, &["--checkpoint", &ck, "--workers", workers]);
        let said = stderr(&resumed);
        assert!(
            said.contains("it was taken on one engine, without --workers"),
            "{said}"
        );
        same_as_full(&dir, &name, &resumed, &summary);
        // The workers' cut is the folder's now (the old checkpoint is
        // stale): the workers go on from it, and so does one engine.
        let again = run(&dir, &name, &["--checkpoint", &ck, "--workers", "2"]);
        same_as_full(&dir, &name, &again, &summary);
        assert!(!one_engine_s(&dir.join(&ck)), "the workers' cut");
        let single = run(&dir, &name, &["--checkpoint", &ck]);
        assert!(
            stderr(&single).contains("it is a checkpoint of one engine now"),
            "{}",
            stderr(&single)
        );
        same_as_full(&dir, &name, &single, &summary);
    }
}

#[test]
fn one_engine_stopped_by_sigterm_after_a_checkpoint_resumes_on_two_workers() {
    let text = events(60_000);
    let (dir, summary) = setup("cross_term", &text);
    stopped_after_a_checkpoint(command(&dir, "t", &[]), &dir.join("ck"));
    let resumed = run(&dir, "t", &["--checkpoint", "ck", "--workers", "2"]);
    same_as_full(&dir, "t", &resumed, &summary);
}

/// Workers stopped by SIGTERM once a cut is written take a last cut at
/// the stop, whose epoch is above the stopped sources' clocks (where the
/// workers' engines stay); one engine goes on from it with nothing the
/// slower worker had not read late (`docs/design/run-seam.md`, "Found
/// and fixed": the merged engine took the epoch less one as its
/// watermark, and lost up to a quarter of the events).
#[test]
fn workers_stopped_by_sigterm_after_a_cut_resume_on_one_engine() {
    let text = events(60_000);
    let (dir, summary) = setup("cross_term_workers", &text);
    for _ in 0..3 {
        let _ = fs::remove_dir_all(dir.join("ck"));
        let on_workers = ["--workers", "2", "--chunk-bytes", "100000"];
        stopped_after_a_checkpoint(command(&dir, "t", &on_workers), &dir.join("ck"));
        let resumed = run(&dir, "t", &["--checkpoint", "ck"]);
        same_as_full(&dir, "t", &resumed, &summary);
    }
}

#[test]
fn a_cut_of_workers_at_the_end_of_a_file_goes_on_over_the_grown_file_on_one_engine() {
    let text = events(24_000);
    let (dir, summary) = setup("cross_back", &text);
    for (workers, lines) in [("2", 9_001), ("3", 15_503)] {
        let name = format!("back{workers}");
        let ck = format!("ck{workers}");
        // Workers over the first part: their last cut at its end.
        fs::write(dir.join("events.jsonl"), head(&text, lines)).unwrap();
        run(&dir, &name, &["--checkpoint", &ck, "--workers", workers]);
        fs::write(dir.join("events.jsonl"), &text).unwrap();
        let resumed = run(&dir, &name, &["--checkpoint", &ck]);
        let said = stderr(&resumed);
        assert!(
            said.contains(&format!(
                "was taken on {workers} workers: it is a checkpoint of one engine now"
            )),
            "{said}"
        );
        same_as_full(&dir, &name, &resumed, &summary);
        // The folder is one engine's now (and goes back to workers again).
        assert!(one_engine_s(&dir.join(&ck)), "one engine's checkpoint");
        let again = run(&dir, &name, &["--checkpoint", &ck, "--workers", "2"]);
        same_as_full(&dir, &name, &again, &summary);
    }
}

/// The events of [`events`] as CSV (`ts,kind,user,host,n`), with its
/// malformed lines (an unclosed quote).
fn csv_events(n: usize) -> String {
    let mut csv = String::from("ts,kind,user,host,n\n");
    for line in events(n).lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            csv.push_str("oops,\"\n");
            continue;
        };
        let field = |name: &str| event[name].to_string().trim_matches('"').to_string();
        let fields = ["ts", "kind", "user", "host", "n"].map(field);
        csv.push_str(&(fields.join(",") + "\n"));
    }
    csv
}

/// Runs `command` until a checkpoint in `ck` is whole, then kills it
/// (SIGKILL); false when it ended first.
/// Runs `command` with `--checkpoint ck --checkpoint-every 2000` and
/// sends it SIGTERM once a checkpoint is written in `ck`: the run takes a
/// last one and stops (or it had read everything already: its checkpoint
/// at the end). Fails when no checkpoint came.
fn stopped_after_a_checkpoint(mut command: Command, ck: &Path) {
    let mut child = command
        .args(["--checkpoint", "ck", "--checkpoint-every", "2000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let taken = || newest(ck).is_some();
    while !taken() && started.elapsed() < common::PATIENCE {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let stopped = child.wait().unwrap();
    assert!(taken(), "no checkpoint came: {stopped:?}");
}

fn killed_after_a_checkpoint(mut command: Command, ck: &Path) -> bool {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if newest(ck).is_some() {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        assert!(started.elapsed() < common::PATIENCE, "no checkpoint came");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The number and the folder of the newest whole checkpoint in `ck`.
fn newest(ck: &Path) -> Option<(u64, std::path::PathBuf)> {
    let cut = common::newest_checkpoint(ck)?;
    let name = cut.file_name()?.to_str()?;
    Some((name.strip_prefix("cut-")?.parse().ok()?, cut))
}

/// Is the checkpoint in `cut` one engine's, with ranges of the file left
/// to read (its section 24)?
fn in_ranges(cut: &Path) -> bool {
    let piece = fs::read(cut.join("piece-0")).unwrap_or_default();
    !cut.join("piece-1").exists() && piece.windows(10).any(|w| w == b"\"ranges\":[")
}

/// The checkpoint folder `ck` in `dir` and the outputs of `name`, copied
/// into `dir/to` (and back, `back`).
fn copy_state(dir: &Path, ck: &str, name: &str, to: &str, back: bool) {
    let files = [format!("out_{name}.jsonl"), format!("late_{name}.jsonl")];
    let (from, into) = match back {
        false => (dir.to_path_buf(), dir.join(to)),
        true => (dir.join(to), dir.to_path_buf()),
    };
    let _ = fs::remove_dir_all(into.join(ck));
    fs::create_dir_all(into.join(ck)).unwrap();
    for entry in walk(&from.join(ck)) {
        let target = into
            .join(ck)
            .join(entry.strip_prefix(from.join(ck)).unwrap());
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(&entry, target).unwrap();
    }
    for file in files {
        fs::copy(from.join(&file), into.join(&file)).unwrap();
    }
}

/// The files under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Workers killed after a cut in the middle of a file of small chunks
/// (each worker partway through its chunks: it was refused) resume on one
/// engine, which reads first the ranges of the file they had left (and
/// the lines whose events waited at the cut), then the rest; killed again
/// after a checkpoint of its own inside those ranges, it goes on on one
/// engine and on two workers. Each ends with the records (as multisets)
/// and the summary of a run that was never interrupted. JSON lines and
/// CSV, two and three workers.
#[test]
fn workers_killed_mid_file_go_on_on_one_engine_from_the_ranges_they_left() {
    for (csv, workers) in [(false, "2"), (false, "3"), (true, "2"), (true, "3")] {
        let text = match csv {
            false => events(60_000),
            true => csv_events(60_000),
        };
        let file = ["events.jsonl", "events.csv"][usize::from(csv)];
        let (dir, summary) = setup_as(&format!("cross_kill_{workers}"), &text, file);
        let (ck, name) = ("ck", "k");
        let chunks = ["--chunk-bytes", "100000"];
        let on_workers = [&["--workers", workers, "--checkpoint", ck][..], &chunks].concat();
        // (a cut asked for by lines read, not by time: however fast the
        // machine reads, the first is asked for after 5,000 of the 60,000
        // lines, in the middle of the file)
        let every = ["--checkpoint-every", "5000"];
        let again = ["--checkpoint", ck, "--checkpoint-every", "1"];
        let mut tries = 0;
        let inside = loop {
            // Workers killed after a cut (their first, from nothing): they
            // kill themselves as soon as it is whole, before the file
            // ends however fast they read it.
            let _ = fs::remove_dir_all(dir.join(ck));
            let mut on = command(&dir, name, &[&on_workers[..], &every].concat());
            on.env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1");
            let killed = on.output().unwrap();
            assert_eq!(
                killed.status.signal(),
                Some(9),
                "the workers ended first: {}",
                stderr(&killed)
            );
            let (number, _) = newest(&dir.join(ck)).unwrap();
            assert_eq!(number, 1, "{}", stderr(&killed));
            copy_state(&dir, ck, name, "cut", false);
            // One engine from their cut (which it takes as its checkpoint
            // `number + 1`), killed as soon as its first checkpoint of its
            // own is durable: taken after the first line it read, that
            // one is inside the ranges, unless the cut left none (taken
            // before the workers read any, or as they had read them all),
            // and then the workers are run again.
            let mut one = command(&dir, name, &again);
            let kill = (number + 2).to_string();
            one.env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", &kill);
            let killed = one.output().unwrap();
            assert_eq!(killed.status.signal(), Some(9), "{}", stderr(&killed));
            let (n, cut) = newest(&dir.join(ck)).unwrap();
            assert_eq!(n, number + 2, "{}", stderr(&killed));
            if in_ranges(&cut) {
                break number;
            }
            tries += 1;
            assert!(
                tries < 10,
                "csv {csv}, {workers} workers: no cut of workers left ranges of the file"
            );
        };
        assert!(inside > 0);
        copy_state(&dir, ck, name, "inside", false);
        // (its ranges are read, not followed: refused, nothing changed)
        let follow = command(&dir, name, &["--checkpoint", ck, "--follow"])
            .output()
            .unwrap();
        assert_eq!(follow.status.code(), Some(5), "{}", stderr(&follow));
        assert!(stderr(&follow).contains("(--follow was off (it has ranges of the file left to read, from a cut of workers), now on)"), "{}", stderr(&follow));
        let single = run(&dir, name, &["--checkpoint", ck]);
        same_as_full(&dir, name, &single, &summary);
        copy_state(&dir, ck, name, "inside", true);
        let on_two = run(
            &dir,
            name,
            &[&["--checkpoint", ck, "--workers", "2"][..], &chunks].concat(),
        );
        same_as_full(&dir, name, &on_two, &summary);
        // And the cut straight to the end on one engine: it was taken in
        // the middle of the file (one engine goes on at its first range).
        copy_state(&dir, ck, name, "cut", true);
        let resumed = run(&dir, name, &["--checkpoint", ck]);
        let said = stderr(&resumed);
        assert!(
            said.contains(&format!(
                "was taken on {workers} workers: it is a checkpoint of one engine now"
            )),
            "{said}"
        );
        let at: usize = (said.split(" at line ").nth(1))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{said}"));
        assert!(at < text.lines().count(), "{said}");
        same_as_full(&dir, name, &resumed, &summary);
    }
}

/// Is the newest checkpoint in `ckpt` one engine's (one piece of every
/// pattern over every key), not a cut of workers?
fn one_engine_s(ckpt: &std::path::Path) -> bool {
    common::newest_stored(ckpt).is_some_and(|stored| stored.is_one_engine())
}

/// Rules changed by `$rules` records before a checkpoint, across
/// executors both ways (it was refused): one engine over the first part of
/// a stream in time order (`--max-delay 0ms`, where a change applies at
/// the same point on workers), its checkpoint at the end of its input,
/// then the whole stream on 2 workers; and the other way. Each ends with
/// the records (as multisets), the reload lines after the checkpoint and
/// the summary of one engine that was never interrupted (the reloads
/// counted before the checkpoint included), says that it goes on with
/// the checkpoint's rules, and names each key over `--max-runs-per-key`
/// once over both runs.
#[test]
fn rules_changed_before_a_checkpoint_go_on_across_executors_both_ways() {
    use crate::cli_workers_rules::{said, sorted, stream};
    for seed in 1..=3u64 {
        let (dir, lines) = rules_folder("cross_rules", stream(seed, 3_000, 4));
        let text = lines.join("\n") + "\n";
        let run = |extra: &[&str]| {
            let output = rules_run(&dir, &[&["--max-runs-per-key", "3"], extra].concat());
            assert!(output.status.success(), "{extra:?}: {}", stderr(&output));
            output
        };
        let whole = run(&[]);
        // (the summary's line per pattern; the keys over the limit are
        // counted below)
        let per_pattern = |out: &Output| {
            let (_, summary, patterns) = said(out);
            let lines = patterns
                .into_iter()
                .filter(|l| l.contains(" events reached it"));
            (summary, lines.collect::<Vec<_>>())
        };
        let (summary, patterns) = per_pattern(&whole);
        let told = |out: &Output| stderr(out).matches("the oldest are dropped").count();
        let first = (lines.iter()).position(|l| l.contains("$rules")).unwrap();
        // (the checkpoint after the first change, and before the last)
        let cut = first + 1 + (lines.len() - first) / 3;
        for (name, before, after) in [
            (
                "to_workers",
                &[][..],
                &["--workers", "2", "--chunk-bytes", "500"][..],
            ),
            (
                "to_one",
                &["--workers", "2", "--chunk-bytes", "500"][..],
                &[][..],
            ),
        ] {
            let (ck, out) = (format!("ck_{name}"), format!("out_{name}.jsonl"));
            let resumable = ["--checkpoint", &ck, "--output", &out];
            fs::write(dir.join("events.jsonl"), head(&text, cut)).unwrap();
            let part = run(&[&resumable[..], before].concat());
            fs::write(dir.join("events.jsonl"), &text).unwrap();
            let resumed = run(&[&resumable[..], after].concat());
            let case = format!("seed {seed}, {name}");
            assert!(
                stderr(&resumed).contains(
                    "the rules changed while it ran: it goes on with the rules of the checkpoint, not those of the command line"
                ),
                "{case}: {}",
                stderr(&resumed)
            );
            let text = fs::read_to_string(dir.join(&out)).unwrap();
            let mut records: Vec<String> = text.lines().map(str::to_string).collect();
            records.sort();
            assert_eq!(records, sorted(&whole), "{case}: the records");
            let (got, got_patterns) = per_pattern(&resumed);
            assert_eq!(got, summary, "{case}: the summary");
            assert_eq!(got_patterns, patterns, "{case}: the lines per pattern");
            assert_eq!(
                told(&part) + told(&resumed),
                told(&whole),
                "{case}: keys said"
            );
        }
    }
}

/// A checkpoint of one engine taken while a pattern whose `partition by`
/// a `$rules` record changed still drains its old version (keyed by the
/// old key) is refused on workers, which route each group of patterns by
/// one key (exit 5, said); resumed without workers it goes on.
#[test]
fn a_checkpoint_with_an_old_version_draining_under_another_key_is_refused_on_workers() {
    let dir = common::scratch("cross_rules_drain");
    let by = |key: &str| {
        format!(
            "pattern ab {{ partition by {key} within 1h match a followed by b \
             where a: type == \"a\" b: type == \"b\" }}"
        )
    };
    fs::write(dir.join("rules.cep"), by("user")).unwrap();
    let event = |ts: u32, kind: &str, user: &str| {
        format!(
            r#"{{"ts":"2024-01-01T00:00:{ts:02}Z","type":"{kind}","user":"{user}","host":"h1"}}"#
        )
    };
    let change = serde_json::json!({ "$rules": by("host") }).to_string();
    let lines = [
        event(1, "a", "u1"),
        event(2, "x", "u1"),
        change,
        event(3, "a", "u2"),
        event(4, "x", "u2"),
    ];
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let resumable = ["--checkpoint", "ck", "--output", "out.jsonl"];
    let run = |extra: &[&str]| rules_run(&dir, &[&resumable[..], extra].concat());
    let first = run(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let mut more = fs::read_to_string(dir.join("events.jsonl")).unwrap();
    more.push_str(&(event(5, "b", "u1") + "\n"));
    fs::write(dir.join("events.jsonl"), more).unwrap();
    let refused = run(&["--workers", "2"]);
    assert_eq!(refused.status.code(), Some(5), "{}", stderr(&refused));
    assert_eq!(
        stderr(&refused),
        "error: checkpoint in ck cannot be used: a pattern changed its \
         `partition by` while its old version drains, which workers cannot do as one engine \
         does: resume it without workers, or once the old version is gone; nothing was \
         changed (remove ck to start over; a transactional output then needs another \
         transactional id too, or it refuses to commit its records a second time)\n"
    );
    // (the old version's partial match of `u1` completes)
    let resumed = run(&[]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let out = fs::read_to_string(dir.join("out.jsonl")).unwrap();
    assert!(out.contains(r#""key":{"user":"u1"}"#), "{out}");
}

/// `cepheid run` in `dir` with `--rules-from-stream` over a stream in time
/// order (`--max-delay 0ms`: a change applies at the same point on
/// workers as on one engine), with `extra`.
fn rules_run(dir: &Path, extra: &[&str]) -> Output {
    command_here(dir, extra).output().unwrap()
}

/// Rules changed by `$rules` records among the chunks: workers killed
/// after a cut in the middle of the stream (each partway through its
/// chunks, a change maybe read and not made yet) resume on one engine,
/// which ends with the records (as multisets), the reload lines, the
/// summary and each pattern's counts of one engine that was never
/// interrupted. (The events read were counted short before session 42:
/// the merge counted them from the engines of the first group, which a
/// change of rules makes anew; they are the sources' now,
/// `Engine::count_taken_before`.)
#[test]
fn workers_killed_mid_stream_with_changes_of_rules_go_on_on_one_engine() {
    use crate::cli_workers_rules::{said, sorted, stream};
    for seed in 1..=2u64 {
        let (dir, _) = rules_folder("cross_rules_kill", stream(seed, 40_000, 6));
        let whole = rules_run(&dir, &[]);
        assert!(whole.status.success(), "{}", stderr(&whole));
        let (reloads, summary, patterns) = said(&whole);
        let (ck, out) = ("ck", "out.jsonl");
        let mut on_workers = command_here(&dir, &["--checkpoint", ck, "--output", out]);
        on_workers.args(["--workers", "2", "--chunk-bytes", "20000"]);
        on_workers.args(["--checkpoint-every", "50ms"]);
        let cut = killed_after_a_checkpoint(on_workers, &dir.join(ck));
        assert!(cut, "seed {seed}: the workers ended before their first cut");
        let resumed = rules_run(&dir, &["--checkpoint", ck, "--output", out]);
        let case = format!("seed {seed}");
        assert!(resumed.status.success(), "{case}: {}", stderr(&resumed));
        let text = fs::read_to_string(dir.join(out)).unwrap();
        let mut records: Vec<String> = text.lines().map(str::to_string).collect();
        records.sort();
        assert_eq!(records, sorted(&whole), "{case}: the records");
        let (got_reloads, got, got_patterns) = said(&resumed);
        assert_eq!(got, summary, "{case}: the summary");
        assert_eq!(got_patterns, patterns, "{case}: each pattern's counts");
        assert!(!reloads.is_empty(), "{case}: the rules changed");
        assert!(
            got_reloads.iter().all(|r| reloads.contains(r)),
            "{case}: {got_reloads:?}"
        );
    }
}

/// A folder with the old rules of `cli_rules` and `lines` as its events.
fn rules_folder(name: &str, lines: Vec<String>) -> (common::Scratch, Vec<String>) {
    let dir = common::scratch(name);
    fs::write(dir.join("rules.cep"), crate::cli_rules::OLD).unwrap();
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    (dir, lines)
}

/// [`rules_run`]'s command, not run.
fn command_here(dir: &Path, extra: &[&str]) -> Command {
    let mut command = common::run_here(dir);
    command
        .args(["--max-delay", "0ms", "--rules-from-stream"])
        .args(extra);
    command
}

/// Rules reading rolling indicators grouped by their key (and by more
/// fields than it), as workers run them.
const INDICATOR_RULES: &str = r#"
indicator user_a = count() where kind == "a" group by user within 10s
indicator user_hosts = count_distinct(host) group by user within 30s
indicator host_user_n = max(n) group by host, user within 20s
pattern hot {
    partition by user
    match x
    where x: kind == "b" and user_a(user) >= 3 and user_hosts(user) >= 4
}
pattern peak {
    partition by host
    match x
    where x: kind == "c" and host_user_n(host, user) >= 95
}
"#;

/// Indicators' windows go across executors: one engine's checkpoint
/// resumed on 2 workers, their cut on 3 (each restored engine holds its old worker's windows) for a few
/// seconds, then on one engine (the windows of the engines of one group put together, each
/// key's once), each over the file grown since, give the records of a run
/// that was never interrupted.
#[test]
fn indicator_windows_go_from_one_engine_to_workers_to_more_workers_and_back() {
    let text = events(24_000);
    let dir = common::scratch("cross_indicators");
    fs::write(dir.join("rules.cep"), INDICATOR_RULES).unwrap();
    fs::write(dir.join("events.jsonl"), &text).unwrap();
    let full = run(&dir, "full", &[]);
    let summary = crash::summary(&stderr(&full));
    let records = sorted(&dir, "out_full.jsonl");
    assert!(records.len() > 500, "{} records", records.len());
    let all = text.lines().count();
    let steps: [(&[&str], usize); 4] = [
        (&[], 4_001),
        (&["--workers", "2"], 8_001),
        // (a few seconds of event time: the windows restored from the
        // cut of 2 are still in the cut of 3)
        (&["--workers", "3"], 8_061),
        (&[], all),
    ];
    for (flags, lines) in steps {
        fs::write(dir.join("events.jsonl"), head(&text, lines)).unwrap();
        let output = run(&dir, "cut", &[&["--checkpoint", "ck"][..], flags].concat());
        if lines == all {
            assert_eq!(crash::summary(&stderr(&output)), summary);
        }
    }
    assert_eq!(sorted(&dir, "out_cut.jsonl"), records);
}
