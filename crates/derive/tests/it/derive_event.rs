//! `#[derive(Event)]` end to end: every supported field type reads as the
//! value it holds, names resolve (nested, renamed, flattened, skipped), and
//! patterns in the language and in the builder match derived structs in the
//! engine.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use cepheid_core::event::FieldResolver;
use cepheid_engine::engine::{Engine, MatchRef, PatternSet};
use cepheid_engine::{Event, EventValue, FieldPath, Pattern, Rules, Timestamp, Value, ValueRef};

#[derive(Clone, Debug, Event)]
#[allow(dead_code)]
struct Scalars<'a> {
    flag: bool,
    i8: i8,
    i16: i16,
    i32: i32,
    i64: i64,
    isize: isize,
    u8: u8,
    u16: u16,
    u32: u32,
    u64: u64,
    big: u64,
    usize: usize,
    i128: i128,
    f32: f32,
    f64: f64,
    string: String,
    str: &'a str,
    boxed: Box<str>,
    arc: Arc<str>,
    rc: Rc<str>,
    cow: Cow<'a, str>,
    value: Value,
    list: Vec<Value>,
    shared_list: Arc<[Value]>,
    #[cepheid(skip)]
    bytes: Vec<u8>,
}

fn scalars(text: &str) -> Scalars<'_> {
    Scalars {
        flag: true,
        i8: -8,
        i16: -16,
        i32: -32,
        i64: -64,
        isize: -1,
        u8: 8,
        u16: 16,
        u32: 32,
        u64: 64,
        big: u64::MAX,
        usize: 7,
        i128: -128,
        f32: 0.5,
        f64: 2.25,
        string: "string".into(),
        str: text,
        boxed: "boxed".into(),
        arc: "arc".into(),
        rc: "rc".into(),
        cow: Cow::Borrowed("cow"),
        value: Value::Int(1),
        list: vec![Value::Int(1), Value::from("a")],
        shared_list: Arc::from(vec![Value::Bool(false)]),
        bytes: vec![1, 2],
    }
}

/// Resolves `name` for `E` and reads it from `event`, owned.
fn read<E: Event>(event: &E, name: &str) -> Value {
    let mut fields = E::Fields::default();
    let id = fields.resolve(&FieldPath::parse(name)).unwrap();
    event.field(id).to_owned()
}

#[test]
fn every_scalar_type_reads_as_its_value() {
    let text = String::from("borrowed");
    let e = scalars(&text);
    let expected = [
        ("flag", Value::Bool(true)),
        ("i8", Value::Int(-8)),
        ("i16", Value::Int(-16)),
        ("i32", Value::Int(-32)),
        ("i64", Value::Int(-64)),
        ("isize", Value::Int(-1)),
        ("u8", Value::Int(8)),
        ("u16", Value::Int(16)),
        ("u32", Value::Int(32)),
        ("u64", Value::Int(64)),
        ("big", Value::Float(u64::MAX as f64)),
        ("usize", Value::Int(7)),
        ("i128", Value::Int(-128)),
        ("f32", Value::Float(0.5)),
        ("f64", Value::Float(2.25)),
        ("string", Value::from("string")),
        ("str", Value::from("borrowed")),
        ("boxed", Value::from("boxed")),
        ("arc", Value::from("arc")),
        ("rc", Value::from("rc")),
        ("cow", Value::from("cow")),
        ("value", Value::Int(1)),
        ("list", Value::from(vec![Value::Int(1), Value::from("a")])),
        ("shared_list", Value::from(vec![Value::Bool(false)])),
    ];
    for (name, want) in expected {
        assert_eq!(read(&e, name), want, "{name}");
    }
}

#[test]
fn strings_are_borrowed_not_copied() {
    let text = String::from("borrowed");
    let e = scalars(&text);
    let mut fields = <Scalars as Event>::Fields::default();
    for name in ["str", "string", "arc", "boxed", "cow"] {
        let id = fields.resolve(&FieldPath::parse(name)).unwrap();
        let ValueRef::Str(s) = e.field(id) else {
            panic!("{name} is not a string");
        };
        let owner: &str = match name {
            "str" => e.str,
            "string" => &e.string,
            "arc" => &e.arc,
            "boxed" => &e.boxed,
            _ => &e.cow,
        };
        assert!(std::ptr::eq(s, owner), "{name} was copied");
    }
    // An `Arc<str>` field is shared, not copied, when a run keeps it.
    let id = fields.resolve(&FieldPath::parse("arc")).unwrap();
    let Value::Str(kept) = e.field_owned(id) else {
        panic!("arc is not a string");
    };
    assert!(Arc::ptr_eq(&kept, &e.arc));
}

