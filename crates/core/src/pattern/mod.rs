//! The pattern IR (what the NFA compiler compiles) and its static checks,
//! shared by the pattern language (`cepheid_syntax`) and the Rust builder
//! (`cepheid_engine::builder`), which both make it.
//!
//! Two types are called `Pattern`:
//! - `cepheid_engine::Pattern<E>` (made by the
//!   `PatternBuilder` of `cepheid_engine::builder`) is what programs
//!   build and hand to the engine: typed by its event, so a closure over
//!   another type is a compile error.
//! - [`pattern::Pattern`](Pattern) (this module) is the untyped IR
//!   underneath, the lower layer shared with the pattern language.

mod flink;
mod ir;
mod validate;

pub use flink::{flink_differences, FlinkDifference, FlinkFinding};
pub use ir::{
    Condition, Contiguity, Element, ElementKind, InnerContiguity, NativeCondition, NativeFn,
    NativeKey, NativeKeyFn, Pattern, Quantifier, Sequence, SkipStrategy, Stage, StageEvents,
};
pub use validate::{
    branch_keys, required_stages, show_ms, validate, PatternError, PatternErrorKind, MAX_NESTING,
    MAX_QUANTIFIER_BOUND, MAX_STAGES,
};
