//! Sources: events into the dataflow, late ones decided where they are
//! read.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SendError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{Scope, Stream};
use timely::scheduling::SyncActivator;

use serde::{Deserialize, Serialize};

use crate::cut::{Place, Positioned, SourceState, WorkerCut};
use crate::engine::clock::{Idle, Watermark};
use crate::engine::queue::FifoHeap;
use crate::engine::Engine;
use crate::primitives::Timestamp;
use crate::{Change, Input, SourceClock, SourceEnd, Stamped};

/// The stream of a [`source`]'s events (and its end), what [`cep`](crate::cep) reads.
pub type Events<'scope, E> = Stream<'scope, Timestamp, Vec<Input<E>>>;

/// The stream of a [`source`]'s late events, stamped as its events are
/// (their time, source and place: a late event's decisions name it).
pub type LateEvents<'scope, E> = Stream<'scope, Timestamp, Vec<Stamped<E>>>;

/// Items a source reads per activation, at most (then it lets the other
/// operators of its worker run, and is scheduled again).
const BATCH: usize = 1024;

/// How far a source that takes part in cuts may read ahead of the slowest
/// source (its worker's CEP input frontier), in its own steps (what its
/// last batch moved its capability by), while the slowest moves.
const LEAD: i64 = 8;

/// How long the slowest source may keep the frontier where it is before
/// [`LEAD`] stops holding the others: a live source with nothing to read
/// (a partition without records) does not read on, and holding the rest
/// for it would only stall their readers (and a signal behind them).
const STUCK: Duration = Duration::from_millis(100);

/// How often a quiet source with cuts looks for a cut asked for.
const QUIET: Duration = crate::Cuts::QUIET;

/// A source's standing in the cuts while it is quiet: a cut asked for
/// above it is taken where it stands (its capability moves up to it, its
/// clock stays), and its clock is said to every worker while its
/// capability is above it ([`SourceClock`]).
struct Standing {
    worker: u32,
    source: u32,
    /// Since when nothing was there to take.
    quiet: Option<Instant>,
    /// When its next look at the cuts is scheduled.
    looks: Option<Instant>,
    /// The clock said while the capability is above it, and that
    /// capability.
    said: Option<(Timestamp, Timestamp)>,
    /// The number of the last clock said.
    seq: u64,
}

impl Standing {
    fn new(worker: u32, source: u32) -> Standing {
        Standing {
            worker,
            source,
            quiet: None,
            looks: None,
            said: None,
            seq: 0,
        }
    }

    /// Where the capability of a source at `now` whose clock is `clock`
    /// goes, after a look that found nothing more (`pending`) or not and
    /// took items (`took`) or not: a cut asked for above it once it has
    /// been quiet for [`Cuts::quiet`](crate::Cuts::quiet), else its clock
    /// (never below `now`); looked at again while quiet.
    fn wanted(
        &mut self,
        cuts: &crate::Cuts,
        (clock, now): (Timestamp, Timestamp),
        (pending, took): (bool, bool),
        activator: &timely::scheduling::Activator,
    ) -> Timestamp {
        // (quiet from the first look that found nothing more)
        self.quiet = match self.quiet {
            _ if !pending => None,
            Some(since) if !took => Some(since),
            _ => Some(Instant::now()),
        };
        let Some(since) = self.quiet else {
            return clock.max(now);
        };
        let (quiet, quiet_for) = (cuts.quiet(), since.elapsed());
        let mut wanted = clock;
        match cuts.requested() {
            Some(f) if f > now.max(clock) && quiet_for >= quiet => wanted = f,
            Some(f) if f > now.max(clock) => self.look_again(quiet - quiet_for, activator),
            _ => {}
        }
        // (a cut asked for later finds it)
        let every = QUIET.min(quiet).max(Duration::from_millis(1));
        self.look_again(every, activator);
        wanted.max(now)
    }

    /// Schedules a look after `wait`, unless one is scheduled before then.
    fn look_again(&mut self, wait: Duration, activator: &timely::scheduling::Activator) {
        let at = Instant::now() + wait;
        if (self.looks).is_none_or(|scheduled| scheduled <= Instant::now() || scheduled > at) {
            self.looks = Some(at);
            activator.activate_after(wait);
        }
    }

    /// The clock to say with a capability going to `cap` and a clock at
    /// `clock` (`Timestamp::MAX` at the end), when it changed: the clock
    /// while the capability is above it, else that it is lifted.
    fn tell(&mut self, clock: Timestamp, cap: Timestamp) -> Option<SourceClock> {
        let now_said = (cap > clock).then_some((clock, cap));
        if now_said == self.said {
            return None;
        }
        self.said = now_said;
        self.seq += 1;
        Some(SourceClock {
            worker: self.worker,
            source: self.source,
            seq: self.seq,
            clock: now_said.map_or(SourceClock::LIFTED, |(c, _)| c),
            cap,
        })
    }
}

