//! Checkpoints (`Config::checkpoint`, `cepheid run --checkpoint DIR`): the
//! run's whole state in a folder, from which a later run of the same
//! command goes on as if it had never stopped, on one engine or on any
//! number of workers: **one format for every executor** (`docs/checkpoints.md`).
//!
//! - [`store`]: the folder (`DIR/cut-N`: a [`Marker`] and one [`Piece`] per
//!   worker; one engine is the cut of one worker whose piece holds every
//!   pattern over every key), writing, reading, keeping and pruning;
//! - `file`: each file's magic, version, table of sections and CRC-32;
//! - `legacy`: the formats before this one, read once;
//! - `rules`: the rules a worker ran at a cut ([`CutRules`]);
//! - `cut`: a cut of workers' files, written and completed for their
//!   executor ([`write_piece`], [`missing_pieces`], [`complete_cut`]);
//! - `read`, `stash`, `key_groups`: sections of a worker's piece the
//!   runtime reads ([`Read`], [`keys`], [`decode_stash`]) and the key
//!   groups of its engines ([`key_group`]);
//! - `one_engine`: a cut of workers made one engine's checkpoint before a
//!   run on one engine resumes from it;
//! - here: when checkpoints are due ([`Schedule`]), the single run's
//!   checkpoint thread ([`Writer`]), what a checkpoint must agree on with
//!   the command ([`Command`]) and the run's counters ([`Counters`]).
//!
//! One engine's checkpoint is taken on the main thread between batches,
//! after the outputs are flushed and synced to disk: the engine's
//! snapshot and the marker are encoded into memory there, and the file
//! work is done on a thread of its own ([`Writer`]) while matching goes
//! on. A crash at any moment leaves whole checkpoints (or none yet).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::lock::lock_folder;
pub use crate::resume::{reload_at_the_cut, resumed_rules, rotated_since, CutPlan, RulesResumed};
use crate::Unusable;

mod cut;
pub(crate) mod file;
mod key_groups;
mod legacy;
pub(crate) mod one_engine;
mod read;
mod rules;
mod stash;
pub mod store;

pub(crate) use cut::keep_end_warnings;
pub use cut::{
    complete_cut, cut_folder, missing_pieces, write_piece, Completed, CutFailed, ReadPositions,
};
pub use file::{OPTIONAL, VERSION};
pub use key_groups::{encode_key, encode_value, key_group, key_group_of_bytes, key_hash};
pub use one_engine::{chunks_read, saved_pieces, to_end, SavedPiece};
pub use read::{keys, put_keys, Keys, Read};
pub use rules::{CutRules, Group};
pub use stash::{
    decode_stash, encode_stash, place_name, place_of, place_parts, placed, Stashed, HELD,
};
pub use store::{EngineState, Marker, Part, Piece, Stored};

/// A test-only variable: `CEPHEID_TEST_FAIL_CHECKPOINT=N` makes the N-th
/// checkpoint write of a run fail half-way with "no space left on device",
/// as a full disk would (tests run as root, for whom a read-only folder is
/// writable).
const FAIL_VARIABLE: &str = "CEPHEID_TEST_FAIL_CHECKPOINT";

/// A test-only variable: `CEPHEID_TEST_KILL_AFTER_CHECKPOINT=N` makes the
/// process kill itself (`SIGKILL`, as `kill -9` would) as soon as
/// checkpoint `N` (its number, `cut-N`) is durable, while the matching
/// thread goes on: a kill at a known point of a run, which a test that
/// watches the folder and kills the process catches only when the machine
/// is idle enough. Checked where every checkpoint is made whole
/// ([`store::complete_part`]): one engine's, and a cut of workers, which
/// worker 0 completes (with `--processes`, process 0 kills itself).
const KILL_VARIABLE: &str = "CEPHEID_TEST_KILL_AFTER_CHECKPOINT";

