//! The library's integration tests, one binary: a module per area (each
//! file beside this folder), the support code (`reference`, the Flink
//! contract's cases, the matcher and dataflow helpers) compiled once.
//! What runs the `cepheid` command is in `tests/cli/`; the two tests that
//! install a counting global allocator have binaries of their own.

// Support code, compiled once for every module below.
#[path = "../dataflow_support/mod.rs"]
mod dataflow_support;
#[path = "../../fuzz/common/engine_input.rs"]
mod engine_input;
#[path = "../matcher_support/mod.rs"]
mod matcher_support;
#[path = "../reference/mod.rs"]
mod reference;
#[path = "../shared_contract/mod.rs"]
mod shared_contract;

#[path = "../alternation.rs"]
mod alternation;
#[path = "../alternation_differential.rs"]
mod alternation_differential;
#[path = "../api_traits.rs"]
mod api_traits;
#[path = "../builder_typed.rs"]
mod builder_typed;
#[path = "../conformance_lib.rs"]
mod conformance_lib;
#[path = "../dataflow_live.rs"]
mod dataflow_live;
#[path = "../dataflow_live_cut.rs"]
mod dataflow_live_cut;
#[path = "../dataflow_observed.rs"]
mod dataflow_observed;
#[path = "../dataflow_sources_rescale.rs"]
mod dataflow_sources_rescale;
#[path = "../dataflow_threads.rs"]
mod dataflow_threads;
#[path = "../derive_event.rs"]
mod derive_event;
#[path = "../differential.rs"]
mod differential;
#[path = "../dsl_errors.rs"]
mod dsl_errors;
#[path = "../dsl_fuzz_regressions.rs"]
mod dsl_fuzz_regressions;
#[path = "../dsl_hostile.rs"]
mod dsl_hostile;
#[path = "../dsl_load.rs"]
mod dsl_load;
#[path = "../dsl_roundtrip.rs"]
mod dsl_roundtrip;
#[path = "../dynamic_rules.rs"]
mod dynamic_rules;
#[path = "../dynamic_rules_equivalence.rs"]
mod dynamic_rules_equivalence;
#[path = "../engine_event_time.rs"]
mod engine_event_time;
#[path = "../engine_fuzz_regressions.rs"]
mod engine_fuzz_regressions;
#[path = "../engine_shared.rs"]
mod engine_shared;
#[path = "../keys.rs"]
mod keys;
#[path = "../matcher_time.rs"]
mod matcher_time;
#[path = "../processing_time.rs"]
mod processing_time;
#[path = "../push_json.rs"]
mod push_json;
#[path = "../reference_examples.rs"]
mod reference_examples;
#[path = "../semantics_examples.rs"]
mod semantics_examples;
#[path = "../shared_buffer.rs"]
mod shared_buffer;
#[path = "../snapshot.rs"]
mod snapshot;
#[path = "../time_arithmetic.rs"]
mod time_arithmetic;
