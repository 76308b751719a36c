//! A CEP operator's part in cuts: when a worker takes one (a cut at
//! `f` once its input frontier passed `f`; the last cut as its input
//! ends or stops), and what it saves of its engines, stash and ends.

use std::sync::Arc;

use timely::ExchangeData;

use super::{Collect, Worker};
use crate::cut::{self, SavedPiece, WorkerState};
use crate::event::Event;
use crate::primitives::Timestamp;

impl<E: Event + Clone + ExchangeData> Worker<E> {
    /// The epoch of a cut to take now that the input frontier is at `at`
    /// (`None`: the input ended, no cut).
    pub(super) fn cut_due(
        &mut self,
        at: Option<Timestamp>,
        passed: Timestamp,
        writes_known: Option<Timestamp>,
    ) -> Option<Timestamp> {
        let cut = self.cut.as_ref()?;
        let e = cut.cuts.requested()?;
        if e <= self.taken {
            return None;
        }
        if self.stopped_at().is_some() {
            // A source was stopped: its end is not a place to go on from,
            // and the engines wait for the others' (the last cut, taken
            // as the input ends, is the one to resume from).
            cut.fail(e);
            cut.taken(e);
            self.passed_cut(e);
            return None;
        }
        if passed >= e {
            // Passed `e` before the request: no cut at `e` here.
            cut.fail(e);
            cut.taken(e);
            self.passed_cut(e);
            return None;
        }
        // (and every write to be made where the engines stop for it
        // known: the cut keeps them)
        let reach = self.clocks.limit(e, self.taken);
        (at? >= e && writes_known.is_none_or(|w| w > reach)).then_some(e)
    }

    /// The worker is done with the cut at `e` (taken or given up): the
    /// quiet sources' moves up to it no longer hold its engines back.
    fn passed_cut(&mut self, e: Timestamp) {
        self.taken = e;
        self.clocks.taken(e);
    }

    /// Saves the worker's state at `e` (its engines are at `e - 1`).
    pub(super) fn take_cut(&mut self, e: Timestamp) {
        self.passed_cut(e);
        self.save(e, false);
        if let Some(cut) = &self.cut {
            cut.taken(e);
        }
    }

    /// The input ended: when a source was stopped (a live source, by a
    /// signal), or always with [`Cuts::at_end`](crate::Cuts::at_end),
    /// saves the worker's state as it is now, after
    /// [`finish`](Worker::finish), at an epoch above every cut before it
    /// and the same on every worker (each has the same ends, and was
    /// restored from the same cut): the largest source watermark + 2
    /// (above every source's capability: no frontier passed it), or the
    /// restored epoch + 1 when that is larger (no event since). Every stashed event was sent
    /// below it; the stopped source's end is not kept: restored, it reads
    /// on.
    pub(super) fn take_last_cut(&mut self) {
        let Some(cut) = &self.cut else {
            return;
        };
        if !self.ends.iter().any(|(_, end)| end.stopped) && !cut.cuts.cuts_at_end() {
            return;
        }
        // Above every source's capability (each is its watermark + 1).
        let frontier = (self.ends.iter())
            .filter_map(|(_, end)| end.watermark)
            .max()
            .map_or(Timestamp::MIN, |w| w.saturating_add(1));
        // (and above every capability a quiet source moved to)
        let jumped = self.clocks.cap().unwrap_or(Timestamp::MIN);
        let e = frontier
            .saturating_add(1)
            .max(self.restored_at.saturating_add(1))
            .max(jumped.saturating_add(1));
        cut.cuts.took_last(e, false);
        self.taken = e;
        self.save(e, true);
    }

    /// Does the worker take a cut before the end of its input
    /// ([`Cuts::before_end`](crate::Cuts::before_end): no source was
    /// stopped)?
    pub(super) fn before_end(&self) -> bool {
        let Some(cut) = &self.cut else {
            return false;
        };
        cut.cuts.cuts_before_end() && !self.ends.iter().any(|(_, end)| end.stopped)
    }

