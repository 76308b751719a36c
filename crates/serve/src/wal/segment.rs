//! Segment files: their names, their header, and reading their frames
//! (`docs/wal.md`, "Files" and "Frames").

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The first bytes of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"CEPHWAL\0";
/// The format this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The header: magic (8), version (1), reserved zeros (3), first seq (8,
/// LE), CRC-32 of the 20 bytes before it (4, LE).
pub(crate) const HEADER_LEN: u64 = 24;
/// A frame's own bytes: `len: u32 LE | crc32: u32 LE`.
pub(crate) const FRAME_HEAD: usize = 8;
/// The largest payload written or read (16 MiB): a length above it is
/// corruption, never a torn write.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// The file name of the segment whose first entry is `seq`.
pub(crate) fn name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// The first seq a segment's file name says, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The log's segments, by first seq.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        if let Some(seq) = item.file_name().to_str().and_then(parse_name) {
            segments.push((seq, item.path()));
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// A segment's header.
pub(crate) fn header(first_seq: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8] = FORMAT_VERSION;
    h[12..20].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What a segment's first bytes are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// A valid header naming this first seq.
    Valid(u64),
    /// Fewer bytes than a header, or only zeros: a segment whose creation
    /// a crash cut (a torn tail when it is the last segment).
    Torn,
    /// Anything else (the reason).
    Bad(String),
}

/// The header of the segment named `first`: a partial one is torn only
/// if it is the start of the header that segment gets.
pub(crate) fn check_header(bytes: &[u8], first: u64) -> Header {
    if bytes.len() < HEADER_LEN as usize {
        if header(first).starts_with(bytes) || bytes.iter().all(|&b| b == 0) {
            return Header::Torn;
        }
        return Header::Bad("a header that is not a log segment's".into());
    }
    let h = &bytes[..HEADER_LEN as usize];
    if h.iter().all(|&b| b == 0) {
        return Header::Torn;
    }
    if h[..8] != MAGIC {
        return Header::Bad("no segment magic (`CEPHWAL\\0`)".into());
    }
    if h[8] != FORMAT_VERSION {
        return Header::Bad(format!(
            "format version {} (this build reads {FORMAT_VERSION})",
            h[8]
        ));
    }
    let crc = u32::from_le_bytes(h[20..24].try_into().expect("4 bytes"));
    if crc != crc32fast::hash(&h[..20]) || h[9..12] != [0, 0, 0] {
        return Header::Bad("a header whose checksum is wrong".into());
    }
    Header::Valid(u64::from_le_bytes(h[12..20].try_into().expect("8 bytes")))
}

/// What is at a frame's offset.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Frame {
    /// A whole frame whose checksum holds: its payload is
    /// `reader.payload()`, the next frame at `next`.
    Whole { next: u64 },
    /// The file ends here, between frames.
    End,
    /// The file ends inside the frame (`avail` bytes of it).
    Partial { avail: u64 },
    /// A length of 0 or above [`MAX_PAYLOAD`].
    BadLength { len: u32 },
    /// A whole frame whose checksum is wrong; the frame would end at `end`.
    BadCrc { end: u64 },
}

/// Reads a segment's frames through a buffer, at explicit offsets: the
/// bytes past the last one handed out can be dropped ([`Self::forget_ahead`])
/// and read again, as a follower must when the writer cut a failed group
/// back and wrote it again.
pub(crate) struct FrameReader {
    file: File,
    pub(crate) path: PathBuf,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    buf_at: u64,
    /// The file offset the next frame starts at.
    pub(crate) pos: u64,
    /// The payload of the last whole frame, in `buf`.
    payload: (usize, usize),
}

const CHUNK: usize = 256 << 10;

impl FrameReader {
    pub(crate) fn new(file: File, path: PathBuf, pos: u64) -> FrameReader {
        FrameReader {
            file,
            path,
            buf: Vec::new(),
            buf_at: pos,
            pos,
            payload: (0, 0),
        }
    }

