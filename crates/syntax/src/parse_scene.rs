//! The grammar of factors, rule parameters and scenes
//! (`docs/language.md` §11, `docs/design/decisions.md`):
//!
//! ```text
//! factor young_account(max: duration) = ts - signed_up < max
//! pattern busy(min: int = 5) { ... }
//! scene coupon { when type == "coupon" rules busy with min = 3 ... }
//! ```
//!
//! Every word here is contextual (`factor`, `scene` at the start of an
//! item; the clause words inside a scene; the type words after `:`), so
//! fields, stages and outcomes keep every name they had. A bad clause of
//! a scene is reported and skipped to the next line that starts one; a bad
//! rule written inside a scene to the end of its block.

use crate::ast::{
    Binding, Check, Constant, FactorDecl, Literal, Param, ParamType, PatternDecl, RuleRef,
    SceneClause, SceneClauseKind, SceneDecl, StrLit,
};
use crate::diagnostic::Diagnostic;
use crate::lex::{
    cut_expect, duration, keyword, name, number, peek_symbol, peek_word, skip_ws, string, symbol,
    Cx, Number, PError, PResult,
};
use crate::lower_expr::closest;
use crate::parse::{to_diagnostic, to_failure};
use crate::parse_expr::{expr, field_path};
use crate::scene::HitPolicy;

/// The words that start a clause of a scene.
pub(crate) const SCENE_CLAUSES: &[&str] = &[
    "when", "id", "rules", "with", "outcomes", "default", "fallback", "late", "deadline", "hit",
];

/// What a scene clause may be, for "expected ..." messages.
const EXPECTED_CLAUSE: &str = "a scene clause (`when`, `id`, `rules`, `with`, `outcomes`, \
     `default`, `fallback`, `late`, `deadline`, `hit`), an outcome line `OUTCOME if ...`, \
     `pattern` or `}`";

/// `( param, ... )` after a factor's or a rule's name; `defaults` when a
/// parameter may have a default value (a rule's).
pub(crate) fn params<'a>(cx: Cx<'a>, i: &'a str, defaults: bool) -> PResult<'a, Vec<Param>> {
    let (mut rest, _) = symbol(cx, i, "(")?;
    let mut out = Vec::new();
    if peek_symbol(rest, ")") {
        let (rest, _) = symbol(cx, rest, ")")?;
        return Ok((rest, out));
    }
    loop {
        let (after, p) = param(cx, rest, defaults)?;
        out.push(p);
        rest = after;
        if peek_symbol(rest, ",") {
            rest = &skip_ws(rest)[1..];
            continue;
        }
        let what = if defaults {
            "`,`, `:`, `=` or `)` after a parameter"
        } else {
            "`,`, `:` or `)` after a parameter"
        };
        let (rest, _) = cut_expect(rest, what, symbol(cx, rest, ")"))?;
        return Ok((rest, out));
    }
}

fn param<'a>(cx: Cx<'a>, i: &'a str, defaults: bool) -> PResult<'a, Param> {
    let start = skip_ws(i);
    let (mut rest, param_name) = cut_expect(
        start,
        "a parameter name",
        name(cx, start, "a parameter name"),
    )?;
    let mut ty = None;
    if peek_symbol(rest, ":") {
        let at = skip_ws(&skip_ws(rest)[1..]);
        let word = peek_word(at).unwrap_or_default();
        let Some(t) = ParamType::from_word(word) else {
            let mut err = PError::expected(
                at,
                "a type: `int`, `number`, `duration`, `string` or `bool`",
            );
            if let Some(best) = closest(word, &ParamType::WORDS) {
                err = PError::custom(
                    at,
                    word.len().max(1),
                    format!("`{word}` is not a type; did you mean `{best}`? (types: int, number, duration, string, bool)"),
                );
            }
            return Err(nom::Err::Failure(err));
        };
        rest = &at[word.len()..];
        ty = Some((t, cx.span(at, rest)));
    }
    let mut default = None;
    if peek_symbol(rest, "=") {
        let at = skip_ws(rest);
        if !defaults {
            return Err(nom::Err::Failure(PError::custom(
                at,
                1,
                "a factor's parameter has no default: each call passes its value",
            )));
        }
        let (after, c) = constant(cx, &at[1..])?;
        default = Some(c);
        rest = after;
    }
    Ok((
        rest,
        Param {
            span: param_name.span.to(cx.span(rest, rest)),
            name: param_name,
            ty,
            default,
        },
    ))
}

