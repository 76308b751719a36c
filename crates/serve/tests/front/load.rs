//! Limits, many concurrent clients, and Python's standard library.

use serde_json::{json, Value};

use crate::fixture::outcome_of;
use crate::support::{certificate, options, python_script, sample, Proto, Req, Server};

pub const TESTS: &[(&str, fn())] = &[
    (
        "load::limits_of_body_fields_and_batch",
        limits_of_body_fields_and_batch,
    ),
    (
        "load::many_concurrent_clients_each_get_their_answer",
        many_concurrent_clients_each_get_their_answer,
    ),
    (
        "load::many_concurrent_tls_clients_each_get_their_answer",
        many_concurrent_tls_clients_each_get_their_answer,
    ),
    (
        "load::pythons_standard_library_clients",
        pythons_standard_library_clients,
    ),
];

fn event_with_fields(n: usize) -> Value {
    let mut event = serde_json::Map::new();
    event.insert("type".into(), json!("payment"));
    for i in 1..n {
        event.insert(format!("f{i}"), json!(i));
    }
    Value::Object(event)
}

fn limits_of_body_fields_and_batch() {
    let mut opts = options();
    opts.max_body_bytes = 2048;
    opts.max_fields = 10;
    opts.max_batch = 3;
    let server = Server::with("limits_of_body_fields_and_batch", opts);
    for c in [server.h1(), server.h2()] {
        let proto = c.proto;
        let decide = |id: &str, event: Value| {
            json!({"scene": "payment", "event_id": id, "event": event}).to_string()
        };
        // At the limits: taken.
        let a = c.post(
            "/v1/decide",
            decide(&format!("lim-{proto:?}"), event_with_fields(10)),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        let nested = json!({"type": "payment", "a": {"b": [1, 2, {"c": 3}]}, "d": 4});
        assert_eq!(
            c.post("/v1/decide", decide("lim-nested", nested)).status,
            200
        );
        // Past the field limit, counted at every depth.
        let (_, field, message) = c
            .post("/v1/decide", decide("lim-11", event_with_fields(11)))
            .expect(413, "too_large")
            .error();
        assert_eq!(field.as_deref(), Some("event"));
        assert!(message.contains("more than 10 fields"), "{message}");
        let nested = json!({"type": "payment", "a": {"b": [1, 2, {"c": 3, "e": [5, 6]}]}, "d": 4});
        c.post("/v1/decide", decide("lim-deep", nested))
            .expect(413, "too_large");
        // Nesting past serde_json's depth is refused as too large, too
        // (here the fields' limit comes first).
        let deep = format!(
            r#"{{"scene":"payment","event_id":"deep","event":{}1{}}}"#,
            r#"{"a":"#.repeat(130),
            "}".repeat(130)
        );
        let (_, field, _) = c.post("/v1/decide", &deep).expect(413, "too_large").error();
        assert_eq!(field.as_deref(), Some("event"));
        // Past the body limit: by its Content-Length (read and dropped,
        // so that the client still sending gets the 413).
        let big = decide(
            "lim-big",
            json!({"type": "payment", "pad": "x".repeat(3000)}),
        );
        let (_, _, message) = c.post("/v1/decide", &big).expect(413, "too_large").error();
        assert!(message.contains("limit of 2048 bytes"), "{message}");
        // A batch past its limit, and an event of a batch past the fields'.
        let item = |id: &str, event: Value| json!({"event_id": id, "event": event});
        let four = json!({"events": [item("a", json!({})), item("b", json!({})), item("c", json!({})), item("d", json!({}))]});
        let (_, field, message) = c
            .post("/v1/events", four.to_string())
            .expect(413, "too_large")
            .error();
        assert_eq!(field.as_deref(), Some("events"));
        assert!(
            message.contains("4 events, over the server's limit of 3"),
            "{message}"
        );
        let wide_item = json!({"events": [item("a", json!({})), item("b", event_with_fields(11))]});
        let (_, field, _) = c
            .post("/v1/events", wide_item.to_string())
            .expect(413, "too_large")
            .error();
        assert_eq!(field.as_deref(), Some("events[1].event"));
        let three = json!({"events": [item("x1", json!({})), item("x2", json!({})), item("x3", json!({}))]});
        assert_eq!(c.post("/v1/events", three.to_string()).status, 200);
    }
    // Chunked, without a Content-Length: the stream is capped.
    let big =
        json!({"scene": "payment", "event_id": "chunked", "event": {"pad": "x".repeat(5000)}})
            .to_string();
    let a = server
        .h1()
        .send(Req::post("/v1/decide", &big).header("Transfer-Encoding", "chunked"));
    a.expect(413, "too_large");
    let small = json!({"scene": "payment", "event_id": "chunked", "event": {"type": "payment"}})
        .to_string();
    let a = server
        .h1()
        .send(Req::post("/v1/decide", &small).header("Transfer-Encoding", "chunked"));
    assert_eq!(a.status, 200, "{}", a.text());
}

/// 16 clients at once, 50 requests each: every answer is its own
/// request's. Plain TCP: 12 HTTP/1.1 clients keeping one connection
/// each, 4 h2c clients (a connection a request: see `Client::batch`).
fn many_concurrent_clients_each_get_their_answer() {
    let server = Server::start("many_concurrent_clients_each_get_their_answer");
    let text = concurrent(
        &server,
        |t| if t % 4 == 3 { Proto::H2 } else { Proto::H1 },
        false,
    );
    // 12 kept connections, 4 × 50 h2c ones, and the scrape's.
    assert_eq!(
        sample(&text, "cepheid_serve_http_connections_total"),
        Some(213.0)
    );
}

/// The same over TLS: 8 HTTP/1.1 clients, and 8 HTTP/2 clients sending
/// their 50 requests at once, multiplexed.
fn many_concurrent_tls_clients_each_get_their_answer() {
    let mut opts = options();
    opts.tls = Some(certificate());
    let server = Server::with("many_concurrent_tls_clients_each_get_their_answer", opts);
    concurrent(
        &server,
        |t| if t % 2 == 0 { Proto::H1 } else { Proto::H2 },
        true,
    );
}

fn concurrent(server: &Server, proto: fn(usize) -> Proto, parallel_h2: bool) -> String {
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let mut c = server.curl(proto(t));
            if parallel_h2 && c.proto == Proto::H2 {
                c = c.parallel();
            }
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                let reqs: Vec<Req> = (0..50)
                    .map(|i| {
                        let amount = (t * 50 + i) * 7 % 1500;
                        let id = format!("c{t}-{i}");
                        let event =
                            json!({"type": "payment", "amount": amount, "client": t, "i": i})
                                .to_string();
                        let body =
                            format!(r#"{{"scene":"payment","event_id":"{id}","event":{event}}}"#);
                        sent.push((id, amount, event));
                        Req::post("/v1/decide", body)
                    })
                    .collect();
                let answers = c.batch(&reqs);
                let version = if c.proto == Proto::H1 { "1.1" } else { "2" };
                for ((id, amount, event), a) in sent.iter().zip(&answers) {
                    assert_eq!(
                        (a.status, a.version.as_str()),
                        (200, version),
                        "{}",
                        a.text()
                    );
                    let d = a.json();
                    assert_eq!(d["event_id"], *id);
                    assert_eq!(d["outcome"], outcome_of(*amount as f64));
                    assert_eq!(d["rules"][0]["reads"]["event"], *event);
                }
                answers.len()
            })
        })
        .collect();
    let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(answered, 800);
    let text = server.h1().get("/metrics").text();
    let total: f64 = ["approve", "review", "decline"]
        .iter()
        .filter_map(|o| {
            sample(
                &text,
                &format!(r#"cepheid_serve_decision_seconds_count{{scene="payment",outcome="{o}",degraded="false"}}"#),
            )
        })
        .sum();
    assert_eq!(total, 800.0, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"cepheid_serve_http_requests_total{route="/v1/decide",status="200"}"#
        ),
        Some(800.0)
    );
    text
}

