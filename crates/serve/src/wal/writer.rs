//! The log's writer: opening (recovery), the append queue, the writer
//! thread's group commit, retention.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::entry::{self, Entry, Logged, LoggedEntry};
use super::reader::WalReader;
use super::segment::{self, FrameReader, Header, HEADER_LEN, MAX_PAYLOAD};
use super::{FsyncPolicy, Health, Recovered, Torn, WalError, WalOptions, WalStats};

/// What an append's completion is called with, once, on the log's
/// writer thread (`cepheid-wal`), in seq order: where the entry landed,
/// after it is durable (per the fsync policy), or why it was not logged.
/// Keep it short (send to a channel, wake a task): the next group's write
/// waits for it. It may append; it must not drop or close the [`Wal`]
/// (that waits for this thread).
pub type Done = Box<dyn FnOnce(Result<Logged, WalError>) + Send>;

/// What receives the logged entries, in seq order, on the writer thread,
/// after their completions were called: a group at a time. Keep it short
/// (send to the engine's channel).
pub type Consumer = Box<dyn FnMut(&[Arc<LoggedEntry>]) + Send>;

/// The clock stamps are read from: milliseconds since the epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock, in milliseconds since the epoch.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Pending {
    entry: Entry,
    body: Vec<u8>,
    stamp: i64,
    done: Done,
}

struct Queue {
    items: Vec<Pending>,
    bytes: usize,
    closed: bool,
    /// The last stamp given (stamps are given at append, in queue order).
    last_stamp: i64,
}

#[derive(Default)]
struct Counters {
    appended: AtomicU64,
    groups: AtomicU64,
    syncs: AtomicU64,
    sync_micros: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
    largest_group: AtomicU64,
    refused: AtomicU64,
    rolled: AtomicU64,
    released: AtomicU64,
    torn: AtomicU64,
    panics: AtomicU64,
}

/// A segment as the writer and retention see it.
struct SegMeta {
    first: u64,
    path: PathBuf,
    /// The last seq in it (`first - 1` when empty) and its stamp.
    last: u64,
    last_stamp: Option<i64>,
}

