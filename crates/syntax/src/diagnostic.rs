//! Diagnostics: errors and warnings as values, and their rendering.
//!
//! A [`Diagnostic`] is a severity, a [`DiagnosticKind`], a plain-words
//! message, the [`Span`] of the offending text in one of the loaded
//! [`Source`]s, and optional secondary [`Label`]s (e.g. the first definition
//! of a duplicated name). [`Diagnostic::render`] draws it with
//! `annotate-snippets` (the renderer rustc uses; without the `cli` feature, a
//! small plain renderer that shows the same things), with `path:line:column`
//! (1-based, column in characters) on the first line:
//!
//! ```text
//! error: rules/login.cep:7:9: no stage or `where` entry is named `fial`
//!   |
//! 7 |     until fial
//!   |           ^^^^ unknown name
//! ```

use std::fmt;

#[cfg(feature = "annotate-snippets")]
use annotate_snippets::{Level, Renderer, Snippet};

use crate::pattern::{PatternError, PatternErrorKind};
use crate::primitives::Span;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The pattern is rejected.
    Error,
    /// Worth fixing, but the pattern still loads.
    Warning,
}

/// What kind of problem a diagnostic reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiagnosticKind {
    /// The text does not follow the grammar.
    Syntax,
    /// The file is not valid UTF-8.
    InvalidUtf8,
    /// The file contains a NUL byte.
    NulByte,
    /// A limit of the language is exceeded.
    Limit,
    /// A name that refers to nothing (stage, `where` entry, skip target).
    UnknownName,
    /// A call of a function that does not exist.
    UnknownFunction,
    /// A function called with the wrong number or kind of arguments.
    BadArguments,
    /// A regex given to `matches` is invalid or too large.
    InvalidRegex,
    /// A name defined twice (pattern, `where`/`select` entry, clause, modifier).
    Duplicate,
    /// A `where` entry that nothing uses (a warning).
    UnusedEntry,
    /// A looping element with no window: its partial matches can live for
    /// ever (a warning).
    UnboundedState,
    /// A quantified first element of a group whose repetitions follow the
    /// group's contiguity, not the one written on it (a warning).
    GroupHeadContiguity,
    /// A name used both as a stage and by `until`.
    UntilUsesStage,
    /// A quantifier that makes no sense (`{0}`, `{3,2}`).
    InvalidQuantifier,
    /// Two modifiers that cannot go together (`consecutive combinations`).
    ConflictingModifiers,
    /// A `select` expression reads a field of "the current event".
    FieldInSelect,
    /// A rule of the pattern IR (shared with the builder API).
    Pattern(PatternErrorKind),
    /// A file or folder could not be read.
    Io,
    /// A place where the pattern means something else than in Apache Flink
    /// 2.3, or where a limit can cut work Flink would do (a warning of
    /// `cepheid check --flink`, from [`crate::pattern::flink_differences`]).
    Flink(crate::pattern::FlinkDifference),
    /// A field a pattern reads that no event of a sample carried (a
    /// warning of `cepheid check --sample`: a misspelt field gives no
    /// match, ever).
    FieldNeverOccurs,
    /// `x in name` or `then add x to name` where `name` is no declared
    /// list.
    NotAList,
    /// An aggregate of an indicator over a value that is never a number
    /// (`sum(type == "a")`).
    NotNumeric,
    /// A `list` or `indicator` declaration that cannot be used as written
    /// (a missing window, a lifetime of 0).
    InvalidDeclaration,
    /// A scene that cannot decide as written: a missing `outcomes`,
    /// `fallback` or `deadline`, thresholds or list checks out of order, a
    /// rule it holds that has a skip strategy, an action given no outcome,
    /// a parameter given no value.
    Scene,
    /// A `then` write in a `shadow` pattern. No longer reported: a shadow
    /// pattern's writes go to the lists' shadow copies, which the live
    /// rules never read (`docs/semantics.md`, "Shadow rules").
    ShadowWrite,
}

/// A secondary place a diagnostic points at.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Label {
    /// The text pointed at.
    pub span: Span,
    /// What it is (e.g. "first defined here").
    pub message: String,
    /// Index of the source in [`crate::Loaded::sources`].
    pub source: usize,
}

/// An error or warning about a pattern file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What kind of problem.
    pub kind: DiagnosticKind,
    /// Plain-words message.
    pub message: String,
    /// The offending text.
    pub span: Span,
    /// Other places worth showing.
    pub labels: Vec<Label>,
    /// A hint on how to fix it.
    pub help: Option<String>,
    /// Index of the source in [`crate::Loaded::sources`] (0 for a single text).
    pub source: usize,
}

