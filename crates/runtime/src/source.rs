//! Sources: standard input, a file (from a byte offset, when resuming from
//! a checkpoint), or a followed file (`follow.rs`), read and decoded on a
//! thread of its own, a few batches of lines ahead of the engine, so that
//! parsing overlaps matching and output (the engine and everything
//! observable stay on the calling thread, in input order).
//!
//! Each batch says where the input is after its last line: the byte
//! offset and the number of lines in the file being read (a followed
//! file's rotations start both anew), and, when asked for, a checksum of the bytes just
//! before that offset, with which a checkpoint later recognizes the file.
//!
//! Control records (`{"$rules": ...}`, JSON lines only) are recognized
//! here, by their first key, before the line is decoded. The thread sends
//! the batch that ends with one at once and waits until the main thread
//! has applied it: the lines after it are decoded only then, with the
//! field table of the new rules (the decoder shares the engine's table).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cepheid_engine::io::{Decoder, FieldsSeen, Item, Items, LineReader};
use cepheid_engine::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::follow::Follow;

/// Most lines in a batch.
const BATCH_LINES: usize = 1024;
/// Most input bytes in a batch (the events hold their text).
const BATCH_BYTES: u64 = 1 << 20;
/// Batches decoded ahead of the engine, at most.
pub const BATCHES_AHEAD: usize = 2;
/// Bytes before an offset that its [`Tail`] checksum covers, at most.
const TAIL_BYTES: u64 = 4096;

/// Where a source is, after the records handed out so far: kept in
/// checkpoints, sought back to on resuming.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// No position: the source cannot be read again (standard input).
    #[default]
    None,
    /// A place in a file.
    File(FilePosition),
    /// A source's own position, encoded by it (e.g. with `postcard`: a
    /// Kafka source's offset per partition).
    Bytes(Vec<u8>),
}

/// Where a file is: after the lines given to the engine so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// Bytes of the file before the next line.
    pub offset: u64,
    /// Lines of the file before the next line.
    pub lines: u64,
    /// The bytes just before `offset`, when asked for.
    pub tail: Option<Tail>,
}

/// A CRC-32 of the (at most 4 KiB) bytes just before an offset:
/// the file is the one it was, or a copy of it, when they are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// How many bytes (fewer at the start of the file).
    pub len: u64,
    /// Their CRC-32.
    pub crc: u32,
}

impl Tail {
    /// The tail of `file` before `offset`, or `None` when it cannot be
    /// read (the file got shorter).
    pub fn of(file: &File, offset: u64) -> Option<Tail> {
        let len = offset.min(TAIL_BYTES);
        let mut bytes = vec![0; usize::try_from(len).ok()?];
        read_at(file, &mut bytes, offset - len).ok()?;
        Some(Tail {
            len,
            crc: crc32fast::hash(&bytes),
        })
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

/// What one input line holds.
#[derive(Debug)]
pub enum Entry {
    /// What the library's decoder made of it.
    Item(Item),
    /// A control record: the whole rule set changes at this line.
    Rules(Control),
    /// The watermark of a [`Source`]'s splits moved here
    /// ([`Config::split_watermarks`](crate::Config::split_watermarks)):
    /// event time got there. Not a punctuation (`$watermark`): the end of
    /// the input still ends event time.
    SplitWatermark(cepheid_engine::Timestamp),
    /// A record of a [`Source`]'s rules stream (a Kafka rules topic,
    /// [`RawEntry::Rules`]): the whole rule set changes here, at its event
    /// time. Allowed without `rules_from_stream` (the operator named the
    /// stream); `$rules_file` is confined to `rules_dir` as in a stream.
    SourceRules(SourceRules),
}

/// A rules record of a [`Source`]'s rules stream, at the point of the
/// input where it applies (`docs/dynamic-rules.md`, "A rules stream of its
/// own").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRules {
    /// The new rule set.
    pub control: Control,
    /// Its time (a Kafka record's timestamp): it applies to the events at
    /// or after it, the switch at the watermark just before it. `None`:
    /// when read (the state of the stream when the source started, or
    /// processing time).
    pub time: Option<cepheid_engine::Timestamp>,
    /// `Some(watermark)` when event time had already passed its time when
    /// it was read (the watermark then): it applies at once, late.
    pub late: Option<cepheid_engine::Timestamp>,
}

/// A control record's new rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `{"$rules": "<pattern source>"}`.
    Source(String),
    /// `{"$rules_file": "<path>"}`: a `.cep` file or a folder.
    File(PathBuf),
}

impl Control {
    /// Is `line` (one line of JSON lines) a control record? `None` when
    /// its first key is neither `$rules` nor `$rules_file` (an event, for
    /// the decoder); otherwise the record, or why it is malformed. For a
    /// reader of the caller's that hands control records to a run as the
    /// built-in one does.
    #[inline]
    pub fn parse(line: &[u8]) -> Option<Result<Control, String>> {
        control(line)
    }

    /// What it is, in messages: `` `$rules` `` or `` `$rules_file` PATH ``.
    pub fn describe(&self) -> String {
        crate::reload::describe(self)
    }

    /// The rule set it names, loaded (not checked yet), as `config`
    /// allows: with [`Config::rules_from_stream`](crate::Config::rules_from_stream)
    /// (or `own`, a record of the source's rules stream, which the
    /// operator named), and a `$rules_file` confined to
    /// [`Config::rules_dir`](crate::Config::rules_dir). `place` names the
    /// record in diagnostics (`events.jsonl:12`). `Err`: why it is refused.
    pub fn load(
        &self,
        config: &crate::Config,
        own: bool,
        place: &str,
    ) -> Result<cepheid_syntax::Loaded, String> {
        let allowed = crate::reload::StreamRules {
            enabled: config.rules_from_stream || own,
            dir: config.rules_dir.clone(),
        };
        crate::reload::load_control(self, &allowed, place)
    }
}

/// A watch of the pattern paths ([`watch_patterns`]): it lasts as long as
/// this value.
pub struct PatternWatch {
    #[cfg(feature = "watch")]
    _watcher: notify::RecommendedWatcher,
}

/// Watches the pattern files and folders `paths` as a run with
/// [`Config::watch`](crate::Config::watch) does (through their folders,
/// debounced), sending [`Message::Reload`] on `tx` after each change: for
/// an executor of its own that reads the reader's messages (the workers'
/// live input). `Err`: why it cannot, in the words one engine says it.
pub fn watch_patterns(
    paths: &[PathBuf],
    tx: std::sync::mpsc::SyncSender<Message>,
) -> Result<PatternWatch, String> {
    #[cfg(feature = "watch")]
    {
        crate::reload::watch(paths, tx)
            .map(|watcher| PatternWatch { _watcher: watcher })
            .map_err(|e| format!("warning: cannot watch the pattern files ({e}); a reload through the run's handle still reads them"))
    }
    #[cfg(not(feature = "watch"))]
    {
        let _ = (paths, tx);
        Err("warning: cannot watch the pattern files (built without the feature `watch`); a reload through the run's handle still reads them".to_string())
    }
}

