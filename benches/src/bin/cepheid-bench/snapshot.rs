//! `cepheid-bench --snapshot`: the size of an engine snapshot and the time
//! to write and to restore it, with a workload's stream in steady state
//! (`docs/snapshot.md`). For typed events ([`BenchEvent`]) and for records
//! decoded from JSON lines, as `cepheid run` holds them.

use std::time::{Duration, Instant};

use cepheid_bench::drive::engine_for;
use cepheid_bench::{BenchEvent, Params, Workload};
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::Output;
use cepheid_engine::{Event, Record};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The parameters of a measurement at `keys` keys: `4 K + 1` events (every
/// key's follow-up is `2 K` events after its start, so the state is steady
/// from `2 K` events on), and for `unpaid` a step short enough that its K
/// orders are all open (`2 K` steps within its 15 minutes).
pub fn params(workload: Workload, keys: u64, events: Option<u64>) -> Params {
    let defaults = workload.default_params();
    let step_ms = match workload {
        Workload::Unpaid => (899_999 / (2 * keys.max(1)) as i64).clamp(1, defaults.step_ms),
        _ => defaults.step_ms,
    };
    Params {
        events: events.unwrap_or(4 * keys + 1),
        keys,
        step_ms,
        ..defaults
    }
}

/// Feeds the stream to a fresh engine, then measures its snapshot.
fn measure_one<E>(
    workload: Workload,
    events: &[(i64, E)],
    passes: usize,
) -> Result<(String, usize), String>
where
    E: Event + Clone + Serialize + DeserializeOwned + 'static,
{
    let mut engine = engine_for::<E>(workload)?;
    let mut sink: Vec<Output<E>> = Vec::new();
    for (ts, e) in events {
        engine.push(*ts, e.clone(), &mut sink);
        sink.clear();
    }
    let (live, stored) = (engine.live_keys(), engine.stored_events());
    let mut bytes = Vec::new();
    let mut write = Duration::MAX;
    let mut read = Duration::MAX;
    for _ in 0..passes.max(1) {
        bytes.clear();
        let start = Instant::now();
        engine.snapshot(&mut bytes).map_err(|e| e.to_string())?;
        write = write.min(start.elapsed());
        let start = Instant::now();
        let mut restored = engine_for::<E>(workload)?;
        restored.restore(&bytes[..]).map_err(|e| e.to_string())?;
        read = read.min(start.elapsed());
        if restored.live_keys() != live {
            return Err("the restored engine differs".into());
        }
    }
    let row = format!(
        "{live:>10} {stored:>10} {:>12} {:>8.1} {:>10.1} {:>10.1}",
        bytes.len(),
        bytes.len() as f64 / live.max(1) as f64,
        write.as_secs_f64() * 1e3,
        read.as_secs_f64() * 1e3,
    );
    Ok((row, bytes.len()))
}

/// Measures `workload` at `params` and prints one row per event type.
pub fn measure(workload: Workload, params: &Params, passes: usize) -> Result<(), String> {
    let typed: Vec<(i64, BenchEvent)> = workload.events(params).map(|e| (e.ts, e)).collect();
    let mut jsonl = Vec::new();
    cepheid_bench::write_jsonl(typed.iter().map(|(_, e)| *e), &mut jsonl)
        .map_err(|e| e.to_string())?;
    // The records' field ids are the engine's: decode with its table.
    let table = engine_for::<Record>(workload)?.fields().clone();
    let mut decoder = Decoder::new(Format::JsonLines, "ts", table);
    let mut records = Vec::with_capacity(typed.len());
    for line in jsonl.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Item::Event(ts, r) = decoder.decode(line).map_err(|e| e.to_string())? {
            records.push((ts, r));
        }
    }
    let label = format!("{} K={} N={}", workload.label(), params.keys, params.events);
    let (row, _) = measure_one(workload, &typed, passes)?;
    println!("{label:<28} {:<7} {row}", "typed");
    let (row, _) = measure_one(workload, &records, passes)?;
    println!("{label:<28} {:<7} {row}", "record");
    Ok(())
}

/// The header of the rows [`measure`] prints.
pub fn header() -> String {
    format!(
        "{:<28} {:<7} {:>10} {:>10} {:>12} {:>8} {:>10} {:>10}",
        "workload", "events", "live keys", "stored", "bytes", "B/key", "write ms", "restore ms"
    )
}
