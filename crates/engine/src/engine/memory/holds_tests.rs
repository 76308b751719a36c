//! The holds of a list's values by their origins (`docs/lists.md`,
//! "Origins"), against a model: each origin holds a value apart, with an
//! expiry of its own; the value is in the list while a hold is alive; an
//! origin's remove ends its own hold only; a hold of no recorded origin
//! (restored from a snapshot of format 8) is ended by any change of the
//! value, and a change of no recorded origin ends every hold.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{EntryOrigin, EntrySet};
use crate::lookup::ListKind;
use crate::primitives::Timestamp;
use crate::value::ValueRef;

/// Value `v` of the model: long, so that removals make the list rewrite
/// its arena now and then (the holds follow their entries).
fn text(v: i64) -> String {
    format!("{v}-{}", "x".repeat(600))
}

fn origins() -> Vec<EntryOrigin> {
    vec![
        EntryOrigin::Library,
        EntryOrigin::Records,
        EntryOrigin::Rules,
        EntryOrigin::File("a.csv".into()),
        EntryOrigin::File("b.jsonl".into()),
        EntryOrigin::Unrecorded,
    ]
}

#[derive(Clone, Debug)]
enum Step {
    /// Origin (its place in [`origins`]) holds value until now + the
    /// lifetime.
    Hold(usize, i64, i64),
    /// Origin lets the value go.
    Release(usize, i64),
    /// Event time moves on, and the list sweeps what expired (or not).
    Advance(i64, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..6, 0i64..4, 1i64..40).prop_map(|(o, v, d)| Step::Hold(o, v, d)),
        3 => (0usize..6, 0i64..4).prop_map(|(o, v)| Step::Release(o, v)),
        2 => (0i64..15, any::<bool>()).prop_map(|(d, sweep)| Step::Advance(d, sweep)),
    ]
}

/// The model: each value's holds, by origin.
#[derive(Default)]
struct Model {
    holds: BTreeMap<i64, BTreeMap<usize, Timestamp>>,
}

const UNRECORDED: usize = 5;

impl Model {
    fn change(&mut self, origin: usize, value: i64, until: Option<Timestamp>) {
        let holds = self.holds.entry(value).or_default();
        if origin == UNRECORDED {
            holds.clear();
        }
        holds.remove(&UNRECORDED);
        holds.remove(&origin);
        if let Some(until) = until {
            holds.insert(origin, until);
        }
    }

    fn contains(&self, value: i64, now: Timestamp) -> bool {
        (self.holds.get(&value)).is_some_and(|h| h.values().any(|&e| e > now))
    }