/// Batches a [`Feed`] holds for its [`live_source`] before
/// [`Feed::send`] waits: the reader stays a little ahead, never far.
pub const FEED_AHEAD: usize = 4;

/// What a [`source`] reads: an event with its time and place, or a
/// punctuated watermark (`{"$watermark": T}`).
#[derive(Clone, Debug, PartialEq)]
pub enum SourceItem<E> {
    /// An event.
    Event {
        /// Event time, milliseconds.
        ts: Timestamp,
        /// Where it was read (a line number, [`FileChunk::offset`](crate::FileChunk::offset)): grows
        /// in input order.
        offset: u64,
        /// The event.
        event: E,
    },
    /// Every event at or below this time has been read.
    Watermark(Timestamp),
    /// The least watermark of the source's splits (a reader of several
    /// Kafka partitions, each with its own watermark): the watermark moves
    /// up to it as it would for the largest time seen, not as a
    /// punctuation (at the end, event time goes on to the largest time
    /// seen, as for a source without punctuation).
    SplitWatermark(Timestamp),
    /// A change of rules or lists read here (at its
    /// [`offset`](crate::Change::offset)): it applies from the source's
    /// watermark then + 1, which the source sets as its
    /// [`at`](crate::Change::at), with its [`source`](crate::Change::source).
    Rules(Change),
}

/// A source's event time: the rule of [`Engine`]'s watermark (the largest
/// time seen − `max_delay` − 1, or the punctuation, whichever is larger;
/// never backwards), its limit on waiting events, an optional idle
/// timeout, and its counts. An event at or below the watermark is late.
///
/// **Waiting events.** The source's events above its watermark wait in
/// the dataflow until the frontier passes them. At most
/// [`max_waiting`](Lateness::max_waiting) of them (default
/// [`Engine::DEFAULT_MAX_WAITING_EVENTS`]): when an admitted event makes
/// more wait, the watermark moves up to the earliest of them, the rule of
/// [`Engine::max_waiting_events`] (counted in [`SourceEnd::forced`]). A
/// source that reads the whole input therefore decides exactly what one
/// engine decides.
///
/// ```
/// use cepheid_dataflow::Lateness;
/// let mut time = Lateness::new(10);
/// assert!(time.admit(100));
/// assert!(time.admit(90)); // within the delay
/// assert!(!time.admit(89)); // 100 - 10 - 1 = 89: late
/// time.punctuate(200);
/// assert!(!time.admit(150));
/// assert_eq!(time.frontier(), 201);
/// // at most two events above the watermark
/// let mut time = Lateness::new(0).max_waiting(2);
/// for ts in [10, 10, 10] {
///     assert!(time.admit(ts));
/// }
/// assert_eq!(time.watermark(), Some(10)); // forced up to 10
/// assert_eq!(time.end().forced, 1);
/// assert!(!time.admit(10)); // now late
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lateness {
    time: Watermark,
    punctuated: bool,
    flush: bool,
    events: u64,
    late: u64,
    /// Times of the admitted events the watermark had not passed when
    /// last looked at (as an engine's waiting events): its times the
    /// watermark passed are forgotten when it has grown by half since, or
    /// may hold more than the limit ([`Lateness::settle`]), not at each
    /// event.
    waiting: FifoHeap<Timestamp>,
    waiting_limit: usize,
    forced: u64,
    idle_timeout: Option<Duration>,
    /// The length of `waiting` at which it is looked at next.
    #[serde(skip)]
    look_at: usize,
}

