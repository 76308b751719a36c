//! Every route, over HTTP/1.1 and h2c; the envelope's faults; the
//! decider's answers and errors; the document's routes against the
//! front's.

use std::collections::BTreeSet;
use std::process::Command;

use cepheid_serve::http::{OPENAPI, ROUTES};
use serde_json::{json, Value};

use crate::support::{decide_body, python, root, sample, Proto, Req, Server};

pub const TESTS: &[(&str, fn())] = &[
    (
        "routes::every_route_over_http1_and_h2c",
        every_route_over_http1_and_h2c,
    ),
    (
        "routes::the_documents_routes_are_the_fronts",
        the_documents_routes_are_the_fronts,
    ),
    (
        "routes::the_exchange_check_refuses_what_the_document_does_not_say",
        the_exchange_check_refuses_what_the_document_does_not_say,
    ),
    (
        "routes::a_decision_keeps_its_event_byte_for_byte",
        a_decision_keeps_its_event_byte_for_byte,
    ),
    (
        "routes::envelope_faults_name_their_field",
        envelope_faults_name_their_field,
    ),
    (
        "routes::malformed_json_says_where_and_what",
        malformed_json_says_where_and_what,
    ),
    (
        "routes::the_deciders_errors_are_answered",
        the_deciders_errors_are_answered,
    ),
    (
        "routes::a_list_change_and_its_refusals",
        a_list_change_and_its_refusals,
    ),
    (
        "routes::unknown_routes_and_methods",
        unknown_routes_and_methods,
    ),
    (
        "routes::readiness_false_is_503_with_reasons",
        readiness_false_is_503_with_reasons,
    ),
    (
        "routes::metrics_have_histograms_per_scene_and_outcome",
        metrics_have_histograms_per_scene_and_outcome,
    ),
];

fn every_route_over_http1_and_h2c() {
    let server = Server::start("every_route_over_http1_and_h2c");
    for (proto, version) in [(Proto::H1, "1.1"), (Proto::H2, "2")] {
        let c = server.curl(proto);
        let tag = if proto == Proto::H1 { "h1" } else { "h2" };
        let a = c.post(
            "/v1/decide",
            decide_body("payment", &format!("pay-{tag}"), 120),
        );
        assert_eq!(
            (a.status, a.version.as_str()),
            (200, version),
            "{}",
            a.text()
        );
        assert_eq!(a.header("content-type"), Some("application/json"));
        let d = a.json();
        assert_eq!(d["outcome"], "review");
        assert_eq!(d["event_id"], format!("pay-{tag}"));
        assert_eq!(d["mode"], "decide");

        let again = c.get(&format!(
            "/v1/decisions/{}",
            d["decision_id"].as_str().unwrap()
        ));
        assert_eq!(again.status, 200);
        assert_eq!(again.json(), d);

        let body = json!({"events": [
            {"event_id": format!("login-{tag}-1"), "event": {"type": "login", "account": "a1"}},
            {"event_id": format!("login-{tag}-2"), "event": {"type": "login", "account": "a2"}},
            {"event_id": format!("login-{tag}-1"), "event": {"type": "login", "account": "a1"}},
        ]});
        let a = c.post("/v1/events", body.to_string());
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(
            a.json(),
            json!({"recorded": 2, "repeated": 1, "rules_version": 7})
        );

        let a = c.get("/v1/scenes");
        assert_eq!(a.status, 200);
        let scenes = a.json();
        assert_eq!(scenes["rules_version"], 7);
        assert_eq!(scenes["scenes"][0]["name"], "payment");
        assert_eq!(scenes["scenes"][0]["fallback"], "review");

        let a = c.get("/healthz");
        assert_eq!((a.status, a.json()), (200, json!({"status": "ok"})));
        let a = c.get("/readyz");
        assert_eq!(
            (a.status, a.json()),
            (200, json!({"ready": true, "reasons": []}))
        );

        let a = c.get("/metrics");
        assert_eq!(a.status, 200);
        assert_eq!(
            a.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert!(a.text().ends_with("# EOF\n"));
        let a = c.send(Req::get("/metrics").header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        ));
        assert_eq!(
            a.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );

        let a = c.get("/openapi.yaml");
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("application/yaml"));
        assert_eq!(a.body, OPENAPI.as_bytes());
    }
    // Keep-alive: a batch of requests on one connection, each answered.
    let answers = server.h1().batch(&vec![Req::get("/healthz"); 5]);
    assert!(answers.iter().all(|a| a.status == 200));
    let answers = server.h2().batch(&vec![Req::get("/healthz"); 5]);
    assert!(answers.iter().all(|a| a.status == 200 && a.version == "2"));
}

