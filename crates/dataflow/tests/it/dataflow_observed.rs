//! What a run on workers (`cepheid_dataflow::run::Workers`) shows a
//! report that observes it (`Report::tick`, `Report::event`: what
//! `--metrics` and `--stats-every` are made of), with a library user's
//! sources (one per worker, each reading its splits) and checkpoints:
//! each cut completed said once, numbered as in its marker, with the bytes
//! of its files (`RunEvent::Checkpoint`); a cut the sink refuses said as
//! a failure (`RunEvent::CheckpointFailed`); the sources' consumer lag
//! (`Source::lag`) over every split of every worker, 0 once all is read;
//! and the warning about a field no event carried, said once over the
//! readers of every worker and counted.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_dataflow::run::{Cluster, Scale};
use cepheid_engine::Rules;
use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState};
use cepheid_runtime::source::{Origin, Position, RawBatch, ReadOutcome, Source, SourceError};
use cepheid_runtime::{
    Config, Every, Input, Level, Notice, Report, RunEvent, RunView, Runtime, SplitLag,
};

/// Records per split.
const PER_SPLIT: usize = 200;

/// Splits of the topic `t` in memory, a source reading some of them:
/// live (it never ends), 10 records of each split a read, 20 ms apart (so
/// that event time moves on over several cuts); its lag is what each
/// split has left.
struct Splits {
    splits: Vec<(u32, Vec<String>)>,
    next: Vec<usize>,
}

impl Splits {
    fn of(numbers: &[u32]) -> Splits {
        let splits = numbers
            .iter()
            .map(|&s| {
                let lines = (0..PER_SPLIT)
                    .map(|i| {
                        let user = format!("u{s}-{}", i / 2);
                        let n = 1 + i % 2;
                        format!(r#"{{"ts":{},"user":"{user}","n":{n}}}"#, 1000 + i)
                    })
                    .collect();
                (s, lines)
            })
            .collect();
        Splits {
            splits,
            next: vec![0; numbers.len()],
        }
    }
}

impl Source for Splits {
    fn describe(&self) -> String {
        "splits".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, wait: Duration) -> Result<ReadOutcome, SourceError> {
        if (self.splits.iter().zip(&self.next)).any(|((_, lines), next)| *next < lines.len()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut delivered = false;
        for _ in 0..10 {
            for (i, (_, lines)) in self.splits.iter().enumerate() {
                if let Some(line) = lines.get(self.next[i]) {
                    let origin = Origin::Offset {
                        partition: i as u32,
                        offset: self.next[i] as i64,
                    };
                    batch.push(line.as_bytes(), origin, None, i as u32);
                    self.next[i] += 1;
                    delivered = true;
                }
            }
        }
        if delivered {
            return Ok(ReadOutcome::Delivered);
        }
        std::thread::sleep(wait.min(Duration::from_millis(10)));
        Ok(ReadOutcome::Idle)
    }

    fn position(&self) -> Position {
        Position::Bytes(serde_json::to_vec(&self.next).expect("serializes"))
    }

    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        if let Position::Bytes(bytes) = position {
            self.next = serde_json::from_slice(bytes).expect("a position");
        }
        Ok(())
    }

    fn splits(&self) -> usize {
        self.splits.len()
    }

