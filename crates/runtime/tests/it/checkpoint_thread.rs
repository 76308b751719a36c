//! Checkpoint files are written off the matching thread (issue 26, item
//! 12): while a checkpoint's file is held back (the runtime's
//! `before_checkpoint_file` hook, on the checkpoint thread), the run goes
//! on matching and writing; a stop waits for the file; the outputs and a
//! resume stay exact; a sink that takes no writes before its commit gets
//! none.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cepheid_engine::Rules;

use crate::support::{scratch, RULES};
use cepheid_runtime::{
    Checkpoint, Config, End, Input, Kind, Notice, Position, Report, RunEvent, Runtime, Sink,
    SinkError, SinkState, Summary,
};

/// How long a held checkpoint waits for the run to get somewhere, at
/// most: only a guard against a run that does not go on (the old
/// behaviour, matching stopped while the file was written), which then
/// fails the test instead of hanging it. Nothing is timed.
const GUARD: Duration = Duration::from_secs(60);

/// `pairs` keys, each an `a` then a `b` (one match each), in time order.
fn events(dir: &Path, pairs: u64) -> (std::path::PathBuf, u64) {
    let path = dir.join("events.jsonl");
    let mut text = String::new();
    for k in 0..pairs {
        text.push_str(&format!("{{\"ts\":{},\"type\":\"a\",\"k\":{k}}}\n", 2 * k));
        text.push_str(&format!(
            "{{\"ts\":{},\"type\":\"b\",\"k\":{k}}}\n",
            2 * k + 1
        ));
    }
    std::fs::write(&path, &text).unwrap();
    (path, text.len() as u64)
}

/// What the run showed: the input offsets it reached (after each batch
/// matched), its checkpoints and its notices.
#[derive(Default)]
struct Seen {
    offset: u64,
    checkpoints: Vec<(u64, u64)>,
    notices: Vec<String>,
}

/// A report that tells the hook how far the run got.
#[derive(Clone, Default)]
struct Progress(Arc<(Mutex<Seen>, Condvar)>);

impl Progress {
    /// Waits until the run matched the input up to `offset` (or the
    /// guard passed); says whether it did.
    fn wait_for(&self, offset: u64) -> bool {
        let (seen, moved) = &*self.0;
        let seen = seen.lock().unwrap();
        let (seen, _) = moved
            .wait_timeout_while(seen, GUARD, |s| s.offset < offset)
            .unwrap();
        seen.offset >= offset
    }
}

impl Report for Progress {
    fn notice(&mut self, notice: Notice) {
        self.0 .0.lock().unwrap().notices.push(notice.to_string());
    }
    fn progress(&mut self, offset: u64) {
        let (seen, moved) = &*self.0;
        seen.lock().unwrap().offset = offset;
        moved.notify_all();
    }
    fn observes(&self) -> bool {
        true
    }
    fn event(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::Checkpoint {
            number, deferred, ..
        } = event
        {
            self.0
                 .0
                .lock()
                .unwrap()
                .checkpoints
                .push((*number, *deferred));
        }
    }
}

/// A run over `events` into `output`, checkpointed in `dir/state` every
/// 1,000 lines when `checkpoints`; `hook` before each checkpoint's file.
fn run(
    events: &Path,
    output: &Path,
    checkpoints: bool,
    report: Progress,
    hook: Option<Box<dyn FnMut(u64) + Send>>,
    handle: Option<&Mutex<Option<cepheid_runtime::Handle>>>,
) -> Summary {
    let mut config = Config::new(Input::file(events), Vec::new());
    config.output = Some(output.to_path_buf());
    if checkpoints {
        config.checkpoint = Some(events.parent().unwrap().join("state"));
        config.checkpoint_every.time = None;
        config.checkpoint_every.lines = Some(1000);
    }
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut runtime = Runtime::new(config, &rules, Box::new(report)).unwrap();
    if let Some(hook) = hook {
        runtime = runtime.before_checkpoint_file(hook);
    }
    if let Some(slot) = handle {
        *slot.lock().unwrap() = Some(runtime.handle());
    }
    runtime.run()
}

