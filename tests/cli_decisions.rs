//! `cepheid run --decisions FILE` (issue 62, `docs/decisions.md`): one
//! decision record per event and scene it enters, written to a file of its
//! own beside the alerts, kept with checkpoints as `--output` is: killed
//! after a checkpoint and resumed, the decisions are those of a run never
//! interrupted, byte for byte (none doubled, none missing). A Kafka
//! topic's events are named by topic, partition and offset; decisions to
//! a Kafka topic, killed and resumed, are committed each once. What a run
//! cannot do with it is refused before anything is written.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::{run_here, scratch};

/// A scene over payments with two rules partitioned by different keys (a
/// card's velocity, a device seen with several cards) and a sequence (a
/// refund followed by a payment of the same card); `id payment_id`, which
/// some events lack (their input position is their id).
const RULES: &str = r#"
pattern card_velocity {
    partition by card
    within 10s
    score 40
    action review
    tags "payment"
    match p{3}
    where p: type == "payment"
}

pattern refund_then_pay {
    partition by card
    within 5s
    score 80
    action review
    tags "payment"
    match r followed by p
    where
        r: type == "refund"
        p: type == "payment"
}

pattern big {
    score 30
    tags "payment"
    match p
    where p: type == "payment" and amount > 900
}

scene payment {
    when type == "payment"
    id payment_id
    rules tagged "payment"
    outcomes approve < review < decline
    review if action review
    review if score >= 60
    decline if score >= 100
    fallback approve
    deadline 100ms
    late review
}
"#;

/// `n` events: payments (every seventh without a `payment_id`), refunds
/// and logins (of no scene) over 40 cards, a little disorder, and every
/// 500th event late by far.
fn events(n: usize) -> String {
    events_with(n, true)
}