const PYTHON_CLIENTS: &str = r#"
import http.client, json, sys, urllib.request, urllib.error

host, port = sys.argv[1].rsplit(":", 1)
base = f"http://{sys.argv[1]}"

def log(client, method, path, headers, body, status, answer_headers, answer):
    print(json.dumps({
        "client": client, "method": method, "path": path,
        "request_headers": {k.lower(): v for k, v in headers.items()},
        "request_body": body if body is None or isinstance(body, str) else b"".join(body).decode(),
        "request_body_utf8": True,
        "status": status,
        "headers": {k.lower(): v for k, v in answer_headers},
        "body": answer.decode(),
    }))

# http.client: one keep-alive connection for every request.
conn = http.client.HTTPConnection(host, int(port), timeout=60)
def call(method, path, body=None, chunks=None):
    headers = {"Content-Type": "application/json"} if body is not None or chunks else {}
    if chunks:
        conn.request(method, path, body=iter([c.encode() for c in chunks]), headers=headers, encode_chunked=True)
    else:
        conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    answer = r.read()
    log("python http.client", method, path, headers, body if chunks is None else "".join(chunks),
        r.status, r.getheaders(), answer)
    return r.status, answer

status, answer = call("GET", "/healthz")
assert status == 200 and json.loads(answer) == {"status": "ok"}, answer
sock = conn.sock
event = {"type": "payment", "amount": 150, "who": "py"}
status, answer = call("POST", "/v1/decide", json.dumps({"scene": "payment", "event_id": "py-1", "event": event}))
assert status == 200, answer
decision = json.loads(answer)
assert decision["outcome"] == "review" and decision["event_id"] == "py-1", decision
status, answer = call("GET", "/v1/decisions/" + decision["decision_id"])
assert status == 200 and json.loads(answer) == decision
status, answer = call("POST", "/v1/events", chunks=['{"events": [', '{"event_id": "py-e1", "event": {"type": "login"}}', ']}'])
assert status == 200 and json.loads(answer)["recorded"] == 1, answer
status, answer = call("POST", "/v1/decide", '{"scene": "payment", "event_id": }')
assert status == 400 and json.loads(answer)["error"]["code"] == "malformed_json", answer
status, answer = call("POST", "/v1/decide", json.dumps({"scene": "busy", "event_id": "py-2", "event": {}}))
assert status == 429, answer
status, answer = call("GET", "/readyz")
assert status == 200, answer
assert conn.sock is sock, "the connection was not kept"
conn.close()

