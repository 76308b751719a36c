//! Rules that write lists (`then add`, `then remove`) on workers (issue
//! 40): each write reaches every worker's engines at its step's time + 1,
//! so `--workers 2`, `--processes 2`, and a run on workers killed after
//! its cuts and resumed give one engine's records (`docs/semantics.md`,
//! "Writes by rules").

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::crash::{killed_after_cuts, sorted};
use common::{cepheid, run_here, run_two_processes};

/// A fraud confirmed on a card blocks its device for every rule (a list
/// written under `partition by card`, read without a key and under
/// `partition by account`); a clean login clears a device (a remove);
/// a device's first login from an account is remembered (a rule reading
/// the list it writes); a card quiet for 2 s after a payment is marked
/// (a write made by a deadline).
const RULES: &str = r#"
list blocked_devices for 30s
list seen_pairs for 20s
list quiet_cards

pattern confirmed_fraud {
    partition by card
    within 5s
    match pay followed by chargeback
    where
        pay: type == "payment"
        chargeback: type == "chargeback"
    then add pay.device to blocked_devices
}
pattern cleared {
    partition by account
    match l
    where l: type == "login" and success and level == 0
    then remove l.device from blocked_devices
}
pattern blocked_device {
    match e
    where e: device in blocked_devices
}
pattern blocked_login {
    partition by account
    match l
    where l: type == "login" and device in blocked_devices
    select blocked = l.device in blocked_devices
}
pattern new_pair {
    partition by account
    match l
    where l: type == "login" and not (pair in seen_pairs)
    then add l.pair to seen_pairs
}
pattern quiet_card {
    partition by card
    within 2s
    match pay not followed by later
    where
        pay: type == "payment"
        later: type == "payment"
    then add pay.card to quiet_cards
}
pattern payment_on_quiet_card {
    partition by account
    match p
    where p: type == "payment" and card in quiet_cards
}
"#;

/// `n` events about 4 ms apart, many of one millisecond (times in steps
/// of 8 ms), of 40 cards, 30 accounts and 25 devices.
fn events(n: usize) -> String {
    let mut next = common::crash::below_from(0x40);
    let mut text = String::with_capacity(n * 100);
    for i in 0..n {
        let ts = (i as u64 * 4) / 8 * 8 + next(3);
        let (card, account, device) = (next(40), next(30), next(25));
        let line = match next(10) {
            0..=3 => format!(
                "{{\"ts\":{ts},\"type\":\"payment\",\"card\":\"c{card}\",\"account\":\"a{account}\",\"device\":\"d{device}\"}}\n"
            ),
            4 => format!("{{\"ts\":{ts},\"type\":\"chargeback\",\"card\":\"c{card}\"}}\n"),
            _ => format!(
                "{{\"ts\":{ts},\"type\":\"login\",\"account\":\"a{account}\",\"device\":\"d{device}\",\"pair\":\"a{account}d{device}\",\"success\":{},\"level\":{}}}\n",
                next(2) == 0,
                next(4)
            ),
        };
        text.push_str(&line);
    }
    text
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The folder of a test: the rules and `n` events.
fn setup(name: &str, n: usize) -> common::Scratch {
    let dir = common::scratch(name);
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("events.jsonl"), events(n)).unwrap();
    dir
}

/// `run_here` writing `out_NAME.jsonl`, with `extra` flags.
fn run(dir: &Path, name: &str, extra: &[&str]) -> Command {
    let mut command = run_here(dir);
    command
        .args(["--max-delay", "50ms"])
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(extra);
    command
}

