//! # cepheid-api: the documents of `cepheid serve`'s HTTP API
//!
//! The request and answer bodies of `docs/api/openapi.yaml` (issue 63) as
//! `serde` types, shared by the server (`cepheid-serve`) and its Rust
//! client (`cepheid-client`). Each type is the document's schema of the
//! same name; its fields are the schema's properties, spelled as the
//! document spells them, optional (`Option`) exactly where the document
//! does not require them; a closed schema (`additionalProperties: false`)
//! is a type that refuses unknown fields (`deny_unknown_fields`). The
//! crate's test `tests/openapi.rs` reads the document and checks every
//! schema against its type, so that neither drifts from the other.
//!
//! | route | request | answer |
//! |---|---|---|
//! | `POST /v1/decide` | [`DecideRequest`] | [`Decision`] |
//! | `POST /v1/events` | [`EventsRequest`] | [`EventsRecorded`] |
//! | `POST /v1/lists/{list}` | [`ListChange`] | [`ListChanged`] |
//! | `GET /v1/decisions/{id}` | | [`Decision`] |
//! | `GET /v1/scenes` | | [`Scenes`] |
//! | `GET /healthz`, `GET /readyz` | | [`Health`], [`Readiness`] |
//! | any error | | [`ErrorBody`] ([`ErrorCode`]) |
//!
//! Numbers a rule computes (`score`) are kept as the server wrote them
//! ([`serde_json::Number`]: `70` stays `70`, not `70.0`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

use serde::{Deserialize, Serialize};

/// An event: its fields as a `cepheid run` event line holds them (the
/// schema `Event`, an open object).
pub type Event = serde_json::Map<String, serde_json::Value>;

/// What a rule's conditions read of lists and indicators, by call
/// (`card_payments_10m(card)`): the schema `Reads`, an open object.
pub type Reads = serde_json::Map<String, serde_json::Value>;

/// `mode` of a decide request, and of the decision it got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decide: log, apply, remember (the default).
    #[default]
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

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/decide`: decide one event in one scene (the schema
/// `DecideRequest`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// The scene the event enters (`scene NAME` of the rules).
    pub scene: String,
    /// The event's id, the idempotency key of the request (1 to 256
    /// characters).
    pub event_id: String,
    /// The event's fields.
    pub event: Event,
    /// `dry_run`: evaluate and change no state (`decide` when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The answer's deadline in milliseconds; the scene's when not given.
    /// `0` always gets the fallback, degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Adds `explanation`, rule by rule (`false` when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<bool>,
}

/// `POST /v1/events`: record events without a decision (the schema
/// `EventsRequest`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// One event or more, taken in this order.
    pub events: Vec<EventItem>,
}

/// One event of an [`EventsRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventItem {
    /// The event's id, its idempotency key.
    pub event_id: String,
    /// The event's fields.
    pub event: Event,
}

/// The answer of `POST /v1/events` (the schema `EventsRecorded`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRecorded {
    /// Events logged and taken now.
    pub recorded: u64,
    /// Events whose `event_id` was recorded before (counted once).
    pub repeated: u64,
    /// The version of the rule set in force.
    pub rules_version: u64,
}

/// `POST /v1/lists/{list}`: a change of a list the rules declare (the
/// schema `ListChange`): `remove` first, then `add`, at least one of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListChange {
    /// Values to add (strings, numbers or booleans: as an event's field
    /// holds them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<Vec<serde_json::Value>>,
    /// When the added values expire: milliseconds since the epoch, or an
    /// RFC 3339 time. Without it, they live for the list's `for` from
    /// now, or until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Expires>,
    /// Values to remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<serde_json::Value>>,
}

/// When added list values expire ([`ListChange::expires`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expires {
    /// Milliseconds since the epoch.
    Millis(i64),
    /// An RFC 3339 time (`2026-12-01T00:00:00Z`).
    Time(String),
}

/// The answer of `POST /v1/lists/{list}` (the schema `ListChanged`): the
/// change is logged, and every request logged after it sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListChanged {
    /// The list changed.
    pub list: String,
    /// Values added (or given a new expiry).
    pub added: u64,
    /// Values removed.
    pub removed: u64,
    /// When the added values expire, in milliseconds since the epoch
    /// (none: until removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// The log's entry that holds the change (its last, when it took
    /// several).
    pub entry: u64,
}

/// Why the server's decision is degraded to the scene's fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DegradedWhy {
    /// The decision could not be made within the request's deadline.
    Deadline,
    /// The request could not be logged.
    LogWriteFailed,
}

impl DegradedWhy {
    /// The document's name (`deadline`, `log_write_failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            DegradedWhy::Deadline => "deadline",
            DegradedWhy::LogWriteFailed => "log_write_failed",
        }
    }
}

