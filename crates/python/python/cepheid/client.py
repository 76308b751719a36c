"""The client of ``cepheid serve``: a decision per business event, with a
deadline, the scene's fallback when the service is slow or down, retries
with the same event id, a retry budget and a circuit breaker.

It behaves as ``docs/clients.md`` says (the contract the Python, TypeScript
and Rust clients share, kept as the cases of ``clients/cases.json``).
:class:`Client` is synchronous, :class:`AsyncClient` is for asyncio; both
have the same calls and options and run one policy (:class:`_Policy`),
written once as a generator of effects (send this request, sleep this
long) that each drives with its own transport and sleep. The HTTP is
`httpx <https://www.python-httpx.org>`_ (keep-alive connection pools, TLS,
sync and async alike).

>>> from cepheid.client import Client
>>> client = Client("http://127.0.0.1:8870", fallbacks={"payment": "review"})
>>> client.breaker
'closed'
>>> client.close()

Times are milliseconds. A decision's result is a :class:`Decision`, a
``dict`` of the API's fields (``result["outcome"]``) that also reads them
as attributes (``result.outcome``), with ``decided_by`` (``"server"`` or
``"client"``) and ``attempts`` added; the other calls return the server's
JSON document as a ``dict``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import quote, urlsplit

__all__ = [
    "Client",
    "AsyncClient",
    "Decision",
    "ApiError",
    "Unavailable",
    "ClientError",
    "Transition",
    "Failure",
    "Request",
    "Response",
    "TransportError",
    "Transport",
    "AsyncTransport",
    "HttpxTransport",
    "AsyncHttpxTransport",
]

logger = logging.getLogger("cepheid.client")

BreakerState = str
"""``"closed"``, ``"open"`` or ``"half_open"``."""

# ---------------------------------------------------------------------------
# Errors and results


class ClientError(Exception):
    """What a call of the client raises: :class:`ApiError` or
    :class:`Unavailable`."""


class ApiError(ClientError):
    """The server refused the request (a 4xx but 429): its ``status`` and
    the API's ``code``, ``message`` and ``field`` (``None`` when the error
    names none). Never retried; the server is up."""

    def __init__(
        self, status: int, code: str, message: str, field: Optional[str] = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class Unavailable(ClientError):
    """The call got no answer it could use: ``why`` is the last failed
    attempt's kind (``overloaded``, ``unavailable``, ``server_error``,
    ``unreachable``, ``timeout``), ``breaker_open`` when the breaker refused
    the call's first attempt, or ``no_fallback`` when a decision's fallback
    cannot be known; ``attempts`` the requests made; ``message`` the last
    failure's."""

    def __init__(self, why: str, attempts: int, message: str) -> None:
        super().__init__(f"{why} after {attempts} attempt(s): {message}")
        self.why = why
        self.attempts = attempts
        self.message = message