    fn lag(&self) -> Option<Vec<SplitLag>> {
        let lag = (self.splits.iter().zip(&self.next))
            .map(|((number, lines), next)| SplitLag {
                topic: "t".to_string(),
                partition: *number,
                records: (lines.len() - next) as u64,
            })
            .collect();
        Some(lag)
    }
}

/// Splits 0, 1, 2 over two workers: 0 and 2 to worker 0, 1 to worker 1.
fn sources() -> Vec<Option<Box<dyn Source>>> {
    vec![
        Some(Box::new(Splits::of(&[0, 2])) as Box<dyn Source>),
        Some(Box::new(Splits::of(&[1]))),
    ]
}

/// What a tick showed.
#[derive(Clone, Debug)]
struct Tick {
    consumer_lag: Option<u64>,
    split_lag: Vec<(String, u32, u64)>,
    field_warnings: u64,
    finished: bool,
}

/// What the report was shown and told.
#[derive(Default)]
struct Seen {
    ticks: Vec<Tick>,
    /// `RunEvent::Checkpoint`: number and bytes.
    checkpoints: Vec<(u64, u64)>,
    /// `RunEvent::CheckpointFailed`: the error.
    failures: Vec<String>,
    warnings: Vec<String>,
}

/// A report that observes the run.
#[derive(Clone, Default)]
struct Observing(Arc<Mutex<Seen>>);

impl Report for Observing {
    fn notice(&mut self, notice: Notice) {
        if notice.level() == Level::Warning {
            self.0.lock().unwrap().warnings.push(notice.to_string());
        }
    }

    fn observes(&self) -> bool {
        true
    }

    fn tick(&mut self, view: &RunView<'_>) {
        let tick = Tick {
            consumer_lag: view.consumer_lag,
            split_lag: (view.split_lag.iter())
                .map(|l| (l.topic.clone(), l.partition, l.records))
                .collect(),
            field_warnings: view.field_warnings,
            finished: view.finished,
        };
        self.0.lock().unwrap().ticks.push(tick);
    }

    fn event(&mut self, event: &RunEvent<'_>) {
        let mut seen = self.0.lock().unwrap();
        match event {
            RunEvent::Checkpoint { number, bytes, .. } => seen.checkpoints.push((*number, *bytes)),
            RunEvent::CheckpointFailed { error } => seen.failures.push(error.to_string()),
            _ => {}
        }
    }
}

fn scratch(name: &str) -> cepheid_testkit::Scratch {
    cepheid_testkit::Scratch::new(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("observed_{name}_{}", std::process::id())),
    )
}

/// A match per user (`a` then `b`), and a pattern reading `nn`, which no
/// event has (they have `n`).
fn rules() -> Rules {
    Rules::parse(
        "r.cep",
        "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }\npattern typo { match x where x: nn == 1 }\n",
    )
    .expect("parses")
}

fn config(dir: &Path) -> Config {
    let mut config = Config::new(Input::File(PathBuf::from("splits")), Vec::new());
    config.checkpoint = Some(dir.join("ckpt"));
    config.checkpoint_every = Every {
        time: Some(Duration::from_millis(50)),
        lines: None,
    };
    config.output = Some(dir.join("out.jsonl"));
    config.field_warnings = Some(100);
    config
}

/// Runs `config` on 2 workers over [`sources`] (into `sink` if one is
/// given), stopped after `stop_after`; what the report saw.
fn run(config: &Config, sink: Option<Box<dyn Sink>>, stop_after: Duration) -> Seen {
    let report = Observing::default();
    let scale = Scale {
        workers: 2,
        ..Scale::default()
    };
    let cluster = Box::new(Cluster::new(scale));
    let told = Box::new(report.clone());
    let run = Runtime::on_cluster(
        config.clone(),
        &rules(),
        cluster,
        Some(sources()),
        sink,
        told,
    )
    .expect("starts");
    assert!(run.stoppable(), "live sources");
    let handle = run.handle();
    let stop = std::thread::spawn(move || {
        std::thread::sleep(stop_after);
        handle.stop("the test");
    });
    let summary = run.run();
    assert!(!summary.uncounted, "{:?}", summary.end);
    stop.join().expect("stops");
    let seen = std::mem::take(&mut *report.0.lock().unwrap());
    seen
}

/// The number in the marker of the last complete cut in `ckpt`, and the
/// bytes of its files.
fn last_cut(ckpt: &Path) -> (u64, u64) {
    use cepheid_runtime::checkpoint::store;
    let newest = store::kept(ckpt).expect("whole checkpoints");
    let number = newest.first().expect("a complete cut").marker().number();
    let bytes = std::fs::read_dir(store::cut_dir(ckpt, number))
        .unwrap()
        .flatten()
        .map(|f| f.metadata().unwrap().len())
        .sum();
    (number, bytes)
}

