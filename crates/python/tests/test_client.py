"""`cepheid.client` beyond the shared cases (clients/cases.json, run by
test_client_cases.py): what is Python's own (the result's two readings,
logging, the listener, bad input refused before any request, jitter, the
made event id kept across retries, the half-open trial under asyncio,
the real transport's kinds of failure). No server: a scripted transport,
or a port nothing listens on."""

import asyncio
import json
import logging
import socket
import unittest

from cepheid.client import (
    ApiError,
    AsyncClient,
    Client,
    Decision,
    Response,
    Transition,
    TransportError,
    Unavailable,
)

from client_script import AsyncScript, Clock, Script

SCENES = {
    "rules_version": 1,
    "retention_ms": 86400000,
    "scenes": [
        {"name": "payment", "outcomes": ["approve", "review", "decline"], "default": "approve",
         "fallback": "review", "late": "review", "deadline_ms": 200, "hit": "all", "rules": []}
    ],
}


def decision(n, event_id="e1"):
    return {"decision_id": f"d-{n}", "scene": "payment", "event_id": event_id, "outcome": "approve",
            "score": 0, "rules": [], "shadow": [], "degraded": False, "rules_version": 1,
            "mode": "decide", "stamp": 1, "elapsed_us": 1}


def ex(method, path, status=200, body=None, fault=None, headers=None):
    reply = {"fault": fault} if fault else {"status": status, "body": body}
    if headers:
        reply["headers"] = headers
    return {"expect": {"method": method, "path": path}, "reply": reply}


def client(**kw):
    clock = Clock()
    script = Script(clock)
    sleeps = []

    def sleep(ms):
        sleeps.append(ms)
        clock.now += ms

    kw.setdefault("jitter", False)
    c = Client("http://127.0.0.1:8870", clock=clock, sleep=sleep, transport=script, **kw)
    return c, script, sleeps


class Results(unittest.TestCase):
    def test_a_decision_reads_as_a_dict_and_as_attributes(self):
        c, script, _ = client()
        script.expect([ex("GET", "/v1/scenes", body=SCENES), ex("POST", "/v1/decide", body=decision(1))])
        r = c.decide("payment", {"amount": 1}, event_id="e1")
        self.assertIsInstance(r, Decision)
        self.assertIsInstance(r, dict)
        self.assertEqual((r["outcome"], r.outcome, r.decided_by, r.attempts), ("approve", "approve", "server", 1))
        self.assertEqual((r.decision_id, r.event_id, r.degraded, r.degraded_why), ("d-1", "e1", False, None))
        self.assertEqual(r.rules_version, 1)  # any field, as an attribute
        with self.assertRaises(AttributeError):
            r.nothing
        self.assertEqual(json.loads(json.dumps(r))["decided_by"], "server")

    def test_the_event_id_made_by_the_client_is_kept_across_retries_and_named(self):
        c, script, _ = client(fallbacks={"payment": "decline"})
        script.expect([ex("GET", "/v1/scenes", body=SCENES)] + [ex("POST", "/v1/decide", fault="refused")] * 3)
        r = c.decide("payment", {"amount": 1})
        ids = {req.json["event_id"] for req in script.sent[1:]}
        self.assertEqual(len(ids), 1)
        self.assertEqual(r.event_id, ids.pop())
        self.assertEqual((r.decided_by, r.outcome, r.degraded_why), ("client", "decline", "unreachable"))
        self.assertTrue(r["error"])

    def test_errors_carry_what_the_server_said(self):
        c, script, _ = client()
        script.expect([ex("GET", "/v1/scenes", body=SCENES),
                       ex("POST", "/v1/decide", 400, {"error": {"code": "invalid_request",
                                                                  "message": "`amount` is wrong", "field": "amount"}})])
        with self.assertRaises(ApiError) as e:
            c.decide("payment", {"amount": 1})
        self.assertEqual((e.exception.status, e.exception.code, e.exception.field), (400, "invalid_request", "amount"))
        self.assertIn("`amount` is wrong", str(e.exception))
        # a refusal whose body is not the API's error still says its status
        script.expect([ex("POST", "/v1/decide", 418, None)])
        script.queue[0]["reply"] = {"status": 418, "raw": "<html>teapot</html>"}
        with self.assertRaises(ApiError) as e:
            c.decide("payment", {"amount": 1})
        self.assertEqual((e.exception.status, e.exception.code, e.exception.field), (418, "http_418", None))


