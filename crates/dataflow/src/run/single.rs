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
use cepheid_engine::{Engine, Record};
use cepheid_runtime::checkpoint::{self, Meta};
use cepheid_runtime::source::Tail;
use cepheid_runtime::Config;

use super::cut::{self, Marker, Resume, WorkerFile};
use super::Mismatch;
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
            "it is of a source of the library's user (Kafka): resume it without --workers"
                .to_string(),
        ));
    }
    if config.follow {
        return Err(single(
            "a followed file's checkpoint of one engine resumes without --workers".to_string(),
        ));
    }
    if meta.counters.rules_changed || meta.reload_files {
        return Err(single(
            "its rules were changed while it ran (a `$rules` record or --watch), which a checkpoint on workers does not keep yet: resume it without --workers".to_string(),
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
