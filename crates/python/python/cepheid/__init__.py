"""cepheid: complex event processing and risk decisions, embedded in Python.

The engine of ``cepheid run`` in the interpreter, no server: rules in the
``.cep`` language (text or files), events as dicts, and out come the same
JSON records the command writes, as dicts.

>>> import cepheid
>>> engine = cepheid.Engine('''
...     pattern big { partition by card match p where p: amount > 100 }''')
>>> engine.push({"ts": 1, "card": "c1", "amount": 500})
>>> engine.finish()
>>> [(r["kind"], r["pattern"], r["key"]) for r in engine.drain()]
[('match', 'big', {'card': 'c1'})]

What is here:

- :class:`Engine`: one engine. ``push`` events (their time from the time
  field, ``ts`` by default, or given), ``watermark``, ``tick``, ``finish``;
  ``drain()`` returns what it produced since the last drain: matches,
  timeouts, late events and decisions, in the order the engine gave them,
  each the dict of the record ``cepheid run`` writes (``kind`` tells them
  apart: ``match``, ``timeout``, ``late``, ``decision``; the fields are
  those of ``docs/decisions.md`` and ``cli.md``). ``decide`` decides one
  event at once and returns its decisions; ``dry_run`` does so changing
  nothing; ``scenes()`` lists the scenes; ``snapshot()`` and
  ``Engine.restore`` keep and resume the state.
- :func:`run`: a whole stream at once (a backtest): every event of a list
  of dicts, a pandas DataFrame or an Arrow table, and the records.
- :func:`flatten`: records as flat dicts (``key.card``, ``rule.score``),
  ready for ``pandas.DataFrame(...)``.
- :func:`check`: rules checked, not run.
- :exc:`PatternError`: rules that do not load; its message is every
  problem as ``path:line:column`` with the text underlined.

Errors never crash the interpreter: a value JSON cannot hold (a set, NaN,
an int past 64 bits) is a ``TypeError`` or ``ValueError`` naming the field.
"""

from __future__ import annotations

import os
import math
from typing import Any, Iterable, Mapping, NamedTuple

from ._cepheid import Engine, PatternError, __version__, check

__all__ = [
    "Engine",
    "PatternError",
    "Backtest",
    "Frames",
    "backtest",
    "check",
    "flatten",
    "frames",
    "run",
    "__version__",
]


def _rows(events: Any) -> Iterable[Mapping[str, Any]]:
    """The events of an iterable of dicts (not a path)."""
    if isinstance(events, (str, bytes, os.PathLike)):
        raise TypeError(
            "events must be an iterable of dicts (a DataFrame or an Arrow table "
            "too), not a path: read the file's lines with json.loads"
        )
    return events


def _is_pandas(events: Any) -> bool:
    return hasattr(events, "columns") and hasattr(events, "iloc") and hasattr(events, "dtypes")


def _is_arrow(events: Any) -> bool:
    return hasattr(events, "schema") and hasattr(events, "column") and hasattr(events, "num_rows")


_INT64_MAX = 2**63 - 1


def _column_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a column's name must be a string (an event's field), not {name!r}")
    return name


def _mask_bytes(mask: Any) -> bytes | None:
    """A boolean NumPy array as one byte a row, or None when no cell is missing."""
    return mask.astype("u1").tobytes() if mask.any() else None


def _pandas_columns(frame: Any) -> list[tuple[str, str, Any, bytes | None]]:
    """A DataFrame's columns as ``Engine.push_columns`` takes them."""
    import numpy as np
    import pandas as pd

    names = [_column_name(n) for n in frame.columns]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        twice = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise ValueError(f"column `{twice}` appears twice: an event has one value per field")
    columns: list[tuple[str, str, Any, bytes | None]] = []
    for at, name in enumerate(names):
        series = frame.iloc[:, at]
        dtype = series.dtype
        kind = getattr(dtype, "kind", "O")
        missing = series.isna().to_numpy(dtype=bool)
        mask = _mask_bytes(missing)
        if pd.api.types.is_bool_dtype(dtype):
            data = series.to_numpy(dtype="u1", na_value=0)
            columns.append((name, "b", data.tobytes(), mask))
        elif kind in "iu" and not (kind == "u" and dtype.itemsize == 8 and
                                   len(series) and series.max() > _INT64_MAX):
            data = series.to_numpy(dtype="<i8", na_value=0)
            columns.append((name, "i", data.tobytes(), mask))
        elif kind == "f":
            data = series.to_numpy(dtype="<f8", na_value=np.nan)
            columns.append((name, "f", data.tobytes(), mask))
        elif kind == "M" or isinstance(dtype, pd.DatetimeTZDtype):
            # a time: integer milliseconds since the epoch (UTC; a naive
            # time is taken as UTC), floored, as the time field wants it
            if isinstance(dtype, pd.DatetimeTZDtype):
                series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            nanos = series.to_numpy(dtype="datetime64[ns]").view("<i8")
            data = np.floor_divide(nanos, 1_000_000)
            columns.append((name, "i", data.astype("<i8").tobytes(), mask))
        else:
            cells = series.to_numpy(dtype=object).tolist()
            columns.append((name, "o", cells, mask))
    return columns


