//! `Runtime::on_cluster` with sources of its own: a cut of a library
//! user's sources on workers resumes on another number of workers when the
//! sources name their splits (`Source::split_names`,
//! `Source::position_of_shares`), each split going on from the place of
//! the old source that read it; sources that do not name them, or a cut
//! whose places do not, are refused (exit 5's `Unusable`), nothing read.
//! And a library user's transactional sink on workers
//! (`Runtime::on_cluster` with a sink): the cut protocol, and the resume from the cut
//! it committed last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_dataflow::run::{Cluster, Scale};
use cepheid_engine::Rules;
use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState};
use cepheid_runtime::source::{Origin, Position, RawBatch, ReadOutcome, Source, SourceError};
use cepheid_runtime::Runtime;
use cepheid_runtime::Unusable;
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
    /// Waited before each read that delivers (so that event time moves
    /// on over several cuts).
    pace: Duration,
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
            pace: Duration::ZERO,
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
        if self
            .next
            .iter()
            .zip(&self.splits)
            .any(|(n, (_, l))| *n < l.len())
        {
            std::thread::sleep(self.pace);
        }
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
fn run(dir: &Path, workers: usize, named: bool) -> Result<u64, cepheid_runtime::Error> {
    let (rules, scale) = rules_on(workers);
    let report = Box::new(Notices::default());
    let sources = Some(sources(workers, named));
    let cluster = Box::new(Cluster::new(scale));
    let run = Runtime::on_cluster(config(dir), &rules, cluster, sources, None, report)?;
    assert!(run.stoppable(), "live sources");
    let handle = run.handle();
    let stop = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        handle.stop("the test");
    });
    let summary = run.run();
    stop.join().expect("stops");
    assert!(!summary.uncounted, "{:?}", summary.end);
    Ok(summary.events)
}

/// The test's pattern (a match per user: `a` then `b`), on `workers`
/// workers.
fn rules_on(workers: usize) -> (Rules, Scale) {
    let rules = Rules::parse(
        "r.cep",
        "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }",
    )
    .expect("parses");
    let scale = Scale {
        workers,
        ..Scale::default()
    };
    (rules, scale)
}

