//! Sinks: where a run's records go, taking part in its checkpoints.
//!
//! The run formats each match, timeout and late event as the JSON line
//! `cepheid run` writes (`cli.md`; `jsonl::Formatter`) and
//! hands it to its [`Sink`] with its kind and the partition key's JSON
//! object. A checkpoint is taken in three steps:
//!
//! 1. [`Sink::prepare`]: everything written so far is made durable (a
//!    file is flushed, synced and measured: its length goes into the
//!    checkpoint, [`SinkState`]);
//! 2. the checkpoint is written (the previous one kept beside it until
//!    step 3 is done: `checkpoint::store`);
//! 3. [`Sink::commit`]: a transactional sink commits here, with the
//!    source's position in the same transaction; then the previous
//!    checkpoint is deleted.
//!
//! Step 2 is done on a thread of its own: the run goes on matching and
//! writing meanwhile when the sink takes writes before its commit
//! ([`Sink::writes_before_commit`]: the files do), and waits for it
//! otherwise (a transaction holds what was written before its commit).
//! The commit itself runs on the run's thread, once the file is durable,
//! unless the sink begins it there and ends it on a thread of its own
//! ([`Sink::commit_apart`]: a transactional Kafka sink).
//!
//! Resuming, [`Sink::recover`] is given the checkpoints kept (newest
//! first) and says which one matches what it committed: a sink that
//! crashed between steps 2 and 3 says the previous one. [`Files`] (the
//! output and late files, or standard output) truncates its files to the
//! newest one's lengths (or starts one rotated since empty) and says 0.
//!
//! Both executors write through one [`Output`]: one engine record by
//! record from its engine's callbacks ([`Sink::write`]), the dataflow
//! crate's workers a [`Block`] at a time ([`Sink::write_block`]), several
//! workers sharing one `Output` behind a lock. Its first error is the
//! run's, said once.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::background::Background;
use crate::rotate::{self, Current};
use crate::source::Position;
use crate::{Block, Config, Doing, End, Error, Notify};

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A complete match.
    Match,
    /// A partial match whose window expired (`timeouts`).
    Timeout,
    /// An event behind the watermark.
    Late,
    /// A match or timeout of a `shadow` pattern (the line says which),
    /// for the shadow output, never the output (`docs/rule-lab.md`,
    /// "Shadow rules").
    Shadow,
    /// An audit record of a change of rules (`crate::audit::RuleChange`),
    /// for the audit file (`Config::audit`).
    Audit,
    /// The decision of a scene on an event (`docs/decisions.md`), for the
    /// decisions file (`Config::decisions`).
    Decision,
}

impl Kind {
    /// Which of a run's outputs records of this kind go to.
    pub fn target(self) -> Target {
        match self {
            Kind::Match | Kind::Timeout => Target::Output,
            Kind::Late => Target::Late,
            Kind::Shadow => Target::Shadow,
            Kind::Audit => Target::Audit,
            Kind::Decision => Target::Decisions,
        }
    }

    /// Is a record of this kind among the latest records an observer is
    /// shown (a match, a timeout, a shadow pattern's)? Late events, audit
    /// records and decisions (one per event of a scene) are not.
    pub fn shown(self) -> bool {
        matches!(self, Kind::Match | Kind::Timeout | Kind::Shadow)
    }
}

/// One of a run's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Matches and timeouts (`Config::output`).
    Output,
    /// Late events (`Config::late`).
    Late,
    /// Shadow patterns' matches and timeouts (`Config::shadow_output`).
    Shadow,
    /// Audit records of changes of rules (`Config::audit`).
    Audit,
    /// Scenes' decisions (`Config::decisions`).
    Decisions,
}

/// What makes the records a [`Sink::prepare_apart`] counted durable, done
/// later on another thread (before the checkpoint's file is written); its
/// error is the checkpoint's.
pub type Durable = Box<dyn FnOnce() -> Result<(), SinkError> + Send>;

/// Called by a sink when a commit begun by [`Sink::commit_apart`] ends
/// (it wakes the run, which then asks [`Sink::commit_done`]).
pub type Wake = Box<dyn FnOnce() + Send>;

/// Why a sink could not write, flush, prepare, commit or recover.
#[derive(Debug)]
pub struct SinkError {
    /// Where it was writing, for messages (`out.jsonl`, `standard output`).
    pub target: String,
    /// Was it a side output, where late records (or shadow patterns'
    /// records, [`Kind::Shadow`]) go, not the records' output? (A side
    /// output closed is an error, never the quiet end of a closed
    /// output.)
    pub late: bool,
    /// The error.
    pub source: io::Error,
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write {}: {}", self.target, self.source)
    }
}

