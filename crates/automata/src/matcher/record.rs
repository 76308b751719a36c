//! [`Output`]'s serde: the output record of `cli.md`, field for field.
//!
//! ```text
//! {"kind":"match","pattern":"p","key":{"user_id":"u1"},"start":1,"end":3,"events":{"fail":[{..},{..}]},"select":{..}}
//! {"kind":"timeout","pattern":"p","key":{..},"start":5,"expired_at":905,"events":{"created":[{..}]}}
//! {"kind":"late","event":{..}}
//! ```
//!
//! `"version"` follows `"pattern"` when the pattern's name was replaced
//! during the run ([`Match::versioned`]), then `"branch"` for a pattern with
//! alternation; `"select"` is written for a match whose pattern has a
//! `select` section, then `"rule"` (the attributes and the version) for a
//! pattern with attributes and `"reads"` for one whose conditions read
//! lists or indicators. The command writes the same
//! records with its own writer (`cepheid_runtime::jsonl::JsonLines`, which
//! never builds an owned match); the tests check that both agree.
//!
//! The form is a record for people and tools that read JSON: it is meant
//! for self-describing formats. Reading it back needs one (`serde_json`),
//! since which fields a record has depends on its kind.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::view::{Match, Output};
use crate::primitives::Timestamp;
use crate::value::Value;

impl<E: Serialize> Serialize for Output<E> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Output::Match(m) => write_match(s, "match", m, None),
            Output::Timeout {
                partial,
                expired_at,
            } => write_match(s, "timeout", partial, Some(*expired_at)),
            Output::Dropped { partial } => write_match(s, "dropped", partial, None),
            Output::Late { event, .. } => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("kind", "late")?;
                map.serialize_entry("event", event)?;
                map.end()
            }
        }
    }
}

/// One match's record: `expired_at` for a timeout, else `end`; `select`
/// only for a complete match.
fn write_match<S: Serializer, E: Serialize>(
    s: S,
    kind: &str,
    m: &Match<E>,
    expired_at: Option<Timestamp>,
) -> Result<S::Ok, S::Error> {
    let select = kind == "match" && !m.select.is_empty();
    let rule = !m.attributes.is_empty();
    let len = 6
        + usize::from(m.versioned)
        + usize::from(m.branch.is_some())
        + usize::from(select)
        + usize::from(rule)
        + usize::from(!m.reads.is_empty());
    let mut map = s.serialize_map(Some(len))?;
    map.serialize_entry("kind", kind)?;
    map.serialize_entry("pattern", &m.pattern)?;
    if m.versioned {
        map.serialize_entry("version", &m.version)?;
    }
    if let Some(branch) = &m.branch {
        map.serialize_entry("branch", branch)?;
    }
    map.serialize_entry("key", &Pairs(&m.key_fields, &m.key))?;
    map.serialize_entry("start", &m.start)?;
    match expired_at {
        Some(t) => map.serialize_entry("expired_at", &t)?,
        None => map.serialize_entry("end", &m.end)?,
    }
    map.serialize_entry("events", &Stages(&m.stages))?;
    if select {
        map.serialize_entry("select", &Named(&m.select))?;
    }
    if rule {
        map.serialize_entry("rule", &Rule(&m.attributes, m.version))?;
    }
    if !m.reads.is_empty() {
        map.serialize_entry("reads", &Named(&m.reads))?;
    }
    map.end()
}

/// A record's `"rule"`: the attributes set, then the pattern's version.
struct Rule<'a>(&'a crate::lookup::Attributes, u32);

impl Serialize for Rule<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut map = s.serialize_map(None)?;
        if let Some(score) = &a.score {
            map.serialize_entry("score", score)?;
        }
        if let Some(level) = &a.level {
            map.serialize_entry("level", &**level)?;
        }
        if let Some(action) = &a.action {
            map.serialize_entry("action", &**action)?;
        }
        if !a.tags.is_empty() {
            let tags: Vec<&str> = a.tags.iter().map(|t| &**t).collect();
            map.serialize_entry("tags", &tags)?;
        }
        map.serialize_entry("version", &self.1)?;
        map.end()
    }
}

