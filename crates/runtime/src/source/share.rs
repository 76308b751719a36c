//! The input policy, once. A [`ShareReader`] reads a share of a file's
//! lines (the file from a place, standard input or a followed file for
//! the reader thread; a file's chunks or a list of its byte ranges for a
//! reader of its own), recognizes control records before decoding, decodes
//! the rest, skips the lines read before a cut, numbers each line in the
//! whole input and places it for checkpoints. [`Policy`] says what a run
//! makes of a line it cannot take: the warning that names `path:line`,
//! `Config::strict`, a read error that ends the input. One engine's
//! reader thread drives a reader of one part and its run's thread applies
//! the policy in input order; each worker drives a reader of its share on
//! its own thread ([`ShareReader::next`]).

use std::fmt;
use std::io::{BufRead, BufReader};

use serde::{Deserialize, Serialize};

use cepheid_engine::{Record, Timestamp};

use super::chunks::{self, header_of};
use super::*;
use crate::{Doing, Level, Notice};

/// A range of a file's bytes, on line boundaries: part of a share read as
/// a list of ranges ([`ShareReader::ranges`]; one engine's checkpoint
/// keeps the ranges it has left to read, [`Range::left`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Its first byte: the start of a line.
    pub start: u64,
    /// The byte after its last: the start of a line, or the end of the
    /// file (`u64::MAX`: to the end, however long the file is then).
    pub end: u64,
    /// Lines of the file before `start`, when known; else counted the
    /// first time a message names a line of the range.
    pub lines: Option<u64>,
    /// Lines at its start read before (a resumed run's): skipped.
    pub skip: u64,
}

impl Range {
    /// What is left of `list` (ranges in file order, apart) once a reader
    /// of it is at `at`: the ranges after it, and the rest of the one it is
    /// in. None when that is the file from `at` to its end (a reader of
    /// the file from `at` goes on as well).
    #[inline(never)]
    pub fn left(list: &[Range], at: FilePosition) -> Vec<Range> {
        let mut left: Vec<Range> = list.iter().filter(|r| r.end > at.offset).copied().collect();
        if let Some(first) = left.first_mut().filter(|r| r.start < at.offset) {
            (first.start, first.lines, first.skip) = (at.offset, Some(at.lines), 0);
        }
        let to_end = Range {
            start: at.offset,
            end: u64::MAX,
            lines: Some(at.lines),
            skip: 0,
        };
        if left[..] == [to_end] {
            left.clear();
        }
        left
    }
}

/// What a run makes of the lines it cannot take, the same on one engine
/// and on every worker: a malformed line is said as a warning naming
/// `path:line` (a source's record, naming its place), and with
/// [`Config::strict`](crate::Config::strict) it ends the input; a read
/// error ends it, said as an error.
#[derive(Clone, Debug)]
pub struct Policy {
    origin: String,
    strict: bool,
}

impl Policy {
    /// The name of its input in messages.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// The policy of the input named `origin` in messages, with `strict`.
    pub fn new(origin: impl Into<String>, strict: bool) -> Policy {
        Policy {
            origin: origin.into(),
            strict,
        }
    }

    /// What a run takes of a line: `entry`, what the reader made of it
    /// (or why it is malformed), `line` its number in the input (asked
    /// for messages only), `place` where a [`Source`]'s record is (for
    /// messages; `None` for a line of a file). `None` for a line that
    /// holds nothing (a blank line).
    #[inline]
    pub(crate) fn take(
        &self,
        entry: Result<Entry, Error>,
        line: impl FnOnce() -> u64,
        place: Option<String>,
    ) -> Option<Got> {
        Some(match entry {
            Ok(Entry::Item(Item::Event(ts, event))) => Got::Event(ts, event),
            Ok(Entry::Item(Item::Watermark(t))) => Got::Watermark(t),
            Ok(Entry::Item(Item::Skip)) => return None,
            Ok(Entry::SplitWatermark(t)) => Got::SplitWatermark(t),
            Ok(Entry::Rules(control)) => Got::Rules(control, self.place(line())),
            Ok(Entry::SourceRules(rules)) => {
                Got::SourceRules(Box::new(rules), place.unwrap_or_default())
            }
            Err(e) if e.kind() == ErrorKind::Io => {
                let (notice, error) = self.failed(e.message());
                Got::Failed(notice, Box::new(error))
            }
            Err(e) => {
                let error = match place {
                    Some(place) => crate::Error::MalformedRecord { place, source: e },
                    None => crate::Error::Malformed {
                        origin: self.origin.clone(),
                        line: line(),
                        source: e,
                    },
                };
                let notice = Notice::line(Level::Warning, &error);
                Got::Malformed(notice, self.strict.then(|| Box::new(error)))
            }
        })
    }

