//! The answers of a run whose [`Source`](crate::Source) gives requests
//! (`cepheid serve`'s log, issue 63): each event record that is a request
//! ([`Source::request`](crate::Source::request)) is taken with
//! [`Engine::request`], and the answer goes to the run's [`Answers`]
//! ([`Runtime::answering`](crate::Runtime::answering)), on the run's
//! thread, in the source's order, right after the engine took it: while
//! the run goes on from a checkpoint (replaying what a service logged
//! after it) as when it runs live, so a service rebuilds what it
//! answered.

use cepheid_engine::engine::{Answer, Request};
use cepheid_engine::{Engine, Record};

/// Where a run's answers go (see the module docs).
pub trait Answers: Send {
    /// The engine is about to take `request`, on the run's thread, in the
    /// source's order: the last word on it. `cepheid serve` marks here a
    /// request its client was answered degraded for while it waited (its
    /// note says so, so that the engine remembers that answer).
    fn taking(&mut self, request: &mut Request) {
        let _ = request;
    }

    /// The engine took `request` (or did not: a repeat, an unknown scene)
    /// and answered `answer`. A request's decisions are also written to
    /// the run's decisions output ([`Config::decisions`](crate::Config::decisions))
    /// as any event's (a repeat's are not: they were written when it was
    /// first taken).
    fn answer(&mut self, request: &Request, answer: &Answer);

    /// The run's engine before the run reads anything: resumed from a
    /// checkpoint, it remembers the requests taken before the checkpoint
    /// ([`Engine::remembered_requests`]). On the run's thread.
    fn start(&mut self, engine: &Engine<Record>) {
        let _ = engine;
    }
}
