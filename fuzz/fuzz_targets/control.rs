//! Any bytes → records of a source as a run reads them: events, control
//! records (`$rules`, `$rules_file`, `$watermark`) among them, and rules
//! records on a rules stream of their own (a Kafka rules topic's), each
//! with a Kafka-like timestamp, through `Runtime::with_source` to an
//! in-memory sink (`fuzz/common/control_input.rs` says how). Nothing may
//! panic, overflow or hang.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/runtime_input.rs"]
mod runtime_input;

#[path = "../common/control_input.rs"]
mod control_input;

fuzz_target!(|data: &[u8]| control_input::run(data));
