"""The API of `cepheid.Engine`: decide and dry_run, snapshots, scenes,
errors as Python exceptions, and no input that crashes the interpreter."""

import json
import threading
import unittest

import cepheid

from support import RISK, events, lines

RISK_RULES = [RISK / "rules.cep", RISK / "scenes.cep"]
SCENE_EVENTS = events(RISK / "scene-events.jsonl")

AB = """
pattern ab {
    partition by user
    within 10s
    timeouts
    match a followed by b
    where a: type == "a"
          b: type == "b"
}"""


class Decide(unittest.TestCase):
    def test_decide_returns_the_events_decisions_at_once(self):
        engine = cepheid.Engine(paths=RISK_RULES)
        got = [engine.decide(e) for e in SCENE_EVENTS[:4]]
        self.assertEqual([len(d) for d in got], [1, 1, 1, 1])
        self.assertEqual(got[3][0]["outcome"], "review")
        self.assertEqual(got[3][0]["rules"][0]["rule"], "payment_velocity")
        # returned, not drained again
        self.assertFalse([r for r in engine.drain() if r["kind"] == "decision"])

    def test_an_event_of_no_scene_gets_no_decision(self):
        engine = cepheid.Engine(paths=RISK_RULES)
        self.assertEqual(engine.decide({"ts": 5, "type": "login", "account": "a"}), [])

    def test_now_is_the_events_time_unless_given(self):
        engine = cepheid.Engine(paths=RISK_RULES)
        (d,) = engine.decide(SCENE_EVENTS[0], now=123_456)
        self.assertEqual(d["ts"], 123_456)
        with self.assertRaisesRegex(ValueError, "no time field `ts`"):
            engine.decide({"type": "payment", "payment_id": "x"})

    def test_dry_run_changes_nothing(self):
        # decide after dry_run gives what decide alone gives, event after
        # event (velocity indicators, a list a rule writes, a late event)
        alone = cepheid.Engine(paths=RISK_RULES)
        tried = cepheid.Engine(paths=RISK_RULES)
        for event in SCENE_EVENTS:
            dry = tried.dry_run(event)
            self.assertEqual(tried.dry_run(event), dry)
            decided = tried.decide(event)
            self.assertEqual(dry, decided)
            self.assertEqual(decided, alone.decide(event))
        self.assertEqual(tried.stats(), alone.stats())
        self.assertEqual(tried.drain(), alone.drain())

    def test_scenes(self):
        scenes = {s["name"]: s for s in cepheid.Engine(paths=RISK_RULES).scenes()}
        self.assertEqual(sorted(scenes), ["coupon", "payment", "sign_up"])
        self.assertEqual(
            scenes["sign_up"],
            {
                "name": "sign_up",
                "outcomes": ["approve", "review", "decline"],
                "default": "review",
                "fallback": "review",
                "late": "review",
                "deadline_ms": 500,
                "hit": "all",
                "rules": ["trusted_phone@sign_up", "new_account_burst@sign_up"],
            },
        )
        self.assertEqual(cepheid.Engine(AB).scenes(), [])


