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
from typing import Any, Iterable, Mapping

from ._cepheid import Engine, PatternError, __version__, check

__all__ = ["Engine", "PatternError", "check", "run", "flatten", "__version__"]


def _rows(events: Any) -> Iterable[Mapping[str, Any]]:
    """The events of a list of dicts, a DataFrame or an Arrow table."""
    if isinstance(events, (str, bytes, os.PathLike)):
        raise TypeError(
            "events must be an iterable of dicts (a DataFrame or an Arrow table "
            "too), not a path: read the file's lines with json.loads"
        )
    if hasattr(events, "to_dict") and hasattr(events, "columns"):
        # a pandas DataFrame: its rows as dicts
        return events.to_dict("records")
    if hasattr(events, "to_pylist") and hasattr(events, "schema"):
        # a pyarrow Table or RecordBatch
        return events.to_pylist()
    return events


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
    engine.push_many(_rows(events))
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
