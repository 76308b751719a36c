//! Compiling an [`Expr`] into a [`CompiledExpr`]: fields resolved to
//! [`FieldId`]s, stage references and aggregates turned into accumulator
//! slots, the tree flattened into one node array.
//!
//! Comparisons of a field with a literal (`type == 0`, `name == "a"`) get a
//! node of their own, the hot path of most conditions.

use std::fmt;
use std::sync::Arc;

use super::accumulate::{AccumulatorLayoutBuilder, SlotId, SlotSpec};
use super::ir::{AggregateFunc, BinaryOp, Expr, Function, UnaryOp};
use super::ops;
use crate::event::{FieldError, FieldId, FieldPath, FieldResolver};
use crate::lookup::{IndicatorId, ListId};
use crate::value::Value;

/// The deepest expression compiled (the language caps nesting at 64; this
/// bounds evaluation's recursion for expressions built by hand).
pub const MAX_DEPTH: usize = 256;

/// Index of a node in a compiled expression.
pub type NodeId = u32;

/// One node of a compiled expression; children are earlier nodes.
#[derive(Clone, Debug)]
pub enum Node {
    Literal(Value),
    Field(FieldId),
    Slot(SlotId),
    Exists(FieldId),
    Neg(NodeId),
    Not(NodeId),
    And(NodeId, NodeId),
    Or(NodeId, NodeId),
    /// `a and b and c ...` (three or more terms).
    All(Box<[NodeId]>),
    /// `a or b or c ...` (three or more terms).
    Any(Box<[NodeId]>),
    Compare(BinaryOp, NodeId, NodeId),
    CompareFieldLiteral(BinaryOp, FieldId, Value),
    Arithmetic(BinaryOp, NodeId, NodeId),
    /// `a + b - c ...`: arithmetic operators applied left to right (two or
    /// more).
    Fold(NodeId, Box<[(BinaryOp, NodeId)]>),
    In(NodeId, Box<[NodeId]>),
    Call1(Function, NodeId),
    Call2(Function, NodeId, NodeId),
    /// `contains(field, "literal")`, with a precompiled substring searcher
    /// (and the literal, for a list field).
    ContainsFieldLiteral(FieldId, Box<(Value, memchr::memmem::Finder<'static>)>),
    Matches(NodeId, Arc<regex::Regex>),
    /// `x in list`.
    InList(NodeId, ListId),
    /// An indicator's value for the group of its arguments.
    Indicator(IndicatorId, Box<[NodeId]>),
    /// `indicator(field) op literal`: a one-argument indicator call on a
    /// field of the event, compared with a literal (a threshold rule's
    /// whole condition, evaluated without the evaluator's nodes).
    CompareIndicatorLiteral(BinaryOp, IndicatorId, FieldId, Value),
}

/// An expression ready to evaluate against events and a run's accumulators.
#[derive(Clone, Debug)]
pub struct CompiledExpr {
    pub(crate) nodes: Box<[Node]>,
    pub(crate) reads_stages: bool,
    pub(crate) reads_lookup: bool,
}

/// Why an expression could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprError {
    /// The event type has no such field (what the resolver said).
    UnknownField(FieldError),
    /// A field of the current event used in `select`, where there is none.
    FieldInSelect(FieldPath),
    /// A function called with the wrong number of arguments.
    Arity {
        /// The function.
        function: Function,
        /// Arguments given.
        given: usize,
    },
    /// An aggregate other than `count` without a field.
    MissingField(AggregateFunc),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExprError::UnknownField(e) => write!(f, "{e}"),
            ExprError::FieldInSelect(path) => write!(
                f,
                "`{path}` reads the current event, which `select` does not have; use a stage reference"
            ),
            ExprError::Arity { function, given } => write!(
                f,
                "`{}` takes {} argument(s), {given} given",
                function.name(),
                function.arity()
            ),
            ExprError::MissingField(func) => {
                write!(f, "`{}` needs a stage field, like `{}(s.f)`", func.name(), func.name())
            }
            ExprError::TooDeep => {
                write!(f, "expression nested deeper than the limit of {MAX_DEPTH}")
            }
        }
    }
}

impl std::error::Error for ExprError {}

impl CompiledExpr {
    /// Compiles a `where` (or `until`) condition: fields are resolved through
    /// `fields`, stage references become slots of `layout`.
    pub fn compile(
        expr: &Expr,
        fields: &mut dyn FieldResolver,
        layout: &mut AccumulatorLayoutBuilder,
    ) -> Result<CompiledExpr, ExprError> {
        Compiler::new(fields, layout).finish(expr)
    }