/// A record's `"rule"` read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFields {
    score: Option<Value>,
    level: Option<String>,
    action: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    version: Option<u32>,
}

/// Names and values as one JSON object, in order.
struct Pairs<'a>(&'a [String], &'a [Value]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.1.len()))?;
        for (name, value) in self.0.iter().zip(self.1) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// `(name, value)` pairs as one JSON object, in order.
struct Named<'a, V>(&'a [(String, V)]);

impl<V: Serialize> Serialize for Named<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Each stage's events under its name.
struct Stages<'a, E>(&'a [(String, Vec<E>)]);

impl<E: Serialize> Serialize for Stages<'_, E> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Named(self.0).serialize(s)
    }
}

/// A JSON object read in order, as `(name, value)` pairs.
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<V>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((name, value)) = map.next_entry::<String, V>()? {
                    pairs.push((name, value));
                }
                Ok(Ordered(pairs))
            }
        }
        d.deserialize_map(Pairs(PhantomData))
    }
}

/// Every field a record may have; which ones it must have depends on its
/// kind.
#[derive(Deserialize)]
#[serde(bound(deserialize = "E: Deserialize<'de>"))]
#[serde(deny_unknown_fields)]
struct Fields<E> {
    kind: String,
    pattern: Option<String>,
    version: Option<u32>,
    key: Option<Ordered<Value>>,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    expired_at: Option<Timestamp>,
    events: Option<Ordered<Vec<E>>>,
    select: Option<Ordered<Value>>,
    event: Option<E>,
    branch: Option<Vec<Option<u32>>>,
    rule: Option<RuleFields>,
    reads: Option<Ordered<Value>>,
}

