//! Rules that read a rolling indicator grouped by another key than their
//! own on workers (issue 40): "distinct accounts per device" read by rules
//! partitioned by account. Their engines share the indicator over the
//! whole stream (each worker gets every event for it, its own keys' to
//! match), so one engine, `--workers 2` and 3, `--processes 2`, and a run
//! on workers killed after its cuts and resumed (on 2 or 3 workers, or
//! on one engine) give one engine's records, with disorder and late
//! events (`docs/semantics.md`, "On workers").

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::crash::{killed_after_cuts, sorted};
use common::{run_here, run_two_processes};

/// A device used by 3 accounts or more within 400 ms: at a login (the
/// current event's device), and at a payment after it (the login's
/// device, read at the payment: an earlier stage's field), in `select`
/// and in the timeouts' records; a constant argument; a count by device
/// beside it, and one by account (fixed by the key), read for another
/// account too.
const RULES: &str = r#"
indicator accounts_per_device = count_distinct(account) where type == "login" group by device within 400ms
indicator device_payments = count() where type == "payment" group by device within 1s
indicator account_logins = count() where type == "login" group by account within 1s

pattern shared_device_login {
    partition by account
    match login
    where login: type == "login" and accounts_per_device(device) >= 3
    select
        accounts = accounts_per_device(login.device)
        payments = device_payments(login.device)
        a1 = account_logins("a1")
}
pattern pays_after_shared_login {
    partition by account
    within 300ms
    timeouts
    match login followed by pay
    where
        login: type == "login" and accounts_per_device(device) >= 2 and account_logins(account) >= 1
        pay: type == "payment" and accounts_per_device(login.device) >= 2
    select
        accounts = accounts_per_device(login.device)
        d1 = accounts_per_device("d1")
}
"#;

/// `n` events about 4 ms apart with up to 40 ms of disorder, of 30
/// accounts and 25 devices; one in 50 comes 300 ms behind its time (late
/// under `--max-delay 50ms`, as one reader decides). Logouts are taken by
/// no indicator (not copied to the other workers).
fn events(n: usize) -> String {
    let mut next = common::crash::below_from(0x41);
    let mut text = String::with_capacity(n * 90);
    for i in 0..n {
        let mut ts = 1_000 + i as u64 * 4 + next(40);
        if next(50) == 0 {
            ts -= 300;
        }
        let (account, device) = (next(30), next(25));
        let kind = match next(10) {
            0..=5 => "login",
            6..=8 => "payment",
            _ => "logout",
        };
        text.push_str(&format!(
            "{{\"ts\":{ts},\"type\":\"{kind}\",\"account\":\"a{account}\",\"device\":\"d{device}\"}}\n"
        ));
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

/// `run_here` writing `out_NAME.jsonl` and `late_NAME.jsonl`, with
/// `extra` flags (`--max-delay 50ms` unless they say another).
fn run(dir: &Path, name: &str, extra: &[&str]) -> Command {
    let mut command = run_here(dir);
    if !extra.contains(&"--max-delay") {
        command.args(["--max-delay", "50ms"]);
    }
    command
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(["--late", &format!("late_{name}.jsonl")])
        .args(extra);
    command
}

/// How many records of `kind` of rule `pattern` a run wrote.
fn count(dir: &Path, file: &str, pattern: &str, kind: &str) -> usize {
    let (name, kind) = (
        format!("\"pattern\":\"{pattern}\""),
        format!("\"kind\":\"{kind}\""),
    );
    fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .filter(|l| l.contains(&name) && l.contains(&kind))
        .count()
}

/// One reader (the file in one chunk: the late events are one engine's):
/// one engine, `--workers 2` and 3 and `--processes 2` write the same
/// records and late events; each rule has records (and the pair rule
/// timeouts), and some events are late. The file in chunks of 16 KiB
/// (every worker reads), with a delay above the disorder (no event late
/// anywhere): the same again.
#[test]
fn rules_reading_another_key_s_indicator_give_one_engine_s_records_on_workers() {
    let dir = setup("indicators_workers", 20_000);
    let one = run(&dir, "one", &[]).output().unwrap();
    assert!(one.status.success(), "{}", stderr(&one));
    assert!(count(&dir, "out_one.jsonl", "shared_device_login", "match") > 0);
    assert!(count(&dir, "out_one.jsonl", "pays_after_shared_login", "match") > 0);
    assert!(count(&dir, "out_one.jsonl", "pays_after_shared_login", "timeout") > 0);
    let late = sorted(&dir, "late_one.jsonl");
    assert!(late.len() > 100, "{} late", late.len());
    let expected = sorted(&dir, "out_one.jsonl");
    let one_chunk = ["--chunk-bytes", "100000000"];
    for workers in ["2", "3"] {
        let name = format!("w{workers}");
        let out = run(
            &dir,
            &name,
            &[&["--workers", workers][..], &one_chunk].concat(),
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            sorted(&dir, &format!("out_{name}.jsonl")) == expected,
            "--workers {workers} gave other records"
        );
        assert!(sorted(&dir, &format!("late_{name}.jsonl")) == late);
    }
    let outs = run_two_processes(&dir, |process| {
        let name = if process == 0 { "p2" } else { "p2-1" };
        run(&dir, name, &one_chunk)
    });
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    assert!(
        sorted(&dir, "out_p2.jsonl") == expected,
        "--processes 2 gave other records"
    );
    // In chunks, no event late anywhere.
    let calm =
        |name: &str, extra: &[&str]| run(&dir, name, &[&["--max-delay", "1s"], extra].concat());
    let one = calm("calm", &[]).output().unwrap();
    assert!(one.status.success(), "{}", stderr(&one));
    assert!(sorted(&dir, "late_calm.jsonl").len() <= 1);
    let out = calm("calm2", &["--workers", "2", "--chunk-bytes", "16384"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        sorted(&dir, "out_calm2.jsonl") == sorted(&dir, "out_calm.jsonl"),
        "--workers 2 over chunks gave other records"
    );
}

/// `--workers 2 --checkpoint`, killed a moment after each of several cuts
/// and resumed (on 2 workers, on 3, on one engine, in turn), ends with
/// one engine's records and late events: the shared indicators' windows
/// are in every cut, and the events in flight are routed again.
#[test]
fn rules_reading_another_key_s_indicator_on_workers_killed_after_cuts_end_as_one_engine() {
    let dir = setup("indicators_killed", 60_000);
    let one = run(&dir, "one", &[]).output().unwrap();
    assert!(one.status.success(), "{}", stderr(&one));
    let mut turn = 0;
    let (kills, last) = killed_after_cuts(
        || {
            let workers: &[&str] = match turn % 3 {
                0 => &["--workers", "2"],
                1 => &["--workers", "3"],
                _ => &[],
            };
            turn += 1;
            let resumable = [
                "--chunk-bytes",
                "100000000",
                "--checkpoint",
                "ckpt",
                "--checkpoint-every",
                "20ms",
            ];
            run(&dir, "killed", &[workers, &resumable[..]].concat())
        },
        &dir.join("ckpt"),
        6,
        0x41,
    );
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(kills > 0, "never killed");
    assert!(
        sorted(&dir, "out_killed.jsonl") == sorted(&dir, "out_one.jsonl"),
        "the records differ after {kills} kills"
    );
    assert!(
        sorted(&dir, "late_killed.jsonl") == sorted(&dir, "late_one.jsonl"),
        "the late events differ after {kills} kills"
    );
}
