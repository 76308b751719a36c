//! One request: its route, its token, its body within the limits, the
//! [`Decider`]'s answer, and the answer's metrics once it is written. A
//! panic anywhere in it is a 500, counted; the connection goes on.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::envelope::{self, Limits};
use super::metrics::DecisionLabels;
use super::{Activity, Shared, OPENAPI};
use crate::decider::{ApiError, ErrorCode};

const JSON: &str = "application/json";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The longest list name (`POST /v1/lists/{list}`).
const MAX_LIST_NAME: usize = 256;

/// The longest decision id (`GET /v1/decisions/{decision_id}`).
const MAX_DECISION_ID: usize = 64;

/// A connection's service: each request handled by [`Service::call`].
#[derive(Clone)]
pub(crate) struct Service {
    shared: Arc<Shared>,
    activity: Arc<Activity>,
}

/// The connection is to be closed: its client sent too slowly, or went
/// away mid-body.
#[derive(Debug)]
pub(crate) struct Abort(&'static str);

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Abort {}

/// The routes: the document's paths, and what is not one.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    Decide,
    Events,
    Decision(String),
    List(String),
    Scenes,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    /// A path of the document, another method: its label and `Allow`.
    WrongMethod(&'static str, &'static str),
    NotFound,
}

impl Route {
    fn of(method: &Method, path: &str) -> Route {
        let (route, label, allow) = match path {
            "/v1/decide" => (Route::Decide, "/v1/decide", "POST"),
            "/v1/events" => (Route::Events, "/v1/events", "POST"),
            "/v1/scenes" => (Route::Scenes, "/v1/scenes", "GET"),
            "/healthz" => (Route::Healthz, "/healthz", "GET"),
            "/readyz" => (Route::Readyz, "/readyz", "GET"),
            "/metrics" => (Route::Metrics, "/metrics", "GET"),
            "/openapi.yaml" => (Route::OpenApi, "/openapi.yaml", "GET"),
            _ => match path.strip_prefix("/v1/decisions/") {
                Some(id) if !id.is_empty() && !id.contains('/') => (
                    Route::Decision(id.to_owned()),
                    "/v1/decisions/{decision_id}",
                    "GET",
                ),
                _ => match path.strip_prefix("/v1/lists/") {
                    Some(list) if !list.is_empty() && !list.contains('/') => {
                        (Route::List(list.to_owned()), "/v1/lists/{list}", "POST")
                    }
                    _ => return Route::NotFound,
                },
            },
        };
        if method.as_str() == allow {
            route
        } else {
            Route::WrongMethod(label, allow)
        }
    }

    /// The label `route` of the request counter.
    fn label(&self) -> &'static str {
        match self {
            Route::Decide => "/v1/decide",
            Route::Events => "/v1/events",
            Route::Decision(_) => "/v1/decisions/{decision_id}",
            Route::List(_) => "/v1/lists/{list}",
            Route::Scenes => "/v1/scenes",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.yaml",
            Route::WrongMethod(label, _) => label,
            Route::NotFound => "other",
        }
    }
}

/// An answer before it is a response.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Bytes,
    headers: Vec<(HeaderName, HeaderValue)>,
    decided: Option<DecisionLabels>,
}

