//! Every schema of `docs/api/openapi.yaml` against its type: the same
//! property names, the same required ones (a required property left out
//! fails to deserialize, an optional one does not), the same enum values
//! (the variants serde knows, probed from the type, equal the document's
//! `enum`), and the same closedness (`additionalProperties: false` is a
//! type that refuses an unknown field; an open object keeps it).
//!
//! An instance of each schema is made from the document itself (every
//! property given), so a change of either side fails here.

use std::collections::BTreeSet;
use std::fmt;

use cepheid_api::*;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::Serialize;
use serde_json::{json, Value};
use yaml_rust2::{Yaml, YamlLoader};

fn document() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("reads docs/api/openapi.yaml");
    YamlLoader::load_from_str(&text)
        .expect("the API document is YAML")
        .remove(0)
}

fn get<'a>(y: &'a Yaml, key: &str) -> &'a Yaml {
    &y[key]
}

/// The schema `#/components/schemas/NAME`.
fn schema<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    let s = get(get(get(doc, "components"), "schemas"), name);
    assert!(!s.is_badvalue(), "the document has no schema {name}");
    s
}

/// `s` with its `$ref` followed.
fn resolve<'a>(doc: &'a Yaml, s: &'a Yaml) -> &'a Yaml {
    match s["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("a reference outside the schemas: {r}"));
            resolve(doc, schema(doc, name))
        }
        None => s,
    }
}

fn properties(s: &Yaml) -> Vec<(String, &Yaml)> {
    match &s["properties"] {
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| (k.as_str().expect("a property's name").to_string(), v))
            .collect(),
        _ => Vec::new(),
    }
}

fn required(s: &Yaml) -> BTreeSet<String> {
    match &s["required"] {
        Yaml::Array(a) => a
            .iter()
            .map(|k| k.as_str().expect("a name").to_string())
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn enum_values(s: &Yaml) -> Option<BTreeSet<String>> {
    match &s["enum"] {
        Yaml::Array(a) => Some(
            a.iter()
                .map(|v| v.as_str().expect("a string enum").to_string())
                .collect(),
        ),
        _ => None,
    }
}

/// `additionalProperties: false`.
fn closed(s: &Yaml) -> bool {
    s["additionalProperties"] == Yaml::Boolean(false)
}

/// An instance of `s` with every property given.
fn instance(doc: &Yaml, s: &Yaml) -> Value {
    let s = resolve(doc, s);
    if let Some(values) = enum_values(s) {
        return json!(values.into_iter().next().unwrap());
    }
    // (one of several: the first)
    if let Yaml::Array(alternatives) = &s["oneOf"] {
        return instance(doc, &alternatives[0]);
    }
    match s["type"].as_str() {
        Some("object") => {
            let props = properties(s);
            if props.is_empty() {
                // An open object of any fields (Event, Reads).
                return json!({"amount": 120, "card": "c1"});
            }
            let mut object = serde_json::Map::new();
            for (name, p) in props {
                object.insert(name, instance(doc, p));
            }
            Value::Object(object)
        }
        Some("array") => json!([instance(doc, &s["items"])]),
        Some("string") => json!("x"),
        Some("integer") => json!(s["minimum"].as_i64().unwrap_or(0).max(1)),
        Some("number") => json!(70),
        Some("boolean") => json!(true),
        other => panic!("a schema of type {other:?}"),
    }
}

/// The struct's field names and the enum's variants serde knows, probed
/// from `T`'s `Deserialize` (a deserializer that only listens).
#[derive(Default)]
struct Probe {
    fields: Option<&'static [&'static str]>,
    variants: Option<&'static [&'static str]>,
}

#[derive(Debug)]
struct Probed;

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed
    }
}

