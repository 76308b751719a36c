//! A cut of workers (written by `cepheid run --workers N`, or a
//! library user's `Runtime::on_cluster`) made one engine's checkpoint by
//! the runtime, before a run on one engine resumes from the folder: the
//! workers' engines merged into one ([`Engine::absorb`]), the events they
//! had stashed waiting in it, the file's place where what they had read
//! ends (or the ranges of the file left to read), the run's counts going
//! on. See `docs/checkpoints.md`, "Across executors".
//!
//! It reads the sections of a worker's piece: the runtime's own
//! ([`CutRules`], [`Read`], [`keys`], the stash, [`decode_stash`]) and
//! the executor's [`Part::Sources`], whose layout ([`Worker`]) it reads
//! as the dataflow writes it (`cut::WorkerState`, `SourceState`,
//! `Lateness`, `SourceEnd`): the sources' clocks are the executor's live
//! types, not the runtime's yet.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use cepheid_decode::Format;
use cepheid_engine::engine::clock::Watermark;
use cepheid_engine::engine::queue::FifoHeap;
use cepheid_engine::engine::LeftOutParts;
use cepheid_engine::{Engine, ErrorKind, Record, Timestamp};
use serde::{Deserialize, Serialize};

use super::read::{keys as keys_said, Read};
use super::stash::{decode_stash, place_name, place_parts, placed, HELD};
use super::{key_group, store, Counters, CutRules, Marker, Part, Piece};
use crate::source::{Control, FileChunk, FileChunks, FilePosition, Range, Tail};
use crate::{Config, Doing, Error, Level, Notice, Report, SinkState, Unusable};

/// A worker's state at a cut as the runtime reads it from its piece (its
/// engines, [`Part::Sources`] and [`Part::Stash`]; in a cut of format 5
/// to 7, the whole of it in postcard, [`Part::Legacy`]), in the layout
/// the dataflow writes (`cut::WorkerState`).
#[derive(Deserialize)]
struct Worker {
    epoch: Timestamp,
    sources: Vec<(u32, SavedSource)>,
    ends: Vec<SourceEnd>,
    pieces: Vec<SavedPiece>,
    stash: Vec<u8>,
}

/// One engine of a worker at a cut: group `group`'s keys whose key group
/// is in `[from, to)`, as [`Engine::snapshot`] wrote them; in a cut of
/// format 5 to 7, a member of the worker's state in postcard
/// ([`Part::Legacy`]). The dataflow's workers save and restore theirs as
/// these ([`saved_pieces`]).
#[derive(Serialize, Deserialize)]
pub struct SavedPiece {
    /// The group of patterns.
    pub group: u32,
    /// The first key group of its keys.
    pub from: u64,
    /// The key group after its last.
    pub to: u64,
    /// The engine's snapshot.
    pub engine: Vec<u8>,
}

/// The engines of a worker's `piece` (its sections other than the
/// legacy one), each as a [`SavedPiece`]; an error when one names no
/// group of patterns.
pub fn saved_pieces(piece: &Piece) -> Result<Vec<SavedPiece>, cepheid_engine::Error> {
    (piece.engines().iter())
        .map(|engine| {
            Ok(SavedPiece {
                group: (engine.patterns()).ok_or_else(|| not_a("group of patterns"))?,
                from: engine.keys().0,
                to: engine.keys().1,
                engine: engine.snapshot().to_vec(),
            })
        })
        .collect()
}

/// A source's state at a cut (the dataflow's `SourceState`).
#[derive(Deserialize)]
struct SavedSource {
    position: u64,
    unread: u64,
    place: Vec<u8>,
    lateness: Clock,
    ended: bool,
}

/// A source's clock at a cut (the dataflow's `Lateness`).
#[derive(Deserialize)]
#[allow(dead_code)] // (read whole: postcard has no field names)
struct Clock {
    time: Watermark,
    punctuated: bool,
    flush: bool,
    events: u64,
    late: u64,
    waiting: FifoHeap<Timestamp>,
    waiting_limit: usize,
    forced: u64,
    idle_timeout: Option<Duration>,
}

impl Clock {
    /// How the source would end here (the dataflow's `Lateness::end`).
    fn end(&self) -> SourceEnd {
        SourceEnd {
            max_seen: self.time.max_seen(),
            watermark: self.time.current(),
            punctuated: self.punctuated,
            flush: self.flush,
            stopped: false,
            events: self.events,
            late: self.late,
            forced: self.forced,
        }
    }
}