    /// Compiles a `select` expression, which reads stages only: a field of
    /// the current event is an error.
    pub fn compile_select(
        expr: &Expr,
        fields: &mut dyn FieldResolver,
        layout: &mut AccumulatorLayoutBuilder,
    ) -> Result<CompiledExpr, ExprError> {
        let mut compiler = Compiler::new(fields, layout);
        compiler.in_select = true;
        compiler.finish(expr)
    }

    /// Does the expression read what a run accepted before (stage
    /// references or aggregates)? If not, its value is the same for every
    /// run and may be computed once per event.
    pub fn reads_stages(&self) -> bool {
        self.reads_stages
    }

    /// Does the expression read a reference list or an indicator (so that
    /// it must be evaluated with the engine's [`Lookup`](crate::lookup::Lookup))?
    pub fn reads_lookup(&self) -> bool {
        self.reads_lookup
    }
}

struct Compiler<'a> {
    fields: &'a mut dyn FieldResolver,
    layout: &'a mut AccumulatorLayoutBuilder,
    nodes: Vec<Node>,
    in_select: bool,
    reads_stages: bool,
    reads_lookup: bool,
}

impl<'a> Compiler<'a> {
    fn new(
        fields: &'a mut dyn FieldResolver,
        layout: &'a mut AccumulatorLayoutBuilder,
    ) -> Compiler<'a> {
        Compiler {
            fields,
            layout,
            nodes: Vec::new(),
            in_select: false,
            reads_stages: false,
            reads_lookup: false,
        }
    }

    fn finish(mut self, expr: &Expr) -> Result<CompiledExpr, ExprError> {
        self.compile(expr, 0)?;
        Ok(CompiledExpr {
            nodes: self.nodes.into_boxed_slice(),
            reads_stages: self.reads_stages,
            reads_lookup: self.reads_lookup,
        })
    }

    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        (self.nodes.len() - 1) as NodeId
    }

    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, ExprError> {
        self.fields.resolve(path).map_err(ExprError::UnknownField)
    }

    fn event_field(&mut self, path: &FieldPath) -> Result<FieldId, ExprError> {
        if self.in_select {
            return Err(ExprError::FieldInSelect(path.clone()));
        }
        self.resolve(path)
    }

    fn slot(
        &mut self,
        stage: crate::primitives::StageId,
        func: AggregateFunc,
        path: Option<&FieldPath>,
    ) -> Result<NodeId, ExprError> {
        let field = match (func, path) {
            (AggregateFunc::Count, _) => None,
            (_, Some(path)) => Some(self.resolve(path)?),
            (_, None) => return Err(ExprError::MissingField(func)),
        };
        self.reads_stages = true;
        let slot = self.layout.slot(SlotSpec { stage, func, field });
        Ok(self.push(Node::Slot(slot)))
    }

    /// Compiles `expr` and its children (children first), returning its node.
    fn compile(&mut self, expr: &Expr, depth: usize) -> Result<NodeId, ExprError> {
        if depth > MAX_DEPTH {
            return Err(ExprError::TooDeep);
        }
        let depth = depth + 1;
        let node = match expr {
            Expr::Literal(v) => Node::Literal(v.clone()),
            Expr::Field(path) => Node::Field(self.event_field(path)?),
            Expr::Exists(path) => Node::Exists(self.event_field(path)?),
            Expr::StageField { stage, path } => {
                return self.slot(*stage, AggregateFunc::Last, Some(path))
            }
            Expr::Aggregate { func, stage, path } => {
                return self.slot(*stage, *func, path.as_ref())
            }
            Expr::Unary(op, x) => {
                let x = self.compile(x, depth)?;
                match op {
                    UnaryOp::Neg => Node::Neg(x),
                    UnaryOp::Not => Node::Not(x),
                }
            }
            Expr::Binary(op, x, y) => return self.binary(*op, x, y, depth),
            Expr::Chain(first, rest) => return self.chain(first, rest, depth),
            Expr::In(x, items) => {
                let x = self.compile(x, depth)?;
                let items = items
                    .iter()
                    .map(|item| self.compile(item, depth))
                    .collect::<Result<Box<[NodeId]>, ExprError>>()?;
                Node::In(x, items)
            }
            Expr::Call(function, args) => match (function.arity(), args.as_slice()) {
                (1, [x]) => Node::Call1(*function, self.compile(x, depth)?),
                (2, [Expr::Field(path), Expr::Literal(Value::Str(needle))])
                    if *function == Function::Contains && !self.in_select =>
                {
                    let field = self.resolve(path)?;
                    let finder = memchr::memmem::Finder::new(needle.as_bytes()).into_owned();
                    let literal = Value::Str(Arc::clone(needle));
                    Node::ContainsFieldLiteral(field, Box::new((literal, finder)))
                }
                (2, [x, y]) => {
                    let x = self.compile(x, depth)?;
                    Node::Call2(*function, x, self.compile(y, depth)?)
                }
                _ => {
                    return Err(ExprError::Arity {
                        function: *function,
                        given: args.len(),
                    })
                }
            },
            Expr::Matches(x, re) => Node::Matches(self.compile(x, depth)?, Arc::clone(re)),
            Expr::InList(x, list) => {
                self.reads_lookup = true;
                Node::InList(self.compile(x, depth)?, list.id)
            }
            Expr::Indicator(indicator, args) => {
                self.reads_lookup = true;
                let args = args
                    .iter()
                    .map(|arg| self.compile(arg, depth))
                    .collect::<Result<Box<[NodeId]>, ExprError>>()?;
                Node::Indicator(indicator.id, args)
            }
        };
        Ok(self.push(node))
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        x: &Expr,
        y: &Expr,
        depth: usize,
    ) -> Result<NodeId, ExprError> {
        if ops::is_comparison(op) && !self.in_select {
            match (x, y) {
                (Expr::Indicator(indicator, args), Expr::Literal(v)) => {
                    if let [Expr::Field(path)] = args.as_slice() {
                        let field = self.resolve(path)?;
                        self.reads_lookup = true;
                        let node =
                            Node::CompareIndicatorLiteral(op, indicator.id, field, v.clone());
                        return Ok(self.push(node));
                    }
                }
                (Expr::Literal(v), Expr::Indicator(indicator, args)) => {
                    if let [Expr::Field(path)] = args.as_slice() {
                        let field = self.resolve(path)?;
                        self.reads_lookup = true;
                        let op = ops::flip(op);
                        let node =
                            Node::CompareIndicatorLiteral(op, indicator.id, field, v.clone());
                        return Ok(self.push(node));
                    }
                }
                (Expr::Field(path), Expr::Literal(v)) => {
                    let field = self.resolve(path)?;
                    return Ok(self.push(Node::CompareFieldLiteral(op, field, v.clone())));
                }
                (Expr::Literal(v), Expr::Field(path)) => {
                    let field = self.resolve(path)?;
                    let op = ops::flip(op);
                    return Ok(self.push(Node::CompareFieldLiteral(op, field, v.clone())));
                }
                _ => {}
            }
        }
        let x = self.compile(x, depth)?;
        let y = self.compile(y, depth)?;
        Ok(self.push(binary_node(op, x, y)))
    }

    /// A chain, without recursion over its length: each run of `and`s, of
    /// `or`s or of arithmetic operators is one node over all its operands
    /// (a chain from the language is one run); a comparison is a node of
    /// its own. Every run nests the previous one, so runs count as depth.
    fn chain(
        &mut self,
        first: &Expr,
        rest: &[(BinaryOp, Expr)],
        depth: usize,
    ) -> Result<NodeId, ExprError> {
        let mut acc = self.compile(first, depth)?;
        let mut depth = depth;
        let mut i = 0;
        while let Some(&(op, _)) = rest.get(i) {
            if depth > MAX_DEPTH {
                return Err(ExprError::TooDeep);
            }
            depth += 1;
            let class = Class::of(op);
            let len = if class == Class::Compare {
                1
            } else {
                rest[i..]
                    .iter()
                    .take_while(|(o, _)| Class::of(*o) == class)
                    .count()
            };
            let run = &rest[i..i + len];
            i += len;
            if let [(op, y)] = run {
                let y = self.compile(y, depth)?;
                acc = self.push(binary_node(*op, acc, y));
                continue;
            }
            let node = if class == Class::Arithmetic {
                let mut terms = Vec::with_capacity(run.len());
                for (op, y) in run {
                    terms.push((*op, self.compile(y, depth)?));
                }
                Node::Fold(acc, terms.into_boxed_slice())
            } else {
                let mut terms = Vec::with_capacity(run.len() + 1);
                terms.push(acc);
                for (_, y) in run {
                    terms.push(self.compile(y, depth)?);
                }
                if class == Class::And {
                    Node::All(terms.into_boxed_slice())
                } else {
                    Node::Any(terms.into_boxed_slice())
                }
            };
            acc = self.push(node);
        }
        Ok(acc)
    }
}

/// The node of `x op y`, operands compiled.
fn binary_node(op: BinaryOp, x: NodeId, y: NodeId) -> Node {
    match op {
        BinaryOp::And => Node::And(x, y),
        BinaryOp::Or => Node::Or(x, y),
        op if ops::is_comparison(op) => Node::Compare(op, x, y),
        op => Node::Arithmetic(op, x, y),
    }
}

/// Which operators one node of a chain can hold together.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    And,
    Or,
    Compare,
    Arithmetic,
}

impl Class {
    fn of(op: BinaryOp) -> Class {
        match op {
            BinaryOp::And => Class::And,
            BinaryOp::Or => Class::Or,
            op if ops::is_comparison(op) => Class::Compare,
            _ => Class::Arithmetic,
        }
    }
}
