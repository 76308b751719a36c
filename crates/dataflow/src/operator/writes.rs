//! The loop of writes (`docs/semantics.md`, "Writes by rules", on
//! workers): what a worker says to the others of its engines' list
//! writes and its promise (no write before a time), the promises it
//! heard, and where the records' capability goes step by step. Moved out
//! of `operator.rs` as it was (issue 61, "no file over 1,500 lines").

use super::*;

/// What a worker says to another through the loop of writes: the
/// writes its engines made since it last said, and its promise: it
/// makes no write at a step before that time (`Timestamp::MAX`: it
/// finished). A worker's messages reach another in the order it sent
/// them, so a promise comes after every write it covers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Promised {
    pub(super) to: u32,
    pub(super) from: u32,
    pub(super) writes: Vec<ListWrite>,
    pub(super) promise: Timestamp,
}

thread_local! {
    /// Does this worker thread's CEP operator wait for another worker's
    /// promise to step on ([`held_by_peer`])?
    pub(super) static HELD_BY_PEER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Does the CEP operator of the worker on this thread wait for another
/// worker's promise to step on (rules that write lists, on workers)? Its
/// answer comes within the peer's step, so a worker about to park spins
/// a moment first: a parked thread woken per step of event time cost
/// more than the step (`run::job`).
pub(crate) fn held_by_peer() -> bool {
    HELD_BY_PEER.get()
}

/// The promises a worker heard through the loop of writes, its own
/// included (made here: its engines make its writes at once).
pub(super) struct Promises {
    pub(super) index: usize,
    /// Each worker's promise (`Timestamp::MIN` until it says one).
    pub(super) heard: Vec<Timestamp>,
    /// The worker's own promise when it last said it.
    pub(super) said: Option<Timestamp>,
    /// Does the plan write?
    pub(super) writes: bool,
}

impl Promises {
    /// Before any word of the others: the worker's own engines at
    /// `released`.
    pub(super) fn new(index: usize, peers: usize, released: Timestamp, writes: bool) -> Promises {
        let mut heard = vec![Timestamp::MIN; peers];
        heard[index] = released;
        Promises {
            index,
            heard,
            said: None,
            writes,
        }
    }

    pub(super) fn hear(&mut self, from: u32, promise: Timestamp) {
        if let Some(heard) = self.heard.get_mut(from as usize) {
            *heard = promise.max(*heard);
        }
    }

    /// The worker's own promise moves up to `promise`.
    pub(super) fn promise(&mut self, promise: Timestamp) {
        self.hear(self.index as u32, promise);
    }

    pub(super) fn own(&self) -> Timestamp {
        self.heard[self.index]
    }

    /// Is another worker's promise below the worker's own (the next time
    /// it would step at, which it waits to be promised)?
    pub(super) fn held_by_peer(&self) -> bool {
        let own = self.own();
        (self.heard.iter()).any(|&heard| heard < own)
    }

    /// Takes in what the others said: their writes, which the worker's
    /// engines make, and their promises.
    pub(super) fn take<E: Event + Clone + 'static>(
        &mut self,
        said: &mut Vec<Promised>,
        worker: &mut Worker<E>,
    ) {
        for message in said.drain(..) {
            if !message.writes.is_empty() {
                worker.make_writes(&message.writes);
            }
            self.hear(message.from, message.promise);
        }
    }

    /// Says the worker's promise to every other worker, with the writes
    /// its engines made since it last said (`made`), if it moved or they
    /// made some.
    pub(super) fn say(
        &mut self,
        made: &[ListWrite],
        output: &mut OutputBuilderSession<'_, Timestamp, CapacityContainerBuilder<Vec<Promised>>>,
        cap: &Capability<Timestamp>,
    ) {
        let own = self.own();
        if self.said.is_some_and(|said| own <= said) && made.is_empty() {
            return;
        }
        self.said = Some(own);
        let mut session = output.session(cap);
        for to in (0..self.heard.len()).filter(|&to| to != self.index) {
            session.give(Promised {
                to: to as u32,
                from: self.index as u32,
                writes: made.to_vec(),
                promise: own,
            });
        }
    }

    /// Every write to be made before it is known: each worker promised
    /// one below it (`None`: the plan writes nothing, or every worker
    /// finished).
    pub(super) fn known(&self) -> Option<Timestamp> {
        let least = (self.heard.iter()).copied().min()?;
        (self.writes && least != Timestamp::MAX).then(|| least.saturating_add(1))
    }
}

/// Where the records' capability goes. Without writes it follows the
/// events' frontier; with them the engines reach that frontier in steps
/// of event time, as the writes known let them, and a capability moved
/// at each step was a round of timely's progress tracking through the
/// records' stream (to the writer on worker 0) for each: it moves to the
/// events' frontiers only, once the engines reached them.
pub(super) struct Steps {
    /// How far the engines were let go (what the capability was moved
    /// to, step by step, before: a cut below it is given up).
    pub(super) passed: Timestamp,
    /// The events' frontiers seen above `passed`, in order.
    pub(super) seen: VecDeque<Timestamp>,
}

impl Steps {
    pub(super) fn new(at: Timestamp) -> Steps {
        Steps {
            passed: at,
            seen: VecDeque::new(),
        }
    }

    /// The engines were let go up to `bound`, the events' frontier at
    /// `f` (`None`: the input ended): the capability moves to the last
    /// frontier seen at or below `bound`.
    pub(super) fn reached(
        &mut self,
        cap: &mut Capability<Timestamp>,
        bound: Timestamp,
        f: Option<Timestamp>,
    ) {
        if let Some(f) = f {
            if f > self.passed && self.seen.back().is_none_or(|&seen| f > seen) {
                self.seen.push_back(f);
            }
        }
        self.passed = self.passed.max(bound);
        let mut to = None;
        while let Some(&seen) = self.seen.front().filter(|&&seen| seen <= bound) {
            to = Some(seen);
            self.seen.pop_front();
        }
        if let Some(to) = to.filter(|to| to > cap.time()) {
            cap.downgrade(&to);
        }
    }

    /// A cut at `e` (or the end, `Timestamp::MAX`): what the engines make
    /// from now on goes out at `e` or above.
    pub(super) fn cut(&mut self, cap: &mut Capability<Timestamp>, e: Timestamp) {
        if e > *cap.time() {
            cap.downgrade(&e);
        }
        self.passed = self.passed.max(e);
        while self.seen.front().is_some_and(|&seen| seen <= e) {
            self.seen.pop_front();
        }
    }
}