impl SinkError {
    /// A copy (its I/O error's kind and text), to say or show while the
    /// run keeps the error itself.
    fn copy(&self) -> SinkError {
        SinkError {
            target: self.target.clone(),
            late: self.late,
            source: io::Error::new(self.source.kind(), self.source.to_string()),
        }
    }

    /// Was the records' output closed (`| head`)? Then the run stops
    /// quietly: nothing is said, and it is not an error.
    pub(crate) fn closed(&self) -> bool {
        !self.late && self.source.kind() == io::ErrorKind::BrokenPipe
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What a sink keeps in a checkpoint to recover from it: a file sink's
/// lengths and the CRC-32 of its files' first bytes (which tell a file
/// rotated since), or bytes of a sink's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkState {
    /// The output file's length (`None`: not a regular file).
    pub output_len: Option<u64>,
    /// CRC-32 of its first bytes.
    pub output_head: Option<u32>,
    /// The late file's length.
    pub late_len: Option<u64>,
    /// CRC-32 of its first bytes.
    pub late_head: Option<u32>,
    /// The shadow output's length.
    pub shadow_len: Option<u64>,
    /// CRC-32 of its first bytes.
    pub shadow_head: Option<u32>,
    /// The audit file's length.
    pub audit_len: Option<u64>,
    /// CRC-32 of its first bytes.
    pub audit_head: Option<u32>,
    /// The decisions file's length.
    pub decisions_len: Option<u64>,
    /// CRC-32 of its first bytes.
    pub decisions_head: Option<u32>,
    /// A sink's own state.
    pub data: Vec<u8>,
}

/// A checkpoint kept in the folder, as a sink sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its number (counted from 1 over the runs that share the folder; 0
    /// for a checkpoint of an older version, which had none).
    pub number: u64,
    /// Where the source was.
    pub source: Position,
    /// What the sink said at [`Sink::prepare`].
    pub sink: SinkState,
}

/// A first start of a run with checkpoints (its folder keeps none): the
/// sink is asked, as on resuming, which checkpoint it committed; one that
/// committed checkpoints of its own (a standby with a folder of its own, a
/// disk replaced) refuses, rather than have every record committed a
/// second time. Asked first without taking over ([`Sink::committed`]), so
/// that a refusal fences no run that still writes; then
/// [`Sink::recover`], which does (a transactional sink aborts what an
/// instance before it left open). Both executors start so.
pub(crate) fn first_start(sink: &mut dyn Sink) -> Result<(), SinkError> {
    sink.committed(&[])?;
    sink.recover(&[]).map(|_| ())
}

/// Where a run's records go.
pub trait Sink: Send {
    /// Where records of `kind` go, for messages (`out.jsonl`,
    /// `standard output`, `kafka:alerts`).
    fn describe(&self, kind: Kind) -> String;

    /// Does it take late records? (If not they are only counted, never
    /// formatted.)
    fn takes_late(&self) -> bool {
        true
    }

    /// Does it take the records of `shadow` patterns ([`Kind::Shadow`])?
    /// A run whose rules have one refuses to start, and a change of rules
    /// that brings one is refused, when it does not: no shadow record is
    /// ever lost unsaid. No by default.
    fn takes_shadow(&self) -> bool {
        false
    }

    /// Does it take audit records of changes of rules ([`Kind::Audit`])?
    /// A run with an audit file (`Config::audit`) and a sink that does not
    /// is refused before it starts. No by default.
    fn takes_audit(&self) -> bool {
        false
    }

    /// Does it take the decisions of scenes ([`Kind::Decision`])? A run
    /// with a decisions file (`Config::decisions`) and a sink that does
    /// not is refused before it starts. No by default.
    fn takes_decisions(&self) -> bool {
        false
    }

