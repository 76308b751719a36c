//! The one writer of both executors through the public API: [`Files`]
//! written by their callers take blocks whole and recover from a
//! checkpoint; an [`Output`]'s first error is said once and ends the run;
//! the [`Tap`] keeps the latest records.

use std::io;

use cepheid_runtime::source::Position;
use cepheid_runtime::{
    Block, Checkpoint, Config, End, Error, Files, Kind, Notice, Notify, Output, Report, Sink,
    SinkError, SinkState, Tap, Writing,
};

use crate::support::scratch;

/// What a report was told.
#[derive(Clone, Default)]
struct Said(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Report for Said {
    fn notice(&mut self, notice: Notice) {
        self.0.lock().unwrap().push(notice.to_string());
    }
}

impl Said {
    fn notify(&self) -> Notify {
        Notify::of_shared(std::sync::Arc::new(std::sync::Mutex::new(Box::new(
            self.clone(),
        ))))
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Files written by their callers take each block's records at once,
/// the late ones to the late file, in order; resumed, each file is
/// truncated to its length at the checkpoint, or started empty when it
/// was rotated since (said).
#[test]
fn files_take_blocks_whole_and_truncate_or_start_anew_on_resuming() {
    let dir = scratch("files");
    let config = Config {
        output: Some(dir.join("out.jsonl")),
        late: Some(dir.join("late.jsonl")),
        checkpoint: Some(dir.join("ckpt")),
        ..Config::default()
    };
    let said = Said::default();
    let mut files = Files::open(&config, false, Writing::Caller).unwrap();
    files.notify_to(said.notify());
    let mut block = Block::default();
    let lines = [
        (Kind::Match, "m1\n"),
        (Kind::Late, "l1\n"),
        (Kind::Late, "l2\n"),
        (Kind::Timeout, "t1\n"),
        (Kind::Match, "m2\n"),
    ];
    for (kind, line) in lines {
        block.push_line(kind, line.as_bytes(), 0..0);
    }
    files.write_block(&block).unwrap();
    let at = files.prepare(1).unwrap();
    assert_eq!((at.output_len, at.late_len), (Some(9), Some(6)));
    files.write_block(&block).unwrap();
    files.flush().unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(read("out.jsonl"), "m1\nt1\nm2\n".repeat(2));
    assert_eq!(read("late.jsonl"), "l1\nl2\n".repeat(2));
    drop(files);
    // Resumed at the checkpoint: the records after it go.
    let checkpoint = Checkpoint {
        number: 1,
        source: Position::None,
        sink: at.clone(),
    };
    let mut files = Files::open(&config, true, Writing::Caller).unwrap();
    assert_eq!(files.recover(std::slice::from_ref(&checkpoint)).unwrap(), 0);
    assert_eq!(read("out.jsonl"), "m1\nt1\nm2\n");
    assert_eq!(read("late.jsonl"), "l1\nl2\n");
    drop(files);
    // The output rotated since (other first bytes): started empty,
    // said; the late file truncated.
    std::fs::write(dir.join("out.jsonl"), "xx\nt1\nm2\n").unwrap();
    std::fs::write(dir.join("late.jsonl"), "l1\nl2\nl3\n").unwrap();
    assert!(said.lines().is_empty(), "{:?}", said.lines());
    let mut files = Files::open(&config, true, Writing::Thread).unwrap();
    files.notify_to(said.notify());
    files.recover(&[checkpoint]).unwrap();
    assert_eq!(read("out.jsonl"), "");
    assert_eq!(read("late.jsonl"), "l1\nl2\n");
    let out = dir.join("out.jsonl");
    assert_eq!(
        said.lines(),
        [format!(
            "warning: checkpoint in {}: {} was rotated since (it holds 9 bytes, not the 9 it held then, or other ones): it is started empty and the records after the checkpoint are written into it (the rotated file may hold some of them too)",
            dir.join("ckpt").display(),
            out.display()
        )]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sink whose writes fail with `kind` after `ok` of them.
struct Failing {
    ok: usize,
    kind: io::ErrorKind,
    written: usize,
}

impl Sink for Failing {
    fn describe(&self, _: Kind) -> String {
        "out.jsonl".to_string()
    }
    fn write(&mut self, _: Kind, _: &[u8], _: &[u8]) -> Result<(), SinkError> {
        if self.written == self.ok {
            return Err(SinkError {
                target: "out.jsonl".to_string(),
                late: false,
                source: io::Error::new(self.kind, "the disk is full"),
            });
        }
        self.written += 1;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn prepare(&mut self, _: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }
    fn recover(&mut self, _: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(0)
    }
}

/// The output's first error is said once and is the run's end; what
/// is written after it is dropped; a closed output ends it quietly.
#[test]
fn an_outputs_first_error_is_said_once_and_ends_the_run() {
    let said = Said::default();
    let sink = Failing {
        ok: 3,
        kind: io::ErrorKind::StorageFull,
        written: 0,
    };
    let mut out = Output::new(Box::new(sink), said.notify());
    let mut block = Block::default();
    for _ in 0..5 {
        block.push_line(Kind::Match, b"m\n", 0..0);
    }
    out.write_block(&block);
    out.write(Kind::Match, b"", b"m\n");
    assert!(out.failed());
    assert_eq!(
        out.prepare(1).map_err(|e| e.to_string()),
        Err("cannot write out.jsonl: the disk is full".to_string())
    );
    let (end, flushed) = out.end(End::Input);
    assert!(
        matches!(&end, End::Failed(Error::Sink(e)) if e.source.kind() == io::ErrorKind::StorageFull),
        "{end:?}"
    );
    assert!(flushed);
    assert_eq!(
        said.lines(),
        ["error: cannot write out.jsonl: the disk is full"]
    );
    // A closed output: nothing said, a quiet end.
    let said = Said::default();
    let sink = Failing {
        ok: 0,
        kind: io::ErrorKind::BrokenPipe,
        written: 0,
    };
    let mut out = Output::new(Box::new(sink), said.notify());
    out.write(Kind::Match, b"", b"m\n");
    assert!(matches!(out.end(End::Input), (End::OutputClosed, true)));
    assert!(said.lines().is_empty());
}

/// A record of kind `kind` numbered `n`, 900 bytes long.
fn record(n: u32, kind: Kind) -> String {
    let name = match kind {
        Kind::Match => "match",
        Kind::Timeout => "timeout",
        Kind::Late => "late",
        Kind::Shadow => "shadow",
        Kind::Audit => "rules_change",
        Kind::Decision => "decision",
    };
    format!("{{\"kind\":\"{name}\",\"n\":{n}{}}}\n", " ".repeat(900))
}

/// A block of the records numbered `from..to`, every fifth a timeout.
fn numbered(from: u32, to: u32) -> (Block, Vec<(Kind, String)>) {
    let mut block = Block::default();
    let mut all = Vec::new();
    for n in from..to {
        let kind = if n % 5 == 0 {
            Kind::Timeout
        } else {
            Kind::Match
        };
        let line = record(n, kind);
        block.push_line(kind, line.as_bytes(), 0..0);
        all.push((kind, line));
    }
    (block, all)
}

/// The tap keeps the latest whole records, at most as many as wanted,
/// oldest first, each with its kind, whether they come one at a time
/// or by block; what was shown is gone, and late records are never
/// kept.
#[test]
fn the_tap_keeps_the_latest_records_one_at_a_time_or_by_block() {
    let mut tap = Tap::new(3);
    let (big, all) = numbered(0, 400);
    tap.block(&big);
    assert_eq!(tap.records(), &all[397..]);
    tap.shown();
    assert!(tap.records().is_empty());
    tap.shown();
    // Blocks of fewer records than wanted: put together in order.
    for b in 0..4 {
        tap.block(&numbered(2 * b, 2 * b + 2).0);
    }
    assert_eq!(tap.records(), &numbered(5, 8).1[..]);
    tap.shown();
    // Records one at a time, and late ones among them left out.
    for (kind, line) in numbered(10, 12).1 {
        tap.push(kind, line.as_bytes());
        tap.push(Kind::Late, record(99, Kind::Late).as_bytes());
    }
    let mut with_late = Block::default();
    let late = record(100, Kind::Late);
    let (_, last) = numbered(12, 13);
    with_late.push_line(last[0].0, last[0].1.as_bytes(), 0..0);
    with_late.push_line(Kind::Late, late.as_bytes(), 0..0);
    tap.block(&with_late);
    assert_eq!(tap.records(), &numbered(10, 13).1[..]);
    tap.shown();
    // An empty block keeps nothing; a tap that wants none neither.
    tap.block(&Block::default());
    assert!(tap.records().is_empty());
    let mut none = Tap::new(0);
    none.block(&big);
    assert!(none.records().is_empty());
}
