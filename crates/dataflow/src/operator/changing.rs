//! The routing of a plan whose rules can change ([`route_changing`]): the
//! events wait in their router until every change before their time is
//! known, and the changes go to every worker's `cep`.

use std::cell::RefCell;
use std::rc::Rc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::Stream;
use timely::ExchangeData;

use crate::cut::WorkerCut;
use crate::event::Event;
use crate::primitives::Timestamp;
use crate::route::{Layout, Routed, Router};
use crate::{Change, Clocks, Events, Input, Plan, SourceClock, Stamped};

/// The routing of a plan whose rules can change: each event waits until
/// the changes' frontier passes its time (every change in force at its
/// time is known), then goes by the layout in force at its time; each
/// change (broadcast: every router gets each once) goes on to this
/// worker's `cep`.
pub(super) fn route_changing<'scope, E>(
    input: Events<'scope, E>,
    mut hold: Hold<E>,
    restored: Vec<Stamped<E>>,
) -> Stream<'scope, Timestamp, Vec<Routed<E>>>
where
    E: Event + Clone + ExchangeData,
{
    let scope = input.scope();
    let changes = told(&input);
    input.binary_frontier::<_, CapacityContainerBuilder<Vec<Routed<E>>>, _, _, _, _>(
        changes,
        Pipeline,
        Pipeline,
        "CepRouteChanging",
        move |capability, info| {
            // (what it says it released goes out at its inputs' frontier,
            // where it holds nothing back: `Input::Released`)
            let mut word = Some(capability.clone());
            let mut said = Timestamp::MIN;
            if let Some(cut) = &hold.cut {
                // (a batch kept for a cut goes on once it is taken)
                cut.wake_when_taken(scope.activator_for(info.address.clone()));
            }
            if !restored.is_empty() {
                // Held at the cut resumed from (sent below it): routed
                // again once the changes before their times are known.
                let mut events = restored;
                events.sort_by_key(|e| e.ts);
                hold.held.borrow_mut().push(Held {
                    sent: *capability.time(),
                    cap: capability,
                    events,
                });
                scope.activator_for(info.address).activate();
            }
            move |(events, events_frontier), (changes, known), output| {
                let me = hold.index;
                changes.for_each_stamp(|cap, data| {
                    let mut session = output.session(&cap);
                    for batch in data {
                        for told in batch.drain(..) {
                            let input = match told {
                                Told::Change(change) => {
                                    hold.learn(change.clone());
                                    Input::Rules(Box::new(change))
                                }
                                Told::Clock(clock) => {
                                    hold.clocks.learn(clock);
                                    Input::Clock(clock)
                                }
                            };
                            session.give(Routed {
                                worker: me,
                                from: me,
                                group: 0,
                                kg: 0,
                                input,
                            });
                        }
                    }
                });
                events.for_each_stamp(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else {
                        return;
                    };
                    let sent = *cap.time();
                    for batch in data {
                        let mut kept = Vec::with_capacity(batch.len());
                        for item in batch.drain(..) {
                            match item {
                                // (the source's end: on at once)
                                Input::End(_) => hold.route(item, |routed| {
                                    output.session(&cap).give(routed);
                                }),
                                Input::Event(event) => kept.push(event),
                                // (they come broadcast, above)
                                Input::Rules(_) | Input::Clock(_) | Input::Released(_) => {}
                            }
                        }
                        if !kept.is_empty() {
                            // (stable: equal times keep their order)
                            kept.sort_by_key(|e| e.ts);
                            hold.held.borrow_mut().push(Held {
                                cap: cap.clone(),
                                sent,
                                events: kept,
                            });
                        }
                    }
                });
                let inputs = [events_frontier.frontier(), known.frontier()];
                let meet = inputs.iter().filter_map(|f| f.first().copied()).min();
                // (not past a quiet source's clock: a change it reads
                // there may still come, `SourceClock`)
                let known = (known.frontier().first().copied()).map(|k| hold.clocks.latest(k));
                hold.settle(known);
                let ready = |ts: Timestamp| known.is_none_or(|k| ts < k);
                // A cut the worker's `cep` has not taken yet keeps what was
                // sent below it: events of such a batch are not sent at or
                // above its epoch (they would be taken for events read
                // after the cut), but kept in the cut as held.
                let cut = hold.cut.as_ref().and_then(WorkerCut::pending);
                // A batch sent below a pending cut whose events wait from a
                // time a source moved up to it from, or later, waits in the
                // cut (its capability moved up to the epoch): the engines
                // stop at that time for the cut, and had it kept its
                // capability below the epoch, the cut would wait for that
                // source to read on, which a quiet one may never do (and
                // with it the engines: issue 59's stall).
                let waits = cut.and_then(|e| Some((e, hold.clocks.moved_to(e)?)));
                let shared = Rc::clone(&hold.held);
                let mut held = shared.borrow_mut();
                // Each batch is kept in time order: its ready events are a
                // prefix, and a batch none of whose events is ready costs
                // one look.
                held.retain_mut(|Held { cap, sent, events }| {
                    let kept = cut.is_some_and(|e| *sent < e && *cap.time() >= e);
                    let n = match kept {
                        true => 0,
                        false => events.iter().take_while(|e| ready(e.ts)).count(),
                    };
                    if n > 0 {
                        // (one session for the batch's ready events: not
                        // one made and flushed per event)
                        let mut session = output.session(&*cap);
                        for event in events.drain(..n) {
                            hold.route(Input::Event(event), |routed| session.give(routed));
                        }
                    }
                    // Not held back below the changes' frontier, even when
                    // none of it is ready (a batch that came with an earlier
                    // capability would hold the events before it back), but
                    // not moved above it either, to its first event's time,
                    // where no source's capability is: as the sources end,
                    // the `cep`s' input frontier went there before the
                    // routers saw the end (this one a step later, another
                    // worker's whenever its thread runs), and the engines
                    // went past the cut before the end (`Cuts::before_end`, at
                    // the largest source watermark + 1) before it was taken.
                    if let (Some(first), Some(known)) = (events.first(), known) {
                        let to = first.ts.min(known);
                        if to > *cap.time() {
                            cap.downgrade(&to);
                        }
                    }
                    if let (Some(first), Some((e, from))) = (events.first(), waits) {
                        if *sent < e && *cap.time() < e && first.ts >= from {
                            cap.downgrade(&e);
                        }
                    }
                    !events.is_empty()
                });
                // How far it released, said to every worker's `cep` after
                // what it sent: no event it holds, or will be given (at or
                // above the changes' frontier, at or above a quiet source's
                // clock), is below it.
                let first = held
                    .iter()
                    .filter_map(|batch| batch.events.first())
                    .map(|e| e.ts)
                    .min();
                drop(held);
                let released = known
                    .unwrap_or(Timestamp::MAX)
                    .min(first.unwrap_or(Timestamp::MAX));
                if let Some(cap) = word.as_mut() {
                    if released > said {
                        said = released;
                        let mut session = output.session(&*cap);
                        hold.route(Input::Released(released), |routed| session.give(routed));
                    }
                    match meet {
                        Some(t) if t > *cap.time() => cap.downgrade(&t),
                        Some(_) => {}
                        None => word = None,
                    }
                }
            }
        },
    )
}

