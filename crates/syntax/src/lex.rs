//! Tokens of the pattern language, as nom 8 parsers over `&str`, and the
//! parser's private error type.
//!
//! Every token parser skips the whitespace and `//` comments before it. A
//! position is the remaining input; [`Cx::offset`] turns it into a byte
//! offset of the whole source. Errors carry what was expected at the
//! furthest position reached, so that a message can say "expected a stage
//! name, found `where`".

use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::{opt, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::sequence::pair;
use nom::{IResult, Parser};

use crate::ast::{Duration, Ident, TimeUnit};
use crate::primitives::Span;

/// Words that never name a stage or a field.
pub const RESERVED: &[&str] = &[
    "pattern",
    "partition",
    "within",
    "skip",
    "timeouts",
    "match",
    "where",
    "select",
    "next",
    "followed",
    "any",
    "not",
    "optional",
    "greedy",
    "consecutive",
    "combinations",
    "until",
    "and",
    "or",
    "true",
    "false",
    "null",
    "in",
];

/// Is `word` reserved?
pub fn is_reserved(word: &str) -> bool {
    RESERVED.contains(&word)
}

/// Is `s` an identifier that can be written without backquotes?
pub fn is_plain_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_reserved(s)
}

/// The parser's error: where, what was expected there, or a custom message.
#[derive(Clone, Debug)]
pub(crate) struct PError<'a> {
    /// The remaining input where the error is.
    pub at: &'a str,
    /// Byte length of the offending text, when it is not "the next token".
    pub len: Option<usize>,
    /// Things that would have been accepted at `at`.
    pub expected: Vec<&'static str>,
    /// A specific message (instead of "expected ...").
    pub message: Option<String>,
    /// Already reported (error recovery): do not report again.
    pub reported: bool,
}

impl<'a> PError<'a> {
    /// "expected `what`" at `at`.
    pub fn expected(at: &'a str, what: &'static str) -> PError<'a> {
        PError {
            at,
            len: None,
            expected: vec![what],
            message: None,
            reported: false,
        }
    }

    /// A specific message about `len` bytes at `at`.
    pub fn custom(at: &'a str, len: usize, message: impl Into<String>) -> PError<'a> {
        PError {
            at,
            len: Some(len),
            expected: Vec::new(),
            message: Some(message.into()),
            reported: false,
        }
    }
}

impl<'a> ParseError<&'a str> for PError<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PError {
            at: input,
            len: None,
            expected: Vec::new(),
            message: None,
            reported: false,
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // Keep the error that got further; merge expectations at a tie.
        match self.at.len().cmp(&other.at.len()) {
            std::cmp::Ordering::Less => self,
            std::cmp::Ordering::Greater => other,
            std::cmp::Ordering::Equal => {
                if self.message.is_some() {
                    return self;
                }
                if other.message.is_some() {
                    return other;
                }
                let mut merged = self;
                for e in other.expected {
                    if !merged.expected.contains(&e) {
                        merged.expected.push(e);
                    }
                }
                merged
            }
        }
    }
}

/// Result of the parser functions.
pub(crate) type PResult<'a, T> = IResult<&'a str, T, PError<'a>>;

/// A recoverable "expected `what`" error at `at`.
pub(crate) fn fail<'a, T>(at: &'a str, what: &'static str) -> PResult<'a, T> {
    Err(nom::Err::Error(PError::expected(at, what)))
}

/// An unrecoverable error with a specific message about `len` bytes at `at`.
pub(crate) fn fatal<'a, T>(at: &'a str, len: usize, message: impl Into<String>) -> PResult<'a, T> {
    Err(nom::Err::Failure(PError::custom(at, len, message)))
}

/// Turns a recoverable error into an unrecoverable one (nom's `cut`), and
/// labels it with what was expected when it failed right at `i`.
pub(crate) fn cut_expect<'a, T>(
    i: &'a str,
    what: &'static str,
    result: PResult<'a, T>,
) -> PResult<'a, T> {
    result.map_err(|e| match e {
        nom::Err::Error(mut err) => {
            if err.message.is_none() && skip_ws(i).len() == err.at.len() {
                err.expected = vec![what];
            }
            nom::Err::Failure(err)
        }
        other => other,
    })
}

/// Source context: turns remaining input into spans.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    /// The whole source.
    pub src: &'a str,
}

impl<'a> Cx<'a> {
    /// Byte offset of the remaining input `rest`.
    pub fn offset(&self, rest: &str) -> usize {
        self.src.len() - rest.len()
    }

    /// The span from remaining input `from` to remaining input `to`.
    pub fn span(&self, from: &str, to: &str) -> Span {
        Span::new(self.offset(from), self.offset(to))
    }
}

