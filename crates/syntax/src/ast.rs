//! The syntax tree of a `.cep` file: what was written, with a [`Span`] on
//! every node, before any name is resolved.
//!
//! The printer ([`crate::print_file`]) writes any tree back as canonical
//! source, and parsing that source gives the same tree up to spans
//! ([`File::without_spans`] makes two trees comparable).

use crate::primitives::Span;

/// A whole file: its patterns and its declarations (lists, indicators),
/// each in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    /// The patterns, in source order.
    pub patterns: Vec<PatternDecl>,
    /// `list` and `indicator` declarations, in source order.
    pub declarations: Vec<Declaration>,
}

/// `list ...` or `indicator ...` with the `///` lines above it.
#[derive(Clone, Debug, PartialEq)]
pub struct Declaration {
    /// Documentation lines.
    pub doc: Vec<String>,
    /// The declared name.
    pub name: Ident,
    /// What is declared.
    pub kind: DeclarationKind,
    /// From the keyword to the end of the declaration.
    pub span: Span,
}

/// The declarations of a file beside its patterns.
#[derive(Clone, Debug, PartialEq)]
pub enum DeclarationKind {
    /// `list NAME [of KIND] [for DURATION]`.
    List(ListDecl),
    /// `indicator NAME = FUNC(arg) [where c] [group by k, ...] within W`.
    Indicator(IndicatorDecl),
}

/// A reference list as written.
#[derive(Clone, Debug, PartialEq)]
pub struct ListDecl {
    /// `of values|prefixes|cidr`, with where the kind word is written.
    pub kind: Option<(crate::lookup::ListKind, Span)>,
    /// `for DURATION`: the default lifetime of an entry.
    pub expiry: Option<Duration>,
}

/// A rolling indicator as written.
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorDecl {
    /// The aggregate's name (`count`, `sum`, `avg`, `min`, `max`,
    /// `count_distinct`), checked by lowering.
    pub func: Ident,
    /// Its arguments (none for `count()`), checked by lowering.
    pub args: Vec<Expr>,
    /// The clauses after the aggregate, in source order.
    pub clauses: Vec<IndicatorClause>,
}

/// A clause of an indicator.
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorClause {
    /// Which clause.
    pub kind: IndicatorClauseKind,
    /// The whole clause.
    pub span: Span,
}

/// The clauses of an indicator.
#[derive(Clone, Debug, PartialEq)]
pub enum IndicatorClauseKind {
    /// `where c`: which events count.
    Where(Expr),
    /// `group by f, g`: the key of the groups.
    GroupBy(Vec<Path>),
    /// `within W`: the window.
    Within(Duration),
}

impl IndicatorClauseKind {
    /// The clause's keyword(s), for messages.
    pub fn keyword(&self) -> &'static str {
        match self {
            IndicatorClauseKind::Where(_) => "where",
            IndicatorClauseKind::GroupBy(_) => "group by",
            IndicatorClauseKind::Within(_) => "within",
        }
    }
}

/// `then add x to list [for d]` / `then remove x from list`, after
/// `select`.
#[derive(Clone, Debug, PartialEq)]
pub struct Effect {
    /// Add or remove.
    pub op: crate::lookup::WriteOp,
    /// The value written (stage references, like `select`).
    pub value: Expr,
    /// The list.
    pub list: Ident,
    /// `for d` (adds only).
    pub expiry: Option<Duration>,
    /// From `then` to the end.
    pub span: Span,
}

/// A string literal with where it is written (`tags "a", "b"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrLit {
    /// The text, escapes decoded.
    pub value: String,
    /// Where it is written.
    pub span: Span,
}

/// `pattern NAME { ... }` with the `///` lines above it.
#[derive(Clone, Debug, PartialEq)]
pub struct PatternDecl {
    /// Documentation lines (without `///` and one following space).
    pub doc: Vec<String>,
    /// The pattern's name.
    pub name: Ident,
    /// Clauses before `match`, in source order.
    pub clauses: Vec<Clause>,
    /// The `match` sequence.
    pub sequence: Sequence,
    /// `where` entries, in source order.
    pub where_entries: Vec<Entry>,
    /// `select` entries, in source order.
    pub select_entries: Vec<Entry>,
    /// `then` effects, in source order.
    pub effects: Vec<Effect>,
    /// From `pattern` to the closing brace.
    pub span: Span,
}

