//! Lowering expressions: AST [`ast::Expr`] → IR [`Expr`], resolving stage
//! references, aggregates, functions and regexes.
//!
//! - `s.f` with `s` a stage of the pattern is [`Expr::StageField`]; any other
//!   path is a field of the current event (in `select`: an error).
//! - `count(s)`, `sum(s.f)`, ... are [`Expr::Aggregate`].
//! - `matches(x, "re")` compiles the regex here, with a size limit.
//! - `exists(f)` is [`Expr::Exists`]; other known functions are
//!   [`Expr::Call`] with their arity checked.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{self, ExprKind, Literal, Path};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::event::FieldPath;
use crate::expr::{AggregateFunc, Expr, Function};
use crate::pattern::MAX_NESTING;
use crate::primitives::{Span, StageId};
use crate::value::Value;

/// Size limit of a compiled `matches` regex (bytes of the compiled program).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The most characters, character classes and assertions a `matches` regex
/// may have once its counted repetitions are written out (`a{3}` is `aaa`,
/// 3; `(ab|c){2,4}` is 4 × 3 = 12; `x*` and `x+` count `x` once).
///
/// A regex runs in time linear in the text, but when the regex engine
/// cannot use its DFA (some regexes need more DFA states than its cache
/// holds, on some texts) the factor is this size: about 10 ns per unit per
/// byte of text. At this limit the worst regex found costs about 1.3 s on a
/// 1 MiB string (the longest line `cepheid run` reads), about 1.3 µs per
/// byte; most regexes run at a DFA's speed, a few ms per MiB. Before the
/// limit, `a{10000}` took 84 s on a 1 MB string.
pub const REGEX_EXPANDED_LIMIT: u64 = 100;

/// Everything a function name can be (for suggestions, and the names an
/// indicator may not take).
pub(crate) const FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "first",
    "last",
    "distinct",
    "len",
    "lower",
    "upper",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "abs",
    "exists",
];

