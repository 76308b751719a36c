//! Snapshots across workers: every worker's state at a common frontier.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::input::Handle as InputHandle;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Exchange, Input, Operator};

use cepheid_runtime::checkpoint::{EngineState, Part, Piece as Saved};

use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::primitives::Timestamp;
use crate::route::{groups, key_group, worker_groups, Router};
use crate::{Lateness, Piece, Plan, SourceEnd, Stamped};

/// No epoch (an `AtomicI64` holds no `Option`).
const NONE: i64 = i64::MIN;

/// The cuts of one process's dataflow run, shared by its workers: which
/// frontier `f` (epoch) the next snapshot is taken at, and whether a worker
/// could not take it.
///
/// A cut at `f` is the moment every source's capability reaches `f`:
/// everything a source read before it travelled at timely times below `f`,
/// everything after at `f` or above. The frontier is the barrier: no
/// message of ours goes through the data streams. Each source records its
/// place and its [`Lateness`] when its capability moves from below `f` to
/// `f` or beyond; each worker's [`cep_cut`](crate::cep_cut), once
/// its input frontier passes `f`, hands its [`WorkerCut`]'s save function
/// the worker's state: its sources' states, its engines' snapshots, the
/// source ends received and the events still stashed that were sent below
/// `f`.
///
/// ```
/// use cepheid_dataflow::Cuts;
/// let cuts = Cuts::new();
/// assert_eq!(cuts.requested(), None);
/// let f = cuts.request();
/// assert_eq!(cuts.requested(), Some(f));
/// assert!(!cuts.failed(f));
/// ```
#[derive(Debug)]
pub struct Cuts {
    requested: AtomicI64,
    /// The sources' capabilities, and how far they may move.
    clock: Mutex<Clock>,
    /// The last epoch a worker could not take.
    failed: AtomicI64,
    /// The epoch of the last cut taken when a live source was stopped.
    last: AtomicI64,
    /// A last cut is taken when the input ends, too ([`Cuts::at_end`]).
    at_end: AtomicBool,
    /// A last cut is taken when the input ends, before the end moves event
    /// time on ([`Cuts::before_end`]).
    before_end: AtomicBool,
    /// Was the last cut ([`Cuts::last_cut`]) taken before the end of the
    /// input (not as a live source was stopped)?
    last_before_end: AtomicBool,
    /// How long a source has had nothing to take before it takes a cut
    /// where it stands ([`Cuts::quiet_after`]), in nanoseconds.
    quiet: AtomicU64,
}

#[derive(Debug)]
struct Clock {
    /// The largest source capability seen.
    seen: Timestamp,
    /// While worker 0 chooses a cut ([`Requests::ask`]): no source
    /// capability of the process moves above this.
    hold: Option<Timestamp>,
}

impl Cuts {
    /// No cut requested yet.
    pub fn new() -> Arc<Cuts> {
        Arc::new(Cuts {
            requested: AtomicI64::new(NONE),
            clock: Mutex::new(Clock {
                seen: Timestamp::MIN,
                hold: None,
            }),
            failed: AtomicI64::new(NONE),
            last: AtomicI64::new(NONE),
            at_end: AtomicBool::new(false),
            before_end: AtomicBool::new(false),
            last_before_end: AtomicBool::new(false),
            quiet: AtomicU64::new(Cuts::QUIET.as_nanos() as u64),
        })
    }

    /// How long a source waits with nothing to take, by default, before it
    /// takes a cut asked for where it stands ([`Cuts::quiet_after`]).
    pub const QUIET: Duration = Duration::from_millis(100);

