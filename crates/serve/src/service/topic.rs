//! A rules topic read into the log (`cepheid serve --rules-topic`,
//! `docs/serve.md`, "A rules topic"): each `{"$rules": TEXT}` record of
//! the topic's partition 0 is logged as a change of rules whose origin
//! names the record (`kafka:TOPIC partition 0 offset N`), so the log
//! alone says which rules decided each request, and where the reader goes
//! on after a restart: the offset after the last record logged, which the
//! log's reader keeps (in every checkpoint, and read again with the log
//! after it). The command reads the topic (`cepheid-kafka`); this crate
//! takes its records ([`RulesFeed`]), and does not depend on Kafka.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Shared;
use crate::wal::Entry;

/// The origin a rules record of `topic` at `offset` is logged with: the
/// place `cepheid run` names a rules topic's record by.
pub(crate) fn origin(topic: &str, offset: i64) -> String {
    format!("kafka:{topic} partition 0 offset {offset}")
}

/// The topic and offset of a change of rules logged from a rules topic
/// ([`origin`]); `None` for another origin (`--watch`, the command line).
pub(crate) fn of_origin(origin: &str) -> Option<(&str, i64)> {
    let rest = origin.strip_prefix("kafka:")?;
    let (topic, offset) = rest.rsplit_once(" partition 0 offset ")?;
    Some((topic, offset.parse().ok()?))
}

/// The origin an event of `topic`'s partition `partition` at `offset` is
/// logged with (`--events-topic`): the place `cepheid run` names a
/// topic's record by.
pub(crate) fn event_origin(topic: &str, partition: i32, offset: i64) -> String {
    format!("kafka:{topic} partition {partition} offset {offset}")
}

/// The partition's key in [`Offsets`] (`TOPIC partition P`: no topic's
/// name has a space, so no rules topic's key is one) and the offset of
/// an event logged from an events topic ([`event_origin`]).
pub(crate) fn of_event_origin(origin: &str) -> Option<(String, i64)> {
    let rest = origin.strip_prefix("kafka:")?;
    let (partition, offset) = rest.rsplit_once(" offset ")?;
    let (topic, number) = partition.rsplit_once(" partition ")?;
    number.parse::<i32>().ok()?;
    Some((format!("{topic} partition {number}"), offset.parse().ok()?))
}

/// The key in [`Offsets`] of a list topic's partition (`list TOPIC
/// partition P`, from its events key: the same topic read as events and
/// as a list keeps two places).
pub(crate) fn list_key(partition: &str) -> String {
    format!("list {partition}")
}

/// Per rules topic, the offset after the last record logged; per
/// partition of an events topic (`TOPIC partition P`) or a list topic
/// (`list TOPIC partition P`), the same.
pub(crate) type Offsets = BTreeMap<String, i64>;

/// `offsets` after the log source's position words (its checkpoint
/// place): each as its offset, its name's length and its name; nothing
/// for none (a position of an older build, 24 bytes, reads as none).
pub(crate) fn encode(offsets: &Offsets, bytes: &mut Vec<u8>) {
    for (topic, next) in offsets {
        bytes.extend_from_slice(&next.to_le_bytes());
        bytes.extend_from_slice(&(topic.len() as u64).to_le_bytes());
        bytes.extend_from_slice(topic.as_bytes());
    }
}

/// The offsets [`encode`] wrote in `bytes`, or `None` when they do not
/// read.
pub(crate) fn decode(mut bytes: &[u8]) -> Option<Offsets> {
    let mut offsets = Offsets::new();
    let word = |bytes: &mut &[u8]| -> Option<u64> {
        let (head, rest) = bytes.split_first_chunk::<8>()?;
        *bytes = rest;
        Some(u64::from_le_bytes(*head))
    };
    while !bytes.is_empty() {
        let next = word(&mut bytes)? as i64;
        let len = usize::try_from(word(&mut bytes)?).ok()?;
        let name = bytes.get(..len)?;
        bytes = &bytes[len..];
        offsets.insert(String::from_utf8(name.to_vec()).ok()?, next);
    }
    Some(offsets)
}

