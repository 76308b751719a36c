"""DataFrames and Arrow tables in, DataFrames out (issue 64): a table is
taken by columns (`Engine.push_columns`), and gives the records its rows
give as dicts (`push_many`) on the sample streams, with missing values,
mixed types and times; `frames()` and `backtest()` give the records as
DataFrames; a bad cell is an error naming its column and row."""

import math
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cepheid

from support import RISK, SAMPLE, binary, events, patterns_folder

RISK_RULES = [RISK / "rules.cep", RISK / "scenes.cep"]

SELECT_ALL = """
pattern every {
    partition by card
    match e
    where e: ts >= 0
}"""


def missing(value):
    """Is a cell missing (NaN, None, NaT, pd.NA)? A list or dict is not."""
    if isinstance(value, (list, tuple, dict)):
        return False
    return value is None or bool(pd.isna(value))


def row_dicts(frame):
    """The row path's events for a DataFrame: each row as a dict of its
    present cells, a time (datetime) as integer milliseconds, NumPy
    scalars as they are (push_many takes them)."""
    rows = []
    for row in frame.to_dict("records"):
        event = {}
        for name, value in row.items():
            if missing(value):
                continue
            if isinstance(value, pd.Timestamp):
                value = value.value // 1_000_000 if value.tz is None else (
                    value.tz_convert("UTC").value // 1_000_000)
            event[name] = value
        rows.append(event)
    return rows


def by_rows(rules=None, rows=(), **options):
    engine = cepheid.Engine(rules, **options)
    engine.push_many(rows)
    engine.finish()
    return engine.drain()


STREAMS = [
    ("sample", SAMPLE, {"paths": patterns_folder()}),
    ("risk", RISK / "events.jsonl", {"paths": [RISK / "rules.cep"], "max_delay_ms": 1000}),
    ("risk-scenes", RISK / "scene-events.jsonl", {"paths": RISK_RULES, "max_delay_ms": 1000}),
]


@pytest.mark.parametrize("name,path,options", STREAMS, ids=[s[0] for s in STREAMS])
def test_a_frame_by_columns_gives_what_its_rows_give(name, path, options):
    stream = events(path)
    frame = pd.DataFrame(stream)
    got = cepheid.run(events=frame, **options)
    want = by_rows(rows=row_dicts(frame), **options)
    assert got == want
    assert len(got) > 0


@pytest.mark.parametrize("name,path,options", STREAMS, ids=[s[0] for s in STREAMS])
def test_an_object_frame_gives_what_the_events_give(name, path, options):
    # (dtype=object keeps each value as it was: 42 stays an int where the
    # column also holds floats, and missing cells are absent fields)
    stream = events(path)
    frame = pd.DataFrame(stream, dtype=object)
    assert cepheid.run(events=frame, **options) == cepheid.run(events=stream, **options)


@pytest.mark.parametrize("name,path,options", STREAMS, ids=[s[0] for s in STREAMS])
def test_an_arrow_table_gives_what_its_rows_give(name, path, options):
    stream = events(path)
    table = pa.Table.from_pandas(pd.DataFrame(stream), preserve_index=False)
    rows = [{k: v for k, v in row.items() if v is not None and not (
        isinstance(v, float) and math.isnan(v))} for row in table.to_pylist()]
    assert cepheid.run(events=table, **options) == by_rows(rows=rows, **options)
    assert cepheid.run(events=table.to_batches()[0], **options) == by_rows(rows=rows, **options)