class Decision(Dict[str, Any]):
    """A decision: the server's answer (``decided_by == "server"``, the
    API's ``Decision`` fields: ``decision_id``, ``outcome``, ``score``,
    ``rules``, ``degraded``...), or the scene's fallback decided by the
    client (``decided_by == "client"``: ``scene``, ``event_id``,
    ``outcome``, ``degraded`` true, ``degraded_why``, ``error``); both with
    ``attempts``. A ``dict``; its fields read as attributes too."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def outcome(self) -> str:
        return str(self["outcome"])

    @property
    def decided_by(self) -> str:
        return str(self["decided_by"])

    @property
    def attempts(self) -> int:
        return int(self["attempts"])

    @property
    def event_id(self) -> str:
        return str(self["event_id"])

    @property
    def degraded(self) -> bool:
        return bool(self.get("degraded", False))

    @property
    def degraded_why(self) -> Optional[str]:
        return self.get("degraded_why")

    @property
    def decision_id(self) -> Optional[str]:
        """The server's id of the decision; ``None`` for the client's."""
        return self.get("decision_id")


@dataclass(frozen=True)
class Failure:
    """A failed attempt: its ``kind`` (``overloaded``, ``unavailable``,
    ``server_error``, ``unreachable``, ``timeout``), a message, the HTTP
    status if any, and the server's ``Retry-After`` in ms if it gave one
    that is a number."""

    kind: str
    message: str
    status: Optional[int] = None
    retry_after_ms: Optional[float] = None


@dataclass(frozen=True)
class Transition:
    """A change of the breaker: ``from_`` (``from`` in :meth:`as_dict`),
    ``to``, the client's clock (ms) and the failure that caused it
    (``None`` for a move to ``half_open`` or ``closed``)."""

    from_: BreakerState
    to: BreakerState
    at_ms: float
    failure: Optional[Failure] = None

    def as_dict(self) -> Dict[str, Any]:
        return {
            "from": self.from_,
            "to": self.to,
            "at_ms": self.at_ms,
            "failure": None
            if self.failure is None
            else {"kind": self.failure.kind, "message": self.failure.message},
        }


# ---------------------------------------------------------------------------
# Transports


@dataclass
class Request:
    """One HTTP request as the policy makes it: ``path`` (from the
    server's root), headers, and the body as JSON (``json``, the object,
    and ``body``, its bytes)."""

    method: str
    path: str
    headers: Dict[str, str]
    json: Any = None
    body: Optional[bytes] = None


@dataclass
class Response:
    """An HTTP answer: status, headers (names in lower case), body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class TransportError(Exception):
    """An attempt that got no answer: ``kind`` is ``unreachable`` (no
    connection, or the connection lost before the answer) or ``timeout``
    (no answer within the attempt's timeout)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Transport(Protocol):
    """What :class:`Client` sends requests through: ``send`` returns the
    answer, whatever its status, or raises :class:`TransportError`."""

    def send(self, request: Request, timeout_ms: float) -> Response: ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    """:class:`Transport` for :class:`AsyncClient`."""

    async def send(self, request: Request, timeout_ms: float) -> Response: ...

    async def aclose(self) -> None: ...


def _ssl_context(ca: Optional[str]) -> ssl.SSLContext:
    # The system's roots unless `ca` names a PEM file (httpx's own default
    # would be certifi's bundle, not the system's).
    return ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()


def _httpx_timeout(timeout_ms: float) -> Any:
    import httpx

    return httpx.Timeout(max(timeout_ms, 0.0) / 1000.0)


def _transport_error(err: BaseException, url: str, timeout_ms: float) -> TransportError:
    import httpx

    if isinstance(err, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)):
        return TransportError("timeout", f"no answer within {round(timeout_ms)} ms")
    if isinstance(err, httpx.ConnectError):
        return TransportError("unreachable", f"cannot connect to {url}: {err}")
    return TransportError("unreachable", f"the connection to {url} was lost: {err}")


class HttpxTransport:
    """The real transport of :class:`Client`: an ``httpx.Client`` whose
    pool keeps connections open (HTTP/1.1 keep-alive), TLS checked
    against the system's roots or the PEM file ``ca``. Proxies of the
    environment are not used (``trust_env=False``)."""

    def __init__(self, url: str, ca: Optional[str] = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            verify=_ssl_context(ca) if self.url.startswith("https:") else True,
            trust_env=False,
            follow_redirects=False,
        )

    def send(self, request: Request, timeout_ms: float) -> Response:
        import httpx

        try:
            answer = self._http.request(
                request.method,
                request.path,
                headers=request.headers,
                content=request.body,
                timeout=_httpx_timeout(timeout_ms),
            )
        except (httpx.TransportError, OSError) as err:
            raise _transport_error(err, self.url, timeout_ms) from err
        return Response(
            answer.status_code,
            {k.lower(): v for k, v in answer.headers.items()},
            answer.content,
        )

    def close(self) -> None:
        self._http.close()


class AsyncHttpxTransport:
    """:class:`HttpxTransport` for asyncio (``httpx.AsyncClient``); an
    attempt's timeout bounds the whole exchange."""

    def __init__(self, url: str, ca: Optional[str] = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            verify=_ssl_context(ca) if self.url.startswith("https:") else True,
            trust_env=False,
            follow_redirects=False,
        )

    async def send(self, request: Request, timeout_ms: float) -> Response:
        import httpx

        try:
            answer = await asyncio.wait_for(
                self._http.request(
                    request.method,
                    request.path,
                    headers=request.headers,
                    content=request.body,
                    timeout=_httpx_timeout(timeout_ms),
                ),
                max(timeout_ms, 0.0) / 1000.0,
            )
        except (httpx.TransportError, OSError, asyncio.TimeoutError) as err:
            raise _transport_error(err, self.url, timeout_ms) from err
        return Response(
            answer.status_code,
            {k.lower(): v for k, v in answer.headers.items()},
            answer.content,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


# ---------------------------------------------------------------------------
# The policy: one core for both clients


@dataclass(frozen=True)
class _Send:
    request: Request
    timeout_ms: float


@dataclass(frozen=True)
class _Sleep:
    ms: float


_Effect = Union[_Send, _Sleep]
_Gen = Generator[_Effect, Any, Any]

_RETRY_AFTER = re.compile(r"^\s*(\d{1,9})\s*$")


def _retry_after_ms(headers: Mapping[str, str]) -> Optional[float]:
    """The header's whole seconds, in ms, when it is a number (an HTTP
    date is not looked at)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    m = _RETRY_AFTER.match(value)
    return float(m.group(1)) * 1000.0 if m else None


def _json_of(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _error_of(status: int, body: bytes) -> Tuple[str, str, Optional[str]]:
    """The API's error (`code`, `message`, `field`) of a refusal, or what
    can be said of a body that is not one."""
    doc = _json_of(body)
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        err = doc["error"]
        f = err.get("field")
        return (
            str(err.get("code", f"http_{status}")),
            str(err.get("message", "")),
            None if f is None else str(f),
        )
    text = body[:200].decode("utf-8", "replace").strip()
    return f"http_{status}", text or f"HTTP {status}", None


class _NotTheDocument(Exception):
    pass


def _object_with(*keys: str) -> Callable[[Any], Dict[str, Any]]:
    """A check of a 2xx body: a JSON object with these keys."""

    def check(doc: Any) -> Dict[str, Any]:
        if not isinstance(doc, dict) or any(k not in doc for k in keys):
            raise _NotTheDocument(
                "the answer is not the API's JSON"
                + (f" (an object with {', '.join(keys)})" if keys else "")
            )
        return doc

    return check


_DECISION = _object_with("decision_id", "outcome")
_RECORDED = _object_with("recorded", "repeated")
_SCENES = _object_with("scenes")


def _positive(name: str, value: Any, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0 or (integer and value != int(value)):
        raise ValueError(
            f"{name} must be a positive {'integer' if integer else 'number'}, not {value!r}"
        )
    return float(value)


def _options(value: Optional[Mapping[str, Any]], defaults: Dict[str, float], name: str) -> Dict[str, float]:
    out = dict(defaults)
    if value is None:
        return out
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of {', '.join(defaults)}")
    for k, v in value.items():
        if k not in defaults:
            raise ValueError(f"{name}: unknown option {k!r} (has {', '.join(defaults)})")
        out[k] = _positive(f"{name}.{k}", v)
    return out


class _Policy:
    """The behaviour of docs/clients.md, shared by both clients: the
    deadline, the attempts and their retries, the budget, the breaker, the
    scenes' copy and the fallback. Its calls are generators yielding
    :class:`_Send` and :class:`_Sleep` to a driver (sync or async), which
    sends back the :class:`Response` or :class:`TransportError`; they
    return the result or raise. Its state is guarded by a lock (a sync
    client may be shared by threads); no lock is held across an effect."""

    def __init__(
        self,
        url: str,
        token: Optional[str],
        deadline_ms: float,
        fallbacks: Optional[Mapping[str, str]],
        max_attempts: int,
        backoff_ms: float,
        backoff_max_ms: float,
        jitter: bool,
        retry_budget: Optional[Mapping[str, float]],
        breaker: Optional[Mapping[str, float]],
        scenes_ttl_ms: float,
        clock: Optional[Callable[[], float]],
        on_breaker: Optional[Callable[[Transition], None]],
    ) -> None:
        if not isinstance(url, str):
            raise TypeError("url must be a str")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must be http:// or https:// and an address, not {url!r}")
        if token is not None and (not isinstance(token, str) or not token or "\n" in token):
            raise ValueError("token must be a non-empty str of one line")
        self.url = url
        self.token = token
        self.deadline_ms = _positive("deadline_ms", deadline_ms)
        self.fallbacks: Dict[str, str] = {}
        for scene, choice in (fallbacks or {}).items():
            if not isinstance(scene, str) or not isinstance(choice, str) or not choice:
                raise TypeError("fallbacks must map scene names to 'open', 'closed' or an outcome")
            self.fallbacks[scene] = choice
        self.max_attempts = int(_positive("max_attempts", max_attempts, integer=True))
        self.backoff_ms = _positive("backoff_ms", backoff_ms)
        self.backoff_max_ms = _positive("backoff_max_ms", backoff_max_ms)
        self.jitter = bool(jitter)
        budget = _options(retry_budget, {"max_tokens": 10.0, "token_ratio": 0.1}, "retry_budget")
        self.max_tokens = budget["max_tokens"]
        self.token_ratio = budget["token_ratio"]
        brk = _options(breaker, {"failure_threshold": 5.0, "open_ms": 5000.0}, "breaker")
        self.failure_threshold = int(brk["failure_threshold"])
        self.open_ms = brk["open_ms"]
        self.scenes_ttl_ms = _positive("scenes_ttl_ms", scenes_ttl_ms)
        self.clock: Callable[[], float] = clock or (lambda: time.monotonic() * 1000.0)
        self.on_breaker = on_breaker
        self._random = random.Random()
        self._lock = threading.Lock()
        self._tokens = self.max_tokens
        self._state: BreakerState = "closed"
        self._failures = 0
        self._open_until = 0.0
        self._trial = False
        self._scenes: Optional[Dict[str, Any]] = None
        self._scenes_at = 0.0

    # -- the breaker and the budget ------------------------------------

    def _move(self, to: BreakerState, now: float, failure: Optional[Failure]) -> Transition:
        t = Transition(self._state, to, now, failure)
        self._state = to
        return t

    def _tell(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            if self.on_breaker is not None:
                try:
                    self.on_breaker(t)
                except Exception:  # a listener's fault is not the call's
                    logger.exception("cepheid.client: the breaker's listener failed")
            else:
                logger.warning(
                    "cepheid.client: breaker %s -> %s at %.0f ms%s",
                    t.from_,
                    t.to,
                    t.at_ms,
                    f" ({t.failure.kind}: {t.failure.message})" if t.failure else "",
                )

    def breaker_state(self) -> BreakerState:
        now = self.clock()
        with self._lock:
            moved = self._half_open_if_due(now)
            state = self._state
        self._tell(moved)
        return state

    def _half_open_if_due(self, now: float) -> List[Transition]:
        if self._state == "open" and now >= self._open_until:
            return [self._move("half_open", now, None)]
        return []

    def _admit(self, now: float) -> Tuple[bool, bool]:
        """(may the attempt go out, is it the half-open trial)."""
        with self._lock:
            moved = self._half_open_if_due(now)
            if self._state == "closed":
                ok, trial = True, False
            elif self._state == "half_open" and not self._trial:
                self._trial = True
                ok, trial = True, True
            else:
                ok, trial = False, False
        self._tell(moved)
        return ok, trial

    def _succeeded(self, now: float, trial: bool) -> None:
        moved = []
        with self._lock:
            self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)
            self._failures = 0
            if trial:
                self._trial = False
            if self._state == "half_open" and trial:
                moved.append(self._move("closed", now, None))
        self._tell(moved)

    def _failed(self, now: float, trial: bool, failure: Failure) -> bool:
        """Counts a failed attempt; True when it opened the breaker."""
        moved = []
        with self._lock:
            self._tokens = max(0.0, self._tokens - 1.0)
            if trial:
                self._trial = False
            if self._state == "half_open" and trial:
                moved.append(self._move("open", now, failure))
                self._open_until = now + self.open_ms
                self._failures = 0
            elif self._state == "closed":
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    moved.append(self._move("open", now, failure))
                    self._open_until = now + self.open_ms
                    self._failures = 0
        self._tell(moved)
        return bool(moved)

    def _abandoned(self, trial: bool) -> None:
        if trial:
            with self._lock:
                self._trial = False

    def _retry_allowed(self) -> bool:
        with self._lock:
            return self._tokens > self.max_tokens / 2.0

    def _backoff(self, n: int) -> float:
        wait = min(self.backoff_max_ms, self.backoff_ms * 2.0 ** (n - 1))
        if self.jitter:
            wait = self._random.uniform(wait / 2.0, wait)
        return wait

    # -- one attempt ----------------------------------------------------

    def _request(self, method: str, path: str, doc: Any = None) -> Request:
        headers = {"accept": "application/json", "user-agent": "cepheid-python-client"}
        if self.token is not None:
            headers["authorization"] = f"Bearer {self.token}"
        body = None
        if doc is not None:
            headers["content-type"] = "application/json"
            body = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
        return Request(method, path, headers, doc, body)

    def _attempt(
        self, request: Request, timeout_ms: float, check: Callable[[Any], Dict[str, Any]], trial: bool
    ) -> Generator[_Effect, Any, Union[Dict[str, Any], "_Failed"]]:
        """Sends once; returns the checked document or the failure (and
        whether it opened the breaker), counted by the breaker and the
        budget; raises ApiError on a refusal."""
        done = False
        try:
            answer = yield _Send(request, timeout_ms)
            now = self.clock()
            if isinstance(answer, TransportError):
                failure = Failure(answer.kind, answer.message)
            elif not isinstance(answer, Response):
                raise TypeError(f"a transport returned {type(answer).__name__}, not a Response")
            elif 200 <= answer.status < 300:
                try:
                    doc = check(_json_of(answer.body))
                except _NotTheDocument as err:
                    failure = Failure("server_error", f"HTTP {answer.status}: {err}", answer.status)
                else:
                    done = True
                    self._succeeded(now, trial)
                    return doc
            elif 400 <= answer.status < 500 and answer.status != 429:
                done = True
                self._succeeded(now, trial)
                raise ApiError(answer.status, *_error_of(answer.status, answer.body))
            else:
                code, message, _ = _error_of(answer.status, answer.body)
                kind = {429: "overloaded", 503: "unavailable"}.get(answer.status, "server_error")
                failure = Failure(
                    kind,
                    f"HTTP {answer.status} {code}: {message}",
                    answer.status,
                    _retry_after_ms(answer.headers),
                )
            done = True
            return _Failed(failure, self._failed(now, trial, failure))
        finally:
            if not done:
                self._abandoned(trial)

    def _attempts(
        self,
        make: Callable[[int], Request],
        deadline: float,
        check: Callable[[Any], Dict[str, Any]],
    ) -> Generator[_Effect, Any, Tuple[Optional[Dict[str, Any]], Optional[Failure], int]]:
        """Attempts with retries until an answer, a refusal (raised) or the
        end: (document, None, attempts) or (None, failure, attempts), the
        failure's kind `breaker_open` when the breaker refused the first."""
        attempts = 0
        last: Optional[Failure] = None
        while True:
            now = self.clock()
            left = deadline - now
            if left <= 0:
                return None, last or Failure("timeout", "the deadline passed before an attempt"), attempts
            ok, trial = self._admit(now)
            if not ok:
                return None, last or Failure("breaker_open", "the circuit breaker is open"), attempts
            attempts += 1
            got = yield from self._attempt(make(int(math.floor(left))), left, check, trial)
            if not isinstance(got, _Failed):
                return got, None, attempts
            last = got.failure
            if got.opened:  # the call stops there, with that failure
                return None, last, attempts
            if attempts >= self.max_attempts or not self._retry_allowed():
                return None, last, attempts
            wait = self._backoff(attempts)
            if last.retry_after_ms is not None:
                wait = max(wait, last.retry_after_ms)
            if not self.clock() + wait < deadline:
                return None, last, attempts
            yield _Sleep(wait)

    # -- the calls ------------------------------------------------------

    def _deadline(self, deadline_ms: Optional[float]) -> float:
        ms = self.deadline_ms if deadline_ms is None else _positive("deadline_ms", deadline_ms)
        return self.clock() + ms

    def _fetch_scenes(self, deadline: float) -> _Gen:
        """Within a decision: one attempt, no retry; a failure keeps the
        old copy, a refusal is raised."""
        now = self.clock()
        left = deadline - now
        if left <= 0:
            return
        ok, trial = self._admit(now)
        if not ok:
            return
        got = yield from self._attempt(self._request("GET", "/v1/scenes"), left, _SCENES, trial)
        if not isinstance(got, _Failed):
            self._keep_scenes(got)

    def _keep_scenes(self, doc: Dict[str, Any]) -> None:
        with self._lock:
            self._scenes = doc
            self._scenes_at = self.clock()

    def _scenes_stale(self) -> bool:
        with self._lock:
            return self._scenes is None or self.clock() - self._scenes_at >= self.scenes_ttl_ms

    def fallback_of(self, scene: str) -> Optional[str]:
        """The scene's fallback outcome, or None when it cannot be known."""
        choice = self.fallbacks.get(scene)
        with self._lock:
            doc = self._scenes
        published = None
        if doc is not None and isinstance(doc.get("scenes"), list):
            for s in doc["scenes"]:
                if isinstance(s, dict) and s.get("name") == scene:
                    published = s
                    break
        if choice is None:
            value = published.get("fallback") if published else None
            return value if isinstance(value, str) else None
        if choice in ("open", "closed"):
            outcomes = published.get("outcomes") if published else None
            if not isinstance(outcomes, list) or not outcomes:
                return None
            value = outcomes[0] if choice == "open" else outcomes[-1]
            return value if isinstance(value, str) else None
        return choice

    def decide(
        self,
        scene: str,
        event: Mapping[str, Any],
        event_id: Optional[str],
        deadline_ms: Optional[float],
        explain: bool,
        dry_run: bool,
    ) -> _Gen:
        if not isinstance(scene, str) or not scene:
            raise ValueError("scene must be a non-empty str")
        if not isinstance(event, Mapping):
            raise TypeError(f"event must be a mapping (a dict), not {type(event).__name__}")
        event_id = _event_id(event_id)
        deadline = self._deadline(deadline_ms)
        doc: Dict[str, Any] = {"scene": scene, "event_id": event_id, "event": dict(event)}
        if dry_run:
            doc["mode"] = "dry_run"
        if explain:
            doc["explain"] = True
        self._request("POST", "/v1/decide", doc)  # bad values raised before any attempt

        def make(left: int) -> Request:
            return self._request("POST", "/v1/decide", {**doc, "deadline_ms": left})

        if not dry_run and self._scenes_stale():
            yield from self._fetch_scenes(deadline)
        answer, failure, attempts = yield from self._attempts(make, deadline, _DECISION)
        if answer is not None:
            return Decision({**answer, "decided_by": "server", "attempts": attempts})
        assert failure is not None
        if dry_run:
            raise Unavailable(failure.kind, attempts, failure.message)
        outcome = self.fallback_of(scene)
        if outcome is None:
            raise Unavailable(
                "no_fallback",
                attempts,
                f"{failure.kind}: {failure.message}; and no fallback is known for scene "
                f"`{scene}` (name one in `fallbacks`)",
            )
        return Decision(
            {
                "decided_by": "client",
                "scene": scene,
                "event_id": event_id,
                "outcome": outcome,
                "degraded": True,
                "degraded_why": failure.kind,
                "attempts": attempts,
                "error": failure.message,
            }
        )

    def _plain(
        self, method: str, path: str, doc: Any, deadline_ms: Optional[float], check: Callable[[Any], Dict[str, Any]]
    ) -> _Gen:
        deadline = self._deadline(deadline_ms)
        request = self._request(method, path, doc)
        answer, failure, attempts = yield from self._attempts(lambda _left: request, deadline, check)
        if answer is None:
            assert failure is not None
            raise Unavailable(failure.kind, attempts, failure.message)
        return answer

    def record(self, events: Any, deadline_ms: Optional[float]) -> _Gen:
        if isinstance(events, Mapping) or not isinstance(events, (list, tuple)):
            raise TypeError("events must be a list of {'event_id': ..., 'event': {...}}")
        if not events:
            raise ValueError("events must not be empty")
        batch = []
        for i, item in enumerate(events):
            if not isinstance(item, Mapping) or not isinstance(item.get("event"), Mapping):
                raise TypeError(f"events[{i}] must be a dict with an `event` dict (and an `event_id`)")
            batch.append({"event_id": _event_id(item.get("event_id")), "event": dict(item["event"])})
        return (yield from self._plain("POST", "/v1/events", {"events": batch}, deadline_ms, _RECORDED))

    def change_list(
        self,
        name: str,
        add: Optional[Sequence[Any]],
        remove: Optional[Sequence[Any]],
        expires: Any,
        deadline_ms: Optional[float],
    ) -> _Gen:
        if not isinstance(name, str) or not name:
            raise ValueError("the list's name must be a non-empty str")
        body: Dict[str, Any] = {}
        for field, values in (("add", add), ("remove", remove)):
            if values is None:
                continue
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (list, tuple)):
                raise TypeError(f"{field} must be a list of values (str, int, float or bool)")
            for i, v in enumerate(values):
                if v is None or not isinstance(v, (str, int, float, bool)):
                    raise TypeError(f"{field}[{i}] must be a str, an int, a float or a bool")
            if not values:
                raise ValueError(f"{field} must not be empty (leave it out)")
            body[field] = list(values)
        if not body:
            raise ValueError("a list change needs add, remove or both")
        if expires is not None:
            if "add" not in body:
                raise ValueError("expires goes with add")
            if isinstance(expires, bool) or not isinstance(expires, (int, str)):
                raise TypeError("expires must be ms since the epoch (int) or an RFC 3339 time (str)")
            body["expires"] = expires
        path = "/v1/lists/" + quote(name, safe="")
        return (yield from self._plain("POST", path, body, deadline_ms, _object_with("entry")))

    def decision(self, decision_id: str, deadline_ms: Optional[float]) -> _Gen:
        if not isinstance(decision_id, str) or not decision_id:
            raise ValueError("decision_id must be a non-empty str")
        path = "/v1/decisions/" + quote(decision_id, safe="")
        return (yield from self._plain("GET", path, None, deadline_ms, _object_with("outcome")))

    def scenes(self, deadline_ms: Optional[float]) -> _Gen:
        doc = yield from self._plain("GET", "/v1/scenes", None, deadline_ms, _SCENES)
        self._keep_scenes(doc)
        return doc


