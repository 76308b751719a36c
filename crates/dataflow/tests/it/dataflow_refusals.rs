//! What a run on workers refuses, through the runtime's one entry point
//! (`Runtime::on_cluster`) and the cluster's check (`Cluster::check`, which
//! the command asks before a Kafka broker is asked): what one engine's run
//! refuses, the same error in the same words; what the workers alone do
//! not take, said once with its reason; and what they take, taken.

use std::sync::{Arc, Mutex};

use cepheid_dataflow::run::{Cluster, Error, Refusal, Scale};
use cepheid_engine::Rules;
use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState};
use cepheid_runtime::source::{Origin, Position, RawBatch, ReadOutcome, Source, SourceError};
use cepheid_runtime::{
    Cluster as _, Config, Conflict, Input, Level, Notice, Notices, Report, Runtime, Time,
};

fn rules() -> Rules {
    Rules::parse(
        "p.cep",
        "pattern p {\n partition by k\n match a followed by b\n where\n a: type == \"a\"\n b: type == \"b\"\n}",
    )
    .unwrap()
}

/// The run of `config` on `scale` into `sink`, opened (or why not).
fn open(
    config: &Config,
    scale: Scale,
    sink: Option<Box<dyn Sink>>,
) -> Result<Runtime, cepheid_runtime::Error> {
    let cluster = Box::new(Cluster::new(scale));
    let report = Box::new(Notices::default());
    Runtime::on_cluster(config.clone(), &rules(), cluster, None, sink, report)
}

