//! The crate's one error type, [`Error`].

use std::fmt;
use std::sync::Arc;

/// What went wrong, broadly. New kinds may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Pattern text that does not parse.
    Syntax,
    /// A pattern that parses (or was built in code) but breaks a rule of the
    /// language: a `not` after an optional element, a duplicate stage, ...
    Pattern,
    /// A limit was exceeded: automaton size, nesting, regex size, file size.
    Limit,
    /// A field a pattern reads (or partitions by) does not exist for the
    /// event type.
    Field,
    /// A file, folder or stream could not be read or written.
    Io,
    /// An input event or watermark line that could not be decoded.
    Input,
    /// An option or argument that makes no sense (a negative delay, ...).
    Config,
    /// Several errors at once, of different kinds; see [`Error::errors`].
    Multiple,
    /// An engine snapshot that cannot be restored
    /// (`Engine::restore` of `cepheid_engine`): not a snapshot, a
    /// format version this build does not read, corrupt or truncated,
    /// taken with other patterns or another configuration, inconsistent;
    /// or an engine that is not fresh.
    Snapshot,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::Pattern => "invalid pattern",
            ErrorKind::Limit => "limit exceeded",
            ErrorKind::Field => "unknown field",
            ErrorKind::Io => "input/output error",
            ErrorKind::Input => "malformed input",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Multiple => "several errors",
            ErrorKind::Snapshot => "unusable snapshot",
        })
    }
}

/// Where an error is: a place in pattern text (`origin` is the file name
/// given when loading) or in input (`origin` is the input's name, `line` its
/// line number, `column` 1 when unknown). Lines and columns count from 1;
/// columns count characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    origin: Arc<str>,
    line: usize,
    column: usize,
}

impl Location {
    /// A location (lines and columns from 1).
    pub fn new(origin: impl Into<Arc<str>>, line: usize, column: usize) -> Location {
        Location {
            origin: origin.into(),
            line,
            column,
        }
    }

    /// The file or input name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The line, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column in characters, from 1.
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// The pattern text an [`Error`] points into, kept as data and drawn on
/// demand: the lines around the error's place with the offending text
/// underlined, other places it names, a hint. The syntax crate's
/// `cepheid_syntax::Located` (a diagnostic with the texts it points into)
/// is one; how it draws (`annotate-snippets`, rustc's renderer, or a plain
/// one) is the syntax crate's choice, made by its features, and shows only
/// in [`Error::render`], never in an error's `Display`.
pub trait Excerpt: fmt::Debug + Send + Sync + 'static {
    /// The error drawn with its source lines: a title line
    /// (`error: path:line:column: message`), the quoted lines with the
    /// offending text underlined, and any hint.
    fn render(&self) -> String;
}

