"""Every case of clients/cases.json (the behaviour docs/clients.md gives
the Python, TypeScript and Rust clients alike), unchanged, on the
synchronous Client and on the AsyncClient: a scripted transport checks
each request and answers, the clock and the sleeps are injected. One test
per case and client (`test_sync_07_...`, `test_async_07_...`)."""

import re
import unittest

from client_script import load_cases, run_case

DOC = load_cases()
CASES = DOC["cases"]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60]


class SyncCases(unittest.TestCase):
    """The cases on `cepheid.client.Client`."""


class AsyncCases(unittest.TestCase):
    """The cases on `cepheid.client.AsyncClient`."""


def _test(case, asynchronous):
    def test(self):
        run_case(self, case, DOC["defaults"], asynchronous)

    test.__doc__ = case["name"]
    return test


for _i, _case in enumerate(CASES):
    _name = f"{_i:02d}_{_slug(_case['name'])}"
    setattr(SyncCases, f"test_sync_{_name}", _test(_case, False))
    setattr(AsyncCases, f"test_async_{_name}", _test(_case, True))


class AllCases(unittest.TestCase):
    def test_every_case_is_a_test_of_both_clients(self):
        self.assertGreaterEqual(len(CASES), 28)
        for cls, prefix in ((SyncCases, "test_sync_"), (AsyncCases, "test_async_")):
            names = [n for n in dir(cls) if n.startswith(prefix)]
            self.assertEqual(len(names), len(CASES), cls.__name__)


if __name__ == "__main__":
    unittest.main()