#[test]
fn matching_goes_on_while_a_checkpoint_file_is_written() {
    let dir = scratch("thread-goes-on");
    let (events, len) = events(&dir, 3000);
    let plain = dir.join("plain.jsonl");
    let summary = run(&events, &plain, false, Progress::default(), None, None);
    assert!(summary.error().is_none(), "{summary}");
    assert_eq!(summary.matches, 3000);

    // Checkpoint 1's file is held back until the whole input is matched:
    // the run must go on meanwhile.
    let report = Progress::default();
    let went_on = Arc::new(Mutex::new(None));
    let hook = {
        let report = report.clone();
        let went_on = Arc::clone(&went_on);
        Box::new(move |number: u64| {
            if number == 1 {
                *went_on.lock().unwrap() = Some(report.wait_for(len));
            }
        })
    };
    let output = dir.join("out.jsonl");
    let summary = run(&events, &output, true, report.clone(), Some(hook), None);
    assert!(summary.error().is_none(), "{summary}");
    assert_eq!(
        *went_on.lock().unwrap(),
        Some(true),
        "the whole input was matched while checkpoint 1's file was written"
    );
    assert_eq!(summary.matches, 3000);
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&plain).unwrap(),
        "the output is the same"
    );
    // Checkpoint 2 came due while 1 was written: taken after it, counted
    // and said once; the checkpoints are committed in order.
    let seen = report.0 .0.lock().unwrap();
    let numbers: Vec<u64> = seen.checkpoints.iter().map(|c| c.0).collect();
    assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
    assert!(numbers.len() >= 2, "{numbers:?}");
    assert_eq!(seen.checkpoints[0].1, 1, "{:?}", seen.checkpoints);
    let said: Vec<&String> = seen
        .notices
        .iter()
        .filter(|n| n.contains("came due while checkpoint 1 was still being written"))
        .collect();
    assert_eq!(said.len(), 1, "{:?}", seen.notices);
    let state = dir.join("state");
    // The last checkpoint alone kept, nothing half-written left.
    let kept = cepheid_runtime::checkpoint::store::complete(&state).unwrap();
    assert_eq!(kept, [*numbers.last().unwrap()]);
    let left: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "lock" && !name.starts_with("cut-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    drop(seen);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_stopped_while_a_checkpoint_file_is_written_waits_for_it_and_resumes_exactly() {
    let dir = scratch("thread-stop");
    // (long enough that the stop comes before the reader's last batch)
    let (events, len) = events(&dir, 20_000);
    let plain = dir.join("plain.jsonl");
    run(&events, &plain, false, Progress::default(), None, None);

    // Checkpoint 1's file is held back until the run matched a quarter
    // of the input, then the run is stopped before the file is written.
    let report = Progress::default();
    let handle = Arc::new(Mutex::new(None::<cepheid_runtime::Handle>));
    let went_on = Arc::new(Mutex::new(None));
    let hook = {
        let report = report.clone();
        let went_on = Arc::clone(&went_on);
        let handle = Arc::clone(&handle);
        Box::new(move |number: u64| {
            if number == 1 {
                *went_on.lock().unwrap() = Some(report.wait_for(len / 4));
                // (from a thread of its own: the stop waits for room in
                // the run's channel, which a run waiting for this file
                // would never make)
                let handle = handle.lock().unwrap().clone();
                std::thread::spawn(move || {
                    if let Some(handle) = handle {
                        handle.stop("the test");
                    }
                });
            }
        })
    };
    let output = dir.join("out.jsonl");
    let summary = run(
        &events,
        &output,
        true,
        report.clone(),
        Some(hook),
        Some(&handle),
    );
    assert_eq!(*went_on.lock().unwrap(), Some(true));
    match &summary.end {
        // (the stop may come after the last batch was read)
        End::Stopped(why) => assert_eq!(why, "the test"),
        End::Input => {}
        end => panic!("{end:?}"),
    }
    // Checkpoint 1 was written and committed before the last one, taken
    // as the run stopped, was.
    let numbers: Vec<u64> = report
        .0
         .0
        .lock()
        .unwrap()
        .checkpoints
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
    assert!(numbers.len() >= 2, "{numbers:?}");

    // Resumed: the output ends as an uninterrupted run's.
    let summary = run(&events, &output, true, Progress::default(), None, None);
    assert!(summary.error().is_none(), "{summary}");
    assert_eq!(summary.matches, 20_000, "the counts go on");
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&plain).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Records in memory and the order of what it was asked.
#[derive(Clone, Default)]
struct Transactional {
    calls: Arc<Mutex<Vec<String>>>,
}

