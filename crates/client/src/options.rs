//! The client's options (`docs/clients.md`, "Options").

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// A client's options: `url` and the defaults of `docs/clients.md`.
///
/// ```
/// use cepheid_client::{Fallback, Options};
///
/// let mut options = Options::new("http://127.0.0.1:8870");
/// options.deadline_ms = 300;
/// options.fallbacks.insert("payment".into(), Fallback::Closed);
/// options.fallbacks.insert("coupon".into(), Fallback::outcome("allow"));
/// ```
///
/// It reads from JSON with the contract's names (`{"url": ...,
/// "deadline_ms": 300, "fallbacks": {"payment": "closed"}}`), every
/// option but `url` defaulted.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `http://` or `https://` and the server's address.
    pub url: String,
    /// Sent as `Authorization: Bearer TOKEN` on every request.
    pub token: Option<String>,
    /// A PEM file of certificates to trust for `https://` (else the
    /// system's roots).
    pub ca: Option<PathBuf>,
    /// A call's deadline when the call gives none (1000).
    pub deadline_ms: u64,
    /// By scene: the fallback outcome of a decision the server does not
    /// answer (else the one `GET /v1/scenes` publishes).
    pub fallbacks: HashMap<String, Fallback>,
    /// Attempts of one call, the first included (3).
    pub max_attempts: u32,
    /// The wait before retry *n* (from 1) is `min(backoff_max_ms,
    /// backoff_ms * 2^(n-1))` (20).
    pub backoff_ms: u64,
    /// See `backoff_ms` (500).
    pub backoff_max_ms: u64,
    /// Each wait drawn uniformly from [wait/2, wait] (true).
    pub jitter: bool,
    /// The retry budget.
    pub retry_budget: RetryBudget,
    /// The circuit breaker.
    pub breaker: BreakerOptions,
    /// How long the client's copy of `GET /v1/scenes` serves (60000).
    pub scenes_ttl_ms: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            url: String::new(),
            token: None,
            ca: None,
            deadline_ms: 1000,
            fallbacks: HashMap::new(),
            max_attempts: 3,
            backoff_ms: 20,
            backoff_max_ms: 500,
            jitter: true,
            retry_budget: RetryBudget::default(),
            breaker: BreakerOptions::default(),
            scenes_ttl_ms: 60_000,
        }
    }
}

impl Options {
    /// The defaults, for the server at `url`.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            ..Options::default()
        }
    }
}

/// The retry budget: a token bucket as gRPC's retry throttling.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudget {
    /// Tokens at the start and at most (10).
    pub max_tokens: u32,
    /// Given back by each success (0.1).
    pub token_ratio: f64,
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget {
            max_tokens: 10,
            token_ratio: 0.1,
        }
    }
}

/// The circuit breaker's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerOptions {
    /// Failed attempts in a row that open it (5).
    pub failure_threshold: u32,
    /// How long it stays open before a trial (5000).
    pub open_ms: u64,
}

impl Default for BreakerOptions {
    fn default() -> BreakerOptions {
        BreakerOptions {
            failure_threshold: 5,
            open_ms: 5000,
        }
    }
}

/// A scene's fallback, chosen by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Fail open: the scene's mildest outcome (the first it publishes).
    Open,
    /// Fail closed: the scene's harshest outcome (the last it publishes).
    Closed,
    /// This outcome, used as given.
    Outcome(String),
}

impl Fallback {
    /// The outcome `name`, used as given.
    pub fn outcome(name: impl Into<String>) -> Fallback {
        Fallback::Outcome(name.into())
    }
}

impl From<&str> for Fallback {
    /// `"open"`, `"closed"`, or an outcome's name.
    fn from(s: &str) -> Fallback {
        match s {
            "open" => Fallback::Open,
            "closed" => Fallback::Closed,
            name => Fallback::Outcome(name.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Fallback {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fallback, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Fallback::from(s.as_str()))
    }
}
