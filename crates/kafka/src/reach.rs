//! Whether the brokers answer, as the source and sink of one run see them:
//! a broker that stops answering during a run is said once on the run's
//! report (`cepheid_runtime::Notify`) when it has failed for a moment and
//! a probe (a metadata request) fails too, and said again once when it
//! answers (not once per retry, and not for a connection that a broker
//! closed while idle: the probe answers then).
//!
//! The source and the sink of a run reach the same brokers: they share one
//! [`Reach`] per broker list ([`Reach::of`]), so an outage is said once,
//! whichever of them sees it first (the source on its reader thread, the
//! sink inside a call the run waits for).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use cepheid_runtime::{Level, Notify};
use rdkafka::error::KafkaError as ClientError;

/// How long the brokers fail before a probe may say they are unreachable.
pub(crate) const SAY_AFTER: Duration = Duration::from_secs(1);

/// How long a probe waits for its answer, and how often one is made while
/// the brokers fail.
pub(crate) const PROBE: Duration = Duration::from_secs(1);

/// librdkafka's `reconnect.backoff.max.ms` for every client of the source
/// and sink (unless `--kafka` sets it): each reconnects within this of a
/// broker's return.
pub(crate) const RECONNECT_MAX_MS: &str = "1000";

/// After the brokers were said to answer again, how long they must fail
/// before they are said not to answer once more: the other clients of the
/// run reconnect meanwhile (within [`RECONNECT_MAX_MS`]), and their calls
/// that timed out while they did are not a new outage.
pub(crate) const AFTER_BACK: Duration = Duration::from_secs(5);

/// What the source and sink of one run know of whether the brokers answer.
pub(crate) struct Reach {
    brokers: String,
    /// Has anything failed since the last answer? (the calls of every
    /// record look at this only)
    failing: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Since when nothing answered, and the first failure since.
    since: Option<(Instant, String)>,
    /// Said unreachable: since when it had failed.
    said: Option<Instant>,
    /// When it was last said to answer again.
    back: Option<Instant>,
    /// When the last probe was made.
    probed: Option<Instant>,
    /// How long the calls retry (said with the message).
    limit: Duration,
    notify: Option<Notify>,
}

impl fmt::Debug for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reach")
            .field("brokers", &self.brokers)
            .field("failing", &self.failing)
            .finish_non_exhaustive()
    }
}

