//! Checkpoints of `cepheid run --workers N --checkpoint DIR`: one folder
//! per cut, `DIR/epoch-F` (F the cut's frontier), holding one file per
//! worker (`worker-W`: its sources' places and clocks, its engines, its
//! stash, its counters) and, once every worker's is written, `complete`
//! (JSON: the worker count, the chunk size, the command, the lengths of
//! `--output` and `--late` and the CRC-32 of their first bytes). Every file carries a magic, the format
//! version and a CRC-32, checked whole on resuming (a flipped bit in
//! `complete`'s output length gave a resume that exited 0 with truncated
//! or duplicated output: issue 26). Each file is written to a temporary file,
//! synced, renamed, and the folder synced, as `checkpoint.rs` does for one
//! run; only a folder with its `complete` counts, and older folders are
//! deleted once a newer one is complete. See `docs/checkpoints.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use cepheid_runtime::checkpoint::{sync_dir, Command};

/// The marker of a whole cut.
pub const COMPLETE: &str = "complete";
/// The format version of the folder: 2 since a source's state holds the
/// place of live input (`SourceState::place`), 3 since a worker's file
/// holds the length of its own output (`WorkerFile::own`), 4 since keys
/// are dealt by key group, engines saved by range of key groups and the
/// lines read over every worker kept (a cut of an older version routed
/// keys otherwise and is refused), 5 since every file has a magic, the
/// version and a CRC-32 (`complete` had no checksum), 6 since the
/// outputs' first bytes are recorded with their lengths (`Marker::
/// output_head`, `WorkerFile::own_head`: an output shorter or with other
/// first bytes on resuming was rotated since, `rotate::rotated_since`).
/// 7 since `complete` holds the checkpoint's number and what a sink
/// keeps (`Marker::number`, `Marker::sink`: a transactional sink commits
/// each cut under its number, and says on resuming which one it
/// committed last). A cut of version 5 is read too (no first bytes: only
/// a shorter output is taken as rotated, as the single run does with a
/// checkpoint of before), and of version 6 (its number is 0, as the
/// single run's checkpoints of before).
const VERSION: u32 = 7;
/// The oldest format version read (see [`VERSION`]).
const OLDEST: u32 = 5;

/// The first line of `complete`, before its version.
const MARKER_MAGIC: &str = "cepheid cut marker, version ";
/// The first bytes of a worker's file, before its version (`u32`, little
/// endian).
const WORKER_MAGIC: &[u8; 8] = b"CEPHWRKR";

/// What `complete` says.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Marker {
    /// The format version.
    pub version: u32,
    /// The cut's frontier.
    pub epoch: i64,
    /// Processes (`--processes`; 1 without it, and in a marker written
    /// before there was this field).
    #[serde(default = "one")]
    pub processes: usize,
    /// Worker threads (per process).
    pub workers: usize,
    /// `--chunk-bytes` (the workers' places are chunk numbers).
    pub chunk_bytes: u64,
    /// The command.
    pub command: Option<Command>,
    /// Each worker wrote its records to its own `FILE.W`
    /// (`--output-per-worker`; their lengths are in the workers' files).
    #[serde(default)]
    pub output_per_worker: bool,
    /// Bytes of `--output` (0 with `--output-per-worker`) and `--late`
    /// written before the cut.
    pub output: u64,
    /// See `output`.
    pub late: u64,
    /// The CRC-32 of the first bytes (up to 4 KiB) of `--output`
    /// (`rotate::head_crc`; `None` with `--output-per-worker`, or in a cut
    /// of version 5).
    #[serde(default)]
    pub output_head: Option<u32>,
    /// The same for `--late`.
    #[serde(default)]
    pub late_head: Option<u32>,
    /// The checkpoint's number, counted from 1 over the runs that share
    /// the folder (0 in a cut of version 6 or before): a transactional
    /// sink commits the cut under it.
    #[serde(default)]
    pub number: u64,
    /// What the run's sink keeps in the cut (`SinkState::data`; a file
    /// output keeps its lengths above instead).
    #[serde(default)]
    pub sink: Vec<u8>,
}

