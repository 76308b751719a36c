//! Where a worker's source is in its input ([`SourcePlace`], [`Share`]),
//! the live input read by worker 0 ([`Live`]), and the events of a
//! worker's chunks of a file ([`PartItems`]).

use super::*;

/// Where a worker's own [`Source`] is after a batch (the opaque bytes of
/// its [`Place`] in the cuts): its position and its splits' watermarks,
/// with the splits' names ([`Source::split_names`]), by which a cut
/// resumed on another number of workers gives each split's watermark to
/// the source that reads it then.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct SourcePlace {
    /// [`Source::position_before`] after the batch.
    pub(super) position: cepheid_runtime::source::Position,
    /// Each split's watermark after the batch, in split order.
    pub(super) splits: Vec<Option<Timestamp>>,
    /// Each split's name, in split order (empty for a source without
    /// names, and in cuts taken before names were kept).
    pub(super) names: Vec<String>,
}

/// A [`SourcePlace`] as cuts held it before the splits' names were kept
/// (read on the same number of workers as before).
#[derive(Deserialize)]
pub(super) struct UnnamedPlace {
    position: cepheid_runtime::source::Position,
    splits: Vec<Option<Timestamp>>,
}

impl SourcePlace {
    /// The place in a cut's bytes (of either form).
    pub(super) fn decode(bytes: &[u8]) -> Result<SourcePlace, postcard::Error> {
        postcard::from_bytes::<SourcePlace>(bytes).or_else(|e| {
            let old = postcard::from_bytes::<UnnamedPlace>(bytes).map_err(|_| e)?;
            Ok(SourcePlace {
                position: old.position,
                splits: old.splits,
                names: Vec::new(),
            })
        })
    }

    /// The watermarks of splits `names` in this place: by name when it
    /// has names, else by split number (a place of the same source).
    pub(super) fn watermarks_of(&self, names: &[String]) -> Vec<Option<Timestamp>> {
        if self.names.is_empty() {
            return self.splits.clone();
        }
        let of = |name: &String| {
            let i = self.names.iter().position(|n| n == name)?;
            self.splits.get(i).copied().flatten()
        };
        names.iter().map(of).collect()
    }
}

/// Where a worker's source goes on when a cut taken on another number of
/// workers resumes ([`shares`]): its place (its position from the old
/// sources' shares, its splits' watermarks from the old sources that
/// read them), the lines the old sources had read (the largest: its
/// events' offsets go on above every old one's, so that events of equal
/// times keep their input order), and the watermark its clock starts at:
/// the least of its splits' (`None` when one of them has none).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Share {
    pub(super) place: SourcePlace,
    pub(super) lines: u64,
    pub(super) start: Option<Timestamp>,
}

