//! Reference lists fed by files (`cepheid run --list NAME=PATH`,
//! `docs/lists.md`): read whole before the first event (CSV and JSON
//! lines, expiries, malformed lines said with `path:line` and left out);
//! a name the rules do not declare or a file that cannot be read stops the
//! run before it starts (exit 2); with `--watch`, an edit changes the list
//! from the watermark then; a resume makes what the file changed while the
//! run was stopped. Live runs are read as they come (`common::Live`), each
//! wait bounded, never after a sleep.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::{cepheid, scratch, Live};

const RULES: &str = r#"
list blocked_ips
list nets of cidr
pattern hit {
    match a
    where a: ip in blocked_ips or ip in nets
}
"#;

fn event(ts: i64, ip: &str) -> String {
    format!("{{\"ts\":{ts},\"ip\":\"{ip}\"}}\n")
}

/// `cepheid run r.cep --events e.jsonl ARGS...` in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    cepheid()
        .current_dir(dir)
        .args(["run", "r.cep", "--events", "e.jsonl", "--no-progress"])
        .args(args)
        .output()
        .unwrap()
}

/// The `ts` of each match's event, in output order.
fn matched(stdout: &[u8]) -> Vec<i64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "match")
        .map(|r| r["events"]["a"][0]["ts"].as_i64().unwrap())
        .collect()
}

#[test]
fn list_files_are_read_before_the_first_event_and_a_malformed_line_is_said_and_left_out() {
    let dir = scratch("lists-read");
    fs::write(dir.join("r.cep"), RULES).unwrap();
    // A header, an entry, a quoted one that expires at 5, a comment, a
    // blank line, a line of three cells, one that expires at 8.
    fs::write(
        dir.join("blocked.csv"),
        "value,expires\n10.0.0.1\n\"10.0.0.2\",5\n# a comment\n\n10.0.0.3,x,y\n10.0.0.4,1970-01-01T00:00:00.008Z\n",
    )
    .unwrap();
    fs::write(
        dir.join("nets.jsonl"),
        "\"192.168.0.0/16\"\n{\"value\": \"172.16.0.0/12\", \"expires\": 10}\nnot json\n{\"value\": null}\n\"not a network\"\n",
    )
    .unwrap();
    let events: String = [
        event(1, "10.0.0.1"),
        event(2, "10.0.0.2"),
        event(5, "10.0.0.2"),
        event(6, "192.168.1.1"),
        event(7, "10.0.0.4"),
        event(8, "10.0.0.4"),
        event(9, "172.16.3.3"),
        event(10, "172.16.3.3"),
        event(11, "10.9.9.9"),
    ]
    .concat();
    fs::write(dir.join("e.jsonl"), events).unwrap();
    let lists = [
        "--list",
        "blocked_ips=blocked.csv",
        "--list",
        "nets=nets.jsonl",
    ];
    let out = run_in(&dir, &lists);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(matched(&out.stdout), vec![1, 2, 6, 7, 9], "{stderr}");
    for said in [
        "cepheid: blocked.csv:6: list `blocked_ips`: 3 cells, where an entry is `value[,expires]`; the line is left out",
        "cepheid: list `blocked_ips`: 3 entries from blocked.csv",
        "cepheid: nets.jsonl:3: list `nets`: not JSON",
        "cepheid: nets.jsonl:4: list `nets`: null, a list or an object is no list entry; the line is left out",
        "cepheid: list `nets`: 3 entries from nets.jsonl",
        "cepheid: list `nets`: 1 entries of nets.jsonl refused: a list of its kind cannot hold them",
    ] {
        assert!(stderr.contains(said), "{said:?} not in:\n{stderr}");
    }
    // Each record says what it read, as it was then.
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["reads"]["ip in blocked_ips"], true);
}

