//! The engine's integration tests: one binary (the support compiled once),
//! a module per area: the language as the engine loads it (`dsl_*`), the
//! engine's behaviour, snapshots and rule changes, and the matcher against
//! the reference (`reference/`: Flink 2.3's NFA transliterated, with the
//! contract's cases in `../shared`). `dynamic_rules_memory.rs`, which
//! installs a counting global allocator, is a binary of its own.
//!
//! The modules whose events are `#[derive(Event)]` types need the feature
//! `derive` (a default).

// Support code, compiled once for every module below.
#[path = "../../../../fuzz/common/engine_input.rs"]
mod engine_input;
#[path = "../../../automata/tests/matcher_support/mod.rs"]
mod matcher_support;
mod reference;
use cepheid_testkit::shared_contract;

mod alternation;
mod alternation_cases;
mod alternation_differential;
#[cfg(feature = "derive")]
mod builder_typed;
mod conformance_lib;
mod differential;
mod dsl_errors;
mod dsl_fuzz_regressions;
mod dsl_hostile;
mod dsl_load;
mod dsl_roundtrip;
#[cfg(feature = "derive")]
mod dynamic_rules;
#[cfg(feature = "derive")]
mod dynamic_rules_equivalence;
mod engine_event_time;
mod engine_fuzz_regressions;
mod engine_shared;
#[cfg(feature = "derive")]
mod keys;
mod processing_time;
mod push_json;
mod reference_examples;
#[cfg(feature = "derive")]
mod snapshot;
mod split;
mod state_bytes;
mod time_arithmetic;
mod why;
mod why_requests;