    /// A live source that has had nothing to take for `quiet` takes a cut
    /// asked for above its capability where it stands: its capability
    /// moves up to the cut, its clock stays, and it says its clock to
    /// every worker ([`SourceClock`](crate::SourceClock)), so that a quiet
    /// input is cut without moving event time. Default [`Cuts::QUIET`];
    /// zero takes every cut asked for at the first look that finds
    /// nothing (the tests use it to take one between any two batches).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cepheid_dataflow::Cuts;
    /// let cuts = Cuts::new();
    /// assert_eq!(cuts.quiet(), Cuts::QUIET);
    /// cuts.quiet_after(Duration::ZERO);
    /// assert_eq!(cuts.quiet(), Duration::ZERO);
    /// ```
    pub fn quiet_after(&self, quiet: Duration) {
        let nanos = u64::try_from(quiet.as_nanos()).unwrap_or(u64::MAX);
        self.quiet.store(nanos, Ordering::Relaxed);
    }

    /// See [`Cuts::quiet_after`].
    pub fn quiet(&self) -> Duration {
        Duration::from_nanos(self.quiet.load(Ordering::Relaxed))
    }

    /// The workers also take a last cut when every source ended (not
    /// only when a live one was stopped): after their engines released
    /// what the end of event time releases, so that the records it made
    /// belong to a cut. A transactional sink, which cannot take back what
    /// it committed, commits them with it. Restored, that cut's sources
    /// have ended: the run reads nothing more.
    pub fn at_end(&self) {
        self.at_end.store(true, Ordering::SeqCst);
    }

    /// Is a last cut taken when the input ends ([`Cuts::at_end`])?
    pub(crate) fn cuts_at_end(&self) -> bool {
        self.at_end.load(Ordering::SeqCst)
    }

    /// The workers take a last cut when every source ended (none
    /// stopped), *before* the end of event time: their engines moved to
    /// the largest source watermark `W` (what the sources' clocks released
    /// already), the cut at `W + 1`, with every event still waiting and
    /// every source's end; only then do the engines release what the end
    /// releases, and what that makes goes out at `Timestamp::MAX`, after
    /// the cut. So a run over a file keeps a cut at the end of its input
    /// from which a run over the same file ends the same way, and one over
    /// the file grown since goes on with its new lines (restored, the
    /// sources read on: [`WorkerCut::read_on`]), as one engine's checkpoint
    /// at the end of a file. Not with [`Cuts::at_end`].
    pub fn before_end(&self) {
        self.before_end.store(true, Ordering::SeqCst);
    }

    /// Is a last cut taken before the end ([`Cuts::before_end`])?
    pub(crate) fn cuts_before_end(&self) -> bool {
        self.before_end.load(Ordering::SeqCst) && !self.cuts_at_end()
    }