/// An identifier (pattern, stage, `where`/`select` entry, function name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The text.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// A clause before `match`.
#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    /// Which clause.
    pub kind: ClauseKind,
    /// The whole clause.
    pub span: Span,
}

/// The clauses of a pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum ClauseKind {
    /// `partition by f, g.h`.
    PartitionBy(Vec<Path>),
    /// `within 15m`.
    Within(Duration),
    /// `skip ...`.
    Skip(Skip),
    /// `timeouts`.
    Timeouts,
    /// `score 80` (a number literal).
    Score(Literal),
    /// `level high`.
    Level(Ident),
    /// `action block`.
    Action(Ident),
    /// `tags "a", "b"`.
    Tags(Vec<StrLit>),
    /// `shadow`: the pattern runs beside the live rules without acting
    /// (`docs/rule-lab.md`, "Shadow rules").
    Shadow,
}

impl ClauseKind {
    /// The clause's leading keyword(s), for messages.
    pub fn keyword(&self) -> &'static str {
        match self {
            ClauseKind::PartitionBy(_) => "partition by",
            ClauseKind::Within(_) => "within",
            ClauseKind::Skip(_) => "skip",
            ClauseKind::Timeouts => "timeouts",
            ClauseKind::Score(_) => "score",
            ClauseKind::Level(_) => "level",
            ClauseKind::Action(_) => "action",
            ClauseKind::Tags(_) => "tags",
            ClauseKind::Shadow => "shadow",
        }
    }
}

/// An after-match skip strategy as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Skip {
    /// `skip no skip`.
    NoSkip,
    /// `skip to next`.
    ToNext,
    /// `skip past last event`.
    PastLastEvent,
    /// `skip to first s`.
    ToFirst(Ident),
    /// `skip to last s`.
    ToLast(Ident),
}

/// A duration literal: an integer and a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duration {
    /// The number as written.
    pub value: u64,
    /// The unit as written.
    pub unit: TimeUnit,
    /// Where it is written.
    pub span: Span,
}

impl Duration {
    /// Milliseconds, or `None` when that does not fit an `i64`.
    pub fn millis(&self) -> Option<i64> {
        i64::try_from(self.value)
            .ok()?
            .checked_mul(self.unit.millis())
    }
}

/// Units of a duration: the one duration grammar of [`crate::time`].
pub use crate::time::TimeUnit;

/// A dotted field path; each segment an identifier or a backquoted name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// The segments (backquotes removed).
    pub segments: Vec<Ident>,
    /// The whole path.
    pub span: Span,
}

/// A `match` sequence: elements joined by connectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// The elements; every one but the first has a connector.
    pub elements: Vec<Element>,
    /// The whole sequence.
    pub span: Span,
}

/// A connector between two elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connector {
    /// Which connector (the IR's contiguity).
    pub kind: crate::pattern::Contiguity,
    /// Where it is written.
    pub span: Span,
}

/// One element of a sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    /// The connector before it (`None` for the first element).
    pub connector: Option<Connector>,
    /// A stage or a group.
    pub kind: ElementKind,
    /// The quantifier, if any.
    pub quantifier: Option<Quantifier>,
    /// The modifiers, in source order.
    pub modifiers: Vec<Modifier>,
    /// From the stage name (or `(`) to the last modifier.
    pub span: Span,
}

/// What an element matches.
#[derive(Clone, Debug, PartialEq)]
pub enum ElementKind {
    /// A stage.
    Stage(Ident),
    /// `( sequence )`.
    Group(Sequence),
    /// `x or y or ...`: two or more alternatives (branches). It is always
    /// the only element of its sequence (the whole `match`, or a group's
    /// inside): `or` and connectors do not mix on one level. Each
    /// alternative is an element without a connector (a stage or a group,
    /// with its own quantifier and modifiers); the alternation itself has
    /// neither quantifier nor modifiers (they go on the enclosing group).
    Alternation(Vec<Element>),
}

/// A quantifier as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantifier {
    /// Which quantifier.
    pub kind: QuantifierKind,
    /// Where it is written.
    pub span: Span,
}