/// The pattern paths read again for a reload from disk, as one engine
/// reads them: `Err(path)` when one of their files is empty (an editor
/// writing it: not a rule set to apply; its next change reloads).
pub fn reload_patterns(paths: &[PathBuf]) -> Result<cepheid_syntax::Loaded, PathBuf> {
    match crate::reload::empty_file(paths) {
        Some(empty) => Err(empty),
        None => Ok(cepheid_syntax::load_paths(paths)),
    }
}

/// Is `line` a control record? `None` when its first key is neither
/// `$rules` nor `$rules_file` (the decoder reads it); otherwise the
/// record, or why it is malformed. A control record has exactly one
/// field, so its first key is the one: looking at the first bytes is
/// enough, and costs nothing on other lines.
#[inline]
pub(crate) fn control(line: &[u8]) -> Option<Result<Control, String>> {
    // (one look at the first bytes of an event: its first key is not `"$`)
    match line {
        [b'{', b'"', b'$', ..] => control_record(line),
        [b'{', b'"', ..] => None,
        [first, ..] if *first != b'{' && *first != 0xEF && !first.is_ascii_whitespace() => None,
        // (a byte-order mark, spaces: the careful look)
        _ => control_record(line),
    }
}

/// [`control`] past its first look.
#[inline(never)]
fn control_record(line: &[u8]) -> Option<Result<Control, String>> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let rest = line
        .trim_ascii_start()
        .strip_prefix(b"{")?
        .trim_ascii_start();
    if !rest.starts_with(b"\"$rules\"") && !rest.starts_with(b"\"$rules_file\"") {
        return None;
    }
    let fields = match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line) {
        Ok(fields) => fields,
        Err(e) => return Some(Err(format!("invalid JSON: {e}"))),
    };
    if fields.len() != 1 {
        return Some(Err(format!(
            "a `$rules` or `$rules_file` record must have no other field (this one has {})",
            fields.len()
        )));
    }
    Some(match fields.into_iter().next() {
        Some((key, serde_json::Value::String(text))) if key == "$rules" => {
            Ok(Control::Source(text))
        }
        Some((key, serde_json::Value::String(path)))
            if key == "$rules_file" && !path.is_empty() =>
        {
            Ok(Control::File(PathBuf::from(path)))
        }
        Some((key, _)) if key == "$rules_file" => {
            Err("`$rules_file` must be a path (a non-empty string)".to_string())
        }
        _ => Err("`$rules` must be the pattern source, as a string".to_string()),
    })
}

/// Lines the reader thread has decoded, handed over in one go.
pub struct Batch {
    /// Each line's number and its entry, or why it is malformed (an
    /// [`cepheid_engine::ErrorKind::Input`] error), in input order; a read error
    /// ([`cepheid_engine::ErrorKind::Io`]) ends the input. A control record is
    /// the last line of its batch.
    pub lines: Vec<(u64, Result<Entry, Error>)>,
    /// Where the input is after the last line.
    pub at: FilePosition,
    /// A [`Source`]'s position after the last line (`None` for the
    /// built-in file reader, whose position is `at`).
    pub place: Option<Position>,
    /// Was the batch sent because no further line was ready (a pipe or a
    /// terminal waiting for its writer, the end of a followed file)? Then
    /// what it releases is flushed to the outputs at once, instead of
    /// waiting in their buffers.
    pub stalled: bool,
    /// Is the batch's one line the last of a file read to its end (not
    /// followed) and without its newline, the end of a file still being
    /// written? Then it is sent alone, after a batch that ends just before
    /// it: a checkpoint is taken before it and none after it, so that a
    /// resumed run reads it again whole (issue 26).
    pub open_end: bool,
    /// Is it the first part of what a [`Source`] handed out in one read,
    /// cut after a control record (the rest comes next, decoded with the
    /// new rules' fields)? Then `place` is `None` and no checkpoint is
    /// taken after it: the source's position is after the whole read.
    pub partial: bool,
    /// For lines whose place is not `origin:line` (a [`Source`]'s
    /// malformed and control records): their index in `lines` and their
    /// place, as the source describes it ([`Source::describe_origin`]:
    /// `kafka:orders partition 2 offset 17`).
    pub places: Vec<(usize, String)>,
    /// With split watermarks: each split's watermark after the batch's
    /// last line (kept in checkpoints).
    pub splits: Option<Vec<Option<cepheid_engine::Timestamp>>>,
}

/// What the main thread receives.
pub enum Message {
    /// Lines from the reader thread.
    Batch(Batch),
    /// The reader thread is done (end of input, a read error, or a panic
    /// the join passes on).
    End,
    /// Stop (`Handle::stop`, with its reason).
    Stop(String),
    /// Read the pattern paths again: they changed, or `Handle::reload`.
    Reload(Reload),
    /// What the decoder saw of the patterns' fields (`Config::field_warnings`):
    /// sent once after that many events and once more at the end of the
    /// input, after its last batch.
    Seen(FieldsSeen),
    /// The checkpoint thread wrote a checkpoint's file: the sink commits
    /// it now (not at the next batch, which a quiet input may not send
    /// for a long time).
    Checkpointed,
    /// A [`Source`]'s [`Source::lag`], per split, after the batch before
    /// it (at most every [`LAG_EVERY`]).
    Lag(Vec<SplitLag>),
}

/// How often the reader thread of a [`Source`] asks it for its
/// [`Source::lag`], at most.
pub const LAG_EVERY: Duration = Duration::from_secs(1);

/// When the reader thread sends what its decoder saw of the fields
/// ([`Message::Seen`]): once its decoder has watched `after` events, and
/// at the end of the input.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeenTold {
    after: Option<u64>,
    told: bool,
}

impl SeenTold {
    /// After `after` events (`None`: never).
    pub fn new(after: Option<u64>) -> SeenTold {
        SeenTold { after, told: false }
    }

    /// What to send now, if anything: at the end, or the first time the
    /// decoder has watched `after` events.
    fn due(&mut self, decoder: &Decoder, end: bool) -> Option<FieldsSeen> {
        let after = self.after?;
        let seen = decoder.fields_seen()?;
        if end || (!self.told && seen.events() >= after) {
            self.told = true;
            return Some(seen.clone());
        }
        None
    }

    /// Sends what is due; false when the receiver is gone.
    fn send(&mut self, decoder: &Decoder, end: bool, tx: &SyncSender<Message>) -> bool {
        match self.due(decoder, end) {
            Some(seen) => tx.send(Message::Seen(seen)).is_ok(),
            None => true,
        }
    }
}

/// Why the rules are read again from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    /// A pattern file or folder changed.
    Changed,
    /// Asked for through the run's handle (`Handle::reload`), for the
    /// reason the caller names (the command: `SIGHUP`).
    Asked(String),
    /// Resumed from a checkpoint whose rules the files no longer are.
    Resumed,
}

/// Sends [`Message::End`] when the reader thread ends, however it ends
/// (the channel has other senders, so its closing says nothing).
struct EndGuard(SyncSender<Message>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Message::End);
    }
}

/// An opened input.
pub enum Opened {
    /// Standard input.
    Stdin,
    /// A file, read to its end.
    File(File),
    /// A followed file.
    Follow(Follow),
    /// A source of the library's user, with its decoder.
    Custom(Arc<std::sync::Mutex<Box<dyn Source>>>),
}

