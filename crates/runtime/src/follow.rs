//! `--follow`: the events file read as `tail -F` reads it, a [`Read`] that
//! never ends.
//!
//! At the end of the file it waits for more: it wakes when the file's
//! folder reports a change to the file's name (the `notify` crate: inotify
//! on Linux), and also every [`POLL`] (or every [`POLL_ALONE`] when no
//! watcher could be set up, e.g. inotify's limits reached): file systems
//! such as NFS report no change events, and a missed event then costs at
//! most that delay instead of a stuck stream.
//!
//! Rotation: when the path names another file than the one open (renamed
//! away and recreated), the rest of the open file is read first, then the
//! new file from its beginning; when the file got shorter than what was
//! read (truncated, `copytruncate`), it is read again from its beginning.
//! A file truncated and written again past the old size before the next
//! look (`copytruncate` and a burst) is not shorter than what was read:
//! as `tail -F` and log shippers do, the file is also recognized by a
//! fingerprint of its first bytes (up to [`HEAD_BYTES`], kept as they are
//! read), compared before every read: when they differ, the file was
//! rewritten in place and is read again from its beginning (issue 26).
//! At such a switch `read` returns 0 once, an end of file: the caller
//! (`source.rs`) ends the old file's lines there (a last line without its
//! newline is a line, not the start of the new file's first one), and
//! starts the new file's with a fresh decoder (a CSV file's header) and
//! its own line numbers and byte offsets. While the path names no file, it
//! waits for one. Bytes written to the old file after the switch are not
//! read (as with `tail -F`).

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

#[cfg(feature = "watch")]
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// Longest wait at the end of the file between two looks at it, with a
/// watcher.
#[cfg(feature = "watch")]
pub const POLL: Duration = Duration::from_secs(1);
/// The same without a watcher.
pub const POLL_ALONE: Duration = Duration::from_millis(100);
/// Bytes at the start of the open file that recognize it (a file
/// rewritten in place has other first bytes).
pub const HEAD_BYTES: usize = 1024;

/// The watcher of a followed file's folder (none without feature `watch`).
#[cfg(feature = "watch")]
type Watching = RecommendedWatcher;
#[cfg(not(feature = "watch"))]
type Watching = ();

/// A followed file.
pub struct Follow {
    path: PathBuf,
    file: File,
    /// The open file's identity (device and inode).
    id: FileId,
    /// Bytes read from the open file (from its beginning).
    pos: u64,
    /// Its first bytes (up to [`HEAD_BYTES`], as many as were read).
    head: Vec<u8>,
    /// Did `read` switch to a new file (and return 0 for it) since
    /// [`take_switched`](Follow::take_switched) was last asked?
    switched: bool,
    /// A message whenever the folder reports a change to the file's name.
    wake: Receiver<()>,
    /// Keeps the watcher (and its thread) alive; `None` when polling.
    _watcher: Option<Watching>,
    poll: Duration,
}

/// A file's identity: the same file under any name, another file under
/// the same name. Device and inode, and the creation time where the file
/// system keeps one: a file removed and created again at once often gets
/// the inode number back.
type FileId = (u64, u64, Option<std::time::SystemTime>);

#[cfg(unix)]
fn file_id(meta: &Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino(), meta.created().ok())
}

#[cfg(not(unix))]
fn file_id(meta: &Metadata) -> FileId {
    // Without inodes, the creation time alone.
    (0, 0, meta.created().ok())
}

/// What happened to the followed path while at the end of the open file.
enum Change {
    /// Nothing: wait.
    None,
    /// The open file got shorter than what was read.
    Truncated,
    /// The path names another file now.
    Replaced,
}