impl Reply {
    fn json(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            content_type: JSON,
            body: body.into(),
            headers: Vec::new(),
            decided: None,
        }
    }

    fn error(e: &ApiError) -> Reply {
        let mut reply = Reply::json(e.status, e.body());
        let retry = match (e.retry_after, e.status) {
            (Some(s), _) => Some(s),
            (None, 429 | 503) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry {
            reply
                .headers
                .push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        reply
    }
}

impl Service {
    pub fn new(shared: Arc<Shared>, activity: Arc<Activity>) -> Service {
        Service { shared, activity }
    }

    /// Answers one request; `Err` closes the connection (a client too
    /// slow, or gone).
    pub fn call(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Answer>, Abort>> + Send + 'static {
        let accepted = Instant::now();
        let shared = self.shared.clone();
        let guard = InFlight::new(shared.clone(), self.activity.clone(), accepted);
        async move {
            let route = Route::of(req.method(), req.uri().path());
            let label = route.label();
            let handled = CatchUnwind(Box::pin(handle(shared.clone(), route, req, accepted))).await;
            let reply = match handled {
                Ok(Ok(reply)) => reply,
                Ok(Err(abort)) => return Err(abort),
                Err(_panic) => {
                    shared.metrics.panics.inc();
                    Reply::error(&ApiError::new(
                        ErrorCode::Internal,
                        "the server failed on this request (a fault of the server, counted \
                         as cepheid_serve_http_panics_total); it goes on serving",
                    ))
                }
            };
            Ok(respond(reply, guard, label))
        }
    }
}

fn respond(reply: Reply, guard: InFlight, label: &'static str) -> Response<Answer> {
    let status = reply.status;
    let mut response = Response::new(Answer {
        data: Some(reply.body),
        finish: Some(Finish {
            guard,
            label,
            status,
            decided: reply.decided,
        }),
    });
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    for (name, value) in reply.headers {
        headers.insert(name, value);
    }
    response
}

async fn handle(
    shared: Arc<Shared>,
    route: Route,
    req: Request<Incoming>,
    accepted: Instant,
) -> Result<Reply, Abort> {
    if let Some(tokens) = &shared.tokens {
        let exempt = req.uri().path() == "/openapi.yaml";
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        if !exempt && !tokens.admits(given) {
            shared.metrics.unauthorized.inc();
            let (message, challenge) = if given.is_none() {
                (
                    "this server asks for a token: `Authorization: Bearer TOKEN`",
                    "Bearer",
                )
            } else {
                (
                    "the token given is not one of this server's (`Authorization: Bearer TOKEN`)",
                    "Bearer error=\"invalid_token\"",
                )
            };
            let mut reply = Reply::error(&ApiError::new(ErrorCode::Unauthorized, message));
            reply.headers.push((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
            return drained(&shared, req, reply).await;
        }
    }
    let limits = Limits {
        max_fields: shared.options.max_fields,
        max_batch: shared.options.max_batch,
    };
    let decider = &shared.decider;
    Ok(match route {
        Route::Decide => {
            let body = match read_json(&shared, req).await? {
                Ok(body) => body,
                Err(e) => return Ok(Reply::error(&e)),
            };
            let call = match envelope::decide(&body, limits, accepted) {
                Ok(call) => call,
                Err(e) => return Ok(Reply::error(&e)),
            };
            match finish(tokio::spawn(decider.decide(call))).await {
                Ok(decided) => {
                    let mut reply = Reply::json(200, decided.body);
                    reply.decided = Some(DecisionLabels {
                        scene: decided.scene,
                        outcome: decided.outcome,
                        degraded: decided.degraded,
                    });
                    reply
                }
                Err(e) => Reply::error(&e),
            }
        }
        Route::Events => {
            let body = match read_json(&shared, req).await? {
                Ok(body) => body,
                Err(e) => return Ok(Reply::error(&e)),
            };
            let calls = match envelope::events(&body, limits) {
                Ok(calls) => calls,
                Err(e) => return Ok(Reply::error(&e)),
            };
            match finish(tokio::spawn(decider.record(calls))).await {
                Ok(recorded) => Reply::json(200, to_json(&recorded)),
                Err(e) => Reply::error(&e),
            }
        }
        Route::List(raw) => {
            let body = match read_json(&shared, req).await? {
                Ok(body) => body,
                Err(e) => return Ok(Reply::error(&e)),
            };
            let list = match percent_decoded(&raw) {
                Some(list) if list.chars().count() <= MAX_LIST_NAME => list,
                _ => {
                    return Ok(Reply::error(&ApiError::new(
                        ErrorCode::NotFound,
                        format!(
                            "no list `{raw}`: a list's name is 1 to {MAX_LIST_NAME} characters"
                        ),
                    )))
                }
            };
            let call = match envelope::list_change(list, &body) {
                Ok(call) => call,
                Err(e) => return Ok(Reply::error(&e)),
            };
            match finish(tokio::spawn(decider.change_list(call))).await {
                Ok(changed) => Reply::json(200, to_json(&changed)),
                Err(e) => Reply::error(&e),
            }
        }
        Route::Decision(raw) => match percent_decoded(&raw) {
            Some(id) if id.chars().count() <= MAX_DECISION_ID => match decider.decision(&id) {
                Ok(body) => Reply::json(200, body),
                Err(e) => Reply::error(&e),
            },
            _ => Reply::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no decision `{raw}`: a decision id is 1 to {MAX_DECISION_ID} characters"),
            )),
        },
        Route::Scenes => Reply::json(200, to_json(&decider.scenes())),
        Route::Healthz => Reply::json(
            200,
            to_json(&cepheid_api::Health {
                status: cepheid_api::HealthStatus::Ok,
            }),
        ),
        Route::Readyz => {
            let reasons = decider.not_ready();
            let status = if reasons.is_empty() { 200 } else { 503 };
            let body = cepheid_api::Readiness {
                ready: reasons.is_empty(),
                reasons,
            };
            Reply::json(status, to_json(&body))
        }
        Route::Metrics => {
            let openmetrics = req.headers().get_all(header::ACCEPT).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.contains("application/openmetrics-text"))
            });
            let mut text = String::with_capacity(8 * 1024);
            shared.metrics.encode(&mut text);
            decider.metrics(&mut text);
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("# EOF\n");
            let mut reply = Reply::json(200, text);
            reply.content_type = if openmetrics {
                OPENMETRICS
            } else {
                PROMETHEUS_TEXT
            };
            reply
        }
        Route::OpenApi => {
            let mut reply = Reply::json(200, Bytes::from_static(OPENAPI.as_bytes()));
            reply.content_type = "application/yaml";
            reply
        }
        Route::WrongMethod(label, allow) => {
            let message = format!("`{} {label}`: this route takes {allow} only", req.method());
            let mut reply = Reply::error(&ApiError {
                status: 405,
                ..ApiError::new(ErrorCode::InvalidRequest, message)
            });
            reply
                .headers
                .push((header::ALLOW, HeaderValue::from_static(allow)));
            return drained(&shared, req, reply).await;
        }
        Route::NotFound => {
            let reply = Reply::error(&ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "no route `{} {}`: the routes are those of GET /openapi.yaml",
                    req.method(),
                    req.uri().path()
                ),
            ));
            return drained(&shared, req, reply).await;
        }
    })
}