#[test]
fn unknown_and_skipped_names_are_errors_listing_the_fields() {
    let mut fields = <Order as Event>::Fields::default();
    let err = fields.resolve(&FieldPath::parse("nope")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`Order` has no field `nope`; its fields are id, state, customer.id, customer.tier, \
         note, amountCents, origin, country"
    );
    assert_eq!(err.path(), &FieldPath::parse("nope"));
    assert_eq!(err.type_name(), Some("Order"));
    assert_eq!(err.known_names().map(<[String]>::len), Some(8));
    for bad in [
        "customer",
        "customer.nope",
        "id.more",
        "internal",
        "amount_cents",
    ] {
        let err = fields.resolve(&FieldPath::parse(bad)).unwrap_err();
        assert!(
            err.to_string().contains(&format!("no field `{bad}`")),
            "{err}"
        );
    }
    let mut scalar_fields = <Scalars as Event>::Fields::default();
    let err = scalar_fields
        .resolve(&FieldPath::parse("bytes"))
        .unwrap_err();
    assert!(err.to_string().contains("no field `bytes`"), "{err}");
}

#[derive(Clone, Copy, Debug, PartialEq, EventValue)]
#[cepheid(rename_all = "snake_case")]
enum State {
    Created,
    PaymentDue,
    #[cepheid(rename = "done")]
    Paid,
}

#[derive(Clone, Copy, Debug, PartialEq, EventValue)]
struct CustomerId(u32);

#[derive(Clone, Debug, PartialEq, Event)]
struct Customer {
    id: CustomerId,
    tier: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Event)]
struct Origin {
    country: &'static str,
}

#[derive(Clone, Debug, PartialEq, Event)]
#[cepheid(rename_all = "camelCase")]
struct Order {
    id: u64,
    state: State,
    customer: Option<Customer>,
    #[cepheid(rename = "note")]
    comment: Option<String>,
    amount_cents: i64,
    #[cepheid(rename = "origin")]
    r#origin_code: u8,
    #[cepheid(flatten)]
    place: Origin,
    #[cepheid(skip)]
    #[allow(dead_code)]
    internal: Vec<String>,
}

fn order(id: u64, state: State, customer: Option<u32>, amount_cents: i64) -> Order {
    Order {
        id,
        state,
        customer: customer.map(|c| Customer {
            id: CustomerId(c),
            tier: (c % 2 == 0).then(|| "gold".to_string()),
        }),
        comment: None,
        amount_cents,
        r#origin_code: 1,
        place: Origin { country: "NL" },
        internal: vec![],
    }
}

#[test]
fn nested_optional_enum_renamed_and_flattened_fields() {
    let o = order(5, State::PaymentDue, Some(2), 1250);
    assert_eq!(read(&o, "id"), Value::Int(5));
    assert_eq!(read(&o, "state"), Value::from("payment_due"));
    assert_eq!(
        read(&order(1, State::Paid, None, 0), "state"),
        Value::from("done")
    );
    assert_eq!(read(&o, "customer.id"), Value::Int(2));
    assert_eq!(read(&o, "customer.tier"), Value::from("gold"));
    assert_eq!(
        read(&order(1, State::Paid, Some(3), 0), "customer.tier"),
        Value::Null
    );
    // A missing nested struct reads as null in every field below it.
    let none = order(1, State::Created, None, 0);
    assert_eq!(read(&none, "customer.id"), Value::Null);
    assert_eq!(read(&none, "customer.tier"), Value::Null);
    assert_eq!(read(&o, "note"), Value::Null);
    assert_eq!(read(&o, "amountCents"), Value::Int(1250));
    assert_eq!(read(&o, "origin"), Value::Int(1));
    assert_eq!(read(&o, "country"), Value::from("NL"));
    // Ids are dense and distinct, in declaration order.
    let mut fields = <Order as Event>::Fields::default();
    let ids: Vec<usize> = [
        "id",
        "state",
        "customer.id",
        "customer.tier",
        "note",
        "amountCents",
    ]
    .iter()
    .map(|n| fields.resolve(&FieldPath::parse(n)).unwrap().index())
    .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
    assert_eq!(
        o.field(cepheid_engine::FieldId::from_index(99)),
        ValueRef::Null
    );
}

