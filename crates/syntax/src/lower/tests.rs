//! Unit tests of lowering: the IR each construct produces, and each
//! language-only check.

use crate::expr::{AggregateFunc, Expr};
use crate::pattern::{
    Condition, Contiguity, ElementKind, InnerContiguity, Pattern, Quantifier, SkipStrategy,
};
use crate::primitives::StageId;
use crate::value::Value;
use crate::{load_str, DiagnosticKind, Severity};

fn lower(src: &str) -> Pattern {
    let loaded = load_str("t.cep", src);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    loaded.patterns.into_iter().next().expect("one pattern")
}

fn kinds(src: &str) -> Vec<(Severity, DiagnosticKind)> {
    load_str("t.cep", src)
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.kind))
        .collect()
}

fn quantifiers(p: &Pattern) -> Vec<(Quantifier, bool)> {
    p.sequence
        .elements
        .iter()
        .map(|e| (e.quantifier, e.optional))
        .collect()
}

#[test]
fn quantifiers_are_normalised_like_flink() {
    let p = lower("pattern p { match a? next b* next c+ next d{2} next e{0,3} next f{2,4} next g{3,} next h{0,} next i{1} }");
    assert_eq!(
        quantifiers(&p),
        [
            (Quantifier::One, true),
            (Quantifier::AtLeast(1), true),
            (Quantifier::AtLeast(1), false),
            (Quantifier::Times { min: 2, max: 2 }, false),
            // `{0,3}` stays as written; `is_optional` says it is optional.
            (Quantifier::Times { min: 0, max: 3 }, false),
            (Quantifier::Times { min: 2, max: 4 }, false),
            (Quantifier::AtLeast(3), false),
            (Quantifier::AtLeast(1), true),
            (Quantifier::Times { min: 1, max: 1 }, false),
        ]
    );
}

#[test]
fn clauses_and_doc() {
    let p = lower("/// One.\n/// Two.\npattern p { partition by a.b, c within 15m skip to last x timeouts match x }");
    assert_eq!(p.doc.as_deref(), Some("One.\nTwo."));
    let parts: Vec<String> = p.partition_by.iter().map(ToString::to_string).collect();
    assert_eq!(parts, ["a.b", "c"]);
    assert_eq!(p.within, Some(900_000));
    assert_eq!(p.skip, SkipStrategy::ToLast(StageId(0)));
    assert!(p.emit_timeouts);
    assert_eq!(p.name, "p");
}

#[test]
fn stages_are_numbered_in_pattern_order_through_groups() {
    let p = lower("pattern p { match a followed by any (b next c){2} combinations not followed by d next e within 1s }");
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    let e = &p.sequence.elements;
    assert_eq!(e[1].contiguity, Contiguity::NonDeterministic);
    assert_eq!(e[1].inner, InnerContiguity::Combinations);
    let ElementKind::Group(g) = &e[1].kind else {
        panic!("not a group")
    };
    assert!(matches!(g.elements[1].kind, ElementKind::Stage(StageId(2))));
    assert_eq!(g.elements[1].contiguity, Contiguity::Strict);
    assert_eq!(e[2].contiguity, Contiguity::NotFollowedBy);
    assert_eq!(e[3].within, Some(1000));
    assert!(matches!(p.stages[0].condition, Condition::True));
}

#[test]
fn stage_references_fields_and_aggregates() {
    let p = lower(
        "pattern p { match a followed by b where b: price > a.price and user.id == 1 and count(a) > sum(a.x) }",
    );
    let Condition::Expr(e) = &p.stages[1].condition else {
        panic!("no condition")
    };
    let mut seen = Vec::new();
    e.walk(|x| match x {
        Expr::StageField { stage, path } => seen.push(format!("stage {} {path}", stage.0)),
        Expr::Field(path) => seen.push(format!("field {path}")),
        Expr::Aggregate { func, stage, path } => seen.push(format!(
            "{} {} {:?}",
            func.name(),
            stage.0,
            path.as_ref().map(ToString::to_string)
        )),
        _ => {}
    });
    assert_eq!(
        seen,
        [
            "field price",
            "stage 0 price",
            "field user.id",
            "count 0 None",
            "sum 0 Some(\"x\")"
        ]
    );
    assert!(e.reads_stages());
}