# urllib: its own connection per request, errors as HTTPError.
def fetch(method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(base + path, data=body.encode() if body else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, answer, answer_headers = r.status, r.read(), r.getheaders()
    except urllib.error.HTTPError as e:
        status, answer, answer_headers = e.code, e.read(), e.headers.items()
    log("python urllib", method, path, headers, body, status, answer_headers, answer)
    return status, answer

status, answer = fetch("GET", "/v1/scenes")
assert status == 200 and [s["name"] for s in json.loads(answer)["scenes"]] == ["payment", "sign_up"]
status, answer = fetch("GET", "/v1/decisions/d-unknown")
assert status == 404 and json.loads(answer)["error"]["code"] == "not_found"
status, answer = fetch("POST", "/v1/decide", json.dumps({"scene": "payment", "event_id": "py-3", "event": {"type": "refund"}}))
assert status == 422 and json.loads(answer)["error"]["field"] == "event.type"
status, answer = fetch("GET", "/openapi.yaml")
assert status == 200 and answer.startswith(b"openapi: 3.1.0")
status, answer = fetch("POST", "/v1/decide", json.dumps({"scene": "payment", "event_id": "py-4", "event": {}, "deadline": 5}))
assert status == 400 and json.loads(answer)["error"]["field"] == "deadline", answer
"#;

fn pythons_standard_library_clients() {
    let server = Server::start("pythons_standard_library_clients");
    let exchanges = python_script("pythons_standard_library_clients", &server, PYTHON_CLIENTS);
    assert_eq!(exchanges.len(), 12);
    let text = server.h1().get("/metrics").text();
    // One connection for http.client's seven, one each for urllib's five.
    assert_eq!(
        sample(&text, "cepheid_serve_http_connections_total"),
        Some(7.0),
        "{text}"
    );
}
