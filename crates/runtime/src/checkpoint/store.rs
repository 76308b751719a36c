//! The checkpoint folder, for every executor (`docs/checkpoints.md`, "The
//! folder"): checkpoint `N` is the folder `DIR/cut-N`, holding its
//! [`Marker`] (`marker`) and one [`Piece`] per worker (`piece-W`; one
//! engine is the cut of one worker). It is written in `DIR/part-K` (K: the
//! cut's epoch on workers, whose pieces are written before its number is
//! known; the number on one engine), each file to a temporary file,
//! synced, renamed, the marker last; then the folder is renamed to `cut-N`
//! and `DIR` synced: a `cut-N` is whole, a `part-K` never read. The
//! checkpoints before `N` go once a sink committed `N` (`prune`): until
//! then a transactional sink may still recover from the one before
//! ([`kept`]).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::file::{self, Section};
use super::{Command, Counters};
use crate::audit::History;
use crate::source::{FilePosition, Position, Range};
use crate::Kind;
use crate::{Doing, Error, SinkState, Unusable};

/// The marker's sections (`docs/checkpoints.md`, "The files").
const RUN: u32 = 1;
const SINK: u32 = 2;
const COUNTERS: u32 = 3;
const RECORDS: u32 = 4;
/// The latest audit records of changes of rules ([`History`]).
const AUDIT: u32 = 5;
/// A piece's: an engine (one section each), one engine's input place;
/// then [`Part`]s.
const ENGINE: u32 = 16;
const POSITION: u32 = 17;
/// One engine's ranges of its file left to read ([`Ranges`]).
const RANGES: u32 = 24;
const MARKER_SECTIONS: &[u32] = &[RUN, SINK, COUNTERS, RECORDS, AUDIT];
const PIECE_SECTIONS: &[u32] = &[ENGINE, POSITION, 18, 19, 20, 21, 22, 23, RANGES, 25, 26, 31];

/// An engine of every pattern (one engine's), not of one group.
const EVERY_GROUP: u32 = u32::MAX;
/// Every key group: `[0, 2^32)`.
const WHOLE: (u64, u64) = (0, 1 << 32);
/// The group and key range of one engine's piece written in place.
pub(crate) const ONE_ENGINE: (u32, (u64, u64)) = (EVERY_GROUP, WHOLE);

/// A whole checkpoint's marker: its number, the layout it was taken on,
/// the command it belongs to, the outputs' lengths and first bytes' CRC-32
/// (the section's JSON), a sink's state and the run's counters. Built by
/// the executor that takes the checkpoint, read by the one that resumes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    number: u64,
    /// Processes and workers per process; `None`: one engine.
    layout: Option<(usize, usize)>,
    chunk_bytes: u64,
    command: Option<Command>,
    output: Option<(u64, Option<u32>)>,
    late: Option<(u64, Option<u32>)>,
    /// The shadow output's (none in markers of before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shadow: Option<(u64, Option<u32>)>,
    /// The audit file's (none in markers of before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit: Option<(u64, Option<u32>)>,
    /// The decisions file's (none in markers of before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decisions: Option<(u64, Option<u32>)>,
    output_per_worker: bool,
    #[serde(skip)]
    sink: Vec<u8>,
    #[serde(skip)]
    counters: Counters,
    #[serde(skip)]
    records: Vec<(Kind, String)>,
    #[serde(skip)]
    history: History,
}

impl Marker {
    /// The marker of checkpoint `number`, taken on one engine.
    pub fn new(number: u64) -> Marker {
        Marker {
            number,
            ..Marker::default()
        }
    }

    /// Taken on `processes` × `workers`, reading a file in chunks of
    /// `chunk_bytes`; each worker wrote its own output with
    /// `output_per_worker`.
    pub fn on_workers(
        mut self,
        (processes, workers): (usize, usize),
        chunk_bytes: u64,
        output_per_worker: bool,
    ) -> Marker {
        self.layout = Some((processes, workers));
        (self.chunk_bytes, self.output_per_worker) = (chunk_bytes, output_per_worker);
        self
    }

    /// Of `command`.
    pub fn command(mut self, command: Option<Command>) -> Marker {
        self.command = command;
        self
    }

