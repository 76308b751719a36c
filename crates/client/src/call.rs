//! The client and its calls (`docs/clients.md`, "A call").

use std::collections::hash_map::RandomState;
use std::future::IntoFuture;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cepheid_api::{
    DecideRequest, Decision, ErrorBody, Event, EventItem, EventsRecorded, EventsRequest,
    ListChange, ListChanged, Mode, Scenes,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::breaker::{Admission, Breaker, BreakerState, Budget, Transition};
use crate::error::{ApiError, Error, Unavailable, Why};
use crate::options::{Fallback, Options};
use crate::result::{Decided, DecidedBy};
use crate::transport::{
    BoxFuture, Clock, Fault, HttpTransport, Request, Response, TokioClock, Transport,
};

/// The listener of the breaker's changes ([`Client::on_breaker`]).
pub type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

/// A client of one `cepheid serve`: cheap to clone (the clones share
/// their connections, scenes, budget and breaker). Make one per server
/// and share it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.options.url)
            .field("breaker", &self.breaker())
            .finish_non_exhaustive()
    }
}

struct Inner {
    options: Options,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    listener: Mutex<Option<Listener>>,
    random: RandomState,
    counter: AtomicU64,
}

struct State {
    breaker: Breaker,
    budget: Budget,
    /// The copy of `GET /v1/scenes` and when its answer came.
    scenes: Option<(Scenes, Duration)>,
}

/// How an attempt ended, read.
enum Verdict<T> {
    Ok(T),
    Refused(ApiError),
    Failed(Failure),
}

#[derive(Clone, Debug)]
struct Failure {
    why: Why,
    message: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn cause(&self) -> String {
        format!("{}: {}", self.why, self.message)
    }
}

/// How a call ended.
enum End<T> {
    Ok(T, u32),
    Refused(ApiError),
    Failed(Failure, u32),
}

impl Client {
    /// A client of the server at `options.url`, on the real transport
    /// ([`HttpTransport`]) and clock ([`TokioClock`]). A URL that is not
    /// `http://` or `https://`, or a `ca` file that cannot be read, is
    /// [`Error::Invalid`].
    pub fn new(options: Options) -> Result<Client, Error> {
        let transport =
            HttpTransport::new(&options.url, options.ca.as_deref()).map_err(Error::Invalid)?;
        Ok(Client::with_parts(
            options,
            Arc::new(transport),
            Arc::new(TokioClock::default()),
        ))
    }

    /// A client on the given transport and clock (the tests' own);
    /// `options.url` and `options.ca` are the transport's business.
    pub fn with_parts(
        options: Options,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
    ) -> Client {
        let state = State {
            breaker: Breaker::new(options.breaker),
            budget: Budget::new(options.retry_budget),
            scenes: None,
        };
        Client {
            inner: Arc::new(Inner {
                options,
                transport,
                clock,
                state: Mutex::new(state),
                listener: Mutex::new(None),
                random: RandomState::new(),
                counter: AtomicU64::new(0),
            }),
        }
    }

    /// The options the client was made with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The breaker's state now.
    pub fn breaker(&self) -> BreakerState {
        let now = self.inner.clock.now();
        self.state().breaker.state(now)
    }

