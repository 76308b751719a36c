//! The runtime crate's integration tests: one binary (support compiled
//! once), a module per subject.

mod audit;
mod checkpoint_thread;
mod observer;
mod output;
mod runtime;
mod share;
mod split_watermarks;
mod support;
mod txn;
