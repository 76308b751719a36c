//! Per-run state for stage references and aggregates.
//!
//! Compiling the conditions of a pattern registers every stage reference
//! (`s.f`) and aggregate (`sum(s.f)`) as a *slot* of one
//! [`AccumulatorLayout`]; identical `(stage, function, field)` triples share
//! a slot (`s.f` and `last(s.f)` are the same slot). A run carries
//! [`Accumulators`], one state per slot, updated by
//! [`Accumulators::on_take`] each time the run takes an event into a stage.
//!
//! Decisions where the spec is silent:
//! - `sum` stays an integer while every value is an integer; a float makes
//!   it a float. An integer overflow, or a value that is not a number, makes
//!   the sum null for the rest of the run (as `avg`, `min` and `max` become
//!   null on a value they cannot order or add).
//! - `min`/`max` order numbers numerically and strings by code point; a
//!   value of another kind than the ones seen before makes them null.
//! - `distinct` uses the language's `==` (so `1` and `1.0` are one value)
//!   and keeps the first-seen form.

use std::sync::Arc;

use super::ir::AggregateFunc;
use super::ops;
use crate::event::{Event, FieldId};
use crate::primitives::StageId;
use crate::value::{Value, ValueRef};

/// Index of a slot in an [`AccumulatorLayout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(u32);

impl SlotId {
    /// The index this id stands for.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What one slot accumulates: a function of one stage's accepted events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotSpec {
    /// The stage whose events are accumulated.
    pub stage: StageId,
    /// The aggregate (`Last` also serves `s.f`).
    pub func: AggregateFunc,
    /// The field read from each event (`None` for `count`).
    pub field: Option<FieldId>,
}

/// Collects the slots of one pattern while its expressions are compiled.
#[derive(Clone, Debug, Default)]
pub struct AccumulatorLayoutBuilder {
    slots: Vec<SlotSpec>,
    index: hashbrown::HashMap<SlotSpec, SlotId>,
}

impl AccumulatorLayoutBuilder {
    /// A builder with no slots.
    pub fn new() -> AccumulatorLayoutBuilder {
        AccumulatorLayoutBuilder::default()
    }

    /// The slot for `spec`, added if new.
    pub fn slot(&mut self, spec: SlotSpec) -> SlotId {
        if let Some(&id) = self.index.get(&spec) {
            return id;
        }
        let id = SlotId(u32::try_from(self.slots.len()).unwrap_or(u32::MAX));
        self.slots.push(spec);
        self.index.insert(spec, id);
        id
    }

    /// Freezes the slots into a layout.
    pub fn finish(self) -> AccumulatorLayout {
        let mut by_stage: Vec<Vec<SlotId>> = Vec::new();
        for (i, spec) in self.slots.iter().enumerate() {
            let stage = spec.stage.index();
            if by_stage.len() <= stage {
                by_stage.resize_with(stage + 1, Vec::new);
            }
            by_stage[stage].push(SlotId(i as u32));
        }
        AccumulatorLayout {
            slots: self.slots,
            by_stage: by_stage.into_iter().map(Vec::into_boxed_slice).collect(),
        }
    }
}

/// The slots of one pattern: what a run's [`Accumulators`] hold.
#[derive(Clone, Debug, Default)]
pub struct AccumulatorLayout {
    slots: Vec<SlotSpec>,
    by_stage: Box<[Box<[SlotId]>]>,
}

impl AccumulatorLayout {
    /// The slots, indexed by [`SlotId`].
    #[cfg(test)]
    pub fn slots(&self) -> &[SlotSpec] {
        &self.slots
    }

    /// Does the layout have no slots (no condition reads a stage)?
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Do `acc` have one state per slot of this layout, each of its slot's
    /// kind? (For accumulators read back from a snapshot.)
    pub fn fits(&self, acc: &Accumulators) -> bool {
        match &acc.states {
            None => self.slots.is_empty(),
            Some(states) => {
                states.len() == self.slots.len()
                    && self.slots.iter().zip(states.iter()).all(|(spec, state)| {
                        let fresh = SlotState::new(spec.func);
                        std::mem::discriminant(state) == std::mem::discriminant(&fresh)
                            && match (state, fresh) {
                                (
                                    SlotState::Extreme { max, .. },
                                    SlotState::Extreme { max: want, .. },
                                ) => *max == want,
                                _ => true,
                            }
                    })
            }
        }
    }

