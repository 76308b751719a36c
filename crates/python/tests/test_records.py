"""The records of the embedded engine are `cepheid run`'s: the sample
decisions (`patterns/risk/decisions.jsonl`, the engine's golden file),
the sample stream's alerts (`tests/golden/`, what the command wrote), and,
when a `cepheid` binary is built, what it writes now."""

import json
import tempfile
import unittest
from pathlib import Path

import cepheid

from support import GOLDEN, RISK, SAMPLE, binary, cepheid_run, events, lines, patterns_folder

RISK_RULES = [RISK / "rules.cep", RISK / "scenes.cep"]


class Decisions(unittest.TestCase):
    def test_the_risk_sample_gives_the_golden_decisions(self):
        # As crates/runtime/tests/it/decisions.rs makes the golden file:
        # rules.cep and scenes.cep, a max delay of 1 s, each event pushed,
        # then the end of input.
        engine = cepheid.Engine(paths=RISK_RULES, max_delay_ms=1000)
        for event in events(RISK / "scene-events.jsonl"):
            engine.push(event)
        engine.finish()
        got = [line for line in engine.drain_lines() if '"kind":"decision"' in line]
        self.assertEqual(got, lines(RISK / "decisions.jsonl"))

    def test_the_decisions_as_dicts_have_the_records_fields(self):
        records = cepheid.run(
            paths=RISK_RULES, events=events(RISK / "scene-events.jsonl"), max_delay_ms=1000
        )
        decisions = [r for r in records if r["kind"] == "decision"]
        self.assertEqual(decisions, [json.loads(l) for l in lines(RISK / "decisions.jsonl")])
        # the optional fields, each where the golden file has it
        self.assertEqual(decisions[4]["list"], "device in blocked_devices")
        self.assertEqual(decisions[5]["missing"], ["card"])
        self.assertIs(decisions[7]["late"], True)
        self.assertEqual(decisions[9]["position"], 11)
        self.assertNotIn("event", decisions[9])
        # the fields in the order of docs/decisions.md's table
        order = ["kind", "scene", "event", "position", "ts", "outcome", "score", "rules",
                 "shadow", "list", "late", "missing"]
        for d in decisions:
            keys = list(d)
            self.assertEqual(keys, sorted(keys, key=order.index), d)

    def test_a_position_given_names_the_decision(self):
        engine = cepheid.Engine(paths=RISK_RULES)
        engine.push({"ts": 1, "type": "phone_check", "account": "a", "phone": "1"},
                    position="events.jsonl:7")
        engine.finish()
        (decision,) = [r for r in engine.drain() if r["kind"] == "decision"]
        self.assertEqual(decision["position"], "events.jsonl:7")

    @unittest.skipUnless(binary(), "no cepheid binary built (cargo build)")
    def test_the_command_writes_the_same_decisions(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "decisions.jsonl"
            cepheid_run(*RISK_RULES, "--events", RISK / "scene-events.jsonl",
                        "--max-delay", "1s", "--decisions", out)
            written = [json.loads(l) for l in lines(out)]
        engine = cepheid.Engine(paths=RISK_RULES, max_delay_ms=1000)
        for i, line in enumerate(lines(RISK / "scene-events.jsonl"), 1):
            # the command names an event without an id by PATH:LINE
            engine.push(json.loads(line), position=f"{RISK / 'scene-events.jsonl'}:{i}")
        engine.finish()
        got = [r for r in engine.drain() if r["kind"] == "decision"]
        self.assertEqual(got, written)


class Alerts(unittest.TestCase):
    def run_sample(self, **options):
        engine = cepheid.Engine(paths=patterns_folder(), **options)
        for event in events(SAMPLE):
            engine.push(event)
        engine.finish()
        return engine.drain_lines()

    def test_the_sample_stream_gives_the_commands_records_byte_for_byte(self):
        # `cepheid run patterns/ --events examples/data/sample.jsonl --late
        # FILE`: matches and timeouts to standard output, late events apart.
        # The events were read with json.loads and are written again in
        # json.dumps's form: the same text as the file's lines.
        got = self.run_sample()
        main = [l for l in got if not l.startswith('{"kind":"late"')]
        late = [l for l in got if l.startswith('{"kind":"late"')]
        self.assertEqual(main, lines(GOLDEN / "sample_all_late" / "stdout.jsonl"))
        self.assertEqual(late, lines(GOLDEN / "sample_all_late" / "late.jsonl"))
        # sequences among them: a `followed by` pattern's match, a timeout
        self.assertTrue(any('"pattern":"payment_retry_storm"' in l for l in main))
        self.assertTrue(any(l.startswith('{"kind":"timeout"') for l in main))

    def test_with_a_max_delay(self):
        got = self.run_sample(max_delay_ms=30_000, late=False)
        self.assertEqual(got, lines(GOLDEN / "sample_all_delay_30s" / "stdout.jsonl"))

    def test_the_risk_rules_give_their_expected_records(self):
        # `cepheid run patterns/risk --events patterns/risk/events.jsonl`
        # (expected.jsonl): a sequence with `then add`, indicators, lists.
        # (the folder has scenes too: the command writes their decisions
        # only with --decisions, a file of their own)
        records = cepheid.run(paths=str(RISK), events=events(RISK / "events.jsonl"))
        records = [r for r in records if r["kind"] != "decision"]
        expected = [json.loads(l) for l in lines(RISK / "expected.jsonl")]
        self.assertEqual(records, expected)

    @unittest.skipUnless(binary(), "no cepheid binary built (cargo build)")
    def test_the_command_writes_the_same_alerts(self):
        for rules in [patterns_folder(), [RISK]]:
            stream = SAMPLE if len(rules) > 1 else RISK / "events.jsonl"
            written = cepheid_run(*rules, "--events", stream)
            engine = cepheid.Engine(paths=rules, late=False)
            for line in lines(stream):
                engine.push_line(line)
            engine.finish()
            # (without --decisions the command writes no decision)
            got = [l for l in engine.drain_lines() if not l.startswith('{"kind":"decision"')]
            self.assertEqual(got, written)


if __name__ == "__main__":
    unittest.main()