    /// The outputs as the sink measured them ([`Sink::prepare`](crate::Sink::prepare)),
    /// and its own state.
    pub fn outputs(mut self, state: &SinkState) -> Marker {
        self.output = state.output_len.map(|len| (len, state.output_head));
        self.late = state.late_len.map(|len| (len, state.late_head));
        self.shadow = state.shadow_len.map(|len| (len, state.shadow_head));
        self.audit = state.audit_len.map(|len| (len, state.audit_head));
        self.decisions = (state.decisions_len).map(|len| (len, state.decisions_head));
        self.sink.clone_from(&state.data);
        self
    }

    /// With the run's counters.
    pub fn counters(mut self, counters: Counters) -> Marker {
        self.counters = counters;
        self
    }

    /// With the latest records an observer was shown (`Report::records_wanted`
    /// of them at most): a resumed run shows them first.
    pub fn records(mut self, records: Vec<(Kind, String)>) -> Marker {
        self.records = records;
        self
    }

    /// With the latest audit records of changes of rules (at most
    /// [`HISTORY`](crate::audit::HISTORY)): a resumed run shows them.
    pub fn history(mut self, history: History) -> Marker {
        self.history = history;
        self
    }

    /// The latest audit records of changes of rules before it (none in a
    /// marker of before them).
    pub fn the_history(&self) -> &History {
        &self.history
    }

    /// The latest records made before it.
    pub fn latest_records(&self) -> &[(Kind, String)] {
        &self.records
    }

    /// Its number, counted from 1 over the runs that share the folder (0
    /// in a cut of version 6 or before).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Processes and workers per process; `None`: one engine.
    pub fn layout(&self) -> Option<(usize, usize)> {
        self.layout
    }

    /// Its pieces: one per worker (one on one engine).
    pub fn pieces(&self) -> usize {
        self.layout.map_or(1, |(p, w)| p.saturating_mul(w))
    }

    /// The workers' chunks of a file (0 on one engine).
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes
    }

    /// Did each worker write its own output file?
    pub fn output_per_worker(&self) -> bool {
        self.output_per_worker
    }

    /// The command it belongs to.
    pub fn the_command(&self) -> Option<&Command> {
        self.command.as_ref()
    }

    /// What the sink said: the outputs' lengths and first bytes, its state.
    pub fn sink_state(&self) -> SinkState {
        let split = |o: Option<(u64, Option<u32>)>| o.map_or((None, None), |(l, h)| (Some(l), h));
        let ((output_len, output_head), (late_len, late_head)) =
            (split(self.output), split(self.late));
        let (shadow_len, shadow_head) = split(self.shadow);
        let (audit_len, audit_head) = split(self.audit);
        let (decisions_len, decisions_head) = split(self.decisions);
        SinkState {
            output_len,
            output_head,
            late_len,
            late_head,
            shadow_len,
            shadow_head,
            audit_len,
            audit_head,
            decisions_len,
            decisions_head,
            data: self.sink.clone(),
        }
    }

    /// The run's counters.
    pub fn the_counters(&self) -> &Counters {
        &self.counters
    }

    /// The marker file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.encode_into(&mut bytes);
        file::seal(&mut bytes);
        bytes
    }

    /// The marker file's bytes but the CRC-32, into `bytes`.
    pub(crate) fn encode_into(&self, bytes: &mut Vec<u8>) {
        let mut writer = file::Writer::new(file::Kind::Marker, bytes);
        writer.section(RUN, 0, &to_json(self));
        if !self.sink.is_empty() {
            writer.section(SINK, 0, &self.sink);
        }
        writer.section(COUNTERS, 0, &to_json(&self.counters));
        if !self.records.is_empty() {
            // (shown, not needed to resume exactly: a reader may go on
            // without it)
            writer.section(RECORDS, file::OPTIONAL, &to_json(&self.records));
        }
        if !self.history.is_empty() {
            // (shown, not needed to resume exactly: a build of before it
            // goes on without it, and one reading a marker of before it
            // shows none)
            writer.section(AUDIT, file::OPTIONAL, &to_json(&self.history));
        }
        writer.finish();
    }

    /// A marker file's bytes, every part checked.
    pub fn decode(bytes: &[u8]) -> Result<Marker, Unusable> {
        let (mut sink, mut counters, mut records) = (Vec::new(), Counters::default(), Vec::new());
        let mut history = History::default();
        let mut run: Option<Marker> = None;
        for Section { id, body } in file::read(bytes, file::Kind::Marker, MARKER_SECTIONS)? {
            match id {
                RUN => run = Some(from_json(body, "run")?),
                SINK => sink = body.to_vec(),
                RECORDS => records = from_json(body, "latest records")?,
                AUDIT => history = from_json(body, "audit records")?,
                _ => counters = from_json(body, "counters")?,
            }
        }
        let run = run.ok_or_else(|| Unusable::Malformed("it has no run section".into()))?;
        Ok(Marker {
            sink,
            counters,
            records,
            history,
            ..run
        })
    }
}

