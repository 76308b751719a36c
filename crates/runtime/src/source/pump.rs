//! The reader thread of a [`Source`]: its raw records decoded, its rules
//! stream's records held until event time reaches them, its splits'
//! watermarks advanced.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use cepheid_engine::Timestamp;

use super::*;

/// What the reader thread has decoded of a [`Source`]'s read and not sent
/// yet.
struct Outbox<'a> {
    tx: &'a Tx,
    go_on: Option<&'a Receiver<()>>,
    lines: Vec<(u64, Result<Entry, Error>)>,
    places: Vec<(usize, String)>,
    /// The requests of its events ([`Batch::requests`]).
    requests: Vec<(usize, cepheid_engine::engine::Request)>,
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
        self.wait = super::waits_after(&entry);
        self.lines.push((line_no, entry));
    }

    /// With a control record last: sends the lines up to it (the first
    /// part of the read, [`Batch::partial`]) and waits until the main
    /// thread has applied it, so that what comes next is decoded with the
    /// new rules' fields. False when the receiver is gone.
    /// (`splits`: the splits' watermarks, asked only when a batch goes:
    /// not per record.)
    fn settle(&mut self, splits: impl FnOnce() -> Option<Vec<Option<Timestamp>>>) -> bool {
        if !self.wait {
            return true;
        }
        self.wait = false;
        let batch = Batch {
            lines: std::mem::take(&mut self.lines),
            partial: true,
            places: std::mem::take(&mut self.places),
            requests: boxed(std::mem::take(&mut self.requests)),
            splits: splits(),
            ..Batch::default()
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
    /// Its own time (the record's timestamp).
    own: Option<Timestamp>,
    /// `Some(watermark)` when its own time was further ahead of event time
    /// than [`SplitTiming::rules_ahead`] (the watermark then): it applies
    /// then, after the records before it, not at its own time.
    ahead: Option<Timestamp>,
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
            "not a rules record (`{\"$rules\": ...}`, `{\"$rules_file\": ...}` or `{\"$list\": ...}`)",
        )),
    }
}

/// The records of one split of a source's rules stream (a Kafka rules
/// topic, a list's topic) waiting for event time, in order.
#[derive(Default)]
struct Queue {
    split: u32,
    due: VecDeque<Due>,
    /// The time of its last record (applied or waiting).
    last_at: Option<Timestamp>,
}

/// The records of a source's rules stream waiting for event time: one
/// queue per split (the rules topic, each list's topic), each in its
/// order. Of the fronts, the one of least time applies first (ties: the
/// least split), so that when a record applies does not depend on how
/// the topics' fetches came in.
#[derive(Default)]
struct Waiting {
    /// By split, in split order.
    queues: Vec<Queue>,
    /// How far ahead of event time a record may be and still wait for it
    /// ([`SplitTiming::rules_ahead`], ms).
    max_ahead: Option<i64>,
    /// What was last told of them ([`Message::RulesWaiting`]).
    told: Option<RulesWaiting>,
}

impl Waiting {
    /// Is a record of time `own` read when event time is at `watermark`
    /// further ahead than allowed? The watermark then.
    /// A watermark at the least time is no event time: nothing is judged
    /// against it.
    fn ahead(&self, own: Option<Timestamp>, watermark: Option<Timestamp>) -> Option<Timestamp> {
        let w = watermark.filter(|&w| w > Timestamp::MIN);
        let (own, w, bound) = (own?, w?, self.max_ahead?);
        (own.saturating_sub(w) > bound).then_some(w)
    }

    /// The queue of `split`.
    fn queue(&mut self, split: u32) -> &mut Queue {
        let i = match self.queues.binary_search_by_key(&split, |q| q.split) {
            Ok(i) => i,
            Err(i) => {
                let queue = Queue {
                    split,
                    ..Queue::default()
                };
                self.queues.insert(i, queue);
                i
            }
        };
        &mut self.queues[i]
    }

