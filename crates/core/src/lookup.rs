//! What conditions read outside the event: reference lists and rolling
//! indicators (`docs/design/lists-indicators.md`).
//!
//! A rule set declares its lists (`list blocked_ips`) and indicators
//! (`indicator logins_1h = count() where type == "login" group by user_id
//! within 1h`) beside its patterns. The language numbers them in one
//! [`Declarations`] table; expressions name them by [`ListRef`] and
//! [`IndicatorRef`] (id and name), so that evaluation indexes the state
//! the engine keeps for them (a [`Lookup`]) with no string in the hot path.
//!
//! The state itself (the entries of each list, each indicator's sliding
//! windows) is the engine's: this module defines only the vocabulary and
//! the trait an evaluation reads it through.

use std::fmt;
use std::sync::Arc;

use crate::event::FieldPath;
use crate::expr::Expr;
use crate::primitives::{DurationMs, Span};
use crate::value::{Value, ValueRef};

/// The number of a list in its rule set's [`Declarations`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListId(pub u32);

/// The number of an indicator in its rule set's [`Declarations`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndicatorId(pub u32);

/// A list as an expression names it: its number and its name (for
/// printing and messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRef {
    /// Its number.
    pub id: ListId,
    /// Its name.
    pub name: Arc<str>,
}

/// An indicator as an expression names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndicatorRef {
    /// Its number.
    pub id: IndicatorId,
    /// Its name.
    pub name: Arc<str>,
}

/// How a list's entries match a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `of values` (the default): the value equals an entry (`==`, so `1`
    /// and `1.0` are one entry).
    #[default]
    Values,
    /// `of prefixes`: an entry is a prefix of the value's text (card BINs:
    /// `"411111"` holds `"4111111111111111"`); the longest matching entry
    /// is found in at most one probe per character of the value.
    Prefixes,
    /// `of cidr`: an entry is an IPv4 or IPv6 network (`"10.0.0.0/8"`, a
    /// bare address is a `/32` or `/128`) holding the value, an address.
    Cidr,
}

impl ListKind {
    /// The word after `of`.
    pub fn word(self) -> &'static str {
        match self {
            ListKind::Values => "values",
            ListKind::Prefixes => "prefixes",
            ListKind::Cidr => "cidr",
        }
    }

    /// The kind named by a word after `of`.
    pub fn from_word(word: &str) -> Option<ListKind> {
        Some(match word {
            "values" => ListKind::Values,
            "prefixes" => ListKind::Prefixes,
            "cidr" => ListKind::Cidr,
            _ => return None,
        })
    }
}

/// `list NAME [of KIND] [for DURATION]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ListDecl {
    /// The list's name.
    pub name: Arc<str>,
    /// How entries match.
    pub kind: ListKind,
    /// How long an entry lives when it is added without a lifetime of its
    /// own (`None`: until removed).
    pub expiry: Option<DurationMs>,
    /// Where the name is written.
    pub span: Span,
}

/// The aggregate an indicator computes over its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndicatorFunc {
    /// `count()`: events in the window (meeting the condition).
    Count,
    /// `sum(x)`: 0 over no event.
    Sum,
    /// `avg(x)`: null over no event.
    Avg,
    /// `min(x)`: null over no event.
    Min,
    /// `max(x)`: null over no event.
    Max,
    /// `count_distinct(x)`: distinct non-null values (`==`).
    CountDistinct,
}

impl IndicatorFunc {
    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            IndicatorFunc::Count => "count",
            IndicatorFunc::Sum => "sum",
            IndicatorFunc::Avg => "avg",
            IndicatorFunc::Min => "min",
            IndicatorFunc::Max => "max",
            IndicatorFunc::CountDistinct => "count_distinct",
        }
    }

    /// The function of that name.
    pub fn from_name(name: &str) -> Option<IndicatorFunc> {
        Some(match name {
            "count" => IndicatorFunc::Count,
            "sum" => IndicatorFunc::Sum,
            "avg" => IndicatorFunc::Avg,
            "min" => IndicatorFunc::Min,
            "max" => IndicatorFunc::Max,
            "count_distinct" => IndicatorFunc::CountDistinct,
            _ => return None,
        })
    }

    /// Does it read a numeric value (`sum`, `avg`, `min`, `max`)?
    pub fn numeric(self) -> bool {
        matches!(
            self,
            IndicatorFunc::Sum | IndicatorFunc::Avg | IndicatorFunc::Min | IndicatorFunc::Max
        )
    }

    /// Does it take an argument (all but `count`)?
    pub fn takes_argument(self) -> bool {
        self != IndicatorFunc::Count
    }
}