/// A section's JSON.
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain data")
}

fn from_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Unusable> {
    serde_json::from_slice(body).map_err(|e| Unusable::Malformed(format!("its {what}: {e}")))
}

/// An engine's state in a piece: its snapshot
/// ([`Engine::snapshot`](cepheid_engine::Engine::snapshot)), its group of
/// patterns and the range of key groups of its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineState {
    group: u32,
    keys: (u64, u64),
    snapshot: Vec<u8>,
}

impl EngineState {
    /// An engine of one group of patterns partitioned alike (the
    /// dataflow's numbering) holding the keys whose key group is in `keys`
    /// (`[from, to)`).
    pub fn group(group: u32, keys: (u64, u64), snapshot: Vec<u8>) -> EngineState {
        EngineState {
            group,
            keys,
            snapshot,
        }
    }

    /// Its group of patterns; `None`: every pattern of the run (one
    /// engine's, over every key).
    pub fn patterns(&self) -> Option<u32> {
        (self.group != EVERY_GROUP).then_some(self.group)
    }

    /// The range of key groups of its keys, `[from, to)`.
    pub fn keys(&self) -> (u64, u64) {
        self.keys
    }

    /// Its snapshot.
    pub fn snapshot(&self) -> &[u8] {
        &self.snapshot
    }
}

/// The parts of a piece an executor keeps besides its engines, each a
/// section of its own (the number: `docs/checkpoints.md`, "The files").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The cut's epoch, the sources' places and clocks, the ends received.
    Sources = 18,
    /// Events sent below the cut, not yet given to an engine.
    Stash = 19,
    /// The keys said over `Config::max_runs_per_key`.
    Keys = 20,
    /// The lines of the input read over every worker.
    Read = 21,
    /// The worker's own output file.
    Own = 22,
    /// The rules in force, the changes pending and what was counted of
    /// changes.
    Rules = 23,
    /// The lines of the input below the lines read that were not (read
    /// again by a resumed run).
    Again = 25,
    /// The entries each watched reference file gave when the changes a
    /// worker made since its run started were read (`Config::lists`).
    Lists = 26,
    /// A worker's state in a cut of format 5 to 7, as it was saved.
    Legacy = 31,
}

/// What one worker saved at a checkpoint (one engine: the piece of one
/// worker): its engines, one engine's input place, the executor's parts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Piece {
    engines: Vec<EngineState>,
    position: Option<OnePosition>,
    parts: Vec<(u32, Vec<u8>)>,
}

/// Where one engine's input goes on (its piece's section 17).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OnePosition {
    /// The file's place after the lines given to the engine.
    pub(crate) input: FilePosition,
    /// A source's own position (`None`: the file reader's, `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<Position>,
    /// Each split's watermark (`Config::split_watermarks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) split_watermarks: Option<Vec<Option<i64>>>,
    /// The ranges of the file left to read, in order, `input` in the first
    /// (none: the file from `input` on), in a section of their own.
    #[serde(skip)]
    pub(crate) ranges: Vec<Range>,
}

/// The body of section [`RANGES`] (JSON): a version of its own, then the
/// ranges. Required: a build that does not read it refuses the
/// checkpoint, rather than read the file from one place.
#[derive(Serialize, Deserialize)]
struct Ranges {
    version: u32,
    ranges: Vec<Range>,
}

