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
    /// `POST /v1/lists/{list}` (the envelope validated): answered once
    /// the change is logged.
    fn change_list(&self, call: ListCall) -> BoxFuture<Result<ListChanged, ApiError>>;
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

/// `mode` of a decide request: the API's type (`cepheid-api`).
pub use cepheid_api::Mode;

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

/// A `POST /v1/lists/{list}` request, its envelope validated by the front
/// (whether the rules declare the list is the service's).
#[derive(Debug)]
pub struct ListCall {
    /// The list, as the path names it (percent-decoded).
    pub list: String,
    /// The values to add, each as its JSON text (`"d-81"`, `42`, `true`),
    /// as a `$list` record holds them.
    pub add: Vec<String>,
    /// The values to remove, as JSON texts; removed before those added.
    pub remove: Vec<String>,
    /// When the added values expire (milliseconds since the epoch), when
    /// the request said.
    pub expires: Option<i64>,
}

/// A list change logged: the `ListChanged` answer (`cepheid-api`'s).
pub type ListChanged = cepheid_api::ListChanged;

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

/// Events recorded: the `EventsRecorded` answer (`cepheid-api`'s).
pub type Recorded = cepheid_api::EventsRecorded;

/// The document's error codes (`Error.error.code`): `cepheid-api`'s, with
/// the status each is answered with ([`ErrorCode::status`]).
pub use cepheid_api::ErrorCode;

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

    /// The answer's body: `{"error":{"code","message","field"}}`, the
    /// API's [`cepheid_api::ErrorBody`].
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&cepheid_api::ErrorBody {
            error: cepheid_api::ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
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

/// `GET /v1/scenes`: the `Scenes` answer (`cepheid-api`'s).
pub type ScenesView = cepheid_api::Scenes;

/// One scene, as `GET /v1/scenes` shows it (`cepheid-api`'s `Scene`).
pub type SceneView = cepheid_api::Scene;

#[cfg(test)]
mod tests {
    use super::*;

    /// The answers made with `cepheid-api`'s types are the bytes the
    /// server wrote before it had them (fields in the document's order,
    /// none added).
    #[test]
    fn the_answers_bodies_are_written_as_before() {
        let e = ApiError::new(ErrorCode::EventIdReused, "m `x`").with_field("event.amount");
        assert_eq!(
            String::from_utf8(e.body()).unwrap(),
            r#"{"error":{"code":"event_id_reused","message":"m `x`","field":"event.amount"}}"#
        );
        let e = ApiError::overloaded(1, "busy");
        assert_eq!(
            String::from_utf8(e.body()).unwrap(),
            r#"{"error":{"code":"overloaded","message":"busy"}}"#
        );
        let health = cepheid_api::Health {
            status: cepheid_api::HealthStatus::Ok,
        };
        assert_eq!(
            serde_json::to_string(&health).unwrap(),
            r#"{"status":"ok"}"#
        );
        let ready = cepheid_api::Readiness {
            ready: false,
            reasons: vec!["a replay".into()],
        };
        assert_eq!(
            serde_json::to_string(&ready).unwrap(),
            serde_json::json!({"ready": false, "reasons": ["a replay"]}).to_string()
        );
        let scenes = ScenesView {
            rules_version: 7,
            retention_ms: 1000,
            scenes: vec![SceneView {
                name: "payment".into(),
                outcomes: vec!["approve".into(), "review".into()],
                default: "approve".into(),
                fallback: "review".into(),
                late: "review".into(),
                deadline_ms: 200,
                hit: cepheid_api::Hit::First,
                rules: vec!["velocity".into()],
            }],
        };
        assert_eq!(
            serde_json::to_string(&scenes).unwrap(),
            r#"{"rules_version":7,"retention_ms":1000,"scenes":[{"name":"payment","outcomes":["approve","review"],"default":"approve","fallback":"review","late":"review","deadline_ms":200,"hit":"first","rules":["velocity"]}]}"#
        );
        let recorded = Recorded {
            recorded: 2,
            repeated: 1,
            rules_version: 7,
        };
        assert_eq!(
            serde_json::to_string(&recorded).unwrap(),
            r#"{"recorded":2,"repeated":1,"rules_version":7}"#
        );
    }
}
