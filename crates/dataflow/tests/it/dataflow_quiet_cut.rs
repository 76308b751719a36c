//! A cut of workers while the input is quiet: a source with nothing to
//! read moves its capability up to the cut asked for and says its clock
//! (`SourceClock`), so the cut is taken where the input stands and a sink
//! that commits at checkpoints commits what the events before the quiet
//! spell released, as one engine does on schedule
//! (`a_checkpoint_due_while_a_followed_file_is_quiet_commits_its_records`
//! in the runtime's tests), without moving event time on.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cepheid_dataflow::run::{Cluster, Scale};
use cepheid_engine::Rules;
use cepheid_runtime::{Config, Input, Notices, Runtime};

use crate::txn::Txn;

const RULES: &str = "pattern ab {\n partition by k\n match a followed by b\n within 100ms\n where\n a: type == \"a\"\n b: type == \"b\"\n}";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cepheid-quiet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ev(ts: i64, t: &str, k: &str) -> String {
    format!("{{\"ts\":{ts},\"type\":\"{t}\",\"k\":\"{k}\"}}\n")
}

/// A followed file on `workers`, checkpointed every 100 ms into a
/// transactional sink, started (resumed) over `dir`.
fn start(
    dir: &std::path::Path,
    workers: usize,
    sink: &Txn,
) -> (
    cepheid_runtime::Handle,
    std::thread::JoinHandle<cepheid_runtime::Summary>,
) {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut config = Config::new(Input::File(dir.join("events.jsonl")), Vec::new());
    config.follow = true;
    config.max_delay = Duration::from_millis(50);
    config.checkpoint = Some(dir.join("ck"));
    config.checkpoint_every.time = Some(Duration::from_millis(100));
    config.checkpoint_every.lines = None;
    let cluster = Box::new(Cluster::new(Scale {
        workers,
        ..Scale::default()
    }));
    let runtime = Runtime::on_cluster(
        config,
        &rules,
        cluster,
        None,
        Some(Box::new(sink.clone())),
        Box::new(Notices::default()),
    )
    .unwrap();
    let handle = runtime.handle();
    (handle, std::thread::spawn(move || runtime.run()))
}

fn append(dir: &std::path::Path, lines: &[String]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("events.jsonl"))
        .unwrap();
    file.write_all(lines.concat().as_bytes()).unwrap();
}

/// Waits (a hang guard, not a timing) until `done` holds.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "never came: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn keyed(records: &[String], key: &str) -> usize {
    let key = format!("\"key\":{{\"k\":\"{key}\"}}");
    records.iter().filter(|r| r.contains(&key)).count()
}

/// The match of `x`, released by `y`'s later event, is committed while
/// the file says nothing more: on one worker and on two.
#[test]
fn a_cut_due_while_the_input_is_quiet_commits_on_workers() {
    for workers in [1, 2] {
        let dir = scratch(&format!("commits-{workers}"));
        append(&dir, &[ev(1, "a", "x"), ev(2, "b", "x"), ev(100, "a", "y")]);
        let sink = Txn::with_checkpoints();
        let (handle, run) = start(&dir, workers, &sink);
        until("the match of x committed", || {
            keyed(&sink.committed(), "x") == 1
        });
        handle.stop("the test");
        let summary = run.join().unwrap();
        assert!(summary.error().is_none(), "{:?}", summary.error());
        assert_eq!((summary.events, summary.matches), (3, 1));
        assert_eq!(sink.committed().len(), 1, "{:?}", sink.committed());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The cut taken while quiet keeps event time where the input left it:
/// events read after it that are not late by the input's clock (below
/// the cut's epoch, above the watermark) are matched as without the cut,
/// in the run that took it and in a run resumed from it. Each run ends
/// with the records of the uninterrupted run: the matches of `x`, `y`
/// and `w`, no late event (the watermark is 49 after `y`'s `a`; each cut
/// while quiet is 1 ms above the last).
#[test]
fn events_after_a_quiet_cut_match_as_without_it_and_after_a_resume() {
    let first = [ev(10, "a", "x"), ev(20, "b", "x"), ev(100, "a", "y")];
    let later = [
        ev(51, "a", "w"),
        ev(52, "b", "w"),
        ev(130, "b", "y"),
        ev(300, "a", "z"),
    ];
    for workers in [1, 2] {
        for resume in [false, true] {
            let dir = scratch(&format!("after-{workers}-{resume}"));
            append(&dir, &first);
            let sink = Txn::with_checkpoints();
            let (handle, run) = start(&dir, workers, &sink);
            until("the match of x committed", || {
                keyed(&sink.committed(), "x") == 1
            });
            // (more cuts while quiet: their epochs pass 51 and 52)
            std::thread::sleep(Duration::from_millis(600));
            let (handle, run) = if resume {
                handle.stop("the test");
                assert!(run.join().unwrap().error().is_none());
                append(&dir, &later);
                start(&dir, workers, &sink)
            } else {
                append(&dir, &later);
                (handle, run)
            };
            // (z's a at 200 releases y's and w's matches)
            until("the matches of y and w committed", || {
                let seen = sink.committed();
                keyed(&seen, "y") == 1 && keyed(&seen, "w") == 1
            });
            handle.stop("the test");
            let summary = run.join().unwrap();
            assert!(summary.error().is_none(), "{:?}", summary.error());
            assert_eq!(summary.late, 0, "{workers} workers, resumed: {resume}");
            let mut seen = sink.committed();
            seen.sort();
            assert_eq!(
                seen.len(),
                3,
                "{workers} workers, resumed: {resume}: {seen:?}"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