impl<'de> de::Deserializer<'de> for &mut Probe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        self.fields = Some(fields);
        Err(Probed)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        self.variants = Some(variants);
        Err(Probed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

fn probe<T: DeserializeOwned>() -> Probe {
    let mut p = Probe::default();
    let _ = T::deserialize(&mut p);
    p
}

/// The checks of one object schema `s` against `T`; `at` names it.
fn object<T: DeserializeOwned + Serialize>(doc: &Yaml, at: &str, s: &Yaml) {
    let s = resolve(doc, s);
    assert_eq!(s["type"].as_str(), Some("object"), "{at} is an object");
    let names: BTreeSet<String> = properties(s).into_iter().map(|(n, _)| n).collect();
    let full = instance(doc, s);
    let read = |v: &Value| serde_json::from_value::<T>(v.clone());

    // Every property given: the type reads it, and writes every one back
    // (no property unknown to the type, none it lacks).
    let t = read(&full).unwrap_or_else(|e| panic!("{at}: the full instance {full}: {e}"));
    let written = serde_json::to_value(&t).unwrap();
    let written_names: BTreeSet<String> = written.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        written_names, names,
        "{at}: the type writes the document's properties"
    );
    // The names serde reads, when the type is a plain struct (a struct
    // that keeps unknown fields is read as a map: its names are the
    // written ones above).
    if let Some(fields) = probe::<T>().fields {
        let fields: BTreeSet<String> = fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(fields, names, "{at}: the type's fields are the properties");
    }

    // Required: left out, it fails; optional: left out, it reads.
    let required = required(s);
    assert!(required.is_subset(&names), "{at}: required {required:?}");
    for name in &names {
        let mut less = full.clone();
        less.as_object_mut().unwrap().remove(name);
        let result = read(&less);
        if required.contains(name) {
            assert!(
                result.is_err(),
                "{at}: `{name}` is required, the type reads it without"
            );
        } else {
            let t = result.unwrap_or_else(|e| panic!("{at}: `{name}` is optional: {e}"));
            let back = serde_json::to_value(&t).unwrap();
            assert!(
                back.get(name).is_none(),
                "{at}: `{name}` left out is written back as {:?}",
                back.get(name)
            );
        }
    }

    // Closed or open.
    let mut more = full.clone();
    more.as_object_mut()
        .unwrap()
        .insert("zz_not_in_the_document".into(), json!(1));
    match (closed(s), read(&more)) {
        (true, Ok(_)) => panic!("{at} is closed: the type reads an unknown field"),
        (false, Err(e)) => panic!("{at} is open: the type refuses an unknown field: {e}"),
        (false, Ok(t)) => {
            let back = serde_json::to_value(&t).unwrap();
            assert_eq!(back["zz_not_in_the_document"], json!(1), "{at} keeps it");
        }
        (true, Err(_)) => {}
    }
}

/// The enum `s` (a schema or a property) against `T`.
fn enumeration<T: DeserializeOwned + Serialize>(doc: &Yaml, at: &str, s: &Yaml) {
    let s = resolve(doc, s);
    let values = enum_values(s).unwrap_or_else(|| panic!("{at} has an enum"));
    let variants: BTreeSet<String> = probe::<T>()
        .variants
        .unwrap_or_else(|| panic!("{at}: the type is an enum"))
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(variants, values, "{at}: the enum's values");
    for v in &values {
        let t: T = serde_json::from_value(json!(v)).unwrap_or_else(|e| panic!("{at}: {v}: {e}"));
        assert_eq!(serde_json::to_value(&t).unwrap(), json!(v), "{at}: {v}");
    }
    assert!(serde_json::from_value::<T>(json!("zz_not_a_value")).is_err());
}

/// The document's object schemas, each with its type, and its enums. A
/// schema added to the document and not here fails
/// `every_schema_is_checked`.
#[test]
fn every_schema_matches_its_type() {
    let doc = document();
    let s = |name: &str| schema(&doc, name);
    object::<DecideRequest>(&doc, "DecideRequest", s("DecideRequest"));
    enumeration::<Mode>(
        &doc,
        "DecideRequest.mode",
        &s("DecideRequest")["properties"]["mode"],
    );
    object::<EventsRequest>(&doc, "EventsRequest", s("EventsRequest"));
    object::<EventItem>(
        &doc,
        "EventsRequest.events[]",
        &s("EventsRequest")["properties"]["events"]["items"],
    );
    object::<EventsRecorded>(&doc, "EventsRecorded", s("EventsRecorded"));
    object::<ListChange>(&doc, "ListChange", s("ListChange"));
    object::<ListChanged>(&doc, "ListChanged", s("ListChanged"));
    object::<FiredRule>(&doc, "FiredRule", s("FiredRule"));
    object::<Decision>(&doc, "Decision", s("Decision"));
    let decision = &s("Decision")["properties"];
    enumeration::<DegradedWhy>(&doc, "Decision.degraded_why", &decision["degraded_why"]);
    enumeration::<Mode>(&doc, "Decision.mode", &decision["mode"]);
    object::<Explained>(
        &doc,
        "Decision.explanation[]",
        &decision["explanation"]["items"],
    );
    object::<Scene>(&doc, "Scene", s("Scene"));
    enumeration::<Hit>(&doc, "Scene.hit", &s("Scene")["properties"]["hit"]);
    object::<Scenes>(&doc, "Scenes", s("Scenes"));
    object::<Health>(&doc, "Health", s("Health"));
    enumeration::<HealthStatus>(&doc, "Health.status", &s("Health")["properties"]["status"]);
    object::<Readiness>(&doc, "Readiness", s("Readiness"));
    object::<ErrorBody>(&doc, "Error", s("Error"));
    object::<ErrorDetail>(&doc, "Error.error", &s("Error")["properties"]["error"]);
    enumeration::<ErrorCode>(
        &doc,
        "Error.error.code",
        &s("Error")["properties"]["error"]["properties"]["code"],
    );
}

