//! The requests' envelopes, validated as the document's closed schemas
//! say (`DecideRequest`, `EventsRequest`): malformed JSON is named by
//! line and column, every other fault by the field it is in. The event
//! itself is open, kept byte for byte, and only its size is checked.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::decider::{ApiError, DecideCall, ErrorCode, EventCall, ListCall, Mode};

/// The limits an envelope is checked against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_fields: usize,
    pub max_batch: usize,
}

/// The longest `event_id` (characters), as `EventId` says.
const MAX_EVENT_ID: usize = 256;

const DECIDE_FIELDS: &[&str] = &[
    "scene",
    "event_id",
    "event",
    "mode",
    "deadline_ms",
    "explain",
];
const EVENTS_FIELDS: &[&str] = &["events"];
const LIST_FIELDS: &[&str] = &["add", "expires", "remove"];

/// The most values one list change takes (`ListChange`).
pub(crate) const MAX_LIST_VALUES: usize = 10_000;
const EVENT_FIELDS: &[&str] = &["event_id", "event"];

/// `POST /v1/decide`'s body as the service's call.
pub(crate) fn decide(
    body: &[u8],
    limits: Limits,
    accepted: Instant,
) -> Result<DecideCall, ApiError> {
    let raw = parse(body)?;
    let entries = object(raw, "", "the request")?;
    let mut scene = None;
    let mut event_id = None;
    let mut event = None;
    let mut mode = Mode::Decide;
    let mut deadline = None;
    let mut explain = false;
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &entries {
        let name = known(key, DECIDE_FIELDS, "", &seen)?;
        seen.push(name);
        match name {
            "scene" => {
                let s = string(value, "scene")?;
                if s.is_empty() {
                    return Err(invalid(
                        "scene",
                        "`scene` is empty: name the scene the event enters",
                    ));
                }
                scene = Some(s);
            }
            "event_id" => event_id = Some(the_event_id(value, "event_id")?),
            "event" => event = Some(the_event(value, "event", limits)?),
            "mode" => {
                mode = match string(value, "mode")?.as_str() {
                    "decide" => Mode::Decide,
                    "dry_run" => Mode::DryRun,
                    other => {
                        return Err(invalid(
                            "mode",
                            format!("`mode` must be `decide` or `dry_run`, not {other:?}"),
                        ))
                    }
                }
            }
            "deadline_ms" => deadline = Some(millis(value, "deadline_ms")?),
            "explain" => explain = boolean(value, "explain")?,
            _ => unreachable!("a field of DECIDE_FIELDS"),
        }
    }
    let scene = scene.ok_or_else(|| missing("scene", "the scene the event enters"))?;
    let event_id =
        event_id.ok_or_else(|| missing("event_id", "the event's id, the idempotency key"))?;
    let event = event.ok_or_else(|| missing("event", "the event's fields, an object"))?;
    Ok(DecideCall {
        scene,
        event_id,
        event,
        mode,
        deadline,
        explain,
        accepted,
    })
}

/// `POST /v1/events`'s body as the service's calls, in the order given.
pub(crate) fn events(body: &[u8], limits: Limits) -> Result<Vec<EventCall>, ApiError> {
    let raw = parse(body)?;
    let entries = object(raw, "", "the request")?;
    let mut events = None;
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &entries {
        let name = known(key, EVENTS_FIELDS, "", &seen)?;
        seen.push(name);
        let items: Vec<&RawValue> = match kind(value) {
            Kind::Array => serde_json::from_str(value.get()).map_err(|e| malformed(&e))?,
            other => return Err(wrong_type("events", "an array of events", other)),
        };
        if items.is_empty() {
            return Err(invalid(
                "events",
                "`events` is empty: give at least one event",
            ));
        }
        if items.len() > limits.max_batch {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "the batch has {} events, over the server's limit of {} a request",
                    items.len(),
                    limits.max_batch
                ),
            )
            .with_field("events"));
        }
        let mut calls = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let prefix = format!("events[{i}]");
            let fields = object(item, &prefix, &format!("`{prefix}`"))?;
            let mut event_id = None;
            let mut event = None;
            let mut seen: Vec<&str> = Vec::new();
            for (key, value) in &fields {
                let name = known(key, EVENT_FIELDS, &prefix, &seen)?;
                seen.push(name);
                let path = format!("{prefix}.{name}");
                match name {
                    "event_id" => event_id = Some(the_event_id(value, &path)?),
                    _ => event = Some(the_event(value, &path, limits)?),
                }
            }
            let event_id = event_id.ok_or_else(|| {
                missing(
                    &format!("{prefix}.event_id"),
                    "the event's id, the idempotency key",
                )
            })?;
            let event = event.ok_or_else(|| {
                missing(&format!("{prefix}.event"), "the event's fields, an object")
            })?;
            calls.push(EventCall { event_id, event });
        }
        events = Some(calls);
    }
    events.ok_or_else(|| {
        missing(
            "events",
            "an array of events, each with `event_id` and `event`",
        )
    })
}

