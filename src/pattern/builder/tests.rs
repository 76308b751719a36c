//! Unit tests of the builder: the IR it makes and the misuse it reports.

use super::*;
use crate::pattern::{Condition, ElementKind, MAX_NESTING};

#[derive(Debug)]
struct Ev {
    kind: i64,
    price: i64,
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
    let f = n.closure.downcast_ref::<NativeFn<Ev>>().unwrap();
    f(e, earlier)
}

fn kinds(errors: &[PatternError]) -> Vec<PatternErrorKind> {
    errors.iter().map(|e| e.kind).collect()
}

#[test]
fn sequence_of_stages() {
    let p = Pattern::begin("a")
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
        .within_prev(50)
        .build()
        .unwrap();
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
    let p = Pattern::begin("a")
        .times_range(0, 3)
        .followed_by("b")
        .times_or_more(0)
        .followed_by("c")
        .build()
        .unwrap();
    let e = &p.sequence.elements;
    assert_eq!(e[0].quantifier, Quantifier::Times { min: 0, max: 3 });
    assert!(e[0].is_optional());
    assert_eq!(e[1].quantifier, Quantifier::AtLeast(1));
    assert!(e[1].optional);
}

#[test]
fn pattern_level_options() {
    let p = Pattern::begin("a")
        .followed_by("b")
        .not_followed_by("c")
        .within(1000)
        .skip_to_last("b")
        .partition_by("user.id")
        .emit_timeouts()
        .doc("docs")
        .name("p1")
        .build()
        .unwrap();
    assert_eq!(p.name, "p1");
    assert_eq!(p.doc.as_deref(), Some("docs"));
    assert_eq!(p.within, Some(1000));
    assert_eq!(p.skip, SkipStrategy::ToLast(StageId(1)));
    assert_eq!(p.partition_by, [FieldPath::parse("user.id")]);
    assert!(p.emit_timeouts);
    let p = Pattern::begin("a")
        .skip(SkipStrategy::PastLastEvent)
        .build()
        .unwrap();
    assert_eq!(p.skip, SkipStrategy::PastLastEvent);
}

#[test]
fn groups_flatten_stages_in_pattern_order() {
    let inner = Pattern::begin("c").next("d").one_or_more();
    let group = Pattern::begin("b").followed_by_group(inner).times(2);
    let p = Pattern::begin("a")
        .followed_by_any_group(group)
        .optional()
        .next("e")
        .build()
        .unwrap();
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

    let p = Pattern::begin_group(Pattern::begin("x").next("y"))
        .followed_by("z")
        .build()
        .unwrap();
    assert!(matches!(p.sequence.elements[0].kind, ElementKind::Group(_)));
    assert_eq!(p.stages.len(), 3);
}

#[test]
fn closures_become_native_conditions() {
    let p = Pattern::begin("a")
        .where_fn(|e: &Ev| e.kind == 0)
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
        .unwrap();
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
    let errors = Pattern::begin("a")
        .times(2)
        .one_or_more()
        .optional()
        .optional()
        .consecutive()
        .allow_combinations()
        .until_fn(|_: &Ev| true)
        .until_fn(|_: &Ev| true)
        .where_fn(|_: &Ev| true)
        .where_fn(|_: &i64| true)
        .followed_by_group(Pattern::begin("b").within(5).skip(SkipStrategy::ToNext))
        .build()
        .unwrap_err();
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages[..7],
        [
            "stage `a`: a quantifier is applied twice (`one_or_more` after Times { min: 2, max: 2 })",
            "stage `a`: `optional` is applied twice",
            "stage `a`: `consecutive` and `allow_combinations` cannot be used together",
            "stage `a`: `until` is given twice",
            "stage `a`: its conditions are closures over different event types, which cannot be combined",
            "`within` applies to a whole pattern, not to a group",
            "`skip` applies to a whole pattern, not to a group",
        ]
    );
    assert!(kinds(&errors[..7])
        .iter()
        .all(|&k| k == PatternErrorKind::BuilderMisuse));
    // `until` on a non-looping element is found by `validate`.
    assert!(kinds(&errors).contains(&PatternErrorKind::UntilOnNonLooping));

    let errors = Pattern::begin_group(Pattern::begin("a"))
        .where_fn(|_: &Ev| true)
        .build()
        .unwrap_err();
    assert_eq!(
        errors[0].message,
        "a group: a group has no condition of its own; give it to its stages"
    );
}

#[test]
fn validate_rules_apply() {
    let errors = Pattern::begin("a")
        .followed_by("b")
        .not_followed_by("c")
        .build()
        .unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::EndsWithNotFollowedBy]);
    let errors = Pattern::begin("a").greedy().build().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::GreedyOnSingle]);
    let errors = Pattern::begin("a").next("a").build().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::DuplicateStage]);
    let errors = Pattern::begin("a").times(0).build().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::InvalidQuantifier]);
    let errors = Pattern::begin("a")
        .followed_by("b")
        .not_followed_by("c")
        .times(2)
        .within(10)
        .build()
        .unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::ModifierOnNot]);
    let errors = Pattern::begin("a").skip_to_first("x").build().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::InvalidSkipTarget]);
    let errors = Pattern::begin("a").name("").build().unwrap_err();
    assert_eq!(kinds(&errors), [PatternErrorKind::EmptyName]);
}

#[test]
fn deep_groups_are_an_error_not_a_crash() {
    let mut group = Pattern::begin("x");
    for i in 0..(MAX_NESTING + 5) {
        group = Pattern::begin(format!("s{i}")).next_group(group);
    }
    let errors = group.build().unwrap_err();
    assert!(kinds(&errors).contains(&PatternErrorKind::BuilderMisuse));
}

/// The pattern as Debug text with every span cleared (the builder has none).
fn without_spans(mut p: Pattern) -> String {
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

fn language(src: &str) -> Pattern {
    let loaded = crate::dsl::load_str("test.cep", src);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    loaded.patterns.into_iter().next().unwrap()
}

fn assert_same(built: PatternBuilder, src: &str) {
    let built = built.build().unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(without_spans(built), without_spans(language(src)));
}

#[test]
fn builder_makes_the_language_ir() {
    assert_same(
        Pattern::begin("a")
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
            .within(10_000)
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
        Pattern::begin("a")
            .where_expr("x > 1")
            .one_or_more()
            .greedy()
            .until_expr("stop")
            .followed_by_group(
                Pattern::begin("b")
                    .where_expr("count(a) > 2")
                    .not_next("c")
                    .where_expr("bad")
                    .followed_by("d"),
            )
            .times(2)
            .within_prev(5_000)
            .not_followed_by("e")
            .within(60_000)
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
    let errors = Pattern::begin("a")
        .where_expr("type ==")
        .followed_by("b")
        .where_expr("nope(x)")
        .select("v", "price")
        .build()
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
    let errors = Pattern::begin("a")
        .where_expr("x > 1")
        .where_fn(|_: &Ev| true)
        .build()
        .unwrap_err();
    assert_eq!(
        errors[0].message,
        "stage `a`: it mixes expression and closure conditions, which cannot be combined"
    );
}

#[test]
fn several_expressions_are_anded() {
    let p = Pattern::begin("a")
        .where_expr("x > 1")
        .where_expr("y < 2")
        .build()
        .unwrap();
    let q = language("pattern unnamed { match a where a: x > 1 and y < 2 }");
    assert_eq!(without_spans(p), without_spans(q));
}
