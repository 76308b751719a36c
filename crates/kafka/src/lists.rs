//! A record of a list's topic (`docs/kafka.md`, "Lists from topics") as
//! the `$list` record it means: the key is the entry, a null value (a
//! tombstone) removes it, an empty value or `{"expires": T}` adds it.

use cepheid_decode::parse_rfc3339;
use serde_json::{json, Map, Value};

use crate::source::KafkaRecord;

/// The `$list` record of `list` that `record` means, as JSON text, or why
/// it is no entry.
///
/// - The key is the entry, UTF-8 text typed as the JSON value it would be
///   (as a CSV cell of a list file: `42` a number, `00042`, `+7` and
///   `10.0.0.1` strings, `true` a boolean), or a JSON string (`"42"`,
///   quoted: the string). A record without a key, or with an empty one
///   or one that is not UTF-8, is no entry.
/// - No value (a tombstone): the entry is removed.
/// - An empty value: added, with the list's own `for` if it has one.
/// - A JSON object with `expires` (integer milliseconds or an RFC 3339
///   time, or null) and nothing else: added, expiring then. Anything
///   else is no entry.
pub fn change(list: &str, record: &KafkaRecord) -> Result<Vec<u8>, String> {
    let entry = entry(record.key.as_deref())?;
    let change = match record.payload.as_deref() {
        None => json!({"$list": list, "remove": entry}),
        Some([]) => json!({"$list": list, "add": entry}),
        Some(value) => {
            let expires = expires(value)?;
            json!({"$list": list, "add": entry, "expires": expires})
        }
    };
    Ok(change.to_string().into_bytes())
}

/// The entry a key gives.
fn entry(key: Option<&[u8]>) -> Result<Value, String> {
    let key = key.ok_or("a list's record has its entry as its key: this one has no key")?;
    let text = std::str::from_utf8(key).map_err(|_| "its key is not UTF-8 text".to_string())?;
    if text.is_empty() {
        return Err("its key is empty".to_string());
    }
    Ok(match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::String(_)) if text.starts_with('"') => v,
        Ok(v @ (Value::Number(_) | Value::Bool(_))) if !text.starts_with(['+', '.']) => v,
        _ => Value::String(text.to_string()),
    })
}

/// The expiry a value gives (`null` for none).
fn expires(value: &[u8]) -> Result<Value, String> {
    let wrong = "its value is not empty (add), absent (remove) or {\"expires\": T}";
    let mut object: Map<String, Value> =
        serde_json::from_slice(value).map_err(|_| wrong.to_string())?;
    let expires = object.remove("expires").unwrap_or(Value::Null);
    if let Some(key) = object.keys().next() {
        return Err(format!(
            "its value has `expires` only (not `{key}`): {{\"expires\": T}}"
        ));
    }
    let time = |text: &str| text.parse::<i64>().is_ok() || parse_rfc3339(text).is_ok();
    match &expires {
        Value::Null => {}
        Value::Number(n) if n.as_i64().is_some() => {}
        Value::String(text) if time(text) => {}
        _ => {
            return Err(format!(
                "its `expires` ({expires}) is not integer milliseconds or an RFC 3339 time"
            ))
        }
    }
    Ok(expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key or a value of a record (`None`: none).
    type Bytes = Option<&'static [u8]>;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> KafkaRecord {
        KafkaRecord {
            topic: "blocked".into(),
            partition: 0,
            offset: 7,
            split: 1,
            key: key.map(<[u8]>::to_vec),
            payload: value.map(<[u8]>::to_vec),
            timestamp: Some(1000),
        }
    }

    fn text(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<String, String> {
        change("ips", &record(key, value)).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn a_key_is_an_entry_a_null_value_removes_it_and_an_object_says_when_it_expires() {
        let cases: [(&[u8], Bytes, &str); 8] = [
            (
                b"10.0.0.1",
                Some(b""),
                r#"{"$list":"ips","add":"10.0.0.1"}"#,
            ),
            (b"10.0.0.1", None, r#"{"$list":"ips","remove":"10.0.0.1"}"#),
            (b"42", Some(b""), r#"{"$list":"ips","add":42}"#),
            (b"00042", Some(b""), r#"{"$list":"ips","add":"00042"}"#),
            (b"\"42\"", Some(b""), r#"{"$list":"ips","add":"42"}"#),
            (b"true", None, r#"{"$list":"ips","remove":true}"#),
            (
                b"a",
                Some(br#"{"expires": 5000}"#),
                r#"{"$list":"ips","add":"a","expires":5000}"#,
            ),
            (
                b"a",
                Some(br#"{"expires": "2026-01-01T00:00:00Z"}"#),
                r#"{"$list":"ips","add":"a","expires":"2026-01-01T00:00:00Z"}"#,
            ),
        ];
        for (key, value, want) in cases {
            let got = text(Some(key), value).unwrap();
            let (got, want): (Value, Value) = (
                serde_json::from_str(&got).unwrap(),
                serde_json::from_str(want).unwrap(),
            );
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(key));
        }
        // (no expiry said: null, which the `$list` record takes as none)
        assert!(text(Some(b"a"), Some(b"{}"))
            .unwrap()
            .contains("\"expires\":null"));
    }

    #[test]
    fn a_record_that_is_no_entry_says_why() {
        let cases: [(Bytes, Bytes, &str); 7] = [
            (None, Some(b""), "no key"),
            (Some(b""), Some(b""), "key is empty"),
            (Some(b"\xff\xfe"), Some(b""), "not UTF-8"),
            (Some(b"a"), Some(b"yes"), "not empty (add)"),
            (Some(b"a"), Some(b"[1]"), "not empty (add)"),
            (Some(b"a"), Some(br#"{"until": 5}"#), "not `until`"),
            (Some(b"a"), Some(br#"{"expires": "soon"}"#), "not integer"),
        ];
        for (key, value, want) in cases {
            let why = text(key, value).unwrap_err();
            assert!(why.contains(want), "{why}");
        }
    }
}