impl<'de, E: Deserialize<'de>> Deserialize<'de> for Output<E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = Fields::<E>::deserialize(d)?;
        let need = |what: &'static str| de::Error::missing_field(what);
        if f.kind == "late" {
            return Ok(Output::Late {
                ts: Timestamp::MIN,
                event: f.event.ok_or_else(|| need("event"))?,
            });
        }
        let start = f.start.ok_or_else(|| need("start"))?;
        let (key_fields, key) = f.key.ok_or_else(|| need("key"))?.0.into_iter().unzip();
        let mut m = Match {
            pattern: f.pattern.ok_or_else(|| need("pattern"))?,
            key_fields,
            key,
            start,
            end: start,
            stages: f.events.ok_or_else(|| need("events"))?.0,
            select: f.select.map(|s| s.0).unwrap_or_default(),
            version: (f.version)
                .or_else(|| f.rule.as_ref().and_then(|r| r.version))
                .unwrap_or(1),
            versioned: f.version.is_some(),
            branch: f.branch,
            attributes: f
                .rule
                .map_or_else(Default::default, |r| crate::lookup::Attributes {
                    score: r.score,
                    level: r.level.map(Into::into),
                    action: r.action.map(Into::into),
                    tags: r.tags.into_iter().map(Into::into).collect(),
                }),
            reads: f.reads.map(|r| r.0).unwrap_or_default(),
        };
        match f.kind.as_str() {
            "match" | "dropped" => {
                m.end = f.end.ok_or_else(|| need("end"))?;
                Ok(if f.kind == "match" {
                    Output::Match(m)
                } else {
                    Output::Dropped { partial: m }
                })
            }
            "timeout" => Ok(Output::Timeout {
                partial: m,
                expired_at: f.expired_at.ok_or_else(|| need("expired_at"))?,
            }),
            other => Err(de::Error::unknown_variant(
                other,
                &["match", "timeout", "late", "dropped"],
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Ev {
        id: u32,
    }

    fn m(versioned: bool, select: bool) -> Match<Ev> {
        Match {
            pattern: "p".into(),
            key_fields: vec!["user.id".into(), "k".into()],
            key: vec![Value::Int(7), Value::from("x")],
            start: 1,
            end: 3,
            stages: vec![
                ("a".into(), vec![Ev { id: 1 }, Ev { id: 2 }]),
                ("b".into(), vec![Ev { id: 3 }]),
            ],
            select: if select {
                vec![("n".into(), Value::Int(2))]
            } else {
                Vec::new()
            },
            version: if versioned { 2 } else { 1 },
            versioned,
            branch: None,
            attributes: crate::lookup::Attributes::default(),
            reads: Vec::new(),
        }
    }

    /// A record of a pattern with alternation, attributes and reads: its
    /// `branch`, `rule` and `reads` where the command writes them, read
    /// back whole.
    #[test]
    fn branches_rules_and_reads_read_back() {
        let mut rich = m(false, true);
        rich.branch = Some(vec![Some(2), None]);
        rich.attributes = crate::lookup::Attributes {
            score: Some(Value::Int(80)),
            level: Some("high".into()),
            action: Some("block".into()),
            tags: vec!["ato".into(), "login".into()],
        };
        rich.reads = vec![("n(user_id)".into(), Value::Int(3))];
        let text = serde_json::to_string(&Output::Match(rich.clone())).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"match","pattern":"p","branch":[2,null],"key":{"user.id":7,"k":"x"},"start":1,"end":3,"events":{"a":[{"id":1},{"id":2}],"b":[{"id":3}]},"select":{"n":2},"rule":{"score":80,"level":"high","action":"block","tags":["ato","login"],"version":1},"reads":{"n(user_id)":3}}"#
        );
        assert_eq!(
            serde_json::from_str::<Output<Ev>>(&text).unwrap(),
            Output::Match(rich)
        );
    }

    /// Typed events: what a record holds comes back whole.
    #[test]
    fn typed_outputs_read_back_equal() {
        for versioned in [false, true] {
            let outputs = [
                Output::Match(m(versioned, true)),
                Output::Match(m(versioned, false)),
                Output::Dropped {
                    partial: m(versioned, false),
                },
            ];
            for o in outputs {
                let text = serde_json::to_string(&o).unwrap();
                assert_eq!(
                    serde_json::from_str::<Output<Ev>>(&text).unwrap(),
                    o,
                    "{text}"
                );
            }
        }
        let text = serde_json::to_string(&Output::Match(m(true, true))).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"match","pattern":"p","version":2,"key":{"user.id":7,"k":"x"},"start":1,"end":3,"events":{"a":[{"id":1},{"id":2}],"b":[{"id":3}]},"select":{"n":2}}"#
        );
    }

    /// What a timeout's and a late event's record leave out.
    #[test]
    fn timeouts_and_late_events_read_back_as_documented() {
        let timeout = Output::Timeout {
            partial: m(false, true),
            expired_at: 9,
        };
        let text = serde_json::to_string(&timeout).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"timeout","pattern":"p","key":{"user.id":7,"k":"x"},"start":1,"expired_at":9,"events":{"a":[{"id":1},{"id":2}],"b":[{"id":3}]}}"#
        );
        let mut expected = m(false, false);
        expected.end = expected.start;
        assert_eq!(
            serde_json::from_str::<Output<Ev>>(&text).unwrap(),
            Output::Timeout {
                partial: expected,
                expired_at: 9
            }
        );
        let late = Output::Late {
            ts: 5,
            event: Ev { id: 4 },
        };
        let text = serde_json::to_string(&late).unwrap();
        assert_eq!(text, r#"{"kind":"late","event":{"id":4}}"#);
        assert_eq!(
            serde_json::from_str::<Output<Ev>>(&text).unwrap(),
            Output::Late {
                ts: Timestamp::MIN,
                event: Ev { id: 4 }
            }
        );
    }
}