/// The least length of a source's waiting times at which they are looked
/// at ([`Lateness::settle`]).
const LOOK_AT: usize = 1024;

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
            waiting: FifoHeap::default(),
            waiting_limit: Engine::<crate::Record>::DEFAULT_MAX_WAITING_EVENTS,
            forced: 0,
            idle_timeout: None,
            look_at: 0,
        }
    }

    /// At the end, let time run to infinity (every window closes), as
    /// `cepheid run --flush-at-end`.
    pub fn flush_at_end(mut self, flush: bool) -> Lateness {
        self.flush = flush;
        self
    }

    /// At most `limit` of the source's events wait above its watermark (0
    /// counts as 1; `usize::MAX` for no limit); see [`Lateness`].
    pub fn max_waiting(mut self, limit: usize) -> Lateness {
        self.waiting_limit = limit.max(1);
        self
    }

    /// The idle rule of [`Idle`] for a [`live_source`]: when nothing has
    /// arrived for `timeout` of its clock's time, its watermark follows
    /// the clock from its last watermark, so a quiet source no longer
    /// holds the frontier back (as `cepheid run --idle-timeout`). An
    /// iterator [`source`] reads without pause and never idles.
    pub fn idle_timeout(mut self, timeout: Duration) -> Lateness {
        self.idle_timeout = Some(timeout);
        self
    }

    /// A clock of the same settings (delay, limit on waiting events, idle
    /// timeout, flush at the end) that has seen nothing and counted
    /// nothing, its watermark at `floor`: the clock of a source that takes
    /// over the rest of retired sources' input (a checkpoint resumed on
    /// another number of workers, [`WorkerCut::rescale`]).
    pub(crate) fn successor(&self, floor: Option<Timestamp>) -> Lateness {
        let mut next = Lateness::new(self.time.max_delay())
            .flush_at_end(self.flush)
            .max_waiting(self.waiting_limit);
        next.idle_timeout = self.idle_timeout;
        if let Some(t) = floor {
            next.time.raise(t);
        }
        next
    }

    /// A clock of the same settings in the state of one engine's clock
    /// (a checkpoint of one engine read as a worker's cut,
    /// [`WorkerCut::from_engine`]): its watermark and largest time seen,
    /// the times of the events still waiting, what it counted, whether it
    /// was punctuated.
    pub(crate) fn resumed(
        &self,
        (watermark, max_seen): (Option<Timestamp>, Option<Timestamp>),
        waiting: impl Iterator<Item = Timestamp>,
        (events, late): (u64, u64),
        punctuated: bool,
    ) -> Lateness {
        let mut next = self.successor(None);
        if let Some(t) = max_seen {
            next.time.admit(t);
        }
        if let Some(t) = watermark {
            next.time.raise(t);
        }
        if next.waiting_limit != usize::MAX {
            for t in waiting {
                next.waiting.push(t);
            }
        }
        (next.events, next.late, next.punctuated) = (events, late, punctuated);
        next
    }

    /// Moves the watermark up to `t` (never down): where the clock of a
    /// source that takes over part of retired sources' input starts when
    /// that part's own watermark is known ([`WorkerCut::go_on`]).
    pub(crate) fn raise_to(&mut self, t: Timestamp) {
        self.raise(t);
    }

    /// An event at `ts` arrives: `false` when it is late, else `true` (and
    /// the watermark follows it, forced up when too many events wait).
    #[inline]
    pub fn admit(&mut self, ts: Timestamp) -> bool {
        self.events += 1;
        let before = self.time.current();
        let admitted = self.time.admit(ts);
        self.late += u64::from(!admitted);
        if admitted && self.waiting_limit != usize::MAX {
            self.waiting.push(ts);
            // (more than the limit waits only if there are more times)
            if self.waiting.len() > self.look_at.min(self.waiting_limit) {
                self.settle(before);
            }
        }
        admitted
    }

    /// The waiting times looked at, in the engine's order: the event just
    /// admitted waits, the limit is checked (the events the watermark
    /// before it, `before`, passed are gone; those it just passed still
    /// count), then what the watermark passed is forgotten. Looked at
    /// again when they have grown by half, or may hold more than the
    /// limit: the same decisions as at every event, for a push per event.
    #[inline(never)]
    fn settle(&mut self, before: Option<Timestamp>) {
        if let Some(w) = before {
            while self.waiting.pop_if(|&t| t <= w).is_some() {}
        }
        if self.waiting.len() > self.waiting_limit {
            if let Some(&t) = self.waiting.peek() {
                self.time.raise(t);
                self.forced += 1;
            }
        }
        self.release();
        self.look_at = self.waiting.len().saturating_mul(2).max(LOOK_AT);
    }

    /// A punctuated watermark.
    pub fn punctuate(&mut self, t: Timestamp) {
        self.punctuated = true;
        self.raise(t);
    }

    /// Moves the watermark up to `t` (an idle advance).
    fn raise(&mut self, t: Timestamp) {
        self.time.raise(t);
    }

    /// The clock as a cut keeps it: its waiting times the watermark passed
    /// forgotten (as an engine's after each event).
    fn settled(&self) -> Lateness {
        let mut settled = self.clone();
        settled.release();
        settled
    }

    /// Forgets the waiting times the watermark has passed.
    fn release(&mut self) {
        if let Some(w) = self.time.current() {
            while self.waiting.pop_if(|&t| t <= w).is_some() {}
        }
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
            stopped: false,
            events: self.events,
            late: self.late,
            forced: self.forced,
        }
    }
}

/// What a source operator reads next.
pub(crate) enum Pulled<E> {
    /// An item.
    Item(SourceItem<E>),
    /// Nothing yet (a live source waiting for its feed).
    Pending,
    /// The input ended.
    End,
    /// The input stopped without ending ([`Feed::stop`]).
    Stop,
}

/// Where a source operator reads from.
pub(crate) trait Pull<E> {
    /// The next item, or why there is none.
    fn pull(&mut self) -> Pulled<E>;