    /// Where a cut before the end ([`take_end_cut`](Worker::take_end_cut))
    /// has the engines, when one is still to be taken.
    pub(super) fn end_cut_point(&self) -> Option<Timestamp> {
        if !self.before_end() {
            return None;
        }
        let largest = (self.ends.iter())
            .filter_map(|(_, end)| end.watermark)
            .max();
        let w = largest.and_then(|w| w.checked_add(1))?;
        let jumped = self.clocks.cap().unwrap_or(Timestamp::MIN);
        let e = w.max(jumped.saturating_add(1));
        (e > self.taken && e != Timestamp::MAX).then_some(w)
    }

    /// Every source ended, none stopped (see
    /// [`Cuts::before_end`](crate::Cuts::before_end)): moves the engines
    /// to the largest source watermark `W` (the same on every worker: each
    /// has the same ends) and saves the worker's state at `W + 1`, every
    /// event still waiting and every source's end with it, before
    /// [`finish`](Worker::finish). No cut when no source had a watermark,
    /// or when it would not be above the last one (nothing moved since:
    /// that one is as good).
    pub(super) fn take_end_cut<S: Collect<E>>(
        &mut self,
        sink: &mut S,
        give: &mut dyn FnMut(&mut Vec<S::Item>),
    ) {
        let Some(cut) = &self.cut else {
            return;
        };
        let largest = (self.ends.iter())
            .filter_map(|(_, end)| end.watermark)
            .max();
        let Some(w) = largest.and_then(|w| w.checked_add(1)) else {
            return;
        };
        // (above every capability a quiet source moved to, its engines
        // at the largest watermark)
        let jumped = self.clocks.cap().unwrap_or(Timestamp::MIN);
        let e = w.max(jumped.saturating_add(1));
        if e <= self.taken || e == Timestamp::MAX {
            return;
        }
        let cuts = Arc::clone(&cut.cuts);
        if w > self.released {
            self.advance(w, sink);
            self.emit(sink, give);
        }
        cuts.took_last(e, true);
        self.taken = e;
        self.save_at_end(e);
    }

    /// Saves the worker's state at `e`: at a cut, the stashed events sent
    /// below `e` and the ends sent below it; `last`, every stashed event
    /// and the ends of the sources that were not stopped.
    fn save(&mut self, e: Timestamp, last: bool) {
        self.save_sources(e, last, false);
    }

    /// [`save`](Worker::save) of the last cut, taken before the end
    /// ([`take_end_cut`](Worker::take_end_cut)): each source at its end
    /// (one may have recorded a request at `e` before it read its last
    /// lines, which are in the stash).
    fn save_at_end(&mut self, e: Timestamp) {
        self.save_sources(e, true, true);
    }

    fn save_sources(&mut self, e: Timestamp, last: bool, at_end: bool) {
        let Some(cut) = &self.cut else {
            return;
        };
        let Some((sources, read)) = cut.sources_at(e, at_end) else {
            return;
        };
        let state = (|| {
            let mut pieces = Vec::with_capacity(self.pieces.len());
            for piece in &self.pieces {
                let mut bytes = Vec::new();
                piece.engine.0.snapshot(&mut bytes)?;
                pieces.push(SavedPiece {
                    group: piece.group,
                    from: piece.from,
                    to: piece.to,
                    engine: bytes,
                });
            }
            // (at the last cut every event was sent below it: those sent
            // at the largest source capability too, for the cut before
            // the end)
            let below = if last { Timestamp::MAX } else { e };
            let mut stash = self.stash.sent_below(below);
            // (what the router holds that was sent below the cut)
            let held = self.held.borrow();
            let batches = held.iter().filter(|batch| batch.sent < below);
            stash.extend(batches.flat_map(|batch| batch.events.iter().map(|s| (cut::HELD, s))));
            (WorkerState {
                epoch: e,
                sources,
                // Those sent at `e` or above come again; a stopped
                // source reads on.
                ends: (self.ends.iter())
                    .filter(|(sent, end)| if last { !end.stopped } else { *sent < e })
                    .map(|(_, end)| *end)
                    .collect(),
                pieces,
                stash: cut::encode_stash(&stash)?,
                rules: Some(self.changes.saved(e, read)),
            })
            .piece()
            .map(|mut piece| {
                if !self.changes.files.is_empty() {
                    cepheid_runtime::lists::put_lists(&mut piece, &self.changes.files);
                }
                piece
            })
        })();
        match state {
            Ok(piece) => cut.save(e, piece),
            Err(_) => cut.fail(e),
        }
    }
}