def test_missing_values_mixed_types_and_times():
    frame = pd.DataFrame({
        "ts": [1000, 2000, 3000, 4000],
        "card": ["c1", None, "c1", "c2"],
        "amount": [1.5, float("nan"), 3.0, -0.25],
        "n": pd.array([1, None, 3, -4], dtype="Int64"),
        "flag": [True, False, True, False],
        "maybe": pd.array([True, None, False, True], dtype="boolean"),
        "mixed": [1, "a", 2.5, [1, {"x": None}]],
        "when": pd.to_datetime([1_000, 2_500, None, 4_999], unit="ms"),
        "small": np.array([1, 2, 3, 4], dtype=np.int8),
        "big": np.array([0, 1, 2**63 - 1, 5], dtype=np.uint64),
        "f32": np.array([0.5, 1.25, np.nan, 2.0], dtype=np.float32),
        "label": pd.Categorical(["a", "b", None, "a"]),
        "text": pd.array(["x", None, "z", "é\n\"q\""], dtype="string"),
    })
    want_rows = [
        {"ts": 1000, "card": "c1", "amount": 1.5, "n": 1, "flag": True, "maybe": True,
         "mixed": 1, "when": 1000, "small": 1, "big": 0, "f32": 0.5, "label": "a", "text": "x"},
        {"ts": 2000, "n": None, "flag": False, "mixed": "a", "when": 2500, "small": 2,
         "big": 1, "f32": 1.25, "label": "b"},
        {"ts": 3000, "card": "c1", "amount": 3.0, "n": 3, "flag": True, "maybe": False,
         "mixed": 2.5, "small": 3, "big": 2**63 - 1, "text": "z"},
        {"ts": 4000, "card": "c2", "amount": -0.25, "n": -4, "flag": False, "maybe": True,
         "mixed": [1, {"x": None}], "when": 4999, "small": 4, "big": 5, "f32": 2.0,
         "label": "a", "text": "é\n\"q\""},
    ]
    del want_rows[1]["n"]  # (missing: an absent field, not null)
    got = cepheid.run(SELECT_ALL, events=frame)
    want = cepheid.run(SELECT_ALL, events=want_rows)
    assert got == want
    # the event of row 1 has no card: the pattern partitioned by card
    # leaves it out; the others' records carry their events as written
    assert [r["events"]["e"][0] for r in got if r["kind"] == "match"] == [
        want_rows[0], want_rows[2], want_rows[3]]
    # and an Arrow table of the same (but `mixed`: an Arrow column has one type)
    table = pa.Table.from_pandas(frame.drop(columns=["mixed"]), preserve_index=False)
    for row in want_rows:
        del row["mixed"]
    assert cepheid.run(SELECT_ALL, events=table) == cepheid.run(SELECT_ALL, events=want_rows)