fn one() -> usize {
    1
}

impl Marker {
    /// A marker of this format version.
    pub fn new(
        epoch: i64,
        (processes, workers): (usize, usize),
        chunk_bytes: u64,
        command: Option<Command>,
    ) -> Marker {
        Marker {
            version: VERSION,
            epoch,
            processes,
            workers,
            chunk_bytes,
            command,
            output_per_worker: false,
            output: 0,
            late: 0,
            output_head: None,
            late_head: None,
            number: 0,
            sink: Vec::new(),
        }
    }
}

/// A worker's file: the library's state and the command's counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerFile {
    /// `WorkerCut`'s bytes.
    pub state: Vec<u8>,
    /// Keys over `--max-runs-per-key` already said (pattern, key as JSON,
    /// its key group: a resume on another worker count deals them to the
    /// worker of their key).
    pub drops: Vec<(usize, String, u32)>,
    /// The lines of the input read before the run started (over every
    /// worker; the same in every worker's file). The lines read at the
    /// cut are these and, for each worker, its own chunks up to its
    /// source's place.
    pub read: Read,
    /// With `--output-per-worker`: the bytes of the worker's own `FILE.W`
    /// written before the cut (every record it made below it).
    pub own: Option<u64>,
    /// Did more keys go over `--max-runs-per-key` than `drops` holds?
    pub drops_overflow: bool,
    /// With `--output-per-worker`: the CRC-32 of the first bytes of its
    /// `FILE.W` (`None` in a cut of version 5).
    pub own_head: Option<u32>,
}

/// A worker's file of format version 5 (before `own_head`).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct WorkerFileV5 {
    state: Vec<u8>,
    drops: Vec<(usize, String, u32)>,
    read: Read,
    own: Option<u64>,
    drops_overflow: bool,
}

impl From<WorkerFileV5> for WorkerFile {
    fn from(old: WorkerFileV5) -> WorkerFile {
        WorkerFile {
            state: old.state,
            drops: old.drops,
            read: old.read,
            own: old.own,
            drops_overflow: old.drops_overflow,
            own_head: None,
        }
    }
}

/// Lines of the input file read, over every worker: every chunk below
/// `below`, and of the chunks at or above it, each one's lines up to a
/// number (`u64::MAX`: all of them; lines are numbered from 1 in their
/// chunk, as `FileChunk::offset` has them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    pub below: u64,
    pub chunks: BTreeMap<u64, u64>,
}

impl Read {
    /// The lines of chunk `chunk` read: those up to this number.
    pub fn upto(&self, chunk: u64) -> u64 {
        if chunk < self.below {
            return u64::MAX;
        }
        self.chunks.get(&chunk).copied().unwrap_or(0)
    }

    /// The lines read at a cut of a run of `places.len()` workers (over
    /// every process) that started with `self` read: worker `w` reads its
    /// chunks (those whose number is `w` modulo the worker count) in
    /// order, skipping the lines read before, and its source's place at
    /// the cut is `places[w]` (`FileChunk::offset` of the last line it
    /// read; 0 when it read none).
    pub fn after(&self, places: &[u64]) -> Read {
        let workers = places.len().max(1) as u64;
        let upto = |chunk: u64| {
            let before = self.upto(chunk);
            let place = places.get((chunk % workers) as usize).copied().unwrap_or(0);
            let (at, line) = (place >> 32, place & 0xffff_ffff);
            if place == 0 || chunk > at {
                before
            } else if chunk < at {
                u64::MAX
            } else {
                before.max(line)
            }
        };
        let mut below = self.below;
        while upto(below) == u64::MAX {
            below += 1;
        }
        let top = (places.iter().map(|p| p >> 32))
            .chain(self.chunks.keys().copied())
            .max()
            .unwrap_or(0);
        let chunks = (below..=top)
            .map(|chunk| (chunk, upto(chunk)))
            .filter(|&(_, lines)| lines > 0)
            .collect();
        Read { below, chunks }
    }
}

/// A cut to resume from.
pub struct Resume {
    pub marker: Marker,
    pub workers: Vec<WorkerFile>,
}

