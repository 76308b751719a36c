//! `--rules-from-stream` on `--workers` (issue 38): a `$rules` record
//! applies at its source's watermark + 1 on every worker, so a stream in
//! time order gives one engine's records, standard error's reload lines
//! and summary, whatever the number of workers and where the file is cut
//! in chunks (a chunk never starts with a control record). Changes that
//! add fields, add a group of patterns partitioned by a new key, remove
//! every pattern of a group, empty the rule set (allowed, or refused
//! without `$allow_empty`), or do not parse; drain
//! and restart. A pattern that changes its `partition by` is refused on
//! workers (said, the old rules going on). On `--processes 2` the same
//! (each process numbers a change's new fields when its order is final);
//! with `--checkpoint`, killed and resumed, the same as a run never
//! interrupted.

use crate::common;

use std::fs;
use std::process::Output;

use common::{run_here, scratch};

/// The rules the runs start with: `cli_rules`'s (pair, steady, gone).
const START: &str = crate::cli_rules::OLD;

/// Rule sets the changes draw from: new fields (`v`, `w`), a new key
/// (`d`), a pattern without `partition by`, `pair` in three versions, an
/// empty set, and one that does not parse.
pub(crate) const SETS: [&str; 6] = [
    crate::cli_rules::NEW,
    r#"
pattern pair {
    partition by k
    within 40ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
pattern bydev {
    partition by d
    within 30ms
    match x followed by y
    where
        x: type == "x"
        y: type == "y" and w == 1
}
"#,
    r#"
pattern anyone {
    within 10ms
    timeouts
    match c followed by x
    where
        c: type == "c" and v == 0
        x: type == "x"
}
pattern bydev {
    partition by d
    within 30ms
    match x followed by y
    where
        x: type == "x"
        y: type == "y" and w == 1
}
pattern pair {
    partition by k
    within 25ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b" and w == 0
}
"#,
    "",
    "pattern broken { match",
    r#"
pattern steady {
    partition by k
    match x next y
    where
        x: type == "x"
        y: type == "y" and v < 3
}
"#,
];

/// A xorshift generator: the same streams on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `n` events in time order (equal times included), with `changes`
/// control records drawn from [`SETS`] at random places (the empty set
/// with `"$allow_empty": true` at even places, without at odd ones).
pub(crate) fn stream(seed: u64, n: usize, changes: usize) -> Vec<String> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let types = ["a", "b", "c", "x", "y"];
    let mut ts = 0;
    let mut lines: Vec<String> = (0..n)
        .map(|_| {
            ts += rng.below(4);
            format!(
                "{{\"ts\":{ts},\"type\":\"{}\",\"k\":{},\"d\":{},\"v\":{},\"w\":{}}}",
                types[rng.below(5) as usize],
                rng.below(4),
                rng.below(6),
                rng.below(5),
                rng.below(2)
            )
        })
        .collect();
    for _ in 0..changes {
        let at = rng.below(lines.len() as u64) as usize;
        let set = SETS[rng.below(SETS.len() as u64) as usize];
        // (an empty set is refused unless the record allows it: both, by
        // where it goes)
        let record = match set.is_empty() && at % 2 == 0 {
            true => serde_json::json!({ "$rules": set, "$allow_empty": true }),
            false => serde_json::json!({ "$rules": set }),
        };
        lines.insert(at, record.to_string());
    }
    lines
}

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    run_here(dir).args(args).output().unwrap()
}

