//! The expression grammar, loosest first: `or`; `and`; `not`; comparisons
//! and `in [..]` (not chainable); `+ -`; `* / %`; unary `-`; primaries.
//! Binary operators are left-associative. `&&`, `||`, `!` are synonyms of
//! `and`, `or`, `not`.
//!
//! Depth is capped at [`MAX_NESTING`]: both the parser's recursion (parens,
//! prefix operators, arguments) and the depth of the tree it builds, so that
//! every later walk over a parsed expression is bounded. A chain of one
//! precedence level (`a and b and c ...`) is one flat node
//! ([`ExprKind::Chain`]), so its length is not nesting: a thousand `and`
//! terms are one level deep.

use crate::ast::{Expr, ExprKind, Ident, Literal, Path};
use crate::expr::{BinaryOp, UnaryOp};
use crate::lex::{
    any_ident, backquoted, cut_expect, describe_token, fatal, is_reserved, name, number,
    peek_symbol, peek_word, skip_ws, string, symbol, Cx, Number, PError, PResult,
};
use crate::pattern::MAX_NESTING;
use crate::primitives::Span;
use crate::print::binary_precedence;

/// An expression and the depth of its tree.
type Deep = (Expr, usize);

/// Parses one expression.
pub(crate) fn expr<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Expr> {
    let (rest, (e, _)) = or_expr(cx, i, 0)?;
    Ok((rest, e))
}

fn too_deep<'a, T>(at: &'a str) -> PResult<'a, T> {
    let (_, len) = describe_token(at);
    fatal(
        skip_ws(at),
        len.max(1),
        format!("this expression is nested more than {MAX_NESTING} levels deep"),
    )
}

fn binary(op: BinaryOp, (l, dl): Deep, (r, dr): Deep) -> Deep {
    let span = l.span.to(r.span);
    let e = Expr {
        kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
        span,
    };
    (e, dl.max(dr) + 1)
}

/// The first operand of a chain, its operators and right operands so far,
/// and the depth of the deepest operand.
struct Run {
    /// From the first operand (its brackets included).
    start: Span,
    first: Expr,
    rest: Vec<(BinaryOp, Expr)>,
    depth: usize,
}

impl Run {
    /// A run starting with `first`; a bracketed operand of the same level
    /// (`(a - b) - c`) is opened up, as the operators are left-associative.
    fn new((first, depth): Deep, level: u8) -> Run {
        let same = |op: BinaryOp| binary_precedence(op) == level;
        let start = first.span;
        match first.kind {
            ExprKind::Binary(op, l, r) if same(op) => Run {
                start,
                first: *l,
                rest: vec![(op, *r)],
                depth: depth - 1,
            },
            ExprKind::Chain(l, rest) if rest.first().is_some_and(|(op, _)| same(*op)) => Run {
                start,
                first: *l,
                rest,
                depth: depth - 1,
            },
            kind => Run {
                start,
                first: Expr { kind, span: start },
                rest: Vec::new(),
                depth,
            },
        }
    }

    fn finish(self) -> Deep {
        let Run {
            start,
            first,
            mut rest,
            depth,
        } = self;
        let Some(last) = rest.last() else {
            return (first, depth);
        };
        let span = start.to(last.1.span);
        let kind = if rest.len() == 1 {
            let (op, r) = rest.pop().expect("one operator");
            ExprKind::Binary(op, Box::new(first), Box::new(r))
        } else {
            ExprKind::Chain(Box::new(first), rest)
        };
        (Expr { kind, span }, depth + 1)
    }
}

/// Parses a left-associative chain `sub { op sub }` into one flat node: a
/// chain of any length is one level of nesting.
fn chain<'a>(
    cx: Cx<'a>,
    i: &'a str,
    d: usize,
    op: fn(&str) -> Option<(BinaryOp, usize)>,
    sub: fn(Cx<'a>, &'a str, usize) -> PResult<'a, Deep>,
    what: &'static str,
) -> PResult<'a, Deep> {
    let (mut rest, first) = sub(cx, i, d)?;
    let Some((o, _)) = op(skip_ws(rest)) else {
        return Ok((rest, first));
    };
    let mut run = Run::new(first, binary_precedence(o));
    while let Some((o, len)) = op(skip_ws(rest)) {
        let at = skip_ws(rest);
        let (after, (rhs, dr)) = cut_expect(&at[len..], what, sub(cx, &at[len..], d))?;
        run.depth = run.depth.max(dr);
        if run.depth + 1 > MAX_NESTING {
            return too_deep(at);
        }
        run.rest.push((o, rhs));
        rest = after;
    }
    Ok((rest, run.finish()))
}