    fn hold_of(&self, value: i64, origin: usize, now: Timestamp) -> Option<Timestamp> {
        let e = *self.holds.get(&value)?.get(&origin)?;
        // (a hold ended by expiry may be there or not: not asked)
        (e > now).then_some(e)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_holds_of_values_by_their_origins_are_the_models(
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let origins = origins();
        let mut set = EntrySet::new(ListKind::Values);
        let mut model = Model::default();
        let mut now: Timestamp = 0;
        for step in &steps {
            match *step {
                Step::Hold(o, v, d) => {
                    set.hold(ValueRef::Str(&text(v)), now + d, usize::MAX, &origins[o], now).unwrap();
                    model.change(o, v, Some(now + d));
                }
                Step::Release(o, v) => {
                    set.release(ValueRef::Str(&text(v)), &origins[o], now).unwrap();
                    model.change(o, v, None);
                }
                Step::Advance(d, sweep) => {
                    now += d;
                    if sweep {
                        set.expire(now);
                    }
                }
            }
            for v in 0..4 {
                prop_assert_eq!(
                    set.contains(ValueRef::Str(&text(v)), now),
                    Some(model.contains(v, now)),
                    "value {} at {} after {:?}", v, now, step
                );
                let bytes = set.encode(ValueRef::Str(&text(v))).unwrap();
                for (o, origin) in origins.iter().enumerate() {
                    let held = set.hold_of(&bytes, origin).filter(|&e| e > now);
                    prop_assert_eq!(held, model.hold_of(v, o, now), "{} of {}", origin, v);
                }
            }
            // Each origin's holds, visited, are the model's.
            for (o, origin) in origins.iter().enumerate() {
                let mut held = Vec::new();
                set.each_held_by(origin, &mut |bytes, e| held.push((bytes.to_vec(), e)));
                let mut visited = BTreeMap::new();
                for (bytes, e) in held {
                    let value = set.decode(&bytes).expect("an entry decodes");
                    prop_assert_eq!(set.encode((&value).into()), Some(bytes));
                    if e > now {
                        let crate::value::Value::Str(text) = value else {
                            panic!("a text decodes as a text");
                        };
                        visited.insert(text.to_string(), e);
                    }
                }
                let wanted: BTreeMap<String, Timestamp> = (0..4)
                    .filter_map(|v| Some((text(v), model.hold_of(v, o, now)?)))
                    .collect();
                prop_assert_eq!(visited, wanted, "the holds of {}", origin);
            }
        }
        set.expire(now);
        let alive = (0..4).filter(|&v| model.contains(v, now)).count();
        prop_assert_eq!(set.len(), alive);
    }
}

/// More origins than a slot names (127): their holds are kept beside the
/// table, and the value leaves with the last of them.
#[test]
fn a_value_held_by_hundreds_of_files_leaves_with_the_last() {
    let mut set = EntrySet::new(ListKind::Cidr);
    let files: Vec<EntryOrigin> = (0..300)
        .map(|i| EntryOrigin::File(format!("f{i}.csv").into()))
        .collect();
    let net = "10.0.0.0/8";
    for (i, file) in files.iter().enumerate() {
        // (another value first, so that the net's holders are new)
        set.hold(ValueRef::Str("192.168.0.1"), 1000, usize::MAX, file, 0)
            .unwrap();
        set.hold(ValueRef::Str(net), 100 + i as i64, usize::MAX, file, 0)
            .unwrap();
    }
    assert_eq!(set.len(), 2);
    let inside = ValueRef::Str("10.1.2.3");
    for (i, file) in files.iter().enumerate().rev() {
        assert_eq!(set.contains(inside, 0), Some(true), "{i}");
        // (the latest hold is the value's expiry)
        let bytes = set.encode(ValueRef::Str(net)).unwrap();
        assert_eq!(set.expiry_of(&bytes), Some(100 + i as i64));
        let gone = set.release(ValueRef::Str(net), file, 0).unwrap();
        assert_eq!(gone, i == 0);
    }
    assert_eq!(set.contains(inside, 0), Some(false));
    assert_eq!(set.len(), 1);
}

/// Entries held by two origins keep their holds when the list rewrites
/// its arena (half of it garbage), and the holds of those that left go.
#[test]
fn the_other_origins_holds_follow_their_entries_when_the_arena_is_rewritten() {
    let mut set = EntrySet::new(ListKind::Values);
    let (a, b) = (EntryOrigin::File("a".into()), EntryOrigin::File("b".into()));
    let value = |i: usize| format!("value-{i:060}");
    for i in 0..1000 {
        set.hold(ValueRef::Str(&value(i)), 100, usize::MAX, &a, 0)
            .unwrap();
        if i % 2 == 0 {
            set.hold(ValueRef::Str(&value(i)), 200 + i as i64, usize::MAX, &b, 0)
                .unwrap();
        }
    }
    let before = set.arena.len();
    // a.csv drops every value: the odd ones leave (half the arena).
    for i in 0..1000 {
        let gone = set.release(ValueRef::Str(&value(i)), &a, 0).unwrap();
        assert_eq!(gone, i % 2 == 1, "{i}");
    }
    assert!(set.arena.len() < before, "the arena was not rewritten");
    for i in (0..1000).step_by(2) {
        let bytes = set.encode(ValueRef::Str(&value(i))).unwrap();
        assert_eq!(set.hold_of(&bytes, &b), Some(200 + i as i64), "{i}");
        assert_eq!(set.hold_of(&bytes, &a), None, "{i}");
        assert_eq!(set.contains(ValueRef::Str(&value(i)), 150), Some(true));
    }
    // b.csv's holds expire one by one; a sweep takes each value out.
    set.expire(700);
    assert_eq!(set.len(), 249);
    assert_eq!(set.others.iter().map(|t| t.len()).sum::<usize>(), 0);
}

/// One origin per value (the common case) costs what a list without
/// origins did: a 16-byte slot, nothing beside the table.
#[test]
fn a_value_of_one_origin_costs_nothing_more() {
    let mut set = EntrySet::new(ListKind::Values);
    let mut alone = EntrySet::new(ListKind::Values);
    let file = EntryOrigin::File("blocked.csv".into());
    for i in 0..10_000 {
        let origin = if i % 2 == 0 {
            &file
        } else {
            &EntryOrigin::Rules
        };
        set.hold(ValueRef::Int(i), Timestamp::MAX, usize::MAX, origin, 0)
            .unwrap();
        alone
            .add(ValueRef::Int(i), Timestamp::MAX, usize::MAX)
            .unwrap();
    }
    assert_eq!(set.heap_bytes(), alone.heap_bytes());
}

/// An entry's bytes decode to a value the list holds as the same entry,
/// in each kind of list (numbers normalized, a prefix's text, a network
/// in one spelling).
#[test]
fn an_entry_decodes_to_a_value_of_the_same_entry() {
    use crate::value::Value;
    let cases: [(ListKind, Vec<Value>); 3] = [
        (
            ListKind::Values,
            vec![
                Value::Str("c-1".into()),
                Value::Int(-7),
                Value::Float(3.0),
                Value::Float(2.5),
                Value::Float(1e300),
                Value::Bool(true),
                Value::Str("".into()),
            ],
        ),
        (
            ListKind::Prefixes,
            vec![Value::Str("4111".into()), Value::Int(5500)],
        ),
        (
            ListKind::Cidr,
            vec![
                Value::Str("10.1.2.3/8".into()),
                Value::Str("10.0.0.1".into()),
                Value::Str("::ffff:10.0.0.1".into()),
                Value::Str("2001:DB8:0::/32".into()),
                Value::Str("fe80::1".into()),
            ],
        ),
    ];
    for (kind, values) in cases {
        let set = EntrySet::new(kind);
        for value in values {
            let bytes = set.encode((&value).into()).unwrap();
            let decoded = set.decode(&bytes).unwrap();
            assert_eq!(
                set.encode((&decoded).into()),
                Some(bytes),
                "{kind:?} {value:?} decoded as {decoded:?}"
            );
        }
    }
    let cidr = EntrySet::new(ListKind::Cidr);
    let bytes = cidr.encode(ValueRef::Str("10.1.2.3/8")).unwrap();
    assert_eq!(cidr.decode(&bytes), Some(Value::Str("10.0.0.0/8".into())));
    let values = EntrySet::new(ListKind::Values);
    let bytes = values.encode(ValueRef::Float(3.0)).unwrap();
    assert_eq!(values.decode(&bytes), Some(Value::Int(3)));
}
