//! The Rust client (`crates/client`, `docs/clients.md`) against a real
//! `cepheid serve` (issue 64): the faults by counts, not by time. The
//! server stopped (SIGSTOP) for the whole call, killed, or overloaded
//! (`--queue 0`: every decision 429 with `Retry-After`): the caller gets
//! the scene's fallback, marked decided by the client. A call the client
//! gave up on and that the server answered later, asked again with the
//! same event id, is one decision (`repeated`, the same `decision_id`,
//! `/metrics` counting one). Calls in a row make one connection. A token
//! and TLS (a certificate made now, trusted through the client's `ca`),
//! with dry run, events and a decision read again. The breaker is the
//! cases' (`crates/client/tests/cases.rs`, on an injected clock).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cepheid_client::{Client, DecidedBy, Error, Fallback, Options, Why};
use serde_json::{json, Value};

use crate::common::{cepheid, scratch, Live, PATIENCE};

/// A running `cepheid serve` on `patterns/risk`.
struct Server {
    live: Live,
    base: String,
    /// curl's arguments to reach it (a CA, a token).
    curl: Vec<String>,
}

impl Server {
    fn start(state: &Path, args: &[&str], curl: &[&str]) -> Server {
        let live = Live::spawn(
            cepheid()
                .arg("serve")
                .arg(cepheid_testkit::path("patterns/risk"))
                .arg("--state")
                .arg(state)
                .args(["--listen", "127.0.0.1:0"])
                .args(args),
        );
        let line = live
            .line(PATIENCE)
            .unwrap_or_else(|| panic!("serve printed no address"));
        let base = line
            .strip_prefix("cepheid serve: listening on ")
            .unwrap_or_else(|| panic!("not the address line: {line}"))
            .to_string();
        let server = Server {
            live,
            base,
            curl: curl.iter().map(|s| s.to_string()).collect(),
        };
        // Ready: `GET /readyz` 200 (a hang guard, not a timing).
        let started = Instant::now();
        loop {
            let (status, _) = server.get("/readyz");
            if status == "200" {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the service never became ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn pid(&self) -> String {
        self.live.child.id().to_string()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal}");
        if signal == "STOP" {
            // `kill` only queues the stop: one thread takes it and stops
            // the others, which on a loaded machine can run, and answer a
            // request, in between. Wait until every thread is stopped.
            let started = Instant::now();
            while !all_stopped(&self.pid()) {
                assert!(
                    started.elapsed() < PATIENCE,
                    "the service not stopped after SIGSTOP"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// `GET path` with curl (its own connection): status and body.
    fn get(&self, path: &str) -> (String, String) {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .args(&self.curl)
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (status.trim().to_string(), body.to_string())
    }

    /// The `cepheid_serve_*` samples of `/metrics` without labels.
    fn metrics(&self) -> BTreeMap<String, f64> {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, "200", "{body}");
        body.lines()
            .filter(|l| l.starts_with("cepheid_serve_") && !l.contains('{'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    fn metric(&self, name: &str) -> f64 {
        *self
            .metrics()
            .get(name)
            .unwrap_or_else(|| panic!("/metrics has no {name}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped server is let go on before it is killed.
        let _ = Command::new("kill")
            .args(["-s", "CONT", &self.pid()])
            .status();
        let _ = self.live.child.kill();
        let _ = self.live.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `f` awaited on `rt` (a call, or an `async` block).
fn run<F: std::future::IntoFuture>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    rt.block_on(f.into_future())
}

fn client(server: &Server, edit: impl FnOnce(&mut Options)) -> Client {
    let mut options = Options::new(&server.base);
    edit(&mut options);
    Client::new(options).expect("a client")
}

fn payment(card: &str, amount: i64) -> Value {
    json!({"type": "payment", "card": card, "device": format!("d-{card}"), "amount": amount})
}

/// A first decision (the scenes fetched, a connection open); the scene
/// `payment`'s published fallback.
async fn warm(client: &Client, id: &str) -> String {
    let d = client
        .decide("payment", &payment("c0", 5))
        .event_id(id)
        .await
        .expect("the server decides");
    assert_eq!(d.decided_by, DecidedBy::Server);
    let scenes = client.scenes().await.expect("the scenes");
    scenes.get("payment").expect("payment").fallback.clone()
}

/// (a) The server stopped for the whole call: the fallback at the
/// deadline, decided by the client (`timeout`); the server let go on
/// after, and answering again.
#[test]
fn client_rust_a_stopped_server_gets_the_fallback_as_timeout() {
    let dir = scratch("client_rust_slow");
    let server = Server::start(&dir.join("state"), &[], &[]);
    let rt = runtime();
    let client = client(&server, |o| o.deadline_ms = 400);
    let fallback = run(&rt, warm(&client, "w-1"));
    server.signal("STOP");
    let d = run(
        &rt,
        client
            .decide("payment", &payment("c1", 10))
            .event_id("slow-1"),
    )
    .expect("a fallback, not an error");
    server.signal("CONT");
    assert_eq!(d.decided_by, DecidedBy::Client, "{d:?}");
    assert_eq!(d.degraded_why.as_deref(), Some("timeout"), "{d:?}");
    assert!(d.degraded);
    assert_eq!(d.outcome, fallback);
    assert_eq!(d.attempts, 1, "a timeout leaves no time for a retry: {d:?}");
    assert_eq!(d.event_id, "slow-1");
    // The caller's own choice wins over the published one.
    let closed = self::client(&server, |o| {
        o.deadline_ms = 400;
        o.fallbacks.insert("payment".into(), Fallback::Closed);
    });
    run(&rt, warm(&closed, "w-2"));
    server.signal("STOP");
    let d = run(
        &rt,
        closed
            .decide("payment", &payment("c1", 10))
            .event_id("slow-2"),
    )
    .unwrap();
    server.signal("CONT");
    assert_eq!(
        (d.decided_by, d.outcome.as_str()),
        (DecidedBy::Client, "decline")
    );
    // Going on: the server answers again.
    let d = run(
        &rt,
        client
            .decide("payment", &payment("c1", 10))
            .event_id("slow-3"),
    )
    .unwrap();
    assert_eq!(d.decided_by, DecidedBy::Server, "{d:?}");
}

/// (b) The server gone (killed): the fallback, `unreachable`, after every
/// attempt; other calls raise `Unavailable`.
#[test]
fn client_rust_a_killed_server_gets_the_fallback_as_unreachable() {
    let dir = scratch("client_rust_gone");
    let mut server = Server::start(&dir.join("state"), &[], &[]);
    let rt = runtime();
    let client = client(&server, |o| o.deadline_ms = 5000);
    let fallback = run(&rt, warm(&client, "w-1"));
    server.live.child.kill().unwrap();
    server.live.child.wait().unwrap();
    let d = run(
        &rt,
        client
            .decide("payment", &payment("c1", 10))
            .event_id("gone-1"),
    )
    .expect("a fallback");
    assert_eq!(d.decided_by, DecidedBy::Client, "{d:?}");
    assert_eq!(d.degraded_why.as_deref(), Some("unreachable"), "{d:?}");
    assert_eq!(d.outcome, fallback);
    assert_eq!(d.attempts, 3, "max_attempts: {d:?}");
    match run(&rt, client.decision("d-1")) {
        Err(Error::Unavailable(u)) => assert_eq!(u.why, Why::Unreachable, "{u}"),
        other => panic!("{other:?}"),
    }
}

/// (c) Overloaded: past `--queue` requests in flight the server answers
/// 429 `overloaded` with `Retry-After` (the 503 is handled
/// alike). `--queue 0` is taken as 1 by the server (`queue.max(1)`), so no
/// bound refuses every decision: 32 clients at once (a barrier), 6
/// decisions each, against a queue of 1, as `cli_serve` does with curl.
/// Each refused call gets the fallback, `overloaded`; the server's counts
/// equal the clients': each 429 one fallback, each decision one answer.
/// `--queue 0` takes nothing: every decision is a 503 with `Retry-After`
/// (whose wait does not fit the deadline), the fallback after one
/// attempt; nothing is decided.
#[test]
fn client_rust_a_queue_bound_of_zero_gets_the_fallback_as_unavailable() {
    let dir = scratch("client_rust_queue0");
    let server = Server::start(&dir.join("state"), &["--queue", "0"], &[]);
    let rt = runtime();
    let client = client(&server, |o| {
        o.fallbacks.insert("payment".into(), Fallback::Closed);
    });
    for i in 0..3 {
        let d = run(
            &rt,
            client
                .decide("payment", &payment("c1", 10))
                .event_id(format!("q0-{i}")),
        )
        .expect("a fallback");
        assert_eq!(d.decided_by, DecidedBy::Client, "{d:?}");
        assert_eq!(d.degraded_why.as_deref(), Some("unavailable"), "{d:?}");
        assert_eq!((d.outcome.as_str(), d.attempts), ("decline", 1), "{d:?}");
    }
    assert_eq!(server.metric("cepheid_serve_unavailable_total"), 3.0);
    assert_eq!(server.metric("cepheid_serve_decisions_total"), 0.0);
}

#[test]
fn client_rust_an_overloaded_server_gets_the_fallback() {
    let dir = scratch("client_rust_overloaded");
    let server = Server::start(&dir.join("state"), &["--queue", "1"], &[]);
    let rt = runtime();
    let probe = client(&server, |_| {});
    let scenes = run(&rt, probe.scenes()).expect("the scenes");
    let fallback = scenes.get("payment").unwrap().fallback.clone();
    let before = server.metrics();
    let threads = 32;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let results: Vec<Vec<cepheid_client::Decided>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, base) = (barrier.clone(), server.base.clone());
                scope.spawn(move || {
                    let rt = runtime();
                    let mut options = Options::new(base);
                    // One attempt a call (so a 429 is a call's fallback),
                    // a deadline no loaded machine misses, no breaker.
                    options.max_attempts = 1;
                    options.deadline_ms = 30_000;
                    options.breaker.failure_threshold = 1_000_000;
                    let client = Client::new(options).unwrap();
                    // The scenes first (not a decision: no queue).
                    run(&rt, client.scenes()).unwrap();
                    barrier.wait();
                    (0..6)
                        .map(|i| {
                            let call = client
                                .decide("payment", &payment(&format!("q{t}"), i))
                                .event_id(format!("busy-{t}-{i}"));
                            run(&rt, call).expect("a decision or the fallback")
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (mut decided, mut refused) = (0.0, 0.0);
    for d in results.iter().flatten() {
        match d.decided_by {
            DecidedBy::Server => decided += 1.0,
            DecidedBy::Client => {
                assert_eq!(d.degraded_why.as_deref(), Some("overloaded"), "{d:?}");
                assert!(d.degraded);
                assert_eq!(d.outcome, fallback, "the published fallback");
                assert_eq!(d.attempts, 1);
                refused += 1.0;
            }
        }
    }
    assert!(
        refused > 0.0,
        "32 clients against a queue of 1: none refused"
    );
    let after = server.metrics();
    let delta = |n: &str| after[n] - before.get(n).copied().unwrap_or(0.0);
    assert_eq!(delta("cepheid_serve_refused_queue_total"), refused);
    assert_eq!(delta("cepheid_serve_decisions_total"), decided);
    assert_eq!(decided + refused, (threads * 6) as f64);
}

/// (d) A call given up on (the server stopped past its deadline) that
/// the server answers once let go on, asked again with the same event
/// id: the first decision again (`repeated`, the same `decision_id`),
/// and `/metrics` counts one decision for it.
#[test]
fn client_rust_a_retry_never_makes_a_second_decision() {
    let dir = scratch("client_rust_once");
    let server = Server::start(&dir.join("state"), &[], &[]);
    let rt = runtime();
    let client = client(&server, |o| o.deadline_ms = 300);
    run(&rt, warm(&client, "w-1"));
    let before = server.metrics();
    server.signal("STOP");
    let first = run(
        &rt,
        client
            .decide("payment", &payment("c1", 10))
            .event_id("once-1"),
    )
    .unwrap();
    assert_eq!(first.decided_by, DecidedBy::Client, "{first:?}");
    assert_eq!(first.degraded_why.as_deref(), Some("timeout"));
    server.signal("CONT");
    // The request the client gave up on is decided by the server (a
    // decision once taken is finished): wait for it (a hang guard).
    let started = Instant::now();
    while server.metric("cepheid_serve_decisions_total")
        < before["cepheid_serve_decisions_total"] + 1.0
    {
        assert!(
            started.elapsed() < PATIENCE,
            "the server never decided once-1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = run(
        &rt,
        client
            .decide("payment", &payment("c1", 10))
            .event_id("once-1"),
    )
    .unwrap();
    assert_eq!(again.decided_by, DecidedBy::Server, "{again:?}");
    let decision = again.decision.as_ref().unwrap();
    assert_eq!(decision.repeated, Some(true), "{again:?}");
    let looked = run(&rt, client.decision(&decision.decision_id)).expect("the decision read again");
    assert_eq!(looked.event_id, "once-1");
    assert_eq!(looked.decision_id, decision.decision_id);
    let after = server.metrics();
    let delta = |n: &str| after[n] - before[n];
    assert_eq!(delta("cepheid_serve_decisions_total"), 2.0, "two answers");
    assert_eq!(
        delta("cepheid_serve_repeated_total"),
        1.0,
        "one of them repeated"
    );
}

/// (e) Calls in a row make one connection: `/metrics`' connections grow
/// by the client's one and the second fetch's own.
#[test]
fn client_rust_calls_in_a_row_reuse_one_connection() {
    let dir = scratch("client_rust_reuse");
    let server = Server::start(&dir.join("state"), &[], &[]);
    let rt = runtime();
    let client = client(&server, |_| {});
    let before = server.metric("cepheid_serve_http_connections_total");
    let calls = run(&rt, async {
        let mut n = 0;
        for i in 0..10 {
            let d = client
                .decide("payment", &payment("c2", i))
                .event_id(format!("row-{i}"))
                .await
                .unwrap();
            assert_eq!(d.decided_by, DecidedBy::Server);
            client.decision(d.decision_id().unwrap()).await.unwrap();
            n += 2;
        }
        client
            .record(
                [(
                    "row-login".to_string(),
                    json!({"type": "login", "account": "a1", "device": "d1"}),
                )],
                None,
            )
            .await
            .unwrap();
        client.scenes().await.unwrap();
        n + 3 // and the scenes' first fetch
    });
    let after = server.metric("cepheid_serve_http_connections_total");
    assert_eq!(
        after - before,
        2.0,
        "{calls} calls: one connection, and the metrics' second fetch's own"
    );
}

/// A self-signed certificate for 127.0.0.1, made now: its files.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        // An end-entity certificate: rustls (webpki) refuses a CA
        // certificate as the server's own (`CaUsedAsEndEntity`), which
        // `openssl req -x509` makes by default (curl and Python accept it).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl makes a certificate");
    (cert, key)
}

/// (f) A token and TLS, the certificate trusted through `ca`: decisions
/// (explained), a dry run, events, a decision read again, the scenes; no
/// token is the server's 401; no `ca` is no connection.
#[test]
fn client_rust_a_token_and_tls_with_every_call() {
    let dir = scratch("client_rust_tls");
    let (cert, key) = certificate(&dir);
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "secret-7\n").unwrap();
    let server = Server::start(
        &dir.join("state"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--auth-tokens",
            tokens.to_str().unwrap(),
        ],
        &[
            "--cacert",
            cert.to_str().unwrap(),
            "-H",
            "authorization: Bearer secret-7",
        ],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let rt = runtime();
    let client = client(&server, |o| {
        o.ca = Some(cert.clone());
        o.token = Some("secret-7".into());
        o.deadline_ms = 5000;
    });
    run(&rt, async {
        let d = client
            .decide("payment", &payment("c3", 10))
            .event_id("tls-1")
            .explain(true)
            .await
            .unwrap();
        assert_eq!((d.decided_by, d.attempts), (DecidedBy::Server, 1), "{d:?}");
        let decision = d.decision.clone().unwrap();
        assert!(decision.explanation.is_some(), "{decision:?}");
        let dry = client
            .dry_run("payment", &payment("c3", 10))
            .event_id("tls-dry")
            .await
            .unwrap();
        assert_eq!(
            dry.decision.as_ref().unwrap().mode,
            cepheid_client::api::Mode::DryRun
        );
        let recorded = client
            .record(
                [
                    (
                        "tls-l1".to_string(),
                        json!({"type": "login", "account": "a1", "device": "d3"}),
                    ),
                    (
                        "tls-l2".to_string(),
                        json!({"type": "login", "account": "a2", "device": "d3"}),
                    ),
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!((recorded.recorded, recorded.repeated), (2, 0));
        let again = client
            .record(
                [(
                    "tls-l1".to_string(),
                    json!({"type": "login", "account": "a1", "device": "d3"}),
                )],
                None,
            )
            .await
            .unwrap();
        assert_eq!((again.recorded, again.repeated), (0, 1));
        // The decision read again is the one answered, but for the
        // server's time on the request (`elapsed_us`: the kept copy
        // says 0, written before it was measured).
        let mut looked = client.decision(&decision.decision_id).await.unwrap();
        looked.elapsed_us = decision.elapsed_us;
        assert_eq!(looked, decision);
        match client.decision("d-999999").await {
            Err(Error::Api(e)) => assert_eq!(e.status, 404, "{e}"),
            other => panic!("{other:?}"),
        }
        let scenes = client.scenes().await.unwrap();
        let names: Vec<&str> = scenes.scenes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["payment", "coupon", "sign_up"]);
        // A refusal is raised: an unknown scene.
        match client
            .decide("paymnet", &payment("c3", 1))
            .event_id("tls-x")
            .await
        {
            Err(Error::Api(e)) => {
                assert_eq!(
                    (e.status, e.code.map(|c| c.as_str())),
                    (404, Some("unknown_scene"))
                )
            }
            other => panic!("{other:?}"),
        }
        // An event that is not an object is refused before it is sent.
        assert!(matches!(
            client.decide("payment", &json!([1, 2])).await,
            Err(Error::Invalid(_))
        ));
    });
    // No token: the scenes' fetch is refused 401, the call's error.
    let anonymous = self::client(&server, |o| o.ca = Some(cert.clone()));
    match run(
        &rt,
        anonymous
            .decide("payment", &payment("c3", 10))
            .event_id("tls-2"),
    ) {
        Err(Error::Api(e)) => {
            assert_eq!(
                (e.status, e.code.map(|c| c.as_str())),
                (401, Some("unauthorized"))
            )
        }
        other => panic!("{other:?}"),
    }
    // Not trusting the certificate: no connection.
    let untrusting = self::client(&server, |o| {
        o.token = Some("secret-7".into());
        o.max_attempts = 1;
    });
    match run(&rt, untrusting.scenes()) {
        Err(Error::Unavailable(u)) => assert_eq!(u.why, Why::Unreachable, "{u}"),
        other => panic!("{other:?}"),
    }
    // A CA file that is no certificate is the client's error.
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let mut options = Options::new(&server.base);
    options.ca = Some(bad);
    assert!(matches!(Client::new(options), Err(Error::Invalid(_))));
}

/// `change_list` against the real server: a device blocked by it is
/// declined from the next decision, unblocked approved again; a list the
/// rules do not declare is the server's 404; a change that is none is
/// refused before anything is sent.
#[test]
fn client_rust_a_list_change_blocks_a_device_from_the_next_decision() {
    use cepheid_client::api::{Expires, ListChange};
    let dir = scratch("client_rust_list_change");
    let server = Server::start(&dir.join("state"), &[], &[]);
    let rt = runtime();
    let client = client(&server, |_| {});
    let on =
        |card: &str| json!({"type": "payment", "card": card, "device": "d-listed", "amount": 5});
    let outcome = |card: &str| {
        run(&rt, client.decide("payment", &on(card)))
            .unwrap()
            .outcome
    };
    assert_eq!(outcome("c-r1"), "approve");
    let add = ListChange {
        add: Some(vec![json!("d-listed")]),
        expires: None,
        remove: None,
    };
    let changed = run(&rt, client.change_list("blocked_devices", &add, None)).unwrap();
    assert_eq!((changed.added, changed.removed), (1, 0));
    assert!(
        changed.expires.is_some() && changed.entry > 0,
        "{changed:?}"
    );
    assert_eq!(outcome("c-r2"), "decline");
    let remove = ListChange {
        add: None,
        expires: None,
        remove: Some(vec![json!("d-listed")]),
    };
    let gone = run(&rt, client.change_list("blocked_devices", &remove, None)).unwrap();
    assert_eq!((gone.removed, gone.expires), (1, None));
    assert_eq!(outcome("c-r3"), "approve");
    let until = ListChange {
        add: Some(vec![json!("d-x"), json!(7)]),
        expires: Some(Expires::Time("2026-12-01T00:00:00Z".into())),
        remove: None,
    };
    let at = run(&rt, client.change_list("blocked_devices", &until, None)).unwrap();
    assert_eq!(at.expires, Some(1_796_083_200_000));
    match run(&rt, client.change_list("blocked_devics", &add, None)) {
        Err(cepheid_client::Error::Api(e)) => assert_eq!(e.status, 404, "{e}"),
        other => panic!("{other:?}"),
    }
    let none = ListChange {
        add: None,
        expires: None,
        remove: None,
    };
    assert!(matches!(
        run(&rt, client.change_list("blocked_devices", &none, None)),
        Err(cepheid_client::Error::Invalid(_))
    ));
    let null = ListChange {
        add: Some(vec![Value::Null]),
        expires: None,
        remove: None,
    };
    assert!(matches!(
        run(&rt, client.change_list("blocked_devices", &null, None)),
        Err(cepheid_client::Error::Invalid(_))
    ));
}

/// Whether every thread of process `pid` is stopped (state `T` in /proc).
fn all_stopped(pid: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        // A thread gone since the listing is not running.
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            return true;
        };
        stat.rfind(')')
            .is_some_and(|at| stat[at + 1..].trim_start().starts_with('T'))
    })
}
