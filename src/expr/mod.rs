//! Expressions: the IR the front end lowers `where`/`select` to
//! ([`Expr`]), its compilation, and its evaluation over events and partial
//! matches.
//!
//! The chain:
//! 1. [`CompiledExpr::compile`] resolves every field of an [`Expr`] once
//!    through a [`FieldResolver`](crate::event::FieldResolver) and registers
//!    stage references and aggregates as slots of an
//!    [`AccumulatorLayoutBuilder`] shared by all conditions of a pattern;
//!    [`AccumulatorLayoutBuilder::finish`] freezes the [`AccumulatorLayout`].
//! 2. Each run of the matcher carries [`Accumulators`]
//!    ([`AccumulatorLayout::new_accumulators`]) and calls
//!    [`Accumulators::on_take`] when it takes an event into a stage.
//! 3. A condition is [`CompiledExpr::matches`]: its value is exactly `true`.
//!    Stage references see only the events accepted *before* the candidate.
//! 4. `select` entries are a [`CompiledSelect`], evaluated once per match.
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
//! ```
//! use cepheid::event::FieldPath;
//! use cepheid::record::{FieldTable, Record};
//! use cepheid::expr::{AccumulatorLayoutBuilder, BinaryOp, CompiledExpr, Expr};
//! use cepheid::Value;
//!
//! let expr = Expr::Binary(
//!     BinaryOp::Gt,
//!     Box::new(Expr::Field(FieldPath::single("price"))),
//!     Box::new(Expr::Literal(Value::Int(10))),
//! );
//! let mut fields = FieldTable::new();
//! let mut layout = AccumulatorLayoutBuilder::new();
//! let condition = CompiledExpr::compile(&expr, &mut fields, &mut layout).unwrap();
//! let layout = layout.finish();
//!
//! let event = Record::new(vec![Value::Int(12)], "{\"price\":12}".into());
//! assert!(condition.matches(&event, &layout.new_accumulators()));
//! assert!(!condition.reads_stages());
//! ```

mod accumulate;
mod compile;
mod eval;
mod ir;
mod ops;
mod select;

pub use accumulate::{AccumulatorLayout, AccumulatorLayoutBuilder, Accumulators, SlotId, SlotSpec};
pub use compile::{CompiledExpr, ExprError, MAX_DEPTH};
pub use ir::{AggregateFunc, BinaryOp, Expr, Function, UnaryOp};
pub use select::{CompiledSelect, SelectError};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
