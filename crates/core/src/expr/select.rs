//! `select`: output fields computed once per complete match.
//!
//! A [`CompiledSelect`] has its own [`AccumulatorLayout`]. For each match the
//! match's events are folded, in the order they were taken, into fresh
//! accumulators; then every entry is evaluated over them. There is no
//! current event: `s.f` is field `f` of the last event of stage `s` in the
//! match.

use std::sync::Arc;

use super::accumulate::{AccumulatorLayout, AccumulatorLayoutBuilder};
use super::compile::{CompiledExpr, ExprError};
use crate::event::{Event, FieldResolver};
use crate::expr::SelectItem;
use crate::primitives::StageId;
use crate::value::Value;

/// The compiled `select` entries of one pattern.
#[derive(Clone, Debug, Default)]
pub struct CompiledSelect {
    names: Vec<Arc<str>>,
    exprs: Vec<CompiledExpr>,
    layout: AccumulatorLayout,
}

/// A `select` entry that failed to compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectError {
    /// Position of the entry in the `select` list.
    pub index: usize,
    /// Why it failed.
    pub error: ExprError,
}

impl CompiledSelect {
    /// Compiles `select` entries; fields are resolved through `fields`.
    pub fn compile(
        items: &[SelectItem],
        fields: &mut dyn FieldResolver,
    ) -> Result<CompiledSelect, SelectError> {
        let mut layout = AccumulatorLayoutBuilder::new();
        let mut names = Vec::with_capacity(items.len());
        let mut exprs = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let expr = CompiledExpr::compile_select(&item.expr, fields, &mut layout)
                .map_err(|error| SelectError { index, error })?;
            names.push(Arc::from(item.name.as_str()));
            exprs.push(expr);
        }
        Ok(CompiledSelect {
            names,
            exprs,
            layout: layout.finish(),
        })
    }

    /// The entries' names, in `select` order.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// Is there nothing to select?
    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// The values of every entry for one match, in `select` order, from the
    /// match's events in the order they were taken.
    pub fn values<'e, E, I>(&self, events: I) -> Vec<Value>
    where
        E: Event + ?Sized + 'e,
        I: IntoIterator<Item = (StageId, &'e E)>,
    {
        self.values_with(events, &crate::lookup::NO_LOOKUP)
    }

    /// [`values`](Self::values) reading lists and indicators from `lookup`.
    pub fn values_with<'e, E, I>(&self, events: I, lookup: &dyn crate::lookup::Lookup) -> Vec<Value>
    where
        E: Event + ?Sized + 'e,
        I: IntoIterator<Item = (StageId, &'e E)>,
    {
        let mut accumulators = self.layout.new_accumulators();
        for (stage, event) in events {
            accumulators.on_take(&self.layout, stage, event);
        }
        self.exprs
            .iter()
            .map(|e| e.eval_without_event_with(&accumulators, lookup))
            .collect()
    }

    /// The `(name, value)` pairs for one match, in `select` order.
    pub fn eval<'e, E, I>(&self, events: I) -> Vec<(Arc<str>, Value)>
    where
        E: Event + ?Sized + 'e,
        I: IntoIterator<Item = (StageId, &'e E)>,
    {
        self.names
            .iter()
            .cloned()
            .zip(self.values(events))
            .collect()
    }
}

impl std::fmt::Display for SelectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "select entry {}: {}", self.index + 1, self.error)
    }
}

impl std::error::Error for SelectError {}
