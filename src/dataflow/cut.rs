//! Snapshots across workers: every worker's state at a common frontier.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::input::Handle as InputHandle;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Exchange, Input, Operator};

use crate::dataflow::route::groups;
use crate::dataflow::{GroupEngine, Lateness, Plan, SourceEnd, Stamped};
use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::primitives::Timestamp;

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
/// `f` or beyond; each worker's [`cep_cut`](crate::dataflow::cep_cut), once
/// its input frontier passes `f`, hands its [`WorkerCut`]'s save function
/// the worker's state: its sources' states, its engines' snapshots, the
/// source ends received and the events still stashed that were sent below
/// `f`.
///
/// ```
/// use cepheid::dataflow::Cuts;
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
        })
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
    /// ([`Feed::stop`](crate::dataflow::Feed::stop)): once the input
    /// frontier of a downstream operator is empty, every worker's state
    /// at it has been saved. See [`cep_cut`](crate::dataflow::cep_cut).
    pub fn last_cut(&self) -> Option<Timestamp> {
        let f = self.last.load(Ordering::SeqCst);
        (f != NONE).then_some(f)
    }

    /// A worker took the last cut, at `f`.
    pub(crate) fn took_last(&self, f: Timestamp) {
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
/// use cepheid::dataflow::{cut_requests, Cuts};
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
    /// [`Feed::send_at`](crate::dataflow::Feed::send_at)): a file's
    /// identity and byte offset, say. Empty otherwise.
    pub place: Vec<u8>,
    /// Its clock and counts.
    pub lateness: Lateness,
    /// Had it ended (sent its [`SourceEnd`])? A live source stopped by
    /// [`Feed::stop`](crate::dataflow::Feed::stop) has not: it goes on
    /// from its place when restored.
    pub ended: bool,
}

/// Where a live input is after a batch, for cuts: given with the batch to
/// [`Feed::send_at`](crate::dataflow::Feed::send_at), and recorded in the
/// [`SourceState`] of a [`live_source_cut`](crate::dataflow::live_source_cut)
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

/// An input that says where it is, for [`source_cut`](crate::dataflow::source_cut):
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
/// [`source_cut`](crate::dataflow::source_cut) and to
/// [`cep_cut`](crate::dataflow::cep_cut) of the worker.
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
    save: Box<dyn FnMut(Timestamp, Vec<u8>)>,
    /// The input frontier of the worker's CEP operator (every source's
    /// capability is at or above it).
    frontier: Timestamp,
}

#[derive(Default)]
struct Recorded {
    at: Option<(Timestamp, SourceState)>,
    /// Its state at its end, and its capability then.
    ended: Option<(Timestamp, SourceState)>,
}

/// A worker's operator state, restored.
pub(crate) struct Restored<E: Event + 'static> {
    pub epoch: Timestamp,
    pub engines: Vec<GroupEngine<E>>,
    pub stash: Vec<(u32, Stamped<E>)>,
    pub ends: Vec<SourceEnd>,
}

/// What a worker saves at a cut (postcard).
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerState {
    pub epoch: Timestamp,
    pub sources: Vec<(u32, SourceState)>,
    pub ends: Vec<SourceEnd>,
    /// The engines' snapshots, in group order.
    pub engines: Vec<Vec<u8>>,
    /// Stashed events sent below the epoch, with their group, encoded.
    pub stash: Vec<u8>,
}

impl WorkerCut {
    /// A worker's part of `cuts`; `save` gets the worker's state at each
    /// cut it takes (its epoch and bytes: store them where
    /// [`restore`](WorkerCut::restore) can find them).
    pub fn new(cuts: Arc<Cuts>, save: impl FnMut(Timestamp, Vec<u8>) + 'static) -> WorkerCut {
        WorkerCut {
            cuts,
            inner: Rc::new(RefCell::new(Inner {
                sources: BTreeMap::new(),
                restored_sources: Vec::new(),
                restored: None,
                save: Box::new(save),
                frontier: Timestamp::MIN,
            })),
        }
    }