/// What every router hears: the changes and the quiet sources' clocks
/// its sources read, broadcast.
fn told<'scope, E>(input: &Events<'scope, E>) -> Stream<'scope, Timestamp, Vec<Told>>
where
    E: Event + Clone + ExchangeData,
{
    input
        .clone()
        .unary::<CapacityContainerBuilder<Vec<Told>>, _, _, _>(
            Pipeline,
            "CepChanges",
            move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|cap, data| {
                        let mut session = output.session(&cap);
                        for batch in data {
                            for item in batch.iter() {
                                match item {
                                    Input::Rules(change) => {
                                        session.give(Told::Change(Change::clone(change)));
                                    }
                                    Input::Clock(clock) => session.give(Told::Clock(*clock)),
                                    _ => {}
                                }
                            }
                        }
                    });
                }
            },
        )
        .broadcast()
}

/// A layout and the router that routes by it.
type LayoutRouter<E> = (Layout, Router<E>);

/// What reaches every router of a plan whose rules can change: the
/// changes, and the clocks of quiet sources ([`SourceClock`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Told {
    Change(Change),
    Clock(SourceClock),
}

/// A router of a plan whose rules can change: the events waiting for the
/// changes' frontier, and a router per layout since the first event it
/// may still route.
pub(super) struct Hold<E: Event + 'static> {
    index: u32,
    peers: usize,
    fields: E::Fields,
    limits: crate::Limits,
    /// The plan's layout and its router (keys closures included).
    first: LayoutRouter<E>,
    /// The changes whose order is final, in order, and the router in
    /// force from each (`None`: the change was refused, its layout is the
    /// one before).
    changes: Vec<(Change, Option<LayoutRouter<E>>)>,
    /// The changes received whose order is not final yet (a change of
    /// another source may still come before them), in order.
    pending: Vec<Change>,
    /// Events waiting, in batches in time order (shared with the worker's
    /// `cep`, which keeps those sent below a cut in it).
    pub(super) held: Rc<RefCell<Vec<Held<E>>>>,
    /// The worker's part of the cuts, if any.
    pub(super) cut: Option<WorkerCut>,
    /// The clocks of the sources whose capability is above them.
    clocks: Clocks,
    /// Does the run carry `then` writes ([`Plan::writes`]): may a change
    /// bring a pattern that writes?
    writes: bool,
}

