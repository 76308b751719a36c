//! Tokens, start refusals, TLS, panics, slow and surplus clients, and a
//! graceful stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cepheid_serve::http::{start, StartError, ROUTES};
use serde_json::json;

use crate::fixture::Fixture;
use crate::support::{certificate, decide_body, options, sample, tokens_file, Proto, Req, Server};

pub const TESTS: &[(&str, fn())] = &[
    (
        "security::tokens_are_asked_on_every_route_but_the_document",
        tokens_are_asked_on_every_route_but_the_document,
    ),
    (
        "security::start_refuses_what_cannot_be_served_safely",
        start_refuses_what_cannot_be_served_safely,
    ),
    (
        "security::tls_speaks_h2_and_http1_by_alpn",
        tls_speaks_h2_and_http1_by_alpn,
    ),
    (
        "security::a_panic_is_a_500_and_the_server_goes_on",
        a_panic_is_a_500_and_the_server_goes_on,
    ),
    (
        "security::slow_and_silent_clients_are_closed",
        slow_and_silent_clients_are_closed,
    ),
    (
        "security::connections_past_the_limit_are_closed",
        connections_past_the_limit_are_closed,
    ),
    (
        "security::garbage_is_refused_and_the_server_goes_on",
        garbage_is_refused_and_the_server_goes_on,
    ),
    (
        "security::shutdown_finishes_the_answers_under_way",
        shutdown_finishes_the_answers_under_way,
    ),
];

