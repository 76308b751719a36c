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
import gc
import json
import math
import tempfile
from typing import Any, Iterable, Mapping, NamedTuple

from ._cepheid import Engine, PatternError, __version__, check, events_jsonl, why_json

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
    "why",
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
    return Frames(_frame(pd, alerts), _frame(pd, decisions), _frame(pd, late))


def _frame(pd: Any, records: list[Mapping[str, Any]]) -> Any:
    """Records flattened as one DataFrame: a column per field in the order
    they first appear, ``None`` where a record has none (as
    ``Engine.drain_columns`` gives them, so that both make one frame)."""
    columns: dict[str, list[Any]] = {}
    for row, record in enumerate(flatten(records)):
        for name, value in record.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * len(records)
            column[row] = value
    return pd.DataFrame(columns)


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


def _nearest_rank(ordered: Any, q: float) -> int:
    return int(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def _summary(engine: Engine, alerts: Any, decisions: Any) -> dict[str, Any]:
    """The counts of a backtest, from its DataFrames (as ``cepheid
    backtest --json`` counts them)."""
    import numpy as np

    stats = engine.stats()
    names = list(engine.patterns())
    groups: dict[str, Any] = {}
    if len(alerts):
        for name in alerts["pattern"].unique():
            if name not in names:
                names.append(name)
        groups = dict(tuple(alerts.groupby("pattern", sort=False)))
    patterns = []
    for name in names:
        group = groups.get(name)
        matches = None if group is None else group[group["kind"] == "match"]
        alerts_n = 0 if matches is None else len(matches)
        timeouts = 0 if group is None else int((group["kind"] == "timeout").sum())
        keys = 0
        delay = None
        if alerts_n:
            key_columns = [c for c in matches.columns if c.startswith("key.")]
            fields = matches[key_columns].dropna(axis=1, how="all")
            keys = len(fields.drop_duplicates()) if fields.shape[1] else 1
            delays = np.sort((matches["end"] - matches["start"]).to_numpy())
            delay = {
                "min": int(delays[0]),
                "median": _nearest_rank(delays, 0.5),
                "p95": _nearest_rank(delays, 0.95),
                "max": int(delays[-1]),
            }
        patterns.append(
            {"pattern": name, "alerts": alerts_n, "keys": keys, "timeouts": timeouts,
             "delay_ms": delay}
        )
    outcomes: dict[str, dict[str, int]] = {}
    if len(decisions):
        for (scene, outcome), n in decisions.groupby(["scene", "outcome"], sort=False).size().items():
            outcomes.setdefault(scene, {})[outcome] = int(n)
    decided = stats.get("decisions") or {}
    return {
        "events": stats.get("events"),
        "late": stats.get("late"),
        "matches": stats.get("matches"),
        "timeouts": stats.get("timeouts"),
        "decisions": decided.get("decisions", len(decisions)),
        "patterns": patterns,
        "outcomes": outcomes,
    }


def _columns_frame(pd: Any, names: list[str], columns: list[Any]) -> Any:
    """A DataFrame of ``Engine.drain_columns``'s columns: the bytes of
    ``int64``s (a column of integers in every row) or a list of cells."""
    import numpy as np

    data: dict[str, Any] = {}
    for name, column in zip(names, columns):
        if isinstance(column, bytes):
            data[name] = np.frombuffer(column, dtype="<i8")
        else:
            data[name] = column
    return pd.DataFrame(data)


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
    pd = _pandas()
    engine = Engine(rules, paths=paths, **options)
    _push(engine, events)
    engine.finish()
    # (the records read into columns in Rust: no dict per record; the
    # same DataFrames frames() makes of run()'s records, a test says)
    # The cyclic garbage collector off while the cells are made: hundreds
    # of thousands of new objects, none of them garbage, would have it run
    # again and again over them (Lines::to_dicts does the same).
    was_on = gc.isenabled()
    gc.disable()
    try:
        alerts, decisions, late = (
            _columns_frame(pd, names, columns) for names, columns in engine.drain_columns()
        )
    finally:
        if was_on:
            gc.enable()
    return Backtest(alerts, decisions, late, _summary(engine, alerts, decisions))


def why(
    rules: str | None = None,
    key: Any = None,
    events: Any = (),
    *,
    paths: str | os.PathLike[str] | None = None,
    time_field: str = "ts",
    max_delay_ms: int = 0,
    no_events: bool = False,
    from_ms: int | None = None,
    to_ms: int | None = None,
    patterns: Iterable[str] | None = None,
) -> dict[str, Any]:
    """For one key, what each pattern did with its events: ``cepheid why
    RULES KEY --events FILE --json`` (``docs/rule-lab.md``) as a dict.

    ``rules``: text, or ``paths``: a ``.cep`` file or a folder. ``key``: its
    value (``"u-7"``, ``42``) or a dict of the key's fields. ``events``: a
    list of dicts, a pandas DataFrame or an Arrow table (taken as
    :func:`run` takes them). The rules run over every event; the report is
    the key's: the events that reached each pattern, the partial matches
    and what ended each, the late events. ``from_ms``/``to_ms`` narrow it
    to a time range, ``patterns`` to some patterns, ``no_events`` leaves
    the events' values out. Raises ValueError for rules that do not load
    or a key the rules cannot read (the lab's message)."""
    if (rules is None) == (paths is None):
        raise ValueError("give the rules as text (`rules`) or as files (`paths`), one of them")
    if key is None:
        raise ValueError("give the key (its value, or a dict of its fields)")
    key_text = json.dumps(key) if isinstance(key, (dict, list)) else str(key)
    if isinstance(key, bool):
        key_text = "true" if key else "false"
    if _is_pandas(events):
        text = events_jsonl(_pandas_columns(events), len(events))
    elif _is_arrow(events):
        text = events_jsonl(_arrow_columns(events), events.num_rows)
    else:
        text = events_jsonl(_rows(events))
    with tempfile.TemporaryDirectory(prefix="cepheid-why-") as folder:
        events_path = os.path.join(folder, "events.jsonl")
        with open(events_path, "wb") as f:
            f.write(text)
        if rules is not None:
            rules_path = os.path.join(folder, "rules.cep")
            with open(rules_path, "w", encoding="utf-8") as f:
                f.write(rules)
        else:
            rules_path = os.fspath(paths)  # type: ignore[arg-type]
        report = why_json(
            rules_path,
            key_text,
            events_path,
            time_field=time_field,
            max_delay_ms=max_delay_ms,
            no_events=no_events,
            from_ms=from_ms,
            to_ms=to_ms,
            patterns=None if patterns is None else list(patterns),
        )
    result: dict[str, Any] = json.loads(report)
    return result