#[test]
fn functions_regexes_exists_and_durations() {
    let p = lower(
        r#"pattern p { match a where a: matches(lower(name), "^ab+$") and exists(`user-agent`) and ts < 2s and x in [1, "a"] }"#,
    );
    let Condition::Expr(e) = &p.stages[0].condition else {
        panic!("no condition")
    };
    let mut found = (false, false, false);
    e.walk(|x| match x {
        Expr::Matches(_, re) => found.0 = re.is_match("abb"),
        Expr::Exists(path) => found.1 = path.to_string() == "user-agent",
        Expr::Literal(Value::Int(2000)) => found.2 = true,
        _ => {}
    });
    assert_eq!(found, (true, true, true));
}

#[test]
fn until_takes_its_where_entry() {
    let p = lower(
        "pattern p { match (a+ until stop) next b+ until stop2 where stop: x == 1 stop2: x == 2 }",
    );
    let ElementKind::Group(g) = &p.sequence.elements[0].kind else {
        panic!("not a group")
    };
    let show = |c: &Option<Condition>| match c {
        Some(Condition::Expr(e)) => crate::explain::expr_text(e, &p.stages),
        other => format!("{other:?}"),
    };
    assert_eq!(show(&g.elements[0].until), "x == 1");
    assert_eq!(show(&p.sequence.elements[1].until), "x == 2");
    // `until` entries are not stages.
    assert_eq!(p.stages.len(), 2);
}

#[test]
fn select_items() {
    let p = lower(
        "pattern p { match a select n = count(a) first_x = first(a.x) ids = distinct(a.id) }",
    );
    let names: Vec<&str> = p.select.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["n", "first_x", "ids"]);
    assert!(matches!(
        p.select[1].expr,
        Expr::Aggregate {
            func: AggregateFunc::First,
            ..
        }
    ));
}