#[test]
fn cuts_lag_and_field_warnings_of_workers_are_shown_to_the_observer() {
    let dir = scratch("cuts_lag_fields");
    // (the sources' lag is asked at most once a second: long enough to see
    // it after everything was read)
    let seen = run(&config(&dir), None, Duration::from_millis(2_500));

    // Each cut once, numbered from 1 on, the last (taken as the run
    // stopped) the folder's, with its bytes.
    let numbers: Vec<u64> = seen.checkpoints.iter().map(|(n, _)| *n).collect();
    assert!(numbers.len() >= 2, "{numbers:?}");
    assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        seen.checkpoints.last().copied(),
        Some(last_cut(&dir.join("ckpt")))
    );
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);

    // The lag: every split of both workers' sources, 0 at the end.
    let last = seen.ticks.last().expect("ticks");
    assert!(last.finished);
    assert_eq!(last.consumer_lag, Some(0), "{last:?}");
    let splits: Vec<(String, u32, u64)> = (0..3).map(|p| ("t".to_string(), p, 0)).collect();
    assert_eq!(last.split_lag, splits);
    // Before that, the lag of what had not been read yet (its first
    // figure: after the first batch of each source).
    assert!(
        seen.ticks
            .iter()
            .any(|t| t.consumer_lag.is_some_and(|l| l > 0)),
        "{:?}",
        seen.ticks
    );
    // Never a sum of some of the sources: all three splits or none.
    assert!(
        seen.ticks.iter().all(|t| t.split_lag.len() % 3 == 0),
        "{:?}",
        seen.ticks
    );

    // `nn` occurs in none of the events: said once, counted.
    assert_eq!(seen.warnings.len(), 1, "{:?}", seen.warnings);
    let warning = &seen.warnings[0];
    assert!(
        warning.starts_with("warning: r.cep:2:33: pattern `typo`, the condition of stage `x`: field `nn` never occurs in ")
            && warning.ends_with(" events; did you mean `n`?"),
        "{warning}"
    );
    assert_eq!(last.field_warnings, 1);
}

/// A sink that refuses the commit of its second cut.
struct Refusing {
    calls: Arc<Mutex<Vec<String>>>,
}

impl Sink for Refusing {
    fn describe(&self, _: Kind) -> String {
        "refusing".to_string()
    }

    fn write(&mut self, _: Kind, _: &[u8], _: &[u8]) -> Result<(), SinkError> {
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

    fn commit(&mut self, checkpoint: u64, _: &Position) -> Result<(), SinkError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("commit {checkpoint}"));
        if checkpoint == 2 {
            return Err(SinkError {
                target: "refusing".to_string(),
                late: false,
                source: std::io::Error::other("the commit is refused"),
            });
        }
        Ok(())
    }

    fn join_positions(&self, shares: &[Position]) -> Result<Position, SinkError> {
        Ok(shares.first().cloned().unwrap_or(Position::None))
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(kept.len())
    }
}

#[test]
fn a_cut_the_sink_refuses_is_said_as_a_failure() {
    let dir = scratch("refused");
    let mut config = config(&dir);
    config.output = None;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sink = Refusing {
        calls: Arc::clone(&calls),
    };
    let seen = run(&config, Some(Box::new(sink)), Duration::from_millis(1_500));
    let calls = calls.lock().unwrap().clone();
    assert!(calls.contains(&"commit 2".to_string()), "{calls:?}");
    // The first cut committed, the second refused (the run stops there,
    // and completes no cut after it).
    let numbers: Vec<u64> = seen.checkpoints.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1], "{calls:?}");
    assert_eq!(seen.failures.len(), 1, "{:?}", seen.failures);
    assert!(
        seen.failures[0].contains("the commit is refused"),
        "{:?}",
        seen.failures
    );
}