impl Diagnostic {
    /// An error of `kind` at `span`.
    pub fn error(kind: DiagnosticKind, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            kind,
            message: message.into(),
            span,
            labels: Vec::new(),
            help: None,
            source: 0,
        }
    }

    /// A warning of `kind` at `span`.
    pub fn warning(kind: DiagnosticKind, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(kind, span, message)
        }
    }

    /// Adds a secondary label in the same source.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
            source: self.source,
        });
        self
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Is this an error (not a warning)?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sets the source index of the diagnostic and its labels.
    pub fn in_source(mut self, source: usize) -> Diagnostic {
        self.source = source;
        for l in &mut self.labels {
            l.source = source;
        }
        self
    }

    /// Draws the diagnostic: `severity: path:line:col: message`, then the
    /// quoted lines with the offending text underlined.
    pub fn render(&self, sources: &[Source]) -> String {
        let Some(src) = sources.get(self.source) else {
            return format!("{}: {}\n", self.severity, self.message);
        };
        let (line, col) = src.line_col(self.span.start as usize);
        let title = format!("{}:{line}:{col}: {}", src.name, self.message);
        self.draw(sources, src, &title)
    }

    /// [`Diagnostic::render`] without `annotate-snippets` (the `cli` feature
    /// is off).
    #[cfg(not(feature = "annotate-snippets"))]
    fn draw(&self, sources: &[Source], src: &Source, title: &str) -> String {
        self.render_plain(sources, src, title)
    }

    /// [`Diagnostic::render`] with `annotate-snippets`.
    #[cfg(feature = "annotate-snippets")]
    fn draw(&self, sources: &[Source], src: &Source, title: &str) -> String {
        let level = match self.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
        };
        let mut message = level.title(title);
        let same: Vec<&Label> = self
            .labels
            .iter()
            .filter(|l| l.source == self.source)
            .collect();
        let mut spans = vec![self.span];
        spans.extend(same.iter().map(|l| l.span));
        let (window, first_line) = src.window(&spans);
        let shown = displayable(&src.text[window.clone()]);
        let mut snippet = Snippet::source(&shown)
            .line_start(first_line)
            .fold(true)
            .annotation(level.span(src.relative(self.span, &window)));
        for l in &same {
            // Warning-level annotations carry no "info:" prefix.
            snippet = snippet.annotation(
                Level::Warning
                    .span(src.relative(l.span, &window))
                    .label(&l.message),
            );
        }
        message = message.snippet(snippet);
        let others: Vec<(&Label, &Source, String)> = self
            .labels
            .iter()
            .filter(|l| l.source != self.source)
            .filter_map(|l| {
                let other = sources.get(l.source)?;
                let (ol, oc) = other.line_col(l.span.start as usize);
                Some((l, other, format!("{}:{ol}:{oc}", other.name)))
            })
            .collect();
        let shown_others: Vec<String> = others
            .iter()
            .map(|(l, other, _)| displayable(&other.text[other.window(&[l.span]).0]))
            .collect();
        for ((l, other, origin), shown) in others.iter().zip(&shown_others) {
            let (window, first_line) = other.window(&[l.span]);
            message = message.snippet(
                Snippet::source(shown)
                    .line_start(first_line)
                    .origin(origin)
                    .fold(true)
                    .annotation(
                        Level::Warning
                            .span(other.relative(l.span, &window))
                            .label(&l.message),
                    ),
            );
        }
        if let Some(help) = &self.help {
            message = message.footer(Level::Help.title(help));
        }
        // A huge terminal width turns off the renderer's own line trimming
        // (it can underflow on some inputs, found by fuzzing); long lines are
        // clipped around the spans by `Source::window` instead.
        let renderer = Renderer::plain().term_width(usize::MAX / 4);
        format!("{}\n", renderer.render(message))
    }

    /// [`Diagnostic::render`] without `annotate-snippets`, so that the
    /// library builds without the crates only the command line needs: the
    /// same title, quoted lines with line numbers, the span underlined with
    /// `^` and labels with `-`, other sources after `-->`, and the help.
    #[cfg(any(not(feature = "annotate-snippets"), test))]
    fn render_plain(&self, sources: &[Source], src: &Source, title: &str) -> String {
        let mut out = format!("{}: {title}\n", self.severity);
        let mut marks = vec![Mark {
            span: self.span,
            primary: true,
            label: None,
        }];
        marks.extend(
            self.labels
                .iter()
                .filter(|l| l.source == self.source)
                .map(|l| Mark {
                    span: l.span,
                    primary: false,
                    label: Some(&l.message),
                }),
        );
        let mut blocks = vec![(None, src, marks)];
        for l in self.labels.iter().filter(|l| l.source != self.source) {
            let Some(other) = sources.get(l.source) else {
                continue;
            };
            let (ol, oc) = other.line_col(l.span.start as usize);
            let mark = Mark {
                span: l.span,
                primary: false,
                label: Some(&l.message),
            };
            blocks.push((Some(format!("{}:{ol}:{oc}", other.name)), other, vec![mark]));
        }
        let quoted: Vec<Quoted> = blocks
            .iter()
            .map(|(_, source, marks)| quote(source, marks))
            .collect();
        let last_line = quoted
            .iter()
            .filter_map(|q| q.lines.iter().flatten().last().map(|l| l.number))
            .max()
            .unwrap_or(1);
        let gutter = " ".repeat(last_line.to_string().len());
        for ((origin, _, _), q) in blocks.iter().zip(&quoted) {
            if let Some(origin) = origin {
                out.push_str(&format!("{gutter}--> {origin}\n"));
            }
            out.push_str(&format!("{gutter} |\n"));
            q.write(&mut out, &gutter);
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("{gutter} |\n{gutter} = help: {help}\n"));
        }
        out
    }
}