    /// The input could not be read (`why`): the error to say, and the
    /// run's error.
    pub fn failed(&self, why: impl fmt::Display) -> (Notice, crate::Error) {
        let error = crate::Error::Io {
            doing: Doing::Read,
            path: self.origin.clone(),
            source: io::Error::other(why.to_string()),
        };
        (Notice::line(Level::Error, format!("error: {error}")), error)
    }

    /// Line `line` in messages: `events.jsonl:12`.
    pub fn place(&self, line: u64) -> String {
        format!("{}:{line}", self.origin)
    }
}

/// A line as a run takes it ([`ShareReader::next`], [`LiveInput::take`]).
#[derive(Debug)]
pub enum Got {
    /// An event, at its time.
    Event(Timestamp, Record),
    /// A punctuation: `{"$watermark": T}`.
    Watermark(Timestamp),
    /// The watermark of a [`Source`]'s splits moved here (the least of
    /// theirs: not a punctuation).
    SplitWatermark(Timestamp),
    /// A control record, and where it is in messages (`events.jsonl:12`).
    Rules(Control, String),
    /// A record of a [`Source`]'s rules stream, and its place.
    SourceRules(Box<SourceRules>, String),
    /// A malformed line: the warning to say, and with `strict` the run's
    /// error: the input ends here.
    Malformed(Notice, Option<Box<crate::Error>>),
    /// The input could not be read: the error to say, and the run's
    /// error. The input ends here.
    Failed(Notice, Box<crate::Error>),
}

/// The bytes of one part of a share.
pub(crate) enum Input {
    /// A followed file: its rotations start new parts.
    Follow(Follow),
    /// Anything else: a file, standard input, a chunk, a range.
    Other(Box<dyn Read + Send>),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Follow(follow) => follow.read(buf),
            Input::Other(other) => other.read(buf),
        }
    }
}

/// One part of a share: where it is in the file.
#[derive(Clone, Copy, Debug, Default)]
struct Part {
    /// Its first byte in the file.
    start: u64,
    /// Lines of the input before it (`None` until counted).
    lines: Option<u64>,
    /// Its number: a chunk's ([`FileChunk::number`]), 0 otherwise.
    number: u64,
    /// Does it start with a copy of the file's first line (a CSV header),
    /// which is not a line of the input there?
    header: bool,
    /// Its lines read before (numbered as the part numbers them): skipped.
    skip: u64,
}

/// The parts of a share after the one being read.
enum Parts {
    /// None: a share of one part.
    One,
    /// A file's chunks, and how many lines of each were read before
    /// (`u64::MAX`: all of it).
    Chunks(FileChunks, Box<dyn Fn(u64) -> u64 + Send>),
    /// Ranges of the file (numbered from 0 in the share), and the header
    /// of a CSV file.
    Ranges(
        std::iter::Enumerate<std::vec::IntoIter<Range>>,
        Option<Arc<[u8]>>,
    ),
}

/// Who hears what the parts read whole saw of the fields.
type Told = Box<dyn FnMut(&FieldsSeen) + Send>;

/// The part being read.
struct Current {
    items: Items<Input>,
    part: Part,
    /// Its lines up to `part.skip` not read before (in order): read.
    again: Vec<u64>,
}