/// How a source ended (the dataflow's `SourceEnd`).
#[derive(Clone, Copy, Deserialize)]
#[allow(dead_code)] // (read whole: postcard has no field names)
struct SourceEnd {
    max_seen: Option<Timestamp>,
    watermark: Option<Timestamp>,
    punctuated: bool,
    flush: bool,
    stopped: bool,
    events: u64,
    late: u64,
    forced: u64,
}

impl Worker {
    /// The worker's state saved in `piece`.
    fn of(piece: &Piece) -> Result<Worker, cepheid_engine::Error> {
        if let Some(old) = piece.get(Part::Legacy) {
            return postcard::from_bytes(old).map_err(not_a_state);
        }
        let sources = piece.get(Part::Sources).ok_or_else(|| not_a("sources"))?;
        let (epoch, sources, ends) = postcard::from_bytes(sources).map_err(not_a_state)?;
        let pieces = saved_pieces(piece)?;
        let stash = piece.get(Part::Stash).ok_or_else(|| not_a("stash"))?;
        Ok(Worker {
            epoch,
            sources,
            ends,
            pieces,
            stash: stash.to_vec(),
        })
    }
}

/// The event time of a worker's piece of a cut (its epoch), the piece
/// read whole as [`Worker::of`] reads it.
pub(crate) fn epoch_of(piece: &Piece) -> Result<Timestamp, cepheid_engine::Error> {
    Ok(Worker::of(piece)?.epoch)
}

/// What a worker's state that cannot be read is.
fn not_a_state(e: postcard::Error) -> cepheid_engine::Error {
    cepheid_engine::Error::new(
        ErrorKind::Snapshot,
        format!("not a worker's state at a cut: {e}"),
    )
}

/// A worker's piece without `what`.
fn not_a(what: &str) -> cepheid_engine::Error {
    cepheid_engine::Error::new(
        ErrorKind::Snapshot,
        format!("not a worker's state at a cut: no {what}"),
    )
}

/// The workers' states `states`, read, and the epoch of their cut; an
/// error when there is none, or they are of different cuts.
fn one_cut(states: &[&Piece]) -> Result<(Vec<Worker>, i64), cepheid_engine::Error> {
    let olds: Vec<Worker> = states
        .iter()
        .map(|piece| Worker::of(piece))
        .collect::<Result<_, _>>()?;
    let Some(first) = olds.first() else {
        return Err(cepheid_engine::Error::new(
            ErrorKind::Snapshot,
            "no worker's state",
        ));
    };
    let epoch = first.epoch;
    if olds.iter().any(|old| old.epoch != epoch) {
        return Err(cepheid_engine::Error::new(
            ErrorKind::Snapshot,
            "the workers' states are of different cuts",
        ));
    }
    Ok((olds, epoch))
}

/// Makes, from the newest checkpoint in `config`'s folder when it is a
/// cut of workers, a checkpoint of one engine (the next one: one piece of
/// one engine of every pattern), which a run without workers then resumes
/// from; the cut goes. Nothing when the newest is not a cut of workers
/// (or cannot be read: `resume::load` says why). When the workers had read the file otherwise
/// than from its start up to one place (each had parts of its chunks
/// left), the checkpoint holds the ranges of the file left to read, and
/// the lines of the events they had stashed and of the changes of rules
/// not made yet are read again with them, in file order
/// ([`merge`]'s `again`). Refused (nothing
/// changed) where one engine cannot go on exactly: a followed file,
/// outputs per worker, a sink that commits with checkpoints, or rules
/// whose lists keep state. See `docs/checkpoints.md`, "Across executors".
///
/// `given` is the run's engine as it was given (its patterns, nothing
/// seen); the folder is locked by the run (`lock_checkpoint`). Said once
/// to `report` ([`taken_on_workers`]).
pub(crate) fn of_workers(
    config: &Config,
    given: &Engine<Record>,
    report: &mut dyn Report,
) -> Result<(), Error> {
    let Some(dir) = config.checkpoint.as_deref() else {
        return Ok(());
    };
    if let Some(workers) = merged_cut(config, given, dir)? {
        report.notice(taken_on_workers(dir, workers));
    }
    Ok(())
}