/// The folder of the cut at `epoch`.
pub fn epoch_dir(dir: &Path, epoch: i64) -> PathBuf {
    dir.join(format!("epoch-{epoch}"))
}

/// The cuts in `dir`, by epoch, each with whether it is complete.
fn epochs(dir: &Path) -> io::Result<Vec<(i64, bool)>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(epoch) = name
            .to_str()
            .and_then(|n| n.strip_prefix("epoch-"))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        found.push((epoch, entry.path().join(COMPLETE).exists()));
    }
    found.sort_unstable();
    Ok(found)
}

/// What is wrong with a file of a cut.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// A worker's file is corrupt: how.
    Corrupt(String),
    /// The marker (`complete`) is corrupt: how.
    Marker(String),
    /// The file is of another format version.
    Version,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Corrupt(what) => write!(f, "corrupt ({what})"),
            Damage::Marker(what) => write!(f, "corrupt marker ({what})"),
            Damage::Version => f.write_str("a checkpoint of another format version"),
        }
    }
}

/// Why the last complete cut of a checkpoint folder cannot be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum CutError {
    /// A file or folder cannot be read.
    Read {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is damaged (the marker's folder, or a worker's file).
    Damaged {
        /// Its path (the cut's folder for its marker).
        path: PathBuf,
        /// What is wrong.
        damage: Damage,
    },
    /// The marker of a cut's folder names another cut.
    OtherCut {
        /// The folder.
        folder: PathBuf,
    },
}

impl fmt::Display for CutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CutError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            CutError::Damaged { path, damage } => write!(f, "{}: {damage}", path.display()),
            CutError::OtherCut { folder } => write!(
                f,
                "{}: corrupt (its marker names another cut)",
                folder.display()
            ),
        }
    }
}

impl std::error::Error for CutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CutError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The last complete cut in `dir`, read whole; `Ok(None)` when there is
/// none. `Err` says why it cannot be used.
pub fn read(dir: &Path) -> Result<Option<Resume>, CutError> {
    match complete_epochs(dir)?.first() {
        Some(&epoch) => read_at(dir, epoch).map(Some),
        None => Ok(None),
    }
}

/// The complete cuts in `dir`, newest first: one, or with a
/// transactional sink two while the newest one's commit is not known to
/// have happened (the older is deleted only after it).
pub fn complete_epochs(dir: &Path) -> Result<Vec<i64>, CutError> {
    let all = epochs(dir).map_err(|source| CutError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(all
        .iter()
        .rev()
        .filter(|(_, c)| *c)
        .map(|(e, _)| *e)
        .collect())
}

/// The complete cut at `epoch` in `dir`, read whole.
pub fn read_at(dir: &Path, epoch: i64) -> Result<Resume, CutError> {
    let reading = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CutError::Read { path, source }
    };
    let folder = epoch_dir(dir, epoch);
    let text = fs::read(folder.join(COMPLETE)).map_err(reading(&folder.join(COMPLETE)))?;
    let marker = decode_marker(&text).map_err(|damage| CutError::Damaged {
        path: folder.clone(),
        damage,
    })?;
    if marker.epoch != epoch {
        return Err(CutError::OtherCut { folder });
    }
    let all = marker.processes.saturating_mul(marker.workers);
    let mut workers = Vec::with_capacity(all.min(1 << 16));
    for index in 0..all {
        let path = folder.join(format!("worker-{index}"));
        let bytes = fs::read(&path).map_err(reading(&path))?;
        let file = decode(&bytes).map_err(|damage| CutError::Damaged { path, damage })?;
        workers.push(file);
    }
    Ok(Resume { marker, workers })
}

/// Deletes the cuts after `epoch` (every cut with `None`), complete or
/// not: a transactional sink committed none of them (`Sink::recover`
/// chose the cut at `epoch`, or none).
pub fn discard_after(dir: &Path, epoch: Option<i64>) -> io::Result<()> {
    for (e, _) in epochs(dir)? {
        if epoch.is_none_or(|keep| e > keep) {
            fs::remove_dir_all(epoch_dir(dir, e))?;
        }
    }
    sync_dir(dir)
}

