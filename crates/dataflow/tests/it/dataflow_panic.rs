//! A library user's sink that panics on a worker's thread ends the run on
//! workers with an error naming the panic: the other workers do not wait
//! for the failed one's progress forever (they hung, and the run never
//! returned).

use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use cepheid_dataflow::run::{Cluster, Error, Scale};
use cepheid_engine::Rules;
use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState};
use cepheid_runtime::source::Position;
use cepheid_runtime::{Config, End, Every, Input, Notice, Report, Runtime};

/// Long enough for a loaded machine; a hang is far longer.
const PATIENCE: Duration = Duration::from_secs(120);

/// A sink that panics once: on its `n`th record, or on the commit of its
/// first checkpoint.
struct Panicking {
    n: usize,
    commit: bool,
}

impl Sink for Panicking {
    fn describe(&self, _: Kind) -> String {
        "panicking".to_string()
    }

    fn write(&mut self, _: Kind, _: &[u8], _: &[u8]) -> Result<(), SinkError> {
        self.n = self.n.saturating_sub(1);
        if self.n == 1 {
            panic!("the test's sink panics here");
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn prepare(&mut self, _: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }

    fn commit(&mut self, _: u64, _: &Position) -> Result<(), SinkError> {
        if std::mem::take(&mut self.commit) {
            panic!("the test's sink panics here");
        }
        Ok(())
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(kept.len())
    }
}

/// `events` lines: a match per user every two lines, in time order.
/// (The folder is removed when the guard given with it drops.)
fn input(name: &str, events: usize) -> (cepheid_testkit::Scratch, PathBuf) {
    let dir = cepheid_testkit::Scratch::new(
        std::env::temp_dir().join(format!("panic_{name}_{}", std::process::id())),
    );
    let text: String = (0..events)
        .map(|i| {
            let user = (i / 2) % 97;
            let n = 1 + i % 2;
            format!("{{\"ts\": {i}, \"user\": \"u{user}\", \"n\": {n}}}\n")
        })
        .collect();
    let path = dir.join("events.jsonl");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn rules() -> Rules {
    Rules::parse(
        "r.cep",
        "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }\n",
    )
    .expect("parses")
}

/// What the run said.
#[derive(Clone, Default)]
struct Said(Arc<Mutex<Vec<String>>>);

impl Report for Said {
    fn notice(&mut self, notice: Notice) {
        self.0.lock().unwrap().push(notice.to_string());
    }
}

/// Runs the file on `workers` workers into a sink that panics once (on
/// its `n`th record, or with `commit` on its first commit, checkpoints
/// taken every 5 ms); how the run ended and what it said, or `None` if it
/// did not end within [`PATIENCE`].
fn run_panicking(
    name: &str,
    workers: usize,
    n: usize,
    commit: bool,
) -> Option<(cepheid_runtime::Summary, Vec<String>)> {
    let (_dir, path) = input(name, 20_000);
    let mut config = Config::new(Input::File(path.clone()), Vec::new());
    if commit {
        config.checkpoint = Some(path.with_file_name("ckpt"));
        config.checkpoint_every = Every {
            time: Some(Duration::from_millis(5)),
            lines: None,
        };
    }
    let scale = Scale {
        workers,
        chunk_bytes: 4096,
        ..Scale::default()
    };
    let said = Said::default();
    let cluster = Box::new(Cluster::new(scale));
    let sink: Option<Box<dyn Sink>> = Some(Box::new(Panicking { n: n + 1, commit }));
    let run = Runtime::on_cluster(
        config,
        &rules(),
        cluster,
        None,
        sink,
        Box::new(said.clone()),
    )
    .expect("starts");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run.run());
    });
    let summary = rx.recv_timeout(PATIENCE).ok()?;
    let said = said.0.lock().unwrap().clone();
    Some((summary, said))
}

#[test]
fn a_sink_that_panics_on_a_worker_ends_the_run_with_that_worker_failed() {
    for (workers, n, commit) in [
        (2, 1, false),
        (2, 500, false),
        (3, 2_000, false),
        (2, usize::MAX - 1, true),
        (3, usize::MAX - 1, true),
    ] {
        let name = format!("w{workers}_{n}_{commit}");
        let case = format!("{workers} workers, a panic at record {n} (commit: {commit})");
        let Some((summary, said)) = run_panicking(&name, workers, n, commit) else {
            panic!("{case}: the run hung");
        };
        // The worker's failure is the run's end, said once.
        let End::Failed(cepheid_runtime::Error::Cluster(e)) = &summary.end else {
            panic!("{case}: {:?}", summary.end);
        };
        let e: &(dyn std::error::Error + 'static) = &**e;
        let Some(Error::Worker { why, .. }) = e.downcast_ref::<Error>() else {
            panic!("{case}: {e}");
        };
        assert!(why.contains("the test's sink panics here"), "{why}");
        let failures: Vec<&String> = said
            .iter()
            .filter(|s| s.contains("a worker failed"))
            .collect();
        assert_eq!(failures.len(), 1, "{case}: {said:?}");
    }
}
