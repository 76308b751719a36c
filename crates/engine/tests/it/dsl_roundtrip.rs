//! Property tests of the pattern language: random syntax trees (every
//! construct: patterns and their parameters, lists, indicators, factors,
//! scenes and the rules written inside them) survive print → parse
//! unchanged, and no input text makes the loader panic.

use cepheid_core::expr::{BinaryOp, UnaryOp};
use cepheid_core::lookup::{ListKind, WriteOp};
use cepheid_core::pattern::Contiguity;
use cepheid_core::scene::HitPolicy;
use cepheid_engine::Span;
use cepheid_syntax::ast::{
    Binding, Check, Clause, ClauseKind, Connector, Constant, Declaration, DeclarationKind,
    Duration, Effect, Element, ElementKind, Entry, Expr, ExprKind, FactorDecl, File, Ident,
    IndicatorClause, IndicatorClauseKind, IndicatorDecl, ListDecl, Literal, Modifier, ModifierKind,
    Param, ParamType, Path, PatternDecl, Quantifier, QuantifierKind, RuleRef, SceneClause,
    SceneClauseKind, SceneDecl, Sequence, Skip, StrLit, TimeUnit,
};
use proptest::prelude::*;

fn ident() -> impl Strategy<Value = Ident> {
    "[a-z_][a-z0-9_]{0,5}"
        .prop_filter("reserved", |s| cepheid_syntax::is_plain_ident(s))
        .prop_map(|name| Ident {
            name,
            span: Span::default(),
        })
}

/// A path segment: an identifier or any backquotable name.
fn segment() -> impl Strategy<Value = Ident> {
    prop_oneof![
        3 => ident(),
        1 => "[^`\\x00]{1,6}".prop_map(|name| Ident { name, span: Span::default() }),
    ]
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(segment(), 1..4).prop_map(|segments| Path {
        segments,
        span: Span::default(),
    })
}

fn duration() -> impl Strategy<Value = Duration> {
    let unit = prop_oneof![
        Just(TimeUnit::Millis),
        Just(TimeUnit::Seconds),
        Just(TimeUnit::Minutes),
        Just(TimeUnit::Hours),
        Just(TimeUnit::Days),
    ];
    (0u64..100_000, unit).prop_map(|(value, unit)| Duration {
        value,
        unit,
        span: Span::default(),
    })
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(Literal::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Literal::Float),
        ".{0,8}".prop_map(Literal::Str),
        duration().prop_map(Literal::Duration),
    ]
}

fn expr_node(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(vec![
        BinaryOp::Or,
        BinaryOp::And,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Rem,
    ])
}

/// The operators of one precedence level, which chain.
fn level() -> impl Strategy<Value = Vec<BinaryOp>> {
    prop::sample::select(vec![
        vec![BinaryOp::Or],
        vec![BinaryOp::And],
        vec![BinaryOp::Add, BinaryOp::Sub],
        vec![BinaryOp::Mul, BinaryOp::Div, BinaryOp::Rem],
    ])
}

fn level_of(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Add | BinaryOp::Sub => 5,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 6,
        _ => 4,
    }
}

