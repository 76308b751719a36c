//! The declarations beside patterns (`list`, `indicator`; `factor` is in
//! `parse_scene`), a pattern's rule
//! attributes (`score`, `level`, `action`, `tags`) and its effects (`then
//! add`, `then remove`): the grammar of `docs/design/lists-indicators.md`.
//!
//! Every word here is contextual: `list`, `indicator` only at the start of
//! a declaration, the attribute words only among a pattern's clauses,
//! `then` only followed by `add` or `remove`, so fields and stages keep
//! every name they had.

use crate::ast::{
    ClauseKind, Declaration, DeclarationKind, Effect, ExprKind, IndicatorClause,
    IndicatorClauseKind, IndicatorDecl, ListDecl, Literal, StrLit,
};
use crate::lex::{
    cut_expect, duration, keyword, name, number, peek_symbol, peek_word, skip_ws, string, symbol,
    Cx, Number, PError, PResult,
};
use crate::lookup::{ListKind, WriteOp};
use crate::parse::to_failure;
use crate::parse_expr::{expr, field_path};

/// Does a declaration start here (whitespace skipped)?
pub(crate) fn starts_declaration(at: &str) -> bool {
    matches!(peek_word(at), Some("list" | "indicator" | "factor"))
}

/// `list ...` or `indicator ...` (the caller saw the keyword).
pub(crate) fn declaration<'a>(
    cx: Cx<'a>,
    i: &'a str,
    doc: Vec<String>,
) -> PResult<'a, Declaration> {
    let start = skip_ws(i);
    let word = match peek_word(start) {
        Some("list") => "list",
        Some("factor") => "factor",
        _ => "indicator",
    };
    let (rest, _) = keyword(cx, start, word)?;
    let what = match word {
        "list" => "a list name",
        "factor" => "a factor name",
        _ => "an indicator name",
    };
    let (rest, decl_name) = cut_expect(rest, what, name(cx, rest, what))?;
    let (rest, kind) = match word {
        "list" => list(cx, rest)?,
        "factor" => {
            let (rest, f) = crate::parse_scene::factor(cx, rest)?;
            (rest, DeclarationKind::Factor(f))
        }
        _ => indicator(cx, rest)?,
    };
    Ok((
        rest,
        Declaration {
            doc,
            name: decl_name,
            kind,
            span: cx.span(start, rest),
        },
    ))
}

fn list<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, DeclarationKind> {
    let mut rest = i;
    let mut kind = None;
    if peek_word(rest) == Some("of") {
        let at = skip_ws(&skip_ws(rest)[2..]);
        let Some(word) = peek_word(at) else {
            return Err(nom::Err::Failure(PError::expected(
                at,
                "`values`, `prefixes` or `cidr` after `of`",
            )));
        };
        let Some(k) = ListKind::from_word(word) else {
            return Err(nom::Err::Failure(PError::expected(
                at,
                "`values`, `prefixes` or `cidr` after `of`",
            )));
        };
        rest = &at[word.len()..];
        kind = Some((k, cx.span(at, rest)));
    }
    let mut expiry = None;
    if peek_word(rest) == Some("for") {
        let after = &skip_ws(rest)[3..];
        let (after, d) = duration(cx, after).map_err(to_failure)?;
        expiry = Some(d);
        rest = after;
    }
    Ok((rest, DeclarationKind::List(ListDecl { kind, expiry })))
}

fn indicator<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, DeclarationKind> {
    let (rest, _) = cut_expect(i, "`=` after the indicator's name", symbol(cx, i, "="))?;
    let at = skip_ws(rest);
    let expected =
        "an aggregate: `count()`, `sum(x)`, `avg(x)`, `min(x)`, `max(x)` or `count_distinct(x)`";
    let (mut rest, head) = cut_expect(at, expected, expr(cx, at))?;
    let ExprKind::Call(func, args) = head.kind else {
        return Err(nom::Err::Failure(PError::custom(
            at,
            (head.span.end - head.span.start) as usize,
            format!("expected {expected}"),
        )));
    };
    let mut clauses = Vec::new();
    loop {
        let start = skip_ws(rest);
        let (after, kind) = match peek_word(start) {
            Some("where") => {
                let (after, e) = cut_expect(
                    &start[5..],
                    "a condition after `where`",
                    expr(cx, &start[5..]),
                )?;
                (after, IndicatorClauseKind::Where(e))
            }
            Some("group") => {
                let (mut after, _) = cut_expect(
                    &start[5..],
                    "`by` after `group`",
                    keyword(cx, &start[5..], "by"),
                )?;
                let mut paths = Vec::new();
                loop {
                    let (next, p) = cut_expect(after, "a field name", field_path(cx, after))?;
                    paths.push(p);
                    after = next;
                    if !peek_symbol(after, ",") {
                        break;
                    }
                    after = &skip_ws(after)[1..];
                }
                (after, IndicatorClauseKind::GroupBy(paths))
            }
            Some("within") => {
                let (after, d) = duration(cx, &start[6..]).map_err(to_failure)?;
                (after, IndicatorClauseKind::Within(d))
            }
            _ => break,
        };
        clauses.push(IndicatorClause {
            kind,
            span: cx.span(start, after),
        });
        rest = after;
    }
    Ok((
        rest,
        DeclarationKind::Indicator(IndicatorDecl {
            func,
            args,
            clauses,
        }),
    ))
}