/// The sentence of a cut of `workers` workers in `dir` made one engine's.
fn taken_on_workers(dir: &Path, workers: usize) -> Notice {
    Notice::line(
        Level::Info,
        format!(
            "cepheid: the checkpoint in {} was taken on {workers} worker{}: it is a checkpoint of one engine now (docs/checkpoints.md, \"Across executors\")",
            dir.display(),
            if workers == 1 { "" } else { "s" }
        ),
    )
}

/// [`of_workers`]: `Ok(None)` when the newest checkpoint is not a cut of
/// workers, otherwise the number of workers it was taken on.
fn merged_cut(config: &Config, given: &Engine<Record>, dir: &Path) -> Result<Option<usize>, Error> {
    let unusable = |why| Error::Resume {
        folder: dir.to_path_buf(),
        why,
    };
    let refuse = |why: &str| unusable(Unusable::ToOneEngine(why.to_string()));
    // (a folder that cannot be read is `resume::load`'s to say)
    let Ok(kept) = store::kept(dir) else {
        return Ok(None);
    };
    let Some(newest) = kept.first().filter(|newest| !newest.is_one_engine()) else {
        return Ok(None);
    };
    let marker = newest.marker();
    // (a sink's own state is a transactional sink's; two cuts kept are
    // also a run killed between a cut and the pruning of the one before,
    // which a file's output resumes from the newest as ever)
    if !marker.sink_state().data.is_empty() {
        return Err(refuse(
            "its output is a sink's that commits with checkpoints (Kafka)",
        ));
    }
    if marker.output_per_worker() {
        return Err(refuse("it was taken with `Scale::output_per_worker`"));
    }
    if config.follow {
        return Err(refuse("it is of a followed file"));
    }
    let Some(command) = marker.the_command().cloned() else {
        return Err(refuse("it names no command"));
    };
    let not_one = |source| unusable(Unusable::Worker { index: 0, source });
    let states: Vec<&Piece> = newest.pieces().iter().collect();
    let kept_rules = (states.iter())
        .map(|piece| CutRules::of(piece))
        .collect::<Result<Vec<_>, _>>()
        .map_err(not_one)?;
    let kept_rules: Vec<CutRules> = kept_rules.into_iter().flatten().collect();
    // Where each worker's reader was, in its chunks; what was read over
    // every worker.
    let sources = (states.iter())
        .map(|piece| Worker::of(piece).map(|worker| worker.sources))
        .collect::<Result<Vec<_>, _>>()
        .map_err(not_one)?;
    if (sources.iter().flatten()).any(|(_, s)| !s.place.is_empty()) {
        return Err(refuse(
            "its input was read by a source of the library's user (Kafka)",
        ));
    }
    let places: Vec<u64> = (sources.iter())
        .map(|states| {
            (states.iter())
                .find(|(s, _)| *s == 0)
                .map_or(0, |(_, s)| s.position)
        })
        .collect();
    let before = Read::of(states[0]).map_err(|e| refuse(&e.to_string()))?;
    let read = before.after(&places);
    let path = config.input.path();
    let unreadable = |e: io::Error| refuse(&format!("{}: {e}", path.display()));
    let cut = (marker.chunk_bytes(), config.format);
    let mut ranges = ranges_left(path, &read, &read.again, cut).map_err(unreadable)?;
    // Not the file from its start to one place: the lines stashed are read
    // again with the rest.
    // (and so are the changes of rules read, not made yet)
    let pending = (kept_rules.iter()).flat_map(|r| r.pending.iter().map(|change| change.offset));
    let pending: BTreeSet<u64> = pending.collect();
    let prefix = pending.is_empty() && matches!(ranges[..], [Range { end: u64::MAX, .. }]);
    let mut engine = one_engine(config, given, &states, &kept_rules).map_err(not_one)?;
    let merged = merge(&states, &mut engine, !prefix).map_err(not_one)?;
    if config.decisions.is_some() {
        name_by_lines(&mut engine, config, marker.chunk_bytes());
    }
    if !prefix {
        let again = (read.again.iter().chain(&merged.again).chain(&pending))
            .copied()
            .collect();
        ranges = ranges_left(path, &read, &again, cut).map_err(unreadable)?;
    }
    let (offset, lines) = (ranges[0].start, ranges[0].lines.unwrap_or(0));
    if prefix {
        ranges.clear();
    }
    let tail = File::open(path)
        .ok()
        .and_then(|file| Tail::of(&file, offset));
    let all = sources.iter().flatten().map(|(_, s)| s);
    // The run's counts go on: the reloads (`reloads_of`) and the keys
    // said over `Config::max_runs_per_key`.
    let reloads = reloads_of(&kept_rules);
    let changed = kept_rules.first().is_some_and(|r| r.changed);
    let mut keys: Vec<(usize, Vec<serde_json::Value>)> = Vec::new();
    let mut overflow = false;
    for piece in &states {
        let (said, more) = keys_said(piece);
        overflow |= more;
        for (pattern, key, _) in said {
            // (written by the workers as JSON; one that does not read
            // back is left out, so that it is said again, not taken for
            // the empty key)
            if let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(&key) {
                keys.push((pattern, values));
            }
        }
    }
    keys.sort_by_key(|(p, key)| (*p, serde_json::to_string(key).unwrap_or_default()));
    keys.dedup();
    let counters = Counters::of(
        all.clone().map(|s| s.unread).sum(),
        all.clone().any(|s| s.lateness.end().punctuated)
            || merged.ends.iter().any(|e| e.punctuated),
    )
    .with_reloads(reloads, changed)
    // (what each list file gave is what it holds in the engine's lists:
    // one engine keeps nothing beside them)
    .with_dropped_keys(keys, overflow);
    let then = marker.sink_state();
    let state = SinkState {
        late_len: then.late_len.filter(|_| config.late.is_some()),
        shadow_len: then.shadow_len.filter(|_| config.shadow_output.is_some()),
        audit_len: then.audit_len.filter(|_| config.audit.is_some()),
        ..then
    };
    let mut snapshot = Vec::new();
    engine.snapshot(&mut snapshot).map_err(not_one)?;
    let number = marker.number() + 1;
    let piece = Piece::of_one_engine(
        snapshot,
        FilePosition {
            offset,
            lines,
            tail,
        },
    )
    .with_ranges(ranges);
    let one = Marker::new(number)
        .command(Some(command))
        .outputs(&state)
        .counters(counters)
        .records(marker.latest_records().to_vec())
        .history(marker.the_history().clone());
    // (the cut stays until the checkpoint is whole: a run stopped between
    // the two makes it again from the cut)
    let key = i64::try_from(number).unwrap_or(i64::MAX);
    let written = store::write_piece(dir, key, 0, &piece)
        .and_then(|()| store::complete_part(dir, key, number, &one.encode()));
    written.map_err(|source| Error::Io {
        doing: Doing::WriteCheckpoint,
        path: store::cut_dir(dir, number).display().to_string(),
        source,
    })?;
    store::prune(dir, number).map_err(|source| Error::Io {
        doing: Doing::ClearCheckpoints,
        path: dir.display().to_string(),
        source,
    })?;
    Ok(Some(marker.pieces()))
}

