//! The syntax tree of a `.cep` file: what was written, with a [`Span`] on
//! every node, before any name is resolved.
//!
//! The printer ([`crate::print_file`]) writes any tree back as canonical
//! source, and parsing that source gives the same tree up to spans
//! ([`File::without_spans`] makes two trees comparable).

use crate::primitives::Span;

/// A whole file: its patterns, its declarations (lists, indicators,
/// factors) and its scenes, each in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    /// The patterns, in source order (a scene's own patterns are its).
    pub patterns: Vec<PatternDecl>,
    /// `list`, `indicator` and `factor` declarations, in source order.
    pub declarations: Vec<Declaration>,
    /// `scene` blocks, in source order.
    pub scenes: Vec<SceneDecl>,
}

/// `list ...`, `indicator ...` or `factor ...` with the `///` lines above
/// it.
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
    /// `factor NAME(params) = condition`.
    Factor(FactorDecl),
}

/// A factor as written: a named condition over the event with
/// parameters, usable in any `where` (`docs/language.md` §11).
#[derive(Clone, Debug, PartialEq)]
pub struct FactorDecl {
    /// Its parameters, in order (a call passes one value for each).
    pub params: Vec<Param>,
    /// The condition: an expression over the current event, its
    /// parameters, lists, indicators and other factors.
    pub body: Expr,
}

/// A parameter of a factor or a rule: `name`, `name: type`, and for a
/// rule `name = value` or `name: type = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: Ident,
    /// Its declared type, with where the type's word is written.
    pub ty: Option<(ParamType, Span)>,
    /// Its default value (rules only).
    pub default: Option<Constant>,
    /// The whole parameter.
    pub span: Span,
}

/// The types of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// `int`: an integer.
    Int,
    /// `number`: an integer or a float.
    Number,
    /// `duration`: a duration with its unit (`3h`), its milliseconds in
    /// expressions.
    Duration,
    /// `string`.
    String,
    /// `bool`.
    Bool,
}

impl ParamType {
    /// The type's word.
    pub fn word(self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Number => "number",
            ParamType::Duration => "duration",
            ParamType::String => "string",
            ParamType::Bool => "bool",
        }
    }

    /// The type named by `word`.
    pub fn from_word(word: &str) -> Option<ParamType> {
        Some(match word {
            "int" => ParamType::Int,
            "number" => ParamType::Number,
            "duration" => ParamType::Duration,
            "string" => ParamType::String,
            "bool" => ParamType::Bool,
            _ => return None,
        })
    }

    /// Every type's word, for messages.
    pub const WORDS: [&'static str; 5] = ["int", "number", "duration", "string", "bool"];
}

/// A constant: a parameter's value or default, a score threshold (a
/// literal, never null).
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    /// The value.
    pub literal: Literal,
    /// Where it is written.
    pub span: Span,
}

/// `scene NAME { ... }` with the `///` lines above it.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneDecl {
    /// Documentation lines.
    pub doc: Vec<String>,
    /// The scene's name.
    pub name: Ident,
    /// Its clauses, in source order.
    pub clauses: Vec<SceneClause>,
    /// The rules written inside it, in source order.
    pub patterns: Vec<PatternDecl>,
    /// From `scene` to the closing brace.
    pub span: Span,
}

/// A clause of a scene.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneClause {
    /// Which clause.
    pub kind: SceneClauseKind,
    /// The whole clause.
    pub span: Span,
}

/// The clauses of a scene.
#[derive(Clone, Debug, PartialEq)]
pub enum SceneClauseKind {
    /// `when c`: which events enter the scene.
    When(Expr),
    /// `id f`: the event's id field.
    Id(Path),
    /// `rules a, b, tagged "t"`.
    Rules(Vec<RuleRef>),
    /// `with name = value, ...`: values of the rules' parameters.
    With(Vec<Binding>),
    /// `outcomes a < b < c`, mildest first.
    Outcomes(Vec<Ident>),
    /// `default o`.
    Default(Ident),
    /// `fallback o`.
    Fallback(Ident),
    /// `late o`.
    Late(Ident),
    /// `deadline d`.
    Deadline(Duration),
    /// `hit first` / `hit all`.
    Hit(crate::scene::HitPolicy),
    /// `o if check`: when an outcome is given.
    Outcome {
        /// The outcome.
        outcome: Ident,
        /// What gives it.
        check: Check,
    },
}

