//! Which worker an event goes to: groups of patterns partitioned alike, and
//! its key's group (the stable hash of a key is the runtime's, a cut's
//! format: `cepheid_runtime::checkpoint::key_hash`).

use serde::{Deserialize, Serialize};
use timely::communication::Push;
use timely::dataflow::channels::pact::DistributorPact;
use timely::dataflow::channels::pushers::exchange::Distributor;
use timely::dataflow::channels::{Message, Stamp};

use crate::event::{Event, FieldId, FieldPath, FieldResolver};
use crate::pattern::{NativeKeyFn, Pattern};
use crate::value::{key_part, Value, ValueRef};
use crate::{Input, Plan, Stamped};
use cepheid_runtime::checkpoint::{encode_key, encode_value as encode, key_group_of_bytes};
pub use cepheid_runtime::checkpoint::{key_group, key_hash};

/// The bit of a [`Routed::group`] that marks a copy of an event for the
/// shared indicators of that group's engines only (see
/// [`shares_indicators`]): the worker of the event's key gets the event,
/// every other worker such a copy.
pub(crate) const SHARED: u32 = 1 << 31;

/// The worker of key group `group` among `workers` (ranges of key groups
/// of nearly equal size, in worker order). A key's group is [`key_group`]
/// (the top 32 bits of [`key_hash`], the runtime's: a cut's engines are
/// kept by range of key groups); the empty key's is 0, worker 0's.
///
/// ```
/// use cepheid_dataflow::{group_worker, key_group};
/// use cepheid_engine::Value;
/// let kg = key_group(&[Value::from("u1")]);
/// assert!(group_worker(kg, 3) < 3);
/// assert_eq!(group_worker(key_group(&[]), 3), 0);
/// ```
pub fn group_worker(group: u32, workers: usize) -> usize {
    let workers = u64::try_from(workers.max(1))
        .unwrap_or(u64::MAX)
        .min(1 << 32);
    ((u64::from(group) * workers) >> 32) as usize
}

/// The key groups of worker `index` of `workers`, `[from, to)`: those
/// [`group_worker`] sends to it.
pub(crate) fn worker_groups(index: u32, workers: u32) -> (u64, u64) {
    let workers = u64::from(workers.max(1));
    let start = |w: u64| (w << 32).div_ceil(workers);
    (start(u64::from(index)), start(u64::from(index) + 1))
}

/// What [`encode_ref`] did.
enum Encoded {
    /// The value's bytes are written.
    Done,
    /// Null or NaN: no usable key.
    Unusable,
    /// A list: to be encoded from its owned value (nothing written).
    List,
}

