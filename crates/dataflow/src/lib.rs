//! The engine on [timely dataflow](https://docs.rs/timely): the same patterns over many worker threads and processes,
//! with timely's own exchange and progress tracking.
//!
//! - **[`source`]**: one per worker, over that worker's part of the input
//!   (its chunks of a file, see [`FileChunks`], another file, standard
//!   input on worker 0...). It decides which events are late with its own
//!   bounded-out-of-orderness watermark and `$watermark` punctuation
//!   ([`Lateness`], the rule of [`Engine`]), sends the others
//!   as [`Stamped`] events, late ones to a stream of their own, and holds
//!   its capability at its watermark + 1: no event is ever sent behind the
//!   frontier. At most [`Lateness::max_waiting`] of its events wait above
//!   its watermark (the engine's rule of forced watermarks, at the source).
//! - **[`live_source`]**: the same over live input that another thread
//!   sends it through a [`Feed`] (standard input, a followed file): the
//!   worker never waits on the input, and with an idle timeout a quiet
//!   source's watermark follows the clock
//!   ([`Idle`](crate::engine::Idle)'s rule), so it does not hold the
//!   frontier back.
//! - **[`cep`]**: routes each event by a stable hash of its `partition by`
//!   key ([`key_hash`]: XXH3 with a fixed seed over the key normalized as
//!   the engine does, so every process agrees) to the worker that owns the
//!   key, one copy per group of patterns partitioned alike (patterns
//!   without `partition by` run on worker 0). Each worker keeps one
//!   [`Engine`] per group. The input frontier is the
//!   watermark: when it passes `f`, the events below `f` are sorted by
//!   (time, source, offset), pushed, and the engines' watermark moves to
//!   `f - 1`, firing what is due. Matches, timeouts and partial matches
//!   dropped by the per-key limit go to a [`Collect`] sink per worker,
//!   whose items are the operator's output stream.
//! - **Cuts** ([`Cuts`], [`WorkerCut`], [`source_cut`], [`cep_cut`],
//!   [`cut_requests`]): every worker's state at a common frontier `f`, to
//!   resume a run on the same or another number of workers and processes
//!   ([`WorkerCut::rescale`]: keys by key group): each source's place
//!   and clock when its capability reaches `f`, each worker's engines,
//!   source ends and stashed events sent below `f`, once its input
//!   frontier passes `f`; the requests of worker 0 reach every worker of
//!   every process through a small dataflow of their own.
//!
//! Timely timestamps are event times in milliseconds (`i64`), and an event
//! travels at its source's watermark + 1 when it was sent (never above its
//! own time, which it keeps): one timestamp per batch of input rather than
//! one per millisecond, so progress tracking costs little.
//!
//! **What equals the single engine.** Per key, a worker's engine sees the
//! same events in the same order (time, then input order: (source,
//! offset) grows in input order; the chunks of one file, read by several
//! sources, share one source number, and their offsets are chunk number
//! then line, [`FileChunk::offset`]) and the same
//! deadlines as one [`Engine`] over the whole input, and at
//! the end the same final watermark (the sources tell it in their
//! [`SourceEnd`]). So any number of workers gives the same multiset of
//! matches and timeouts. Which events are late is decided by each source
//! over its own part: with disorder within `max_delay` there are none
//! beyond those of the punctuation, and the outputs are identical; an
//! event further behind than the delay is late when its own source has
//! seen a later time, which with the input split in parts can differ from
//! one reader's decision (`docs/semantics.md` has no rule for several
//! readers; this is ours).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use cepheid_dataflow::{cep, source, Lateness, Plan, SourceItem};
//! use cepheid_decode::{Decoder, Format, Item, Items};
//! use cepheid_engine::{Output, Record, Rules};
//! use timely::dataflow::operators::Inspect;
//!
//! let rules = Rules::parse("r.cep", r#"pattern two {
//!     partition by user
//!     match a followed by b where a: n == 1  b: n == 2 }"#)?;
//! let mut plan = Plan::<Record>::new();
//! plan.add(&rules)?;
//! let plan = Arc::new(plan);
//! let input = "{\"ts\":1,\"user\":\"u\",\"n\":1}\n{\"ts\":2,\"user\":\"u\",\"n\":2}\n";
//! let found = Arc::new(Mutex::new(Vec::new()));
//! let seen = Arc::clone(&found);
//! // Two worker threads; worker 0 reads the input, the key decides where
//! // its events go.
//! timely::execute(timely::Config::process(2), move |worker| {
//!     let index = worker.index();
//!     let (plan, seen) = (Arc::clone(&plan), Arc::clone(&seen));
//!     worker.dataflow::<i64, _, _>(move |scope| {
//!         let text = if index == 0 { input } else { "" };
//!         let decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
//!         let items = Items::new("in.jsonl", text.as_bytes(), decoder).filter_map(|(line, item)| {
//!             match item.ok()? {
//!                 Item::Event(ts, event) => Some(SourceItem::Event { ts, offset: line, event }),
//!                 Item::Watermark(t) => Some(SourceItem::Watermark(t)),
//!                 Item::Skip => None,
//!             }
//!         });
//!         let (events, _late) = source(scope, index as u32, items, Lateness::new(0));
//!         cep(&plan, events, |_worker| Vec::<Output<Record>>::new())
//!             .inspect(move |o| seen.lock().unwrap().push(o.as_match().unwrap().pattern.clone()));
//!     });
//! })
//! .unwrap()
//! .join();
//! assert_eq!(*found.lock().unwrap(), ["two"]);
//! # Ok::<(), cepheid_engine::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::too_many_lines)]

// The layers below, under the names the modules use for them.
#[allow(unused_imports)]
use cepheid_core::Record;
use cepheid_core::{error, event, pattern, primitives, record, value};
use cepheid_engine::engine;

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EntryOrigin, PatternSet, ReloadPolicy};
use crate::error::Error;
use crate::event::Event;
use crate::pattern::Pattern;
use crate::primitives::Timestamp;
use crate::record::FieldTable;
use crate::value::Value;

mod cut;
mod operator;
mod route;
pub mod run;
mod source;

pub use cepheid_runtime::source::{FileChunk, FileChunks};
pub use cut::{cut_requests, Cuts, Place, Positioned, Requests, SourceState, WorkerCut};
pub use operator::{cep, cep_cut, AuditPart, Collect, Due};
pub use route::{group_worker, key_group, key_hash};
pub use source::{
    live_source, live_source_cut, source, source_cut, Events, Feed, LateEvents, Lateness,
    SourceItem, FEED_AHEAD,
};