fn word_op(i: &str, word: &str, symbol: &str) -> Option<usize> {
    if peek_word(i) == Some(word) && i.starts_with(word) {
        return Some(word.len());
    }
    i.starts_with(symbol).then_some(symbol.len())
}

fn or_op(i: &str) -> Option<(BinaryOp, usize)> {
    word_op(i, "or", "||").map(|n| (BinaryOp::Or, n))
}

fn and_op(i: &str) -> Option<(BinaryOp, usize)> {
    word_op(i, "and", "&&").map(|n| (BinaryOp::And, n))
}

fn or_expr<'a>(cx: Cx<'a>, i: &'a str, d: usize) -> PResult<'a, Deep> {
    if d > MAX_NESTING {
        return too_deep(i);
    }
    chain(cx, i, d, or_op, and_expr, "an expression after `or`")
}

fn and_expr<'a>(cx: Cx<'a>, i: &'a str, d: usize) -> PResult<'a, Deep> {
    chain(cx, i, d, and_op, not_expr, "an expression after `and`")
}

fn not_expr<'a>(cx: Cx<'a>, i: &'a str, d: usize) -> PResult<'a, Deep> {
    let at = skip_ws(i);
    let len = if peek_word(at) == Some("not") {
        3
    } else if at.starts_with('!') && !at.starts_with("!=") {
        1
    } else {
        return cmp_expr(cx, i, d);
    };
    if d + 1 > MAX_NESTING {
        return too_deep(at);
    }
    let (rest, (inner, depth)) = cut_expect(
        &at[len..],
        "an expression after `not`",
        not_expr(cx, &at[len..], d + 1),
    )?;
    let span = cx.span(at, &at[len..]).to(inner.span);
    let e = Expr {
        kind: ExprKind::Unary(UnaryOp::Not, Box::new(inner)),
        span,
    };
    Ok((rest, (e, depth + 1)))
}

fn cmp_op(i: &str) -> Option<(BinaryOp, usize)> {
    const OPS: [(&str, BinaryOp); 6] = [
        ("==", BinaryOp::Eq),
        ("!=", BinaryOp::Ne),
        ("<=", BinaryOp::Le),
        (">=", BinaryOp::Ge),
        ("<", BinaryOp::Lt),
        (">", BinaryOp::Gt),
    ];
    OPS.iter()
        .find(|(s, _)| i.starts_with(s))
        .map(|(s, op)| (*op, s.len()))
}

fn cmp_expr<'a>(cx: Cx<'a>, i: &'a str, d: usize) -> PResult<'a, Deep> {
    let (rest, lhs) = add_expr(cx, i, d)?;
    let at = skip_ws(rest);
    let (rest, result) = if let Some((op, len)) = cmp_op(at) {
        let (after, rhs) = cut_expect(
            &at[len..],
            "an expression to compare with",
            add_expr(cx, &at[len..], d),
        )?;
        (after, binary(op, lhs, rhs))
    } else if peek_word(at) == Some("in") {
        in_list(cx, &at[2..], lhs, d)?
    } else if at.starts_with('=') {
        return fatal(
            at,
            1,
            "`=` is not a comparison: write `==` to compare values",
        );
    } else {
        return Ok((rest, lhs));
    };
    if result.1 > MAX_NESTING {
        return too_deep(at);
    }
    let next = skip_ws(rest);
    if let Some((_, len)) = cmp_op(next) {
        return fatal(
            next,
            len,
            "comparisons cannot be chained: combine them with `and`, e.g. `a < b and b < c`",
        );
    }
    Ok((rest, result))
}

