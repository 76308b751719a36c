//! Snapshots across workers: every worker's state at a common frontier.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
    /// The largest source capability seen.
    frontier: AtomicI64,
    /// The last epoch a worker could not take.
    failed: AtomicI64,
}

impl Cuts {
    /// No cut requested yet.
    pub fn new() -> Arc<Cuts> {
        Arc::new(Cuts {
            requested: AtomicI64::new(NONE),
            frontier: AtomicI64::new(Timestamp::MIN),
            failed: AtomicI64::new(NONE),
        })
    }

    /// Asks for a cut just above every source's capability so far, and
    /// returns its epoch. A source that passes it before it sees the
    /// request makes it fail ([`failed`](Cuts::failed)): ask again.
    pub fn request(&self) -> Timestamp {
        let f = self.frontier.load(Ordering::SeqCst).saturating_add(1);
        self.requested.store(f, Ordering::SeqCst);
        f
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

    /// A source's capability moved to `t`.
    fn saw(&self, t: Timestamp) {
        self.frontier.fetch_max(t, Ordering::SeqCst);
    }
}

/// A source's state at a cut: where its input goes on, and its clock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceState {
    /// Where the input goes on ([`Positioned::position`]).
    pub position: u64,
    /// What the input could not read up to there ([`Positioned::unread`]).
    pub unread: u64,
    /// Its clock and counts.
    pub lateness: Lateness,
    /// Had it ended (sent its [`SourceEnd`])?
    pub ended: bool,
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
    /// ends); `state` is its state now.
    pub(crate) fn passing(
        &self,
        source: u32,
        old: Timestamp,
        new: Option<Timestamp>,
        state: impl FnOnce() -> SourceState,
    ) {
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
                self.cuts.saw(t);
                if let Some(f) = f.filter(|&f| old < f && f <= t) {
                    recorded.at = Some((f, state()));
                }
            }
        }
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