/// A constant: `[-]` a number, a duration, a string, `true` or `false`.
pub(crate) fn constant<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Constant> {
    const WHAT: &str = "a value: a number, a duration, a string, `true` or `false`";
    let at = skip_ws(i);
    let (rest, literal) = match peek_word(at) {
        Some("true") => (&at[4..], Literal::Bool(true)),
        Some("false") => (&at[5..], Literal::Bool(false)),
        Some("null") => {
            return Err(nom::Err::Failure(PError::custom(
                at,
                4,
                "a value here is a number, a duration, a string or a boolean, not `null`",
            )))
        }
        _ if at.starts_with('"') => {
            let (rest, s) = string(cx, at)?;
            (rest, Literal::Str(s))
        }
        _ => {
            let negative = at.starts_with('-');
            let digits = if negative { &at[1..] } else { at };
            let (rest, n) = cut_expect(at, WHAT, number(cx, digits))?;
            let literal = match n {
                Number::Int(v) => {
                    let signed = if negative {
                        -i128::from(v)
                    } else {
                        i128::from(v)
                    };
                    match i64::try_from(signed) {
                        Ok(v) => Literal::Int(v),
                        Err(_) => {
                            return Err(nom::Err::Failure(PError::custom(
                                at,
                                at.len() - rest.len(),
                                "this integer is too large for 64 bits",
                            )))
                        }
                    }
                }
                Number::Float(f) => Literal::Float(if negative { -f } else { f }),
                Number::Duration(_) if negative => {
                    return Err(nom::Err::Failure(PError::custom(
                        at,
                        at.len() - rest.len(),
                        "a duration cannot be negative",
                    )))
                }
                Number::Duration(d) => Literal::Duration(d),
            };
            (rest, literal)
        }
    };
    Ok((
        rest,
        Constant {
            literal,
            span: cx.span(at, rest),
        },
    ))
}

/// `factor NAME(params) = condition` (the caller parsed `factor NAME`).
pub(crate) fn factor<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, FactorDecl> {
    let at = skip_ws(i);
    if !at.starts_with('(') {
        return Err(nom::Err::Failure(PError::expected(
            at,
            "`(` and the factor's parameters (`()` for none)",
        )));
    }
    let (rest, params) = params(cx, at, false)?;
    let (rest, _) = cut_expect(
        rest,
        "`=` and the factor's condition",
        symbol(cx, rest, "="),
    )?;
    let (rest, body) = cut_expect(rest, "the factor's condition", expr(cx, rest))?;
    Ok((rest, FactorDecl { params, body }))
}

/// `scene NAME { clauses and rules }`.
pub(crate) fn scene<'a>(
    cx: Cx<'a>,
    i: &'a str,
    doc: Vec<String>,
    recovered: &mut Vec<Diagnostic>,
) -> PResult<'a, SceneDecl> {
    let start = skip_ws(i);
    let (rest, _) = keyword(cx, start, "scene")?;
    let (rest, scene_name) = cut_expect(rest, "a scene name", name(cx, rest, "a scene name"))?;
    let (mut rest, _) = cut_expect(rest, "`{`", symbol(cx, rest, "{"))?;
    let mut clauses = Vec::new();
    let mut patterns = Vec::new();
    loop {
        let at = skip_ws(rest);
        if at.starts_with('}') {
            let (after, close) = symbol(cx, at, "}")?;
            return Ok((
                after,
                SceneDecl {
                    doc,
                    name: scene_name,
                    clauses,
                    patterns,
                    span: cx.span(start, start).to(close),
                },
            ));
        }
        // (from `rest`: `at` is past the `///` lines, comments to it)
        let (after_docs, pattern_doc) = crate::parse::doc_comments(rest);
        if peek_word(after_docs) == Some("pattern") {
            match inline_pattern(cx, after_docs, pattern_doc, recovered) {
                Some((after, p)) => {
                    patterns.extend(p);
                    rest = after;
                }
                None => return Err(done(cx, at)),
            }
            continue;
        }
        match clause(cx, at) {
            Ok((after, kind)) => {
                clauses.push(SceneClause {
                    kind,
                    span: cx.span(at, after),
                });
                rest = after;
            }
            Err(nom::Err::Error(err) | nom::Err::Failure(err)) => {
                recovered.push(to_diagnostic(cx, &err));
                match next_scene_line(err.at) {
                    Some(next) => rest = next,
                    None => return Err(done(cx, err.at)),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The error that ends a scene after a reported one: parsing goes on at
/// the next item.
fn done<'a>(_cx: Cx<'a>, at: &'a str) -> nom::Err<PError<'a>> {
    let mut err = PError::expected(crate::parse::next_pattern_start(at), "");
    err.reported = true;
    nom::Err::Failure(err)
}

/// A rule written inside a scene; on a syntax error, the rest of its
/// block is skipped (so the scene's own closing brace is not taken for
/// the rule's). The rule is kept with a recovered error inside it (the
/// scene's parse then counts as recovered), or dropped when it could not
/// be parsed at all. `None` when its block never closes.
fn inline_pattern<'a>(
    cx: Cx<'a>,
    at: &'a str,
    doc: Vec<String>,
    recovered: &mut Vec<Diagnostic>,
) -> Option<(&'a str, Option<PatternDecl>)> {
    let before = recovered.len();
    match crate::parse::pattern(cx, at, doc, recovered) {
        Ok((after, p)) => Some((after, Some(p))),
        Err(nom::Err::Error(err) | nom::Err::Failure(err)) => {
            if !err.reported {
                recovered.push(to_diagnostic(cx, &err));
            }
            debug_assert!(recovered.len() > before);
            block_end(at).map(|after| (after, None))
        }
        Err(nom::Err::Incomplete(_)) => None,
    }
}

/// After the block that starts at the first `{` of `at`: the input past its
/// matching `}` (strings, backquoted names and comments skipped).
pub(crate) fn block_end(at: &str) -> Option<&str> {
    let open = at.find('{')?;
    let mut depth = 0usize;
    let mut rest = &at[open..];
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(after);
                }
            }
            '"' => {
                // a string ends at its quote or its line
                let end = after
                    .char_indices()
                    .scan(false, |escaped, (n, ch)| {
                        let stop = !*escaped && (ch == '"' || ch == '\n');
                        *escaped = !*escaped && ch == '\\';
                        Some((n, ch, stop))
                    })
                    .find(|(_, _, stop)| *stop)
                    .map_or(after.len(), |(n, ch, _)| n + ch.len_utf8());
                rest = &after[end..];
                continue;
            }
            '`' => {
                rest = after.find('`').map_or("", |n| &after[n + 1..]);
                continue;
            }
            '/' if after.starts_with('/') => {
                rest = after.find('\n').map_or("", |n| &after[n..]);
                continue;
            }
            _ => {}
        }
        rest = after;
    }
    None
}

