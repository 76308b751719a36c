//! # cepheid-client: the Rust client of `cepheid serve`
//!
//! A business asks `cepheid serve` (`docs/serve.md`) for a decision
//! through a client, and the client is where the caller's deadline, its
//! fallback when the service is slow or down, and its retries live. This
//! crate behaves exactly as `docs/clients.md` says (the Python and
//! TypeScript clients too; `clients/cases.json` is the cases all three
//! run):
//!
//! - a **deadline** per call, sent to the server as the time left so that
//!   the server answers with its own degraded fallback rather than late;
//! - when the server does not answer in time, is unreachable, or answers
//!   429/503, a decision gets the scene's **fallback** outcome marked
//!   `decided_by: client` (the caller's choice per scene, else what `GET
//!   /v1/scenes` publishes);
//! - **retries** with the same `event_id` (the server is idempotent) with
//!   backoff, within a retry **budget**;
//! - a **circuit breaker** that stops calling a failing server for a
//!   while, and says so;
//! - connections kept and reused; a bearer token; TLS with a CA file.
//!
//! ```no_run
//! use cepheid_client::{Client, Fallback, Options};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), cepheid_client::Error> {
//! let mut options = Options::new("http://127.0.0.1:8870");
//! options.deadline_ms = 300;
//! options.fallbacks.insert("payment".into(), Fallback::Closed);
//! let client = Client::new(options)?;
//! let event = json!({"type": "payment", "card": "c1", "amount": 120});
//! let decided = client.decide("payment", &event).event_id("pay-1").await?;
//! println!("{} ({}, {} attempts)", decided.outcome, decided.decided_by, decided.attempts);
//! # Ok(()) }
//! ```
//!
//! The calls are `async` and need a tokio runtime (the HTTP stack is the
//! server's: hyper 1, hyper-util's pooled client, rustls on `ring`). A
//! client is cheap to clone and meant to be shared: make one per server.
//! Tests inject a [`Transport`] and a [`Clock`] ([`Client::with_parts`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod breaker;
mod call;
mod error;
mod options;
mod result;
mod transport;

pub use breaker::{BreakerState, Transition};
pub use call::{Client, Decide, Listener};
pub use error::{ApiError, Error, Unavailable, Why};
pub use options::{BreakerOptions, Fallback, Options, RetryBudget};
pub use result::{Decided, DecidedBy};
pub use transport::{
    BoxFuture, Clock, Fault, HttpTransport, Request, Response, TokioClock, Transport,
};

/// The API's documents (`cepheid-api`), as the calls take and give them.
pub use cepheid_api as api;

// The crate page's example is a doc test too (compiled, not run).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