    /// Gives each change of the breaker's state to `listener` (instead of
    /// the warning written to standard error when none is set).
    pub fn on_breaker(&self, listener: impl Fn(&Transition) + Send + Sync + 'static) {
        *self
            .inner
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(listener));
    }

    /// `POST /v1/decide`: a decision, the server's or the scene's
    /// fallback. Await it, after the call's options if any:
    /// `client.decide("payment", &event).event_id("pay-1").deadline_ms(300).await`.
    /// `event` is any value that serializes to a JSON object.
    pub fn decide<E: Serialize + ?Sized>(&self, scene: &str, event: &E) -> Decide<'_> {
        Decide {
            client: self,
            scene: scene.to_string(),
            event: to_event(event),
            event_id: None,
            deadline_ms: None,
            explain: false,
            mode: Mode::Decide,
        }
    }

    /// `POST /v1/decide` with `mode: dry_run`: the server's evaluation,
    /// no state changed; never a fallback (a failure is
    /// [`Error::Unavailable`]).
    pub fn dry_run<E: Serialize + ?Sized>(&self, scene: &str, event: &E) -> Decide<'_> {
        Decide {
            mode: Mode::DryRun,
            ..self.decide(scene, event)
        }
    }

    /// `POST /v1/events`: records `(event_id, event)` pairs, in order,
    /// without a decision, within `deadline_ms` (else the option's).
    pub async fn record<I, E>(
        &self,
        events: I,
        deadline_ms: Option<u64>,
    ) -> Result<EventsRecorded, Error>
    where
        I: IntoIterator<Item = (String, E)>,
        E: Serialize,
    {
        let mut items = Vec::new();
        for (event_id, event) in events {
            let event = to_event(&event).map_err(Error::Invalid)?;
            items.push(EventItem { event_id, event });
        }
        let body = serde_json::to_vec(&EventsRequest { events: items })
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let start = self.inner.clock.now();
        let deadline = start + self.deadline(deadline_ms);
        let request = |_: u64| self.request("POST", "/v1/events".into(), Some(body.clone()));
        finish(
            self.call(request, deadline, read_json::<EventsRecorded>)
                .await,
        )
    }

    /// `POST /v1/lists/{list}`: changes a list the rules declare (`remove`
    /// first, then `add`, until `expires` or the list's `for` from now),
    /// within `deadline_ms` (else the option's); answered once the change
    /// is logged. Retried as the other calls are (a change given twice
    /// changes nothing more). A change without `add` and `remove`, an
    /// empty one, a value that is not a string, a number or a boolean, or
    /// `expires` without `add` is [`Error::Invalid`], nothing sent.
    pub async fn change_list(
        &self,
        list: &str,
        change: &ListChange,
        deadline_ms: Option<u64>,
    ) -> Result<ListChanged, Error> {
        if list.is_empty() {
            return Err(Error::Invalid("the list's name is empty".into()));
        }
        let values = [("add", &change.add), ("remove", &change.remove)];
        for (field, values) in values {
            let Some(values) = values else { continue };
            if values.is_empty() {
                return Err(Error::Invalid(format!("`{field}` is empty (leave it out)")));
            }
            if let Some(i) = values
                .iter()
                .position(|v| !(v.is_string() || v.is_number() || v.is_boolean()))
            {
                return Err(Error::Invalid(format!(
                    "`{field}[{i}]` is not a string, a number or a boolean"
                )));
            }
        }
        if change.add.is_none() && change.remove.is_none() {
            return Err(Error::Invalid(
                "a list change has `add`, `remove` or both".into(),
            ));
        }
        if change.expires.is_some() && change.add.is_none() {
            return Err(Error::Invalid("`expires` goes with `add`".into()));
        }
        let body = serde_json::to_vec(change).map_err(|e| Error::Invalid(e.to_string()))?;
        let deadline = self.inner.clock.now() + self.deadline(deadline_ms);
        let path = format!("/v1/lists/{}", percent_encode(list));
        let request = |_: u64| self.request("POST", path.clone(), Some(body.clone()));
        finish(self.call(request, deadline, read_json::<ListChanged>).await)
    }

    /// `GET /v1/decisions/{decision_id}`: a decision as it was answered.
    pub async fn decision(&self, decision_id: &str) -> Result<Decision, Error> {
        let deadline = self.inner.clock.now() + self.deadline(None);
        let path = format!("/v1/decisions/{}", percent_encode(decision_id));
        let request = |_: u64| self.request("GET", path.clone(), None);
        finish(self.call(request, deadline, read_json::<Decision>).await)
    }

    /// `GET /v1/scenes`: the scenes of the rule set in force (and the
    /// client's copy of them renewed).
    pub async fn scenes(&self) -> Result<Scenes, Error> {
        let deadline = self.inner.clock.now() + self.deadline(None);
        let request = |_: u64| self.request("GET", "/v1/scenes".into(), None);
        let scenes = finish(self.call(request, deadline, read_json::<Scenes>).await)?;
        let now = self.inner.clock.now();
        self.state().scenes = Some((scenes.clone(), now));
        Ok(scenes)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deadline(&self, deadline_ms: Option<u64>) -> Duration {
        Duration::from_millis(deadline_ms.unwrap_or(self.inner.options.deadline_ms))
    }

    fn request(&self, method: &'static str, path: String, body: Option<Vec<u8>>) -> Request {
        let mut headers = Vec::new();
        if let Some(token) = &self.inner.options.token {
            headers.push(("authorization".to_string(), format!("Bearer {token}")));
        }
        if body.is_some() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        Request {
            method,
            path,
            headers,
            body,
        }
    }

    fn random(&self) -> u64 {
        let mut h = self.inner.random.build_hasher();
        h.write_u64(self.inner.counter.fetch_add(1, Ordering::Relaxed));
        h.write_u128(self.inner.clock.now().as_nanos());
        h.finish()
    }

    /// A random event id: 32 hexadecimal digits.
    fn event_id(&self) -> String {
        format!("{:016x}{:016x}", self.random(), self.random())
    }

    fn emit(&self, transitions: Vec<Transition>) {
        if transitions.is_empty() {
            return;
        }
        let listener = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for t in &transitions {
            match &listener {
                Some(listener) => listener(t),
                None => eprintln!("cepheid-client: warning: {t} ({})", self.inner.options.url),
            }
        }
    }

    /// One attempt within `timeout`: `None` when the breaker refused it.
    async fn attempt<T>(
        &self,
        request: Request,
        timeout: Duration,
        read: fn(&Response) -> Result<T, String>,
    ) -> Option<Verdict<T>> {
        let mut transitions = Vec::new();
        let admission = {
            let now = self.inner.clock.now();
            self.state().breaker.admit(now, &mut transitions)
        };
        self.emit(transitions);
        if admission == Admission::Refused {
            return None;
        }
        // A trial dropped before its answer opens the breaker again.
        let mut guard = TrialGuard {
            client: self,
            admission,
            armed: true,
        };
        let answer = self.inner.transport.send(request, timeout).await;
        guard.armed = false;
        let verdict = classify(answer, timeout, read);
        let mut transitions = Vec::new();
        {
            let now = self.inner.clock.now();
            let mut state = self.state();
            match &verdict {
                Verdict::Ok(_) | Verdict::Refused(_) => {
                    state.budget.succeeded();
                    state
                        .breaker
                        .record(admission, Ok(()), now, &mut transitions);
                }
                Verdict::Failed(failure) => {
                    state.budget.failed();
                    let cause = failure.cause();
                    state
                        .breaker
                        .record(admission, Err(&cause), now, &mut transitions);
                }
            }
        }
        self.emit(transitions);
        Some(verdict)
    }

    /// A call: attempts until an answer, a refusal, or a failure it may
    /// not retry (`docs/clients.md`). `request` makes each attempt's
    /// request from its time left in whole milliseconds.
    async fn call<T>(
        &self,
        mut request: impl FnMut(u64) -> Request,
        deadline: Duration,
        read: fn(&Response) -> Result<T, String>,
    ) -> End<T> {
        let options = &self.inner.options;
        let mut attempts = 0u32;
        let mut last: Option<Failure> = None;
        loop {
            let now = self.inner.clock.now();
            if now >= deadline {
                let failure = last.unwrap_or_else(|| Failure {
                    why: Why::Timeout,
                    message: "no time was left for a request within the deadline".into(),
                    retry_after: None,
                });
                return End::Failed(failure, attempts);
            }
            let timeout = deadline - now;
            let left_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            let Some(verdict) = self.attempt(request(left_ms), timeout, read).await else {
                let failure = last.unwrap_or_else(|| Failure {
                    why: Why::BreakerOpen,
                    message: "the circuit breaker is open: no request was sent".into(),
                    retry_after: None,
                });
                return End::Failed(failure, attempts);
            };
            attempts += 1;
            let failure = match verdict {
                Verdict::Ok(t) => return End::Ok(t, attempts),
                Verdict::Refused(e) => return End::Refused(e),
                Verdict::Failed(failure) => failure,
            };
            let now = self.inner.clock.now();
            let (open, budget) = {
                let state = self.state();
                (
                    state.breaker.state(now) != BreakerState::Closed,
                    state.budget.allows_retry(),
                )
            };
            if open || attempts >= options.max_attempts || !budget {
                return End::Failed(failure, attempts);
            }
            let exp = options
                .backoff_ms
                .saturating_mul(1u64.checked_shl(attempts - 1).unwrap_or(u64::MAX));
            let mut wait = Duration::from_millis(exp.min(options.backoff_max_ms));
            if options.jitter {
                // Uniform in [wait/2, wait].
                let half = wait / 2;
                let span = (wait - half).as_nanos() as u64;
                let extra = if span == 0 {
                    0
                } else {
                    self.random() % (span + 1)
                };
                wait = half + Duration::from_nanos(extra);
            }
            if let Some(after) = failure.retry_after {
                wait = wait.max(after);
            }
            if now + wait >= deadline {
                return End::Failed(failure, attempts);
            }
            self.inner.clock.sleep(wait).await;
            last = Some(failure);
        }
    }

    /// The scenes' copy renewed when it is missing or `scenes_ttl_ms` old:
    /// one attempt within the call's deadline. A refusal is the call's
    /// error; a failure keeps the old copy.
    async fn renew_scenes(&self, deadline: Duration) -> Result<(), ApiError> {
        let now = self.inner.clock.now();
        let ttl = Duration::from_millis(self.inner.options.scenes_ttl_ms);
        let fresh = match &self.state().scenes {
            Some((_, at)) => now < *at + ttl,
            None => false,
        };
        if fresh || now >= deadline {
            return Ok(());
        }
        let request = self.request("GET", "/v1/scenes".into(), None);
        match self
            .attempt(request, deadline - now, read_json::<Scenes>)
            .await
        {
            Some(Verdict::Ok(scenes)) => {
                let now = self.inner.clock.now();
                self.state().scenes = Some((scenes, now));
                Ok(())
            }
            Some(Verdict::Refused(e)) => Err(e),
            Some(Verdict::Failed(_)) | None => Ok(()),
        }
    }

    /// The scene's fallback outcome: the caller's choice, else the
    /// published one; `None` when it cannot be known.
    fn fallback(&self, scene: &str) -> Option<String> {
        let state = self.state();
        let published = state.scenes.as_ref().and_then(|(s, _)| s.get(scene));
        match self.inner.options.fallbacks.get(scene) {
            Some(Fallback::Outcome(name)) => Some(name.clone()),
            Some(Fallback::Open) => published.and_then(|s| s.outcomes.first().cloned()),
            Some(Fallback::Closed) => published.and_then(|s| s.outcomes.last().cloned()),
            None => published.map(|s| s.fallback.clone()),
        }
    }

    async fn run_decide(&self, d: Decide<'_>) -> Result<Decided, Error> {
        let event = d.event.map_err(Error::Invalid)?;
        let start = self.inner.clock.now();
        let deadline = start + self.deadline(d.deadline_ms);
        let event_id = d.event_id.unwrap_or_else(|| self.event_id());
        let mut body = DecideRequest {
            scene: d.scene.clone(),
            event_id: event_id.clone(),
            event,
            mode: None,
            deadline_ms: None,
            explain: d.explain.then_some(true),
        };
        if d.mode == Mode::DryRun {
            body.mode = Some(Mode::DryRun);
        } else {
            self.renew_scenes(deadline).await?;
        }
        let request = |left_ms: u64| {
            body.deadline_ms = Some(left_ms);
            let bytes = serde_json::to_vec(&body).expect("a request serializes");
            self.request("POST", "/v1/decide".into(), Some(bytes))
        };
        match self.call(request, deadline, read_json::<Decision>).await {
            End::Ok(decision, attempts) => Ok(Decided::server(decision, attempts)),
            End::Refused(e) => Err(Error::Api(e)),
            End::Failed(failure, attempts) if d.mode == Mode::DryRun => {
                Err(unavailable(failure, attempts))
            }
            End::Failed(failure, attempts) => match self.fallback(&d.scene) {
                Some(outcome) => Ok(Decided {
                    decided_by: DecidedBy::Client,
                    attempts,
                    scene: d.scene,
                    event_id,
                    outcome,
                    degraded: true,
                    degraded_why: Some(failure.why.as_str().to_string()),
                    error: Some(failure.message),
                    decision: None,
                }),
                None => Err(Error::Unavailable(Unavailable {
                    why: Why::NoFallback,
                    attempts,
                    message: format!(
                        "{}: {}; and no fallback is known for scene `{}` (name one in `fallbacks`)",
                        failure.why, failure.message, d.scene
                    ),
                })),
            },
        }
    }
}

