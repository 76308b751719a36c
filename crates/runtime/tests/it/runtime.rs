//! The runtime as a library user drives it: a source and a sink of one's
//! own, checkpoints through them, the file source (the split watermarks:
//! `split_watermarks.rs`).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_engine::Rules;

use crate::support::{scratch, RULES};
use crate::txn::Txn;
use cepheid_runtime::{
    Checkpoint, Config, End, FileSource, Input, Judged, Kind, Notices, Origin, Position, RawBatch,
    RawEntry, ReadOutcome, Runtime, Sink, SinkError, SinkState, Source, SourceError, Unapplied,
};

/// Lines from memory, its position the number of lines handed out.
struct Lines {
    lines: Vec<String>,
    next: usize,
    committed: Arc<Mutex<Vec<Position>>>,
}

impl Source for Lines {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, _wait: Duration) -> Result<ReadOutcome, SourceError> {
        let Some(line) = self.lines.get(self.next) else {
            return Ok(ReadOutcome::Ended);
        };
        self.next += 1;
        batch.push(line.as_bytes(), Origin::Line(self.next as u64), None, 0);
        Ok(ReadOutcome::Delivered)
    }

    fn position(&self) -> Position {
        Position::Bytes((self.next as u64).to_le_bytes().to_vec())
    }

    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        if let Position::Bytes(bytes) = position {
            self.next = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        }
        Ok(())
    }

    fn checkpoint_committed(&mut self, position: &Position) {
        self.committed.lock().unwrap().push(position.clone());
    }
}

/// Records in memory, and what it was told.
#[derive(Clone, Default)]
struct Memory {
    records: Arc<Mutex<Vec<(Kind, String, String)>>>,
    commits: Arc<Mutex<Vec<(u64, Position)>>>,
}

impl Sink for Memory {
    fn describe(&self, _kind: Kind) -> String {
        "memory".to_string()
    }

    fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        self.records
            .lock()
            .unwrap()
            .push((kind, text(key), text(record)));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }

    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        self.commits
            .lock()
            .unwrap()
            .push((checkpoint, source.clone()));
        Ok(())
    }

    fn recover(&mut self, _kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(0)
    }
}

fn run(
    lines: &[&str],
    dir: &std::path::Path,
    sink: &Memory,
) -> (cepheid_runtime::Summary, Vec<Position>) {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut config = Config::new(Input::Stdin, Vec::new());
    config.checkpoint = Some(dir.to_path_buf());
    config.checkpoint_every.time = None;
    config.checkpoint_every.lines = Some(1);
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    let committed = Arc::new(Mutex::new(Vec::new()));
    let source = Lines {
        lines: lines.iter().map(|l| l.to_string()).collect(),
        next: 0,
        committed: Arc::clone(&committed),
    };
    let runtime = Runtime::with_source(
        config,
        engine,
        Some(Box::new(source)),
        Some(Box::new(sink.clone())),
        Box::new(Notices::default()),
    )
    .unwrap();
    let summary = runtime.run();
    let committed = committed.lock().unwrap().clone();
    (summary, committed)
}