impl Sink for Transactional {
    fn describe(&self, _kind: Kind) -> String {
        "transactions".to_string()
    }
    fn write(&mut self, _kind: Kind, _key: &[u8], _record: &[u8]) -> Result<(), SinkError> {
        self.calls.lock().unwrap().push("write".to_string());
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("prepare {checkpoint}"));
        Ok(SinkState::default())
    }
    fn commit(&mut self, checkpoint: u64, _source: &Position) -> Result<(), SinkError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("commit {checkpoint}"));
        Ok(())
    }
    fn recover(&mut self, _kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(0)
    }
}

#[test]
fn a_sink_that_takes_no_writes_before_its_commit_gets_none() {
    let dir = scratch("thread-transactional");
    let (events, _) = events(&dir, 3000);
    let sink = Transactional::default();
    assert!(!sink.writes_before_commit(), "the trait's default");
    // (each file held back a little: a run that went on would write)
    let summary = every_1000(&dir, &events, Box::new(sink.clone()), Progress::default())
        .before_checkpoint_file(|_| std::thread::sleep(Duration::from_millis(50)))
        .run();
    assert!(summary.error().is_none(), "{summary}");
    let calls = sink.calls.lock().unwrap();
    let mut prepared = 0;
    for pair in calls.windows(2) {
        if let Some(n) = pair[0].strip_prefix("prepare ") {
            prepared += 1;
            assert_eq!(pair[1], format!("commit {n}"), "{calls:?}");
        }
    }
    assert!(prepared >= 3, "{calls:?}");
    assert_eq!(
        calls.iter().filter(|c| *c == "write").count(),
        3000,
        "every match written"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What [`Apart`] was asked, in order, and how its commits went.
#[derive(Default)]
struct Asked {
    calls: Vec<String>,
    writes: u64,
    /// Each commit: did the run write while it went on?
    went_on: Vec<(u64, bool)>,
}

/// A sink that commits apart (`Sink::commit_apart`): each commit goes on
/// on a thread of its own until the run wrote a record after it began (at
/// most 2 s), and fails for checkpoint `fails`.
#[derive(Clone, Default)]
struct Apart {
    asked: Arc<Mutex<Asked>>,
    fails: Option<u64>,
    running: Arc<Mutex<Option<std::sync::mpsc::Receiver<u64>>>>,
}

impl Apart {
    fn say(&self, call: String) {
        self.asked.lock().unwrap().calls.push(call);
    }
}

impl Sink for Apart {
    fn describe(&self, _kind: Kind) -> String {
        "apart".to_string()
    }
    fn write(&mut self, _kind: Kind, _key: &[u8], _record: &[u8]) -> Result<(), SinkError> {
        let mut asked = self.asked.lock().unwrap();
        asked.writes += 1;
        if asked.calls.last().map(String::as_str) != Some("write") {
            asked.calls.push("write".to_string());
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError> {
        self.say(format!("prepare {checkpoint}"));
        Ok(SinkState::default())
    }
    fn writes_before_commit(&self) -> bool {
        true
    }
    fn commit(&mut self, checkpoint: u64, _source: &Position) -> Result<(), SinkError> {
        panic!("checkpoint {checkpoint} committed on the run's thread");
    }
    fn commit_apart(
        &mut self,
        checkpoint: u64,
        _source: &Position,
        done: cepheid_runtime::Wake,
    ) -> Result<bool, SinkError> {
        self.say(format!("commit {checkpoint} begun"));
        let (tx, rx) = std::sync::mpsc::channel();
        *self.running.lock().unwrap() = Some(rx);
        let asked = Arc::clone(&self.asked);
        let before = asked.lock().unwrap().writes;
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let went_on = loop {
                if asked.lock().unwrap().writes > before {
                    break true;
                }
                if start.elapsed() > Duration::from_secs(2) {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            asked.lock().unwrap().went_on.push((checkpoint, went_on));
            let _ = tx.send(checkpoint);
            done();
        });
        Ok(false)
    }
    fn commit_done(&mut self, wait: bool) -> Option<Result<(), SinkError>> {
        let mut running = self.running.lock().unwrap();
        let rx = running.as_ref().expect("a commit going on");
        let checkpoint = match wait {
            true => rx.recv().unwrap(),
            false => rx.try_recv().ok()?,
        };
        *running = None;
        drop(running);
        self.say(format!("commit {checkpoint} done"));
        if self.fails == Some(checkpoint) {
            return Some(Err(SinkError {
                target: "apart".to_string(),
                late: false,
                source: std::io::Error::other(format!("commit {checkpoint} refused")),
            }));
        }
        Some(Ok(()))
    }
    fn recover(&mut self, _kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(0)
    }
}

/// A run over `events` into `sink`, a checkpoint every 1,000 lines, to
/// be run.
fn every_1000(dir: &Path, events: &Path, sink: Box<dyn Sink>, report: Progress) -> Runtime {
    let mut config = Config::new(Input::file(events), Vec::new());
    config.checkpoint = Some(dir.join("state"));
    config.checkpoint_every.time = None;
    config.checkpoint_every.lines = Some(1000);
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    Runtime::with_sink(config, engine, Some(sink), Box::new(report)).unwrap()
}

/// [`every_1000`] into `sink`, run.
fn run_apart(dir: &Path, events: &Path, sink: &Apart, report: Progress) -> Summary {
    every_1000(dir, events, Box::new(sink.clone()), report).run()
}

/// Issue 63: a sink that commits apart (a transactional Kafka sink) is
/// not waited for: the run goes on writing while a checkpoint commits;
/// the next checkpoint is prepared only once the commit ended, and only
/// then is the checkpoint said taken.
#[test]
fn the_run_goes_on_writing_while_a_sink_commits_apart() {
    let dir = scratch("thread-apart");
    let (events, _) = events(&dir, 3000);
    let sink = Apart::default();
    let report = Progress::default();
    let summary = run_apart(&dir, &events, &sink, report.clone());
    assert!(summary.error().is_none(), "{summary}");
    let asked = sink.asked.lock().unwrap();
    assert_eq!(asked.writes, 3000, "every match written");
    let calls = &asked.calls;
    // prepare N, commit N begun, (writes), commit N done, in turn.
    let mut last = 0;
    let mut state = "done";
    for call in calls.iter().filter(|c| *c != "write") {
        match (state, call.split(' ').next().unwrap()) {
            ("done", "prepare") => {
                last += 1;
                assert_eq!(call, &format!("prepare {last}"), "{calls:?}");
                state = "prepared";
            }
            ("prepared", "commit") => {
                assert_eq!(call, &format!("commit {last} begun"), "{calls:?}");
                state = "begun";
            }
            ("begun", "commit") => {
                assert_eq!(call, &format!("commit {last} done"), "{calls:?}");
                state = "done";
            }
            _ => panic!("{call} out of turn: {calls:?}"),
        }
    }
    assert_eq!(state, "done", "{calls:?}");
    assert!(last >= 3, "{calls:?}");
    // The first commit went on while the run wrote (it does not wait).
    assert_eq!(
        asked.went_on.first(),
        Some(&(1, true)),
        "{:?}",
        asked.went_on
    );
    let begun = calls.iter().position(|c| c == "commit 1 begun").unwrap();
    let done = calls.iter().position(|c| c == "commit 1 done").unwrap();
    assert!(calls[begun..done].iter().any(|c| c == "write"), "{calls:?}");
    // Each checkpoint said once its commit ended, in order.
    let seen = report.0 .0.lock().unwrap();
    let numbers: Vec<u64> = seen.checkpoints.iter().map(|c| c.0).collect();
    assert_eq!(numbers, (1..=last).collect::<Vec<_>>());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A commit that fails after the run went on stops the run with its
/// error, as one made on the run's thread does; the checkpoint is not
/// said taken.
#[test]
fn a_commit_apart_that_fails_stops_the_run_with_its_error() {
    let dir = scratch("thread-apart-fails");
    let (events, _) = events(&dir, 3000);
    let sink = Apart {
        fails: Some(2),
        ..Apart::default()
    };
    let report = Progress::default();
    let summary = run_apart(&dir, &events, &sink, report.clone());
    let error = summary.error().expect("the run failed").to_string();
    assert!(error.contains("commit 2 refused"), "{error}");
    let calls = sink.asked.lock().unwrap().calls.clone();
    assert!(!calls.iter().any(|c| c == "prepare 3"), "{calls:?}");
    let seen = report.0 .0.lock().unwrap();
    let numbers: Vec<u64> = seen.checkpoints.iter().map(|c| c.0).collect();
    assert_eq!(numbers, [1]);
    std::fs::remove_dir_all(&dir).unwrap();
}
