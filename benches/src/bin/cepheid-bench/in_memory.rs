//! One workload with its events already in memory: the engine and the
//! hand-written baseline timed in the same process (best of a few passes),
//! then one more pass of each that measures heap memory.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use cepheid_bench::baseline::{self, Baseline, FollowedBy, Times};
use cepheid_bench::drive::WorkloadEngine;
use cepheid_bench::{BenchEvent, Counts, Params, Workload, TYPE_A, TYPE_B};

use crate::alloc;

/// What one workload measured in memory (one JSON line from the child).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InMemory {
    /// Workload name.
    pub workload: String,
    /// The stream's parameters.
    pub events: u64,
    /// Number of keys.
    pub keys: u64,
    /// Best engine time over the passes, in seconds (events to flush).
    pub engine_secs: f64,
    /// The engine's counts.
    pub engine: Counts,
    /// Best baseline time, when the workload has a baseline.
    pub baseline_secs: Option<f64>,
    /// The baseline's counts.
    pub baseline: Option<Counts>,
    /// The table's counts for these parameters, if it has a row.
    pub expected: Option<Counts>,
    /// Keys with live state just before the end-of-stream flush (engine).
    pub live_partitions: u64,
    /// Live runs at the same point according to the baseline (the engine
    /// has the same runs, it does not count them).
    pub baseline_live_runs: Option<u64>,
    /// Events held by the engine's shared buffer at that point.
    pub stored_events: u64,
    /// Engine heap bytes at that point (the input vector excluded).
    pub engine_heap: u64,
    /// Peak engine heap bytes over the pass.
    pub engine_heap_peak: u64,
    /// Peak heap bytes of the baseline's pass.
    pub baseline_heap_peak: Option<u64>,
    /// The process's peak resident set (input events included).
    pub process_rss_peak: Option<u64>,
}

/// Repeated passes stop once the passes so far took this long.
const BUDGET_SECS: f64 = 10.0;

/// Runs `workload` on `params`: a first engine pass that also samples
/// memory, then up to `passes - 1` more while the time budget lasts.
pub fn measure(workload: Workload, params: &Params, passes: usize) -> Result<InMemory, String> {
    let events: Vec<BenchEvent> = workload.events(params).collect();
    let start = Instant::now();
    let (probe, engine) = engine_memory_pass(workload, &events)?;
    let mut engine_secs = start.elapsed().as_secs_f64();
    let mut spent = engine_secs;
    for _ in 1..passes {
        if spent > BUDGET_SECS {
            break;
        }
        let start = Instant::now();
        engine_pass(workload, &events)?;
        let secs = start.elapsed().as_secs_f64();
        engine_secs = engine_secs.min(secs);
        spent += secs;
    }
    let base = baseline_measure(workload, &events, passes);
    Ok(InMemory {
        workload: workload.label(),
        events: params.events,
        keys: params.keys,
        engine_secs,
        engine,
        baseline_secs: base.as_ref().map(|b| b.secs),
        baseline: base.as_ref().map(|b| b.counts),
        expected: workload.expected(params),
        live_partitions: probe.live_partitions,
        baseline_live_runs: base.as_ref().map(|b| b.live_runs),
        stored_events: probe.stored_events,
        engine_heap: probe.heap_at_end,
        engine_heap_peak: probe.heap_peak,
        baseline_heap_peak: base.as_ref().map(|b| b.heap_peak),
        process_rss_peak: alloc::peak_rss(),
    })
}

/// One engine pass: every event, then time to infinity.
fn engine_pass(workload: Workload, events: &[BenchEvent]) -> Result<Counts, String> {
    let mut engine = WorkloadEngine::new(workload)?;
    for event in events {
        engine.push(*event);
    }
    Ok(engine.flush())
}

/// Memory seen during an engine pass.
struct MemoryProbe {
    live_partitions: u64,
    stored_events: u64,
    heap_at_end: u64,
    heap_peak: u64,
}

/// An engine pass that samples the heap just before the final flush.
fn engine_memory_pass(
    workload: Workload,
    events: &[BenchEvent],
) -> Result<(MemoryProbe, Counts), String> {
    let before = alloc::live();
    alloc::reset_peak();
    let mut engine = WorkloadEngine::new(workload)?;
    for event in events {
        engine.push(*event);
    }
    let probe = MemoryProbe {
        live_partitions: engine.live_partitions() as u64,
        stored_events: engine.stored_events() as u64,
        heap_at_end: alloc::live().saturating_sub(before) as u64,
        heap_peak: alloc::peak().saturating_sub(before) as u64,
    };
    let counts = engine.flush();
    Ok((probe, counts))
}

/// The baseline's figures.
struct BaselineFigures {
    secs: f64,
    counts: Counts,
    live_runs: u64,
    heap_peak: u64,
}

/// Times the workload's baseline, if it has one.
fn baseline_measure(
    workload: Workload,
    events: &[BenchEvent],
    passes: usize,
) -> Option<BaselineFigures> {
    match workload {
        Workload::Ab => Some(time_baseline(
            || FollowedBy::new(TYPE_A, TYPE_B, baseline::WITHIN_10S),
            events,
            passes,
        )),
        Workload::Unpaid => Some(time_baseline(
            || FollowedBy::new(TYPE_A, TYPE_B, baseline::WITHIN_15M),
            events,
            passes,
        )),
        Workload::Login => Some(time_baseline(
            || Times::consecutive(TYPE_A, 3, baseline::WITHIN_10S),
            events,
            passes,
        )),
        Workload::Many { rules } => Some(time_baseline(
            || baseline::Many::with_rules(rules),
            events,
            passes,
        )),
        Workload::Loop => None,
    }
}

/// Best-of timing of a baseline plus one pass measuring its memory.
fn time_baseline<B: Baseline>(
    make: impl Fn() -> B,
    events: &[BenchEvent],
    passes: usize,
) -> BaselineFigures {
    let mut secs = f64::INFINITY;
    let mut spent = 0.0;
    let mut counts = Counts::default();
    for _ in 0..passes.max(1) {
        if spent > BUDGET_SECS {
            break;
        }
        let start = Instant::now();
        counts = baseline::drive(make(), events);
        let pass = start.elapsed().as_secs_f64();
        secs = secs.min(pass);
        spent += pass;
    }
    let before = alloc::live();
    alloc::reset_peak();
    let mut rule = make();
    for event in events {
        rule.on_event(event);
    }
    let live_runs = rule.live_runs() as u64;
    rule.finish();
    let heap_peak = alloc::peak().saturating_sub(before) as u64;
    BaselineFigures {
        secs,
        counts,
        live_runs,
        heap_peak,
    }
}
