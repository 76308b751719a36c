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
//! flushed and synced to disk: the engine's snapshot is encoded into
//! memory there, and the file work is done on a thread of its own
//! ([`Writer`]) while matching goes on: written to `DIR/checkpoint.tmp`,
//! synced, renamed over `DIR/checkpoint`, and the folder synced: the
//! previous checkpoint stays whole until the new one is. A crash at any
//! moment leaves one whole checkpoint (or none yet).
//!
//! The file: the magic `CEPHCKPT`, the format version (`u32`, little
//! endian), the length of the metadata (`u64`, little endian), the
//! metadata ([`Meta`], JSON), the engine's snapshot, and a CRC-32 of every
//! byte before it (`u32`, little endian). Its format is described in
//! `docs/checkpoints.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::lock::lock_folder;
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
    /// What differs from `now`, said as the setting (`Config::output`)
    /// and its two values.
    pub fn difference(&self, now: &Command) -> Option<Unusable> {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        let pairs = [
            ("`Config::input`", self.events.clone(), now.events.clone()),
            ("`Config::format`", self.format.clone(), now.format.clone()),
            ("`Config::time`", self.time.clone(), now.time.clone()),
            (
                "`Config::time_field`",
                self.time_field.clone(),
                now.time_field.clone(),
            ),
            ("`Config::output`", show(&self.output), show(&now.output)),
            ("`Config::late`", show(&self.late), show(&now.late)),
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
    let mut bytes = Vec::with_capacity(PREFIX + snapshot.len() + CHECKSUM + 1024);
    begin(meta, &mut bytes);
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

/// When a run's checkpoints are due (kept by the matching thread).
pub struct Schedule {
    every: Every,
    /// When the last checkpoint's file was durable (or the run started).
    last: Instant,
    /// Input lines given to the engine since the last snapshot.
    lines: u64,
    /// Has anything happened since the last snapshot?
    dirty: bool,
    /// Was a checkpoint that took longer than the interval said?
    slow_told: bool,
    /// Is a checkpoint's file being written (its snapshot taken, not yet
    /// durable)? Then none is due by time: the interval counts from the
    /// end of the write.
    writing: bool,
}

impl Schedule {
    /// Checkpoints every `every`, counting from `now`.
    pub fn new(every: Every, now: Instant) -> Schedule {
        Schedule {
            every,
            last: now,
            lines: 0,
            dirty: false,
            slow_told: false,
            writing: false,
        }
    }

    /// `lines` input lines went to the engine (or time moved: 0 lines).
    pub fn advanced(&mut self, lines: usize) {
        self.lines += lines as u64;
        self.dirty = true;
    }

    /// Is a checkpoint due at `now`? (By time, not while one is being
    /// written; by lines, maybe: the caller takes it once that one is
    /// durable.)
    pub fn due(&self, now: Instant) -> bool {
        (self.dirty && self.every.lines.is_some_and(|n| self.lines >= n))
            || self.due_in(now) == Some(Duration::ZERO)
    }

    /// How long from `now` until a checkpoint is due by time (zero: due
    /// now), for the run to wake then even when no input comes; `None`
    /// when no time will make one due: nothing happened since the last
    /// snapshot, a file is being written (its end wakes the run), or the
    /// interval is a number of lines only.
    pub fn due_in(&self, now: Instant) -> Option<Duration> {
        if !self.dirty || self.writing {
            return None;
        }
        let every = self.every.time?;
        Some(every.saturating_sub(now.saturating_duration_since(self.last)))
    }

    /// Has anything happened since the last snapshot?
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// A checkpoint's snapshot was taken: what happens from now on goes
    /// into the next one.
    pub fn began(&mut self) {
        self.lines = 0;
        self.dirty = false;
        self.writing = true;
    }

    /// A checkpoint begun at `started` was durable at `ended`: the next
    /// one is due an interval after `ended`, not after `started` (issue
    /// 26: a checkpoint longer than the interval made the run take one
    /// batch per checkpoint), and a checkpoint that took longer than the
    /// interval is said, once. Returns what to say, if anything.
    pub fn ended(&mut self, started: Instant, ended: Instant) -> Option<String> {
        let took = ended.saturating_duration_since(started);
        self.last = ended;
        self.writing = false;
        let every = self.every.time.filter(|every| took > *every)?;
        if std::mem::replace(&mut self.slow_told, true) {
            return None;
        }
        Some(format!(
            "cepheid: a checkpoint took {} ms, longer than `Config::checkpoint_every` {} ms: each next one is due that long after the end of the last (a longer interval leaves more time to the events)",
            took.as_millis(),
            every.as_millis()
        ))
    }
}

/// Called on the checkpoint thread with a checkpoint's number before its
/// file is written ([`crate::Runtime::before_checkpoint_file`]).
pub type Hook = Box<dyn FnMut(u64) + Send>;

/// What the matching thread asks of the checkpoint thread.
enum Job {
    /// Write checkpoint `number`: `bytes` is the file but its CRC-32
    /// ([`begin`]).
    Write { number: u64, bytes: Vec<u8> },
    /// The sinks committed the checkpoint written last: delete the one
    /// before it.
    Committed,
}

/// A checkpoint's file work, done.
pub struct Written {
    /// Written, synced, renamed and the folder synced; or why not.
    pub result: io::Result<()>,
    /// When that was done.
    pub ended: Instant,
    /// The file's size.
    pub bytes: u64,
    /// Its buffer, emptied, for the next one.
    pub buffer: Vec<u8>,
}

/// Writes a run's checkpoint files to its folder on a thread of its own
/// (`cepheid-checkpoint`), one at a time, while the matching thread goes
/// on: each is written to a temporary file, synced, the previous
/// checkpoint renamed to [`PREV`], the temporary file to [`FILE`], and
/// the folder synced; once the sinks committed it, [`Writer::committed`]
/// deletes [`PREV`]. A write that fails (a full disk) leaves no temporary
/// file behind.
pub struct Writer {
    dir: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Written>,
    thread: Option<JoinHandle<()>>,
    /// Is a checkpoint's file being written (sent, its answer not taken)?
    in_flight: bool,
}

impl Writer {
    /// A writer to `dir` (which exists); `wake` is called on its thread
    /// after each checkpoint's file work (the matching thread may be
    /// waiting for input), `hook` before each file is written.
    pub fn new(dir: &Path, wake: Box<dyn Fn() + Send>, hook: Option<Hook>) -> io::Result<Writer> {
        let (jobs, inbox) = mpsc::channel();
        let (answer, done) = mpsc::channel();
        let mut disk = Disk {
            dir: dir.to_path_buf(),
            written: 0,
            fail_at: std::env::var(FAIL_VARIABLE)
                .ok()
                .and_then(|v| v.parse().ok()),
        };
        let mut hook = hook;
        let thread = thread::Builder::new()
            .name("cepheid-checkpoint".to_owned())
            .spawn(move || {
                for job in inbox {
                    match job {
                        Job::Write { number, mut bytes } => {
                            if let Some(hook) = &mut hook {
                                hook(number);
                            }
                            let crc = crc32fast::hash(&bytes);
                            bytes.extend_from_slice(&crc.to_le_bytes());
                            let result = disk.write(&bytes);
                            let written = Written {
                                result,
                                ended: Instant::now(),
                                bytes: bytes.len() as u64,
                                buffer: {
                                    bytes.clear();
                                    bytes
                                },
                            };
                            if answer.send(written).is_err() {
                                return;
                            }
                            wake();
                        }
                        // (a previous checkpoint left behind is harmless:
                        // the sink says which one it committed)
                        Job::Committed => {
                            let _ = disk.committed();
                        }
                    }
                }
            })?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            in_flight: false,
        })
    }

    /// The checkpoint file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Is a checkpoint's file being written?
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Hands checkpoint `number` (its bytes from [`begin`] on) to the
    /// thread. One at a time: the answer to the one before was taken.
    pub fn send(&mut self, number: u64, bytes: Vec<u8>) -> io::Result<()> {
        assert!(!self.in_flight, "one checkpoint file at a time");
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Job::Write { number, bytes }).is_ok());
        if !sent {
            return Err(io::Error::other("the checkpoint thread stopped"));
        }
        self.in_flight = true;
        Ok(())
    }

    /// The answer for the checkpoint in flight: waiting for it with
    /// `wait`, else only if it is there. `None`: none in flight, or not
    /// done yet.
    pub fn done(&mut self, wait: bool) -> Option<Written> {
        if !self.in_flight {
            return None;
        }
        let answer = if wait {
            self.done.recv().ok()
        } else {
            match self.done.try_recv() {
                Ok(written) => Some(written),
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        };
        self.in_flight = false;
        Some(answer.unwrap_or_else(|| Written {
            result: Err(io::Error::other("the checkpoint thread stopped")),
            ended: Instant::now(),
            bytes: 0,
            buffer: Vec::new(),
        }))
    }

    /// The sinks committed the checkpoint just written: the previous one
    /// goes (on the thread, before it writes the next).
    pub fn committed(&mut self) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Committed);
        }
    }
}