impl Piece {
    /// A piece with nothing yet.
    pub fn new() -> Piece {
        Piece::default()
    }

    /// One engine's piece: its snapshot (every pattern, every key) and
    /// where its input goes on.
    pub fn of_one_engine(snapshot: Vec<u8>, input: FilePosition) -> Piece {
        Piece {
            engines: vec![EngineState::group(EVERY_GROUP, WHOLE, snapshot)],
            position: Some(OnePosition {
                input,
                ..OnePosition::default()
            }),
            parts: Vec::new(),
        }
    }

    /// Adds an engine's state.
    pub fn engine(&mut self, engine: EngineState) {
        self.engines.push(engine);
    }

    /// Sets `part` to `bytes`.
    pub fn set(&mut self, part: Part, bytes: Vec<u8>) {
        self.parts.retain(|(id, _)| *id != part as u32);
        self.parts.push((part as u32, bytes));
    }

    /// The engines' states, in the order they were added.
    pub fn engines(&self) -> &[EngineState] {
        &self.engines
    }

    /// `part`'s bytes, if the piece has it.
    pub fn get(&self, part: Part) -> Option<&[u8]> {
        let found = self.parts.iter().find(|(id, _)| *id == part as u32);
        found.map(|(_, bytes)| &bytes[..])
    }

    /// Is it one engine's (one engine of every pattern over every key)?
    pub fn is_one_engine(&self) -> bool {
        matches!(&self.engines[..], [one] if one.patterns().is_none())
    }

    /// One engine's place in its input file, and whether its input was
    /// not a file alone (a source of the library's user, split
    /// watermarks).
    pub fn one_engine_input(&self) -> Option<(FilePosition, bool)> {
        let p = self.position.as_ref()?;
        Some((p.input, p.source.is_some() || p.split_watermarks.is_some()))
    }

    /// One engine's source's own position (a Kafka source's offsets),
    /// when its input was such a source.
    pub fn one_engine_source(&self) -> Option<&Position> {
        self.position.as_ref()?.source.as_ref()
    }

    /// One engine's ranges of its file left to read, in order (none: the
    /// file from its place on).
    pub fn one_engine_ranges(&self) -> &[Range] {
        self.position.as_ref().map_or(&[], |p| &p.ranges[..])
    }

    /// With one engine's ranges of its file left to read.
    pub fn with_ranges(mut self, ranges: Vec<Range>) -> Piece {
        if let Some(position) = &mut self.position {
            position.ranges = ranges;
        }
        self
    }

    pub(crate) fn position(&self) -> Option<&OnePosition> {
        self.position.as_ref()
    }

    pub(crate) fn set_position(&mut self, position: OnePosition) {
        self.position = Some(position);
    }

    /// The piece file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer = file::Writer::new(file::Kind::Piece, &mut bytes);
        for e in &self.engines {
            engine_section(&mut writer, e.group, e.keys).extend_from_slice(&e.snapshot);
        }
        if let Some(position) = &self.position {
            position_section(&mut writer, position);
        }
        for (id, bytes) in &self.parts {
            writer.section(*id, 0, bytes);
        }
        writer.finish();
        file::seal(&mut bytes);
        bytes
    }

    /// A piece file's bytes, every part checked.
    pub fn decode(bytes: &[u8]) -> Result<Piece, Unusable> {
        let mut piece = Piece::new();
        let mut ranges = Vec::new();
        for Section { id, body } in file::read(bytes, file::Kind::Piece, PIECE_SECTIONS)? {
            match id {
                ENGINE if body.len() >= 20 => {
                    let u64_at =
                        |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8"));
                    let group = u32::from_le_bytes(body[..4].try_into().expect("4"));
                    let snapshot = body[20..].to_vec();
                    piece.engine(EngineState::group(group, (u64_at(4), u64_at(12)), snapshot));
                }
                ENGINE => {
                    return Err(Unusable::Malformed(
                        "an engine's section is cut short".into(),
                    ))
                }
                POSITION => piece.position = Some(from_json(body, "position")?),
                RANGES => {
                    let read: Ranges = from_json(body, "ranges left")?;
                    if read.version != 1 {
                        return Err(Unusable::Section { id });
                    }
                    ranges = read.ranges;
                }
                id => piece.parts.push((id, body.to_vec())),
            }
        }
        match &mut piece.position {
            Some(position) => position.ranges = ranges,
            None if !ranges.is_empty() => {
                return Err(Unusable::Malformed("ranges left without a place".into()))
            }
            None => {}
        }
        if piece.engines.is_empty() && piece.get(Part::Legacy).is_none() {
            return Err(Unusable::Malformed("it holds no engine".into()));
        }
        Ok(piece)
    }
}