    /// Was the last cut ([`Cuts::last_cut`]) taken before the end of the
    /// input ([`Cuts::before_end`]), rather than as a live source was
    /// stopped?
    pub fn last_cut_before_end(&self) -> bool {
        self.last_before_end.load(Ordering::SeqCst)
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        // A poisoned lock still holds plain numbers.
        self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a cut just above every source's capability so far (in this
    /// process), and returns its epoch. A source that passes it before it
    /// sees the request makes it fail ([`failed`](Cuts::failed)): ask
    /// again. Several processes choose it together instead
    /// ([`Requests::ask`]).
    pub fn request(&self) -> Timestamp {
        let f = self.clock().seen.saturating_add(1);
        self.requested.fetch_max(f, Ordering::SeqCst);
        f
    }

    /// A cut at `f` was asked for by worker 0 (of this process or another,
    /// through [`cut_requests`]): this process's sources and workers take
    /// part in it. A request below one already known is ignored.
    pub fn asked(&self, f: Timestamp) {
        self.requested.fetch_max(f, Ordering::SeqCst);
    }

    /// The sources of this process may move past their hold again.
    fn release(&self) {
        self.clock().hold = None;
    }

    /// The epoch of the cut asked for last.
    pub fn requested(&self) -> Option<Timestamp> {
        let f = self.requested.load(Ordering::SeqCst);
        (f != NONE).then_some(f)
    }

    /// Did a worker fail to take the cut at `f` (one of its sources passed
    /// `f` before the request)? Then no worker's state at `f` is whole.
    pub fn failed(&self, f: Timestamp) -> bool {
        self.failed.load(Ordering::SeqCst) == f
    }

    /// The epoch of the last cut the workers of this process took as the
    /// dataflow ended because a live source was stopped
    /// ([`Feed::stop`](crate::Feed::stop)): once the input
    /// frontier of a downstream operator is empty, every worker's state
    /// at it has been saved. See [`cep_cut`](crate::cep_cut).
    pub fn last_cut(&self) -> Option<Timestamp> {
        let f = self.last.load(Ordering::SeqCst);
        (f != NONE).then_some(f)
    }

    /// A worker took the last cut, at `f` (`before_end`: before the end of
    /// the input, [`Cuts::before_end`]).
    pub(crate) fn took_last(&self, f: Timestamp, before_end: bool) {
        self.last_before_end.store(before_end, Ordering::SeqCst);
        self.last.fetch_max(f, Ordering::SeqCst);
    }

    /// Worker 0 chooses a cut: the sources' capabilities stop at the
    /// largest one seen, and the cut may be just above it (returned).
    fn hold(&self) -> Timestamp {
        let mut clock = self.clock();
        clock.hold = Some(clock.seen);
        clock.seen.saturating_add(1)
    }

    /// A source's capability moves from `old` towards `t`: where it may go
    /// (not above a hold).
    fn pass(&self, old: Timestamp, t: Timestamp) -> Timestamp {
        let mut clock = self.clock();
        let t = match clock.hold {
            Some(hold) => t.min(hold).max(old),
            None => t,
        };
        clock.seen = clock.seen.max(t);
        t
    }

    /// Restored at a cut at `t`.
    fn saw(&self, t: Timestamp) {
        let mut clock = self.clock();
        clock.seen = clock.seen.max(t);
    }
}

/// The cut requests of worker 0, on their way to every worker of every
/// process: returned by [`cut_requests`] on worker 0. Dropping it ends
/// the requests (every worker's requests dataflow then ends).
pub struct Requests {
    input: Rc<RefCell<Option<RequestInput>>>,
    round: Rc<Cell<u64>>,
    answers: Rc<RefCell<Answers>>,
}

/// What worker 0 says to every worker.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Say {
    /// Hold your process's source capabilities where they are, and answer
    /// with the largest + 1.
    Hold,
    /// The cut is at this epoch (answer when you know it).
    Cut(Timestamp),
    /// Let the sources go on.
    Release,
}

type RequestInput = InputHandle<u64, CapacityContainerBuilder<Vec<Say>>>;

/// The question under way.
#[derive(Clone, Copy)]
enum Phase {
    /// Nothing asked.
    Idle,
    /// Holding: the largest answer so far.
    Holding(Timestamp),
    /// The cut at this epoch sent.
    Cutting(Timestamp),
}

struct Answers {
    /// The round (input time) the answers are to.
    round: u64,
    phase: Phase,
    /// Workers that answered.
    count: usize,
    /// The epoch chosen, once every worker knows it and the sources go
    /// on.
    chosen: Option<Timestamp>,
}

impl Requests {
    /// Asks for a cut just above the sources' capabilities this process
    /// has seen ([`Cuts::request`]) and sends the request to every worker;
    /// returns its epoch. In one process, where `cuts` sees every source,
    /// that is all it takes.
    pub fn request(&mut self, cuts: &Cuts) -> Timestamp {
        let f = cuts.request();
        send(&self.input, &self.round, Say::Cut(f));
        f
    }

