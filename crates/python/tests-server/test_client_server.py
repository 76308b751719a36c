"""`cepheid.client` against a real `cepheid serve` (issue 64): the
decision, dry run, events and lookup; the faults by counts, not by time
(the server stopped for the whole call, killed, overloaded); retries that
never make two decisions for one event id; one connection for many calls;
a bearer token and TLS. Each test runs on the sync `Client` and on the
`AsyncClient` (`SyncServer...`, `AsyncServer...`).

The binary is `$CEPHEID_BIN` (it must be set: the tests fail, saying so,
without it). These tests are apart from the package's own
(`crates/python/tests/`, which need no server): the CLI's harness runs
them (`tests/client_python.rs`: `.ci/test-python` with this folder), or
by hand::

    CEPHEID_BIN=/path/to/cepheid python -m pytest crates/python/tests-server
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

from cepheid.client import ApiError, AsyncClient, Client, Unavailable

ROOT = Path(__file__).resolve().parents[3]
RISK = ROOT / "patterns" / "risk"
HANG = 120.0
"""A guard against a hang, never a measure: seconds."""


def binary() -> str:
    path = os.environ.get("CEPHEID_BIN")
    if not path:
        raise AssertionError(
            "CEPHEID_BIN is not set: these tests run a real `cepheid serve`; "
            "set CEPHEID_BIN to the path of a built `cepheid` binary"
        )
    if not os.access(path, os.X_OK):
        raise AssertionError(f"CEPHEID_BIN={path} is not an executable file")
    return path


def payment(n: int, card: str = "c1", amount: int = 120) -> Dict[str, Any]:
    return {"type": "payment", "payment_id": f"p{n}", "card": card, "device": "d1", "amount": amount}



def all_stopped(pid: int) -> bool:
    """Whether every thread of `pid` is stopped (state T in /proc)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            continue  # the thread has exited
        if not stat[stat.rindex(")") + 2 :].startswith("T"):
            return False
    return True