/// Opens an engine's section in `writer`: its group, its key groups, then
/// (appended by the caller) its snapshot.
pub(crate) fn engine_section<'w>(
    writer: &'w mut file::Writer<'_>,
    group: u32,
    (from, to): (u64, u64),
) -> &'w mut Vec<u8> {
    let body = writer.open(ENGINE, 0);
    body.extend_from_slice(&group.to_le_bytes());
    body.extend_from_slice(&from.to_le_bytes());
    body.extend_from_slice(&to.to_le_bytes());
    body
}

/// Writes one engine's place as its piece's section.
pub(crate) fn position_section(writer: &mut file::Writer<'_>, position: &OnePosition) {
    writer.section(POSITION, 0, &to_json(position));
    if !position.ranges.is_empty() {
        let ranges = Ranges {
            version: 1,
            ranges: position.ranges.clone(),
        };
        writer.section(RANGES, 0, &to_json(&ranges));
    }
}

/// A checkpoint read whole from its folder: its marker and every piece.
#[derive(Clone, Debug)]
pub struct Stored {
    path: PathBuf,
    marker: Marker,
    pieces: Vec<Piece>,
    /// Of an older format: which (read once).
    older: Option<&'static str>,
}

impl Stored {
    pub(crate) fn new(path: PathBuf, marker: Marker, pieces: Vec<Piece>) -> Stored {
        Stored {
            path,
            marker,
            pieces,
            older: None,
        }
    }

    pub(crate) fn older(mut self, what: &'static str) -> Stored {
        self.older = Some(what);
        self
    }

    /// Where it is, for messages: its folder (`DIR/cut-N`), or an older
    /// format's file or folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its marker.
    pub fn marker(&self) -> &Marker {
        &self.marker
    }

    /// Its pieces, by worker.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Its marker and its pieces.
    pub fn into_parts(self) -> (Marker, Vec<Piece>) {
        (self.marker, self.pieces)
    }

    /// Is it of an older format, which (`the single run's file of format
    /// version 1`, `a cut of workers of format version 7`)?
    pub fn older_format(&self) -> Option<&'static str> {
        self.older
    }

    /// Is it one engine's (one piece of every pattern over every key)?
    pub fn is_one_engine(&self) -> bool {
        matches!(&self.pieces[..], [one] if one.is_one_engine())
    }
}

/// The run's error for a file of a checkpoint in `dir` that cannot be read
/// (exit 4) or used (exit 5).
pub(crate) fn unreadable(dir: &Path, path: &Path, why: Result<io::Error, Unusable>) -> Error {
    match why {
        Ok(source) => Error::Io {
            doing: Doing::ReadCheckpoint,
            path: path.display().to_string(),
            source,
        },
        Err(why) => Error::Checkpoint {
            path: path.to_path_buf(),
            folder: dir.to_path_buf(),
            why,
        },
    }
}

/// The folder of checkpoint `number`.
pub fn cut_dir(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("cut-{number}"))
}

/// The folder a checkpoint is written in (`key`: its epoch on workers, its
/// number on one engine).
pub(crate) fn part_dir(dir: &Path, key: i64) -> PathBuf {
    dir.join(format!("part-{key}"))
}

/// The file of worker `worker`'s piece in a checkpoint's folder.
pub(crate) fn piece_name(worker: usize) -> String {
    format!("piece-{worker}")
}

