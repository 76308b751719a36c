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

#[derive(Clone, Debug, Event)]
struct Payment {
    amount: i64,
    user: String,
    card: Card,
}

#[derive(Clone, Debug, Event)]
struct Card {
    country: String,
}

#[test]
fn build_checks_field_names_against_the_event_type() {
    let err = Pattern::<Payment>::begin("big")
        .where_expr("amout > 5")
        .name("big_payment")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), cepheid_engine::ErrorKind::Field);
    let text = err.to_string();
    assert!(text.contains("pattern `big_payment`"), "{text}");
    assert!(text.contains("stage `big`"), "{text}");
    assert!(text.contains("no field `amout`"), "{text}");
    assert!(text.contains("did you mean `amount`?"), "{text}");

    // Nested paths, `until`, `select` and `partition by`: every unknown
    // name, each once, in the order the pattern reads them.
    let err = Pattern::<Payment>::begin("a")
        .where_expr("card.contry == \"FR\" and amout > 1")
        .one_or_more()
        .until_expr("amout > 100")
        .followed_by("b")
        .where_expr("b.usr == a.user")
        .select("total", "sum(a.amont)")
        .partition_by("usr")
        .name("p")
        .build()
        .unwrap_err();
    let messages: Vec<String> = err.errors().iter().map(|e| e.to_string()).collect();
    // `usr` is read twice (partition by, `b`) and `amout` twice (`a`'s
    // condition, its `until`): each is reported once, where first read.
    let expect = [
        ("partition by", "usr", Some("user")),
        (
            "the condition of stage `a`",
            "card.contry",
            Some("card.country"),
        ),
        ("the condition of stage `a`", "amout", Some("amount")),
        ("select `total`", "amont", Some("amount")),
    ];
    assert_eq!(messages.len(), expect.len(), "{messages:#?}");
    for ((place, name, hint), m) in expect.iter().zip(&messages) {
        assert!(m.starts_with(&format!("pattern `p`, {place}: ")), "{m}");
        assert!(m.contains(&format!("no field `{name}`")), "{m}");
        if let Some(hint) = hint {
            assert!(m.contains(&format!("did you mean `{hint}`?")), "{m}");
        }
    }
    // `amout` appears in the condition and in `until`: once.
    assert_eq!(
        messages.iter().filter(|m| m.contains("`amout`")).count(),
        1,
        "{messages:#?}"
    );
    // The until's own field, when only it is wrong.
    let err = Pattern::<Payment>::begin("a")
        .where_expr("amount > 1")
        .one_or_more()
        .until_expr("amount > 100 and usr == \"x\"")
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pattern `unnamed`, the `until` of stage `a`: "),
        "{err}"
    );
}

#[test]
fn a_pattern_with_known_fields_builds_and_a_record_takes_any_name() {
    let ok = Pattern::<Payment>::begin("a")
        .where_expr("card.country == \"FR\" and amount > 1")
        .partition_by("user")
        .select("paid", "a.amount")
        .build();
    assert!(ok.is_ok(), "{:?}", ok.err());
    let mut engine = Engine::<Payment>::new();
    engine.add(&ok.unwrap()).unwrap();

    let any = Pattern::<cepheid_engine::Record>::begin("a")
        .where_expr("amout > 5")
        .partition_by("usr")
        .build();
    assert!(any.is_ok(), "{:?}", any.err());
}

#[test]
fn unnamed_patterns_are_numbered_by_the_engine() {
    let small = Pattern::<Payment>::begin("a")
        .where_expr("amount < 10")
        .build()
        .unwrap();
    let big = Pattern::<Payment>::begin("a")
        .where_expr("amount > 100")
        .build()
        .unwrap();
    let named = Pattern::<Payment>::begin("a")
        .where_expr("amount == 50")
        .name("unnamed_3")
        .build()
        .unwrap();
    assert_eq!((small.name(), small.is_named()), ("unnamed", false));
    assert!(named.is_named());

    let mut engine = Engine::<Payment>::new();
    engine.add(&small).unwrap();
    engine.add(&big).unwrap();
    // A given name is kept; the next unnamed one takes the first free number.
    engine.add(&named).unwrap();
    engine.add(&small).unwrap();
    let names: Vec<String> = engine.patterns().map(|p| p.name.clone()).collect();
    assert_eq!(names, ["unnamed", "unnamed_2", "unnamed_3", "unnamed_4"]);
    // A name that was given is never changed: twice is an error.
    let err = engine.add(&named).unwrap_err();
    assert!(err.to_string().contains("already"), "{err}");

    // Matches carry the numbered names.
    let mut out: Vec<Output<Payment>> = Vec::new();
    let pay = |amount| Payment {
        amount,
        user: "u".into(),
        card: Card {
            country: "FR".into(),
        },
    };
    engine.push(1, pay(5), &mut out);
    engine.push(2, pay(500), &mut out);
    engine.push(3, pay(50), &mut out);
    engine.finish(&mut out);
    let mut found: Vec<(String, i64)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Match(m) => Some((m.pattern.to_string(), m.start)),
            _ => None,
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("unnamed".to_string(), 1),
            ("unnamed_2".to_string(), 2),
            ("unnamed_3".to_string(), 3),
            ("unnamed_4".to_string(), 1)
        ]
    );

    // A slice of typed patterns is one set, numbered the same way.
    let mut together = Engine::<Payment>::new();
    together
        .add(&[small.clone(), big.clone(), named.clone(), small.clone()][..])
        .unwrap();
    let again: Vec<String> = together.patterns().map(|p| p.name.clone()).collect();
    assert_eq!(again, names);

    // A number is never one a later pattern of the set is given.
    let mut clash = Engine::<Payment>::new();
    let two = Pattern::<Payment>::begin("a")
        .where_expr("amount == 2")
        .name("unnamed_2")
        .build()
        .unwrap();
    clash.add(&[small.clone(), big.clone(), two][..]).unwrap();
    let names: Vec<String> = clash.patterns().map(|p| p.name.clone()).collect();
    assert_eq!(names, ["unnamed", "unnamed_3", "unnamed_2"]);
}