fn in_list<'a>(cx: Cx<'a>, i: &'a str, (lhs, dl): Deep, d: usize) -> PResult<'a, Deep> {
    if !peek_symbol(i, "[") {
        // `x in name`: a reference list.
        let (rest, list) = cut_expect(
            i,
            "`[` to start a list, or the name of a reference list, after `in`",
            crate::lex::name(cx, i, "a list name"),
        )?;
        let span = lhs.span.to(list.span);
        let e = Expr {
            kind: ExprKind::InList(Box::new(lhs), list),
            span,
        };
        return Ok((rest, (e, dl + 1)));
    }
    let (mut rest, _) = cut_expect(i, "`[` to start the list after `in`", symbol(cx, i, "["))?;
    let mut items = Vec::new();
    let mut depth = dl;
    if !peek_symbol(rest, "]") {
        loop {
            let (after, (item, di)) = cut_expect(rest, "a list item", or_expr(cx, rest, d + 1))?;
            depth = depth.max(di);
            items.push(item);
            rest = after;
            if peek_symbol(rest, ",") {
                rest = &skip_ws(rest)[1..];
            } else {
                break;
            }
        }
    }
    let (rest, close) = cut_expect(rest, "`,` or `]` to close the list", symbol(cx, rest, "]"))?;
    let span = lhs.span.to(close);
    let e = Expr {
        kind: ExprKind::In(Box::new(lhs), items),
        span,
    };
    Ok((rest, (e, depth + 1)))
}

fn add_op(i: &str) -> Option<(BinaryOp, usize)> {
    match i.chars().next() {
        Some('+') => Some((BinaryOp::Add, 1)),
        Some('-') => Some((BinaryOp::Sub, 1)),
        _ => None,
    }
}

fn mul_op(i: &str) -> Option<(BinaryOp, usize)> {
    match i.chars().next() {
        Some('*') => Some((BinaryOp::Mul, 1)),
        Some('/') if !i.starts_with("//") => Some((BinaryOp::Div, 1)),
        Some('%') => Some((BinaryOp::Rem, 1)),
        _ => None,
    }
}

fn add_expr<'a>(cx: Cx<'a>, i: &'a str, d: usize) -> PResult<'a, Deep> {
    chain(
        cx,
        i,
        d,
        add_op,
        mul_expr,
        "an expression after the operator",
    )
}

fn mul_expr<'a>(cx: Cx<'a>, i: &'a str, d: usize) -> PResult<'a, Deep> {
    chain(
        cx,
        i,
        d,
        mul_op,
        unary_expr,
        "an expression after the operator",
    )
}

/// Unary minus; `-` directly before a number literal makes a negative
/// literal (so that `-9223372036854775808` is an integer).
fn unary_expr<'a>(cx: Cx<'a>, i: &'a str, d: usize) -> PResult<'a, Deep> {
    let at = skip_ws(i);
    let Some(operand) = at.strip_prefix('-') else {
        return primary(cx, i, d);
    };
    if d + 1 > MAX_NESTING {
        return too_deep(at);
    }
    let digits = skip_ws(operand);
    if digits.starts_with(|c: char| c.is_ascii_digit()) {
        let (rest, n) = number(cx, digits)?;
        let span = cx.span(at, rest);
        let negated = match n {
            Number::Int(v) if v <= 1 << 63 => Some(Literal::Int((v as i64).wrapping_neg())),
            Number::Int(_) => {
                return fatal(
                    at,
                    span.range().len(),
                    "this integer is too large for 64 bits",
                )
            }
            Number::Float(f) => Some(Literal::Float(-f)),
            Number::Duration(_) => None,
        };
        if let Some(lit) = negated {
            let e = Expr {
                kind: ExprKind::Literal(lit),
                span,
            };
            return Ok((rest, (e, 1)));
        }
    }
    let (rest, (inner, depth)) = cut_expect(
        operand,
        "an expression after `-`",
        unary_expr(cx, operand, d + 1),
    )?;
    let span = cx.span(at, operand).to(inner.span);
    let e = Expr {
        kind: ExprKind::Unary(UnaryOp::Neg, Box::new(inner)),
        span,
    };
    Ok((rest, (e, depth + 1)))
}

fn leaf(kind: ExprKind, span: Span) -> Deep {
    (Expr { kind, span }, 1)
}