/// Writes the canonical bytes of a borrowed key value as [`encode`]
/// writes those of its [`key_part`] (a float that is an exact integer as
/// that integer), but for a list.
fn encode_ref(value: ValueRef<'_>, out: &mut Vec<u8>) -> Encoded {
    match value {
        ValueRef::Null => return Encoded::Unusable,
        ValueRef::List(_) => return Encoded::List,
        ValueRef::Bool(b) => out.extend_from_slice(&[1, u8::from(b)]),
        ValueRef::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Float(f) => match key_part(Value::Float(f)) {
            Some(normal) => encode(&normal, out),
            None => return Encoded::Unusable,
        },
        ValueRef::Str(text) => {
            out.push(4);
            out.extend_from_slice(&(text.len() as u64).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    Encoded::Done
}

/// The plan's patterns in groups partitioned alike, each as the plan
/// numbers of its patterns: one group per set of `partition by` fields,
/// one per pattern keyed by a closure, one for the patterns without a key.
pub(crate) fn groups<E: Event + 'static>(plan: &Plan<E>) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, pattern) in plan.patterns.iter().enumerate() {
        let alike = if pattern.partition_by_fn.is_some() {
            None
        } else {
            groups.iter().position(|members| {
                let first = &plan.patterns[members[0]];
                first.partition_by_fn.is_none() && first.partition_by == pattern.partition_by
            })
        };
        match alike {
            Some(group) => groups[group].push(index),
            None => groups.push(vec![index]),
        }
    }
    groups
}

/// Why `pattern` cannot run on workers as it runs on one engine under
/// rules that can change, if it cannot (the words of a refusal: "reads
/// indicator `x` ..."): it reads a rolling indicator for groups its
/// `partition by` does not fix (or one its rules do not declare). A
/// change's layout of groups carries no sharing
/// ([`shares_indicators`]): such a pattern runs only in a run whose rules
/// stay.
///
/// An indicator read with each of the pattern's key fields passed as that
/// field of the indicator's `group by` (`logins(account_id, ip)` under
/// `partition by account_id`, the argument the field of the current
/// event or of a stage) reads only groups whose every event has the
/// reader's key: all of them reach the worker of that key, in the engine
/// of the pattern's group, which keeps the indicator over the events it
/// gets. Its value there is one engine's. A pattern without `partition by`
/// has the whole stream on worker 0, so any indicator it reads is exact.
/// A key of a closure (the builder's) fixes no field.
pub(crate) fn not_on_workers(pattern: &Pattern) -> Option<String> {
    unfixed(pattern, true)
}

/// Why `pattern` cannot run on workers from the start of a run whose
/// rules do not change, if it cannot: it reads an indicator its rules do
/// not declare, or any under a key computed by a closure. One that reads
/// an indicator for groups its `partition by` fields do not fix runs
/// ([`shares_indicators`]).
pub(crate) fn not_on_workers_from_start(pattern: &Pattern) -> Option<String> {
    unfixed(pattern, false)
}

/// Does `pattern` read an indicator for groups its key does not fix? Its
/// group's engines then keep every indicator over every event of the
/// stream (`Engine::share_indicators`): each worker's get the events of
/// their keys, and a copy of every other event for the indicators only
/// ([`SHARED`]), in the (time, source, offset) order of
/// all: their values are one engine's at every event, in conditions,
/// `select`, records' `reads` and deadlines alike. (A pattern without
/// `partition by` has the whole stream on worker 0.)
pub(crate) fn shares_indicators(pattern: &Pattern) -> bool {
    let keyed = pattern.partition_by_fn.is_none() && !pattern.partition_by.is_empty();
    keyed && unfixed(pattern, true).is_some() && unfixed(pattern, false).is_none()
}

/// [`not_on_workers`] (`strict`), or only the undeclared indicators.
fn unfixed(pattern: &Pattern, strict: bool) -> Option<String> {
    use cepheid_core::expr::Expr;
    let declared = pattern.declarations.as_deref();
    let keyed = pattern.partition_by_fn.is_none();
    let fixed = |decl: &cepheid_core::lookup::IndicatorDecl, args: &[Expr]| {
        keyed
            && pattern.partition_by.iter().all(|key| {
                decl.group_by.iter().zip(args).any(|(by, arg)| {
                    by == key
                        && match arg {
                            Expr::Field(path) | Expr::StageField { path, .. } => path == key,
                            _ => false,
                        }
                })
            })
    };
    let mut why = None;
    indicator_calls(pattern, |r, args| {
        if why.is_some() {
            return;
        }
        let decl = declared.and_then(|d| d.indicators.get(r.id.0 as usize));
        why = match decl {
            // (a closure's key fixes no field, and its group keeps every
            // indicator over its own events: not shared, refused)
            Some(decl) if (!strict && keyed) || fixed(decl, args) => None,
            None => Some(format!(
                "reads indicator `{}`, which its rules do not declare",
                r.name
            )),
            Some(_) if keyed => {
                let keys: Vec<String> = (pattern.partition_by.iter())
                    .map(ToString::to_string)
                    .collect();
                Some(format!(
                    "reads indicator `{}` for groups its `partition by {}` does not fix (each key field must be passed as that same field of the indicator's `group by`), whose events may be on other workers",
                    r.name,
                    keys.join(", ")
                ))
            }
            Some(_) => Some(format!(
                "reads indicator `{}` under a key computed by a closure, which fixes none of the indicator's `group by` fields",
                r.name
            )),
        };
    });
    why
}

/// Calls `f` with each indicator call of `pattern`'s conditions (stages,
/// `until`) and `select`: the indicator and the call's arguments.
fn indicator_calls(
    pattern: &Pattern,
    mut f: impl FnMut(&cepheid_core::lookup::IndicatorRef, &[cepheid_core::expr::Expr]),
) {
    use crate::pattern::{Condition, ElementKind, Sequence};
    use cepheid_core::expr::Expr;
    fn sequence<'p>(seq: &'p Sequence, out: &mut Vec<&'p Expr>) {
        for element in &seq.elements {
            if let Some(Condition::Expr(e)) = &element.until {
                out.push(e);
            }
            match &element.kind {
                ElementKind::Stage(_) => {}
                ElementKind::Group(inner) => sequence(inner, out),
                ElementKind::Alternation(branches) => {
                    for branch in branches {
                        sequence(branch, out);
                    }
                }
            }
        }
    }
    let mut exprs: Vec<&Expr> = (pattern.stages.iter())
        .filter_map(|s| match &s.condition {
            Condition::Expr(e) => Some(e),
            _ => None,
        })
        .collect();
    sequence(&pattern.sequence, &mut exprs);
    exprs.extend(pattern.select.iter().map(|item| &item.expr));
    for e in exprs {
        e.walk(|x| {
            if let Expr::Indicator(r, args) = x {
                f(r, args);
            }
        });
    }
}

