#!/usr/bin/env python3
"""Real clients of `cepheid serve` for its tests (tests/cli_serve.rs):
Python's standard library only (http.client), one connection per thread,
HTTP/1.1 with keep-alive.

    clients.py BASE OUT --threads N --each M [--prefix P] [--deadline-every K]
               [--token T] [--cafile F] [--until-killed] [--ids FILE] [--barrier]
               [--exchanges FILE]

Each thread sends `decide` requests for the scene `payment`, each with its
own event id (`P-THREAD-I`) and its thread's card (`card-THREAD`), and
writes one JSON line per request to OUT as it is answered:
`{"id", "card", "status", "retry_after", "body"}` (`status` 0 and `error`
when the connection failed: the request got no answer). With
`--deadline-every K`, every Kth request asks `deadline_ms: 0`. With
`--ids FILE` (JSON lines of `{"id", "card", "amount"}`), those requests
are sent instead (split over the threads), as retries are. With
`--until-killed`, a thread whose connection fails stops; the others go on.
With `--exchanges FILE`, every request and answer is also written there
as `tests/openapi/exchanges.py` reads them, to be checked against the API
document.
"""

import argparse
import http.client
import json
import ssl
import sys
import threading
import urllib.parse


def connect(base, cafile):
    url = urllib.parse.urlparse(base)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=cafile)
        return http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=120)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=120)


def body_of(request, deadline_zero):
    body = {
        "scene": "payment",
        "event_id": request["id"],
        "event": {
            "type": "payment",
            "card": request["card"],
            "device": "dev-" + request["card"],
            "amount": request["amount"],
        },
    }
    if deadline_zero:
        body["deadline_ms"] = 0
    return json.dumps(body)


def exchange(args, headers, body, answer, text):
    return {
        "test": "cli_serve",
        "client": "python http.client",
        "method": "POST",
        "path": "/v1/decide",
        "request_headers": {k.lower(): v for k, v in headers.items()},
        "request_body": body,
        "request_body_utf8": True,
        "status": answer.status,
        "headers": {k.lower(): v for k, v in answer.getheaders()},
        "body": text.decode("utf-8", "replace"),
    }


def run(args, requests, out, lock, barrier, exchanges):
    conn = connect(args.base, args.cafile)
    headers = {"content-type": "application/json"}
    if args.token:
        headers["authorization"] = "Bearer " + args.token
    if barrier is not None:
        barrier.wait()
    for n, request in enumerate(requests, 1):
        deadline_zero = args.deadline_every and n % args.deadline_every == 0
        record = {"id": request["id"], "card": request["card"], "amount": request["amount"]}
        try:
            body = body_of(request, deadline_zero)
            conn.request("POST", "/v1/decide", body=body, headers=headers)
            answer = conn.getresponse()
            text = answer.read()
            record["status"] = answer.status
            record["retry_after"] = answer.getheader("retry-after")
            record["body"] = json.loads(text)
            if exchanges is not None:
                with lock:
                    exchanges.write(json.dumps(exchange(args, headers, body, answer, text)) + "\n")
        except Exception as e:  # the server went away: no answer
            record["status"] = 0
            record["error"] = repr(e)
            conn.close()
            if args.until_killed:
                with lock:
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                return
            conn = connect(args.base, args.cafile)
        with lock:
            out.write(json.dumps(record) + "\n")
            out.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--each", type=int, default=10)
    parser.add_argument("--prefix", default="p")
    parser.add_argument("--deadline-every", type=int, default=0)
    parser.add_argument("--token")
    parser.add_argument("--cafile")
    parser.add_argument("--until-killed", action="store_true")
    parser.add_argument("--ids")
    parser.add_argument("--barrier", action="store_true")
    parser.add_argument("--exchanges")
    args = parser.parse_args()
    if args.ids:
        with open(args.ids) as f:
            wanted = [json.loads(line) for line in f if line.strip()]
        plans = [wanted[t :: args.threads] for t in range(args.threads)]
    else:
        plans = [
            [
                {"id": f"{args.prefix}-{t}-{i}", "card": f"card-{t}", "amount": 10 + i % 7}
                for i in range(args.each)
            ]
            for t in range(args.threads)
        ]
    lock = threading.Lock()
    barrier = threading.Barrier(args.threads) if args.barrier else None
    exchanges = open(args.exchanges, "a") if args.exchanges else None
    with open(args.out, "w") as out:
        threads = [
            threading.Thread(target=run, args=(args, plan, out, lock, barrier, exchanges))
            for plan in plans
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if exchanges is not None:
        exchanges.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