/// A worker file's bytes: [`WORKER_MAGIC`], the format version (`u32`,
/// little endian), postcard, then a CRC-32 of every byte before it.
pub fn encode(file: &WorkerFile) -> Vec<u8> {
    let mut bytes = WORKER_MAGIC.to_vec();
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&postcard::to_allocvec(file).unwrap_or_default());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Result<WorkerFile, Damage> {
    let corrupt = |what: &str| Damage::Corrupt(what.to_string());
    let (body, crc) = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.split_at_checked(at))
        .ok_or_else(|| corrupt("too short"))?;
    let rest = body
        .strip_prefix(WORKER_MAGIC)
        .ok_or_else(|| corrupt("not a worker's checkpoint file"))?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(corrupt("its checksum does not match"));
    }
    let (version, state) = rest
        .split_at_checked(4)
        .ok_or_else(|| corrupt("too short"))?;
    let decoded = match u32::from_le_bytes(version.try_into().map_err(|_| corrupt("too short"))?) {
        // (a worker's file is the same in version 6)
        6 | VERSION => postcard::from_bytes(state),
        OLDEST => postcard::from_bytes::<WorkerFileV5>(state).map(WorkerFile::from),
        _ => return Err(Damage::Version),
    };
    decoded.map_err(|e| corrupt(&e.to_string()))
}

/// `complete`'s bytes: a first line `cepheid cut marker, version N`, the
/// marker as JSON (readable), and a last line `crc32 XXXXXXXX`, the CRC-32
/// of every byte before it.
pub fn encode_marker(marker: &Marker) -> io::Result<Vec<u8>> {
    let mut bytes = format!("{MARKER_MAGIC}{VERSION}\n").into_bytes();
    bytes.extend(serde_json::to_vec_pretty(marker).map_err(io::Error::other)?);
    bytes.push(b'\n');
    let crc = crc32fast::hash(&bytes);
    bytes.extend(format!("crc32 {crc:08x}\n").into_bytes());
    Ok(bytes)
}

/// The marker of `complete`'s bytes, every part checked.
fn decode_marker(bytes: &[u8]) -> Result<Marker, Damage> {
    let corrupt = |what: &str| Damage::Marker(what.to_string());
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not text"))?;
    let (first, _) = text
        .split_once('\n')
        .ok_or_else(|| corrupt("not a checkpoint marker"))?;
    let version = first
        .strip_prefix(MARKER_MAGIC)
        .ok_or_else(|| corrupt("not a checkpoint marker"))?;
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| corrupt("cut short"))?;
    let (body, last) = body.rsplit_once('\n').ok_or_else(|| corrupt("cut short"))?;
    let crc = last
        .strip_prefix("crc32 ")
        // (lowercase only: `A` for `a` is a flipped bit)
        .filter(|hex| hex.len() == 8 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| corrupt("no checksum"))?;
    let covered = &bytes[..body.len() + 1];
    if crc32fast::hash(covered) != crc {
        return Err(corrupt("its checksum does not match"));
    }
    let version = (OLDEST..=VERSION)
        .find(|v| v.to_string() == version)
        .ok_or(Damage::Version)?;
    let marker: Marker =
        serde_json::from_str(&body[first.len() + 1..]).map_err(|e| corrupt(&e.to_string()))?;
    if marker.version != version {
        return Err(Damage::Version);
    }
    Ok(marker)
}

/// Writes `bytes` to `folder/name` safely: a temporary file, synced,
/// renamed, the folder synced.
pub fn write(folder: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(folder)?;
    let temp = folder.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, folder.join(name))?;
    sync_dir(folder)
}

