//! What the log holds: the service's inputs, never its answers
//! ([`Entry`]), and each entry as logged, with the sequence number and
//! stamp the log gave it ([`LoggedEntry`]). Their JSON payloads
//! (`docs/wal.md`, "Payload").

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// An entry's kind, as its payload's `"kind"` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A decision request (`POST /v1/decide`, never a dry run).
    Decide,
    /// An event recorded without a decision (`POST /v1/events`).
    Event,
    /// A change of rules.
    Rules,
    /// A change of a list.
    List,
    /// A clock tick that lets timeouts fire.
    Tick,
    /// A decision request answered with its scene's fallback at its
    /// deadline, before the engine took it.
    Degraded,
}

/// One input to the engine, appended to the log. Everything the engine
/// needs to apply it again in a replay: nothing it computes.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A decision request: [`Input::scene`] is required.
    Decide(Input),
    /// An event recorded without a decision; its scene is optional.
    Event(Input),
    /// A change of rules: the new rules' text, and where it came from
    /// (`--watch PATH`, a rules topic, a control request: the caller's words).
    Rules {
        /// The rules' text (`.cep`).
        text: String,
        /// Where the change came from.
        origin: String,
    },
    /// A change of a list: the change as JSON (the caller's shape, kept
    /// byte for byte).
    List {
        /// The change.
        change: Box<RawValue>,
        /// A record of a list's topic (`--list NAME=kafka://...`): its
        /// place, `kafka:TOPIC partition P offset O`, where the reader
        /// goes on after.
        origin: Option<String>,
    },
    /// A clock tick: timeouts up to `time` may fire.
    Tick {
        /// The tick's time, in milliseconds since the epoch.
        time: i64,
    },
    /// The decision request logged at `request` (an earlier entry's seq)
    /// was answered with its scene's fallback, degraded, when its
    /// deadline passed before the engine took it. The engine takes that
    /// request degraded (its answer, and a retry's, the fallback), also in
    /// a replay, which reads the log ahead for these entries.
    Degraded {
        /// The seq of the request.
        request: u64,
    },
}

/// A decision request or an event, as received.
#[derive(Clone, Debug)]
pub struct Input {
    /// The scene the event enters (required for [`Entry::Decide`]).
    pub scene: Option<String>,
    /// The client's event id (the idempotency key).
    pub event_id: String,
    /// The event's fields: the JSON object as received, byte for byte
    /// (the bytes between its braces are never rewritten).
    pub fields: Box<RawValue>,
    /// Answered at admission with the scene's fallback outcome (its
    /// deadline could not be met); still applied.
    pub degraded: bool,
    /// Its shadow rules were not run (shed under overload).
    pub shed_shadow: bool,
    /// An event of a Kafka topic (`--events-topic`): its place,
    /// `kafka:TOPIC partition P offset O`. Such an event has no
    /// idempotency key (its place makes it once: a restart reads on from
    /// the offset after it) and is not remembered as a request.
    pub origin: Option<String>,
}

impl PartialEq for Input {
    fn eq(&self, other: &Input) -> bool {
        self.scene == other.scene
            && self.event_id == other.event_id
            && self.fields.get() == other.fields.get()
            && self.degraded == other.degraded
            && self.shed_shadow == other.shed_shadow
            && self.origin == other.origin
    }
}

/// Entries are equal when their JSON texts are equal byte for byte.
impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Decide(a), Entry::Decide(b)) | (Entry::Event(a), Entry::Event(b)) => a == b,
            (
                Entry::Rules {
                    text: t1,
                    origin: o1,
                },
                Entry::Rules {
                    text: t2,
                    origin: o2,
                },
            ) => t1 == t2 && o1 == o2,
            (
                Entry::List {
                    change: a,
                    origin: o1,
                },
                Entry::List {
                    change: b,
                    origin: o2,
                },
            ) => a.get() == b.get() && o1 == o2,
            (Entry::Tick { time: a }, Entry::Tick { time: b }) => a == b,
            (Entry::Degraded { request: a }, Entry::Degraded { request: b }) => a == b,
            _ => false,
        }
    }
}