pub(crate) struct Shared {
    dir: PathBuf,
    queue: Mutex<Queue>,
    wake: Condvar,
    queue_entries: usize,
    queue_bytes: usize,
    clock: Clock,
    counters: Counters,
    health: Mutex<Option<String>>,
    /// The last seq written and made durable per the policy (synced under
    /// `Always`), set before its completion is called. Readers never read
    /// past it.
    pub(crate) committed: Arc<AtomicU64>,
    segments: Mutex<Vec<SegMeta>>,
    retention: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn stats(&self) -> WalStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let q = lock(&self.queue);
        WalStats {
            appended: get(&c.appended),
            groups: get(&c.groups),
            syncs: get(&c.syncs),
            sync_micros: get(&c.sync_micros),
            bytes: get(&c.bytes),
            failures: get(&c.failures),
            largest_group: get(&c.largest_group),
            refused: get(&c.refused),
            segments_rolled: get(&c.rolled),
            segments_released: get(&c.released),
            torn_tails: get(&c.torn),
            callback_panics: get(&c.panics),
            queued: q.items.len() as u64,
            committed_seq: self.committed.load(Ordering::Acquire),
        }
    }

    fn health(&self) -> Health {
        match &*lock(&self.health) {
            None => Health::Healthy,
            Some(reason) => Health::Unhealthy {
                reason: reason.clone(),
            },
        }
    }

    fn append(&self, entry: Entry, done: Done) -> Result<(), WalError> {
        if let Some(why) = entry.invalid() {
            return Err(WalError::Invalid(why.into()));
        }
        let body = entry::encode_body(&entry);
        if body.len() + 64 > MAX_PAYLOAD {
            return Err(WalError::Invalid(format!(
                "a payload of {} bytes (at most {MAX_PAYLOAD})",
                body.len()
            )));
        }
        let mut q = lock(&self.queue);
        if q.closed {
            return Err(WalError::Closed);
        }
        if q.items.len() >= self.queue_entries
            || (!q.items.is_empty() && q.bytes + body.len() > self.queue_bytes)
        {
            drop(q);
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(WalError::QueueFull);
        }
        let stamp = (self.clock)().max(q.last_stamp);
        q.last_stamp = stamp;
        q.bytes += body.len();
        q.items.push(Pending {
            entry,
            body,
            stamp,
            done,
        });
        if q.items.len() == 1 {
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// A handle that appends to the log: cheap to clone, `Send + Sync`, usable
/// from any thread (blocking or async: [`Appender::append`] never blocks
/// on the disk, only on the queue's mutex).
#[derive(Clone)]
pub struct Appender {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl Appender {
    /// Queues `entry`; the writer thread gives it the next seq and writes
    /// it with the others queued, then `done` is called once (on the
    /// writer thread, in seq order): `Ok` with its seq and stamp once
    /// the group is durable (per the fsync policy), `Err` if the group's
    /// write or sync failed (the entry is not in the log, and the consumer
    /// never sees it).
    ///
    /// Its stamp is read from the clock here, in queue order: never below
    /// the stamp of an entry queued before it.
    ///
    /// An `Err` here means nothing was queued and `done` is dropped without
    /// being called: [`WalError::QueueFull`] (past `queue_entries` or
    /// `queue_bytes`, returned at once), [`WalError::Closed`],
    /// [`WalError::Invalid`].
    pub fn append(&self, entry: Entry, done: Done) -> Result<(), WalError> {
        self.shared.append(entry, done)
    }

    /// [`Wal::health`].
    pub fn health(&self) -> Health {
        self.shared.health()
    }

    /// [`Wal::stats`].
    pub fn stats(&self) -> WalStats {
        self.shared.stats()
    }
}

/// The write-ahead log: one folder of segments and one writer thread,
/// which writes and syncs each group, then calls its completions and the
/// consumer.
/// Dropping it (or [`Wal::close`]) writes what is queued, syncs, and
/// stops the thread; appends after that fail with [`WalError::Closed`].
pub struct Wal {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Option<WalError>>>,
    /// The folder's lock, held while the log is open.
    _lock: File,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    policy: FsyncPolicy,
    segment_size: u64,
    /// Calls each group's completions, done or failed, and the consumer.
    completer: Completer,
    file: File,
    path: PathBuf,
    /// The current segment's length (where the next group goes).
    len: u64,
    /// Entries in the current segment.
    entries: u64,
    next_seq: u64,
    buf: Vec<u8>,
    /// Written since the last sync (`Interval`, `Never`).
    dirty: bool,
    last_sync: Instant,
    /// A failed group's bytes not cut away yet: cut before the next write.
    cut_to: Option<u64>,
    /// The last interval sync failed (`Interval`, `Never`): health stays
    /// unhealthy until a sync succeeds.
    sync_failing: bool,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(unix)]
fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| WalError::io("opening the log's lock file", &path, e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(WalError::Locked(dir.to_path_buf())),
        Err(e) => Err(WalError::io("locking the log", &path, e.into())),
    }
}

#[cfg(not(unix))]
fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path = dir.join("LOCK");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| WalError::io("opening the log's lock file", &path, e))
}

/// Writes a new segment's header; the file is synced, and its folder.
fn create_segment(dir: &Path, first: u64) -> io::Result<(File, PathBuf)> {
    let path = dir.join(segment::name(first));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)?;
    file.write_all(&segment::header(first))?;
    file.sync_data()?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// One segment's scan at open.
struct Scanned {
    last: u64,
    last_stamp: Option<i64>,
    entries: u64,
    /// Where the valid bytes end.
    end: u64,
    torn: Option<Torn>,
}

