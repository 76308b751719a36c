//! Reading the log: from a seq, across segments, following a live log.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::entry::{self, LoggedEntry};
use super::segment::{self, Frame, FrameReader, Header, HEADER_LEN};
use super::WalError;

/// Reads logged entries in seq order from a seq, across segments,
/// checking every frame's checksum and seq.
///
/// At the log's end [`WalReader::next_entry`] returns `Ok(None)`: "nothing
/// yet". Called again later it goes on with what was appended since, so a
/// reader follows a live log by polling. A reader from
/// [`Wal::reader`](super::Wal::reader) never reads past the writer's
/// committed seq (durable under `FsyncPolicy::Always`); one from
/// [`WalReader::open`] (another process, a stopped log) reads every whole
/// frame whose checksum holds, and takes a cut or bad last frame of the
/// last segment for the end (being written, or a torn tail that the next
/// `Wal::open` cuts away). Damage anywhere else is an error naming the
/// segment file and byte offset.
///
/// Also an `Iterator` of `Result<LoggedEntry, WalError>`: `None` is the
/// end for now (the iterator may yield again later).
pub struct WalReader {
    dir: PathBuf,
    next_seq: u64,
    committed: Option<Arc<AtomicU64>>,
    /// The committed seq loaded before the bytes buffered now were read:
    /// frames up to it in the buffer are the writer's final bytes.
    fill_mark: u64,
    current: Option<Cursor>,
}

struct Cursor {
    /// The segment's first seq.
    first: u64,
    reader: FrameReader,
    /// The seq of the frame at `reader.pos`.
    seq: u64,
}

