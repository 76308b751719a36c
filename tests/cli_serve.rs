//! `cepheid serve` (issue 63, `docs/serve.md`) as its users meet it: the
//! real server process on `127.0.0.1:0`, its address read from its first
//! line, driven by real clients (curl over HTTP/1.1, h2c and TLS;
//! Python's standard library, `tests/serve/clients.py`, many threads at
//! once). What it must show: the live answers equal what `cepheid
//! backtest --events wal:DIR` computes over the log (with a change of
//! rules and degraded answers in the stream); killed with SIGKILL under
//! load and restarted, every answer a client got is in the state, and
//! retries count once; overload by counts (a deadline of 0, a queue of
//! 1 against 32 clients), equal to `/metrics`'.
//!
//! The transport alone (every route and error of the document, limits,
//! tokens, a panicking service) is `crates/serve/tests/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{cepheid, scratch, Live, PATIENCE};

pub(crate) fn risk() -> PathBuf {
    cepheid_testkit::path("patterns/risk")
}

/// A running `cepheid serve`: its process and its base URL.
pub(crate) struct Server {
    pub(crate) live: Live,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn start(rules: &Path, state: &Path, args: &[&str]) -> Server {
        Server::start_with(rules, state, args, &[])
    }

    /// [`Server::start`], asking for readiness with curl's `curl_args`
    /// (a certificate, a token).
    fn start_with(rules: &Path, state: &Path, args: &[&str], curl_args: &[&str]) -> Server {
        Server::start_by(cepheid(), rules, state, args, curl_args)
    }

    /// [`Server::start_with`] by `command`: the `cepheid` program, or a
    /// program that runs it (`taskset`).
    fn start_by(
        mut command: Command,
        rules: &Path,
        state: &Path,
        args: &[&str],
        curl_args: &[&str],
    ) -> Server {
        let live = Live::spawn(
            command
                .arg("serve")
                .arg(rules)
                .arg("--state")
                .arg(state)
                .args(["--listen", "127.0.0.1:0"])
                .args(args),
        );
        let Some(line) = live.line(PATIENCE) else {
            let (status, _, stderr) = live.finish();
            panic!("serve printed no address ({status}): {stderr}");
        };
        let base = line
            .strip_prefix("cepheid serve: listening on ")
            .unwrap_or_else(|| panic!("not the address line: {line}"))
            .to_string();
        let server = Server { live, base };
        server.wait_ready(curl_args);
        server
    }