@dataclass(frozen=True)
class _Failed:
    """A failed attempt; `opened` when it opened the breaker."""

    failure: Failure
    opened: bool


def _event_id(event_id: Optional[str]) -> str:
    if event_id is None:
        return str(uuid.uuid4())
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 256:
        raise ValueError("event_id must be a str of 1 to 256 characters")
    return event_id


# ---------------------------------------------------------------------------
# The clients


class _Options:
    def _policy(
        self,
        url: str,
        token: Optional[str],
        deadline_ms: float,
        fallbacks: Optional[Mapping[str, str]],
        max_attempts: int,
        backoff_ms: float,
        backoff_max_ms: float,
        jitter: bool,
        retry_budget: Optional[Mapping[str, float]],
        breaker: Optional[Mapping[str, float]],
        scenes_ttl_ms: float,
        clock: Optional[Callable[[], float]],
        on_breaker: Optional[Callable[[Transition], None]],
        ca: Optional[str],
    ) -> _Policy:
        if ca is not None and not isinstance(ca, str):
            raise TypeError("ca must be the path of a PEM file")
        return _Policy(
            url, token, deadline_ms, fallbacks, max_attempts, backoff_ms, backoff_max_ms,
            jitter, retry_budget, breaker, scenes_ttl_ms, clock, on_breaker,
        )

    _core: _Policy

    @property
    def breaker(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open``."""
        return self._core.breaker_state()

    @property
    def on_breaker(self) -> Optional[Callable[[Transition], None]]:
        """The listener given each :class:`Transition` of the breaker; when
        none is set, each is logged as a warning (logger ``cepheid.client``)."""
        return self._core.on_breaker

    @on_breaker.setter
    def on_breaker(self, listener: Optional[Callable[[Transition], None]]) -> None:
        self._core.on_breaker = listener


class Client(_Options):
    """The synchronous client of one ``cepheid serve`` (make one per
    server and share it: it keeps its connections, breaker and budget;
    threads may share it). Options as ``docs/clients.md``: ``token``,
    ``ca`` (a PEM file to trust for ``https://``), ``deadline_ms``,
    ``fallbacks`` (by scene: ``"open"``, ``"closed"`` or an outcome),
    ``max_attempts``, ``backoff_ms``, ``backoff_max_ms``, ``jitter``,
    ``retry_budget`` (``{"max_tokens": 10, "token_ratio": 0.1}``),
    ``breaker`` (``{"failure_threshold": 5, "open_ms": 5000}``),
    ``scenes_ttl_ms``, ``on_breaker`` (a listener of the breaker's
    changes); for tests ``clock`` (ms, monotonic), ``sleep`` (takes ms)
    and ``transport`` (:class:`Transport`)."""

    def __init__(
        self,
        url: str,
        *,
        token: Optional[str] = None,
        ca: Optional[str] = None,
        deadline_ms: float = 1000,
        fallbacks: Optional[Mapping[str, str]] = None,
        max_attempts: int = 3,
        backoff_ms: float = 20,
        backoff_max_ms: float = 500,
        jitter: bool = True,
        retry_budget: Optional[Mapping[str, float]] = None,
        breaker: Optional[Mapping[str, float]] = None,
        scenes_ttl_ms: float = 60000,
        on_breaker: Optional[Callable[[Transition], None]] = None,
        clock: Optional[Callable[[], float]] = None,
        sleep: Optional[Callable[[float], None]] = None,
        transport: Optional[Transport] = None,
    ) -> None:
        self._core = self._policy(
            url, token, deadline_ms, fallbacks, max_attempts, backoff_ms, backoff_max_ms,
            jitter, retry_budget, breaker, scenes_ttl_ms, clock, on_breaker, ca,
        )
        self._sleep: Callable[[float], None] = sleep or (lambda ms: time.sleep(ms / 1000.0))
        self._transport: Transport = transport or HttpxTransport(url, ca)

    def _run(self, gen: _Gen) -> Any:
        answer: Any = None
        try:
            while True:
                effect = gen.send(answer)
                if isinstance(effect, _Send):
                    try:
                        answer = self._transport.send(effect.request, effect.timeout_ms)
                    except TransportError as err:
                        answer = err
                else:
                    self._sleep(effect.ms)
                    answer = None
        except StopIteration as stop:
            return stop.value
        finally:
            gen.close()

    def decide(
        self,
        scene: str,
        event: Mapping[str, Any],
        event_id: Optional[str] = None,
        deadline_ms: Optional[float] = None,
        explain: bool = False,
    ) -> Decision:
        """The decision of ``scene`` on ``event`` (``POST /v1/decide``): the
        server's, or the scene's fallback decided by the client when the
        server does not answer in time, is unreachable, overloaded or open
        in the breaker. Raises :class:`ApiError` (a refusal) or
        :class:`Unavailable` (``no_fallback``)."""
        return self._run(self._core.decide(scene, event, event_id, deadline_ms, explain, False))

    def dry_run(
        self,
        scene: str,
        event: Mapping[str, Any],
        event_id: Optional[str] = None,
        deadline_ms: Optional[float] = None,
        explain: bool = False,
    ) -> Decision:
        """The decision the server would make, changing nothing; never a
        fallback (its failure raises :class:`Unavailable`)."""
        return self._run(self._core.decide(scene, event, event_id, deadline_ms, explain, True))

    def record(self, events: Sequence[Mapping[str, Any]], deadline_ms: Optional[float] = None) -> Dict[str, Any]:
        """Events that need no decision (``POST /v1/events``), each
        ``{"event_id": ..., "event": {...}}`` (an id is made for one
        without): the server's counts (``recorded``, ``repeated``,
        ``rules_version``)."""
        return self._run(self._core.record(events, deadline_ms))

    def change_list(
        self,
        name: str,
        add: Optional[Sequence[Any]] = None,
        remove: Optional[Sequence[Any]] = None,
        expires: Any = None,
        deadline_ms: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Changes a list the rules declare (``POST /v1/lists/{list}``):
        ``remove`` first, then ``add`` (until ``expires``: ms since the
        epoch or an RFC 3339 time; else the list's ``for`` from now).
        Answered once the change is logged: the server's ``ListChanged``
        (``added``, ``removed``, ``expires``, ``entry``). Retried as the
        other calls are (a change given twice changes nothing more)."""
        return self._run(self._core.change_list(name, add, remove, expires, deadline_ms))

    def decision(self, decision_id: str, deadline_ms: Optional[float] = None) -> Dict[str, Any]:
        """A decision as it was answered (``GET /v1/decisions/{id}``)."""
        return self._run(self._core.decision(decision_id, deadline_ms))

    def scenes(self, deadline_ms: Optional[float] = None) -> Dict[str, Any]:
        """The scenes (``GET /v1/scenes``); the client's copy is renewed."""
        return self._run(self._core.scenes(deadline_ms))

    def close(self) -> None:
        """Closes the connections."""
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncClient(_Options):
    """:class:`Client` for asyncio: the same options (``sleep`` is then a
    coroutine function taking ms, ``transport`` an
    :class:`AsyncTransport`) and the same calls, awaited."""

    def __init__(
        self,
        url: str,
        *,
        token: Optional[str] = None,
        ca: Optional[str] = None,
        deadline_ms: float = 1000,
        fallbacks: Optional[Mapping[str, str]] = None,
        max_attempts: int = 3,
        backoff_ms: float = 20,
        backoff_max_ms: float = 500,
        jitter: bool = True,
        retry_budget: Optional[Mapping[str, float]] = None,
        breaker: Optional[Mapping[str, float]] = None,
        scenes_ttl_ms: float = 60000,
        on_breaker: Optional[Callable[[Transition], None]] = None,
        clock: Optional[Callable[[], float]] = None,
        sleep: Optional[Callable[[float], Awaitable[None]]] = None,
        transport: Optional[AsyncTransport] = None,
    ) -> None:
        self._core = self._policy(
            url, token, deadline_ms, fallbacks, max_attempts, backoff_ms, backoff_max_ms,
            jitter, retry_budget, breaker, scenes_ttl_ms, clock, on_breaker, ca,
        )
        self._sleep: Callable[[float], Awaitable[None]] = sleep or (lambda ms: asyncio.sleep(ms / 1000.0))
        self._transport: AsyncTransport = transport or AsyncHttpxTransport(url, ca)

    async def _run(self, gen: _Gen) -> Any:
        answer: Any = None
        try:
            while True:
                effect = gen.send(answer)
                if isinstance(effect, _Send):
                    try:
                        answer = await self._transport.send(effect.request, effect.timeout_ms)
                    except TransportError as err:
                        answer = err
                else:
                    await self._sleep(effect.ms)
                    answer = None
        except StopIteration as stop:
            return stop.value
        finally:
            gen.close()  # a cancelled call gives its half-open trial back

    async def decide(
        self,
        scene: str,
        event: Mapping[str, Any],
        event_id: Optional[str] = None,
        deadline_ms: Optional[float] = None,
        explain: bool = False,
    ) -> Decision:
        """As :meth:`Client.decide`."""
        return await self._run(self._core.decide(scene, event, event_id, deadline_ms, explain, False))

    async def dry_run(
        self,
        scene: str,
        event: Mapping[str, Any],
        event_id: Optional[str] = None,
        deadline_ms: Optional[float] = None,
        explain: bool = False,
    ) -> Decision:
        """As :meth:`Client.dry_run`."""
        return await self._run(self._core.decide(scene, event, event_id, deadline_ms, explain, True))

    async def record(self, events: Sequence[Mapping[str, Any]], deadline_ms: Optional[float] = None) -> Dict[str, Any]:
        """As :meth:`Client.record`."""
        return await self._run(self._core.record(events, deadline_ms))

    async def change_list(
        self,
        name: str,
        add: Optional[Sequence[Any]] = None,
        remove: Optional[Sequence[Any]] = None,
        expires: Any = None,
        deadline_ms: Optional[float] = None,
    ) -> Dict[str, Any]:
        """As :meth:`Client.change_list`."""
        return await self._run(self._core.change_list(name, add, remove, expires, deadline_ms))

    async def decision(self, decision_id: str, deadline_ms: Optional[float] = None) -> Dict[str, Any]:
        """As :meth:`Client.decision`."""
        return await self._run(self._core.decision(decision_id, deadline_ms))

    async def scenes(self, deadline_ms: Optional[float] = None) -> Dict[str, Any]:
        """As :meth:`Client.scenes`."""
        return await self._run(self._core.scenes(deadline_ms))

    async def aclose(self) -> None:
        """Closes the connections."""
        await self._transport.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
