//! [`Rules`]: patterns written in the pattern language, loaded at run time
//! from `.cep` files or text, ready to add to an [`Engine`](crate::Engine).
//!
//! Loading checks everything `cepheid check` checks (syntax, the rules of
//! the language, the automaton's limits): a file with any error gives one
//! [`Error`] that renders every problem with its `path:line:column` and
//! the offending text underlined.

use std::path::{Path, PathBuf};

use crate::dsl::{Diagnostic, DiagnosticKind, Loaded};
use crate::error::{Error, ErrorKind, Location};
use crate::pattern::Pattern;

/// Patterns loaded from the pattern language, each checked and known to
/// compile. They are untyped: they read fields by name, so they run on
/// [`Record`](crate::Record)s and on any [`Event`](crate::Event) type that
/// has the fields they read (checked when added to an engine).
///
/// ```
/// use cepheid_engine::{Engine, Output, Record, Rules};
///
/// let rules = Rules::parse("rules.cep", r#"
///     pattern brute_force {
///         partition by user
///         within 10s
///         match fail{3} consecutive followed by success
///         where
///             fail:    type == "login" and not ok
///             success: type == "login" and ok
///     }
/// "#)?;
/// assert_eq!(rules.names().collect::<Vec<_>>(), ["brute_force"]);
///
/// let mut engine: Engine<Record> = Engine::new();
/// engine.add(&rules)?;
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
///
/// Errors point into the text:
///
/// ```
/// let err = cepheid_engine::Rules::parse("rules.cep", "pattern p {\n  match a b\n}").unwrap_err();
/// assert_eq!(err.kind(), cepheid_engine::ErrorKind::Syntax);
/// let at = err.location().unwrap();
/// assert_eq!((at.origin(), at.line()), ("rules.cep", 2));
/// assert!(err.to_string().contains("rules.cep:2:"), "{err}");
/// ```
///
/// `Rules` are `Clone` (the patterns, texts and diagnostics are copied), so
/// one loaded set can be added to several engines, or kept to build
/// another engine later:
///
/// ```
/// use cepheid_engine::{Engine, Record, Rules};
/// let rules = Rules::parse("r.cep", "pattern p { match a where a: n > 1 }")?;
/// let kept = rules.clone();
/// let mut engine: Engine<Record> = Engine::new();
/// engine.add(&rules)?;
/// assert_eq!(kept.names().collect::<Vec<_>>(), ["p"]);
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Rules {
    loaded: Loaded,
}

impl Rules {
    /// Loads a `.cep` file, or every `*.cep` file of a folder (sorted by
    /// name; hidden files skipped).
    pub fn load(path: impl AsRef<Path>) -> Result<Rules, Error> {
        Rules::load_all(&[path.as_ref()])
    }

    /// Loads several files and folders; pattern names must be unique across
    /// all of them.
    pub fn load_all<P: AsRef<Path>>(paths: &[P]) -> Result<Rules, Error> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        Rules::from_loaded(load_paths(&paths))
    }

    /// Parses pattern text; `origin` names it in error messages (a path, or
    /// something like `<config>`).
    pub fn parse(origin: &str, text: &str) -> Result<Rules, Error> {
        Rules::from_loaded(load_str(origin, text))
    }

    /// The rules of a [`Loaded`] set, or one error standing for all of its
    /// errors (warnings are kept, see [`Rules::warnings`]).
    pub fn from_loaded(loaded: Loaded) -> Result<Rules, Error> {
        match loaded_error(&loaded) {
            Some(e) => Err(e),
            None => Ok(Rules { loaded }),
        }
    }

    /// The patterns, in load order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.loaded.patterns
    }

    /// The pattern named `name`.
    pub fn get(&self, name: &str) -> Option<&Pattern> {
        self.loaded.patterns.iter().find(|p| p.name == name)
    }

    /// The names of the patterns, in load order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.loaded.patterns.iter().map(|p| p.name.as_str())
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.loaded.patterns.len()
    }

    /// No patterns at all?
    pub fn is_empty(&self) -> bool {
        self.loaded.patterns.is_empty()
    }

    /// The warnings (e.g. a `where` entry nothing uses), rendered like
    /// errors; empty when there are none.
    pub fn warnings(&self) -> String {
        self.loaded.render()
    }

    /// The loaded texts and diagnostics, for tools that show more than the
    /// patterns (the lower layer, [`crate::dsl`]).
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }
}