/// The crate's error: a kind, a message, maybe a location, maybe several
/// errors at once.
///
/// Every fallible public function returns [`Error`]: it implements
/// `std::error::Error + Send + Sync + 'static`, so `?` works from a
/// `main() -> Result<(), Box<dyn std::error::Error>>`; it has a
/// [`kind`](Error::kind) to branch on, a [`location`](Error::location) when
/// the problem is at a place in pattern text or input, and it may stand for
/// several problems at once (every error of a `.cep` file), which
/// [`Display`](std::fmt::Display) writes one line each
/// (`path:line:column: message`). It holds what went wrong as data, never
/// text drawn for a terminal: an error in pattern text keeps an
/// [`Excerpt`] of that text, which [`Error::render`] draws with the
/// offending text underlined when a program (the `cepheid` command) asks.
///
/// ```
/// use cepheid_core::{Error, ErrorKind, Location};
/// let err = Error::new(ErrorKind::Syntax, "expected a condition")
///     .at(Location::new("rules.cep", 3, 14));
/// assert_eq!(err.kind(), ErrorKind::Syntax);
/// assert_eq!(err.location().unwrap().line(), 3);
/// assert_eq!(err.to_string(), "rules.cep:3:14: expected a condition");
/// let boxed: Box<dyn std::error::Error + Send + Sync> = err.into();
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    location: Option<Location>,
    /// Where in pattern text (a byte span), for the loader to turn into a
    /// location.
    span: Option<crate::primitives::Span>,
    /// The pattern text the error points into, drawn only when
    /// [`Error::render`] asks.
    excerpt: Option<Arc<dyn Excerpt>>,
    /// For an error that stands for several: each of them.
    errors: Vec<Error>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with a plain-words message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                location: None,
                span: None,
                excerpt: None,
                errors: Vec::new(),
                source: None,
            }),
        }
    }

    /// The same error, at `location`.
    pub fn at(mut self, location: Location) -> Error {
        self.inner.location = Some(location);
        self
    }

    /// The same error, at a byte span of pattern text (ignored when empty).
    pub fn with_span(mut self, span: crate::primitives::Span) -> Error {
        if !span.is_empty() {
            self.inner.span = Some(span);
        }
        self
    }

    /// The byte span of pattern text, when known.
    pub fn span(&self) -> Option<crate::primitives::Span> {
        self.inner.span
    }

    /// The same error, pointing into `excerpt`: the pattern text around
    /// its place, which [`Error::render`] draws (the syntax crate's
    /// `Located` diagnostics are excerpts).
    pub fn with_excerpt(mut self, excerpt: Arc<dyn Excerpt>) -> Error {
        self.inner.excerpt = Some(excerpt);
        self
    }

    /// The pattern text this error points into, when it has one.
    pub fn excerpt(&self) -> Option<&dyn Excerpt> {
        self.inner.excerpt.as_deref()
    }

    /// The error drawn for a person: each error it stands for with the
    /// lines of pattern text it points into and the offending text
    /// underlined (as [`Excerpt::render`] draws it), or as its
    /// [`Display`](fmt::Display) line when it has no excerpt; one after the
    /// other, without a final newline. `Display` is the short form
    /// (`path:line:column: message`): what goes into a log line or a
    /// message of a program; `render` is what a terminal shows.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use cepheid_core::{Error, ErrorKind, Location};
    /// let err = Error::new(ErrorKind::Syntax, "expected a condition")
    ///     .at(Location::new("rules.cep", 3, 14));
    /// assert_eq!(err.render(), "rules.cep:3:14: expected a condition");
    /// # Ok(()) }
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, e) in self.errors().iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            match &e.inner.excerpt {
                Some(excerpt) => out.push_str(excerpt.render().trim_end()),
                None => out.push_str(&e.to_string()),
            }
        }
        out
    }

    /// The same error, caused by `source`.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// One error standing for all of `errors` (which must not be empty; one
    /// error is returned as it is). Its kind is theirs when they agree,
    /// [`ErrorKind::Multiple`] otherwise; its location is the first one's.
    pub fn many(mut errors: Vec<Error>) -> Error {
        assert!(!errors.is_empty(), "Error::many of no errors");
        if errors.len() == 1 {
            return errors.pop().expect("one error");
        }
        let kind = errors[0].kind();
        let kind = if errors.iter().all(|e| e.kind() == kind) {
            kind
        } else {
            ErrorKind::Multiple
        };
        let mut error = Error::new(kind, format!("{} errors", errors.len()));
        error.inner.location = errors[0].location().cloned();
        error.inner.errors = errors;
        error
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message, in plain words, without location (for an error that
    /// stands for several, `"N errors"`).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Where, when known (for several errors, the first one's place).
    pub fn location(&self) -> Option<&Location> {
        self.inner.location.as_ref()
    }

    /// The errors this one stands for: itself alone, or each of several.
    pub fn errors(&self) -> &[Error] {
        if self.inner.errors.is_empty() {
            std::slice::from_ref(self)
        } else {
            &self.inner.errors
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.inner.errors.is_empty() {
            for (i, e) in self.inner.errors.iter().enumerate() {
                if i > 0 {
                    f.write_str("\n")?;
                }
                write!(f, "{e}")?;
            }
            return Ok(());
        }
        match &self.inner.location {
            Some(at) => write!(f, "{at}: {}", self.inner.message),
            None => f.write_str(&self.inner.message),
        }
    }
}

/// `{:?}` is what a person needs when `?` in a `main` returning
/// `Result<(), Box<dyn Error>>` prints it (Rust prints the error's `Debug`
/// form there): the [`Display`](fmt::Display) text, its kind, and the chain
/// of causes. `{:#?}` is the structure (kind, message, location, errors).
///
/// ```
/// use cepheid_core::{Error, ErrorKind, Location};
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let err = Error::new(ErrorKind::Io, "cannot read `rules/`")
///     .at(Location::new("rules/", 1, 1))
///     .caused_by(io);
/// assert_eq!(
///     format!("{err:?}"),
///     "rules/:1:1: cannot read `rules/`\n\n(input/output error)\n\nCaused by:\n    no such file"
/// );
/// assert!(format!("{err:#?}").starts_with("Error {"));
/// ```
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            write!(f, "{self}\n\n({})", self.inner.kind)?;
            let mut cause = std::error::Error::source(self);
            if cause.is_some() {
                f.write_str("\n\nCaused by:")?;
            }
            while let Some(c) = cause {
                write!(f, "\n    {c}")?;
                cause = c.source();
            }
            return Ok(());
        }
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(at) = &self.inner.location {
            d.field("location", &format_args!("{at}"));
        }
        if !self.inner.errors.is_empty() {
            d.field("errors", &self.inner.errors);
        }
        d.finish()
    }
}

