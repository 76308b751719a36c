//! What an executor of the run's matching sees of the runtime
//! (`docs/design/run-seam.md`, "The interface: `cepheid_runtime::executor`",
//! issue 61): the runtime opens, resumes, checkpoints, reads the input,
//! applies and words rule and list changes and ends every run; an
//! executor (`cepheid_dataflow::run::Cluster`, timely workers) only maps
//! events, changes and cut requests to records, pieces of a cut and
//! counts. The module grows as the run's mechanisms move under the seam;
//! today it holds the change of rules or lists an executor is handed, and
//! how its side of a run ended ([`Ended`]), which the runtime makes the
//! run's end of.

use std::sync::Arc;

use cepheid_engine::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::Origin;

pub use crate::reload::for_executor;

/// How an executor's side of a run ended
/// ([`OpenCluster::run`](crate::OpenCluster::run)): what it counted and
/// what failed. The runtime ends the run with it as it ends one engine's
/// (`counts.rs`, `on_workers_ended`): it adds up the workers' counts,
/// says what no reader saw of the patterns' fields (and keeps that in the
/// last cut), flushes the outputs, makes the counts the run's
/// [`Summary`](crate::Summary), says the workers that failed, and
/// chooses the summary's end.
pub struct Ended {
    /// Where it ran (the summary's layout).
    pub layout: crate::Layout,
    /// What each worker of every process counted, as they came, when this
    /// process counts the run (process 0, whose worker 0 ended): the
    /// runtime adds them up ([`Counts::add`](crate::Counts::add)); `None`:
    /// the summary counts nothing
    /// ([`Summary::uncounted`](crate::Summary::uncounted)).
    pub counts: Option<Vec<crate::Counts>>,
    /// Why the input stopped (`None`: it ended, or this process does not
    /// know).
    pub stopped: Option<String>,
    /// The workers that failed (or the run, before its workers could
    /// count anything), in order: each said by the runtime at the end, the
    /// first the run's end unless [`said`](Ended::said).
    pub failed: Vec<crate::Error>,
    /// The first error said while it ran (a cut not written, a worker's
    /// own output): the run's end.
    pub said: Option<crate::Error>,
    /// A source that could not go on from its cut: the part it did not
    /// read is its error, as one engine's refusal to seek is.
    pub source_failed: Option<crate::Error>,
    /// The first error of this process's own readers, as its source gave
    /// it (a Kafka source's: its exit status).
    pub read_failed: Option<crate::Error>,
    /// The warnings about the patterns' fields that no event carried
    /// ([`Config::field_warnings`](crate::Config::field_warnings)), to
    /// which the workers' readers said what they saw: at the end of the
    /// input the runtime says what no reader of any process saw, from the
    /// counts added up.
    pub fields: Option<Arc<crate::source::FieldWarnings>>,
    /// The number of the run's last cut (0: none), which keeps the
    /// warnings said at the end.
    pub last_cut: u64,
}

impl std::fmt::Debug for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ended")
            .field("layout", &self.layout)
            .field("counts", &self.counts)
            .field("stopped", &self.stopped)
            .field("failed", &self.failed)
            .field("said", &self.said)
            .field("source_failed", &self.source_failed)
            .field("read_failed", &self.read_failed)
            .field("last_cut", &self.last_cut)
            .finish_non_exhaustive()
    }
}

impl Ended {
    /// A run on `layout` that counted nothing, and in which nothing failed
    /// (yet).
    pub fn on(layout: crate::Layout) -> Ended {
        Ended {
            layout,
            counts: None,
            stopped: None,
            failed: Vec::new(),
            said: None,
            source_failed: None,
            read_failed: None,
            fields: None,
            last_cut: 0,
        }
    }
}

/// The origin of the one text of a change of lists
/// ([`Change::is_lists`]).
const LISTS: &str = "$lists";

/// The origin of a text that is no rule: a change's audit origin
/// ([`Change::origin`]), beside its rules' texts.
const AUDIT_ORIGIN: &str = "$origin";

/// The origin of the one text of a change the runtime refused
/// ([`Change::refused`]): it travels to make its audit record in order.
const REFUSED: &str = "$refused";

/// A change of rules or lists, made by the runtime (read, compiled and
/// checked once, its refusal said and counted there: `reload.rs`) and
/// handed to an executor, which makes it at event time
/// [`at`](Change::at) on every worker: events at or after `at` see it,
/// those before it the rules before (the switch point of one engine,
/// `docs/dynamic-rules.md`: a `$rules` record read when its source's
/// watermark is `W` applies at `W + 1`). Changes of one time apply in
/// (source, offset) order.
///
/// It carries the texts of the rule set, which a cut keeps (its pending
/// changes) and other processes are sent, and, in the process that read
/// it, the rules compiled from them ([`Change::compiled`]): the workers of
/// that process take those rather than compile the texts again. A change
/// of lists, or one refused, carries one text of its own.
#[derive(Clone, Serialize, Deserialize)]
pub struct Change {
    /// The event time from which the change is in force (set where it
    /// enters event time: its source's watermark + 1).
    pub at: Timestamp,
    /// The input it was read from (its source's number).
    pub source: u32,
    /// Where in its input.
    pub offset: u64,
    /// Where it was read, for messages (`events.jsonl:12 (`$rules`)`).
    pub place: String,
    /// The rule set's texts: (origin, text), loaded in this order.
    pub texts: Vec<(String, String)>,
    /// The rules compiled from `texts` by the runtime, in the process
    /// that read them (neither saved nor sent).
    #[serde(skip)]
    compiled: Option<Arc<cepheid_engine::Rules>>,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("at", &self.at)
            .field("source", &self.source)
            .field("offset", &self.offset)
            .field("place", &self.place)
            .field("texts", &self.texts)
            .finish_non_exhaustive()
    }
}