/// The engine a cut of workers (`states`, with the rules each kept) is
/// merged into, with every pattern of theirs and no state: the run's
/// engine as `given`, or after a change of rules the cut's, each group's patterns
/// from its engines (their versions, draining ones too) in the order of
/// the rules in force, its fields numbered first as the workers' were.
fn one_engine(
    config: &Config,
    given: &Engine<Record>,
    states: &[&Piece],
    kept: &[CutRules],
) -> Result<Engine<Record>, cepheid_engine::Error> {
    let Some(in_force) = kept.first().and_then(|r| r.in_force.as_ref()) else {
        return given.duplicate();
    };
    let mut engine = config.engine();
    let fields = kept.iter().map(|r| &r.fields).max_by_key(|f| f.len());
    for path in fields.into_iter().flatten() {
        engine.fields().intern(path);
    }
    // (worker 0 holds an engine of every group)
    let layout = &kept[0].groups;
    let mut groups: Vec<Option<Engine<Record>>> = Vec::new();
    groups.resize_with(layout.len(), || None);
    for state in states[0].engines() {
        let group = state.patterns().map_or(usize::MAX, |g| g as usize);
        if let Some(slot @ None) = groups.get_mut(group) {
            *slot = Some(Engine::from_snapshot_rules(state.snapshot())?);
        }
    }
    for name in in_force {
        let group = (layout.iter()).position(|(_, names)| names.contains(name));
        if let Some(Some(theirs)) = group.and_then(|g| groups.get(g)) {
            engine.adopt(theirs, |p| &p.name == name)?;
        }
    }
    // (and the scenes in force, which every group's engine holds in part)
    if let Some(Some(part)) = groups.first() {
        engine.adopt_scenes(part)?;
    }
    Ok(engine)
}