/// Where an expression is lowered.
pub(crate) struct ExprCx<'a> {
    /// The lists and indicators names may refer to.
    pub decls: &'a crate::lookup::Declarations,
    /// The factors calls may name.
    pub factors: &'a crate::factor::Factors,
    /// Lowering a factor's condition: the values of its parameters (the
    /// call's arguments, lowered where the call is).
    pub params: Option<&'a HashMap<String, Expr>>,
    /// How many more factor calls this expression may expand
    /// ([`crate::factor::MAX_FACTOR_EXPANSIONS`] at the start).
    pub budget: usize,
    /// Lowering an indicator's own expressions (which may not call
    /// indicators).
    pub in_indicator: bool,
    /// Stage names of the pattern → ids.
    pub stages: &'a HashMap<String, StageId>,
    /// `select` (no current event) or `where`.
    pub in_select: bool,
    /// Collected errors and warnings.
    pub diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'a> ExprCx<'a> {
    fn error(&mut self, kind: DiagnosticKind, span: crate::Span, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(kind, span, message));
    }

    /// Lowers `e`; errors are collected and the bad parts become `null`.
    pub fn lower(&mut self, e: &ast::Expr) -> Expr {
        self.lower_at(e, 0)
    }

    fn lower_at(&mut self, e: &ast::Expr, depth: usize) -> Expr {
        if depth > 2 * MAX_NESTING {
            self.error(
                DiagnosticKind::Limit,
                e.span,
                format!("this expression is nested more than {MAX_NESTING} levels deep"),
            );
            return Expr::Literal(Value::Null);
        }
        let d = depth + 1;
        match &e.kind {
            ExprKind::Literal(l) => self.literal(l),
            ExprKind::Path(p) => self.path(p),
            ExprKind::Unary(op, x) => Expr::Unary(*op, Box::new(self.lower_at(x, d))),
            ExprKind::Binary(op, l, r) => Expr::Binary(
                *op,
                Box::new(self.lower_at(l, d)),
                Box::new(self.lower_at(r, d)),
            ),
            ExprKind::Chain(first, rest) => Expr::Chain(
                Box::new(self.lower_at(first, d)),
                rest.iter()
                    .map(|(op, x)| (*op, self.lower_at(x, d)))
                    .collect(),
            ),
            ExprKind::In(x, items) => Expr::In(
                Box::new(self.lower_at(x, d)),
                items.iter().map(|i| self.lower_at(i, d)).collect(),
            ),
            ExprKind::Call(f, args) => self.call(f, args, e.span, d),
            ExprKind::InList(x, list) => {
                let x = self.lower_at(x, d);
                match crate::lower_decl::resolve_list(self.decls, list, self.diagnostics) {
                    Some(list) => Expr::InList(Box::new(x), list),
                    None => Expr::Literal(Value::Null),
                }
            }
        }
    }

    fn literal(&mut self, l: &Literal) -> Expr {
        Expr::Literal(match l {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Int(i) => Value::Int(*i),
            Literal::Float(f) => Value::Float(*f),
            Literal::Str(s) => Value::Str(Arc::from(s.as_str())),
            Literal::Duration(dur) => match dur.millis() {
                Some(ms) => Value::Int(ms),
                None => {
                    self.error(DiagnosticKind::Limit, dur.span, "this duration is too long");
                    Value::Null
                }
            },
        })
    }

    fn path(&mut self, p: &Path) -> Expr {
        let names: Vec<&str> = p.segments.iter().map(|s| s.name.as_str()).collect();
        if let Some(value) = self.param(p) {
            return value.clone();
        }
        self.warn_multiline(p);
        if let (Some(&stage), true) = (self.stages.get(names[0]), names.len() > 1) {
            return Expr::StageField {
                stage,
                path: field_path(&names[1..]),
            };
        }
        if self.in_select {
            self.field_in_select(p, &names);
            return Expr::Literal(Value::Null);
        }
        if names.len() > 1 {
            self.suggest_stage(p, names[0]);
        } else {
            self.warn_bare_stage(p, names[0]);
        }
        Expr::Field(field_path(&names))
    }

    /// The value of a factor's parameter written alone here (`max`; `` `max` ``
    /// is the event's field).
    fn param(&self, p: &Path) -> Option<&'a Expr> {
        let params = self.params?;
        let [segment] = p.segments.as_slice() else {
            return None;
        };
        let written = (segment.span.end - segment.span.start) as usize;
        if written != segment.name.len() {
            return None;
        }
        params.get(&segment.name)
    }

    /// A backquoted name that spans lines: legal (a JSON key may hold a
    /// line break, and printed patterns must parse back), but far more
    /// often a backquote left open and closed by the next one, lines
    /// further down, the text between taken as a field name.
    fn warn_multiline(&mut self, p: &Path) {
        for segment in p.segments.iter().filter(|s| s.name.contains('\n')) {
            let first_line = segment.name.split('\n').next().unwrap_or_default();
            self.diagnostics.push(
                Diagnostic::warning(
                    DiagnosticKind::UnknownName,
                    Span::new(
                        segment.span.start as usize,
                        segment.span.start as usize + 1 + first_line.len(),
                    ),
                    "this backquoted name goes on over a line break",
                )
                .with_help(
                    "close it with a '`' on its line, unless the field's name holds a line break",
                ),
            );
        }
    }

    /// A stage's name written alone (`b: a > 10` in a pattern with a stage
    /// `a`) reads the current event's field `a`, never the stage: almost
    /// always a slip for `a.field`. A warning, as the field may be meant:
    /// backquoting it (`` `a` ``) says so and silences it.
    fn warn_bare_stage(&mut self, p: &Path, name: &str) {
        let segment = &p.segments[0];
        let backquoted = (segment.span.end - segment.span.start) as usize != name.len();
        if backquoted || !self.stages.contains_key(name) {
            return;
        }
        self.diagnostics.push(
            Diagnostic::warning(
                DiagnosticKind::UnknownName,
                segment.span,
                format!("`{name}` alone reads the field `{name}` of the current event, not the stage `{name}`"),
            )
            .with_help(format!(
                "write `{name}.FIELD` for a field of the stage's last event, `count({name})` for how many it took, or `` `{name}` `` for the event's field"
            )),
        );
    }

    fn field_in_select(&mut self, p: &Path, names: &[&str]) {
        let shown = names.join(".");
        let mut d = Diagnostic::error(
            DiagnosticKind::FieldInSelect,
            p.span,
            format!("`select` has no current event, so `{shown}` cannot be read here"),
        );
        let help = match self.stages.keys().min() {
            Some(s) => format!("read it from a stage, e.g. `{s}.{shown}` or `last({s}.{shown})`"),
            None => "read it from a stage, e.g. `stage.field`".to_string(),
        };
        d = d.with_help(help);
        self.diagnostics.push(d);
    }

    /// A path `x.f` whose `x` looks like a misspelt stage name.
    fn suggest_stage(&mut self, p: &Path, first: &str) {
        let names: Vec<&str> = self.stages.keys().map(String::as_str).collect();
        if let Some(best) = closest(first, &names) {
            self.diagnostics.push(
                Diagnostic::warning(
                    DiagnosticKind::UnknownName,
                    p.segments[0].span,
                    format!(
                        "`{first}` is not a stage, so this reads a nested field of the current event"
                    ),
                )
                .with_help(format!("did you mean the stage `{best}`?")),
            );
        }
    }

    fn call(&mut self, f: &ast::Ident, args: &[ast::Expr], span: crate::Span, d: usize) -> Expr {
        if let Some((indicator, arity)) = crate::lower_decl::indicator(self.decls, &f.name) {
            if self.in_indicator {
                self.error(
                    DiagnosticKind::InvalidDeclaration,
                    f.span,
                    format!(
                        "an indicator cannot read another indicator (`{}`): each is computed from the events alone",
                        f.name
                    ),
                );
                return Expr::Literal(Value::Null);
            }
            if args.len() != arity {
                let plural = |n: usize| if n == 1 { "value" } else { "values" };
                self.diagnostics.push(
                    Diagnostic::error(
                        DiagnosticKind::BadArguments,
                        span,
                        format!(
                            "indicator `{}` is grouped by {arity} field(s), so it takes {arity} {}, but {} {} given",
                            f.name,
                            plural(arity),
                            args.len(),
                            if args.len() == 1 { "is" } else { "are" }
                        ),
                    )
                    .with_help("pass one value per `group by` field, in the same order"),
                );
                return Expr::Literal(Value::Null);
            }
            let args = args.iter().map(|a| self.lower_at(a, d)).collect();
            return Expr::Indicator(indicator, args);
        }
        if let Some(factor) = self.factors.get(&f.name) {
            return self.factor_call(std::sync::Arc::clone(factor), f, args, span, d);
        }
        if let Some(func) = AggregateFunc::from_name(&f.name) {
            return self.aggregate(func, f, args, span);
        }
        match f.name.as_str() {
            "matches" => return self.matches(f, args, span, d),
            "exists" => return self.exists(f, args, span),
            _ => {}
        }
        let Some(func) = Function::from_name(&f.name) else {
            let message = match (self.decls.indicators.is_empty(), self.factors.is_empty()) {
                (true, true) => format!("there is no function `{}`", f.name),
                (false, true) => format!("there is no function or indicator `{}`", f.name),
                (true, false) => format!("there is no function or factor `{}`", f.name),
                (false, false) => {
                    format!("there is no function, indicator or factor `{}`", f.name)
                }
            };
            let mut diag = Diagnostic::error(DiagnosticKind::UnknownFunction, f.span, message);
            let mut names: Vec<&str> = FUNCTIONS.to_vec();
            names.extend(self.decls.indicators.iter().map(|i| &*i.name));
            names.extend(self.factors.keys().map(String::as_str));
            if let Some(best) = closest(&f.name, &names) {
                diag = diag.with_help(format!("did you mean `{best}`?"));
            }
            self.diagnostics.push(diag);
            return Expr::Literal(Value::Null);
        };
        if args.len() != func.arity() {
            self.arity(f, func.arity(), args.len(), span);
            return Expr::Literal(Value::Null);
        }
        Expr::Call(func, args.iter().map(|a| self.lower_at(a, d)).collect())
    }

    /// A call of a factor: its condition, lowered with the call's
    /// arguments (lowered here) in place of its parameters and no stage (a
    /// factor reads the event alone). An error its condition gives only
    /// with these arguments is said at the call.
    fn factor_call(
        &mut self,
        factor: std::sync::Arc<crate::factor::FactorDef>,
        f: &ast::Ident,
        args: &[ast::Expr],
        span: crate::Span,
        d: usize,
    ) -> Expr {
        use crate::param::{accepts, literal_phrase, type_help, type_phrase};
        if self.in_select {
            self.error(
                DiagnosticKind::FieldInSelect,
                span,
                format!(
                    "factor `{}` reads the current event, and `select` has none",
                    f.name
                ),
            );
            return Expr::Literal(Value::Null);
        }
        if !factor.valid {
            self.error(
                DiagnosticKind::InvalidDeclaration,
                f.span,
                format!("factor `{}` {}", f.name, crate::factor::CANNOT_BE_CALLED),
            );
            return Expr::Literal(Value::Null);
        }
        if args.len() != factor.params.len() {
            let want = factor.params.len();
            let names: Vec<&str> = factor.params.iter().map(|p| p.name.as_str()).collect();
            self.diagnostics.push(
                Diagnostic::error(
                    DiagnosticKind::BadArguments,
                    span,
                    format!(
                        "factor `{}` takes {want} {}, but {} {} given",
                        f.name,
                        if want == 1 { "argument" } else { "arguments" },
                        args.len(),
                        if args.len() == 1 { "is" } else { "are" }
                    ),
                )
                .with_help(if names.is_empty() {
                    format!("call it `{}()`", f.name)
                } else {
                    format!(
                        "pass one value for each of its parameters: {}",
                        names.join(", ")
                    )
                }),
            );
            return Expr::Literal(Value::Null);
        }
        if self.budget == 0 {
            let message = format!(
                "the factors of this condition call more than {} factors in all",
                crate::factor::MAX_FACTOR_EXPANSIONS
            );
            // (said once: every call after the limit is over it too)
            if !self.diagnostics.iter().any(|d| d.message == message) {
                self.error(DiagnosticKind::Limit, span, message);
            }
            return Expr::Literal(Value::Null);
        }
        self.budget -= 1;
        if !self.factors.spend(factor.size) {
            let message = format!(
                "the factors called in this file write out more than {} expression nodes in all",
                crate::factor::MAX_FACTOR_NODES
            );
            if !self.diagnostics.iter().any(|d| d.message == message) {
                self.error(DiagnosticKind::Limit, span, message);
            }
            return Expr::Literal(Value::Null);
        }
        let mut values = HashMap::new();
        for (arg, p) in args.iter().zip(&factor.params) {
            let literal = match &arg.kind {
                ExprKind::Literal(l) => Some(l),
                _ => None,
            };
            if let (Some(ty), Some(l)) = (p.ty, literal) {
                if !accepts(ty, l) {
                    self.diagnostics.push(
                        Diagnostic::error(
                            DiagnosticKind::BadArguments,
                            arg.span,
                            format!(
                                "factor `{}` takes {} as `{}`, and this is {}",
                                f.name,
                                type_phrase(ty),
                                p.name,
                                literal_phrase(l)
                            ),
                        )
                        .with_help(type_help(ty)),
                    );
                }
            }
            values.insert(p.name.clone(), self.lower_at(arg, d));
        }
        let mut found = Vec::new();
        let mut inner = ExprCx {
            decls: self.decls,
            factors: self.factors,
            params: Some(&values),
            budget: self.budget,
            in_indicator: self.in_indicator,
            stages: crate::factor::no_stages(),
            in_select: false,
            diagnostics: &mut found,
        };
        let body = inner.lower_at(&factor.body, d);
        self.budget = inner.budget;
        for e in found.into_iter().filter(Diagnostic::is_error) {
            if factor.said.contains(&(e.message.clone(), e.span)) {
                continue;
            }
            // (the limit is the whole condition's: said once, as it is)
            let message = if e.message.starts_with("in factor `") || e.kind == DiagnosticKind::Limit
            {
                e.message
            } else {
                format!("in factor `{}`: {}", f.name, e.message)
            };
            if e.kind == DiagnosticKind::Limit
                && self.diagnostics.iter().any(|d| d.message == message)
            {
                continue;
            }
            let mut diag = Diagnostic::error(e.kind, span, message);
            diag.help = e.help;
            self.diagnostics.push(diag);
        }
        body
    }

    fn arity(&mut self, f: &ast::Ident, want: usize, got: usize, span: crate::Span) {
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        self.error(
            DiagnosticKind::BadArguments,
            span,
            format!(
                "`{}` takes {want} {}, but {got} {} given",
                f.name,
                plural(want),
                if got == 1 { "is" } else { "are" }
            ),
        );
    }

    fn aggregate(
        &mut self,
        func: AggregateFunc,
        f: &ast::Ident,
        args: &[ast::Expr],
        span: crate::Span,
    ) -> Expr {
        let name = func.name();
        let (usage, wants_field) = if func == AggregateFunc::Count {
            ("count(stage)".to_string(), false)
        } else {
            (format!("{name}(stage.field)"), true)
        };
        let path = match args {
            [ast::Expr {
                kind: ExprKind::Path(p),
                ..
            }] => p,
            _ => {
                self.arity(f, 1, args.len(), span);
                return Expr::Literal(Value::Null);
            }
        };
        let first = &path.segments[0];
        if self.params.is_some() {
            self.error(
                DiagnosticKind::UnknownName,
                span,
                format!(
                    "a factor reads the current event alone, so it cannot take `{name}` of a stage"
                ),
            );
            return Expr::Literal(Value::Null);
        }
        let Some(&stage) = self.stages.get(&first.name) else {
            let names: Vec<&str> = self.stages.keys().map(String::as_str).collect();
            let mut d = Diagnostic::error(
                DiagnosticKind::UnknownName,
                first.span,
                format!(
                    "`{name}` needs a stage of this pattern, and `{}` is none",
                    first.name
                ),
            )
            .with_help(format!("write `{usage}`"));
            if let Some(best) = closest(&first.name, &names) {
                d = d.with_help(format!(
                    "did you mean the stage `{best}`? (write `{usage}`)"
                ));
            }
            self.diagnostics.push(d);
            return Expr::Literal(Value::Null);
        };
        let has_field = path.segments.len() > 1;
        if has_field != wants_field {
            self.error(
                DiagnosticKind::BadArguments,
                path.span,
                format!("`{name}` is written `{usage}`"),
            );
            return Expr::Literal(Value::Null);
        }
        let names: Vec<&str> = path.segments[1..].iter().map(|s| s.name.as_str()).collect();
        Expr::Aggregate {
            func,
            stage,
            path: has_field.then(|| field_path(&names)),
        }
    }

    fn matches(&mut self, f: &ast::Ident, args: &[ast::Expr], span: crate::Span, d: usize) -> Expr {
        let [subject, re] = args else {
            self.arity(f, 2, args.len(), span);
            return Expr::Literal(Value::Null);
        };
        let from_param = match &re.kind {
            ExprKind::Path(p) => match self.param(p) {
                Some(Expr::Literal(Value::Str(s))) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        };
        let pattern = match (&re.kind, &from_param) {
            (_, Some(s)) => s,
            (ExprKind::Literal(Literal::Str(s)), None) => s,
            _ => {
                self.error(
                    DiagnosticKind::BadArguments,
                    re.span,
                    "the regex of `matches` must be a string literal, e.g. `matches(s, \"^a+$\")`",
                );
                return Expr::Literal(Value::Null);
            }
        };
        if let Ok(hir) = regex_syntax::Parser::new().parse(pattern) {
            let size = expanded_size(&hir);
            if size > REGEX_EXPANDED_LIMIT {
                self.diagnostics.push(
                    Diagnostic::error(
                        DiagnosticKind::InvalidRegex,
                        re.span,
                        format!(
                            "this regex is too costly to test on every event: written out \
                             (`a{{3}}` is `aaa`), it has {} characters and classes, and the \
                             limit is {REGEX_EXPANDED_LIMIT}",
                            shown_size(size)
                        ),
                    )
                    .with_help(
                        "testing a text takes up to this size times the text's length: use \
                         smaller counts, `+` or `*`, or `len(s)` to test a length",
                    ),
                );
                return Expr::Literal(Value::Null);
            }
        }
        let built = regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build();
        match built {
            Ok(regex) => Expr::Matches(Box::new(self.lower_at(subject, d)), Arc::new(regex)),
            Err(e) => {
                let detail = match e {
                    regex::Error::CompiledTooBig(limit) => {
                        format!("the regex is too large once compiled (limit {limit} bytes)")
                    }
                    other => other.to_string(),
                };
                let summary = detail
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                self.diagnostics.push(
                    Diagnostic::error(
                        DiagnosticKind::InvalidRegex,
                        re.span,
                        format!("invalid regex: {summary}"),
                    )
                    .with_help(detail),
                );
                Expr::Literal(Value::Null)
            }
        }
    }

    fn exists(&mut self, f: &ast::Ident, args: &[ast::Expr], span: crate::Span) -> Expr {
        let [ast::Expr {
            kind: ExprKind::Path(p),
            ..
        }] = args
        else {
            if args.len() == 1 {
                self.error(
                    DiagnosticKind::BadArguments,
                    args[0].span,
                    "`exists` takes a field name, e.g. `exists(user.id)`",
                );
            } else {
                self.arity(f, 1, args.len(), span);
            }
            return Expr::Literal(Value::Null);
        };
        let names: Vec<&str> = p.segments.iter().map(|s| s.name.as_str()).collect();
        if self.in_select {
            // `exists(stage)` in `select`: did the match take an event into
            // the stage (a stage of another branch of an alternation, or an
            // optional one, took none)? The same as `count(stage) > 0`.
            if let ([name], Some(&stage)) = (names.as_slice(), self.stages.get(names[0])) {
                let _ = name;
                return Expr::Binary(
                    crate::expr::BinaryOp::Gt,
                    Box::new(Expr::Aggregate {
                        func: AggregateFunc::Count,
                        stage,
                        path: None,
                    }),
                    Box::new(Expr::Literal(Value::Int(0))),
                );
            }
            // (not "read it from a stage, e.g. `a.a.x`": `select` has no
            // current event, and `exists` there takes a stage)
            let shown = names.join(".");
            let help = if self.stages.contains_key(names[0]) {
                format!(
                    "`exists({0})` says whether the match took an event into the stage `{0}`",
                    names[0]
                )
            } else {
                let mut stages: Vec<&str> = self.stages.keys().map(String::as_str).collect();
                stages.sort_unstable();
                format!("the pattern's stages: {}", stages.join(", "))
            };
            self.diagnostics.push(
                Diagnostic::error(
                    DiagnosticKind::FieldInSelect,
                    p.span,
                    format!("in `select`, `exists` takes a stage name, not `{shown}`"),
                )
                .with_help(help),
            );
            return Expr::Literal(Value::Null);
        }
        if names.len() > 1 && self.stages.contains_key(names[0]) {
            self.error(
                DiagnosticKind::BadArguments,
                p.span,
                format!(
                    "`exists` checks a field of the current event, but `{}` is a stage",
                    names[0]
                ),
            );
            return Expr::Literal(Value::Null);
        }
        Expr::Exists(field_path(&names))
    }
}