def _arrow_columns(table: Any) -> list[tuple[str, str, Any, bytes | None]]:
    """An Arrow table's (or record batch's) columns as ``Engine.push_columns``
    takes them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    names = [_column_name(n) for n in table.schema.names]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        twice = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise ValueError(f"column `{twice}` appears twice: an event has one value per field")
    columns: list[tuple[str, str, Any, bytes | None]] = []
    for at, name in enumerate(names):
        column = table.column(at)
        kind = column.type
        missing = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        mask = _mask_bytes(missing)
        if pa.types.is_boolean(kind):
            data = np.asarray(column.fill_null(False).to_numpy(zero_copy_only=False), dtype="u1")
            columns.append((name, "b", data.tobytes(), mask))
        elif pa.types.is_integer(kind) and not (
            pa.types.is_uint64(kind) and (pc.max(column).as_py() or 0) > _INT64_MAX
        ):
            data = np.asarray(column.fill_null(0).to_numpy(zero_copy_only=False), dtype="<i8")
            columns.append((name, "i", data.tobytes(), mask))
        elif pa.types.is_floating(kind):
            data = np.asarray(column.fill_null(0).to_numpy(zero_copy_only=False), dtype="<f8")
            columns.append((name, "f", data.tobytes(), mask))
        elif pa.types.is_timestamp(kind):
            per_ms = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}[kind.unit]
            raw = np.asarray(
                column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype="<i8"
            )
            data = raw * 1000 if per_ms is None else np.floor_divide(raw, per_ms)
            columns.append((name, "i", data.astype("<i8").tobytes(), mask))
        else:
            columns.append((name, "o", column.to_pylist(), mask))
    return columns


def _push(engine: Engine, events: Any) -> int:
    """Pushes every event of a list of dicts, a DataFrame (by columns) or an
    Arrow table (by columns)."""
    if _is_pandas(events):
        return engine.push_columns(_pandas_columns(events), len(events))
    if _is_arrow(events):
        return engine.push_columns(_arrow_columns(events), events.num_rows)
    return engine.push_many(_rows(events))


def run(
    rules: str | None = None,
    events: Any = (),
    *,
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
    flat: bool = False,
    **options: Any,
) -> list[dict[str, Any]]:
    """Runs ``rules`` over a whole stream, as ``cepheid run`` does.

    ``events``: dicts (a list, any iterable), a pandas DataFrame or an Arrow
    table, each with its time in the time field (``ts`` unless
    ``time_field=`` says otherwise). ``options`` are :class:`Engine`'s
    (``max_delay_ms``, ``time_field``, ``late``, the limits). Returns every
    record, alerts and decisions in the engine's order, each the dict of the
    JSON record ``cepheid run`` writes; with ``flat=True`` flattened
    (:func:`flatten`), for ``pandas.DataFrame(...)``. The engine works with
    the GIL released, a batch of events at a time.
    """
    engine = Engine(rules, paths=paths, **options)
    _push(engine, events)
    engine.finish()
    records = engine.drain()
    return flatten(records) if flat else records


def flatten(records: Iterable[Mapping[str, Any]], sep: str = ".") -> list[dict[str, Any]]:
    """Each record as a flat dict: nested objects become dotted columns
    (``{"key": {"card": "c1"}}`` -> ``{"key.card": "c1"}``, an empty one
    none); an alert's ``events`` and lists (a decision's ``rules``) stay as
    they are."""

    def into(out: dict[str, Any], prefix: str, value: Mapping[str, Any]) -> None:
        for name, item in value.items():
            column = f"{prefix}{sep}{name}" if prefix else name
            if isinstance(item, Mapping) and name != "events":
                into(out, column, item)  # (an empty one, `"key": {}`, adds none)
            else:
                out[column] = item

    flat: list[dict[str, Any]] = []
    for record in records:
        row: dict[str, Any] = {}
        into(row, "", record)
        flat.append(row)
    return flat


def _pandas() -> Any:
    """pandas, or an ImportError that says what needs it."""
    try:
        import pandas
    except ImportError as e:  # pragma: no cover (the tests have pandas)
        raise ImportError(
            "cepheid: DataFrames need pandas, which is not installed (pip install "
            "pandas); without it, run() gives the records as dicts and flatten() "
            "as flat dicts"
        ) from e
    return pandas


class Frames(NamedTuple):
    """Records as three pandas DataFrames, each row a record flattened
    (:func:`flatten`: ``key.card``, ``rule.score``), in the engine's order."""

    alerts: Any
    """Matches and timeouts (``kind``: ``match`` or ``timeout``)."""
    decisions: Any
    """Decisions (``kind`` ``decision``: ``scene``, ``event``, ``outcome``,
    ``score``, ``rules``, ...)."""
    late: Any
    """Late events (``kind`` ``late``, ``event``)."""


