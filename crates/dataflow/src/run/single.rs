//! A checkpoint of one engine (`DIR/checkpoint`, written by `cepheid run`
//! without `--workers`) resumed on workers: read as the cut of a run of
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

use cepheid_engine::io::Format;
use cepheid_engine::{Engine, Record, Rules};
use cepheid_runtime::checkpoint::{self, Meta};
use cepheid_runtime::source::Tail;
use cepheid_runtime::Config;

use super::cut::{self, Marker, Resume, WorkerFile};
use super::{Error, Mismatch};
use crate::{FileChunks, Lateness, Plan, WorkerCut};
use cepheid_runtime::source::Control;

/// The checkpoint of one engine in `dir` (`checkpoint`, or only
/// `checkpoint.prev` when the run stopped between its renames), if any, as
/// a cut of one worker for a run of `chunk_bytes` chunks; `Err` says why
/// it cannot be resumed on workers (before anything is changed).
pub(super) fn resume(
    dir: &Path,
    config: &Config,
    chunk_bytes: u64,
    plan: &Plan<Record>,
) -> Result<Option<Resume>, Mismatch> {
    let single = |why: String| Mismatch::Single(why);
    let found = match checkpoint::read(dir) {
        Ok(None) => checkpoint::read_file(dir, checkpoint::PREV),
        found => found,
    };
    let bytes = match found {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) => return Err(single(format!("it cannot be read: {e}"))),
    };
    let (meta, snapshot) = checkpoint::decode(&bytes).map_err(|why| single(why.to_string()))?;
    if meta.source.is_some() || meta.split_watermarks.is_some() {
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
    if meta.counters.rules_changed || meta.reload_files {
        return Err(single(
            "its rules were changed while it ran (a `$rules` record or `Config::watch`), which a checkpoint on workers does not keep yet: resume it without `Scale::workers`".to_string(),
        ));
    }
    let path = config.input.path();
    let input = File::open(path).map_err(|e| single(format!("{}: {e}", path.display())))?;
    if let Some(tail) = meta.input.tail {
        if Tail::of(&input, meta.input.offset) != Some(tail) {
            return Err(single(format!(
                "{} is not the file it read (its bytes before offset {} differ)",
                path.display(),
                meta.input.offset
            )));
        }
    }
    let engine = Engine::<Record>::from_snapshot_rules(snapshot)
        .map_err(|source| Mismatch::Worker { index: 0, source })?;
    let csv = matches!(config.format, Format::Csv);
    let controls = matches!(config.format, Format::JsonLines);
    let position = place(path, meta.input.offset, chunk_bytes, (csv, controls))
        .map_err(|e| single(format!("{}: {e}", path.display())))?;
    let mut clock = Lateness::new(millis(config.max_delay))
        .flush_at_end(config.flush_at_end)
        .max_waiting(config.max_waiting);
    if let Some(timeout) = config.idle_timeout {
        clock = clock.idle_timeout(timeout);
    }
    let state = WorkerCut::from_engine(
        plan,
        engine,
        &clock,
        (position, meta.counters.malformed),
        meta.counters.punctuated,
    )
    .map_err(|source| Mismatch::Worker { index: 0, source })?;
    Ok(Some(as_cut(meta, state, chunk_bytes)))
}

