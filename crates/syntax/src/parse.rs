//! The file and pattern grammar of `language.md`, with error recovery: a
//! syntax error in a `where`/`select` entry skips to the next entry, any
//! other skips to the next `pattern`, so one run reports every mistake.

use crate::ast::{Clause, ClauseKind, Declaration, Entry, File, PatternDecl, SceneDecl, Skip};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::lex::{
    cut_expect, describe_token, duration, is_reserved, keyword, name, peek_symbol, peek_word,
    skip_ws, symbol, Cx, PError, PResult, RESERVED,
};
use crate::lower_expr::closest;
use crate::parse_decl;
use crate::parse_expr::{expr, field_path};
use crate::parse_match;
use crate::parse_scene;
use crate::primitives::Span;

/// Most patterns a file may hold.
pub const MAX_PATTERNS: usize = 10_000;

/// What parsing a file gives: every pattern that parsed (with a flag saying
/// whether a syntax error was recovered inside it) and the syntax errors.
pub(crate) struct Parsed {
    /// Patterns in order, `true` when a syntax error was recovered inside.
    pub patterns: Vec<(PatternDecl, bool)>,
    /// Declarations (lists, indicators, factors) in order.
    pub declarations: Vec<Declaration>,
    /// Scenes in order, `true` when a syntax error was recovered inside
    /// (in a clause or in a rule written inside it).
    pub scenes: Vec<(SceneDecl, bool)>,
    /// Syntax errors.
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses a whole file, recovering from errors.
pub(crate) fn parse_file(src: &str) -> Parsed {
    let cx = Cx { src };
    let mut out = Parsed {
        patterns: Vec::new(),
        declarations: Vec::new(),
        scenes: Vec::new(),
        diagnostics: Vec::new(),
    };
    let mut rest = src;
    loop {
        let (after_docs, doc) = doc_comments(rest);
        if skip_ws(after_docs).is_empty() {
            break;
        }
        if out.patterns.len() == MAX_PATTERNS {
            let at = skip_ws(after_docs);
            out.diagnostics.push(Diagnostic::error(
                DiagnosticKind::Limit,
                span_of_token(cx, at),
                format!("a file may hold at most {MAX_PATTERNS} patterns"),
            ));
            break;
        }
        if parse_decl::starts_declaration(skip_ws(after_docs)) {
            match parse_decl::declaration(cx, after_docs, doc) {
                Ok((after, d)) => {
                    out.declarations.push(d);
                    rest = after;
                }
                Err(nom::Err::Error(err) | nom::Err::Failure(err)) => {
                    out.diagnostics.push(to_diagnostic(cx, &err));
                    rest = next_pattern_start(err.at);
                }
                Err(nom::Err::Incomplete(_)) => break,
            }
            continue;
        }
        if peek_word(skip_ws(after_docs)) == Some("scene") {
            let mut recovered = Vec::new();
            match parse_scene::scene(cx, after_docs, doc, &mut recovered) {
                Ok((after, s)) => {
                    let had_errors = !recovered.is_empty();
                    out.diagnostics.extend(recovered);
                    out.scenes.push((s, had_errors));
                    rest = after;
                }
                Err(e) => {
                    out.diagnostics.extend(recovered);
                    let err = match e {
                        nom::Err::Error(err) | nom::Err::Failure(err) => err,
                        nom::Err::Incomplete(_) => PError::expected(after_docs, "more input"),
                    };
                    if !err.reported {
                        out.diagnostics.push(to_diagnostic(cx, &err));
                        rest = next_pattern_start(err.at);
                    } else {
                        rest = err.at;
                    }
                }
            }
            continue;
        }
        let mut recovered = Vec::new();
        match pattern(cx, after_docs, doc, &mut recovered) {
            Ok((after, p)) => {
                let had_errors = !recovered.is_empty();
                out.diagnostics.extend(recovered);
                out.patterns.push((p, had_errors));
                rest = after;
            }
            Err(e) => {
                out.diagnostics.extend(recovered);
                let err = match e {
                    nom::Err::Error(err) | nom::Err::Failure(err) => err,
                    nom::Err::Incomplete(_) => PError::expected(after_docs, "more input"),
                };
                if err.reported {
                    rest = err.at;
                } else {
                    out.diagnostics.push(to_diagnostic(cx, &err));
                    rest = next_pattern_start(err.at);
                }
            }
        }
    }
    out
}

/// Parses `src` as a file; any syntax error makes it an `Err`.
pub(crate) fn parse_strict(src: &str) -> Result<File, Vec<Diagnostic>> {
    let parsed = parse_file(src);
    if parsed.diagnostics.is_empty() {
        Ok(File {
            patterns: parsed.patterns.into_iter().map(|(p, _)| p).collect(),
            declarations: parsed.declarations,
            scenes: parsed.scenes.into_iter().map(|(s, _)| s).collect(),
        })
    } else {
        Err(parsed.diagnostics)
    }
}

/// Parses `src` as one expression (nothing else may follow).
pub(crate) fn parse_expression(src: &str) -> Result<crate::ast::Expr, Vec<Diagnostic>> {
    let cx = Cx { src };
    let result = cut_expect(src, "an expression", expr(cx, src)).and_then(|(rest, e)| {
        if skip_ws(rest).is_empty() {
            Ok(e)
        } else {
            Err(nom::Err::Failure(PError::expected(
                skip_ws(rest),
                "an operator or the end of the expression",
            )))
        }
    });
    result.map_err(|e| match e {
        nom::Err::Error(err) | nom::Err::Failure(err) => vec![to_diagnostic(cx, &err)],
        nom::Err::Incomplete(_) => vec![to_diagnostic(cx, &PError::expected("", "more input"))],
    })
}

/// Converts a parser error to a diagnostic.
pub(crate) fn to_diagnostic(cx: Cx<'_>, err: &PError<'_>) -> Diagnostic {
    let at = skip_ws(err.at);
    let mut start = cx.offset(if err.len.is_some() { err.at } else { at });
    if at.is_empty() && err.len.is_none() {
        start = end_of_last_line_with_code(&cx.src[..start]);
    }
    let (found, token_len) = describe_token(at);
    let len = err.len.unwrap_or(token_len);
    let span = Span::new(start, start + len);
    let message = match &err.message {
        Some(m) => m.clone(),
        None if err.expected.is_empty() => format!("unexpected {found}"),
        None => format!("expected {}, found {found}", join_or(&err.expected)),
    };
    let mut d = Diagnostic::error(DiagnosticKind::Syntax, span, message);
    if err.message.is_none() {
        if let Some(word) = peek_word(at).filter(|w| !is_reserved(w)) {
            if let Some(best) = closest(word, &suggestible(&err.expected)) {
                d = d.with_help(format!("did you mean `{best}`?"));
            }
        }
    }
    d
}

/// The words a misspelt word may be taken for: those the parser expected
/// (the first word of each backquoted alternative: `next` of "`next`",
/// `first` of "`first STAGE`"), the operator words where an operator was
/// expected; every reserved word only when the expectation names none
/// (`skip to end` was told "did you mean `and`?", a word `skip to` never
/// takes).
fn suggestible(expected: &[&str]) -> Vec<&'static str> {
    let mut words: Vec<&'static str> = Vec::new();
    let mut named = false;
    for item in expected {
        for (n, part) in item.split('`').enumerate() {
            if n % 2 == 0 {
                if part.contains("operator") {
                    named = true;
                    words.extend(["and", "or", "in", "not"]);
                }
                continue;
            }
            named = true;
            let first = part
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next();
            if let Some(word) = first.and_then(known_word) {
                words.push(word);
            }
            if part == "pattern" {
                // (the items the label leaves out, kept short as it was
                // before factors and scenes)
                words.extend(["factor", "scene"]);
            }
        }
    }
    if !named {
        words = RESERVED
            .iter()
            .copied()
            .filter(|w| !NOT_SUGGESTED.contains(w))
            .collect();
    }
    words.sort_unstable();
    words.dedup();
    words
}