class BadInput(unittest.TestCase):
    """Refused before any request, as TypeError or ValueError, never a crash."""

    def test_bad_calls(self):
        c, script, _ = client()
        script.expect([])
        bad = [
            lambda: c.decide("", {}),
            lambda: c.decide(None, {}),
            lambda: c.decide("payment", ["not", "a", "dict"]),
            lambda: c.decide("payment", {"x": float("nan")}),
            lambda: c.decide("payment", {"x": {1, 2}}),
            lambda: c.decide("payment", {}, event_id=""),
            lambda: c.decide("payment", {}, event_id="x" * 257),
            lambda: c.decide("payment", {}, deadline_ms=0),
            lambda: c.decide("payment", {}, deadline_ms=-5),
            lambda: c.decide("payment", {}, deadline_ms="soon"),
            lambda: c.decide("payment", {}, deadline_ms=float("inf")),
            lambda: c.dry_run("payment", 7),
            lambda: c.record([]),
            lambda: c.record({"event_id": "a", "event": {}}),
            lambda: c.record([{"event_id": "a"}]),
            lambda: c.record(["x"]),
            lambda: c.decision(""),
            lambda: c.decision(42),
        ]
        for i, call in enumerate(bad):
            with self.subTest(i):
                with self.assertRaises((TypeError, ValueError)):
                    call()
        self.assertEqual(script.sent, [])

    def test_bad_options(self):
        bad = [
            dict(url="ftp://x"),
            dict(url="127.0.0.1:8870"),
            dict(url=None),
            dict(max_attempts=0),
            dict(max_attempts=1.5),
            dict(deadline_ms=0),
            dict(backoff_ms=-1),
            dict(retry_budget={"max_tokens": 10, "tokens": 1}),
            dict(retry_budget=[1, 2]),
            dict(breaker={"failure_threshold": 0, "open_ms": 10}),
            dict(fallbacks={"payment": 1}),
            dict(token=""),
            dict(token="a\nb"),
            dict(ca=3),
        ]
        for kw in bad:
            with self.subTest(kw):
                url = kw.pop("url", "http://127.0.0.1:8870")
                with self.assertRaises((TypeError, ValueError)):
                    Client(url, transport=Script(Clock()), **kw)

    def test_a_paths_id_is_quoted(self):
        c, script, _ = client()
        script.expect([ex("GET", "/v1/decisions/a%2Fb%3Fc", body=decision(1))])
        self.assertEqual(c.decision("a/b?c")["decision_id"], "d-1")

    def test_a_transport_that_answers_nonsense_is_a_type_error_not_a_hang(self):
        class Nonsense:
            def send(self, request, timeout_ms):
                return "not a response"

            def close(self):
                pass

        c = Client("http://127.0.0.1:8870", transport=Nonsense(), fallbacks={"payment": "review"})
        with self.assertRaises(TypeError):
            c.dry_run("payment", {})
        self.assertEqual(c.breaker, "closed")


class Jitter(unittest.TestCase):
    def test_each_wait_is_drawn_from_half_to_whole(self):
        c, script, sleeps = client(jitter=True, max_attempts=4, backoff_ms=100, backoff_max_ms=150,
                                   deadline_ms=10000, breaker={"failure_threshold": 100, "open_ms": 1},
                                   retry_budget={"max_tokens": 1000, "token_ratio": 1})
        for _ in range(20):
            script.expect([ex("POST", "/v1/decide", fault="refused")] * 4)
            with self.assertRaises(Unavailable):
                c.dry_run("payment", {})
        self.assertEqual(len(sleeps), 60)
        for n, wait in enumerate(sleeps):
            full = [100, 150, 150][n % 3]
            self.assertTrue(full / 2 <= wait <= full, (n, wait))
        self.assertGreater(len(set(sleeps)), 3, "the waits are drawn, not fixed")


