//! A small deterministic `Decider` for the transport's tests: it answers
//! from its inputs alone and can be told to fail. It stands in for the
//! decision service only here; it decides nothing real.
//!
//! - scenes `payment` and `sign_up`; any other is 404 `unknown_scene`,
//!   but `busy` (429, `Retry-After: 2`), `down` (503, 5 s), `gone` (503
//!   without its seconds: the front says 1), `panic` (panics in the
//!   decision's future) and `slow` (waits until [`Fixture::release`]);
//! - `payment` takes `type: "payment"` only (else 422 naming
//!   `event.type`); the outcome is by `amount`: `decline` from 1,000,
//!   `review` from 100, else `approve`; `deadline_ms: 0` is the
//!   fallback `review`, degraded;
//! - an `event_id` starting with `reused` is 409 naming `event.amount`;
//! - the one fired rule `echo` reads `{"event": <the event's text as
//!   received>}`, so that a test sees the bytes the front passed;
//! - `POST /v1/events`: `busy`, `down`, `reused…` and `panic` event ids
//!   as above; the others are counted once each (`repeated` after);
//! - `POST /v1/lists/{list}`: the list `blocked` takes the change (its
//!   `for` a day: an addition without `expires` is given one; one that
//!   expires before 2001 is 422, as past), `busy`
//!   is 429, `down` 503, `panic` panics, any other 404 `not_found`;
//! - `decision("panic")` panics, `decision("expired")` is 404 `expired`;
//!   `scenes`, `not_ready` and `metrics` panic when told to.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_serve::decider::{
    ApiError, BoxFuture, DecideCall, Decided, Decider, ErrorCode, EventCall, ListCall, ListChanged,
    Mode, Recorded, SceneView, ScenesView,
};
use serde_json::{json, Value};

#[derive(Default)]
pub struct Fixture {
    decisions: Mutex<HashMap<String, Vec<u8>>>,
    recorded: Mutex<HashSet<String>>,
    reasons: Mutex<Vec<String>>,
    panics: Mutex<HashSet<&'static str>>,
    decided: AtomicU64,
    /// List changes taken (`blocked`'s entries).
    list_entries: AtomicU64,
    /// `slow` decisions: told when one has begun, waiting to be let go.
    slow: Mutex<
        Option<(
            std::sync::mpsc::Sender<()>,
            tokio::sync::watch::Receiver<bool>,
        )>,
    >,
    release: Mutex<Option<tokio::sync::watch::Sender<bool>>>,
}

impl Fixture {
    pub fn new() -> Arc<Fixture> {
        Arc::new(Fixture::default())
    }

    /// Readiness: not ready with these reasons (none: ready).
    pub fn set_not_ready(&self, reasons: &[&str]) {
        *self.reasons.lock().unwrap() = reasons.iter().map(|s| s.to_string()).collect();
    }

    /// `scenes`, `not_ready` or `metrics` panics from now on.
    pub fn panic_in(&self, method: &'static str) {
        self.panics.lock().unwrap().insert(method);
    }

    fn panics(&self, method: &str) -> bool {
        self.panics.lock().unwrap().contains(method)
    }

    /// Arms the `slow` scene: the receiver hears of each slow decision
    /// begun; they all wait until [`Fixture::release`].
    pub fn arm_slow(&self) -> std::sync::mpsc::Receiver<()> {
        let (began, hear) = std::sync::mpsc::channel();
        let (release, wait) = tokio::sync::watch::channel(false);
        *self.slow.lock().unwrap() = Some((began, wait));
        *self.release.lock().unwrap() = Some(release);
        hear
    }

    pub fn release(&self) {
        if let Some(release) = &*self.release.lock().unwrap() {
            release.send_replace(true);
        }
    }
}

fn scenes() -> ScenesView {
    let scene = |name: &str, rules: &[&str]| SceneView {
        name: name.into(),
        outcomes: vec!["approve".into(), "review".into(), "decline".into()],
        default: "approve".into(),
        fallback: "review".into(),
        late: "review".into(),
        deadline_ms: 200,
        hit: cepheid_api::Hit::All,
        rules: rules.iter().map(|r| r.to_string()).collect(),
    };
    ScenesView {
        rules_version: 7,
        retention_ms: 86_400_000,
        scenes: vec![scene("payment", &["echo"]), scene("sign_up", &[])],
    }
}

