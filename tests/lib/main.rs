//! The library's integration tests, one binary: a module per area (each
//! file beside this folder), the support code (`reference`, the Flink
//! contract's cases, the matcher and dataflow helpers) compiled once.
//! What runs the `cepheid` command is in `tests/cli/`; the two tests that
//! install a counting global allocator have binaries of their own.

// Support code, compiled once for every module below.
use cepheid_testkit::shared_contract;

#[path = "../api_traits.rs"]
mod api_traits;