/// Skips whitespace and `//` comments (doc comments too).
pub(crate) fn skip_ws(mut i: &str) -> &str {
    loop {
        let trimmed = i.trim_start();
        if let Some(comment) = trimmed.strip_prefix("//") {
            i = comment.find('\n').map_or("", |n| &comment[n..]);
        } else {
            return trimmed;
        }
    }
}

fn ident_raw(i: &str) -> PResult<'_, &str> {
    recognize(pair(
        satisfy(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)
}

/// Any identifier, reserved or not, with its span.
pub(crate) fn any_ident<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, (&'a str, Span)> {
    let start = skip_ws(i);
    let (rest, word) = ident_raw(start)?;
    Ok((rest, (word, cx.span(start, rest))))
}

/// A non-reserved identifier (a name of something the user defines).
pub(crate) fn name<'a>(cx: Cx<'a>, i: &'a str, what: &'static str) -> PResult<'a, Ident> {
    let start = skip_ws(i);
    match any_ident(cx, start) {
        Ok((rest, (word, span))) if !is_reserved(word) => Ok((
            rest,
            Ident {
                name: word.to_string(),
                span,
            },
        )),
        _ => fail(start, what),
    }
}

/// Peeks the next identifier without consuming it.
pub(crate) fn peek_word(i: &str) -> Option<&str> {
    ident_raw(skip_ws(i)).ok().map(|(_, w)| w)
}

/// The keyword `kw` as a whole word.
pub(crate) fn keyword<'a>(cx: Cx<'a>, i: &'a str, kw: &'static str) -> PResult<'a, Span> {
    let start = skip_ws(i);
    match ident_raw(start) {
        Ok((rest, word)) if word == kw => Ok((rest, cx.span(start, rest))),
        _ => fail(start, kw_label(kw)),
    }
}

/// The label used in "expected ..." for a keyword.
fn kw_label(kw: &'static str) -> &'static str {
    match kw {
        "pattern" => "`pattern`, `list` or `indicator`",
        "by" => "`by`",
        "match" => "`match`",
        "next" => "`next`",
        "followed" => "`followed by`",
        "event" => "`event`",
        "skip" => "`skip`",
        "last" => "`last`",
        _ => "a keyword",
    }
}

/// The punctuation `s`.
pub(crate) fn symbol<'a>(cx: Cx<'a>, i: &'a str, s: &'static str) -> PResult<'a, Span> {
    let start = skip_ws(i);
    match tag::<_, _, PError<'a>>(s).parse(start) {
        Ok((rest, _)) => Ok((rest, cx.span(start, rest))),
        Err(_) => fail(start, symbol_label(s)),
    }
}

fn symbol_label(s: &'static str) -> &'static str {
    match s {
        "{" => "`{`",
        "}" => "`}`",
        "(" => "`(`",
        ")" => "`)`",
        "[" => "`[`",
        "]" => "`]`",
        ":" => "`:`",
        "=" => "`=`",
        "," => "`,`",
        _ => "a symbol",
    }
}

/// Does the (whitespace-skipped) input start with `s`?
pub(crate) fn peek_symbol(i: &str, s: &str) -> bool {
    skip_ws(i).starts_with(s)
}

/// A number token before interpretation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    /// Digits only (may exceed `i64`).
    Int(u64),
    /// A finite float.
    Float(f64),
    /// Digits and a unit.
    Duration(Duration),
}

/// A number, float or duration literal.
pub(crate) fn number<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Number> {
    let start = skip_ws(i);
    let (rest, digits) =
        match take_while1::<_, _, PError<'a>>(|c: char| c.is_ascii_digit()).parse(start) {
            Ok(ok) => ok,
            Err(_) => return fail(start, "a number"),
        };
    let (rest, fraction) = opt(recognize(pair(
        char('.'),
        take_while1(|c: char| c.is_ascii_digit()),
    )))
    .parse(rest)?;
    let (rest, exponent) = opt(recognize((
        satisfy(|c| c == 'e' || c == 'E'),
        opt(satisfy(|c| c == '+' || c == '-')),
        take_while1(|c: char| c.is_ascii_digit()),
    )))
    .parse(rest)?;
    if fraction.is_some() || exponent.is_some() {
        let text = &start[..start.len() - rest.len()];
        if starts_ident_char(rest) {
            return bad_number(start, rest);
        }
        return match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok((rest, Number::Float(f))),
            _ => fatal(
                start,
                text.len(),
                format!("the number `{text}` is too large"),
            ),
        };
    }
    let Ok(value) = digits.parse::<u64>() else {
        return fatal(
            start,
            digits.len(),
            format!("the number `{digits}` is too large"),
        );
    };
    if let Ok((after, unit)) = time_unit(rest) {
        if !starts_ident_char(after) {
            let span = cx.span(start, after);
            return Ok((after, Number::Duration(Duration { value, unit, span })));
        }
    }
    if starts_ident_char(rest) {
        return bad_number(start, rest);
    }
    Ok((rest, Number::Int(value)))
}

