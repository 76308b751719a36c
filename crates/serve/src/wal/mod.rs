//! The service's write-ahead log: every input of the engine (decision
//! requests, recorded events, changes of rules and lists, clock ticks),
//! durable before its answer goes out, in the order the engine applies
//! them. The log holds inputs, never answers: a replay computes the
//! answers again. Its format, for a follower replica: `docs/wal.md`.
//!
//! - [`Wal::open`] checks every segment and frame of the folder, cuts a
//!   torn tail away (reported, [`Recovered::torn`]), and starts the writer
//!   thread; any other damage is an error naming the file and byte offset.
//! - [`Appender::append`] (a cheap, cloneable, `Send + Sync` handle)
//!   queues an entry with its completion ([`Done`]); a full queue refuses
//!   at once ([`WalError::QueueFull`]).
//! - The writer thread takes everything queued as one group, gives seqs
//!   (dense from 1) in queue order, writes the group with one write, makes
//!   it durable per the [`FsyncPolicy`], then calls each completion in
//!   seq order and hands the group to the [`Consumer`] (the engine).
//! - A failed write or sync fails every entry of its group: they are cut
//!   away from the file and their seqs are given again to the next group
//!   (no hole, no duplicate); [`Wal::health`] says why until a group
//!   succeeds.
//! - [`WalReader`] reads from a seq, across segments, and follows a live
//!   log ([`Wal::reader`]: never past what is durable).
//! - [`Wal::release_before`] deletes old segments (retention).
//!
//! ```
//! use cepheid_serve::wal::{Entry, Input, Wal, WalOptions};
//! use serde_json::value::RawValue;
//! let dir = std::env::temp_dir().join(format!("cepheid-wal-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let (wal, recovered) = Wal::open(&dir, WalOptions::default())?;
//! assert_eq!(recovered.next_seq, 1);
//! let (tx, rx) = std::sync::mpsc::channel();
//! let fields = RawValue::from_string(r#"{"card": "c1", "amount": 12.5}"#.into()).unwrap();
//! let input = Input { scene: Some("pay".into()), event_id: "e1".into(), fields, degraded: false, shed_shadow: false, origin: None };
//! wal.appender().append(Entry::Decide(input), Box::new(move |logged| tx.send(logged).unwrap()))?;
//! let logged = rx.recv().unwrap()?; // durable now: fdatasync'd
//! assert_eq!(logged.seq, 1);
//! let read: Vec<_> = wal.reader(1)?.collect::<Result<_, _>>()?;
//! assert_eq!(read[0].seq, 1);
//! wal.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), cepheid_serve::wal::WalError>(())
//! ```

use std::path::PathBuf;
use std::time::Duration;

mod entry;
mod error;
mod reader;
mod segment;
mod writer;

pub use entry::{Entry, Input, Kind, Logged, LoggedEntry};
pub use error::WalError;
pub use reader::WalReader;
pub use segment::{FORMAT_VERSION, MAX_PAYLOAD};
pub use writer::{wall_clock_ms, Appender, Clock, Consumer, Done, Wal};

/// When the writer makes its writes durable (`fdatasync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Each group is synced before any of its completions is called: an
    /// answer never goes out for an entry a power cut could lose. The
    /// default: the issue asks that an entry be durable before its answer,
    /// and group commit shares one sync among all the entries queued
    /// while the previous one ran, so its cost per entry falls as the load
    /// grows.
    #[default]
    Always,
    /// Completions are called once the group is written (to the page
    /// cache); a sync runs at least this often while anything is unsynced.
    /// A crash of the process loses nothing; a power cut (or a crash of the
    /// system) loses at most about this much.
    Interval(Duration),
    /// Never synced by the writer (the system writes back when it will;
    /// a rolled segment and `close` are still synced). Tests, benchmarks,
    /// throwaway logs.
    Never,
}

