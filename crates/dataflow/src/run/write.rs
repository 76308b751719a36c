//! The outputs of `cepheid run --workers N`: the files of process 0
//! ([`Writers`], shared by its workers behind a lock), and each worker's
//! buffer of formatted records ([`Records`]).
//!
//! A worker formats its matches and timeouts into a block of about
//! [`BLOCK`] bytes and, when the block is full and the worker may write
//! (a worker of process 0 without `--checkpoint`, or any worker with
//! `--output-per-worker`), writes it itself at once, while it is still in
//! the core's cache: the copy into the page cache is then several times
//! cheaper than that of a block formatted long before or on another core
//! (`BENCHMARKS.md`, "What limits scaling"), and no single thread writes
//! every record. Otherwise (another process, or a run with cuts, whose
//! records must reach worker 0 in the order of the frontier) the blocks
//! become [`Chunk::Out`](super::Chunk)s sent to worker 0. The bytes of one
//! record are never split between writes; records of different workers
//! interleave in whole blocks, in the order the workers write them.
//!
//! The files are those of the single run (`cepheid_runtime::rotate`):
//! written by appending and opened again when rotated (logrotate's
//! `create` or `copytruncate`), looked at on each flush and at most every
//! second while writing; a cut measures the file open under each name
//! ([`Writers::measure`]), not the bytes written (issue 26).
//!
//! The blocks are the runtime's [`Block`]s: each record's kind and the
//! place of its key travel beside its text. With a runtime [`Sink`]
//! instead of files ([`Writers::with_sink`]; the run's is a Kafka
//! producer), the blocks reach it one record at a time
//! ([`Block::write_to`]), nothing read back from the text.
//!
//! When the run's report wants the latest records (the monitor's page,
//! `Report::records_wanted`), each block a worker formats is tapped as it
//! leaves its buffer, written or sent ([`Tap`]): per block, never per
//! record, and nothing at all when no report wants them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cepheid_engine::io::Formatter;
use cepheid_runtime::rotate::{self, Current, Measured};
use cepheid_runtime::{Block, Config, Doing, Kind, Sink, SinkError};

use super::{Error, Scale};

/// Bytes of formatted records a worker gathers before it writes them (or
/// sends them on): small enough to stay in the core's cache, large enough
/// that the lock and the system call cost little.
pub const BLOCK: usize = 128 << 10;

/// The outputs of the run (opened by process 0 before the workers start).
pub struct Writers {
    out: Box<dyn Write + Send>,
    /// The file open now under the records' output's name (a regular
    /// file: measured at a cut; a worker's own `FILE.W` too).
    out_file: Option<Current>,
    late: Option<BufWriter<Box<dyn Write + Send>>>,
    /// The same for the late output.
    late_file: Option<Current>,
    /// Bytes this run wrote to each (over rotations: a cut measures the
    /// files instead).
    pub lengths: (u64, u64),
    /// Written since the last flush?
    unflushed: bool,
    /// The first write error, and whether it was on the late output.
    error: Option<(bool, io::Error)>,
    /// The sink records go to instead of the files.
    sink: Option<Box<dyn Sink>>,
}

/// [`Writers`] as the workers share them.
pub type Shared = Arc<Mutex<Writers>>;

/// Locks the shared writers (a worker that panicked while writing has
/// failed the run already: its lock is not in the way of the summary).
pub fn lock(shared: &Shared) -> MutexGuard<'_, Writers> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens the output `path` as the single run does ([`rotate::open`]):
/// emptied unless `keep` (resumed: truncated to the cut's length
/// already); with `lock` (`--checkpoint`), a file opened after a rotation
/// is locked as the first one was.
pub fn open(path: &Path, keep: bool, lock: bool) -> Result<rotate::Opened, Error> {
    rotate::open(path, keep, lock).map_err(|source| {
        Error::Runtime(cepheid_runtime::Error::Io {
            doing: Doing::Create,
            path: path.display().to_string(),
            source,
        })
    })
}