    /// One record: its kind, the partition key's JSON object (`{"user":
    /// "bob"}`; empty for a late event) and its JSON text followed by a
    /// newline, the line `cepheid run` writes.
    fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) -> Result<(), SinkError>;

    /// The records of `block`, in order (those of kind [`Kind::Late`] only
    /// when it [takes late records](Sink::takes_late)); stops at the first
    /// error. By default one at a time ([`Sink::write`]); [`Files`] writes
    /// the block's bytes at once.
    fn write_block(&mut self, block: &Block) -> Result<(), SinkError> {
        let late = self.takes_late();
        for r in block.records() {
            if r.kind != Kind::Late || late {
                self.write(r.kind, r.key, r.line)?;
            }
        }
        Ok(())
    }

    /// Makes what was written visible (a live stream's records go out
    /// now).
    fn flush(&mut self) -> Result<(), SinkError>;

    /// Sends what was written on its way now without waiting for it to
    /// be written (a live input waits: its records go out while the run
    /// goes on); [`Sink::flush`] still makes it written. By default,
    /// `flush`.
    fn hand_over(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    /// Before checkpoint number `checkpoint` is written: makes what was
    /// written durable and says what the checkpoint keeps of the sink.
    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError>;

    /// [`Sink::prepare`] in two parts: what the checkpoint keeps, said
    /// now, and what makes the records it counts durable ([`Durable`]),
    /// which the run then does on its checkpoint thread, before the
    /// checkpoint's file is written, while it goes on matching (a file's
    /// `fdatasync`: `cepheid serve`'s decisions, tens of megabytes
    /// between checkpoints, were synced on the run's thread). Only with
    /// [`Sink::writes_before_commit`]. By default all of `prepare` now,
    /// nothing after.
    fn prepare_apart(
        &mut self,
        checkpoint: u64,
    ) -> Result<(SinkState, Option<Durable>), SinkError> {
        self.prepare(checkpoint).map(|state| (state, None))
    }

    /// Checkpoint `checkpoint` is durable, the source at `source`: a
    /// transactional sink commits here (with `source` in the same
    /// transaction).
    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        let _ = (checkpoint, source);
        Ok(())
    }

    /// [`Sink::commit`] begun now and finished meanwhile, while the run
    /// goes on writing (what it writes belongs to the next checkpoint):
    /// `true` when it committed now, `false` when the commit goes on,
    /// `done` called once it ended; [`Sink::commit_done`] then says how.
    /// Only with [`Sink::writes_before_commit`], one at a time, the next
    /// checkpoint prepared only after it is done. By default `commit`, now.
    fn commit_apart(
        &mut self,
        checkpoint: u64,
        source: &Position,
        done: Wake,
    ) -> Result<bool, SinkError> {
        let _ = done;
        self.commit(checkpoint, source).map(|()| true)
    }

    /// The end of the commit [`Sink::commit_apart`] began: `None` while it
    /// goes on (waited for with `wait`), then its result, once. By default
    /// done.
    fn commit_done(&mut self, wait: bool) -> Option<Result<(), SinkError>> {
        let _ = wait;
        Some(Ok(()))
    }

    /// The position of a checkpoint taken on several workers, each of
    /// whose sources read its own splits (`shares`, one per worker that
    /// has a source; disjoint): what [`Sink::commit`] and
    /// [`Sink::recover`] are given for it. By default one share is the
    /// position and none is [`Position::None`]; a sink that commits
    /// positions of several shares puts them together (a Kafka sink:
    /// every partition's offset).
    fn join_positions(&self, shares: &[Position]) -> Result<Position, SinkError> {
        match shares {
            [] => Ok(Position::None),
            [one] => Ok(one.clone()),
            _ => Err(SinkError {
                target: self.describe(Kind::Match),
                late: false,
                source: io::Error::other(
                    "this sink cannot commit the positions of several sources",
                ),
            }),
        }
    }

    /// May records be written after [`Sink::prepare`] of a checkpoint and
    /// before its [`Sink::commit`] (they belong to the next checkpoint)?
    /// Only then does the run go on matching while the checkpoint's file
    /// is written (on a thread of its own); otherwise it waits for the
    /// file at each checkpoint. A sink whose commit takes what was
    /// written before it (a transaction) says no: the default.
    fn writes_before_commit(&self) -> bool {
        false
    }

    /// Does the sink deliver only what a checkpoint commits ([`Sink::commit`]
    /// makes records visible: a transaction)? Then a run without a
    /// checkpoint folder would deliver nothing, and it is refused before
    /// it starts ([`Conflict::SinkNeedsCheckpoints`](crate::Conflict::SinkNeedsCheckpoints)).
    /// No by default.
    fn commits_with_checkpoints(&self) -> bool {
        false
    }

    /// Must what the end of the input releases (the end of event time:
    /// timeouts, waiting events) be committed with a checkpoint taken
    /// after it? A transactional sink, which cannot take back what it
    /// committed, says yes: the run then takes a last checkpoint at the
    /// end (resumed, its event time is at its end: the largest time seen,
    /// or infinity with `flush_at_end`). A file sink says no (the
    /// default): the last checkpoint is before the end, and a resumed run
    /// truncates the files to it and ends the same way, or goes on with
    /// the grown input.
    fn commits_at_end(&self) -> bool {
        false
    }

    /// The run's [`Notify`], given once when the run
    /// starts: what the sink has to say of its own (a server that stops
    /// answering while a call waits for it, and answers again) goes
    /// there, at once, even from inside a call the run waits for. Ignored
    /// by default.
    fn notify_to(&mut self, notify: crate::Notify) {
        let _ = notify;
    }

    /// Resuming: which of `kept` (newest first) matches what the sink
    /// committed; the sink goes back to it. `kept.len()` (none of them)
    /// when the sink committed nothing yet, for a run from a
    /// [`Source`](crate::Source): it starts from the source's beginning,
    /// as if no checkpoint were kept (a sink says so only when that is
    /// right: the kept checkpoints' first interval never committed).
    /// Also asked when the folder keeps none (`kept` empty, a first
    /// start): a sink that finds checkpoints of its own committed (another
    /// folder's: a standby taking over with an empty one) refuses with an
    /// error, rather than have every record committed a second time.
    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError>;

    /// Resuming beside the process that writes (on a
    /// [`Cluster`](crate::Cluster) of several processes, process 0's sink
    /// takes every record; the others' are never written): which of `kept`
    /// (newest first) the sink committed, as [`Sink::recover`] would say,
    /// read without going back to it or taking anything over (a
    /// transactional sink fences no one). Every process must resume from
    /// the one process 0's sink chooses. By default the newest: a sink that
    /// commits nothing of its own chooses no other. (A sink that chooses
    /// another one with [`Sink::recover`] and does not say it here makes
    /// the processes refuse to start, naming the cuts they would resume,
    /// and start at the next try: process 0 deleted the cuts after its
    /// choice.) Also asked on a first start, before [`Sink::recover`],
    /// with `kept` empty: a refusal then takes nothing over.
    fn committed(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        let _ = kept;
        Ok(0)
    }
}

