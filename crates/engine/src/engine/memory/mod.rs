//! What rules remember between events: the rule set's reference lists and
//! rolling indicators (`docs/semantics.md`, "Lists and indicators").
//!
//! The engine holds one [`Memory`] and keeps it at its event time:
//! [`Memory::reach`] (before the deadlines and events of a time: list
//! changes scheduled at or before it are applied, list entries and window
//! entries that left are dropped; the `then` writes of the steps of the
//! time before are applied first, [`Memory::write_at`]),
//! [`Memory::on_event`] (each indicator takes the event in, before any
//! pattern sees it). Conditions read it through
//! [`Lookup`]. An engine whose rule set declares nothing does none of it
//! (`Memory::is_empty`: one test per event).

mod distinct;
mod exact;
mod list;
mod window;

use std::collections::BTreeMap;

pub use list::{list_entry_value, network_text, EntryError, EntryOrigin};
use list::{EntrySet, NEVER};
use window::{Item, Refused, Windows};

use crate::event::{Event, FieldId, FieldPath, FieldResolver};
use crate::expr::{AccumulatorLayoutBuilder, Accumulators, CompiledExpr};
use crate::lookup::{Declarations, IndicatorId, ListId, Lookup, WriteOp};
use crate::primitives::Timestamp;
use crate::value::{Value, ValueRef};

/// The most entries a list holds by default; an add beyond it is refused
/// and counted ([`MemoryStats::refused_entries`]).
pub const DEFAULT_MAX_LIST_ENTRIES: usize = 10_000_000;

/// The most window entries all indicators hold by default (an event in one
/// indicator's window is one entry, whether or not indicators share a
/// `group by`); an event beyond it is not counted, and counted
/// ([`MemoryStats::refused_events`]).
pub const DEFAULT_MAX_INDICATOR_ENTRIES: usize = 10_000_000;

/// Counters of lists and indicators ([`Engine::memory_stats`](crate::Engine::memory_stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Entries in all lists now.
    pub list_entries: u64,
    /// Entries in all indicators' windows now: an event that three
    /// indicators took is three entries (whether or not they share a
    /// `group by` and so one queued event).
    pub indicator_entries: u64,
    /// Groups of all indicators now: a group is counted once per indicator
    /// with entries in it (not the idle groups kept for reuse).
    pub indicator_groups: u64,
    /// List changes applied (from the library and from `then` writes).
    pub list_changes: u64,
    /// List changes that came for a time at or below the watermark, so
    /// were applied at once (as of the next event).
    pub late_changes: u64,
    /// Adds refused: the list held its limit of entries.
    pub refused_entries: u64,
    /// Writes whose value no list can hold (null, a list, an object; a
    /// `cidr` entry that is no network).
    pub bad_entries: u64,
    /// Events an indicator's condition took whose aggregated value is not a
    /// number (`sum`, `avg`, `min`, `max`): left out of it; the event is
    /// matched as any other.
    pub non_numeric: u64,
    /// Events an indicator left out because a `group by` field was missing
    /// or its value cannot be a key, or its `count_distinct` value cannot
    /// be compared (NaN, a list, an object).
    pub unkeyed: u64,
    /// Events an indicator left out because the indicators held their limit
    /// of window entries.
    pub refused_events: u64,
    /// Entries the shadow copies of the lists hold that shadow rules'
    /// writes added (`docs/semantics.md`, "Shadow rules"); not counted in
    /// `list_entries`.
    pub shadow_entries: u64,
    /// Shadow rules' writes made to the shadow copies; not counted in
    /// `list_changes`.
    pub shadow_changes: u64,
}

impl MemoryStats {
    /// Adds `other`'s counts and sizes to these (several engines' sum, as a
    /// dataflow worker's engines report them).
    pub fn add(&mut self, other: &MemoryStats) {
        let MemoryStats {
            list_entries,
            indicator_entries,
            indicator_groups,
            list_changes,
            late_changes,
            refused_entries,
            bad_entries,
            non_numeric,
            unkeyed,
            refused_events,
            shadow_entries,
            shadow_changes,
        } = *other;
        self.list_entries += list_entries;
        self.indicator_entries += indicator_entries;
        self.indicator_groups += indicator_groups;
        self.list_changes += list_changes;
        self.late_changes += late_changes;
        self.refused_entries += refused_entries;
        self.bad_entries += bad_entries;
        self.non_numeric += non_numeric;
        self.unkeyed += unkeyed;
        self.refused_events += refused_events;
        self.shadow_entries += shadow_entries;
        self.shadow_changes += shadow_changes;
    }
}

/// What was left out of one list or one indicator
/// ([`LeftOut`]): by its limit, and for its value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LeftOutCounts {
    /// Refused at the limit: a list's adds (the list held
    /// `Engine::max_list_entries` entries: [`MemoryStats::refused_entries`]),
    /// an indicator's events (the indicators held
    /// `Engine::max_indicator_entries`: [`MemoryStats::refused_events`]).
    pub limit: u64,
    /// Refused for their value: a list's values that no list of its kind
    /// can hold ([`MemoryStats::bad_entries`]), an indicator's values that
    /// are not numbers (`sum`, `avg`, `min`, `max`:
    /// [`MemoryStats::non_numeric`]).
    pub value: u64,
}

impl LeftOutCounts {
    /// Nothing left out?
    pub fn is_empty(&self) -> bool {
        self.limit == 0 && self.value == 0
    }
}

/// What the limits and the values left out of each list and indicator
/// since the engine started (or since the start of the run it was
/// restored from: a snapshot keeps it), by name: only the lists and
/// indicators that left something out are named
/// ([`Engine::left_out`](crate::Engine::left_out)). The sums over the
/// names are [`MemoryStats`]' `refused_entries`, `bad_entries`,
/// `refused_events` and `non_numeric`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LeftOut {
    /// Each list's, by name.
    pub lists: BTreeMap<String, LeftOutCounts>,
    /// Each indicator's, by name.
    pub indicators: BTreeMap<String, LeftOutCounts>,
}

impl LeftOut {
    /// Nothing left out?
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty() && self.indicators.is_empty()
    }

    /// The counts of `name` in `map`, made when it has none (its name
    /// copied only then: a refusal past a limit, of every event perhaps,
    /// allocates nothing).
    fn counts_of<'a>(
        map: &'a mut BTreeMap<String, LeftOutCounts>,
        name: &str,
    ) -> &'a mut LeftOutCounts {
        if !map.contains_key(name) {
            map.insert(name.to_string(), LeftOutCounts::default());
        }
        map.get_mut(name).expect("inserted above")
    }

    /// The sums over the names: list adds refused at the limit, list
    /// values refused, indicator events refused at the limit, indicator
    /// values not numbers.
    pub fn totals(&self) -> [u64; 4] {
        let sum = |m: &BTreeMap<String, LeftOutCounts>| {
            m.values()
                .fold((0, 0), |(l, v), c| (l + c.limit, v + c.value))
        };
        let (lists, indicators) = (sum(&self.lists), sum(&self.indicators));
        [lists.0, lists.1, indicators.0, indicators.1]
    }
}

/// What the engines of parts of one stream left out (a dataflow
/// worker's engine of each group of patterns and range of keys), gathered
/// as one engine over the whole stream counts it: every engine holds
/// every list and makes every change of it, so a list's count is one
/// engine's (the largest); an event is an indicator's in one engine of a
/// group of patterns (its key's), so an indicator's count is the sum over
/// the engines of one group, the group that counted the most (an
/// indicator read by the patterns of two groups is kept by both).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LeftOutParts {
    /// Each list's, by name: the largest of the engines'.
    lists: BTreeMap<String, LeftOutCounts>,
    /// Each indicator's, by group of patterns and name: summed.
    indicators: BTreeMap<(u32, String), LeftOutCounts>,
}

impl LeftOutParts {
    /// What an engine of group `group` left out.
    pub fn of(group: u32, part: &LeftOut) -> LeftOutParts {
        let mut parts = LeftOutParts::default();
        parts.add(group, part);
        parts
    }