    /// The queue whose first record applies first: the least time, then
    /// the least split.
    fn next(&self) -> Option<usize> {
        let mut best: Option<(Timestamp, usize)> = None;
        for (i, q) in self.queues.iter().enumerate() {
            if let Some(d) = q.due.front() {
                if best.map_or(true, |(at, _)| d.at < at) {
                    best = Some((d.at, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// Every record waiting.
    fn all(&self) -> impl Iterator<Item = &Due> {
        self.queues.iter().flat_map(|q| q.due.iter())
    }

    /// What to tell of them, when it changed since it was last told.
    fn news(&mut self) -> Option<Option<RulesWaiting>> {
        let first = (self.queues.iter())
            .filter_map(|q| q.due.front())
            .map(|d| d.at)
            .min();
        let now = first.map(|at| RulesWaiting {
            records: self.queues.iter().map(|q| q.due.len() as u64).sum(),
            at,
        });
        (now != self.told).then(|| {
            self.told = now;
            now
        })
    }
}

/// Applies the rules records waiting whose time the watermark `until`
/// reaches (all of them with `None`, at the end of the input), in order,
/// each after a watermark just before its time (when the last one given to
/// the engine, `given`, is behind it), so that the switch is there. False
/// when the receiver is gone.
fn release(
    waiting: &mut Waiting,
    until: Option<cepheid_engine::Timestamp>,
    given: &mut Option<cepheid_engine::Timestamp>,
    out: &mut Outbox<'_>,
    (seq, splits): (u64, &dyn Fn() -> Option<Vec<Option<Timestamp>>>),
) -> bool {
    while let Some(q) = waiting.next().filter(|&q| {
        let at = waiting.queues[q]
            .due
            .front()
            .map_or(Timestamp::MIN, |d| d.at);
        until.map_or(true, |t| at.saturating_sub(1) <= t)
    }) {
        let d = waiting.queues[q].due.pop_front().expect("checked");
        if !out.settle(splits) {
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
                    time: if d.ahead.is_some() { d.own } else { Some(d.at) },
                    late: None,
                    ahead: d.ahead,
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
    waiting: &mut Waiting,
    given: &mut Option<cepheid_engine::Timestamp>,
    out: &mut Outbox<'_>,
) -> bool {
    let Some(t) = w.advance(now) else {
        return true;
    };
    let state = || Some(w.state());
    if !release(waiting, Some(t), given, out, (seq, &state)) || !out.settle(state) {
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
pub(super) fn read_source(
    source: Arc<Mutex<Box<dyn Source>>>,
    decoder: Decoder,
    controls: Option<Receiver<()>>,
    mut seen: SeenTold,
    timing: SourceTiming,
    places: bool,
    end: EndGuard,
) {
    let tx = &end.0;
    let mut pump = Pump::new(source, decoder, controls.is_some(), &timing);
    pump.places = places;
    let requests = pump.lock().gives_requests();
    pump.requests = requests;
    let mut raw = RawBatch::default();
    // When the source's lag was last asked for.
    let mut lag_asked: Option<Instant> = None;
    loop {
        raw.clear();
        let read = pump.lock().read(&mut raw, Duration::from_millis(100));
        let outcome = match read {
            Ok(outcome) => outcome,
            Err(e) => {
                pump.failed(e, tx);
                return;
            }
        };
        let mut out = Outbox {
            tx,
            go_on: controls.as_ref(),
            lines: Vec::with_capacity(raw.entries().len()),
            places: Vec::new(),
            requests: Vec::new(),
            wait: false,
        };
        if !pump.read(&raw, outcome, &mut out) {
            return;
        }
        let wait = out.wait;
        let batch = Batch {
            lines: out.lines,
            place: Some(pump.place()),
            stalled: outcome != ReadOutcome::Delivered,
            places: out.places,
            requests: boxed(out.requests),
            splits: pump.state(),
            seen: seen.attach(Some(&pump.decoder)),
            ..Batch::default()
        };
        if (!batch.lines.is_empty() || batch.stalled) && tx.send(Message::Batch(batch)).is_err() {
            return;
        }
        if lag_asked.map_or(true, |at| at.elapsed() >= LAG_EVERY) {
            lag_asked = Some(Instant::now());
            let lag = pump.lock().lag();
            if lag.is_some_and(|lag| tx.send(Message::Lag(lag)).is_err()) {
                return;
            }
        }
        if let Some(news) = pump.waiting.news() {
            if tx.send(Message::RulesWaiting(news)).is_err() {
                return;
            }
        }
        let end = outcome == ReadOutcome::Ended;
        if !seen.send(Some(&pump.decoder), end, tx) {
            return;
        }
        if wait && controls.as_ref().is_some_and(|go_on| go_on.recv().is_err()) {
            return;
        }
        if end {
            return;
        }
    }
}

/// What the reader thread of a [`Source`] keeps between its reads.
struct Pump {
    source: Arc<Mutex<Box<dyn Source>>>,
    decoder: Decoder,
    /// Are control records of the events recognized (rules from the
    /// stream)?
    controls: bool,
    /// Is event time each record's own?
    record_time: bool,
    /// The splits' watermarks and the bounded out-of-orderness.
    splits: Option<(SplitWatermarks, i64)>,
    /// The last watermark given to the engine.
    given: Option<Timestamp>,
    /// Rules records waiting for event time.
    waiting: Waiting,
    /// The entries read so far.
    seq: u64,
    /// When the lag of splits quiet past the idle timeout was last asked.
    lag_asked: Option<Instant>,
    /// Is each event placed too ([`Reading::places`]: the run writes
    /// decisions), not only malformed and control records?
    places: bool,
    /// Are its events requests ([`Source::gives_requests`])?
    requests: bool,
}

impl Pump {
    fn new(
        source: Arc<Mutex<Box<dyn Source>>>,
        decoder: Decoder,
        controls: bool,
        timing: &SourceTiming,
    ) -> Pump {
        let splits = timing.splits.as_ref().map(|s| {
            let now = Instant::now();
            let splits = source.lock().unwrap_or_else(|p| p.into_inner()).splits();
            let mut w = SplitWatermarks::new(splits, s.idle_timeout);
            w.restore(&s.resumed, s.emitted, now);
            (w, s.max_delay)
        });
        Pump {
            source,
            decoder,
            controls,
            record_time: timing.record_time,
            splits,
            given: timing.splits.as_ref().and_then(|s| s.emitted),
            waiting: Waiting {
                max_ahead: timing.splits.as_ref().and_then(|s| s.rules_ahead),
                ..Waiting::default()
            },
            seq: 0,
            lag_asked: None,
            places: false,
            requests: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn Source>> {
        self.source.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The splits' watermarks, to send with a batch.
    fn state(&self) -> Option<Vec<Option<Timestamp>>> {
        self.splits.as_ref().map(|(w, _)| w.state())
    }

    /// The source's place before the rules records not applied yet.
    fn place(&self) -> Position {
        let unapplied: Vec<_> = (self.waiting.all())
            .map(|d| Unapplied {
                split: d.split,
                origin: d.origin.clone(),
                judged: d.ahead.map_or(Judged::Waits, Judged::Ahead),
            })
            .collect();
        self.lock().position_before(&unapplied)
    }

    /// Sends the read error `e` as the last line.
    fn failed(&self, e: SourceError, tx: &Tx) {
        let error = Error::new(ErrorKind::Io, e.to_string());
        // (the source unlocked before the send, which may wait for the
        // run, which may wait for the source: a checkpoint)
        let place = self.place();
        let _ = tx.send(Message::Batch(Batch {
            lines: vec![(self.seq + 1, Err(error))],
            place: Some(place),
            source_error: Some(Box::new(e)),
            ..Batch::default()
        }));
    }

    /// Decodes what one read handed out into `out`; with `outcome`, idle
    /// splits are released and the end of the input reaches every rules
    /// record. False when the run stopped.
    fn read(&mut self, raw: &RawBatch, outcome: ReadOutcome, out: &mut Outbox<'_>) -> bool {
        // (one clock reading for the read's records: they came together)
        let now = Instant::now();
        for entry in raw.entries() {
            self.seq += 1;
            // (what comes next is decoded with the rules applied)
            if !out.settle(|| self.state()) {
                return false;
            }
            let go_on = match entry {
                RawEntry::Watermark(t) => {
                    out.push(self.seq, Ok(Entry::Item(Item::Watermark(*t))), None);
                    true
                }
                RawEntry::Rules(record) => {
                    self.rules(record, raw.payload(record), out);
                    true
                }
                RawEntry::Record(record) => self.record(record, raw.payload(record), now, out),
            };
            if !go_on {
                return false;
            }
        }
        // Idle splits are released while nothing (more) comes.
        if outcome != ReadOutcome::Delivered && !self.advance(now, out) {
            return false;
        }
        if outcome == ReadOutcome::Ended {
            // The end of event time reaches every rules record.
            let state = self.state();
            let state = move || state.clone();
            if !release(
                &mut self.waiting,
                None,
                &mut self.given,
                out,
                (self.seq, &state),
            ) {
                return false;
            }
        }
        true
    }

    /// A record of the source's rules stream: applied now, or queued
    /// until the watermark reaches its time.
    fn rules(&mut self, record: &RawRecord, text: &[u8], out: &mut Outbox<'_>) {
        let line_no = line_no(&record.origin, self.seq);
        let place = self.lock().describe_origin(record.split, &record.origin);
        let control = match record.is_refused() {
            // (the source could not read it: why)
            true => Err(Error::new(
                ErrorKind::Input,
                String::from_utf8_lossy(text).into_owned(),
            )),
            false => rules_record(text),
        };
        let timed = self.splits.is_some();
        let own = record.timestamp;
        // (too far ahead of event time: it applies now, after those
        // before it; judged against the event time the run has when it
        // reads the record, none before the first event: it waits. A
        // record read again on resuming that was waiting at the checkpoint
        // is judged as it was then, not against the event time resumed
        // at, so that a resumed run holds what the run it resumes held)
        let ahead = match record.judged_before() {
            Some(Judged::Waits) => None,
            Some(Judged::Ahead(w)) => Some(w).filter(|_| timed),
            None => self.waiting.ahead(own.filter(|_| timed), self.given),
        };
        // (each split's records in their order; the splits apart)
        let waiting = self.waiting.queue(record.split);
        let queued = timed && !waiting.due.is_empty();
        let at = match own {
            Some(t) => {
                let t = ahead.unwrap_or(t);
                Some(waiting.last_at.map_or(t, |l| l.max(t)))
            }
            None => waiting.last_at.filter(|_| queued),
        };
        waiting.last_at = at.or(waiting.last_at);
        // Now, or after the watermark reaches its time.
        let now = match at {
            _ if !timed => true,
            _ if queued => false,
            None => true,
            Some(at) => self.given.is_some_and(|w| at.saturating_sub(1) <= w),
        };
        if now {
            let late = match (at, self.given) {
                (Some(at), Some(w)) if timed && ahead.is_none() && at.saturating_sub(1) < w => {
                    Some(w)
                }
                _ => None,
            };
            let entry = control.map(|control| {
                Entry::SourceRules(SourceRules {
                    control,
                    time: if ahead.is_some() { own } else { at },
                    late,
                    ahead,
                })
            });
            out.push(line_no, entry, Some(place));
        } else {
            waiting.due.push_back(Due {
                at: at.or(waiting.last_at).unwrap_or(Timestamp::MIN),
                own,
                ahead,
                line_no,
                control,
                place,
                split: record.split,
                origin: record.origin.clone(),
            });
        }
    }

    /// A record of the events, decoded, its split's watermark advanced.
    /// False when the run stopped.
    fn record(
        &mut self,
        record: &RawRecord,
        text: &[u8],
        now: Instant,
        out: &mut Outbox<'_>,
    ) -> bool {
        let line_no = line_no(&record.origin, self.seq);
        let mut entry = match self.controls.then(|| control(text)).flatten() {
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
            None => self.decoder.decode(text).map(Entry::Item),
        };
        if self.record_time {
            if let Ok(Entry::Item(Item::Event(ts, _))) = &mut entry {
                match record.timestamp {
                    Some(t) => *ts = t,
                    None => {
                        entry = Err(Error::new(
                            ErrorKind::Input,
                            "the record has no timestamp (event time is the record's)",
                        ));
                    }
                }
            }
        }
        let event_ts = match &entry {
            Ok(Entry::Item(Item::Event(ts, _))) => Some(*ts),
            _ => None,
        };
        // (an event's place only when the run writes decisions: its
        // position, `docs/decisions.md`)
        let placed = match &entry {
            Ok(Entry::Rules(_)) | Err(_) => true,
            Ok(_) => self.places && event_ts.is_some(),
        };
        let place = placed.then(|| self.lock().describe_origin(record.split, &record.origin));
        if self.requests && event_ts.is_some() {
            if let Some(request) = self.lock().request(record.split, &record.origin) {
                out.requests.push((out.lines.len(), request));
            }
        }
        out.push(line_no, entry, place);
        let (Some((w, max_delay)), Some(ts)) = (&mut self.splits, event_ts) else {
            return true;
        };
        if let Some(t) = ts.checked_sub(*max_delay).and_then(|t| t.checked_sub(1)) {
            w.update(record.split as usize, t, now);
        }
        self.advance(now, out)
    }

    /// The splits' watermark at `now` ([`advance`]). False when the run
    /// stopped.
    /// A split quiet past the idle timeout that would be left out is
    /// first asked whether it has records waiting ([`Source::lag_now`], at
    /// most every [`LAG_NOW_EVERY`]; meanwhile, when the source tells
    /// lags, it holds event time back).
    fn advance(&mut self, now: Instant, out: &mut Outbox<'_>) -> bool {
        let Some((w, _)) = &mut self.splits else {
            return true;
        };
        if self.lag_asked.map_or(true, |at| {
            now.saturating_duration_since(at) >= LAG_NOW_EVERY
        }) {
            let wanted = w.lag_wanted(now);
            if !wanted.is_empty() {
                self.lag_asked = Some(Instant::now());
                let lag = (self.source.lock().unwrap_or_else(|p| p.into_inner())).lag_now(&wanted);
                match lag {
                    Some(lag) => {
                        (wanted.into_iter().zip(lag)).for_each(|(s, n)| w.set_lag(s, n, now))
                    }
                    None => w.lag_untold(),
                }
            }
        }
        advance(w, now, self.seq, &mut self.waiting, &mut self.given, out)
    }
}

/// A record's number in messages: its line, or its offset.
fn line_no(origin: &Origin, seq: u64) -> u64 {
    match origin {
        Origin::Line(n) => *n,
        Origin::Offset { offset, .. } => u64::try_from(*offset).unwrap_or(seq),
    }
}

/// A batch's requests, boxed when there are any.
fn boxed<T>(requests: Vec<T>) -> Option<Box<[T]>> {
    (!requests.is_empty()).then(|| requests.into_boxed_slice())
}
