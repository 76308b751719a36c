//! A file cut in chunks on line boundaries, dealt to several readers in
//! turn ([`FileChunks`]): the shares of a file read by workers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The chunks of a file that reader `index` of `readers` reads: the file
/// is cut every `chunk_bytes` bytes, each cut moved to the start of the
/// next line, and chunk `k` goes to reader `k % readers`. Every line is in
/// exactly one chunk, and all readers move through the file together: in
/// a file in time order, through time together, so the dataflow's
/// frontier (their slowest watermark) trails none of them by more than a
/// few chunks, and little waits in memory.
///
/// An event's place in the file, for the order of equal times, is its
/// chunk's [`number`](FileChunk::number) then its line in the chunk (see
/// [`FileChunk::offset`]).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("cepheid-chunks-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("in.csv");
/// use std::io::Read;
/// use cepheid_runtime::source::FileChunks;
/// std::fs::write(&path, "ts,n\n1,a\n2,b\n3,c\n")?;
/// // chunks of 6 bytes: "ts,n\n1,a\n" (cut at 6, in `1,a`), "2,b\n" (cut
/// // at 12, in `2,b`), "3,c\n"; reader 1 of 2 takes chunk 1
/// let mut text = String::new();
/// for chunk in FileChunks::new(&path, 1, 2, 6)?.with_header(true) {
///     let chunk = chunk?;
///     assert_eq!((chunk.number, chunk.start), (1, 9));
///     chunk.reader.take(100).read_to_string(&mut text)?;
/// }
/// assert_eq!(text, "ts,n\n2,b\n");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct FileChunks {
    path: PathBuf,
    len: u64,
    chunk_bytes: u64,
    readers: u64,
    /// The next chunk to give.
    next: u64,
    header: Option<Arc<[u8]>>,
    /// Lines no chunk starts with ([`FileChunks::past_lines`]).
    past: Option<fn(&[u8]) -> bool>,
}

/// One chunk of a file (see [`FileChunks`]).
pub struct FileChunk {
    /// Its number in the file (from 0, in file order).
    pub number: u64,
    /// Its first byte in the file.
    pub start: u64,
    /// Does `reader` start with a copy of the file's first line (a CSV
    /// header, see [`FileChunks::with_header`])?
    pub header: bool,
    /// Its bytes (after the header copy, if any).
    pub reader: Box<dyn Read + Send>,
}

impl FileChunk {
    /// The place of line `line` of the chunk (numbered from 1 as
    /// [`Items`](cepheid_decode::Items) does, a header's copy its line
    /// 1): the chunk's number, then the line, so places grow in file
    /// order. What a worker's events are ordered by, and what cuts keep.
    pub fn offset(&self, line: u64) -> u64 {
        (self.number << 32) | (line & 0xffff_ffff)
    }
}

impl FileChunks {
    /// The chunks of reader `index` of `readers` (see [`FileChunks`]);
    /// `chunk_bytes` of at least 1.
    pub fn new(
        path: &Path,
        index: usize,
        readers: usize,
        chunk_bytes: u64,
    ) -> io::Result<FileChunks> {
        let len = File::open(path)?.metadata()?.len();
        Ok(FileChunks {
            path: path.to_path_buf(),
            len,
            chunk_bytes: chunk_bytes.max(1),
            readers: readers.max(1) as u64,
            next: index as u64,
            header: None,
            past: None,
        })
    }

    /// No chunk starts with a line that `past` accepts: a cut before such
    /// lines moves past them (they end the chunk before). A control record
    /// (`$rules`) then applies at the watermark of the events before it
    /// in its own chunk, in a file in time order the place one reader of
    /// the whole file gives it, whatever the number of readers.
    pub fn past_lines(mut self, past: fn(&[u8]) -> bool) -> FileChunks {
        self.past = Some(past);
        self
    }

    /// Chunks after the first start with a copy of the file's first line,
    /// so that each decodes on its own (CSV).
    pub fn with_header(mut self, header: bool) -> FileChunks {
        self.header = header.then(|| header_of(&self.path));
        self
    }

    /// The first line start at or after `at` ([`line_start_at`]) that
    /// does not start a line [`FileChunks::past_lines`] moves past.
    fn line_start_at(&self, file: &mut File, at: u64) -> io::Result<u64> {
        let mut start = line_start_at(file, at)?;
        let Some(past) = self.past else {
            return Ok(start);
        };
        if start == 0 {
            return Ok(0);
        }
        file.seek(SeekFrom::Start(start))?;
        let mut reader = BufReader::with_capacity(1 << 16, &mut *file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 || !past(&line) {
                return Ok(start);
            }
            start += read as u64;
        }
    }

