//! A decision's result: the server's, or the scene's fallback decided by
//! the client.

use std::fmt;

use cepheid_api::Decision;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Who decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    /// The server answered (degraded or not).
    Server,
    /// The server gave no answer: the scene's fallback, decided here.
    Client,
}

impl DecidedBy {
    /// `server` or `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Server => "server",
            DecidedBy::Client => "client",
        }
    }
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decision's result, with the API's field names.
///
/// The server's decision is [`Decided::decision`] whole, with `decided_by:
/// server` and `attempts`; a fallback has no decision and says why
/// (`degraded_why`: `timeout`, `unreachable`, `overloaded`, `unavailable`,
/// `server_error`, `breaker_open`) and the last failure (`error`). As
/// JSON (`serde_json::to_value`), it is the contract's object: the
/// server's body with the two fields added, or
/// `{"decided_by": "client", "scene", "event_id", "outcome", "degraded":
/// true, "degraded_why", "attempts", "error"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    /// `server` or `client`.
    pub decided_by: DecidedBy,
    /// The requests sent for the call (the scenes' fetch not counted); 0
    /// when the breaker refused its first attempt.
    pub attempts: u32,
    /// The scene.
    pub scene: String,
    /// The event's id (the caller's, or the one the client made).
    pub event_id: String,
    /// The outcome.
    pub outcome: String,
    /// The server's fallback (`degraded_why` `deadline`...) or the
    /// client's: always `true` for a fallback.
    pub degraded: bool,
    /// Why it is degraded (only when it is).
    pub degraded_why: Option<String>,
    /// A fallback's last failure, in words.
    pub error: Option<String>,
    /// The server's decision (`None` for a fallback).
    pub decision: Option<Decision>,
}

impl Decided {
    pub(crate) fn server(decision: Decision, attempts: u32) -> Decided {
        Decided {
            decided_by: DecidedBy::Server,
            attempts,
            scene: decision.scene.clone(),
            event_id: decision.event_id.clone(),
            outcome: decision.outcome.clone(),
            degraded: decision.degraded,
            degraded_why: decision.degraded_why.map(|w| w.as_str().to_string()),
            error: None,
            decision: Some(decision),
        }
    }

    /// The server's `decision_id`, when the server decided.
    pub fn decision_id(&self) -> Option<&str> {
        self.decision.as_ref().map(|d| d.decision_id.as_str())
    }
}

impl Serialize for Decided {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.decision {
            Some(decision) => {
                let value = serde_json::to_value(decision).map_err(serde::ser::Error::custom)?;
                let object = value.as_object().cloned().unwrap_or_default();
                let mut map = serializer.serialize_map(Some(object.len() + 2))?;
                map.serialize_entry("decided_by", self.decided_by.as_str())?;
                for (k, v) in &object {
                    map.serialize_entry(k, v)?;
                }
                map.serialize_entry("attempts", &self.attempts)?;
                map.end()
            }
            None => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("decided_by", self.decided_by.as_str())?;
                map.serialize_entry("scene", &self.scene)?;
                map.serialize_entry("event_id", &self.event_id)?;
                map.serialize_entry("outcome", &self.outcome)?;
                map.serialize_entry("degraded", &self.degraded)?;
                if let Some(why) = &self.degraded_why {
                    map.serialize_entry("degraded_why", why)?;
                }
                map.serialize_entry("attempts", &self.attempts)?;
                if let Some(error) = &self.error {
                    map.serialize_entry("error", error)?;
                }
                map.end()
            }
        }
    }
}
