//! Every case of `clients/cases.json` (`docs/clients.md`, "The cases"),
//! unchanged, through a scripted transport on a scripted clock: each
//! step's call at its time, the exchanges it must make in order (the
//! requests checked, the replies and faults given), then its result or
//! error, its waits, the breaker's state and changes, and the clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_client::{
    BoxFuture, Client, Clock, Error, Fault, Options, Request, Response, Transport,
};
use serde_json::{json, Map, Value};

fn cases() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/cases.json");
    let text = std::fs::read_to_string(path).expect("reads clients/cases.json");
    serde_json::from_str(&text).expect("clients/cases.json is JSON")
}

/// The clock: starts at 0, moves only by the transport and the sleeps.
#[derive(Default)]
struct ScriptClock {
    now: Mutex<Duration>,
    sleeps: Mutex<Vec<u64>>,
}

impl ScriptClock {
    fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }
}

impl Clock for ScriptClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.sleeps
            .lock()
            .unwrap()
            .push(duration.as_millis() as u64);
        self.advance(duration);
        Box::pin(async {})
    }
}

/// The transport: the step's exchanges, in order.
struct Script {
    clock: Arc<ScriptClock>,
    exchanges: Mutex<VecDeque<Value>>,
    wrong: Mutex<Vec<String>>,
}

impl Script {
    fn exchange(&self, request: Request, timeout: Duration) -> Result<Response, Fault> {
        let Some(exchange) = self.exchanges.lock().unwrap().pop_front() else {
            self.wrong.lock().unwrap().push(format!(
                "a request the case does not expect: {} {}",
                request.method, request.path
            ));
            return Err(Fault::Unreachable("not in the script".into()));
        };
        if let Some(wrong) = mismatch(&exchange["expect"], &request) {
            self.wrong.lock().unwrap().push(wrong);
        }
        let reply = &exchange["reply"];
        let takes = Duration::from_millis(exchange["takes_ms"].as_u64().unwrap_or(0));
        match reply["fault"].as_str() {
            Some("timeout") => {
                self.clock.advance(timeout);
                return Err(Fault::Timeout);
            }
            Some(fault @ ("refused" | "reset")) => {
                self.clock.advance(takes);
                return Err(Fault::Unreachable(format!("{fault} (scripted)")));
            }
            Some(other) => panic!("a fault the runner does not know: {other}"),
            None => {}
        }
        if takes >= timeout {
            self.clock.advance(timeout);
            return Err(Fault::Timeout);
        }
        self.clock.advance(takes);
        let body = match (&reply["raw"], &reply["body"]) {
            (Value::String(raw), _) => raw.as_bytes().to_vec(),
            (_, Value::Null) => Vec::new(),
            (_, body) => serde_json::to_vec(body).unwrap(),
        };
        let headers = match &reply["headers"] {
            Value::Object(h) => h
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Response {
            status: reply["status"].as_u64().expect("a reply's status") as u16,
            headers,
            body,
        })
    }
}

impl Transport for Script {
    fn send(&self, request: Request, timeout: Duration) -> BoxFuture<'_, Result<Response, Fault>> {
        let answer = self.exchange(request, timeout);
        Box::pin(async move { answer })
    }
}

/// What differs between the expected request and the one sent.
fn mismatch(expect: &Value, request: &Request) -> Option<String> {
    let said = format!("{} {}", request.method, request.path);
    if expect["method"] != request.method || expect["path"] != request.path.as_str() {
        return Some(format!(
            "expected {} {}, sent {said}",
            expect["method"], expect["path"]
        ));
    }
    if let Value::Object(headers) = &expect["headers"] {
        for (name, value) in headers {
            let sent = request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str());
            if sent != value.as_str() {
                return Some(format!("{said}: header {name} {sent:?}, expected {value}"));
            }
        }
    }
    if let Value::Object(fields) = &expect["body"] {
        let body: Value = match &request.body {
            Some(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
            None => Value::Null,
        };
        for (name, value) in fields {
            if body.get(name) != Some(value) {
                return Some(format!(
                    "{said}: body's {name} is {:?}, expected {value} (body {body})",
                    body.get(name)
                ));
            }
        }
    }
    None
}

/// `defaults` with `config` over it (objects merged key by key).
fn merged(defaults: &Value, config: &Value) -> Value {
    match (defaults, config) {
        (Value::Object(d), Value::Object(c)) => {
            let mut out = d.clone();
            for (k, v) in c {
                let under = d.get(k).cloned().unwrap_or(Value::Null);
                out.insert(k.clone(), merged(&under, v));
            }
            Value::Object(out)
        }
        (_, c) => c.clone(),
    }
}