/// Kills the process when [`KILL_VARIABLE`] names checkpoint `number`,
/// just made durable.
pub(crate) fn kill_if_asked(number: u64) {
    let asked = std::env::var(KILL_VARIABLE)
        .ok()
        .and_then(|v| v.parse().ok());
    if asked == Some(number) {
        kill_self();
    }
}

/// Ends the process at once, as `SIGKILL` does: no destructor, no flush.
fn kill_self() -> ! {
    #[cfg(unix)]
    {
        use rustix::process::{getpid, kill_process, Signal};
        let _ = kill_process(getpid(), Signal::KILL);
    }
    std::process::abort()
}

/// What a checkpoint must agree on with the command that resumes from it
/// (the patterns, `--max-delay`, `--max-runs-per-key`, `--max-live-runs`
/// and `--max-waiting` are checked by `Engine::restore`): made by
/// [`command`] from a run's [`Config`](crate::Config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// `--events`, canonical.
    pub(crate) events: String,
    /// `--format`.
    pub(crate) format: String,
    /// `--time`.
    pub(crate) time: String,
    /// `--time-field`.
    pub(crate) time_field: String,
    /// `--output`, canonical; `None` for standard output.
    pub(crate) output: Option<String>,
    /// `--late`, canonical.
    pub(crate) late: Option<String>,
    /// `--shadow-output`, canonical (none in checkpoints of before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shadow: Option<String>,
    /// `--audit`, canonical (none in checkpoints of before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audit: Option<String>,
    /// `--decisions`, canonical (none in checkpoints of before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) decisions: Option<String>,
}

impl Command {
    /// This command with the outputs of `then` (a process of several that
    /// writes no output checks the rest only).
    pub fn with_outputs_of(mut self, then: &Command) -> Command {
        self.output.clone_from(&then.output);
        self.late.clone_from(&then.late);
        self.shadow.clone_from(&then.shadow);
        self.audit.clone_from(&then.audit);
        self.decisions.clone_from(&then.decisions);
        self
    }

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
            (
                "`Config::shadow_output`",
                show(&self.shadow),
                show(&now.shadow),
            ),
            ("`Config::audit`", show(&self.audit), show(&now.audit)),
            (
                "`Config::decisions`",
                show(&self.decisions),
                show(&now.decisions),
            ),
        ];
        pairs
            .into_iter()
            .find(|(_, was, is)| was != is)
            .map(|(flag, was, now)| Unusable::OtherCommand { flag, was, now })
    }
}

/// The run's own state that a resumed run carries on with (the marker's
/// counters section).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Malformed lines so far.
    pub(crate) malformed: u64,
    /// The keys already said to be over `--max-runs-per-key`: pattern
    /// index and key values (JSON).
    pub(crate) dropped_keys: Vec<(usize, Vec<serde_json::Value>)>,
    /// Did more keys than are remembered (`run.rs`, `MAX_DROP_KEYS`) go
    /// over `--max-runs-per-key`?
    #[serde(default)]
    pub(crate) dropped_keys_overflow: bool,
    /// Per pattern: was an object key already reported?
    pub(crate) object_keys_told: Vec<bool>,
    /// Has the input had `$watermark` lines (then the end of input does
    /// not finish event time)?
    pub(crate) punctuated: bool,
    /// Were `$watermark` lines said to be ignored (processing time)?
    pub(crate) watermarks_told: bool,
    /// Was a watermark forced by `--max-waiting` said already?
    pub(crate) forced_told: bool,
    /// Rule sets put in force by reloads so far (`$rules`, `--watch`).
    #[serde(default)]
    pub(crate) reloads: u64,
    /// Rule sets refused so far (they did not load).
    #[serde(default)]
    pub(crate) reloads_refused: u64,
    /// Records of a source's rules stream applied late so far.
    #[serde(default)]
    pub(crate) reloads_late: u64,
    /// Did a reload change the rules? Then a resumed run takes its rules
    /// from the snapshot (`Engine::restore_rules`), not from the command
    /// line.
    #[serde(default)]
    pub(crate) rules_changed: bool,
    /// The entries each reference file gave when it was last read
    /// ([`Config::lists`](crate::Config::lists)), kept by a run's workers
    /// (one engine keeps none: its lists say which file holds each entry,
    /// `docs/lists.md`, "Checkpoints"): what a file changed while the run
    /// was stopped removes.
    #[serde(default)]
    pub(crate) lists: Vec<crate::lists::FileEntries>,
    /// The field warnings (`Config::field_warnings`): were the first
    /// events looked at, and which (pattern, field) pairs were said. A
    /// resumed run goes on from them rather than looking again at its
    /// own first events, which may lack a field seen before the
    /// checkpoint.
    #[serde(default)]
    pub(crate) fields: crate::source::FieldsTold,
}

