//! A source of the library's user ([`Source`]): records handed out raw,
//! in batches ([`RawBatch`]), with their splits' watermarks
//! ([`SplitWatermarks`]); [`FileSource`], a file as such a source.

use super::*;

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
    /// A record of the rules stream the source refused: its payload says
    /// why ([`RawBatch::push_refused_rules`]).
    refused: bool,
    /// A record of the rules stream read again on resuming, which the run
    /// had read before the checkpoint and was holding for event time
    /// ([`RawBatch::judged_before`]): how it was judged then.
    judged: Option<Judged>,
}

impl RawRecord {
    /// Did the source refuse it ([`RawBatch::push_refused_rules`])? Its
    /// payload is why.
    pub fn is_refused(&self) -> bool {
        self.refused
    }

    /// How the run judged it before the checkpoint it resumed from, when
    /// it is a rules record that was read then and waited for event time
    /// ([`RawBatch::judged_before`]).
    pub fn judged_before(&self) -> Option<Judged> {
        self.judged
    }
}

/// How the reader judged a record of the rules stream when it read it
/// (`docs/dynamic-rules.md`, "Records far ahead"): it waits for event
/// time to reach its time, or its time was further ahead of event time
/// than the bound and it applies at once (after the records waiting
/// before it in its split). A checkpoint taken while such records wait
/// keeps how each was judged ([`Unapplied`]), so that a resumed run,
/// which reads them again, judges them as the run it resumes did, not
/// against the event time it resumed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Judged {
    /// It waits for event time to reach its time.
    Waits,
    /// Read when event time was at this watermark, further ahead of it
    /// than the bound: applied then.
    Ahead(cepheid_engine::Timestamp),
}