/// What the reader of a rules topic hands the service
/// ([`Service::rules_feed`](super::Service::rules_feed)).
#[derive(Clone)]
pub struct RulesFeed {
    pub(crate) shared: Arc<Shared>,
}

/// What became of a record of a rules topic.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Logged as a change of rules (durable): applied when the run takes
    /// it; the words to say.
    Logged(String),
    /// Not logged: what it is, and why (its rules do not load, have no
    /// scene, or it is no rules record); the words to say. The reader
    /// goes on with the next record (a restart reads it again, and says
    /// it again).
    Refused(String),
    /// The log could not take it (its write failed, the service stops):
    /// why. The reader reads it again later.
    NotLogged(String),
}

impl RulesFeed {
    /// Has the service read its log again (so that
    /// [`next_offset`](RulesFeed::next_offset) is known)?
    pub fn ready(&self) -> bool {
        self.shared.is_ready()
    }

    /// Has the service stopped taking requests (its run ended)?
    pub fn gone(&self) -> bool {
        self.shared.gone.load(Ordering::Acquire)
    }

    /// A read of the topic failed (said by the reader): counted on
    /// `/metrics` (`cepheid_serve_rules_topic_read_errors_total`).
    pub fn read_failed(&self) {
        self.shared.counters.topic_read_errors.inc();
    }

    /// The offset after the last record of `topic` logged; `None` when
    /// the log holds none (read it from its first record).
    pub fn next_offset(&self, topic: &str) -> Option<i64> {
        let topics = self.shared.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics.get(topic).copied()
    }

    /// Takes the record at `offset` of `topic`'s partition 0 (`payload`:
    /// its value, `None` for a tombstone): a `{"$rules": TEXT}` record
    /// whose rules load and have a scene is logged as a change of rules,
    /// and this returns once it is durable. Anything else is refused,
    /// with why: a `$list` record (lists change through `--list` files and
    /// `POST /v1/lists/{list}`), a tombstone, another value.
    pub fn take(&self, topic: &str, offset: i64, payload: Option<&[u8]>) -> Taken {
        let taken = self.log(topic, offset, payload);
        let counters = &self.shared.counters;
        match &taken {
            Taken::Logged(_) => counters.topic_logged.inc(),
            Taken::Refused(_) => counters.topic_refused.inc(),
            Taken::NotLogged(_) => {}
        }
        taken
    }

