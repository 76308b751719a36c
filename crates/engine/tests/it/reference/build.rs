//! Test-only helpers to make pattern IR: a tiny reader for the `match` line
//! of the language (so examples read like the specification) and condition
//! constructors over the `{kind, value}` events of the differential test.
//!
//! This is deliberately not `cepheid_syntax`: the reference must not share
//! the front end's bugs.

use cepheid_core::expr::{AggregateFunc, BinaryOp, Expr};
use cepheid_core::pattern::{
    Condition, Contiguity, Element, ElementKind, InnerContiguity, Pattern, Quantifier, Sequence,
    Stage,
};
use cepheid_core::primitives::StageId;
use cepheid_engine::{FieldPath, Value};

/// `field == "text"`.
pub fn field_is(field: &str, text: &str) -> Condition {
    Condition::Expr(bin(
        BinaryOp::Eq,
        Expr::Field(FieldPath::single(field)),
        lit(Value::from(text)),
    ))
}

/// `kind == "c"`.
pub fn kind_is(kind: char) -> Condition {
    field_is("kind", &kind.to_string())
}

/// `kind in ["a", "b"]`.
pub fn kind_in(kinds: &[char]) -> Condition {
    let items = kinds
        .iter()
        .map(|k| lit(Value::from(k.to_string())))
        .collect();
    Condition::Expr(Expr::In(
        Box::new(Expr::Field(FieldPath::single("kind"))),
        items,
    ))
}

/// `value > k`.
pub fn value_gt(k: i64) -> Condition {
    Condition::Expr(bin(BinaryOp::Gt, value(), lit(Value::Int(k))))
}

/// `value > s.value` (false while `s` has no event).
pub fn value_gt_last(stage: StageId) -> Condition {
    let last = Expr::StageField {
        stage,
        path: FieldPath::single("value"),
    };
    Condition::Expr(bin(BinaryOp::Gt, value(), last))
}

/// `sum(s.value) + value < k`.
pub fn sum_lt(stage: StageId, k: i64) -> Condition {
    let sum = Expr::Aggregate {
        func: AggregateFunc::Sum,
        stage,
        path: Some(FieldPath::single("value")),
    };
    Condition::Expr(bin(
        BinaryOp::Lt,
        bin(BinaryOp::Add, sum, value()),
        lit(Value::Int(k)),
    ))
}

/// Both conditions.
pub fn and(a: Condition, b: Condition) -> Condition {
    match (a, b) {
        (Condition::True, x) | (x, Condition::True) => x,
        (Condition::Expr(x), Condition::Expr(y)) => Condition::Expr(bin(BinaryOp::And, x, y)),
        _ => panic!("native conditions cannot be combined"),
    }
}

fn value() -> Expr {
    Expr::Field(FieldPath::single("value"))
}

fn lit(v: Value) -> Expr {
    Expr::Literal(v)
}

fn bin(op: BinaryOp, x: Expr, y: Expr) -> Expr {
    Expr::Binary(op, Box::new(x), Box::new(y))
}

/// Builds a pattern from a `match` line; `conds` gives the `where` entries
/// (stages without one accept every event; `until` names refer to them).
pub fn pattern(text: &str, conds: &[(&str, Condition)]) -> Pattern {
    let tokens = tokenize(text);
    let mut reader = Reader {
        tokens,
        at: 0,
        conds,
        stages: Vec::new(),
    };
    let sequence = reader.sequence();
    assert!(
        reader.at == reader.tokens.len(),
        "unexpected `{}` in {text}",
        reader.tokens[reader.at]
    );
    Pattern::new("p", reader.stages, sequence)
}

fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        match c {
            '{' => {
                let mut q = String::from("{");
                for d in chars.by_ref() {
                    q.push(d);
                    if d == '}' {
                        break;
                    }
                }
                out.push(q);
            }
            c if c.is_whitespace() => {}
            c => out.push(c.to_string()),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

struct Reader<'a> {
    tokens: Vec<String>,
    at: usize,
    conds: &'a [(&'a str, Condition)],
    stages: Vec<Stage>,
}

impl Reader<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek() == Some(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn cond(&self, name: &str) -> Condition {
        self.conds
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Condition::True, |(_, c)| c.clone())
    }

    fn sequence(&mut self) -> Sequence {
        let mut elements = vec![self.element(Contiguity::Strict)];
        while let Some(c) = self.connector() {
            elements.push(self.element(c));
        }
        Sequence::new(elements)
    }

    fn connector(&mut self) -> Option<Contiguity> {
        if self.eat("next") {
            return Some(Contiguity::Strict);
        }
        if self.eat("not") {
            return Some(if self.eat("next") {
                Contiguity::NotNext
            } else {
                assert!(self.eat("followed") && self.eat("by"));
                Contiguity::NotFollowedBy
            });
        }
        if self.eat("followed") {
            assert!(self.eat("by"));
            return Some(if self.eat("any") {
                Contiguity::NonDeterministic
            } else {
                Contiguity::Relaxed
            });
        }
        None
    }

    fn element(&mut self, contiguity: Contiguity) -> Element {
        let kind = if self.eat("(") {
            let inner = self.sequence();
            assert!(self.eat(")"), "missing )");
            ElementKind::Group(inner)
        } else {
            let name = self.tokens[self.at].clone();
            self.at += 1;
            let id = StageId(self.stages.len() as u16);
            let condition = self.cond(&name);
            self.stages.push(Stage::new(name, condition));
            ElementKind::Stage(id)
        };
        let mut el = match kind {
            ElementKind::Stage(id) => Element::stage(id),
            ElementKind::Group(seq) => Element::group(seq),
            ElementKind::Alternation(_) => unreachable!("never built here"),
        };
        el.contiguity = contiguity;
        self.quantifier(&mut el);
        self.modifiers(&mut el);
        el
    }

    fn quantifier(&mut self, el: &mut Element) {
        let Some(tok) = self.peek().map(str::to_string) else {
            return;
        };
        match tok.as_str() {
            "?" => el.optional = true,
            "*" => {
                el.quantifier = Quantifier::AtLeast(1);
                el.optional = true;
            }
            "+" => el.quantifier = Quantifier::AtLeast(1),
            t if t.starts_with('{') => {
                let body = &t[1..t.len() - 1];
                let (lo, hi) = match body.split_once(',') {
                    None => (body.parse().unwrap(), Some(body.parse().unwrap())),
                    Some((lo, "")) => (lo.parse().unwrap(), None),
                    Some((lo, hi)) => (lo.parse().unwrap(), Some(hi.parse().unwrap())),
                };
                let lo: u32 = lo;
                if lo == 0 {
                    el.optional = true;
                }
                let lo = lo.max(1);
                el.quantifier = match hi {
                    None => Quantifier::AtLeast(lo),
                    Some(hi) => Quantifier::Times { min: lo, max: hi },
                };
            }
            _ => return,
        }
        self.at += 1;
    }

    fn modifiers(&mut self, el: &mut Element) {
        loop {
            if self.eat("optional") {
                el.optional = true;
            } else if self.eat("greedy") {
                el.greedy = true;
            } else if self.eat("consecutive") {
                el.inner = InnerContiguity::Consecutive;
            } else if self.eat("combinations") {
                el.inner = InnerContiguity::Combinations;
            } else if self.eat("until") {
                let name = self.tokens[self.at].clone();
                self.at += 1;
                el.until = Some(self.cond(&name));
            } else if self.eat("within") {
                let n: String = self.tokens[self.at]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                self.at += 1;
                el.within = Some(n.parse().unwrap());
            } else {
                return;
            }
        }
    }
}