class Breaker(unittest.TestCase):
    def test_with_no_listener_each_change_is_a_warning_of_cepheid_client(self):
        c, script, _ = client(max_attempts=1, breaker={"failure_threshold": 1, "open_ms": 100},
                              fallbacks={"payment": "review"})
        script.expect([ex("GET", "/v1/scenes", fault="refused"), ex("POST", "/v1/decide", fault="refused")])
        with self.assertLogs("cepheid.client", logging.WARNING) as logs:
            r = c.decide("payment", {})
        self.assertEqual(r.degraded_why, "breaker_open")
        self.assertEqual(len(logs.records), 1, logs.output)
        self.assertIn("closed -> open", logs.output[0])
        self.assertIn("unreachable", logs.output[0])
        script.expect([])
        script.clock.now += 100
        with self.assertLogs("cepheid.client", logging.WARNING) as logs:
            self.assertEqual(c.breaker, "half_open")
        self.assertIn("open -> half_open", logs.output[0])

    def test_a_listener_gets_each_change_and_its_fault_is_not_the_calls(self):
        seen = []

        def listener(t):
            seen.append(t)
            raise RuntimeError("a listener that fails")

        c, script, _ = client(max_attempts=1, breaker={"failure_threshold": 1, "open_ms": 100},
                              fallbacks={"payment": "review"}, on_breaker=listener)
        script.expect([ex("GET", "/v1/scenes", body=SCENES),
                       ex("POST", "/v1/decide", 503, {"error": {"code": "unavailable", "message": "x"}})])
        with self.assertLogs("cepheid.client", logging.ERROR):
            r = c.decide("payment", {})
        self.assertEqual((r.outcome, r.degraded_why), ("review", "unavailable"))
        self.assertEqual(len(seen), 1)
        t = seen[0]
        self.assertIsInstance(t, Transition)
        self.assertEqual((t.from_, t.to, t.at_ms, t.failure.kind, t.failure.status), ("closed", "open", 0, "unavailable", 503))
        self.assertEqual(t.as_dict()["from"], "closed")
        c.on_breaker = None
        self.assertIsNone(c.on_breaker)

    def test_while_the_half_open_trial_is_in_flight_other_calls_are_refused(self):
        clock = Clock()
        script = Script(clock)
        release = None
        entered = None

        class Held(AsyncScript):
            async def send(self, request, timeout_ms):
                if request.json and request.json.get("event_id") == "trial":
                    entered.set()
                    await release.wait()
                return await super().send(request, timeout_ms)

        async def sleep(ms):
            clock.now += ms

        async def run():
            nonlocal release, entered
            release = asyncio.Event()
            entered = asyncio.Event()
            seen = []
            c = AsyncClient("http://127.0.0.1:8870", clock=clock, sleep=sleep, transport=Held(script),
                            max_attempts=1, jitter=False, breaker={"failure_threshold": 1, "open_ms": 50},
                            fallbacks={"payment": "review"}, on_breaker=seen.append)
            script.expect([ex("GET", "/v1/scenes", body=SCENES),
                           ex("POST", "/v1/decide", fault="refused")])
            first = await c.decide("payment", {}, event_id="e0")
            self.assertEqual((first.degraded_why, c.breaker), ("unreachable", "open"))
            clock.now = 50
            script.expect([ex("POST", "/v1/decide", body=decision(1, "trial"))])
            trial = asyncio.ensure_future(c.decide("payment", {}, event_id="trial"))
            await asyncio.wait_for(entered.wait(), 60)  # a hang guard
            self.assertEqual(c.breaker, "half_open")
            other = await c.decide("payment", {}, event_id="other")
            self.assertEqual((other.decided_by, other.degraded_why, other.attempts), ("client", "breaker_open", 0))
            with self.assertRaises(Unavailable) as e:
                await c.record([{"event_id": "r", "event": {}}])
            self.assertEqual(e.exception.why, "breaker_open")
            release.set()
            done = await trial
            self.assertEqual((done.decided_by, c.breaker), ("server", "closed"))
            self.assertEqual([(t.from_, t.to) for t in seen],
                             [("closed", "open"), ("open", "half_open"), ("half_open", "closed")])
            self.assertEqual(script.queue, [])

        asyncio.run(run())

    def test_a_cancelled_trial_gives_the_trial_back(self):
        clock = Clock()
        script = Script(clock)

        class Hangs(AsyncScript):
            async def send(self, request, timeout_ms):
                if request.json and request.json.get("event_id") == "hang":
                    hanging.set()
                    await asyncio.Event().wait()
                return await super().send(request, timeout_ms)

        async def sleep(ms):
            clock.now += ms

        hanging = None

        async def run():
            nonlocal hanging
            hanging = asyncio.Event()
            c = AsyncClient("http://127.0.0.1:8870", clock=clock, sleep=sleep, transport=Hangs(script),
                            max_attempts=1, breaker={"failure_threshold": 1, "open_ms": 50},
                            fallbacks={"payment": "review"}, on_breaker=lambda t: None)
            script.expect([ex("GET", "/v1/scenes", body=SCENES), ex("POST", "/v1/decide", fault="refused")])
            await c.decide("payment", {}, event_id="e0")
            clock.now = 50
            script.expect([ex("POST", "/v1/decide", body=decision(1, "hang"))])
            hung = asyncio.ensure_future(c.decide("payment", {}, event_id="hang"))
            await asyncio.wait_for(hanging.wait(), 60)  # a hang guard
            hung.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await hung
            script.expect([ex("POST", "/v1/decide", body=decision(2, "next"))])
            r = await c.decide("payment", {}, event_id="next")
            self.assertEqual((r.decided_by, c.breaker), ("server", "closed"))

        asyncio.run(run())


