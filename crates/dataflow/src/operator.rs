//! The CEP operator: events exchanged by key, released when the frontier
//! passes them, in a deterministic order, into one engine per group.

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{Operator, OutputBuilder, OutputBuilderSession};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::{ConnectLoop, Feedback};
use timely::dataflow::Stream;
use timely::progress::frontier::MutableAntichain;
use timely::progress::Antichain;
use timely::ExchangeData;

use serde::{Deserialize, Serialize};

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cepheid_runtime::audit::{started_empty as declared_anew, PatternChange, RuleChange};
use cepheid_runtime::checkpoint::CutRules;
use cepheid_runtime::EngineNumbers;

use crate::cut::{self, WorkerCut};
use crate::engine::{Engine, ReloadPolicy};
use crate::engine::{LeftOutParts, ListWrite, MatchRef, Output, Sink, Stats};
use crate::event::Event;
use crate::primitives::Timestamp;
use crate::route::{groups, worker_groups, ByWorker, Layout, Routed, Router, SHARED};
use crate::{add_stats, Change, Clocks, Events, Input, Piece, Plan, SourceEnd};

mod apply;
mod changing;
mod renumber;
mod save;
mod stash;
mod writes;
use changing::{route_changing, Held, Hold};
use renumber::Renumber;
use stash::{Stash, Stashed};
pub(crate) use writes::held_by_peer;
use writes::{Promised, Promises, Steps, HELD_BY_PEER};

/// One worker's part of a change's audit record ([`Collect::rules_audit`]):
/// the record without its patterns, and the names the worker's engines
/// changed (with their place in the new set's order: the new set's, then
/// the removed ones') and left unchanged. Parts of one change add up: the
/// names are the union, their partial matches the sum.
#[derive(Clone, Debug)]
pub struct AuditPart {
    /// The record, its patterns and unchanged count left to the parts.
    pub record: RuleChange,
    /// Each name changed, by its place in the order.
    pub patterns: Vec<(usize, PatternChange)>,
    /// The names left unchanged.
    pub unchanged: Vec<String>,
}

impl AuditPart {
    /// `record`'s part with `patterns` and `unchanged`.
    pub fn of(
        record: RuleChange,
        patterns: Vec<(usize, PatternChange)>,
        unchanged: Vec<String>,
    ) -> AuditPart {
        AuditPart {
            record,
            patterns,
            unchanged,
        }
    }
}

/// The lists and indicators a change declared anew (from `before`, the
/// worker's declarations before it, to those of its first engine now).
fn started_empty<E: Event>(
    before: &cepheid_core::lookup::Declarations,
    first: Option<&Piece<E>>,
) -> Vec<String> {
    match first {
        Some(piece) => declared_anew(before, piece.engine.0.declarations()),
        None => Vec::new(),
    }
}

/// A worker's sink of [`cep`]: it sees every match, timeout and dropped
/// partial match of the worker's engines (as a [`Sink`], with
/// [`MatchRef::pattern_index`] the plan's number of the pattern), and
/// hands what it made of them to the operator's output stream.
///
/// `Vec<Output<E>>` is one: the stream is then of owned [`Output`]s.
pub trait Collect<E>: Sink<E> {
    /// What the output stream carries.
    type Item: Clone + 'static;

    /// Moves what was made since the last call to `out` (called after each
    /// batch of work).
    fn drain(&mut self, out: &mut Vec<Self::Item>);

    /// The input ended: `stats` counts what this worker's engines did
    /// (`events` counts each event once per group of patterns it was sent
    /// to) and, on worker 0 only, the sources' events read and late events,
    /// so that the sum over all workers is the run's. Nothing by default.
    fn finish(&mut self, stats: &Stats, waiting: usize) {
        let _ = (stats, waiting);
    }

    /// Does the sink want the worker's numbers now ([`Collect::numbers`])?
    /// Asked after each activation of the operator (a batch of events, a
    /// move of the frontier: never per event), and once at the end
    /// (`finished`, after [`Collect::finish`]). [`Due::Never`] by default.
    fn numbers_due(&mut self, finished: bool) -> Due {
        let _ = finished;
        Due::Never
    }

    /// The worker's numbers, when [`Collect::numbers_due`] asked for them:
    /// its engines' counts added up (each pattern's in the plan's order),
    /// the events stashed until the frontier passes them counted as
    /// waiting.
    fn numbers(&mut self, numbers: EngineNumbers, finished: bool) {
        let _ = (numbers, finished);
    }

    /// What the worker's engines' lists and indicators left out at their
    /// limits or for their values, gathered as one engine counts it:
    /// asked after an activation that changed it (never per event), and
    /// once as the operator starts (`before`: what its engines held then,
    /// restored from a cut, the run before the cut counted). Nothing by
    /// default.
    fn left_out(&mut self, left_out: &LeftOutParts, before: bool) {
        let _ = (left_out, before);
    }

    /// A watched reference file changed (`Config::lists` with
    /// `Config::watch`; `place` says which, and what changed): every
    /// engine sees its new entries from event time `at` on. Called on
    /// worker 0 only, once per change. Nothing by default.
    fn lists_changed(&mut self, place: &str, at: Timestamp) {
        let _ = (place, at);
    }

    /// A change of a list named by `place` (a `$list` record of the input,
    /// a change asked through the run's handle) was not made: `why`;
    /// `record`: a record of the input (counted with the malformed
    /// lines). Called on worker 0 only, once per change. Nothing by
    /// default.
    fn list_refused(&mut self, place: &str, why: &str, record: bool) {
        let _ = (place, why, record);
    }

    /// The rules changed ([`Plan::changing`]) at the change read at
    /// `place`: `Ok` with one line per pattern (`  name: added`, as
    /// [`Changes`](crate::engine::Changes) says them, in the new set's
    /// order), or `Err` with why the change was refused (the rules before
    /// it go on). Called on worker 0 only, once per change. Nothing by
    /// default.
    fn rules_changed(&mut self, place: &str, outcome: Result<String, String>) {
        let _ = (place, outcome);
    }