/// A reader of a share of a file's lines (see the module's
/// documentation): a pull-style reader whose [`ShareReader::next`] gives
/// each line as a run takes it ([`Got`]), where it is in the file
/// ([`ShareReader::place`]), and what its decoders saw of the patterns'
/// fields.
pub struct ShareReader {
    path: PathBuf,
    origin: Arc<str>,
    policy: Policy,
    parts: Parts,
    current: Option<Current>,
    /// A decoder for each part after the first.
    fresh: Box<dyn Fn() -> Decoder + Send>,
    /// Are control records recognized (JSON lines)?
    controls: bool,
    /// The place of the last line read ([`ShareReader::place`]).
    place: u64,
    /// What the decoders of the parts read whole saw of the fields, and
    /// who is told after each part.
    seen: FieldsSeen,
    told: Option<Told>,
    done: bool,
    /// The lines of a chunk at or below its lines read before that were
    /// not ([`ShareReader::read_again`]).
    again: Option<Box<dyn Fn(u64) -> Vec<u64> + Send>>,
    /// Does [`ShareReader::next_entry`] end at the end of each part
    /// ([`ShareReader::next_range`] starts the next)?
    by_part: bool,
}

impl ShareReader {
    /// A reader of one part, `input` (named `origin`), decoded by
    /// `decoder`; `fresh` makes a decoder for a followed file's next file.
    pub(crate) fn one(
        origin: Arc<str>,
        input: Input,
        decoder: Decoder,
        fresh: Box<dyn Fn() -> Decoder + Send>,
        controls: bool,
    ) -> ShareReader {
        let mut reader = ShareReader::new(PathBuf::new(), origin, Parts::One, fresh);
        reader.controls = controls;
        reader.current = Some(Current {
            items: Items::new(Arc::clone(&reader.origin), input, decoder),
            part: Part::default(),
            again: Vec::new(),
        });
        reader
    }

    fn new(
        path: PathBuf,
        origin: Arc<str>,
        parts: Parts,
        fresh: Box<dyn Fn() -> Decoder + Send>,
    ) -> ShareReader {
        ShareReader {
            path,
            policy: Policy::new(&*origin, false),
            origin,
            parts,
            current: None,
            fresh,
            controls: false,
            place: 0,
            seen: FieldsSeen::default(),
            told: None,
            done: false,
            again: None,
            by_part: false,
        }
    }

    /// The chunks `chunks` of the file at `path` (give them their header,
    /// [`FileChunks::with_header`], for CSV), each decoded by a decoder
    /// of `decoder`'s; `read(number)` is how many lines of chunk `number`
    /// were read before (a resumed run's: skipped; `u64::MAX` for all).
    /// Messages name the file `origin`.
    pub fn chunks(
        path: &Path,
        origin: &str,
        chunks: FileChunks,
        read: impl Fn(u64) -> u64 + Send + 'static,
        decoder: impl Fn() -> Decoder + Send + 'static,
    ) -> ShareReader {
        let parts = Parts::Chunks(chunks, Box::new(read));
        ShareReader::new(path.to_path_buf(), origin.into(), parts, Box::new(decoder))
    }

    /// The byte ranges `ranges` of the file at `path`, in order, each
    /// decoded by a decoder of `decoder`'s (a range of a CSV file, `csv`,
    /// after the header's copy). Messages name the file `origin`, and a
    /// line by its number in the file.
    pub fn ranges(
        path: &Path,
        origin: &str,
        ranges: Vec<Range>,
        csv: bool,
        decoder: impl Fn() -> Decoder + Send + 'static,
    ) -> ShareReader {
        let parts = Parts::Ranges(ranges.into_iter().enumerate(), csv.then(|| header_of(path)));
        ShareReader::new(path.to_path_buf(), origin.into(), parts, Box::new(decoder))
    }

    /// `again(number)`: the lines of chunk `number` at or below its lines
    /// read before ([`ShareReader::chunks`]) that were not read (in order;
    /// a resumed run's lines whose events waited at a cut, not given to
    /// an engine): read.
    pub fn read_again(mut self, again: impl Fn(u64) -> Vec<u64> + Send + 'static) -> ShareReader {
        self.again = Some(Box::new(again));
        self
    }

    /// Recognize control records (`$rules`, `$rules_file`: JSON lines)?
    pub fn controls(mut self, on: bool) -> ShareReader {
        self.controls = on;
        self
    }

    /// What a run makes of the lines it cannot take (by default a policy
    /// without `strict`).
    pub fn policy(mut self, policy: Policy) -> ShareReader {
        self.policy = policy;
        self
    }

    /// After each part read whole, `told` hears what its decoders saw of
    /// the fields so far (the parts read whole, merged).
    pub fn tell_seen(mut self, told: impl FnMut(&FieldsSeen) + Send + 'static) -> ShareReader {
        self.told = Some(Box::new(told));
        self
    }

