//! The server's limits, against clients gone wrong: connections beyond
//! the limit refused (`503`) and counted while the run goes on, a request
//! head past the limit answered `431` and closed, a body never read, an
//! idle connection closed, and a server that stops while clients hold
//! connections. No assertion is on a time: each waits for a thing to
//! happen, with a generous guard against a hang.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{get, http};
use cepheid_monitor::{HttpLimits, Monitor};

/// How long a test waits for a thing that will happen, at most.
const PATIENCE: Duration = Duration::from_secs(60);

/// Limits with a request timeout longer than any test: idle connections
/// stay until the test closes them.
fn limits(max_connections: usize, handlers: usize) -> HttpLimits {
    let mut limits = HttpLimits::default();
    limits.max_connections = max_connections;
    limits.handlers = handlers;
    limits.request_timeout = Duration::from_secs(600);
    limits
}

/// Everything the server says on `stream` until it closes it.
fn read_to_close(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server neither answered nor closed: {e}"),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// The value of the unlabelled sample `name` in a Prometheus text.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

/// `GET /metrics` until it is answered 200 (a connection may be refused
/// while closed ones are still counted as held): the text and the
/// refusals met on the way.
fn scrape(addr: SocketAddr) -> (String, u64) {
    let deadline = Instant::now() + PATIENCE;
    let mut refused = 0;
    loop {
        let (code, head, text) = get(addr, "/metrics");
        match code {
            200 => return (text, refused),
            // (a refusal, or one reset before its answer was read)
            503 | 0 => refused += 1,
            _ => panic!("{head}\n{text}"),
        }
        assert!(Instant::now() < deadline, "never answered: {head}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connections_beyond_the_limit_are_refused_and_counted_while_the_run_goes_on() {
    let monitor = Monitor::new();
    let server = monitor.serve_with("127.0.0.1:0", limits(3, 1)).unwrap();
    let addr = server.addr();
    // A scraper gone wrong: connections that say nothing. One is held by
    // the handler, two wait for it: the limit.
    let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // One more: refused at once, with a reason, and closed.
    let answer = read_to_close(&mut TcpStream::connect(addr).unwrap());
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("limit of 3 connections"), "{answer}");
    let http = monitor.http_status().expect("served");
    assert_eq!(http.refused, 1, "{http:?}");
    assert_eq!(http.open_connections, 3, "{http:?}");
    assert_eq!(http.max_connections, 3, "{http:?}");
    // The run is not held up: it updates the status, which shows the
    // refusal.
    monitor.update(|s| s.pattern_mut("p").matches = 5);
    let text = monitor.prometheus().unwrap();
    assert_eq!(
        value(&text, "cepheid_http_connections_refused_total"),
        Some(1.0)
    );
    assert_eq!(value(&text, "cepheid_http_open_connections"), Some(3.0));
    assert_eq!(value(&text, "cepheid_http_max_connections"), Some(3.0));
    assert!(
        text.contains("cepheid_matches_total{pattern=\"p\"} 5"),
        "{text}"
    );

    // The scraper goes away: the server answers again, and counted every
    // refusal (ours, and any met while the closed ones were let go).
    drop(idle);
    let (text, refused_since) = scrape(addr);
    assert_eq!(
        value(&text, "cepheid_http_connections_refused_total"),
        Some(1.0 + refused_since as f64),
        "{text}"
    );
    assert!(
        text.contains("cepheid_matches_total{pattern=\"p\"} 5"),
        "{text}"
    );
    let (code, _, json) = get(addr, "/status.json");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["http"]["refused"], 1 + refused_since);
    assert_eq!(status["http"]["max_connections"], 3);
    server.stop().unwrap();
}

#[test]
fn a_request_head_past_the_limit_is_answered_431_and_closed() {
    let monitor = Monitor::new();
    let mut limits = limits(4, 2);
    limits.max_request_head = 8 * 1024;
    let server = monitor.serve_with("127.0.0.1:0", limits).unwrap();
    let addr = server.addr();
    // A head that never ends: 8 KiB and more of one header field.
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Junk: ".to_vec();
    head.resize(20 * 1024, b'a');
    stream.write_all(&head).unwrap();
    let answer = read_to_close(&mut stream);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    assert!(answer.contains("8192 bytes"), "{answer}");
    assert_eq!(monitor.http_status().unwrap().too_large, 1);
    // A head just within the limit is answered.
    let mut fits = b"GET /metrics HTTP/1.1\r\nX-Junk: ".to_vec();
    fits.resize(8 * 1024 - 4, b'a');
    fits.extend_from_slice(b"\r\n\r\n");
    let (code, _, text) = http(addr, &fits);
    assert_eq!(code, 200, "{text}");
    assert_eq!(
        value(&text, "cepheid_http_requests_too_large_total"),
        Some(1.0)
    );
    server.stop().unwrap();
}

#[test]
fn a_body_is_never_read() {
    let monitor = Monitor::new();
    let server = monitor.serve("127.0.0.1:0").unwrap();
    // A GET that announces a body of 100 MB and sends none: answered at
    // once (the body is not waited for).
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .write_all(b"GET /status.json HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n")
        .unwrap();
    let answer = read_to_close(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    // A POST with one: refused, its body unread.
    let (code, head, _) = http(
        server.addr(),
        b"POST /metrics HTTP/1.1\r\nContent-Length: 100000000\r\n\r\nabc",
    );
    assert_eq!(code, 405, "{head}");
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    server.stop().unwrap();
}

#[test]
fn an_idle_connection_is_closed_after_the_request_timeout() {
    let monitor = Monitor::new();
    let mut limits = limits(4, 1);
    limits.request_timeout = Duration::from_millis(200);
    let server = monitor.serve_with("127.0.0.1:0", limits).unwrap();
    let mut idle = TcpStream::connect(server.addr()).unwrap();
    // Nothing sent: closed without a word.
    assert_eq!(read_to_close(&mut idle), "");
    // Part of a head: 408.
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let answer = read_to_close(&mut slow);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert_eq!(monitor.http_status().unwrap().timed_out, 2);
    // The handler is free again.
    assert_eq!(get(server.addr(), "/metrics").0, 200);
    server.stop().unwrap();
}

#[test]
fn the_server_stops_while_clients_hold_connections() {
    let monitor = Monitor::new();
    let server = monitor.serve_with("127.0.0.1:0", limits(8, 2)).unwrap();
    let addr = server.addr();
    let mut idle: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // (each accepted: the server counts them before it stops)
    let deadline = Instant::now() + PATIENCE;
    while monitor.http_status().unwrap().connections < 6 {
        assert!(Instant::now() < deadline, "{:?}", monitor.http_status());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Stopping does not wait out the idle clients (their request timeout
    // is ten minutes): their connections are closed.
    server.stop().unwrap();
    for stream in &mut idle {
        assert_eq!(read_to_close(stream), "");
    }
    assert!(TcpStream::connect(addr).is_err() || get(addr, "/").0 == 0);
}
