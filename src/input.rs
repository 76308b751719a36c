//! The input of `cepheid run`: standard input, a file (from a byte offset,
//! when resuming from a checkpoint), or a followed file (`follow.rs`), read
//! and decoded on a thread of its own, a few batches of lines ahead of the
//! engine, so that parsing overlaps matching and output (the engine and
//! everything observable stay on the main thread, in input order).
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

use cepheid_engine::io::{Decoder, Item, Items, LineReader};
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

/// Where the input is: after the lines given to the engine so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Bytes of the file before the next line.
    pub offset: u64,
    /// Lines of the file before the next line.
    pub lines: u64,
    /// The bytes just before `offset`, when asked for.
    pub tail: Option<Tail>,
}

/// A CRC-32 of the (at most [`TAIL_BYTES`]) bytes just before an offset:
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
}

/// A control record's new rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `{"$rules": "<pattern source>"}`.
    Source(String),
    /// `{"$rules_file": "<path>"}`: a `.cep` file or a folder.
    File(PathBuf),
}

/// Is `line` a control record? `None` when its first key is neither
/// `$rules` nor `$rules_file` (the decoder reads it); otherwise the
/// record, or why it is malformed. A control record has exactly one
/// field, so its first key is the one: looking at the first bytes is
/// enough, and costs nothing on other lines.
pub fn control(line: &[u8]) -> Option<Result<Control, String>> {
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
    pub at: Position,
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
}

/// What the main thread receives.
pub enum Message {
    /// Lines from the reader thread.
    Batch(Batch),
    /// The reader thread is done (end of input, a read error, or a panic
    /// the join passes on).
    End,
    /// SIGINT or SIGTERM (its number).
    Signal(i32),
    /// `--watch`: the pattern files changed, or SIGHUP.
    Reload(Reload),
}

/// Why the rules are read again from disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// A pattern file or folder changed.
    Changed,
    /// SIGHUP.
    Hangup,
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
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file, read to its end.
    File(File),
    /// A followed file.
    Follow(Follow),
}

impl Source {
    /// Opens `path` (`-`: standard input) at byte `offset`, followed or
    /// not; its size when it is a file that is not followed (for progress).
    pub fn open(path: &Path, follow: bool, offset: u64) -> io::Result<(Source, Option<u64>)> {
        if path == Path::new("-") {
            return Ok((Source::Stdin, None));
        }
        if follow {
            return Ok((Source::Follow(Follow::open(path, offset)?), None));
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
        Ok((Source::File(file), size))
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
    pub start: Position,
    /// Give batches a [`Tail`] (for checkpoints)?
    pub tails: bool,
    /// JSON lines: control records are recognized, and after each the
    /// thread waits for a word on this channel (the rules applied).
    /// `None`: no control records (CSV).
    pub controls: Option<Receiver<()>>,
}

/// Reads and decodes `source` on a thread of its own. The thread ends at
/// the end of input, after a read error, or when the receiver is dropped,
/// and then sends [`Message::End`].
pub fn spawn_reader(source: Source, reading: Reading, tx: SyncSender<Message>) -> JoinHandle<()> {
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
fn read(source: Source, reading: Reading, tx: SyncSender<Message>) {
    let end = EndGuard(tx);
    let Reading {
        origin,
        decoder,
        fresh,
        start,
        tails,
        controls,
    } = reading;
    let tx = &end.0;
    let origin: Arc<str> = origin.into();
    let go_on = controls.as_ref();
    match source {
        Source::Stdin => {
            let items = Entries::new(origin, io::stdin(), decoder, go_on.is_some());
            read_lines(items, start, None, go_on, tx, false);
        }
        Source::File(file) => {
            let tail = tails.then(|| file.try_clone().ok()).flatten();
            let items = Entries::new(origin, file, decoder, go_on.is_some());
            read_lines(items, start, tail.as_ref(), go_on, tx, true);
        }
        Source::Follow(mut follow) => {
            let (mut decoder, mut start) = (decoder, start);
            loop {
                let tail = tails.then(|| follow.file().try_clone().ok()).flatten();
                let items = Entries::new(origin.clone(), &mut follow, decoder, go_on.is_some());
                let read = read_lines(items, start, tail.as_ref(), go_on, tx, false);
                if !read || !follow.take_switched() {
                    return;
                }
                decoder = fresh();
                start = Position::default();
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
/// ([`Batch::open_end`]). False when the receiver is gone.
fn read_lines<R: Read>(
    mut items: Entries<R>,
    start: Position,
    tail_of: Option<&File>,
    go_on: Option<&Receiver<()>>,
    tx: &SyncSender<Message>,
    to_end: bool,
) -> bool {
    let mut lines = Vec::with_capacity(BATCH_LINES);
    let mut batch_start = 0;
    let mut count = start.lines;
    let place = |read: u64, count: u64| {
        let offset = start.offset + read;
        Position {
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
                    at: place(line_start, count - 1),
                    stalled: false,
                    open_end: false,
                };
                if tx.send(Message::Batch(before)).is_err() {
                    return false;
                }
            }
            let batch = Batch {
                lines: last.into_iter().collect(),
                at: place(read, count),
                stalled,
                open_end: true,
            };
            return tx.send(Message::Batch(batch)).is_ok();
        }
        let batch = Batch {
            lines,
            at: place(read, count),
            stalled,
            open_end: false,
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
            if !send(&mut lines, items.bytes_read(), pushed_start, count, stalled) {
                return false;
            }
            batch_start = items.bytes_read();
            // The next lines are decoded with the new rules' fields.
            if rules && go_on.is_some_and(|go_on| go_on.recv().is_err()) {
                return false;
            }
        }
    }
    if lines.is_empty() {
        return true;
    }
    send(&mut lines, items.bytes_read(), pushed_start, count, false)
}