    /// Where the last line read is: its part's number (a chunk's, a
    /// range's index in the list), then its line in the part (`number <<
    /// 32 | line`, numbered from 1, a CSV header's copy its line 1:
    /// [`FileChunk::offset`]); 0 before any. Grows in the share's order.
    pub fn place(&self) -> u64 {
        self.place
    }

    /// The next line's number in its part and its entry, or why it is
    /// malformed; `None` at the end of the share (of the part, for a share
    /// of one part: [`ShareReader::next_file`]). A read error is the last.
    #[inline(always)]
    pub(crate) fn next_entry(&mut self) -> Option<(u64, Result<Entry, Error>)> {
        loop {
            if let Some(current) = &mut self.current {
                let controls = self.controls;
                let next = current.items.next_with(|decoder, text| {
                    match controls.then(|| control(text)).flatten() {
                        Some(Ok(control)) => Ok(Entry::Rules(control)),
                        Some(Err(why)) => Err(Error::new(ErrorKind::Input, why)),
                        None => decoder.decode(text).map(Entry::Item),
                    }
                });
                // (looked at in place, handed on as it is: no copy)
                if let Some((line, _)) = &next {
                    if *line <= current.part.skip && current.again.binary_search(line).is_err() {
                        // (read before the cut: a control record too)
                        continue;
                    }
                    self.place = (current.part.number << 32) | (line & 0xffff_ffff);
                    return next;
                }
                if matches!(self.parts, Parts::One) {
                    return None;
                }
                self.part_read();
                if self.by_part {
                    return None;
                }
            }
            match self.next_part() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    // Nothing after a read error.
                    self.parts = Parts::One;
                    return Some((0, Err(Error::new(ErrorKind::Io, e.to_string()))));
                }
            }
        }
    }

    /// The part being read was read whole: what its decoder saw of the
    /// fields is merged and told.
    fn part_read(&mut self) {
        let Some(current) = self.current.take() else {
            return;
        };
        if let Some(seen) = current.items.decoder().fields_seen() {
            self.seen.merge(seen);
            if let Some(told) = &mut self.told {
                told(&self.seen);
            }
        }
    }

    /// A reader of a list of ranges whose [`ShareReader::next_entry`]
    /// ends at the end of each range: the next is started by
    /// [`ShareReader::next_range`] (one engine's reader thread, whose
    /// batches each end in one range).
    pub(crate) fn by_part(mut self) -> ShareReader {
        self.by_part = true;
        self
    }

    /// Starts the next range (read [`ShareReader::by_part`]): where its
    /// lines are numbered and placed from, as a reader of the file from
    /// there numbers them (before a CSV header's copy, as if it were the
    /// line before the range); `None` after the last.
    pub(crate) fn next_range(&mut self) -> io::Result<Option<FilePosition>> {
        self.part_read();
        if !self.next_part()? {
            return Ok(None);
        }
        let header = match &self.parts {
            Parts::Ranges(_, Some(header)) => header.len() as u64,
            _ => 0,
        };
        let (path, current) = (&self.path, &mut self.current);
        let Some(current) = current else {
            return Ok(None);
        };
        let header = if current.part.header { header } else { 0 };
        let lines = part_lines(path, &mut current.part);
        Ok(Some(FilePosition {
            offset: current.part.start - header,
            lines: lines - u64::from(header > 0),
            tail: None,
        }))
    }

    /// What the decoders of the parts read whole saw of the fields.
    pub(crate) fn seen(&self) -> &FieldsSeen {
        &self.seen
    }

    /// Starts the next part; false when there is none.
    fn next_part(&mut self) -> io::Result<bool> {
        let mut again = Vec::new();
        let (input, part) = match &mut self.parts {
            Parts::One => return Ok(false),
            Parts::Chunks(chunks, read) => loop {
                let Some(chunk) = chunks.next() else {
                    return Ok(false);
                };
                let chunk = chunk?;
                let skip = read(chunk.number);
                if let Some(lines) = &self.again {
                    again = lines(chunk.number);
                }
                if skip == u64::MAX && again.is_empty() {
                    // (read whole before the cut)
                    continue;
                }
                let part = Part {
                    start: chunk.start,
                    lines: (chunk.start == 0).then_some(0),
                    number: chunk.number,
                    header: chunk.header,
                    skip,
                };
                break (Input::Other(chunk.reader), part);
            },
            Parts::Ranges(ranges, header) => loop {
                let Some((number, range)) = ranges.next() else {
                    return Ok(false);
                };
                if range.end <= range.start {
                    continue;
                }
                let header = header.clone().filter(|_| range.start > 0);
                let part = Part {
                    start: range.start,
                    lines: range.lines.or((range.start == 0).then_some(0)),
                    number: number as u64,
                    header: header.is_some(),
                    skip: range.skip + u64::from(header.is_some()),
                };
                let file = File::open(&self.path)?;
                break (
                    Input::Other(chunks::part(file, range.start..range.end, header)?),
                    part,
                );
            },
        };
        let items = Items::new(Arc::clone(&self.origin), input, (self.fresh)());
        self.current = Some(Current { items, part, again });
        Ok(true)
    }

    /// For a share of one part, a followed file: when it has gone on in
    /// another file (rotated), that file's lines are read next, with a
    /// fresh decoder, numbered and placed from its beginning; false when
    /// it has not.
    pub(crate) fn next_file(&mut self) -> bool {
        let Some(current) = self.current.take() else {
            return false;
        };
        let Input::Follow(mut follow) = current.items.into_inner() else {
            return false;
        };
        if !follow.take_switched() {
            return false;
        }
        let items = Items::new(
            Arc::clone(&self.origin),
            Input::Follow(follow),
            (self.fresh)(),
        );
        self.current = Some(Current {
            items,
            part: Part::default(),
            again: Vec::new(),
        });
        true
    }

    /// Input bytes of the part being read consumed so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.items.bytes_read())
    }

    /// Will the next entry come without waiting for the input?
    pub(crate) fn item_ready(&mut self) -> bool {
        self.current.as_mut().map_or(true, |c| c.items.item_ready())
    }

    /// The decoder of the part being read.
    pub(crate) fn decoder(&self) -> Option<&Decoder> {
        self.current.as_ref().map(|c| c.items.decoder())
    }

    /// The followed file being read, if the share is one.
    pub(crate) fn followed(&self) -> Option<&Follow> {
        match self.current.as_ref().map(|c| c.items.get_ref()) {
            Some(Input::Follow(follow)) => Some(follow),
            _ => None,
        }
    }
}