pub(crate) fn sorted(output: &Output) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// What standard error says of the rules and the counts: the reload lines
/// (sorted: a refusal is said by the reader that meets it), the summary
/// without its time, and the lines per pattern.
pub(crate) fn said(output: &Output) -> (Vec<String>, String, Vec<String>) {
    let err = String::from_utf8_lossy(&output.stderr);
    let mut reloads: Vec<String> = Vec::new();
    let mut block = String::new();
    for line in err.lines() {
        if line.starts_with("  ") && !block.is_empty() {
            block.push('\n');
            block.push_str(line);
            continue;
        }
        if !block.is_empty() {
            reloads.push(std::mem::take(&mut block));
        }
        if line.contains("(`$rules`)") {
            block = line.to_string();
        }
    }
    if !block.is_empty() {
        reloads.push(block);
    }
    reloads.sort();
    let summary = err
        .lines()
        .find(|line| line.contains(" events read"))
        .and_then(|line| line.split(" in ").next())
        .unwrap_or_default()
        .to_string();
    let patterns = err
        .lines()
        .filter(|line| line.starts_with("cepheid: pattern `"))
        .map(str::to_string)
        .collect();
    (reloads, summary, patterns)
}

/// Streams tried: 6, or `CEPHEID_WORKERS_RULES_SEEDS` (opt-in longer runs).
fn seeds() -> u64 {
    std::env::var("CEPHEID_WORKERS_RULES_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6)
}

#[test]
fn stream_rules_on_workers_give_one_engines_records_and_words() {
    for seed in 1..=seeds() {
        let dir = scratch("workers_rules");
        fs::write(dir.join("rules.cep"), START).unwrap();
        let lines = stream(seed, 2_500, 2 + seed as usize % 3);
        fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
        let policy = if seed % 2 == 0 { "restart" } else { "drain" };
        let base = [
            "--max-delay",
            "0ms",
            "--rules-from-stream",
            "--reload-policy",
            policy,
        ];
        let one = run(&dir, &base);
        assert!(
            one.status.success(),
            "{}",
            String::from_utf8_lossy(&one.stderr)
        );
        let expected = sorted(&one);
        let (reloads, summary, patterns) = said(&one);
        assert!(summary.contains("rule reload"), "seed {seed}: {summary}");
        for (workers, chunk) in [("2", "300"), ("3", "2000"), ("2", "100000")] {
            let args = [&base[..], &["--workers", workers, "--chunk-bytes", chunk]].concat();
            let got = run(&dir, &args);
            let case = format!("seed {seed}, {policy}, --workers {workers}, --chunk-bytes {chunk}");
            assert!(
                got.status.success(),
                "{case}: {}",
                String::from_utf8_lossy(&got.stderr)
            );
            assert_eq!(sorted(&got), expected, "{case}");
            let (got_reloads, got_summary, got_patterns) = said(&got);
            assert_eq!(got_reloads, reloads, "{case}");
            assert_eq!(got_summary, summary, "{case}");
            assert_eq!(got_patterns, patterns, "{case}");
        }
    }
}

#[test]
fn stream_rules_from_standard_input_on_workers() {
    use std::io::Write;
    let dir = scratch("workers_rules_stdin");
    fs::write(dir.join("rules.cep"), START).unwrap();
    let text = stream(9, 3_000, 3).join("\n") + "\n";
    let run_stdin = |extra: &[&str]| {
        let mut child = common::cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "0ms"])
            .arg("--rules-from-stream")
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let text = text.clone();
        let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        output
    };
    let one = run_stdin(&[]);
    let two = run_stdin(&["--workers", "2"]);
    assert!(
        two.status.success(),
        "{}",
        String::from_utf8_lossy(&two.stderr)
    );
    assert_eq!(sorted(&two), sorted(&one));
    assert_eq!(said(&two), said(&one));
}

