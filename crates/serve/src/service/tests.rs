//! A request whose deadline passes while the run's thread stands still
//! (a checkpoint, a burst): the run's thread held here at will, so that
//! which of the front and the run gets to the request first is the
//! test's choice, not the machine's.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use serde_json::Value;

use super::{Service, ServiceOptions};
use crate::decider::{ApiError, DecideCall, Decider, Mode};

/// Where a test holds the run's thread: before the engine takes a
/// request (`taking`), and before a decision's answer is handed to its
/// client (`answering`); and how many times the front tried to answer
/// a request degraded at its deadline.
#[derive(Default)]
pub(crate) struct Holds {
    pub(crate) taking: Hold,
    pub(crate) answering: Hold,
    pub(crate) late_tries: AtomicU64,
}

/// A gate the run's thread waits at while it is closed.
#[derive(Default)]
pub(crate) struct Hold {
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Hold {
    /// Waits while the gate is closed.
    pub(crate) fn hold(&self) {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        while *closed {
            closed = (self.opened.wait(closed)).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }

    fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }
}

const RULES: &str = r#"
pattern thrice { partition by card action decline match p{3} where p: type == "payment" }
pattern big { partition by card action review match p where p: amount > 100 }
scene payment {
    when type == "payment"
    rules thrice, big
    outcomes approve < review < decline
    review if action review
    decline if action decline
    fallback review
    deadline 60s
}
"#;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("cepheid-serve-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Running {
    service: Option<Service>,
    decider: Arc<dyn Decider>,
    rt: tokio::runtime::Runtime,
}

fn start(dir: &std::path::Path) -> Running {
    let path = dir.join("rules.cep");
    std::fs::write(&path, RULES).unwrap();
    let rules = cepheid_engine::Rules::load_all(std::slice::from_ref(&path)).unwrap();
    let mut options = ServiceOptions::new(dir.join("state"));
    options.tick_every = Duration::from_secs(3600);
    let service = Service::start(
        &rules,
        vec![path],
        &options,
        Box::new(cepheid_runtime::StderrReport),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let decider = service.decider();
    let started = Instant::now();
    while !decider.not_ready().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(120), "never ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    Running {
        service: Some(service),
        decider,
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

fn call(id: &str, amount: i64, deadline_ms: Option<u64>) -> DecideCall {
    DecideCall {
        scene: "payment".into(),
        event_id: id.into(),
        event: RawValue::from_string(format!(
            r#"{{"type": "payment", "card": "c1", "amount": {amount}}}"#
        ))
        .unwrap(),
        mode: Mode::Decide,
        deadline: deadline_ms.map(Duration::from_millis),
        explain: false,
        accepted: Instant::now(),
    }
}

impl Running {
    fn shared(&self) -> &super::Shared {
        &self.service.as_ref().unwrap().shared
    }

    fn decide(&self, id: &str, amount: i64, deadline_ms: Option<u64>) -> Value {
        decide(&self.rt, &*self.decider, call(id, amount, deadline_ms)).unwrap()
    }

    fn stop(mut self) {
        let summary = (self.service.take().unwrap().stop("the test")).expect("a summary");
        assert!(summary.error().is_none(), "{summary}");
    }
}

fn decide(
    rt: &tokio::runtime::Runtime,
    decider: &dyn Decider,
    call: DecideCall,
) -> Result<Value, ApiError> {
    let decided = rt.block_on(decider.decide(call))?;
    let mut body: Value = serde_json::from_slice(&decided.body).unwrap();
    body.as_object_mut().unwrap().remove("elapsed_us");
    Ok(body)
}

/// The answer of a first request as its retry is answered.
fn as_repeated(body: &Value) -> Value {
    let mut body = body.clone();
    body["repeated"] = Value::Bool(true);
    body
}

/// Each decision request's answer as the log's replay gives it.
fn replayed(dir: &std::path::Path) -> Vec<Value> {
    let path = dir.join("rules.cep");
    let rules = cepheid_engine::Rules::load_all(std::slice::from_ref(&path)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let summary = super::replay(
        &rules,
        vec![path],
        (&dir.join("state/log"), None),
        (dir.join("replayed.jsonl"), None),
        tx,
        Box::new(cepheid_runtime::StderrReport),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.error().is_none(), "{summary}");
    (rx.try_iter())
        .map(|line| {
            let mut body: Value = serde_json::from_slice(&line).unwrap();
            body.as_object_mut().unwrap().remove("elapsed_us");
            body
        })
        .collect()
}

/// The run's thread stands still before it takes `a2` until well past
/// its deadline: its client gets the scene's fallback, degraded, at the
/// deadline, without waiting for the run; the request is applied all the
/// same (the third payment declines), remembered degraded (a retry, and
/// a retry after a restart, get that answer), and the log says so, so
/// its replay answers as the clients were answered.
#[test]
fn a_request_the_run_has_not_taken_by_its_deadline_is_answered_degraded() {
    let dir = scratch("late");
    let s = start(&dir);
    let a1 = s.decide("a1", 5, None);
    assert_eq!(a1["outcome"], "approve", "{a1}");

    s.shared().holds.taking.close();
    let a2 = s.decide("a2", 5, Some(50));
    assert_eq!(
        (&a2["outcome"], &a2["degraded"], &a2["degraded_why"]),
        (
            &Value::from("review"),
            &Value::Bool(true),
            &Value::from("deadline")
        ),
        "{a2}"
    );
    s.shared().holds.taking.open();
    assert_eq!(s.shared().counters.degraded_late.get(), 1);

    // Applied: a2 is c1's second payment, a3 its third.
    let a3 = s.decide("a3", 5, None);
    assert_eq!(a3["outcome"], "decline", "{a3}");
    // Remembered as answered, a retry gets it, and so does the lookup.
    assert_eq!(s.decide("a2", 5, None), as_repeated(&a2));
    let id = a2["decision_id"].as_str().unwrap();
    let looked_up: Value = serde_json::from_slice(&s.decider.decision(id).unwrap()).unwrap();
    assert_eq!(looked_up["outcome"], "review", "{looked_up}");
    assert_eq!(looked_up["degraded"], true, "{looked_up}");
    s.stop();

    // After a restart (the log replayed after the checkpoint the stop
    // took, and from its start with the checkpoints gone), a retry gets
    // the same answer.
    let again = start(&dir);
    assert_eq!(again.decide("a2", 5, None), as_repeated(&a2));
    again.stop();
    std::fs::remove_dir_all(dir.join("state/checkpoints")).unwrap();
    let again = start(&dir);
    assert_eq!(again.decide("a2", 5, None), as_repeated(&a2));
    again.stop();

    // The log's replay: every answer as the clients got it.
    let mut retry = as_repeated(&a2);
    let repeated = |body: &Value| body["event_id"] == "a2" && body["repeated"] == true;
    let replayed = replayed(&dir);
    assert_eq!(replayed.len(), 6, "{replayed:#?}");
    assert_eq!((&replayed[0], &replayed[1], &replayed[2]), (&a1, &a2, &a3));
    for body in &replayed[3..] {
        assert!(repeated(body), "{body}");
        retry["stamp"] = body["stamp"].clone();
        assert_eq!(body, &retry);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The run's thread took `b2` and stands still before its answer goes
/// out until past its deadline: the run has decided it, so its client
/// waits for that decision (answered late, counted), never the fallback.
#[test]
fn a_request_the_run_took_before_its_deadline_is_answered_late_not_degraded() {
    let dir = scratch("took");
    let s = start(&dir);
    s.shared().holds.answering.close();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let decider = Arc::clone(&s.decider);
    let asked = std::thread::spawn(move || decide(&rt, &*decider, call("b2", 5, Some(50))));
    // (the front's deadline passed, and it found the run had it)
    let started = Instant::now();
    while s.shared().holds.late_tries.load(Ordering::Acquire) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no deadline passed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    s.shared().holds.answering.open();
    let b2 = asked.join().unwrap().unwrap();
    assert_eq!(
        (&b2["outcome"], &b2["degraded"]),
        (&Value::from("approve"), &Value::Bool(false)),
        "{b2}"
    );
    let counters = &s.shared().counters;
    assert_eq!(
        (counters.degraded_late.get(), counters.late_answers.get()),
        (0, 1)
    );
    s.stop();
    assert_eq!(replayed(&dir), [b2]);
    let _ = std::fs::remove_dir_all(&dir);
}
