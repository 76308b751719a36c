//! The `match` sequence: elements joined by connectors, groups nested up
//! to [`MAX_NESTING`], quantifiers and modifiers.

use crate::ast::{
    Connector, Element, ElementKind, Modifier, ModifierKind, Quantifier, QuantifierKind, Sequence,
};
use crate::lex::{
    cut_expect, duration, fail, fatal, keyword, name, peek_symbol, peek_word, skip_ws, symbol, Cx,
    PError, PResult,
};
use crate::parse::to_failure;
use crate::pattern::{Contiguity, MAX_NESTING};

/// `element { connector element }`, or `element "or" element { "or"
/// element }` (an alternation: the sequence's only element). The two do
/// not mix on one level: `a followed by b or c` is an error that asks for
/// parentheses, so that nobody has to remember which binds tighter.
pub(crate) fn sequence<'a>(cx: Cx<'a>, i: &'a str, depth: usize) -> PResult<'a, Sequence> {
    let start = skip_ws(i);
    let (mut rest, first) = element(cx, start, None, depth)?;
    if peek_word(rest) == Some("or") {
        return alternation(cx, start, rest, first, depth);
    }
    let mut elements = vec![first];
    while let Some((after, conn)) = connector(cx, rest)? {
        let (after, e) = element(cx, after, Some(conn), depth)?;
        elements.push(e);
        rest = after;
    }
    if peek_word(rest) == Some("or") {
        let at = skip_ws(rest);
        return fatal(
            at,
            2,
            "`or` and connectors cannot be mixed on one level: put the alternatives in \
             parentheses, `(a followed by b) or c` or `a followed by (b or c)`",
        );
    }
    let span = cx.span(start, start).to(elements[elements.len() - 1].span);
    Ok((rest, Sequence { elements, span }))
}

/// The alternatives after the first one: `{ "or" element }`, then no
/// connector may follow.
fn alternation<'a>(
    cx: Cx<'a>,
    start: &'a str,
    mut rest: &'a str,
    first: Element,
    depth: usize,
) -> PResult<'a, Sequence> {
    let mut alternatives = vec![first];
    while peek_word(rest) == Some("or") {
        let after = &skip_ws(rest)[2..];
        let (after, e) = element(cx, after, None, depth)?;
        alternatives.push(e);
        rest = after;
    }
    let at = skip_ws(rest);
    if let Some((after, conn)) = connector(cx, rest)? {
        return fatal(
            at,
            after.len().abs_diff(at.len()).max(1),
            format!(
                "`{}` after an alternative: `or` and connectors cannot be mixed on one \
                 level; put the alternatives in parentheses, `(a or b) {} c` or \
                 `a or (b {} c)`",
                conn.kind.keyword(),
                conn.kind.keyword(),
                conn.kind.keyword()
            ),
        );
    }
    let span = cx
        .span(start, start)
        .to(alternatives[alternatives.len() - 1].span);
    let alt = Element {
        connector: None,
        kind: ElementKind::Alternation(alternatives),
        quantifier: None,
        modifiers: Vec::new(),
        span,
    };
    Ok((
        rest,
        Sequence {
            elements: vec![alt],
            span,
        },
    ))
}