/// The quantifiers of the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantifierKind {
    /// `?`.
    Optional,
    /// `*`.
    Star,
    /// `+`.
    Plus,
    /// `{n}`.
    Exactly(u64),
    /// `{n,}` (`None`) or `{n,m}`.
    Range(u64, Option<u64>),
}

/// A modifier after an element.
#[derive(Clone, Debug, PartialEq)]
pub struct Modifier {
    /// Which modifier.
    pub kind: ModifierKind,
    /// Where it is written.
    pub span: Span,
}

/// The modifiers of the language.
#[derive(Clone, Debug, PartialEq)]
pub enum ModifierKind {
    /// `optional`.
    Optional,
    /// `greedy`.
    Greedy,
    /// `consecutive`.
    Consecutive,
    /// `combinations`.
    Combinations,
    /// `until c`.
    Until(Ident),
    /// `within d`.
    Within(Duration),
}

impl ModifierKind {
    /// The modifier's keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            ModifierKind::Optional => "optional",
            ModifierKind::Greedy => "greedy",
            ModifierKind::Consecutive => "consecutive",
            ModifierKind::Combinations => "combinations",
            ModifierKind::Until(_) => "until",
            ModifierKind::Within(_) => "within",
        }
    }
}

/// A `where` (`name: expr`) or `select` (`name = expr`) entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The entry's name.
    pub name: Ident,
    /// Its expression.
    pub expr: Expr,
    /// The whole entry.
    pub span: Span,
}

/// An expression node.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is written (parentheses included when present).
    pub span: Span,
}

/// The expression forms.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A literal.
    Literal(Literal),
    /// A field path or a stage reference (`s.f`); resolved by lowering.
    Path(Path),
    /// A prefix operator.
    Unary(crate::expr::UnaryOp, Box<Expr>),
    /// One binary operator: `a op b`.
    Binary(crate::expr::BinaryOp, Box<Expr>, Box<Expr>),
    /// Two or more binary operators of one precedence level, applied left
    /// to right: `a - b + c` is `Chain(a, [(Sub, b), (Add, c)])`, which
    /// means `(a - b) + c`. Kept flat so that a long chain (`x and y and
    /// ...`, a thousand terms) is one node, not a thousand levels of
    /// nesting. The parser merges a bracketed left operand of the same
    /// level into the chain (`(a - b) - c` is `a - b - c`), and makes a
    /// `Binary` of a single operator; comparisons do not chain.
    Chain(Box<Expr>, Vec<(crate::expr::BinaryOp, Expr)>),
    /// `x in [a, b]`.
    In(Box<Expr>, Vec<Expr>),
    /// `x in name`: membership in a reference list (the name is checked by
    /// lowering).
    InList(Box<Expr>, Ident),
    /// `f(args)`: functions and aggregates.
    Call(Ident, Vec<Expr>),
}

/// Literal values.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (a leading `-` directly before the digits is part of it).
    Int(i64),
    /// A float (finite).
    Float(f64),
    /// A string (escapes decoded).
    Str(String),
    /// A duration (an integer of milliseconds in expressions).
    Duration(Duration),
}

impl File {
    /// A copy with every span set to the empty span, so that two trees can be
    /// compared for structure alone.
    pub fn without_spans(&self) -> File {
        let mut f = self.clone();
        for p in &mut f.patterns {
            clear_pattern(p);
        }
        for d in &mut f.declarations {
            clear_declaration(d);
        }
        f
    }
}

fn clear_declaration(d: &mut Declaration) {
    d.span = Span::default();
    d.name.span = Span::default();
    match &mut d.kind {
        DeclarationKind::List(l) => {
            if let Some((_, span)) = &mut l.kind {
                *span = Span::default();
            }
            if let Some(e) = &mut l.expiry {
                e.span = Span::default();
            }
        }
        DeclarationKind::Indicator(i) => {
            i.func.span = Span::default();
            i.args.iter_mut().for_each(clear_expr);
            for c in &mut i.clauses {
                c.span = Span::default();
                match &mut c.kind {
                    IndicatorClauseKind::Where(e) => clear_expr(e),
                    IndicatorClauseKind::GroupBy(paths) => paths.iter_mut().for_each(clear_path),
                    IndicatorClauseKind::Within(d) => d.span = Span::default(),
                }
            }
        }
    }
}