/// The whole body as JSON: any syntax fault is `malformed_json`.
/// `POST /v1/lists/{list}`'s body as the service's call: the values as
/// their JSON texts (strings, numbers, booleans: as a `$list` record
/// holds them), `expires` in milliseconds.
pub(crate) fn list_change(list: String, body: &[u8]) -> Result<ListCall, ApiError> {
    let raw = parse(body)?;
    let entries = object(raw, "", "the request")?;
    let (mut add, mut remove, mut expires) = (None, None, None);
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &entries {
        let name = known(key, LIST_FIELDS, "", &seen)?;
        seen.push(name);
        match name {
            "expires" => expires = Some(expiry(value)?),
            "add" => add = Some(list_values(value, "add")?),
            _ => remove = Some(list_values(value, "remove")?),
        }
    }
    if add.is_none() && remove.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "a list change has `add` (with `expires` if they expire), `remove`, or both",
        ));
    }
    if expires.is_some() && add.is_none() {
        return Err(invalid("expires", "`expires` goes with `add`"));
    }
    let (add, remove) = (add.unwrap_or_default(), remove.unwrap_or_default());
    if add.len() + remove.len() > MAX_LIST_VALUES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "the change has {} values, over the server's limit of {MAX_LIST_VALUES} a request",
                add.len() + remove.len()
            ),
        ));
    }
    Ok(ListCall {
        list,
        add,
        remove,
        expires,
    })
}

/// A list change's values, each a string, a number or a boolean, as JSON
/// text.
fn list_values(raw: &RawValue, field: &str) -> Result<Vec<String>, ApiError> {
    let items: Vec<&RawValue> = match kind(raw) {
        Kind::Array => serde_json::from_str(raw.get()).map_err(|e| malformed(&e))?,
        other => return Err(wrong_type(field, "an array of values", other)),
    };
    if items.is_empty() {
        return Err(invalid(
            field,
            format!("`{field}` is empty: give at least one value, or leave it out"),
        ));
    }
    (items.into_iter().enumerate())
        .map(|(i, item)| match kind(item) {
            Kind::String | Kind::Number | Kind::Boolean => {
                // (as a `$list` record's value: its JSON text, a number
                // written as JSON writes it)
                let value: serde_json::Value =
                    serde_json::from_str(item.get()).map_err(|e| malformed(&e))?;
                Ok(value.to_string())
            }
            other => Err(wrong_type(
                &format!("{field}[{i}]"),
                "a string, a number or a boolean",
                other,
            )),
        })
        .collect()
}

/// `expires`: milliseconds since the epoch, or an RFC 3339 time.
fn expiry(raw: &RawValue) -> Result<i64, ApiError> {
    let bad = || {
        invalid(
            "expires",
            format!(
                "`expires` must be milliseconds since the epoch or an RFC 3339 time (2026-12-01T00:00:00Z), not {}",
                raw.get()
            ),
        )
    };
    match kind(raw) {
        Kind::Number => serde_json::from_str::<i64>(raw.get()).map_err(|_| bad()),
        Kind::String => {
            let text: String = serde_json::from_str(raw.get()).map_err(|e| malformed(&e))?;
            cepheid_decode::parse_rfc3339(&text).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

fn parse(body: &[u8]) -> Result<&RawValue, ApiError> {
    serde_json::from_slice::<&RawValue>(body).map_err(|e| malformed(&e))
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorCode::MalformedJson,
        format!("the body is not JSON: {e}"),
    )
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message).with_field(field)
}

fn missing(field: &str, what: &str) -> ApiError {
    invalid(field, format!("`{field}` is missing: {what}"))
}

fn wrong_type(field: &str, want: &str, got: Kind) -> ApiError {
    invalid(field, format!("`{field}` must be {want}, not {got}"))
}

/// What a JSON value is, from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    String,
    Number,
    Boolean,
    Null,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
            Kind::Null => "null",
        })
    }
}

fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'"') => Kind::String,
        Some(b't' | b'f') => Kind::Boolean,
        Some(b'n') => Kind::Null,
        _ => Kind::Number,
    }
}

/// An object's members in order, their values unparsed.
fn object<'a>(
    raw: &'a RawValue,
    field: &str,
    what: &str,
) -> Result<Vec<(String, &'a RawValue)>, ApiError> {
    let got = kind(raw);
    if got != Kind::Object {
        let message = format!("{what} must be a JSON object, not {got}");
        let e = ApiError::new(ErrorCode::InvalidRequest, message);
        return Err(if field.is_empty() {
            e
        } else {
            e.with_field(field)
        });
    }
    let Members(members) = serde_json::from_str(raw.get()).map_err(|e| malformed(&e))?;
    Ok(members)
}

