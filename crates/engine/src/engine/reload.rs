//! Changing the rule set of a running engine (`docs/dynamic-rules.md`):
//! [`Engine::remove`], [`Engine::replace`] and [`Engine::set_rules`].
//!
//! A change takes effect at once, at the engine's watermark `W`: every
//! event processed before it has a time at or below `W`, every event
//! processed after it a time above (the rest is late), so events before the
//! change see the old rules and events after it the new ones, whatever their
//! arrival order within the delay.
//!
//! Inside, a change is one rearrangement of the engine's patterns: the
//! partitions of removed and restarted patterns are discarded first (their
//! runs dropped and counted, held matches emitted), new versions are added,
//! and the patterns are put in their new order. Patterns keep their state
//! across it: only the pattern numbers their partitions carry are
//! rewritten, the groups of patterns partitioned alike are renumbered in
//! order of first use, and the deadline index is rebuilt from the keys'
//! schedules (its order among entries of one time never reaches output).
//! A draining old version goes once it holds no partition.

use std::any::Any;
use std::fmt;

use crate::engine::automaton::Automaton;
use crate::engine::core::{live_beside, Bridge, Core, PatternRun};
use crate::engine::front::{Engine, PatternSet};
use crate::engine::partitions::HOLE;
use crate::engine::sink::Sink;
use crate::engine::snapshot::canonical_text;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, FieldResolver};
use crate::matcher::Cache;
use crate::nfa::Nfa;
use crate::primitives::Timestamp;
use crate::record::{FieldTable, Record};
use std::sync::Arc;

/// What becomes of the partial matches of a pattern when it is replaced by
/// a pattern of the same name with another canonical text
/// (`docs/dynamic-rules.md`, "Policies for a replaced pattern").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReloadPolicy {
    /// The old version's partial matches go on under the old conditions
    /// and window to their match or timeout; it starts no new one, and is
    /// gone once it holds none. The new version starts from nothing. Both
    /// versions' output carries its version ([`MatchRef::version`]).
    ///
    /// [`MatchRef::version`]: crate::MatchRef::version
    #[default]
    Drain,
    /// The old version's partial matches are dropped at the change and
    /// counted ([`Stats::discarded_runs`](crate::engine::Stats)); matches
    /// a skip strategy held back behind them are emitted first. The new
    /// version starts from nothing.
    Restart,
}

/// What a change of rules did to one pattern name. With `serde`:
/// `"added"`, `"removed"`, `"unchanged"`, `"promoted"`, `"shadowed"`, or
/// `{"changed":{"version":2}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A new name, at version 1.
    Added,
    /// The name is gone, its partial matches dropped.
    Removed,
    /// Another canonical text: the name's new version.
    Changed {
        /// The new version's number.
        version: u32,
    },
    /// The same canonical text: state and version kept.
    Unchanged,
    /// The same canonical text without the `shadow` mark it had: state and
    /// version kept, every record it emits from now on goes to the output,
    /// one whose last event came before included (a match completed by a
    /// deadline, or held back by its skip strategy; `docs/rule-lab.md`,
    /// "Shadow rules").
    Promoted,
    /// The same canonical text with a `shadow` mark it did not have: state
    /// and version kept, every record it emits from now on goes to the
    /// shadow output, as [`Change::Promoted`]'s go to the output.
    Shadowed,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added => f.write_str("added"),
            Change::Removed => f.write_str("removed"),
            Change::Changed { version } => write!(f, "changed (version {version})"),
            Change::Unchanged => f.write_str("unchanged"),
            Change::Promoted => f.write_str(
                "promoted (its partial matches kept; every record it emits from here on goes to the output, one whose last event came before included)",
            ),
            Change::Shadowed => f.write_str(
                "shadowed (its partial matches kept; every record it emits from here on goes to the shadow output, one whose last event came before included)",
            ),
        }
    }
}

/// What a change of rules did, per pattern name: the names of the set
/// given, in its order, then the names removed.
///
/// ```
/// use cepheid_engine::engine::{Change, ReloadPolicy};
/// use cepheid_engine::{Engine, Output, Record, Rules};
/// let mut engine: Engine<Record> = Engine::new();
/// engine.add(&Rules::parse("a.cep", "pattern a { match x where x: n > 1 }
///                                    pattern b { match y where y: n > 2 }")?)?;
/// let mut out: Vec<Output<Record>> = Vec::new();
/// let changes = engine.set_rules(
///     &Rules::parse("a.cep", "pattern a { match x where x: n > 1 }
///                             pattern c { match z where z: n > 3 }")?,
///     ReloadPolicy::Drain,
///     &mut out,
/// )?;
/// assert_eq!(changes.get("a"), Some(Change::Unchanged));
/// assert_eq!(changes.get("c"), Some(Change::Added));
/// assert_eq!(changes.get("b"), Some(Change::Removed));
/// assert_eq!(changes.to_string(), "a: unchanged\nc: added\nb: removed\n");
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    entries: Vec<(String, Change)>,
    /// The scenes the change removed (`docs/semantics.md`, "Decisions").
    scenes_removed: Vec<String>,
}

