//! An independent reference matcher for small inputs, written from the rules
//! of `../shared/spec/semantics.md`, `language.md` and `flink-reference.md`
//! rather than from an automaton. It may be exponential: inputs are at most a
//! dozen events.
//!
//! - [`cond`]: events `{id, ts, fields}` and an evaluator for the expression
//!   subset the tests use (independent of `cepheid::expr`).
//! - [`shape`]: positions of a pattern and the transitions after each take.
//! - [`matcher`]: runs, windows, timeouts, negations, skip strategies.
//!
//! # Rules where the reference needed a special case
//! (Each is a Flink implementation detail that a purely declarative
//! enumeration of assignments would not reproduce.)
//! 1. Run identity: after a take a run is *fresh*; the first skipped event
//!    commits it to one transition. Distinct commitments are distinct runs
//!    (each times out separately; a `not next` stops only fresh runs).
//! 2. A trailing `not followed by` completes as a match at window expiry
//!    only for runs waiting on it alone; a run that could still loop or take
//!    an optional occurrence times out instead (Flink's Pending state).
//! 3. Element windows (`within` on an element) bound the state the run waits
//!    in: a fresh run waits at its first (preferred) transition; a run that
//!    skipped into a loop tail or an optional occurrence is unbounded.
//! 4. Skip strategies hold a match while a run that started strictly earlier
//!    is alive (equal start does not block: `skip to last b` on `b1 b2 b3 c`
//!    gives `{b3 c}` while the run started at b3 lives); ties among held
//!    matches with one start are reported as `ambiguous` (Flink breaks them
//!    by heap order; the reference uses run order).
//! 5. `until` forbids taking *every* element of the loop, the first one
//!    included (`UntilConditionITCase#testUntilConditionFollowedByAnyOneOrMore`),
//!    but only skips *between* repetitions; the wait for the first element
//!    may skip an `until` event.
//! 6. Greedy restricts the element after the greedy one also when the greedy
//!    element is skipped as optional (`GreedyITCase#testGreedyZeroOrMore`).
//!    Leaving a greedy element on an event satisfying its `until` reaches
//!    both the restricted next element and an unrestricted copy (Flink's
//!    `originalStateMap` copy), so the run forks in two, and the copy keeps
//!    no greedy restriction afterwards
//!    (`GreedyITCase#testGreedyUntilWithDummyEventsBeforeQuantifier`).
//! 7. A `not followed by` right after a repeating element is enforced
//!    between its repetitions too; one before an optional element stays in
//!    force until something after it is taken; a `not next` is checked on
//!    the first event after the last take only (fresh runs).
#![allow(dead_code)]

pub mod build;
pub mod cond;
pub mod conformance;
pub mod matcher;
pub mod shape;

pub use cond::RefEvent;
pub use matcher::{run, Emitted, Output};
