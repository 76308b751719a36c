//! The derives' integration tests through the engine (`Event` and
//! `EventValue` on the user's types), one binary. The compile-fail tests
//! (`compile_fail.rs`, trybuild) are a binary of their own.

mod derive_event;
