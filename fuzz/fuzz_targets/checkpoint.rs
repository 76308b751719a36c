//! Any bytes → the files of a checkpoint folder, this format's and the
//! formats before it, from which a run resumes through
//! `Runtime::with_source` (`fuzz/common/checkpoint_input.rs` says how).
//! Nothing may panic, overflow, hang or allocate what a length field says.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/runtime_input.rs"]
mod runtime_input;

#[path = "../common/checkpoint_input.rs"]
mod checkpoint_input;

fuzz_target!(|data: &[u8]| checkpoint_input::run(data));