/// How many records of each rule a run wrote.
fn count(dir: &Path, file: &str, pattern: &str) -> usize {
    let needle = format!("\"pattern\":\"{pattern}\"");
    fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// One engine, `--workers 2` (chunks of 16 KiB: every worker reads) and
/// `--processes 2` give the same records; each rule that reads a written
/// list has some (the stream is not vacuous).
#[test]
fn rules_writing_lists_give_one_engine_s_records_on_workers_and_processes() {
    let dir = setup("writes_workers", 20_000);
    let one = run(&dir, "one", &[]).output().unwrap();
    assert!(one.status.success(), "{}", stderr(&one));
    for pattern in [
        "confirmed_fraud",
        "blocked_device",
        "blocked_login",
        "new_pair",
        "quiet_card",
        "payment_on_quiet_card",
    ] {
        assert!(count(&dir, "out_one.jsonl", pattern) > 0, "no {pattern}");
    }
    let expected = sorted(&dir, "out_one.jsonl");
    for workers in ["1", "2", "3"] {
        let name = format!("w{workers}");
        let out = run(
            &dir,
            &name,
            &["--workers", workers, "--chunk-bytes", "16384"],
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            sorted(&dir, &format!("out_{name}.jsonl")) == expected,
            "--workers {workers} gave other records"
        );
    }
    let outs = run_two_processes(&dir, |process| {
        let name = if process == 0 { "p2" } else { "p2-1" };
        run(&dir, name, &["--chunk-bytes", "16384"])
    });
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    assert!(
        sorted(&dir, "out_p2.jsonl") == expected,
        "--processes 2 gave other records"
    );
}

/// `patterns/risk/`, whose `confirmed_fraud` (by card) blocks the device
/// that `blocked_device` (no key) reads: one engine, `--workers 2` and
/// `--processes 2` give `expected.jsonl`'s records.
#[test]
fn the_risk_sample_gives_its_records_on_workers_and_processes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = common::scratch("writes_risk");
    let risk = root.join("patterns/risk");
    let command = |extra: &[&str]| {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .arg("run")
            .arg(&risk)
            .arg("--events")
            .arg(risk.join("events.jsonl"))
            .arg("--no-progress")
            .args(extra);
        command
    };
    let expected = {
        let mut lines: Vec<String> = fs::read_to_string(risk.join("expected.jsonl"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    let lines = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    for extra in [&[][..], &["--workers", "2"]] {
        let out = command(extra).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            lines(&String::from_utf8_lossy(&out.stdout)),
            expected,
            "{extra:?}"
        );
    }
    let outs = run_two_processes(&dir, |process| {
        let mut command = command(&[]);
        command.args(["--output", &format!("out_{process}.jsonl")]);
        command
    });
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let got = fs::read_to_string(dir.join("out_0.jsonl")).unwrap();
    assert_eq!(lines(&got), expected, "--processes 2");
}

/// `--workers 2 --checkpoint`, killed a moment after each of several cuts
/// and resumed, ends with one engine's records: a write not made yet at a
/// cut is in it.
#[test]
fn rules_writing_lists_on_workers_killed_after_cuts_end_as_one_engine() {
    let dir = setup("writes_killed", 60_000);
    let one = run(&dir, "one", &[]).output().unwrap();
    assert!(one.status.success(), "{}", stderr(&one));
    let resumable = [
        "--workers",
        "2",
        "--chunk-bytes",
        "65536",
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        "20ms",
    ];
    let (kills, last) = killed_after_cuts(
        || run(&dir, "killed", &resumable),
        &dir.join("ckpt"),
        4,
        0x40,
    );
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(kills > 0, "never killed");
    assert!(
        sorted(&dir, "out_killed.jsonl") == sorted(&dir, "out_one.jsonl"),
        "the records differ after {kills} kills"
    );
}

/// Killed after its cuts and resumed on another executor each time (one
/// engine, `--workers 2`, `--workers 3`, in turn): the writes a cut holds
/// (made at `t`, to be made at `t + 1`, after the cut) are made at their
/// time whatever resumes it, so the records are still one engine's
/// (`docs/semantics.md`, "Writes by rules": one point on every executor).
#[test]
fn rules_writing_lists_resumed_on_other_executors_end_as_one_engine() {
    let dir = setup("writes_executors", 60_000);
    let one = run(&dir, "one", &[]).output().unwrap();
    assert!(one.status.success(), "{}", stderr(&one));
    let mut turn = 0usize;
    let (kills, last) = killed_after_cuts(
        || {
            let executor: &[&str] = match turn % 3 {
                0 => &[],
                1 => &["--workers", "2", "--chunk-bytes", "65536"],
                _ => &["--workers", "3", "--chunk-bytes", "65536"],
            };
            turn += 1;
            let mut command = run(
                &dir,
                "killed",
                &["--checkpoint", "ckpt", "--checkpoint-every", "20ms"],
            );
            command.args(executor);
            command
        },
        &dir.join("ckpt"),
        5,
        0x41,
    );
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(
        kills > 1,
        "killed {kills} times: no resume on another executor"
    );
    assert!(
        sorted(&dir, "out_killed.jsonl") == sorted(&dir, "out_one.jsonl"),
        "the records differ after {kills} kills"
    );
}