/// Does `pattern` read a rolling indicator (in a condition or `select`)?
fn reads_indicators(pattern: &Pattern) -> bool {
    let mut any = false;
    indicator_calls(pattern, |_, _| any = true);
    any
}

/// The groups of a run whose rules can change ([`Plan::changing`]):
/// those of the plan ([`groups`] order), then those the changes add, each
/// named by its `partition by` (a pattern keyed by a closure is a group of
/// its own, which no later pattern joins), with the names of its patterns
/// in force (none: the group is out of force). Every router and every
/// worker's [`cep`](crate::cep) works the same layouts out of the same
/// changes in the same order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Layout {
    pub groups: Vec<(Option<Vec<FieldPath>>, Vec<String>)>,
}

impl Layout {
    /// The layout of `groups`, as a cut keeps them
    /// ([`CutRules`](cepheid_runtime::checkpoint::CutRules)).
    pub fn of(groups: &[cepheid_runtime::checkpoint::Group]) -> Layout {
        Layout {
            groups: groups.to_vec(),
        }
    }

    /// The groups in force, each of which takes every event (routed by
    /// [`Router::of_layout`]: a group a change removed, or of closures, is
    /// out of force).
    pub fn in_force(&self) -> usize {
        (self.groups.iter())
            .filter(|(key, names)| key.is_some() && !names.is_empty())
            .count()
    }