/// The entries of `dir` named `prefix` and a number, by number.
pub(crate) fn numbered(dir: &Path, prefix: &str) -> io::Result<Vec<i64>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let n: Option<i64> = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix)?.parse().ok());
        found.extend(n);
    }
    found.sort_unstable();
    Ok(found)
}

/// The numbers of the whole checkpoints in `dir`, newest first.
pub fn complete(dir: &Path) -> io::Result<Vec<u64>> {
    let all = numbered(dir, "cut-")?.into_iter().rev();
    Ok(all.filter_map(|n| u64::try_from(n).ok()).collect())
}

/// Checkpoint `number` of `dir`, read whole (its marker and every piece,
/// each file checked).
pub(crate) fn read(dir: &Path, number: u64) -> Result<Stored, Error> {
    let folder = cut_dir(dir, number);
    // (a whole checkpoint has every file: one missing is a damaged one)
    let file = |name: &str| {
        let path = folder.join(name);
        let missing = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => Err(Unusable::Malformed(format!("it has no {name}"))),
            _ => Ok(e),
        };
        fs::read(&path)
            .map_err(|e| unreadable(dir, &path, missing(e)))
            .map(|b| (path, b))
    };
    let (path, bytes) = file("marker")?;
    let marker = Marker::decode(&bytes).map_err(|why| unreadable(dir, &path, Err(why)))?;
    if marker.number() != number {
        let why = Unusable::Malformed(format!("it names checkpoint {}", marker.number()));
        return Err(unreadable(dir, &path, Err(why)));
    }
    let mut pieces = Vec::with_capacity(marker.pieces().min(1 << 16));
    for worker in 0..marker.pieces() {
        let (path, bytes) = file(&piece_name(worker))?;
        pieces.push(Piece::decode(&bytes).map_err(|why| unreadable(dir, &path, Err(why)))?);
    }
    Ok(Stored::new(folder, marker, pieces))
}

/// The checkpoints kept in `dir`, newest first, each read whole: one, or
/// two while a sink's commit of the newest is not known to have happened
/// (`prune` deletes the older after it); then those of the older
/// formats (read once: they go once a checkpoint of this one is
/// committed). Empty: none yet.
pub fn kept(dir: &Path) -> Result<Vec<Stored>, Error> {
    let numbers = complete(dir).map_err(|e| unreadable(dir, dir, Ok(e)))?;
    let mut kept: Vec<Stored> = numbers
        .into_iter()
        .map(|n| read(dir, n))
        .collect::<Result<_, _>>()?;
    kept.extend(super::legacy::kept(dir)?);
    Ok(kept)
}

/// Writes `bytes` as `folder/name` safely: a temporary file, synced,
/// renamed (failing half-way with `fail`: a test's full disk).
pub(crate) fn write_file(
    folder: &Path,
    name: &str,
    bytes: &[u8],
    fail: Option<&str>,
) -> io::Result<()> {
    fs::create_dir_all(folder)?;
    let temp = folder.join(format!("{name}.tmp"));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        if let Some(why) = fail {
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::other(why.to_string()));
        }
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    fs::rename(&temp, folder.join(name))
}

/// Writes worker `worker`'s piece of the checkpoint written in
/// `part_dir(dir, key)`, the folder synced (a worker of another process
/// completes the checkpoint).
pub(crate) fn write_piece(dir: &Path, key: i64, worker: usize, piece: &Piece) -> io::Result<()> {
    let part = part_dir(dir, key);
    write_file(&part, &piece_name(worker), &piece.encode(), None)?;
    sync_dir(&part)
}

/// Does the checkpoint written in `part_dir(dir, key)` hold worker
/// `worker`'s piece?
pub(crate) fn has_piece(dir: &Path, key: i64, worker: usize) -> bool {
    part_dir(dir, key).join(piece_name(worker)).exists()
}

