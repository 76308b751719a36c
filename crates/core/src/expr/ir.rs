//! The expression IR: names resolved, no spans, no strings to look up.
//!
//! The language front end lowers `where`/`select` expressions to [`Expr`];
//! the builder API can build the same. References to stages are
//! [`StageId`]s; fields are still [`FieldPath`]s here, because which id a
//! field gets depends on the event type the pattern is compiled for (see
//! [`crate::event::FieldResolver`]).

use std::fmt;
use std::sync::Arc;

use crate::event::FieldPath;
use crate::lookup::{IndicatorRef, ListRef};
use crate::primitives::{Span, StageId};
use crate::value::Value;

/// An expression over the current event and the events a partial match has
/// already accepted.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// A field of the current event (`price`, `user.id`). Not available in
    /// `select`.
    Field(FieldPath),
    /// `s.f`: field `f` of the last event already accepted into stage `s`
    /// (null when `s` has none yet).
    StageField {
        /// The stage.
        stage: StageId,
        /// The field of that stage's last event.
        path: FieldPath,
    },
    /// An aggregate over the events already accepted into a stage.
    Aggregate {
        /// Which aggregate.
        func: AggregateFunc,
        /// The stage aggregated over.
        stage: StageId,
        /// The field aggregated (`None` only for `count(s)`).
        path: Option<FieldPath>,
    },
    /// `-x`, `not x`.
    Unary(UnaryOp, Box<Expr>),
    /// `x op y`.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `x op1 y op2 z ...`, applied left to right: the same as nested
    /// [`Expr::Binary`]s (`(x op1 y) op2 z`), kept flat so that a long
    /// chain (a thousand `and` terms) is one node, not a thousand levels of
    /// nesting. The language lowers a chain of two or more operators of one
    /// precedence level to it.
    Chain(Box<Expr>, Vec<(BinaryOp, Expr)>),
    /// `x in [a, b, ...]`.
    In(Box<Expr>, Vec<Expr>),
    /// A call of a built-in function (arity checked by the front end).
    Call(Function, Vec<Expr>),
    /// `matches(s, "re")`: the regex was validated and compiled when the
    /// pattern was lowered.
    Matches(Box<Expr>, Arc<regex::Regex>),
    /// `exists(f)`: does the current event have field `f` (non-null)?
    Exists(FieldPath),
    /// `x in list`: does the reference list hold `x` (null when `x` is
    /// null)?
    InList(Box<Expr>, ListRef),
    /// `name(k, ...)`: a rolling indicator's value for the group `k, ...`
    /// at the current event time.
    Indicator(IndicatorRef, Vec<Expr>),
}

/// Aggregates over a stage's accepted events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateFunc {
    /// `count(s)`: number of events (0 when none).
    Count,
    /// `sum(s.f)` (0 when none; null fields left out).
    Sum,
    /// `avg(s.f)` (null when none).
    Avg,
    /// `min(s.f)` (null when none).
    Min,
    /// `max(s.f)` (null when none).
    Max,
    /// `first(s.f)`: field of the first event (null when none).
    First,
    /// `last(s.f)`: field of the last event (null when none).
    Last,
    /// `distinct(s.f)`: list of distinct non-null values, first-seen order.
    Distinct,
}

impl AggregateFunc {
    /// The name as written in the language.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFunc::Count => "count",
            AggregateFunc::Sum => "sum",
            AggregateFunc::Avg => "avg",
            AggregateFunc::Min => "min",
            AggregateFunc::Max => "max",
            AggregateFunc::First => "first",
            AggregateFunc::Last => "last",
            AggregateFunc::Distinct => "distinct",
        }
    }

    /// Looks up an aggregate by its language name.
    pub fn from_name(name: &str) -> Option<AggregateFunc> {
        Some(match name {
            "count" => AggregateFunc::Count,
            "sum" => AggregateFunc::Sum,
            "avg" => AggregateFunc::Avg,
            "min" => AggregateFunc::Min,
            "max" => AggregateFunc::Max,
            "first" => AggregateFunc::First,
            "last" => AggregateFunc::Last,
            "distinct" => AggregateFunc::Distinct,
            _ => return None,
        })
    }
}