    /// The plan's layout (its `groups`).
    pub fn of_plan<E: Event + 'static>(plan: &Plan<E>, groups: &[Vec<usize>]) -> Layout {
        let groups = groups
            .iter()
            .map(|members| {
                let first = &plan.patterns[members[0]];
                let key = first
                    .partition_by_fn
                    .is_none()
                    .then(|| first.partition_by.clone());
                let names = members
                    .iter()
                    .map(|&m| plan.patterns[m].name.clone())
                    .collect();
                (key, names)
            })
            .collect();
        Layout { groups }
    }

    /// The layout once `patterns` are the whole rule set: each pattern in
    /// the group of its `partition by` (a new one appended when none has
    /// it). `Err`: a pattern in force would change its group (its
    /// `partition by`), which one engine does as a new version draining
    /// the old one and workers cannot do alike: the change is refused.
    ///
    /// `writes`: does the run carry `then` writes to every worker (its
    /// plan wrote to lists when it started: [`Plan::writes`])? When not, a
    /// pattern that writes is refused.
    pub fn next(&self, patterns: &[Pattern], writes: bool) -> Result<Layout, String> {
        let mut groups: Vec<(Option<Vec<FieldPath>>, Vec<String>)> = (self.groups.iter())
            .map(|(key, _)| (key.clone(), Vec::new()))
            .collect();
        for pattern in patterns {
            let key = Some(pattern.partition_by.clone());
            let now = self
                .groups
                .iter()
                .find(|(_, names)| names.contains(&pattern.name));
            if let Some((old, _)) = now.filter(|(old, _)| *old != key) {
                let shown = |key: &Option<Vec<FieldPath>>| match key {
                    None => "a key function".to_string(),
                    Some(paths) if paths.is_empty() => "none".to_string(),
                    Some(paths) => {
                        let paths: Vec<String> = paths.iter().map(ToString::to_string).collect();
                        paths.join(", ")
                    }
                };
                return Err(format!(
                    "pattern `{}` changes its `partition by` ({} before, {} now), which workers cannot do as one engine does (its old version draining): remove it and add it under another name",
                    pattern.name,
                    shown(old),
                    shown(&key)
                ));
            }
            if let Some(why) = not_on_workers(pattern) {
                return Err(format!("pattern `{}` {why}", pattern.name));
            }
            if let (Some(write), false) = (pattern.writes.first(), writes) {
                return Err(format!(
                    "pattern `{}` writes to list `{}` when it matches, and the run started without rules that write, whose writes every worker waits for: start it with them",
                    pattern.name, write.list.name
                ));
            }
            // An engine keeps an indicator over the events it gets: one of a
            // group added now (or out of force until now, its events not
            // routed) has not counted those before the change.
            let counted = (self.groups.iter()).any(|(k, names)| *k == key && !names.is_empty());
            if !counted && reads_indicators(pattern) {
                return Err(format!(
                    "pattern `{}` reads indicators in a group of patterns (its `partition by`) that no pattern in force had, whose engines on the workers have not counted the events before the change as one engine has: add it with a pattern partitioned alike from the start of the run",
                    pattern.name
                ));
            }
            match groups.iter().position(|(k, _)| *k == key) {
                Some(g) => groups[g].1.push(pattern.name.clone()),
                None => groups.push((key, vec![pattern.name.clone()])),
            }
        }
        Ok(Layout { groups })
    }
}

/// The conditions of a rule set's indicators, when each has one that
/// reads the event alone: an event none of them holds for is taken by no
/// indicator, and its copies for the shared indicators are not sent.
struct Takes {
    conditions: Vec<cepheid_core::expr::CompiledExpr>,
    accumulators: cepheid_core::expr::Accumulators,
}

impl Takes {
    /// `None` when an indicator may take any event: one without a
    /// condition, or whose condition reads a list.
    fn of<E: Event + 'static>(plan: &Plan<E>) -> Option<Takes> {
        use cepheid_core::expr::{AccumulatorLayoutBuilder, CompiledExpr, Expr};
        let declarations = plan.declarations();
        let mut fields = plan.fields.clone();
        let mut conditions = Vec::with_capacity(declarations.indicators.len());
        for indicator in &declarations.indicators {
            let condition = indicator.condition.as_ref()?;
            let mut outside = false;
            condition.walk(|x| {
                outside |= matches!(x, Expr::InList(..) | Expr::Indicator(..));
            });
            if outside {
                return None;
            }
            let mut layout = AccumulatorLayoutBuilder::new();
            conditions.push(CompiledExpr::compile(condition, &mut fields, &mut layout).ok()?);
        }
        Some(Takes {
            conditions,
            accumulators: AccumulatorLayoutBuilder::new().finish().new_accumulators(),
        })
    }

    /// May an indicator take `event` (its condition holds, as the engine
    /// evaluates it)?
    fn may_take<E: Event>(&self, event: &E) -> bool {
        let lookup = &cepheid_core::lookup::NO_LOOKUP;
        (self.conditions.iter()).any(|c| c.matches_with(event, &self.accumulators, lookup))
    }
}

/// How one group's events find their worker.
enum RouteKey<E> {
    /// A group out of force: no copy.
    Skip,
    /// No `partition by`: worker 0.
    Global,
    /// The `partition by` fields.
    Fields(Vec<FieldId>),
    /// The builder's key closure.
    Closure(NativeKeyFn<E>),
}

/// An event (or a source's end) on its way to one group of one worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Routed<E> {
    /// The worker it goes to.
    pub worker: u32,
    /// The worker it comes from (what one worker sends arrives in the
    /// order sent).
    pub from: u32,
    /// The group of patterns (index in [`groups`]); unused for an end.
    pub group: u32,
    /// The key group of its key (0 without `partition by`, or for an end;
    /// any for an event without a usable key).
    pub kg: u32,
    /// What travels.
    pub input: Input<E>,
}