/// With `serde`: an object from each name to its [`Change`], in the order
/// of [`Changes::iter`].
impl serde::Serialize for Changes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.entries.iter().map(|(name, c)| (name, c)))
    }
}

impl Changes {
    /// Each name with what happened to it.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Change)> + '_ {
        self.entries.iter().map(|(name, c)| (name.as_str(), *c))
    }

    /// What happened to `name`, if the change concerned it.
    pub fn get(&self, name: &str) -> Option<Change> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, change)| *change)
    }

    /// Did anything change (a name added, removed or changed)?
    pub fn any(&self) -> bool {
        self.entries.iter().any(|(_, c)| *c != Change::Unchanged)
    }

    /// The scenes the change removed. An event that arrived before the
    /// change and still waits gets its decision from a removed scene it
    /// enters (counted in `DecisionStats::removed_scene`).
    pub fn scenes_removed(&self) -> impl Iterator<Item = &str> + '_ {
        self.scenes_removed.iter().map(String::as_str)
    }
}

/// One line per name: `name: added`, `name: removed`, `name: changed
/// (version N)`, `name: unchanged`.
impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, change) in &self.entries {
            writeln!(f, "{name}: {change}")?;
        }
        for name in &self.scenes_removed {
            writeln!(f, "scene {name}: removed")?;
        }
        Ok(())
    }
}

/// One pattern of the new order: one the engine has (by index), or a new
/// version to add.
pub(super) enum Entry<A> {
    Old(usize),
    New {
        automaton: A,
        version: u32,
        versioned: bool,
        /// The version in force it replaces, whose counts it takes on.
        succeeds: Option<usize>,
    },
}

/// A change of the engine's patterns, worked out before anything is
/// touched.
pub(super) struct Plan<A> {
    /// The patterns after the change, in order.
    order: Vec<Entry<A>>,
    /// Patterns whose partitions are discarded (and which are not in
    /// `order`).
    discard: Vec<usize>,
    /// Patterns that drain from now on.
    drain: Vec<usize>,
    /// Patterns whose name was replaced now.
    versioned: Vec<usize>,
    /// Patterns kept whose automaton is replaced by one of the same
    /// canonical text (a `shadow` mark given or taken: the same states,
    /// so their partial matches go on in it).
    swap: Vec<(usize, A)>,
}

impl<E: Event, A: Automaton<E>> Core<E, A> {
    /// Carries out `plan`: discards, marks, adds (resolving key fields with
    /// `fields`), rearranges, and drops draining versions that hold
    /// nothing.
    pub(super) fn apply<S: Sink<E> + ?Sized>(
        &mut self,
        mut plan: Plan<A>,
        fields: &mut dyn FieldResolver,
        sink: &mut S,
    ) -> Result<(), String>
    where
        E: 'static,
    {
        let identity = plan.discard.is_empty()
            && plan.order.len() == self.patterns.len()
            && plan
                .order
                .iter()
                .enumerate()
                .all(|(i, e)| matches!(e, Entry::Old(j) if *j == i));
        if identity && plan.swap.is_empty() {
            return Ok(());
        }
        // (before `rearrange`, which numbers the conditions of every
        // automaton again)
        for (p, automaton) in plan.swap.drain(..) {
            self.patterns[p].automaton = automaton;
        }
        plan.discard.sort_unstable();
        for &p in &plan.discard {
            self.discard_pattern(p, sink);
        }
        // The `then` writes of the matches held back behind the discarded
        // partial matches: the change is made at the watermark + 1 (its
        // switch point, before the events of that time), so they are
        // made at the step after it, as on every executor
        // (`docs/semantics.md`, "Writes by rules").
        let switch = self
            .current_watermark()
            .map_or(Timestamp::MIN, |w| w.saturating_add(1));
        self.apply_writes(switch);
        for &p in &plan.drain {
            self.patterns[p].draining = true;
        }
        for &p in &plan.versioned {
            self.patterns[p].meta.versioned = true;
        }
        let mut order = Vec::with_capacity(plan.order.len());
        for entry in plan.order {
            match entry {
                Entry::Old(p) => order.push(p),
                Entry::New {
                    automaton,
                    version,
                    versioned,
                    succeeds,
                } => {
                    let p = self.add(automaton, fields)?;
                    // The name's counts go on in its new version (the old
                    // one, if it drains, counts its outcomes afresh: they
                    // join the name's when it goes).
                    let counts = succeeds.map(|c| std::mem::take(&mut self.patterns[c].counts));
                    let run = &mut self.patterns[p];
                    run.meta.version = version;
                    run.meta.versioned = versioned;
                    if let Some(counts) = counts {
                        run.counts = counts;
                    }
                    order.push(p);
                }
            }
        }
        self.rearrange(&order);
        self.reap();
        Ok(())
    }