impl Entry {
    /// The entry's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Entry::Decide(_) => Kind::Decide,
            Entry::Event(_) => Kind::Event,
            Entry::Rules { .. } => Kind::Rules,
            Entry::List { .. } => Kind::List,
            Entry::Tick { .. } => Kind::Tick,
            Entry::Degraded { .. } => Kind::Degraded,
        }
    }

    /// The decision request or event, for [`Entry::Decide`] and [`Entry::Event`].
    pub fn input(&self) -> Option<&Input> {
        match self {
            Entry::Decide(input) | Entry::Event(input) => Some(input),
            _ => None,
        }
    }

    /// Why the entry cannot be logged, if it cannot: a decision without a
    /// scene, fields that are not a JSON object.
    pub(crate) fn invalid(&self) -> Option<&'static str> {
        match self {
            Entry::Decide(Input { scene: None, .. }) => Some("a decision request without a scene"),
            Entry::Decide(input) | Entry::Event(input) if !input.fields.get().starts_with('{') => {
                Some("fields that are not a JSON object")
            }
            Entry::Degraded { request: 0 } => Some("a degraded entry of no request (seq 0)"),
            _ => None,
        }
    }
}

/// Where an appended entry landed: its sequence number and stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The entry's sequence number: dense from 1, in the log's order.
    pub seq: u64,
    /// Its ingestion time, milliseconds since the epoch: never below the
    /// stamp before it.
    pub stamp: i64,
}

/// An entry as the log holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEntry {
    /// The sequence number (dense from 1).
    pub seq: u64,
    /// The ingestion stamp (ms since the epoch, never going backwards).
    pub stamp: i64,
    /// The input.
    pub entry: Entry,
}

impl LoggedEntry {
    /// Its sequence number and stamp.
    pub fn logged(&self) -> Logged {
        Logged {
            seq: self.seq,
            stamp: self.stamp,
        }
    }
}

/// The payload's fields after `seq` and `stamp`, written by the appending
/// thread (the writer thread only puts `{"seq":N,"stamp":S,` before them).
/// `fields` last: a reader finds the small fields first.
#[derive(Serialize)]
struct BodyOut<'a> {
    kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    scene: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    degraded: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shed_shadow: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a RawValue>,
}

/// The entry's JSON object without `seq` and `stamp`: `{"kind":...}`.
pub(crate) fn encode_body(entry: &Entry) -> Vec<u8> {
    let mut body = BodyOut {
        kind: entry.kind(),
        scene: None,
        event_id: None,
        degraded: None,
        shed_shadow: None,
        origin: None,
        text: None,
        time: None,
        change: None,
        request: None,
        fields: None,
    };
    match entry {
        Entry::Decide(input) | Entry::Event(input) => {
            body.scene = input.scene.as_deref();
            body.event_id = Some(&input.event_id);
            body.degraded = Some(input.degraded);
            body.shed_shadow = Some(input.shed_shadow);
            body.origin = input.origin.as_deref();
            body.fields = Some(&input.fields);
        }
        Entry::Rules { text, origin } => {
            body.text = Some(text);
            body.origin = Some(origin);
        }
        Entry::List { change, origin } => {
            body.change = Some(change);
            body.origin = origin.as_deref();
        }
        Entry::Tick { time } => body.time = Some(*time),
        Entry::Degraded { request } => body.request = Some(*request),
    }
    let mut out = Vec::with_capacity(96 + entry.input().map_or(0, |i| i.fields.get().len()));
    serde_json::to_writer(&mut out, &body).expect("an entry serializes");
    out
}

/// Appends the payload `{"seq":N,"stamp":S,` + the body after its `{`.
pub(crate) fn write_payload(out: &mut Vec<u8>, seq: u64, stamp: i64, body: &[u8]) {
    use std::io::Write;
    write!(out, "{{\"seq\":{seq},\"stamp\":{stamp},").expect("a Vec takes writes");
    out.extend_from_slice(&body[1..]);
}