/// Drops a half-open breaker's trial whose call was given up.
struct TrialGuard<'a> {
    client: &'a Client,
    admission: Admission,
    armed: bool,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.armed && self.admission == Admission::Trial {
            let mut transitions = Vec::new();
            let now = self.client.inner.clock.now();
            self.client
                .state()
                .breaker
                .abandon(self.admission, now, &mut transitions);
            self.client.emit(transitions);
        }
    }
}

/// A decision asked for ([`Client::decide`], [`Client::dry_run`]): its
/// options, then `.await`.
#[must_use = "a decision is asked for when awaited"]
pub struct Decide<'a> {
    client: &'a Client,
    scene: String,
    event: Result<Event, String>,
    event_id: Option<String>,
    deadline_ms: Option<u64>,
    explain: bool,
    mode: Mode,
}

impl Decide<'_> {
    /// The event's id, its idempotency key (else the client makes a
    /// random one, named by the result).
    pub fn event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = Some(event_id.into());
        self
    }

    /// The call's deadline (else the option's `deadline_ms`).
    pub fn deadline_ms(mut self, deadline_ms: u64) -> Self {
        self.deadline_ms = Some(deadline_ms);
        self
    }

    /// Asks for the decision's `explanation`, rule by rule.
    pub fn explain(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }
}