/// A span to underline in the plain rendering: `^` for the diagnostic's
/// own span, `-` with a label for the others.
#[cfg(any(not(feature = "annotate-snippets"), test))]
struct Mark<'a> {
    span: Span,
    primary: bool,
    label: Option<&'a str>,
}

/// The lines of a source quoted for the plain rendering; `None` stands for
/// lines left out.
#[cfg(any(not(feature = "annotate-snippets"), test))]
struct Quoted {
    lines: Vec<Option<QuotedLine>>,
}

/// One quoted line and its underlines: `(first column, width, marker,
/// label)`, columns in characters.
#[cfg(any(not(feature = "annotate-snippets"), test))]
struct QuotedLine {
    number: usize,
    text: String,
    underlines: Vec<(usize, usize, char, Option<String>)>,
}

/// The lines of `source` around `marks`, each with the underlines of the
/// marks on it. A span over several lines is underlined on its first and
/// last line (the label goes on the last).
#[cfg(any(not(feature = "annotate-snippets"), test))]
fn quote(source: &Source, marks: &[Mark<'_>]) -> Quoted {
    let spans: Vec<Span> = marks.iter().map(|m| m.span).collect();
    let (window, first_line) = source.window(&spans);
    let shown = displayable(&source.text[window.clone()]);
    let mut lines: Vec<QuotedLine> = Vec::new();
    let mut offset = 0;
    for (i, text) in shown.split('\n').enumerate() {
        let range = offset..offset + text.len();
        offset = range.end + 1;
        let mut underlines = Vec::new();
        for m in marks {
            let span = source.relative(m.span, &window);
            // The line covers its text and the newline after it.
            let on_line = |x: usize| range.start <= x && x <= range.end;
            let last = if span.end > span.start {
                span.end - 1
            } else {
                span.start
            };
            let (starts_here, ends_here) = (on_line(span.start), on_line(last));
            if !starts_here && !ends_here {
                continue;
            }
            let column = |x: usize| text[..x.min(range.end) - range.start].chars().count();
            let from = if starts_here { column(span.start) } else { 0 };
            let to = if ends_here {
                column(span.end)
            } else {
                text.chars().count()
            };
            let marker = if m.primary { '^' } else { '-' };
            let label = if ends_here {
                m.label.map(str::to_string)
            } else {
                None
            };
            underlines.push((from, to.saturating_sub(from).max(1), marker, label));
        }
        underlines.sort_by_key(|u| u.0);
        lines.push(QuotedLine {
            number: first_line + i,
            text: text.to_string(),
            underlines,
        });
    }
    // Keep the underlined lines and a single line between two of them.
    let marked = |j: usize| lines.get(j).is_some_and(|l| !l.underlines.is_empty());
    let keep: Vec<bool> = (0..lines.len())
        .map(|i| marked(i) || (i > 0 && marked(i - 1) && marked(i + 1)))
        .collect();
    let mut kept = Vec::new();
    let mut left_out = false;
    for (line, keep) in lines.into_iter().zip(keep) {
        if !keep {
            left_out = !kept.is_empty();
            continue;
        }
        if std::mem::take(&mut left_out) {
            kept.push(None);
        }
        kept.push(Some(line));
    }
    Quoted { lines: kept }
}

#[cfg(any(not(feature = "annotate-snippets"), test))]
impl Quoted {
    /// Appends the quoted lines (`...` where lines are left out).
    fn write(&self, out: &mut String, gutter: &str) {
        for line in &self.lines {
            let Some(line) = line else {
                out.push_str("...\n");
                continue;
            };
            let number = format!("{:>width$}", line.number, width = gutter.len());
            out.push_str(format!("{number} | {}", line.text).trim_end());
            out.push('\n');
            for (from, width, marker, label) in &line.underlines {
                let marks: String = std::iter::repeat(*marker).take(*width).collect();
                let label = label
                    .as_deref()
                    .map(|l| format!(" {l}"))
                    .unwrap_or_default();
                out.push_str(&format!("{gutter} | {}{marks}{label}\n", " ".repeat(*from)));
            }
        }
    }
}

/// The quoted text with tabs and other control characters as spaces: the
/// same byte offsets, and nothing the snippet renderer measures wrongly (a
/// tab-indented line with a long label made it overflow, found by fuzzing).
fn displayable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c != '\n' && c.is_ascii_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

impl From<PatternError> for Diagnostic {
    fn from(e: PatternError) -> Diagnostic {
        let mut d = Diagnostic::error(DiagnosticKind::Pattern(e.kind), e.span, e.message);
        for (span, message) in e.labels {
            d = d.with_label(span, message);
        }
        d
    }
}

/// The error of [`crate::parse`], [`crate::parse_expression`] and
/// [`crate::lower_expression`]: every diagnostic found (at least one
/// error; warnings may come with them), as values. `Display` gives the
/// first error's message and how many there are; [`Diagnostics::render`]
/// draws them all against their text.
///
/// ```
/// let e = cepheid_syntax::parse("pattern p { match a b }").unwrap_err();
/// assert!(e.errors().count() >= 1);
/// let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
/// assert!(boxed.to_string().starts_with("1:"), "{boxed}");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
    /// Where the first error is: 1-based line and column (0, 0 when the
    /// text was not kept).
    at: (usize, usize),
}

