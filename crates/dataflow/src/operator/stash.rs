//! The stash of a CEP operator: the events it received, held until the
//! frontier passes their time, then taken out in the order the engines
//! get them (time, source, offset, group).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use crate::primitives::Timestamp;
use crate::route::{Routed, SHARED};
use crate::{Input, Stamped};

/// A stashed event for one group, ordered by (time, source, offset,
/// group): the order in which the engines get them.
pub(super) struct Stashed<E> {
    pub(super) group: u32,
    /// The key group of its key ([`Routed::kg`]).
    pub(super) kg: u32,
    /// The timely time it was sent at (a cut at `f` keeps those sent
    /// below `f`: the sources read the others again).
    pub(super) sent: Timestamp,
    pub(super) stamped: Stamped<E>,
}

/// (time, source, offset, group): the order of release.
pub(super) type Key = (Timestamp, u32, u64, u32);

impl<E> Stashed<E> {
    pub(super) fn key(&self) -> Key {
        let s = &self.stamped;
        // (a copy for the shared indicators in its group's place: events
        // of one place, those of a checkpoint of one engine resumed on
        // workers, keep their order of arrival)
        (s.ts, s.source, s.offset, self.group & !SHARED)
    }
}

impl<E> PartialEq for Stashed<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<E> Eq for Stashed<E> {}

impl<E> PartialOrd for Stashed<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Stashed<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The stashed events, taken out in (time, source, offset, group) order.
/// What one worker sends arrives in the order sent, mostly in time order:
/// such arrivals go to a FIFO per sender at O(1), the rest to a heap, and
/// the least of the FIFOs' fronts and the heap's top comes out first. A
/// container of events received in order goes to its sender's FIFO whole
/// ([`Stash::push_run`]): its events are not moved until they are taken
/// out.
pub(super) struct Stash<E> {
    fifos: Vec<Fifo<E>>,
    heap: BinaryHeap<Reverse<Stashed<E>>>,
}

/// One sender's events in order: runs of events sent at one time, as
/// they arrived.
struct Fifo<E> {
    runs: VecDeque<Run<E>>,
    /// Events in its runs.
    len: usize,
}

impl<E> Default for Fifo<E> {
    fn default() -> Self {
        Fifo {
            runs: VecDeque::new(),
            len: 0,
        }
    }
}

/// Events sent at `sent`, in order: each an [`Input::Event`] (the only
/// kind a run holds).
struct Run<E> {
    sent: Timestamp,
    items: VecDeque<Routed<E>>,
}

/// The key of a routed event ([`Stashed::key`]); `None` for anything else.
#[inline]
fn key_of<E>(routed: &Routed<E>) -> Option<Key> {
    match &routed.input {
        Input::Event(s) => Some((s.ts, s.source, s.offset, routed.group & !SHARED)),
        _ => None,
    }
}

impl<E> Fifo<E> {
    /// The key of its last event.
    fn back_key(&self) -> Option<Key> {
        let run = self.runs.back()?;
        run.items.back().and_then(key_of)
    }

    /// Its first event.
    fn front(&self) -> Option<(Timestamp, &Routed<E>)> {
        let run = self.runs.front()?;
        run.items.front().map(|item| (run.sent, item))
    }

    /// Takes its first event out.
    fn pop_front(&mut self) -> Option<Stashed<E>> {
        let run = self.runs.front_mut()?;
        let sent = run.sent;
        let item = run.items.pop_front()?;
        if run.items.is_empty() {
            self.runs.pop_front();
        }
        self.len -= 1;
        match item.input {
            Input::Event(stamped) => Some(Stashed {
                group: item.group,
                kg: item.kg,
                sent,
                stamped,
            }),
            // (a run holds events only)
            _ => None,
        }
    }

    /// Appends `item`, sent at `sent`.
    fn push_back(&mut self, sent: Timestamp, item: Routed<E>) {
        match self.runs.back_mut() {
            Some(run) if run.sent == sent => run.items.push_back(item),
            _ => {
                let mut items = VecDeque::new();
                items.push_back(item);
                self.runs.push_back(Run { sent, items });
            }
        }
        self.len += 1;
    }
}

