//! `cepheid serve` (issue 63): decisions on request over HTTP, decided at
//! once by one engine, that survive a crash (`docs/serve.md`).
//!
//! - [`decider`]: the seam, what the HTTP front asks of the decision
//!   service behind it ([`decider::Decider`]).
//! - [`http`]: the front, HTTP/1.1 and HTTP/2 (h2c and TLS) on one
//!   listener, the routes of `docs/api/openapi.yaml`.
//! - [`wal`]: the write-ahead log: every request the service accepts is
//!   logged, durable, before its answer goes out (`docs/wal.md`).
//! - [`service`]: the service behind the front: admission, the log, one
//!   engine's `cepheid_runtime` run that reads the log as its source,
//!   idempotency, degradation.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod decider;
pub mod http;
pub mod service;
pub mod wal;

// The crate page's example is a doc test too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