/// What the workers of a cut held, put into one engine by [`merge`].
struct Merged {
    /// The ends of the sources that had ended (received by every worker).
    ends: Vec<SourceEnd>,
    /// The places of the stashed events left out (`again`), in no order.
    again: Vec<u64>,
}

/// An event of a worker's stash, from its group's first copy: `(ts,
/// source, offset, event)` and its name.
struct Stashed {
    event: (Timestamp, u32, u64, Record),
    name: Option<std::sync::Arc<str>>,
}

/// Puts the states every worker of a run saved at one cut (`states`, all
/// of them, in worker order) into `engine`, an engine of one run that
/// has every pattern of theirs and has seen nothing: each worker's engines
/// ([`Engine::absorb`]: their keys are apart), and
/// the events they had stashed, once each (one copy per group was
/// stashed), waiting for the engines' watermark at the cut (the least
/// of theirs, at most the epoch less one: at a stop they stay below the
/// stopped source's clock) in the order the workers would have processed them, with the
/// largest time any source had read and the events they found late
/// ([`Engine::resume_clock`]). So a cut of
/// workers resumes on one engine; where its input goes on is the
/// caller's (from the sources' states, [`Worker::of`]).
///
/// With `again` (one engine reads on from ranges of the file, not from
/// one place), the stashed events read from a file's chunks are left out
/// and their places ([`Merged::again`]) read again, in file order, as
/// one engine would have read them; what waits is only the events of a
/// checkpoint of one engine resumed on workers (their place's line is
/// 0), and the largest time seen is theirs: so the lines the slower
/// workers had not read yet are not late for the faster ones' times. Fails with
/// [`ErrorKind::Snapshot`] when the states are not of one cut, or an
/// engine of theirs is not the plan's (another field numbering, other
/// patterns).
fn merge(
    states: &[&Piece],
    engine: &mut Engine<Record>,
    again: bool,
) -> Result<Merged, cepheid_engine::Error> {
    let bad = not_a_state;
    let (olds, epoch) = one_cut(states)?;
    let first = &olds[0];
    let fields = engine.fields().paths();
    let mut stash: Vec<Stashed> = Vec::new();
    let (mut max_seen, mut late, mut read) = (None, 0, 0);
    // The least watermark of the workers' engines: at a stop they stay
    // below a stopped source's clock (`Worker::stopped_at` in the
    // dataflow), under the cut's epoch, and the lines its worker had not
    // read yet, read again below, are not late for them.
    let mut engines_at: Option<Option<Timestamp>> = None;
    // Each rolling indicator's entries from the engines of one group of
    // patterns (the first that keeps it: its engines over every worker
    // hold every key's, as a group's engines do), in time order.
    // An indicator the group's key does not fix is shared by each of its
    // engines over the whole stream: taken from one of them.
    let mut indicators: Vec<(String, u32, Vec<IndicatorEntry>)> = Vec::new();
    // What the lists and indicators left out, gathered as one engine
    // counts it (`absorb` leaves it to the caller).
    let mut left_out = LeftOutParts::default();
    for old in &olds {
        for saved in &old.pieces {
            let mut piece = Engine::<Record>::from_snapshot_rules(&saved.engine[..])?;
            left_out.add(saved.group, piece.left_out());
            for (name, mut entries) in piece.take_indicator_entries() {
                // (an engine restored on another number of workers holds
                // its old worker's entries: those of its own keys count)
                let (own, shared) = own_keys(&piece, &name, (saved.from, saved.to));
                entries.retain(|(key, _, _)| own(key));
                match indicators.iter_mut().find(|(n, _, _)| *n == name) {
                    Some((_, group, kept)) if *group == saved.group && !shared => {
                        kept.extend(entries);
                    }
                    Some(_) => {}
                    None => indicators.push((name, saved.group, entries)),
                }
            }
            if (piece.fields().paths())
                .iter()
                .zip(&fields)
                .any(|(a, b)| a != b)
            {
                return Err(cepheid_engine::Error::new(
                    ErrorKind::Snapshot,
                    "a worker's engine numbers the fields otherwise",
                ));
            }
            let at = piece.current_watermark();
            engines_at = Some(engines_at.map_or(at, |least| least.min(at)));
            // (the events taken in are the sources', counted below)
            engine.absorb(piece, false)?;
        }
        let events: Vec<crate::checkpoint::Stashed<Record>> =
            decode_stash(&old.stash).map_err(bad)?;
        stash.extend(
            (events.into_iter())
                .filter(|(g, _, _)| *g == 0 || *g == HELD)
                .map(|(_, event, name)| Stashed { event, name }),
        );
        // (an ended source's end is in the ends received)
        for (_, state) in old.sources.iter().filter(|(_, s)| !s.ended) {
            let end = state.lateness.end();
            max_seen = max_seen.max(end.max_seen);
            (late, read) = (late + end.late, read + end.events);
        }
    }
    for end in &first.ends {
        max_seen = max_seen.max(end.max_seen);
        (late, read) = (late + end.late, read + end.events);
    }
    let indicators = (indicators.into_iter())
        .map(|(name, _, mut entries)| {
            entries.sort_by_key(|(_, ts, _)| *ts);
            (name, entries)
        })
        .collect();
    engine.put_indicator_entries(indicators);
    engine.set_left_out(left_out.whole());
    stash.sort_by_key(|s| (s.event.0, s.event.1, s.event.2));
    let mut places = Vec::new();
    if again {
        let read = |s: &Stashed| s.event.2 & 0xffff_ffff != 0;
        places = stash
            .iter()
            .filter(|s| read(s))
            .map(|s| s.event.2)
            .collect();
        stash.retain(|s| !read(s));
        max_seen = stash.iter().map(|s| s.event.0).max();
    }
    // The events the sources read are the run's count (not the engines':
    // a group that a change of rules made anew counts from there): those
    // processed before, then those waiting and found late
    // (`resume_clock`); those read again are counted as they are.
    let again_or_after = (places.len() + stash.len()) as u64 + late;
    engine.count_taken_before(read.saturating_sub(again_or_after));
    // (each with its place, which names its decisions: the caller names
    // them as one engine does, `name_by_lines`)
    let waiting = (stash.into_iter())
        .map(
            |Stashed {
                 event: (ts, source, offset, event),
                 name,
             }| { (ts, event, Some(placed(source, offset, name.as_ref()))) },
        )
        .collect();
    let watermark = (epoch != Timestamp::MIN).then(|| epoch - 1);
    let watermark = engines_at.map_or(watermark, |at| watermark.min(at));
    engine.resume_clock_positioned((watermark, max_seen), waiting, late)?;
    Ok(Merged {
        ends: first.ends.clone(),
        again: places,
    })
}

