//! `--idle-timeout`: event time that follows the wall clock while the input
//! is quiet, so that timeouts and pending `not followed by` endings fire on
//! a stream that has stopped (as a Flink source marked idle lets time pass).
//!
//! The rule is the library's [`cepheid_engine::engine::Idle`], defined once for
//! this single-engine run and the dataflow sources of `--workers`: when no
//! line has arrived for the timeout, the watermark becomes the watermark at
//! the last arrival plus the wall-clock time since that arrival, and keeps
//! following the clock until the next line. Events that then arrive behind
//! it are late, as any event behind the watermark. The clock is passed in,
//! so the rule is tested without waiting (its tests are the library's).

pub use cepheid_engine::engine::Idle;