class Stream(unittest.TestCase):
    def test_a_sequence_and_its_timeout(self):
        engine = cepheid.Engine(AB)
        engine.push({"ts": 1, "user": "u1", "type": "a"})
        engine.push({"ts": 2, "user": "u2", "type": "a"})
        engine.push({"ts": 3, "user": "u1", "type": "b"})
        self.assertEqual(engine.drain(), [])  # waiting for the watermark
        engine.watermark(3)
        (match,) = engine.drain()
        self.assertEqual((match["kind"], match["key"], match["start"], match["end"]),
                         ("match", {"user": "u1"}, 1, 3))
        engine.finish()  # time goes to the largest seen: u2's window is open
        self.assertEqual(engine.drain(), [])
        engine.watermark(2**63 - 1)  # every window closes
        (timeout,) = engine.drain()
        self.assertEqual((timeout["kind"], timeout["expired_at"]), ("timeout", 10_002))

    def test_ts_given_and_rfc3339_times(self):
        engine = cepheid.Engine(AB, time_field="at")
        engine.push({"user": "u", "type": "a"}, ts=5)
        engine.push({"user": "u", "type": "b", "at": "1970-01-01T00:00:00.006Z"})
        engine.finish()
        (match,) = engine.drain()
        self.assertEqual((match["start"], match["end"]), (5, 6))
        self.assertEqual(engine.time_field, "at")

    def test_late_events_and_watermark_dicts(self):
        engine = cepheid.Engine(AB)
        engine.push({"ts": 10, "user": "u", "type": "a"})
        engine.push({"$watermark": 100})
        self.assertEqual(engine.current_watermark, 100)
        engine.push({"ts": 50, "user": "u", "type": "b"})
        (late,) = [r for r in engine.drain() if r["kind"] == "late"]
        self.assertEqual(late["event"], {"ts": 50, "user": "u", "type": "b"})
        quiet = cepheid.Engine(AB, late=False)
        quiet.push({"ts": 10, "user": "u", "type": "a"})
        quiet.push({"ts": 5, "user": "u", "type": "a"})
        self.assertEqual(quiet.drain(), [])
        self.assertEqual(quiet.stats()["late"], 1)

    def test_tick_closes_windows_in_processing_time(self):
        engine = cepheid.Engine(AB)
        engine.push({"user": "u", "type": "a"}, ts=1_000)
        engine.tick(20_000)
        (timeout,) = engine.drain()
        self.assertEqual(timeout["kind"], "timeout")

    def test_push_many_and_run(self):
        stream = events(RISK / "scene-events.jsonl")
        engine = cepheid.Engine(paths=RISK_RULES, max_delay_ms=1000)
        self.assertEqual(engine.push_many(iter(stream)), len(stream))
        engine.finish()
        self.assertEqual(engine.drain(), cepheid.run(paths=RISK_RULES, events=stream,
                                                     max_delay_ms=1000))
        # more than a batch (4096 events), with the GIL released
        many = [{"ts": t, "user": f"u{t % 7}", "type": "ab"[t % 2]} for t in range(10_000)]
        records = cepheid.run(AB, many)
        self.assertEqual(len(records), sum(1 for _ in records))
        self.assertGreater(len(records), 4000)

    def test_flatten_for_dataframes(self):
        records = cepheid.run(paths=RISK_RULES, events=SCENE_EVENTS, max_delay_ms=1000, flat=True)
        decision = next(r for r in records if r["kind"] == "decision" and r["rules"])
        self.assertEqual(decision["scene"], "payment")
        alert = next(r for r in records if r["kind"] == "match")
        self.assertIn("rule.score", alert)
        self.assertIsInstance(alert["events"], dict)
        self.assertFalse(any(isinstance(v, dict) and k != "events"
                             for r in records for k, v in r.items()))

    def test_run_takes_dataframes_and_arrow_tables(self):
        # (by their columns: test_frames.py compares them with their rows)
        import pandas as pd
        import pyarrow as pa

        rows = [{"ts": 1, "user": "u", "type": "a"}, {"ts": 2, "user": "u", "type": "b"}]
        frame = pd.DataFrame(rows)
        for events in (frame, pa.Table.from_pandas(frame, preserve_index=False)):
            (match,) = cepheid.run(AB, events)
            self.assertEqual((match["start"], match["end"]), (1, 2))

    def test_lists_from_python(self):
        rules = "list blocked\npattern hit { match a where a: ip in blocked }"
        engine = cepheid.Engine(rules)
        engine.add_to_list("blocked", "10.0.0.1", at=2)
        engine.push({"ts": 1, "ip": "10.0.0.1"})
        engine.push({"ts": 2, "ip": "10.0.0.1"})
        engine.remove_from_list("blocked", "10.0.0.1", at=3)
        engine.push({"ts": 3, "ip": "10.0.0.1"})
        engine.finish()
        self.assertEqual([r["start"] for r in engine.drain()], [2])
        with self.assertRaises(ValueError):
            engine.add_to_list("nope", "x", at=4)

    def test_threads_share_nothing_but_run_together(self):
        many = [{"ts": t, "user": f"u{t % 5}", "type": "ab"[t % 2]} for t in range(20_000)]
        expected = cepheid.run(AB, many)
        results = [None] * 4

        def work(i):
            results[i] = cepheid.run(AB, many)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertTrue(all(r == expected for r in results))
        # one engine, two threads: each call waits for the other's
        engine = cepheid.Engine(AB)
        pushers = [threading.Thread(target=engine.push_many, args=(many[i::2],)) for i in (0, 1)]
        for t in pushers:
            t.start()
        for t in pushers:
            t.join()
        self.assertEqual(engine.stats()["events"], len(many))


