//! The runtime as a library user drives it, for the `control` and
//! `checkpoint` targets: records from memory (a [`Source`] of the fuzz
//! bytes' lines, its rules records on a split of their own as a Kafka
//! rules topic's), records to memory (a [`Sink`]), one fixed pattern.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_engine::Rules;
use cepheid_runtime::{
    Checkpoint, Config, Input, Kind, Notices, Origin, Position, RawBatch, ReadOutcome, Runtime,
    Sink, SinkError, SinkState, Source, SourceError,
};

/// The pattern every run starts with.
pub const RULES: &str = r#"pattern ab {
    partition by k
    within 10s
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;

/// One record of a [`Lines`] source.
pub struct Line {
    /// A record of its rules stream (split 1), else of its events (0).
    pub rules: bool,
    /// Its timestamp (a Kafka record's), if it has one.
    pub time: Option<i64>,
    pub bytes: Vec<u8>,
}

/// Records from memory, a few a read; its position the number handed
/// out (8 bytes, little-endian).
pub struct Lines {
    pub lines: Vec<Line>,
    pub next: usize,
}

impl Source for Lines {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn read(&mut self, batch: &mut RawBatch, _wait: Duration) -> Result<ReadOutcome, SourceError> {
        if self.next >= self.lines.len() {
            return Ok(ReadOutcome::Ended);
        }
        for line in self.lines.iter().skip(self.next).take(3) {
            self.next += 1;
            let origin = Origin::Offset {
                partition: u32::from(line.rules),
                offset: self.next as i64,
            };
            if line.rules {
                batch.push_rules(&line.bytes, origin, line.time, 1);
            } else {
                batch.push(&line.bytes, origin, line.time, 0);
            }
        }
        Ok(ReadOutcome::Delivered)
    }

    fn position(&self) -> Position {
        Position::Bytes((self.next as u64).to_le_bytes().to_vec())
    }

    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        // (a position of the fuzz bytes' checkpoint may be anything)
        let Position::Bytes(bytes) = position else {
            return Err(error("not a position of this source"));
        };
        let Some(n) = bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
            return Err(error("a position of 8 bytes"));
        };
        self.next = usize::try_from(u64::from_le_bytes(n)).unwrap_or(usize::MAX);
        Ok(())
    }
}

fn error(why: &str) -> SourceError {
    SourceError {
        source_name: "memory".to_string(),
        error: std::io::Error::other(why.to_string()),
    }
}

/// Records in memory: each its kind and its bytes.
#[derive(Clone, Default)]
pub struct Memory {
    pub records: Arc<Mutex<Records>>,
}

/// What a [`Memory`] sink holds.
pub type Records = Vec<(Kind, Vec<u8>)>;

impl Sink for Memory {
    fn describe(&self, _kind: Kind) -> String {
        "memory".to_string()
    }

    fn write(&mut self, kind: Kind, _key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        self.records.lock().unwrap().push((kind, record.to_vec()));
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

/// The configuration of the fuzz runs: `options`' bits choose split
/// watermarks, rules from the stream and the allowed delay.
pub fn config(options: u8) -> Config {
    let mut config = Config::new(Input::Stdin, Vec::new());
    config.split_watermarks = options & 1 != 0;
    config.rules_from_stream = options & 2 != 0;
    config.max_delay = [
        Duration::ZERO,
        Duration::from_millis(5),
        Duration::from_secs(1),
        Duration::from_secs(3600),
    ][usize::from(options >> 2 & 3)];
    config.flush_at_end = options & 16 != 0;
    config.max_runs_per_key = 1_000;
    config
}

/// Runs `lines` from memory to memory with `config` and the pattern
/// [`RULES`]: the run's end, whatever it is (an error included), must be
/// reached without a panic.
pub fn run(config: Config, lines: Vec<Line>) -> cepheid_runtime::Summary {
    let rules = Rules::parse("ab.cep", RULES).expect("the fixed pattern");
    let mut engine = config.engine();
    engine.add(&rules).expect("the fixed pattern");
    let source = Lines { lines, next: 0 };
    let runtime = Runtime::with_source(
        config,
        engine,
        Some(Box::new(source)),
        Some(Box::new(Memory::default())),
        Box::new(Notices::default()),
    );
    match runtime {
        Ok(runtime) => runtime.run(),
        Err(_) => cepheid_runtime::Summary::default(),
    }
}
