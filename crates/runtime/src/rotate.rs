//! Output files that can be rotated while `cepheid run` writes them
//! (issue 26, item 10), as long-running services allow:
//! - **`create`** (logrotate moves the file away and starts an empty one):
//!   when the path names another file than the one open (or none), the
//!   output is opened again under its name (appending, created if
//!   needed). Looked at on every flush (a checkpoint, a live stream's
//!   pause, the end) and at most every second while writing.
//! - **`copytruncate`** (the file copied, then truncated in place): the
//!   file is open for appending (`O_APPEND`), so the next records go to its
//!   new end, not to the old offset (which left the file starting with
//!   NUL bytes).
//!
//! Checkpoints agree with it: one records the output's length and a CRC-32
//! of its first bytes ([`head_crc`]); resuming, an output shorter than
//! that, or with other first bytes, was rotated since the checkpoint: it
//! is started empty and the records after the checkpoint are written into
//! it (the rotated file may hold some of them too: at least once across a
//! rotation), instead of every restart being refused (`resume.rs`,
//! [`rotated_since`]).
//!
//! Both executors write their files through [`Files`](crate::Files),
//! which opens them with [`open`], measures them at a checkpoint with
//! [`measure`] and applies [`rotated_since`] on resuming.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Bytes at the start of an output that recognize it.
const HEAD_BYTES: u64 = 4096;
/// Longest time between two looks at the path while writing.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The file open now under an output's name, shared with the checkpoints
/// (which sync and measure it).
pub(crate) type Current = Arc<Mutex<File>>;

/// Locks `current` (a panic elsewhere does not poison the output).
pub(crate) fn lock(current: &Current) -> MutexGuard<'_, File> {
    current
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A regular output file written by appending, opened again when rotated.
pub(crate) struct Reopening {
    path: PathBuf,
    current: Current,
    id: Option<(u64, u64)>,
    looked: Instant,
    /// Lock the file opened after a rotation (`lock.rs`; the first one was
    /// locked before it was opened)?
    lock: bool,
}

impl Reopening {
    /// Opens `path` for appending, its length set to `len` (0: empty;
    /// `None`: as it is);
    /// with `lock`, a file opened after a rotation is locked as the first
    /// one was (`lock::output`).
    pub(crate) fn open(path: &Path, len: Option<u64>, lock: bool) -> io::Result<Reopening> {
        let file = open_appending(path)?;
        if let Some(len) = len {
            file.set_len(len)?;
        }
        let id = file_id(&file);
        Ok(Reopening {
            path: path.to_path_buf(),
            current: Arc::new(Mutex::new(file)),
            id,
            looked: Instant::now(),
            lock,
        })
    }

    /// The file open now.
    pub(crate) fn current(&self) -> Current {
        Arc::clone(&self.current)
    }

    /// Opens the path again when it names another file (or none).
    fn follow_rotation(&mut self) -> io::Result<()> {
        self.looked = Instant::now();
        let now = std::fs::metadata(&self.path).ok().map(|m| meta_id(&m));
        if now.is_some() && now == self.id {
            return Ok(());
        }
        // Moved away (and maybe created anew): what is buffered went to
        // the old file; the next records go to the name.
        lock(&self.current).flush()?;
        let file = open_appending(&self.path)?;
        if self.lock {
            // (best effort: the run goes on writing its output)
            let _ = crate::lock::try_lock(&file);
        }
        self.id = file_id(&file);
        *lock(&self.current) = file;
        Ok(())
    }
}

impl Write for Reopening {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.looked.elapsed() >= LOOK_EVERY {
            self.follow_rotation()?;
        }
        lock(&self.current).write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        lock(&self.current).flush()?;
        self.follow_rotation()
    }
}

/// An output opened by [`open`]: what to write to, and the file open now
/// under its name when it is a regular file (`None`: a device or a FIFO,
/// written as standard output is: neither synced nor measured).
pub(crate) type Opened = (Box<dyn Write + Send>, Option<Current>);

