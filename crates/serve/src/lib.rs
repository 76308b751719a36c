//! The decision service of `cepheid serve` (issue 63): decisions on
//! request over HTTP, decided at once by the engine, that survive a crash.
//!
//! This first part is its write-ahead log ([`wal`]): every request the
//! service accepts is logged, durable, before its answer goes out, and
//! the engine applies the log's entries in their order; a restart replays
//! the log after the last checkpoint. The format is `docs/wal.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod wal;

// The crate page's example is a doc test too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