/// The outcome the fixture gives an amount.
pub fn outcome_of(amount: f64) -> &'static str {
    if amount >= 1000.0 {
        "decline"
    } else if amount >= 100.0 {
        "review"
    } else {
        "approve"
    }
}

impl Fixture {
    fn decide_now(&self, call: &DecideCall) -> Result<Decided, ApiError> {
        let event: Value = serde_json::from_str(call.event.get()).expect("the front passes JSON");
        if call.scene == "payment" && event.get("type") != Some(&json!("payment")) {
            let got = event
                .get("type")
                .map_or("none".to_string(), Value::to_string);
            return Err(ApiError::new(
                ErrorCode::NotInScene,
                format!("the event does not enter scene `payment`: `type == \"payment\"` does not hold (type is {got})"),
            )
            .with_field("event.type"));
        }
        if !["payment", "sign_up"].contains(&call.scene.as_str()) {
            return Err(ApiError::new(
                ErrorCode::UnknownScene,
                format!("no scene `{}` in rule set version 7", call.scene),
            )
            .with_field("scene"));
        }
        if call.event_id.starts_with("reused") {
            return Err(ApiError::new(
                ErrorCode::EventIdReused,
                format!(
                    "event `{}` was given before with another `amount`",
                    call.event_id
                ),
            )
            .with_field("event.amount"));
        }
        let amount = event.get("amount").and_then(Value::as_f64).unwrap_or(0.0);
        let degraded = call.deadline == Some(Duration::ZERO);
        let outcome = if degraded {
            "review"
        } else {
            outcome_of(amount)
        };
        let n = self.decided.fetch_add(1, Ordering::SeqCst);
        let decision_id = if call.event_id.len() <= 60 {
            format!("d-{}", call.event_id)
        } else {
            format!("d-long-{}", call.event_id.len())
        };
        let rules = if degraded {
            json!([])
        } else {
            json!([{"rule": "echo", "version": 1, "action": outcome, "score": amount / 10.0,
                    "reads": {"event": call.event.get()}}])
        };
        let mut body = json!({
            "decision_id": decision_id,
            "scene": call.scene,
            "event_id": call.event_id,
            "outcome": outcome,
            "score": if degraded { 0.0 } else { amount / 10.0 },
            "rules": rules,
            "shadow": [],
            "degraded": degraded,
            "rules_version": 7,
            "mode": call.mode.as_str(),
            "stamp": 1_767_225_600_000u64 + n,
            "elapsed_us": call.accepted.elapsed().as_micros() as u64,
        });
        if degraded {
            body["degraded_why"] = json!("deadline");
        }
        if call.explain {
            body["explanation"] =
                json!([{"rule": "echo", "fired": !degraded, "why": "it always fires"}]);
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        if call.mode == Mode::Decide {
            self.decisions
                .lock()
                .unwrap()
                .insert(decision_id, bytes.clone());
        }
        Ok(Decided {
            body: bytes,
            scene: Arc::from(call.scene.as_str()),
            outcome: Arc::from(outcome),
            degraded,
        })
    }
}

impl Decider for Fixture {
    fn decide(&self, call: DecideCall) -> BoxFuture<Result<Decided, ApiError>> {
        match call.scene.as_str() {
            "busy" => return Box::pin(async { Err(ApiError::overloaded(2, "the queue is full")) }),
            "down" => {
                return Box::pin(async { Err(ApiError::unavailable(5, "replaying the log")) })
            }
            "gone" => {
                return Box::pin(async { Err(ApiError::new(ErrorCode::Unavailable, "stopping")) })
            }
            "panic" => return Box::pin(async { panic!("the fixture panics in decide") }),
            "slow" => {
                let (began, mut wait) = self.slow.lock().unwrap().clone().expect("armed");
                let answer = self.decide_now(&DecideCall {
                    scene: "payment".into(),
                    event_id: call.event_id.clone(),
                    event: call.event.clone(),
                    mode: call.mode,
                    deadline: call.deadline,
                    explain: false,
                    accepted: call.accepted,
                });
                return Box::pin(async move {
                    let _ = began.send(());
                    let _ = wait.wait_for(|go| *go).await;
                    answer
                });
            }
            _ => {}
        }
        let answer = self.decide_now(&call);
        Box::pin(async move { answer })
    }