/// Reads a segment whole, checking every frame (decoding every entry of
/// the last segment, and the last entry of the others); a torn tail is
/// allowed only when `last`.
fn scan(
    path: &Path,
    first: u64,
    expect: Option<u64>,
    mut stamp: Option<i64>,
    last: bool,
) -> Result<Scanned, WalError> {
    let file = File::open(path).map_err(|e| WalError::io("opening a segment", path, e))?;
    let io_err = |e| WalError::io("reading a segment", path, e);
    let file_len = file.metadata().map_err(io_err)?.len();
    if let Some(expect) = expect {
        if first != expect {
            return Err(WalError::corrupt(
                path,
                0,
                format!("a segment starting at seq {first} where seq {expect} was expected (a segment is missing)"),
            ));
        }
    }
    let mut head = Vec::with_capacity(HEADER_LEN as usize);
    (&file)
        .take(HEADER_LEN)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    match segment::check_header(&head, first) {
        Header::Valid(seq) if seq == first => {}
        Header::Valid(seq) => {
            return Err(WalError::corrupt(
                path,
                0,
                format!("a header naming first seq {seq}, not the file name's {first}"),
            ))
        }
        Header::Torn if last => {
            return Ok(Scanned {
                last: first - 1,
                last_stamp: stamp,
                entries: 0,
                end: 0,
                torn: Some(Torn {
                    segment: path.to_path_buf(),
                    offset: 0,
                    bytes: file_len,
                }),
            })
        }
        Header::Torn => {
            return Err(WalError::corrupt(
                path,
                0,
                "a header cut short, in a segment that is not the last",
            ))
        }
        Header::Bad(why) => return Err(WalError::corrupt(path, 0, why)),
    }
    let mut reader = FrameReader::new(file, path.to_path_buf(), HEADER_LEN);
    let mut seq = first;
    let mut entries = 0;
    loop {
        let pos = reader.pos;
        let torn = |bytes: u64| Torn {
            segment: path.to_path_buf(),
            offset: pos,
            bytes,
        };
        let frame = reader.frame().map_err(io_err)?;
        let bad = match frame {
            segment::Frame::Whole { next } => {
                // An earlier segment (rolled after a sync) is checked by its
                // frames, CRCs and seqs; its last entry and every entry of
                // the last segment are decoded whole too. (Decoding costs
                // ten times the CRC: opening a day of log must not take
                // minutes.)
                if !last && next < file_len && entry::quick_seq(reader.payload()) == Some(seq) {
                    seq += 1;
                    entries += 1;
                    reader.advance(next);
                    continue;
                }
                let logged = entry::decode(reader.payload())
                    .map_err(|why| WalError::corrupt(path, pos, why))?;
                if logged.seq != seq {
                    return Err(WalError::corrupt(
                        path,
                        pos,
                        format!("seq {} where seq {seq} was expected", logged.seq),
                    ));
                }
                if stamp.is_some_and(|s| logged.stamp < s) {
                    return Err(WalError::corrupt(
                        path,
                        pos,
                        format!(
                            "stamp {} below the stamp before it ({})",
                            logged.stamp,
                            stamp.unwrap_or_default()
                        ),
                    ));
                }
                stamp = Some(logged.stamp);
                seq += 1;
                entries += 1;
                reader.advance(next);
                continue;
            }
            segment::Frame::End => {
                return Ok(Scanned {
                    last: seq - 1,
                    last_stamp: stamp,
                    entries,
                    end: pos,
                    torn: None,
                });
            }
            segment::Frame::Partial { avail } if !last => {
                format!("a frame cut short ({avail} bytes), in a segment that is not the last")
            }
            segment::Frame::Partial { avail } => {
                format!("a frame reaching past the end of the file ({avail} bytes there), with whole frames after it")
            }
            segment::Frame::BadLength { len } => {
                format!("a frame length of {len} (1 to {MAX_PAYLOAD})")
            }
            segment::Frame::BadCrc { .. } => "a frame whose checksum is wrong".to_string(),
        };
        if last && reader.torn_tail(&frame).map_err(io_err)? {
            return Ok(Scanned {
                last: seq - 1,
                last_stamp: stamp,
                entries,
                end: pos,
                torn: Some(torn(file_len - pos)),
            });
        }
        return Err(WalError::corrupt(path, pos, bad));
    }
}