    /// Chooses a cut with every process, in three steps: each worker,
    /// asked, holds its process's source capabilities at the largest one
    /// seen there and answers with it (the sources go on reading and
    /// sending, at that time); once every worker has answered, the cut is
    /// at the largest answer + 1, sent to every worker; once every worker
    /// knows it, the sources are let go ([`chosen`](Requests::chosen) then
    /// says its epoch). No source, and no operator's frontier, passes the
    /// epoch before its worker knows it: such a cut does not fail. With
    /// several processes a source of another process may be far ahead of
    /// this process's (the chunks of a file are dealt in turn), so this
    /// process alone cannot choose it; and the request reaches the others
    /// later than the sources of this process could move.
    pub fn ask(&mut self) {
        *self.answers.borrow_mut() = Answers {
            // The time it is sent at.
            round: self.round.get(),
            phase: Phase::Holding(Timestamp::MIN),
            count: 0,
            chosen: None,
        };
        send(&self.input, &self.round, Say::Hold);
    }

    /// The epoch of the cut chosen after the last [`ask`](Requests::ask),
    /// once every worker knows it.
    pub fn chosen(&self) -> Option<Timestamp> {
        self.answers.borrow().chosen
    }
}

/// Sends `say` to every worker, at once; returns the round it was sent
/// at.
fn send(input: &RefCell<Option<RequestInput>>, round: &Cell<u64>, say: Say) -> u64 {
    let at = round.get();
    if let Some(input) = input.borrow_mut().as_mut() {
        input.send(say);
        round.set(at + 1);
        // Sends it now.
        input.advance_to(at + 1);
    }
    at
}

impl Drop for Requests {
    fn drop(&mut self) {
        // The answers' sink holds a clone: the input closes here.
        self.input.borrow_mut().take();
    }
}

/// Builds, in `worker`, the small dataflow that carries the cut requests
/// of worker 0 to every worker of every process, with timely's own
/// communication: an input on worker 0 broadcast to every worker, which
/// tells its process's `cuts` ([`Cuts::asked`]), or answers worker 0's
/// question ([`Requests::ask`]) with the largest capability of its
/// process's sources. Every worker must build it (at the same place among
/// its dataflows, as timely requires); worker 0 gets the [`Requests`],
/// the others `None`.
///
/// In one process the workers share `cuts`, and worker 0's request is
/// seen at once; in another process it arrives a little later, and a
/// source there that passes the epoch before makes that cut fail: ask
/// again further ahead.
///
/// ```
/// use cepheid_dataflow::{cut_requests, Cuts};
/// let asked = timely::execute(timely::Config::process(2), |worker| {
///     let cuts = Cuts::new();
///     let mut requests = cut_requests(worker, &cuts);
///     if let Some(requests) = &mut requests {
///         requests.request(&cuts);
///         requests.ask();
///         while requests.chosen().is_none() {
///             worker.step();
///         }
///     }
///     drop(requests);
///     while worker.has_dataflows() {
///         worker.step();
///     }
///     cuts.requested()
/// })
/// .unwrap()
/// .join();
/// let asked: Vec<_> = asked.into_iter().map(Result::unwrap).collect();
/// // No source has moved: both are just above the start.
/// assert_eq!(asked, [Some(i64::MIN + 1), Some(i64::MIN + 1)]);
/// ```
pub fn cut_requests(worker: &mut timely::worker::Worker, cuts: &Arc<Cuts>) -> Option<Requests> {
    let index = worker.index();
    let peers = worker.peers();
    let cuts = Arc::clone(cuts);
    let input = Rc::new(RefCell::new(None));
    let round = Rc::new(Cell::new(0));
    let answers = Rc::new(RefCell::new(Answers {
        round: 0,
        phase: Phase::Idle,
        count: 0,
        chosen: None,
    }));
    let (sink_input, sink_round, sink_answers) =
        (Rc::clone(&input), Rc::clone(&round), Rc::clone(&answers));
    let handle = worker.dataflow::<u64, _, _>(move |scope| {
        let (handle, requests) = scope.new_input::<Vec<Say>>();
        requests
            .broadcast()
            .unary::<CapacityContainerBuilder<Vec<(u64, Timestamp)>>, _, _, _>(
                Pipeline,
                "CutRequests",
                move |_, _| {
                    move |input, output| {
                        input.for_each_stamp(|cap, data| {
                            let round = cap.least().copied().unwrap_or_default();
                            let mut session = output.session(&cap);
                            for say in data.flat_map(|batch| batch.drain(..)) {
                                match say {
                                    Say::Hold => session.give((round, cuts.hold())),
                                    Say::Cut(f) => {
                                        cuts.asked(f);
                                        session.give((round, f));
                                    }
                                    Say::Release => cuts.release(),
                                }
                            }
                        });
                    }
                },
            )
            .exchange(|_| 0)
            .sink(Pipeline, "CutAnswers", move |(input, _)| {
                let mut next = None;
                input.for_each(|_, data| {
                    let mut answers = sink_answers.borrow_mut();
                    for (round, value) in data.drain(..) {
                        if round != answers.round {
                            continue;
                        }
                        answers.count += 1;
                        if let Phase::Holding(max) = &mut answers.phase {
                            *max = (*max).max(value);
                        }
                        if answers.count < peers {
                            continue;
                        }
                        answers.count = 0;
                        match answers.phase {
                            Phase::Idle => {}
                            Phase::Holding(f) => {
                                answers.phase = Phase::Cutting(f);
                                next = Some(Say::Cut(f));
                            }
                            Phase::Cutting(f) => {
                                answers.phase = Phase::Idle;
                                answers.chosen = Some(f);
                                next = Some(Say::Release);
                            }
                        }
                    }
                });
                if let Some(say) = next {
                    let at = send(&sink_input, &sink_round, say);
                    sink_answers.borrow_mut().round = at;
                }
            });
        handle
    });
    if index != 0 {
        // Only worker 0 asks: the others' inputs close now.
        return None;
    }
    *input.borrow_mut() = Some(handle);
    Some(Requests {
        input,
        round,
        answers,
    })
}

