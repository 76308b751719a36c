//! The labels of `backtest --labels` (the cases known to be real): read
//! from their file, and placed by key and time ([`Index`]) so that the
//! labels each alert catches are found in O(log n), not by looking at
//! every label (issue 60, item 9).

use std::collections::HashSet;
use std::path::Path;

use super::outcomes::EventLabel;
use crate::{Error, ErrorKind};

/// A labelled case: its key, and its time.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Label {
    pub(super) key: serde_json::Value,
    pub(super) ts: i64,
    /// Its line in the labels file, for messages.
    pub(super) line: usize,
}

/// The labels of `path`: JSON lines, or CSV when its name ends in `.csv`:
/// the cases (a key and a time) and, in JSON lines, the labels by event
/// (`{"event": ID, "label": "fraud" | "legit"}`, an event's id or input
/// position as its decisions name it). A line that is not a label is said
/// with its place and left out.
pub(super) fn read(
    path: &Path,
    tell: &crate::Tell,
) -> Result<(Vec<Label>, Vec<EventLabel>), Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let time = |value: &serde_json::Value| match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => {
            (s.parse::<i64>().ok()).or_else(|| cepheid_decode::parse_rfc3339(s).ok())
        }
        _ => None,
    };
    let mut labels = Vec::new();
    let mut by_event = Vec::new();
    let mut seen_events: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    let csv = path.extension().is_some_and(|x| x == "csv");
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed = if csv {
            let mut cells = trimmed.splitn(2, ',');
            let (key, ts) = (cells.next().unwrap_or(""), cells.next().unwrap_or(""));
            if line_no == 1 && key == "key" {
                continue;
            }
            time(&serde_json::Value::String(ts.trim().to_string()))
                .map(|ts| (serde_json::Value::String(key.trim().to_string()), ts))
        } else {
            let label = serde_json::from_str::<serde_json::Value>(trimmed).ok();
            if let Some(event) = label.as_ref().and_then(event_label) {
                // (an event labelled twice: the later label counts, said)
                let event = EventLabel {
                    line: line_no,
                    ..event
                };
                match seen_events.get(&event.event) {
                    Some(&at) => {
                        let first: &EventLabel = &by_event[at];
                        tell!(
                            tell,
                            "cepheid: {}:{line_no}: event {} was labelled at line {} already; the label of line {line_no} is used",
                            path.display(),
                            event.event,
                            first.line
                        );
                        by_event[at] = event;
                    }
                    None => {
                        seen_events.insert(event.event.clone(), by_event.len());
                        by_event.push(event);
                    }
                }
                continue;
            }
            label.and_then(|l| Some((l.get("key")?.clone(), time(&l["ts"])?)))
        };
        match parsed {
            Some((key, ts)) => labels.push(Label {
                key,
                ts,
                line: line_no,
            }),
            None => tell!(
                tell,
                "cepheid: {}:{line_no}: not a label (`{{\"key\": K, \"ts\": T}}`, `{{\"event\": ID, \"label\": \"fraud\" | \"legit\"}}`, or `key,ts` in CSV); the line is left out",
                path.display()
            ),
        }
    }
    Ok((labels, by_event))
}

/// A label by event, `{"event": ID, "label": "fraud" | "legit"}` (its
/// line set by the caller); `None`: not one.
fn event_label(line: &serde_json::Value) -> Option<EventLabel> {
    let event = match line.get("event")? {
        serde_json::Value::Null | serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
            return None
        }
        id => super::outcomes::id_text(id),
    };
    let fraud = match line.get("label")?.as_str()? {
        "fraud" => true,
        "legit" => false,
        _ => return None,
    };
    Some(EventLabel {
        event,
        fraud,
        line: 0,
    })
}