impl Opened {
    /// Opens `path` (`-`: standard input) at byte `offset`, followed or
    /// not; its size when it is a file that is not followed (for progress).
    /// `warn` is told what a followed file's watcher could not do.
    pub fn open(
        path: &Path,
        follow: bool,
        offset: u64,
        warn: &mut dyn FnMut(String),
    ) -> io::Result<(Opened, Option<u64>)> {
        if path == Path::new("-") {
            return Ok((Opened::Stdin, None));
        }
        if follow {
            return Ok((Opened::Follow(Follow::open(path, offset, warn)?), None));
        }
        let mut file = File::open(path)?;
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        if offset > 0 {
            io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
        }
        Ok((Opened::File(file), size))
    }
}

/// Gives `decoder` the first line of `path` that is not blank, as when the
/// file is read from its beginning: a CSV file read from an offset needs
/// its header.
pub fn prime(decoder: &mut Decoder, path: &Path) -> io::Result<()> {
    let mut lines = LineReader::new(File::open(path)?);
    while let Some((_, line)) = lines.next_line()? {
        if let cepheid_engine::io::Line::Text(text) = line {
            if !text.iter().all(u8::is_ascii_whitespace) {
                let _ = decoder.decode(text);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// How the reader thread reads.
pub struct Reading {
    /// The input's name in errors.
    pub origin: String,
    /// The decoder of the first file (primed when it starts at an offset).
    pub decoder: Decoder,
    /// A decoder for each file after the first (a followed file rotated).
    pub fresh: Box<dyn Fn() -> Decoder + Send>,
    /// Where the first file starts.
    pub start: FilePosition,
    /// Give batches a [`Tail`] (for checkpoints)?
    pub tails: bool,
    /// JSON lines: control records are recognized, and after each the
    /// thread waits for a word on this channel (the rules applied).
    /// `None`: no control records (CSV).
    pub controls: Option<Receiver<()>>,
    /// When to send what the decoder saw of the fields.
    pub seen: SeenTold,
    /// How a [`Source`]'s records are timed (not the built-in reader's).
    pub timing: SourceTiming,
}

/// Reads and decodes `source` on a thread of its own. The thread ends at
/// the end of input, after a read error, or when the receiver is dropped,
/// and then sends [`Message::End`].
pub fn spawn_reader(source: Opened, reading: Reading, tx: SyncSender<Message>) -> JoinHandle<()> {
    // Named, so that `top -H`, `perf` and a debugger tell the decoding
    // apart from the matching (`benches/scripts/decode_cpu.sh`).
    thread::Builder::new()
        .name(READER_THREAD.to_owned())
        .spawn(move || read(source, reading, tx))
        // As `thread::spawn`, which panics the same way.
        .expect("failed to spawn the reader thread")
}

/// The name of the thread that reads and decodes the input.
const READER_THREAD: &str = "cepheid-read";

/// The reader thread's work.
fn read(source: Opened, reading: Reading, tx: SyncSender<Message>) {
    let source = match source {
        Opened::Custom(source) => {
            return read_source(
                source,
                reading.decoder,
                reading.controls,
                reading.seen,
                reading.timing,
                EndGuard(tx),
            );
        }
        source => source,
    };
    let end = EndGuard(tx);
    let Reading {
        origin,
        decoder,
        fresh,
        start,
        tails,
        controls,
        mut seen,
        timing: _,
    } = reading;
    let tx = &end.0;
    let origin: Arc<str> = origin.into();
    let go_on = controls.as_ref();
    match source {
        Opened::Stdin => {
            let items = Entries::new(origin, io::stdin(), decoder, go_on.is_some());
            read_lines(items, start, None, go_on, tx, false, (&mut seen, true));
        }
        Opened::File(file) => {
            let tail = tails.then(|| file.try_clone().ok()).flatten();
            let items = Entries::new(origin, file, decoder, go_on.is_some());
            read_lines(
                items,
                start,
                tail.as_ref(),
                go_on,
                tx,
                true,
                (&mut seen, true),
            );
        }
        // (read above)
        Opened::Custom(_) => {}
        Opened::Follow(mut follow) => {
            let (mut decoder, mut start) = (decoder, start);
            loop {
                let tail = tails.then(|| follow.file().try_clone().ok()).flatten();
                let items = Entries::new(origin.clone(), &mut follow, decoder, go_on.is_some());
                let told = (&mut seen, false);
                let read = read_lines(items, start, tail.as_ref(), go_on, tx, false, told);
                if !read || !follow.take_switched() {
                    return;
                }
                decoder = fresh();
                start = FilePosition::default();
            }
        }
    }
}

/// An input's lines, decoded: the library's [`cepheid_engine::io::Items`], with
/// control records recognized before decoding (when asked for).
struct Entries<R> {
    items: Items<R>,
    controls: bool,
}

impl<R: Read> Entries<R> {
    fn new(origin: Arc<str>, input: R, decoder: Decoder, controls: bool) -> Entries<R> {
        Entries {
            items: Items::new(origin, input, decoder),
            controls,
        }
    }

    /// Input bytes consumed so far.
    fn bytes_read(&self) -> u64 {
        self.items.bytes_read()
    }

    /// The decoder.
    fn decoder(&self) -> &Decoder {
        self.items.decoder()
    }

    /// Will the next entry come without waiting for the input?
    fn item_ready(&mut self) -> bool {
        self.items.item_ready()
    }

    /// The next line's number and entry, or why it is malformed; `None` at
    /// the end (a read error is the last entry).
    fn next(&mut self) -> Option<(u64, Result<Entry, Error>)> {
        let controls = self.controls;
        self.items.next_with(
            |decoder, text| match controls.then(|| control(text)).flatten() {
                Some(Ok(control)) => Ok(Entry::Rules(control)),
                Some(Err(why)) => Err(Error::new(ErrorKind::Input, why)),
                None => decoder.decode(text).map(Entry::Item),
            },
        )
    }
}

/// Reads one file's lines into batches, numbered and placed from `start`.
/// A batch is sent when it is full or when the next line is not in the
/// buffer yet, so that a slow input (a pipe, a terminal, a followed file)
/// is processed as it comes, and after a control record, which the
/// thread then waits on `go_on` for. With `to_end` (a file read to its
/// end, with tails), a last line without its newline is sent alone
/// ([`Batch::open_end`]). What the decoder saw of the fields is sent
/// when `seen` says, and at the end when `at_end` (not for a followed
/// file's, which goes on in the next). False when the receiver is gone.
fn read_lines<R: Read>(
    mut items: Entries<R>,
    start: FilePosition,
    tail_of: Option<&File>,
    go_on: Option<&Receiver<()>>,
    tx: &SyncSender<Message>,
    to_end: bool,
    (seen, at_end): (&mut SeenTold, bool),
) -> bool {
    let mut lines = Vec::with_capacity(BATCH_LINES);
    let mut batch_start = 0;
    let mut count = start.lines;
    let place = |read: u64, count: u64| {
        let offset = start.offset + read;
        FilePosition {
            offset,
            lines: count,
            tail: tail_of.and_then(|f| Tail::of(f, offset)),
        }
    };
    // Does the input read so far end in the middle of a line (only a last
    // line can: the file is still being written)?
    let open_end = |read: u64| {
        let offset = start.offset + read;
        let mut last = [0u8];
        to_end
            && read > 0
            && tail_of
                .is_some_and(|f| read_at(f, &mut last, offset - 1).is_ok() && last[0] != b'\n')
    };
    // Where the next line starts, and where the last one pushed started.
    let (mut line_start, mut pushed_start) = (0, 0);
    let send = |lines: &mut Vec<(u64, Result<Entry, Error>)>,
                read: u64,
                line_start: u64,
                count: u64,
                stalled: bool| {
        let mut lines = std::mem::replace(lines, Vec::with_capacity(BATCH_LINES));
        if open_end(read) {
            // The lines before it, then it alone.
            let last = lines.pop();
            if !lines.is_empty() {
                let before = Batch {
                    lines,
                    place: None,
                    at: place(line_start, count - 1),
                    stalled: false,
                    open_end: false,
                    partial: false,
                    places: Vec::new(),
                    splits: None,
                };
                if tx.send(Message::Batch(before)).is_err() {
                    return false;
                }
            }
            let batch = Batch {
                lines: last.into_iter().collect(),
                place: None,
                at: place(read, count),
                stalled,
                open_end: true,
                partial: false,
                places: Vec::new(),
                splits: None,
            };
            return tx.send(Message::Batch(batch)).is_ok();
        }
        let batch = Batch {
            lines,
            place: None,
            at: place(read, count),
            stalled,
            open_end: false,
            partial: false,
            places: Vec::new(),
            splits: None,
        };
        tx.send(Message::Batch(batch)).is_ok()
    };
    while let Some((line_no, item)) = items.next() {
        count += 1;
        pushed_start = line_start;
        line_start = items.bytes_read();
        let rules = matches!(item, Ok(Entry::Rules(_)));
        lines.push((start.lines + line_no, item));
        let full = lines.len() >= BATCH_LINES || items.bytes_read() - batch_start >= BATCH_BYTES;
        let stalled = !items.item_ready();
        if full || stalled || rules {
            if !send(&mut lines, items.bytes_read(), pushed_start, count, stalled)
                || !seen.send(items.decoder(), false, tx)
            {
                return false;
            }
            batch_start = items.bytes_read();
            // The next lines are decoded with the new rules' fields.
            if rules && go_on.is_some_and(|go_on| go_on.recv().is_err()) {
                return false;
            }
        }
    }
    if !lines.is_empty() && !send(&mut lines, items.bytes_read(), pushed_start, count, false) {
        return false;
    }
    !at_end || seen.send(items.decoder(), true, tx)
}

/// Why a [`Source`] could not read or seek.
#[derive(Debug)]
pub struct SourceError {
    /// The source, as it describes itself.
    pub source_name: String,
    /// The error.
    pub error: io::Error,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {}: {}", self.source_name, self.error)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// What one [`Source::read`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// It appended records (or watermarks) to the batch, and may have
    /// more ready.
    Delivered,
    /// It appended records to the batch, and has no further one ready: it
    /// has read all that was written so far (a live source caught up).
    /// The run then shows its output at once, as when a pipe waits for
    /// its writer: a steady stream's records are not held in a buffer.
    CaughtUp,
    /// Nothing came within the wait (a live source).
    Idle,
    /// The source ended (a file read to its end, not followed).
    Ended,
}

/// Where a raw record comes from, for messages and ordering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A line of a file (numbered from 1).
    Line(u64),
    /// A record of a partitioned log: partition and offset.
    Offset {
        /// The partition.
        partition: u32,
        /// The offset.
        offset: i64,
    },
}

/// How far one split of a [`Source`] is behind the end of its input, in
/// records ([`Source::lag`]): a Kafka partition's end offset (its last
/// stable offset when reading committed records) less the consumer's
/// position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitLag {
    /// The stream the split belongs to (a Kafka topic).
    pub topic: String,
    /// The split's number in that stream (a Kafka partition).
    pub partition: u32,
    /// Records behind its end.
    pub records: u64,
}

/// One record of a [`RawBatch`]: its payload's place in the batch's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    range: std::ops::Range<usize>,
    /// Where it comes from.
    pub origin: Origin,
    /// The time the source gives it (a Kafka record's time), if any.
    pub timestamp: Option<cepheid_engine::Timestamp>,
    /// Its split (a Kafka partition; a file is one split, 0).
    pub split: u32,
}

/// What a [`RawBatch`] holds, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawEntry {
    /// A record.
    Record(RawRecord),
    /// A watermark the source emits (e.g. the minimum over its splits,
    /// [`SplitWatermarks`]): event time has got there.
    Watermark(cepheid_engine::Timestamp),
    /// A record of the source's rules stream (a Kafka rules topic): a
    /// `{"$rules": ...}` or `{"$rules_file": ...}` record whose
    /// [`RawRecord::timestamp`] is the event time at which it applies.
    /// The reader holds it until the watermark of the events gets there
    /// (with split watermarks), and the source's position handed to a
    /// checkpoint meanwhile is the one before it
    /// ([`Source::position_before`]). Its split is the source's own
    /// numbering for [`Source::describe_origin`], not a split of events.
    Rules(RawRecord),
}