/// Is the `group by` key of an entry of `engine`'s indicator `name` one
/// of the keys of key groups `[from, to)`: the values of the fields of
/// its patterns' `partition by` (every one in the indicator's `group by`:
/// `route::not_on_workers`), as the engine keys them (`key_part`)?
///
/// And is it shared over the whole stream by the engine (its patterns'
/// key does not fix its groups, `route::shares_indicators`): every key's
/// entries are the engine's?
fn own_keys(
    engine: &Engine<Record>,
    name: &str,
    (from, to): (u64, u64),
) -> (impl Fn(&[cepheid_engine::Value]) -> bool, bool) {
    let partition = (engine.patterns().next()).map_or(Vec::new(), |p| p.partition_by.clone());
    let declared = engine
        .declarations()
        .indicators
        .iter()
        .find(|i| &*i.name == name);
    let at: Option<Vec<usize>> = declared.and_then(|d| {
        (partition.iter())
            .map(|field| d.group_by.iter().position(|g| g == field))
            .collect()
    });
    let keyed = !partition.is_empty() || engine.patterns().any(|p| p.partition_by_fn.is_some());
    let shared = keyed && at.is_none();
    let own = move |key: &[cepheid_engine::Value]| {
        let Some(at) = &at else {
            return true;
        };
        let values: Option<Vec<cepheid_engine::Value>> = (at.iter())
            .map(|&i| key.get(i).cloned().and_then(cepheid_core::value::key_part))
            .collect();
        values.map_or(true, |values| {
            (from..to).contains(&u64::from(key_group(&values)))
        })
    };
    (own, shared)
}

