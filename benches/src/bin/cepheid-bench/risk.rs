//! The `risk` workload in memory (`--child risk`): the engine over the
//! payments of `bench-workloads.md`, best of a few passes, its counts
//! checked against the table and the hand-written windows.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use cepheid_bench::risk::{self, RiskCounts, RiskEvent};
use cepheid_engine::Timestamp;

use crate::alloc;

/// What `risk` measured (one JSON line from the child).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RiskFigures {
    /// `risk`.
    pub workload: String,
    /// Events N.
    pub events: u64,
    /// Best engine time over the passes, in seconds.
    pub engine_secs: f64,
    /// Events per second at that time.
    pub events_per_sec: f64,
    /// The engine's flagged events per rule.
    pub engine: RiskCounts,
    /// The hand-written windows' (not timed: a check).
    pub reference: RiskCounts,
    /// The table's, when it has a row for N.
    pub expected: Option<RiskCounts>,
    /// Peak engine heap bytes over the first pass.
    pub engine_heap_peak: u64,
    /// The process's peak resident set (input events included).
    pub process_rss_peak: Option<u64>,
}

/// Repeated passes stop once the passes so far took this long.
const BUDGET_SECS: f64 = 10.0;

/// One engine pass over `events` (`scene`: with the rules in the scene
/// `payment`, one decision per event, checked: every event decided once).
fn pass(events: &[RiskEvent], scene: bool) -> Result<RiskCounts, String> {
    let mut engine = match scene {
        false => risk::engine_for::<RiskEvent>()?,
        true => risk::engine_with_scene_for::<RiskEvent>()?,
    };
    let mut sink = risk::Discard::default();
    for e in events {
        engine.push(e.ts, *e, &mut sink);
    }
    engine.watermark(Timestamp::MAX, &mut sink);
    if scene {
        let decided: u64 = sink.decisions.iter().sum();
        if decided != events.len() as u64 {
            return Err(format!("{decided} decisions for {} events", events.len()));
        }
    }
    Ok(risk::counts_of(&engine))
}

/// Measures `risk` (`scene`: `risk-scene`) over `n` events (seed 42, 10
/// ms apart).
pub fn measure(n: u64, passes: usize, scene: bool) -> Result<RiskFigures, String> {
    let events: Vec<RiskEvent> = risk::events(n, 42, risk::STEP_MS).collect();
    let before = alloc::live();
    alloc::reset_peak();
    let start = Instant::now();
    let engine = pass(&events, scene)?;
    let mut best = start.elapsed().as_secs_f64();
    let engine_heap_peak = alloc::peak().saturating_sub(before) as u64;
    let mut spent = best;
    for _ in 1..passes {
        if spent > BUDGET_SECS {
            break;
        }
        let start = Instant::now();
        pass(&events, scene)?;
        let secs = start.elapsed().as_secs_f64();
        best = best.min(secs);
        spent += secs;
    }
    Ok(RiskFigures {
        workload: if scene { "risk-scene" } else { "risk" }.to_string(),
        events: n,
        engine_secs: best,
        events_per_sec: n as f64 / best,
        engine,
        reference: risk::reference_counts(&events),
        expected: risk::expected(n, 42, risk::STEP_MS),
        engine_heap_peak,
        process_rss_peak: alloc::peak_rss(),
    })
}
