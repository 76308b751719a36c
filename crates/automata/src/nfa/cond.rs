//! Transition conditions: small boolean combinations of *condition slots*.
//!
//! Every stage condition and every `until` condition of a pattern is compiled
//! once into a [`Slot`]. Transitions carry a [`CondId`] into a flat arena of
//! [`CondNode`]s built from slots with `And`, `Not`, `True` and `False`, the
//! same shapes Flink's compiler builds (`RichAndCondition`,
//! `RichNotCondition`, `BooleanConditions.trueFunction()`).
//!
//! Slots that do not read the partial match give the same answer for every
//! run, so their value is cached per event in caller-owned [`SlotValues`].
//! Automata compiled from equal conditions may share those values: a
//! [`ConditionTable`] numbers equal conditions alike across automata (an
//! engine evaluates `type == "login"` once per event, not once per
//! pattern).

use std::fmt::Write as _;

use hashbrown::HashMap;

use crate::expr::{Accumulators, CompiledExpr};
use crate::lookup::LookupRef;
use crate::pattern::{NativeFn, StageEvents};

/// Index of a condition node in an [`Nfa`](super::Nfa)'s arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CondId(pub u32);

/// Deepest nesting of condition nodes the compiler builds (a guard: the
/// compiler's own shapes stay far below it).
pub const MAX_COND_DEPTH: u32 = 64;

/// One node of a transition condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CondNode {
    /// Always holds.
    True,
    /// Never holds.
    False,
    /// The value of a condition slot.
    Slot(u32),
    /// Negation.
    Not(CondId),
    /// Conjunction (short-circuit, left first).
    And(CondId, CondId),
}

/// What a condition needs in order to hold ([`Conditions::needs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// It never holds.
    Never,
    /// It holds only when this slot (which does not read the run) does.
    Slot(u32),
    /// Nothing simpler than the condition itself.
    Unknown,
}

/// A compiled stage or `until` condition.
pub enum SlotKind<E> {
    /// A closure from the builder API.
    Native(NativeFn<E>),
    /// An expression of the language.
    Expr(CompiledExpr),
}

/// A compiled stage or `until` condition and whether it reads the run.
pub struct Slot<E> {
    /// How to evaluate it.
    pub kind: SlotKind<E>,
    /// Does it read the partial match (must be evaluated per run)?
    pub per_run: bool,
    /// Shown by `explain`: the stage name, or `until(stage)`.
    pub label: String,
    /// What makes two slots the same condition, for a [`ConditionTable`]
    /// (`None`: never shared): the expression's structure, for an
    /// expression that does not read the run.
    pub share_key: Option<String>,
}

/// Per-event values of condition slots that do not read the run, for any
/// number of automata (slot `s` of an automaton is value number
/// `shared[s]`). [`next_event`](Self::next_event) forgets every value at
/// once: each value carries the number of the event it was computed for.
#[derive(Debug)]
pub struct SlotValues {
    stamp: u32,
    /// Per value: `stamp << 1 | value`.
    values: Vec<u32>,
}

impl Default for SlotValues {
    fn default() -> Self {
        // Stamp 0 marks "never computed".
        SlotValues {
            stamp: 1,
            values: Vec::new(),
        }
    }
}