    /// Did input arrive since the last call? (Never, for an iterator,
    /// which does not idle.)
    fn arrived(&mut self) -> bool {
        false
    }

    /// Where the input is and what it could not read ([`Positioned`], or
    /// what a [`Feed`] said with its last batch taken whole; 0 for an
    /// input that cannot say).
    fn position(&self) -> Place {
        Place::default()
    }

    /// Is a batch of a [`Feed`] taken part way? (The source reads on to
    /// its end: a cut records places between batches.)
    fn mid_batch(&self) -> bool {
        false
    }

    /// The name of the event [`pull`](Pull::pull) gave last, when its
    /// source names its records and the run gathers decisions
    /// ([`Stamped::name`](crate::Stamped::name)); `None` otherwise.
    fn name(&mut self) -> Option<Arc<str>> {
        None
    }

    /// Given the source operator's `activator` as it is built: an input
    /// read on another thread wakes the operator with it when something
    /// arrives (the operator, which found it [`Pulled::Pending`], is not
    /// scheduled again until then).
    fn woken_by(&mut self, activator: SyncActivator) {
        let _ = activator;
    }
}

/// An iterator's items.
struct Iter<I>(I);

impl<E, I: Iterator<Item = SourceItem<E>>> Pull<E> for Iter<I> {
    fn pull(&mut self) -> Pulled<E> {
        match self.0.next() {
            Some(item) => Pulled::Item(item),
            None => Pulled::End,
        }
    }
}

/// An iterator's items, with its place.
struct PosIter<I>(I);

impl<E, I: Iterator<Item = SourceItem<E>> + Positioned> Pull<E> for PosIter<I> {
    fn pull(&mut self) -> Pulled<E> {
        match self.0.next() {
            Some(item) => Pulled::Item(item),
            None => Pulled::End,
        }
    }

    fn position(&self) -> Place {
        Place {
            position: self.0.position(),
            unread: self.0.unread(),
            place: Vec::new(),
        }
    }
}

/// A source operator: reads `items` (on the worker that builds it), sends
/// the events that are not late as [`Input::Event`]s of input `source`, and
/// at the end its [`Input::End`]; late events go to the second stream with
/// their time. Its capability stays at [`Lateness::frontier`], so nothing
/// is sent behind it. It reads 1,024 items per activation; an iterator
/// that blocks would block its worker meanwhile: live input (standard
/// input, a followed file) goes through a [`live_source`].
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
    let (events, late, _) = build(scope, source, lateness, Iter(items.into_iter()), None, None);
    (events, late)
}

/// A [`source`] that takes part in the cuts of `cut` (see
/// [`Cuts`](crate::Cuts)): when its capability first reaches a
/// requested epoch, it records its place ([`Positioned::position`]) and
/// its [`Lateness`]. When `cut` was restored, give `items` opened at the
/// place recorded ([`WorkerCut::source_state`]): the source goes on with
/// the clock it had (`lateness` is then not used), or, if it had ended,
/// sends nothing (unless [`WorkerCut::read_on`] made it read on: an input
/// that may have grown since, opened after what it read).
pub fn source_cut<'scope, E, I>(
    scope: Scope<'scope, Timestamp>,
    source: u32,
    items: I,
    lateness: Lateness,
    cut: &WorkerCut,
) -> (Events<'scope, E>, LateEvents<'scope, E>)
where
    E: Clone + 'static,
    I: Iterator<Item = SourceItem<E>> + Positioned + 'static,
{
    let (events, late, _) = build(
        scope,
        source,
        lateness,
        PosIter(items),
        None,
        Some(cut.clone()),
    );
    (events, late)
}

/// A source operator over `pull` (the worker run's reader of its chunks
/// of a file, or of its live input), taking part in the cuts of `cut`
/// when given one (as [`source_cut`]). `pull` is given the operator's
/// activator ([`Pull::woken_by`]): live input wakes the operator with it
/// when input arrives. With `clock`, the source applies its idle timeout
/// as a [`live_source`] does.
pub(crate) fn pull_source<'scope, E, P>(
    scope: Scope<'scope, Timestamp>,
    source: u32,
    pull: P,
    lateness: Lateness,
    clock: Option<Box<dyn FnMut() -> Instant>>,
    cut: Option<&WorkerCut>,
) -> (Events<'scope, E>, LateEvents<'scope, E>)
where
    E: Clone + 'static,
    P: Pull<E> + 'static,
{
    let (events, late, _) = build(scope, source, lateness, pull, clock, cut.cloned());
    (events, late)
}