/// Where [`Files`] makes the system calls that write its outputs (the
/// records' and each side output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writing {
    /// Each on a thread of its own (`cepheid-write`), which the caller
    /// hands blocks of 256 KiB: for one thread that makes the records one at a
    /// time ([`Sink::write`]: one engine), which then only copies each.
    Thread,
    /// On the thread that hands it a [`Block`] ([`Sink::write_block`]),
    /// straight from the block when it is full ([`Block::FULL`]): for
    /// several threads that share the files behind a lock, each writing
    /// the blocks it formatted while they are still in its core's cache
    /// (the dataflow crate's workers), so that no one thread writes every
    /// record.
    Caller,
}

/// The records' output of [`Files`] aside, one output a run may have
/// (`Config::late`, `shadow_output`, `audit`, `decisions`): a file when one
/// is given, written as the records' output is ([`Writing`]: on a thread
/// of its own for one engine, so that a service's run does not make a
/// `write` and look at the path of its decisions file at each batch).
struct Side {
    out: Option<Out>,
    /// For messages: its path, or what it is (`the late file`).
    name: String,
    /// The regular file, with its path (for checkpoints: synced, measured,
    /// truncated).
    file: Option<(PathBuf, Current)>,
}

/// The outputs beside the records' one, in the order of [`Side`]s in
/// [`Files`]: each with its flag (for messages) and what it is called
/// when the run has none.
const SIDES: [(Target, &str, &str); 4] = [
    (Target::Late, "`Config::late`", "the late file"),
    (
        Target::Shadow,
        "`Config::shadow_output`",
        "the shadow output",
    ),
    (Target::Audit, "`Config::audit`", "the audit file"),
    (
        Target::Decisions,
        "`Config::decisions`",
        "the decisions file",
    ),
];

impl Target {
    /// Its place in [`SIDES`] (`None`: the records' output).
    fn side(self) -> Option<usize> {
        match self {
            Target::Output => None,
            Target::Late => Some(0),
            Target::Shadow => Some(1),
            Target::Audit => Some(2),
            Target::Decisions => Some(3),
        }
    }

    /// Its path in `config` (`None`: the run has none; the records'
    /// output is `Config::output`).
    fn path(self, config: &Config) -> Option<&PathBuf> {
        match self {
            Target::Output => config.output.as_ref(),
            Target::Late => config.late.as_ref(),
            Target::Shadow => config.shadow_output.as_ref(),
            Target::Audit => config.audit.as_ref(),
            Target::Decisions => config.decisions.as_ref(),
        }
    }
}