/// Raw records handed over by a [`Source`]: payloads in one buffer (a
/// block of many lines costs no copy per line), each with its origin.
#[derive(Clone, Debug, Default)]
pub struct RawBatch {
    bytes: Vec<u8>,
    entries: Vec<RawEntry>,
}

impl RawBatch {
    /// Appends one record.
    pub fn push(
        &mut self,
        payload: &[u8],
        origin: Origin,
        timestamp: Option<cepheid_engine::Timestamp>,
        split: u32,
    ) {
        let record = self.raw(payload, origin, timestamp, split);
        self.entries.push(RawEntry::Record(record));
    }

    /// Appends a block of whole lines (each ended by `\n`; a last line
    /// without one is a line too), the first numbered `first_line`;
    /// returns the number after the last.
    pub fn push_lines(&mut self, block: &[u8], first_line: u64, split: u32) -> u64 {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(block);
        let mut line = first_line;
        let mut start = 0;
        while start < block.len() {
            let end = memchr_newline(&block[start..]).map_or(block.len(), |i| start + i);
            self.entries.push(RawEntry::Record(RawRecord {
                range: base + start..base + end,
                origin: Origin::Line(line),
                timestamp: None,
                split,
            }));
            line += 1;
            start = end + 1;
        }
        line
    }

    /// Appends a record of the source's rules stream ([`RawEntry::Rules`]).
    pub fn push_rules(
        &mut self,
        payload: &[u8],
        origin: Origin,
        timestamp: Option<cepheid_engine::Timestamp>,
        split: u32,
    ) {
        let record = self.raw(payload, origin, timestamp, split);
        self.entries.push(RawEntry::Rules(record));
    }