class RealTransport(unittest.TestCase):
    """The httpx transports' failures, as the contract's kinds."""

    def free_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def test_no_server_is_unreachable_sync_and_async(self):
        url = f"http://127.0.0.1:{self.free_port()}"
        with Client(url, max_attempts=2, backoff_ms=1, fallbacks={"payment": "decline"}) as c:
            r = c.decide("payment", {"amount": 1})
            self.assertEqual((r.decided_by, r.outcome, r.degraded_why, r.attempts), ("client", "decline", "unreachable", 2))

        async def run():
            async with AsyncClient(url, max_attempts=2, backoff_ms=1) as c:
                with self.assertRaises(Unavailable) as e:
                    await c.dry_run("payment", {"amount": 1})
                self.assertEqual((e.exception.why, e.exception.attempts), ("unreachable", 2))

        asyncio.run(run())

    def test_a_listener_that_never_answers_is_a_timeout(self):
        # a socket that accepts (the kernel's backlog) and never answers
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            url = f"http://127.0.0.1:{s.getsockname()[1]}"
            with Client(url, deadline_ms=200, fallbacks={"payment": "review"}) as c:
                with self.assertRaises(Unavailable) as e:
                    c.dry_run("payment", {})
                self.assertEqual((e.exception.why, e.exception.attempts), ("timeout", 1))
                # the scenes' fetch took the whole deadline: no time is left
                # for the decision, which is not sent (attempts 0)
                r = c.decide("payment", {})
                self.assertEqual((r.decided_by, r.outcome, r.degraded_why, r.attempts), ("client", "review", "timeout", 0))

            async def run():
                async with AsyncClient(url, deadline_ms=200) as c:
                    with self.assertRaises(Unavailable) as e:
                        await c.scenes()
                    self.assertEqual(e.exception.why, "timeout")

            asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