/// Opens the output `path`: a regular file (or none yet) for appending,
/// opened again when rotated ([`Reopening`]), emptied unless `keep` (a
/// resumed run truncated it to the checkpoint's length already); with
/// `lock`, a file opened after a rotation is locked as the first one was.
/// A device or a FIFO is created as before.
pub(crate) fn open(path: &Path, keep: bool, lock: bool) -> io::Result<Opened> {
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    if special {
        return File::create(path).map(|f| (Box::new(f) as Box<dyn Write + Send>, None));
    }
    let len = if keep { None } else { Some(0) };
    Reopening::open(path, len, lock).map(|f| {
        let current = f.current();
        (Box::new(f) as Box<dyn Write + Send>, Some(current))
    })
}

/// An output's length and the CRC-32 of its first bytes ([`head_crc`]):
/// what a checkpoint records of it.
pub(crate) type Measured = (u64, Option<u32>);

/// The [`Measured`] of the file open now under an output's name, synced
/// first.
pub(crate) fn measure(current: &Current) -> io::Result<Measured> {
    let file = lock(current);
    file.sync_data()?;
    let len = file.metadata()?.len();
    Ok((len, head_crc(&file, len)))
}

/// The [`Measured`] of the file open now under an output's name, not
/// synced, and a handle of its own to it: syncing that handle later
/// ([`File::sync_data`]) makes every byte measured durable, without the
/// lock its writer takes.
pub(crate) fn measure_unsynced(current: &Current) -> io::Result<(Measured, File)> {
    let file = lock(current);
    let len = file.metadata()?.len();
    Ok(((len, head_crc(&file, len)), file.try_clone()?))
}

/// An output rotated since the checkpoint that recorded its length and
/// first bytes ([`rotated_since`]); its `Display` is what the warning
/// says after `warning: checkpoint ...: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rotated {
    /// The output.
    pub path: PathBuf,
    /// Its length now.
    pub now: u64,
    /// Its length at the checkpoint.
    pub then: u64,
}

impl fmt::Display for Rotated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} was rotated since (it holds {} bytes, not the {} it held then, or other ones): it is started empty and the records after the checkpoint are written into it (the rotated file may hold some of them too)",
            self.path.display(),
            self.now,
            self.then
        )
    }
}

/// The rule on resuming: the output at `path`, which held `then` bytes
/// whose first ones had the CRC-32 `head` (`None`: not recorded, an older
/// checkpoint) at the checkpoint, was rotated since (logrotate's `create`
/// or `copytruncate`) when it is shorter now (or missing), or its first
/// bytes differ. Such an output is started empty; otherwise it is
/// truncated to `then`.
pub(crate) fn rotated_since(path: &Path, then: u64, head: Option<u32>) -> Option<Rotated> {
    let now = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let same_head = || match head {
        None => true,
        Some(head) => File::open(path).ok().and_then(|f| head_crc(&f, then)) == Some(head),
    };
    (now < then || !same_head()).then(|| Rotated {
        path: path.to_path_buf(),
        now,
        then,
    })
}

/// Opens `path` for appending (created if need be), readable too when it
/// may be (a checkpoint reads its first bytes; a file that may only be
/// written is written, its first bytes then unknown).
fn open_appending(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    match options.clone().read(true).open(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => options.open(path),
        opened => opened,
    }
}

/// The CRC-32 of the first bytes (up to 4 KiB, at most `len`) of `file`,
/// or `None` when it holds fewer than that.
pub(crate) fn head_crc(file: &File, len: u64) -> Option<u32> {
    let mut bytes = vec![0; usize::try_from(len.min(HEAD_BYTES)).ok()?];
    read_exact_at(file, &mut bytes).ok()?;
    Some(crc32fast::hash(&bytes))
}

#[cfg(unix)]
fn read_exact_at(file: &File, bytes: &mut [u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, 0)
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, bytes: &mut [u8]) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file.try_clone()?;
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(bytes)
}

#[cfg(unix)]
fn meta_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Elsewhere no identity: a file moved away is not seen (a copy and a
/// truncation are, by appending).
#[cfg(not(unix))]
fn meta_id(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn file_id(file: &File) -> Option<(u64, u64)> {
    file.metadata().ok().map(|m| meta_id(&m))
}
