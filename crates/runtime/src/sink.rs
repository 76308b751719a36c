//! Sinks: where a run's records go, taking part in its checkpoints.
//!
//! The run formats each match, timeout and late event as the JSON line
//! `cepheid run` writes (`cli.md`; `cepheid_engine::io::Formatter`) and
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
//! The commit itself runs on the run's thread, once the file is durable.
//!
//! Resuming, [`Sink::recover`] is given the checkpoints kept (newest
//! first) and says which one matches what it committed: a sink that
//! crashed between steps 2 and 3 says the previous one. [`Files`] (the
//! output and late files, or standard output) truncates its files to the
//! newest one's lengths and says 0.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::background::Background;
use crate::rotate::{self, Current};
use crate::source::Position;
use crate::{Config, Doing, Error};

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A complete match.
    Match,
    /// A partial match whose window expired (`timeouts`).
    Timeout,
    /// An event behind the watermark.
    Late,
}

/// Why a sink could not write, flush, prepare, commit or recover.
#[derive(Debug)]
pub struct SinkError {
    /// Where it was writing, for messages (`out.jsonl`, `standard output`).
    pub target: String,
    /// Was it where late records go?
    pub late: bool,
    /// The error.
    pub source: io::Error,
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write {}: {}", self.target, self.source)
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

    /// One record: its kind, the partition key's JSON object (`{"user":
    /// "bob"}`; empty for a late event) and its JSON text followed by a
    /// newline, the line `cepheid run` writes.
    fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) -> Result<(), SinkError>;

    /// Makes what was written visible (a live stream's records go out
    /// now).
    fn flush(&mut self) -> Result<(), SinkError>;

    /// Before checkpoint number `checkpoint` is written: makes what was
    /// written durable and says what the checkpoint keeps of the sink.
    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError>;

    /// Checkpoint `checkpoint` is durable, the source at `source`: a
    /// transactional sink commits here (with `source` in the same
    /// transaction).
    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        let _ = (checkpoint, source);
        Ok(())
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

    /// The run's [`Notify`](crate::Notify), given once when the run
    /// starts: what the sink has to say of its own (a server that stops
    /// answering while a call waits for it, and answers again) goes
    /// there, at once, even from inside a call the run waits for. Ignored
    /// by default.
    fn notify_to(&mut self, notify: crate::Notify) {
        let _ = notify;
    }

    /// Resuming: which of `kept` (newest first, never empty) matches what
    /// the sink committed; the sink goes back to it. `kept.len()` (none of
    /// them) when the sink committed nothing yet, for a run from a
    /// [`Source`](crate::Source): it starts from the source's beginning,
    /// as if no checkpoint were kept (a sink says so only when that is
    /// right: the kept checkpoints' first interval never committed).
    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError>;
}

/// The sink of `cepheid run`: matches and timeouts to a file (opened
/// again when rotated, `rotate.rs`) or standard output, written on a
/// thread of its own (`background.rs`); late events to a file when one
/// is given.
pub struct Files {
    out: Background,
    out_name: String,
    late: Option<BufWriter<Box<dyn Write + Send>>>,
    late_name: String,
    /// The regular files (for checkpoints: synced, measured, truncated).
    output_file: Option<Current>,
    late_file: Option<Current>,
}

impl Files {
    /// Opens `output` (`None`: standard output) and `late`, created empty
    /// (or, with `keep`, kept as they are until [`Sink::recover`]
    /// truncates them); with `checkpoints`, a regular file opened again
    /// after a rotation is locked as the first one was.
    pub fn open(
        output: Option<&Path>,
        late: Option<&Path>,
        checkpoints: bool,
        keep: bool,
    ) -> Result<Files, Error> {
        // A regular file (or none yet) is written by appending and opened
        // again when rotated; a device or a FIFO is created as before,
        // neither synced nor measured (written as standard output is).
        let open = |path: &Path| -> Result<rotate::Opened, Error> {
            rotate::open(path, keep, checkpoints).map_err(|e| Error::Io {
                doing: Doing::Create,
                path: path.display().to_string(),
                source: e,
            })
        };
        let (out, output_file, out_name): (Box<dyn Write + Send>, _, _) = match output {
            None => (Box::new(io::stdout()), None, "standard output".to_string()),
            Some(path) => {
                let (file, current) = open(path)?;
                (file, current, path.display().to_string())
            }
        };
        let out = Background::new(out).map_err(|e| Error::Io {
            doing: Doing::StartThread,
            path: String::new(),
            source: e,
        })?;
        let (late, late_file, late_name) = match late {
            Some(path) => {
                let (file, current) = open(path)?;
                (
                    Some(BufWriter::new(file)),
                    current,
                    path.display().to_string(),
                )
            }
            None => (None, None, "the late file".to_string()),
        };
        Ok(Files {
            out,
            out_name,
            late,
            late_name,
            output_file,
            late_file,
        })
    }

    /// The files of `config`.
    pub fn of(config: &Config, keep: bool) -> Result<Files, Error> {
        Files::open(
            config.output.as_deref(),
            config.late.as_deref(),
            config.checkpoint.is_some(),
            keep,
        )
    }

    fn error(&self, late: bool, source: io::Error) -> SinkError {
        let target = if late {
            &self.late_name
        } else {
            &self.out_name
        };
        SinkError {
            target: target.clone(),
            late,
            source,
        }
    }
}

/// The length and first bytes' CRC-32 of the file open now under an
/// output's name, synced.
fn measure(file: &Option<Current>) -> io::Result<(Option<u64>, Option<u32>)> {
    match file {
        None => Ok((None, None)),
        Some(file) => rotate::measure(file).map(|(len, head)| (Some(len), head)),
    }
}

impl Sink for Files {
    fn describe(&self, kind: Kind) -> String {
        match kind {
            Kind::Late => self.late_name.clone(),
            _ => self.out_name.clone(),
        }
    }

    fn takes_late(&self) -> bool {
        self.late.is_some()
    }

    /// Its commit does nothing: what is written before it is after the
    /// checkpoint's lengths, truncated on resuming.
    fn writes_before_commit(&self) -> bool {
        true
    }

    fn write(&mut self, kind: Kind, _key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        match kind {
            Kind::Late => match &mut self.late {
                Some(late) => late.write_all(record).map_err(|e| (true, e)),
                None => Ok(()),
            },
            _ => self.out.write_all(record).map_err(|e| (false, e)),
        }
        .map_err(|(late, e)| self.error(late, e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| self.error(false, e))?;
        if let Some(late) = &mut self.late {
            late.flush().map_err(|e| (true, e))
        } else {
            Ok(())
        }
        .map_err(|(late, e)| self.error(late, e))
    }

    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        // (the files open now under the names: a rotated one was
        // reopened by the flush)
        self.flush()?;
        let (output_len, output_head) =
            measure(&self.output_file).map_err(|e| self.error(false, e))?;
        let (late_len, late_head) = measure(&self.late_file).map_err(|e| self.error(true, e))?;
        Ok(SinkState {
            output_len,
            output_head,
            late_len,
            late_head,
            data: Vec::new(),
        })
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        let Some(newest) = kept.first() else {
            return Ok(0);
        };
        let files = [
            (&self.output_file, newest.sink.output_len, false),
            (&self.late_file, newest.sink.late_len, true),
        ];
        for (file, len, late) in files {
            if let Some(file) = file {
                rotate::lock(file)
                    .set_len(len.unwrap_or(0))
                    .map_err(|e| self.error(late, e))?;
            }
        }
        Ok(0)
    }
}
