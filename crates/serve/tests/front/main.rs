//! The HTTP front's tests: a real listener on `127.0.0.1:0`, in process,
//! over a deterministic fixture (`fixture.rs`, which stands in for the
//! decision service only here), driven by real clients: curl with
//! HTTP/1.1, h2c prior knowledge and TLS (h2 and HTTP/1.1 by ALPN), and
//! Python's standard library.
//!
//! Every request the tests send and every answer they receive is
//! appended to one file; once every test has run, it is checked against
//! `docs/api/openapi.yaml` by `tests/openapi/exchanges.py` (with the
//! validators of `.ci/install-openapi-validator`), which also asks that
//! every status of every operation and every error code was seen. That
//! last step is why this is a harness of its own (libtest-mimic): it runs
//! after the tests, as one more test's verdict.

mod fixture;
mod load;
mod routes;
mod security;
mod support;

use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    // The fixture's panics are expected: keep them off the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if !text.contains("the fixture panics") {
            default_hook(info);
        }
    }));

    let args = Arguments::from_args();
    let tests: Vec<(&str, fn())> = [routes::TESTS, security::TESTS, load::TESTS].concat();
    let whole = args.filter.is_none() && args.skip.is_empty() && !args.ignored && !args.list;
    let trials = tests
        .into_iter()
        .map(|(name, f)| Trial::test(name, move || run(f)))
        .collect();
    let mut conclusion = libtest_mimic::run(&args, trials);
    if !args.list {
        // The exchanges against the document: coverage only when every
        // test has run.
        match check_exchanges(whole) {
            Ok(said) => println!("every exchange fits docs/api/openapi.yaml: {said}"),
            Err(why) => {
                eprintln!("the exchanges do not fit docs/api/openapi.yaml:\n{why}");
                conclusion.num_failed += 1;
            }
        }
        match check_types() {
            Ok(said) => println!("every answer reads as its cepheid-api type: {said}"),
            Err(why) => {
                eprintln!("an answer is not its cepheid-api type:\n{why}");
                conclusion.num_failed += 1;
            }
        }
    }
    conclusion.exit();
}

fn run(f: fn()) -> Result<(), Failed> {
    f();
    Ok(())
}

/// Every answer logged, read as the API's type the Rust client reads it
/// as (`cepheid-api`, closed): decisions, scenes, events recorded,
/// health, readiness and errors.
fn check_types() -> Result<String, String> {
    use cepheid_api as api;
    let path = support::exchanges_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok("no exchange was made".into());
    };
    let mut read = std::collections::BTreeMap::<&str, usize>::new();
    for line in text.lines() {
        let x: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let (method, path) = (x["method"].as_str(), x["path"].as_str().unwrap_or(""));
        let status = x["status"].as_u64().unwrap_or(0);
        let Some(body) = x["body"].as_str() else {
            continue;
        };
        let path = path.split('?').next().unwrap_or("");
        fn check<T: serde::de::DeserializeOwned>(body: &str) -> Result<(), String> {
            serde_json::from_str::<T>(body)
                .map(|_| ())
                .map_err(|e| format!("{e}: {body}"))
        }
        let (kind, result) = match (method, path, status) {
            (Some("POST"), "/v1/decide", 200) => ("Decision", check::<api::Decision>(body)),
            (Some("GET"), p, 200) if p.starts_with("/v1/decisions/") => {
                ("Decision", check::<api::Decision>(body))
            }
            (Some("GET"), "/v1/scenes", 200) => ("Scenes", check::<api::Scenes>(body)),
            (Some("POST"), "/v1/events", 200) => {
                ("EventsRecorded", check::<api::EventsRecorded>(body))
            }
            (Some("POST"), p, 200) if p.starts_with("/v1/lists/") => {
                ("ListChanged", check::<api::ListChanged>(body))
            }
            (Some("GET"), "/healthz", 200) => ("Health", check::<api::Health>(body)),
            (Some("GET"), "/readyz", 200 | 503) => ("Readiness", check::<api::Readiness>(body)),
            (_, _, 400..=599) if !body.is_empty() => ("Error", check::<api::ErrorBody>(body)),
            _ => continue,
        };
        result.map_err(|e| format!("{method:?} {path} {status} ({kind}): {e}"))?;
        *read.entry(kind).or_default() += 1;
    }
    Ok(format!("{read:?}"))
}

fn check_exchanges(cover: bool) -> Result<String, String> {
    let path = support::exchanges_path();
    if !path.exists() {
        return Ok("no exchange was made".into());
    }
    let mut cmd = Command::new(support::python());
    cmd.arg(support::root().join("tests/openapi/exchanges.py"))
        .arg(support::root().join("docs/api/openapi.yaml"))
        .arg(&path);
    if cover {
        cmd.arg("--cover");
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        Ok(said)
    } else {
        Err(format!("{said}\n{}", String::from_utf8_lossy(&out.stderr)))
    }
}
