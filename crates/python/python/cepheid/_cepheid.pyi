"""Type stubs of the extension module ``cepheid._cepheid`` (Rust, pyo3)."""

import os
from typing import Any, Iterable, Mapping, Sequence, final

__version__: str

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
"""A path, or a list of paths (files, or folders of ``*.cep`` files)."""

Position = None | bool | int | float | str | Sequence[Any]
"""An event's input position: a JSON scalar or a list of them."""

Record = dict[str, Any]
"""A record of ``cepheid run``, as a dict: ``kind`` is ``"match"``,
``"timeout"``, ``"late"`` or ``"decision"``."""

class PatternError(ValueError):
    """Rules that do not load (syntax, unknown names, the language's rules,
    the automaton's limits). ``str(e)`` is every problem, each
    ``path:line:column: message`` with the offending text underlined."""

    diagnostics: list[dict[str, Any]]
    """One dict per problem: ``path``, ``line``, ``column`` (``None`` when
    the problem has no place), ``message``."""

def check(
    rules: str | None = None, *, paths: PathArg | None = None, origin: str = "<rules>"
) -> str:
    """Loads and checks rules without running them. Raises
    :exc:`PatternError` when they do not load; returns their warnings,
    rendered (``""`` when none)."""

def why_json(
    rules: str | os.PathLike[str],
    key: str,
    events: str | os.PathLike[str],
    *,
    time_field: str = "ts",
    max_delay_ms: int = 0,
    no_events: bool = False,
    from_ms: int | None = None,
    to_ms: int | None = None,
    patterns: list[str] | None = None,
) -> str:
    """The rule lab's ``why`` (``cepheid why RULES KEY --events FILE
    --json``): its JSON document. ``cepheid.why`` is the one to call."""

def events_jsonl(events: Any, rows: int | None = None) -> bytes:
    """Events as JSON lines: an iterable of dicts, or with ``rows`` a
    table's columns as ``Engine.push_columns`` takes them."""