impl std::fmt::Debug for WalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalReader")
            .field("dir", &self.dir)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl WalReader {
    /// A reader of the log in `dir` from `from_seq` (0: from the first
    /// entry kept). [`WalError::Released`] when retention deleted it.
    pub fn open(dir: impl AsRef<Path>, from_seq: u64) -> Result<WalReader, WalError> {
        WalReader::new(dir.as_ref(), from_seq, None)
    }

    pub(crate) fn following(
        dir: &Path,
        from_seq: u64,
        committed: Arc<AtomicU64>,
    ) -> Result<WalReader, WalError> {
        WalReader::new(dir, from_seq, Some(committed))
    }

    fn new(
        dir: &Path,
        from_seq: u64,
        committed: Option<Arc<AtomicU64>>,
    ) -> Result<WalReader, WalError> {
        let mut reader = WalReader {
            dir: dir.to_path_buf(),
            next_seq: from_seq,
            committed,
            fill_mark: 0,
            current: None,
        };
        if !dir.is_dir() {
            return Err(WalError::io(
                "opening the log",
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
            ));
        }
        reader.current = reader.locate()?;
        Ok(reader)
    }

    /// The seq the next entry handed out will have (0 until the first
    /// segment is found, when reading from the first entry kept).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The segment holding `next_seq`.
    fn locate(&mut self) -> Result<Option<Cursor>, WalError> {
        let found = segment::list(&self.dir)
            .map_err(|e| WalError::io("listing the log's folder", &self.dir, e))?;
        let Some(&(first_kept, _)) = found.first() else {
            return Ok(None);
        };
        if self.next_seq == 0 {
            self.next_seq = first_kept;
        }
        let Some((first, path)) = found
            .iter()
            .rev()
            .find(|(first, _)| *first <= self.next_seq)
        else {
            return Err(WalError::Released {
                asked: self.next_seq,
                first_kept,
            });
        };
        self.open_segment(*first, path.clone())
    }

    /// Opens a segment at its first frame: `None` while its header is not
    /// whole yet (being made).
    fn open_segment(&self, first: u64, path: PathBuf) -> Result<Option<Cursor>, WalError> {
        let file = match File::open(&path) {
            Ok(file) => file,
            // Deleted by retention since it was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && first < self.next_seq => {
                return Err(WalError::Released {
                    asked: self.next_seq,
                    first_kept: first + 1,
                })
            }
            Err(e) => return Err(WalError::io("opening a segment", &path, e)),
        };
        let mut head = Vec::with_capacity(HEADER_LEN as usize);
        (&file)
            .take(HEADER_LEN)
            .read_to_end(&mut head)
            .map_err(|e| WalError::io("reading a segment", &path, e))?;
        match segment::check_header(&head, first) {
            Header::Valid(seq) if seq == first => {}
            Header::Valid(seq) => {
                return Err(WalError::corrupt(
                    &path,
                    0,
                    format!("a header naming first seq {seq}, not the file name's {first}"),
                ))
            }
            Header::Torn => return Ok(None),
            Header::Bad(why) => return Err(WalError::corrupt(&path, 0, why)),
        }
        Ok(Some(Cursor {
            first,
            reader: FrameReader::new(file, path, HEADER_LEN),
            seq: first,
        }))
    }

    /// The next entry, or `Ok(None)`: nothing (yet).
    pub fn next_entry(&mut self) -> Result<Option<LoggedEntry>, WalError> {
        loop {
            if let Some(committed) = &self.committed {
                let mark = committed.load(Ordering::Acquire);
                if self.next_seq > mark || mark == 0 {
                    return Ok(None);
                }
            }
            if self.current.is_none() {
                self.current = self.locate()?;
                if self.current.is_none() {
                    return Ok(None);
                }
            }
            let cur = self.current.as_mut().expect("a segment");
            if let Some(committed) = &self.committed {
                if cur.seq > self.fill_mark {
                    // Bytes buffered past the committed seq may be a failed
                    // group's, cut away and written again since.
                    self.fill_mark = committed.load(Ordering::Acquire);
                    cur.reader.forget_ahead();
                }
            }
            let pos = cur.reader.pos;
            let path = cur.reader.path.clone();
            let frame = cur
                .reader
                .frame()
                .map_err(|e| WalError::io("reading a segment", &path, e))?;
            let bad = match frame {
                Frame::Whole { next } => {
                    let payload = cur.reader.payload();
                    if cur.seq < self.next_seq && entry::quick_seq(payload) == Some(cur.seq) {
                        cur.reader.advance(next);
                        cur.seq += 1;
                        continue;
                    }
                    let logged =
                        entry::decode(payload).map_err(|why| WalError::corrupt(&path, pos, why))?;
                    if logged.seq != cur.seq {
                        return Err(WalError::corrupt(
                            &path,
                            pos,
                            format!("seq {} where seq {} was expected", logged.seq, cur.seq),
                        ));
                    }
                    cur.reader.advance(next);
                    cur.seq += 1;
                    if logged.seq < self.next_seq {
                        continue;
                    }
                    self.next_seq = logged.seq + 1;
                    return Ok(Some(logged));
                }
                Frame::End => {
                    let seq = cur.seq;
                    cur.reader.forget_ahead();
                    let next = self.dir.join(segment::name(seq));
                    // (An empty segment is the last one: none follows it.)
                    if seq > cur.first && next.exists() {
                        match self.open_segment(seq, next)? {
                            Some(cursor) => {
                                self.current = Some(cursor);
                                continue;
                            }
                            None => return Ok(None),
                        }
                    }
                    // Retention may have deleted this segment and the next
                    // while the reader was behind: say so, rather than wait
                    // for a seq that will never come.
                    if !cur.reader.path.exists() {
                        let found = segment::list(&self.dir)
                            .map_err(|e| WalError::io("listing the log's folder", &self.dir, e))?;
                        if let Some(&(first_kept, _)) = found.iter().find(|(first, _)| *first > seq)
                        {
                            return Err(WalError::Released {
                                asked: seq,
                                first_kept,
                            });
                        }
                    }
                    return Ok(None);
                }
                Frame::Partial { avail } => format!("a frame cut short ({avail} bytes)"),
                Frame::BadLength { len } => format!("a frame length of {len}"),
                Frame::BadCrc { .. } => "a frame whose checksum is wrong".to_string(),
            };
            // The last segment's tail (being written, or torn, as
            // `Wal::open` tells them): the end for now. Anywhere else, or
            // at a committed seq: damage.
            let seq = cur.seq;
            let tail = self.committed.is_none()
                && !self.dir.join(segment::name(seq)).exists()
                && cur
                    .reader
                    .torn_tail(&frame)
                    .map_err(|e| WalError::io("reading a segment", &path, e))?;
            if tail {
                cur.reader.forget_ahead();
                return Ok(None);
            }
            return Err(WalError::corrupt(&path, pos, bad));
        }
    }
}

impl Iterator for WalReader {
    type Item = Result<LoggedEntry, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}