/// The declared length of a request's body, if any.
fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// An answer given without the request's body: the body is read and
/// dropped first (within the size limit and the body's time), so that
/// the connection stays usable (HTTP/1.1) and the stream ends as the
/// client expects (HTTP/2, rather than a reset while it still sends).
async fn drained(shared: &Shared, req: Request<Incoming>, reply: Reply) -> Result<Reply, Abort> {
    let max = shared.options.max_body_bytes;
    if content_length(&req).is_some_and(|n| n > max as u64) || req.body().is_end_stream() {
        return Ok(reply);
    }
    let body = Limited::new(req.into_body(), max);
    match tokio::time::timeout(shared.options.body_read_timeout, body.collect()).await {
        Ok(_) => Ok(reply),
        Err(_) => {
            shared.metrics.timed_out.inc();
            Err(Abort("the request's body did not come in time"))
        }
    }
}

/// The body of a request refused for its size, read and dropped (up to
/// 16 times the limit, at most 64 MiB, within the body's time), so that a
/// client still sending it gets the answer: answered unread, an HTTP/2
/// stream was reset while curl sent, and curl said "Stream error in the
/// HTTP/2 framing layer" instead of the 413 (a loaded machine, session
/// 62). Past that much, the answer goes and the stream is reset.
async fn discarded(shared: &Shared, req: Request<Incoming>) {
    let cap = shared
        .options
        .max_body_bytes
        .saturating_mul(16)
        .min(64 << 20);
    let mut body = req.into_body();
    let read = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len());
            }
            if seen > cap {
                break;
            }
        }
    };
    if tokio::time::timeout(shared.options.body_read_timeout, read)
        .await
        .is_err()
    {
        shared.metrics.timed_out.inc();
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("the answer serializes")
}