#[test]
fn a_pattern_that_changes_its_partition_by_is_refused_on_workers() {
    let dir = scratch("workers_rules_moved");
    fs::write(dir.join("rules.cep"), START).unwrap();
    let mut lines = stream(3, 1_000, 0);
    let moved = START.replacen("partition by k", "partition by d", 1);
    lines.insert(400, serde_json::json!({ "$rules": moved }).to_string());
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let base = ["--max-delay", "0ms", "--rules-from-stream"];
    let got = run(&dir, &[&base[..], &["--workers", "2"]].concat());
    assert!(got.status.success());
    let err = String::from_utf8_lossy(&got.stderr);
    assert!(
        err.contains("cepheid: events.jsonl:401 (`$rules`): the new rules are refused: pattern `pair` changes its `partition by` (k before, d now), which workers cannot do as one engine does (its old version draining): remove it and add it under another name; the old rules go on"),
        "{err}"
    );
    assert!(
        err.contains(", 0 rule reloads, 1 refused (the old rules kept)"),
        "{err}"
    );
    // The old rules went on: the records of a run without the change.
    lines.remove(400);
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let plain = run(&dir, &["--max-delay", "0ms", "--workers", "2"]);
    assert_eq!(sorted(&got), sorted(&plain));
}

/// Rule sets that each number other new fields (`w`; `v`; `d`, a new
/// key, and `w`), for changes close together read by other processes.
const FIELD_SETS: [&str; 3] = [
    r#"
pattern pair {
    partition by k
    within 40ms
    timeouts
    match a followed by b
    where
        a: type == "a" and w == 1
        b: type == "b"
}
"#,
    r#"
pattern pair {
    partition by k
    within 40ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b" and v > 1
}
pattern steady {
    partition by k
    match x next y
    where
        x: type == "x"
        y: type == "y"
}
"#,
    r#"
pattern bydev {
    partition by d
    within 30ms
    match x followed by y
    where
        x: type == "x" and v < 4
        y: type == "y" and w == 1
}
"#,
];

