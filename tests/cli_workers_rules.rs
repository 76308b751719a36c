//! `--rules-from-stream` on `--workers` (issue 38): a `$rules` record
//! applies at its source's watermark + 1 on every worker, so a stream in
//! time order gives one engine's records, standard error's reload lines
//! and summary, whatever the number of workers and where the file is cut
//! in chunks (a chunk never starts with a control record). Changes that
//! add fields, add a group of patterns partitioned by a new key, remove
//! every pattern of a group, empty the rule set, or do not parse; drain
//! and restart. A pattern that changes its `partition by` is refused on
//! workers (said, the old rules going on); with `--checkpoint` or
//! `--processes` the option is refused (exit 2).

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
/// control records drawn from [`SETS`] at random places.
fn stream(seed: u64, n: usize, changes: usize) -> Vec<String> {
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
        lines.insert(at, serde_json::json!({ "$rules": set }).to_string());
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

#[test]
fn stream_rules_on_workers_with_checkpoints_or_processes_are_refused() {
    let dir = scratch("workers_rules_refused");
    fs::write(dir.join("rules.cep"), START).unwrap();
    fs::write(dir.join("events.jsonl"), stream(4, 10, 1).join("\n") + "\n").unwrap();
    fs::write(dir.join("hosts"), "127.0.0.1:1\n127.0.0.1:2\n").unwrap();
    let checkpoint = run(
        &dir,
        &[
            "--rules-from-stream",
            "--workers",
            "2",
            "--checkpoint",
            "ck",
            "--output",
            "out.jsonl",
        ],
    );
    assert_eq!(checkpoint.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&checkpoint.stderr).contains(
        "--rules-from-stream with --checkpoint is not supported with --workers or --processes yet"
    ));
    let processes = run(
        &dir,
        &[
            "--rules-from-stream",
            "--processes",
            "2",
            "--process",
            "0",
            "--hostfile",
            "hosts",
            "--output",
            "out.jsonl",
        ],
    );
    assert_eq!(processes.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&processes.stderr).contains(
        "--rules-from-stream is not supported with --processes yet (it is with --workers)"
    ));
}