/// Every path and method of the document is a route of the front and the
/// reverse, and each is served (neither 404 nor 405).
fn the_documents_routes_are_the_fronts() {
    let out = Command::new(python())
        .arg(root().join("tests/openapi/exchanges.py"))
        .arg(root().join("docs/api/openapi.yaml"))
        .arg("--routes")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let documented: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let served: BTreeSet<String> = ROUTES.iter().map(|(m, p)| format!("{m} {p}")).collect();
    assert_eq!(documented, served);
    // The document the front serves is the repository's.
    let text = std::fs::read_to_string(root().join("docs/api/openapi.yaml")).unwrap();
    assert_eq!(text, OPENAPI);

    let server = Server::start("the_documents_routes_are_the_fronts");
    let c = server.h1();
    for (method, path) in ROUTES {
        let path = (path.replace("{decision_id}", "d-none")).replace("{list}", "none");
        let req = match method {
            "POST" => Req::post(&path, "{}"),
            _ => Req::get(&path),
        };
        let a = c.send(req);
        assert_ne!(a.status, 405, "{method} {path}");
        if a.status == 404 {
            // The decider's 404 (no such decision, no such list), not
            // the front's.
            let said = a.error().2;
            assert!(
                said.contains("no decision `d-none`") || said.contains("no list `none`"),
                "{}",
                a.text()
            );
        }
    }
}

