//! Checkpoints of the formats before this one, read once (a run resumed
//! from one writes its next checkpoint in this format, and deletes them
//! once that one is committed: `docs/checkpoints.md`, "Upgrading"):
//!
//! - the single run's file `DIR/checkpoint` (and `checkpoint.prev`),
//!   format version 1: `CEPHCKPT`, the version, the metadata's length and
//!   JSON, the engine's snapshot, a CRC-32;
//! - the cuts of workers `DIR/epoch-F`, format versions 5 to 7: `complete`
//!   (a first line `cepheid cut marker, version N`, JSON, a last line
//!   `crc32 xxxxxxxx`) and one `worker-W` per worker (`CEPHWRKR`, the
//!   version, postcard, a CRC-32).
//!
//! Each becomes the [`Stored`] checkpoint of this format it describes: the
//! single run's, one piece with one engine of every pattern and its place
//! in the input; a cut, one piece per worker holding the worker's state as
//! it was saved ([`Part::Legacy`], which the dataflow reads).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::store::{unreadable, OnePosition};
use super::{Command, Counters, Marker, Part, Piece, Stored};
use crate::source::{FilePosition, Position};
use crate::{Error, SinkState, Unusable};

/// The single run's file.
const FILE: &str = "checkpoint";
/// The one before it, kept until a sink committed the newest.
const PREV: &str = "checkpoint.prev";
/// The single run's file being written.
const TEMP: &str = "checkpoint.tmp";
/// The single run's magic and version.
const MAGIC: &[u8; 8] = b"CEPHCKPT";
const VERSION: u32 = 1;
/// A cut's marker, and the first line's words.
const COMPLETE: &str = "complete";
const MARKER_MAGIC: &str = "cepheid cut marker, version ";
const WORKER_MAGIC: &[u8; 8] = b"CEPHWRKR";
/// The cut versions read: 5 (no first bytes), 6 (no number), 7.
const CUTS: std::ops::RangeInclusive<u32> = 5..=7;

/// The single run's metadata (version 1).
#[derive(Deserialize)]
struct Meta {
    command: Command,
    input: FilePosition,
    output_len: Option<u64>,
    late_len: Option<u64>,
    #[serde(default)]
    output_head: Option<u32>,
    #[serde(default)]
    late_head: Option<u32>,
    counters: Counters,
    #[serde(default)]
    number: u64,
    #[serde(default)]
    source: Option<Position>,
    #[serde(default)]
    sink_data: Vec<u8>,
    #[serde(default)]
    split_watermarks: Option<Vec<Option<i64>>>,
}

/// A cut's `complete` (versions 5 to 7).
#[derive(Deserialize)]
struct CutMarker {
    version: u32,
    epoch: i64,
    #[serde(default = "one")]
    processes: usize,
    workers: usize,
    chunk_bytes: u64,
    command: Option<Command>,
    #[serde(default)]
    output_per_worker: bool,
    output: u64,
    late: u64,
    #[serde(default)]
    output_head: Option<u32>,
    #[serde(default)]
    late_head: Option<u32>,
    #[serde(default)]
    number: u64,
    #[serde(default)]
    sink: Vec<u8>,
}

fn one() -> usize {
    1
}

/// A worker's file of a cut of version 5; versions 6 and 7 add the CRC-32
/// of the first bytes of its own output (`own_head`) after it.
#[derive(Deserialize)]
struct WorkerFile {
    state: Vec<u8>,
    drops: Vec<(usize, String, u32)>,
    read: (u64, BTreeMap<u64, u64>),
    own: Option<u64>,
    drops_overflow: bool,
}

/// The checkpoints of older formats in `dir`, newest first: its complete
/// cuts of workers (a cut is newer than a single run's file beside it:
/// the workers went on from that), else the single run's file and the
/// one before it.
pub(super) fn kept(dir: &Path) -> Result<Vec<Stored>, Error> {
    let cuts = epochs(dir).map_err(|e| unreadable(dir, dir, Ok(e)))?;
    if !cuts.is_empty() {
        return cuts.into_iter().rev().map(|e| cut(dir, e)).collect();
    }
    let mut kept = Vec::new();
    for name in [FILE, PREV] {
        let path = dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => kept.push(single(dir, path, &bytes)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(unreadable(dir, &path, Ok(e))),
        }
    }
    Ok(kept)
}