impl Iterator for ShareReader {
    type Item = Got;

    /// The next line of the share, as a run takes it ([`Got`]): events,
    /// punctuations and control records, a malformed line's warning, a
    /// read error. `None` at the end of the share, after a read error, and
    /// after a malformed line with `strict`.
    #[inline]
    fn next(&mut self) -> Option<Got> {
        loop {
            if self.done {
                return None;
            }
            let got = match self.next_entry() {
                // (the one line of most: no detour)
                Some((_, Ok(Entry::Item(Item::Event(ts, event))))) => {
                    return Some(Got::Event(ts, event))
                }
                Some((line, entry)) => {
                    let (path, current) = (&self.path, &mut self.current);
                    self.policy
                        .take(entry, || line_in(path, current, line), None)
                }
                None => {
                    self.done = true;
                    return None;
                }
            };
            match got {
                Some(Got::Malformed(_, Some(_)) | Got::Failed(..)) => self.done = true,
                None => continue,
                Some(_) => {}
            }
            return got;
        }
    }
}

/// The number of line `line` of the part being read (`current`) in the
/// whole input (the lines before the part counted the first time).
fn line_in(path: &Path, current: &mut Option<Current>, line: u64) -> u64 {
    match current {
        Some(current) => {
            part_lines(path, &mut current.part) + line - u64::from(current.part.header)
        }
        None => line,
    }
}

/// The lines of the input before `part` (counted the first time).
fn part_lines(path: &Path, part: &mut Part) -> u64 {
    *part
        .lines
        .get_or_insert_with(|| count_lines(path, part.start).unwrap_or(0))
}

/// Newlines in the first `len` bytes of the file at `path`.
pub fn count_lines(path: &Path, len: u64) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?.take(len));
    let mut lines = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(lines);
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buf.len();
        reader.consume(n);
    }
}
