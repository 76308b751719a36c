//! Not a library: the Rust code of the repository's documents, compiled and
//! run as doc tests from the repository's root, so that the paths they use
//! (`patterns/`, `examples/data/`) are the ones a reader runs them with. The
//! command is `src/main.rs`; the library is the `cepheid-engine` crate.

#![forbid(unsafe_code)]

/// The Rust code of `README.md`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
