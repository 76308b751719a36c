//! The circuit breaker and the retry budget (`docs/clients.md`).

use std::fmt;
use std::time::Duration;

use crate::options::{BreakerOptions, RetryBudget};

/// The breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Requests go out; failures in a row are counted.
    Closed,
    /// No request goes out until `open_ms` has passed.
    Open,
    /// The next attempt goes out as a trial; its answer closes the breaker
    /// or opens it again.
    HalfOpen,
}

impl BreakerState {
    /// The contract's name: `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of the breaker's state, given to the listener
/// ([`crate::Client::on_breaker`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// The client's clock when it changed.
    pub at: Duration,
    /// The failure that caused it (`unavailable: ...`), if one did.
    pub cause: Option<String>,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the circuit breaker went from {} to {} at {} ms",
            self.from,
            self.to,
            self.at.as_millis()
        )?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause})")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { since: Duration },
    HalfOpen { trial: bool },
}

/// Whether an attempt may go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// As any attempt (closed).
    Normal,
    /// As the half-open breaker's trial.
    Trial,
    /// Refused: no request.
    Refused,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    options: BreakerOptions,
    inner: Inner,
}

impl Breaker {
    pub(crate) fn new(options: BreakerOptions) -> Breaker {
        Breaker {
            options,
            inner: Inner::Closed { failures: 0 },
        }
    }

    fn open_for(&self) -> Duration {
        Duration::from_millis(self.options.open_ms)
    }

    /// The state as of `now` (open for `open_ms`, then half-open).
    pub(crate) fn state(&self, now: Duration) -> BreakerState {
        match self.inner {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { since } if now >= since + self.open_for() => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks for an attempt at `now`; the transitions it makes go to `out`.
    pub(crate) fn admit(&mut self, now: Duration, out: &mut Vec<Transition>) -> Admission {
        match self.inner {
            Inner::Closed { .. } => Admission::Normal,
            Inner::Open { since } if now >= since + self.open_for() => {
                self.inner = Inner::HalfOpen { trial: true };
                out.push(Transition {
                    from: BreakerState::Open,
                    to: BreakerState::HalfOpen,
                    at: now,
                    cause: None,
                });
                Admission::Trial
            }
            Inner::Open { .. } | Inner::HalfOpen { trial: true } => Admission::Refused,
            Inner::HalfOpen { trial: false } => {
                self.inner = Inner::HalfOpen { trial: true };
                Admission::Trial
            }
        }
    }

    /// An attempt's end: `Ok(())` a success, `Err(cause)` a failure.
    pub(crate) fn record(
        &mut self,
        admission: Admission,
        result: Result<(), &str>,
        now: Duration,
        out: &mut Vec<Transition>,
    ) {
        let open = |cause: &str| Inner::Open { since: now }.with_cause(cause);
        match (self.inner, admission, result) {
            (Inner::Closed { .. }, _, Ok(())) => self.inner = Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, _, Err(cause)) => {
                let failures = failures + 1;
                if failures >= self.options.failure_threshold {
                    let (inner, cause) = open(cause);
                    self.inner = inner;
                    out.push(Transition {
                        from: BreakerState::Closed,
                        to: BreakerState::Open,
                        at: now,
                        cause,
                    });
                } else {
                    self.inner = Inner::Closed { failures };
                }
            }
            (Inner::HalfOpen { .. }, Admission::Trial, Ok(())) => {
                self.inner = Inner::Closed { failures: 0 };
                out.push(Transition {
                    from: BreakerState::HalfOpen,
                    to: BreakerState::Closed,
                    at: now,
                    cause: None,
                });
            }
            (Inner::HalfOpen { .. }, Admission::Trial, Err(cause)) => {
                let (inner, cause) = open(cause);
                self.inner = inner;
                out.push(Transition {
                    from: BreakerState::HalfOpen,
                    to: BreakerState::Open,
                    at: now,
                    cause,
                });
            }
            // An attempt let out while closed that ends after another
            // opened the breaker: the breaker's course is the trial's.
            _ => {}
        }
    }

    /// The trial was given up (its call dropped) without an answer: the
    /// breaker opens again, so that another trial may go out later.
    pub(crate) fn abandon(
        &mut self,
        admission: Admission,
        now: Duration,
        out: &mut Vec<Transition>,
    ) {
        if let (Inner::HalfOpen { trial: true }, Admission::Trial) = (self.inner, admission) {
            self.inner = Inner::Open { since: now };
            out.push(Transition {
                from: BreakerState::HalfOpen,
                to: BreakerState::Open,
                at: now,
                cause: Some("the trial's call was given up before its answer".into()),
            });
        }
    }
}

impl Inner {
    fn with_cause(self, cause: &str) -> (Inner, Option<String>) {
        (self, Some(cause.to_string()))
    }
}

/// The retry budget in thousandths of a token (no drift from adding
/// `token_ratio` many times).
#[derive(Debug)]
pub(crate) struct Budget {
    max: i64,
    ratio: i64,
    tokens: i64,
}

impl Budget {
    pub(crate) fn new(options: RetryBudget) -> Budget {
        let max = i64::from(options.max_tokens) * 1000;
        let ratio = (options.token_ratio.max(0.0) * 1000.0)
            .round()
            .min(max as f64) as i64;
        Budget {
            max,
            ratio,
            tokens: max,
        }
    }

    pub(crate) fn failed(&mut self) {
        self.tokens = (self.tokens - 1000).max(0);
    }

    pub(crate) fn succeeded(&mut self) {
        self.tokens = (self.tokens + self.ratio).min(self.max);
    }

    /// A retry is allowed while more than half of `max_tokens` remain.
    pub(crate) fn allows_retry(&self) -> bool {
        self.tokens * 2 > self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_without_drift() {
        let mut b = Budget::new(RetryBudget {
            max_tokens: 10,
            token_ratio: 0.1,
        });
        for _ in 0..5 {
            b.failed();
        }
        assert!(!b.allows_retry(), "5 of 10 left: not more than half");
        for _ in 0..10 {
            b.succeeded();
        }
        assert!(b.allows_retry(), "6 of 10");
        for _ in 0..100 {
            b.failed();
        }
        assert_eq!(b.tokens, 0);
    }
}