/// `indicator NAME = FUNC(arg) [where cond] [group by k, ...] within W`.
#[derive(Clone, Debug)]
pub struct IndicatorDecl {
    /// The indicator's name.
    pub name: Arc<str>,
    /// The aggregate.
    pub func: IndicatorFunc,
    /// Its argument over the event (`None` for `count()`).
    pub argument: Option<Expr>,
    /// Which events count (`None`: every event).
    pub condition: Option<Expr>,
    /// The key of the groups: fields of the event; a call passes one value
    /// per field.
    pub group_by: Vec<FieldPath>,
    /// The window's length: the value at time `t` is over `(t - W, t]`.
    pub window: DurationMs,
    /// Where the name is written.
    pub span: Span,
}

impl IndicatorDecl {
    /// Number of arguments a call takes: one per `group by` field.
    pub fn arity(&self) -> usize {
        self.group_by.len()
    }

    /// Has `other` this one's name and definition (aggregate, argument,
    /// condition, `group by`, window)? Then a change of rules keeps this
    /// one's entries for it; otherwise it starts empty (`docs/semantics.md`,
    /// "Changes of rules and snapshots").
    pub fn same_definition(&self, other: &IndicatorDecl) -> bool {
        self.name == other.name
            && self.func == other.func
            && self.window == other.window
            && self.group_by == other.group_by
            // (the expressions compared as written, spans aside)
            && format!("{:?}{:?}", self.condition, self.argument)
                == format!("{:?}{:?}", other.condition, other.argument)
    }
}

/// A rule set's lists and indicators, numbered in declaration order
/// ([`ListId`] and [`IndicatorId`] index them).
#[derive(Clone, Debug, Default)]
pub struct Declarations {
    /// The lists.
    pub lists: Vec<ListDecl>,
    /// The indicators.
    pub indicators: Vec<IndicatorDecl>,
}

impl Declarations {
    /// No list and no indicator?
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty() && self.indicators.is_empty()
    }

    /// Does this table start with every list and indicator of `other`, by
    /// name, in order (so that `other`'s numbers mean the same here)?
    pub fn extends(&self, other: &Declarations) -> bool {
        other.lists.len() <= self.lists.len()
            && other.indicators.len() <= self.indicators.len()
            && other
                .lists
                .iter()
                .zip(&self.lists)
                .all(|(a, b)| a.name == b.name)
            && other
                .indicators
                .iter()
                .zip(&self.indicators)
                .all(|(a, b)| a.name == b.name)
    }

    /// How many lists and indicators.
    pub fn len(&self) -> usize {
        self.lists.len() + self.indicators.len()
    }

    /// The list named `name`.
    pub fn list(&self, name: &str) -> Option<ListRef> {
        let i = self.lists.iter().position(|l| &*l.name == name)?;
        Some(ListRef {
            id: ListId(i as u32),
            name: Arc::clone(&self.lists[i].name),
        })
    }

    /// The indicator named `name`.
    pub fn indicator(&self, name: &str) -> Option<IndicatorRef> {
        let i = self.indicators.iter().position(|l| &*l.name == name)?;
        Some(IndicatorRef {
            id: IndicatorId(i as u32),
            name: Arc::clone(&self.indicators[i].name),
        })
    }
}