    /// `payload` copied into the batch's bytes, as a record there.
    fn raw(
        &mut self,
        payload: &[u8],
        origin: Origin,
        timestamp: Option<cepheid_engine::Timestamp>,
        split: u32,
    ) -> RawRecord {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(payload);
        RawRecord {
            range: start..self.bytes.len(),
            origin,
            timestamp,
            split,
        }
    }
    /// Appends a watermark.
    pub fn push_watermark(&mut self, t: cepheid_engine::Timestamp) {
        self.entries.push(RawEntry::Watermark(t));
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[RawEntry] {
        &self.entries
    }

    /// A record's payload.
    pub fn payload(&self, record: &RawRecord) -> &[u8] {
        &self.bytes[record.range.clone()]
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Empties it (keeping its buffers).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }
}

/// The first `\n` in `bytes`.
fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// A stream of raw records with a position that goes into checkpoints and
/// can be sought back to on resuming. The run reads it on a thread of its
/// own and decodes each record there ([`Runtime::with_source`]).
///
/// [`Runtime::with_source`]: crate::Runtime::with_source
pub trait Source: Send + 'static {
    /// Its name in messages (`events.jsonl`, `kafka:orders`).
    fn describe(&self) -> String;

    /// Appends records (and watermarks) to `batch`, blocking at most
    /// `wait`; says whether it delivered (and whether it then had read all
    /// that was written so far: [`ReadOutcome::CaughtUp`], after which
    /// the run shows its output), had nothing, or ended.
    fn read(&mut self, batch: &mut RawBatch, wait: Duration) -> Result<ReadOutcome, SourceError>;

    /// Where it is, after the last record handed out.
    fn position(&self) -> Position;
    /// Where it is as if the rules records `unapplied` (of
    /// [`RawEntry::Rules`], each its split and origin, in the order handed
    /// out) had not been handed out: they wait for event time, and a
    /// checkpoint taken meanwhile must read them again on resuming. By
    /// default [`Source::position`] (a source without a rules stream).
    fn position_before(&self, unapplied: &[(u32, Origin)]) -> Position {
        let _ = unapplied;
        self.position()
    }

    /// Goes back to `position` (resuming from a checkpoint).
    fn seek(&mut self, position: &Position) -> Result<(), SourceError>;

    /// A name for each split, in split order, that every source reading a
    /// share of the same input gives it (a Kafka source:
    /// `topic/partition`). With them, a checkpoint of a run on workers,
    /// each worker's source a share of the splits, resumes on another
    /// number of workers: each split's watermark goes to the source that
    /// reads it now, and its place with [`Source::position_of_shares`].
    /// `None` (the default): such a checkpoint resumes on the same number
    /// of workers only.
    fn split_names(&self) -> Option<Vec<String>> {
        None
    }

    /// The position of this source's splits in `positions`: the positions
    /// of the sources that read shares of the same input before (a
    /// checkpoint of a run on workers resumed on another number of
    /// workers), each split's from the one that names it; a split none of
    /// them names is left where the source is now (when [`Source::seek`]
    /// is given the result). An error when two of them name a split of
    /// this source at different places, or they are not this kind of
    /// source's positions; by default (a source without
    /// [`Source::split_names`]) always.
    fn position_of_shares(&self, positions: &[Position]) -> Result<Position, SourceError> {
        let _ = positions;
        Err(SourceError {
            source_name: self.describe(),
            error: io::Error::other("its position cannot be put together from shares of its input"),
        })
    }

    /// The checkpoint at `position` is durable and committed by the sinks
    /// (a Kafka source commits its consumer offsets here).
    fn checkpoint_committed(&mut self, position: &Position) {
        let _ = position;
    }

    /// Records behind the end of its input, per split, when it knows
    /// them (a Kafka source: from its client's statistics); `None` when
    /// it does not (the default). The reader thread asks at most once a
    /// second ([`LAG_EVERY`]), after a read, never per record: it should
    /// cost no request to a server.
    fn lag(&self) -> Option<Vec<SplitLag>> {
        None
    }

    /// How many splits it has (a Kafka source: its partitions), numbered
    /// from 0 in [`RawRecord::split`]; 1 by default.
    fn splits(&self) -> usize {
        1
    }

    /// The run's [`Notify`](crate::Notify), given once when the run
    /// starts: what the source has to say of its own (a server that stops
    /// answering, and answers again) goes there, from any thread. Ignored
    /// by default.
    fn notify_to(&mut self, notify: crate::Notify) {
        let _ = notify;
    }

    /// Where a record of split `split` at `origin` is, for messages
    /// (`kafka:orders partition 2 offset 17`); by default the source's
    /// name and the line or offset (`events.jsonl:12`).
    fn describe_origin(&self, split: u32, origin: &Origin) -> String {
        match origin {
            Origin::Line(n) => format!("{}:{n}", self.describe()),
            Origin::Offset { partition, offset } => {
                let _ = split;
                format!("{} partition {partition} offset {offset}", self.describe())
            }
        }
    }
}

/// Per-split watermarks combined as Flink's Kafka source does: the
/// watermark is the least over the splits, and a split from which nothing
/// came for the idle timeout is left out until it delivers again (so one
/// quiet partition does not hold event time back). A split that has
/// delivered nothing holds it back (as Flink's `Long.MIN_VALUE`) until it
/// has been quiet for the idle timeout, counted from the first time the
/// watermarks were asked or told anything; without an idle timeout it
/// holds it back for good. The watermark never goes back: a split that
/// comes back from idleness behind it does not pull it back (its records
/// behind it are late). The one implementation: the reader thread of a
/// [`Source`] with splits uses it (a Kafka source's partitions, in the
/// single run and on each worker).
#[derive(Clone, Debug)]
pub struct SplitWatermarks {
    idle_timeout: Option<Duration>,
    /// Per split: its watermark and when it last delivered.
    splits: Vec<Option<(cepheid_engine::Timestamp, std::time::Instant)>>,
    /// The first instant it was given: a split that never delivered has
    /// been quiet since then.
    since: Option<std::time::Instant>,
    /// The last watermark returned (never goes back).
    emitted: Option<cepheid_engine::Timestamp>,
}

impl SplitWatermarks {
    /// Over `splits` splits; `idle_timeout`: after how long a quiet split
    /// is left out (`None`: never).
    pub fn new(splits: usize, idle_timeout: Option<Duration>) -> SplitWatermarks {
        SplitWatermarks {
            idle_timeout,
            splits: vec![None; splits],
            since: None,
            emitted: None,
        }
    }

    /// Split `split` has got to watermark `t` at `now` (a split's
    /// watermark never goes back either).
    pub fn update(&mut self, split: usize, t: cepheid_engine::Timestamp, now: std::time::Instant) {
        self.since.get_or_insert(now);
        if split >= self.splits.len() {
            self.splits.resize(split + 1, None);
        }
        let slot = &mut self.splits[split];
        let t = slot.map_or(t, |(old, _)| old.max(t));
        *slot = Some((t, now));
    }

    /// The combined watermark last returned by [`SplitWatermarks::advance`]
    /// (or restored).
    pub fn emitted(&self) -> Option<cepheid_engine::Timestamp> {
        self.emitted
    }

    /// Each split's watermark (for a checkpoint).
    pub fn state(&self) -> Vec<Option<cepheid_engine::Timestamp>> {
        self.splits.iter().map(|s| s.map(|(t, _)| t)).collect()
    }