/// The tree as the parser makes it: operators are left-associative, so a
/// left operand of the same (chaining) level joins its chain, as in
/// `(a - b) - c`, which is `a - b - c`.
fn canonical(kind: ExprKind) -> Expr {
    let (first, mut rest) = match kind {
        ExprKind::Binary(op, l, r) if level_of(op) != 4 => (l, vec![(op, *r)]),
        ExprKind::Chain(first, rest) => (first, rest),
        other => return expr_node(other),
    };
    let level = level_of(rest[0].0);
    let (first, mut all) = match first.kind {
        ExprKind::Binary(op, l, r) if level_of(op) == level => (l, vec![(op, *r)]),
        ExprKind::Chain(l, inner) if level_of(inner[0].0) == level => (l, inner),
        kind => (Box::new(expr_node(kind)), Vec::new()),
    };
    all.append(&mut rest);
    if all.len() == 1 {
        let (op, r) = all.pop().unwrap();
        expr_node(ExprKind::Binary(op, first, Box::new(r)))
    } else {
        expr_node(ExprKind::Chain(first, all))
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        literal().prop_map(|l| expr_node(ExprKind::Literal(l))),
        path().prop_map(|p| expr_node(ExprKind::Path(p))),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                prop_oneof![Just(UnaryOp::Neg), Just(UnaryOp::Not)],
                inner.clone()
            )
                .prop_map(|(op, x)| expr_node(ExprKind::Unary(op, Box::new(x)))),
            (binary_op(), inner.clone(), inner.clone())
                .prop_map(|(op, l, r)| canonical(ExprKind::Binary(op, Box::new(l), Box::new(r)))),
            (
                level(),
                inner.clone(),
                prop::collection::vec((any::<prop::sample::Index>(), inner.clone()), 2..4)
            )
                .prop_map(|(level, first, rest)| canonical(ExprKind::Chain(
                    Box::new(first),
                    rest.into_iter().map(|(i, x)| (*i.get(&level), x)).collect()
                ))),
            (inner.clone(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(x, items)| expr_node(ExprKind::In(Box::new(x), items))),
            (inner.clone(), ident())
                .prop_map(|(x, list)| expr_node(ExprKind::InList(Box::new(x), list))),
            (ident(), prop::collection::vec(inner, 0..3))
                .prop_map(|(f, args)| expr_node(ExprKind::Call(f, args))),
        ]
    })
}

fn quantifier() -> impl Strategy<Value = Option<Quantifier>> {
    let kind = prop_oneof![
        Just(QuantifierKind::Optional),
        Just(QuantifierKind::Star),
        Just(QuantifierKind::Plus),
        (0u64..20).prop_map(QuantifierKind::Exactly),
        (0u64..20, prop::option::of(0u64..20)).prop_map(|(n, m)| QuantifierKind::Range(n, m)),
    ];
    prop::option::of(kind.prop_map(|kind| Quantifier {
        kind,
        span: Span::default(),
    }))
}

fn modifier() -> impl Strategy<Value = Modifier> {
    prop_oneof![
        Just(ModifierKind::Optional),
        Just(ModifierKind::Greedy),
        Just(ModifierKind::Consecutive),
        Just(ModifierKind::Combinations),
        ident().prop_map(ModifierKind::Until),
        duration().prop_map(ModifierKind::Within),
    ]
    .prop_map(|kind| Modifier {
        kind,
        span: Span::default(),
    })
}

fn contiguity() -> impl Strategy<Value = Contiguity> {
    prop::sample::select(vec![
        Contiguity::Strict,
        Contiguity::Relaxed,
        Contiguity::NonDeterministic,
        Contiguity::NotNext,
        Contiguity::NotFollowedBy,
    ])
}

fn sequence_from(
    elements: Vec<(ElementKind, Contiguity, Option<Quantifier>, Vec<Modifier>)>,
) -> Sequence {
    let elements = elements
        .into_iter()
        .enumerate()
        .map(|(i, (kind, c, quantifier, modifiers))| Element {
            connector: (i > 0).then_some(Connector {
                kind: c,
                span: Span::default(),
            }),
            kind,
            quantifier,
            modifiers,
            span: Span::default(),
        })
        .collect();
    Sequence {
        elements,
        span: Span::default(),
    }
}

fn sequence() -> impl Strategy<Value = Sequence> {
    let stage = ident().prop_map(ElementKind::Stage);
    let kind = stage.prop_recursive(2, 8, 3, |inner| {
        let group = prop::collection::vec(
            (
                inner.clone(),
                contiguity(),
                quantifier(),
                prop::collection::vec(modifier(), 0..2),
            ),
            1..3,
        )
        .prop_map(|els| ElementKind::Group(sequence_from(els)));
        // `(x or y ...)`: a group whose only element is an alternation of
        // elements without connectors.
        let alternation = prop::collection::vec(
            (inner, quantifier(), prop::collection::vec(modifier(), 0..2)),
            2..4,
        )
        .prop_map(|alts| {
            let alts: Vec<Element> = alts
                .into_iter()
                .map(|(kind, quantifier, modifiers)| Element {
                    connector: None,
                    kind,
                    quantifier,
                    modifiers,
                    span: Span::default(),
                })
                .collect();
            ElementKind::Group(Sequence {
                elements: vec![Element {
                    connector: None,
                    kind: ElementKind::Alternation(alts),
                    quantifier: None,
                    modifiers: Vec::new(),
                    span: Span::default(),
                }],
                span: Span::default(),
            })
        });
        prop_oneof![3 => group, 1 => alternation]
    });
    prop::collection::vec(
        (
            kind,
            contiguity(),
            quantifier(),
            prop::collection::vec(modifier(), 0..3),
        ),
        1..4,
    )
    .prop_map(sequence_from)
}