/// `--processes 2 --workers 2` (issue 38): control records read by the
/// workers of both processes (the file cut in small chunks, dealt to
/// the four workers in turn), changes that number new fields in another
/// order than they are read, close together: every process numbers a
/// change's fields when its order is final, in one engine's order, so
/// records cross processes by the same numbers and the run gives one
/// engine's records, reload lines (the refusals said by the process whose
/// worker read the record) and summary.
#[test]
fn stream_rules_on_two_processes_give_one_engines_records_and_words() {
    for seed in 1..=3u64 {
        let dir = scratch("processes_rules");
        fs::write(dir.join("rules.cep"), START).unwrap();
        let mut lines = stream(seed, 2_000, 1 + seed as usize % 2);
        // Three changes a few lines apart: each read by another worker.
        let at = 600 + 100 * seed as usize;
        for (i, set) in FIELD_SETS.iter().enumerate() {
            let line = serde_json::json!({ "$rules": set }).to_string();
            lines.insert(at + 6 * i, line);
        }
        lines.insert(
            at + 40,
            serde_json::json!({ "$rules": SETS[4] }).to_string(),
        );
        fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
        let base = ["--max-delay", "0ms", "--rules-from-stream"];
        let one = run(&dir, &[&base[..], &["--output", "one.jsonl"]].concat());
        assert!(
            one.status.success(),
            "{}",
            String::from_utf8_lossy(&one.stderr)
        );
        let (reloads, summary, patterns) = said(&one);
        assert!(summary.contains(" refused"), "seed {seed}: {summary}");
        let outputs = common::run_two_processes(&dir, |_| {
            let mut command = run_here(&dir);
            command
                .args(base)
                .args(["--workers", "2", "--chunk-bytes", "300"])
                .args(["--output", "two.jsonl"]);
            command
        });
        for output in &outputs {
            assert!(
                output.status.success(),
                "seed {seed}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let read = |name: &str| {
            let mut lines: Vec<String> = fs::read_to_string(dir.join(name))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            lines.sort();
            lines
        };
        let (two, one) = (read("two.jsonl"), read("one.jsonl"));
        let first = (two.iter().zip(&one)).find(|(a, b)| a != b);
        assert!(
            two == one,
            "seed {seed}: {} records, one engine's {}; first different: {first:?}",
            two.len(),
            one.len()
        );
        // The words of both processes: process 0 says the changes made
        // and the summary, each reader the refusals it met.
        let (mut got_reloads, got_summary, got_patterns) = said(&outputs[0]);
        got_reloads.extend(said(&outputs[1]).0);
        got_reloads.sort();
        assert_eq!(got_reloads, reloads, "seed {seed}");
        assert_eq!(got_summary, summary, "seed {seed}");
        assert_eq!(got_patterns, patterns, "seed {seed}");
    }
}

/// The crash test's events with control records a quarter, half and
/// three quarters of the way (`cli_checkpoint`'s: the changed rules,
/// the first ones again from a file, the changed ones again inline), in
/// a folder of its own.
pub(crate) fn changing_stream(name: &str, n: usize) -> crate::common::Scratch {
    let dir = common::crash::setup(name, n);
    fs::write(dir.join("changed.cep"), crate::cli_checkpoint::CHANGED).unwrap();
    let text = fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let inline = serde_json::json!({ "$rules": crate::cli_checkpoint::CHANGED }).to_string();
    lines.insert(n * 3 / 4, inline);
    lines.insert(n / 2, r#"{"$rules_file": "rules.cep"}"#.to_string());
    lines.insert(n / 4, r#"{"$rules_file": "changed.cep"}"#.to_string());
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    dir
}

/// `cepheid run` over [`changing_stream`]'s folder with its rules
/// changes, into `out_NAME.jsonl` and `late_NAME.jsonl`, with `extra`.
pub(crate) fn changing_run(
    dir: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut command = common::run_here(dir);
    command
        .args([
            "--max-delay",
            "2s",
            "--rules-from-stream",
            "--rules-dir",
            ".",
        ])
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(["--late", &format!("late_{name}.jsonl")])
        .args(extra);
    command
}

/// `--rules-from-stream` with `--checkpoint` on `--workers 2` (it was
/// refused): killed after cuts taken around three changes of rules and
/// resumed (each resumed run goes on with the cut's rules and the changes
/// pending at it), the run ends with the records (sorted) and the summary
/// of a run that was never interrupted.
#[test]
fn stream_rules_on_workers_killed_after_cuts_end_as_an_uninterrupted_run() {
    let dir = changing_stream("workers_rules_killed", 60_000);
    let workers = ["--workers", "2", "--chunk-bytes", "200000"];
    let whole = changing_run(&dir, "whole", &workers).output().unwrap();
    let said = String::from_utf8_lossy(&whole.stderr).into_owned();
    assert!(whole.status.success(), "{said}");
    let summary = common::crash::summary(&said);
    assert!(summary.contains(", 3 rule reloads"), "{summary}");
    let resumable = [
        &workers[..],
        &["--checkpoint", "ck", "--checkpoint-every", "20ms"],
    ]
    .concat();
    let (kills, last) = common::crash::killed_after_cuts(
        || changing_run(&dir, "killed", &resumable),
        &dir.join("ck"),
        8,
        0x5EED,
    );
    let said = String::from_utf8_lossy(&last.stderr).into_owned();
    assert!(last.status.success(), "{said}");
    assert!(
        kills > 0 && said.contains("resuming from checkpoint"),
        "{said}"
    );
    for out in ["out", "late"] {
        assert!(
            common::crash::sorted(&dir, &format!("{out}_killed.jsonl"))
                == common::crash::sorted(&dir, &format!("{out}_whole.jsonl")),
            "--{out}: the records differ after {kills} kills"
        );
    }
    assert_eq!(
        common::crash::summary(&said),
        summary,
        "after {kills} kills"
    );
}

/// `a followed by b` per key `k`: the rules the `--watch` test edits.
const PAIR: &str = r#"
pattern pair {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
"#;

/// Waits (a minute at most, while both processes run) until `path` holds
/// `count` lines with `text` (process 0's standard error, `err-0.txt`
/// beside it, said when it does not).
fn wait_for(
    path: &std::path::Path,
    text: &str,
    count: usize,
    children: &mut [std::process::Child],
) {
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = (fs::read_to_string(path).unwrap_or_default().lines())
            .filter(|l| l.contains(text))
            .count();
        if found >= count {
            return;
        }
        let said = fs::read_to_string(path.with_file_name("err-0.txt")).unwrap_or_default();
        assert!(
            std::time::Instant::now() < limit,
            "{count} x {text} in {}: {said}",
            path.display()
        );
        for child in children.iter_mut() {
            assert!(child.try_wait().unwrap().is_none(), "ended: {said}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Both processes of a run, killed when dropped (a failed assertion kills
/// them too).
struct Both(Vec<std::process::Child>);

impl Drop for Both {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `--watch` on `--processes 2 --workers 2` (issue 38): process 0 follows
/// the file and watches the rules; an edit that reads a new field (`v`)
/// applies on every worker of both processes (keys on all four), a
/// broken edit keeps the rules, SIGHUP reads them again, SIGTERM to
/// process 0 ends both.
#[test]
fn watch_on_two_processes_reloads_an_edited_rule_file_and_on_sighup() {
    let dir = scratch("processes_watch");
    let rules = dir.join("p.cep");
    let events = dir.join("events.jsonl");
    fs::write(&rules, PAIR).unwrap();
    let event = |ts: i64, kind: &str, k: u32, v: u32| {
        format!("{{\"ts\":{ts},\"type\":\"{kind}\",\"k\":{k},\"v\":{v}}}\n")
    };
    let append = |text: String| {
        use std::io::Write;
        let mut file = fs::OpenOptions::new().append(true).open(&events).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    };
    fs::write(&events, "").unwrap();
    append(
        [
            event(1, "a", 1, 0),
            event(2, "b", 1, 0),
            event(3, "x", 1, 0),
        ]
        .concat(),
    );
    let ports = common::free_ports(2);
    let hosts = format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]);
    fs::write(dir.join("hosts"), hosts).unwrap();
    let mut both = Both(
        (0..2)
            .map(|process| {
                if process == 1 {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                let err = fs::File::create(dir.join(format!("err-{process}.txt"))).unwrap();
                common::cepheid()
                    .current_dir(&dir)
                    .args(["run", "p.cep", "--events", "events.jsonl", "--follow"])
                    .args(["--watch", "--no-progress", "--max-delay", "0ms"])
                    .args([
                        "--workers",
                        "2",
                        "--output",
                        &format!("out-{process}.jsonl"),
                    ])
                    .args(["--processes", "2", "--process", &process.to_string()])
                    .args(["--hostfile", "hosts"])
                    .stdout(std::process::Stdio::null())
                    .stderr(err)
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let children = &mut both.0;
    let (out, err) = (dir.join("out-0.jsonl"), dir.join("err-0.txt"));
    wait_for(&out, "\"pattern\":\"pair\"", 1, children);
    // Edited: `b` becomes a `c` with `v` 1.
    fs::write(
        &rules,
        PAIR.replace(r#"b: type == "b""#, r#"b: type == "c" and v == 1"#),
    )
    .unwrap();
    wait_for(&err, "pair: changed (version 2)", 1, children);
    // Keys 2 to 9 (on every worker): a match each under the edited rule
    // but key 9's (its `c` has `v` 0).
    // (in time order: the a's, the b's, then the c's)
    let mut text = String::new();
    for (ts, kind) in [(10, "a"), (20, "b"), (30, "c")] {
        for k in 2..10 {
            let v = u32::from(kind == "b" || (kind == "c" && k != 9));
            text += &event(ts + i64::from(k), kind, k, v);
        }
    }
    append(text + &event(50, "x", 0, 0));
    wait_for(&out, "\"version\":2", 7, children);
    // A broken edit: the rules go on.
    fs::write(&rules, "pattern pair {\n    match a b\n}\n").unwrap();
    wait_for(
        &err,
        "the new rules have errors; the old rules go on",
        1,
        children,
    );
    // Fixed, then SIGHUP: read again, nothing changed.
    fs::write(&rules, PAIR).unwrap();
    wait_for(&err, "pair: changed (version 3)", 1, children);
    let pid = children[0].id().to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("HUP");
    wait_for(&err, "cepheid: SIGHUP: rules reloaded:", 1, children);
    wait_for(&err, "pair: unchanged", 1, children);
    append(
        [
            event(60, "a", 3, 0),
            event(61, "b", 3, 0),
            event(62, "x", 0, 0),
        ]
        .concat(),
    );
    wait_for(&out, "\"version\":3", 1, children);
    signal("TERM");
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut codes = [None, None];
    for (code, child) in codes.iter_mut().zip(children.iter_mut()) {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                *code = status.code();
                break;
            }
            assert!(std::time::Instant::now() < limit, "both end after SIGTERM");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let said = fs::read_to_string(&err).unwrap();
    assert_eq!(codes, [Some(143), Some(0)], "{said}");
    let records = fs::read_to_string(&out).unwrap();
    assert!(!records.contains("\"k\":9}"), "key 9 matched: {records}");
    assert!(
        said.contains("9 matches, 0 timeouts, 3 rule reloads, 1 refused (the old rules kept)"),
        "{said}"
    );
}

/// `--watch --checkpoint` on `--workers 2` (it was refused): stopped
/// (SIGTERM, a last cut), the rule file edited while it is stopped, started
/// again: it goes on with the cut's rules and reads the files at once, as
/// one engine does (issue 26; on workers such a restart was refused, exit
/// 5, for ever), with one engine's records, words and summary.
#[cfg(unix)]
#[test]
fn watch_with_checkpoints_on_workers_reads_files_edited_since_the_cut_as_one_engine() {
    let one = edited_since_the_last_cut("watch_edited_one", &[]);
    let workers = edited_since_the_last_cut("watch_edited_workers", &["--workers", "2"]);
    assert_eq!(workers, one);
}

/// The run of [`watch_with_checkpoints_on_workers_reads_files_edited_since_the_cut_as_one_engine`]
/// with `extra`: its records (sorted), what the resumed run said of the
/// pattern files (the words of resuming are each executor's), and its
/// summary.
#[cfg(unix)]
fn edited_since_the_last_cut(name: &str, extra: &[&str]) -> (Vec<String>, Vec<String>, String) {
    use common::{Live, PATIENCE};
    let dir = scratch(name);
    let (rules, events) = (dir.join("p.cep"), dir.join("events.jsonl"));
    use crate::cli_rules::{append, event, PAIR_BY_K as PAIR};
    fs::write(&rules, PAIR).unwrap();
    fs::write(
        &events,
        [
            event(1000, "a", 1),
            event(2000, "a", 2),
            event(3000, "b", 1),
            event(4000, "x", 0),
        ]
        .concat(),
    )
    .unwrap();
    let out = dir.join("out.jsonl");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (events_path, out_path, ckpt) = (path(&events), path(&out), path(&dir.join("ckpt")));
    let mut args = vec![
        "--events",
        &events_path,
        "--follow",
        "--watch",
        "--no-progress",
    ];
    args.extend([
        "--max-delay",
        "0ms",
        "--checkpoint",
        &ckpt,
        "--output",
        &out_path,
    ]);
    args.extend(extra);
    let records = |n: usize| {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let text = fs::read_to_string(&out).unwrap_or_default();
            if text.lines().count() >= n {
                return text;
            }
            assert!(std::time::Instant::now() < deadline, "{n} records: {text}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // The match of key 1; stopped: its last cut holds the first rules.
    let live = Live::run(&rules, &args);
    records(1);
    live.signal("TERM");
    let (status, _, said) = live.finish();
    assert_eq!(status.code(), Some(143), "{said}");
    // Edited while stopped: `b` becomes `c`.
    fs::write(&rules, PAIR.replace("type == \"b\"", "type == \"c\"")).unwrap();
    let live = Live::run(&rules, &args);
    live.stderr_line("pair: changed (version 2)");
    // Key 2's partial match of the first version drains (its `b`); key 3
    // matches the edited rule.
    append(
        &events,
        &[
            event(5000, "b", 2),
            event(6000, "a", 3),
            event(7000, "c", 3),
            event(8000, "x", 0),
        ]
        .concat(),
    );
    records(3);
    live.signal("TERM");
    let (status, _, said) = live.finish();
    assert_eq!(status.code(), Some(143), "{said}");
    let mut lines: Vec<String> = records(3).lines().map(str::to_string).collect();
    lines.sort();
    let rules_said = (said.lines())
        .filter(|l| l.contains("the pattern files") || l.starts_with("  "))
        .map(str::to_string)
        .collect();
    (lines, rules_said, common::crash::summary(&said))
}

/// `--watch` on workers over a file read in chunks (refused before: no
/// one reader took the reload): a run over a file, then the file grown and
/// a pattern edited; the next run resumes from the cut before the first
/// end, the first of process 0's workers to look reads the files again,
/// and the new rules apply on every worker from there. The records (as a
/// multiset), the reload's words and the summary are one engine's.
#[test]
fn watch_on_workers_over_a_file_in_chunks_reloads_as_one_engine() {
    // (the folders live until the checks: kept when one fails)
    let (one, _one_dir) = grown_with_an_edited_pattern("watch_chunks_one", &[]);
    let (workers, _workers_dir) = grown_with_an_edited_pattern(
        "watch_chunks_workers",
        &["--workers", "2", "--chunk-bytes", "65536"],
    );
    assert_eq!(workers.1, one.1, "what was said of the reload");
    assert_eq!(workers.2, one.2, "the summary");
    assert!(workers.0 == one.0, "the records differ");
}

/// A run's records and late events (sorted), what its second part said
/// of the reload, and its summary.
type Ran = (Vec<Vec<u8>>, Vec<String>, String);

/// The run of [`watch_on_workers_over_a_file_in_chunks_reloads_as_one_engine`]
/// with `extra`: its records and late events (sorted), what the second
/// run said of the reload, and its summary; and its folder.
fn grown_with_an_edited_pattern(name: &str, extra: &[&str]) -> (Ran, common::Scratch) {
    use common::crash;
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), crash::PATTERNS).unwrap();
    let all = crash::events(40_000);
    let lines: Vec<&str> = all.split_inclusive('\n').collect();
    fs::write(dir.join("events.jsonl"), lines[..20_000].concat()).unwrap();
    let run = || {
        run_here(&dir)
            // (the stream's disorder within the delay: each worker's part
            // decides lateness as one reader does)
            .args(["--watch", "--max-delay", "4s", "--checkpoint", "ckpt"])
            .args(["--output", "out.jsonl", "--late", "late.jsonl"])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run();
    let said = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{said}");
    let mut events = fs::OpenOptions::new()
        .append(true)
        .open(dir.join("events.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut events, lines[20_000..].concat().as_bytes()).unwrap();
    // Bursts of two failures now.
    let edited = crash::PATTERNS.replace("fail{3,}", "fail{2,}");
    assert_ne!(edited, crash::PATTERNS);
    fs::write(dir.join("rules.cep"), edited).unwrap();
    let second = run();
    let said = String::from_utf8_lossy(&second.stderr).into_owned();
    assert!(second.status.success(), "{said}");
    let reload: Vec<String> = said
        .lines()
        .filter(|l| l.contains("rules reloaded") || l.contains("changed (version"))
        .map(str::to_string)
        .collect();
    assert!(!reload.is_empty(), "{said}");
    fs::write(dir.join("first.err"), &first.stderr).unwrap();
    fs::write(dir.join("second.err"), &second.stderr).unwrap();
    let mut records = crash::sorted(&dir, "out.jsonl");
    records.extend(crash::sorted(&dir, "late.jsonl"));
    ((records, reload, crash::summary(&said)), dir)
}