/// Loads one text named `origin` (a path or `<input>`), as
/// [`load_str`] does, and compiles each pattern to an
/// automaton once: what the compiler rejects (cycles of PROCEED edges,
/// path and state limits) is a diagnostic at the pattern, as everything
/// `cepheid check` reports.
pub fn load_str(origin: &str, src: &str) -> Loaded {
    let mut loaded = Loaded::with_check(compiles);
    loaded.add_str(origin, src);
    loaded
}

/// Loads raw bytes named `origin` (invalid UTF-8 is a diagnostic), each
/// pattern compiled once as [`load_str`] does.
pub fn load_bytes(origin: &str, bytes: &[u8]) -> Loaded {
    let mut loaded = Loaded::with_check(compiles);
    loaded.add_bytes(origin, bytes);
    loaded
}

/// Loads files and folders (every `*.cep` in a folder, sorted by name;
/// pattern names unique across all of them), each pattern compiled once as
/// [`load_str`] does.
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::with_check(compiles);
    for p in paths {
        loaded.add_path(p);
    }
    loaded
}

/// The check of [`Loaded::with_check`] that these loaders use: the pattern
/// compiles to an automaton (over [`Record`](crate::Record)s, whose fields
/// are any names).
pub fn compiles(p: &Pattern) -> Result<(), Diagnostic> {
    let mut fields = crate::record::FieldTable::new();
    match crate::nfa::Nfa::<crate::Record>::compile(p, &mut fields) {
        Ok(_) => Ok(()),
        Err(e) => {
            let kind = match e.kind {
                ErrorKind::Limit => DiagnosticKind::Limit,
                _ => DiagnosticKind::Pattern(crate::pattern::PatternErrorKind::Unsupported),
            };
            Err(Diagnostic::error(
                kind,
                if e.span.is_empty() { p.span } else { e.span },
                format!("pattern `{}` cannot be compiled: {}", p.name, e.message),
            ))
        }
    }
}

/// One error for all of `loaded`'s errors, or `None` when it has none.
pub(crate) fn loaded_error(loaded: &Loaded) -> Option<Error> {
    let errors: Vec<Error> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| diagnostic_error(loaded, d))
        .collect();
    (!errors.is_empty()).then(|| Error::many(errors))
}

/// A diagnostic as an [`Error`]: its kind, its place, its rendering.
fn diagnostic_error(loaded: &Loaded, d: &Diagnostic) -> Error {
    located(loaded, d, diagnostic_kind(d))
}

/// The error kind of a diagnostic.
fn diagnostic_kind(d: &Diagnostic) -> ErrorKind {
    match d.kind {
        DiagnosticKind::Syntax | DiagnosticKind::InvalidUtf8 | DiagnosticKind::NulByte => {
            ErrorKind::Syntax
        }
        DiagnosticKind::Limit => ErrorKind::Limit,
        DiagnosticKind::Io => ErrorKind::Io,
        _ => ErrorKind::Pattern,
    }
}

/// `d` as an error of `kind`, rendered with its source line, at its place.
fn located(loaded: &Loaded, d: &Diagnostic, kind: ErrorKind) -> Error {
    let mut error = Error::new(kind, d.message.clone()).rendered(d.render(&loaded.sources));
    if let Some(src) = loaded.sources.get(d.source) {
        let (line, column) = src.line_col(d.span.start as usize);
        error = error.at(Location::new(src.name.as_str(), line, column));
    }
    error
}

impl<E> crate::engine::sealed::Sealed<E> for Rules {
    fn ir_patterns(&self) -> Vec<&Pattern> {
        self.loaded.patterns.iter().collect()
    }

    /// Errors about a pattern (a field the event type lacks) point at its
    /// text, rendered like every other pattern error.
    fn locate(&self, index: usize, error: Error) -> Error {
        let (Some(&source), Some(span)) = (self.loaded.pattern_sources.get(index), error.span())
        else {
            return error;
        };
        let d =
            Diagnostic::error(DiagnosticKind::UnknownName, span, error.message()).in_source(source);
        located(&self.loaded, &d, error.kind()).with_span(span)
    }
}

impl<E> crate::engine::PatternSet<E> for Rules {}