impl Counters {
    /// Counters of `malformed` lines so far, and whether the input had
    /// `$watermark` lines.
    pub fn of(malformed: u64, punctuated: bool) -> Counters {
        Counters {
            malformed,
            punctuated,
            ..Counters::default()
        }
    }

    /// The same counters, with the entries each reference file gave when
    /// it was last read ([`Config::lists`](crate::Config::lists)).
    pub fn with_lists(mut self, lists: Vec<crate::lists::FileEntries>) -> Counters {
        self.lists = lists;
        self
    }

    /// The same counters, with what the field warnings `warnings` saw
    /// and said so far ([`FieldWarnings::resuming`](crate::source::FieldWarnings::resuming)
    /// goes on from them).
    pub fn with_fields(mut self, warnings: &crate::source::FieldWarnings) -> Counters {
        self.fields = warnings.told_state();
        self
    }

    /// The entries each reference file gave when it was last read.
    pub fn lists(&self) -> &[crate::lists::FileEntries] {
        &self.lists
    }

    /// Malformed lines so far.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Has the input had `$watermark` lines?
    pub fn punctuated(&self) -> bool {
        self.punctuated
    }

    /// Did a reload change the rules (then a resumed run takes its rules
    /// from the checkpoint, not from the command line)?
    pub fn rules_changed(&self) -> bool {
        self.rules_changed
    }

    /// The keys already said to be over `Config::max_runs_per_key` (each
    /// pattern's number among the rules in force, and the key's values),
    /// and whether more went over than are remembered.
    pub fn dropped_keys(&self) -> (&[(usize, Vec<serde_json::Value>)], bool) {
        (&self.dropped_keys, self.dropped_keys_overflow)
    }

    /// With the keys already said to be over `Config::max_runs_per_key`
    /// ([`Counters::dropped_keys`]).
    pub fn with_dropped_keys(
        mut self,
        keys: Vec<(usize, Vec<serde_json::Value>)>,
        overflow: bool,
    ) -> Counters {
        (self.dropped_keys, self.dropped_keys_overflow) = (keys, overflow);
        self
    }

    /// Rule sets put in force, refused, and rules records applied late so
    /// far.
    pub fn reloads(&self) -> [u64; 3] {
        [self.reloads, self.reloads_refused, self.reloads_late]
    }