impl Diagnostics {
    /// The diagnostics of `text` (at least one error among them).
    pub(crate) fn new(list: Vec<Diagnostic>, text: &str) -> Diagnostics {
        let at = list.iter().find(|d| d.is_error()).map_or((0, 0), |d| {
            Source::new("", text).line_col(usize::try_from(d.span.start).unwrap_or(usize::MAX))
        });
        Diagnostics { list, at }
    }

    /// The errors among them.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.is_error())
    }

    /// The diagnostics, owned.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.list
    }

    /// Draws every diagnostic against `source` (the text given to the
    /// parser, under the name to show), as `cepheid check` does.
    pub fn render(&self, source: &Source) -> String {
        let sources = std::slice::from_ref(source);
        self.list.iter().map(|d| d.render(sources)).collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        match self.errors().next() {
            Some(first) => {
                write!(f, "{}:{}: {}", self.at.0, self.at.1, first.message)?;
                if errors > 1 {
                    write!(f, " (and {} more errors)", errors - 1)?;
                }
                Ok(())
            }
            None => f.write_str("no error"),
        }
    }
}

/// What `?` in a `main` prints: the message, not a struct dump
/// ([`cepheid_core::error::write_report`]).
impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        cepheid_core::error::write_report(self, f)
    }
}

impl std::error::Error for Diagnostics {}

