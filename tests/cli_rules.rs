//! Changing the rules of a running `cepheid run` (`docs/dynamic-rules.md`):
//! `$rules` and `$rules_file` control records in the stream, compared with
//! the library's `Engine::set_rules` at the same line; reloading the same
//! rules changes nothing; a broken set keeps the old rules; `--watch` on a
//! followed file (an edit, a broken edit, SIGHUP). Live runs are read as
//! they come (`common::Live`), each wait bounded, never after a sleep.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Output;

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::ReloadPolicy;
use cepheid_engine::{Engine, Record, Rules};
use cepheid_runtime::jsonl::JsonLines;
use common::{cepheid, run_here, scratch, Live};

/// The rules before the change: `pair` reads `type` and `k`; `steady`
/// stays as it is; `gone` is removed by the change.
pub(crate) const OLD: &str = r#"
pattern pair {
    partition by k
    within 40ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
pattern steady {
    partition by k
    match x next y
    where
        x: type == "x"
        y: type == "y"
}
pattern gone {
    partition by k
    within 20ms
    match a followed by c
    where
        a: type == "a"
        c: type == "c"
}
"#;

/// The rules after it: `pair` changed (reads `v`, a field only the new
/// rules read), `steady` unchanged, `fresh` added (reads `w`).
pub(crate) const NEW: &str = r#"
pattern pair {
    partition by k
    within 40ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b" and v > 2
}
pattern steady {
    partition by k
    match x next y
    where
        x: type == "x"
        y: type == "y"
}
pattern fresh {
    partition by k
    match c followed by c2
    where
        c:  type == "c" and w == 1
        c2: type == "c"
}
"#;

/// A small deterministic generator (xorshift), so that the streams are
/// the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `n` events over keys 0..4, times going up with disorder within 5 ms.
fn events(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng(seed | 1);
    let types = ["a", "b", "c", "x", "y"];
    (0..n)
        .map(|i| {
            let ts = i as u64 * 3 + rng.below(5);
            format!(
                "{{\"ts\":{ts},\"type\":\"{}\",\"k\":{},\"v\":{},\"w\":{}}}",
                types[rng.below(5) as usize],
                rng.below(4),
                rng.below(5),
                rng.below(2)
            )
        })
        .collect()
}

/// A `$rules` control record carrying `source`.
fn rules_record(source: &str) -> String {
    serde_json::json!({ "$rules": source }).to_string()
}

/// `cepheid run PATTERNS --events EVENTS ARGS...` on files written to a
/// fresh folder.
fn run_cli(name: &str, rules: &str, lines: &[String], args: &[&str]) -> Output {
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), rules).unwrap();
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    run_here(&dir).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The same stream through the library: each line decoded with a decoder
/// over the engine's fields, a control record made `Engine::set_rules` at
/// its line, and the records written by the library's own writer.
fn run_library(rules: &str, lines: &[String], max_delay_ms: u64, policy: ReloadPolicy) -> String {
    let mut engine: Engine<Record> =
        Engine::with_max_delay(std::time::Duration::from_millis(max_delay_ms));
    engine
        .add(&Rules::parse("rules.cep", rules).unwrap())
        .unwrap();
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut bytes = Vec::new();
    let mut out: JsonLines<&mut Vec<u8>, Vec<u8>> = JsonLines::new(&mut bytes, None);
    for (i, line) in lines.iter().enumerate() {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(source) = json.get("$rules").and_then(|s| s.as_str()) {
            let origin = format!("events.jsonl:{} ($rules)", i + 1);
            let rules = Rules::parse(&origin, source).unwrap();
            engine.set_rules(&rules, policy, &mut out).unwrap();
            continue;
        }
        match decoder.decode(line.as_bytes()).unwrap() {
            Item::Event(ts, record) => {
                engine.push(ts, record, &mut out);
            }
            Item::Watermark(t) => engine.watermark(t, &mut out),
            Item::Skip => {}
        }
    }
    engine.finish(&mut out);
    out.flush().unwrap();
    drop(out);
    String::from_utf8(bytes).unwrap()
}