/// The size of a regex with its counted repetitions written out: each
/// character, class, assertion and empty regex counts one, times the counts
/// of the repetitions around it (`x{n,m}` counts `x` m times, `x{n,}` n
/// times, `x*` and `x+` once). Saturates; an explicit stack, as the regex
/// parser allows deep nesting.
fn expanded_size(hir: &regex_syntax::hir::Hir) -> u64 {
    use regex_syntax::hir::HirKind;
    let mut total = 0u64;
    let mut stack = vec![(hir, 1u64)];
    while let Some((h, times)) = stack.pop() {
        match h.kind() {
            HirKind::Empty | HirKind::Class(_) | HirKind::Look(_) => {
                total = total.saturating_add(times);
            }
            HirKind::Literal(lit) => {
                let chars = std::str::from_utf8(&lit.0).map_or(lit.0.len(), |s| s.chars().count());
                total = total.saturating_add(times.saturating_mul(chars as u64));
            }
            HirKind::Repetition(rep) => {
                let copies = rep.max.unwrap_or(rep.min.max(1));
                stack.push((&rep.sub, times.saturating_mul(u64::from(copies))));
            }
            HirKind::Capture(cap) => stack.push((&cap.sub, times)),
            HirKind::Concat(subs) | HirKind::Alternation(subs) => {
                stack.extend(subs.iter().map(|sub| (sub, times)));
            }
        }
    }
    total
}

