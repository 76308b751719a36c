//! The Kafka crate's integration tests against the real broker (tansu,
//! started by `support`): one binary (the support compiled once), a
//! module per subject.
//!
//! - `broker`: what exactly-once needs from the broker, and what tansu
//!   does not do (each gap a test that fails the day it is fixed);
//! - `source`: `KafkaSource`;
//! - `sink`: `KafkaSink`;
//! - `mismatch`: kept offsets that no longer fit their topic.

mod broker;
mod mismatch;
mod sink;
mod source;
mod support;