    /// With the reloads so far ([`Counters::reloads`]), and whether they
    /// changed the rules ([`Counters::rules_changed`]).
    pub fn with_reloads(mut self, [made, refused, late]: [u64; 3], changed: bool) -> Counters {
        (self.reloads, self.reloads_refused, self.reloads_late) = (made, refused, late);
        self.rules_changed = changed;
        self
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

/// What a checkpoint of a run with `config` must agree on (`None` without
/// checkpoints, or when a path has no canonical form).
pub fn command(config: &crate::Config) -> Option<Command> {
    crate::driver::checkpoint_command(config)
}

/// Called on the checkpoint thread with a checkpoint's number before its
/// files are written ([`crate::Runtime::before_checkpoint_file`]).
pub type Hook = Box<dyn FnMut(u64) + Send>;

/// The end of a checkpoint's piece, written on the checkpoint thread
/// before the file ([`Writer::send_finishing`]): what the matching thread
/// left to encode there (a snapshot's remembered requests,
/// `Engine::snapshot_begin`), then the piece's table. An error is the
/// checkpoint's, as a file that cannot be written.
pub(crate) type Finish = Box<dyn FnOnce(&mut Vec<u8>) -> Result<(), String> + Send>;

/// What the matching thread asks of the checkpoint thread.
enum Job {
    /// Write checkpoint `number`: its piece (finished first by `finish`)
    /// and its marker, each but its CRC-32.
    Write {
        number: u64,
        piece: Vec<u8>,
        finish: Option<Finish>,
        marker: Vec<u8>,
    },
    /// The sinks committed checkpoint `number`: delete the ones before.
    Committed(u64),
}

/// A checkpoint's file work, done.
pub struct Written {
    /// Written, synced, renamed and the folder synced; or why not.
    pub result: io::Result<()>,
    /// When that was done.
    pub ended: Instant,
    /// The checkpoint's size.
    pub bytes: u64,
    /// The piece's buffer, emptied, for the next one.
    pub buffer: Vec<u8>,
}

/// Writes a run's checkpoints to its folder on a thread of its own
/// (`cepheid-checkpoint`), one at a time, while the matching thread goes
/// on: checkpoint `N` is written in `DIR/part-N` (its piece, then its
/// marker, each to a temporary file, synced, renamed), which is renamed to
/// `DIR/cut-N`, and `DIR` synced; the checkpoints before stay until the
/// sinks committed it ([`Writer::committed`] deletes them). A write that
/// fails (a full disk) leaves nothing behind.
pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Written>,
    thread: Option<JoinHandle<()>>,
    /// Is a checkpoint's file being written (sent, its answer not taken)?
    in_flight: bool,
}

impl Writer {
    /// A writer to `dir` (which exists); `wake` is called on its thread
    /// after each checkpoint's file work (the matching thread may be
    /// waiting for input), `hook` before each checkpoint is written.
    pub fn new(dir: &Path, wake: Box<dyn Fn() + Send>, hook: Option<Hook>) -> io::Result<Writer> {
        let (jobs, inbox) = mpsc::channel();
        let (answer, done) = mpsc::channel();
        let dir = dir.to_path_buf();
        let variable = |name| std::env::var(name).ok().and_then(|v| v.parse().ok());
        let fail_at: Option<u64> = variable(FAIL_VARIABLE);
        let mut written = 0;
        let mut hook = hook;
        let thread = thread::Builder::new()
            .name("cepheid-checkpoint".to_owned())
            .spawn(move || {
                for job in inbox {
                    match job {
                        Job::Write {
                            number,
                            mut piece,
                            finish,
                            mut marker,
                        } => {
                            let finished = match finish {
                                Some(finish) => finish(&mut piece).map_err(io::Error::other),
                                None => Ok(()),
                            };
                            if let Some(hook) = &mut hook {
                                hook(number);
                            }
                            written += 1;
                            let fail = (fail_at == Some(written)).then_some(
                                "No space left on device (simulated by CEPHEID_TEST_FAIL_CHECKPOINT)",
                            );
                            file::seal(&mut piece);
                            file::seal(&mut marker);
                            let result = finished
                                .and_then(|()| write_one(&dir, number, &piece, &marker, fail));
                            let written = Written {
                                result,
                                ended: Instant::now(),
                                bytes: (piece.len() + marker.len()) as u64,
                                buffer: ready_for_next(piece),
                            };
                            if answer.send(written).is_err() {
                                return;
                            }
                            wake();
                        }
                        // (a checkpoint left behind is harmless: the sink
                        // says which one it committed)
                        Job::Committed(number) => {
                            let _ = store::prune(&dir, number);
                        }
                    }
                }
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            in_flight: false,
        })
    }