/// The state conditions read outside the event, as an evaluation sees it:
/// the engine's lists and indicators at the event being evaluated.
pub trait Lookup {
    /// Does list `list` hold `value` (by the list's [`ListKind`])? `None`
    /// when `value` is null (membership of null is unknown, like any
    /// comparison with null).
    fn contains(&self, list: ListId, value: ValueRef<'_>) -> Option<bool>;

    /// The value of indicator `id` for the group `key` (one value per
    /// `group by` field) at the current event time.
    fn indicator(&self, id: IndicatorId, key: &[ValueRef<'_>]) -> Value;

    /// When the entry of `value` in list `list` expired, if it had one that
    /// expired by the current time (the latest, for a prefix or a network
    /// list): what a trace says of a lookup that found nothing
    /// (`Engine::why`). `None` when it had none, or when the lookup does
    /// not keep what expired (an engine keeps it only when it traces).
    fn expired(&self, _list: ListId, _value: ValueRef<'_>) -> Option<crate::primitives::Timestamp> {
        None
    }
}

/// The [`Lookup`] of an evaluation with no lists and no indicators: every
/// membership and indicator is null. (A pattern that reads a list is
/// evaluated with the engine's.)
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLookup;

impl Lookup for NoLookup {
    fn contains(&self, _: ListId, _: ValueRef<'_>) -> Option<bool> {
        None
    }

    fn indicator(&self, _: IndicatorId, _: &[ValueRef<'_>]) -> Value {
        Value::Null
    }
}

/// A `&'static` [`NoLookup`].
pub static NO_LOOKUP: NoLookup = NoLookup;

/// A [`Lookup`] as a matcher carries it down to its conditions, by value:
/// `&dyn Lookup` (an engine's lists and indicators), or [`NoLookup`]
/// itself, which takes no room: a matcher driven for a rule set that
/// declares no list and no indicator then carries nothing for them, and
/// a condition that reads none never asks.
pub trait LookupRef: Copy {
    /// The lookup.
    fn lookup(&self) -> &dyn Lookup;

    /// The lookup, `None` for [`NoLookup`] (so that what holds
    /// [`NO_LOOKUP`] already is left as it is).
    #[inline(always)]
    fn given(&self) -> Option<&dyn Lookup> {
        Some(self.lookup())
    }
}

impl LookupRef for &dyn Lookup {
    #[inline(always)]
    fn lookup(&self) -> &dyn Lookup {
        *self
    }
}

impl LookupRef for NoLookup {
    #[inline(always)]
    fn lookup(&self) -> &dyn Lookup {
        &NO_LOOKUP
    }

    #[inline(always)]
    fn given(&self) -> Option<&dyn Lookup> {
        None
    }
}

/// `then add x to list [for d]` / `then remove x from list`: what a
/// pattern's match writes to a list.
#[derive(Clone, Debug)]
pub struct ListWrite {
    /// Add or remove.
    pub op: WriteOp,
    /// The value written, evaluated over the match like `select`.
    pub value: Expr,
    /// The list written.
    pub list: ListRef,
    /// How long an added entry lives (`None`: the list's own expiry).
    pub expiry: Option<DurationMs>,
    /// Where the write is written.
    pub span: Span,
}

/// Whether a [`ListWrite`] adds or removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// `then add`.
    Add,
    /// `then remove`.
    Remove,
}

/// A list membership or an indicator call a stage's condition reads,
/// kept so that a record of the pattern can say what it read
/// (`"reads"`): the sub-expression, its canonical text, and the stage
/// whose condition holds it.
#[derive(Clone, Debug)]
pub struct LookupRead {
    /// The stage whose condition reads it.
    pub stage: crate::primitives::StageId,
    /// Its canonical text (`logins_1h(user_id)`, `ip in blocked_ips`).
    pub label: Arc<str>,
    /// The sub-expression.
    pub expr: Expr,
}

/// A pattern's rule attributes (`score`, `level`, `action`, `tags`),
/// carried by every record of the pattern.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes {
    /// `score 80`: a number.
    pub score: Option<Value>,
    /// `level high`.
    pub level: Option<Arc<str>>,
    /// `action block`.
    pub action: Option<Arc<str>>,
    /// `tags "login", "ato"`.
    pub tags: Vec<Arc<str>>,
}

impl Attributes {
    /// No attribute set?
    pub fn is_empty(&self) -> bool {
        self.score.is_none()
            && self.level.is_none()
            && self.action.is_none()
            && self.tags.is_empty()
    }
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}