/// The `'static` spelling of a word the language knows as a keyword,
/// reserved or contextual.
fn known_word(word: &str) -> Option<&'static str> {
    RESERVED
        .iter()
        .chain(CONTEXTUAL)
        .copied()
        .find(|k| *k == word)
}

/// Words that are keywords only where the grammar expects them.
const CONTEXTUAL: &[&str] = &[
    "by",
    "to",
    "past",
    "first",
    "last",
    "event",
    "no",
    "name",
    "list",
    "indicator",
    "score",
    "level",
    "action",
    "tags",
    "shadow",
    "then",
    "add",
    "remove",
    "from",
    "of",
    "for",
    "group",
    "factor",
    "scene",
    "when",
    "id",
    "rules",
    "tagged",
    "with",
    "outcomes",
    "default",
    "fallback",
    "late",
    "deadline",
    "hit",
    "if",
    "action",
    "all",
    "int",
    "number",
    "duration",
    "string",
    "bool",
];

/// Reserved words never suggested for a misspelt word in a syntax error:
/// literals and short words, which near-miss too many identifiers.
const NOT_SUGGESTED: &[&str] = &["any", "true", "false", "null", "in"];

/// Where "the end of the file" is best shown: just after the last line that
/// is not blank or a comment.
fn end_of_last_line_with_code(before: &str) -> usize {
    let mut end = before.len();
    loop {
        let line_start = before[..end].rfind('\n').map_or(0, |n| n + 1);
        let line = before[line_start..end].trim();
        if !(line.is_empty() || line.starts_with("//")) || line_start == 0 {
            return line_start + before[line_start..end].trim_end().len();
        }
        end = line_start - 1;
    }
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn span_of_token(cx: Cx<'_>, at: &str) -> Span {
    let at = skip_ws(at);
    let start = cx.offset(at);
    Span::new(start, start + describe_token(at).1)
}

/// Collects `///` lines (a plain `//` comment or blank line between them
/// and `pattern` is allowed; a `//` comment resets them).
pub(crate) fn doc_comments(mut i: &str) -> (&str, Vec<String>) {
    let mut doc = Vec::new();
    loop {
        let trimmed = i.trim_start();
        if let Some(line) = trimmed.strip_prefix("///") {
            let end = line.find('\n').unwrap_or(line.len());
            let text = line[..end].trim_end_matches('\r');
            doc.push(text.strip_prefix(' ').unwrap_or(text).to_string());
            i = &line[end..];
        } else if let Some(line) = trimmed.strip_prefix("//") {
            doc.clear();
            i = line.find('\n').map_or("", |n| &line[n..]);
        } else {
            return (trimmed, doc);
        }
    }
}

/// The start of the next line that begins with `pattern`, a declaration, a
/// scene or `///`.
pub(crate) fn next_pattern_start(mut i: &str) -> &str {
    loop {
        let Some(n) = i.find('\n') else {
            return "";
        };
        i = &i[n + 1..];
        let line = i.trim_start_matches([' ', '\t', '\r']);
        let word = peek_word(line);
        let starts_item = matches!(
            word,
            Some("pattern" | "list" | "indicator" | "factor" | "scene")
        ) && line.starts_with(|c: char| c.is_ascii_alphabetic());
        if line.starts_with("///") || starts_item {
            return i;
        }
    }
}

pub(crate) fn pattern<'a>(
    cx: Cx<'a>,
    i: &'a str,
    doc: Vec<String>,
    recovered: &mut Vec<Diagnostic>,
) -> PResult<'a, PatternDecl> {
    let start = skip_ws(i);
    let (rest, _) = keyword(cx, start, "pattern")?;
    let (mut rest, mut pattern_name) =
        cut_expect(rest, "a pattern name", name(cx, rest, "a name"))?;
    if rest.starts_with('@') {
        // `rule@scene`: the name of a rule's instance, as printed back
        // (`docs/language.md` §11).
        let after = &rest[1..];
        let (after, scene) = cut_expect(
            after,
            "a scene's name after `@`",
            crate::lex::name(cx, after, "a scene's name"),
        )?;
        pattern_name = crate::ast::Ident {
            name: format!("{}@{}", pattern_name.name, scene.name),
            span: pattern_name.span.to(scene.span),
        };
        rest = after;
    }
    let mut params = Vec::new();
    if peek_symbol(rest, "(") {
        (rest, params) = parse_scene::params(cx, rest, true)?;
    }
    let (rest, _) = cut_expect(rest, "`{`", symbol(cx, rest, "{"))?;
    let (rest, clauses) = clauses(cx, rest, recovered)?;
    let (rest, _) = keyword(cx, rest, "match").map_err(|_| {
        nom::Err::Failure(PError::expected(
            skip_ws(rest),
            "a clause (`partition by`, `within`, `skip`, `timeouts`, `score`, `level`, `action`, `tags`, `shadow`) or `match`",
        ))
    })?;
    let (rest, sequence) = parse_match::sequence(cx, rest, 0)?;
    let mut rest = rest;
    let mut where_entries = Vec::new();
    let mut select_entries = Vec::new();
    if peek_word(rest) == Some("where") {
        let after = &skip_ws(rest)[5..];
        (rest, where_entries) = entries(cx, after, ':', recovered)?;
    }
    if peek_word(rest) == Some("select") {
        let after = &skip_ws(rest)[6..];
        (rest, select_entries) = entries(cx, after, '=', recovered)?;
    }
    let mut effects = Vec::new();
    while parse_decl::starts_effect(rest) {
        let (after, e) = parse_decl::effect(cx, rest)?;
        effects.push(e);
        rest = after;
    }
    let expected = match (where_entries.is_empty(), select_entries.is_empty()) {
        _ if !effects.is_empty() => "`then add`, `then remove` or `}`",
        (_, false) => "a `select` entry `name = expression`, `then` or `}`",
        (false, true) => "a `where` entry `name: expression`, `select`, `then` or `}`",
        (true, true) => {
            "a connector (`next`, `followed by`, ...), `where`, `select`, `then` or `}`"
        }
    };
    let (rest, close) = symbol(cx, rest, "}")
        .map_err(|_| nom::Err::Failure(PError::expected(skip_ws(rest), expected)))?;
    Ok((
        rest,
        PatternDecl {
            doc,
            name: pattern_name,
            params,
            clauses,
            sequence,
            where_entries,
            select_entries,
            effects,
            span: cx.span(start, start).to(close),
        },
    ))
}

