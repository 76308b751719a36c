//! Snapshots across workers: every worker's state at a common frontier.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

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
        })
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
    /// By group, then key group.
    pub pieces: Vec<Piece<E>>,
    pub stash: Vec<(u32, Stamped<E>)>,
    pub ends: Vec<SourceEnd>,
}

/// One engine of a worker at a cut: group `group`'s keys whose key group is
/// in `[from, to)`, as [`Engine::snapshot`](crate::Engine::snapshot) wrote
/// them.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedPiece {
    pub group: u32,
    pub from: u64,
    pub to: u64,
    pub engine: Vec<u8>,
}

/// What a worker saved at a cut, read from its piece (its engines, its
/// [`Part::Sources`] and [`Part::Stash`]; in a cut of format 5 to 7, the
/// whole of it in postcard, [`Part::Legacy`]).
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerState {
    pub epoch: Timestamp,
    pub sources: Vec<(u32, SourceState)>,
    pub ends: Vec<SourceEnd>,
    /// The engines' snapshots, by group then key group.
    pub pieces: Vec<SavedPiece>,
    /// Stashed events sent below the epoch, with their group, encoded.
    pub stash: Vec<u8>,
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
            })),
        }
    }

    /// Goes on from a state saved at a cut, before the dataflow is built
    /// with `plan` (the plan and worker count of the run that saved it);
    /// returns its epoch. Fails with [`ErrorKind::Snapshot`] when the piece
    /// is not such a state or does not fit the plan (its engines'
    /// [`Engine::restore`](crate::Engine::restore) fails).
    pub fn restore<E>(&self, plan: &Plan<E>, saved: &Saved) -> Result<Timestamp, Error>
    where
        E: Event + DeserializeOwned + 'static,
    {
        let bad = not_a_state;
        let state = WorkerState::of(saved)?;
        let members = groups(plan);
        let mut pieces = Vec::with_capacity(state.pieces.len());
        for saved in &state.pieces {
            let mut piece = fresh(plan, &members, saved.group, (saved.from, saved.to))?;
            piece.engine.0.restore(&saved.engine[..])?;
            pieces.push(piece);
        }
        check_pieces(&pieces, members.len())?;
        let stash: Vec<(u32, Stamped<E>)> = postcard::from_bytes(&state.stash).map_err(bad)?;
        if stash
            .iter()
            .any(|(group, _)| *group as usize >= members.len())
        {
            return Err(Error::new(
                ErrorKind::Snapshot,
                "the worker's state names a group of patterns the plan does not have",
            ));
        }
        Ok(self.install(state.epoch, state.sources, pieces, stash, state.ends))
    }

    /// Goes on, as worker `index` of `workers`, from the states every
    /// worker of a run on *another* number of workers saved at one cut
    /// (`states`, all of them, in worker order), before the dataflow is
    /// built with `plan`; returns the cut's epoch. Fails as
    /// [`restore`](WorkerCut::restore) does, and when the states are not of
    /// one cut.
    ///
    /// - **Keys** go to the worker of their key group (see
    ///   [`key_hash`](crate::key_hash)): each old engine whose
    ///   range of key groups meets this worker's is restored, and keeps the
    ///   keys of the common range (one engine per such range; their
    ///   counts are kept by the worker whose range holds the old range's
    ///   start, so that they add up once).
    /// - **Events in flight** (stashed, sent below the epoch) go to the
    ///   worker of their key, as the run's routing sends them.
    /// - **Sources**: each old source that had not ended is *retired*: its
    ///   clock's end ([`Lateness::end`]: the largest time it read, its
    ///   watermark, punctuation, counts) joins the ends received, as if it
    ///   had ended at the cut. A source of this worker goes on with a clock
    ///   of the same settings whose watermark starts at the least
    ///   watermark of the retired sources of its number (none when they had
    ///   all ended), no time seen and zero counts; its place is the
    ///   caller's to compute from every old source's
    ///   ([`saved_sources`](WorkerCut::saved_sources)). What the old
    ///   sources of a number could not read (`unread`) goes to worker 0.
    pub fn rescale<E>(
        &self,
        plan: &Plan<E>,
        states: &[&Saved],
        index: usize,
        workers: usize,
    ) -> Result<Timestamp, Error>
    where
        E: Event + Clone + DeserializeOwned + 'static,
    {
        let bad = not_a_state;
        let (olds, epoch) = one_cut(states)?;
        let first = &olds[0];
        let members = groups(plan);
        let (index32, workers32) = (
            u32::try_from(index).unwrap_or(u32::MAX),
            u32::try_from(workers).unwrap_or(u32::MAX),
        );
        let (from, to) = worker_groups(index32, workers32);
        // The engines: the old ranges that meet this worker's.
        let mut pieces = Vec::new();
        for saved in olds.iter().flat_map(|old| &old.pieces) {
            let (lo, hi) = (saved.from.max(from), saved.to.min(to));
            if lo >= hi {
                continue;
            }
            let mut piece = fresh(plan, &members, saved.group, (lo, hi))?;
            piece.engine.0.restore(&saved.engine[..])?;
            let keeps_counts = from <= saved.from && saved.from < to;
            piece.engine.0.retain_keys(
                |key| (lo..hi).contains(&u64::from(key_group(key))),
                keeps_counts,
            );
            pieces.push(piece);
        }
        pieces.sort_by_key(|p| (p.group, p.from));
        for group in 0..members.len() as u32 {
            if !pieces.iter().any(|p| p.group == group) {
                // (cannot happen: the old ranges cover every key group)
                pieces.push(fresh(plan, &members, group, (from, to))?);
            }
        }
        pieces.sort_by_key(|p| (p.group, p.from));
        check_pieces(&pieces, members.len())?;
        // The events in flight whose key is now this worker's.
        let mut router = Router::new(plan, &members, index, workers);
        let mut stash = Vec::new();
        for old in &olds {
            let events: Vec<(u32, Stamped<E>)> = postcard::from_bytes(&old.stash).map_err(bad)?;
            for (group, stamped) in events {
                if group as usize >= members.len() {
                    return Err(Error::new(
                        ErrorKind::Snapshot,
                        "the worker's state names a group of patterns the plan does not have",
                    ));
                }
                let (worker, _) = router.worker(group as usize, &stamped.event, stamped.offset);
                if worker == index32 {
                    stash.push((group, stamped));
                }
            }
        }
        // The sources: the ended ones' ends were received by every old
        // worker; the others retire.
        let mut ends = first.ends.clone();
        let mut sources: BTreeMap<u32, SourceState> = BTreeMap::new();
        for (number, state) in olds.iter().flat_map(|old| &old.sources) {
            let next = sources.entry(*number).or_insert_with(|| SourceState {
                position: 0,
                unread: 0,
                place: Vec::new(),
                lateness: state.lateness.successor(None),
                ended: true,
            });
            if index == 0 {
                next.unread += state.unread;
            }
            if state.ended {
                continue;
            }
            ends.push(state.lateness.end());
            // The least watermark of the retired ones.
            let floor = state.lateness.watermark();
            let least = match (next.ended, floor, next.lateness.watermark()) {
                (true, floor, _) => floor,
                (false, Some(a), Some(b)) => Some(a.min(b)),
                (false, _, _) => None,
            };
            next.lateness = state.lateness.successor(least);
            next.ended = false;
        }
        // (A source whose old ones had all ended stays ended: they read
        // the whole input.)
        Ok(self.install(epoch, sources.into_iter().collect(), pieces, stash, ends))
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

    /// The piece of one worker that ran every group of `plan`'s patterns
    /// over every key, made from one engine that ran all of them (one
    /// engine's checkpoint), as [`restore`](WorkerCut::restore) and
    /// [`rescale`](WorkerCut::rescale) read it:
    ///
    /// - **Engines**: one per group, each the whole engine with only the
    ///   group's patterns kept ([`Engine::retain_patterns`](crate::Engine::retain_patterns)),
    ///   deciding no lateness as a worker's engines do.
    /// - **Events waiting** for the engine's watermark
    ///   ([`Engine::take_waiting`](crate::Engine::take_waiting)) are the
    ///   stash, one copy per group, in their order: their offsets are
    ///   the ones just below `position` (the place of the last line the
    ///   engine was given, [`FileChunk::offset`](crate::FileChunk::offset)
    ///   of a reader of the whole file), so that equal times keep the
    ///   order of arrival and come before what is read after.
    /// - **The source** (number 0) goes on at `position`, with `clock`'s
    ///   settings in the state of the engine's clock (its watermark,
    ///   largest time seen, the waiting times, its counts; `punctuated`,
    ///   `unread`); the cut's epoch is just above its watermark, where the
    ///   engines are.
    ///
    /// Fails with [`ErrorKind::Snapshot`] when the engine does not run the
    /// plan's patterns in the plan's order, with its settings.
    pub fn from_engine<E>(
        plan: &Plan<E>,
        mut engine: crate::Engine<E>,
        clock: &Lateness,
        (position, unread): (u64, u64),
        punctuated: bool,
    ) -> Result<Saved, Error>
    where
        E: Event + Clone + Serialize + DeserializeOwned + 'static,
    {
        let waiting = engine.take_waiting();
        let stats = engine.stats();
        let lateness = clock.resumed(
            (engine.current_watermark(), engine.max_seen()),
            waiting.iter().map(|(ts, _)| *ts),
            // (the source counted the waiting events as it read them)
            (stats.events + waiting.len() as u64, stats.late),
            punctuated,
        );
        let epoch = lateness.frontier();
        let mut whole = Vec::new();
        engine.snapshot(&mut whole)?;
        drop(engine);
        let members = groups(plan);
        let all: Vec<usize> = (0..plan.patterns.len()).collect();
        let (from, to) = worker_groups(0, 1);
        let mut pieces = Vec::with_capacity(members.len());
        for (group, patterns) in members.iter().enumerate() {
            let (mut engine, _) = (plan.engines(std::slice::from_ref(&all))?)
                .pop()
                .expect("one group, one engine");
            engine.restore(&whole[..])?;
            engine.retain_patterns(|p, _| patterns.contains(&p));
            let mut bytes = Vec::new();
            engine.snapshot(&mut bytes)?;
            pieces.push(SavedPiece {
                group: u32::try_from(group).unwrap_or(u32::MAX),
                from,
                to,
                engine: bytes,
            });
        }
        let n = waiting.len() as u64;
        let stamped: Vec<Stamped<E>> = (waiting.into_iter().enumerate())
            .map(|(i, (ts, event))| Stamped {
                ts,
                source: 0,
                offset: position.saturating_sub(n - 1 - i as u64),
                event,
            })
            .collect();
        let stash: Vec<(u32, &Stamped<E>)> = (0..members.len() as u32)
            .flat_map(|group| stamped.iter().map(move |s| (group, s)))
            .collect();
        WorkerState {
            epoch,
            sources: vec![(
                0,
                SourceState {
                    position,
                    unread,
                    place: Vec::new(),
                    lateness,
                    ended: false,
                },
            )],
            ends: Vec::new(),
            pieces,
            stash: encode_stash(&stash)?,
        }
        .piece()
    }

    /// The sources' states in a worker's state saved at a cut (what
    /// [`rescale`](WorkerCut::rescale) leaves to the caller: the old
    /// sources' places).
    pub fn saved_sources(saved: &Saved) -> Result<Vec<(u32, SourceState)>, Error> {
        Ok(WorkerState::of(saved)?.sources)
    }

    /// Makes the restored state this worker's.
    fn install<E: Event + 'static>(
        &self,
        epoch: Timestamp,
        sources: Vec<(u32, SourceState)>,
        pieces: Vec<Piece<E>>,
        stash: Vec<(u32, Stamped<E>)>,
        ends: Vec<SourceEnd>,
    ) -> Timestamp {
        self.cuts.saw(epoch);
        for (_, source) in &sources {
            // Where it goes on (a cut chosen with every process is above).
            self.cuts.saw(source.lateness.frontier());
        }
        let mut inner = self.inner.borrow_mut();
        inner.restored_sources = sources;
        inner.restored_epoch = Some(epoch);
        inner.restored = Some(Box::new(Restored {
            epoch,
            pieces,
            stash,
            ends,
        }));
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
    /// without recording it (the cut failed: said in [`Cuts`]). At the
    /// cut before the end ([`Cuts::before_end`], `at_end`), each source's
    /// state at its end.
    pub(crate) fn sources_at(&self, f: Timestamp, at_end: bool) -> Option<Vec<(u32, SourceState)>> {
        let inner = self.inner.borrow();
        let mut states = Vec::new();
        for (&source, recorded) in &inner.sources {
            match (&recorded.at, &recorded.ended) {
                (_, Some((_, ended))) if at_end => states.push((source, ended.clone())),
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
    pub(crate) fn save(&self, f: Timestamp, piece: Saved) {
        (self.inner.borrow_mut().save)(f, piece);
    }
}

/// What the workers of a cut held, put into one engine by [`merge`].
pub struct Merged {
    /// Every worker's sources' states, in worker order.
    pub sources: Vec<Vec<(u32, SourceState)>>,
    /// The ends of the sources that had ended (received by every worker).
    pub ends: Vec<SourceEnd>,
}

/// What a worker's state that cannot be read is.
fn not_a_state(e: postcard::Error) -> Error {
    Error::new(
        ErrorKind::Snapshot,
        format!("not a worker's state at a cut: {e}"),
    )
}

/// The workers' states `states`, read, and the epoch of their cut; an
/// error when there is none, or they are of different cuts.
fn one_cut(states: &[&Saved]) -> Result<(Vec<WorkerState>, i64), Error> {
    let olds: Vec<WorkerState> = states
        .iter()
        .map(|piece| WorkerState::of(piece))
        .collect::<Result<_, _>>()?;
    let Some(first) = olds.first() else {
        return Err(Error::new(ErrorKind::Snapshot, "no worker's state"));
    };
    let epoch = first.epoch;
    if olds.iter().any(|old| old.epoch != epoch) {
        return Err(Error::new(
            ErrorKind::Snapshot,
            "the workers' states are of different cuts",
        ));
    }
    Ok((olds, epoch))
}

/// Puts the states every worker of a run saved at one cut (`states`, all
/// of them, in worker order) into `engine`, an engine of one run that
/// has every pattern of theirs and has seen nothing: each worker's engines
/// ([`Engine::absorb`](crate::Engine::absorb): their keys are apart), and
/// the events they had stashed, once each (one copy per group was
/// stashed), waiting for the engine's watermark at the cut (the epoch
/// less one) in the order the workers would have processed them, with the
/// largest time any source had read and the events they found late
/// ([`Engine::resume_clock`](crate::Engine::resume_clock)). So a cut of
/// workers resumes on one engine; where its input goes on is the
/// caller's (from the sources' states returned). Fails with
/// [`ErrorKind::Snapshot`] when the states are not of one cut, or an
/// engine of theirs is not the plan's (another field numbering, other
/// patterns).
pub fn merge<E>(states: &[&Saved], engine: &mut crate::Engine<E>) -> Result<Merged, Error>
where
    E: Event + Clone + DeserializeOwned + 'static,
{
    let bad = not_a_state;
    let (olds, epoch) = one_cut(states)?;
    let first = &olds[0];
    let fields = fields_of::<E>(engine.fields());
    let mut stash: Vec<Stamped<E>> = Vec::new();
    let (mut max_seen, mut late) = (None, 0);
    for old in &olds {
        for saved in &old.pieces {
            let piece = crate::Engine::<E>::from_snapshot_rules(&saved.engine[..])?;
            if fields_of::<E>(piece.fields())
                .iter()
                .zip(&fields)
                .any(|(a, b)| a != b)
            {
                return Err(Error::new(
                    ErrorKind::Snapshot,
                    "a worker's engine numbers the fields otherwise",
                ));
            }
            engine.absorb(piece, saved.group == 0)?;
        }
        let events: Vec<(u32, Stamped<E>)> = postcard::from_bytes(&old.stash).map_err(bad)?;
        stash.extend(events.into_iter().filter(|(g, _)| *g == 0).map(|(_, s)| s));
        // (an ended source's end is in the ends received)
        for (_, state) in old.sources.iter().filter(|(_, s)| !s.ended) {
            max_seen = max_seen.max(state.lateness.end().max_seen);
            late += state.lateness.end().late;
        }
    }
    for end in &first.ends {
        max_seen = max_seen.max(end.max_seen);
        late += end.late;
    }
    stash.sort_by_key(|s| (s.ts, s.source, s.offset));
    let waiting = stash.into_iter().map(|s| (s.ts, s.event)).collect();
    let watermark = (epoch != Timestamp::MIN).then(|| epoch - 1);
    engine.resume_clock((watermark, max_seen), waiting, late)?;
    Ok(Merged {
        sources: olds.iter().map(|old| old.sources.clone()).collect(),
        ends: first.ends.clone(),
    })
}

/// The paths of a `Record` engine's fields, by id (none for typed events).
fn fields_of<E: Event + 'static>(fields: &E::Fields) -> Vec<cepheid_engine::FieldPath> {
    (fields as &dyn Any)
        .downcast_ref::<crate::record::FieldTable>()
        .map_or_else(Vec::new, |table| table.paths())
}

/// A fresh engine of `plan` for group `group`, over key groups `range`.
fn fresh<E: Event + 'static>(
    plan: &Plan<E>,
    members: &[Vec<usize>],
    group: u32,
    range: (u64, u64),
) -> Result<Piece<E>, Error> {
    let Some(patterns) = members.get(group as usize) else {
        return Err(Error::new(
            ErrorKind::Snapshot,
            "the worker's state was saved with other patterns",
        ));
    };
    let engine = plan
        .engines(std::slice::from_ref(patterns))?
        .pop()
        .expect("one group, one engine");
    Ok(Piece {
        group,
        from: range.0,
        to: range.1,
        engine,
    })
}

/// Checks a worker's engines: by group then key group, at least one per
/// group, ranges apart.
fn check_pieces<E: Event + 'static>(pieces: &[Piece<E>], groups: usize) -> Result<(), Error> {
    let bad = || {
        Error::new(
            ErrorKind::Snapshot,
            "the worker's state was saved with other patterns",
        )
    };
    for group in 0..groups as u32 {
        let mine: Vec<&Piece<E>> = pieces.iter().filter(|p| p.group == group).collect();
        if mine.is_empty() || mine.windows(2).any(|w| w[0].to > w[1].from) {
            return Err(bad());
        }
    }
    if pieces.iter().any(|p| p.group as usize >= groups)
        || pieces
            .windows(2)
            .any(|w| (w[0].group, w[0].from) > (w[1].group, w[1].from))
    {
        return Err(bad());
    }
    Ok(())
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

impl WorkerState {
    /// The worker's state saved in `piece`.
    fn of(piece: &Saved) -> Result<WorkerState, Error> {
        if let Some(old) = piece.get(Part::Legacy) {
            return postcard::from_bytes(old).map_err(not_a_state);
        }
        let sources = piece.get(Part::Sources).ok_or_else(|| not_a("sources"))?;
        let (epoch, sources, ends) = postcard::from_bytes(sources).map_err(not_a_state)?;
        let pieces = (piece.engines().iter())
            .map(|engine| {
                Ok(SavedPiece {
                    group: engine
                        .patterns()
                        .ok_or_else(|| not_a("group of patterns"))?,
                    from: engine.keys().0,
                    to: engine.keys().1,
                    engine: engine.snapshot().to_vec(),
                })
            })
            .collect::<Result<_, Error>>()?;
        let stash = piece.get(Part::Stash).ok_or_else(|| not_a("stash"))?;
        Ok(WorkerState {
            epoch,
            sources,
            ends,
            pieces,
            stash: stash.to_vec(),
        })
    }

    /// The worker's piece of the checkpoint: its engines, and its sources
    /// and stash as parts of their own.
    pub(crate) fn piece(self) -> Result<Saved, Error> {
        let mut piece = Saved::new();
        for saved in self.pieces {
            let keys = (saved.from, saved.to);
            piece.engine(EngineState::group(saved.group, keys, saved.engine));
        }
        let sources = postcard::to_allocvec(&(self.epoch, &self.sources, &self.ends));
        let cannot = |e| Error::new(ErrorKind::Snapshot, format!("cannot save the sources: {e}"));
        piece.set(Part::Sources, sources.map_err(cannot)?);
        piece.set(Part::Stash, self.stash);
        Ok(piece)
    }
}

/// A worker's piece without `what`.
fn not_a(what: &str) -> Error {
    Error::new(
        ErrorKind::Snapshot,
        format!("not a worker's state at a cut: no {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Output;
    use crate::route::group_worker;
    use crate::value::Value;
    use cepheid_engine::io::{Decoder, Format, Item};
    use cepheid_engine::{Record, Rules};

    fn plan() -> Plan<Record> {
        let rules = Rules::parse(
            "r.cep",
            "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }",
        )
        .unwrap();
        let mut plan = Plan::new();
        plan.add(&rules).unwrap();
        plan
    }

    fn event(plan: &Plan<Record>, ts: i64, user: &str, n: i64) -> Record {
        let mut decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
        let line = format!(r#"{{"ts":{ts},"user":"{user}","n":{n}}}"#);
        match decoder.decode(line.as_bytes()).unwrap() {
            Item::Event(_, event) => event,
            _ => panic!("not an event"),
        }
    }

    fn users() -> Vec<String> {
        (0..40).map(|i| format!("u{i}")).collect()
    }

    fn kg(user: &str) -> u32 {
        key_group(&[Value::from(user)])
    }

    /// Old worker `index` of `workers` at a cut at 10: an `a` of each of
    /// its users pushed (a partial match each), its source `source`.
    fn old(plan: &Plan<Record>, index: u32, workers: u32, source: SourceState) -> Saved {
        let members = groups(plan);
        let (from, to) = worker_groups(index, workers);
        let mut piece = fresh(plan, &members, 0, (from, to)).unwrap();
        let mut out: Vec<Output<Record>> = Vec::new();
        for user in users() {
            if group_worker(kg(&user), workers as usize) == index as usize {
                let a = event(plan, 1, &user, 1);
                piece.engine.0.push(1, a, &mut out);
            }
        }
        piece.engine.0.watermark(9, &mut out);
        let mut bytes = Vec::new();
        piece.engine.0.snapshot(&mut bytes).unwrap();
        (WorkerState {
            epoch: 10,
            sources: vec![(0, source)],
            ends: Vec::new(),
            pieces: vec![SavedPiece {
                group: 0,
                from,
                to,
                engine: bytes,
            }],
            stash: encode_stash::<Record>(&[]).unwrap(),
        })
        .piece()
        .unwrap()
    }

    /// A source (delay 49 ms) that read one event at `max_seen`.
    fn source(max_seen: i64, ended: bool, unread: u64) -> SourceState {
        let mut lateness = Lateness::new(49);
        assert!(lateness.admit(max_seen));
        SourceState {
            position: 0,
            unread,
            place: Vec::new(),
            lateness,
            ended,
        }
    }

    #[test]
    fn a_rescaled_worker_takes_its_keys_once_and_retires_the_old_sources() {
        let plan = plan();
        let states = [
            old(&plan, 0, 2, source(100, false, 2)),
            old(&plan, 1, 2, source(120, false, 3)),
        ];
        let states: Vec<&Saved> = states.iter().collect();
        let (mut keys, mut events, mut matches) = (0, 0, 0);
        for index in 0..3 {
            let cut = WorkerCut::new(Cuts::new(), |_, _| {});
            assert_eq!(cut.rescale(&plan, &states, index, 3).unwrap(), 10);
            let state = cut.source_state(0).unwrap();
            // The least watermark of the retired sources (100 - 49 - 1),
            // nothing seen, nothing counted; what they could not read
            // goes to worker 0.
            assert_eq!(state.lateness.watermark(), Some(50));
            assert_eq!(state.lateness.end().max_seen, None);
            assert_eq!(state.lateness.end().events, 0);
            assert!(!state.ended);
            assert_eq!(state.unread, if index == 0 { 5 } else { 0 });
            let mut restored = cut.take_restored::<Record>().unwrap();
            // The retired sources' ends: their largest times and counts.
            let ends: Vec<_> = (restored.ends.iter())
                .map(|e| (e.max_seen, e.watermark, e.events))
                .collect();
            assert_eq!(ends, [(Some(100), Some(50), 1), (Some(120), Some(70), 1)]);
            let mut out: Vec<Output<Record>> = Vec::new();
            for piece in &mut restored.pieces {
                keys += piece.engine.0.live_keys();
                events += piece.engine.0.stats().events;
                // Each user's `b`, to the engine whose range holds its key.
                for user in users() {
                    if (piece.from..piece.to).contains(&u64::from(kg(&user))) {
                        let b = event(&plan, 20, &user, 2);
                        piece.engine.0.push(20, b, &mut out);
                    }
                }
                piece.engine.0.watermark(30, &mut out);
            }
            matches += out.len();
        }
        // Every key once, every count once, every partial match completes.
        assert_eq!((keys, events, matches), (40, 40, 40));
    }

    #[test]
    fn a_rescaled_source_goes_on_from_the_place_and_clock_of_its_share() {
        let plan = plan();
        let states = [
            old(&plan, 0, 2, source(100, false, 0)),
            old(&plan, 1, 2, source(120, false, 0)),
        ];
        let states: Vec<&Saved> = states.iter().collect();
        let cuts = Cuts::new();
        let cut = WorkerCut::new(Arc::clone(&cuts), |_, _| {});
        cut.rescale(&plan, &states, 2, 3).unwrap();
        // Its share's watermark (its splits' least) is above the retired
        // sources' least (50): its clock starts there, nothing counted.
        cut.go_on(0, vec![7], 40, Some(60));
        let state = cut.source_state(0).unwrap();
        assert_eq!((state.place, state.position), (vec![7], 40));
        assert_eq!(state.lateness.watermark(), Some(60));
        assert_eq!(state.lateness.end().events, 0);
        // (a cut asked for now is above where it goes on)
        assert!(cuts.request() > 61);
        // A share whose watermark is not known (or below): the least stays.
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        cut.rescale(&plan, &states, 0, 3).unwrap();
        cut.go_on(0, vec![1], 0, Some(10));
        assert_eq!(cut.source_state(0).unwrap().lateness.watermark(), Some(50));
        cut.go_on(0, vec![1], 0, None);
        assert_eq!(cut.source_state(0).unwrap().lateness.watermark(), Some(50));
        // A source whose old ones had all ended stays ended, untouched.
        let ended = [
            old(&plan, 0, 2, source(100, true, 0)),
            old(&plan, 1, 2, source(120, true, 0)),
        ];
        let ended: Vec<&Saved> = ended.iter().collect();
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        cut.rescale(&plan, &ended, 1, 3).unwrap();
        cut.go_on(0, vec![1], 5, Some(60));
        let state = cut.source_state(0).unwrap();
        assert!(state.ended && state.place.is_empty() && state.position == 0);
    }

    #[test]
    fn one_engine_becomes_a_cut_of_one_worker_that_restores_and_rescales() {
        let rules = Rules::parse(
            "r.cep",
            "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }
             pattern g { match a followed by b where a: n == 1  b: n == 3 }",
        )
        .unwrap();
        let mut plan = Plan::new();
        plan.add(&rules).unwrap();
        assert_eq!(groups(&plan).len(), 2);
        let mut engine: crate::Engine<Record> =
            crate::Engine::with_max_delay(std::time::Duration::from_millis(5));
        engine.add(&rules).unwrap();
        let mut out: Vec<Output<Record>> = Vec::new();
        for (i, user) in users().iter().enumerate() {
            engine.push(i as i64, event(&plan, i as i64, user, 1), &mut out);
        }
        // (the last 6 wait for the watermark: 39 - 5 - 1 = 33)
        assert_eq!(engine.waiting_events(), 6);
        let clock = Lateness::new(5);
        let state = WorkerCut::from_engine(&plan, engine, &clock, (40, 2), false).unwrap();
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        assert_eq!(cut.restore(&plan, &state).unwrap(), 34);
        let source = cut.source_state(0).unwrap();
        assert_eq!(
            (source.position, source.unread, source.ended),
            (40, 2, false)
        );
        assert_eq!(source.lateness.watermark(), Some(33));
        assert_eq!(source.lateness.end().max_seen, Some(39));
        assert_eq!(source.lateness.end().events, 40);
        let restored = cut.take_restored::<Record>().unwrap();
        // One engine per group, every key; the waiting events once per
        // group, in order, just below the place.
        assert_eq!(restored.pieces.len(), 2);
        let keys: Vec<usize> = restored
            .pieces
            .iter()
            .map(|p| p.engine.0.live_keys())
            .collect();
        assert_eq!(keys, [34, 1]);
        let offsets: Vec<(u32, u64)> = restored.stash.iter().map(|(g, s)| (*g, s.offset)).collect();
        let expected: Vec<(u32, u64)> = (0..2)
            .flat_map(|g| (35..=40).map(move |o| (g, o)))
            .collect();
        assert_eq!(offsets, expected);
        // On three workers, each key once.
        let mut total = 0;
        for index in 0..3 {
            let cut = WorkerCut::new(Cuts::new(), |_, _| {});
            cut.rescale(&plan, &[&state], index, 3).unwrap();
            let restored = cut.take_restored::<Record>().unwrap();
            total += (restored.pieces.iter())
                .filter(|p| p.group == 0)
                .map(|p| p.engine.0.live_keys())
                .sum::<usize>();
        }
        assert_eq!(total, 34);
    }

    #[test]
    fn sources_that_had_all_ended_stay_ended_with_no_end_of_their_own() {
        let plan = plan();
        let states = [
            old(&plan, 0, 2, source(100, true, 0)),
            old(&plan, 1, 2, source(120, true, 0)),
        ];
        let states: Vec<&Saved> = states.iter().collect();
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        cut.rescale(&plan, &states, 1, 3).unwrap();
        assert!(cut.source_state(0).unwrap().ended);
        // (their ends were received before the cut: the old ends, here none)
        assert!(cut.take_restored::<Record>().unwrap().ends.is_empty());
        // States of different cuts are refused.
        let mut other = old(&plan, 0, 2, source(100, true, 0));
        let mut state = WorkerState::of(&other).unwrap();
        state.epoch = 11;
        other = state.piece().unwrap();
        let mixed = [states[0], &other];
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        assert!(cut.rescale(&plan, &mixed, 0, 3).is_err());
    }
}