#[test]
fn a_list_the_rules_do_not_declare_or_a_file_that_cannot_be_read_stops_the_run_before_it_starts() {
    let dir = scratch("lists-refused");
    fs::write(dir.join("r.cep"), RULES).unwrap();
    fs::write(dir.join("b.csv"), "10.0.0.1\n").unwrap();
    fs::write(dir.join("e.jsonl"), event(1, "10.0.0.1")).unwrap();
    let run = |list: &str| run_in(&dir, &["--list", list]);
    for (list, said) in [
        (
            "nope=b.csv",
            "list `nope` (b.csv): the rules declare no list `nope` (`list nope`)",
        ),
        (
            "nets=missing.csv",
            "list `nets` (missing.csv): cannot read missing.csv",
        ),
        ("nets", "`nets` is not NAME=PATH"),
    ] {
        let out = run(list);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{list}: {stderr}");
        assert!(stderr.contains(said), "{said:?} not in:\n{stderr}");
        assert!(out.stdout.is_empty(), "{list}");
    }
}

/// Rules whose patterns fall in three groups on workers: no key (worker
/// 0), by user, by device.
#[cfg(feature = "workers")]
const KEYED: &str = r#"
list blocked_ips
list nets of cidr
pattern hit {
    match a
    where a: ip in blocked_ips or ip in nets
}
pattern by_user {
    partition by user
    within 5ms
    match a next b
    where a: ip in blocked_ips
          b: not (ip in nets)
}
"#;

/// Events of 8 users and 5 addresses, a `$rules` record among them when
/// `change` (it adds a pattern keyed by device, a group of its own: its
/// engines are made at the change, and must see the lists as the others
/// do).
#[cfg(feature = "workers")]
fn keyed_events(change: bool) -> String {
    let ips = [
        "10.0.0.1",
        "10.0.0.2",
        "192.168.4.4",
        "172.16.0.9",
        "8.8.8.8",
    ];
    let mut lines = String::new();
    for i in 0..400i64 {
        if change && i == 200 {
            let set = format!(
                "{KEYED}\npattern by_device {{ partition by device match a where a: ip in blocked_ips or ip in nets }}\n"
            );
            lines.push_str(&serde_json::json!({ "$rules": set }).to_string());
            lines.push('\n');
        }
        let ip = ips[(i * 7 % 5) as usize];
        lines.push_str(&format!(
            "{{\"ts\":{},\"user\":\"u{}\",\"device\":\"d{}\",\"ip\":\"{ip}\"}}\n",
            i / 2,
            i % 8,
            i % 3
        ));
    }
    lines
}

#[cfg(feature = "workers")]
#[test]
fn list_files_on_workers_give_one_engines_records() {
    for change in [false, true] {
        let dir = scratch("lists-workers");
        fs::write(dir.join("r.cep"), KEYED).unwrap();
        // An entry that expires at 60, one for ever; a network, one that
        // expires at 120.
        fs::write(dir.join("b.csv"), "10.0.0.1,60\n10.0.0.2\n").unwrap();
        fs::write(
            dir.join("nets.jsonl"),
            "\"192.168.0.0/16\"\n{\"value\": \"172.16.0.0/12\", \"expires\": 120}\n",
        )
        .unwrap();
        fs::write(dir.join("e.jsonl"), keyed_events(change)).unwrap();
        let lists = [
            "--list",
            "blocked_ips=b.csv",
            "--list",
            "nets=nets.jsonl",
            "--rules-from-stream",
        ];
        let one = run_in(&dir, &lists);
        let said = String::from_utf8_lossy(&one.stderr);
        assert!(one.status.success(), "{said}");
        let records = String::from_utf8_lossy(&one.stdout).to_string();
        let kinds = |name: &str| records.matches(&format!("\"pattern\":\"{name}\"")).count();
        assert!(kinds("hit") > 50 && kinds("by_user") > 10, "{records}");
        assert_eq!(kinds("by_device") > 10, change, "{records}");
        for workers in ["1", "2", "3"] {
            let out = run_in(&dir, &[&lists[..], &["--workers", workers]].concat());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{workers} workers: {stderr}");
            // (as sets: workers write each group's records in order,
            // the groups' of one time in another order than one engine)
            let theirs = String::from_utf8_lossy(&out.stdout);
            let (mut one, mut them): (Vec<&str>, Vec<&str>) =
                (records.lines().collect(), theirs.lines().collect());
            one.sort();
            them.sort();
            let differ = (one.iter().zip(&them)).position(|(a, b)| a != b);
            assert!(
                differ.is_none() && one.len() == them.len(),
                "{workers} workers (change {change}), at record {differ:?} of {} (one engine) and {}:\n{:?}\n{:?}\n{stderr}",
                one.len(),
                them.len(),
                differ.map(|i| one[i]),
                differ.map(|i| them[i]),
            );
            // (said once, by the process)
            assert_eq!(
                stderr
                    .matches("cepheid: list `blocked_ips`: 2 entries from b.csv")
                    .count(),
                1,
                "{stderr}"
            );
        }
    }
}