    /// [`RulesFeed::take`], uncounted.
    fn log(&self, topic: &str, offset: i64, payload: Option<&[u8]>) -> Taken {
        let origin = origin(topic, offset);
        let text = match rules_text(payload) {
            Ok(text) => text,
            Err(why) => return Taken::Refused(format!("cepheid serve: {origin}: {why}; left out")),
        };
        if let Err(why) = super::checked_rules(&text, &origin) {
            return Taken::Refused(format!(
                "cepheid serve: {origin}: the rules are not applied: {why}"
            ));
        }
        let Some(log) = self.shared.log.get() else {
            return Taken::NotLogged("the log is not open".into());
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let appended = log.append(
            Entry::Rules {
                text,
                origin: origin.clone(),
            },
            Box::new(move |result| {
                let _ = tx.send(result.map_err(|e| e.to_string()));
            }),
        );
        match appended {
            // (an entry the log never takes: asking again would hold the
            // reader on it for ever)
            Err(crate::wal::WalError::Invalid(why)) => {
                return Taken::Refused(format!(
                    "cepheid serve: {origin}: the log does not take it: {why}; left out"
                ));
            }
            Err(e) => return Taken::NotLogged(e.to_string()),
            Ok(()) => {}
        }
        match rx.recv() {
            Ok(Ok(_)) => Taken::Logged(format!(
                "cepheid serve: {origin}: rules logged, applied from the next entry"
            )),
            Ok(Err(e)) => Taken::NotLogged(e),
            Err(_) => Taken::NotLogged("the log closed".into()),
        }
    }
}

/// What the reader of an events topic hands the service
/// ([`Service::events_feed`](super::Service::events_feed)): each record
/// of the topic's partitions logged as an event of no scene, as `POST
/// /v1/events` records one, named by its place; where the reader goes on
/// is the log's (the offset after the last record of each partition
/// logged, in every checkpoint).
#[derive(Clone)]
pub struct EventsFeed {
    pub(crate) shared: Arc<Shared>,
}

/// A list topic's record as its reader hands it over
/// ([`EventsFeed::take_list`]): its partition, its offset, and the `$list`
/// record it means or why it is no entry.
pub type ListRecord = (i32, i64, Result<Vec<u8>, String>);

/// What became of a batch of an events topic's records
/// ([`EventsFeed::take`]).
#[derive(Debug, PartialEq, Eq)]
pub enum EventsTaken {
    /// Every record logged (durable), but those refused: each refused
    /// one's words to say (not a JSON object, a control record, a
    /// tombstone). The reader goes on after the batch.
    Logged(Vec<String>),
    /// The log could not take them (its write failed: the service's
    /// readiness is false, and it stops taking requests): why. Some of
    /// the batch may have been logged; the reader stops, and a restart
    /// reads on from the offsets the log holds.
    NotLogged(String),
}

impl EventsFeed {
    /// Has the service read its log again (so that
    /// [`next_offset`](EventsFeed::next_offset) is known)?
    pub fn ready(&self) -> bool {
        self.shared.is_ready()
    }

    /// Has the service stopped taking requests (its run ended)?
    pub fn gone(&self) -> bool {
        self.shared.gone.load(Ordering::Acquire)
    }

    /// A read of the topic failed (said by the reader): counted on
    /// `/metrics` (`cepheid_serve_events_topic_read_errors_total`).
    pub fn read_failed(&self) {
        self.shared.counters.events_topic_read_errors.inc();
    }

    /// The offset after the last record of `topic`'s partition
    /// `partition` logged; `None` when the log holds none of it.
    pub fn next_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let topics = self.shared.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics
            .get(&format!("{topic} partition {partition}"))
            .copied()
    }

