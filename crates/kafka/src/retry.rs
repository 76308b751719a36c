//! Retries with backoff, up to a limit: a broker that does not answer is
//! waited for, never endlessly and never silently (the caller reports
//! [`KafkaError::Unreachable`] with how long it waited).

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};

use crate::error::{retriable, KafkaError};
use crate::reach::Reach;

/// How long one call of a watched operation ([`Retry::run_watched`])
/// waits before the brokers are looked at again.
pub(crate) const STEP: Duration = Duration::from_secs(1);

/// What a watched operation reports to: the brokers' [`Reach`], and a
/// request that answers when they do (a metadata request).
pub(crate) struct Watch<'a> {
    pub(crate) reach: &'a Reach,
    pub(crate) probe: &'a dyn Fn() -> bool,
    /// Does the call's success show that a broker answered? (a flush with
    /// nothing to deliver, an abort, succeed without one)
    pub(crate) answers: bool,
}

/// How long and how often an operation the broker does not answer is
/// tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Tried until this much time has passed, then
    /// [`KafkaError::Unreachable`]. Also bounds a record's delivery
    /// (`message.timeout.ms`) and each blocking call of librdkafka.
    pub limit: Duration,
    /// The first pause between two tries; it doubles each time.
    pub first_backoff: Duration,
    /// The longest pause.
    pub max_backoff: Duration,
}

impl Default for Retry {
    /// 60 s, pauses from 100 ms doubling up to 5 s.
    fn default() -> Retry {
        Retry {
            limit: Duration::from_secs(60),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl Retry {
    /// The timeout of one blocking call: the limit, at least 1 s.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.limit.max(Duration::from_secs(1))
    }

    /// Runs `f` (given the time left) until it succeeds, fails with an
    /// error that is not retriable (`fatal` makes the error value), or the
    /// limit passes (`Unreachable`).
    pub(crate) fn run<T>(
        &self,
        operation: &'static str,
        mut f: impl FnMut(Duration) -> Result<T, ClientError>,
        fatal: impl Fn(ClientError) -> KafkaError,
    ) -> Result<T, KafkaError> {
        let start = Instant::now();
        let mut backoff = self.first_backoff;
        loop {
            let left = self.limit.saturating_sub(start.elapsed());
            match f(left.max(Duration::from_millis(100))) {
                Ok(value) => return Ok(value),
                Err(error) if retriable(&error) => {
                    if start.elapsed() + backoff >= self.limit {
                        return Err(KafkaError::Unreachable {
                            operation,
                            waited: start.elapsed(),
                            source: error,
                        });
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(self.max_backoff);
                }
                Err(error) => return Err(fatal(error)),
            }
        }
    }

    /// As [`Retry::run`], during a run: `f` is given at most [`STEP`] at a
    /// time (librdkafka's calls resume where they were), so that between
    /// two calls the brokers are looked at ([`Reach::tick`]): a broker
    /// that stops answering is said when it does, not when the limit
    /// passes, and said again when it answers. A call that only ran out
    /// of its step is called again at once; after another retriable error
    /// it waits its backoff.
    pub(crate) fn run_watched<T>(
        &self,
        operation: &'static str,
        watch: &Watch<'_>,
        mut f: impl FnMut(Duration) -> Result<T, ClientError>,
        fatal: impl Fn(ClientError) -> KafkaError,
    ) -> Result<T, KafkaError> {
        let start = Instant::now();
        let mut backoff = self.first_backoff;
        loop {
            let left = self.limit.saturating_sub(start.elapsed());
            match f(left.clamp(Duration::from_millis(100), STEP)) {
                Ok(value) => {
                    if watch.answers {
                        watch.reach.answered();
                    }
                    return Ok(value);
                }
                Err(error) if retriable(&error) => {
                    watch.reach.failed(&error);
                    watch.reach.tick(watch.probe);
                    let timed_out =
                        crate::error::code_of(&error) == Some(RDKafkaErrorCode::OperationTimedOut);
                    let pause = if timed_out { Duration::ZERO } else { backoff };
                    if start.elapsed() + pause >= self.limit {
                        return Err(KafkaError::Unreachable {
                            operation,
                            waited: start.elapsed(),
                            source: error,
                        });
                    }
                    if !timed_out {
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(self.max_backoff);
                    }
                }
                Err(error) => return Err(fatal(error)),
            }
        }
    }
}