/// The sink of `cepheid run`: matches and timeouts to a file (opened
/// again when rotated, `rotate.rs`) or standard output, written on a
/// thread of its own or by its callers ([`Writing`]); late events, the
/// records of `shadow` patterns, audit records and decisions each to their
/// file when one is given (its side outputs). With a checkpoint
/// folder its regular files are locked (`lock.rs`), synced and measured
/// at each checkpoint, and truncated to the checkpoint's lengths on
/// resuming.
pub struct Files {
    out: Out,
    out_name: String,
    /// The regular file of the records, with its path.
    output_file: Option<(PathBuf, Current)>,
    /// The side outputs, in the order of [`SIDES`].
    sides: [Side; 4],
    /// The outputs' locks, held as long as they are written.
    _locks: Vec<File>,
    /// The checkpoint folder, named in what [`Sink::recover`] says.
    checkpoint: Option<PathBuf>,
    notify: Option<Notify>,
}

/// The records' output of [`Files`] (and each side output), as
/// [`Writing`] says. Each returns
/// the error that stopped it again at every later call (the thread's as a
/// `BufWriter`'s over a failing writer; the caller's the same).
enum Out {
    Thread(Background),
    Caller(
        BufWriter<Box<dyn Write + Send>>,
        Option<(io::ErrorKind, String)>,
    ),
}

impl Out {
    /// `out` written on a thread of its own.
    fn thread(out: Box<dyn Write + Send>) -> Result<Out, Error> {
        Background::new(out)
            .map(Out::Thread)
            .map_err(|e| Error::Io {
                doing: Doing::StartThread,
                path: String::new(),
                source: e,
            })
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Out::Thread(out) => out.write_all(bytes),
            Out::Caller(out, failed) => Out::stopping(failed, || out.write_all(bytes)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Thread(out) => out.flush(),
            Out::Caller(out, failed) => Out::stopping(failed, || out.flush()),
        }
    }

    fn hand_over(&mut self) -> io::Result<()> {
        match self {
            Out::Thread(out) => out.hand_over(),
            Out::Caller(out, failed) => Out::stopping(failed, || out.flush()),
        }
    }

    /// `call`, unless an error stopped the output: then that one again.
    fn stopping(
        failed: &mut Option<(io::ErrorKind, String)>,
        call: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        if let Some((kind, text)) = failed {
            return Err(io::Error::new(*kind, text.clone()));
        }
        call().inspect_err(|e| *failed = Some((e.kind(), e.to_string())))
    }
}

impl Files {
    /// Opens the outputs of `config`, `Config::output` (`None`: standard
    /// output) and `Config::late`, created empty (or, with `keep`, kept as
    /// they are until [`Sink::recover`] truncates them). With
    /// `Config::checkpoint`, another run writing one of them is refused
    /// ([`Error::OutputInUse`]) before it is touched, and a regular file
    /// opened again after a rotation is locked as the first one was.
    pub fn open(config: &Config, keep: bool, writing: Writing) -> Result<Files, Error> {
        let lock = config.checkpoint.is_some();
        let mut locks = Vec::new();
        if lock {
            let sides = (SIDES.iter())
                .filter_map(|(to, flag, _)| Some((to.path(config)?.as_path(), *flag)));
            for (path, flag) in
                std::iter::once((config.output_path(), "`Config::output`")).chain(sides)
            {
                locks.extend(crate::lock::output(path, flag)?);
            }
        }
        // A regular file (or none yet) is written by appending and opened
        // again when rotated; a device or a FIFO is created as before,
        // neither synced nor measured (written as standard output is).
        let open = |path: &PathBuf| -> Result<_, Error> {
            let (file, current) = rotate::open(path, keep, lock).map_err(|e| Error::Io {
                doing: Doing::Create,
                path: path.display().to_string(),
                source: e,
            })?;
            Ok((
                file,
                current.map(|c| (path.clone(), c)),
                path.display().to_string(),
            ))
        };
        let (out, output_file, out_name) = match &config.output {
            None => (
                Box::new(io::stdout()) as Box<dyn Write + Send>,
                None,
                "standard output".to_string(),
            ),
            Some(path) => open(path)?,
        };
        let out = match writing {
            Writing::Thread => Out::thread(out)?,
            Writing::Caller => Out::Caller(BufWriter::with_capacity(Block::FULL, out), None),
        };
        let side = |(to, _, unnamed): (Target, &str, &str)| -> Result<Side, Error> {
            Ok(match to.path(config) {
                Some(path) => {
                    let (file, current, name) = open(path)?;
                    let out = match writing {
                        Writing::Thread => Out::thread(file)?,
                        Writing::Caller => Out::Caller(BufWriter::new(file), None),
                    };
                    Side {
                        out: Some(out),
                        name,
                        file: current,
                    }
                }
                None => Side {
                    out: None,
                    name: unnamed.to_string(),
                    file: None,
                },
            })
        };
        let [late, shadow, audit, decisions] = SIDES;
        Ok(Files {
            out,
            out_name,
            output_file,
            sides: [side(late)?, side(shadow)?, side(audit)?, side(decisions)?],
            _locks: locks,
            checkpoint: config.checkpoint.clone(),
            notify: None,
        })
    }