fn bad_number<'a, T>(start: &'a str, rest: &'a str) -> PResult<'a, T> {
    let word_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let len = start.len() - rest.len() + word_end;
    fatal(
        start,
        len,
        format!(
            "`{}` is not a number or a duration (duration units are ms, s, m, h, d)",
            &start[..len]
        ),
    )
}

fn starts_ident_char(i: &str) -> bool {
    i.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
}

fn time_unit(i: &str) -> PResult<'_, TimeUnit> {
    match TimeUnit::split_prefix(i) {
        Some((unit, rest)) => Ok((rest, unit)),
        None => fail(i, "a time unit"),
    }
}

/// A duration (`15m`); a plain number gets a message about units.
pub(crate) fn duration<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Duration> {
    let start = skip_ws(i);
    match number(cx, start) {
        Ok((rest, Number::Duration(d))) => Ok((rest, d)),
        Ok((rest, _)) => fatal(
            start,
            start.len() - rest.len(),
            "a duration needs a unit: write e.g. `500ms`, `10s`, `15m`, `2h` or `1d`",
        ),
        Err(nom::Err::Error(_)) => fail(start, "a duration like `10s`"),
        Err(e) => Err(e),
    }
}

/// A backquoted name: `` `user-agent` ``.
pub(crate) fn backquoted<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, Ident> {
    let start = skip_ws(i);
    let Some(body) = start.strip_prefix('`') else {
        return fail(start, "a name");
    };
    let Some(end) = body.find('`') else {
        return fatal(start, 1, "this backquoted name is never closed with a '`'");
    };
    if end == 0 {
        return fatal(start, 2, "a backquoted name cannot be empty");
    }
    let rest = &body[end + 1..];
    Ok((
        rest,
        Ident {
            name: body[..end].to_string(),
            span: cx.span(start, rest),
        },
    ))
}

/// A string literal with its escapes decoded; it ends on its line.
pub(crate) fn string<'a>(cx: Cx<'a>, i: &'a str) -> PResult<'a, String> {
    let _ = cx;
    let start = skip_ws(i);
    let Some(mut rest) = start.strip_prefix('"') else {
        return fail(start, "a string");
    };
    let mut out = String::new();
    loop {
        let Some(c) = rest.chars().next().filter(|c| *c != '\n') else {
            return fatal(
                start,
                1,
                "this string is never closed with a `\"` on its line (write a line break as `\\n`)",
            );
        };
        let here = rest;
        rest = &rest[c.len_utf8()..];
        match c {
            '"' => return Ok((rest, out)),
            '\\' => {
                let (after, decoded) = escape(here, rest)?;
                out.push(decoded);
                rest = after;
            }
            _ => out.push(c),
        }
    }
}

/// Decodes the escape whose backslash is at `at`; `rest` follows it.
fn escape<'a>(at: &'a str, rest: &'a str) -> PResult<'a, char> {
    let simple = |c| match c {
        '"' => Some('"'),
        '\\' => Some('\\'),
        'n' => Some('\n'),
        't' => Some('\t'),
        _ => None,
    };
    let Some(c) = rest.chars().next() else {
        return fatal(at, 1, "this string is never closed with a `\"`");
    };
    if let Some(decoded) = simple(c) {
        return Ok((&rest[1..], decoded));
    }
    if c != 'u' {
        return fatal(
            at,
            1 + c.len_utf8(),
            format!("unknown escape `\\{c}` (known: \\\" \\\\ \\n \\t \\u{{...}})"),
        );
    }
    let body = &rest[1..];
    let close = body.find('}').filter(|_| body.starts_with('{'));
    let hex = close.map(|n| &body[1..n]);
    let code = hex
        .filter(|h| (1..=6).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit()))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .and_then(char::from_u32);
    match (code, close) {
        (Some(ch), Some(n)) => Ok((&body[n + 1..], ch)),
        _ => {
            let len = close.map_or(2, |n| n + 3);
            fatal(
                at,
                len,
                "a `\\u` escape is written `\\u{...}` with 1 to 6 hex digits of a valid character",
            )
        }
    }
}