/// Two changes are the same change when they say the same (the rules
/// compiled from their texts aside).
impl PartialEq for Change {
    fn eq(&self, other: &Change) -> bool {
        (self.at, self.source, self.offset, &self.place, &self.texts)
            == (
                other.at,
                other.source,
                other.offset,
                &other.place,
                &other.texts,
            )
    }
}

impl Eq for Change {}

impl Change {
    /// A change of `texts` at `(at, source, offset)`, read at `place`
    /// (a change kept by a cut, made again).
    pub fn new(
        (at, source, offset): (Timestamp, u32, u64),
        place: String,
        texts: Vec<(String, String)>,
    ) -> Change {
        Change {
            at,
            source,
            offset,
            place,
            texts,
            compiled: None,
        }
    }

    /// The rules `rules` read from `texts` at `offset` of its input
    /// (`place` in messages), asked for by `origin` (its audit record's),
    /// compiled and checked by the runtime; its time and source are set
    /// where it enters event time.
    pub(crate) fn rules(
        offset: u64,
        place: String,
        mut texts: Vec<(String, String)>,
        origin: &Origin,
        rules: cepheid_engine::Rules,
    ) -> Change {
        let json = serde_json::to_string(origin).unwrap_or_default();
        texts.push((AUDIT_ORIGIN.to_string(), json));
        Change {
            compiled: Some(Arc::new(rules)),
            ..Change::new((0, 0, offset), place, texts)
        }
    }

    /// A change of rules the runtime refused for `reason` (said and
    /// counted there), which travels as a change does, changing nothing,
    /// so that its audit record is made at its point of event time
    /// ([`Change::refused`]).
    pub(crate) fn refusal(offset: u64, place: String, origin: &Origin, reason: &str) -> Change {
        let json = serde_json::json!({ "origin": origin, "reason": reason });
        let texts = vec![(REFUSED.to_string(), json.to_string())];
        Change::new((0, 0, offset), place, texts)
    }

    /// A change of lists rather than rules (a watched reference file, a
    /// `$list` record, the run's handle: `docs/lists.md`), at `offset`,
    /// what it makes as the executor's JSON: it travels as a change of
    /// rules does, so that every worker makes it at the same point of
    /// event time, in order with them ([`Change::lists`]).
    pub fn of_lists(offset: u64, place: String, json: String) -> Change {
        Change::new((0, 0, offset), place, vec![(LISTS.to_string(), json)])
    }

    /// The rule set, as the language loads its texts.
    pub fn loaded(&self) -> cepheid_syntax::Loaded {
        let mut loaded = cepheid_syntax::Loaded::default();
        for (origin, text) in &self.texts {
            if origin != AUDIT_ORIGIN {
                loaded.add_str(origin, text);
            }
        }
        loaded
    }

    /// The rules of the change: those the runtime compiled, in the
    /// process that read it; else compiled from its texts (a change of a
    /// cut, or from another process).
    pub fn compiled(&self) -> Result<cepheid_engine::Rules, cepheid_engine::Error> {
        match &self.compiled {
            Some(rules) => Ok(rules.as_ref().clone()),
            None => cepheid_engine::Rules::from_loaded(self.loaded()),
        }
    }

    /// What asked for the change, for its audit record (a change of a cut
    /// of before them: its place).
    pub fn origin(&self) -> Origin {
        let text = (self.texts.iter())
            .find(|(origin, _)| origin == AUDIT_ORIGIN || origin == REFUSED)
            .map(|(origin, text)| match origin.as_str() {
                REFUSED => serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["origin"].clone()).ok()),
                _ => serde_json::from_str(text).ok(),
            });
        text.flatten()
            .unwrap_or_else(|| Origin::of_place(&self.place, None))
    }

    /// Why the runtime refused it, if it did: it changes nothing, it only
    /// makes its audit record.
    pub fn refused(&self) -> Option<String> {
        match &self.texts[..] {
            [(origin, json)] if origin == REFUSED => {
                let value = serde_json::from_str::<serde_json::Value>(json).ok()?;
                Some(value["reason"].as_str()?.to_string())
            }
            _ => None,
        }
    }

    /// Is it a change of reference lists, not of rules? Then what it makes,
    /// as the executor's JSON ([`Change::of_lists`]).
    pub fn lists(&self) -> Option<&str> {
        match &self.texts[..] {
            [(origin, json)] if origin == LISTS => Some(json),
            _ => None,
        }
    }

    /// Is it a change of reference lists, not of rules?
    pub fn is_lists(&self) -> bool {
        self.lists().is_some()
    }

    /// The order of changes: (time, source, offset).
    pub fn order(&self) -> (Timestamp, u32, u64) {
        (self.at, self.source, self.offset)
    }
}