/// Makes the checkpoint written in `part_dir(dir, key)` whole: its marker
/// (`marker`: [`Marker::encode`]'s bytes) written last, the folder renamed
/// to `cut_dir(dir, number)`, `dir` synced. (Where a test's
/// `CEPHEID_TEST_KILL_AFTER_CHECKPOINT` kills the process.)
pub(crate) fn complete_part(dir: &Path, key: i64, number: u64, marker: &[u8]) -> io::Result<()> {
    let part = part_dir(dir, key);
    write_file(&part, "marker", marker, None)?;
    sync_dir(&part)?;
    fs::rename(&part, cut_dir(dir, number))?;
    sync_dir(dir)?;
    super::kill_if_asked(number);
    Ok(())
}

/// The bytes of checkpoint `number`'s files: its size.
pub(crate) fn bytes(dir: &Path, number: u64) -> u64 {
    let Ok(entries) = fs::read_dir(cut_dir(dir, number)) else {
        return 0;
    };
    let sizes = entries.filter_map(|e| e.ok()?.metadata().ok());
    sizes.filter(|m| m.is_file()).map(|m| m.len()).sum()
}

/// A sink committed checkpoint `number`: the checkpoints before it go
/// (and those of older formats, read once).
pub(crate) fn prune(dir: &Path, number: u64) -> io::Result<()> {
    for n in complete(dir)?.into_iter().filter(|&n| n < number) {
        remove(dir, &cut_dir(dir, n))?;
    }
    super::legacy::remove(dir)?;
    clear_gone(dir)?;
    sync_dir(dir)
}

/// A sink committed checkpoint `number` and none after it (`None`: none
/// of them, [`Sink::recover`](crate::Sink::recover)): the checkpoints
/// after it go, never to be resumed from again.
pub(crate) fn discard_after(dir: &Path, number: Option<u64>) -> io::Result<()> {
    for n in complete(dir)? {
        if number.map_or(true, |keep| n > keep) {
            remove(dir, &cut_dir(dir, n))?;
        }
    }
    super::legacy::discard_after(dir, number)?;
    sync_dir(dir)
}

/// Removes `folder` of `dir` whole or not at all, as a reader sees it:
/// renamed first (`gone-...`, never read), then deleted (deleted in place,
/// a run killed meanwhile left a checkpoint with a piece and no marker).
pub(crate) fn remove(dir: &Path, folder: &Path) -> io::Result<()> {
    let name = folder.file_name().unwrap_or_default().to_string_lossy();
    let gone = dir.join(format!("gone-{name}"));
    fs::rename(folder, &gone)?;
    fs::remove_dir_all(gone)
}