    /// The file of output `to`, with its path (`None`: not a regular
    /// file, or the run has none).
    fn file(&self, to: Target) -> &Option<(PathBuf, Current)> {
        match to.side() {
            None => &self.output_file,
            Some(i) => &self.sides[i].file,
        }
    }

    fn name(&self, to: Target) -> &str {
        match to.side() {
            None => &self.out_name,
            Some(i) => &self.sides[i].name,
        }
    }

    fn error(&self, to: Target, source: io::Error) -> SinkError {
        SinkError {
            target: self.name(to).to_string(),
            late: to != Target::Output,
            source,
        }
    }

    /// Writes `bytes`, whole records, to the output `to` (nothing when it
    /// has none).
    #[inline]
    fn write_bytes(&mut self, to: Target, bytes: &[u8]) -> Result<(), SinkError> {
        let written = match to.side() {
            None => self.out.write_all(bytes),
            Some(i) => (self.sides[i].out.as_mut()).map_or(Ok(()), |o| o.write_all(bytes)),
        };
        written.map_err(|e| self.error(to, e))
    }

    /// Does the run have output `to`?
    fn has(&self, to: Target) -> bool {
        to.side().map_or(true, |i| self.sides[i].out.is_some())
    }
}

/// The length and first bytes' CRC-32 of the file open now under an
/// output's name, synced.
impl Files {
    /// Flushes the output and the side outputs (`wait`: for their writers
    /// to write them; else they are handed over, `Out::hand_over`).
    fn send_out(&mut self, wait: bool) -> Result<(), SinkError> {
        let sent = if wait {
            self.out.flush()
        } else {
            self.out.hand_over()
        };
        sent.map_err(|e| self.error(Target::Output, e))?;
        for (i, (to, ..)) in SIDES.iter().enumerate() {
            if let Some(out) = &mut self.sides[i].out {
                let sent = if wait { out.flush() } else { out.hand_over() };
                if let Err(e) = sent {
                    return Err(self.error(*to, e));
                }
            }
        }
        Ok(())
    }

    /// The state of the five outputs measured (output, late, shadow,
    /// audit, decisions: length and first bytes' CRC-32 of each).
    fn state(measured: [(Option<u64>, Option<u32>); 5]) -> SinkState {
        let [output, late, shadow, audit, decisions] = measured;
        SinkState {
            output_len: output.0,
            output_head: output.1,
            late_len: late.0,
            late_head: late.1,
            shadow_len: shadow.0,
            shadow_head: shadow.1,
            audit_len: audit.0,
            audit_head: audit.1,
            decisions_len: decisions.0,
            decisions_head: decisions.1,
            data: Vec::new(),
        }
    }
}

fn measure(file: &Option<(PathBuf, Current)>) -> io::Result<(Option<u64>, Option<u32>)> {
    match file {
        None => Ok((None, None)),
        Some((_, file)) => rotate::measure(file).map(|(len, head)| (Some(len), head)),
    }
}

impl Sink for Files {
    fn describe(&self, kind: Kind) -> String {
        self.name(kind.target()).to_string()
    }

    fn takes_late(&self) -> bool {
        self.has(Target::Late)
    }

    fn takes_shadow(&self) -> bool {
        self.has(Target::Shadow)
    }

    fn takes_audit(&self) -> bool {
        self.has(Target::Audit)
    }

    fn takes_decisions(&self) -> bool {
        self.has(Target::Decisions)
    }

    /// Its commit does nothing: what is written before it is after the
    /// checkpoint's lengths, truncated on resuming.
    fn writes_before_commit(&self) -> bool {
        true
    }

    fn notify_to(&mut self, notify: Notify) {
        self.notify = Some(notify);
    }

    #[inline]
    fn write(&mut self, kind: Kind, _key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        self.write_bytes(kind.target(), record)
    }

    /// Its bytes at once (each run of records bound for one output when
    /// it holds records of several outputs).
    fn write_block(&mut self, block: &Block) -> Result<(), SinkError> {
        let bytes = block.bytes();
        if block.beside() == 0 {
            return self.write_bytes(Target::Output, bytes);
        }
        let (mut start, mut end, mut to) = (0, 0, Target::Output);
        for r in block.records() {
            let target = r.kind.target();
            if target != to && end > start {
                self.write_bytes(to, &bytes[start..end])?;
                start = end;
            }
            to = target;
            end += r.line.len();
        }
        self.write_bytes(to, &bytes[start..end])
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.send_out(true)
    }

