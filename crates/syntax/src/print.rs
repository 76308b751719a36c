//! The canonical printer: any [`File`] back to source text, such that
//! parsing the text gives the same tree (up to spans).
//!
//! Canonical form: four-space indentation, one clause per line in the order
//! written, `where`/`select` entries one per line, binary operators with
//! spaces, parentheses only where precedence or associativity needs them,
//! backquotes only around names that are not plain identifiers.

use std::fmt::Write;

use crate::ast::{
    Check, ClauseKind, Declaration, DeclarationKind, Duration, Element, ElementKind, Entry, Expr,
    ExprKind, File, IndicatorClauseKind, Literal, ModifierKind, Param, Path, PatternDecl,
    QuantifierKind, RuleRef, SceneClauseKind, SceneDecl, Sequence, Skip,
};
use crate::expr::{BinaryOp, UnaryOp};
use crate::lex::is_plain_ident;
use crate::lookup::WriteOp;

/// Prints a whole file.
pub fn print_file(file: &File) -> String {
    let mut out = String::new();
    for d in &file.declarations {
        print_declaration(&mut out, d);
    }
    for (i, p) in file.patterns.iter().enumerate() {
        if i > 0 || !file.declarations.is_empty() {
            out.push('\n');
        }
        print_pattern(&mut out, p);
    }
    for (i, scene) in file.scenes.iter().enumerate() {
        if i > 0 || !file.declarations.is_empty() || !file.patterns.is_empty() {
            out.push('\n');
        }
        print_scene(&mut out, scene);
    }
    out
}

/// `(a: int = 5, b)`.
fn print_params(out: &mut String, params: &[Param]) {
    out.push('(');
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&p.name.name);
        if let Some((ty, _)) = p.ty {
            let _ = write!(out, ": {}", ty.word());
        }
        if let Some(c) = &p.default {
            out.push_str(" = ");
            write_literal(out, &c.literal);
        }
    }
    out.push(')');
}

/// A scene: its clauses one per line in the order written, then the rules
/// written inside it.
fn print_scene(out: &mut String, scene: &SceneDecl) {
    print_doc(out, &scene.doc);
    let _ = writeln!(out, "scene {} {{", scene.name.name);
    for c in &scene.clauses {
        out.push_str("    ");
        match &c.kind {
            SceneClauseKind::When(e) => {
                out.push_str("when ");
                write_expr(out, e);
            }
            SceneClauseKind::Id(p) => {
                out.push_str("id ");
                print_path(out, p);
            }
            SceneClauseKind::Rules(refs) => {
                out.push_str("rules ");
                for (i, r) in refs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    match r {
                        RuleRef::Name(n) => out.push_str(&n.name),
                        RuleRef::Tagged(t) => {
                            out.push_str("tagged ");
                            write_string(out, &t.value);
                        }
                    }
                }
            }
            SceneClauseKind::With(bindings) => {
                out.push_str("with ");
                for (i, b) in bindings.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{} = ", b.name.name);
                    write_literal(out, &b.value.literal);
                }
            }
            SceneClauseKind::Outcomes(names) => {
                out.push_str("outcomes ");
                let names: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                out.push_str(&names.join(" < "));
            }
            SceneClauseKind::Default(o) => {
                let _ = write!(out, "default {}", o.name);
            }
            SceneClauseKind::Fallback(o) => {
                let _ = write!(out, "fallback {}", o.name);
            }
            SceneClauseKind::Late(o) => {
                let _ = write!(out, "late {}", o.name);
            }
            SceneClauseKind::Deadline(d) => {
                out.push_str("deadline ");
                print_duration(out, d);
            }
            SceneClauseKind::Hit(h) => {
                let _ = write!(out, "hit {}", h.word());
            }
            SceneClauseKind::Outcome { outcome, check } => {
                let _ = write!(out, "{} if ", outcome.name);
                match check {
                    Check::Action(a) => {
                        let _ = write!(out, "action {}", a.name);
                    }
                    Check::Score { inclusive, value } => {
                        out.push_str(if *inclusive { "score >= " } else { "score > " });
                        write_literal(out, &value.literal);
                    }
                    Check::List(e) => write_expr(out, e),
                }
            }
        }
        out.push('\n');
    }
    for p in &scene.patterns {
        let mut text = String::new();
        print_pattern(&mut text, p);
        // (indented, unless a backquoted name might hold a line break:
        // whitespace means nothing between tokens, but inside one it would)
        if text.contains('`') {
            out.push_str(&text);
            continue;
        }
        for line in text.split_inclusive('\n') {
            if line != "\n" {
                out.push_str("    ");
            }
            out.push_str(line);
        }
    }
    out.push_str("}\n");
}

