//! Regression cases found by the Flink oracle (`../shared/flink-oracle`),
//! frozen with Flink's own output so that this suite never needs Flink:
//! every folder of `tests/oracle/cases/` holds `pattern.cep`,
//! `events.jsonl` (ending with a watermark at the case's end time) and
//! `expected.json` (`expected`: the matches and timeouts as `{stage: [event
//! ids]}` multisets, or `error` when the pattern must be rejected). Cases
//! marked with a `deviation` expect cepheid's documented behaviour
//! (`docs/semantics.md`), and keep Flink's output beside it under `flink`.
//! `tests/oracle/capture.py` writes new cases from the oracle.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;

/// `{stage: ids}` with sorted keys, empty stages left out, plus `@ts` for a
/// timeout.
fn canon(stages: &Json, ts: Option<&Json>) -> String {
    let mut parts: Vec<(String, String)> = stages
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.as_array().is_some_and(|a| !a.is_empty()))
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    parts.sort();
    let body: Vec<String> = parts.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
    let mut s = format!("{{{}}}", body.join(","));
    if let Some(ts) = ts {
        s += &format!("@{ts}");
    }
    s
}

fn run_case(dir: &Path) -> Result<(), String> {
    let record: Json = serde_json::from_str(
        &fs::read_to_string(dir.join("expected.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let expected = &record["expected"];
    let out = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("run")
        .arg(dir.join("pattern.cep"))
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .arg("--no-progress")
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if expected.get("error").is_some() {
        return match out.status.code() {
            Some(1) => Ok(()),
            code => Err(format!(
                "expected the pattern to be rejected (exit 1), got {code:?}\n{stderr}"
            )),
        };
    }
    if !out.status.success() {
        return Err(format!("exit {:?}: {stderr}", out.status.code()));
    }
    let (mut got_m, mut got_t) = (Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let rec: Json = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let stages: serde_json::Map<String, Json> = rec["events"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, evs)| {
                        let ids = evs
                            .as_array()
                            .map(|a| a.iter().map(|e| e["id"].clone()).collect())
                            .unwrap_or_default();
                        (k.clone(), Json::Array(ids))
                    })
                    .collect()
            })
            .unwrap_or_default();
        match rec["kind"].as_str() {
            Some("match") => got_m.push(canon(&Json::Object(stages), None)),
            Some("timeout") => got_t.push(canon(&Json::Object(stages), Some(&rec["expired_at"]))),
            _ => {}
        }
    }
    let list = |key: &str, with_ts: bool| -> Vec<String> {
        let mut v: Vec<String> = expected[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        if with_ts {
                            canon(&m["stages"], Some(&m["ts"]))
                        } else {
                            canon(m, None)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    got_m.sort();
    got_t.sort();
    let (want_m, want_t) = (list("matches", false), list("timeouts", true));
    if (&got_m, &got_t) != (&want_m, &want_t) {
        return Err(format!(
            "matches  expected {want_m:?}\n         got      {got_m:?}\n\
             timeouts expected {want_t:?}\n         got      {got_t:?}"
        ));
    }
    Ok(())
}

#[test]
fn oracle_regression_cases_keep_flinks_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/cases");
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .expect("tests/oracle/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases in {}", root.display());
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            run_case(d)
                .err()
                .map(|e| format!("{}:\n{e}", d.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} oracle cases fail:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}