def test_a_datetime_column_is_the_time_in_milliseconds():
    AT = SELECT_ALL.replace("ts >= 0", "at >= 0")
    times = pd.to_datetime(["2024-05-01T10:00:00.0019Z", "2024-05-01T10:00:01Z"], utc=True,
                           format="ISO8601")
    frame = pd.DataFrame({"at": times.tz_convert("Europe/Paris"), "card": ["c", "c"]})
    got = cepheid.run(AT, events=frame, time_field="at")
    ms = 1714557600000
    assert [r["start"] for r in got] == [ms + 1, ms + 1000]
    naive = pd.DataFrame({"at": times.tz_localize(None), "card": ["c", "c"]})
    assert cepheid.run(AT, events=naive, time_field="at") == got
    arrow = pa.table({"at": pa.array([ms * 1000 + 1999, ms * 1000 + 1_000_000],
                                     pa.timestamp("us", tz="UTC")), "card": ["c", "c"]})
    assert cepheid.run(AT, events=arrow, time_field="at") == got
    seconds = pa.table({"at": pa.array([ms // 1000], pa.timestamp("s")), "card": ["c"]})
    assert [r["start"] for r in cepheid.run(AT, events=seconds, time_field="at")] == [ms]


def test_an_empty_frame():
    empty = pd.DataFrame({"ts": pd.Series([], dtype="int64"), "card": pd.Series([], dtype=object)})
    assert cepheid.run(SELECT_ALL, events=empty) == []
    assert cepheid.run(SELECT_ALL, events=pd.DataFrame()) == []
    assert cepheid.run(SELECT_ALL, events=pa.table({"ts": pa.array([], pa.int64())})) == []
    result = cepheid.backtest(SELECT_ALL, events=empty)
    assert (len(result.alerts), len(result.decisions), len(result.late)) == (0, 0, 0)
    assert result.summary["events"] == 0
    assert result.summary["patterns"] == [
        {"pattern": "every", "alerts": 0, "keys": 0, "timeouts": 0, "delay_ms": None}]


@pytest.mark.parametrize("cells,kind,says", [
    ([1, 2, {3}], TypeError, "column `bad`, row 2: a set is not a JSON value"),
    ([1, {"a": [0, object()]}, 3], TypeError, "column `bad`, row 1, field `a[1]`: a object"),
    ([1, 2**70, 3], ValueError, "column `bad`, row 1: 1180591620717411303424 does not fit in 64 bits"),
    (np.array([1.0, np.inf, 2.0]), ValueError, "column `bad`, row 1: inf is not a JSON number"),
    (np.array([1, 2**64 - 1, 3], dtype=np.uint64), ValueError, "column `bad`, row 1:"),
    ([1, "\ud800", 3], ValueError, "column `bad`, row 1: not valid Unicode"),
    (pd.to_timedelta([1, 2, 3], unit="s"), TypeError, "column `bad`, row 0: a Timedelta"),
])
def test_a_bad_cell_names_its_column_and_row(cells, kind, says):
    frame = pd.DataFrame({"ts": [1, 2, 3], "card": ["c", "c", "c"], "bad": cells})
    engine = cepheid.Engine(SELECT_ALL)
    with pytest.raises(kind) as raised:
        engine.push_columns(cepheid._pandas_columns(frame), len(frame))
    assert says in str(raised.value)
    # the rows before it were pushed
    engine.finish()
    before = int(str(raised.value).split("row ")[1].split(":")[0].split(",")[0])
    assert len(engine.drain()) == before
    with pytest.raises(kind):
        cepheid.run(SELECT_ALL, events=frame)


def test_a_row_without_its_time_names_its_row():
    frame = pd.DataFrame({"ts": [1.0, None, 3.0], "card": ["c", "c", "c"]})
    with pytest.raises(ValueError, match=r"^row 1: "):
        cepheid.run(SELECT_ALL, events=frame)


def test_column_names_must_be_strings_and_once():
    with pytest.raises(TypeError, match="column's name must be a string"):
        cepheid.run(SELECT_ALL, events=pd.DataFrame({0: [1], "card": ["c"]}))
    twice = pd.DataFrame([[1, "c", 2]], columns=["ts", "card", "ts"])
    with pytest.raises(ValueError, match="column `ts` appears twice"):
        cepheid.run(SELECT_ALL, events=twice)


def test_push_columns_refuses_what_is_no_column():
    engine = cepheid.Engine(SELECT_ALL)
    with pytest.raises(ValueError, match="bytes for 2 rows"):
        engine.push_columns([("ts", "i", b"\0" * 8, None)], 2)
    with pytest.raises(ValueError, match="unknown kind"):
        engine.push_columns([("ts", "q", b"", None)], 0)
    with pytest.raises(TypeError, match="tuple"):
        engine.push_columns([("ts", "i")], 0)
    with pytest.raises(ValueError, match="cells for 2 rows"):
        engine.push_columns([("ts", "o", [1], None)], 2)
    with pytest.raises(ValueError, match="bytes for 1 rows"):
        engine.push_columns([("ts", "o", [1], b"\0\0")], 1)


def test_frames_are_the_records_flattened():
    stream = events(RISK / "scene-events.jsonl")
    records = cepheid.run(paths=RISK_RULES, events=stream, max_delay_ms=1000)
    alerts, decisions, late = cepheid.frames(records)
    assert isinstance(alerts, pd.DataFrame)
    flat = cepheid.flatten(records)
    want_alerts = [r for r in flat if r["kind"] in ("match", "timeout")]
    want_decisions = [r for r in flat if r["kind"] == "decision"]
    assert len(alerts) == len(want_alerts) > 0
    assert len(decisions) == len(want_decisions) == 10
    assert len(late) == sum(r["kind"] == "late" for r in records) == 1
    for frame, want in ((alerts, want_alerts), (decisions, want_decisions)):
        assert set(frame.columns) == {c for r in want for c in r}
        for got, row in zip(frame.to_dict("records"), want):
            assert {k: v for k, v in got.items() if k in row} == row


def test_backtest_gives_frames_and_the_counts():
    stream = events(RISK / "scene-events.jsonl")
    frame = pd.DataFrame(stream)
    result = cepheid.backtest(paths=RISK_RULES, events=frame, max_delay_ms=1000)
    records = cepheid.run(paths=RISK_RULES, events=frame, max_delay_ms=1000)
    want = cepheid.frames(records)
    pd.testing.assert_frame_equal(result.alerts, want.alerts)
    pd.testing.assert_frame_equal(result.decisions, want.decisions)
    summary = result.summary
    matches = [r for r in records if r["kind"] == "match"]
    assert summary["events"] == len(stream)
    assert summary["matches"] == len(matches)
    assert summary["decisions"] == 10
    assert sum(p["alerts"] for p in summary["patterns"]) == len(matches)
    assert sum(sum(o.values()) for o in summary["outcomes"].values()) == 10
    assert [p["pattern"] for p in summary["patterns"]] == cepheid.Engine(
        paths=RISK_RULES).patterns()


@pytest.mark.skipif(binary() is None, reason="no cepheid binary built")
def test_backtest_counts_are_the_commands(tmp_path):
    import json
    import subprocess

    out = subprocess.run(
        [str(binary()), "backtest", str(RISK / "rules.cep"), "--events",
         str(RISK / "events.jsonl"), "--json"],
        capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    frame = pd.DataFrame(events(RISK / "events.jsonl"))
    result = cepheid.backtest(paths=RISK / "rules.cep", events=frame)
    want = [{k: p[k] for k in ("pattern", "alerts", "keys", "timeouts", "delay_ms")}
            for p in report["patterns"]]
    got = [dict(p, delay_ms=p["delay_ms"] or {"min": 0, "median": 0, "p95": 0, "max": 0})
           for p in result.summary["patterns"]]
    assert sorted(got, key=lambda p: p["pattern"]) == sorted(want, key=lambda p: p["pattern"])


def test_without_pandas_frames_say_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="DataFrames need pandas"):
        cepheid.frames([])
    with pytest.raises(ImportError, match="DataFrames need pandas"):
        cepheid.backtest(SELECT_ALL, events=[])
    # and the records as dicts still come without it
    assert cepheid.run(SELECT_ALL, events=[{"ts": 1, "card": "c"}])[0]["kind"] == "match"


@pytest.mark.skipif(binary() is None, reason="no cepheid binary built")
def test_why_is_the_labs_report_as_a_structure():
    import json
    import subprocess

    brute = RISK.parent / "brute_force.cep"
    out = subprocess.run(
        [str(binary()), "why", str(brute), "u-9", "--events", str(SAMPLE), "--json"],
        capture_output=True, text=True, check=True)
    want = json.loads(out.stdout)
    stream = events(SAMPLE)
    for given in (stream, pd.DataFrame(stream, dtype=object)):
        got = cepheid.why(paths=brute, key="u-9", events=given)
        # (the report names the events' file: here a temporary one)
        for report in (got, want):
            report.pop("events", None)
        assert got == want
    text = brute.read_text()
    by_text = cepheid.why(text, "u-9", stream)
    assert by_text["patterns"] == want["patterns"]


def test_why_without_a_binary_and_its_errors():
    stream = [{"ts": 1, "card": "c", "amount": 5}, {"ts": 2, "card": "c", "amount": 7}]
    report = cepheid.why(SELECT_ALL, "c", pd.DataFrame(stream))
    assert isinstance(report, dict) and report["patterns"]
    assert "c" in json_text(report)
    with pytest.raises(ValueError):
        cepheid.why("pattern { nope", "c", stream)
    with pytest.raises(ValueError, match="one of them"):
        cepheid.why(SELECT_ALL, "c", stream, paths="x.cep")
    with pytest.raises(TypeError, match="column `bad`, row 1"):
        cepheid.why(SELECT_ALL, "c", pd.DataFrame({"ts": [1, 2], "bad": [1, {2}]}))


def json_text(value):
    import json

    return json.dumps(value)


@pytest.mark.parametrize("name,path,options", STREAMS, ids=[s[0] for s in STREAMS])
def test_backtest_frames_are_frames_of_the_records(name, path, options):
    # (backtest reads the records into columns in Rust, integers as NumPy
    # arrays while every row has one; frames() flattens the dicts)
    frame = pd.DataFrame(events(path))
    result = cepheid.backtest(events=frame, **options)
    want = cepheid.frames(cepheid.run(events=frame, **options))
    for got, expected in zip(result[:3], want):
        pd.testing.assert_frame_equal(got, expected)


def test_drain_columns_gives_integers_as_bytes_while_every_row_has_one():
    engine = cepheid.Engine(SELECT_ALL)
    engine.push_many([
        {"ts": 1, "card": "c", "n": 1},
        {"ts": 2, "card": "c", "n": "two"},
        {"ts": 3, "card": "d"},
    ])
    engine.finish()
    (names, columns), decisions, late = engine.drain_columns()
    got = dict(zip(names, columns))
    assert isinstance(got["start"], bytes)
    assert np.frombuffer(got["start"], dtype="<i8").tolist() == [1, 2, 3]
    assert got["kind"] == ["match"] * 3
    assert got["key.card"] == ["c", "c", "d"]
    assert [e["e"][0].get("n") for e in got["events"]] == [1, "two", None]
    assert decisions == ([], []) and late == ([], [])