/// Deletes the checkpoints of older formats in `dir`.
pub(super) fn remove(dir: &Path) -> io::Result<()> {
    for name in [FILE, PREV, TEMP] {
        match fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    for (epoch, _) in all_epochs(dir)? {
        super::store::remove(dir, &epoch_dir(dir, epoch))?;
    }
    Ok(())
}

/// A sink committed checkpoint `keep` (`None`: none of them): the
/// checkpoints of older formats after it go. The single run's newest file
/// is replaced by the one before it (kept until the next checkpoint is
/// committed, so that a second crash still finds it).
pub(super) fn discard_after(dir: &Path, keep: Option<u64>) -> io::Result<()> {
    let Some(keep) = keep else {
        return remove(dir);
    };
    let number = |path: &Path| -> Option<u64> {
        let bytes = fs::read(path).ok()?;
        Some(decode(&bytes).ok()?.0.number)
    };
    let (file, prev) = (dir.join(FILE), dir.join(PREV));
    if prev.exists() && number(&file).is_some_and(|n| n != keep) {
        fs::rename(&prev, &file)?;
    }
    for (epoch, _) in all_epochs(dir)? {
        let folder = epoch_dir(dir, epoch);
        let marker = fs::read(folder.join(COMPLETE)).ok();
        let newer = marker
            .and_then(|bytes| decode_marker(&bytes).ok())
            .is_some_and(|m| m.number > keep);
        if newer {
            super::store::remove(dir, &folder)?;
        }
    }
    Ok(())
}

/// The single run's file at `path`.
fn single(dir: &Path, path: PathBuf, bytes: &[u8]) -> Result<Stored, Error> {
    let (meta, snapshot) = decode(bytes).map_err(|why| unreadable(dir, &path, Err(why)))?;
    let state = SinkState {
        output_len: meta.output_len,
        output_head: meta.output_head,
        late_len: meta.late_len,
        late_head: meta.late_head,
        shadow_len: None,
        shadow_head: None,
        audit_len: None,
        audit_head: None,
        decisions_len: None,
        decisions_head: None,
        data: meta.sink_data,
    };
    let marker = Marker::new(meta.number)
        .command(Some(meta.command))
        .outputs(&state)
        .counters(meta.counters);
    let mut piece = Piece::of_one_engine(snapshot.to_vec(), meta.input);
    piece.set_position(OnePosition {
        input: meta.input,
        source: meta.source,
        split_watermarks: meta.split_watermarks,
        ranges: Vec::new(),
    });
    Ok(Stored::new(path, marker, vec![piece]).older("the single run's file of format version 1"))
}

/// The single run's file: its metadata and the engine's snapshot.
fn decode(bytes: &[u8]) -> Result<(Meta, &[u8]), Unusable> {
    const PREFIX: usize = 8 + 4 + 8;
    if bytes.len() < PREFIX + 4 || &bytes[..8] != MAGIC {
        return Err(Unusable::NotACheckpoint);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(Unusable::Version {
            found: version,
            reads: super::file::VERSION,
        });
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(Unusable::Checksum);
    }
    let meta_len = u64::from_le_bytes(bytes[12..PREFIX].try_into().expect("8 bytes"));
    let meta_end = usize::try_from(meta_len)
        .ok()
        .and_then(|len| PREFIX.checked_add(len))
        .filter(|&end| end <= body.len())
        .ok_or(Unusable::MetaLength)?;
    let meta = serde_json::from_slice(&body[PREFIX..meta_end]).map_err(Unusable::Meta)?;
    Ok((meta, &body[meta_end..]))
}

fn epoch_dir(dir: &Path, epoch: i64) -> PathBuf {
    dir.join(format!("epoch-{epoch}"))
}

/// The cuts' folders in `dir`, by epoch, each with whether it is
/// complete.
fn all_epochs(dir: &Path) -> io::Result<Vec<(i64, bool)>> {
    let epochs = super::store::numbered(dir, "epoch-")?.into_iter();
    Ok(epochs
        .map(|e| (e, epoch_dir(dir, e).join(COMPLETE).exists()))
        .collect())
}

/// The complete cuts' epochs, oldest first.
fn epochs(dir: &Path) -> io::Result<Vec<i64>> {
    Ok(all_epochs(dir)?
        .into_iter()
        .filter(|(_, complete)| *complete)
        .map(|(e, _)| e)
        .collect())
}

/// The cut at `epoch`, read whole.
fn cut(dir: &Path, epoch: i64) -> Result<Stored, Error> {
    let folder = epoch_dir(dir, epoch);
    let path = folder.join(COMPLETE);
    let bytes = fs::read(&path).map_err(|e| unreadable(dir, &path, Ok(e)))?;
    let old = decode_marker(&bytes).map_err(|why| unreadable(dir, &path, Err(why)))?;
    if old.epoch != epoch {
        let why = Unusable::Malformed("its marker names another cut".into());
        return Err(unreadable(dir, &path, Err(why)));
    }
    let state = SinkState {
        output_len: Some(old.output),
        output_head: old.output_head,
        late_len: Some(old.late),
        late_head: old.late_head,
        shadow_len: None,
        shadow_head: None,
        audit_len: None,
        audit_head: None,
        decisions_len: None,
        decisions_head: None,
        data: old.sink,
    };
    let marker = Marker::new(old.number)
        .on_workers(
            (old.processes, old.workers),
            old.chunk_bytes,
            old.output_per_worker,
        )
        .command(old.command)
        .outputs(&state);
    let mut pieces = Vec::new();
    for worker in 0..marker.pieces() {
        let path = folder.join(format!("worker-{worker}"));
        let bytes = fs::read(&path).map_err(|e| unreadable(dir, &path, Ok(e)))?;
        let piece = worker_piece(&bytes).map_err(|why| unreadable(dir, &path, Err(why)))?;
        pieces.push(piece);
    }
    let what = match old.version {
        5 => "a cut of workers of format version 5",
        6 => "a cut of workers of format version 6",
        _ => "a cut of workers of format version 7",
    };
    Ok(Stored::new(folder, marker, pieces).older(what))
}

/// A worker's file, as a piece holding its state as it was saved.
fn worker_piece(bytes: &[u8]) -> Result<Piece, Unusable> {
    let corrupt = |what: &str| Unusable::Malformed(what.to_string());
    let (body, crc) = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.split_at_checked(at))
        .ok_or(Unusable::NotACheckpoint)?;
    let rest = body
        .strip_prefix(WORKER_MAGIC)
        .ok_or(Unusable::NotACheckpoint)?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(Unusable::Checksum);
    }
    let (version, state) = rest.split_at_checked(4).ok_or(Unusable::NotACheckpoint)?;
    let version = u32::from_le_bytes(version.try_into().map_err(|_| corrupt("cut short"))?);
    let (file, own_head) = match version {
        6 | 7 => postcard::from_bytes::<(WorkerFile, Option<u32>)>(state),
        5 => postcard::from_bytes::<WorkerFile>(state).map(|file| (file, None)),
        found => {
            return Err(Unusable::Version {
                found,
                reads: super::file::VERSION,
            })
        }
    }
    .map_err(|e| corrupt(&e.to_string()))?;
    let mut piece = Piece::new();
    piece.set(Part::Legacy, file.state);
    piece.set(Part::Keys, encode(&(file.drops, file.drops_overflow)));
    piece.set(Part::Read, encode(&file.read));
    piece.set(Part::Own, encode(&(file.own, own_head)));
    Ok(piece)
}