impl Follow {
    /// Opens `path` to follow it from byte `offset` on; `warn` is told
    /// when its folder cannot be watched (then it is polled).
    pub fn open(path: &Path, offset: u64, warn: &mut dyn FnMut(String)) -> io::Result<Follow> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let id = file_id(&file.metadata()?);
        let (tx, wake) = mpsc::sync_channel(1);
        let (watcher, poll) = watch(path, tx, warn);
        let head = read_head(&file, offset.min(HEAD_BYTES as u64) as usize).unwrap_or_default();
        Ok(Follow {
            path: path.to_path_buf(),
            file,
            id,
            pos: offset,
            head,
            switched: false,
            wake,
            _watcher: watcher,
            poll,
        })
    }

    /// Has the path changed under the open file?
    fn change(&self) -> Change {
        match fs::metadata(&self.path) {
            // Renamed away and not recreated yet: wait for it.
            Err(_) => Change::None,
            Ok(meta) if file_id(&meta) != self.id => Change::Replaced,
            Ok(meta) if meta.len() < self.pos => Change::Truncated,
            Ok(_) => Change::None,
        }
    }

    /// Was the open file rewritten in place (its first bytes not those
    /// read), even when it is not shorter than what was read?
    fn rewritten(&self) -> bool {
        !self.head.is_empty()
            && read_head(&self.file, self.head.len()).map_or(true, |now| now != self.head)
    }

    /// The file from its beginning again, as a new file.
    fn restart(&mut self) -> io::Result<usize> {
        self.file.seek(SeekFrom::Start(0))?;
        self.pos = 0;
        self.head.clear();
        self.switched = true;
        Ok(0)
    }

    /// Bytes `bytes` were just read at `self.pos`: keeps those within the
    /// first [`HEAD_BYTES`], then moves on.
    fn advance(&mut self, bytes: &[u8]) {
        if self.head.len() as u64 == self.pos && self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.pos += bytes.len() as u64;
    }

    /// Waits for a change event or the poll interval.
    fn wait(&mut self) {
        match self.wake.recv_timeout(self.poll) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(self.poll),
        }
    }

    /// Did the last `read` that returned 0 switch to a new file (rather
    /// than the reader being closed)? Asking clears it.
    pub fn take_switched(&mut self) -> bool {
        std::mem::take(&mut self.switched)
    }

    /// The file open now.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.rewritten() {
                return self.restart();
            }
            let n = self.file.read(buf)?;
            if n > 0 {
                self.advance(&buf[..n]);
                return Ok(n);
            }
            match self.change() {
                Change::None => self.wait(),
                Change::Truncated => return self.restart(),
                Change::Replaced => {
                    // Lines written to the old file just before it was
                    // replaced come first.
                    let n = self.file.read(buf)?;
                    if n > 0 {
                        self.advance(&buf[..n]);
                        return Ok(n);
                    }
                    match File::open(&self.path) {
                        Ok(file) => {
                            self.id = file_id(&file.metadata()?);
                            self.file = file;
                            self.pos = 0;
                            self.head.clear();
                            self.switched = true;
                            return Ok(0);
                        }
                        // Gone again between the look and the opening.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => self.wait(),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

/// The folder's watcher (kept as long as the file is followed) and how
/// often to look at the file without news from it.
#[cfg(feature = "watch")]
fn watch(
    path: &Path,
    tx: mpsc::SyncSender<()>,
    warn: &mut dyn FnMut(String),
) -> (Option<RecommendedWatcher>, Duration) {
    let name = path.file_name().map(|n| n.to_os_string());
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match event {
            // Our own opening and reading of the file are no news.
            Ok(event) => {
                !matches!(event.kind, EventKind::Access(_))
                    && (event.need_rescan()
                        || event.paths.iter().any(|p| p.file_name() == name.as_deref()))
            }
            // An error of the watcher: look at the file.
            Err(_) => true,
        };
        if relevant {
            // One pending wake-up is enough.
            let _ = tx.try_send(());
        }
    });
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let watcher = watcher.and_then(|mut w| {
        w.watch(folder, RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    let (watcher, poll) = match watcher {
        Ok(w) => (Some(w), POLL),
        Err(e) => {
            warn(format!(
                "warning: cannot watch {} for changes ({e}); looking at it every {} ms",
                folder.display(),
                POLL_ALONE.as_millis()
            ));
            (None, POLL_ALONE)
        }
    };
    (watcher, poll)
}

/// Without the feature `watch`: no watcher, the file is polled.
#[cfg(not(feature = "watch"))]
fn watch(
    _path: &Path,
    _tx: mpsc::SyncSender<()>,
    _warn: &mut dyn FnMut(String),
) -> (Option<()>, Duration) {
    (None, POLL_ALONE)
}

/// The first `len` bytes of `file` (read where they are, the file's
/// position unchanged), or `None` when it holds fewer.
#[cfg(unix)]
fn read_head(file: &File, len: usize) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0; len];
    file.read_exact_at(&mut bytes, 0).ok()?;
    Some(bytes)
}

/// Elsewhere no fingerprint: a rewrite in place is seen only when the
/// file got shorter.
#[cfg(not(unix))]
fn read_head(_file: &File, _len: usize) -> Option<Vec<u8>> {
    Some(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cepheid_follow_{name}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Reads `follow` on a thread, handing over each chunk read.
    fn reader(mut follow: Follow) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0; 64];
            while let Ok(n) = follow.read(&mut buf) {
                // A switch to a new file reads as `|`.
                let chunk = match n {
                    0 if follow.take_switched() => b"|".to_vec(),
                    _ => buf[..n].to_vec(),
                };
                if tx.send(chunk).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Reads from `rx` until `want` bytes have come (at most 30 s).
    fn take(rx: &mpsc::Receiver<Vec<u8>>, want: &str) -> String {
        let mut got = Vec::new();
        while got.len() < want.len() {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(chunk) => got.extend(chunk),
                Err(_) => break,
            }
        }
        String::from_utf8(got).unwrap()
    }

    fn append(path: &Path, text: &str) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn reads_appends_rotations_and_truncations() {
        let dir = scratch("rotate");
        let path = dir.join("events");
        fs::write(&path, "one\n").unwrap();
        let rx = reader(Follow::open(&path, 0, &mut |w| panic!("{w}")).unwrap());
        assert_eq!(take(&rx, "one\n"), "one\n");
        append(&path, "two\nhalf");
        assert_eq!(take(&rx, "two\nhalf"), "two\nhalf");
        // Rotated: renamed away, a new file under the name.
        fs::rename(&path, dir.join("events.1")).unwrap();
        fs::write(&path, "three\n").unwrap();
        assert_eq!(take(&rx, "|three\n"), "|three\n");
        // Truncated and written again, shorter than before.
        fs::write(&path, "4\n").unwrap();
        assert_eq!(take(&rx, "|4\n"), "|4\n");
        // Removed, then created again (ext4 gives it the inode back).
        fs::remove_file(&path).unwrap();
        fs::write(&path, "five\n").unwrap();
        assert_eq!(take(&rx, "|five\n"), "|five\n");
        let _ = fs::remove_dir_all(&dir);
    }

    /// `copytruncate` and a burst larger than the old size written before
    /// the next look: the file is not shorter than what was read, and was
    /// read on from the old offset (the head of the new content lost,
    /// half-lines). Its first bytes tell (issue 26).
    #[test]
    fn a_file_rewritten_in_place_past_its_old_size_is_read_from_its_beginning() {
        let dir = scratch("copytruncate");
        let path = dir.join("events");
        fs::write(&path, "{\"ts\":1}\n{\"ts\":2}\n").unwrap();
        let mut follow = Follow::open(&path, 0, &mut |w| panic!("{w}")).unwrap();
        let mut buf = [0; 4096];
        let n = follow.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"ts\":1}\n{\"ts\":2}\n");
        // Truncated and written again at once, longer than before.
        let burst: String = (3..40).map(|t| format!("{{\"ts\":{t}}}\n")).collect();
        fs::write(&path, &burst).unwrap();
        assert_eq!(follow.read(&mut buf).unwrap(), 0);
        assert!(follow.take_switched());
        let mut got = Vec::new();
        while got.len() < burst.len() {
            let n = follow.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8(got).unwrap(), burst);
        // Resumed at an offset, its first bytes are read at the start.
        let mut resumed = Follow::open(&path, burst.len() as u64, &mut |w| panic!("{w}")).unwrap();
        fs::write(&path, burst.replace("\"ts\":3}", "\"ts\":9}") + "more\n").unwrap();
        assert_eq!(resumed.read(&mut buf).unwrap(), 0);
        assert!(resumed.take_switched());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn starts_at_an_offset() {
        let dir = scratch("offset");
        let path = dir.join("events");
        fs::write(&path, "one\ntwo\n").unwrap();
        let rx = reader(Follow::open(&path, 4, &mut |w| panic!("{w}")).unwrap());
        assert_eq!(take(&rx, "two\n"), "two\n");
        let _ = fs::remove_dir_all(&dir);
    }
}