/// The same, with the disorder and the late events or (`disorder`
/// false) each event 100 ms after the one before.
fn events_with(n: usize, disorder: bool) -> String {
    let mut text = String::new();
    for i in 0..n {
        let card = (i * 7 + i / 13) % 40;
        let mut ts = 1_000 + (i as i64) * 100;
        if disorder {
            ts -= ((i % 3) as i64) * 150;
            if i % 500 == 499 {
                ts -= 30_000;
            }
        }
        let line = match i % 10 {
            0 => format!(r#"{{"ts": {ts}, "type": "refund", "card": "c{card}"}}"#),
            1 => format!(r#"{{"ts": {ts}, "type": "login", "user": "u{card}"}}"#),
            _ if i % 7 == 3 => format!(
                r#"{{"ts": {ts}, "type": "payment", "card": "c{card}", "amount": {}}}"#,
                (i * 37) % 1000
            ),
            _ => format!(
                r#"{{"ts": {ts}, "type": "payment", "payment_id": "p{i}", "card": "c{card}", "amount": {}}}"#,
                (i * 37) % 1000
            ),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

fn lines(dir: &Path, file: &str) -> Vec<String> {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The rules and `n` events written in a new folder.
fn setup(name: &str, n: usize) -> common::Scratch {
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    fs::write(dir.join("events.jsonl"), events(n)).unwrap();
    dir
}

/// A rule with parameters held by two scenes, whose values change
/// mid-stream (a `$rules` record): each instance (`over@low`, `over@high`)
/// fires only on the events of its scene, on workers as on one engine
/// (`docs/semantics.md`, "Decisions"): before, the workers' engines had no
/// scenes, and each instance fired on every event its conditions held.
#[test]
fn a_rules_instances_fire_only_on_their_scenes_events_on_workers_too() {
    let rules = |low: u32| {
        format!(
            r#"
pattern over(min: int) {{
    partition by card
    action review
    match p
    where p: amount > min
}}
scene low {{
    when type == "small"
    rules over
    with min = {low}
    outcomes approve < review
    review if action review
    fallback approve
    deadline 100ms
}}
scene high {{
    when type == "large"
    rules over
    with min = 500
    outcomes approve < review
    review if action review
    fallback approve
    deadline 100ms
}}
"#
        )
    };
    let dir = scratch("decisions_instances_workers");
    fs::write(dir.join("rules.cep"), rules(100)).unwrap();
    let mut text = String::new();
    // (amount, type) of each event, for the count below
    let mut kept = Vec::new();
    for i in 0..2_000 {
        if i == 1_000 {
            let change = serde_json::json!({ "$rules": rules(300) }).to_string();
            text += &(change + "\n");
        }
        let kind = ["small", "large", "login"][i % 3];
        let amount = (i * 37) % 1000;
        let ts = 1_000 + i * 10;
        text += &format!(
            r#"{{"ts": {ts}, "type": "{kind}", "card": "c{}", "amount": {amount}}}"#,
            i % 17
        );
        text.push('\n');
        kept.push((i, kind, amount));
    }
    fs::write(dir.join("events.jsonl"), text).unwrap();
    // Each instance's matches: of its scene's events over its threshold
    // (`over@low`'s from 100 to 300 at the change), counted here.
    let low = (kept.iter())
        .filter(|(i, kind, amount)| {
            *kind == "small" && *amount > if *i < 1_000 { 100 } else { 300 }
        })
        .count();
    let high = (kept.iter())
        .filter(|(_, kind, amount)| *kind == "large" && *amount > 500)
        .count();
    let mut outputs = Vec::new();
    for (name, extra) in [("one", &[][..]), ("workers", &["--workers", "2"][..])] {
        let out = format!("{name}.jsonl");
        let run = ok(run_here(&dir)
            .args(["--rules-from-stream", "--output", &out])
            .args(extra)
            .output()
            .unwrap());
        // The summary counts the matches made, not those held back (an
        // instance's on an event outside its scene): it said 36 of 18.
        let said = stderr(&run);
        let summary = (said.lines())
            .find(|l| l.contains(" events read"))
            .unwrap_or_else(|| panic!("{said}"));
        let matches: usize = (summary.split(", "))
            .find_map(|part| part.strip_suffix(" matches"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{summary}"));
        assert_eq!(matches, low + high, "{name}: {summary}");
        let mut records = lines(&dir, &out);
        let count = |instance: &str| {
            (records.iter())
                .filter(|r| r.contains(&format!(r#""pattern":"{instance}""#)))
                .count()
        };
        assert_eq!(count("over@low"), low, "{name}");
        assert_eq!(count("over@high"), high, "{name}");
        assert_eq!(records.len(), low + high, "{name}");
        records.sort();
        outputs.push(records);
    }
    assert_eq!(outputs[0], outputs[1]);
}

/// The sample scenes of `patterns/risk/` give, through the command, the
/// decisions the engine's golden test expects (`decisions.jsonl`), the
/// event without an id named by its input position, `path:line`.
#[test]
fn the_risk_samples_decisions_are_the_engines() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/patterns/risk");
    let dir = scratch("decisions_sample");
    for file in ["rules.cep", "scenes.cep", "scene-events.jsonl"] {
        fs::copy(Path::new(samples).join(file), dir.join(file)).unwrap();
    }
    let out = common::cepheid()
        .current_dir(&dir)
        .args([
            "run",
            "rules.cep",
            "scenes.cep",
            "--events",
            "scene-events.jsonl",
        ])
        .args([
            "--max-delay",
            "1s",
            "--no-progress",
            "--output",
            "out.jsonl",
        ])
        .args(["--decisions", "decisions.jsonl"])
        .output()
        .unwrap();
    ok(out);
    let got = fs::read_to_string(dir.join("decisions.jsonl")).unwrap();
    let expected = fs::read_to_string(Path::new(samples).join("decisions.jsonl")).unwrap();
    // (the engine's test gives the line number itself as the position)
    let expected = expected.replace(
        r#""position":11,"#,
        r#""position":"scene-events.jsonl:11","#,
    );
    assert_eq!(got, expected);
    // The alerts are what they are without `--decisions`.
    let plain = common::cepheid()
        .current_dir(&dir)
        .args([
            "run",
            "rules.cep",
            "scenes.cep",
            "--events",
            "scene-events.jsonl",
        ])
        .args([
            "--max-delay",
            "1s",
            "--no-progress",
            "--output",
            "plain.jsonl",
        ])
        .output()
        .unwrap();
    let said = stderr(&ok(plain));
    assert_eq!(lines(&dir, "out.jsonl"), lines(&dir, "plain.jsonl"));
    // Without it, the run says that its scenes' decisions are not written.
    assert!(
        said.contains("cepheid: the decisions of scenes payment, coupon, sign_up are not written: give the run a decisions file (--decisions)"),
        "{said}"
    );
}

/// One decision per event of the scene, none for the others; each event
/// named by its id, or by its position when it has none; late ones marked.
#[test]
fn every_payment_gets_one_decision_and_nothing_else_does() {
    let dir = setup("decisions_each", 3000);
    let run = run_here(&dir)
        .args(["--max-delay", "1s", "--output", "out.jsonl"])
        .args(["--decisions", "decisions.jsonl"])
        .output()
        .unwrap();
    let said = stderr(&ok(run));
    assert!(!said.contains("are not written"), "{said}");
    let decisions = lines(&dir, "decisions.jsonl");
    let events = events(3000);
    let payments: Vec<(usize, serde_json::Value)> = (events.lines().enumerate())
        .map(|(i, l)| (i + 1, serde_json::from_str::<serde_json::Value>(l).unwrap()))
        .filter(|(_, e)| e["type"] == "payment")
        .collect();
    assert_eq!(decisions.len(), payments.len());
    let mut ids: Vec<String> = Vec::new();
    let (mut fired, mut late) = (0, 0);
    for d in &decisions {
        let d: serde_json::Value = serde_json::from_str(d).unwrap();
        assert_eq!(
            (&d["kind"], &d["scene"]),
            (&"decision".into(), &"payment".into())
        );
        ids.push(match (&d["event"], &d["position"]) {
            (serde_json::Value::String(id), serde_json::Value::Null) => id.clone(),
            (serde_json::Value::Null, serde_json::Value::String(at)) => {
                assert!(at.starts_with("events.jsonl:"), "{at}");
                at.clone()
            }
            other => panic!("{other:?} in {d}"),
        });
        fired += usize::from(!d["rules"].as_array().unwrap().is_empty());
        late += usize::from(d["late"] == true);
    }
    let mut expected: Vec<String> = (payments.iter())
        .map(|(line, e)| match e["payment_id"].as_str() {
            Some(id) => id.to_string(),
            None => format!("events.jsonl:{line}"),
        })
        .collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected, "each payment once, by its id or position");
    assert!(
        fired * 5 >= decisions.len(),
        "{fired} of {}",
        decisions.len()
    );
    assert!(late > 0);
}

/// Killed after a checkpoint and resumed, at several points: the
/// decisions file is the uninterrupted run's, byte for byte, as the alerts
/// are.
#[test]
fn killed_and_resumed_the_decisions_are_written_once() {
    let dir = setup("decisions_killed", 4000);
    let base = ["--max-delay", "1s"];
    killed_then_resumed(
        &dir,
        &base,
        &[(1, "700"), (2, "1500"), (3, "3100")],
        "resuming from checkpoint",
    );
}

/// A change of rules mid-stream (a `$rules` record: another velocity
/// and another threshold), then killed after a checkpoint taken under the
/// new rules and resumed: the run goes on with the checkpoint's rules
/// (not the command's file) and their scenes, and its decisions are the
/// uninterrupted run's. It resumed without scenes before (a snapshot held
/// no scenes): every decision after the cut was lost, and nothing said.
#[test]
fn resumed_after_a_change_of_rules_it_goes_on_deciding() {
    let dir = setup("decisions_changed_resumed", 3000);
    let changed = RULES
        .replace("match p{3}", "match p{2}")
        .replace("review if score >= 60", "review if score >= 50");
    assert_ne!(changed, RULES);
    let record = serde_json::json!({ "$rules": changed }).to_string();
    let mut events: Vec<String> = events(3000).lines().map(str::to_string).collect();
    events.insert(1000, record);
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let base = ["--max-delay", "1s", "--rules-from-stream"];
    killed_then_resumed(
        &dir,
        &base,
        &[(1, "1500"), (2, "2400")],
        "goes on with the rules of the checkpoint",
    );
}

/// The same change of rules, killed after a checkpoint taken under the new
/// rules on workers and resumed on workers, and across executors both
/// ways: the decisions and the alerts are the uninterrupted one engine's
/// (sorted: the workers write a time's in another order).
#[cfg(feature = "workers")]
#[test]
fn resumed_after_a_change_of_rules_on_workers_and_across_it_goes_on_deciding() {
    let dir = setup("decisions_changed_workers", 3000);
    let changed = RULES
        .replace("match p{3}", "match p{2}")
        .replace("review if score >= 60", "review if score >= 50");
    let record = serde_json::json!({ "$rules": changed }).to_string();
    let mut events: Vec<String> = events(3000).lines().map(str::to_string).collect();
    events.insert(1000, record);
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let base = ["--max-delay", "1s", "--rules-from-stream"];
    ok(run_here(&dir)
        .args(base)
        .args([
            "--output",
            "out_whole.jsonl",
            "--decisions",
            "dec_whole.jsonl",
        ])
        .output()
        .unwrap());
    let sorted = |file: &str| {
        let mut lines = lines(&dir, file);
        lines.sort();
        lines
    };
    let whole = (sorted("dec_whole.jsonl"), sorted("out_whole.jsonl"));
    let workers = ["--workers", "2"];
    for (taken, resumed) in [
        (&workers[..], &workers[..]),
        (&workers[..], &[][..]),
        (&[][..], &workers[..]),
    ] {
        let got = killed_here_resumed_there(&dir, &base, (taken, resumed), ("1", "1500"));
        let what = format!("taken {taken:?}, resumed {resumed:?}");
        assert!(got.0 == whole.0, "{what}: the decisions differ");
        assert!(got.1 == whole.1, "{what}: the alerts differ");
    }
}

/// For each `(n, every)`: the run of `dir` with `base` flags and a
/// checkpoint every `every` events, killed after its first checkpoint,
/// then resumed (saying `said`): its decisions (`dec_N.jsonl`) and alerts
/// (`out_N.jsonl`) are the uninterrupted run's (`dec_whole.jsonl`,
/// `out_whole.jsonl`, made first), byte for byte and line for line.
fn killed_then_resumed(dir: &Path, base: &[&str], runs: &[(u32, &str)], said: &str) {
    ok(run_here(dir)
        .args(base)
        .args([
            "--output",
            "out_whole.jsonl",
            "--decisions",
            "dec_whole.jsonl",
        ])
        .output()
        .unwrap());
    for &(n, every) in runs {
        let flags = [
            "--output",
            &format!("out_{n}.jsonl"),
            "--decisions",
            &format!("dec_{n}.jsonl"),
            "--checkpoint",
            &format!("ckpt_{n}"),
            "--checkpoint-every",
            every,
        ]
        .map(str::to_string);
        let killed = run_here(dir)
            .args(base)
            .args(&flags)
            .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1")
            .output()
            .unwrap();
        assert!(!killed.status.success(), "{}", stderr(&killed));
        let resumed = ok(run_here(dir).args(base).args(&flags).output().unwrap());
        assert!(stderr(&resumed).contains(said), "{}", stderr(&resumed));
        assert_eq!(
            fs::read(dir.join(format!("dec_{n}.jsonl"))).unwrap(),
            fs::read(dir.join("dec_whole.jsonl")).unwrap(),
            "decisions, a checkpoint every {every}"
        );
        assert_eq!(
            lines(dir, &format!("out_{n}.jsonl")),
            lines(dir, "out_whole.jsonl")
        );
    }
}

/// The decisions of `dir`'s events on one engine (`dec_one.jsonl`, and
/// its alerts `out_one.jsonl`), sorted.
#[cfg(feature = "workers")]
fn one_engines(dir: &Path) -> (Vec<String>, Vec<String>) {
    ok(run_here(dir)
        .args(["--max-delay", "1s", "--output", "out_one.jsonl"])
        .args(["--decisions", "dec_one.jsonl"])
        .output()
        .unwrap());
    let sorted = |file: &str| {
        let mut lines = lines(dir, file);
        lines.sort();
        lines
    };
    (sorted("dec_one.jsonl"), sorted("out_one.jsonl"))
}

/// On workers (`--workers 2` and `3`, the file in small chunks) and on
/// two processes, an event's rules run on the workers of its card and of
/// its device (and `big` on worker 0): each engine decides its part, and
/// worker 0 gathers an event's parts once event time passed it
/// (`docs/design/decisions-on-workers.md`). The decisions are one
/// engine's, line for line once sorted (as the alerts are): none doubled,
/// none missing, the same outcomes, rules and reads, an event without a
/// `payment_id` named by its line in the whole file, the late events'
/// decisions.
#[cfg(feature = "workers")]
#[test]
fn on_workers_and_processes_the_decisions_are_one_engines() {
    let dir = setup("decisions_workers", 4000);
    let (one, alerts) = one_engines(&dir);
    assert!(one
        .iter()
        .any(|d| d.contains(r#""position":"events.jsonl:"#)));
    assert!(one.iter().any(|d| d.contains(r#""late":true"#)));
    assert!(one.iter().any(|d| d.contains(r#""outcome":"decline""#)));
    let sorted = |file: &str| {
        let mut lines = lines(&dir, file);
        lines.sort();
        lines
    };
    for workers in ["2", "3"] {
        let (out, dec) = (
            format!("out_{workers}.jsonl"),
            format!("dec_{workers}.jsonl"),
        );
        ok(run_here(&dir)
            .args(["--max-delay", "1s", "--output", &out, "--decisions", &dec])
            .args(["--workers", workers, "--chunk-bytes", "20000"])
            .output()
            .unwrap());
        assert_eq!(sorted(&dec), one, "--workers {workers}");
        assert_eq!(sorted(&out), alerts, "--workers {workers}");
    }
    let ended = common::run_two_processes(&dir, |process| {
        let mut command = run_here(&dir);
        command
            .args(["--max-delay", "1s", "--chunk-bytes", "20000"])
            .args(["--output", &format!("out_p{process}.jsonl")])
            .args(["--decisions", &format!("dec_p{process}.jsonl")]);
        command
    });
    for (process, output) in ended.iter().enumerate() {
        assert!(output.status.success(), "{process}: {}", stderr(output));
    }
    assert_eq!(sorted("dec_p0.jsonl"), one, "--processes 2");
    assert_eq!(sorted("out_p0.jsonl"), alerts, "--processes 2");
}

/// Killed with SIGKILL on workers, once just after its first checkpoint
/// and then at moments between a quarter and a half of an uninterrupted
/// run's time (on two workers, then three, then two...), and resumed each
/// time until a run ends by itself: the decisions file holds one engine's
/// decisions, each once. A cut holds no part: an event's parts are all
/// gathered once the frontier passes it, and its decision is written on
/// the side of the cut its parts were sent on, as records are.
#[cfg(feature = "workers")]
#[test]
fn killed_and_resumed_on_workers_the_decisions_are_written_once() {
    use std::process::Stdio;
    use std::time::Instant;

    let dir = setup("decisions_workers_killed", 30_000);
    let (one, _) = one_engines(&dir);
    let sorted = |file: &str| {
        let mut lines = lines(&dir, file);
        lines.sort();
        lines
    };
    let run = |workers: usize, every: &str, name: &str| {
        let mut command = run_here(&dir);
        command
            .args([
                "--max-delay",
                "1s",
                "--output",
                &format!("out_{name}.jsonl"),
            ])
            .args(["--decisions", &format!("dec_{name}.jsonl")])
            .args(["--checkpoint", &format!("ckpt_{name}")])
            .args(["--checkpoint-every", every])
            .args(["--workers", &workers.to_string(), "--chunk-bytes", "20000"]);
        command
    };
    // Killed just after the cut before the end of the file (the only cut
    // of an hour's schedule), while the end makes the decisions of the
    // events its watermark held: they are written after the cut.
    let killed = run(2, "1h", "end")
        .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1")
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{}", stderr(&killed));
    assert!(lines(&dir, "dec_end.jsonl").len() < one.len());
    ok(run(3, "1h", "end").output().unwrap());
    assert!(
        sorted("dec_end.jsonl") == one,
        "killed after the cut before the end"
    );
    // At random moments.
    let started = Instant::now();
    ok(run(2, "1ms", "whole").output().unwrap());
    let took = started.elapsed();
    let run = |workers| run(workers, "1ms", "k");
    let killed = run(2)
        .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1")
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{}", stderr(&killed));
    // (a fixed sequence of moments: the same kills from run to run, on
    // an idle machine)
    let mut seed: u64 = 0x00C0_FFEE;
    let (mut kills, mut runs) = (1, 0);
    loop {
        runs += 1;
        assert!(runs < 60, "the run keeps ending before it is killed");
        let workers = 2 + runs % 2;
        if kills >= 4 {
            let resumed = ok(run(workers).output().unwrap());
            assert!(stderr(&resumed).contains("resuming from checkpoint"));
            break;
        }
        let mut child = run(workers)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let share = 25 + (seed >> 33) % 26;
        std::thread::sleep(took * share as u32 / 100);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let _ = child.wait();
    }
    let got = sorted("dec_k.jsonl");
    assert_eq!(got.len(), one.len(), "none doubled, none missing");
    assert!(got == one, "the decisions differ from one engine's");
}

/// Random rule sets and streams, as the runtime's decisions reference
/// makes them (`crates/runtime/tests/it/decisions_reference.rs`, where one
/// engine's decisions agree with a reference independent of the engine's
/// decision code): sequences, a `not followed by` ending, timeouts, a rule
/// that writes a list another reads and a scene checks, an indicator, a
/// shadow rule, a rule held by two scenes, a rule with parameters, events
/// of no scene, disorder and late events. Through the command, `--workers
/// 2` gives one engine's decisions (sorted), so the reference's too, and
/// so does each killed after a checkpoint and resumed (one engine in the
/// same order).
/// `CEPHEID_PROPTEST_CASES` sets the number of cases (default 12).
#[cfg(feature = "workers")]
#[test]
fn random_rule_sets_on_workers_decide_as_one_engine() {
    let cases: u64 = std::env::var("CEPHEID_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut seed: u64 = std::env::var("CEPHEID_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(62);
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let dir = scratch("decisions_random_workers");
    let (mut firing, mut total, mut late) = (0, 0, 0);
    for case in 0..cases {
        let attrs = |next: &mut dyn FnMut(u64) -> u64| {
            let score = match next(3) {
                0 => String::new(),
                _ => format!(" score {}", next(80)),
            };
            let action = ["", " action review", " action block"][next(3) as usize];
            format!("{score}{action}")
        };
        let w = 5 + next(35);
        let mut rules = format!(
            r#"
list L
indicator n = count() group by u within {w}ms
pattern seq {{ partition by u{} match a followed by b
    where a: type == "a"
          b: type == "b" }}
pattern unanswered {{ partition by u within {w}ms{} match a not followed by c
    where a: type == "a"
          c: type == "c" }}
pattern timed {{ partition by v within {w}ms timeouts{} match a followed by c
    where a: type == "a"
          c: type == "c" }}
pattern writer {{{} match p where p: type == "c" and v > {} then add p.u to L }}
pattern reader {{{} match p where p: u in L }}
pattern busy {{ partition by u{} match p where p: n(u) >= {} }}
pattern trial {{ shadow{} match p where p: v > {} }}
pattern over(min: int) {{ partition by v{} match p where p: v > min }}
"#,
            attrs(&mut next),
            attrs(&mut next),
            attrs(&mut next),
            attrs(&mut next),
            next(10),
            attrs(&mut next),
            attrs(&mut next),
            1 + next(4),
            attrs(&mut next),
            next(10),
            attrs(&mut next),
        );
        let names = [
            "seq",
            "unanswered",
            "timed",
            "reader",
            "busy",
            "trial",
            "over",
        ];
        for (scene, when) in [("one", r#"type == "b" or type == "pay""#), ("two", "v > 4")] {
            let mut held: Vec<&str> = names.iter().copied().filter(|_| next(2) == 0).collect();
            if !held.contains(&"over") {
                held.push("over");
            }
            let (a, b) = (1 + next(99), 1 + next(99));
            let (t1, t2) = (a.min(b), a.max(b).max(a.min(b) + 1));
            let outcomes = ["approve", "review", "decline"];
            let list = if next(2) == 0 {
                "decline if u in L"
            } else {
                ""
            };
            rules += &format!(
                "scene {scene} {{ when {when} id id rules {} with min = {}
                    outcomes approve < review < decline default {} late {}
                    {list} review if action review decline if action block
                    review if score >= {t1} decline if score >= {t2}
                    hit {} fallback review deadline 100ms }}\n",
                held.join(", "),
                next(10),
                outcomes[next(3) as usize],
                outcomes[next(3) as usize],
                if next(2) == 0 { "first" } else { "all" },
            );
        }
        let types = ["a", "b", "c", "pay", "x"];
        // Disorder within the delay, and now and then an event late by far,
        // after each worker read a chunk of its own (`docs/semantics.md`,
        // "Several readers": a part's events are late by its own
        // watermark, which is one reader's within the delay).
        let delay = 1 + next(6);
        let mut now: u64 = 10_000;
        let mut text = String::new();
        let n = 200 + next(400);
        for id in 0..n {
            now += next(4);
            let lag = if id > 150 && next(40) == 0 {
                5_000
            } else {
                next(delay)
            };
            let ts = now - lag;
            text += &format!(
                "{{\"ts\": {ts}, \"id\": {id}, \"type\": \"{}\", \"u\": {}, \"v\": {}}}\n",
                types[next(5) as usize],
                next(3),
                next(10)
            );
        }
        fs::write(dir.join("rules.cep"), &rules).unwrap();
        fs::write(dir.join("events.jsonl"), &text).unwrap();
        let delay = format!("{delay}ms");
        // One engine, workers, then each killed after a checkpoint (the
        // first or the second, every few dozen events: some late events
        // and held ones cross it) and resumed.
        let every = (30 + next(n / 4)).to_string();
        let kill_at = (1 + next(2)).to_string();
        let workers = ["--workers", "2", "--chunk-bytes", "3000"];
        let mut got = Vec::new();
        for (extra, killed) in [
            (&[][..], false),
            (&workers[..], false),
            (&[][..], true),
            (&workers[..], true),
        ] {
            let _ = fs::remove_dir_all(dir.join("ckpt"));
            let mut run = run_here(&dir);
            run.args(["--max-delay", &delay, "--output", "out.jsonl"])
                .args([
                    "--decisions",
                    "dec.jsonl",
                    "--shadow-output",
                    "shadow.jsonl",
                ])
                .args(extra);
            if killed {
                run.args(["--checkpoint", "ckpt", "--checkpoint-every", &every]);
                // (workers cut where the chunks and the epochs allow:
                // fewer cuts than one engine's, so after the first)
                let kill_at = if extra.is_empty() { &kill_at[..] } else { "1" };
                let dead = run
                    .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", kill_at)
                    .output()
                    .unwrap();
                assert!(
                    !dead.status.success(),
                    "case {case} {extra:?}: not killed after checkpoint {kill_at} of every {every} events: {}",
                    stderr(&dead)
                );
                run.env_remove("CEPHEID_TEST_KILL_AFTER_CHECKPOINT");
            }
            let run = run.output().unwrap();
            assert!(
                run.status.success(),
                "case {case} {extra:?} (killed and resumed: {killed}): {}\n{rules}",
                stderr(&run)
            );
            if killed {
                assert!(
                    stderr(&run).contains("resuming from checkpoint"),
                    "{}",
                    stderr(&run)
                );
            }
            let written = lines(&dir, "dec.jsonl");
            let mut decisions = written.clone();
            decisions.sort();
            let mut alerts = lines(&dir, "out.jsonl");
            alerts.extend(lines(&dir, "shadow.jsonl"));
            alerts.sort();
            got.push((decisions, alerts, written));
        }
        let one = &got[0];
        for (i, other) in got.iter().enumerate().skip(1) {
            let what = [
                "",
                "on workers",
                "killed and resumed",
                "on workers killed and resumed",
            ][i];
            assert!(
                one.0 == other.0,
                "case {case}: the decisions differ {what} (a checkpoint every {every}, killed after {kill_at})\n{rules}"
            );
            assert!(
                one.1 == other.1,
                "case {case}: the alerts differ {what} (a checkpoint every {every}, killed after {kill_at})\n{rules}"
            );
        }
        // (one engine resumed writes them in the uninterrupted run's order)
        assert!(
            one.2 == got[2].2,
            "case {case}: one engine resumed wrote the decisions in another order\n{rules}"
        );
        total += one.0.len();
        firing += (one.0.iter())
            .filter(|d| !d.contains(r#""rules":[]"#))
            .count();
        late += (one.0.iter())
            .filter(|d| d.contains(r#""late":true"#))
            .count();
    }
    assert!(
        firing * 5 >= total,
        "rules fired in {firing} of {total} decisions: too little tested"
    );
    assert!(late > 0, "no late event's decision in any case");
}

/// A checkpoint with decisions resumes on the other executor, both ways
/// (one engine's on `--workers 2`, killed after the first checkpoint and
/// after the second; the workers' on one engine): the decisions file is
/// the uninterrupted one engine's (sorted: the workers write theirs in
/// another order within a time; one engine resumed from a workers' cut
/// writes the rest in its order), and so are the alerts. The events are
/// in disorder (some wait at the cut), some late, some of no scene, some
/// without their scene's id (named by their line).
#[cfg(feature = "workers")]
#[test]
fn a_checkpoint_with_decisions_resumes_on_the_other_executor() {
    let dir = setup("decisions_cross", 4000);
    let (whole, whole_alerts) = one_engines(&dir);
    // (workers cut where their chunks and epochs allow, fewer times than
    // one engine on a loaded machine: killed after their first cut)
    let workers = ["--workers", "2"];
    for (kill_after, taken, resumed) in [
        ("1", &[][..], &workers[..]),
        ("2", &[][..], &workers[..]),
        ("1", &workers[..], &[][..]),
    ] {
        let base = ["--max-delay", "1s"];
        let got = killed_here_resumed_there(&dir, &base, (taken, resumed), (kill_after, "700"));
        let what = format!("taken {taken:?}, resumed {resumed:?}, after cut {kill_after}");
        assert!(got.0 == whole, "{what}: the decisions differ");
        assert!(got.1 == whole_alerts, "{what}: the alerts differ");
    }
}

/// The run of `dir` with `base` flags, a decisions file and a checkpoint
/// every `every` events, on `taken`'s executor, killed after checkpoint
/// `kill_after`, then resumed on `resumed`'s (saying so): its decisions
/// and its alerts, each sorted.
#[cfg(feature = "workers")]
fn killed_here_resumed_there(
    dir: &Path,
    base: &[&str],
    (taken, resumed): (&[&str], &[&str]),
    (kill_after, every): (&str, &str),
) -> (Vec<String>, Vec<String>) {
    let _ = fs::remove_dir_all(dir.join("ckpt"));
    let flags = [
        "--output",
        "out.jsonl",
        "--decisions",
        "dec.jsonl",
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        every,
    ];
    let killed = run_here(dir)
        .args(base)
        .args(flags)
        .args(taken)
        .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", kill_after)
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{}", stderr(&killed));
    let run = ok(run_here(dir)
        .args(base)
        .args(flags)
        .args(resumed)
        .output()
        .unwrap());
    assert!(
        stderr(&run).contains("resuming from checkpoint"),
        "{}",
        stderr(&run)
    );
    let sorted = |file: &str| {
        let mut lines = lines(dir, file);
        lines.sort();
        lines
    };
    (sorted("dec.jsonl"), sorted("out.jsonl"))
}

/// A checkpoint taken with one decisions file is not resumed with another
/// (nor without one): it was another command.
#[test]
fn a_checkpoint_is_not_resumed_with_another_decisions_file() {
    let dir = setup("decisions_other", 2000);
    let flags = [
        "--max-delay",
        "1s",
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        "500",
    ];
    let killed = run_here(&dir)
        .args(flags)
        .args(["--output", "out.jsonl", "--decisions", "a.jsonl"])
        .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    for other in [&["--decisions", "b.jsonl"][..], &[]] {
        let run = run_here(&dir)
            .args(flags)
            .args(["--output", "out.jsonl"])
            .args(other)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(5), "{}", stderr(&run));
        assert!(
            stderr(&run).contains("it was taken by another command (--decisions was"),
            "{}",
            stderr(&run)
        );
    }
}

/// What `--decisions` cannot be: standard output, another output's file,
/// a Kafka topic (not yet), and a run on workers (an event's rules may run
/// on several workers, whose firings are not gathered yet).
#[test]
fn what_decisions_cannot_be_is_refused_before_anything_is_written() {
    let dir = setup("decisions_refused", 100);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--decisions", "-"],
            "--decisions needs a file path (`-`, standard output, is where the records go)",
        ),
        (
            vec!["--output", "same.jsonl", "--decisions", "same.jsonl"],
            "are the same file",
        ),
        (
            vec!["--decisions", "kafka://127.0.0.1:1/decisions"],
            if cfg!(feature = "kafka") {
                "--decisions kafka://... goes with --output kafka://..."
            } else {
                "--decisions kafka://...: this cepheid was built without the feature `kafka`"
            },
        ),
    ];
    for (flags, said) in cases {
        let run = run_here(&dir).args(&flags).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(said), "{flags:?}: {}", stderr(&run));
        assert!(!dir.join("d.jsonl").exists() && !dir.join("w.jsonl").exists());
    }
}

/// `backtest` over rules with a scene: each scene's outcome mix (counts,
/// shares, per day of event time) and, with labels by event, each
/// outcome's precision and recall, as counted here from the decision
/// records `cepheid run --decisions` writes over the same events.
#[test]
fn a_backtest_gives_each_scenes_outcome_mix_and_its_precision_and_recall() {
    let dir = scratch("decisions_backtest");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    // (the stream spread over about six days of event time)
    let spread: String = (events(3000).lines())
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["ts"] = (v["ts"].as_i64().unwrap() * 1_700).into();
            v.to_string() + "\n"
        })
        .collect();
    fs::write(dir.join("events.jsonl"), &spread).unwrap();
    ok(run_here(&dir)
        .args([
            "--max-delay",
            "30m",
            "--output",
            "out.jsonl",
            "--decisions",
            "d.jsonl",
        ])
        .output()
        .unwrap());
    let decisions: Vec<serde_json::Value> = (lines(&dir, "d.jsonl").iter())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let id = |d: &serde_json::Value| match (&d["event"], &d["position"]) {
        (serde_json::Value::String(s), _) | (_, serde_json::Value::String(s)) => s.clone(),
        other => panic!("{other:?}"),
    };
    // Labels by event: every third decided event fraud, the others legit,
    // and one naming no event.
    let mut labels = String::new();
    for (i, d) in decisions.iter().enumerate() {
        let label = if i % 3 == 0 { "fraud" } else { "legit" };
        labels.push_str(&serde_json::json!({"event": id(d), "label": label}).to_string());
        labels.push('\n');
    }
    labels.push_str(r#"{"event": "nowhere", "label": "fraud"}"#);
    labels.push('\n');
    // (the first event labelled again, as it was: the later label counts,
    // and the repeat is said)
    labels.push_str(&serde_json::json!({"event": id(&decisions[0]), "label": "fraud"}).to_string());
    labels.push('\n');
    fs::write(dir.join("labels.jsonl"), labels).unwrap();
    let backtest = ok(common::cepheid()
        .current_dir(&dir)
        .args([
            "backtest",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--max-delay",
            "30m",
        ])
        .args(["--labels", "labels.jsonl", "--json", "--html", "page.html"])
        .output()
        .unwrap());
    let said = stderr(&backtest);
    assert!(
        said.contains(&format!(
            "labels.jsonl:{}: event {} was labelled at line 1 already",
            decisions.len() + 2,
            id(&decisions[0])
        )),
        "{said}"
    );
    let report: serde_json::Value = serde_json::from_slice(&backtest.stdout).unwrap();
    // On workers, the same outcome mix and figures (worker 0 gathers each
    // event's parts).
    #[cfg(feature = "workers")]
    {
        let on_workers = ok(common::cepheid()
            .current_dir(&dir)
            .args(["backtest", "rules.cep", "--events", "events.jsonl"])
            .args(["--max-delay", "30m", "--labels", "labels.jsonl", "--json"])
            .args(["--workers", "2"])
            .output()
            .unwrap());
        let theirs: serde_json::Value = serde_json::from_slice(&on_workers.stdout).unwrap();
        assert_eq!(theirs["scenes"], report["scenes"]);
        assert!(
            !stderr(&on_workers).contains("outcomes"),
            "{}",
            stderr(&on_workers)
        );
    }
    let scene = &report["scenes"][0];
    assert_eq!(scene["scene"], "payment");
    assert_eq!(scene["decisions"], decisions.len());
    let late = decisions.iter().filter(|d| d["late"] == true).count();
    assert_eq!(scene["late"], late);
    // Counted here: per outcome (the declared order), per day, labelled.
    let order = ["approve", "review", "decline"];
    let mut days: std::collections::BTreeMap<i64, [u64; 3]> = Default::default();
    let mut per = [(0_u64, 0_u64, 0_u64); 3];
    for (i, d) in decisions.iter().enumerate() {
        let o = order.iter().position(|o| d["outcome"] == *o).unwrap();
        days.entry(d["ts"].as_i64().unwrap().div_euclid(86_400_000))
            .or_default()[o] += 1;
        per[o].0 += 1;
        if i % 3 == 0 {
            per[o].1 += 1;
        } else {
            per[o].2 += 1;
        }
    }
    assert!(days.len() >= 5, "{days:?}");
    let fraud: u64 = per.iter().map(|p| p.1).sum();
    for (o, name) in order.iter().enumerate() {
        let got = &scene["outcomes"][o];
        let (n, f, l) = per[o];
        assert_eq!(got["outcome"], *name);
        assert_eq!(
            (
                got["decisions"].as_u64(),
                got["fraud"].as_u64(),
                got["legit"].as_u64()
            ),
            (Some(n), Some(f), Some(l))
        );
        let close = |v: &serde_json::Value, want: Option<f64>| match want {
            Some(w) => assert!((v.as_f64().unwrap() - w).abs() < 1e-12, "{v} {w}"),
            None => assert!(v.is_null(), "{v}"),
        };
        close(&got["share"], Some(n as f64 / decisions.len() as f64));
        close(
            &got["precision"],
            (f + l > 0).then(|| f as f64 / (f + l) as f64),
        );
        close(&got["recall"], (fraud > 0).then(|| f as f64 / fraud as f64));
    }
    let got_days: Vec<(String, Vec<u64>)> = (scene["days"].as_array().unwrap().iter())
        .map(|d| {
            let counts = order
                .iter()
                .map(|o| d["counts"][o].as_u64().unwrap())
                .collect();
            (d["day"].as_str().unwrap().to_string(), counts)
        })
        .collect();
    assert_eq!(got_days.len(), days.len());
    for ((day, counts), (want_day, want)) in got_days.iter().zip(&days) {
        // (day 0 is 1970-01-01: the stream's times are small)
        assert_eq!(day, &format!("1970-01-{:02}", want_day + 1));
        assert_eq!(counts[..], want[..]);
    }
    assert_eq!(report["event_labels"]["count"], decisions.len() + 1);
    assert_eq!(report["event_labels"]["unmatched"], 1);
    // The page has the scene's table and its bars, a bar per day.
    let page = fs::read_to_string(dir.join("page.html")).unwrap();
    assert!(page.contains("<table class=\"outcomes\" data-scene=\"payment\">"));
    assert!(page.contains(&format!("<td>{}</td>", per[1].0)));
    assert_eq!(page.matches("<g><title>1970-01-").count(), days.len());
    // The terminal's text says the same.
    let text = ok(common::cepheid()
        .current_dir(&dir)
        .args([
            "backtest",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--max-delay",
            "30m",
        ])
        .output()
        .unwrap());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "scene payment: {} decisions, {late} late, over {} days of event time",
            decisions.len(),
            days.len()
        )),
        "{text}"
    );
}

/// `diff` of two rule sets with a scene: the events whose outcome moves,
/// per move, and the rules that fired with one set only, as counted here
/// from the decision records `cepheid run --decisions` writes with each.
#[test]
fn a_diff_says_which_events_change_outcome_and_because_of_which_rules() {
    let dir = setup("decisions_diff", 3000);
    fs::write(
        dir.join("new.cep"),
        RULES.replace("match p{3}", "match p{2}"),
    )
    .unwrap();
    let mut decided = Vec::new();
    for rules in ["rules.cep", "new.cep"] {
        let out = format!("d_{rules}.jsonl");
        ok(common::cepheid()
            .current_dir(&dir)
            .args(["run", rules, "--events", "events.jsonl", "--no-progress"])
            .args([
                "--max-delay",
                "1s",
                "--output",
                "o.jsonl",
                "--decisions",
                &out,
            ])
            .output()
            .unwrap());
        let by_id: std::collections::HashMap<String, (String, Vec<String>)> = (lines(&dir, &out)
            .iter())
        .map(|l| {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = d["event"]
                .as_str()
                .or(d["position"].as_str())
                .unwrap()
                .to_string();
            let rules = (d["rules"].as_array().unwrap().iter())
                .map(|r| r["rule"].as_str().unwrap().to_string())
                .collect();
            (id, (d["outcome"].as_str().unwrap().to_string(), rules))
        })
        .collect();
        decided.push(by_id);
    }
    // Counted here: (from, to) → (events, rule → events it fired on with
    // the new set only).
    let mut want: std::collections::BTreeMap<
        (String, String),
        (u64, std::collections::BTreeMap<String, u64>),
    > = Default::default();
    for (id, (from, old_rules)) in &decided[0] {
        let (to, new_rules) = &decided[1][id];
        if from != to {
            let entry = want.entry((from.clone(), to.clone())).or_default();
            entry.0 += 1;
            for rule in new_rules.iter().filter(|r| !old_rules.contains(r)) {
                *entry.1.entry(rule.clone()).or_default() += 1;
            }
        }
    }
    assert!(want.values().map(|w| w.0).sum::<u64>() > 100, "{want:?}");
    let diff = ok(common::cepheid()
        .current_dir(&dir)
        .args([
            "diff",
            "rules.cep",
            "new.cep",
            "--events",
            "events.jsonl",
            "--max-delay",
            "1s",
            "--json",
        ])
        .output()
        .unwrap());
    let report: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    let outcomes = &report["outcomes"];
    assert_eq!(outcomes["old_decisions"], decided[0].len());
    let mut got: std::collections::BTreeMap<
        (String, String),
        (u64, std::collections::BTreeMap<String, u64>),
    > = Default::default();
    for m in outcomes["moves"].as_array().unwrap() {
        assert_eq!(m["scene"], "payment");
        let rules = (m["rules"].as_array().unwrap().iter())
            .map(|r| {
                assert_eq!(r["fired_with"], "new", "{r}");
                (
                    r["rule"].as_str().unwrap().to_string(),
                    r["events"].as_u64().unwrap(),
                )
            })
            .collect();
        let key = (
            m["from"].as_str().unwrap().to_string(),
            m["to"].as_str().unwrap().to_string(),
        );
        got.insert(key, (m["events"].as_u64().unwrap(), rules));
    }
    assert_eq!(got, want);
    // On workers, the same outcomes and moves (worker 0 gathers each
    // event's parts).
    #[cfg(feature = "workers")]
    {
        let on_workers = ok(common::cepheid()
            .current_dir(&dir)
            .args(["diff", "rules.cep", "new.cep", "--events", "events.jsonl"])
            .args(["--max-delay", "1s", "--json", "--workers", "2"])
            .output()
            .unwrap());
        let theirs: serde_json::Value = serde_json::from_slice(&on_workers.stdout).unwrap();
        assert_eq!(theirs["outcomes"], report["outcomes"]);
        assert!(
            !stderr(&on_workers).contains("outcomes"),
            "{}",
            stderr(&on_workers)
        );
    }
    // The terminal says each move with its rule, and a set against itself
    // moves nothing.
    let text = ok(common::cepheid()
        .current_dir(&dir)
        .args([
            "diff",
            "rules.cep",
            "new.cep",
            "--events",
            "events.jsonl",
            "--max-delay",
            "1s",
        ])
        .output()
        .unwrap());
    let text = String::from_utf8(text.stdout).unwrap();
    let ((from, to), (n, _)) = want.iter().max_by_key(|(_, w)| w.0).unwrap();
    assert!(
        text.contains(&format!(
            "scene payment: {n} events {from} -> {to}: `card_velocity` v1 fired ({n})"
        )),
        "{text}"
    );
    let same = ok(common::cepheid()
        .current_dir(&dir)
        .args([
            "diff",
            "rules.cep",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--max-delay",
            "1s",
        ])
        .output()
        .unwrap());
    assert!(String::from_utf8(same.stdout)
        .unwrap()
        .contains("no event changes outcome"));
}

/// `why --event ID`: each decision of the event, as `cepheid run
/// --decisions` writes it, told rule by rule against its scene: a rule
/// that fired with its action's outcome, score and reads, the others, the
/// list check that decided, a late event, a missing field, the default.
#[test]
fn why_an_event_got_its_outcome_is_told_rule_by_rule() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/patterns/risk");
    let dir = scratch("decisions_why");
    fs::create_dir(dir.join("rules")).unwrap();
    for file in ["rules.cep", "scenes.cep"] {
        fs::copy(Path::new(samples).join(file), dir.join("rules").join(file)).unwrap();
    }
    fs::copy(
        Path::new(samples).join("scene-events.jsonl"),
        dir.join("events.jsonl"),
    )
    .unwrap();
    let why = |args: &[&str]| {
        common::cepheid()
            .current_dir(&dir)
            .args([
                "why",
                "rules",
                "--events",
                "events.jsonl",
                "--max-delay",
                "1s",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let expected = [
        ("p4", &[
            "event p4: 1 decision",
            "scene payment at 4000: review (score 70)",
            "  payment_velocity  fired (v1); action review gives review; score 70; read card_amount_10m(card) = 85, card_payments_10m(card) = 4",
            "  confirmed_fraud   did not fire on this event",
            "  no list check held (device in blocked_devices)",
            "  score 70: reaches `review if score >= 70`",
            "  outcome: review (the most severe of what the rules and the score give)",
        ][..]),
        ("p5", &[
            "  blocked_device    fired (v1); action block gives decline; read device in blocked_devices = true",
            "  list check `device in blocked_devices` held: decline at once (the rules still took the event)",
        ][..]),
        ("p6", &[
            "  the event lacks card: a rule reading it cannot fire on it",
            "  no rule that counts fired: the scene's default, approve",
        ][..]),
        ("p7", &[
            "  payment_velocity  not evaluated: the event came late",
            "  the event came late (behind the watermark): the scene's late outcome, review",
        ][..]),
        ("events.jsonl:11", &[
            "scene sign_up at 11000: approve (score 0)",
            "  trusted_phone@sign_up      fired (v1); action allow gives approve",
        ][..]),
    ];
    for (id, lines) in expected {
        let out = ok(why(&["--event", id]));
        let text = String::from_utf8(out.stdout).unwrap();
        for line in lines {
            assert!(
                text.lines().any(|l| l == *line),
                "{id}: {line:?} in\n{text}"
            );
        }
    }
    // The JSON's decision is the record the run writes.
    ok(common::cepheid()
        .current_dir(&dir)
        .args([
            "run",
            "rules",
            "--events",
            "events.jsonl",
            "--max-delay",
            "1s",
            "--no-progress",
        ])
        .args(["--output", "o.jsonl", "--decisions", "d.jsonl"])
        .output()
        .unwrap());
    for line in lines(&dir, "d.jsonl") {
        let d: serde_json::Value = serde_json::from_str(&line).unwrap();
        let id = d["event"].as_str().or(d["position"].as_str()).unwrap();
        let out = ok(why(&["--event", id, "--json"]));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mine: Vec<&serde_json::Value> = (report["decisions"].as_array().unwrap().iter())
            .filter(|x| x["scene"] == d["scene"])
            .collect();
        assert_eq!(mine.len(), 1, "{id}");
        assert_eq!(mine[0]["decision"], d, "{id}");
        let fired: Vec<&str> = (mine[0]["rules"].as_array().unwrap().iter())
            .filter(|r| r["fired"] == true)
            .map(|r| r["rule"].as_str().unwrap())
            .collect();
        let in_record: Vec<&str> = (d["rules"].as_array().unwrap().iter())
            .map(|r| r["rule"].as_str().unwrap())
            .collect();
        assert_eq!(fired, in_record, "{id}");
    }
    // What it cannot explain: an id no scene decided, rules without
    // scenes, a key with --event.
    let none = why(&["--event", "nope"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("--event nope: no scene decided an event of that id"),
        "{}",
        stderr(&none)
    );
    fs::write(
        dir.join("plain.cep"),
        "pattern p { match a where a: type == \"x\" }",
    )
    .unwrap();
    let plain = common::cepheid()
        .current_dir(&dir)
        .args([
            "why",
            "plain.cep",
            "--events",
            "events.jsonl",
            "--event",
            "p4",
        ])
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(2));
    assert!(
        stderr(&plain).contains("the rule set has no scene"),
        "{}",
        stderr(&plain)
    );
    let both = why(&["card=c1", "--event", "p4"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

/// `--decisions kafka://BROKERS/TOPIC` beside a Kafka output: the
/// decisions a file run writes, each once, keyed by its event's id (over
/// the topic's partitions), committed in the output's transactions with
/// checkpoints (killed and resumed:
/// `killed_and_resumed_the_committed_decisions_on_a_topic_are_each_once`).
/// The same on workers. A file `--decisions` with a Kafka output and a
/// topic beside a file output are refused.
#[cfg(feature = "kafka")]
#[test]
fn decisions_to_a_topic_are_written_once_in_the_outputs_transactions() {
    use crate::kafka_support::{topic, Broker};
    let broker = Broker::start();
    let dir = setup("decisions_kafka", 3000);
    let b = broker.bootstrap();
    ok(run_here(&dir)
        .args([
            "--max-delay",
            "1s",
            "--output",
            "o.jsonl",
            "--decisions",
            "d.jsonl",
        ])
        .output()
        .unwrap());
    let mut want = lines(&dir, "d.jsonl");
    want.sort();
    // One engine, then (with the feature) two workers, whose worker 0
    // gathers each event's parts: the same decisions, each once.
    let mut runs: Vec<(&str, &[&str])> = vec![("", &[])];
    if cfg!(feature = "workers") {
        runs.push(("-workers", &["--workers", "2"]));
    }
    let (output, decisions) = (topic("decisions-out"), topic("decisions"));
    for (suffix, extra) in runs {
        let (output, decisions) = (format!("{output}{suffix}"), format!("{decisions}{suffix}"));
        broker.create_topic(&output, 1);
        broker.create_topic(&decisions, 3);
        let _ = fs::remove_dir_all(dir.join("ckpt"));
        ok(run_here(&dir)
            .args([
                "--max-delay",
                "1s",
                "--output",
                &format!("kafka://{b}/{output}"),
            ])
            .args(["--decisions", &format!("kafka://{b}/{decisions}")])
            .args(["--checkpoint", "ckpt", "--checkpoint-every", "700"])
            .args(["--transactional-id", &format!("decisions-test{suffix}")])
            .args(extra)
            .output()
            .unwrap());
        let seen = broker.read_topic(&decisions, "read_committed");
        let mut got: Vec<String> = seen.iter().map(|s| s.payload.clone()).collect();
        got.sort();
        assert_eq!(got, want, "each decision once {extra:?}");
        let alerts = broker.read_topic(&output, "read_committed");
        assert_eq!(alerts.len(), lines(&dir, "o.jsonl").len());
        for s in &seen {
            let d: serde_json::Value = serde_json::from_str(&s.payload).unwrap();
            let id = d.get("event").or_else(|| d.get("position")).unwrap();
            assert_eq!(
                s.key.as_deref(),
                Some(id.to_string().as_str()),
                "{}",
                s.payload
            );
        }
        assert!(seen.iter().any(|s| s.partition != seen[0].partition));
    }
    let refused: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--output".into(),
                format!("kafka://{b}/{output}"),
                "--decisions".into(),
                "d2.jsonl".into(),
            ],
            "takes no decisions: --decisions FILE goes with the run's files",
        ),
        (
            vec![
                "--output".into(),
                "o2.jsonl".into(),
                "--decisions".into(),
                format!("kafka://{b}/{output}"),
            ],
            "--decisions kafka://... goes with --output kafka://...",
        ),
    ];
    for (flags, said) in refused {
        let run = run_here(&dir).args(&flags).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(said), "{flags:?}: {}", stderr(&run));
    }
}

/// A Kafka topic's events are named by topic, partition and offset
/// (`docs/decisions.md`, "The position"): a scene without `id` over a
/// topic of three partitions gives each payment one decision whose
/// position is `kafka:TOPIC partition P offset O` of the record it was
/// read from (as read back from the topic), the form in which the run
/// names a malformed record of it; killed after a checkpoint and resumed,
/// the decisions file is the uninterrupted run's, byte for byte. (Each
/// card's events in one partition, in time order, no two at one time: the
/// engine's order, and so the file's, is one whatever the fetches.) On
/// two workers, and killed and resumed there, the same decisions (sorted:
/// the workers' order of equal times is theirs), and the rule lab's
/// backtest over the topic gives the same outcomes.
#[cfg(feature = "kafka")]
#[test]
fn a_kafka_topics_events_are_named_by_topic_partition_and_offset() {
    use crate::common::kafka::produce_lines_to;
    use crate::kafka_support::{topic, Broker};
    let broker = Broker::start();
    let b = broker.bootstrap();
    let dir = scratch("decisions_kafka_positions");
    // (every payment named by its position)
    let rules = RULES.replace("    id payment_id\n", "");
    assert_ne!(rules, RULES);
    fs::write(dir.join("rules.cep"), rules).unwrap();
    let input = topic("decisions-positions");
    broker.create_topic(&input, 3);
    let mut parts: [Vec<String>; 3] = Default::default();
    for line in events_with(3000, false).lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let who = e["card"].as_str().or(e["user"].as_str()).unwrap();
        let n: usize = who[1..].parse().unwrap();
        parts[n % 3].push(line.to_string());
    }
    // (and a malformed record in partition 1)
    parts[1].insert(10, r#"{"ts": "soon"}"#.to_string());
    for (p, lines) in parts.iter().enumerate() {
        produce_lines_to(&b, &input, p as i32, lines);
    }
    let produced = broker.read_topic(&input, "read_committed");
    assert_eq!(produced.len(), 3001, "the topic read back whole");
    // Each payment's place, and its time.
    let mut want: std::collections::BTreeMap<String, i64> = Default::default();
    let mut malformed = None;
    for s in &produced {
        let place = format!(
            "kafka:{input} partition {} offset {}",
            s.partition, s.offset
        );
        let e: serde_json::Value = serde_json::from_str(&s.payload).unwrap();
        match e["ts"].as_i64() {
            None => malformed = Some(place),
            Some(ts) if e["type"] == "payment" => assert!(want.insert(place, ts).is_none()),
            Some(_) => {}
        }
    }
    let malformed = malformed.expect("the malformed record");
    let partitions: std::collections::BTreeSet<&str> = (want.keys())
        .map(|p| p.split(" offset ").next().unwrap())
        .collect();
    assert_eq!(partitions.len(), 3, "{partitions:?}");
    let run = |out: &str, decisions: &str, extra: &[&str]| {
        common::cepheid()
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "1s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--kafka-until", "end", "--output", out])
            .args(["--decisions", decisions])
            .args(extra)
            .output()
            .unwrap()
    };
    let whole = ok(run("o.jsonl", "d.jsonl", &[]));
    let said = stderr(&whole);
    assert!(
        said.contains(&format!("{malformed}: malformed record")),
        "the malformed record named as the positions are ({malformed}): {said}"
    );
    let mut got: std::collections::BTreeMap<String, i64> = Default::default();
    for d in lines(&dir, "d.jsonl") {
        let d: serde_json::Value = serde_json::from_str(&d).unwrap();
        assert_eq!(d.get("event"), None, "{d}");
        assert_eq!(d.get("late"), None, "none late: {d}");
        let place = d["position"].as_str().unwrap_or_else(|| panic!("{d}"));
        let ts = d["ts"].as_i64().unwrap();
        assert!(got.insert(place.to_string(), ts).is_none(), "twice: {d}");
    }
    assert_eq!(got, want, "each payment once, named by its record's place");
    // Killed after a checkpoint and resumed: the same positions, the same
    // file.
    for (n, every) in [(1, "400"), (2, "1700")] {
        let (out, decisions) = (format!("o_{n}.jsonl"), format!("d_{n}.jsonl"));
        let ckpt = format!("ckpt_{n}");
        let flags = ["--checkpoint", &ckpt, "--checkpoint-every", every];
        let mut killed = common::cepheid();
        killed
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "1s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--kafka-until", "end", "--output", &out])
            .args(["--decisions", &decisions])
            .args(flags)
            .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1");
        let killed = killed.output().unwrap();
        assert!(!killed.status.success(), "{}", stderr(&killed));
        let resumed = ok(run(&out, &decisions, &flags));
        assert!(
            stderr(&resumed).contains("resuming from checkpoint"),
            "{}",
            stderr(&resumed)
        );
        assert_eq!(
            fs::read_to_string(dir.join(&decisions)).unwrap(),
            fs::read_to_string(dir.join("d.jsonl")).unwrap(),
            "decisions, a checkpoint every {every}"
        );
    }
    // On workers, each reading its share of the partitions, each payment
    // is decided once, as on one engine, named by its record's place (the
    // workers' readers name a topic's records as one engine's does);
    // killed after a cut and resumed, the same; the rule lab's backtest
    // over the topic gives one engine's outcome mix.
    #[cfg(feature = "workers")]
    {
        let sorted = |file: &str| {
            let mut lines = lines(&dir, file);
            lines.sort();
            lines
        };
        let whole = sorted("d.jsonl");
        let on_workers = ok(run("o_w.jsonl", "d_w.jsonl", &["--workers", "2"]));
        assert_eq!(sorted("d_w.jsonl"), whole, "{}", stderr(&on_workers));
        // (on two processes, a worker each: each process's reader names
        // its records, which travel to worker 0 with their names)
        let ended = common::run_two_processes(&dir, |process| {
            let mut command = common::cepheid();
            command
                .current_dir(&dir)
                .args(["run", "rules.cep", "--no-progress", "--max-delay", "1s"])
                .args(["--events", &format!("kafka://{b}/{input}")])
                .args(["--kafka-until", "end"])
                .args(["--output", &format!("o_p{process}.jsonl")])
                .args(["--decisions", &format!("d_p{process}.jsonl")]);
            command
        });
        for (process, output) in ended.iter().enumerate() {
            assert!(output.status.success(), "{process}: {}", stderr(output));
        }
        assert_eq!(sorted("d_p0.jsonl"), whole, "--processes 2");
        // Killed after a cut while it reads a topic of the same records
        // live, the first half of each partition's produced, and resumed
        // to the end once the rest is: the events waiting at the cut keep
        // their names through it.
        let live = topic("decisions-positions-live");
        broker.create_topic(&live, 3);
        for (p, lines) in parts.iter().enumerate() {
            produce_lines_to(&b, &live, p as i32, &lines[..lines.len() / 2]);
        }
        let flags = [
            "--workers",
            "2",
            "--checkpoint",
            "ckpt_w",
            "--checkpoint-every",
            "50ms",
        ];
        let command = |until: &[&str]| {
            let mut command = common::cepheid();
            command
                .current_dir(&dir)
                .args(["run", "rules.cep", "--no-progress", "--max-delay", "1s"])
                .args(["--events", &format!("kafka://{b}/{live}")])
                .args(["--output", "o_wk.jsonl", "--decisions", "d_wk.jsonl"])
                .args(flags)
                .args(until);
            command
        };
        let mut killed = command(&[])
            .env("CEPHEID_TEST_KILL_AFTER_CHECKPOINT", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = killed.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > common::PATIENCE {
                let _ = killed.kill();
                panic!("no checkpoint came in {:?}", common::PATIENCE);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(!status.success(), "killed after its first checkpoint");
        for (p, lines) in parts.iter().enumerate() {
            produce_lines_to(&b, &live, p as i32, &lines[lines.len() / 2..]);
        }
        let resumed = ok(command(&["--kafka-until", "end"]).output().unwrap());
        assert!(
            stderr(&resumed).contains("resuming from checkpoint"),
            "{}",
            stderr(&resumed)
        );
        let named_live: Vec<String> = (whole.iter())
            .map(|d| d.replace(&format!("kafka:{input} "), &format!("kafka:{live} ")))
            .collect();
        assert_ne!(named_live, whole);
        let got = sorted("d_wk.jsonl");
        let missing: Vec<&String> = named_live.iter().filter(|d| !got.contains(d)).collect();
        let extra: Vec<&String> = got.iter().filter(|d| !named_live.contains(d)).collect();
        assert!(
            got == named_live,
            "killed on workers and resumed: {} decisions for {}; {} missing, the first {:?}; {} not the uninterrupted run's, the first {:?}",
            got.len(),
            named_live.len(),
            missing.len(),
            missing.iter().take(3).collect::<Vec<_>>(),
            extra.len(),
            extra.iter().take(3).collect::<Vec<_>>(),
        );
        let backtest = |extra: &[&str]| {
            let output = ok(common::cepheid()
                .current_dir(&dir)
                .args(["backtest", "rules.cep", "--max-delay", "1s", "--json"])
                .args(["--events", &format!("kafka://{b}/{input}")])
                .args(["--kafka-until", "end"])
                .args(extra)
                .output()
                .unwrap());
            assert!(!stderr(&output).contains("outcomes"), "{}", stderr(&output));
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            report["scenes"].clone()
        };
        let one = backtest(&[]);
        assert_eq!(one[0]["decisions"], whole.len(), "{one}");
        assert_eq!(backtest(&["--workers", "2"]), one);
    }
}

/// `--decisions kafka://...` beside a Kafka output, over a Kafka topic
/// read live (kept ahead of the runs, `common::kafka::Feeder`), killed
/// (SIGKILL) at random moments after checkpoints (every other kill once
/// records of the interval after the newest checkpoint are in the topics:
/// a transaction open, with decisions in it) and resumed to the end: the
/// committed decisions are an uninterrupted run's over the same topic
/// (its decisions file), each once, keyed by its event's id (a payment
/// without `payment_id` by its position, `kafka:TOPIC partition 0 offset
/// O`), as the alerts they share their transactions with are. The broker
/// the tests start (tansu) hands the records of aborted transactions to
/// `read_committed` readers, so what is committed is told as
/// `tests/cli_kafka.rs`'s crash test tells it
/// (`common::kafka::Reader::take_committed`): each record's checkpoint
/// interval (its header) against the last checkpoint the marker topic's
/// committed offset names, per killed run. (One partition of input: the
/// events are out of order, some late, and the uninterrupted run reads
/// them in the same order.)
#[cfg(feature = "kafka")]
#[test]
fn killed_and_resumed_the_committed_decisions_on_a_topic_are_each_once() {
    use crate::common::crash::killed_after_cuts_with;
    use crate::common::kafka::{produce_lines_to, Feeder, Out, Reader};
    use crate::kafka_support::{topic, Broker};
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::time::Duration;
    const KILLS: usize = 6;
    let broker = Broker::start();
    let b = broker.bootstrap();
    let dir = scratch("decisions_kafka_crash");
    fs::write(dir.join("rules.cep"), RULES).unwrap();
    let [input, output, decisions, marker] =
        ["in", "out", "decisions", "marker"].map(|t| topic(&format!("decisions-crash-{t}")));
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    broker.create_topic(&decisions, 3);
    broker.create_topic(&marker, 1);
    let first: Vec<String> = events(10_000).lines().map(str::to_string).collect();
    produce_lines_to(&b, &input, 0, &first);
    let id = "decisions-crash-test";
    let feeder = Feeder::start(&b, &input, id, first, 10_000, 20_000, |from| {
        events(from + 10_000)
            .lines()
            .skip(from)
            .map(str::to_string)
            .collect()
    });
    let feeder = RefCell::new(Some(feeder));
    let ckpt = dir.join("ckpt");
    // (the runs killed read on live: one that reached the end would end
    // its input; the last one reads to the end)
    let command = |last: bool| {
        let mut command = common::cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "1s"])
            .args(["--events", &format!("kafka://{b}/{input}")])
            .args(["--output", &format!("kafka://{b}/{output}")])
            .args(["--decisions", &format!("kafka://{b}/{decisions}")])
            .args(["--checkpoint", "ckpt", "--checkpoint-every", "250ms"])
            .args(["--transactional-id", id])
            .arg(format!("--kafka-marker-topic={marker}"));
        if last {
            command.args(["--kafka-until", "end"]);
        }
        command
    };
    let reader = RefCell::new(Reader::new(&b, &[(&decisions, 3), (&output, 1)]));
    let (mut committed, mut aborted, mut markers) = (Vec::<Out>::new(), 0, Vec::new());
    let open = |k: usize| {
        k % 2 == 0 || {
            let mut reader = reader.borrow_mut();
            for _ in 0..100_000 {
                if !reader.poll(Duration::ZERO) {
                    break;
                }
            }
            let newest = common::newest_stored(&ckpt).map(|s| s.marker().number());
            newest.is_some_and(|n| {
                (reader.untaken().iter()).any(|o| o.interval.is_some_and(|i| i > n))
            })
        }
    };
    let after = |k: usize| {
        let mut reader = reader.borrow_mut();
        let m = reader.take_committed(&b, id, &marker, &mut committed, &mut aborted);
        markers.push(m);
        if k + 1 == KILLS {
            // (the input as the last run will read it to its end)
            if let Some(feeder) = feeder.borrow_mut().take() {
                feeder.stop();
            }
        }
    };
    let (kills, last) = killed_after_cuts_with(command, &ckpt, KILLS, 62, open, after);
    let fed = feeder.borrow_mut().take().map(Feeder::stop).is_some();
    assert!(
        kills == KILLS && !fed,
        "{kills} kills: a run read live ended by itself"
    );
    let said = stderr(&ok(last));
    assert!(said.contains("resuming from checkpoint"), "{said}");
    let m = (reader.borrow_mut()).take_committed(&b, id, &marker, &mut committed, &mut aborted);
    markers.push(m);
    eprintln!(
        "{kills} kills; last committed checkpoints {markers:?}; {aborted} records of aborted transactions left out, {} committed",
        committed.len()
    );
    // (the kills did cut transactions: telling them apart was needed)
    assert!(aborted > 0, "no kill left an open transaction with records");
    let numbers: Vec<u64> = markers.iter().flatten().copied().collect();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{markers:?}");
    // The uninterrupted run over the same topic.
    ok(common::cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "1s"])
        .args(["--events", &format!("kafka://{b}/{input}")])
        .args(["--kafka-until", "end", "--output", "o.jsonl"])
        .args(["--decisions", "d.jsonl"])
        .output()
        .unwrap());
    // Each event's decisions, by its id: the uninterrupted run's, each
    // once.
    committed
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    let id_of = |record: &str| {
        let d: serde_json::Value = serde_json::from_str(record).unwrap();
        let id = d.get("event").or_else(|| d.get("position"));
        id.unwrap_or_else(|| panic!("no id: {record}")).to_string()
    };
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in committed.iter().filter(|o| o.topic == decisions) {
        let id = id_of(&o.payload);
        assert_eq!(
            o.key,
            id.as_bytes(),
            "keyed by its event's id: {}",
            o.payload
        );
        got.entry(id).or_default().push(o.payload.clone());
    }
    let file = lines(&dir, "d.jsonl");
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &file {
        want.entry(id_of(d)).or_default().push(d.clone());
    }
    assert!(
        want.values().all(|d| d.len() == 1),
        "one scene: one decision an event"
    );
    let positioned = format!("\"kafka:{input} partition 0 offset ");
    assert!(
        want.keys().any(|id| id.starts_with(&positioned)),
        "some named by position"
    );
    assert!(
        file.iter().any(|d| d.contains(r#""late":true"#)),
        "some late"
    );
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), file.len());
    assert_eq!(got, want, "the committed decisions, each once");
    // (and the alerts they share their transactions with)
    let mut alerts: Vec<&str> = (committed.iter())
        .filter(|o| o.topic == output)
        .map(|o| o.payload.as_str())
        .collect();
    let mut file_alerts = lines(&dir, "o.jsonl");
    alerts.sort_unstable();
    file_alerts.sort_unstable();
    assert_eq!(alerts, file_alerts, "the committed alerts, each once");
}