/// Deletes what a run killed while it removed a folder left ([`remove`]).
fn clear_gone(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("gone-") {
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// Deletes the checkpoints left half-written by a run that stopped
/// (`part-K`): one written again must not find their files. Called before
/// anything of the run is written.
pub(crate) fn clear_parts(dir: &Path) -> io::Result<()> {
    for key in numbered(dir, "part-")? {
        fs::remove_dir_all(part_dir(dir, key))?;
    }
    clear_gone(dir)?;
    sync_dir(dir)
}

/// Deletes the checkpoints being written below `key`, which will never be
/// complete: below one just completed (by the one that completes the
/// cuts, in their order), or below the one before a worker's newest piece
/// (a cut is asked for once the one before it is whole or given up; the
/// one before the newest may still be being completed). Errors are ignored
/// (a late piece may be being written).
pub(crate) fn prune_parts_below(dir: &Path, key: i64) {
    for old in numbered(dir, "part-").unwrap_or_default() {
        if old < key {
            let _ = fs::remove_dir_all(part_dir(dir, old));
        }
    }
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Elsewhere a folder cannot be opened to be synced.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::source::Tail;

    fn marker() -> Marker {
        let state = SinkState {
            output_len: Some(99),
            output_head: Some(7),
            late_len: Some(0),
            late_head: None,
            shadow_len: Some(5),
            shadow_head: Some(3),
            audit_len: Some(9),
            audit_head: Some(4),
            decisions_len: Some(11),
            decisions_head: Some(6),
            data: vec![1, 2, 3],
        };
        let counters = Counters {
            malformed: 2,
            rules_changed: true,
            ..Counters::default()
        };
        Marker::new(4)
            .on_workers((2, 3), 1 << 20, false)
            .outputs(&state)
            .counters(counters)
            .history(history())
    }

    /// A history of one record.
    fn history() -> History {
        let mut history = History::default();
        let origin = crate::audit::Origin::Files {
            files: vec!["p.cep".into()],
            label: None,
        };
        let policy = cepheid_engine::engine::ReloadPolicy::Drain;
        let mut change = crate::audit::RuleChange::refused(Some(3), origin, policy, "x");
        change.wall_time = 0;
        history.push(change);
        history
    }

    fn piece() -> Piece {
        let input = FilePosition {
            offset: 1234,
            lines: 17,
            tail: Some(Tail { len: 1234, crc: 7 }),
        };
        let ranges = vec![
            Range {
                start: 1234,
                end: 1300,
                lines: Some(17),
                skip: 0,
            },
            Range {
                start: 1400,
                end: u64::MAX,
                lines: Some(20),
                skip: 0,
            },
        ];
        let mut piece = Piece::of_one_engine(b"snapshot".to_vec(), input).with_ranges(ranges);
        piece.engine(EngineState::group(2, (5, 9), b"group 2".to_vec()));
        piece.set(Part::Stash, b"stash".to_vec());
        piece
    }

    /// Every bit of `bytes` flipped, every truncation: refused by `decode`.
    pub(crate) fn every_damage_refused<T>(bytes: &[u8], decode: fn(&[u8]) -> Result<T, Unusable>) {
        for at in 0..bytes.len() * 8 {
            let mut flipped = bytes.to_vec();
            flipped[at / 8] ^= 1 << (at % 8);
            assert!(decode(&flipped).is_err(), "bit {at}");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "{len} bytes");
        }
    }

    #[test]
    fn a_marker_and_a_piece_read_back_and_any_damage_is_seen() {
        let bytes = marker().encode();
        assert_eq!(Marker::decode(&bytes).unwrap(), marker());
        assert_eq!(marker().sink_state().output_len, Some(99));
        assert_eq!(marker().pieces(), 6);
        every_damage_refused(&bytes, Marker::decode);
        let bytes = piece().encode();
        let read = Piece::decode(&bytes).unwrap();
        assert_eq!(read, piece());
        let groups: Vec<_> = read.engines().iter().map(EngineState::patterns).collect();
        assert_eq!(groups, [None, Some(2)]);
        assert_eq!(read.get(Part::Stash), Some(&b"stash"[..]));
        assert_eq!(read.one_engine_ranges()[1].start, 1400);
        every_damage_refused(&bytes, Piece::decode);
    }

    #[test]
    fn a_checkpoint_is_whole_once_renamed_and_the_older_go_once_committed() {
        let dir = std::env::temp_dir().join(format!("cepheid-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for (number, key) in [(4, 100), (5, 200)] {
            write_piece(&dir, key, 0, &piece()).unwrap();
            assert!(has_piece(&dir, key, 0));
            assert_eq!(complete(&dir).unwrap().len(), (number - 4) as usize);
            complete_part(&dir, key, number, &Marker::new(number).encode()).unwrap();
        }
        // A piece missing from a whole checkpoint: it cannot be used.
        let piece_5 = cut_dir(&dir, 5).join(piece_name(0));
        let kept_piece = fs::read(&piece_5).unwrap();
        fs::remove_file(&piece_5).unwrap();
        let refused = kept(&dir).expect_err("refused").to_string();
        assert!(
            refused.contains("cannot be used: it is malformed: it has no piece-0"),
            "{refused}"
        );
        fs::write(&piece_5, kept_piece).unwrap();
        // One being written, left by a run that stopped.
        write_piece(&dir, 300, 0, &piece()).unwrap();
        assert_eq!(complete(&dir).unwrap(), [5, 4]);
        let both = kept(&dir).unwrap();
        assert_eq!(both[0].marker().number(), 5);
        assert_eq!(both[0].pieces(), [piece()]);
        assert!(bytes(&dir, 5) > 0);
        clear_parts(&dir).unwrap();
        assert!(!part_dir(&dir, 300).exists());
        prune(&dir, 5).unwrap();
        assert_eq!(complete(&dir).unwrap(), [5]);
        discard_after(&dir, None).unwrap();
        assert!(kept(&dir).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