class Snapshots(unittest.TestCase):
    def test_a_restored_engine_goes_on_identically(self):
        # every cut of the sample: decisions and alerts after the restore
        # are the uninterrupted run's
        whole = cepheid.run(paths=RISK_RULES, events=SCENE_EVENTS, max_delay_ms=1000)
        for cut in range(len(SCENE_EVENTS) + 1):
            first = cepheid.Engine(paths=RISK_RULES, max_delay_ms=1000)
            first.push_many(SCENE_EVENTS[:cut])
            before = first.drain()
            snapshot = first.snapshot()
            self.assertIsInstance(snapshot, bytes)
            second = cepheid.Engine.restore(snapshot, paths=RISK_RULES)
            second.push_many(SCENE_EVENTS[cut:])
            second.finish()
            self.assertEqual(before + second.drain(), whole, f"cut after {cut} events")

    def test_decide_after_a_restore(self):
        first = cepheid.Engine(paths=RISK_RULES)
        for e in SCENE_EVENTS[:3]:
            first.decide(e)
        second = cepheid.Engine.restore(first.snapshot(), paths=RISK_RULES)
        self.assertEqual(second.decide(SCENE_EVENTS[3]), first.decide(SCENE_EVENTS[3]))

    def test_without_rules_the_snapshots_own_patterns(self):
        first = cepheid.Engine(AB, max_delay_ms=7)
        first.push({"ts": 1, "user": "u", "type": "a"})
        second = cepheid.Engine.restore(first.snapshot())
        self.assertEqual(second.patterns(), ["ab"])
        second.push({"ts": 20, "user": "u", "type": "b"})
        second.finish()
        self.assertEqual([r["end"] for r in second.drain()], [20])

    def test_bad_snapshots_are_value_errors(self):
        good = cepheid.Engine(AB).snapshot()
        for bad in [b"", b"not a snapshot", good[:-3], good[:20] + b"x" + good[21:]]:
            with self.assertRaises(ValueError):
                cepheid.Engine.restore(bad, AB)
        with self.assertRaises(ValueError):  # other rules
            cepheid.Engine.restore(good, "pattern p { match x where x: n > 1 }")