    /// Drops every partition of pattern `p`: its partial matches are
    /// discarded and counted, the matches held back behind them emitted;
    /// keys left without partitions are forgotten.
    fn discard_pattern<S: Sink<E> + ?Sized>(&mut self, p: usize, sink: &mut S) {
        let run = &mut self.patterns[p];
        let keys = &mut self.groups[run.group].keys;
        let mine = |parts: &crate::engine::partitions::Parts<A::Partition>| {
            parts
                .iter()
                .position(|x| x.pattern as usize == p && !x.is_hole())
        };
        let slots: Vec<u32> = keys
            .iter_parts()
            .filter(|(_, parts)| mine(parts).is_some())
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            let Some((key, parts)) = keys.get_mut(slot) else {
                continue;
            };
            let Some(i) = mine(parts) else {
                continue;
            };
            let mut bridge = Bridge {
                pattern: p,
                automaton: &run.automaton,
                meta: &run.meta,
                key,
                sink: &mut *sink,
                stats: &mut self.stats,
                counts: &mut run.counts,
                capped: false,
                writes: &mut self.writes,
            };
            let before = A::partial_matches(&parts[i].part);
            let view = self.memory.shadow_view();
            let discarded = run.automaton.discard(
                &mut parts[i].part,
                &mut self.store,
                &mut self.cache,
                super::core::lookup_of(&self.memory, &view, run.automaton.pattern().shadow),
                &mut bridge,
            );
            self.stats.discarded_runs += discarded as u64;
            run.counts.discarded_runs += discarded as u64;
            // (empty now: its runs discarded, its held matches emitted)
            self.live_runs =
                live_beside(self.live_runs, before) + A::partial_matches(&parts[i].part);
            // (a hole now; `rearrange` drops it)
            run.ordinals
                .give(std::mem::replace(&mut parts[i].ordinal, HOLE));
            self.live_parts -= 1;
            // (forgets the key when it has no partition left; the deadline
            // index is rebuilt by `rearrange`)
            let _ = keys.settle(slot, None, A::next_deadline);
        }
    }

    /// Makes the patterns `order` (indexes of the current ones, each at
    /// most once; those left out must hold no partition): renumbers the
    /// partitions (holes of patterns left out dropped, each key's
    /// partitions put in the new pattern order), the groups (in order of
    /// first use, unused ones dropped), each pattern's place in its group,
    /// the deadline index and the numbering of shared conditions.
    pub(super) fn rearrange(&mut self, order: &[usize]) {
        let mut renumber = vec![HOLE; self.patterns.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old] = new as u32;
        }
        for group in &mut self.groups {
            group.keys.for_each_slot(|parts| {
                for part in parts.iter_mut() {
                    part.pattern = renumber[part.pattern as usize];
                }
                // (a pattern left out holds no partition: only holes)
                parts.retain(|part| part.pattern != HOLE);
                parts.sort_by_key(|part| part.pattern);
            });
        }
        let mut old: Vec<Option<PatternRun<A>>> = std::mem::take(&mut self.patterns)
            .into_iter()
            .map(Some)
            .collect();
        self.patterns = order.iter().filter_map(|&p| old[p].take()).collect();
        // An old version that goes leaves its outcomes to its name.
        for gone in old.iter().flatten() {
            let name = &gone.automaton.pattern().name;
            let heir = self
                .patterns
                .iter_mut()
                .filter(|r| &r.automaton.pattern().name == name)
                .min_by_key(|r| r.draining);
            if let Some(heir) = heir {
                heir.counts.absorb(&gone.counts);
            }
        }
        // Groups, in order of first use.
        let mut group_of = vec![usize::MAX; self.groups.len()];
        let mut groups_order = Vec::new();
        for run in &self.patterns {
            if group_of[run.group] == usize::MAX {
                group_of[run.group] = groups_order.len();
                groups_order.push(run.group);
            }
        }
        let mut old: Vec<_> = std::mem::take(&mut self.groups)
            .into_iter()
            .map(Some)
            .collect();
        self.groups = groups_order.iter().filter_map(|&g| old[g].take()).collect();
        for group in &mut self.groups {
            group.size = 0;
        }
        for run in &mut self.patterns {
            run.group = group_of[run.group];
            let group = &mut self.groups[run.group];
            run.local = group.size;
            run.last = false;
            group.size += 1;
        }
        let mut seen = vec![false; self.groups.len()];
        for run in self.patterns.iter_mut().rev() {
            run.last = !std::mem::replace(&mut seen[run.group], true);
        }
        // Memory the patterns left out held goes back (`docs/dynamic-rules.md`):
        // their groups went above; the key slots, events and nodes they
        // shared storage with others in are compacted (renumbered: the hash
        // tables and runs follow; the deadline index is rebuilt below from
        // the new slots), so the storage is that of the state left.
        for group in &mut self.groups {
            group.keys.compact();
        }
        let groups = &mut self.groups;
        A::compact_store(&mut self.store, |renumber| {
            for group in groups.iter_mut() {
                group.keys.for_each_slot(|parts| {
                    for part in parts.iter_mut() {
                        renumber(&mut part.part);
                    }
                });
            }
        });
        let entries = self
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.keys.scheduled().map(move |(t, s)| (t, g as u32, s)))
            .collect();
        let live = self.groups.iter().map(|g| g.keys.len()).sum();
        self.deadlines.rebuild(entries, live);
        // The conditions numbered again, in a table of their own: first the
        // shared automata's, which can only be taken as they are (every one
        // was taken into the table before, alongside the others, so they
        // agree: a table that lost some only holds fewer), then the
        // engine's own, numbered after them. (Numbered in pattern order,
        // an own automaton could take a number a shared one holds, and the
        // shared one, refused, read another condition's values.)
        self.cache = A::Cache::default();
        for shared in [true, false] {
            for run in &mut self.patterns {
                if run.automaton.is_shared() == shared {
                    let taken = run.automaton.share(&mut self.cache);
                    debug_assert!(taken, "a shared automaton's conditions disagree");
                }
            }
        }
        self.draining = self.patterns.iter().filter(|r| r.draining).count();
        self.refresh_guards();
    }

    /// Drops the draining versions that hold no partition any more.
    #[inline]
    pub(super) fn reap(&mut self) {
        if self.draining == 0 {
            return;
        }
        let done = |r: &PatternRun<A>| r.draining && r.ordinals.live() == 0;
        if !self.patterns.iter().any(done) {
            return;
        }
        let order: Vec<usize> = (0..self.patterns.len())
            .filter(|&p| !done(&self.patterns[p]))
            .collect();
        self.rearrange(&order);
    }
}

