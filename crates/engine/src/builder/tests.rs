//! Unit tests of the builder: the IR it makes and the misuse it reports.

use super::*;
use crate::pattern::{Condition, ElementKind, MAX_NESTING};

/// A builder over `Ev`.
fn begin(name: impl Into<String>) -> PatternBuilder<Ev> {
    Pattern::begin(name)
}

/// Builds, through the public `build`, and takes the IR out.
fn ir(b: PatternBuilder<Ev>) -> ir::Pattern {
    b.build().unwrap_or_else(|e| panic!("{e}")).into_ir()
}

#[derive(Debug)]
struct Ev {
    kind: i64,
    price: i64,
}

/// `Ev` takes any field name (its resolver is a field table): these tests
/// are about the IR the builder makes; the check of names against a type's
/// fields at `build` is `crates/engine/tests/it/builder_typed.rs`'s.
impl crate::Event for Ev {
    type Fields = crate::record::FieldTable;

    fn field(&self, _: crate::FieldId) -> crate::ValueRef<'_> {
        crate::ValueRef::Null
    }
}

/// A partial match with some earlier `a` events.
struct Earlier(Vec<Ev>);

impl StageEvents<Ev> for Earlier {
    fn for_each(&self, stage: &str, f: &mut dyn FnMut(&Ev)) {
        if stage == "a" {
            self.0.iter().for_each(f);
        }
    }
}

fn ev(kind: i64, price: i64) -> Ev {
    Ev { kind, price }
}

/// Calls the native condition `c` on `e`.
fn call(c: &Condition, e: &Ev, earlier: &Earlier) -> bool {
    let Condition::Native(n) = c else {
        panic!("not a closure: {c:?}")
    };
    let f = n.downcast::<Ev>().unwrap();
    f(e, earlier)
}

fn kinds(errors: &[PatternError]) -> Vec<PatternErrorKind> {
    errors.iter().map(|e| e.kind).collect()
}

#[test]
fn sequence_of_stages() {
    let p = ir(begin("a")
        .next("b")
        .times(2)
        .consecutive()
        .followed_by("c")
        .one_or_more()
        .optional()
        .greedy()
        .followed_by_any("d")
        .times_range(2, 4)
        .allow_combinations()
        .not_next("e")
        .followed_by("f")
        .times_or_more(3)
        .within_prev(Duration::from_millis(50)));
    assert_eq!(p.name, "unnamed");
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
    let e = &p.sequence.elements;
    let contiguity: Vec<Contiguity> = e.iter().skip(1).map(|e| e.contiguity).collect();
    use Contiguity::*;
    assert_eq!(
        contiguity,
        [Strict, Relaxed, NonDeterministic, NotNext, Relaxed]
    );
    assert_eq!(e[0].quantifier, Quantifier::One);
    assert_eq!(e[1].quantifier, Quantifier::Times { min: 2, max: 2 });
    assert_eq!(e[1].inner, InnerContiguity::Consecutive);
    assert_eq!(e[2].quantifier, Quantifier::AtLeast(1));
    assert!(e[2].optional && e[2].greedy);
    assert_eq!(e[3].quantifier, Quantifier::Times { min: 2, max: 4 });
    assert_eq!(e[3].inner, InnerContiguity::Combinations);
    assert_eq!(e[5].quantifier, Quantifier::AtLeast(3));
    assert_eq!(e[5].within, Some(50));
    for (i, element) in e.iter().enumerate() {
        assert!(matches!(element.kind, ElementKind::Stage(StageId(s)) if s as usize == i));
        assert!(matches!(p.stages[i].condition, Condition::True));
    }
}

#[test]
fn zero_minimum_means_optional() {
    let p = ir(begin("a")
        .times_range(0, 3)
        .followed_by("b")
        .times_or_more(0)
        .followed_by("c"));
    let e = &p.sequence.elements;
    assert_eq!(e[0].quantifier, Quantifier::Times { min: 0, max: 3 });
    assert!(e[0].is_optional());
    assert_eq!(e[1].quantifier, Quantifier::AtLeast(1));
    assert!(e[1].optional);
}

