//! Sources: events into the dataflow, late ones decided where they are
//! read; a file split in parts on line boundaries.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{Scope, Stream};

use crate::dataflow::{Input, SourceEnd, Stamped};
use crate::engine::clock::Watermark;
use crate::primitives::Timestamp;

/// The stream of a [`source`]'s events (and its end), what [`cep`](crate::dataflow::cep) reads.
pub type Events<'scope, E> = Stream<'scope, Timestamp, Vec<Input<E>>>;

/// The stream of a [`source`]'s late events, with their times.
pub type LateEvents<'scope, E> = Stream<'scope, Timestamp, Vec<(Timestamp, E)>>;

/// Items a source reads per activation, at most (then it lets the other
/// operators of its worker run, and is scheduled again).
const BATCH: usize = 1024;

/// What a [`source`] reads: an event with its time and place, or a
/// punctuated watermark (`{"$watermark": T}`).
#[derive(Clone, Debug, PartialEq)]
pub enum SourceItem<E> {
    /// An event.
    Event {
        /// Event time, milliseconds.
        ts: Timestamp,
        /// Where it was read (a line number, [`FileChunk::offset`]): grows
        /// in input order.
        offset: u64,
        /// The event.
        event: E,
    },
    /// Every event at or below this time has been read.
    Watermark(Timestamp),
}

/// A source's event time: the rule of [`Engine`](crate::Engine)'s
/// watermark (the largest time seen − `max_delay` − 1, or the punctuation,
/// whichever is larger; never backwards) and its counts. An event at or
/// below the watermark is late.
///
/// ```
/// use cepheid::dataflow::Lateness;
/// let mut time = Lateness::new(10);
/// assert!(time.admit(100));
/// assert!(time.admit(90)); // within the delay
/// assert!(!time.admit(89)); // 100 - 10 - 1 = 89: late
/// time.punctuate(200);
/// assert!(!time.admit(150));
/// assert_eq!(time.frontier(), 201);
/// ```
#[derive(Clone, Debug)]
pub struct Lateness {
    time: Watermark,
    punctuated: bool,
    flush: bool,
    events: u64,
    late: u64,
}

impl Lateness {
    /// A source clock with this bounded out-of-orderness, in milliseconds
    /// (negative counts as 0).
    pub fn new(max_delay: i64) -> Lateness {
        Lateness {
            time: Watermark::new(max_delay),
            punctuated: false,
            flush: false,
            events: 0,
            late: 0,
        }
    }

    /// At the end, let time run to infinity (every window closes), as
    /// `cepheid run --flush-at-end`.
    pub fn flush_at_end(mut self, flush: bool) -> Lateness {
        self.flush = flush;
        self
    }

    /// An event at `ts` arrives: `false` when it is late, else `true` (and
    /// the watermark follows it).
    pub fn admit(&mut self, ts: Timestamp) -> bool {
        self.events += 1;
        let admitted = self.time.admit(ts);
        self.late += u64::from(!admitted);
        admitted
    }

    /// A punctuated watermark.
    pub fn punctuate(&mut self, t: Timestamp) {
        self.punctuated = true;
        self.time.raise(t);
    }

    /// The watermark, `None` before any event or punctuation.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.time.current()
    }

    /// The least time a later event that is not late can have: the
    /// watermark + 1 (`Timestamp::MIN` before any). The source's capability.
    pub fn frontier(&self) -> Timestamp {
        self.time
            .current()
            .map_or(Timestamp::MIN, |w| w.saturating_add(1))
    }

    /// How the source ends, to tell the engines.
    pub fn end(&self) -> SourceEnd {
        SourceEnd {
            max_seen: self.time.max_seen(),
            watermark: self.time.current(),
            punctuated: self.punctuated,
            flush: self.flush,
            events: self.events,
            late: self.late,
        }
    }
}