/// The labels placed for matching (`--labels`): each under the keys it
/// names, sorted by time within each, so that the labels an alert
/// catches are found by two binary searches among its key's, and no
/// alert looks at another key's labels (issue 60, item 9: alerts ×
/// labels before). An alert catches a label when its key is the label's
/// ([`same_key`]) and its span widened by the tolerance holds the
/// label's time.
pub(super) struct Index {
    /// Each match key's labels: (time, the label's place), by time.
    by_key: Vec<Vec<(i64, usize)>>,
    /// The match keys' places in `by_key`.
    places: hashbrown::HashMap<String, u32>,
    /// Per alert key (its place among the records' keys): the match keys
    /// it has labels under, found once.
    of_key: Vec<Option<Vec<u32>>>,
    /// Label entries visited, binary searches included (its tests bound
    /// the work by it).
    visits: u64,
}

/// The ranges of labels one pattern's alerts caught: (match key, first,
/// past the last) in `Index::by_key`.
pub(super) type Caught = Vec<(u32, usize, usize)>;

impl Index {
    /// The index of `labels`, for alerts whose keys are `keys` (JSON
    /// texts, by place).
    pub(super) fn new(labels: &[Label], keys: usize) -> Index {
        let mut index = Index {
            by_key: Vec::new(),
            places: hashbrown::HashMap::new(),
            of_key: vec![None; keys],
            visits: 0,
        };
        for (i, label) in labels.iter().enumerate() {
            let mut names = label_names(&label.key);
            names.dedup();
            for name in names {
                let next = u32::try_from(index.by_key.len()).unwrap_or(u32::MAX);
                let at = *index.places.entry(name).or_insert(next);
                if at == next {
                    index.by_key.push(Vec::new());
                }
                index.by_key[at as usize].push((label.ts, i));
            }
        }
        for labels in &mut index.by_key {
            labels.sort_unstable();
        }
        index
    }

    /// Does the alert of key `key` (its place; `text` its JSON text) over
    /// `from..=to` catch a label? The ranges of those it catches go to
    /// `caught`.
    pub(super) fn catch(
        &mut self,
        (key, text): (u32, &str),
        (from, to): (i64, i64),
        caught: &mut Caught,
    ) -> bool {
        let Some(slot) = self.of_key.get_mut(key as usize) else {
            return false;
        };
        let places = slot.get_or_insert_with(|| {
            let value = serde_json::from_str::<serde_json::Value>(text).unwrap_or_default();
            (key_names(&value).iter())
                .filter_map(|name| self.places.get(name).copied())
                .collect()
        });
        let mut hit = false;
        for &place in places.iter() {
            let labels = &self.by_key[place as usize];
            let first = labels.partition_point(|&(ts, _)| ts < from);
            let past = labels.partition_point(|&(ts, _)| ts <= to);
            self.visits += 2 * u64::from(usize::BITS - labels.len().leading_zeros());
            if first < past {
                hit = true;
                caught.push((place, first, past));
            }
        }
        hit
    }

    /// The labels in `caught`'s ranges, each once: a pattern's ranges
    /// merged, each label of their union visited once.
    pub(super) fn caught(&mut self, mut caught: Caught) -> HashSet<usize> {
        caught.sort_unstable();
        let mut labels = HashSet::new();
        let mut ranges = caught.into_iter().peekable();
        while let Some((place, first, mut past)) = ranges.next() {
            while let Some(&(p, f, l)) = ranges.peek() {
                if p != place || f > past {
                    break;
                }
                past = past.max(l);
                ranges.next();
            }
            for &(_, i) in &self.by_key[place as usize][first..past] {
                labels.insert(i);
            }
            self.visits += (past - first) as u64;
        }
        labels
    }

    /// Label entries visited so far.
    #[cfg(test)]
    pub(super) fn visits(&self) -> u64 {
        self.visits
    }
}

/// The match keys a label's key is found under: an object of the key's
/// fields under itself; a value under the value of a key's one field
/// (and a text also under the number or boolean it reads as, as a CSV
/// label's is).
fn label_names(key: &serde_json::Value) -> Vec<String> {
    if key.is_object() {
        return vec![format!("o{}", canonical(key))];
    }
    let mut names = vec![format!("1{}", canonical(key))];
    if let Some(read) = (key.as_str()).and_then(|v| serde_json::from_str(v).ok()) {
        names.push(format!("1{}", canonical(&read)));
    }
    names.sort();
    names
}

