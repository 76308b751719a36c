//! Any bytes → a pattern file and an event stream run through the engine as
//! `cepheid run` does (`fuzz/common/engine_input.rs` says how), with at most
//! 1,000 partial matches per key. Nothing may panic, overflow or hang.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/engine_input.rs"]
mod engine_input;

fuzz_target!(|data: &[u8]| engine_input::run(data));