/// Orders in time order: (ts, order).
fn orders() -> Vec<(Timestamp, Order)> {
    vec![
        (1, order(1, State::Created, Some(10), 500)),
        (2, order(2, State::Created, Some(11), 99_000)),
        (3, order(1, State::Paid, Some(10), 500)),
        (4, order(3, State::Created, None, 700)),
        (5, order(2, State::PaymentDue, Some(11), 99_000)),
        (9, order(3, State::Paid, None, 700)),
        (30, order(2, State::Paid, Some(11), 99_000)),
    ]
}

/// Runs `patterns` over [`orders`] and describes each match as
/// `key: ids of the events select`.
fn run<P: PatternSet<Order> + ?Sized>(patterns: &P) -> Vec<String> {
    let mut engine: Engine<Order> = Engine::new();
    engine.add(patterns).unwrap();
    let mut found = Vec::new();
    let mut sink = |m: &MatchRef<'_, Order>| {
        let ids: Vec<String> = m
            .stages()
            .iter()
            .flat_map(|(_, events)| events.iter().map(|o| o.id.to_string()))
            .collect();
        let key: Vec<String> = m.key().iter().map(Value::to_string).collect();
        let select: Vec<String> = m.select().iter().map(|(n, v)| format!("{n}={v}")).collect();
        found.push(format!(
            "{}: {} {}",
            key.join(","),
            ids.join(" "),
            select.join(" ")
        ));
    };
    for (ts, o) in orders() {
        engine.push(ts, o, &mut sink);
    }
    engine.watermark(Timestamp::MAX, &mut sink);
    found
}

#[test]
fn a_language_pattern_matches_derived_events() {
    let source = r#"
        pattern paid_quickly {
            partition by customer.id
            within 10ms
            match created followed by paid
            where
                created: state == "created" and amountCents < 1000
                paid:    state == "done" and exists(customer.id) and country == "NL"
            select
                customer = paid.customer.id
                cents    = created.amountCents
        }"#;
    let rules = Rules::parse("orders.cep", source).unwrap();
    assert_eq!(run(&rules), ["10: 1 1 customer=10 cents=500"]);
}