/// After a bad scene clause: the next line that starts a clause, an
/// outcome line, `pattern` or `}`; `None` when an item outside the scene
/// (or the end) comes first.
fn next_scene_line(mut i: &str) -> Option<&str> {
    loop {
        let n = i.find('\n')?;
        i = &i[n + 1..];
        let line = i.trim_start_matches([' ', '\t', '\r']);
        if line.starts_with('}') || line.starts_with("///") {
            return Some(line);
        }
        let Some(word) = peek_word(line) else {
            continue;
        };
        if !line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            continue;
        }
        if matches!(word, "factor" | "list" | "indicator" | "scene") {
            return None;
        }
        if word == "pattern" || SCENE_CLAUSES.contains(&word) || is_outcome_line(line) {
            return Some(line);
        }
    }
}

/// Does an outcome line (`OUTCOME if ...`) start here?
fn is_outcome_line(at: &str) -> bool {
    match peek_word(at) {
        Some(w) if !crate::lex::is_reserved(w) => peek_word(&skip_ws(at)[w.len()..]) == Some("if"),
        _ => false,
    }
}

fn clause<'a>(cx: Cx<'a>, at: &'a str) -> PResult<'a, SceneClauseKind> {
    if is_outcome_line(at) {
        return outcome_line(cx, at);
    }
    let Some(word) = peek_word(at).filter(|w| SCENE_CLAUSES.contains(w)) else {
        let mut err = PError::expected(at, EXPECTED_CLAUSE);
        if let Some(w) = peek_word(at) {
            if let Some(best) = closest(w, SCENE_CLAUSES) {
                err = PError::custom(
                    at,
                    w.len(),
                    format!("expected a scene clause, found `{w}`; did you mean `{best}`?"),
                );
            }
        }
        return Err(nom::Err::Failure(err));
    };
    let rest = &at[word.len()..];
    let outcome = |what: &'static str| cut_expect(rest, what, name(cx, rest, "an outcome name"));
    match word {
        "when" => cut_expect(rest, "a condition after `when`", expr(cx, rest))
            .map(|(r, e)| (r, SceneClauseKind::When(e))),
        "id" => cut_expect(rest, "the id's field after `id`", field_path(cx, rest))
            .map(|(r, p)| (r, SceneClauseKind::Id(p))),
        "rules" => rules(cx, rest),
        "with" => bindings(cx, rest),
        "outcomes" => outcomes(cx, rest),
        "default" => {
            outcome("an outcome after `default`").map(|(r, o)| (r, SceneClauseKind::Default(o)))
        }
        "fallback" => {
            outcome("an outcome after `fallback`").map(|(r, o)| (r, SceneClauseKind::Fallback(o)))
        }
        "late" => outcome("an outcome after `late`").map(|(r, o)| (r, SceneClauseKind::Late(o))),
        "deadline" => duration(cx, rest)
            .map(|(r, d)| (r, SceneClauseKind::Deadline(d)))
            .map_err(to_failure),
        _ => {
            let at = skip_ws(rest);
            let w = peek_word(at).unwrap_or_default();
            match HitPolicy::from_word(w) {
                Some(h) => Ok((&at[w.len()..], SceneClauseKind::Hit(h))),
                None => Err(nom::Err::Failure(PError::expected(
                    at,
                    "`first` or `all` after `hit`",
                ))),
            }
        }
    }
}