#[test]
fn pattern_level_options() {
    let p = ir(begin("a")
        .followed_by("b")
        .not_followed_by("c")
        .within(Duration::from_millis(1000))
        .skip_to_last("b")
        .partition_by("user.id")
        .emit_timeouts()
        .doc("docs")
        .name("p1"));
    assert_eq!(p.name, "p1");
    assert_eq!(p.doc.as_deref(), Some("docs"));
    assert_eq!(p.within, Some(1000));
    assert_eq!(p.skip, SkipStrategy::ToLast(StageId(1)));
    assert_eq!(p.partition_by, [FieldPath::parse("user.id")]);
    assert!(p.emit_timeouts);
    let p = ir(begin("a").skip(SkipStrategy::PastLastEvent));
    assert_eq!(p.skip, SkipStrategy::PastLastEvent);
}

#[test]
fn groups_flatten_stages_in_pattern_order() {
    let inner = begin("c").next("d").one_or_more();
    let group = begin("b").followed_by_group(inner).times(2);
    let p = ir(begin("a").followed_by_any_group(group).optional().next("e"));
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    let e = &p.sequence.elements;
    assert_eq!(e.len(), 3);
    assert_eq!(e[1].contiguity, Contiguity::NonDeterministic);
    assert!(e[1].optional);
    let ElementKind::Group(group) = &e[1].kind else {
        panic!("not a group")
    };
    assert!(matches!(
        group.elements[0].kind,
        ElementKind::Stage(StageId(1))
    ));
    let ElementKind::Group(inner) = &group.elements[1].kind else {
        panic!("not a group")
    };
    assert_eq!(
        group.elements[1].quantifier,
        Quantifier::Times { min: 2, max: 2 }
    );
    assert!(matches!(
        inner.elements[1].kind,
        ElementKind::Stage(StageId(3))
    ));
    assert_eq!(inner.elements[1].quantifier, Quantifier::AtLeast(1));
    assert!(matches!(e[2].kind, ElementKind::Stage(StageId(4))));

    let p = ir(Pattern::<Ev>::begin_group(begin("x").next("y")).followed_by("z"));
    assert!(matches!(p.sequence.elements[0].kind, ElementKind::Group(_)));
    assert_eq!(p.stages.len(), 3);
}

#[test]
fn closures_become_native_conditions() {
    let p = begin("a")
        .where_fn(|e| e.kind == 0)
        .where_fn(|e: &Ev| e.price > 10)
        .one_or_more()
        .until_fn(|e: &Ev| e.kind == 9)
        .followed_by("b")
        .where_iter(|e: &Ev, ctx: &dyn StageEvents<Ev>| {
            let mut sum = 0;
            ctx.for_each("a", &mut |a| sum += a.price);
            e.price > sum
        })
        .build()
        .unwrap()
        .into_ir();
    let none = Earlier(vec![]);
    let a = &p.stages[0].condition;
    assert!(call(a, &ev(0, 11), &none));
    assert!(!call(a, &ev(0, 10), &none));
    assert!(!call(a, &ev(1, 11), &none));
    let Condition::Native(native) = a else {
        panic!()
    };
    assert!(!native.iterative);
    assert_eq!(native.description, "closure and closure");
    let until = p.sequence.elements[0].until.as_ref().unwrap();
    assert!(call(until, &ev(9, 0), &none));
    let b = &p.stages[1].condition;
    let Condition::Native(native) = b else {
        panic!()
    };
    assert!(native.iterative);
    let earlier = Earlier(vec![ev(0, 11), ev(0, 12)]);
    assert!(call(b, &ev(0, 24), &earlier));
    assert!(!call(b, &ev(0, 23), &earlier));
}