/// The schemas above, and those that are no type of their own: a schema
/// the document gains fails here until it has its type and its checks.
#[test]
fn every_schema_is_checked() {
    let doc = document();
    let names: BTreeSet<String> = match &doc["components"]["schemas"] {
        Yaml::Hash(h) => h.keys().map(|k| k.as_str().unwrap().to_string()).collect(),
        _ => panic!("the document has schemas"),
    };
    let checked = [
        "DecideRequest",
        "EventsRequest",
        "EventsRecorded",
        "ListChange",
        "ListChanged",
        "FiredRule",
        "Decision",
        "Scene",
        "Scenes",
        "Health",
        "Readiness",
        "Error",
        // Not types of their own: a string (EventId), an integer
        // (RulesVersion), open objects (`Event`, `Reads`: JSON maps), a
        // value of one of three types (`ListValue`: a JSON value).
        "ListValue",
        "EventId",
        "RulesVersion",
        "Event",
        "Reads",
    ];
    let checked: BTreeSet<String> = checked.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        names, checked,
        "the document's schemas and the checked ones"
    );
    // The two open objects are open maps in the document too.
    for open in ["Event", "Reads"] {
        let s = schema(&doc, open);
        assert_eq!(s["additionalProperties"], Yaml::Boolean(true), "{open}");
        assert!(properties(s).is_empty(), "{open}");
    }
}

/// The document's examples of answers read as their types (the numbers
/// kept as written).
#[test]
fn the_documents_examples_read() {
    let doc = document();
    let example = |path: &[&str], name: &str| -> Value {
        let mut y = &doc["paths"];
        for p in path {
            y = &y[*p];
        }
        yaml_to_json(&y["examples"][name]["value"])
    };
    let ok200 = ["responses", "200", "content", "application/json"];
    let decide: Vec<&str> = ["/v1/decide", "post"]
        .iter()
        .chain(&ok200)
        .copied()
        .collect();
    for name in ["review", "degraded"] {
        let v = example(&decide, name);
        let d: Decision = serde_json::from_value(v.clone()).expect(name);
        assert_eq!(serde_json::to_value(&d).unwrap(), v, "{name}");
    }
    let req: Vec<&str> = [
        "/v1/decide",
        "post",
        "requestBody",
        "content",
        "application/json",
    ]
    .to_vec();
    let _: DecideRequest = serde_json::from_value(example(&req, "payment")).unwrap();
    let scenes: Vec<&str> = ["/v1/scenes", "get"]
        .iter()
        .chain(&ok200)
        .copied()
        .collect();
    let v = example(&scenes, "risk");
    let s: Scenes = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(&s).unwrap(), v);
    let events: Vec<&str> = ["/v1/events", "post"]
        .iter()
        .chain(&ok200)
        .copied()
        .collect();
    let _: EventsRecorded = serde_json::from_value(example(&events, "two")).unwrap();
    let lists: Vec<&str> = ["/v1/lists/{list}", "post"]
        .iter()
        .chain(&ok200)
        .copied()
        .collect();
    let v = example(&lists, "blocked");
    let changed: ListChanged = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(&changed).unwrap(), v);
    let req: Vec<&str> = [
        "/v1/lists/{list}",
        "post",
        "requestBody",
        "content",
        "application/json",
    ]
    .to_vec();
    let block: ListChange = serde_json::from_value(example(&req, "block")).unwrap();
    assert_eq!(
        block.expires,
        Some(Expires::Time("2026-12-01T00:00:00Z".into()))
    );
    let _: ListChange = serde_json::from_value(example(&req, "unblock")).unwrap();
}

fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let k = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => panic!("a key {other:?}"),
                    };
                    (k, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("not JSON: {other:?}"),
    }
}