/// An event on its way to the engines: its time, which source read it and
/// where (the order of equal times), and the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped<E> {
    /// Event time, milliseconds.
    pub ts: Timestamp,
    /// The input's number (the sources reading chunks of one file give
    /// them one number; inputs read one after the other, in that order).
    pub source: u32,
    /// Where in its input (a line number, [`FileChunk::offset`]): grows in
    /// input order.
    pub offset: u64,
    /// The event.
    pub event: E,
    /// Its name as its source gives it, when the run gathers decisions
    /// and the source names its records (a Kafka topic's record,
    /// `kafka:TOPIC partition P offset O`: the position of its decisions,
    /// `docs/decisions.md`); `None` otherwise (a file's line is named
    /// by its place).
    pub name: Option<Arc<str>>,
}

impl<E> Stamped<E> {
    /// The event's place as its engines are given it when decisions are
    /// gathered: [`place_of`] its source and offset, with its name when
    /// it has one ([`place_name`]).
    pub fn place(&self) -> Value {
        placed(self.source, self.offset, self.name.as_ref())
    }
}

/// [`Stamped::place`] of its parts.
pub(crate) use cepheid_runtime::checkpoint::placed;
pub use cepheid_runtime::checkpoint::{place_name, place_of, place_parts};

/// What a [`source`] sends to [`cep`]: events and changes of rules, then,
/// once, how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Input<E> {
    /// An event that is not late.
    Event(Stamped<E>),
    /// The source's input ended (every worker gets a copy).
    End(SourceEnd),
    /// A new rule set (every worker gets a copy): see [`Change`]. (Boxed:
    /// rare, and an event travels in the same enum.)
    Rules(Box<Change>),
    /// A source's capability went above its clock (every worker gets a
    /// copy): see [`SourceClock`].
    Clock(SourceClock),
    /// From a router of a plan whose rules can change to every worker's
    /// `cep`, after what it sent before: no event below this time will
    /// come from it any more (it holds none, and none it will be given is
    /// below it). Never from a source.
    Released(Timestamp),
}

/// A source's clock while its capability is above it: a source that has
/// nothing to read when a cut is asked for moves its capability up to the
/// cut's epoch, so that a quiet input is cut where it stands, without
/// moving event time: the engines and the routers go no further than its
/// clock, the least time a later event of it can have, until it says
/// otherwise ([`SourceClock::LIFTED`] once its clock is past its
/// capability again). A restored source starts at its own clock, so a cut
/// does not keep them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceClock {
    /// The worker of the source.
    pub worker: u32,
    /// The source's number there ([`Stamped::source`]).
    pub source: u32,
    /// Grows with each clock the source says: the latest counts.
    pub seq: u64,
    /// The least event time a later event of the source can have, or
    /// [`SourceClock::LIFTED`].
    pub clock: Timestamp,
    /// The capability the source moved to (a later cut is above it).
    pub cap: Timestamp,
}

impl SourceClock {
    /// The source's capability is its clock again: no limit.
    pub const LIFTED: Timestamp = Timestamp::MAX;
}

/// The clocks of the sources whose capability is above their clock, as a
/// worker's engines or router know them: the least is as far as they go.
///
/// A source that moved its capability up to a cut's epoch `e` sends its
/// later events at `e` or above, with times from its clock then, `J`: they
/// come after the cut, and a run resumed from it reads them again. So
/// until a worker took its cut at `e`, its engines go no further than `J`,
/// whatever the source says of its clock since (had they gone on, the cut
/// would hold engines that took events its source reads again, each then
/// late there). Nor while the frontier is at `e`: events sent at `e` with
/// times below it may still come (the clock that lifts the limit travels
/// apart from them, and can come first), and engines at `e - 1` would take
/// each for late, dropped with no late line (issue 59's workers fault).
/// Once the cut at `e` is taken, the routers of a plan whose rules can
/// change say how far they released ([`Input::Released`]): in the same
/// channel as the events, after them, so that no event below the least
/// of their words is on its way, and the engines follow the latest clock
/// up to it (a router holds the events it cannot route yet, and with a
/// quiet source their capabilities keep the frontier at `e` until that
/// source reads on: issue 59's stall). Once the frontier has passed `e`,
/// the latest clock said.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clocks {
    /// (worker, source) -> what it said.
    said: std::collections::HashMap<(u32, u32), Said>,
    /// The largest capability a source moved to above its clock.
    cap: Option<Timestamp>,
    /// What each worker's router said it released below
    /// ([`Input::Released`]; `Timestamp::MIN` until it says). Empty where
    /// the routers say nothing: a plan whose rules do not change routes a
    /// source's clock with its events, in their channel.
    released: Vec<Timestamp>,
    /// The last cut taken, and the events' frontier, as told.
    taken: Option<Timestamp>,
    frontier: Option<Timestamp>,
}

/// What one source said of its clock.
#[derive(Clone, Debug, Default)]
struct Said {
    seq: u64,
    /// Its latest clock (`SourceClock::LIFTED`: none).
    clock: Timestamp,
    /// Each capability it moved up to, with its clock then, in order.
    jumps: Vec<(Timestamp, Timestamp)>,
}

impl Clocks {
    /// The worker hears from `peers` routers how far each released
    /// ([`Input::Released`]).
    pub(crate) fn hear_routers(&mut self, peers: usize) {
        self.released = vec![Timestamp::MIN; peers];
    }

    /// Router `from` released every event below `below`.
    pub(crate) fn released(&mut self, from: u32, below: Timestamp) {
        if let Some(r) = self.released.get_mut(from as usize) {
            *r = (*r).max(below);
        }
    }

    /// No event below this is on its way from any router, or held by one.
    fn released_below(&self) -> Timestamp {
        self.released
            .iter()
            .copied()
            .min()
            .unwrap_or(Timestamp::MIN)
    }

    /// A source said its clock (the latest of each source counts).
    pub(crate) fn learn(&mut self, told: SourceClock) {
        let said = (self.said)
            .entry((told.worker, told.source))
            .or_insert_with(|| Said {
                clock: SourceClock::LIFTED,
                ..Said::default()
            });
        if told.seq < said.seq {
            return;
        }
        said.seq = told.seq;
        said.clock = told.clock;
        let above = said.jumps.last().is_none_or(|&(cap, _)| told.cap > cap);
        if told.clock != SourceClock::LIFTED && told.cap > told.clock && above {
            said.jumps.push((told.cap, told.clock));
        }
        self.cap = self.cap.max(Some(told.cap));
    }

    /// As far as a worker that took its cuts up to `taken` and whose
    /// events' frontier is `f` may move its engines: `f`, or less, below
    /// the clocks said.
    pub(crate) fn limit(&self, f: Timestamp, taken: Timestamp) -> Timestamp {
        self.limit_below(f, f, taken)
    }

