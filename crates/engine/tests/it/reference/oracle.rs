//! Talking to the Flink oracle (`../shared/flink-oracle/oracle.sh`, the real
//! Flink 2.3 NFA driven as the reference drives its transliteration), and
//! rendering what either side emitted in one comparable form.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use cepheid_core::pattern::Pattern;

use cepheid_core::primitives::StageId;
use serde_json::Value as Json;

use super::cond::RefEvent;
use super::flink::Emitted;

/// The oracle's harness, relative to the crate root (where tests run).
pub const ORACLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/flink-oracle/oracle.sh"
);

/// Runs neutral cases through the oracle (one JVM) and returns its answer
/// lines, in order.
pub fn run_flink(cases: Vec<String>) -> Vec<Json> {
    let count = cases.len();
    let mut child = Command::new(ORACLE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the oracle runs (Java 17 and the Flink venv, see its README)");
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        for line in cases {
            writeln!(stdin, "{line}").expect("the oracle reads");
        }
    });
    let out: Vec<Json> = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("a line")).expect("JSON"))
        .collect();
    writer.join().expect("the writer ends");
    let _ = child.wait();
    assert_eq!(out.len(), count, "the oracle stopped early");
    out
}

/// One emitted match or timeout: `"a:1 b:3,4 @p5"` (emitted while event 5
/// was processed; `@a5` while time advanced before it, `@end` at the final
/// advance), timeouts as `"timeout a:1 !5 @end"` (`!` the reported time).
pub fn render(stages: &str, on: Option<u64>, via: &str, expired_at: Option<i64>) -> String {
    let at = match (via, on) {
        ("process", Some(id)) => format!("@p{id}"),
        ("advance", Some(id)) => format!("@a{id}"),
        _ => "@end".to_string(),
    };
    match expired_at {
        Some(t) => format!("timeout {stages} !{t} {at}"),
        None => format!("{stages} {at}"),
    }
}

/// Stages as `a:1 b:3,4`, in the order given.
pub fn render_stages<'a>(stages: impl Iterator<Item = (&'a str, Vec<u64>)>) -> String {
    stages
        .map(|(s, ids)| {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            format!("{s}:{}", ids.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the reference emitted, rendered, in emission order (matches, then
/// timeouts).
pub fn reference_items(
    events: &[RefEvent],
    matches: &[Emitted],
    timeouts: &[Emitted],
) -> Vec<String> {
    matches
        .iter()
        .chain(timeouts)
        .map(|m| {
            let stages = render_stages(m.stages.iter().map(|(s, ids)| (s.as_str(), ids.clone())));
            let (on, via) = match m.step {
                s if s == 2 * events.len() => (None, "end"),
                s if s % 2 == 0 => (Some(events[s / 2].id), "advance"),
                s => (Some(events[s / 2].id), "process"),
            };
            render(&stages, on, via, m.expired_at)
        })
        .collect()
}

/// What Flink emitted (one oracle answer), rendered like
/// [`reference_items`], stages in pattern order.
pub fn flink_items(p: &Pattern, answer: &Json) -> Vec<String> {
    let item = |m: &Json| {
        let mut stages: Vec<(Option<StageId>, &str, Vec<u64>)> = m["stages"]
            .as_object()
            .expect("stages")
            .iter()
            .map(|(name, ids)| {
                let ids = ids
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|x| x.as_u64().expect("an id"))
                    .collect();
                (p.stage_id(name), name.as_str(), ids)
            })
            .collect();
        stages.sort_by_key(|s| s.0);
        let stages = render_stages(stages.into_iter().map(|(_, s, ids)| (s, ids)));
        let via = m["via"].as_str().unwrap_or("end");
        render(&stages, m["on"].as_u64(), via, m["ts"].as_i64())
    };
    let list = |key: &str| answer[key].as_array().into_iter().flatten().map(item);
    list("matches").chain(list("timeouts")).collect()
}

/// Why Flink produced no output, if it failed.
pub fn flink_failure(answer: &Json) -> Option<String> {
    for key in ["error", "runtime_error"] {
        if let Some(e) = answer[key].as_str() {
            return Some(e.to_string());
        }
    }
    None
}