    /// The bytes from `pos`, at least `want` of them if the file has them;
    /// fewer means the file ends.
    fn fill(&mut self, want: usize) -> io::Result<&[u8]> {
        let start = (self.pos - self.buf_at) as usize;
        if self.buf.len() - start < want {
            // Drop what was read already, then read on from the buffer's end.
            self.buf.drain(..start);
            self.buf_at = self.pos;
            self.file
                .seek(SeekFrom::Start(self.buf_at + self.buf.len() as u64))?;
            let goal = want.max(CHUNK);
            while self.buf.len() < goal {
                let old = self.buf.len();
                self.buf.resize(goal, 0);
                match self.file.read(&mut self.buf[old..]) {
                    Ok(0) => {
                        self.buf.truncate(old);
                        break;
                    }
                    Ok(n) => {
                        self.buf.truncate(old + n);
                        if self.buf.len() >= want {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
                    Err(e) => {
                        self.buf.truncate(old);
                        return Err(e);
                    }
                }
            }
        }
        let start = (self.pos - self.buf_at) as usize;
        Ok(&self.buf[start..])
    }

    /// Drops the bytes buffered past `pos`: they are read from the file
    /// again next time.
    pub(crate) fn forget_ahead(&mut self) {
        let start = (self.pos - self.buf_at) as usize;
        self.buf.truncate(start);
    }

    /// The frame at `pos` (which does not move: [`Self::advance`]).
    pub(crate) fn frame(&mut self) -> io::Result<Frame> {
        let pos = self.pos;
        let head = self.fill(FRAME_HEAD)?;
        if head.is_empty() {
            return Ok(Frame::End);
        }
        if head.len() < FRAME_HEAD {
            return Ok(Frame::Partial {
                avail: head.len() as u64,
            });
        }
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        if len == 0 || len as usize > MAX_PAYLOAD {
            return Ok(Frame::BadLength { len });
        }
        let whole = FRAME_HEAD + len as usize;
        let bytes = self.fill(whole)?;
        if bytes.len() < whole {
            return Ok(Frame::Partial {
                avail: bytes.len() as u64,
            });
        }
        if crc32fast::hash(&bytes[FRAME_HEAD..whole]) != crc {
            return Ok(Frame::BadCrc {
                end: pos + whole as u64,
            });
        }
        let start = (pos - self.buf_at) as usize + FRAME_HEAD;
        self.payload = (start, start + len as usize);
        Ok(Frame::Whole {
            next: pos + whole as u64,
        })
    }

    /// The payload of the last whole frame.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.buf[self.payload.0..self.payload.1]
    }

    pub(crate) fn advance(&mut self, next: u64) {
        self.pos = next;
    }

    /// Whether `frame`, found at `pos` and not whole, is a torn tail (when
    /// in the last segment): a frame cut by the end of the file with no
    /// whole frame after it, a length or checksum gone bad with only zeros
    /// after it, or a bad checksum in the file's last frame. Anything else
    /// is damage.
    pub(crate) fn torn_tail(&mut self, frame: &Frame) -> io::Result<bool> {
        let pos = self.pos;
        let len = self.file.metadata()?.len();
        Ok(match *frame {
            Frame::Whole { .. } | Frame::End => false,
            Frame::Partial { .. } => !self.whole_frame_from(pos + 1)?,
            Frame::BadLength { .. } => self.zeros_from(pos)?,
            Frame::BadCrc { end } => end == len || self.zeros_from(pos + FRAME_HEAD as u64)?,
        })
    }

    /// Whether a whole frame with a good checksum starts anywhere at or
    /// after `from`. A payload is JSON text, which never holds a zero
    /// byte, and a frame's length (at most [`MAX_PAYLOAD`], below 2^24)
    /// always ends with one: no frame can be found inside a payload, so
    /// one found past a cut frame proves that the cut is damage, not a
    /// torn write (which leaves only the cut frame's own bytes).
    fn whole_frame_from(&mut self, from: u64) -> io::Result<bool> {
        self.file.seek(SeekFrom::Start(from))?;
        let mut rest = Vec::new();
        self.file.read_to_end(&mut rest)?;
        let n = rest.len();
        let mut p = 0;
        while p + FRAME_HEAD < n {
            if rest[p + 3] == 0 {
                let len = u32::from_le_bytes(rest[p..p + 4].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_le_bytes(rest[p + 4..p + 8].try_into().expect("4 bytes"));
                let end = p + FRAME_HEAD + len;
                if len > 0 && end <= n && crc32fast::hash(&rest[p + FRAME_HEAD..end]) == crc {
                    return Ok(true);
                }
            }
            p += 1;
        }
        Ok(false)
    }

    /// Whether every byte from `from` to the end of the file is zero (a
    /// file extended by the system but whose data never landed).
    fn zeros_from(&mut self, from: u64) -> io::Result<bool> {
        self.file.seek(SeekFrom::Start(from))?;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = match self.file.read(&mut chunk) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
        }
    }
}