    /// This worker's part of the audit record of `change`, applied or
    /// refused (`docs/rule-lab.md`, "Audit records"): called on every
    /// worker, once per change, where it is made; the parts of one change
    /// make one record. Nothing by default.
    fn rules_audit(&mut self, change: &Change, part: AuditPart) {
        let _ = (change, part);
    }

    /// The rules changed to `rules` at event time `at`
    /// ([`Plan::changing`]): the events from `at` on are decided by their
    /// scenes. Called on worker 0 only, once per change applied. Nothing
    /// by default.
    fn scenes_changed(&mut self, at: Timestamp, rules: &cepheid_engine::Rules) {
        let _ = (at, rules);
    }

    /// From event time `from` on, each event's decision in a scene comes
    /// in `parts` parts, one from each group of patterns in force
    /// ([`Plan::gathering_decisions`]): told on worker 0 as the operator
    /// starts (`from` the start of time) and at each change of rules
    /// applied. A gatherer takes an event's parts as whole when it has
    /// them all, even where some were made after its time (an engine held
    /// the event past a quiet source's clock, or a cut it was resumed
    /// from). Nothing by default.
    fn decided_in_parts(&mut self, from: Timestamp, parts: usize) {
        let _ = (from, parts);
    }

    /// The changes of rules made and refused over the run (those of the
    /// cut it resumed from included), told on worker 0 at the end, before
    /// [`Collect::finish`]. Nothing by default.
    fn reloads(&mut self, made: u64, refused: u64) {
        let _ = (made, refused);
    }

    /// A source of worker `from` (numbered over every process) stopped
    /// ([`SourceEnd::stopped`](crate::SourceEnd): a signal, a read error)
    /// and its end reached this worker. Nothing by default.
    fn source_stopped(&mut self, from: usize) {
        let _ = from;
    }
}

/// When a [`Collect`] sink wants the worker's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Not now, nor later.
    Never,
    /// Now; with the bytes of the state measured (a walk over it: now
    /// and then) when `state_bytes`.
    Now {
        /// Measure the state's bytes?
        state_bytes: bool,
    },
    /// After this long: the operator is activated again then if nothing
    /// else activated it (a quiet input still shows its last numbers).
    After(Duration),
}

impl<E: Clone + 'static> Collect<E> for Vec<Output<E>> {
    type Item = Output<E>;

    fn drain(&mut self, out: &mut Vec<Output<E>>) {
        out.append(self);
    }
}

/// Runs `plan` over the events of `input` (made by
/// [`source`](crate::source)s, one per worker or fewer): routes
/// each by key to its worker, runs the worker's engines as the frontier
/// passes, and returns the stream of what each worker's sink (made by
/// `make_sink` with the worker's index) collected. The stream's timestamps
/// are the frontier when the outputs were made.
pub fn cep<'scope, E, S, F>(
    plan: &Plan<E>,
    input: Events<'scope, E>,
    make_sink: F,
) -> Stream<'scope, Timestamp, Vec<S::Item>>
where
    E: Event + Clone + ExchangeData,
    S: Collect<E> + 'static,
    F: FnOnce(usize) -> S,
{
    build(plan, input, make_sink, None)
}

/// [`cep`] taking part in the cuts of `cut` (see
/// [`Cuts`](crate::Cuts)): when its input frontier passes a
/// requested epoch `f`, it releases the events below `f`, moves its
/// engines to `f - 1`, and hands `cut`'s save function the worker's state
/// (its sources' states, its engines' snapshots, the source ends received,
/// the stashed events sent below `f`). When `cut` was restored
/// ([`WorkerCut::restore`]), the worker goes on from that state.
///
/// When the input ends because a live source was stopped
/// ([`Feed::stop`](crate::Feed::stop), a signal), the worker
/// takes a last cut, at `e` = the largest source watermark + 2 (above
/// every cut before it), after its engines reached the final watermark: its state
/// then, with every event still stashed, the ends of the sources that
/// ended (not the stopped one, which goes on from its place when
/// restored). It is saved before the operator's capability is dropped,
/// and [`Cuts::last_cut`](crate::Cuts::last_cut) says its
/// epoch: once a downstream frontier is empty, every worker's state at
/// `e` was saved. With [`Cuts::before_end`](crate::Cuts::before_end), when
/// every source ended (none stopped), the last cut is taken before the
/// end of event time instead, at the largest source watermark + 1, and
/// what the end then makes goes out at `Timestamp::MAX`.
pub fn cep_cut<'scope, E, S, F>(
    plan: &Plan<E>,
    input: Events<'scope, E>,
    make_sink: F,
    cut: &WorkerCut,
) -> Stream<'scope, Timestamp, Vec<S::Item>>
where
    E: Event + Clone + ExchangeData,
    S: Collect<E> + 'static,
    F: FnOnce(usize) -> S,
{
    build(plan, input, make_sink, Some(cut.clone()))
}

