//! The runtime crate's integration tests: one binary (support compiled
//! once), a module per subject.

mod observer;
mod runtime;
mod support;