fn scratch(name: &str) -> cepheid_testkit::Scratch {
    cepheid_testkit::Scratch::new(
        std::env::temp_dir().join(format!("cepheid-{name}-{}", std::process::id())),
    )
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
    let unnamed = run(&dir, 3, false).expect_err("refused");
    match &unnamed {
        cepheid_runtime::Error::Resume {
            why: Unusable::SourcesWorkers { then: 2, now: 3 },
            ..
        } => {}
        _ => panic!("{unnamed:?}"),
    }
    assert!(unnamed.is_checkpoint());
    // Sources with names, but the cut's places have none.
    let unplaced = run(&dir, 3, true).expect_err("refused");
    match &unplaced {
        cepheid_runtime::Error::Resume {
            why: Unusable::Shares { .. },
            ..
        } => {}
        _ => panic!("{unplaced:?}"),
    }
    assert_eq!(
        std::fs::read(dir.join("out.jsonl")).expect("an output"),
        out
    );
    // On its own number of workers it goes on.
    assert_eq!(run(&dir, 2, false).expect("runs"), 3 * PER_SPLIT as u64);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a [`Journal`] was given, kept over the runs as a transactional
/// store would: the records of the open interval (`pending`), those of
/// the committed ones, and the number of the last commit.
#[derive(Default)]
struct Ledger {
    pending: Vec<(Kind, String, String)>,
    committed: Vec<(Kind, String, String)>,
    last: Option<u64>,
    /// The commit that fails (as a transaction whose commit is refused:
    /// its records are dropped).
    fail_at: Option<u64>,
    failed: bool,
    /// What happened, in order (`prepare N`, `commit N`, `recover ...`).
    calls: Vec<String>,
    /// The position of the last commit.
    position: BTreeMap<String, usize>,
}

/// A library user's transactional sink (`Runtime::on_cluster` with a sink): records
/// are held until a commit takes them; a commit finds its cut complete,
/// with its number, in the folder (and the cut before it still there);
/// resuming, it names the cut it committed last.
struct Journal {
    ledger: Arc<Mutex<Ledger>>,
    ckpt: PathBuf,
}

/// The numbers of the complete cuts in `ckpt` (from their markers, each
/// read whole).
fn numbers(ckpt: &Path) -> Vec<u64> {
    let kept = cepheid_runtime::checkpoint::store::kept(ckpt).expect("whole checkpoints");
    let mut found: Vec<u64> = kept.iter().map(|c| c.marker().number()).collect();
    found.sort_unstable();
    found
}

impl Journal {
    fn error(why: &str) -> SinkError {
        SinkError {
            target: "journal".to_string(),
            late: false,
            source: std::io::Error::other(why.to_string()),
        }
    }
}

impl Sink for Journal {
    fn describe(&self, _: Kind) -> String {
        "journal".to_string()
    }

    fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        let key = String::from_utf8(key.to_vec()).expect("UTF-8");
        let record = String::from_utf8(record.to_vec()).expect("UTF-8");
        self.ledger
            .lock()
            .unwrap()
            .pending
            .push((kind, key, record));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError> {
        let mut ledger = self.ledger.lock().unwrap();
        ledger.calls.push(format!("prepare {checkpoint}"));
        Ok(SinkState {
            data: checkpoint.to_le_bytes().to_vec(),
            ..SinkState::default()
        })
    }

    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        let mut ledger = self.ledger.lock().unwrap();
        ledger.calls.push(format!("commit {checkpoint}"));
        // The cut is durable before its commit, and the one before it is
        // still kept.
        let kept = numbers(&self.ckpt);
        assert!(kept.contains(&checkpoint), "commit {checkpoint}: {kept:?}");
        if let Some(before) = ledger.last {
            assert!(kept.contains(&before), "commit {checkpoint}: {kept:?}");
        }
        if ledger.fail_at == Some(checkpoint) {
            ledger.failed = true;
            ledger.pending.clear();
            return Err(Journal::error("the commit is refused"));
        }
        let pending = std::mem::take(&mut ledger.pending);
        ledger.committed.extend(pending);
        ledger.last = Some(checkpoint);
        ledger.position = Shares::map(source);
        Ok(())
    }

    fn commits_at_end(&self) -> bool {
        true
    }

    fn join_positions(&self, shares: &[Position]) -> Result<Position, SinkError> {
        let mut all = BTreeMap::new();
        for share in shares {
            for (name, at) in Shares::map(share) {
                if all.insert(name, at).is_some() {
                    return Err(Journal::error("two shares name one split"));
                }
            }
        }
        Ok(Position::Bytes(
            serde_json::to_vec(&all).expect("serializes"),
        ))
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        let mut ledger = self.ledger.lock().unwrap();
        ledger.pending.clear();
        let numbers: Vec<u64> = kept.iter().map(|k| k.number).collect();
        let found = match ledger.last {
            None => kept.len(),
            Some(n) => kept
                .iter()
                .position(|k| {
                    k.number == n
                        && k.sink.data == n.to_le_bytes()
                        && Shares::map(&k.source) == ledger.position
                })
                .ok_or_else(|| Journal::error("no kept cut is the one committed"))?,
        };
        ledger.calls.push(format!("recover {numbers:?} -> {found}"));
        Ok(found)
    }
}

/// A run on `workers` workers over their shares into `ledger`'s journal,
/// stopped after a while: its summary.
fn run_to_journal(
    dir: &Path,
    workers: usize,
    ledger: &Arc<Mutex<Ledger>>,
) -> Result<cepheid_runtime::Summary, cepheid_runtime::Error> {
    let (rules, scale) = rules_on(workers);
    let mut config = config(dir);
    config.output = None;
    let journal = Journal {
        ledger: Arc::clone(ledger),
        ckpt: dir.join("ckpt"),
    };
    let sources = Some(paced_sources(workers));
    let sink: Option<Box<dyn Sink>> = Some(Box::new(journal));
    let cluster = Box::new(Cluster::new(scale));
    let report = Box::new(Notices::default());
    let run = Runtime::on_cluster(config, &rules, cluster, sources, sink, report)?;
    let handle = run.handle();
    let stop = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        handle.stop("the test");
    });
    let summary = run.run();
    stop.join().expect("stops");
    assert!(!summary.uncounted, "{:?}", summary.end);
    Ok(summary)
}

