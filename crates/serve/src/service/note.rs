//! The note a request leaves with the engine ([`Request::note`]): what the
//! service answered beyond the decisions, kept with the request's id so
//! that a repeat, live or after a restart, gets the same answer, and so
//! that a repeat with other fields is told apart from a retry.
//!
//! Made from the log's entry alone (its seq, its flags, its fields), so a
//! replay makes the same note. Bytes, little endian: the seq (`u64`), the
//! flags (`u8`: 1 degraded, 2 shadow shed, 4 a decision request, 8 a dry
//! run), the rule set's version (`u64`), the number of fingerprints
//! (`u32`), then each: the name's length
//! (`u16`), the name, the value's hash (`u64`). The fingerprints are the
//! scene (named `scene`) and each field of the event (`event.NAME`), a
//! value's hash FNV-1a over its JSON text with the whitespace between
//! tokens left out (`{"a": 1}` and `{"a":1}` alike), so the hash is the
//! same on every build and every run.
//!
//! [`Request::note`]: cepheid_engine::engine::Request::note

use std::sync::Arc;

use serde_json::value::RawValue;

/// What the note says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The log's sequence number of the request (the decision id's).
    pub seq: u64,
    /// Answered with the scene's fallback at admission.
    pub degraded: bool,
    /// Its shadow rules were not run.
    pub shadow_shed: bool,
    /// A decision request (else an event recorded).
    pub decide: bool,
    /// A dry run (never logged).
    pub dry_run: bool,
    /// The version of the rule set in force when it was taken: 1, and 1
    /// more for each change of rules before it in the log.
    pub rules_version: u64,
    /// The scene's and each field's hash, by name, in the event's order.
    pub prints: Vec<(String, u64)>,
}

impl Note {
    /// The note of a request with `scene` and `event` (a JSON object).
    pub fn of(seq: u64, scene: Option<&str>, event: &RawValue) -> Note {
        let mut prints = vec![("scene".to_string(), scene.map_or(0, |s| fnv(s.as_bytes())))];
        if let Ok(Pairs(fields)) = serde_json::from_str::<Pairs>(event.get()) {
            for (name, value) in fields {
                prints.push((format!("event.{name}"), hash_json(value.get())));
            }
        }
        Note {
            seq,
            degraded: false,
            shadow_shed: false,
            decide: scene.is_some(),
            dry_run: false,
            rules_version: 1,
            prints,
        }
    }

    /// Its bytes.
    pub fn encode(&self) -> Arc<[u8]> {
        let mut out = Vec::with_capacity(16 + self.prints.len() * 24);
        out.extend_from_slice(&self.seq.to_le_bytes());
        let flags = u8::from(self.degraded)
            | u8::from(self.shadow_shed) << 1
            | u8::from(self.decide) << 2
            | u8::from(self.dry_run) << 3;
        out.push(flags);
        out.extend_from_slice(&self.rules_version.to_le_bytes());
        out.extend_from_slice(&(self.prints.len() as u32).to_le_bytes());
        for (name, hash) in &self.prints {
            let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name);
            out.extend_from_slice(&hash.to_le_bytes());
        }
        out.into()
    }

    /// The note `bytes` say (`None`: not a note of this service's).
    pub fn decode(bytes: &[u8]) -> Option<Note> {
        let mut at = 0usize;
        let mut take = |n: usize| {
            let got = bytes.get(at..at + n)?;
            at += n;
            Some(got)
        };
        let seq = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let flags = take(1)?[0];
        let rules_version = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let n = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let mut prints = Vec::new();
        for _ in 0..n {
            let len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
            let name = String::from_utf8(take(len)?.to_vec()).ok()?;
            let hash = u64::from_le_bytes(take(8)?.try_into().ok()?);
            prints.push((name, hash));
        }
        Some(Note {
            seq,
            degraded: flags & 1 != 0,
            shadow_shed: flags & 2 != 0,
            decide: flags & 4 != 0,
            dry_run: flags & 8 != 0,
            rules_version,
            prints,
        })
    }

    /// The first thing `other` (a repeat's note) gives otherwise than
    /// this one: the scene, a field that differs, is missing, or is new.
    pub fn differs(&self, other: &Note) -> Option<String> {
        for (name, hash) in &self.prints {
            match other.prints.iter().find(|(n, _)| n == name) {
                Some((_, h)) if h == hash => {}
                _ => return Some(name.clone()),
            }
        }
        (other.prints.iter())
            .find(|(n, _)| !self.prints.iter().any(|(m, _)| m == n))
            .map(|(n, _)| n.clone())
    }
}

/// An object's members in their order (a map would sort them).
pub(crate) struct Pairs(pub(crate) Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    pairs.push((k, v));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// FNV-1a over `json` without the whitespace between its tokens.
fn hash_json(json: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b.is_ascii_whitespace() {
            continue;
        }
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// FNV-1a of `bytes`.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn a_note_round_trips_and_names_what_a_repeat_changed() {
        let mut note = Note::of(
            42,
            Some("payment"),
            &raw(r#"{"amount": 120, "card": "c1", "x": {"a": [1, 2]}}"#),
        );
        note.degraded = true;
        let back = Note::decode(&note.encode()).unwrap();
        assert_eq!(back, note);
        let same = Note::of(
            43,
            Some("payment"),
            &raw(r#"{"amount":120,"card":"c1","x":{"a":[1,2]}}"#),
        );
        assert_eq!(note.differs(&same), None);
        let other = Note::of(
            43,
            Some("payment"),
            &raw(r#"{"amount": 125, "card": "c1", "x": {"a": [1, 2]}}"#),
        );
        assert_eq!(note.differs(&other).as_deref(), Some("event.amount"));
        let fewer = Note::of(
            43,
            Some("payment"),
            &raw(r#"{"amount": 120, "x": {"a": [1, 2]}}"#),
        );
        assert_eq!(note.differs(&fewer).as_deref(), Some("event.card"));
        let more = Note::of(
            43,
            Some("payment"),
            &raw(r#"{"amount": 120, "card": "c1", "x": {"a": [1, 2]}, "y": 1}"#),
        );
        assert_eq!(note.differs(&more).as_deref(), Some("event.y"));
        let scene = Note::of(
            43,
            Some("coupon"),
            &raw(r#"{"amount": 120, "card": "c1", "x": {"a": [1, 2]}}"#),
        );
        assert_eq!(note.differs(&scene).as_deref(), Some("scene"));
        // (a space inside a string is the value's)
        let a = Note::of(1, None, &raw(r#"{"s": "a b"}"#));
        let b = Note::of(1, None, &raw(r#"{"s": "ab"}"#));
        assert_eq!(a.differs(&b).as_deref(), Some("event.s"));
        assert!(Note::decode(b"short").is_none());
    }
}