/// A rule attribute clause, when `word` names one: `score N`, `level
/// NAME`, `action NAME`, `tags "a", "b"`.
pub(crate) fn attribute<'a>(cx: Cx<'a>, word: &str, i: &'a str) -> Option<PResult<'a, ClauseKind>> {
    Some(match word {
        "score" => score(cx, i),
        "level" => cut_expect(i, "a level name, like `high`", name(cx, i, "a level name"))
            .map(|(r, n)| (r, ClauseKind::Level(n))),
        "action" => cut_expect(
            i,
            "an action name, like `block`",
            name(cx, i, "an action name"),
        )
        .map(|(r, n)| (r, ClauseKind::Action(n))),
        "tags" => tags(cx, i),
        _ => return None,
    })
}

fn score<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, ClauseKind> {
    let at = skip_ws(i);
    let negative = at.starts_with('-');
    let digits = if negative { &at[1..] } else { at };
    let (rest, n) = cut_expect(at, "a number after `score`", number(cx, digits))?;
    let literal = match n {
        Number::Int(v) => {
            let v = i64::try_from(v).map_err(|_| {
                nom::Err::Failure(PError::custom(at, at.len() - rest.len(), "score too large"))
            })?;
            Literal::Int(if negative { -v } else { v })
        }
        Number::Float(f) => Literal::Float(if negative { -f } else { f }),
        Number::Duration(_) => {
            return Err(nom::Err::Failure(PError::custom(
                at,
                at.len() - rest.len(),
                "a score is a number, not a duration",
            )))
        }
    };
    Ok((rest, ClauseKind::Score(literal)))
}

fn tags<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, ClauseKind> {
    let mut rest = i;
    let mut out = Vec::new();
    loop {
        let at = skip_ws(rest);
        let (after, value) = cut_expect(at, "a tag string, like `\"login\"`", string(cx, at))?;
        out.push(StrLit {
            value,
            span: cx.span(at, after),
        });
        rest = after;
        if !peek_symbol(rest, ",") {
            return Ok((rest, ClauseKind::Tags(out)));
        }
        rest = &skip_ws(rest)[1..];
    }
}

/// Does `then add`/`then remove` start here?
pub(crate) fn starts_effect(at: &str) -> bool {
    peek_word(at) == Some("then") && matches!(peek_word(&skip_ws(at)[4..]), Some("add" | "remove"))
}

/// `then add x to list [for d]` / `then remove x from list`.
pub(crate) fn effect<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Effect> {
    let start = skip_ws(i);
    let (rest, _) = keyword(cx, start, "then")?;
    let op = if peek_word(rest) == Some("add") {
        WriteOp::Add
    } else {
        WriteOp::Remove
    };
    let (word, preposition) = match op {
        WriteOp::Add => ("add", "to"),
        WriteOp::Remove => ("remove", "from"),
    };
    let rest = &skip_ws(rest)[word.len()..];
    let (rest, value) = cut_expect(rest, "the value to write", expr(cx, rest))?;
    let expected = match op {
        WriteOp::Add => "`to` and a list name",
        WriteOp::Remove => "`from` and a list name",
    };
    let (rest, _) = cut_expect(rest, expected, keyword(cx, rest, preposition))?;
    let (mut rest, list) = cut_expect(rest, "a list name", name(cx, rest, "a list name"))?;
    let mut expiry = None;
    if op == WriteOp::Add && peek_word(rest) == Some("for") {
        let after = &skip_ws(rest)[3..];
        let (after, d) = duration(cx, after).map_err(to_failure)?;
        expiry = Some(d);
        rest = after;
    }
    Ok((
        rest,
        Effect {
            op,
            value,
            list,
            expiry,
            span: cx.span(start, rest),
        },
    ))
}
