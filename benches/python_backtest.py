"""Issue 64's benchmark: a backtest of the `risk` workload
(`../shared/bench-workloads.md`) from a pandas DataFrame already in memory
(`ts`, `card`, `device`, `amount`) through to the result DataFrames, in
process CPU, against `cepheid backtest` over the same events as JSON lines.

    OPENBLAS_NUM_THREADS=1 python benches/python_backtest.py \
        --cepheid target/release/cepheid [--events 1000000] [--runs 3] [--scene]

Run it with the Python of an environment where a release wheel of the
package is installed (`maturin build --release`, BENCHMARKS.md). The
DataFrame and the JSON-lines file are made first and not counted; each run
is `time.process_time()` around `cepheid.backtest(...)` (the frame taken
by columns, the engine, the records made DataFrames, the summary) in this
process, and the user + system CPU of a `cepheid backtest RULES --events
FILE --json` child (`resource.getrusage(RUSAGE_CHILDREN)`), alternated.
The two must agree on the alerts per rule (the workload's counts at 1M:
3,320 / 28,133 / 115,247).

`OPENBLAS_NUM_THREADS=1` in the environment: NumPy's OpenBLAS starts a
thread per core whose spinning counts in this process's CPU (4% of the
samples in a profile) though nothing here calls BLAS.
"""

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import cepheid

# benches/src/risk.rs, RULES and SCENE
RULES = """\
indicator cards_10m = count() group by card within 10m
indicator amount_10m = sum(amount) group by card within 10m
indicator device_cards_1d = count_distinct(card) group by device within 1d

pattern card_count {
    match e
    where e: cards_10m(card) > 4
}
pattern card_amount {
    match e
    where e: amount_10m(card) > 1000
}
pattern device_cards {
    match e
    where e: device_cards_1d(device) > 3
}
"""
SCENE = """\
scene payment {
    rules card_count, card_amount, device_cards
    outcomes approve < review
    review if score >= 1
    fallback approve
    deadline 100ms
}
"""

EXPECTED = {1_000_000: (3_320, 28_133, 115_247), 100_000: (155, 1_743, 132)}


def mix(z):
    """splitmix64's finalizer over a uint64 array (wrapping)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def risk_frame(n, seed=42, step_ms=10):
    """The workload's first n events as a DataFrame (ts, card, device, amount)."""
    with np.errstate(over="ignore"):
        g = np.arange(n, dtype=np.uint64)
        h1 = mix(np.uint64(seed) * np.uint64(31) + g)
        h2 = mix(h1)
        h3 = mix(h2)
        u = (h2 >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
        card = h1 % np.uint64(100_000)
        device = np.where(u < 0.95, card % np.uint64(50_000), mix(h3) % np.uint64(50_000))
        amount = np.uint64(1) + h3 % np.uint64(500)
    return pd.DataFrame({
        "ts": g.astype(np.int64) * step_ms,
        "card": card.astype(np.int64),
        "device": device.astype(np.int64),
        "amount": amount.astype(np.int64),
    })


def write_jsonl(frame, path):
    with open(path, "w") as f:
        for ts, card, device, amount in zip(*(frame[c].tolist() for c in frame.columns)):
            f.write(f'{{"ts":{ts},"card":{card},"device":{device},"amount":{amount}}}\n')


def python_side(frame, rules):
    gc.collect()
    start = time.process_time()
    result = cepheid.backtest(rules, events=frame, origin="risk.cep")
    cpu = time.process_time() - start
    counts = {p["pattern"]: p["alerts"] for p in result.summary["patterns"]}
    shape = (len(result.alerts), len(result.decisions))
    del result
    return cpu, counts, shape


def cli_side(binary, rules_path, events_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [binary, "backtest", rules_path, "--events", events_path, "--json"],
        capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads(out.stdout)
    counts = {p["pattern"]: p["alerts"] for p in report["patterns"]}
    return cpu, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cepheid", required=True, help="the release `cepheid` binary")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scene", action="store_true",
                        help="the rules in a scene (risk-scene): a decision per event too")
    args = parser.parse_args()
    rules = RULES + (SCENE if args.scene else "")
    made = time.perf_counter()
    frame = risk_frame(args.events)
    with tempfile.TemporaryDirectory() as folder:
        rules_path = os.path.join(folder, "risk.cep")
        events_path = os.path.join(folder, "risk.jsonl")
        with open(rules_path, "w") as f:
            f.write(rules)
        write_jsonl(frame, events_path)
        print(f"# {args.events:,} events made in {time.perf_counter() - made:.1f} s "
              f"(not counted); first: {open(events_path).readline().strip()}", file=sys.stderr)
        py_cpu, cli_cpu = [], []
        for run in range(args.runs):
            cpu, counts, shape = python_side(frame, rules)
            py_cpu.append(cpu)
            c_cpu, c_counts = cli_side(args.cepheid, rules_path, events_path)
            cli_cpu.append(c_cpu)
            if counts != c_counts:
                sys.exit(f"the alerts differ: python {counts}, cepheid backtest {c_counts}")
            want = EXPECTED.get(args.events)
            got = (counts["card_count"], counts["card_amount"], counts["device_cards"])
            if want and got != want:
                sys.exit(f"the alerts are not the workload's: {got}, not {want}")
            print(f"run {run + 1}: python {cpu:.2f} s CPU ({shape[0]:,} alerts, "
                  f"{shape[1]:,} decisions as DataFrames), cepheid backtest {c_cpu:.2f} s CPU: "
                  f"{cpu / c_cpu:.2f}x", file=sys.stderr)
    ratios = [p / c for p, c in zip(py_cpu, cli_cpu)]
    print(json.dumps({
        "events": args.events,
        "scene": args.scene,
        "python_cpu_s": [round(x, 3) for x in py_cpu],
        "cli_cpu_s": [round(x, 3) for x in cli_cpu],
        "ratio": {"min": round(min(ratios), 3), "max": round(max(ratios), 3),
                  "of_best": round(min(py_cpu) / min(cli_cpu), 3)},
        "alerts": counts,
    }))


if __name__ == "__main__":
    main()
