//! The automata crate's integration tests: one binary (the support compiled
//! once), a module per subject. `matcher_alloc.rs`, which installs a
//! counting global allocator, is a binary of its own.

// Support code, shared with `matcher_alloc.rs`.
#[path = "../matcher_support/mod.rs"]
mod matcher_support;

mod matcher_time;
mod semantics_examples;
mod shared_buffer;