/// Routes events to workers: one copy per group, to the worker of its key.
pub(crate) struct Router<E> {
    keys: Vec<RouteKey<E>>,
    /// Does each group's engines share indicators over the whole stream
    /// ([`shares_indicators`]): every other worker gets a copy of each
    /// event ([`SHARED`])?
    shares: Vec<bool>,
    /// Which events an indicator may take, when some may not: only those
    /// are copied.
    takes: Option<Takes>,
    workers: u32,
    /// This worker.
    index: u32,
    /// One worker holding one engine per group: no key needs hashing.
    alone: bool,
    key: Vec<Value>,
    bytes: Vec<u8>,
    /// The last group in force (which takes the event rather than a copy).
    last: Option<usize>,
}

impl<E: Event + Clone + 'static> Router<E> {
    /// The router of worker `index` for `plan`'s `groups` over `workers`
    /// workers.
    pub fn new(plan: &Plan<E>, groups: &[Vec<usize>], index: usize, workers: usize) -> Router<E> {
        let mut fields = plan.fields.clone();
        let keys = groups
            .iter()
            .map(|members| {
                let pattern = &plan.patterns[members[0]];
                if let Some(key) = &pattern.partition_by_fn {
                    match key.downcast::<E>() {
                        Some(key) => RouteKey::Closure(key.clone()),
                        // The plan's engine compiled it for `E`.
                        None => RouteKey::Global,
                    }
                } else if pattern.partition_by.is_empty() {
                    RouteKey::Global
                } else {
                    RouteKey::Fields(
                        pattern
                            .partition_by
                            .iter()
                            .filter_map(|path| fields.resolve(path).ok())
                            .collect(),
                    )
                }
            })
            .collect();
        let shares: Vec<bool> = groups
            .iter()
            .map(|members| {
                members
                    .iter()
                    .any(|&m| shares_indicators(&plan.patterns[m]))
            })
            .collect();
        let mut router = Router::with_keys(keys, index, workers);
        if shares.iter().any(|&s| s) {
            router.takes = Takes::of(plan);
        }
        router.shares = shares;
        router
    }

    /// The router of worker `index` over `workers` workers for `layout`
    /// (the fields resolved in `fields`, the plan's table).
    pub fn of_layout(
        layout: &Layout,
        fields: &E::Fields,
        index: usize,
        workers: usize,
    ) -> Router<E> {
        let mut fields = fields.clone();
        let keys = layout
            .groups
            .iter()
            .map(|(key, names)| match key {
                _ if names.is_empty() => RouteKey::Skip,
                // (a closure's group: its patterns are the plan's, whose
                // closures only the plan's router has)
                None => RouteKey::Skip,
                Some(paths) if paths.is_empty() => RouteKey::Global,
                Some(paths) => RouteKey::Fields(
                    paths
                        .iter()
                        .filter_map(|path| fields.resolve(path).ok())
                        .collect(),
                ),
            })
            .collect();
        Router::with_keys(keys, index, workers)
    }

    /// The router of worker `index` over `workers` workers with a key per
    /// group.
    fn with_keys(keys: Vec<RouteKey<E>>, index: usize, workers: usize) -> Router<E> {
        let last = keys.iter().rposition(|k| !matches!(k, RouteKey::Skip));
        Router {
            shares: vec![false; keys.len()],
            takes: None,
            keys,
            workers: u32::try_from(workers.max(1)).unwrap_or(u32::MAX),
            index: u32::try_from(index).unwrap_or(u32::MAX),
            alone: workers <= 1,
            key: Vec::new(),
            bytes: Vec::new(),
            last,
        }
    }

    /// Do group `group`'s engines share indicators over the whole stream?
    pub fn shares(&self, group: usize) -> bool {
        self.shares.get(group).copied().unwrap_or(false)
    }

    /// [`Router::shares`] of each group.
    pub fn sharing(&self) -> Vec<bool> {
        self.shares.clone()
    }

    /// Pushes with `push` a copy of `stamped` for group `group`'s shared
    /// indicators to every worker but `own`.
    fn share(
        &self,
        group: usize,
        own: u32,
        stamped: &Stamped<E>,
        push: &mut impl FnMut(Routed<E>),
    ) {
        if !self.shares(group) || self.workers <= 1 {
            return;
        }
        if self
            .takes
            .as_ref()
            .is_some_and(|t| !t.may_take(&stamped.event))
        {
            // (no indicator takes it: a copy would change nothing)
            return;
        }
        for worker in (0..self.workers).filter(|&w| w != own) {
            push(Routed {
                worker,
                from: self.index,
                group: group as u32 | SHARED,
                kg: 0,
                input: Input::Event(stamped.clone()),
            });
        }
    }

    /// The (only) worker holds several engines for a group (it resumed a
    /// checkpoint of several workers): each key's key group is needed.
    pub fn split(&mut self) {
        self.alone = false;
    }

    /// Sends `input` on with `push`: an event once per group, to the
    /// worker of its key; a source's end and its clock to every worker.
    pub fn route(&mut self, input: Input<E>, mut push: impl FnMut(Routed<E>)) {
        let stamped = match input {
            Input::End(_) | Input::Clock(_) | Input::Released(_) => {
                for worker in 0..self.workers {
                    push(Routed {
                        worker,
                        from: self.index,
                        group: 0,
                        kg: 0,
                        input: input.clone(),
                    });
                }
                return;
            }
            Input::Event(stamped) => stamped,
            // (changes reach every worker through routers of their own:
            // `cep` broadcasts them)
            Input::Rules(_) => return,
        };
        let Some(last) = self.last else {
            return;
        };
        // A copy for each group in force before the last, which takes the
        // event.
        for group in 0..last {
            if matches!(self.keys[group], RouteKey::Skip) {
                continue;
            }
            let (worker, kg) = self.worker_of(group, &stamped.event, stamped.offset);
            self.share(group, worker, &stamped, &mut push);
            push(Routed {
                worker,
                from: self.index,
                group: group as u32,
                kg,
                input: Input::Event(stamped.clone()),
            });
        }
        let (worker, kg) = self.worker_of(last, &stamped.event, stamped.offset);
        self.share(last, worker, &stamped, &mut push);
        push(Routed {
            worker,
            from: self.index,
            group: last as u32,
            kg,
            input: Input::Event(stamped),
        });
    }

    /// [`Router::worker`], with the answer of one worker holding one engine
    /// per group known here (no call per event).
    #[inline(always)]
    fn worker_of(&mut self, group: usize, event: &E, offset: u64) -> (u32, u32) {
        if self.alone {
            (0, 0)
        } else {
            self.worker(group, event, offset)
        }
    }

    /// The worker of `event` for group `group`, and its key group. An
    /// event without a usable key goes to any worker (by its offset), whose
    /// engine counts it as the engine does.
    pub fn worker(&mut self, group: usize, event: &E, offset: u64) -> (u32, u32) {
        if self.alone {
            return (0, 0);
        }
        let workers = self.workers;
        let spread = || ((offset % u64::from(workers)) as u32, u32::MAX);
        self.key.clear();
        match &self.keys[group] {
            RouteKey::Global | RouteKey::Skip => return (0, 0),
            RouteKey::Closure(key) => {
                let value = key(event);
                if value.is_null() {
                    return spread();
                }
                match key_part(value) {
                    Some(part) => self.key.push(part),
                    None => return spread(),
                }
            }
            RouteKey::Fields(ids) => {
                // Encoded from the borrowed values (no clone of a string
                // key per event); a list, rare in keys, by its owned value.
                self.bytes.clear();
                let mut owned = false;
                for &id in ids {
                    match encode_ref(event.field(id), &mut self.bytes) {
                        Encoded::Done => {}
                        Encoded::Unusable => return spread(),
                        Encoded::List => {
                            owned = true;
                            break;
                        }
                    }
                }
                if !owned {
                    let kg = key_group_of_bytes(&self.bytes);
                    return (group_worker(kg, self.workers as usize) as u32, kg);
                }
                for &id in ids {
                    let value = event.field_owned(id);
                    if value.is_null() {
                        return spread();
                    }
                    match key_part(value) {
                        Some(part) => self.key.push(part),
                        None => return spread(),
                    }
                }
            }
        }
        self.bytes.clear();
        encode_key(&self.key, &mut self.bytes);
        let kg = key_group_of_bytes(&self.bytes);
        (group_worker(kg, self.workers as usize) as u32, kg)
    }
}