class Errors(unittest.TestCase):
    def test_a_malformed_pattern_says_where(self):
        text = 'pattern p {\n    match a followed by\n    where a: type == "a"\n}'
        with self.assertRaises(cepheid.PatternError) as caught:
            cepheid.Engine(text, origin="rules.cep")
        message = str(caught.exception)
        self.assertRegex(message, r"rules\.cep:3:5: ")
        self.assertIn("where a:", message)  # the line, drawn
        self.assertRegex(message, r"\n\s*\|\s+\^")  # and underlined
        (d,) = caught.exception.diagnostics
        self.assertEqual((d["path"], d["line"], d["column"]), ("rules.cep", 3, 5))
        self.assertIsInstance(caught.exception, ValueError)

    def test_every_problem_of_a_file_and_its_path(self):
        with self.assertRaises(cepheid.PatternError) as caught:
            cepheid.Engine("pattern p { match a where a: nope(1) }\npattern p { match b }")
        self.assertGreaterEqual(len(caught.exception.diagnostics), 1)
        with self.assertRaises(cepheid.PatternError) as caught:
            cepheid.Engine(paths=[RISK / "no-such.cep"])
        self.assertIn("no-such.cep", str(caught.exception))
        self.assertEqual(cepheid.check(AB), "")
        with self.assertRaises(ValueError):
            cepheid.Engine(AB, paths=RISK_RULES)

    def test_events_that_are_no_json_name_their_field(self):
        engine = cepheid.Engine(AB)
        cases = [
            ([("ts", 1)], TypeError, r"an event must be a dict, not list"),
            ("{}", TypeError, r"not str"),
            ({"ts": 1, "tags": {"a", "b"}}, TypeError, r"field `tags`: a set is not"),
            ({"ts": 1, "x": {"y": [1, object()]}}, TypeError, r"field `x\.y\[1\]`: a object"),
            ({"ts": 1, 7: "x"}, TypeError, r"key 7 \(int\) is not a string"),
            ({"ts": 1, "big": 2**64}, ValueError, r"field `big`: 18446744073709551616 does not fit"),
            ({"ts": 1, "big": -(10**100)}, ValueError, r"an integer of 101 digits"),
            ({"ts": 1, "f": float("nan")}, ValueError, r"field `f`: nan is not a JSON number"),
            ({"ts": 1, "f": float("inf")}, ValueError, r"field `f`: inf"),
            ({"ts": 1, "s": "\ud800"}, ValueError, r"field `s`: not valid Unicode"),
            ({"ts": 1, "b": b"bytes"}, TypeError, r"field `b`: a bytes"),
            ({"type": "a"}, ValueError, r"no time field `ts`"),
            ({"ts": "soon"}, ValueError, r"bad time field `ts`"),
            ({"ts": 2**70}, ValueError, r"field `ts`"),
        ]
        for event, error, message in cases:
            with self.subTest(event=repr(event)[:40]):
                with self.assertRaisesRegex(error, message):
                    engine.push(event)
        looped = {"ts": 1}
        looped["me"] = looped
        with self.assertRaisesRegex(ValueError, r"nested deeper than 64 levels"):
            engine.push(looped)
        # nothing of it reached the engine
        self.assertEqual(engine.stats()["events"], 0)

    def test_arguments_are_checked(self):
        engine = cepheid.Engine(AB)
        with self.assertRaisesRegex(ValueError, r"ts: .* does not fit in 64 bits"):
            engine.push({"type": "a"}, ts=2**63)
        with self.assertRaisesRegex(TypeError, r"ts must be an int"):
            engine.push({"type": "a"}, ts=1.5)
        with self.assertRaisesRegex(TypeError, r"ts must be an int"):
            engine.push({"type": "a"}, ts=True)
        with self.assertRaisesRegex(TypeError, r"position: a dict"):
            engine.push({"ts": 1}, position={"a": 1})
        with self.assertRaisesRegex(ValueError, r"max_delay_ms must be 0 or more"):
            cepheid.Engine(AB, max_delay_ms=-1)
        with self.assertRaises(OverflowError):
            cepheid.Engine(AB, max_delay_ms=2**64)
        with self.assertRaisesRegex(TypeError, r"t must be an int"):
            engine.watermark("10")
        with self.assertRaisesRegex(ValueError, r"takes an event, not a `\$watermark`"):
            engine.decide({"$watermark": 5})
        with self.assertRaisesRegex(TypeError, r"events must be an iterable"):
            engine.push_many(5)
        with self.assertRaisesRegex(TypeError, r"not a path"):
            cepheid.run(AB, "events.jsonl")
        with self.assertRaisesRegex(TypeError, r"event 2: event field `x`: a set"):
            engine.push_many([{"ts": 1}, {"ts": 2}, {"ts": 3, "x": set()}])
        with self.assertRaisesRegex(ValueError, r"event 1: no time field"):
            engine.push_many([{"ts": 4}, {"type": "a"}])
        with self.assertRaisesRegex(ValueError, r"invalid JSON"):
            engine.push_line("{not json")

    def test_extreme_times_never_panic(self):
        extremes = [-(2**63), -(2**63) + 1, -1, 0, 1, 2**62, 2**63 - 2, 2**63 - 1]
        rules = AB + """
        pattern w { partition by user within 1d timeouts
            match a followed by b where a: type == "a" b: type == "b" }"""
        for delay in [0, 1, 2**62]:
            engine = cepheid.Engine(rules, max_delay_ms=delay)
            for t in extremes:
                engine.push({"ts": t, "user": "u", "type": "a"})
                engine.push({"user": "u", "type": "b"}, ts=t)
                engine.decide({"ts": t, "user": "v", "type": "a"})
                engine.dry_run({"ts": t, "user": "v", "type": "b"})
            for t in extremes:
                engine.watermark(t)
                engine.tick(t)
            engine.finish()
            engine.push({"ts": 0, "user": "u", "type": "a"})  # after the end: late
            engine.drain()
            snapshot = engine.snapshot()
            cepheid.Engine.restore(snapshot, rules).finish()
        for t in extremes:
            fresh = cepheid.Engine(rules)
            fresh.tick(t)
            fresh.decide({"user": "u", "type": "a"}, now=t)
            fresh.finish()

    def test_odd_but_valid_values_pass(self):
        import enum

        class Kind(str, enum.Enum):
            A = "a"

        engine = cepheid.Engine(AB)
        engine.push({"ts": 1, "user": "u", "type": Kind.A, "n": None, "t": (1, 2.5, "é\n\"")})
        engine.push({"ts": 2, "user": "u", "type": "b", "deep": [[[{"x": [True]}]]]})
        engine.finish()
        (match,) = engine.drain()
        self.assertEqual(match["events"]["a"][0]["t"], [1, 2.5, 'é\n"'])
        self.assertEqual(json.loads(engine_line(AB, {"ts": 1, "user": "u", "type": "a"})),
                         {"kind": "late", "event": {"ts": 1, "user": "u", "type": "a"}})


def engine_line(rules, event):
    """The late record of `event` pushed after the end of input."""
    engine = cepheid.Engine(rules)
    engine.push({"ts": event["ts"] + 1})
    engine.finish()
    engine.push(event)
    (line,) = engine.drain_lines()
    return line


if __name__ == "__main__":
    unittest.main()