/// Every diagnostic, in the order found.
impl std::ops::Deref for Diagnostics {
    type Target = [Diagnostic];
    fn deref(&self) -> &[Diagnostic] {
        &self.list
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

/// A diagnostic with the texts it points into: what an error of the layers
/// above keeps so that it can be drawn when a program asks
/// ([`cepheid_core::Error::render`], through [`cepheid_core::Excerpt`]),
/// never drawn beforehand. It holds its own source and those its labels
/// point into (a name first defined in another file), re-numbered from 0.
///
/// ```
/// use std::sync::Arc;
/// use cepheid_core::{Error, ErrorKind, Excerpt};
/// let loaded = cepheid_syntax::load_str("r.cep", "pattern p { match a b }");
/// let d = loaded.diagnostics.iter().find(|d| d.is_error()).unwrap();
/// let located = cepheid_syntax::Located::new(d, &loaded.sources);
/// assert!(located.render().contains("r.cep:1:"));
/// let error = Error::new(ErrorKind::Syntax, d.message.clone()).with_excerpt(Arc::new(located));
/// assert!(error.render().contains("^"), "{}", error.render());
/// ```
#[derive(Clone, Debug)]
pub struct Located {
    diagnostic: Diagnostic,
    sources: Vec<Source>,
}

impl Located {
    /// `diagnostic`, with the texts of `sources` it and its labels point
    /// into.
    pub fn new(diagnostic: &Diagnostic, sources: &[Source]) -> Located {
        let mut kept: Vec<usize> = vec![diagnostic.source];
        for l in &diagnostic.labels {
            if !kept.contains(&l.source) {
                kept.push(l.source);
            }
        }
        let renumber = |source: usize| kept.iter().position(|&k| k == source).unwrap_or(0);
        let mut d = diagnostic.clone();
        d.source = 0;
        for l in &mut d.labels {
            l.source = renumber(l.source);
        }
        Located {
            diagnostic: d,
            sources: kept
                .iter()
                .filter_map(|&k| sources.get(k).cloned())
                .collect(),
        }
    }

    /// The diagnostic (its `source` and its labels' index
    /// [`Located::sources`]).
    pub fn diagnostic(&self) -> &Diagnostic {
        &self.diagnostic
    }

    /// The texts it points into: its own first.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }
}

impl cepheid_core::Excerpt for Located {
    fn render(&self) -> String {
        self.diagnostic.render(&self.sources)
    }
}

/// A loaded text: its name (a path, or `<input>`) and contents.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Source {
    /// The path or origin shown in diagnostics.
    pub name: String,
    /// The text (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    line_starts: Vec<usize>,
}

/// Longest line quoted in full, in bytes.
const MAX_QUOTED: usize = 300;
/// Bytes quoted on each side of the spans of a longer line.
const CONTEXT: usize = 100;

impl Source {
    /// A source named `name` with text `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor_char(offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let col = self.text[self.line_starts[line]..offset].chars().count() + 1;
        (line + 1, col)
    }