fn print_doc(out: &mut String, doc: &[String]) {
    for line in doc {
        if line.is_empty() {
            out.push_str("///\n");
        } else {
            let _ = writeln!(out, "/// {line}");
        }
    }
}

/// A declaration on one line: `list NAME [of KIND] [for D]`, `indicator
/// NAME = f(x) where c group by k within W` (clauses in the order
/// written).
fn print_declaration(out: &mut String, d: &Declaration) {
    print_doc(out, &d.doc);
    match &d.kind {
        DeclarationKind::List(l) => {
            let _ = write!(out, "list {}", d.name.name);
            if let Some((kind, _)) = l.kind {
                let _ = write!(out, " of {}", kind.word());
            }
            if let Some(e) = &l.expiry {
                out.push_str(" for ");
                print_duration(out, e);
            }
        }
        DeclarationKind::Factor(f) => {
            let _ = write!(out, "factor {}", d.name.name);
            print_params(out, &f.params);
            out.push_str(" = ");
            write_expr(out, &f.body);
        }
        DeclarationKind::Indicator(i) => {
            let _ = write!(out, "indicator {} = {}(", d.name.name, i.func.name);
            write_list(out, &i.args);
            out.push(')');
            for c in &i.clauses {
                match &c.kind {
                    IndicatorClauseKind::Where(e) => {
                        out.push_str(" where ");
                        write_expr(out, e);
                    }
                    IndicatorClauseKind::GroupBy(paths) => {
                        out.push_str(" group by ");
                        print_paths(out, paths);
                    }
                    IndicatorClauseKind::Within(w) => {
                        out.push_str(" within ");
                        print_duration(out, w);
                    }
                }
            }
        }
    }
    out.push('\n');
}

fn print_paths(out: &mut String, paths: &[Path]) {
    for (i, path) in paths.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        print_path(out, path);
    }
}

fn print_pattern(out: &mut String, p: &PatternDecl) {
    for line in &p.doc {
        if line.is_empty() {
            out.push_str("///\n");
        } else {
            let _ = writeln!(out, "/// {line}");
        }
    }
    let _ = write!(out, "pattern {}", p.name.name);
    if !p.params.is_empty() {
        print_params(out, &p.params);
    }
    out.push_str(" {\n");
    for c in &p.clauses {
        out.push_str("    ");
        match &c.kind {
            ClauseKind::PartitionBy(paths) => {
                out.push_str("partition by ");
                for (i, path) in paths.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    print_path(out, path);
                }
            }
            ClauseKind::Within(d) => {
                out.push_str("within ");
                print_duration(out, d);
            }
            ClauseKind::Skip(s) => {
                out.push_str("skip ");
                out.push_str(&skip_text(s));
            }
            ClauseKind::Timeouts => out.push_str("timeouts"),
            ClauseKind::Shadow => out.push_str("shadow"),
            ClauseKind::Score(l) => {
                out.push_str("score ");
                write_literal(out, l);
            }
            ClauseKind::Level(i) => {
                let _ = write!(out, "level {}", i.name);
            }
            ClauseKind::Action(i) => {
                let _ = write!(out, "action {}", i.name);
            }
            ClauseKind::Tags(tags) => {
                out.push_str("tags ");
                for (i, t) in tags.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_string(out, &t.value);
                }
            }
        }
        out.push('\n');
    }
    out.push_str("    match ");
    print_sequence(out, &p.sequence);
    out.push('\n');
    print_entries(out, "where", ": ", &p.where_entries);
    print_entries(out, "select", " = ", &p.select_entries);
    for e in &p.effects {
        out.push_str("    then ");
        match e.op {
            WriteOp::Add => out.push_str("add "),
            WriteOp::Remove => out.push_str("remove "),
        }
        write_expr(out, &e.value);
        let preposition = match e.op {
            WriteOp::Add => "to",
            WriteOp::Remove => "from",
        };
        let _ = write!(out, " {preposition} {}", e.list.name);
        if let Some(d) = &e.expiry {
            out.push_str(" for ");
            print_duration(out, d);
        }
        out.push('\n');
    }
    out.push_str("}\n");
}

