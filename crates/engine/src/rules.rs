//! [`Rules`]: patterns written in the pattern language, loaded at run time
//! from `.cep` files or text, ready to add to an [`Engine`](crate::Engine).
//!
//! Loading checks everything `cepheid check` checks (syntax, the rules of
//! the language, the automaton's limits): a file with any error gives one
//! [`Error`] holding every problem, each shown by `Display` as one line
//! `path:line:column: message`, and drawn by [`Error::render`] with the
//! offending text underlined.

use std::any::Any;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dsl::{Diagnostic, DiagnosticKind, Loaded, Located};
use crate::error::{Error, ErrorKind, Location};
use crate::event::FieldResolver;
use crate::matcher::Cache;
use crate::nfa::Nfa;
use crate::pattern::Pattern;
use crate::record::FieldTable;
use crate::Record;

/// Patterns loaded from the pattern language, each checked and known to
/// compile. They are untyped: they read fields by name, so they run on
/// [`Record`]s and on any [`Event`](crate::Event) type that
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
///
/// Each pattern is compiled to its automaton once, as it is loaded: an
/// `Engine<Record>` that the rules are added to first shares those
/// automata rather than compiling them again (as engines share them with
/// [`Engine::add_shared`](crate::Engine::add_shared)).
#[derive(Clone, Default)]
pub struct Rules {
    loaded: Loaded,
    /// Each pattern's automaton over [`Record`]s, in order (`None`: not
    /// compiled, see [`compile_each`]): its fields
    /// numbered by one table and its conditions by one cache, in load
    /// order, as a new engine numbers them.
    automata: Vec<Option<Arc<Nfa<Record>>>>,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("loaded", &self.loaded)
            .field("automata", &self.automata.len())
            .finish()
    }
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
        Rules::compile(crate::dsl::load_paths(&paths))
    }

    /// Parses pattern text; `origin` names it in error messages (a path, or
    /// something like `<config>`).
    pub fn parse(origin: &str, text: &str) -> Result<Rules, Error> {
        Rules::compile(crate::dsl::load_str(origin, text))
    }

    /// The rules of a [`Loaded`] set, or one error standing for all of its
    /// errors (warnings are kept, see [`Rules::warnings`]). Its patterns
    /// are compiled here, once (what the compiler rejects is an error at
    /// the pattern): give it a set loaded by the language alone
    /// (`cepheid_syntax::load_paths`), or by this crate's [`check`]ed
    /// loaders when their diagnostics are wanted first.
    pub fn from_loaded(loaded: Loaded) -> Result<Rules, Error> {
        Rules::compile(loaded)
    }

    /// The rules of a set [`check`]ed already (its diagnostics said, say),
    /// with the automata the check compiled: nothing is compiled again.
    /// One error for all of its errors, as [`Rules::from_loaded`].
    ///
    /// ```
    /// use cepheid_engine::{rules, Rules};
    /// let mut loaded = cepheid_syntax::load_str("r.cep", "pattern p { match a where a: n > 1 }");
    /// let checked = rules::check(&mut loaded);
    /// assert!(loaded.render().is_empty());
    /// let rules = Rules::from_checked(loaded, checked)?;
    /// assert_eq!(rules.len(), 1);
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn from_checked(loaded: Loaded, checked: Checked) -> Result<Rules, Error> {
        if checked.0.len() != loaded.patterns.len() {
            // Not this set's check (or its patterns changed since).
            return Rules::compile(loaded);
        }
        match loaded_error(&loaded) {
            Some(e) => Err(e),
            None => Ok(Rules {
                loaded,
                automata: checked.0,
            }),
        }
    }

    /// Compiles `loaded`'s patterns once, keeping their automata.
    fn compile(mut loaded: Loaded) -> Result<Rules, Error> {
        let automata = compile_each(&mut loaded);
        match loaded_error(&loaded) {
            Some(e) => Err(e),
            None => Ok(Rules { loaded, automata }),
        }
    }

    /// The patterns, in load order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.loaded.patterns
    }

    /// The scenes the texts declared (`docs/language.md` §11.3), in load
    /// order.
    pub fn scenes(&self) -> &[crate::scene::Scene] {
        &self.loaded.scenes
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
/// [`crate::dsl::load_str`] does, and [`check`]s it: what the compiler
/// rejects (cycles of PROCEED edges, path and state limits) is a
/// diagnostic at the pattern, as everything `cepheid check` reports.
pub fn load_str(origin: &str, src: &str) -> Loaded {
    let mut loaded = crate::dsl::load_str(origin, src);
    check(&mut loaded);
    loaded
}

/// Loads raw bytes named `origin` (invalid UTF-8 is a diagnostic), and
/// [`check`]s them as [`load_str`] does.
pub fn load_bytes(origin: &str, bytes: &[u8]) -> Loaded {
    let mut loaded = crate::dsl::load_bytes(origin, bytes);
    check(&mut loaded);
    loaded
}

/// Loads files and folders (every `*.cep` in a folder, sorted by name;
/// pattern names unique across all of them), and [`check`]s them as
/// [`load_str`] does.
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let mut loaded = crate::dsl::load_paths(paths);
    check(&mut loaded);
    loaded
}

