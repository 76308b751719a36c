#!/usr/bin/env python3
"""Delay from an event's arrival on standard input to its match record on
standard output, for `cepheid run` on a live pipe (BENCHMARKS.md).

Each round writes `a` and `b` of one key and an event one millisecond later
(which moves the watermark past `b`) in one write, then times until the
match record of that round is read back. Rounds are paced (default 2 ms
apart), so this measures the delay of a live stream, not throughput.

    python3 benches/scripts/latency.py [--cepheid target/release/cepheid]
                                       [--rounds 5000] [--gap-ms 2]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

PATTERN = """pattern ab {
    partition by key
    within 10s
    match a followed by b
    where
        a: type == 0
        b: type == 1
}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cepheid", default="target/release/cepheid")
    ap.add_argument("--rounds", type=int, default=5000)
    ap.add_argument("--gap-ms", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pattern = os.path.join(tmp, "ab.cep")
        with open(pattern, "w") as f:
            f.write(PATTERN)
        child = subprocess.Popen(
            [args.cepheid, "run", pattern, "--no-progress"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        sent = {}
        delays = []
        done = threading.Event()

        def read():
            for line in child.stdout:
                t = time.perf_counter()
                record = json.loads(line)
                if record.get("kind") != "match":
                    continue
                key = record["key"]["key"]
                delays.append(t - sent[key])
                if len(delays) == args.rounds:
                    break
            done.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for i in range(args.rounds):
            ts = 3 * i
            lines = (
                f'{{"ts":{ts},"type":0,"key":{i}}}\n'
                f'{{"ts":{ts + 1},"type":1,"key":{i}}}\n'
                f'{{"ts":{ts + 2},"type":2,"key":{i}}}\n'
            )
            sent[i] = time.perf_counter()
            child.stdin.write(lines.encode())
            time.sleep(args.gap_ms / 1000)
        done.wait(timeout=30)
        child.stdin.close()
        child.wait()
    if len(delays) < args.rounds:
        print(f"only {len(delays)} of {args.rounds} matches came back", file=sys.stderr)
        return 1
    delays.sort()
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000
    print(
        f"{len(delays)} matches, delay from write to record: "
        f"p50 {pick(0.50):.3f} ms, p99 {pick(0.99):.3f} ms, max {delays[-1] * 1000:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
