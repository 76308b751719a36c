//! Expressions: the IR the front end lowers `where`/`select` to
//! ([`Expr`]); its compilation and evaluation are crate-internal.
//!
//! The chain inside the crate:
//! 1. compilation resolves every field of an [`Expr`] once through a
//!    [`FieldResolver`](crate::event::FieldResolver) and registers stage
//!    references and aggregates as slots of an accumulator layout shared by
//!    all conditions of a pattern;
//! 2. each run of the matcher carries accumulators, updated when it takes
//!    an event into a stage;
//! 3. a condition matches when its value is exactly `true`; stage
//!    references see only the events accepted *before* the candidate;
//! 4. `select` entries are evaluated once per match.
//!
//! Value semantics (`language.md` "Expressions", plus the decisions taken
//! where it is silent):
//! - integers and floats mix as floats; integer overflow, and division or
//!   remainder by zero (integer or float), give null; integer division
//!   truncates toward zero, the remainder has the dividend's sign (Java);
//! - `==`/`!=` with a null operand test for null (`null == null` is true);
//!   any other operator with null gives null; a type mismatch
//!   (`"a" < 3`, `"a" == 1`) gives null;
//! - numbers order numerically, strings by code point, nothing else;
//! - `and`/`or`/`not` are SQL's three-valued logic (a non-boolean operand is
//!   unknown); `x in [a, b]` is `x == a or x == b`;
//! - `+` on two strings concatenates; `len` counts characters or items;
//!   `contains` works on strings and lists;
//! - aggregates skip null fields (`count`, `first`, `last` do not); `sum`
//!   stays an integer until a float is added; a value `sum`/`avg`/`min`/
//!   `max` cannot use (a string in `sum`, a string after numbers in `min`)
//!   makes them null for the rest of the run; `distinct` dedups with `==`.
//!
//! An [`Expr`] can be built in code and used as a condition of an IR
//! pattern ([`Condition::Expr`](crate::pattern::Condition::Expr)):
//!
//! ```
//! use cepheid_core::expr::{BinaryOp, Expr};
//! use cepheid_core::{FieldPath, Value};
//!
//! let price_over_10 = Expr::Binary(
//!     BinaryOp::Gt,
//!     Box::new(Expr::Field(FieldPath::single("price"))),
//!     Box::new(Expr::Literal(Value::Int(10))),
//! );
//! # let _ = price_over_10;
//! ```

mod accumulate;
mod compile;
mod eval;
mod ir;
mod ops;
mod select;

pub use accumulate::{AccumulatorLayout, AccumulatorLayoutBuilder, Accumulators};
pub use compile::CompiledExpr;
pub use ir::{AggregateFunc, BinaryOp, Expr, Function, SelectItem, UnaryOp};
/// The language's `==` (three-valued) and order of values, for the layers
/// that compare values as conditions do (the engine's indicators).
pub use ops::{equals, order};
pub use select::CompiledSelect;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