    /// Fresh state for a new run: every stage still empty. Does not allocate
    /// when the layout is empty.
    pub fn new_accumulators(&self) -> Accumulators {
        if self.slots.is_empty() {
            return Accumulators::default();
        }
        let states = self.slots.iter().map(|s| SlotState::new(s.func)).collect();
        Accumulators {
            states: Some(Arc::new(states)),
        }
    }
}

/// The accumulated state of one run, one entry per slot of its layout.
///
/// Cloning is cheap (a reference count); the first update after a clone
/// copies the state. Empty (no allocation) when the layout is empty.
#[derive(Clone, Debug, Default)]
pub struct Accumulators {
    states: Option<Arc<Vec<SlotState>>>,
}

/// A snapshot writes the states (no sharing: a clone shares them only
/// until one is updated).
impl crate::persist::Save for Accumulators {
    fn save<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&self.states.as_deref(), s)
    }
}

impl crate::persist::Load for Accumulators {
    fn load<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let states: Option<Vec<SlotState>> = serde::Deserialize::deserialize(d)?;
        Ok(Accumulators {
            states: states.map(Arc::new),
        })
    }
}

impl Accumulators {
    /// Records that the run took `event` into `stage`. The layout must be the
    /// one these accumulators were made by (other layouts are ignored
    /// slot by slot, never a panic).
    #[inline]
    pub fn on_take<E: Event + ?Sized>(
        &mut self,
        layout: &AccumulatorLayout,
        stage: StageId,
        event: &E,
    ) {
        let Some(slots) = layout.by_stage.get(stage.index()) else {
            return;
        };
        let Some(states) = self.states.as_mut() else {
            return;
        };
        if slots.is_empty() {
            return;
        }
        Self::update_slots(layout, slots, states, event);
    }

    /// [`Self::on_take`] once there is something to update.
    #[inline(never)]
    fn update_slots<E: Event + ?Sized>(
        layout: &AccumulatorLayout,
        slots: &[SlotId],
        states: &mut Arc<Vec<SlotState>>,
        event: &E,
    ) {
        let states = Arc::make_mut(states);
        for &slot in slots.iter() {
            let (Some(spec), Some(state)) =
                (layout.slots.get(slot.index()), states.get_mut(slot.index()))
            else {
                continue;
            };
            match spec.field {
                Some(field) => state.update(event.field(field), || event.field_owned(field)),
                None => state.update(ValueRef::Null, || Value::Null),
            }
        }
    }

    /// The current value of a slot (null for an unknown slot).
    pub fn get(&self, slot: SlotId) -> ValueRef<'_> {
        match self.states.as_ref().and_then(|s| s.get(slot.index())) {
            Some(state) => state.value(),
            None => ValueRef::Null,
        }
    }

    /// Is there no state at all (empty layout)?
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.states.is_none()
    }
}