#[test]
fn a_source_and_a_sink_of_ones_own_take_part_in_checkpoints() {
    let dir = scratch("own");
    let sink = Memory::default();
    let lines = [
        r#"{"ts":1,"type":"a","k":"x"}"#,
        r#"{"ts":2,"type":"b","k":"x"}"#,
        r#"{"ts":3,"type":"a","k":"y"}"#,
    ];
    let (summary, committed) = run(&lines, &dir, &sink);
    assert!(matches!(summary.end, End::Input), "{:?}", summary.end);
    assert_eq!((summary.events, summary.matches), (3, 1));
    let records = sink.records.lock().unwrap().clone();
    assert_eq!(records.len(), 1);
    let (kind, key, record) = &records[0];
    assert_eq!((*kind, key.as_str()), (Kind::Match, r#"{"k":"x"}"#));
    assert!(record.starts_with(r#"{"kind":"match","pattern":"ab","key":{"k":"x"}"#));
    assert!(record.ends_with("}\n"));
    // Each checkpoint committed by the sink with the source's position,
    // then told to the source; numbered from 1.
    let commits = sink.commits.lock().unwrap().clone();
    assert!(!commits.is_empty());
    assert_eq!(commits[0].0, 1);
    assert_eq!(
        commits.last().unwrap().1,
        Position::Bytes(3u64.to_le_bytes().to_vec())
    );
    assert_eq!(committed.last(), Some(&commits.last().unwrap().1));
    // The previous checkpoint went once the sink committed.
    let kept = cepheid_runtime::checkpoint::store::complete(&dir).unwrap();
    assert_eq!(kept, [commits.last().unwrap().0]);

    // Resumed: the source sought to the position, nothing read again.
    let more = [
        lines[0],
        lines[1],
        lines[2],
        r#"{"ts":4,"type":"b","k":"y"}"#,
    ];
    let sink2 = Memory::default();
    let (summary, _) = run(&more, &dir, &sink2);
    assert_eq!(summary.events, 4, "the counts go on");
    let records = sink2.records.lock().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].1, r#"{"k":"y"}"#);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_source_hands_out_blocks_of_lines_and_seeks_back() {
    let dir = scratch("file");
    let path = dir.join("events.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}").unwrap();
    let mut source = FileSource::open(&path, false).unwrap();
    let mut batch = RawBatch::default();
    let mut records = Vec::new();
    let mut positions = Vec::new();
    loop {
        batch.clear();
        let outcome = source.read(&mut batch, Duration::ZERO).unwrap();
        for entry in batch.entries() {
            if let RawEntry::Record(r) = entry {
                records.push((r.origin.clone(), batch.payload(r).to_vec()));
            }
        }
        positions.push(source.position());
        if outcome == ReadOutcome::Ended {
            break;
        }
    }
    assert_eq!(
        records,
        [
            (Origin::Line(1), b"{\"a\":1}".to_vec()),
            (Origin::Line(2), b"{\"a\":2}".to_vec()),
            (Origin::Line(3), b"{\"a\":3}".to_vec()),
        ]
    );
    let Position::File(after_two) = &positions[0] else {
        panic!("{positions:?}")
    };
    assert_eq!((after_two.offset, after_two.lines), (16, 2));
    source.seek(&positions[0]).unwrap();
    batch.clear();
    while source.read(&mut batch, Duration::ZERO).unwrap() != ReadOutcome::Ended {}
    let [RawEntry::Record(r)] = batch.entries() else {
        panic!("{:?}", batch.entries())
    };
    assert_eq!(
        (r.origin.clone(), batch.payload(r)),
        (Origin::Line(3), &b"{\"a\":3}"[..])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every record in one read, as a Kafka source hands out many: records of
/// a partitioned log (`Origin::Offset`), each on its split, with the time
/// the source gives it.
struct Block {
    records: Vec<(u32, i64, Option<i64>, String)>,
    done: bool,
}

impl Source for Block {
    fn describe(&self) -> String {
        "block".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, _wait: Duration) -> Result<ReadOutcome, SourceError> {
        if self.done {
            return Ok(ReadOutcome::Ended);
        }
        self.done = true;
        for (split, offset, ts, text) in &self.records {
            let origin = Origin::Offset {
                partition: *split,
                offset: *offset,
            };
            batch.push(text.as_bytes(), origin, *ts, *split);
        }
        Ok(ReadOutcome::Delivered)
    }

    fn position(&self) -> Position {
        Position::Bytes(vec![u8::from(self.done)])
    }

    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        self.done = position == &Position::Bytes(vec![1]);
        Ok(())
    }

    fn splits(&self) -> usize {
        2
    }
}

/// The notices of a run, shared with the test.
#[derive(Clone, Default)]
struct Said(Arc<Mutex<Vec<String>>>);

impl cepheid_runtime::Report for Said {
    fn notice(&mut self, notice: cepheid_runtime::Notice) {
        self.0.lock().unwrap().push(notice.to_string());
    }
}

fn run_block(
    records: Vec<(u32, i64, Option<i64>, String)>,
    config: impl FnOnce(&mut Config),
) -> (
    cepheid_runtime::Summary,
    Vec<(Kind, String, String)>,
    Vec<String>,
) {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut c = Config::new(Input::Stdin, Vec::new());
    c.rules_from_stream = true;
    config(&mut c);
    let mut engine = c.engine();
    engine.add(&rules).unwrap();
    let sink = Memory::default();
    let said = Said::default();
    let runtime = Runtime::with_source(
        c,
        engine,
        Some(Box::new(Block {
            records,
            done: false,
        })),
        Some(Box::new(sink.clone())),
        Box::new(said.clone()),
    )
    .unwrap();
    let summary = runtime.run();
    let records = sink.records.lock().unwrap().clone();
    let said = said.0.lock().unwrap().clone();
    (summary, records, said)
}

/// Issue 24: a `$rules` record in the middle of what one read handed out
/// used to end the batch there, the records after it lost while the
/// source's position had moved past them.
#[test]
fn a_rules_record_inside_one_read_loses_none_of_the_records_after_it() {
    let rules_ba = r#"pattern ba {
    partition by k
    match b followed by a
    where
        b: type == "b"
        a: type == "a"
}"#;
    let control = serde_json::json!({ "$rules": rules_ba }).to_string();
    let ev = |ts: i64, t: &str, k: &str| format!(r#"{{"ts":{ts},"type":"{t}","k":"{k}"}}"#);
    let mut records = vec![
        (0, 0, None, ev(1, "a", "x")),
        (0, 1, None, ev(2, "b", "x")), // ab matches
        (0, 2, None, ev(3, "c", "w")), // (the watermark passes 2)
        (0, 3, None, control),
    ];
    // After the change: 200 records, 100 `b a` matches of `ba`.
    for i in 0..100 {
        let k = format!("k{i}");
        records.push((0, 4 + 2 * i, None, ev(10 + 2 * i, "b", &k)));
        records.push((0, 5 + 2 * i, None, ev(11 + 2 * i, "a", &k)));
    }
    records.push((1, 0, None, "{not json".to_string()));
    let (summary, out, said) = run_block(records, |_| {});
    assert!(matches!(summary.end, End::Input), "{:?}", summary.end);
    assert_eq!(
        summary.events, 203,
        "every record after the control one read"
    );
    assert_eq!(summary.reloads, 1);
    assert_eq!(summary.malformed, 1);
    let by = |p: &str| {
        out.iter()
            .filter(|(_, _, r)| r.contains(&format!(r#""pattern":"{p}""#)))
            .count()
    };
    assert_eq!((by("ab"), by("ba")), (1, 100));
    // A malformed record is placed by its partition and offset, counted,
    // and the run goes on.
    assert!(
        said.iter()
            .any(|s| s.starts_with("block partition 1 offset 0: malformed record: ")),
        "{said:?}"
    );
}

/// Event time from the records' own times (`Time::Record`), and per-split
/// watermarks: a split behind the other is not late for that.
#[test]
fn record_times_and_split_watermarks_as_flinks_kafka_source() {
    let ev = |t: &str, k: &str| format!(r#"{{"type":"{t}","k":"{k}"}}"#);
    // Split 0 runs ahead to 1000; split 1 delivers at 10 and 20.
    let records = vec![
        (0, 0, Some(1000), ev("a", "x")),
        (1, 0, Some(10), ev("a", "y")),
        (1, 1, Some(20), ev("b", "y")),
        (0, 1, Some(1001), ev("b", "x")),
        (1, 2, None, ev("b", "z")),
    ];
    let (summary, out, said) = run_block(records.clone(), |c| {
        c.time = cepheid_runtime::Time::Record;
        c.split_watermarks = true;
    });
    assert_eq!((summary.events, summary.late), (4, 0), "{said:?}");
    assert_eq!(summary.matches, 2, "{out:?}");
    assert_eq!(summary.malformed, 1, "the record without a time");
    assert!(
        said.iter().any(|s| s
            .contains("block partition 1 offset 2: malformed record: the record has no timestamp")),
        "{said:?}"
    );
    // Without split watermarks the largest time seen (1000) makes split
    // 1's events late.
    let (summary, _, _) = run_block(records, |c| c.time = cepheid_runtime::Time::Record);
    assert_eq!((summary.late, summary.matches), (2, 1));
}

/// The watermarks an observing report is shown, one per tick.
#[derive(Clone, Default)]
struct Watermarks(Arc<Mutex<Vec<Option<i64>>>>);

impl cepheid_runtime::Report for Watermarks {
    fn notice(&mut self, _: cepheid_runtime::Notice) {}
    fn observes(&self) -> bool {
        true
    }
    fn tick(&mut self, view: &cepheid_runtime::RunView<'_>) {
        self.0.lock().unwrap().push(view.watermark());
    }
}

/// The watermarks shown of a run of `records` in record time with split
/// watermarks.
fn shown_watermarks(records: Vec<(u32, i64, Option<i64>, String)>) -> Vec<Option<i64>> {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut c = Config::new(Input::Stdin, Vec::new());
    c.time = cepheid_runtime::Time::Record;
    c.split_watermarks = true;
    let mut engine = c.engine();
    engine.add(&rules).unwrap();
    let shown = Watermarks::default();
    let runtime = Runtime::with_source(
        c,
        engine,
        Some(Box::new(Block {
            records,
            done: false,
        })),
        Some(Box::new(Memory::default())),
        Box::new(shown.clone()),
    )
    .unwrap();
    let summary = runtime.run();
    assert!(summary.error().is_none(), "{summary}");
    let shown = shown.0.lock().unwrap().clone();
    shown
}

/// With split watermarks the engine's delay is unbounded, so its own
/// watermark from events is the largest time less `i64::MAX`, about the
/// year -292275055: shown to an observer (`--stats-every`, `--metrics`)
/// it said that. Until the splits give a watermark, none is shown; then
/// theirs.
#[test]
fn no_watermark_is_shown_before_the_splits_give_one() {
    let ev = |t: &str, k: &str| format!(r#"{{"type":"{t}","k":"{k}"}}"#);
    let now = 1_764_000_000_000;
    // Split 1 never delivers: no watermark until the end of the input
    // (the largest time seen then).
    let one_split = vec![
        (0, 0, Some(now), ev("a", "x")),
        (0, 1, Some(now + 5), ev("b", "x")),
    ];
    let shown = shown_watermarks(one_split);
    let (last, before) = shown.split_last().expect("ticks");
    assert!(!before.is_empty(), "{shown:?}");
    assert!(before.iter().all(Option::is_none), "{shown:?}");
    assert_eq!(*last, Some(now + 5), "{shown:?}");
    // Both deliver: their least, less the delay's 1 ms.
    let both = vec![
        (0, 0, Some(now), ev("a", "x")),
        (1, 0, Some(now + 3), ev("a", "y")),
        (0, 1, Some(now + 5), ev("b", "x")),
    ];
    let shown = shown_watermarks(both);
    assert!(shown.iter().flatten().all(|w| *w >= now - 1), "{shown:?}");
    assert!(shown.last().unwrap().is_some(), "{shown:?}");
}

/// What `position_before` was asked, each time: the waiting records.
type Asked = Vec<Vec<Unapplied>>;

/// A source with a rules stream: each read hands out its records (`true`:
/// a rules record) with their offsets and times; what
/// `position_before` was asked is kept.
struct WithRules {
    reads: Vec<Vec<(bool, i64, i64, String)>>,
    next: usize,
    asked: Arc<Mutex<Asked>>,
}

impl Source for WithRules {
    fn describe(&self) -> String {
        "with-rules".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, _wait: Duration) -> Result<ReadOutcome, SourceError> {
        let Some(read) = self.reads.get(self.next) else {
            return Ok(ReadOutcome::Ended);
        };
        self.next += 1;
        for (rules, offset, ts, text) in read {
            let origin = Origin::Offset {
                partition: 0,
                offset: *offset,
            };
            if *rules {
                batch.push_rules(text.as_bytes(), origin, Some(*ts), 1);
            } else {
                batch.push(text.as_bytes(), origin, Some(*ts), 0);
            }
        }
        Ok(ReadOutcome::Delivered)
    }

    fn position(&self) -> Position {
        Position::Bytes(vec![self.next as u8])
    }

    fn position_before(&self, unapplied: &[Unapplied]) -> Position {
        self.asked.lock().unwrap().push(unapplied.to_vec());
        self.position()
    }

    fn seek(&mut self, _position: &Position) -> Result<(), SourceError> {
        Ok(())
    }
}

fn run_with_rules(
    reads: Vec<Vec<(bool, i64, i64, String)>>,
) -> (cepheid_runtime::Summary, Vec<String>, Asked, Vec<String>) {
    let (summary, records, asked, seen) = run_with_rules_seen(reads, |_| {});
    (summary, records, asked, seen.said)
}

/// What an observing report saw of a run: its notices, the records of
/// the rules stream waiting at each tick, what each
/// [`RunEvent::RulesAhead`](cepheid_runtime::RunEvent::RulesAhead) said.
#[derive(Clone, Default, Debug)]
struct Seen {
    said: Vec<String>,
    waiting: Vec<Option<cepheid_runtime::source::RulesWaiting>>,
    ahead: Vec<String>,
}

#[derive(Clone, Default)]
struct Watching(Arc<Mutex<Seen>>);

impl cepheid_runtime::Report for Watching {
    fn notice(&mut self, notice: cepheid_runtime::Notice) {
        self.0.lock().unwrap().said.push(notice.to_string());
    }

    fn observes(&self) -> bool {
        true
    }

    fn tick(&mut self, view: &cepheid_runtime::RunView<'_>) {
        self.0.lock().unwrap().waiting.push(view.rules_waiting);
    }

    fn event(&mut self, event: &cepheid_runtime::RunEvent<'_>) {
        if let cepheid_runtime::RunEvent::RulesAhead { what } = event {
            self.0.lock().unwrap().ahead.push(what.to_string());
        }
    }
}

fn run_with_rules_seen(
    reads: Vec<Vec<(bool, i64, i64, String)>>,
    config: impl FnOnce(&mut Config),
) -> (cepheid_runtime::Summary, Vec<String>, Asked, Seen) {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut c = Config::new(Input::Stdin, Vec::new());
    c.split_watermarks = true;
    c.max_delay = Duration::ZERO;
    config(&mut c);
    let mut engine = c.engine();
    engine.add(&rules).unwrap();
    let sink = Memory::default();
    let said = Watching::default();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let source = WithRules {
        reads,
        next: 0,
        asked: Arc::clone(&asked),
    };
    let runtime = Runtime::with_source(
        c,
        engine,
        Some(Box::new(source)),
        Some(Box::new(sink.clone())),
        Box::new(said.clone()),
    )
    .unwrap();
    let summary = runtime.run();
    let records = sink.records.lock().unwrap();
    let records = records.iter().map(|(_, _, r)| r.clone()).collect();
    let asked = asked.lock().unwrap().clone();
    let seen = said.0.lock().unwrap().clone();
    (summary, records, asked, seen)
}

const RULES_BA: &str = r#"pattern ba {
    partition by k
    match b followed by a
    where
        b: type == "b"
        a: type == "a"
}"#;

fn ev(ts: i64, t: &str, k: &str) -> String {
    format!(r#"{{"ts":{ts},"type":"{t}","k":"{k}"}}"#)
}

/// Issue 24, a rules topic: a rules record of time T waits for the
/// watermark and switches at T - 1, whatever the read it came in; while it
/// waits, the position a checkpoint would keep is the one before it.
#[test]
fn a_rules_stream_record_applies_at_its_time_and_is_not_in_the_position_while_it_waits() {
    let control = serde_json::json!({ "$rules": RULES_BA }).to_string();
    let (summary, records, asked, said) = run_with_rules(vec![
        // The rules record first, of time 3,000; the watermark gets to 2,499.
        vec![
            (true, 7, 3_000, control),
            (false, 0, 1_000, ev(1_000, "a", "k1")),
            (false, 1, 2_000, ev(2_000, "b", "k1")),
            (false, 2, 2_500, ev(2_500, "a", "k2")),
        ],
        // 4,000 takes the watermark past 2,999: the switch is there.
        vec![
            (false, 3, 4_000, ev(4_000, "b", "k2")),
            (false, 4, 6_000, ev(6_000, "a", "k2")),
        ],
    ]);
    assert!(summary.error().is_none(), "{said:?}");
    // k1 (before 3,000) by `ab`; k2's `a` at 2,500 started `ab`, dropped
    // at the change (removed); `ba` from 4,000 on.
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records[0].contains(r#""pattern":"ab","key":{"k":"k1"}"#),
        "{records:?}"
    );
    assert!(
        records[1].contains(r#""pattern":"ba","key":{"k":"k2"}"#),
        "{records:?}"
    );
    assert_eq!(summary.reloads, 1);
    assert_eq!(summary.reloads_late, 0);
    // After the first read the record waited; after the second it did not.
    assert_eq!(
        asked[0],
        [Unapplied {
            split: 1,
            origin: Origin::Offset {
                partition: 0,
                offset: 7
            },
            judged: Judged::Waits,
        }]
    );
    assert!(asked[1..].iter().all(Vec::is_empty), "{asked:?}");
}

/// A rules record read when event time has passed its time applies at
/// once, said and counted as late.
#[test]
fn a_rules_stream_record_behind_event_time_applies_at_once_late() {
    let control = serde_json::json!({ "$rules": RULES_BA }).to_string();
    let (summary, records, _, said) = run_with_rules(vec![
        vec![
            (false, 0, 1_000, ev(1_000, "a", "k1")),
            (false, 1, 5_000, ev(5_000, "x", "k0")),
        ],
        vec![
            (true, 0, 2_000, control),
            (false, 2, 6_000, ev(6_000, "b", "k1")),
            (false, 3, 7_000, ev(7_000, "a", "k1")),
        ],
    ]);
    assert!(summary.error().is_none(), "{said:?}");
    assert_eq!(summary.reloads, 1);
    assert_eq!(summary.reloads_late, 1);
    assert!(
        said.iter().any(|s| s.contains(
            "with-rules partition 0 offset 0: a rules record of time 1970-01-01T00:00:02.000Z read when event time was already at 1970-01-01T00:00:04.999Z: applied now, late"
        )),
        "{said:?}"
    );
    // `ab` removed at the change (k1's `a` dropped), `ba` matches after it.
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0].contains(r#""pattern":"ba","key":{"k":"k1"}"#),
        "{records:?}"
    );
    assert!(
        summary.to_string().contains(", 1 rule reload, 1 late"),
        "{summary}"
    );
}

const HOUR: i64 = 3_600_000;

/// Issue 39, item 5: a rules record whose time is further ahead of event
/// time than `Config::rules_max_ahead` (a producer writing microseconds, a
/// wrong clock) applies when it is read, said to the report and as a
/// `RunEvent`, instead of waiting for ever and holding back every later
/// record: the next one applies at its own time.
#[test]
fn a_rules_record_far_ahead_of_event_time_applies_when_read_and_the_next_at_its_time() {
    let ba = serde_json::json!({ "$rules": RULES_BA }).to_string();
    let ab = serde_json::json!({ "$rules": RULES }).to_string();
    let (summary, records, _, seen) = run_with_rules_seen(
        vec![
            vec![
                (false, 0, 1_000, ev(1_000, "a", "k1")),
                (false, 1, 5_000, ev(5_000, "x", "k0")),
            ],
            // Two hours ahead of the watermark 4,999: applied now.
            vec![
                (true, 0, 5_000 + 2 * HOUR, ba),
                (false, 2, 6_000, ev(6_000, "b", "k1")),
                (false, 3, 7_000, ev(7_000, "a", "k1")),
            ],
            // Back to `ab` at 8,000, its own time: `ba` matches k3 before
            // it, `ab` k4 after it.
            vec![
                (true, 1, 8_000, ab),
                (false, 4, 7_500, ev(7_500, "b", "k3")),
                (false, 5, 7_600, ev(7_600, "a", "k3")),
                (false, 6, 9_000, ev(9_000, "a", "k4")),
                (false, 7, 9_500, ev(9_500, "b", "k4")),
            ],
        ],
        |_| {},
    );
    assert!(summary.error().is_none(), "{seen:?}");
    assert_eq!((summary.reloads, summary.reloads_late), (2, 0), "{seen:?}");
    let said = "with-rules partition 0 offset 0: a rules record of time 1970-01-01T02:00:05.000Z read when event time was at 1970-01-01T00:00:04.999Z, further ahead than `Config::rules_max_ahead`: applied now, not at its time";
    assert!(seen.said.iter().any(|s| s.contains(said)), "{seen:?}");
    assert_eq!(seen.ahead.len(), 1, "{seen:?}");
    assert!(seen.ahead[0].contains(said), "{seen:?}");
    assert_eq!(
        patterns_and_keys(&records),
        [
            r#""pattern":"ba","key":{"k":"k1"}"#,
            r#""pattern":"ba","key":{"k":"k3"}"#,
            r#""pattern":"ab","key":{"k":"k4"}"#,
        ],
        "{records:?}"
    );
}

/// Each record's `"pattern":...,"key":{...}`, in order.
fn patterns_and_keys(records: &[String]) -> Vec<&str> {
    (records.iter())
        .map(|r| &r[r.find("\"pattern\"").unwrap()..r.find(",\"start\"").unwrap()])
        .collect()
}

/// Issue 59: the same record read before event time is known (no
/// watermark yet: a run that reads its rules topic before its first
/// event) is not judged against a time the run does not have: it waits
/// for event time to reach its time, shown to the report as waiting, and
/// the end of the input reaches it; the records due when event time first
/// appears apply at their times. With no bound (`None`) the same.
#[test]
fn a_rules_record_read_before_any_watermark_waits_for_its_time_with_or_without_a_bound() {
    let reads = || {
        let ba = serde_json::json!({ "$rules": RULES_BA }).to_string();
        let ab = serde_json::json!({ "$rules": RULES }).to_string();
        vec![
            // Both read before any event: `ba` at 2,500, `ab` two hours on.
            vec![(true, 0, 2_500, ba), (true, 1, 2 * HOUR, ab)],
            vec![
                (false, 0, 1_000, ev(1_000, "a", "k1")),
                (false, 1, 2_000, ev(2_000, "b", "k1")),
                (false, 2, 3_000, ev(3_000, "b", "k2")),
                (false, 3, 3_500, ev(3_500, "a", "k2")),
                (false, 4, 4_000, ev(4_000, "x", "k0")),
            ],
        ]
    };
    for bound in [true, false] {
        let (summary, records, _, seen) = run_with_rules_seen(reads(), |c| {
            if !bound {
                c.rules_max_ahead = None;
            }
        });
        assert!(summary.error().is_none(), "{seen:?}");
        assert!(seen.ahead.is_empty(), "judged far ahead: {seen:?}");
        // `ab` matched k1 before 2,500, `ba` k2 after it; the record two
        // hours on waited (shown) until the end of the input.
        assert_eq!(
            patterns_and_keys(&records),
            [
                r#""pattern":"ab","key":{"k":"k1"}"#,
                r#""pattern":"ba","key":{"k":"k2"}"#,
            ],
            "{records:?}"
        );
        let waiting = cepheid_runtime::source::RulesWaiting {
            records: 1,
            at: 2 * HOUR,
        };
        assert!(seen.waiting.contains(&Some(waiting)), "{seen:?}");
        assert_eq!(seen.waiting.last(), Some(&None), "{seen:?}");
        assert_eq!(summary.reloads, 2, "{seen:?}");
    }
}

fn run_txn(lines: &[String], dir: &std::path::Path, sink: &Txn) -> cepheid_runtime::Summary {
    run_txn_of(RULES, lines, dir, sink)
}

/// [`run_txn`], of the rules `rules`.
fn run_txn_of(
    rules: &str,
    lines: &[String],
    dir: &std::path::Path,
    sink: &Txn,
) -> cepheid_runtime::Summary {
    let rules = Rules::parse("ab.cep", rules).unwrap();
    let mut config = Config::new(Input::Stdin, Vec::new());
    config.checkpoint = Some(dir.to_path_buf());
    config.checkpoint_every.time = None;
    config.checkpoint_every.lines = Some(1);
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    let source = Lines {
        lines: lines.to_vec(),
        next: 0,
        committed: Arc::default(),
    };
    Runtime::with_source(
        config,
        engine,
        Some(Box::new(source)),
        Some(Box::new(sink.clone())),
        Box::new(Notices::default()),
    )
    .unwrap()
    .run()
}

/// Four pairs of lines, and the records a transactional run never killed
/// commits over them (in the scratch folder `name`).
fn txn_lines_and_records(name: &str) -> (Vec<String>, Vec<String>) {
    let lines: Vec<String> = (0..8)
        .map(|i| {
            let t = if i % 2 == 0 { "a" } else { "b" };
            format!(r#"{{"ts":{i},"type":"{t}","k":"k{}"}}"#, i / 2)
        })
        .collect();
    let whole = Txn::default();
    let summary = run_txn(&lines, &scratch(name), &whole);
    assert!(summary.error().is_none(), "{:?}", summary.error());
    let records = whole.committed();
    (lines, records)
}

/// A run killed before the sink committed any checkpoint starts again
/// from the beginning (the sink's `recover` chose none of the kept ones):
/// those go, so that its own first checkpoint, numbered 1 again, is
/// written and committed (it was refused: "cannot write checkpoint
/// DIR/cut-1: Directory not empty", seen in the Kafka kill test), and the
/// committed records are a run's never killed.
#[test]
fn a_run_whose_sink_committed_no_kept_checkpoint_starts_over_and_checkpoints_again() {
    let (lines, wanted) = txn_lines_and_records("txn-none-whole");
    let dir = scratch("txn-none");
    let sink = Txn::default();
    // The first run: checkpoint 1 written, its commit not done.
    sink.0.lock().unwrap().fail_at = Some(1);
    let first = run_txn(&lines, &dir, &sink);
    assert!(first.error().is_some(), "the commit failed");
    assert_eq!(sink.0.lock().unwrap().committed, None);
    assert_eq!(
        cepheid_runtime::checkpoint::store::complete(&dir).unwrap(),
        [1]
    );
    // The second: nothing committed, from the beginning, to the end.
    let second = run_txn(&lines, &dir, &sink);
    assert!(second.error().is_none(), "{:?}", second.error());
    assert_eq!(sink.0.lock().unwrap().records, wanted);
    assert!(sink.0.lock().unwrap().committed.is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run killed between a snapshot and its commit resumes from the
/// checkpoint before (`docs/checkpoints.md`, "Kafka"); the run that
/// resumes so is killed in the same window of its own first checkpoint:
/// the checkpoint the sink committed must still be kept, so that the
/// third run resumes, and the committed records are a run's never killed.
#[test]
fn killed_twice_between_a_snapshot_and_its_commit_the_committed_checkpoint_is_still_kept() {
    let (lines, wanted) = txn_lines_and_records("txn-whole");
    assert_eq!(wanted.len(), 4);

    let dir = scratch("txn-killed");
    let sink = Txn::default();
    // The first run: checkpoints 1 and 2 committed, 3 written, its commit
    // not done.
    sink.0.lock().unwrap().fail_at = Some(3);
    let first = run_txn(&lines, &dir, &sink);
    assert!(first.error().is_some(), "the commit failed");
    assert_eq!(
        sink.0.lock().unwrap().committed.as_ref().map(|c| c.0),
        Some(2)
    );
    assert_eq!(
        cepheid_runtime::checkpoint::store::complete(&dir).unwrap(),
        [3, 2],
        "2 kept until 3 commits"
    );
    // The second resumes from 2 (the one before the newest), and is
    // killed in the same window of its own checkpoint 3.
    sink.0.lock().unwrap().fail_at = Some(3);
    let second = run_txn(&lines, &dir, &sink);
    assert!(second.error().is_some(), "the commit failed again");
    assert_eq!(
        sink.0.lock().unwrap().committed.as_ref().map(|c| c.0),
        Some(2)
    );
    // The third finds checkpoint 2 kept, resumes from it, and ends.
    let third = run_txn(&lines, &dir, &sink);
    assert!(third.error().is_none(), "{:?}", third.error());
    assert_eq!(sink.0.lock().unwrap().records, wanted);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Rules with a scene: each event of type `a` gets one decision.
const RULES_SCENE: &str = r#"pattern ab {
    partition by k
    score 50
    tags "t"
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}

scene s {
    when type == "a"
    rules tagged "t"
    outcomes approve < review
    review if score >= 50
    fallback approve
    deadline 100ms
}"#;

/// A transactional run whose rules have a scene, killed between a
/// snapshot and its commit, goes on with its scenes whether its sink
/// sends it back to the start (it committed no kept checkpoint) or to
/// the checkpoint before the newest: the committed records, decisions
/// with them, are a run's never killed. (The engine it went on with was
/// one of the rules of a snapshot, which holds no scene: no decision was
/// made from there on, seen as a Kafka decisions topic that lacked those
/// of the first events.)
#[test]
fn a_transactional_run_sent_back_by_its_sink_goes_on_with_its_scenes() {
    let lines: Vec<String> = (0..8)
        .map(|i| {
            let t = if i % 2 == 0 { "a" } else { "b" };
            format!(r#"{{"ts":{},"type":"{t}","k":"k{}"}}"#, i * 1000, i / 2)
        })
        .collect();
    let txn = || {
        let txn = Txn::default();
        txn.0.lock().unwrap().decisions = true;
        txn
    };
    let whole = txn();
    let summary = run_txn_of(RULES_SCENE, &lines, &scratch("txn-scene-whole"), &whole);
    assert!(summary.error().is_none(), "{:?}", summary.error());
    let wanted = whole.committed();
    let decisions = wanted.iter().filter(|r| r.contains("\"outcome\"")).count();
    assert_eq!(decisions, 4, "{wanted:?}");
    // Sent back to the start, and to the checkpoint before the newest.
    for (name, fail_at) in [("txn-scene-none", 1), ("txn-scene-prev", 3)] {
        let dir = scratch(name);
        let sink = txn();
        sink.0.lock().unwrap().fail_at = Some(fail_at);
        let first = run_txn_of(RULES_SCENE, &lines, &dir, &sink);
        assert!(first.error().is_some(), "the commit failed");
        let second = run_txn_of(RULES_SCENE, &lines, &dir, &sink);
        assert!(second.error().is_none(), "{:?}", second.error());
        assert_eq!(sink.committed(), wanted, "{name}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Checkpoints of the format before this one (the single run's file,
/// format version 1: `checkpoint` and `checkpoint.prev`) written by a
/// transactional run killed between a snapshot and its commit: the sink
/// is told both, with their numbers and the source's positions, says it
/// committed the older, and the run goes on from it to the records of a
/// run never killed (a Kafka run is not started over by an upgrade); the
/// older files go once a checkpoint of this format is committed.
#[test]
fn checkpoints_of_the_older_format_resume_with_their_numbers_and_positions() {
    use cepheid_runtime::checkpoint::store;
    let (lines, wanted) = txn_lines_and_records("old-whole");
    let dir = scratch("old-killed");
    let sink = Txn::default();
    sink.0.lock().unwrap().fail_at = Some(3);
    assert!(run_txn(&lines, &dir, &sink).error().is_some());
    // Checkpoints 3 and 2 written again as the single run's files of
    // before: the magic, version 1, the metadata's length and JSON, the
    // engine's snapshot, a CRC-32.
    for (stored, name) in store::kept(&dir)
        .unwrap()
        .iter()
        .zip(["checkpoint", "checkpoint.prev"])
    {
        let (marker, piece) = (stored.marker(), &stored.pieces()[0]);
        let state = marker.sink_state();
        let meta = serde_json::json!({
            "command": marker.the_command(),
            "input": piece.one_engine_input().unwrap().0,
            "output_len": state.output_len,
            "late_len": state.late_len,
            "counters": marker.the_counters(),
            "number": marker.number(),
            "source": piece.one_engine_source(),
        });
        let meta = serde_json::to_vec(&meta).unwrap();
        let mut bytes = b"CEPHCKPT".to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&meta);
        bytes.extend_from_slice(piece.engines()[0].snapshot());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        std::fs::write(dir.join(name), bytes).unwrap();
        std::fs::remove_dir_all(stored.path()).unwrap();
    }
    assert!(store::complete(&dir).unwrap().is_empty());
    let kept: Vec<u64> = (store::kept(&dir).unwrap().iter())
        .map(|s| s.marker().number())
        .collect();
    assert_eq!(kept, [3, 2], "read as checkpoints of this format");
    // The sink committed 2 (its number and position): the run goes on
    // from it, to a run's never killed.
    let resumed = run_txn(&lines, &dir, &sink);
    assert!(resumed.error().is_none(), "{:?}", resumed.error());
    assert_eq!(sink.0.lock().unwrap().records, wanted);
    assert!(!dir.join("checkpoint").exists() && !dir.join("checkpoint.prev").exists());
    assert_eq!(store::complete(&dir).unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint due by time is taken when it is due, not at the next
/// input: a followed file that goes quiet after a match has its match
/// committed by a transactional sink without another line written (the
/// run waited for the next batch before, so a quiet input held the
/// interval's records uncommitted until its next line).
#[test]
fn a_checkpoint_due_while_a_followed_file_is_quiet_commits_its_records() {
    let dir = scratch("quiet-follow");
    let path = dir.join("events.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"ts":1,"type":"a","k":"x"}"#,
            "\n",
            r#"{"ts":2,"type":"b","k":"x"}"#,
            "\n",
            // (its time releases the match of x)
            r#"{"ts":3,"type":"a","k":"y"}"#,
            "\n",
        ),
    )
    .unwrap();
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut config = Config::new(Input::File(path), Vec::new());
    config.follow = true;
    config.checkpoint = Some(dir.join("ck"));
    config.checkpoint_every.time = Some(Duration::from_millis(200));
    config.checkpoint_every.lines = None;
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    let sink = Txn::default();
    let runtime = Runtime::with_sink(
        config,
        engine,
        Some(Box::new(sink.clone())),
        Box::new(Notices::default()),
    )
    .unwrap();
    let handle = runtime.handle();
    let run = std::thread::spawn(move || runtime.run());
    // No line is written after the three: only the schedule can commit.
    let committed = || sink.committed();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while committed().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = committed();
    handle.stop("the test");
    let summary = run.join().unwrap();
    assert!(summary.error().is_none(), "{:?}", summary.error());
    assert_eq!(
        seen.len(),
        1,
        "the match committed while the file was quiet"
    );
    assert!(
        seen[0].contains(r#""key":{"k":"x"}"#),
        "the match of x: {}",
        seen[0]
    );
    assert_eq!((summary.events, summary.matches), (3, 1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A live source that never pauses: one event per read, every 5 ms, for
/// ever (a match of `x` first, then events of other keys whose times
/// release it), each read saying `outcome`.
struct Steady {
    next: i64,
    outcome: ReadOutcome,
}

impl Source for Steady {
    fn describe(&self) -> String {
        "steady".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, _wait: Duration) -> Result<ReadOutcome, SourceError> {
        std::thread::sleep(Duration::from_millis(5));
        self.next += 1;
        let line = match self.next {
            1 => ev(1, "a", "x"),
            2 => ev(2, "b", "x"),
            n => ev(n, "c", &format!("k{n}")),
        };
        batch.push(line.as_bytes(), Origin::Line(self.next as u64), None, 0);
        Ok(self.outcome)
    }

    fn position(&self) -> Position {
        Position::None
    }

    fn seek(&mut self, _position: &Position) -> Result<(), SourceError> {
        Ok(())
    }
}

/// Records in memory that are visible only once flushed, as a file's.
#[derive(Clone, Default)]
struct Buffered(Arc<Mutex<(Vec<String>, Vec<String>)>>);

impl Sink for Buffered {
    fn describe(&self, _kind: Kind) -> String {
        "buffered".to_string()
    }

    fn write(&mut self, _kind: Kind, _key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        let text = String::from_utf8(record.to_vec()).unwrap();
        self.0.lock().unwrap().0.push(text);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let mut state = self.0.lock().unwrap();
        let written = std::mem::take(&mut state.0);
        state.1.extend(written);
        Ok(())
    }

    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }

    fn recover(&mut self, _kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(0)
    }
}

/// A source that has read all that was written so far says so
/// (`ReadOutcome::CaughtUp`, as a Kafka source whose consumer has no
/// further record ready does), and the run shows its output then, as it
/// does when a pipe waits: a steady stream that never pauses does not
/// hold its records in the output's buffer (a Kafka source said only
/// `Delivered`, and a topic written every 20 ms to standard output held
/// its matches for 18 s in a test).
#[test]
fn a_source_caught_up_with_its_input_has_its_records_shown_though_it_never_pauses() {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let config = Config::new(Input::Stdin, Vec::new());
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    let sink = Buffered::default();
    let runtime = Runtime::with_source(
        config,
        engine,
        Some(Box::new(Steady {
            next: 0,
            outcome: ReadOutcome::CaughtUp,
        })),
        Some(Box::new(sink.clone())),
        Box::new(Notices::default()),
    )
    .unwrap();
    let handle = runtime.handle();
    let run = std::thread::spawn(move || runtime.run());
    let shown = || sink.0.lock().unwrap().1.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while shown().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = shown();
    handle.stop("the test");
    let summary = run.join().unwrap();
    assert!(summary.error().is_none(), "{:?}", summary.error());
    assert_eq!(seen.len(), 1, "the match shown while the source went on");
    assert!(seen[0].contains(r#""key":{"k":"x"}"#), "{}", seen[0]);
}

/// A sink that delivers only what checkpoints commit, in a run without a
/// checkpoint folder, would deliver nothing (a library user who gave the
/// folder to the sink's options and not to the run lost every alert while
/// the run reported its matches): refused before the run starts, naming
/// the sink, on one engine.
#[test]
fn a_sink_that_commits_with_checkpoints_is_refused_without_a_checkpoint_folder() {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let config = Config::new(Input::Stdin, Vec::new());
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    let refused = Runtime::with_sink(
        config.clone(),
        engine,
        Some(Box::new(Txn::with_checkpoints())),
        Box::new(Notices::default()),
    );
    let Err(e) = refused else {
        panic!("a run whose sink would never commit was accepted")
    };
    assert!(matches!(
        &e,
        cepheid_runtime::Error::Conflict(cepheid_runtime::Conflict::SinkNeedsCheckpoints { sink }) if sink == "txn"
    ));
    assert_eq!(
        e.to_string(),
        "txn delivers records only when a checkpoint commits them, and the run has no checkpoint folder (Config::checkpoint): nothing would ever be delivered"
    );
    // With a folder it runs (and commits); of standard input, refused
    // (it cannot be read again from a checkpoint).
    let dir = scratch("committing");
    let mut config = config;
    config.checkpoint = Some(dir.to_path_buf());
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    let stdin = Runtime::with_sink(
        config.clone(),
        engine,
        Some(Box::new(Txn::with_checkpoints())),
        Box::new(Notices::default()),
    );
    assert!(matches!(
        stdin.err(),
        Some(cepheid_runtime::Error::Conflict(
            cepheid_runtime::Conflict::CheckpointOfStdin
        ))
    ));
    std::fs::write(dir.join("events.jsonl"), "").unwrap();
    config.input = Input::file(dir.join("events.jsonl"));
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    let runtime = Runtime::with_sink(
        config,
        engine,
        Some(Box::new(Txn::with_checkpoints())),
        Box::new(Notices::default()),
    );
    assert!(runtime.is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// What `Config::check` refuses, `Runtime` refuses when it is made: a
/// library user who never asked `check` does not get a run that empties
/// its input into its output. With a source of the caller's, what only the
/// built-in reader of standard input cannot do does not apply.
#[test]
fn the_runtime_refuses_what_config_check_refuses() {
    let dir = scratch("refuses");
    let events = dir.join("events.jsonl");
    let text = "{\"ts\": 1, \"type\": \"a\", \"k\": 1}\n";
    std::fs::write(&events, text).unwrap();
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let mut config = Config::new(Input::file(&events), Vec::new());
    config.output = Some(dir.join("./events.jsonl"));
    let refused = Runtime::new(config, &rules, Box::new(Notices::default()));
    assert!(
        matches!(
            refused.err(),
            Some(cepheid_runtime::Error::Conflict(
                cepheid_runtime::Conflict::SameFile { .. }
            ))
        ),
        "the output is the input"
    );
    assert_eq!(std::fs::read_to_string(&events).unwrap(), text, "untouched");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `Handle::reload` names what asked for it, in the library's words: the
/// run says `{why}: rules reloaded:` (the command passes `SIGHUP`).
#[test]
fn a_reload_through_the_handle_is_said_with_the_reason_its_caller_gives() {
    #[derive(Clone, Default)]
    struct Said(Arc<Mutex<Vec<String>>>);
    impl cepheid_runtime::Report for Said {
        fn notice(&mut self, notice: cepheid_runtime::Notice) {
            self.0.lock().unwrap().push(notice.to_string());
        }
    }
    let dir = scratch("handle-reload");
    let rules_path = dir.join("ab.cep");
    std::fs::write(&rules_path, RULES).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "{\"ts\": 1, \"type\": \"a\", \"k\": 1}\n").unwrap();
    let mut config = Config::new(Input::file(&events), vec![rules_path.clone()]);
    config.follow = true;
    config.output = Some(dir.join("out.jsonl"));
    let rules = Rules::load_all(&config.patterns).unwrap();
    let said = Said::default();
    let runtime = Runtime::new(config, &rules, Box::new(said.clone())).unwrap();
    let handle = runtime.handle();
    let run = std::thread::spawn(move || runtime.run());
    handle.reload("the supervisor");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let reloaded = loop {
        let found = (said.0.lock().unwrap().iter())
            .find(|s| s.contains("rules reloaded"))
            .cloned();
        if let Some(line) = found {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no reload said");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        reloaded.starts_with("cepheid: the supervisor: rules reloaded:"),
        "{reloaded}"
    );
    handle.stop("the test");
    let summary = run.join().unwrap();
    assert!(matches!(summary.end, cepheid_runtime::End::Stopped(_)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the library says names its settings in its own words (`Config`'s
/// fields), never the command's flags: the limits' notices and the
/// summary's line of a run whose keys hold more partial matches than
/// `max_runs_per_key`.
#[test]
fn notices_and_the_summary_name_the_library_settings() {
    let dir = scratch("library-words");
    let events = dir.join("events.jsonl");
    let lines: String = (0..20)
        .map(|i| format!("{{\"ts\": {i}, \"type\": \"a\", \"k\": {}}}\n", i % 2))
        .collect();
    std::fs::write(&events, lines).unwrap();
    let mut config = Config::new(Input::file(&events), Vec::new());
    config.output = Some(dir.join("out.jsonl"));
    config.max_runs_per_key = 3;
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let said = Said::default();
    let summary = Runtime::new(config, &rules, Box::new(said.clone()))
        .unwrap()
        .run();
    let said = said.0.lock().unwrap().clone();
    let over: Vec<&String> = (said.iter())
        .filter(|s| s.contains("partial matches; the oldest are dropped"))
        .collect();
    assert_eq!(over.len(), 2, "{said:?}");
    for line in over {
        assert!(
            line.ends_with("(`Config::max_runs_per_key`; raise it to keep them)"),
            "{line}"
        );
    }
    let line = summary.to_string();
    assert!(line.contains("over `Config::max_runs_per_key`"), "{line}");
    for text in said.iter().chain([&line]) {
        assert!(
            !text.contains("--"),
            "a flag in the library's words: {text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sink whose writes wait while its gate is shut.
#[derive(Clone, Default)]
struct Gated(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Gated {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

impl Sink for Gated {
    fn describe(&self, _kind: Kind) -> String {
        "gated".to_string()
    }

    fn write(&mut self, _kind: Kind, _key: &[u8], _record: &[u8]) -> Result<(), SinkError> {
        let (open, wake) = &*self.0;
        let _open = wake.wait_while(open.lock().unwrap(), |open| !*open);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }

    fn commit(&mut self, _checkpoint: u64, _source: &Position) -> Result<(), SinkError> {
        Ok(())
    }

    fn recover(&mut self, _kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(0)
    }
}

/// `Handle::stop` never waits, even while the run is held up (its output
/// does not take what it is given, so the run's thread waits on it and the
/// reader's queue is full): before, the caller waited on that queue, and
/// the command's signal thread, which hears the next signal only after,
/// with it (`tests/kafka_faults.rs`, finding I). Once the output takes
/// records again, the run stops.
#[test]
fn a_stop_never_waits_for_a_run_that_is_held_up() {
    let dir = scratch("handle-stop-held");
    let events = dir.join("events.jsonl");
    let mut text = String::new();
    for n in 0..20_000 {
        text.push_str(&format!(
            "{}\n{}\n",
            ev(2 * n, "a", "x"),
            ev(2 * n + 1, "b", "x")
        ));
    }
    std::fs::write(&events, text).unwrap();
    let mut config = Config::new(Input::file(&events), Vec::new());
    config.follow = true;
    let mut engine = config.engine();
    engine.add(&Rules::parse("ab.cep", RULES).unwrap()).unwrap();
    let sink = Gated::default();
    let runtime = Runtime::with_sink(
        config,
        engine,
        Some(Box::new(sink.clone())),
        Box::new(Notices::default()),
    )
    .unwrap();
    let handle = runtime.handle();
    let run = std::thread::spawn(move || runtime.run());
    // (by then the run waits on its output and the reader on the run)
    std::thread::sleep(Duration::from_millis(500));
    let (done, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        handle.stop("the test");
        handle.stop("the test again");
        let _ = done.send(());
    });
    let returned = stopped.recv_timeout(Duration::from_secs(60));
    sink.open();
    let summary = run.join().unwrap();
    assert!(returned.is_ok(), "Handle::stop waited for the run");
    assert!(matches!(summary.end, End::Stopped(_)), "{:?}", summary.end);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A record of [`Controls`]: of the events (`None`) or of a control
/// split (`Some(split)`, after the events' one), its offset, time, text.
type ControlRecord = (Option<u32>, i64, i64, String);

/// A source whose reads hand out records of events and of several
/// control splits.
struct Controls {
    reads: Vec<Vec<ControlRecord>>,
    next: usize,
}

impl Source for Controls {
    fn describe(&self) -> String {
        "controls".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, _wait: Duration) -> Result<ReadOutcome, SourceError> {
        let Some(read) = self.reads.get(self.next) else {
            return Ok(ReadOutcome::Ended);
        };
        self.next += 1;
        for (split, offset, ts, text) in read {
            let origin = Origin::Offset {
                partition: 0,
                offset: *offset,
            };
            match split {
                Some(split) => batch.push_rules(text.as_bytes(), origin, Some(*ts), *split),
                None => batch.push(text.as_bytes(), origin, Some(*ts), 0),
            }
        }
        Ok(ReadOutcome::Delivered)
    }

    fn position(&self) -> Position {
        Position::Bytes(vec![self.next as u8])
    }

    fn seek(&mut self, _position: &Position) -> Result<(), SourceError> {
        Ok(())
    }
}

/// Issue 40, several topics of control records (a rules topic, lists'
/// topics): each applies its records in its order, at their times, apart
/// from the others. A list's record of time 50 read after another
/// topic's record of time 100 applies at 50 (not behind it, as one queue
/// for every topic would make it), whichever came first: the output does
/// not depend on how the topics' fetches interleave.
#[test]
fn records_of_several_control_splits_apply_at_their_times_whatever_order_they_come_in() {
    let rules = "list suspects\nlist others\npattern p { partition by k match a where a: type == \"a\" and k in suspects }\n";
    let other = serde_json::json!({ "$list": "others", "add": "x" }).to_string();
    let suspect = serde_json::json!({ "$list": "suspects", "add": "k1" }).to_string();
    let events = vec![
        (None, 0, 40, ev(40, "a", "k1")),
        (None, 1, 60, ev(60, "a", "k1")),
        (None, 2, 120, ev(120, "a", "k1")),
    ];
    let run = |controls: Vec<ControlRecord>| {
        let rules = Rules::parse("lists.cep", rules).unwrap();
        let mut c = Config::new(Input::Stdin, Vec::new());
        c.split_watermarks = true;
        c.source_rules = true;
        c.max_delay = Duration::ZERO;
        let mut engine = c.engine();
        engine.add(&rules).unwrap();
        let sink = Memory::default();
        let source = Controls {
            reads: vec![controls, events.clone()],
            next: 0,
        };
        let runtime = Runtime::with_source(
            c,
            engine,
            Some(Box::new(source)),
            Some(Box::new(sink.clone())),
            Box::new(Notices::default()),
        )
        .unwrap();
        let summary = runtime.run();
        assert!(summary.error().is_none());
        let records = sink.records.lock().unwrap();
        let ends: Vec<String> = records.iter().map(|(_, _, r)| r.clone()).collect();
        ends
    };
    let ahead = run(vec![
        (Some(1), 0, 100, other.clone()),
        (Some(2), 0, 50, suspect.clone()),
    ]);
    let behind = run(vec![(Some(2), 0, 50, suspect), (Some(1), 0, 100, other)]);
    assert_eq!(ahead, behind);
    // The events at 60 and 120 see k1 (from 50 on); the one at 40 not.
    assert_eq!(ahead.len(), 2, "{ahead:?}");
    assert!(ahead[0].contains(r#""start":60"#), "{ahead:?}");
    assert!(ahead[1].contains(r#""start":120"#), "{ahead:?}");
}

/// A list's record read after event time passed its time applies at
/// once, said as a `$list` record (not a rules record) and counted late.
#[test]
fn a_list_record_behind_event_time_applies_at_once_said_as_a_list_record() {
    let rules = Rules::parse(
        "lists.cep",
        "list suspects\npattern p { partition by k match a where a: type == \"a\" and k in suspects }\n",
    )
    .unwrap();
    let suspect = serde_json::json!({ "$list": "suspects", "add": "k1" }).to_string();
    let mut c = Config::new(Input::Stdin, Vec::new());
    c.split_watermarks = true;
    c.source_rules = true;
    c.max_delay = Duration::ZERO;
    let mut engine = c.engine();
    engine.add(&rules).unwrap();
    let sink = Memory::default();
    let said = Watching::default();
    let source = Controls {
        reads: vec![
            vec![(None, 0, 1_000, ev(1_000, "a", "k1"))],
            vec![(Some(1), 0, 500, suspect)],
            vec![(None, 1, 2_000, ev(2_000, "a", "k1"))],
        ],
        next: 0,
    };
    let runtime = Runtime::with_source(
        c,
        engine,
        Some(Box::new(source)),
        Some(Box::new(sink.clone())),
        Box::new(said.clone()),
    )
    .unwrap();
    let summary = runtime.run();
    assert!(summary.error().is_none());
    assert_eq!(summary.reloads_late, 1);
    let said = said.0.lock().unwrap().said.clone();
    assert!(
        said.iter().any(|n| n.contains(
            "controls partition 0 offset 0: a `$list` record of time 1970-01-01T00:00:00.500Z read when event time was already at 1970-01-01T00:00:00.999Z: applied now, late"
        )),
        "{said:?}"
    );
    // (from the watermark then + 1 on, 1,000: the event at 1,000, still
    // waiting for the watermark, sees it, as the one at 2,000)
    let records = sink.records.lock().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records[0].2.contains(r#""start":1000"#), "{records:?}");
    assert!(records[1].2.contains(r#""start":2000"#), "{records:?}");
}

/// [`Memory`] that takes the records of `shadow` patterns when `shadow`
/// says so (`Sink::takes_shadow`).
struct ShadowSink {
    memory: Memory,
    shadow: bool,
}

impl Sink for ShadowSink {
    fn describe(&self, kind: Kind) -> String {
        self.memory.describe(kind)
    }

    fn takes_shadow(&self) -> bool {
        self.shadow
    }

    fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        self.memory.write(kind, key, record)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }

    fn recover(&mut self, _kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(0)
    }
}

/// A shadow pattern runs without a shadow output file when the run's sink
/// takes its records (`Sink::takes_shadow`: a Kafka shadow topic, the
/// lab's records): they reach it as `Kind::Shadow`, none as a match; a
/// sink that does not take them is refused before the run starts.
#[test]
fn a_sink_that_takes_shadow_records_is_the_shadow_patterns_output() {
    let run = |shadow: bool| {
        let rules = Rules::parse("ab.cep", &RULES.replace("match a", "shadow\n    match a"));
        let rules = rules.unwrap();
        assert!(rules.patterns()[0].shadow);
        let mut config = Config::new(Input::Stdin, Vec::new());
        config.flush_at_end = true;
        let mut engine = config.engine();
        engine.add(&rules).unwrap();
        let source = Lines {
            lines: vec![ev(1, "a", "x"), ev(2, "b", "x"), ev(3, "a", "y")],
            next: 0,
            committed: Arc::default(),
        };
        let memory = Memory::default();
        let sink = ShadowSink {
            memory: memory.clone(),
            shadow,
        };
        let runtime = Runtime::with_source(
            config,
            engine,
            Some(Box::new(source)),
            Some(Box::new(sink)),
            Box::new(Notices::default()),
        );
        (runtime, memory)
    };
    let (runtime, memory) = run(true);
    runtime.unwrap().run();
    let records = memory.records.lock().unwrap().clone();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].0, Kind::Shadow);
    assert_eq!(records[0].1, r#"{"k":"x"}"#);
    let (refused, _) = run(false);
    let said = refused.err().expect("refused").to_string();
    assert!(
        said.contains("pattern `ab` is a shadow pattern, and the run has no shadow output"),
        "{said}"
    );
}

/// [`Block`]'s records, placed in its own form (`mine:SPLIT/OFFSET`),
/// counting how often it was asked.
struct Named {
    block: Block,
    asked: Arc<Mutex<usize>>,
}

impl Source for Named {
    fn describe(&self) -> String {
        self.block.describe()
    }

    fn read(&mut self, batch: &mut RawBatch, wait: Duration) -> Result<ReadOutcome, SourceError> {
        self.block.read(batch, wait)
    }

    fn position(&self) -> Position {
        self.block.position()
    }

    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        self.block.seek(position)
    }

    fn splits(&self) -> usize {
        self.block.splits()
    }

    fn describe_origin(&self, split: u32, origin: &Origin) -> String {
        *self.asked.lock().unwrap() += 1;
        match origin {
            Origin::Offset { offset, .. } => format!("mine:{split}/{offset}"),
            Origin::Line(n) => format!("mine:{n}"),
        }
    }
}

/// [`Memory`], taking decisions.
#[derive(Clone, Default)]
struct Decides(Memory);

impl Sink for Decides {
    fn describe(&self, kind: Kind) -> String {
        self.0.describe(kind)
    }

    fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        self.0.write(kind, key, record)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.0.flush()
    }

    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError> {
        self.0.prepare(checkpoint)
    }

    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        self.0.commit(checkpoint, source)
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        self.0.recover(kept)
    }

    fn takes_decisions(&self) -> bool {
        true
    }
}

/// A library source's events are named in their decisions (a scene
/// without `id`) as its `Source::describe_origin` places them
/// (`docs/decisions.md`, "The position"): by default its name, partition
/// and offset; in its own form when it has one. A run whose sink takes no
/// decisions asks it for no event.
#[test]
fn a_sources_events_are_named_in_their_decisions_as_it_places_them() {
    let rules = Rules::parse(
        "scene.cep",
        r#"pattern big {
    score 30
    tags "t"
    match p
    where p: type == "p" and amount > 100
}

scene s {
    when type == "p"
    rules tagged "t"
    outcomes approve < review
    review if score >= 30
    fallback approve
    deadline 100ms
}"#,
    )
    .unwrap();
    let records = || {
        let ev = |ts: i64, t: &str, amount: i64| {
            format!(r#"{{"ts":{ts},"type":"{t}","amount":{amount}}}"#)
        };
        vec![
            (0, 10, None, ev(1, "p", 500)),
            (1, 7, None, ev(2, "q", 500)),
            (1, 8, None, ev(3, "p", 5)),
            (0, 11, None, r#"{"ts": "soon"}"#.to_string()),
        ]
    };
    let run = |source: Box<dyn Source>, sink: Box<dyn Sink>| {
        let c = Config::new(Input::Stdin, Vec::new());
        let mut engine = c.engine();
        engine.add(&rules).unwrap();
        let runtime = Runtime::with_source(
            c,
            engine,
            Some(source),
            Some(sink),
            Box::new(Said::default()),
        );
        let summary = runtime.unwrap().run();
        assert!(summary.error().is_none(), "{summary}");
    };
    let positions = |sink: &Decides| {
        let records = sink.0.records.lock().unwrap().clone();
        (records.iter())
            .filter(|(kind, _, _)| *kind == Kind::Decision)
            .map(|(_, _, d)| {
                let d: serde_json::Value = serde_json::from_str(d).unwrap();
                assert_eq!(d.get("event"), None, "{d}");
                (
                    d["position"].as_str().unwrap().to_string(),
                    d["outcome"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let block = || Block {
        records: records(),
        done: false,
    };
    // By default.
    let sink = Decides::default();
    run(Box::new(block()), Box::new(sink.clone()));
    assert_eq!(
        positions(&sink),
        [
            ("block partition 0 offset 10".to_string(), "review".into()),
            ("block partition 1 offset 8".to_string(), "approve".into()),
        ]
    );
    // In its own form, asked once per event and for the malformed record.
    let asked = Arc::new(Mutex::new(0));
    let named = || Named {
        block: block(),
        asked: Arc::clone(&asked),
    };
    let sink = Decides::default();
    run(Box::new(named()), Box::new(sink.clone()));
    assert_eq!(
        positions(&sink),
        [
            ("mine:0/10".to_string(), "review".into()),
            ("mine:1/8".to_string(), "approve".into()),
        ]
    );
    assert_eq!(*asked.lock().unwrap(), 4);
    // A sink that takes no decisions: the malformed record alone.
    *asked.lock().unwrap() = 0;
    run(Box::new(named()), Box::<Memory>::default());
    assert_eq!(*asked.lock().unwrap(), 1);
}

/// A source that hands out one line, then fails to read on.
struct Failing {
    read: bool,
}

impl Source for Failing {
    fn describe(&self) -> String {
        "the failing source".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, _wait: Duration) -> Result<ReadOutcome, SourceError> {
        if self.read {
            return Err(SourceError {
                source_name: self.describe(),
                error: std::io::Error::other("the disk went away"),
            });
        }
        self.read = true;
        let line = r#"{"ts": 1, "type": "a", "k": 1}"#;
        batch.push(line.as_bytes(), Origin::Line(1), None, 0);
        Ok(ReadOutcome::Delivered)
    }

    fn position(&self) -> Position {
        Position::None
    }

    fn seek(&mut self, _: &Position) -> Result<(), SourceError> {
        Ok(())
    }
}

/// A source's read error is said in the source's words, once: it names
/// the source, not the command's input (standard input, for a run over
/// a source), and the run ends with it.
#[test]
fn a_sources_read_error_is_said_in_its_own_words() {
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let config = Config::new(Input::Stdin, Vec::new());
    let mut engine = config.engine();
    engine.add(&rules).unwrap();
    let said = Said::default();
    let summary = Runtime::with_source(
        config,
        engine,
        Some(Box::new(Failing { read: false })),
        Some(Box::new(Memory::default())),
        Box::new(said.clone()),
    )
    .unwrap()
    .run();
    let error = summary.error().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        error, "cannot read the failing source: the disk went away",
        "{summary}"
    );
    let said = said.0.lock().unwrap().join("\n");
    assert!(
        said.contains("error: cannot read the failing source: the disk went away"),
        "{said}"
    );
    assert!(!said.contains("standard input"), "{said}");
}