    /// Restores the splits' watermarks of [`SplitWatermarks::state`]
    /// (each as delivered at `now`) and the combined one last returned.
    pub fn restore(
        &mut self,
        state: &[Option<cepheid_engine::Timestamp>],
        emitted: Option<cepheid_engine::Timestamp>,
        now: std::time::Instant,
    ) {
        self.since.get_or_insert(now);
        for (split, t) in state.iter().enumerate() {
            if let Some(t) = t {
                self.update(split, *t, now);
            }
        }
        self.emitted = emitted;
    }

    /// True when split `split` is left out at `now`: nothing came from it
    /// for the idle timeout (since it last delivered, or, if it never
    /// did, since the first instant the watermarks were given).
    pub fn is_idle(&self, split: usize, now: std::time::Instant) -> bool {
        let Some(timeout) = self.idle_timeout else {
            return false;
        };
        let last = match self.splits.get(split).copied().flatten() {
            Some((_, last)) => last,
            None => self.since.unwrap_or(now),
        };
        now.saturating_duration_since(last) >= timeout
    }

    /// The combined watermark at `now`, when it moved past the last one
    /// returned (then put it in the batch: [`RawBatch::push_watermark`]):
    /// the least of the splits that are not idle ([`SplitWatermarks::is_idle`]).
    /// A split that never delivered holds it back until it is idle; all
    /// splits idle: unchanged.
    pub fn advance(&mut self, now: std::time::Instant) -> Option<cepheid_engine::Timestamp> {
        self.since.get_or_insert(now);
        let mut least: Option<cepheid_engine::Timestamp> = None;
        for (split, slot) in self.splits.iter().enumerate() {
            if self.is_idle(split, now) {
                continue;
            }
            match slot {
                Some((t, _)) => least = Some(least.map_or(*t, |l| l.min(*t))),
                // (holds it back until idle)
                None => return None,
            }
        }
        let t = least?;
        if self.emitted.is_some_and(|e| e >= t) {
            return None;
        }
        self.emitted = Some(t);
        Some(t)
    }
}

/// A file read from an offset (followed or not), or standard input, as a
/// [`Source`]: blocks of whole lines.
pub struct FileSource {
    name: String,
    path: Option<PathBuf>,
    reader: Box<dyn Read + Send>,
    follow: bool,
    at: FilePosition,
    /// Bytes read after the last whole line.
    pending: Vec<u8>,
    buffer: Vec<u8>,
    ended: bool,
}

impl FileSource {
    /// `path` (`-`: standard input, which has no position), followed or
    /// not, from its beginning.
    pub fn open(path: &Path, follow: bool) -> Result<FileSource, SourceError> {
        let name = if path == Path::new("-") {
            "standard input".to_string()
        } else {
            path.display().to_string()
        };
        let mut source = FileSource {
            name,
            path: (path != Path::new("-")).then(|| path.to_path_buf()),
            reader: Box::new(io::empty()),
            follow,
            at: FilePosition::default(),
            pending: Vec::new(),
            buffer: vec![0; 1 << 16],
            ended: false,
        };
        source.reopen(0)?;
        Ok(source)
    }

    fn error(&self, error: io::Error) -> SourceError {
        SourceError {
            source_name: self.name.clone(),
            error,
        }
    }

    fn reopen(&mut self, offset: u64) -> Result<(), SourceError> {
        let Some(path) = &self.path else {
            if offset > 0 {
                return Err(self.error(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "standard input cannot be read again",
                )));
            }
            self.reader = Box::new(io::stdin());
            return Ok(());
        };
        let path = path.clone();
        self.reader = if self.follow {
            Box::new(Follow::open(&path, offset, &mut |_| {}).map_err(|e| self.error(e))?)
        } else {
            let mut file = File::open(&path).map_err(|e| self.error(e))?;
            io::Seek::seek(&mut file, io::SeekFrom::Start(offset)).map_err(|e| self.error(e))?;
            Box::new(file)
        };
        Ok(())
    }
}

impl Source for FileSource {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn read(&mut self, batch: &mut RawBatch, _wait: Duration) -> Result<ReadOutcome, SourceError> {
        if self.ended {
            return Ok(ReadOutcome::Ended);
        }
        let n = match self.reader.read(&mut self.buffer) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(ReadOutcome::Idle),
            Err(e) => return Err(self.error(e)),
        };
        if n == 0 {
            // (a followed file's rotation: the new file from its start)
            if self.follow {
                self.at = FilePosition::default();
                let rest = std::mem::take(&mut self.pending);
                if rest.is_empty() {
                    return Ok(ReadOutcome::Idle);
                }
                self.at.lines = batch.push_lines(&rest, self.at.lines + 1, 0) - 1;
                return Ok(ReadOutcome::Delivered);
            }
            self.ended = true;
            let rest = std::mem::take(&mut self.pending);
            if rest.is_empty() {
                return Ok(ReadOutcome::Ended);
            }
            self.at.offset += rest.len() as u64;
            self.at.lines = batch.push_lines(&rest, self.at.lines + 1, 0) - 1;
            return Ok(ReadOutcome::Delivered);
        }
        self.pending.extend_from_slice(&self.buffer[..n]);
        let Some(last) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(ReadOutcome::Idle);
        };
        let whole = &self.pending[..=last];
        self.at.offset += whole.len() as u64;
        self.at.lines = batch.push_lines(whole, self.at.lines + 1, 0) - 1;
        self.pending.drain(..=last);
        Ok(ReadOutcome::Delivered)
    }

    fn position(&self) -> Position {
        match self.path {
            None => Position::None,
            Some(_) => Position::File(FilePosition {
                tail: None,
                ..self.at
            }),
        }
    }

    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        let at = match position {
            Position::File(at) => *at,
            Position::None => FilePosition::default(),
            Position::Bytes(_) => {
                return Err(self.error(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a file's position",
                )))
            }
        };
        self.reopen(at.offset)?;
        self.at = FilePosition { tail: None, ..at };
        self.pending.clear();
        self.ended = false;
        Ok(())
    }
}

/// How the reader thread times a [`Source`]'s records.
#[derive(Clone, Debug, Default)]
pub struct SourceTiming {
    /// Event time is each record's own ([`RawRecord::timestamp`]), not a
    /// field's: a record without one is malformed.
    pub record_time: bool,
    /// Per-split watermarks ([`Config::split_watermarks`](crate::Config::split_watermarks)):
    /// each split's largest time less `max_delay` less 1 ms, combined by
    /// minimum, idle splits left out ([`SplitWatermarks`]).
    pub splits: Option<SplitTiming>,
}

/// The per-split watermarks of a [`SourceTiming`].
#[derive(Clone, Debug, Default)]
pub struct SplitTiming {
    /// The bounded out-of-orderness, in milliseconds.
    pub max_delay: i64,
    /// After how long without a record a split is left out.
    pub idle_timeout: Option<Duration>,
    /// Each split's watermark when the run resumed (a checkpoint's).
    pub resumed: Vec<Option<cepheid_engine::Timestamp>>,
    /// The combined watermark when the run resumed.
    pub emitted: Option<cepheid_engine::Timestamp>,
}

