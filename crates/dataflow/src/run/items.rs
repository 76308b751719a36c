//! Where a worker's source is in its input ([`SourcePlace`], [`Share`]),
//! the live input read by worker 0 ([`Live`]), the events of a worker's
//! chunks of a file ([`PartItems`]), and what a worker's readers count
//! besides events ([`ReadCounts`]).

use std::collections::VecDeque;
use std::sync::atomic::AtomicI64;

use cepheid_runtime::source::{PatternWatch, Reload};

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
    /// The place in a cut's bytes (of either form; a followed file's is
    /// where the file is, `Job::live_start`, whose position a
    /// transactional sink commits as one engine's).
    pub(super) fn decode(bytes: &[u8]) -> Result<SourcePlace, postcard::Error> {
        postcard::from_bytes::<SourcePlace>(bytes).or_else(|e| {
            let place = match postcard::from_bytes::<UnnamedPlace>(bytes) {
                Ok(old) => (old.position, old.splits),
                Err(_) => {
                    let file = postcard::from_bytes::<cepheid_runtime::source::FilePosition>;
                    let at = file(bytes).map_err(|_| e)?;
                    (cepheid_runtime::source::Position::File(at), Vec::new())
                }
            };
            Ok(SourcePlace {
                position: place.0,
                splits: place.1,
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

/// The places of the workers' sources in a checkpoint's pieces, with the
/// index of the worker (a worker without a source, or whose source read
/// nothing, has none: its sources start where they are).
pub(super) fn places(pieces: &[Piece]) -> Result<Vec<(usize, SourcePlace)>, Unusable> {
    let mut found = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        let saved =
            WorkerCut::saved_sources(piece).map_err(|source| Unusable::Worker { index, source })?;
        for (_, state) in saved.iter().filter(|(s, _)| *s == 0) {
            if state.place.is_empty() {
                continue;
            }
            let place = SourcePlace::decode(&state.place).map_err(|e| Unusable::Shares {
                index,
                why: format!("its source's place cannot be read: {e}"),
            })?;
            found.push((index, place));
        }
    }
    Ok(found)
}

/// The positions of the workers' sources in a checkpoint's pieces
/// ([`places`]).
pub(super) fn positions(
    pieces: &[Piece],
) -> Result<Vec<cepheid_runtime::source::Position>, Unusable> {
    Ok(places(pieces)?
        .into_iter()
        .map(|(_, p)| p.position)
        .collect())
}

/// Where each of `sources` (this process's workers', in order) goes on
/// from the cut the old workers saved in `files`, on another number of
/// workers: its splits' watermarks from the old places that name them,
/// its position from theirs ([`Source::position_of_shares`]), its lines
/// above `lines` (the most an old source had read). Checked before any
/// output is touched: an old place that cannot be read or has no names,
/// or positions that do not fit together, are a [`Unusable`].
pub(super) fn dealt(
    pieces: &[Piece],
    sources: &[OwnSource],
    lines: Option<u64>,
) -> Result<Vec<Option<Share>>, Unusable> {
    let mut olds = Vec::new();
    for (index, place) in places(pieces)? {
        if place.names.is_empty() && !place.splits.is_empty() {
            return Err(Unusable::Shares {
                index,
                why: "its source's place does not name its splits (a cut of an older version: resume it on the same number of workers)".to_string(),
            });
        }
        olds.push(place);
    }
    let positions: Vec<_> = olds.iter().map(|old| old.position.clone()).collect();
    let mut shares = Vec::with_capacity(sources.len());
    for (source, _, _) in sources {
        let Some(source) = source else {
            shares.push(None);
            continue;
        };
        let names = source.split_names().unwrap_or_default();
        let position = source
            .position_of_shares(&positions)
            .map_err(|e| Unusable::Sources(e.to_string()))?;
        shares.push(Some(share(&olds, &names, position, lines.unwrap_or(0))));
    }
    Ok(shares)
}

/// The items and names (by index) of the first part of a source's read
/// ([`Live::part_read`]).
pub(super) type PartRead = (Vec<SourceItem<Record>>, Vec<(usize, Arc<str>)>);

/// A worker's live input (standard input or a followed file, read by
/// worker 0; a library user's [`Source`], by its worker), read by the
/// runtime's reader thread and pulled by the worker's source operator on
/// the worker's own thread: the reader wakes the operator when it sends
/// something ([`LiveInput::wake_with`], timely's activator), and the
/// operator takes it between its other work. Nothing runs while the
/// input is quiet.
pub(super) struct Live {
    /// What the runtime's reader thread read, and the run's handle's
    /// stops and reloads (`None`: nothing to read, the input ends).
    pub(super) input: Option<LiveInput>,
    pub(super) say: Say,
    /// The worker's index in the process.
    pub(super) local: usize,
    /// Told what the reader's decoder saw of the fields (`Heard::Seen`).
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
    /// With `--checkpoint`: each batch goes with its place (lines so far,
    /// malformed lines so far, its [`Position`] in the file), which the
    /// source records at a cut.
    pub(super) places: bool,
    /// Lines read so far, in input order over rotations of a followed
    /// file (whose line numbers start anew): the order of equal times.
    /// Resumed, from the place of the cut.
    pub(super) lines: u64,
    /// Control records are read (JSON lines).
    pub(super) controls: Option<Arc<Config>>,
    /// Reloads of the pattern paths are read (`--watch`).
    pub(super) reloads: Option<Arc<Config>>,
    /// The watched reference files, read again when they change.
    pub(super) lists: Option<Arc<Mutex<cepheid_runtime::lists::Watched>>>,
    /// Does it take the changes of lists asked through the run's handle
    /// (the reader of process 0 that reads the reloads)?
    pub(super) handle_lists: HandleLists,
    /// Where the lines read are counted for cuts every
    /// `Config::checkpoint_every` lines.
    pub(super) read_lines: Option<Arc<AtomicU64>>,
    /// Every reader of the process, stopped when this one cannot read on.
    pub(super) stop_all: Option<cepheid_runtime::Handle>,
    /// Where its read error is kept for the process's end.
    pub(super) read_failed: Arc<Failed>,
    /// Why the input stopped, if it did (a signal, its own read error),
    /// for the worker's end.
    pub(super) why: Rc<RefCell<Option<String>>>,
    /// The items of the batch being taken.
    pub(super) current: std::vec::IntoIter<SourceItem<Record>>,
    /// The names of its events, when the source names them for a run
    /// that gathers decisions ([`Stamped::name`](crate::Stamped::name)):
    /// by index in `current`, the last first.
    pub(super) current_names: Vec<(usize, Arc<str>)>,
    /// Items of `current` taken, and the name of the last (`Pull::name`).
    pub(super) taken: (usize, Option<Arc<str>>),
    /// The place after them (with `--checkpoint`).
    pub(super) current_place: Option<Place>,
    /// The items (and names, by index) of the first part of a source's
    /// read, cut after a control record ([`Lines::partial`]), held until
    /// the rest comes: that part has no place of its own, and a cut
    /// between the two would keep none (its resume read the source
    /// again from its start, rules records judged anew).
    pub(super) part_read: Option<PartRead>,
    /// The place after the last batch taken whole (resumed: the cut's).
    pub(super) place: Place,
    /// Did input arrive since the source last asked?
    pub(super) arrived: bool,
    /// What comes once `current` is taken: the input's end (`--strict`)
    /// or its stop (a read error).
    pub(super) then: Option<Pulled<Record>>,
}

impl Pull<Record> for Live {
    /// The reader's next item, or [`Pulled::Pending`] while it has sent
    /// nothing: the input ends at its end, a malformed line with
    /// `--strict` (as in the single-engine run); it stops (without
    /// ending) at a signal or its read error.
    fn pull(&mut self) -> Pulled<Record> {
        loop {
            if let Some(item) = self.current.next() {
                let (taken, name) = &mut self.taken;
                *name = match self.current_names.last() {
                    Some((i, _)) if i == taken => self.current_names.pop().map(|(_, n)| n),
                    _ => None,
                };
                *taken += 1;
                return Pulled::Item(item);
            }
            if let Some(place) = self.current_place.take() {
                self.place = place;
            }
            match self.then {
                Some(Pulled::End) => return Pulled::End,
                Some(Pulled::Stop) => return Pulled::Stop,
                _ => {}
            }
            let Some(input) = &self.input else {
                return Pulled::End;
            };
            let Some(heard) = input.try_next() else {
                return Pulled::Pending;
            };
            match heard {
                Heard::Lines(lines) => self.lines_read(lines),
                Heard::Stop(why) => {
                    // (once, of the process's several sources)
                    if !self.stop_said.swap(true, Ordering::Relaxed) {
                        self.say.report().notice(Handle::stopped(&why));
                    }
                    *self.why.borrow_mut() = Some(why);
                    self.then = Some(Pulled::Stop);
                }
                Heard::Seen(seen) => {
                    if let Some(fields) = &self.fields {
                        fields.report(self.local, seen, &mut |n| self.say.report().notice(n));
                    }
                }
                Heard::Lag(lag) => {
                    if let Some(board) = &self.board {
                        board.lag(self.local, lag);
                    }
                }
                Heard::RulesWaiting(waiting) => {
                    if let Some(board) = &self.board {
                        board.rules_waiting(waiting);
                    }
                }
                Heard::Reload(why) => {
                    // (at the live input's watermark then + 1)
                    let say = &mut |n| self.say.report().notice(n);
                    let read = (self.reloads.as_deref()).map(|config| {
                        let origin = why.origin(config);
                        (why.read(config, say), origin)
                    });
                    let read = read.and_then(|(read, origin)| {
                        rules_item(read, (self.lines, origin), &self.counts, &self.say)
                    });
                    self.arrive(read.into_iter().collect());
                }
                Heard::ListsChanged => {
                    // (at the live input's watermark then + 1, as a reload)
                    if let Some(lists) = &self.lists {
                        let items = list_items(&mut lock(lists), self.lines, &self.say);
                        self.arrive(items);
                    }
                }
                Heard::List(record) => {
                    // (at the live input's watermark then + 1)
                    let item = self.handle_lists.take(&record, self.lines, &self.say);
                    self.arrive(item.into_iter().collect());
                }
                Heard::End => self.then = Some(Pulled::End),
            }
        }
    }

    fn arrived(&mut self) -> bool {
        std::mem::take(&mut self.arrived)
    }

    fn name(&mut self) -> Option<Arc<str>> {
        self.taken.1.take()
    }

    fn position(&self) -> Place {
        match &self.current_place {
            Some(place) if self.current.len() == 0 => place.clone(),
            _ => self.place.clone(),
        }
    }

    fn mid_batch(&self) -> bool {
        self.current.len() > 0
    }

    fn woken_by(&mut self, activator: SyncActivator) {
        if let Some(input) = &self.input {
            input.wake_with(move || {
                let _ = activator.activate();
            });
        }
    }
}

impl Live {
    /// Changes read (a reload, lists), to take before the next batch
    /// (with no place of their own: a cut records the batch's before).
    fn arrive(&mut self, items: Vec<SourceItem<Record>>) {
        if !items.is_empty() {
            self.arrived = true;
            self.current = items.into_iter();
            self.current_names.clear();
            self.taken = (0, None);
        }
    }

    /// The reader's `lines`, made the source's items.
    fn lines_read(&mut self, lines: Lines) {
        let Some(input) = &self.input else {
            return;
        };
        let (stalled, at, partial) = (lines.stalled(), lines.at(), lines.partial());
        // (where the input is after them, for cuts: a source's place,
        // a file's position)
        let place = self.places.then(|| match self.source {
            true => postcard::to_allocvec(&SourcePlace {
                position: lines.place().cloned().unwrap_or_default(),
                splits: lines.splits().map(<[_]>::to_vec).unwrap_or_default(),
                names: self.names.clone(),
            }),
            false => postcard::to_allocvec(&at),
        });
        let place = place.map(Result::unwrap_or_default);
        let mut items = Vec::new();
        let mut names = Vec::new();
        // (`Some(strict)`: the input ends here, at a malformed line
        // with `--strict`, or at a read error)
        let mut ended = None;
        let offset = &mut self.lines;
        input.take(lines, |_, got, name| {
            *offset += 1;
            let taken = got.map(|got| take(got, *offset, &self.say, &self.counts, &self.controls));
            match taken {
                Some(Taken::Item(item)) => {
                    if let Some(name) = name {
                        names.push((items.len(), Arc::from(name)));
                    }
                    items.push(item)
                }
                Some(Taken::End { strict }) => ended = Some(strict),
                Some(Taken::Nothing) | None => {}
            }
            ended.is_none()
        });
        // A read error stops the input where it is, as a signal does,
        // not as its end (which would end event time and leave a cut
        // with the sources ended, from which a resume reads nothing):
        // the batch goes with its place, and every reader of the
        // process stops too.
        let failed = ended == Some(false);
        let end = ended.is_some() && !failed;
        let events = items
            .iter()
            .filter(|item| matches!(item, SourceItem::Event { .. }))
            .count();
        self.counts
            .events
            .fetch_add(events as u64, Ordering::Relaxed);
        if let Some(lines) = &self.read_lines {
            lines.fetch_add(events as u64, Ordering::Relaxed);
        }
        self.waiting_for_input.store(stalled, Ordering::Relaxed);
        if let Some(board) = &self.board {
            board.read_to(at.offset);
        }
        if partial && ended.is_none() {
            // (the rest of the read comes next, with the place after it)
            let (held, held_names) = self.part_read.get_or_insert_with(Default::default);
            let base = held.len();
            held_names.extend(names.into_iter().map(|(i, name)| (i + base, name)));
            held.extend(items);
            return;
        }
        if let Some((mut held, mut held_names)) = self.part_read.take() {
            let base = held.len();
            held_names.extend(names.into_iter().map(|(i, name)| (i + base, name)));
            held.extend(items);
            (items, names) = (held, held_names);
        }
        self.arrived = true;
        self.current = items.into_iter();
        names.reverse();
        self.current_names = names;
        self.taken = (0, None);
        self.current_place = place.filter(|_| !end).map(|place| Place {
            position: self.lines,
            unread: self.counts.malformed.load(Ordering::Relaxed),
            place,
        });
        if end {
            self.then = Some(Pulled::End);
        } else if failed {
            // (the end of this process, which may not count the run:
            // process 0 does)
            let error = self.counts.take_read_error();
            self.stop_failed(error);
        }
    }

    /// Its source cannot read on (its error said already; `error`, the
    /// end of this process): the input stops where it is, as at a signal,
    /// and every reader of the process with it.
    pub(super) fn stop_failed(&mut self, error: Option<cepheid_runtime::Error>) {
        if let Some(error) = error {
            self.read_failed.set(error);
        }
        self.then = Some(Pulled::Stop);
        // Said here, not left to a reader that hears the stop: the others
        // may have failed too (one broker gone for all), and none would
        // hear it.
        let why = "a read error (said above)";
        if !self.stop_said.swap(true, Ordering::Relaxed) {
            self.say.report().notice(Handle::stopped(why));
        }
        *self.why.borrow_mut() = Some(why.to_string());
        if let Some(all) = self.stop_all.take() {
            // (never waits: a full channel, this one's own, which this
            // worker alone empties, is sent to from a thread of its own)
            all.stop(why);
        }
    }
}

/// What a worker's reader makes of a line ([`take`]).
pub(super) enum Taken {
    /// An item for the source.
    Item(SourceItem<Record>),
    /// Nothing for it (a malformed line, a refused control record).
    Nothing,
    /// The input ends here: a read error, or with `strict` a malformed
    /// line.
    End {
        /// With `strict`, a malformed line?
        strict: bool,
    },
}

/// What a worker's reader makes of a line the runtime's policy took
/// (`got`, at `offset` in the input): a malformed line and a read error
/// are said and counted, a control record read as the workers apply it.
pub(super) fn take(
    got: Got,
    offset: u64,
    say: &Say,
    counts: &ReadCounts,
    controls: &Option<Arc<Config>>,
) -> Taken {
    let item = match got {
        Got::Event(ts, event) => {
            counts.event_at(ts);
            SourceItem::Event { ts, offset, event }
        }
        Got::Watermark(t) => SourceItem::Watermark(t),
        // (a `Source`'s splits' least watermark)
        Got::SplitWatermark(t) => SourceItem::SplitWatermark(t),
        Got::Rules(control, name) if control.is_list() => {
            let Some(config) = controls.as_deref() else {
                return Taken::Nothing;
            };
            return list_record(&control, config, false, (offset, &name), say, counts);
        }
        Got::Rules(control, name) => {
            let Some(config) = controls.as_deref() else {
                return Taken::Nothing;
            };
            let read = control.read(config, false, &name, &mut |n| say.report().notice(n));
            let origin = Origin::of_line(&name, control.rules_file());
            let item = rules_item(read, (offset, origin), counts, say);
            return item.map_or(Taken::Nothing, Taken::Item);
        }
        // (a `Source`'s rules stream: this is its one reader)
        Got::SourceRules(rules, place) => {
            let Some(config) = controls.as_deref() else {
                return Taken::Nothing;
            };
            if let Some(late) = rules.late_notice(&place) {
                counts.reloads_late.fetch_add(1, Ordering::Relaxed);
                say.report().notice(late);
            }
            if let Some(ahead) = rules.ahead_notice(&place) {
                say.event(&RunEvent::RulesAhead {
                    what: ahead.as_str(),
                });
                say.report().notice(ahead);
            }
            if rules.control.is_list() {
                return list_record(&rules.control, config, true, (offset, &place), say, counts);
            }
            let read = (rules.control).read(config, true, &place, &mut |n| say.report().notice(n));
            let origin = Origin::of_place(&place, rules.control.rules_file());
            let item = rules_item(read, (offset, origin), counts, say);
            return item.map_or(Taken::Nothing, Taken::Item);
        }
        Got::Malformed(notice, end) => {
            counts.malformed_line();
            say.report().notice(notice);
            return match end {
                Some(error) => {
                    counts.ended(*error);
                    Taken::End { strict: true }
                }
                None => Taken::Nothing,
            };
        }
        Got::Failed(notice, error) => {
            say.report().notice(notice);
            counts.ended(*error);
            return Taken::End { strict: false };
        }
    };
    Taken::Item(item)
}

/// What a reader does with the changes of lists asked through the run's
/// handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HandleLists {
    /// Nothing: another reader of the process takes them.
    Not,
    /// Sends them to every worker as changes of lists.
    Take,
    /// Refuses them, said: the plan's rules cannot change, so a change
    /// could not reach every worker at one point of event time.
    Refuse,
}

impl HandleLists {
    /// The one reader of process 0 that takes them (`reader`), on a plan
    /// whose rules can change (`changing`) or not.
    pub(super) fn of(reader: bool, changing: bool) -> HandleLists {
        match (reader, changing) {
            (false, _) => HandleLists::Not,
            (true, true) => HandleLists::Take,
            (true, false) => HandleLists::Refuse,
        }
    }

    /// The change `record` asked at `offset` as the source gives it, or
    /// none (another reader's, or refused and said).
    fn take(
        self,
        record: &cepheid_runtime::lists::ListRecord,
        offset: u64,
        say: &Say,
    ) -> Option<SourceItem<Record>> {
        match self {
            HandleLists::Not => None,
            HandleLists::Take => Some(handle_item(record, offset)),
            HandleLists::Refuse => {
                let why = "on workers a change of lists reaches every worker at one point of event time only when the rules can change (`Config::lists_from_stream`, `Config::rules_from_stream` or `Config::watch`); the list stays as it was";
                let place = cepheid_runtime::lists::handle_place(&record.list);
                say.report()
                    .notice(cepheid_runtime::lists::refused(&place, why, false));
                None
            }
        }
    }
}

/// A `$list` record of the input (at `offset`, `place` naming it) as the
/// workers make it: a change of lists at the reader's watermark then + 1,
/// as one engine makes it. One the run does not take is said and counted
/// with the malformed lines.
fn list_record(
    control: &Control,
    config: &Config,
    own: bool,
    (offset, place): (u64, &str),
    say: &Say,
    counts: &ReadCounts,
) -> Taken {
    let place = format!("{place} ({})", control.describe());
    match control.read_list(config, own) {
        Ok(record) => Taken::Item(SourceItem::Rules(
            crate::FileChange {
                file: None,
                edits: crate::ListEdit::of(&record.list, record.edits()).collect(),
                origin: crate::ListOrigin::Record,
            }
            .change(offset, place),
        )),
        Err(why) => {
            counts.malformed_line();
            say.report()
                .notice(cepheid_runtime::lists::refused(&place, &why, true));
            Taken::Nothing
        }
    }
}

/// A change of a list asked through the run's handle (read at `offset`)
/// as the workers make it: at the reader's watermark then + 1, said by
/// worker 0 as one engine says it.
fn handle_item(record: &cepheid_runtime::lists::ListRecord, offset: u64) -> SourceItem<Record> {
    let change = crate::FileChange {
        file: None,
        edits: crate::ListEdit::of(&record.list, record.edits()).collect(),
        origin: crate::ListOrigin::Handle,
    };
    SourceItem::Rules(change.change(offset, record.describe_handle()))
}

/// The watched reference files read again (`watched`, by the runtime),
/// each one's change read at `offset`, which every worker makes from its
/// source's watermark then on (one past it), as a change of rules. A
/// file that cannot be read is said, and its list goes on as it was.
fn list_items(
    watched: &mut cepheid_runtime::lists::Watched,
    offset: u64,
    say: &Say,
) -> Vec<SourceItem<Record>> {
    let changed = watched.changed(false, &mut |n| say.report().notice(n));
    (changed.into_iter())
        .map(|changed| {
            let place = changed.place.clone();
            SourceItem::Rules(crate::FileChange::of(changed).change(offset, place))
        })
        .collect()
}

/// A worker's chunks of the file, read on its own thread by the runtime's
/// [`ShareReader`], as [`SourceItem`]s.
pub(super) struct PartItems {
    pub(super) reader: ShareReader,
    pub(super) say: Say,
    pub(super) counts: Arc<ReadCounts>,
    /// Shared by the parts of the process: `--strict` stops them all.
    pub(super) stop: Arc<AtomicBool>,
    /// What a handle asks of the parts ([`PartsInput`]), looked at every
    /// [`PartsInput::EVERY`] items (the first included).
    pub(super) asked: Option<Arc<PartsInput>>,
    /// Reloads of the pattern paths are read (`--watch`; process 0's
    /// parts).
    pub(super) reloads: Option<Arc<Config>>,
    /// The watched reference files, read again when they change (process
    /// 0's parts).
    pub(super) lists: Option<Arc<Mutex<cepheid_runtime::lists::Watched>>>,
    /// Changes read, to give the source one by one.
    pub(super) queued: VecDeque<SourceItem<Record>>,
    /// Does it take the changes of lists asked through the run's handle
    /// (process 0's parts: the first to look)?
    pub(super) handle_lists: HandleLists,
    /// Where the lines read are counted (by looks) for cuts every
    /// `Config::checkpoint_every` lines.
    pub(super) read_lines: Option<Arc<AtomicU64>>,
    pub(super) pulls: u32,
    pub(super) done: bool,
    /// Events read (late ones included), for the worker's numbers.
    pub(super) events: Rc<Cell<u64>>,
    /// Control records are read (JSON lines).
    pub(super) controls: Option<Arc<Config>>,
}

/// What a handle (`cepheid_runtime::Handle`: SIGINT, SIGTERM, SIGHUP, a
/// watched pattern file that changed) asks of a run that reads a file in
/// parts. Each worker's part looks now and then: a stop stops its source
/// where it is without ending the input (event time stays where it got,
/// the workers take a last cut), as one engine stops between two batches;
/// a reload is read by the first of process 0's parts to look, and goes
/// out as a change of rules at its watermark + 1, which every worker
/// applies there (as the live input's reader sends one).
pub(super) struct PartsInput {
    input: Mutex<LiveInput>,
    asked: AtomicBool,
    why: Mutex<Option<String>>,
    /// Reloads heard, not taken yet.
    reloads: Mutex<VecDeque<Reload>>,
    /// Did a watched reference file change since a part last read them?
    lists_changed: AtomicBool,
    /// Changes of lists asked through the handle, not taken yet.
    lists_asked: Mutex<VecDeque<cepheid_runtime::lists::ListRecord>>,
}

impl PartsInput {
    /// Items a part reads between two looks.
    const EVERY: u32 = 1024;

    /// What `input`'s handle asks.
    pub(super) fn new(input: LiveInput) -> PartsInput {
        PartsInput {
            input: Mutex::new(input),
            asked: AtomicBool::new(false),
            why: Mutex::new(None),
            reloads: Mutex::default(),
            lists_changed: AtomicBool::new(false),
            lists_asked: Mutex::default(),
        }
    }

    /// The handle that asks it.
    pub(super) fn handle(&self) -> cepheid_runtime::Handle {
        lock(&self.input).handle()
    }

    /// Watches the pattern paths (`Config::watch`): their changes are
    /// heard as reloads.
    pub(super) fn watch(&self, paths: &[PathBuf]) -> Result<PatternWatch, String> {
        lock(&self.input).watch(paths)
    }

    /// Watches the reference files `paths` (`Config::lists` with
    /// `Config::watch`): their changes are heard as changes of lists.
    pub(super) fn watch_lists(&self, paths: &[PathBuf]) -> Result<PatternWatch, String> {
        lock(&self.input).watch_lists(paths)
    }

    /// Hears what was asked: was the stop asked? The first part to hear
    /// it says it.
    fn stopped(&self, say: &Say) -> bool {
        if self.asked.load(Ordering::Relaxed) {
            return true;
        }
        let Ok(input) = self.input.try_lock() else {
            return false;
        };
        while let Some(heard) = input.try_next() {
            match heard {
                Heard::Stop(why) => {
                    say.report().notice(Handle::stopped(&why));
                    *lock(&self.why) = Some(why);
                    self.asked.store(true, Ordering::Relaxed);
                    return true;
                }
                Heard::Reload(why) => lock(&self.reloads).push_back(why),
                Heard::ListsChanged => self.lists_changed.store(true, Ordering::Relaxed),
                Heard::List(record) => lock(&self.lists_asked).push_back(record),
                _ => {}
            }
        }
        false
    }

    /// The next reload heard, to read now.
    fn reload(&self) -> Option<Reload> {
        lock(&self.reloads).pop_front()
    }

    /// Why the run was stopped, if it was.
    pub(super) fn why(&self) -> Option<String> {
        lock(&self.why).clone()
    }
}

impl PartItems {
    /// What the handle asked, looked at now: `Some` to give the source (a
    /// stop, or a change of rules read from the pattern paths).
    #[cold]
    fn look(&mut self) -> Option<Pulled<Record>> {
        // (the lines taken since the last look)
        if let Some(lines) = self.read_lines.as_ref().filter(|_| self.pulls > 1) {
            lines.fetch_add(u64::from(PartsInput::EVERY), Ordering::Relaxed);
        }
        let asked = self.asked.as_ref()?;
        if asked.stopped(&self.say) {
            self.done = true;
            return Some(Pulled::Stop);
        }
        if let Some(item) = self.queued.pop_front() {
            return Some(Pulled::Item(item));
        }
        if self.handle_lists != HandleLists::Not {
            let offset = self.reader.place();
            let asked_lists: Vec<_> = lock(&asked.lists_asked).drain(..).collect();
            for record in asked_lists {
                let item = self.handle_lists.take(&record, offset, &self.say);
                self.queued.extend(item);
            }
            if let Some(item) = self.queued.pop_front() {
                return Some(Pulled::Item(item));
            }
        }
        if let Some(lists) = self.lists.as_ref() {
            if asked.lists_changed.swap(false, Ordering::Relaxed) {
                // (at the part's watermark then + 1)
                let offset = self.reader.place();
                self.queued = list_items(&mut lock(lists), offset, &self.say).into();
                if let Some(item) = self.queued.pop_front() {
                    return Some(Pulled::Item(item));
                }
            }
        }
        let config = self.reloads.as_ref()?;
        while let Some(why) = asked.reload() {
            // (at the part's watermark then + 1)
            let say = &mut |n| self.say.report().notice(n);
            let read = why.read(config, say);
            let offset = self.reader.place();
            let origin = why.origin(config);
            if let Some(item) = rules_item(read, (offset, origin), &self.counts, &self.say) {
                return Some(Pulled::Item(item));
            }
        }
        None
    }
}

impl Pull<Record> for PartItems {
    #[inline]
    fn pull(&mut self) -> Pulled<Record> {
        loop {
            if self.done || self.stop.load(Ordering::Relaxed) {
                self.done = true;
                return Pulled::End;
            }
            // (changes of lists read at the last look go one by one)
            let look = self.pulls % PartsInput::EVERY == 0 || !self.queued.is_empty();
            self.pulls = self.pulls.wrapping_add(1);
            if look {
                if let Some(pulled) = self.look() {
                    return pulled;
                }
            }
            let Some(got) = self.reader.next() else {
                self.done = true;
                return Pulled::End;
            };
            let offset = self.reader.place();
            if let Got::Event(ts, event) = got {
                self.events.set(self.events.get() + 1);
                self.counts.event_at(ts);
                return Pulled::Item(SourceItem::Event { ts, offset, event });
            }
            match take(got, offset, &self.say, &self.counts, &self.controls) {
                Taken::Item(item) => return Pulled::Item(item),
                Taken::Nothing => {}
                Taken::End { strict } => {
                    // (`--strict`: every part of the process stops)
                    if strict {
                        self.stop.store(true, Ordering::Relaxed);
                    }
                    self.done = true;
                    return Pulled::End;
                }
            }
        }
    }

    /// The place of the last line read (`FileChunk::offset`; 0 for none),
    /// and the malformed lines (one source per worker: the worker's
    /// count).
    fn position(&self) -> Place {
        Place {
            position: self.reader.place(),
            unread: self.counts.malformed.load(Ordering::Relaxed),
            place: Vec::new(),
        }
    }
}

/// What a worker's reader found besides events (shared with the reader
/// thread of live input).
pub(super) struct ReadCounts {
    /// Events read by the live input's reader (a file's parts count
    /// theirs in [`PartItems::events`]).
    pub(super) events: AtomicU64,
    pub(super) malformed: AtomicU64,
    /// The first read error: the input and why.
    pub(super) read_error: Mutex<Option<(String, String)>>,
    /// A source's read error as it gave it (a Kafka source's: its exit
    /// status), taken by the reader for the process's end.
    pub(super) source_error: Mutex<Option<cepheid_runtime::Error>>,
    /// The malformed line that stopped the input with `strict`.
    pub(super) strict_stop: Mutex<Option<Strict>>,
    /// More keys over `--max-runs-per-key` than the worker remembers.
    pub(super) drops_overflow: AtomicBool,
    /// Rules records refused by the worker's readers, and records of a
    /// source's rules stream read late.
    pub(super) reloads_refused: AtomicU64,
    pub(super) reloads_late: AtomicU64,
    /// The least and the largest time of the events read
    /// (`Counts::event_time`; `i64::MAX` and `i64::MIN` while none was).
    pub(super) least_time: AtomicI64,
    pub(super) largest_time: AtomicI64,
}

impl Default for ReadCounts {
    fn default() -> ReadCounts {
        ReadCounts {
            events: AtomicU64::default(),
            malformed: AtomicU64::default(),
            read_error: Mutex::default(),
            source_error: Mutex::default(),
            strict_stop: Mutex::default(),
            drops_overflow: AtomicBool::default(),
            reloads_refused: AtomicU64::default(),
            reloads_late: AtomicU64::default(),
            least_time: AtomicI64::new(i64::MAX),
            largest_time: AtomicI64::new(i64::MIN),
        }
    }
}

impl ReadCounts {
    /// An event of time `ts` was read. (Loads first: the span rarely
    /// widens, and a load costs less than a read-modify-write.)
    #[inline]
    pub(super) fn event_at(&self, ts: Timestamp) {
        if ts < self.least_time.load(Ordering::Relaxed) {
            self.least_time.fetch_min(ts, Ordering::Relaxed);
        }
        if ts > self.largest_time.load(Ordering::Relaxed) {
            self.largest_time.fetch_max(ts, Ordering::Relaxed);
        }
    }

    /// The least and the largest time of the events read, if any was.
    pub(super) fn event_time(&self) -> Option<(Timestamp, Timestamp)> {
        let least = self.least_time.load(Ordering::Relaxed);
        let largest = self.largest_time.load(Ordering::Relaxed);
        (least <= largest).then_some((least, largest))
    }

    pub(super) fn malformed_line(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// A read error on `origin`.
    pub(super) fn read_error(&self, origin: &str, why: impl fmt::Display) {
        let mut first = self.read_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| (origin.to_string(), why.to_string()));
    }

    /// The input ended on `error` (the runtime's policy: a read error, or
    /// a malformed line with `strict`).
    pub(super) fn ended(&self, error: cepheid_runtime::Error) {
        let strict = match error {
            cepheid_runtime::Error::Io { path, source, .. } => {
                return self.read_error(&path, source);
            }
            cepheid_runtime::Error::Source(e) => {
                self.read_error(&e.source_name, &e.error);
                let mut typed = self.source_error.lock().unwrap_or_else(|e| e.into_inner());
                typed.get_or_insert(cepheid_runtime::Error::Source(e));
                return;
            }
            cepheid_runtime::Error::Malformed {
                origin,
                line,
                source,
            } => Strict::Line(origin, line, source.message().to_string()),
            cepheid_runtime::Error::MalformedRecord { place, source } => {
                Strict::Record(place, source.message().to_string())
            }
            _ => return,
        };
        let mut first = self.strict_stop.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(strict);
    }

    /// The read error for the process's end: the source's own, else one
    /// made of [`ReadCounts::read_error`]'s text.
    pub(super) fn take_read_error(&self) -> Option<cepheid_runtime::Error> {
        let typed = self
            .source_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        typed.or_else(|| {
            let (path, why) = self.read_error_now()?;
            Some(cepheid_runtime::Error::Io {
                doing: cepheid_runtime::Doing::Read,
                path,
                source: std::io::Error::other(why),
            })
        })
    }

    pub(super) fn read_error_now(&self) -> Option<(String, String)> {
        self.read_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn strict_stop_now(&self) -> Option<Strict> {
        self.strict_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
