//! The engine driven over a workload: the workload's pattern text loaded
//! with the front end, compiled for [`BenchEvent`], and run in an
//! [`Engine`] that counts what it produces. Shared by the benches, the
//! bench command and the tests.
//!
//! ```no_run
//! use cepheid_bench::{drive::WorkloadEngine, Workload};
//! let params = Workload::Ab.default_params();
//! let mut engine = WorkloadEngine::new(Workload::Ab).unwrap();
//! for event in Workload::Ab.events(&params) {
//!     engine.push(event);
//! }
//! let counts = engine.flush();
//! assert_eq!(Some(counts), Workload::Ab.expected(&params));
//! ```

use cepheid_core::event::Event;
use cepheid_core::pattern::Pattern;
use cepheid_core::record::Record;
use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::engine::{Engine, MatchRef, Sink};
use cepheid_engine::Timestamp;

use crate::{BenchEvent, Counts, Workload};

/// An engine running one workload's patterns over [`BenchEvent`]s.
pub struct WorkloadEngine {
    engine: Engine<BenchEvent>,
    sink: Tally,
}

impl WorkloadEngine {
    /// Loads and compiles the workload's patterns into a fresh engine.
    pub fn new(workload: Workload) -> Result<WorkloadEngine, String> {
        Ok(WorkloadEngine {
            engine: engine_for(workload)?,
            sink: Tally::default(),
        })
    }

    /// Pushes one event (in time order, so it is processed at once).
    pub fn push(&mut self, event: BenchEvent) {
        self.engine.push(event.ts, event, &mut self.sink);
    }

    /// Lets time run to infinity and returns the counts.
    pub fn flush(&mut self) -> Counts {
        self.engine.watermark(Timestamp::MAX, &mut self.sink);
        self.counts()
    }

    /// Matches and timeouts so far.
    pub fn counts(&self) -> Counts {
        let stats = self.engine.stats();
        Counts {
            matches: stats.matches,
            timeouts: stats.timeouts,
        }
    }

    /// Keys with live state, summed over the patterns.
    pub fn live_partitions(&self) -> usize {
        self.engine.live_keys()
    }

    /// Events held in the shared buffer by partial matches.
    pub fn stored_events(&self) -> usize {
        self.engine.stored_events()
    }

    /// A sum over the start and end times of every output, so that the
    /// work of producing them cannot be optimised away.
    pub fn checksum(&self) -> i64 {
        self.sink.checksum
    }
}

/// The workload's patterns, loaded from their text.
fn patterns(workload: Workload) -> Result<Vec<Pattern>, String> {
    let loaded = cepheid_engine::rules::load_str(workload.name(), &workload.pattern_text());
    if loaded.has_errors() || loaded.patterns.is_empty() {
        return Err(format!(
            "the {} pattern does not load: {:?}",
            workload.name(),
            loaded.diagnostics
        ));
    }
    Ok(loaded.patterns)
}

/// A fresh engine (no delay) with the workload's patterns, for events of
/// type `E` ([`BenchEvent`] or [`Record`]).
pub fn engine_for<E: Event + 'static>(workload: Workload) -> Result<Engine<E>, String> {
    let mut engine = Engine::new();
    for pattern in &patterns(workload)? {
        engine.add(pattern).map_err(|e| e.to_string())?;
    }
    Ok(engine)
}

/// Runs `workload`'s patterns over JSON lines (as `cepheid run` reads
/// them: dynamic [`Record`]s, event time from `ts`) and returns the counts.
/// Malformed lines are an error here: the workloads write none.
pub fn jsonl_counts(workload: Workload, input: &[u8]) -> Result<Counts, String> {
    let mut engine: Engine<Record> = engine_for(workload)?;
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut sink = Tally::default();
    for (_, item) in Items::new(workload.name(), input, decoder) {
        match item.map_err(|e| e.to_string())? {
            Item::Event(ts, record) => {
                engine.push(ts, record, &mut sink);
            }
            Item::Watermark(t) => engine.watermark(t, &mut sink),
            Item::Skip => {}
        }
    }
    engine.watermark(Timestamp::MAX, &mut sink);
    let stats = engine.stats();
    Ok(Counts {
        matches: stats.matches,
        timeouts: stats.timeouts,
    })
}

/// Runs `workload`'s patterns over `events` and returns the counts.
pub fn engine_counts(workload: Workload, events: &[BenchEvent]) -> Result<Counts, String> {
    let mut engine = WorkloadEngine::new(workload)?;
    for event in events {
        engine.push(*event);
    }
    Ok(engine.flush())
}

/// A sink that reads each output's time span and drops it (the engine
/// counts matches and timeouts itself).
#[derive(Debug, Default)]
struct Tally {
    checksum: i64,
}

impl<E> Sink<E> for Tally {
    fn on_match(&mut self, m: &MatchRef<'_, E>) {
        self.checksum = self.checksum.wrapping_add(m.start() ^ m.end());
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, E>, expired_at: Timestamp) {
        self.checksum = self.checksum.wrapping_add(m.start() ^ expired_at);
    }

    fn on_late(&mut self, ts: Timestamp, _event: &E) {
        self.checksum = self.checksum.wrapping_add(ts);
    }
}