/// A known field's name, or the error for an unknown or repeated one.
fn known<'k>(
    key: &str,
    fields: &'k [&'k str],
    prefix: &str,
    seen: &[&str],
) -> Result<&'k str, ApiError> {
    let path = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let Some(name) = fields.iter().copied().find(|f| *f == key) else {
        let field = path(key);
        let mut message = format!("unknown field `{field}`");
        if let Some(near) = nearest(key, fields) {
            message.push_str(&format!("; did you mean `{}`?", path(near)));
        } else {
            let list: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
            message.push_str(&format!(" (the fields are {})", list.join(", ")));
        }
        return Err(invalid(&field, message));
    };
    if seen.contains(&name) {
        let field = path(name);
        return Err(invalid(&field, format!("`{field}` is given twice")));
    }
    Ok(name)
}

/// The known field a misspelt one was meant to be: a prefix of it, or
/// within two edits.
fn nearest<'k>(key: &str, fields: &'k [&'k str]) -> Option<&'k str> {
    let key_lower = key.to_ascii_lowercase();
    fields
        .iter()
        .copied()
        .map(|f| {
            let d = if key_lower.len() >= 3
                && (f.starts_with(&key_lower) || key_lower.starts_with(f))
            {
                0
            } else {
                edits(&key_lower, f)
            };
            (d, f)
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

/// Levenshtein distance (short names only).
fn edits(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn string(raw: &RawValue, field: &str) -> Result<String, ApiError> {
    match kind(raw) {
        Kind::String => serde_json::from_str(raw.get()).map_err(|e| malformed(&e)),
        other => Err(wrong_type(field, "a string", other)),
    }
}

fn boolean(raw: &RawValue, field: &str) -> Result<bool, ApiError> {
    match kind(raw) {
        Kind::Boolean => Ok(raw.get() == "true"),
        other => Err(wrong_type(field, "a boolean", other)),
    }
}

/// A whole number of milliseconds, 0 or more (`5.0` is one, as JSON
/// Schema's `integer` says; a number past u64 is the longest deadline).
fn millis(raw: &RawValue, field: &str) -> Result<Duration, ApiError> {
    let got = kind(raw);
    if got != Kind::Number {
        return Err(wrong_type(field, "a whole number of milliseconds", got));
    }
    let text = raw.get();
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Duration::from_millis(text.parse().unwrap_or(u64::MAX)));
    }
    let value: f64 = text.parse().unwrap_or(f64::NAN);
    if value == 0.0 {
        return Ok(Duration::ZERO);
    }
    if value < 0.0 {
        return Err(invalid(
            field,
            format!("`{field}` must be 0 or more, not {text}"),
        ));
    }
    if value.fract() == 0.0 {
        // `as` saturates past u64::MAX.
        return Ok(Duration::from_millis(value as u64));
    }
    Err(invalid(
        field,
        format!("`{field}` must be a whole number of milliseconds, not {text}"),
    ))
}

fn the_event_id(raw: &RawValue, field: &str) -> Result<String, ApiError> {
    let id = string(raw, field)?;
    if id.is_empty() {
        return Err(invalid(
            field,
            format!("`{field}` is empty: give the event's id (1 to {MAX_EVENT_ID} characters)"),
        ));
    }
    let n = id.chars().count();
    if n > MAX_EVENT_ID {
        return Err(invalid(
            field,
            format!("`{field}` has {n} characters, more than {MAX_EVENT_ID}"),
        ));
    }
    Ok(id)
}

/// The event: an object, its fields at every depth at most the limit.
fn the_event(raw: &RawValue, field: &str, limits: Limits) -> Result<Box<RawValue>, ApiError> {
    let got = kind(raw);
    if got != Kind::Object {
        return Err(wrong_type(field, "an object (the event's fields)", got));
    }
    let count = Cell::new(0usize);
    let seed = Count {
        count: &count,
        limit: limits.max_fields,
    };
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let too_large = || {
        ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "`{field}` has more than {} fields (the server's limit, counted at every depth)",
                limits.max_fields
            ),
        )
        .with_field(field)
    };
    match seed.deserialize(&mut de) {
        Ok(()) => Ok(raw.to_owned()),
        Err(_) if count.get() > limits.max_fields => Err(too_large()),
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("`{field}` nests deeper than the server takes (127 levels)"),
        )
        .with_field(field)),
        Err(e) => Err(malformed(&e)),
    }
}

/// The members of an object, in order, their values unparsed.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    members.push((k, v));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Counts the values inside a value (members and items, at every depth),
/// stopping at the first past the limit.
#[derive(Clone, Copy)]
struct Count<'c> {
    count: &'c Cell<usize>,
    limit: usize,
}