impl<'a> IntoFuture for Decide<'a> {
    type Output = Result<Decided, Error>;
    type IntoFuture = BoxFuture<'a, Result<Decided, Error>>;

    fn into_future(self) -> Self::IntoFuture {
        let client = self.client;
        Box::pin(client.run_decide(self))
    }
}

fn finish<T>(end: End<T>) -> Result<T, Error> {
    match end {
        End::Ok(t, _) => Ok(t),
        End::Refused(e) => Err(Error::Api(e)),
        End::Failed(failure, attempts) => Err(unavailable(failure, attempts)),
    }
}

fn unavailable(failure: Failure, attempts: u32) -> Error {
    Error::Unavailable(Unavailable {
        why: failure.why,
        attempts,
        message: failure.message,
    })
}

fn to_event<E: Serialize + ?Sized>(event: &E) -> Result<Event, String> {
    match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "an event is a JSON object of fields, not {}",
            kind(&other)
        )),
        Err(e) => Err(format!("the event does not serialize to JSON: {e}")),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn read_json<T: DeserializeOwned>(response: &Response) -> Result<T, String> {
    serde_json::from_slice(&response.body).map_err(|e| {
        format!(
            "the answer ({}) is not the document's JSON: {e}: {}",
            response.status,
            excerpt(&response.body)
        )
    })
}