/// The cut of one worker whose state is `state`, with the single run's
/// outputs' lengths and number.
fn as_cut(meta: Meta, state: Vec<u8>, chunk_bytes: u64) -> Resume {
    let mut marker = Marker::new(0, (1, 1), chunk_bytes, Some(meta.command));
    marker.output = meta.output_len.unwrap_or(0);
    marker.late = meta.late_len.unwrap_or(0);
    marker.output_head = meta.output_head;
    marker.late_head = meta.late_head;
    marker.number = meta.number;
    marker.sink = meta.sink_data;
    Resume {
        marker,
        workers: vec![WorkerFile {
            state,
            // (the keys said to be over --max-runs-per-key are said again
            // once: their key groups are not in the checkpoint)
            drops: Vec::new(),
            read: cut::Read::default(),
            own: None,
            drops_overflow: meta.counters.dropped_keys_overflow,
            own_head: None,
        }],
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

/// Makes, from the last complete cut of workers in `config`'s checkpoint
/// folder, a checkpoint of one engine there (`DIR/checkpoint`), which a
/// run without workers then resumes from; the cut's folders go. `Ok(None)`
/// when the folder holds no complete cut; otherwise the number of workers
/// it was taken on. Refused (nothing changed) where one engine cannot go
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
    let epochs = cut::complete_epochs(dir).map_err(|why| Error::Cut {
        folder: folder(),
        why,
    })?;
    let Some(&epoch) = epochs.first() else {
        return Ok(None);
    };
    // (another run on the folder is refused before anything is read)
    let lock = cepheid_runtime::checkpoint::lock_folder(dir, 0)?;
    let resume = cut::read_at(dir, epoch).map_err(|why| Error::Cut {
        folder: folder(),
        why,
    })?;
    let marker = &resume.marker;
    if epochs.len() > 1 || !marker.sink.is_empty() {
        return Err(refuse(
            "its output is a sink's that commits with checkpoints (Kafka)",
        ));
    }
    if marker.output_per_worker {
        return Err(refuse("it was taken with `Scale::output_per_worker`"));
    }
    if config.follow {
        return Err(refuse("it is of a followed file"));
    }
    let Some(command) = marker.command.clone() else {
        return Err(refuse("it names no command"));
    };
    let mut engine = config.engine();
    engine.add(rules).map_err(|source| Error::Resume {
        folder: folder(),
        why: Mismatch::Worker { index: 0, source },
    })?;
    let states: Vec<&[u8]> = resume.workers.iter().map(|f| &f.state[..]).collect();
    let merged = crate::cut::merge(&states, &mut engine).map_err(|source| Error::Resume {
        folder: folder(),
        why: Mismatch::Worker { index: 0, source },
    })?;
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
    let read = resume.workers[0].read.after(&places);
    let path = config.input.path();
    let csv = matches!(config.format, Format::Csv);
    let controls = matches!(config.format, Format::JsonLines);
    let offset = match prefix(path, &read, marker.chunk_bytes, (csv, controls)) {
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
    let counters = checkpoint::Counters {
        malformed: all.clone().map(|s| s.unread).sum(),
        punctuated: all.clone().any(|s| s.lateness.end().punctuated)
            || merged.ends.iter().any(|e| e.punctuated),
        ..checkpoint::Counters::default()
    };
    let meta = Meta {
        command,
        input: cepheid_runtime::source::FilePosition {
            offset,
            lines,
            tail,
        },
        output_len: Some(marker.output),
        late_len: config.late.is_some().then_some(marker.late),
        output_head: marker.output_head,
        late_head: marker.late_head,
        counters,
        number: marker.number,
        source: None,
        sink_data: Vec::new(),
        split_watermarks: None,
        reload_files: false,
    };
    let mut snapshot = Vec::new();
    engine
        .snapshot(&mut snapshot)
        .map_err(|source| Error::Resume {
            folder: folder(),
            why: Mismatch::Worker { index: 0, source },
        })?;
    let bytes = checkpoint::encode(&meta, &snapshot);
    // (the cut stays until the checkpoint is durable: a run stopped
    // between the two makes it again from the cut)
    cut::write(dir, checkpoint::FILE, &bytes).map_err(|source| {
        Error::Runtime(cepheid_runtime::Error::Io {
            doing: cepheid_runtime::Doing::WriteCheckpoint,
            path: dir.join(checkpoint::FILE).display().to_string(),
            source,
        })
    })?;
    // (a checkpoint of one engine left from before the cut is older)
    let prev = match std::fs::remove_file(dir.join(checkpoint::PREV)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    prev.and_then(|()| cut::discard_after(dir, None))
        .map_err(|source| Error::ClearUnfinished {
            folder: folder(),
            source,
        })?;
    drop(lock);
    Ok(Some(marker.processes * marker.workers))
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