/// What the reader thread has decoded of a [`Source`]'s read and not sent
/// yet.
struct Outbox<'a> {
    tx: &'a SyncSender<Message>,
    go_on: Option<&'a Receiver<()>>,
    lines: Vec<(u64, Result<Entry, Error>)>,
    places: Vec<(usize, String)>,
    /// Is the last line a control record, not applied yet?
    wait: bool,
}

impl Outbox<'_> {
    /// Appends a line (`place`: where it is, for a malformed or control
    /// record). The caller settled a control record before ([`Outbox::settle`]).
    fn push(&mut self, line_no: u64, entry: Result<Entry, Error>, place: Option<String>) {
        debug_assert!(!self.wait, "a line after a control record not applied");
        if let Some(place) = place {
            self.places.push((self.lines.len(), place));
        }
        self.wait = matches!(entry, Ok(Entry::Rules(_) | Entry::SourceRules(_)));
        self.lines.push((line_no, entry));
    }

    /// With a control record last: sends the lines up to it (the first
    /// part of the read, [`Batch::partial`]) and waits until the main
    /// thread has applied it, so that what comes next is decoded with the
    /// new rules' fields. False when the receiver is gone.
    fn settle(&mut self, splits: Option<Vec<Option<cepheid_engine::Timestamp>>>) -> bool {
        if !self.wait {
            return true;
        }
        self.wait = false;
        let batch = Batch {
            lines: std::mem::take(&mut self.lines),
            at: FilePosition::default(),
            place: None,
            stalled: false,
            open_end: false,
            partial: true,
            places: std::mem::take(&mut self.places),
            splits,
        };
        self.tx.send(Message::Batch(batch)).is_ok()
            && !self.go_on.is_some_and(|go_on| go_on.recv().is_err())
    }
}

/// A record of a source's rules stream waiting for event time to reach
/// it.
struct Due {
    /// The event time at which it applies: the switch is at the watermark
    /// just before it.
    at: cepheid_engine::Timestamp,
    line_no: u64,
    /// The rule set, or why the record is not one (said when it is due).
    control: Result<Control, Error>,
    place: String,
    split: u32,
    origin: Origin,
}

/// The rule set of a record of a source's rules stream, or why it is not
/// one.
fn rules_record(text: &[u8]) -> Result<Control, Error> {
    match control(text) {
        Some(Ok(control)) => Ok(control),
        Some(Err(why)) => Err(Error::new(ErrorKind::Input, why)),
        None if text.is_empty() => Err(Error::new(
            ErrorKind::Input,
            "an empty rules record (a tombstone, or an empty value)",
        )),
        None => Err(Error::new(
            ErrorKind::Input,
            "not a rules record (`{\"$rules\": ...}` or `{\"$rules_file\": ...}`)",
        )),
    }
}

/// Applies the rules records of `due` whose time the watermark `until`
/// reaches (all of them with `None`, at the end of the input), in order,
/// each after a watermark just before its time (when the last one given to
/// the engine, `given`, is behind it), so that the switch is there. False
/// when the receiver is gone.
fn release(
    due: &mut std::collections::VecDeque<Due>,
    until: Option<cepheid_engine::Timestamp>,
    given: &mut Option<cepheid_engine::Timestamp>,
    out: &mut Outbox<'_>,
    (seq, splits): (u64, Option<Vec<Option<cepheid_engine::Timestamp>>>),
) -> bool {
    while due
        .front()
        .is_some_and(|d| until.map_or(true, |t| d.at.saturating_sub(1) <= t))
    {
        let d = due.pop_front().expect("checked");
        if !out.settle(splits.clone()) {
            return false;
        }
        match d.control {
            Ok(control) => {
                let switch = d.at.saturating_sub(1);
                if given.map_or(true, |w| switch > w) {
                    out.push(seq, Ok(Entry::SplitWatermark(switch)), None);
                    *given = Some(switch);
                }
                let rules = SourceRules {
                    control,
                    time: Some(d.at),
                    late: None,
                };
                out.push(d.line_no, Ok(Entry::SourceRules(rules)), Some(d.place));
            }
            Err(e) => out.push(d.line_no, Err(e), Some(d.place)),
        }
    }
    true
}

/// The splits' watermark at `now`: when it moved, the rules records due
/// by then go first, then the watermark. False when the run stopped.
fn advance(
    w: &mut SplitWatermarks,
    now: std::time::Instant,
    seq: u64,
    due: &mut std::collections::VecDeque<Due>,
    given: &mut Option<cepheid_engine::Timestamp>,
    out: &mut Outbox<'_>,
) -> bool {
    let Some(t) = w.advance(now) else {
        return true;
    };
    if !release(due, Some(t), given, out, (seq, Some(w.state()))) || !out.settle(Some(w.state())) {
        return false;
    }
    if given.map_or(true, |g| t > g) {
        out.push(seq, Ok(Entry::SplitWatermark(t)), None);
        *given = Some(t);
    }
    true
}