impl Wal {
    /// Opens the log in `dir` (made if missing): checks every segment and
    /// frame, cuts a torn tail away (reported in [`Recovered::torn`]),
    /// and starts the writer thread. Any other damage is an error naming
    /// the segment file and byte offset: nothing is skipped.
    pub fn open(
        dir: impl AsRef<Path>,
        mut options: WalOptions,
    ) -> Result<(Wal, Recovered), WalError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| WalError::io("making the log's folder", &dir, e))?;
        let lock_file = lock_dir(&dir)?;
        let found =
            segment::list(&dir).map_err(|e| WalError::io("listing the log's folder", &dir, e))?;
        let mut metas = Vec::with_capacity(found.len());
        let mut torn = None;
        let mut entries = 0;
        let mut stamp = None;
        let mut expect = None;
        let mut end = HEADER_LEN;
        for (i, (first, path)) in found.iter().enumerate() {
            let last = i + 1 == found.len();
            let s = scan(path, *first, expect, stamp, last)?;
            if let Some(t) = s.torn {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| WalError::io("opening the last segment", path, e))?;
                let io_err = |e| WalError::io("cutting a torn tail away", path, e);
                if s.end == 0 {
                    // A header cut short: the segment written again, empty.
                    drop(file);
                    create_segment(&dir, *first).map_err(io_err)?;
                } else {
                    file.set_len(s.end).map_err(io_err)?;
                    file.sync_all().map_err(io_err)?;
                }
                torn = Some(t);
            }
            end = s.end.max(HEADER_LEN);
            entries += s.entries;
            stamp = s.last_stamp;
            expect = Some(s.last + 1);
            metas.push(SegMeta {
                first: *first,
                path: path.clone(),
                last: s.last,
                last_stamp: s.last_stamp,
            });
        }
        let next_seq = expect.unwrap_or(1);
        let (file, path) = if metas.is_empty() {
            let (file, path) = create_segment(&dir, 1)
                .map_err(|e| WalError::io("making the first segment", &dir, e))?;
            metas.push(SegMeta {
                first: 1,
                path: path.clone(),
                last: 0,
                last_stamp: None,
            });
            (file, path)
        } else {
            let path = metas.last().expect("a segment").path.clone();
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| WalError::io("opening the last segment", &path, e))?;
            file.seek(SeekFrom::Start(end))
                .map_err(|e| WalError::io("opening the last segment", &path, e))?;
            (file, path)
        };
        let current = metas.last().expect("a segment");
        let seg_entries = current.last + 1 - current.first;
        let recovered = Recovered {
            first_seq: metas[0].first,
            next_seq,
            last_stamp: stamp,
            entries,
            segments: metas.len(),
            torn: torn.clone(),
        };
        let counters = Counters::default();
        counters
            .torn
            .store(u64::from(torn.is_some()), Ordering::Relaxed);
        let clock = options
            .clock
            .take()
            .unwrap_or_else(|| Arc::new(wall_clock_ms));
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            queue: Mutex::new(Queue {
                items: Vec::new(),
                bytes: 0,
                closed: false,
                last_stamp: stamp.unwrap_or(i64::MIN),
            }),
            wake: Condvar::new(),
            queue_entries: options.queue_entries.max(1),
            queue_bytes: options.queue_bytes,
            clock,
            counters,
            health: Mutex::new(None),
            committed: Arc::new(AtomicU64::new(next_seq - 1)),
            segments: Mutex::new(metas),
            retention: options.retention,
        });
        let completer = Completer {
            shared: shared.clone(),
            consumer: options.consumer.take(),
        };
        let writer = Writer {
            shared: shared.clone(),
            policy: options.fsync,
            segment_size: options.segment_size.max(HEADER_LEN + 1),
            completer,
            file,
            path,
            len: end,
            entries: seg_entries,
            next_seq,
            buf: Vec::new(),
            dirty: false,
            last_sync: Instant::now(),
            cut_to: None,
            sync_failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("cepheid-wal".into())
            .spawn(move || writer.run())
            .map_err(|e| WalError::io("starting the log's writer thread", &dir, e))?;
        Ok((
            Wal {
                shared,
                thread: Some(thread),
                _lock: lock_file,
            },
            recovered,
        ))
    }

    /// A handle to append with (clone it freely).
    pub fn appender(&self) -> Appender {
        Appender {
            shared: self.shared.clone(),
        }
    }

    /// Healthy, or the reason of the last failed write or sync, until a
    /// later group is written (and synced, under `Always`).
    pub fn health(&self) -> Health {
        self.shared.health()
    }

    /// The counters, for `/metrics`.
    pub fn stats(&self) -> WalStats {
        self.shared.stats()
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The last seq written and durable per the fsync policy (0 before
    /// the first); its completion may still be running.
    pub fn committed_seq(&self) -> u64 {
        self.shared.committed.load(Ordering::Acquire)
    }

    /// A reader from `from_seq` (0: the first entry kept) that follows
    /// this log: it hands out an entry only once it is durable per the
    /// policy (synced under `Always`; never the bytes of a failed group),
    /// and says "nothing yet" past that.
    pub fn reader(&self, from_seq: u64) -> Result<WalReader, WalError> {
        WalReader::following(&self.shared.dir, from_seq, self.shared.committed.clone())
    }

    /// Deletes the oldest segments whose entries are all below `seq` (the
    /// caller's last checkpoint: a restart never replays before it) and
    /// whose newest stamp is at least `WalOptions::retention` older than
    /// the log's newest stamp; never the segment being written. Returns
    /// how many segments it deleted.
    pub fn release_before(&self, seq: u64) -> Result<usize, WalError> {
        let retention = i64::try_from(self.shared.retention.as_millis()).unwrap_or(i64::MAX);
        let mut segments = lock(&self.shared.segments);
        let newest = segments.iter().rev().find_map(|s| s.last_stamp);
        let mut deleted = 0;
        while segments.len() > 1 {
            let oldest = &segments[0];
            let all_below = segments[1].first <= seq;
            let old_enough = match (oldest.last_stamp, newest) {
                (Some(stamp), Some(newest)) => newest.saturating_sub(stamp) >= retention,
                // An empty segment (not the last: none) holds nothing to keep.
                _ => true,
            };
            if !(all_below && old_enough) {
                break;
            }
            std::fs::remove_file(&oldest.path)
                .map_err(|e| WalError::io("deleting a released segment", &oldest.path, e))?;
            segments.remove(0);
            deleted += 1;
        }
        drop(segments);
        if deleted > 0 {
            self.shared
                .counters
                .released
                .fetch_add(deleted as u64, Ordering::Relaxed);
            let _ = sync_dir(&self.shared.dir);
        }
        Ok(deleted)
    }

    /// Writes what is queued, syncs, stops the writer thread; its counters.
    /// An error if the last sync failed.
    pub fn close(mut self) -> Result<WalStats, WalError> {
        match self.stop() {
            Some(e) => Err(e),
            None => Ok(self.shared.stats()),
        }
    }

    fn stop(&mut self) -> Option<WalError> {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_one();
        let thread = self.thread.take()?;
        thread.join().unwrap_or(Some(WalError::Closed))
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Writer {
    fn run(mut self) -> Option<WalError> {
        let mut batch = Vec::new();
        loop {
            let mut sync_due = false;
            {
                let mut q = lock(&self.shared.queue);
                loop {
                    if !q.items.is_empty() {
                        std::mem::swap(&mut q.items, &mut batch);
                        q.bytes = 0;
                        break;
                    }
                    if q.closed {
                        break;
                    }
                    match self.sync_deadline() {
                        Some(deadline) => {
                            let now = Instant::now();
                            if now >= deadline {
                                sync_due = true;
                                break;
                            }
                            q = self
                                .shared
                                .wake
                                .wait_timeout(q, deadline - now)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        None => q = self.shared.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
                    }
                }
            }
            if sync_due {
                self.sync_now();
                continue;
            }
            if batch.is_empty() {
                // Closed, and nothing left: a failed group's bytes cut
                // away if they are still there, the last sync.
                if let Err(e) = self.cut() {
                    self.failed(&e);
                    return Some(e);
                }
                if self.dirty {
                    return self.sync_now();
                }
                return None;
            }
            self.group(&mut batch);
            if self.sync_deadline().is_some_and(|d| Instant::now() >= d) {
                self.sync_now();
            }
        }
    }

    /// When the next sync is due under `Interval`, if there is anything to sync.
    fn sync_deadline(&self) -> Option<Instant> {
        match self.policy {
            FsyncPolicy::Interval(every) if self.dirty => Some(self.last_sync + every),
            _ => None,
        }
    }

    fn sync_now(&mut self) -> Option<WalError> {
        let result = self.timed_sync();
        self.last_sync = Instant::now();
        match result {
            Ok(()) => {
                self.dirty = false;
                if self.sync_failing {
                    self.sync_failing = false;
                    *lock(&self.shared.health) = None;
                }
                None
            }
            Err(e) => {
                let e = WalError::io("syncing the log", &self.path, e);
                self.sync_failing = true;
                self.failed(&e);
                Some(e)
            }
        }
    }

    fn failed(&self, e: &WalError) {
        self.shared
            .counters
            .failures
            .fetch_add(1, Ordering::Relaxed);
        *lock(&self.shared.health) = Some(e.to_string());
    }

    /// Writes one group, or fails all its entries.
    fn group(&mut self, batch: &mut Vec<Pending>) {
        let first = self.next_seq;
        let n = batch.len() as u64;
        let last = first + n - 1;
        if let Err(e) = self.prepare(first) {
            self.fail(batch, e);
            return;
        }
        self.buf.clear();
        for (i, p) in batch.iter().enumerate() {
            let at = self.buf.len();
            self.buf.extend_from_slice(&[0; 8]);
            entry::write_payload(&mut self.buf, first + i as u64, p.stamp, &p.body);
            let len = (self.buf.len() - at - 8) as u32;
            let crc = crc32fast::hash(&self.buf[at + 8..]);
            self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
            self.buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        }
        let start = self.len;
        let mut result = self.file.write_all(&self.buf).map_err(|e| ("writing", e));
        if result.is_ok() {
            match self.policy {
                FsyncPolicy::Always => {
                    result = self.timed_sync().map_err(|e| ("syncing", e));
                    self.last_sync = Instant::now();
                }
                FsyncPolicy::Interval(_) | FsyncPolicy::Never => self.dirty = true,
            }
        }
        if let Err((doing, e)) = result {
            let e = WalError::io(format!("{doing} seqs {first}..={last}"), &self.path, e);
            // Cut the group away, so that its seqs are written again by
            // the next group: no hole and no duplicate on disk.
            self.cut_to = Some(start);
            let _ = self.cut();
            self.fail(batch, e);
            return;
        }
        self.len += self.buf.len() as u64;
        self.entries += n;
        self.next_seq = last + 1;
        let c = &self.shared.counters;
        c.appended.fetch_add(n, Ordering::Relaxed);
        c.groups.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        c.largest_group.fetch_max(n, Ordering::Relaxed);
        let last_stamp = batch.last().map(|p| p.stamp);
        {
            let mut segments = lock(&self.shared.segments);
            let current = segments.last_mut().expect("the current segment");
            current.last = last;
            current.last_stamp = last_stamp;
        }
        if !self.sync_failing {
            *lock(&self.shared.health) = None;
        }
        self.shared.committed.store(last, Ordering::Release);
        self.complete(Completion::Logged {
            first,
            items: std::mem::take(batch),
        });
    }

    /// Before a group: a failed group cut away, the segment rolled if full.
    fn prepare(&mut self, first: u64) -> Result<(), WalError> {
        self.cut()?;
        if self.len >= self.segment_size && self.entries > 0 {
            self.roll(first)?;
        }
        Ok(())
    }

    /// Cuts a failed group's bytes away (synced: they never come back).
    fn cut(&mut self) -> Result<(), WalError> {
        let Some(to) = self.cut_to else { return Ok(()) };
        let result = self
            .file
            .set_len(to)
            .and_then(|()| self.file.seek(SeekFrom::Start(to)))
            .and_then(|_| self.file.sync_all());
        match result {
            Ok(()) => {
                self.cut_to = None;
                Ok(())
            }
            Err(e) => {
                let e = WalError::io(
                    format!("cutting a failed group away at byte {to}"),
                    &self.path,
                    e,
                );
                Err(e)
            }
        }
    }

    /// `fdatasync` of the current segment, counted and timed.
    fn timed_sync(&self) -> io::Result<()> {
        let start = Instant::now();
        let result = self.file.sync_data();
        let c = &self.shared.counters;
        c.syncs.fetch_add(1, Ordering::Relaxed);
        c.sync_micros
            .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        result
    }

    /// Ends the current segment (synced whatever the policy: only the
    /// last segment may ever have a torn tail) and starts one at `first`.
    fn roll(&mut self, first: u64) -> Result<(), WalError> {
        self.timed_sync()
            .map_err(|e| WalError::io("syncing a full segment", &self.path, e))?;
        self.dirty = false;
        let (file, path) = create_segment(&self.shared.dir, first).map_err(|e| {
            WalError::io(
                "starting a segment",
                self.shared.dir.join(segment::name(first)),
                e,
            )
        })?;
        self.file = file;
        self.path = path.clone();
        self.len = HEADER_LEN;
        self.entries = 0;
        lock(&self.shared.segments).push(SegMeta {
            first,
            path,
            last: first - 1,
            last_stamp: None,
        });
        self.shared.counters.rolled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn fail(&mut self, batch: &mut Vec<Pending>, e: WalError) {
        self.failed(&e);
        self.complete(Completion::Failed {
            items: std::mem::take(batch),
            error: e,
        });
    }

    /// Calls a group's completions, then the consumer, on this thread. (A
    /// thread of their own would let the next group's write begin before
    /// them, at the cost of a wake and a switch of threads for every
    /// group: under a service's load that cost more than the callbacks.)
    fn complete(&mut self, completion: Completion) {
        self.completer.run_one(completion);
    }
}

/// A group for its completions.
enum Completion {
    /// Written and durable per the policy: its seqs from `first`.
    Logged { first: u64, items: Vec<Pending> },
    /// Failed, cut away.
    Failed {
        items: Vec<Pending>,
        error: WalError,
    },
}

/// Calls each group's completions in seq order, then the consumer.
struct Completer {
    shared: Arc<Shared>,
    consumer: Option<Consumer>,
}

impl Completer {
    fn run_one(&mut self, completion: Completion) {
        let panics = &self.shared.counters.panics;
        match completion {
            Completion::Logged { first, items } => {
                let mut logged = Vec::with_capacity(if self.consumer.is_some() {
                    items.len()
                } else {
                    0
                });
                for (i, p) in items.into_iter().enumerate() {
                    let at = Logged {
                        seq: first + i as u64,
                        stamp: p.stamp,
                    };
                    let done = p.done;
                    if catch_unwind(AssertUnwindSafe(|| done(Ok(at)))).is_err() {
                        panics.fetch_add(1, Ordering::Relaxed);
                    }
                    if self.consumer.is_some() {
                        logged.push(Arc::new(LoggedEntry {
                            seq: at.seq,
                            stamp: at.stamp,
                            entry: p.entry,
                        }));
                    }
                }
                if let Some(consumer) = self.consumer.as_mut() {
                    if catch_unwind(AssertUnwindSafe(|| consumer(&logged))).is_err() {
                        panics.fetch_add(1, Ordering::Relaxed);
                        *lock(&self.shared.health) = Some("the log's consumer panicked".into());
                    }
                }
            }
            Completion::Failed { items, error } => {
                for p in items {
                    let done = p.done;
                    let e = error.clone();
                    if catch_unwind(AssertUnwindSafe(|| done(Err(e)))).is_err() {
                        panics.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}
