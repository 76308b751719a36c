//! The outputs of `cepheid run --workers N`: the runtime's [`Output`]s
//! of this process (opened by the runtime, `cepheid_runtime::Outputs`:
//! process 0's, shared by its workers behind a lock, and with
//! `--output-per-worker` each worker's own `FILE.W`), and each worker's
//! buffer of formatted records ([`Records`]).
//!
//! A worker formats its matches and timeouts into a [`Block`] of about
//! [`Block::FULL`] bytes and, when the block is full and the worker may
//! write (a worker of process 0 without `--checkpoint`, or any worker with
//! `--output-per-worker`), writes it itself at once
//! ([`Sink::write_block`](cepheid_runtime::Sink::write_block)), while it
//! is still in the core's cache: the copy into the page cache is then
//! several times cheaper than that of a block formatted long before or on
//! another core (`BENCHMARKS.md`, "What limits scaling"), and no single
//! thread writes every record. Otherwise (another process, or a run with
//! cuts, whose records must reach worker 0 in the order of the frontier)
//! the blocks become [`Chunk::Records`](super::Chunk)s sent to worker 0.
//! The bytes of one record are never split between writes; records of
//! different workers interleave in whole blocks, in the order the workers
//! write them.
//!
//! The files are one engine's (`Files`, written by their callers,
//! `Writing::Caller`): rotation, locks, measuring at a cut
//! ([`Output::prepare`]) and truncation on resuming (`Sink::recover`)
//! are theirs. A library user's sink ([`ToSink`](super::ToSink)) is the same
//! path, its blocks written one record at a time. An output's first error
//! is the run's, said once by the [`Output`]; the worker that meets it
//! stops the input.
//!
//! When the run's report wants the latest records (the monitor's page,
//! `Report::records_wanted`), each block a worker formats is tapped as it
//! leaves its buffer, written or sent (the runtime's [`Tap`]): per block,
//! never per record, and nothing at all when no report wants them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cepheid_runtime::jsonl::Formatter;
use cepheid_runtime::{Block, Kind, Output, Tap};

/// An [`Output`] as the workers share it.
pub type Shared = Arc<Mutex<Output>>;

/// Locks a shared output (a worker that panicked while writing has
/// failed the run already: its lock is not in the way of the summary).
pub fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes `block` to `out`; when writing failed (said by the output), the
/// input stops (`stop`).
pub fn write(out: &Shared, block: &Block, stop: &AtomicBool) {
    let mut out = lock(out);
    out.write_block(block);
    if out.failed() {
        stop.store(true, Ordering::Relaxed);
    }
}

/// A worker's formatted records: in blocks of about [`Block::FULL`]
/// bytes, written by the worker to `to` when it has one, else kept to be
/// sent to worker 0.
pub struct Records {
    /// The block being filled.
    current: Block,
    /// Full blocks not written yet (only without `to`).
    full: Vec<Block>,
    /// The output this worker writes its records to itself.
    to: Option<Shared>,
    /// Where each block is tapped as it leaves, when a report wants the
    /// latest records.
    tap: Option<Arc<Mutex<Tap>>>,
    /// Set when writing failed: the input stops.
    stop: Arc<AtomicBool>,
}

impl Records {
    /// Records written to `to` as blocks fill, or (`None`) kept for
    /// [`Records::take`]; each block tapped into `tap` as it leaves;
    /// `stop` set when writing fails.
    pub fn new(to: Option<Shared>, tap: Option<Arc<Mutex<Tap>>>, stop: Arc<AtomicBool>) -> Records {
        Records {
            current: Block::with_capacity(Block::FULL + Block::FULL / 8),
            full: Vec::new(),
            to,
            tap,
            stop,
        }
    }

    /// Adds the record `format` made last, of `kind`.
    #[inline]
    pub fn push(&mut self, kind: Kind, format: &Formatter) {
        self.push_line(kind, format.line(), format.key_range());
    }

    /// Adds the record `line` of `kind`, its key at `key` in it.
    #[inline]
    pub(super) fn push_line(&mut self, kind: Kind, line: &[u8], key: std::ops::Range<usize>) {
        self.current.push_line(kind, line, key);
        if self.current.bytes().len() >= Block::FULL {
            self.leave();
        }
    }

