//! A transactional [`KafkaSink`] whose checkpoints commit apart from the
//! run (issue 63): the run's thread (`cepheid serve` answers from it)
//! does not wait for a transaction's commit, nor for the flush before it.
//!
//! A Kafka producer has one transaction open at a time, and the
//! transaction of checkpoint N holds exactly the records written before
//! N's prepare. So from [`Sink::prepare_apart`] on, the records written
//! are held here, in memory, in order; [`Sink::commit_apart`] hands the
//! sink to a thread of its own (`cepheid-kafka-commit`), which flushes
//! the interval's records and commits them with the source's position and
//! the checkpoint's number ([`KafkaSink::prepare`], [`KafkaSink::commit`]:
//! the same calls, retries and errors as before, only on that thread).
//! Once it ended, the sink comes back; the records held go to it in the
//! order written (the next transaction begins with the first), and the
//! writes go straight to it again until the next prepare.
//!
//! The bound: [`HELD_BYTES`] of keys and records held while a commit goes
//! on ([`CommitApart::holding_at_most`] sets another). A write past it waits for the commit (the run waits, as it did at
//! each checkpoint before). Records written while the checkpoint's file is
//! written (before the commit begins) are held whatever their size; a
//! commit that begins with more than the bound held is made at once,
//! waited for.
//!
//! A commit's error is the one it was (the same message), given by
//! [`Sink::commit_done`]: the run stops on it. The records held then are
//! dropped (the run resumes from the checkpoint before, which the broker
//! holds; they are written again).
//!
//! A producer on a thread of its own that takes every record would do it
//! too; holding only what is written while a commit goes on keeps the
//! writes as they were (one call into librdkafka each, no channel between
//! two threads per record) and the sink's code one piece.

use std::io;
use std::sync::mpsc::{self, Receiver, TryRecvError};

use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState, Wake};
use cepheid_runtime::source::Position;
use cepheid_runtime::Notify;

use crate::sink::KafkaSink;

/// How many bytes of keys and records are held while a commit goes on
/// before a write waits for the commit: 64 MiB (at 200 bytes a record,
/// 300,000 records; a commit takes a broker's round trip or two).
pub const HELD_BYTES: usize = 64 << 20;

/// Records written while a checkpoint is prepared or committed: their
/// keys' and lines' bytes one after the other, and each record's kind and
/// lengths.
#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    records: Vec<(Kind, usize, usize)>,
}

impl Held {
    fn push(&mut self, kind: Kind, key: &[u8], record: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(record);
        self.records.push((kind, key.len(), record.len()));
    }

    /// Writes each to `sink`, in order, and forgets them (all of them, also
    /// after an error).
    fn write_to(&mut self, sink: &mut KafkaSink) -> Result<(), SinkError> {
        let mut at = 0;
        let mut result = Ok(());
        for &(kind, key, record) in &self.records {
            let (k, r) = self.bytes[at..at + key + record].split_at(key);
            at += key + record;
            if result.is_ok() {
                result = Sink::write(sink, kind, k, r);
            }
        }
        self.clear();
        result
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }
}

/// A transactional [`KafkaSink`] as the runtime's [`Sink`], its commits
/// made on a thread of their own while the run goes on (see the module).
/// [`KafkaOptions::open_sink`](crate::KafkaOptions::open_sink) opens one
/// for a transactional output.
pub struct CommitApart {
    /// The sink; `None` while its commit goes on.
    sink: Option<KafkaSink>,
    /// The commit going on: it gives the sink back, and how it ended
    /// (before it wakes the run).
    running: Option<Receiver<(KafkaSink, Result<(), SinkError>)>>,
    /// A checkpoint prepared apart whose commit did not begin yet.
    prepared: bool,
    /// Written since the prepare, for the next transaction.
    held: Held,
    /// How the last commit ended (and the records held then, written),
    /// until [`Sink::commit_done`] takes it.
    ended: Option<Result<(), SinkError>>,
    /// A commit failed: what is written is dropped (the run stops).
    failed: bool,
    /// What the sink says of itself, asked while it is away:
    /// `Sink::describe` of each kind, and which kinds it takes.
    described: Vec<(Kind, String)>,
    takes: [bool; 4],
    /// How many bytes may be held while a commit goes on
    /// ([`HELD_BYTES`] unless [`CommitApart::holding_at_most`] said).
    bound: usize,
}