    /// Waits (a hang guard: [`PATIENCE`]) until `/readyz` says ready.
    fn wait_ready(&self, curl_args: &[&str]) {
        let started = Instant::now();
        let url = format!("{}/readyz", self.base);
        let mut args = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        args.extend_from_slice(curl_args);
        args.push(&url);
        loop {
            let (status, _) = curl(&args, &[]);
            if status.trim() == "200" {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the service never became ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGTERM; its standard error.
    pub(crate) fn stop(self) -> String {
        self.live.signal("TERM");
        let (status, _, stderr) = self.live.finish();
        assert!(status.success(), "{stderr}");
        stderr
    }

    /// Kills it with SIGKILL.
    pub(crate) fn kill(mut self) {
        self.live.child.kill().unwrap();
        let _ = self.live.child.wait();
    }
}

/// Runs curl with `args` (and `body` on its standard input when given);
/// its standard output and error.
pub(crate) fn curl(args: &[&str], body: &[u8]) -> (String, String) {
    use std::io::Write;
    let mut child = Command::new("curl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(body).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// POSTs `body` to `url` with curl and `extra` arguments: the status and
/// the answer as JSON.
pub(crate) fn post(url: &str, body: &str, extra: &[&str]) -> (u16, Value) {
    let mut args = vec![
        "-s",
        "-w",
        "\n%{http_code}",
        "-H",
        "content-type: application/json",
        "--data-binary",
        "@-",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let (out, err) = curl(&args, body.as_bytes());
    let (json, status) = out
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("{out}{err}"));
    let status: u16 = status
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{out}{err}"));
    (
        status,
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json} {err}")),
    )
}

/// A payment's decision request, with a deadline of a minute: these requests' tests look at their
/// decisions, which on a loaded machine could otherwise come after the
/// scene's deadline (300 ms) and be answered degraded (`docs/serve.md`,
/// "Degraded at the deadline"); the tests of degradation ask for it
/// (`deadline_ms: 0`, `tests/serve/clients.py`).
pub(crate) fn payment(id: &str, card: &str, amount: i64) -> String {
    format!(
        r#"{{"scene": "payment", "event_id": "{id}", "event": {{"type": "payment", "card": "{card}", "device": "d-{card}", "amount": {amount}}}, "deadline_ms": 60000}}"#
    )
}

/// Runs `tests/serve/clients.py` with `args`; its answers (one JSON
/// object per request).
pub(crate) fn clients(base: &str, out: &Path, args: &[&str]) -> Vec<Value> {
    let script = cepheid_testkit::path("tests/serve/clients.py");
    let status = Command::new("python3")
        .arg(script)
        .arg(base)
        .arg(out)
        .args(args)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "clients.py {args:?}");
    read_lines(out)
}

/// A copy of the risk rules in `dir/rules` (a test edits its files).
pub(crate) fn risk_rules_in(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for f in ["rules.cep", "scenes.cep"] {
        std::fs::copy(risk().join(f), rules.join(f)).unwrap();
    }
    rules
}

/// `server` under 8 clients' load (`clients.py --until-killed`, their
/// answers to `out`), killed with SIGKILL once `answers` answers went out
/// (a hang guard: [`PATIENCE`] twice); what the clients got.
pub(crate) fn killed_under_load(server: Server, out: &Path, answers: usize) -> Vec<Value> {
    let script = cepheid_testkit::path("tests/serve/clients.py");
    let mut load = Command::new("python3")
        .arg(&script)
        .arg(&server.base)
        .arg(out)
        .args(["--threads", "8", "--each", "100000", "--until-killed"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    // (lines being written are read whole only: count the newlines)
    let written =
        |path: &Path| std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    while written(out) < answers {
        assert!(
            started.elapsed() < PATIENCE * 2,
            "the clients got too few answers"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    assert!(load.wait().unwrap().success());
    read_lines(out)
}

/// The answers `cepheid backtest RULES --events wal:LOG` prints, by
/// decision id (a retried decision's last).
pub(crate) fn replayed_answers(rules: &Path, log: &Path) -> BTreeMap<String, Value> {
    let out = cepheid()
        .arg("backtest")
        .arg(rules)
        .arg("--events")
        .arg(format!("wal:{}", log.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["decision_id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

pub(crate) fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Checks the exchanges recorded in `path` (`clients.py --exchanges`)
/// against `docs/api/openapi.yaml` (`tests/openapi/exchanges.py`): every
/// request the clients sent and every answer the real server gave fits
/// the document.
fn check_exchanges(path: &Path) {
    let python = crate::openapi::python();
    let out = Command::new(python)
        .arg(cepheid_testkit::path("tests/openapi/exchanges.py"))
        .arg(cepheid_testkit::path("docs/api/openapi.yaml"))
        .arg(path)
        .output()
        .expect("exchanges.py runs");
    assert!(
        out.status.success(),
        "the server's answers do not fit the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An answer as compared with the log's replay: without the time it took.
pub(crate) fn comparable(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("elapsed_us");
    }
    body
}

/// A self-signed certificate for 127.0.0.1, made now (never committed):
/// the certificate's and the key's paths.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    (cert, key)
}

/// Over TLS with a token (curl, HTTP/1.1 and HTTP/2 by ALPN), and over
/// plain TCP (HTTP/1.1 and h2c, Python's `urllib`): decisions, a retry, a
/// reused id, an unknown scene, the scenes, a decision read again,
/// readiness, metrics; a token missing is a 401.
#[test]
fn serve_answers_over_h1_h2c_and_tls_as_the_document_says() {
    let dir = scratch("serve_tls");
    let (cert, key) = certificate(&dir);
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "# the tests' token\nsecret-1\n").unwrap();
    let server = Server::start_with(
        &risk(),
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
            "authorization: Bearer secret-1",
        ],
    );
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let ca = cert.to_str().unwrap();
    let auth = ["--cacert", ca, "-H", "authorization: Bearer secret-1"];
    let decide = format!("{}/v1/decide", server.base);
    let mut answers = Vec::new();
    for (i, version) in ["--http1.1", "--http2", "--http1.1", "--http2"]
        .into_iter()
        .enumerate()
    {
        let mut extra = auth.to_vec();
        extra.push(version);
        let (status, answer) = post(&decide, &payment(&format!("t{i}"), "c1", 10), &extra);
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    let outcomes: Vec<&str> = answers
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["approve", "approve", "approve", "review"]);
    assert_eq!(
        answers[3]["rules"][0]["reads"]["card_payments_10m(card)"],
        4
    );
    // A retry: the same answer; another amount under the same id: a 409.
    let (status, again) = post(&decide, &payment("t1", "c1", 10), &auth);
    assert_eq!(
        (status, &again["decision_id"], &again["repeated"]),
        (200, &answers[1]["decision_id"], &Value::Bool(true))
    );
    let (status, conflict) = post(&decide, &payment("t1", "c1", 11), &auth);
    assert_eq!(
        (status, conflict["error"]["field"].as_str()),
        (409, Some("event.amount")),
        "{conflict}"
    );
    // No token: 401.
    let (status, refused) = post(&decide, &payment("t9", "c1", 10), &["--cacert", ca]);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // A decision read again, the scenes, readiness.
    let id = answers[3]["decision_id"].as_str().unwrap();
    let (got, _) = curl(
        &[
            "-s",
            "--cacert",
            ca,
            "-H",
            "authorization: Bearer secret-1",
            &format!("{}/v1/decisions/{id}", server.base),
        ],
        &[],
    );
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(comparable(&got), comparable(&answers[3]));
    let (scenes, _) = curl(
        &[
            "-s",
            "--cacert",
            ca,
            "-H",
            "authorization: Bearer secret-1",
            &format!("{}/v1/scenes", server.base),
        ],
        &[],
    );
    let scenes: Value = serde_json::from_str(&scenes).unwrap();
    let names: Vec<&str> = scenes["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["payment", "coupon", "sign_up"]);
    server.stop();

    // Plain TCP: h2c with curl, HTTP/1.1 with Python's standard library.
    let server = Server::start(&risk(), &dir.join("plain"), &[]);
    let decide = format!("{}/v1/decide", server.base);
    let (status, h2c) = post(
        &decide,
        &payment("h1", "c2", 10),
        &["--http2-prior-knowledge"],
    );
    assert_eq!((status, h2c["outcome"].as_str()), (200, Some("approve")));
    let python = format!(
        r#"
import json, urllib.request
req = urllib.request.Request({decide:?}, data=json.dumps({{"scene": "payment", "event_id": "py1", "event": {{"type": "payment", "card": "c2", "device": "d-c2", "amount": 5}}}}).encode(), headers={{"content-type": "application/json"}})
print(json.load(urllib.request.urlopen(req))["decision_id"])
"#
    );
    let out = Command::new("python3")
        .args(["-c", &python])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("d-"));
    // An event the scene refuses: a 422 naming its condition.
    let (status, refused) = post(
        &decide,
        r#"{"scene": "payment", "event_id": "r1", "event": {"type": "refund", "card": "c2"}}"#,
        &[],
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("not_in_scene")),
        "{refused}"
    );
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains(r#"type == "payment""#));
    server.stop();
}

/// Overload, by counts: `deadline_ms: 0` gets the scene's fallback,
/// degraded; a queue of 1 against 32 clients at once gives 429s with
/// `Retry-After`; the counts on `/metrics` equal the clients' tallies.
/// Unless `--threads` says otherwise, the front answers HTTP on one
/// thread where the service may run on one core only (two of tokio's
/// workers on one core wake each other to steal work: `BENCHMARKS.md`,
/// "Session 72"), else on two; `--threads N` is taken as given.
#[test]
fn the_front_has_one_http_thread_on_one_core_else_two() {
    let dir = scratch("serve-threads");
    let http_threads = |server: &Server| {
        let tasks = format!("/proc/{}/task", server.live.child.id());
        std::fs::read_dir(tasks)
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "cepheid-http")
            .count()
    };
    let on_core_0 = || {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", "0"]).arg(env!("CARGO_BIN_EXE_cepheid"));
        taskset
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (i, (command, args, threads)) in [
        (cepheid(), &[][..], cores.min(2)),
        (on_core_0(), &[][..], 1),
        (on_core_0(), &["--threads", "3"][..], 3),
    ]
    .into_iter()
    .enumerate()
    {
        let state = dir.join(format!("state-{i}"));
        let server = Server::start_by(command, &risk(), &state, args, &[]);
        assert_eq!(http_threads(&server), threads, "{args:?}");
        server.stop();
    }
    // (a mistyped count is said, not tried)
    let refused = cepheid()
        .args(["serve", "--listen", "127.0.0.1:0", "--threads", "100000000"])
        .arg(risk())
        .arg("--state")
        .arg(dir.join("state-many"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("threads must be at most 1024 (got 100000000)"),
        "{said}"
    );
}

#[test]
fn overload_is_answered_by_counts_that_metrics_tell() {
    let dir = scratch("serve_overload");
    let server = Server::start(&risk(), &dir.join("state"), &["--queue", "1"]);
    let answers = clients(
        &server.base,
        &dir.join("answers.jsonl"),
        &[
            "--threads",
            "32",
            "--each",
            "6",
            "--deadline-every",
            "3",
            "--barrier",
            "--exchanges",
            dir.join("exchanges.jsonl").to_str().unwrap(),
        ],
    );
    check_exchanges(&dir.join("exchanges.jsonl"));
    assert_eq!(answers.len(), 32 * 6);
    let mut tally: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &answers {
        let kind = match a["status"].as_u64() {
            Some(200) if a["body"]["degraded"] == true => {
                assert_eq!(a["body"]["degraded_why"], "deadline");
                assert_eq!(a["body"]["outcome"], "approve", "the scene's fallback");
                "degraded"
            }
            Some(200) => "decided",
            Some(429) => {
                assert_eq!(a["retry_after"], "1", "{a}");
                assert_eq!(a["body"]["error"]["code"], "overloaded");
                "refused"
            }
            other => panic!("{other:?}: {a}"),
        };
        *tally.entry(kind).or_default() += 1;
    }
    assert!(
        tally.get("refused").copied().unwrap_or(0) > 0,
        "32 clients against a queue of 1: {tally:?}"
    );
    assert!(tally.get("degraded").copied().unwrap_or(0) > 0, "{tally:?}");
    let (metrics, _) = curl(&["-s", &format!("{}/metrics", server.base)], &[]);
    let count = |name: &str| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("cepheid_serve_{name}_total ")))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(count("refused_queue"), tally["refused"], "{metrics}");
    // (degraded at admission, or at the deadline on a loaded machine)
    assert_eq!(
        count("degraded_deadline") + count("degraded_late"),
        tally["degraded"]
    );
    assert_eq!(count("decisions"), tally["decided"] + tally["degraded"]);
    server.stop();
}

/// Live equals backtest: 8 clients at once, a change of rules while they
/// run (`--watch`), every 5th request with a deadline of 0 (degraded); the
/// answers they got are, answer for answer, what `cepheid backtest
/// RULES --events wal:STATE/log` prints.
#[test]
fn the_answers_clients_got_are_what_backtest_computes_over_the_log() {
    let dir = scratch("serve_backtest");
    let rules = risk_rules_in(&dir);
    let server = Server::start(&rules, &dir.join("state"), &["--watch", "--tick", "50ms"]);
    let exchanges = dir.join("exchanges.jsonl");
    let exchanges = exchanges.to_str().unwrap();
    let first = clients(
        &server.base,
        &dir.join("a.jsonl"),
        &[
            "--threads",
            "8",
            "--each",
            "8",
            "--deadline-every",
            "5",
            "--prefix",
            "a",
            "--exchanges",
            exchanges,
        ],
    );
    // Velocity reviews from 3 payments on (it was 4).
    let text = std::fs::read_to_string(rules.join("rules.cep")).unwrap();
    let changed = text.replace(
        "card_payments_10m(card) >= 4",
        "card_payments_10m(card) >= 3",
    );
    assert_ne!(text, changed);
    std::fs::write(rules.join("rules.cep"), changed).unwrap();
    let started = Instant::now();
    loop {
        let (scenes, _) = curl(&["-s", &format!("{}/v1/scenes", server.base)], &[]);
        if serde_json::from_str::<Value>(&scenes).unwrap()["rules_version"] == 2 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the change of rules was not applied"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = clients(
        &server.base,
        &dir.join("b.jsonl"),
        &[
            "--threads",
            "8",
            "--each",
            "8",
            "--deadline-every",
            "5",
            "--prefix",
            "b",
            "--exchanges",
            exchanges,
        ],
    );
    // A retry, answered with the first's decision (`repeated`), told by
    // `why` with it.
    let decide = format!("{}/v1/decide", server.base);
    let twice: Vec<Value> = (0..2)
        .map(|_| post(&decide, &payment("twice", "c-twice", 5), &[]).1)
        .collect();
    assert_eq!(twice[1]["repeated"], true, "{twice:?}");
    server.stop();
    check_exchanges(Path::new(exchanges));
    let answered: Vec<&Value> = first.iter().chain(&second).collect();
    assert!(answered.iter().all(|a| a["status"] == 200), "{answered:?}");
    let versions: BTreeSet<u64> = answered
        .iter()
        .map(|a| a["body"]["rules_version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, BTreeSet::from([1, 2]));
    assert!(answered.iter().any(|a| a["body"]["degraded"] == true));
    let replayed: BTreeMap<String, Value> = replayed_answers(&rules, &dir.join("state/log"))
        .into_iter()
        .map(|(id, v)| (id, comparable(&v)))
        .collect();
    // (and the retried request's one decision, as its retry was answered:
    // the replay's last answer of that decision)
    assert_eq!(replayed.len(), answered.len() + 1);
    for body in answered.iter().map(|a| &a["body"]).chain(&twice[1..]) {
        let id = body["decision_id"].as_str().unwrap();
        assert_eq!(replayed.get(id), Some(&comparable(body)), "{id}");
    }
    why_over_the_log(&rules, &dir.join("state/log"), &answered, &twice);
}

/// `cepheid why RULES --event ID --events wal:DIR` tells each request as
/// its client was answered: a degraded one (the fallback the client got,
/// the decision made all the same), one decided by each version of the
/// rules with a rule fired; an unknown id, `--max-live-runs` for a key
/// and `--workers` are refused (exit 2) with what to do, and `backtest`'s
/// `--html` and `--labels` over the log. `why RULES KEY` of a card the
/// velocity rule fired on under the changed rules traces the velocity
/// rule's two versions, and its matches are the replay's alerts for it.
fn why_over_the_log(rules: &Path, log: &Path, answered: &[&Value], twice: &[Value]) {
    let events = format!("wal:{}", log.display());
    let why = |args: &[&str]| {
        let out = cepheid()
            .arg("why")
            .arg(rules)
            .args(["--events", &events])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // (an event id the clients asked once: a client's retry is told
    // with its first request, below)
    let once = |a: &&&Value| {
        let id = &a["body"]["event_id"];
        answered
            .iter()
            .filter(|b| b["body"]["event_id"] == *id)
            .count()
            == 1
    };
    let fired =
        |a: &&&Value| once(a) && a["body"]["rules"].as_array().is_some_and(|r| !r.is_empty());
    let degraded = |a: &&&Value| once(a) && a["body"]["degraded"] == true;
    let of_version =
        |v: u64| move |a: &&&Value| a["body"]["rules_version"] == v && !degraded(a) && fired(a);
    let picks = [
        answered.iter().find(degraded),
        answered.iter().find(of_version(1)),
        answered.iter().find(of_version(2)),
    ];
    for a in picks {
        let a = &a.expect("a degraded answer and a rule fired under each version")["body"];
        let id = a["event_id"].as_str().unwrap();
        let (code, out, err) = why(&["--event", id, "--json"]);
        assert_eq!(code, Some(0), "{err}");
        let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(doc["event"], id);
        let decisions = doc["decisions"].as_array().unwrap();
        assert_eq!(decisions.len(), 1, "{doc}");
        let d = &decisions[0]["decision"];
        assert_eq!(d["scene"], a["scene"], "{doc}");
        let seq = a["decision_id"]
            .as_str()
            .unwrap()
            .strip_prefix("d-")
            .unwrap();
        let notes: Vec<&str> = (doc["notes"].as_array().unwrap().iter())
            .map(|n| n.as_str().unwrap())
            .collect();
        let head = format!(
            "log entry {seq} at {}, decided by the rules of version {}",
            a["stamp"], a["rules_version"]
        );
        assert!(notes[0].starts_with(&head), "{notes:?} against {head}");
        let names = |rules: &Value| -> Vec<String> {
            (rules.as_array().unwrap().iter())
                .map(|r| r["rule"].as_str().unwrap().to_string())
                .collect()
        };
        if a["degraded"] == true {
            let said = format!(
                "the client got the scene's fallback, {}",
                a["outcome"].as_str().unwrap()
            );
            assert!(notes.iter().any(|n| n.contains(&said)), "{notes:?}");
        } else {
            assert_eq!(notes.len(), 1, "{notes:?}");
            assert_eq!(d["outcome"], a["outcome"], "{doc}");
            assert_eq!(d["score"], a["score"], "{doc}");
            assert_eq!(names(&d["rules"]), names(&a["rules"]), "{doc}");
            let told = decisions[0]["rules"].as_array().unwrap();
            for name in names(&a["rules"]) {
                assert!(
                    told.iter()
                        .any(|r| r["rule"] == *name && r["fired"] == true),
                    "{name}: {doc}"
                );
            }
        }
        // (and as text)
        let (code, out, err) = why(&["--event", id]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            out.starts_with(&format!("event {id}: 1 decision\n  {head}")),
            "{out}"
        );
    }
    // A card of 8 payments, 5 of them under the changed rules, that the
    // velocity rule fired on under the change: its trace is the replay's.
    let velocity = |a: &&&Value| {
        a["body"]["rules_version"] == 2
            && (a["body"]["rules"].as_array().into_iter().flatten())
                .any(|r| r["rule"] == "payment_velocity")
    };
    let card = answered.iter().find(velocity).expect("a velocity review")["card"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = why(&[&card, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let traced = traced_alerts(&doc);
    assert_eq!(
        traced,
        replayed_alerts(rules, log, &serde_json::json!({ "card": card })),
        "{doc}"
    );
    assert!(
        (traced.iter()).any(|(p, v, ..)| p == "payment_velocity" && *v == 2),
        "{traced:?}"
    );
    // The retry: one decision, told once, the retry said.
    let (code, out, err) = why(&["--event", "twice", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["decisions"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(
        doc["decisions"][0]["decision"]["outcome"],
        twice[0]["outcome"]
    );
    let first = twice[0]["decision_id"]
        .as_str()
        .unwrap()
        .strip_prefix("d-")
        .unwrap();
    let notes = doc["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{doc}");
    let retry = notes[1].as_str().unwrap();
    assert!(
        retry.contains("a retry (log entry ")
            && retry.contains(&format!(
                "answered with the decision of log entry {first} at"
            )),
        "{retry}"
    );
    for (args, said) in [
        (
            &["--event", "no-such-request"][..],
            "holds no decision request of that event id",
        ),
        (
            &["c1", "--max-live-runs", "5"][..],
            "--max-live-runs: a service's log",
        ),
        #[cfg(feature = "workers")]
        (
            &["--event", "a-0-0", "--workers", "2"][..],
            "--workers: a service's log",
        ),
    ] {
        let (code, _, err) = why(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
    // (and `backtest` over the log says what it does not take)
    for flag in [&["--html", "page.html"][..], &["--labels", "labels.jsonl"]] {
        let out = cepheid()
            .arg("backtest")
            .arg(rules)
            .args(["--events", &events])
            .args(flag)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {err}");
        assert!(
            err.contains(&format!("{}: a service's log", flag[0])),
            "{err}"
        );
    }
}

/// Killed with SIGKILL under load (8 clients), then restarted on the same
/// state: every decision a client got is in the state as it was answered;
/// the clients retry every request (the unanswered ones with the same
/// event ids) and get one decision each; no indicator counted a request
/// twice (each card's count is its requests', read by the velocity rule).
#[test]
fn killed_under_load_then_restarted_every_answer_stands_and_retries_count_once() {
    let dir = scratch("serve_crash");
    let state = dir.join("state");
    let server = Server::start(&risk(), &state, &["--checkpoint-every", "200ms"]);
    // Killed once a few hundred answers went out (and a checkpoint or two).
    let live = killed_under_load(server, &dir.join("live.jsonl"), 300);
    let answered: Vec<&Value> = live.iter().filter(|a| a["status"] == 200).collect();
    let unanswered: Vec<&Value> = live.iter().filter(|a| a["status"] == 0).collect();
    assert!(answered.len() >= 300);
    assert!(
        live.iter().all(|a| a["status"] == 200 || a["status"] == 0),
        "{live:?}"
    );
    let server = Server::start(&risk(), &state, &[]);
    // Every answer a client got is in the state, as answered.
    for a in &answered {
        let id = a["body"]["decision_id"].as_str().unwrap();
        let (got, _) = curl(&["-s", &format!("{}/v1/decisions/{id}", server.base)], &[]);
        let got: Value = serde_json::from_str(&got).unwrap_or_else(|e| panic!("{e}: {got}"));
        assert_eq!(comparable(&got), comparable(&a["body"]), "{id}");
    }
    // Every request again, with its event id: each answered one gets its
    // answer again; each unanswered one gets one decision.
    let retries = dir.join("retries.jsonl");
    let wanted: String = live
        .iter()
        .map(|a| {
            format!(
                "{}\n",
                serde_json::json!({"id": a["id"], "card": a["card"], "amount": a["amount"]})
            )
        })
        .collect();
    std::fs::write(&retries, wanted).unwrap();
    let exchanges = dir.join("exchanges.jsonl");
    let again = clients(
        &server.base,
        &dir.join("again.jsonl"),
        &[
            "--threads",
            "8",
            "--ids",
            retries.to_str().unwrap(),
            "--exchanges",
            exchanges.to_str().unwrap(),
        ],
    );
    check_exchanges(&exchanges);
    assert_eq!(again.len(), live.len());
    let first: BTreeMap<&str, &Value> = answered
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), &a["body"]))
        .collect();
    for a in &again {
        assert_eq!(a["status"], 200, "{a}");
        let id = a["id"].as_str().unwrap();
        if let Some(body) = first.get(id) {
            assert_eq!(
                a["body"]["decision_id"], body["decision_id"],
                "{id}: answered {body} before the kill, {a} after"
            );
            assert_eq!(a["body"]["repeated"], true, "{id}");
            assert_eq!(a["body"]["outcome"], body["outcome"], "{id}");
        }
    }
    // Each card's payments counted once: one more payment per card reads
    // as many payments as distinct requests were sent for it, plus itself.
    let mut per_card: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in &live {
        per_card
            .entry(a["card"].as_str().unwrap())
            .or_default()
            .insert(a["id"].as_str().unwrap());
    }
    for (card, ids) in &per_card {
        let (status, probe) = post(
            &format!("{}/v1/decide", server.base),
            &payment(&format!("probe-{card}"), card, 1),
            &[],
        );
        assert_eq!(status, 200, "{probe}");
        let reads = &probe["rules"][0]["reads"]["card_payments_10m(card)"];
        assert_eq!(
            reads.as_u64(),
            Some(ids.len() as u64 + 1),
            "{card}: {probe}"
        );
    }
    let _ = unanswered;
    server.stop();
}

/// `--watch` and a hurried operator: a rules file emptied (as an editor
/// does for a moment while it saves) loads without error but has no
/// scene; a file cut in the middle of a pattern does not parse. Neither
/// is logged nor applied: each is said on standard error, and the
/// service goes on answering with the rules in force (version 1). The
/// file made whole again, with a change, is applied (version 2).
#[test]
fn watch_keeps_the_rules_in_force_when_a_file_is_emptied_or_cut() {
    let dir = scratch("serve_watch_empty");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    // One file holding the scene `payment` and its rules.
    let file = rules.join("rules.cep");
    std::fs::copy(risk().join("rules.cep"), &file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let server = Server::start(&rules, &dir.join("state"), &["--watch"]);
    let scenes = |server: &Server| -> Value {
        let (body, _) = curl(&["-s", &format!("{}/v1/scenes", server.base)], &[]);
        serde_json::from_str(&body).unwrap()
    };
    let decide = |server: &Server, id: &str| -> (u16, Value) {
        post(
            &format!("{}/v1/decide", server.base),
            &payment(id, "c1", 10),
            &[],
        )
    };
    assert_eq!(scenes(&server)["rules_version"], 1);

    std::fs::write(&file, "").unwrap();
    server.live.stderr_line("they have no scene");
    let (status, answer) = decide(&server, "p-1");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rules_version"], 1, "{answer}");
    let now = scenes(&server);
    assert_eq!(now["rules_version"], 1, "{now}");
    assert_eq!(now["scenes"][0]["name"], "payment", "{now}");

    // Cut in the middle of a pattern: a syntax error, said with its place.
    let cut = &text[..text.find("\npattern ").unwrap() + "\npattern ".len() + 4];
    std::fs::write(&file, cut).unwrap();
    server.live.stderr_line("the changed rules are not applied");
    let (status, answer) = decide(&server, "p-2");
    assert_eq!((status, &answer["rules_version"]), (200, &Value::from(1)));

    // Whole again, with a change: applied.
    let changed = text.replace(
        "card_payments_10m(card) >= 4",
        "card_payments_10m(card) >= 3",
    );
    assert_ne!(text, changed);
    std::fs::write(&file, changed).unwrap();
    let started = Instant::now();
    while scenes(&server)["rules_version"] != 2 {
        assert!(started.elapsed() < PATIENCE, "the change was not applied");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, answer) = decide(&server, "p-3");
    assert_eq!((status, &answer["rules_version"]), (200, &Value::from(2)));
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--list NAME=PATH`: the files' entries go through the log as `$list`
/// changes (`docs/serve.md`, "Lists"): read at the start, with `--watch`
/// when a file changes, and at a restart what the files changed while the
/// service was stopped; a value two files of the list give stays when one
/// drops it. Every answer is the replay's (`backtest --events wal:DIR`).
/// A list the rules do not declare, and a file that cannot be read, stop
/// the service before it listens.
/// Payments each of a card of its own from a device given, their
/// answers kept (for the replay).
struct Asker {
    prefix: &'static str,
    n: usize,
    answers: Vec<Value>,
}

impl Asker {
    fn new(prefix: &'static str) -> Asker {
        Asker {
            prefix,
            n: 0,
            answers: Vec::new(),
        }
    }

    /// A payment of a card of its own from `device`: its answer, kept.
    fn ask(&mut self, base: &str, device: &str) -> Value {
        self.n += 1;
        let (p, n) = (self.prefix, self.n);
        let body = payment(&format!("{p}{n}"), &format!("c-{p}{n}"), 5)
            .replace(&format!("\"d-c-{p}{n}\""), &format!("\"{device}\""));
        let (status, answer) = post(&format!("{base}/v1/decide"), &body, &[]);
        assert_eq!(status, 200, "{answer}");
        self.answers.push(answer.clone());
        answer
    }

    /// Every answer kept is the replay's over the log in `log`.
    fn replayed_over(&self, rules: &Path, log: &Path) {
        let replayed: BTreeMap<String, Value> = replayed_answers(rules, log)
            .into_iter()
            .map(|(id, v)| (id, comparable(&v)))
            .collect();
        assert_eq!(replayed.len(), self.answers.len());
        for a in &self.answers {
            let id = a["decision_id"].as_str().unwrap();
            assert_eq!(replayed.get(id), Some(&comparable(a)), "{id}");
        }
    }
}

/// Was the answer declined by the block list?
pub(crate) fn listed(answer: &Value) -> bool {
    answer["outcome"] == "decline" && answer["list"] == "device in blocked_devices"
}

/// `POST /v1/lists/{list}` to the real server, with curl: a device
/// blocked through the API is declined by the next request (the list
/// check deciding, said in the answer), as a `--list` file's entries
/// are; unblocked, approved again (a file's value too: one origin, the
/// log's); after a restart the same; every answer is the replay's over
/// the log; a list the rules do not declare is 404 and a body that is no
/// change 400.
#[test]
fn a_list_changed_through_the_api_is_logged_and_the_replay_agrees() {
    let dir = scratch("serve_list_route");
    let rules = risk_rules_in(&dir);
    let file = dir.join("blocked.jsonl");
    std::fs::write(&file, "\"d-file\"\n").unwrap();
    let list = format!("blocked_devices={}", file.display());
    let args = ["--list", list.as_str()];
    let state = dir.join("state");
    let mut asker = Asker::new("r");
    let mut ask = |base: &str, device: &str| asker.ask(base, device);
    let server = Server::start(&rules, &state, &args);
    let lists = format!("{}/v1/lists/blocked_devices", server.base);
    assert!(!listed(&ask(&server.base, "d-api")));
    let (status, changed) = post(&lists, r#"{"add": ["d-api", "d-file"]}"#, &[]);
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["added"], 2);
    assert!(
        changed["expires"].as_i64().is_some(),
        "the list's `for` from now: {changed}"
    );
    assert!(listed(&ask(&server.base, "d-api")));
    assert!(listed(&ask(&server.base, "d-file")));
    // Removed through the API: the service's files and its API are one
    // origin, the log's `$list` records (`docs/serve.md`, "Lists"): the
    // file's value goes too, until the file gives it anew.
    let (status, changed) = post(&lists, r#"{"remove": ["d-api", "d-file"]}"#, &[]);
    assert_eq!(
        (status, &changed["removed"]),
        (200, &Value::from(2)),
        "{changed}"
    );
    assert!(!listed(&ask(&server.base, "d-api")));
    assert!(!listed(&ask(&server.base, "d-file")));
    let (status, changed) = post(
        &lists,
        r#"{"add": ["d-later"], "expires": 4102444800000}"#,
        &[],
    );
    assert_eq!(
        (status, &changed["expires"]),
        (200, &Value::from(4_102_444_800_000_i64))
    );
    // Refused, nothing logged.
    let (status, refused) = post(
        &format!("{}/v1/lists/blocked_devics", server.base),
        r#"{"add": ["x"]}"#,
        &[],
    );
    assert_eq!(
        (status, &refused["error"]["code"]),
        (404, &Value::from("not_found"))
    );
    let (status, refused) = post(&lists, r#"{"add": "d-1"}"#, &[]);
    assert_eq!(
        (status, &refused["error"]["field"]),
        (400, &Value::from("add"))
    );
    server.stop();
    // Restarted (the file unchanged: nothing of it logged again).
    let server = Server::start(&rules, &state, &args);
    assert!(listed(&ask(&server.base, "d-later")));
    assert!(!listed(&ask(&server.base, "d-api")));
    assert!(!listed(&ask(&server.base, "d-file")));
    server.stop();
    asker.replayed_over(&rules, &state.join("log"));
}

#[test]
fn list_files_go_through_the_log_and_the_replay_agrees() {
    let dir = scratch("serve_lists");
    let rules = risk_rules_in(&dir);
    let (blocked, also) = (dir.join("blocked.jsonl"), dir.join("also.jsonl"));
    std::fs::write(&blocked, "\"d-bad\"\n\"d-both\"\n").unwrap();
    std::fs::write(&also, "\"d-both\"\n").unwrap();
    let lists = [
        format!("blocked_devices={}", blocked.display()),
        format!("blocked_devices={}", also.display()),
    ];
    let args = [
        "--watch", "--tick", "50ms", "--list", &lists[0], "--list", &lists[1],
    ];
    let state = dir.join("state");
    let mut asker = Asker::new("l");
    let mut ask = |base: &str, device: &str| asker.ask(base, device);
    let server = Server::start(&rules, &state, &args);
    assert!(listed(&ask(&server.base, "d-bad")));
    assert!(listed(&ask(&server.base, "d-both")));
    assert!(!listed(&ask(&server.base, "d-ok")));
    // The file changes: d-bad and d-both leave it, d-ok comes.
    std::fs::write(&blocked, "\"d-ok\"\n").unwrap();
    let started = Instant::now();
    while !listed(&ask(&server.base, "d-ok")) {
        assert!(
            started.elapsed() < PATIENCE,
            "the list's change was not applied"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!listed(&ask(&server.base, "d-bad")));
    // (still given by the other file)
    assert!(listed(&ask(&server.base, "d-both")));
    let said = server.stop();
    assert!(
        said.contains("changed: 1 added, 2 removed (logged)"),
        "{said}"
    );
    // Changed while the service was stopped: logged at the restart.
    std::fs::write(&blocked, "\"d-new\"\n").unwrap();
    let server = Server::start(&rules, &state, &args);
    assert!(listed(&ask(&server.base, "d-new")));
    assert!(!listed(&ask(&server.base, "d-ok")));
    let said = server.stop();
    assert!(said.contains("(logged)"), "{said}");
    // Restarted with the files as they are: nothing logged.
    let server = Server::start(&rules, &state, &args);
    assert!(listed(&ask(&server.base, "d-new")));
    let said = server.stop();
    assert!(!said.contains("(logged)"), "{said}");
    // Every answer is the replay's.
    asker.replayed_over(&rules, &state.join("log"));
    // What stops it before it listens.
    for (list, said) in [
        (
            format!("nope={}", blocked.display()),
            "the rules declare no list `nope`",
        ),
        (
            format!("blocked_devices={}", dir.join("gone.jsonl").display()),
            "cannot read",
        ),
    ] {
        let run = cepheid()
            .arg("serve")
            .arg(&rules)
            .arg("--state")
            .arg(dir.join("other"))
            .args(["--listen", "127.0.0.1:0", "--list", &list])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{err}");
        assert!(err.contains(said), "{err}");
    }
}

/// The value of the sample `name` (a line `name value`) in `/metrics`.
pub(crate) fn metric(base: &str, name: &str) -> Option<u64> {
    let (text, _) = curl(&["-s", &format!("{base}/metrics")], &[]);
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The run's checkpoints on `/metrics` (`docs/metrics.md`): how many, how
/// long the run's thread stood still for them (requests wait behind a
/// checkpoint's snapshot: the stalls `BENCHMARKS.md` found under load),
/// the longest, and the last one's size, counted from the run's own
/// report of each checkpoint.
#[test]
fn checkpoints_and_the_stalls_they_cause_are_on_metrics() {
    let dir = scratch("serve_checkpoint_metrics");
    let server = Server::start(&risk(), &dir.join("state"), &["--checkpoint-every", "50ms"]);
    let url = format!("{}/v1/decide", server.base);
    for i in 0..20 {
        let (status, answer) = post(&url, &payment(&format!("m-{i}"), "c-m", 5), &[]);
        assert_eq!(status, 200, "{answer}");
    }
    let started = Instant::now();
    while metric(&server.base, "cepheid_serve_checkpoints_total").unwrap_or(0) < 2 {
        assert!(started.elapsed() < PATIENCE, "no checkpoint counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let total = metric(
        &server.base,
        "cepheid_serve_checkpoint_stall_microseconds_total",
    );
    let longest = metric(
        &server.base,
        "cepheid_serve_checkpoint_stall_max_microseconds",
    );
    let bytes = metric(&server.base, "cepheid_serve_checkpoint_bytes");
    let (total, longest, bytes) = (total.unwrap(), longest.unwrap(), bytes.unwrap());
    assert!(longest > 0 && longest <= total, "{longest} of {total}");
    // (the state holds the 20 requests remembered: more than a header)
    assert!(bytes > 1_000, "{bytes}");
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `cepheid backtest RULES --events wal:DIR --from-checkpoint DIR`: the log
/// read from a checkpoint of the service's kept aside (here the one its
/// first stop took), only the entries after it replayed: their answers
/// are the clients', answer for answer, with the state the checkpoint
/// held (the same cards, a retry of a request answered before it); the
/// checkpoint is only read. Elsewhere the flag is said, not ignored.
#[test]
fn backtest_from_a_checkpoint_replays_the_log_after_it() {
    let dir = scratch("serve_backtest_from_checkpoint");
    let rules = risk_rules_in(&dir);
    let state = dir.join("state");
    let server = Server::start(&rules, &state, &["--tick", "50ms"]);
    let first = clients(
        &server.base,
        &dir.join("a.jsonl"),
        &["--threads", "4", "--each", "6", "--prefix", "a"],
    );
    server.stop();
    // (kept aside, as an operator keeps one: the service goes on and
    // deletes its older checkpoints)
    let saved = dir.join("saved");
    std::fs::create_dir_all(&saved).unwrap();
    let mut cuts = Vec::new();
    for entry in std::fs::read_dir(state.join("checkpoints")).unwrap() {
        let cut = entry.unwrap().path();
        let name = cut.file_name().unwrap().to_owned();
        if !name.to_str().unwrap().starts_with("cut-") {
            continue;
        }
        std::fs::create_dir_all(saved.join(&name)).unwrap();
        for file in std::fs::read_dir(&cut).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, saved.join(&name).join(file.file_name().unwrap())).unwrap();
        }
        cuts.push(name);
    }
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    let server = Server::start(&rules, &state, &["--tick", "50ms"]);
    // (the same prefix's cards: their counts go on from the first part)
    let second = clients(
        &server.base,
        &dir.join("b.jsonl"),
        &["--threads", "4", "--each", "6", "--prefix", "b"],
    );
    let decide = format!("{}/v1/decide", server.base);
    // (a retry of a request answered before the checkpoint, as its
    // client sent it)
    let retry = serde_json::json!({
        "scene": "payment",
        "event_id": first[0]["id"],
        "event": {
            "type": "payment",
            "card": first[0]["card"],
            "device": format!("dev-{}", first[0]["card"].as_str().unwrap()),
            "amount": first[0]["amount"],
        },
    });
    let first_id = first[0]["id"].as_str().unwrap().to_string();
    let (status, again) = post(&decide, &retry.to_string(), &[]);
    assert_eq!(
        (status, &again["repeated"]),
        (200, &Value::Bool(true)),
        "{again}"
    );
    server.stop();
    let answered: Vec<&Value> = second.iter().collect();
    assert!(answered.iter().all(|a| a["status"] == 200), "{answered:?}");
    let replay = |from: &Path| {
        let out = cepheid()
            .arg("backtest")
            .arg(&rules)
            .arg("--events")
            .arg(format!("wal:{}", state.join("log").display()))
            .arg("--from-checkpoint")
            .arg(from)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("starting from checkpoint"), "{stderr}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| {
                (
                    v["decision_id"].as_str().unwrap().to_string(),
                    comparable(&v),
                )
            })
            .collect::<BTreeMap<String, Value>>()
    };
    let before: Vec<_> = walk(&saved);
    for from in [saved.clone(), saved.join(&cuts[0])] {
        let replayed = replay(&from);
        // (no answer of the first part: they are before the checkpoint)
        for a in &first {
            let id = a["body"]["decision_id"].as_str().unwrap();
            assert!(
                !replayed.contains_key(id) || id == again["decision_id"],
                "{id} replayed from {}",
                from.display()
            );
        }
        for body in answered.iter().map(|a| &a["body"]) {
            let id = body["decision_id"].as_str().unwrap();
            assert_eq!(replayed.get(id), Some(&comparable(body)), "{id}");
        }
        // (the retry of a request answered before the checkpoint is
        // answered as it was: the checkpoint remembers it)
        let id = again["decision_id"].as_str().unwrap();
        assert_eq!(replayed.get(id), Some(&comparable(&again)), "{retry}");
        assert_eq!(
            replayed.len(),
            answered.len() + 1,
            "from {}",
            from.display()
        );
    }
    assert_eq!(walk(&saved), before, "the checkpoint was written");
    // Not a service's log, or `why`: said, exit 2.
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "").unwrap();
    let out = cepheid()
        .arg("backtest")
        .arg(&rules)
        .arg("--events")
        .arg(&events)
        .arg("--from-checkpoint")
        .arg(&saved)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--from-checkpoint: only a service's log"),
        "{stderr}"
    );
    let out = cepheid()
        .arg("why")
        .arg(&rules)
        .args(["--event", &first_id, "--events"])
        .arg(format!("wal:{}", state.join("log").display()))
        .arg("--from-checkpoint")
        .arg(&saved)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--from-checkpoint: why reads"), "{stderr}");
}

/// The files below `dir` with their contents, in name order.
fn walk(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => found.extend(walk(&path)),
            false => found.push((path.clone(), std::fs::read(&path).unwrap())),
        }
    }
    found.sort();
    found
}

/// A log that says a request was answered degraded at its deadline (a
/// `degraded` entry after it, `docs/wal.md`): `backtest --events wal:DIR`
/// answers it with the scene's fallback, degraded, as its client was
/// answered, and its retry alike, while the request after it is decided;
/// `why --event` says how it was answered.
#[test]
fn a_request_the_log_says_was_degraded_at_its_deadline_is_replayed_so() {
    use cepheid_serve::wal::{Entry, Input, Wal, WalOptions};
    let dir = scratch("serve-late-log");
    let text = r#"
pattern big { partition by card action review match p where p: amount > 100 }
scene payment {
    when type == "payment"
    rules big
    outcomes approve < review
    review if action review
    fallback review
    deadline 60s
}
"#;
    let rules = dir.join("rules.cep");
    std::fs::write(&rules, text).unwrap();
    let log = dir.join("log");
    let (wal, _) = Wal::open(&log, WalOptions::default()).unwrap();
    let appender = wal.appender();
    let decide = |id: &str| {
        Entry::Decide(Input {
            scene: Some("payment".into()),
            event_id: id.into(),
            fields: serde_json::value::RawValue::from_string(
                r#"{"type":"payment","card":"c1","amount":5}"#.into(),
            )
            .unwrap(),
            degraded: false,
            shed_shadow: false,
            origin: None,
        })
    };
    let entries = [
        Entry::Rules {
            text: text.into(),
            origin: "the command line".into(),
        },
        decide("e1"),
        decide("e2"),
        Entry::Degraded { request: 2 },
        decide("e1"),
    ];
    for entry in entries {
        let (tx, rx) = std::sync::mpsc::channel();
        appender
            .append(
                entry,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )
            .unwrap();
        rx.recv().unwrap().unwrap();
    }
    wal.close().unwrap();

    let answers = replayed_answers(&rules, &log);
    let (e1, e2) = (&answers["d-2"], &answers["d-3"]);
    assert_eq!(
        (
            &e1["outcome"],
            &e1["degraded"],
            &e1["degraded_why"],
            &e1["repeated"]
        ),
        (
            &"review".into(),
            &true.into(),
            &"deadline".into(),
            &true.into()
        ),
        "the retry of e1, answered as e1 was: {e1}"
    );
    assert_eq!(
        (&e2["outcome"], e2.get("degraded")),
        (&"approve".into(), Some(&false.into())),
        "{e2}"
    );
    let out = cepheid()
        .arg("why")
        .arg(&rules)
        .args(["--events", &format!("wal:{}", log.display())])
        .args(["--event", "e1"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("answered degraded at its deadline, which passed before the engine took it: the client got the scene's fallback, review"),
        "{said}"
    );
}

/// The rules of [`why_key_over_the_log_is_what_the_service_did_with_the_key`]:
/// two scenes whose rules both match a card's big payments (`over`, made
/// once per scene: `over@a`, `over@b`, each firing only on its scene's
/// events), a pair of big payments within a window (its timeouts
/// reported), and a list a rule reads. `WINDOW` is the pair's window.
const WHY_KEY_RULES: &str = r#"
list blocked
pattern pair { partition by card within WINDOW timeouts
    match p followed by q where p: amount > 100 q: amount > 100 }
pattern over(min: int) { partition by card action review match p where p: amount > min }
pattern listed { partition by card action review match p where p: card in blocked }
scene a {
    when type == "payment"
    rules over, listed
    with min = 50
    outcomes approve < review
    review if action review
    fallback approve
    deadline 60s
}
scene b {
    when type == "payment"
    rules pair, over
    with min = 50
    outcomes approve < review
    review if action review
    fallback approve
    deadline 60s
}
"#;

/// A key's matches and timeouts, each as its pattern, version, kind and
/// events (their fields, in order): `why --json`'s partial matches that
/// ended so, or the records of a replay's alerts (and shadow records) for
/// the key.
type Alerts = Vec<(String, u64, String, Vec<String>)>;

/// What `why RULES KEY --events wal:LOG --json` printed (`doc`) says
/// matched or timed out, as [`Alerts`].
fn traced_alerts(doc: &Value) -> Alerts {
    let events = doc["key_events"].as_array().unwrap();
    let event = |n: &Value| events[n.as_u64().unwrap() as usize - 1]["event"].to_string();
    let mut traced = Vec::new();
    for p in doc["patterns"].as_array().unwrap() {
        for r in p["partial_matches"].as_array().into_iter().flatten() {
            let kind = match r["end"]["kind"].as_str() {
                Some("matched") => "match",
                Some("window_closed") if r["end"]["timeout_record"] == true => "timeout",
                _ => continue,
            };
            let mut of: Vec<String> = (r["events"].as_array().unwrap().iter())
                .map(|e| event(&e["event"]))
                .collect();
            of.sort();
            let name = p["pattern"].as_str().unwrap().to_string();
            traced.push((name, p["version"].as_u64().unwrap_or(1), kind.into(), of));
        }
    }
    traced.sort();
    traced
}

/// The alerts (and shadow records) for `key` (the key's fields) that
/// `cepheid backtest RULES --events wal:LOG --output FILE` writes, as
/// [`Alerts`].
fn replayed_alerts(rules: &Path, log: &Path, key: &Value) -> Alerts {
    let dir = scratch("serve_replayed_alerts");
    let output = dir.join("alerts.jsonl");
    let out = cepheid()
        .arg("backtest")
        .arg(rules)
        .arg("--events")
        .arg(format!("wal:{}", log.display()))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = read_lines(&output).into_iter();
    let shadow = read_lines(&output.with_extension("shadow.jsonl")).into_iter();
    let mut alerts: Alerts = (records.chain(shadow))
        .filter(|r| r["key"] == *key)
        .map(|r| {
            let mut of: Vec<String> = (r["events"].as_object().unwrap().values())
                .flat_map(|stage| stage.as_array().unwrap().iter().map(Value::to_string))
                .collect();
            of.sort();
            let version = (r["version"].as_u64()).or(r["rule"]["version"].as_u64());
            let name = r["pattern"].as_str().unwrap().to_string();
            (
                name,
                version.unwrap_or(1),
                r["kind"].as_str().unwrap().into(),
                of,
            )
        })
        .collect();
    alerts.sort();
    alerts
}

/// `cepheid why RULES KEY --events wal:DIR` over a log written entry by
/// entry (`docs/serve.md`, "Why, over the log"): decision requests into
/// two scenes whose rules both match the key's payments, a retry, an
/// event of no scene, a change of a list a rule reads, a tick that fires
/// a timeout, a change of rules (a window changed: the pattern's version
/// 2, the old one draining), another key. The key's matches and timeouts
/// in the trace are the alerts `backtest --events wal:DIR --output FILE`
/// writes for it; a retry is no second event of the key; a request of
/// scene `a` does not fire `over@b` (its match is not made); the change
/// is said. A log whose first entries were released is refused (exit 4),
/// as are `--from-checkpoint` and `--max-runs-per-key` (exit 2), and
/// `backtest --output` for a file; `--pattern`, `--from` and
/// `--no-events` narrow it as they narrow a file's.
#[test]
fn why_key_over_the_log_is_what_the_service_did_with_the_key() {
    use cepheid_serve::wal::{Entry, Input, Wal, WalOptions};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    let dir = scratch("serve_why_key");
    let v1 = WHY_KEY_RULES.replace("WINDOW", "1m");
    let v2 = WHY_KEY_RULES.replace("WINDOW", "2m");
    let rules = dir.join("rules.cep");
    std::fs::write(&rules, &v1).unwrap();
    let log = dir.join("log");
    let clock = Arc::new(AtomicI64::new(0));
    let stamps = Arc::clone(&clock);
    let options = WalOptions {
        segment_size: 600,
        clock: Some(Arc::new(move || stamps.load(Ordering::SeqCst))),
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&log, options).unwrap();
    let appender = wal.appender();
    let append = |at: i64, entry: Entry| {
        clock.store(at, Ordering::SeqCst);
        let (tx, rx) = std::sync::mpsc::channel();
        appender
            .append(entry, Box::new(move |r| tx.send(r).unwrap()))
            .unwrap();
        rx.recv().unwrap().unwrap();
    };
    let input = |scene: Option<&str>, id: &str, card: &str, amount: i64| Input {
        scene: scene.map(str::to_string),
        event_id: id.into(),
        fields: serde_json::value::RawValue::from_string(format!(
            r#"{{"id":"{id}","type":"payment","card":"{card}","amount":{amount}}}"#
        ))
        .unwrap(),
        degraded: false,
        shed_shadow: false,
        origin: None,
    };
    let decide = |scene, id, card, amount| Entry::Decide(input(Some(scene), id, card, amount));
    let t0: i64 = 1_800_000_000_000;
    let minute = 60_000;
    let list =
        serde_json::value::RawValue::from_string(r#"{"$list":"blocked","add":["c1"]}"#.to_string())
            .unwrap();
    let entries = [
        (
            t0,
            Entry::Rules {
                text: v1.clone(),
                origin: "the command line".into(),
            },
        ),
        // (`over@a` fires on e1, `over@b` on e2; `pair` matches them)
        (t0 + 1_000, decide("a", "e1", "c1", 150)),
        (t0 + 2_000, decide("b", "e2", "c1", 160)),
        // (a retry of e1: answered from memory, not taken again)
        (t0 + 3_000, decide("a", "e1", "c1", 150)),
        // (an event recorded without a decision: no scene's instance
        // fires on it; `pair` takes it)
        (t0 + 4_000, Entry::Event(input(None, "e3", "c1", 170))),
        (
            t0 + 5_000,
            Entry::List {
                change: list,
                origin: None,
            },
        ),
        (t0 + 6_000, decide("a", "e4", "c1", 10)),
        (t0 + 7_000, decide("b", "e5", "c2", 500)),
        // (e3's window closes: a timeout)
        (
            t0 + 7_000,
            Entry::Tick {
                time: t0 + 5 * minute,
            },
        ),
        (
            t0 + 6 * minute,
            Entry::Rules {
                text: v2.clone(),
                origin: "--watch rules.cep".into(),
            },
        ),
        (t0 + 6 * minute + 1_000, decide("b", "e6", "c1", 200)),
        (t0 + 6 * minute + 2_000, decide("a", "e7", "c1", 300)),
        (t0 + 6 * minute + 3_000, decide("b", "e8", "c1", 400)),
        (
            t0 + 20 * minute,
            Entry::Tick {
                time: t0 + 20 * minute,
            },
        ),
    ];
    for (at, entry) in entries {
        append(at, entry);
    }
    wal.close().unwrap();

    let events = format!("wal:{}", log.display());
    let why = |args: &[&str]| {
        let out = cepheid()
            .arg("why")
            .arg(&rules)
            .args(["--events", &events])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = why(&["c1", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let traced = traced_alerts(&doc);
    let replayed = replayed_alerts(&rules, &log, &serde_json::json!({"card": "c1"}));
    assert_eq!(traced, replayed, "{doc}");
    // (each part is there: both scenes' instances, the list's rule, the
    // pair's match and timeout, its version 2's match)
    let kinds: BTreeSet<(&str, u64, &str)> = (traced.iter())
        .map(|(p, v, k, _)| (p.as_str(), *v, k.as_str()))
        .collect();
    for want in [
        ("over@a", 1, "match"),
        ("over@b", 1, "match"),
        ("listed", 1, "match"),
        ("pair", 1, "match"),
        ("pair", 1, "timeout"),
        ("pair", 2, "match"),
    ] {
        assert!(kinds.contains(&want), "{want:?} in {kinds:?}");
    }
    // A retry is no second event of the key: e1 once, and 7 events.
    let ids: Vec<&str> = (doc["key_events"].as_array().unwrap().iter())
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["e1", "e2", "e3", "e4", "e6", "e7", "e8"], "{doc}");
    // A request of scene `a` (e1, e7) completes `over@b`, whose match is
    // not made: only scene `b`'s requests (e2, e6, e8) fire it.
    let over_b = (doc["patterns"].as_array().unwrap().iter())
        .find(|p| p["pattern"] == "over@b")
        .unwrap();
    let ended = |kind: &str| -> Vec<&str> {
        (over_b["partial_matches"].as_array().unwrap().iter())
            .filter(|r| r["end"]["kind"] == kind)
            .map(|r| ids[r["events"][0]["event"].as_u64().unwrap() as usize - 1])
            .collect()
    };
    assert_eq!(ended("matched"), ["e2", "e6", "e8"], "{over_b}");
    assert_eq!(ended("not_made"), ["e1", "e3", "e7"], "{over_b}");
    // The change of rules, said (and the rules the trace started from).
    let notes: Vec<&str> = (doc["notes"].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        notes,
        [
            "the rules: the log's own, of entry 1 (the command line)",
            &*format!(
                "log entry 10 at {}, from --watch rules.cep (`$rules`): the rules changed: pair: changed (version 2)",
                t0 + 6 * minute
            ),
        ]
    );
    let (code, text, err) = why(&["c1"]);
    assert_eq!(code, Some(0), "{err}");
    for said in [
        "pattern pair version 1 (partition by card): ",
        "pattern pair version 2 (partition by card): ",
        "not made: the event does not enter scene `b`",
        "the rules changed: pair: changed (version 2)",
    ] {
        assert!(text.contains(said), "{said}: {text}");
    }

    // Narrowed as over a file: one pattern, the times of the change on,
    // no values.
    let from = (t0 + 6 * minute).to_string();
    let (code, out, err) = why(&[
        "c1",
        "--pattern",
        "pair",
        "--from",
        &from,
        "--no-events",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let narrowed: Value = serde_json::from_str(&out).unwrap();
    let shown: Vec<(&str, u64)> = (narrowed["patterns"].as_array().unwrap().iter())
        .map(|p| {
            (
                p["pattern"].as_str().unwrap(),
                p["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, [("pair", 1), ("pair", 2)], "{narrowed}");
    let events = narrowed["key_events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "e6, e7, e8: {narrowed}");
    assert!(
        events.iter().all(|e| e.get("event").is_none()),
        "{narrowed}"
    );
    // The log's first segment released: not read from its first entry
    // kept (the replay refuses it too).
    let released = dir.join("released");
    std::fs::create_dir_all(&released).unwrap();
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    assert!(segments.len() > 2, "{segments:?}");
    for segment in &segments[1..] {
        std::fs::copy(segment, released.join(segment.file_name().unwrap())).unwrap();
    }
    let out = cepheid()
        .arg("why")
        .arg(&rules)
        .arg("c1")
        .args(["--events", &format!("wal:{}", released.display())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("its first entry kept is entry "), "{err}");
    // What a log does not take, and `backtest --output` for a file.
    for (args, said) in [
        (
            &["c1", "--from-checkpoint", "ck"][..],
            "--from-checkpoint: why reads a service's log",
        ),
        (
            &["c1", "--max-runs-per-key", "3"],
            "--max-runs-per-key: a service's log",
        ),
        (
            &["c1", "--list", "blocked=x.jsonl"],
            "--list: a service's log",
        ),
    ] {
        let (code, _, err) = why(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
    let out = cepheid()
        .arg("backtest")
        .arg(&rules)
        .args(["--events", "events.jsonl", "--output", "alerts.jsonl"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--output: only a service's log"), "{err}");
}
