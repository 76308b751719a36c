"""What the package's tests share: the repository's files and the
`cepheid` binary, when one is built."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
"""The repository's root (this file is crates/python/tests/support.py)."""

RISK = ROOT / "patterns" / "risk"
SAMPLE = ROOT / "examples" / "data" / "sample.jsonl"
GOLDEN = ROOT / "tests" / "golden"


def lines(path):
    """The non-blank lines of a file, without their newlines."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def events(path):
    """The events of a JSON-lines file, as dicts."""
    return [json.loads(line) for line in lines(path)]


def patterns_folder():
    """The `.cep` files `cepheid run patterns/` loads (the folder's own,
    sorted by name)."""
    return sorted(str(p) for p in (ROOT / "patterns").glob("*.cep"))


def binary():
    """The `cepheid` binary of the target folder, if built (debug first,
    the one `cargo test --workspace` builds), else None."""
    target = Path(os.environ.get("CEPHEID_TARGET_DIR") or ROOT / "target")
    for profile in ("debug", "release"):
        path = target / profile / "cepheid"
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def cepheid_run(*args, cwd=ROOT):
    """`cepheid run ARGS --no-progress` from the repository's root: its
    standard output's lines."""
    out = subprocess.run(
        [str(binary()), "run", *map(str, args), "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in out.stdout.splitlines() if line.strip()]