/// A source's state at a cut: where its input goes on, and its clock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceState {
    /// Where the input goes on ([`Positioned::position`]).
    pub position: u64,
    /// What the input could not read up to there ([`Positioned::unread`]).
    pub unread: u64,
    /// A live source: what its reader said of its place with the last
    /// batch the source took whole ([`Place::place`], sent with
    /// [`Feed::send_at`](crate::Feed::send_at)): a file's
    /// identity and byte offset, say. Empty otherwise.
    pub place: Vec<u8>,
    /// Its clock and counts.
    pub lateness: Lateness,
    /// Had it ended (sent its [`SourceEnd`])? A live source stopped by
    /// [`Feed::stop`](crate::Feed::stop) has not: it goes on
    /// from its place when restored.
    pub ended: bool,
}

/// Where a live input is after a batch, for cuts: given with the batch to
/// [`Feed::send_at`](crate::Feed::send_at), and recorded in the
/// [`SourceState`] of a [`live_source_cut`](crate::live_source_cut)
/// when the source has taken that batch whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// A number that grows with the input, from which the reader can go on
    /// (the lines read so far, say): [`SourceState::position`].
    pub position: u64,
    /// What the reader could not read so far: [`SourceState::unread`].
    pub unread: u64,
    /// Whatever else the reader needs to go on (which file, at which
    /// byte), opaque to the library: [`SourceState::place`].
    pub place: Vec<u8>,
}

/// An input that says where it is, for [`source_cut`](crate::source_cut):
/// a number from which the caller can open the same input again at the
/// same place (after the last item it gave).
pub trait Positioned {
    /// Where the input is now.
    fn position(&self) -> u64;

    /// Items the input could not read up to now (malformed lines, say),
    /// kept with its place so that a resumed run counts them once; 0 by
    /// default.
    fn unread(&self) -> u64 {
        0
    }
}