/// Built-in scalar functions (`matches` and `exists` have their own [`Expr`]
/// variants because their arguments are special).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// `len(x)`: characters of a string, items of a list.
    Len,
    /// `lower(s)`.
    Lower,
    /// `upper(s)`.
    Upper,
    /// `contains(s, sub)` (also: list contains value).
    Contains,
    /// `starts_with(s, p)`.
    StartsWith,
    /// `ends_with(s, p)`.
    EndsWith,
    /// `abs(x)`.
    Abs,
}

impl Function {
    /// The name as written in the language.
    pub fn name(self) -> &'static str {
        match self {
            Function::Len => "len",
            Function::Lower => "lower",
            Function::Upper => "upper",
            Function::Contains => "contains",
            Function::StartsWith => "starts_with",
            Function::EndsWith => "ends_with",
            Function::Abs => "abs",
        }
    }

    /// Number of arguments.
    pub fn arity(self) -> usize {
        match self {
            Function::Len | Function::Lower | Function::Upper | Function::Abs => 1,
            Function::Contains | Function::StartsWith | Function::EndsWith => 2,
        }
    }

    /// Looks up a function by its language name.
    pub fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "len" => Function::Len,
            "lower" => Function::Lower,
            "upper" => Function::Upper,
            "contains" => Function::Contains,
            "starts_with" => Function::StartsWith,
            "ends_with" => Function::EndsWith,
            "abs" => Function::Abs,
            _ => return None,
        })
    }
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `not x` / `!x`.
    Not,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `or` / `||`.
    Or,
    /// `and` / `&&`.
    And,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
}

impl BinaryOp {
    /// The operator as written in canonical source.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl Expr {
    /// Calls `f` on this expression and every sub-expression (pre-order),
    /// with an explicit stack (no recursion on user-sized input).
    pub fn walk(&self, mut f: impl FnMut(&Expr)) {
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            f(e);
            match e {
                Expr::Literal(_)
                | Expr::Field(_)
                | Expr::StageField { .. }
                | Expr::Aggregate { .. }
                | Expr::Exists(_) => {}
                Expr::Unary(_, x) | Expr::Matches(x, _) | Expr::InList(x, _) => stack.push(x),
                Expr::Binary(_, x, y) => {
                    stack.push(y);
                    stack.push(x);
                }
                Expr::Chain(x, rest) => {
                    stack.extend(rest.iter().rev().map(|(_, y)| y));
                    stack.push(x);
                }
                Expr::In(x, items) => {
                    stack.extend(items.iter().rev());
                    stack.push(x);
                }
                Expr::Call(_, args) | Expr::Indicator(_, args) => stack.extend(args.iter().rev()),
            }
        }
    }

    /// Does this expression read what a partial match accepted before
    /// (stage fields or aggregates)? Such a condition is "iterative" in
    /// Flink's words and must be evaluated per run, not once per event.
    pub fn reads_stages(&self) -> bool {
        let mut found = false;
        self.walk(|e| found |= matches!(e, Expr::StageField { .. } | Expr::Aggregate { .. }));
        found
    }

    /// Does this expression read a reference list or an indicator?
    pub fn reads_lookup(&self) -> bool {
        let mut found = false;
        self.walk(|e| found |= matches!(e, Expr::InList(..) | Expr::Indicator(..)));
        found
    }
}
/// A `select` entry: an output name and the expression computing it.
#[derive(Clone, Debug)]
pub struct SelectItem {
    /// Output field name.
    pub name: String,
    /// The expression (stage references and aggregates over the match).
    pub expr: Expr,
    /// Where the entry is written (empty for the builder).
    pub span: Span,
}

impl SelectItem {
    /// The entry `name = expr`.
    pub fn new(name: impl Into<String>, expr: Expr) -> SelectItem {
        SelectItem {
            name: name.into(),
            expr,
            span: Span::default(),
        }
    }
}
