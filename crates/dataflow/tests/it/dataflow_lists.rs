//! Changes of lists asked through the run's handle (`Handle::add_to_list`,
//! `Handle::remove_from_list`, `docs/lists.md`) on one engine and on
//! workers: each made from the watermark then + 1 on, said in the same
//! words, a list the rules do not declare refused; the records of a run
//! whose changes came at the same points are the same on both executors.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cepheid_dataflow::run::{Cluster, Scale};
use cepheid_engine::{Rules, Value};
use cepheid_runtime::{Config, Input, Notice, Report, Runtime};

const RULES: &str =
    "list blocked\npattern hit { partition by user match a where a: ip in blocked }\n";

/// What the run says, as it says it.
#[derive(Clone, Default)]
struct Said(Arc<Mutex<Vec<String>>>);

impl Report for Said {
    fn notice(&mut self, notice: Notice) {
        self.0.lock().unwrap().push(notice.to_string());
    }
}

impl Said {
    /// Waits (at most a minute) for a line that contains `needle`.
    fn line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = (self.0.lock().unwrap().iter())
                .find(|s| s.contains(needle))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never said: {:?}",
                self.0
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Appends the events of times `from..=to` to `path`.
fn append(path: &Path, from: i64, to: i64) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    for ts in from..=to {
        writeln!(
            file,
            r#"{{"ts":{ts},"user":"u{}","ip":"10.0.0.9"}}"#,
            ts % 4
        )
        .unwrap();
    }
}

/// The times of the matches in `path` once it holds `n` (waits at most a
/// minute).
fn matched(path: &Path, n: usize) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut times: Vec<i64> = (text.lines())
            .filter(|l| l.ends_with('}'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|r| r["events"]["a"][0]["ts"].as_i64().unwrap())
            .collect();
        if times.len() >= n || Instant::now() > deadline {
            times.sort();
            return times;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The event time a change said in `line` is made from (the first
/// event's, 1, when it was made before any).
fn from(line: &str) -> i64 {
    match line.strip_suffix("from event time the start") {
        Some(_) => 1,
        None => line.rsplit(' ').next().unwrap().parse().unwrap(),
    }
}

/// A followed file's run in a folder of its own (`name`), on `workers`
/// or one engine, its lists changeable at run time on workers or not
/// (`changing`), started over the events of 1 to 10: its folder, events
/// file, runtime and what it says.
fn start(
    name: &str,
    workers: Option<usize>,
    changing: bool,
) -> (std::path::PathBuf, std::path::PathBuf, Runtime, Said) {
    let dir = std::env::temp_dir().join(format!(
        "cepheid-handle-lists-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("e.jsonl");
    append(&events, 1, 10);
    let mut config = Config::new(Input::file(&events), Vec::new());
    config.follow = true;
    config.output = Some(dir.join("out.jsonl"));
    config.lists_from_stream = changing;
    let rules = Rules::parse("r.cep", RULES).unwrap();
    let said = Said::default();
    let runtime = match workers {
        None => Runtime::new(config, &rules, Box::new(said.clone())).unwrap(),
        Some(workers) => {
            let scale = Scale {
                workers,
                ..Scale::default()
            };
            let cluster = Box::new(Cluster::new(scale));
            Runtime::on_cluster(config, &rules, cluster, None, None, Box::new(said.clone()))
                .unwrap()
        }
    };
    (dir, events, runtime, said)
}

/// A followed file's run (on `workers`, or one engine), its list changed
/// through its handle twice: the times of its matches, and the points of
/// the two changes.
fn run(name: &str, workers: Option<usize>) -> (Vec<i64>, i64, i64) {
    // (on workers, what lets the lists change at run time)
    let (dir, events, runtime, said) = start(name, workers, workers.is_some());
    let handle = runtime.handle();
    let run = std::thread::spawn(move || runtime.run());
    // (the events up to 9 were released: the list empty, no match)
    let blocked = Value::from("10.0.0.9");
    handle.add_to_list("blocked", &blocked, None);
    handle.add_to_list("nope", &blocked, None);
    let added = from(
        &said.line("list `blocked`: 1 added, 0 removed through the run's handle, from event time"),
    );
    said.line(
        "cepheid: list `nope` (the run's handle): refused: there is no list `nope` in the rule set",
    );
    append(&events, 11, 20);
    let due = (added..20).count();
    assert_eq!(matched(&dir.join("out.jsonl"), due).len(), due);
    handle.remove_from_list("blocked", &blocked);
    let removed = from(
        &said.line("list `blocked`: 0 added, 1 removed through the run's handle, from event time"),
    );
    append(&events, 21, 30);
    handle.stop("the test");
    let summary = run.join().unwrap();
    assert!(
        matches!(summary.end, cepheid_runtime::End::Stopped(_)),
        "{:?}",
        summary.end
    );
    let times = matched(&dir.join("out.jsonl"), 0);
    let _ = std::fs::remove_dir_all(&dir);
    (times, added, removed)
}

#[test]
fn a_list_changed_through_the_handle_changes_from_the_watermark_then_on_either_executor() {
    for workers in [None, Some(2)] {
        let (times, added, removed) = run(&format!("{workers:?}"), workers);
        assert!((1..=11).contains(&added), "{workers:?}: added from {added}");
        assert!(
            (added..=21).contains(&removed),
            "{workers:?}: removed from {removed}"
        );
        let expected: Vec<i64> = (added..removed).collect();
        assert_eq!(times, expected, "{workers:?}");
    }
}

/// On workers whose rules cannot change (no `Config::lists_from_stream`,
/// `rules_from_stream` or `watch`), a change through the handle could not
/// reach every worker at one point: refused, said, and the list stays as
/// it was.
#[test]
fn on_workers_whose_rules_cannot_change_a_change_through_the_handle_is_refused() {
    let (dir, events, runtime, said) = start("refused", Some(2), false);
    let handle = runtime.handle();
    let run = std::thread::spawn(move || runtime.run());
    handle.add_to_list("blocked", &Value::from("10.0.0.9"), None);
    said.line("cepheid: list `blocked` (the run's handle): refused: on workers a change of lists reaches every worker at one point of event time only when the rules can change");
    append(&events, 11, 20);
    handle.stop("the test");
    let summary = run.join().unwrap();
    assert!(
        matches!(summary.end, cepheid_runtime::End::Stopped(_)),
        "{:?}",
        summary.end
    );
    assert!(matched(&dir.join("out.jsonl"), 0).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