    /// The offset after the last record of list topic `topic`'s
    /// partition `partition` logged; `None` when the log holds none of it.
    pub fn next_list_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let topics = self.shared.topics.lock().unwrap_or_else(|p| p.into_inner());
        let key = list_key(&format!("{topic} partition {partition}"));
        topics.get(&key).copied()
    }

    /// Logs each record of list topic `topic` (its partition, offset and
    /// the `$list` record it means, or why it is no entry:
    /// `cepheid_kafka::list_change`) as a change of the list at its place,
    /// in their order, and returns once they are durable; what is no
    /// entry is said, counted as refused, and left out.
    pub fn take_list(&self, topic: &str, records: &[ListRecord]) -> EventsTaken {
        let book = self.shared.book();
        let now = crate::wal::wall_clock_ms();
        self.log_all(records.iter().map(|(partition, offset, change)| {
            let place = event_origin(topic, *partition, *offset);
            let change = (change.as_ref().map_err(Clone::clone))
                .and_then(|c| list_change(c, &book.lists, now));
            let entry = change.map(|change| Entry::List {
                change,
                origin: Some(place.clone()),
            });
            (place, entry)
        }))
    }

    /// Logs each record of `topic` (its partition, offset and value,
    /// `None` for a tombstone) as an event of no scene, in their order,
    /// and returns once they are durable: a JSON object is logged as it
    /// was read, with its place as its origin; anything else is refused,
    /// said and counted, and left out.
    pub fn take(&self, topic: &str, records: &[(i32, i64, Option<&[u8]>)]) -> EventsTaken {
        self.log_all(records.iter().map(|&(partition, offset, payload)| {
            let place = event_origin(topic, partition, offset);
            let entry = event_fields(payload).map(|fields| {
                Entry::Event(crate::wal::Input {
                    scene: None,
                    event_id: place.clone(),
                    fields,
                    degraded: false,
                    shed_shadow: false,
                    origin: Some(place.clone()),
                })
            });
            (place, entry)
        }))
    }

    /// Appends each entry (named by its record's place) in order, or says
    /// and counts why its record is none, and returns once the appended
    /// ones are durable.
    fn log_all(
        &self,
        entries: impl Iterator<Item = (String, Result<Entry, String>)>,
    ) -> EventsTaken {
        let Some(log) = self.shared.log.get() else {
            return EventsTaken::NotLogged("the log is not open".into());
        };
        let counters = &self.shared.counters;
        let (tx, rx) = std::sync::mpsc::channel();
        let (mut refused, mut appended) = (Vec::new(), 0usize);
        for (place, entry) in entries {
            let why = match entry {
                Err(why) => why,
                Ok(entry) => {
                    let tx = tx.clone();
                    let done: crate::wal::Done = Box::new(move |result| {
                        let _ = tx.send(result.map_err(|e| e.to_string()));
                    });
                    match log.append(entry, done) {
                        Ok(()) => {
                            appended += 1;
                            continue;
                        }
                        // (an entry the log never takes: left out, as a
                        // refused one)
                        Err(crate::wal::WalError::Invalid(why)) => {
                            format!("the log does not take it: {why}")
                        }
                        Err(e) => return EventsTaken::NotLogged(e.to_string()),
                    }
                }
            };
            counters.events_topic_refused.inc();
            refused.push(format!("cepheid serve: {place}: {why}; left out"));
        }
        drop(tx);
        for _ in 0..appended {
            match rx.recv() {
                Ok(Ok(_)) => counters.events_topic_logged.inc(),
                Ok(Err(e)) => return EventsTaken::NotLogged(e),
                Err(_) => return EventsTaken::NotLogged("the log closed".into()),
            }
        }
        EventsTaken::Logged(refused)
    }
}

/// A list topic's `$list` record as the log keeps it, or why it is none:
/// the list must be one of the rules in force (`lists`: each with its
/// `for`); an addition without `expires` to a list with a `for` is
/// given its expiry now (`for` from the wall clock), explicit in the log
/// as the list files' and the API's are (`docs/serve.md`, "Lists"), so
/// that it never counts from the start of event time.
fn list_change(
    change: &[u8],
    lists: &[(String, Option<i64>)],
    now: i64,
) -> Result<Box<serde_json::value::RawValue>, String> {
    let mut change: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(change).map_err(|e| format!("not a `$list` record ({e})"))?;
    let name = change
        .get("$list")
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    let Some((_, lasts)) = lists.iter().find(|(list, _)| list == name) else {
        return Err(format!("no list `{name}` in the rules in force"));
    };
    let no_expiry = change.get("expires").is_none_or(serde_json::Value::is_null);
    if let (true, true, Some(lasts)) = (change.contains_key("add"), no_expiry, lasts) {
        change.insert("expires".into(), now.saturating_add(*lasts).into());
    }
    let text = serde_json::Value::Object(change).to_string();
    serde_json::value::RawValue::from_string(text).map_err(|e| format!("not JSON ({e})"))
}

/// The most fields an events topic's record may have (the HTTP front's
/// default bound on a request's).
const MAX_TOPIC_FIELDS: usize = 1_000;