    /// Adds what an engine of group `group` left out.
    pub fn add(&mut self, group: u32, part: &LeftOut) {
        for (name, c) in &part.lists {
            let mine = LeftOut::counts_of(&mut self.lists, name);
            mine.limit = mine.limit.max(c.limit);
            mine.value = mine.value.max(c.value);
        }
        for (name, c) in &part.indicators {
            let mine = self.indicators.entry((group, name.clone())).or_default();
            mine.limit += c.limit;
            mine.value += c.value;
        }
    }

    /// Adds `other`'s parts (other engines of the same stream).
    pub fn merge(&mut self, other: &LeftOutParts) {
        for (name, c) in &other.lists {
            let mine = LeftOut::counts_of(&mut self.lists, name);
            mine.limit = mine.limit.max(c.limit);
            mine.value = mine.value.max(c.value);
        }
        for (key, c) in &other.indicators {
            let mine = self.indicators.entry(key.clone()).or_default();
            mine.limit += c.limit;
            mine.value += c.value;
        }
    }

    /// As one engine over the whole stream would have counted it.
    pub fn whole(&self) -> LeftOut {
        let mut indicators: BTreeMap<String, LeftOutCounts> = BTreeMap::new();
        for ((_, name), c) in &self.indicators {
            let mine = LeftOut::counts_of(&mut indicators, name);
            if (c.limit + c.value) > (mine.limit + mine.value) {
                *mine = *c;
            }
        }
        LeftOut {
            lists: self.lists.clone(),
            indicators,
        }
    }
}

/// A change of a list at a point of event time.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub list: ListId,
    pub op: WriteOp,
    pub value: Value,
    /// For an add: the entry's lifetime from the time it is applied
    /// (`None`: the list's own, if any).
    pub lifetime: Option<i64>,
    /// For an add: the time the entry expires, whenever it is applied
    /// (wins over `lifetime`; an entry of a reference file, whose expiry
    /// is a time).
    pub until: Option<Timestamp>,
    /// For an add: the time `lifetime` counts from (`None`: when it is
    /// applied). A rule's write counts from its step's time.
    pub from: Option<Timestamp>,
    /// A shadow rule's write: made to the list's shadow copy
    /// ([`Memory::shadow`]), never to the list.
    pub shadow: bool,
    /// Whose hold of the value it changes (`docs/lists.md`, "Origins").
    pub origin: EntryOrigin,
}

/// The shadow copy of a list (`docs/semantics.md`, "Shadow rules"): what
/// the shadow rules' writes changed, over the list. Shadow and live rules
/// write as one origin, the rules (`docs/lists.md`, "Origins"), so the
/// copy differs from the list in the rules' hold only. The copy holds a
/// value when `added` holds it; else, when `hidden` holds it, when an
/// origin other than the rules holds it in the list; else when the list
/// does. A live rule's write of a value ends the copy's difference for
/// it (the copy then reads it as the list does); a change of another
/// origin (a file, a topic, the library) changes that origin's hold, in
/// the list and so in the copy, and leaves the difference as it is.
#[derive(Clone, Debug)]
pub(crate) struct ShadowCopy {
    /// The rules' holds the shadow writes made, each until its expiry.
    added: EntrySet,
    /// The values whose rules' hold in the list the copy does not have (a
    /// shadow write removed it, or set an earlier expiry that passed),
    /// each until that hold in the list expires.
    hidden: EntrySet,
}

impl ShadowCopy {
    fn new(kind: crate::lookup::ListKind) -> ShadowCopy {
        ShadowCopy {
            added: EntrySet::new(kind),
            hidden: EntrySet::new(kind),
        }
    }

    fn is_empty(&self) -> bool {
        self.added.len() == 0 && self.hidden.len() == 0
    }
}

/// One indicator, compiled for the engine's events.
struct Indicator {
    condition: Option<CompiledExpr>,
    argument: Option<CompiledExpr>,
    /// Its family in [`Memory::families`], and its member number there.
    family: usize,
    member: usize,
}

/// The indicators of one `group by` and one window width (at most
/// [`window::MAX_MEMBERS`]; more make a second family): an event's key is
/// read, hashed and looked up once for all of them, and queued once.
struct Family {
    key: Vec<FieldId>,
    width: i64,
    windows: Windows,
    /// Kept up to date ([`Memory::scope`])? One that is not stays empty.
    kept: bool,
    /// Kept over every event of the stream, the events pushed for the
    /// shared indicators only included ([`Memory::shared`]).
    every: bool,
    /// Its indicators (their numbers in the declarations), by member
    /// number.
    members: Vec<usize>,
}

/// What [`Memory::on_event`] made of an event for one family, made when
/// an indicator of it first needs it.
#[derive(Clone, Copy, Default)]
struct Scratch {
    /// The key's fields were read.
    read: bool,
    /// A `group by` field is null or missing.
    null: bool,
    /// The key's hash, once made (`Some(None)`: it cannot be a key).
    hash: Option<Option<u64>>,
    /// The group's slot, once found (an indicator took the event).
    group: Option<u32>,
    /// The members that took the event.
    taken: u32,
}

/// The group of `key` (a family's key of the event) in `windows`, found
/// once per event and family: `s` keeps its hash and slot. `None` when
/// the key cannot be a key (NaN, a list, an object).
#[inline]
fn find_group(
    hasher: &hashbrown::DefaultHashBuilder,
    s: &mut Scratch,
    windows: &mut Windows,
    key: &[ValueRef<'_>],
) -> Option<u32> {
    let hash = (*s.hash.get_or_insert_with(|| window::key_hash(hasher, key)))?;
    let group = windows.group(hash, key);
    s.group = Some(group);
    Some(group)
}

/// The lists and indicators of an engine.
pub(crate) struct Memory {
    decls: Declarations,
    lists: Vec<EntrySet>,
    indicators: Vec<Indicator>,
    families: Vec<Family>,
    now: Timestamp,
    /// Changes from the library waiting for their time, by (time, order of
    /// arrival).
    scheduled: BTreeMap<(Timestamp, u64), Change>,
    arrivals: u64,
    /// `then` writes of rules waiting for their time (the time after
    /// their step's), by that time: applied before the library's changes
    /// of the same time, in the order of [`WriteKey`].
    writes: BTreeMap<Timestamp, Vec<Change>>,
    accumulators: Accumulators,
    pub(crate) stats: MemoryStats,
    /// What the limits and the values left out, by list and indicator.
    pub(crate) left_out: LeftOut,
    pub(crate) max_list_entries: usize,
    pub(crate) max_indicator_entries: usize,
    /// Only the indicators whose `group by` has all these fields are kept
    /// (`None`: all): see `Engine::keep_indicators_grouped_by`.
    scope: Option<Vec<FieldPath>>,
    /// Every indicator is kept over every event of the stream, those out
    /// of the scope too (`Engine::share_indicators`).
    shared: bool,
    /// The hasher of every window's keys (clones: one seed).
    hasher: hashbrown::DefaultHashBuilder,
    /// The shadow copy of each list (by number) that a shadow rule's
    /// write reached; empty when none did, so that the live rules' reads
    /// cost nothing more ([`ShadowView`]).
    shadow: Vec<Option<Box<ShadowCopy>>>,
    /// Each list's entries swept at their expiry, by the list's number,
    /// when the engine traces (`Engine::why`: [`Memory::keep_expired`]);
    /// `None` in a plain engine, which keeps nothing of them.
    expired: Option<Vec<list::Expired>>,
    /// [`Memory::take_in`]'s space, one per family, kept from event to
    /// event.
    scratch: Vec<Scratch>,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            decls: Declarations::default(),
            lists: Vec::new(),
            indicators: Vec::new(),
            families: Vec::new(),
            now: Timestamp::MIN,
            scheduled: BTreeMap::new(),
            arrivals: 0,
            writes: BTreeMap::new(),
            accumulators: AccumulatorLayoutBuilder::new().finish().new_accumulators(),
            stats: MemoryStats::default(),
            left_out: LeftOut::default(),
            max_list_entries: DEFAULT_MAX_LIST_ENTRIES,
            max_indicator_entries: DEFAULT_MAX_INDICATOR_ENTRIES,
            scope: None,
            shared: false,
            hasher: hashbrown::DefaultHashBuilder::default(),
            shadow: Vec::new(),
            expired: None,
            scratch: Vec::new(),
        }
    }
}