fn build<'scope, E, S, F>(
    plan: &Plan<E>,
    input: Events<'scope, E>,
    make_sink: F,
    cut: Option<WorkerCut>,
) -> Stream<'scope, Timestamp, Vec<S::Item>>
where
    E: Event + Clone + ExchangeData,
    S: Collect<E> + 'static,
    F: FnOnce(usize) -> S,
{
    let scope = input.scope();
    let index = scope.index();
    let members = groups(plan);
    let peers = scope.peers();
    let mut restored = cut.as_ref().and_then(|cut| cut.take_restored::<E>());
    let rules = restored.as_mut().and_then(|r| r.rules.take());
    // The groups in force: the plan's, or after a change of rules the
    // cut's, routed by their `partition by`.
    let (layout, mut router) = match &rules {
        Some(rules) if rules.changed_plan() => (
            Layout::of(&rules.groups),
            Router::of_layout(&Layout::of(&rules.groups), plan.fields(), index, peers),
        ),
        _ => (
            Layout::of_plan(plan, &members),
            Router::new(plan, &members, index, peers),
        ),
    };
    // (every group of the plan's layout takes every event; of a cut's
    // after a change, those in force)
    let parts = match &rules {
        Some(rules) if rules.changed_plan() => layout.in_force(),
        _ => layout.groups.len(),
    };
    let held = restored.as_mut().map(|r| std::mem::take(&mut r.held));
    let mut worker = Worker::start(
        plan,
        &members,
        &mut router,
        (index, peers),
        (layout.clone(), rules),
        (cut, restored),
    );
    let mut sink = make_sink(index);
    if index == 0 {
        sink.decided_in_parts(Timestamp::MIN, parts);
    }
    let routed = match plan.changing {
        None => route(input, router),
        Some(_) => {
            let mut hold = Hold::new(router, layout, plan, index, peers);
            hold.cut.clone_from(&worker.cut);
            hold.held = Rc::clone(&worker.held);
            // (its routers say how far they released)
            worker.clocks.hear_routers(peers);
            for (change, _) in &worker.changes.pending {
                hold.learn(change.clone());
            }
            route_changing(input, hold, held.unwrap_or_default())
        }
    };
    // The `then` writes of the worker's engines go to every other
    // worker's engines through a loop of the dataflow, each message with
    // the time before which its worker promises no more write (its
    // `promise`): a worker has every write to be made at `t + 1` once
    // each worker promised `t + 1` (`docs/semantics.md`, "Writes by
    // rules", "On workers"). The promises travel as data, not as the
    // loop's progress: the loop's capability stays where it started, so
    // a step of event time costs a message to each worker, not a round of
    // timely's progress tracking through the dataflow. A plan that writes
    // nothing drops the loop's capability at once.
    let writes = plan.writes();
    // (one worker makes its own writes: no loop)
    let looping = writes && peers > 1;
    let (looped, writes_in) = scope.feedback::<Vec<Promised>>(1);
    let mut builder = OperatorBuilder::new("Cep".to_owned(), scope);
    let info = builder.operator_info();
    let none = std::iter::empty::<(usize, Antichain<Timestamp>)>();
    let mut events = builder.new_input_connection(routed, ByWorker::pact(), none.clone());
    let to_worker = Exchange::new(|m: &Promised| u64::from(m.to));
    let mut received = builder.new_input_connection(writes_in, to_worker, none.clone());
    let at_once = || Antichain::from_elem(0);
    // (records follow the events only; the loop follows nothing: its
    // capability holds it)
    let (records_out, records) = builder.new_output_connection([(0, at_once())]);
    let (writes_out, written) = builder.new_output_connection(none);
    let mut records_out =
        OutputBuilder::<Timestamp, CapacityContainerBuilder<Vec<S::Item>>>::from(records_out);
    let mut writes_out =
        OutputBuilder::<Timestamp, CapacityContainerBuilder<Vec<Promised>>>::from(writes_out);
    written.connect_loop(looped);
    builder.build(move |mut capabilities| {
        let writes_capability = capabilities.pop();
        let capability = capabilities.pop();
        let activator = scope.activator_for(info.address);
        // When the operator asked to be woken up (for the numbers).
        let mut woken: Option<Instant> = None;
        let mut capability = capability;
        let mut writes_capability = writes_capability.filter(|_| looping);
        // (restored: the engines may be below the epoch, at a quiet
        // source's clock; the records they make go out above it)
        let start = worker.released.max(worker.restored_at);
        if let Some(cap) = capability.as_mut() {
            if start > *cap.time() {
                cap.downgrade(&start);
            }
        }
        // The promises heard, the worker's own at its engines' time: a
        // step between the engines' clock and the epoch writes for a time
        // below the epoch, and every engine must wait for it there, as the
        // run before the cut did. (Promised at the epoch, such writes
        // reached engines that had passed their time: made late, in the
        // order they came, not in the order of one time's writes: issue
        // 60, item 17, the case in `dataflow_live_cut`'s regressions
        // file.) The others' are not known until they say them.
        let mut promises = Promises::new(index, peers, worker.released, writes);
        let mut outgoing: Vec<ListWrite> = Vec::new();
        // (the records' capability follows the events' frontier as it
        // moves, not each step the writes allow: `Steps`)
        let mut steps = Steps::new(capability.as_ref().map_or(Timestamp::MIN, |c| *c.time()));
        if worker.left_out_changed() {
            sink.left_out(&worker.left_out(), true);
        }
        move |frontiers| {
            let mut output = records_out.activate();
            let mut writes_output = writes_out.activate();
            events.for_each_stamp(|cap, data| {
                let sent = cap.least().copied().unwrap_or(Timestamp::MIN);
                for batch in data {
                    worker.receive_all(batch, sent, &mut sink);
                }
            });
            received.for_each_stamp(|_, data| {
                for batch in data {
                    promises.take(batch, &mut worker);
                }
            });
            // Every write to be made at or before `t` is known when every
            // worker promised `t` (`None`: none will come). While the
            // worker's own promise is what held it, it goes on at once.
            loop {
                let writes_known = promises.known();
                let horizon = step(
                    &mut worker,
                    &mut sink,
                    &mut capability,
                    &mut output,
                    (&frontiers[0], writes_known, &mut steps),
                    writes,
                );
                if worker.left_out_changed() {
                    sink.left_out(&worker.left_out(), false);
                }
                if !writes {
                    break;
                }
                // The writes made now: the worker's own engines make them
                // at once (their time is after the step that made them,
                // where the engines are), and they go to the other
                // workers with the worker's promise: no write before its
                // next step (an event stashed, a deadline, a change) or
                // the events' frontier.
                worker.make_own_writes(&mut outgoing);
                let promise = match horizon {
                    Some(f) => worker.next_step().map_or(f, |n| n.min(f)),
                    None => Timestamp::MAX,
                };
                promises.promise(promise);
                if horizon.is_none() || promises.known() == writes_known {
                    break;
                }
            }
            HELD_BY_PEER.set(looping && capability.is_some() && promises.held_by_peer());
            if let Some(wcap) = writes_capability.as_mut() {
                promises.say(&outgoing, &mut writes_output, wcap);
                if capability.is_none() {
                    writes_capability = None;
                }
            }
            outgoing.clear();
            if capability.is_none() {
                return;
            }
            match sink.numbers_due(false) {
                Due::Never => {}
                Due::Now { state_bytes } => {
                    sink.numbers(worker.numbers(state_bytes), false);
                    woken = None;
                }
                Due::After(delay) => {
                    // (one wake-up at a time)
                    let at = Instant::now() + delay;
                    if woken.is_none_or(|w| w > at) {
                        activator.activate_after(delay);
                        woken = Some(at);
                    }
                }
            }
        }
    });
    records
}