impl Writers {
    /// The outputs; resumed (`keep`), they were truncated to the cut's
    /// lengths and are written on.
    pub fn open(config: &Config, scale: &Scale, keep: bool) -> Result<Writers, Error> {
        let lock = config.checkpoint.is_some();
        let (out, out_file): (Box<dyn Write + Send>, _) = match &config.output {
            None => (
                Box::new(BufWriter::with_capacity(BLOCK, io::stdout())),
                None,
            ),
            // Worker 0 writes `FILE.0`, opened with the others.
            Some(_) if scale.output_per_worker => (Box::new(io::sink()), None),
            Some(path) => {
                let (file, current) = open(path, keep, lock)?;
                (Box::new(BufWriter::with_capacity(BLOCK, file)), current)
            }
        };
        let (late, late_file) = match &config.late {
            Some(path) => {
                let (file, current) = open(path, keep, lock)?;
                (Some(BufWriter::new(file)), current)
            }
            None => (None, None),
        };
        Ok(Writers {
            out,
            out_file,
            late,
            late_file,
            lengths: (0, 0),
            unflushed: false,
            error: None,
            sink: None,
        })
    }

    /// Records, timeouts and late events to `sink`, one record at a time
    /// ([`Sink::write`], each with its kind and key); no file.
    pub fn with_sink(sink: Box<dyn Sink>) -> Writers {
        Writers {
            out: Box::new(io::sink()),
            out_file: None,
            late: None,
            late_file: None,
            lengths: (0, 0),
            unflushed: false,
            error: None,
            sink: Some(sink),
        }
    }

    /// The sink records go to, if they go to one.
    pub fn sink(&mut self) -> Option<&mut (dyn Sink + 'static)> {
        self.sink.as_deref_mut()
    }

    /// Where records (or, `late`, late events) go, for messages, when
    /// they go to a sink.
    pub fn describe(&self, late: bool) -> Option<String> {
        let kind = if late { Kind::Late } else { Kind::Match };
        self.sink.as_ref().map(|sink| sink.describe(kind))
    }

    /// Keeps a sink's error as the first one.
    fn sink_failed(&mut self, e: SinkError) {
        self.fail(e.late, e.source);
    }

    /// Keeps `source` as the first error (on the late output with
    /// `late`): what follows is dropped, and [`Writers::flush`] returns
    /// it.
    pub fn fail(&mut self, late: bool, source: io::Error) {
        if self.error.is_none() {
            self.error = Some((late, source));
        }
    }

    /// Hands the records of `block` to the sink, each with its kind and
    /// key.
    fn write_to_sink(&mut self, to_late: bool, block: &Block) {
        let Some(sink) = &mut self.sink else {
            return;
        };
        if let Err(e) = block.write_to(sink.as_mut()) {
            self.sink_failed(e);
            return;
        }
        let bytes = block.bytes().len() as u64;
        if to_late {
            self.lengths.1 += bytes;
        } else {
            self.lengths.0 += bytes;
        }
    }

    /// Records to `opened` only (a worker's own `FILE.W`).
    pub fn own((file, current): rotate::Opened) -> Writers {
        Writers {
            out: Box::new(BufWriter::with_capacity(BLOCK, file)),
            out_file: current,
            late: None,
            late_file: None,
            lengths: (0, 0),
            unflushed: false,
            error: None,
            sink: None,
        }
    }

    /// Records go to `opened` instead (worker 0's own `FILE.0`).
    pub fn set_out(&mut self, (file, current): rotate::Opened) {
        self.out = Box::new(BufWriter::with_capacity(BLOCK, file));
        self.out_file = current;
    }

    /// A worker's own `FILE.W` at a cut: flushed (a rotation followed),
    /// synced, and the length and first bytes' CRC-32 of the file open
    /// under its name.
    pub fn sync_own(&mut self) -> io::Result<Measured> {
        if let Some((_, e)) = &self.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        self.unflushed = false;
        self.out.flush()?;
        Ok(measure(&self.out_file)?.unwrap_or((0, None)))
    }

    /// The records' and the late output's files at a cut, flushed before
    /// ([`Writers::flush`], which follows a rotation): each one's length
    /// and first bytes' CRC-32, synced (`None`: not a file of these
    /// writers).
    pub fn measure(&self) -> io::Result<[Option<Measured>; 2]> {
        Ok([measure(&self.out_file)?, measure(&self.late_file)?])
    }

