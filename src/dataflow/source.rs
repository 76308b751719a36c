//! Sources: events into the dataflow, late ones decided where they are
//! read; a file split in parts on line boundaries.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{Scope, Stream};

use crate::dataflow::{Input, SourceEnd, Stamped};
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
        /// Where it was read (a line number): grows in input order.
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
    max_delay: i64,
    watermark: Option<Timestamp>,
    max_seen: Option<Timestamp>,
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
            max_delay: max_delay.max(0),
            watermark: None,
            max_seen: None,
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
        if self.watermark.is_some_and(|w| ts <= w) {
            self.late += 1;
            return false;
        }
        let max_seen = self.max_seen.map_or(ts, |m| m.max(ts));
        self.max_seen = Some(max_seen);
        if let Some(t) = max_seen
            .checked_sub(self.max_delay)
            .and_then(|t| t.checked_sub(1))
        {
            self.raise(t);
        }
        true
    }

    /// A punctuated watermark.
    pub fn punctuate(&mut self, t: Timestamp) {
        self.punctuated = true;
        self.raise(t);
    }

    fn raise(&mut self, t: Timestamp) {
        self.watermark = Some(self.watermark.map_or(t, |w| w.max(t)));
    }

    /// The watermark, `None` before any event or punctuation.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    /// The least time a later event that is not late can have: the
    /// watermark + 1 (`Timestamp::MIN` before any). The source's capability.
    pub fn frontier(&self) -> Timestamp {
        self.watermark
            .map_or(Timestamp::MIN, |w| w.saturating_add(1))
    }

    /// How the source ends, to tell the engines.
    pub fn end(&self) -> SourceEnd {
        SourceEnd {
            max_seen: self.max_seen,
            watermark: self.watermark,
            punctuated: self.punctuated,
            flush: self.flush,
            events: self.events,
            late: self.late,
        }
    }
}

/// A source operator: reads `items` (on the worker that builds it), sends
/// the events that are not late as [`Input::Event`]s numbered `source`, and
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

/// The part `index` of `parts` of a file, on line boundaries: the file cut
/// at `index * len / parts`, each cut moved to the start of the next line,
/// so that every line is in exactly one part and the parts are in file
/// order. With `header` (CSV), parts after the first start with the file's
/// first line, so each decodes on its own. Returns the reader and the
/// part's first byte.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("cepheid-part-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("in.csv");
/// use std::io::Read;
/// use cepheid::dataflow::part_of_file;
/// std::fs::write(&path, "ts,n\n1,a\n2,b\n3,c\n")?;
/// let mut parts = Vec::new();
/// for index in 0..2 {
///     let (mut reader, _start) = part_of_file(&path, index, 2, true)?;
///     let mut text = String::new();
///     reader.read_to_string(&mut text)?;
///     parts.push(text);
/// }
/// // 17 bytes, cut at 8 (in `1,a`): the second part starts at `2,b`
/// assert_eq!(parts, ["ts,n\n1,a\n", "ts,n\n2,b\n3,c\n"]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn part_of_file(
    path: &Path,
    index: usize,
    parts: usize,
    header: bool,
) -> io::Result<(Box<dyn Read + Send>, u64)> {
    let parts = parts.max(1) as u64;
    let index = (index as u64).min(parts);
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = line_start_at(&mut file, cut(len, index, parts))?;
    let end = line_start_at(&mut file, cut(len, index + 1, parts))?;
    let mut first_line = Vec::new();
    if header && start > 0 {
        file.seek(SeekFrom::Start(0))?;
        BufReader::new(&mut file).read_until(b'\n', &mut first_line)?;
        if first_line.last() != Some(&b'\n') {
            first_line.push(b'\n');
        }
    }
    file.seek(SeekFrom::Start(start))?;
    let body = file.take(end.saturating_sub(start));
    Ok((Box::new(io::Cursor::new(first_line).chain(body)), start))
}

/// Where cut `index` of `parts` falls in `len` bytes.
fn cut(len: u64, index: u64, parts: u64) -> u64 {
    u64::try_from(u128::from(len) * u128::from(index) / u128::from(parts)).unwrap_or(len)
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
