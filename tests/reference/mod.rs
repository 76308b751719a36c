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
//!    skipped into a loop tail or an optional occurrence is unbounded, and a
//!    fresh run whose first transition passes a `not next` waits in that
//!    negation's own state, which has no window.
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
//!    element is skipped as optional (`GreedyITCase#testGreedyZeroOrMore`),
//!    or when an optional group ending with it is skipped (the restriction
//!    is on the next *state*). A run that waits in that state stays
//!    restricted; one that passes it by a PROCEED (to a later element, out
//!    of a group iteration that could repeat, through a `not next`) is
//!    restricted only on the event it passes on, and one that skips into a
//!    separate ignore state (optional element or occurrence, loop tail,
//!    optional group head) is no longer restricted.
//!    Leaving a greedy element on an event satisfying its `until` reaches
//!    an unrestricted copy of the next state (Flink's `originalStateMap`
//!    copy), which keeps no greedy restriction afterwards (whether Flink also
//!    forks a restricted branch there is not pinned by any case; the matcher
//!    does not, and neither does the reference)
//!    (`GreedyITCase#testGreedyUntilWithDummyEventsBeforeQuantifier`).
//! 7. A `not followed by` right after a repeating element is enforced
//!    between its repetitions too (also when the repeating element ends a
//!    group the negation follows: Flink's `followingPattern` leaks into the
//!    group); one before an optional element stays in
//!    force until something after it is taken; a `not next` is checked on
//!    the first event after the last take only (fresh runs).
//! 8. The first stage of a group (its head) cannot be skipped as optional,
//!    and a counted head `{n,m}` cannot stop before `m`: Flink's
//!    `createSingletonState` adds no PROCEED to optional states of a group
//!    head (`headOfGroup`), and only an optional *group* gets one. So
//!    `a (c? d)` is `a (c d)`, `(c{1,2})` is `(c{2})`.
//! 9. A group that is the first element of a group is entered strictly,
//!    whatever the connector before the outer group: the head stage of a
//!    group takes the contiguity of its innermost group, and a nested group
//!    is built by Flink's `begin(Pattern)`, which is STRICT. So
//!    `a followed by any ((b))` is `a next b`.
//! 10. The first stage of a group repeats with the *group's* inner
//!     contiguity, not its own (Flink's `getInnerIgnoreCondition` for a group
//!     head): in `(b{1,2} consecutive) c`, b's repetitions are relaxed.
//! 11. A Stop (a negation hit) discards every *partial* branch of the run,
//!     but a match completed by the same event is still emitted (Flink's
//!     `doProcess` adds final states before it checks for a Stop):
//!     `a not followed by b next t` (t accepts all) matches `{a, t: b}` on `a b`.
//! 12. A greedy counted element `{n,m}` cannot complete a match right after
//!     occurrence k < m: Flink ANDs the PROCEED of its optional occurrences
//!     with "not the element's condition" and evaluates it on the event just
//!     taken. So `a{1,2} greedy` at the end emits only two-event matches,
//!     although `semantics.md` says greedy on the last element has no effect
//!     (true for loops `+`/`{n,}` only). Reported to the lead.
//! 13. A `not next` on the way to the end (before an optional last element,
//!     or at the end of a group iteration that could repeat) is checked on
//!     the event just taken when the match completes (Flink evaluates the
//!     PROCEED chain to the final state on that event); only a `not next` that
//!     truly ends the pattern waits for the next event. A run that left a
//!     sticky group wait (rule 14) meets the `not next`s after the group,
//!     not those inside the finished iteration; a run that must still pass
//!     a `not next` is not yet pending at window expiry (it times out).
//! 14. A run that skips events while waiting for an optional iteration of a
//!     repeating group (`(b c){1,3}`, `(b c)+`: iteration > min, head a stage, group
//!     not `optional`) may still leave the group afterwards: Flink's ignore
//!     edge there loops on the head state, which keeps its PROCEED. So
//!     `(s){1,2} combinations next t` matches `{s: a1, t: a3}` on `a1 a2 a3`
//!     (the `next` is measured from the skipped a2). The head of an
//!     `optional` group skips in a separate ignore state instead
//!     (`isHeadOfOptionalGroupPattern`), so there the run is committed. This
//!     makes Flink emit some matches twice: `(b)+ followed by c` on `b x b`
//!     gives `{b1 c:b3}` once from the run still in the loop and once from
//!     the run waiting for c.
//! 16. That separate ignore state of an optional group's head is built
//!     inside the group, where no earlier negation is known: a run that
//!     skipped while waiting for the group is no longer stopped by a
//!     `not followed by` before the group. `b not followed by c followed by
//!     (d+)?` matches `{b1 d4}` on `b x c d` (but not with `d?`).
//! 17. Likewise the ignore state of an optional occurrence of a counted
//!     element has no Stop edge for the negation after the element, so
//!     `a b{1,3} not followed by c followed by d` matches `{a b2 b5 d}` on
//!     `a b x c b b d` (the `c` falls in a skipped stretch), while `b{3}`
//!     and `b+` do not match. That ignore state does carry the Stop edges
//!     of the negations *before* the element, so `a not followed by c
//!     followed by b{1,2} combinations ...` is stopped by a `c` met while
//!     waiting for the second `b` (after the first skipped event). The
//!     separate ignore states of an optional group's head carry no Stop
//!     edge at all (they are built inside the group).
//! 18. A `not followed by` directly before a `not next` is dropped: the
//!     following element's states collect negations only through optional
//!     elements and other `not followed by` (`getCurrentNotCondition`), and
//!     the `not next` state gets none. `c not followed by b not next x
//!     followed by d` matches `{c d}` on `c b d`.
//! 15. Greedy restricts *every* transition of the state after the greedy
//!     element, its PROCEEDs included: when that state is not the final one
//!     (the greedy loop ends an iteration of a group that could repeat), a
//!     match cannot complete on an event the loop takes: `(b+ greedy){1,2}`
//!     emits nothing on a single `b`.
#![allow(dead_code)]

pub mod build;
pub mod cond;
pub mod conformance;
pub mod gen;
pub mod matcher;
pub mod print;
pub mod shape;

pub use cond::RefEvent;
pub use matcher::{run, Emitted};
