//! The service behind the front, in process (`Service::decider`): a
//! decision, a retry, a conflict, an unknown scene, events, a dry run,
//! a degraded answer, and a restart that remembers what was answered.
//! The real server process, driven by real clients, is `tests/cli_serve.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cepheid_serve::decider::{ApiError, DecideCall, Decider, EventCall, ListCall, Mode};
use cepheid_serve::service::{Service, ServiceOptions};
use serde_json::value::RawValue;
use serde_json::Value;

fn rules() -> (cepheid_engine::Rules, Vec<PathBuf>) {
    let paths = vec![
        cepheid_testkit::path("patterns/risk/rules.cep"),
        cepheid_testkit::path("patterns/risk/scenes.cep"),
    ];
    let rules = cepheid_engine::Rules::load_all(&paths).unwrap_or_else(|e| panic!("{e}"));
    (rules, paths)
}

fn scratch(name: &str) -> cepheid_testkit::Scratch {
    cepheid_testkit::Scratch::new(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{name}")),
    )
}

struct Running {
    service: Option<Service>,
    decider: Arc<dyn Decider>,
    rt: tokio::runtime::Runtime,
    /// Each logged decision request's answer, as the replay prints it.
    answered: std::cell::RefCell<Vec<Value>>,
}

/// An answer as compared with the log's replay: the body without the
/// time it took, or the error's status and code.
fn comparable(result: &Result<Value, ApiError>) -> Value {
    match result {
        Ok(body) => {
            let mut body = body.clone();
            body.as_object_mut().unwrap().remove("elapsed_us");
            body
        }
        Err(e) => serde_json::json!({"status": e.status, "code": e.code}),
    }
}

fn start(state: &std::path::Path) -> Running {
    let mut options = ServiceOptions::new(state);
    options.tick_every = Duration::from_secs(3600);
    start_with(state, options)
}

/// [`start`] with `options` (their state `state`).
fn start_with(state: &std::path::Path, options: ServiceOptions) -> Running {
    assert_eq!(options.state, state);
    start_on(rules().1, &options)
}

/// A service of the rules in `paths`, with `options`, once ready.
fn start_on(paths: Vec<PathBuf>, options: &ServiceOptions) -> Running {
    let rules = cepheid_engine::Rules::load_all(&paths).unwrap_or_else(|e| panic!("{e}"));
    let service = Service::start(
        &rules,
        paths,
        options,
        Box::new(cepheid_runtime::StderrReport),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let decider = service.decider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // (ready once the log was read again)
    let started = Instant::now();
    while !decider.not_ready().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{:?}",
            decider.not_ready()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Running {
        service: Some(service),
        decider,
        rt,
        answered: Default::default(),
    }
}

/// Each decision request's answer as `replay` reads it again from the
/// log in `log` with the rules of `paths`.
fn replayed(paths: Vec<PathBuf>, log: &std::path::Path, alerts: PathBuf) -> Vec<Value> {
    let rules = cepheid_engine::Rules::load_all(&paths).unwrap_or_else(|e| panic!("{e}"));
    let (summary, answers) = replay_at(&rules, paths, (log, None), alerts);
    let summary = summary.unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.error().is_none(), "{summary}");
    answers
}

/// `replay` of the log in `log` with `rules` (from the checkpoint `from`,
/// if given), its alerts to `alerts`: how it ended, and each decision
/// request's answer.
fn replay_at(
    rules: &cepheid_engine::Rules,
    paths: Vec<PathBuf>,
    (log, from): (&std::path::Path, Option<&std::path::Path>),
    alerts: PathBuf,
) -> (
    Result<cepheid_runtime::Summary, cepheid_serve::service::StartError>,
    Vec<Value>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let summary = cepheid_serve::service::replay(
        rules,
        paths,
        (log, from),
        (alerts, None),
        tx,
        Box::new(cepheid_runtime::StderrReport),
    );
    let answers = (rx.try_iter())
        .map(|line| comparable(&Ok(serde_json::from_slice(&line).unwrap())))
        .collect();
    (summary, answers)
}

impl Running {
    fn decide(
        &self,
        scene: &str,
        id: &str,
        event: &str,
        deadline: Option<u64>,
    ) -> Result<Value, ApiError> {
        let call = DecideCall {
            scene: scene.into(),
            event_id: id.into(),
            event: RawValue::from_string(event.into()).unwrap(),
            mode: Mode::Decide,
            deadline: deadline.map(Duration::from_millis),
            explain: false,
            accepted: Instant::now(),
        };
        let result = self
            .rt
            .block_on(self.decider.decide(call))
            .map(|decided| decision(&decided.body));
        // (an unknown scene is refused before the log)
        if !matches!(&result, Err(e) if e.status == 404) {
            self.answered.borrow_mut().push(comparable(&result));
        }
        result
    }