/// The sending end of a [`live_source`]: a reader on a thread of its own
/// (standard input, a followed file, a socket) sends it what it reads, in
/// input order, and the source is scheduled as soon as a batch arrives; it
/// never blocks its worker. Dropping the feed ends the input (the source
/// then sends its [`Input::End`]); [`stop`](Feed::stop) stops it without
/// ending it. `Send` (for `E: Send`), so it can move to the reader's
/// thread.
pub struct Feed<E> {
    tx: Option<SyncSender<Fed<E>>>,
    activator: SyncActivator,
    /// Messages sent and not yet taken by the source.
    backlog: Arc<AtomicUsize>,
}

/// What a [`Feed`] sends its source.
enum Fed<E> {
    Items(Vec<SourceItem<E>>, Option<Place>),
    Wake,
    Stop,
}

impl<E> Feed<E> {
    /// Sends `items` to the source: input arrived (even when `items` is
    /// empty, for lines that held no event). Waits while the source is
    /// [`FEED_AHEAD`] batches behind; gives the items back when the
    /// dataflow is gone.
    pub fn send(&self, items: Vec<SourceItem<E>>) -> Result<(), SendError<Vec<SourceItem<E>>>> {
        self.deliver(Fed::Items(items, None))
            .map_err(|e| match e.0 {
                Fed::Items(items, _) => SendError(items),
                _ => SendError(Vec::new()),
            })
    }

    /// [`send`](Feed::send), with where the input is after `items`: a
    /// [`live_source_cut`] records `place` in its [`SourceState`] at a
    /// cut that its capability reaches after it took `items` whole (and
    /// none of the next batch), so a resumed reader goes on from there.
    pub fn send_at(
        &self,
        items: Vec<SourceItem<E>>,
        place: Place,
    ) -> Result<(), SendError<Vec<SourceItem<E>>>> {
        self.deliver(Fed::Items(items, Some(place)))
            .map_err(|e| match e.0 {
                Fed::Items(items, _) => SendError(items),
                _ => SendError(Vec::new()),
            })
    }

    /// Asks the source to look at its clock now (its idle timeout), as it
    /// does by itself when the timeout comes: for a caller whose clock is
    /// not the wall clock (a test), after moving it. Nothing arrived.
    pub fn wake(&self) {
        let _ = self.deliver(Fed::Wake);
    }

    /// Ends the feed without ending the input (a signal stopped the run):
    /// the source says so in its [`SourceEnd::stopped`], and the engines'
    /// event time stays where the sources' watermarks got (the events still
    /// waiting are not processed).
    pub fn stop(self) {
        let _ = self.deliver(Fed::Stop);
    }

    /// Messages (batches, wakes) sent and not yet taken by the source.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::SeqCst)
    }

    fn deliver(&self, message: Fed<E>) -> Result<(), SendError<Fed<E>>> {
        let Some(tx) = &self.tx else {
            return Err(SendError(message));
        };
        self.backlog.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = tx.send(message) {
            self.backlog.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        let _ = self.activator.activate();
        Ok(())
    }
}

impl<E> Drop for Feed<E> {
    fn drop(&mut self) {
        // Closed first: the source sees it when it runs next.
        self.tx = None;
        let _ = self.activator.activate();
    }
}

/// The receiving end of a [`Feed`], in its source.
struct Receive<E> {
    rx: Receiver<Fed<E>>,
    backlog: Arc<AtomicUsize>,
    current: std::vec::IntoIter<SourceItem<E>>,
    /// The place after `current` ([`Feed::send_at`]).
    current_place: Option<Place>,
    /// The place after the last batch taken whole.
    place: Place,
    stopped: bool,
    arrived: bool,
}

impl<E> Pull<E> for Receive<E> {
    fn pull(&mut self) -> Pulled<E> {
        loop {
            if let Some(item) = self.current.next() {
                return Pulled::Item(item);
            }
            if let Some(place) = self.current_place.take() {
                self.place = place;
            }
            if self.stopped {
                return Pulled::Stop;
            }
            match self.rx.try_recv() {
                Ok(message) => {
                    self.backlog.fetch_sub(1, Ordering::SeqCst);
                    match message {
                        Fed::Items(items, place) => {
                            self.arrived = true;
                            self.current = items.into_iter();
                            self.current_place = place;
                        }
                        Fed::Wake => {}
                        Fed::Stop => self.stopped = true,
                    }
                }
                Err(TryRecvError::Empty) => return Pulled::Pending,
                Err(TryRecvError::Disconnected) => return Pulled::End,
            }
        }
    }