/// One worker's part of the cuts: the process's [`Cuts`], what its
/// sources recorded, the state it was restored from, and what saves its
/// state. Clones share all this: give one to each
/// [`source_cut`](crate::source_cut) and to
/// [`cep_cut`](crate::cep_cut) of the worker.
#[derive(Clone)]
pub struct WorkerCut {
    pub(crate) cuts: Arc<Cuts>,
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    /// Per source: its state at a cut (with the epoch), or at its end.
    sources: BTreeMap<u32, Recorded>,
    /// The sources' states at the restored cut.
    restored_sources: Vec<(u32, SourceState)>,
    /// The operator's state restored ([`Restored`], typed by the event).
    restored: Option<Box<dyn Any>>,
    save: Box<dyn FnMut(Timestamp, Saved)>,
    /// The input frontier of the worker's CEP operator (every source's
    /// capability is at or above it).
    frontier: Timestamp,
    /// The epoch of the restored cut.
    restored_epoch: Option<Timestamp>,
    /// The last epoch the worker's CEP operator cut at (or gave up).
    taken: Timestamp,
    /// What the worker's readers counted so far ([`WorkerCut::counting`]).
    count: Option<Box<dyn Fn() -> Counted>>,
    /// The counts of the readers at the restored cut.
    restored_count: Counted,
    /// Woken when the worker's CEP operator takes a cut (its router).
    wake: Option<timely::scheduling::Activator>,
}

/// What a worker's readers counted of the rules records they read: those
/// refused and those late (kept with the sources' places, so that a
/// resumed run counts each once).
pub type Counted = [u64; 2];

#[derive(Default)]
struct Recorded {
    at: Option<(Timestamp, SourceState, Counted)>,
    /// Its state at its end, and its capability then.
    ended: Option<(Timestamp, SourceState, Counted)>,
}

/// A worker's operator state, restored.
pub(crate) struct Restored<E: Event + 'static> {
    pub epoch: Timestamp,
    /// By group, then key group.
    pub pieces: Vec<Piece<E>>,
    pub stash: Vec<(u32, Stamped<E>)>,
    /// Events a router held (not routed yet: [`saved::HELD`]).
    pub held: Vec<Stamped<E>>,
    pub ends: Vec<SourceEnd>,
    /// The rules in force and the changes pending (`None`: the plan's,
    /// a cut of before).
    pub rules: Option<cepheid_runtime::checkpoint::CutRules>,
}

impl WorkerCut {
    /// A worker's part of `cuts`; `save` gets the worker's state at each
    /// cut it takes (its epoch and its piece of the checkpoint: store it
    /// where [`restore`](WorkerCut::restore) can find it).
    pub fn new(cuts: Arc<Cuts>, save: impl FnMut(Timestamp, Saved) + 'static) -> WorkerCut {
        WorkerCut {
            cuts,
            inner: Rc::new(RefCell::new(Inner {
                sources: BTreeMap::new(),
                restored_sources: Vec::new(),
                restored: None,
                save: Box::new(save),
                frontier: Timestamp::MIN,
                restored_epoch: None,
                taken: Timestamp::MIN,
                count: None,
                restored_count: Counted::default(),
                wake: None,
            })),
        }
    }

    /// The worker's readers count the rules records they refuse and
    /// those late with `count` (`[refused, late]`): each source's count
    /// is kept with its place at a cut.
    pub fn counting(self, count: impl Fn() -> Counted + 'static) -> WorkerCut {
        self.inner.borrow_mut().count = Some(Box::new(count));
        self
    }

    /// What the readers of the worker had counted at the restored cut
    /// (all the old workers' on worker 0 of a rescaled run).
    pub fn restored_count(&self) -> Counted {
        self.inner.borrow().restored_count
    }

    /// The epoch of a cut requested that the worker's CEP operator has not
    /// taken (nor given up) yet.
    pub(crate) fn pending(&self) -> Option<Timestamp> {
        let taken = self.inner.borrow().taken;
        self.cuts.requested().filter(|&e| e > taken)
    }