/// What the new rules say of one name.
enum Target<A> {
    /// Keep what the engine has (not reported).
    Keep,
    /// This pattern.
    Set(A),
}

impl<E: Event + 'static> Engine<E> {
    /// Removes the pattern `name` (with the draining old versions of it):
    /// its partial matches are dropped and counted in
    /// [`Stats::discarded_runs`](crate::engine::Stats), matches a skip
    /// strategy held back behind them are emitted to `sink` first, and its
    /// memory is freed. Fails with [`ErrorKind::Pattern`] when the engine
    /// has no pattern of that name.
    ///
    /// ```
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&Rules::parse("a.cep", "pattern a { match x where x: n > 1 }")?)?;
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// engine.remove("a", &mut out)?;
    /// assert_eq!(engine.patterns().count(), 0);
    /// assert!(engine.remove("a", &mut out).is_err());
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn remove<S: Sink<E> + ?Sized>(&mut self, name: &str, sink: &mut S) -> Result<(), Error> {
        if !self.patterns().any(|p| p.name == name) {
            return Err(Error::new(
                ErrorKind::Pattern,
                format!("there is no pattern named `{name}` in the engine"),
            ));
        }
        let targets = self
            .current_names()
            .into_iter()
            .filter(|n| n != name)
            .map(|n| (n, Target::Keep))
            .collect();
        self.change(targets, ReloadPolicy::Restart, None, sink)
            .map(|_| ())
    }

    /// Replaces patterns by name: each pattern of `patterns` replaces the
    /// engine's pattern of its name, or is added (after the others) when
    /// there is none. A pattern whose canonical text (the text `cepheid
    /// explain` shows, without its doc comment) is unchanged keeps its
    /// state and version; a changed one gets the next version, and the
    /// old one's partial matches drain or are dropped as `policy` says.
    /// All or nothing: when a pattern does not compile nothing changes.
    ///
    /// The change is made at the watermark (`docs/dynamic-rules.md`, "The
    /// switch point"): every event processed from now on sees the new
    /// patterns, whatever the order it arrived in. `sink` receives the
    /// matches that dropping partial matches releases (under
    /// [`ReloadPolicy::Restart`], of a pattern with a skip strategy).
    ///
    /// ```
    /// use cepheid_engine::engine::{Change, ReloadPolicy};
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&Rules::parse("a.cep", "pattern a { match x where x: n > 1 }")?)?;
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// let v2 = Rules::parse("a.cep", "pattern a { match x where x: n > 5 }")?;
    /// let changes = engine.replace(&v2, ReloadPolicy::Drain, &mut out)?;
    /// assert_eq!(changes.get("a"), Some(Change::Changed { version: 2 }));
    /// // The same text again changes nothing.
    /// let changes = engine.replace(&v2, ReloadPolicy::Drain, &mut out)?;
    /// assert_eq!(changes.get("a"), Some(Change::Unchanged));
    /// assert_eq!(engine.version("a"), Some(2));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn replace<P: PatternSet<E> + ?Sized, S: Sink<E> + ?Sized>(
        &mut self,
        patterns: &P,
        policy: ReloadPolicy,
        sink: &mut S,
    ) -> Result<Changes, Error> {
        if let Some(scene) = patterns.scenes().first() {
            let message = format!(
                "scene `{}`: scenes change with the whole rule set (`set_rules`), not with `replace`",
                scene.name
            );
            return Err(Error::new(ErrorKind::Pattern, message).with_span(scene.span));
        }
        let (compiled, mut fields) = self.compile(patterns, false)?;
        self.adopt_declarations(
            patterns.declarations(),
            compiled.iter().map(|nfa| nfa.pattern()),
            &mut fields,
        )?;
        let mut targets: Vec<(String, Target<Arc<Nfa<E>>>)> = self
            .current_names()
            .into_iter()
            .map(|n| (n, Target::Keep))
            .collect();
        for nfa in compiled {
            let name = nfa.pattern().name.clone();
            match targets.iter_mut().find(|(n, _)| *n == name) {
                Some((_, target)) => *target = Target::Set(nfa),
                None => targets.push((name, Target::Set(nfa))),
            }
        }
        self.change(targets, policy, Some(fields), sink)
    }

    /// Makes `patterns` the engine's whole rule set: a pattern whose name
    /// and canonical text the engine has keeps its state and version; one
    /// with another text replaces the engine's (next version; the old
    /// one's partial matches drain or are dropped as `policy` says); a new
    /// name is added; a name not in `patterns` is removed (as by
    /// [`remove`](Engine::remove)). The patterns end up in the order of
    /// `patterns`. All or nothing: when a pattern does not compile nothing
    /// changes. The change is made at the watermark, as for
    /// [`replace`](Engine::replace), whose `sink` it shares. Calling it with
    /// the rules the engine runs changes nothing. See [`Changes`] for an
    /// example.
    pub fn set_rules<P: PatternSet<E> + ?Sized, S: Sink<E> + ?Sized>(
        &mut self,
        patterns: &P,
        policy: ReloadPolicy,
        sink: &mut S,
    ) -> Result<Changes, Error> {
        let fields = &mut self.fields;
        (self.core).set_rules(fields, patterns, policy, &mut |nfa, _| nfa, sink)
    }

    /// The version of the pattern `name` in force (1 as first added, +1
    /// per replacement with another canonical text), if the engine has
    /// one.
    pub fn version(&self, name: &str) -> Option<u32> {
        self.core
            .patterns
            .iter()
            .find(|r| !r.draining && r.automaton.pattern().name == name)
            .map(|r| r.meta.version)
    }

    /// The names of the patterns in force, in order.
    fn current_names(&self) -> Vec<String> {
        self.patterns().map(|p| p.name.clone()).collect()
    }

    /// Works out and applies the change to `targets` ([`Core::change`]).
    fn change<S: Sink<E> + ?Sized>(
        &mut self,
        targets: Vec<(String, Target<Arc<Nfa<E>>>)>,
        policy: ReloadPolicy,
        fields: Option<E::Fields>,
        sink: &mut S,
    ) -> Result<Changes, Error> {
        let current = &mut self.fields;
        (self.core).change(targets, policy, (current, fields), &mut |nfa, _| nfa, sink)
    }

    /// Waiting [`Record`]s read the fields the patterns read now
    /// ([`Core::read_new_fields`]).
    pub(super) fn read_new_fields(&mut self) {
        self.core.read_new_fields(&self.fields);
    }
}