fn clear_pattern(p: &mut PatternDecl) {
    p.span = Span::default();
    p.name.span = Span::default();
    for c in &mut p.clauses {
        c.span = Span::default();
        match &mut c.kind {
            ClauseKind::PartitionBy(paths) => paths.iter_mut().for_each(clear_path),
            ClauseKind::Within(d) => d.span = Span::default(),
            ClauseKind::Skip(Skip::ToFirst(i) | Skip::ToLast(i)) => i.span = Span::default(),
            ClauseKind::Level(i) | ClauseKind::Action(i) => i.span = Span::default(),
            ClauseKind::Tags(tags) => tags.iter_mut().for_each(|t| t.span = Span::default()),
            ClauseKind::Score(Literal::Duration(d)) => d.span = Span::default(),
            ClauseKind::Skip(_)
            | ClauseKind::Timeouts
            | ClauseKind::Shadow
            | ClauseKind::Score(_) => {}
        }
    }
    for e in &mut p.effects {
        e.span = Span::default();
        e.list.span = Span::default();
        clear_expr(&mut e.value);
        if let Some(d) = &mut e.expiry {
            d.span = Span::default();
        }
    }
    clear_sequence(&mut p.sequence);
    for e in p.where_entries.iter_mut().chain(&mut p.select_entries) {
        e.span = Span::default();
        e.name.span = Span::default();
        clear_expr(&mut e.expr);
    }
}

fn clear_path(p: &mut Path) {
    p.span = Span::default();
    p.segments.iter_mut().for_each(|s| s.span = Span::default());
}

/// Clears spans of a sequence with an explicit stack (groups may nest).
fn clear_sequence(root: &mut Sequence) {
    let mut stack = vec![root];
    while let Some(seq) = stack.pop() {
        seq.span = Span::default();
        for e in &mut seq.elements {
            e.span = Span::default();
            if let Some(c) = &mut e.connector {
                c.span = Span::default();
            }
            if let Some(q) = &mut e.quantifier {
                q.span = Span::default();
            }
            for m in &mut e.modifiers {
                m.span = Span::default();
                match &mut m.kind {
                    ModifierKind::Until(i) => i.span = Span::default(),
                    ModifierKind::Within(d) => d.span = Span::default(),
                    _ => {}
                }
            }
            match &mut e.kind {
                ElementKind::Stage(i) => i.span = Span::default(),
                ElementKind::Group(inner) => stack.push(inner),
                ElementKind::Alternation(alts) => {
                    // Each alternative is cleared as a one-element sequence.
                    for a in alts.iter_mut() {
                        let mut one = Sequence {
                            elements: vec![std::mem::replace(a, placeholder())],
                            span: Span::default(),
                        };
                        clear_sequence(&mut one);
                        *a = one.elements.pop().expect("one element");
                    }
                }
            }
        }
    }
}

/// An element to swap out while its alternative is cleared.
fn placeholder() -> Element {
    Element {
        connector: None,
        kind: ElementKind::Group(Sequence {
            elements: Vec::new(),
            span: Span::default(),
        }),
        quantifier: None,
        modifiers: Vec::new(),
        span: Span::default(),
    }
}

/// Clears spans of an expression with an explicit stack.
pub(crate) fn clear_expr(root: &mut Expr) {
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        e.span = Span::default();
        match &mut e.kind {
            ExprKind::Literal(Literal::Duration(d)) => d.span = Span::default(),
            ExprKind::Literal(_) => {}
            ExprKind::Path(p) => clear_path(p),
            ExprKind::Unary(_, x) => stack.push(x),
            ExprKind::Binary(_, x, y) => {
                stack.push(x);
                stack.push(y);
            }
            ExprKind::Chain(x, rest) => {
                stack.push(x);
                stack.extend(rest.iter_mut().map(|(_, y)| y));
            }
            ExprKind::In(x, items) => {
                stack.push(x);
                stack.extend(items.iter_mut());
            }
            ExprKind::InList(x, list) => {
                list.span = Span::default();
                stack.push(x);
            }
            ExprKind::Call(name, args) => {
                name.span = Span::default();
                stack.extend(args.iter_mut());
            }
        }
    }
}
