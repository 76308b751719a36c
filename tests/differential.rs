//! Differential test: random patterns over every construct and random event
//! sequences (at most 12 events) through the real matcher
//! (`cepheid::matcher::Matcher`) and the independent reference
//! (`tests/reference`), comparing the multisets of matches and timeouts
//! emitted at each event (and at the final advance of time).
//!
//! `CEPHEID_PROPTEST_CASES` raises the number of cases (default 256).

#[path = "reference/mod.rs"]
mod reference;

use std::borrow::Cow;

use cepheid::event::{Event, FieldId, StaticFields};
use cepheid::matcher::{Matcher, Output as RealOutput};
use cepheid::nfa::Nfa;
use cepheid::pattern::{validate, Pattern};
use cepheid::Value;
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError};
use reference::gen::{events, pattern_spec};
use reference::{print, run, RefEvent};

/// The event type the real matcher sees.
#[derive(Clone, Debug, PartialEq)]
struct Ev {
    id: u64,
    ts: i64,
    kind: Value,
    value: i64,
}

impl Event for Ev {
    fn field(&self, id: FieldId) -> Cow<'_, Value> {
        Cow::Owned(match id.index() {
            0 => self.kind.clone(),
            1 => Value::Int(self.value),
            2 => Value::Int(self.ts),
            3 => Value::Int(self.id as i64),
            _ => Value::Null,
        })
    }
}

fn fields() -> StaticFields {
    StaticFields::new(&["kind", "value", "ts", "id"])
}

/// `(event index or n for the final advance, rendered output)`, sorted.
type Outputs = Vec<(usize, String)>;

fn render(stages: &[(String, Vec<u64>)], expired_at: Option<i64>) -> String {
    let mut out = stages
        .iter()
        .map(|(s, ids)| format!("{s}:{ids:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(t) = expired_at {
        out += &format!(" @{t}");
    }
    out
}

/// The time the final advance goes to: past every window.
fn end_time(events: &[RefEvent]) -> i64 {
    events.last().map_or(0, |e| e.ts) + 100
}

fn reference_outputs(p: &Pattern, evs: &[RefEvent]) -> Option<(Outputs, Outputs)> {
    let out = run(p, evs, Some(end_time(evs)));
    if out.ambiguous {
        return None;
    }
    let list = |items: &[reference::Emitted]| {
        let mut v: Outputs = items
            .iter()
            .map(|m| (m.step / 2, render(&m.stages, m.expired_at)))
            .collect();
        v.sort();
        v
    };
    Some((list(&out.matches), list(&out.timeouts)))
}

fn real_outputs(p: &Pattern, evs: &[RefEvent]) -> Result<(Outputs, Outputs), String> {
    let nfa = Nfa::<Ev>::compile(p, &mut fields()).map_err(|e| format!("compile error: {e:?}"))?;
    let mut m = Matcher::new(nfa);
    let (mut matches, mut timeouts) = (Vec::new(), Vec::new());
    let mut collect = |step: usize, outs: Vec<RealOutput<Ev>>| {
        for o in outs {
            let (om, t) = match o {
                RealOutput::Match(om) => (om, None),
                RealOutput::Timeout(om, t) => (om, Some(t)),
            };
            let stages: Vec<(String, Vec<u64>)> = om
                .stages
                .iter()
                .map(|(s, es)| (s.clone(), es.iter().map(|e| e.id).collect()))
                .collect();
            let line = (step, render(&stages, t));
            if t.is_some() {
                timeouts.push(line);
            } else {
                matches.push(line);
            }
        }
    };
    for (i, e) in evs.iter().enumerate() {
        let ev = Ev {
            id: e.id,
            ts: e.ts,
            kind: e.fields["kind"].clone(),
            value: e.fields["value"].as_int().unwrap_or(0),
        };
        collect(i, m.process(e.ts, ev));
    }
    collect(evs.len(), m.advance_time(end_time(evs)));
    matches.sort();
    timeouts.sort();
    Ok((matches, timeouts))
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The case count (`CEPHEID_PROPTEST_CASES`, default 256) and a fixed seed
/// (`CEPHEID_PROPTEST_SEED` explores others), so the suite is reproducible.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: env_number("CEPHEID_PROPTEST_CASES").map_or(256, |n| n as u32),
        rng_seed: RngSeed::Fixed(env_number("CEPHEID_PROPTEST_SEED").unwrap_or(0x5eed_c0de)),
        failure_persistence: None,
        max_global_rejects: 100_000,
        ..ProptestConfig::default()
    }
}

fn compare(p: &Pattern, evs: &[RefEvent]) -> Result<(), TestCaseError> {
    let Some((want_m, want_t)) = reference_outputs(p, evs) else {
        return Ok(());
    };
    let (got_m, got_t) = real_outputs(p, evs).map_err(TestCaseError::fail)?;
    if (&want_m, &want_t) != (&got_m, &got_t) {
        return Err(TestCaseError::fail(format!(
            "\n{}\nevents:\n{}\nreference matches: {want_m:?}\nreal matches:      {got_m:?}\nreference timeouts: {want_t:?}\nreal timeouts:      {got_t:?}",
            print::pattern(p),
            print::events(evs)
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn real_matcher_agrees_with_the_reference(spec in pattern_spec(), evs in events()) {
        let p = spec.build();
        prop_assume!(validate(&p).is_empty());
        compare(&p, &evs)?;
    }
}
