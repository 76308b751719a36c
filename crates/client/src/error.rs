//! A call's errors: the server's refusal ([`ApiError`]), no answer
//! ([`Unavailable`]), or a call that could not be made ([`Error::Invalid`]).

use std::fmt;

use cepheid_api::ErrorCode;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The server refused the request (a 4xx but 429): not retried.
    Api(ApiError),
    /// The server gave no answer the call could use: every call but a
    /// decision (which gets its fallback) ends so, and a decision without
    /// a fallback (`why: no_fallback`).
    Unavailable(Unavailable),
    /// The call's arguments are no request the API takes (an event that
    /// is not a JSON object): nothing was sent.
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(e) => e.fmt(f),
            Error::Unavailable(e) => e.fmt(f),
            Error::Invalid(message) => write!(f, "invalid call: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Error {
        Error::Api(e)
    }
}

impl From<Unavailable> for Error {
    fn from(e: Unavailable) -> Error {
        Error::Unavailable(e)
    }
}

/// The server refused the request: its status and its `Error` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (400, 401, 404, 405, 409, 413, 422...).
    pub status: u16,
    /// The body's `code`; `None` when the body was not the document's
    /// `Error` (a proxy's page, say: `message` then quotes it).
    pub code: Option<ErrorCode>,
    /// What is wrong, in the server's words.
    pub message: String,
    /// The request's field the error is about (`event.amount`).
    pub field: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} {code}: {}", self.status, self.message)?,
            None => write!(f, "{}: {}", self.status, self.message)?,
        }
        if let Some(field) = &self.field {
            write!(f, " (field `{field}`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// No answer the call could use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// The last failure's kind.
    pub why: Why,
    /// The attempts made (requests sent; not the scenes' fetch).
    pub attempts: u32,
    /// The last failure's message.
    pub message: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the service is unavailable ({}, after {} attempt{}): {}",
            self.why,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.message
        )
    }
}

impl std::error::Error for Unavailable {}

/// The kind of a failure (`docs/clients.md`, "A call"): a fallback's
/// `degraded_why` and an [`Unavailable`]'s `why`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Why {
    /// 429: past the server's queue bound.
    Overloaded,
    /// 503: the server cannot take requests now.
    Unavailable,
    /// A 5xx but 503, or a 2xx (or 1xx, 3xx) whose body is not the
    /// document's JSON.
    ServerError,
    /// No connection, or the connection lost before the answer.
    Unreachable,
    /// No answer within the attempt's timeout.
    Timeout,
    /// The breaker refused the call's first attempt: no request was sent.
    BreakerOpen,
    /// No fallback known for the scene (an [`Unavailable`] only).
    NoFallback,
}

impl Why {
    /// The contract's name (`timeout`, `breaker_open`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Overloaded => "overloaded",
            Why::Unavailable => "unavailable",
            Why::ServerError => "server_error",
            Why::Unreachable => "unreachable",
            Why::Timeout => "timeout",
            Why::BreakerOpen => "breaker_open",
            Why::NoFallback => "no_fallback",
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