/// Writes `error` as a person should read it where `?` in a `main`
/// returning `Result<(), Box<dyn Error>>` prints it (Rust prints the
/// error's `Debug` there): its [`Display`](fmt::Display) text, then under
/// `Caused by:` each cause whose text the lines before do not already say.
/// The error types of the layers above write their `Debug` with it, so
/// that no struct dump reaches a user.
///
/// ```
/// use std::fmt;
/// #[derive(Clone)]
/// struct CannotOpen(std::sync::Arc<std::io::Error>);
/// impl fmt::Display for CannotOpen {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("cannot open the rules")
///     }
/// }
/// impl fmt::Debug for CannotOpen {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         cepheid_core::error::write_report(self, f)
///     }
/// }
/// impl std::error::Error for CannotOpen {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&*self.0)
///     }
/// }
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let e = CannotOpen(std::sync::Arc::new(io));
/// assert_eq!(format!("{e:?}"), "cannot open the rules\n\nCaused by:\n    no such file");
/// ```
pub fn write_report(
    error: &(dyn std::error::Error + 'static),
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let mut said = error.to_string();
    f.write_str(&said)?;
    let mut heading = false;
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !said.contains(&text) {
            if !heading {
                f.write_str("\n\nCaused by:")?;
                heading = true;
            }
            write!(f, "\n    {text}")?;
            said.push('\n');
            said.push_str(&text);
        }
        cause = c.source();
    }
    Ok(())
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, e.to_string()).caused_by(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn is_a_std_error_and_sendable() {
        assert_error::<Error>();
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Box::new(Error::new(ErrorKind::Config, "x"));
        assert_eq!(boxed.to_string(), "x");
    }

    #[test]
    fn many_renders_each_and_keeps_a_common_kind() {
        let a = Error::new(ErrorKind::Pattern, "a").at(Location::new("f.cep", 1, 2));
        let b = Error::new(ErrorKind::Pattern, "b").at(Location::new("f.cep", 3, 4));
        let both = Error::many(vec![a, b]);
        assert_eq!(both.kind(), ErrorKind::Pattern);
        assert_eq!(both.to_string(), "f.cep:1:2: a\nf.cep:3:4: b");
        assert_eq!(both.errors().len(), 2);
        assert_eq!(both.location().unwrap().line(), 1);
        let mixed = Error::many(vec![
            Error::new(ErrorKind::Pattern, "a"),
            Error::new(ErrorKind::Io, "b"),
        ]);
        assert_eq!(mixed.kind(), ErrorKind::Multiple);
        let one = Error::many(vec![Error::new(ErrorKind::Io, "c")]);
        assert_eq!(one.errors().len(), 1);
        assert_eq!(one.to_string(), "c");
    }

    #[test]
    fn io_errors_keep_their_source() {
        use std::error::Error as _;
        let e = Error::from(std::io::Error::other("disk"));
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.source().is_some());
    }
}

/// A structure read back from outside (a snapshot) breaks one of its
/// rules: what is wrong, in words (`partition number 3 is lost`). The
/// `check` methods that validate restored state return it, so that
/// driving the state afterwards cannot panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inconsistent(String);

impl Inconsistent {
    /// What is wrong.
    pub fn what(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Inconsistent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Inconsistent {}

impl From<String> for Inconsistent {
    fn from(what: String) -> Inconsistent {
        Inconsistent(what)
    }
}

impl From<&str> for Inconsistent {
    fn from(what: &str) -> Inconsistent {
        Inconsistent(what.to_string())
    }
}

impl From<Inconsistent> for String {
    fn from(e: Inconsistent) -> String {
        e.0
    }
}