fn connector<'a>(
    cx: Cx<'a>,
    i: &'a str,
) -> Result<Option<(&'a str, Connector)>, nom::Err<PError<'a>>> {
    let at = skip_ws(i);
    let after_word = |w: &str| &at[w.len()..];
    let (rest, kind) = match peek_word(at) {
        Some("next") => (after_word("next"), Contiguity::Strict),
        Some("followed") => {
            let (rest, _) = cut_expect(
                after_word("followed"),
                "`by` after `followed`",
                keyword(cx, after_word("followed"), "by"),
            )?;
            if peek_word(rest) == Some("any") {
                (&skip_ws(rest)[3..], Contiguity::NonDeterministic)
            } else {
                (rest, Contiguity::Relaxed)
            }
        }
        Some("not") => {
            let rest = after_word("not");
            match peek_word(rest) {
                Some("next") => (&skip_ws(rest)[4..], Contiguity::NotNext),
                Some("followed") => {
                    let after = &skip_ws(rest)[8..];
                    let (after, _) =
                        cut_expect(after, "`by` after `followed`", keyword(cx, after, "by"))?;
                    (after, Contiguity::NotFollowedBy)
                }
                _ => {
                    return Err(nom::Err::Failure(PError::expected(
                        skip_ws(rest),
                        "`next` or `followed by` after `not`",
                    )))
                }
            }
        }
        _ => return Ok(None),
    };
    Ok(Some((
        rest,
        Connector {
            kind,
            span: cx.span(at, rest),
        },
    )))
}

fn element<'a>(
    cx: Cx<'a>,
    i: &'a str,
    connector: Option<Connector>,
    depth: usize,
) -> PResult<'a, Element> {
    let start = skip_ws(i);
    let (rest, kind) = if let Some(inner) = start.strip_prefix('(') {
        if depth + 1 >= MAX_NESTING {
            return fatal(
                start,
                1,
                format!("groups are nested more than {MAX_NESTING} deep"),
            );
        }
        let (rest, seq) = sequence(cx, inner, depth + 1)?;
        let (rest, _) = symbol(cx, rest, ")").map_err(|_| {
            nom::Err::Failure(PError::expected(
                skip_ws(rest),
                "a connector or `)` to close the group",
            ))
        })?;
        (rest, ElementKind::Group(seq))
    } else {
        match name(cx, start, "a stage name or `(`") {
            Ok((rest, id)) => (rest, ElementKind::Stage(id)),
            Err(e) => return Err(to_failure(e)),
        }
    };
    let (rest, quantifier) = quantifier(cx, rest)?;
    let (rest, modifiers) = modifiers(cx, rest)?;
    Ok((
        rest,
        Element {
            connector,
            kind,
            quantifier,
            modifiers,
            span: cx.span(start, rest),
        },
    ))
}

fn quantifier<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Option<Quantifier>> {
    let at = skip_ws(i);
    let simple = match at.chars().next() {
        Some('?') => Some(QuantifierKind::Optional),
        Some('*') => Some(QuantifierKind::Star),
        Some('+') => Some(QuantifierKind::Plus),
        Some('{') => None,
        _ => return Ok((i, None)),
    };
    if let Some(kind) = simple {
        let rest = &at[1..];
        let span = cx.span(at, rest);
        return Ok((rest, Some(Quantifier { kind, span })));
    }
    let (rest, n) = cut_expect(&at[1..], "a count", count(&at[1..]))?;
    let (rest, kind) = if peek_symbol(rest, ",") {
        let rest = &skip_ws(rest)[1..];
        if peek_symbol(rest, "}") {
            (rest, QuantifierKind::Range(n, None))
        } else {
            let (rest, m) = cut_expect(rest, "a count or `}`", count(rest))?;
            (rest, QuantifierKind::Range(n, Some(m)))
        }
    } else {
        (rest, QuantifierKind::Exactly(n))
    };
    let (rest, close) = cut_expect(rest, "`,` or `}`", symbol(cx, rest, "}"))?;
    let span = cx.span(at, at).to(close);
    Ok((rest, Some(Quantifier { kind, span })))
}

/// A non-negative integer (saturating; bounds are checked when lowering).
fn count(i: &str) -> PResult<'_, u64> {
    let at = skip_ws(i);
    let len = at.find(|c: char| !c.is_ascii_digit()).unwrap_or(at.len());
    if len == 0 {
        return fail(at, "a count");
    }
    let value = at[..len].parse::<u64>().unwrap_or(u64::MAX);
    Ok((&at[len..], value))
}

fn modifiers<'a>(cx: Cx<'a>, mut rest: &'a str) -> PResult<'a, Vec<Modifier>> {
    let mut out = Vec::new();
    loop {
        let at = skip_ws(rest);
        let Some(word) = peek_word(at) else {
            return Ok((rest, out));
        };
        let after = &at[word.len()..];
        let (after, kind) = match word {
            "optional" => (after, ModifierKind::Optional),
            "greedy" => (after, ModifierKind::Greedy),
            "consecutive" => (after, ModifierKind::Consecutive),
            "combinations" => (after, ModifierKind::Combinations),
            "until" => {
                let (after, c) = cut_expect(
                    after,
                    "the name of a `where` entry after `until`",
                    name(cx, after, "a name"),
                )?;
                (after, ModifierKind::Until(c))
            }
            "within" => {
                let (after, d) = duration(cx, after).map_err(to_failure)?;
                (after, ModifierKind::Within(d))
            }
            _ => return Ok((rest, out)),
        };
        out.push(Modifier {
            kind,
            span: cx.span(at, after),
        });
        rest = after;
    }
}