class Server:
    """A `cepheid serve patterns/risk` on a free port of 127.0.0.1, its
    state in a temporary folder."""

    def __init__(self, *args: str, token: Optional[str] = None, ca: Optional[str] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="cepheid-client-")
        self.token = token
        self.ca = ca
        self.err = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen(
            [binary(), "serve", str(RISK), "--state", os.path.join(self.dir, "state"),
             "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=self.err, cwd=ROOT,
        )
        line = self._first_line()
        m = re.search(r"listening on (https?://\S+)", line)
        if not m:
            self.stop()
            raise AssertionError(f"cepheid serve said {line!r}, not where it listens:\n{self.stderr()}")
        self.url = m.group(1).rstrip("/")
        guard = time.monotonic() + HANG
        while True:
            try:
                if self.get("/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > guard:
                self.stop()
                raise AssertionError(f"cepheid serve never got ready:\n{self.stderr()}")
            time.sleep(0.05)

    def _first_line(self) -> str:
        got: List[bytes] = []
        t = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(HANG)
        if not got:
            self.stop()
            raise AssertionError(f"cepheid serve printed nothing:\n{self.stderr()}")
        return got[0].decode("utf-8", "replace")

    def stderr(self) -> str:
        self.err.flush()
        with open(os.path.join(self.dir, "stderr"), "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def get(self, path: str) -> tuple:
        """A GET on a connection of its own (urllib closes it after)."""
        req = urllib.request.Request(self.url + path)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        ctx = ssl.create_default_context(cafile=self.ca) if self.ca else None
        try:
            with urllib.request.urlopen(req, timeout=HANG, context=ctx) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")

    def metrics(self) -> Dict[str, float]:
        status, text = self.get("/metrics")
        assert status == 200, text
        return {
            m.group(1): float(m.group(2))
            for m in re.finditer(r"^(cepheid_serve_[a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)
        }

    def wait_metric(self, name: str, at_least: float) -> Dict[str, float]:
        """Metrics once `name` reaches `at_least` (polled: a count, not a time)."""
        guard = time.monotonic() + HANG
        while True:
            m = self.metrics()
            if m.get(name, 0) >= at_least:
                return m
            if time.monotonic() > guard:
                raise AssertionError(f"{name} never reached {at_least}: {m.get(name)}\n{self.stderr()}")
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)
        if sig == signal.SIGSTOP:
            # kill only queues the stop: one thread takes it and stops the
            # others, which on a loaded machine can run, and answer a
            # request, in between. Wait until every thread is stopped.
            since = time.monotonic()
            while not all_stopped(self.proc.pid):
                if time.monotonic() - since > HANG:
                    raise AssertionError("the server not stopped after SIGSTOP")
                time.sleep(0.002)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(HANG)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class LosingProxy:
    """A TCP proxy to a server that loses one answer on purpose: the
    answer to the first request holding a marker is read from the server
    in full (the server decided), then the client's connection is reset
    instead. Everything else is relayed as it is."""

    def __init__(self, upstream: str) -> None:
        import socket

        self.host, port = upstream.split("//")[1].split(":")
        self.port = int(port)
        self.marker: Optional[bytes] = None
        self.lost = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def lose_answer_to(self, marker: bytes) -> None:
        with self.lock:
            self.marker = marker

    def _accept(self) -> None:
        import socket

        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection((self.host, self.port), timeout=HANG)
            lose = threading.Event()
            threading.Thread(target=self._up, args=(client, server, lose), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, lose), daemon=True).start()

    def _up(self, client: Any, server: Any, lose: threading.Event) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                with self.lock:
                    if self.marker is not None and self.marker in data:
                        self.marker = None
                        lose.set()
                server.sendall(data)
        except OSError:
            pass
        finally:
            try:
                server.shutdown(1)
            except OSError:
                pass

    def _down(self, server: Any, client: Any, lose: threading.Event) -> None:
        import socket
        import struct

        buf = b""
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                if not lose.is_set():
                    client.sendall(data)
                    continue
                buf += data
                head, sep, body = buf.partition(b"\r\n\r\n")
                if not sep:
                    continue
                m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                if m and len(body) < int(m.group(1)):
                    continue
                # the whole answer read: the client never gets it
                with self.lock:
                    self.lost += 1
                # (shutdown wakes the other direction's recv and ends the
                # connection now: the client sees it lost before the answer)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.shutdown(socket.SHUT_RDWR)
                break
        except OSError:
            pass
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self.closed = True
        self.sock.close()


class SyncCalls:
    """The sync Client as the tests call it."""

    def __init__(self, url: str, **options: Any) -> None:
        self.client = Client(url, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def close(self) -> None:
        self.client.close()


class AsyncCalls:
    """The AsyncClient called from a test: every call awaited on one event
    loop of its own thread (the client's connections belong to it)."""

    def __init__(self, url: str, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def make() -> AsyncClient:
            return AsyncClient(url, **options)

        self.client = self._wait(make())

    def _wait(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(HANG)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr
        return lambda *a, **kw: self._wait(attr(*a, **kw))

    @property
    def breaker(self) -> str:
        return self.client.breaker

    def close(self) -> None:
        self._wait(self.client.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(HANG)
        self.loop.close()


class ServerTests:
    """The tests, run on each client (the subclasses below)."""

    calls: Any  # SyncCalls or AsyncCalls

    def setUp(self) -> None:
        binary()
        self.servers: List[Server] = []
        self.clients: List[Any] = []

    def tearDown(self) -> None:
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        for s in self.servers:
            s.stop()

    def server(self, *args: str, **kw: Any) -> Server:
        s = Server(*args, **kw)
        self.servers.append(s)
        return s

    def client(self, url: str, **options: Any) -> Any:
        c = type(self).calls(url, **options)
        self.clients.append(c)
        return c

    # -- the calls ----------------------------------------------------------

    def test_a_decision_dry_run_events_and_lookup(self) -> None:
        s = self.server()
        c = self.client(s.url)
        r = c.decide("payment", payment(1), event_id="pay-1")
        self.assertEqual(r["decided_by"], "server")
        self.assertEqual(r.decided_by, "server")
        self.assertEqual(r.attempts, 1)
        self.assertEqual(r["event_id"], "pay-1")
        self.assertIn(r.outcome, ["approve", "review", "decline"])
        self.assertFalse(r["degraded"])
        again = c.decide("payment", payment(1), event_id="pay-1")
        self.assertTrue(again["repeated"])
        self.assertEqual(again.decision_id, r.decision_id)
        looked = c.decision(r.decision_id)
        self.assertEqual(looked["decision_id"], r.decision_id)
        self.assertEqual(looked["event_id"], "pay-1")
        self.assertEqual(looked["outcome"], r.outcome)
        dry = c.dry_run("payment", payment(2), explain=True)
        self.assertEqual((dry["decided_by"], dry["mode"]), ("server", "dry_run"))
        self.assertIn("explanation", dry)
        made = c.decide("payment", payment(3))  # an event id made by the client
        self.assertTrue(made.event_id)
        rec = c.record([
            {"event_id": "login-1", "event": {"type": "login", "account": "a1"}},
            {"event_id": "login-2", "event": {"type": "login", "account": "a2"}},
        ])
        self.assertEqual((rec["recorded"], rec["repeated"]), (2, 0))
        self.assertEqual(c.record([{"event_id": "login-1", "event": {"type": "login", "account": "a1"}}])["repeated"], 1)
        scenes = c.scenes()
        self.assertIn("payment", [x["name"] for x in scenes["scenes"]])
        with self.assertRaises(ApiError) as e:
            c.decide("paymnet", payment(4))
        self.assertEqual((e.exception.status, e.exception.code), (404, "unknown_scene"))
        with self.assertRaises(ApiError) as e:
            c.decision("d-nothing")
        self.assertEqual(e.exception.status, 404)
        self.assertEqual(c.breaker, "closed")

    def test_a_list_change_blocks_a_device_from_the_next_decision(self) -> None:
        s = self.server()
        c = self.client(s.url)
        event = {"type": "payment", "payment_id": "pl1", "card": "c-l1", "device": "d-lst", "amount": 5}
        self.assertEqual(c.decide("payment", event, event_id="pl-1").outcome, "approve")
        changed = c.change_list("blocked_devices", add=["d-lst"])
        self.assertEqual((changed["list"], changed["added"], changed["removed"]), ("blocked_devices", 1, 0))
        self.assertGreater(changed["expires"], 0)
        self.assertGreater(changed["entry"], 0)
        event = dict(event, payment_id="pl2", card="c-l2")
        r = c.decide("payment", event, event_id="pl-2")
        self.assertEqual((r.outcome, r["list"]), ("decline", "device in blocked_devices"))
        gone = c.change_list("blocked_devices", remove=["d-lst"])
        self.assertNotIn("expires", gone)
        event = dict(event, payment_id="pl3", card="c-l3")
        self.assertEqual(c.decide("payment", event, event_id="pl-3").outcome, "approve")
        at = c.change_list("blocked_devices", add=["d-x", 7], expires="2026-12-01T00:00:00Z")
        self.assertEqual(at["expires"], 1796083200000)
        with self.assertRaises(ApiError) as e:
            c.change_list("blocked_devics", add=["d-x"])
        self.assertEqual((e.exception.status, e.exception.code), (404, "not_found"))
        with self.assertRaises(ValueError):
            c.change_list("blocked_devices")
        with self.assertRaises(ValueError):
            c.change_list("blocked_devices", remove=["d-x"], expires=5)
        with self.assertRaises(TypeError):
            c.change_list("blocked_devices", add="d-x")
        with self.assertRaises(TypeError):
            c.change_list("blocked_devices", add=[None])
        self.assertEqual(c.breaker, "closed")

    # -- the faults -----------------------------------------------------------

    def published_fallback(self, s: Server, scene: str) -> str:
        doc = json.loads(s.get("/v1/scenes")[1])
        return next(x["fallback"] for x in doc["scenes"] if x["name"] == scene)

    def test_slow_a_stopped_server_gets_the_fallback_at_the_deadline(self) -> None:
        s = self.server()
        c = self.client(s.url)
        c.scenes()  # the fallback is the scene's published one
        s.signal(signal.SIGSTOP)
        try:
            r = c.decide("payment", payment(1), event_id="slow-1", deadline_ms=300)
        finally:
            s.signal(signal.SIGCONT)
        self.assertEqual(r["decided_by"], "client")
        self.assertEqual(r["degraded_why"], "timeout")
        self.assertTrue(r["degraded"])
        self.assertEqual(r["outcome"], self.published_fallback(s, "payment"))
        self.assertEqual(r["event_id"], "slow-1")

    def test_gone_a_killed_server_gets_the_fallback(self) -> None:
        s = self.server()
        c = self.client(s.url, fallbacks={"payment": "closed"})
        c.decide("payment", payment(1))  # a connection kept, the scenes known
        s.proc.kill()
        s.proc.wait(HANG)
        r = c.decide("payment", payment(2), event_id="gone-1")
        self.assertEqual(
            {k: r[k] for k in ("decided_by", "degraded_why", "outcome", "attempts")},
            {"decided_by": "client", "degraded_why": "unreachable", "outcome": "decline", "attempts": 3},
        )
        with self.assertRaises(Unavailable) as e:
            c.dry_run("payment", payment(3))
        self.assertEqual(e.exception.why, "unreachable")
        with self.assertRaises(Unavailable) as e:
            c.record([{"event_id": "x", "event": {"type": "login", "account": "a"}}])
        self.assertIn(e.exception.why, ("unreachable", "breaker_open"))

    def test_unavailable_a_queue_bound_of_zero_gets_the_fallback(self) -> None:
        # `--queue 0` takes nothing: every decision is a 503 `unavailable`
        # with `Retry-After: 1`, whose wait does not fit the deadline: the
        # fallback at once, after one attempt; nothing is decided.
        s = self.server("--queue", "0")
        c = self.client(s.url, fallbacks={"payment": "closed"})
        for n in range(3):
            r = c.decide("payment", payment(n), event_id=f"q0-{n}")
            self.assertEqual(
                {k: r[k] for k in ("decided_by", "degraded_why", "outcome", "attempts")},
                {"decided_by": "client", "degraded_why": "unavailable", "outcome": "decline", "attempts": 1},
            )
        metrics = s.metrics()
        self.assertEqual(metrics.get("cepheid_serve_unavailable_total"), 3)
        self.assertEqual(metrics.get("cepheid_serve_decisions_total", 0), 0)

    def test_overloaded_a_full_queue_gets_the_fallback(self) -> None:
        # `--queue 1` admits one request in flight; other connections keep
        # it busy, so that the client's decisions meet a 429 `overloaded`
        # with `Retry-After: 1`: its wait does not fit the deadline, the
        # call ends with the fallback. The test counts: it asks until one
        # such answer (a hang guard bounds it).
        s = self.server("--queue", "1")
        c = self.client(s.url, fallbacks={"payment": "review"}, breaker={"failure_threshold": 1000, "open_ms": 1000})
        stop = threading.Event()

        def load(k: int) -> None:
            import http.client

            host, port = s.url.split("//")[1].split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=HANG)
            n = 0
            while not stop.is_set():
                n += 1
                body = json.dumps({"scene": "payment", "event_id": f"load-{k}-{n}", "event": payment(n, card=f"l{k}")})
                try:
                    conn.request("POST", "/v1/decide", body, {"content-type": "application/json"})
                    conn.getresponse().read()
                except OSError:
                    conn.close()
                    conn = http.client.HTTPConnection(host, int(port), timeout=HANG)
            conn.close()

        threads = [threading.Thread(target=load, args=(k,), daemon=True) for k in range(6)]
        for t in threads:
            t.start()
        try:
            got = None
            for n in range(2000):
                r = c.decide("payment", payment(n, card="ov"), event_id=f"ov-{n}")
                if r["decided_by"] == "client":
                    got = r
                    break
        finally:
            stop.set()
            for t in threads:
                t.join(HANG)
        self.assertIsNotNone(got, "the client never met the server overloaded")
        self.assertEqual((got["degraded_why"], got["outcome"], got["attempts"]), ("overloaded", "review", 1))
        self.assertGreater(s.metrics().get("cepheid_serve_refused_queue_total", 0), 0)

    def test_retries_never_make_two_decisions_for_one_event_id(self) -> None:
        # The answer of the call's first attempt is lost after the server
        # decided (a proxy reads it and resets the client's connection):
        # the client retries with the same event id and gets the first
        # decision back, `repeated`; the server counts one decision.
        # (SIGSTOP longer than the deadline, then SIGCONT, does not make a
        # first decision surely: the server drops a request whose client
        # left before it was admitted, 2 times in 5 here.)
        s = self.server()
        proxy = LosingProxy(s.url)
        self.addCleanup(proxy.close)
        c = self.client(proxy.url)
        c.decide("payment", payment(0), event_id="warm")
        before = s.metrics()
        proxy.lose_answer_to(b'"event_id":"once-1"')
        r = c.decide("payment", payment(1), event_id="once-1")
        self.assertEqual(proxy.lost, 1, "the proxy lost one answer")
        self.assertEqual((r["decided_by"], r["attempts"], r.get("repeated")), ("server", 2, True), dict(r))
        again = c.decide("payment", payment(1), event_id="once-1")
        self.assertEqual(again["decision_id"], r["decision_id"])
        after = s.metrics()
        answered = after["cepheid_serve_decisions_total"] - before.get("cepheid_serve_decisions_total", 0)
        repeated = after.get("cepheid_serve_repeated_total", 0) - before.get("cepheid_serve_repeated_total", 0)
        self.assertEqual((answered, repeated), (3, 2), "three requests answered, two of them repeats: one decision")
        self.assertEqual(c.decision(r["decision_id"])["event_id"], "once-1")

    def test_one_connection_for_calls_in_a_row(self) -> None:
        s = self.server()
        c = self.client(s.url)
        before = s.metrics()["cepheid_serve_http_connections_total"]  # its own connection counted
        for n in range(8):
            c.decide("payment", payment(n), event_id=f"conn-{n}")
        c.dry_run("payment", payment(99))
        c.record([{"event_id": "l1", "event": {"type": "login", "account": "a"}}])
        c.scenes()
        after = s.metrics()["cepheid_serve_http_connections_total"]
        # the client's one connection, and this second fetch of the metrics'
        self.assertEqual(after - before, 2)

    # -- token and TLS ----------------------------------------------------------

    def test_a_bearer_token_and_tls(self) -> None:
        d = tempfile.mkdtemp(prefix="cepheid-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key, tokens = (os.path.join(d, n) for n in ("cert.pem", "key.pem", "tokens"))
        made = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            capture_output=True, timeout=HANG,
        )
        self.assertEqual(made.returncode, 0, made.stderr.decode("utf-8", "replace"))
        with open(tokens, "w") as f:
            f.write("t0k-python\n")
        s = self.server("--auth-tokens", tokens, "--tls-cert", cert, "--tls-key", key, token="t0k-python", ca=cert)
        self.assertTrue(s.url.startswith("https://"), s.url)
        c = self.client(s.url, token="t0k-python", ca=cert)
        r = c.decide("payment", payment(1), event_id="tls-1")
        self.assertEqual(r["decided_by"], "server")
        self.assertEqual(c.decision(r["decision_id"])["event_id"], "tls-1")
        self.assertEqual(c.dry_run("payment", payment(2))["mode"], "dry_run")
        self.assertEqual(c.record([{"event_id": "tls-l", "event": {"type": "login", "account": "a"}}])["recorded"], 1)
        self.assertIn("payment", [x["name"] for x in c.scenes()["scenes"]])
        # without the token: the server's 401, raised (the scenes' fetch)
        bare = self.client(s.url, ca=cert)
        with self.assertRaises(ApiError) as e:
            bare.decide("payment", payment(3))
        self.assertEqual((e.exception.status, e.exception.code), (401, "unauthorized"))
        # without the CA: the certificate is not trusted, no answer
        untrusted = self.client(s.url, token="t0k-python", max_attempts=1)
        with self.assertRaises(Unavailable) as e:
            untrusted.dry_run("payment", payment(4))
        self.assertEqual(e.exception.why, "unreachable")


class SyncServerTests(ServerTests, unittest.TestCase):
    calls = SyncCalls


class AsyncServerTests(ServerTests, unittest.TestCase):
    calls = AsyncCalls


if __name__ == "__main__":
    unittest.main()