/// The refusal of the workers in `e`, if it is one.
fn refusal(e: &cepheid_runtime::Error) -> Option<Refusal> {
    let cepheid_runtime::Error::Cluster(e) = e else {
        return None;
    };
    let e: &(dyn std::error::Error + 'static) = &**e;
    match e.downcast_ref::<Error>()? {
        Error::Refused(refusal) => Some(refusal.clone()),
        _ => None,
    }
}

/// `Cluster::check` of `config` on `scale`: the refusal, if any.
fn checked(config: &Config, scale: Scale, sink: bool) -> Option<Refusal> {
    let e = Cluster::new(scale).check(config, sink).err()?;
    assert!(e.is_usage(), "{e}");
    Some(refusal(&e).unwrap_or_else(|| panic!("not a refusal: {e}")))
}

fn plain() -> Config {
    let mut config = Config::new(Input::file("events.jsonl"), Vec::new());
    config.output = Some("out.jsonl".into());
    config
}

#[test]
fn what_the_workers_cannot_read_is_refused_not_ignored() {
    let with = |set: fn(&mut Config)| {
        let mut config = plain();
        set(&mut config);
        config
    };
    assert_eq!(checked(&plain(), Scale::default(), false), None);
    // Watched pattern paths of a file read in chunks: taken (the first
    // worker of process 0 to look reads them again).
    let watch = with(|c| c.watch = true);
    assert_eq!(checked(&watch, Scale::default(), false), None);
    // Rule changes of every origin are taken with checkpoints (a cut
    // keeps the rules in force and the changes pending), and a source's
    // rules stream without them.
    let taken = [
        with(|c| {
            c.rules_from_stream = true;
            c.checkpoint = Some("checkpoints".into());
        }),
        with(|c| {
            c.source_rules = true;
            c.checkpoint = Some("checkpoints".into());
        }),
        with(|c| {
            (c.watch, c.follow) = (true, true);
            c.checkpoint = Some("checkpoints".into());
        }),
        with(|c| c.source_rules = true),
    ];
    for config in &taken {
        assert_eq!(checked(config, Scale::default(), false), None, "{config:?}");
    }
    let processing = with(|c| c.time = Time::Processing);
    assert_eq!(
        checked(&processing, Scale::default(), true),
        Some(Refusal::ProcessingTime)
    );
}

/// A source of the library's user: its lines in one split, then its end.
struct Lines(Vec<String>, usize);

impl Source for Lines {
    fn describe(&self) -> String {
        "lines".to_string()
    }
    fn read(
        &mut self,
        batch: &mut RawBatch,
        _: std::time::Duration,
    ) -> Result<ReadOutcome, SourceError> {
        let Some(line) = self.0.get(self.1) else {
            return Ok(ReadOutcome::Ended);
        };
        let origin = Origin::Offset {
            partition: 0,
            offset: self.1 as i64,
        };
        batch.push(line.as_bytes(), origin, None, 0);
        self.1 += 1;
        Ok(ReadOutcome::Delivered)
    }
    fn position(&self) -> Position {
        Position::default()
    }
    fn seek(&mut self, _: &Position) -> Result<(), SourceError> {
        Ok(())
    }
}

/// Watched pattern paths with sources of the library's user (a Kafka
/// source's partitions, one share per worker; refused before: no one
/// reader took the reload): process 0's first reader takes a reload, once
/// for every worker; said and counted once.
#[test]
fn a_reload_with_sources_of_the_library_user_is_taken_once() {
    let dir = std::env::temp_dir().join(format!("cepheid-sources-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let patterns = dir.join("p.cep");
    // (the files' rules: `b` is `c` now; the events have no `b`)
    std::fs::write(
        &patterns,
        "pattern p {\n partition by k\n match a followed by b\n where\n a: type == \"a\"\n b: type == \"c\"\n}\n",
    )
    .unwrap();
    let mut config = Config::new(Input::file("kafka://test/events"), vec![patterns]);
    config.output = Some(dir.join("out.jsonl"));
    config.watch = true;
    let lines = |worker: usize| -> Vec<String> {
        (0..1_000)
            .map(|i| {
                let kind = if i % 2 == 0 { "a" } else { "c" };
                format!(
                    "{{\"ts\":{i},\"k\":\"w{worker}k{}\",\"type\":\"{kind}\"}}",
                    i % 5
                )
            })
            .collect()
    };
    let sources: cepheid_runtime::Sources = (0..2)
        .map(|w| Some(Box::new(Lines(lines(w), 0)) as Box<dyn Source>))
        .collect();
    let scale = Scale {
        workers: 2,
        ..Scale::default()
    };
    let (summary, said) = reloaded_first(config, scale, Some(sources));
    let reloaded = said.iter().filter(|s| s.contains("rules reloaded")).count();
    assert_eq!(reloaded, 1, "{said:?}");
    // (matches of the new rules only: the old ones match nothing here)
    assert!(summary.matches > 0, "{said:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Event time from the records' own times read from a file: refused by
/// the runtime for both executors, in the same words.
#[test]
fn record_time_from_a_file_is_refused_as_on_one_engine() {
    let mut config = plain();
    config.time = Time::Record;
    let workers = open(&config, Scale::default(), None)
        .err()
        .expect("refused");
    let one = Runtime::new(config, &rules(), Box::new(Notices::default()))
        .err()
        .expect("refused");
    assert!(
        matches!(workers, cepheid_runtime::Error::Source(_)),
        "{workers}"
    );
    assert_eq!(workers.to_string(), one.to_string());
}

#[test]
fn a_sink_is_refused_with_output_per_worker_before_anything_opens_and_taken_on_several_processes() {
    let config = plain();
    let one = Scale::default();
    assert_eq!(checked(&config, one.clone(), true), None);
    assert_eq!(Cluster::new(one.clone()).workers(), (0..1, 1));
    let processes = Scale {
        processes: Some(2),
        ..Scale::default()
    };
    // (without checkpoints, process 0's sink takes every record)
    assert_eq!(checked(&config, processes.clone(), true), None);
    let mut checkpointed = config.clone();
    checkpointed.checkpoint = Some("ckpt".into());
    // (with checkpoints too: process 0's sink chooses the cut, the others
    // ask theirs which one it committed)
    assert_eq!(checked(&checkpointed, processes.clone(), true), None);
    assert_eq!(checked(&checkpointed, one, true), None);
    let second = Scale {
        workers: 3,
        process: 1,
        ..processes.clone()
    };
    assert_eq!(Cluster::new(second).workers(), (3..6, 6));
    // (into files, several processes are fine)
    assert_eq!(checked(&config, processes, false), None);
    let per_worker = Scale {
        output_per_worker: true,
        ..Scale::default()
    };
    assert_eq!(
        checked(&config, per_worker, true),
        Some(Refusal::SinkOutputPerWorker)
    );
}

/// A sink that delivers only what checkpoints commit.
struct Committing;

impl Sink for Committing {
    fn describe(&self, _kind: Kind) -> String {
        "kafka:alerts".to_string()
    }
    fn write(&mut self, _kind: Kind, _key: &[u8], _record: &[u8]) -> Result<(), SinkError> {
        panic!("nothing is written")
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }
    fn commits_with_checkpoints(&self) -> bool {
        true
    }
    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(kept.len())
    }
}

/// Such a sink on workers without a checkpoint folder: refused as on one
/// engine, before anything is read.
#[test]
fn a_sink_that_commits_with_checkpoints_is_refused_without_a_checkpoint_folder() {
    let config = Config::new(Input::file("events.jsonl"), Vec::new());
    match open(&config, Scale::default(), Some(Box::new(Committing))) {
        Err(cepheid_runtime::Error::Conflict(Conflict::SinkNeedsCheckpoints { sink })) => {
            assert_eq!(sink, "kafka:alerts");
        }
        Err(e) => panic!("not the refusal: {e}"),
        Ok(_) => panic!("a run whose sink would never commit was accepted"),
    }
}

/// What `Config::check` refuses, the run on workers refuses too when it
/// opens, as one engine's `Runtime` does: nothing is written.
#[test]
fn the_workers_refuse_what_config_check_refuses() {
    let dir = std::env::temp_dir().join(format!("cepheid-same-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "{\"ts\":1}\n").unwrap();
    let mut config = Config::new(Input::file(&events), Vec::new());
    config.output = Some(events.clone());
    match open(&config, Scale::default(), None) {
        Err(cepheid_runtime::Error::Conflict(Conflict::SameFile { .. })) => {}
        Err(e) => panic!("not the refusal: {e}"),
        Ok(_) => panic!("a run writing over its input was accepted"),
    }
    assert_eq!(std::fs::read_to_string(&events).unwrap(), "{\"ts\":1}\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What one engine alone does is refused on workers, through the same
/// entry point, before anything is opened: a run started from a
/// checkpoint, audit records of changes of lists.
#[test]
fn the_workers_refuse_what_one_engine_alone_does() {
    let mut start_from = plain();
    start_from.start_from = Some("checkpoints".into());
    let mut audit_lists = plain();
    audit_lists.audit = Some("audit.jsonl".into());
    audit_lists.audit_lists = true;
    for (config, want) in [
        (start_from, Conflict::StartFromOnWorkers),
        (audit_lists, Conflict::AuditListsOnWorkers),
    ] {
        match open(&config, Scale::default(), None) {
            Err(cepheid_runtime::Error::Conflict(got)) => assert_eq!(got, want),
            Err(e) => panic!("not the refusal {want:?}: {e}"),
            Ok(_) => panic!("{want:?} was accepted"),
        }
    }
}

/// A report whose notices the test reads after the run.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<Notice>>>);

impl Report for Kept {
    fn notice(&mut self, notice: Notice) {
        self.0.lock().unwrap().push(notice);
    }
}

/// The keys over `Config::max_runs_per_key` are said as one engine says
/// them, from one place per process: warnings, the first ten keys named,
/// then that further keys are only counted (they were info lines on
/// workers, ten per worker, and the last line was missing).
#[test]
fn keys_over_the_limit_are_said_on_workers_as_on_one_engine() {
    let dir = std::env::temp_dir().join(format!("cepheid-told-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    let mut text = String::new();
    for k in 0..12 {
        for t in 0..3 {
            text += &format!("{{\"ts\":{},\"k\":\"k{k}\",\"type\":\"a\"}}\n", k * 10 + t);
        }
    }
    std::fs::write(&events, text).unwrap();
    let mut config = Config::new(Input::file(&events), Vec::new());
    config.output = Some(dir.join("out.jsonl"));
    config.max_runs_per_key = 2;
    let said = |notices: &Kept| -> Vec<(Level, String)> {
        let notices = notices.0.lock().unwrap();
        notices
            .iter()
            .filter(|n| {
                n.as_str().contains("partial matches; the oldest")
                    || n.as_str().contains("further keys")
            })
            .map(|n| (n.level(), n.as_str().trim_end().to_string()))
            .collect()
    };
    let single = Kept::default();
    let runtime = Runtime::new(config.clone(), &rules(), Box::new(single.clone())).unwrap();
    assert!(runtime.run().error().is_none());
    let scale = Scale {
        workers: 2,
        ..Scale::default()
    };
    let workers = Kept::default();
    let cluster = Box::new(Cluster::new(scale));
    let report = Box::new(workers.clone());
    let runtime = Runtime::on_cluster(config, &rules(), cluster, None, None, report).unwrap();
    assert!(runtime.run().error().is_none());
    let (single, workers) = (said(&single), said(&workers));
    for said in [&single, &workers] {
        assert_eq!(said.len(), 11, "{said:?}");
        assert!(
            said.iter().all(|(level, _)| *level == Level::Warning),
            "{said:?}"
        );
        assert_eq!(
            said[10].1,
            "cepheid: further keys over the limit are only counted in the summary"
        );
    }
    // Ten distinct keys named in the same words (which ten depends on the
    // order the workers meet them).
    for said in [&single, &workers] {
        let mut keys: Vec<&str> = said[..10]
            .iter()
            .map(|(_, text)| {
                let rest = text.strip_prefix("cepheid: pattern `p`, key [\"").unwrap();
                let (key, tail) = rest.split_once("\"]").unwrap();
                assert_eq!(
                    tail,
                    ": more than 2 partial matches; the oldest are dropped (`Config::max_runs_per_key`; raise it to keep them)"
                );
                key
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 10, "{said:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `Config::watch` over a file read in parts (refused before): a reload
/// asked through the handle is read by the first part to look (before its
/// first line here) and put in force on every worker, said and counted as
/// one engine says and counts it.
#[test]
fn a_reload_of_a_file_read_in_parts_is_taken() {
    let dir = std::env::temp_dir().join(format!("cepheid-parts-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (events, patterns) = (dir.join("events.jsonl"), dir.join("p.cep"));
    let text: String = (0..20_000)
        .map(|i| format!("{{\"ts\":{i},\"k\":\"k{}\",\"type\":\"a\"}}\n", i % 7))
        .collect();
    std::fs::write(&events, text).unwrap();
    std::fs::write(
        &patterns,
        "pattern p {\n partition by k\n match a followed by b\n where\n a: type == \"a\"\n b: type == \"b\"\n}\n",
    )
    .unwrap();
    let mut config = Config::new(Input::file(&events), vec![patterns.clone()]);
    config.output = Some(dir.join("out.jsonl"));
    config.watch = true;
    // (the file's rules: `b` is `a` now)
    std::fs::write(
        &patterns,
        "pattern p {\n partition by k\n match a followed by b\n where\n a: type == \"a\"\n b: type == \"a\"\n}\n",
    )
    .unwrap();
    let scale = Scale {
        workers: 2,
        chunk_bytes: 4096,
        ..Scale::default()
    };
    let (summary, said) = reloaded_first(config.clone(), scale, None);
    let reloaded = "cepheid: the test: rules reloaded:\n  p: changed (version 2)";
    assert!(said.iter().any(|s| s == reloaded), "{said:?}");
    // The new rules from the start, as one engine reloaded before its
    // first line puts them.
    config.output = Some(dir.join("one.jsonl"));
    let one = Runtime::new(config, &rules(), Box::new(Notices::default())).unwrap();
    one.handle().reload("the test");
    let one = one.run();
    assert_eq!(one.reloads, 1);
    assert!(summary.matches > 0);
    assert_eq!(summary.matches, one.matches);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The run of `config` on `scale` (from `sources`, if given) with a reload
/// asked through its handle before it starts: its summary (no error, one
/// reload, none refused) and what it said.
fn reloaded_first(
    config: Config,
    scale: Scale,
    sources: Option<cepheid_runtime::Sources>,
) -> (cepheid_runtime::Summary, Vec<String>) {
    let said = Kept::default();
    let cluster = Box::new(Cluster::new(scale));
    let report = Box::new(said.clone());
    let runtime = Runtime::on_cluster(config, &rules(), cluster, sources, None, report);
    let runtime = runtime.unwrap();
    assert!(runtime.stoppable());
    runtime.handle().reload("the test");
    let summary = runtime.run();
    assert!(summary.error().is_none(), "{:?}", summary.end);
    assert_eq!((summary.reloads, summary.reloads_refused), (1, 0));
    let said = (said.0.lock().unwrap().iter())
        .map(|n| n.as_str().trim_end().to_string())
        .collect();
    (summary, said)
}