/// An entry of a rolling indicator's windows: key, time, value.
type IndicatorEntry = (Vec<cepheid_engine::Value>, Timestamp, cepheid_engine::Value);

/// The chunks of `chunk_bytes` of the file at `path`, cut as the workers
/// cut it for `format` (a CSV chunk after the first starts with the
/// header's copy; no chunk of JSON lines starts with a control record).
fn file_chunks(path: &Path, chunk_bytes: u64, format: Format) -> io::Result<FileChunks> {
    let chunks = FileChunks::new(path, 0, 1, chunk_bytes)?.with_header(format == Format::Csv);
    Ok(match format {
        Format::JsonLines => chunks.past_lines(|line| Control::parse(line).is_some()),
        Format::Csv => chunks,
    })
}

/// The file from byte `start` (after `lines` lines) to its end.
pub fn to_end(start: u64, lines: u64) -> Range {
    Range {
        start,
        end: u64::MAX,
        lines: Some(lines),
        skip: 0,
    }
}

/// Walks the lines of the file at `path` in its chunks of `chunk_bytes`
/// (cut for `format`), in order, from the first chunk that ends after
/// byte `from` up to the first chunk `stop` takes: `each` is given each
/// line's place ([`FileChunk::offset`](FileChunk::offset)), its
/// first byte and its text (a CSV chunk's header copy left out). The byte
/// where it stopped, and the number of the first chunk not passed over.
fn walk(
    path: &Path,
    (chunk_bytes, format): (u64, Format),
    (from, stop): (u64, impl Fn(&FileChunk) -> bool),
    mut each: impl FnMut(u64, u64, &[u8]),
) -> io::Result<(u64, u64)> {
    let (mut end, mut text, mut first) = (0, Vec::new(), None);
    let mut chunks = file_chunks(path, chunk_bytes, format)?.peekable();
    while let Some(chunk) = chunks.next() {
        let chunk = chunk?;
        let before = matches!(chunks.peek(), Some(Ok(next)) if next.start <= from);
        if before && first.is_none() {
            end = chunk.start;
            continue;
        }
        let first = *first.get_or_insert(chunk.number);
        if stop(&chunk) {
            return Ok((chunk.start, first));
        }
        let (number, header, start) = (chunk.number, chunk.header, chunk.start);
        let mut reader = BufReader::new(chunk.reader);
        let (mut line, mut at) = (0, start);
        loop {
            text.clear();
            let n = reader.read_until(b'\n', &mut text)? as u64;
            if n == 0 {
                break;
            }
            line += 1;
            // (a later CSV chunk's line 1 is the header's copy)
            if !(header && line == 1) {
                each((number << 32) | line, at, &text);
                at += n;
            }
        }
        end = at;
    }
    Ok((end, first.unwrap_or(u64::MAX)))
}

/// The run's counts of reloads a cut of workers holds, for one engine
/// going on from it: made and refused by the workers (the same on each),
/// refused and late by each one's readers. A change its reader refused
/// that was not made yet at the cut (it travels to make its audit record
/// at its point of event time) is among the records read again, and
/// refused and counted again there: the readers' count leaves it out.
fn reloads_of(kept_rules: &[CutRules]) -> [u64; 3] {
    let refused_again = (kept_rules.iter())
        .flat_map(|r| r.pending.iter())
        .filter(|change| change.refused().is_some())
        .map(|change| change.offset)
        .collect::<BTreeSet<u64>>()
        .len() as u64;
    kept_rules.first().map_or([0; 3], |first| {
        let read = kept_rules.iter().map(|r| r.read);
        let [refused, late] = read.fold([0, 0], |[a, b], [c, d]| [a + c, b + d]);
        let refused = refused.saturating_sub(refused_again);
        [first.made[0], first.made[1] + refused, late]
    })
}

