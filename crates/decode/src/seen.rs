//! [`FieldsSeen`]: which of the fields the patterns read the decoded
//! events have carried, for the warning about fields that never occur
//! (`cepheid_runtime::FieldWatch`).

use std::collections::BTreeSet;

use crate::csv::CsvRows;
use cepheid_core::event::FieldPath;
use cepheid_core::json::{JsonPlan, Scanned};
use cepheid_core::record::Record;

/// The most names of other keys kept for suggestions.
const MAX_NAMES: usize = 1_000;

/// How deep the names of nested keys are kept (`a.b.c`).
const NAME_DEPTH: usize = 4;

/// What a [`Decoder`](crate::Decoder) that watches fields
/// ([`Decoder::watch_fields`](crate::Decoder::watch_fields)) has seen:
/// the events it decoded, which fields of its table occurred at least
/// once, and, during the first events only (the sample) and only while
/// some field has not occurred, the names of every key that occurred
/// (nested ones as `a.b`, at most 1,000 names), for "did you mean": they
/// are wanted only for a field that is missing. (A field that a change
/// of rules adds after every field had occurred gets no suggestion.)
///
/// A JSON event carries a field when the field's whole path is in it
/// (`user.id`: a key `user` holding an object with a key `id`), with any
/// value, `null` included; a CSV event when the field's cell in the row
/// is not empty. Recording costs the events nothing once every field has
/// occurred; before that, one test per field not seen yet. `Clone` to
/// hand it to another thread, serde to another process (a run on several
/// processes adds up what its readers saw); [`merge`](FieldsSeen::merge)
/// adds up what several decoders saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldsSeen {
    /// The table's paths (by field id) when last looked at.
    paths: Vec<FieldPath>,
    /// By field id: has it occurred?
    seen: Vec<bool>,
    /// Fields not seen yet.
    unseen: usize,
    /// Events decoded.
    events: u64,
    /// Events whose key names are kept.
    sample: u64,
    /// The key names of the sample's events.
    names: BTreeSet<String>,
}

impl FieldsSeen {
    /// Nothing seen yet; the names of keys are kept during the first
    /// `sample` events.
    pub fn new(sample: u64) -> FieldsSeen {
        FieldsSeen {
            sample,
            ..FieldsSeen::default()
        }
    }

    /// Events decoded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Has the field `path` occurred in some event? (False for a field the
    /// decoder does not read.)
    pub fn occurred(&self, path: &FieldPath) -> bool {
        self.paths
            .iter()
            .position(|p| p == path)
            .is_some_and(|i| self.seen[i])
    }

    /// The fields of the decoder's table that no event carried, by field
    /// id.
    pub fn never_occurred(&self) -> impl Iterator<Item = &FieldPath> + '_ {
        self.paths
            .iter()
            .zip(&self.seen)
            .filter(|(_, seen)| !**seen)
            .map(|(p, _)| p)
    }

    /// The names of the keys the sample's events had (nested ones as
    /// `a.b`), sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.names.iter().map(String::as_str)
    }

    /// Adds what `other` (another decoder's) saw: events, fields that
    /// occurred, names.
    pub fn merge(&mut self, other: &FieldsSeen) {
        self.events += other.events;
        self.sample = self.sample.max(other.sample);
        for (path, &seen) in other.paths.iter().zip(&other.seen) {
            match self.paths.iter().position(|p| p == path) {
                Some(i) => {
                    if seen && !self.seen[i] {
                        self.seen[i] = true;
                        self.unseen -= 1;
                    }
                }
                None => {
                    self.paths.push(path.clone());
                    self.seen.push(seen);
                    self.unseen += usize::from(!seen);
                }
            }
        }
        for name in &other.names {
            if self.names.len() >= MAX_NAMES {
                break;
            }
            self.names.insert(name.clone());
        }
    }

    /// The decoder's table is now `paths` (fields added at the end).
    #[cold]
    pub(crate) fn grow(&mut self, paths: &[FieldPath]) {
        for path in &paths[self.paths.len().min(paths.len())..] {
            self.paths.push(path.clone());
            self.seen.push(false);
            self.unseen += 1;
        }
    }

    /// Is the event being decoded one of the sample's?
    #[inline]
    fn in_sample(&self) -> bool {
        self.events <= self.sample
    }

    fn add_name(&mut self, name: &str) {
        if self.names.len() < MAX_NAMES && !self.names.contains(name) {
            self.names.insert(name.to_string());
        }
    }

    /// One JSON event, scanned by `plan`: once every field has occurred
    /// and the sample is over, a count.
    #[inline(always)]
    pub(crate) fn json(&mut self, plan: &JsonPlan, scanned: &Scanned, text: &str) {
        self.events += 1;
        if self.unseen > 0 {
            self.json_first(plan, scanned, text);
        }
    }

    /// [`json`](Self::json) while some field has not occurred.
    #[inline(never)]
    fn json_first(&mut self, plan: &JsonPlan, scanned: &Scanned, text: &str) {
        for (i, seen) in self.seen.iter_mut().enumerate() {
            if !*seen && plan.carries(scanned, text, i) {
                *seen = true;
                self.unseen -= 1;
            }
        }
        if self.unseen > 0 && self.in_sample() {
            let mut names = Vec::new();
            cepheid_core::json::object_paths(text, NAME_DEPTH, &mut |n| names.push(n.to_string()));
            for n in names {
                self.add_name(&n);
            }
        }
    }

    /// One CSV event.
    #[inline(always)]
    pub(crate) fn csv(&mut self, rows: &CsvRows, record: &Record) {
        self.events += 1;
        if self.unseen > 0 {
            self.csv_first(rows, record);
        }
    }

    /// [`csv`](Self::csv) while some field has not occurred.
    #[inline(never)]
    fn csv_first(&mut self, rows: &CsvRows, record: &Record) {
        for (i, seen) in self.seen.iter_mut().enumerate() {
            if !*seen && record.values().get(i).is_some_and(|v| !v.is_null()) {
                *seen = true;
                self.unseen -= 1;
            }
        }
        if self.unseen > 0 && self.in_sample() {
            for name in rows.header_names() {
                self.add_name(name);
            }
        }
    }
}