/// `cepheid run ARGS...` with `lines` on standard input.
fn run_stdin(args: &[&str], lines: &[String]) -> Output {
    use std::io::Write;
    let mut child = cepheid()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = lines.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

#[test]
fn a_control_record_mid_stream_is_the_librarys_set_rules_at_that_line() {
    for (seed, policy, policy_arg) in [
        (7, ReloadPolicy::Drain, "drain"),
        (11, ReloadPolicy::Restart, "restart"),
    ] {
        let mut lines = events(seed, 3_000);
        // Several batches of the reader thread before the change, and
        // lines decoded ahead of it.
        lines.insert(2_100, rules_record(NEW));
        let cli = run_cli(
            "control",
            OLD,
            &lines,
            &[
                "--max-delay",
                "5ms",
                "--reload-policy",
                policy_arg,
                "--rules-from-stream",
            ],
        );
        assert!(cli.status.success(), "{}", stderr(&cli));
        let expected = run_library(OLD, &lines, 5, policy);
        let got = String::from_utf8(cli.stdout.clone()).unwrap();
        assert_eq!(got, expected, "{policy_arg}");
        // The change shows: `pair`'s new version writes records (reading
        // `v`), and `fresh` (reading `w`) matches.
        assert!(
            got.contains(r#""pattern":"pair","version":2"#),
            "{policy_arg}"
        );
        assert_eq!(
            got.contains(r#""pattern":"pair","version":1"#),
            policy == ReloadPolicy::Drain,
            "{policy_arg}: the old version's records"
        );
        assert!(got.contains(r#""pattern":"fresh""#), "{policy_arg}");
        assert!(!got.contains(r#""pattern":"steady","version""#));
        let err = stderr(&cli);
        for said in [
            "events.jsonl:2101 (`$rules`): rules reloaded:",
            "  pair: changed (version 2)",
            "  steady: unchanged",
            "  fresh: added",
            "  gone: removed",
            ", 1 rule reload",
        ] {
            assert!(err.contains(said), "{said}: {err}");
        }
    }
}

/// Issue 39, item 8: a control record whose rule set has no patterns
/// (`{"$rules": ""}`, one that holds only comments) would stop every
/// alert: it is refused, said and counted, unless the record says it
/// means it (`"$allow_empty": true`, in any place of the record); then it
/// is the library's `set_rules` at its line. The same on workers.
#[test]
fn an_empty_rule_set_from_the_stream_is_refused_unless_the_record_allows_it() {
    let mut lines = events(13, 3_000);
    let allowed = r#"{"$allow_empty":true,"$rules":"// nothing for now\n"}"#;
    lines.insert(2_000, allowed.to_string());
    let expected = run_library(OLD, &lines, 5, ReloadPolicy::Drain);
    lines.insert(1_000, rules_record(""));
    lines.insert(1_500, rules_record("// every rule off\n"));
    let args = ["--max-delay", "5ms", "--rules-from-stream"];
    let cli = run_cli("empty_set", OLD, &lines, &args);
    let err = stderr(&cli);
    assert!(cli.status.success(), "{err}");
    let got = String::from_utf8(cli.stdout.clone()).unwrap();
    assert_eq!(got, expected);
    assert!(got.contains(r#""pattern":"pair""#), "{got}");
    for said in [
        "cepheid: events.jsonl:1001 (`$rules`): refused: the new rule set has no patterns, which would stop every alert; a record that means it says `\"$allow_empty\": true` (docs/dynamic-rules.md, \"Who can change the rules\"); the old rules go on",
        "cepheid: events.jsonl:1501 (`$rules`): refused: the new rule set has no patterns",
        "events.jsonl:2003 (`$rules`): rules reloaded:",
        "  pair: removed",
        ", 1 rule reload, 2 refused (the old rules kept)",
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
    #[cfg(feature = "workers")]
    {
        let workers = run_cli(
            "empty_set_workers",
            OLD,
            &lines,
            &[&args[..], &["--workers", "2"]].concat(),
        );
        let werr = stderr(&workers);
        assert!(workers.status.success(), "{werr}");
        let sorted = |text: &[u8]| {
            let mut lines: Vec<String> = String::from_utf8_lossy(text)
                .lines()
                .map(str::to_string)
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&workers.stdout), sorted(&cli.stdout));
        assert!(
            werr.contains(
                "events.jsonl:1001 (`$rules`): refused: the new rule set has no patterns"
            ),
            "{werr}"
        );
        assert!(
            werr.contains(", 1 rule reload, 2 refused (the old rules kept)"),
            "{werr}"
        );
    }
}

#[test]
fn reloading_the_same_rules_changes_nothing_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let patterns = root.join("patterns");
    let folder = patterns.to_str().unwrap();
    let sample = fs::read_to_string(root.join("examples/data/sample.jsonl")).unwrap();
    let mut lines: Vec<String> = sample.lines().map(str::to_string).collect();
    let args = ["run", folder, "--no-progress", "--max-delay", "10s"];
    let plain = run_stdin(&args, &lines);
    let stream = [&args[..], &["--rules-from-stream", "--rules-dir", folder]].concat();
    // The same folder as a `$rules_file` record, and all of its files as
    // one inline `$rules` text.
    // (the folder's `.cep` files, as a rule set's folder loads them: not
    // `patterns/risk/`, a folder of its own)
    let mut files: Vec<_> = fs::read_dir(&patterns)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cep"))
        .collect();
    files.sort();
    let all: String = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap() + "\n")
        .collect();
    lines.insert(30, serde_json::json!({ "$rules_file": folder }).to_string());
    lines.insert(60, rules_record(&all));
    lines.insert(90, serde_json::json!({ "$rules_file": folder }).to_string());
    let reloaded = run_stdin(&stream, &lines);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert!(reloaded.status.success(), "{}", stderr(&reloaded));
    assert!(plain.stdout.len() > 1000);
    assert_eq!(
        String::from_utf8(reloaded.stdout.clone()).unwrap(),
        String::from_utf8(plain.stdout.clone()).unwrap()
    );
    let err = stderr(&reloaded);
    assert!(err.contains("  unpaid_order: unchanged"), "{err}");
    assert!(!err.contains("changed (version"), "{err}");
    assert!(err.contains(", 3 rule reloads "), "{err}");
}

#[test]
fn a_broken_rule_set_keeps_the_old_rules_and_the_run_goes_on() {
    let lines = events(3, 1_000);
    let plain = run_cli("broken_plain", OLD, &lines, &["--max-delay", "5ms"]);
    let mut broken = lines.clone();
    broken.insert(400, rules_record("pattern pair {\n    match a b\n}"));
    broken.insert(
        500,
        serde_json::json!({ "$rules_file": "missing.cep" }).to_string(),
    );
    broken.insert(
        600,
        r#"{"$rules": "pattern p { match a }", "ts": 5}"#.to_string(),
    );
    broken.insert(700, r#"{"$rules": 5}"#.to_string());
    // Parses, but the compiler rejects it: said in its place too.
    let ambiguous: String = (0..14)
        .map(|i| format!(" followed by (b{i}? followed by c{i}?)?"))
        .collect();
    broken.insert(
        800,
        rules_record(&format!(
            "pattern amb {{\n    match a{ambiguous} followed by z\n}}"
        )),
    );
    let stream = [
        "--max-delay",
        "5ms",
        "--rules-from-stream",
        "--rules-dir",
        ".",
    ];
    let out = run_cli("broken", OLD, &broken, &stream);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, plain.stdout, "the old rules went on");
    let err = stderr(&out);
    for said in [
        // The diagnostic names the input line and points into the text.
        "error: events.jsonl:401 ($rules):2:13:",
        "2 |     match a b",
        "cepheid: events.jsonl:401 (`$rules`): the new rules have errors; the old rules go on",
        "cepheid: events.jsonl:501 (`$rules_file` missing.cep): refused: cannot open it in --rules-dir: entity not found; the old rules go on",
        "events.jsonl:601: malformed line: a `$rules` or `$rules_file` record must have no other field but `$allow_empty` (this one has 2)",
        "events.jsonl:701: malformed line: `$rules` must be the pattern source, as a string",
        "error: events.jsonl:801 ($rules):1:9: pattern `amb` cannot be compiled: the pattern is too ambiguous",
        "cepheid: events.jsonl:801 (`$rules`): the new rules have errors; the old rules go on",
        "1000 events read, 2 malformed,",
        ", 0 rule reloads, 3 refused (the old rules kept)",
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
}

#[test]
fn csv_input_has_no_control_records() {
    let dir = scratch("csv_rules");
    fs::write(dir.join("rules.cep"), OLD).unwrap();
    fs::write(
        dir.join("events.csv"),
        "ts,type,k\n1,a,1\n\"{\"\"$rules\"\": \"\"x\"\"}\"\n2,b,1\n3,z,1\n",
    )
    .unwrap();
    let out = cepheid()
        .current_dir(&dir)
        .args([
            "run",
            "rules.cep",
            "--events",
            "events.csv",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("events.csv:3: malformed line"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("rule reload"), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""pattern":"pair""#));
}

/// `a followed by b` per key `k`, the rule a test edits.
pub(crate) const PAIR_BY_K: &str = r#"
pattern pair {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
"#;

pub(crate) fn event(ts: i64, kind: &str, k: u32) -> String {
    format!("{{\"ts\":{ts},\"type\":\"{kind}\",\"k\":{k}}}\n")
}

pub(crate) fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[test]
fn watch_reloads_an_edited_rule_file_while_following_keeps_the_old_rules_on_a_broken_edit_and_reloads_on_sighup(
) {
    watch_edits_while_following(&[]);
}

/// The same on two workers (issue 38): a reload applies on every worker
/// from the live input's watermark then + 1, with the same words.
#[cfg(feature = "workers")]
#[test]
fn watch_on_workers_reloads_an_edited_rule_file_while_following_and_on_sighup() {
    watch_edits_while_following(&["--workers", "2"]);
}

/// Follows a file with `--watch` (and `extra`), editing its rules: good,
/// broken, good again, then SIGHUP.
fn watch_edits_while_following(extra: &[&str]) {
    let dir = scratch("watch");
    let rules = dir.join("p.cep");
    let events = dir.join("events.jsonl");
    fs::write(&rules, PAIR_BY_K).unwrap();
    fs::write(
        &events,
        [event(1, "a", 1), event(2, "b", 1), event(3, "x", 1)].concat(),
    )
    .unwrap();
    let live = Live::run(
        &rules,
        &[
            "--events",
            events.to_str().unwrap(),
            "--follow",
            "--watch",
            "--no-progress",
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect::<Vec<_>>(),
    );
    let first = live.record("a match under the first rules");
    assert_eq!(
        (first["end"].as_i64(), first.get("version")),
        (Some(2), None)
    );

    // Edited while it runs: `b` becomes `c`.
    fs::write(
        &rules,
        PAIR_BY_K.replace(r#"b: type == "b""#, r#"b: type == "c""#),
    )
    .unwrap();
    live.stderr_line("pair: changed (version 2)");
    append(
        &events,
        &[
            event(4, "a", 2),
            event(5, "b", 2),
            event(6, "c", 2),
            event(7, "x", 2),
        ]
        .concat(),
    );
    let second = live.record("a match under the edited rule");
    assert_eq!(second["version"], 2);
    assert_eq!(second["key"]["k"], 2);
    assert_eq!(second["events"]["b"][0]["ts"], 6);

    // A broken edit: diagnostics, and the old rules go on.
    fs::write(&rules, "pattern pair {\n    match a b\n}\n").unwrap();
    live.stderr_line("p.cep:2:");
    live.stderr_line("the new rules have errors; the old rules go on");
    append(
        &events,
        &[event(8, "a", 3), event(9, "c", 3), event(10, "x", 3)].concat(),
    );
    let third = live.record("a match under the rules in force before the broken edit");
    assert_eq!(third["version"], 2);
    assert_eq!(third["events"]["b"][0]["ts"], 9);

    // Fixed again, then SIGHUP: read again, nothing changed.
    fs::write(&rules, PAIR_BY_K).unwrap();
    live.stderr_line("pair: changed (version 3)");
    live.signal("HUP");
    live.stderr_line("cepheid: SIGHUP: rules reloaded:");
    live.stderr_line("pair: unchanged");
    append(
        &events,
        &[event(11, "a", 4), event(12, "b", 4), event(13, "x", 4)].concat(),
    );
    let fourth = live.record("a match under the fixed rule");
    assert_eq!(fourth["version"], 3);
    assert_eq!(fourth["events"]["b"][0]["ts"], 12);

    // SIGHUP did not stop it; SIGTERM does, cleanly.
    live.signal("TERM");
    let (status, rest, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        stderr.contains("4 matches, 0 timeouts, 3 rule reloads, 1 refused (the old rules kept)"),
        "{stderr}"
    );
}

/// `cepheid run rules/ --events events.jsonl ARGS...` in `dir`, killed
/// (and the test failed) when it takes longer than [`common::PATIENCE`]:
/// a control record must never make the run wait.
fn run_bounded(dir: &Path, args: &[&str]) -> Output {
    let mut child = run_here(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > common::PATIENCE {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("the run hung: {}", stderr(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn control_records_are_refused_unless_the_operator_turns_them_on() {
    let lines = events(5, 1_000);
    let plain = run_cli("stream_off_plain", OLD, &lines, &["--max-delay", "5ms"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    let mut hostile = lines.clone();
    hostile.insert(300, rules_record(NEW));
    hostile.insert(
        600,
        serde_json::json!({ "$rules_file": "rules.cep" }).to_string(),
    );
    let out = run_cli("stream_off", OLD, &hostile, &["--max-delay", "5ms"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, plain.stdout, "the rules did not change");
    let err = stderr(&out);
    for said in [
        "cepheid: events.jsonl:301 (`$rules`): refused: rule changes from the event stream are off (--rules-from-stream turns them on); the old rules go on",
        "cepheid: events.jsonl:601 (`$rules_file` rules.cep): refused: rule changes from the event stream are off",
        "1000 events read, 0 malformed,",
        ", 0 rule reloads, 2 refused (the old rules kept)",
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
    // `$rules` on, `$rules_file` still off without --rules-dir.
    let out = run_cli(
        "stream_no_dir",
        OLD,
        &hostile,
        &["--max-delay", "5ms", "--rules-from-stream"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("events.jsonl:601 (`$rules_file` rules.cep): refused: `$rules_file` records are off (--rules-dir DIR allows the files in DIR)"),
        "{err}"
    );
    assert!(err.contains(", 1 rule reload, 1 refused"), "{err}");
    // --rules-dir alone is a usage error; so is a folder that is not one.
    let out = run_cli("stream_dir_alone", OLD, &lines, &["--rules-dir", "."]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run_cli(
        "stream_dir_missing",
        OLD,
        &lines,
        &["--rules-from-stream", "--rules-dir", "nowhere"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--rules-dir nowhere: not a folder"));
}

#[cfg(unix)]
#[test]
fn a_rules_file_path_is_confined_to_the_rules_dir_regular_files_only_and_never_shown() {
    let dir = scratch("stream_confined");
    fs::write(dir.join("rules.cep"), OLD).unwrap();
    let rules = dir.join("rules");
    fs::create_dir_all(rules.join("sub")).unwrap();
    fs::write(rules.join("new.cep"), NEW).unwrap();
    // A secret outside the folder, which would load as pattern text with
    // an error (its line would be shown under the error).
    let secret = "pattern SECRET-TOKEN-4711 {";
    fs::write(dir.join("secret.cep"), secret).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.cep"), rules.join("link.cep")).unwrap();
    std::os::unix::fs::symlink(&dir, rules.join("up")).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.cep"), rules.join("sub/x.cep")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(rules.join("pipe.cep"))
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(
        rules.join("big.cep"),
        vec![b' '; cepheid_syntax::MAX_FILE_SIZE + 1],
    )
    .unwrap();
    let refused = [
        ("../secret.cep", "it is outside --rules-dir"),
        ("link.cep", "it is outside --rules-dir"),
        ("up/secret.cep", "it is outside --rules-dir"),
        ("sub", "sub/x.cep is outside --rules-dir"),
        ("pipe.cep", "it is not a regular file"),
        ("/dev/zero", "it is outside --rules-dir"),
        ("big.cep", "it is larger than 1 MiB"),
        (
            "missing.cep",
            "cannot open it in --rules-dir: entity not found",
        ),
    ];
    let absolute_secret = dir.join("secret.cep").display().to_string();
    let mut lines = events(9, 1_200);
    let mut at = 100;
    for (path, _) in refused
        .iter()
        .map(|(p, w)| (p.to_string(), w))
        .chain([(absolute_secret.clone(), &"it is outside --rules-dir")])
    {
        lines.insert(at, serde_json::json!({ "$rules_file": path }).to_string());
        at += 100;
    }
    // Then a good one: it is applied (relative to the folder).
    lines.insert(
        at,
        serde_json::json!({ "$rules_file": "new.cep" }).to_string(),
    );
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let args = [
        "--max-delay",
        "5ms",
        "--rules-from-stream",
        "--rules-dir",
        "rules",
    ];
    let out = run_bounded(&dir, &args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("SECRET-TOKEN"),
        "a file's content shown: {err}"
    );
    for (i, (path, why)) in refused.iter().enumerate() {
        let line = 101 + 100 * i;
        let said = format!("cepheid: events.jsonl:{line} (`$rules_file` {path}): refused: {why}");
        assert!(err.contains(&said), "{said}: {err}");
    }
    let line = 101 + 100 * refused.len();
    assert!(
        err.contains(&format!("events.jsonl:{line} (`$rules_file` {absolute_secret}): refused: it is outside --rules-dir")),
        "{err}"
    );
    let line = line + 100;
    assert!(
        err.contains(&format!(
            "events.jsonl:{line} (`$rules_file` new.cep): rules reloaded:"
        )),
        "{err}"
    );
    assert!(err.contains(", 1 rule reload, 9 refused"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""pattern":"pair","version":2"#));
}

/// An editor that rewrites a rule file in place empties it for a moment:
/// with `--watch`, the pattern was removed (its partial matches dropped)
/// and added again with the same text, and the orders never paid were
/// never reported. An empty file is not a decision to remove its rules:
/// nothing is applied until it is written, and a pattern whose text did
/// not change keeps its state (issue 26).
#[test]
fn watch_does_not_apply_a_rule_file_emptied_for_a_moment_and_an_unchanged_pattern_keeps_its_state()
{
    let dir = scratch("watch_flicker");
    let rules = dir.join("p.cep");
    let events = dir.join("events.jsonl");
    fs::write(&rules, PAIR_BY_K).unwrap();
    // A match (to know the run is there), then `a` of key 2 waiting.
    fs::write(
        &events,
        [
            event(1, "a", 1),
            event(2, "b", 1),
            event(3, "a", 2),
            event(4, "x", 1),
        ]
        .concat(),
    )
    .unwrap();
    let live = Live::run(
        &rules,
        &[
            "--events",
            events.to_str().unwrap(),
            "--follow",
            "--watch",
            "--no-progress",
        ],
    );
    let first = live.record("the first match");
    assert_eq!(first["key"]["k"], 1);
    // Emptied (well past the debounce), then written again, unchanged.
    fs::write(&rules, "").unwrap();
    live.stderr_line("p.cep is empty (being written?): not applied");
    fs::write(&rules, PAIR_BY_K).unwrap();
    live.stderr_line("pair: unchanged");
    append(&events, &[event(5, "b", 2), event(6, "x", 2)].concat());
    let second = live.record("the match of the `a` that waited across the flicker");
    assert_eq!(second["key"]["k"], 2);
    assert_eq!(second["events"]["a"][0]["ts"], 3);
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(!stderr.contains("pair: removed"), "{stderr}");
    assert!(
        stderr.contains("2 matches, 0 timeouts, 1 rule reload"),
        "{stderr}"
    );
}

/// `--watch --checkpoint`: a rule edited, the reload applied, the process
/// killed before its next checkpoint. Every restart was refused for ever
/// (exit 5, "taken with other patterns"). It resumes with the checkpoint's
/// rules and reads the files on disk at once, as a reload (issue 26).
#[cfg(unix)]
#[test]
fn watch_with_checkpoints_resumes_after_an_edit_made_since_the_checkpoint() {
    let dir = scratch("watch_ckpt");
    let rules = dir.join("p.cep");
    let events = dir.join("events.jsonl");
    let ckpt = dir.join("ckpt");
    fs::write(&rules, PAIR_BY_K).unwrap();
    fs::write(
        &events,
        [event(1, "a", 1), event(2, "b", 1), event(3, "x", 1)].concat(),
    )
    .unwrap();
    let args = [
        "--events",
        events.to_str().unwrap(),
        "--follow",
        "--watch",
        "--no-progress",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        // (a checkpoint after each batch of lines, none without lines)
        "--checkpoint-every",
        "1",
    ];
    let mut live = Live::run(&rules, &args);
    let first = live.record("a match under the first rules");
    assert_eq!(first["key"]["k"], 1);
    // Edited: `b` becomes `c`; the reload is applied, then SIGKILL before
    // any further line (so before any further checkpoint).
    let edited = PAIR_BY_K.replace(r#"b: type == "b""#, r#"b: type == "c""#);
    fs::write(&rules, &edited).unwrap();
    live.stderr_line("pair: changed (version 2)");
    live.child.kill().unwrap();
    live.child.wait().unwrap();
    // Restarted with the same command: it resumes, reads the edited file
    // at once, and goes on under it.
    let live = Live::run(&rules, &args);
    live.stderr_line("it goes on with the checkpoint's rules and reads the files at once");
    live.stderr_line("cepheid: the pattern files changed since the checkpoint: rules reloaded:");
    live.stderr_line("pair: changed (version 2)");
    append(
        &events,
        &[
            event(4, "a", 2),
            event(5, "b", 2),
            event(6, "c", 2),
            event(7, "x", 2),
        ]
        .concat(),
    );
    let second = live.record("a match under the edited rule");
    assert_eq!(second["version"], 2);
    assert_eq!(second["events"]["b"][0]["ts"], 6);
    live.signal("TERM");
    let (status, rest, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(stderr.contains(", 1 rule reload"), "{stderr}");
    // Stopped by SIGTERM after the reload: its checkpoint holds the
    // edited rules; the next start says so, and reloads nothing.
    let live = Live::run(&rules, &args);
    live.stderr_line("the rules changed while it ran: it goes on with the rules of the checkpoint");
    append(
        &events,
        &[event(8, "a", 3), event(9, "c", 3), event(10, "x", 3)].concat(),
    );
    let third = live.record("a match under the edited rule, resumed");
    assert_eq!(third["version"], 2);
    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(!stderr.contains("rules reloaded"), "{stderr}");
}