impl<E> Default for Stash<E> {
    fn default() -> Self {
        Stash {
            fifos: Vec::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<E> Stash<E> {
    fn fifo(&mut self, from: usize) -> &mut Fifo<E> {
        if self.fifos.len() <= from {
            self.fifos.resize_with(from + 1, Fifo::default);
        }
        &mut self.fifos[from]
    }

    /// Stashes `item`, sent by worker `from`.
    pub(super) fn push(&mut self, from: usize, item: Stashed<E>) {
        let fifo = self.fifo(from);
        if fifo.back_key().is_none_or(|last| last <= item.key()) {
            let Stashed {
                group,
                kg,
                sent,
                stamped,
            } = item;
            let routed = Routed {
                worker: 0,
                from: from as u32,
                group,
                kg,
                input: Input::Event(stamped),
            };
            fifo.push_back(sent, routed);
        } else {
            self.heap.push(Reverse(item));
        }
    }

    /// Stashes `items` whole, sent by worker `from` at `sent`, when each
    /// is an event from `from` and they come in order after what `from`
    /// sent before; else gives them back.
    pub(super) fn push_run(
        &mut self,
        from: usize,
        sent: Timestamp,
        items: Vec<Routed<E>>,
    ) -> Result<(), Vec<Routed<E>>> {
        let fifo = self.fifo(from);
        let mut last = fifo.back_key();
        for item in &items {
            let Some(key) = key_of(item).filter(|_| item.from as usize == from) else {
                return Err(items);
            };
            if last.is_some_and(|last| last > key) {
                return Err(items);
            }
            last = Some(key);
        }
        if items.is_empty() {
            return Ok(());
        }
        fifo.len += items.len();
        fifo.runs.push_back(Run {
            sent,
            items: VecDeque::from(items),
        });
        Ok(())
    }

    /// The events sent below `f`, with their group.
    pub(super) fn sent_below(&self, f: Timestamp) -> Vec<(u32, &Stamped<E>)> {
        let mut events: Vec<(Key, u32, &Stamped<E>)> = Vec::new();
        for run in self.fifos.iter().flat_map(|fifo| fifo.runs.iter()) {
            if run.sent >= f {
                continue;
            }
            for item in &run.items {
                if let (Some(key), Input::Event(stamped)) = (key_of(item), &item.input) {
                    events.push((key, item.group, stamped));
                }
            }
        }
        for Reverse(item) in self.heap.iter().filter(|Reverse(item)| item.sent < f) {
            events.push((item.key(), item.group, &item.stamped));
        }
        events.sort_by_key(|(key, _, _)| *key);
        events
            .into_iter()
            .map(|(_, group, stamped)| (group, stamped))
            .collect()
    }

    /// The time of the first event stashed.
    pub(super) fn first_time(&self) -> Option<Timestamp> {
        let heap = self.heap.peek().map(|Reverse(top)| top.stamped.ts);
        let fifos = (self.fifos.iter())
            .filter_map(|f| f.front().and_then(|(_, item)| key_of(item)).map(|k| k.0));
        heap.into_iter().chain(fifos).min()
    }

    /// Events stashed.
    pub(super) fn len(&self) -> usize {
        self.heap.len() + self.fifos.iter().map(|f| f.len).sum::<usize>()
    }

    /// Takes the least event out if `ready` says its time is.
    pub(super) fn pop_if(&mut self, ready: impl Fn(Timestamp) -> bool) -> Option<Stashed<E>> {
        // `None`: the heap's top; `Some(i)`: FIFO `i`'s front.
        let mut best: Option<(Option<usize>, Key)> =
            self.heap.peek().map(|Reverse(top)| (None, top.key()));
        for (i, fifo) in self.fifos.iter().enumerate() {
            if let Some(key) = fifo.front().and_then(|(_, item)| key_of(item)) {
                if best.as_ref().is_none_or(|(_, b)| key < *b) {
                    best = Some((Some(i), key));
                }
            }
        }
        let (from, key) = best?;
        if !ready(key.0) {
            return None;
        }
        match from {
            None => self.heap.pop().map(|Reverse(item)| item),
            Some(i) => self.fifos[i].pop_front(),
        }
    }
}
