//! What stops a lab command: [`Error`], of an [`ErrorKind`].

use std::fmt;

/// What stopped a lab command: its kind, and what went wrong (a run's
/// error, a Kafka error, or a message), with what it was doing. (One
/// pointer wide: a `Result` of it stays small.)
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    /// What the command was doing, said before the cause (`rules
    /// (r.cep): `), or empty.
    context: String,
    cause: Cause,
}

/// The kinds of [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Options the command does not take, or a key it cannot read.
    Usage,
    /// A rule set with errors (told as its diagnostics).
    Rules,
    /// A file that cannot be read or written, or a thread that cannot
    /// start.
    Io,
    /// The run of a rule set could not start, or stopped
    /// ([`Error::run_error`]).
    Run,
    /// Kafka: the range cannot be opened or read
    /// (`Error::kafka_error`).
    Kafka,
}

#[derive(Debug)]
enum Cause {
    Text(String),
    /// Told already, through [`Events::tell`](crate::Events::tell) (the
    /// rule set's diagnostics).
    Told,
    Run(cepheid_runtime::Error),
    #[cfg(feature = "kafka")]
    Kafka(cepheid_kafka::KafkaError),
}

impl Error {
    /// An error of `kind` that `message` says.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            context: String::new(),
            cause: Cause::Text(message.into()),
        }))
    }

    /// An error of `kind` told already (the rule set's diagnostics).
    pub(crate) fn told(kind: ErrorKind) -> Error {
        Error(Box::new(Inner {
            kind,
            context: String::new(),
            cause: Cause::Told,
        }))
    }

    /// The run's error `e`, said after `context`.
    pub(crate) fn run(context: impl Into<String>, e: cepheid_runtime::Error) -> Error {
        Error(Box::new(Inner {
            kind: ErrorKind::Run,
            context: context.into(),
            cause: Cause::Run(e),
        }))
    }

    /// The run's error `e` as an error of `kind`, said after `context`.
    pub(crate) fn run_as(
        kind: ErrorKind,
        context: impl Into<String>,
        e: cepheid_runtime::Error,
    ) -> Error {
        Error(Box::new(Inner {
            kind,
            context: context.into(),
            cause: Cause::Run(e),
        }))
    }

    /// The Kafka error `e`.
    #[cfg(feature = "kafka")]
    pub(crate) fn kafka(e: cepheid_kafka::KafkaError) -> Error {
        Error(Box::new(Inner {
            kind: ErrorKind::Kafka,
            context: String::new(),
            cause: Cause::Kafka(e),
        }))
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// What the command was doing, said before the cause (`old (r.cep): `;
    /// empty when nothing is).
    pub fn context(&self) -> &str {
        &self.0.context
    }

    /// The run's error, when the run of a rule set failed.
    pub fn run_error(&self) -> Option<&cepheid_runtime::Error> {
        match &self.0.cause {
            Cause::Run(e) => Some(e),
            _ => None,
        }
    }

    /// The Kafka error, when the range could not be opened or read.
    #[cfg(feature = "kafka")]
    pub fn kafka_error(&self) -> Option<&cepheid_kafka::KafkaError> {
        match &self.0.cause {
            Cause::Kafka(e) => Some(e),
            _ => None,
        }
    }

    /// Was it told already, through [`Events::tell`](crate::Events::tell)
    /// (the rule set's diagnostics), so that nothing more need be said?
    pub fn was_told(&self) -> bool {
        matches!(self.0.cause, Cause::Told)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.context)?;
        match &self.0.cause {
            Cause::Text(text) => f.write_str(text),
            Cause::Told => match self.0.kind {
                ErrorKind::Io => {
                    f.write_str("the rule set cannot be read (its diagnostics say why)")
                }
                _ => f.write_str("the rule set has errors (its diagnostics say which)"),
            },
            Cause::Run(e) => write!(f, "{e}"),
            #[cfg(feature = "kafka")]
            Cause::Kafka(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.cause {
            Cause::Run(e) => Some(e),
            #[cfg(feature = "kafka")]
            Cause::Kafka(e) => Some(e),
            _ => None,
        }
    }
}