/// The fields of an events topic's record, as read, or why it is none.
fn event_fields(payload: Option<&[u8]>) -> Result<Box<serde_json::value::RawValue>, String> {
    let Some(payload) = payload.filter(|p| !p.is_empty()) else {
        return Err("an empty record (a tombstone, or an empty value)".into());
    };
    if payload.len() > crate::wal::MAX_PAYLOAD / 2 {
        return Err(format!(
            "a record of {} bytes, over the {} bytes an event may be (half the log's bound on an entry)",
            payload.len(),
            crate::wal::MAX_PAYLOAD / 2
        ));
    }
    let text = std::str::from_utf8(payload).map_err(|e| format!("not UTF-8 ({e})"))?;
    let fields: Box<serde_json::value::RawValue> =
        serde_json::from_str(text.trim()).map_err(|e| format!("not a JSON object ({e})"))?;
    let probe: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(fields.get()).map_err(|_| "not a JSON object".to_string())?;
    // (as the HTTP front bounds a request's fields: `FrontOptions::max_fields`)
    if probe.len() > MAX_TOPIC_FIELDS {
        return Err(format!(
            "an event of {} fields, over the {MAX_TOPIC_FIELDS} an events topic's record may have",
            probe.len()
        ));
    }
    if let Some(control) = ["$rules", "$list", "$watermark"]
        .into_iter()
        .find(|c| probe.contains_key(*c))
    {
        return Err(format!(
            "a `{control}` record: an events topic holds events (a service's rules change through its files and `--rules-topic`, its lists through `--list` files and `POST /v1/lists/{{list}}`)"
        ));
    }
    Ok(fields)
}