@final
class Engine:
    """One engine: rules from ``.cep`` text (``rules``, named ``origin`` in
    messages) or files (``paths``), events pushed one by one or in batches,
    records drained.

    ``max_delay_ms``: bounded out-of-orderness (an event more than this
    behind the largest time seen is late; ``cepheid run --max-delay``).
    ``time_field``: where events carry their time (integer milliseconds or
    an RFC 3339 string), ``ts`` by default (``--time-field``). ``late``:
    keep late events' records (``{"kind": "late", "event": ...}``).
    ``max_runs_per_key``, ``max_live_runs``, ``max_waiting_events``: the
    engine's limits (``cepheid run``'s options of the same names).
    Raises :exc:`PatternError` when the rules do not load.

    One thread at a time: a call from another thread waits for the one
    under way (the engine works with the GIL released in ``push_many``,
    ``watermark``, ``tick`` and ``finish``).
    """

    def __init__(
        self,
        rules: str | None = None,
        *,
        paths: PathArg | None = None,
        origin: str = "<rules>",
        max_delay_ms: int = 0,
        time_field: str = "ts",
        late: bool = True,
        max_runs_per_key: int | None = None,
        max_live_runs: int | None = None,
        max_waiting_events: int | None = None,
    ) -> None: ...
    def push(
        self, event: Mapping[str, Any], ts: int | None = None, position: Position = None
    ) -> None:
        """Pushes one event (a dict with string keys and JSON values: None,
        bool, int within 64 bits, finite float, str, list, tuple, dict;
        NumPy scalars are taken as their Python values). Its time is ``ts``
        when given, else its time field's. ``{"$watermark": T}`` is a
        watermark, as the line is to ``cepheid run``. ``position`` names
        its decisions when its scene has no ``id`` field (by default the
        engine numbers its pushes from 1). Raises ``TypeError`` /
        ``ValueError`` naming the field for a value JSON cannot hold,
        ``ValueError`` for an event without a (valid) time."""
    def push_line(self, line: str | bytes, position: Position = None) -> None:
        """Pushes one line of JSON lines exactly as ``cepheid run`` reads
        it (its text kept byte for byte in the records)."""
    def push_many(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Pushes every event of an iterable, in order, at its time field's
        time, with the GIL released while the engine works. Returns how many
        were pushed; an event that fails raises, naming its index (those
        before it are pushed)."""
    def push_columns(
        self, columns: Sequence[tuple[str, str, Any, bytes | None]], rows: int
    ) -> int:
        """Pushes the ``rows`` rows of a table given by columns, in order, at
        their time field's time (what :func:`cepheid.run` does with a pandas
        DataFrame or an Arrow table). Each column is ``(name, kind, data,
        mask)``: ``kind`` ``"i"`` (``data`` the bytes of little-endian
        ``int64``), ``"f"`` (``float64``; NaN is a missing cell), ``"b"``
        (one byte a row) or ``"o"`` (a list of the cells, any values an
        event holds; ``None`` and NaN missing); ``mask`` ``None`` or one
        byte a row, not 0 for a missing cell. A row is the event of its
        present cells (a missing one is an absent field), the same event
        the dict of those cells is to ``push_many``. Returns how many rows
        were pushed; a bad cell raises ``TypeError``/``ValueError`` naming
        its column and row (0-based), the rows before it pushed."""
    def watermark(self, t: int) -> None:
        """Moves the watermark to ``t`` (never backwards)."""
    def tick(self, now: int) -> None:
        """Processing time: the clock reads ``now``; time moves to just
        before it."""
    def finish(self) -> None:
        """The end of the input (as ``cepheid run`` ends): every waiting
        event is processed and time goes to the largest event time seen, so
        the windows that closed by then expire; later ones stay open (to
        close them all: ``watermark(2**63 - 1)``)."""
    def decide(
        self, event: Mapping[str, Any], now: int | None = None, position: Position = None
    ) -> list[Record]:
        """Decides one event at once (processing time ``now``, default its
        time field's): its decisions, one per scene it enters, each the dict
        of ``docs/decisions.md``'s record. Its alerts go to ``drain()``."""
    def dry_run(
        self, event: Mapping[str, Any], now: int | None = None, position: Position = None
    ) -> list[Record]:
        """What ``decide`` would return, changing nothing."""
    def drain(self) -> list[Record]:
        """The records since the last drain: alerts and decisions in the
        engine's order (a shadow pattern's are ``drain_shadow()``'s)."""
    def drain_columns(self) -> list[tuple[list[str], list[bytes | list[Any]]]]:
        """``drain()`` as the columns of three tables: alerts (matches and
        timeouts), decisions, late events; each ``(names, columns)``, a
        row per record flattened as :func:`cepheid.flatten` does (``None``
        where a record has no such field), a column the bytes of
        little-endian ``int64`` when every row has an integer there, else
        a list of its cells. What :func:`cepheid.backtest` makes its
        DataFrames of."""
    def drain_lines(self) -> list[str]:
        """``drain()`` as the JSON lines ``cepheid run`` writes."""
    def drain_shadow(self) -> list[Record]:
        """The records of ``shadow`` patterns since the last call."""
    def pending(self) -> int:
        """How many records ``drain()`` would return now."""
    def scenes(self) -> list[dict[str, Any]]:
        """The scenes in force: ``name``, ``outcomes`` (mildest first),
        ``default``, ``fallback``, ``late``, ``deadline_ms``, ``hit``,
        ``rules`` (as the decision service's ``GET /v1/scenes``)."""
    def patterns(self) -> list[str]:
        """The names of the patterns in force."""
    @property
    def current_watermark(self) -> int | None:
        """The watermark, or ``None`` before any."""
    @property
    def time_field(self) -> str:
        """The field events carry their time in."""
    def stats(self) -> dict[str, Any]:
        """The engine's counts (events, late, matches, timeouts, ...;
        ``decisions``) and what it holds (``live_keys``, ``live_runs``,
        ``waiting_events``)."""
    def add_to_list(
        self, name: str, value: Position, at: int, lifetime_ms: int | None = None
    ) -> None:
        """Adds ``value`` to the list ``name`` at event time ``at``."""
    def remove_from_list(self, name: str, value: Position, at: int) -> None:
        """Removes ``value`` from the list ``name`` at event time ``at``."""
    def snapshot(self) -> bytes:
        """The engine's whole state (records not drained are not in it)."""
    @staticmethod
    def restore(
        snapshot: bytes,
        rules: str | None = None,
        *,
        paths: PathArg | None = None,
        origin: str = "<rules>",
        time_field: str = "ts",
        late: bool = True,
    ) -> Engine:
        """A new engine in the snapshot's state, running the rules given
        (those in force when it was taken; they hold its scenes), or
        without them the snapshot's own patterns (no scenes). Raises
        ``ValueError`` for bytes that are no snapshot of these rules."""
