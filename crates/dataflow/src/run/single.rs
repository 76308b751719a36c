//! A checkpoint of one engine (written by `cepheid run` without
//! `--workers`) resumed on workers: read as the cut of a run of
//! one worker that held every group of patterns over every key
//! ([`WorkerCut::from_engine`]), which the workers restore (one worker)
//! or rescale (any other number) as any cut. The single run's place in
//! the file (the offset of the first line not given to its engine, or the
//! ranges of the file it had left to read) becomes the lines of each chunk
//! read ([`cut::Read`], with the lines below them not read yet), from
//! which the workers' chunks go on. And back: the runtime makes a cut of
//! workers one engine's itself (`cepheid_runtime`'s `one_engine.rs`).
//! See `docs/checkpoints.md`, "Across executors".

use std::fs::File;
use std::time::Duration;

use cepheid_core::json::value_from_json;
use cepheid_engine::{Engine, Record};
use cepheid_runtime::checkpoint::{chunks_read, to_end, CutRules, Marker, Piece, Stored};
use cepheid_runtime::{source::Tail, Config};

use super::cut;
use super::Unusable;
use crate::{Lateness, Plan, WorkerCut};

/// One engine's checkpoint `stored` as a cut of one worker for a run of
/// `chunk_bytes` chunks (its marker and its piece); `Err` says why it
/// cannot be resumed on workers (before anything is changed).
///
/// After a change of rules, the engine's rules go on, not the command
/// line's: `plan` becomes a plan of its field table ([`Plan::resumed`]),
/// whose rules can change.
pub(super) fn resume(
    stored: Stored,
    config: &Config,
    chunk_bytes: u64,
    plan: &mut Plan<Record>,
) -> Result<(Marker, Vec<Piece>), Unusable> {
    let single = |why: String| Unusable::OneEngine(why);
    let worker = Unusable::Cut;
    let counters = stored.marker().the_counters();
    let [piece] = stored.pieces() else {
        return Err(single("it is not one engine's".to_string()));
    };
    let (input, custom) = piece.one_engine_input().unwrap_or_default();
    if custom {
        return Err(single(
            "it is of a source of the library's user (Kafka): resume it without `Scale::workers`"
                .to_string(),
        ));
    }
    if config.follow {
        return Err(single(
            "a followed file's checkpoint of one engine resumes without `Scale::workers`"
                .to_string(),
        ));
    }
    let path = config.input.path();
    let file = File::open(path).map_err(|e| single(format!("{}: {e}", path.display())))?;
    if let Some(tail) = input.tail {
        if Tail::of(&file, input.offset) != Some(tail) {
            return Err(single(format!(
                "{} is not the file it read (its bytes before offset {} differ)",
                path.display(),
                input.offset
            )));
        }
    }
    let engine =
        Engine::<Record>::from_snapshot_rules(piece.engines()[0].snapshot()).map_err(worker)?;
    // (one engine keeps what each list file gave in its lists alone; the
    // workers keep it beside them: `lists::held`)
    let mut counters = counters.clone();
    if counters.lists().is_empty() && !config.lists.is_empty() {
        counters = counters.with_lists(cepheid_runtime::lists::held(&engine, &config.lists));
    }
    let changed = counters.rules_changed();
    if changed {
        *plan = changing(plan.resumed(&engine.fields().paths()), config);
    }
    let ranges = match piece.one_engine_ranges() {
        [] => vec![to_end(input.offset, input.lines)],
        ranges => ranges.to_vec(),
    };
    let read = chunks_read(path, &ranges, (chunk_bytes, config.format))
        .map_err(|e| single(format!("{}: {e}", path.display())))?;
    let mut clock = Lateness::new(millis(config.max_delay))
        .flush_at_end(config.flush_at_end)
        .max_waiting(config.max_waiting);
    if let Some(timeout) = config.idle_timeout {
        clock = clock.idle_timeout(timeout);
    }
    let names: Vec<String> = engine.patterns().map(|p| p.name.clone()).collect();
    let mut piece = WorkerCut::from_engine(
        plan,
        engine,
        &clock,
        (0, counters.malformed()),
        counters.punctuated(),
        changed,
    )
    .map_err(worker)?;
    read.put(&mut piece);
    // The run's counts go on: the reloads, and the keys said to be over
    // `Config::max_runs_per_key` (with their key groups, by the engine's
    // number of their pattern).
    let [made, refused, late] = counters.reloads();
    if let Some(mut rules) = CutRules::of(&piece).map_err(worker)? {
        (rules.made, rules.read) = ([made, 0], [refused, late]);
        rules.put(&mut piece).map_err(worker)?;
    }
    let (keys, overflow) = counters.dropped_keys();
    let keys = (keys.iter())
        .filter(|(p, _)| *p < names.len())
        .map(|(p, key)| {
            let values: Vec<cepheid_engine::Value> = key.iter().map(value_from_json).collect();
            let json = serde_json::to_string(&values).unwrap_or_default();
            (*p, json, crate::key_group(&values))
        })
        .collect();
    cut::put_keys(&mut piece, &(keys, overflow));
    let marker =
        (stored.marker().clone())
            .counters(counters)
            .on_workers((1, 1), chunk_bytes, false);
    Ok((marker, vec![piece]))
}

/// `plan` with rules that can change (as `config` says they do): a run
/// that resumes the rules a change put in force goes on routing as one
/// whose rules change.
pub(super) fn changing(plan: Plan<Record>, config: &Config) -> Plan<Record> {
    match plan.changes() {
        Some(_) => plan,
        None => plan.changing(config.reload_policy),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