fn clause() -> impl Strategy<Value = Clause> {
    let skip = prop_oneof![
        Just(Skip::NoSkip),
        Just(Skip::ToNext),
        Just(Skip::PastLastEvent),
        ident().prop_map(Skip::ToFirst),
        ident().prop_map(Skip::ToLast),
    ];
    prop_oneof![
        prop::collection::vec(path(), 1..3).prop_map(ClauseKind::PartitionBy),
        duration().prop_map(ClauseKind::Within),
        skip.prop_map(ClauseKind::Skip),
        Just(ClauseKind::Timeouts),
        Just(ClauseKind::Shadow),
        prop_oneof![
            any::<i64>().prop_map(Literal::Int),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Literal::Float),
        ]
        .prop_map(ClauseKind::Score),
        ident().prop_map(ClauseKind::Level),
        ident().prop_map(ClauseKind::Action),
        prop::collection::vec(
            "[^\\x00]{0,6}".prop_map(|value| StrLit {
                value,
                span: Span::default()
            }),
            1..3
        )
        .prop_map(ClauseKind::Tags),
    ]
    .prop_map(|kind| Clause {
        kind,
        span: Span::default(),
    })
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        (ident(), expr()).prop_map(|(name, expr)| Entry {
            name,
            expr,
            span: Span::default(),
        }),
        0..3,
    )
}

fn effect() -> impl Strategy<Value = Effect> {
    (any::<bool>(), expr(), ident(), prop::option::of(duration())).prop_map(
        |(add, value, list, expiry)| Effect {
            op: if add { WriteOp::Add } else { WriteOp::Remove },
            value,
            list,
            expiry: expiry.filter(|_| add),
            span: Span::default(),
        },
    )
}

/// A constant (a parameter's value or default, a threshold): any literal
/// but `null`.
fn constant() -> impl Strategy<Value = Constant> {
    literal()
        .prop_filter("not null", |l| *l != Literal::Null)
        .prop_map(|literal| Constant {
            literal,
            span: Span::default(),
        })
}

/// A parameter; with a default only when `defaults` (a rule's).
fn param(defaults: bool) -> impl Strategy<Value = Param> {
    let ty = prop::option::of(
        prop::sample::select(vec![
            ParamType::Int,
            ParamType::Number,
            ParamType::Duration,
            ParamType::String,
            ParamType::Bool,
        ])
        .prop_map(|t| (t, Span::default())),
    );
    (ident(), ty, prop::option::of(constant())).prop_map(move |(name, ty, default)| Param {
        name,
        ty,
        default: default.filter(|_| defaults),
        span: Span::default(),
    })
}

/// A pattern's name: an identifier, or an instance's `rule@scene`.
fn pattern_name() -> impl Strategy<Value = Ident> {
    prop_oneof![
        4 => ident(),
        1 => (ident(), ident()).prop_map(|(rule, scene)| Ident {
            name: format!("{}@{}", rule.name, scene.name),
            span: Span::default(),
        }),
    ]
}

fn pattern() -> impl Strategy<Value = PatternDecl> {
    (
        prop::collection::vec("[ -~]{0,12}", 0..3),
        pattern_name(),
        prop::collection::vec(param(true), 0..3),
        prop::collection::vec(clause(), 0..4),
        sequence(),
        entries(),
        entries(),
        prop::collection::vec(effect(), 0..3),
    )
        .prop_map(
            |(doc, name, params, clauses, sequence, where_entries, select_entries, effects)| {
                PatternDecl {
                    doc,
                    name,
                    params,
                    clauses,
                    sequence,
                    where_entries,
                    select_entries,
                    effects,
                    span: Span::default(),
                }
            },
        )
}