/// A batch of events a router holds: the capability it came with
/// (downgraded as the changes' frontier moves, never above its first
/// event's time), the time it was sent at, and its events in time order.
pub(super) struct Held<E> {
    cap: timely::dataflow::operators::Capability<Timestamp>,
    pub(super) sent: Timestamp,
    pub(super) events: Vec<Stamped<E>>,
}

impl<E: Event + Clone + 'static> Hold<E> {
    pub(super) fn new(
        router: Router<E>,
        layout: Layout,
        plan: &Plan<E>,
        index: usize,
        peers: usize,
    ) -> Hold<E> {
        Hold {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            peers,
            fields: plan.fields().clone(),
            limits: plan.limits(),
            first: (layout, router),
            changes: Vec::new(),
            pending: Vec::new(),
            held: Rc::default(),
            cut: None,
            clocks: Clocks::default(),
            writes: plan.writes(),
        }
    }

    /// A change: kept until its order is final ([`Hold::settle`]).
    pub(super) fn learn(&mut self, change: Change) {
        let at = (self.pending).partition_point(|c| c.order() <= change.order());
        self.pending.insert(at, change);
    }

    /// The changes whose order is final: those below the changes'
    /// frontier `known` (every change before them is known; all at its
    /// end), in order. Each one's new fields are numbered in the plan's
    /// table then, as `cep` numbers them when it applies it
    /// ([`Worker::apply`]): every router and engine of every process
    /// numbers the same fields in the same order, whatever the order in
    /// which the changes of several sources arrived, so that the numbers
    /// of a record sent to another process are that process's. Then the
    /// layout in force from it is worked out.
    fn settle(&mut self, known: Option<Timestamp>) {
        let n = (self.pending.iter())
            .take_while(|c| known.is_none_or(|k| c.at < k))
            .count();
        let settled: Vec<Change> = self.pending.drain(..n).collect();
        for change in settled {
            if change.is_lists() || change.refused().is_some() {
                // (a change of lists, or one refused, routes nothing anew)
                self.changes.push((change, None));
                continue;
            }
            let before = match self.changes.len().checked_sub(1) {
                Some(last) => self.layout_at(last).clone(),
                None => self.first.0.clone(),
            };
            let next = change
                .compiled()
                .ok()
                .filter(|rules| {
                    // (its fields numbered before its keys are resolved)
                    crate::number_fields::<E>(rules, &self.fields, self.limits).is_ok()
                })
                .and_then(|rules| before.next(rules.patterns(), self.writes).ok());
            let next = next.map(|layout| {
                let router =
                    Router::of_layout(&layout, &self.fields, self.index as usize, self.peers);
                (layout, router)
            });
            self.changes.push((change, next));
        }
    }

    /// The layout in force after change `i`.
    fn layout_at(&self, i: usize) -> &Layout {
        (0..=i)
            .rev()
            .find_map(|j| self.changes[j].1.as_ref().map(|(layout, _)| layout))
            .unwrap_or(&self.first.0)
    }

    /// Routes `input` by the layout in force at its time.
    fn route(&mut self, input: Input<E>, push: impl FnMut(Routed<E>)) {
        let (ts, input) = match input {
            // (decoded before a change numbered the fields its keys read)
            Input::Event(e) if !self.changes.is_empty() => (
                e.ts,
                Input::Event(Stamped {
                    event: crate::refreshed(e.event, &self.fields),
                    ..e
                }),
            ),
            Input::Event(e) => (e.ts, Input::Event(e)),
            other => (Timestamp::MIN, other),
        };
        let last = self.changes.partition_point(|(c, _)| c.at <= ts);
        let found = (0..last).rev().find(|&j| self.changes[j].1.is_some());
        let router = match found.and_then(|j| self.changes[j].1.as_mut()) {
            Some((_, router)) => router,
            None => &mut self.first.1,
        };
        router.route(input, push);
    }
}
