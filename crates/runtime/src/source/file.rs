//! The reader thread of a file, standard input or a followed file:
//! lines read in batches, decoded, sent ahead of the engine.

use super::*;

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
    /// A list of ranges of a file (of CSV: each decoded after the
    /// header's copy), then read to its end: the rest of a cut of workers
    /// (`docs/checkpoints.md`, "Across executors").
    Ranges(PathBuf, Vec<Range>, bool),
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
        if let cepheid_decode::Line::Text(text) = line {
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
    /// Name each event of a [`Source`] by its place too
    /// ([`Source::describe_origin`], in [`Batch::places`]), not only its
    /// malformed and control records: the run writes decisions, whose
    /// position it is (`docs/decisions.md`, "The position"). Not the
    /// built-in reader's (a file's lines are `PATH:LINE`).
    pub places: bool,
}

/// Reads and decodes `source` on a thread of its own. The thread ends at
/// the end of input, after a read error, or when the receiver is dropped,
/// and then sends [`Message::End`].
pub fn spawn_reader(source: Opened, reading: Reading, tx: Tx) -> JoinHandle<()> {
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
fn read(source: Opened, reading: Reading, tx: Tx) {
    let source = match source {
        Opened::Custom(source) => {
            return read_source(
                source,
                reading.decoder,
                reading.controls,
                reading.seen,
                reading.timing,
                reading.places,
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
        places: _,
    } = reading;
    let tx = &end.0;
    let go_on = controls.as_ref();
    // (the file whose tails are taken: a followed file's, at each of its
    // files)
    let (input, mut tail, to_end) = match source {
        Opened::Stdin => (Input::Other(Box::new(io::stdin())), None, false),
        Opened::File(file) => {
            let tail = tails.then(|| file.try_clone().ok()).flatten();
            (Input::Other(Box::new(file)), tail, true)
        }
        Opened::Follow(follow) => (Input::Follow(follow), None, false),
        Opened::Ranges(path, ranges, csv) => {
            let tail = File::open(&path).ok().filter(|_| tails);
            let mut reader = ShareReader::ranges(&path, &origin, ranges, csv, fresh)
                .controls(go_on.is_some())
                .by_part();
            let mut quiet = SeenTold::new(None);
            loop {
                let start = match reader.next_range() {
                    Ok(Some(start)) => start,
                    Ok(None) => break,
                    Err(e) => {
                        let error = Error::new(ErrorKind::Io, e.to_string());
                        let batch = Batch {
                            lines: vec![(0, Err(error))],
                            ..Batch::default()
                        };
                        let _ = tx.send(Message::Batch(batch));
                        return;
                    }
                };
                let told = (&mut quiet, false);
                if !read_lines(&mut reader, start, tail.as_ref(), go_on, tx, true, told) {
                    return;
                }
            }
            // (what every range's decoder saw, once at the end)
            if seen.after.is_some() {
                let _ = tx.send(Message::Seen(reader.seen().clone()));
            }
            return;
        }
        // (read above)
        Opened::Custom(_) => return,
    };
    let mut reader = ShareReader::one(origin.into(), input, decoder, fresh, go_on.is_some());
    let mut start = start;
    loop {
        let followed = reader.followed().map(Follow::file);
        if let Some(file) = followed.filter(|_| tails) {
            tail = file.try_clone().ok();
        }
        // (a followed file's fields go on in its next file)
        let told = (&mut seen, followed.is_none());
        if !read_lines(&mut reader, start, tail.as_ref(), go_on, tx, to_end, told)
            || !reader.next_file()
        {
            return;
        }
        start = FilePosition::default();
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
fn read_lines(
    items: &mut ShareReader,
    start: FilePosition,
    tail_of: Option<&File>,
    go_on: Option<&Receiver<()>>,
    tx: &Tx,
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
                (stalled, seen): (bool, Option<FieldsSeen>)| {
        let mut lines = std::mem::replace(lines, Vec::with_capacity(BATCH_LINES));
        if open_end(read) {
            // The lines before it, then it alone.
            let last = lines.pop();
            if !lines.is_empty() {
                let before = Batch {
                    lines,
                    at: place(line_start, count - 1),
                    ..Batch::default()
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
                seen,
                ..Batch::default()
            };
            return tx.send(Message::Batch(batch)).is_ok();
        }
        let batch = Batch {
            lines,
            at: place(read, count),
            stalled,
            seen,
            ..Batch::default()
        };
        tx.send(Message::Batch(batch)).is_ok()
    };
    while let Some((line_no, item)) = items.next_entry() {
        count = count.max(start.lines + line_no);
        pushed_start = line_start;
        line_start = items.bytes_read();
        let rules = super::waits_after(&item);
        lines.push((start.lines + line_no, item));
        let full = lines.len() >= BATCH_LINES || items.bytes_read() - batch_start >= BATCH_BYTES;
        let stalled = !items.item_ready();
        if full || stalled || rules {
            let attached = seen.attach(items.decoder());
            if !send(
                &mut lines,
                items.bytes_read(),
                pushed_start,
                count,
                (stalled, attached),
            ) || !seen.send(items.decoder(), false, tx)
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
    let attached = seen.attach(items.decoder());
    if !lines.is_empty()
        && !send(
            &mut lines,
            items.bytes_read(),
            pushed_start,
            count,
            (false, attached),
        )
    {
        return false;
    }
    !at_end || seen.send(items.decoder(), true, tx)
}
