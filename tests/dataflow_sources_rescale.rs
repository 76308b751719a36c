//! `cepheid_dataflow::run::Workers::with_sources`: a cut of a library
//! user's sources on workers resumes on another number of workers when the
//! sources name their splits (`Source::split_names`,
//! `Source::position_of_shares`), each split going on from the place of
//! the old source that read it; sources that do not name them, or a cut
//! whose places do not, are refused (exit 5's `Mismatch`), nothing read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cepheid_dataflow::run::{Error, Mismatch, Scale, Workers};
use cepheid_engine::Rules;
use cepheid_runtime::source::{Origin, Position, RawBatch, ReadOutcome, Source, SourceError};
use cepheid_runtime::{Config, Every, Input, Notices};

/// Records per split.
const PER_SPLIT: usize = 300;

/// Splits `s0`, `s1`, `s2` in memory, a source reading some of them (a
/// share): live (it never ends), 10 records a read; its position is the
/// next record of each of its splits, as JSON.
struct Shares {
    splits: Vec<(String, Vec<String>)>,
    next: Vec<usize>,
    named: bool,
}

/// The lines of split `s`: events of users of their own, a millisecond
/// apart, each user's `a` then `b` (a match each).
fn split_lines(s: usize) -> Vec<String> {
    (0..PER_SPLIT)
        .map(|i| {
            let user = format!("u{s}-{}", i / 2);
            let n = 1 + i % 2;
            format!(r#"{{"ts":{},"user":"{user}","n":{n}}}"#, 1000 + i)
        })
        .collect()
}

impl Shares {
    fn of(splits: &[usize], named: bool) -> Shares {
        Shares {
            splits: (splits.iter())
                .map(|&s| (format!("s{s}"), split_lines(s)))
                .collect(),
            next: vec![0; splits.len()],
            named,
        }
    }

    fn map(position: &Position) -> BTreeMap<String, usize> {
        match position {
            Position::Bytes(bytes) => serde_json::from_slice(bytes).expect("a map"),
            _ => BTreeMap::new(),
        }
    }
}

impl Source for Shares {
    fn describe(&self) -> String {
        "shares".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, wait: Duration) -> Result<ReadOutcome, SourceError> {
        let mut delivered = false;
        for _ in 0..10 {
            for (split, (_, lines)) in self.splits.iter().enumerate() {
                let at = self.next[split];
                if let Some(line) = lines.get(at) {
                    let origin = Origin::Offset {
                        partition: split as u32,
                        offset: at as i64,
                    };
                    batch.push(line.as_bytes(), origin, None, split as u32);
                    self.next[split] += 1;
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
        let map: BTreeMap<&str, usize> = (self.splits.iter())
            .zip(&self.next)
            .map(|((name, _), next)| (name.as_str(), *next))
            .collect();
        Position::Bytes(serde_json::to_vec(&map).expect("serializes"))
    }

    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        let map = Shares::map(position);
        for ((name, _), next) in self.splits.iter().zip(&mut self.next) {
            if let Some(at) = map.get(name) {
                *next = *at;
            }
        }
        Ok(())
    }

    fn splits(&self) -> usize {
        self.splits.len()
    }

    fn split_names(&self) -> Option<Vec<String>> {
        let names = self.splits.iter().map(|(name, _)| name.clone());
        self.named.then(|| names.collect())
    }

    fn position_of_shares(&self, positions: &[Position]) -> Result<Position, SourceError> {
        let mut mine = BTreeMap::new();
        for map in positions.iter().map(Shares::map) {
            for (name, _) in &self.splits {
                if let Some(at) = map.get(name) {
                    mine.insert(name.clone(), *at);
                }
            }
        }
        Ok(Position::Bytes(
            serde_json::to_vec(&mine).expect("serializes"),
        ))
    }
}

/// The sources of `workers` workers: split `i` to worker `i mod workers`.
fn sources(workers: usize, named: bool) -> Vec<Option<Box<dyn Source>>> {
    (0..workers)
        .map(|w| {
            let mine: Vec<usize> = (0..3).filter(|s| s % workers == w).collect();
            (!mine.is_empty()).then(|| Box::new(Shares::of(&mine, named)) as Box<dyn Source>)
        })
        .collect()
}

fn config(dir: &Path) -> Config {
    let mut config = Config::new(Input::File(PathBuf::from("shares")), Vec::new());
    config.checkpoint = Some(dir.join("ckpt"));
    config.checkpoint_every = Every {
        time: Some(Duration::from_millis(50)),
        lines: None,
    };
    config.output = Some(dir.join("out.jsonl"));
    config
}

/// A run on `workers` over their shares, stopped after a while (its last
/// cut): its summary's events read, or why it could not run.
fn run(dir: &Path, workers: usize, named: bool) -> Result<u64, Error> {
    let rules = Rules::parse(
        "r.cep",
        "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }",
    )
    .expect("parses");
    let scale = Scale {
        workers,
        ..Scale::default()
    };
    let report = Box::new(Notices::default());
    let run = Workers::new(&config(dir), &scale, &rules, report)?
        .with_sources(sources(workers, named))?;
    let handle = run.handle().expect("live sources");
    let stop = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        handle.stop("the test");
    });
    let outcome = run.run();
    stop.join().expect("stops");
    let summary = outcome?.summary.expect("a summary");
    Ok(summary.events)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cepheid-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder");
    dir
}

#[test]
fn named_splits_resume_on_another_number_of_workers_each_from_its_old_place() {
    let dir = scratch("sources-rescale");
    // Every record read by the first run (each source reads 30 a
    // millisecond or so), then on 3 workers, then on 1: none read twice.
    assert_eq!(run(&dir, 2, true).expect("runs"), 3 * PER_SPLIT as u64);
    let out = std::fs::read_to_string(dir.join("out.jsonl")).expect("an output");
    // A match per user but each split's last, whose `b` (the split's
    // largest time) waits for event time to pass it.
    assert_eq!(out.lines().count(), 3 * PER_SPLIT / 2 - 3);
    for workers in [3, 1] {
        assert_eq!(
            run(&dir, workers, true).expect("runs"),
            3 * PER_SPLIT as u64
        );
        let again = std::fs::read_to_string(dir.join("out.jsonl")).expect("an output");
        assert_eq!(again, out, "{workers}: nothing more, nothing lost");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sources_or_places_without_names_resume_on_their_number_of_workers_only() {
    let dir = scratch("sources-unnamed");
    assert_eq!(run(&dir, 2, false).expect("runs"), 3 * PER_SPLIT as u64);
    let out = std::fs::read(dir.join("out.jsonl")).expect("an output");
    // Sources without names, on 3 workers.
    match run(&dir, 3, false) {
        Err(Error::Resume {
            why: Mismatch::SourcesWorkers { then: 2, now: 3 },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Sources with names, but the cut's places have none.
    match run(&dir, 3, true) {
        Err(Error::Resume {
            why: Mismatch::Shares { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read(dir.join("out.jsonl")).expect("an output"),
        out
    );
    // On its own number of workers it goes on.
    assert_eq!(run(&dir, 2, false).expect("runs"), 3 * PER_SPLIT as u64);
    let _ = std::fs::remove_dir_all(&dir);
}
