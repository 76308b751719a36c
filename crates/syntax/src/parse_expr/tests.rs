//! Unit tests of the expression grammar: precedence, associativity,
//! synonyms, literals, calls, paths, depth limits and error messages.

use crate::ast::{Expr, ExprKind, Literal};
use crate::expr::{BinaryOp, UnaryOp};
use crate::{parse_expression, print_expr};

fn parse(src: &str) -> Expr {
    match parse_expression(src) {
        Ok(e) => e,
        Err(d) => panic!("{src}: {:?}", d[0].message),
    }
}

/// Fully parenthesised form, to assert the tree shape.
fn shape(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Binary(op, l, r) => format!("({} {} {})", shape(l), op.symbol(), shape(r)),
        ExprKind::Chain(first, rest) => rest.iter().fold(shape(first), |acc, (op, r)| {
            format!("({acc} {} {})", op.symbol(), shape(r))
        }),
        ExprKind::Unary(UnaryOp::Not, x) => format!("(not {})", shape(x)),
        ExprKind::Unary(UnaryOp::Neg, x) => format!("(- {})", shape(x)),
        ExprKind::In(x, items) => format!(
            "({} in [{}])",
            shape(x),
            items.iter().map(shape).collect::<Vec<_>>().join(", ")
        ),
        _ => print_expr(e),
    }
}

fn error(src: &str) -> String {
    match parse_expression(src) {
        Ok(e) => panic!("{src} parsed as {e:?}"),
        Err(d) => d[0].message.clone(),
    }
}

#[test]
fn precedence_loosest_first() {
    assert_eq!(shape(&parse("a or b and c")), "(a or (b and c))");
    assert_eq!(shape(&parse("not a and b")), "((not a) and b)");
    assert_eq!(shape(&parse("not a == b")), "(not (a == b))");
    assert_eq!(shape(&parse("a == b + c * d")), "(a == (b + (c * d)))");
    assert_eq!(shape(&parse("-a * b")), "((- a) * b)");
    assert_eq!(shape(&parse("a + b in [1, 2]")), "((a + b) in [1, 2])");
}

#[test]
fn binary_operators_are_left_associative() {
    assert_eq!(shape(&parse("a - b - c")), "((a - b) - c)");
    assert_eq!(shape(&parse("a / b % c * d")), "(((a / b) % c) * d)");
    assert_eq!(shape(&parse("a or b or c")), "((a or b) or c)");
    // One flat node per chain; a bracketed left operand of the same level
    // is the same tree as without brackets, a right one is not.
    let flat = |src: &str| {
        let mut e = parse(src);
        crate::ast::clear_expr(&mut e);
        e
    };
    assert_eq!(flat("(a - b) - c"), flat("a - b - c"));
    assert_eq!(flat("((a - b + c)) - d"), flat("a - b + c - d"));
    assert_ne!(flat("a - (b - c)"), flat("a - b - c"));
    assert_ne!(flat("(a < b) == c"), flat("a < (b == c)"));
    let ExprKind::Chain(_, rest) = flat("(a - b + c) - d").kind else {
        panic!("a chain");
    };
    assert_eq!(rest.len(), 3);
    assert!(matches!(
        flat("a * b").kind,
        ExprKind::Binary(BinaryOp::Mul, ..)
    ));
}

#[test]
fn symbol_synonyms() {
    assert_eq!(
        shape(&parse("!a && b || c")),
        shape(&parse("not a and b or c"))
    );
    assert_eq!(shape(&parse("a != b")), "(a != b)");
}

#[test]
fn comparisons_do_not_chain() {
    assert!(error("a < b < c").contains("cannot be chained"));
    assert!(error("b and a = 1").contains("=="));
}

#[test]
fn literals() {
    let lit = |s: &str| match parse(s).kind {
        ExprKind::Literal(l) => l,
        other => panic!("{other:?}"),
    };
    assert_eq!(lit("42"), Literal::Int(42));
    assert_eq!(lit("-7"), Literal::Int(-7));
    assert_eq!(lit("-9223372036854775808"), Literal::Int(i64::MIN));
    assert_eq!(lit("3.5"), Literal::Float(3.5));
    assert_eq!(lit("-1e-3"), Literal::Float(-0.001));
    assert_eq!(lit("true"), Literal::Bool(true));
    assert_eq!(lit("null"), Literal::Null);
    assert_eq!(lit(r#""a\u{41}""#), Literal::Str("aA".into()));
    assert!(matches!(lit("15m"), Literal::Duration(d) if d.millis() == Some(900_000)));
    assert!(error("9223372036854775808").contains("too large"));
}

#[test]
fn negation_of_non_literals_stays_unary() {
    assert_eq!(shape(&parse("-(5)")), "(- 5)");
    assert_eq!(shape(&parse("-5m")), "(- 5m)");
    assert_eq!(shape(&parse("a-5")), "(a - 5)");
}

#[test]
fn calls_paths_and_lists() {
    let e = parse("count(fail) >= 3 and `user-agent`.os in [\"a\", \"b\"]");
    assert_eq!(
        shape(&e),
        "((count(fail) >= 3) and (`user-agent`.os in [\"a\", \"b\"]))"
    );
    assert_eq!(print_expr(&parse("f ( )")), "f()");
    assert_eq!(print_expr(&parse("x in []")), "x in []");
    let ExprKind::Path(p) = parse("a.b.c").kind else {
        panic!("not a path")
    };
    assert_eq!(p.segments.len(), 3);
}

#[test]
fn spans_cover_the_text() {
    let src = "  (a + b) * c";
    let e = parse(src);
    assert_eq!(&src[e.span.range()], "(a + b) * c");
    let ExprKind::Binary(BinaryOp::Mul, l, _) = &e.kind else {
        panic!("not a product")
    };
    assert_eq!(&src[l.span.range()], "(a + b)");
}

#[test]
fn errors_say_what_was_expected() {
    assert_eq!(
        error("a +"),
        "expected an expression after the operator, found the end of the file"
    );
    assert_eq!(
        error("(a"),
        "expected `)` to close the parenthesis, found the end of the file"
    );
    assert!(error("f(a,").contains("an argument"));
    assert!(error("a in 1").contains("`[`"));
    assert!(error("a b").contains("found `b`"));
    assert!(error("and").contains("expected an expression"));
}

#[test]
fn nesting_is_limited() {
    let deep = format!("{}x{}", "(".repeat(100), ")".repeat(100));
    assert!(error(&deep).contains("nested more than 64"));
    let nots = format!("{}x", "not ".repeat(100));
    assert!(error(&nots).contains("nested more than 64"));
    // A flat chain is one level, however long; brackets nest.
    for op in [" + ", " * ", " and ", " or "] {
        let chain = vec!["x"; 10_000].join(op);
        assert!(matches!(parse(&chain).kind, ExprKind::Chain(_, ref rest) if rest.len() == 9_999));
    }
    let right = format!("{}x{}", "x + (".repeat(100), ")".repeat(100));
    assert!(error(&right).contains("nested more than 64"));
    let ok = format!("{}x{}", "x + (".repeat(60), ")".repeat(60));
    parse(&ok);
    let negs = format!("{}x", "-".repeat(100_000));
    assert!(error(&negs).contains("nested"));
}

#[test]
fn whitespace_around_the_dots_of_a_path_means_nothing() {
    for src in ["user.id", "user .id", "user. id", "user\n    .id"] {
        let ExprKind::Path(p) = parse(src).kind else {
            panic!("{src}: not a path")
        };
        let names: Vec<&str> = p.segments.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["user", "id"], "{src}");
    }
}
