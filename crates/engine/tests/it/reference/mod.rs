//! The reference for the differential test: a literal Rust transliteration
//! of Apache Flink 2.3's CEP NFA ([`flink`]: `NFACompiler`, `NFA`,
//! `SharedBuffer`, the skip strategies, and the JDK `PriorityQueue` their
//! order depends on), plus cepheid's deliberate deviations below. It is
//! written from Flink's sources, not from cepheid's: where the two differ
//! outside D1-D5, the real matcher is the one to fix (settle it with the
//! oracle, `../shared/flink-oracle`).
//!
//! - [`cond`]: events `{id, ts, fields}` and an evaluator for the expression
//!   subset the tests use (independent of `cepheid_core::expr`).
//! - [`flink`]: the transliteration and its driver ([`run`]).
//! - [`gen`]: random patterns and events; [`build`]: hand-written patterns;
//!   [`conformance`]: the shared Flink conformance cases; [`print`]:
//!   patterns back to `.cep` text for failure reports.
//!
//! The IR maps to Flink's `Pattern` API as the oracle's `OracleHarness`
//! does (`flink::pattern`), and the run is driven as the oracle drives it:
//! for each event `advanceTime(ts)` then `process(event)`, and at the end
//! `advanceTime(end)`.
//!
//! # cepheid's deliberate deviations from Flink (implemented here too)
//! As `docs/semantics.md` records them; each can be switched off
//! ([`flink::Deviations`]) to compare the reference with plain Flink.
//! - **D1, FLINK-15980**: a group whose sequence (two elements or more)
//!   *ends* with one or more consecutive `not followed by` elements (literally
//!   trailing, not looking back through optional elements) enforces them.
//!   In `createGroupPatternState`, right after entering the group and before
//!   its `createMiddleStates`, a sink that is not Final is replaced by
//!   `copy(sink)` with, for each trailing negation from the last backwards, a
//!   PROCEED edge to `createStopState(take condition inside the group,
//!   name)`. The copy stands in for the sink: it keeps the sink's element
//!   window, gets every edge the sink gets after it was made (a looping
//!   group's dummy gets its PROCEED to the group's head only once the inner
//!   states are built: `((a not followed by b))+` takes `a a` as one match
//!   too, as Flink does), and a greedy restriction put on it
//!   (`updateWithGreedyCondition`) is put on the sink too. In `createLoopingGroupPatternState` the dummy
//!   state gets the same PROCEED edges right after the group is entered.
//!   Skipping an optional group (its PROCEED to `proceedState`) bypasses the
//!   negation; at the end of the pattern Flink's own Pending state applies.
//!   The start run (it took nothing) that reaches such a negation's stop
//!   state (`((a?) not followed by b) followed by c`) loses that branch
//!   only: `process` does not discard its other branches (Flink, which
//!   drops the negation, never gets there).
//! - **D2, element window on a group** and **D3, element window on a
//!   quantified element**: every state made by `createState(type,
//!   isTake = true)`, whatever the quantifier, registers the smallest of the
//!   current element's `within` and the `within` of every enclosing group
//!   (a looping group's dummy state counts the group itself). Flink
//!   registers the element's own window only when `times == null`. Flink's
//!   own copies (`copy`, `copyWithoutTransitiveNots`), stop states and
//!   ignore states get none, as in Flink.
//! - **D4, time-ordered advance**: advancing to `t` calls `advanceTime(d)`
//!   for each deadline `d <= t` of a partial match in turn (smallest first),
//!   then `advanceTime(t)` (as if Flink advanced one millisecond at a time).
//! - **D5, compile errors** where Flink fails at run time: a cycle of
//!   PROCEED edges (Flink loops forever), more than 10,000 PROCEED paths from
//!   one state, and a transition to `null` (greedy with `until` whose
//!   `originalStateMap` lookup misses). (A negation reachable before any
//!   take that does not end a group, the other D5 case, is rejected by
//!   `pattern::validate`; the reference throws Flink's
//!   `NullPointerException` there.)
//!
//! And one rule of cepheid's alternation, which Flink lacks
//! (`docs/semantics.md`, "Alternation"), for the branch patterns
//! `tests/alternation_differential.rs` runs: a group that stands for a
//! branch (marked by the span [`BRANCH_GROUP`]) and holds a greedy element
//! leaves to a copy of its own of the state after it, so that the greedy
//! restriction of that state binds the partial matches that leave the
//! branch only (not those that skip the group, nor those that come back to
//! the state through a loop).
//!
//! Everything else is Flink 2.3, quirks included (greedy on the last
//! element, `until` on groups, optional heads of groups, Dewey versions,
//! `{0,m}` as `times(0, m)`).
#![allow(dead_code)]

pub mod build;
pub mod cond;
pub mod conformance;
pub mod flink;
pub mod gen;
pub mod neutral;
pub mod oracle;
pub mod print;

pub use cond::RefEvent;

/// The span of a group that stands for an alternation's branch in a
/// branch pattern (see the module documentation).
pub const BRANCH_GROUP: cepheid_core::Span = cepheid_core::Span {
    start: u32::MAX,
    end: u32::MAX,
};
#[allow(unused_imports)]
pub use flink::{run, Emitted, Failure, Output};