    /// The worker's CEP operator cut at `e` (or gave it up).
    pub(crate) fn taken(&self, e: Timestamp) {
        let mut inner = self.inner.borrow_mut();
        inner.taken = inner.taken.max(e);
        if let Some(wake) = &inner.wake {
            wake.activate();
        }
    }

    /// `wake` is activated each time the worker's CEP operator takes a
    /// cut (a router that keeps what was sent below it until then).
    pub(crate) fn wake_when_taken(&self, wake: timely::scheduling::Activator) {
        self.inner.borrow_mut().wake = Some(wake);
    }

    /// After [`rescale`](WorkerCut::rescale), where source `source` of
    /// this worker goes on, as the caller computed it from the old
    /// sources' places: `place` ([`SourceState::place`]), `position` (the
    /// offsets of its events go on above it), and the watermark its clock
    /// starts at when its part of the input knows one (`start`: the
    /// least of its splits' watermarks, never below the retired sources'
    /// least, where `rescale` started it). Nothing for a source that
    /// stays ended.
    pub fn go_on(&self, source: u32, place: Vec<u8>, position: u64, start: Option<Timestamp>) {
        let mut inner = self.inner.borrow_mut();
        let Some((_, state)) = (inner.restored_sources.iter_mut()).find(|(s, _)| *s == source)
        else {
            return;
        };
        if state.ended {
            return;
        }
        state.place = place;
        state.position = position;
        if let Some(t) = start {
            state.lateness.raise_to(t);
        }
        self.cuts.saw(state.lateness.frontier());
    }

    /// After [`restore`](WorkerCut::restore) or
    /// [`rescale`](WorkerCut::rescale), the sources that had ended at the
    /// cut read on, for an input that may have grown since (a file): each
    /// is *retired* as [`rescale`](WorkerCut::rescale) retires a source
    /// (its end stays with the ends received: it counts what it read) and
    /// goes on with a clock of the same settings that has seen nothing,
    /// counted nothing, and whose watermark starts at the cut's epoch - 1,
    /// where the engines were (an event at or below it is late). Its
    /// input is opened after what it read (the caller's: its place).
    /// Without this, a source that had ended stays ended.
    pub fn read_on(&self) {
        let mut inner = self.inner.borrow_mut();
        let Some(epoch) = inner.restored_epoch else {
            return;
        };
        for (_, state) in &mut inner.restored_sources {
            if !state.ended {
                continue;
            }
            state.ended = false;
            state.lateness = state.lateness.successor(Some(epoch.saturating_sub(1)));
        }
    }