    fn arrived(&mut self) -> bool {
        std::mem::take(&mut self.arrived)
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
}

/// A source of live input: as [`source`], but its items come from the
/// returned [`Feed`], sent by another thread as they are read, and the
/// source never waits for them: while none is there its worker runs the
/// rest of the dataflow (the keys it owns included). With
/// [`Lateness::idle_timeout`], when nothing has arrived for the timeout by
/// `clock`, the source's watermark follows `clock` from its last watermark
/// (the rule of [`Idle`], as `cepheid run --idle-timeout`), so a quiet
/// source does not hold the frontier back; the source looks at the clock
/// when the timeout comes, then every tenth of it ([`Idle::wait`]), and
/// at each [`Feed::wake`]. `clock` is `Instant::now` but in tests.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Instant;
/// use cepheid_dataflow::{cep, live_source, Lateness, Plan, SourceItem};
/// use cepheid_decode::{Decoder, Format, Item};
/// use cepheid_engine::{Output, Record, Rules};
/// use timely::dataflow::operators::Inspect;
///
/// let rules = Rules::parse("r.cep", r#"pattern two {
///     partition by user
///     match a followed by b where a: n == 1  b: n == 2 }"#)?;
/// let mut plan = Plan::<Record>::new();
/// plan.add(&rules)?;
/// let plan = Arc::new(plan);
/// let found = Arc::new(Mutex::new(Vec::new()));
/// let seen = Arc::clone(&found);
/// timely::execute(timely::Config::process(2), move |worker| {
///     let (plan, seen) = (Arc::clone(&plan), Arc::clone(&seen));
///     let feed = worker.dataflow::<i64, _, _>(|scope| {
///         let (feed, events, _late) = live_source(scope, 0, Lateness::new(0), Instant::now);
///         cep(&plan, events, |_worker| Vec::<Output<Record>>::new())
///             .inspect(move |o| seen.lock().unwrap().push(o.as_match().unwrap().pattern.clone()));
///         feed
///     });
///     if worker.index() == 0 {
///         // A reader thread sends what it reads, then ends the input
///         // (worker 1 drops its feed: its input is empty).
///         let mut decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
///         std::thread::spawn(move || {
///             let lines = [r#"{"ts":1,"user":"u","n":1}"#, r#"{"ts":2,"user":"u","n":2}"#];
///             for (offset, text) in (0..).zip(lines) {
///                 if let Ok(Item::Event(ts, event)) = decoder.decode(text.as_bytes()) {
///                     feed.send(vec![SourceItem::Event { ts, offset, event }]).unwrap();
///                 }
///             }
///         });
///     }
/// })
/// .unwrap()
/// .join();
/// assert_eq!(*found.lock().unwrap(), ["two"]);
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
pub fn live_source<'scope, E, C>(
    scope: Scope<'scope, Timestamp>,
    source: u32,
    lateness: Lateness,
    clock: C,
) -> (Feed<E>, Events<'scope, E>, LateEvents<'scope, E>)
where
    E: Clone + 'static,
    C: FnMut() -> Instant + 'static,
{
    live(scope, source, lateness, clock, None)
}

/// A [`live_source`] that takes part in the cuts of `cut` (see
/// [`Cuts`](crate::Cuts)): at a cut it records the
/// [`Place`] sent with the last batch it took whole
/// ([`Feed::send_at`]; it never stops part way through a batch) and its
/// [`Lateness`]. When the feed is stopped ([`Feed::stop`], a signal),
/// the source has not ended: [`cep_cut`](crate::cep_cut) then
/// takes a last cut as the dataflow ends, from which the source goes on
/// reading. When `cut` was restored, open the reader at the place
/// recorded ([`WorkerCut::source_state`]: its `position`, `unread` and
/// `place`): the source goes on with the clock it had (`lateness` is then
/// not used), or, if it had ended ([`SourceState::ended`]), sends nothing:
/// then feed it nothing (it takes nothing from the feed).
pub fn live_source_cut<'scope, E, C>(
    scope: Scope<'scope, Timestamp>,
    source: u32,
    lateness: Lateness,
    clock: C,
    cut: &WorkerCut,
) -> (Feed<E>, Events<'scope, E>, LateEvents<'scope, E>)
where
    E: Clone + 'static,
    C: FnMut() -> Instant + 'static,
{
    live(scope, source, lateness, clock, Some(cut.clone()))
}

fn live<'scope, E, C>(
    scope: Scope<'scope, Timestamp>,
    source: u32,
    lateness: Lateness,
    clock: C,
    cut: Option<WorkerCut>,
) -> (Feed<E>, Events<'scope, E>, LateEvents<'scope, E>)
where
    E: Clone + 'static,
    C: FnMut() -> Instant + 'static,
{
    let (tx, rx) = mpsc::sync_channel(FEED_AHEAD);
    let backlog = Arc::new(AtomicUsize::new(0));
    let place = cut
        .as_ref()
        .and_then(|cut| cut.source_state(source))
        .map(|state| Place {
            position: state.position,
            unread: state.unread,
            place: state.place,
        })
        .unwrap_or_default();
    let receive = Receive {
        rx,
        backlog: Arc::clone(&backlog),
        current: Vec::new().into_iter(),
        current_place: None,
        place,
        stopped: false,
        arrived: false,
    };
    let (events, late, address) =
        build(scope, source, lateness, receive, Some(Box::new(clock)), cut);
    let feed = Feed {
        tx: Some(tx),
        activator: scope.worker().sync_activator_for(address.to_vec()),
        backlog,
    };
    (feed, events, late)
}