impl Count<'_> {
    fn one<E: de::Error>(self) -> Result<(), E> {
        self.count.set(self.count.get() + 1);
        if self.count.get() > self.limit {
            return Err(E::custom("over the field limit"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Counted(self))?.is_some() {}
        Ok(())
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            map.next_value_seed(Counted(self))?;
        }
        Ok(())
    }
}

/// A value inside the event: counted, then its own insides.
struct Counted<'c>(Count<'c>);

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.one::<D::Error>()?;
        d.deserialize_any(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_fields: 5,
        max_batch: 2,
    };

    fn decide_err(body: &str) -> ApiError {
        decide(body.as_bytes(), LIMITS, Instant::now()).unwrap_err()
    }

    #[test]
    fn a_decide_request_keeps_its_event_byte_for_byte() {
        let body = r#"{"scene":"payment","event_id":"e1","event":{ "a" : 1.50, "b":[1,2] },"mode":"dry_run","deadline_ms":5.0,"explain":true}"#;
        let call = decide(body.as_bytes(), LIMITS, Instant::now()).unwrap();
        assert_eq!(call.event.get(), r#"{ "a" : 1.50, "b":[1,2] }"#);
        assert_eq!(call.mode, Mode::DryRun);
        assert_eq!(call.deadline, Some(Duration::from_millis(5)));
        assert!(call.explain);
    }

    #[test]
    fn faults_are_named_by_their_field() {
        let e = decide_err(r#"{"scene":"p","event_id":"e","event":{},"deadline":5}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidRequest, Some("deadline"))
        );
        assert!(
            e.message.contains("did you mean `deadline_ms`"),
            "{}",
            e.message
        );
        let e = decide_err(r#"{"scene":"p","event":{}}"#);
        assert_eq!(e.field.as_deref(), Some("event_id"));
        let e = decide_err(r#"{"scene":"p","event_id":"e","event":[]}"#);
        assert_eq!(e.field.as_deref(), Some("event"));
        let e = decide_err(r#"{"scene":"p","event_id":"e","event":{},"deadline_ms":-1}"#);
        assert_eq!(e.field.as_deref(), Some("deadline_ms"));
        let e = decide_err(r#"{"scene":"p","event_id":"e","event":{},"deadline_ms":1.5}"#);
        assert_eq!(e.field.as_deref(), Some("deadline_ms"));
        let e = decide_err(r#"{"scene":"p","scene":"q","event_id":"e","event":{}}"#);
        assert!(e.message.contains("twice"), "{}", e.message);
        let e = decide_err(r#"{"scene":"p","event_id":"e","event":{},"mode":"maybe"}"#);
        assert_eq!(e.field.as_deref(), Some("mode"));
        let e = decide_err(r#"["scene"]"#);
        assert_eq!((e.code, e.field), (ErrorCode::InvalidRequest, None));
    }

    #[test]
    fn malformed_json_says_where() {
        let e = decide_err("{\"scene\":\n\"p\",}");
        assert_eq!(e.code, ErrorCode::MalformedJson);
        assert!(e.message.contains("line 2 column 5"), "{}", e.message);
    }

    #[test]
    fn fields_are_counted_at_every_depth() {
        let ok = r#"{"scene":"p","event_id":"e","event":{"a":{"b":[1,2]},"c":3}}"#;
        assert!(decide(ok.as_bytes(), LIMITS, Instant::now()).is_ok());
        let e = decide_err(r#"{"scene":"p","event_id":"e","event":{"a":{"b":[1,2,3]},"c":3}}"#);
        assert_eq!((e.code, e.status), (ErrorCode::TooLarge, 413));
        let deep = format!(
            r#"{{"scene":"p","event_id":"e","event":{}1{}}}"#,
            "{\"a\":".repeat(200),
            "}".repeat(200)
        );
        let e = decide(
            deep.as_bytes(),
            Limits {
                max_fields: 1000,
                max_batch: 1,
            },
            Instant::now(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::TooLarge, "{}", e.message);
    }

    #[test]
    fn batches_are_checked_item_by_item() {
        let e = events(
            br#"{"events":[{"event_id":"a","event":{}},{"event_id":"","event":{}}]}"#,
            LIMITS,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("events[1].event_id"));
        let e = events(br#"{"events":[]}"#, LIMITS).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("events"));
        let e = events(br#"{"events":[{"event_id":"a","event":{}},{"event_id":"b","event":{}},{"event_id":"c","event":{}}]}"#, LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooLarge);
        let calls = events(br#"{"events":[{"event":{"x":1},"event_id":"a"}]}"#, LIMITS).unwrap();
        assert_eq!(calls[0].event.get(), r#"{"x":1}"#);
    }
}