/// One activation's work of the `Cep` operator on its events (the writes
/// received were made already): changes due, a cut, the engines moved to
/// the frontier as the writes known let them, or the input's end. The
/// frontier up to which the worker promises no write before its next
/// step (`None`: it finished).
fn step<E, S>(
    worker: &mut Worker<E>,
    sink: &mut S,
    capability: &mut Option<Capability<Timestamp>>,
    output: &mut OutputBuilderSession<'_, Timestamp, CapacityContainerBuilder<Vec<S::Item>>>,
    (frontier, writes_known, steps): (&MutableAntichain<Timestamp>, Option<Timestamp>, &mut Steps),
    carries: bool,
) -> Option<Timestamp>
where
    E: Event + Clone + ExchangeData,
    S: Collect<E> + 'static,
{
    let cap = capability.as_mut()?;
    let mut give = |items: &mut Vec<S::Item>| {
        output.session(&*cap).give_container(items);
    };
    // A change at the frontier (a reload while the input is
    // quiet): made now, every event below it released.
    if worker.changes.due(worker.released) {
        worker.apply_reached(sink);
        worker.emit(sink, &mut give);
    }
    let at = frontier.frontier().first().copied();
    if let Some(cut) = &worker.cut {
        cut.frontier_is(at);
    }
    worker.clocks.frontier_is(at.unwrap_or(Timestamp::MAX));
    if let Some(e) = worker.cut_due(at, steps.passed, writes_known) {
        // The cut: what was made below `e` goes out below it
        // (the engines at `e - 1`, or at a quiet source's clock).
        worker.advance(e, sink);
        worker.emit(sink, &mut |items| {
            output.session(&*cap).give_container(items);
        });
        steps.cut(cap, e);
        worker.take_cut(e);
    }
    // Not past a stopped source's clock (see `Worker::stopped_at`).
    let at = at.map(|f| worker.stopped_at().map_or(f, |limit| f.min(limit)));
    match at {
        Some(f) => {
            // (not past the writes known either)
            let bound = writes_known.map_or(f, |w| f.min(w));
            // (the engines not past a quiet source's clock,
            // `SourceClock`; what they make goes out at `f`)
            if worker.advance_below(bound, f, sink) {
                worker.emit(sink, &mut |items| {
                    output.session(&*cap).give_container(items);
                });
            }
            steps.reached(cap, bound, Some(f));
            // (events may still come from a quiet source's
            // clock on: no write is promised before it)
            Some(worker.clocks.limit(f, worker.taken))
        }
        None => {
            // (the input ended: with writes, the engines go
            // to its end as the writes known let them: first
            // to a cut before the end, then to the end)
            // (first to a cut before the end, if one is to
            // be taken, which is taken there; then to the end)
            let mut point = worker.end_cut_point();
            for last in [false, true] {
                while let Some((bound, end)) = worker.end_steps(writes_known, carries, point) {
                    if bound <= worker.released {
                        // (waits for other workers' writes)
                        return Some(end);
                    }
                    if worker.advance_to(bound, sink) {
                        worker.emit(sink, &mut |items| {
                            output.session(&*cap).give_container(items);
                        });
                    }
                    steps.reached(cap, bound, None);
                }
                if last {
                    break;
                }
                point = None;
                // (a file's end: a cut before the end moves
                // event time on; what the end makes goes out
                // after it)
                if worker.before_end() {
                    worker.take_end_cut(sink, &mut |items| {
                        output.session(&*cap).give_container(items);
                    });
                    steps.cut(cap, Timestamp::MAX);
                }
            }
            worker.finish(sink);
            if let Due::Now { state_bytes } = sink.numbers_due(true) {
                sink.numbers(worker.numbers(state_bytes), true);
            }
            worker.emit(sink, &mut |items| {
                output.session(&*cap).give_container(items);
            });
            // Before the capability goes: downstream, an
            // empty frontier says every worker saved it.
            worker.take_last_cut();
            *capability = None;
            None
        }
    }
}

/// The routing of a plan whose rules do not change: each event goes to
/// the worker of its key, batch by batch.
fn route<'scope, E>(
    input: Events<'scope, E>,
    mut router: Router<E>,
) -> Stream<'scope, Timestamp, Vec<Routed<E>>>
where
    E: Event + Clone + ExchangeData,
{
    input.unary::<CapacityContainerBuilder<Vec<Routed<E>>>, _, _, _>(
        Pipeline,
        "CepRoute",
        move |_, _| {
            // One container per time and worker, handed on whole (not
            // one event at a time through the session's builder, nor
            // through the exchange's: `ByWorker`).
            let mut routed: Vec<Vec<Routed<E>>> = Vec::new();
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    let mut session = output.session(&cap);
                    // (the batches of one time in one container per
                    // worker: fewer, larger messages between threads)
                    for batch in data {
                        for item in batch.drain(..) {
                            router.route(item, |r| {
                                let to = r.worker as usize;
                                if routed.len() <= to {
                                    routed.resize_with(to + 1, Vec::new);
                                }
                                routed[to].push(r);
                            });
                        }
                    }
                    for part in routed.iter_mut().filter(|p| !p.is_empty()) {
                        let len = part.len();
                        session.give_container(part);
                        // (the container went: room for as many again)
                        part.clear();
                        part.reserve(len);
                    }
                });
            }
        },
    )
}