fn tokens_are_asked_on_every_route_but_the_document() {
    let mut opts = options();
    opts.auth_tokens = Some(tokens_file(
        "# the ops team\nalpha-123\n\n   beta-456   \n# old: gamma\n",
    ));
    let mut server = Server::with("tokens_are_asked_on_every_route_but_the_document", opts);
    server.token = None;
    let mut paths: Vec<(&str, String)> = ROUTES
        .iter()
        .map(|(m, p)| {
            let p = p.replace("{decision_id}", "d-pay-auth");
            (*m, p.replace("{list}", "blocked"))
        })
        .collect();
    paths.push(("GET", "/nowhere".into()));
    paths.push(("DELETE", "/v1/decide".into()));
    for proto in [Proto::H1, Proto::H2] {
        let none = server.curl(proto);
        let wrong = server.curl(proto).token(Some("alpha-12"));
        let right = server.curl(proto).token(Some("alpha-123"));
        let other = server.curl(proto).token(Some("beta-456"));
        assert_eq!(
            right
                .post("/v1/decide", decide_body("payment", "pay-auth", 1))
                .status,
            200
        );
        let mut requests = Vec::new();
        for (method, path) in &paths {
            requests.push(match *method {
                "POST" if path == "/v1/events" => {
                    Req::post(path, r#"{"events":[{"event_id":"l","event":{}}]}"#)
                }
                "POST" if path.starts_with("/v1/lists/") => Req::post(path, r#"{"add":["d-1"]}"#),
                "POST" => Req::post(path, decide_body("payment", "pay-auth", 1)),
                m => Req::get(path).method(m),
            });
        }
        for (req, ((none_a, wrong_a), (right_a, other_a))) in requests.iter().zip(
            none.batch(&requests)
                .into_iter()
                .zip(wrong.batch(&requests))
                .zip(
                    right
                        .batch(&requests)
                        .into_iter()
                        .zip(other.batch(&requests)),
                ),
        ) {
            if req.path == "/openapi.yaml" {
                assert_eq!(none_a.status, 200);
                assert_eq!(wrong_a.status, 200);
                continue;
            }
            none_a.expect(401, "unauthorized");
            assert_eq!(
                none_a.header("www-authenticate"),
                Some("Bearer"),
                "{}",
                req.path
            );
            wrong_a.expect(401, "unauthorized");
            assert_eq!(
                wrong_a.header("www-authenticate"),
                Some(r#"Bearer error="invalid_token""#)
            );
            for a in [&right_a, &other_a] {
                assert_ne!(a.status, 401, "{} {}: {}", req.method, req.path, a.text());
            }
        }
        // `bearer` in any case; another scheme is refused.
        let lower = server
            .curl(proto)
            .send(Req::get("/healthz").header("Authorization", "bearer alpha-123"));
        assert_eq!(lower.status, 200);
        let basic = server
            .curl(proto)
            .send(Req::get("/healthz").header("Authorization", "Basic YWxwaGEtMTIz"));
        basic.expect(401, "unauthorized");
    }
    let text = server
        .curl(Proto::H1)
        .token(Some("beta-456"))
        .get("/metrics")
        .text();
    // Per protocol: 10 routes without a token, 10 with a wrong one, 1 Basic.
    assert_eq!(
        sample(&text, "cepheid_serve_http_unauthorized_total"),
        Some(42.0),
        "{text}"
    );
}

fn start_error(opts: cepheid_serve::http::FrontOptions) -> String {
    match start(opts, Fixture::new()) {
        Ok(front) => panic!("started on {}", front.local_addr()),
        Err(e) => e.to_string(),
    }
}

fn start_refuses_what_cannot_be_served_safely() {
    // Anywhere but loopback without tokens.
    let mut opts = options();
    opts.listen = "0.0.0.0:0".parse().unwrap();
    let said = start_error(opts.clone());
    assert!(
        said.contains("refusing to listen on 0.0.0.0:0 without --auth-tokens"),
        "{said}"
    );
    assert!(said.contains("--listen 127.0.0.1:0"), "{said}");
    let mut v6 = options();
    v6.listen = "[::]:0".parse().unwrap();
    assert!(start_error(v6).contains("without --auth-tokens"));
    // With tokens it starts.
    opts.auth_tokens = Some(tokens_file("s3cret\n"));
    let front = start(opts, Fixture::new()).expect("starts with tokens");
    assert_ne!(front.local_addr().port(), 0);
    front.shutdown();
    front.join();

    // A tokens file without a token, or not there.
    let mut opts = options();
    opts.auth_tokens = Some(tokens_file("# nobody yet\n\n"));
    let said = start_error(opts.clone());
    assert!(
        said.contains("--auth-tokens") && said.contains("holds no token"),
        "{said}"
    );
    opts.auth_tokens = Some("/nonexistent/tokens".into());
    assert!(start_error(opts).contains("cannot read it"));
    // TLS files that are not.
    let mut opts = options();
    let mut files = certificate();
    files.key = files.cert.clone();
    opts.tls = Some(files);
    let said = start_error(opts);
    assert!(said.starts_with("TLS: "), "{said}");
    // An address in use.
    let server = Server::start("start_refuses_what_cannot_be_served_safely");
    let mut opts = options();
    opts.listen = server.addr;
    let said = start_error(opts);
    assert!(
        said.starts_with(&format!("cannot listen on {}", server.addr)),
        "{said}"
    );
    let mut opts = options();
    opts.threads = 0;
    assert!(matches!(
        start(opts, Fixture::new()),
        Err(StartError::Options(_))
    ));
}

fn tls_speaks_h2_and_http1_by_alpn() {
    let mut opts = options();
    opts.tls = Some(certificate());
    let server = Server::with("tls_speaks_h2_and_http1_by_alpn", opts);
    for (proto, version) in [(Proto::H2, "2"), (Proto::H1, "1.1")] {
        let c = server.curl(proto);
        let id = format!("pay-tls-{version}");
        let a = c.post("/v1/decide", decide_body("payment", &id, 1500));
        assert_eq!(
            (a.status, a.version.as_str()),
            (200, version),
            "{}",
            a.text()
        );
        assert_eq!(a.json()["outcome"], "decline");
        let answers = c.batch(&[
            Req::get(&format!("/v1/decisions/d-{id}")),
            Req::post(
                "/v1/events",
                json!({"events": [{"event_id": id, "event": {}}]}).to_string(),
            ),
            Req::get("/v1/scenes"),
            Req::get("/healthz"),
            Req::get("/readyz"),
            Req::get("/metrics"),
            Req::get("/openapi.yaml"),
            Req::get("/v1/nothing"),
        ]);
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 404]);
        assert!(answers.iter().all(|a| a.version == version));
    }
    // Plain HTTP to the TLS listener gets no answer, and it goes on.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("200"));
    assert_eq!(server.curl(Proto::H2).get("/healthz").status, 200);
    let text = server.curl(Proto::H1).get("/metrics").text();
    assert_eq!(
        sample(&text, "cepheid_serve_tls_handshake_failures_total"),
        Some(1.0)
    );
}

fn a_panic_is_a_500_and_the_server_goes_on() {
    let server = Server::start("a_panic_is_a_500_and_the_server_goes_on");
    for c in [server.h1(), server.h2()] {
        // A panic, then another request on the same connection.
        let answers = c.batch(&[
            Req::post("/v1/decide", decide_body("panic", "p1", 1)),
            Req::get("/healthz"),
            Req::post(
                "/v1/events",
                r#"{"events":[{"event_id":"panic","event":{}}]}"#,
            ),
            Req::get("/v1/decisions/panic"),
            Req::post("/v1/decide", decide_body("payment", "after-panics", 1)),
        ]);
        answers[0].expect(500, "internal");
        assert_eq!(answers[1].status, 200);
        answers[2].expect(500, "internal");
        answers[3].expect(500, "internal");
        assert_eq!(answers[4].status, 200);
    }
    let c = server.h1();
    server.fixture.panic_in("scenes");
    c.get("/v1/scenes").expect(500, "internal");
    server.fixture.panic_in("not_ready");
    c.get("/readyz").expect(500, "internal");
    let text = c.get("/metrics").text();
    assert_eq!(
        sample(&text, "cepheid_serve_http_panics_total"),
        Some(8.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"cepheid_serve_http_requests_total{route="/v1/decide",status="500"}"#
        ),
        Some(2.0)
    );
    server.fixture.panic_in("metrics");
    c.get("/metrics").expect(500, "internal");
    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(server.h2().get("/healthz").status, 200);
}

/// Reads until the server closes the connection (a read timeout far past
/// the server's only guards against a hang: no timing is asserted).
fn read_until_closed(mut s: TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    buf
}

fn slow_and_silent_clients_are_closed() {
    let mut opts = options();
    opts.header_read_timeout = Duration::from_millis(200);
    opts.body_read_timeout = Duration::from_millis(200);
    let server = Server::with("slow_and_silent_clients_are_closed", opts);
    // Silent: connects, says nothing.
    let silent = TcpStream::connect(server.addr).unwrap();
    // Slow head: half a request line.
    let mut slow_head = TcpStream::connect(server.addr).unwrap();
    slow_head
        .write_all(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .unwrap();
    // Slow body: 10 bytes of 100.
    let mut slow_body = TcpStream::connect(server.addr).unwrap();
    slow_body
        .write_all(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"scene\":")
        .unwrap();
    // h2c: the preface, then nothing.
    let mut h2 = TcpStream::connect(server.addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    // Idle after an answer (keep-alive).
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for s in [silent, slow_head, slow_body, h2] {
        let said = read_until_closed(s);
        assert!(!String::from_utf8_lossy(&said).contains("200 OK"));
    }
    let said = String::from_utf8_lossy(&read_until_closed(idle)).into_owned();
    assert!(said.starts_with("HTTP/1.1 200 OK"), "{said}");
    let text = server.h1().get("/metrics").text();
    assert!(
        sample(&text, "cepheid_serve_http_connections_timed_out_total").unwrap() >= 4.0,
        "{text}"
    );
    assert_eq!(server.h2().get("/healthz").status, 200);
}

/// Sends a request on a raw HTTP/1.1 connection and reads its answer
/// up to `until`.
fn raw_request(s: &mut TcpStream, path: &str, until: &str) -> String {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(until) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn connections_past_the_limit_are_closed() {
    let mut opts = options();
    opts.max_connections = 1;
    let server = Server::with("connections_past_the_limit_are_closed", opts);
    let mut held = TcpStream::connect(server.addr).unwrap();
    raw_request(&mut held, "/healthz", "{\"status\":\"ok\"}");
    // The one connection is held: another is closed at once.
    let surplus = TcpStream::connect(server.addr).unwrap();
    assert!(read_until_closed(surplus).is_empty());
    let text = raw_request(&mut held, "/metrics", "# EOF\n");
    assert_eq!(
        sample(&text, "cepheid_serve_http_connections_refused_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "cepheid_serve_http_open_connections"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "cepheid_serve_http_max_connections"),
        Some(1.0)
    );
}

fn garbage_is_refused_and_the_server_goes_on() {
    let server = Server::start("garbage_is_refused_and_the_server_goes_on");
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        &[0u8; 100][..],
    ] {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(garbage).unwrap();
        let said = String::from_utf8_lossy(&read_until_closed(s)).into_owned();
        assert!(!said.contains("200 OK"), "{said}");
    }
    let mut huge = TcpStream::connect(server.addr).unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let _ = huge.write_all(head.as_bytes());
    let said = String::from_utf8_lossy(&read_until_closed(huge)).into_owned();
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 431"),
        "{said}"
    );
    assert_eq!(server.h1().get("/healthz").status, 200);
    assert_eq!(server.h2().get("/healthz").status, 200);
}

fn shutdown_finishes_the_answers_under_way() {
    let mut server = Server::start("shutdown_finishes_the_answers_under_way");
    let began = server.fixture.arm_slow();
    let mut waiting = Vec::new();
    for proto in [Proto::H1, Proto::H2] {
        let c = server.curl(proto);
        let id = format!("slow-{proto:?}");
        waiting.push(std::thread::spawn(move || {
            c.post("/v1/decide", decide_body("slow", &id, 5))
        }));
        began.recv().unwrap();
    }
    let front = server.front.take().unwrap();
    front.shutdown();
    server.fixture.release();
    for t in waiting {
        let a = t.join().unwrap();
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["outcome"], "approve");
    }
    front.join();
    assert!(TcpStream::connect(server.addr).is_err(), "still listening");
}
