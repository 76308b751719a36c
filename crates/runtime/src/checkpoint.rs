//! Checkpoints (`Config::checkpoint`, `cepheid run --checkpoint DIR`): the
//! run's whole state in one file, `DIR/checkpoint`, from which a later run
//! of the same command goes on as if it had never stopped.
//!
//! A checkpoint holds the engine's snapshot (`Engine::snapshot`), where the
//! input is (the byte offset and line count of the first line not yet given
//! to the engine, and a CRC-32 of the bytes just before it, which
//! recognizes the file), the byte lengths of the output and late files, and
//! the command's own counters (malformed lines, keys already reported,
//! whether the input had `$watermark` lines), so that the outputs and the
//! summary of a resumed run equal an uninterrupted run's.
//!
//! It is taken on the main thread between batches, after the outputs are
//! flushed and synced to disk, and written to `DIR/checkpoint.tmp`, synced,
//! renamed over `DIR/checkpoint`, and the folder synced: the previous
//! checkpoint stays whole until the new one is. A crash at any moment
//! leaves one whole checkpoint (or none yet).
//!
//! The file: the magic `CEPHCKPT`, the format version (`u32`, little
//! endian), the length of the metadata (`u64`, little endian), the
//! metadata ([`Meta`], JSON), the engine's snapshot, and a CRC-32 of every
//! byte before it (`u32`, little endian). Its format is described in
//! `docs/checkpoints.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::source::FilePosition;
use crate::Unusable;

/// The checkpoint's file name in its folder.
pub const FILE: &str = "checkpoint";
/// The checkpoint before it, kept until the sinks have committed the new
/// one (a transactional sink that crashed before its commit resumes from
/// it, `Sink::recover`).
pub const PREV: &str = "checkpoint.prev";
/// The file a new checkpoint is written to before it is renamed.
const TEMP: &str = "checkpoint.tmp";
/// The first bytes of a checkpoint.
const MAGIC: &[u8; 8] = b"CEPHCKPT";
/// The format version written and read.
const VERSION: u32 = 1;
/// Magic, version, metadata length.
const PREFIX: usize = 8 + 4 + 8;
/// The CRC-32 at the end.
const CHECKSUM: usize = 4;

/// A test-only variable: `CEPHEID_TEST_FAIL_CHECKPOINT=N` makes the N-th
/// checkpoint write of a run fail half-way with "no space left on device",
/// as a full disk would (tests run as root, for whom a read-only folder is
/// writable).
const FAIL_VARIABLE: &str = "CEPHEID_TEST_FAIL_CHECKPOINT";

/// What a checkpoint must agree on with the command that resumes from it
/// (the patterns, `--max-delay`, `--max-runs-per-key`, `--max-live-runs`
/// and `--max-waiting` are checked by `Engine::restore`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// `--events`, canonical.
    pub events: String,
    /// `--format`.
    pub format: String,
    /// `--time`.
    pub time: String,
    /// `--time-field`.
    pub time_field: String,
    /// `--output`, canonical; `None` for standard output.
    pub output: Option<String>,
    /// `--late`, canonical.
    pub late: Option<String>,
}

impl Command {
    /// What differs from `now`, said as a flag and its two values.
    pub fn difference(&self, now: &Command) -> Option<Unusable> {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        let pairs = [
            ("--events", self.events.clone(), now.events.clone()),
            ("--format", self.format.clone(), now.format.clone()),
            ("--time", self.time.clone(), now.time.clone()),
            (
                "--time-field",
                self.time_field.clone(),
                now.time_field.clone(),
            ),
            ("--output", show(&self.output), show(&now.output)),
            ("--late", show(&self.late), show(&now.late)),
        ];
        pairs
            .into_iter()
            .find(|(_, was, is)| was != is)
            .map(|(flag, was, now)| Unusable::OtherCommand { flag, was, now })
    }
}

