//! The seam between the HTTP front ([`crate::http`]) and the decision
//! service behind it: the front parses, validates, authenticates, limits
//! and counts; the [`Decider`] decides, records, remembers and says how
//! it is. Every type here is what crosses the seam, in the API
//! document's words (`docs/api/openapi.yaml`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::value::RawValue;

/// What the HTTP front asks of the service behind it. Each call is made on
/// the front's tokio threads; it must not block them (long work is awaited).
///
/// The futures of [`Decider::decide`] and [`Decider::record`] are spawned
/// by the front as tasks of their own: they run to completion even when
/// the client goes away before the answer (a decision once taken is
/// finished, and a retry waiting on it gets it). A panic in any method is
/// answered 500 (`internal`) and counted; the front keeps serving.
pub trait Decider: Send + Sync + 'static {
    /// `POST /v1/decide` (already parsed and validated as an envelope).
    fn decide(&self, call: DecideCall) -> BoxFuture<Result<Decided, ApiError>>;
    /// `POST /v1/events`.
    fn record(&self, calls: Vec<EventCall>) -> BoxFuture<Result<Recorded, ApiError>>;
    /// `GET /v1/decisions/{id}`: the Decision object's JSON bytes.
    fn decision(&self, decision_id: &str) -> Result<Vec<u8>, ApiError>;
    /// `GET /v1/scenes`.
    fn scenes(&self) -> ScenesView;
    /// `GET /readyz`: empty when ready, else the reasons.
    fn not_ready(&self) -> Vec<String>;
    /// The service's own metrics, appended to `/metrics`: Prometheus
    /// text in the OpenMetrics 1.0 form the front writes (`# HELP`, `#
    /// TYPE`, counters' samples ending in `_total`), without the final `#
    /// EOF` line, which the front writes after it
    /// (`prometheus_client::encoding::text::encode_registry` writes a
    /// `Registry` so).
    fn metrics(&self, out: &mut String);
}

/// A future the front awaits on its threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// `mode` of a decide request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Decide: log, apply, remember (the default).
    Decide,
    /// `dry_run`: evaluate as `decide` would and change no state.
    DryRun,
}

impl Mode {
    /// The document's name of the mode (`decide`, `dry_run`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Decide => "decide",
            Mode::DryRun => "dry_run",
        }
    }
}

/// A `POST /v1/decide` request, its envelope validated by the front.
#[derive(Debug)]
pub struct DecideCall {
    /// The scene (not empty; whether the rules have it is the service's).
    pub scene: String,
    /// The idempotency key: 1 to 256 characters.
    pub event_id: String,
    /// The event object as received, byte for byte.
    pub event: Box<RawValue>,
    /// `decide` unless the request said `dry_run`.
    pub mode: Mode,
    /// `deadline_ms` when given (else the service takes the scene's).
    pub deadline: Option<Duration>,
    /// `explain`: add `explanation` to the answer.
    pub explain: bool,
    /// When the front accepted the request (for `elapsed_us`): the moment
    /// its head was read, before its body.
    pub accepted: Instant,
}

/// One event of a `POST /v1/events` request, in the order given.
#[derive(Debug)]
pub struct EventCall {
    /// The idempotency key: 1 to 256 characters.
    pub event_id: String,
    /// The event object as received, byte for byte.
    pub event: Box<RawValue>,
}

/// A decision answered: the Decision object's JSON bytes (the service sets
/// every field, `elapsed_us` included), and what the front's metrics need.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The answer's body, a `Decision` of the document.
    pub body: Vec<u8>,
    /// The scene decided (the histogram's label `scene`).
    pub scene: Arc<str>,
    /// The outcome answered (the label `outcome`).
    pub outcome: Arc<str>,
    /// The answer is the scene's fallback (the label `degraded`).
    pub degraded: bool,
}

/// Events recorded: the `EventsRecorded` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Events logged and taken now.
    pub recorded: u64,
    /// Events whose `event_id` was recorded before (counted once).
    pub repeated: u64,
    /// The version of the rule set in force.
    pub rules_version: u64,
}

/// The document's error codes (`Error.error.code`), rendered snake_case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON.
    MalformedJson,
    /// 400 (and 405): the request is not what the document asks.
    InvalidRequest,
    /// 401: a token is asked for and none, or an unknown one, was given.
    Unauthorized,
    /// 404: no scene of that name.
    UnknownScene,
    /// 409: the `event_id` was used with other fields.
    EventIdReused,
    /// 413: over a size or field-count limit.
    TooLarge,
    /// 422: the event does not enter the scene.
    NotInScene,
    /// 429: past the queue bound.
    Overloaded,
    /// 503: the server cannot take requests now.
    Unavailable,
    /// 404: no such decision, or no such route.
    NotFound,
    /// 404: a decision older than the retention.
    Expired,
    /// 500: the server failed on this request (a bug, counted).
    Internal,
}

impl ErrorCode {
    /// Every code, in the document's order.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::MalformedJson,
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::UnknownScene,
        ErrorCode::EventIdReused,
        ErrorCode::TooLarge,
        ErrorCode::NotInScene,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
        ErrorCode::NotFound,
        ErrorCode::Expired,
        ErrorCode::Internal,
    ];

    /// The code as the document spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnknownScene => "unknown_scene",
            ErrorCode::EventIdReused => "event_id_reused",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::NotInScene => "not_in_scene",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Expired => "expired",
            ErrorCode::Internal => "internal",
        }
    }

    /// The status the document answers the code with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson | ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::UnknownScene | ErrorCode::NotFound | ErrorCode::Expired => 404,
            ErrorCode::EventIdReused => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::NotInScene => 422,
            ErrorCode::Overloaded => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: the `Error` schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status ([`ErrorCode::status`] unless there is a reason).
    pub status: u16,
    /// What a client switches on.
    pub code: ErrorCode,
    /// What is wrong, in words, naming the field and the value.
    pub message: String,
    /// The request's field the error is about (`event.amount`).
    pub field: Option<String>,
    /// `Retry-After` seconds (429 and 503 must have it; the front says 1
    /// when they have none).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with its code's status, no field and no `Retry-After`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The same, about the request's `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// The same, with `Retry-After: seconds`.
    pub fn with_retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// 429 `overloaded`, retry after `seconds`.
    pub fn overloaded(seconds: u32, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Overloaded, message).with_retry_after(seconds)
    }

    /// 503 `unavailable`, retry after `seconds`.
    pub fn unavailable(seconds: u32, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message).with_retry_after(seconds)
    }

    /// The answer's body: `{"error":{"code","message","field"}}`.
    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: ErrorCode,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
        }
        serde_json::to_vec(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        })
        .expect("an error serializes")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `GET /v1/scenes`: the `Scenes` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScenesView {
    /// The version of the rule set in force.
    pub rules_version: u64,
    /// How long a decision is kept for retries and `GET /v1/decisions/{id}`.
    pub retention_ms: u64,
    /// Each scene of the rule set in force.
    pub scenes: Vec<SceneView>,
}

/// One scene, as `GET /v1/scenes` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SceneView {
    /// `scene NAME`.
    pub name: String,
    /// Its outcomes, mildest first.
    pub outcomes: Vec<String>,
    /// The outcome when no rule decides.
    pub default: String,
    /// The answer when no decision comes within the deadline.
    pub fallback: String,
    /// The outcome of a late event.
    pub late: String,
    /// The default deadline of a decision.
    pub deadline_ms: u64,
    /// `all` or `first`.
    pub hit: String,
    /// The scene's rules, in order.
    pub rules: Vec<String>,
}
