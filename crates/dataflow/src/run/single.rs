//! A checkpoint of one engine (written by `cepheid run` without
//! `--workers`) resumed on workers: read as the cut of a run of
//! one worker that held every group of patterns over every key
//! ([`WorkerCut::from_engine`]), which the workers restore (one worker)
//! or rescale (any other number) as any cut. The single run's place in
//! the file (the offset of the first line not given to its engine, or the
//! ranges of the file it had left to read) becomes the lines of each chunk
//! read ([`cut::Read`], with the lines below them not read yet), from
//! which the workers' chunks go on. And back: [`to_one_engine`]. See
//! `docs/checkpoints.md`, "Across executors".

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use cepheid_core::json::value_from_json;
use cepheid_decode::Format;
use cepheid_engine::{Engine, Record, Rules};
use cepheid_runtime::checkpoint::{store, Counters, CutRules, Marker, Piece, Stored};
use cepheid_runtime::source::{Control, FilePosition, Range, Tail};
use cepheid_runtime::{Config, SinkState};

use super::cut;
use super::{unusable, Error, Unusable};
use crate::{FileChunks, Lateness, Plan, WorkerCut};

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

/// Makes, from the newest checkpoint in `config`'s folder when it is a
/// cut of workers, a checkpoint of one engine (the next one: one piece of
/// one engine of every pattern), which a run without workers then resumes
/// from; the cut goes. `Ok(None)` when the newest is not a cut of workers
/// (or cannot be read: the runtime says why); otherwise the number of
/// workers it was taken on. When the workers had read the file otherwise
/// than from its start up to one place (each had parts of its chunks
/// left), the checkpoint holds the ranges of the file left to read, and
/// the lines of the events they had stashed and of the changes of rules
/// not made yet are read again with them, in file order
/// (`cut::merge`'s `again`). Refused (nothing
/// changed) where one engine cannot go on exactly: a followed file,
/// outputs per worker, a sink that commits with checkpoints, or rules
/// whose lists keep state. See `docs/checkpoints.md`, "Across executors".
pub fn to_one_engine(config: &Config, rules: &Rules) -> Result<Option<usize>, Error> {
    let Some(dir) = config.checkpoint.as_deref() else {
        return Ok(None);
    };
    let folder = || dir.to_path_buf();
    let refuse = |why: &str| unusable(dir, Unusable::ToOneEngine(why.to_string()));
    // (a folder that cannot be read is the runtime's to say)
    let Ok(kept) = store::kept(dir) else {
        return Ok(None);
    };
    let Some(newest) = kept.first().filter(|newest| !newest.is_one_engine()) else {
        return Ok(None);
    };
    // (another run on the folder is refused before anything is read)
    let lock = cepheid_runtime::checkpoint::lock_folder(dir, 0)?;
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
    let not_one = |source| unusable(dir, Unusable::Worker { index: 0, source });
    let states: Vec<&Piece> = newest.pieces().iter().collect();
    let kept_rules = (states.iter())
        .map(|piece| CutRules::of(piece))
        .collect::<Result<Vec<_>, _>>()
        .map_err(not_one)?;
    let kept_rules: Vec<CutRules> = kept_rules.into_iter().flatten().collect();
    // Where each worker's reader was, in its chunks; what was read over
    // every worker.
    let sources = (states.iter())
        .map(|piece| WorkerCut::saved_sources(piece))
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
    let before = cut::Read::of(states[0]).map_err(|e| refuse(&e.to_string()))?;
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
    let mut engine = one_engine(config, rules, &states, &kept_rules).map_err(not_one)?;
    let merged = crate::cut::merge(&states, &mut engine, !prefix).map_err(not_one)?;
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
        let (said, more) = cut::keys(piece);
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
    written.map_err(|source| {
        Error::Runtime(cepheid_runtime::Error::Io {
            doing: cepheid_runtime::Doing::WriteCheckpoint,
            path: store::cut_dir(dir, number).display().to_string(),
            source,
        })
    })?;
    store::prune(dir, number).map_err(|source| Error::ClearUnfinished {
        folder: folder(),
        source,
    })?;
    drop(lock);
    Ok(Some(marker.pieces()))
}

/// The engine a cut of workers (`states`, with the rules each kept) is
/// merged into, with every pattern of theirs and no state: the command's
/// `rules`, or after a change of rules the cut's, each group's patterns
/// from its engines (their versions, draining ones too) in the order of
/// the rules in force, its fields numbered first as the workers' were.
fn one_engine(
    config: &Config,
    rules: &Rules,
    states: &[&Piece],
    kept: &[CutRules],
) -> Result<Engine<Record>, cepheid_engine::Error> {
    let mut engine = config.engine();
    let Some(in_force) = kept.first().and_then(|r| r.in_force.as_ref()) else {
        engine.add(rules)?;
        return Ok(engine);
    };
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
fn to_end(start: u64, lines: u64) -> Range {
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
/// line's place ([`FileChunk::offset`](crate::FileChunk::offset)), its
/// first byte and its text (a CSV chunk's header copy left out). The byte
/// where it stopped, and the number of the first chunk not passed over.
fn walk(
    path: &Path,
    (chunk_bytes, format): (u64, Format),
    (from, stop): (u64, impl Fn(&crate::FileChunk) -> bool),
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
    read: &cut::Read,
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
        (0, |c: &crate::FileChunk| c.number >= past),
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
/// for `format`) read by one engine that has `ranges` left to read.
fn chunks_read(path: &Path, ranges: &[Range], cut: (u64, Format)) -> io::Result<cut::Read> {
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
        (from, |c: &crate::FileChunk| c.start >= to_end),
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
    let read = cut::Read {
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
        if let Some(name) = crate::place_name(place) {
            return Some(cepheid_engine::Value::Str(std::sync::Arc::clone(name)));
        }
        let (source, offset) = crate::place_parts(place)?;
        let line = lines.line(offset).ok().filter(|_| source == 0)?;
        Some(cepheid_engine::Value::Str(
            format!("{origin}:{line}").into(),
        ))
    });
}