    /// The current block leaves: tapped, then written or kept.
    fn leave(&mut self) {
        if self.current.is_empty() {
            return;
        }
        if let Some(tap) = &self.tap {
            lock(tap).block(&self.current);
        }
        match &self.to {
            Some(to) => {
                write(to, &self.current, &self.stop);
                self.current.clear();
            }
            None => {
                let next = Block::with_capacity(Block::FULL + Block::FULL / 8);
                let full = std::mem::replace(&mut self.current, next);
                self.full.push(full);
            }
        }
    }

    /// Writes out what is left (the end of a batch of work) and returns
    /// the blocks that are to be sent to worker 0, in order.
    pub fn take(&mut self) -> Vec<Block> {
        self.leave();
        std::mem::take(&mut self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_runtime::{Config, Files, Notify, Writing};

    #[test]
    fn kept_records_come_out_in_blocks_of_whole_records_in_order() {
        let mut records = Records::new(None, None, Arc::default());
        let line = vec![b'x'; 1000];
        let mut all = Vec::new();
        for i in 0..400u32 {
            let mut record = i.to_string().into_bytes();
            record.extend_from_slice(&line);
            record.push(b'\n');
            records.push_line(Kind::Match, &record, 0..1);
            all.extend_from_slice(&record);
        }
        let blocks = records.take();
        assert!(blocks.len() >= 3, "{} blocks", blocks.len());
        for block in &blocks[..blocks.len() - 1] {
            let bytes = block.bytes();
            assert!(bytes.len() >= Block::FULL && bytes.len() < Block::FULL + 1100);
            assert_eq!(bytes.last(), Some(&b'\n'));
        }
        let concat: Vec<u8> = blocks.iter().flat_map(|b| b.bytes().to_vec()).collect();
        assert_eq!(concat, all);
        // Each record's key is where it was put.
        let keys: Vec<&[u8]> = blocks[0].records().take(2).map(|r| r.key).collect();
        assert_eq!(keys, [&b"0"[..], &b"1"[..]]);
        assert!(records.take().is_empty());
    }

    /// A worker that writes its records itself hands its output whole
    /// blocks as they fill (a file takes each at once), the last at
    /// `take`, in order; each tapped.
    #[test]
    fn written_records_reach_the_output_in_whole_blocks_in_order() {
        let dir = std::env::temp_dir().join(format!("cepheid-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = Config {
            output: Some(dir.join("out.jsonl")),
            ..Config::default()
        };
        let files = Files::open(&config, false, Writing::Caller).unwrap();
        let report: Box<dyn cepheid_runtime::Report> =
            Box::new(cepheid_runtime::Notices::default());
        let notify = Notify::of_shared(Arc::new(Mutex::new(report)));
        let out = Arc::new(Mutex::new(Output::new(Box::new(files), notify)));
        let tap = Arc::new(Mutex::new(Tap::new(2)));
        let mut records = Records::new(
            Some(Arc::clone(&out)),
            Some(Arc::clone(&tap)),
            Arc::default(),
        );
        let mut all = Vec::new();
        for i in 0..300u32 {
            let record = format!("{i}{}\n", "y".repeat(900));
            records.push_line(Kind::Match, record.as_bytes(), 0..0);
            all.extend_from_slice(record.as_bytes());
        }
        let written = || std::fs::read(dir.join("out.jsonl")).unwrap();
        let before = written();
        assert!(
            before.len() >= Block::FULL,
            "full blocks written as they fill"
        );
        assert!(
            before.len() < all.len() && before.ends_with(b"\n"),
            "the last block waits"
        );
        assert!(records.take().is_empty());
        lock(&out).flush().unwrap();
        assert_eq!(written(), all);
        let shown: Vec<String> = lock(&tap)
            .records()
            .iter()
            .map(|(_, l)| l.clone())
            .collect();
        let last: Vec<String> = (298..300)
            .map(|i| format!("{i}{}\n", "y".repeat(900)))
            .collect();
        assert_eq!(shown, last);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