/// The lists as the shadow rules read them (`docs/semantics.md`, "Shadow
/// rules"): each list's shadow copy, where a shadow write made one, else
/// the list; the indicators as they are.
pub(crate) struct ShadowView<'a>(&'a Memory);

impl Lookup for ShadowView<'_> {
    #[inline]
    fn contains(&self, list: ListId, value: ValueRef<'_>) -> Option<bool> {
        let memory = self.0;
        let i = list.0 as usize;
        let entries = memory.lists.get(i)?;
        match memory.shadow.get(i) {
            Some(Some(copy)) => {
                entries.contains_shadowed(&copy.added, &copy.hidden, value, memory.now)
            }
            _ => entries.contains(value, memory.now),
        }
    }

    #[inline]
    fn indicator(&self, id: IndicatorId, key: &[ValueRef<'_>]) -> Value {
        self.0.indicator(id, key)
    }

    fn expired(&self, list: ListId, value: ValueRef<'_>) -> Option<Timestamp> {
        self.0.expired(list, value)
    }
}

/// The lists alone, as an indicator's condition reads them.
struct ListsOnly<'a> {
    lists: &'a [EntrySet],
    now: Timestamp,
}

impl Lookup for ListsOnly<'_> {
    fn contains(&self, list: ListId, value: ValueRef<'_>) -> Option<bool> {
        self.lists.get(list.0 as usize)?.contains(value, self.now)
    }

    fn indicator(&self, _: IndicatorId, _: &[ValueRef<'_>]) -> Value {
        Value::Null
    }
}

impl Lookup for Memory {
    #[inline]
    fn contains(&self, list: ListId, value: ValueRef<'_>) -> Option<bool> {
        self.lists.get(list.0 as usize)?.contains(value, self.now)
    }

    fn expired(&self, list: ListId, value: ValueRef<'_>) -> Option<Timestamp> {
        let i = list.0 as usize;
        let kind = self.lists.get(i)?.kind();
        self.expired.as_ref()?.get(i)?.of(kind, value, self.now)
    }

    #[inline]
    fn indicator(&self, id: IndicatorId, key: &[ValueRef<'_>]) -> Value {
        match self.indicators.get(id.0 as usize) {
            Some(i) => self.families[i.family].windows.value(i.member, key),
            None => Value::Null,
        }
    }
}

impl Memory {
    /// Keeps the entries each list sweeps at their expiry from now on, so
    /// that a lookup can say when a value's entry expired
    /// ([`Lookup::expired`]): a traced engine's (`Engine::why`), whose run
    /// is otherwise the same.
    pub(crate) fn keep_expired(&mut self) {
        self.expired.get_or_insert_with(Vec::new);
    }

    /// No list and no indicator: nothing to do per event.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.lists.is_empty() && self.indicators.is_empty()
    }

    pub(crate) fn declarations(&self) -> &Declarations {
        &self.decls
    }