/// The skip strategy as written after `skip`.
fn skip_text(s: &Skip) -> String {
    match s {
        Skip::NoSkip => "no skip".to_string(),
        Skip::ToNext => "to next".to_string(),
        Skip::PastLastEvent => "past last event".to_string(),
        Skip::ToFirst(i) => format!("to first {}", i.name),
        Skip::ToLast(i) => format!("to last {}", i.name),
    }
}

fn print_entries(out: &mut String, head: &str, sep: &str, entries: &[Entry]) {
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(out, "    {head}");
    for e in entries {
        let _ = writeln!(out, "        {}{sep}{}", e.name.name, print_expr(&e.expr));
    }
}

/// Prints a sequence on one line.
pub fn print_sequence(out: &mut String, seq: &Sequence) {
    for (i, e) in seq.elements.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        print_element(out, e);
    }
}

fn print_element(out: &mut String, e: &Element) {
    if let Some(c) = &e.connector {
        out.push_str(c.kind.keyword());
        out.push(' ');
    }
    match &e.kind {
        ElementKind::Stage(id) => out.push_str(&id.name),
        ElementKind::Group(seq) => {
            out.push('(');
            print_sequence(out, seq);
            out.push(')');
        }
        ElementKind::Alternation(alts) => {
            for (i, a) in alts.iter().enumerate() {
                if i > 0 {
                    out.push_str(" or ");
                }
                print_element(out, a);
            }
        }
    }
    if let Some(q) = &e.quantifier {
        match q.kind {
            QuantifierKind::Optional => out.push('?'),
            QuantifierKind::Star => out.push('*'),
            QuantifierKind::Plus => out.push('+'),
            QuantifierKind::Exactly(n) => {
                let _ = write!(out, "{{{n}}}");
            }
            QuantifierKind::Range(n, None) => {
                let _ = write!(out, "{{{n},}}");
            }
            QuantifierKind::Range(n, Some(m)) => {
                let _ = write!(out, "{{{n},{m}}}");
            }
        }
    }
    for m in &e.modifiers {
        out.push(' ');
        out.push_str(m.kind.keyword());
        match &m.kind {
            ModifierKind::Until(c) => {
                out.push(' ');
                out.push_str(&c.name);
            }
            ModifierKind::Within(d) => {
                out.push(' ');
                print_duration(out, d);
            }
            _ => {}
        }
    }
}

fn print_duration(out: &mut String, d: &Duration) {
    let _ = write!(out, "{}{}", d.value, d.unit.suffix());
}

/// Writes a pattern's name: a plain identifier, or `rule@scene` for a
/// rule's instance (both parts plain identifiers); otherwise backquoted
/// as [`print_name`] does.
pub fn print_pattern_name(out: &mut String, name: &str) {
    match name.split_once('@') {
        Some((rule, scene)) if is_plain_ident(rule) && is_plain_ident(scene) => {
            out.push_str(name);
        }
        _ => print_name(out, name),
    }
}

/// Writes a name, backquoted when it is not a plain identifier.
pub fn print_name(out: &mut String, name: &str) {
    if is_plain_ident(name) {
        out.push_str(name);
    } else {
        let _ = write!(out, "`{name}`");
    }
}

fn print_path(out: &mut String, p: &Path) {
    for (i, s) in p.segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        print_name(out, &s.name);
    }
}

/// Binding strength of an operator (larger binds tighter).
pub(crate) fn binary_precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            4
        }
        BinaryOp::Add | BinaryOp::Sub => 5,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 6,
    }
}