    /// Chunk `number`: its bounds on line starts, or `None` when empty.
    fn chunk(&self, number: u64) -> io::Result<Option<FileChunk>> {
        let mut file = File::open(&self.path)?;
        let cut = |k: u64| k.saturating_mul(self.chunk_bytes).min(self.len);
        let start = self.line_start_at(&mut file, cut(number))?;
        let end = self.line_start_at(&mut file, cut(number + 1))?;
        if start >= end {
            return Ok(None);
        }
        let header = self.header.as_ref().filter(|_| start > 0);
        Ok(Some(FileChunk {
            number,
            start,
            header: header.is_some(),
            reader: part(file, start..end, header.cloned())?,
        }))
    }
}

/// The line in the whole file of an event read from a chunk (its
/// [`FileChunk::offset`]): what one reader of the file numbers it, the
/// input position that names its decisions (`docs/decisions.md`). Each
/// chunk's first line is counted once, from the nearest chunk counted
/// before it (places asked in file order count the file once).
pub struct ChunkLines {
    chunks: FileChunks,
    /// Each chunk counted: its first byte, and the lines before it.
    known: std::collections::BTreeMap<u64, (u64, u64)>,
}

impl FileChunks {
    /// The lines of the chunks ([`ChunkLines`]).
    pub fn lines(&self) -> ChunkLines {
        ChunkLines {
            chunks: self.clone(),
            known: std::collections::BTreeMap::new(),
        }
    }
}

impl ChunkLines {
    /// The line in the file (numbered from 1) of the line at `offset`
    /// ([`FileChunk::offset`]: a chunk, then a line in it, the copy of a
    /// header its line 1).
    pub fn line(&mut self, offset: u64) -> io::Result<u64> {
        let (number, line) = (offset >> 32, offset & 0xffff_ffff);
        let (start, before) = self.start_of(number)?;
        let header = self.chunks.header.is_some() && start > 0;
        Ok(before + line - u64::from(header && line > 0))
    }

    /// Chunk `number`'s first byte, and the lines before it.
    fn start_of(&mut self, number: u64) -> io::Result<(u64, u64)> {
        if let Some(&known) = self.known.get(&number) {
            return Ok(known);
        }
        let mut file = File::open(&self.chunks.path)?;
        let cut = number
            .saturating_mul(self.chunks.chunk_bytes)
            .min(self.chunks.len);
        let start = self.chunks.line_start_at(&mut file, cut)?;
        let (from, mut lines) = (self.known.range(..number).next_back())
            .map(|(_, &known)| known)
            .filter(|&(at, _)| at <= start)
            .unwrap_or((0, 0));
        file.seek(SeekFrom::Start(from))?;
        let mut rest = file.take(start - from);
        let mut buffer = vec![0_u8; 1 << 16];
        loop {
            let read = rest.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            lines += memchr::memchr_iter(b'\n', &buffer[..read]).count() as u64;
        }
        self.known.insert(number, (start, lines));
        Ok((start, lines))
    }
}

/// The bytes `range` of `file`, after `header` when given (the copy of a
/// CSV file's first line a part after the first starts with).
pub(super) fn part(
    mut file: File,
    range: std::ops::Range<u64>,
    header: Option<Arc<[u8]>>,
) -> io::Result<Box<dyn Read + Send>> {
    file.seek(SeekFrom::Start(range.start))?;
    let body = file.take(range.end.saturating_sub(range.start));
    Ok(match header {
        Some(header) => Box::new(io::Cursor::new(header).chain(body)),
        None => Box::new(body),
    })
}

impl Iterator for FileChunks {
    type Item = io::Result<FileChunk>;

    fn next(&mut self) -> Option<io::Result<FileChunk>> {
        while self.next.saturating_mul(self.chunk_bytes) < self.len {
            let number = self.next;
            self.next += self.readers;
            match self.chunk(number) {
                Ok(None) => continue,
                Ok(Some(chunk)) => return Some(Ok(chunk)),
                Err(e) => {
                    // Nothing after a read error.
                    self.next = u64::MAX;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// The first line start at or after `at`: `at` itself when it is 0 or
/// follows a newline, else just after the next newline (or the end).
fn line_start_at(file: &mut File, at: u64) -> io::Result<u64> {
    if at == 0 {
        return Ok(0);
    }
    file.seek(SeekFrom::Start(at - 1))?;
    let mut reader = BufReader::with_capacity(1 << 16, &mut *file);
    let mut skipped = Vec::new();
    let read = reader.read_until(b'\n', &mut skipped)?;
    // `read` bytes from `at - 1` up to and with the newline (or the end).
    Ok(at - 1 + read as u64)
}

/// The first line of the file at `path`, with its newline (nothing when it
/// cannot be read): the copy a CSV part after the first starts with.
pub(super) fn header_of(path: &Path) -> Arc<[u8]> {
    let mut first = Vec::new();
    if let Ok(file) = File::open(path) {
        let _ = BufReader::new(file).read_until(b'\n', &mut first);
    }
    if first.last() != Some(&b'\n') {
        first.push(b'\n');
    }
    first.into()
}