    /// Writes a block of records to the records' output or (`to_late`)
    /// the late one; the first error is kept and what follows dropped.
    pub fn write(&mut self, to_late: bool, block: &Block) {
        if self.error.is_some() || block.is_empty() {
            return;
        }
        if self.sink.is_some() {
            self.unflushed = true;
            return self.write_to_sink(to_late, block);
        }
        let bytes = block.bytes();
        // A block as large as the buffer goes straight to the file.
        let result = match (to_late, &mut self.late) {
            (false, _) => self.out.write_all(bytes),
            (true, Some(late)) => late.write_all(bytes),
            (true, None) => Ok(()),
        };
        self.unflushed = true;
        match result {
            Ok(()) if to_late => self.lengths.1 += bytes.len() as u64,
            Ok(()) => self.lengths.0 += bytes.len() as u64,
            Err(e) => self.error = Some((to_late, e)),
        }
    }

    /// Flushes now if anything was written since the last flush (live
    /// input waits): a failure is kept for the end.
    pub fn flush_now(&mut self) {
        if self.error.is_some() || !self.unflushed {
            return;
        }
        self.unflushed = false;
        if let Some(sink) = &mut self.sink {
            if let Err(e) = sink.flush() {
                self.sink_failed(e);
            }
            return;
        }
        let out = self.out.flush().map_err(|e| (false, e));
        let late = match &mut self.late {
            Some(late) => late.flush().map_err(|e| (true, e)),
            None => Ok(()),
        };
        if let Err(e) = out.and(late) {
            self.error = Some(e);
        }
    }

    /// Flushes both outputs; the first error met, if any.
    pub fn flush(&mut self) -> Result<(), (bool, io::Error)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.unflushed = false;
        if let Some(sink) = &mut self.sink {
            return sink.flush().map_err(|e| (e.late, e.source));
        }
        self.out.flush().map_err(|e| (false, e))?;
        if let Some(late) = &mut self.late {
            late.flush().map_err(|e| (true, e))?;
        }
        Ok(())
    }
}

/// The length and first bytes' CRC-32 of `file`, synced.
fn measure(file: &Option<Current>) -> io::Result<Option<Measured>> {
    file.as_ref().map(rotate::measure).transpose()
}

/// The latest output records of a process's workers, for an observing
/// report (`RunView::records`): at most `wanted`, the last ones of each
/// block tapped, until the observer takes them. A block gives one copy of
/// the bytes of its last `wanted` lines (found from its end with
/// `memrchr`); they are cut into records only when the observer takes
/// them (at its tick, a few times a second), never per record as the
/// blocks go by.
pub struct Tap {
    wanted: usize,
    kept: Mutex<Tails>,
}

/// The tails of the blocks tapped since the observer's last look, oldest
/// first: each the last records of a block; no tail kept whose records are
/// all older than the last `wanted`.
#[derive(Default)]
struct Tails {
    tails: VecDeque<Block>,
    lines: usize,
}

impl Tap {
    /// Keeps at most `wanted` records.
    pub fn new(wanted: usize) -> Tap {
        Tap {
            wanted,
            kept: Mutex::new(Tails::default()),
        }
    }

    /// Keeps the last records of `block`, dropping those kept that are
    /// older than the last `wanted`.
    pub fn block(&self, block: &Block) {
        if block.is_empty() || self.wanted == 0 {
            return;
        }
        let tail = block.tail(self.wanted);
        let lines = tail.len();
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.tails.push_back(tail);
        kept.lines += lines;
        while let Some(oldest) = kept.tails.front() {
            if kept.lines - oldest.len() < self.wanted {
                break;
            }
            kept.lines -= oldest.len();
            kept.tails.pop_front();
        }
    }

    /// The records kept since the last call, oldest first (at most
    /// `wanted`), each with its kind: a match's or a timeout's.
    pub fn take(&self) -> Vec<(Kind, String)> {
        let tails = std::mem::take(&mut *self.kept.lock().unwrap_or_else(PoisonError::into_inner));
        let skip = tails.lines.saturating_sub(self.wanted);
        let records = tails.tails.iter().flat_map(Block::records).skip(skip);
        records
            .map(|r| (r.kind, String::from_utf8_lossy(r.line).into_owned()))
            .collect()
    }
}

