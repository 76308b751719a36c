#!/usr/bin/env python3
"""Builds the seed corpus of the `engine` fuzz target.

The target (fuzz_targets/engine.rs) reads one input as: an options byte
(bits 0-1: allowed delay 0, 5 ms, 1 s or the largest; bit 2: flush at end;
bit 3: CSV instead of JSON lines), then a pattern file up to the first NUL
byte, then the events, one per line. This script writes such inputs from:

- the conformance cases (`../shared/conformance/flink/*`: `pattern.cep`,
  `events.jsonl`, `case.json`'s `run_options`), each as JSON lines and,
  when its events are flat, again as CSV (watermark lines left out);
- the shipped `patterns/*.cep` over the start of `examples/data/sample.jsonl`,
  and over a few events at both ends of the time range;
- the oracle regression cases (`tests/oracle/cases/*`);
- the error suite (`tests/errors/*.cep`) and the parser's fuzz regressions
  (`tests/fuzz_regressions/*`), over a few events: inputs whose pattern is
  refused, which the target must leave cleanly.

Every input is kept under MAX_LEN bytes (the `-max_len` of the documented
run): events are cut line by line to fit.

Usage (from the repository root or anywhere):
    python3 fuzz/seed_engine.py [--out fuzz/corpus/engine] [--conformance DIR]
"""

import argparse
import csv
import io
import json
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
MAX_LEN = 4096

# Options byte.
DELAY_0, DELAY_5MS, DELAY_1S, DELAY_MAX = 0, 1, 2, 3
FLUSH = 4
CSV = 8

EXTREMES = (
    '{"ts":1,"type":"a","k":"x"}\n'
    '{"$watermark":5}\n'
    '{"ts":-9223372036854775808,"type":"b","k":"x"}\n'
    '{"ts":9223372036854775707,"type":"a","k":[{"x":1}]}\n'
    '{"ts":9223372036854775807,"type":"order_created","order_id":"o1"}\n'
)


def fuzz_input(options, pattern, events):
    """One input: options byte, pattern, NUL, events cut to fit MAX_LEN."""
    head = bytes([options]) + pattern + b"\0"
    if len(head) > MAX_LEN:
        return None
    lines = events.splitlines(keepends=True)
    body = b""
    for line in lines:
        if len(head) + len(body) + len(line) > MAX_LEN:
            break
        body += line
    return head + body


def delay_bits(run_options):
    """The options byte closest to a conformance case's `run_options`."""
    bits = 0
    if "--flush-at-end" in run_options:
        bits |= FLUSH
    if "--max-delay" in run_options:
        value = run_options[run_options.index("--max-delay") + 1]
        millis = int(value[:-2]) if value.endswith("ms") else None
        if millis is None or millis > 1000:
            bits |= DELAY_MAX
        elif millis > 5:
            bits |= DELAY_1S
        elif millis > 0:
            bits |= DELAY_5MS
    return bits


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_csv(events):
    """The events of a JSON-lines text as CSV (header of every key, in
    first-seen order), or None when one is not a flat object. Watermark
    lines have no CSV form and are left out."""
    rows = []
    names = []
    for line in events.decode("utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if not isinstance(obj, dict):
            return None
        if "$watermark" in obj:
            continue
        for key, value in obj.items():
            if isinstance(value, (dict, list)):
                return None
            if key not in names:
                names.append(key)
        rows.append(obj)
    if not rows:
        return None
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in names])
    return text.getvalue().encode("utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FUZZ / "corpus" / "engine")
    parser.add_argument(
        "--conformance",
        type=Path,
        default=REPO.parent / "shared" / "conformance" / "flink",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = {}

    def write(name, data):
        if data is not None:
            (args.out / name).write_bytes(data)
            kind = name.split("-", 1)[0]
            written[kind] = written.get(kind, 0) + 1

    # Conformance cases.
    if args.conformance.is_dir():
        for case in sorted(p for p in args.conformance.iterdir() if p.is_dir()):
            pattern = (case / "pattern.cep").read_bytes()
            events = (case / "events.jsonl").read_bytes()
            meta = json.loads((case / "case.json").read_text())
            bits = delay_bits(meta.get("run_options") or [])
            write(f"conformance-{case.name}", fuzz_input(bits, pattern, events))
            flat = as_csv(events)
            if flat is not None:
                write(f"conformance_csv-{case.name}", fuzz_input(bits | CSV, pattern, flat))
    else:
        print(f"no conformance cases at {args.conformance}: skipped", file=sys.stderr)

    # The shipped patterns over the sample stream and over the extremes.
    sample = (REPO / "examples" / "data" / "sample.jsonl").read_bytes()
    sample_csv = as_csv(sample)
    for path in sorted((REPO / "patterns").glob("*.cep")):
        pattern = path.read_bytes()
        write(f"patterns-{path.stem}-sample", fuzz_input(DELAY_MAX | FLUSH, pattern, sample))
        write(f"patterns-{path.stem}-ordered", fuzz_input(DELAY_0, pattern, sample))
        write(f"patterns-{path.stem}-extremes", fuzz_input(DELAY_5MS | FLUSH, pattern, EXTREMES.encode()))
        if sample_csv is not None:
            write(f"patterns_csv-{path.stem}", fuzz_input(DELAY_1S | CSV, pattern, sample_csv))

    # Oracle regression cases.
    for case in sorted((REPO / "tests" / "oracle" / "cases").iterdir()):
        if (case / "pattern.cep").exists() and (case / "events.jsonl").exists():
            pattern = (case / "pattern.cep").read_bytes()
            events = (case / "events.jsonl").read_bytes()
            write(f"oracle-{case.name}", fuzz_input(DELAY_0 | FLUSH, pattern, events))

    # The error suite and the parser's regressions: refused patterns.
    refused = sorted((REPO / "tests" / "errors").glob("*.cep"))
    refused += sorted((REPO / "tests" / "fuzz_regressions").iterdir())
    for path in refused:
        write(f"errors-{path.name}", fuzz_input(DELAY_5MS | FLUSH, path.read_bytes(), EXTREMES.encode()))

    total = sum(written.values())
    parts = ", ".join(f"{n} {kind}" for kind, n in sorted(written.items()))
    print(f"{total} seeds in {args.out} ({parts})")


if __name__ == "__main__":
    main()