/// `e` again (a Kafka error inside it kept as it is: `kafka_error`).
fn copy(e: &SinkError) -> SinkError {
    let source = match crate::kafka_error(&e.source) {
        Some(k) => io::Error::other(k.clone()),
        None => io::Error::new(e.source.kind(), e.source.to_string()),
    };
    SinkError {
        target: e.target.clone(),
        late: e.late,
        source,
    }
}

const KINDS: [Kind; 6] = [
    Kind::Match,
    Kind::Timeout,
    Kind::Late,
    Kind::Shadow,
    Kind::Audit,
    Kind::Decision,
];

impl CommitApart {
    /// `sink`, committing apart (a sink that is not transactional commits
    /// nothing: it is best opened as it is).
    pub fn new(sink: KafkaSink) -> CommitApart {
        let described = (KINDS.iter())
            .map(|&k| (k, Sink::describe(&sink, k)))
            .collect();
        let takes = [
            Sink::takes_late(&sink),
            Sink::takes_shadow(&sink),
            Sink::takes_audit(&sink),
            Sink::takes_decisions(&sink),
        ];
        CommitApart {
            sink: Some(sink),
            running: None,
            prepared: false,
            held: Held::default(),
            ended: None,
            failed: false,
            described,
            takes,
            bound: HELD_BYTES,
        }
    }

    /// Holds at most `bytes` of keys and records while a commit goes on
    /// (instead of [`HELD_BYTES`]): a write past it waits for the commit.
    pub fn holding_at_most(mut self, bytes: usize) -> CommitApart {
        self.bound = bytes;
        self
    }

    /// Are writes held (a checkpoint prepared, or its commit going on)?
    fn holding(&self) -> bool {
        self.prepared || self.running.is_some()
    }

    /// The commit going on, once it ended (waited for with `wait`): the
    /// sink back, and the records held written to it.
    fn reap(&mut self, wait: bool) {
        let Some(running) = &self.running else {
            return;
        };
        let ended = match wait {
            true => running.recv().ok(),
            false => match running.try_recv() {
                Ok(ended) => Some(ended),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => None,
            },
        };
        self.running = None;
        let (mut sink, result) = match ended {
            Some(ended) => ended,
            None => {
                // (its sink is gone with it: nothing more is written)
                self.failed = true;
                self.held.clear();
                self.ended = Some(Err(self.error(io::Error::other(
                    "the thread that committed the checkpoint's transaction panicked",
                ))));
                return;
            }
        };
        let result = match result {
            Ok(()) => self.held.write_to(&mut sink),
            Err(e) => {
                self.failed = true;
                self.held.clear();
                Err(e)
            }
        };
        if result.is_err() {
            self.failed = true;
        }
        self.sink = Some(sink);
        self.ended = Some(result);
    }

    /// The sink, after the commit going on (waited for); the error of a
    /// commit that failed, again.
    fn sink(&mut self) -> Result<&mut KafkaSink, SinkError> {
        self.reap(true);
        if let Some(Err(e)) = &self.ended {
            return Err(copy(e));
        }
        if self.sink.is_none() {
            return Err(self.error(io::Error::other(
                "the sink was lost with the thread that committed its transaction",
            )));
        }
        Ok(self.sink.as_mut().expect("the sink is here"))
    }

    fn error(&self, source: io::Error) -> SinkError {
        SinkError {
            target: self.describe(Kind::Match),
            late: false,
            source,
        }
    }
}

impl Sink for CommitApart {
    fn describe(&self, kind: Kind) -> String {
        (self.described.iter())
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    }

    fn takes_late(&self) -> bool {
        self.takes[0]
    }

    fn takes_shadow(&self) -> bool {
        self.takes[1]
    }

    fn takes_audit(&self) -> bool {
        self.takes[2]
    }

    fn takes_decisions(&self) -> bool {
        self.takes[3]
    }

    /// Held while a checkpoint is prepared or committed (a write past
    /// [`HELD_BYTES`] waits for the commit), else written.
    fn write(&mut self, kind: Kind, key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        self.reap(false);
        if self.failed {
            // (the run stops on the commit's error, given by commit_done)
            return Ok(());
        }
        if !self.holding() {
            return Sink::write(self.sink()?, kind, key, record);
        }
        self.held.push(kind, key, record);
        if self.running.is_some() && self.held.bytes.len() > self.bound {
            self.reap(true);
        }
        Ok(())
    }

