//! # cepheid-automata: the pattern IR as an automaton, and its matcher
//!
//! Two modules, the compile-time and the run-time halves of Apache Flink
//! CEP's NFA:
//!
//! - [`nfa`]: a pattern ([`cepheid_core::pattern::Pattern`]) compiled into
//!   an immutable [`Nfa`](nfa::Nfa) with take / ignore / proceed edges, as
//!   Flink's `NFACompiler` builds it (except for the deviations of
//!   `docs/semantics.md`); it knows nothing of the matcher;
//! - [`matcher`]: one partition's partial matches over a borrowed `&Nfa`
//!   (Flink's `NFA` runtime): runs, the shared buffer, skip strategies,
//!   windows and timeouts.
//!
//! Programs use both through `cepheid-engine`'s `Engine`, which keeps a
//! partition per key and pattern.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod matcher;
pub mod nfa;

// The vocabulary, under the names the modules use for it.
#[cfg(test)]
use cepheid_core::record;
use cepheid_core::{error, event, expr, lookup, pattern, persist, primitives, slab, value};
#[cfg(test)]
use cepheid_core::{ErrorKind, Record, Value, ValueRef};