impl Drop for Writer {
    /// Lets the thread finish what it was given (deleting the previous
    /// checkpoint), then ends it.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A checkpoint file's bytes up to the engine's snapshot: the magic, the
/// version, the metadata's length and the metadata, into `bytes`
/// (cleared). The engine's snapshot goes after it, then the thread adds
/// the CRC-32 ([`Writer::send`]; [`encode`] does it all at once).
pub fn begin(meta: &Meta, bytes: &mut Vec<u8>) {
    let meta = serde_json::to_vec(meta).expect("the metadata is plain data");
    bytes.clear();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&meta);
}

/// The checkpoint thread's side of a folder.
struct Disk {
    dir: PathBuf,
    /// Checkpoints written so far.
    written: u64,
    /// The write that fails, for tests ([`FAIL_VARIABLE`]).
    fail_at: Option<u64>,
}

impl Disk {
    /// Writes `bytes` as the folder's checkpoint, safely: a temporary
    /// file, synced; the checkpoint renamed to [`PREV`], the temporary
    /// file to the checkpoint, the folder synced.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
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
        sync_dir(&self.dir)
    }

    /// The previous checkpoint goes.
    fn committed(&self) -> io::Result<()> {
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

/// Resuming from [`PREV`] (the sinks committed the checkpoint before the
/// newest, which was written and never committed: a crash between a
/// snapshot and its commit): the newest is dropped and [`PREV`] is the
/// checkpoint again (one rename, the folder synced), so that the next
/// checkpoint's write keeps the committed one as [`PREV`] until the sinks
/// commit the next. Without it that write would rename the never
/// committed one to [`PREV`] over the committed one, and a second crash
/// in the same window would leave no checkpoint the sinks committed.
pub(crate) fn back_to_prev(dir: &Path) -> io::Result<()> {
    fs::rename(dir.join(PREV), dir.join(FILE))?;
    sync_dir(dir)
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
            Some("it was taken by another command (`Config::late` was -, now /data/late)")
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
        let every = parse_every("1s,100").unwrap();
        let mut schedule = Schedule::new(every, t0);
        assert!(!schedule.due(t0 + Duration::from_secs(5)));
        schedule.advanced(10);
        assert!(!schedule.due(t0));
        assert!(schedule.due(t0 + Duration::from_secs(1)));
        schedule.advanced(90);
        assert!(schedule.due(t0));
        // A snapshot taken: nothing is due until something happens, and
        // the interval counts from the end of its write.
        schedule.began();
        assert!(!schedule.due(t0 + Duration::from_secs(5)));
        schedule.advanced(1);
        assert!(
            !schedule.due(t0 + Duration::from_secs(5)),
            "not by time while its file is written"
        );
        let end = t0 + Duration::from_secs(3);
        let said = schedule.ended(t0, end).expect("longer than 1 s: said");
        assert!(said.contains("took 3000 ms"), "{said}");
        assert!(!schedule.due(end + Duration::from_millis(999)));
        assert!(schedule.due(end + Duration::from_secs(1)));
        assert_eq!(
            schedule.ended(end, end + Duration::from_secs(5)),
            None,
            "said once"
        );
        schedule.began();
        schedule.advanced(100);
        assert!(
            schedule.due(end),
            "by lines while one is written: the caller takes it after"
        );
    }

    #[test]
    fn due_in_is_the_time_left_until_due_by_time_and_none_when_no_time_makes_it_due() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(parse_every("1s").unwrap(), t0);
        assert_eq!(schedule.due_in(t0), None, "nothing happened");
        schedule.advanced(0);
        let ms = Duration::from_millis;
        assert_eq!(schedule.due_in(t0 + ms(300)), Some(ms(700)));
        assert_eq!(schedule.due_in(t0 + ms(1000)), Some(Duration::ZERO));
        assert_eq!(schedule.due_in(t0 + ms(4000)), Some(Duration::ZERO));
        // Due exactly when `due` says so.
        assert!(!schedule.due(t0 + ms(999)) && schedule.due(t0 + ms(1000)));
        schedule.began();
        schedule.advanced(5);
        assert_eq!(schedule.due_in(t0 + ms(4000)), None, "its file is written");
        let end = t0 + ms(1200);
        assert_eq!(schedule.ended(t0 + ms(1000), end), None);
        assert_eq!(schedule.due_in(end + ms(250)), Some(ms(750)));
        // A number of lines only: no time makes it due.
        let mut lines = Schedule::new(parse_every("100").unwrap(), t0);
        lines.advanced(99);
        assert_eq!(lines.due_in(t0 + ms(4000)), None);
        // Both: the time's.
        let mut both = Schedule::new(parse_every("1s,100").unwrap(), t0);
        both.advanced(1);
        assert_eq!(both.due_in(t0 + ms(100)), Some(ms(900)));
    }

    #[test]
    fn the_thread_writes_one_file_at_a_time_and_the_previous_goes_once_committed() {
        let dir = std::env::temp_dir().join(format!("cepheid-writer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut writer = Writer::new(&dir, Box::new(|| {}), None).unwrap();
        assert!(writer.done(true).is_none(), "none in flight");
        for (number, body) in [(1, &b"first"[..]), (2, b"second")] {
            let mut bytes = Vec::new();
            begin(&meta(), &mut bytes);
            bytes.extend_from_slice(body);
            writer.send(number, bytes).unwrap();
            assert!(writer.in_flight());
            let written = writer.done(true).expect("in flight");
            written.result.unwrap();
            assert!(!writer.in_flight());
            let bytes = read(&dir).unwrap().unwrap();
            assert_eq!(written.bytes, bytes.len() as u64);
            assert_eq!(
                bytes,
                encode(&meta(), body),
                "the CRC-32 added on the thread"
            );
        }
        assert!(dir.join(PREV).exists(), "kept until committed");
        writer.committed();
        drop(writer);
        assert!(!dir.join(PREV).exists());
        assert!(!dir.join(TEMP).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