    /// [`Clocks::limit`] of a bound `f` at or below the events' frontier
    /// `frontier` (the writes known hold a worker that writes below its
    /// frontier): a move up is held by the frontier, not by the bound. (Held
    /// by the bound, a move up to `e` the frontier had passed held the
    /// engines at its clock below the writes known, which then waited for
    /// the engines' steps: no cut after it was ever taken; issue 60, item
    /// 17's `dataflow_live_cut` case, on the fix of issue 59's workers
    /// fault.)
    pub(crate) fn limit_below(
        &self,
        f: Timestamp,
        frontier: Timestamp,
        taken: Timestamp,
    ) -> Timestamp {
        let released = self.released_below();
        let mut f = f;
        for said in self.said.values() {
            let mut limit = said.clock;
            // (the clock at the first move up that the frontier has not
            // passed: events sent there with times from that clock on may
            // still come, unless the routers released past them)
            if let Some(&(_, clock)) = (said.jumps.iter()).find(|&&(cap, _)| cap >= frontier) {
                limit = limit.min(clock.max(released));
            }
            // (the clock at the first move up that no cut taken is past)
            if let Some(&(_, clock)) = (said.jumps.iter()).find(|&&(cap, _)| cap > taken) {
                limit = limit.min(clock);
            }
            f = f.min(limit);
        }
        f
    }

    /// The least clock a source had as it moved its capability up to `e`
    /// or above (`None`: none did): while the cut at `e` is pending, a
    /// worker's engines go no further (see [`Clocks::limit`]), so what a
    /// router holds from there on may wait in the cut.
    pub(crate) fn moved_to(&self, e: Timestamp) -> Option<Timestamp> {
        (self.said.values())
            .filter_map(|said| said.jumps.iter().find(|&&(cap, _)| cap >= e))
            .map(|&(_, clock)| clock)
            .min()
    }

    /// As far as a router may settle changes and events: `f`, or the least
    /// latest clock (a change a quiet source reads comes at or above it).
    pub(crate) fn latest(&self, f: Timestamp) -> Timestamp {
        (self.said.values()).fold(f, |f, said| f.min(said.clock))
    }

    /// The cuts up to `taken` are taken: a move up to one of them no
    /// longer holds anything back once the frontier has passed it too
    /// ([`Clocks::limit`]; a cut given up as a source was stopped is
    /// passed with the frontier below it, where the events sent at the
    /// move may still come).
    pub(crate) fn taken(&mut self, taken: Timestamp) {
        self.taken = Some(taken);
        self.forget();
    }

    /// The events' frontier is at `f` (`Timestamp::MAX`: the input ended).
    pub(crate) fn frontier_is(&mut self, f: Timestamp) {
        self.frontier = Some(f);
        self.forget();
    }

    /// Forgets the moves up that no longer hold anything back.
    fn forget(&mut self) {
        let (Some(taken), Some(frontier)) = (self.taken, self.frontier) else {
            return;
        };
        for said in self.said.values_mut() {
            said.jumps
                .retain(|&(cap, _)| cap > taken || cap >= frontier);
        }
    }

    /// The largest capability a source moved to above its clock.
    pub(crate) fn cap(&self) -> Option<Timestamp> {
        self.cap
    }
}

/// A change of a reference list (`list NAME` of the rules,
/// `docs/lists.md`) that every engine of every worker makes alike: at the
/// start ([`Plan::edit_lists`]: before any event, after a restore too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ListEdit {
    /// Adds `value` to `list` until event time `until` (`None`: the
    /// list's own `for`, or for ever), as
    /// [`Engine::add_to_list_until`].
    Add {
        /// The list, as the rules declare it.
        list: String,
        /// The entry.
        #[serde(with = "value_text")]
        value: crate::value::Value,
        /// When it expires.
        until: Option<Timestamp>,
    },
    /// Removes `value` from `list`, as [`Engine::remove_from_list`].
    Remove {
        /// The list, as the rules declare it.
        list: String,
        /// The entry.
        #[serde(with = "value_text")]
        value: crate::value::Value,
    },
}

/// A list entry's value as its JSON text, in any format (a value reads
/// back from self-describing formats only).
mod value_text {
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &crate::value::Value, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&serde_json::to_string(value).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<crate::value::Value, D::Error> {
        let text = String::deserialize(d)?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(D::Error::custom)?;
        Ok(cepheid_core::json::value_from_json(&json))
    }
}

/// What a change of lists makes ([`Change::is_lists`]): its edits, and,
/// for a watched reference file, the entries the file gives now (kept in
/// cuts; `None` for a `$list` record of the input).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileChange {
    pub file: Option<cepheid_runtime::lists::FileEntries>,
    pub edits: Vec<ListEdit>,
    #[serde(default)]
    pub origin: ListOrigin,
}

impl FileChange {
    /// Whose holds of the values its edits change (`docs/lists.md`,
    /// "Origins"): its file's, `$list` records', or the library's (the
    /// run's handle).
    pub(crate) fn entry_origin(&self) -> EntryOrigin {
        match (self.origin, &self.file) {
            (ListOrigin::File, Some(file)) => EntryOrigin::file(&file.path),
            // (a file's change always names its file)
            (ListOrigin::File, None) => EntryOrigin::Unrecorded,
            (ListOrigin::Record, _) => EntryOrigin::Records,
            (ListOrigin::Handle, _) => EntryOrigin::Library,
        }
    }

    /// A watched file's change, as the runtime hands it.
    pub(crate) fn of(changed: cepheid_runtime::lists::Changed) -> FileChange {
        FileChange {
            edits: ListEdit::of(&changed.list, changed.edits).collect(),
            file: Some(changed.file),
            origin: ListOrigin::File,
        }
    }
}

/// Where a change of lists comes from: what is said of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ListOrigin {
    /// A watched reference file: said when made.
    #[default]
    File,
    /// A `$list` record of the input: not said; refused (no such list),
    /// said and counted with the malformed lines.
    Record,
    /// The run's handle: said when made, or refused.
    Handle,
}

impl ListEdit {
    /// `edits` of `list` as the runtime hands them (a file read, a
    /// `$list` record, the run's handle: `cepheid_runtime::lists`), as
    /// every engine makes them.
    pub(crate) fn of(
        list: &str,
        edits: Vec<cepheid_runtime::lists::Edit>,
    ) -> impl Iterator<Item = ListEdit> + '_ {
        use cepheid_runtime::lists::Edit;
        edits.into_iter().map(move |edit| match edit {
            Edit::Add(value, until) => ListEdit::Add {
                list: list.to_string(),
                value,
                until,
            },
            Edit::Remove(value) => ListEdit::Remove {
                list: list.to_string(),
                value,
            },
        })
    }

    /// The list it changes.
    pub fn list(&self) -> &str {
        match self {
            ListEdit::Add { list, .. } | ListEdit::Remove { list, .. } => list,
        }
    }

    /// Makes it in `engine` at event time `at`, as `origin`'s change (its
    /// hold of the value, `docs/lists.md`, "Origins"; an engine whose
    /// rules do not declare the list: an error, and nothing changes).
    pub fn make<E: Event + 'static>(
        &self,
        engine: &mut Engine<E>,
        at: Timestamp,
        origin: &EntryOrigin,
    ) -> Result<(), Error> {
        match self {
            ListEdit::Add { list, value, until } => {
                engine.add_to_list_by(origin, list, value.clone(), at, *until)
            }
            ListEdit::Remove { list, value } => {
                engine.remove_from_list_by(origin, list, value.clone(), at)
            }
        }
    }
}

