//! A library user's sink that panics on a worker's thread ends the run on
//! workers with an error naming the panic: the other workers do not wait
//! for the failed one's progress forever (they hung, and
//! `Workers::run` never returned).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use cepheid_dataflow::run::{Error, Scale, Workers};
use cepheid_engine::Rules;
use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState};
use cepheid_runtime::source::Position;
use cepheid_runtime::{Config, Every, Input, Notices};

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
fn input(name: &str, events: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("panic_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = (0..events)
        .map(|i| {
            let user = (i / 2) % 97;
            let n = 1 + i % 2;
            format!("{{\"ts\": {i}, \"user\": \"u{user}\", \"n\": {n}}}\n")
        })
        .collect();
    let path = dir.join("events.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn rules() -> Rules {
    Rules::parse(
        "r.cep",
        "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }\n",
    )
    .expect("parses")
}

/// Runs the file on `workers` workers into a sink that panics once (on
/// its `n`th record, or with `commit` on its first commit, checkpoints
/// taken every 5 ms); how `Workers::run` ended: the workers that failed,
/// or `None` if it did not return within [`PATIENCE`].
fn run_panicking(name: &str, workers: usize, n: usize, commit: bool) -> Option<Vec<Error>> {
    let path = input(name, 20_000);
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
    let run = Workers::new(&config, &scale, &rules(), Box::new(Notices::default()))
        .expect("starts")
        .with_sink(Box::new(Panicking { n: n + 1, commit }));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run.run().map(|outcome| outcome.failed));
    });
    let ended = rx.recv_timeout(PATIENCE).ok()?;
    Some(ended.expect("the run ends with the failed workers"))
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
        let Some(failed) = run_panicking(&name, workers, n, commit) else {
            panic!("{workers} workers, a panic at record {n} (commit: {commit}): the run hung");
        };
        let [Error::Worker { why, .. }] = &failed[..] else {
            panic!("{workers} workers, a panic at record {n} (commit: {commit}): {failed:?}");
        };
        assert!(why.contains("the test's sink panics here"), "{why}");
    }
}