/// The running state of one slot.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum SlotState {
    Count(i64),
    Sum(#[serde(with = "crate::persist::via")] Value),
    Avg {
        ints: i128,
        floats: f64,
        n: u64,
        bad: bool,
    },
    Extreme {
        #[serde(with = "crate::persist::via")]
        value: Value,
        max: bool,
        bad: bool,
    },
    First(#[serde(with = "crate::persist::via")] Option<Value>),
    Last(#[serde(with = "crate::persist::via")] Value),
    Distinct(#[serde(with = "crate::persist::via")] Value),
}

impl SlotState {
    fn new(func: AggregateFunc) -> SlotState {
        match func {
            AggregateFunc::Count => SlotState::Count(0),
            AggregateFunc::Sum => SlotState::Sum(Value::Int(0)),
            AggregateFunc::Avg => SlotState::Avg {
                ints: 0,
                floats: 0.0,
                n: 0,
                bad: false,
            },
            AggregateFunc::Min | AggregateFunc::Max => SlotState::Extreme {
                value: Value::Null,
                max: func == AggregateFunc::Max,
                bad: false,
            },
            AggregateFunc::First => SlotState::First(None),
            AggregateFunc::Last => SlotState::Last(Value::Null),
            AggregateFunc::Distinct => SlotState::Distinct(ops::empty_list()),
        }
    }

    /// Folds in one accepted event's field (null when the slot reads no
    /// field); `owned` makes an owned copy of it, called only when the
    /// state keeps the value.
    fn update(&mut self, value: ValueRef<'_>, owned: impl FnOnce() -> Value) {
        match self {
            SlotState::Count(n) => *n = n.saturating_add(1),
            SlotState::First(first) => {
                if first.is_none() {
                    *first = Some(owned());
                }
            }
            SlotState::Last(last) => *last = owned(),
            _ if value.is_null() => {}
            SlotState::Sum(sum) => {
                if !sum.is_null() {
                    *sum = match value {
                        ValueRef::Int(_) | ValueRef::Float(_) => {
                            ops::arithmetic(crate::expr::BinaryOp::Add, (&*sum).into(), value)
                        }
                        _ => Value::Null,
                    };
                }
            }
            SlotState::Avg {
                ints,
                floats,
                n,
                bad,
            } => match value {
                ValueRef::Int(i) => {
                    *ints = ints.saturating_add(i128::from(i));
                    *n += 1;
                }
                ValueRef::Float(f) => {
                    *floats += f;
                    *n += 1;
                }
                _ => *bad = true,
            },
            SlotState::Extreme {
                value: best,
                max,
                bad,
            } => {
                if *bad {
                    return;
                }
                if best.is_null() {
                    if ops::order(value, value).is_some() {
                        *best = owned();
                    } else {
                        *bad = true;
                    }
                    return;
                }
                match ops::order(value, (&*best).into()) {
                    Some(std::cmp::Ordering::Greater) if *max => *best = owned(),
                    Some(std::cmp::Ordering::Less) if !*max => *best = owned(),
                    Some(_) => {}
                    None => *bad = true,
                }
            }
            SlotState::Distinct(list) => {
                if let Value::List(items) = list {
                    if !items
                        .iter()
                        .any(|i| ops::equals(i.into(), value) == Some(true))
                    {
                        let mut grown = Vec::with_capacity(items.len() + 1);
                        grown.extend(items.iter().cloned());
                        grown.push(owned());
                        *list = Value::List(Arc::from(grown));
                    }
                }
            }
        }
    }

    fn value(&self) -> ValueRef<'_> {
        match self {
            SlotState::Count(n) => ValueRef::Int(*n),
            SlotState::Sum(v) | SlotState::Last(v) | SlotState::Distinct(v) => v.into(),
            SlotState::First(v) => v.as_ref().map_or(ValueRef::Null, ValueRef::from),
            SlotState::Avg { bad: true, .. } | SlotState::Extreme { bad: true, .. } => {
                ValueRef::Null
            }
            SlotState::Avg { n: 0, .. } => ValueRef::Null,
            SlotState::Avg {
                ints, floats, n, ..
            } => ValueRef::Float((*ints as f64 + floats) / *n as f64),
            SlotState::Extreme { value, .. } => value.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NoFields;
    use crate::expr::ops::string;

    /// An event with one field (id 0).
    struct One(Value);

    impl Event for One {
        type Fields = NoFields;

        fn field(&self, id: FieldId) -> ValueRef<'_> {
            match id.index() {
                0 => (&self.0).into(),
                _ => ValueRef::Null,
            }
        }
    }

    const S: StageId = StageId(0);
    const T: StageId = StageId(1);

    fn spec(func: AggregateFunc) -> SlotSpec {
        SlotSpec {
            stage: S,
            func,
            field: (func != AggregateFunc::Count).then_some(FieldId::from_index(0)),
        }
    }

    /// Folds `values` into stage S and reads every aggregate.
    fn fold(values: &[Value]) -> Vec<(AggregateFunc, Value)> {
        use AggregateFunc::*;
        let funcs = [Count, Sum, Avg, Min, Max, First, Last, Distinct];
        let mut builder = AccumulatorLayoutBuilder::new();
        let ids: Vec<SlotId> = funcs.iter().map(|&f| builder.slot(spec(f))).collect();
        let layout = builder.finish();
        let mut acc = layout.new_accumulators();
        for v in values {
            acc.on_take(&layout, S, &One(v.clone()));
        }
        funcs
            .iter()
            .zip(ids)
            .map(|(&f, id)| (f, acc.get(id).to_owned()))
            .collect()
    }

    fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::from(items))
    }

    #[test]
    fn aggregates_over_no_events() {
        use AggregateFunc::*;
        let got = fold(&[]);
        let want = vec![
            (Count, Value::Int(0)),
            (Sum, Value::Int(0)),
            (Avg, Value::Null),
            (Min, Value::Null),
            (Max, Value::Null),
            (First, Value::Null),
            (Last, Value::Null),
            (Distinct, list(vec![])),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn aggregates_skip_nulls_but_first_and_last_do_not() {
        use AggregateFunc::*;
        let got = fold(&[
            Value::Null,
            Value::Int(3),
            Value::Int(1),
            Value::Int(3),
            Value::Null,
        ]);
        let want = vec![
            (Count, Value::Int(5)),
            (Sum, Value::Int(7)),
            (Avg, Value::Float(7.0 / 3.0)),
            (Min, Value::Int(1)),
            (Max, Value::Int(3)),
            (First, Value::Null),
            (Last, Value::Null),
            (Distinct, list(vec![Value::Int(3), Value::Int(1)])),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn mixed_numbers() {
        use AggregateFunc::*;
        let got = fold(&[Value::Int(2), Value::Float(0.5), Value::Float(2.0)]);
        let want = vec![
            (Count, Value::Int(3)),
            (Sum, Value::Float(4.5)),
            (Avg, Value::Float(1.5)),
            (Min, Value::Float(0.5)),
            (Max, Value::Int(2)),
            (First, Value::Int(2)),
            (Last, Value::Float(2.0)),
            (Distinct, list(vec![Value::Int(2), Value::Float(0.5)])),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn strings_and_mismatches() {
        use AggregateFunc::*;
        let got = fold(&[string("b"), string("a"), string("c")]);
        assert_eq!(got[3], (Min, string("a")));
        assert_eq!(got[4], (Max, string("c")));
        assert_eq!(got[1], (Sum, Value::Null));
        assert_eq!(got[2], (Avg, Value::Null));
        let got = fold(&[Value::Int(1), string("a")]);
        assert_eq!(got[3], (Min, Value::Null));
        assert_eq!(got[4], (Max, Value::Null));
        let got = fold(&[Value::Bool(true)]);
        assert_eq!(got[3], (Min, Value::Null));
    }

    #[test]
    fn sum_overflow_is_null() {
        let got = fold(&[Value::Int(i64::MAX), Value::Int(1), Value::Int(-5)]);
        assert_eq!(got[1].1, Value::Null);
        // avg does not overflow: it adds exactly.
        assert_eq!(got[2].1, Value::Float((i64::MAX as f64 - 4.0) / 3.0));
    }

    #[test]
    fn slots_are_shared_and_grouped_by_stage() {
        let mut builder = AccumulatorLayoutBuilder::new();
        let a = builder.slot(spec(AggregateFunc::Sum));
        let b = builder.slot(SlotSpec {
            stage: T,
            ..spec(AggregateFunc::Sum)
        });
        assert_eq!(builder.slot(spec(AggregateFunc::Sum)), a);
        assert_ne!(a, b);
        let layout = builder.finish();
        assert_eq!(layout.slots().len(), 2);
        let mut acc = layout.new_accumulators();
        acc.on_take(&layout, T, &One(Value::Int(5)));
        acc.on_take(&layout, StageId(9), &One(Value::Int(5)));
        assert_eq!(acc.get(a), Value::Int(0));
        assert_eq!(acc.get(b), Value::Int(5));
    }

    #[test]
    fn clones_are_independent() {
        let mut builder = AccumulatorLayoutBuilder::new();
        let count = builder.slot(spec(AggregateFunc::Count));
        let layout = builder.finish();
        let mut a = layout.new_accumulators();
        a.on_take(&layout, S, &One(Value::Null));
        let mut b = a.clone();
        b.on_take(&layout, S, &One(Value::Null));
        assert_eq!(a.get(count), Value::Int(1));
        assert_eq!(b.get(count), Value::Int(2));
    }

    #[test]
    fn empty_layout_has_no_state() {
        let layout = AccumulatorLayoutBuilder::new().finish();
        let mut acc = layout.new_accumulators();
        assert!(acc.is_empty());
        acc.on_take(&layout, S, &One(Value::Int(1)));
        assert!(acc.is_empty());
        assert_eq!(acc.get(SlotId(0)), Value::Null);
    }
}