#[test]
fn misuse_is_reported_at_build() {
    let errors = begin("a")
        .times(2)
        .one_or_more()
        .optional()
        .optional()
        .consecutive()
        .allow_combinations()
        .until_fn(|_: &Ev| true)
        .until_fn(|_: &Ev| true)
        .where_fn(|_: &Ev| true)
        .where_expr("x > 1")
        .followed_by_group(
            begin("b")
                .within(Duration::from_millis(5))
                .skip(SkipStrategy::ToNext),
        )
        .build_ir()
        .unwrap_err();
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages[..7],
        [
            "stage `a`: a quantifier is applied twice (`one_or_more` after Times { min: 2, max: 2 })",
            "stage `a`: `optional` is applied twice",
            "stage `a`: `consecutive` and `allow_combinations` cannot be used together",
            "stage `a`: `until` is given twice",
            "stage `a`: it mixes expression and closure conditions, which cannot be combined",
            "`within` applies to a whole pattern, not to a group",
            "`skip` applies to a whole pattern, not to a group",
        ]
    );
    assert!(kinds(&errors[..7])
        .iter()
        .all(|&k| k == PatternErrorKind::BuilderMisuse));
    // `until` on a non-looping element is found by `validate`.
    assert!(kinds(&errors).contains(&PatternErrorKind::UntilOnNonLooping));

    let errors = Pattern::<Ev>::begin_group(begin("a"))
        .where_fn(|_: &Ev| true)
        .build_ir()
        .unwrap_err();
    assert_eq!(
        errors[0].message,
        "a group: a group has no condition of its own; give it to its stages"
    );
}

#[test]
fn validate_rules_apply() {
    let errors = begin("a")
        .followed_by("b")
        .not_followed_by("c")
        .build_ir()
        .unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::EndsWithNotFollowedBy]);
    let errors = begin("a").greedy().build_ir().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::GreedyOnSingle]);
    let errors = begin("a").next("a").build_ir().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::DuplicateStage]);
    let errors = begin("a").times(0).build_ir().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::InvalidQuantifier]);
    let errors = begin("a")
        .followed_by("b")
        .not_followed_by("c")
        .times(2)
        .within(Duration::from_millis(10))
        .build_ir()
        .unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::ModifierOnNot]);
    let errors = begin("a").skip_to_first("x").build_ir().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::InvalidSkipTarget]);
    let errors = begin("a").name("").build_ir().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::EmptyName]);
}

#[test]
fn deep_groups_are_an_error_not_a_crash() {
    let mut group = begin("x");
    for i in 0..(MAX_NESTING + 5) {
        group = begin(format!("s{i}")).next_group(group);
    }
    let errors = group.build_ir().unwrap_err();
    assert!(kinds(&errors).contains(&PatternErrorKind::BuilderMisuse));
}

/// The pattern as Debug text with every span cleared (the builder has none).
fn without_spans(mut p: ir::Pattern) -> String {
    p.span = Span::default();
    p.stages.iter_mut().for_each(|s| s.span = Span::default());
    p.select.iter_mut().for_each(|s| s.span = Span::default());
    let mut stack = vec![&mut p.sequence];
    while let Some(seq) = stack.pop() {
        for e in &mut seq.elements {
            e.span = Span::default();
            if let ElementKind::Group(inner) = &mut e.kind {
                stack.push(inner);
            }
        }
    }
    format!("{p:#?}")
}

fn language(src: &str) -> ir::Pattern {
    let loaded = crate::rules::load_str("test.cep", src);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    loaded.patterns.into_iter().next().unwrap()
}

fn assert_same(built: PatternBuilder<Ev>, src: &str) {
    let built = ir(built);
    assert_eq!(without_spans(built), without_spans(language(src)));
}

#[test]
fn builder_makes_the_language_ir() {
    assert_same(
        begin("a")
            .where_expr("type == 0 and contains(name, \"x\")")
            .next("b")
            .where_expr("price > a.price")
            .times_range(2, 3)
            .consecutive()
            .followed_by_any("c")
            .where_expr("sum(b.price) < 100")
            .one_or_more()
            .optional()
            .followed_by("d")
            .where_expr("name in [\"x\", \"y\"] or matches(name, \"^z+$\")")
            .within(Duration::from_secs(10))
            .skip_to_last("b")
            .partition_by("user.id")
            .emit_timeouts()
            .select("total", "sum(b.price)")
            .select("first_a", "a.name")
            .name("p"),
        r#"pattern p {
            partition by user.id
            within 10s
            skip to last b
            timeouts
            match a next b{2,3} consecutive followed by any c* followed by d
            where
                a: type == 0 and contains(name, "x")
                b: price > a.price
                c: sum(b.price) < 100
                d: name in ["x", "y"] or matches(name, "^z+$")
            select
                total = sum(b.price)
                first_a = a.name
        }"#,
    );
}