/// A decision: the answer of `POST /v1/decide` and of `GET
/// /v1/decisions/{id}` (the schema `Decision`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The decision's id, from the log's sequence number (`d-42`).
    pub decision_id: String,
    /// The scene decided.
    pub scene: String,
    /// The event's id.
    pub event_id: String,
    /// One of the scene's outcomes.
    pub outcome: String,
    /// The summed `score` of the rules that count.
    pub score: serde_json::Number,
    /// The scene's rules that fired on the event, not shadow, in the
    /// scene's order.
    pub rules: Vec<FiredRule>,
    /// The scene's shadow rules that fired (never counted).
    pub shadow: Vec<FiredRule>,
    /// The list check that decided the outcome (`device in
    /// blocked_devices`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Fields the scene's rules read that the event lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<String>>,
    /// The answer is the scene's fallback, not the rules' resolution.
    pub degraded: bool,
    /// Why it is degraded (only when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_why: Option<DegradedWhy>,
    /// Shadow rules were not run for this request (overload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_shed: Option<bool>,
    /// A retry of an `event_id` decided before: the first answer, again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated: Option<bool>,
    /// The version of the rule set that decided.
    pub rules_version: u64,
    /// `decide` or `dry_run`.
    pub mode: Mode,
    /// The request's ingestion time (milliseconds since the epoch,
    /// monotone).
    pub stamp: i64,
    /// The server's time on the request, accepted to answered
    /// (microseconds).
    pub elapsed_us: u64,
    /// With `explain`: each rule of the scene and what it did on the
    /// event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<Explained>>,
}

/// A rule that fired (the schema `FiredRule`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiredRule {
    /// The pattern's name (`rule@scene` for a rule with parameters).
    pub rule: String,
    /// The rule's version (from 1).
    pub version: u64,
    /// Its action (an outcome of the scene), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Its score, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<serde_json::Number>,
    /// `false` for a rule that fired but does not count (`hit first`, a
    /// shadow rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<bool>,
    /// What its conditions read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<Reads>,
}

/// One rule of the scene in a decision's `explanation` (an open object:
/// fields beyond these are kept in [`Explained::more`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explained {
    /// The rule's name.
    pub rule: String,
    /// Whether it fired on the event.
    pub fired: bool,
    /// Why it did or did not, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Any other field the server wrote.
    #[serde(flatten)]
    pub more: serde_json::Map<String, serde_json::Value>,
}

/// The answer of `GET /v1/scenes`: the scenes of the rule set in force
/// (the schema `Scenes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenes {
    /// The version of the rule set in force.
    pub rules_version: u64,
    /// How long a decision is kept for retries and `GET
    /// /v1/decisions/{id}` (milliseconds).
    pub retention_ms: u64,
    /// Each scene of the rule set.
    pub scenes: Vec<Scene>,
}

impl Scenes {
    /// The scene named `name`, if the rule set has it.
    pub fn get(&self, name: &str) -> Option<&Scene> {
        self.scenes.iter().find(|s| s.name == name)
    }
}

/// One scene, as `GET /v1/scenes` shows it (the schema `Scene`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
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
    /// The default deadline of a decision (milliseconds).
    pub deadline_ms: u64,
    /// How the scene's rules resolve an outcome.
    pub hit: Hit,
    /// The scene's rules, in order.
    pub rules: Vec<String>,
}

/// A scene's hit policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hit {
    /// Every rule that fires counts; the harshest action wins.
    All,
    /// The first rule that fires, in the scene's order, decides.
    First,
}

/// The answer of `GET /healthz` (the schema `Health`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Always `ok`.
    pub status: HealthStatus,
}

/// The one status of [`Health`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The server is up.
    Ok,
}

/// The answer of `GET /readyz` (the schema `Readiness`), with 200 or 503.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// The server takes requests.
    pub ready: bool,
    /// Why not (empty when ready).
    pub reasons: Vec<String>,
}

/// An error answer's body (the schema `Error`): `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What an [`ErrorBody`] says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// What a client switches on.
    pub code: ErrorCode,
    /// What is wrong, in words, naming the field and the value.
    pub message: String,
    /// The request's field the error is about (`event.amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The document's error codes (`Error.error.code`), rendered snake_case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    /// The status the document answers the code with (`invalid_request`
    /// is also the 405 of a known path with another method).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_written_as_the_document_spells_them() {
        for code in ErrorCode::ALL {
            let written = serde_json::to_string(&code).unwrap();
            assert_eq!(written, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&written).unwrap(), code);
        }
        for mode in [Mode::Decide, Mode::DryRun] {
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{mode}\""));
        }
        for why in [DegradedWhy::Deadline, DegradedWhy::LogWriteFailed] {
            assert_eq!(
                serde_json::to_string(&why).unwrap(),
                format!("\"{}\"", why.as_str())
            );
        }
    }

    #[test]
    fn an_error_body_leaves_out_a_field_it_has_not() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::UnknownScene,
                message: "no scene `x`".into(),
                field: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"unknown_scene","message":"no scene `x`"}}"#
        );
    }
}

// The crate page's example is a doc test too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