/// The sources of `workers` workers as [`sources`] deals them, each read
/// waiting 5 ms while there is more to read.
fn paced_sources(workers: usize) -> Vec<Option<Box<dyn Source>>> {
    (0..workers)
        .map(|w| {
            let mine: Vec<usize> = (0..3).filter(|s| s % workers == w).collect();
            (!mine.is_empty()).then(|| {
                let mut shares = Shares::of(&mine, true);
                shares.pace = Duration::from_millis(5);
                Box::new(shares) as Box<dyn Source>
            })
        })
        .collect()
}

/// Each key's committed records, in order.
fn committed_by_key(ledger: &Arc<Mutex<Ledger>>) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (kind, key, record) in &ledger.lock().unwrap().committed {
        assert_eq!(*kind, Kind::Match);
        let value: serde_json::Value = serde_json::from_str(record).expect("a JSON record");
        assert_eq!(*key, value["key"].to_string(), "the record's key");
        by_key.entry(key.clone()).or_default().push(record.clone());
    }
    by_key
}

/// The transactional protocol of a sink on workers: each cut prepared,
/// made durable with its number, then committed with every split's
/// position, the cut before kept until then; a commit refused stops the
/// run, and the next run resumes from the cut the sink committed last
/// (the newer one deleted), on another number of workers, so that the
/// committed records are those of a run that was never refused.
#[test]
fn a_transactional_sink_on_workers_commits_each_cut_and_resumes_from_its_last_commit() {
    let whole = scratch("sink-whole");
    let reference = Arc::new(Mutex::new(Ledger::default()));
    let summary = run_to_journal(&whole, 2, &reference).expect("runs");
    assert_eq!(summary.events, 3 * PER_SPLIT as u64);
    {
        let ledger = reference.lock().unwrap();
        let n = ledger.last.expect("committed");
        // (a first start asks the sink too: it committed nothing yet)
        let expected: Vec<String> = std::iter::once("recover [] -> 0".to_string())
            .chain((1..=n).flat_map(|i| [format!("prepare {i}"), format!("commit {i}")]))
            .collect();
        assert_eq!(ledger.calls, expected);
        // The last commit, at the end: every split's position, all read.
        let all: BTreeMap<String, usize> = (0..3).map(|s| (format!("s{s}"), PER_SPLIT)).collect();
        assert_eq!(ledger.position, all);
        assert!(ledger.pending.is_empty());
        // A match per user but each split's last.
        assert_eq!(ledger.committed.len(), 3 * PER_SPLIT / 2 - 3);
    }
    assert_eq!(numbers(&whole.join("ckpt")).len(), 1, "only the last cut");

    let dir = scratch("sink-refused");
    let ledger = Arc::new(Mutex::new(Ledger {
        fail_at: Some(2),
        ..Ledger::default()
    }));
    let refused = run_to_journal(&dir, 2, &ledger).expect("runs");
    assert!(
        ledger.lock().unwrap().failed,
        "commit 2 came and was refused"
    );
    assert!(
        matches!(refused.end, cepheid_runtime::End::Failed(_)),
        "{:?}",
        refused.end
    );
    // Cut 2 is durable but not committed; cut 1 is kept beside it.
    assert_eq!(numbers(&dir.join("ckpt")), [1, 2]);
    ledger.lock().unwrap().fail_at = None;
    let resumed = run_to_journal(&dir, 3, &ledger).expect("resumes");
    assert_eq!(resumed.events, 3 * PER_SPLIT as u64);
    let calls = ledger.lock().unwrap().calls.clone();
    assert!(
        calls.contains(&"recover [2, 1] -> 1".to_string()),
        "{calls:?}"
    );
    // Numbered on from the cut resumed from: 2 again.
    let after: Vec<&String> = calls
        .iter()
        .skip_while(|c| *c != "recover [2, 1] -> 1")
        .collect();
    assert_eq!(
        after.get(1).map(|c| c.as_str()),
        Some("prepare 2"),
        "{calls:?}"
    );
    assert_eq!(committed_by_key(&ledger), committed_by_key(&reference));
    let _ = std::fs::remove_dir_all(&whole);
    let _ = std::fs::remove_dir_all(&dir);
}