    /// Each output written on a thread of its own gets what was written
    /// (its writer writes it at once); one written by the caller is
    /// flushed.
    fn hand_over(&mut self) -> Result<(), SinkError> {
        self.send_out(false)
    }

    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        // (the files open now under the names: a rotated one was
        // reopened by the flush)
        self.flush()?;
        let measured = |to: Target| measure(self.file(to)).map_err(|e| self.error(to, e));
        Ok(Files::state([
            measured(Target::Output)?,
            measured(Target::Late)?,
            measured(Target::Shadow)?,
            measured(Target::Audit)?,
            measured(Target::Decisions)?,
        ]))
    }

    /// Flushed and measured now; each file synced by [`Durable`] through
    /// a handle of its own (the writer goes on appending meanwhile: what
    /// it appends is past the lengths measured).
    fn prepare_apart(
        &mut self,
        _checkpoint: u64,
    ) -> Result<(SinkState, Option<Durable>), SinkError> {
        self.flush()?;
        let mut handles: Vec<(SinkError, File)> = Vec::new();
        let mut measured = |to: Target| -> Result<(Option<u64>, Option<u32>), SinkError> {
            let Some((_, current)) = self.file(to) else {
                return Ok((None, None));
            };
            let ((len, head), handle) =
                rotate::measure_unsynced(current).map_err(|e| self.error(to, e))?;
            // (the error it would be, its source filled in if it comes)
            handles.push((self.error(to, io::Error::other("")), handle));
            Ok((Some(len), head))
        };
        let state = Files::state([
            measured(Target::Output)?,
            measured(Target::Late)?,
            measured(Target::Shadow)?,
            measured(Target::Audit)?,
            measured(Target::Decisions)?,
        ]);
        let durable: Durable = Box::new(move || {
            for (mut error, handle) in handles {
                if let Err(source) = handle.sync_data() {
                    error.source = source;
                    return Err(error);
                }
            }
            Ok(())
        });
        Ok((state, Some(durable)))
    }

    /// Truncates each regular file to its length at the newest of `kept`;
    /// one shorter than that, or with other first bytes, was rotated since
    /// (logrotate's `create` or `copytruncate`): it is started empty and
    /// the records after the checkpoint go into it (the rotated file may
    /// hold some of them too), with a warning (`rotate.rs`; it was refused
    /// for ever: issue 26).
    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        let Some(newest) = kept.first() else {
            return Ok(0);
        };
        let state = &newest.sink;
        let files = [
            (Target::Output, state.output_len, state.output_head),
            (Target::Late, state.late_len, state.late_head),
            (Target::Shadow, state.shadow_len, state.shadow_head),
            (Target::Audit, state.audit_len, state.audit_head),
            (Target::Decisions, state.decisions_len, state.decisions_head),
        ];
        for (to, then, head) in files {
            let Some((path, current)) = self.file(to) else {
                continue;
            };
            let rotated = then.and_then(|then| rotate::rotated_since(path, then, head));
            if let (Some(rotated), Some(notify)) = (&rotated, &self.notify) {
                let folder = match &self.checkpoint {
                    Some(dir) => format!(" in {}", dir.display()),
                    None => String::new(),
                };
                notify.say(
                    crate::Level::Warning,
                    format!("warning: checkpoint{folder}: {rotated}"),
                );
            }
            let len = if rotated.is_some() {
                0
            } else {
                then.unwrap_or(0)
            };
            rotate::lock(current)
                .set_len(len)
                .map_err(|e| self.error(to, e))?;
        }
        Ok(0)
    }
}

/// A run's [`Sink`] as its matching stage writes to it: from inside an
/// engine's callbacks, which cannot fail, or from several threads behind a
/// lock (the dataflow crate's workers, each writing its own blocks). The
/// first error is kept and said once, in the run's words (`error: cannot
/// write out.jsonl: ...`; a closed standard output, `| head`, is no error:
/// nothing is said); what is written after it is dropped, and
/// [`Output::end`] makes it the run's end.
pub struct Output {
    sink: Box<dyn Sink>,
    notify: Notify,
    error: Option<SinkError>,
    /// Written since the last flush?
    written: bool,
}

impl Output {
    /// Records to `sink`; its first error said to `notify`.
    pub fn new(sink: Box<dyn Sink>, notify: Notify) -> Output {
        Output {
            sink,
            notify,
            error: None,
            written: false,
        }
    }

    /// The sink, to ask it what it is.
    pub fn sink(&self) -> &dyn Sink {
        self.sink.as_ref()
    }