/// Precedence of `not`, comparisons, unary minus and primaries.
pub(crate) const NOT: u8 = 3;
pub(crate) const COMPARISON: u8 = 4;
pub(crate) const NEG: u8 = 7;
pub(crate) const PRIMARY: u8 = 8;

fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, ..) => binary_precedence(*op),
        // The last operator is applied last.
        ExprKind::Chain(first, rest) => rest
            .last()
            .map_or_else(|| precedence(first), |(op, _)| binary_precedence(*op)),
        ExprKind::In(..) | ExprKind::InList(..) => COMPARISON,
        ExprKind::Unary(UnaryOp::Not, _) => NOT,
        ExprKind::Unary(UnaryOp::Neg, _) => NEG,
        _ => PRIMARY,
    }
}

/// Prints an expression in canonical form.
pub fn print_expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

fn write_wrapped(out: &mut String, e: &Expr, parens: bool) {
    if parens {
        out.push('(');
    }
    write_expr(out, e);
    if parens {
        out.push(')');
    }
}

fn write_expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Literal(l) => write_literal(out, l),
        ExprKind::Path(p) => print_path(out, p),
        ExprKind::Unary(UnaryOp::Not, x) => {
            out.push_str("not ");
            write_wrapped(out, x, precedence(x) < NOT);
        }
        ExprKind::Unary(UnaryOp::Neg, x) => {
            let (starts_with_minus, starts_with_digit) = match &x.kind {
                ExprKind::Literal(Literal::Int(i)) => (*i < 0, *i >= 0),
                ExprKind::Literal(Literal::Float(f)) => {
                    (f.is_sign_negative(), f.is_sign_positive())
                }
                ExprKind::Unary(UnaryOp::Neg, _) => (true, false),
                _ => (false, false),
            };
            write_negation(out, starts_with_minus);
            write_wrapped(out, x, starts_with_digit || precedence(x) < NEG);
        }
        ExprKind::Binary(op, l, r) => write_run(
            out,
            &**l,
            std::iter::once((*op, &**r)),
            precedence,
            write_expr,
        ),
        ExprKind::Chain(first, rest) => write_run(
            out,
            &**first,
            rest.iter().map(|(op, x)| (*op, x)),
            precedence,
            write_expr,
        ),
        ExprKind::In(x, items) => {
            write_wrapped(out, x, precedence(x) <= COMPARISON);
            out.push_str(" in [");
            write_list(out, items);
            out.push(']');
        }
        ExprKind::InList(x, list) => {
            write_wrapped(out, x, precedence(x) <= COMPARISON);
            let _ = write!(out, " in {}", list.name);
        }
        ExprKind::Call(f, args) => {
            out.push_str(&f.name);
            out.push('(');
            write_list(out, args);
            out.push(')');
        }
    }
}

/// Writes the `-` of a negation: `- -x` and `- -5` keep a space, so that
/// the text is one minus after another (the operand of `-` needs no
/// brackets unless it binds more loosely, or is a number that the `-` would
/// otherwise join: `-(5)` is the negation of 5, `-5` a literal).
pub(crate) fn write_negation(out: &mut String, operand_starts_with_minus: bool) {
    out.push('-');
    if operand_starts_with_minus {
        out.push(' ');
    }
}

/// Does the left operand of `op` need brackets, given its precedence?
/// Binary operators are left-associative, so a left operand of the same
/// level needs none, except for comparisons, which do not chain.
fn left_needs_brackets(left: u8, op: BinaryOp) -> bool {
    let p = binary_precedence(op);
    left < p || (p == COMPARISON && left == COMPARISON)
}

/// Writes `first op1 x1 op2 x2 ...`, applied left to right, with brackets
/// only where precedence or associativity needs them. The operators of a
/// parsed chain share one level; a chain built by hand that mixes levels
/// still prints with its meaning (`(a + b) * c`), the brackets counted
/// first so that nothing is inserted into the text afterwards.
pub(crate) fn write_run<'e, T: 'e>(
    out: &mut String,
    first: &'e T,
    rest: impl Iterator<Item = (BinaryOp, &'e T)> + Clone,
    precedence: impl Fn(&T) -> u8,
    write: impl Fn(&mut String, &T),
) {
    let mut level = precedence(first);
    let mut opens = 0;
    for (op, _) in rest.clone() {
        opens += usize::from(left_needs_brackets(level, op));
        level = binary_precedence(op);
    }
    out.extend(std::iter::repeat('(').take(opens));
    write(out, first);
    let mut level = precedence(first);
    for (op, x) in rest {
        if left_needs_brackets(level, op) {
            out.push(')');
        }
        level = binary_precedence(op);
        let _ = write!(out, " {} ", op.symbol());
        let wrap = precedence(x) <= level;
        if wrap {
            out.push('(');
        }
        write(out, x);
        if wrap {
            out.push(')');
        }
    }
}

fn write_list(out: &mut String, items: &[Expr]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, item);
    }
}