    /// Is a checkpoint's file being written?
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Hands checkpoint `number` (its piece's and its marker's bytes but
    /// their CRC-32s) to the thread. One at a time: the answer to the
    /// one before was taken.
    pub fn send(&mut self, number: u64, piece: Vec<u8>, marker: Vec<u8>) -> io::Result<()> {
        self.send_finishing(number, piece, None, marker)
    }

    /// [`Writer::send`] of a piece that `finish` ends on the thread.
    pub(crate) fn send_finishing(
        &mut self,
        number: u64,
        piece: Vec<u8>,
        finish: Option<Finish>,
        marker: Vec<u8>,
    ) -> io::Result<()> {
        assert!(!self.in_flight, "one checkpoint at a time");
        let sent = self.jobs.as_ref().is_some_and(|jobs| {
            jobs.send(Job::Write {
                number,
                piece,
                finish,
                marker,
            })
            .is_ok()
        });
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

    /// The sinks committed checkpoint `number`: the ones before it go (on
    /// the thread, before it writes the next).
    pub fn committed(&mut self, number: u64) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Committed(number));
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

/// `piece`'s buffer, emptied and made ready for the next piece: room for
/// half as much again as this one, in memory already (each page
/// written), so that the matching thread that encodes the next one meets
/// neither a growth of its buffer (a copy of all it wrote) nor the
/// kernel's first touch of fresh pages, which a large state's checkpoint
/// spent half its stall on (`BENCHMARKS.md`, "Session 68"). A run holds
/// so about one and a half of its checkpoint's size between checkpoints.
fn ready_for_next(mut piece: Vec<u8>) -> Vec<u8> {
    let want = piece.len().saturating_add(piece.len() / 2);
    piece.clear();
    if piece.capacity() < want {
        // (a new one rather than `reserve`, which copies the old bytes)
        piece = ready(want);
    }
    piece
}

/// An empty buffer with room for `len` bytes, each page of it written.
fn ready(len: usize) -> Vec<u8> {
    let mut buffer = Vec::new();
    if buffer.try_reserve_exact(len).is_err() {
        return Vec::new();
    }
    let spare = buffer.spare_capacity_mut();
    for page in spare.chunks_mut(4096) {
        page[0].write(0);
    }
    std::hint::black_box(spare);
    buffer
}

/// The first buffer of a run resumed from checkpoint `number` of `dir`:
/// ready ([`ready_for_next`]) for half as much again as that
/// checkpoint's pieces, so that the run's first checkpoint, too, meets
/// no growth and no fresh page (its cost moves to the start, before the
/// first event); empty when there is none, or its size cannot be read.
pub(crate) fn first_buffer(dir: &Path, number: u64) -> Vec<u8> {
    if number == 0 {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(store::cut_dir(dir, number)) else {
        return Vec::new();
    };
    let len: u64 = (entries.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("piece-"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let len = usize::try_from(len).unwrap_or(0);
    ready(len.saturating_add(len / 2))
}

/// Writes one engine's checkpoint `number` whole: in `DIR/part-N` its
/// piece (failing half-way with `fail`), then its marker; the folder
/// renamed to `DIR/cut-N`. Nothing is left behind when it fails.
fn write_one(
    dir: &Path,
    number: u64,
    piece: &[u8],
    marker: &[u8],
    fail: Option<&str>,
) -> io::Result<()> {
    let key = i64::try_from(number).unwrap_or(i64::MAX);
    let part = store::part_dir(dir, key);
    let result = store::write_file(&part, &store::piece_name(0), piece, fail)
        .and_then(|()| store::complete_part(dir, key, number, marker));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&part);
    }
    result
}

/// What a run says of the checkpoint it takes as it stops, on either
/// executor: taken in `dir` (the next run replays nothing), or not (the
/// next run goes on from the one before).
pub fn said_at_stop(dir: &Path, taken: bool) -> crate::Notice {
    let dir = dir.display();
    if taken {
        crate::Notice::line(
            crate::Level::Info,
            format!("cepheid: checkpoint taken in {dir} as the run stopped"),
        )
    } else {
        crate::Notice::line(crate::Level::Warning, format!(
            "warning: no checkpoint could be taken in {dir} as the run stopped: the next run goes on from the one before"
        ))
    }
}

/// Where checkpoint `number` of `dir` is, for messages.
pub fn path(dir: &Path, number: u64) -> PathBuf {
    store::cut_dir(dir, number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> Command {
        Command {
            events: "/data/events.jsonl".into(),
            format: "jsonl".into(),
            time: "event".into(),
            time_field: "ts".into(),
            output: Some("/data/out.jsonl".into()),
            late: None,
            shadow: None,
            audit: None,
            decisions: None,
        }
    }

    #[test]
    fn a_different_command_is_named() {
        let mut now = command();
        assert!(command().difference(&now).is_none());
        now.late = Some("/data/late".into());
        assert_eq!(
            command().difference(&now).map(|d| d.to_string()).as_deref(),
            Some("it was taken by another command (`Config::late` was -, now /data/late)")
        );
        now.late = None;
        now.shadow = Some("/data/shadow".into());
        assert_eq!(
            command().difference(&now).map(|d| d.to_string()).as_deref(),
            Some(
                "it was taken by another command (`Config::shadow_output` was -, now /data/shadow)"
            )
        );
        // (a checkpoint of before the shadow output reads as one without)
        let old = r#"{"events":"/e","format":"jsonl","time":"event","time_field":"ts","output":null,"late":null}"#;
        let old: Command = serde_json::from_str(old).unwrap();
        assert_eq!((old.shadow, old.audit), (None, None));
        now.shadow = None;
        now.audit = Some("/data/audit".into());
        assert_eq!(
            command().difference(&now).map(|d| d.to_string()).as_deref(),
            Some("it was taken by another command (`Config::audit` was -, now /data/audit)")
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
    fn the_thread_writes_one_checkpoint_at_a_time_and_the_previous_goes_once_committed() {
        let dir = std::env::temp_dir().join(format!("cepheid-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut writer = Writer::new(&dir, Box::new(|| {}), None).unwrap();
        assert!(writer.done(true).is_none(), "none in flight");
        let piece = Piece::of_one_engine(b"snapshot".to_vec(), Default::default());
        for number in [1, 2] {
            let mut bytes = piece.encode();
            bytes.truncate(bytes.len() - 4);
            let mut marker = Marker::new(number).encode();
            marker.truncate(marker.len() - 4);
            writer.send(number, bytes, marker).unwrap();
            assert!(writer.in_flight());
            let written = writer.done(true).expect("in flight");
            written.result.unwrap();
            assert!(!writer.in_flight());
            assert_eq!(written.bytes, store::bytes(&dir, number));
            let kept = store::kept(&dir).unwrap();
            assert_eq!(
                kept[0].pieces(),
                std::slice::from_ref(&piece),
                "the CRC-32 added on the thread"
            );
            assert_eq!(kept[0].marker().number(), number);
        }
        assert_eq!(
            store::complete(&dir).unwrap(),
            [2, 1],
            "kept until committed"
        );
        writer.committed(2);
        drop(writer);
        assert_eq!(store::complete(&dir).unwrap(), [2]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The buffer handed back, and a resumed run's first one, have room
    /// for half as much again as the checkpoint before (its pieces),
    /// empty; none without a checkpoint.
    #[test]
    fn a_buffer_comes_ready_for_a_checkpoint_larger_by_half() {
        let next = ready_for_next(vec![7; 10_000]);
        assert!(next.is_empty() && next.capacity() >= 15_000);
        let dir = std::env::temp_dir().join(format!("cepheid-ready-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(store::cut_dir(&dir, 3)).unwrap();
        std::fs::write(store::cut_dir(&dir, 3).join("piece-0"), vec![1; 3_000]).unwrap();
        std::fs::write(store::cut_dir(&dir, 3).join("piece-1"), vec![1; 1_000]).unwrap();
        std::fs::write(store::cut_dir(&dir, 3).join("marker"), vec![1; 50_000]).unwrap();
        let first = first_buffer(&dir, 3);
        assert!(first.is_empty() && (6_000..15_000).contains(&first.capacity()));
        assert_eq!(first_buffer(&dir, 0).capacity(), 0);
        assert_eq!(first_buffer(&dir, 4).capacity(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