impl SlotValues {
    /// Forgets every value (a new event).
    #[inline]
    pub fn next_event(&mut self) {
        self.stamp += 1;
        if self.stamp == 1 << 31 {
            self.values.fill(0);
            self.stamp = 1;
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<bool> {
        let v = *self.values.get(i)?;
        (v >> 1 == self.stamp).then_some(v & 1 == 1)
    }

    #[inline]
    fn set(&mut self, i: usize, value: bool) {
        let v = self.stamp << 1 | u32::from(value);
        match self.values.get_mut(i) {
            Some(slot) => *slot = v,
            None => self.grow_and_set(i, v),
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_and_set(&mut self, i: usize, v: u32) {
        self.values.resize(i + 1, 0);
        self.values[i] = v;
    }
}

/// Numbers conditions for [`SlotValues`] shared by several automata: equal
/// conditions (same [`Slot::share_key`]) get the same number, every other
/// slot one of its own. It knows what each number it gave stands for, so
/// that an automaton numbered by another table can be driven with this one
/// when the numbers agree ([`ConditionTable::adopt`]): the automata of a
/// rule set are numbered once and shared by many engines.
#[derive(Clone, Debug, Default)]
pub struct ConditionTable {
    by_key: HashMap<String, u32>,
    /// Per value number, what it stands for (`None`: free).
    owners: Vec<Option<Owner>>,
}

/// What a value number of a [`ConditionTable`] stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// The conditions of one share key (in `by_key`).
    Key,
    /// One slot of one automaton (its [`Nfa::id`](crate::nfa::Nfa::id)),
    /// a condition that is never shared.
    Slot(u64, u32),
}

impl ConditionTable {
    /// The value number of a slot with this share key, `owner` the slot
    /// when it has none.
    fn number(&mut self, key: Option<&String>, owner: (u64, u32)) -> u32 {
        if let Some(&n) = key.and_then(|key| self.by_key.get(key)) {
            return n;
        }
        let n = self.owners.len() as u32;
        match key {
            Some(key) => {
                self.by_key.insert(key.clone(), n);
                self.owners.push(Some(Owner::Key));
            }
            None => self.owners.push(Some(Owner::Slot(owner.0, owner.1))),
        }
        n
    }

    /// Takes the numbers `nfa`'s conditions already have (from the table
    /// that numbered them, [`Nfa::share_conditions`](crate::nfa::Nfa::share_conditions)),
    /// when they mean here what they meant there: a share key's number is
    /// its number here or free here, and a slot of its own has its number
    /// here or a free one. Returns whether it did (otherwise the table is
    /// unchanged, and `nfa` cannot be driven with the values this table
    /// numbers). Automata numbered by one table are always taken together
    /// by a table that numbered nothing else.
    ///
    /// Each is checked against the table and the slots of `nfa` before it,
    /// then taken: time linear in `nfa`'s slots, not in the table (which a
    /// copy would be, once per automaton of a rule set: quadratic).
    pub fn adopt<E>(&mut self, nfa: &crate::nfa::Nfa<E>) -> bool {
        if !self.admits(nfa) {
            return false;
        }
        let (id, conds) = (nfa.id, &nfa.conds);
        for (s, (slot, &n)) in conds.slots.iter().zip(&conds.shared).enumerate() {
            let index = n as usize;
            if self.owners.len() <= index {
                self.owners.resize(index + 1, None);
            }
            // (free, or this owner already: `admits` checked it)
            self.owners[index] = Some(match &slot.share_key {
                Some(key) => {
                    if !self.by_key.contains_key(key) {
                        self.by_key.insert(key.clone(), n);
                    }
                    Owner::Key
                }
                None => Owner::Slot(id, s as u32),
            });
        }
        true
    }

    /// Would [`adopt`](Self::adopt) take `nfa`'s numbers? Each slot's
    /// number must mean here, or in a slot of `nfa` before it, what it
    /// means in `nfa`, or be free in both.
    pub fn admits<E>(&self, nfa: &crate::nfa::Nfa<E>) -> bool {
        let (id, conds) = (nfa.id, &nfa.conds);
        // What the slots before took (never what the table has already).
        let mut keys: HashMap<&str, u32> = HashMap::new();
        let mut owners: HashMap<usize, Owner> = HashMap::new();
        for (s, (slot, &n)) in conds.slots.iter().zip(&conds.shared).enumerate() {
            let owner = match &slot.share_key {
                Some(_) => Owner::Key,
                None => Owner::Slot(id, s as u32),
            };
            let index = n as usize;
            if let Some(key) = &slot.share_key {
                let known = keys.get(key.as_str()).or_else(|| self.by_key.get(key));
                match known {
                    Some(&m) if m == n => continue,
                    Some(_) => return false,
                    None => {}
                }
            }
            let taken = owners
                .get(&index)
                .copied()
                .or_else(|| self.owners.get(index).copied().flatten());
            match taken {
                Some(o) if o == owner && owner != Owner::Key => continue,
                Some(_) => return false,
                None => {}
            }
            owners.insert(index, owner);
            if let Some(key) = &slot.share_key {
                keys.insert(key, n);
            }
        }
        true
    }
}

/// What a condition sees of the run it is evaluated for (`L`: how it
/// holds the lists and indicators it reads, [`LookupRef`]).
pub struct EvalCtx<'a, E, L = &'a dyn crate::lookup::Lookup> {
    /// The candidate event.
    pub event: &'a E,
    /// The run's accumulators (stage references of expressions).
    pub accumulators: &'a Accumulators,
    /// The run's accepted events (native iterative conditions).
    pub stages: &'a dyn StageEvents<E>,
    /// The lists and indicators conditions read (the engine's, at this
    /// event; [`NoLookup`](crate::lookup::NoLookup) when there are none).
    pub lookup: L,
}

/// The condition arena of one automaton.
pub struct Conditions<E> {
    pub(crate) nodes: Vec<CondNode>,
    depth: Vec<u32>,
    pub(crate) slots: Vec<Slot<E>>,
    /// Per slot, its number in [`SlotValues`] (the slot's own index until
    /// [`share`](Self::share)).
    pub(super) shared: Vec<u32>,
}

impl<E> Default for Conditions<E> {
    fn default() -> Self {
        Conditions {
            nodes: Vec::new(),
            depth: Vec::new(),
            slots: Vec::new(),
            shared: Vec::new(),
        }
    }
}

impl<E> Conditions<E> {
    /// Adds a slot; returns its index.
    pub fn push_slot(&mut self, slot: Slot<E>) -> u32 {
        self.shared.push(self.slots.len() as u32);
        self.slots.push(slot);
        (self.slots.len() - 1) as u32
    }

    /// Numbers the slots' values by `table` (`id` the automaton's), so that
    /// automata numbered by one table share the values of equal
    /// conditions.
    pub fn share(&mut self, id: u64, table: &mut ConditionTable) {
        for (s, (shared, slot)) in self.shared.iter_mut().zip(&self.slots).enumerate() {
            *shared = table.number(slot.share_key.as_ref(), (id, s as u32));
        }
    }

    /// Adds a node (simplifying constant cases), or `None` when it would nest
    /// deeper than [`MAX_COND_DEPTH`].
    pub fn add(&mut self, node: CondNode) -> Option<CondId> {
        let node = self.simplify(node);
        if let Some(i) = self.nodes.iter().position(|n| *n == node) {
            return Some(CondId(i as u32));
        }
        let depth = match node {
            CondNode::True | CondNode::False | CondNode::Slot(_) => 1,
            CondNode::Not(a) => self.depth[a.0 as usize] + 1,
            CondNode::And(a, b) => self.depth[a.0 as usize].max(self.depth[b.0 as usize]) + 1,
        };
        if depth > MAX_COND_DEPTH {
            return None;
        }
        self.nodes.push(node);
        self.depth.push(depth);
        Some(CondId((self.nodes.len() - 1) as u32))
    }

    fn simplify(&self, node: CondNode) -> CondNode {
        let get = |c: CondId| self.nodes[c.0 as usize];
        match node {
            CondNode::Not(a) => match get(a) {
                CondNode::True => CondNode::False,
                CondNode::False => CondNode::True,
                CondNode::Not(inner) => get(inner),
                _ => node,
            },
            CondNode::And(a, b) => match (get(a), get(b)) {
                (CondNode::True, _) => get(b),
                (_, CondNode::True) => get(a),
                (CondNode::False, _) | (_, CondNode::False) => CondNode::False,
                _ => node,
            },
            _ => node,
        }
    }

    /// Evaluates a condition for one run; `cache` holds per-event values of
    /// slots that do not read the run. The shapes transitions carry almost
    /// always (`true`, a slot, a negated slot) are evaluated inline, a
    /// cached slot in a few instructions.
    #[inline]
    pub fn eval<L: LookupRef>(
        &self,
        id: CondId,
        ctx: &EvalCtx<'_, E, L>,
        cache: &mut SlotValues,
    ) -> bool
    where
        E: crate::event::Event,
    {
        match self.nodes[id.0 as usize] {
            CondNode::True => true,
            CondNode::Slot(s) => self.eval_slot(s as usize, ctx, cache),
            CondNode::Not(a) => match self.nodes[a.0 as usize] {
                CondNode::Slot(s) => !self.eval_slot(s as usize, ctx, cache),
                _ => self.eval_nested(id, ctx, cache),
            },
            _ => self.eval_nested(id, ctx, cache),
        }
    }

    /// [`eval`](Self::eval) for nested nodes, out of line (it recurses, at
    /// most [`MAX_COND_DEPTH`] deep).
    #[inline(never)]
    fn eval_nested<L: LookupRef>(
        &self,
        id: CondId,
        ctx: &EvalCtx<'_, E, L>,
        cache: &mut SlotValues,
    ) -> bool
    where
        E: crate::event::Event,
    {
        match self.nodes[id.0 as usize] {
            CondNode::True => true,
            CondNode::False => false,
            CondNode::Slot(s) => self.eval_slot(s as usize, ctx, cache),
            CondNode::Not(a) => !self.eval_nested(a, ctx, cache),
            CondNode::And(a, b) => {
                self.eval_nested(a, ctx, cache) && self.eval_nested(b, ctx, cache)
            }
        }
    }

    /// A slot's value: from the cache when known (per-run slots are never
    /// cached), else computed.
    #[inline(always)]
    fn eval_slot<L: LookupRef>(
        &self,
        s: usize,
        ctx: &EvalCtx<'_, E, L>,
        cache: &mut SlotValues,
    ) -> bool
    where
        E: crate::event::Event,
    {
        let value = self.shared.get(s).map_or(usize::MAX, |&n| n as usize);
        match cache.get(value) {
            Some(known) => known,
            None => self.compute_slot(s, ctx, cache),
        }
    }

    /// Evaluates a slot, caching the value when it does not read the run.
    #[inline(never)]
    fn compute_slot<L: LookupRef>(
        &self,
        s: usize,
        ctx: &EvalCtx<'_, E, L>,
        cache: &mut SlotValues,
    ) -> bool
    where
        E: crate::event::Event,
    {
        let slot = &self.slots[s];
        let value = match &slot.kind {
            SlotKind::Native(f) => f(ctx.event, ctx.stages),
            SlotKind::Expr(e) => e.matches_with(ctx.event, ctx.accumulators, ctx.lookup.lookup()),
        };
        if !slot.per_run {
            cache.set(self.shared[s] as usize, value);
        }
        value
    }

    /// What condition `id` needs in order to hold, for tests made before a
    /// run is stepped: [`Needs::Slot`] a slot that does not read the run
    /// (the leftmost such one of a conjunction) and must be true,
    /// [`Needs::Never`] when it never holds, [`Needs::Unknown`] otherwise
    /// (`true`, a negation, a slot that reads the run).
    pub fn needs(&self, id: CondId) -> Needs {
        match self.nodes[id.0 as usize] {
            CondNode::False => Needs::Never,
            CondNode::Slot(s) if !self.slots[s as usize].per_run => Needs::Slot(s),
            CondNode::And(a, b) => match self.needs(a) {
                Needs::Unknown => self.needs(b),
                known => known,
            },
            _ => Needs::Unknown,
        }
    }

    /// The value of slot `s` for this event, when `cache` knows it.
    #[inline(always)]
    pub fn cached(&self, s: u32, cache: &SlotValues) -> Option<bool> {
        cache.get(
            self.shared
                .get(s as usize)
                .map_or(usize::MAX, |&n| n as usize),
        )
    }

    /// The value of slot `s` for this event (from `cache` when known).
    #[inline]
    pub fn slot_holds<L: LookupRef>(
        &self,
        s: u32,
        ctx: &EvalCtx<'_, E, L>,
        cache: &mut SlotValues,
    ) -> bool
    where
        E: crate::event::Event,
    {
        self.eval_slot(s as usize, ctx, cache)
    }

    /// Writes a condition as text (`a`, `!a`, `a & !until(b)`, `true`).
    pub fn describe(&self, id: CondId) -> String {
        let mut out = String::new();
        self.describe_into(id, &mut out);
        out
    }

    fn describe_into(&self, id: CondId, out: &mut String) {
        match self.nodes[id.0 as usize] {
            CondNode::True => out.push_str("true"),
            CondNode::False => out.push_str("false"),
            CondNode::Slot(s) => out.push_str(&self.slots[s as usize].label),
            CondNode::Not(a) => {
                out.push('!');
                let nested = matches!(self.nodes[a.0 as usize], CondNode::And(..));
                if nested {
                    out.push('(');
                }
                self.describe_into(a, out);
                if nested {
                    out.push(')');
                }
            }
            CondNode::And(a, b) => {
                self.describe_into(a, out);
                let _ = write!(out, " & ");
                self.describe_into(b, out);
            }
        }
    }
}