/// `exchanges.py` itself: it fails on answers and refusals the document
/// does not allow (so that its silence over the tests' log means
/// something).
fn the_exchange_check_refuses_what_the_document_does_not_say() {
    let json = r#"{"content-type": "application/json"}"#;
    let lines = [
        // A decision without its outcome.
        format!(r#"{{"method": "POST", "path": "/v1/decide", "request_headers": {json}, "request_body": "{{\"scene\":\"p\",\"event_id\":\"e\",\"event\":{{}}}}", "status": 200, "headers": {json}, "body": "{{\"decision_id\":\"d\"}}"}}"#),
        // A 429 without Retry-After.
        format!(r#"{{"method": "POST", "path": "/v1/decide", "request_headers": {json}, "request_body": "{{}}", "status": 429, "headers": {json}, "body": "{{\"error\":{{\"code\":\"overloaded\",\"message\":\"m\"}}}}"}}"#),
        // A valid request refused as invalid.
        format!(r#"{{"method": "POST", "path": "/v1/decide", "request_headers": {json}, "request_body": "{{\"scene\":\"p\",\"event_id\":\"e\",\"event\":{{}}}}", "status": 400, "headers": {json}, "body": "{{\"error\":{{\"code\":\"invalid_request\",\"message\":\"m\"}}}}"}}"#),
        // A status the operation does not have, and an unknown path's 200.
        format!(r#"{{"method": "GET", "path": "/healthz", "status": 418, "headers": {json}, "body": "{{}}"}}"#),
        format!(r#"{{"method": "GET", "path": "/nowhere", "status": 200, "headers": {json}, "body": "{{}}"}}"#),
        // A 405 whose Allow is wrong.
        r#"{"method": "PUT", "path": "/healthz", "status": 405, "headers": {"content-type": "application/json", "allow": "POST"}, "body": "{\"error\":{\"code\":\"invalid_request\",\"message\":\"m\"}}"}"#.to_string(),
    ];
    let file = crate::support::scratch().join("bad-exchanges.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = Command::new(python())
        .arg(root().join("tests/openapi/exchanges.py"))
        .arg(root().join("docs/api/openapi.yaml"))
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for fault in [
        "line 1 (None, None): POST /v1/decide -> 200: POST /v1/decide 200: the answer does not fit its schema: ",
        "line 2 (None, None): POST /v1/decide -> 429: POST /v1/decide 429: no Retry-After header",
        "line 3 (None, None): POST /v1/decide -> 400: refused (invalid_request) a request its schema takes",
        "line 4 (None, None): GET /healthz -> 418: GET /healthz: status 418 is not among",
        "line 5 (None, None): GET /nowhere -> 200: a path the document does not have answered 200, not 404",
        "line 6 (None, None): PUT /healthz -> 405: 405 Allow ['POST'], the document has ['GET']",
    ] {
        assert!(said.contains(fault), "{fault}\n{said}");
    }
}

fn a_decision_keeps_its_event_byte_for_byte() {
    let server = Server::start("a_decision_keeps_its_event_byte_for_byte");
    let c = server.h2();
    let event = "{ \"type\" :\"payment\",\n \"amount\": 1.50e3, \"note\": \"caf\\u00e9 ☕\", \"nested\": {\"k\": [1, 2.0, null]} }";
    let body = format!(
        "{{\"event\": {event}, \"scene\": \"payment\", \"event_id\": \"pay-raw\", \"mode\": \"dry_run\", \"deadline_ms\": 50, \"explain\": true}}"
    );
    let a = c.post("/v1/decide", &body);
    assert_eq!(a.status, 200, "{}", a.text());
    let d = a.json();
    assert_eq!(d["rules"][0]["reads"]["event"], event);
    assert_eq!(d["outcome"], "decline");
    assert_eq!(d["mode"], "dry_run");
    assert_eq!(d["explanation"][0]["rule"], "echo");
    // A dry run is not kept.
    c.get("/v1/decisions/d-pay-raw").expect(404, "not_found");

    // `deadline_ms: 0`: the fallback, degraded.
    let a = c.post(
        "/v1/decide",
        json!({"scene": "payment", "event_id": "pay-0", "event": {"type": "payment", "amount": 5}, "deadline_ms": 0}).to_string(),
    );
    let d = a.json();
    assert_eq!(
        (d["outcome"].as_str(), d["degraded"].as_bool()),
        (Some("review"), Some(true))
    );
    assert_eq!(d["degraded_why"], "deadline");
    // The charset parameter and a `+json` type are JSON too.
    let a = c.send(
        Req::post("/v1/decide", decide_body("payment", "pay-charset", 1))
            .header("Content-Type", "application/json; charset=utf-8"),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    // Decisions again: kept, expired, not found, an id past 64
    // characters, a percent-encoded id.
    assert_eq!(c.get("/v1/decisions/d-pay-charset").status, 200);
    assert_eq!(c.get("/v1/decisions/d%2Dpay%2Dcharset").status, 200);
    let a = c.get("/v1/decisions/expired");
    a.expect(404, "expired");
    assert!(a.error().2.contains("retention"));
    c.get("/v1/decisions/d-never").expect(404, "not_found");
    c.get(&format!("/v1/decisions/{}", "x".repeat(65)))
        .expect(404, "not_found");
}

fn envelope_faults_name_their_field() {
    let server = Server::start("envelope_faults_name_their_field");
    let c = server.h1();
    let ok_event = json!({"type": "payment", "amount": 1});
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"scene": "payment", "event_id": "e", "event": ok_event, "deadline": 5}),
            "deadline",
            "did you mean `deadline_ms`",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": ok_event, "deadlin_ms": 5}),
            "deadlin_ms",
            "did you mean `deadline_ms`",
        ),
        (
            json!({"scene": "payment", "event": ok_event}),
            "event_id",
            "`event_id` is missing",
        ),
        (
            json!({"event_id": "e", "event": ok_event}),
            "scene",
            "`scene` is missing",
        ),
        (
            json!({"scene": "payment", "event_id": "e"}),
            "event",
            "`event` is missing",
        ),
        (
            json!({"scene": "payment", "event_id": "", "event": ok_event}),
            "event_id",
            "empty",
        ),
        (
            json!({"scene": "payment", "event_id": "x".repeat(257), "event": ok_event}),
            "event_id",
            "257 characters",
        ),
        (
            json!({"scene": "payment", "event_id": 7, "event": ok_event}),
            "event_id",
            "must be a string, not a number",
        ),
        (
            json!({"scene": "", "event_id": "e", "event": ok_event}),
            "scene",
            "empty",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": [1]}),
            "event",
            "must be an object",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": "x"}),
            "event",
            "must be an object",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": ok_event, "deadline_ms": -5}),
            "deadline_ms",
            "0 or more",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": ok_event, "deadline_ms": 1.5}),
            "deadline_ms",
            "whole number",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": ok_event, "deadline_ms": "5"}),
            "deadline_ms",
            "not a string",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": ok_event, "mode": "maybe"}),
            "mode",
            "`decide` or `dry_run`",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": ok_event, "mode": null}),
            "mode",
            "not null",
        ),
        (
            json!({"scene": "payment", "event_id": "e", "event": ok_event, "explain": "yes"}),
            "explain",
            "a boolean",
        ),
    ];
    for (body, field, said) in &cases {
        let a = c.post("/v1/decide", body.to_string());
        let (code, f, message) = a.expect(400, "invalid_request").error();
        assert_eq!(
            (code.as_str(), f.as_deref()),
            ("invalid_request", Some(*field)),
            "{body}"
        );
        assert!(message.contains(said), "{message} ({body})");
    }
    // Not an object at all.
    let a = c.post("/v1/decide", "[1, 2]");
    assert!(a
        .expect(400, "invalid_request")
        .error()
        .2
        .contains("must be a JSON object, not an array"));
    // A field given twice.
    let a = c.post(
        "/v1/decide",
        r#"{"scene":"payment","scene":"x","event_id":"e","event":{}}"#,
    );
    assert!(a.expect(400, "invalid_request").error().2.contains("twice"));

    let events: Vec<(Value, &str)> = vec![
        (json!({"events": []}), "events"),
        (json!({"events": {}}), "events"),
        (json!({}), "events"),
        (
            json!({"events": [{"event_id": "a", "event": {}}], "extra": 1}),
            "extra",
        ),
        (
            json!({"events": [{"event_id": "a", "event": {}}, {"event": {}}]}),
            "events[1].event_id",
        ),
        (
            json!({"events": [{"event_id": "a", "event": {}, "scene": "payment"}]}),
            "events[0].scene",
        ),
        (
            json!({"events": [{"event_id": "a", "event": 3}]}),
            "events[0].event",
        ),
        (json!({"events": [7]}), "events[0]"),
    ];
    for (body, field) in &events {
        let a = c.post("/v1/events", body.to_string());
        let (_, f, _) = a.expect(400, "invalid_request").error();
        assert_eq!(f.as_deref(), Some(*field), "{body}");
    }

    // The body must be said to be JSON.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let a = c.send(
            Req::post("/v1/decide", decide_body("payment", "e", 1))
                .header("Content-Type", content_type),
        );
        let (_, _, message) = a.expect(400, "invalid_request").error();
        assert!(
            message.contains("Content-Type: application/json"),
            "{message}"
        );
        assert!(message.contains(content_type), "{message}");
    }
    let mut none = Req::post("/v1/events", r#"{"events":[{"event_id":"a","event":{}}]}"#);
    none.headers.clear();
    let (_, _, message) = c.send(none).expect(400, "invalid_request").error();
    assert!(message.contains("has none"), "{message}");
}

fn malformed_json_says_where_and_what() {
    let server = Server::start("malformed_json_says_where_and_what");
    for c in [server.h1(), server.h2()] {
        let cases: &[(&[u8], &str)] = &[
            (
                b"{\"scene\": \"payment\",\n \"event_id\": }",
                "expected value at line 2 column 14",
            ),
            (
                b"{\"scene\": \"payment\"",
                "EOF while parsing an object at line 1 column 19",
            ),
            (b"", "EOF while parsing a value at line 1 column 0"),
            (
                b"{\"scene\": \"payment\"} x",
                "trailing characters at line 1 column 22",
            ),
            (b"{'scene': 1}", "key must be a string at line 1 column 2"),
            (
                b"{\"scene\": \"\xff\"}",
                "invalid unicode code point at line 1 column 12",
            ),
        ];
        for (body, said) in cases {
            let a = c.post("/v1/decide", body);
            let (_, field, message) = a.expect(400, "malformed_json").error();
            assert_eq!(field, None);
            assert!(message.contains(said), "{message}");
            assert!(message.starts_with("the body is not JSON: "), "{message}");
        }
        let a = c.post("/v1/events", "{\"events\": [1,]}");
        assert!(a
            .expect(400, "malformed_json")
            .error()
            .2
            .contains("line 1 column 15"));
    }
}

fn the_deciders_errors_are_answered() {
    let server = Server::start("the_deciders_errors_are_answered");
    for c in [server.h1(), server.h2()] {
        let a = c.post("/v1/decide", decide_body("paymnet", "e1", 1));
        assert_eq!(
            a.expect(404, "unknown_scene").error().1.as_deref(),
            Some("scene")
        );
        let a = c.post(
            "/v1/decide",
            json!({"scene": "payment", "event_id": "e2", "event": {"type": "refund"}}).to_string(),
        );
        assert_eq!(
            a.expect(422, "not_in_scene").error().1.as_deref(),
            Some("event.type")
        );
        let a = c.post("/v1/decide", decide_body("payment", "reused-1", 125));
        assert_eq!(
            a.expect(409, "event_id_reused").error().1.as_deref(),
            Some("event.amount")
        );
        let a = c.post("/v1/decide", decide_body("busy", "e3", 1));
        a.expect(429, "overloaded");
        assert_eq!(a.header("retry-after"), Some("2"));
        let a = c.post("/v1/decide", decide_body("down", "e4", 1));
        a.expect(503, "unavailable");
        assert_eq!(a.header("retry-after"), Some("5"));
        // A 503 without its seconds: the front says 1.
        let a = c.post("/v1/decide", decide_body("gone", "e5", 1));
        a.expect(503, "unavailable");
        assert_eq!(a.header("retry-after"), Some("1"));

        let batch = |id: &str| {
            json!({"events": [{"event_id": id, "event": {"type": "login"}}]}).to_string()
        };
        let a = c.post("/v1/events", batch("busy"));
        a.expect(429, "overloaded");
        assert_eq!(a.header("retry-after"), Some("2"));
        let a = c.post("/v1/events", batch("down"));
        a.expect(503, "unavailable");
        assert_eq!(a.header("retry-after"), Some("5"));
        c.post("/v1/events", batch("reused-2"))
            .expect(409, "event_id_reused");
    }
}

/// `POST /v1/lists/{list}`: the change as the service takes it, every
/// refusal of its envelope naming its field, and the decider's errors.
fn a_list_change_and_its_refusals() {
    let server = Server::start("a_list_change_and_its_refusals");
    for c in [server.h1(), server.h2()] {
        let a = c.post(
            "/v1/lists/blocked",
            json!({"add": ["d-81", 42, true], "expires": "2026-12-01T00:00:00Z"}).to_string(),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        let j = a.json();
        assert_eq!(
            (&j["list"], &j["added"], &j["removed"]),
            (&json!("blocked"), &json!(3), &json!(0))
        );
        assert_eq!(j["expires"], 1_796_083_200_000_i64, "RFC 3339 read as ms");
        let a = c.post("/v1/lists/blocked", json!({"remove": ["d-81"]}).to_string());
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json().get("expires"), None, "nothing added: no expiry");
        // (a name percent-encoded is decoded)
        let a = c.post("/v1/lists/blo%63ked", json!({"add": ["x"]}).to_string());
        assert_eq!(a.status, 200, "{}", a.text());
        // The envelope's faults, each naming its field.
        let refused = [
            (json!({}), None),
            (json!({"add": []}), Some("add")),
            (json!({"add": "d-1"}), Some("add")),
            (json!({"add": [null]}), Some("add[0]")),
            (json!({"remove": [{"a": 1}]}), Some("remove[0]")),
            (json!({"remove": ["d-1"], "expires": 5}), Some("expires")),
            (json!({"add": ["d-1"], "expires": "soon"}), Some("expires")),
            (json!({"add": ["d-1"], "expires": 1.5}), Some("expires")),
            (json!({"add": ["d-1"], "$list": "other"}), Some("$list")),
            (json!(["d-1"]), None),
        ];
        for (body, field) in refused {
            let a = c.post("/v1/lists/blocked", body.to_string());
            let (_, got, message) = a.expect(400, "invalid_request").error();
            assert_eq!(got.as_deref(), field, "{body}: {message}");
        }
        c.post("/v1/lists/blocked", "{\"add\": [1,]}")
            .expect(400, "malformed_json");
        let many: Vec<String> = (0..10_001).map(|i| format!("v{i}")).collect();
        c.post("/v1/lists/blocked", json!({ "add": many }).to_string())
            .expect(413, "too_large");
        // The decider's answers.
        let a = c.post(
            "/v1/lists/blocked",
            json!({"add": ["x"], "expires": 1_764_547_200}).to_string(),
        );
        assert_eq!(
            a.expect(422, "invalid_request").error().1.as_deref(),
            Some("expires")
        );
        let a = c.post("/v1/lists/blockd", json!({"add": ["x"]}).to_string());
        assert!(a
            .expect(404, "not_found")
            .error()
            .2
            .contains("their lists: blocked"));
        let a = c.post("/v1/lists/busy", json!({"add": ["x"]}).to_string());
        a.expect(429, "overloaded");
        assert_eq!(a.header("retry-after"), Some("2"));
        let a = c.post("/v1/lists/down", json!({"add": ["x"]}).to_string());
        a.expect(503, "unavailable");
        c.post("/v1/lists/panic", json!({"add": ["x"]}).to_string())
            .expect(500, "internal");
        // Not a list's path.
        c.post("/v1/lists/", json!({"add": ["x"]}).to_string())
            .expect(404, "not_found");
        c.post("/v1/lists/a/b", json!({"add": ["x"]}).to_string())
            .expect(404, "not_found");
        let a = c.get("/v1/lists/blocked");
        a.expect(405, "invalid_request");
        assert_eq!(a.header("allow"), Some("POST"));
    }
}

fn unknown_routes_and_methods() {
    let server = Server::start("unknown_routes_and_methods");
    for c in [server.h1(), server.h2()] {
        for path in [
            "/",
            "/v1",
            "/v1/decide/",
            "/v2/decide",
            "/v1/decisions/",
            "/v1/decisions/a/b",
            "/status.json",
        ] {
            let a = c.get(path);
            let (_, _, message) = a.expect(404, "not_found").error();
            assert!(message.contains(path), "{message}");
        }
        for (method, path, allow) in [
            ("GET", "/v1/decide", "POST"),
            ("PUT", "/v1/events", "POST"),
            ("DELETE", "/v1/decisions/d-1", "GET"),
            ("POST", "/v1/scenes", "GET"),
            ("POST", "/healthz", "GET"),
            ("PATCH", "/readyz", "GET"),
            ("DELETE", "/metrics", "GET"),
            ("POST", "/openapi.yaml", "GET"),
        ] {
            let req = if method == "POST" {
                Req::post(path, "{}")
            } else {
                Req::get(path).method(method)
            };
            let a = c.send(req);
            a.expect(405, "invalid_request");
            assert_eq!(a.header("allow"), Some(allow));
        }
    }
}

fn readiness_false_is_503_with_reasons() {
    let server = Server::start("readiness_false_is_503_with_reasons");
    let c = server.h2();
    server
        .fixture
        .set_not_ready(&["the log cannot be written: disk full", "replaying the log"]);
    let a = c.get("/readyz");
    assert_eq!(a.status, 503);
    assert_eq!(
        a.json(),
        json!({"ready": false, "reasons": ["the log cannot be written: disk full", "replaying the log"]})
    );
    // Health is another matter: the threads answer.
    assert_eq!(c.get("/healthz").status, 200);
    server.fixture.set_not_ready(&[]);
    assert_eq!(c.get("/readyz").status, 200);
}

fn metrics_have_histograms_per_scene_and_outcome() {
    let server = Server::start("metrics_have_histograms_per_scene_and_outcome");
    let c = server.h1();
    for (i, amount) in [5, 150, 160, 2000, 7].into_iter().enumerate() {
        assert_eq!(
            c.post(
                "/v1/decide",
                decide_body("payment", &format!("m{i}"), amount)
            )
            .status,
            200
        );
    }
    let degraded =
        json!({"scene": "sign_up", "event_id": "s1", "event": {"amount": 1}, "deadline_ms": 0});
    assert_eq!(c.post("/v1/decide", degraded.to_string()).status, 200);
    c.post("/v1/decide", decide_body("busy", "m-busy", 1))
        .expect(429, "overloaded");
    c.get("/nowhere").expect(404, "not_found");
    let text = c.get("/metrics").text();

    let count = |labels: &str| {
        sample(
            &text,
            &format!("cepheid_serve_decision_seconds_count{{{labels}}}"),
        )
    };
    assert_eq!(
        count(r#"scene="payment",outcome="approve",degraded="false""#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        count(r#"scene="payment",outcome="review",degraded="false""#),
        Some(2.0)
    );
    assert_eq!(
        count(r#"scene="payment",outcome="decline",degraded="false""#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"scene="sign_up",outcome="review",degraded="true""#),
        Some(1.0)
    );
    assert!(text.contains("# TYPE cepheid_serve_decision_seconds histogram"));
    // Buckets fine enough under a millisecond, cumulative, up to +Inf.
    for le in [
        "0.000025", "0.0001", "0.0005", "0.0009", "0.001", "1.0", "+Inf",
    ] {
        let series = format!(
            r#"cepheid_serve_decision_seconds_bucket{{le="{le}",scene="payment",outcome="approve",degraded="false"}}"#
        );
        assert!(sample(&text, &series).is_some(), "{series}\n{text}");
    }
    let inf = r#"cepheid_serve_decision_seconds_bucket{le="+Inf",scene="payment",outcome="approve",degraded="false"}"#;
    assert_eq!(sample(&text, inf), Some(2.0));
    let requests = |labels: &str| {
        sample(
            &text,
            &format!("cepheid_serve_http_requests_total{{{labels}}}"),
        )
    };
    assert_eq!(requests(r#"route="/v1/decide",status="200""#), Some(6.0));
    assert_eq!(requests(r#"route="/v1/decide",status="429""#), Some(1.0));
    assert_eq!(requests(r#"route="other",status="404""#), Some(1.0));
    assert_eq!(
        sample(&text, "cepheid_serve_http_requests_in_flight"),
        Some(1.0)
    );
    // One curl a request, one connection each.
    assert_eq!(
        sample(&text, "cepheid_serve_http_connections_total"),
        Some(9.0)
    );
    assert_eq!(
        sample(&text, "cepheid_serve_http_max_connections"),
        Some(1024.0)
    );
    assert_eq!(sample(&text, "cepheid_serve_http_panics_total"), Some(0.0));
    // The decider's own, then the end.
    assert_eq!(sample(&text, "fixture_decisions_total"), Some(6.0));
    assert!(
        text.ends_with("fixture_decisions_total 6\n# EOF\n"),
        "{text}"
    );
    assert_eq!(text.matches("# EOF").count(), 1);
}