    fn floor_char(&self, mut offset: usize) -> usize {
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    /// The byte range of whole lines covering `spans`, and its first line
    /// number.
    fn window(&self, spans: &[Span]) -> (std::ops::Range<usize>, usize) {
        let lo = spans.iter().map(|s| s.start as usize).min().unwrap_or(0);
        let hi = spans.iter().map(|s| s.end as usize).max().unwrap_or(0);
        let lo = self.floor_char(lo.min(self.text.len()));
        let hi = self.floor_char(hi.min(self.text.len())).max(lo);
        let line = self.line_starts.partition_point(|&s| s <= lo) - 1;
        let start = self.line_starts[line];
        let end = self.text[hi..]
            .find('\n')
            .map_or(self.text.len(), |n| hi + n);
        if end - start > MAX_QUOTED && !self.text[start..end].contains('\n') {
            // One long line: quote only the part around the spans.
            let from = self.floor_char(lo.saturating_sub(CONTEXT).max(start));
            let mut to = (hi + CONTEXT).min(end);
            while !self.text.is_char_boundary(to) {
                to += 1;
            }
            return (from..to, line + 1);
        }
        (start..end, line + 1)
    }

    /// `span` relative to `window`, clamped inside it.
    fn relative(&self, span: Span, window: &std::ops::Range<usize>) -> std::ops::Range<usize> {
        let clamp = |x: usize| self.floor_char(x.clamp(window.start, window.end)) - window.start;
        clamp(span.start as usize)..clamp(span.end as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let s = Source::new("f.cep", "ab\nçé x\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(3), (2, 1));
        assert_eq!(s.line_col(8), (2, 4));
        assert_eq!(s.line_col(100), (3, 1));
    }

    #[test]
    fn render_starts_with_path_line_column() {
        let s = Source::new("rules/a.cep", "pattern p {\n    match a b\n}\n");
        let d = Diagnostic::error(DiagnosticKind::Syntax, Span::new(24, 25), "unexpected `b`")
            .with_label(Span::new(8, 9), "in this pattern")
            .with_help("join stages with a connector");
        let text = d.render(&[s]);
        let first = text.lines().next().unwrap();
        assert_eq!(first, "error: rules/a.cep:2:13: unexpected `b`");
        assert!(text.contains("    match a b"), "{text}");
        assert!(text.contains('^'), "{text}");
        assert!(text.contains("in this pattern"), "{text}");
        assert!(text.contains("help: join stages"), "{text}");
    }

    #[test]
    fn render_points_into_other_sources() {
        let a = Source::new("a.cep", "pattern p { match x }\n");
        let b = Source::new("b.cep", "\npattern p { match y }\n");
        let mut d =
            Diagnostic::error(DiagnosticKind::Duplicate, Span::new(9, 10), "dup").in_source(1);
        d.labels.push(Label {
            span: Span::new(8, 9),
            message: "first defined here".to_string(),
            source: 0,
        });
        let text = d.render(&[a, b]);
        assert!(text.starts_with("error: b.cep:2:9: dup"), "{text}");
        assert!(text.contains("a.cep:1:9"), "{text}");
    }

    /// The plain renderer (the one used without the `cli` feature), tested
    /// directly so that the default build covers it too.
    fn plain(d: &Diagnostic, sources: &[Source]) -> String {
        let src = &sources[d.source];
        let (line, col) = src.line_col(d.span.start as usize);
        d.render_plain(
            sources,
            src,
            &format!("{}:{line}:{col}: {}", src.name, d.message),
        )
    }

    #[test]
    fn plain_rendering_underlines_spans_with_labels_and_help() {
        let s = Source::new("rules/a.cep", "pattern p {\n    match a b\n}\n");
        let d = Diagnostic::error(DiagnosticKind::Syntax, Span::new(24, 25), "unexpected `b`")
            .with_label(Span::new(8, 9), "in this pattern")
            .with_help("join stages with a connector");
        assert_eq!(
            plain(&d, &[s]),
            "error: rules/a.cep:2:13: unexpected `b`\n\
             \x20 |\n\
             1 | pattern p {\n\
             \x20 |         - in this pattern\n\
             2 |     match a b\n\
             \x20 |             ^\n\
             \x20 |\n\
             \x20 = help: join stages with a connector\n"
        );
    }

    #[test]
    fn plain_rendering_folds_lines_and_quotes_other_sources() {
        let text = "pattern p {\n  match a\n\n\n\n\n\n\n\n  followed by\n}\n";
        let s = Source::new("b.cep", text);
        let a = Source::new("a.cep", "pattern p { match x }\n");
        let start = text.find("a\n").unwrap();
        let end = text.find("by").unwrap() + 2;
        let mut d = Diagnostic::warning(DiagnosticKind::Duplicate, Span::new(start, end), "dup")
            .in_source(1);
        d.labels.push(Label {
            span: Span::new(8, 9),
            message: "first defined here".to_string(),
            source: 0,
        });
        assert_eq!(
            plain(&d, &[a, s]),
            "warning: b.cep:2:9: dup\n\
             \x20  |\n\
             \x202 |   match a\n\
             \x20  |         ^\n\
             ...\n\
             10 |   followed by\n\
             \x20  | ^^^^^^^^^^^^^\n\
             \x20 --> a.cep:1:9\n\
             \x20  |\n\
             \x201 | pattern p { match x }\n\
             \x20  |         - first defined here\n"
        );
    }

    /// Every diagnostic of the error suite and of the fuzz regressions
    /// renders plainly without panicking, with the same first line as
    /// [`Diagnostic::render`], an underline, every label and the help.
    #[test]
    fn plain_rendering_shows_what_render_shows() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests");
        let mut checked = 0;
        for dir in ["errors", "fuzz_regressions"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("test folder") {
                let path = entry.expect("entry").path();
                let bytes = std::fs::read(&path).expect("read");
                let loaded = crate::load_bytes(&path.display().to_string(), &bytes);
                for d in &loaded.diagnostics {
                    let full = d.render(&loaded.sources);
                    let text = plain(d, &loaded.sources);
                    assert_eq!(text.lines().next(), full.lines().next(), "{text}");
                    assert!(text.contains('^'), "{text}");
                    for l in &d.labels {
                        assert!(text.contains(&l.message), "{text}");
                    }
                    if let Some(help) = &d.help {
                        assert!(text.contains(&format!("= help: {help}")), "{text}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 30, "only {checked} diagnostics");
    }
}