    fn stop(mut self) -> Vec<Value> {
        let summary = self
            .service
            .take()
            .unwrap()
            .stop("the test")
            .expect("a summary");
        assert!(summary.error().is_none(), "{summary}");
        self.answered.take()
    }
}

/// A Decision's body as JSON, once it is read as the API's closed
/// `cepheid_api::Decision` (the type the Rust client reads it as).
fn decision(body: &[u8]) -> Value {
    if let Err(e) = serde_json::from_slice::<cepheid_api::Decision>(body) {
        panic!(
            "not a cepheid_api::Decision: {e}: {}",
            String::from_utf8_lossy(body)
        );
    }
    serde_json::from_slice(body).unwrap()
}

fn pay(card: &str, amount: i64) -> String {
    format!(r#"{{"type": "payment", "card": "{card}", "device": "d-{card}", "amount": {amount}}}"#)
}

#[test]
fn a_decision_is_taken_once_and_remembered_across_a_restart() {
    let state = scratch("once");
    let s = start(&state);
    // Four payments of one card: the fourth is reviewed (velocity).
    let mut answers = Vec::new();
    for i in 1..=4 {
        answers.push(
            s.decide("payment", &format!("p{i}"), &pay("c1", 10), None)
                .unwrap(),
        );
    }
    let outcomes: Vec<&str> = answers
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["approve", "approve", "approve", "review"],
        "{answers:?}"
    );
    assert_eq!(answers[3]["rules"][0]["rule"], "payment_velocity");
    // (the log's first entry is the rules the service started with)
    assert_eq!(answers[0]["decision_id"], "d-2");
    // A retry: the same answer, counted once (a fifth payment is the
    // fourth's count plus one, not two).
    let again = s.decide("payment", "p2", &pay("c1", 10), None).unwrap();
    assert_eq!(again["decision_id"], answers[1]["decision_id"]);
    assert_eq!(again["repeated"], true);
    assert_eq!(again["outcome"], "approve");
    // Another amount under the same id: a 409 naming it.
    let e = s.decide("payment", "p2", &pay("c1", 11), None).unwrap_err();
    assert_eq!(
        (e.status, e.field.as_deref()),
        (409, Some("event.amount")),
        "{}",
        e.message
    );
    // An unknown scene: a 404 with a suggestion; nothing taken.
    let e = s.decide("paymnet", "p9", &pay("c1", 10), None).unwrap_err();
    assert_eq!(e.status, 404);
    assert!(
        e.message.contains("did you mean `payment`"),
        "{}",
        e.message
    );
    // An event the scene refuses: a 422 naming the condition.
    let e = s
        .decide("payment", "r1", r#"{"type": "refund", "card": "c1"}"#, None)
        .unwrap_err();
    assert_eq!(e.status, 422, "{}", e.message);
    assert!(e.message.contains(r#"type == "payment""#), "{}", e.message);
    // Deadline 0: the fallback, degraded, still applied.
    let degraded = s.decide("payment", "p5", &pay("c2", 10), Some(0)).unwrap();
    assert_eq!(
        (degraded["outcome"].as_str(), degraded["degraded"].as_bool()),
        (Some("approve"), Some(true))
    );
    // Its retry: the degraded answer again, the same decision.
    let again = s.decide("payment", "p5", &pay("c2", 10), None).unwrap();
    assert_eq!(
        (
            &again["decision_id"],
            &again["degraded"],
            &again["repeated"]
        ),
        (
            &degraded["decision_id"],
            &Value::Bool(true),
            &Value::Bool(true)
        )
    );
    // Events: recorded, a repeat counted once.
    let calls = |ids: &[&str]| -> Vec<EventCall> {
        ids.iter()
            .map(|id| EventCall {
                event_id: id.to_string(),
                event: RawValue::from_string(
                    r#"{"type": "login", "account": "a1", "device": "d1"}"#.into(),
                )
                .unwrap(),
            })
            .collect()
    };
    let recorded =
        s.rt.block_on(s.decider.record(calls(&["l1", "l2"])))
            .unwrap();
    assert_eq!((recorded.recorded, recorded.repeated), (2, 0));
    let recorded =
        s.rt.block_on(s.decider.record(calls(&["l2", "l3"])))
            .unwrap();
    assert_eq!((recorded.recorded, recorded.repeated), (1, 1));
    // A dry run: what it would be, and nothing changes.
    let dry = DecideCall {
        scene: "payment".into(),
        event_id: "p6".into(),
        event: RawValue::from_string(pay("c1", 10)).unwrap(),
        mode: Mode::DryRun,
        deadline: None,
        explain: true,
        accepted: Instant::now(),
    };
    let dry = decision(&s.rt.block_on(s.decider.decide(dry)).unwrap().body);
    assert_eq!(dry["mode"], "dry_run");
    assert_eq!(dry["outcome"], "review");
    // GET: the decision as answered.
    let fourth = answers[3]["decision_id"].as_str().unwrap().to_string();
    let got = decision(&s.decider.decision(&fourth).unwrap());
    assert_eq!(got["outcome"], "review");
    assert_eq!(s.decider.decision("d-999").unwrap_err().status, 404);
    let mut answered = s.stop();
    // Restarted: the retry still gets the first answer, and the card's
    // count goes on from four (the dry run and the retries took none).
    let s = start(&state);
    let again = s.decide("payment", "p3", &pay("c1", 10), None).unwrap();
    assert_eq!(
        (&again["decision_id"], again["repeated"].as_bool()),
        (&answers[2]["decision_id"], Some(true))
    );
    // A retry is never degraded at admission, whatever its deadline: its
    // answer is the first one's (a restarted service, its recent answers
    // slow, degraded them with new decisions before: found by the crash
    // test of `tests/cli_serve.rs`).
    let again = s.decide("payment", "p4", &pay("c1", 10), Some(0)).unwrap();
    assert_eq!(
        (
            &again["decision_id"],
            &again["outcome"],
            &again["degraded"],
            &again["repeated"]
        ),
        (
            &answers[3]["decision_id"],
            &Value::from("review"),
            &Value::Bool(false),
            &Value::Bool(true)
        )
    );
    let fifth = s.decide("payment", "p7", &pay("c1", 10), None).unwrap();
    assert_eq!(fifth["outcome"], "review");
    let reads = &fifth["rules"][0]["reads"];
    assert_eq!(reads["card_payments_10m(card)"], 5, "{fifth}");
    let got = decision(&s.decider.decision(&fourth).unwrap());
    assert_eq!(got["outcome"], "review");
    answered.extend(s.stop());
    // The log read again gives what the clients were answered, answer for
    // answer (`cepheid backtest --events wal:DIR`).
    let (rules, paths) = rules();
    let (tx, rx) = std::sync::mpsc::channel();
    let summary = cepheid_serve::service::replay(
        &rules,
        paths,
        (&state.join("log"), None),
        (state.join("replayed-alerts.jsonl"), None),
        tx,
        Box::new(cepheid_runtime::StderrReport),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.error().is_none(), "{summary}");
    let replayed: Vec<Value> = rx
        .try_iter()
        .map(|line| {
            let v: Value = serde_json::from_slice(&line).unwrap();
            match v.get("error") {
                Some(e) => serde_json::json!({"status": e["status"], "code": e["code"]}),
                None => comparable(&Ok(v)),
            }
        })
        .collect();
    assert_eq!(replayed.len(), answered.len());
    for (i, (live, again)) in answered.iter().zip(&replayed).enumerate() {
        assert_eq!(live, again, "answer {i}");
    }
}

/// A change of the watched rules goes through the log: answers after it
/// name version 2 and follow the new rules, the scenes say so, and the
/// log read again gives every answer the clients got.
impl Running {
    fn change_list(&self, list: &str, add: &[&str], remove: &[&str]) -> Result<Value, ApiError> {
        let json = |values: &[&str]| values.iter().map(|v| format!("{v:?}")).collect();
        let call = ListCall {
            list: list.into(),
            add: json(add),
            remove: json(remove),
            expires: None,
        };
        let changed = self.rt.block_on(self.decider.change_list(call))?;
        Ok(serde_json::to_value(changed).unwrap())
    }
}

/// `POST /v1/lists/{list}` through the service: a device blocked by it
/// is declined from the next request on, unblocked approved again; the
/// change goes through the log, so the restarted service and the replay
/// give the same answers. An addition without `expires` gets the list's
/// `for` from now (30 days), explicit in its answer. A list the rules do
/// not declare is refused and logs nothing.
#[test]
fn a_list_changed_through_the_api_goes_through_the_log_and_is_replayed() {
    let state = scratch("list_route");
    let outcome = |r: &Result<Value, ApiError>| r.as_ref().unwrap()["outcome"].clone();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let running = start(&state);
    assert_eq!(
        outcome(&running.decide("payment", "p1", &pay("c1", 5), None)),
        "approve"
    );
    let changed = running
        .change_list("blocked_devices", &["d-c1", "d-c2"], &[])
        .unwrap();
    assert_eq!(
        (&changed["added"], &changed["removed"]),
        (&2.into(), &0.into())
    );
    let expires = changed["expires"].as_i64().unwrap();
    let thirty_days = 30 * 86_400_000;
    assert!(expires >= before + thirty_days, "{changed}");
    assert!(expires < before + thirty_days + 600_000, "{changed}");
    assert_eq!(
        outcome(&running.decide("payment", "p2", &pay("c1", 5), None)),
        "decline"
    );
    assert_eq!(
        outcome(&running.decide("payment", "p3", &pay("c2", 5), None)),
        "decline"
    );
    // An expiry that is past (seconds for milliseconds): said, nothing
    // logged.
    let call = ListCall {
        list: "blocked_devices".into(),
        add: vec!["\"d-c4\"".into()],
        remove: Vec::new(),
        expires: Some(1_796_083_200),
    };
    let e = running
        .rt
        .block_on(running.decider.change_list(call))
        .unwrap_err();
    assert_eq!(
        (e.status, e.field.as_deref()),
        (422, Some("expires")),
        "{}",
        e.message
    );
    assert!(e.message.contains("not seconds"), "{}", e.message);
    let e = running
        .change_list("blocked_devics", &["d-c3"], &[])
        .unwrap_err();
    assert_eq!(e.status, 404);
    assert!(
        e.message.contains("their lists: blocked_devices"),
        "{}",
        e.message
    );
    let removed = running
        .change_list("blocked_devices", &[], &["d-c1"])
        .unwrap();
    assert!(removed.get("expires").is_none(), "{removed}");
    assert!(removed["entry"].as_u64() > changed["entry"].as_u64());
    assert_eq!(
        outcome(&running.decide("payment", "p4", &pay("c1", 5), None)),
        "approve"
    );
    let mut answered = running.stop();
    // Restarted: the entries are the log's.
    let running = start(&state);
    // (other cards on the same devices: no card's payments add up)
    let on = |card: &str, device: &str| {
        format!(r#"{{"type": "payment", "card": "{card}", "device": "{device}", "amount": 5}}"#)
    };
    assert_eq!(
        outcome(&running.decide("payment", "p5", &on("c8", "d-c2"), None)),
        "decline"
    );
    assert_eq!(
        outcome(&running.decide("payment", "p6", &on("c9", "d-c1"), None)),
        "approve"
    );
    answered.extend(running.stop());
    let replay = replayed(
        rules().1,
        &state.join("log"),
        state.join("replayed-alerts.jsonl"),
    );
    assert_eq!(replay, answered, "the replay gives the clients' answers");
    // The audit records of the two changes the log holds, once each
    // across the restart (the refused ones were never logged), at their
    // entries: the list, what was added with its expiry, what removed.
    let audit = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    let lists: Vec<Value> = (audit.lines())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "list_change")
        .map(|mut r| {
            assert!(r["event_time"].is_i64(), "{r}");
            let r = r.as_object_mut().unwrap();
            r.remove("wall_time");
            r.remove("event_time");
            Value::Object(r.clone())
        })
        .collect();
    let entry = |n: &Value| serde_json::json!({"place": format!("the log {} entry {n}", state.join("log").display())});
    assert_eq!(
        lists,
        [
            serde_json::json!({"kind": "list_change", "origin": entry(&changed["entry"]), "outcome": "applied",
                "list": "blocked_devices", "added": ["d-c1", "d-c2"], "expires": expires, "removed": []}),
            serde_json::json!({"kind": "list_change", "origin": entry(&removed["entry"]), "outcome": "applied",
                "list": "blocked_devices", "added": [], "removed": ["d-c1"]}),
        ],
        "{audit}"
    );
}

/// Rules that review a card's payment from its `threshold`-th in an
/// hour.
fn busy_from(threshold: u32) -> String {
    format!(
        r#"
        indicator pays = count() where type == "payment" group by card within 1h
        pattern busy {{ partition by card action review match p where p: pays(card) >= {threshold} }}
        scene payment {{
            when type == "payment"
            rules busy
            outcomes approve < review
            review if action review
            fallback approve
            deadline 1s
        }}"#
    )
}

#[test]
fn a_change_of_rules_goes_through_the_log_and_is_replayed() {
    let state = scratch("rules");
    let rules_path = state.join("rules.cep");
    let text = busy_from;
    std::fs::write(&rules_path, text(3)).unwrap();
    let paths = vec![rules_path.clone()];
    let load = || cepheid_engine::Rules::load_all(&paths).unwrap_or_else(|e| panic!("{e}"));
    let mut options = ServiceOptions::new(state.join("state"));
    options.tick_every = Duration::from_millis(50);
    options.watch = true;
    let service = Service::start(
        &load(),
        paths.clone(),
        &options,
        Box::new(cepheid_runtime::StderrReport),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let decider = service.decider();
    let started = Instant::now();
    while !decider.not_ready().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = Running {
        service: Some(service),
        decider,
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        answered: Default::default(),
    };
    let two = s.decide("payment", "a1", &pay("c1", 1), None).unwrap();
    assert_eq!(
        (two["outcome"].as_str(), two["rules_version"].as_u64()),
        (Some("approve"), Some(1))
    );
    s.decide("payment", "a2", &pay("c1", 1), None).unwrap();
    // The threshold goes down to 2... but first a broken file: said, not
    // applied.
    std::fs::write(&rules_path, "pattern broken {").unwrap();
    std::fs::write(&rules_path, text(2)).unwrap();
    let started = Instant::now();
    while s.decider.scenes().rules_version != 2 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the change was not applied"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let third = s.decide("payment", "a3", &pay("c1", 1), None).unwrap();
    assert_eq!(
        (third["outcome"].as_str(), third["rules_version"].as_u64()),
        (Some("review"), Some(2)),
        "{third}"
    );
    // A retry of the first answers as it did, with its version.
    let again = s.decide("payment", "a1", &pay("c1", 1), None).unwrap();
    assert_eq!(
        (again["rules_version"].as_u64(), again["repeated"].as_bool()),
        (Some(1), Some(true))
    );
    let answered = s.stop();
    // Restarted (from its last checkpoint, with the command's rules):
    // version 2 goes on.
    let service = Service::start(
        &load(),
        paths.clone(),
        &options,
        Box::new(cepheid_runtime::StderrReport),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    while !service.decider().not_ready().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(service.decider().scenes().rules_version, 2);
    service.stop("the test");
    let log = state.join("state/log");
    let replayed = replayed(paths, &log, state.join("replayed-alerts.jsonl"));
    assert_eq!(replayed, answered);
    // The audit records: the rules the service started with, the log's
    // first entry (those rules: nothing changed), the change at its entry;
    // the restart, resumed from its checkpoint, wrote none again.
    let changes: Vec<u64> = cepheid_serve::wal::WalReader::open(&log, 0)
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| matches!(e.entry, cepheid_serve::wal::Entry::Rules { .. }))
        .map(|e| e.seq)
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    let audit = std::fs::read_to_string(state.join("state/audit.jsonl")).unwrap();
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let said = |r: &Value| {
        let patterns: Vec<(String, String)> = (r["patterns"].as_array().unwrap().iter())
            .map(|p| {
                (
                    p["pattern"].as_str().unwrap().into(),
                    p["change"].as_str().unwrap().into(),
                )
            })
            .collect();
        (
            r["origin"].clone(),
            r["outcome"].as_str().unwrap().to_string(),
            patterns,
            r["unchanged"].as_u64().unwrap(),
        )
    };
    let entry =
        |seq: u64| serde_json::json!({"place": format!("the log {} entry {seq}", log.display())});
    let busy = |change: &str| vec![("busy".to_string(), change.to_string())];
    assert_eq!(
        records.iter().map(said).collect::<Vec<_>>(),
        [
            (
                serde_json::json!({"files": [rules_path.display().to_string()]}),
                "applied".into(),
                busy("added"),
                0
            ),
            (entry(changes[0]), "applied".into(), vec![], 1),
            (entry(changes[1]), "applied".into(), busy("changed"), 0),
        ],
        "{audit}"
    );
    assert!(records[2]["event_time"].is_i64(), "{audit}");
}

/// Under load the shadow rules are shed first: a request answered with
/// its scene's fallback (here by `deadline_ms: 0`) is also taken without
/// its shadow rules (`shadow_shed: true`), so they see the stream
/// without it (a shadow `p{3}` fires one payment later); its other rules
/// take it as ever. The log says so, and its replay answers alike.
#[test]
fn a_degraded_request_sheds_the_shadow_rules_and_the_replay_agrees() {
    let state = scratch("shed");
    let rules_path = state.join("rules.cep");
    std::fs::write(
        &rules_path,
        r#"
        pattern thrice { shadow action review partition by card match p{3} where p: type == "payment" }
        pattern big { partition by card action review match p where p: amount > 100 }
        scene payment {
            when type == "payment"
            rules thrice, big
            outcomes approve < review
            review if action review
            fallback approve
            deadline 60s
        }"#,
    )
    .unwrap();
    let paths = vec![rules_path.clone()];
    let mut options = ServiceOptions::new(state.join("state"));
    options.tick_every = Duration::from_secs(3600);
    let s = start_on(paths.clone(), &options);
    let shadow = |answer: &Value| -> Vec<String> {
        (answer["shadow"].as_array().unwrap().iter())
            .map(|r| r["rule"].as_str().unwrap().to_string())
            .collect()
    };
    let first = s.decide("payment", "s1", &pay("c1", 500), None).unwrap();
    assert_eq!(first.get("shadow_shed"), None, "{first}");
    let shed = s.decide("payment", "s2", &pay("c1", 500), Some(0)).unwrap();
    assert_eq!(
        (&shed["degraded"], &shed["shadow_shed"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{shed}"
    );
    // `thrice` saw s1 alone: not yet.
    let third = s.decide("payment", "s3", &pay("c1", 500), None).unwrap();
    assert!(shadow(&third).is_empty(), "{third}");
    assert_eq!(third["outcome"], "review", "{third}");
    let fourth = s.decide("payment", "s4", &pay("c1", 500), None).unwrap();
    assert_eq!(shadow(&fourth), ["thrice"], "{fourth}");
    let answered = s.stop();
    let replayed = replayed(
        paths,
        &state.join("state/log"),
        state.join("replayed-alerts.jsonl"),
    );
    assert_eq!(replayed, answered);
}

/// `--queue 0` takes nothing: every decision and every batch of events
/// is a 503 (`unavailable`, with `Retry-After`), and nothing is logged
/// (the same event id is taken once the bound allows it again).
#[test]
fn a_queue_bound_of_zero_answers_every_request_503() {
    let state = scratch("queue0");
    let mut options = ServiceOptions::new(state.join("state"));
    options.tick_every = Duration::from_secs(3600);
    options.queue = 0;
    let s = start_on(rules().1, &options);
    for id in ["q1", "q2"] {
        let refused = s.decide("payment", id, &pay("c1", 10), None).unwrap_err();
        assert_eq!((refused.status, refused.retry_after), (503, Some(1)));
        assert_eq!(refused.code, cepheid_serve::decider::ErrorCode::Unavailable);
    }
    let events = vec![EventCall {
        event_id: "l1".into(),
        event: RawValue::from_string(r#"{"type": "login"}"#.into()).unwrap(),
    }];
    let refused = s.rt.block_on(s.decider.record(events)).unwrap_err();
    assert_eq!(refused.status, 503);
    s.stop();
    // Nothing was logged: started again with room, `q1` is taken anew.
    let mut options = ServiceOptions::new(state.join("state"));
    options.tick_every = Duration::from_secs(3600);
    let again = start_with(&state.join("state"), options);
    let first = again.decide("payment", "q1", &pay("c1", 10), None).unwrap();
    assert_eq!(first.get("repeated"), None, "{first}");
    again.stop();
}

/// A log whose first entries retention released, without a checkpoint of
/// what they made (a replay, `backtest --events wal:DIR`, or a service
/// whose checkpoints were lost), is not read from its first entry kept as
/// if it were the start: the run stops naming it. The same log whole
/// replays.
#[test]
fn a_log_released_by_retention_is_not_replayed_from_its_first_entry_kept() {
    use cepheid_serve::wal::{Entry, Input, Wal, WalOptions};
    let dir = scratch("released");
    let log = dir.join("log");
    let (wal, _) = Wal::open(
        &log,
        WalOptions {
            segment_size: 512,
            retention: Duration::ZERO,
            ..WalOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let appender = wal.appender();
    let append = |entry: Entry| {
        let (tx, rx) = std::sync::mpsc::channel();
        appender
            .append(entry, Box::new(move |r| tx.send(r).unwrap()))
            .unwrap_or_else(|e| panic!("{e}"));
        rx.recv().unwrap().unwrap_or_else(|e| panic!("{e}"))
    };
    let (rules, paths) = rules();
    let text: String = (paths.iter())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    append(Entry::Rules {
        text,
        origin: "the test".into(),
    });
    for i in 0..40 {
        let fields = format!(
            r#"{{"type": "payment", "card": "c{}", "device": "d1", "amount": 5}}"#,
            i % 3
        );
        append(Entry::Decide(Input {
            scene: Some("payment".into()),
            event_id: format!("p{i}"),
            fields: RawValue::from_string(fields).unwrap(),
            degraded: false,
            shed_shadow: false,
            origin: None,
        }));
    }
    let replay = |name: &str| {
        let (summary, answers) = replay_at(&rules, paths.clone(), (&log, None), dir.join(name));
        (summary.unwrap_or_else(|e| panic!("{e}")), answers.len())
    };
    let (whole, answers) = replay("whole.jsonl");
    assert!(whole.error().is_none(), "{whole}");
    assert_eq!(answers, 40);
    assert!(wal.release_before(30).unwrap_or_else(|e| panic!("{e}")) > 0);
    let first_kept = cepheid_serve::wal::WalReader::open(&log, 0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .seq;
    assert!(first_kept > 1);
    let (cut, _) = replay("cut.jsonl");
    let said = cut.error().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        said.contains(&format!(
            "its first entry kept is entry {first_kept}: the entries before it were released by retention"
        )),
        "{cut}"
    );
}

/// The files of `dir` and below, with their sizes and modification times:
/// what reading it must leave as it was.
fn listing(dir: &std::path::Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let meta = std::fs::metadata(&path).unwrap();
        if meta.is_dir() {
            found.extend(listing(&path));
        } else {
            found.push((path, meta.len(), meta.modified().unwrap()));
        }
    }
    found.sort();
    found
}

/// Copies the folder `from` whole to `to`.
fn copy_folder(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        match path.is_dir() {
            true => copy_folder(&path, &target),
            false => {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
}

/// A log whose first entries retention released is replayed from a
/// checkpoint of the service's that holds what they made
/// (`replay(.., (log, Some(checkpoint)), ..)`, `backtest --events wal:DIR
/// --from-checkpoint DIR`): the answers of the entries after it are the
/// clients', answer for answer, though the rules changed before it (the
/// rules given to the replay are the first ones: the checkpoint's go
/// on), a retry after it repeats an answer given before it, and counts
/// go on from it. The checkpoint is only read.
#[test]
fn a_log_released_by_retention_is_replayed_from_a_checkpoint() {
    let dir = scratch("from-checkpoint");
    let rules_path = dir.join("rules.cep");
    let text = busy_from;
    std::fs::write(&rules_path, text(3)).unwrap();
    let paths = vec![rules_path.clone()];
    let state = dir.join("state");
    let mut options = ServiceOptions::new(&state);
    options.tick_every = Duration::from_secs(3600);
    options.watch = true;
    // (small segments, so that retention has some to release)
    options.segment_size = 256;
    let s = start_on(paths.clone(), &options);
    for id in ["a1", "a2"] {
        let got = s.decide("payment", id, &pay("c1", 1), None).unwrap();
        assert_eq!(got["outcome"], "approve", "{got}");
    }
    // The threshold goes down to 2 before the checkpoint.
    std::fs::write(&rules_path, text(2)).unwrap();
    let started = Instant::now();
    while s.decider.scenes().rules_version != 2 {
        assert!(started.elapsed() < Duration::from_secs(120), "not applied");
        std::thread::sleep(Duration::from_millis(10));
    }
    let third = s.decide("payment", "a3", &pay("c1", 1), None).unwrap();
    assert_eq!(third["outcome"], "review", "{third}");
    // (stopped: its last checkpoint holds all of it; kept aside, as an
    // operator keeps one)
    let first = s.stop();
    assert_eq!(first.len(), 3);
    let saved = dir.join("saved");
    copy_folder(&state.join("checkpoints"), &saved);
    let checkpoint_of_first = listing(&saved);
    // Then more, after it: a card seen before it, a new one, a retry of a
    // request answered before it.
    let s = start_on(paths.clone(), &options);
    let b1 = s.decide("payment", "b1", &pay("c1", 1), None).unwrap();
    assert_eq!(b1["outcome"], "review", "{b1}");
    let b2 = s.decide("payment", "b2", &pay("c2", 1), None).unwrap();
    assert_eq!(b2["outcome"], "approve", "{b2}");
    let again = s.decide("payment", "a1", &pay("c1", 1), None).unwrap();
    assert_eq!(
        (again["repeated"].as_bool(), again["rules_version"].as_u64()),
        (Some(true), Some(1)),
        "{again}"
    );
    let b3 = s.decide("payment", "b3", &pay("c2", 1), None).unwrap();
    assert_eq!(b3["outcome"], "review", "{b3}");
    let second = s.stop();
    assert_eq!(second.len(), 4);
    // Retention releases what the first run logged.
    let log = state.join("log");
    let first_after = cepheid_serve::wal::WalReader::open(&log, 0)
        .unwrap()
        .map(Result::unwrap)
        .find(|e| matches!(&e.entry, cepheid_serve::wal::Entry::Decide(i) if i.event_id == "b1"))
        .expect("b1 logged")
        .seq;
    {
        let (wal, _) = cepheid_serve::wal::Wal::open(
            &log,
            cepheid_serve::wal::WalOptions {
                segment_size: 256,
                retention: Duration::ZERO,
                ..cepheid_serve::wal::WalOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(wal.release_before(first_after).unwrap() > 0);
    }
    let first_kept = cepheid_serve::wal::WalReader::open(&log, 0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .seq;
    assert!(first_kept > 1 && first_kept <= first_after, "{first_kept}");
    // The replay's rules are the first ones (threshold 3): the
    // checkpoint's (2) go on all the same.
    std::fs::write(&rules_path, text(3)).unwrap();
    let rules = cepheid_engine::Rules::load_all(&paths).unwrap_or_else(|e| panic!("{e}"));
    let replay = |from: Option<&std::path::Path>, name: &str| {
        replay_at(&rules, paths.clone(), (&log, from), dir.join(name))
    };
    // From the first entry kept: refused, said.
    let (whole, _) = replay(None, "whole.jsonl");
    let said = whole.unwrap().error().map(|e| e.to_string());
    assert!(
        said.as_deref()
            .unwrap_or_default()
            .contains("released by retention"),
        "{said:?}"
    );
    // From the checkpoint kept aside: the folder, or its one `cut-N`.
    let cut = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("cut-"))
        .expect("a cut");
    for (from, name) in [(&saved, "a.jsonl"), (&cut, "b.jsonl")] {
        let (summary, answers) = replay(Some(from), name);
        let summary = summary.unwrap_or_else(|e| panic!("{e}"));
        assert!(summary.error().is_none(), "{summary}");
        assert_eq!(answers, second, "from {}", from.display());
    }
    assert_eq!(
        listing(&saved),
        checkpoint_of_first,
        "the checkpoint was written"
    );
    // A folder with no checkpoint in it is said.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (none, _) = replay(Some(&empty), "c.jsonl");
    let said = match none {
        Err(e) => e.to_string(),
        Ok(summary) => summary.error().map(|e| e.to_string()).unwrap_or_default(),
    };
    assert!(said.contains("it holds no checkpoint"), "{said}");
}

/// An events topic's records (`cepheid serve --events-topic`, here handed
/// to the service's feed as its reader hands them): each logged as an
/// event of no scene, named by its place; they feed the indicators as
/// `POST /v1/events` does, take no room in the memory of requests, and
/// the offsets the log holds are where a restart's reader goes on: no
/// record counted twice. What is no event is refused, said, not logged.
/// The replay of the log answers as the clients were answered.
#[test]
fn an_events_topics_records_feed_the_state_once_and_the_log_says_where_to_go_on() {
    let dir = scratch("events-topic");
    let rules_path = dir.join("rules.cep");
    std::fs::write(
        &rules_path,
        r#"
        indicator pays = count() where type == "payment" group by card within 1h
        pattern busy { partition by card action review match p where p: type == "payment" and pays(card) >= 3 }
        pattern fifth { partition by card action decline match p where p: type == "payment" and pays(card) == 5 }
        scene payment {
            when type == "payment"
            rules busy, fifth
            outcomes approve < review < decline
            review if action review
            decline if action decline
            fallback approve
            deadline 1s
        }"#,
    )
    .unwrap();
    let paths = vec![rules_path];
    let mut options = ServiceOptions::new(dir.join("state"));
    options.tick_every = Duration::from_secs(3600);
    let s = start_on(paths.clone(), &options);
    let service = s.service.as_ref().unwrap();
    let feed = service.events_feed();
    assert!(feed.ready());
    assert_eq!(feed.next_offset("pays", 0), None);
    let event = br#"{"type": "payment", "card": "c1", "amount": 5}"#;
    let taken = feed.take(
        "pays",
        &[
            (0, 0, Some(&event[..])),
            (1, 0, Some(&event[..])),
            (1, 1, Some(&b"not json"[..])),
            (1, 2, Some(&br#"{"$list": "blocked", "add": ["c1"]}"#[..])),
            (0, 1, None),
        ],
    );
    let cepheid_serve::service::EventsTaken::Logged(refused) = taken else {
        panic!("{taken:?}")
    };
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused[0].contains("kafka:pays partition 1 offset 1: not a JSON object"),
        "{refused:?}"
    );
    assert!(refused[1].contains("a `$list` record"), "{refused:?}");
    assert!(refused[2].contains("an empty record"), "{refused:?}");
    // (two payments of c1 before it: the third reviews)
    let third = s.decide("payment", "d1", &pay("c1", 1), None).unwrap();
    assert_eq!(third["outcome"], "review", "{third}");
    assert_eq!(feed.next_offset("pays", 0), Some(1));
    assert_eq!(feed.next_offset("pays", 1), Some(1));
    let mut metrics = String::new();
    s.decider.metrics(&mut metrics);
    for (name, n) in [("logged", 2), ("refused", 3)] {
        let line = format!("cepheid_serve_events_topic_{name}_total {n}");
        assert!(metrics.contains(&line), "{line}: {metrics}");
    }
    let mut answered = s.stop();
    // Restarted: the log says where the reader goes on.
    let s = start_on(paths.clone(), &options);
    let feed = s.service.as_ref().unwrap().events_feed();
    assert_eq!(feed.next_offset("pays", 0), Some(1));
    assert_eq!(feed.next_offset("pays", 1), Some(1));
    let taken = feed.take("pays", &[(0, 1, Some(&event[..]))]);
    assert_eq!(
        taken,
        cepheid_serve::service::EventsTaken::Logged(Vec::new())
    );
    // (the fifth payment of c1, exactly: none counted twice)
    let fifth = s.decide("payment", "d2", &pay("c1", 1), None).unwrap();
    assert_eq!(fifth["outcome"], "decline", "{fifth}");
    // The records are no requests: a retry of the decision is the one
    // remembered.
    let again = s.decide("payment", "d1", &pay("c1", 1), None).unwrap();
    assert_eq!(again["repeated"], true, "{again}");
    answered.extend(s.stop());
    let replayed = replayed(
        paths,
        &dir.join("state/log"),
        dir.join("replayed-alerts.jsonl"),
    );
    assert_eq!(replayed, answered);
}