    /// The lists as the shadow rules read them.
    #[inline]
    pub(crate) fn shadow_view(&self) -> ShadowView<'_> {
        ShadowView(self)
    }

    /// Takes the rule set's declarations, compiled against `fields`. A
    /// list or indicator kept with the same name and the same definition
    /// keeps its state; one whose definition changed starts empty (an
    /// indicator's entries were counted by the old definition); one no
    /// longer declared goes.
    pub(crate) fn declare(
        &mut self,
        decls: &Declarations,
        fields: &mut dyn FieldResolver,
    ) -> Result<(), String> {
        let mut compiled = Vec::with_capacity(decls.indicators.len());
        for d in &decls.indicators {
            let mut layout = AccumulatorLayoutBuilder::new();
            let compile = |e: &crate::expr::Expr,
                           fields: &mut dyn FieldResolver,
                           layout: &mut AccumulatorLayoutBuilder| {
                CompiledExpr::compile(e, fields, layout)
                    .map_err(|err| format!("indicator `{}`: {err}", d.name))
            };
            let condition = d
                .condition
                .as_ref()
                .map(|c| compile(c, fields, &mut layout))
                .transpose()?;
            let argument = d
                .argument
                .as_ref()
                .map(|a| compile(a, fields, &mut layout))
                .transpose()?;
            let key = d
                .group_by
                .iter()
                .map(|p| {
                    fields
                        .resolve(p)
                        .map_err(|e| format!("indicator `{}`: {e}", d.name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            compiled.push((condition, argument, key));
        }
        let old = std::mem::take(&mut self.decls);
        let mut old_lists: Vec<Option<EntrySet>> = std::mem::take(&mut self.lists)
            .into_iter()
            .map(Some)
            .collect();
        let mut old_copies = std::mem::take(&mut self.shadow);
        let mut copies = Vec::new();
        for l in &decls.lists {
            let at = (old.lists.iter()).position(|o| o.name == l.name && o.kind == l.kind);
            let kept = at.and_then(|i| old_lists[i].take());
            self.lists
                .push(kept.unwrap_or_else(|| EntrySet::new(l.kind)));
            // (a list kept keeps its shadow copy)
            copies.push(at.and_then(|i| old_copies.get_mut(i)?.take()));
        }
        if copies.iter().any(Option::is_some) {
            self.shadow = copies;
        }
        self.declare_indicators(&old, decls, compiled);
        // (scheduled changes of lists that went are dropped)
        let renumber: Vec<Option<ListId>> = old
            .lists
            .iter()
            .map(|o| {
                decls
                    .lists
                    .iter()
                    .position(|l| l.name == o.name)
                    .map(|i| ListId(i as u32))
            })
            .collect();
        self.scheduled = std::mem::take(&mut self.scheduled)
            .into_iter()
            .filter_map(|(at, mut c)| {
                c.list = renumber.get(c.list.0 as usize).copied().flatten()?;
                Some((at, c))
            })
            .collect();
        for changes in self.writes.values_mut() {
            changes.retain_mut(
                |c| match renumber.get(c.list.0 as usize).copied().flatten() {
                    Some(list) => {
                        c.list = list;
                        true
                    }
                    None => false,
                },
            );
        }
        self.writes.retain(|_, changes| !changes.is_empty());
        self.decls = decls.clone();
        self.rescope();
        Ok(())
    }

    /// Groups `decls`' indicators (`compiled`) into families, each of
    /// the indicators of one `group by` and width, in the order declared.
    /// An indicator of `old` with the same name and definition keeps its
    /// entries: a family made of the same such indicators as before, in
    /// the same order, keeps its state as it is; another takes theirs
    /// back entry by entry.
    fn declare_indicators(
        &mut self,
        old: &Declarations,
        decls: &Declarations,
        compiled: Vec<Compiled>,
    ) {
        let old_indicators = std::mem::take(&mut self.indicators);
        let mut old_families: Vec<Option<Family>> = std::mem::take(&mut self.families)
            .into_iter()
            .map(Some)
            .collect();
        // (the indicator of `old` each keeps)
        let kept: Vec<Option<usize>> = (decls.indicators.iter())
            .map(|d| old.indicators.iter().position(|o| o.same_definition(d)))
            .collect();
        for (i, (d, (condition, argument, key))) in
            decls.indicators.iter().zip(compiled).enumerate()
        {
            let found = self.families.iter().position(|f| {
                f.key == key && f.width == d.window && f.members.len() < window::MAX_MEMBERS
            });
            let family = found.unwrap_or_else(|| {
                self.families.push(Family {
                    windows: Windows::new(Vec::new(), key.len(), d.window, self.hasher),
                    key,
                    width: d.window,
                    kept: true,
                    every: false,
                    members: Vec::new(),
                });
                self.families.len() - 1
            });
            let members = &mut self.families[family].members;
            members.push(i);
            self.indicators.push(Indicator {
                condition,
                argument,
                family,
                member: members.len() - 1,
            });
        }
        for family in &mut self.families {
            let olds: Option<Vec<usize>> = family.members.iter().map(|&i| kept[i]).collect();
            // (the old family of exactly these indicators, in this order)
            let whole = olds.and_then(|olds| {
                let of = old_indicators[olds[0]].family;
                let same = (olds.iter().enumerate())
                    .all(|(m, &o)| old_indicators[o].family == of && old_indicators[o].member == m);
                let old_family = old_families[of].as_ref()?;
                (same && old_family.members.len() == olds.len()).then_some(of)
            });
            if let Some(of) = whole.and_then(|of| old_families[of].take()) {
                family.windows = of.windows;
                continue;
            }
            let funcs = (family.members.iter())
                .map(|&i| decls.indicators[i].func)
                .collect();
            family.windows = Windows::new(funcs, family.key.len(), family.width, self.hasher);
            let items = (family.members.iter().enumerate())
                .filter_map(|(m, &i)| {
                    let o = &old_indicators[kept[i]?];
                    let of = old_families[o.family].as_ref()?;
                    Some((m, of.windows.items(o.member)))
                })
                .collect();
            refill(&mut family.windows, items);
        }
    }

    /// Keeps only the indicators whose `group by` has every field of
    /// `scope` (`None`: all); the others are emptied and left alone.
    pub(crate) fn set_scope(&mut self, scope: Option<Vec<FieldPath>>) {
        self.scope = scope;
        self.rescope();
    }

    /// Keeps the indicators out of the scope too, over every event of the
    /// stream: those pushed for them only included (`shared`), or not.
    pub(crate) fn set_shared(&mut self, shared: bool) {
        self.shared = shared;
        self.rescope();
    }

    /// Applies [`Memory::scope`] (and [`Memory::shared`]) to the
    /// indicators declared.
    fn rescope(&mut self) {
        for family in &mut self.families {
            // (its indicators have one `group by`)
            let group_by = &self.decls.indicators[family.members[0]].group_by;
            let within =
                (self.scope.as_ref()).map_or(true, |key| key.iter().all(|f| group_by.contains(f)));
            // (shared: every indicator over the whole stream, those the
            // scope holds too, which a call may read for another key's
            // group: `by_user(device)`, `by_user("u1")`)
            family.kept = within || self.shared;
            family.every = self.shared;
            if !family.kept && family.windows.entries() > 0 {
                let funcs = (family.members.iter())
                    .map(|&i| self.decls.indicators[i].func)
                    .collect();
                family.windows = Windows::new(funcs, family.key.len(), family.width, self.hasher);
            }
        }
        self.count();
    }

    /// Event time reaches `t` (before its deadlines and events): list
    /// changes scheduled at or before `t` are applied, by time; of one
    /// time, the `then` writes of rules first (in [`WriteKey`]), then
    /// the library's changes in the order made; entries that expired and
    /// window entries at or before `t - W` leave.
    #[inline]
    pub(crate) fn reach(&mut self, t: Timestamp) {
        if t < self.now {
            return;
        }
        loop {
            let write = self.writes.first_key_value().map(|(&at, _)| at);
            let change = self.scheduled.first_key_value().map(|(&(at, _), _)| at);
            match (write, change) {
                (Some(w), c) if w <= t && c.map_or(true, |c| w <= c) => {
                    let Some((at, mut changes)) = self.writes.pop_first() else {
                        break;
                    };
                    self.now = at;
                    self.sort_writes(&mut changes);
                    for change in changes {
                        self.apply_any(change);
                    }
                }
                (_, Some(c)) if c <= t => {
                    let Some(((at, _), change)) = self.scheduled.pop_first() else {
                        break;
                    };
                    self.now = at;
                    self.apply_any(change);
                }
                _ => break,
            }
        }
        self.now = t;
        match &mut self.expired {
            None => {
                for l in &mut self.lists {
                    l.expire(t);
                }
            }
            Some(expired) => {
                expired.resize_with(self.lists.len().max(expired.len()), Default::default);
                for (l, kept) in self.lists.iter_mut().zip(expired.iter_mut()) {
                    l.expire_keeping(t, Some(kept));
                }
            }
        }
        if !self.shadow.is_empty() {
            for copy in self.shadow.iter_mut().flatten() {
                copy.added.expire(t);
                copy.hidden.expire(t);
            }
        }
        for f in &mut self.families {
            f.windows.advance(t);
        }
        self.count();
    }

    /// Every indicator takes in `event` (at the current time) when its
    /// condition holds, in the order declared; each family queues the
    /// event once, for the indicators of it that took it.
    #[inline]
    pub(crate) fn on_event<E: Event>(&mut self, event: &E) {
        self.take_in(event, false);
    }

    /// The indicators kept over every event of the stream
    /// ([`Memory::shared`]) take in `event`, one pushed for them only: as
    /// [`Memory::on_event`], but for the others, and nothing counted in
    /// [`MemoryStats`] but sizes (the engine that got the event as its own
    /// counts it).
    pub(crate) fn on_shared_event<E: Event>(&mut self, event: &E) {
        if self.families.iter().any(|f| f.every) {
            self.take_in(event, true);
        }
    }

    fn take_in<E: Event>(&mut self, event: &E, shared_only: bool) {
        let counted = u64::from(!shared_only);
        let lists = ListsOnly {
            lists: &self.lists,
            now: self.now,
        };
        let mut total: usize = self.families.iter().map(|f| f.windows.entries()).sum();
        let scratch = &mut self.scratch;
        if scratch.len() == self.families.len() {
            scratch.fill(Scratch::default());
        } else {
            scratch.clear();
            scratch.resize(self.families.len(), Scratch::default());
        }
        for (i, ind) in self.indicators.iter().enumerate() {
            let family = &mut self.families[ind.family];
            if !family.kept || (shared_only && !family.every) {
                continue;
            }
            if let Some(c) = &ind.condition {
                if !c.matches_with(event, &self.accumulators, &lists) {
                    continue;
                }
            }
            let s = &mut scratch[ind.family];
            if !s.read {
                s.read = true;
                s.null = family.key.iter().any(|&f| event.field(f).is_null());
            }
            if s.null {
                self.stats.unkeyed += counted;
                continue;
            }
            let value = match &ind.argument {
                Some(a) => a.eval_with(event, &self.accumulators, &lists),
                None => Value::Null,
            };
            // (null values are left out quietly, as aggregates do)
            if value.is_null() && ind.argument.is_some() {
                continue;
            }
            // (a value no window takes is left out for it, at the limit
            // too: it would not have been an entry)
            match family.windows.admit(ind.member, &value) {
                Ok(()) => {}
                Err(Refused::NotNumeric) => {
                    if counted > 0 {
                        self.stats.non_numeric += 1;
                        let name = &self.decls.indicators[i].name;
                        LeftOut::counts_of(&mut self.left_out.indicators, name).value += 1;
                    }
                    continue;
                }
                Err(Refused::Unusable) => {
                    self.stats.unkeyed += counted;
                    continue;
                }
            }
            if total >= self.max_indicator_entries {
                if counted > 0 {
                    self.stats.refused_events += 1;
                    let name = &self.decls.indicators[i].name;
                    LeftOut::counts_of(&mut self.left_out.indicators, name).limit += 1;
                }
                continue;
            }
            let group = match s.group {
                Some(group) => group,
                None => {
                    // (the key read again, on the stack for one field)
                    let found = match family.key.as_slice() {
                        &[f] => find_group(&self.hasher, s, &mut family.windows, &[event.field(f)]),
                        fields => {
                            let key: smallvec::SmallVec<[ValueRef<'_>; 4]> =
                                fields.iter().map(|&f| event.field(f)).collect();
                            find_group(&self.hasher, s, &mut family.windows, &key)
                        }
                    };
                    let Some(group) = found else {
                        self.stats.unkeyed += counted;
                        continue;
                    };
                    group
                }
            };
            family.windows.take(ind.member, group, value);
            s.taken |= 1 << ind.member;
            total += 1;
        }
        if scratch.iter().all(|s| s.group.is_none()) {
            return;
        }
        let mut groups = 0;
        for (family, s) in self.families.iter_mut().zip(scratch.iter()) {
            if let Some(group) = s.group {
                family.windows.push(self.now, group, s.taken);
            }
            groups += family.windows.groups() as u64;
        }
        self.stats.indicator_entries = total as u64;
        self.stats.indicator_groups = groups;
    }

    /// Schedules a change of a list at event time `at`; `watermark`: the
    /// engine's, at or below which the change applies at once.
    pub(crate) fn schedule(&mut self, at: Timestamp, change: Change, watermark: Option<Timestamp>) {
        if watermark.is_some_and(|w| at <= w) || at <= self.now {
            // (a change before all time is not late: a reference file
            // read before any event)
            if at != Timestamp::MIN {
                self.stats.late_changes += 1;
            }
            self.apply(change);
            self.count();
            return;
        }
        self.arrivals += 1;
        self.scheduled.insert((at, self.arrivals), change);
    }

    /// A rule's `then` write, applied when event time reaches `at` (its
    /// step's time + 1), before the library's changes of that time,
    /// whatever the engine's watermark: it is never late (the step was
    /// before `at`).
    pub(crate) fn write_at(&mut self, at: Timestamp, change: Change) {
        if at <= self.now {
            // (a write received after its time: a dataflow worker's engine
            // whose patterns do not wait for writes)
            self.stats.late_changes += 1;
            self.apply_any(change);
            self.count();
            return;
        }
        self.writes.entry(at).or_default().push(change);
    }

    /// Puts the writes of one time in their order ([`WriteKey`]).
    fn sort_writes(&self, changes: &mut [Change]) {
        if changes.len() < 2 {
            return;
        }
        let mut keyed: Vec<(WriteKey, usize)> = (changes.iter().enumerate())
            .map(|(i, c)| (self.write_key(c), i))
            .collect();
        keyed.sort();
        let mut order = vec![0; changes.len()];
        for (place, (_, i)) in keyed.into_iter().enumerate() {
            order[i] = place;
        }
        // (each change to its place: a permutation applied by swaps)
        for i in 0..changes.len() {
            while order[i] != i {
                let j = order[i];
                changes.swap(i, j);
                order.swap(i, j);
            }
        }
    }

    /// The key of [`WriteKey`].
    fn write_key(&self, c: &Change) -> WriteKey {
        let entry = (self.lists.get(c.list.0 as usize)).and_then(|l| l.encode((&c.value).into()));
        let expires = match c.op {
            WriteOp::Add => self.expires(c),
            WriteOp::Remove => Timestamp::MIN,
        };
        (c.list.0, entry, c.op == WriteOp::Add, expires, c.shadow)
    }

    /// When an add's entry expires (`None`: never), as it would applied
    /// now.
    pub(crate) fn expiry_of(&self, change: &Change) -> Option<Timestamp> {
        Some(self.expires(change)).filter(|&e| e != NEVER)
    }

    /// When an add's entry expires, applied now.
    fn expires(&self, change: &Change) -> Timestamp {
        let lifetime = change
            .lifetime
            .or_else(|| (self.decls.lists.get(change.list.0 as usize)).and_then(|l| l.expiry));
        let from = change.from.unwrap_or(self.now);
        change
            .until
            .unwrap_or_else(|| lifetime.map_or(NEVER, |d| from.saturating_add(d)))
    }

    /// Makes `change`: to the list, or a shadow rule's to its shadow copy.
    fn apply_any(&mut self, change: Change) {
        if change.shadow {
            self.apply_shadow(change);
        } else {
            self.apply(change);
        }
    }

    fn apply(&mut self, change: Change) {
        let expires = match change.op {
            WriteOp::Add => self.expires(&change),
            WriteOp::Remove => NEVER,
        };
        let Some(list) = self.lists.get_mut(change.list.0 as usize) else {
            return;
        };
        let rules = matches!(change.origin, EntryOrigin::Rules | EntryOrigin::Unrecorded);
        if !self.shadow.is_empty() && rules {
            // (a live rule's write: the copy reads the value as the list
            // does from now on)
            if let Some(Some(copy)) = self.shadow.get_mut(change.list.0 as usize) {
                let _ = copy.added.remove((&change.value).into());
                let _ = copy.hidden.remove((&change.value).into());
            }
        }
        self.stats.list_changes += 1;
        let (value, origin, now) = ((&change.value).into(), &change.origin, self.now);
        let result = match change.op {
            WriteOp::Add => {
                if expires <= now {
                    // (expired already: its origin's hold is not there,
                    // whatever it was)
                    list.release(value, origin, now).map(drop)
                } else {
                    list.hold(value, expires, self.max_list_entries, origin, now)
                }
            }
            WriteOp::Remove => list.release(value, origin, now).map(drop),
        };
        self.count_refused(change.list, result);
    }

    /// Counts an add or a remove of list `list` that `result` says was
    /// refused, by why.
    fn count_refused(&mut self, list: ListId, result: Result<(), EntryError>) {
        let full = match result {
            Ok(()) => return,
            Err(EntryError::Full(_)) => true,
            Err(_) => false,
        };
        let Some(d) = self.decls.lists.get(list.0 as usize) else {
            return;
        };
        let counts = LeftOut::counts_of(&mut self.left_out.lists, &d.name);
        if full {
            self.stats.refused_entries += 1;
            counts.limit += 1;
        } else {
            self.stats.bad_entries += 1;
            counts.value += 1;
        }
    }

    /// Makes a shadow rule's write to the list's shadow copy (made if
    /// need be): the copy then holds what the list would hold had the
    /// write been made to it. Counted as the list's changes are, in
    /// [`MemoryStats::shadow_changes`].
    fn apply_shadow(&mut self, change: Change) {
        let expires = match change.op {
            WriteOp::Add => self.expires(&change),
            WriteOp::Remove => NEVER,
        };
        let i = change.list.0 as usize;
        let Some(list) = self.lists.get(i) else {
            return;
        };
        self.stats.shadow_changes += 1;
        let value: ValueRef<'_> = (&change.value).into();
        let Some(bytes) = list.encode(value) else {
            self.count_refused(change.list, Err(EntryError::NotAnEntry));
            return;
        };
        if self.shadow.len() < self.lists.len() {
            self.shadow.resize_with(self.lists.len(), || None);
        }
        let copy = self.shadow[i].get_or_insert_with(|| Box::new(ShadowCopy::new(list.kind())));
        // (until when the rules' own hold of it is there in the list)
        let own = (list.hold_of(&bytes, &EntryOrigin::Rules)).filter(|&e| e > self.now);
        let room = self.max_list_entries.saturating_sub(list.len());
        let result = match change.op {
            WriteOp::Add if expires > self.now => {
                copy.added
                    .add(value, expires, room)
                    .and_then(|()| match own {
                        Some(own) if own > expires => copy.hidden.add(value, own, usize::MAX),
                        _ => copy.hidden.remove(value).map(drop),
                    })
            }
            _ => copy.added.remove(value).and_then(|_| match own {
                Some(own) => copy.hidden.add(value, own, usize::MAX),
                None => copy.hidden.remove(value).map(drop),
            }),
        };
        self.count_refused(change.list, result);
    }

    fn count(&mut self) {
        self.stats.list_entries = self.lists.iter().map(|l| l.len() as u64).sum();
        if !self.shadow.is_empty() || self.stats.shadow_entries != 0 {
            self.stats.shadow_entries = (self.shadow.iter().flatten())
                .map(|c| c.added.len() as u64)
                .sum();
        }
        self.stats.indicator_entries = (self.families.iter())
            .map(|f| f.windows.entries() as u64)
            .sum();
        self.stats.indicator_groups = (self.families.iter())
            .map(|f| f.windows.groups() as u64)
            .sum();
    }

    /// Heap bytes of lists and windows.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.lists.iter().map(EntrySet::heap_bytes).sum::<usize>()
            + (self.shadow.iter().flatten())
                .map(|c| c.added.heap_bytes() + c.hidden.heap_bytes())
                .sum::<usize>()
            + (self.families.iter())
                .map(|f| f.windows.heap_bytes())
                .sum::<usize>()
    }

    /// The list named `name`.
    pub(crate) fn list_id(&self, name: &str) -> Option<ListId> {
        self.decls.list(name).map(|l| l.id)
    }

    /// The indicator named `name`.
    pub(crate) fn indicator_id(&self, name: &str) -> Option<IndicatorId> {
        self.decls.indicator(name).map(|i| i.id)
    }

    /// Each list's name and number of entries.
    pub(crate) fn list_sizes(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        (self.decls.lists.iter())
            .zip(&self.lists)
            .map(|(d, l)| (&*d.name, l.len()))
    }

    /// What `origin` holds in list `list` once the changes scheduled so
    /// far are made (a rule's writes, which are the rules' own, aside):
    /// each value with its hold's expiry (which may have passed at the
    /// list's time, the entry not swept yet), in no order.
    pub(crate) fn each_held_by(
        &self,
        list: ListId,
        origin: &EntryOrigin,
        visit: &mut dyn FnMut(ValueRef<'_>, Timestamp),
    ) {
        let Some(set) = self.lists.get(list.0 as usize) else {
            return;
        };
        let pending = self.pending_holds(list, origin);
        set.each_held_by(origin, &mut |bytes, expires| {
            if pending.is_empty() || !pending.contains_key(bytes) {
                set.decode_with(bytes, &mut |value| visit(value, expires));
            }
        });
        for (bytes, hold) in pending {
            if let Some(expires) = hold {
                set.decode_with(&bytes, &mut |value| visit(value, expires));
            }
        }
    }

    /// Until when `origin` holds `value` in list `list` once the changes
    /// scheduled so far are made, as [`Memory::each_held_by`] says it
    /// (`None`: it does not hold it).
    pub(crate) fn hold_by(
        &self,
        list: ListId,
        origin: &EntryOrigin,
        value: ValueRef<'_>,
    ) -> Option<Timestamp> {
        let set = self.lists.get(list.0 as usize)?;
        let bytes = set.encode(value)?;
        // (the last change of the value scheduled says it)
        let last = (self.scheduled.iter()).rev().find(|(_, c)| {
            c.list == list
                && c.origin == *origin
                && set.encode((&c.value).into()).as_deref() == Some(&bytes[..])
        });
        match last {
            Some((&(at, _), change)) => self.held_after(at, change),
            None => set.hold_of(&bytes, origin),
        }
    }

    /// The holds of `origin` in list `list` that its changes scheduled
    /// so far make, by the entry's bytes: until when, or let go (`None`).
    fn pending_holds(
        &self,
        list: ListId,
        origin: &EntryOrigin,
    ) -> hashbrown::HashMap<Vec<u8>, Option<Timestamp>> {
        let mut pending = hashbrown::HashMap::new();
        let Some(set) = self.lists.get(list.0 as usize) else {
            return pending;
        };
        for (&(at, _), change) in &self.scheduled {
            if change.list != list || change.origin != *origin {
                continue;
            }
            if let Some(bytes) = set.encode((&change.value).into()) {
                pending.insert(bytes, self.held_after(at, change));
            }
        }
        pending
    }

    /// Until when a change scheduled at `at` holds its value (`None`: it
    /// lets it go), as it will when made at `at`.
    fn held_after(&self, at: Timestamp, change: &Change) -> Option<Timestamp> {
        match change.op {
            WriteOp::Remove => None,
            WriteOp::Add => {
                let lifetime = change.lifetime.or_else(|| {
                    (self.decls.lists.get(change.list.0 as usize)).and_then(|l| l.expiry)
                });
                let from = change.from.unwrap_or(at);
                Some(
                    change
                        .until
                        .unwrap_or_else(|| lifetime.map_or(NEVER, |d| from.saturating_add(d))),
                )
            }
        }
    }

    /// The event time the lists have reached: their changes and expiries
    /// up to it are made.
    pub(crate) fn lists_time(&self) -> Timestamp {
        self.now
    }

    /// The time of the last change of a list scheduled and not made yet
    /// (a rule's write included).
    pub(crate) fn last_scheduled(&self) -> Option<Timestamp> {
        let changes = self.scheduled.keys().next_back().map(|&(at, _)| at);
        let writes = self.writes.keys().next_back().copied();
        changes.max(writes)
    }

    /// Takes the entries of every indicator the engine keeps out of it
    /// (their windows left empty): each one's name with its entries as
    /// (key, time, value), oldest first.
    #[allow(clippy::type_complexity)]
    pub(crate) fn take_indicator_items(&mut self) -> Vec<(String, Vec<Item>)> {
        let mut taken = Vec::new();
        for (ind, d) in self.indicators.iter().zip(&self.decls.indicators) {
            let family = &self.families[ind.family];
            if family.kept {
                taken.push((d.name.to_string(), family.windows.items(ind.member)));
            }
        }
        for family in self.families.iter_mut().filter(|f| f.kept) {
            let funcs = (family.members.iter())
                .map(|&i| self.decls.indicators[i].func)
                .collect();
            family.windows = Windows::new(funcs, family.key.len(), family.width, self.hasher);
        }
        self.count();
        taken
    }

    /// Puts each indicator's `items` (key, time, value) into its windows,
    /// as a restore does (each family's merged in time order), into empty
    /// windows; those of an indicator the engine does not have, or does
    /// not keep, are left out. The names of those left out.
    pub(crate) fn put_indicator_items(&mut self, items: Vec<(String, Vec<Item>)>) -> Vec<String> {
        let mut refills: Vec<Vec<(usize, Vec<Item>)>> =
            self.families.iter().map(|_| Vec::new()).collect();
        let mut left_out = Vec::new();
        for (name, items) in items {
            match self.indicator_id(&name) {
                Some(id) if self.families[self.indicators[id.0 as usize].family].kept => {
                    let indicator = &self.indicators[id.0 as usize];
                    refills[indicator.family].push((indicator.member, items));
                }
                _ => left_out.push(name),
            }
        }
        for (family, items) in self.families.iter_mut().zip(refills) {
            if !items.is_empty() {
                refill(&mut family.windows, items);
            }
        }
        self.count();
        left_out
    }

    /// Has an indicator an entry in its window?
    pub(crate) fn has_indicator_entries(&self) -> bool {
        self.families.iter().any(|f| f.windows.entries() > 0)
    }

    /// No list holds an entry, and none has a change scheduled.
    pub(crate) fn holds_no_list_entry(&self) -> bool {
        self.scheduled.is_empty()
            && self.writes.is_empty()
            && self.lists.iter().all(|l| l.len() == 0)
            && self.shadow.iter().flatten().all(|c| c.is_empty())
    }

    /// Makes each list that `other` declares alike (the same name and
    /// kind) hold what it holds there: its entries and its changes still
    /// scheduled. For an engine made while others of the same rules run
    /// (a dataflow worker's engine of a group that a change of rules
    /// adds), which must see the lists as they see them.
    pub(crate) fn copy_lists(&mut self, other: &Memory) {
        for (theirs, (decl, entries)) in other.decls.lists.iter().zip(&other.lists).enumerate() {
            let Some(id) = self.list_id(&decl.name) else {
                continue;
            };
            if self.decls.lists[id.0 as usize].kind != decl.kind {
                continue;
            }
            self.lists[id.0 as usize] = entries.clone();
            let copy = other.shadow.get(theirs).cloned().flatten();
            if copy.is_some() || !self.shadow.is_empty() {
                self.shadow.resize_with(self.lists.len(), || None);
                self.shadow[id.0 as usize] = copy;
            }
            self.scheduled.retain(|_, c| c.list != id);
            for changes in self.writes.values_mut() {
                changes.retain(|c| c.list != id);
            }
            for (&at, changes) in &other.writes {
                let theirs = changes.iter().filter(|c| c.list.0 as usize == theirs);
                let mine = theirs.map(|c| Change {
                    list: id,
                    ..c.clone()
                });
                self.writes.entry(at).or_default().extend(mine);
            }
            self.writes.retain(|_, changes| !changes.is_empty());
            for (&(at, _), change) in other.scheduled.iter() {
                if change.list.0 as usize == theirs {
                    self.arrivals += 1;
                    let change = Change {
                        list: id,
                        ..change.clone()
                    };
                    self.scheduled.insert((at, self.arrivals), change);
                }
            }
        }
        self.count();
    }

    /// The state, for a snapshot: the lists and indicators, the shadow
    /// copies (of format version 8 on: a section of its own), and the
    /// origins of the lists' entries and changes (version 10 on: another).
    pub(crate) fn save(&self) -> (SavedOut<'_>, SavedShadow, SavedOrigins) {
        let (scheduled, shadow_changes, change_origins) = self.saved_changes();
        let origins = SavedOrigins {
            lists: self.lists.iter().map(SavedHolds::of).collect(),
            changes: change_origins,
        };
        let copies = (self.decls.lists.iter().zip(&self.shadow))
            .filter_map(|(d, c)| {
                let c = c.as_ref()?;
                let entries = |set: &EntrySet| -> Vec<SavedEntry> {
                    set.entries().map(|(b, e)| (b.to_vec(), e)).collect()
                };
                Some((d.name.to_string(), entries(&c.added), entries(&c.hidden)))
            })
            .collect();
        let shadow = SavedShadow {
            copies,
            changes: shadow_changes,
        };
        let saved = SavedOut {
            now: self.now,
            lists: self
                .lists
                .iter()
                .zip(&self.decls.lists)
                .map(|(l, d)| {
                    let entries = l.entries().map(|(b, e)| (b.to_vec(), e)).collect();
                    (d.name.to_string(), entries)
                })
                .collect(),
            indicators: self
                .indicators
                .iter()
                .zip(&self.decls.indicators)
                .map(|(i, d)| {
                    let items = MemberItems {
                        windows: &self.families[i.family].windows,
                        member: i.member,
                    };
                    (&*d.name, items)
                })
                .collect(),
            scheduled,
        };
        (saved, shadow, origins)
    }

    /// The changes waiting, for a snapshot: by time, of one time the
    /// writes of rules first, in their order, then the library's in the
    /// order made (restored, they are all the library's, in this order:
    /// no rule writes for a time the engine has reached, so their order
    /// with what comes later is kept).
    /// With them, the places of the shadow rules' writes among them, and
    /// the origin of each.
    fn saved_changes(&self) -> (Vec<SavedChange>, Vec<u32>, SavedChangeOrigins) {
        let saved = |at: Timestamp, c: &Change| {
            // (a scheduled change's time is above every time before it:
            // its expiry as a lifetime from then)
            let lifetime = match (c.op, c.until, c.from) {
                (WriteOp::Add, None, None) => c.lifetime,
                (WriteOp::Add, ..) => {
                    let expires = self.expires(c);
                    match (expires, c.until) {
                        // (for ever by its own expiry, a file's entry or
                        // a rule's write: not the list's `for` restored)
                        (NEVER, Some(_)) => Some(i64::MAX),
                        (NEVER, None) => None,
                        (expires, _) => Some(expires.saturating_sub(at)),
                    }
                }
                (WriteOp::Remove, ..) => None,
            };
            SavedChange {
                at,
                list: self.decls.lists[c.list.0 as usize].name.to_string(),
                add: c.op == WriteOp::Add,
                value: c.value.clone(),
                lifetime,
            }
        };
        let mut out = Vec::with_capacity(self.scheduled.len());
        let mut shadow = Vec::new();
        let mut origins = SavedChangeOrigins::default();
        let mut push = |at: Timestamp, c: &Change| {
            if c.shadow {
                shadow.push(out.len() as u32);
            }
            origins.push(&c.origin);
            out.push(saved(at, c));
        };
        let mut writes = self.writes.iter().peekable();
        for (&(at, _), c) in &self.scheduled {
            while let Some((&w, changes)) = writes.next_if(|(&w, _)| w <= at) {
                for c in &self.sorted(changes) {
                    push(w, c);
                }
            }
            push(at, c);
        }
        for (&w, changes) in writes {
            for c in &self.sorted(changes) {
                push(w, c);
            }
        }
        (out, shadow, origins)
    }

    /// `changes`, writes of one time, in [`WriteKey`].
    fn sorted(&self, changes: &[Change]) -> Vec<Change> {
        let mut changes = changes.to_vec();
        self.sort_writes(&mut changes);
        changes
    }

    /// Restores the counts of what the limits and values left out (a
    /// snapshot's: those of the run so far), their sums in the
    /// [`MemoryStats`] with them.
    pub(crate) fn restore_left_out(&mut self, left_out: LeftOut) {
        [
            self.stats.refused_entries,
            self.stats.bad_entries,
            self.stats.refused_events,
            self.stats.non_numeric,
        ] = left_out.totals();
        self.left_out = left_out;
    }

    /// Restores what [`save`](Self::save) kept, by name, into the lists
    /// and indicators declared now (after [`declare`](Self::declare)).
    /// `origins`: `None` from a snapshot that kept none (format version 8
    /// and before): every entry and change is of no recorded origin
    /// ([`EntryOrigin::Unrecorded`]).
    pub(crate) fn restore(
        &mut self,
        saved: Saved,
        shadow: SavedShadow,
        origins: Option<SavedOrigins>,
    ) {
        self.now = saved.now;
        for (name, added, hidden) in shadow.copies {
            let Some(id) = self.list_id(&name) else {
                continue;
            };
            let i = id.0 as usize;
            self.shadow.resize_with(self.lists.len(), || None);
            let mut copy = ShadowCopy::new(self.lists[i].kind());
            for (bytes, expires) in added {
                copy.added.add_encoded(&bytes, expires, &EntryOrigin::Rules);
            }
            for (bytes, until) in hidden {
                copy.hidden.add_encoded(&bytes, until, &EntryOrigin::Rules);
            }
            self.shadow[i] = Some(Box::new(copy));
        }
        let shadow_changes: std::collections::HashSet<u32> = shadow.changes.into_iter().collect();
        let (mut held, change_origins) = match origins {
            Some(o) => (o.lists.into_iter(), o.changes),
            None => (Vec::new().into_iter(), SavedChangeOrigins::default()),
        };
        for (name, entries) in saved.lists {
            let holds = held.next();
            if let Some(id) = self.list_id(&name) {
                let list = &mut self.lists[id.0 as usize];
                match holds.filter(|h| h.entries.len() == entries.len()) {
                    Some(holds) => holds.restore(entries, list),
                    None => {
                        for (bytes, expires) in entries {
                            list.add_encoded(&bytes, expires, &EntryOrigin::Unrecorded);
                        }
                    }
                }
            }
        }
        // (each family's indicators' entries, merged in time order)
        let mut refills: Vec<Vec<(usize, Vec<Item>)>> =
            self.families.iter().map(|_| Vec::new()).collect();
        for (name, items) in saved.indicators {
            if let Some(id) = self.indicator_id(&name) {
                let indicator = &self.indicators[id.0 as usize];
                if !self.families[indicator.family].kept {
                    continue;
                }
                let items = (items.into_iter())
                    .map(|i| (i.key.into_iter().map(|v| v.0).collect(), i.ts, i.value))
                    .collect();
                refills[indicator.family].push((indicator.member, items));
            }
        }
        for (family, items) in self.families.iter_mut().zip(refills) {
            refill(&mut family.windows, items);
        }
        for (place, c) in saved.scheduled.into_iter().enumerate() {
            if let Some(list) = self.list_id(&c.list) {
                self.arrivals += 1;
                let op = if c.add { WriteOp::Add } else { WriteOp::Remove };
                self.scheduled.insert(
                    (c.at, self.arrivals),
                    Change {
                        list,
                        op,
                        value: c.value,
                        lifetime: c.lifetime,
                        until: None,
                        from: None,
                        shadow: shadow_changes.contains(&(place as u32)),
                        origin: change_origins.of(place),
                    },
                );
            }
        }
        self.count();
    }
}

/// The order in which the `then` writes of rules made at one time apply
/// (`docs/semantics.md`, "Writes by rules"): by list, then by entry (its
/// encoded bytes; a value the list cannot hold first), removes before
/// adds, adds by expiry. It depends on the writes only, not on the order
/// in which the matches were made, so one engine and the workers, whose
/// writes of one time reach each engine in no set order, apply them
/// alike: of the writes of one value at one time, an add wins over a
/// remove, and the latest expiry wins.
/// (A live and a shadow write alike have one effect whatever their order:
/// the live one first, then the shadow one.)
type WriteKey = (u32, Option<Vec<u8>>, bool, Timestamp, bool);

/// An indicator's condition, argument and key, compiled.
type Compiled = (Option<CompiledExpr>, Option<CompiledExpr>, Vec<FieldId>);

/// Pushes back into `windows` each member's entries (member, its entries
/// oldest first), merged in time order, a member's own order kept.
fn refill(windows: &mut Windows, items: Vec<(usize, Vec<Item>)>) {
    let mut all: Vec<(usize, Item)> = (items.into_iter())
        .flat_map(|(m, items)| items.into_iter().map(move |i| (m, i)))
        .collect();
    // (stable: of one time, each member's in its order)
    all.sort_by_key(|(_, (_, ts, _))| *ts);
    for (m, (key, ts, value)) in all {
        let key: Vec<ValueRef<'_>> = key.iter().map(ValueRef::from).collect();
        let _ = windows.push_one(m, ts, &key, value);
    }
}

/// A list entry in a snapshot: its encoded bytes and expiry.
type SavedEntry = (Vec<u8>, Timestamp);

/// The state of a [`Memory`] in a snapshot: lists and indicators by name.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Saved {
    now: Timestamp,
    /// Each list's entries: encoded bytes and expiry.
    lists: Vec<(String, Vec<SavedEntry>)>,
    /// Each indicator's window entries, oldest first.
    indicators: Vec<(String, Vec<SavedItem>)>,
    scheduled: Vec<SavedChange>,
}

/// The shadow copies of a [`Memory`] in a snapshot (format version 8 on,
/// after [`Saved`]; none before).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedShadow {
    /// Each list's shadow copy, by the list's name: the entries it added
    /// (encoded bytes, expiry) and the list's entries it hides (encoded
    /// bytes, until when).
    #[allow(clippy::type_complexity)]
    copies: Vec<(String, Vec<SavedEntry>, Vec<SavedEntry>)>,
    /// The places in [`Saved::scheduled`] of the shadow rules' writes.
    changes: Vec<u32>,
}

/// The origins of the lists' entries and changes in a snapshot (format
/// version 10 on, before the decisions of version 11; none before: every entry of no
/// recorded origin).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedOrigins {
    /// Each list's holds, in the order of [`Saved::lists`].
    lists: Vec<SavedHolds>,
    /// The origin of each change of [`Saved::scheduled`].
    changes: SavedChangeOrigins,
}

/// The holds of one list's entries, in the order of its entries in
/// [`Saved::lists`]: one number per entry in the common case.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct SavedHolds {
    /// The origins, numbered by place.
    holders: Vec<EntryOrigin>,
    /// Each entry's one holder, its number + 1 (its hold's expiry is the
    /// entry's); 0: several, in [`SavedHolds::several`].
    entries: Vec<u32>,
    /// The holds of the entries held by several origins, by the entry's
    /// place: each holder's number and its hold's expiry.
    several: Vec<(u32, Vec<(u32, Timestamp)>)>,
}

