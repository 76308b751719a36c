//! The pattern IR (what the NFA compiler compiles), its static checks, and
//! the Rust builder API that makes it without the language.

mod builder;
mod ir;
mod validate;

pub use builder::PatternBuilder;
pub use ir::{
    Condition, Contiguity, DurationMs, Element, ElementKind, InnerContiguity, NativeCondition,
    NativeFn, Pattern, Quantifier, SelectItem, Sequence, SkipStrategy, Stage, StageEvents, StageId,
};
pub use validate::{
    show_ms, validate, PatternError, PatternErrorKind, MAX_NESTING, MAX_QUANTIFIER_BOUND,
    MAX_STAGES,
};