/// A literal as written in canonical form.
pub(crate) fn literal_text(l: &Literal) -> String {
    let mut out = String::new();
    write_literal(&mut out, l);
    out
}

fn write_literal(out: &mut String, l: &Literal) {
    match l {
        Literal::Null => out.push_str("null"),
        Literal::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Literal::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Literal::Float(f) => write_float(out, *f),
        Literal::Str(s) => write_string(out, s),
        Literal::Duration(d) => print_duration(out, d),
    }
}

/// Writes a float so that it reads back as the same float (and as a float).
pub(crate) fn write_float(out: &mut String, f: f64) {
    let text = format!("{f:?}");
    out.push_str(&text);
    if !text.contains(['.', 'e', 'E', 'N', 'i']) {
        out.push_str(".0");
    }
}

/// Writes a string literal with the language's escapes.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use crate::{parse, parse_expression};

    fn round(src: &str) -> String {
        super::print_expr(&parse_expression(src).unwrap())
    }

    #[test]
    fn parentheses_only_where_needed() {
        assert_eq!(round("(a + b) * c"), "(a + b) * c");
        assert_eq!(round("a + (b * c)"), "a + b * c");
        assert_eq!(round("a - (b - c)"), "a - (b - c)");
        assert_eq!(round("(a - b) - c"), "a - b - c");
        assert_eq!(round("not (a and b)"), "not (a and b)");
        assert_eq!(round("!a && b || c"), "not a and b or c");
        assert_eq!(round("(a < b) == c"), "(a < b) == c");
        assert_eq!(round("-(5)"), "-(5)");
        assert_eq!(round("- -5"), "- -5");
        assert_eq!(round("-(-(5))"), "- -(5)");
        assert_eq!(round("--x"), "- -x");
        assert_eq!(round("-5s"), "-5s");
        assert_eq!(round("-(a + b)"), "-(a + b)");
        assert_eq!(round("-x * 2"), "-x * 2");
        assert_eq!(round("(a + b) + (c + d)"), "a + b + (c + d)");
        assert_eq!(round("a * b + c * d - e"), "a * b + c * d - e");
        assert_eq!(
            round("(a or b) and (c or d) and e"),
            "(a or b) and (c or d) and e"
        );
    }

    #[test]
    fn literals_print_back() {
        assert_eq!(round("1.0"), "1.0");
        assert_eq!(round("1e300"), "1e300");
        assert_eq!(round(r#""a\"\n\u{7}""#), r#""a\"\n\u{7}""#);
        assert_eq!(
            round("`user-agent` in [1, 2m, null]"),
            "`user-agent` in [1, 2m, null]"
        );
    }

    #[test]
    fn file_prints_canonically() {
        let src = "/// Doc.\n///\npattern p { within 10s skip to first a timeouts partition by `a b`.c, d \
                   match a{2,} consecutive greedy followed by any (b next c)? not followed by d \
                   where a: x > 1 select n = count(a) }";
        let file = parse(src).unwrap();
        let printed = super::print_file(&file);
        assert_eq!(
            printed,
            "/// Doc.\n///\npattern p {\n    within 10s\n    skip to first a\n    timeouts\n    \
             partition by `a b`.c, d\n    match a{2,} consecutive greedy followed by any (b next c)? \
             not followed by d\n    where\n        a: x > 1\n    select\n        n = count(a)\n}\n"
        );
        assert_eq!(
            parse(&printed).unwrap().without_spans(),
            file.without_spans()
        );
    }
}