impl Reach {
    /// The one of `brokers` in this process (the source's and the sink's
    /// of a run are one), retried for up to `limit`.
    pub(crate) fn of(brokers: &str, limit: Duration) -> Arc<Reach> {
        static ALL: OnceLock<Mutex<HashMap<String, Weak<Reach>>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        all.retain(|_, reach| reach.strong_count() > 0);
        if let Some(reach) = all.get(brokers).and_then(Weak::upgrade) {
            let mut state = reach.lock();
            state.limit = state.limit.max(limit);
            drop(state);
            return reach;
        }
        let reach = Arc::new(Reach {
            brokers: brokers.to_string(),
            failing: AtomicBool::new(false),
            state: Mutex::new(State {
                limit,
                ..State::default()
            }),
        });
        all.insert(brokers.to_string(), Arc::downgrade(&reach));
        reach
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where to say it (the run's report); the first one given is kept.
    pub(crate) fn notify_to(&self, notify: Notify) {
        self.lock().notify.get_or_insert(notify);
    }

    /// A call failed in a way that trying again may mend (`why`): the
    /// brokers may be gone.
    pub(crate) fn failed(&self, why: &ClientError) {
        // (librdkafka's words for the code: "Local: Broker transport
        // failure", "Local: All broker connections are down")
        let why =
            crate::error::code_of(why).map_or_else(|| why.to_string(), |code| code.to_string());
        self.failed_with(&why);
    }

    /// The same, said in `why`'s words.
    pub(crate) fn failed_with(&self, why: &dyn fmt::Display) {
        let mut state = self.lock();
        // (the first failure is said: later ones are mostly the calls'
        // timeouts while waiting for it)
        state
            .since
            .get_or_insert_with(|| (Instant::now(), why.to_string()));
        self.failing.store(true, Ordering::Relaxed);
    }

    /// A broker answered (a record came or was delivered, a call
    /// succeeded): if it was said unreachable, it is said back.
    pub(crate) fn answered(&self) {
        if !self.failing.load(Ordering::Relaxed) {
            return;
        }
        let mut state = self.lock();
        self.failing.store(false, Ordering::Relaxed);
        state.since = None;
        state.probed = None;
        let Some(since) = state.said.take() else {
            return;
        };
        state.back = Some(Instant::now());
        let notify = state.notify.clone();
        drop(state);
        if let Some(notify) = notify {
            notify.say(
                Level::Warning,
                format_args!(
                    "cepheid: Kafka: the broker {} answers again, after {:.1} s",
                    self.brokers,
                    since.elapsed().as_secs_f64()
                ),
            );
        }
    }

    /// Looks at the brokers: while they have failed for [`SAY_AFTER`],
    /// `probe` (a request that answers when they do; made at most every
    /// [`PROBE`]) tells whether they are unreachable, which is said once,
    /// or answer again (said once, when they were said unreachable).
    /// Costs nothing while nothing fails. Records handed out or reported
    /// delivered are no sign either way (they may have been fetched or
    /// acknowledged before the brokers went): only calls that need an
    /// answer now ([`Reach::answered`]) and probes are.
    pub(crate) fn tick(&self, probe: &dyn Fn() -> bool) {
        if !self.failing.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut state = self.lock();
            let Some((since, _)) = &state.since else {
                return;
            };
            let now = Instant::now();
            // (just back: the other clients reconnect first)
            let just_back = state
                .back
                .is_some_and(|back| since.saturating_duration_since(back) < AFTER_BACK);
            let after = if just_back { AFTER_BACK } else { SAY_AFTER };
            if now.duration_since(*since) < after
                || state
                    .probed
                    .is_some_and(|at| now.duration_since(at) < PROBE)
            {
                return;
            }
            state.probed = Some(now);
        }
        // (the probe outside the lock: it waits for the broker)
        if probe() {
            self.answered();
            return;
        }
        let mut state = self.lock();
        if state.said.is_some() {
            return;
        }
        let Some((since, why)) = state.since.clone() else {
            return; // (answered meanwhile)
        };
        state.said = Some(since);
        let notify = state.notify.clone();
        let limit = state.limit;
        drop(state);
        if let Some(notify) = notify {
            notify.say(
                Level::Warning,
                format_args!(
                    "cepheid: Kafka: the broker {} does not answer ({why}); \
                     retrying with backoff, for up to {:.1} s before giving up",
                    self.brokers,
                    limit.as_secs_f64()
                ),
            );
        }
    }

    /// Said unreachable and not back yet?
    #[cfg(test)]
    pub(crate) fn said_unreachable(&self) -> bool {
        self.lock().said.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_runtime::Report;

    /// A report whose notices a test reads.
    fn report() -> (Notify, Arc<Mutex<Vec<String>>>) {
        struct Keep(Arc<Mutex<Vec<String>>>);
        impl Report for Keep {
            fn notice(&mut self, notice: cepheid_runtime::Notice) {
                self.0.lock().unwrap().push(notice.to_string());
            }
        }
        let said = Arc::new(Mutex::new(Vec::new()));
        let (_, notify) = Notify::share(Box::new(Keep(said.clone())));
        (notify, said)
    }

    #[test]
    fn an_outage_is_said_once_when_a_probe_fails_and_once_when_it_answers() {
        let reach = Reach::of("a-broker:1", Duration::from_secs(60));
        let (notify, said) = report();
        reach.notify_to(notify);
        // Nothing failed: no probe.
        reach.tick(&|| panic!("no probe while nothing fails"));
        reach.failed_with(&"Connection refused");
        // Not before it has failed for a moment.
        reach.tick(&|| panic!("no probe before SAY_AFTER"));
        std::thread::sleep(SAY_AFTER);
        for _ in 0..3 {
            reach.failed_with(&"Timed out");
            reach.tick(&|| false);
            std::thread::sleep(PROBE);
        }
        assert!(reach.said_unreachable());
        reach.answered();
        reach.answered();
        let said = said.lock().unwrap().clone();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].starts_with(
                "cepheid: Kafka: the broker a-broker:1 does not answer (Connection refused); \
                 retrying with backoff, for up to 60.0 s before giving up"
            ),
            "{said:?}"
        );
        assert!(
            said[1].starts_with("cepheid: Kafka: the broker a-broker:1 answers again, after "),
            "{said:?}"
        );
    }

    /// Just back (one client answered), another client's calls still
    /// fail while it reconnects: not a new outage unless that lasts
    /// [`AFTER_BACK`].
    #[test]
    fn just_back_the_clients_that_reconnect_are_not_a_new_outage() {
        let reach = Reach::of("d-broker:1", Duration::from_secs(60));
        let (notify, said) = report();
        reach.notify_to(notify);
        reach.failed_with(&"Connection refused");
        std::thread::sleep(SAY_AFTER);
        reach.tick(&|| false);
        reach.answered();
        assert_eq!(said.lock().unwrap().len(), 2);
        // (the producer, still reconnecting: its commit times out)
        reach.failed_with(&"Timed out");
        std::thread::sleep(SAY_AFTER + PROBE);
        reach.tick(&|| false);
        assert!(!reach.said_unreachable(), "{:?}", said.lock().unwrap());
        reach.answered();
        assert_eq!(said.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_failure_the_probe_contradicts_is_not_said() {
        let reach = Reach::of("b-broker:1", Duration::from_secs(60));
        let (notify, said) = report();
        reach.notify_to(notify);
        // (a connection the broker closed while idle: the probe answers)
        reach.failed_with(&"Disconnected");
        std::thread::sleep(SAY_AFTER);
        reach.tick(&|| true);
        assert!(!reach.said_unreachable());
        reach.answered();
        assert!(said.lock().unwrap().is_empty());
        // One per broker list: the source's and the sink's are one.
        let again = Reach::of("b-broker:1", Duration::from_secs(1));
        assert!(Arc::ptr_eq(&reach, &again));
        assert!(!Arc::ptr_eq(
            &reach,
            &Reach::of("c-broker:1", Duration::from_secs(1))
        ));
    }
}