impl<E: Event + Clone + 'static> Worker<E> {
    /// The worker's state when its operator starts: restored from `cut`
    /// (its engines, stash, ends, and the rules in force with the changes
    /// pending: `layout` and `rules`), or new engines of the plan.
    fn start(
        plan: &Plan<E>,
        members: &[Vec<usize>],
        router: &mut Router<E>,
        (index, peers): (usize, usize),
        (layout, rules): (Layout, Option<CutRules>),
        (cut, restored): (Option<WorkerCut>, Option<cut::Restored<E>>),
    ) -> Worker<E> {
        let groups = layout.groups.len();
        let (mut pieces, stash, ends, released) = match restored {
            Some(r) => {
                if r.pieces.len() > groups {
                    // Several engines for a group: keys find theirs by key group.
                    router.split();
                }
                let mut stash = Stash::default();
                for (group, stamped) in r.stash {
                    let sent = r.epoch - 1;
                    // (a copy for the shared indicators has no key group)
                    let (_, kg) = match group & SHARED {
                        0 => router.worker(group as usize, &stamped.event, stamped.offset),
                        _ => (0, 0),
                    };
                    stash.push(
                        0,
                        Stashed {
                            group,
                            kg,
                            sent,
                            stamped,
                        },
                    );
                }
                let ends = r.ends.into_iter().map(|end| (r.epoch - 1, end)).collect();
                // (below the epoch when a quiet source's clock held them)
                let engines = (r.pieces.iter())
                    .filter_map(|p| p.engine.0.current_watermark())
                    .min()
                    .map_or(r.epoch, |w| w.saturating_add(1).min(r.epoch));
                (r.pieces, stash, ends, (r.epoch, engines))
            }
            None => {
                // The plan compiled every pattern once: its engines build again.
                let engines = plan
                    .engines(members)
                    .expect("the plan's patterns compiled when it was made");
                let (from, to) = worker_groups(index as u32, peers as u32);
                let pieces = (0..)
                    .zip(engines)
                    .map(|(group, engine)| Piece {
                        group,
                        from,
                        to,
                        engine,
                    })
                    .collect();
                let start = (Timestamp::MIN, Timestamp::MIN);
                (pieces, Stash::default(), Vec::new(), start)
            }
        };
        let (epoch, released) = released;
        let writes = plan.writes();
        let shares = router.sharing();
        for piece in &mut pieces {
            let shared = shares.get(piece.group as usize).copied().unwrap_or(false);
            scope(&mut piece.engine.0, &layout, piece.group as usize, shared);
            if writes {
                piece.engine.0.hand_out_list_writes();
            }
            // The lists' entries read at the start (after a restore, what
            // changed since the cut), before any event: in every engine,
            // each of the lists its rules declare (`Plan::edit_lists`).
            // (restored: after the changes of lists it had made for
            // times it had not reached, which they would undo)
            let engine = &mut piece.engine.0;
            let at = engine.last_list_change_waiting().unwrap_or(Timestamp::MIN);
            for (origin, edit) in &plan.lists {
                let _ = edit.make(engine, at, origin);
            }
        }
        let spans = spans(&pieces, groups);
        let rules = rules.unwrap_or_default();
        let in_force = (rules.in_force.clone())
            .unwrap_or_else(|| plan.patterns().iter().map(|p| p.name.clone()).collect());
        let names = (rules.in_force.as_ref()).map(|names| {
            (names.iter().enumerate())
                .map(|(i, name)| (name.clone(), i))
                .collect()
        });
        // (changes sent below the cut: each worker has them all)
        let pending = (rules.pending.into_iter())
            .map(|change| (change, epoch.saturating_sub(1)))
            .collect();
        Worker {
            index,
            places: plan.gathers_decisions(),
            shares,
            pieces,
            spans,
            stash,
            ends,
            released,
            clocks: Clocks::default(),
            finished: false,
            cut,
            taken: epoch,
            restored_at: epoch,
            left_out_seen: [0; 4],
            held: Rc::default(),
            changes: Changes {
                pending,
                layout,
                policy: plan.changing,
                fields: plan.fields().clone(),
                limits: plan.limits(),
                names,
                in_force,
                peers,
                refresh: false,
                fields_at_start: crate::fields_len::<E>(plan.fields()),
                changed: rules.changed,
                made: rules.made,
                files: Vec::new(),
                writes,
            },
        }
    }
}

/// One worker's state in the operator.
struct Worker<E: Event + 'static> {
    index: usize,
    /// Are the engines given each event's place, for their decisions to
    /// be gathered ([`Plan::gathering_decisions`])?
    places: bool,
    /// Does each group's engines share indicators over the whole stream
    /// (`route::shares_indicators`)?
    shares: Vec<bool>,
    /// The engines, each with its patterns' plan numbers, by group then
    /// key group (one per group, but after a resume on another number of
    /// workers).
    pieces: Vec<Piece<E>>,
    /// Each group's pieces: `pieces[spans[g].0..spans[g].1]`.
    spans: Vec<(usize, usize)>,
    /// Events received and not released yet, with their group.
    stash: Stash<E>,
    /// The ends of the sources received, with the time they were sent
    /// at.
    ends: Vec<(Timestamp, SourceEnd)>,
    /// The frontier up to which events are released.
    released: Timestamp,
    /// The clocks of the sources whose capability is above them.
    clocks: Clocks,
    finished: bool,
    /// The worker's part of the cuts, if any.
    cut: Option<WorkerCut>,
    /// The last epoch cut at (or given up).
    taken: Timestamp,
    /// The epoch restored from (`Timestamp::MIN` for none): the same on
    /// every worker.
    restored_at: Timestamp,
    /// Changes of rules, when the plan's rules can change.
    changes: Changes<E>,
    /// The events the worker's router holds ([`Hold`]).
    held: Rc<RefCell<Vec<Held<E>>>>,
    /// The engines' counts of what their lists and indicators left out,
    /// summed, when last looked at ([`Worker::left_out_changed`]).
    left_out_seen: [u64; 4],
}