#[test]
fn language_checks() {
    use DiagnosticKind as K;
    use Severity::{Error as E, Warning as W};
    assert_eq!(
        kinds("pattern p { match a where b: x }"),
        [(W, K::UnusedEntry)]
    );
    assert_eq!(
        kinds("pattern p { match a+ until s }"),
        [(E, K::UnknownName)]
    );
    assert_eq!(
        kinds("pattern p { match a+ until a }"),
        [(E, K::UntilUsesStage)]
    );
    assert_eq!(
        kinds("pattern p { skip to first z match a }"),
        [(E, K::UnknownName)]
    );
    assert_eq!(
        kinds("pattern p { within 1s within 2s match a }"),
        [(E, K::Duplicate)]
    );
    assert_eq!(
        kinds("pattern p { match a+ greedy greedy }"),
        [(E, K::Duplicate)]
    );
    assert_eq!(
        kinds("pattern p { match a+ until s until s where s: x }"),
        [(E, K::Duplicate)]
    );
    assert_eq!(
        kinds("pattern p { match a+ within 1s within 2s }"),
        [(E, K::Duplicate)]
    );
    assert_eq!(
        kinds("pattern p { match a* optional }"),
        [(E, K::Duplicate)]
    );
    assert_eq!(
        kinds("pattern p { match a optional optional }"),
        [(E, K::Duplicate)]
    );
    assert_eq!(
        kinds("pattern p { match a+ combinations consecutive }"),
        [(E, K::ConflictingModifiers)]
    );
    assert_eq!(
        kinds("pattern p { match a{0,0} }"),
        [(E, K::InvalidQuantifier)]
    );
    assert_eq!(kinds("pattern p { match a{2,10001} }"), [(E, K::Limit)]);
    assert_eq!(
        kinds("pattern p { match a{99999999999999999999999} }"),
        [(E, K::Limit)]
    );
    assert_eq!(
        kinds("pattern p { match a select x = a.y x = a.z }"),
        [(E, K::Duplicate)]
    );
    assert_eq!(
        kinds("pattern p { match a select x = exists(y) }"),
        [(E, K::FieldInSelect)]
    );
    assert_eq!(
        kinds("pattern p { match a where a: abs(x, y) }"),
        [(E, K::BadArguments)]
    );
    assert_eq!(
        kinds("pattern p { match a where a: nope(x) }"),
        [(E, K::UnknownFunction)]
    );
    assert_eq!(
        kinds("pattern p { match a where a: 9999999999999999d > 1 }"),
        [(E, K::Limit)]
    );
    assert_eq!(
        kinds("pattern p { within 9999999999999999d match a }"),
        [(E, K::Limit)]
    );
    assert_eq!(
        kinds(r#"pattern p { match a where a: matches(x, "a{100000}{100000}") }"#),
        [(E, K::InvalidRegex)]
    );
    let many: Vec<String> = (0..300).map(|i| format!("s{i}")).collect();
    let src = format!("pattern p {{ match {} }}", many.join(" next "));
    assert_eq!(
        kinds(&src),
        [(
            E,
            K::Pattern(crate::pattern::PatternErrorKind::LimitExceeded)
        )]
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let d = kinds(
        "pattern p { within 1s within 2s match a greedy followed by a where a: nope(1) b: 1 }",
    );
    assert_eq!(d.len(), 5, "{d:?}");
}

#[test]
fn duplicate_pattern_names_across_sources_point_at_the_first() {
    let mut loaded = crate::Loaded::default();
    loaded.add_str("one.cep", "pattern p { match a }");
    loaded.add_str("two.cep", "\npattern p { match b }");
    assert_eq!(loaded.patterns.len(), 1);
    let d = &loaded.diagnostics[0];
    assert_eq!((d.source, d.labels[0].source), (1, 0));
    let text = loaded.render();
    assert!(
        text.starts_with("error: two.cep:2:9: a pattern named `p` is already defined"),
        "{text}"
    );
    assert!(text.contains("one.cep:1:9"), "{text}");
}

#[test]
fn standalone_expressions() {
    let e = crate::parse_expression("price > a.price").unwrap();
    let names = vec!["a".to_string()];
    let lowered = crate::lower_expression(&e, &names).unwrap();
    assert!(lowered.reads_stages());
    let bad = crate::parse_expression("sum(zz.x)").unwrap();
    assert!(crate::lower_expression(&bad, &names).is_err());
}

/// The text under each warning of `kind` that loading `src` (without
/// errors) gives.
fn warned_of(kind: DiagnosticKind, src: &str) -> Vec<&str> {
    let loaded = load_str("t.cep", src);
    assert!(!loaded.has_errors(), "{src}: {}", loaded.render());
    loaded
        .diagnostics
        .iter()
        .filter(|d| (d.severity, d.kind) == (Severity::Warning, kind))
        .map(|d| &src[d.span.start as usize..d.span.end as usize])
        .collect()
}

#[test]
fn a_looping_element_without_a_window_is_warned_about() {
    let warned = |src| warned_of(DiagnosticKind::UnboundedState, src);
    // A run in `b+` waits for one more `b` for ever.
    assert_eq!(warned("pattern p { match a followed by b+ }"), ["b+"]);
    assert_eq!(warned("pattern p { match a* followed by b }"), ["a*"]);
    assert_eq!(warned("pattern p { match a{2,} next b }"), ["a{2,}"]);
    // Inside a group: the first unbounded loop is named.
    assert_eq!(
        warned("pattern p { match a followed by (b followed by c+){2} }"),
        ["c+"]
    );
    assert_eq!(warned("pattern p { match (a next b)+ }"), ["(a next b)+"]);
    // A window bounds it: the pattern's, the element's, or its group's.
    assert!(warned("pattern p { within 1h match a followed by b+ }").is_empty());
    assert!(warned("pattern p { match a followed by b+ within 1s }").is_empty());
    assert!(warned("pattern p { match a followed by (b next c+) within 1s }").is_empty());
    // Counted and single elements end by themselves.
    assert!(warned("pattern p { match a followed by b{1,5} followed by c }").is_empty());
    assert!(warned("pattern p { match a followed by b }").is_empty());
    // Patterns with errors get no such warning.
    assert_eq!(
        kinds("pattern p { match a+ until s }"),
        [(Severity::Error, DiagnosticKind::UnknownName)]
    );
}

#[test]
fn a_parse_error_is_an_error_value_with_line_and_column() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    let text = "pattern p {\n  match a b\n  where a: x ==\n}\n";
    let e = crate::parse(text).unwrap_err();
    is_error(&e);
    assert!(e.errors().count() >= 1);
    let first = e.errors().next().unwrap();
    let (line, col) = crate::Source::new("", text).line_col(first.span.start as usize);
    assert!(e.to_string().starts_with(&format!("{line}:{col}: ")), "{e}");
    assert_eq!((line, col), (2, 11), "{e}");
    let drawn = e.render(&crate::Source::new("rules.cep", text));
    assert!(drawn.contains("rules.cep:2:11"), "{drawn}");
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e.clone());
    assert_eq!(boxed.to_string(), e.to_string());
    assert_eq!(e.clone().into_vec().len(), e.len());
}