/// The ranges of the file at `path` left to read, in file order, when the
/// workers' chunks (`cut`: of `chunk_bytes`, for `format`) read `read`
/// and the lines at the places `again` are to be read again: the rest of
/// each chunk a worker started, each chunk none started, those lines, then
/// the file from after the last chunk started to its end, each with the
/// lines before it; ranges that touch are one.
fn ranges_left(
    path: &Path,
    read: &Read,
    again: &BTreeSet<u64>,
    cut: (u64, Format),
) -> io::Result<Vec<Range>> {
    // (the chunks from this one on: none started)
    let past =
        (read.chunks.keys().next_back()).map_or(read.below, |&last| read.below.max(last + 1));
    let mut ranges: Vec<Range> = Vec::new();
    let add = |ranges: &mut Vec<Range>, start: u64, end: u64, lines: u64| match ranges.last_mut() {
        Some(last) if last.end == start => last.end = end,
        _ => ranges.push(Range {
            end,
            ..to_end(start, lines)
        }),
    };
    let mut lines = 0;
    let (end, _) = walk(
        path,
        cut,
        (0, |c: &FileChunk| c.number >= past),
        |place, at, text| {
            if place & 0xffff_ffff > read.upto(place >> 32) || again.contains(&place) {
                add(&mut ranges, at, at + text.len() as u64, lines);
            }
            lines += u64::from(text.ends_with(b"\n"));
        },
    )?;
    add(&mut ranges, end, u64::MAX, lines);
    Ok(ranges)
}

/// The lines of each chunk of the file at `path` (`cut`: of `chunk_bytes`,
/// for `format`) read by one engine that has `ranges` left to read (a
/// checkpoint of one engine read as a cut of one worker: the executor's,
/// until one engine writes the workers' layout).
pub fn chunks_read(path: &Path, ranges: &[Range], cut: (u64, Format)) -> io::Result<Read> {
    let to_end = (ranges.last())
        .filter(|r| r.end == u64::MAX)
        .map_or(u64::MAX, |r| r.start);
    // Each chunk's last line read, and whether all were; the lines not read.
    let mut chunks: BTreeMap<u64, (u64, bool)> = BTreeMap::new();
    let mut unread = Vec::new();
    let mut next = 0;
    let from = ranges.first().map_or(u64::MAX, |r| r.start);
    let (_, below) = walk(
        path,
        cut,
        (from, |c: &FileChunk| c.start >= to_end),
        |place, at, _| {
            while ranges.get(next).is_some_and(|r| r.end <= at) {
                next += 1;
            }
            let chunk = chunks.entry(place >> 32).or_insert((0, true));
            if ranges.get(next).is_some_and(|r| r.start <= at) {
                unread.push(place);
                chunk.1 = false;
            } else {
                chunk.0 = place & 0xffff_ffff;
            }
        },
    )?;
    let upto = |place: u64| chunks.get(&(place >> 32)).map_or(0, |c| c.0);
    let read = Read {
        below,
        again: unread
            .into_iter()
            .filter(|&p| p & 0xffff_ffff < upto(p))
            .collect(),
        chunks: (chunks.iter())
            .map(|(&chunk, &(upto, all))| (chunk, if all { u64::MAX } else { upto }))
            .filter(|&(_, upto)| upto > 0)
            .collect(),
    };
    Ok(read.after(&[]))
}

/// Names the events `engine` holds waiting as one engine names an event
/// of `config`'s file for its decisions, `PATH:LINE`, from their places in
/// the workers' chunks of `chunk_bytes` (`docs/decisions.md`): the engine
/// of a workers' cut made one engine's (the events the workers had
/// stashed are read again, and named as they are read). A place whose
/// line cannot be counted (the file changed) keeps its place.
fn name_by_lines(engine: &mut Engine<Record>, config: &Config, chunk_bytes: u64) {
    let path = config.input.path();
    let Ok(chunks) = FileChunks::new(path, 0, 1, chunk_bytes) else {
        return;
    };
    let chunks = chunks.with_header(matches!(config.format, Format::Csv));
    let controls = matches!(config.format, Format::JsonLines) || config.source_rules;
    let mut lines = match controls {
        true => chunks.past_lines(|line| Control::parse(line).is_some()),
        false => chunks,
    }
    .lines();
    let origin = config.input.describe();
    engine.rename_positions(|place| {
        // (a source's record keeps the name it was read with)
        if let Some(name) = place_name(place) {
            return Some(cepheid_engine::Value::Str(std::sync::Arc::clone(name)));
        }
        let (source, offset) = place_parts(place)?;
        let line = lines.line(offset).ok().filter(|_| source == 0)?;
        Some(cepheid_engine::Value::Str(
            format!("{origin}:{line}").into(),
        ))
    });
}