/// The exchange of routed events between workers: each container goes to
/// its items' worker whole (the router gives one container per worker and
/// batch, [`Router::route`]'s caller), not item by item into a builder per
/// worker as timely's `Exchange` pact does. A container whose items go to
/// several workers (the router of a plan whose rules change mixes its words
/// with its events) is split, in order, into one container per worker,
/// pushed at once: what one worker sends to another arrives in the order
/// sent either way.
pub(crate) struct ByWorker;

impl ByWorker {
    /// The pact.
    pub fn pact() -> DistributorPact<Box<dyn FnOnce(usize) -> ByWorker>> {
        DistributorPact(Box::new(|_| ByWorker))
    }
}

impl<E> Distributor<Vec<Routed<E>>> for ByWorker {
    fn partition<T: Clone, P: Push<Message<T, Vec<Routed<E>>>>>(
        &mut self,
        container: &mut Vec<Routed<E>>,
        stamp: &Stamp<T>,
        pushers: &mut [P],
    ) {
        let Some(first) = container.first().map(|r| r.worker) else {
            return;
        };
        let peers = pushers.len();
        if container.iter().all(|r| r.worker == first) {
            let to = first as usize % peers;
            Message::push_at(container, stamp.clone(), &mut pushers[to]);
            // (the pusher may hand back a spent container to reuse)
            container.clear();
            return;
        }
        let mut parts: Vec<Vec<Routed<E>>> = (0..peers).map(|_| Vec::new()).collect();
        for routed in container.drain(..) {
            parts[routed.worker as usize % peers].push(routed);
        }
        for (part, pusher) in parts.iter_mut().zip(pushers.iter_mut()) {
            if !part.is_empty() {
                Message::push_at(part, stamp.clone(), pusher);
            }
        }
    }