#[test]
fn builder_makes_the_language_ir_for_groups_and_until() {
    assert_same(
        begin("a")
            .where_expr("x > 1")
            .one_or_more()
            .greedy()
            .until_expr("stop")
            .followed_by_group(
                begin("b")
                    .where_expr("count(a) > 2")
                    .not_next("c")
                    .where_expr("bad")
                    .followed_by("d"),
            )
            .times(2)
            .within_prev(Duration::from_secs(5))
            .not_followed_by("e")
            .within(Duration::from_secs(60))
            .skip(SkipStrategy::PastLastEvent)
            .name("g"),
        r#"pattern g {
            within 1m
            skip past last event
            match a+ greedy until stop followed by (b not next c followed by d){2} within 5s
                not followed by e
            where
                a: x > 1
                stop: stop
                b: count(a) > 2
                c: bad
        }"#,
    );
}

#[test]
fn expression_errors_are_reported_at_build() {
    let errors = begin("a")
        .where_expr("type ==")
        .followed_by("b")
        .where_expr("nope(x)")
        .select("v", "price")
        .build_ir()
        .unwrap_err();
    let kinds = kinds(&errors);
    assert_eq!(
        kinds,
        [
            PatternErrorKind::InvalidExpression,
            PatternErrorKind::InvalidExpression,
            PatternErrorKind::FieldInSelect
        ],
        "{errors:#?}"
    );
    assert!(errors[0]
        .message
        .starts_with("stage `a`: in `type ==` at byte"));
    let errors = begin("a")
        .where_expr("x > 1")
        .where_fn(|_: &Ev| true)
        .build_ir()
        .unwrap_err();
    assert_eq!(
        errors[0].message,
        "stage `a`: it mixes expression and closure conditions, which cannot be combined"
    );
}

#[test]
fn several_expressions_are_anded() {
    let p = ir(begin("a").where_expr("x > 1").where_expr("y < 2"));
    let q = language("pattern unnamed { match a where a: x > 1 and y < 2 }");
    assert_eq!(without_spans(p), without_spans(q));
}

#[test]
fn build_gives_every_problem_as_one_error() {
    let err = begin("a")
        .times(2)
        .times(3)
        .followed_by("a")
        .where_expr("type ==")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Pattern);
    let messages: Vec<&str> = err.errors().iter().map(|e| e.message()).collect();
    assert_eq!(messages.len(), 3, "{err}");
    assert_eq!(
        messages[0],
        "stage `a`: a quantifier is applied twice (`times` after Times { min: 2, max: 2 })"
    );
    assert!(messages[1].starts_with("stage `a`: in `type ==` at byte"));
    assert!(err.errors().iter().all(|e| e.kind() == ErrorKind::Pattern));
    assert!(err.errors().iter().all(|e| e.location().is_none()));
    assert_eq!(err.to_string(), messages.join("\n"));

    // A limit of the language is a `Limit` error.
    let mut many = begin("s0");
    for i in 1..=crate::pattern::MAX_STAGES {
        many = many.next(format!("s{i}"));
    }
    assert_eq!(many.build().unwrap_err().kind(), ErrorKind::Limit);
}

/// A zero window is no window, as Flink's `within(Duration.ZERO)`: the IR
/// has none, and its source none (where `within 0ms` is an error, issue
/// 60 item 13), so a snapshot rebuilds it.
#[test]
fn a_zero_window_is_flink_s_no_window_and_its_source_has_none() {
    let zero = begin("a")
        .followed_by("b")
        .within_prev(Duration::ZERO)
        .within(Duration::ZERO)
        .name("p");
    let p = ir(zero.clone());
    assert_eq!((p.within, p.sequence.elements[1].within), (None, None));
    let source = crate::dsl::pattern_source(&p).unwrap();
    assert!(!source.contains("within"), "{source}");
    assert_same(zero, "pattern p { match a followed by b }");
    let loaded = crate::rules::load_str(
        "t.cep",
        "pattern p { within 0ms match a followed by b within 0s }",
    );
    let rendered = loaded.render();
    assert_eq!(
        rendered
            .matches("a window of 0ms lets no event join a match")
            .count(),
        2,
        "{rendered}"
    );
}