/// Reads a [`Source`] on the reader thread: each record decoded there,
/// sent in batches with the source's position after the last. What one
/// read handed out is sent whole, even when a control record is in it:
/// the batch is cut after the control record (the part before is
/// [`Batch::partial`]), the rules applied, and the rest decoded then with
/// the new rules' fields.
///
/// The records of the source's rules stream ([`RawEntry::Rules`]) wait
/// here until the watermark of the events reaches their time: then the
/// watermark goes to just before it, the rules change, and the watermark
/// goes on (`docs/dynamic-rules.md`, "A rules stream of its own"). One
/// whose time event time has already passed applies at once, late; one
/// without a time (the state of the stream when the source started)
/// applies at once. They keep their order. Without split watermarks
/// (processing time) each applies when read.
fn read_source(
    source: Arc<std::sync::Mutex<Box<dyn Source>>>,
    mut decoder: Decoder,
    controls: Option<Receiver<()>>,
    mut seen: SeenTold,
    timing: SourceTiming,
    end: EndGuard,
) {
    let tx = &end.0;
    let lock = || {
        source
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    let mut splits = timing.splits.as_ref().map(|s| {
        let now = std::time::Instant::now();
        let mut w = SplitWatermarks::new(lock().splits(), s.idle_timeout);
        w.restore(&s.resumed, s.emitted, now);
        (w, s.max_delay)
    });
    let state = |splits: &Option<(SplitWatermarks, i64)>| splits.as_ref().map(|(w, _)| w.state());
    // The last watermark given to the engine.
    let mut given = timing.splits.as_ref().and_then(|s| s.emitted);
    // Rules records waiting for event time, and the time of the last one.
    let mut due: std::collections::VecDeque<Due> = std::collections::VecDeque::new();
    let mut last_at: Option<cepheid_engine::Timestamp> = None;
    let unapplied = |due: &std::collections::VecDeque<Due>| {
        due.iter()
            .map(|d| (d.split, d.origin.clone()))
            .collect::<Vec<_>>()
    };
    let mut raw = RawBatch::default();
    let mut seq = 0u64;
    // When the source's lag was last asked for.
    let mut lag_asked: Option<std::time::Instant> = None;
    loop {
        raw.clear();
        let read = lock().read(&mut raw, Duration::from_millis(100));
        let outcome = match read {
            Ok(outcome) => outcome,
            Err(e) => {
                let error = Error::new(ErrorKind::Io, e.to_string());
                // (the source unlocked before the send, which may wait for
                // the run, which may wait for the source: a checkpoint)
                let place = lock().position_before(&unapplied(&due));
                let _ = tx.send(Message::Batch(Batch {
                    lines: vec![(seq + 1, Err(error))],
                    at: FilePosition::default(),
                    place: Some(place),
                    stalled: false,
                    open_end: false,
                    partial: false,
                    places: Vec::new(),
                    splits: None,
                }));
                return;
            }
        };
        let mut out = Outbox {
            tx,
            go_on: controls.as_ref(),
            lines: Vec::with_capacity(raw.entries().len()),
            places: Vec::new(),
            wait: false,
        };
        for entry in raw.entries() {
            seq += 1;
            // (what comes next is decoded with the rules applied)
            if !out.settle(state(&splits)) {
                return;
            }
            let record = match entry {
                RawEntry::Watermark(t) => {
                    out.push(seq, Ok(Entry::Item(Item::Watermark(*t))), None);
                    continue;
                }
                RawEntry::Rules(record) => {
                    let line_no = match record.origin {
                        Origin::Line(n) => n,
                        Origin::Offset { offset, .. } => u64::try_from(offset).unwrap_or(seq),
                    };
                    let place = lock().describe_origin(record.split, &record.origin);
                    let control = rules_record(raw.payload(record));
                    let queued = splits.is_some() && !due.is_empty();
                    let at = match record.timestamp {
                        Some(t) => Some(last_at.map_or(t, |l| l.max(t))),
                        None => last_at.filter(|_| queued),
                    };
                    last_at = at.or(last_at);
                    // Now, or after the watermark reaches its time.
                    let now = match (at, &splits) {
                        (_, None) => true,
                        (_, Some(_)) if queued => false,
                        (None, Some(_)) => true,
                        (Some(at), Some(_)) => given.is_some_and(|w| at.saturating_sub(1) <= w),
                    };
                    if now {
                        let late = match (at, given) {
                            (Some(at), Some(w)) if splits.is_some() && at.saturating_sub(1) < w => {
                                Some(w)
                            }
                            _ => None,
                        };
                        let entry = control.map(|control| {
                            Entry::SourceRules(SourceRules {
                                control,
                                time: at,
                                late,
                            })
                        });
                        out.push(line_no, entry, Some(place));
                    } else {
                        due.push_back(Due {
                            at: at.or(last_at).unwrap_or(cepheid_engine::Timestamp::MIN),
                            line_no,
                            control,
                            place,
                            split: record.split,
                            origin: record.origin.clone(),
                        });
                    }
                    continue;
                }
                RawEntry::Record(record) => record,
            };
            let line_no = match record.origin {
                Origin::Line(n) => n,
                Origin::Offset { offset, .. } => u64::try_from(offset).unwrap_or(seq),
            };
            let text = raw.payload(record);
            let mut entry = match controls.is_some().then(|| control(text)).flatten() {
                Some(Ok(control)) => Ok(Entry::Rules(control)),
                Some(Err(why)) => Err(Error::new(ErrorKind::Input, why)),
                // (the source hands out a record without a value, a
                // tombstone, as an empty one: it cannot tell them apart)
                None if text.is_empty() && matches!(record.origin, Origin::Offset { .. }) => {
                    Err(Error::new(
                        ErrorKind::Input,
                        "an empty record (a tombstone, or an empty value)",
                    ))
                }
                None => decoder.decode(text).map(Entry::Item),
            };
            if timing.record_time {
                if let Ok(Entry::Item(Item::Event(ts, _))) = &mut entry {
                    match record.timestamp {
                        Some(t) => *ts = t,
                        None => {
                            entry = Err(Error::new(
                                ErrorKind::Input,
                                "the record has no timestamp (event time is the record's)",
                            ))
                        }
                    }
                }
            }
            let place = (matches!(entry, Ok(Entry::Rules(_))) || entry.is_err())
                .then(|| lock().describe_origin(record.split, &record.origin));
            let event_ts = match &entry {
                Ok(Entry::Item(Item::Event(ts, _))) => Some(*ts),
                _ => None,
            };
            out.push(line_no, entry, place);
            if let (Some((w, max_delay)), Some(ts)) = (&mut splits, event_ts) {
                let now = std::time::Instant::now();
                if let Some(t) = ts.checked_sub(*max_delay).and_then(|t| t.checked_sub(1)) {
                    w.update(record.split as usize, t, now);
                }
                if !advance(w, now, seq, &mut due, &mut given, &mut out) {
                    return;
                }
            }
        }
        if outcome != ReadOutcome::Delivered {
            // Idle splits are released while nothing (more) comes.
            if let Some((w, _)) = &mut splits {
                if !advance(
                    w,
                    std::time::Instant::now(),
                    seq,
                    &mut due,
                    &mut given,
                    &mut out,
                ) {
                    return;
                }
            }
        }
        if outcome == ReadOutcome::Ended {
            // The end of event time reaches every rules record.
            let at = (seq, state(&splits));
            if !release(&mut due, None, &mut given, &mut out, at) {
                return;
            }
        }
        let wait = out.wait;
        let batch = Batch {
            lines: out.lines,
            at: FilePosition::default(),
            place: Some(lock().position_before(&unapplied(&due))),
            stalled: outcome != ReadOutcome::Delivered,
            open_end: false,
            partial: false,
            places: out.places,
            splits: state(&splits),
        };
        if (!batch.lines.is_empty() || batch.stalled) && tx.send(Message::Batch(batch)).is_err() {
            return;
        }
        if lag_asked.map_or(true, |at| at.elapsed() >= LAG_EVERY) {
            lag_asked = Some(std::time::Instant::now());
            let lag = lock().lag();
            if lag.is_some_and(|lag| tx.send(Message::Lag(lag)).is_err()) {
                return;
            }
        }
        let end = outcome == ReadOutcome::Ended;
        if !seen.send(&decoder, end, tx) {
            return;
        }
        if wait && controls.as_ref().is_some_and(|go_on| go_on.recv().is_err()) {
            return;
        }
        if outcome == ReadOutcome::Ended {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_record_is_known_by_its_first_bytes_whatever_its_spacing() {
        let control = |line: &str| control(line.as_bytes());
        for line in [
            r#"{"$rules": "pattern p { match a }"}"#,
            r#"   {"$rules": "x"}"#,
            "\u{feff}{\"$rules\": \"x\"}",
            r#"{ "$rules_file": "v2/"}"#,
            "\t{\n\"$rules\":\"x\"}",
        ] {
            assert!(matches!(control(line), Some(Ok(_))), "{line:?}");
        }
        for line in [
            r#"{"ts": 1, "$rules": "x"}"#,
            r#"{"$watermark": 5}"#,
            r#"{ "ts": 1}"#,
            "ts,type",
            "",
            "   ",
        ] {
            assert!(control(line).is_none(), "{line:?}");
        }
        assert!(matches!(control(r#"{"$rules": 5}"#), Some(Err(_))));
    }
}