/// How a change of rules makes each automaton it compiled the core's: a
/// plain engine takes it as it is, one that traces a key wraps it. Given,
/// when the new automaton only takes or gives a `shadow` mark, the one of
/// the same states it replaces (whose partial matches go on in it).
pub(super) type MakeAutomaton<'m, E, A> = dyn FnMut(Arc<Nfa<E>>, Option<&A>) -> A + 'm;

impl<E: Event + 'static, A: Automaton<E, Cache = Cache>> Core<E, A> {
    /// [`Engine::set_rules`] of the core whose fields are `fields`, each
    /// automaton compiled for it made the core's by `make` (as
    /// [`Core::change`] makes them): a plain engine's, and one that traces
    /// a key (`Why::set_rules`), whose automata wrap the plain ones.
    pub(super) fn set_rules<P: PatternSet<E> + ?Sized, S: Sink<E> + ?Sized>(
        &mut self,
        fields: &mut E::Fields,
        patterns: &P,
        policy: ReloadPolicy,
        make: &mut MakeAutomaton<'_, E, A>,
        sink: &mut S,
    ) -> Result<Changes, Error> {
        let (compiled, mut new) = self.compile(fields, patterns, false)?;
        self.adopt_declarations(
            patterns.declarations(),
            compiled.iter().map(|nfa| nfa.pattern()),
            &mut new,
        )?;
        // (the scenes first: all or nothing)
        let ir: Vec<&crate::pattern::Pattern> = compiled.iter().map(|nfa| nfa.pattern()).collect();
        let scenes =
            self.compile_scenes(patterns.scenes(), &ir, &mut new, false, patterns.texts())?;
        let targets = compiled
            .into_iter()
            .map(|nfa| (nfa.pattern().name.clone(), Target::Set(nfa)))
            .collect();
        let part = self.in_part();
        let mut changes = self.change(targets, policy, (fields, Some(new)), make, sink)?;
        // (a part's scenes change with `set_scenes_in_part` only)
        if !part {
            changes.scenes_removed = self.set_scenes(scenes);
        }
        Ok(changes)
    }

    /// Works out and applies the change to `targets` (the names after it,
    /// in order; names of the engine not among them are removed): the
    /// engine's fields `current` become `new` (the change's, when its
    /// patterns were compiled with more), and each automaton compiled for
    /// the change becomes the core's by `make` (given, when it only takes
    /// or gives a `shadow` mark, the one of the same states it replaces).
    fn change<S: Sink<E> + ?Sized>(
        &mut self,
        targets: Vec<(String, Target<Arc<Nfa<E>>>)>,
        policy: ReloadPolicy,
        (current, new): (&mut E::Fields, Option<E::Fields>),
        make: &mut MakeAutomaton<'_, E, A>,
        sink: &mut S,
    ) -> Result<Changes, Error> {
        let runs = &self.patterns;
        let n = runs.len();
        let name_of = |p: usize| runs[p].automaton.pattern().name.as_str();
        let mut used = vec![false; n];
        let mut changes = Vec::new();
        let mut plan = Plan {
            order: Vec::with_capacity(targets.len()),
            discard: Vec::new(),
            drain: Vec::new(),
            versioned: Vec::new(),
            swap: Vec::new(),
        };
        for (name, target) in targets {
            // Its draining versions and its current one, in order.
            let olds: Vec<usize> = (0..n).filter(|&p| name_of(p) == name).collect();
            for &p in &olds {
                used[p] = true;
            }
            let current = olds.iter().copied().find(|&p| !runs[p].draining);
            let keep = |plan: &mut Plan<A>| plan.order.extend(olds.iter().map(|&p| Entry::Old(p)));
            match (target, current) {
                (Target::Keep, _) => keep(&mut plan),
                (Target::Set(nfa), Some(c))
                    if canonical_text(nfa.pattern())
                        == canonical_text(runs[c].automaton.pattern()) =>
                {
                    keep(&mut plan);
                    let (was, is) = (runs[c].automaton.pattern().shadow, nfa.pattern().shadow);
                    changes.push((
                        name,
                        match (was, is) {
                            (true, false) => Change::Promoted,
                            (false, true) => Change::Shadowed,
                            _ => Change::Unchanged,
                        },
                    ));
                    if was != is {
                        plan.swap.push((c, make(nfa, Some(&runs[c].automaton))));
                    }
                }
                (Target::Set(nfa), Some(c)) => {
                    let version = runs[c].meta.version.saturating_add(1);
                    match policy {
                        ReloadPolicy::Drain => {
                            keep(&mut plan);
                            plan.drain.push(c);
                            plan.versioned.extend(&olds);
                        }
                        ReloadPolicy::Restart => plan.discard.extend(&olds),
                    }
                    plan.order.push(Entry::New {
                        automaton: make(nfa, None),
                        version,
                        versioned: true,
                        succeeds: Some(c),
                    });
                    changes.push((name, Change::Changed { version }));
                }
                (Target::Set(nfa), None) => {
                    plan.order.push(Entry::New {
                        automaton: make(nfa, None),
                        version: 1,
                        versioned: false,
                        succeeds: None,
                    });
                    changes.push((name, Change::Added));
                }
            }
        }
        for p in (0..n).filter(|&p| !used[p]) {
            plan.discard.push(p);
            if !runs[p].draining {
                changes.push((name_of(p).to_string(), Change::Removed));
            }
        }
        let mut fields = new.unwrap_or_else(|| current.clone());
        self.apply(plan, &mut fields, sink)
            .map_err(|e| Error::new(ErrorKind::Field, e))?;
        *current = fields;
        self.read_new_fields(current);
        Ok(Changes {
            entries: changes,
            scenes_removed: Vec::new(),
        })
    }

    /// Waiting [`Record`]s decoded with fewer fields than the patterns
    /// now read (they were decoded before a change) read the others from
    /// their text, so that the new rules see them as if they had been
    /// decoded with them (`docs/dynamic-rules.md`, "Records decoded before
    /// a change"). Typed events have every field. Called at changes only:
    /// nothing is added to the path of an event.
    pub(super) fn read_new_fields(&mut self, fields: &E::Fields) {
        let Some(table) = (fields as &dyn Any).downcast_ref::<FieldTable>() else {
            return;
        };
        if self.clock.waiting() == 0 {
            return;
        }
        let paths = table.paths();
        self.clock.for_each_waiting_mut(|event| {
            if let Some(record) = (event as &mut dyn Any).downcast_mut::<Record>() {
                record.read_missing(&paths);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::engine::ReloadPolicy;
    use crate::event::FieldPath;
    use crate::{Engine, Output, Record, Value};

    /// Each group's start guard (`Group::guard`): every condition once,
    /// draining versions left out, recomputed when the rules change. As
    /// (pattern name, version) per condition, by group.
    fn guards(engine: &Engine<Record>) -> Vec<Option<Vec<(String, u32)>>> {
        let patterns = &engine.core.patterns;
        engine
            .core
            .groups
            .iter()
            .map(|g| {
                let guard = g.guard.as_ref()?;
                Some(
                    guard
                        .iter()
                        .map(|&(p, _)| {
                            let run = &patterns[p as usize];
                            (run.automaton.pattern().name.clone(), run.meta.version)
                        })
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn groups_unite_the_start_guards_of_their_starting_patterns() {
        let rules = |text: &str| {
            let loaded = crate::rules::load_str("r.cep", text);
            assert!(!loaded.has_errors(), "{}", loaded.render());
            loaded.patterns
        };
        let mut engine: Engine<Record> = Engine::new();
        engine
            .add(
                &rules(
                    r#"pattern a { partition by k within 1s match x followed by y
                               where x: t == "x" y: t == "y" }
                   pattern b { partition by k match x where x: t == "x" }
                   pattern c { partition by j match x where x: n > 1 }"#,
                )[..],
            )
            .unwrap();
        let name = |n: &str, v: u32| (n.to_string(), v);
        // `a` and `b` share `t == "x"`: one condition, tested through `a`.
        assert_eq!(
            guards(&engine),
            [Some(vec![name("a", 1)]), Some(vec![name("c", 1)])]
        );
        // A partial match of `a` on key 1, so that its old version drains.
        let id = |path: &str| {
            engine
                .fields()
                .get(&FieldPath::single(path))
                .unwrap()
                .index()
        };
        let (k, t) = (id("k"), id("t"));
        let mut values = vec![Value::Null; engine.fields().len()];
        values[k] = Value::Int(1);
        values[t] = Value::from("x");
        let mut out: Vec<Output<Record>> = Vec::new();
        engine.push(1, Record::new(values, Arc::from("{}")), &mut out);
        engine.watermark(1, &mut out);
        let v2 = rules(
            r#"pattern a { partition by k within 1s match x followed by y
                           where x: t == "z" y: t == "y" }"#,
        );
        engine
            .replace(&v2[..], ReloadPolicy::Drain, &mut out)
            .unwrap();
        assert_eq!(engine.version("a"), Some(2));
        assert!(engine.core.draining == 1, "the old `a` drains");
        // The draining version starts nothing: its `t == "x"` comes from `b`.
        let mut group = guards(&engine)[0].clone().unwrap();
        group.sort();
        assert_eq!(group, [name("a", 2), name("b", 1)]);
        // Removing `c` drops its group.
        engine.remove("c", &mut out).unwrap();
        assert_eq!(guards(&engine).len(), 1);
    }

    #[test]
    fn pattern_stats_count_per_name_over_versions_and_go_on_after_a_restore() {
        let rules = |text: &str| {
            let loaded = crate::rules::load_str("r.cep", text);
            assert!(!loaded.has_errors(), "{}", loaded.render());
            loaded.patterns
        };
        let mut engine: Engine<Record> = Engine::new().max_runs_per_key(1);
        engine
            .add(
                &rules(
                    r#"pattern a { partition by k within 10ms timeouts match x followed by y
                               where x: t == "x" y: t == "y" }
                   pattern b { match x where x: t == "y" }"#,
                )[..],
            )
            .unwrap();
        let mut out: Vec<Output<Record>> = Vec::new();
        let lines = [
            r#"{"ts": 1, "k": 1, "t": "x"}"#,
            r#"{"ts": 2, "k": 1, "t": "y"}"#,
            r#"{"ts": 3, "t": "y"}"#,
            r#"{"ts": 4, "k": 2, "t": "x"}"#,
            r#"{"ts": 5, "k": 2, "t": "x"}"#,
            r#"{"ts": 6, "k": {"o": 1}, "t": "x"}"#,
            r#"{"ts": 40, "k": 3, "t": "x"}"#,
        ];
        for line in lines {
            engine.push_json(line, "ts", &mut out).unwrap();
        }
        engine.watermark(40, &mut out);
        let stats = engine.pattern_stats();
        let a = &stats[0];
        assert_eq!((a.name.as_str(), a.version), ("a", 1));
        // 7 events: one without `k`, one with an object as `k`.
        assert_eq!((a.events, a.unkeyed, a.unusable_keys), (5, 1, 1));
        assert_eq!((a.matches, a.timeouts, a.dropped_runs), (1, 1, 1));
        assert_eq!(a.live_runs, 1, "key 3's partial match");
        let b = &stats[1];
        assert_eq!((b.events, b.matches, b.live_runs), (7, 2, 0));
        assert_eq!(engine.stats().matches, 3);
        // A new version of `a` (draining the old one) keeps the name's
        // counts; the old version's timeout joins them when it goes.
        let v2 = rules(
            r#"pattern a { partition by k within 10ms timeouts match x followed by y
                           where x: t == "z" y: t == "y" }
               pattern b { match x where x: t == "y" }"#,
        );
        engine
            .set_rules(&v2[..], ReloadPolicy::Drain, &mut out)
            .unwrap();
        engine
            .push_json(r#"{"ts": 60, "k": 4, "t": "q"}"#, "ts", &mut out)
            .unwrap();
        engine.watermark(60, &mut out);
        let a = &engine.pattern_stats()[0];
        assert_eq!((a.version, a.events, a.matches, a.timeouts), (2, 6, 1, 2));
        assert_eq!(a.live_runs, 0);
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["timeouts"], 2);
        let back: crate::PatternStats = serde_json::from_value(json).unwrap();
        assert_eq!(&back, a);
        // Restored, the counts go on (issue 38: a resumed run's rules
        // table keeps its totals); the version is kept.
        let mut snapshot = Vec::new();
        engine.snapshot(&mut snapshot).unwrap();
        let mut restored: Engine<Record> = Engine::new().max_runs_per_key(1);
        restored.add(&v2[..]).unwrap();
        restored.restore(&snapshot[..]).unwrap();
        assert_eq!(restored.pattern_stats(), engine.pattern_stats());
        let a = &restored.pattern_stats()[0];
        assert_eq!((a.version, a.events, a.matches, a.timeouts), (2, 6, 1, 2));
        assert_eq!(restored.stats(), engine.stats());
    }
}
