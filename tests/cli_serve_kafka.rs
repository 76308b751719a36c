//! `cepheid serve --output kafka://... --decisions kafka://...` (issue
//! 63, `docs/serve.md`, "Kafka outputs") with a real broker: the outputs
//! written exactly once in a transaction per checkpoint, through a
//! `kill -9` and a restart on the same state; and a hurried operator's
//! mistakes refused before anything is served.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cli_serve::{
    clients, comparable, curl, killed_under_load, payment, post, replayed_answers, risk,
    risk_rules_in, Server,
};
use crate::common::kafka::{produce_lines_to, Out, Reader};
use crate::common::{cepheid, scratch, PATIENCE};
use crate::kafka_support::{topic, Broker};

/// A served run under 8 concurrent clients, killed with SIGKILL, then
/// restarted on the same state, more requests, a clean stop: what a
/// `read_committed` consumer reads on the decisions topic (the harness's
/// own committed view, `Reader::take_committed`: tansu hands aborted
/// records to `read_committed` consumers) is each
/// decision the service made exactly once, the very decisions `cepheid
/// backtest --events wal:DIR` replays from the log (the answered ones
/// and those logged but unanswered at the kill); the alerts topic holds
/// one alert per rule the replayed decisions fired, each once.
#[test]
fn killed_and_restarted_the_committed_decisions_and_alerts_on_topics_are_each_once() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let dir = scratch("serve_kafka_crash");
    let state = dir.join("state");
    let [alerts, decisions, marker] =
        ["alerts", "decisions", "marker"].map(|t| topic(&format!("serve-{t}")));
    broker.create_topic(&alerts, 1);
    broker.create_topic(&decisions, 3);
    broker.create_topic(&marker, 1);
    let (output, decided) = (
        format!("--output=kafka://{b}/{alerts}"),
        format!("--decisions=kafka://{b}/{decisions}"),
    );
    let args = [
        output.as_str(),
        decided.as_str(),
        "--transactional-id",
        "serve-crash-test",
        "--kafka-marker-topic",
        marker.as_str(),
        "--checkpoint-every",
        "200ms",
    ];
    let server = Server::start(&risk(), &state, &args);
    // Killed once a few hundred answers went out (and some checkpoints,
    // each a transaction, committed).
    let live = killed_under_load(server, &dir.join("live.jsonl"), 300);
    let id = "serve-crash-test";
    let mut reader = Reader::new(&b, &[(&decisions, 3), (&alerts, 1)]);
    let (mut committed, mut aborted) = (Vec::<Out>::new(), 0);
    let killed_at = reader.take_committed(&b, id, &marker, &mut committed, &mut aborted);
    assert!(
        killed_at.is_some(),
        "no checkpoint committed before the kill"
    );
    let server = Server::start(&risk(), &state, &args);
    let more = clients(
        &server.base,
        &dir.join("more.jsonl"),
        &["--threads", "8", "--each", "10", "--prefix", "after"],
    );
    server.stop();
    reader.take_committed(&b, id, &marker, &mut committed, &mut aborted);
    let answered: Vec<&Value> = live
        .iter()
        .chain(&more)
        .filter(|a| a["status"] == 200)
        .collect();
    assert!(answered.len() >= 300 + 80, "{} answered", answered.len());

    // What the log replays: every decision made.
    let replayed = replayed_answers(&risk(), &state.join("log"));
    for a in &answered {
        let id = a["body"]["decision_id"].as_str().unwrap();
        assert!(replayed.contains_key(id), "answered {id} is not in the log");
    }

    // The decisions topic, read_committed: each decision once (by its
    // event id: a decision record names the request's event id), the
    // same decisions as the replay, with the same outcome and score.
    let by_event: BTreeMap<String, &Value> = replayed
        .values()
        .map(|v| (v["event_id"].as_str().unwrap().to_string(), v))
        .collect();
    assert_eq!(by_event.len(), replayed.len(), "an event id decided twice");
    let mut on_topic: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in committed.iter().filter(|o| o.topic == decisions) {
        let v: Value =
            serde_json::from_str(&r.payload).unwrap_or_else(|e| panic!("{e}: {}", r.payload));
        let id = v["position"]
            .as_str()
            .unwrap_or_else(|| panic!("no event id: {v}"))
            .to_string();
        on_topic.entry(id).or_default().push(v);
    }
    let twice: Vec<_> = on_topic.iter().filter(|(_, v)| v.len() != 1).collect();
    assert!(twice.is_empty(), "decisions not once: {twice:?}");
    assert_eq!(
        on_topic.len(),
        by_event.len(),
        "decisions on the topic vs replayed"
    );
    for (id, records) in &on_topic {
        let replay = by_event
            .get(id)
            .unwrap_or_else(|| panic!("{id} on the topic, not in the replay"));
        let r = &records[0];
        assert_eq!(r["scene"], replay["scene"], "{id}");
        // (a request answered degraded, at admission or, on a loaded
        // machine, at its deadline, was answered the scene's fallback;
        // its decision record is the decision the engine made and
        // applied all the same: docs/serve.md)
        if replay["degraded"] == true {
            continue;
        }
        assert_eq!(r["outcome"], replay["outcome"], "{id}: {r} vs {replay}");
        assert_eq!(r["score"], replay["score"], "{id}: {r} vs {replay}");
    }

    // The alerts topic, committed: each alert once, each the alert of a
    // decision made (its event id among the replay's).
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for o in committed.iter().filter(|o| o.topic == alerts) {
        *seen.entry(o.payload.as_str()).or_default() += 1;
    }
    assert!(!seen.is_empty(), "the rules raised no alert");
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "alerts not once: {twice:?}");
    // (each fired rule of a decision is one alert of its pattern: the
    // alerts per pattern are the replay's fired rules per rule; a request
    // answered degraded was answered the fallback, with no rule, and its
    // rules fired all the same: those of its decision record, the
    // engine's, checked above to be the replay's by scene)
    let mut alerted: BTreeMap<String, usize> = BTreeMap::new();
    for payload in seen.keys() {
        let v: Value = serde_json::from_str(payload).unwrap();
        *alerted
            .entry(v["pattern"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    for d in replayed.values() {
        let d = if d["degraded"] == true {
            &on_topic[d["event_id"].as_str().unwrap()][0]
        } else {
            d
        };
        for r in d["rules"].as_array().unwrap() {
            *fired
                .entry(r["rule"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(
        alerted, fired,
        "alerts on the topic vs the replay's fired rules"
    );
    // (the kill left an open transaction, aborted by the restart)
    let _ = aborted;
}

/// A hurried operator's mistakes, each said before anything is served:
/// decisions to a topic with the alerts to a file (run's words), alerts
/// to a topic with the decisions to the default file, an unreachable
/// broker (waited for up to --kafka-timeout, then named: exit 6).
#[test]
fn kafka_outputs_mistakes_are_refused_before_serving() {
    let dir = scratch("serve_kafka_refusals");
    let serve = |args: &[&str]| {
        let out = cepheid()
            .arg("serve")
            .arg(risk())
            .arg("--state")
            .arg(dir.join("state"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = serve(&["--decisions", "kafka://127.0.0.1:9/decisions"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--decisions kafka://... goes with --output kafka://..."),
        "{stderr}"
    );
    let (code, stdout, stderr) = serve(&["--output", "kafka://127.0.0.1:9/alerts"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--output kafka://... needs --decisions kafka://..."),
        "{stderr}"
    );
    // (the audit records to a topic beside file outputs: not in any
    // transaction)
    let (code, stdout, stderr) = serve(&["--audit", "kafka://127.0.0.1:9/audit"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--audit kafka://... goes with --output kafka://..."),
        "{stderr}"
    );
    // (a port nothing listens on)
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, stdout, stderr) = serve(&[
        "--output",
        &format!("kafka://127.0.0.1:{port}/alerts"),
        "--decisions",
        &format!("kafka://127.0.0.1:{port}/decisions"),
        "--kafka-timeout",
        "2s",
    ]);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(stdout.is_empty(), "served: {stdout}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    // A rules topic: one topic, on a broker that answers.
    let (code, stdout, stderr) = serve(&["--rules-topic", "kafka://127.0.0.1:9/a,b"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--rules-topic kafka://127.0.0.1:9/a,b: a rules topic is one topic"),
        "{stderr}"
    );
    let (code, stdout, stderr) = serve(&[
        "--rules-topic",
        &format!("kafka://127.0.0.1:{port}/rules"),
        "--kafka-timeout",
        "2s",
    ]);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(stdout.is_empty(), "served: {stdout}");
    assert!(stderr.contains("error: --rules-topic kafka://"), "{stderr}");
}

/// The rules version the service's scenes are at now.
fn rules_version(server: &Server) -> Value {
    let (body, _) = curl(&["-s", &format!("{}/v1/scenes", server.base)], &[]);
    let scenes: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    scenes["rules_version"].clone()
}

/// Waits (a hang guard: [`PATIENCE`]) until the service decides with
/// rules version `version`.
fn wait_version(server: &Server, version: u64) {
    let started = std::time::Instant::now();
    while rules_version(server) != version {
        assert!(
            started.elapsed() < PATIENCE,
            "never at rules version {version}: {}",
            rules_version(server)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `--rules-topic kafka://...` (`docs/serve.md`, "A rules topic"): each
/// `{"$rules": TEXT}` record of the topic is logged as a change of rules
/// and applied from there (a record written before the service started
/// too); a record that is no rule set (a `$list` record, not JSON) or
/// whose rules do not parse is said with its place and left out, and the
/// rules in force stay. Stopped and restarted, then killed with SIGKILL
/// and restarted, the service reads on from the record after the last
/// one logged: nothing is logged twice (the versions count one change per
/// record) and every answer clients got is the replay's over the log.
#[test]
fn a_rules_topic_changes_the_rules_through_the_log_each_record_once_across_restarts() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let dir = scratch("serve_rules_topic");
    let rules = risk_rules_in(&dir);
    let state = dir.join("state");
    let text = ["rules.cep", "scenes.cep"]
        .map(|f| std::fs::read_to_string(rules.join(f)).unwrap())
        .join("\n");
    // The rules with a card's payments counted from `n` in 10 minutes.
    let counted_from = |n: u32| {
        let changed = text.replace(
            "card_payments_10m(card) >= 4",
            &format!("card_payments_10m(card) >= {n}"),
        );
        assert_ne!(changed, text);
        serde_json::json!({ "$rules": changed }).to_string()
    };
    let rules_topic = topic("serve-rules");
    broker.create_topic(&rules_topic, 1);
    // Offset 0, before the service starts.
    produce_lines_to(&b, &rules_topic, 0, &[counted_from(3)]);
    let url = format!("kafka://{b}/{rules_topic}");
    let args = ["--rules-topic", url.as_str(), "--checkpoint-every", "200ms"];
    let mut answers: Vec<Value> = Vec::new();
    let mut decide = |server: &Server, id: &str, card: &str| -> Value {
        let body = payment(id, card, 5);
        let (status, answer) = post(&format!("{}/v1/decide", server.base), &body, &[]);
        assert_eq!(status, 200, "{answer}");
        answers.push(answer.clone());
        answer
    };
    let velocity = |answer: &Value| {
        (answer["rules"].as_array().unwrap().iter()).any(|r| r["rule"] == "payment_velocity")
    };

    let server = Server::start(&rules, &state, &args);
    server.live.stderr_line("read from its first record");
    wait_version(&server, 2);
    // Offsets 1 to 3 refused, said with their places; offset 4 applied.
    let broken = serde_json::json!({ "$rules": "pattern broken {" }).to_string();
    let refused = [
        r#"{"$list": "blocked_devices", "add": "d-x"}"#.to_string(),
        "{not json".to_string(),
        broken,
        counted_from(2),
    ];
    produce_lines_to(&b, &rules_topic, 0, &refused);
    let place = format!("kafka:{rules_topic} partition 0 offset");
    let said = server.live.stderr_line(&format!("{place} 1: "));
    assert!(said.contains("a `$list` record"), "{said}");
    assert!(said.contains("POST /v1/lists/{list}"), "{said}");
    let said = server.live.stderr_line(&format!("{place} 2: "));
    assert!(said.contains("not a JSON object"), "{said}");
    let said = server.live.stderr_line(&format!("{place} 3: "));
    assert!(said.contains("the rules are not applied"), "{said}");
    wait_version(&server, 3);
    // Counted where operators look.
    let (metrics, _) = curl(&["-s", &format!("{}/metrics", server.base)], &[]);
    for (name, n) in [("logged", 2), ("refused", 3), ("read_errors", 0)] {
        let line = format!("cepheid_serve_rules_topic_{name}_total {n}\n");
        assert!(metrics.contains(&line), "{line}: {metrics}");
    }
    // A card's second payment in 10 minutes is counted now.
    let first = decide(&server, "p-1", "c-1");
    let second = decide(&server, "p-2", "c-1");
    assert_eq!(first["rules_version"], 3, "{first}");
    assert!(!velocity(&first), "{first}");
    assert!(velocity(&second), "{second}");
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Restarted: on with the log's rules (not the command line's), from
    // offset 5, nothing logged again.
    let server = Server::start(&rules, &state, &args);
    let said = server.live.stderr_line("the rules in force are the log's");
    assert!(said.contains("(version 3)"), "{said}");
    server
        .live
        .stderr_line("read from offset 5, after the last record logged");
    assert_eq!(rules_version(&server), 3);
    produce_lines_to(&b, &rules_topic, 0, &[counted_from(5)]);
    wait_version(&server, 4);
    let third = decide(&server, "p-3", "c-1");
    assert!(!velocity(&third), "{third}");
    server.kill();

    // Killed: the log holds what was logged, and says where to go on.
    let server = Server::start(&rules, &state, &args);
    server
        .live
        .stderr_line("read from offset 6, after the last record logged");
    assert_eq!(rules_version(&server), 4);
    let fourth = decide(&server, "p-4", "c-2");
    assert_eq!(fourth["rules_version"], 4, "{fourth}");
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Every answer is the replay's.
    let replayed = replayed_answers(&rules, &state.join("log"));
    assert_eq!(replayed.len(), answers.len());
    for a in &answers {
        let id = a["decision_id"].as_str().unwrap();
        let again = replayed.get(id).map(comparable);
        assert_eq!(again, Some(comparable(a)), "{id}");
    }
}

/// `cepheid serve --events-topic kafka://...` (docs/serve.md, "Events
/// topics"): each record of the topic's partitions logged as an event and
/// counted by the indicators, once, across a restart that reads on from
/// the offsets the log holds (records produced while it was stopped
/// included); a record that is no event said with its place, counted,
/// left out; the log's replay answers as the clients were answered.
#[test]
fn an_events_topic_feeds_the_indicators_through_the_log_each_record_once_across_restarts() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let dir = scratch("serve_events_topic");
    let state = dir.join("state");
    let events = topic("serve-events");
    broker.create_topic(&events, 2);
    let paid = |card: &str| {
        format!(r#"{{"type": "payment", "card": "{card}", "device": "d-{card}", "amount": 5}}"#)
    };
    // Before the service starts: two payments of c-k on partition 0, one
    // on partition 1, and a record that is no event.
    produce_lines_to(&b, &events, 0, &[paid("c-k"), paid("c-k")]);
    produce_lines_to(&b, &events, 1, &[paid("c-k"), "not json".to_string()]);
    let url = format!("kafka://{b}/{events}");
    let args = [
        "--events-topic",
        url.as_str(),
        "--checkpoint-every",
        "200ms",
    ];
    let mut answers = Vec::new();
    let mut decide = |server: &Server, id: &str| -> Value {
        let body = payment(id, "c-k", 5);
        let (status, answer) = post(&format!("{}/v1/decide", server.base), &body, &[]);
        assert_eq!(status, 200, "{answer}");
        answers.push(answer.clone());
        answer
    };
    let counted = |answer: &Value| {
        (answer["rules"].as_array().unwrap().iter())
            .find(|r| r["rule"] == "payment_velocity")
            .map(|r| r["reads"]["card_payments_10m(card)"].clone())
    };
    let logged = wait_logged;

    let server = Server::start(&risk(), &state, &args);
    server.live.stderr_line(
        "read 0 partitions on from the record after the last one logged, 2 from their first record",
    );
    let said = server
        .live
        .stderr_line(&format!("kafka:{events} partition 1 offset 1: "));
    assert!(said.contains("not a JSON object"), "{said}");
    logged(&server, 3);
    // (three payments of the card before it, and itself)
    let first = decide(&server, "p-1");
    assert_eq!(counted(&first), Some(Value::from(4)), "{first}");
    let (metrics, _) = curl(&["-s", &format!("{}/metrics", server.base)], &[]);
    assert!(
        metrics.contains("cepheid_serve_events_topic_refused_total 1\n"),
        "{metrics}"
    );
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Produced while it was stopped: read on from there, nothing twice.
    produce_lines_to(&b, &events, 0, &[paid("c-k")]);
    let server = Server::start(&risk(), &state, &args);
    server.live.stderr_line(
        "read 2 partitions on from the record after the last one logged, 0 from their first record",
    );
    logged(&server, 1);
    let second = decide(&server, "p-2");
    assert_eq!(counted(&second), Some(Value::from(6)), "{second}");
    server.stop();

    let replayed = replayed_answers(&risk(), &state.join("log"));
    assert_eq!(replayed.len(), answers.len());
    for answer in &answers {
        let id = answer["decision_id"].as_str().unwrap();
        assert_eq!(
            replayed.get(id).map(comparable),
            Some(comparable(answer)),
            "{id}"
        );
    }
}

/// `cepheid serve --list NAME=kafka://...` (docs/serve.md, "Lists'
/// topics"): a list's topic read into the log, each record the change it
/// means (its key the entry, a tombstone a removal), once across a
/// restart; a record that is no entry said with its place; every answer
/// the log's replay.
#[test]
fn a_lists_topic_changes_the_list_through_the_log_each_record_once_across_restarts() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let broker = Broker::start();
    let b = broker.bootstrap();
    let dir = scratch("serve_list_topic");
    let state = dir.join("state");
    let blocked = topic("serve-blocked");
    broker.create_topic(&blocked, 1);
    let produce = |records: &[(Option<&str>, Option<&str>)]| {
        let producer: BaseProducer = crate::common::kafka::client(&b).create().unwrap();
        for (key, value) in records {
            let mut record = BaseRecord::<str, str>::to(&blocked).partition(0);
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(value) = value {
                record = record.payload(value);
            }
            producer.send(record).map_err(|(e, _)| e).unwrap();
            producer.flush(std::time::Duration::from_secs(30)).unwrap();
        }
    };
    // Offsets 0 to 2: d-1 blocked, a record with no key, d-2 blocked.
    produce(&[
        (Some("d-c1"), Some("")),
        (None, Some("")),
        (Some("d-c2"), Some("")),
    ]);
    let url = format!("--list=blocked_devices=kafka://{b}/{blocked}");
    let args = [url.as_str(), "--checkpoint-every", "200ms"];
    let mut answers = Vec::new();
    let mut decide = |server: &Server, id: &str, card: &str| -> Value {
        let (status, answer) = post(
            &format!("{}/v1/decide", server.base),
            &payment(id, card, 5),
            &[],
        );
        assert_eq!(status, 200, "{answer}");
        answers.push(answer.clone());
        answer
    };
    let logged = wait_logged;
    let server = Server::start(&risk(), &state, &args);
    server.live.stderr_line(
        "read 0 partitions on from the record after the last one logged, 1 from their first record",
    );
    let said = server
        .live
        .stderr_line(&format!("kafka:{blocked} partition 0 offset 1: "));
    assert!(said.contains("no key"), "{said}");
    logged(&server, 2);
    let listed = crate::cli_serve::listed;
    let first = decide(&server, "l-1", "c1");
    assert!(listed(&first), "{first}");
    assert!(listed(&decide(&server, "l-2", "c2")));
    assert!(!listed(&decide(&server, "l-3", "c3")));
    server.stop();
    // While it is stopped: d-c1 unblocked (a tombstone), d-c3 blocked.
    produce(&[(Some("d-c1"), None), (Some("d-c3"), Some(""))]);
    let server = Server::start(&risk(), &state, &args);
    server.live.stderr_line(
        "read 1 partitions on from the record after the last one logged, 0 from their first record",
    );
    logged(&server, 2);
    assert!(!listed(&decide(&server, "l-4", "c1")));
    assert!(listed(&decide(&server, "l-5", "c2")));
    assert!(listed(&decide(&server, "l-6", "c3")));
    server.stop();
    let replayed = replayed_answers(&risk(), &state.join("log"));
    assert_eq!(replayed.len(), answers.len());
    for answer in &answers {
        let id = answer["decision_id"].as_str().unwrap();
        assert_eq!(
            replayed.get(id).map(comparable),
            Some(comparable(answer)),
            "{id}"
        );
    }
}

/// Waits (a hang guard: [`PATIENCE`]) until `server` has logged `n`
/// records of its topics (`/metrics`).
fn wait_logged(server: &Server, n: u64) {
    let started = std::time::Instant::now();
    while crate::cli_serve::metric(&server.base, "cepheid_serve_events_topic_logged_total")
        != Some(n)
    {
        assert!(started.elapsed() < PATIENCE, "{n} records never logged");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