/// Compiles each pattern of `loaded` to an automaton over [`Record`]s
/// (whose fields are any names), once: a pattern the compiler rejects is
/// left out, its diagnostic placed among the others
/// ([`Loaded::check_each`]), as `cepheid check` reports it. A set checked
/// already is checked again, and changes no more. Returns the automata,
/// which [`Rules::from_checked`] keeps rather than compiling them again.
pub fn check(loaded: &mut Loaded) -> Checked {
    Checked(compile_each(loaded))
}

/// The automata [`check`] compiled, for [`Rules::from_checked`] (dropped
/// when only the diagnostics are wanted).
#[derive(Clone, Default)]
pub struct Checked(Vec<Option<Arc<Nfa<Record>>>>);

impl fmt::Debug for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checked({} automata)", self.0.len())
    }
}

/// [`check`]: the automata of the patterns kept, in order, with
/// their fields numbered by one table and their conditions by one cache,
/// as a new engine numbers them (`None` for a pattern whose key the table
/// cannot resolve: the engine says why when it is added).
fn compile_each(loaded: &mut Loaded) -> Vec<Option<Arc<Nfa<Record>>>> {
    let mut fields = FieldTable::new();
    let mut conditions = Cache::new();
    loaded.check_each(|p| {
        // The key first, as an engine resolves it.
        if p.partition_by
            .iter()
            .any(|path| fields.resolve(path).is_err())
        {
            return Ok(None);
        }
        match Nfa::<Record>::compile(p, &mut fields) {
            Ok(mut nfa) => {
                conditions.share_conditions(&mut nfa);
                Ok(Some(Arc::new(nfa)))
            }
            Err(e) => Err(compile_error(p, e)),
        }
    })
}

/// A pattern the compiler rejects, as a diagnostic at it.
fn compile_error(p: &Pattern, e: crate::nfa::CompileError) -> Diagnostic {
    let kind = match e.kind {
        ErrorKind::Limit => DiagnosticKind::Limit,
        _ => DiagnosticKind::Pattern(crate::pattern::PatternErrorKind::Unsupported),
    };
    Diagnostic::error(
        kind,
        if e.span.is_empty() { p.span } else { e.span },
        format!("pattern `{}` cannot be compiled: {}", p.name, e.message),
    )
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
    let mut error = Error::new(kind, d.message.clone())
        .with_excerpt(Arc::new(Located::new(d, &loaded.sources)));
    if let Some(src) = loaded.sources.get(d.source) {
        let (line, column) = src.line_col(d.span.start as usize);
        error = error.at(Location::new(src.name.as_str(), line, column));
    }
    error
}

impl<E: 'static> crate::engine::sealed::Sealed<E> for Rules {
    fn texts(&self) -> Option<std::sync::Arc<[(String, String)]>> {
        let texts = self.loaded.sources.iter();
        Some(texts.map(|s| (s.name.clone(), s.text.clone())).collect())
    }

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

    /// The lists and indicators the texts declared.
    fn declarations(&self) -> Option<&crate::lookup::Declarations> {
        Some(&self.loaded.declarations)
    }

    /// The scenes the texts declared.
    fn scenes(&self) -> &[crate::scene::Scene] {
        &self.loaded.scenes
    }

    /// The automaton compiled at load, when `E` is [`Record`].
    fn compiled(&self, index: usize) -> Option<&Arc<Nfa<E>>> {
        let automata: &dyn Any = &self.automata;
        automata
            .downcast_ref::<Vec<Option<Arc<Nfa<E>>>>>()
            .and_then(|a| a.get(index)?.as_ref())
    }
}

impl<E: 'static> crate::engine::PatternSet<E> for Rules {}