impl SavedHolds {
    fn of(list: &EntrySet) -> SavedHolds {
        let mut saved = SavedHolds {
            holders: list.holders().to_vec(),
            ..SavedHolds::default()
        };
        for (place, holds) in list.entry_holds().enumerate() {
            match holds[..] {
                [(h, _)] => saved.entries.push(h + 1),
                _ => {
                    saved.entries.push(0);
                    saved.several.push((place as u32, holds.to_vec()));
                }
            }
        }
        saved
    }

    /// Puts `entries` (those it was saved beside) into `list` with their
    /// holds.
    fn restore(self, entries: Vec<SavedEntry>, list: &mut EntrySet) {
        let origin =
            |h: u32| (self.holders.get(h as usize).cloned()).unwrap_or(EntryOrigin::Unrecorded);
        let mut several = self.several.into_iter().peekable();
        for (place, ((bytes, expires), tag)) in entries.into_iter().zip(self.entries).enumerate() {
            let holds: Vec<(EntryOrigin, Timestamp)> = match tag {
                0 => match several.next_if(|(at, _)| *at as usize == place) {
                    Some((_, holds)) => holds.into_iter().map(|(h, e)| (origin(h), e)).collect(),
                    None => vec![(EntryOrigin::Unrecorded, expires)],
                },
                tag => vec![(origin(tag - 1), expires)],
            };
            list.add_encoded_holds(&bytes, holds);
        }
    }
}