    fn record(&self, calls: Vec<EventCall>) -> BoxFuture<Result<Recorded, ApiError>> {
        let mut recorded = 0;
        let mut repeated = 0;
        for call in &calls {
            match call.event_id.as_str() {
                "busy" => {
                    return Box::pin(async { Err(ApiError::overloaded(2, "the queue is full")) })
                }
                "down" => {
                    return Box::pin(async { Err(ApiError::unavailable(5, "replaying the log")) })
                }
                "panic" => return Box::pin(async { panic!("the fixture panics in record") }),
                id if id.starts_with("reused") => {
                    return Box::pin(async {
                        Err(ApiError::new(
                            ErrorCode::EventIdReused,
                            "given before with other fields",
                        )
                        .with_field("events[0].event.account"))
                    })
                }
                _ => {}
            }
            if self.recorded.lock().unwrap().insert(call.event_id.clone()) {
                recorded += 1;
            } else {
                repeated += 1;
            }
        }
        Box::pin(async move {
            Ok(Recorded {
                recorded,
                repeated,
                rules_version: 7,
            })
        })
    }

    fn change_list(&self, call: ListCall) -> BoxFuture<Result<ListChanged, ApiError>> {
        let answer = match call.list.as_str() {
            "busy" => Err(ApiError::overloaded(2, "the queue is full")),
            "down" => Err(ApiError::unavailable(5, "replaying the log")),
            "panic" => return Box::pin(async { panic!("the fixture panics in change_list") }),
            "blocked" if call.expires.is_some_and(|at| at < 1_000_000_000_000) => Err(ApiError {
                status: 422,
                ..ApiError::new(ErrorCode::InvalidRequest, "`expires` is not after now")
                    .with_field("expires")
            }),
            "blocked" => {
                let entry = 1 + self.list_entries.fetch_add(1, Ordering::Relaxed);
                Ok(ListChanged {
                    list: call.list.clone(),
                    added: call.add.len() as u64,
                    removed: call.remove.len() as u64,
                    expires: (!call.add.is_empty())
                        .then(|| call.expires.unwrap_or(1_796_083_200_000 + 86_400_000)),
                    entry,
                })
            }
            other => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no list `{other}` in the rules in force; their lists: blocked"),
            )),
        };
        Box::pin(async move { answer })
    }

    fn decision(&self, decision_id: &str) -> Result<Vec<u8>, ApiError> {
        match decision_id {
            "panic" => panic!("the fixture panics in decision"),
            "expired" => Err(ApiError::new(
                ErrorCode::Expired,
                "decision expired is older than the retention (24h): it is no longer kept",
            )),
            id => self
                .decisions
                .lock()
                .unwrap()
                .get(id)
                .cloned()
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no decision `{id}`"))),
        }
    }

    fn scenes(&self) -> ScenesView {
        assert!(!self.panics("scenes"), "the fixture panics in scenes");
        scenes()
    }

    fn not_ready(&self) -> Vec<String> {
        assert!(!self.panics("not_ready"), "the fixture panics in not_ready");
        self.reasons.lock().unwrap().clone()
    }

    fn metrics(&self, out: &mut String) {
        assert!(!self.panics("metrics"), "the fixture panics in metrics");
        out.push_str("# HELP fixture_decisions Decisions the fixture made.\n");
        out.push_str("# TYPE fixture_decisions counter\n");
        out.push_str(&format!(
            "fixture_decisions_total {}\n",
            self.decided.load(Ordering::SeqCst)
        ));
    }
}