/// The clauses before `match`; a bad clause is reported and skipped up to
/// the next line that starts a clause or `match`.
fn clauses<'a>(
    cx: Cx<'a>,
    mut rest: &'a str,
    recovered: &mut Vec<Diagnostic>,
) -> PResult<'a, Vec<Clause>> {
    let mut out = Vec::new();
    loop {
        let start = skip_ws(rest);
        let parsed = match peek_word(start) {
            Some("partition") => partition_by(cx, &start[9..]),
            Some("within") => duration(cx, &start[6..])
                .map(|(after, d)| (after, ClauseKind::Within(d)))
                .map_err(to_failure),
            Some("skip") => skip(cx, &start[4..]).map(|(after, s)| (after, ClauseKind::Skip(s))),
            Some("timeouts") => Ok((&start[8..], ClauseKind::Timeouts)),
            Some("shadow") => Ok((&start[6..], ClauseKind::Shadow)),
            Some(word) => match parse_decl::attribute(cx, word, &start[word.len()..]) {
                Some(parsed) => parsed,
                None => return Ok((start, out)),
            },
            None => return Ok((start, out)),
        };
        match parsed {
            Ok((after, kind)) => {
                out.push(Clause {
                    kind,
                    span: cx.span(start, after),
                });
                rest = after;
            }
            Err(nom::Err::Error(err) | nom::Err::Failure(err)) => {
                recovered.push(to_diagnostic(cx, &err));
                rest = next_clause_start(err.at).ok_or_else(|| {
                    let mut done = PError::expected(next_pattern_start(err.at), "");
                    done.reported = true;
                    nom::Err::Failure(done)
                })?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// After a bad clause: the next line that starts a clause or `match`;
/// `None` when `}`, a `pattern` line or the end comes first.
fn next_clause_start(mut i: &str) -> Option<&str> {
    loop {
        let n = i.find('\n')?;
        i = &i[n + 1..];
        let line = i.trim_start_matches([' ', '\t', '\r']);
        match peek_word(line) {
            Some(
                "partition" | "within" | "skip" | "timeouts" | "match" | "score" | "level"
                | "action" | "tags" | "shadow",
            ) => return Some(line),
            Some("pattern") => return None,
            _ if line.starts_with('}') || line.starts_with("///") => return None,
            _ => {}
        }
    }
}

pub(crate) fn to_failure(e: nom::Err<PError<'_>>) -> nom::Err<PError<'_>> {
    match e {
        nom::Err::Error(err) => nom::Err::Failure(err),
        other => other,
    }
}

fn partition_by<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, ClauseKind> {
    let (mut rest, _) = cut_expect(i, "`by` after `partition`", keyword(cx, i, "by"))?;
    let mut paths = Vec::new();
    loop {
        let (after, p) = cut_expect(rest, "a field name", field_path(cx, rest))?;
        paths.push(p);
        rest = after;
        if !peek_symbol(rest, ",") {
            return Ok((rest, ClauseKind::PartitionBy(paths)));
        }
        rest = &skip_ws(rest)[1..];
    }
}

fn skip<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Skip> {
    let at = skip_ws(i);
    let word_end = |w: &str| &skip_ws(at)[w.len()..];
    let expect_word = |rest: &'a str, kw: &'static str| {
        cut_expect(rest, kw_text(kw), keyword(cx, rest, kw)).map(|(r, _)| r)
    };
    match peek_word(at) {
        Some("no") => {
            let rest = expect_word(word_end("no"), "skip")?;
            Ok((rest, Skip::NoSkip))
        }
        Some("past") => {
            let rest = expect_word(word_end("past"), "last")?;
            let rest = expect_word(rest, "event")?;
            Ok((rest, Skip::PastLastEvent))
        }
        Some("to") => {
            let rest = word_end("to");
            match peek_word(rest) {
                Some("next") => Ok((&skip_ws(rest)[4..], Skip::ToNext)),
                Some(w @ ("first" | "last")) => {
                    let after = &skip_ws(rest)[w.len()..];
                    let (after, target) =
                        cut_expect(after, "a stage name", name(cx, after, "a stage name"))?;
                    let s = if w == "first" {
                        Skip::ToFirst(target)
                    } else {
                        Skip::ToLast(target)
                    };
                    Ok((after, s))
                }
                _ => Err(nom::Err::Failure(PError::expected(
                    skip_ws(rest),
                    "`next`, `first STAGE` or `last STAGE` after `skip to`",
                ))),
            }
        }
        _ => Err(nom::Err::Failure(PError::expected(
            at,
            "`no skip`, `to next`, `past last event`, `to first STAGE` or `to last STAGE`",
        ))),
    }
}

fn kw_text(kw: &'static str) -> &'static str {
    match kw {
        "skip" => "`skip`",
        "last" => "`last`",
        "event" => "`event`",
        _ => "a keyword",
    }
}

/// `where` / `select` entries, each `IDENT sep expr`, recovering from a bad
/// entry by skipping to the next line that starts a new entry.
fn entries<'a>(
    cx: Cx<'a>,
    mut rest: &'a str,
    sep: char,
    recovered: &mut Vec<Diagnostic>,
) -> PResult<'a, Vec<Entry>> {
    let mut out = Vec::new();
    loop {
        let at = skip_ws(rest);
        if at.starts_with('}')
            || at.is_empty()
            || (sep == ':' && peek_word(at) == Some("select"))
            || parse_decl::starts_effect(at)
        {
            return Ok((at, out));
        }
        match entry(cx, at, sep) {
            Ok((after, e)) => {
                out.push(e);
                rest = after;
            }
            Err(nom::Err::Error(err) | nom::Err::Failure(err)) => {
                recovered.push(to_diagnostic(cx, &err));
                out.extend(placeholder_entry(cx, at, sep));
                let here = skip_ws(err.at);
                if here.len() < at.len() && ends_entry(here, sep) {
                    rest = here;
                    continue;
                }
                match next_entry_start(err.at, sep) {
                    Some(next) => rest = next,
                    None => {
                        let mut done = PError::expected(next_pattern_start(err.at), "");
                        done.reported = true;
                        return Err(nom::Err::Failure(done));
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// For a bad entry whose `name sep` parsed: the entry with a `null`
/// expression, so that lowering the rest of the pattern does not report the
/// name as missing.
fn placeholder_entry(cx: Cx<'_>, at: &str, sep: char) -> Option<Entry> {
    let (rest, entry_name) = name(cx, at, "a name").ok()?;
    if !skip_ws(rest).starts_with(sep) {
        return None;
    }
    let span = entry_name.span;
    Some(Entry {
        name: entry_name,
        expr: crate::ast::Expr {
            kind: crate::ast::ExprKind::Literal(crate::ast::Literal::Null),
            span,
        },
        span,
    })
}

fn entry<'a>(cx: Cx<'a>, at: &'a str, sep: char) -> PResult<'a, Entry> {
    let what = if sep == ':' {
        "a `where` entry `name: expression`, `select`, `then` or `}`"
    } else {
        "a `select` entry `name = expression`, `then` or `}`"
    };
    let (rest, entry_name) = name(cx, at, what).map_err(to_failure)?;
    let sep_text = if sep == ':' { ":" } else { "=" };
    let (rest, _) = cut_expect(
        rest,
        if sep == ':' {
            "`:` after the entry name"
        } else {
            "`=` after the entry name"
        },
        symbol(cx, rest, sep_text),
    )?;
    let (rest, e) = cut_expect(rest, "an expression", expr(cx, rest))?;
    let next = skip_ws(rest);
    if !ends_entry(next, sep) {
        return Err(nom::Err::Failure(PError::expected(
            next,
            if sep == ':' {
                "an operator, a new entry `name:`, `select`, `then` or `}`"
            } else {
                "an operator, a new entry `name =`, `then` or `}`"
            },
        )));
    }
    let span = entry_name.span.to(e.span);
    Ok((
        rest,
        Entry {
            name: entry_name,
            expr: e,
            span,
        },
    ))
}

/// Does `at` (whitespace skipped) begin the next entry or end the section?
fn ends_entry(at: &str, sep: char) -> bool {
    if at.is_empty() || at.starts_with('}') || parse_decl::starts_effect(at) {
        return true;
    }
    match peek_word(at) {
        Some("select") if sep == ':' => true,
        Some(w) if !is_reserved(w) => {
            let after = skip_ws(&at[w.len()..]);
            after.starts_with(sep) && !(sep == '=' && after.starts_with("=="))
        }
        _ => false,
    }
}

/// After a bad entry: the next line that starts an entry, `select` or `}`;
/// `None` when a `pattern` line (or the end) comes first.
fn next_entry_start(mut i: &str, sep: char) -> Option<&str> {
    loop {
        let n = i.find('\n')?;
        i = &i[n + 1..];
        let line = i.trim_start_matches([' ', '\t', '\r']);
        if peek_word(line) == Some("pattern") || line.starts_with("///") {
            return None;
        }
        if !line.starts_with("//") && ends_entry(line, sep) && !line.is_empty() {
            return Some(line);
        }
    }
}

#[cfg(test)]
mod tests;