    /// Makes the restored state this worker's.
    fn install<E: Event + 'static>(
        &self,
        epoch: Timestamp,
        sources: Vec<(u32, SourceState)>,
        restored: Restored<E>,
    ) -> Timestamp {
        self.cuts.saw(epoch);
        for (_, source) in &sources {
            // Where it goes on (a cut chosen with every process is above).
            self.cuts.saw(source.lateness.frontier());
        }
        let mut inner = self.inner.borrow_mut();
        inner.restored_sources = sources;
        inner.restored_epoch = Some(epoch);
        inner.restored_count = restored
            .rules
            .as_ref()
            .map_or_else(Counted::default, |r| r.read);
        inner.taken = epoch;
        inner.restored = Some(Box::new(restored));
        epoch
    }

    /// The state source `source` had at the restored cut, if any: open its
    /// input at [`SourceState::position`].
    pub fn source_state(&self, source: u32) -> Option<SourceState> {
        let inner = self.inner.borrow();
        inner
            .restored_sources
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, state)| state.clone())
    }

    /// The events and late events the restored sources had counted at
    /// the cut (0 for a fresh run): where the numbers a resumed run shows
    /// go on from.
    pub fn restored_counts(&self) -> (u64, u64) {
        let inner = self.inner.borrow();
        (inner.restored_sources.iter()).fold((0, 0), |(events, late), (_, state)| {
            let end = state.lateness.end();
            (events + end.events, late + end.late)
        })
    }

    /// The restored state, for the operator (taken once).
    pub(crate) fn take_restored<E: Event + 'static>(&self) -> Option<Restored<E>> {
        let restored = self.inner.borrow_mut().restored.take()?;
        restored.downcast::<Restored<E>>().ok().map(|r| *r)
    }

    /// The cut at `f` cannot be whole.
    pub(crate) fn fail(&self, f: Timestamp) {
        self.cuts.failed.store(f, Ordering::SeqCst);
    }

    /// Source `source`'s capability moves from `old` to `new` (`None`: it
    /// ends); `state` is its state now. Returns where the capability may
    /// go (`new`, or less while worker 0 chooses a cut: see
    /// [`Requests::ask`]).
    pub(crate) fn passing(
        &self,
        source: u32,
        old: Timestamp,
        new: Option<Timestamp>,
        state: impl FnOnce() -> SourceState,
    ) -> Option<Timestamp> {
        // First where a hold lets it go, then the request: a request that
        // lets it past a hold was stored before the hold was lifted.
        let new = new.map(|t| self.cuts.pass(old, t));
        let mut inner = self.inner.borrow_mut();
        let counted = inner
            .count
            .as_ref()
            .map_or_else(Counted::default, |count| count());
        let recorded = inner.sources.entry(source).or_default();
        let f = self.cuts.requested();
        match new {
            None => {
                let state = state();
                if let Some(f) = f.filter(|&f| old < f) {
                    recorded.at = Some((f, state.clone(), counted));
                }
                recorded.ended = Some((old, state, counted));
            }
            Some(t) => {
                if let Some(f) = f.filter(|&f| old < f && f <= t) {
                    recorded.at = Some((f, state(), counted));
                }
            }
        }
        new
    }

    /// The input frontier of the worker's CEP operator (`Timestamp::MAX`
    /// once empty; `Timestamp::MIN` before it was first seen).
    pub(crate) fn frontier(&self) -> Timestamp {
        self.inner.borrow().frontier
    }

    /// The input frontier of the worker's CEP operator is at `at` (`None`:
    /// empty).
    pub(crate) fn frontier_is(&self, at: Option<Timestamp>) {
        self.inner.borrow_mut().frontier = at.unwrap_or(Timestamp::MAX);
    }

    /// The worker's sources' states at `f`, or `None` when one passed `f`
    /// without recording it (the cut failed: said in [`Cuts`]). At the
    /// cut before the end ([`Cuts::before_end`], `at_end`), each source's
    /// state at its end.
    ///
    /// With them, what the worker's readers had counted there (now, for
    /// a worker without sources).
    pub(crate) fn sources_at(
        &self,
        f: Timestamp,
        at_end: bool,
    ) -> Option<(Vec<(u32, SourceState)>, Counted)> {
        let inner = self.inner.borrow();
        let mut states = Vec::new();
        let mut counted = None;
        for (&source, recorded) in &inner.sources {
            let (state, at) = match (&recorded.at, &recorded.ended) {
                (_, Some((_, ended, n))) if at_end => (ended, n),
                (Some((at, state, n)), _) if *at == f => (state, n),
                (_, Some((old, ended, n))) if *old < f => (ended, n),
                _ => {
                    self.fail(f);
                    return None;
                }
            };
            states.push((source, state.clone()));
            let sum: &mut Counted = counted.get_or_insert_with(Counted::default);
            (sum[0], sum[1]) = (sum[0] + at[0], sum[1] + at[1]);
        }
        let now = || {
            inner
                .count
                .as_ref()
                .map_or_else(Counted::default, |count| count())
        };
        Some((states, counted.unwrap_or_else(now)))
    }

    /// Saves the worker's state at `f`.
    pub(crate) fn save(&self, f: Timestamp, piece: Saved) {
        (self.inner.borrow_mut().save)(f, piece);
    }
}

mod saved;
pub(crate) use saved::{checked, encode_stash, fields_of, SavedPiece, WorkerState, HELD};