impl SceneClauseKind {
    /// The clause's keyword, for messages (`if` for an outcome line).
    pub fn keyword(&self) -> &'static str {
        match self {
            SceneClauseKind::When(_) => "when",
            SceneClauseKind::Id(_) => "id",
            SceneClauseKind::Rules(_) => "rules",
            SceneClauseKind::With(_) => "with",
            SceneClauseKind::Outcomes(_) => "outcomes",
            SceneClauseKind::Default(_) => "default",
            SceneClauseKind::Fallback(_) => "fallback",
            SceneClauseKind::Late(_) => "late",
            SceneClauseKind::Deadline(_) => "deadline",
            SceneClauseKind::Hit(_) => "hit",
            SceneClauseKind::Outcome { .. } => "if",
        }
    }
}

/// A rule a scene holds by its `rules` clause.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleRef {
    /// By name.
    Name(Ident),
    /// `tagged "t"`: every rule whose `tags` has `t`.
    Tagged(StrLit),
}

impl RuleRef {
    /// Where it is written.
    pub fn span(&self) -> Span {
        match self {
            RuleRef::Name(i) => i.span,
            RuleRef::Tagged(t) => t.span,
        }
    }
}

/// `name = value` in a scene's `with`.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// The parameter's name.
    pub name: Ident,
    /// Its value.
    pub value: Constant,
    /// The whole binding.
    pub span: Span,
}

/// What gives an outcome (after `if`).
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// `action a`: a fired rule's action.
    Action(Ident),
    /// `score >= n` (`inclusive`) or `score > n`: the sum of the fired
    /// rules' scores.
    Score {
        /// `>=` rather than `>`.
        inclusive: bool,
        /// The threshold (a number).
        value: Constant,
    },
    /// `x in list`: a list check that decides at once (lowering checks
    /// that the expression is a list membership).
    List(Expr),
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
    /// The pattern's name (`rule@scene` for a rule's instance printed
    /// back: `docs/language.md` §11).
    pub name: Ident,
    /// Its parameters (a rule that scenes bind), in order.
    pub params: Vec<Param>,
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
        for s in &mut f.scenes {
            clear_scene(s);
        }
        f
    }
}

fn clear_params(params: &mut [Param]) {
    for p in params {
        p.span = Span::default();
        p.name.span = Span::default();
        if let Some((_, span)) = &mut p.ty {
            *span = Span::default();
        }
        if let Some(c) = &mut p.default {
            clear_constant(c);
        }
    }
}

fn clear_constant(c: &mut Constant) {
    c.span = Span::default();
    if let Literal::Duration(d) = &mut c.literal {
        d.span = Span::default();
    }
}

fn clear_scene(s: &mut SceneDecl) {
    s.span = Span::default();
    s.name.span = Span::default();
    s.patterns.iter_mut().for_each(clear_pattern);
    for c in &mut s.clauses {
        c.span = Span::default();
        match &mut c.kind {
            SceneClauseKind::When(e) => clear_expr(e),
            SceneClauseKind::Id(p) => clear_path(p),
            SceneClauseKind::Rules(refs) => {
                for r in refs {
                    match r {
                        RuleRef::Name(i) => i.span = Span::default(),
                        RuleRef::Tagged(t) => t.span = Span::default(),
                    }
                }
            }
            SceneClauseKind::With(bindings) => {
                for b in bindings {
                    b.span = Span::default();
                    b.name.span = Span::default();
                    clear_constant(&mut b.value);
                }
            }
            SceneClauseKind::Outcomes(names) => {
                names.iter_mut().for_each(|n| n.span = Span::default());
            }
            SceneClauseKind::Default(i)
            | SceneClauseKind::Fallback(i)
            | SceneClauseKind::Late(i) => {
                i.span = Span::default();
            }
            SceneClauseKind::Deadline(d) => d.span = Span::default(),
            SceneClauseKind::Hit(_) => {}
            SceneClauseKind::Outcome { outcome, check } => {
                outcome.span = Span::default();
                match check {
                    Check::Action(i) => i.span = Span::default(),
                    Check::Score { value, .. } => clear_constant(value),
                    Check::List(e) => clear_expr(e),
                }
            }
        }
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
        DeclarationKind::Factor(f) => {
            clear_params(&mut f.params);
            clear_expr(&mut f.body);
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
    clear_params(&mut p.params);
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
