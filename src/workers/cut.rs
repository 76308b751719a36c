//! Checkpoints of `cepheid run --workers N --checkpoint DIR`: one folder
//! per cut, `DIR/epoch-F` (F the cut's frontier), holding one file per
//! worker (`worker-W`: its sources' places and clocks, its engines, its
//! stash, its counters) and, once every worker's is written, `complete`
//! (JSON: the worker count, the chunk size, the command, the lengths of
//! `--output` and `--late`). Each file is written to a temporary file,
//! synced, renamed, and the folder synced, as `checkpoint.rs` does for one
//! run; only a folder with its `complete` counts, and older folders are
//! deleted once a newer one is complete. See `docs/checkpoints.md`.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{sync_dir, Command};

/// The marker of a whole cut.
pub const COMPLETE: &str = "complete";
/// The format version of the folder: 2 since a source's state holds the
/// place of live input (`SourceState::place`), 3 since a worker's file
/// holds the length of its own output (`WorkerFile::own`), 4 since keys
/// are dealt by key group, engines saved by range of key groups and the
/// lines read over every worker kept (a cut of an older version routed
/// keys otherwise and is refused).
const VERSION: u32 = 4;

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

/// The last complete cut in `dir`, read whole; `Ok(None)` when there is
/// none. `Err` says why it cannot be used.
pub fn read(dir: &Path) -> Result<Option<Resume>, String> {
    let all = epochs(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let Some(&(epoch, _)) = all.iter().rev().find(|(_, complete)| *complete) else {
        return Ok(None);
    };
    let folder = epoch_dir(dir, epoch);
    let text = fs::read(folder.join(COMPLETE))
        .map_err(|e| format!("cannot read {}: {e}", folder.join(COMPLETE).display()))?;
    let marker: Marker = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not a checkpoint marker: {e}", folder.display()))?;
    if marker.version != VERSION || marker.epoch != epoch {
        return Err(format!(
            "{}: a checkpoint of another format version",
            folder.display()
        ));
    }
    let all = marker.processes.saturating_mul(marker.workers);
    let mut workers = Vec::with_capacity(all.min(1 << 16));
    for index in 0..all {
        let path = folder.join(format!("worker-{index}"));
        let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file = decode(&bytes)
            .ok_or_else(|| format!("{}: corrupt (checksum or format)", path.display()))?;
        workers.push(file);
    }
    Ok(Some(Resume { marker, workers }))
}

/// A worker file's bytes: postcard, then a CRC-32 of them.
pub fn encode(file: &WorkerFile) -> Vec<u8> {
    let mut bytes = postcard::to_allocvec(file).unwrap_or_default();
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<WorkerFile> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    postcard::from_bytes(body).ok()
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
    for (epoch, _) in all
        .into_iter()
        .filter(|(e, _)| last.is_none_or(|l| *e > l))
    {
        fs::remove_dir_all(epoch_dir(dir, epoch))?;
    }
    sync_dir(dir)
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
        };
        let mut bytes = encode(&file);
        assert_eq!(decode(&bytes).map(|f| f.drops.len()), Some(1));
        bytes[1] ^= 1;
        assert!(decode(&bytes).is_none());
        assert!(decode(&[]).is_none());
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