#[test]
fn groups_nested_past_the_limit_are_an_error_at_their_place() {
    let deep = 70;
    let text = format!(
        "pattern p {{ match {}a{} }}",
        "(".repeat(deep),
        ")".repeat(deep)
    );
    let loaded = crate::load_str("deep.cep", &text);
    let rendered = loaded.render();
    assert!(
        rendered.contains("groups are nested more than 64 deep"),
        "{rendered}"
    );
    assert!(rendered.contains("deep.cep:1:"), "{rendered}");
}

#[test]
fn an_expression_built_by_hand_past_the_limit_is_an_error_not_a_stack_overflow() {
    // (text cannot nest this deep: the parser stops at 64; a library
    // user's own syntax tree, lowered by `lower_expression`, can)
    let mut e = crate::parse_expression("x > 1").unwrap();
    for _ in 0..10_000 {
        let span = e.span;
        e = crate::ast::Expr {
            kind: crate::ast::ExprKind::Unary(crate::expr::UnaryOp::Not, Box::new(e)),
            span,
        };
    }
    let errors = crate::lower_expression(&e, &[]).expect_err("too deep");
    let text = format!("{errors:?}");
    assert!(text.contains("nested more than 64 levels deep"), "{text}");
}

#[test]
fn the_first_element_of_a_group_is_warned_about_where_it_repeats_otherwise_than_written() {
    let warned = |src: &str| -> Vec<String> {
        let got = warned_of(DiagnosticKind::GroupHeadContiguity, src);
        got.into_iter().map(str::to_string).collect()
    };
    let p = |m: &str| format!("pattern p {{ within 1h match {m} }}");
    // A group that does not repeat: its first element's repetitions are
    // relaxed, whatever is written on it.
    assert_eq!(
        warned(&p("x followed by (a{2,3} consecutive followed by c)")),
        ["a{2,3} consecutive"]
    );
    assert_eq!(
        warned(&p("x followed by (a+ combinations followed by c)")),
        ["a+ combinations"]
    );
    assert!(warned(&p("x followed by (a{2,3} followed by c)")).is_empty());
    // A repeated group gives its own contiguity.
    assert_eq!(
        warned(&p("x followed by (a{2} followed by c){2} consecutive")),
        ["a{2}"]
    );
    assert!(warned(&p(
        "x followed by (a{2} consecutive followed by c){2} consecutive"
    ))
    .is_empty());
    assert!(warned(&p("x followed by (a{2} followed by c)+")).is_empty());
    // Not the first element, not quantified, or not in a group: as written.
    assert!(warned(&p("x followed by (c followed by a{2,3} consecutive)")).is_empty());
    assert!(warned(&p("x followed by (a followed by c){2} consecutive")).is_empty());
    assert!(warned(&p("x followed by a{2,3} consecutive followed by c")).is_empty());
    // A branch of an alternation keeps its own (difference 5), written
    // alone or in parentheses; a group inside a branch, or a group inside
    // a group, is a group.
    assert!(warned(&p("x followed by (a{2} consecutive or c)")).is_empty());
    assert!(warned(&p("x followed by (c or (a{2} consecutive followed by d))")).is_empty());
    assert_eq!(
        warned(&p(
            "x followed by (c or (e followed by (a{2} consecutive followed by d)))"
        )),
        ["a{2} consecutive"]
    );
    assert_eq!(
        warned(&p(
            "x followed by (c followed by (a{2} consecutive followed by d))"
        )),
        ["a{2} consecutive"]
    );
}