def frames(records: Iterable[Mapping[str, Any]]) -> Frames:
    """Records (``run()``'s, ``Engine.drain()``'s) as DataFrames: alerts,
    decisions and late events apart, each flattened. Raises ImportError
    when pandas is not installed."""
    pd = _pandas()
    alerts: list[Mapping[str, Any]] = []
    decisions: list[Mapping[str, Any]] = []
    late: list[Mapping[str, Any]] = []
    for record in records:
        kind = record.get("kind")
        if kind == "decision":
            decisions.append(record)
        elif kind == "late":
            late.append(record)
        else:
            alerts.append(record)
    return Frames(
        pd.DataFrame(flatten(alerts)),
        pd.DataFrame(flatten(decisions)),
        pd.DataFrame(flatten(late)),
    )


class Backtest(NamedTuple):
    """What :func:`backtest` gives: the records as DataFrames and the
    summary's counts."""

    alerts: Any
    """Matches and timeouts, flattened (a pandas DataFrame)."""
    decisions: Any
    """Decisions, flattened (a pandas DataFrame)."""
    late: Any
    """Late events (a pandas DataFrame)."""
    summary: dict[str, Any]
    """The counts: ``events``, ``late``, ``matches``, ``timeouts``,
    ``decisions`` (the engine's), and ``patterns``: per pattern, as
    ``cepheid backtest --json`` has them, ``pattern``, ``alerts``
    (matches), ``keys`` (distinct keys of its alerts), ``timeouts``,
    ``delay_ms`` (``min``, ``median``, ``p95``, ``max``: from an alert's
    first event to its last; ``None`` without alerts); ``outcomes``: per
    scene, how many decisions of each outcome."""


def _nearest_rank(ordered: list[int], q: float) -> int:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _summary(engine: Engine, records: list[dict[str, Any]]) -> dict[str, Any]:
    stats = engine.stats()
    per: dict[str, dict[str, Any]] = {
        name: {"alerts": 0, "keys": set(), "timeouts": 0, "delays": []}
        for name in engine.patterns()
    }
    outcomes: dict[str, dict[str, int]] = {}
    for record in records:
        kind = record.get("kind")
        if kind == "match" or kind == "timeout":
            one = per.setdefault(
                record["pattern"], {"alerts": 0, "keys": set(), "timeouts": 0, "delays": []}
            )
            if kind == "timeout":
                one["timeouts"] += 1
            else:
                one["alerts"] += 1
                key = record.get("key") or {}
                one["keys"].add(tuple(sorted((k, repr(v)) for k, v in key.items())))
                one["delays"].append(record["end"] - record["start"])
        elif kind == "decision":
            scene = outcomes.setdefault(record["scene"], {})
            scene[record["outcome"]] = scene.get(record["outcome"], 0) + 1
    patterns = []
    for name, one in per.items():
        delays = sorted(one["delays"])
        patterns.append(
            {
                "pattern": name,
                "alerts": one["alerts"],
                "keys": len(one["keys"]),
                "timeouts": one["timeouts"],
                "delay_ms": None
                if not delays
                else {
                    "min": delays[0],
                    "median": _nearest_rank(delays, 0.5),
                    "p95": _nearest_rank(delays, 0.95),
                    "max": delays[-1],
                },
            }
        )
    decided = stats.get("decisions") or {}
    return {
        "events": stats.get("events"),
        "late": stats.get("late"),
        "matches": stats.get("matches"),
        "timeouts": stats.get("timeouts"),
        "decisions": decided.get("decisions", sum(sum(o.values()) for o in outcomes.values())),
        "patterns": patterns,
        "outcomes": outcomes,
    }


def backtest(
    rules: str | None = None,
    events: Any = (),
    *,
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
    **options: Any,
) -> Backtest:
    """What ``rules`` would have raised over past ``events`` (a list of
    dicts, a pandas DataFrame or an Arrow table, taken by columns): the run
    of :func:`run`, its records as DataFrames (:func:`frames`) and the
    counts per pattern of ``cepheid backtest`` (:class:`Backtest`).
    ``options`` are :class:`Engine`'s. Raises ImportError without pandas
    (before running anything)."""
    _pandas()
    engine = Engine(rules, paths=paths, **options)
    _push(engine, events)
    engine.finish()
    records = engine.drain()
    alerts, decisions, late = frames(records)
    return Backtest(alerts, decisions, late, _summary(engine, records))