    /// Goes on from a state saved at a cut, before the dataflow is built
    /// with `plan` (the plan and worker count of the run that saved it);
    /// returns its epoch. Fails with [`ErrorKind::Snapshot`] when the bytes
    /// are not such a state or do not fit the plan (its engines'
    /// [`Engine::restore`](crate::Engine::restore) fails).
    pub fn restore<E>(&self, plan: &Plan<E>, bytes: &[u8]) -> Result<Timestamp, Error>
    where
        E: Event + DeserializeOwned + 'static,
    {
        let bad = |e: postcard::Error| {
            Error::new(
                ErrorKind::Snapshot,
                format!("not a worker's state at a cut: {e}"),
            )
        };
        let state: WorkerState = postcard::from_bytes(bytes).map_err(bad)?;
        let mut engines = plan.engines(&groups(plan))?;
        if engines.len() != state.engines.len() {
            return Err(Error::new(
                ErrorKind::Snapshot,
                "the worker's state was saved with other patterns",
            ));
        }
        for ((engine, _), saved) in engines.iter_mut().zip(&state.engines) {
            engine.restore(&saved[..])?;
        }
        let stash: Vec<(u32, Stamped<E>)> = postcard::from_bytes(&state.stash).map_err(bad)?;
        if stash
            .iter()
            .any(|(group, _)| *group as usize >= engines.len())
        {
            return Err(Error::new(
                ErrorKind::Snapshot,
                "the worker's state names a group of patterns the plan does not have",
            ));
        }
        let epoch = state.epoch;
        self.cuts.saw(epoch);
        for (_, source) in &state.sources {
            // Where it goes on (a cut chosen with every process is above).
            self.cuts.saw(source.lateness.frontier());
        }
        let mut inner = self.inner.borrow_mut();
        inner.restored_sources = state.sources;
        inner.restored = Some(Box::new(Restored {
            epoch,
            engines,
            stash,
            ends: state.ends,
        }));
        Ok(epoch)
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
        let recorded = inner.sources.entry(source).or_default();
        let f = self.cuts.requested();
        match new {
            None => {
                let state = state();
                if let Some(f) = f.filter(|&f| old < f) {
                    recorded.at = Some((f, state.clone()));
                }
                recorded.ended = Some((old, state));
            }
            Some(t) => {
                if let Some(f) = f.filter(|&f| old < f && f <= t) {
                    recorded.at = Some((f, state()));
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
    /// without recording it (the cut failed: said in [`Cuts`]).
    pub(crate) fn sources_at(&self, f: Timestamp) -> Option<Vec<(u32, SourceState)>> {
        let inner = self.inner.borrow();
        let mut states = Vec::new();
        for (&source, recorded) in &inner.sources {
            match (&recorded.at, &recorded.ended) {
                (Some((at, state)), _) if *at == f => states.push((source, state.clone())),
                (_, Some((old, ended))) if *old < f => states.push((source, ended.clone())),
                _ => {
                    self.fail(f);
                    return None;
                }
            }
        }
        Some(states)
    }

    /// Saves the worker's state at `f`.
    pub(crate) fn save(&self, f: Timestamp, bytes: Vec<u8>) {
        (self.inner.borrow_mut().save)(f, bytes);
    }
}

/// The stash's events, encoded (`E` is the operator's event type).
pub(crate) fn encode_stash<E: Serialize>(events: &[(u32, &Stamped<E>)]) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(events).map_err(|e| {
        Error::new(
            ErrorKind::Snapshot,
            format!("cannot serialize the stash: {e}"),
        )
    })
}

/// Encodes a worker's state.
pub(crate) fn encode(state: &WorkerState) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(state).map_err(|e| {
        Error::new(
            ErrorKind::Snapshot,
            format!("cannot serialize a worker's state: {e}"),
        )
    })
}