/// A payload as read: every field a version-1 payload may have. Unknown
/// fields are refused: a field a newer writer adds may change what the
/// entry means, and is never dropped silently.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    seq: u64,
    stamp: i64,
    kind: Kind,
    #[serde(default)]
    scene: Option<String>,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    degraded: Option<bool>,
    #[serde(default)]
    shed_shadow: Option<bool>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    time: Option<i64>,
    #[serde(default)]
    change: Option<Box<RawValue>>,
    #[serde(default)]
    request: Option<u64>,
    #[serde(default)]
    fields: Option<Box<RawValue>>,
}

/// The entry a payload holds, or what is wrong with it.
pub(crate) fn decode(payload: &[u8]) -> Result<LoggedEntry, String> {
    let wire: Wire =
        serde_json::from_slice(payload).map_err(|e| format!("a payload that is no entry: {e}"))?;
    let missing = |field: &str| format!("a {:?} entry without `{field}`", wire.kind);
    let entry = match wire.kind {
        Kind::Decide | Kind::Event => {
            let input = Input {
                scene: wire.scene,
                event_id: wire.event_id.ok_or_else(|| missing("event_id"))?,
                fields: wire.fields.ok_or_else(|| missing("fields"))?,
                degraded: wire.degraded.ok_or_else(|| missing("degraded"))?,
                shed_shadow: wire.shed_shadow.ok_or_else(|| missing("shed_shadow"))?,
                origin: wire.origin,
            };
            if wire.kind == Kind::Decide {
                if input.scene.is_none() {
                    return Err(missing("scene"));
                }
                Entry::Decide(input)
            } else {
                Entry::Event(input)
            }
        }
        Kind::Rules => Entry::Rules {
            text: wire.text.ok_or_else(|| missing("text"))?,
            origin: wire.origin.ok_or_else(|| missing("origin"))?,
        },
        Kind::List => Entry::List {
            change: wire.change.ok_or_else(|| missing("change"))?,
            origin: wire.origin,
        },
        Kind::Tick => Entry::Tick {
            time: wire.time.ok_or_else(|| missing("time"))?,
        },
        Kind::Degraded => {
            let request = wire.request.ok_or_else(|| missing("request"))?;
            if request == 0 || request >= wire.seq {
                // (a request is logged before its degraded entry)
                return Err(format!(
                    "a degraded entry at seq {} of request {request}, not an earlier entry",
                    wire.seq
                ));
            }
            Entry::Degraded { request }
        }
    };
    Ok(LoggedEntry {
        seq: wire.seq,
        stamp: wire.stamp,
        entry,
    })
}

/// The `seq` of a payload this crate wrote (`{"seq":N,...`), without
/// decoding the rest: a reader skipping to its first entry.
pub(crate) fn quick_seq(payload: &[u8]) -> Option<u64> {
    let rest = payload.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 || rest.get(digits) != Some(&b',') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A degraded entry names an earlier request: one of itself or after
    /// it, or of none, is no entry of this log (a reader refuses it).
    #[test]
    fn a_degraded_entry_names_an_earlier_request() {
        let read = |text: &str| decode(text.as_bytes()).map(|e| e.entry);
        assert_eq!(
            read(r#"{"seq":3,"stamp":1,"kind":"degraded","request":2}"#),
            Ok(Entry::Degraded { request: 2 })
        );
        for (text, said) in [
            (
                r#"{"seq":3,"stamp":1,"kind":"degraded","request":3}"#,
                "of request 3, not an earlier entry",
            ),
            (
                r#"{"seq":3,"stamp":1,"kind":"degraded","request":0}"#,
                "of request 0",
            ),
            (
                r#"{"seq":3,"stamp":1,"kind":"degraded"}"#,
                "without `request`",
            ),
        ] {
            let error = read(text).unwrap_err();
            assert!(error.contains(said), "{text}: {error}");
        }
    }
}