/// The [`Share`] of a source whose splits are `names`: `olds` are the old
/// workers' places (of the sources that read something), `position` its
/// position put together from theirs ([`Source::position_of_shares`]),
/// `lines` the largest number of lines an old source had read. Each split
/// takes the watermark of the old source that read it (the least, if
/// several name it).
pub(super) fn share(
    olds: &[SourcePlace],
    names: &[String],
    position: cepheid_runtime::source::Position,
    lines: u64,
) -> Share {
    let mut splits: Vec<Option<Timestamp>> = vec![None; names.len()];
    for old in olds {
        for (slot, w) in splits.iter_mut().zip(old.watermarks_of(names)) {
            *slot = match (*slot, w) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let start = splits.iter().try_fold(None, |least: Option<Timestamp>, w| {
        w.map(|w| Some(least.map_or(w, |l| l.min(w))))
    });
    Share {
        place: SourcePlace {
            position,
            splits,
            names: names.to_vec(),
        },
        lines,
        start: start.flatten(),
    }
}

/// Worker 0's live input, on its way to the source.
pub(super) struct Live {
    pub(super) say: Say,
    pub(super) feed: Feed<Record>,
    /// The worker's index in the process.
    pub(super) local: usize,
    /// Told what the reader's decoder saw of the fields (`Message::Seen`).
    pub(super) fields: Option<Arc<Fields>>,
    /// Where the run's numbers are published (with an observing report):
    /// the reader's place in the file goes there.
    pub(super) board: Option<Arc<Board>>,
    /// Was the stop said (by this or another reader of the process)?
    pub(super) stop_said: Arc<AtomicBool>,
    /// A source of the library's user: its places are its
    /// [`SourcePlace`]s.
    pub(super) source: bool,
    /// Its splits' names ([`Source::split_names`]), kept in its places.
    pub(super) names: Vec<String>,
    pub(super) counts: Arc<ReadCounts>,
    /// Set while the reader waits for input (its last batch stalled).
    pub(super) waiting_for_input: Arc<AtomicBool>,
    pub(super) strict: bool,
    pub(super) origin: String,
    /// With `--checkpoint`: each batch goes with its place (lines so far,
    /// malformed lines so far, its [`Position`] in the file), which the
    /// source records at a cut.
    pub(super) places: bool,
    /// Lines read before (resumed: the place of the cut).
    pub(super) lines: u64,
    /// Control records are read (JSON lines).
    pub(super) controls: Option<Arc<Controls>>,
    /// Tells the reader to go on after a control record.
    pub(super) go_on: Option<SyncSender<()>>,
    /// Reloads of the pattern paths are read (`--watch`).
    pub(super) reloads: Option<Arc<Controls>>,
}

impl Live {
    /// Hands the reader's batches to the source until the input ends, a
    /// read error, a malformed line with `--strict` (the input ends there,
    /// as in the single-engine run) or a signal (the input stops).
    pub(super) fn forward(self, messages: &Receiver<Message>) -> Option<String> {
        // Lines in input order over rotations of a followed file (whose
        // line numbers start anew): the order of equal times.
        let mut offset = self.lines;
        loop {
            let batch = match messages.recv() {
                Ok(Message::Batch(batch)) => batch,
                Ok(Message::Stop(why)) => {
                    // (once, of the process's several sources)
                    if !self.stop_said.swap(true, Ordering::Relaxed) {
                        say!(self.say, Info, "cepheid: stopped by {why}");
                    }
                    self.feed.stop();
                    return Some(why);
                }
                Ok(Message::Seen(seen)) => {
                    if let Some(fields) = &self.fields {
                        fields.report(self.local, seen, &self.say);
                    }
                    continue;
                }
                Ok(Message::Lag(lag)) => {
                    if let Some(board) = &self.board {
                        board.lag(self.local, lag);
                    }
                    continue;
                }
                Ok(Message::Reload(why)) => {
                    // (at the live input's watermark then + 1)
                    let controls = self.reloads.as_ref();
                    let read =
                        controls.and_then(|c| c.reload(&why, offset, &self.counts, &self.say));
                    if let Some(item) = read {
                        if self.feed.send(vec![item]).is_err() {
                            return None;
                        }
                    }
                    continue;
                }
                Ok(Message::Checkpointed) => continue,
                Ok(Message::End) | Err(_) => return None,
            };
            let mut items = Vec::with_capacity(batch.lines.len());
            let mut end = false;
            // (a `Source`'s malformed records, placed as it says)
            let mut places = batch.places.into_iter().peekable();
            for (index, (line, item)) in batch.lines.into_iter().enumerate() {
                offset += 1;
                let place = match places.peek() {
                    Some((i, _)) if *i == index => places.next().map(|(_, p)| p),
                    _ => None,
                };
                match item {
                    Ok(Entry::Item(Item::Event(ts, event))) => {
                        items.push(SourceItem::Event { ts, offset, event })
                    }
                    Ok(Entry::Item(Item::Watermark(t))) => items.push(SourceItem::Watermark(t)),
                    // (a `Source`'s splits' least watermark)
                    Ok(Entry::SplitWatermark(t)) => items.push(SourceItem::SplitWatermark(t)),
                    Ok(Entry::Item(Item::Skip)) => {}
                    // (a `Source`'s rules stream: this is its one reader)
                    Ok(Entry::SourceRules(rules)) => {
                        let place = place.as_deref().unwrap_or_default();
                        let controls = self.controls.as_ref();
                        items.extend(controls.and_then(|c| {
                            c.source_rules(&rules, place, offset, &self.counts, &self.say)
                        }));
                        if let Some(go_on) = &self.go_on {
                            let _ = go_on.send(());
                        }
                    }
                    Ok(Entry::Rules(control)) => {
                        let name = format!("{}:{line}", self.origin);
                        let controls = self.controls.as_ref();
                        let read = controls
                            .and_then(|c| c.read(&control, &name, offset, &self.counts, &self.say));
                        items.extend(read);
                        // The reader waits after a control record (one
                        // engine applies it first): here it applies on the
                        // workers at its time, and records decoded before
                        // its new fields are numbered are read again.
                        if let Some(go_on) = &self.go_on {
                            let _ = go_on.send(());
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Io => {
                        say!(
                            self.say,
                            Error,
                            "error: cannot read {}: {}",
                            self.origin,
                            e.message()
                        );
                        self.counts.read_error(&self.origin, e.message());
                        end = true;
                        break;
                    }
                    Err(e) => {
                        self.counts.malformed_line();
                        match &place {
                            Some(place) => say!(
                                self.say,
                                Warning,
                                "{place}: malformed record: {}",
                                e.message()
                            ),
                            None => say!(
                                self.say,
                                Warning,
                                "{}:{line}: malformed line: {}",
                                self.origin,
                                e.message()
                            ),
                        }
                        if self.strict {
                            self.counts.strict_stop(&self.origin, line, e.message());
                            end = true;
                            break;
                        }
                    }
                }
            }
            let events = items
                .iter()
                .filter(|item| matches!(item, SourceItem::Event { .. }))
                .count();
            self.counts
                .events
                .fetch_add(events as u64, Ordering::Relaxed);
            self.waiting_for_input
                .store(batch.stalled, Ordering::Relaxed);
            if let Some(board) = &self.board {
                board.read_to(batch.at.offset);
            }
            let sent = if self.places && !end {
                let place = if self.source {
                    let at = SourcePlace {
                        position: batch.place.unwrap_or_default(),
                        splits: batch.splits.unwrap_or_default(),
                        names: self.names.clone(),
                    };
                    postcard::to_allocvec(&at)
                } else {
                    postcard::to_allocvec(&batch.at)
                };
                let place = Place {
                    position: offset,
                    unread: self.counts.malformed.load(Ordering::Relaxed),
                    place: place.unwrap_or_default(),
                };
                self.feed.send_at(items, place)
            } else {
                self.feed.send(items)
            };
            if sent.is_err() || end {
                return None;
            }
        }
    }
}

/// A worker's chunks of the input as [`SourceItem`]s.
pub(super) struct PartItems {
    pub(super) say: Say,
    pub(super) chunks: Option<FileChunks>,
    pub(super) current: Option<Current>,
    pub(super) format: Format,
    pub(super) time_field: String,
    pub(super) fields: FieldTable,
    pub(super) origin: String,
    pub(super) path: PathBuf,
    pub(super) counts: Arc<ReadCounts>,
    pub(super) strict: bool,
    /// Shared by the parts of the process: `--strict` stops them all.
    pub(super) stop: Arc<AtomicBool>,
    pub(super) done: bool,
    /// The place of the last line read (`FileChunk::offset`; 0 for none),
    /// for cuts.
    pub(super) position: u64,
    /// Resumed: the lines read before (over every worker), skipped.
    pub(super) read: Arc<cut::Read>,
    /// Events read (late ones included), for the worker's numbers.
    pub(super) events: Rc<Cell<u64>>,
    /// The fields' warnings and the worker's index in the process: each
    /// chunk's decoder watches the fields, and what the chunks read so far
    /// saw ([`PartItems::seen`]) is told at the end of each chunk.
    pub(super) watch: Option<(Arc<Fields>, usize)>,
    /// What the decoders of the chunks read whole saw of the fields.
    pub(super) seen: FieldsSeen,
    /// Control records are read (JSON lines).
    pub(super) controls: Option<Arc<Controls>>,
    /// The control record of the line just read (the line itself comes
    /// as an [`Item::Skip`]): set aside, so that an event's line travels
    /// as the decoder's item, unwrapped.
    pub(super) control: Option<Control>,
}

impl Positioned for PartItems {
    fn position(&self) -> u64 {
        self.position
    }

    /// Malformed lines (one source per worker: the worker's count).
    fn unread(&self) -> u64 {
        self.counts.malformed.load(Ordering::Relaxed)
    }
}

/// The chunk being read.
pub(super) struct Current {
    items: Items<Box<dyn Read + Send>>,
    chunk: FileChunk,
    /// The chunk's lines read before the cut resumed from, skipped
    /// (`cut::Read::upto`, looked up once per chunk).
    read_before: u64,
    /// Lines of the file before the chunk (counted at the first message).
    lines_before: Option<u64>,
}

impl PartItems {
    /// Starts reading `chunk`.
    fn start(&mut self, mut chunk: FileChunk) {
        let mut decoder = Decoder::new(self.format, &self.time_field, self.fields.clone());
        if let Some((fields, _)) = &self.watch {
            // The names of keys ("did you mean") of the first N events of
            // the process's readers only, as the single run keeps those of
            // its first N.
            decoder = decoder.watch_fields(fields.after().saturating_sub(fields.events()));
        }
        let reader = std::mem::replace(&mut chunk.reader, Box::new(io::empty()));
        self.current = Some(Current {
            items: Items::new(self.origin.clone(), reader, decoder),
            read_before: self.read.upto(chunk.number),
            chunk,
            lines_before: None,
        });
    }

    /// The next line of the chunks, `None` at their end.
    /// A control record is an [`Item::Skip`] with [`PartItems::control`]
    /// set.
    #[inline]
    fn next_line(&mut self) -> Option<(u64, Result<Item, cepheid_engine::Error>, u64)> {
        let controls = self.controls.is_some();
        loop {
            if let Some(current) = &mut self.current {
                let control = &mut self.control;
                let read = current.items.next_with(|decoder, text| {
                    match controls.then(|| Control::parse(text)).flatten() {
                        Some(Ok(read)) => {
                            *control = Some(read);
                            Ok(Item::Skip)
                        }
                        Some(Err(why)) => Err(cepheid_engine::Error::new(ErrorKind::Input, why)),
                        None => decoder.decode(text),
                    }
                });
                if let Some((line, item)) = read {
                    let offset = current.chunk.offset(line);
                    if offset & 0xffff_ffff <= current.read_before {
                        // (read before the cut: a control record too)
                        self.control = None;
                        continue;
                    }
                    self.position = offset;
                    return Some((line, item, offset));
                }
                if let (Some((fields, local)), Some(seen)) =
                    (&self.watch, current.items.decoder().fields_seen())
                {
                    // The chunk read whole: what it saw of the fields.
                    self.seen.merge(seen);
                    fields.report(*local, self.seen.clone(), &self.say);
                }
                self.current = None;
            }
            match self.chunks.as_mut()?.next()? {
                // Resumed: the chunks read whole.
                Ok(chunk) if self.read.upto(chunk.number) == u64::MAX => {}
                Ok(chunk) => self.start(chunk),
                Err(e) => {
                    say!(self.say, Error, "error: cannot read {}: {e}", self.origin);
                    self.counts.read_error(&self.origin, e);
                    return None;
                }
            }
        }
    }

    /// Line `line` of the current chunk's number in the whole input.
    fn line_in_input(&mut self, line: u64) -> u64 {
        let Some(current) = &mut self.current else {
            return line;
        };
        let (path, start) = (&self.path, current.chunk.start);
        let before = *current
            .lines_before
            .get_or_insert_with(|| count_lines(path, start).unwrap_or(0));
        // A later CSV chunk starts with the header, which is not its line.
        before + line - u64::from(current.chunk.header)
    }
}

/// Newlines in the first `len` bytes of a file.
pub(super) fn count_lines(path: &Path, len: u64) -> io::Result<u64> {
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

impl Iterator for PartItems {
    type Item = SourceItem<Record>;

    fn next(&mut self) -> Option<SourceItem<Record>> {
        loop {
            if self.done || self.stop.load(Ordering::Relaxed) {
                self.done = true;
                return None;
            }
            let Some((line, item, offset)) = self.next_line() else {
                self.done = true;
                return None;
            };
            match item {
                Ok(Item::Event(ts, event)) => {
                    self.events.set(self.events.get() + 1);
                    return Some(SourceItem::Event { ts, offset, event });
                }
                Ok(Item::Watermark(t)) => return Some(SourceItem::Watermark(t)),
                Ok(Item::Skip) => {
                    let Some(control) = self.control.take() else {
                        continue;
                    };
                    let line = self.line_in_input(line);
                    let name = format!("{}:{line}", self.origin);
                    let controls = self.controls.as_ref()?;
                    if let Some(item) =
                        controls.read(&control, &name, offset, &self.counts, &self.say)
                    {
                        return Some(item);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Io => {
                    say!(
                        self.say,
                        Error,
                        "error: cannot read {}: {}",
                        self.origin,
                        e.message()
                    );
                    self.counts.read_error(&self.origin, e.message());
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.counts.malformed_line();
                    let line = self.line_in_input(line);
                    say!(
                        self.say,
                        Warning,
                        "{}:{line}: malformed line: {}",
                        self.origin,
                        e.message()
                    );
                    if self.strict {
                        self.counts.strict_stop(&self.origin, line, e.message());
                        self.stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_runtime::source::Position;

    fn place(names: &[&str], splits: &[Option<Timestamp>], at: u8) -> SourcePlace {
        SourcePlace {
            position: Position::Bytes(vec![at]),
            splits: splits.to_vec(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_new_source_takes_the_watermarks_of_its_splits_from_the_old_places() {
        // Two old workers: partitions 0 and 2, and 1.
        let olds = [
            place(&["t/0", "t/2"], &[Some(100), Some(300)], 0),
            place(&["t/1"], &[Some(200)], 1),
        ];
        let at = Position::Bytes(vec![9]);
        // A new worker with partitions 2 and 1: each split's own, its clock
        // at their least, its lines above the old ones'.
        let got = share(&olds, &names(&["t/2", "t/1"]), at.clone(), 70);
        assert_eq!(got.place.splits, [Some(300), Some(200)]);
        assert_eq!(got.place.names, names(&["t/2", "t/1"]));
        assert_eq!(got.place.position, at);
        assert_eq!((got.lines, got.start), (70, Some(200)));
        // One split no old place knows (a partition added since): no start
        // of its own (the retired sources' least, `WorkerCut::rescale`).
        let got = share(&olds, &names(&["t/0", "t/3"]), at.clone(), 0);
        assert_eq!(got.place.splits, [Some(100), None]);
        assert_eq!(got.start, None);
        // A split that had delivered nothing keeps none.
        let quiet = [place(&["t/0", "t/1"], &[Some(5), None], 0)];
        let got = share(&quiet, &names(&["t/1"]), at.clone(), 0);
        assert_eq!((got.place.splits, got.start), (vec![None], None));
        // Named twice (not the shares of one cut): the least.
        let twice = [olds[0].clone(), place(&["t/2"], &[Some(250)], 2)];
        let got = share(&twice, &names(&["t/2"]), at, 0);
        assert_eq!((got.place.splits, got.start), (vec![Some(250)], Some(250)));
    }

    #[test]
    fn a_place_is_read_in_either_form_and_its_watermarks_found_by_name() {
        let named = place(&["t/0", "t/1"], &[Some(1), Some(2)], 3);
        let bytes = postcard::to_allocvec(&named).unwrap();
        assert_eq!(SourcePlace::decode(&bytes).unwrap(), named);
        assert_eq!(
            named.watermarks_of(&names(&["t/1", "t/9"])),
            [Some(2), None]
        );
        // A cut taken before the names were kept: by split number.
        #[derive(Serialize)]
        struct Unnamed {
            position: Position,
            splits: Vec<Option<Timestamp>>,
        }
        let old = Unnamed {
            position: Position::Bytes(vec![3]),
            splits: vec![Some(1), Some(2)],
        };
        let read = SourcePlace::decode(&postcard::to_allocvec(&old).unwrap()).unwrap();
        assert!(read.names.is_empty());
        assert_eq!(read.watermarks_of(&names(&["a", "b"])), [Some(1), Some(2)]);
        assert!(SourcePlace::decode(&[0xff, 0xff]).is_err());
    }
}