/// A change of rules or lists, made by the runtime and made by every
/// worker at its time: see [`cepheid_runtime::executor::Change`].
pub use cepheid_runtime::executor::Change;

impl FileChange {
    /// The change of lists `self` makes at `offset` (`place` in
    /// messages), as the workers are handed it.
    pub(crate) fn change(&self, offset: u64, place: String) -> Change {
        let json = serde_json::to_string(self).unwrap_or_default();
        Change::of_lists(offset, place, json)
    }

    /// What a change of lists makes (none for a change of rules).
    pub(crate) fn made_by(change: &Change) -> Option<FileChange> {
        serde_json::from_str(change.lists()?).ok()
    }
}

/// How a source ended: what the final watermark of the engines is made of,
/// and its counts.
///
/// The final watermark is the one a single engine reaching the end of the
/// whole input would have: when a source was stopped, the least source
/// watermark (event time stays where the sources got together, as in a
/// run stopped by a signal); with `flush`, `Timestamp::MAX` (every window
/// closes); when some source saw `$watermark` punctuation, the largest
/// source watermark (events after it stay unprocessed); otherwise the
/// largest event time seen (as [`Engine::finish`](crate::Engine::finish)),
/// or the largest source watermark when that is larger (moved by an idle
/// timeout or the limit on waiting events). The engines may not have seen
/// the sources' last frontiers before the end (the frontier can jump to
/// the end at once): the final watermark covers them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEnd {
    /// The largest event time the source read (late events included).
    pub max_seen: Option<Timestamp>,
    /// The source's watermark at the end.
    pub watermark: Option<Timestamp>,
    /// Did the source read `$watermark` punctuation?
    pub punctuated: bool,
    /// Should time run to infinity at the end (`--flush-at-end`)?
    pub flush: bool,
    /// Did the input stop without ending ([`Feed::stop`], a signal)? Then
    /// event time stays where the sources got.
    pub stopped: bool,
    /// Events read (late ones included).
    pub events: u64,
    /// Late events.
    pub late: u64,
    /// Times the watermark was forced up over [`Lateness::max_waiting`].
    pub forced: u64,
}

impl SourceEnd {
    /// The final watermark of the engines after these sources ended, `None`
    /// when there is none (no event, no watermark).
    pub fn final_watermark(ends: &[SourceEnd]) -> Option<Timestamp> {
        let largest_watermark = ends.iter().filter_map(|e| e.watermark).max();
        if ends.iter().any(|e| e.stopped) {
            return ends.iter().filter_map(|e| e.watermark).min();
        }
        if ends.iter().any(|e| e.flush) {
            return Some(Timestamp::MAX);
        }
        if ends.iter().any(|e| e.punctuated) {
            largest_watermark
        } else {
            let largest_seen = ends.iter().filter_map(|e| e.max_seen).max();
            largest_seen.max(largest_watermark)
        }
    }
}

/// The patterns every worker runs, checked once: [`cep`] builds each
/// worker's engines from it. `Send + Sync`, so one plan serves all the
/// workers of a process (give each process the same patterns in the same
/// order: for [`Record`]s that is what makes their field
/// numbering agree).
pub struct Plan<E: Event + 'static> {
    patterns: Vec<Pattern>,
    fields: E::Fields,
    /// An engine with every pattern added so far, which checks the next
    /// ones against them (names, field numbering): each pattern is
    /// compiled once by [`Plan::add`], not again with every later one, and
    /// the workers' engines share its automata.
    /// (Behind a lock only so that the plan is `Sync`: [`Plan::add`]
    /// takes `&mut self`.)
    check: Mutex<Engine<E>>,
    limits: Limits,
    /// Can the rules change ([`Plan::changing`]), and how.
    changing: Option<ReloadPolicy>,
    /// The changes of lists every engine makes at the start, each with
    /// its origin ([`Plan::edit_lists`]).
    lists: Vec<(EntryOrigin, ListEdit)>,
    /// Are the scenes' decisions gathered ([`Plan::gathering_decisions`])?
    decisions: bool,
}

impl<E: Event + 'static> Default for Plan<E> {
    fn default() -> Self {
        Plan::new()
    }
}

