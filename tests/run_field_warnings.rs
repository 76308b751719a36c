//! `cepheid run` says, once per pattern and field, when a field a pattern
//! reads has occurred in none of the first `--field-warnings-after N`
//! events (default 10,000), and at the end of the input for what is
//! still missing and was not said: the pattern, `path:line:column` of the
//! read, and the closest field that did occur. The records are the same
//! with or without the warnings. On workers (and processes) the same,
//! over the readers of every worker (`on_workers`).

use std::path::Path;
use std::process::Output;

use crate::common::{cepheid, scratch};

fn run(dir: &Path, args: &[&str]) -> Output {
    cepheid()
        .current_dir(dir)
        .args([
            "run",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--no-progress",
        ])
        .args(args)
        .output()
        .expect("run cepheid")
}

fn warnings(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("warning"))
        .map(str::to_string)
        .collect()
}

/// `n` failed logins of one user, with a `success` field.
fn logins(n: usize) -> String {
    (0..n)
        .map(|i| format!(r#"{{"ts": {i}, "user": "u", "success": false}}"#) + "\n")
        .collect()
}

fn setup(name: &str, rules: &str, events: &str) -> crate::common::Scratch {
    let dir = scratch(name);
    std::fs::write(dir.join("rules.cep"), rules).unwrap();
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    dir
}

const MISSPELT: &str = "pattern fails {
    partition by user
    match f{3}
    where
        f: not sucess
}
";

/// The layouts the warnings are checked on: one engine, and two workers
/// with chunks of 60 bytes (two lines of `logins`: both read some).
const ONE: &[&str] = &[];
#[cfg(feature = "workers")]
const WORKERS: &[&str] = &["--workers", "2", "--chunk-bytes", "60"];

/// `run` on `layout`.
fn run_on(layout: &[&str], dir: &Path, args: &[&str]) -> Output {
    run(dir, &[layout, args].concat())
}

/// Said once, at the end, with where it is read and the closest name
/// (over every worker's events).
fn said_once_at_the_end(layout: &[&str], name: &str) {
    let dir = setup(name, MISSPELT, &logins(5));
    let out = run_on(layout, &dir, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        warnings(&out),
        ["warning: rules.cep:5:16: pattern `fails`, the condition of stage `f`: field `sucess` never occurs in 5 events; did you mean `success`?"]
    );
    // `not sucess` is `not null`: null, so nothing matched.
    assert!(out.stdout.is_empty());
}

/// Said once N events were read, and not again at the end.
fn said_after_n_events(layout: &[&str], name: &str) {
    let dir = setup(name, MISSPELT, &logins(50));
    let out = run_on(layout, &dir, &["--field-warnings-after", "10"]);
    let said = warnings(&out);
    assert_eq!(said.len(), 1, "{said:?}");
    // Said when 10 events were read (a batch's worth, or the workers'
    // chunks read whole, may be decoded by then: at least 10, at most
    // the input).
    let events: u64 = said[0]
        .split("never occurs in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!((10..=50).contains(&events), "{said:?}");
}

/// Nothing said when every field occurs, or with the warnings off.
fn quiet_when_fine_or_off(layout: &[&str], name: &str) {
    let fine = MISSPELT.replace("sucess", "success");
    let dir = setup(&format!("{name}_fine"), &fine, &logins(5));
    let out = run_on(layout, &dir, &[]);
    assert!(warnings(&out).is_empty(), "{out:?}");
    assert!(!out.stdout.is_empty(), "three failures match");

    let dir = setup(&format!("{name}_off"), MISSPELT, &logins(5));
    let out = run_on(layout, &dir, &["--field-warnings-after", "0"]);
    assert!(warnings(&out).is_empty(), "{out:?}");
}

/// `note` occurs only in the last event (on workers, in the chunk of
/// one worker: the other never saw it, the run did); with N above the
/// input's length only the end is looked at, where it has occurred.
fn not_said_when_it_occurs_late(layout: &[&str], name: &str) {
    let rules = "pattern noted {
    match a
    where
        a: note == \"x\"
}
";
    let mut events = logins(20);
    events.push_str(r#"{"ts": 99, "user": "u", "note": "x"}"#);
    events.push('\n');
    let dir = setup(name, rules, &events);
    let late = run_on(layout, &dir, &["--field-warnings-after", "100"]);
    assert!(warnings(&late).is_empty(), "{late:?}");
    assert_eq!(String::from_utf8_lossy(&late.stdout).lines().count(), 1);
}

/// An indicator's `group by` and a scene's `when` and `id` read fields
/// too (a misspelt `when` lets no event into the scene; a misspelt `group
/// by` counts every event in one group): said as a pattern's read is,
/// with the indicator or the scene named, and nothing when they occur.
fn declarations_are_watched(layout: &[&str], name: &str) {
    let rules = "indicator n = count() group by usr within 1h
pattern many { partition by user action review match f where f: n(user) > 100 }
scene s { when knd == \"x\" id ident rules many
  outcomes ok < review review if action review fallback ok deadline 1s }
";
    let dir = setup(name, rules, &logins(5));
    let out = run_on(layout, &dir, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        warnings(&out),
        [
            "warning: rules.cep:1:32: indicator `n`, `group by`: field `usr` never occurs in 5 events; did you mean `user`?",
            "warning: rules.cep:3:16: scene `s`, `when`: field `knd` never occurs in 5 events",
            "warning: rules.cep:3:30: scene `s`, `id`: field `ident` never occurs in 5 events",
        ]
    );
    let fine = rules
        .replace("usr", "user")
        .replace("knd", "success")
        .replace("ident", "ts");
    let dir = setup(&format!("{name}_fine"), &fine, &logins(5));
    let out = run_on(layout, &dir, &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(warnings(&out).is_empty(), "{out:?}");
}

#[test]
fn an_indicators_and_a_scenes_fields_are_watched_too() {
    declarations_are_watched(ONE, "fields_declarations");
}

#[test]
fn a_misspelt_field_is_said_once_at_the_end_with_where_and_did_you_mean() {
    said_once_at_the_end(ONE, "run_fields_end");
}

#[test]
fn after_n_events_it_is_said_once_not_again_at_the_end() {
    said_after_n_events(ONE, "run_fields_n");
}

#[test]
fn no_warning_when_every_field_occurs_or_when_turned_off() {
    quiet_when_fine_or_off(ONE, "run_fields");
}

#[test]
fn a_field_that_occurs_late_is_not_said_at_the_end() {
    not_said_when_it_occurs_late(ONE, "run_fields_late");
}

#[test]
fn the_records_are_the_same_with_and_without_the_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run_sample = |extra: &[&str]| {
        cepheid()
            .current_dir(root)
            .args([
                "run",
                "patterns/",
                "--events",
                "examples/data/sample.jsonl",
                "--no-progress",
            ])
            .args(extra)
            .output()
            .expect("run cepheid")
    };
    let on = run_sample(&["--field-warnings-after", "1"]);
    let off = run_sample(&["--field-warnings-after", "0"]);
    assert_eq!(on.stdout, off.stdout);
    assert!(!on.stdout.is_empty());
}

/// The same on workers: each worker's reader watches the fields of its
/// chunks of the file (cut small here, so that both read some), their
/// views merged: said once, with the single run's message and the events
/// of every worker.
#[cfg(feature = "workers")]
mod on_workers {
    use super::*;
    use crate::common::Live;
    use std::net::TcpListener;

    #[test]
    fn an_indicators_and_a_scenes_fields_are_watched_too() {
        declarations_are_watched(WORKERS, "workers_fields_declarations");
    }

    #[test]
    fn a_misspelt_field_is_said_once_at_the_end_over_every_workers_events() {
        said_once_at_the_end(WORKERS, "workers_fields_end");
    }

    #[test]
    fn after_n_events_it_is_said_once_not_again_at_the_end() {
        said_after_n_events(WORKERS, "workers_fields_n");
    }

    #[test]
    fn no_warning_when_every_field_occurs_or_when_turned_off() {
        quiet_when_fine_or_off(WORKERS, "workers_fields");
    }

    #[test]
    fn a_field_that_occurs_in_one_workers_chunk_only_is_not_said() {
        not_said_when_it_occurs_late(WORKERS, "workers_fields_late");
    }

    #[test]
    fn the_records_are_the_same_with_and_without_the_warnings() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let run_sample = |extra: &str| {
            let out = cepheid()
                .current_dir(root)
                .args(["run", "patterns/", "--events", "examples/data/sample.jsonl"])
                .args(["--no-progress", "--workers", "2", "--chunk-bytes", "500"])
                .args(["--field-warnings-after", extra])
                .output()
                .expect("run cepheid");
            let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            lines.sort();
            lines
        };
        let on = run_sample("1");
        assert_eq!(on, run_sample("0"));
        assert!(!on.is_empty());
    }

    /// A followed file, read by worker 0's reader thread: said once its
    /// decoder saw N events, as the single run says it.
    #[test]
    fn a_followed_file_is_said_after_n_events() {
        let dir = setup("workers_fields_follow", MISSPELT, &logins(5));
        let live = Live::spawn(cepheid().current_dir(&dir).args([
            "run",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--follow",
            "--field-warnings-after",
            "3",
            "--no-progress",
            "--workers",
            "2",
        ]));
        let warning = live.stderr_line("never occurs");
        assert_eq!(
            warning,
            "warning: rules.cep:5:16: pattern `fails`, the condition of stage `f`: field `sucess` never occurs in 5 events; did you mean `success`?"
        );
        live.signal("TERM");
        let (status, _, stderr) = live.finish();
        assert_eq!(status.code(), Some(143), "{stderr}");
        assert_eq!(stderr.matches("never occurs").count(), 1, "{stderr}");
    }

    /// Two processes of one worker, each reading its chunks of the file
    /// (process 0 reads 4 of the 5 lines, process 1 one): process 0 says
    /// at the end what no event of either carried, with every event.
    #[test]
    fn on_processes_process_0_says_what_the_events_of_every_process_lacked() {
        let dir = setup("processes_fields", MISSPELT, &logins(5));
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
        let processes: Vec<_> = (0..2)
            .map(|process| {
                cepheid()
                    .current_dir(&dir)
                    .args(["run", "rules.cep", "--events", "events.jsonl"])
                    .args(["--no-progress", "--chunk-bytes", "60"])
                    .args(["--workers", "1", "--processes", "2"])
                    .args(["--process", &process.to_string()])
                    .arg("--hostfile")
                    .arg(&hosts)
                    .args(["--output", &format!("out{process}.jsonl")])
                    .spawn_output()
            })
            .collect();
        let outs: Vec<Output> = processes
            .into_iter()
            .map(|p| p.join().expect("runs").expect("starts"))
            .collect();
        for out in &outs {
            assert!(out.status.success(), "{out:?}");
        }
        assert_eq!(
            warnings(&outs[0]),
            ["warning: rules.cep:5:16: pattern `fails`, the condition of stage `f`: field `sucess` never occurs in 5 events; did you mean `success`?"]
        );
        assert!(warnings(&outs[1]).is_empty(), "{:?}", outs[1]);
    }

    /// Runs a command on a thread of its own, for its output.
    trait SpawnOutput {
        fn spawn_output(&mut self) -> std::thread::JoinHandle<std::io::Result<Output>>;
    }

    impl SpawnOutput for std::process::Command {
        fn spawn_output(&mut self) -> std::thread::JoinHandle<std::io::Result<Output>> {
            let child = self
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn();
            std::thread::spawn(move || child?.wait_with_output())
        }
    }
}
