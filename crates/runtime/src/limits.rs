//! What a run says when its limits cut work short ([`LimitNotices`]): on
//! partial matches, and on the entries of lists and indicators (with the
//! values these leave out).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use cepheid_engine::engine::LeftOut;
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
///
/// And, for lists and indicators ([`LimitNotices::left_out`]), the first
/// add each list refused at [`Config::max_list_entries`] and the first
/// value it refused, the first event each indicator left out at
/// [`Config::max_indicator_entries`] and the first value that was not a
/// number: once each per run (issue 60, item 3), the rest only counted
/// in the [`Summary`](crate::Summary).
#[derive(Debug)]
pub struct LimitNotices {
    per_key: usize,
    live: usize,
    capped: AtomicBool,
    keys: Mutex<usize>,
    list_entries: usize,
    indicator_entries: usize,
    /// The lists and indicators said to have left something out, by what
    /// ([`Cut`]) and name.
    told: Mutex<HashSet<(Cut, String)>>,
}

/// What a list or an indicator left out ([`LimitNotices::left_out`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Cut {
    /// A list's add, at its limit.
    ListLimit,
    /// A list's value, no entry of its kind.
    ListValue,
    /// An indicator's event, at the limit.
    IndicatorLimit,
    /// An indicator's value, not a number.
    IndicatorValue,
}

/// Where the limits and values of lists and indicators are documented.
const LEFT_OUT_DOCS: &str = "docs/semantics.md, \"Lists and indicators\"";

impl LimitNotices {
    /// Nothing said yet, with the limits of `config`.
    pub fn new(config: &Config) -> LimitNotices {
        LimitNotices {
            per_key: config.max_runs_per_key,
            live: config.max_live_runs,
            capped: AtomicBool::new(false),
            keys: Mutex::new(0),
            list_entries: config.max_list_entries,
            indicator_entries: config.max_indicator_entries,
            told: Mutex::new(HashSet::new()),
        }
    }

    /// A run resumed from a checkpoint whose engines had `left_out` so
    /// far: what it counts was said by the run that counted it (not said
    /// again; a list or indicator that leaves out something of another
    /// kind is).
    pub fn resumed_left_out(self, left_out: &LeftOut) -> LimitNotices {
        self.told_left_out(left_out);
        self
    }

    /// Takes what `left_out` holds as said (by the run that counted it,
    /// before the checkpoint a run resumed from): a worker's engines'
    /// when it starts.
    pub fn told_left_out(&self, left_out: &LeftOut) {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        for (name, cut) in cuts(left_out) {
            told.insert((cut, name.to_string()));
        }
    }

    /// What the lists and indicators left out so far (`left_out`: an
    /// engine's, or a worker's engines' gathered): calls `say` with the
    /// first of each kind for each list and indicator, once per run.
    pub fn left_out(&self, left_out: &LeftOut, mut say: impl FnMut(Notice)) {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        for (name, cut) in cuts(left_out) {
            if told.contains(&(cut, name.to_string())) {
                continue;
            }
            told.insert((cut, name.to_string()));
            let what = match cut {
                Cut::ListLimit => format!(
                    "list `{name}`: an add refused: the list holds its limit of {} entries (`Config::max_list_entries`; raise it to keep them)",
                    self.list_entries
                ),
                Cut::ListValue => format!(
                    "list `{name}`: a value refused: no entry of the list's kind (null, a list, an object; for `cidr`, no address or network)"
                ),
                Cut::IndicatorLimit => format!(
                    "indicator `{name}`: an event left out: the indicators hold their limit of {} window entries (`Config::max_indicator_entries`; raise it to keep them); the event is matched all the same",
                    self.indicator_entries
                ),
                Cut::IndicatorValue => format!(
                    "indicator `{name}`: a value that is not a number left out; the event is matched all the same"
                ),
            };
            say(Notice::new(
                Level::Warning,
                format!("cepheid: {what}; further ones are only counted in the summary ({LEFT_OUT_DOCS})"),
            ));
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

/// Each (name, kind) of what `left_out` holds, lists first.
fn cuts(left_out: &LeftOut) -> Vec<(&str, Cut)> {
    let mut cuts = Vec::new();
    let kinds = [
        (&left_out.lists, Cut::ListLimit, Cut::ListValue),
        (
            &left_out.indicators,
            Cut::IndicatorLimit,
            Cut::IndicatorValue,
        ),
    ];
    for (map, limit, value) in kinds {
        for (name, c) in map {
            if c.limit > 0 {
                cuts.push((name.as_str(), limit));
            }
            if c.value > 0 {
                cuts.push((name.as_str(), value));
            }
        }
    }
    cuts
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