/// A worker's formatted records: in blocks of about [`BLOCK`] bytes,
/// written by the worker to `to` when it has one, else kept to be sent to
/// worker 0.
#[derive(Clone)]
pub struct Records(Rc<RefCell<Blocks>>);

struct Blocks {
    /// The block being filled.
    current: Block,
    /// Full blocks not written yet (only without `to`).
    full: Vec<Block>,
    /// The writers this worker writes its records to itself.
    to: Option<Shared>,
    /// Where each block is tapped as it leaves, when a report wants the
    /// latest records.
    tap: Option<Arc<Tap>>,
}

impl Records {
    /// Records written to `to` as blocks fill, or (`None`) kept for
    /// [`Records::take`]; each block tapped into `tap` as it leaves.
    pub fn new(to: Option<Shared>, tap: Option<Arc<Tap>>) -> Records {
        Records(Rc::new(RefCell::new(Blocks {
            current: Block::with_capacity(BLOCK + BLOCK / 8),
            full: Vec::new(),
            to,
            tap,
        })))
    }

    /// Adds the record `format` made last, of `kind`.
    #[inline]
    pub fn push(&self, kind: Kind, format: &Formatter) {
        self.push_line(kind, format.line(), format.key_range());
    }

    /// Adds the record `line` of `kind`, its key at `key` in it.
    fn push_line(&self, kind: Kind, line: &[u8], key: std::ops::Range<usize>) {
        let mut blocks = self.0.borrow_mut();
        let blocks = &mut *blocks;
        blocks.current.push_line(kind, line, key);
        if blocks.current.bytes().len() >= BLOCK {
            if let Some(tap) = &blocks.tap {
                tap.block(&blocks.current);
            }
            match &blocks.to {
                Some(to) => {
                    lock(to).write(false, &blocks.current);
                    blocks.current.clear();
                }
                None => {
                    let next = Block::with_capacity(BLOCK + BLOCK / 8);
                    let full = std::mem::replace(&mut blocks.current, next);
                    blocks.full.push(full);
                }
            }
        }
    }