/// The match keys an alert's key (an object of its fields) is found
/// under: itself, and the value of its one field when it has one.
fn key_names(key: &serde_json::Value) -> Vec<String> {
    let Some(fields) = key.as_object() else {
        return Vec::new();
    };
    let mut names = vec![format!("o{}", canonical(key))];
    if let (1, Some(only)) = (fields.len(), fields.values().next()) {
        names.push(format!("1{}", canonical(only)));
    }
    names
}

/// `value` as text that two values have alike exactly when they are
/// equal (`serde_json`'s `==`): objects' fields sorted, `-0.0` as `0.0`.
fn canonical(value: &serde_json::Value) -> String {
    use serde_json::Value;
    let mut out = String::new();
    // (an explicit stack: a label's key is user-sized; serde_json reads
    // at most 128 levels, but the stack costs nothing)
    enum Item<'a> {
        Value(&'a Value),
        Text(&'static str),
        Key(&'a str),
    }
    let mut stack = vec![Item::Value(value)];
    while let Some(item) = stack.pop() {
        match item {
            Item::Text(text) => out.push_str(text),
            Item::Key(key) => {
                out.push_str(&serde_json::to_string(key).unwrap_or_default());
                out.push(':');
            }
            Item::Value(Value::Object(fields)) => {
                let mut sorted: Vec<(&String, &Value)> = fields.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                stack.push(Item::Text("}"));
                for (i, (key, value)) in sorted.into_iter().enumerate().rev() {
                    stack.push(Item::Value(value));
                    stack.push(Item::Key(key));
                    if i > 0 {
                        stack.push(Item::Text(","));
                    }
                }
            }
            Item::Value(Value::Array(values)) => {
                out.push('[');
                stack.push(Item::Text("]"));
                for (i, value) in values.iter().enumerate().rev() {
                    stack.push(Item::Value(value));
                    if i > 0 {
                        stack.push(Item::Text(","));
                    }
                }
            }
            Item::Value(Value::Number(n)) if n.as_f64() == Some(0.0) && n.is_f64() => {
                out.push_str("0.0");
            }
            Item::Value(value) => out.push_str(&value.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Is `key` (a record's: an object of the key's fields) the label's key
    /// (the same object, or the value of its one field)?
    fn same_key(key: &serde_json::Value, label: &serde_json::Value) -> bool {
        match (key, label) {
            (_, serde_json::Value::Object(_)) => key == label,
            (serde_json::Value::Object(fields), value) if fields.len() == 1 => {
                let only = fields.values().next();
                // (a label's text, from CSV, is also the number or boolean
                // it reads as)
                let read = (value.as_str())
                    .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok());
                only == Some(value) || (only.is_some() && read.as_ref() == only)
            }
            _ => false,
        }
    }

    /// The labels each alert catches the old way: every label looked at
    /// for every alert (alerts × labels), as `backtest` did before the
    /// index: true positives, and the labels caught per pattern.
    fn by_every_label(
        alerts: &[(usize, &str, i64, i64)],
        labels: &[Label],
        patterns: usize,
    ) -> (Vec<u64>, Vec<HashSet<usize>>) {
        let mut hits = vec![0; patterns];
        let mut caught = vec![HashSet::new(); patterns];
        for &(pattern, key, from, to) in alerts {
            let key = serde_json::from_str::<serde_json::Value>(key).unwrap_or_default();
            let mut hit = false;
            for (i, label) in labels.iter().enumerate() {
                if from <= label.ts && label.ts <= to && same_key(&key, &label.key) {
                    hit = true;
                    caught[pattern].insert(i);
                }
            }
            hits[pattern] += u64::from(hit);
        }
        (hits, caught)
    }

    /// The same through the index.
    fn by_index(
        alerts: &[(usize, &str, i64, i64)],
        labels: &[Label],
        patterns: usize,
    ) -> (Vec<u64>, Vec<HashSet<usize>>, u64) {
        let mut texts: Vec<&str> = alerts.iter().map(|a| a.1).collect();
        texts.sort_unstable();
        texts.dedup();
        let mut index = Index::new(labels, texts.len());
        let mut hits = vec![0; patterns];
        let mut ranges = vec![Vec::new(); patterns];
        for &(pattern, key, from, to) in alerts {
            let place = texts.binary_search(&key).unwrap() as u32;
            let hit = index.catch((place, key), (from, to), &mut ranges[pattern]);
            hits[pattern] += u64::from(hit);
        }
        let caught = ranges.into_iter().map(|r| index.caught(r)).collect();
        (hits, caught, index.visits())
    }

    /// On random alerts and labels (keys as objects of one or two fields
    /// and as values, numbers as texts as CSV gives them, `1` and `1.0`,
    /// `0.0` and `-0.0`, spans of every length and negative tolerances):
    /// the index catches exactly the labels every label looked at did.
    #[test]
    fn the_index_catches_what_looking_at_every_label_caught() {
        let mut state = 0x1abe1_u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let alert_keys = [
            r#"{"user":"u1"}"#,
            r#"{"user":"u2"}"#,
            r#"{"user":7}"#,
            r#"{"user":1.0}"#,
            r#"{"user":0.0}"#,
            r#"{"user":true}"#,
            r#"{"user":"u1","device":"d"}"#,
            r#"{"device":"d","user":"u1"}"#,
            r#"{"user":{"a":[1,{"b":-0.0}]}}"#,
            "null",
            "not json",
        ];
        let label_keys = [
            serde_json::json!("u1"),
            serde_json::json!("u2"),
            serde_json::json!(7),
            serde_json::json!("7"),
            serde_json::json!("1.0"),
            serde_json::json!(1),
            serde_json::json!(-0.0),
            serde_json::json!("true"),
            serde_json::json!({"user": "u1"}),
            serde_json::json!({"user": "u1", "device": "d"}),
            serde_json::json!({"user": {"a": [1, {"b": 0.0}]}}),
            serde_json::json!("{\"a\":[1,{\"b\":0.0}]}"),
            serde_json::Value::Null,
        ];
        let mut caught_in_all = 0;
        for round in 0..200 {
            let patterns = 1 + next(3) as usize;
            let labels: Vec<Label> = (0..next(40))
                .map(|line| Label {
                    key: label_keys[next(label_keys.len() as u64) as usize].clone(),
                    ts: next(100) as i64,
                    line: line as usize + 1,
                })
                .collect();
            let alerts: Vec<(usize, &str, i64, i64)> = (0..next(60))
                .map(|_| {
                    let from = next(110) as i64 - 5;
                    // (a negative tolerance can make a span empty)
                    let to = from + next(30) as i64 - 3;
                    let key = alert_keys[next(alert_keys.len() as u64) as usize];
                    (next(patterns as u64) as usize, key, from, to)
                })
                .collect();
            let (hits, caught) = by_every_label(&alerts, &labels, patterns);
            let (fast_hits, fast_caught, _) = by_index(&alerts, &labels, patterns);
            caught_in_all += caught.iter().map(HashSet::len).sum::<usize>();
            assert_eq!((fast_hits, fast_caught), (hits, caught), "round {round}");
        }
        assert!(
            caught_in_all > 500,
            "{caught_in_all}: too few labels caught to tell"
        );
    }

    /// The work is (alerts + labels) log n: 20,000 alerts that each
    /// catch all 20,000 labels of their key (the old way looked at
    /// 400,000,000 labels) visit a few labels an alert.
    #[test]
    fn the_work_grows_with_alerts_plus_labels_not_their_product() {
        let n = 20_000;
        let labels: Vec<Label> = (0..n)
            .map(|i| Label {
                key: serde_json::json!("u1"),
                ts: i,
                line: i as usize + 1,
            })
            .collect();
        let alerts: Vec<(usize, &str, i64, i64)> = (0..n)
            .map(|i| (0, r#"{"user":"u1"}"#, i - n, i + n))
            .collect();
        let (hits, caught, visits) = by_index(&alerts, &labels, 1);
        assert_eq!(hits, vec![n as u64]);
        assert_eq!(caught[0].len(), n as usize);
        let bound = 2 * (n as u64) * (2 * 16) + n as u64;
        assert!(visits <= bound, "{visits} visits, more than {bound}");
    }
}