#[test]
fn a_builder_pattern_matches_derived_events() {
    let pattern = Pattern::<Order>::begin("created")
        .where_expr(r#"state == "created""#)
        .followed_by("paid")
        .where_fn(|o: &Order| o.state == State::Paid)
        .within(Duration::from_millis(20))
        .partition_by("id")
        .build()
        .unwrap();
    assert_eq!(run(&pattern), ["1: 1 1 ", "3: 3 3 "]);
}

#[test]
fn an_unknown_field_in_a_pattern_is_a_compile_error_naming_it() {
    let rules = Rules::parse(
        "orders.cep",
        "pattern p { within 1s match a where a: amount > 1 }",
    )
    .unwrap();
    let mut engine: Engine<Order> = Engine::new();
    let err = engine.add(&rules).unwrap_err().to_string();
    assert!(err.contains("`Order` has no field `amount`"), "{err}");
    assert!(err.contains("amountCents"), "{err}");
}

// The derives' compile errors: `crates/derive/tests/compile_fail.rs`.

#[derive(Clone, Debug, Event)]
struct Timed {
    #[cepheid(time)]
    at: Timestamp,
    user: String,
    n: i64,
}

#[derive(Clone, Debug, Event)]
struct MaybeTimed {
    #[cepheid(time, rename = "when")]
    at: Option<u64>,
    n: i64,
}

#[derive(Clone, Debug, Event)]
struct HiddenTime {
    #[cepheid(skip, time)]
    at: u32,
    n: i64,
}

#[derive(Clone, Debug, Event)]
struct Untimed {
    n: i64,
}

#[test]
fn the_time_attribute_gives_the_events_time() {
    let t = Timed {
        at: -5,
        user: "u".into(),
        n: 1,
    };
    assert_eq!(t.timestamp(), Some(-5));
    assert_eq!(MaybeTimed { at: Some(7), n: 0 }.timestamp(), Some(7));
    assert_eq!(MaybeTimed { at: None, n: 0 }.timestamp(), None);
    assert_eq!(
        MaybeTimed {
            at: Some(u64::MAX),
            n: 0
        }
        .timestamp(),
        None
    );
    assert_eq!(HiddenTime { at: 9, n: 0 }.timestamp(), Some(9));
    assert_eq!(Untimed { n: 0 }.timestamp(), None);
    assert_eq!(cepheid_engine::Record::default().timestamp(), None);

    // The time field stays a field (renamed here); a skipped one does not.
    let mut fields = <MaybeTimed as Event>::Fields::default();
    let id = fields.resolve(&FieldPath::parse("when")).unwrap();
    assert_eq!(MaybeTimed { at: Some(7), n: 0 }.field(id), ValueRef::Int(7));
    let mut fields = <HiddenTime as Event>::Fields::default();
    assert!(fields.resolve(&FieldPath::parse("at")).is_err());
    let mut fields = <Timed as Event>::Fields::default();
    assert!(fields.resolve(&FieldPath::parse("at")).is_ok());
}

#[test]
fn push_event_reads_the_time_from_the_event() {
    let pattern = Pattern::<Timed>::begin("a")
        .where_expr("n == 1")
        .followed_by("b")
        .where_expr("n == 2")
        .within(Duration::from_millis(100))
        .partition_by("user")
        .name("ab")
        .build()
        .unwrap();
    let events = [
        (10, "x", 1),
        (20, "y", 1),
        (15, "x", 2),  // out of order, within the delay
        (500, "y", 2), // too late for the window
        (40, "x", 2),
        (1, "x", 1), // late
    ];
    let run = |by_event: bool| {
        let mut engine = Engine::<Timed>::with_max_delay(Duration::from_millis(10));
        engine.add(&pattern).unwrap();
        let mut out: Vec<cepheid_engine::Output<Timed>> = Vec::new();
        let mut arrivals = Vec::new();
        for (at, user, n) in events {
            let e = Timed {
                at,
                user: user.into(),
                n,
            };
            arrivals.push(if by_event {
                engine.push_event(e, &mut out).unwrap()
            } else {
                engine.push(at, e, &mut out)
            });
        }
        engine.finish(&mut out);
        (format!("{out:?}"), arrivals, engine.stats())
    };
    let (by_event, by_time) = (run(true), run(false));
    assert_eq!(by_event, by_time);
    assert!(by_event.1.contains(&cepheid_engine::Arrival::Late));
    assert!(by_event.0.contains("Match"), "{}", by_event.0);
}

#[test]
fn push_event_refuses_an_event_without_a_time() {
    let pattern = Pattern::<MaybeTimed>::begin("a")
        .where_expr("n > 0")
        .build()
        .unwrap();
    let mut engine = Engine::<MaybeTimed>::new();
    engine.add(&pattern).unwrap();
    let mut out: Vec<cepheid_engine::Output<MaybeTimed>> = Vec::new();
    let err = engine
        .push_event(MaybeTimed { at: None, n: 1 }, &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), cepheid_engine::ErrorKind::Input);
    assert!(err.to_string().contains("has no time"), "{err}");
    assert!(err.to_string().contains("MaybeTimed"), "{err}");
    assert_eq!(engine.stats().events, 0);

    let mut untimed = Engine::<Untimed>::new();
    let err = untimed
        .push_event(Untimed { n: 1 }, &mut |_: &MatchRef<'_, Untimed>| {})
        .unwrap_err();
    assert!(err.to_string().contains("cepheid(time)"), "{err}");

    let mut records = Engine::<cepheid_engine::Record>::new();
    let err = records
        .push_event(cepheid_engine::Record::default(), &mut |_: &MatchRef<
            '_,
            cepheid_engine::Record,
        >| {})
        .unwrap_err();
    assert_eq!(err.kind(), cepheid_engine::ErrorKind::Input);
}