/// The origins of the changes waiting in a snapshot: each change's, as
/// its number in a table of them.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct SavedChangeOrigins {
    origins: Vec<EntryOrigin>,
    /// Each change's origin, by its number in `origins`.
    changes: Vec<u32>,
}

impl SavedChangeOrigins {
    fn push(&mut self, origin: &EntryOrigin) {
        let at = match self.origins.iter().position(|o| o == origin) {
            Some(at) => at,
            None => {
                self.origins.push(origin.clone());
                self.origins.len() - 1
            }
        };
        self.changes.push(at as u32);
    }

    /// The origin of the change at `place` (of no recorded origin when
    /// none was saved).
    fn of(&self, place: usize) -> EntryOrigin {
        (self.changes.get(place))
            .and_then(|&at| self.origins.get(at as usize).cloned())
            .unwrap_or(EntryOrigin::Unrecorded)
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedItem {
    key: Vec<SavedValue>,
    ts: Timestamp,
    #[serde(with = "cepheid_core::persist::via")]
    value: Value,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedChange {
    at: Timestamp,
    list: String,
    add: bool,
    #[serde(with = "cepheid_core::persist::via")]
    value: Value,
    lifetime: Option<i64>,
}

/// [`Saved`] as a snapshot writes it: the same bytes, each indicator's
/// entries encoded from its window by reference rather than copied first.
#[derive(serde::Serialize)]
pub(crate) struct SavedOut<'a> {
    now: Timestamp,
    lists: Vec<(String, Vec<SavedEntry>)>,
    indicators: Vec<(&'a str, MemberItems<'a>)>,
    scheduled: Vec<SavedChange>,
}

/// One indicator's window entries, encoded as a sequence of [`SavedItem`].
pub(crate) struct MemberItems<'a> {
    windows: &'a window::Windows,
    member: usize,
}

impl serde::Serialize for MemberItems<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use cepheid_core::persist::Saved as Ref;
        use serde::ser::{SerializeSeq, SerializeTuple};
        struct Key<'k>(&'k [Value]);
        impl serde::Serialize for Key<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(Ref))
            }
        }
        struct Item<'k>(&'k [Value], Timestamp, &'k Value);
        impl serde::Serialize for Item<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // (postcard writes a struct's fields as a tuple's)
                let mut t = s.serialize_tuple(3)?;
                t.serialize_element(&Key(self.0))?;
                t.serialize_element(&self.1)?;
                t.serialize_element(&Ref(self.2))?;
                t.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.windows.count_items(self.member)))?;
        (self.windows).each_item(self.member, |key, ts, value| {
            seq.serialize_element(&Item(key, ts, value))
        })?;
        seq.end()
    }
}

/// A value in a snapshot, tagged with its kind.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedValue(#[serde(with = "cepheid_core::persist::via")] Value);

#[cfg(test)]
mod shadow_tests;
#[cfg(test)]
mod sum_tests;
#[cfg(test)]
mod tests;