    fn flush<T: Clone, P: Push<Message<T, Vec<Routed<E>>>>>(&mut self, _: &Stamp<T>, _: &mut [P]) {
        // (nothing is held: every container went at once)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // (the key's hash and bytes are the runtime's, tested there:
    // `checkpoint/key_groups.rs`, `the_hash_is_fixed`)

    #[test]
    fn borrowed_keys_encode_as_their_normal_values() {
        let values = [
            Value::Int(-3),
            Value::from("ab"),
            Value::Bool(true),
            Value::Float(2.0),
            Value::Float(2.5),
            Value::Float(-0.0),
        ];
        for value in &values {
            let mut borrowed = Vec::new();
            assert!(matches!(
                encode_ref(ValueRef::from(value), &mut borrowed),
                Encoded::Done
            ));
            let mut owned = Vec::new();
            encode(&key_part(value.clone()).unwrap(), &mut owned);
            assert_eq!(borrowed, owned, "{value:?}");
        }
        let mut out = Vec::new();
        assert!(matches!(
            encode_ref(ValueRef::Float(f64::NAN), &mut out),
            Encoded::Unusable
        ));
        assert!(matches!(
            encode_ref(ValueRef::Null, &mut out),
            Encoded::Unusable
        ));
        let list = [Value::Float(1.0)];
        assert!(matches!(
            encode_ref(ValueRef::List(&list), &mut out),
            Encoded::List
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn each_key_group_has_one_worker_whose_range_holds_it() {
        for workers in [1u32, 2, 3, 4, 7, 64] {
            let mut next = 0u64;
            for w in 0..workers {
                let (from, to) = worker_groups(w, workers);
                assert_eq!(from, next, "{w} of {workers}");
                assert!(to > from);
                for kg in [from, to - 1, (from + to) / 2] {
                    assert_eq!(group_worker(kg as u32, workers as usize), w as usize);
                }
                next = to;
            }
            assert_eq!(next, 1 << 32);
        }
    }
}