/// What gives an outcome: an action, a score threshold, a list check
/// (`x in list`, the one form the parser makes of an expression there).
fn check() -> impl Strategy<Value = Check> {
    prop_oneof![
        ident().prop_map(Check::Action),
        (
            any::<bool>(),
            prop_oneof![
                any::<i64>().prop_map(Literal::Int),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Literal::Float),
            ]
        )
            .prop_map(|(inclusive, literal)| Check::Score {
                inclusive,
                value: Constant {
                    literal,
                    span: Span::default()
                },
            }),
        (expr(), ident())
            .prop_map(|(x, list)| Check::List(expr_node(ExprKind::InList(Box::new(x), list)))),
    ]
}

/// A name in a scene: never `if` (a line whose second word is `if` is an
/// outcome line, so `late if` cannot name the outcome `if`).
fn scene_ident() -> impl Strategy<Value = Ident> {
    ident().prop_filter("`if`", |i| i.name != "if")
}

/// Does `text` start with the word `if` (which would make its line an
/// outcome line after a clause word)?
fn starts_with_if(text: &str) -> bool {
    text.strip_prefix("if")
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

fn scene_clause() -> impl Strategy<Value = SceneClause> {
    let rule_ref = prop_oneof![
        scene_ident().prop_map(RuleRef::Name),
        "[^\\x00]{0,6}".prop_map(|value| RuleRef::Tagged(StrLit {
            value,
            span: Span::default()
        })),
    ];
    let binding = (scene_ident(), constant()).prop_map(|(name, value)| Binding {
        name,
        value,
        span: Span::default(),
    });
    prop_oneof![
        expr()
            .prop_filter("`if`", |e| !starts_with_if(&cepheid_syntax::print_expr(e)))
            .prop_map(SceneClauseKind::When),
        path()
            .prop_filter("`if`", |p| p.segments[0].name != "if")
            .prop_map(SceneClauseKind::Id),
        prop::collection::vec(rule_ref, 1..4).prop_map(SceneClauseKind::Rules),
        prop::collection::vec(binding, 1..4).prop_map(SceneClauseKind::With),
        prop::collection::vec(scene_ident(), 1..4).prop_map(SceneClauseKind::Outcomes),
        scene_ident().prop_map(SceneClauseKind::Default),
        scene_ident().prop_map(SceneClauseKind::Fallback),
        scene_ident().prop_map(SceneClauseKind::Late),
        duration().prop_map(SceneClauseKind::Deadline),
        prop::sample::select(vec![HitPolicy::First, HitPolicy::All]).prop_map(SceneClauseKind::Hit),
        (scene_ident(), check())
            .prop_map(|(outcome, check)| SceneClauseKind::Outcome { outcome, check }),
    ]
    .prop_map(|kind| SceneClause {
        kind,
        span: Span::default(),
    })
}

fn scene() -> impl Strategy<Value = SceneDecl> {
    (
        prop::collection::vec("[ -~]{0,12}", 0..2),
        ident(),
        prop::collection::vec(scene_clause(), 0..8),
        prop::collection::vec(pattern(), 0..2),
    )
        .prop_map(|(doc, name, clauses, patterns)| SceneDecl {
            doc,
            name,
            clauses,
            patterns,
            span: Span::default(),
        })
}

fn declaration() -> impl Strategy<Value = Declaration> {
    let list_kind = prop::option::of(
        prop::sample::select(vec![ListKind::Values, ListKind::Prefixes, ListKind::Cidr])
            .prop_map(|k| (k, Span::default())),
    );
    let list = (list_kind, prop::option::of(duration()))
        .prop_map(|(kind, expiry)| DeclarationKind::List(ListDecl { kind, expiry }));
    let clause = prop_oneof![
        expr().prop_map(IndicatorClauseKind::Where),
        prop::collection::vec(path(), 1..3).prop_map(IndicatorClauseKind::GroupBy),
        duration().prop_map(IndicatorClauseKind::Within),
    ]
    .prop_map(|kind| IndicatorClause {
        kind,
        span: Span::default(),
    });
    let indicator = (
        ident(),
        prop::collection::vec(expr(), 0..2),
        prop::collection::vec(clause, 0..4),
    )
        .prop_map(|(func, args, clauses)| {
            DeclarationKind::Indicator(IndicatorDecl {
                func,
                args,
                clauses,
            })
        });
    let factor = (prop::collection::vec(param(false), 0..3), expr())
        .prop_map(|(params, body)| DeclarationKind::Factor(FactorDecl { params, body }));
    (
        prop::collection::vec("[ -~]{0,12}", 0..2),
        ident(),
        prop_oneof![list, indicator, factor],
    )
        .prop_map(|(doc, name, kind)| Declaration {
            doc,
            name,
            kind,
            span: Span::default(),
        })
}

/// A rule set with every construct of scenes: a factor, a rule with
/// parameters, a scene with each clause and a rule written inside it.
const SCENE_BASE: &str = "list l
factor over(min: duration) = ts - t > min
/// Doc.
pattern r(min: duration, n: int = 5) {
    action review
    score 40
    match e
    where e: over(min) and count_1h(k) > n
}
indicator count_1h = count() group by k within 1h
scene s {
    when type == \"x\"
    id x.id
    rules r, tagged \"t\"
    with min = 1h, n = 7, x = 3
    outcomes ok < review < no
    default ok
    no if k in l
    review if action review
    review if score >= 30
    no if score > 90.5
    hit first
    fallback review
    deadline 200ms
    late no
    /// Inside.
    pattern q(x) { tags \"t\" match a where a: y > x }
}
";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn printed_files_parse_back_to_the_same_tree(
        patterns in prop::collection::vec(pattern(), 1..3),
        declarations in prop::collection::vec(declaration(), 0..3),
        scenes in prop::collection::vec(scene(), 0..2),
    ) {
        let file = File { patterns, declarations, scenes };
        let text = cepheid_syntax::print_file(&file);
        let parsed = match cepheid_syntax::parse(&text) {
            Ok(f) => f,
            Err(d) => return Err(TestCaseError::fail(format!("{}\n{text}", d[0].message))),
        };
        prop_assert_eq!(parsed.without_spans(), file, "{}", text);
    }

    #[test]
    fn any_text_loads_without_panicking(text in ".{0,200}") {
        let loaded = cepheid_engine::rules::load_str("fuzz.cep", &text);
        let _ = loaded.render();
    }

    #[test]
    fn mutated_patterns_load_without_panicking(
        cut in 0usize..400,
        insert in "[ -~\n]{0,6}",
    ) {
        let base = "/// Doc.\npattern p {\n    partition by user_id\n    within 10s\n    skip to first a\n    \
                    match a{2,} consecutive greedy followed by any (b next c)? not followed by d within 1s\n    \
                    where\n        a: x > 1 and count(a) < 3 or matches(s, \"^a\")\n        b: -x in [1, 2.5, \"s\\n\"]\n    \
                    select\n        n = sum(a.v) / 2\n}\n";
        let at = cut.min(base.len());
        let text = format!("{}{insert}{}", &base[..at], &base[at..]);
        let loaded = cepheid_engine::rules::load_str("m.cep", &text);
        let _ = loaded.render();
        if let Ok(file) = cepheid_syntax::parse(&text) {
            let printed = cepheid_syntax::print_file(&file);
            let again = cepheid_syntax::parse(&printed).expect("printed text parses");
            prop_assert_eq!(again.without_spans(), file.without_spans());
        }
    }

    #[test]
    fn mutated_scenes_load_without_panicking(
        cut in 0usize..900,
        insert in "[ -~\n]{0,6}",
    ) {
        let base = SCENE_BASE;
        let at = (0..=cut.min(base.len())).rev().find(|&i| base.is_char_boundary(i)).unwrap_or(0);
        let text = format!("{}{insert}{}", &base[..at], &base[at..]);
        let loaded = cepheid_engine::rules::load_str("m.cep", &text);
        let _ = loaded.render();
        for s in &loaded.scenes {
            let _ = cepheid_syntax::explain_scene(s, &loaded.patterns);
        }
        if let Ok(file) = cepheid_syntax::parse(&text) {
            let printed = cepheid_syntax::print_file(&file);
            let again = cepheid_syntax::parse(&printed).expect("printed text parses");
            prop_assert_eq!(again.without_spans(), file.without_spans());
        }
    }
}

/// The scenes' base text of `mutated_scenes_load_without_panicking` loads
/// cleanly, so its mutations start from a valid rule set.
#[test]
fn the_mutated_scene_base_is_valid() {
    let loaded = cepheid_engine::rules::load_str("m.cep", SCENE_BASE);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    assert_eq!(loaded.scenes.len(), 1);
    assert_eq!(loaded.patterns.len(), 2);
}