/// What [`pull_some`] met.
struct Pulls {
    /// The input ended (or was stopped).
    ended: bool,
    /// The input was stopped ([`Feed::stop`]).
    stopped: bool,
    /// Nothing more was ready.
    pending: bool,
    /// Items taken.
    took: usize,
}

/// Pulls up to [`BATCH`] items of `pull` (whole batches of a feed: a cut
/// records places between them): events admitted by `lateness` go to
/// `give`, late ones to `late`, watermarks move `lateness`, and a source
/// that ended gives its end.
fn pull_some<E, P: Pull<E>>(
    pull: &mut P,
    lateness: &mut Lateness,
    source: u32,
    mut give: impl FnMut(Input<E>),
    mut late: impl FnMut(Stamped<E>),
) -> Pulls {
    let (mut ended, mut stopped, mut pending) = (false, false, false);
    let mut read = 0;
    while read < BATCH || pull.mid_batch() {
        read += 1;
        match pull.pull() {
            Pulled::Pending => {
                pending = true;
                break;
            }
            Pulled::End => {
                ended = true;
                break;
            }
            Pulled::Stop => {
                (ended, stopped) = (true, true);
                break;
            }
            Pulled::Item(SourceItem::Watermark(t)) => lateness.punctuate(t),
            Pulled::Item(SourceItem::SplitWatermark(t)) => lateness.raise(t),
            Pulled::Item(SourceItem::Rules(mut change)) => {
                change.at = lateness.frontier();
                change.source = source;
                give(Input::Rules(Box::new(change)))
            }
            Pulled::Item(SourceItem::Event { ts, offset, event }) => {
                let stamped = Stamped {
                    ts,
                    source,
                    offset,
                    event,
                    name: pull.name(),
                };
                if lateness.admit(ts) {
                    give(Input::Event(stamped));
                } else {
                    late(stamped);
                }
            }
        }
    }
    if ended {
        let mut end = lateness.end();
        end.stopped = stopped;
        give(Input::End(end));
    }
    Pulls {
        ended,
        stopped,
        pending,
        // (the last look found no item when it ended the batch)
        took: read - usize::from(pending || ended),
    }
}

/// A source's state at a cut: `pull`'s place and `lateness`.
fn source_state<E, P: Pull<E>>(pull: &P, lateness: &Lateness, ended: bool) -> SourceState {
    let Place {
        position,
        unread,
        place,
    } = pull.position();
    SourceState {
        position,
        unread,
        place,
        lateness: lateness.settled(),
        ended,
    }
}

