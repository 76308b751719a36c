"""The cases of clients/cases.json (docs/clients.md, "The cases") run on a
client through a scripted transport, an injected clock and sleep: what the
client tests share (test_client_cases.py, test_client.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Optional

from cepheid.client import (
    ApiError,
    AsyncClient,
    Client,
    Request,
    Response,
    Transition,
    TransportError,
    Unavailable,
)

from support import ROOT

CASES_FILE = ROOT / "clients" / "cases.json"


def load_cases() -> Dict[str, Any]:
    with open(CASES_FILE, encoding="utf-8") as f:
        return json.load(f)


class Clock:
    """The client's clock: starts at 0, moved by the transport and the
    sleeps (and by a step's `at_ms`)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Script:
    """A transport that checks each request against the next exchange
    expected and answers with its reply or fault, moving the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.queue: List[Dict[str, Any]] = []
        self.sent: List[Request] = []
        self.timeouts: List[float] = []

    def expect(self, exchanges: List[Dict[str, Any]]) -> None:
        self.queue = list(exchanges)

    def send(self, request: Request, timeout_ms: float) -> Response:
        self.sent.append(request)
        self.timeouts.append(timeout_ms)
        if not self.queue:
            raise AssertionError(
                f"a request the case does not expect: {request.method} {request.path} {request.json}"
            )
        exchange = self.queue.pop(0)
        expect = exchange["expect"]
        said = f"{request.method} {request.path} {request.json}"
        if (request.method, request.path) != (expect["method"], expect["path"]):
            raise AssertionError(f"expected {expect['method']} {expect['path']}, the client sent {said}")
        headers = {k.lower(): v for k, v in request.headers.items()}
        for name, value in expect.get("headers", {}).items():
            if headers.get(name.lower()) != value:
                raise AssertionError(f"header {name}: expected {value!r}, sent {headers.get(name.lower())!r} ({said})")
        if "body" in expect:
            # the body sent is the bytes, as the server reads them
            body = json.loads(request.body.decode("utf-8")) if request.body else None
            if not isinstance(body, dict):
                raise AssertionError(f"expected a JSON object as the body, sent {request.body!r}")
            for name, value in expect["body"].items():
                if name not in body or body[name] != value:
                    raise AssertionError(
                        f"body field {name}: expected {value!r}, sent {body.get(name, '(none)')!r} ({said})"
                    )
        reply = exchange["reply"]
        takes = float(exchange.get("takes_ms", 0))
        fault = reply.get("fault")
        if fault == "timeout" or (fault is None and takes >= timeout_ms):
            self.clock.now += timeout_ms
            raise TransportError("timeout", f"no answer within {int(timeout_ms)} ms")
        if fault in ("refused", "reset"):
            self.clock.now += takes
            raise TransportError(
                "unreachable",
                "connection refused" if fault == "refused" else "connection reset before the answer",
            )
        if fault is not None:
            raise AssertionError(f"unknown fault {fault!r}")
        self.clock.now += takes
        if "raw" in reply:
            body_bytes = reply["raw"].encode("utf-8")
        elif "body" in reply:
            body_bytes = json.dumps(reply["body"]).encode("utf-8")
        else:
            body_bytes = b""
        headers_out = {k.lower(): str(v) for k, v in reply.get("headers", {}).items()}
        return Response(int(reply["status"]), headers_out, body_bytes)

    def close(self) -> None:
        pass


class AsyncScript:
    """`Script` for the AsyncClient."""

    def __init__(self, script: Script) -> None:
        self.script = script

    async def send(self, request: Request, timeout_ms: float) -> Response:
        await asyncio.sleep(0)  # a real suspension point, as a real send has
        return self.script.send(request, timeout_ms)

    async def aclose(self) -> None:
        pass


def options(case: Dict[str, Any], defaults: Dict[str, Any]) -> Dict[str, Any]:
    opts = json.loads(json.dumps(defaults))
    for k, v in case.get("config", {}).items():
        if isinstance(v, dict) and isinstance(opts.get(k), dict):
            opts[k] = {**opts[k], **v}
        else:
            opts[k] = v
    return opts


class Harness:
    """One client (sync or async) on the scripted transport, stepping
    through a case."""

    def __init__(self, opts: Dict[str, Any], asynchronous: bool) -> None:
        self.clock = Clock()
        self.script = Script(self.clock)
        self.sleeps: List[float] = []
        self.transitions: List[Transition] = []
        self.asynchronous = asynchronous
        opts = dict(opts)
        url = opts.pop("url")
        if asynchronous:

            async def sleep(ms: float) -> None:
                self.sleeps.append(ms)
                self.clock.now += ms

            self.client: Any = AsyncClient(
                url,
                clock=self.clock,
                sleep=sleep,
                transport=AsyncScript(self.script),
                on_breaker=self.transitions.append,
                **opts,
            )
        else:

            def sleep_sync(ms: float) -> None:
                self.sleeps.append(ms)
                self.clock.now += ms

            self.client = Client(
                url,
                clock=self.clock,
                sleep=sleep_sync,
                transport=self.script,
                on_breaker=self.transitions.append,
                **opts,
            )

    def call(self, call: Dict[str, Any]) -> Any:
        op = call["op"]
        c = self.client
        if op in ("decide", "dry_run"):
            kw = {k: call[k] for k in ("event_id", "deadline_ms", "explain") if k in call}
            aw = getattr(c, op)(call["scene"], call["event"], **kw)
        elif op == "record":
            kw = {k: call[k] for k in ("deadline_ms",) if k in call}
            aw = c.record(call["events"], **kw)
        elif op == "decision":
            aw = c.decision(call["decision_id"])
        elif op == "scenes":
            aw = c.scenes()
        else:
            raise AssertionError(f"unknown op {op!r}")
        if self.asynchronous:
            return _run(aw)
        return aw


def _run(aw: Any) -> Any:
    return asyncio.run(_await(aw))


async def _await(aw: Any) -> Any:
    return await aw


def run_case(test: Any, case: Dict[str, Any], defaults: Dict[str, Any], asynchronous: bool) -> None:
    """Runs one case, failing `test` (a unittest.TestCase) where the client
    differs from it."""
    h = Harness(options(case, defaults), asynchronous)
    for n, step in enumerate(case["steps"], 1):
        where = f"case {case['name']!r}, step {n} ({step['call']['op']})"
        if "at_ms" in step:
            test.assertLessEqual(h.clock.now, step["at_ms"], f"{where}: the clock is past the step's at_ms")
            h.clock.now = float(step["at_ms"])
        h.script.expect(step["exchanges"])
        del h.sleeps[:]
        del h.transitions[:]
        got: Any = None
        raised: Optional[BaseException] = None
        try:
            got = h.call(step["call"])
        except (ApiError, Unavailable) as err:
            raised = err
        test.assertEqual(
            h.script.queue, [], f"{where}: fewer requests than the case expects ({len(h.script.queue)} left)"
        )
        if "error" in step:
            want = step["error"]
            test.assertIsNotNone(raised, f"{where}: expected an error {want}, got the result {got}")
            if want["type"] == "api":
                test.assertIsInstance(raised, ApiError, f"{where}: {raised!r}")
                test.assertEqual(raised.status, want["status"], where)
                test.assertEqual(raised.code, want["code"], where)
            elif want["type"] == "unavailable":
                test.assertIsInstance(raised, Unavailable, f"{where}: {raised!r}")
                test.assertEqual(raised.why, want["why"], f"{where}: {raised}")
                test.assertEqual(raised.attempts, want["attempts"], f"{where}: {raised}")
            else:
                raise AssertionError(f"{where}: unknown error type {want['type']!r}")
        else:
            test.assertIsNone(raised, f"{where}: raised {raised!r}, expected the result {step.get('result')}")
            for k, v in step.get("result", {}).items():
                test.assertIn(k, got, f"{where}: the result has no {k}: {got}")
                test.assertEqual(got[k], v, f"{where}: result field {k} in {dict(got)}")
        test.assertEqual(h.sleeps, [float(x) for x in step.get("sleeps_ms", [])], f"{where}: the waits")
        test.assertEqual(
            [[t.from_, t.to] for t in h.transitions], step.get("transitions", []), f"{where}: the breaker's changes"
        )
        test.assertEqual(h.client.breaker, step.get("breaker", "closed"), f"{where}: the breaker's state")
        if "now_ms" in step:
            test.assertEqual(h.clock.now, step["now_ms"], f"{where}: the clock after the call")
