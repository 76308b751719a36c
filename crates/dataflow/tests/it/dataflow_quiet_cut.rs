//! A cut of workers while the input is quiet: a source with nothing to
//! read moves its capability up to the cut asked for and says its clock
//! (`SourceClock`), so the cut is taken where the input stands and a sink
//! that commits at checkpoints commits what the events before the quiet
//! spell released, as one engine does on schedule
//! (`a_checkpoint_due_while_a_followed_file_is_quiet_commits_its_records`
//! in the runtime's tests), without moving event time on.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cepheid_dataflow::run::{Cluster, Scale};
use cepheid_engine::Rules;
use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState};
use cepheid_runtime::source::Position;
use cepheid_runtime::{Config, Input, Notices, Runtime};

const RULES: &str = "pattern ab {\n partition by k\n match a followed by b\n within 100ms\n where\n a: type == \"a\"\n b: type == \"b\"\n}";

/// A transactional sink: what a checkpoint commits is delivered, the rest
/// is dropped at a restart (`recover`).
#[derive(Clone, Default)]
struct Txn(Arc<Mutex<TxnState>>);

#[derive(Default)]
struct TxnState {
    open: Vec<String>,
    records: Vec<String>,
    committed: Option<(u64, Position)>,
}

impl Txn {
    fn committed(&self) -> Vec<String> {
        self.0.lock().unwrap().records.clone()
    }
}

impl Sink for Txn {
    fn describe(&self, _kind: Kind) -> String {
        "txn".to_string()
    }
    fn write(&mut self, _kind: Kind, _key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        let text = String::from_utf8(record.to_vec()).unwrap();
        self.0
            .lock()
            .unwrap()
            .open
            .push(text.trim_end().to_string());
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }
    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        let mut state = self.0.lock().unwrap();
        let open = std::mem::take(&mut state.open);
        state.records.extend(open);
        state.committed = Some((checkpoint, source.clone()));
        Ok(())
    }
    fn commits_with_checkpoints(&self) -> bool {
        true
    }
    fn commits_at_end(&self) -> bool {
        true
    }
    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        let mut state = self.0.lock().unwrap();
        state.open.clear();
        let Some((number, position)) = state.committed.clone() else {
            return Ok(kept.len());
        };
        Ok(kept
            .iter()
            .position(|k| k.number == number && k.source == position)
            .expect("the committed checkpoint is kept"))
    }
}

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
        let sink = Txn::default();
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
            let sink = Txn::default();
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