impl<E: Event + 'static> Plan<E> {
    /// Does a pattern of the plan write to a list (`then add`, `then
    /// remove`)? Then [`cep`] carries each write to every worker's
    /// engines, to be made at its time (the step's + 1), and each worker
    /// releases the events of a time only once every write made before
    /// it is known (a loop of the dataflow): `docs/semantics.md`, "Writes
    /// by rules".
    pub fn writes(&self) -> bool {
        self.patterns.iter().any(|p| !p.writes.is_empty())
    }

    /// A plan without patterns.
    pub fn new() -> Plan<E> {
        let check = Engine::<E>::new();
        Plan {
            patterns: Vec::new(),
            fields: check.fields().clone(),
            check: Mutex::new(check),
            limits: Limits::default(),
            changing: None,
            lists: Vec::new(),
            decisions: false,
        }
    }

    /// The same plan, whose engines give each event's decisions of their
    /// part with the event's place (`Stamped::source`, `Stamped::offset`:
    /// [`place_of`]), to be gathered by event
    /// ([`Decision::gather`](cepheid_engine::Decision::gather),
    /// `docs/design/decisions-on-workers.md`). Without it the engines
    /// decide with their scenes (an instance fires only on its scene's
    /// events) and the sinks drop the parts.
    pub fn gathering_decisions(mut self) -> Plan<E> {
        self.decisions = true;
        self
    }

    /// Are the decisions gathered ([`Plan::gathering_decisions`])?
    pub fn gathers_decisions(&self) -> bool {
        self.decisions
    }

    /// Adds patterns: all of them, or none when one fails, compiled and
    /// checked as [`Engine::add`] does (names are unique in a plan), once:
    /// the patterns added before are not compiled again. (A set that fails
    /// may leave the fields it reads numbered in [`Plan::fields`], which no
    /// pattern then reads.)
    ///
    /// A pattern the workers cannot run as one engine does is refused
    /// (`ErrorKind::Pattern`): when the plan's rules can change
    /// ([`Plan::changing`], called before), one that reads a rolling
    /// indicator for groups its `partition by` does not fix
    /// (`docs/lists.md`, "On workers"); otherwise such a pattern is
    /// taken, and its group's engines share the indicator over the whole
    /// stream (every worker gets a copy of each event for it:
    /// `docs/semantics.md`, "On workers"). A pattern that writes to a list is taken: its writes
    /// reach every worker's engines at the same point of event time
    /// ([`Plan::writes`]).
    pub fn add<P: PatternSet<E> + ?Sized>(&mut self, patterns: &P) -> Result<(), Error> {
        let (before, limits) = (self.patterns.len(), self.limits());
        let engine = self.check.get_mut().unwrap_or_else(|e| e.into_inner());
        engine.add(patterns)?;
        // (under rules that can change, a pattern reading indicators its
        // key does not fix is refused: a change could not carry the copies
        // of the events its engines share them over)
        let changing = self.changing.is_some();
        let refused = (engine.patterns().skip(before)).find_map(|p| {
            let why = match changing {
                true => route::not_on_workers(p),
                false => route::not_on_workers_from_start(p),
            };
            Some(format!("pattern `{}` {}", p.name, why?))
        });
        if let Some(why) = refused {
            // The engine as it was: the plan's patterns, not these.
            let kept: Vec<_> = engine.automata().take(before).cloned().collect();
            let mut fresh = empty_engine::<E>(limits, engine.fields());
            for nfa in &kept {
                fresh.add_shared(nfa)?;
            }
            *engine = fresh;
            return Err(Error::new(
                cepheid_engine::ErrorKind::Pattern,
                format!("{why}: workers do not run it as one engine does; run it on one engine"),
            ));
        }
        self.patterns = engine.patterns().cloned().collect();
        self.fields = engine.fields().clone();
        Ok(())
    }

    /// Every engine of every worker makes `edits`, in order, as
    /// `origin`'s (`docs/lists.md`, "Origins"), before any event (a
    /// reference file's entries read at the start, the file's; after a
    /// restore, what changed since the cut), after those given before.
    /// Every worker's engines hold the whole lists, whatever keys they
    /// get. A list the plan's rules do not declare is an error
    /// (`ErrorKind::Pattern`), and no edit is kept; a plan without
    /// patterns ([`Plan::resumed`]) keeps them all, and each engine makes
    /// those of the lists its rules declare.
    pub fn edit_lists(
        &mut self,
        origin: &EntryOrigin,
        edits: impl IntoIterator<Item = ListEdit>,
    ) -> Result<(), Error> {
        let edits: Vec<ListEdit> = edits.into_iter().collect();
        if !self.patterns.is_empty() {
            let check = self.check.get_mut().unwrap_or_else(|e| e.into_inner());
            let declared = check.declarations();
            if let Some(edit) = edits.iter().find(|e| declared.list(e.list()).is_none()) {
                return Err(Error::new(
                    cepheid_engine::ErrorKind::Pattern,
                    format!("there is no list `{}` in the rule set", edit.list()),
                ));
            }
        }
        (self.lists).extend(edits.into_iter().map(|edit| (origin.clone(), edit)));
        Ok(())
    }

    /// The lists and indicators the plan's rules declare.
    pub fn declarations(&self) -> cepheid_core::lookup::Declarations {
        let check = self.check.lock().unwrap_or_else(|e| e.into_inner());
        check.declarations().clone()
    }

    /// The same plan with at most `limit` partial matches per pattern and
    /// key, as [`Engine::max_runs_per_key`].
    pub fn max_runs_per_key(mut self, limit: usize) -> Plan<E> {
        self.limits.runs_per_key = limit;
        self
    }

    /// The same plan with at most `limit` partial matches in each of a
    /// worker's engines (one per group of patterns partitioned alike), as
    /// [`Engine::max_live_runs`]: the bound is per engine, not over the
    /// workers.
    pub fn max_live_runs(mut self, limit: usize) -> Plan<E> {
        self.limits.live_runs = limit;
        self
    }

    /// The same plan with at most `limit` entries per list in each of a
    /// worker's engines, as [`Engine::max_list_entries`]: every engine
    /// holds every list whole, so the bound is one engine's.
    pub fn max_list_entries(mut self, limit: usize) -> Plan<E> {
        self.limits.list_entries = limit;
        self
    }

    /// The same plan with at most `limit` window entries over all
    /// indicators in each of a worker's engines, as
    /// [`Engine::max_indicator_entries`]: the bound is per engine, not
    /// over the workers.
    pub fn max_indicator_entries(mut self, limit: usize) -> Plan<E> {
        self.limits.indicator_entries = limit;
        self
    }

    /// The same plan, whose rules can change while it runs: the
    /// [`Input::Rules`] of its sources apply at their time
    /// ([`Change::at`]), a changed pattern's partial matches as `policy`
    /// says (`docs/dynamic-rules.md`). Its routers hold each event until
    /// every source is past its time (they route it by the rules in force
    /// then), which costs memory and latency within the sources' delay; a
    /// plan that is not changing ignores changes and routes at once.
    ///
    /// With cuts ([`cep_cut`]) a worker's piece keeps the rules in force
    /// and the changes sent below the cut: resumed ([`WorkerCut::restore`],
    /// [`WorkerCut::rescale`]), the workers go on with the cut's rules, not
    /// the plan's, when a change was made (resume with
    /// [`Plan::resumed`]).
    pub fn changing(mut self, policy: ReloadPolicy) -> Plan<E> {
        self.changing = Some(policy);
        self
    }

    /// How a plan's rules change ([`Plan::changing`]), if they can.
    pub fn changes(&self) -> Option<ReloadPolicy> {
        self.changing
    }

    /// A plan of this one's settings (limits, how rules change) without
    /// patterns, whose fields are numbered as `fields` (a cut's field
    /// table, or one engine's, in order): the plan a run resumes with
    /// after changes of rules, whose workers' engines are restored with
    /// the rules their snapshots hold, and whose readers decode with the
    /// numbering of those engines.
    pub fn resumed(&self, fields: &[cepheid_engine::FieldPath]) -> Plan<E> {
        let mut plan = Plan::new();
        plan.limits = self.limits;
        plan.changing = self.changing;
        plan.decisions = self.decisions;
        plan.lists.clone_from(&self.lists);
        if let Some(table) = (plan.fields() as &dyn Any).downcast_ref::<FieldTable>() {
            for path in fields {
                table.intern(path);
            }
        }
        plan
    }

    /// An engine of a worker as the plan makes them, without patterns
    /// (a group that a change of rules adds).
    fn empty_engine(&self) -> Engine<E> {
        empty_engine(self.limits, &self.fields)
    }

    /// Its limits.
    fn limits(&self) -> Limits {
        self.limits
    }

    /// The field numbering of the plan's patterns: for `Record`s, the table
    /// every decoder of every worker of the process is made from.
    pub fn fields(&self) -> &E::Fields {
        &self.fields
    }

    /// The patterns, in the order given.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// The engines of one worker, one per group of patterns partitioned
    /// alike (in [`route::groups`] order), and each group's patterns' plan
    /// numbers.
    ///
    /// The engines share the plan's automata ([`Engine::add_shared`]): no
    /// pattern is compiled again, per worker or per group.
    fn engines(&self, groups: &[Vec<usize>]) -> Result<Vec<GroupEngine<E>>, Error> {
        let check = self.check.lock().unwrap_or_else(|e| e.into_inner());
        let automata: Vec<_> = check.automata().collect();
        // (every group's engine is a part of the rule set with all its
        // scenes: an instance of a rule fires only on its scene's events,
        // and each event's decision is gathered from the parts:
        // `docs/design/decisions-on-workers.md`)
        let scenes: Vec<cepheid_core::scene::Scene> = check.scenes().cloned().collect();
        let all: Vec<&Pattern> = self.patterns.iter().collect();
        groups
            .iter()
            .map(|members| {
                let mut engine = self.empty_engine();
                for &index in members {
                    engine.add_shared(automata[index])?;
                }
                // (every group keeps the rules' indicators it can read from
                // the start, read by its patterns or not: a pattern added
                // to it later reads them as one engine would)
                if !check.declarations().is_empty() {
                    engine.set_declarations(check.declarations())?;
                }
                if !scenes.is_empty() {
                    engine.set_scenes_in_part(&scenes, &all)?;
                }
                Ok((engine, members.clone()))
            })
            .collect()
    }
}

