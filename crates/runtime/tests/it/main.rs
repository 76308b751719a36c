//! The runtime crate's integration tests: one binary (support compiled
//! once), a module per subject.

mod alternation_records;
mod audit;
mod checkpoint_thread;
mod decisions;
mod decisions_reference;
mod dynamic_rules_records;
mod observer;
mod output;
mod rules_records;
mod runtime;
mod share;
mod split_watermarks;
mod start_from;
mod support;
mod txn;