/// How the log is opened.
pub struct WalOptions {
    /// When writes are made durable ([`FsyncPolicy::Always`] by default).
    pub fsync: FsyncPolicy,
    /// A segment is ended once it holds at least this many bytes (64 MiB):
    /// the group that reaches it is the segment's last.
    pub segment_size: u64,
    /// At most this many entries wait for the writer (16,384); past it
    /// `append` fails at once with [`WalError::QueueFull`].
    pub queue_entries: usize,
    /// At most this many payload bytes wait for the writer (64 MiB; one
    /// entry is always taken into an empty queue).
    pub queue_bytes: usize,
    /// Segments whose newest entry is younger than this (by stamps,
    /// against the log's newest stamp) are kept by
    /// [`Wal::release_before`] (24 hours).
    pub retention: Duration,
    /// What receives each durable group, in seq order (the engine), on the
    /// writer thread, after the group's completions. None: nothing does.
    pub consumer: Option<Consumer>,
    /// The clock stamps are read from (the wall clock, [`wall_clock_ms`]);
    /// stamps never go below the one before, whatever it says.
    pub clock: Option<Clock>,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            fsync: FsyncPolicy::Always,
            segment_size: 64 << 20,
            queue_entries: 16_384,
            queue_bytes: 64 << 20,
            retention: Duration::from_secs(24 * 3600),
            consumer: None,
            clock: None,
        }
    }
}

impl std::fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalOptions")
            .field("fsync", &self.fsync)
            .field("segment_size", &self.segment_size)
            .field("queue_entries", &self.queue_entries)
            .field("queue_bytes", &self.queue_bytes)
            .field("retention", &self.retention)
            .field("consumer", &self.consumer.is_some())
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

/// What [`Wal::open`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The first seq the log holds (retention deleted those before it; 1
    /// for a new log).
    pub first_seq: u64,
    /// The seq the next entry gets.
    pub next_seq: u64,
    /// The newest entry's stamp (none in an empty log): the next stamps
    /// are never below it.
    pub last_stamp: Option<i64>,
    /// The entries found (all of them checked).
    pub entries: u64,
    /// The segment files.
    pub segments: usize,
    /// A torn tail cut away: a crash while the last group was written.
    pub torn: Option<Torn>,
}

/// A torn tail: bytes at the end of the last segment that are no whole
/// frame with a good checksum (a write a crash cut), cut away at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Torn {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the cut bytes began (the file's length now).
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
}

/// Whether the log can write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// The last group (if any) was written and synced per the policy.
    Healthy,
    /// The last write or sync failed (disk full, I/O error): readiness
    /// should turn false until a later group succeeds.
    Unhealthy {
        /// The failure, with the file.
        reason: String,
    },
}

impl Health {
    /// Whether healthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }
}

/// The log's counters since it was opened, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Entries logged (written and durable per the policy).
    pub appended: u64,
    /// Groups written.
    pub groups: u64,
    /// `fdatasync` calls (per group, per interval, at rolls and close).
    pub syncs: u64,
    /// Time spent in those syncs, in microseconds (over `syncs`: the
    /// disk's mean sync time as the log sees it).
    pub sync_micros: u64,
    /// Bytes of frames written.
    pub bytes: u64,
    /// Failed writes, syncs, cuts and rolls (each fails its group's entries).
    pub failures: u64,
    /// The most entries in one group.
    pub largest_group: u64,
    /// Appends refused because the queue was full.
    pub refused: u64,
    /// Segments started after the first.
    pub segments_rolled: u64,
    /// Segments deleted by [`Wal::release_before`].
    pub segments_released: u64,
    /// Torn tails cut away at open (0 or 1).
    pub torn_tails: u64,
    /// Completions or consumer calls that panicked (caught).
    pub callback_panics: u64,
    /// Entries waiting for the writer now.
    pub queued: u64,
    /// The last seq written and durable per the policy (its completion
    /// may still be running).
    pub committed_seq: u64,
}