/// One worker's engine of a group of patterns, with the plan numbers of
/// its patterns.
type GroupEngine<E> = (Engine<E>, Vec<usize>);

/// One of a worker's engines: group `group`'s engine for the keys whose
/// key group is in `[from, to)`. A worker has one per group over its range
/// of key groups; one that resumed a checkpoint of another number of
/// workers has one per range of an old worker's it took keys from.
pub(crate) struct Piece<E: Event + 'static> {
    pub group: u32,
    pub from: u64,
    pub to: u64,
    pub engine: GroupEngine<E>,
}

/// Gives a `Record` engine's field table the plan's numbering (the same
/// paths interned in the same order), so that records decoded with the
/// plan's table read right in every engine. Typed events number their
/// fields by their type.
fn align_fields<E: Event + 'static>(engine: &E::Fields, plan: &E::Fields) {
    let engine = (engine as &dyn Any).downcast_ref::<FieldTable>();
    let plan = (plan as &dyn Any).downcast_ref::<FieldTable>();
    if let (Some(engine), Some(plan)) = (engine, plan) {
        for path in plan.paths() {
            engine.intern(&path);
        }
    }
}

/// The limits of a plan's engines ([`Plan::max_runs_per_key`],
/// [`Plan::max_live_runs`], [`Plan::max_list_entries`],
/// [`Plan::max_indicator_entries`]), each as one engine's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    runs_per_key: usize,
    live_runs: usize,
    list_entries: usize,
    indicator_entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            runs_per_key: Engine::<Record>::DEFAULT_MAX_RUNS_PER_KEY,
            live_runs: Engine::<Record>::DEFAULT_MAX_LIVE_RUNS,
            list_entries: cepheid_engine::engine::DEFAULT_MAX_LIST_ENTRIES,
            indicator_entries: cepheid_engine::engine::DEFAULT_MAX_INDICATOR_ENTRIES,
        }
    }
}

/// A worker's engine without patterns: with `limits` ([`Plan::limits`]),
/// its fields numbered as `fields`.
fn empty_engine<E: Event + 'static>(limits: Limits, fields: &E::Fields) -> Engine<E> {
    let engine = worker_engine(limits);
    align_fields::<E>(engine.fields(), fields);
    engine
}

/// A worker's engine without patterns or fields, with `limits`.
fn worker_engine<E: Event + 'static>(limits: Limits) -> Engine<E> {
    // No engine decides lateness: events come sorted, up to the
    // frontier, and the watermark is set from it.
    // Nor forces a watermark: a released batch may hold many
    // events of one time, all final.
    Engine::<E>::with_max_delay(Duration::MAX)
        .max_runs_per_key(limits.runs_per_key)
        .max_live_runs(limits.live_runs)
        .max_list_entries(limits.list_entries)
        .max_indicator_entries(limits.indicator_entries)
        .max_waiting_events(usize::MAX)
}

/// A worker's engine restored from `snapshot` with the rules it holds
/// (after a change of rules, not the plan's), its fields numbered as
/// `plan`'s, which begin with its own (every field the cut's process had
/// numbered: [`Plan::resumed`]).
fn restored_engine<E>(plan: &Plan<E>, snapshot: &[u8]) -> Result<Engine<E>, Error>
where
    E: Event + serde::de::DeserializeOwned + 'static,
{
    let mut engine = worker_engine::<E>(plan.limits());
    engine.restore_rules(snapshot)?;
    let paths = |fields: &E::Fields| {
        (fields as &dyn Any)
            .downcast_ref::<FieldTable>()
            .map_or_else(Vec::new, FieldTable::paths)
    };
    if !paths(plan.fields()).starts_with(&paths(engine.fields())) {
        return Err(Error::new(
            cepheid_engine::ErrorKind::Snapshot,
            "a worker's engine numbers the fields otherwise",
        ));
    }
    align_fields::<E>(engine.fields(), plan.fields());
    Ok(engine)
}

/// Numbers the fields `rules` read in `fields` (the plan's table), in the
/// order one engine taking these rules numbers them: every reader, router
/// and engine of the process then reads them with the same numbers.
fn number_fields<E: Event + 'static>(
    rules: &cepheid_engine::Rules,
    fields: &E::Fields,
    limits: Limits,
) -> Result<(), Error> {
    let mut scratch = empty_engine::<E>(limits, fields);
    scratch.set_rules(rules, ReloadPolicy::Drain, &mut Nothing)?;
    align_fields::<E>(fields, scratch.fields());
    Ok(())
}

/// The fields numbered in `fields` (0 for typed events, which have all
/// of theirs).
fn fields_len<E: Event + 'static>(fields: &E::Fields) -> usize {
    (fields as &dyn Any)
        .downcast_ref::<FieldTable>()
        .map_or(0, FieldTable::len)
}

/// `event` with every field of `fields` when it is a `Record` decoded
/// before a change of rules numbered new fields (read again from its
/// text, as one engine does); any other event as it is.
fn refreshed<E: Event + 'static>(event: E, fields: &E::Fields) -> E {
    let table = (fields as &dyn Any).downcast_ref::<FieldTable>();
    let record = (&event as &dyn Any).downcast_ref::<Record>();
    let (Some(table), Some(record)) = (table, record) else {
        return event;
    };
    if record.values().len() >= table.len() {
        return event;
    }
    let raw: std::sync::Arc<str> = std::sync::Arc::from(record.raw());
    let Ok(object) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&raw)
    else {
        return event;
    };
    let again: Box<dyn Any> = Box::new(cepheid_decode::record_from_json(table, &object, raw));
    match again.downcast::<E>() {
        Ok(again) => *again,
        Err(_) => event,
    }
}

/// A sink that keeps nothing (an engine that only numbers fields).
struct Nothing;

