//! Expressions: the IR the front end lowers `where`/`select` to
//! ([`Expr`]), and its evaluation over events and partial matches.

mod ir;

pub use ir::{AggregateFunc, BinaryOp, Expr, Function, UnaryOp};
