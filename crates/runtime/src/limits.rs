//! What a run says when its limits on partial matches cut work short
//! ([`LimitNotices`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use cepheid_engine::{MatchRef, Record, Value};

use crate::{Config, Level, Notice};

/// How many keys that reached the limit are named.
const TOLD_KEYS: usize = 10;

/// What a run says when its limits on partial matches cut work short,
/// whatever executes it: the first partial match dropped over
/// [`Config::max_live_runs`], and the first ten keys whose partial matches
/// reached [`Config::max_runs_per_key`], then one line saying that further
/// keys are only counted. One engine and a process's workers share one,
/// so that a run on workers says what one engine says, at most as often,
/// and in the same order (a key is counted and said under one lock: two
/// workers counting apart said the last line before the tenth key).
#[derive(Debug)]
pub struct LimitNotices {
    per_key: usize,
    live: usize,
    capped: AtomicBool,
    keys: Mutex<usize>,
}

impl LimitNotices {
    /// Nothing said yet, with the limits of `config`.
    pub fn new(config: &Config) -> LimitNotices {
        LimitNotices {
            per_key: config.max_runs_per_key,
            live: config.max_live_runs,
            capped: AtomicBool::new(false),
            keys: Mutex::new(0),
        }
    }

    /// A run resumed from a checkpoint: `keys` keys were named already,
    /// and `capped`, whether the live limit dropped a partial match
    /// already (then it is not said again).
    pub fn resumed(mut self, keys: usize, capped: bool) -> LimitNotices {
        *self.keys.get_mut().unwrap_or_else(|e| e.into_inner()) = keys;
        self.capped.store(capped, Ordering::Relaxed);
        self
    }

    /// A partial match the engine dropped (`Sink::on_dropped`). `new_key`
    /// says whether its key reached the per-key limit for the first time
    /// (the caller keeps the keys, and their bound); ignored when the live
    /// limit dropped it. Calls `say` with what is to be said, if anything.
    pub fn dropped(
        &self,
        partial: &MatchRef<'_, Record>,
        new_key: bool,
        mut say: impl FnMut(Notice),
    ) {
        if partial.capped() {
            if !self.capped.swap(true, Ordering::Relaxed) {
                say(Notice::new(
                    Level::Warning,
                    format!(
                        "cepheid: {} partial matches live over all keys and patterns; \
                         keys that would hold more drop their oldest (`Config::max_live_runs`; raise it to keep them)",
                        self.live
                    ),
                ));
            }
            return;
        }
        if !new_key {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        *keys += 1;
        let n = *keys;
        if n <= TOLD_KEYS {
            say(Notice::new(
                Level::Warning,
                format!(
                    "cepheid: pattern `{}`, {}: more than {} partial matches; the oldest are dropped (`Config::max_runs_per_key`; raise it to keep them)",
                    partial.pattern(),
                    describe_key(partial.key()),
                    self.per_key
                ),
            ));
        }
        if n == TOLD_KEYS {
            say(Notice::new(
                Level::Warning,
                "cepheid: further keys over the limit are only counted in the summary",
            ));
        }
    }
}

/// A key as the notices name it.
fn describe_key(key: &[Value]) -> String {
    if key.is_empty() {
        "(the pattern has no `partition by`)".to_string()
    } else {
        let values: Vec<String> = key.iter().map(Value::to_string).collect();
        format!("key [{}]", values.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_described_as_one_engine_names_them() {
        assert_eq!(describe_key(&[]), "(the pattern has no `partition by`)");
        assert_eq!(
            describe_key(&[Value::from("u1"), Value::Int(3)]),
            "key [\"u1\", 3]"
        );
    }

    #[test]
    fn a_resumed_notice_counts_on_from_the_keys_told() {
        let notices = LimitNotices::new(&Config::default()).resumed(TOLD_KEYS - 1, true);
        assert_eq!(*notices.keys.lock().unwrap(), TOLD_KEYS - 1);
        assert!(notices.capped.load(Ordering::Relaxed));
    }
}