/// A regex size for a message (a saturated one is "more than" the largest).
fn shown_size(size: u64) -> String {
    if size == u64::MAX {
        "more than 10^19".to_string()
    } else {
        size.to_string()
    }
}

fn field_path(names: &[&str]) -> FieldPath {
    FieldPath(names.iter().map(|n| Arc::from(*n)).collect())
}

/// The candidate closest to `word` by edit distance (an adjacent
/// transposition counting as one edit), when close enough to be a likely
/// typo: at most one edit for words of up to five characters, two beyond.
/// What every "did you mean" of the language says, and the typed builder's
/// for field names.
///
/// ```
/// use cepheid_syntax::closest;
/// assert_eq!(closest("amout", &["amount", "user"]), Some("amount"));
/// assert_eq!(closest("zzz", &["amount"]), None);
/// ```
pub fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).clamp(1, 2);
    candidates
        .iter()
        .filter(|c| **c != word)
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Edit distance counting an adjacent transposition as one edit (optimal
/// string alignment); inputs are names, cut at 64 characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_typos() {
        assert_eq!(closest("fial", &["fail", "login"]), Some("fail"));
        assert_eq!(closest("cont", &["count", "sum"]), Some("count"));
        assert_eq!(closest("zzz", &["count"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn regexes_are_measured_with_repetitions_written_out() {
        let size = |re: &str| expanded_size(&regex_syntax::Parser::new().parse(re).unwrap());
        assert_eq!(size("abc"), 3);
        assert_eq!(size("é"), 1);
        assert_eq!(size("(?i)abc"), 3);
        assert_eq!(size("a{10000}"), 10_000);
        assert_eq!(size("((a{10}){10}){10}{10}"), 10_000);
        assert_eq!(size("(ab|c){2,4}"), 12);
        assert_eq!(size("x*y+z?"), 3);
        assert_eq!(size("x{5,}"), 5);
        assert_eq!(size(r"^\d{1,3}(\.\d{1,3}){3}$"), 2 + 3 + 3 * 4);
        assert_eq!(size(r"\b\w+\b"), 3);
        assert_eq!(
            size("(a{1000}){1000}{1000}{1000}{1000}{1000}{1000}"),
            u64::MAX
        );
        assert_eq!(shown_size(u64::MAX), "more than 10^19");
    }
}