/// Runs one case; `Err` says what went wrong, step by step.
fn run(defaults: &Value, case: &Value) -> Result<(), String> {
    let options: Options = serde_json::from_value(merged(defaults, &case["config"]))
        .map_err(|e| format!("the case's options: {e}"))?;
    let clock = Arc::new(ScriptClock::default());
    let script = Arc::new(Script {
        clock: Arc::clone(&clock),
        exchanges: Mutex::new(VecDeque::new()),
        wrong: Mutex::new(Vec::new()),
    });
    let client = Client::with_parts(options, script.clone(), clock.clone());
    let transitions: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = Arc::clone(&transitions);
    client.on_breaker(move |t| {
        seen.lock()
            .unwrap()
            .push(json!([t.from.as_str(), t.to.as_str()]));
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let at = |what: String| format!("step {i}: {what}");
        if let Some(at_ms) = step["at_ms"].as_u64() {
            let now = clock.now();
            let to = Duration::from_millis(at_ms);
            if to < now {
                return Err(at(format!("at_ms {at_ms} is before the clock ({now:?})")));
            }
            *clock.now.lock().unwrap() = to;
        }
        *script.exchanges.lock().unwrap() = step["exchanges"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into();
        clock.sleeps.lock().unwrap().clear();
        transitions.lock().unwrap().clear();

        let got = runtime.block_on(call(&client, &step["call"]));

        let wrong = std::mem::take(&mut *script.wrong.lock().unwrap());
        if let Some(w) = wrong.first() {
            return Err(at(w.clone()));
        }
        let left = script.exchanges.lock().unwrap().len();
        if left > 0 {
            return Err(at(format!(
                "{left} expected exchange(s) not made (got {got:?})"
            )));
        }
        match (&step["result"], &step["error"], &got) {
            (Value::Object(expected), Value::Null, Ok(result)) => {
                for (k, v) in expected {
                    if result.get(k) != Some(v) {
                        return Err(at(format!(
                            "result's {k} is {:?}, expected {v} (result {result})",
                            result.get(k)
                        )));
                    }
                }
            }
            (Value::Null, Value::Object(expected), Err(e)) => {
                check_error(expected, e).map_err(at)?
            }
            _ => {
                return Err(at(format!(
                    "expected {} {}, got {got:?}",
                    step["result"], step["error"]
                )))
            }
        }
        let sleeps = clock.sleeps.lock().unwrap().clone();
        if json!(sleeps) != step["sleeps_ms"] {
            return Err(at(format!(
                "sleeps {sleeps:?}, expected {}",
                step["sleeps_ms"]
            )));
        }
        let breaker = client.breaker();
        if step["breaker"] != breaker.as_str() {
            return Err(at(format!(
                "breaker {breaker}, expected {}",
                step["breaker"]
            )));
        }
        let changes = Value::Array(transitions.lock().unwrap().clone());
        if changes != step["transitions"] {
            return Err(at(format!(
                "transitions {changes}, expected {}",
                step["transitions"]
            )));
        }
        let now = clock.now().as_millis() as u64;
        if step["now_ms"] != now {
            return Err(at(format!("clock {now} ms, expected {}", step["now_ms"])));
        }
    }
    Ok(())
}

fn check_error(expected: &Map<String, Value>, e: &Error) -> Result<(), String> {
    let got = match e {
        Error::Api(a) => json!({
            "type": "api", "status": a.status,
            "code": a.code.map(|c| c.as_str()),
        }),
        Error::Unavailable(u) => json!({
            "type": "unavailable", "why": u.why.as_str(), "attempts": u.attempts,
        }),
        Error::Invalid(m) => json!({"type": "invalid", "message": m}),
    };
    for (k, v) in expected {
        if got.get(k) != Some(v) {
            return Err(format!(
                "error's {k} is {:?}, expected {v} ({e})",
                got.get(k)
            ));
        }
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: Result<T, Error>) -> Result<Value, Error> {
    v.map(|r| serde_json::to_value(r).unwrap())
}

/// The step's call; its result as JSON.
async fn call(client: &Client, call: &Value) -> Result<Value, Error> {
    let s = |k: &str| call[k].as_str().map(str::to_string);
    match call["op"].as_str().expect("a call's op") {
        op @ ("decide" | "dry_run") => {
            let scene = s("scene").expect("a scene");
            let mut d = if op == "decide" {
                client.decide(&scene, &call["event"])
            } else {
                client.dry_run(&scene, &call["event"])
            };
            if let Some(id) = s("event_id") {
                d = d.event_id(id);
            }
            if let Some(ms) = call["deadline_ms"].as_u64() {
                d = d.deadline_ms(ms);
            }
            if let Some(explain) = call["explain"].as_bool() {
                d = d.explain(explain);
            }
            json(d.await)
        }
        "record" => {
            let events = call["events"].as_array().expect("events").iter().map(|e| {
                (
                    e["event_id"].as_str().unwrap().to_string(),
                    e["event"].clone(),
                )
            });
            json(client.record(events, call["deadline_ms"].as_u64()).await)
        }
        "decision" => json(client.decision(&s("decision_id").expect("an id")).await),
        "scenes" => json(client.scenes().await),
        other => panic!("an op the runner does not know: {other}"),
    }
}

#[test]
fn every_case_of_clients_cases_json() {
    let file = cases();
    let defaults = &file["defaults"];
    let cases = file["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut failed = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("a case's name");
        if let Err(why) = run(defaults, case) {
            failed.push(format!("{name}\n    {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n  {}",
        failed.len(),
        cases.len(),
        failed.join("\n  ")
    );
    eprintln!("{} cases passed", cases.len());
}

/// The runner fails a case that makes a request it does not expect, or
/// fewer than it expects, or gets another result: a runner that cannot
/// fail proves nothing.
#[test]
fn the_runner_fails_a_wrong_case() {
    let file = cases();
    let defaults = &file["defaults"];
    let case = file["cases"][0].clone();
    // One exchange fewer: the client's request is unexpected.
    let mut fewer = case.clone();
    fewer["steps"][0]["exchanges"].as_array_mut().unwrap().pop();
    assert!(run(defaults, &fewer)
        .unwrap_err()
        .contains("does not expect"));
    // One more: not made.
    let mut more = case.clone();
    let extra = more["steps"][0]["exchanges"][1].clone();
    more["steps"][0]["exchanges"]
        .as_array_mut()
        .unwrap()
        .push(extra);
    assert!(run(defaults, &more).unwrap_err().contains("not made"));
    // Another deadline expected.
    let mut deadline = case.clone();
    deadline["steps"][0]["exchanges"][1]["expect"]["body"]["deadline_ms"] = json!(999);
    assert!(run(defaults, &deadline)
        .unwrap_err()
        .contains("deadline_ms"));
    // Another outcome, another clock.
    let mut outcome = case.clone();
    outcome["steps"][0]["result"]["outcome"] = json!("decline");
    assert!(run(defaults, &outcome).unwrap_err().contains("outcome"));
    let mut clock = case;
    clock["steps"][0]["now_ms"] = json!(6);
    assert!(run(defaults, &clock).unwrap_err().contains("clock"));
}

/// With `jitter` (the default; the cases turn it off) each wait is drawn
/// from [wait/2, wait]: 20 calls of a 503 then a 200, each wait within
/// [backoff/2, backoff], and not all the same.
#[test]
fn a_jittered_wait_is_between_half_and_the_whole() {
    let clock = Arc::new(ScriptClock::default());
    let script = Arc::new(Script {
        clock: Arc::clone(&clock),
        exchanges: Mutex::new(VecDeque::new()),
        wrong: Mutex::new(Vec::new()),
    });
    let mut options = Options::new("http://127.0.0.1:8870");
    options.backoff_ms = 100;
    // A budget no run of these calls exhausts.
    options.retry_budget.max_tokens = 1000;
    options.fallbacks.insert("payment".into(), "review".into());
    let client = Client::with_parts(options, script.clone(), clock.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let reply = |status: u16, body: Value| json!({"expect": {"method": "POST", "path": "/v1/decide"}, "reply": {"status": status, "body": body}});
    let decision = json!({"decision_id": "d-1", "scene": "payment", "event_id": "e",
        "outcome": "approve", "score": 0, "rules": [], "shadow": [], "degraded": false,
        "rules_version": 1, "mode": "decide", "stamp": 1, "elapsed_us": 1});
    for _ in 0..20 {
        // The scenes' fetch, refused (the named fallback needs none).
        let scenes = json!({"expect": {"method": "GET", "path": "/v1/scenes"}, "reply": {"fault": "refused"}});
        // (The copy is still missing: it is fetched again each call.)
        let exchanges = vec![
            scenes,
            reply(
                503,
                json!({"error": {"code": "unavailable", "message": "x"}}),
            ),
            reply(200, decision.clone()),
        ];
        *script.exchanges.lock().unwrap() = exchanges.into();
        let d = runtime
            .block_on(std::future::IntoFuture::into_future(
                client
                    .decide("payment", &json!({"type": "payment"}))
                    .event_id("e"),
            ))
            .unwrap();
        assert_eq!(d.attempts, 2, "{d:?}");
        assert!(script.wrong.lock().unwrap().is_empty());
    }
    let sleeps = clock.sleeps.lock().unwrap().clone();
    assert_eq!(sleeps.len(), 20);
    assert!(sleeps.iter().all(|s| (50..=100).contains(s)), "{sleeps:?}");
    assert!(sleeps.iter().any(|s| *s != sleeps[0]), "{sleeps:?}");
}
