//! The dataflow crate's integration tests: one binary (the support compiled
//! once), a module per subject. `dataflow_support/` is also compiled into
//! the command's harness (`tests/cli/`: `cli_workers.rs`).

// Support code, compiled once for every module below.
mod dataflow_support;

// The runtime's transactional sink in memory: the same double on both
// executors.
#[path = "../../../runtime/tests/it/txn.rs"]
mod txn;

mod dataflow_before_end;
mod dataflow_cut_on_one_engine;
mod dataflow_lists;
mod dataflow_live;
mod dataflow_live_cut;
mod dataflow_observed;
mod dataflow_panic;
mod dataflow_quiet_cut;
mod dataflow_refusals;
mod dataflow_slow_sink;
mod dataflow_sources_rescale;
mod dataflow_sums;
mod dataflow_threads;