/// The answer of a spawned call; its panic goes on as the handler's own
/// (a 500, counted, in one place).
async fn finish<T>(task: tokio::task::JoinHandle<Result<T, ApiError>>) -> Result<T, ApiError> {
    match task.await {
        Ok(answer) => answer,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(ApiError::unavailable(1, "the server is stopping")),
    }
}

/// The body of a request that must be JSON, within the size limit.
/// `Ok(Err(..))` is an answer (400, 413); `Err` closes the connection.
async fn read_json(
    shared: &Shared,
    req: Request<Incoming>,
) -> Result<Result<Bytes, ApiError>, Abort> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_json = media.as_deref().is_some_and(|m| {
        let m = m
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        m == JSON || (m.starts_with("application/") && m.ends_with("+json"))
    });
    if !is_json {
        let said = match &media {
            Some(m) => format!("not `{m}`"),
            None => "and the request has none".to_owned(),
        };
        let e = ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the body must be JSON with `Content-Type: application/json`, {said}"),
        );
        drained(shared, req, Reply::json(0, Bytes::new())).await?;
        return Ok(Err(e));
    }
    let max = shared.options.max_body_bytes;
    let too_large = || {
        ApiError::new(
            ErrorCode::TooLarge,
            format!("the body is over the server's limit of {max} bytes"),
        )
    };
    if content_length(&req).is_some_and(|n| n > max as u64) {
        discarded(shared, req).await;
        return Ok(Err(too_large()));
    }
    let body = Limited::new(req.into_body(), max);
    match tokio::time::timeout(shared.options.body_read_timeout, body.collect()).await {
        Ok(Ok(collected)) => Ok(Ok(collected.to_bytes())),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Ok(Err(too_large())),
        Ok(Err(_)) => Err(Abort("the request's body was cut off")),
        Err(_) => {
            shared.metrics.timed_out.inc();
            Err(Abort("the request's body did not come in time"))
        }
    }
}

/// `%XX` decoded, as UTF-8; `None` when it is not.
fn percent_decoded(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A request under way: counted in flight (the front's and its
/// connection's) until its answer is written or it is given up.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    activity: Arc<Activity>,
    accepted: Instant,
    answered: bool,
}

impl InFlight {
    fn new(shared: Arc<Shared>, activity: Arc<Activity>, accepted: Instant) -> InFlight {
        shared.metrics.in_flight.inc();
        activity.begin();
        InFlight {
            shared,
            activity,
            accepted,
            answered: false,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.answered {
            self.shared.metrics.cancelled.inc();
        }
        self.shared.metrics.in_flight.dec();
        self.activity.end();
    }
}

/// What is counted when an answer has been written.
struct Finish {
    guard: InFlight,
    label: &'static str,
    status: u16,
    decided: Option<DecisionLabels>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let metrics = &self.guard.shared.metrics;
        if let Some(labels) = &self.decided {
            metrics.decided(labels, self.guard.accepted.elapsed());
        }
        metrics
            .requests
            .get_or_create(&super::metrics::RequestLabels {
                route: self.label,
                status: self.status,
            })
            .inc();
        self.guard.answered = true;
    }
}

/// An answer's body: its bytes at once; its metrics recorded when hyper
/// has taken them and lets the body go.
pub(crate) struct Answer {
    data: Option<Bytes>,
    finish: Option<Finish>,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.data.take() {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None => {
                self.finish.take();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// A future whose panic is caught and given as `Err`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_the_documents() {
        assert_eq!(Route::of(&Method::POST, "/v1/decide"), Route::Decide);
        assert_eq!(
            Route::of(&Method::GET, "/v1/decide"),
            Route::WrongMethod("/v1/decide", "POST")
        );
        assert_eq!(
            Route::of(&Method::GET, "/v1/decisions/d-1"),
            Route::Decision("d-1".into())
        );
        assert_eq!(Route::of(&Method::GET, "/v1/decisions/"), Route::NotFound);
        assert_eq!(
            Route::of(&Method::GET, "/v1/decisions/a/b"),
            Route::NotFound
        );
        assert_eq!(Route::of(&Method::GET, "/v1/scenes/"), Route::NotFound);
        assert_eq!(percent_decoded("d%2D1").as_deref(), Some("d-1"));
        assert_eq!(percent_decoded("d%ff"), None);
    }
}