impl<E> engine::Sink<E> for Nothing {
    fn on_match(&mut self, _: &engine::MatchRef<'_, E>) {}

    fn on_timeout(&mut self, _: &engine::MatchRef<'_, E>, _: Timestamp) {}
}

// Adds one engine's counts to another's (every count).
use cepheid_runtime::add_stats;

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_engine::Rules;
    use std::sync::Arc;

    /// A source moved up to a cut at 100 with its clock at 40: until the
    /// worker took that cut its engines stay at 40, whatever later clock
    /// the source says (its events after the move are read again by a run
    /// resumed from the cut); then they follow the latest, and the lift.
    #[test]
    fn a_clock_said_after_a_move_up_counts_once_the_cut_there_is_taken() {
        let told = |seq, clock, cap| SourceClock {
            worker: 1,
            source: 0,
            seq,
            clock,
            cap,
        };
        let mut clocks = Clocks::default();
        assert_eq!(clocks.limit(500, 0), 500);
        clocks.learn(told(1, 40, 100));
        clocks.learn(told(2, 70, 100));
        assert_eq!(clocks.limit(500, 99), 40, "the cut at 100 not taken");
        assert_eq!(clocks.latest(500), 70, "a router follows the latest");
        assert_eq!(clocks.limit(500, 100), 70, "the cut at 100 taken");
        // (a bound the writes known lowered below the move up, the
        // frontier past it: not held at the move's clock, which would
        // wait for writes the engines make only once they step on)
        assert_eq!(clocks.limit_below(60, 500, 100), 60);
        assert_eq!(clocks.limit_below(60, 100, 100), 40, "the frontier at 100");
        assert_eq!(
            clocks.limit(100, 100),
            40,
            "the cut at 100 taken, the frontier at 100: events sent at 100 may still come"
        );
        // Moved up again, to 101, with its clock at 70; then lifted.
        clocks.learn(told(3, 70, 101));
        clocks.learn(told(4, SourceClock::LIFTED, 150));
        assert_eq!(clocks.limit(500, 100), 70, "the cut at 101 not taken");
        clocks.taken(101);
        assert_eq!(clocks.limit(101, 101), 70, "lifted, the frontier at 101");
        assert_eq!(clocks.limit(500, 101), 500, "lifted");
        assert_eq!(clocks.cap(), Some(150));
        // (an older word of the source does not count)
        clocks.learn(told(2, 70, 100));
        assert_eq!(clocks.limit(500, 101), 500);
    }

    /// Issue 59's stall: once the cut at 100 is taken, with the frontier
    /// held at 100 by what the routers hold, the engines follow the
    /// source's latest clock up to where every router said it released
    /// (the least of their words: a router that said nothing holds them at
    /// the move's clock), never past the move's clock while the cut there
    /// is not taken.
    #[test]
    fn the_routers_words_let_the_engines_follow_a_quiet_source_past_its_move() {
        let told = |seq, clock, cap| SourceClock {
            worker: 0,
            source: 0,
            seq,
            clock,
            cap,
        };
        let mut clocks = Clocks::default();
        clocks.hear_routers(2);
        clocks.learn(told(1, 10, 100));
        clocks.learn(told(2, 80, 100));
        assert_eq!(clocks.moved_to(100), Some(10), "the clock it moved up from");
        assert_eq!(clocks.moved_to(101), None);
        clocks.released(0, 90);
        clocks.released(1, 60);
        assert_eq!(clocks.limit(500, 99), 10, "the cut at 100 not taken");
        assert_eq!(clocks.limit(100, 100), 60, "the least word");
        clocks.released(1, 95);
        assert_eq!(clocks.limit(100, 100), 80, "the latest clock");
        clocks.released(1, 20);
        assert_eq!(clocks.limit(100, 100), 80, "a word does not go back");
        // (lifted: as far as the words say, until the frontier passes)
        clocks.learn(told(3, SourceClock::LIFTED, 100));
        assert_eq!(clocks.limit(100, 100), 90);
        assert_eq!(clocks.limit(500, 100), 500, "the frontier past the move");
        // A worker whose routers say nothing (rules that do not change)
        // waits for the frontier.
        let mut clocks = Clocks::default();
        clocks.learn(told(1, 10, 100));
        clocks.learn(told(2, 80, 100));
        clocks.released(0, 90);
        assert_eq!(clocks.limit(100, 100), 10);
        // Heard from one router of two: held at the move's clock.
        let mut clocks = Clocks::default();
        clocks.hear_routers(2);
        clocks.learn(told(1, 10, 100));
        clocks.learn(told(2, 80, 100));
        clocks.released(0, 90);
        assert_eq!(clocks.limit(100, 100), 10);
        // A cut given up with the frontier below a move up (a source was
        // stopped, the source that moved ended): the move holds the
        // engines until the frontier passes it.
        let mut clocks = Clocks::default();
        clocks.learn(told(1, 10, 100));
        clocks.frontier_is(100);
        clocks.taken(101);
        clocks.learn(told(2, SourceClock::LIFTED, 100));
        assert_eq!(clocks.limit(100, 101), 10);
        clocks.frontier_is(101);
        assert_eq!(clocks.limit(101, 101), 101);
    }

    fn rules(text: &str) -> Rules {
        Rules::parse("t.cep", text).expect("parses")
    }

    #[test]
    fn a_plan_built_in_steps_is_the_plan_built_at_once() {
        let a = "pattern a { partition by user match x followed by y where x: n == 1  y: m == 2 }";
        let b = "pattern b { partition by user.id match x where x: k > 3 and n < 2 }";
        let mut steps = Plan::<Record>::new();
        steps.add(&rules(a)).unwrap();
        steps.add(&rules(b)).unwrap();
        let mut once = Plan::<Record>::new();
        once.add(&rules(&format!("{a}\n{b}"))).unwrap();
        let names = |plan: &Plan<Record>| -> Vec<String> {
            plan.patterns().iter().map(|p| p.name.clone()).collect()
        };
        assert_eq!(names(&steps), ["a", "b"]);
        assert_eq!(names(&steps), names(&once));
        // The same field numbering.
        assert_eq!(steps.fields().paths(), once.fields().paths());
        // A name the plan has: refused, the plan unchanged.
        let again = steps.add(&rules("pattern a { match z where z: n == 9 }"));
        assert!(again.unwrap_err().to_string().contains("already"));
        assert_eq!(names(&steps), ["a", "b"]);
        steps
            .add(&rules("pattern c { match z where z: q == 9 }"))
            .unwrap();
        assert_eq!(names(&steps), ["a", "b", "c"]);
    }

    /// Which indicators a plan takes: those read with the pattern's key
    /// fields passed as those fields of their `group by` (in any order,
    /// from the event or a stage), any by a pattern without a key; not
    /// one whose group the key does not fix, nor a write to a list. A
    /// refused set leaves the plan as it was.
    #[test]
    fn a_plan_takes_the_indicators_its_keys_fix_and_refuses_the_rest() {
        let decls = "list seen\n\
            indicator by_user = count() group by user within 1h\n\
            indicator by_user_ip = count() group by ip, user within 1h\n\
            indicator by_device = count() group by device within 1h\n";
        let taken = [
            "pattern a { partition by user match x where x: by_user(user) > 1 }",
            "pattern b { partition by user match x followed by y where x: n == 1  y: by_user_ip(ip, x.user) > 1 select n = by_user(y.user) }",
            "pattern c { partition by user, ip match x where x: by_user_ip(ip, user) > 1 }",
            "pattern d { match x where x: by_device(device) > 1 and by_user(user) > 1 }",
            "pattern e { partition by user match x where x: ip in seen }",
            "pattern w { partition by user match x where x: n == 1 then add x.ip to seen }",
        ];
        let refused = [
            (
                "pattern f { partition by user match x where x: by_device(device) > 1 }",
                "reads indicator `by_device` for groups its `partition by user` does not fix",
            ),
            (
                "pattern f { partition by user match x where x: by_user(device) > 1 }",
                "reads indicator `by_user`",
            ),
            (
                "pattern f { partition by user match x where x: by_user(\"u1\") > 1 }",
                "reads indicator `by_user`",
            ),
            (
                "pattern f { partition by user, ip match x where x: by_user(user) > 1 }",
                "reads indicator `by_user` for groups its `partition by user, ip`",
            ),
            (
                "pattern f { partition by user match x select n = by_device(x.device) }",
                "reads indicator `by_device`",
            ),
        ];
        for text in taken {
            let mut plan = Plan::<Record>::new();
            plan.add(&rules(&format!("{decls}{text}")))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        // Those whose key does not fix the indicator's groups are taken by
        // a plan whose rules stay (its engines share the indicator over
        // the whole stream, `route::shares_indicators`), refused by one
        // whose rules can change.
        for (text, _) in &refused {
            let mut plan = Plan::<Record>::new();
            plan.add(&rules(&format!("{decls}{text}")))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            let pattern = &plan.patterns()[0];
            assert!(route::shares_indicators(pattern), "{text}");
        }
        for text in taken {
            let plan = {
                let mut plan = Plan::<Record>::new();
                plan.add(&rules(&format!("{decls}{text}"))).unwrap();
                plan
            };
            assert!(!route::shares_indicators(&plan.patterns()[0]), "{text}");
        }
        // A key of a closure fixes no field and shares nothing: refused.
        let mut closure = rules(&format!("{decls}{}", refused[0].0)).patterns()[0].clone();
        closure.partition_by.clear();
        closure.partition_by_fn = Some(cepheid_core::pattern::NativeKey::new(std::sync::Arc::new(
            |_: &Record| crate::value::Value::from("k"),
        )
            as cepheid_core::pattern::NativeKeyFn<Record>));
        let why = route::not_on_workers_from_start(&closure).expect("refused");
        assert!(why.contains("under a key computed by a closure"), "{why}");
        assert!(!route::shares_indicators(&closure));
        for (text, why) in refused {
            let mut plan = Plan::<Record>::new().changing(ReloadPolicy::default());
            plan.add(&rules(&format!("{decls}{}", taken[0]))).unwrap();
            let e = plan.add(&rules(&format!("{decls}{text}"))).unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
            assert!(e.to_string().contains("run it on one engine"), "{e}");
            let names: Vec<&str> = plan.patterns().iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, ["a"], "{text}");
            // The plan goes on taking what it takes.
            plan.add(&rules(&format!("{decls}{}", taken[4]))).unwrap();
        }
    }

    /// A change of rules on workers keeps to what a plan takes, and a
    /// pattern reading indicators joins only a group in force before the
    /// change (whose engines counted the events before it).
    #[test]
    fn a_change_reads_indicators_only_in_a_group_in_force_before_it() {
        let decls = "indicator by_user = count() group by user within 1h\n\
            indicator by_ip = count() group by ip within 1h\n";
        let mut plan = Plan::<Record>::new();
        plan.add(&rules(&format!(
            "{decls}pattern a {{ partition by user match x where x: n == 1 }}"
        )))
        .unwrap();
        let layout = route::Layout::of_plan(&plan, &route::groups(&plan));
        let next = |text: &str| layout.next(rules(&format!("{decls}{text}")).patterns(), false);
        // In the group of `a`: taken.
        next(
            "pattern a { partition by user match x where x: n == 1 }\n\
              pattern b { partition by user match x where x: by_user(user) > 1 }",
        )
        .unwrap();
        // A new group without indicators: taken.
        next("pattern c { partition by ip match x where x: n == 1 }").unwrap();
        // A new group reading one: refused, saying why.
        let e = next("pattern c { partition by ip match x where x: by_ip(ip) > 1 }").unwrap_err();
        assert!(
            e.contains("pattern `c` reads indicators in a group of patterns"),
            "{e}"
        );
        // What a plan refuses, a change refuses.
        let e = next("pattern b { partition by user match x where x: by_ip(ip) > 1 }").unwrap_err();
        assert!(
            e.contains("pattern `b` reads indicator `by_ip` for groups"),
            "{e}"
        );
        // A group out of force before the change: refused too.
        let out = next("pattern c { partition by ip match x where x: n == 1 }").unwrap();
        let out = out
            .next(
                rules("pattern a { partition by user match x where x: n == 1 }").patterns(),
                false,
            )
            .unwrap();
        let e = out
            .next(
                rules(&format!(
                    "{decls}pattern c {{ partition by ip match x where x: by_ip(ip) > 1 }}"
                ))
                .patterns(),
                false,
            )
            .unwrap_err();
        assert!(e.contains("pattern `c` reads indicators in a group"), "{e}");
        // A pattern that writes: taken when the run carries writes (its
        // plan wrote from the start), refused when it does not.
        let writer = "list seen\npattern w { partition by user match x where x: n == 1 then add x.user to seen }";
        layout.next(rules(writer).patterns(), true).unwrap();
        let e = layout.next(rules(writer).patterns(), false).unwrap_err();
        assert!(
            e.contains("pattern `w` writes to list `seen` when it matches, and the run started without rules that write"),
            "{e}"
        );
    }

    #[test]
    fn workers_share_the_automata_the_plan_compiled() {
        let mut plan = Plan::<Record>::new();
        plan.add(&rules(
            "pattern a { partition by user match x followed by y where x: n == 1  y: m == 2 }\n\
             pattern b { partition by user.id match x where x: k > 3 and n < 2 }\n\
             pattern c { partition by user match x where x: n == 1 }",
        ))
        .unwrap();
        let groups = [vec![0, 2], vec![1]];
        let (one, two) = (
            plan.engines(&groups).unwrap(),
            plan.engines(&groups).unwrap(),
        );
        let check = plan.check.lock().unwrap();
        let compiled: Vec<_> = check.automata().collect();
        for engines in [&one, &two] {
            for ((engine, members), group) in engines.iter().zip(&groups) {
                assert_eq!(members, group);
                let shared: Vec<_> = engine.automata().collect();
                assert_eq!(shared.len(), members.len());
                for (nfa, &index) in shared.iter().zip(members) {
                    assert!(
                        Arc::ptr_eq(nfa, compiled[index]),
                        "pattern {index} compiled again for a worker"
                    );
                }
            }
        }
    }
}
