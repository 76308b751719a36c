//! Runs every case folder of `../shared/conformance/flink/` through the
//! library's front door (`Rules::parse` → `Engine<Record>` → a `Sink`) and
//! compares matches, timeouts and late events with `case.json`.
//!
//! The engine is driven as `cepheid run` drives it (`cli.md`): events and
//! `$watermark` lines decoded by `io::Decoder` from `events.jsonl`, the
//! case's `--max-delay`, and at the end of input `--flush-at-end` lets time
//! run to infinity, otherwise (without punctuated watermarks) time advances
//! to the largest event time seen. Skipped: `[time=<duration>]` cases
//! (per-occurrence windows are not in the language; `[time=null]` cases
//! run), comparator and processing-time cases, and `expected_error` cases
//! (checked by the front end's tests). A case whose Flink test asserts only
//! the late output is compared on that alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cepheid_decode::{value_to_json, Decoder, Format, Item, Items};
use cepheid_engine::{Engine, Event, FieldId, FieldPath, MatchRef, Record, Rules, Sink, Timestamp};
use serde_json::Value as Json;

use crate::shared_contract;

/// A match or timeout as `{flink stage name: [ids]}`.
type Ids = BTreeMap<String, Vec<Json>>;

/// Keeps matches, timeouts and late events as ids.
struct Collected<'a> {
    id_field: FieldId,
    back: &'a BTreeMap<String, String>,
    matches: Vec<Ids>,
    timeouts: Vec<Ids>,
    late: Vec<Json>,
}

impl Collected<'_> {
    fn id(&self, r: &Record) -> Json {
        value_to_json(&r.field_owned(self.id_field))
    }

    fn ids(&self, m: &MatchRef<'_, Record>) -> Ids {
        m.stages()
            .into_iter()
            .map(|(name, evs)| {
                let stage = self
                    .back
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.to_string());
                (stage, evs.iter().map(|e| self.id(e)).collect())
            })
            .collect()
    }
}

impl Sink<Record> for Collected<'_> {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        let ids = self.ids(m);
        self.matches.push(ids);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, _expired_at: Timestamp) {
        let ids = self.ids(m);
        self.timeouts.push(ids);
    }

    fn on_late(&mut self, _ts: Timestamp, event: &Record) {
        let id = self.id(event);
        self.late.push(id);
    }
}

fn skip_reason(case: &Json) -> Option<&'static str> {
    let id = case["id"].as_str().unwrap_or("");
    if id.contains("[time=") && !id.contains("[time=null]") {
        Some("per-occurrence window")
    } else if case
        .get("comparator")
        .is_some_and(|c| !c.is_null() && c != false)
    {
        Some("comparator")
    } else if case["harness"] == "operator_processing_time" {
        Some("processing time")
    } else if case.get("expected_error").is_some() {
        Some("pattern error (front end)")
    } else {
        None
    }
}

fn canon(list: &[Ids]) -> Vec<String> {
    list.iter()
        .map(|m| {
            let m: BTreeMap<_, _> = m.iter().filter(|(_, v)| !v.is_empty()).collect();
            serde_json::to_string(&m).unwrap_or_default()
        })
        .collect()
}

fn expected(case: &Json, field: &str) -> Option<Vec<Ids>> {
    let list = case.get(field)?.as_array()?;
    Some(
        list.iter()
            .map(|m| {
                m.as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_array().cloned().unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect(),
    )
}

/// Runs one case; `Err` describes every difference.
fn run_case(dir: &Path, case: &Json) -> Result<(), String> {
    let src = std::fs::read_to_string(dir.join("pattern.cep")).map_err(|e| e.to_string())?;
    let rules = Rules::parse("pattern.cep", &src).map_err(|e| format!("pattern errors: {e}"))?;
    let options: Vec<String> = case["run_options"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let flush = options.iter().any(|o| o == "--flush-at-end");
    let max_delay = options
        .iter()
        .position(|o| o == "--max-delay")
        .and_then(|i| options.get(i + 1))
        .map(|s| cepheid_core::time::parse_duration(s).map_err(|e| e.to_string()))
        .transpose()?
        .unwrap_or(0);
    let mut engine: Engine<Record> =
        Engine::with_max_delay(Duration::from_millis(u64::try_from(max_delay).unwrap_or(0)));
    engine.add(&rules).map_err(|e| e.to_string())?;
    let back: BTreeMap<String, String> = case["stage_names"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(flink, ours)| (ours.as_str().unwrap_or("").to_string(), flink.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Collected {
        id_field: engine.fields().intern(&FieldPath::single("id")),
        back: &back,
        matches: vec![],
        timeouts: vec![],
        late: vec![],
    };
    let events = std::fs::read(dir.join("events.jsonl")).map_err(|e| e.to_string())?;
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut punctuated = false;
    for (_, item) in Items::new("events.jsonl", events.as_slice(), decoder) {
        match item.map_err(|e| e.to_string())? {
            Item::Event(ts, record) => {
                engine.push(ts, record, &mut out);
            }
            Item::Watermark(t) => {
                punctuated = true;
                engine.watermark(t, &mut out);
            }
            Item::Skip => {}
        }
    }
    if flush {
        engine.watermark(Timestamp::MAX, &mut out);
    } else if !punctuated {
        engine.finish(&mut out);
    }
    let late = std::mem::take(&mut out.late);
    compare(case, &out, &late)
}

fn compare(case: &Json, sink: &Collected<'_>, late: &[Json]) -> Result<(), String> {
    let mut problems = Vec::new();
    // cases whose Flink test asserts only the late output (matches were
    // transcribed as "none" because the test never released them)
    let late_only = case["flink_assertion"]
        .as_str()
        .is_some_and(|a| a.starts_with("late side output"));
    let exp = canon(&expected(case, "expected_matches").unwrap_or_default());
    let got = canon(&sink.matches);
    if late_only {
        // nothing to compare
    } else if case["match_order_matters"] == true {
        if exp != got {
            problems.push(format!("matches (ordered) expected {exp:?} got {got:?}"));
        }
    } else {
        let (mut e, mut g) = (exp.clone(), got.clone());
        e.sort();
        g.sort();
        if e != g {
            problems.push(format!("matches expected {e:?} got {g:?}"));
        }
    }
    if let Some(timeouts) = expected(case, "expected_timeouts") {
        let mut e = canon(&timeouts);
        let mut g = canon(&sink.timeouts);
        e.sort();
        g.sort();
        if e != g {
            problems.push(format!("timeouts expected {e:?} got {g:?}"));
        }
    }
    if let Some(exp_late) = case.get("expected_late").and_then(Json::as_array) {
        if exp_late.as_slice() != late {
            problems.push(format!("late expected {exp_late:?} got {late:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn flink_conformance_cases() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(shared_contract::path("conformance/flink"))
        .expect("conformance cases at ../shared/conformance/flink")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.json").is_file())
        .collect();
    dirs.sort();
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for dir in &dirs {
        let text = std::fs::read_to_string(dir.join("case.json")).expect("readable case.json");
        let case: Json = serde_json::from_str(&text).expect("valid case.json");
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(why) = skip_reason(&case) {
            println!("SKIP {name}: {why}");
            skipped += 1;
            continue;
        }
        match run_case(dir, &case) {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("FAIL {name}: {why}")),
        }
    }
    for f in &failures {
        println!("{f}");
    }
    println!(
        "{passed} passed, {} failed, {skipped} skipped",
        failures.len()
    );
    assert!(passed > 0, "no conformance case ran");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
