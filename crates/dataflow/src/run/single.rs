//! A checkpoint of one engine (written by `cepheid run` without
//! `--workers`) resumed on workers: read as the cut of a run of
//! one worker that held every group of patterns over every key
//! ([`WorkerCut::from_engine`]), which the workers restore (one worker)
//! or rescale (any other number) as any cut. The single run's place in
//! the file (the offset of the first line not given to its engine)
//! becomes the place of a reader of every chunk in order (the chunk
//! holding the last line read, and that line's number in it), from which
//! the workers' chunks go on (`cut::Read::after`). See
//! `docs/checkpoints.md`, "Across executors".

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read as _};
use std::path::Path;
use std::time::Duration;

use cepheid_core::json::value_from_json;
use cepheid_engine::io::Format;
use cepheid_engine::{Engine, Record, Rules};
use cepheid_runtime::checkpoint::{store, Counters, Marker, Piece, Stored};
use cepheid_runtime::source::{Control, FilePosition, Tail};
use cepheid_runtime::{Config, SinkState};

use super::cut;
use super::{Error, Mismatch};
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
) -> Result<(Marker, Vec<Piece>), Mismatch> {
    let single = |why: String| Mismatch::Single(why);
    let worker = Mismatch::Cut;
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
    let changed = counters.rules_changed();
    if changed {
        *plan = changing(plan.resumed(&engine.fields().paths()), config);
    }
    let csv = matches!(config.format, Format::Csv);
    let controls = matches!(config.format, Format::JsonLines);
    let position = place(path, input.offset, chunk_bytes, (csv, controls))
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
        (position, counters.malformed()),
        counters.punctuated(),
        changed,
    )
    .map_err(worker)?;
    // The run's counts go on: the reloads, and the keys said to be over
    // `Config::max_runs_per_key` (with their key groups, by the engine's
    // number of their pattern).
    let [made, refused, late] = counters.reloads();
    if let Some(mut rules) = crate::cut::rules(&piece).map_err(worker)? {
        (rules.made, rules.read) = ([made, 0], [refused, late]);
        crate::cut::put_rules(&mut piece, &rules).map_err(worker)?;
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
    let marker = stored
        .marker()
        .clone()
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

/// The place ([`FileChunk::offset`](crate::FileChunk::offset)) of the
/// last line before byte `offset` of the file at `path` for a reader of
/// every chunk of `chunk_bytes` in order (as the workers cut it: a CSV
/// chunk after the first starts with the header's copy, its line 1; a
/// chunk of JSON lines never starts with a control record); 0 when
/// `offset` is 0 (nothing read).
fn place(
    path: &Path,
    offset: u64,
    chunk_bytes: u64,
    (csv, controls): (bool, bool),
) -> io::Result<u64> {
    if offset == 0 {
        return Ok(0);
    }
    let mut chunks = FileChunks::new(path, 0, 1, chunk_bytes)?.with_header(csv);
    if controls {
        chunks = chunks.past_lines(|line| Control::parse(line).is_some());
    }
    let mut last = None;
    for chunk in chunks {
        let chunk = chunk?;
        if chunk.start >= offset {
            break;
        }
        last = Some((chunk.number, chunk.start, chunk.header));
    }
    let Some((number, start, header)) = last else {
        return Ok(0);
    };
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
    io::Seek::seek(&mut reader, io::SeekFrom::Start(start))?;
    let mut lines = u64::from(header);
    let mut body = reader.take(offset - start);
    loop {
        let buf = body.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buf.len();
        body.consume(n);
    }
    Ok((number << 32) | (lines & 0xffff_ffff))
}

/// Makes, from the newest checkpoint in `config`'s folder when it is a
/// cut of workers, a checkpoint of one engine (the next one: one piece of
/// one engine of every pattern), which a run without workers then resumes
/// from; the cut goes. `Ok(None)` when the newest is not a cut of workers
/// (or cannot be read: the runtime says why); otherwise the number of
/// workers it was taken on. Refused (nothing changed) where one engine cannot go
/// on exactly: the workers had read the file otherwise than from its
/// start up to one place (each had parts of its chunks left: run it on
/// workers to its end, then on one engine), a followed file, outputs per
/// worker, a sink that commits with checkpoints, or rules whose lists
/// keep state. See `docs/checkpoints.md`, "Across executors".
pub fn to_one_engine(config: &Config, rules: &Rules) -> Result<Option<usize>, Error> {
    let Some(dir) = config.checkpoint.as_deref() else {
        return Ok(None);
    };
    let folder = || dir.to_path_buf();
    let refuse = |why: &str| Error::Resume {
        folder: folder(),
        why: Mismatch::ToOneEngine(why.to_string()),
    };
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
    if kept.len() > 1 || !marker.sink_state().data.is_empty() {
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
    let not_one = |source| Error::Resume {
        folder: folder(),
        why: Mismatch::Worker { index: 0, source },
    };
    let states: Vec<&Piece> = newest.pieces().iter().collect();
    let kept_rules = (states.iter())
        .map(|piece| crate::cut::rules(piece))
        .collect::<Result<Vec<_>, _>>()
        .map_err(not_one)?;
    let kept_rules: Vec<crate::cut::Rules> = kept_rules.into_iter().flatten().collect();
    let mut engine = one_engine(config, rules, &states, &kept_rules).map_err(not_one)?;
    let merged = crate::cut::merge(&states, &mut engine).map_err(not_one)?;
    // Where each worker's reader was, in its chunks; what was read over
    // every worker.
    let source = |states: &Vec<(u32, crate::SourceState)>| {
        states
            .iter()
            .find(|(s, _)| *s == 0)
            .map(|(_, state)| state.clone())
    };
    if merged
        .sources
        .iter()
        .flatten()
        .any(|(_, s)| !s.place.is_empty())
    {
        return Err(refuse(
            "its input was read by a source of the library's user (Kafka)",
        ));
    }
    let places: Vec<u64> = (merged.sources.iter())
        .map(|states| source(states).map_or(0, |s| s.position))
        .collect();
    let before = cut::Read::of(states[0]).map_err(|e| refuse(&e.to_string()))?;
    let read = before.after(&places);
    let path = config.input.path();
    let csv = matches!(config.format, Format::Csv);
    let controls = matches!(config.format, Format::JsonLines);
    let offset = match prefix(path, &read, marker.chunk_bytes(), (csv, controls)) {
        Ok(Some(offset)) => offset,
        Ok(None) => {
            return Err(refuse(
                "its workers had each read part of their chunks of the file, not the file from its start to one place, from which one engine reads on (run it on workers to the end of the file, or resume it with `Scale::workers`)",
            ))
        }
        Err(e) => return Err(refuse(&format!("{}: {e}", path.display()))),
    };
    let lines = super::count_lines(path, offset)
        .map_err(|e| refuse(&format!("{}: {e}", path.display())))?;
    let tail = File::open(path)
        .ok()
        .and_then(|file| Tail::of(&file, offset));
    let all = merged.sources.iter().flatten().map(|(_, s)| s);
    // The run's counts go on: the reloads (made and refused by the
    // workers, the same on each; refused and late by each one's readers)
    // and the keys said over `Config::max_runs_per_key`.
    let reloads = kept_rules.first().map_or([0; 3], |first| {
        let read = kept_rules.iter().map(|r| r.read);
        let [refused, late] = read.fold([0, 0], |[a, b], [c, d]| [a + c, b + d]);
        [first.made[0], first.made[1] + refused, late]
    });
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
    .with_dropped_keys(keys, overflow);
    let then = marker.sink_state();
    let state = SinkState {
        late_len: then.late_len.filter(|_| config.late.is_some()),
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
    );
    let one = Marker::new(number)
        .command(Some(command))
        .outputs(&state)
        .counters(counters)
        .records(marker.latest_records().to_vec());
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
    kept: &[crate::cut::Rules],
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
    let layout = &kept[0].layout;
    let mut groups: Vec<Option<Engine<Record>>> = Vec::new();
    groups.resize_with(layout.groups.len(), || None);
    for state in states[0].engines() {
        let group = state.patterns().map_or(usize::MAX, |g| g as usize);
        if let Some(slot @ None) = groups.get_mut(group) {
            *slot = Some(Engine::from_snapshot_rules(state.snapshot())?);
        }
    }
    for name in in_force {
        let group = (layout.groups.iter()).position(|(_, names)| names.contains(name));
        if let Some(Some(theirs)) = group.and_then(|g| groups.get(g)) {
            engine.adopt(theirs, |p| &p.name == name)?;
        }
    }
    Ok(engine)
}

/// Where one reader of `path` from its start goes on when the workers'
/// chunks of `chunk_bytes` read `read`: the byte offset after the last
/// line read, when what was read is every line from the file's start up
/// to there (`None` otherwise).
fn prefix(
    path: &Path,
    read: &cut::Read,
    chunk_bytes: u64,
    (csv, controls): (bool, bool),
) -> io::Result<Option<u64>> {
    let mut chunks = FileChunks::new(path, 0, 1, chunk_bytes)?.with_header(csv);
    if controls {
        chunks = chunks.past_lines(|line| Control::parse(line).is_some());
    }
    // The offset after what was read, once a chunk was not read whole.
    let mut stopped: Option<u64> = None;
    let mut end = 0;
    for chunk in chunks {
        let chunk = chunk?;
        let upto = read.upto(chunk.number);
        if stopped.is_some() {
            if upto > 0 {
                return Ok(None);
            }
            continue;
        }
        let mut reader = BufReader::new(chunk.reader);
        let (mut line, mut at) = (0, chunk.start);
        let mut text = Vec::new();
        loop {
            text.clear();
            let n = reader.read_until(b'\n', &mut text)? as u64;
            if n == 0 {
                break;
            }
            line += 1;
            if line > upto {
                stopped = Some(at);
                break;
            }
            // (a later CSV chunk's line 1 is the header's copy)
            if !(chunk.header && line == 1) {
                at += n;
            }
        }
        end = at;
    }
    Ok(Some(stopped.unwrap_or(end)))
}
