//! Diagnostics: errors and warnings as values, and their rendering.
//!
//! A [`Diagnostic`] is a severity, a [`DiagnosticKind`], a plain-words
//! message, the [`Span`] of the offending text in one of the loaded
//! [`Source`]s, and optional secondary [`Label`]s (e.g. the first definition
//! of a duplicated name). [`Diagnostic::render`] draws it with
//! `annotate-snippets` (the renderer rustc uses), with `path:line:column`
//! (1-based, column in characters) on the first line:
//!
//! ```text
//! error: rules/login.cep:7:9: no stage or `where` entry is named `fial`
//!   |
//! 7 |     until fial
//!   |           ^^^^ unknown name
//! ```

use std::fmt;

use annotate_snippets::{Level, Renderer, Snippet};

use crate::pattern::{PatternError, PatternErrorKind};
use crate::span::Span;

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
}

/// A secondary place a diagnostic points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The text pointed at.
    pub span: Span,
    /// What it is (e.g. "first defined here").
    pub message: String,
    /// Index of the source in [`crate::dsl::Loaded::sources`].
    pub source: usize,
}

/// An error or warning about a pattern file.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Index of the source in [`crate::dsl::Loaded::sources`] (0 for a single text).
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
    pub(crate) fn in_source(mut self, source: usize) -> Diagnostic {
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
        let level = match self.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
        };
        let mut message = level.title(&title);
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

/// A loaded text: its name (a path, or `<input>`) and contents.
#[derive(Clone, Debug)]
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
}