/// The rules' text of a rules record, or why it is none.
fn rules_text(payload: Option<&[u8]>) -> Result<String, String> {
    let Some(payload) = payload.filter(|p| !p.is_empty()) else {
        return Err("an empty record (a tombstone, or an empty value)".into());
    };
    // (refused before it is parsed: the log takes no entry over its bound)
    if payload.len() > crate::wal::MAX_PAYLOAD / 2 {
        return Err(format!(
            "a record of {} bytes, over the {} bytes a change of rules may be (half the log's bound on an entry)",
            payload.len(),
            crate::wal::MAX_PAYLOAD / 2
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not a JSON object ({e})"))?;
    let serde_json::Value::Object(fields) = value else {
        return Err("not a JSON object".into());
    };
    if fields.contains_key("$list") {
        return Err("a `$list` record: a service's lists change through `--list` files and `POST /v1/lists/{list}` (docs/serve.md, \"Lists\"), not its rules topic".into());
    }
    if fields.contains_key("$rules_file") {
        return Err("a `$rules_file` record: a service logs the rules' text, so a rules topic gives it (`{\"$rules\": TEXT}`)".into());
    }
    match (fields.get("$rules"), fields.len()) {
        (Some(serde_json::Value::String(text)), 1) => Ok(text.clone()),
        (Some(serde_json::Value::String(_)), _) => {
            Err("a `$rules` record has no other field".into())
        }
        (Some(_), _) => Err("`$rules` is not a string (the rules' text)".into()),
        (None, _) => Err("not a rules record (`{\"$rules\": TEXT}`)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An events or list topic's place reads back as its partition's key
    /// and offset (a list's key its own); a list's addition without an
    /// expiry gets its `for` from now, and one of no list in force is
    /// refused.
    #[test]
    fn event_places_and_list_changes() {
        let place = event_origin("pays", 3, 17);
        assert_eq!(place, "kafka:pays partition 3 offset 17");
        let (key, offset) = of_event_origin(&place).unwrap();
        assert_eq!((key.as_str(), offset), ("pays partition 3", 17));
        assert_eq!(list_key(&key), "list pays partition 3");
        assert_eq!(of_event_origin("--watch x"), None);
        let lists = [
            ("blocked".to_string(), Some(1_000)),
            ("vip".to_string(), None),
        ];
        let change =
            |text: &str| list_change(text.as_bytes(), &lists, 5_000).map(|c| c.get().to_string());
        assert_eq!(
            change(r#"{"$list":"blocked","add":"d1"}"#).unwrap(),
            r#"{"$list":"blocked","add":"d1","expires":6000}"#
        );
        assert_eq!(
            change(r#"{"$list":"blocked","add":"d1","expires":9000}"#).unwrap(),
            r#"{"$list":"blocked","add":"d1","expires":9000}"#
        );
        assert_eq!(
            change(r#"{"$list":"vip","add":"u1"}"#).unwrap(),
            r#"{"$list":"vip","add":"u1"}"#
        );
        assert_eq!(
            change(r#"{"$list":"blocked","remove":"d1"}"#).unwrap(),
            r#"{"$list":"blocked","remove":"d1"}"#
        );
        let many: Vec<String> = (0..1_001).map(|i| format!(r#""f{i}":{i}"#)).collect();
        let wide = format!("{{{}}}", many.join(","));
        let said = event_fields(Some(wide.as_bytes())).unwrap_err();
        assert!(said.contains("an event of 1001 fields"), "{said}");
        assert!(event_fields(Some(&b"NaN"[..]))
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(event_fields(Some(&b"{\"a\": 1"[..]))
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(event_fields(Some(&b"[1]"[..]))
            .unwrap_err()
            .contains("not a JSON object"));
        let refused = change(r#"{"$list":"nope","add":"x"}"#).unwrap_err();
        assert!(
            refused.contains("no list `nope` in the rules in force"),
            "{refused}"
        );
    }

    #[test]
    fn origins_and_offsets_read_back() {
        let o = origin("ops.rules", 41);
        assert_eq!(o, "kafka:ops.rules partition 0 offset 41");
        assert_eq!(of_origin(&o), Some(("ops.rules", 41)));
        assert_eq!(of_origin("--watch rules.cep"), None);
        assert_eq!(of_origin("the command line"), None);
        // (a topic's name may hold the words)
        let odd = origin("a partition 0 offset 3", 7);
        assert_eq!(of_origin(&odd), Some(("a partition 0 offset 3", 7)));

        let mut offsets = Offsets::new();
        let mut bytes = vec![9u8; 24];
        encode(&offsets, &mut bytes);
        assert_eq!(bytes.len(), 24, "none: an older build's position");
        offsets.insert("r".into(), 5);
        offsets.insert("rules.two".into(), 1 << 40);
        encode(&offsets, &mut bytes);
        assert_eq!(decode(&bytes[24..]), Some(offsets));
        assert_eq!(decode(&bytes[24..30]), None, "cut");
        assert_eq!(decode(&[]), Some(Offsets::new()));
    }

    #[test]
    fn only_rules_records_are_taken() {
        assert_eq!(rules_text(Some(br#"{"$rules": "x"}"#)), Ok("x".into()));
        for (payload, said) in [
            (None, "tombstone"),
            (Some(&b""[..]), "tombstone"),
            (Some(&b"{"[..]), "not a JSON object"),
            (Some(&b"[1]"[..]), "not a JSON object"),
            (
                Some(&br#"{"$list": "b", "add": "x"}"#[..]),
                "POST /v1/lists",
            ),
            (Some(&br#"{"$rules_file": "r.cep"}"#[..]), "$rules_file"),
            (Some(&br#"{"$rules": 3}"#[..]), "not a string"),
            (
                Some(&br#"{"$rules": "x", "by": "me"}"#[..]),
                "no other field",
            ),
            (Some(&br#"{"rules": "x"}"#[..]), "not a rules record"),
        ] {
            let why = rules_text(payload).unwrap_err();
            assert!(why.contains(said), "{payload:?}: {why}");
        }
        // Over half the log's bound (a text's escapes may double it in the
        // entry): refused unread, not asked again for ever.
        let mut huge = br#"{"$rules": ""#.to_vec();
        huge.resize(crate::wal::MAX_PAYLOAD / 2, b' ');
        huge.extend_from_slice(br#""}"#);
        let why = rules_text(Some(&huge)).unwrap_err();
        assert!(why.contains("over the 8388608 bytes"), "{why}");
    }
}