/// The source operator over `pull`; with `clock`, a live source that
/// applies its idle timeout. Returns its streams and its address.
fn build<'scope, E, P>(
    scope: Scope<'scope, Timestamp>,
    source: u32,
    lateness: Lateness,
    mut pull: P,
    mut clock: Option<Box<dyn FnMut() -> Instant>>,
    cut: Option<WorkerCut>,
) -> (Events<'scope, E>, LateEvents<'scope, E>, Rc<[usize]>)
where
    E: Clone + 'static,
    P: Pull<E> + 'static,
{
    let mut builder = OperatorBuilder::new("CepSource".to_owned(), scope);
    let info = builder.operator_info();
    let address = Rc::clone(&info.address);
    let activator = scope.activator_for(Rc::clone(&info.address));
    pull.woken_by(scope.worker().sync_activator_for(address.to_vec()));
    let worker = u32::try_from(scope.index()).unwrap_or(u32::MAX);
    let (events_out, events) = builder.new_output::<Vec<Input<E>>>();
    let (late_out, late) = builder.new_output::<Vec<Stamped<E>>>();
    let mut events_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Input<E>>>>::from(events_out);
    let mut late_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Stamped<E>>>>::from(late_out);
    let mut lateness = lateness;
    // Restored at a cut: its clock then, or nothing to do when it had ended.
    let mut ended_before = None;
    if let Some(state) = cut.as_ref().and_then(|cut| cut.source_state(source)) {
        lateness = state.lateness.clone();
        ended_before = state.ended.then_some(state);
    }
    let mut idle = match (&mut clock, lateness.idle_timeout) {
        (Some(clock), Some(timeout)) => Some(Idle::new(timeout, clock())),
        _ => None,
    };
    builder.build(move |mut capabilities| {
        let late_cap = capabilities.pop();
        let events_cap = capabilities.pop();
        let mut caps = events_cap.zip(late_cap);
        // When the scheduled look at the idle clock comes (wall clock).
        let mut looks_at: Option<Instant> = None;
        let mut first = true;
        // What the last batch moved the capability by.
        let mut step: Timestamp = 0;
        // The CEP input frontier last seen, and when it got there.
        let mut slowest = (Timestamp::MIN, Instant::now());
        let mut standing = Standing::new(worker, source);
        // The items of one activation, given as one container (not one
        // at a time through the session's builder).
        let mut batch: Vec<Input<E>> = Vec::new();
        move |_frontiers| {
            if let Some(state) = ended_before.take() {
                // Its end was received before the cut: it stays ended.
                if let Some(cut) = &cut {
                    cut.passing(source, Timestamp::MIN, None, || state);
                }
                caps = None;
            }
            let Some((events_cap, late_cap)) = caps.as_mut() else {
                return;
            };
            // Restored: nothing is sent behind the clock it had (once; a
            // source held by a cut being chosen goes on at its hold).
            let start = lateness.frontier();
            if first && *events_cap.time() < start {
                events_cap.downgrade(&start);
                late_cap.downgrade(&start);
            }
            first = false;
            if let Some(cut) = &cut {
                // Not far ahead of the slowest source while it reads on: a
                // cut is just above the fastest, and is whole once the
                // slowest has reached it. Looked at again soon.
                let frontier = cut.frontier();
                let now = Instant::now();
                if frontier != slowest.0 {
                    slowest = (frontier, now);
                }
                let ahead = events_cap.time().saturating_sub(frontier);
                let moving = now.saturating_duration_since(slowest.1) < STUCK;
                if step > 0 && ahead > step.saturating_mul(LEAD) && moving {
                    activator.activate_after(Duration::from_millis(1));
                    return;
                }
            }
            let Pulls {
                ended,
                stopped,
                pending,
                took,
            } = {
                let mut late_out = late_out.activate();
                let mut late = late_out.session(&*late_cap);
                pull_some(
                    &mut pull,
                    &mut lateness,
                    source,
                    |input| batch.push(input),
                    |pair| late.give(pair),
                )
            };
            if !batch.is_empty() {
                let len = batch.len();
                let mut events_out = events_out.activate();
                events_out.session(&*events_cap).give_container(&mut batch);
                // (the container went: room for as many again)
                batch.clear();
                batch.reserve(len);
            }
            if ended {
                if let Some(cut) = &cut {
                    // Stopped, it goes on from there when restored.
                    let state = || source_state(&pull, &lateness, !stopped);
                    cut.passing(source, *events_cap.time(), None, state);
                }
                // (no later event: no limit)
                if let Some(lifted) = standing.tell(Timestamp::MAX, *events_cap.time()) {
                    let mut events_out = events_out.activate();
                    events_out.session(&*events_cap).give(Input::Clock(lifted));
                }
                // Dropping the capabilities ends the source.
                caps = None;
                return;
            }
            if let (Some(idle), Some(clock)) = (&mut idle, &mut clock) {
                let now = clock();
                if pull.arrived() {
                    idle.arrived(now);
                }
                if pending {
                    if let Some(t) = idle.advance(now, lateness.watermark()) {
                        lateness.raise(t);
                    }
                    // One look at the clock scheduled at a time (a look
                    // that comes early schedules the next).
                    let real = Instant::now();
                    if looks_at.is_none_or(|at| real >= at) {
                        let wait = idle.wait(now);
                        looks_at = Some(real + wait);
                        activator.activate_after(wait);
                    }
                }
            }
            let clock = lateness.frontier();
            let mut t = clock;
            let mut held = false;
            if let Some(cut) = &cut {
                let now = *events_cap.time();
                let quiet = (pending, took > 0);
                let wanted = standing.wanted(&cut.cuts, (clock, now), quiet, &activator);
                let state = || source_state(&pull, &lateness, false);
                t = cut
                    .passing(source, now, Some(wanted), state)
                    .unwrap_or(wanted);
                // Held while worker 0 chooses a cut: looked at again soon.
                held = t < wanted;
                // Its capability above its clock: the clock said to every
                // worker before the capability moves (and when either
                // moves), the end of it too.
                if let Some(told) = standing.tell(clock, t.max(now)) {
                    let mut events_out = events_out.activate();
                    events_out.session(&*events_cap).give(Input::Clock(told));
                }
            }
            if t > *events_cap.time() && standing.said.is_none() {
                step = t.saturating_sub(*events_cap.time());
            }
            events_cap.downgrade(&t);
            late_cap.downgrade(&t);
            if held && pending {
                activator.activate_after(Duration::from_millis(1));
            }
            if !pending {
                // More to read: the feed's activator wakes a pending one.
                activator.activate();
            }
        }
    });
    (events, late, address)
}