/// The start of a body, as text.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    cut
}

/// `Retry-After`'s whole seconds, when it is a number.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.header("retry-after")?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// An attempt's answer or fault, read (`docs/clients.md`'s table).
fn classify<T>(
    answer: Result<Response, Fault>,
    timeout: Duration,
    read: fn(&Response) -> Result<T, String>,
) -> Verdict<T> {
    let response = match answer {
        Ok(response) => response,
        Err(Fault::Unreachable(message)) => {
            return Verdict::Failed(Failure {
                why: Why::Unreachable,
                message,
                retry_after: None,
            })
        }
        Err(Fault::Timeout) => {
            return Verdict::Failed(Failure {
                why: Why::Timeout,
                message: format!("no answer within {} ms", timeout.as_millis()),
                retry_after: None,
            })
        }
    };
    let status = response.status;
    let said = || match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(body) => (Some(body.error.code), body.error.message, body.error.field),
        Err(_) => (
            None,
            format!("the server answered {status}: {}", excerpt(&response.body)),
            None,
        ),
    };
    let failed = |why: Why| {
        let (code, message, _) = said();
        let message = match code {
            Some(code) => format!("{status} {code}: {message}"),
            None => message,
        };
        Verdict::Failed(Failure {
            why,
            message,
            retry_after: retry_after(&response),
        })
    };
    match status {
        200..=299 => match read(&response) {
            Ok(t) => Verdict::Ok(t),
            Err(message) => Verdict::Failed(Failure {
                why: Why::ServerError,
                message,
                retry_after: retry_after(&response),
            }),
        },
        429 => failed(Why::Overloaded),
        503 => failed(Why::Unavailable),
        400..=499 => {
            let (code, message, field) = said();
            Verdict::Refused(ApiError {
                status,
                code,
                message,
                field,
            })
        }
        _ => failed(Why::ServerError),
    }
}

/// `s` as one path segment: every byte but the unreserved ones
/// percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// The calls' futures are sent between threads (a tokio task).
const _: fn() = || {
    fn send<T: Send>(_: T) {}
    fn check(c: &Client, e: &serde_json::Value) {
        send(c.decide("s", e).into_future());
        send(c.decision("d"));
        send(c.scenes());
        send(c.record(Vec::<(String, serde_json::Value)>::new(), None));
    }
    let _ = check;
};