/// A source operator: reads `items` (on the worker that builds it), sends
/// the events that are not late as [`Input::Event`]s of input `source`, and
/// at the end its [`Input::End`]; late events go to the second stream with
/// their time. Its capability stays at [`Lateness::frontier`], so nothing
/// is sent behind it. It reads [`BATCH`] items per activation; an iterator
/// that blocks (standard input) blocks its worker meanwhile.
pub fn source<'scope, E, I>(
    scope: Scope<'scope, Timestamp>,
    source: u32,
    items: I,
    lateness: Lateness,
) -> (Events<'scope, E>, LateEvents<'scope, E>)
where
    E: Clone + 'static,
    I: IntoIterator<Item = SourceItem<E>>,
    I::IntoIter: 'static,
{
    let mut builder = OperatorBuilder::new("CepSource".to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address);
    let (events_out, events) = builder.new_output::<Vec<Input<E>>>();
    let (late_out, late) = builder.new_output::<Vec<(Timestamp, E)>>();
    let mut events_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Input<E>>>>::from(events_out);
    let mut late_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<(Timestamp, E)>>>::from(late_out);
    let mut items = items.into_iter();
    let mut lateness = lateness;
    builder.build(move |mut capabilities| {
        let late_cap = capabilities.pop();
        let events_cap = capabilities.pop();
        let mut caps = events_cap.zip(late_cap);
        move |_frontiers| {
            let Some((events_cap, late_cap)) = caps.as_mut() else {
                return;
            };
            let mut ended = false;
            {
                let mut events_out = events_out.activate();
                let mut late_out = late_out.activate();
                let mut events = events_out.session(&*events_cap);
                let mut late = late_out.session(&*late_cap);
                for _ in 0..BATCH {
                    match items.next() {
                        None => {
                            ended = true;
                            break;
                        }
                        Some(SourceItem::Watermark(t)) => lateness.punctuate(t),
                        Some(SourceItem::Event { ts, offset, event }) => {
                            if lateness.admit(ts) {
                                events.give(Input::Event(Stamped {
                                    ts,
                                    source,
                                    offset,
                                    event,
                                }));
                            } else {
                                late.give((ts, event));
                            }
                        }
                    }
                }
                if ended {
                    events.give(Input::End(lateness.end()));
                }
            }
            if ended {
                // Dropping the capabilities ends the source.
                caps = None;
            } else {
                let t = lateness.frontier();
                events_cap.downgrade(&t);
                late_cap.downgrade(&t);
                activator.activate();
            }
        }
    });
    (events, late)
}

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
/// use cepheid::dataflow::FileChunks;
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
pub struct FileChunks {
    path: PathBuf,
    len: u64,
    chunk_bytes: u64,
    readers: u64,
    /// The next chunk to give.
    next: u64,
    header: Option<Arc<[u8]>>,
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
    /// The [`Stamped::offset`] of line `line` of the chunk (numbered from 1
    /// as [`Items`](crate::io::Items) does): the chunk's number, then the
    /// line, so offsets grow in file order.
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
        })
    }

    /// Chunks after the first start with a copy of the file's first line,
    /// so that each decodes on its own (CSV).
    pub fn with_header(mut self, header: bool) -> FileChunks {
        self.header = None;
        if header {
            let mut first = Vec::new();
            if let Ok(file) = File::open(&self.path) {
                let _ = BufReader::new(file).read_until(b'\n', &mut first);
            }
            if first.last() != Some(&b'\n') {
                first.push(b'\n');
            }
            self.header = Some(first.into());
        }
        self
    }

    /// Chunk `number`: its bounds on line starts, or `None` when empty.
    fn chunk(&self, number: u64) -> io::Result<Option<FileChunk>> {
        let mut file = File::open(&self.path)?;
        let cut = |k: u64| k.saturating_mul(self.chunk_bytes).min(self.len);
        let start = line_start_at(&mut file, cut(number))?;
        let end = line_start_at(&mut file, cut(number + 1))?;
        if start >= end {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(start))?;
        let body = file.take(end - start);
        let header = match &self.header {
            Some(header) if start > 0 => Some(Arc::clone(header)),
            _ => None,
        };
        Ok(Some(FileChunk {
            number,
            start,
            header: header.is_some(),
            reader: match header {
                Some(header) => Box::new(io::Cursor::new(header).chain(body)),
                None => Box::new(body),
            },
        }))
    }
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