#[test]
fn durations_are_whole_milliseconds() {
    let p = ir(begin("a")
        .one_or_more()
        .within_prev(Duration::from_micros(2_000))
        .followed_by("b")
        .within(Duration::from_secs(90)));
    assert_eq!(p.sequence.elements[0].within, Some(2));
    assert_eq!(p.within, Some(90_000));

    let errors = begin("a")
        .one_or_more()
        .within_prev(Duration::from_nanos(1))
        .followed_by("b")
        .within(Duration::new(3, 500))
        .build_ir()
        .unwrap_err();
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "stage `a`: `within_prev` of 1ns: event time counts whole milliseconds",
            "`within` of 3.0000005s: event time counts whole milliseconds",
        ]
    );
    assert!(kinds(&errors)
        .iter()
        .all(|&k| k == PatternErrorKind::BuilderMisuse));

    let too_long = Duration::from_millis(i64::MAX as u64 + 1);
    let errors = begin("a").within(too_long).build_ir().unwrap_err();
    assert_eq!(
        errors[0].message,
        format!(
            "`within` of {too_long:?}: event time counts whole milliseconds, at most {} of them",
            i64::MAX
        )
    );
    let errors = begin("a").within(Duration::MAX).build_ir().unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let longest = ir(begin("a").within(Duration::from_millis(i64::MAX as u64)));
    assert_eq!(longest.within, Some(i64::MAX));
}

#[test]
fn partition_by_fn_is_a_native_key() {
    let p = ir(begin("a").partition_by_fn(|e| (e.kind > 0).then_some(e.price)));
    assert!(p.partition_by.is_empty());
    let key = p.partition_by_fn.as_ref().unwrap();
    assert_eq!(key.description, "closure");
    let f = key.downcast::<Ev>().unwrap();
    assert_eq!(f(&ev(1, 7)), Value::Int(7));
    assert_eq!(f(&ev(0, 7)), Value::Null);
    assert!(key.downcast::<i64>().is_none());
    assert!(crate::dsl::explain(&p).contains("partition by: <closure>"));

    let errors = begin("a")
        .partition_by_fn(|e| e.kind)
        .partition_by_fn(|e| e.price)
        .build_ir()
        .unwrap_err();
    assert_eq!(errors[0].message, "`partition_by_fn` is given twice");
    let errors = begin("a")
        .partition_by("kind")
        .partition_by_fn(|e| e.kind)
        .build_ir()
        .unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::MixedPartition]);
    let errors = begin("a")
        .followed_by_group(begin("b").partition_by_fn(|e| e.kind))
        .build_ir()
        .unwrap_err();
    assert_eq!(
        errors[0].message,
        "`partition_by_fn` applies to a whole pattern, not to a group"
    );
}

#[test]
fn typed_patterns_are_clone_debug_send_sync() {
    fn send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    send_sync::<Pattern<Ev>>();
    // Whatever the event type is.
    send_sync::<Pattern<std::rc::Rc<std::cell::Cell<i64>>>>();
    fn send<T: Send + Sync>() {}
    send::<PatternBuilder<std::rc::Rc<i64>>>();

    let p = begin("a")
        .where_fn(|e| e.kind == 1)
        .name("typed")
        .build()
        .unwrap();
    let q = p.clone();
    assert_eq!(q.name(), "typed");
    assert_eq!(q.ir().stages.len(), 1);
    let debug = format!("{q:?}");
    assert!(debug.contains("tests::Ev"), "{debug}");
    assert!(debug.contains("Native(closure)"), "{debug}");
    let untyped: ir::Pattern = p.into();
    assert_eq!(untyped.name, "typed");
}