/// A worker's changes of rules ([`Plan::changing`]).
struct Changes<E: Event + 'static> {
    /// Received, not applied yet, in (time, source, offset) order, with
    /// the time each was sent at.
    pending: Vec<(Change, Timestamp)>,
    /// The groups and their patterns in force.
    layout: Layout,
    /// How a changed pattern's partial matches go on (`None`: the rules
    /// cannot change; changes are ignored).
    policy: Option<ReloadPolicy>,
    /// The plan's field table (shared by the decoders of the process).
    fields: E::Fields,
    /// The plan's limits, for the engines a change adds.
    limits: crate::Limits,
    /// After a change: each pattern's number in the rules in force.
    names: Option<HashMap<String, usize>>,
    /// The names of the patterns in force, in order.
    in_force: Vec<String>,
    peers: usize,
    /// Did a change number new fields (records decoded before it are read
    /// again)?
    refresh: bool,
    /// The fields numbered when the run started.
    fields_at_start: usize,
    /// Did a change alter the rules?
    changed: bool,
    /// Changes made and refused (the same on every worker).
    made: [u64; 2],
    /// The entries each watched reference file gave at the changes of
    /// lists made since the run started (kept in the cuts, `Part::Lists`).
    files: Vec<cepheid_runtime::lists::FileEntries>,
    /// Does the run carry `then` writes to every worker ([`Plan::writes`])?
    /// Its engines hand their writes out.
    writes: bool,
}

impl<E: Event + 'static> Changes<E> {
    fn learn(&mut self, change: Change, sent: Timestamp) {
        if self.policy.is_none() {
            return;
        }
        let at = (self.pending).partition_point(|(c, _)| c.order() <= change.order());
        self.pending.insert(at, (change, sent));
    }

    /// What a cut at `e` keeps of them, with `read`, what the worker's
    /// readers counted there.
    fn saved(&self, e: Timestamp, read: cut::Counted) -> CutRules {
        CutRules {
            groups: self.layout.groups.clone(),
            in_force: self.names.as_ref().map(|_| self.in_force.clone()),
            changed: self.changed,
            fields: cut::fields_of::<E>(&self.fields),
            // (those sent at `e` or above are read again)
            pending: (self.pending.iter())
                .filter(|(_, sent)| *sent < e)
                .map(|(change, _)| change.clone())
                .collect(),
            made: self.made,
            read,
            changing: self.policy.is_some(),
        }
    }

    /// An engine as the plan makes them, without patterns, its fields
    /// numbered as the plan's now.
    fn make_engine(&self) -> Engine<E> {
        crate::empty_engine(self.limits, &self.fields)
    }

    fn fields_len(&self) -> usize {
        crate::fields_len::<E>(&self.fields)
    }

    /// Is a change due at or before `released` (the frontier the events
    /// are released up to)?
    fn due(&self, released: Timestamp) -> bool {
        self.pending.first().is_some_and(|(c, _)| c.at <= released)
    }

    /// The first change due before `f`, taken out.
    fn due_before(&mut self, f: Timestamp) -> Option<Change> {
        (self.pending.first()?.0.at < f).then(|| self.pending.remove(0).0)
    }
}