/// A record of a [`Source`]'s rules stream handed out and not applied
/// yet (it waits for event time): what [`Source::position_before`] is
/// given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unapplied {
    /// Its split.
    pub split: u32,
    /// Where it comes from.
    pub origin: Origin,
    /// How the reader judged it.
    pub judged: Judged,
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
                refused: false,
                judged: None,
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

    /// Appends a record of the source's rules stream that the source
    /// could not read as one (a list's topic's record that is no entry),
    /// `why`: the reader says it with its place, when it would have
    /// applied, and counts it as malformed. It waits, in its place, as a
    /// record does ([`RawEntry::Rules`]).
    pub fn push_refused_rules(
        &mut self,
        why: &str,
        origin: Origin,
        timestamp: Option<cepheid_engine::Timestamp>,
        split: u32,
    ) {
        let mut record = self.raw(why.as_bytes(), origin, timestamp, split);
        record.refused = true;
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
            refused: false,
            judged: None,
        }
    }

    /// Marks the last entry, a record of the rules stream a source hands
    /// out again on resuming, as read before the checkpoint and judged
    /// then so ([`Unapplied::judged`], kept in the position the source
    /// resumed from): the reader takes it as judged then. Nothing when the
    /// last entry is no such record.
    pub fn judged_before(&mut self, judged: Judged) {
        if let Some(RawEntry::Rules(record)) = self.entries.last_mut() {
            record.judged = Some(judged);
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

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Moves the entries from the `from`th on to before the `at`th (a
    /// source that appended its records as it read them, then records it
    /// asked after them but hands out first). Their payloads stay where
    /// they are.
    ///
    /// # Panics
    /// When `at > from` or `from` is past the end.
    pub fn move_before(&mut self, from: usize, at: usize) {
        let moved = self.entries.len() - from;
        self.entries[at..].rotate_right(moved);
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
    /// [`RawEntry::Rules`], in the order handed out) had not been handed
    /// out: they wait for event time, and a checkpoint taken meanwhile
    /// must read them again on resuming. A source that hands them out
    /// again after [`Source::seek`] to that position marks each with how
    /// it was judged ([`RawBatch::judged_before`]): a resumed run then
    /// holds them as the run it resumes did. By default
    /// [`Source::position`] (a source without a rules stream).
    fn position_before(&self, unapplied: &[Unapplied]) -> Position {
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

    /// Are its records a service's requests (`cepheid serve`'s log, issue
    /// 63)? Then the run asks [`Source::request`] for each event record it
    /// hands out and takes the event with
    /// [`Engine::request`](cepheid_engine::Engine::request), giving the
    /// answer to the run's [`Answers`](crate::Answers). Asked once, when
    /// the run starts. `false` by default.
    fn gives_requests(&self) -> bool {
        false
    }

    /// The request the event record of `split` at `origin` is (its id, the
    /// scene it names, the caller's note), for a source that
    /// [gives requests](Source::gives_requests): asked on the reader
    /// thread right after the read that handed it out, once per event
    /// record, in the order handed out. `None`: an event as any other.
    fn request(&mut self, split: u32, origin: &Origin) -> Option<cepheid_engine::engine::Request> {
        let _ = (split, origin);
        None
    }

    /// Records behind the end of its input, per split, when it knows
    /// them (a Kafka source: from its client's statistics); `None` when
    /// it does not (the default). The reader thread asks at most once a
    /// second, after a read, never per record: it should
    /// cost no request to a server.
    fn lag(&self) -> Option<Vec<SplitLag>> {
        None
    }

    /// Does it end by itself, not live (a Kafka source read to the end
    /// offsets it had at its start)? `false` by default.
    fn bounded(&self) -> bool {
        false
    }

    /// Records behind the end of each of `splits` (split numbers, as in
    /// [`RawRecord::split`]) as the source knows them now: what tells a
    /// split that is quiet but has records waiting from an idle one
    /// ([`SplitWatermarks`]). The reader thread asks at most every 10 ms,
    /// only while a split quiet past the idle timeout would otherwise be
    /// left out of a watermark that moves ([`SplitWatermarks::lag_wanted`]),
    /// and holds event time back until it is answered: it should cost no
    /// request to a server (a Kafka source answers from its client's last
    /// fetch responses). `None` when it cannot say (the default: such a
    /// split is left out on its quiet alone), in order otherwise.
    fn lag_now(&mut self, splits: &[usize]) -> Option<Vec<u64>> {
        let _ = splits;
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
    /// name and the line or offset (`events.jsonl:12`,
    /// `orders partition 2 offset 17`).
    ///
    /// It is also the position of an event in its decision records when
    /// its scene has no `id` field, or it lacks it (`"position"`,
    /// `docs/decisions.md`, "The position"): a run that writes decisions
    /// asks it for each event, on the reader thread, as it hands the
    /// record out (a run that writes none, for malformed and control
    /// records alone). So it names a record the same way on every run,
    /// resumed ones included (after [`Source::seek`]): from `split` and
    /// `origin` alone, not from what the source has read so far.
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
/// quiet partition does not hold event time back), unless it may have
/// records waiting: once the source tells the splits' lag
/// ([`SplitWatermarks::set_lag`]), a quiet split is left out only when its
/// lag, told since any split last delivered, is 0 (after a pause of the
/// whole input, the split that delivers first does not move event time on
/// alone while the others' records wait to be read). A split that has
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
    /// The first instant it was given, or the last time a split delivered
    /// after every split had been quiet for the idle timeout (a pause of
    /// the whole input): a split that has not delivered since has been
    /// quiet since then.
    since: Option<std::time::Instant>,
    /// When a split last delivered.
    latest: Option<std::time::Instant>,
    /// The last watermark returned (never goes back).
    emitted: Option<cepheid_engine::Timestamp>,
    /// Per split: its records waiting, and when that was asked.
    lag: Vec<Option<(u64, std::time::Instant)>>,
    /// The source tells the lag ([`SplitWatermarks::set_lag`]), and did
    /// at its last asking.
    told: bool,
}

impl SplitWatermarks {
    /// Over `splits` splits; `idle_timeout`: after how long a quiet split
    /// is left out (`None`: never).
    pub fn new(splits: usize, idle_timeout: Option<Duration>) -> SplitWatermarks {
        SplitWatermarks {
            idle_timeout,
            splits: vec![None; splits],
            since: None,
            latest: None,
            emitted: None,
            lag: vec![None; splits],
            told: false,
        }
    }

    /// Split `split` has got to watermark `t` at `now` (a split's
    /// watermark never goes back either).
    ///
    /// After a pause of the whole input (every split quiet for the idle
    /// timeout), the splits that have not delivered since are quiet from
    /// now, as at the start: the first split to deliver again does not move
    /// event time on alone while the others' records are on their way.
    pub fn update(&mut self, split: usize, t: cepheid_engine::Timestamp, now: std::time::Instant) {
        let since = *self.since.get_or_insert(now);
        let paused = self.idle_timeout.is_some_and(|timeout| {
            now.saturating_duration_since(self.latest.map_or(since, |l| l.max(since))) >= timeout
        });
        if paused {
            self.since = Some(now);
        }
        self.latest = Some(self.latest.map_or(now, |l| l.max(now)));
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

    /// Split `split` had `records` waiting behind its end at `at`.
    pub fn set_lag(&mut self, split: usize, records: u64, at: std::time::Instant) {
        if split >= self.lag.len() {
            self.lag.resize(split + 1, None);
        }
        self.lag[split] = Some((records, at));
        self.told = true;
    }

    /// The source could not tell the lag when asked: quiet splits are
    /// left out on their quiet alone, as without lags, until it tells
    /// again.
    pub fn lag_untold(&mut self) {
        self.told = false;
    }

    /// When split `split` last delivered (if it never did, the first
    /// instant the watermarks were given).
    fn last(&self, split: usize, now: std::time::Instant) -> std::time::Instant {
        let since = self.since.unwrap_or(now);
        match self.splits.get(split).copied().flatten() {
            Some((_, last)) => last.max(since),
            None => since,
        }
    }

    /// Nothing came from split `split` for the idle timeout.
    fn quiet(&self, split: usize, now: std::time::Instant) -> bool {
        self.idle_timeout
            .is_some_and(|timeout| now.saturating_duration_since(self.last(split, now)) >= timeout)
    }

    /// The source tells lags, and the one told of split `split` since any
    /// split last delivered is not 0 (or none was told since).
    fn waiting(&self, split: usize, now: std::time::Instant) -> bool {
        if !self.told {
            return false;
        }
        match self.lag.get(split).copied().flatten() {
            Some((n, at)) => n > 0 || at < self.latest(now),
            None => true,
        }
    }

    /// When a split last delivered (if none did, the first instant given).
    fn latest(&self, now: std::time::Instant) -> std::time::Instant {
        self.latest.unwrap_or_else(|| self.since.unwrap_or(now))
    }

    /// True when split `split` is left out at `now`: nothing came from it
    /// for the idle timeout (since it last delivered, or, if it never
    /// did, since the first instant the watermarks were given; and no
    /// earlier than the input delivered again after a pause of the whole
    /// input, [`SplitWatermarks::update`]), and,
    /// when the source tells lags, its lag told since any split last
    /// delivered is 0.
    pub fn is_idle(&self, split: usize, now: std::time::Instant) -> bool {
        self.quiet(split, now) && !self.waiting(split, now)
    }

    /// The splits whose lag to ask at `now` before [`SplitWatermarks::advance`]:
    /// those that idleness would leave out of a watermark that moves
    /// (quiet, and behind the least of the others), whose lag was not told
    /// since a split last delivered (what made the others move may have
    /// come to them too). Empty when nothing is to be asked.
    pub fn lag_wanted(&self, now: std::time::Instant) -> Vec<usize> {
        if self.idle_timeout.is_none() {
            return Vec::new(); // (no split is ever quiet)
        }
        // (asked per record: no allocation unless a split is wanted)
        let mut least: Option<cepheid_engine::Timestamp> = None;
        let mut any_quiet = false;
        for (split, slot) in self.splits.iter().enumerate() {
            if self.quiet(split, now) {
                any_quiet = true;
                continue;
            }
            match slot {
                Some((t, _)) => least = Some(least.map_or(*t, |l| l.min(*t))),
                None => return Vec::new(),
            }
        }
        let Some(least) = least.filter(|l| any_quiet && self.emitted.map_or(true, |e| e < *l))
        else {
            return Vec::new();
        };
        let latest = self.latest(now);
        (0..self.splits.len())
            .filter(|&s| self.quiet(s, now) && self.splits[s].map_or(true, |(t, _)| t < least))
            .filter(|&s| {
                self.lag
                    .get(s)
                    .copied()
                    .flatten()
                    .map_or(true, |(_, at)| at < latest)
            })
            .collect()
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
    /// How far ahead of event time (ms) a record of the source's rules
    /// stream may be and still wait for it
    /// ([`Config::rules_max_ahead`](crate::Config::rules_max_ahead)).
    pub rules_ahead: Option<i64>,
}

impl SplitTiming {
    /// `config`'s, the splits' watermarks `resumed` and the combined one
    /// `emitted` when the run resumed.
    pub(crate) fn of(
        config: &crate::Config,
        resumed: Vec<Option<cepheid_engine::Timestamp>>,
        emitted: Option<cepheid_engine::Timestamp>,
    ) -> SplitTiming {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        SplitTiming {
            max_delay: ms(config.max_delay),
            idle_timeout: config.idle_timeout,
            resumed,
            emitted,
            rules_ahead: config.rules_max_ahead.map(ms),
        }
    }
}