    /// Did writing fail (or the output close)?
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Keeps `e` as the output's error when it is the first (said, unless
    /// the output was closed); returns a copy, to show or stop with.
    #[cold]
    pub fn fail(&mut self, e: SinkError) -> SinkError {
        let copy = e.copy();
        if self.error.is_none() {
            if !e.closed() {
                self.notify.say(crate::Level::Error, format!("error: {e}"));
            }
            self.error = Some(e);
        }
        copy
    }

    /// The first error, again.
    fn failure(&self) -> Result<(), SinkError> {
        match &self.error {
            Some(e) => Err(e.copy()),
            None => Ok(()),
        }
    }

    /// One record ([`Sink::write`]); nothing after an error.
    #[inline]
    pub fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.written = true;
        if let Err(e) = self.sink.write(kind, key, record) {
            self.fail(e);
        }
    }

    /// The records of `block` ([`Sink::write_block`]); nothing after an
    /// error.
    pub fn write_block(&mut self, block: &Block) {
        if self.error.is_some() || block.is_empty() {
            return;
        }
        self.written = true;
        if let Err(e) = self.sink.write_block(block) {
            self.fail(e);
        }
    }

    /// Makes what was written visible ([`Sink::flush`]); the first error.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.failure()?;
        self.written = false;
        match self.sink.flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Sends what was written on its way ([`Sink::hand_over`]): a live
    /// input's batch, its writer not waited for. What was written is
    /// still flushed by the next [`Output::flush_written`].
    pub(crate) fn hand_over(&mut self) -> Result<(), SinkError> {
        self.failure()?;
        match self.sink.hand_over() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// [`Output::flush`] when anything was written since the last one (a
    /// live input waits): an error is kept.
    pub fn flush_written(&mut self) {
        if self.written {
            let _ = self.flush();
        }
    }

    /// Before checkpoint `checkpoint` ([`Sink::prepare`]); the first
    /// error.
    pub fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError> {
        self.failure()?;
        self.written = false;
        match self.sink.prepare(checkpoint) {
            Ok(state) => Ok(state),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Prepares for checkpoint `checkpoint` ([`Sink::prepare_apart`]): its
    /// state now, and what makes it durable, to do before its file is
    /// written. A sink that takes no writes before its commit prepares
    /// whole ([`Sink::prepare`]).
    pub(crate) fn prepare_apart(
        &mut self,
        checkpoint: u64,
    ) -> Result<(SinkState, Option<Durable>), SinkError> {
        if !self.sink.writes_before_commit() {
            return self.prepare(checkpoint).map(|state| (state, None));
        }
        self.failure()?;
        self.written = false;
        match self.sink.prepare_apart(checkpoint) {
            Ok(prepared) => Ok(prepared),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Checkpoint `checkpoint` is durable, the source at `source`
    /// ([`Sink::commit`]).
    pub fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        match self.sink.commit(checkpoint, source) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Begins committing checkpoint `checkpoint` ([`Sink::commit_apart`]):
    /// `true` when it is committed now; the first error.
    pub(crate) fn commit_apart(
        &mut self,
        checkpoint: u64,
        source: &Position,
        done: Wake,
    ) -> Result<bool, SinkError> {
        match self.sink.commit_apart(checkpoint, source, done) {
            Ok(now) => Ok(now),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The end of the commit begun by [`Output::commit_apart`]
    /// ([`Sink::commit_done`]); its error is kept as the first.
    pub(crate) fn commit_done(&mut self, wait: bool) -> Option<Result<(), SinkError>> {
        match self.sink.commit_done(wait)? {
            Ok(()) => Some(Ok(())),
            Err(e) => Some(Err(self.fail(e))),
        }
    }

    /// The run ends as `end` says: the output flushed, and the run's end
    /// and whether it was flushed then. Its error, when writing failed, is
    /// the run's ([`End::Failed`], said when it happened), and a closed
    /// output ends it quietly ([`End::OutputClosed`]).
    pub fn end(&mut self, end: End) -> (End, bool) {
        let end = match self.error.take() {
            Some(e) if e.closed() => return (End::OutputClosed, true),
            Some(e) => {
                let flushed = self.sink.flush().is_ok();
                return (End::Failed(Error::Sink(e)), flushed);
            }
            None => end,
        };
        if let End::OutputClosed = end {
            return (end, true);
        }
        match self.flush() {
            Ok(()) => (end, true),
            Err(e) if e.closed() => (End::OutputClosed, true),
            Err(_) => match self.error.take() {
                Some(e) => (End::Failed(Error::Sink(e)), false),
                None => (end, false),
            },
        }
    }
}