impl<E: Event + Clone + 'static> Worker<E> {
    /// Once a live source was stopped ([`Feed::stop`](crate::Feed::stop),
    /// a signal): the frontier the engines may go to, its clock's
    /// frontier (the least over the stopped sources; `Timestamp::MIN` for
    /// one without a watermark). The stopped source no longer holds the
    /// input frontier back, and the others read on until their own stop
    /// comes: had the engines followed them, they would be past the
    /// stopped source's watermark, and when it is resumed from its place
    /// and clock (the last cut), the events it reads above its watermark
    /// and below theirs would reach them late, dropped and counted with no
    /// late line (a resume on another number of workers met 18 such). Its
    /// end reaches every worker before the frontier passes its
    /// capability, so no engine goes past it; what the others read above
    /// it waits in the stash, which the last cut keeps whole.
    fn stopped_at(&self) -> Option<Timestamp> {
        (self.ends.iter())
            .filter(|(_, end)| end.stopped)
            .map(|(_, end)| {
                end.watermark
                    .map_or(Timestamp::MIN, |w| w.saturating_add(1))
            })
            .min()
    }

    /// The frontier moved to `f`: releases the events before it, in order,
    /// and moves the engines' watermark to `f - 1` (not past a quiet
    /// source's clock, [`SourceClock`](crate::SourceClock)). Did they
    /// move?
    fn advance<S: Collect<E>>(&mut self, f: Timestamp, sink: &mut S) -> bool {
        self.advance_below(f, f, sink)
    }

    /// [`advance`](Worker::advance) to a bound `f` at or below the events'
    /// frontier `frontier` (lowered by the writes known:
    /// [`Clocks::limit_below`]).
    fn advance_below<S: Collect<E>>(
        &mut self,
        f: Timestamp,
        frontier: Timestamp,
        sink: &mut S,
    ) -> bool {
        let f = self.clocks.limit_below(f, frontier, self.taken);
        self.advance_to(f, sink)
    }

    /// [`advance`](Worker::advance) to `f`, whatever the clocks say (the
    /// input ended).
    fn advance_to<S: Collect<E>>(&mut self, f: Timestamp, sink: &mut S) -> bool {
        if f <= self.released {
            return false;
        }
        while let Some(change) = self.changes.due_before(f) {
            self.release(|ts| ts < change.at, sink);
            if change.at > self.released {
                self.watermark(change.at - 1, sink);
            }
            self.apply(&change, sink);
        }
        self.release(|ts| ts < f, sink);
        self.watermark(f - 1, sink);
        self.released = f;
        true
    }

    /// Takes in a container of what the router sent at `sent`: whole into
    /// the stash when it holds events in order only (the usual case),
    /// else item by item.
    fn receive_all<S: Collect<E>>(
        &mut self,
        batch: &mut Vec<Routed<E>>,
        sent: Timestamp,
        sink: &mut S,
    ) {
        if let Some(from) = batch.first().map(|r| r.from as usize) {
            match self.stash.push_run(from, sent, std::mem::take(batch)) {
                Ok(()) => return,
                Err(items) => *batch = items,
            }
        }
        for routed in batch.drain(..) {
            self.receive(routed, sent, sink);
        }
    }

    /// Takes in what the router sent at `sent`.
    fn receive<S: Collect<E>>(&mut self, routed: Routed<E>, sent: Timestamp, sink: &mut S) {
        match routed.input {
            Input::Event(stamped) => {
                let stashed = Stashed {
                    group: routed.group,
                    kg: routed.kg,
                    sent,
                    stamped,
                };
                self.stash.push(routed.from as usize, stashed);
            }
            Input::End(end) => {
                if end.stopped {
                    sink.source_stopped(routed.from as usize);
                }
                self.ends.push((sent, end));
            }
            Input::Rules(change) => self.changes.learn(*change, sent),
            Input::Clock(clock) => self.clocks.learn(clock),
            Input::Released(below) => self.clocks.released(routed.from, below),
        }
    }

    /// Every engine of the worker makes `writes` (of every worker's
    /// engines, its own included) at their times.
    fn make_writes(&mut self, writes: &[ListWrite]) {
        for piece in &mut self.pieces {
            piece.engine.0.make_list_writes(writes);
        }
    }

    /// Moves the writes the worker's engines made to `out`, and makes
    /// them in every engine of the worker at once: their time is after
    /// the step that made them, where the engines are.
    fn make_own_writes(&mut self, out: &mut Vec<ListWrite>) {
        let made = out.len();
        for piece in &mut self.pieces {
            piece.engine.0.take_list_writes(out);
        }
        if out.len() > made {
            self.make_writes(&out[made..]);
        }
    }

    /// The earliest time at which the worker's engines may step (and so
    /// write) with what they have: the first event stashed, the first
    /// deadline, the first change of rules pending (`None`: none).
    fn next_step(&mut self) -> Option<Timestamp> {
        let stashed = self.stash.first_time();
        let deadline = (self.pieces.iter_mut())
            .filter_map(|p| p.engine.0.next_deadline())
            .min();
        let change = self.changes.pending.first().map(|(c, _)| c.at);
        [stashed, deadline, change].into_iter().flatten().min()
    }

    /// The input ended and the plan writes (`carries`): the next bound to
    /// release up to, in the steps the writes known allow, on the way to
    /// `point` (a cut before the end) or else to the final watermark + 1,
    /// with the latter (`None`: there, and every write to be made there
    /// known).
    fn end_steps(
        &self,
        writes_known: Option<Timestamp>,
        carries: bool,
        point: Option<Timestamp>,
    ) -> Option<(Timestamp, Timestamp)> {
        if !carries {
            return None;
        }
        let end = self.final_end()?.saturating_add(1);
        let target = point.unwrap_or(end);
        let known = writes_known.is_none_or(|w| w > target);
        if self.released >= target && known {
            return None;
        }
        let bound = writes_known.map_or(target, |w| w.min(target));
        Some((bound, end))
    }

    /// The final watermark the engines reach at the end
    /// ([`finish`](Worker::finish)).
    fn final_end(&self) -> Option<Timestamp> {
        let ends: Vec<SourceEnd> = self.ends.iter().map(|(_, end)| *end).collect();
        let end = SourceEnd::final_watermark(&ends);
        let limit = self.stopped_at().map(|f| f.saturating_sub(1));
        end.map(|end| limit.map_or(end, |limit| end.min(limit)))
    }

    /// Makes the changes at or below the frontier the events are released
    /// up to (every event below them is released, none at or above).
    fn apply_reached<S: Collect<E>>(&mut self, sink: &mut S) {
        while let Some(change) = self.changes.due_before(self.released.saturating_add(1)) {
            self.apply(&change, sink);
        }
    }

    /// Moves every engine's watermark to `w`.
    fn watermark<S: Sink<E>>(&mut self, w: Timestamp, sink: &mut S) {
        let names = self.changes.names.as_ref();
        for piece in &mut self.pieces {
            let (engine, numbers) = &mut piece.engine;
            engine.watermark(
                w,
                &mut Renumber {
                    sink,
                    numbers,
                    names,
                },
            );
        }
    }

    /// The input ended: releases what the final watermark covers and moves
    /// the engines to it.
    fn finish<S: Collect<E>>(&mut self, sink: &mut S) {
        if self.finished {
            return;
        }
        self.finished = true;
        let ends: Vec<SourceEnd> = self.ends.iter().map(|(_, end)| *end).collect();
        // (stopped: not past a stopped source's clock, one without a
        // watermark included)
        if let Some(end) = self.final_end() {
            while let Some(change) = self.changes.due_before(end.saturating_add(1)) {
                self.release(|ts| ts < change.at, sink);
                if change.at > self.released {
                    self.watermark(change.at - 1, sink);
                }
                self.apply(&change, sink);
            }
            self.release(|ts| ts <= end, sink);
            self.watermark(end, sink);
        }
        // (changes past the end of event time: made there, as one engine
        // makes them when it reads them)
        while let Some(change) = self.changes.due_before(Timestamp::MAX) {
            self.apply(&change, sink);
        }
        let mut stats = Stats::default();
        let mut waiting = self.stash.len();
        for piece in &self.pieces {
            let engine = &piece.engine.0;
            add_stats(&mut stats, &engine.stats());
            waiting += engine.waiting_events();
        }
        if self.index == 0 {
            for end in &ends {
                stats.late += end.late;
                stats.forced_watermarks += end.forced;
            }
            // The engines counted each event once per group; the sources
            // count events read.
            stats.events = ends.iter().map(|e| e.events).sum();
            let [made, refused] = self.changes.made;
            sink.reloads(made, refused);
        } else {
            stats.events = 0;
        }
        sink.finish(&stats, waiting);
    }

    /// Pushes the stashed events whose time passes `ready` into their
    /// engines, in (time, source, offset) order.
    fn release<S: Sink<E>>(&mut self, ready: impl Fn(Timestamp) -> bool, sink: &mut S) {
        while let Some(Stashed {
            group, kg, stamped, ..
        }) = self.stash.pop_if(&ready)
        {
            let shared = group & SHARED != 0;
            let group = group & !SHARED;
            let Some(&(start, end)) = self.spans.get(group as usize) else {
                continue;
            };
            let piece = if end - start <= 1 {
                start
            } else {
                // The last piece from at or below the key group (the first
                // for an event without a usable key, which is counted only).
                let pieces = &self.pieces[start..end];
                start + pieces.partition_point(|p| p.from <= u64::from(kg)).max(1) - 1
            };
            let event = if self.changes.refresh {
                crate::refreshed(stamped.event, &self.changes.fields)
            } else {
                stamped.event
            };
            let names = self.changes.names.as_ref();
            // A copy for the shared indicators goes to every engine of the
            // group here; the event itself to its key's, and to the
            // others' shared indicators (a worker that resumed a cut of
            // several holds several engines of a group).
            let shares = self.shares.get(group as usize).copied().unwrap_or(false);
            for other in start..end {
                if (shares && other != piece) || shared {
                    let (engine, numbers) = &mut self.pieces[other].engine;
                    let mut sink = Renumber {
                        sink: &mut *sink,
                        numbers,
                        names,
                    };
                    engine.push_for_indicators(stamped.ts, event.clone(), &mut sink);
                }
            }
            if shared {
                continue;
            }
            let (engine, numbers) = &mut self.pieces[piece].engine;
            let mut sink = Renumber {
                sink,
                numbers,
                names,
            };
            if self.places {
                // (with its name, when its source gave one)
                let place = crate::placed(stamped.source, stamped.offset, stamped.name.as_ref());
                engine.push_positioned(stamped.ts, event, place, &mut sink);
            } else {
                engine.push(stamped.ts, event, &mut sink);
            }
        }
    }

    /// Did what the engines' lists and indicators left out change since
    /// it was last looked at? (Their counts summed: nothing per event.)
    fn left_out_changed(&mut self) -> bool {
        let mut now = [0; 4];
        for piece in &self.pieces {
            let s = piece.engine.0.memory_stats();
            let counts = [
                s.refused_entries,
                s.bad_entries,
                s.refused_events,
                s.non_numeric,
            ];
            for (total, n) in now.iter_mut().zip(counts) {
                *total += n;
            }
        }
        let changed = now != self.left_out_seen;
        self.left_out_seen = now;
        changed
    }

    /// What the engines' lists and indicators left out, each engine of
    /// its group of patterns.
    fn left_out(&self) -> LeftOutParts {
        let mut parts = LeftOutParts::default();
        for piece in &self.pieces {
            parts.add(piece.group, piece.engine.0.left_out());
        }
        parts
    }

    /// The worker's numbers now (each pattern's in the plan's order).
    fn numbers(&self, state_bytes: bool) -> EngineNumbers {
        let mut total = EngineNumbers::default();
        let mut order: HashMap<&str, usize> = HashMap::new();
        let mut each = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            let (engine, numbers) = &piece.engine;
            let mut n = EngineNumbers::of(engine, state_bytes);
            n.memory.left_out = LeftOutParts::of(piece.group, engine.left_out());
            each.push((n, numbers));
        }
        for (n, numbers) in &each {
            match &self.changes.names {
                // (after a change of rules: the order of the rules in force)
                Some(names) => {
                    for p in &n.patterns {
                        let number = names.get(&p.name).copied().unwrap_or(usize::MAX);
                        order.entry(p.name.as_str()).or_insert(number);
                    }
                }
                None => {
                    for (p, number) in n.patterns.iter().zip(numbers.iter()) {
                        order.entry(p.name.as_str()).or_insert(*number);
                    }
                }
            }
            total.add(n);
        }
        total
            .patterns
            .sort_by_key(|p| order.get(p.name.as_str()).copied().unwrap_or(usize::MAX));
        total.waiting_events += self.stash.len() as u64;
        total
    }

    /// Hands the sink's items to `give`.
    fn emit<S: Collect<E>>(&mut self, sink: &mut S, give: &mut dyn FnMut(&mut Vec<S::Item>)) {
        let mut items = Vec::new();
        sink.drain(&mut items);
        if !items.is_empty() {
            give(&mut items);
        }
    }
}

/// Makes `engine`, of group `group` of `layout`, keep only the indicators
/// its patterns can read as one engine does (those grouped by at least
/// the group's key: `route::not_on_workers`); all for a group keyed by a
/// closure, whose patterns read none.
///
/// With `shared` (its patterns read indicators their key does not fix,
/// `route::shares_indicators`), it keeps every indicator over every
/// event of the stream: its own, and the others' copies ([`SHARED`]).
fn scope<E: Event + 'static>(engine: &mut Engine<E>, layout: &Layout, group: usize, shared: bool) {
    let key = layout.groups.get(group).and_then(|(key, _)| key.clone());
    engine.share_indicators(shared);
    engine.keep_indicators_grouped_by(key);
}

/// Each group's pieces in `pieces` (sorted by group): `[start, end)`.
fn spans<E: Event + 'static>(pieces: &[Piece<E>], groups: usize) -> Vec<(usize, usize)> {
    let mut spans = vec![(0, 0); groups];
    for (g, span) in spans.iter_mut().enumerate() {
        let start = pieces.partition_point(|p| (p.group as usize) < g);
        let end = pieces.partition_point(|p| (p.group as usize) <= g);
        *span = (start, end);
    }
    spans
}