/// The bytes of a cut's files in `folder` (every worker's and
/// `complete`; temporary files left out): its size, as a checkpoint's is
/// its file's. Read once per cut, from the files' metadata.
pub fn bytes(folder: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(folder) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Deletes the unfinished cuts after the last complete one (all of them
/// when there is none): files a run that was stopped wrote for a cut it
/// did not finish. A cut of the same epoch taken again must not find them
/// (with several processes, worker 0 counts the files to know that every
/// worker took it). Called by process 0 before the workers start, so that
/// no worker of this run has written yet.
pub fn clear_unfinished(dir: &Path) -> io::Result<()> {
    let all = epochs(dir)?;
    let last = all
        .iter()
        .rev()
        .find(|(_, complete)| *complete)
        .map(|c| c.0);
    for (epoch, _) in all.into_iter().filter(|(e, _)| last.is_none_or(|l| *e > l)) {
        fs::remove_dir_all(epoch_dir(dir, epoch))?;
    }
    sync_dir(dir)
}

/// Deletes the unfinished cuts below `epoch` (a worker wrote its file for
/// `epoch`): a cut is asked for only once the one before it is complete or
/// given up, so those below will never be (issue 26: with a folder per
/// process, the cuts of the processes but 0 were never complete there and
/// piled up, 29 MB in 4 s at 100 ms; files written late for a cut given
/// up did too). Errors are ignored (the workers of a process race here).
pub fn prune_unfinished(dir: &Path, epoch: i64) {
    if let Ok(all) = epochs(dir) {
        for (old, _) in all
            .into_iter()
            .filter(|(e, complete)| *e < epoch && !complete)
        {
            let _ = fs::remove_dir_all(epoch_dir(dir, old));
        }
    }
}

/// Deletes the cuts before `epoch` (and unfinished ones below it).
pub fn prune(dir: &Path, epoch: i64) {
    if let Ok(all) = epochs(dir) {
        for (old, _) in all.into_iter().filter(|(e, _)| *e < epoch) {
            let _ = fs::remove_dir_all(epoch_dir(dir, old));
        }
    }
    let _ = sync_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_file_reads_back_and_damage_is_seen() {
        let file = WorkerFile {
            state: vec![1, 2, 3],
            drops: vec![(0, "[\"u\"]".into(), 7)],
            read: Read::default(),
            own: Some(7),
            drops_overflow: false,
            own_head: Some(0xdead_beef),
        };
        let bytes = encode(&file);
        assert_eq!(
            decode(&bytes).map(|f| (f.drops.len(), f.own_head)),
            Ok((1, Some(0xdead_beef)))
        );
        // Every bit of it flipped, every truncation: refused.
        for at in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[at / 8] ^= 1 << (at % 8);
            assert!(decode(&flipped).is_err(), "bit {at}");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "{len} bytes");
        }
    }

    #[test]
    fn a_marker_reads_back_and_every_flipped_bit_is_seen() {
        let mut marker = Marker::new(77, (2, 3), 1 << 20, None);
        marker.output = 167_616;
        marker.late = 42;
        marker.number = 9;
        marker.sink = vec![1, 2, 3];
        let bytes = encode_marker(&marker).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("cepheid cut marker, version 7\n{"),
            "{text}"
        );
        assert!(text.contains("\"output\": 167616"), "{text}");
        let read = decode_marker(&bytes).unwrap();
        assert_eq!((read.epoch, read.output, read.late), (77, 167_616, 42));
        assert_eq!((read.number, read.sink), (9, vec![1, 2, 3]));
        // A marker of version 6 (no number, no sink's state) reads as
        // number 0.
        let mut v6: serde_json::Value = serde_json::to_value(&marker).unwrap();
        v6["version"] = 6.into();
        let object = v6.as_object_mut().unwrap();
        object.remove("number");
        object.remove("sink");
        let mut old = b"cepheid cut marker, version 6\n".to_vec();
        old.extend(serde_json::to_vec_pretty(&v6).unwrap());
        old.push(b'\n');
        let crc = crc32fast::hash(&old);
        old.extend(format!("crc32 {crc:08x}\n").into_bytes());
        let read = decode_marker(&old).unwrap();
        assert_eq!((read.version, read.number, read.sink.len()), (6, 0, 0));
        assert_eq!(read.output, 167_616);
        for at in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[at / 8] ^= 1 << (at % 8);
            assert!(decode_marker(&flipped).is_err(), "bit {at}");
        }
        for len in 0..bytes.len() {
            assert!(decode_marker(&bytes[..len]).is_err(), "{len} bytes");
        }
        // Written by an older version (no magic, no checksum): refused.
        let old = serde_json::to_vec_pretty(&marker).unwrap();
        assert!(decode_marker(&old).is_err());
    }

    /// A cut of format version 5 (before the outputs' first bytes were
    /// recorded) is read, without them; other versions are refused.
    #[test]
    fn a_cut_of_version_5_is_read_without_the_first_bytes() {
        let old = WorkerFileV5 {
            state: vec![4, 5],
            drops: Vec::new(),
            read: Read::default(),
            own: Some(9),
            drops_overflow: true,
        };
        let body = postcard::to_allocvec(&old).unwrap();
        let framed = |version: u32| {
            let mut bytes = WORKER_MAGIC.to_vec();
            bytes.extend_from_slice(&version.to_le_bytes());
            bytes.extend_from_slice(&body);
            let crc = crc32fast::hash(&bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
            bytes
        };
        let read = decode(&framed(5)).unwrap();
        assert_eq!(
            (read.state, read.own, read.own_head, read.drops_overflow),
            (vec![4, 5], Some(9), None, true)
        );
        assert_eq!(decode(&framed(4)).err(), Some(Damage::Version));
        // Its marker: version 5 in both places, no first bytes.
        let mut json: serde_json::Value =
            serde_json::to_value(Marker::new(12, (1, 2), 1 << 20, None)).unwrap();
        json["version"] = 5.into();
        json["output"] = 300.into();
        let fields = json.as_object_mut().unwrap();
        fields.remove("output_head");
        fields.remove("late_head");
        let marker_of = |version: u32, json: &serde_json::Value| {
            let mut bytes = format!("{MARKER_MAGIC}{version}\n").into_bytes();
            bytes.extend(serde_json::to_vec_pretty(json).unwrap());
            bytes.push(b'\n');
            let crc = crc32fast::hash(&bytes);
            bytes.extend(format!("crc32 {crc:08x}\n").into_bytes());
            bytes
        };
        let read = decode_marker(&marker_of(5, &json)).unwrap();
        assert_eq!(
            (read.version, read.output, read.output_head, read.late_head),
            (5, 300, None, None)
        );
        // The first line and the JSON disagree: refused.
        assert_eq!(
            decode_marker(&marker_of(6, &json)).err(),
            Some(Damage::Version)
        );
        json["version"] = 4.into();
        assert_eq!(
            decode_marker(&marker_of(4, &json)).err(),
            Some(Damage::Version)
        );
    }

    #[test]
    fn the_lines_read_add_up_over_the_workers_and_the_runs() {
        let at = |chunk: u64, line: u64| chunk << 32 | line;
        // Two workers: 0 read chunks 0 and 2 and chunk 4 to line 3; 1
        // read chunk 1 and chunk 3 to line 9.
        let first = Read::default().after(&[at(4, 3), at(3, 9)]);
        assert_eq!(first.below, 3);
        assert_eq!(first.chunks, BTreeMap::from([(3, 9), (4, 3)]));
        assert_eq!(
            (first.upto(2), first.upto(3), first.upto(5)),
            (u64::MAX, 9, 0)
        );
        // Then three workers: 0 read nothing (chunk 3 was read to line
        // 9: it went on to line 12), 1 read chunk 4 on to line 5 and
        // nothing else, 2 read nothing.
        let second = first.after(&[at(3, 12), at(4, 5), 0]);
        assert_eq!(second.below, 3);
        assert_eq!(second.chunks, BTreeMap::from([(3, 12), (4, 5)]));
        // Worker 0 moved on to chunk 6: chunk 3 is whole.
        let third = second.after(&[at(6, 1), 0, 0]);
        assert_eq!(third.below, 4);
        assert_eq!(third.chunks, BTreeMap::from([(4, 5), (6, 1)]));
        // Nothing read: the same.
        assert_eq!(Read::default().after(&[0, 0]), Read::default());
    }
}