/// postcard of a part of a piece that a cut of before kept in its worker
/// files (the dataflow encodes them the same way).
fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("plain data")
}

/// A cut's `complete`, every part checked.
fn decode_marker(bytes: &[u8]) -> Result<CutMarker, Unusable> {
    let corrupt = |what: &str| Unusable::Malformed(format!("its marker: {what}"));
    let text = std::str::from_utf8(bytes).map_err(|_| Unusable::NotACheckpoint)?;
    let (first, _) = text.split_once('\n').ok_or(Unusable::NotACheckpoint)?;
    let version = first
        .strip_prefix(MARKER_MAGIC)
        .ok_or(Unusable::NotACheckpoint)?;
    let body = text.strip_suffix('\n').ok_or(Unusable::Checksum)?;
    let (body, last) = body.rsplit_once('\n').ok_or(Unusable::Checksum)?;
    let crc = last
        .strip_prefix("crc32 ")
        // (lowercase only: `A` for `a` is a flipped bit)
        .filter(|hex| hex.len() == 8 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or(Unusable::Checksum)?;
    if crc32fast::hash(&bytes[..body.len() + 1]) != crc {
        return Err(Unusable::Checksum);
    }
    let version = CUTS
        .clone()
        .find(|v| v.to_string() == version)
        .ok_or_else(|| Unusable::Version {
            found: version.parse().unwrap_or(0),
            reads: super::file::VERSION,
        })?;
    let marker: CutMarker =
        serde_json::from_str(&body[first.len() + 1..]).map_err(|e| corrupt(&e.to_string()))?;
    if marker.version != version {
        return Err(corrupt("its versions differ"));
    }
    Ok(marker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::store::tests::every_damage_refused;

    /// A cut's marker of version `version` with `json`'s fields.
    fn marker_of(version: u32, json: &serde_json::Value) -> Vec<u8> {
        let mut bytes = format!("{MARKER_MAGIC}{version}\n").into_bytes();
        bytes.extend(serde_json::to_vec_pretty(json).unwrap());
        bytes.push(b'\n');
        let crc = crc32fast::hash(&bytes);
        bytes.extend(format!("crc32 {crc:08x}\n").into_bytes());
        bytes
    }

    #[test]
    fn the_markers_of_versions_5_to_7_read_and_every_flipped_bit_is_seen() {
        let json = serde_json::json!({
            "version": 7, "epoch": 77, "processes": 2, "workers": 3,
            "chunk_bytes": 1048576, "command": null, "output_per_worker": false,
            "output": 167616, "late": 42, "output_head": 5, "late_head": null,
            "number": 9, "sink": [1, 2, 3]
        });
        let bytes = marker_of(7, &json);
        let read = decode_marker(&bytes).unwrap();
        assert_eq!((read.epoch, read.output, read.number), (77, 167_616, 9));
        every_damage_refused(&bytes, decode_marker);
        let mut v5 = json.clone();
        v5["version"] = 5.into();
        let fields = v5.as_object_mut().unwrap();
        for field in ["output_head", "late_head", "number", "sink"] {
            fields.remove(field);
        }
        let read = decode_marker(&marker_of(5, &v5)).unwrap();
        assert_eq!((read.number, read.output_head), (0, None));
        // The first line and the JSON disagree; another version: refused.
        assert!(decode_marker(&marker_of(6, &v5)).is_err());
        v5["version"] = 4.into();
        assert!(decode_marker(&marker_of(4, &v5)).is_err());
    }

    #[test]
    fn a_worker_file_of_version_5_is_read_without_its_first_bytes() {
        #[derive(serde::Serialize)]
        struct V5 {
            state: Vec<u8>,
            drops: Vec<(usize, String, u32)>,
            read: (u64, BTreeMap<u64, u64>),
            own: Option<u64>,
            drops_overflow: bool,
        }
        let body = postcard::to_allocvec(&V5 {
            state: vec![4, 5],
            drops: Vec::new(),
            read: (3, BTreeMap::from([(4, 9)])),
            own: Some(9),
            drops_overflow: true,
        })
        .unwrap();
        let framed = |version: u32| {
            let mut bytes = WORKER_MAGIC.to_vec();
            bytes.extend_from_slice(&version.to_le_bytes());
            bytes.extend_from_slice(&body);
            let crc = crc32fast::hash(&bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
            bytes
        };
        let piece = worker_piece(&framed(5)).unwrap();
        assert_eq!(piece.get(Part::Legacy), Some(&[4, 5][..]));
        let own: (Option<u64>, Option<u32>) =
            postcard::from_bytes(piece.get(Part::Own).unwrap()).unwrap();
        assert_eq!(own, (Some(9), None));
        assert!(worker_piece(&framed(4)).is_err());
        let bytes = framed(5);
        every_damage_refused(&bytes, worker_piece);
    }
}
