//! The typed builder end to end: a pattern over a Rust struct, partitioned
//! by a field name or by a closure, finds the same matches in the engine.

use std::time::Duration;

use cepheid_engine::builder::PatternBuilder;
use cepheid_engine::engine::{Engine, Output};
use cepheid_engine::{Event, Pattern, Timestamp, Value};

#[derive(Clone, Debug, PartialEq, Event)]
struct Login {
    #[cepheid(skip)]
    ts: Timestamp,
    user: Option<&'static str>,
    ok: bool,
}

fn logins() -> Vec<Login> {
    let at = |ts, user, ok| Login { ts, user, ok };
    vec![
        at(1, Some("ann"), false),
        at(2, Some("bob"), false),
        at(3, None, false),
        at(4, Some("ann"), false),
        at(5, Some("bob"), true),
        at(6, Some("bob"), false),
        at(7, None, false),
        at(8, Some("ann"), true),
        at(9, Some("bob"), false),
        at(10, Some("bob"), true),
        at(40, Some("ann"), false),
        at(41, Some("ann"), true),
    ]
}

/// Two failures then a success, per user, within 20 ms.
fn two_failures() -> PatternBuilder<Login> {
    Pattern::<Login>::begin("fail")
        .where_fn(|e| !e.ok)
        .times(2)
        .followed_by("success")
        .where_fn(|e| e.ok)
        .within(Duration::from_millis(20))
}

/// A match: its key and the times of its events.
type Found = (Vec<Value>, Vec<Timestamp>);

/// Each match, and how many events had no key.
fn run(pattern: &Pattern<Login>) -> (Vec<Found>, u64) {
    let mut engine: Engine<Login> = Engine::new();
    engine.add(pattern).unwrap();
    let mut out: Vec<Output<Login>> = Vec::new();
    for login in logins() {
        engine.push(login.ts, login, &mut out);
    }
    engine.watermark(Timestamp::MAX, &mut out);
    let matches = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Match(m) => {
                let ts = m.stage("fail").iter().chain(m.stage("success"));
                Some((m.key.clone(), ts.map(|l| l.ts).collect()))
            }
            _ => None,
        })
        .collect();
    (matches, engine.stats().unkeyed)
}

#[test]
fn a_closure_key_partitions_like_the_field() {
    let by_field = two_failures().partition_by("user").build().unwrap();
    let by_closure = two_failures().partition_by_fn(|e| e.user).build().unwrap();
    let (matches, unkeyed) = run(&by_field);
    assert_eq!(
        matches,
        [
            (vec![Value::from("ann")], vec![1, 4, 8]),
            (vec![Value::from("bob")], vec![2, 6, 10]),
            (vec![Value::from("bob")], vec![6, 9, 10]),
        ]
    );
    // The events without a user are left out, by both.
    assert_eq!(unkeyed, 2);
    assert_eq!(run(&by_closure), (matches, unkeyed));
}

#[test]
fn without_a_key_every_event_is_one_partition() {
    let global = two_failures().build().unwrap();
    let (matches, unkeyed) = run(&global);
    assert_eq!(unkeyed, 0);
    let spans: Vec<&[Timestamp]> = matches.iter().map(|(_, ts)| ts.as_slice()).collect();
    let expected: [&[Timestamp]; 6] = [
        &[1, 2, 5],
        &[2, 3, 5],
        &[3, 4, 5],
        &[4, 6, 8],
        &[6, 7, 8],
        &[7, 9, 10],
    ];
    assert_eq!(spans, expected);
}

#[test]
fn a_closure_key_over_several_parts() {
    // (user, ok) as the key: a failure and a success are never in one
    // partition, so nothing matches.
    let by_pair = two_failures()
        .partition_by_fn(|e| Value::List([Value::from(e.user), Value::from(e.ok)].into()))
        .build()
        .unwrap();
    let (matches, _) = run(&by_pair);
    assert!(matches.is_empty());
}