/// The command's own state that a resumed run carries on with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Malformed lines so far.
    pub malformed: u64,
    /// The keys already said to be over `--max-runs-per-key`: pattern
    /// index and key values (JSON).
    pub dropped_keys: Vec<(usize, Vec<serde_json::Value>)>,
    /// Did more keys than are remembered (`run.rs`, `MAX_DROP_KEYS`) go
    /// over `--max-runs-per-key`?
    #[serde(default)]
    pub dropped_keys_overflow: bool,
    /// Per pattern: was an object key already reported?
    pub object_keys_told: Vec<bool>,
    /// Has the input had `$watermark` lines (then the end of input does
    /// not finish event time)?
    pub punctuated: bool,
    /// Were `$watermark` lines said to be ignored (processing time)?
    pub watermarks_told: bool,
    /// Was a watermark forced by `--max-waiting` said already?
    pub forced_told: bool,
    /// Rule sets put in force by reloads so far (`$rules`, `--watch`).
    #[serde(default)]
    pub reloads: u64,
    /// Rule sets refused so far (they did not load).
    #[serde(default)]
    pub reloads_refused: u64,
    /// Records of a source's rules stream applied late so far.
    #[serde(default)]
    pub reloads_late: u64,
    /// Did a reload change the rules? Then a resumed run takes its rules
    /// from the snapshot (`Engine::restore_rules`), not from the command
    /// line.
    #[serde(default)]
    pub rules_changed: bool,
}

/// A checkpoint's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The command it belongs to.
    pub command: Command,
    /// Where the input is.
    pub input: FilePosition,
    /// The output file's length (`None` for standard output, which is
    /// not truncated on resuming).
    pub output_len: Option<u64>,
    /// The late file's length.
    pub late_len: Option<u64>,
    /// CRC-32s of the first bytes of the output and late files
    /// (`rotate::head_crc`): resuming, other first bytes mean the file was
    /// rotated since (older checkpoints have none).
    #[serde(default)]
    pub output_head: Option<u32>,
    /// See `output_head`.
    #[serde(default)]
    pub late_head: Option<u32>,
    /// The command's counters.
    pub counters: Counters,
    /// Its number: one more than the checkpoint the run resumed from (0
    /// in checkpoints of older versions).
    #[serde(default)]
    pub number: u64,
    /// A [`Source`](crate::Source)'s position (`None` for the built-in
    /// file reader, whose position is `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::Position>,
    /// A sink's own state (`SinkState::data`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sink_data: Vec<u8>,
    /// With split watermarks (`Config::split_watermarks`), each split's
    /// watermark: a resumed run's splits start where they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_watermarks: Option<Vec<Option<i64>>>,
    /// Not in the file: set on resuming with `--watch` when the pattern
    /// files on disk are no longer the checkpoint's rules (edited after
    /// it): the run goes on with the checkpoint's rules and reads the
    /// files at once, as a reload (`resume.rs`).
    #[serde(skip)]
    pub reload_files: bool,
}

/// What a checkpoint of a run with `config` must agree on (`None` without
/// checkpoints, or when a path has no canonical form).
pub fn command(config: &crate::Config) -> Option<Command> {
    crate::driver::checkpoint_command(config)
}

/// A checkpoint as bytes: the file's contents.
pub fn encode(meta: &Meta, snapshot: &[u8]) -> Vec<u8> {
    let meta = serde_json::to_vec(meta).expect("the metadata is plain data");
    let mut bytes = Vec::with_capacity(PREFIX + meta.len() + snapshot.len() + CHECKSUM);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&meta);
    bytes.extend_from_slice(snapshot);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The metadata and the engine's snapshot of a checkpoint file's bytes, or