    /// Writes out what is left (the end of a batch of work) and returns
    /// the blocks that are to be sent to worker 0, in order.
    pub fn take(&self) -> Vec<Block> {
        let mut blocks = self.0.borrow_mut();
        let blocks = &mut *blocks;
        if let Some(tap) = &blocks.tap {
            tap.block(&blocks.current);
        }
        if let Some(to) = &blocks.to {
            lock(to).write(false, &blocks.current);
            blocks.current.clear();
            return Vec::new();
        }
        if !blocks.current.is_empty() {
            let rest = std::mem::take(&mut blocks.current);
            blocks.full.push(rest);
        }
        std::mem::take(&mut blocks.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output whose bytes the test reads.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<u8>>>);

    impl Write for Seen {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn seen_writers() -> (Shared, Seen) {
        let seen = Seen::default();
        let writers = Writers {
            out: Box::new(seen.clone()),
            out_file: None,
            late: None,
            late_file: None,
            lengths: (0, 0),
            unflushed: false,
            error: None,
            sink: None,
        };
        (Arc::new(Mutex::new(writers)), seen)
    }

    /// A block of the records `lines`, each a match without a key.
    fn block_of(lines: &[&str]) -> Block {
        let mut block = Block::default();
        for line in lines {
            block.push_line(kind_of(line), line.as_bytes(), 0..0);
        }
        block
    }

    /// A test record's kind, from its text.
    fn kind_of(line: &str) -> Kind {
        if line.starts_with(r#"{"kind":"timeout""#) {
            Kind::Timeout
        } else {
            Kind::Match
        }
    }

    #[test]
    fn kept_records_come_out_in_blocks_of_whole_records_in_order() {
        let records = Records::new(None, None);
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
            assert!(bytes.len() >= BLOCK && bytes.len() < BLOCK + 1100);
            assert_eq!(bytes.last(), Some(&b'\n'));
        }
        let concat: Vec<u8> = blocks.iter().flat_map(|b| b.bytes().to_vec()).collect();
        assert_eq!(concat, all);
        // Each record's key is where it was put.
        let keys: Vec<&[u8]> = blocks[0].records().take(2).map(|r| r.key).collect();
        assert_eq!(keys, [&b"0"[..], &b"1"[..]]);
        assert!(records.take().is_empty());
    }

    /// The tap keeps the last records of the blocks, at most as many as
    /// wanted, each a whole line with its kind; what was taken is gone.
    #[test]
    fn the_tap_keeps_the_latest_whole_records_of_the_blocks() {
        let tap = Arc::new(Tap::new(3));
        let records = Records::new(None, Some(Arc::clone(&tap)));
        let line = |i: u32, kind: &str| {
            format!(
                "{{\"kind\":\"{kind}\",\"pattern\":\"p\",\"n\":{i}{}}}\n",
                " ".repeat(900)
            )
        };
        let mut all = Vec::new();
        for i in 0..400u32 {
            let kind = if i % 5 == 0 { "timeout" } else { "match" };
            let text = line(i, kind);
            records.push_line(kind_of(&text), text.as_bytes(), 0..0);
            all.push((i, kind));
        }
        // Full blocks were tapped as they filled: their last records.
        let full = tap.take();
        assert_eq!(full.len(), 3);
        assert!(tap.take().is_empty());
        let blocks = records.take();
        let last_of_first: Vec<u8> = (blocks[..blocks.len() - 1].iter())
            .flat_map(|b| b.bytes().to_vec())
            .collect();
        let ends = String::from_utf8(last_of_first).unwrap();
        let expected: Vec<&str> = ends.split_inclusive('\n').rev().take(3).collect();
        let got: Vec<&str> = full.iter().rev().map(|(_, l)| l.as_str()).collect();
        assert_eq!(got, expected);
        // The rest at `take`: the last three records written.
        let rest = tap.take();
        let expected: Vec<(Kind, String)> = all[397..]
            .iter()
            .map(|&(i, kind)| {
                let k = if kind == "timeout" {
                    Kind::Timeout
                } else {
                    Kind::Match
                };
                (k, line(i, kind))
            })
            .collect();
        assert_eq!(rest, expected);
        // An empty block taps nothing.
        tap.block(&Block::default());
        assert!(tap.take().is_empty());
    }

    /// Blocks of fewer records than wanted: their tails put together, the
    /// latest `wanted` in order; a block of more drops all before it.
    #[test]
    fn the_tap_puts_the_tails_of_small_blocks_together() {
        let tap = Tap::new(5);
        let record = |n: u32| {
            let kind = if n % 2 == 0 { "match" } else { "timeout" };
            format!("{{\"kind\":\"{kind}\",\"n\":{n}}}\n")
        };
        for b in 0..4 {
            tap.block(&block_of(&[&record(2 * b), &record(2 * b + 1)]));
        }
        let got = tap.take();
        let expected: Vec<(Kind, String)> = (3..8)
            .map(|n| {
                let kind = if n % 2 == 0 {
                    Kind::Match
                } else {
                    Kind::Timeout
                };
                (kind, record(n))
            })
            .collect();
        assert_eq!(got, expected);
        tap.block(&block_of(&[&record(100)]));
        let many: Vec<String> = (10..16).map(record).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        tap.block(&block_of(&many));
        let got: Vec<String> = tap.take().into_iter().map(|(_, l)| l).collect();
        assert_eq!(got, (11..16).map(record).collect::<Vec<_>>());
    }

    #[test]
    fn written_records_reach_the_writers_in_order_and_are_counted() {
        let (shared, seen) = seen_writers();
        let records = Records::new(Some(Arc::clone(&shared)), None);
        let mut all = Vec::new();
        for i in 0..300u32 {
            let record = format!("{i}{}\n", "y".repeat(900));
            records.push_line(Kind::Match, record.as_bytes(), 0..0);
            all.extend_from_slice(record.as_bytes());
        }
        let before = lock(&shared).lengths.0;
        assert!(before >= BLOCK as u64, "full blocks written as they fill");
        assert!(before < all.len() as u64, "the last block waits");
        assert_eq!(seen.0.lock().unwrap().len() as u64, before);
        assert!(records.take().is_empty());
        assert_eq!(lock(&shared).lengths, (all.len() as u64, 0));
        assert_eq!(*seen.0.lock().unwrap(), all);
    }
}