/// `rules a, b, tagged "t"`.
fn rules<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, SceneClauseKind> {
    let mut rest = i;
    let mut out = Vec::new();
    loop {
        let at = skip_ws(rest);
        let tagged = peek_word(at) == Some("tagged") && skip_ws(&at[6..]).starts_with('"');
        if tagged {
            let s = skip_ws(&at[6..]);
            let (after, value) = string(cx, s)?;
            out.push(RuleRef::Tagged(StrLit {
                value,
                span: cx.span(s, after),
            }));
            rest = after;
        } else {
            let (after, n) = cut_expect(
                at,
                "a rule's name or `tagged \"TAG\"`",
                name(cx, at, "a rule's name"),
            )?;
            out.push(RuleRef::Name(n));
            rest = after;
        }
        if !peek_symbol(rest, ",") {
            return Ok((rest, SceneClauseKind::Rules(out)));
        }
        rest = &skip_ws(rest)[1..];
    }
}

/// `with name = value, ...`.
fn bindings<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, SceneClauseKind> {
    let mut rest = i;
    let mut out = Vec::new();
    loop {
        let at = skip_ws(rest);
        let (after, n) = cut_expect(at, "a parameter's name", name(cx, at, "a parameter's name"))?;
        let (after, _) = cut_expect(
            after,
            "`=` and the parameter's value",
            symbol(cx, after, "="),
        )?;
        let (after, value) = constant(cx, after)?;
        out.push(Binding {
            span: n.span.to(value.span),
            name: n,
            value,
        });
        rest = after;
        if !peek_symbol(rest, ",") {
            return Ok((rest, SceneClauseKind::With(out)));
        }
        rest = &skip_ws(rest)[1..];
    }
}

/// `outcomes a < b < c`.
fn outcomes<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, SceneClauseKind> {
    let (mut rest, first) = cut_expect(i, "an outcome name", name(cx, i, "an outcome name"))?;
    let mut out = vec![first];
    while peek_symbol(rest, "<") {
        let after = &skip_ws(rest)[1..];
        let (after, next) = cut_expect(
            after,
            "an outcome name after `<`",
            name(cx, after, "an outcome name"),
        )?;
        out.push(next);
        rest = after;
    }
    if peek_symbol(rest, ",") {
        let at = skip_ws(rest);
        return Err(nom::Err::Failure(PError::custom(
            at,
            1,
            "outcomes are ordered mildest first with `<`: `outcomes approve < review < decline`",
        )));
    }
    Ok((rest, SceneClauseKind::Outcomes(out)))
}

/// `OUTCOME if action a`, `OUTCOME if score >= n`, `OUTCOME if x in list`.
fn outcome_line<'a>(cx: Cx<'a>, at: &'a str) -> PResult<'a, SceneClauseKind> {
    let (rest, outcome) = name(cx, at, "an outcome name")?;
    let (rest, _) = keyword(cx, rest, "if")?;
    let check_at = skip_ws(rest);
    let word = peek_word(check_at);
    let after_word = word.map(|w| skip_ws(&check_at[w.len()..]));
    let (rest, check) = match (word, after_word) {
        (Some("action"), Some(next)) if peek_word(next).is_some_and(|w| w != "in") => {
            let (r, a) = name(cx, next, "an action name").map_err(to_failure)?;
            (r, Check::Action(a))
        }
        (Some("score"), Some(next)) if next.starts_with('>') => {
            let inclusive = next.starts_with(">=");
            let after = &next[if inclusive { 2 } else { 1 }..];
            let (r, value) = constant(cx, after)?;
            if !matches!(value.literal, Literal::Int(_) | Literal::Float(_)) {
                return Err(nom::Err::Failure(PError::custom(
                    skip_ws(after),
                    (value.span.end - value.span.start) as usize,
                    "a score threshold is a number",
                )));
            }
            (r, Check::Score { inclusive, value })
        }
        _ => {
            let (r, e) = cut_expect(
                check_at,
                "`action NAME`, `score >= N` or a list check `VALUE in LIST` after `if`",
                expr(cx, check_at),
            )?;
            (r, Check::List(e))
        }
    };
    Ok((rest, SceneClauseKind::Outcome { outcome, check }))
}