fn primary<'a>(cx: Cx<'a>, i: &'a str, d: usize) -> PResult<'a, Deep> {
    let at = skip_ws(i);
    let first = at.chars().next();
    match first {
        Some(c) if c.is_ascii_digit() => {
            let (rest, n) = number(cx, at)?;
            let span = cx.span(at, rest);
            let lit = match n {
                Number::Int(v) => match i64::try_from(v) {
                    Ok(v) => Literal::Int(v),
                    Err(_) => {
                        return fatal(
                            at,
                            span.range().len(),
                            "this integer is too large for 64 bits",
                        )
                    }
                },
                Number::Float(f) => Literal::Float(f),
                Number::Duration(dur) => Literal::Duration(dur),
            };
            Ok((rest, leaf(ExprKind::Literal(lit), span)))
        }
        Some('"') => {
            let (rest, s) = string(cx, at)?;
            Ok((
                rest,
                leaf(ExprKind::Literal(Literal::Str(s)), cx.span(at, rest)),
            ))
        }
        Some('(') => {
            let inner_start = &at[1..];
            let (rest, (mut inner, depth)) = cut_expect(
                inner_start,
                "an expression",
                or_expr(cx, inner_start, d + 1),
            )?;
            let (rest, close) =
                cut_expect(rest, "`)` to close the parenthesis", symbol(cx, rest, ")"))?;
            inner.span = cx.span(at, at).to(close);
            Ok((rest, (inner, depth)))
        }
        Some('`') => path(cx, at),
        _ => word(cx, at, d),
    }
}

/// A primary that starts with a word: literal keyword, call or path.
fn word<'a>(cx: Cx<'a>, at: &'a str, d: usize) -> PResult<'a, Deep> {
    let Ok((rest, (w, span))) = any_ident(cx, at) else {
        return Err(nom::Err::Error(PError::expected(at, "an expression")));
    };
    let literal = match w {
        "true" => Some(Literal::Bool(true)),
        "false" => Some(Literal::Bool(false)),
        "null" => Some(Literal::Null),
        _ => None,
    };
    if let Some(lit) = literal {
        return Ok((rest, leaf(ExprKind::Literal(lit), span)));
    }
    let next = skip_ws(rest);
    // `name =` starts a `select` entry only at the start of a line (else it
    // is a mistaken `==`); look back only when it matters.
    let first_on_line = || {
        let off = cx.offset(at);
        let before = cx.src[..off].trim_end_matches([' ', '\t', '\r']);
        before.is_empty() || before.ends_with('\n')
    };
    let starts_entry = next.starts_with(':')
        || (next.starts_with('=') && !next.starts_with("==") && first_on_line());
    if is_reserved(w) || starts_entry {
        // `name:` / `name =` begins the next `where` / `select` entry.
        return Err(nom::Err::Error(PError::expected(at, "an expression")));
    }
    if peek_symbol(rest, "(") {
        return call(
            cx,
            Ident {
                name: w.to_string(),
                span,
            },
            rest,
            d,
        );
    }
    path(cx, at)
}

fn call<'a>(cx: Cx<'a>, func: Ident, i: &'a str, d: usize) -> PResult<'a, Deep> {
    let (mut rest, _) = symbol(cx, i, "(")?;
    if d + 1 > MAX_NESTING {
        return too_deep(i);
    }
    let mut args = Vec::new();
    let mut depth = 0;
    if !peek_symbol(rest, ")") {
        loop {
            let (after, (arg, da)) = cut_expect(rest, "an argument", or_expr(cx, rest, d + 1))?;
            depth = depth.max(da);
            args.push(arg);
            rest = after;
            if peek_symbol(rest, ",") {
                rest = &skip_ws(rest)[1..];
            } else {
                break;
            }
        }
    }
    let (rest, close) = cut_expect(rest, "`,` or `)` to close the call", symbol(cx, rest, ")"))?;
    let span = func.span.to(close);
    Ok((
        rest,
        (
            Expr {
                kind: ExprKind::Call(func, args),
                span,
            },
            depth + 1,
        ),
    ))
}

/// A dotted path of names and backquoted names.
pub(crate) fn path<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Deep> {
    let (rest, p) = field_path(cx, i)?;
    let span = p.span;
    Ok((rest, leaf(ExprKind::Path(p), span)))
}

/// `name { "." name }` where a name is an identifier or backquoted.
pub(crate) fn field_path<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Path> {
    let segment = |s: &'a str| {
        if skip_ws(s).starts_with('`') {
            backquoted(cx, s)
        } else {
            name(cx, s, "a field name")
        }
    };
    let (mut rest, first) = segment(i)?;
    let mut segments = vec![first];
    // Whitespace carries no meaning: `user .id` is `user.id`, as `user. id`
    // is (no other construct starts with `.`).
    while let Some(dotted) = skip_ws(rest).strip_prefix('.') {
        let (after, seg) = cut_expect(dotted, "a field name after `.`", segment(dotted))?;
        segments.push(seg);
        rest = after;
    }
    let span = segments[0].span.to(segments[segments.len() - 1].span);
    Ok((rest, Path { segments, span }))
}

#[cfg(test)]
mod tests;