/// A short description of the token at `i`, for "found ..." in messages,
/// and its byte length.
pub(crate) fn describe_token(i: &str) -> (String, usize) {
    let i = skip_ws(i);
    let Some(c) = i.chars().next() else {
        return ("the end of the file".to_string(), 0);
    };
    if c.is_ascii_alphanumeric() || c == '_' {
        let len = i
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(i.len());
        let word = &i[..len];
        let what = if is_reserved(word) {
            format!("the keyword `{word}`")
        } else {
            format!("`{word}`")
        };
        return (what, len);
    }
    if c == '"' {
        return ("a string".to_string(), 1);
    }
    if c == '`' {
        return ("a backquote".to_string(), 1);
    }
    // Name the character itself, with its code point when it is not plain
    // ASCII (`é` (U+00E9), not `\u{e9}`); controls and other non-letters
    // (zero-width spaces, ...) stay escaped.
    let shown = if c.is_control() || (!c.is_ascii() && !c.is_alphanumeric()) {
        c.escape_default().to_string()
    } else {
        c.to_string()
    };
    if c.is_ascii() {
        (format!("`{shown}`"), c.len_utf8())
    } else {
        (format!("`{shown}` (U+{:04X})", u32::from(c)), c.len_utf8())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(src: &str) -> Cx<'_> {
        Cx { src }
    }

    #[test]
    fn whitespace_and_comments_are_skipped() {
        assert_eq!(skip_ws("  // c\n /// d\n  x"), "x");
        assert_eq!(skip_ws("// only"), "");
    }

    #[test]
    fn identifiers_and_keywords() {
        let src = "  foo_1 bar";
        let (rest, id) = name(cx(src), src, "a name").unwrap();
        assert_eq!((id.name.as_str(), id.span), ("foo_1", Span::new(2, 7)));
        assert_eq!(rest, " bar");
        assert!(name(cx("where"), "where", "a name").is_err());
        assert!(keyword(cx("matched"), "matched", "match").is_err());
        assert!(keyword(cx("match x"), "match x", "match").is_ok());
        assert!(is_plain_ident("_a9") && !is_plain_ident("9a") && !is_plain_ident("in"));
    }

    #[test]
    fn numbers_floats_and_durations() {
        let n = |s: &'static str| number(cx(s), s).map(|(_, n)| n);
        assert_eq!(n("42").unwrap(), Number::Int(42));
        assert_eq!(n("3.5").unwrap(), Number::Float(3.5));
        assert_eq!(n("1e-3").unwrap(), Number::Float(0.001));
        let Number::Duration(d) = n("15m").unwrap() else {
            panic!("not a duration")
        };
        assert_eq!(
            (d.value, d.unit, d.millis()),
            (15, TimeUnit::Minutes, Some(900_000))
        );
        let Number::Duration(d) = n("500ms").unwrap() else {
            panic!("not a duration")
        };
        assert_eq!(d.millis(), Some(500));
        assert!(n("10sec").is_err());
        assert!(n("1e999").is_err());
        assert!(n("99999999999999999999999").is_err());
        assert_eq!(n("18446744073709551615").unwrap(), Number::Int(u64::MAX));
    }

    #[test]
    fn durations_need_units() {
        let src = "10";
        let Err(nom::Err::Failure(e)) = duration(cx(src), src) else {
            panic!("accepted")
        };
        assert!(e.message.unwrap().contains("unit"));
    }

    #[test]
    fn strings_and_escapes() {
        let s = |src: &'static str| string(cx(src), src).map(|(_, s)| s);
        assert_eq!(s(r#""a\"b\\c\n\t""#).unwrap(), "a\"b\\c\n\t");
        assert_eq!(s(r#""\u{1F600}x""#).unwrap(), "\u{1F600}x");
        assert!(s(r#""\q""#).is_err());
        assert!(s(r#""\u{D800}""#).is_err());
        assert!(s(r#""\u{}""#).is_err());
        assert!(s(r#""open"#).is_err());
    }

    #[test]
    fn backquoted_names() {
        let src = "`user-agent`.x";
        let (rest, id) = backquoted(cx(src), src).unwrap();
        assert_eq!((id.name.as_str(), rest), ("user-agent", ".x"));
        assert!(backquoted(cx("``"), "``").is_err());
        assert!(backquoted(cx("`abc"), "`abc").is_err());
    }

    #[test]
    fn tokens_are_described() {
        assert_eq!(describe_token("  where x").0, "the keyword `where`");
        assert_eq!(describe_token("").0, "the end of the file");
        assert_eq!(describe_token("}").0, "`}`");
        assert_eq!(describe_token(" `a`").0, "a backquote");
    }
}