/// why they are not a checkpoint this build reads.
pub fn decode(bytes: &[u8]) -> Result<(Meta, &[u8]), Unusable> {
    if bytes.len() < PREFIX + CHECKSUM || &bytes[..8] != MAGIC {
        return Err(Unusable::NotACheckpoint);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(Unusable::Version {
            found: version,
            reads: VERSION,
        });
    }
    let (body, crc) = bytes.split_at(bytes.len() - CHECKSUM);
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != crc {
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

/// The checkpoint file in `dir`: its bytes, `None` when there is none.
pub fn read(dir: &Path) -> io::Result<Option<Vec<u8>>> {
    read_file(dir, FILE)
}

/// The file `name` in `dir`: its bytes, `None` when there is none.
pub fn read_file(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    match fs::read(dir.join(name)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// When checkpoints are taken: after this much wall time and/or this many
/// input lines since the last one, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Every {
    /// Wall time between checkpoints.
    pub time: Option<Duration>,
    /// Input lines between checkpoints.
    pub lines: Option<u64>,
}

/// The default of `--checkpoint-every`.
pub const DEFAULT_EVERY: &str = "10s";

impl Default for Every {
    /// Every 10 seconds.
    fn default() -> Every {
        Every {
            time: Some(Duration::from_secs(10)),
            lines: None,
        }
    }
}

/// Why a `--checkpoint-every` text is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EveryError {
    /// A number of events too large.
    TooMany {
        /// The number.
        part: String,
    },
    /// Not one number of events, at least 1.
    Count {
        /// The whole text.
        text: String,
    },
    /// Not one duration, greater than zero.
    Duration {
        /// The whole text.
        text: String,
    },
    /// A duration that does not parse.
    Invalid(cepheid_core::time::DurationError),
}

impl std::fmt::Display for EveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EveryError::TooMany { part } => write!(f, "`{part}` is too many events"),
            EveryError::Count { text } => {
                write!(f, "`{text}`: give one number of events, at least 1")
            }
            EveryError::Duration { text } => {
                write!(f, "`{text}`: give one duration, greater than zero")
            }
            EveryError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EveryError {}

/// Parses `--checkpoint-every`: a duration (`10s`, `500ms`), a number of
/// events (`100000`), or both with a comma (`10s,100000`).
pub fn parse_every(text: &str) -> Result<Every, EveryError> {
    let mut every = Every {
        time: None,
        lines: None,
    };
    for part in text.split(',').map(str::trim) {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            let n: u64 = part.parse().map_err(|_| EveryError::TooMany {
                part: part.to_string(),
            })?;
            if n == 0 || every.lines.is_some() {
                return Err(EveryError::Count {
                    text: text.to_string(),
                });
            }
            every.lines = Some(n);
        } else {
            let ms = cepheid_core::time::parse_duration(part).map_err(EveryError::Invalid)?;
            if ms <= 0 || every.time.is_some() {
                return Err(EveryError::Duration {
                    text: text.to_string(),
                });
            }
            every.time = Some(Duration::from_millis(ms.unsigned_abs()));
        }
    }
    Ok(every)
}

/// Writes a run's checkpoints to its folder, when they are due.
pub struct Writer {
    dir: PathBuf,
    every: Every,
    /// When the last checkpoint was taken (or the run started).
    last: Instant,
    /// Input lines given to the engine since then.
    lines: u64,
    /// Has anything happened since then?
    dirty: bool,
    /// Checkpoints written so far.
    written: u64,
    /// The write that fails, for tests ([`FAIL_VARIABLE`]).
    fail_at: Option<u64>,
    /// Was a checkpoint that took longer than the interval said?
    slow_told: bool,
}

impl Writer {
    /// A writer to `dir` (which exists), counting from `now`.
    pub fn new(dir: &Path, every: Every, now: Instant) -> Writer {
        Writer {
            dir: dir.to_path_buf(),
            every,
            last: now,
            lines: 0,
            dirty: false,
            written: 0,
            slow_told: false,
            fail_at: std::env::var(FAIL_VARIABLE)
                .ok()
                .and_then(|v| v.parse().ok()),
        }
    }

    /// The checkpoint file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// `lines` input lines went to the engine (or time moved: 0 lines).
    pub fn advanced(&mut self, lines: usize) {
        self.lines += lines as u64;
        self.dirty = true;
    }

    /// Is a checkpoint due at `now`?
    pub fn due(&self, now: Instant) -> bool {
        self.dirty
            && (self.every.lines.is_some_and(|n| self.lines >= n)
                || self
                    .every
                    .time
                    .is_some_and(|t| now.saturating_duration_since(self.last) >= t))
    }

    /// Has anything happened since the last checkpoint?
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Writes `bytes` as the folder's checkpoint, safely: a temporary
    /// file, synced; the checkpoint renamed to [`PREV`], the temporary
    /// file to the checkpoint, the folder synced ([`Writer::committed`]
    /// then deletes the previous one).
    /// A write that fails (a full disk) leaves no temporary file behind.
    /// `started` is when the checkpoint began (its flush and snapshot):
    /// the next one is due an interval after the end of this one, not
    /// after its start (issue 26: a checkpoint longer than the interval
    /// made the run take one batch per checkpoint), and a checkpoint that
    /// took longer than the interval is said, once.
    /// Returns what to say about it, if anything.
    pub fn write(&mut self, bytes: &[u8], started: Instant) -> io::Result<Option<String>> {
        self.written += 1;
        let temp = self.dir.join(TEMP);
        let written = self.write_temp(&temp, bytes);
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written?;
        let (file, prev) = (self.dir.join(FILE), self.dir.join(PREV));
        if file.exists() {
            fs::rename(&file, &prev)?;
        }
        fs::rename(&temp, file)?;
        sync_dir(&self.dir)?;
        let ended = Instant::now();
        let took = ended.saturating_duration_since(started);
        let mut said = None;
        if let Some(every) = self.every.time.filter(|every| took > *every) {
            if !std::mem::replace(&mut self.slow_told, true) {
                said = Some(format!(
                    "cepheid: a checkpoint took {} ms, longer than --checkpoint-every {} ms: each next one is due that long after the end of the last (a longer interval leaves more time to the events)",
                    took.as_millis(),
                    every.as_millis()
                ));
            }
        }
        self.last = ended;
        self.lines = 0;
        self.dirty = false;
        Ok(said)
    }
}

impl Writer {
    /// The sinks committed the checkpoint just written: the previous one
    /// goes.
    pub fn committed(&self) -> io::Result<()> {
        match fs::remove_file(self.dir.join(PREV)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Writes and syncs `bytes` into `temp`.
    fn write_temp(&self, temp: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(temp)?;
        if self.fail_at == Some(self.written) {
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::other(
                "No space left on device (simulated by CEPHEID_TEST_FAIL_CHECKPOINT)",
            ));
        }
        file.write_all(bytes)?;
        file.sync_all()
    }
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Elsewhere a folder cannot be opened to be synced.
#[cfg(not(unix))]
pub fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Tail;

    fn meta() -> Meta {
        Meta {
            command: Command {
                events: "/data/events.jsonl".into(),
                format: "jsonl".into(),
                time: "event".into(),
                time_field: "ts".into(),
                output: Some("/data/out.jsonl".into()),
                late: None,
            },
            input: FilePosition {
                offset: 1234,
                lines: 17,
                tail: Some(Tail { len: 1234, crc: 7 }),
            },
            output_len: Some(99),
            late_len: None,
            output_head: Some(7),
            late_head: None,
            counters: Counters {
                malformed: 2,
                dropped_keys: vec![(0, vec![serde_json::json!("k1")])],
                dropped_keys_overflow: true,
                object_keys_told: vec![false, true],
                punctuated: true,
                watermarks_told: false,
                forced_told: true,
                reloads: 3,
                reloads_refused: 1,
                reloads_late: 0,
                rules_changed: true,
            },
            number: 4,
            source: None,
            sink_data: Vec::new(),
            split_watermarks: None,
            reload_files: false,
        }
    }

    #[test]
    fn a_checkpoint_reads_back_and_any_damage_is_seen() {
        let bytes = encode(&meta(), b"snapshot bytes");
        let (read, snapshot) = decode(&bytes).unwrap();
        assert_eq!(read, meta());
        assert_eq!(snapshot, b"snapshot bytes");
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert!(decode(&damaged).is_err(), "byte {i}");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "{len} bytes");
        }
        let mut other = bytes.clone();
        other[8] = 9;
        assert!(decode(&other)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
    }

    #[test]
    fn a_different_command_is_named() {
        let mut now = meta().command;
        assert!(meta().command.difference(&now).is_none());
        now.late = Some("/data/late".into());
        assert_eq!(
            meta()
                .command
                .difference(&now)
                .map(|d| d.to_string())
                .as_deref(),
            Some("it was taken by another command (--late was -, now /data/late)")
        );
    }

    #[test]
    fn every_takes_a_duration_a_count_or_both() {
        let s = Duration::from_secs(1);
        assert_eq!(
            parse_every("1s"),
            Ok(Every {
                time: Some(s),
                lines: None
            })
        );
        assert_eq!(
            parse_every("5000"),
            Ok(Every {
                time: None,
                lines: Some(5000)
            })
        );
        assert_eq!(
            parse_every("1s, 5000"),
            Ok(Every {
                time: Some(s),
                lines: Some(5000)
            })
        );
        for bad in ["", "0", "0s", "1s,2s", "5,6", "soon", "-1s"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn due_after_the_time_or_the_lines_and_only_when_something_happened() {
        let t0 = Instant::now();
        let dir = std::env::temp_dir();
        let every = parse_every("1s,100").unwrap();
        let mut writer = Writer::new(&dir, every, t0);
        assert!(!writer.due(t0 + Duration::from_secs(5)));
        writer.advanced(10);
        assert!(!writer.due(t0));
        assert!(writer.due(t0 + Duration::from_secs(1)));
        writer.advanced(90);
        assert!(writer.due(t0));
    }
}