    /// A live input's batch: nothing is waited for. A transaction's
    /// records are seen by `read_committed` readers only at its commit,
    /// and librdkafka sends them meanwhile on its own; waiting for their
    /// delivery at each batch (the default, [`Sink::flush`]) held the run,
    /// and every answer of a service behind it, for a broker's round trip
    /// per batch. A delivery that failed is found by the checkpoint's
    /// flush (`prepare`), which stops the run as before.
    fn hand_over(&mut self) -> Result<(), SinkError> {
        self.reap(false);
        Ok(())
    }

    /// Records held wait for the next transaction: nothing to flush then.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.reap(false);
        if self.holding() || self.failed {
            return Ok(());
        }
        Sink::flush(self.sink()?)
    }

    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, SinkError> {
        let sink = self.sink()?;
        let state = Sink::prepare(sink, checkpoint)?;
        Ok(state)
    }

    /// The records written so far are the checkpoint's: those written
    /// next are held. Their flush is the commit's.
    fn prepare_apart(
        &mut self,
        checkpoint: u64,
    ) -> Result<(SinkState, Option<cepheid_runtime::sink::Durable>), SinkError> {
        let _ = checkpoint;
        self.sink()?.still(false)?;
        self.prepared = true;
        Ok((SinkState::default(), None))
    }

    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        let sink = self.sink()?;
        let committed = Sink::commit(sink, checkpoint, source);
        self.prepared = false;
        let written = match &mut self.sink {
            Some(sink) if committed.is_ok() => self.held.write_to(sink),
            _ => Ok(()),
        };
        committed.and(written)
    }

    /// On the thread `cepheid-kafka-commit`: the interval's records
    /// flushed ([`KafkaSink::prepare`]), then committed; `done` called
    /// when it ended. With more than [`HELD_BYTES`] held already, now.
    fn commit_apart(
        &mut self,
        checkpoint: u64,
        source: &Position,
        done: Wake,
    ) -> Result<bool, SinkError> {
        let _ = self.sink()?;
        if !self.prepared || self.held.bytes.len() > self.bound {
            Sink::prepare(self.sink()?, checkpoint)?;
            self.commit(checkpoint, source)?;
            return Ok(true);
        }
        let mut sink = self.sink.take().expect("the sink is back");
        let source = source.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("cepheid-kafka-commit".to_string())
            .spawn(move || {
                let result = Sink::prepare(&mut sink, checkpoint)
                    .and_then(|_| Sink::commit(&mut sink, checkpoint, &source));
                // (the sink back before the run is woken to take it)
                let _ = tx.send((sink, result));
                done();
            });
        self.prepared = false;
        match thread {
            Ok(_) => {
                self.running = Some(rx);
                Ok(false)
            }
            Err(e) => {
                self.failed = true;
                Err(self.error(io::Error::other(format!(
                    "cannot start the thread that commits the checkpoint's transaction: {e}"
                ))))
            }
        }
    }

    fn commit_done(&mut self, wait: bool) -> Option<Result<(), SinkError>> {
        self.reap(wait);
        if self.running.is_some() {
            return None;
        }
        Some(self.ended.take().unwrap_or(Ok(())))
    }

    fn join_positions(&self, shares: &[Position]) -> Result<Position, SinkError> {
        match &self.sink {
            Some(sink) => Sink::join_positions(sink, shares),
            None => Err(self.error(io::Error::other(
                "the positions are joined while a commit goes on",
            ))),
        }
    }

    /// Records written after a prepare are held for the next transaction.
    fn writes_before_commit(&self) -> bool {
        true
    }

    fn commits_with_checkpoints(&self) -> bool {
        true
    }

    fn commits_at_end(&self) -> bool {
        true
    }

    fn notify_to(&mut self, notify: Notify) {
        if let Ok(sink) = self.sink() {
            Sink::notify_to(sink, notify);
        }
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Sink::recover(self.sink()?, kept)
    }

    fn committed(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Sink::committed(self.sink()?, kept)
    }
}