#[test]
fn a_watched_list_file_changes_its_list_from_the_watermark_then() {
    watched_list_file("lists-watch", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_watched_list_file_changes_the_lists_of_every_worker_from_the_watermark_then() {
    watched_list_file("lists-watch-w", &["--workers", "2"]);
}

/// A live run with `flags` watching the list file `blocked.csv`, which
/// holds 10.0.0.1 (loaded), in a scratch folder `name`: the folder, the
/// file and the run.
fn watching_blocked(
    name: &str,
    flags: &[&str],
) -> (crate::common::Scratch, std::path::PathBuf, Live) {
    let dir = scratch(name);
    let rules = dir.join("r.cep");
    fs::write(&rules, RULES).unwrap();
    let blocked = dir.join("blocked.csv");
    fs::write(&blocked, "10.0.0.1\n").unwrap();
    let list = format!("blocked_ips={}", blocked.display());
    let args = [&["--watch", "--no-progress", "--list", &list][..], flags].concat();
    let live = Live::run(&rules, &args);
    live.stderr_line("cepheid: list `blocked_ips`: 1 entries from");
    (dir, blocked, live)
}

/// A live run with `flags` whose list file is edited, then deleted.
fn watched_list_file(name: &str, flags: &[&str]) {
    let (_dir, blocked, mut live) = watching_blocked(name, flags);
    // The event at 1 is taken once the one at 2 moves the watermark to 1;
    // the one at 2 waits.
    live.write(&[event(1, "10.0.0.1"), event(2, "10.0.0.2")].concat());
    let first = live.record("the listed address at 1");
    assert_eq!(first["events"]["a"][0]["ts"], 1);
    // Edited: 10.0.0.1 out, 10.0.0.2 in, from the watermark (1) + 1 on:
    // the event at 2, which waited, sees the new list.
    fs::write(&blocked, "10.0.0.2\n").unwrap();
    let line = live.stderr_line("changed: 1 added, 1 removed");
    assert!(line.ends_with("from event time 2"), "{line}");
    live.write(&[event(3, "10.0.0.1"), event(4, "10.0.0.2"), event(5, "x")].concat());
    let second = live.record("the address listed by the edit, at 2");
    assert_eq!(second["events"]["a"][0]["ts"], 2);
    let third = live.record("the address listed by the edit, at 4");
    assert_eq!(third["events"]["a"][0]["ts"], 4);
    // A file that cannot be read leaves the list as it was.
    fs::remove_file(&blocked).unwrap();
    live.stderr_line("the list goes on as it was");
    live.write(&[event(6, "10.0.0.2"), event(7, "x")].concat());
    let fourth = live.record("the list as it was");
    assert_eq!(fourth["events"]["a"][0]["ts"], 6);
    live.close();
    let (status, rest, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        rest.is_empty(),
        "the address removed by the edit matched: {rest:?}"
    );
}

#[test]
fn a_watched_list_file_emptied_or_made_binary_is_not_applied_and_said() {
    emptied_or_made_binary("lists-empty", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_watched_list_file_emptied_or_made_binary_is_not_applied_on_workers() {
    emptied_or_made_binary("lists-empty-w", &["--workers", "2"]);
}

/// A live run with `flags` whose list file (with entries) is truncated to
/// 0 bytes, then replaced by a binary file, then by one whose every line
/// is malformed: none is applied (the block list does not fail open),
/// each is said, and the summary counts them; a file of comments only
/// then empties the list on purpose.
fn emptied_or_made_binary(name: &str, flags: &[&str]) {
    let (_dir, blocked, mut live) = watching_blocked(name, flags);
    live.write(&[event(1, "10.0.0.1"), event(2, "x")].concat());
    assert_eq!(
        live.record("the listed address at 1")["events"]["a"][0]["ts"],
        1
    );
    fs::write(&blocked, "").unwrap();
    let line = live.stderr_line("is empty (being written?)");
    assert!(
        line.ends_with("not applied, the list keeps the 1 entries it gave"),
        "{line}"
    );
    live.write(&[event(3, "10.0.0.1"), event(4, "x")].concat());
    assert_eq!(
        live.record("still listed after the truncation")["events"]["a"][0]["ts"],
        3
    );
    fs::write(&blocked, b"\x7fELF\x02\x01\x01\x00\x00\n10.0.0.9\n").unwrap();
    live.stderr_line("is no list file (a NUL byte on line 1: binary?)");
    live.write(&[event(5, "10.0.0.1"), event(6, "x")].concat());
    assert_eq!(
        live.record("still listed after the binary file")["events"]["a"][0]["ts"],
        5
    );
    fs::write(&blocked, "10.0.0.1,x,y\n10.0.0.2,1,2,3\n").unwrap();
    live.stderr_line("gives no entry (2 lines left out, none taken)");
    live.write(&[event(7, "10.0.0.1"), event(8, "x")].concat());
    assert_eq!(
        live.record("still listed after the malformed file")["events"]["a"][0]["ts"],
        7
    );
    // A file of comments only is a list emptied on purpose.
    fs::write(&blocked, "# nothing blocked\n").unwrap();
    live.stderr_line("changed: 0 added, 1 removed");
    live.write(&[event(9, "10.0.0.1"), event(10, "x")].concat());
    live.close();
    let (status, rest, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    assert!(rest.is_empty(), "the emptied list matched: {rest:?}");
    assert!(
        stderr.contains("3 list file reads not applied (their lists kept)"),
        "{stderr}"
    );
}

#[test]
fn a_file_entry_takes_no_for_of_its_list() {
    no_for_of_its_list("lists-for", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_file_entry_takes_no_for_of_its_list_on_workers() {
    no_for_of_its_list("lists-for-w", &["--workers", "2"]);
}

/// `list watched for 1d` (its rules write to it), a file entry without
/// an expiry: seen by events of any time until the file drops it, as the
/// entry with an expiry is seen until it (issue 60, item 2: the file's
/// entry had expired before any event).
fn no_for_of_its_list(name: &str, flags: &[&str]) {
    let dir = scratch(name);
    fs::write(
        dir.join("r.cep"),
        "list watched for 1d\npattern seen {\n    match a\n    where a: d in watched\n    select e = a.e\n    then add a.e to watched\n}\n",
    )
    .unwrap();
    fs::write(
        dir.join("w.jsonl"),
        "\"d1\"\n{\"value\": \"d2\", \"expires\": \"2023-11-14T22:13:20.010Z\"}\n",
    )
    .unwrap();
    // (1700000000000 is 2023-11-14T22:13:20Z)
    let at = |ms: i64, d: &str| format!("{{\"ts\":{ms},\"d\":\"{d}\",\"e\":\"x\"}}\n");
    let events = [
        at(1_700_000_000_000, "d1"),
        at(1_700_000_000_005, "d2"),
        at(1_700_000_000_010, "d2"),
        at(1_700_000_000_020, "d1"),
    ]
    .concat();
    fs::write(dir.join("e.jsonl"), events).unwrap();
    let args = [&["--list", "watched=w.jsonl"][..], flags].concat();
    let out = run_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let seen: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["kind"] == "match")
        .map(|r: serde_json::Value| r["events"]["a"][0]["ts"].clone())
        .collect();
    assert_eq!(
        seen,
        vec![1_700_000_000_000i64, 1_700_000_000_005, 1_700_000_000_020],
        "{stderr}"
    );
}

#[test]
fn a_value_written_two_ways_in_a_list_file_is_its_last_line() {
    written_two_ways("lists-twice", &[]);
    // (a run that keeps what the file gave: read whole, then diffed)
    written_two_ways("lists-twice-kept", &["--checkpoint", "ck"]);
}

#[cfg(feature = "workers")]
#[test]
fn a_value_written_two_ways_in_a_list_file_is_its_last_line_on_workers() {
    written_two_ways("lists-twice-w", &["--workers", "2"]);
}

/// `3.0` until 5 then `3` for ever in a list of values, `55` for ever
/// then `"55"` until 5 in a list of prefixes, `10.1.2.3/8` for ever then
/// `10.0.0.0/8` until 5 in a list of networks: each value is one entry,
/// its last line's, and the two lines are said (issue 60, item 6).
fn written_two_ways(name: &str, flags: &[&str]) {
    let dir = scratch(name);
    fs::write(
        dir.join("r.cep"),
        "list ids\nlist bins of prefixes\nlist nets of cidr\npattern id { match a where a: id in ids }\npattern bin { match a where a: card in bins }\npattern net { match a where a: ip in nets }\n",
    )
    .unwrap();
    fs::write(
        dir.join("ids.jsonl"),
        "{\"value\": 3.0, \"expires\": 5}\n3\n",
    )
    .unwrap();
    fs::write(
        dir.join("bins.jsonl"),
        "55\n{\"value\": \"55\", \"expires\": 5}\n",
    )
    .unwrap();
    fs::write(
        dir.join("nets.jsonl"),
        "\"10.1.2.3/8\"\n{\"value\": \"10.0.0.0/8\", \"expires\": 5}\n",
    )
    .unwrap();
    fs::write(
        dir.join("e.jsonl"),
        "{\"ts\":10,\"id\":3,\"card\":\"5512\",\"ip\":\"10.9.9.9\"}\n{\"ts\":11,\"id\":4,\"card\":\"4\",\"ip\":\"11.0.0.1\"}\n",
    )
    .unwrap();
    let args = [
        &[
            "--list",
            "ids=ids.jsonl",
            "--list",
            "bins=bins.jsonl",
            "--list",
            "nets=nets.jsonl",
        ][..],
        flags,
    ]
    .concat();
    let out = run_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["kind"] == "match")
        .collect();
    let patterns: Vec<&str> = records
        .iter()
        .map(|r| r["pattern"].as_str().unwrap())
        .collect();
    // The id's entry is for ever (its last line), the BIN's and the
    // network's expired at 5.
    assert_eq!(patterns, vec!["id"], "{records:?}");
    assert!(
        stderr
            .contains("ids.jsonl:2: list `ids`: 3 is given on line 1 too: one entry, this line's"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bins.jsonl:2: list `bins`: \"55\" is given on line 1 too"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "nets.jsonl:2: list `nets`: \"10.0.0.0/8\" is given on line 1 too: one entry, this line's"
        ),
        "{stderr}"
    );
}

#[test]
fn a_resumed_run_makes_what_its_list_file_changed_while_it_was_stopped() {
    resumed_after_an_edit("lists-resume", &[], &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_resumed_run_on_workers_or_across_executors_makes_what_its_list_file_changed() {
    let workers: &[&str] = &["--workers", "2"];
    resumed_after_an_edit("lists-resume-w", workers, workers);
    resumed_after_an_edit("lists-resume-1w", &[], workers);
    resumed_after_an_edit("lists-resume-w1", workers, &[]);
}

/// A run with `first`'s flags over three events, stopped; the list file
/// and the events edited; a run with `second`'s flags resumed from its
/// checkpoint.
fn resumed_after_an_edit(name: &str, first: &[&str], second: &[&str]) {
    let dir = scratch(name);
    fs::write(dir.join("r.cep"), RULES).unwrap();
    fs::write(dir.join("b.csv"), "10.0.0.1\n10.0.0.9\n").unwrap();
    fs::write(
        dir.join("e.jsonl"),
        [
            event(1, "10.0.0.1"),
            event(2, "10.0.0.9"),
            event(3, "10.0.0.1"),
        ]
        .concat(),
    )
    .unwrap();
    let run = |flags: &[&str]| {
        let list = ["--list", "blocked_ips=b.csv"];
        let out = run_in(
            &dir,
            &[
                &list[..],
                &["--checkpoint", "ck", "--output", "out.jsonl"],
                flags,
            ]
            .concat(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{name}: {stderr}");
        (matched(&fs::read(dir.join("out.jsonl")).unwrap()), stderr)
    };
    let (one, _) = run(first);
    // (the event at 3 waits for the watermark at the checkpoint; the end
    // of input takes it)
    assert_eq!(one, vec![1, 2, 3], "{name}");
    // While it is stopped: 10.0.0.9 out, 10.0.0.5 in; more events.
    fs::write(dir.join("b.csv"), "10.0.0.1\n10.0.0.5\n").unwrap();
    let more = [
        event(4, "10.0.0.9"),
        event(5, "10.0.0.5"),
        event(6, "10.0.0.1"),
    ]
    .concat();
    let mut events = fs::read_to_string(dir.join("e.jsonl")).unwrap();
    events.push_str(&more);
    fs::write(dir.join("e.jsonl"), events).unwrap();
    let (two, stderr) = run(second);
    assert!(
        stderr.contains("cepheid: list `blocked_ips`: b.csv changed while the run was stopped: 1 added, 1 removed, at the checkpoint's event time"),
        "{name}: {stderr}"
    );
    assert_eq!(two, vec![1, 2, 3, 5, 6], "{name}: {stderr}");
}

#[cfg(feature = "workers")]
#[test]
fn a_watched_list_file_reaches_the_engines_of_every_worker_at_one_point() {
    let dir = scratch("lists-watch-keyed");
    let rules = dir.join("r.cep");
    fs::write(
        &rules,
        "list blocked_ips\npattern hit { partition by user match a where a: ip in blocked_ips }\n",
    )
    .unwrap();
    let blocked = dir.join("blocked.csv");
    fs::write(&blocked, "10.0.0.1\n").unwrap();
    let list = format!("blocked_ips={}", blocked.display());
    let mut live = Live::run(
        &rules,
        &[
            "--watch",
            "--no-progress",
            "--list",
            &list,
            "--workers",
            "3",
        ],
    );
    live.stderr_line("cepheid: list `blocked_ips`: 1 entries from");
    let event =
        |ts: i64, ip: &str| format!("{{\"ts\":{ts},\"user\":\"u{}\",\"ip\":\"{ip}\"}}\n", ts % 8);
    // Sixteen users' events, both addresses; the edit swaps them.
    let first: String = (1..=16)
        .map(|ts| event(ts, ["10.0.0.1", "10.0.0.2"][ts as usize % 2]))
        .collect();
    live.write(&first);
    // (the events up to 15 are taken once the one at 16 is read: the
    // listed address at even times)
    for _ in 0..7 {
        let record = live.record("a listed address before the edit");
        assert_eq!(record["events"]["a"][0]["ip"], "10.0.0.1");
    }
    fs::write(&blocked, "10.0.0.2\n").unwrap();
    let line = live.stderr_line("changed: 1 added, 1 removed");
    let at: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let second: String = (17..=40)
        .map(|ts| event(ts, ["10.0.0.1", "10.0.0.2"][ts as usize % 2]))
        .collect();
    live.write(&second);
    live.close();
    let (status, rest, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    let mut seen: Vec<(i64, String)> = rest
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| {
            let a = &r["events"]["a"][0];
            (
                a["ts"].as_i64().unwrap(),
                a["ip"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    // Before the change's time the old list, from it the new one, on
    // every worker alike.
    let expected: Vec<(i64, String)> = (15..=40)
        .filter(|ts| (*ts < at) == (ts % 2 == 0))
        .map(|ts| (ts, ["10.0.0.1", "10.0.0.2"][ts as usize % 2].to_string()))
        .collect();
    assert!(at > 15 && at <= 17, "{line}");
    assert_eq!(seen, expected, "{stderr}");
}

/// The `(ts, ip)` of each match in `path`, once it has at least `n`
/// (waits at most `common::PATIENCE`).
fn records_in(path: &Path, n: usize) -> Vec<(i64, String)> {
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        let seen: Vec<(i64, String)> = (text.lines())
            .filter(|l| l.ends_with('}'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|r| {
                let a = &r["events"]["a"][0];
                (
                    a["ts"].as_i64().unwrap(),
                    a["ip"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if seen.len() >= n || std::time::Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_watched_list_file_edited_in_a_run_and_while_it_is_stopped_is_resumed() {
    edited_in_a_run_and_while_stopped("lists-watch-resume", &[]);
}

#[cfg(feature = "workers")]
#[test]
fn a_watched_list_file_edited_in_a_run_and_while_it_is_stopped_is_resumed_on_workers() {
    edited_in_a_run_and_while_stopped("lists-watch-resume-w", &["--workers", "2"]);
}

/// A followed file's run with `flags` and a watched list: the list edited
/// while it runs (at whatever time the watcher hears it), the run stopped
/// (`SIGTERM`, a last checkpoint, the edit perhaps not made yet), the list
/// edited again while it is stopped, the run resumed to the end.
fn edited_in_a_run_and_while_stopped(name: &str, flags: &[&str]) {
    let dir = scratch(name);
    let rules = dir.join("r.cep");
    fs::write(
        &rules,
        "list blocked_ips\npattern hit { partition by user match a where a: ip in blocked_ips }\n",
    )
    .unwrap();
    fs::write(dir.join("b.csv"), "10.0.0.1\n").unwrap();
    let ip = |ts: i64| ["10.0.0.1", "10.0.0.2"][ts as usize % 2];
    let events = |range: std::ops::RangeInclusive<i64>| -> String {
        range
            .map(|ts| {
                format!(
                    "{{\"ts\":{ts},\"user\":\"u{}\",\"ip\":\"{}\"}}\n",
                    ts % 8,
                    ip(ts)
                )
            })
            .collect()
    };
    let append = |text: String| {
        use std::io::Write;
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join("e.jsonl"))
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    };
    let run = |follow: bool| {
        let mut command = cepheid();
        command.current_dir(&dir).args([
            "run",
            "r.cep",
            "--events",
            "e.jsonl",
            "--no-progress",
            "--watch",
            "--list",
            "blocked_ips=b.csv",
            "--checkpoint",
            "ck",
            "--output",
            "out.jsonl",
        ]);
        command.args(flags);
        if follow {
            command.arg("--follow");
        }
        Live::spawn(&mut command)
    };
    append(events(1..=16));
    let live = run(true);
    live.stderr_line("cepheid: list `blocked_ips`: 1 entries from b.csv");
    // (the events up to 15 are taken: the listed address at even times)
    let before = records_in(&dir.join("out.jsonl"), 7);
    assert_eq!(before.len(), 7);
    fs::write(dir.join("b.csv"), "10.0.0.2\n").unwrap();
    // (made at the reader's watermark + 1 when it reads the file: 16, or
    // later if the watcher hears the edit after some of these)
    append(events(17..=24));
    let line = live.stderr_line("b.csv changed: 1 added, 1 removed, from event time");
    let at: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((16..=24).contains(&at), "{line}");
    // The old list before `at`, the new one from it on.
    let listed = |ts: i64| if ts < at { ts % 2 == 0 } else { ts % 2 == 1 };
    // The records up to 23 (the event at 24 waits for the watermark).
    let due = (1..=23).filter(|&ts| listed(ts)).count();
    let during = records_in(&dir.join("out.jsonl"), due);
    assert_eq!(during.len(), due, "{during:?}");
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    // While it is stopped: 10.0.0.1 listed again; more events.
    fs::write(dir.join("b.csv"), "10.0.0.2\n10.0.0.1\n").unwrap();
    append(events(25..=32));
    let resumed = run(false);
    let (status, _, stderr) = resumed.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("cepheid: list `blocked_ips`: b.csv changed while the run was stopped: 1 added, 0 removed, at the checkpoint's event time"),
        "{stderr}"
    );
    let mut seen = records_in(&dir.join("out.jsonl"), 0);
    seen.sort();
    // The first list before `at`, the edit from it until the run
    // stopped (at 23), then both: each record once.
    let expected: Vec<(i64, String)> = (1..=32)
        .filter(|&ts| ts >= 24 || listed(ts))
        .map(|ts| (ts, ip(ts).to_string()))
        .collect();
    assert_eq!(seen, expected, "{stderr}");
}

/// Events of users and addresses with `$list` records among them.
fn stream_with_list_records() -> String {
    let mut lines = Vec::new();
    let ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.7.7"];
    for ts in 1..=60i64 {
        match ts {
            10 => lines.push(r#"{"$list": "blocked_ips", "add": "10.0.0.1"}"#.to_string()),
            20 => lines.push(
                r#"{"$list": "blocked_ips", "add": ["10.0.0.2", "10.0.0.3"], "expires": 40}"#
                    .to_string(),
            ),
            30 => lines.push(r#"{"$list": "blocked_ips", "remove": "10.0.0.1"}"#.to_string()),
            35 => lines.push(r#"{"$list": "nets", "add": "192.168.0.0/16"}"#.to_string()),
            // (no such list; no entry; a field of neither kind)
            45 => lines.push(r#"{"$list": "nope", "add": "x"}"#.to_string()),
            46 => lines.push(r#"{"$list": "blocked_ips", "add": null}"#.to_string()),
            47 => lines.push(r#"{"$list": "blocked_ips", "add": "x", "why": 1}"#.to_string()),
            _ => {}
        }
        lines.push(format!(
            "{{\"ts\":{ts},\"user\":\"u{}\",\"ip\":\"{}\"}}",
            ts % 5,
            ips[ts as usize % 4]
        ));
    }
    lines.join("\n") + "\n"
}

#[test]
fn list_records_in_the_stream_change_lists_at_their_place_when_the_operator_allows_it() {
    let dir = scratch("lists-records");
    fs::write(
        dir.join("r.cep"),
        "list blocked_ips\nlist nets of cidr\npattern hit { partition by user match a where a: ip in blocked_ips or ip in nets }\n",
    )
    .unwrap();
    fs::write(dir.join("e.jsonl"), stream_with_list_records()).unwrap();
    let out = run_in(&dir, &["--lists-from-stream"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // 10.0.0.1 from 10 (the record's place: watermark + 1) to 30,
    // 10.0.0.2 and .3 from 20 until 40, the network from 35.
    let expected: Vec<i64> = (1..=60)
        .filter(|&ts| match ts % 4 {
            0 => (10..30).contains(&ts),
            1 | 2 => (20..40).contains(&ts),
            _ => ts >= 35,
        })
        .collect();
    let mut seen = matched(&out.stdout);
    seen.sort();
    assert_eq!(seen, expected, "{stderr}");
    for said in [
        "e.jsonl:49 (`$list` nope): refused: there is no list `nope` in the rule set; the record is left out",
        "e.jsonl:51: malformed line: null, a list or an object is no list entry",
        "e.jsonl:53: malformed line: a `$list` record has `$list`, `add` or `remove`, and `expires` only (not `why`)",
        "3 malformed",
    ] {
        assert!(stderr.contains(said), "{said:?} not in:\n{stderr}");
    }
    // Without `--lists-from-stream` each record is refused, said and
    // counted; the run goes on with the lists as they were.
    let off = run_in(&dir, &[]);
    let stderr = String::from_utf8_lossy(&off.stderr);
    assert!(off.status.success(), "{stderr}");
    assert!(matched(&off.stdout).is_empty(), "{stderr}");
    assert!(
        stderr.contains("e.jsonl:10 (`$list` blocked_ips): refused: changes of lists from the event stream are off (--lists-from-stream turns them on); the record is left out"),
        "{stderr}"
    );
    assert!(stderr.contains("7 malformed"), "{stderr}");
}

#[cfg(feature = "workers")]
#[test]
fn list_records_on_workers_give_one_engines_records_and_words() {
    let dir = scratch("lists-records-w");
    fs::write(
        dir.join("r.cep"),
        "list blocked_ips\nlist nets of cidr\npattern hit { partition by user match a where a: ip in blocked_ips or ip in nets }\npattern anyone { match a where a: ip in nets }\n",
    )
    .unwrap();
    fs::write(dir.join("e.jsonl"), stream_with_list_records()).unwrap();
    let one = run_in(&dir, &["--lists-from-stream"]);
    let said = String::from_utf8_lossy(&one.stderr);
    assert!(one.status.success(), "{said}");
    let lines = |stdout: &[u8]| {
        let mut lines: Vec<String> = (String::from_utf8_lossy(stdout).lines())
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    // (the same words; workers say a refusal when they make the change,
    // after the reader said the malformed lines that follow it)
    let refusals = |stderr: &str| -> Vec<String> {
        let mut said: Vec<String> = (stderr.lines())
            .filter(|l| l.contains("refused") || l.contains("malformed"))
            .map(|l| l.split(" in ").next().unwrap_or(l).to_string())
            .collect();
        said.sort();
        said
    };
    for workers in ["1", "2", "3"] {
        let out = run_in(&dir, &["--lists-from-stream", "--workers", workers]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            lines(&out.stdout),
            lines(&one.stdout),
            "{workers}: {stderr}"
        );
        assert_eq!(
            refusals(&stderr),
            refusals(&said),
            "{workers}:\n{stderr}\n{said}"
        );
    }
}
